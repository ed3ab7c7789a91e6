// core/store/sqlite_store.cpp: SQLite event store with one group-committing writer thread.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sqlite_store.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/crypto/keys.h"
#include "core/store/field_codec.h"
#include "core/store/migration.h"
#include "core/store/sealing.h"

namespace anm::store {

using Poco::Data::Session;
using Poco::Data::Statement;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace {

Poco::Logger& logger() { return Poco::Logger::get("anm.store"); }

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// NOTE: every free-form byte string is a BLOB. POCO reads TEXT through a C string, which would
// cut a value at its first NUL byte.
const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "hooks, events and deliveries",
       {
           "CREATE TABLE hooks ("
           " id TEXT PRIMARY KEY NOT NULL,"
           " provider TEXT NOT NULL,"
           " secret BLOB NOT NULL,"
           " tolerance_s INTEGER NOT NULL,"
           " options BLOB NOT NULL,"  // field_codec.h encoding
           " token_hash TEXT NOT NULL,"
           " created_at_ms INTEGER NOT NULL)",

           // AUTOINCREMENT: ids are never reused, even after the newest events are deleted,
           // because relays resume by id. The body is the last column so that reading the
           // other columns does not walk a large body's overflow pages.
           "CREATE TABLE events ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " hook_id TEXT NOT NULL REFERENCES hooks(id),"
           " received_at_ms INTEGER NOT NULL,"
           " method TEXT NOT NULL,"
           " path_suffix BLOB NOT NULL,"
           " raw_query BLOB NOT NULL,"
           " headers BLOB NOT NULL,"  // field_codec.h encoding
           " body_size INTEGER NOT NULL,"
           " verdict INTEGER NOT NULL,"
           " reason INTEGER NOT NULL,"
           " reason_message BLOB NOT NULL,"
           " event_type BLOB NOT NULL,"
           " delivery_id BLOB NOT NULL,"
           " replay_of INTEGER NOT NULL DEFAULT 0,"
           " body BLOB NOT NULL)",

           "CREATE INDEX events_by_hook_id ON events(hook_id, id)",
           "CREATE INDEX events_by_hook_time ON events(hook_id, received_at_ms)",

           "CREATE TABLE deliveries ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
           " relay_id BLOB NOT NULL,"
           " status INTEGER NOT NULL,"
           " duration_ms INTEGER NOT NULL,"
           " error BLOB NOT NULL,"
           " reported_at_ms INTEGER NOT NULL)",

           "CREATE INDEX deliveries_by_event ON deliveries(event_id, id)",
       }},
      {2,
       "accounts, tokens, audit, settings, hooks of accounts, encryption at rest",
       {
           "CREATE TABLE accounts ("
           " id TEXT PRIMARY KEY NOT NULL,"
           " name TEXT NOT NULL UNIQUE,"
           " plan INTEGER NOT NULL,"
           " disabled INTEGER NOT NULL,"
           " created_at_ms INTEGER NOT NULL)",

           "CREATE TABLE members ("
           " id TEXT PRIMARY KEY NOT NULL,"
           " account_id TEXT NOT NULL REFERENCES accounts(id),"
           " name TEXT NOT NULL,"
           " owner INTEGER NOT NULL,"
           " created_at_ms INTEGER NOT NULL,"
           " UNIQUE (account_id, name))",

           // Only the token's hash is kept; the unique index is the lookup of every exchange.
           "CREATE TABLE tokens ("
           " id TEXT PRIMARY KEY NOT NULL,"
           " member_id TEXT NOT NULL REFERENCES members(id),"
           " account_id TEXT NOT NULL REFERENCES accounts(id),"
           " name BLOB NOT NULL,"
           " hash TEXT NOT NULL,"
           " created_at_ms INTEGER NOT NULL,"
           " last_used_at_ms INTEGER NOT NULL DEFAULT 0,"
           " revoked_at_ms INTEGER NOT NULL DEFAULT 0)",
           "CREATE UNIQUE INDEX tokens_by_hash ON tokens(hash)",
           "CREATE INDEX tokens_by_account ON tokens(account_id, created_at_ms)",
           "CREATE INDEX tokens_by_revocation ON tokens(revoked_at_ms) WHERE revoked_at_ms > 0",

           // AUTOINCREMENT: entry ids only grow, so that readers page by them. The triggers
           // make the log append-only for every connection, the admin command's included.
           "CREATE TABLE audit ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " at_ms INTEGER NOT NULL,"
           " account_id TEXT NOT NULL,"
           " actor BLOB NOT NULL,"
           " action TEXT NOT NULL,"
           " hook_id TEXT NOT NULL,"
           " event_id INTEGER NOT NULL,"
           " detail BLOB NOT NULL,"
           " remote BLOB NOT NULL)",
           "CREATE INDEX audit_by_account ON audit(account_id, id)",
           "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
           " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
           "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
           " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",

           // value is sealed under key_id ('' when stored in the clear).
           "CREATE TABLE settings ("
           " name TEXT PRIMARY KEY NOT NULL,"
           " value BLOB NOT NULL,"
           " key_id TEXT NOT NULL DEFAULT '')",

           // Hooks of accounts. Existing hooks stay anonymous, with secrets in the clear
           // (key_id '') until reencryptBatch seals them. relay_id is NULL while no relay holds
           // the lease.
           "ALTER TABLE hooks ADD COLUMN account_id TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hooks ADD COLUMN name TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hooks ADD COLUMN signing_secret BLOB NOT NULL DEFAULT x''",
           "ALTER TABLE hooks ADD COLUMN previous_signing_secret BLOB NOT NULL DEFAULT x''",
           "ALTER TABLE hooks ADD COLUMN previous_valid_until_ms INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE hooks ADD COLUMN standard_webhooks INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE hooks ADD COLUMN custom_response BLOB NOT NULL DEFAULT x''",
           "ALTER TABLE hooks ADD COLUMN expires_at_ms INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE hooks ADD COLUMN relay_id TEXT",
           "ALTER TABLE hooks ADD COLUMN relay_until_ms INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE hooks ADD COLUMN key_id TEXT NOT NULL DEFAULT ''",
           "CREATE UNIQUE INDEX hooks_by_account_name ON hooks(account_id, name) WHERE name <> ''",
           "CREATE INDEX hooks_by_expiry ON hooks(expires_at_ms) WHERE expires_at_ms > 0",

           // An event's key id and wrapped data key, in a table of their own rather than as
           // columns after the body: a column behind a large body is reached only by walking
           // the body's overflow pages, which every list without bodies would then do, and a
           // rotation rewrites these 60 bytes alone. An event without a row here is stored in
           // the clear (from before encryption at rest, or from a store without keys).
           "CREATE TABLE event_keys ("
           " event_id INTEGER PRIMARY KEY NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
           " key_id TEXT NOT NULL,"
           " wrapped_key BLOB NOT NULL)",
           "CREATE INDEX event_keys_by_key ON event_keys(key_id, event_id)",
       }},
      {3,
       "summary fields of events sealed like their contents",
       {
           // Which of a sealed event's values are sealed (sealing.h): rows sealed before this
           // step hold their path suffix, reason message, event type and delivery id in the
           // clear (1) until the step's row work, or a re-encryption, seals them (2). An edge of
           // an older build still writing to the file leaves 1, which is then true. The partial
           // index finds what is left without reading the others.
           "ALTER TABLE event_keys ADD COLUMN seal_version INTEGER NOT NULL DEFAULT 1",
           "CREATE INDEX event_keys_clear_summary ON event_keys(event_id) WHERE seal_version < 2",
       },
       RowWork::kSealSummaryFields},
      {4,
       "what relays report of each delivery, and edited replays",
       {
           // The facts a relay reports beside the status (docs/diagnosis.md). response_excerpt
           // and location come from the developer's server: sealed (sealed = 1) under the data
           // key of their event when it is sealed, else in the clear. Reports from before this
           // step have none of them.
           "ALTER TABLE deliveries ADD COLUMN phase INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE deliveries ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE deliveries ADD COLUMN target_https INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE deliveries ADD COLUMN started_at_ms INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE deliveries ADD COLUMN response_excerpt BLOB NOT NULL DEFAULT x''",
           "ALTER TABLE deliveries ADD COLUMN location BLOB NOT NULL DEFAULT x''",
           "ALTER TABLE deliveries ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0",

           // Edited replays, a row each, rather than a column of events: a column added to
           // events would come after the body, and reading it would walk the body's overflow
           // pages in every list.
           "CREATE TABLE modified_events ("
           " event_id INTEGER PRIMARY KEY NOT NULL REFERENCES events(id) ON DELETE CASCADE)",
       }},
      {5,
       "the replays of an event",
       {
           // An event's detail lists its replays; only replays are in the index.
           "CREATE INDEX events_by_replay_of ON events(hook_id, replay_of) WHERE replay_of <> 0",
       }},
      {6,
       "access tokens ended by a sign-out",
       {
           // One row per signed-out access token (its jti) until it expires; endSession drops
           // the rows past their time, through the index.
           "CREATE TABLE ended_sessions ("
           " jti TEXT PRIMARY KEY NOT NULL,"
           " until_ms INTEGER NOT NULL)",
           "CREATE INDEX ended_sessions_by_until ON ended_sessions(until_ms)",
       }},
  };
  return kMigrations;
}

void registerConnectorOnce() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Data::SQLite::Connector::registerConnector(); });
}

/// Opens a session with the settings every connection needs (they are per connection).
std::unique_ptr<Session> openSession(const std::string& path, int busyTimeoutMs) {
  // POCO waits out its whole login timeout before reporting a file it cannot open, so the
  // common mistake is caught here, at once and with a plain message.
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
    throw StoreError("could not open store path=" + path + ": directory " + parent.string() +
                     " does not exist");
  }

  const std::size_t loginTimeoutS = static_cast<std::size_t>(std::max(1, busyTimeoutMs / 1000));
  auto session = std::make_unique<Session>("SQLite", path, loginTimeoutS);

  int timeout = busyTimeoutMs;
  int reported = 0;
  *session << "PRAGMA busy_timeout = " + std::to_string(timeout), into(reported), now;

  // An event must not point at a hook that does not exist.
  *session << "PRAGMA foreign_keys = ON", now;

  // FULL: in WAL mode NORMAL may lose the last commits on power loss, and a webhook that was
  // acknowledged must survive that.
  *session << "PRAGMA synchronous = FULL", now;
  return session;
}

/// A constraint refused one statement (a taken name, an unknown parent row); SQLite undid that
/// statement only. `code` is SQLite's extended result code.
class Constraint : public StoreError {
 public:
  Constraint(int code, const std::string& message) : StoreError(message), code_(code) {}
  int code() const { return code_; }
  bool unique() const { return code_ == SQLITE_CONSTRAINT_UNIQUE; }

 private:
  int code_;
};

/// A write of the writer's queue that failed alone: the rest of its batch goes on. Constraint,
/// ConflictError and LimitError are the others that fail one write only.
class Refused : public StoreError {
 public:
  using StoreError::StoreError;
};

bool isConstraint(int rc) { return (rc & 0xff) == SQLITE_CONSTRAINT; }

/// One statement on a raw connection (a reader's or the writer's): binds by position, steps
/// and reads columns. Bound values are copied (SQLITE_TRANSIENT), so temporaries are fine.
///
/// NOTE: the account tables, settings and event reads use SQLite's own API rather than POCO
/// Data: POCO reads TEXT through C strings and cannot tell a NULL of a LEFT JOIN from a value.
class Sql {
 public:
  Sql(sqlite3* db, std::string_view text) : db_(db) {
    int rc = sqlite3_prepare_v2(db, text.data(), static_cast<int>(text.size()), &stmt_, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = sqlite3_errmsg(db);
      sqlite3_finalize(stmt_);
      throw StoreError("could not prepare statement: " + message);
    }
  }
  ~Sql() { sqlite3_finalize(stmt_); }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  Sql& text(std::string_view value) {
    static const char kEmpty[] = "";
    sqlite3_bind_text64(stmt_, ++index_, value.empty() ? kEmpty : value.data(), value.size(),
                        SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
  }
  // A non-null pointer for an empty value: SQLite stores a NULL pointer as NULL.
  Sql& blob(std::string_view value) {
    static const char kEmpty[] = "";
    sqlite3_bind_blob64(stmt_, ++index_, value.empty() ? kEmpty : value.data(), value.size(),
                        SQLITE_TRANSIENT);
    return *this;
  }
  Sql& int64(int64_t value) {
    sqlite3_bind_int64(stmt_, ++index_, value);
    return *this;
  }

  /// True with a row to read, false when done. Throws Constraint or StoreError.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string message = sqlite3_errmsg(db_);
    if (isConstraint(rc)) throw Constraint(sqlite3_extended_errcode(db_), message);
    throw StoreError(message + " (" + sqlite3_errstr(rc) + ")");
  }

  /// Runs a write to its end; returns how many rows it changed.
  int run() {
    while (step()) {
    }
    return sqlite3_changes(db_);
  }

