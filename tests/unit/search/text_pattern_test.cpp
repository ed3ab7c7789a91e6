// tests/unit/search/text_pattern_test.cpp: wildcard patterns and the case-insensitive search.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/text_pattern.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace anm::search {
namespace {

TextPattern whole(std::vector<std::string> parts) {
  return TextPattern(std::move(parts), PatternScope::kWhole);
}

TextPattern contains(std::vector<std::string> parts) {
  return TextPattern(std::move(parts), PatternScope::kContains);
}

TEST(Needle, FindsIgnoringAsciiCaseFromAnOffset) {
  const Needle needle("order");
  EXPECT_EQ(needle.findIn("New ORDER for Order", 0), 4u);
  EXPECT_EQ(needle.findIn("New ORDER for Order", 5), 14u);
  EXPECT_EQ(needle.findIn("New ORDER for Order", 15), std::string_view::npos);
  EXPECT_EQ(needle.findIn("ord", 0), std::string_view::npos);
  EXPECT_EQ(needle.findIn("", 0), std::string_view::npos);
  EXPECT_EQ(needle.findIn("order", 6), std::string_view::npos) << "an offset past the end";
}

TEST(Needle, OneByteAndRepeatingNeedles) {
  EXPECT_EQ(Needle("x").findIn("abcX", 0), 3u);
  EXPECT_EQ(Needle("aab").findIn("aaaaab", 0), 3u);
  EXPECT_EQ(Needle("abab").findIn("abaabababab", 0), 3u);
}

TEST(Needle, BytesAboveAsciiCompareExactly) {
  // 0xC3 0x84 is "Ä" and 0xC3 0xA4 "ä": only ASCII letters fold.
  const Needle needle("\xc3\xa4");
  EXPECT_EQ(needle.findIn("x\xc3\xa4y", 0), 1u);
  EXPECT_EQ(needle.findIn("x\xc3\x84y", 0), std::string_view::npos);
  EXPECT_EQ(Needle(std::string("\0\xff", 2)).findIn(std::string("ab\0\xff", 4), 0), 2u);
}

TEST(Needle, AgreesWithAPlainSearchOnRandomText) {
  // A small alphabet makes partial matches and shifts of every size common.
  std::mt19937 random(6);
  const std::string alphabet = "abAB\xff";
  for (int round = 0; round < 2000; ++round) {
    std::string haystack;
    std::string needle;
    for (int i = static_cast<int>(random() % 40); i > 0; --i) {
      haystack.push_back(alphabet[random() % alphabet.size()]);
    }
    for (int i = 1 + static_cast<int>(random() % 4); i > 0; --i) {
      needle.push_back(alphabet[random() % alphabet.size()]);
    }
    const std::string folded = foldAscii(needle);
    const std::string foldedHaystack = foldAscii(haystack);
    EXPECT_EQ(Needle(folded).findIn(haystack, 0), foldedHaystack.find(folded))
        << "needle " << needle << " in " << haystack;
  }
}

TEST(TextPattern, WholeValueWithoutWildcardIsEqualityIgnoringCase) {
  const TextPattern pattern = whole({"post"});
  EXPECT_TRUE(pattern.matches("POST"));
  EXPECT_TRUE(pattern.matches("post"));
  EXPECT_FALSE(pattern.matches("POSTS"));
  EXPECT_FALSE(pattern.matches("XPOST"));
  EXPECT_FALSE(pattern.matches(""));
  EXPECT_TRUE(whole({""}).matches(""));
  EXPECT_FALSE(whole({""}).matches("x"));
}

TEST(TextPattern, WholeValueWildcardsAnchorWhereNoStarIs) {
  EXPECT_TRUE(whole({"invoice.", ""}).matches("invoice.paid"));
  EXPECT_TRUE(whole({"invoice.", ""}).matches("invoice."));
  EXPECT_FALSE(whole({"invoice.", ""}).matches("xinvoice.paid"));
  EXPECT_TRUE(whole({"", ".paid"}).matches("invoice.paid"));
  EXPECT_FALSE(whole({"", ".paid"}).matches("invoice.paid.x"));
  EXPECT_TRUE(whole({"", "voice", ""}).matches("invoice.paid"));
  EXPECT_TRUE(whole({"a", "b", "c"}).matches("aXbYc"));
  EXPECT_TRUE(whole({"a", "b", "c"}).matches("abc"));
  EXPECT_FALSE(whole({"a", "b", "c"}).matches("acb"));
  EXPECT_FALSE(whole({"ab", "ba"}).matches("aba")) << "the ends must not overlap";
  EXPECT_TRUE(whole({"ab", "ba"}).matches("abba"));
}

TEST(TextPattern, ContainsFindsTheRunsInOrderAnywhere) {
  EXPECT_TRUE(contains({"order 42"}).matches("{\"text\":\"Order 42 shipped\"}"));
  EXPECT_FALSE(contains({"order 43"}).matches("order 42"));
  EXPECT_TRUE(contains({"foo", "bar"}).matches("xxFOOyyBARzz"));
  EXPECT_FALSE(contains({"foo", "bar"}).matches("barfoo"));
  EXPECT_TRUE(contains({""}).matches("")) << "the empty text is in every value";
}

TEST(TextPattern, ALoneStarMeansAValueIsThere) {
  EXPECT_TRUE(whole({"", ""}).isPresence());
  EXPECT_TRUE(whole({"", ""}).matches("x"));
  EXPECT_FALSE(whole({"", ""}).matches(""));
  EXPECT_TRUE(contains({"", "", ""}).isPresence());
  EXPECT_FALSE(whole({"a", ""}).isPresence());
}

}  // namespace
}  // namespace anm::search
