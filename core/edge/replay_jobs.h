// core/edge/replay_jobs.h: replays of many events at once, run in the background, watched and
// cancelled through the API.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/store/store.h"

namespace anm::edge {

/// Most events one bulk replay may take: a search result larger than this is narrowed first.
inline constexpr size_t kMaxBulkReplay = 10000;

/// How long a finished job stays readable.
inline constexpr std::chrono::minutes kReplayJobKept{10};

/// Most new event ids a job's state lists; its counts cover them all.
inline constexpr size_t kMaxListedReplays = 100;

/// Turns `event`, as read, into its replay received at `nowMs`: the same request with the
/// original verdict, marked by replay_of, which is also what lets the replay of an invalid
/// event reach the relays (docs/protocol.md). Its id is 0 until it is stored.
store::EventRecord replayCopyOf(store::EventRecord event, int64_t nowMs);

/// Stores one replay of an event of the hook, as the single replay route does without edits,
/// and returns the new event's id. Throws store::StoreError when the store fails, and
/// std::runtime_error when the event cannot be replayed (gone, unreadable).
int64_t replayEvent(store::Store& store, const std::string& hookId, int64_t eventId, int64_t nowMs);

/// The state of one job, as the API shows it.
struct ReplayJobState {
  std::string id;
  std::string hookId;
  std::string state;  ///< "running", "done" or "cancelled"
  size_t total = 0;
  size_t done = 0;               ///< replayed
  size_t failed = 0;             ///< could not be replayed (gone, unreadable, store failure)
  std::vector<int64_t> replays;  ///< the new events' ids, the first kMaxListedReplays
  int64_t startedAtMs = 0;
  int64_t endedAtMs = 0;  ///< 0 while running
};

/// The jobs of one edge, run one after the other on a thread of their own so that a large
/// replay never holds a request thread. Thread-safe.
class ReplayJobs {
 public:
  explicit ReplayJobs(store::Store& store);
  ~ReplayJobs();  ///< cancels what runs and joins the thread
  ReplayJobs(const ReplayJobs&) = delete;
  ReplayJobs& operator=(const ReplayJobs&) = delete;

  /// Queues a job replaying `eventIds` of the hook, in the order given, and returns its state.
  ReplayJobState start(const std::string& hookId, std::vector<int64_t> eventIds);

  /// The job's state, if it belongs to the hook and is still kept.
  std::optional<ReplayJobState> find(const std::string& hookId, const std::string& jobId);

  /// Stops the job after the event it is replaying; events already replayed stay. Returns its
  /// state, or nothing when the hook has no such job.
  std::optional<ReplayJobState> cancel(const std::string& hookId, const std::string& jobId);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The job's state as JSON (docs/dashboard.md).
std::string replayJobJson(const ReplayJobState& state);

}  // namespace anm::edge
