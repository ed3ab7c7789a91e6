// tests/unit/store/sqlite_store_test.cpp: the Store suite on SQLite, plus SQLite-only cases.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sqlite_store.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/store/field_codec.h"
#include "tests/unit/store/store_suite.h"

namespace anm::store::test {
namespace {

using Poco::Data::Session;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

std::string dbPath(TempDir& dir) { return dir.file("store.db"); }

/// A session of our own on the store's file, as another process would have.
Session rawSession(TempDir& dir) {
  Poco::Data::SQLite::Connector::registerConnector();
  return Session("SQLite", dbPath(dir));
}

/// Writes fail with EFBIG once a file would grow past one byte: it needs no privileges and
/// stops root as well (permissions do not), and only this test process is affected.
std::function<void()> limitFileSize(TempDir&) {
  rlimit old{};
  if (getrlimit(RLIMIT_FSIZE, &old) != 0) throw std::runtime_error("getrlimit failed");
  signal(SIGXFSZ, SIG_IGN);
  rlimit tight = old;
  tight.rlim_cur = 1;
  if (setrlimit(RLIMIT_FSIZE, &tight) != 0) throw std::runtime_error("setrlimit failed");
  return [old] { setrlimit(RLIMIT_FSIZE, &old); };
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// The database with its WAL and shared-memory index: everything SQLite keeps on disk.
std::string rawBytesOf(TempDir& dir) {
  return readFile(dbPath(dir)) + readFile(dbPath(dir) + "-wal") + readFile(dbPath(dir) + "-shm");
}

/// Flips a byte of the ciphertext in `column` of the row of `table` whose `key` is `rowId`.
void flipCiphertextByte(TempDir& dir, const std::string& table, const std::string& key,
                        int64_t rowId, const std::string& column) {
  Session session = rawSession(dir);
  session << "PRAGMA busy_timeout = 5000", now;
  Poco::Data::BLOB stored;
  Poco::Int64 id = rowId;
  session << "SELECT " + column + " FROM " + table + " WHERE " + key + " = ?", use(id),
      into(stored), now;
  std::vector<unsigned char> bytes(stored.content());
  if (bytes.size() <= 12) throw std::runtime_error("no ciphertext to corrupt in " + column);

  // Past the 12-byte nonce: in the ciphertext proper, or in the tag of an empty value.
  bytes[12 + (bytes.size() - 12) / 2] ^= 0x20;
  Poco::Data::BLOB changed(bytes);
  session << "UPDATE " + table + " SET " + column + " = ? WHERE " + key + " = ?", use(changed),
      use(id), now;
}

void flipEventCiphertextByte(TempDir& dir, int64_t eventId, const std::string& column) {
  flipCiphertextByte(dir, "events", "id", eventId, column);
}

void flipDeliveryCiphertextByte(TempDir& dir, int64_t eventId, const std::string& column) {
  Poco::Int64 first = 0;
  {
    Session session = rawSession(dir);
    Poco::Int64 event = eventId;
    session << "SELECT MIN(id) FROM deliveries WHERE event_id = ?", use(event), into(first), now;
  }
  flipCiphertextByte(dir, "deliveries", "id", first, column);
}

/// Drops what the schemas after 3 added and their records, as a build of schema 3 left the file.
void revertToSchemaThree(Session& session) {
  session << "DROP INDEX events_by_replay_of", now;
  session << "DROP TABLE modified_events", now;
  for (const char* column : {"phase", "timeout_ms", "target_https", "started_at_ms",
                             "response_excerpt", "location", "sealed"}) {
    session << std::string("ALTER TABLE deliveries DROP COLUMN ") + column, now;
  }
  session << "DROP TABLE ended_sessions", now;
  session << "DELETE FROM schema_migrations WHERE version >= 4", now;
}

void flipWrappedKeyByte(TempDir& dir, int64_t eventId) {
  Session session = rawSession(dir);
  session << "PRAGMA busy_timeout = 5000", now;
  Poco::Int64 id = eventId;
  session << "UPDATE event_keys SET wrapped_key = substr(wrapped_key, 1, 20) || "
             "(CASE WHEN substr(wrapped_key, 21, 1) = x'5a' THEN x'a5' ELSE x'5a' END) || "
             "substr(wrapped_key, 22) WHERE event_id = ?",
      use(id), now;
}

/// Tries to change and to remove an audit entry behind the store's back.
bool auditRefuses(TempDir& dir) {
  Session session = rawSession(dir);
  Poco::Int64 before = 0;
  session << "SELECT COUNT(*) FROM audit", into(before), now;
  bool updateRefused = false;
  bool deleteRefused = false;
  try {
    session << "UPDATE audit SET detail = x'00'", now;
  } catch (const Poco::Exception&) {
    updateRefused = true;
  }
  try {
    session << "DELETE FROM audit", now;
  } catch (const Poco::Exception&) {
    deleteRefused = true;
  }
  Poco::Int64 after = 0;
  session << "SELECT COUNT(*) FROM audit", into(after), now;
  return updateRefused && deleteRefused && before == after && before > 0;
}

StoreBackend sqliteBackend(const std::string& name, SqliteOptions::Sync sync) {
  StoreBackend backend;
  backend.name = name;
  backend.open = [sync](TempDir& dir) -> std::unique_ptr<Store> {
    SqliteOptions options;
    options.sync = sync;
    return SqliteStore::open(dbPath(dir), options);
  };
  backend.openWithKeys = [sync](TempDir& dir,
                                std::shared_ptr<crypto::KeyHolder> keys) -> std::unique_ptr<Store> {
    SqliteOptions options;
    options.sync = sync;
    options.keys = std::move(keys);
    return SqliteStore::open(dbPath(dir), options);
  };
  backend.rawBytes = rawBytesOf;
  backend.corruptEventCiphertext = flipEventCiphertextByte;
  backend.corruptEventWrappedKey = flipWrappedKeyByte;
  backend.corruptDeliveryCiphertext = flipDeliveryCiphertextByte;
  backend.revertToSchema3 = [](TempDir& dir) {
    Session session = rawSession(dir);
    revertToSchemaThree(session);
  };
  backend.auditRefusesChanges = auditRefuses;
  backend.schemaVersion = SqliteStore::kSchemaVersion;
  backend.markSchemaVersion = [](TempDir& dir, int64_t version) {
    Session session = rawSession(dir);
    session << "INSERT INTO schema_migrations (version, description, applied_at_ms) "
               "VALUES (?, 'from a newer build', 0)",
        use(version), now;
  };
  backend.failWrites = limitFileSize;
  return backend;
}

// Both ways of making commits durable must keep every promise of the suites.
auto sqliteBackends() {
  return ::testing::Values(sqliteBackend("sqlite", SqliteOptions::Sync::kOverlapped),
                           sqliteBackend("sqlite_in_commit", SqliteOptions::Sync::kInCommit));
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreSuite, sqliteBackends(), BackendName());
INSTANTIATE_TEST_SUITE_P(Sqlite, AccountSuite, sqliteBackends(), BackendName());

// The single writer hands each committed record to its listener (MySQL announces by notice).
INSTANTIATE_TEST_SUITE_P(Sqlite, CommitListenerSuite, sqliteBackends(), BackendName());

/// Holds or fails the store's WAL syncs on demand, in place of fdatasync.
class SyncGate {
 public:
  /// From now on syncs wait until release() (or fail, with failWith()).
  void hold() {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ = true;
  }

  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      held_ = false;
    }
    cv_.notify_all();
  }

