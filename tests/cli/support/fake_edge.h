// tests/cli/support/fake_edge.h: an in-process edge speaking docs/protocol.md for CLI tests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/HTTPServer.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace anm::cli::test {

struct FakeEvent {
  int64_t id = 0;  ///< assigned by addEvent
  std::string method = "POST";
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string eventType;
  int64_t replayOf = 0;
};

struct ReportedDelivery {
  int64_t event = 0;
  std::string relay;
  int status = 0;
  int64_t durationMs = 0;
  std::string error;
};

class FakeEdge {
 public:
  static constexpr const char* kHookId = "hk_test42";
  static constexpr const char* kToken = "tok-7f3a9c";

  /// Listens on 127.0.0.1:`port` (0: any free port).
  explicit FakeEdge(bool chunkedStream = false, uint16_t port = 0);
  ~FakeEdge();

  std::string url() const;

  /// Stores an event (next id) and streams it to connected relays. Returns its id.
  int64_t addEvent(FakeEvent event);

  /// Appends raw bytes to the stream (for frames the edge would never build itself), sent to
  /// relays whose Last-Event-ID is below `id`.
  void addRawFrame(int64_t id, std::string frame);

  /// Ends every open stream (the relay sees the connection close).
  void dropStreams();

  std::vector<std::string> streamLastEventIds() const;  ///< one per stream request, "" if none
  std::vector<ReportedDelivery> deliveries() const;
  std::vector<std::string> createBodies() const;    ///< bodies of POST /api/v1/hooks
  std::vector<std::string> authorizations() const;  ///< Authorization of every API request
  std::vector<FakeEvent> events() const;

  /// Polls `condition` until it holds or the time is up (waits only; asserts nothing).
  static bool waitUntil(const std::function<bool()>& condition,
                        std::chrono::milliseconds timeout = std::chrono::seconds(15));

  class Handler;

 private:
  friend class Handler;
  struct Frame {
    int64_t id;
    std::string text;
  };

  std::string envelope(const FakeEvent& event) const;
  std::string summary(const FakeEvent& event, bool detail) const;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool chunked_;
  bool stopping_ = false;
  int generation_ = 0;
  int64_t nextId_ = 1;
  std::vector<FakeEvent> events_;
  std::vector<Frame> frames_;
  std::vector<std::string> lastEventIds_;
  std::vector<ReportedDelivery> deliveries_;
  std::vector<std::string> createBodies_;
  std::vector<std::string> authorizations_;
  uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace anm::cli::test
