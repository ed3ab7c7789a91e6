// tests/cli/support/raw_target.h: a local HTTP target that records the exact bytes it gets.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/ServerSocket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace anm::cli::test {

/// One request as it came off the socket.
struct RawRequest {
  std::string raw;   ///< head and body, byte for byte
  std::string head;  ///< up to and including the empty line
  std::string body;
  int connection = 0;  ///< which accepted connection carried it (1, 2, ...)

  std::string requestLine() const;
  std::vector<std::pair<std::string, std::string>> headers() const;
};

/// Reads requests itself (Content-Length framing, which is all the relay sends) so that field
/// order and spelling are seen exactly as sent.
class RawTarget {
 public:
  enum class Mode {
    kRespond,       ///< send the configured response
    kRespondClose,  ///< send it, then close the connection without saying so
    kHang,          ///< never answer
  };

  RawTarget();
  ~RawTarget();

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "") const;

  void setMode(Mode mode) { mode_ = mode; }
  void setResponse(std::string raw);

  std::vector<RawRequest> requests() const;
  size_t connections() const { return connections_.load(); }
  bool waitForRequests(size_t count, std::chrono::milliseconds timeout) const;

 private:
  void acceptLoop();
  void serve(Poco::Net::StreamSocket socket, int index);

  Poco::Net::ServerSocket server_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{Mode::kRespond};
  std::atomic<size_t> connections_{0};
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::string response_ = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  std::vector<RawRequest> requests_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace anm::cli::test
