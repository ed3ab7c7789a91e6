// tests/plugins/shopify_test.cpp: the shopify plugin, loaded through the plugin host.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugin_test_support.h"

namespace anm::plugin::test {
namespace {

// Shopify publishes no fixed secret/body/signature triple, so every expected value here is
// computed with OpenSSL from the scheme in Shopify's webhook verification docs (shopify.dev):
// base64 of HMAC-SHA256 of the raw body under the app's client secret.
constexpr char kProvider[] = "shopify";
constexpr char kSecret[] = "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";
constexpr int64_t kNowMs = 1733270400000;
const std::string kBody = R"({"id":820982911946154508,"email":"jon@example.com","closed_at":null})";

std::vector<store::Header> headersWith(const std::string& hmac) {
  return {{"Content-Type", "application/json"},
          {"X-Shopify-Topic", "orders/create"},
          {"X-Shopify-Hmac-Sha256", hmac},
          {"X-Shopify-Shop-Domain", "example.myshopify.com"},
          {"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
          {"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"}};
}

class ShopifyTest : public PluginTest {};

TEST_F(ShopifyTest, ValidSignatureNamesTopicAndWebhookId) {
  Outcome out = verify(makeHook(kProvider, kSecret), headersWith(hmacSha256Base64(kSecret, kBody)),
                       kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.reason, ANM_REASON_OK);
  EXPECT_EQ(out.eventType, "orders/create");
  EXPECT_EQ(out.deliveryId, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
}

TEST_F(ShopifyTest, DeliveryIdFallsBackToEventId) {
  std::vector<store::Header> headers = {
      {"X-Shopify-Topic", "products/update"},
      {"X-Shopify-Hmac-Sha256", hmacSha256Base64(kSecret, kBody)},
      {"X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "products/update");
  EXPECT_EQ(out.deliveryId, "98880550-7158-44d4-b7cd-2c97c8a091b5");
}

TEST_F(ShopifyTest, TamperedBodyIsMismatch) {
  std::string tampered = kBody;
  tampered.replace(tampered.find("jon@"), 4, "eve@");

  Outcome out = verify(makeHook(kProvider, kSecret), headersWith(hmacSha256Base64(kSecret, kBody)),
                       tampered, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(out.message, "X-Shopify-Hmac-Sha256 does not match the secret");
}

TEST_F(ShopifyTest, WrongSecretIsMismatch) {
  Outcome out = verify(makeHook(kProvider, "shpss_other"),
                       headersWith(hmacSha256Base64(kSecret, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(ShopifyTest, MissingHeaderIsHeaderMissing) {
  std::vector<store::Header> headers = {{"X-Shopify-Topic", "orders/create"}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(out.message, "no X-Shopify-Hmac-Sha256 header");
  EXPECT_EQ(out.eventType, "orders/create");
}

TEST_F(ShopifyTest, MalformedHeadersAreMalformed) {
  std::string good = hmacSha256Base64(kSecret, kBody);
  std::string unpadded = good.substr(0, good.size() - 1);
  std::string badChars = good;
  badChars[5] = '*';
  std::string shortDigest = toBase64(hmacRaw(EVP_sha256(), kSecret, kBody).substr(0, 31));

  for (const std::string& value : {std::string(), unpadded, badChars, shortDigest,
                                   hmacSha256Hex(kSecret, kBody), "sha256=" + good}) {
    Outcome out = verify(makeHook(kProvider, kSecret), headersWith(value), kBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kInvalid) << value;
    EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED) << value << ": " << out.message;
  }
}

TEST_F(ShopifyTest, EmptyHeaderSaysSo) {
  Outcome out = verify(makeHook(kProvider, kSecret), headersWith(""), kBody, kNowMs);

  EXPECT_EQ(out.message, "X-Shopify-Hmac-Sha256 is empty");
}

TEST_F(ShopifyTest, MissingSecretIsSecretMissing) {
  Outcome out =
      verify(makeHook(kProvider, ""), headersWith(hmacSha256Base64(kSecret, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SECRET_MISSING);
}

TEST_F(ShopifyTest, BinaryBodyIsVerifiedByteForByte) {
  std::string body("\x00\x01\xff\xfe{\"a\":1}\r\n", 13);

  EXPECT_EQ(verify(makeHook(kProvider, kSecret), headersWith(hmacSha256Base64(kSecret, body)), body,
                   kNowMs)
                .verdict,
            store::Verdict::kValid);
  EXPECT_EQ(verify(makeHook(kProvider, kSecret), headersWith(hmacSha256Base64(kSecret, body)),
                   body.substr(1), kNowMs)
                .reason,
            ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(ShopifyTest, CheckSettingsRefusesOptions) {
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"api_version", "2024-10"}})),
            "unknown option \"api_version\"; shopify takes no options");
  EXPECT_NE(checkSettings(makeHook(kProvider, kSecret, -2)), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret)), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, 0)), "");
}

}  // namespace
}  // namespace anm::plugin::test
