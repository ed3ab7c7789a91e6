// tests/cli/event_output_test.cpp: the text a relay reports of a local server's answer.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/event_output.h"

#include <gtest/gtest.h>

#include <string>

namespace anm::cli {
namespace {

TEST(TextExcerpt, KeepsTextAndCutsAtACharactersEndWithinTheLimit) {
  EXPECT_EQ(textExcerpt("{\"error\":\"bad\"}\n", 512), "{\"error\":\"bad\"}\n");
  EXPECT_EQ(textExcerpt(std::string(600, 'a'), 512), std::string(512, 'a'));

  // Three-byte characters: 170 of them fill 510 bytes; the 171st would pass 512.
  std::string euros;
  for (int i = 0; i < 200; ++i) euros += "\xE2\x82\xAC";
  EXPECT_EQ(textExcerpt(euros, 512), euros.substr(0, 510));
}

TEST(TextExcerpt, BytesThatAreNotUtf8BecomeReplacementCharactersWithinTheLimit) {
  EXPECT_EQ(textExcerpt("a\xff"
                        "b",
                        512),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(textExcerpt("\xC0\xAF", 512), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(textExcerpt(std::string(600, '\xff'), 512).size(), 510u);
  EXPECT_EQ(textExcerpt(std::string("\0\x01", 2), 512), std::string("\0\x01", 2));
}

TEST(TextExcerpt, ACharacterCutByTheEndOfTheBytesIsLeftOut) {
  // The excerpt stopped inside a euro sign: it is dropped, not shown as U+FFFD.
  EXPECT_EQ(textExcerpt("ok \xE2\x82", 512), "ok ");
  EXPECT_EQ(textExcerpt("ok \xF0\x9F\x98", 512), "ok ");

  // A lead byte followed by something that cannot continue it is no cut: it is replaced.
  EXPECT_EQ(textExcerpt("ok \xE2"
                        "a",
                        512),
            "ok \xEF\xBF\xBD"
            "a");
}

}  // namespace
}  // namespace anm::cli
