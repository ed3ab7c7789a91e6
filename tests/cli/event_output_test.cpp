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

TEST(PrintableText, EscapesWhatCouldDriveTheTerminalOrReorderTheLine) {
  // C0, DEL and bytes that are not UTF-8 as \xNN.
  EXPECT_EQ(printableText("a\x1b[2Jb\x07\x7f"), "a\\x1b[2Jb\\x07\\x7f");
  EXPECT_EQ(printableText("tab\there\r\n"), "tab\\x09here\\x0d\\x0a");
  EXPECT_EQ(printableText("bad \xff\xc3"), "bad \\xff\\xc3");

  // C1 controls and bidirectional controls as \uNNNN; other characters as they are.
  EXPECT_EQ(printableText("c1\xc2\x9b" "2J"), "c1\\u009b2J");
  EXPECT_EQ(printableText("\xe2\x80\xae" "evil\xe2\x81\xa6" "x\xe2\x80\x8f"),
            "\\u202eevil\\u2066x\\u200f");
  EXPECT_EQ(printableText("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(PrintableBody, KeepsLinesAndTabsButNotABareCarriageReturn) {
  EXPECT_EQ(printableBody("a=1\r\nb=2\n\tc"), "a=1\r\nb=2\n\tc");
  // A CR not followed by LF would send the cursor back over what was printed.
  EXPECT_EQ(printableBody("visible\rHIDDEN"), "visible\\x0dHIDDEN");
  EXPECT_EQ(printableBody("end\r"), "end\\x0d");
  EXPECT_EQ(printableBody("\x1b]0;title\x07\xc2\x9b"), "\\x1b]0;title\\x07\\u009b");
}

TEST(DisplayWidth, CountsTheColumnsATerminalGives) {
  EXPECT_EQ(displayWidth("abc"), 3u);
  EXPECT_EQ(displayWidth("\xe6\x97\xa5\xe6\x9c\xac"), 4u);           // two CJK ideographs
  EXPECT_EQ(displayWidth("e\xcc\x81"), 1u);                          // e and a combining acute
  EXPECT_EQ(displayWidth("\xf0\x9f\x98\x80!"), 3u);                  // an emoji, then "!"
  EXPECT_EQ(displayWidth("\xf0\x9f\x9a\x80\xe2\x98\x95"), 4u);          // a rocket and a hot drink
  EXPECT_EQ(displayWidth(printableText("\x1b")), 4u);                 // shown as \x1b
}

}  // namespace
}  // namespace anm::cli
