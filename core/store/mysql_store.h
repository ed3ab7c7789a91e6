// core/store/mysql_store.h: the MySQL (and MariaDB) backend of the event store, shared by edges.
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

namespace anm::store {

/// Where the database is and who connects to it.
struct MySqlEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string socketPath;  ///< when set, host and port are ignored
  std::string user;
  std::string password;
  std::string database;

  /// host:port or the socket path, for messages; never the password.
  std::string describe() const;
};

/// Reads `mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE` or
/// `mysql://USER[:PASSWORD]@localhost/DATABASE?socket=/path/to/mysqld.sock`. User, password and
/// socket path may be percent-encoded; HOST may be an IPv6 address in brackets. The database
/// name is 1 to 64 of [A-Za-z0-9_$]. Throws std::invalid_argument with a message that says what
/// is wrong (and never repeats the password).
MySqlEndpoint parseMySqlUrl(const std::string& url);

/// Tuning of the MySQL backend. The defaults are what the edge runs with.
struct MySqlOptions {
  MySqlEndpoint endpoint;

  /// The key ring contents are encrypted with at rest (core/store/sealing.h): event query,
  /// headers, body and summary fields, hook secrets and setting values. Null stores them in
  /// the clear, which
  /// only tests do; a store without a ring refuses to open a database holding sealed records.
  /// The ring may be replaced while the store runs (a rotation): each operation takes the
  /// ring of that moment.
  std::shared_ptr<crypto::KeyHolder> keys;

  /// Connections for reads, hooks and delivery reports. The store holds two more of its own:
  /// one that writes events and one that follows the events table for new ids.
  size_t poolSize = 8;

  /// How often the follower looks for events that other processes stored. Events this store
  /// commits itself wake it at once.
  std::chrono::milliseconds pollInterval{5};

  /// Limit on connecting, and on each read and write of a connection. A server that stops
  /// answering costs a waiting webhook about ioTimeout plus 5 s (the check of an unconfirmed
  /// commit) before its 503, and one queued behind that batch up to a connect timeout more.
  std::chrono::milliseconds connectTimeout{5000};
  std::chrono::milliseconds ioTimeout{10000};

  /// After the writer failed to connect, appends fail at once for this long instead of each
  /// trying to connect again, so that a server that is down costs callers no connect timeout
  /// each. The pause doubles while connects keep failing, up to 2 s: the most an append may
  /// be refused after the server is back.
  std::chrono::milliseconds reconnectPause{100};

  /// How long a write waits for a lock another edge holds (innodb_lock_wait_timeout).
  std::chrono::seconds lockWaitTimeout{5};

  /// Most events and payload bytes committed in one transaction (group commit).
  size_t maxBatchJobs = 256;
  size_t maxBatchBytes = size_t{32} << 20;

  /// Hooks kept in memory after a lookup, each for kHookCacheMs (store.h): a change another
  /// edge makes reaches this one within that. This store's own changes drop the entry at once.
  size_t maxCachedHooks = 4096;

  /// Called on the writer thread after a batch's inserts and before its COMMIT, with the ids
  /// the batch took, so that tests can hold a transaction open. Empty in production.
  std::function<void(int64_t firstId, int64_t lastId)> beforeCommitForTest;
};

/// What the store has done since it was opened, for tests and benchmarks.
struct MySqlStats {
  uint64_t commits = 0;         ///< event transactions committed
  uint64_t eventsStored = 0;    ///< events committed
  uint64_t failedBatches = 0;   ///< event transactions that failed and acknowledged nothing
  uint64_t retriedBatches = 0;  ///< batches retried on a new connection before their COMMIT
  uint64_t reconnects = 0;      ///< connections opened to replace a broken one
  size_t largestBatchJobs = 0;  ///< most events seen in one transaction
  uint64_t followerPolls = 0;   ///< queries of the follower for new ids
  uint64_t holesWaited = 0;     ///< polls that saw a later id visible before an earlier one
  uint64_t holesSkipped = 0;    ///< missing ids given up on after 30 s (they never existed)
  int64_t visibleThrough = 0;   ///< every event up to this id has been announced
};

