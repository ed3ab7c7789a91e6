// tests/e2e/relay_delivery_test.cpp: webhooks travel provider -> edge -> relay -> local target
// byte for byte, whatever their body, headers, method, path and query look like.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "tests/e2e/relay_env.h"
#include "tests/e2e/support/digest.h"

namespace anm::e2e {
namespace {

class RelayDeliveryTest : public E2eTest {};

TEST_F(RelayDeliveryTest, JsonWithOddSpacingNumbersAndEscapesArrivesUnchanged) {
  ASSERT_NO_FATAL_FAILURE(start());

  // Spacing, key order, number forms and escapes a JSON re-encoder would normalise.
  std::string body =
      "{ \"zeta\" :1.0,\"alpha\":  1e3 ,\n\t\"neg\":-0,  \"big\":12345678901234567890,"
      "\"esc\":\"caf\\u00e9 \\ud83d\\ude00 \\u0000 \\\"q\\\" \\/\",\"arr\":[ ] , \"b\":true}\n";
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered(
      {request("POST", "", "",
               {{"Content-Type", "application/json"}, {"User-Agent", "Hookshot/7f3a"}}, body)}));
}

TEST_F(RelayDeliveryTest, FormBodyWithPlusPercentAndRepeatedKeysArrivesUnchanged) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::string body =
      "token=abc+def&team_domain=acme&text=hello%20world+again&a=1&a=2&empty=&sym=%2B%26%3D";
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered(
      {request("POST", "/slack/commands", "",
               {{"Content-Type", "application/x-www-form-urlencoded"},
                {"X-Slack-Request-Timestamp", "1700000000"},
                {"X-Slack-Signature",
                 "v0=0000000000000000000000000000000000000000000000000000000000000000"}},
               body)}));
}

TEST_F(RelayDeliveryTest, BinaryBodyWithNulAndInvalidUtf8ArrivesUnchanged) {
  ASSERT_NO_FATAL_FAILURE(start());

  // The invalid UTF-8 sequence first, then every byte value, NUL included, twice.
  std::string body("\xff\xfe\xc3\x28\x00\x00", 6);
  for (int round = 0; round < 2; ++round) {
    for (int b = 0; b < 256; ++b) body += static_cast<char>(b);
  }
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered(
      {request("POST", "/bin", "", {{"Content-Type", "application/octet-stream"}}, body)}));
}

TEST_F(RelayDeliveryTest, GzipBodyIsDeliveredStillCompressed) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::string plain;
  for (int i = 0; i < 200; ++i) plain += "{\"n\":" + std::to_string(i) + ",\"v\":\"payload\"}\n";
  std::string packed = gzipBytes(plain);
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered(
      {request("POST", "/gz", "",
               {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}}, packed)}));

  // Still the same gzip member: neither side inflated it on the way.
  auto got = env_->target->requests().at(0);
  EXPECT_EQ(got.message.value("Content-Encoding").value_or(""), "gzip");
  EXPECT_EQ(gunzipBytes(got.message.body), plain);
}

TEST_F(RelayDeliveryTest, EmptyPostAndBodylessGetArrive) {
  ASSERT_NO_FATAL_FAILURE(start());
  SentRequest emptyPost = request("POST", "/empty", "", {{"Content-Type", "text/plain"}}, "");
  SentRequest get = request("GET", "/ping", "check=1", {{"Accept", "*/*"}}, "");
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered({emptyPost, get}));

  // The POST said Content-Length: 0 and must still say so; the GET had no body at all.
  auto received = env_->target->requests();
  auto post = withSeq(received, seqOf(emptyPost));
  ASSERT_EQ(post.size(), 1u);
  EXPECT_EQ(post[0].message.values("Content-Length"), std::vector<std::string>{"0"});
  auto gets = withSeq(received, seqOf(get));
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_TRUE(gets[0].message.body.empty());
}

TEST_F(RelayDeliveryTest, ChunkedRequestArrivesWithContentLength) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::vector<std::string> chunks{"first part-", "second\r\npart with CRLF-",
                                  std::string("third\x00part", 10)};
  std::string body = chunks[0] + chunks[1] + chunks[2];

  // Written by hand: Transfer-Encoding instead of Content-Length, three chunks.
  SentRequest sent =
      request("POST", "/chunked", "",
              {{"Content-Type", "text/plain"}, {"Transfer-Encoding", "chunked"}}, body);
  HeaderList headers;
  for (auto& header : sent.headers) {
    if (!sameName(header.first, "Content-Length")) headers.push_back(header);
  }
  sent.headers = headers;
  sent.chunks = chunks;
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered({sent}));

  auto got = env_->target->requests().at(0);
  EXPECT_FALSE(got.message.value("Transfer-Encoding").has_value());
  EXPECT_EQ(got.message.values("Content-Length"),
            std::vector<std::string>{std::to_string(body.size())});
}

TEST_F(RelayDeliveryTest, DuplicateMixedCaseAndInterleavedHeadersKeepArrivalOrder) {
  ASSERT_NO_FATAL_FAILURE(start());
  SentRequest sent = request("POST", "/headers", "",
                             {{"X-Dup", "1"},
                              {"x-dup", "2"},
                              {"X-Mixed-CASE", "v"},
                              {"X-A", "1"},
                              {"X-B", "2"},
                              {"X-A", "3"},
                              {"Content-Type", "application/json"}},
                             "{}");
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered({sent}));

  // Spelled out once more, independent of the generic comparison.
  auto got = env_->target->requests().at(0);
  std::vector<std::string> lines;
  for (const auto& line : got.message.rawHeadLines) {
    if (line.rfind("X-", 0) == 0 || line.rfind("x-", 0) == 0) lines.push_back(line);
  }
  EXPECT_EQ(lines,
            (std::vector<std::string>{"X-Dup: 1", "x-dup: 2", "X-Mixed-CASE: v", "X-A: 1", "X-B: 2",
                                      "X-A: 3", std::string(kSeqHeader) + ": " + seqOf(sent)}));
}

TEST_F(RelayDeliveryTest, MethodsPathSuffixesAndRawQueriesAreKept) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string query = "q=a%20b&r=+&s=%2B";
  std::vector<SentRequest> requests{
      request("PUT", "/a/b%2Fc", query, {{"Content-Type", "application/json"}}, "{\"put\":1}"),
      request("PATCH", "/a/b%2Fc", "x=1&x=2&y", {{"Content-Type", "application/json"}},
              "{\"patch\":[1,2]}"),
      request("DELETE", "/items/%7E42", query, {}, ""),
      request("GET", "/a/b%2Fc", query, {{"Accept", "application/json"}}, ""),
      request("HEAD", "/a/b%2Fc", query, {}, ""),
  };
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered(requests));
}

}  // namespace
}  // namespace anm::e2e
