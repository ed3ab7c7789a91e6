// core/store/mysql_store.cpp: the event store on MySQL/MariaDB through Connector/C++ 1.1.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/mysql_store.h"

#include <Poco/Format.h>
#include <Poco/Logger.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/crypto/keys.h"
#include "core/store/field_codec.h"
#include "core/store/migration.h"
#include "core/store/sealing.h"

namespace anm::store {
namespace {

using Clock = std::chrono::steady_clock;

Poco::Logger& logger() { return Poco::Logger::get("anm.store"); }

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// How long appendEvent waits, after its commit, for the follower to announce the event. The
// event is durable by then; past this the call returns anyway and logs why it waited.
constexpr auto kVisibleWait = std::chrono::seconds(5);

// Rows the follower reads per query, and how long a hole may last before it is reported.
constexpr int kFollowBatch = 1024;
constexpr auto kHoleReportEvery = std::chrono::seconds(10);
constexpr auto kHoleSkipAfter = std::chrono::seconds(30);

// The follower's pause after a failed query grows to this.
constexpr auto kMaxFollowBackoff = std::chrono::milliseconds(1000);

// How long the writer keeps trying to learn whether a COMMIT whose answer was lost took
// effect, before it refuses the batch's events as not stored.
constexpr auto kCommitCheckWindow = std::chrono::seconds(5);

// The longest the writer refuses appends without trying to connect, after connects failed.
constexpr auto kMaxConnectPause = std::chrono::milliseconds(2000);

// The server closes the writer's session after this long without a statement (see
// limitIdleSession), so the writer pings before a batch once it has been idle for half of it.
constexpr int kWriterIdleSeconds = 10;

// A pooled connection idle for longer is pinged before use: the server may have closed it.
constexpr auto kPingIdleAfter = std::chrono::seconds(30);

// How long a cached hook is used before it is read again (store.h).
constexpr auto kHookCacheAge = std::chrono::milliseconds(kHookCacheMs);

constexpr const char* kEventColumns =
    "id, hook_id, received_at_ms, method, path_suffix, raw_query, headers, body_size, verdict, "
    "reason, reason_message, event_type, delivery_id, replay_of, key_id, wrapped_key, "
    "seal_version, modified";

constexpr const char* kHookColumns =
    "id, provider, secret, tolerance_s, options, token_hash, created_at_ms, account_id, name, "
    "signing_secret, previous_signing_secret, previous_valid_until_ms, standard_webhooks, "
    "custom_response, expires_at_ms, key_id";

constexpr const char* kAccountColumns = "id, name, plan, disabled, created_at_ms";
constexpr const char* kMemberColumns = "id, account_id, name, is_owner, created_at_ms";
constexpr const char* kTokenColumns =
    "id, member_id, account_id, name, hash, created_at_ms, last_used_at_ms, revoked_at_ms";
constexpr const char* kAuditColumns =
    "id, at_ms, account_id, actor, action, hook_id, event_id, detail, remote";

// NOTE: DDL is not transactional in MySQL, so a step must be safe to run again after a crash
// in its middle: every statement is IF NOT EXISTS, INSERT IGNORE or one ALTER TABLE (which
// applyMigrations skips when its columns exist). Free-form bytes are BLOBs
// (binary-safe, no character set conversion); ids and names are utf8mb4 with a binary collation
// so that comparisons are exact.
const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "hooks, events, deliveries and the event id counter",
       {
           "CREATE TABLE IF NOT EXISTS hooks ("
           " id VARCHAR(64) NOT NULL PRIMARY KEY,"
           " provider VARCHAR(64) NOT NULL,"
           " secret BLOB NOT NULL,"
           " tolerance_s BIGINT NOT NULL,"
           " options MEDIUMBLOB NOT NULL,"  // field_codec.h encoding
           " token_hash VARCHAR(64) NOT NULL,"
           " created_at_ms BIGINT NOT NULL"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           // The counter that hands out event ids in commit order (see MySqlStore).
           "CREATE TABLE IF NOT EXISTS sequences ("
           " name VARCHAR(32) NOT NULL PRIMARY KEY,"
           " value BIGINT NOT NULL"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
           "INSERT IGNORE INTO sequences (name, value) VALUES ('event_id', 0)",

           // Headers are MEDIUMBLOB: 100 fields of 8 KiB exceed a BLOB's 64 KiB.
           "CREATE TABLE IF NOT EXISTS events ("
           " id BIGINT NOT NULL PRIMARY KEY,"
           " hook_id VARCHAR(64) NOT NULL,"
           " received_at_ms BIGINT NOT NULL,"
           " method MEDIUMBLOB NOT NULL,"
           " path_suffix MEDIUMBLOB NOT NULL,"
           " raw_query MEDIUMBLOB NOT NULL,"
           " headers MEDIUMBLOB NOT NULL,"  // field_codec.h encoding
           " body_size BIGINT NOT NULL,"
           " verdict INT NOT NULL,"
           " reason INT NOT NULL,"
           " reason_message MEDIUMBLOB NOT NULL,"
           " event_type MEDIUMBLOB NOT NULL,"
           " delivery_id MEDIUMBLOB NOT NULL,"
           " replay_of BIGINT NOT NULL DEFAULT 0,"
           // Random bytes of the writing edge, read back only when the answer to its COMMIT
           // was lost, to learn whether the row is its own.
           " write_token VARBINARY(16) NOT NULL DEFAULT '',"
           " body LONGBLOB NOT NULL,"
           " KEY events_by_hook_id (hook_id, id),"
           " KEY events_by_hook_time (hook_id, received_at_ms),"
           " CONSTRAINT events_hook FOREIGN KEY (hook_id) REFERENCES hooks (id)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           "CREATE TABLE IF NOT EXISTS deliveries ("
           " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
           " event_id BIGINT NOT NULL,"
           " relay_id MEDIUMBLOB NOT NULL,"
           " status INT NOT NULL,"
           " duration_ms BIGINT NOT NULL,"
           " error MEDIUMBLOB NOT NULL,"
           " reported_at_ms BIGINT NOT NULL,"
           " KEY deliveries_by_event (event_id, id),"
           " CONSTRAINT deliveries_event FOREIGN KEY (event_id) REFERENCES events (id)"
           "  ON DELETE CASCADE"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
       }},
      // The seq columns keep insertion order, which "oldest first" means when two rows share
      // a created_at_ms. Nothing references accounts by foreign key: a row of another table
      // names its account by id only, as the SQLite backend does.
      {2,
       "accounts, members, tokens, audit, settings, named hooks and encryption at rest",
       {
           "CREATE TABLE IF NOT EXISTS accounts ("
           " id VARCHAR(64) NOT NULL PRIMARY KEY,"
           " name VARCHAR(64) NOT NULL,"
           " plan INT NOT NULL,"
           " disabled TINYINT NOT NULL,"
           " created_at_ms BIGINT NOT NULL,"
           " seq BIGINT NOT NULL AUTO_INCREMENT,"
           " UNIQUE KEY accounts_by_name (name),"
           " UNIQUE KEY accounts_by_seq (seq)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           "CREATE TABLE IF NOT EXISTS members ("
           " id VARCHAR(64) NOT NULL PRIMARY KEY,"
           " account_id VARCHAR(64) NOT NULL,"
           " name VARCHAR(64) NOT NULL,"
           " is_owner TINYINT NOT NULL,"
           " created_at_ms BIGINT NOT NULL,"
           " seq BIGINT NOT NULL AUTO_INCREMENT,"
           " UNIQUE KEY members_by_name (account_id, name),"
           " UNIQUE KEY members_by_seq (seq)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           // Only the token's hash is stored (store.h).
           "CREATE TABLE IF NOT EXISTS tokens ("
           " id VARCHAR(64) NOT NULL PRIMARY KEY,"
           " member_id VARCHAR(64) NOT NULL,"
           " account_id VARCHAR(64) NOT NULL,"
           " name VARBINARY(255) NOT NULL,"
           " hash VARCHAR(128) NOT NULL,"
           " created_at_ms BIGINT NOT NULL,"
           " last_used_at_ms BIGINT NOT NULL,"
           " revoked_at_ms BIGINT NOT NULL,"
           " seq BIGINT NOT NULL AUTO_INCREMENT,"
           " UNIQUE KEY tokens_by_hash (hash),"
           " UNIQUE KEY tokens_by_seq (seq),"
           " KEY tokens_by_account (account_id, seq),"
           " KEY tokens_by_revocation (revoked_at_ms)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           // Free text is BLOB: a client address from X-Forwarded-For is the sender's choice,
           // and an audit entry must not fail for its length.
           "CREATE TABLE IF NOT EXISTS audit ("
           " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
           " at_ms BIGINT NOT NULL,"
           " account_id VARCHAR(64) NOT NULL,"
           " actor BLOB NOT NULL,"
           " action BLOB NOT NULL,"
           " hook_id BLOB NOT NULL,"
           " event_id BIGINT NOT NULL,"
           " detail MEDIUMBLOB NOT NULL,"
           " remote BLOB NOT NULL,"
           " KEY audit_by_account (account_id, id)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           // value is sealed under key_id; key_id '' holds it in the clear.
           "CREATE TABLE IF NOT EXISTS settings ("
           " name VARCHAR(191) NOT NULL PRIMARY KEY,"
           " value MEDIUMBLOB NOT NULL,"
           " key_id VARCHAR(32) NOT NULL DEFAULT ''"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

           // NOTE: an ALTER that ran before a crash fails with "duplicate column" when the step
           // runs again; applyMigrations takes that as done (each ALTER is one atomic change).
           // name is NULL for anonymous hooks, so that they never collide in the unique key.
           // New BLOB columns are NULL-able because MySQL gives BLOBs no literal default; NULL
           // reads as empty, as does an empty custom_response: none. Expired anonymous
           // hooks are erased (deleted_at_ms set, secrets blanked) rather than deleted, so the
           // edge needs no DELETE privilege.
           "ALTER TABLE hooks"
           " ADD COLUMN account_id VARCHAR(64) NOT NULL DEFAULT '',"
           " ADD COLUMN name VARCHAR(64) NULL,"
           " ADD COLUMN signing_secret BLOB NULL,"
           " ADD COLUMN previous_signing_secret BLOB NULL,"
           " ADD COLUMN previous_valid_until_ms BIGINT NOT NULL DEFAULT 0,"
           " ADD COLUMN standard_webhooks TINYINT NOT NULL DEFAULT 0,"
           " ADD COLUMN custom_response MEDIUMBLOB NULL,"  // field_codec.h encoding
           " ADD COLUMN expires_at_ms BIGINT NOT NULL DEFAULT 0,"
           " ADD COLUMN relay_id VARCHAR(64) NOT NULL DEFAULT '',"
           " ADD COLUMN relay_until_ms BIGINT NOT NULL DEFAULT 0,"
           " ADD COLUMN key_id VARCHAR(32) NOT NULL DEFAULT '',"
           " ADD COLUMN deleted_at_ms BIGINT NOT NULL DEFAULT 0,"
           " ADD COLUMN seq BIGINT NOT NULL AUTO_INCREMENT,"
           " ADD UNIQUE KEY hooks_by_seq (seq),"
           " ADD UNIQUE KEY hooks_by_account_name (account_id, name),"
           " ADD KEY hooks_by_expiry (expires_at_ms),"
           " ADD KEY hooks_by_key (key_id)",

           // raw_query, headers and body are sealed under the data key in wrapped_key, itself
           // sealed under key_id; key_id '' is a row in the clear (schema 1, or no key ring).
           // erased marks the events of an erased hook, whose contents are blanked.
           "ALTER TABLE events"
           " ADD COLUMN key_id VARCHAR(32) NOT NULL DEFAULT '',"
           " ADD COLUMN wrapped_key VARBINARY(255) NOT NULL DEFAULT '',"
           " ADD COLUMN erased TINYINT NOT NULL DEFAULT 0,"
           " ADD KEY events_by_key (key_id)",
       }},
      {3,
       "summary fields of events sealed like their contents",
       {
           // Which of a sealed event's values are sealed (sealing.h): rows sealed before this
           // step hold their path suffix, reason message, event type and delivery id in the
           // clear (1) until the step's row work, or a re-encryption, seals them (2). Edges of an
           // older build still writing to the database leave 1, which is then true. The key
           // finds what is left without reading every row.
           "ALTER TABLE events"
           " ADD COLUMN seal_version TINYINT NOT NULL DEFAULT 1,"
           " ADD KEY events_by_seal_version (seal_version)",
       },
       RowWork::kSealSummaryFields},
      {4,
       "what relays report of each delivery, and edited replays",
       {
           // The facts a relay reports beside the status (docs/diagnosis.md). response_excerpt
           // and location come from the developer's server: sealed (sealed = 1) under the data
           // key of their event when it is sealed, else in the clear; NULL (reports from before
           // this step, or from an edge of an older build) reads as empty.
           "ALTER TABLE deliveries"
           " ADD COLUMN phase TINYINT NOT NULL DEFAULT 0,"
           " ADD COLUMN timeout_ms BIGINT NOT NULL DEFAULT 0,"
           " ADD COLUMN target_https TINYINT NOT NULL DEFAULT 0,"
           " ADD COLUMN started_at_ms BIGINT NOT NULL DEFAULT 0,"
           " ADD COLUMN response_excerpt BLOB NULL,"
           " ADD COLUMN location BLOB NULL,"
           " ADD COLUMN sealed TINYINT NOT NULL DEFAULT 0",

           // An edited replay (store.h); in the clear like replay_of.
           "ALTER TABLE events ADD COLUMN modified TINYINT NOT NULL DEFAULT 0",
       }},
      {5,
       "the replays of an event",
       {
           // An event's detail lists its replays.
           "ALTER TABLE events ADD KEY events_by_replay_of (hook_id, replay_of)",
       }},
      {6,
       "access tokens ended by a sign-out",
       {
           // One row per signed-out access token (its jti) while it could still be used. The
           // edge has no DELETE privilege: endSession reuses a row past its time instead.
           "CREATE TABLE IF NOT EXISTS ended_sessions ("
           " jti VARCHAR(64) NOT NULL PRIMARY KEY,"
           " until_ms BIGINT NOT NULL,"
           " KEY ended_sessions_by_until (until_ms)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
       }},
  };
  return kMigrations;
}

// --- errors ---

// Codes after which the connection cannot be used again: the client library's own errors
// (2000..2999: gone away, lost, cannot connect, ...), a server shutting down (1053), a killed
// connection (1927) and MariaDB's idle timeout (4031).
bool isConnectionError(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  return (code >= 2000 && code < 3000) || code == 1053 || code == 1927 || code == 4031 || code == 0;
}

// Deadlock and lock wait timeout: nothing was written, the transaction may run again.
bool isRetryableConflict(const sql::SQLException& e) {
  return e.getErrorCode() == 1213 || e.getErrorCode() == 1205;
}

std::string describeSqlError(const sql::SQLException& e) {
  return std::string(e.what()) + " (mysql error " + std::to_string(e.getErrorCode()) + ")";
}

[[noreturn]] void throwStoreError(const std::string& what, const sql::SQLException& e) {
  throw StoreError(what + ": " + describeSqlError(e));
}

// --- the driver ---

sql::mysql::MySQL_Driver& driver() {
  // get_mysql_driver_instance() is not safe to call for the first time from two threads.
  static sql::mysql::MySQL_Driver* instance = [] {
    return sql::mysql::get_mysql_driver_instance();
  }();
  return *instance;
}

/// Connector/C++ keeps per-thread client state that each thread must set up and tear down.
struct DriverThread {
  DriverThread() { driver().threadInit(); }
  ~DriverThread() { driver().threadEnd(); }
};

void ensureDriverThread() { thread_local DriverThread thread; }

// --- one connection ---

/// A connection with the session settings every part needs and its prepared statements.
class Connection {
 public:
  Connection(const MySqlOptions& options, const std::string& purpose) {
    ensureDriverThread();
    const MySqlEndpoint& endpoint = options.endpoint;
    sql::ConnectOptionsMap properties;
    if (!endpoint.socketPath.empty()) {
      properties["hostName"] = sql::SQLString("unix://" + endpoint.socketPath);
    } else {
      properties["hostName"] =
          sql::SQLString("tcp://" + endpoint.host + ":" + std::to_string(endpoint.port));
    }
    properties["userName"] = sql::SQLString(endpoint.user);
    properties["password"] = sql::SQLString(endpoint.password);
    properties["schema"] = sql::SQLString(endpoint.database);
    properties["OPT_CONNECT_TIMEOUT"] = seconds(options.connectTimeout);
    properties["OPT_READ_TIMEOUT"] = seconds(options.ioTimeout);
    properties["OPT_WRITE_TIMEOUT"] = seconds(options.ioTimeout);
    properties["OPT_RECONNECT"] = false;  // a silent reconnect would lose a transaction
    properties["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    try {
      connection_.reset(driver().connect(properties));
      std::unique_ptr<sql::Statement> statement(connection_->createStatement());

      // Strict mode makes a value that does not fit an error instead of a silent cut;
      // READ COMMITTED keeps inserts of other edges from waiting on gap locks.
      statement->execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'");
      statement->execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
      statement->execute("SET SESSION innodb_lock_wait_timeout = " +
                         std::to_string(std::max<int64_t>(options.lockWaitTimeout.count(), 1)));
    } catch (const sql::SQLException& e) {
      throwStoreError("could not connect to mysql server=" + endpoint.describe() +
                          " database=" + endpoint.database + " for " + purpose,
                      e);
    }
    lastUsed_ = Clock::now();
  }

