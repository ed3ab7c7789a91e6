// tests/cli/connection_test.cpp: socket options and gathered writes of the relay's connections.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/connection.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>

#include "cli/src/forwarder.h"
#include "support/fake_edge.h"
#include "support/raw_target.h"

namespace anm::cli {
namespace {

using namespace std::chrono_literals;

Url loopbackUrl(uint16_t port) {
  std::string error;
  auto url = Url::parse("http://127.0.0.1:" + std::to_string(port), error);
  if (!url) throw std::runtime_error(error);
  return *url;
}

bool noDelay(int fd) {
  int value = 0;
  socklen_t size = sizeof value;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &size) != 0) return false;
  return value != 0;
}

// Reads exactly `size` bytes from the first connection a server accepts.
std::string acceptAndRead(Poco::Net::ServerSocket& server, size_t size) {
  Poco::Net::StreamSocket peer = server.acceptConnection();
  peer.setReceiveTimeout(Poco::Timespan(10, 0));
  std::string got;
  char buffer[65536];
  while (got.size() < size) {
    const int n = peer.receiveBytes(buffer, sizeof buffer);
    if (n <= 0) break;
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

TEST(ConnectionTest, ConnectionsSendSmallWritesWithoutNagleDelay) {
  Poco::Net::ServerSocket server(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
  Connection connection(loopbackUrl(server.address().port()), Clock::now() + 5s);
  EXPECT_TRUE(noDelay(connection.nativeHandleForTest()));
}

TEST(ConnectionTest, GatheredWriteSendsBothPartsWholeAndInOrder) {
  Poco::Net::ServerSocket server(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
  const std::string head = "POST /x HTTP/1.1\r\nContent-Length: 3145728\r\n\r\n";

  // Larger than any socket buffer, so that the write has to continue after a short send.
  std::string body(3u << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 131 + 7) % 251);

  std::string got;
  std::thread reader([&] { got = acceptAndRead(server, head.size() + body.size()); });
  {
    Connection connection(loopbackUrl(server.address().port()), Clock::now() + 5s);
    connection.writeAll(head, body, Clock::now() + 10s);
    reader.join();
  }
  ASSERT_EQ(got.size(), head.size() + body.size());
  EXPECT_TRUE(got == head + body);
}

TEST(ConnectionTest, GatheredWriteWithAnEmptyPartSendsTheOther) {
  Poco::Net::ServerSocket server(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
  std::string got;
  std::thread reader([&] { got = acceptAndRead(server, 8); });
  {
    Connection connection(loopbackUrl(server.address().port()), Clock::now() + 5s);
    connection.writeAll("", "only", Clock::now() + 5s);
    connection.writeAll("head", "", Clock::now() + 5s);
    reader.join();
  }
  EXPECT_EQ(got, "onlyhead");
}

TEST(ConnectionTest, ReadAfterThePeerClosesReturnsZeroAndStaleSeesIt) {
  Poco::Net::ServerSocket server(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
  Connection connection(loopbackUrl(server.address().port()), Clock::now() + 5s);
  {
    Poco::Net::StreamSocket peer = server.acceptConnection();
    peer.sendBytes("ab", 2);
    peer.shutdownSend();
  }

  // Bytes sent before the close are still read; then the close shows as 0.
  char buffer[8];
  EXPECT_EQ(connection.read(buffer, sizeof buffer, Clock::now() + 5s), 2u);
  EXPECT_EQ(std::string(buffer, 2), "ab");
  EXPECT_EQ(connection.read(buffer, sizeof buffer, Clock::now() + 5s), 0u);
  EXPECT_TRUE(connection.stale());
}

TEST(ConnectionTest, QuietPeerIsNotStaleAndAReadTimesOut) {
  Poco::Net::ServerSocket server(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
  Connection connection(loopbackUrl(server.address().port()), Clock::now() + 5s);
  Poco::Net::StreamSocket peer = server.acceptConnection();
  EXPECT_FALSE(connection.stale());
  char buffer[8];
  try {
    connection.read(buffer, sizeof buffer, Clock::now() + 50ms);
    FAIL() << "a read from a silent peer returned";
  } catch (const NetError& e) {
    EXPECT_EQ(e.kind(), NetErrorKind::kTimeout);
  }

  // Unsolicited bytes make a kept-alive connection unusable for the next request.
  peer.sendBytes("x", 1);
  ASSERT_TRUE(test::FakeEdge::waitUntil([&] { return connection.stale(); }));
}

TEST(ForwarderTest, TargetConnectionHasNoDelayAndIsKeptForTheNextRequest) {
  test::RawTarget target;
  Forwarder forwarder(loopbackUrl(target.port()), 10s);
  ForwardRequest request;
  request.method = "POST";
  request.body = "{}";
  EXPECT_EQ(forwarder.forward(request).status, 200);
  ASSERT_NE(forwarder.connectionForTest(), nullptr);
  EXPECT_TRUE(noDelay(forwarder.connectionForTest()->nativeHandleForTest()));
  EXPECT_EQ(forwarder.forward(request).status, 200);
  EXPECT_EQ(forwarder.connectionsOpened(), 1u);
}

TEST(ForwarderTest, ResponseWrittenInTwoPiecesWithNagleOnIsReadWhole) {
  // A target like many development servers: Nagle on, head and body in separate writes.
  Poco::Net::ServerSocket server(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
  std::thread serve([&] {
    Poco::Net::StreamSocket peer = server.acceptConnection();
    peer.setNoDelay(false);
    peer.setReceiveTimeout(Poco::Timespan(10, 0));
    for (int i = 0; i < 3; ++i) {
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const int n = peer.receiveBytes(buffer, sizeof buffer);
        if (n <= 0) return;
        request.append(buffer, static_cast<size_t>(n));
      }
      const std::string head = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\n";
      peer.sendBytes(head.data(), static_cast<int>(head.size()));
      peer.sendBytes("hello", 5);
    }
  });
  Forwarder forwarder(loopbackUrl(server.address().port()), 10s);
  ForwardRequest request;
  request.method = "GET";
  for (int i = 0; i < 3; ++i) {
    const DeliveryResult result = forwarder.forward(request);
    EXPECT_EQ(result.status, 201) << result.error;
  }
  EXPECT_EQ(forwarder.connectionsOpened(), 1u);
  serve.join();
}

TEST(ForwarderTest, TheAnswersFirstBytesAreKeptAsTextAndTheRestIsReadAndDropped) {
  // A redirect with a large body that starts with a byte that is not UTF-8.
  test::RawTarget target;
  const std::string body = "\xff" + std::string(600, 'a') + std::string(200000, 'b');
  target.setResponse("HTTP/1.1 302 Found\r\nLocation: /login?next=%2F\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body);
  Forwarder forwarder(loopbackUrl(target.port()), 10s);
  ForwardRequest request;
  request.method = "POST";
  request.body = "{}";
  const DeliveryResult result = forwarder.forward(request);
  EXPECT_EQ(result.status, 302);
  EXPECT_EQ(result.location, "/login?next=%2F");
  EXPECT_EQ(result.phase, NetPhase::kUnknown);
  EXPECT_GT(result.startedAtMs, 1700000000000);

  // U+FFFD for the bad byte, then 'a's up to 512 bytes in all.
  EXPECT_EQ(result.responseExcerpt, "\xEF\xBF\xBD" + std::string(509, 'a'));

  // The whole body was read: the connection serves the next delivery.
  target.setResponse("HTTP/1.1 204 No Content\r\n\r\n");
  const DeliveryResult next = forwarder.forward(request);
  EXPECT_EQ(next.status, 204);
  EXPECT_EQ(next.responseExcerpt, "");
  EXPECT_EQ(next.location, "");
  EXPECT_EQ(forwarder.connectionsOpened(), 1u);
}

TEST(ForwarderTest, AFailureSaysWhereItHappenedAndKeepsItsWord) {
  ForwardRequest request;
  request.method = "POST";

  // Nothing listens: refused while connecting.
  uint16_t closedPort = 0;
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0), 1);
    closedPort = probe.address().port();
  }
  DeliveryResult result = Forwarder(loopbackUrl(closedPort), 5s).forward(request);
  EXPECT_EQ(result.error, "connection refused");
  EXPECT_EQ(result.phase, NetPhase::kConnecting);

  // A target that takes the request and never answers: a timeout while receiving.
  test::RawTarget hanging;
  hanging.setMode(test::RawTarget::Mode::kHang);
  result = Forwarder(loopbackUrl(hanging.port()), 300ms).forward(request);
  EXPECT_EQ(result.error, "timeout");
  EXPECT_EQ(result.phase, NetPhase::kReceiving);

  // A target that accepts and reads nothing: a body too large for the socket buffers times
  // out while it is still being sent.
  Poco::Net::ServerSocket deaf(Poco::Net::SocketAddress("127.0.0.1", 0), 1);
  request.body = std::string(64 << 20, 'x');
  result = Forwarder(loopbackUrl(deaf.address().port()), 500ms).forward(request);
  EXPECT_EQ(result.error, "timeout");
  EXPECT_EQ(result.phase, NetPhase::kSending);
}

}  // namespace
}  // namespace anm::cli