/// The store on MySQL or MariaDB (InnoDB). Several processes may share one database.
///
/// Event ids come from a counter row that the writing transaction updates, so a transaction
/// that takes ids holds that row until it commits and ids are handed out in commit order with
/// no gaps (a rollback rolls the counter back too). A reader can still, for an instant, see a
/// later commit before an earlier one; the follower thread therefore announces ids only as
/// far as they are contiguous, and listEvents returns nothing past what the follower has
/// announced. appendEvent returns once its event is committed and announced, so a caller that
/// lists right after its own append sees it. When the answer to a COMMIT is lost, the writer
/// reads the rows back on a new connection and compares random tokens stored with them, so an
/// append fails only for an event that is not stored (or, past 5 s without the server, whose
/// fate could not be learned; that is logged as an error).
class MySqlStore : public Store {
 public:
  /// The newest schema version this build knows. A database with a newer one is refused.
  static constexpr int64_t kSchemaVersion = 6;

  /// Connects, creates or migrates the schema and starts the writer and the follower. Throws
  /// StoreError when the server cannot be reached, refuses the login, or holds a newer schema.
  static std::unique_ptr<MySqlStore> open(const MySqlOptions& options);

  /// Waits for the queued writes, then stops the writer and the follower.
  ~MySqlStore() override;

  MySqlStore(const MySqlStore&) = delete;
  MySqlStore& operator=(const MySqlStore&) = delete;

  void createHook(const HookRecord& hook) override;
  std::optional<HookRecord> findHook(const std::string& hookId) override;
  int64_t appendEvent(EventRecord event) override;
  std::vector<EventRecord> listEvents(const std::string& hookId, int64_t afterId, size_t limit,
                                      bool withBodies, bool forwardableOnly) override;
  std::optional<EventRecord> getEvent(const std::string& hookId, int64_t eventId) override;
  void addDelivery(const DeliveryRecord& delivery) override;
  void addDeliveries(const std::vector<DeliveryRecord>& deliveries) override;
  std::vector<DeliveryRecord> listDeliveries(int64_t eventId) override;
  void setNoticeListener(std::function<void(const EventNotice&)> listener) override;

  /// Atomic across edges: the account's row is locked while its hooks are counted.
  /// Throws StoreError for an account that does not exist.
  void createHookWithin(const HookRecord& hook, size_t maxNamedHooks) override;
  bool updateHook(const HookRecord& hook) override;
  std::vector<HookRecord> listHooks(const std::string& accountId) override;
  std::optional<HookRecord> findHookByName(const std::string& accountId,
                                           const std::string& name) override;
  /// Erases rather than deletes, so that the edge needs no DELETE privilege: the hooks are
  /// marked deleted with their secrets blanked, and their events keep only ids, times, method,
  /// body size and verdict (every content field is emptied). Neither is returned again.
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

  /// Committed with autocommit before it returns. Ids come from AUTO_INCREMENT: increasing
  /// per edge, but two edges appending at once may commit them out of order.
  int64_t appendAudit(const AuditRecord& entry) override;
  std::vector<AuditRecord> listAudit(const std::string& accountId, int64_t afterId,
                                     size_t limit) override;

  std::optional<std::string> getSetting(const std::string& name) override;
  /// INSERT IGNORE, then a read of the value that won.
  std::string putSettingIfAbsent(const std::string& name, const std::string& value) override;
  void setSetting(const std::string& name, const std::string& value) override;

  /// Settings, then hooks, then events (oldest first); records in the clear (schema 1, or a
  /// store without a key ring) are encrypted, and so are the summary fields of events sealed
  /// before schema 3. Throws StoreError without a key ring. Records that do not open are
  /// logged and passed over, so that a caller looping until 0 ends.
  size_t reencryptBatch(size_t limit) override;
  /// Live records (events of erased hooks not counted) per key id; "" counts the ones that
  /// still hold values in the clear (also an event sealed before schema 3 whose summary fields
  /// are not sealed yet).
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

  MySqlStats stats() const;

  /// The server's max_allowed_packet when the store opened: the most bytes one body or one
  /// header block may have.
  int64_t maxPacketBytes() const;

 private:
  class Impl;

  explicit MySqlStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::store
