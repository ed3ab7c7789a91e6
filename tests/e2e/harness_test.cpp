// tests/e2e/harness_test.cpp: the end-to-end harness checked on its own, without the product.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "tests/e2e/support/child_process.h"
#include "tests/e2e/support/delivery_check.h"
#include "tests/e2e/support/digest.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/target_server.h"
#include "tests/e2e/support/tcp_proxy.h"

namespace anm::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kWait(5000);

TEST(TargetServerTest, RecordsRawHeadInOrderAndDechunksBody) {
  TargetServer target;
  std::string bytes = std::string(
                          "POST /a/b%2Fc?q=a%20b&r=+ HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\n"
                          "X-A: 1\r\n"
                          "x-b:two  \r\n"
                          "X-A: 3\r\n"
                          "Transfer-Encoding: chunked\r\n"
                          "\r\n"
                          "3\r\nabc\r\n"
                          "2;ext=1\r\n") +
                      std::string("\x00\xff", 2) + "\r\n0\r\n\r\n";

  auto response = exchange(target.port(), bytes, false);
  EXPECT_EQ(response.status, 200);
  ASSERT_TRUE(target.waitForCount(1, kWait));

  auto got = target.requests().at(0);
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, "/a/b%2Fc?q=a%20b&r=+");
  EXPECT_EQ(got.message.rawHeadLines,
            (std::vector<std::string>{"Host: 127.0.0.1", "X-A: 1", "x-b:two  ", "X-A: 3",
                                      "Transfer-Encoding: chunked"}));
  EXPECT_EQ(got.message.headers[2], (std::pair<std::string, std::string>{"x-b", "two"}));
  EXPECT_TRUE(got.message.chunked);
  EXPECT_EQ(got.message.body, std::string("abc\0\xff", 5));
}

