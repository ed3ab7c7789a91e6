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

#include "core/store/field_codec.h"
#include "core/store/migration.h"

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

constexpr const char* kEventColumns =
    "id, hook_id, received_at_ms, method, path_suffix, raw_query, headers, body_size, verdict, "
    "reason, reason_message, event_type, delivery_id, replay_of";

// NOTE: DDL is not transactional in MySQL, so a step must be safe to run again after a crash
// in its middle: every statement is IF NOT EXISTS or INSERT IGNORE. Free-form bytes are BLOBs
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

EventRecord readEvent(sql::ResultSet& rs, bool withBody) {
  EventRecord event;
  event.id = rs.getInt64(1);
  event.hookId = column(rs, 2);
  event.receivedAtMs = rs.getInt64(3);
  event.method = column(rs, 4);
  event.pathSuffix = column(rs, 5);
  event.rawQuery = column(rs, 6);
  event.headers = decodeHeaders(column(rs, 7));
  event.bodySize = rs.getInt64(8);
  event.verdict = static_cast<Verdict>(rs.getInt(9));
  event.reason = rs.getInt(10);
  event.reasonMessage = column(rs, 11);
  event.eventType = column(rs, 12);
  event.deliveryId = column(rs, 13);
  event.replayOf = rs.getInt64(14);
  if (withBody) event.body = column(rs, 15);
  return event;
}

HookRecord readHook(sql::ResultSet& rs) {
  HookRecord hook;
  hook.id = column(rs, 1);
  hook.provider = column(rs, 2);
  hook.secret = column(rs, 3);
  hook.toleranceS = rs.getInt64(4);
  hook.options = decodeOptions(column(rs, 5));
  hook.tokenHash = column(rs, 6);
  hook.createdAtMs = rs.getInt64(7);
  return hook;
}

bool isForwardable(Verdict verdict, int64_t replayOf) {
  return verdict != Verdict::kInvalid || replayOf != 0;
}

