// core/store/sqlite_store.cpp: SQLite event store with one group-committing writer thread.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sqlite_store.h"

#include <Poco/Data/LOB.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <fcntl.h>
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
#include <utility>

#include "core/store/field_codec.h"
#include "core/store/migration.h"

namespace anm::store {

using Poco::Data::BLOB;
using Poco::Data::Session;
using Poco::Data::Statement;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace {

Poco::Logger& logger() { return Poco::Logger::get("anm.store"); }

std::string fromBlob(const BLOB& blob) {
  if (blob.size() == 0) return std::string();
  return std::string(reinterpret_cast<const char*>(blob.rawContent()), blob.size());
}

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

/// The columns of an event row, read as whole columns at once.
struct EventColumns {
  std::vector<Poco::Int64> id, receivedAtMs, bodySize, replayOf;
  std::vector<Poco::Int32> verdict, reason;
  std::vector<std::string> hookId, method;
  std::vector<BLOB> pathSuffix, rawQuery, headers, reasonMessage, eventType, deliveryId, body;
};

constexpr const char* kEventColumns =
    "id, hook_id, received_at_ms, method, path_suffix, raw_query, headers, body_size, verdict, "
    "reason, reason_message, event_type, delivery_id, replay_of";

Verdict verdictFromDb(Poco::Int32 value, int64_t eventId) {
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

std::vector<EventRecord> rowsToEvents(EventColumns& c, bool withBodies) {
  std::vector<EventRecord> events;
  events.reserve(c.id.size());
  for (size_t i = 0; i < c.id.size(); ++i) {
    EventRecord e;
    e.id = c.id[i];
    e.hookId = std::move(c.hookId[i]);
    e.receivedAtMs = c.receivedAtMs[i];
    e.method = std::move(c.method[i]);
    e.pathSuffix = fromBlob(c.pathSuffix[i]);
    e.rawQuery = fromBlob(c.rawQuery[i]);
    e.headers = decodeHeaders(fromBlob(c.headers[i]));
    e.bodySize = c.bodySize[i];
    e.verdict = verdictFromDb(c.verdict[i], e.id);
    e.reason = c.reason[i];
    e.reasonMessage = fromBlob(c.reasonMessage[i]);
    e.eventType = fromBlob(c.eventType[i]);
    e.deliveryId = fromBlob(c.deliveryId[i]);
    e.replayOf = c.replayOf[i];
    if (withBodies) e.body = fromBlob(c.body[i]);
    events.push_back(std::move(e));
  }
  return events;
}

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

bool isConstraint(int rc) { return (rc & 0xff) == SQLITE_CONSTRAINT; }

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
    enum class Kind { kEvent, kHook, kDeliveries };

    Kind kind = Kind::kEvent;
    EventRecord event;
    HookRecord hook;
    std::vector<DeliveryRecord> deliveries;
    size_t bytes = 0;  ///< payload counted against maxBatchBytes

    // Filled by the writer.
    int64_t id = 0;
    std::string error;  ///< this write alone failed (the rest of its batch is fine)
    std::promise<int64_t> done;
  };

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
    std::shared_lock<std::shared_mutex> lock(hooksMutex_);
    auto it = hooks_.find(hookId);
    if (it == hooks_.end()) return std::nullopt;
    ++hookCacheHits_;
    return it->second;
  }