  sql::Connection& raw() { return *connection_; }

  sql::PreparedStatement& prepare(const std::string& text) {
    auto it = statements_.find(text);
    if (it != statements_.end()) {
      it->second->clearParameters();
      return *it->second;
    }
    std::unique_ptr<sql::PreparedStatement> statement(connection_->prepareStatement(text));
    return *statements_.emplace(text, std::move(statement)).first->second;
  }

  void execute(const std::string& text) {
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());

    // A result that is not read leaves the connection "out of sync" for the next command.
    if (statement->execute(text)) std::unique_ptr<sql::ResultSet> unread(statement->getResultSet());
  }

  // NOTE: transactions are driven with SQL statements. Connector/C++ 1.1's commit(),
  // rollback() and setAutoCommit() drop the client library's result, so a COMMIT that never
  // reached the server would look like one that succeeded.
  void begin() {
    if (!manualCommit_) execute("START TRANSACTION");
  }

  void commit() { execute("COMMIT"); }

  /// Leaves autocommit off for good: every statement is part of a transaction that commit()
  /// ends. The writer saves a round trip per batch this way.
  void useManualCommit() {
    execute("SET SESSION autocommit = 0");
    manualCommit_ = true;
  }

  /// The writer's session: a transaction holds the counter row that every edge needs, so a
  /// writer that stops answering (a frozen process, a lost network) must lose its session,
  /// and with it the lock, soon. The server ends a session idle for wait_timeout seconds.
  void limitIdleSession() {
    execute("SET SESSION wait_timeout = " + std::to_string(kWriterIdleSeconds));
  }

  void rollbackQuietly() {
    try {
      execute("ROLLBACK");
    } catch (const sql::SQLException&) {
      // The connection is dropped by the caller when it is broken; a failed rollback on a
      // live one means the server already rolled the transaction back.
    }
  }

  /// False when the server closed the connection while it sat idle for longer than idleLimit.
  bool stillAlive(std::chrono::seconds idleLimit = kPingIdleAfter) {
    if (Clock::now() - lastUsed_ < idleLimit) return true;
    try {
      return connection_->isValid();
    } catch (const sql::SQLException&) {
      return false;
    }
  }

  void touch() { lastUsed_ = Clock::now(); }

 private:
  static int seconds(std::chrono::milliseconds value) {
    return static_cast<int>(std::max<int64_t>((value.count() + 999) / 1000, 1));
  }

  std::unique_ptr<sql::Connection> connection_;
  std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>> statements_;
  Clock::time_point lastUsed_;
  bool manualCommit_ = false;
};

// --- row mapping ---

std::string column(sql::ResultSet& rs, uint32_t index) { return rs.getString(index).asStdString(); }

/// The key ring of one operation, or null when the store keeps everything in the clear.
using RingPtr = std::shared_ptr<const crypto::KeyRing>;

/// Reads an events row selected with kEventColumns (and body last when `withBody`). A sealed
/// row that does not open sets integrityError instead of its sealed values (store.h).
EventRecord readEvent(sql::ResultSet& rs, bool withBody, const crypto::KeyRing* ring) {
  EventRecord event;
  event.id = rs.getInt64(1);
  event.hookId = column(rs, 2);
  event.receivedAtMs = rs.getInt64(3);
  event.method = column(rs, 4);
  event.bodySize = rs.getInt64(8);
  event.verdict = static_cast<Verdict>(rs.getInt(9));
  event.reason = rs.getInt(10);
  event.replayOf = rs.getInt64(14);
  event.modified = rs.getInt(18) != 0;
  StoredContents stored;
  stored.wrapped = WrappedKey{column(rs, 15), column(rs, 16)};
  if (!stored.wrapped.keyId.empty() && ring == nullptr) {
    event.integrityError = "event " + std::to_string(event.id) + " is encrypted under key " +
                           stored.wrapped.keyId + " and the store was opened without a key ring";
    return event;
  }
  stored.sealVersion = rs.getInt(17);
  stored.query = column(rs, 6);
  stored.headers = column(rs, 7);
  const std::string body = withBody ? column(rs, 19) : std::string();
  if (withBody) stored.body = &body;
  stored.summary = SummaryFields{column(rs, 5), column(rs, 11), column(rs, 12), column(rs, 13)};
  static const crypto::KeyRing kNoKeys;
  openContents(ring != nullptr ? *ring : kNoKeys, stored, event);
  return event;
}

/// The delivery columns every read takes, with what opening their sealed values needs of their
/// event (d and e are deliveries and events).
constexpr const char* kDeliveryColumns =
    "d.event_id, d.relay_id, d.status, d.duration_ms, d.error, d.reported_at_ms, d.phase, "
    "d.timeout_ms, d.target_https, d.started_at_ms, d.response_excerpt, d.location, d.sealed, "
    "e.hook_id, e.key_id, e.wrapped_key";

/// Reads a row selected with kDeliveryColumns, its sealed values opened through `sealer`.
DeliveryRecord readDelivery(sql::ResultSet& rs, DeliverySealer& sealer) {
  DeliveryRecord delivery;
  delivery.eventId = rs.getInt64(1);
  delivery.relayId = column(rs, 2);
  delivery.status = rs.getInt(3);
  delivery.durationMs = rs.getInt64(4);
  delivery.error = column(rs, 5);
  delivery.reportedAtMs = rs.getInt64(6);
  delivery.phase = deliveryPhaseOf(rs.getInt(7));
  delivery.timeoutMs = rs.getInt64(8);
  delivery.targetHttps = rs.getInt(9) != 0;
  delivery.startedAtMs = rs.getInt64(10);
  const StoredDeliveryText stored{column(rs, 11), column(rs, 12), rs.getInt(13) != 0};
  sealer.open(delivery,
              DeliveryEvent{delivery.eventId, column(rs, 14), {column(rs, 15), column(rs, 16)}},
              stored);
  return delivery;
}

/// The clear text of one secret field of a row sealed under `keyId` ('' for the clear).
std::string openStored(const crypto::KeyRing* ring, const std::string& keyId,
                       const std::string& stored, const char* table, const std::string& rowId,
                       const char* field) {
  if (keyId.empty()) return stored;
  if (ring == nullptr) {
    throw StoreError(std::string("could not read ") + table + " " + rowId + ": its " + field +
                     " is encrypted under key " + keyId +
                     " and the store was opened without a key ring");
  }
  try {
    return openField(*ring, WrappedKey{keyId, stored}, table, rowId, field);
  } catch (const crypto::IntegrityError& e) {
    throw StoreError(std::string("could not read ") + table + " " + rowId + ": " + e.what());
  }
}

/// Reads a hooks row selected with kHookColumns, opening its secrets.
HookRecord readHook(sql::ResultSet& rs, const crypto::KeyRing* ring) {
  HookRecord hook;
  hook.id = column(rs, 1);
  hook.provider = column(rs, 2);
  hook.toleranceS = rs.getInt64(4);
  hook.options = decodeOptions(column(rs, 5));
  hook.tokenHash = column(rs, 6);
  hook.createdAtMs = rs.getInt64(7);
  hook.accountId = column(rs, 8);
  hook.name = column(rs, 9);
  hook.previousValidUntilMs = rs.getInt64(12);
  hook.standardWebhooks = rs.getInt(13) != 0;
  hook.customResponse = decodeCustomResponse(column(rs, 14));
  hook.expiresAtMs = rs.getInt64(15);
  const std::string keyId = column(rs, 16);
  hook.secret = openStored(ring, keyId, column(rs, 3), "hooks", hook.id, "secret");
  hook.signingSecret = openStored(ring, keyId, column(rs, 10), "hooks", hook.id, "signing_secret");
  hook.previousSigningSecret =
      openStored(ring, keyId, column(rs, 11), "hooks", hook.id, "previous_signing_secret");
  return hook;
}

/// A hook's secret fields as they are stored: sealed under the ring's active key, or in the
/// clear without a ring.
struct StoredSecrets {
  std::string keyId;
  std::string secret;
  std::string signingSecret;
  std::string previousSigningSecret;
};

StoredSecrets sealSecrets(const crypto::KeyRing* ring, const HookRecord& hook) {
  if (ring == nullptr) {
    return {"", hook.secret, hook.signingSecret, hook.previousSigningSecret};
  }
  StoredSecrets stored;
  WrappedKey secret = sealField(*ring, hook.secret, "hooks", hook.id, "secret");
  stored.keyId = secret.keyId;
  stored.secret = std::move(secret.sealed);
  stored.signingSecret =
      sealField(*ring, hook.signingSecret, "hooks", hook.id, "signing_secret").sealed;
  stored.previousSigningSecret =
      sealField(*ring, hook.previousSigningSecret, "hooks", hook.id, "previous_signing_secret")
          .sealed;
  return stored;
}

AccountRecord readAccount(sql::ResultSet& rs) {
  AccountRecord account;
  account.id = column(rs, 1);
  account.name = column(rs, 2);
  account.plan = static_cast<Plan>(rs.getInt(3));
  account.disabled = rs.getInt(4) != 0;
  account.createdAtMs = rs.getInt64(5);
  return account;
}

MemberRecord readMember(sql::ResultSet& rs) {
  MemberRecord member;
  member.id = column(rs, 1);
  member.accountId = column(rs, 2);
  member.name = column(rs, 3);
  member.owner = rs.getInt(4) != 0;
  member.createdAtMs = rs.getInt64(5);
  return member;
}

TokenRecord readToken(sql::ResultSet& rs) {
  TokenRecord token;
  token.id = column(rs, 1);
  token.memberId = column(rs, 2);
  token.accountId = column(rs, 3);
  token.name = column(rs, 4);
  token.hash = column(rs, 5);
  token.createdAtMs = rs.getInt64(6);
  token.lastUsedAtMs = rs.getInt64(7);
  token.revokedAtMs = rs.getInt64(8);
  return token;
}

AuditRecord readAudit(sql::ResultSet& rs) {
  AuditRecord entry;
  entry.id = rs.getInt64(1);
  entry.atMs = rs.getInt64(2);
  entry.accountId = column(rs, 3);
  entry.actor = column(rs, 4);
  entry.action = column(rs, 5);
  entry.hookId = column(rs, 6);
  entry.eventId = rs.getInt64(7);
  entry.detail = column(rs, 8);
  entry.remote = column(rs, 9);
  return entry;
}

/// A duplicate key error (1062) on the unique key `key`: MariaDB names it 'key', MySQL
/// 'table.key'.
bool isDuplicateOn(const sql::SQLException& e, const char* key) {
  return e.getErrorCode() == 1062 && std::string(e.what()).find(key) != std::string::npos;
}

bool isForwardable(Verdict verdict, int64_t replayOf) {
  return verdict != Verdict::kInvalid || replayOf != 0;
}

/// One event waiting for the writer. The caller's thread waits until `done`.
struct AppendJob {
  EventRecord* event = nullptr;
  /// With a key ring: the contents and summary fields sealed on the caller's thread (the
  /// event's own are cleared then), and the data key wrapped by the writer.
  std::optional<SealedContents> sealed;
  WrappedKey wrapped;
  size_t payloadBytes = 0;  ///< body bytes, for the batch's byte limit
  int64_t id = 0;
  std::string writeToken;  ///< random, stored with the row (see resolveUnconfirmedCommit)
  std::string error;       ///< set when the event was not stored
  bool done = false;
  std::condition_variable doneCv;  ///< one per job: waking every waiter per batch costs CPU
};

}  // namespace

// --- the URL ---

std::string MySqlEndpoint::describe() const {
  if (!socketPath.empty()) return socketPath;
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

std::string percentDecode(const std::string& text, const char* what) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= text.size()) {
      throw std::invalid_argument(std::string("bad percent-encoding in the ") + what);
    }
    const int high = hex(text[i + 1]);
    const int low = hex(text[i + 2]);
    if (high < 0 || low < 0) {
      throw std::invalid_argument(std::string("bad percent-encoding in the ") + what);
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

}  // namespace

MySqlEndpoint parseMySqlUrl(const std::string& url) {
  const std::string scheme = "mysql://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    throw std::invalid_argument("a mysql store URL starts with mysql://");
  }
  std::string rest = url.substr(scheme.size());
  MySqlEndpoint endpoint;

  // Credentials end at the last '@' before the path, so a password may hold '@' unencoded.
  const size_t slash = rest.find('/', rest.rfind('@') == std::string::npos ? 0 : rest.rfind('@'));
  if (slash == std::string::npos) {
    throw std::invalid_argument("the mysql URL has no /DATABASE (mysql://USER@HOST/DATABASE)");
  }
  const std::string authority = rest.substr(0, slash);
  std::string path = rest.substr(slash + 1);
  const size_t at = authority.rfind('@');
  if (at == std::string::npos || at == 0) {
    throw std::invalid_argument("the mysql URL names no user (mysql://USER@HOST/DATABASE)");
  }
  const std::string credentials = authority.substr(0, at);
  const size_t colon = credentials.find(':');
  endpoint.user = percentDecode(credentials.substr(0, colon), "user");
  if (endpoint.user.empty()) throw std::invalid_argument("the mysql URL names no user");
  if (colon != std::string::npos) {
    try {
      endpoint.password = percentDecode(credentials.substr(colon + 1), "password");
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("bad percent-encoding in the password of the mysql URL");
    }
  }

  // Host: a name, an IPv4 address or [IPv6], then an optional :PORT.
  std::string hostPort = authority.substr(at + 1);
  std::string portText;
  if (!hostPort.empty() && hostPort[0] == '[') {
    const size_t close = hostPort.find(']');
    if (close == std::string::npos) throw std::invalid_argument("unclosed [ in the mysql host");
    endpoint.host = hostPort.substr(1, close - 1);
    std::string after = hostPort.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw std::invalid_argument("unexpected text after the mysql host");
      portText = after.substr(1);
    }
  } else {
    const size_t portColon = hostPort.find(':');
    endpoint.host = hostPort.substr(0, portColon);
    if (portColon != std::string::npos) portText = hostPort.substr(portColon + 1);
  }
  if (endpoint.host.empty()) throw std::invalid_argument("the mysql URL names no host");
  for (char c : endpoint.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
          c == ':')) {
      throw std::invalid_argument("invalid character in the mysql host \"" + endpoint.host + "\"");
    }
  }
  if (hostPort.find(':') != std::string::npos && portText.empty() && hostPort[0] != '[') {
    throw std::invalid_argument("empty port in the mysql URL");
  }
  if (!portText.empty()) {
    if (portText.size() > 5 || !std::all_of(portText.begin(), portText.end(),
                                            [](char c) { return c >= '0' && c <= '9'; })) {
      throw std::invalid_argument("the mysql port must be a number from 1 to 65535");
    }
    const int port = std::stoi(portText);
    if (port < 1 || port > 65535) {
      throw std::invalid_argument("the mysql port must be a number from 1 to 65535");
    }
    endpoint.port = static_cast<uint16_t>(port);
  }

  // Database, then an optional ?socket=PATH.
  std::string query;
  const size_t question = path.find('?');
  if (question != std::string::npos) {
    query = path.substr(question + 1);
    path = path.substr(0, question);
  }
  endpoint.database = path;
  if (endpoint.database.empty() || endpoint.database.size() > 64 ||
      !std::all_of(endpoint.database.begin(), endpoint.database.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
      })) {
    throw std::invalid_argument(
        "the mysql database name must be 1 to 64 of A-Z a-z 0-9 _ $, not \"" + endpoint.database +
        "\"");
  }
  if (!query.empty()) {
    std::stringstream parts(query);
    std::string part;
    while (std::getline(parts, part, '&')) {
      const size_t eq = part.find('=');
      const std::string key = part.substr(0, eq);
      if (key != "socket" || eq == std::string::npos) {
        throw std::invalid_argument("unknown mysql URL parameter \"" + key +
                                    "\"; the only one is socket=PATH");
      }
      endpoint.socketPath = percentDecode(part.substr(eq + 1), "socket path");
      if (endpoint.socketPath.empty() || endpoint.socketPath[0] != '/') {
        throw std::invalid_argument("the mysql socket must be an absolute path");
      }
    }
  }
  return endpoint;
}

