// cli/src/forwarder.h: sends forwarded requests to the local target over a kept-alive socket.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cli/src/connection.h"
#include "cli/src/forward_request.h"
#include "cli/src/url.h"

namespace anm::cli {

/// Most bytes of the target's answer body a delivery keeps as its excerpt, and of a Location
/// (the edge's limits, docs/protocol.md).
inline constexpr size_t kResponseExcerptBytes = 512;
inline constexpr size_t kLocationBytes = 2048;

/// The outcome of one delivery, as reported to the edge.
struct DeliveryResult {
  int status = 0;          ///< the target's status; 0 when no response came
  std::string error;       ///< "" on a response; "timeout", "connection refused", ...
  std::string location;    ///< Location of a 3xx answer (never followed), as text
  int64_t durationMs = 0;  ///< from the start of the delivery to the end of the response
  /// Where the connection failed, for an error; kUnknown for an answer.
  NetPhase phase = NetPhase::kUnknown;
  /// The first kResponseExcerptBytes of the answer's body, as text (textExcerpt).
  std::string responseExcerpt;
  int64_t startedAtMs = 0;  ///< wall clock when the delivery began, ms since the epoch
};

/// Forwards one request at a time. Not thread-safe: one Forwarder per relay loop.
class Forwarder {
 public:
  Forwarder(Url target, std::chrono::milliseconds timeout);
  ~Forwarder();

  /// Sends `request` and reads the whole answer within the timeout. Never throws for network
  /// trouble: that becomes status 0 and an error word.
  DeliveryResult forward(const ForwardRequest& request);

  /// Connections opened so far (one per reconnect), for tests of keep-alive.
  uint64_t connectionsOpened() const { return opened_; }

  /// The kept-alive connection to the target, or nullptr, for tests of its socket options.
  const Connection* connectionForTest() const { return connection_.get(); }

 private:
  DeliveryResult attempt(const std::string& head, const ForwardRequest& request,
                         Clock::time_point deadline, bool& retryable);

  Url target_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Connection> connection_;
  uint64_t opened_ = 0;
};

}  // namespace anm::cli
