// tests/unit/edge/raw_head_test.cpp: arrival-order header parsing and its consistency check.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/raw_head.h"

#include <Poco/Net/MessageHeader.h>
#include <gtest/gtest.h>

namespace anm::edge {
namespace {

using Fields = std::vector<store::Header>;
constexpr const char* kLine = "POST /h/x HTTP/1.1";

TEST(RawHeadTest, KeepsInterleavedRepeatsInArrivalOrderAndTrimsValues) {
  const auto head =
      parseRawHead("POST /h/x HTTP/1.1\r\nX-A: 1\r\nX-B:2\r\nx-a: \t3 \r\n\r\n", kLine);
  ASSERT_EQ(head.status, RawHead::Status::kOk) << head.reason;
  EXPECT_EQ(head.headers, (Fields{{"X-A", "1"}, {"X-B", "2"}, {"x-a", "3"}}));
}

TEST(RawHeadTest, AcceptsBareLineFeeds) {
  const auto head = parseRawHead("POST /h/x HTTP/1.1\nA: 1\n\n", kLine);
  ASSERT_EQ(head.status, RawHead::Status::kOk);
  EXPECT_EQ(head.headers, (Fields{{"A", "1"}}));
}

TEST(RawHeadTest, RefusesFoldsMissingColonsAndSpaceBeforeColon) {
  EXPECT_EQ(parseRawHead("POST /h/x HTTP/1.1\r\nA: 1\r\n 2\r\n\r\n", kLine).status,
            RawHead::Status::kRefused);
  EXPECT_EQ(parseRawHead("POST /h/x HTTP/1.1\r\nnocolon\r\n\r\n", kLine).status,
            RawHead::Status::kRefused);
  EXPECT_EQ(parseRawHead("POST /h/x HTTP/1.1\r\nA : 1\r\n\r\n", kLine).status,
            RawHead::Status::kRefused);
  EXPECT_EQ(parseRawHead("POST /h/x HTTP/1.1\r\n: 1\r\n\r\n", kLine).status,
            RawHead::Status::kRefused);
}

TEST(RawHeadTest, HeadOfAnotherRequestIsUnavailableNotRefused) {
  // Bytes of an earlier pipelined request must never cause a refusal of this one.
  EXPECT_EQ(parseRawHead("GET /other HTTP/1.1\r\n bad\r\n\r\n", kLine).status,
            RawHead::Status::kUnavailable);
  EXPECT_EQ(parseRawHead("", kLine).status, RawHead::Status::kUnavailable);
  EXPECT_EQ(parseRawHead("POST /h/x HTTP/1.1\r\nA: 1\r\n", kLine).status,
            RawHead::Status::kUnavailable);
}

TEST(RawHeadTest, SameFieldsComparesAsMultisets) {
  Poco::Net::MessageHeader parsed;
  parsed.add("X-A", "1");
  parsed.add("X-B", "2");
  parsed.add("X-A", "3");
  EXPECT_TRUE(sameFields(Fields{{"X-A", "1"}, {"X-B", "2"}, {"X-A", "3"}}, parsed));
  EXPECT_FALSE(sameFields(Fields{{"X-A", "1"}, {"X-B", "2"}}, parsed));
  EXPECT_FALSE(sameFields(Fields{{"X-A", "1"}, {"X-B", "2"}, {"X-A", "4"}}, parsed));
  EXPECT_FALSE(sameFields(Fields{{"X-A", "1"}, {"x-b", "2"}, {"X-A", "3"}}, parsed));
}

TEST(RawHeadTest, SameFieldsAcceptsPocosDecodingOfEncodedWords) {
  Poco::Net::MessageHeader parsed;
  const std::string raw = "=?UTF-8?Q?caf=C3=A9?=";
  parsed.add("Subject", Poco::Net::MessageHeader::decodeWord(raw));
  EXPECT_TRUE(sameFields(Fields{{"Subject", raw}}, parsed));
}

TEST(RawHeadTest, RefusesNamesThatAreNotTokensAndNamesTheField) {
  for (const std::string bad : {"X(A)", "X/A", "X\"A", "X\x01", "Caf\xc3\xa9", "X\x7f"}) {
    const auto head = parseRawHead("POST /h/x HTTP/1.1\r\n" + bad + ": 1\r\n\r\n", kLine);
    EXPECT_EQ(head.status, RawHead::Status::kRefused) << quoteForMessage(bad);
    EXPECT_NE(head.reason.find(quoteForMessage(bad)), std::string::npos) << head.reason;
  }
  const auto ok = parseRawHead("POST /h/x HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: 1\r\n\r\n", kLine);
  EXPECT_EQ(ok.status, RawHead::Status::kOk) << ok.reason;
}

TEST(RawHeadTest, RefusesControlsInValuesButKeepsTabsAndObsText) {
  for (const std::string& bad :
       {std::string("a\0b", 3), std::string("a\rb"), std::string("a\x01"), std::string("a\x7f")}) {
    const auto head = parseRawHead("POST /h/x HTTP/1.1\r\nX-Bad: " + bad + "\r\n\r\n", kLine);
    EXPECT_EQ(head.status, RawHead::Status::kRefused) << quoteForMessage(bad);
    EXPECT_NE(head.reason.find("\"X-Bad\""), std::string::npos) << head.reason;
  }
  const auto head = parseRawHead("POST /h/x HTTP/1.1\r\nX-Ok: a\tb \xff\x80\r\n\r\n", kLine);
  ASSERT_EQ(head.status, RawHead::Status::kOk) << head.reason;
  EXPECT_EQ(head.headers, (Fields{{"X-Ok", "a\tb \xff\x80"}}));
}

TEST(RawHeadTest, FieldRefusalChecksParsedFieldsToo) {
  EXPECT_EQ(fieldRefusal(Fields{{"A", "1"}, {"B", "x\ty\x80"}}), "");
  EXPECT_NE(fieldRefusal(Fields{{"A", "1"}, {"B", std::string("\0", 1)}}).find("\"B\""),
            std::string::npos);
  EXPECT_NE(fieldRefusal(Fields{{"A B", "1"}}).find("\"A B\""), std::string::npos);
  EXPECT_NE(fieldRefusal(Fields{{"", "1"}}), "");
}

TEST(RawHeadTest, HeadFieldRefusalFindsABareCarriageReturn) {
  EXPECT_NE(headFieldRefusal("POST /h/x HTTP/1.1\r\nA: 1\r\nX-Cr: a\rb\r\n\r\n").find("\"X-Cr\""),
            std::string::npos);
  EXPECT_EQ(
      headFieldRefusal("POST /h/x HTTP/1.1\r\nA: 1\r\nB: " + std::string(9000, 'v') + "\r\n\r\n"),
      "");
  EXPECT_EQ(headFieldRefusal(""), "");
}

TEST(RawHeadTest, QuotingEscapesAndCutsAtTheLimit) {
  EXPECT_EQ(quoteForMessage("a\"b\\c\x01\xff"), "\"a\\\"b\\\\c\\x01\\xff\"");
  const std::string quoted = quoteForMessage(std::string(100, 'n'));
  EXPECT_EQ(quoted, "\"" + std::string(kMaxQuotedNameBytes, 'n') + "\"...");
}

TEST(RawHeadTest, TargetMustBeVisibleAsciiInTheRawLine) {
  EXPECT_TRUE(isVisibleAscii("/h/x/a%FF?q=%20"));
  EXPECT_FALSE(isVisibleAscii("/h/x\x80"));
  EXPECT_FALSE(isVisibleAscii("/h/x\x7f"));
  EXPECT_FALSE(isVisibleAscii("/h/\x01"));

  // POCO drops 0xFF, so its view of the target looks clean; the raw line shows the byte.
  const std::string raw = "POST /h/x\xffy HTTP/1.1\r\nA: 1\r\n\r\n";
  EXPECT_FALSE(targetAcceptable(raw, "POST /h/xy HTTP/1.1", "/h/xy"));
  EXPECT_TRUE(targetAcceptable("POST /h/xy HTTP/1.1\r\n\r\n", "POST /h/xy HTTP/1.1", "/h/xy"));
  EXPECT_TRUE(targetAcceptable("", "POST /h/xy HTTP/1.1", "/h/xy"));
  EXPECT_FALSE(targetAcceptable("", "POST /h/x\x80 HTTP/1.1", "/h/x\x80"));

  // A head of another request says nothing about this one.
  EXPECT_TRUE(targetAcceptable("GET /other\x80 HTTP/1.1\r\n\r\n", "POST /h/xy HTTP/1.1", "/h/xy"));
}

TEST(RawHeadTest, SameFieldsIgnoresTheFFBytesPocoDrops) {
  Poco::Net::MessageHeader parsed;
  parsed.add("X-A", "ab");
  EXPECT_TRUE(sameFields(Fields{{"X-A",
                                 "a\xff"
                                 "b"}},
                         parsed));
  EXPECT_FALSE(sameFields(Fields{{"X-A",
                                  "a\xfe"
                                  "b"}},
                          parsed));
}

}  // namespace
}  // namespace anm::edge
