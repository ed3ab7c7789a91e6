// tests/unit/diagnosis/signing.h: signatures made the way each sender makes them, for the tests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace anm::diagnosis::test {

/// The raw HMAC-SHA256 of `message` under `key`, made with OpenSSL's one-shot HMAC.
std::string hmacSha256(std::string_view key, std::string_view message);

std::string hex(std::string_view bytes);
std::string base64(std::string_view bytes);

/// Stripe-Signature for `body` signed at `t` with the whole whsec_ secret.
std::string stripeSignature(std::string_view secret, int64_t t, std::string_view body);

/// The Standard Webhooks specification's sample: this secret, id, timestamp and body are signed
/// "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".
inline constexpr char kSampleSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
inline constexpr char kSampleId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
inline constexpr int64_t kSampleTimestamp = 1614265330;
inline constexpr char kSampleBody[] = R"({"test": 2432232314})";
inline constexpr char kSampleSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

}  // namespace anm::diagnosis::test