  int64_t int64At(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool nullAt(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string bytesAt(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return std::string();
    return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int index_ = 0;
};

/// The event columns every read takes, with the event's key row (empty when stored in the
/// clear); the body, when read, comes last.
constexpr const char* kEventSelect =
    "SELECT e.id, e.hook_id, e.received_at_ms, e.method, e.path_suffix, e.raw_query, e.headers, "
    "e.body_size, e.verdict, e.reason, e.reason_message, e.event_type, e.delivery_id, "
    "e.replay_of, COALESCE(k.key_id, ''), COALESCE(k.wrapped_key, x''), "
    "COALESCE(k.seal_version, 2), m.event_id IS NOT NULL";
constexpr const char* kEventFrom =
    " FROM events e LEFT JOIN event_keys k ON k.event_id = e.id"
    " LEFT JOIN modified_events m ON m.event_id = e.id";
constexpr int kEventBodyColumn = 18;

Verdict verdictFromDb(int64_t value, int64_t eventId) {
  switch (value) {
    case static_cast<int32_t>(Verdict::kValid):
    case static_cast<int32_t>(Verdict::kInvalid):
    case static_cast<int32_t>(Verdict::kUnsigned):
      return static_cast<Verdict>(value);
    default:
      throw StoreError("could not read event " + std::to_string(eventId) + ": unknown verdict " +
                       std::to_string(value));
  }
}

/// The plain columns of an event row; the sealed ones are opened by the caller.
EventRecord eventFromRow(const Sql& q) {
  EventRecord e;
  e.id = q.int64At(0);
  e.hookId = q.bytesAt(1);
  e.receivedAtMs = q.int64At(2);
  e.method = q.bytesAt(3);
  e.bodySize = q.int64At(7);
  e.verdict = verdictFromDb(q.int64At(8), e.id);
  e.reason = static_cast<int32_t>(q.int64At(9));
  e.replayOf = q.int64At(13);
  e.modified = q.int64At(17) != 0;
  return e;
}

/// The stored summary fields of an event row, read from `first` on in the order path_suffix,
/// reason_message, event_type, delivery_id.
SummaryFields summaryAt(const Sql& q, int first) {
  return SummaryFields{q.bytesAt(first), q.bytesAt(first + 1), q.bytesAt(first + 2),
                       q.bytesAt(first + 3)};
}

/// A sealed event's key and summary fields as stored.
struct SealedEventRow {
  int64_t id = 0;
  std::string hookId;
  WrappedKey wrapped;
  SummaryFields summary;
};

/// Events sealed before schema 3 with an id above `afterId`, oldest first, at most `limit`.
std::vector<SealedEventRow> clearSummaryRows(sqlite3* db, int64_t afterId, size_t limit) {
  Sql q(db,
        "SELECT k.event_id, e.hook_id, k.key_id, k.wrapped_key, e.path_suffix, "
        "e.reason_message, e.event_type, e.delivery_id FROM event_keys k "
        "JOIN events e ON e.id = k.event_id WHERE k.seal_version < 2 AND k.event_id > ? "
        "ORDER BY k.event_id LIMIT ?");
  q.int64(afterId).int64(static_cast<int64_t>(limit));
  std::vector<SealedEventRow> rows;
  while (q.step()) {
    rows.push_back(
        SealedEventRow{q.int64At(0), q.bytesAt(1), {q.bytesAt(2), q.bytesAt(3)}, summaryAt(q, 4)});
  }
  return rows;
}

/// Seals in place the summary fields of an event sealed before schema 3, under its own data
/// key. Throws crypto::IntegrityError when its wrap does not open.
void sealSummaryRow(sqlite3* db, const crypto::KeyRing& ring, const SealedEventRow& row) {
  const SummaryFields sealed =
      sealSummaryFields(ring, row.wrapped, row.hookId, row.id, row.summary);
  Sql event(db,
            "UPDATE events SET path_suffix = ?, reason_message = ?, event_type = ?, "
            "delivery_id = ? WHERE id = ?");
  event.blob(sealed.pathSuffix)
      .blob(sealed.reasonMessage)
      .blob(sealed.eventType)
      .blob(sealed.deliveryId)
      .int64(row.id)
      .run();
  Sql key(db, "UPDATE event_keys SET seal_version = ? WHERE event_id = ?");
  key.int64(kSealVersionSummary).int64(row.id).run();
}

/// The delivery columns every read takes, with what opening their sealed values needs of their
/// event: its hook and the wrap of its data key (empty for an event stored in the clear).
constexpr const char* kDeliverySelect =
    "SELECT d.event_id, d.relay_id, d.status, d.duration_ms, d.error, d.reported_at_ms, "
    "d.phase, d.timeout_ms, d.target_https, d.started_at_ms, d.response_excerpt, d.location, "
    "d.sealed, e.hook_id, COALESCE(k.key_id, ''), COALESCE(k.wrapped_key, x'') "
    "FROM deliveries d JOIN events e ON e.id = d.event_id "
    "LEFT JOIN event_keys k ON k.event_id = d.event_id";

/// A delivery row read with kDeliverySelect, its sealed values opened through `sealer`.
DeliveryRecord deliveryFromRow(const Sql& q, DeliverySealer& sealer) {
  DeliveryRecord d;
  d.eventId = q.int64At(0);
  d.relayId = q.bytesAt(1);
  d.status = static_cast<int32_t>(q.int64At(2));
  d.durationMs = q.int64At(3);
  d.error = q.bytesAt(4);
  d.reportedAtMs = q.int64At(5);
  d.phase = deliveryPhaseOf(q.int64At(6));
  d.timeoutMs = q.int64At(7);
  d.targetHttps = q.int64At(8) != 0;
  d.startedAtMs = q.int64At(9);
  const StoredDeliveryText stored{q.bytesAt(10), q.bytesAt(11), q.int64At(12) != 0};
  sealer.open(d, DeliveryEvent{d.eventId, q.bytesAt(13), {q.bytesAt(14), q.bytesAt(15)}}, stored);
  return d;
}

/// A delivery report on its way to the writer, its values sealed on the caller's thread.
struct PendingDelivery {
  DeliveryRecord record;
  StoredDeliveryText text;
  /// Its event had no data key when the values were sealed (stored in the clear, or not found):
  /// the writer seals them if a re-encryption sealed the event meanwhile.
  bool recheck = false;
};

/// Seals the values of every delivery of event `eventId` stored in the clear, under the data
/// key its contents were just sealed with (re-encryption of an event stored in the clear).
void sealClearDeliveries(sqlite3* db, std::string_view dataKey, const std::string& hookId,
                         int64_t eventId) {
  Sql q(db,
        "SELECT id, relay_id, reported_at_ms, response_excerpt, location FROM deliveries "
        "WHERE event_id = ? AND sealed = 0");
  q.int64(eventId);
  std::vector<std::pair<int64_t, DeliveryRecord>> rows;
  while (q.step()) {
    DeliveryRecord d;
    d.eventId = eventId;
    d.relayId = q.bytesAt(1);
    d.reportedAtMs = q.int64At(2);
    d.responseExcerpt = q.bytesAt(3);
    d.location = q.bytesAt(4);
    rows.emplace_back(q.int64At(0), std::move(d));
  }
  for (const auto& [id, d] : rows) {
    const StoredDeliveryText sealed = sealDeliveryText(dataKey, hookId, eventId, d);
    Sql update(db,
               "UPDATE deliveries SET response_excerpt = ?, location = ?, sealed = 1 WHERE id = ?");
    update.blob(sealed.responseExcerpt).blob(sealed.location).int64(id).run();
  }
}

constexpr const char* kHookColumns =
    "id, provider, secret, tolerance_s, options, token_hash, created_at_ms, account_id, name, "
    "signing_secret, previous_signing_secret, previous_valid_until_ms, standard_webhooks, "
    "custom_response, expires_at_ms, key_id";

/// A hook's secrets as stored: sealed under keyId, or in the clear when keyId is "".
struct StoredSecrets {
  std::string keyId;
  std::string secret, signingSecret, previousSigningSecret;
};

constexpr const char* kHooksTable = "hooks";

StoredSecrets sealSecrets(const crypto::KeyRing* ring, const HookRecord& hook) {
  if (ring == nullptr) {
    return StoredSecrets{"", hook.secret, hook.signingSecret, hook.previousSigningSecret};
  }
  StoredSecrets stored;
  WrappedKey secret = sealField(*ring, hook.secret, kHooksTable, hook.id, "secret");
  stored.keyId = secret.keyId;
  stored.secret = std::move(secret.sealed);
  stored.signingSecret =
      sealField(*ring, hook.signingSecret, kHooksTable, hook.id, "signing_secret").sealed;
  stored.previousSigningSecret =
      sealField(*ring, hook.previousSigningSecret, kHooksTable, hook.id, "previous_signing_secret")
          .sealed;
  return stored;
}

HookRecord openSecrets(const crypto::KeyRing* ring, HookRecord hook, const StoredSecrets& s) {
  if (s.keyId.empty()) {
    hook.secret = s.secret;
    hook.signingSecret = s.signingSecret;
    hook.previousSigningSecret = s.previousSigningSecret;
    return hook;
  }
  if (ring == nullptr) {
    throw StoreError("could not read hook " + hook.id + ": its secrets are under key " + s.keyId +
                     " and the store has no key ring");
  }
  try {
    hook.secret = openField(*ring, {s.keyId, s.secret}, kHooksTable, hook.id, "secret");
    hook.signingSecret =
        openField(*ring, {s.keyId, s.signingSecret}, kHooksTable, hook.id, "signing_secret");
    hook.previousSigningSecret = openField(*ring, {s.keyId, s.previousSigningSecret}, kHooksTable,
                                           hook.id, "previous_signing_secret");
  } catch (const crypto::IntegrityError& e) {
    throw StoreError(std::string("could not read hook: ") + e.what());
  }
  return hook;
}

/// A hook row read with kHookColumns, secrets opened.
HookRecord hookFromRow(const Sql& q, const crypto::KeyRing* ring) {
  HookRecord hook;
  hook.id = q.bytesAt(0);
  hook.provider = q.bytesAt(1);
  hook.toleranceS = q.int64At(3);
  hook.options = decodeOptions(q.bytesAt(4));
  hook.tokenHash = q.bytesAt(5);
  hook.createdAtMs = q.int64At(6);
  hook.accountId = q.bytesAt(7);
  hook.name = q.bytesAt(8);
  hook.previousValidUntilMs = q.int64At(11);
  hook.standardWebhooks = q.int64At(12) != 0;
  hook.customResponse = decodeCustomResponse(q.bytesAt(13));
  hook.expiresAtMs = q.int64At(14);
  StoredSecrets stored{q.bytesAt(15), q.bytesAt(2), q.bytesAt(9), q.bytesAt(10)};
  return openSecrets(ring, std::move(hook), stored);
}

constexpr const char* kAccountColumns = "id, name, plan, disabled, created_at_ms";

AccountRecord accountFromRow(const Sql& q) {
  AccountRecord a;
  a.id = q.bytesAt(0);
  a.name = q.bytesAt(1);
  const int64_t plan = q.int64At(2);
  if (plan != static_cast<int32_t>(Plan::kFree) && plan != static_cast<int32_t>(Plan::kPro)) {
    throw StoreError("could not read account " + a.id + ": unknown plan " + std::to_string(plan));
  }
  a.plan = static_cast<Plan>(plan);
  a.disabled = q.int64At(3) != 0;
  a.createdAtMs = q.int64At(4);
  return a;
}

constexpr const char* kMemberColumns = "id, account_id, name, owner, created_at_ms";

MemberRecord memberFromRow(const Sql& q) {
  MemberRecord m;
  m.id = q.bytesAt(0);
  m.accountId = q.bytesAt(1);
  m.name = q.bytesAt(2);
  m.owner = q.int64At(3) != 0;
  m.createdAtMs = q.int64At(4);
  return m;
}

constexpr const char* kTokenColumns =
    "id, member_id, account_id, name, hash, created_at_ms, last_used_at_ms, revoked_at_ms";

TokenRecord tokenFromRow(const Sql& q) {
  TokenRecord t;
  t.id = q.bytesAt(0);
  t.memberId = q.bytesAt(1);
  t.accountId = q.bytesAt(2);
  t.name = q.bytesAt(3);
  t.hash = q.bytesAt(4);
  t.createdAtMs = q.int64At(5);
  t.lastUsedAtMs = q.int64At(6);
  t.revokedAtMs = q.int64At(7);
  return t;
}

constexpr const char* kSettingsTable = "settings";

sqlite3* handleOf(Session& session) { return Poco::Data::SQLite::Utility::dbHandle(session); }

/// A statement prepared once on a raw connection and reused for every write.
///
/// NOTE: the writer's hot statements bypass POCO Data on purpose. POCO 1.11's
/// Statement::execute() compiles its SQL again on every run (sqlite3_prepare_v2 took 41% of
/// the writer's time in a profile of 64 concurrent appenders) and copies every value into a
/// BLOB; a statement kept here is parsed once and binds the job's own bytes without copying.
/// The connection itself is still opened, configured and migrated through POCO Data.
class RawStatement {
 public:
  RawStatement(sqlite3* db, const char* sql) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
      throw StoreError(std::string("could not prepare statement: ") + sqlite3_errmsg(db));
    }
  }
  ~RawStatement() { sqlite3_finalize(stmt_); }
  RawStatement(const RawStatement&) = delete;
  RawStatement& operator=(const RawStatement&) = delete;

  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Bound values stay owned by the caller (SQLITE_STATIC): they must outlive the step, and
// stepWrite() clears every binding before it returns.
void bindText(sqlite3_stmt* st, int index, std::string_view text) {
  static const char kEmpty[] = "";
  sqlite3_bind_text64(st, index, text.empty() ? kEmpty : text.data(), text.size(), SQLITE_STATIC,
                      SQLITE_UTF8);
}

// A non-null pointer for empty values: SQLite stores a NULL pointer as NULL, and an empty
// value is still a value (the columns are NOT NULL).
void bindBlob(sqlite3_stmt* st, int index, std::string_view bytes) {
  static const char kEmpty[] = "";
  sqlite3_bind_blob64(st, index, bytes.empty() ? kEmpty : bytes.data(), bytes.size(),
                      SQLITE_STATIC);
}

int64_t monotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t monotonicNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

class SqliteStore::Impl {
 public:
  Impl(std::string path, SqliteOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}

  ~Impl() { stop(); }

  /// Opens the writer and checkpoint connections, migrates, prepares the writer's statements
  /// and starts the writer, sync and checkpoint threads.
  void start() {
    try {
      writer_ = openSession(path_, options_.busyTimeoutMs);

      // WAL lets readers go on while the writer commits; it is a property of the file.
      std::string mode;
      *writer_ << "PRAGMA journal_mode = WAL", into(mode), now;
      if (mode != "wal") {
        throw StoreError("could not switch store to WAL mode path=" + path_ + " mode=" + mode);
      }

      // What the writer replaces or deletes is overwritten with zeros, not left in free space:
      // sealing values stored in the clear (a migration, a re-encryption) must not leave the
      // clear bytes behind in the file.
      *writer_ << "PRAGMA secure_delete = ON", now;

      migrate();

      // NORMAL: in the overlapped mode the sync thread syncs the WAL before any commit is
      // acknowledged, so the commit itself need not wait for the disk.
      if (options_.sync == SqliteOptions::Sync::kOverlapped) {
        *writer_ << "PRAGMA synchronous = NORMAL", now;
      }
      *writer_ << "PRAGMA journal_size_limit = " + std::to_string(options_.walSizeLimitBytes), now;
      db_ = Poco::Data::SQLite::Utility::dbHandle(*writer_);
      prepareWriterStatements();

      // The WAL hook replaces SQLite's auto-checkpoint, which would copy pages inside the
      // writer's commits; checkpoints run on a connection of their own instead.
      sqlite3_wal_hook(db_, &Impl::onWalCommit, this);
      checkpointer_ = openSession(path_, options_.busyTimeoutMs);
      checkpointDb_ = Poco::Data::SQLite::Utility::dbHandle(*checkpointer_);

      openWal();
      durableId_ = maxEventId();
      if (!options_.keys) refuseEncryptedRecords();
    } catch (const Poco::Exception& e) {
      throw StoreError("could not open store path=" + path_ + ": " + e.displayText());
    }

    syncThread_ = std::thread([this] { syncLoop(); });
    checkpointThread_ = std::thread([this] { checkpointLoop(); });
    thread_ = std::thread([this] { writerLoop(); });
  }

  /// Drains the queue: the writer leaves its loop once nothing is queued, the sync thread once
  /// everything committed is acknowledged.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    queueCv_.notify_all();
    if (thread_.joinable()) thread_.join();

    {
      std::lock_guard<std::mutex> lock(syncMutex_);
      syncStopping_ = true;
    }
    syncCv_.notify_all();
    if (syncThread_.joinable()) syncThread_.join();

    {
      std::lock_guard<std::mutex> lock(checkpointMutex_);
      checkpointStopping_ = true;
    }
    checkpointCv_.notify_all();
    if (checkpointThread_.joinable()) checkpointThread_.join();

    // Statements go before their connection, which refuses to close while any is open.
    dropWriterStatements();
    if (walFd_ >= 0) ::close(walFd_);
    walFd_ = -1;
  }

  // ---- writes: queued for the writer thread ----

  struct Job {
    enum class Kind { kEvent, kDeliveries, kCall };

    Kind kind = Kind::kEvent;
    EventRecord event;  ///< in the clear, for the commit listener
    /// The event's contents sealed on the caller's thread; absent in a store without keys.
    std::optional<SealedContents> sealed;
    std::vector<PendingDelivery> deliveries;
    /// kCall: runs on the writer inside the open transaction, within a savepoint of its own.
    /// Throwing Refused, Constraint, ConflictError or LimitError fails this job alone (its
    /// changes are undone); anything else fails the whole batch.
    std::function<void(sqlite3* db)> call;
    size_t bytes = 0;  ///< payload counted against maxBatchBytes

    // Filled by the writer.
    int64_t id = 0;
    std::string error;           ///< this write alone failed (the rest of its batch is fine)
    std::exception_ptr failure;  ///< like error, with the exception the caller gets
    std::promise<int64_t> done;

    ~Job() {
      if (sealed) OPENSSL_cleanse(sealed->dataKey.data(), sealed->dataKey.size());
    }
  };

  /// Runs `call` on the writer in the next transaction and returns once it is durable.
  void runOnWriter(std::function<void(sqlite3* db)> call) {
    auto job = std::make_unique<Job>();
    job->kind = Job::Kind::kCall;
    job->call = std::move(call);
    submit(std::move(job));
  }

  /// The key ring new records are sealed with, null for a store without keys.
  std::shared_ptr<const crypto::KeyRing> ring() const {
    return options_.keys ? options_.keys->ring() : nullptr;
  }

  /// Logs a failed integrity check once per event, so that a list polled every second does
  /// not repeat it. The set is bounded; past it, repeats are logged again.
  void reportIntegrity(const EventRecord& event, const std::string& keyId) {
    {
      std::lock_guard<std::mutex> lock(integrityMutex_);
      if (integrityReported_.count(event.id) != 0) return;
      if (integrityReported_.size() < kMaxIntegrityReports) integrityReported_.insert(event.id);
    }
    logger().error("could not open event event_id=%?d key_id=%s hook=%s error=\"%s\"", event.id,
                   keyId.empty() ? std::string("(none)") : keyId, event.hookId,
                   event.integrityError);
  }

  /// Opens the sealed values of an event row read with kEventSelect.
  void openEventRow(const Sql& q, EventRecord& event, bool withBody, const crypto::KeyRing* ring) {
    StoredContents stored;
    stored.wrapped = WrappedKey{q.bytesAt(14), q.bytesAt(15)};
    stored.sealVersion = q.int64At(16);
    stored.query = q.bytesAt(5);
    stored.headers = q.bytesAt(6);
    const std::string body = withBody ? q.bytesAt(kEventBodyColumn) : std::string();
    if (withBody) stored.body = &body;
    stored.summary = SummaryFields{q.bytesAt(4), q.bytesAt(10), q.bytesAt(11), q.bytesAt(12)};
    static const crypto::KeyRing kNoKeys;
    openContents(ring != nullptr ? *ring : kNoKeys, stored, event);
    if (!event.integrityError.empty()) reportIntegrity(event, stored.wrapped.keyId);
  }

  int64_t submit(std::unique_ptr<Job> job) {
    std::future<int64_t> result = job->done.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) throw StoreError("could not store: the store is closing");
      queue_.push_back(std::move(job));
    }
    queueCv_.notify_one();

