// tests/unit/edge/secrets_test.cpp: hook ids, relay tokens, the token check and constant-time
// comparison.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/secrets.h"

#include <gtest/gtest.h>

#include <set>

namespace anm::edge {
namespace {

TEST(SecretsTest, HookIdsAre32Base32CharactersAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = newHookId();
    ASSERT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567"), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(SecretsTest, TokensAre64HexCharacters) {
  const std::string token = newRelayToken();
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(token, newRelayToken());
}

TEST(SecretsTest, TokenMatchesOnlyItsOwnHash) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string token = newRelayToken();
  const std::string hash = sha256Hex(token);
  EXPECT_TRUE(tokenMatches(token, hash));
  EXPECT_FALSE(tokenMatches(token + "x", hash));
  EXPECT_FALSE(tokenMatches("", hash));
  EXPECT_FALSE(tokenMatches(token, hash.substr(1)));
}

TEST(SecretsTest, ConstantTimeEqualityComparesEveryByteAndTheLength) {
  const std::string key(32, '\x5a');
  EXPECT_TRUE(equalConstantTime(key, std::string(32, '\x5a')));
  EXPECT_TRUE(equalConstantTime("", ""));

  // A difference anywhere counts, the first byte and the last alike, and so does the length.
  for (const size_t at : {size_t{0}, size_t{15}, size_t{31}}) {
    std::string other = key;
    other[at] ^= 0x01;
    EXPECT_FALSE(equalConstantTime(key, other)) << "byte " << at;
  }
  EXPECT_FALSE(equalConstantTime(key, key.substr(0, 31)));
  EXPECT_FALSE(equalConstantTime(key, key + '\x5a'));
  EXPECT_FALSE(equalConstantTime(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(SecretsTest, BearerSchemeIgnoresCaseAndSurroundingBlanks) {
  for (const std::string header :
       {"Bearer abc", "bearer abc", "BEARER abc", "  BeArEr \t abc \t", "\tbearer\tabc"}) {
    const auto token = bearerToken(header);
    ASSERT_TRUE(token.has_value()) << header;
    EXPECT_EQ(*token, "abc") << header;
  }
  for (const std::string header :
       {"", "Bearer", "Bearer ", "Bearerabc", "Basic abc", "Bearer a b", "Bear abc",
        "Bearer\x0b"
        "abc"}) {
    EXPECT_FALSE(bearerToken(header).has_value()) << header;
  }
}

}  // namespace
}  // namespace anm::edge