TEST(TargetServerTest, KeepsConnectionAliveAndAnswersWithResponderStatus) {
  TargetServer target([](const RecordedRequest& r) {
    TargetServer::Reply reply;
    reply.status = r.target == "/second" ? 202 : 200;
    reply.body = "seen " + r.target;
    return reply;
  });

  // Two requests on one connection, the second only after the first answer.
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", target.port()));
  WireReader reader(socket);
  auto deadline = std::chrono::steady_clock::now() + kWait;
  sendAll(socket, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  auto first = reader.readHead(deadline);
  reader.readResponseBody(first, false, deadline);
  sendAll(socket, "PUT /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  auto second = reader.readHead(deadline);
  reader.readResponseBody(second, false, deadline);

  EXPECT_EQ(first.startLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(first.body, "seen /first");
  EXPECT_EQ(second.startLine, "HTTP/1.1 202 Accepted");
  ASSERT_EQ(target.count(), 2u);
  EXPECT_EQ(target.requests()[1].message.body, "hi");
  EXPECT_TRUE(target.protocolErrors().empty());
}

TEST(TargetServerTest, ReportsBrokenFraming) {
  TargetServer target;
  {
    Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", target.port()));
    sendAll(socket, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort");
  }
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (target.protocolErrors().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(target.count(), 0u);
  ASSERT_EQ(target.protocolErrors().size(), 1u);
}

TEST(TcpProxyTest, ForwardsBothWays) {
  TargetServer target;
  TcpProxy proxy(target.port());
  auto response = exchange(proxy.port(), "GET /via HTTP/1.1\r\nHost: p\r\n\r\n", false);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.message.body, "ok\n");
  ASSERT_TRUE(target.waitForCount(1, kWait));
  EXPECT_EQ(target.requests()[0].target, "/via");
  EXPECT_EQ(proxy.accepted(), 1u);
}

TEST(TcpProxyTest, DownClosesOpenLinksRefusesNewOnesAndHeals) {
  TargetServer target;
  TcpProxy proxy(target.port());

  // An idle kept-alive connection through the proxy.
  Poco::Net::StreamSocket open(Poco::Net::SocketAddress("127.0.0.1", proxy.port()));
  WireReader openReader(open);
  auto deadline = std::chrono::steady_clock::now() + kWait;
  sendAll(open, "GET /1 HTTP/1.1\r\nHost: p\r\n\r\n");
  auto first = openReader.readHead(deadline);
  openReader.readResponseBody(first, false, deadline);
  ASSERT_EQ(proxy.openConnections(), 1u);

  // Cutting: the open connection ends and a new one is closed right after connecting.
  proxy.setDown(true);
  EXPECT_TRUE(openReader.atCleanEof(std::chrono::steady_clock::now() + kWait));
  Poco::Net::StreamSocket refused(Poco::Net::SocketAddress("127.0.0.1", proxy.port()));
  WireReader refusedReader(refused);
  EXPECT_TRUE(refusedReader.atCleanEof(std::chrono::steady_clock::now() + kWait));
  EXPECT_EQ(proxy.refused(), 1u);

  // The client sees the end as soon as the proxy shuts the socket; the pump thread that marks
  // the link closed may run a moment later.
  auto linkDeadline = std::chrono::steady_clock::now() + kWait;
  while (proxy.openConnections() != 0 && std::chrono::steady_clock::now() < linkDeadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(proxy.openConnections(), 0u);

  // Healed: new connections go through again.
  proxy.setDown(false);
  EXPECT_EQ(exchange(proxy.port(), "GET /2 HTTP/1.1\r\nHost: p\r\n\r\n", false).status, 200);
  EXPECT_EQ(target.count(), 2u);
}

TEST(ChildProcessTest, CapturesOutputAndReapsOnStop) {
  long pid = 0;
  {
    ChildProcess child("/bin/sh", {"-c", "echo hello; echo oops >&2; exec sleep 30"}, {});
    pid = child.pid();
    ASSERT_TRUE(child.waitForStdoutLine([](const std::string& l) { return l == "hello"; }, kWait));
    EXPECT_TRUE(child.running());
    int code = child.stop(milliseconds(2000));
    EXPECT_NE(code, 0);
    EXPECT_FALSE(child.running());
  }

  // Reaped: the pid no longer names a process, not even a zombie.
  EXPECT_EQ(kill(static_cast<pid_t>(pid), 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(ChildProcessTest, PassesEnvironmentAndReportsExitCode) {
  ChildProcess child("/bin/sh", {"-c", "echo \"$XDG_CONFIG_HOME\"; exit 7"},
                     {{"XDG_CONFIG_HOME", "/nowhere/config"}});
  ASSERT_TRUE(child.waitForStdoutLine([](const std::string& l) { return !l.empty(); }, kWait));
  EXPECT_EQ(child.stdoutLines()[0], "/nowhere/config");
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (child.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(child.exitCode(), 7);
}

TEST(DeliveryCheckTest, DropsOnlyHopByHopHostAndLength) {
  HeaderList sent{{"Host", "edge"},
                  {"Connection", "keep-alive, X-Per-Hop"},
                  {"X-Per-Hop", "1"},
                  {"X-Keep", "a"},
                  {"Transfer-Encoding", "chunked"},
                  {"te", "trailers"},
                  {"Content-Length", "3"},
                  {"x-keep", "b"}};
  EXPECT_EQ(endToEndHeaders(sent), (HeaderList{{"X-Keep", "a"}, {"x-keep", "b"}}));
}

TEST(DeliveryCheckTest, ExpectedTargetKeepsSuffixAndRawQuery) {
  SentRequest sent;
  EXPECT_EQ(expectedTarget(sent), "/");
  sent.suffix = "/a/b%2Fc";
  sent.query = "q=a%20b&r=+&s=%2B";
  EXPECT_EQ(expectedTarget(sent), "/a/b%2Fc?q=a%20b&r=+&s=%2B");
  EXPECT_EQ(sent.serialize("hid").substr(0, 40), "POST /h/hid/a/b%2Fc?q=a%20b&r=+&s=%2B HT");
}

TEST(DigestTest, GzipIsRealGzipAndRoundTrips) {
  std::string plain(5000, 'z');
  std::string packed = gzipBytes(plain);
  ASSERT_GE(packed.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(packed[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(packed[1]), 0x8b);
  EXPECT_LT(packed.size(), plain.size());
  EXPECT_EQ(gunzipBytes(packed), plain);
}

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(hmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ProductTest, HookIdFromIngestUrl) {
  EXPECT_EQ(hookIdFromUrl("http://127.0.0.1:5/h/Ab-9_x"), "Ab-9_x");
  EXPECT_EQ(hookIdFromUrl("ingest: http://e/h/abc/ more"), "abc");
  EXPECT_EQ(hookIdFromUrl("no url here"), "");
}

}  // namespace
}  // namespace anm::e2e
