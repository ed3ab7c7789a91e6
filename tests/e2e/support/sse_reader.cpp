// tests/e2e/support/sse_reader.cpp: an event stream read by the test itself, frame by frame.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/sse_reader.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "tests/e2e/support/http_wire.h"

namespace anm::e2e {

namespace {

// How often the reader thread looks at its stop flag.
const Poco::Timespan kPollSlice(0, 50000);

// A response head longer than this is not from the edge.
constexpr size_t kMaxHeadBytes = 64 * 1024;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

SseReader::SseReader(uint16_t port, const std::string& hookId, const std::string& token,
                     int64_t lastEventId, std::chrono::milliseconds timeout) {
  socket_.connect(Poco::Net::SocketAddress("127.0.0.1", port),
                  Poco::Timespan(timeout.count() * 1000));
  std::string request = "GET /api/v1/hooks/" + hookId +
                        "/stream HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nAuthorization: Bearer " + token + "\r\nAccept: text/event-stream\r\n";
  if (lastEventId > 0) request += "Last-Event-ID: " + std::to_string(lastEventId) + "\r\n";
  request += "\r\n";
  sendAll(socket_, request);

  // The head, read up to its blank line; whatever follows it is the stream's start.
  std::string head;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || head.size() > kMaxHeadBytes) {
      throw std::runtime_error("no stream response head within the timeout: " + head);
    }
    if (!socket_.poll(Poco::Timespan(left.count()), Poco::Net::Socket::SELECT_READ)) continue;
    char buffer[4096];
    int n = socket_.receiveBytes(buffer, sizeof buffer);
    if (n <= 0) throw std::runtime_error("the edge closed the stream request: " + head);
    head.append(buffer, static_cast<size_t>(n));
  }
  std::string headText = lower(head.substr(0, end));
  if (headText.rfind("http/1.1 200", 0) != 0 ||
      headText.find("content-type: text/event-stream") == std::string::npos) {
    throw std::runtime_error("the edge did not open a stream: " + head.substr(0, end));
  }
  if (headText.find("transfer-encoding") != std::string::npos) {
    throw std::runtime_error("the stream came with a transfer-encoding: " + head.substr(0, end));
  }
  std::string rest = head.substr(end + 4);
  feed(rest.data(), rest.size());

  reader_ = std::thread([this] { readLoop(); });
}

SseReader::~SseReader() {
  stop_ = true;
  if (reader_.joinable()) reader_.join();
  try {
    socket_.close();
  } catch (...) {
    // Already closed by the edge.
  }
}

void SseReader::readLoop() {
  std::string error = "stream ended";
  try {
    while (!stop_) {
      if (!socket_.poll(kPollSlice, Poco::Net::Socket::SELECT_READ)) continue;
      char buffer[16384];
      int n = socket_.receiveBytes(buffer, sizeof buffer);
      if (n <= 0) break;
      total_ += static_cast<size_t>(n);
      if (total_ > kMaxStreamBytes) {
        error = "stream longer than the reader's limit";
        break;
      }
      feed(buffer, static_cast<size_t>(n));
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (stop_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  ended_ = true;
  error_ = error;
  changed_.notify_all();
}

void SseReader::feed(const char* data, size_t size) {
  pending_.append(data, size);
  size_t start = 0;
  size_t newline = 0;
  while ((newline = pending_.find('\n', start)) != std::string::npos) {
    std::string text = pending_.substr(start, newline - start);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    line(text);
    start = newline + 1;
  }
  pending_.erase(0, start);
}

void SseReader::line(const std::string& text) {
  // A blank line ends a frame; only frames with data are events (SSE dispatch rules).
  if (text.empty()) {
    if (hasData_) {
      std::lock_guard<std::mutex> lock(mutex_);
      frames_.push_back(current_);
      changed_.notify_all();
    }
    current_ = SseFrame{};
    hasData_ = false;
    return;
  }
  if (text.front() == ':') {
    std::lock_guard<std::mutex> lock(mutex_);
    ++comments_;
    return;
  }

  size_t colon = text.find(':');
  std::string field = text.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.erase(0, 1);
  if (field == "id") current_.id = value;
  if (field == "event") current_.event = value;
  if (field == "data") {
    if (hasData_) current_.data += "\n";
    current_.data += value;
    hasData_ = true;
  }
}

std::vector<SseFrame> SseReader::frames() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return frames_;
}

std::vector<int64_t> SseReader::webhookIds() const {
  std::vector<int64_t> ids;
  for (const auto& frame : frames()) {
    if (frame.event != "webhook") continue;
    try {
      ids.push_back(std::stoll(frame.id));
    } catch (const std::exception&) {
      ids.push_back(-1);  // a webhook frame without a numeric id fails the caller's checks
    }
  }
  return ids;
}

size_t SseReader::comments() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return comments_;
}

bool SseReader::waitForFrames(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return frames_.size() >= n || ended_; }) &&
         frames_.size() >= n;
}

bool SseReader::ended() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ended_;
}

std::string SseReader::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

}  // namespace anm::e2e
