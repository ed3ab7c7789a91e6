// core/store/sqlite_store.cpp: SQLite event store with one group-committing writer thread.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sqlite_store.h"

#include <Poco/Data/LOB.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/SQLiteException.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include "core/store/field_codec.h"

namespace anm::store {

using Poco::Data::BLOB;
using Poco::Data::Session;
using Poco::Data::Statement;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace {

Poco::Logger& logger() { return Poco::Logger::get("anm.store"); }

BLOB toBlob(std::string_view bytes) {
  BLOB blob;
  if (!bytes.empty()) {
    blob.assignRaw(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  }
  return blob;
}

std::string fromBlob(const BLOB& blob) {
  if (blob.size() == 0) return std::string();
  return std::string(reinterpret_cast<const char*>(blob.rawContent()), blob.size());
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// One numbered step of the schema. Steps are applied in order, each once, and never edited
/// after release: a change is a new step.
struct Migration {
  int64_t version;
  const char* description;
  std::vector<const char*> statements;
};

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

}  // namespace

class SqliteStore::Impl {
 public:
  Impl(std::string path, SqliteOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}

  ~Impl() { stop(); }

  /// Opens the writer session, migrates, prepares the writer's statements and starts it.
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
      prepareWriterStatements();
    } catch (const Poco::Exception& e) {
      throw StoreError("could not open store path=" + path_ + ": " + e.displayText());
    }

    thread_ = std::thread([this] { writerLoop(); });
  }

  /// Drains the queue: the writer only leaves its loop once nothing is queued.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    queueCv_.notify_all();
    if (thread_.joinable()) thread_.join();
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

    // get() rethrows the StoreError the writer set when the write was not committed.
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

  /// Drops the prepared statements. A POCO statement whose execution failed stays "still
  /// executing" and refuses to run again, so after any failure the writer prepares afresh.
  void dropWriterStatements() {
    begin_.reset();
    commit_.reset();
    insertEvent_.reset();
    insertHook_.reset();
    insertDelivery_.reset();
  }

  void prepareWriterStatements() {
    dropWriterStatements();
    Session& s = *writer_;
    begin_ = std::make_unique<Statement>((s << "BEGIN IMMEDIATE"));
    commit_ = std::make_unique<Statement>((s << "COMMIT"));

    // COALESCE: POCO binds an empty BLOB as NULL, and an empty value is still a value.
    insertEvent_ = std::make_unique<Statement>(
        (s << "INSERT INTO events (hook_id, received_at_ms, method, path_suffix, raw_query, "
              "headers, body_size, verdict, reason, reason_message, event_type, delivery_id, "
              "replay_of, body) VALUES (?, ?, ?, COALESCE(?, X''), COALESCE(?, X''), "
              "COALESCE(?, X''), ?, ?, ?, COALESCE(?, X''), COALESCE(?, X''), COALESCE(?, X''), "
              "?, COALESCE(?, X'')) RETURNING id",
         use(ev_.hookId), use(ev_.receivedAtMs), use(ev_.method), use(ev_.pathSuffix),
         use(ev_.rawQuery), use(ev_.headers), use(ev_.bodySize), use(ev_.verdict), use(ev_.reason),
         use(ev_.reasonMessage), use(ev_.eventType), use(ev_.deliveryId), use(ev_.replayOf),
         use(ev_.body), into(ev_.id)));

    insertHook_ = std::make_unique<Statement>(
        (s << "INSERT INTO hooks (id, provider, secret, tolerance_s, options, token_hash, "
              "created_at_ms) VALUES (?, ?, COALESCE(?, X''), ?, COALESCE(?, X''), ?, ?)",
         use(hk_.id), use(hk_.provider), use(hk_.secret), use(hk_.toleranceS), use(hk_.options),
         use(hk_.tokenHash), use(hk_.createdAtMs)));

    insertDelivery_ = std::make_unique<Statement>(
        (s << "INSERT INTO deliveries (event_id, relay_id, status, duration_ms, error, "
              "reported_at_ms) VALUES (?, COALESCE(?, X''), ?, ?, COALESCE(?, X''), ?)",
         use(dl_.eventId), use(dl_.relayId), use(dl_.status), use(dl_.durationMs), use(dl_.error),
         use(dl_.reportedAtMs)));
  }

  void writerLoop() {
    for (;;) {
      std::vector<std::unique_ptr<Job>> batch;
      size_t bytes = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        queueCv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;

        // Take what is queued, within the limits; the first write always goes, however big.
        while (!queue_.empty() && batch.size() < options_.maxBatchJobs) {
          size_t next = queue_.front()->bytes;
          if (!batch.empty() && bytes + next > options_.maxBatchBytes) break;
          bytes += next;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      runBatch(batch, bytes);
    }
  }

  void runBatch(std::vector<std::unique_ptr<Job>>& batch, size_t bytes) {
    // Write everything in one transaction, so that one fsync covers the whole batch.
    std::string fatal;
    try {
      if (!begin_) prepareWriterStatements();
      begin_->execute();
      for (auto& job : batch) runJob(*job);
      commit_->execute();
    } catch (const Poco::Exception& e) {
      fatal = e.displayText();
    } catch (const std::exception& e) {
      fatal = e.what();
    }

    // A failed write or commit undoes the whole batch: nobody may hear of an id that is not
    // on disk.
    if (!fatal.empty()) {
      dropWriterStatements();
      rollbackQuietly();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.failedBatches;
      }
      logger().error("could not commit writes count=%z error=\"%s\"", batch.size(), fatal);
      for (auto& job : batch) {
        job->done.set_exception(std::make_exception_ptr(StoreError("could not store: " + fatal)));
      }
      return;
    }

    uint64_t events = 0;
    for (const auto& job : batch) {
      if (job->kind == Job::Kind::kEvent && job->error.empty()) ++events;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.commits;
      stats_.eventsStored += events;
      stats_.largestBatchJobs = std::max(stats_.largestBatchJobs, batch.size());
      stats_.largestBatchBytes = std::max(stats_.largestBatchBytes, bytes);
    }

    // Tell the listener before the waiters return, so that whoever hears of an id from
    // appendEvent can rely on the listener having seen it.
    notifyListener(batch);

    for (auto& job : batch) {
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
  /// the transaction goes on. Anything else propagates and fails the batch.
  void runJob(Job& job) {
    try {
      switch (job.kind) {
        case Job::Kind::kEvent:
          writeEvent(job);
          return;
        case Job::Kind::kHook:
          writeHook(job.hook);
          return;
        case Job::Kind::kDeliveries:
          writeDeliveries(job.deliveries);
          return;
      }
    } catch (const Poco::Data::SQLite::ConstraintViolationException& e) {
      job.error = describeConstraint(job) + ": " + e.displayText();
      if (job.kind != Job::Kind::kDeliveries) prepareWriterStatements();
    } catch (const StoreError& e) {
      job.error = e.what();
    }
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

  void writeEvent(Job& job) {
    const EventRecord& e = job.event;
    ev_.hookId = e.hookId;
    ev_.receivedAtMs = e.receivedAtMs;
    ev_.method = e.method;
    ev_.pathSuffix = toBlob(e.pathSuffix);
    ev_.rawQuery = toBlob(e.rawQuery);
    ev_.headers = toBlob(encodeHeaders(e.headers));
    ev_.bodySize = static_cast<Poco::Int64>(e.body.size());
    ev_.verdict = static_cast<Poco::Int32>(e.verdict);
    ev_.reason = e.reason;
    ev_.reasonMessage = toBlob(e.reasonMessage);
    ev_.eventType = toBlob(e.eventType);
    ev_.deliveryId = toBlob(e.deliveryId);
    ev_.replayOf = e.replayOf;
    ev_.body = toBlob(e.body);
    ev_.id = 0;
    insertEvent_->execute();

    // Drop the copy of a large body now rather than at the next write.
    ev_.body = BLOB();

    if (ev_.id <= 0) throw StoreError("could not store event: no id returned");
    job.id = ev_.id;
    job.event.id = ev_.id;
    job.event.bodySize = ev_.bodySize;
  }

  void writeHook(const HookRecord& h) {
    hk_.id = h.id;
    hk_.provider = h.provider;
    hk_.secret = toBlob(h.secret);
    hk_.toleranceS = h.toleranceS;
    hk_.options = toBlob(encodeOptions(h.options));
    hk_.tokenHash = h.tokenHash;
    hk_.createdAtMs = h.createdAtMs;
    insertHook_->execute();
  }

  /// All reports of one request or none: a savepoint undoes the ones already written when a
  /// later one fails.
  void writeDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    Session& s = *writer_;
    s << "SAVEPOINT deliveries", now;
    try {
      for (const auto& d : deliveries) {
        dl_.eventId = d.eventId;
        dl_.relayId = toBlob(d.relayId);
        dl_.status = d.status;
        dl_.durationMs = d.durationMs;
        dl_.error = toBlob(d.error);
        dl_.reportedAtMs = d.reportedAtMs;
        insertDelivery_->execute();
      }
    } catch (const Poco::Data::SQLite::ConstraintViolationException&) {
      prepareWriterStatements();
      s << "ROLLBACK TO deliveries", now;
      s << "RELEASE deliveries", now;
      throw;
    }
    s << "RELEASE deliveries", now;
  }

  void rollbackQuietly() {
    try {
      *writer_ << "ROLLBACK", now;
    } catch (const Poco::Exception&) {
      // Nothing to undo: SQLite already rolled back, or no transaction was open.
    }
  }

  const std::string path_;
  const SqliteOptions options_;

  std::unique_ptr<Session> writer_;  // used by the writer thread only (and start() before it)
  std::unique_ptr<Statement> begin_, commit_, insertEvent_, insertHook_, insertDelivery_;

  // Values the prepared statements are bound to; POCO binds them by reference.
  struct {
    std::string hookId, method;
    Poco::Int64 receivedAtMs = 0, bodySize = 0, replayOf = 0, id = 0;
    Poco::Int32 verdict = 0, reason = 0;
    BLOB pathSuffix, rawQuery, headers, reasonMessage, eventType, deliveryId, body;
  } ev_;
  struct {
    std::string id, provider, tokenHash;
    BLOB secret, options;
    Poco::Int64 toleranceS = 0, createdAtMs = 0;
  } hk_;
  struct {
    Poco::Int64 eventId = 0, durationMs = 0, reportedAtMs = 0;
    Poco::Int32 status = 0;
    BLOB relayId, error;
  } dl_;

  mutable std::mutex mutex_;  // guards queue_, stopping_, stats_
  std::condition_variable queueCv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  WriterStats stats_;
  std::thread thread_;

  std::mutex listenerMutex_;
  std::function<void(const EventRecord&)> listener_;

  std::mutex readersMutex_;
  std::vector<std::unique_ptr<Session>> idleReaders_;
};

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& path,
                                               const SqliteOptions& options) {
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

std::optional<HookRecord> SqliteStore::findHook(const std::string& hookId) {
  return impl_->read("hook", [&](Session& s) -> std::optional<HookRecord> {
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
}

std::vector<EventRecord> SqliteStore::listEvents(const std::string& hookId, int64_t afterId,
                                                 size_t limit, bool withBodies,
                                                 bool forwardableOnly) {
  if (limit == 0) return {};
  return impl_->read("events", [&](Session& s) {
    std::string sql = std::string("SELECT ") + kEventColumns + (withBodies ? ", body" : "") +
                      " FROM events WHERE hook_id = ? AND id > ?";
    if (forwardableOnly) {
      sql += " AND (verdict <> " + std::to_string(static_cast<int32_t>(Verdict::kInvalid)) +
             " OR replay_of <> 0)";
    }
    sql += " ORDER BY id LIMIT ?";

    std::string id = hookId;
    Poco::Int64 after = afterId;
    auto max = static_cast<size_t>(std::numeric_limits<Poco::Int64>::max());
    Poco::Int64 count = static_cast<Poco::Int64>(std::min(limit, max));
    EventColumns c;
    Statement statement(s);
    statement << sql, use(id), use(after), use(count), into(c.id), into(c.hookId),
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
    EventColumns c;
    s << std::string("SELECT ") + kEventColumns + ", body FROM events WHERE hook_id = ? AND id = ?",
        use(id), use(event), into(c.id), into(c.hookId), into(c.receivedAtMs), into(c.method),
        into(c.pathSuffix), into(c.rawQuery), into(c.headers), into(c.bodySize), into(c.verdict),
        into(c.reason), into(c.reasonMessage), into(c.eventType), into(c.deliveryId),
        into(c.replayOf), into(c.body), now;
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
