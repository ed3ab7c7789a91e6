// tests/unit/diagnosis/safe_text_test.cpp: untrusted bytes made safe to quote, in JSON and HTML.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/safe_text.h"

#include <gtest/gtest.h>

#include <string>

namespace anm::diagnosis {
namespace {

const std::string kFffd(kReplacement);

TEST(SafeTextTest, KeepsValidTextAsItIs) {
  EXPECT_EQ(sanitizeText("plain ascii", false), "plain ascii");
  EXPECT_EQ(sanitizeText("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", false),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(sanitizeText("two\nlines\tand tab\r", false), "two\nlines\tand tab\r");
}

TEST(SafeTextTest, ReplacesEachBadByte) {
  // A lone continuation byte, a truncated sequence, an invalid lead byte.
  EXPECT_EQ(sanitizeText("a\x80z", false), "a" + kFffd + "z");
  EXPECT_EQ(sanitizeText("a\xE2\x82", false), "a" + kFffd + kFffd);
  EXPECT_EQ(sanitizeText("\xFF\xFE", false), kFffd + kFffd);

  // Overlong forms, surrogates and code points past U+10FFFF are refused byte by byte.
  EXPECT_EQ(sanitizeText("\xC0\xAF", false), kFffd + kFffd);
  EXPECT_EQ(sanitizeText("\xE0\x80\xAF", false), kFffd + kFffd + kFffd);
  EXPECT_EQ(sanitizeText("\xED\xA0\x80", false), kFffd + kFffd + kFffd);
  EXPECT_EQ(sanitizeText("\xF4\x90\x80\x80", false), kFffd + kFffd + kFffd + kFffd);
}

TEST(SafeTextTest, ReplacesControlsAndBidiOverrides) {
  EXPECT_EQ(sanitizeText(std::string("a\0b", 3), false), "a" + kFffd + "b");
  EXPECT_EQ(sanitizeText("\x1B[31mred", false), kFffd + "[31mred");
  EXPECT_EQ(sanitizeText("del\x7F", false), "del" + kFffd);
  EXPECT_EQ(sanitizeText("c1\xC2\x85", false), "c1" + kFffd);
  EXPECT_EQ(sanitizeText("evil\xE2\x80\xAEgpj.exe", false), "evil" + kFffd + "gpj.exe");
  EXPECT_EQ(sanitizeText("\xE2\x81\xA6x\xE2\x81\xA9", false), kFffd + "x" + kFffd);
}

TEST(SafeTextTest, OneLineTurnsBreaksIntoSpaces) {
  EXPECT_EQ(sanitizeText("a\r\nb\tc", true), "a  b c");
}

TEST(SafeTextTest, QuoteCutsAtTheLimitWithoutSplittingCharacters) {
  EXPECT_EQ(quoteUntrusted("short", 10), "short");
  EXPECT_EQ(quoteUntrusted("exactly10!", 10), "exactly10!");
  EXPECT_EQ(quoteUntrusted("exactly10!x", 10), "exactly10!" + std::string(kEllipsis));

  // "é" is two bytes: a limit of 2 fits "a" only, never half of "é".
  EXPECT_EQ(quoteUntrusted("a\xC3\xA9z", 2), "a" + std::string(kEllipsis));

  // A replacement character counts with its three bytes.
  EXPECT_EQ(quoteUntrusted("\x80\x80", 4), kFffd + std::string(kEllipsis));
  EXPECT_EQ(quoteUntrusted("line\nbreak", 100), "line break");
  EXPECT_EQ(quoteUntrusted("anything", 0), std::string(kEllipsis));
  EXPECT_EQ(quoteUntrusted("", 0), "");
}

TEST(SafeTextTest, JsonStringsEscapeWhatJsonAndHtmlNeed) {
  std::string out;
  appendJsonString(out, "q\"b\\s/\n\t\r<a>&\x01");
  EXPECT_EQ(out, R"("q\"b\\s/\n\u0009\u000d\u003ca\u003e\u0026)" + kFffd + "\"");

  out.clear();
  appendJsonString(out, "bad\xFF");
  EXPECT_EQ(out, "\"bad" + kFffd + "\"");
}

TEST(SafeTextTest, HtmlTextEscapesMarkupAndQuotes) {
  std::string out;
  appendHtmlText(out, "<script>alert('x')</script> & \"q\"");
  EXPECT_EQ(out, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");

  out.clear();
  appendHtmlText(out, "\xC0<");
  EXPECT_EQ(out, kFffd + "&lt;");
}

}  // namespace
}  // namespace anm::diagnosis
