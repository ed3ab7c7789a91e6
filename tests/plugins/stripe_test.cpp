// tests/plugins/stripe_test.cpp: the stripe plugin, loaded through the plugin host.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugin_test_support.h"

namespace anm::plugin::test {
namespace {

constexpr char kProvider[] = "stripe";
constexpr char kSecret[] = "whsec_3b1f0c6a9d2e4f5a8b7c6d5e4f3a2b1c";

// 2024-12-04T00:00:00Z, an arbitrary fixed receipt time: the plugin never reads a clock.
constexpr int64_t kNowS = 1733270400;
constexpr int64_t kNowMs = kNowS * 1000;

// The top-level "id" and "type" follow a nested object with members of the same names, which
// must not be picked up.
const std::string kBody =
    R"({"id":"evt_1QcRtY2eZvKYlo2C0l9a1b2c","object":"event","data":{"object":)"
    R"({"id":"pi_3QcRtX","type":"card"}},"type":"payment_intent.succeeded"})";

std::string v1(int64_t t, const std::string& body, const std::string& secret = kSecret) {
  return hmacSha256Hex(secret, std::to_string(t) + "." + body);
}

std::string header(int64_t t, const std::string& body, const std::string& secret = kSecret) {
  return "t=" + std::to_string(t) + ",v1=" + v1(t, body, secret);
}

std::vector<store::Header> withSignature(const std::string& value) {
  return {{"Content-Type", "application/json"}, {"Stripe-Signature", value}};
}

class StripeTest : public PluginTest {};

TEST_F(StripeTest, ValidSignatureIsValidAndNamesTheEvent) {
  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature(header(kNowS, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.reason, ANM_REASON_OK);
  EXPECT_EQ(out.eventType, "payment_intent.succeeded");
  EXPECT_EQ(out.deliveryId, "evt_1QcRtY2eZvKYlo2C0l9a1b2c");
  EXPECT_FALSE(out.response.has_value());
}

TEST_F(StripeTest, HeaderNameIsMatchedIgnoringCase) {
  std::vector<store::Header> headers = {{"stripe-signature", header(kNowS, kBody)}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(StripeTest, TamperedBodyIsMismatch) {
  std::string tampered = kBody;
  tampered.replace(tampered.find("succeeded"), 9, "cancelled");

  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature(header(kNowS, kBody)), tampered, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(out.message, "no v1 signature matches the secret");
}

TEST_F(StripeTest, WrongSecretIsMismatch) {
  Outcome out = verify(makeHook(kProvider, "whsec_someoneelse"),
                       withSignature(header(kNowS, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, WholeSecretIncludingPrefixIsTheKey) {
  // Signed with the secret minus its "whsec_" prefix: Stripe keys with the whole string.
  std::string bare = std::string(kSecret).substr(6);

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(header(kNowS, kBody, bare)),
                       kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, MissingHeaderIsHeaderMissing) {
  std::vector<store::Header> headers = {{"Content-Type", "application/json"}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(out.message, "no Stripe-Signature header");
  // The event is still named so that a refused request can be recognised in listings.
  EXPECT_EQ(out.eventType, "payment_intent.succeeded");
}

TEST_F(StripeTest, EmptyHeaderIsMalformed) {
  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(""), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED);
  EXPECT_EQ(out.message, "Stripe-Signature is empty");
}

TEST_F(StripeTest, MissingTimestampIsTimestampMissing) {
  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature("v1=" + v1(kNowS, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_TIMESTAMP_MISSING);
  EXPECT_EQ(out.message, "Stripe-Signature has no t= timestamp");
}

TEST_F(StripeTest, NonNumericTimestampIsMalformed) {
  for (std::string t :
       {"", "abc", "-5", "+1733270400", "1733270400.5", "1e9", "1234567890123456789"}) {
    std::string value = "t=" + t + ",v1=" + v1(kNowS, kBody);

    Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

    EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED) << "t=" << t;
  }
}

TEST_F(StripeTest, TwoTimestampsAreMalformed) {
  std::string value = header(kNowS, kBody) + ",t=" + std::to_string(kNowS + 1);

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED);
}

TEST_F(StripeTest, BadHexV1IsMalformed) {
  std::string hex = v1(kNowS, kBody);
  hex[10] = 'z';

  Outcome out = verify(makeHook(kProvider, kSecret),
                       withSignature("t=" + std::to_string(kNowS) + ",v1=" + hex), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED);
  EXPECT_EQ(out.message, "Stripe-Signature v1= is not 64 hex digits");
}

TEST_F(StripeTest, ShortV1IsMalformed) {
  std::string hex = v1(kNowS, kBody).substr(0, 62);

  Outcome out = verify(makeHook(kProvider, kSecret),
                       withSignature("t=" + std::to_string(kNowS) + ",v1=" + hex), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED);
}

TEST_F(StripeTest, ElementWithoutEqualsIsMalformed) {
  std::string value = header(kNowS, kBody) + ",garbage";

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED);
}

TEST_F(StripeTest, OneWrongAndOneRightV1IsValid) {
  std::string wrong = v1(kNowS, kBody, "whsec_old_secret");
  std::string right = v1(kNowS, kBody);
  std::string t = "t=" + std::to_string(kNowS);

  // Both orders: the match may come first or last.
  for (const std::string& value :
       {t + ",v1=" + wrong + ",v1=" + right, t + ",v1=" + right + ",v1=" + wrong}) {
    Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kValid) << value << ": " << out.message;
  }
}

TEST_F(StripeTest, MalformedV1BesideMatchingV1IsValid) {
  std::string value = "t=" + std::to_string(kNowS) + ",v1=nothex,v1=" + v1(kNowS, kBody);

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(StripeTest, OnlyV0IsMismatchEvenWhenItWouldMatch) {
  // The v0 element carries exactly what a v1 would: it must still not be accepted.
  std::string value = "t=" + std::to_string(kNowS) + ",v0=" + v1(kNowS, kBody);

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, MatchingV0BesideWrongV1IsMismatch) {
  // Once a v1 is present, a v0 carrying the right HMAC must still not count.
  std::string value = "t=" + std::to_string(kNowS) + ",v1=" + v1(kNowS, kBody, "whsec_old_secret") +
                      ",v0=" + v1(kNowS, kBody);

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, TimestampWithoutAnySignatureIsMismatch) {
  Outcome out = verify(makeHook(kProvider, kSecret), withSignature("t=" + std::to_string(kNowS)),
                       kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(out.message, "Stripe-Signature has no v1 signature");
}

TEST_F(StripeTest, ElementsInAnyOrderAndUnknownSchemesIgnored) {
  std::string value = "v0=" + std::string(64, 'a') + ",v1=" + v1(kNowS, kBody) +
                      ",v2=future-scheme,t=" + std::to_string(kNowS);

  Outcome out = verify(makeHook(kProvider, kSecret), withSignature(value), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(StripeTest, PublishedHeaderExampleParsesButDoesNotMatchAnotherSecret) {
  // The header shown in Stripe's "Verify webhook signatures" docs (docs.stripe.com/webhooks);
  // Stripe publishes no secret or body with it, so it can only show that the real format
  // parses: the outcome must be a mismatch, not a malformed header.
  std::string value =
      "t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,"
      "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";

  Outcome out =
      verify(makeHook(kProvider, kSecret, 0), withSignature(value), kBody, 1492774577LL * 1000);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, StaleTimestampIsOutsideWithSkewInMessage) {
  int64_t t = kNowS - 301;

  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature(header(t, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(out.message, "timestamp is 301 s old, outside the 300 s tolerance");
}

TEST_F(StripeTest, FutureTimestampIsOutsideWithSkewInMessage) {
  int64_t t = kNowS + 301;

  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature(header(t, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(out.message, "timestamp is 301 s in the future, outside the 300 s tolerance");
}

TEST_F(StripeTest, ExactlyAtToleranceEdgeIsValid) {
  for (int64_t t : {kNowS - 300, kNowS + 300}) {
    Outcome out =
        verify(makeHook(kProvider, kSecret), withSignature(header(t, kBody)), kBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kValid) << "t=" << t << ": " << out.message;
  }

  // Receipt is judged in whole seconds: 300.999 s after t is still 300 s.
  Outcome late = verify(makeHook(kProvider, kSecret), withSignature(header(kNowS - 300, kBody)),
                        kBody, kNowMs + 999);
  EXPECT_EQ(late.verdict, store::Verdict::kValid) << late.message;
  Outcome past = verify(makeHook(kProvider, kSecret), withSignature(header(kNowS - 300, kBody)),
                        kBody, kNowMs + 1000);
  EXPECT_EQ(past.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
}

TEST_F(StripeTest, ConfiguredToleranceReplacesTheDefault) {
  store::HookRecord hook = makeHook(kProvider, kSecret, 60);

  EXPECT_EQ(verify(hook, withSignature(header(kNowS - 60, kBody)), kBody, kNowMs).verdict,
            store::Verdict::kValid);
  Outcome out = verify(hook, withSignature(header(kNowS - 61, kBody)), kBody, kNowMs);
  EXPECT_EQ(out.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(out.message, "timestamp is 61 s old, outside the 60 s tolerance");
}

TEST_F(StripeTest, ToleranceZeroTurnsTheWindowOff) {
  store::HookRecord hook = makeHook(kProvider, kSecret, 0);

  // Ten years either side: a stored request re-verified much later still verifies.
  for (int64_t t : {kNowS - 315360000, kNowS + 315360000}) {
    Outcome out = verify(hook, withSignature(header(t, kBody)), kBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kValid) << "t=" << t << ": " << out.message;
  }
}

TEST_F(StripeTest, StaleRequestWithWrongSignatureIsMismatchNotStale) {
  Outcome out = verify(makeHook(kProvider, kSecret),
                       withSignature(header(kNowS - 1000, kBody, "whsec_other")), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, MissingSecretIsSecretMissing) {
  Outcome out = verify(makeHook(kProvider, ""), withSignature(header(kNowS, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SECRET_MISSING);
}

TEST_F(StripeTest, LargeBodyIsVerifiedWhole) {
  // 11 MiB, above the edge's default body limit, with the distinguishing byte at the very end.
  std::string body =
      R"({"id":"evt_big","type":"big.event","pad":")" + std::string(11 * 1024 * 1024, 'x') + "\"}";
  std::string value = header(kNowS, body);

  EXPECT_EQ(verify(makeHook(kProvider, kSecret), withSignature(value), body, kNowMs).verdict,
            store::Verdict::kValid);
  body[body.size() - 3] = 'y';
  EXPECT_EQ(verify(makeHook(kProvider, kSecret), withSignature(value), body, kNowMs).reason,
            ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(StripeTest, NonJsonBodyVerifiesWithoutEventNames) {
  std::string body = "not json at all";

  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature(header(kNowS, body)), body, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "");
  EXPECT_EQ(out.deliveryId, "");
}

TEST_F(StripeTest, LabelsAreCappedAt256Bytes) {
  std::string body =
      R"({"id":")" + std::string(256, 'i') + R"(","type":")" + std::string(257, 't') + R"("})";

  Outcome out =
      verify(makeHook(kProvider, kSecret), withSignature(header(kNowS, body)), body, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.deliveryId, std::string(256, 'i'));
  EXPECT_EQ(out.eventType, "");
}

TEST_F(StripeTest, CheckSettingsRefusesOptionsAndBadTolerance) {
  std::string reason = checkSettings(makeHook(kProvider, kSecret, -1, {{"allow_sha1", "true"}}));
  EXPECT_EQ(reason, "unknown option \"allow_sha1\"; stripe takes no options");

  reason = checkSettings(makeHook(kProvider, kSecret, -5));
  EXPECT_NE(reason.find("tolerance_s"), std::string::npos) << reason;
  EXPECT_NE(reason.find("-5"), std::string::npos) << reason;

  for (int64_t tolerance : {-1, 0, 1, 600}) {
    EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, tolerance)), "") << tolerance;
  }

  // A hook may be created before its secret is known (Stripe shows it after the endpoint).
  EXPECT_EQ(checkSettings(makeHook(kProvider, "")), "");
}

}  // namespace
}  // namespace anm::plugin::test
