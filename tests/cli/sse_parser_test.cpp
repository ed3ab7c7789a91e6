// tests/cli/sse_parser_test.cpp: the SSE parser on whole streams and on every split of them.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace anm::cli {
namespace {

struct Seen {
  std::string id;
  std::string type;
  std::string data;
  bool oversized;

  bool operator==(const Seen& other) const {
    return id == other.id && type == other.type && data == other.data &&
           oversized == other.oversized;
  }
};

std::ostream& operator<<(std::ostream& out, const Seen& seen) {
  return out << "{id=" << seen.id << " type=" << seen.type << " data=" << seen.data
             << " oversized=" << seen.oversized << "}";
}

std::vector<Seen> parsePieces(const std::vector<std::string>& pieces, SseParser& parser) {
  std::vector<Seen> seen;
  for (const std::string& piece : pieces) {
    parser.feed(piece.data(), piece.size(), [&](SseEvent& event) {
      seen.push_back({event.id, event.type, event.data, event.oversized});
      return true;
    });
  }
  return seen;
}

// A stream with every construct the parser has to handle, and what it must yield.
const std::string kStream =
    "\xEF\xBB\xBFretry: 1000\r\n"
    "\r\n"
    ": keep-alive\n"
    "\n"
    "id: 17\r\n"
    "event: webhook\r\n"
    "data: {\"a\":1,\r\n"
    "data:  \"b\":2}\r\n"
    "\r\n"
    "data:no space\n"
    "data\n"
    "unknown: field\n"
    ":comment in the middle\n"
    "\n"
    "id: 18\revent: webhook\rdata: cr only\r\r"
    "event: ignored\n"
    "\n"
    "id\n"
    "data: x: y\n\n";

const std::vector<Seen> kExpected = {
    {"17", "webhook", "{\"a\":1,\n \"b\":2}", false},
    {"17", "message", "no space\n", false},
    {"18", "webhook", "cr only", false},
    {"", "message", "x: y", false},
};

TEST(SseParserTest, ParsesAWholeStream) {
  SseParser parser;
  EXPECT_EQ(parsePieces({kStream}, parser), kExpected);
  EXPECT_EQ(parser.retryMs(), 1000);
}

TEST(SseParserTest, SameEventsWhenSplitAtEveryByteBoundary) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    SseParser parser;
    const auto seen = parsePieces({kStream.substr(0, cut), kStream.substr(cut)}, parser);
    EXPECT_EQ(seen, kExpected) << "cut at " << cut;
    EXPECT_EQ(parser.retryMs(), 1000) << "cut at " << cut;
  }
}

TEST(SseParserTest, SameEventsWhenFedOneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kStream) bytes.emplace_back(1, c);
  SseParser parser;
  EXPECT_EQ(parsePieces(bytes, parser), kExpected);
}

TEST(SseParserTest, SameEventsForEveryPairOfCuts) {
  // Three pieces catch state carried across two boundaries (CR at the end, then LF).
  for (size_t a = 0; a <= kStream.size(); a += 3) {
    for (size_t b = a; b <= kStream.size(); b += 5) {
      SseParser parser;
      const auto seen =
          parsePieces({kStream.substr(0, a), kStream.substr(a, b - a), kStream.substr(b)}, parser);
      ASSERT_EQ(seen, kExpected) << "cuts at " << a << " and " << b;
    }
  }
}

TEST(SseParserTest, IncompleteEventAtTheEndIsNotDispatched) {
  SseParser parser;
  EXPECT_TRUE(parsePieces({"id: 1\ndata: partial\n"}, parser).empty());
  EXPECT_EQ(parser.lastEventId(), "1");
}

TEST(SseParserTest, InvalidRetryIsIgnored) {
  SseParser parser;
  parsePieces({"retry: 12a\n\nretry:\n\n"}, parser);
  EXPECT_FALSE(parser.retryMs().has_value());
}

TEST(SseParserTest, OversizedEventIsFlaggedAndTheNextOneStillParses) {
  SseParser parser(16);
  const auto seen =
      parsePieces({"id: 1\ndata: 0123456789\ndata: 0123456789\n\nid: 2\ndata: small\n\n"}, parser);
  const std::vector<Seen> expected = {{"1", "message", "", true}, {"2", "message", "small", false}};
  EXPECT_EQ(seen, expected);
}

TEST(SseParserTest, OneHugeLineIsDroppedAsItStreamsBy) {
  SseParser parser(64);
  std::vector<std::string> pieces = {"id: 5\ndata: "};
  for (int i = 0; i < 100; ++i) pieces.push_back(std::string(1000, 'x'));
  pieces.push_back("\n\nid: 6\ndata: ok\n\n");
  const auto seen = parsePieces(pieces, parser);
  const std::vector<Seen> expected = {{"5", "message", "", true}, {"6", "message", "ok", false}};
  EXPECT_EQ(seen, expected);
}

// The default limit must hold the event of the largest body an edge may be configured to take
// (ingest.max_body_bytes up to 256 MiB, base64 in the event JSON), or a relay would skip
// webhooks its edge acknowledged.
TEST(SseParserTest, DefaultLimitHoldsTheLargestBodyAnEdgeAccepts) {
  constexpr size_t kLargestBody = size_t{256} << 20;
  EXPECT_GE(kDefaultMaxEventBytes, (kLargestBody + 2) / 3 * 4 + (size_t{1} << 20));

  // And a 40 MiB event, past the old 32 MiB default, comes through whole.
  SseParser parser;
  const std::string data(size_t{40} << 20, 'A');
  const std::string frame = "id: 5\ndata: " + data + "\n\n";
  const auto seen = parsePieces({frame}, parser);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_FALSE(seen[0].oversized);
  EXPECT_EQ(seen[0].data.size(), data.size());
}

TEST(SseParserTest, CallbackCanStopParsing) {
  SseParser parser;
  int calls = 0;
  const std::string text = "data: a\n\ndata: b\n\n";
  const bool finished = parser.feed(text.data(), text.size(), [&](SseEvent&) {
    ++calls;
    return false;
  });
  EXPECT_FALSE(finished);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace anm::cli
