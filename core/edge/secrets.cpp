// core/edge/secrets.cpp: random hook ids and relay tokens, and how tokens are checked.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <stdexcept>

namespace anm::edge {
namespace {

template <size_t N>
std::array<unsigned char, N> randomBytes() {
  std::array<unsigned char, N> bytes{};
  // Ids and tokens are capabilities: without the CSPRNG there is nothing safe to hand out.
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("could not read the random number generator");
  }
  return bytes;
}

std::string hex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string newHookId() {
  // 32 characters carry exactly 160 bits, so no random bit is left unused.
  return randomBase32(32);
}

std::string newRelayToken() {
  const auto bytes = randomBytes<32>();
  return hex(bytes.data(), bytes.size());
}

std::string randomBase32(size_t length) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  const std::string bytes = randomSecretBytes((length * 5 + 7) / 8);

  // The bytes are read as one bit string, five bits per character, most significant first.
  std::string out;
  out.reserve(length);
  uint32_t bits = 0;
  int held = 0;
  size_t next = 0;
  while (out.size() < length) {
    if (held < 5) {
      bits = (bits << 8) | static_cast<unsigned char>(bytes[next++]);
      held += 8;
    }
    held -= 5;
    out += kAlphabet[(bits >> held) & 0x1f];
  }
  return out;
}

std::string randomSecretBytes(size_t count) {
  std::string bytes(count, '\0');
  if (count == 0) return bytes;
  // Ids and tokens are capabilities: without the CSPRNG there is nothing safe to hand out.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1) {
    throw std::runtime_error("could not read the random number generator");
  }
  return bytes;
}

std::string sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("could not compute SHA-256");
  }
  return hex(digest, len);
}

std::optional<std::string_view> bearerToken(std::string_view header) {
  const auto isBlank = [](char c) { return c == ' ' || c == '\t'; };
  while (!header.empty() && isBlank(header.front())) header.remove_prefix(1);
  while (!header.empty() && isBlank(header.back())) header.remove_suffix(1);

  // The scheme, compared ASCII-case-insensitively, then at least one blank.
  static constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || !isBlank(header[kScheme.size()])) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = header[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kScheme[i]) return std::nullopt;
  }

  // What is left after the blanks is the token; a blank inside it means something else was
  // sent, which must not match by accident.
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && isBlank(token.front())) token.remove_prefix(1);
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    if (isBlank(c)) return std::nullopt;
  }
  return token;
}

bool tokenMatches(std::string_view token, std::string_view storedHash) {
  return equalConstantTime(sha256Hex(token), storedHash);
}

bool equalConstantTime(std::string_view a, std::string_view b) {
  // Lengths are no secret (keys and hashes have fixed ones); the bytes are.
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace anm::edge