  void failWith(int error) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
  }

  /// Blocks until a sync is waiting at the gate.
  void awaitWaiter() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return waiting_ > 0; });
  }

  std::function<int(int)> hook() {
    return [this](int fd) {
      std::unique_lock<std::mutex> lock(mutex_);
      ++waiting_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return !held_; });
      --waiting_;
      if (error_ != 0) return error_;
      return ::fdatasync(fd) == 0 ? 0 : errno;
    };
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool held_ = false;
  int waiting_ = 0;
  int error_ = 0;
};

/// The number a query of one value answers on a connection of our own.
Poco::Int64 rawInt(TempDir& dir, const std::string& query) {
  Session session = rawSession(dir);
  Poco::Int64 value = 0;
  session << query, into(value), now;
  return value;
}

/// Events committed to the file, durable or not, as another connection sees them.
Poco::Int64 committedEvents(TempDir& dir) { return rawInt(dir, "SELECT COUNT(*) FROM events"); }

Poco::Int64 schemaVersionOf(TempDir& dir) {
  return rawInt(dir, "SELECT MAX(version) FROM schema_migrations");
}

TEST(SqliteStore, PathInMissingDirectoryIsRefused) {
  TempDir dir;
  try {
    openSqliteStore(dir.file("no/such/dir/store.db"));
    FAIL() << "opened a store in a directory that does not exist";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/store.db"), std::string::npos) << e.what();
  }
}

