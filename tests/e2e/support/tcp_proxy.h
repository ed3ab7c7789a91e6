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
  static void cut(Link& link);

  uint16_t upstreamPort_;
  Poco::Net::ServerSocket listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> down_{false};
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> refused_{0};
  std::thread acceptor_;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Link>> links_;
};

}  // namespace anm::e2e