    // get() rethrows the StoreError set when the write was not committed and synced.
    return result.get();
  }

  void setCommitListener(std::function<void(const EventRecord&)> listener) {
    std::lock_guard<std::mutex> lock(listenerMutex_);
    listener_ = std::move(listener);
  }

  WriterStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  std::optional<HookRecord> cachedHook(const std::string& hookId) {
    const int64_t now = monotonicMs();
    std::shared_lock<std::shared_mutex> lock(hooksMutex_);
    auto it = hooks_.find(hookId);
    if (it == hooks_.end() || now - it->second.cachedAtMs >= kHookCacheMs) return std::nullopt;
    ++hookCacheHits_;
    return it->second.hook;
  }

  /// Which invalidations a read started after; a read that overlapped one does not cache.
  uint64_t hookGeneration() const { return hookGeneration_.load(); }

  void cacheHook(const HookRecord& hook, uint64_t generation) {
    const int64_t now = monotonicMs();
    std::unique_lock<std::shared_mutex> lock(hooksMutex_);
    if (hookGeneration_.load() != generation) return;

    // Expired entries go first, so that a full cache makes room for hooks in use.
    if (hooks_.size() >= options_.maxCachedHooks) {
      for (auto it = hooks_.begin(); it != hooks_.end();) {
        it = now - it->second.cachedAtMs >= kHookCacheMs ? hooks_.erase(it) : std::next(it);
      }
    }
    if (hooks_.size() >= options_.maxCachedHooks && hooks_.count(hook.id) == 0) return;
    hooks_[hook.id] = CachedHook{hook, now};
  }

  void forgetHooks(const std::vector<std::string>& hookIds) {
    std::unique_lock<std::shared_mutex> lock(hooksMutex_);
    ++hookGeneration_;
    for (const auto& id : hookIds) hooks_.erase(id);
  }

  ReadStats readStats() const {
    std::shared_lock<std::shared_mutex> lock(hooksMutex_);
    ReadStats stats;
    stats.hookCacheHits = hookCacheHits_.load();
    stats.cachedHooks = hooks_.size();
    return stats;
  }

  /// The newest event id that is on disk; reads show nothing newer.
  int64_t durableId() const { return durableId_.load(); }

  // ---- reads: each on a pooled session of its own ----

  /// A session borrowed from the pool; it goes back when the read succeeded and is dropped
  /// when it failed, since a failed connection may be in any state.
  class Lease {
   public:
    explicit Lease(Impl& owner) : owner_(owner), session_(owner.acquireReader()) {}
    ~Lease() {
      if (ok_) owner_.releaseReader(std::move(session_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    Session& operator*() { return *session_; }
    void succeeded() { ok_ = true; }

   private:
    Impl& owner_;
    std::unique_ptr<Session> session_;
    bool ok_ = false;
  };

  template <typename Fn>
  auto read(const char* what, Fn fn) {
    try {
      Lease lease(*this);
      auto result = fn(*lease);
      lease.succeeded();
      return result;
    } catch (const Poco::Exception& e) {
      throw StoreError(std::string("could not read ") + what + ": " + e.displayText());
    }
  }

  /// The reports with their values sealed under their events' data keys, on the caller's
  /// thread: one read of the events' keys per kDeliveryBatchIds events and one unwrap per event,
  /// however many reports name it.
  std::vector<PendingDelivery> sealDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    std::vector<PendingDelivery> pending;
    pending.reserve(deliveries.size());
    const auto ring = this->ring();
    if (!ring) {
      for (const auto& d : deliveries) {
        pending.push_back({d, {d.responseExcerpt, d.location, false}, false});
      }
      return pending;
    }

    const std::vector<int64_t> ids = eventIdsOf(deliveries);
    std::unordered_map<int64_t, DeliveryEvent> events;
    for (size_t from = 0; from < ids.size(); from += kDeliveryBatchIds) {
      const size_t count = std::min(kDeliveryBatchIds, ids.size() - from);
      read("events of deliveries", [&](Session& s) {
        std::string sql =
            "SELECT e.id, e.hook_id, COALESCE(k.key_id, ''), COALESCE(k.wrapped_key, x'') "
            "FROM events e LEFT JOIN event_keys k ON k.event_id = e.id WHERE e.id IN (?";
        for (size_t i = 1; i < count; ++i) sql += ",?";
        sql += ")";
        Sql q(handleOf(s), sql);
        for (size_t i = 0; i < count; ++i) q.int64(ids[from + i]);
        while (q.step()) {
          events[q.int64At(0)] =
              DeliveryEvent{q.int64At(0), q.bytesAt(1), {q.bytesAt(2), q.bytesAt(3)}};
        }
        return 0;
      });
    }

    DeliverySealer sealer(ring.get());
    for (const auto& d : deliveries) {
      const auto found = events.find(d.eventId);
      if (found == events.end() || found->second.wrapped.keyId.empty()) {
        pending.push_back({d, {d.responseExcerpt, d.location, false}, true});
        continue;
      }
      pending.push_back({d, sealer.seal(d, found->second), false});
    }
    return pending;
  }

 private:
  /// Transactions committed by the writer, waiting for the sync that makes them durable.
  struct Committed {
    std::vector<std::unique_ptr<Job>> jobs;
    size_t bytes = 0;
    int64_t lastEventId = 0;  ///< 0 when the batch stored no event
  };

  std::unique_ptr<Session> acquireReader() {
    {
      std::lock_guard<std::mutex> lock(readersMutex_);
      if (!idleReaders_.empty()) {
        auto session = std::move(idleReaders_.back());
        idleReaders_.pop_back();
        return session;
      }
    }
    return openSession(path_, options_.busyTimeoutMs);
  }

  void releaseReader(std::unique_ptr<Session> session) {
    std::lock_guard<std::mutex> lock(readersMutex_);
    if (idleReaders_.size() < options_.maxIdleReadSessions) {
      idleReaders_.push_back(std::move(session));
    }
  }

  void migrate() {
    Session& s = *writer_;

    // IMMEDIATE takes the write lock first, so two processes opening a new file at once do
    // not both apply the same step.
    s << "BEGIN IMMEDIATE", now;
    try {
      s << "CREATE TABLE IF NOT EXISTS schema_migrations ("
           " version INTEGER PRIMARY KEY NOT NULL,"
           " description TEXT NOT NULL,"
           " applied_at_ms INTEGER NOT NULL)",
          now;

      Poco::Int64 current = 0;
      s << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", into(current), now;
      if (current > kSchemaVersion) {
        throw StoreError("could not open store path=" + path_ + ": database schema version " +
                         std::to_string(current) + " is newer than this build supports (" +
                         std::to_string(kSchemaVersion) + "); use a newer anonymily-edge");
      }

      for (const auto& migration : migrations()) {
        if (migration.version <= current) continue;
        for (const char* statement : migration.statements) s << statement, now;
        if (migration.rowWork == RowWork::kSealSummaryFields) sealStoredSummaries();
        Poco::Int64 version = migration.version;
        std::string description = migration.description;
        Poco::Int64 appliedAt = nowMs();
        s << "INSERT INTO schema_migrations (version, description, applied_at_ms) "
             "VALUES (?, ?, ?)",
            use(version), use(description), use(appliedAt), now;
        logger().information("applied schema migration path=%s version=%?d", path_,
                             migration.version);
      }

      s << "COMMIT", now;
    } catch (...) {
      rollbackQuietly();
      throw;
    }
  }

  /// Schema 3's row work, inside the migration's transaction: seals the summary fields of the
  /// events sealed before it, each under its own data key. An event whose wrap does not open
  /// (its key is not in the ring, or it was changed) keeps them in the clear, since it cannot
  /// be read either way; re-encryption tries it again. Without a key ring nothing can be sealed,
  /// and the store would be refused right after: it is refused here, before any change.
  ///
  /// Known limit: every sealed event row is rewritten in this one transaction before the edge
  /// serves (on MySQL, one UPDATE each, also before), so the first start after the upgrade takes
  /// longer the larger the database; sealing in batches once the edge runs, as re-encryption
  /// does, would not hold it up.
  void sealStoredSummaries() {
    sqlite3* db = Poco::Data::SQLite::Utility::dbHandle(*writer_);
    const auto ring = this->ring();
    constexpr size_t kPage = 1000;
    int64_t after = 0;
    SummarySealing sealing;
    for (;;) {
      // A page read, then written: a table changed under a running select may be walked twice.
      const std::vector<SealedEventRow> rows = clearSummaryRows(db, after, kPage);
      if (rows.empty()) break;
      if (!ring) {
        throw StoreError("could not open store path=" + path_ +
                         ": it holds encrypted records and no key ring was given");
      }
      for (const auto& row : rows) {
        after = row.id;
        sealing.seal(row.id, [&] { sealSummaryRow(db, *ring, row); });
      }
    }
    sealing.report("path=" + path_);
  }

  int64_t maxEventId() {
    Poco::Int64 id = 0;
    *writer_ << "SELECT COALESCE(MAX(id), 0) FROM events", into(id), now;
    return id;
  }

  /// A store without keys cannot read sealed records, and would store new ones in the clear
  /// beside them: it is refused rather than left to fail record by record.
  void refuseEncryptedRecords() {
    Poco::Int64 sealed = 0;
    *writer_ << "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM event_keys LIMIT 1))"
                " + (SELECT COUNT(*) FROM (SELECT 1 FROM hooks WHERE key_id <> '' LIMIT 1))"
                " + (SELECT COUNT(*) FROM (SELECT 1 FROM settings WHERE key_id <> '' LIMIT 1))",
        into(sealed), now;
    if (sealed > 0) {
      throw StoreError("could not open store path=" + path_ +
                       ": it holds encrypted records and no key ring was given");
    }
  }

  /// Opens the WAL file for the sync thread and syncs it once, so that whatever an earlier
  /// process left there unsynced is durable before reads may show it.
  void openWal() {
    walPath_ = path_ + "-wal";
    walFd_ = ::open(walPath_.c_str(), O_RDWR | O_CLOEXEC);
    if (walFd_ < 0) {
      throw StoreError("could not open store path=" + path_ + ": could not open " + walPath_ +
                       ": " + std::strerror(errno));
    }
    std::string failure = syncWal();
    if (!failure.empty()) throw StoreError("could not open store path=" + path_ + ": " + failure);
  }

  /// fdatasyncs the WAL. Returns "" on success, else what went wrong.
  std::string syncWal() {
    // The writer's connection keeps the WAL open, so SQLite never replaces the file while
    // the store runs; a file that is not ours any more would make the sync prove nothing.
    struct stat byPath {};
    struct stat byFd {};
    if (::stat(walPath_.c_str(), &byPath) != 0 || ::fstat(walFd_, &byFd) != 0 ||
        byPath.st_ino != byFd.st_ino || byPath.st_dev != byFd.st_dev) {
      return "the WAL file " + walPath_ + " was replaced or removed";
    }
    int error = 0;
    if (options_.syncWalForTest) {
      error = options_.syncWalForTest(walFd_);
    } else {
      while (::fdatasync(walFd_) != 0) {
        if (errno == EINTR) continue;
        error = errno;
        break;
      }
    }
    if (error != 0) return "could not sync " + walPath_ + ": " + std::strerror(error);
    return std::string();
  }

  void dropWriterStatements() {
    begin_.reset();
    commit_.reset();
    insertEvent_.reset();
    insertEventKey_.reset();
    lastEventId_.reset();
    insertDelivery_.reset();
    insertModified_.reset();
    eventKeyOf_.reset();
    callSavepoint_.reset();
    releaseCall_.reset();
    rollbackCall_.reset();
    savepoint_.reset();
    releaseSavepoint_.reset();
    rollbackSavepoint_.reset();
  }

  void prepareWriterStatements() {
    begin_ = std::make_unique<RawStatement>(db_, "BEGIN IMMEDIATE");
    commit_ = std::make_unique<RawStatement>(db_, "COMMIT");
    insertEvent_ = std::make_unique<RawStatement>(
        db_,
        "INSERT INTO events (hook_id, received_at_ms, method, path_suffix, raw_query, headers, "
        "body_size, verdict, reason, reason_message, event_type, delivery_id, replay_of, body, "
        "id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
    insertEventKey_ = std::make_unique<RawStatement>(
        db_,
        "INSERT INTO event_keys (event_id, key_id, wrapped_key, seal_version) "
        "VALUES (?1, ?2, ?3, ?4)");

    // The highest id ever handed out: AUTOINCREMENT's record keeps ids of deleted events
    // from coming back, MAX(id) covers a sequence row that was never written.
    lastEventId_ = std::make_unique<RawStatement>(
        db_,
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
        "COALESCE((SELECT MAX(id) FROM events), 0))");
    callSavepoint_ = std::make_unique<RawStatement>(db_, "SAVEPOINT call");
    releaseCall_ = std::make_unique<RawStatement>(db_, "RELEASE call");
    rollbackCall_ = std::make_unique<RawStatement>(db_, "ROLLBACK TO call");
    insertDelivery_ = std::make_unique<RawStatement>(
        db_,
        "INSERT INTO deliveries (event_id, relay_id, status, duration_ms, error, "
        "reported_at_ms, phase, timeout_ms, target_https, started_at_ms, response_excerpt, "
        "location, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    insertModified_ =
        std::make_unique<RawStatement>(db_, "INSERT INTO modified_events (event_id) VALUES (?1)");
    eventKeyOf_ =
        std::make_unique<RawStatement>(db_,
                                       "SELECT e.hook_id, k.key_id, k.wrapped_key FROM events e "
                                       "JOIN event_keys k ON k.event_id = e.id WHERE e.id = ?1");
    savepoint_ = std::make_unique<RawStatement>(db_, "SAVEPOINT deliveries");
    releaseSavepoint_ = std::make_unique<RawStatement>(db_, "RELEASE deliveries");
    rollbackSavepoint_ = std::make_unique<RawStatement>(db_, "ROLLBACK TO deliveries");
  }

  /// Runs a prepared write once and leaves it ready for the next run. Returns SQLite's result
  /// code; a constraint violation comes back as such, anything else but success throws.
  int stepWrite(const RawStatement& statement) {
    sqlite3_stmt* st = statement.get();
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return SQLITE_OK;
    if (isConstraint(rc)) return rc;
    throw StoreError(std::string(sqlite3_errmsg(db_)) + " (" + sqlite3_errstr(rc) + ")");
  }

  void stepOrThrow(const RawStatement& statement) {
    if (stepWrite(statement) != SQLITE_OK) {
      throw StoreError(std::string(sqlite3_errmsg(db_)) + " in " + sqlite3_sql(statement.get()));
    }
  }

  static int onWalCommit(void* self, sqlite3*, const char*, int frames) {
    static_cast<Impl*>(self)->walFrames_ = frames;
    return SQLITE_OK;
  }

  /// Moves queued writes into the batch within its limits; the first write always goes,
  /// however big. Returns whether it took any.
  bool takeLocked(std::vector<std::unique_ptr<Job>>& batch, size_t& bytes) {
    bool took = false;
    while (!queue_.empty() && batch.size() < options_.maxBatchJobs) {
      size_t next = queue_.front()->bytes;
      if (!batch.empty() && bytes + next > options_.maxBatchBytes) break;
      bytes += next;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      took = true;
    }
    return took;
  }

  void writerLoop() {
    for (;;) {
      std::vector<std::unique_ptr<Job>> batch;
      size_t bytes = 0;
      std::string fatal;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        queueCv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        takeLocked(batch, bytes);

        // A store whose WAL could not be synced no longer knows what is on disk.
        fatal = poisoned_;
      }
      if (fatal.empty()) fatal = writeBatch(batch, bytes);
      finishBatch(std::move(batch), bytes, fatal);
    }
  }

  /// Writes the batch in one transaction, so that one sync covers all of it. Returns "" when
  /// it committed, else why nothing of it was.
  std::string writeBatch(std::vector<std::unique_ptr<Job>>& batch, size_t& bytes) {
    const bool overlapped = options_.sync == SqliteOptions::Sync::kOverlapped;
    uint64_t waitedNanos = 0;
    const uint64_t started = monotonicNanos();
    try {
      stepOrThrow(*begin_);
      batchLastEventId_ = -1;
      size_t written = 0;
      for (;;) {
        for (; written < batch.size(); ++written) runJob(*batch[written]);
        if (!overlapped) break;

        // While the previous commit is still being synced, the open transaction takes what
        // arrives: its commit could not be acknowledged any sooner, and one commit for many
        // writes costs less than many small ones.
        const uint64_t waitFrom = monotonicNanos();
        std::unique_lock<std::mutex> lock(mutex_);
        queueCv_.wait(lock, [this] { return stopping_ || !syncBusy_ || !queue_.empty(); });
        waitedNanos += monotonicNanos() - waitFrom;
        if (stopping_ || !syncBusy_ || !takeLocked(batch, bytes)) break;
      }
      const uint64_t committing = monotonicNanos();
      stepOrThrow(*commit_);
      const uint64_t committed = monotonicNanos();

      std::lock_guard<std::mutex> lock(mutex_);
      stats_.writeNanos += committing - started - waitedNanos;
      stats_.commitNanos += committed - committing;
    } catch (const std::exception& e) {
      return e.what();
    }
    return std::string();
  }

  void finishBatch(std::vector<std::unique_ptr<Job>> batch, size_t bytes,
                   const std::string& fatal) {
    // A failed write or commit undoes the whole batch: nobody may hear of an id that is not
    // on disk.
    if (!fatal.empty()) {
      rollbackQuietly();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.failedBatches;
      }
      logger().error("could not commit writes count=%z error=\"%s\"", batch.size(), fatal);
      failJobs(batch, "could not store: " + fatal);
      return;
    }

    checkpointAfterCommit();

    // The sync thread acknowledges in commit order while the writer builds the next batch.
    Committed committed;
    committed.bytes = bytes;
    for (const auto& job : batch) {
      if (job->kind == Job::Kind::kEvent && job->error.empty()) committed.lastEventId = job->id;
    }
    committed.jobs = std::move(batch);
    {
      std::lock_guard<std::mutex> lock(syncMutex_);
      syncQueue_.push_back(std::move(committed));
    }
    syncCv_.notify_one();
  }

  static void failJobs(std::vector<std::unique_ptr<Job>>& jobs, const std::string& message) {
    for (auto& job : jobs) job->done.set_exception(std::make_exception_ptr(StoreError(message)));
  }

  /// Keeps the WAL short without copying pages inside the writer's commits: a background
  /// connection copies the bulk; the writer copies only what is left once that round is
  /// done (so that the WAL can start over), or everything when the WAL reached its bound.
  void checkpointAfterCommit() {
    const int frames = walFrames_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.largestWalFrames = std::max(stats_.largestWalFrames, frames);
    }

    const bool roundDone = backgroundRoundDone_.exchange(false);
    if (frames >= options_.maxWalFrames || (roundDone && frames >= options_.checkpointFrames)) {
      const uint64_t started = monotonicNanos();
      int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.checkpointNanos += monotonicNanos() - started;
        if (rc == SQLITE_OK) ++stats_.writerCheckpoints;
      }
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        logger().warning("could not checkpoint store path=%s error=\"%s\"", path_,
                         std::string(sqlite3_errmsg(db_)));
      }
      return;
    }
    if (frames < options_.checkpointFrames) return;

    {
      std::lock_guard<std::mutex> lock(checkpointMutex_);
      if (checkpointRunning_ || checkpointWanted_) return;
      checkpointWanted_ = true;
    }
    checkpointCv_.notify_one();
  }

  void checkpointLoop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(checkpointMutex_);
        checkpointCv_.wait(lock, [this] { return checkpointStopping_ || checkpointWanted_; });
        if (checkpointStopping_) return;
        checkpointWanted_ = false;
        checkpointRunning_ = true;
      }

      // PASSIVE never waits for the writer or readers; it copies what no reader still needs.
      int rc = sqlite3_wal_checkpoint_v2(checkpointDb_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                         nullptr);
      if (rc == SQLITE_OK) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.backgroundCheckpoints;
      } else if (rc != SQLITE_BUSY) {
        logger().warning("could not checkpoint store path=%s error=\"%s\"", path_,
                         std::string(sqlite3_errmsg(checkpointDb_)));
      }

      {
        std::lock_guard<std::mutex> lock(checkpointMutex_);
        checkpointRunning_ = false;
      }
      backgroundRoundDone_ = true;
    }
  }

  void syncLoop() {
    for (;;) {
      std::deque<Committed> round;
      {
        std::unique_lock<std::mutex> lock(syncMutex_);
        syncCv_.wait(lock, [this] { return syncStopping_ || !syncQueue_.empty(); });
        if (syncQueue_.empty()) return;
        round.swap(syncQueue_);
      }

      // One sync covers every commit taken: each was written to the WAL before it began.
      std::string failure;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        failure = poisoned_;
        syncBusy_ = true;
      }
      const uint64_t syncing = monotonicNanos();
      if (failure.empty() && options_.sync == SqliteOptions::Sync::kOverlapped) {
        failure = syncWal();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.syncNanos += monotonicNanos() - syncing;
        syncBusy_ = false;
        if (options_.sync == SqliteOptions::Sync::kOverlapped && poisoned_.empty()) {
          if (failure.empty()) {
            ++stats_.syncs;
          } else {
            ++stats_.failedSyncs;
            poisoned_ = failure;
          }
        }
      }
      queueCv_.notify_one();
      if (!failure.empty()) {
        logger().error("could not make writes durable count=%z error=\"%s\"", round.size(),
                       failure);
        for (auto& committed : round) {
          failJobs(committed.jobs, "could not store: " + failure + "; reopen the store");
        }
        continue;
      }

      const uint64_t acknowledging = monotonicNanos();
      for (auto& committed : round) acknowledge(committed);
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.acknowledgeNanos += monotonicNanos() - acknowledging;
    }
  }

  void acknowledge(Committed& committed) {
    uint64_t events = 0;
    for (const auto& job : committed.jobs) {
      if (job->kind == Job::Kind::kEvent && job->error.empty()) ++events;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.commits;
      stats_.eventsStored += events;
      stats_.largestBatchJobs = std::max(stats_.largestBatchJobs, committed.jobs.size());
      stats_.largestBatchBytes = std::max(stats_.largestBatchBytes, committed.bytes);
    }

    // Reads may show the batch from now on; then the listener hears of it, before the waiters
    // return, so that whoever hears of an id from appendEvent can rely on both.
    if (committed.lastEventId > 0) durableId_ = committed.lastEventId;
    notifyListener(committed.jobs);

    for (auto& job : committed.jobs) {
      if (job->failure) {
        job->done.set_exception(job->failure);
        continue;
      }
      if (!job->error.empty()) {
        job->done.set_exception(std::make_exception_ptr(StoreError(job->error)));
        continue;
      }
      job->done.set_value(job->id);
    }
  }

  void notifyListener(const std::vector<std::unique_ptr<Job>>& batch) {
    std::lock_guard<std::mutex> lock(listenerMutex_);
    if (!listener_) return;
    for (const auto& job : batch) {
      if (job->kind != Job::Kind::kEvent || !job->error.empty()) continue;
      try {
        listener_(job->event);
      } catch (const std::exception& e) {
        logger().error("commit listener failed event_id=%?d error=\"%s\"", job->event.id,
                       std::string(e.what()));
      } catch (...) {
        logger().error("commit listener failed event_id=%?d", job->event.id);
      }
    }
  }

  /// Runs one write inside the open transaction. A constraint violation (duplicate hook id,
  /// unknown hook or event) fails only this write: SQLite undoes just the failed statement and
  /// the transaction goes on. Anything else throws and fails the batch.
  void runJob(Job& job) {
    std::string violation;
    switch (job.kind) {
      case Job::Kind::kEvent:
        violation = writeEvent(job);
        break;
      case Job::Kind::kDeliveries:
        violation = writeDeliveries(job.deliveries);
        break;
      case Job::Kind::kCall:
        runCall(job);
        return;
    }
    if (!violation.empty()) job.error = describeConstraint(job) + ": " + violation;
  }

  void runCall(Job& job) {
    stepOrThrow(*callSavepoint_);
    try {
      job.call(db_);
      stepOrThrow(*releaseCall_);
      return;
    } catch (const Constraint&) {
      job.failure = std::current_exception();
    } catch (const Refused&) {
      job.failure = std::current_exception();
    } catch (const ConflictError&) {
      job.failure = std::current_exception();
    } catch (const LimitError&) {
      job.failure = std::current_exception();
    }
    stepOrThrow(*rollbackCall_);
    stepOrThrow(*releaseCall_);
  }

  static std::string describeConstraint(const Job& job) {
    switch (job.kind) {
      case Job::Kind::kEvent:
        return "could not store event hook=" + job.event.hookId;
      case Job::Kind::kDeliveries:
        return "could not store delivery reports";
      case Job::Kind::kCall:
        return "could not store";
    }
    return "could not store";
  }

  /// The write functions return "" or, when a constraint refused the write, SQLite's message.
  std::string writeEvent(Job& job) {
    EventRecord& e = job.event;
    e.bodySize = static_cast<int64_t>(e.body.size());

    // The writer picks the id itself so that the data key's wrap can name it before the
    // insert. It is one past the highest id ever used, read once per transaction, which holds
    // the write lock: no other connection can take an id in between.
    if (batchLastEventId_ < 0) {
      sqlite3_stmt* last = lastEventId_->get();
      if (sqlite3_step(last) != SQLITE_ROW) {
        std::string message = sqlite3_errmsg(db_);
        sqlite3_reset(last);
        throw StoreError("could not read the last event id: " + message);
      }
      batchLastEventId_ = sqlite3_column_int64(last, 0);
      sqlite3_reset(last);
    }
    const int64_t id = batchLastEventId_ + 1;

    std::string_view query = e.rawQuery;
    std::string_view headers;
    std::string_view body = e.body;
    std::string_view pathSuffix = e.pathSuffix;
    std::string_view reasonMessage = e.reasonMessage;
    std::string_view eventType = e.eventType;
    std::string_view deliveryId = e.deliveryId;
    if (job.sealed) {
      query = job.sealed->query;
      headers = job.sealed->headers;
      body = job.sealed->body;
      pathSuffix = job.sealed->summary.pathSuffix;
      reasonMessage = job.sealed->summary.reasonMessage;
      eventType = job.sealed->summary.eventType;
      deliveryId = job.sealed->summary.deliveryId;
    } else {
      headersBuffer_ = encodeHeaders(e.headers);
      headers = headersBuffer_;
    }

    sqlite3_stmt* st = insertEvent_->get();
    bindText(st, 1, e.hookId);
    sqlite3_bind_int64(st, 2, e.receivedAtMs);
    bindText(st, 3, e.method);
    bindBlob(st, 4, pathSuffix);
    bindBlob(st, 5, query);
    bindBlob(st, 6, headers);
    sqlite3_bind_int64(st, 7, e.bodySize);
    sqlite3_bind_int(st, 8, static_cast<int32_t>(e.verdict));
    sqlite3_bind_int(st, 9, e.reason);
    bindBlob(st, 10, reasonMessage);
    bindBlob(st, 11, eventType);
    bindBlob(st, 12, deliveryId);
    sqlite3_bind_int64(st, 13, e.replayOf);
    bindBlob(st, 14, body);
    sqlite3_bind_int64(st, 15, id);
    if (stepWrite(*insertEvent_) != SQLITE_OK) return sqlite3_errmsg(db_);

    if (job.sealed) {
      // The ring of this moment: a rotation that just made another key active applies from
      // the next event on.
      auto ring = this->ring();
      const WrappedKey wrapped = wrapDataKey(*ring, job.sealed->dataKey, e.hookId, id);
      sqlite3_stmt* k = insertEventKey_->get();
      sqlite3_bind_int64(k, 1, id);
      bindText(k, 2, wrapped.keyId);
      bindBlob(k, 3, wrapped.sealed);
      sqlite3_bind_int64(k, 4, kSealVersionSummary);
      stepOrThrow(*insertEventKey_);
    }
    if (e.modified) {
      sqlite3_bind_int64(insertModified_->get(), 1, id);
      stepOrThrow(*insertModified_);
    }

    batchLastEventId_ = id;
    job.id = id;
    e.id = id;
    return std::string();
  }

  /// All reports of one request or none: a savepoint undoes the ones already written when a
  /// later one fails.
  std::string writeDeliveries(std::vector<PendingDelivery>& deliveries) {
    stepOrThrow(*savepoint_);
    std::unique_ptr<DeliverySealer> lateSealer;
    std::shared_ptr<const crypto::KeyRing> ring;
    for (auto& pending : deliveries) {
      if (pending.recheck) sealIfEventSealed(pending, lateSealer, ring);
      const DeliveryRecord& d = pending.record;
      sqlite3_stmt* st = insertDelivery_->get();
      sqlite3_bind_int64(st, 1, d.eventId);
      bindBlob(st, 2, d.relayId);
      sqlite3_bind_int(st, 3, d.status);
      sqlite3_bind_int64(st, 4, d.durationMs);
      bindBlob(st, 5, d.error);
      sqlite3_bind_int64(st, 6, d.reportedAtMs);
      sqlite3_bind_int(st, 7, static_cast<int32_t>(d.phase));
      sqlite3_bind_int64(st, 8, d.timeoutMs);
      sqlite3_bind_int(st, 9, d.targetHttps ? 1 : 0);
      sqlite3_bind_int64(st, 10, d.startedAtMs);
      bindBlob(st, 11, pending.text.responseExcerpt);
      bindBlob(st, 12, pending.text.location);
      sqlite3_bind_int(st, 13, pending.text.sealed ? 1 : 0);
      if (stepWrite(*insertDelivery_) == SQLITE_OK) continue;

      // Keep the message of the failed insert: the savepoint statements replace it.
      std::string violation = sqlite3_errmsg(db_);
      stepOrThrow(*rollbackSavepoint_);
      stepOrThrow(*releaseSavepoint_);
      return violation;
    }
    stepOrThrow(*releaseSavepoint_);
    return std::string();
  }

  /// Seals the values of a report whose event had no data key when they were sealed, if a
  /// re-encryption (which runs on this writer) has sealed the event since. `sealer` and `ring`
  /// are made at the first such event of the job.
  void sealIfEventSealed(PendingDelivery& pending, std::unique_ptr<DeliverySealer>& sealer,
                         std::shared_ptr<const crypto::KeyRing>& ring) {
    sqlite3_stmt* st = eventKeyOf_->get();
    sqlite3_bind_int64(st, 1, pending.record.eventId);
    const int rc = sqlite3_step(st);
    std::optional<DeliveryEvent> event;
    if (rc == SQLITE_ROW) {
      const auto bytes = [st](int column) {
        const void* data = sqlite3_column_blob(st, column);
        const int size = sqlite3_column_bytes(st, column);
        if (data == nullptr || size <= 0) return std::string();
        return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
      };
      event = DeliveryEvent{pending.record.eventId, bytes(0), {bytes(1), bytes(2)}};
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      throw StoreError(std::string("could not read the key of an event: ") + sqlite3_errmsg(db_));
    }
    if (!event) return;
    if (!ring) ring = this->ring();
    if (!sealer) sealer = std::make_unique<DeliverySealer>(ring.get());
    pending.text = sealer->seal(pending.record, *event);
  }

  void rollbackQuietly() {
    // Nothing to undo when SQLite already rolled back or no transaction was open.
    if (db_ == nullptr) {
      try {
        *writer_ << "ROLLBACK", now;
      } catch (const Poco::Exception&) {
      }
      return;
    }
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  const std::string path_;
  const SqliteOptions options_;

  // Used by the writer thread only (and by start() and stop() around it).
  std::unique_ptr<Session> writer_;
  sqlite3* db_ = nullptr;  // the writer session's own handle
  std::unique_ptr<RawStatement> begin_, commit_, insertEvent_, insertEventKey_, lastEventId_;
  std::unique_ptr<RawStatement> insertDelivery_, callSavepoint_, releaseCall_, rollbackCall_;
  std::unique_ptr<RawStatement> insertModified_, eventKeyOf_;
  std::unique_ptr<RawStatement> savepoint_, releaseSavepoint_, rollbackSavepoint_;
  std::string headersBuffer_;
  int64_t batchLastEventId_ = -1;  // the last id used in the open transaction; -1: not read
  int walFrames_ = 0;              // set by the WAL hook during the writer's commits

  std::string walPath_;
  int walFd_ = -1;  // synced by the sync thread
  std::atomic<int64_t> durableId_{0};

  mutable std::mutex mutex_;  // guards queue_, stopping_, stats_, poisoned_
  std::condition_variable queueCv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  WriterStats stats_;
  std::string poisoned_;   // why every write is refused, after a failed sync
  bool syncBusy_ = false;  // the sync thread is syncing; the writer may keep its batch open
  std::thread thread_;

  std::mutex syncMutex_;  // guards syncQueue_, syncStopping_
  std::condition_variable syncCv_;
  std::deque<Committed> syncQueue_;
  bool syncStopping_ = false;
  std::thread syncThread_;

  std::unique_ptr<Session> checkpointer_;
  sqlite3* checkpointDb_ = nullptr;  // used by the checkpoint thread only
  std::mutex checkpointMutex_;       // guards the three flags below
  std::condition_variable checkpointCv_;
  bool checkpointWanted_ = false;
  bool checkpointRunning_ = false;
  bool checkpointStopping_ = false;
  std::atomic<bool> backgroundRoundDone_{false};
  std::thread checkpointThread_;

  std::mutex listenerMutex_;
  std::function<void(const EventRecord&)> listener_;

  std::mutex readersMutex_;
  std::vector<std::unique_ptr<Session>> idleReaders_;

  struct CachedHook {
    HookRecord hook;
    int64_t cachedAtMs = 0;  ///< steady clock
  };
  mutable std::shared_mutex hooksMutex_;
  std::unordered_map<std::string, CachedHook> hooks_;
  std::atomic<uint64_t> hookCacheHits_{0};
  std::atomic<uint64_t> hookGeneration_{0};  // bumped, under hooksMutex_, by every invalidation

  static constexpr size_t kMaxIntegrityReports = 100000;
  std::mutex integrityMutex_;
  std::unordered_set<int64_t> integrityReported_;

 public:
  // Where reencryptBatch goes on from, per table, while the active key stays the same.
  struct ReencryptCursor {
    std::string activeKey;
    int64_t eventKeys = 0;    ///< last event id done among those under another key
    int64_t plainEvents = 0;  ///< last event id done among those stored in the clear
    std::string hook;
    std::string setting;
  };
  std::mutex reencryptMutex_;  // one rotation at a time; guards reencryptCursor_
  ReencryptCursor reencryptCursor_;
  ReencryptFailureLog reencryptFailures_;  // guarded by reencryptMutex_
};

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& path,
                                               const SqliteOptions& options) {
  // A batch that may hold no write would leave the writer spinning on an empty batch.
  if (options.maxBatchJobs == 0) {
    throw StoreError("could not open store path=" + path + ": maxBatchJobs must be at least 1");
  }

  registerConnectorOnce();
  auto impl = std::make_unique<Impl>(path, options);
  impl->start();
  logger().information("opened store path=%s schema_version=%?d", path, kSchemaVersion);
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

namespace {

/// The insert of a hook, shared by createHook and createHookWithin.
void insertHook(sqlite3* db, const HookRecord& h, const StoredSecrets& stored) {
  Sql q(db,
        "INSERT INTO hooks (id, provider, secret, tolerance_s, options, token_hash, "
        "created_at_ms, account_id, name, signing_secret, previous_signing_secret, "
        "previous_valid_until_ms, standard_webhooks, custom_response, expires_at_ms, key_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.text(h.id)
      .text(h.provider)
      .blob(stored.secret)
      .int64(h.toleranceS)
      .blob(encodeOptions(h.options))
      .text(h.tokenHash)
      .int64(h.createdAtMs)
      .text(h.accountId)
      .text(h.name)
      .blob(stored.signingSecret)
      .blob(stored.previousSigningSecret)
      .int64(h.previousValidUntilMs)
      .int64(h.standardWebhooks ? 1 : 0)
      .blob(encodeCustomResponse(h.customResponse))
      .int64(h.expiresAtMs)
      .text(stored.keyId);
  try {
    q.run();
  } catch (const Constraint& e) {
    // The partial index on (account_id, name) is the only unique constraint besides the id.
    if (e.code() == SQLITE_CONSTRAINT_UNIQUE && !h.name.empty()) {
      throw ConflictError("a hook named " + h.name + " exists");
    }
    throw Refused("could not create hook " + h.id + ": " + e.what());
  }
}

/// The ids of the entries a select of one column returns.
std::vector<std::string> idsOf(Sql& q) {
  std::vector<std::string> ids;
  while (q.step()) ids.push_back(q.bytesAt(0));
  return ids;
}

}  // namespace

void SqliteStore::createHook(const HookRecord& hook) {
  // Sealed before queueing: the writer has enough to do.
  auto ring = impl_->ring();
  const StoredSecrets stored = sealSecrets(ring.get(), hook);
  impl_->runOnWriter([&](sqlite3* db) { insertHook(db, hook, stored); });
  impl_->forgetHooks({hook.id});
}

void SqliteStore::createHookWithin(const HookRecord& hook, size_t maxNamedHooks) {
  auto ring = impl_->ring();
  const StoredSecrets stored = sealSecrets(ring.get(), hook);

  // The count and the insert in one step of the writer, inside its write transaction: no
  // other create, of this process or another, can come between them.
  impl_->runOnWriter([&](sqlite3* db) {
    Sql taken(db, "SELECT 1 FROM hooks WHERE account_id = ? AND name = ? AND name <> ''");
    taken.text(hook.accountId).text(hook.name);
    if (taken.step()) throw ConflictError("a hook named " + hook.name + " exists");

    Sql count(db, "SELECT COUNT(*) FROM hooks WHERE account_id = ? AND name <> ''");
    count.text(hook.accountId);
    count.step();
    const auto named = static_cast<uint64_t>(count.int64At(0));
    if (named >= maxNamedHooks) {
      throw LimitError("account " + hook.accountId + " has " + std::to_string(named) +
                       " named hooks, the most its plan allows");
    }
    insertHook(db, hook, stored);
  });
  impl_->forgetHooks({hook.id});
}

bool SqliteStore::updateHook(const HookRecord& hook) {
  auto ring = impl_->ring();
  const StoredSecrets stored = sealSecrets(ring.get(), hook);
  bool updated = false;
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "UPDATE hooks SET provider = ?, secret = ?, tolerance_s = ?, options = ?, "
          "signing_secret = ?, previous_signing_secret = ?, previous_valid_until_ms = ?, "
          "standard_webhooks = ?, custom_response = ?, expires_at_ms = ?, key_id = ? "
          "WHERE id = ?");
    q.text(hook.provider)
        .blob(stored.secret)
        .int64(hook.toleranceS)
        .blob(encodeOptions(hook.options))
        .blob(stored.signingSecret)
        .blob(stored.previousSigningSecret)
        .int64(hook.previousValidUntilMs)
        .int64(hook.standardWebhooks ? 1 : 0)
        .blob(encodeCustomResponse(hook.customResponse))
        .int64(hook.expiresAtMs)
        .text(stored.keyId)
        .text(hook.id);
    updated = q.run() > 0;
  });
  impl_->forgetHooks({hook.id});
  return updated;
}