TEST(SqliteStore, FileIsInWalModeWithSchemaRecorded) {
  TempDir dir;
  { openSqliteStore(dbPath(dir)); }

  Session session = rawSession(dir);
  std::string mode;
  session << "PRAGMA journal_mode", into(mode), now;
  EXPECT_EQ(mode, "wal");
  Poco::Int64 version = 0;
  session << "SELECT MAX(version) FROM schema_migrations", into(version), now;
  EXPECT_EQ(version, SqliteStore::kSchemaVersion);
}

TEST(SqliteStore, IdsAreNotReusedAfterTheNewestEventsAreDeleted) {
  TempDir dir;
  int64_t newest = 0;
  {
    auto store = openSqliteStore(dbPath(dir));
    store->createHook(makeHook("h"));
    store->appendEvent(makeEvent("h"));
    newest = store->appendEvent(makeEvent("h"));
  }
  {
    Session session = rawSession(dir);
    session << "DELETE FROM events WHERE id = ?", use(newest), now;
  }

  // A relay that saw `newest` resumes after it, so a new event must not take that id again.
  auto store = openSqliteStore(dbPath(dir));
  EXPECT_GT(store->appendEvent(makeEvent("h")), newest);
}

TEST(SqliteStore, BatchNeverExceedsTheJobLimit) {
  TempDir dir;
  SqliteOptions options;
  options.maxBatchJobs = 4;
  auto store = SqliteStore::open(dbPath(dir), options);
  store->createHook(makeHook("h"));

  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) store->appendEvent(makeEvent("h"));
    });
  }
  for (auto& thread : threads) thread.join();

  WriterStats stats = store->writerStats();
  EXPECT_LE(stats.largestBatchJobs, 4u);
  EXPECT_EQ(stats.eventsStored, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_GE(stats.commits, static_cast<uint64_t>(kThreads * kPerThread / 4));
  EXPECT_EQ(stats.failedBatches, 0u);
}

TEST(SqliteStore, BatchBytesStayWithinTheLimitAndALargerEventGoesAlone) {
  TempDir dir;
  SqliteOptions options;
  options.maxBatchBytes = 64 << 10;
  auto store = SqliteStore::open(dbPath(dir), options);
  store->createHook(makeHook("h"));

  // Events of 20 KiB: at most three fit in 64 KiB.
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) store->appendEvent(makeEvent("h", std::string(20 << 10, 'x')));
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(store->writerStats().largestBatchBytes, size_t{64} << 10);

  // One event above the limit is still stored, in a batch of its own.
  std::string big(200 << 10, 'y');
  int64_t id = store->appendEvent(makeEvent("h", big));
  EXPECT_EQ(store->getEvent("h", id)->body, big);
  EXPECT_GE(store->writerStats().largestBatchBytes, big.size());
}

TEST(SqliteStore, ReadsGoOnWhileAnotherConnectionHoldsTheWriteLock) {
  TempDir dir;
  SqliteOptions options;
  options.busyTimeoutMs = 200;
  auto store = SqliteStore::open(dbPath(dir), options);
  store->createHook(makeHook("h"));
  int64_t id = store->appendEvent(makeEvent("h", "committed"));

  Session other = rawSession(dir);
  other << "BEGIN IMMEDIATE", now;

  // WAL readers do not wait for the writer; a write that cannot get the lock in time fails
  // instead of pretending to succeed.
  auto events = store->listEvents("h", 0, 10, true, false);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].body, "committed");
  EXPECT_THROW(store->appendEvent(makeEvent("h", "blocked")), StoreError);

  other << "ROLLBACK", now;
  int64_t next = store->appendEvent(makeEvent("h", "later"));
  EXPECT_GT(next, id);
  EXPECT_EQ(store->listEvents("h", 0, 10, false, false).size(), 2u);
}