// --- the store ---

class MySqlStore::Impl {
 public:
  explicit Impl(const MySqlOptions& options) : options_(options) {
    options_.poolSize = std::max<size_t>(options_.poolSize, 1);
    options_.maxBatchJobs = std::max<size_t>(options_.maxBatchJobs, 1);
    if (options_.pollInterval.count() < 1) options_.pollInterval = std::chrono::milliseconds(1);
  }

  ~Impl() { stop(); }

  void open() {
    // The first connection creates the schema; the writer and follower get theirs after.
    writer_ = std::make_unique<Connection>(options_, "writing");
    migrate(*writer_);
    checkPrivileges(*writer_);
    if (!options_.keys) refuseSealedRecords(*writer_);
    logServer(*writer_);
    writer_->useManualCommit();
    writer_->limitIdleSession();

    // Announcements start after the newest id that exists now: listEvents serves older ones.
    follower_ = std::make_unique<Connection>(options_, "following new events");
    // A counter behind the newest event (a restored backup, a hand edit) would hand out ids
    // that exist; starting above both keeps ids unique and increasing for every relay.
    const int64_t counter = counterValue(*follower_);
    const int64_t newest = newestEventId(*follower_);
    if (newest > counter) {
      logger().warning(
          Poco::format("event counter is behind the newest event counter=%Ld "
                       "newest_id=%Ld; new ids continue above the newest",
                       static_cast<Poco::Int64>(counter), static_cast<Poco::Int64>(newest)));
    }
    visibleThrough_ = std::max(counter, newest);
    initialCounter_ = visibleThrough_;
    announcedThrough_ = visibleThrough_;
    stats_.visibleThrough = visibleThrough_;

    writerThread_ = std::thread([this] { runWriter(); });
    followerThread_ = std::thread([this] { runFollower(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    queueCv_.notify_all();
    followCv_.notify_all();
    if (writerThread_.joinable()) writerThread_.join();
    if (followerThread_.joinable()) followerThread_.join();
    std::lock_guard<std::mutex> lock(poolMu_);
    idle_.clear();
  }

  // --- hooks ---

  void createHook(const HookRecord& hook) {
    withConnection("create hook", false, [&](Connection& c) {
      insertHook(c, hook);
      return 0;
    });
  }

  void createHookWithin(const HookRecord& hook, size_t maxNamedHooks) {
    withConnection("create hook", false, [&](Connection& c) {
      c.begin();
      try {
        // The account row is the lock: edges creating hooks for one account take turns here,
        // so that the count below is still true when the INSERT commits.
        auto& lock = c.prepare("SELECT id FROM accounts WHERE id = ? FOR UPDATE");
        lock.setString(1, hook.accountId);
        std::unique_ptr<sql::ResultSet> account(lock.executeQuery());
        if (!account->next()) throw StoreError("unknown account " + hook.accountId);
        account.reset();

        // A taken name is the answer a caller can act on, so it wins over the limit.
        auto& taken = c.prepare(
            "SELECT COUNT(*) FROM hooks WHERE account_id = ? AND name = ? AND deleted_at_ms = 0");
        taken.setString(1, hook.accountId);
        taken.setString(2, hook.name);
        if (countOf(taken) > 0) throw ConflictError("a hook named " + hook.name + " exists");

        auto& count = c.prepare(
            "SELECT COUNT(*) FROM hooks WHERE account_id = ? AND name IS NOT NULL "
            "AND deleted_at_ms = 0");
        count.setString(1, hook.accountId);
        // Compared as unsigned: the largest size_t means no limit and must not turn negative.
        if (static_cast<uint64_t>(countOf(count)) >= static_cast<uint64_t>(maxNamedHooks)) {
          throw LimitError("account " + hook.accountId + " has " + std::to_string(maxNamedHooks) +
                           " named hooks, the most its plan allows");
        }
        insertHook(c, hook);
        c.commit();
      } catch (...) {
        c.rollbackQuietly();
        throw;
      }
      return 0;
    });
  }

  bool updateHook(const HookRecord& hook) {
    const RingPtr ring = currentRing();
    const StoredSecrets secrets = sealSecrets(ring.get(), hook);
    const bool found = withConnection("update hook", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "UPDATE hooks SET provider = ?, secret = ?, tolerance_s = ?, options = ?, "
          "signing_secret = ?, previous_signing_secret = ?, previous_valid_until_ms = ?, "
          "standard_webhooks = ?, custom_response = ?, expires_at_ms = ?, key_id = ? "
          "WHERE id = ? AND deleted_at_ms = 0");
      statement.setString(1, hook.provider);
      statement.setString(2, secrets.secret);
      statement.setInt64(3, hook.toleranceS);
      statement.setString(4, encodeOptions(hook.options));
      statement.setString(5, secrets.signingSecret);
      statement.setString(6, secrets.previousSigningSecret);
      statement.setInt64(7, hook.previousValidUntilMs);
      statement.setInt(8, hook.standardWebhooks ? 1 : 0);
      statement.setString(9, encodeCustomResponse(hook.customResponse));
      statement.setInt64(10, hook.expiresAtMs);
      statement.setString(11, secrets.keyId);
      statement.setString(12, hook.id);
      if (statement.executeUpdate() == 1) return true;

      // The server counts changed rows: an update to the same values changes none.
      return hookExists(c, hook.id);
    });
    forgetHook(hook.id);
    return found;
  }

  std::optional<HookRecord> findHook(const std::string& hookId) {
    uint64_t generation = 0;
    {
      std::lock_guard<std::mutex> lock(hookMu_);
      auto it = hooks_.find(hookId);
      if (it != hooks_.end() && Clock::now() - it->second.fetched < kHookCacheAge) {
        return it->second.hook;
      }
      generation = hookGeneration_;
    }
    const RingPtr ring = currentRing();
    auto hook = withConnection("find hook", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kHookColumns +
                                  " FROM hooks WHERE id = ? AND deleted_at_ms = 0");
      statement.setString(1, hookId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::optional<HookRecord> found;
      if (rs->next()) found = readHook(*rs, ring.get());
      return found;
    });

    // Only hooks that exist are cached: one created later on another edge must be found. A
    // change this store made while the read ran leaves the (maybe older) row uncached.
    if (hook) {
      std::lock_guard<std::mutex> lock(hookMu_);
      if (generation == hookGeneration_) cacheHook(*hook);
    }
    return hook;
  }

