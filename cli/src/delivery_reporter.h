// cli/src/delivery_reporter.h: reports deliveries to the edge in batches, off the relay loop.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "cli/src/connection.h"
#include "cli/src/session.h"
#include "cli/src/url.h"

namespace anm::cli {

struct DeliveryReport {
  int64_t eventId = 0;
  int status = 0;
  int64_t durationMs = 0;
  std::string error;

  // What the relay saw besides the status (docs/protocol.md); reports of events that were not
  // forwarded leave them at these defaults. (The empty initialisers let such reports be
  // written as {event, status, duration, error}.)
  NetPhase phase = NetPhase::kUnknown;
  int64_t timeoutMs = 0;
  bool targetHttps = false;
  int64_t startedAtMs = 0;
  std::string responseExcerpt{};  ///< already text of at most kResponseExcerptBytes
  std::string location{};         ///< already text of at most kLocationBytes
};

/// Queues reports and sends them with POST /api/v1/hooks/<id>/deliveries on one background
/// thread and one kept-alive connection. enqueue() never blocks on the network: when the queue
/// is full the oldest report is dropped (and counted), since a report only annotates an event
/// that the edge keeps anyway. enqueue() wakes the thread only when the queue was empty or a
/// batch is full, so forwarding an event costs no thread switch.
class DeliveryReporter {
 public:
  struct Options {
    size_t maxQueued = 50000;  ///< reports held at most; about 3 MiB at the worst
    size_t batchSize = 1000;   ///< the protocol's bulk limit
    int attempts = 8;          ///< tries per batch before it is dropped (about 30 s in all)
    std::chrono::milliseconds firstRetryDelay{250};  ///< doubled after each failed try
    std::chrono::milliseconds flushTimeout{10000};   ///< longest wait in stop()
    std::chrono::milliseconds requestTimeout{10000};
    /// After the first report of a batch, how long to let more gather before sending (a full
    /// batch or stop() sends at once). A busy relay then sends a few large requests a second
    /// instead of one per event, which keeps this thread and the edge off the forwarding path.
    std::chrono::milliseconds gatherDelay{100};
    /// When set, reports go with this signed-in member's JWT (renewed as it nears expiry and
    /// once after a refusal) instead of `token`. Not owned; must outlive the reporter.
    MemberSession* session = nullptr;
  };

  DeliveryReporter(Url edge, std::string hookId, std::string token, std::string relayId,
                   Options options);
  ~DeliveryReporter();  ///< stops without waiting for a flush

  void start();
  void enqueue(DeliveryReport report);

  /// Sends what is queued (within flushTimeout) and stops the thread.
  void stop();

  uint64_t sent() const { return sent_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t requests() const { return requests_.load(); }  ///< POSTs made, answered or not

  /// The JSON body for one batch, as docs/protocol.md gives it.
  static std::string batchJson(const std::string& relayId, const std::deque<DeliveryReport>& batch);

 private:
  void run();

  Url edge_;
  std::string hookId_;
  std::string token_;
  std::string relayId_;
  Options options_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<DeliveryReport> queue_;
  bool stopping_ = false;
  Clock::time_point flushDeadline_;
  std::thread thread_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace anm::cli