std::vector<HookRecord> SqliteStore::listHooks(const std::string& accountId) {
  auto ring = impl_->ring();
  return impl_->read("hooks", [&](Session& s) {
    Sql q(handleOf(s), std::string("SELECT ") + kHookColumns +
                           " FROM hooks WHERE account_id = ? ORDER BY created_at_ms, rowid");
    q.text(accountId);
    std::vector<HookRecord> hooks;
    while (q.step()) hooks.push_back(hookFromRow(q, ring.get()));
    return hooks;
  });
}

std::optional<HookRecord> SqliteStore::findHookByName(const std::string& accountId,
                                                      const std::string& name) {
  if (name.empty()) return std::nullopt;
  auto ring = impl_->ring();
  return impl_->read("hook", [&](Session& s) -> std::optional<HookRecord> {
    Sql q(handleOf(s),
          std::string("SELECT ") + kHookColumns + " FROM hooks WHERE account_id = ? AND name = ?");
    q.text(accountId).text(name);
    if (!q.step()) return std::nullopt;
    return hookFromRow(q, ring.get());
  });
}

size_t SqliteStore::deleteExpiredHooks(int64_t nowMs) {
  std::vector<std::string> gone;

  // Hook, events, their keys and deliveries in one transaction: ingest never finds a hook
  // whose events are half gone.
  impl_->runOnWriter([&](sqlite3* db) {
    gone.clear();
    Sql expired(db,
                "SELECT id FROM hooks WHERE account_id = '' AND expires_at_ms > 0 "
                "AND expires_at_ms < ?");
    expired.int64(nowMs);
    gone = idsOf(expired);
    for (const auto& id : gone) {
      Sql deliveries(db,
                     "DELETE FROM deliveries WHERE event_id IN "
                     "(SELECT id FROM events WHERE hook_id = ?)");
      deliveries.text(id).run();
      Sql keys(
          db, "DELETE FROM event_keys WHERE event_id IN (SELECT id FROM events WHERE hook_id = ?)");
      keys.text(id).run();
      Sql modified(db,
                   "DELETE FROM modified_events WHERE event_id IN "
                   "(SELECT id FROM events WHERE hook_id = ?)");
      modified.text(id).run();
      Sql events(db, "DELETE FROM events WHERE hook_id = ?");
      events.text(id).run();
      Sql hook(db, "DELETE FROM hooks WHERE id = ?");
      hook.text(id).run();
    }
  });
  if (!gone.empty()) {
    impl_->forgetHooks(gone);
    logger().information("deleted expired hooks count=%z", gone.size());
  }
  return gone.size();
}

