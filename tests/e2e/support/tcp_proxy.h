// tests/e2e/support/tcp_proxy.h: a TCP proxy between relay and edge that can cut the line.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace anm::e2e {

/// Listens on 127.0.0.1 (kernel-chosen port) and copies bytes both ways to 127.0.0.1:upstream.
/// setDown(true) closes every open connection and from then on closes each new one at once,
/// the way a laptop that lost its network looks to both sides; setDown(false) heals it.
class TcpProxy {
 public:
  explicit TcpProxy(uint16_t upstreamPort);
  ~TcpProxy();

  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void setDown(bool down);

  /// Arms a one-shot trap: the next read from a client that contains `pattern` (ASCII,
  /// compared ignoring case) cuts that one connection both ways at once. With `deliverFirst`
  /// false the bytes are dropped, so the upstream never sees the request (a database that
  /// loses the line just before a COMMIT reaches it); with true they are forwarded first, so
  /// the upstream acts on them but its answer is lost (a COMMIT that happened unconfirmed).
  /// Other connections and later ones are left alone. An empty pattern disarms it.
  void cutWhenClientSends(const std::string& pattern, bool deliverFirst = false);

  size_t trapsSprung() const { return trapsSprung_.load(); }  ///< cuts made by the trap

  size_t accepted() const { return accepted_.load(); }  ///< connections forwarded
  size_t refused() const { return refused_.load(); }    ///< connections closed while down
  size_t openConnections() const;

 private:
  struct Link {
    Poco::Net::StreamSocket client;
    Poco::Net::StreamSocket upstream;
    std::atomic<bool> done{false};
    std::thread pump;
  };

  void acceptLoop();
  void pump(Link& link);
  /// Copies one read from client to upstream unless the trap takes it; false ends the link.
  bool forwardFromClient(Link& link);
  static void cut(Link& link);

  uint16_t upstreamPort_;
  Poco::Net::ServerSocket listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> down_{false};
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> refused_{0};
  std::atomic<size_t> trapsSprung_{0};
  std::thread acceptor_;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Link>> links_;
  std::string trap_;  ///< lower-case pattern of cutWhenClientSends, "" when disarmed
  bool trapDelivers_ = false;
};

}  // namespace anm::e2e
