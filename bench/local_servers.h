// bench/local_servers.h: the HTTP servers the bench runs itself: the ceiling and the target.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace anm::bench {

/// Settings shared by the ceiling server and the edge, so that the ceiling differs from the
/// edge only in doing no work.
struct ServerSettings {
  int maxThreads = 64;
  int maxQueued = 64;
  bool keepAlive = true;
  int keepAliveTimeoutS = 15;
};

/// A POCO HTTPServer on 127.0.0.1:0 that reads each body and answers 200 at once: the
/// fastest any server built on the same HTTP stack can acknowledge.
class CeilingServer {
 public:
  explicit CeilingServer(const ServerSettings& settings);
  ~CeilingServer();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The developer's local server in the bench: records when each numbered webhook arrived
/// and checks its body byte for byte against the one that was sent.
class TargetServer {
 public:
  /// Accepts sequence numbers in [firstSeq, firstSeq + capacity).
  TargetServer(int64_t firstSeq, size_t capacity, int maxThreads);
  ~TargetServer();
  uint16_t port() const;

  /// Steady-clock time at which the body of seq had been read, or 0 if it never came.
  int64_t receivedAt(int64_t seq) const;

  int64_t total() const;       ///< requests received
  int64_t unique() const;      ///< distinct sequence numbers received
  int64_t duplicates() const;  ///< requests for a sequence number already received
  int64_t corrupted() const;   ///< bodies that differ from what was sent, or carry no number
  int64_t lastArrivalNs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::bench