TEST(SqliteStore, CorruptHeaderBlobIsAClearError) {
  TempDir dir;
  int64_t id = 0;
  {
    auto store = openSqliteStore(dbPath(dir));
    store->createHook(makeHook("h"));
    id = store->appendEvent(makeEvent("h"));
  }
  {
    Session session = rawSession(dir);
    session << "UPDATE events SET headers = X'0500000041' WHERE id = ?", use(id), now;
  }

  // The event is reported with a clear error instead of its contents; lists go on.
  auto store = openSqliteStore(dbPath(dir));
  auto event = store->getEvent("h", id);
  ASSERT_TRUE(event.has_value());
  EXPECT_NE(event->integrityError.find("malformed"), std::string::npos) << event->integrityError;
  EXPECT_NE(event->integrityError.find(std::to_string(id)), std::string::npos);
  EXPECT_TRUE(event->headers.empty());
  EXPECT_EQ(event->body, "");
  EXPECT_EQ(store->listEvents("h", 0, 10, false, false).size(), 1u);
}

TEST(SqliteStore, BatchLimitOfZeroIsRefused) {
  TempDir dir;
  SqliteOptions options;
  options.maxBatchJobs = 0;
  try {
    SqliteStore::open(dbPath(dir), options);
    FAIL() << "a store that could never take a write was opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("maxBatchJobs"), std::string::npos) << e.what();
  }
}

TEST(SqliteStore, EventIsNeitherReadableNorHeardBeforeItsSyncCompletes) {
  TempDir dir;
  SyncGate gate;
  SqliteOptions options;
  options.syncWalForTest = gate.hook();
  auto store = SqliteStore::open(dbPath(dir), options);
  store->createHook(makeHook("h"));
  const int64_t first = store->appendEvent(makeEvent("h", "first"));

  std::mutex mutex;
  std::vector<int64_t> heard;
  store->setCommitListener([&](const EventRecord& event) {
    std::lock_guard<std::mutex> lock(mutex);
    heard.push_back(event.id);
  });

  // The second event is committed to the file, but its sync is held at the gate.
  gate.hold();
  std::atomic<int64_t> second{0};
  std::thread appender([&] { second = store->appendEvent(makeEvent("h", "second")); });
  gate.awaitWaiter();
  ASSERT_EQ(committedEvents(dir), 2);

  // Until the sync is done nobody may learn of it: not the caller, not reads, not the listener.
  EXPECT_EQ(second.load(), 0);
  auto listed = store->listEvents("h", 0, 10, true, false);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, first);
  EXPECT_FALSE(store->getEvent("h", first + 1).has_value());
  {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_TRUE(heard.empty());
  }

  gate.release();
  appender.join();
  EXPECT_EQ(second.load(), first + 1);
  EXPECT_EQ(store->getEvent("h", second)->body, "second");
  EXPECT_EQ(store->listEvents("h", 0, 10, false, false).size(), 2u);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(heard, std::vector<int64_t>{second.load()});
}

TEST(SqliteStore, FailedSyncAcknowledgesNothingAndRefusesLaterWrites) {
  TempDir dir;
  SyncGate gate;
  SqliteOptions options;
  options.syncWalForTest = gate.hook();
  int64_t first = 0;
  {
    auto store = SqliteStore::open(dbPath(dir), options);
    store->createHook(makeHook("h"));
    first = store->appendEvent(makeEvent("h", "first"));

    gate.failWith(EIO);
    try {
      store->appendEvent(makeEvent("h", "lost sync"));
      FAIL() << "an event whose sync failed was acknowledged";
    } catch (const StoreError& e) {
      EXPECT_NE(std::string(e.what()).find("sync"), std::string::npos) << e.what();
    }

    // After a failed sync the store cannot tell what reached the disk, so it takes nothing
    // more, even once the disk answers again.
    gate.failWith(0);
    EXPECT_THROW(store->appendEvent(makeEvent("h", "after")), StoreError);
    EXPECT_THROW(store->addDelivery({first, "r", 200, 1, "", 1}), StoreError);
    WriterStats stats = store->writerStats();
    EXPECT_EQ(stats.failedSyncs, 1u);
    EXPECT_EQ(stats.eventsStored, 1u);
    auto listed = store->listEvents("h", 0, 10, true, false);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].body, "first");
  }

  // Reopened, the store works again and the acknowledged event is there.
  auto store = SqliteStore::open(dbPath(dir));
  EXPECT_EQ(store->getEvent("h", first)->body, "first");
  EXPECT_GT(store->appendEvent(makeEvent("h", "reopened")), first);
}