  std::vector<HookRecord> listHooks(const std::string& accountId) {
    const RingPtr ring = currentRing();
    return withConnection("list hooks", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kHookColumns +
                                  " FROM hooks WHERE account_id = ? AND deleted_at_ms = 0 "
                                  "ORDER BY created_at_ms, seq");
      statement.setString(1, accountId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<HookRecord> rows;
      while (rs->next()) rows.push_back(readHook(*rs, ring.get()));
      return rows;
    });
  }

  std::optional<HookRecord> findHookByName(const std::string& accountId, const std::string& name) {
    const RingPtr ring = currentRing();
    return withConnection("find hook", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kHookColumns +
                                  " FROM hooks WHERE account_id = ? AND name = ? "
                                  "AND deleted_at_ms = 0");
      statement.setString(1, accountId);
      statement.setString(2, name);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::optional<HookRecord> found;
      if (rs->next()) found = readHook(*rs, ring.get());
      return found;
    });
  }

  /// Erases rather than deletes (the edge's user has no DELETE, README "Running on MySQL"):
  /// the hook is marked deleted with its secrets and token hash blanked, and its events lose
  /// their contents and provider metadata. Each hook goes in its own transaction, which checks
  /// the expiry again so that an extension another edge made meanwhile wins.
  size_t deleteExpiredHooks(int64_t nowMs) {
    const std::vector<std::string> expired =
        withConnection("find expired hooks", true, [&](Connection& c) {
          auto& statement = c.prepare(
              "SELECT id FROM hooks WHERE expires_at_ms > 0 AND expires_at_ms < ? "
              "AND deleted_at_ms = 0");
          statement.setInt64(1, nowMs);
          std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
          std::vector<std::string> ids;
          while (rs->next()) ids.push_back(column(*rs, 1));
          return ids;
        });
    size_t erased = 0;
    for (const std::string& hookId : expired) {
      const bool gone = withConnection("delete expired hook", false, [&](Connection& c) {
        c.begin();
        try {
          auto& hook = c.prepare(
              "UPDATE hooks SET deleted_at_ms = ?, secret = '', signing_secret = '', "
              "previous_signing_secret = '', token_hash = '', options = '', custom_response = '', "
              "relay_id = '', key_id = '' "
              "WHERE id = ? AND expires_at_ms > 0 AND expires_at_ms < ? AND deleted_at_ms = 0");
          hook.setInt64(1, std::max<int64_t>(nowMs, 1));
          hook.setString(2, hookId);
          hook.setInt64(3, nowMs);
          if (hook.executeUpdate() != 1) {
            c.rollbackQuietly();
            return false;
          }
          auto& deliveries = c.prepare(
              "UPDATE deliveries d JOIN events e ON e.id = d.event_id "
              "SET d.response_excerpt = NULL, d.location = NULL, d.sealed = 0 "
              "WHERE e.hook_id = ? AND e.erased = 0");
          deliveries.setString(1, hookId);
          deliveries.executeUpdate();
          auto& events = c.prepare(
              "UPDATE events SET erased = 1, path_suffix = '', raw_query = '', headers = '', "
              "body = '', reason_message = '', event_type = '', delivery_id = '', "
              "key_id = '', wrapped_key = '' WHERE hook_id = ? AND erased = 0");
          events.setString(1, hookId);
          events.executeUpdate();
          c.commit();
        } catch (...) {
          c.rollbackQuietly();
          throw;
        }
        return true;
      });
      if (gone) ++erased;
      forgetHook(hookId);
    }
    return erased;
  }

  void extendHook(const std::string& hookId, int64_t expiresAtMs) {
    withConnection("extend hook", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "UPDATE hooks SET expires_at_ms = ? WHERE id = ? AND expires_at_ms > 0 "
          "AND expires_at_ms < ? AND deleted_at_ms = 0");
      statement.setInt64(1, expiresAtMs);
      statement.setString(2, hookId);
      statement.setInt64(3, expiresAtMs);
      statement.executeUpdate();
      return 0;
    });
    forgetHook(hookId);
  }

  bool claimRelay(const std::string& hookId, const std::string& relayId, int64_t nowMs,
                  int64_t untilMs) {
    return takeLease(hookId, relayId, "", nowMs, untilMs);
  }

  bool takeOverRelay(const std::string& hookId, const std::string& holder,
                     const std::string& relayPrefix, int64_t nowMs, int64_t untilMs) {
    if (relayPrefix.empty()) throw StoreError("could not take the relay lease: no relay prefix");
    return takeLease(hookId, holder, relayPrefix, nowMs, untilMs);
  }

  // claimRelay, and with a prefix also from a holder whose text starts with it.
  bool takeLease(const std::string& hookId, const std::string& holder,
                 const std::string& relayPrefix, int64_t nowMs, int64_t untilMs) {
    return withConnection("claim relay lease", false, [&](Connection& c) {
      // One statement decides, so two edges claiming at once cannot both win.
      auto& claim = c.prepare(
          "UPDATE hooks SET relay_id = ?, relay_until_ms = ? WHERE id = ? AND deleted_at_ms = 0 "
          "AND (relay_id = '' OR relay_until_ms < ? OR relay_id = ? "
          "OR (? <> '' AND LEFT(relay_id, CHAR_LENGTH(?)) = ?))");
      claim.setString(1, holder);
      claim.setInt64(2, untilMs);
      claim.setString(3, hookId);
      claim.setInt64(4, nowMs);
      claim.setString(5, holder);
      claim.setString(6, relayPrefix);
      claim.setString(7, relayPrefix);
      claim.setString(8, relayPrefix);
      if (claim.executeUpdate() == 1) return true;

      // No row changed: the lease is another relay's, or already this holder's until untilMs.
      auto& current = c.prepare("SELECT relay_id FROM hooks WHERE id = ? AND deleted_at_ms = 0");
      current.setString(1, hookId);
      std::unique_ptr<sql::ResultSet> rs(current.executeQuery());
      return rs->next() && column(*rs, 1) == holder;
    });
  }

  void releaseRelay(const std::string& hookId, const std::string& relayId) {
    withConnection("release relay lease", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "UPDATE hooks SET relay_id = '', relay_until_ms = 0 WHERE id = ? AND relay_id = ?");
      statement.setString(1, hookId);
      statement.setString(2, relayId);
      statement.executeUpdate();
      return 0;
    });
  }

  // --- accounts, members, tokens ---

  void createAccount(const AccountRecord& account) {
    withConnection("create account", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "INSERT INTO accounts (id, name, plan, disabled, created_at_ms) VALUES (?, ?, ?, ?, ?)");
      statement.setString(1, account.id);
      statement.setString(2, account.name);
      statement.setInt(3, static_cast<int32_t>(account.plan));
      statement.setInt(4, account.disabled ? 1 : 0);
      statement.setInt64(5, account.createdAtMs);
      try {
        statement.executeUpdate();
      } catch (const sql::SQLException& e) {
        if (isDuplicateOn(e, "accounts_by_name")) {
          throw ConflictError("an account named " + account.name + " exists");
        }
        if (e.getErrorCode() == 1062) throw StoreError("account " + account.id + " exists already");
        throw;
      }
      return 0;
    });
  }

  std::optional<AccountRecord> findAccount(const std::string& accountId) {
    return findOne<AccountRecord>("find account", kAccountColumns, "accounts", "id", accountId,
                                  readAccount);
  }

  std::optional<AccountRecord> findAccountByName(const std::string& name) {
    return findOne<AccountRecord>("find account", kAccountColumns, "accounts", "name", name,
                                  readAccount);
  }

  std::vector<AccountRecord> listAccounts() {
    return withConnection("list accounts", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kAccountColumns +
                                  " FROM accounts ORDER BY created_at_ms, seq");
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<AccountRecord> rows;
      while (rs->next()) rows.push_back(readAccount(*rs));
      return rows;
    });
  }

  bool updateAccount(const AccountRecord& account) {
    return withConnection("update account", false, [&](Connection& c) {
      auto& statement = c.prepare("UPDATE accounts SET plan = ?, disabled = ? WHERE id = ?");
      statement.setInt(1, static_cast<int32_t>(account.plan));
      statement.setInt(2, account.disabled ? 1 : 0);
      statement.setString(3, account.id);
      if (statement.executeUpdate() == 1) return true;
      auto& exists = c.prepare("SELECT COUNT(*) FROM accounts WHERE id = ?");
      exists.setString(1, account.id);
      return countOf(exists) > 0;
    });
  }

  void createMember(const MemberRecord& member) {
    withConnection("create member", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "INSERT INTO members (id, account_id, name, is_owner, created_at_ms) "
          "VALUES (?, ?, ?, ?, ?)");
      statement.setString(1, member.id);
      statement.setString(2, member.accountId);
      statement.setString(3, member.name);
      statement.setInt(4, member.owner ? 1 : 0);
      statement.setInt64(5, member.createdAtMs);
      try {
        statement.executeUpdate();
      } catch (const sql::SQLException& e) {
        if (isDuplicateOn(e, "members_by_name")) {
          throw ConflictError("a member named " + member.name + " exists");
        }
        if (e.getErrorCode() == 1062) throw StoreError("member " + member.id + " exists already");
        throw;
      }
      return 0;
    });
  }

  std::optional<MemberRecord> findMember(const std::string& memberId) {
    return findOne<MemberRecord>("find member", kMemberColumns, "members", "id", memberId,
                                 readMember);
  }

  std::vector<MemberRecord> listMembers(const std::string& accountId) {
    return withConnection("list members", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kMemberColumns +
                                  " FROM members WHERE account_id = ? ORDER BY created_at_ms, seq");
      statement.setString(1, accountId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<MemberRecord> rows;
      while (rs->next()) rows.push_back(readMember(*rs));
      return rows;
    });
  }

  void createToken(const TokenRecord& token) {
    withConnection("create token", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "INSERT INTO tokens (id, member_id, account_id, name, hash, created_at_ms, "
          "last_used_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      statement.setString(1, token.id);
      statement.setString(2, token.memberId);
      statement.setString(3, token.accountId);
      statement.setString(4, token.name);
      statement.setString(5, token.hash);
      statement.setInt64(6, token.createdAtMs);
      statement.setInt64(7, token.lastUsedAtMs);
      statement.setInt64(8, token.revokedAtMs);
      try {
        statement.executeUpdate();
      } catch (const sql::SQLException& e) {
        if (e.getErrorCode() == 1062) throw StoreError("token " + token.id + " exists already");
        throw;
      }
      return 0;
    });
  }

  std::optional<TokenRecord> findTokenByHash(const std::string& hash) {
    return findOne<TokenRecord>("find token", kTokenColumns, "tokens", "hash", hash, readToken);
  }

  std::optional<TokenRecord> findToken(const std::string& tokenId) {
    return findOne<TokenRecord>("find token", kTokenColumns, "tokens", "id", tokenId, readToken);
  }

  std::vector<TokenRecord> listTokens(const std::string& accountId) {
    return withConnection("list tokens", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kTokenColumns +
                                  " FROM tokens WHERE account_id = ? ORDER BY created_at_ms, seq");
      statement.setString(1, accountId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<TokenRecord> rows;
      while (rs->next()) rows.push_back(readToken(*rs));
      return rows;
    });
  }

  bool revokeToken(const std::string& tokenId, int64_t nowMs) {
    return withConnection("revoke token", false, [&](Connection& c) {
      // revoked_at_ms 0 means live, so a revocation at 0 would not count as one.
      auto& statement =
          c.prepare("UPDATE tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms = 0");
      statement.setInt64(1, std::max<int64_t>(nowMs, 1));
      statement.setString(2, tokenId);
      return statement.executeUpdate() == 1;
    });
  }

  std::vector<std::string> revokedTokensSince(int64_t sinceMs) {
    return withConnection("list revoked tokens", true, [&](Connection& c) {
      auto& statement = c.prepare(
          "SELECT id FROM tokens WHERE revoked_at_ms >= ? AND revoked_at_ms > 0 "
          "ORDER BY revoked_at_ms, seq");
      statement.setInt64(1, sinceMs);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<std::string> ids;
      while (rs->next()) ids.push_back(column(*rs, 1));
      return ids;
    });
  }

  void endSession(const std::string& sessionId, int64_t untilMs, int64_t nowMs) {
    withConnection("end session", true, [&](Connection& c) {
      // A row past its time takes the new one, so the table holds about as many rows as
      // sign-outs whose tokens could still be used; only when none is free does it grow. A
      // token ended twice keeps its own row (the reuse would duplicate its key).
      auto& reuse = c.prepare(
          "UPDATE ended_sessions SET jti = ?, until_ms = ? WHERE until_ms <= ? "
          "ORDER BY until_ms LIMIT 1");
      reuse.setString(1, sessionId);
      reuse.setInt64(2, untilMs);
      reuse.setInt64(3, nowMs);
      try {
        if (reuse.executeUpdate() == 1) return 0;
      } catch (const sql::SQLException& e) {
        if (e.getErrorCode() != 1062) throw;
      }
      auto& insert = c.prepare(
          "INSERT INTO ended_sessions (jti, until_ms) VALUES (?, ?) "
          "ON DUPLICATE KEY UPDATE until_ms = GREATEST(until_ms, VALUES(until_ms))");
      insert.setString(1, sessionId);
      insert.setInt64(2, untilMs);
      insert.executeUpdate();
      return 0;
    });
  }

  bool sessionEnded(const std::string& sessionId, int64_t nowMs) {
    return withConnection("find ended session", true, [&](Connection& c) {
      auto& statement = c.prepare("SELECT 1 FROM ended_sessions WHERE jti = ? AND until_ms > ?");
      statement.setString(1, sessionId);
      statement.setInt64(2, nowMs);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      return rs->next();
    });
  }

  void touchToken(const std::string& tokenId, int64_t nowMs) {
    withConnection("touch token", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "UPDATE tokens SET last_used_at_ms = GREATEST(last_used_at_ms, ?) WHERE id = ?");
      statement.setInt64(1, nowMs);
      statement.setString(2, tokenId);
      statement.executeUpdate();
      return 0;
    });
  }

  // --- audit ---

  int64_t appendAudit(const AuditRecord& entry) {
    return withConnection("append audit entry", false, [&](Connection& c) {
      // Autocommit: the entry is committed (and with the server's default durability, on
      // disk) when the INSERT returns.
      auto& statement = c.prepare(
          "INSERT INTO audit (at_ms, account_id, actor, action, hook_id, event_id, detail, "
          "remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      statement.setInt64(1, entry.atMs);
      statement.setString(2, entry.accountId);
      statement.setString(3, entry.actor);
      statement.setString(4, entry.action);
      statement.setString(5, entry.hookId);
      statement.setInt64(6, entry.eventId);
      statement.setString(7, entry.detail);
      statement.setString(8, entry.remote);
      statement.executeUpdate();
      return lastInsertId(c);
    });
  }

  std::vector<AuditRecord> listAudit(const std::string& accountId, int64_t afterId, size_t limit) {
    if (limit == 0) return {};
    return withConnection("list audit entries", true, [&](Connection& c) {
      auto& statement =
          c.prepare(std::string("SELECT ") + kAuditColumns +
                    " FROM audit WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?");
      statement.setString(1, accountId);
      statement.setInt64(2, afterId);
      statement.setInt64(3, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<AuditRecord> rows;
      while (rs->next()) rows.push_back(readAudit(*rs));
      return rows;
    });
  }

  // --- settings ---

  std::optional<std::string> getSetting(const std::string& name) {
    const RingPtr ring = currentRing();
    return withConnection("read setting", true,
                          [&](Connection& c) { return readSetting(c, name, ring.get()); });
  }

  std::string putSettingIfAbsent(const std::string& name, const std::string& value) {
    const RingPtr ring = currentRing();
    const WrappedKey stored = sealSetting(ring.get(), name, value);
    return withConnection("store setting", false, [&](Connection& c) {
      // INSERT IGNORE keeps the first edge's value; each edge then reads the one that won.
      auto& insert =
          c.prepare("INSERT IGNORE INTO settings (name, value, key_id) VALUES (?, ?, ?)");
      insert.setString(1, name);
      insert.setString(2, stored.sealed);
      insert.setString(3, stored.keyId);
      if (insert.executeUpdate() == 1) return value;
      auto current = readSetting(c, name, ring.get());
      if (!current) throw StoreError("setting " + name + " vanished while it was stored");
      return *current;
    });
  }

  void setSetting(const std::string& name, const std::string& value) {
    const RingPtr ring = currentRing();
    const WrappedKey stored = sealSetting(ring.get(), name, value);
    withConnection("store setting", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "INSERT INTO settings (name, value, key_id) VALUES (?, ?, ?) "
          "ON DUPLICATE KEY UPDATE value = VALUES(value), key_id = VALUES(key_id)");
      statement.setString(1, name);
      statement.setString(2, stored.sealed);
      statement.setString(3, stored.keyId);
      statement.executeUpdate();
      return 0;
    });
  }

  // --- key rotation ---

  /// Settings first, then hooks, then events. Every rewrite is one UPDATE whose WHERE names
  /// the old key id and the old stored bytes, so that a record another edge rewrote meanwhile
  /// (a rotated secret, a setting set again) is left as that edge wrote it. Counts the
  /// records it tried, so that a caller looping until 0 stops only when none is left. A record
  /// that does not open is logged and passed over: the cursor moves past it, so that it holds
  /// up neither the records after it nor the caller's loop.
  size_t reencryptBatch(size_t limit) {
    const RingPtr ring = currentRing();
    if (!ring) throw StoreError("could not re-encrypt: the store was opened without a key ring");
    const std::string active = ring->active().id;
    std::lock_guard<std::mutex> rotation(rotateMu_);
    RotateCursor fresh;
    fresh.activeKey = active;
    if (rotateCursor_.activeKey != active) rotateCursor_ = fresh;
    size_t done = 0;
    if (done < limit) done += reencryptSettings(*ring, active, limit - done);
    if (done < limit) done += reencryptHooks(*ring, active, limit - done);
    if (done < limit) done += reencryptEvents(*ring, active, limit - done);

    // A pass that found nothing left starts the next one from the beginning, so that records
    // another edge sealed under an old key (before it saw the new ring) are found too.
    if (done == 0) rotateCursor_ = fresh;
    return done;
  }

  ReencryptFailures reencryptFailures() {
    std::lock_guard<std::mutex> rotation(rotateMu_);
    return rotateFailures_.failures;
  }

  /// Counts a record rotation passed over, when the key it is under is in the ring (or it is
  /// in the clear): its bytes then fail authentication. Called with rotateMu_ held.
  void failedAuthentication(const crypto::KeyRing& ring, const std::string& keyId,
                            std::string record) {
    if (keyId.empty() || ring.find(keyId) != nullptr) rotateFailures_.note(std::move(record));
  }

  /// Key ids with the live records under each, ascending; records that hold values in the clear
  /// (also events sealed before schema 3 whose summary fields are not sealed yet) count under "".
  std::vector<KeyUsage> keyUsage() {
    return withConnection("count records per key", true, [&](Connection& c) {
      std::map<std::string, int64_t> counts;
      for (const char* text :
           {"SELECT IF(seal_version < 2, '', key_id), COUNT(*) FROM events WHERE erased = 0 "
            "GROUP BY 1",
            "SELECT key_id, COUNT(*) FROM hooks WHERE deleted_at_ms = 0 GROUP BY key_id",
            "SELECT key_id, COUNT(*) FROM settings GROUP BY key_id"}) {
        auto& statement = c.prepare(text);
        std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
        while (rs->next()) counts[column(*rs, 1)] += rs->getInt64(2);
      }
      std::vector<KeyUsage> usage;
      for (const auto& [keyId, records] : counts) usage.push_back({keyId, records});
      return usage;
    });
  }

  // --- events ---

  int64_t appendEvent(EventRecord event) {
    event.bodySize = static_cast<int64_t>(event.body.size());
    if (!findHook(event.hookId)) throw StoreError("unknown hook " + event.hookId);

    AppendJob job;
    job.event = &event;
    job.payloadBytes = event.body.size();

    // Sealing costs time in proportion to the body, so it runs here, in parallel across
    // callers, and only the wrap of the data key runs on the writer (sealing.h). The clear
    // contents are dropped at once: the queue holds each body only once.
    if (options_.keys) {
      try {
        job.sealed = sealContents(event);
      } catch (const std::exception& e) {
        throw StoreError(std::string("could not encrypt event: ") + e.what());
      }
      event.rawQuery.clear();
      event.headers.clear();
      std::string().swap(event.body);
      event.pathSuffix.clear();
      event.reasonMessage.clear();
      event.eventType.clear();
      event.deliveryId.clear();
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) throw StoreError("the store is closing");
      queue_.push_back(&job);
      queueCv_.notify_one();
      job.doneCv.wait(lock, [&] { return job.done; });
    }
    if (!job.error.empty()) throw StoreError(job.error);

    // Durable now; wait until listEvents can return it, so that the caller reads its write.
    std::unique_lock<std::mutex> lock(mu_);
    if (!visibleCv_.wait_for(lock, kVisibleWait,
                             [&] { return announcedThrough_ >= job.id || stopping_; })) {
      logger().warning(Poco::format("stored event not announced yet event_id=%Ld visible=%Ld",
                                    static_cast<Poco::Int64>(job.id),
                                    static_cast<Poco::Int64>(visibleThrough_)));
    }
    return job.id;
  }

  std::vector<EventRecord> listEvents(const std::string& hookId, int64_t afterId, size_t limit,
                                      bool withBodies, bool forwardableOnly) {
    int64_t upTo = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      upTo = visibleThrough_;
    }
    std::vector<EventRecord> events;
    if (limit == 0 || afterId >= upTo) return events;
    std::string text = std::string("SELECT ") + kEventColumns + (withBodies ? ", body" : "") +
                       " FROM events WHERE hook_id = ? AND id > ? AND id <= ? AND erased = 0" +
                       (forwardableOnly ? " AND (verdict <> 2 OR replay_of <> 0)" : "") +
                       " ORDER BY id LIMIT ?";
    const RingPtr ring = currentRing();
    return withConnection("list events", true, [&](Connection& c) {
      auto& statement = c.prepare(text);
      statement.setString(1, hookId);
      statement.setInt64(2, afterId);
      statement.setInt64(3, upTo);
      statement.setInt64(4, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<EventRecord> rows;
      while (rs->next()) {
        rows.push_back(readEvent(*rs, withBodies, ring.get()));
        if (!rows.back().integrityError.empty()) reportIntegrity(rows.back(), column(*rs, 15));
      }
      return rows;
    });
  }

  std::optional<EventRecord> getEvent(const std::string& hookId, int64_t eventId) {
    const RingPtr ring = currentRing();
    return withConnection("get event", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kEventColumns +
                                  ", body FROM events WHERE hook_id = ? AND id = ? AND erased = 0");
      statement.setString(1, hookId);
      statement.setInt64(2, eventId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::optional<EventRecord> found;
      if (rs->next()) {
        found = readEvent(*rs, true, ring.get());
        if (!found->integrityError.empty()) reportIntegrity(*found, column(*rs, 15));
      }
      return found;
    });
  }

  /// Logs a failed integrity check once per event, so that a list polled every second does
  /// not repeat it. The set is bounded; past it, repeats are logged again.
  void reportIntegrity(const EventRecord& event, const std::string& keyId) {
    {
      std::lock_guard<std::mutex> lock(integrityMu_);
      if (integrityReported_.count(event.id) != 0) return;
      if (integrityReported_.size() < kMaxIntegrityReports) integrityReported_.insert(event.id);
    }
    logger().error("could not open event event_id=%?d key_id=%s hook=%s error=\"%s\"", event.id,
                   keyId.empty() ? std::string("(none)") : keyId, event.hookId,
                   event.integrityError);
  }

  // --- deliveries ---

  void addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    if (deliveries.empty()) return;
    const RingPtr ring = currentRing();
    withConnection("store delivery report", false, [&](Connection& c) {
      c.begin();
      try {
        // Each event's key is read once, and locked until the commit, so that a re-encryption
        // cannot seal an event stored in the clear between this read and the insert.
        const std::map<int64_t, DeliveryEvent> events =
            ring ? lockEventsOf(c, deliveries) : std::map<int64_t, DeliveryEvent>();
        DeliverySealer sealer(ring.get());
        auto& statement = c.prepare(
            "INSERT INTO deliveries (event_id, relay_id, status, duration_ms, error, "
            "reported_at_ms, phase, timeout_ms, target_https, started_at_ms, response_excerpt, "
            "location, sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        for (const auto& delivery : deliveries) {
          const auto event = events.find(delivery.eventId);
          const StoredDeliveryText text =
              event != events.end()
                  ? sealer.seal(delivery, event->second)
                  : StoredDeliveryText{delivery.responseExcerpt, delivery.location, false};
          statement.setInt64(1, delivery.eventId);
          statement.setString(2, delivery.relayId);
          statement.setInt(3, delivery.status);
          statement.setInt64(4, delivery.durationMs);
          statement.setString(5, delivery.error);
          statement.setInt64(6, delivery.reportedAtMs);
          statement.setInt(7, static_cast<int32_t>(delivery.phase));
          statement.setInt64(8, delivery.timeoutMs);
          statement.setInt(9, delivery.targetHttps ? 1 : 0);
          statement.setInt64(10, delivery.startedAtMs);
          statement.setString(11, text.responseExcerpt);
          statement.setString(12, text.location);
          statement.setInt(13, text.sealed ? 1 : 0);
          statement.executeUpdate();
        }
        c.commit();
      } catch (const sql::SQLException& e) {
        c.rollbackQuietly();
        if (e.getErrorCode() == 1452) {
          throw StoreError("delivery report for an event that does not exist");
        }
        throw;
      }
      return 0;
    });
  }

  std::vector<DeliveryRecord> listDeliveries(int64_t eventId) {
    const RingPtr ring = currentRing();
    return withConnection("list deliveries", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kDeliveryColumns +
                                  " FROM deliveries d JOIN events e ON e.id = d.event_id "
                                  "WHERE d.event_id = ? AND e.erased = 0 ORDER BY d.id");
      statement.setInt64(1, eventId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      DeliverySealer sealer(ring.get());
      std::vector<DeliveryRecord> rows;
      while (rs->next()) rows.push_back(readDelivery(*rs, sealer));
      return rows;
    });
  }

  void setNoticeListener(std::function<void(const EventNotice&)> listener) {
    std::lock_guard<std::mutex> lock(listenerMu_);
    listener_ = std::move(listener);
  }

  int64_t maxPacketBytes() const { return maxPacketBytes_; }

  // --- reads for the dashboard ---

  std::vector<EventRecord> listEventsBefore(const std::string& hookId, int64_t beforeId,
                                            size_t limit, bool withBodies) {
    // Never past what the follower announced, as listEvents: an id above it may still have a
    // lower one committing under it.
    int64_t upTo = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      upTo = visibleThrough_;
    }
    if (beforeId > 0) upTo = std::min(upTo, beforeId - 1);
    std::vector<EventRecord> events;
    if (limit == 0 || upTo <= 0) return events;
    const std::string text = std::string("SELECT ") + kEventColumns + (withBodies ? ", body" : "") +
                             " FROM events WHERE hook_id = ? AND id <= ? AND erased = 0"
                             " ORDER BY id DESC LIMIT ?";
    const RingPtr ring = currentRing();
    return withConnection("list events newest first", true, [&](Connection& c) {
      auto& statement = c.prepare(text);
      statement.setString(1, hookId);
      statement.setInt64(2, upTo);
      statement.setInt64(3, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<EventRecord> rows;
      while (rs->next()) rows.push_back(readEvent(*rs, withBodies, ring.get()));
      return rows;
    });
  }

  std::vector<DeliveryRecord> listDeliveriesOf(const std::vector<int64_t>& eventIds) {
    std::vector<int64_t> ids = eventIds;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<DeliveryRecord> out;
    const RingPtr ring = currentRing();
    DeliverySealer sealer(ring.get());
    for (size_t from = 0; from < ids.size(); from += kDeliveryBatchIds) {
      const size_t count = std::min(kDeliveryBatchIds, ids.size() - from);
      std::string text = std::string("SELECT ") + kDeliveryColumns +
                         " FROM deliveries d JOIN events e ON e.id = d.event_id "
                         "WHERE e.erased = 0 AND d.event_id IN (?";
      for (size_t i = 1; i < count; ++i) text += ",?";
      text += ") ORDER BY d.event_id, d.id";
      withConnection("list deliveries of events", true, [&](Connection& c) {
        auto& statement = c.prepare(text);
        for (size_t i = 0; i < count; ++i) {
          statement.setInt64(static_cast<unsigned>(i + 1), ids[from + i]);
        }
        std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
        while (rs->next()) out.push_back(readDelivery(*rs, sealer));
        return 0;
      });
    }
    return out;
  }

  std::vector<int64_t> listReplayIds(const std::string& hookId, int64_t eventId, size_t limit) {
    int64_t upTo = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      upTo = visibleThrough_;
    }
    if (limit == 0 || eventId <= 0 || upTo <= 0) return {};
    return withConnection("list the replays of an event", true, [&](Connection& c) {
      auto& statement = c.prepare(
          "SELECT id FROM events WHERE hook_id = ? AND replay_of = ? AND id <= ? AND erased = 0"
          " ORDER BY id LIMIT ?");
      statement.setString(1, hookId);
      statement.setInt64(2, eventId);
      statement.setInt64(3, upTo);
      statement.setInt64(4, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<int64_t> ids;
      while (rs->next()) ids.push_back(rs->getInt64(1));
      return ids;
    });
  }

  int64_t countEvents(const std::string& hookId) {
    int64_t upTo = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      upTo = visibleThrough_;
    }
    return withConnection("count events", true, [&](Connection& c) {
      auto& statement =
          c.prepare("SELECT COUNT(*) FROM events WHERE hook_id = ? AND id <= ? AND erased = 0");
      statement.setString(1, hookId);
      statement.setInt64(2, upTo);
      return countOf(statement);
    });
  }

  std::vector<ActivityBucket> activity(const std::string& hookId, int64_t fromMs, int64_t bucketMs,
                                       size_t buckets) {
    std::vector<ActivityBucket> out = emptyActivity(fromMs, bucketMs, buckets);
    if (out.empty()) return out;
    const int64_t toMs = fromMs + bucketMs * static_cast<int64_t>(buckets);
    return withConnection("read activity", true, [&](Connection& c) {
      // Events by bucket and verdict, from the index on (hook_id, received_at_ms).
      auto& events = c.prepare(
          "SELECT FLOOR((received_at_ms - ?) / ?), verdict, COUNT(*) FROM events"
          " WHERE hook_id = ? AND received_at_ms >= ? AND received_at_ms < ? AND erased = 0"
          " GROUP BY 1, 2");
      events.setInt64(1, fromMs);
      events.setInt64(2, bucketMs);
      events.setString(3, hookId);
      events.setInt64(4, fromMs);
      events.setInt64(5, toMs);
      std::unique_ptr<sql::ResultSet> rs(events.executeQuery());
      while (rs->next()) countVerdict(out, rs->getInt64(1), rs->getInt64(2), rs->getInt64(3));

      // Reports made in the window, of the hook's events from a day before it on.
      auto& reports = c.prepare(
          "SELECT FLOOR((d.reported_at_ms - ?) / ?), d.status >= 200 AND d.status < 300,"
          " COUNT(*) FROM events e JOIN deliveries d ON d.event_id = e.id"
          " WHERE e.hook_id = ? AND e.received_at_ms >= ? AND e.erased = 0"
          " AND d.reported_at_ms >= ? AND d.reported_at_ms < ? GROUP BY 1, 2");
      reports.setInt64(1, fromMs);
      reports.setInt64(2, bucketMs);
      reports.setString(3, hookId);
      reports.setInt64(4, fromMs - kActivityReportLookbackMs);
      reports.setInt64(5, fromMs);
      reports.setInt64(6, toMs);
      std::unique_ptr<sql::ResultSet> delivered(reports.executeQuery());
      while (delivered->next()) {
        countDeliveries(out, delivered->getInt64(1), delivered->getInt64(2) != 0,
                        delivered->getInt64(3));
      }
      return out;
    });
  }

  MySqlStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    MySqlStats copy = stats_;
    copy.visibleThrough = visibleThrough_;
    return copy;
  }

 private:
  // --- helpers of the hooks, settings and rotation ---

  RingPtr currentRing() const { return options_.keys ? options_.keys->ring() : nullptr; }

  /// The events the reports name, with what sealing their values needs, each row locked in
  /// share mode until the caller's transaction ends. An event that does not exist is left out
  /// (its report then fails on the foreign key).
  static std::map<int64_t, DeliveryEvent> lockEventsOf(Connection& c,
                                                       const std::vector<DeliveryRecord>& reports) {
    const std::vector<int64_t> ids = eventIdsOf(reports);
    std::map<int64_t, DeliveryEvent> events;
    for (size_t from = 0; from < ids.size(); from += kDeliveryBatchIds) {
      const size_t count = std::min(kDeliveryBatchIds, ids.size() - from);
      std::string text = "SELECT id, hook_id, key_id, wrapped_key FROM events WHERE id IN (?";
      for (size_t i = 1; i < count; ++i) text += ",?";
      text += ") AND erased = 0 LOCK IN SHARE MODE";
      auto& select = c.prepare(text);
      for (size_t i = 0; i < count; ++i) {
        select.setInt64(static_cast<unsigned>(i + 1), ids[from + i]);
      }
      std::unique_ptr<sql::ResultSet> rs(select.executeQuery());
      while (rs->next()) {
        const int64_t id = rs->getInt64(1);
        events[id] = DeliveryEvent{id, column(*rs, 2), {column(*rs, 3), column(*rs, 4)}};
      }
    }
    return events;
  }

  static int64_t countOf(sql::PreparedStatement& statement) {
    std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
    return rs->next() ? rs->getInt64(1) : 0;
  }

  static bool hookExists(Connection& c, const std::string& hookId) {
    auto& exists = c.prepare("SELECT COUNT(*) FROM hooks WHERE id = ? AND deleted_at_ms = 0");
    exists.setString(1, hookId);
    return countOf(exists) > 0;
  }

  /// One row of `table` whose `key` column equals `value`.
  template <typename Record, typename Read>
  std::optional<Record> findOne(const char* what, const char* columns, const char* table,
                                const char* key, const std::string& value, Read read) {
    return withConnection(what, true, [&](Connection& c) {
      auto& statement =
          c.prepare(std::string("SELECT ") + columns + " FROM " + table + " WHERE " + key + " = ?");
      statement.setString(1, value);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::optional<Record> found;
      if (rs->next()) found = read(*rs);
      return found;
    });
  }

  void insertHook(Connection& c, const HookRecord& hook) {
    const RingPtr ring = currentRing();
    const StoredSecrets secrets = sealSecrets(ring.get(), hook);
    auto& statement = c.prepare(
        "INSERT INTO hooks (id, provider, secret, tolerance_s, options, token_hash, "
        "created_at_ms, account_id, name, signing_secret, previous_signing_secret, "
        "previous_valid_until_ms, standard_webhooks, custom_response, expires_at_ms, key_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    statement.setString(1, hook.id);
    statement.setString(2, hook.provider);
    statement.setString(3, secrets.secret);
    statement.setInt64(4, hook.toleranceS);
    statement.setString(5, encodeOptions(hook.options));
    statement.setString(6, hook.tokenHash);
    statement.setInt64(7, hook.createdAtMs);
    statement.setString(8, hook.accountId);

    // NULL for anonymous hooks: the unique key then never compares them.
    if (hook.name.empty()) {
      statement.setNull(9, sql::DataType::VARCHAR);
    } else {
      statement.setString(9, hook.name);
    }
    statement.setString(10, secrets.signingSecret);
    statement.setString(11, secrets.previousSigningSecret);
    statement.setInt64(12, hook.previousValidUntilMs);
    statement.setInt(13, hook.standardWebhooks ? 1 : 0);
    statement.setString(14, encodeCustomResponse(hook.customResponse));
    statement.setInt64(15, hook.expiresAtMs);
    statement.setString(16, secrets.keyId);
    try {
      statement.executeUpdate();
    } catch (const sql::SQLException& e) {
      if (isDuplicateOn(e, "hooks_by_account_name")) {
        throw ConflictError("a hook named " + hook.name + " exists");
      }
      if (e.getErrorCode() == 1062) throw StoreError("hook " + hook.id + " exists already");
      throw;
    }
  }

  /// Drops a hook this store changed from the cache, and keeps reads that ran meanwhile from
  /// caching what they found.
  void forgetHook(const std::string& hookId) {
    std::lock_guard<std::mutex> lock(hookMu_);
    hooks_.erase(hookId);
    ++hookGeneration_;
  }

  /// Caller holds hookMu_. A full cache first drops what is stale.
  void cacheHook(const HookRecord& hook) {
    const auto now = Clock::now();
    if (hooks_.size() >= options_.maxCachedHooks) {
      for (auto it = hooks_.begin(); it != hooks_.end();) {
        it = now - it->second.fetched >= kHookCacheAge ? hooks_.erase(it) : std::next(it);
      }
    }
    if (hooks_.size() < options_.maxCachedHooks) hooks_[hook.id] = CachedHook{hook, now};
  }

  static WrappedKey sealSetting(const crypto::KeyRing* ring, const std::string& name,
                                const std::string& value) {
    if (ring == nullptr) return WrappedKey{"", value};
    return sealField(*ring, value, "settings", name, "value");
  }

  static std::optional<std::string> readSetting(Connection& c, const std::string& name,
                                                const crypto::KeyRing* ring) {
    auto& statement = c.prepare("SELECT value, key_id FROM settings WHERE name = ?");
    statement.setString(1, name);
    std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
    if (!rs->next()) return std::nullopt;
    return openStored(ring, column(*rs, 2), column(*rs, 1), "settings", name, "value");
  }

  size_t reencryptSettings(const crypto::KeyRing& ring, const std::string& active, size_t limit) {
    return withConnection("re-encrypt settings", false, [&](Connection& c) {
      auto& select = c.prepare(
          "SELECT name, value, key_id FROM settings WHERE key_id <> ? AND name > ? "
          "ORDER BY name LIMIT ?");
      select.setString(1, active);
      select.setString(2, rotateCursor_.setting);
      select.setInt64(3, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(select.executeQuery());
      std::vector<std::vector<std::string>> rows;
      while (rs->next()) rows.push_back({column(*rs, 1), column(*rs, 2), column(*rs, 3)});
      rs.reset();
      for (const auto& row : rows) {
        rotateCursor_.setting = row[0];
        std::string value;
        try {
          value = openStored(&ring, row[2], row[1], "settings", row[0], "value");
        } catch (const StoreError& e) {
          logger().error("could not re-encrypt setting name=%s key_id=%s error=\"%s\"", row[0],
                         row[2], std::string(e.what()));
          failedAuthentication(ring, row[2], "setting " + row[0]);
          continue;
        }
        const WrappedKey sealed = sealField(ring, value, "settings", row[0], "value");
        auto& update = c.prepare(
            "UPDATE settings SET value = ?, key_id = ? WHERE name = ? AND key_id = ? "
            "AND value = ?");
        update.setString(1, sealed.sealed);
        update.setString(2, sealed.keyId);
        update.setString(3, row[0]);
        update.setString(4, row[2]);
        update.setString(5, row[1]);
        update.executeUpdate();
      }
      return rows.size();
    });
  }

  size_t reencryptHooks(const crypto::KeyRing& ring, const std::string& active, size_t limit) {
    size_t done = withConnection("re-encrypt hooks", false, [&](Connection& c) {
      auto& select = c.prepare(
          "SELECT id, key_id, secret, signing_secret, previous_signing_secret FROM hooks "
          "WHERE key_id <> ? AND deleted_at_ms = 0 AND id > ? ORDER BY id LIMIT ?");
      select.setString(1, active);
      select.setString(2, rotateCursor_.hook);
      select.setInt64(3, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(select.executeQuery());
      std::vector<std::vector<std::string>> rows;
      while (rs->next()) {
        rows.push_back(
            {column(*rs, 1), column(*rs, 2), column(*rs, 3), column(*rs, 4), column(*rs, 5)});
      }
      rs.reset();
      for (const auto& row : rows) {
        rotateCursor_.hook = row[0];
        HookRecord hook;
        hook.id = row[0];
        try {
          hook.secret = openStored(&ring, row[1], row[2], "hooks", hook.id, "secret");
          hook.signingSecret =
              openStored(&ring, row[1], row[3], "hooks", hook.id, "signing_secret");
          hook.previousSigningSecret =
              openStored(&ring, row[1], row[4], "hooks", hook.id, "previous_signing_secret");
        } catch (const StoreError& e) {
          logger().error("could not re-encrypt hook hook=%s key_id=%s error=\"%s\"", hook.id,
                         row[1], std::string(e.what()));
          failedAuthentication(ring, row[1], "hook " + hook.id);
          continue;
        }
        const StoredSecrets sealed = sealSecrets(&ring, hook);

        // NULL-safe comparison: schema 1 rows hold NULL in the new secret columns.
        auto& update = c.prepare(
            "UPDATE hooks SET secret = ?, signing_secret = ?, previous_signing_secret = ?, "
            "key_id = ? WHERE id = ? AND key_id = ? AND secret = ? "
            "AND COALESCE(signing_secret, '') = ? AND COALESCE(previous_signing_secret, '') = ?");
        update.setString(1, sealed.secret);
        update.setString(2, sealed.signingSecret);
        update.setString(3, sealed.previousSigningSecret);
        update.setString(4, sealed.keyId);
        update.setString(5, row[0]);
        update.setString(6, row[1]);
        update.setString(7, row[2]);
        update.setString(8, row[3]);
        update.setString(9, row[4]);
        update.executeUpdate();
      }
      return rows.size();
    });
    return done;
  }

  /// A sealed events row as rewriteSealedEvent needs it, selected with kSealedEventColumns.
  struct SealedEventRow {
    int64_t id = 0;
    std::string hookId;
    WrappedKey wrapped;
    int64_t sealVersion = kSealVersionSummary;
    SummaryFields summary;  ///< as stored: in the clear while sealVersion is below 2
  };

  static constexpr const char* kSealedEventColumns =
      "id, hook_id, key_id, wrapped_key, seal_version, path_suffix, reason_message, event_type, "
      "delivery_id";

  static std::vector<SealedEventRow> sealedEventRows(sql::PreparedStatement& select) {
    std::unique_ptr<sql::ResultSet> rs(select.executeQuery());
    std::vector<SealedEventRow> rows;
    while (rs->next()) {
      rows.push_back(
          SealedEventRow{rs->getInt64(1),
                         column(*rs, 2),
                         {column(*rs, 3), column(*rs, 4)},
                         rs->getInt(5),
                         {column(*rs, 6), column(*rs, 7), column(*rs, 8), column(*rs, 9)}});
    }
    return rows;
  }

  /// Rewrites one sealed event: with `rewrap`, its data key under the ring's active key; and its
  /// summary fields sealed under the data key when they are in the clear. The contents stay as
  /// they are. The UPDATE names the old key id, wrap and seal version, so that a row another
  /// edge rewrote meanwhile is left as that edge wrote it. Throws crypto::IntegrityError when
  /// the wrap does not open.
  static void rewriteSealedEvent(Connection& c, const crypto::KeyRing& ring,
                                 const SealedEventRow& row, bool rewrap) {
    const WrappedKey wrapped =
        rewrap ? rewrapDataKey(ring, row.wrapped, row.hookId, row.id) : row.wrapped;
    const SummaryFields summary =
        row.sealVersion < kSealVersionSummary
            ? sealSummaryFields(ring, row.wrapped, row.hookId, row.id, row.summary)
            : row.summary;
    auto& update = c.prepare(
        "UPDATE events SET key_id = ?, wrapped_key = ?, path_suffix = ?, reason_message = ?, "
        "event_type = ?, delivery_id = ?, seal_version = ? "
        "WHERE id = ? AND key_id = ? AND wrapped_key = ? AND seal_version = ?");
    update.setString(1, wrapped.keyId);
    update.setString(2, wrapped.sealed);
    update.setString(3, summary.pathSuffix);
    update.setString(4, summary.reasonMessage);
    update.setString(5, summary.eventType);
    update.setString(6, summary.deliveryId);
    update.setInt(7, static_cast<int32_t>(kSealVersionSummary));
    update.setInt64(8, row.id);
    update.setString(9, row.wrapped.keyId);
    update.setString(10, row.wrapped.sealed);
    update.setInt(11, static_cast<int32_t>(row.sealVersion));
    update.executeUpdate();
  }

  /// Events under another key, then events under the active key whose summary fields are
  /// still in the clear (sealed before schema 3).
  size_t reencryptEvents(const crypto::KeyRing& ring, const std::string& active, size_t limit) {
    return withConnection("re-encrypt events", false, [&](Connection& c) {
      // Each query goes on after the last row it returned, so that a row passed over (it
      // fails authentication) is not read again in this pass and the caller's loop ends.
      auto& select = c.prepare(std::string("SELECT ") + kSealedEventColumns +
                               " FROM events WHERE key_id <> ? AND erased = 0 AND id > ? "
                               "ORDER BY id LIMIT ?");
      select.setString(1, active);
      select.setInt64(2, rotateCursor_.event);
      select.setInt64(3, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::vector<SealedEventRow> rows = sealedEventRows(select);
      if (rows.size() < limit) {
        auto& clearSummary = c.prepare(std::string("SELECT ") + kSealedEventColumns +
                                       " FROM events WHERE seal_version = 1 AND key_id = ? "
                                       "AND erased = 0 AND id > ? ORDER BY id LIMIT ?");
        clearSummary.setString(1, active);
        clearSummary.setInt64(2, rotateCursor_.clearSummary);
        clearSummary.setInt64(
            3, static_cast<int64_t>(std::min<size_t>(limit - rows.size(), INT32_MAX)));
        for (auto& row : sealedEventRows(clearSummary)) rows.push_back(std::move(row));
      }
      for (const SealedEventRow& row : rows) {
        (row.wrapped.keyId != active ? rotateCursor_.event : rotateCursor_.clearSummary) = row.id;
        if (row.wrapped.keyId.empty()) {
          try {
            encryptClearEvent(c, ring, row.id, row.hookId);
          } catch (const StoreError& e) {
            logger().error("could not re-encrypt event event_id=%?d key_id=(none) error=\"%s\"",
                           row.id, std::string(e.what()));
            failedAuthentication(ring, "", "event " + std::to_string(row.id));
          }
          continue;
        }

        // Only the 60-byte data key is sealed again (and the summary fields of an event sealed
        // before schema 3); the contents stay as they are.
        try {
          rewriteSealedEvent(c, ring, row, row.wrapped.keyId != active);
        } catch (const crypto::IntegrityError& e) {
          logger().error("could not re-encrypt event event_id=%?d key_id=%s error=\"%s\"", row.id,
                         row.wrapped.keyId, std::string(e.what()));
          failedAuthentication(ring, row.wrapped.keyId, "event " + std::to_string(row.id));
          continue;
        }
      }
      return rows.size();
    });
  }

  /// Seals an event stored in the clear (schema 1, or by a store without a key ring), and the
  /// values of its deliveries under the same new data key, in one transaction. The event's row
  /// is locked first, so that a report being stored for it (which locks it in share mode)
  /// either comes before, and is sealed here, or after, and seals its values itself.
  static void encryptClearEvent(Connection& c, const crypto::KeyRing& ring, int64_t id,
                                const std::string& hookId) {
    c.begin();
    try {
      auto& read = c.prepare(
          "SELECT raw_query, headers, body, path_suffix, reason_message, event_type, "
          "delivery_id FROM events WHERE id = ? AND key_id = '' AND erased = 0 FOR UPDATE");
      read.setInt64(1, id);
      std::unique_ptr<sql::ResultSet> rs(read.executeQuery());
      if (!rs->next()) {
        rs.reset();
        c.commit();
        return;
      }
      EventRecord event;
      event.id = id;
      event.hookId = hookId;
      event.rawQuery = column(*rs, 1);
      event.headers = decodeHeaders(column(*rs, 2));
      event.body = column(*rs, 3);
      event.pathSuffix = column(*rs, 4);
      event.reasonMessage = column(*rs, 5);
      event.eventType = column(*rs, 6);
      event.deliveryId = column(*rs, 7);
      rs.reset();
      SealedContents sealed = sealContents(event);
      const WrappedKey wrapped = wrapDataKey(ring, sealed.dataKey, hookId, id);
      sealClearDeliveries(c, sealed.dataKey, hookId, id);
      OPENSSL_cleanse(sealed.dataKey.data(), sealed.dataKey.size());
      std::istringstream headers(sealed.headers);
      std::istringstream body(sealed.body);
      auto& update = c.prepare(
          "UPDATE events SET raw_query = ?, headers = ?, body = ?, path_suffix = ?, "
          "reason_message = ?, event_type = ?, delivery_id = ?, key_id = ?, wrapped_key = ?, "
          "seal_version = ? WHERE id = ? AND key_id = '' AND erased = 0");
      update.setString(1, sealed.query);
      update.setBlob(2, &headers);
      update.setBlob(3, &body);
      update.setString(4, sealed.summary.pathSuffix);
      update.setString(5, sealed.summary.reasonMessage);
      update.setString(6, sealed.summary.eventType);
      update.setString(7, sealed.summary.deliveryId);
      update.setString(8, wrapped.keyId);
      update.setString(9, wrapped.sealed);
      update.setInt(10, static_cast<int32_t>(kSealVersionSummary));
      update.setInt64(11, id);
      update.executeUpdate();
      c.commit();
    } catch (...) {
      c.rollbackQuietly();
      throw;
    }
  }

  /// Seals the values of every delivery of event `id` stored in the clear under `dataKey`, the
  /// event's new data key.
  static void sealClearDeliveries(Connection& c, std::string_view dataKey,
                                  const std::string& hookId, int64_t id) {
    auto& select = c.prepare(
        "SELECT id, relay_id, reported_at_ms, response_excerpt, location FROM deliveries "
        "WHERE event_id = ? AND sealed = 0");
    select.setInt64(1, id);
    std::unique_ptr<sql::ResultSet> rs(select.executeQuery());
    std::vector<std::pair<int64_t, DeliveryRecord>> rows;
    while (rs->next()) {
      DeliveryRecord delivery;
      delivery.eventId = id;
      delivery.relayId = column(*rs, 2);
      delivery.reportedAtMs = rs->getInt64(3);
      delivery.responseExcerpt = column(*rs, 4);
      delivery.location = column(*rs, 5);
      rows.emplace_back(rs->getInt64(1), std::move(delivery));
    }
    rs.reset();
    for (const auto& [rowId, delivery] : rows) {
      const StoredDeliveryText text = sealDeliveryText(dataKey, hookId, id, delivery);
      auto& update = c.prepare(
          "UPDATE deliveries SET response_excerpt = ?, location = ?, sealed = 1 "
          "WHERE id = ? AND sealed = 0");
      update.setString(1, text.responseExcerpt);
      update.setString(2, text.location);
      update.setInt64(3, rowId);
      update.executeUpdate();
    }
  }

  /// Schema 3's row work: seals the summary fields of the events sealed before it, each under
  /// its own data key, one UPDATE per event, so that a run cut short leaves every row right and
  /// the step's next run goes on. An event whose wrap does not open (its key is not in the
  /// ring, or it was changed) keeps them in the clear, since it cannot be read either way;
  /// re-encryption tries it again. Without a key ring nothing can be sealed, and the store
  /// would be refused right after: it is refused here, before the step is recorded.
  void sealStoredSummaries(Connection& c) {
    const RingPtr ring = currentRing();
    constexpr int64_t kPage = 1000;
    int64_t after = 0;
    SummarySealing sealing;
    for (;;) {
      auto& select = c.prepare(std::string("SELECT ") + kSealedEventColumns +
                               " FROM events WHERE seal_version = 1 AND key_id <> '' "
                               "AND erased = 0 AND id > ? ORDER BY id LIMIT ?");
      select.setInt64(1, after);
      select.setInt64(2, kPage);
      const std::vector<SealedEventRow> rows = sealedEventRows(select);
      if (rows.empty()) break;
      if (!ring) {
        throw StoreError("could not open store database=" + options_.endpoint.database +
                         ": it holds records encrypted under key " + rows.front().wrapped.keyId +
                         " (table events) and the store was given no key ring");
      }
      for (const SealedEventRow& row : rows) {
        after = row.id;
        sealing.seal(row.id, [&] { rewriteSealedEvent(c, *ring, row, false); });
      }
    }
    sealing.report("database=" + options_.endpoint.database);
  }

  // --- schema ---

  /// Brings the schema up to kSchemaVersion. A database that is up to date needs no DDL, so
  /// an edge whose user may only read and write rows starts on a schema another one created.
  void migrate(Connection& c) {
    try {
      if (schemaVersion(c).value_or(0) == kSchemaVersion) return;

      // Edges starting together take turns, so that each step runs once.
      std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
      std::unique_ptr<sql::ResultSet> locked(
          statement->executeQuery("SELECT GET_LOCK('anonymily_schema', 60)"));
      if (!locked->next() || locked->getInt(1) != 1) {
        throw StoreError("could not open store database=" + options_.endpoint.database +
                         ": another edge held the schema lock for 60 s");
      }
      locked.reset();
      try {
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version BIGINT NOT NULL PRIMARY KEY,"
            " description VARCHAR(255) NOT NULL,"
            " applied_at_ms BIGINT NOT NULL"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
        applyMigrations(c);
      } catch (...) {
        c.execute("SELECT RELEASE_LOCK('anonymily_schema')");
        throw;
      }
      c.execute("SELECT RELEASE_LOCK('anonymily_schema')");
    } catch (const sql::SQLException& e) {
      if (e.getErrorCode() == 1142) {
        throwStoreError("could not open store database=" + options_.endpoint.database +
                            ": creating or migrating the schema needs CREATE, ALTER, INDEX and "
                            "REFERENCES on the database (the first start and upgrades only)",
                        e);
      }
      throwStoreError("could not open store database=" + options_.endpoint.database, e);
    }
  }

  /// Runs one statement of each kind the edge needs, on no rows, so that a user without a
  /// privilege is refused at start with a message naming it, rather than every webhook later.
  void checkPrivileges(Connection& c) {
    static const char* const kProbes[] = {
        "INSERT INTO hooks SELECT * FROM hooks WHERE 0",
        "INSERT INTO events SELECT * FROM events WHERE 0",
        "INSERT INTO deliveries SELECT * FROM deliveries WHERE 0",
        "INSERT INTO accounts SELECT * FROM accounts WHERE 0",
        "INSERT INTO members SELECT * FROM members WHERE 0",
        "INSERT INTO tokens SELECT * FROM tokens WHERE 0",
        "INSERT INTO audit SELECT * FROM audit WHERE 0",
        "INSERT INTO settings SELECT * FROM settings WHERE 0",
        "INSERT INTO ended_sessions SELECT * FROM ended_sessions WHERE 0",
        "UPDATE sequences SET value = value WHERE 0",
        "UPDATE hooks SET relay_id = relay_id WHERE 0",
        "UPDATE events SET key_id = key_id WHERE 0",
        "UPDATE deliveries SET sealed = sealed WHERE 0",
        "UPDATE accounts SET plan = plan WHERE 0",
        "UPDATE tokens SET revoked_at_ms = revoked_at_ms WHERE 0",
        "UPDATE settings SET value = value WHERE 0",
        "UPDATE ended_sessions SET until_ms = until_ms WHERE 0",
    };
    try {
      for (const char* probe : kProbes) c.execute(probe);
    } catch (const sql::SQLException& e) {
      if (e.getErrorCode() != 1142 && e.getErrorCode() != 1143) throw;
      throw StoreError("could not open store database=" + options_.endpoint.database +
                       ": the user lacks a privilege the edge needs (" + e.what() +
                       "); grant it SELECT, INSERT and UPDATE on the database");
    }
  }

  /// A store without a key ring could read none of the sealed records (store.h): it is refused
  /// at open rather than failing record by record. Each query reads one index entry at most.
  void refuseSealedRecords(Connection& c) {
    for (const char* table : {"settings", "hooks", "events"}) {
      std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
      std::unique_ptr<sql::ResultSet> rs(statement->executeQuery(
          std::string("SELECT key_id FROM ") + table + " WHERE key_id <> '' LIMIT 1"));
      if (!rs->next()) continue;
      throw StoreError("could not open store database=" + options_.endpoint.database +
                       ": it holds records encrypted under key " + column(*rs, 1) + " (table " +
                       table + ") and the store was given no key ring");
    }
  }

  /// The newest applied migration, or nothing when the database has no schema yet.
  std::optional<int64_t> schemaVersion(Connection& c) {
    try {
      std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
      std::unique_ptr<sql::ResultSet> rs(
          statement->executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
      if (!rs->next()) return int64_t{0};
      const int64_t version = rs->getInt64(1);
      if (version > kSchemaVersion) {
        throw StoreError("could not open store database=" + options_.endpoint.database +
                         ": database schema version " + std::to_string(version) +
                         " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                         "); use a newer anonymily-edge");
      }
      return version;
    } catch (const sql::SQLException& e) {
      if (e.getErrorCode() == 1146) return std::nullopt;  // no such table
      throw;
    }
  }

  void applyMigrations(Connection& c) {
    int64_t current = 0;
    {
      std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
      std::unique_ptr<sql::ResultSet> rs(
          statement->executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
      if (rs->next()) current = rs->getInt64(1);
    }
    if (current > kSchemaVersion) {
      throw StoreError("could not open store database=" + options_.endpoint.database +
                       ": database schema version " + std::to_string(current) +
                       " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                       "); use a newer anonymily-edge");
    }
    for (const auto& migration : migrations()) {
      if (migration.version <= current) continue;
      for (const char* text : migration.statements) {
        try {
          c.execute(text);
        } catch (const sql::SQLException& e) {
          // Duplicate column (1060) or key name (1061): this ALTER ran before a crash.
          const bool alter = std::strncmp(text, "ALTER TABLE", 11) == 0;
          if (!alter || (e.getErrorCode() != 1060 && e.getErrorCode() != 1061)) throw;
          logger().information(Poco::format("schema change found applied already version=%Ld",
                                            static_cast<Poco::Int64>(migration.version)));
        }
      }
      if (migration.rowWork == RowWork::kSealSummaryFields) sealStoredSummaries(c);
      auto& record = c.prepare(
          "INSERT INTO schema_migrations (version, description, applied_at_ms) VALUES (?, ?, ?)");
      record.setInt64(1, migration.version);
      record.setString(2, migration.description);
      record.setInt64(3, nowMs());
      record.executeUpdate();
      logger().information(Poco::format("applied schema migration database=%s version=%Ld",
                                        options_.endpoint.database,
                                        static_cast<Poco::Int64>(migration.version)));
    }
  }

  void logServer(Connection& c) {
    try {
      std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
      std::unique_ptr<sql::ResultSet> rs(
          statement->executeQuery("SELECT VERSION(), @@max_allowed_packet"));
      if (!rs->next()) return;
      maxPacketBytes_ = rs->getInt64(2);
      logger().information(Poco::format(
          "store opened backend=mysql server=%s database=%s version=%s max_allowed_packet=%Ld",
          options_.endpoint.describe(), options_.endpoint.database, column(*rs, 1),
          static_cast<Poco::Int64>(rs->getInt64(2))));
    } catch (const sql::SQLException& e) {
      throwStoreError("could not open store database=" + options_.endpoint.database, e);
    }
  }

  static int64_t newestEventId(Connection& c) {
    std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
    std::unique_ptr<sql::ResultSet> rs(
        statement->executeQuery("SELECT COALESCE(MAX(id), 0) FROM events"));
    return rs->next() ? rs->getInt64(1) : 0;
  }

  static int64_t counterValue(Connection& c) {
    std::unique_ptr<sql::Statement> statement(c.raw().createStatement());
    std::unique_ptr<sql::ResultSet> rs(
        statement->executeQuery("SELECT value FROM sequences WHERE name = 'event_id'"));
    if (!rs->next()) throw StoreError("the sequences table has no event_id row");
    return rs->getInt64(1);
  }

  // --- the pool ---

  /// Runs `work` on a pooled connection. A connection that broke is dropped together with
  /// every idle one (when the server went away, they all did); reads (`idempotent`) then run
  /// once more on a new connection. Other errors become StoreError naming `what`.
  template <typename Work>
  auto withConnection(const char* what, bool idempotent, Work work)
      -> decltype(work(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> c = acquire(what);
      try {
        auto result = work(*c);
        c->touch();
        release(std::move(c));
        return result;
      } catch (const sql::SQLException& e) {
        if (isConnectionError(e)) {
          dropped(std::move(c));
          dropIdle();
          if (idempotent && attempt == 0) continue;
        } else {
          release(std::move(c));
        }
        throwStoreError(std::string("could not ") + what, e);
      } catch (...) {
        release(std::move(c));
        throw;
      }
    }
  }

  std::unique_ptr<Connection> acquire(const char* what) {
    ensureDriverThread();
    std::unique_lock<std::mutex> lock(poolMu_);
    for (;;) {
      while (!idle_.empty()) {
        std::unique_ptr<Connection> c = std::move(idle_.back());
        idle_.pop_back();
        lock.unlock();
        if (c->stillAlive()) return c;
        lock.lock();
        --open_;
      }
      if (open_ < options_.poolSize) {
        ++open_;
        lock.unlock();
        try {
          return std::make_unique<Connection>(options_, what);
        } catch (...) {
          std::lock_guard<std::mutex> relock(poolMu_);
          --open_;
          poolCv_.notify_one();
          throw;
        }
      }
      if (!poolCv_.wait_for(lock, options_.connectTimeout,
                            [&] { return !idle_.empty() || open_ < options_.poolSize; })) {
        throw StoreError(std::string("could not ") + what + ": all " +
                         std::to_string(options_.poolSize) + " store connections stayed busy");
      }
    }
  }

  void release(std::unique_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(poolMu_);
    idle_.push_back(std::move(c));
    poolCv_.notify_one();
  }

  void dropped(std::unique_ptr<Connection> c) {
    c.reset();
    std::lock_guard<std::mutex> lock(poolMu_);
    --open_;
    poolCv_.notify_one();
    std::lock_guard<std::mutex> statsLock(mu_);
    ++stats_.reconnects;
  }

  void dropIdle() {
    std::vector<std::unique_ptr<Connection>> stale;
    {
      std::lock_guard<std::mutex> lock(poolMu_);
      stale.swap(idle_);
      open_ -= stale.size();
      poolCv_.notify_all();
    }
    // Closing a dead connection may wait on its socket: do it without the pool's lock.
    stale.clear();
  }

  // --- the writer ---

  void runWriter() {
    ensureDriverThread();
    for (;;) {
      std::vector<AppendJob*> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        queueCv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;
        size_t bytes = 0;
        while (!queue_.empty() && batch.size() < options_.maxBatchJobs) {
          AppendJob* job = queue_.front();
          const size_t size = job->payloadBytes;
          if (!batch.empty() && bytes + size > options_.maxBatchBytes) break;
          bytes += size;
          batch.push_back(job);
          queue_.pop_front();
        }
      }

      bool rowLevelFailure = false;
      const std::string error = commitWithRetry(batch, rowLevelFailure);
      const bool announced = error.empty() && announceOwnBatch(batch);

      // One event the server refuses must not fail the others of its batch: each is tried
      // alone, and only the ones that fail alone are refused.
      if (rowLevelFailure && batch.size() > 1) {
        for (AppendJob* job : batch) {
          std::vector<AppendJob*> single{job};
          bool again = false;
          const std::string alone = commitWithRetry(single, again);
          const bool heard = alone.empty() && announceOwnBatch(single);
          std::lock_guard<std::mutex> lock(mu_);
          job->error = alone;
          job->done = true;
          job->doneCv.notify_one();
          if (alone.empty() && !heard) {
            followWake_ = true;
            followCv_.notify_one();
          }
        }
        continue;
      }

      // Otherwise the follower announces what was just committed without waiting for its
      // next poll.
      std::lock_guard<std::mutex> lock(mu_);
      for (AppendJob* job : batch) {
        job->error = error;
        job->done = true;
        job->doneCv.notify_one();
      }
      if (error.empty() && !announced) {
        followWake_ = true;
        followCv_.notify_one();
      }
    }
  }

  /// Commits the batch, retrying once on a new connection when the failure came before the
  /// COMMIT (so nothing was stored). Returns "" or what went wrong.
  std::string commitWithRetry(std::vector<AppendJob*>& batch, bool& rowLevelFailure) {
    rowLevelFailure = false;
    for (int attempt = 0;; ++attempt) {
      bool committing = false;
      try {
        if (writer_ && !writer_->stillAlive(std::chrono::seconds(kWriterIdleSeconds / 2))) {
          writer_.reset();
        }
        if (!writer_) {
          // Refuse fast while the server is down instead of making every caller wait.
          if (Clock::now() < nextConnectAttempt_) return "the database is unreachable";
          try {
            writer_ = std::make_unique<Connection>(options_, "writing");
            writer_->useManualCommit();
            writer_->limitIdleSession();
          } catch (const StoreError& e) {
            // The pause doubles while connects keep failing: a server that hangs rather than
            // refuses would otherwise cost one connect timeout per batch.
            connectPause_ = connectPause_.count() == 0
                                ? options_.reconnectPause
                                : std::min(connectPause_ * 2, kMaxConnectPause);
            nextConnectAttempt_ = Clock::now() + connectPause_;
            countFailedBatch();
            return e.what();
          }
          connectPause_ = std::chrono::milliseconds(0);
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.reconnects;
        }
        commitBatch(*writer_, batch, committing);
        return "";
      } catch (const sql::SQLException& e) {
        const bool broken = isConnectionError(e);
        if (committing && broken) {
          writer_.reset();
          return resolveUnconfirmedCommit(batch, e);
        }
        writer_->rollbackQuietly();
        const bool conflict = isRetryableConflict(e);

        // Anything else came from the data of some event (a body over the server's
        // max_allowed_packet, say): start over with a fresh connection, whose prepared
        // statements carry nothing of the failed one.
        if (!conflict) writer_.reset();
        const bool retry = attempt == 0 && !committing && (broken || conflict);
        logger().warning(Poco::format("could not commit events count=%z retry=%b error=\"%s\"",
                                      batch.size(), retry, describeSqlError(e)));
        if (retry) {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.retriedBatches;
          continue;
        }
        if (!broken && !conflict) rowLevelFailure = true;
        countFailedBatch();
        return "could not store event: " + describeSqlError(e);
      } catch (const std::exception& e) {
        if (writer_) writer_->rollbackQuietly();
        countFailedBatch();
        return std::string("could not store event: ") + e.what();
      }
    }
  }

  void countFailedBatch() {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.failedBatches;
  }

  void commitBatch(Connection& c, std::vector<AppendJob*>& batch, bool& committing) {
    const int64_t count = static_cast<int64_t>(batch.size());
    for (AppendJob* job : batch) job->writeToken = randomToken();
    const bool sealed = batch.front()->sealed.has_value();
    const RingPtr ring = sealed ? currentRing() : nullptr;
    c.begin();

    // Taking the ids locks the counter row until COMMIT: a later transaction of any edge
    // waits here, so ids become durable in the order they are handed out. Only three
    // statements run while the lock is held (this one, the INSERT and the COMMIT), since that
    // is the part several edges take turns at: LAST_INSERT_ID(expr) keeps the new value in the
    // session, so the INSERT computes its ids itself and the value is read after the COMMIT.
    // GREATEST keeps ids above every id this edge has seen, even if the database was restored
    // to an older copy: relays resume by id and would skip a reused one.
    auto& take = c.prepare(
        "UPDATE sequences SET value = LAST_INSERT_ID(GREATEST(value, ?) + ?) "
        "WHERE name = 'event_id'");
    take.setInt64(1, newestKnownId());
    take.setInt64(2, count);
    if (take.executeUpdate() != 1) throw StoreError("the sequences table has no event_id row");

    // Sealed events need their ids for the wrap's AAD: one more round trip and one small seal
    // per event while the counter row is held, nothing in proportion to the bodies.
    if (sealed) {
      const int64_t first = lastInsertId(c) - count + 1;
      for (int64_t i = 0; i < count; ++i) {
        AppendJob& job = *batch[static_cast<size_t>(i)];
        job.wrapped = wrapDataKey(*ring, job.sealed->dataKey, job.event->hookId, first + i);
      }
    }
    insertBatch(c, batch);

    if (options_.beforeCommitForTest) {
      const int64_t last = lastInsertId(c);
      options_.beforeCommitForTest(last - count + 1, last);
    }
    committing = true;
    c.commit();
    c.touch();

    // LAST_INSERT_ID() reads no table, so this opens no InnoDB transaction for the next batch.
    const int64_t last = lastInsertId(c);
    assignIds(batch, last - count + 1);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.commits;
    stats_.eventsStored += batch.size();
    stats_.largestBatchJobs = std::max(stats_.largestBatchJobs, batch.size());
  }

  int64_t newestKnownId() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::max(visibleThrough_, lastOwnId_);
  }

  void assignIds(std::vector<AppendJob*>& batch, int64_t first) {
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->id = first + static_cast<int64_t>(i);
    std::lock_guard<std::mutex> lock(mu_);
    lastOwnId_ = batch.back()->id;
  }

  static int64_t lastInsertId(Connection& c) {
    auto& read = c.prepare("SELECT LAST_INSERT_ID()");
    std::unique_ptr<sql::ResultSet> rs(read.executeQuery());
    if (!rs->next()) throw StoreError("could not read the ids of a batch");
    return rs->getInt64(1);
  }

  /// The connection broke during COMMIT, so the server may or may not have committed. On a
  /// new connection, waits for the counter row (the batch's transaction holds it until it has
  /// ended either way), then looks for the batch's write tokens among the ids handed out since
  /// this writer's previous batch: the rows are this batch's exactly when every token is
  /// there, in order. Returns "" when the batch is stored, with the ids assigned.
  std::string resolveUnconfirmedCommit(std::vector<AppendJob*>& batch,
                                       const sql::SQLException& cause) {
    int64_t after = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      after = std::max(lastOwnId_, initialCounter_);
    }
    logger().warning(
        Poco::format("commit unconfirmed, checking whether it took effect "
                     "count=%z after_id=%Ld error=\"%s\"",
                     batch.size(), static_cast<Poco::Int64>(after), describeSqlError(cause)));
    const auto deadline = Clock::now() + kCommitCheckWindow;
    for (;;) {
      try {
        Connection check(options_, "checking an unconfirmed commit");
        check.limitIdleSession();
        check.begin();
        auto& lock =
            check.prepare("SELECT value FROM sequences WHERE name = 'event_id' FOR UPDATE");
        std::unique_ptr<sql::ResultSet> locked(lock.executeQuery());
        locked.reset();

        // Tokens are random and never reused, so a match is this batch's row.
        auto& read = check.prepare("SELECT id, write_token FROM events WHERE id > ? ORDER BY id");
        read.setInt64(1, after);
        std::unique_ptr<sql::ResultSet> rs(read.executeQuery());
        int64_t first = 0;
        size_t matching = 0;
        while (rs->next() && matching < batch.size()) {
          if (column(*rs, 2) != batch[matching]->writeToken) continue;
          const int64_t id = rs->getInt64(1);
          if (matching == 0) first = id;
          if (id != first + static_cast<int64_t>(matching)) break;
          ++matching;
        }
        rs.reset();
        check.rollbackQuietly();

        if (matching == batch.size()) {
          assignIds(batch, first);
          logger().information(Poco::format("unconfirmed commit took effect first_id=%Ld",
                                            static_cast<Poco::Int64>(first)));
          std::lock_guard<std::mutex> statsLock(mu_);
          ++stats_.commits;
          stats_.eventsStored += batch.size();
          return "";
        }
        countFailedBatch();
        return "could not store event: " + describeSqlError(cause);
      } catch (const std::exception& e) {
        if (Clock::now() >= deadline) {
          logger().error(
              Poco::format("could not learn whether a commit took effect; its events "
                           "may be stored though refused count=%z after_id=%Ld "
                           "error=\"%s\"",
                           batch.size(), static_cast<Poco::Int64>(after), std::string(e.what())));
          countFailedBatch();
          return "could not store event: the database went away during the commit";
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  static std::string randomToken() {
    thread_local std::mt19937_64 generator{std::random_device{}()};
    const uint64_t value = generator();
    return std::string(reinterpret_cast<const char*>(&value), sizeof(value));
  }

  /// One multi-row INSERT for the whole batch. Its text depends only on the row count, so a
  /// connection prepares at most maxBatchJobs statements.
  void insertBatch(Connection& c, std::vector<AppendJob*>& batch) {
    constexpr int kParameters = 19;
    const size_t rows = batch.size();
    std::string text =
        "INSERT INTO events (id, hook_id, received_at_ms, method, path_suffix, raw_query, headers, "
        "body_size, verdict, reason, reason_message, event_type, delivery_id, replay_of, "
        "write_token, key_id, wrapped_key, seal_version, modified, body) VALUES ";
    for (size_t r = 0; r < rows; ++r) {
      text += r == 0 ? "(" : ",(";
      text += "LAST_INSERT_ID() - " + std::to_string(rows - 1 - r);
      for (int k = 0; k < kParameters; ++k) text += ",?";
      text += ")";
    }
    auto& statement = c.prepare(text);

    // Bodies and headers go as long data, each limited by the server's max_allowed_packet on
    // its own, so that the batch's statement stays small. The streams must outlive
    // execute(): the connector reads them while it sends.
    std::vector<std::unique_ptr<std::istringstream>> bodies;
    std::vector<std::unique_ptr<std::istringstream>> headers;
    bodies.reserve(rows);
    headers.reserve(rows);
    for (size_t r = 0; r < rows; ++r) {
      const AppendJob& job = *batch[r];
      const EventRecord& e = *job.event;
      const SummaryFields& summary =
          job.sealed ? job.sealed->summary
                     : SummaryFields{e.pathSuffix, e.reasonMessage, e.eventType, e.deliveryId};
      const unsigned base = static_cast<unsigned>(r * kParameters);
      statement.setString(base + 1, e.hookId);
      statement.setInt64(base + 2, e.receivedAtMs);
      statement.setString(base + 3, e.method);
      statement.setString(base + 4, summary.pathSuffix);
      statement.setString(base + 5, job.sealed ? job.sealed->query : e.rawQuery);
      headers.push_back(std::make_unique<std::istringstream>(
          job.sealed ? job.sealed->headers : encodeHeaders(e.headers)));
      statement.setBlob(base + 6, headers.back().get());
      statement.setInt64(base + 7, e.bodySize);
      statement.setInt(base + 8, static_cast<int32_t>(e.verdict));
      statement.setInt(base + 9, e.reason);
      statement.setString(base + 10, summary.reasonMessage);
      statement.setString(base + 11, summary.eventType);
      statement.setString(base + 12, summary.deliveryId);
      statement.setInt64(base + 13, e.replayOf);
      statement.setString(base + 14, job.writeToken);
      statement.setString(base + 15, job.wrapped.keyId);
      statement.setString(base + 16, job.wrapped.sealed);
      statement.setInt(base + 17, static_cast<int32_t>(kSealVersionSummary));
      statement.setInt(base + 18, e.modified ? 1 : 0);
      bodies.push_back(
          std::make_unique<std::istringstream>(job.sealed ? job.sealed->body : e.body));
      statement.setBlob(base + 19, bodies.back().get());
    }
    statement.executeUpdate();
  }

  /// Announces a batch the writer just committed when it follows on from what is announced
  /// already: the commit has returned, so every reader can see it, and the follower's query
  /// would only add its latency to every acknowledgement. Returns false when the follower must
  /// do it (it is querying right now, or an earlier id is still missing).
  bool announceOwnBatch(const std::vector<AppendJob*>& batch) {
    std::unique_lock<std::mutex> announcing(announceMu_, std::try_to_lock);
    if (!announcing.owns_lock()) return false;
    std::vector<EventNotice> notices;
    notices.reserve(batch.size());
    for (const AppendJob* job : batch) {
      EventNotice notice;
      notice.id = job->id;
      notice.hookId = job->event->hookId;
      notice.forwardable = isForwardable(job->event->verdict, job->event->replayOf);
      notices.push_back(std::move(notice));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (batch.empty() || visibleThrough_ != batch.front()->id - 1) return false;
      visibleThrough_ = batch.back()->id;
    }
    announce(notices);
    return true;
  }

  void announce(const std::vector<EventNotice>& notices) {
    {
      std::lock_guard<std::mutex> lock(listenerMu_);
      if (listener_) {
        for (const auto& notice : notices) {
          try {
            listener_(notice);
          } catch (const std::exception& e) {
            logger().warning(Poco::format("notice listener failed event_id=%Ld error=\"%s\"",
                                          static_cast<Poco::Int64>(notice.id),
                                          std::string(e.what())));
          }
        }
      }
    }

    // Appenders wait for this, not for visibleThrough_, so they return after the listener.
    {
      std::lock_guard<std::mutex> lock(mu_);
      announcedThrough_ = std::max(announcedThrough_, notices.back().id);
    }
    visibleCv_.notify_all();
  }

  // --- the follower ---

  void runFollower() {
    ensureDriverThread();
    auto backoff = options_.pollInterval;
    bool failing = false;
    bool holeOpen = false;
    int64_t holeId = 0;
    Clock::time_point holeSince;
    Clock::time_point holeReported;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (stopping_) return;
        const auto wait =
            failing ? backoff : (holeOpen ? std::chrono::milliseconds(1) : options_.pollInterval);
        followCv_.wait_for(lock, wait, [&] { return stopping_ || followWake_; });
        if (stopping_) return;
        followWake_ = false;
      }

      try {
        if (!follower_) follower_ = std::make_unique<Connection>(options_, "following events");
        const FollowResult result = followOnce(*follower_);
        if (failing) logger().information("store reachable again, following new events");
        failing = false;
        backoff = options_.pollInterval;

        // A later id is visible while an earlier one is not yet: wait for it, since skipping
        // would lose an event for every relay. Edges commit ids in order, so such a hole
        // lasts microseconds; one that lasts kHoleSkipAfter can only be ids that will never
        // exist (rows deleted, or a counter that jumped after a database restore), and
        // waiting longer would stop every stream of this edge for good.
        if (result.hole) {
          if (!holeOpen || holeId != result.next) {
            holeSince = Clock::now();
            holeReported = holeSince;
            holeId = result.next;
          }
          holeOpen = true;
          const auto waited = Clock::now() - holeSince;
          if (waited >= kHoleSkipAfter) {
            skipHole(result.next, result.afterHole);
            holeOpen = false;
          } else if (Clock::now() - holeReported >= kHoleReportEvery) {
            holeReported = Clock::now();
            logger().warning(Poco::format("waiting for an event id that is not visible yet id=%Ld",
                                          static_cast<Poco::Int64>(result.next)));
          }
        } else {
          holeOpen = false;
        }
        if (result.full) {
          std::lock_guard<std::mutex> lock(mu_);
          followWake_ = true;
        }
      } catch (const std::exception& e) {
        follower_.reset();
        if (!failing) {
          logger().warning(
              Poco::format("could not follow new events error=\"%s\"", std::string(e.what())));
        }
        failing = true;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxFollowBackoff);
      }
    }
  }

  void skipHole(int64_t missing, int64_t nextVisible) {
    std::lock_guard<std::mutex> announcing(announceMu_);
    std::lock_guard<std::mutex> lock(mu_);
    if (visibleThrough_ != missing - 1) return;
    visibleThrough_ = nextVisible - 1;
    announcedThrough_ = std::max(announcedThrough_, visibleThrough_);
    ++stats_.holesSkipped;
    logger().error(
        Poco::format("skipping event ids that never became visible first_id=%Ld "
                     "last_id=%Ld waited_s=%d; rows deleted or the id counter jumped",
                     static_cast<Poco::Int64>(missing), static_cast<Poco::Int64>(nextVisible - 1),
                     static_cast<int>(kHoleSkipAfter.count())));
  }

  struct FollowResult {
    bool hole = false;      ///< rows past a missing id were seen
    int64_t afterHole = 0;  ///< the first visible id past the hole
    bool full = false;      ///< a whole page was announced: read again at once
    int64_t next = 0;       ///< the first id not announced
  };

  FollowResult followOnce(Connection& c) {
    // The writer announces its own batches too; one of them at a time.
    std::lock_guard<std::mutex> announcing(announceMu_);
    int64_t from = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      from = visibleThrough_;
      ++stats_.followerPolls;
    }
    auto& statement = c.prepare(
        "SELECT id, hook_id, verdict, replay_of FROM events WHERE id > ? ORDER BY id LIMIT ?");
    statement.setInt64(1, from);
    statement.setInt(2, kFollowBatch);
    std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());

    std::vector<EventNotice> notices;
    FollowResult result;
    int64_t expected = from + 1;
    size_t rows = 0;
    while (rs->next()) {
      ++rows;
      const int64_t id = rs->getInt64(1);
      if (id != expected) {
        result.hole = true;
        result.afterHole = id;
        break;
      }
      EventNotice notice;
      notice.id = id;
      notice.hookId = column(*rs, 2);
      notice.forwardable = isForwardable(static_cast<Verdict>(rs->getInt(3)), rs->getInt64(4));
      notices.push_back(std::move(notice));
      ++expected;
    }
    result.next = expected;
    result.full = !result.hole && rows == static_cast<size_t>(kFollowBatch);
    if (notices.empty()) {
      if (result.hole) {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.holesWaited;
      }
      return result;
    }

    // Visible first, then announced, then the appenders wake: a listener reading the event
    // with listEvents finds it, and appendEvent returns after its event was announced.
    {
      std::lock_guard<std::mutex> lock(mu_);
      visibleThrough_ = notices.back().id;
      if (result.hole) ++stats_.holesWaited;
    }
    announce(notices);
    return result;
  }

  MySqlOptions options_;

  // Writer queue, follower position and stats.
  mutable std::mutex mu_;
  std::condition_variable queueCv_;
  std::condition_variable followCv_;
  std::condition_variable visibleCv_;
  std::deque<AppendJob*> queue_;
  bool stopping_ = false;
  bool followWake_ = false;
  int64_t visibleThrough_ = 0;    ///< listEvents may return ids up to here
  int64_t announcedThrough_ = 0;  ///< the listener has heard of every id up to here
  int64_t initialCounter_ = 0;    ///< the counter when the store opened
  int64_t maxPacketBytes_ = 0;    ///< the server's max_allowed_packet, read at open
  MySqlStats stats_;

  std::unique_ptr<Connection> writer_;  ///< the writer thread's, after open()
  int64_t lastOwnId_ = 0;               ///< the writer's newest committed id
  Clock::time_point nextConnectAttempt_;
  std::chrono::milliseconds connectPause_{0};  ///< 0 while connecting works
  std::unique_ptr<Connection> follower_;       ///< the follower thread's, after open()
  std::thread writerThread_;
  std::thread followerThread_;

  std::mutex announceMu_;  ///< held by whoever announces: the follower or the writer
  std::mutex listenerMu_;
  std::function<void(const EventNotice&)> listener_;

  std::mutex poolMu_;
  std::condition_variable poolCv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t open_ = 0;  ///< pooled connections, idle or lent out

  struct CachedHook {
    HookRecord hook;
    Clock::time_point fetched;
  };
  std::mutex hookMu_;
  std::unordered_map<std::string, CachedHook> hooks_;
  uint64_t hookGeneration_ = 0;  ///< counts this store's own hook changes

  /// Where reencryptBatch goes on from while the active key stays the same.
  struct RotateCursor {
    std::string activeKey;
    std::string setting;       ///< last name done
    std::string hook;          ///< last id done
    int64_t event = 0;         ///< last id done of the events under another key
    int64_t clearSummary = 0;  ///< last id done of the events whose summary is in the clear
  };
  std::mutex rotateMu_;  ///< one rotation at a time; guards the cursor and the failures
  RotateCursor rotateCursor_;
  ReencryptFailureLog rotateFailures_;

  static constexpr size_t kMaxIntegrityReports = 100000;
  std::mutex integrityMu_;
  std::unordered_set<int64_t> integrityReported_;  ///< events whose failed check was logged
};

std::unique_ptr<MySqlStore> MySqlStore::open(const MySqlOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  try {
    impl->open();
  } catch (const sql::SQLException& e) {
    throwStoreError("could not open store database=" + options.endpoint.database, e);
  }
  return std::unique_ptr<MySqlStore>(new MySqlStore(std::move(impl)));
}

MySqlStore::MySqlStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MySqlStore::~MySqlStore() = default;

void MySqlStore::createHook(const HookRecord& hook) { impl_->createHook(hook); }

std::optional<HookRecord> MySqlStore::findHook(const std::string& hookId) {
  return impl_->findHook(hookId);
}

int64_t MySqlStore::appendEvent(EventRecord event) { return impl_->appendEvent(std::move(event)); }

std::vector<EventRecord> MySqlStore::listEvents(const std::string& hookId, int64_t afterId,
                                                size_t limit, bool withBodies,
                                                bool forwardableOnly) {
  return impl_->listEvents(hookId, afterId, limit, withBodies, forwardableOnly);
}

std::optional<EventRecord> MySqlStore::getEvent(const std::string& hookId, int64_t eventId) {
  return impl_->getEvent(hookId, eventId);
}

void MySqlStore::addDelivery(const DeliveryRecord& delivery) { impl_->addDeliveries({delivery}); }

void MySqlStore::addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
  impl_->addDeliveries(deliveries);
}

