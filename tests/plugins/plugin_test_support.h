// tests/plugins/plugin_test_support.h: loads one built provider module and signs test requests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anonymily/plugin.h"
#include "core/plugin/registry.h"
#include "core/store/store.h"

namespace anm::plugin::test {

// Expected signatures come from OpenSSL directly, never from the host services under test.
inline std::string hmacRaw(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const unsigned char* digest =
      HMAC(md, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  EXPECT_NE(digest, nullptr) << "OpenSSL HMAC failed";
  return std::string(reinterpret_cast<const char*>(out), len);
}

inline std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 0x0f]);
  }
  return hex;
}

inline std::string toBase64(std::string_view bytes) {
  std::string out(((bytes.size() + 2) / 3) * 4 + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

inline std::string hmacSha256Hex(std::string_view key, std::string_view data) {
  return toHex(hmacRaw(EVP_sha256(), key, data));
}

inline std::string hmacSha1Hex(std::string_view key, std::string_view data) {
  return toHex(hmacRaw(EVP_sha1(), key, data));
}

inline std::string hmacSha256Base64(std::string_view key, std::string_view data) {
  return toBase64(hmacRaw(EVP_sha256(), key, data));
}

inline store::HookRecord makeHook(std::string provider, std::string secret,
                                  int64_t toleranceS = ANM_TOLERANCE_DEFAULT,
                                  std::vector<std::pair<std::string, std::string>> options = {}) {
  store::HookRecord hook;
  hook.id = "h_test";
  hook.provider = std::move(provider);
  hook.secret = std::move(secret);
  hook.toleranceS = toleranceS;
  hook.options = std::move(options);
  return hook;
}

/// Loads the module named by ANM_TEST_PLUGIN_FILE once per test binary, through the real host.
class PluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = std::make_unique<Registry>();
    auto failure = registry_->loadFile(ANM_TEST_PLUGIN_FILE);
    ASSERT_FALSE(failure.has_value())
        << "could not load " << ANM_TEST_PLUGIN_FILE << ": " << (failure ? failure->reason : "");
  }

  static void TearDownTestSuite() { registry_.reset(); }

  static Outcome verify(const store::HookRecord& hook, const std::vector<store::Header>& headers,
                        std::string_view body, int64_t receivedAtMs) {
    RequestView request;
    request.hookId = hook.id;
    request.method = "POST";
    request.pathSuffix = "";
    request.rawQuery = "";
    request.headers = &headers;
    request.body = body;
    request.receivedAtMs = receivedAtMs;
    return registry_->verify(hook, request);
  }

  static std::string checkSettings(const store::HookRecord& hook) {
    return registry_->checkSettings(hook);
  }

  static inline std::unique_ptr<Registry> registry_;
};

}  // namespace anm::plugin::test
