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

}  // namespace
}  // namespace anm::edge