std::vector<DeliveryRecord> MySqlStore::listDeliveries(int64_t eventId) {
  return impl_->listDeliveries(eventId);
}

void MySqlStore::setNoticeListener(std::function<void(const EventNotice&)> listener) {
  impl_->setNoticeListener(std::move(listener));
}

void MySqlStore::createHookWithin(const HookRecord& hook, size_t maxNamedHooks) {
  impl_->createHookWithin(hook, maxNamedHooks);
}

bool MySqlStore::updateHook(const HookRecord& hook) { return impl_->updateHook(hook); }

std::vector<HookRecord> MySqlStore::listHooks(const std::string& accountId) {
  return impl_->listHooks(accountId);
}

std::optional<HookRecord> MySqlStore::findHookByName(const std::string& accountId,
                                                     const std::string& name) {
  return impl_->findHookByName(accountId, name);
}

size_t MySqlStore::deleteExpiredHooks(int64_t nowMs) { return impl_->deleteExpiredHooks(nowMs); }

void MySqlStore::extendHook(const std::string& hookId, int64_t expiresAtMs) {
  impl_->extendHook(hookId, expiresAtMs);
}

bool MySqlStore::claimRelay(const std::string& hookId, const std::string& relayId, int64_t nowMs,
                            int64_t untilMs) {
  return impl_->claimRelay(hookId, relayId, nowMs, untilMs);
}