void SqliteStore::extendHook(const std::string& hookId, int64_t expiresAtMs) {
  impl_->runOnWriter([&](sqlite3* db) {
    // Anonymous hooks only (a named one has 0), and forward only.
    Sql q(db,
          "UPDATE hooks SET expires_at_ms = ? WHERE id = ? AND expires_at_ms > 0 "
          "AND expires_at_ms < ?");
    q.int64(expiresAtMs).text(hookId).int64(expiresAtMs).run();
  });
  impl_->forgetHooks({hookId});
}

bool SqliteStore::claimRelay(const std::string& hookId, const std::string& relayId, int64_t nowMs,
                             int64_t untilMs) {
  bool claimed = false;

  // One conditional UPDATE: the check and the take cannot be split by another edge or process.
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "UPDATE hooks SET relay_id = ?, relay_until_ms = ? WHERE id = ? AND "
          "(relay_id IS NULL OR relay_until_ms < ? OR relay_id = ?)");
    q.text(relayId).int64(untilMs).text(hookId).int64(nowMs).text(relayId);
    claimed = q.run() > 0;
  });
  return claimed;
}

bool SqliteStore::takeOverRelay(const std::string& hookId, const std::string& holder,
                                const std::string& relayPrefix, int64_t nowMs, int64_t untilMs) {
  if (relayPrefix.empty()) throw StoreError("could not take the relay lease: no relay prefix");
  bool taken = false;
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "UPDATE hooks SET relay_id = ?, relay_until_ms = ? WHERE id = ? AND "
          "(relay_id IS NULL OR relay_until_ms < ? OR relay_id = ? OR "
          "substr(relay_id, 1, length(?)) = ?)");
    q.text(holder)
        .int64(untilMs)
        .text(hookId)
        .int64(nowMs)
        .text(holder)
        .text(relayPrefix)
        .text(relayPrefix);
    taken = q.run() > 0;
  });
  return taken;
}

