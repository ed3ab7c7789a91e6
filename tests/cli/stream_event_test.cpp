// tests/cli/stream_event_test.cpp: envelope decoding and base64 in both directions.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/stream_event.h"

#include <gtest/gtest.h>

#include "cli/src/event_output.h"

namespace anm::cli {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    std::string decoded;
    ASSERT_TRUE(decodeBase64(encoded, decoded)) << encoded;
    EXPECT_EQ(decoded, plain);
    EXPECT_EQ(encodeBase64(plain), encoded);
  }
}

TEST(Base64Test, RejectsMalformedInput) {
  std::string out;
  for (const char* bad : {"Zg", "Zg=", "Z===", "Zm9v\n", "Zm9v YmFy", "Zg==Zg==", "Zm9*"}) {
    EXPECT_FALSE(decodeBase64(bad, out)) << bad;
  }
}

TEST(Base64Test, AllByteValuesRoundTrip) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  std::string decoded;
  ASSERT_TRUE(decodeBase64(encodeBase64(bytes), decoded));
  EXPECT_EQ(decoded, bytes);
}

TEST(StreamEventTest, ParsesTheEnvelopeOfTheProtocol) {
  const std::string json =
      R"({"id":17,"hook":"h","received_at_ms":5,"method":"POST","path":"/x","query":"a=1",)"
      R"("headers":[["X-A","1"],["x-b","2"],["X-A","3"]],"body_base64":"AP8=",)"
      R"("verdict":"valid","reason":"ok","event_type":"t.e","delivery_id":"d","replay_of":4})";
  StreamEvent event;
  std::string error;
  ASSERT_TRUE(parseStreamEvent(json, event, error)) << error;
  EXPECT_EQ(event.id, 17);
  EXPECT_EQ(event.request.method, "POST");
  EXPECT_EQ(event.request.pathSuffix, "/x");
  EXPECT_EQ(event.request.rawQuery, "a=1");
  ASSERT_EQ(event.request.headers.size(), 3u);
  EXPECT_EQ(event.request.headers[1].name, "x-b");
  EXPECT_EQ(event.request.headers[2].value, "3");
  EXPECT_EQ(event.request.body, std::string("\0\xff", 2));
  EXPECT_EQ(event.eventType, "t.e");
  EXPECT_EQ(event.replayOf, 4);
}

TEST(StreamEventTest, DecodesBase64EncodedHeaderBytes) {
  // "\xff\xfe" in a value, and a name that is not UTF-8 either.
  const std::string json =
      R"({"id":1,"method":"POST","headers":[["X-Bin","//4=","b64"],["/3g=","eQ==","b64name"],)"
      R"(["Plain","v"]],"body_base64":""})";
  StreamEvent event;
  std::string error;
  ASSERT_TRUE(parseStreamEvent(json, event, error)) << error;
  ASSERT_EQ(event.request.headers.size(), 3u);
  EXPECT_EQ(event.request.headers[0].name, "X-Bin");
  EXPECT_EQ(event.request.headers[0].value, "\xff\xfe");
  EXPECT_EQ(event.request.headers[1].name, "\xffx");
  EXPECT_EQ(event.request.headers[1].value, "y");
  EXPECT_EQ(event.request.headers[2].value, "v");
  EXPECT_FALSE(
      parseStreamEvent(R"({"id":1,"method":"POST","headers":[["X","v","rot13"]]})", event, error));
  EXPECT_FALSE(
      parseStreamEvent(R"({"id":1,"method":"POST","headers":[["X","!","b64"]]})", event, error));
}

// Every byte from 0x80 to 0xff, none of which may stand alone in UTF-8.
std::string highBytes() {
  std::string bytes;
  for (int c = 0x80; c <= 0xff; ++c) bytes.push_back(static_cast<char>(c));
  return bytes;
}

TEST(StreamEventTest, RawPathAndQueryComeFromTheirBase64FormsWhenPresent) {
  const std::string path = "/raw/" + highBytes();
  const std::string query = "q=" + highBytes();
  const std::string json = R"({"id":3,"method":"POST","path":"/raw/\ufffd","query":"q=\ufffd",)"
                           R"("path_b64":")" +
                           encodeBase64(path) + R"(","query_b64":")" + encodeBase64(query) +
                           R"(","body_base64":""})";
  StreamEvent event;
  std::string error;
  ASSERT_TRUE(parseStreamEvent(json, event, error)) << error;

  // The bytes to forward are the decoded ones; the display forms stay for printing only.
  EXPECT_EQ(event.request.pathSuffix, path);
  EXPECT_EQ(event.request.rawQuery, query);
  EXPECT_EQ(event.displayPath, "/raw/\xef\xbf\xbd");
  EXPECT_EQ(event.displayQuery, "q=\xef\xbf\xbd");
}

TEST(StreamEventTest, OnlyTheEncodedPartReplacesItsDisplayForm) {
  // A query that is UTF-8 needs no base64 form even when the path has one.
  const std::string json = R"({"id":3,"method":"GET","path":"/\ufffd","path_b64":"L/8=",)"
                           R"("query":"a=%FF&b=\u00e9","body_base64":""})";
  StreamEvent event;
  std::string error;
  ASSERT_TRUE(parseStreamEvent(json, event, error)) << error;
  EXPECT_EQ(event.request.pathSuffix, "/\xff");
  EXPECT_EQ(event.request.rawQuery, "a=%FF&b=\xc3\xa9");
}

TEST(StreamEventTest, MalformedPathOrQueryBase64IsRefusedWithAReason) {
  StreamEvent event;
  std::string error;
  EXPECT_FALSE(
      parseStreamEvent(R"({"id":1,"method":"POST","path":"/x","path_b64":"L3g"})", event, error));
  EXPECT_EQ(error, "path_b64 is not valid base64");
  EXPECT_FALSE(
      parseStreamEvent(R"({"id":1,"method":"POST","query":"x","query_b64":"*==="})", event, error));
  EXPECT_EQ(error, "query_b64 is not valid base64");
}

TEST(StreamEventTest, RejectsBrokenEnvelopes) {
  StreamEvent event;
  std::string error;
  EXPECT_FALSE(parseStreamEvent("{not json", event, error));
  EXPECT_FALSE(parseStreamEvent(R"({"method":"POST"})", event, error));
  EXPECT_FALSE(parseStreamEvent(R"({"id":1,"method":"POST","body_base64":"!!"})", event, error));
  EXPECT_FALSE(parseStreamEvent(R"({"id":1,"method":"POST","headers":[["a"]]})", event, error));
}

TEST(EventOutputTest, JsonQuoteKeepsLinesValid) {
  EXPECT_EQ(jsonQuote("a\"b\\c\n"), R"("a\"b\\c\u000a")");
  EXPECT_EQ(jsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(jsonQuote("\xff"), R"("\ufffd")");
}

}  // namespace
}  // namespace anm::cli