TEST(SqliteStore, BackgroundCheckpointsWhileWritingLoseNothing) {
  TempDir dir;
  SqliteOptions options;
  options.checkpointFrames = 32;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  std::vector<std::vector<std::pair<int64_t, std::string>>> written(kThreads);
  {
    auto store = SqliteStore::open(dbPath(dir), options);
    store->createHook(makeHook("h"));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string body = std::to_string(t) + "/" + std::to_string(i) + std::string(2000, 'b');
          written[t].emplace_back(store->appendEvent(makeEvent("h", body)), body);
        }
      });
    }

    // Readers take snapshots all along, which a checkpoint must respect.
    std::atomic<bool> writing{true};
    std::thread reader([&] {
      while (writing) store->listEvents("h", 0, 50, true, false);
    });
    for (auto& thread : threads) thread.join();
    writing = false;
    reader.join();

    WriterStats stats = store->writerStats();
    EXPECT_GT(stats.backgroundCheckpoints, 0u);
    EXPECT_EQ(stats.eventsStored, static_cast<uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(stats.failedBatches, 0u);
  }

  // Everything is there after reopening, each body under its own id.
  auto store = SqliteStore::open(dbPath(dir));
  auto events = store->listEvents("h", 0, 100000, true, false);
  ASSERT_EQ(events.size(), static_cast<size_t>(kThreads * kPerThread));
  std::map<int64_t, std::string> bodies;
  for (auto& event : events) bodies[event.id] = std::move(event.body);
  for (const auto& own : written) {
    for (const auto& [id, body] : own) {
      ASSERT_EQ(bodies.count(id), 1u) << "event " << id << " is missing";
      EXPECT_TRUE(bodies[id] == body) << "event " << id << " has another body";
    }
  }
}

TEST(SqliteStore, WalStaysWithinItsBoundWithoutBackgroundCheckpoints) {
  TempDir dir;
  SqliteOptions options;
  options.checkpointFrames = INT_MAX;  // the background connection is never asked
  options.maxWalFrames = 64;
  options.maxBatchJobs = 1;  // one 1 KiB event per commit adds a few frames, far below 64
  auto store = SqliteStore::open(dbPath(dir), options);
  store->createHook(makeHook("h"));

  constexpr int kEvents = 400;
  for (int i = 0; i < kEvents; ++i) store->appendEvent(makeEvent("h", std::string(1024, 'w')));

  // Without the bound the WAL would hold every frame written: more than 400.
  WriterStats stats = store->writerStats();
  EXPECT_EQ(stats.backgroundCheckpoints, 0u);
  EXPECT_GT(stats.writerCheckpoints, 0u);
  EXPECT_LT(stats.largestWalFrames, 64 + 16);
  constexpr auto kFrameBytes = 24 + 4096;
  EXPECT_LE(std::filesystem::file_size(dbPath(dir) + "-wal"), size_t{32 + (64 + 16) * kFrameBytes});
  EXPECT_EQ(store->listEvents("h", 0, 1000, false, false).size(), static_cast<size_t>(kEvents));
}

TEST(SqliteStore, WriterStatsAccountForEachStep) {
  TempDir dir;
  auto store = SqliteStore::open(dbPath(dir));
  store->createHook(makeHook("h"));
  for (int i = 0; i < 5; ++i) store->appendEvent(makeEvent("h"));

  WriterStats stats = store->writerStats();
  EXPECT_EQ(stats.commits, 6u);
  EXPECT_GE(stats.syncs, 1u);
  EXPECT_GT(stats.writeNanos, 0u);
  EXPECT_GT(stats.commitNanos, 0u);
  EXPECT_GT(stats.syncNanos, 0u);
  EXPECT_GT(stats.acknowledgeNanos, 0u);
}

TEST(SqliteStore, HookLookupsComeFromMemoryUpToTheCacheLimit) {
  TempDir dir;
  SqliteOptions options;
  options.maxCachedHooks = 2;
  auto store = SqliteStore::open(dbPath(dir), options);
  for (const char* id : {"a", "b", "c"}) {
    HookRecord hook = makeHook(id);
    hook.provider = std::string("provider-") + id;
    store->createHook(hook);
  }

  // Every hook is found, twice, with its own fields; only two are kept in memory.
  for (int round = 0; round < 2; ++round) {
    for (const char* id : {"a", "b", "c"}) {
      auto found = store->findHook(id);
      ASSERT_TRUE(found.has_value()) << id;
      EXPECT_EQ(found->provider, std::string("provider-") + id);
      EXPECT_EQ(found->secret, makeHook(id).secret);
    }
  }
  ReadStats stats = store->readStats();
  EXPECT_EQ(stats.cachedHooks, 2u);
  EXPECT_EQ(stats.hookCacheHits, 2u);

  // An unknown hook is never remembered, so one created later is found.
  EXPECT_FALSE(store->findHook("later").has_value());
  EXPECT_EQ(store->readStats().cachedHooks, 2u);
  store->createHook(makeHook("later"));
  EXPECT_TRUE(store->findHook("later").has_value());
}