void SqliteStore::releaseRelay(const std::string& hookId, const std::string& relayId) {
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db, "UPDATE hooks SET relay_id = NULL, relay_until_ms = 0 WHERE id = ? AND relay_id = ?");
    q.text(hookId).text(relayId).run();
  });
}

void SqliteStore::createAccount(const AccountRecord& account) {
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "INSERT INTO accounts (id, name, plan, disabled, created_at_ms) VALUES (?, ?, ?, ?, ?)");
    q.text(account.id)
        .text(account.name)
        .int64(static_cast<int32_t>(account.plan))
        .int64(account.disabled ? 1 : 0)
        .int64(account.createdAtMs);
    try {
      q.run();
    } catch (const Constraint& e) {
      if (e.unique()) throw ConflictError("an account named " + account.name + " exists");
      throw Refused("could not create account " + account.id + ": " + e.what());
    }
  });
}

std::optional<AccountRecord> SqliteStore::findAccount(const std::string& accountId) {
  return impl_->read("account", [&](Session& s) -> std::optional<AccountRecord> {
    Sql q(handleOf(s), std::string("SELECT ") + kAccountColumns + " FROM accounts WHERE id = ?");
    q.text(accountId);
    if (!q.step()) return std::nullopt;
    return accountFromRow(q);
  });
}

std::optional<AccountRecord> SqliteStore::findAccountByName(const std::string& name) {
  return impl_->read("account", [&](Session& s) -> std::optional<AccountRecord> {
    Sql q(handleOf(s), std::string("SELECT ") + kAccountColumns + " FROM accounts WHERE name = ?");
    q.text(name);
    if (!q.step()) return std::nullopt;
    return accountFromRow(q);
  });
}

std::vector<AccountRecord> SqliteStore::listAccounts() {
  return impl_->read("accounts", [&](Session& s) {
    Sql q(handleOf(s), std::string("SELECT ") + kAccountColumns +
                           " FROM accounts ORDER BY created_at_ms, rowid");
    std::vector<AccountRecord> accounts;
    while (q.step()) accounts.push_back(accountFromRow(q));
    return accounts;
  });
}

bool SqliteStore::updateAccount(const AccountRecord& account) {
  bool updated = false;
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db, "UPDATE accounts SET plan = ?, disabled = ? WHERE id = ?");
    q.int64(static_cast<int32_t>(account.plan)).int64(account.disabled ? 1 : 0).text(account.id);
    updated = q.run() > 0;
  });
  return updated;
}

void SqliteStore::createMember(const MemberRecord& member) {
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(
        db,
        "INSERT INTO members (id, account_id, name, owner, created_at_ms) VALUES (?, ?, ?, ?, ?)");
    q.text(member.id)
        .text(member.accountId)
        .text(member.name)
        .int64(member.owner ? 1 : 0)
        .int64(member.createdAtMs);
    try {
      q.run();
    } catch (const Constraint& e) {
      if (e.unique()) throw ConflictError("a member named " + member.name + " exists");
      throw Refused("could not create member " + member.id + ": " + e.what());
    }
  });
}

std::optional<MemberRecord> SqliteStore::findMember(const std::string& memberId) {
  return impl_->read("member", [&](Session& s) -> std::optional<MemberRecord> {
    Sql q(handleOf(s), std::string("SELECT ") + kMemberColumns + " FROM members WHERE id = ?");
    q.text(memberId);
    if (!q.step()) return std::nullopt;
    return memberFromRow(q);
  });
}

std::vector<MemberRecord> SqliteStore::listMembers(const std::string& accountId) {
  return impl_->read("members", [&](Session& s) {
    Sql q(handleOf(s), std::string("SELECT ") + kMemberColumns +
                           " FROM members WHERE account_id = ? ORDER BY created_at_ms, rowid");
    q.text(accountId);
    std::vector<MemberRecord> members;
    while (q.step()) members.push_back(memberFromRow(q));
    return members;
  });
}

void SqliteStore::createToken(const TokenRecord& token) {
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "INSERT INTO tokens (id, member_id, account_id, name, hash, created_at_ms, "
          "last_used_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    q.text(token.id)
        .text(token.memberId)
        .text(token.accountId)
        .blob(token.name)
        .text(token.hash)
        .int64(token.createdAtMs)
        .int64(token.lastUsedAtMs)
        .int64(token.revokedAtMs);
    try {
      q.run();
    } catch (const Constraint& e) {
      throw Refused("could not create token " + token.id + ": " + e.what());
    }
  });
}

