// tests/unit/edge/standard_webhooks_test.cpp: Standard Webhooks verification of hook requests.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/standard_webhooks.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "anonymily/plugin.h"

namespace anm::edge {
namespace {

// The sample of the Standard Webhooks specification's reference libraries: this secret, id,
// timestamp and body are signed "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".
constexpr char kSampleSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kSampleId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSampleTimestamp = 1614265330;
constexpr char kSampleBody[] = R"({"test": 2432232314})";
constexpr char kSampleSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Signs the way a sender would, with OpenSSL's one-shot HMAC and nothing of the edge.
std::string senderSignature(const std::string& keyBytes, const std::string& content) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), keyBytes.data(), static_cast<int>(keyBytes.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  return "v1," + base64(mac, len);
}

store::HookRecord sampleHook() {
  store::HookRecord hook;
  hook.id = "h";
  hook.standardWebhooks = true;
  hook.signingSecret = kSampleSecret;
  hook.toleranceS = -1;
  return hook;
}

std::vector<store::Header> sampleHeaders(const std::string& signature,
                                         int64_t timestamp = kSampleTimestamp) {
  return {{"Webhook-Id", kSampleId},
          {"Webhook-Timestamp", std::to_string(timestamp)},
          {"Webhook-Signature", signature}};
}

constexpr int64_t kSampleNowMs = kSampleTimestamp * 1000 + 2000;

TEST(StandardWebhooksTest, SpecificationSampleIsValid) {
  const auto outcome = verifyStandardWebhooks(sampleHook(), sampleHeaders(kSampleSignature),
                                              kSampleBody, kSampleNowMs);
  EXPECT_EQ(outcome.verdict, store::Verdict::kValid) << outcome.message;
  EXPECT_EQ(outcome.reason, ANM_REASON_OK);
  EXPECT_EQ(outcome.deliveryId, kSampleId);
}

TEST(StandardWebhooksTest, SignatureHelperMatchesTheSample) {
  EXPECT_EQ(standardWebhooksSignature(kSampleSecret, kSampleId, kSampleTimestamp, kSampleBody),
            kSampleSignature);
}

TEST(StandardWebhooksTest, NewSecretsHavePrefixAnd32RandomBytes) {
  const std::string a = newSigningSecret();
  const std::string b = newSigningSecret();
  ASSERT_EQ(a.rfind("whsec_", 0), 0u);
  EXPECT_EQ(a.size(), 6u + 44u);  // base64 of 32 bytes
  EXPECT_NE(a, b);
}

TEST(StandardWebhooksTest, OtherVersionsAreIgnoredAndAnyV1EntryMayMatch) {
  const std::string header =
      std::string("v1a,AAAA v1,") + std::string(43, 'A') + "= " + kSampleSignature;
  const auto outcome =
      verifyStandardWebhooks(sampleHook(), sampleHeaders(header), kSampleBody, kSampleNowMs);
  EXPECT_EQ(outcome.verdict, store::Verdict::kValid) << outcome.message;
}

TEST(StandardWebhooksTest, OnlyOtherVersionsIsAlgorithmRefused) {
  const auto outcome = verifyStandardWebhooks(sampleHook(), sampleHeaders("v1a,AAAA v2,BBBB"),
                                              kSampleBody, kSampleNowMs);
  EXPECT_EQ(outcome.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(outcome.reason, ANM_REASON_ALGORITHM_REFUSED);
}

TEST(StandardWebhooksTest, ChangedBodyAndWrongSecretAreMismatches) {
  auto outcome = verifyStandardWebhooks(sampleHook(), sampleHeaders(kSampleSignature),
                                        R"({"test": 2432232315})", kSampleNowMs);
  EXPECT_EQ(outcome.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(outcome.reason, ANM_REASON_SIGNATURE_MISMATCH);

  store::HookRecord other = sampleHook();
  other.signingSecret = newSigningSecret();
  outcome =
      verifyStandardWebhooks(other, sampleHeaders(kSampleSignature), kSampleBody, kSampleNowMs);
  EXPECT_EQ(outcome.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST(StandardWebhooksTest, TimestampWindowFollowsTolerance) {
  store::HookRecord hook = sampleHook();

  // -1 means 300 s either way.
  const int64_t late = kSampleTimestamp * 1000 + 301 * 1000;
  auto outcome = verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody, late);
  EXPECT_EQ(outcome.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  const int64_t early = kSampleTimestamp * 1000 - 301 * 1000;
  outcome = verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody, early);
  EXPECT_EQ(outcome.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  const int64_t inside = kSampleTimestamp * 1000 + 299 * 1000;
  outcome = verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody, inside);
  EXPECT_EQ(outcome.verdict, store::Verdict::kValid);

  // 0 turns the window off; a number sets it.
  hook.toleranceS = 0;
  outcome = verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody,
                                   kSampleNowMs + 86400000LL * 365);
  EXPECT_EQ(outcome.verdict, store::Verdict::kValid);
  hook.toleranceS = 10;
  outcome = verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody,
                                   kSampleTimestamp * 1000 + 11000);
  EXPECT_EQ(outcome.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
}

TEST(StandardWebhooksTest, MissingAndMalformedHeadersHaveTheirReasons) {
  const store::HookRecord hook = sampleHook();
  std::vector<store::Header> headers = {{"webhook-id", kSampleId},
                                        {"webhook-timestamp", std::to_string(kSampleTimestamp)}};
  EXPECT_EQ(verifyStandardWebhooks(hook, headers, kSampleBody, kSampleNowMs).reason,
            ANM_REASON_HEADER_MISSING);

  headers = {{"webhook-timestamp", std::to_string(kSampleTimestamp)},
             {"webhook-signature", kSampleSignature}};
  EXPECT_EQ(verifyStandardWebhooks(hook, headers, kSampleBody, kSampleNowMs).reason,
            ANM_REASON_HEADER_MISSING);

  headers = {{"webhook-id", kSampleId}, {"webhook-signature", kSampleSignature}};
  EXPECT_EQ(verifyStandardWebhooks(hook, headers, kSampleBody, kSampleNowMs).reason,
            ANM_REASON_TIMESTAMP_MISSING);

  headers = sampleHeaders(kSampleSignature);
  headers[1].value = "16142653x0";
  EXPECT_EQ(verifyStandardWebhooks(hook, headers, kSampleBody, kSampleNowMs).reason,
            ANM_REASON_HEADER_MALFORMED);

  EXPECT_EQ(
      verifyStandardWebhooks(hook, sampleHeaders("nocomma"), kSampleBody, kSampleNowMs).reason,
      ANM_REASON_HEADER_MALFORMED);

  headers = sampleHeaders(kSampleSignature);
  headers.push_back({"webhook-id", "msg_other"});
  EXPECT_EQ(verifyStandardWebhooks(hook, headers, kSampleBody, kSampleNowMs).reason,
            ANM_REASON_HEADER_MALFORMED);
}

TEST(StandardWebhooksTest, TooManySignatureEntriesAreMalformed) {
  std::string header;
  for (size_t i = 0; i <= kMaxSignatureEntries; ++i) header += "v1,AAAA ";
  EXPECT_EQ(
      verifyStandardWebhooks(sampleHook(), sampleHeaders(header), kSampleBody, kSampleNowMs).reason,
      ANM_REASON_HEADER_MALFORMED);

  // At the limit the entries are all checked, and the last one may be the match.
  header.clear();
  for (size_t i = 0; i + 1 < kMaxSignatureEntries; ++i) header += "v1,AAAA ";
  header += kSampleSignature;
  EXPECT_EQ(verifyStandardWebhooks(sampleHook(), sampleHeaders(header), kSampleBody, kSampleNowMs)
                .verdict,
            store::Verdict::kValid);
}

TEST(StandardWebhooksTest, PreviousSecretVerifiesUntilItsEnd) {
  store::HookRecord hook = sampleHook();
  hook.previousSigningSecret = kSampleSecret;
  hook.signingSecret = newSigningSecret();
  hook.previousValidUntilMs = kSampleNowMs + 1;
  EXPECT_EQ(verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody, kSampleNowMs)
                .verdict,
            store::Verdict::kValid);

  hook.previousValidUntilMs = kSampleNowMs;
  EXPECT_EQ(verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody, kSampleNowMs)
                .reason,
            ANM_REASON_SIGNATURE_MISMATCH);
}

TEST(StandardWebhooksTest, NoSecretIsSecretMissing) {
  store::HookRecord hook = sampleHook();
  hook.signingSecret.clear();
  EXPECT_EQ(verifyStandardWebhooks(hook, sampleHeaders(kSampleSignature), kSampleBody, kSampleNowMs)
                .reason,
            ANM_REASON_SECRET_MISSING);
}

TEST(StandardWebhooksTest, EventTypeComesFromTheBodyAndSignedWithOwnKey) {
  // A fresh secret, signed independently of the edge's code.
  const std::string keyBytes(32, '\x5a');
  const std::string secret =
      "whsec_" + base64(reinterpret_cast<const unsigned char*>(keyBytes.data()), keyBytes.size());
  store::HookRecord hook = sampleHook();
  hook.signingSecret = secret;
  const std::string body = R"({"type":"invoice.paid","data":{}})";
  const int64_t ts = 1700000000;
  const std::string signature =
      senderSignature(keyBytes, "msg_1." + std::to_string(ts) + "." + body);
  std::vector<store::Header> headers = {{"webhook-id", "msg_1"},
                                        {"webhook-timestamp", std::to_string(ts)},
                                        {"webhook-signature", signature}};
  const auto outcome = verifyStandardWebhooks(hook, headers, body, ts * 1000);
  EXPECT_EQ(outcome.verdict, store::Verdict::kValid) << outcome.message;
  EXPECT_EQ(outcome.eventType, "invoice.paid");
  EXPECT_EQ(outcome.deliveryId, "msg_1");
}

}  // namespace
}  // namespace anm::edge
