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

  /// Hooks kept in memory after their first lookup, so that ingest does not read the database
  /// for every request. A change made through this store drops the cached copy at once; one
  /// made by another process on the same file (the admin command) shows within kHookCacheMs,
  /// after which a cached hook is read again. Past this many, lookups of hooks not cached read
  /// the database. 4096 hooks take about 1 MiB.
  size_t maxCachedHooks = 4096;

  /// The key ring contents are encrypted with at rest (core/store/sealing.h): event query,
  /// headers, body and summary fields, hook secrets and setting values. Null stores them in
  /// the clear and
  /// refuses a database that holds encrypted records.
  std::shared_ptr<crypto::KeyHolder> keys;

  /// How long a session waits for a lock held by another connection before failing.
  int busyTimeoutMs = 5000;

  /// How a commit is made durable before anyone hears of it.
  enum class Sync {
    /// The writer commits with synchronous=NORMAL and goes on with the next batch while a
    /// second thread fdatasyncs the WAL; a batch is acknowledged (and becomes visible to
    /// reads and the commit listener) only after a sync that began after its commit.
    kOverlapped,
    /// synchronous=FULL: SQLite syncs inside every commit, and the writer waits for it.
    kInCommit,
  };
  Sync sync = Sync::kOverlapped;

  /// WAL frames (pages) after which a background connection checkpoints the WAL into the
  /// database, so that the writer does not copy pages inside its own commits. 1000 is SQLite's
  /// own auto-checkpoint size (about 4 MiB with 4 KiB pages).
  int checkpointFrames = 1000;

  /// WAL frames at which the writer checkpoints itself after a commit, whatever the background
  /// connection is doing: the bound on the WAL's growth when checkpoints cannot keep up.
  int maxWalFrames = 8000;

  /// Bytes a WAL is truncated to when it starts over (PRAGMA journal_size_limit).
  int64_t walSizeLimitBytes = int64_t{64} << 20;

  /// Replaces fdatasync(fd) of the WAL in the overlapped mode, so that tests can hold a
  /// commit between its write and its sync, or fail the sync. Returns 0 or an errno value.
  std::function<int(int fd)> syncWalForTest;
};

/// What the writer thread has done since the store was opened.
struct WriterStats {
  uint64_t commits = 0;          ///< transactions committed
  uint64_t failedBatches = 0;    ///< transactions rolled back because a write or commit failed
  uint64_t eventsStored = 0;     ///< events committed
  size_t largestBatchJobs = 0;   ///< most writes seen in one transaction
  size_t largestBatchBytes = 0;  ///< most payload bytes seen in one transaction
  uint64_t syncs = 0;            ///< WAL syncs of the overlapped mode, each covering >= 1 commit
  uint64_t failedSyncs = 0;      ///< failed WAL syncs; after one the store refuses every write
  uint64_t backgroundCheckpoints = 0;  ///< checkpoints run by the background connection
  uint64_t writerCheckpoints = 0;      ///< checkpoints run by the writer between its commits
  int largestWalFrames = 0;            ///< most frames the WAL held after a commit

  // Where the writer and sync threads spend their time, in nanoseconds of wall time.
  uint64_t writeNanos = 0;        ///< BEGIN and the inserts of every batch
  uint64_t commitNanos = 0;       ///< COMMIT (with synchronous=FULL this includes its sync)
  uint64_t checkpointNanos = 0;   ///< checkpoints run by the writer between its commits
  uint64_t syncNanos = 0;         ///< WAL syncs of the overlapped mode
  uint64_t acknowledgeNanos = 0;  ///< commit listener calls and waking the waiting callers
};

/// What the read side has done since the store was opened.
struct ReadStats {
  uint64_t hookCacheHits = 0;  ///< findHook answered from memory
  size_t cachedHooks = 0;      ///< hooks held in memory now
};

