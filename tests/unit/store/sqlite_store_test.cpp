// tests/unit/store/sqlite_store_test.cpp: the Store suite on SQLite, plus SQLite-only cases.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sqlite_store.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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

StoreBackend sqliteBackend() {
  StoreBackend backend;
  backend.name = "sqlite";
  backend.open = [](TempDir& dir) -> std::unique_ptr<Store> {
    return openSqliteStore(dbPath(dir));
  };
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

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreSuite, ::testing::Values(sqliteBackend()), BackendName());

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

  auto store = openSqliteStore(dbPath(dir));
  try {
    store->getEvent("h", id);
    FAIL() << "a truncated header encoding was accepted";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("decode"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anm::store::test