Poco::Data::BLOB blobOf(const std::string& bytes) {
  return Poco::Data::BLOB(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

/// A database as a build before accounts and encryption at rest left it: schema 1, plaintext.
void createVersionOneDatabase(TempDir& dir) {
  Session session = rawSession(dir);
  session << "PRAGMA journal_mode = WAL", now;
  for (const char* statement : {
           "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL,"
           " description TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
           "CREATE TABLE hooks (id TEXT PRIMARY KEY NOT NULL, provider TEXT NOT NULL,"
           " secret BLOB NOT NULL, tolerance_s INTEGER NOT NULL, options BLOB NOT NULL,"
           " token_hash TEXT NOT NULL, created_at_ms INTEGER NOT NULL)",
           "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " hook_id TEXT NOT NULL REFERENCES hooks(id), received_at_ms INTEGER NOT NULL,"
           " method TEXT NOT NULL, path_suffix BLOB NOT NULL, raw_query BLOB NOT NULL,"
           " headers BLOB NOT NULL, body_size INTEGER NOT NULL, verdict INTEGER NOT NULL,"
           " reason INTEGER NOT NULL, reason_message BLOB NOT NULL, event_type BLOB NOT NULL,"
           " delivery_id BLOB NOT NULL, replay_of INTEGER NOT NULL DEFAULT 0,"
           " body BLOB NOT NULL)",
           "CREATE INDEX events_by_hook_id ON events(hook_id, id)",
           "CREATE INDEX events_by_hook_time ON events(hook_id, received_at_ms)",
           "CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT,"
           " event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
           " relay_id BLOB NOT NULL, status INTEGER NOT NULL, duration_ms INTEGER NOT NULL,"
           " error BLOB NOT NULL, reported_at_ms INTEGER NOT NULL)",
           "CREATE INDEX deliveries_by_event ON deliveries(event_id, id)",
           "INSERT INTO schema_migrations VALUES (1, 'hooks, events and deliveries', 0)",
           "INSERT INTO hooks VALUES ('old-hook', 'stripe', x'6f6c642d736563726574', 300, x'',"
           " 'aaaa', 1600000000000)",
       }) {
    session << statement, now;
  }
  for (int i = 1; i <= 3; ++i) {
    const std::string body = "old body " + std::to_string(i);
    const std::string headers = encodeHeaders({{"X-Old", "v" + std::to_string(i)}});
    Poco::Data::BLOB bodyBlob = blobOf(body);
    Poco::Data::BLOB headersBlob = blobOf(headers);
    Poco::Data::BLOB query = blobOf("n=" + std::to_string(i));
    Poco::Int64 size = static_cast<Poco::Int64>(body.size());
    session << "INSERT INTO events (hook_id, received_at_ms, method, path_suffix, raw_query,"
               " headers, body_size, verdict, reason, reason_message, event_type, delivery_id,"
               " body) VALUES ('old-hook', 1600000000001, 'POST', x'', ?, ?, ?, 1, 0, x'', x'',"
               " x'', ?)",
        use(query), use(headersBlob), use(size), use(bodyBlob), now;
  }
}

std::shared_ptr<crypto::KeyHolder> keysOf(const std::string& text) {
  return std::make_shared<crypto::KeyHolder>(crypto::KeyRing::parse(text, "test keys"));
}

TEST(SqliteStore, VersionOneDatabaseKeepsItsEventsAndIsEncryptedByReencryptBatch) {
  TempDir dir;
  createVersionOneDatabase(dir);
  auto keys = keysOf(crypto::KeyRing::newKeyLine("k1"));
  auto store = openSqliteStore(dbPath(dir), keys);

  // The old rows read as they were, in the clear.
  auto events = store->listEvents("old-hook", 0, 10, true, false);
  ASSERT_EQ(events.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].integrityError, "");
    EXPECT_EQ(events[i].body, "old body " + std::to_string(i + 1));
    EXPECT_EQ(events[i].rawQuery, "n=" + std::to_string(i + 1));
    EXPECT_EQ(events[i].headers, (std::vector<Header>{{"X-Old", "v" + std::to_string(i + 1)}}));
  }
  auto hook = store->findHook("old-hook");
  ASSERT_TRUE(hook.has_value());
  EXPECT_EQ(hook->secret, "old-secret");
  EXPECT_EQ(hook->accountId, "");
  EXPECT_EQ(hook->expiresAtMs, 0);

  // New events are sealed; ids go on above the old ones.
  const int64_t fresh = store->appendEvent(makeEvent("old-hook", "new body"));
  EXPECT_GT(fresh, events.back().id);
  auto usage = store->keyUsage();
  std::map<std::string, int64_t> byKey;
  for (const auto& entry : usage) byKey[entry.keyId] = entry.records;
  EXPECT_EQ(byKey[""], 4);  // three events and the hook in the clear
  EXPECT_EQ(byKey["k1"], 1);

  // Rotation's loop seals the old rows too.
  size_t total = 0;
  for (size_t done = store->reencryptBatch(2); done > 0; done = store->reencryptBatch(2)) {
    total += done;
  }
  EXPECT_EQ(total, 4u);
  usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].keyId, "k1");
  EXPECT_EQ(usage[0].records, 5);

  store.reset();
  store = openSqliteStore(dbPath(dir), keys);
  events = store->listEvents("old-hook", 0, 10, true, false);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].body, "old body 1");
  EXPECT_EQ(events[2].headers, (std::vector<Header>{{"X-Old", "v3"}}));
  EXPECT_EQ(events[3].body, "new body");
  EXPECT_EQ(store->findHook("old-hook")->secret, "old-secret");

  // The rows themselves now hold ciphertext.
  Session session = rawSession(dir);
  Poco::Data::BLOB body;
  session << "SELECT body FROM events WHERE id = 1", into(body), now;
  EXPECT_EQ(body.size(), std::string("old body 1").size() + 28);
  Poco::Int64 plain = 0;
  session << "SELECT COUNT(*) FROM hooks WHERE key_id = ''", into(plain), now;
  EXPECT_EQ(plain, 0);
}