/// The SQLite store in WAL mode: every commit is on disk before anyone hears of it (see
/// SqliteOptions::Sync). All writes go through one writer thread that commits whatever is
/// queued in one transaction (group commit); a second thread makes commits durable and
/// acknowledges them in commit order; reads use a pool of their own sessions, never wait on the
/// writer and see only events that are durable.
class SqliteStore : public Store {
 public:
  /// The newest schema version this build knows. A database with a newer one is refused.
  static constexpr int64_t kSchemaVersion = 6;

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

  void createHookWithin(const HookRecord& hook, size_t maxNamedHooks) override;
  bool updateHook(const HookRecord& hook) override;
  std::vector<HookRecord> listHooks(const std::string& accountId) override;
  std::optional<HookRecord> findHookByName(const std::string& accountId,
                                           const std::string& name) override;
  size_t deleteExpiredHooks(int64_t nowMs) override;
  void extendHook(const std::string& hookId, int64_t expiresAtMs) override;
  bool claimRelay(const std::string& hookId, const std::string& relayId, int64_t nowMs,
                  int64_t untilMs) override;
  void releaseRelay(const std::string& hookId, const std::string& relayId) override;
  bool takeOverRelay(const std::string& hookId, const std::string& holder,
                     const std::string& relayPrefix, int64_t nowMs, int64_t untilMs) override;

  void createAccount(const AccountRecord& account) override;
  std::optional<AccountRecord> findAccount(const std::string& accountId) override;
  std::optional<AccountRecord> findAccountByName(const std::string& name) override;
  std::vector<AccountRecord> listAccounts() override;
  bool updateAccount(const AccountRecord& account) override;
  void createMember(const MemberRecord& member) override;
  std::optional<MemberRecord> findMember(const std::string& memberId) override;
  std::vector<MemberRecord> listMembers(const std::string& accountId) override;
  void createToken(const TokenRecord& token) override;
  std::optional<TokenRecord> findTokenByHash(const std::string& hash) override;
  std::optional<TokenRecord> findToken(const std::string& tokenId) override;
  std::vector<TokenRecord> listTokens(const std::string& accountId) override;
  bool revokeToken(const std::string& tokenId, int64_t nowMs) override;
  std::vector<std::string> revokedTokensSince(int64_t sinceMs) override;
  void touchToken(const std::string& tokenId, int64_t nowMs) override;
  void endSession(const std::string& sessionId, int64_t untilMs, int64_t nowMs) override;
  bool sessionEnded(const std::string& sessionId, int64_t nowMs) override;

  /// Durable before it returns: it goes through the writer like an event.
  int64_t appendAudit(const AuditRecord& entry) override;
  std::vector<AuditRecord> listAudit(const std::string& accountId, int64_t afterId,
                                     size_t limit) override;

  std::optional<std::string> getSetting(const std::string& name) override;
  std::string putSettingIfAbsent(const std::string& name, const std::string& value) override;
  void setSetting(const std::string& name, const std::string& value) override;

  /// Also seals events, hooks and settings stored in the clear (a database from before
  /// encryption at rest), and the summary fields of events sealed before schema 3. Records that
  /// do not open are logged and passed over, so that a caller looping until 0 ends.
  size_t reencryptBatch(size_t limit) override;
  /// Key id "" counts the records that hold values in the clear (also an event sealed before
  /// schema 3 whose summary fields are not sealed yet).
  std::vector<KeyUsage> keyUsage() override;
  ReencryptFailures reencryptFailures() override;

  std::vector<EventRecord> listEventsBefore(const std::string& hookId, int64_t beforeId,
                                            size_t limit, bool withBodies) override;
  std::vector<DeliveryRecord> listDeliveriesOf(const std::vector<int64_t>& eventIds) override;
  std::vector<int64_t> listReplayIds(const std::string& hookId, int64_t eventId,
                                     size_t limit) override;
  int64_t countEvents(const std::string& hookId) override;
  std::vector<ActivityBucket> activity(const std::string& hookId, int64_t fromMs, int64_t bucketMs,
                                       size_t buckets) override;

  WriterStats writerStats() const;
  ReadStats readStats() const;

 private:
  class Impl;

  explicit SqliteStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::store