  void cacheHook(const HookRecord& hook) {
    std::unique_lock<std::shared_mutex> lock(hooksMutex_);
    if (hooks_.size() >= options_.maxCachedHooks) return;
    hooks_.emplace(hook.id, hook);
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

  int64_t maxEventId() {
    Poco::Int64 id = 0;
    *writer_ << "SELECT COALESCE(MAX(id), 0) FROM events", into(id), now;
    return id;
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
    insertHook_.reset();
    insertDelivery_.reset();
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
        "body_size, verdict, reason, reason_message, event_type, delivery_id, replay_of, body) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
    insertHook_ = std::make_unique<RawStatement>(
        db_,
        "INSERT INTO hooks (id, provider, secret, tolerance_s, options, token_hash, "
        "created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    insertDelivery_ = std::make_unique<RawStatement>(
        db_,
        "INSERT INTO deliveries (event_id, relay_id, status, duration_ms, error, "
        "reported_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
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
    } catch (const StoreError& e) {
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
      case Job::Kind::kHook:
        violation = writeHook(job.hook);
        break;
      case Job::Kind::kDeliveries:
        violation = writeDeliveries(job.deliveries);
        break;
    }
    if (!violation.empty()) job.error = describeConstraint(job) + ": " + violation;
  }

  static std::string describeConstraint(const Job& job) {
    switch (job.kind) {
      case Job::Kind::kEvent:
        return "could not store event hook=" + job.event.hookId;
      case Job::Kind::kHook:
        return "could not create hook " + job.hook.id;
      case Job::Kind::kDeliveries:
        return "could not store delivery reports";
    }
    return "could not store";
  }

  /// The write functions return "" or, when a constraint refused the write, SQLite's message.
  std::string writeEvent(Job& job) {
    EventRecord& e = job.event;
    e.bodySize = static_cast<int64_t>(e.body.size());
    headersBuffer_ = encodeHeaders(e.headers);

    sqlite3_stmt* st = insertEvent_->get();
    bindText(st, 1, e.hookId);
    sqlite3_bind_int64(st, 2, e.receivedAtMs);
    bindText(st, 3, e.method);
    bindBlob(st, 4, e.pathSuffix);
    bindBlob(st, 5, e.rawQuery);
    bindBlob(st, 6, headersBuffer_);
    sqlite3_bind_int64(st, 7, e.bodySize);
    sqlite3_bind_int(st, 8, static_cast<int32_t>(e.verdict));
    sqlite3_bind_int(st, 9, e.reason);
    bindBlob(st, 10, e.reasonMessage);
    bindBlob(st, 11, e.eventType);
    bindBlob(st, 12, e.deliveryId);
    sqlite3_bind_int64(st, 13, e.replayOf);
    bindBlob(st, 14, e.body);
    if (stepWrite(*insertEvent_) != SQLITE_OK) return sqlite3_errmsg(db_);

    job.id = sqlite3_last_insert_rowid(db_);
    e.id = job.id;
    return std::string();
  }

  std::string writeHook(const HookRecord& h) {
    const std::string options = encodeOptions(h.options);
    sqlite3_stmt* st = insertHook_->get();
    bindText(st, 1, h.id);
    bindText(st, 2, h.provider);
    bindBlob(st, 3, h.secret);
    sqlite3_bind_int64(st, 4, h.toleranceS);
    bindBlob(st, 5, options);
    bindText(st, 6, h.tokenHash);
    sqlite3_bind_int64(st, 7, h.createdAtMs);
    if (stepWrite(*insertHook_) != SQLITE_OK) return sqlite3_errmsg(db_);
    return std::string();
  }

  /// All reports of one request or none: a savepoint undoes the ones already written when a
  /// later one fails.
  std::string writeDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    stepOrThrow(*savepoint_);
    for (const auto& d : deliveries) {
      sqlite3_stmt* st = insertDelivery_->get();
      sqlite3_bind_int64(st, 1, d.eventId);
      bindBlob(st, 2, d.relayId);
      sqlite3_bind_int(st, 3, d.status);
      sqlite3_bind_int64(st, 4, d.durationMs);
      bindBlob(st, 5, d.error);
      sqlite3_bind_int64(st, 6, d.reportedAtMs);
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
  std::unique_ptr<RawStatement> begin_, commit_, insertEvent_, insertHook_, insertDelivery_;
  std::unique_ptr<RawStatement> savepoint_, releaseSavepoint_, rollbackSavepoint_;
  std::string headersBuffer_;
  int walFrames_ = 0;  // set by the WAL hook during the writer's commits

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

  mutable std::shared_mutex hooksMutex_;
  std::unordered_map<std::string, HookRecord> hooks_;
  std::atomic<uint64_t> hookCacheHits_{0};
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

void SqliteStore::createHook(const HookRecord& hook) {
  auto job = std::make_unique<Impl::Job>();
  job->kind = Impl::Job::Kind::kHook;
  job->hook = hook;
  impl_->submit(std::move(job));
}

int64_t SqliteStore::appendEvent(EventRecord event) {
  auto job = std::make_unique<Impl::Job>();
  job->kind = Impl::Job::Kind::kEvent;
  job->bytes = event.body.size();
  for (const auto& header : event.headers) job->bytes += header.name.size() + header.value.size();
  job->event = std::move(event);
  return impl_->submit(std::move(job));
}

void SqliteStore::addDelivery(const DeliveryRecord& delivery) { addDeliveries({delivery}); }

void SqliteStore::addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
  if (deliveries.empty()) return;
  auto job = std::make_unique<Impl::Job>();
  job->kind = Impl::Job::Kind::kDeliveries;
  job->deliveries = deliveries;
  impl_->submit(std::move(job));
}

void SqliteStore::setCommitListener(std::function<void(const EventRecord&)> listener) {
  impl_->setCommitListener(std::move(listener));
}

WriterStats SqliteStore::writerStats() const { return impl_->stats(); }

ReadStats SqliteStore::readStats() const { return impl_->readStats(); }

std::optional<HookRecord> SqliteStore::findHook(const std::string& hookId) {
  // Every ingest request looks its hook up; a hook, once created, never changes.
  if (auto cached = impl_->cachedHook(hookId)) return cached;

  auto found = impl_->read("hook", [&](Session& s) -> std::optional<HookRecord> {
    std::string id = hookId;
    std::vector<std::string> provider, tokenHash;
    std::vector<BLOB> secret, options;
    std::vector<Poco::Int64> toleranceS, createdAtMs;
    s << "SELECT provider, secret, tolerance_s, options, token_hash, created_at_ms "
         "FROM hooks WHERE id = ?",
        use(id), into(provider), into(secret), into(toleranceS), into(options), into(tokenHash),
        into(createdAtMs), now;
    if (provider.empty()) return std::nullopt;

    HookRecord hook;
    hook.id = hookId;
    hook.provider = provider[0];
    hook.secret = fromBlob(secret[0]);
    hook.toleranceS = toleranceS[0];
    hook.options = decodeOptions(fromBlob(options[0]));
    hook.tokenHash = tokenHash[0];
    hook.createdAtMs = createdAtMs[0];
    return hook;
  });
  if (found) impl_->cacheHook(*found);
  return found;
}

std::vector<EventRecord> SqliteStore::listEvents(const std::string& hookId, int64_t afterId,
                                                 size_t limit, bool withBodies,
                                                 bool forwardableOnly) {
  if (limit == 0) return {};
  return impl_->read("events", [&](Session& s) {
    std::string sql = std::string("SELECT ") + kEventColumns + (withBodies ? ", body" : "") +
                      " FROM events WHERE hook_id = ? AND id > ? AND id <= ?";
    if (forwardableOnly) {
      sql += " AND (verdict <> " + std::to_string(static_cast<int32_t>(Verdict::kInvalid)) +
             " OR replay_of <> 0)";
    }
    sql += " ORDER BY id LIMIT ?";

    std::string id = hookId;
    Poco::Int64 after = afterId;
    Poco::Int64 durable = impl_->durableId();
    auto max = static_cast<size_t>(std::numeric_limits<Poco::Int64>::max());
    Poco::Int64 count = static_cast<Poco::Int64>(std::min(limit, max));
    EventColumns c;
    Statement statement(s);
    statement << sql, use(id), use(after), use(durable), use(count), into(c.id), into(c.hookId),
        into(c.receivedAtMs), into(c.method), into(c.pathSuffix), into(c.rawQuery), into(c.headers),
        into(c.bodySize), into(c.verdict), into(c.reason), into(c.reasonMessage), into(c.eventType),
        into(c.deliveryId), into(c.replayOf);
    if (withBodies) statement.addExtract(into(c.body));
    statement.execute();
    return rowsToEvents(c, withBodies);
  });
}

std::optional<EventRecord> SqliteStore::getEvent(const std::string& hookId, int64_t eventId) {
  return impl_->read("event", [&](Session& s) -> std::optional<EventRecord> {
    std::string id = hookId;
    Poco::Int64 event = eventId;
    Poco::Int64 durable = impl_->durableId();
    EventColumns c;
    s << std::string("SELECT ") + kEventColumns +
             ", body FROM events WHERE hook_id = ? AND id = ? AND id <= ?",
        use(id), use(event), use(durable), into(c.id), into(c.hookId), into(c.receivedAtMs),
        into(c.method), into(c.pathSuffix), into(c.rawQuery), into(c.headers), into(c.bodySize),
        into(c.verdict), into(c.reason), into(c.reasonMessage), into(c.eventType),
        into(c.deliveryId), into(c.replayOf), into(c.body), now;
    auto events = rowsToEvents(c, true);
    if (events.empty()) return std::nullopt;
    return std::move(events[0]);
  });
}

std::vector<DeliveryRecord> SqliteStore::listDeliveries(int64_t eventId) {
  return impl_->read("deliveries", [&](Session& s) {
    Poco::Int64 event = eventId;
    std::vector<BLOB> relayId, error;
    std::vector<Poco::Int32> status;
    std::vector<Poco::Int64> durationMs, reportedAtMs;
    s << "SELECT relay_id, status, duration_ms, error, reported_at_ms FROM deliveries "
         "WHERE event_id = ? ORDER BY id",
        use(event), into(relayId), into(status), into(durationMs), into(error), into(reportedAtMs),
        now;

    std::vector<DeliveryRecord> deliveries;
    for (size_t i = 0; i < relayId.size(); ++i) {
      DeliveryRecord d;
      d.eventId = eventId;
      d.relayId = fromBlob(relayId[i]);
      d.status = status[i];
      d.durationMs = durationMs[i];
      d.error = fromBlob(error[i]);
      d.reportedAtMs = reportedAtMs[i];
      deliveries.push_back(std::move(d));
    }
    return deliveries;
  });
}

std::unique_ptr<Store> openSqliteStore(const std::string& path) { return SqliteStore::open(path); }

}  // namespace anm::store
