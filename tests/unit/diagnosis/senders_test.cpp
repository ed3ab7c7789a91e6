// tests/unit/diagnosis/senders_test.cpp: each sender's signed time, signature headers and secrets.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/senders.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/diagnosis/signing.h"

namespace anm::diagnosis {
namespace {

using Headers = std::vector<store::Header>;

TEST(SendersTest, SchemeFollowsProviderThenStandardWebhooksFlag) {
  EXPECT_EQ(schemeOf("", false), Scheme::kNone);
  EXPECT_EQ(schemeOf("", true), Scheme::kStandardWebhooks);
  EXPECT_EQ(schemeOf("stripe", true), Scheme::kStripe);
  EXPECT_EQ(schemeOf("github", false), Scheme::kGithub);
  EXPECT_EQ(schemeOf("shopify", false), Scheme::kShopify);
  EXPECT_EQ(schemeOf("slack", false), Scheme::kSlack);
  EXPECT_EQ(schemeOf("razorpay", false), Scheme::kRazorpay);
  EXPECT_EQ(schemeOf("acme", false), Scheme::kOtherPlugin);
}

TEST(SendersTest, DefaultWindowsAreThePluginsOwn) {
  EXPECT_EQ(schemeInfo(Scheme::kStripe).defaultWindowS, 300);
  EXPECT_EQ(schemeInfo(Scheme::kSlack).defaultWindowS, 300);
  EXPECT_EQ(schemeInfo(Scheme::kStandardWebhooks).defaultWindowS, 300);
  EXPECT_EQ(schemeInfo(Scheme::kGithub).defaultWindowS, 0);
  EXPECT_EQ(schemeInfo(Scheme::kShopify).defaultWindowS, 0);
  EXPECT_EQ(schemeInfo(Scheme::kRazorpay).defaultWindowS, 0);
}

TEST(SendersTest, ReadsEachProvidersSignedTime) {
  EXPECT_EQ(signedAtSeconds(Scheme::kStripe, {{"stripe-signature", "t=1700000000,v1=ab"}}),
            1700000000);
  EXPECT_EQ(signedAtSeconds(Scheme::kStripe, {{"Stripe-Signature", " v1=ab , t=42 "}}), 42);
  EXPECT_EQ(signedAtSeconds(Scheme::kSlack, {{"X-Slack-Request-Timestamp", "1531420618"}}),
            1531420618);
  EXPECT_EQ(signedAtSeconds(Scheme::kStandardWebhooks, {{"Webhook-Timestamp", "1614265330"}}),
            1614265330);

  // Senders that sign no time, and schemes whose header holds none.
  const Headers github = {{"X-Hub-Signature-256", "sha256=00"}, {"Stripe-Signature", "t=5"}};
  EXPECT_FALSE(signedAtSeconds(Scheme::kGithub, github));
  EXPECT_FALSE(signedAtSeconds(Scheme::kShopify, {{"X-Shopify-Hmac-Sha256", "x"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kRazorpay, {{"X-Razorpay-Signature", "x"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kNone, {{"webhook-timestamp", "5"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kOtherPlugin, {{"webhook-timestamp", "5"}}));
}

TEST(SendersTest, RefusesTimesTheVerifiersWouldRefuse) {
  EXPECT_FALSE(signedAtSeconds(Scheme::kStripe, {{"Stripe-Signature", "t=1,t=2,v1=ab"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kStripe, {{"Stripe-Signature", "v1=ab"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kStripe, {{"Stripe-Signature", "t=-5,v1=ab"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kSlack, {{"X-Slack-Request-Timestamp", "12a"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kSlack, {{"X-Slack-Request-Timestamp", ""}}));
  EXPECT_FALSE(
      signedAtSeconds(Scheme::kSlack, {{"X-Slack-Request-Timestamp", "1234567890123456789"}}));
  EXPECT_FALSE(signedAtSeconds(Scheme::kStandardWebhooks,
                               {{"webhook-timestamp", "1"}, {"webhook-timestamp", "2"}}));
}

TEST(SendersTest, FloorSecondsRoundsTowardsThePast) {
  EXPECT_EQ(floorSeconds(1700000000999), 1700000000);
  EXPECT_EQ(floorSeconds(0), 0);
  EXPECT_EQ(floorSeconds(-1), -1);
  EXPECT_EQ(floorSeconds(-1000), -1);
  EXPECT_EQ(floorSeconds(-1001), -2);
}

TEST(SendersTest, FindsOtherSendersSignatureHeaders) {
  const Headers github = {{"x-hub-signature-256", "sha256=00"}, {"X-Hub-Signature", "sha1=00"}};
  const auto onStripe = othersSignatureHeaders(Scheme::kStripe, github);
  ASSERT_EQ(onStripe.size(), 2u);
  EXPECT_EQ(onStripe[0].header, "X-Hub-Signature-256");
  EXPECT_EQ(onStripe[0].setting, "--provider github");

  // A scheme's own headers are not someone else's, GitHub's legacy one included.
  EXPECT_TRUE(othersSignatureHeaders(Scheme::kGithub, github).empty());

  const auto svix = othersSignatureHeaders(
      Scheme::kStandardWebhooks, {{"svix-signature", "v1,x"}, {"webhook-signature", "v1,y"}});
  ASSERT_EQ(svix.size(), 1u);
  EXPECT_EQ(svix[0].header, "svix-signature");
  EXPECT_EQ(svix[0].setting, "");

  EXPECT_TRUE(
      othersSignatureHeaders(Scheme::kNone, {{"Content-Type", "application/json"}}).empty());
}

TEST(SendersTest, RecomputesStripeSignatures) {
  const std::string body = "{\n  \"id\": \"evt_1\"\n}";
  const Headers headers = {
      {"Stripe-Signature", test::stripeSignature("whsec_old", 1700000000, body)}};
  EXPECT_TRUE(signedWithSecret(Scheme::kStripe, "whsec_old", headers, body));
  EXPECT_FALSE(signedWithSecret(Scheme::kStripe, "whsec_new", headers, body));
  EXPECT_FALSE(signedWithSecret(Scheme::kStripe, "whsec_old", headers, body + " "));
  EXPECT_FALSE(signedWithSecret(Scheme::kStripe, "", headers, body));
}

TEST(SendersTest, RecomputesBodyOnlySignatures) {
  const std::string body = R"({"action":"opened"})";
  const std::string mac = test::hmacSha256("s3cret", body);
  EXPECT_TRUE(signedWithSecret(Scheme::kGithub, "s3cret",
                               {{"X-Hub-Signature-256", "sha256=" + test::hex(mac)}}, body));
  EXPECT_FALSE(
      signedWithSecret(Scheme::kGithub, "s3cret", {{"X-Hub-Signature-256", test::hex(mac)}}, body));
  EXPECT_TRUE(signedWithSecret(Scheme::kShopify, "s3cret",
                               {{"X-Shopify-Hmac-Sha256", test::base64(mac)}}, body));
  EXPECT_TRUE(signedWithSecret(Scheme::kRazorpay, "s3cret",
                               {{"X-Razorpay-Signature", test::hex(mac)}}, body));
  EXPECT_FALSE(signedWithSecret(Scheme::kRazorpay, "other",
                                {{"X-Razorpay-Signature", test::hex(mac)}}, body));
}

TEST(SendersTest, RecomputesSlackSignatures) {
  const std::string body = "token=x&command=%2Fping";
  const std::string mac = test::hmacSha256("slacksecret", "v0:1531420618:" + body);
  const Headers headers = {{"X-Slack-Request-Timestamp", "1531420618"},
                           {"X-Slack-Signature", "v0=" + test::hex(mac)}};
  EXPECT_TRUE(signedWithSecret(Scheme::kSlack, "slacksecret", headers, body));
  EXPECT_FALSE(signedWithSecret(Scheme::kSlack, "slacksecret",
                                {headers[1], {"X-Slack-Request-Timestamp", "1531420619"}}, body));
}

TEST(SendersTest, RecomputesTheStandardWebhooksSample) {
  const Headers headers = {{"webhook-id", test::kSampleId},
                           {"webhook-timestamp", std::to_string(test::kSampleTimestamp)},
                           {"webhook-signature", std::string("v1a,zzz ") + test::kSampleSignature}};
  EXPECT_TRUE(
      signedWithSecret(Scheme::kStandardWebhooks, test::kSampleSecret, headers, test::kSampleBody));
  EXPECT_FALSE(signedWithSecret(Scheme::kStandardWebhooks, "whsec_bm90IHRoZSBzZWNyZXQ=", headers,
                                test::kSampleBody));
  EXPECT_FALSE(signedWithSecret(Scheme::kStandardWebhooks, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                headers, test::kSampleBody));
  EXPECT_FALSE(
      signedWithSecret(Scheme::kStandardWebhooks, "whsec_!!!!", headers, test::kSampleBody));
}

TEST(SendersTest, CannotRecomputeWhatItDoesNotKnow) {
  EXPECT_FALSE(signedWithSecret(Scheme::kOtherPlugin, "s", {{"X-Sig", "00"}}, "b"));
  EXPECT_FALSE(signedWithSecret(Scheme::kNone, "s", {}, "b"));
}

}  // namespace
}  // namespace anm::diagnosis