void MySqlStore::releaseRelay(const std::string& hookId, const std::string& relayId) {
  impl_->releaseRelay(hookId, relayId);
}

bool MySqlStore::takeOverRelay(const std::string& hookId, const std::string& holder,
                               const std::string& relayPrefix, int64_t nowMs, int64_t untilMs) {
  return impl_->takeOverRelay(hookId, holder, relayPrefix, nowMs, untilMs);
}

void MySqlStore::createAccount(const AccountRecord& account) { impl_->createAccount(account); }

std::optional<AccountRecord> MySqlStore::findAccount(const std::string& accountId) {
  return impl_->findAccount(accountId);
}

std::optional<AccountRecord> MySqlStore::findAccountByName(const std::string& name) {
  return impl_->findAccountByName(name);
}

std::vector<AccountRecord> MySqlStore::listAccounts() { return impl_->listAccounts(); }

bool MySqlStore::updateAccount(const AccountRecord& account) {
  return impl_->updateAccount(account);
}

void MySqlStore::createMember(const MemberRecord& member) { impl_->createMember(member); }

std::optional<MemberRecord> MySqlStore::findMember(const std::string& memberId) {
  return impl_->findMember(memberId);
}

std::vector<MemberRecord> MySqlStore::listMembers(const std::string& accountId) {
  return impl_->listMembers(accountId);
}

