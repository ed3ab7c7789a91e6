// tests/plugins/github_test.cpp: the github plugin, loaded through the plugin host.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugin_test_support.h"

namespace anm::plugin::test {
namespace {

constexpr char kProvider[] = "github";
constexpr char kSecret[] = "gh-hook-secret-7d41c0a2";
constexpr int64_t kNowMs = 1733270400000;
const std::string kBody = R"({"zen":"Keep it logically awesome.","hook_id":12345})";

std::string sha256Header(const std::string& body, const std::string& secret = kSecret) {
  return "sha256=" + hmacSha256Hex(secret, body);
}

std::string sha1Header(const std::string& body, const std::string& secret = kSecret) {
  return "sha1=" + hmacSha1Hex(secret, body);
}

std::vector<store::Header> headersWith(std::vector<store::Header> signatures) {
  std::vector<store::Header> headers = {
      {"Content-Type", "application/json"},
      {"X-GitHub-Event", "ping"},
      {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
  };
  headers.insert(headers.end(), signatures.begin(), signatures.end());
  return headers;
}

class GithubTest : public PluginTest {};

TEST_F(GithubTest, PublishedExampleIsValid) {
  // GitHub's vector from "Validating webhook deliveries" (docs.github.com/en/webhooks/
  // using-webhooks/validating-webhook-deliveries), cross-checked here with OpenSSL.
  const std::string secret = "It's a Secret to Everybody";
  const std::string body = "Hello, World!";
  const std::string published =
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  ASSERT_EQ(sha256Header(body, secret), published);

  Outcome out =
      verify(makeHook(kProvider, secret), {{"X-Hub-Signature-256", published}}, body, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.reason, ANM_REASON_OK);
}

TEST_F(GithubTest, ValidSignatureNamesEventAndDelivery) {
  Outcome out = verify(makeHook(kProvider, kSecret),
                       headersWith({{"X-Hub-Signature-256", sha256Header(kBody)}}), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "ping");
  EXPECT_EQ(out.deliveryId, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  EXPECT_FALSE(out.response.has_value());
}

TEST_F(GithubTest, TamperedBodyIsMismatch) {
  Outcome out =
      verify(makeHook(kProvider, kSecret),
             headersWith({{"X-Hub-Signature-256", sha256Header(kBody)}}), kBody + " ", kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(out.message, "X-Hub-Signature-256 does not match the secret");
  EXPECT_EQ(out.eventType, "ping");
}

TEST_F(GithubTest, WrongSecretIsMismatch) {
  Outcome out = verify(makeHook(kProvider, "another-secret"),
                       headersWith({{"X-Hub-Signature-256", sha256Header(kBody)}}), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(GithubTest, MissingHeaderIsHeaderMissing) {
  Outcome out = verify(makeHook(kProvider, kSecret), headersWith({}), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(out.message, "no X-Hub-Signature-256 header");
}

TEST_F(GithubTest, MalformedHeadersAreMalformed) {
  std::string hex = hmacSha256Hex(kSecret, kBody);
  std::string badHex = hex;
  badHex[0] = 'g';

  for (const std::string& value :
       {std::string(), hex, "sha1=" + hex, "SHA256=" + hex, "sha256=" + badHex,
        "sha256=" + hex.substr(0, 40), "sha256=" + hex + "00", std::string("sha256=")}) {
    Outcome out = verify(makeHook(kProvider, kSecret),
                         headersWith({{"X-Hub-Signature-256", value}}), kBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kInvalid) << value;
    EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED) << value << ": " << out.message;
  }
}

TEST_F(GithubTest, MissingPrefixSaysWhichPrefix) {
  Outcome out =
      verify(makeHook(kProvider, kSecret),
             headersWith({{"X-Hub-Signature-256", hmacSha256Hex(kSecret, kBody)}}), kBody, kNowMs);

  EXPECT_EQ(out.message, "X-Hub-Signature-256 does not start with \"sha256=\"");
}

TEST_F(GithubTest, Sha1OnlyIsRefusedByDefault) {
  Outcome out = verify(makeHook(kProvider, kSecret),
                       headersWith({{"X-Hub-Signature", sha1Header(kBody)}}), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_ALGORITHM_REFUSED);
  EXPECT_NE(out.message.find("allow_sha1=true"), std::string::npos) << out.message;
}

TEST_F(GithubTest, Sha1OnlyIsRefusedWhenExplicitlyOff) {
  Outcome out = verify(makeHook(kProvider, kSecret, -1, {{"allow_sha1", "false"}}),
                       headersWith({{"X-Hub-Signature", sha1Header(kBody)}}), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_ALGORITHM_REFUSED);
}

TEST_F(GithubTest, Sha1IsAcceptedWhenAllowed) {
  store::HookRecord hook = makeHook(kProvider, kSecret, -1, {{"allow_sha1", "true"}});

  Outcome good = verify(hook, headersWith({{"X-Hub-Signature", sha1Header(kBody)}}), kBody, kNowMs);
  EXPECT_EQ(good.verdict, store::Verdict::kValid) << good.message;
  EXPECT_EQ(good.eventType, "ping");

  Outcome bad =
      verify(hook, headersWith({{"X-Hub-Signature", sha1Header(kBody, "other")}}), kBody, kNowMs);
  EXPECT_EQ(bad.reason, ANM_REASON_SIGNATURE_MISMATCH);

  Outcome malformed =
      verify(hook, headersWith({{"X-Hub-Signature", sha256Header(kBody)}}), kBody, kNowMs);
  EXPECT_EQ(malformed.reason, ANM_REASON_HEADER_MALFORMED);
}

TEST_F(GithubTest, Sha256WinsOverAllowedSha1) {
  // A wrong SHA-256 next to a right SHA-1 must not pass: the stronger header decides.
  store::HookRecord hook = makeHook(kProvider, kSecret, -1, {{"allow_sha1", "true"}});
  std::vector<store::Header> headers =
      headersWith({{"X-Hub-Signature", sha1Header(kBody)},
                   {"X-Hub-Signature-256", sha256Header(kBody, "other")}});

  Outcome out = verify(hook, headers, kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(GithubTest, BothHeadersAsGithubSendsThemAreValid) {
  std::vector<store::Header> headers = headersWith(
      {{"X-Hub-Signature", sha1Header(kBody)}, {"X-Hub-Signature-256", sha256Header(kBody)}});

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(GithubTest, MissingSecretIsSecretMissing) {
  Outcome out = verify(makeHook(kProvider, ""),
                       headersWith({{"X-Hub-Signature-256", sha256Header(kBody)}}), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SECRET_MISSING);
}

TEST_F(GithubTest, EmptyBodyIsSignedToo) {
  Outcome out = verify(makeHook(kProvider, kSecret),
                       headersWith({{"X-Hub-Signature-256", sha256Header("")}}), "", kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(GithubTest, LargeBodyIsVerifiedWhole) {
  std::string body(12 * 1024 * 1024, 'a');
  std::string value = sha256Header(body);

  EXPECT_EQ(verify(makeHook(kProvider, kSecret), headersWith({{"X-Hub-Signature-256", value}}),
                   body, kNowMs)
                .verdict,
            store::Verdict::kValid);
  body.back() = 'b';
  EXPECT_EQ(verify(makeHook(kProvider, kSecret), headersWith({{"X-Hub-Signature-256", value}}),
                   body, kNowMs)
                .reason,
            ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(GithubTest, OverlongEventNameIsNotRecorded) {
  // Labels are capped at 256 bytes; a longer one cannot be GitHub's and is dropped.
  std::vector<store::Header> headers = {{"X-GitHub-Event", std::string(257, 'e')},
                                        {"X-GitHub-Delivery", std::string(256, 'd')},
                                        {"X-Hub-Signature-256", sha256Header(kBody)}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid);
  EXPECT_EQ(out.eventType, "");
  EXPECT_EQ(out.deliveryId, std::string(256, 'd'));
}

TEST_F(GithubTest, CheckSettingsRefusesUnknownOptionsAndBadValues) {
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"allow_sh1", "true"}})),
            "unknown option \"allow_sh1\"; known: allow_sha1");

  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"allow_sha1", "yes"}})),
            "option allow_sha1 must be \"true\" or \"false\", not \"yes\"");

  EXPECT_NE(checkSettings(makeHook(kProvider, kSecret, -7)), "");

  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"allow_sha1", "true"}})), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"allow_sha1", "false"}})), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret)), "");
}

}  // namespace
}  // namespace anm::plugin::test