/// One event waiting for the writer. The caller's thread waits until `done`.
struct AppendJob {
  EventRecord* event = nullptr;
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
      auto& statement = c.prepare(
          "INSERT INTO hooks (id, provider, secret, tolerance_s, options, token_hash, "
          "created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
      statement.setString(1, hook.id);
      statement.setString(2, hook.provider);
      statement.setString(3, hook.secret);
      statement.setInt64(4, hook.toleranceS);
      statement.setString(5, encodeOptions(hook.options));
      statement.setString(6, hook.tokenHash);
      statement.setInt64(7, hook.createdAtMs);
      try {
        statement.executeUpdate();
      } catch (const sql::SQLException& e) {
        if (e.getErrorCode() == 1062) throw StoreError("hook " + hook.id + " exists already");
        throw;
      }
      return 0;
    });
  }

  std::optional<HookRecord> findHook(const std::string& hookId) {
    {
      std::lock_guard<std::mutex> lock(hookMu_);
      auto it = hooks_.find(hookId);
      if (it != hooks_.end()) return it->second;
    }
    auto hook = withConnection("find hook", true, [&](Connection& c) {
      auto& statement = c.prepare(
          "SELECT id, provider, secret, tolerance_s, options, token_hash, created_at_ms "
          "FROM hooks WHERE id = ?");
      statement.setString(1, hookId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::optional<HookRecord> found;
      if (rs->next()) found = readHook(*rs);
      return found;
    });

    // Only hooks that exist are cached: one created later on another edge must be found.
    if (hook) {
      std::lock_guard<std::mutex> lock(hookMu_);
      if (hooks_.size() < options_.maxCachedHooks) hooks_.emplace(hookId, *hook);
    }
    return hook;
  }

  // --- events ---

  int64_t appendEvent(EventRecord event) {
    event.bodySize = static_cast<int64_t>(event.body.size());
    if (!findHook(event.hookId)) throw StoreError("unknown hook " + event.hookId);

    AppendJob job;
    job.event = &event;
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
                       " FROM events WHERE hook_id = ? AND id > ? AND id <= ?" +
                       (forwardableOnly ? " AND (verdict <> 2 OR replay_of <> 0)" : "") +
                       " ORDER BY id LIMIT ?";
    return withConnection("list events", true, [&](Connection& c) {
      auto& statement = c.prepare(text);
      statement.setString(1, hookId);
      statement.setInt64(2, afterId);
      statement.setInt64(3, upTo);
      statement.setInt64(4, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<EventRecord> rows;
      while (rs->next()) rows.push_back(readEvent(*rs, withBodies));
      return rows;
    });
  }

  std::optional<EventRecord> getEvent(const std::string& hookId, int64_t eventId) {
    return withConnection("get event", true, [&](Connection& c) {
      auto& statement = c.prepare(std::string("SELECT ") + kEventColumns +
                                  ", body FROM events WHERE hook_id = ? AND id = ?");
      statement.setString(1, hookId);
      statement.setInt64(2, eventId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::optional<EventRecord> found;
      if (rs->next()) found = readEvent(*rs, true);
      return found;
    });
  }

  // --- deliveries ---

  void addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    if (deliveries.empty()) return;
    withConnection("store delivery report", false, [&](Connection& c) {
      auto& statement = c.prepare(
          "INSERT INTO deliveries (event_id, relay_id, status, duration_ms, error, "
          "reported_at_ms) VALUES (?, ?, ?, ?, ?, ?)");
      c.begin();
      try {
        for (const auto& delivery : deliveries) {
          statement.setInt64(1, delivery.eventId);
          statement.setString(2, delivery.relayId);
          statement.setInt(3, delivery.status);
          statement.setInt64(4, delivery.durationMs);
          statement.setString(5, delivery.error);
          statement.setInt64(6, delivery.reportedAtMs);
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
    return withConnection("list deliveries", true, [&](Connection& c) {
      auto& statement = c.prepare(
          "SELECT event_id, relay_id, status, duration_ms, error, reported_at_ms "
          "FROM deliveries WHERE event_id = ? ORDER BY id");
      statement.setInt64(1, eventId);
      std::unique_ptr<sql::ResultSet> rs(statement.executeQuery());
      std::vector<DeliveryRecord> rows;
      while (rs->next()) {
        DeliveryRecord delivery;
        delivery.eventId = rs->getInt64(1);
        delivery.relayId = column(*rs, 2);
        delivery.status = rs->getInt(3);
        delivery.durationMs = rs->getInt64(4);
        delivery.error = column(*rs, 5);
        delivery.reportedAtMs = rs->getInt64(6);
        rows.push_back(std::move(delivery));
      }
      return rows;
    });
  }

  void setNoticeListener(std::function<void(const EventNotice&)> listener) {
    std::lock_guard<std::mutex> lock(listenerMu_);
    listener_ = std::move(listener);
  }

  int64_t maxPacketBytes() const { return maxPacketBytes_; }

  MySqlStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    MySqlStats copy = stats_;
    copy.visibleThrough = visibleThrough_;
    return copy;
  }

 private:
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
        "UPDATE sequences SET value = value WHERE 0",
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
      for (const char* text : migration.statements) c.execute(text);
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
          const size_t size = job->event->body.size();
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
    constexpr int kParameters = 15;
    const size_t rows = batch.size();
    std::string text =
        "INSERT INTO events (id, hook_id, received_at_ms, method, path_suffix, raw_query, headers, "
        "body_size, verdict, reason, reason_message, event_type, delivery_id, replay_of, "
        "write_token, body) VALUES ";
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
      const EventRecord& e = *batch[r]->event;
      const unsigned base = static_cast<unsigned>(r * kParameters);
      statement.setString(base + 1, e.hookId);
      statement.setInt64(base + 2, e.receivedAtMs);
      statement.setString(base + 3, e.method);
      statement.setString(base + 4, e.pathSuffix);
      statement.setString(base + 5, e.rawQuery);
      headers.push_back(std::make_unique<std::istringstream>(encodeHeaders(e.headers)));
      statement.setBlob(base + 6, headers.back().get());
      statement.setInt64(base + 7, e.bodySize);
      statement.setInt(base + 8, static_cast<int32_t>(e.verdict));
      statement.setInt(base + 9, e.reason);
      statement.setString(base + 10, e.reasonMessage);
      statement.setString(base + 11, e.eventType);
      statement.setString(base + 12, e.deliveryId);
      statement.setInt64(base + 13, e.replayOf);
      statement.setString(base + 14, batch[r]->writeToken);
      bodies.push_back(std::make_unique<std::istringstream>(e.body));
      statement.setBlob(base + 15, bodies.back().get());
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

  std::mutex hookMu_;
  std::unordered_map<std::string, HookRecord> hooks_;
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

MySqlStats MySqlStore::stats() const { return impl_->stats(); }

int64_t MySqlStore::maxPacketBytes() const { return impl_->maxPacketBytes(); }

}  // namespace anm::store