/// The summary fields an event of schema 2 held in the clear, with `marker` in each.
void storeSummaryInTheClear(Session& session, int64_t eventId, const std::string& marker) {
  const SummaryFields clear = markedSummary(marker);
  Poco::Data::BLOB path = blobOf(clear.pathSuffix);
  Poco::Data::BLOB message = blobOf(clear.reasonMessage);
  Poco::Data::BLOB type = blobOf(clear.eventType);
  Poco::Data::BLOB delivery = blobOf(clear.deliveryId);
  Poco::Int64 id = eventId;
  session << "UPDATE events SET path_suffix = ?, reason_message = ?, event_type = ?, "
             "delivery_id = ? WHERE id = ?",
      use(path), use(message), use(type), use(delivery), use(id), now;
}

TEST(SqliteStore, SchemaTwoDatabaseHasItsSummaryFieldsSealedByTheMigration) {
  TempDir dir;
  const std::string marker = "MARKER-3b8e5d";
  auto keys = keysOf(crypto::KeyRing::newKeyLine("k1"));
  std::vector<int64_t> ids;
  {
    auto store = openSqliteStore(dbPath(dir), keys);
    store->createHook(makeHook("h"));
    for (int i = 0; i < 3; ++i) ids.push_back(store->appendEvent(makeEvent("h", "body")));
  }

  // As a schema 2 build left it: contents sealed, summary fields in the clear, no seal version.
  {
    Session session = rawSession(dir);
    revertToSchemaThree(session);
    session << "DROP INDEX event_keys_clear_summary", now;
    session << "ALTER TABLE event_keys DROP COLUMN seal_version", now;
    session << "DELETE FROM schema_migrations WHERE version = 3", now;
    for (size_t i = 0; i < ids.size(); ++i) {
      storeSummaryInTheClear(session, ids[i], marker + std::to_string(i));
    }
  }
  ASSERT_NE(rawBytesOf(dir).find(marker), std::string::npos) << "the scan cannot see the marker";

  // Without keys nothing could be sealed: refused, and the file is left as it was.
  EXPECT_THROW(openSqliteStore(dbPath(dir)), StoreError);
  EXPECT_EQ(schemaVersionOf(dir), 2);

  {
    auto store = openSqliteStore(dbPath(dir), keys);
    for (size_t i = 0; i < ids.size(); ++i) {
      auto event = store->getEvent("h", ids[i]);
      ASSERT_TRUE(event.has_value());
      expectMarkedSummary(*event, marker + std::to_string(i));
      EXPECT_EQ(event->body, "body");
    }
    auto usage = store->keyUsage();
    ASSERT_EQ(usage.size(), 1u);
    EXPECT_EQ(usage[0].keyId, "k1");
    EXPECT_EQ(usage[0].records, 4);  // the three events and the hook
    EXPECT_EQ(store->reencryptBatch(10), 0u);
  }
  EXPECT_EQ(schemaVersionOf(dir), SqliteStore::kSchemaVersion);
  EXPECT_EQ(rawBytesOf(dir).find(marker), std::string::npos)
      << "a summary field is left in the clear somewhere in the file";
}