void MySqlStore::createToken(const TokenRecord& token) { impl_->createToken(token); }

std::optional<TokenRecord> MySqlStore::findTokenByHash(const std::string& hash) {
  return impl_->findTokenByHash(hash);
}

std::optional<TokenRecord> MySqlStore::findToken(const std::string& tokenId) {
  return impl_->findToken(tokenId);
}

std::vector<TokenRecord> MySqlStore::listTokens(const std::string& accountId) {
  return impl_->listTokens(accountId);
}

bool MySqlStore::revokeToken(const std::string& tokenId, int64_t nowMs) {
  return impl_->revokeToken(tokenId, nowMs);
}

std::vector<std::string> MySqlStore::revokedTokensSince(int64_t sinceMs) {
  return impl_->revokedTokensSince(sinceMs);
}

void MySqlStore::touchToken(const std::string& tokenId, int64_t nowMs) {
  impl_->touchToken(tokenId, nowMs);
}

void MySqlStore::endSession(const std::string& sessionId, int64_t untilMs, int64_t nowMs) {
  impl_->endSession(sessionId, untilMs, nowMs);
}

bool MySqlStore::sessionEnded(const std::string& sessionId, int64_t nowMs) {
  return impl_->sessionEnded(sessionId, nowMs);
}

int64_t MySqlStore::appendAudit(const AuditRecord& entry) { return impl_->appendAudit(entry); }

