// tests/e2e/support/target_server.cpp: a local server that records every request's exact bytes.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/target_server.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Timespan.h>

namespace anm::e2e {

namespace {

// How long a connection may stay silent inside a request before the target gives up on it.
constexpr auto kRequestTimeout = std::chrono::seconds(10);

// How long the target waits for the next request on a kept-alive connection.
constexpr auto kIdleTimeout = std::chrono::seconds(120);

std::string reasonFor(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

}  // namespace

TargetServer::TargetServer() : TargetServer([](const RecordedRequest&) { return Reply{}; }) {}

TargetServer::TargetServer(Responder responder)
    : responder_(std::move(responder)), listener_(Poco::Net::SocketAddress("127.0.0.1", 0), 64) {
  port_ = listener_.address().port();
  acceptor_ = std::thread([this] { acceptLoop(); });
}

TargetServer::~TargetServer() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();

  // Wake every worker blocked on a kept-alive connection, then wait for all of them.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& socket : open_) {
      try {
        socket.shutdown();
      } catch (...) {
        // Already closed by the peer.
      }
    }
  }
  for (auto& worker : workers_) worker.join();
  listener_.close();
}

void TargetServer::acceptLoop() {
  while (!stop_) {
    if (!listener_.poll(Poco::Timespan(0, 50000), Poco::Net::Socket::SELECT_READ)) continue;
    Poco::Net::StreamSocket socket;
    try {
      socket = listener_.acceptConnection();
    } catch (const Poco::Exception&) {
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    workers_.emplace_back([this, socket] { serve(socket); });
  }
}

void TargetServer::serve(Poco::Net::StreamSocket socket) {
  std::list<Poco::Net::StreamSocket>::iterator self;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    self = open_.insert(open_.end(), socket);
  }
  socket.setNoDelay(true);
  WireReader reader(socket, &stop_);

  try {
    while (!stop_) {
      // A kept-alive connection may stay quiet for long; a started request may not.
      if (reader.atCleanEof(std::chrono::steady_clock::now() + kIdleTimeout)) break;
      auto deadline = std::chrono::steady_clock::now() + kRequestTimeout;
      RecordedRequest request;
      request.message = reader.readHead(deadline);
      const std::string& line = request.message.startLine;
      size_t sp1 = line.find(' ');
      size_t sp2 = line.rfind(' ');
      if (sp1 == std::string::npos || sp2 == sp1) {
        throw WireError("bad request line=\"" + line + "\"");
      }
      request.method = line.substr(0, sp1);
      request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      request.version = line.substr(sp2 + 1);
      reader.readRequestBody(request.message, deadline);

      // Record before answering, so that a test woken by the relay's report sees the request.
      Reply reply = responder_(request);
      bool close = false;
      for (const auto& value : request.message.values("Connection")) {
        if (value.find("close") != std::string::npos) close = true;
      }
      bool head = request.method == "HEAD";
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(std::move(request));
        recorded_.notify_all();
      }

      if (reply.delay.count() > 0) std::this_thread::sleep_for(reply.delay);
      std::string answer = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                           reasonFor(reply.status) + "\r\nContent-Type: text/plain\r\n" +
                           (reply.location.empty() ? "" : "Location: " + reply.location + "\r\n") +
                           "Content-Length: " + std::to_string(reply.body.size()) + "\r\n" +
                           (close ? "Connection: close\r\n" : "") + "\r\n" +
                           (head ? "" : reply.body);
      sendAll(socket, answer);
      if (close) break;
    }
  } catch (const WireError& e) {
    if (!stop_) {
      std::lock_guard<std::mutex> lock(mutex_);
      errors_.push_back(e.what());
      recorded_.notify_all();
    }
  } catch (const Poco::Exception& e) {
    // The relay hung up while we answered; the request itself was recorded already.
  }

  std::lock_guard<std::mutex> lock(mutex_);
  try {
    self->close();
  } catch (...) {
    // Closing a socket the peer reset is not an error here.
  }
  open_.erase(self);
}

bool TargetServer::waitForCount(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return recorded_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

bool TargetServer::waitFor(const std::function<bool(const RecordedRequest&)>& match,
                           std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return recorded_.wait_for(lock, timeout, [&] {
    for (const auto& request : requests_) {
      if (match(request)) return true;
    }
    return false;
  });
}

std::vector<RecordedRequest> TargetServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

size_t TargetServer::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_.size();
}

std::vector<std::string> TargetServer::protocolErrors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return errors_;
}

}  // namespace anm::e2e
