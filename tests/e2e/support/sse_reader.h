// tests/e2e/support/sse_reader.h: an event stream read by the test itself, frame by frame, to
// see exactly which ids an edge sends and how often.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace anm::e2e {

/// One dispatched SSE event (a frame with data; comments and `retry:` alone are not events).
struct SseFrame {
  std::string id;     ///< the `id:` field, "" when the frame had none
  std::string event;  ///< the `event:` field
  std::string data;   ///< `data:` lines joined with '\n'
};

/// GET /api/v1/hooks/<id>/stream on 127.0.0.1:port with the bearer token and Last-Event-ID,
/// read by a background thread until the edge closes the stream or the reader is destroyed.
/// The edge sends the stream without chunked framing (it ends when the connection closes).
class SseReader {
 public:
  /// Most bytes of a stream kept by the reader, so that a runaway edge cannot exhaust the
  /// test's memory; past it the reader stops and reports an error.
  static constexpr size_t kMaxStreamBytes = 64u << 20;

  /// Connects and reads the response head; throws when the edge does not answer 200 with
  /// text/event-stream within `timeout`.
  SseReader(uint16_t port, const std::string& hookId, const std::string& token, int64_t lastEventId,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  ~SseReader();

  SseReader(const SseReader&) = delete;
  SseReader& operator=(const SseReader&) = delete;

  std::vector<SseFrame> frames() const;

  /// The numeric ids of the frames whose event is `webhook`, in arrival order.
  std::vector<int64_t> webhookIds() const;

  /// Comment lines (": keep-alive") seen so far.
  size_t comments() const;

  /// Waits until at least n frames arrived; false on timeout or when the stream ended first.
  bool waitForFrames(size_t n, std::chrono::milliseconds timeout);

  /// True once the edge closed the stream (or it broke); `error` says how.
  bool ended() const;
  std::string error() const;

 private:
  void readLoop();
  void feed(const char* data, size_t size);
  void line(const std::string& text);

  Poco::Net::StreamSocket socket_;
  std::atomic<bool> stop_{false};
  std::thread reader_;

  // Parser state, touched by the reader thread only (and the constructor before it starts).
  std::string pending_;
  SseFrame current_;
  bool hasData_ = false;
  size_t total_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<SseFrame> frames_;
  size_t comments_ = 0;
  bool ended_ = false;
  std::string error_;
};

}  // namespace anm::e2e
