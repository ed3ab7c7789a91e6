// tests/cli/support/raw_target.cpp: the recording target server.
// SPDX-License-Identifier: Apache-2.0
#include "support/raw_target.h"

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <strings.h>

namespace anm::cli::test {

std::string RawRequest::requestLine() const { return head.substr(0, head.find("\r\n")); }

std::vector<std::pair<std::string, std::string>> RawRequest::headers() const {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = head.find("\r\n") + 2;
  while (pos < head.size()) {
    const size_t end = head.find("\r\n", pos);
    if (end == pos || end == std::string::npos) break;
    const std::string line = head.substr(pos, end - pos);
    const size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out.emplace_back(line.substr(0, colon), value);
    pos = end + 2;
  }
  return out;
}

RawTarget::RawTarget() : server_(Poco::Net::SocketAddress("127.0.0.1", 0), 64) {
  port_ = server_.address().port();
  acceptor_ = std::thread([this] { acceptLoop(); });
}

RawTarget::~RawTarget() {
  stop_ = true;
  acceptor_.join();
  for (std::thread& thread : threads_) thread.join();
}

std::string RawTarget::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void RawTarget::setResponse(std::string raw) {
  std::lock_guard<std::mutex> lock(mutex_);
  response_ = std::move(raw);
}

std::vector<RawRequest> RawTarget::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

bool RawTarget::waitForRequests(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
}

void RawTarget::acceptLoop() {
  while (!stop_) {
    if (!server_.poll(Poco::Timespan(0, 50000), Poco::Net::Socket::SELECT_READ)) continue;
    Poco::Net::StreamSocket socket = server_.acceptConnection();
    const int index = static_cast<int>(++connections_);
    std::lock_guard<std::mutex> lock(mutex_);
    threads_.emplace_back([this, socket, index] { serve(socket, index); });
  }
}

void RawTarget::serve(Poco::Net::StreamSocket socket, int index) {
  std::string buffer;
  char chunk[65536];

  // Reads more bytes; false when the peer closed or the target is shutting down.
  auto more = [&]() -> bool {
    while (!stop_) {
      if (!socket.poll(Poco::Timespan(0, 50000), Poco::Net::Socket::SELECT_READ)) continue;
      int n = 0;
      try {
        n = socket.receiveBytes(chunk, sizeof chunk);
      } catch (...) {
        return false;
      }
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
      return true;
    }
    return false;
  };

  for (;;) {
    size_t headEnd;
    while ((headEnd = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!more()) return;
    }
    RawRequest request;
    request.connection = index;
    request.head = buffer.substr(0, headEnd + 4);
    size_t length = 0;
    for (const auto& [name, value] : request.headers()) {
      if (strcasecmp(name.c_str(), "Content-Length") == 0) length = std::stoul(value);
    }
    while (buffer.size() < headEnd + 4 + length) {
      if (!more()) return;
    }
    request.body = buffer.substr(headEnd + 4, length);
    request.raw = buffer.substr(0, headEnd + 4 + length);
    buffer.erase(0, headEnd + 4 + length);
    std::string response;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
      response = response_;
    }
    changed_.notify_all();

    const Mode mode = mode_.load();
    if (mode == Mode::kHang) {
      while (!stop_ && more()) {
      }
      return;
    }
    try {
      socket.sendBytes(response.data(), static_cast<int>(response.size()));
    } catch (...) {
      return;
    }
    if (mode == Mode::kRespondClose) {
      socket.close();
      return;
    }
  }
}

}  // namespace anm::cli::test