TEST(SqliteStore, EventAnOlderBuildSealedAfterTheMigrationReadsRightUntilReencryptionSealsIt) {
  TempDir dir;
  const std::string marker = "MARKER-c04a17";
  auto keys = keysOf(crypto::KeyRing::newKeyLine("k1"));
  int64_t id = 0;
  {
    auto store = openSqliteStore(dbPath(dir), keys);
    store->createHook(makeHook("h"));
    store->appendEvent(makeEvent("h"));
    id = store->appendEvent(makeEvent("h", "written by an older edge"));
  }

  // An edge of schema 2 still running on the file writes no seal version: the column's
  // default, 1.
  {
    Session session = rawSession(dir);
    storeSummaryInTheClear(session, id, marker);
    session << "UPDATE event_keys SET seal_version = 1 WHERE event_id = ?", use(id), now;
  }

  auto store = openSqliteStore(dbPath(dir), keys);
  auto event = store->getEvent("h", id);
  ASSERT_TRUE(event.has_value());
  expectMarkedSummary(*event, marker);
  EXPECT_EQ(event->body, "written by an older edge");

  // It counts as holding values in the clear until re-encryption seals it.
  std::map<std::string, int64_t> byKey;
  for (const auto& entry : store->keyUsage()) byKey[entry.keyId] = entry.records;
  EXPECT_EQ(byKey[""], 1);
  EXPECT_EQ(byKey["k1"], 2);
  EXPECT_EQ(store->reencryptBatch(10), 1u);
  EXPECT_EQ(store->reencryptBatch(10), 0u);
  byKey.clear();
  for (const auto& entry : store->keyUsage()) byKey[entry.keyId] = entry.records;
  EXPECT_EQ(byKey.count(""), 0u);
  EXPECT_EQ(byKey["k1"], 3);
  expectMarkedSummary(*store->getEvent("h", id), marker);
  store.reset();
  EXPECT_EQ(rawBytesOf(dir).find(marker), std::string::npos);
}

TEST(SqliteStore, StoreWithoutKeysRefusesADatabaseHoldingEncryptedRecords) {
  TempDir dir;
  {
    auto store = openSqliteStore(dbPath(dir), keysOf(crypto::KeyRing::newKeyLine("k1")));
    store->createHook(makeHook("h"));
    store->appendEvent(makeEvent("h"));
  }
  try {
    openSqliteStore(dbPath(dir));
    FAIL() << "a store without keys opened encrypted records";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("encrypted"), std::string::npos) << e.what();
  }
}

TEST(SqliteStore, HookChangedByAnotherProcessIsSeenOnceTheCacheTimePassed) {
  TempDir dir;
  auto store = openSqliteStore(dbPath(dir));
  store->createHook(makeHook("h"));
  ASSERT_EQ(store->findHook("h")->provider, "stripe");

  // The admin command is another connection: this store cannot hear of its change.
  {
    Session session = rawSession(dir);
    session << "UPDATE hooks SET provider = 'github' WHERE id = 'h'", now;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(kHookCacheMs + 200));
  EXPECT_EQ(store->findHook("h")->provider, "github");
}

TEST(SqliteStore, AuditTriggersRefuseUpdateAndDeleteOnEveryConnection) {
  TempDir dir;
  {
    auto store = openSqliteStore(dbPath(dir));
    AuditRecord entry;
    entry.action = "event.read";
    entry.atMs = 1;
    store->appendAudit(entry);
  }
  EXPECT_TRUE(auditRefuses(dir));
  Session session = rawSession(dir);
  Poco::Int64 count = 0;
  session << "SELECT COUNT(*) FROM audit", into(count), now;
  EXPECT_EQ(count, 1);
}

}  // namespace
}  // namespace anm::store::test
