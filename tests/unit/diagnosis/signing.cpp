// tests/unit/diagnosis/signing.cpp: signatures made the way each sender makes them, for the tests.
// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/diagnosis/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace anm::diagnosis::test {

std::string hmacSha256(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  return std::string(reinterpret_cast<const char*>(mac), size);
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char byte : bytes) {
    out += kDigits[byte / 16];
    out += kDigits[byte % 16];
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string stripeSignature(std::string_view secret, int64_t t, std::string_view body) {
  const std::string timestamp = std::to_string(t);
  return "t=" + timestamp + ",v1=" + hex(hmacSha256(secret, timestamp + "." + std::string(body)));
}

}  // namespace anm::diagnosis::test
