// core/store/sqlite_store.h: the embedded SQLite backend of the event store.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/store/store.h"

namespace anm::store {

/// Tuning of the SQLite backend. The defaults are what the edge runs with.
struct SqliteOptions {
  /// Most writes (events, hooks, delivery reports) committed in one transaction. A larger batch
  /// shares one fsync among more waiters; 512 keeps the worst wait of one commit short.
  size_t maxBatchJobs = 512;

  /// Most payload bytes (bodies and headers) in one transaction, so that a burst of large
  /// webhooks does not hold one huge transaction in memory. A single larger write still goes
  /// through, alone in its batch.
  size_t maxBatchBytes = size_t{32} << 20;

  /// Read sessions kept open for reuse; more are opened when needed and closed after use.
  size_t maxIdleReadSessions = 8;

  /// How long a session waits for a lock held by another connection before failing.
  int busyTimeoutMs = 5000;
};

/// What the writer thread has done since the store was opened.
struct WriterStats {
  uint64_t commits = 0;          ///< transactions committed
  uint64_t failedBatches = 0;    ///< transactions rolled back because a write or commit failed
  uint64_t eventsStored = 0;     ///< events committed
  size_t largestBatchJobs = 0;   ///< most writes seen in one transaction
  size_t largestBatchBytes = 0;  ///< most payload bytes seen in one transaction
};

/// The SQLite store: WAL mode with synchronous=FULL, so every commit is on disk before anyone
/// hears of it. All writes go through one writer thread that commits whatever is queued in one
/// transaction (group commit); reads use a pool of their own sessions and never wait on it.
class SqliteStore : public Store {
 public:
  /// The newest schema version this build knows. A database with a newer one is refused.
  static constexpr int64_t kSchemaVersion = 1;

  /// Opens or creates the database in `path` and brings its schema up to kSchemaVersion.
  /// Throws StoreError when the file cannot be opened or its schema is newer than this build.
  static std::unique_ptr<SqliteStore> open(const std::string& path,
                                           const SqliteOptions& options = {});

  /// Waits for every queued write to be committed, then stops the writer.
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void createHook(const HookRecord& hook) override;
  std::optional<HookRecord> findHook(const std::string& hookId) override;
  int64_t appendEvent(EventRecord event) override;
  std::vector<EventRecord> listEvents(const std::string& hookId, int64_t afterId, size_t limit,
                                      bool withBodies, bool forwardableOnly) override;
  std::optional<EventRecord> getEvent(const std::string& hookId, int64_t eventId) override;
  void addDelivery(const DeliveryRecord& delivery) override;
  void addDeliveries(const std::vector<DeliveryRecord>& deliveries) override;
  std::vector<DeliveryRecord> listDeliveries(int64_t eventId) override;
  void setCommitListener(std::function<void(const EventRecord&)> listener) override;

  WriterStats writerStats() const;

 private:
  class Impl;

  explicit SqliteStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::store
