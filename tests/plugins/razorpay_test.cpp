// tests/plugins/razorpay_test.cpp: the razorpay plugin, loaded through the plugin host.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "plugin_test_support.h"

namespace anm::plugin::test {
namespace {

// Razorpay publishes no fixed secret/body/signature triple, so every expected value here is
// computed with OpenSSL from the scheme in Razorpay's webhook validation docs
// (razorpay.com/docs): hex HMAC-SHA256 of the raw body under the webhook secret.
constexpr char kProvider[] = "razorpay";
constexpr char kSecret[] = "rzp_whsec_9c8b7a6f5e4d";
constexpr int64_t kNowMs = 1733270400000;

// A nested "event" member inside the payload must not be taken for the top-level one.
const std::string kBody =
    R"({"entity":"event","account_id":"acc_BFQ7uQEaa7j2z7","payload":{"payment":{"entity":)"
    R"({"id":"pay_DESlfW9H8K9uqM","event":"nested"}}},"event":"payment.captured",)"
    R"("contains":["payment"],"created_at":1567674606})";

std::vector<store::Header> headersWith(const std::string& signature) {
  return {{"Content-Type", "application/json"},
          {"X-Razorpay-Signature", signature},
          {"X-Razorpay-Event-Id", "KaDZcdCp8iPYGm"}};
}

class RazorpayTest : public PluginTest {};

TEST_F(RazorpayTest, ValidSignatureNamesEventAndId) {
  Outcome out = verify(makeHook(kProvider, kSecret), headersWith(hmacSha256Hex(kSecret, kBody)),
                       kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.reason, ANM_REASON_OK);
  EXPECT_EQ(out.eventType, "payment.captured");
  EXPECT_EQ(out.deliveryId, "KaDZcdCp8iPYGm");
}

TEST_F(RazorpayTest, UpperCaseHexIsAccepted) {
  std::string hex = hmacSha256Hex(kSecret, kBody);
  for (char& c : hex) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }

  Outcome out = verify(makeHook(kProvider, kSecret), headersWith(hex), kBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(RazorpayTest, TamperedBodyIsMismatch) {
  std::string tampered = kBody;
  tampered.replace(tampered.find("captured"), 8, "refunded");

  Outcome out = verify(makeHook(kProvider, kSecret), headersWith(hmacSha256Hex(kSecret, kBody)),
                       tampered, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(out.message, "X-Razorpay-Signature does not match the secret");
  EXPECT_EQ(out.eventType, "payment.refunded");
}

TEST_F(RazorpayTest, WrongSecretIsMismatch) {
  // The API key secret signs checkout callbacks, not webhooks: using it must fail.
  Outcome out = verify(makeHook(kProvider, "rzp_key_secret"),
                       headersWith(hmacSha256Hex(kSecret, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(RazorpayTest, MissingHeaderIsHeaderMissing) {
  std::vector<store::Header> headers = {{"X-Razorpay-Event-Id", "KaDZcdCp8iPYGm"}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(out.message, "no X-Razorpay-Signature header");
  EXPECT_EQ(out.deliveryId, "KaDZcdCp8iPYGm");
}

TEST_F(RazorpayTest, MalformedHeadersAreMalformed) {
  std::string hex = hmacSha256Hex(kSecret, kBody);
  std::string badHex = hex;
  badHex[63] = 'x';

  for (const std::string& value : {std::string(), badHex, hex.substr(0, 63), hex + "0",
                                   "sha256=" + hex, hmacSha256Base64(kSecret, kBody)}) {
    Outcome out = verify(makeHook(kProvider, kSecret), headersWith(value), kBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kInvalid) << value;
    EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED) << value << ": " << out.message;
  }
}

TEST_F(RazorpayTest, MissingSecretIsSecretMissing) {
  Outcome out =
      verify(makeHook(kProvider, ""), headersWith(hmacSha256Hex(kSecret, kBody)), kBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SECRET_MISSING);
}

TEST_F(RazorpayTest, CheckSettingsRefusesOptions) {
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"secret_base64", "x"}})),
            "unknown option \"secret_base64\"; razorpay takes no options");
  EXPECT_NE(checkSettings(makeHook(kProvider, kSecret, -3)), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret)), "");
}

}  // namespace
}  // namespace anm::plugin::test