std::vector<AuditRecord> MySqlStore::listAudit(const std::string& accountId, int64_t afterId,
                                               size_t limit) {
  return impl_->listAudit(accountId, afterId, limit);
}

std::optional<std::string> MySqlStore::getSetting(const std::string& name) {
  return impl_->getSetting(name);
}

std::string MySqlStore::putSettingIfAbsent(const std::string& name, const std::string& value) {
  return impl_->putSettingIfAbsent(name, value);
}

void MySqlStore::setSetting(const std::string& name, const std::string& value) {
  impl_->setSetting(name, value);
}

size_t MySqlStore::reencryptBatch(size_t limit) { return impl_->reencryptBatch(limit); }

ReencryptFailures MySqlStore::reencryptFailures() { return impl_->reencryptFailures(); }

std::vector<KeyUsage> MySqlStore::keyUsage() { return impl_->keyUsage(); }

std::vector<EventRecord> MySqlStore::listEventsBefore(const std::string& hookId, int64_t beforeId,
                                                      size_t limit, bool withBodies) {
  return impl_->listEventsBefore(hookId, beforeId, limit, withBodies);
}

std::vector<DeliveryRecord> MySqlStore::listDeliveriesOf(const std::vector<int64_t>& eventIds) {
  return impl_->listDeliveriesOf(eventIds);
}

std::vector<int64_t> MySqlStore::listReplayIds(const std::string& hookId, int64_t eventId,
                                               size_t limit) {
  return impl_->listReplayIds(hookId, eventId, limit);
}

int64_t MySqlStore::countEvents(const std::string& hookId) { return impl_->countEvents(hookId); }

std::vector<ActivityBucket> MySqlStore::activity(const std::string& hookId, int64_t fromMs,
                                                 int64_t bucketMs, size_t buckets) {
  return impl_->activity(hookId, fromMs, bucketMs, buckets);
}

MySqlStats MySqlStore::stats() const { return impl_->stats(); }

int64_t MySqlStore::maxPacketBytes() const { return impl_->maxPacketBytes(); }

}  // namespace anm::store