std::optional<TokenRecord> SqliteStore::findTokenByHash(const std::string& hash) {
  return impl_->read("token", [&](Session& s) -> std::optional<TokenRecord> {
    Sql q(handleOf(s), std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE hash = ?");
    q.text(hash);
    if (!q.step()) return std::nullopt;
    return tokenFromRow(q);
  });
}

std::optional<TokenRecord> SqliteStore::findToken(const std::string& tokenId) {
  return impl_->read("token", [&](Session& s) -> std::optional<TokenRecord> {
    Sql q(handleOf(s), std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE id = ?");
    q.text(tokenId);
    if (!q.step()) return std::nullopt;
    return tokenFromRow(q);
  });
}

std::vector<TokenRecord> SqliteStore::listTokens(const std::string& accountId) {
  return impl_->read("tokens", [&](Session& s) {
    Sql q(handleOf(s), std::string("SELECT ") + kTokenColumns +
                           " FROM tokens WHERE account_id = ? ORDER BY created_at_ms, rowid");
    q.text(accountId);
    std::vector<TokenRecord> tokens;
    while (q.step()) tokens.push_back(tokenFromRow(q));
    return tokens;
  });
}

bool SqliteStore::revokeToken(const std::string& tokenId, int64_t nowMs) {
  bool revoked = false;
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db, "UPDATE tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms = 0");
    q.int64(nowMs).text(tokenId);
    revoked = q.run() > 0;
  });
  return revoked;
}

std::vector<std::string> SqliteStore::revokedTokensSince(int64_t sinceMs) {
  return impl_->read("revoked tokens", [&](Session& s) {
    Sql q(handleOf(s),
          "SELECT id FROM tokens WHERE revoked_at_ms > 0 AND revoked_at_ms >= ? "
          "ORDER BY revoked_at_ms, id");
    q.int64(sinceMs);
    return idsOf(q);
  });
}

void SqliteStore::endSession(const std::string& sessionId, int64_t untilMs, int64_t nowMs) {
  impl_->runOnWriter([&](sqlite3* db) {
    Sql(db, "DELETE FROM ended_sessions WHERE until_ms <= ?").int64(nowMs).run();
    Sql q(db,
          "INSERT INTO ended_sessions (jti, until_ms) VALUES (?, ?) "
          "ON CONFLICT (jti) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)");
    q.text(sessionId).int64(untilMs).run();
  });
}

bool SqliteStore::sessionEnded(const std::string& sessionId, int64_t nowMs) {
  return impl_->read("ended session", [&](Session& s) {
    Sql q(handleOf(s), "SELECT 1 FROM ended_sessions WHERE jti = ? AND until_ms > ?");
    q.text(sessionId).int64(nowMs);
    return q.step();
  });
}

void SqliteStore::touchToken(const std::string& tokenId, int64_t nowMs) {
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db, "UPDATE tokens SET last_used_at_ms = ? WHERE id = ? AND last_used_at_ms < ?");
    q.int64(nowMs).text(tokenId).int64(nowMs).run();
  });
}

int64_t SqliteStore::appendAudit(const AuditRecord& entry) {
  int64_t id = 0;

  // Through the writer like an event: runOnWriter returns once the entry is synced.
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "INSERT INTO audit (at_ms, account_id, actor, action, hook_id, event_id, detail, "
          "remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    q.int64(entry.atMs)
        .text(entry.accountId)
        .blob(entry.actor)
        .text(entry.action)
        .text(entry.hookId)
        .int64(entry.eventId)
        .blob(entry.detail)
        .blob(entry.remote);
    q.run();
    id = sqlite3_last_insert_rowid(db);
  });
  return id;
}

std::vector<AuditRecord> SqliteStore::listAudit(const std::string& accountId, int64_t afterId,
                                                size_t limit) {
  if (limit == 0) return {};
  return impl_->read("audit log", [&](Session& s) {
    Sql q(handleOf(s),
          "SELECT id, at_ms, account_id, actor, action, hook_id, event_id, detail, remote "
          "FROM audit WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?");
    const auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
    q.text(accountId).int64(afterId).int64(static_cast<int64_t>(std::min(limit, max)));
    std::vector<AuditRecord> entries;
    while (q.step()) {
      AuditRecord a;
      a.id = q.int64At(0);
      a.atMs = q.int64At(1);
      a.accountId = q.bytesAt(2);
      a.actor = q.bytesAt(3);
      a.action = q.bytesAt(4);
      a.hookId = q.bytesAt(5);
      a.eventId = q.int64At(6);
      a.detail = q.bytesAt(7);
      a.remote = q.bytesAt(8);
      entries.push_back(std::move(a));
    }
    return entries;
  });
}

namespace {

WrappedKey sealSetting(const crypto::KeyRing* ring, const std::string& name,
                       const std::string& value) {
  if (ring == nullptr) return WrappedKey{"", value};
  return sealField(*ring, value, kSettingsTable, name, "value");
}

std::string openSetting(const crypto::KeyRing* ring, const std::string& name,
                        const WrappedKey& stored) {
  if (stored.keyId.empty()) return stored.sealed;
  if (ring == nullptr) {
    throw StoreError("could not read setting " + name + ": it is under key " + stored.keyId +
                     " and the store has no key ring");
  }
  try {
    return openField(*ring, stored, kSettingsTable, name, "value");
  } catch (const crypto::IntegrityError& e) {
    throw StoreError(std::string("could not read setting: ") + e.what());
  }
}

}  // namespace

std::optional<std::string> SqliteStore::getSetting(const std::string& name) {
  auto ring = impl_->ring();
  return impl_->read("setting", [&](Session& s) -> std::optional<std::string> {
    Sql q(handleOf(s), "SELECT value, key_id FROM settings WHERE name = ?");
    q.text(name);
    if (!q.step()) return std::nullopt;
    return openSetting(ring.get(), name, WrappedKey{q.bytesAt(1), q.bytesAt(0)});
  });
}

std::string SqliteStore::putSettingIfAbsent(const std::string& name, const std::string& value) {
  auto ring = impl_->ring();
  const WrappedKey sealed = sealSetting(ring.get(), name, value);
  WrappedKey stored;

  // The writer serialises every put, and its transaction holds the file's write lock, so the
  // first put of any process wins and every later one reads the winner back.
  impl_->runOnWriter([&](sqlite3* db) {
    Sql insert(db, "INSERT OR IGNORE INTO settings (name, value, key_id) VALUES (?, ?, ?)");
    insert.text(name).blob(sealed.sealed).text(sealed.keyId).run();
    Sql read(db, "SELECT value, key_id FROM settings WHERE name = ?");
    read.text(name);
    if (!read.step()) throw StoreError("could not store setting " + name);
    stored = WrappedKey{read.bytesAt(1), read.bytesAt(0)};
  });
  return openSetting(ring.get(), name, stored);
}

void SqliteStore::setSetting(const std::string& name, const std::string& value) {
  auto ring = impl_->ring();
  const WrappedKey sealed = sealSetting(ring.get(), name, value);
  impl_->runOnWriter([&](sqlite3* db) {
    Sql q(db,
          "INSERT INTO settings (name, value, key_id) VALUES (?, ?, ?) "
          "ON CONFLICT (name) DO UPDATE SET value = excluded.value, key_id = excluded.key_id");
    q.text(name).blob(sealed.sealed).text(sealed.keyId).run();
  });
}

size_t SqliteStore::reencryptBatch(size_t limit) {
  auto ring = impl_->ring();
  if (!ring) throw StoreError("could not re-encrypt: the store has no key ring");
  if (limit == 0) return 0;

  std::lock_guard<std::mutex> rotation(impl_->reencryptMutex_);
  auto& cursor = impl_->reencryptCursor_;
  const std::string active = ring->active().id;
  Impl::ReencryptCursor fresh;
  fresh.activeKey = active;
  if (cursor.activeKey != active) cursor = fresh;

  size_t done = 0;
  std::vector<std::string> hooksDone;
  std::vector<std::string> failed;  // records that fail authentication under a key we hold
  Impl::ReencryptCursor next = cursor;
  impl_->runOnWriter([&](sqlite3* db) {
    done = 0;
    hooksDone.clear();
    failed.clear();
    next = cursor;
    const auto failedAuthentication = [&](const std::string& keyId, std::string record) {
      if (keyId.empty() || ring->find(keyId) != nullptr) failed.push_back(std::move(record));
    };

    // A batch of large plaintext bodies is cut short by bytes, so that one transaction does
    // not hold gigabytes.
    constexpr size_t kMaxBatchBytes = size_t{64} << 20;
    size_t bytes = 0;

    // Sealed events under another key: only their 60-byte wrapped key changes. Those sealed
    // before schema 3 also get their summary fields sealed under their data key. A wrap that
    // does not open is logged and passed over (the cursor moves on), so that the caller's loop
    // ends.
    {
      Sql q(db,
            "SELECT k.event_id, e.hook_id, k.key_id, k.wrapped_key, k.seal_version, "
            "e.path_suffix, e.reason_message, e.event_type, e.delivery_id FROM event_keys k "
            "JOIN events e ON e.id = k.event_id "
            "WHERE (k.key_id <> ? OR k.seal_version < 2) AND k.event_id > ? "
            "ORDER BY k.event_id LIMIT ?");
      q.text(active).int64(next.eventKeys).int64(static_cast<int64_t>(limit - done));

      // Read first, then write: a table changed under a running select may be walked twice.
      struct Row {
        SealedEventRow event;
        bool summaryInTheClear;
      };
      std::vector<Row> rows;
      while (q.step()) {
        rows.push_back(
            Row{{q.int64At(0), q.bytesAt(1), {q.bytesAt(2), q.bytesAt(3)}, summaryAt(q, 5)},
                q.int64At(4) < kSealVersionSummary});
      }
      for (const auto& [event, summaryInTheClear] : rows) {
        next.eventKeys = event.id;
        try {
          if (summaryInTheClear) sealSummaryRow(db, *ring, event);
          if (event.wrapped.keyId != active) {
            const WrappedKey wrapped = rewrapDataKey(*ring, event.wrapped, event.hookId, event.id);
            Sql update(db, "UPDATE event_keys SET key_id = ?, wrapped_key = ? WHERE event_id = ?");
            update.text(wrapped.keyId).blob(wrapped.sealed).int64(event.id).run();
          }
          ++done;
        } catch (const crypto::IntegrityError& e) {
          logger().error("could not re-encrypt event event_id=%?d key_id=%s error=\"%s\"", event.id,
                         event.wrapped.keyId, std::string(e.what()));
          failedAuthentication(event.wrapped.keyId, "event " + std::to_string(event.id));
        }
      }
    }

    // Events stored in the clear (a database from before encryption at rest): their
    // contents are sealed in place under a new data key.
    if (done < limit) {
      Sql q(db,
            "SELECT e.id, e.hook_id, e.raw_query, e.headers, e.body FROM events e "
            "WHERE e.id > ? AND NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.event_id = e.id) "
            "ORDER BY e.id LIMIT ?");
      q.int64(next.plainEvents).int64(static_cast<int64_t>(limit - done));
      std::vector<int64_t> ids;
      while (q.step()) ids.push_back(q.int64At(0));
      for (const int64_t id : ids) {
        if (bytes >= kMaxBatchBytes) break;
        Sql row(db,
                "SELECT hook_id, raw_query, headers, body, path_suffix, reason_message, "
                "event_type, delivery_id FROM events WHERE id = ?");
        row.int64(id);
        if (!row.step()) continue;
        EventRecord event;
        event.id = id;
        event.hookId = row.bytesAt(0);
        event.rawQuery = row.bytesAt(1);
        event.pathSuffix = row.bytesAt(4);
        event.reasonMessage = row.bytesAt(5);
        event.eventType = row.bytesAt(6);
        event.deliveryId = row.bytesAt(7);
        next.plainEvents = id;
        try {
          event.headers = decodeHeaders(row.bytesAt(2));
        } catch (const StoreError& e) {
          logger().error("could not re-encrypt event event_id=%?d key_id=(none) error=\"%s\"",
                         event.id, std::string(e.what()));
          failedAuthentication("", "event " + std::to_string(event.id));
          continue;
        }
        event.body = row.bytesAt(3);
        bytes += event.body.size();
        SealedContents sealed = sealContents(event);
        const WrappedKey wrapped = wrapDataKey(*ring, sealed.dataKey, event.hookId, event.id);
        sealClearDeliveries(db, sealed.dataKey, event.hookId, event.id);
        OPENSSL_cleanse(sealed.dataKey.data(), sealed.dataKey.size());
        Sql update(db,
                   "UPDATE events SET raw_query = ?, headers = ?, body = ?, path_suffix = ?, "
                   "reason_message = ?, event_type = ?, delivery_id = ? WHERE id = ?");
        update.blob(sealed.query)
            .blob(sealed.headers)
            .blob(sealed.body)
            .blob(sealed.summary.pathSuffix)
            .blob(sealed.summary.reasonMessage)
            .blob(sealed.summary.eventType)
            .blob(sealed.summary.deliveryId)
            .int64(event.id)
            .run();
        Sql key(db,
                "INSERT INTO event_keys (event_id, key_id, wrapped_key, seal_version) "
                "VALUES (?, ?, ?, ?)");
        key.int64(event.id)
            .text(wrapped.keyId)
            .blob(wrapped.sealed)
            .int64(kSealVersionSummary)
            .run();
        ++done;
      }
    }

    // Hooks' secrets, in the clear or under another key.
    if (done < limit) {
      Sql q(db, std::string("SELECT ") + kHookColumns +
                    " FROM hooks WHERE key_id <> ? AND id > ? ORDER BY id LIMIT ?");
      q.text(active).text(next.hook).int64(static_cast<int64_t>(limit - done));
      struct Row {
        std::string id, keyId, failure;
        HookRecord hook;
      };
      std::vector<Row> rows;
      while (q.step()) {
        Row row{q.bytesAt(0), q.bytesAt(15), "", {}};
        try {
          row.hook = hookFromRow(q, ring.get());
        } catch (const StoreError& e) {
          row.failure = e.what();
        }
        rows.push_back(std::move(row));
      }
      for (const auto& [id, keyId, failure, hook] : rows) {
        next.hook = id;
        if (!failure.empty()) {
          logger().error("could not re-encrypt hook hook=%s key_id=%s error=\"%s\"", id, keyId,
                         failure);
          failedAuthentication(keyId, "hook " + id);
          continue;
        }
        const StoredSecrets stored = sealSecrets(ring.get(), hook);
        Sql update(db,
                   "UPDATE hooks SET secret = ?, signing_secret = ?, previous_signing_secret = ?, "
                   "key_id = ? WHERE id = ?");
        update.blob(stored.secret)
            .blob(stored.signingSecret)
            .blob(stored.previousSigningSecret)
            .text(stored.keyId)
            .text(id)
            .run();
        hooksDone.push_back(id);
        ++done;
      }
    }

    // Settings.
    if (done < limit) {
      Sql q(db,
            "SELECT name, value, key_id FROM settings WHERE key_id <> ? AND name > ? "
            "ORDER BY name LIMIT ?");
      q.text(active).text(next.setting).int64(static_cast<int64_t>(limit - done));
      std::vector<std::pair<std::string, WrappedKey>> rows;
      while (q.step()) rows.emplace_back(q.bytesAt(0), WrappedKey{q.bytesAt(2), q.bytesAt(1)});
      for (const auto& [name, old] : rows) {
        next.setting = name;
        std::string value;
        try {
          value = openSetting(ring.get(), name, old);
        } catch (const StoreError& e) {
          logger().error("could not re-encrypt setting name=%s key_id=%s error=\"%s\"", name,
                         old.keyId, std::string(e.what()));
          failedAuthentication(old.keyId, "setting " + name);
          continue;
        }
        const WrappedKey sealed = sealSetting(ring.get(), name, value);
        Sql update(db, "UPDATE settings SET value = ?, key_id = ? WHERE name = ?");
        update.blob(sealed.sealed).text(sealed.keyId).text(name).run();
        ++done;
      }
    }
  });

  // A pass that found nothing left starts the next one from the beginning, so that records
  // a concurrent writer sealed under an old key (before it saw the new ring) are found too.
  cursor = done == 0 ? fresh : next;
  if (!hooksDone.empty()) impl_->forgetHooks(hooksDone);
  for (auto& record : failed) impl_->reencryptFailures_.note(std::move(record));
  return done;
}

