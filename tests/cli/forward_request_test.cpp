// tests/cli/forward_request_test.cpp: the request head the relay writes to the target.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/forward_request.h"

#include <gtest/gtest.h>

namespace anm::cli {
namespace {

Url url(const std::string& text) {
  std::string error;
  auto parsed = Url::parse(text, error);
  EXPECT_TRUE(parsed.has_value()) << error;
  return *parsed;
}

TEST(ForwardRequestTest, TargetPathJoinsBaseSuffixAndRawQuery) {
  ForwardRequest request;
  request.pathSuffix = "/x%2Fy";
  request.rawQuery = "a=%20+b";
  EXPECT_EQ(targetPath(url("http://localhost:3000"), request), "/x%2Fy?a=%20+b");
  EXPECT_EQ(targetPath(url("http://localhost:3000/"), request), "/x%2Fy?a=%20+b");
  EXPECT_EQ(targetPath(url("http://localhost:3000/hooks//"), request), "/hooks/x%2Fy?a=%20+b");
  request.pathSuffix.clear();
  request.rawQuery.clear();
  EXPECT_EQ(targetPath(url("http://localhost:3000"), request), "/");
  EXPECT_EQ(targetPath(url("http://localhost:3000/base/"), request), "/base");
}

TEST(ForwardRequestTest, HostIsAddedFirstWhenTheOriginalHadNone) {
  ForwardRequest request;
  request.method = "POST";
  request.headers = {{"X-One", "1"}};
  request.body = "abc";
  std::string head;
  std::string error;
  ASSERT_TRUE(buildRequestHead(url("http://127.0.0.1:8000/in"), request, head, error)) << error;
  EXPECT_EQ(head,
            "POST /in HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nX-One: 1\r\n"
            "Content-Length: 3\r\n\r\n");
}

TEST(ForwardRequestTest, DefaultPortIsLeftOutOfHostOnlyWhenNotWritten) {
  ForwardRequest request;
  request.method = "GET";
  std::string head;
  std::string error;
  ASSERT_TRUE(buildRequestHead(url("http://localhost/"), request, head, error));
  EXPECT_EQ(head, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(buildRequestHead(url("http://localhost:80/"), request, head, error));
  EXPECT_EQ(head, "GET / HTTP/1.1\r\nHost: localhost:80\r\n\r\n");
}

TEST(ForwardRequestTest, FieldsNamedByConnectionAreDroppedCaseInsensitively) {
  ForwardRequest request;
  request.method = "POST";
  request.headers = {{"connection", "X-Secret ,  x-other"},
                     {"x-secret", "1"},
                     {"X-OTHER", "2"},
                     {"X-Kept", "3"},
                     {"keep-alive", "5"},
                     {"transfer-encoding", "gzip, chunked"}};
  std::string head;
  std::string error;
  ASSERT_TRUE(buildRequestHead(url("http://h:1"), request, head, error));
  EXPECT_EQ(head, "POST / HTTP/1.1\r\nHost: h:1\r\nX-Kept: 3\r\nContent-Length: 0\r\n\r\n");
}

TEST(ForwardRequestTest, RefusesRequestsThatCannotBeWrittenFaithfully) {
  const Url target = url("http://h:1");
  std::string head;
  std::string error;
  ForwardRequest bad;
  bad.method = "GET X";
  EXPECT_FALSE(buildRequestHead(target, bad, head, error));
  EXPECT_EQ(error, "invalid method");

  bad.method = "GET";
  bad.pathSuffix = "/a b";
  EXPECT_FALSE(buildRequestHead(target, bad, head, error));
  EXPECT_EQ(error, "invalid path");

  bad.pathSuffix = "/ok";
  bad.headers = {{"X-Injected", "a\r\nEvil: 1"}};
  EXPECT_FALSE(buildRequestHead(target, bad, head, error));
  EXPECT_EQ(error, "invalid header field");

  bad.headers = {{"Bad Name", "v"}};
  EXPECT_FALSE(buildRequestHead(target, bad, head, error));
}

TEST(UrlTest, ParsesAndRejects) {
  std::string error;
  auto parsed = Url::parse("https://edge.example:8443/prefix/", error);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->host, "edge.example");
  EXPECT_EQ(parsed->port, 8443);
  EXPECT_EQ(parsed->basePath(), "/prefix");
  EXPECT_TRUE(parsed->tls());
  EXPECT_FALSE(Url::parse("ftp://x/", error));
  EXPECT_FALSE(Url::parse("http:///nohost", error));
  EXPECT_FALSE(Url::parse("http://x/?q=1", error));
}

}  // namespace
}  // namespace anm::cli
