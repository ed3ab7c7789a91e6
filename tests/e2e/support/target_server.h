// tests/e2e/support/target_server.h: the developer's local server as the relay sees it, but
// one that records every request's exact bytes.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/support/http_wire.h"

namespace anm::e2e {

/// One request as the target received it.
struct RecordedRequest {
  std::string method;
  std::string target;   ///< request-target exactly as sent: path and raw query
  std::string version;  ///< "HTTP/1.1"
  WireMessage message;  ///< raw head lines, parsed headers, de-chunked body
};

/// A raw TCP server on 127.0.0.1 (port chosen by the kernel) that parses HTTP/1.1 itself,
/// records each request and answers with the reply the responder picks. Connections are kept
/// alive the way HTTP/1.1 allows, one thread each.
class TargetServer {
 public:
  struct Reply {
    int status = 200;
    std::string body = "ok\n";
    std::chrono::milliseconds delay{0};  ///< wait before answering
    std::string location;                ///< sent as Location when not empty (a redirect's)
  };
  using Responder = std::function<Reply(const RecordedRequest&)>;

  /// Answers every request with a default Reply (200).
  TargetServer();
  explicit TargetServer(Responder responder);
  ~TargetServer();

  TargetServer(const TargetServer&) = delete;
  TargetServer& operator=(const TargetServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Waits until at least n requests were recorded in total.
  bool waitForCount(size_t n, std::chrono::milliseconds timeout);

  /// Waits until a request satisfying `match` was recorded.
  bool waitFor(const std::function<bool(const RecordedRequest&)>& match,
               std::chrono::milliseconds timeout);

  std::vector<RecordedRequest> requests() const;
  size_t count() const;

  /// Requests the target could not parse; each one is a delivery bug.
  std::vector<std::string> protocolErrors() const;

 private:
  void acceptLoop();
  void serve(Poco::Net::StreamSocket socket);

  Responder responder_;
  Poco::Net::ServerSocket listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;

  mutable std::mutex mutex_;
  std::condition_variable recorded_;
  std::vector<RecordedRequest> requests_;
  std::vector<std::string> errors_;
  std::list<Poco::Net::StreamSocket> open_;
  std::vector<std::thread> workers_;
};

}  // namespace anm::e2e