ReencryptFailures SqliteStore::reencryptFailures() {
  std::lock_guard<std::mutex> rotation(impl_->reencryptMutex_);
  return impl_->reencryptFailures_.failures;
}

std::vector<KeyUsage> SqliteStore::keyUsage() {
  return impl_->read("key usage", [&](Session& s) {
    // "" counts the records that hold values in the clear: events stored in the clear, and
    // events sealed before schema 3 whose summary fields are not sealed yet.
    Sql q(handleOf(s),
          "SELECT key_id, SUM(n) FROM ("
          " SELECT CASE WHEN seal_version < 2 THEN '' ELSE key_id END AS key_id, COUNT(*) AS n"
          "  FROM event_keys GROUP BY 1"
          " UNION ALL SELECT '', COUNT(*) FROM events e"
          "  WHERE NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.event_id = e.id)"
          " UNION ALL SELECT key_id, COUNT(*) FROM hooks GROUP BY key_id"
          " UNION ALL SELECT key_id, COUNT(*) FROM settings GROUP BY key_id"
          ") GROUP BY key_id HAVING SUM(n) > 0 ORDER BY key_id");
    std::vector<KeyUsage> usage;
    while (q.step()) usage.push_back(KeyUsage{q.bytesAt(0), q.int64At(1)});
    return usage;
  });
}

int64_t SqliteStore::appendEvent(EventRecord event) {
  auto job = std::make_unique<Impl::Job>();
  job->kind = Impl::Job::Kind::kEvent;
  job->bytes = event.body.size();
  for (const auto& header : event.headers) job->bytes += header.name.size() + header.value.size();

  // Sealed on the caller's thread, so that many ingest threads share the work; the writer only
  // wraps the data key once it has chosen the id.
  if (impl_->ring()) job->sealed = sealContents(event);
  job->event = std::move(event);
  return impl_->submit(std::move(job));
}

void SqliteStore::addDelivery(const DeliveryRecord& delivery) { addDeliveries({delivery}); }

void SqliteStore::addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
  if (deliveries.empty()) return;
  auto job = std::make_unique<Impl::Job>();
  job->kind = Impl::Job::Kind::kDeliveries;
  job->deliveries = impl_->sealDeliveries(deliveries);
  impl_->submit(std::move(job));
}

void SqliteStore::setCommitListener(std::function<void(const EventRecord&)> listener) {
  impl_->setCommitListener(std::move(listener));
}

WriterStats SqliteStore::writerStats() const { return impl_->stats(); }

ReadStats SqliteStore::readStats() const { return impl_->readStats(); }

std::optional<HookRecord> SqliteStore::findHook(const std::string& hookId) {
  // Every ingest request looks its hook up. A cached hook is at most kHookCacheMs old: changes
  // made here drop it at once, changes of another process (the admin command) show within that.
  if (auto cached = impl_->cachedHook(hookId)) return cached;

  const uint64_t generation = impl_->hookGeneration();
  auto ring = impl_->ring();
  auto found = impl_->read("hook", [&](Session& s) -> std::optional<HookRecord> {
    Sql q(handleOf(s), std::string("SELECT ") + kHookColumns + " FROM hooks WHERE id = ?");
    q.text(hookId);
    if (!q.step()) return std::nullopt;
    return hookFromRow(q, ring.get());
  });
  if (found) impl_->cacheHook(*found, generation);
  return found;
}

std::vector<EventRecord> SqliteStore::listEvents(const std::string& hookId, int64_t afterId,
                                                 size_t limit, bool withBodies,
                                                 bool forwardableOnly) {
  if (limit == 0) return {};
  auto ring = impl_->ring();
  return impl_->read("events", [&](Session& s) {
    std::string sql = std::string(kEventSelect) + (withBodies ? ", e.body" : "") + kEventFrom +
                      " WHERE e.hook_id = ? AND e.id > ? AND e.id <= ?";
    if (forwardableOnly) {
      sql += " AND (e.verdict <> " + std::to_string(static_cast<int32_t>(Verdict::kInvalid)) +
             " OR e.replay_of <> 0)";
    }
    sql += " ORDER BY e.id LIMIT ?";

    const auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
    Sql q(handleOf(s), sql);
    q.text(hookId).int64(afterId).int64(impl_->durableId());
    q.int64(static_cast<int64_t>(std::min(limit, max)));

    // One event that does not open is returned with integrityError; the others as usual.
    std::vector<EventRecord> events;
    while (q.step()) {
      EventRecord event = eventFromRow(q);
      impl_->openEventRow(q, event, withBodies, ring.get());
      events.push_back(std::move(event));
    }
    return events;
  });
}

std::optional<EventRecord> SqliteStore::getEvent(const std::string& hookId, int64_t eventId) {
  auto ring = impl_->ring();
  return impl_->read("event", [&](Session& s) -> std::optional<EventRecord> {
    Sql q(handleOf(s), std::string(kEventSelect) + ", e.body" + kEventFrom +
                           " WHERE e.hook_id = ? AND e.id = ? AND e.id <= ?");
    q.text(hookId).int64(eventId).int64(impl_->durableId());
    if (!q.step()) return std::nullopt;
    EventRecord event = eventFromRow(q);
    impl_->openEventRow(q, event, true, ring.get());
    return event;
  });
}

std::vector<DeliveryRecord> SqliteStore::listDeliveries(int64_t eventId) {
  auto ring = impl_->ring();
  return impl_->read("deliveries", [&](Session& s) {
    Sql q(handleOf(s), std::string(kDeliverySelect) + " WHERE d.event_id = ? ORDER BY d.id");
    q.int64(eventId);
    DeliverySealer sealer(ring.get());
    std::vector<DeliveryRecord> deliveries;
    while (q.step()) deliveries.push_back(deliveryFromRow(q, sealer));
    return deliveries;
  });
}

std::vector<EventRecord> SqliteStore::listEventsBefore(const std::string& hookId, int64_t beforeId,
                                                       size_t limit, bool withBodies) {
  if (limit == 0) return {};
  auto ring = impl_->ring();
  return impl_->read("events", [&](Session& s) {
    // Never past the durable id, as listEvents: a committed but unsynced event is not there yet.
    const int64_t upTo =
        beforeId > 0 ? std::min(beforeId - 1, impl_->durableId()) : impl_->durableId();
    Sql q(handleOf(s), std::string(kEventSelect) + (withBodies ? ", e.body" : "") + kEventFrom +
                           " WHERE e.hook_id = ? AND e.id <= ? ORDER BY e.id DESC LIMIT ?");
    const auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
    q.text(hookId).int64(upTo).int64(static_cast<int64_t>(std::min(limit, max)));

    std::vector<EventRecord> events;
    while (q.step()) {
      EventRecord event = eventFromRow(q);
      impl_->openEventRow(q, event, withBodies, ring.get());
      events.push_back(std::move(event));
    }
    return events;
  });
}

std::vector<DeliveryRecord> SqliteStore::listDeliveriesOf(const std::vector<int64_t>& eventIds) {
  std::vector<int64_t> ids = eventIds;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<DeliveryRecord> out;
  auto ring = impl_->ring();
  DeliverySealer sealer(ring.get());
  for (size_t from = 0; from < ids.size(); from += kDeliveryBatchIds) {
    const size_t count = std::min(kDeliveryBatchIds, ids.size() - from);
    impl_->read("deliveries", [&](Session& s) {
      std::string sql = std::string(kDeliverySelect) + " WHERE d.event_id IN (?";
      for (size_t i = 1; i < count; ++i) sql += ",?";
      sql += ") ORDER BY d.event_id, d.id";
      Sql q(handleOf(s), sql);
      for (size_t i = 0; i < count; ++i) q.int64(ids[from + i]);
      while (q.step()) out.push_back(deliveryFromRow(q, sealer));
      return 0;
    });
  }
  return out;
}

std::vector<int64_t> SqliteStore::listReplayIds(const std::string& hookId, int64_t eventId,
                                                size_t limit) {
  if (limit == 0 || eventId <= 0) return {};
  return impl_->read("replays of an event", [&](Session& s) {
    Sql q(handleOf(s),
          "SELECT id FROM events WHERE hook_id = ? AND replay_of = ? AND id <= ?"
          " ORDER BY id LIMIT ?");
    const auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
    q.text(hookId).int64(eventId).int64(impl_->durableId());
    q.int64(static_cast<int64_t>(std::min(limit, max)));
    std::vector<int64_t> ids;
    while (q.step()) ids.push_back(q.int64At(0));
    return ids;
  });
}

int64_t SqliteStore::countEvents(const std::string& hookId) {
  return impl_->read("event count", [&](Session& s) {
    Sql q(handleOf(s), "SELECT COUNT(*) FROM events WHERE hook_id = ? AND id <= ?");
    q.text(hookId).int64(impl_->durableId());
    return q.step() ? q.int64At(0) : int64_t{0};
  });
}

std::vector<ActivityBucket> SqliteStore::activity(const std::string& hookId, int64_t fromMs,
                                                  int64_t bucketMs, size_t buckets) {
  std::vector<ActivityBucket> out = emptyActivity(fromMs, bucketMs, buckets);
  if (out.empty()) return out;
  const int64_t toMs = fromMs + bucketMs * static_cast<int64_t>(buckets);
  return impl_->read("activity", [&](Session& s) {
    // Events by bucket and verdict, from the index on (hook_id, received_at_ms).
    Sql events(handleOf(s),
               "SELECT (received_at_ms - ?) / ?, verdict, COUNT(*) FROM events"
               " WHERE hook_id = ? AND received_at_ms >= ? AND received_at_ms < ? GROUP BY 1, 2");
    events.int64(fromMs).int64(bucketMs).text(hookId).int64(fromMs).int64(toMs);
    while (events.step()) {
      countVerdict(out, events.int64At(0), events.int64At(1), events.int64At(2));
    }

    // Reports made in the window, of the hook's events from a day before it on: a relay
    // reports within seconds, and the bound keeps the join to the recent part of the index.
    Sql reports(handleOf(s),
                "SELECT (d.reported_at_ms - ?) / ?, d.status >= 200 AND d.status < 300, COUNT(*)"
                " FROM events e JOIN deliveries d ON d.event_id = e.id"
                " WHERE e.hook_id = ? AND e.received_at_ms >= ?"
                " AND d.reported_at_ms >= ? AND d.reported_at_ms < ? GROUP BY 1, 2");
    reports.int64(fromMs).int64(bucketMs).text(hookId).int64(fromMs - kActivityReportLookbackMs);
    reports.int64(fromMs).int64(toMs);
    while (reports.step()) {
      countDeliveries(out, reports.int64At(0), reports.int64At(1) != 0, reports.int64At(2));
    }
    return out;
  });
}

std::unique_ptr<Store> openSqliteStore(const std::string& path,
                                       std::shared_ptr<crypto::KeyHolder> keys) {
  SqliteOptions options;
  options.keys = std::move(keys);
  return SqliteStore::open(path, options);
}

}  // namespace anm::store
