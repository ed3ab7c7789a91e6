// tests/unit/store/mysql_store_test.cpp: the Store suite on MySQL, plus MySQL-only cases.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/mysql_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/crypto/keys.h"
#include "tests/e2e/support/tcp_proxy.h"
#include "tests/support/mysql/test_mysql.h"
#include "tests/unit/store/store_suite.h"

namespace anm::store::test {
namespace {

using namespace std::chrono_literals;

using anm::test::kMySqlUrlVariable;
using anm::test::requireMySqlServer;
using anm::test::SqlConnection;
using anm::test::TestDatabase;
using anm::test::testMySqlServer;
using anm::test::waitUntil;
using anm::test::withoutDatabase;

// --- the suite's backend: one fresh database per TempDir, reached through a cuttable proxy ---

/// What the backend keeps for one TempDir while it exists.
struct DirState {
  std::unique_ptr<TestDatabase> database;  // dropped last
  std::unique_ptr<e2e::TcpProxy> proxy;    // closed first
};

std::mutex& statesMutex() {
  static std::mutex mutex;
  return mutex;
}

std::map<std::string, std::shared_ptr<DirState>>& states() {
  static std::map<std::string, std::shared_ptr<DirState>> byPath;
  return byPath;
}

/// The file in a TempDir that names its database, so that every open reaches the same data.
std::string databaseFile(TempDir& dir) { return dir.file("mysql-database"); }

MySqlEndpoint requireServer() {
  auto server = testMySqlServer();
  if (!server) throw std::runtime_error(std::string(kMySqlUrlVariable) + " is not set");
  if (!server->socketPath.empty() || server->host != "127.0.0.1") {
    throw std::runtime_error(std::string(kMySqlUrlVariable) +
                             " must name a TCP server on 127.0.0.1 for the proxy");
  }
  return *server;
}

/// The state of `dir`, created with a fresh database and proxy on first use. The TempDir drops
/// both when it goes away, whatever the test's outcome.
std::shared_ptr<DirState> stateOf(TempDir& dir) {
  std::lock_guard<std::mutex> lock(statesMutex());
  auto found = states().find(dir.path());
  if (found != states().end()) return found->second;

  const MySqlEndpoint server = requireServer();
  auto state = std::make_shared<DirState>();
  state->database = std::make_unique<TestDatabase>(server);
  state->proxy = std::make_unique<e2e::TcpProxy>(server.port);
  std::ofstream(databaseFile(dir)) << state->database->name();
  states()[dir.path()] = state;

  const std::string path = dir.path();
  dir.onRemove([path] {
    std::shared_ptr<DirState> gone;
    {
      std::lock_guard<std::mutex> lock(statesMutex());
      gone = states()[path];
      states().erase(path);
    }
    gone.reset();
  });
  return state;
}

std::string databaseNameOf(TempDir& dir) {
  std::ifstream in(databaseFile(dir));
  std::string name;
  in >> name;
  if (name.empty()) throw std::runtime_error("no database recorded in " + databaseFile(dir));
  return name;
}

std::unique_ptr<Store> openThroughProxy(TempDir& dir,
                                        std::shared_ptr<crypto::KeyHolder> keys = nullptr) {
  auto state = stateOf(dir);
  MySqlOptions options;
  options.endpoint = requireServer();
  options.endpoint.host = "127.0.0.1";
  options.endpoint.port = state->proxy->port();
  options.endpoint.database = databaseNameOf(dir);
  options.keys = std::move(keys);
  return MySqlStore::open(options);
}

/// The database of `dir` reached directly, as its owner would.
std::unique_ptr<SqlConnection> rawConnectionOf(TempDir& dir) {
  MySqlEndpoint endpoint = requireServer();
  endpoint.database = databaseNameOf(dir);
  return std::make_unique<SqlConnection>(endpoint);
}

/// Every column of every row of every table of the connection's database, as stored.
std::string everyStoredByte(SqlConnection& raw) {
  std::string bytes;
  for (const auto& table : raw.query("SELECT TABLE_NAME FROM information_schema.TABLES"
                                     " WHERE TABLE_SCHEMA = DATABASE()")) {
    for (const auto& row : raw.query("SELECT * FROM `" + table[0] + "`")) {
      for (const auto& value : row) bytes += value + '\n';
    }
  }
  return bytes;
}

/// The assignment that flips one byte of the ciphertext in `column`, past the 12-byte nonce.
std::string flippedByte(const std::string& column) {
  return column + " = CONCAT(LEFT(" + column + ", 12), CHAR(ASCII(SUBSTRING(" + column +
         ", 13, 1)) ^ 1), SUBSTRING(" + column + ", 14))";
}

/// Flips one byte of the ciphertext event `eventId` stores in `column`.
void flipCiphertextByte(SqlConnection& raw, int64_t eventId, const std::string& column = "body") {
  raw.execute("UPDATE events SET " + flippedByte(column) +
              " WHERE id = " + std::to_string(eventId));
}

/// The same in the first delivery reported for event `eventId`.
void flipDeliveryCiphertextByte(SqlConnection& raw, int64_t eventId, const std::string& column) {
  raw.execute("UPDATE deliveries SET " + flippedByte(column) +
              " WHERE event_id = " + std::to_string(eventId) + " ORDER BY id LIMIT 1");
}

/// Drops what the schemas after 3 added and their records, as a build of schema 3 left the
/// database.
void revertToSchemaThree(SqlConnection& raw) {
  raw.execute(
      "ALTER TABLE deliveries DROP COLUMN phase, DROP COLUMN timeout_ms, DROP COLUMN "
      "target_https, DROP COLUMN started_at_ms, DROP COLUMN response_excerpt, DROP COLUMN "
      "location, DROP COLUMN sealed");
  raw.execute("ALTER TABLE events DROP COLUMN modified, DROP KEY events_by_replay_of");
  raw.execute("DROP TABLE ended_sessions");
  raw.execute("DELETE FROM schema_migrations WHERE version >= 4");
}

/// Changes one byte of event `eventId`'s wrapped data key, past its 12-byte nonce.
void flipWrappedKeyByte(SqlConnection& raw, int64_t eventId) {
  raw.execute(
      "UPDATE events SET wrapped_key = CONCAT(LEFT(wrapped_key, 20), "
      "CHAR(ASCII(SUBSTRING(wrapped_key, 21, 1)) ^ 1), SUBSTRING(wrapped_key, 22)) WHERE id = " +
      std::to_string(eventId));
}

StoreBackend mysqlBackend() {
  StoreBackend backend;
  backend.name = "mysql";
  backend.open = [](TempDir& dir) { return openThroughProxy(dir); };
  backend.schemaVersion = MySqlStore::kSchemaVersion;
  backend.markSchemaVersion = [](TempDir& dir, int64_t version) {
    MySqlEndpoint endpoint = requireServer();
    endpoint.database = databaseNameOf(dir);
    SqlConnection raw(endpoint);
    raw.execute("INSERT INTO schema_migrations (version, description, applied_at_ms) VALUES (" +
                std::to_string(version) + ", 'from a newer build', 0)");
  };
  backend.failWrites = [](TempDir& dir) -> std::function<void()> {
    auto state = stateOf(dir);
    state->proxy->setDown(true);
    return [state] { state->proxy->setDown(false); };
  };
  backend.announces = Announcement::kNoticeListener;
  backend.requireAvailable = requireMySqlServer;
  backend.openWithKeys = [](TempDir& dir, std::shared_ptr<crypto::KeyHolder> keys) {
    return openThroughProxy(dir, std::move(keys));
  };
  backend.rawBytes = [](TempDir& dir) { return everyStoredByte(*rawConnectionOf(dir)); };
  backend.corruptEventCiphertext = [](TempDir& dir, int64_t eventId, const std::string& column) {
    flipCiphertextByte(*rawConnectionOf(dir), eventId, column);
  };
  backend.corruptEventWrappedKey = [](TempDir& dir, int64_t eventId) {
    flipWrappedKeyByte(*rawConnectionOf(dir), eventId);
  };
  backend.corruptDeliveryCiphertext = [](TempDir& dir, int64_t eventId, const std::string& column) {
    flipDeliveryCiphertextByte(*rawConnectionOf(dir), eventId, column);
  };
  backend.revertToSchema3 = [](TempDir& dir) { revertToSchemaThree(*rawConnectionOf(dir)); };
  // NOTE: no auditRefusesChanges: on MySQL the audit log is append-only because the edge never
  // changes it, not because the server refuses (triggers would need SUPER on servers that
  // write a binary log).
  return backend;
}

INSTANTIATE_TEST_SUITE_P(MySql, StoreSuite, ::testing::Values(mysqlBackend()), BackendName());
INSTANTIATE_TEST_SUITE_P(MySql, AccountSuite, ::testing::Values(mysqlBackend()), BackendName());

// --- helpers of the MySQL-only cases ---

/// Records what a notice listener hears. Outlives the stores it listens to.
class NoticeLog {
 public:
  std::function<void(const EventNotice&)> listener() {
    return [this](const EventNotice& notice) {
      std::lock_guard<std::mutex> lock(mutex_);
      notices_.push_back(notice);
      changed_.notify_all();
    };
  }

  std::vector<int64_t> ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<int64_t> ids;
    for (const auto& notice : notices_) ids.push_back(notice.id);
    return ids;
  }

  std::vector<EventNotice> notices() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return notices_;
  }

  bool contains(int64_t id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::any_of(notices_.begin(), notices_.end(),
                       [id](const EventNotice& notice) { return notice.id == id; });
  }

  /// Waits until `id` was heard; false if it was not within the limit.
  bool waitFor(int64_t id, std::chrono::milliseconds limit = 30s) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, limit, [&] {
      return std::any_of(notices_.begin(), notices_.end(),
                         [id](const EventNotice& notice) { return notice.id == id; });
    });
  }

  bool waitForCount(size_t count, std::chrono::milliseconds limit = 30s) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return notices_.size() >= count; });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<EventNotice> notices_;
};

std::vector<int64_t> idsOf(const std::vector<EventRecord>& events) {
  std::vector<int64_t> ids;
  for (const auto& event : events) ids.push_back(event.id);
  return ids;
}

/// Every event of a hook, paged the way a relay resumes: after = the last id it got.
std::vector<EventRecord> listAll(Store& store, const std::string& hookId) {
  std::vector<EventRecord> all;
  int64_t after = 0;
  for (;;) {
    auto page = store.listEvents(hookId, after, 500, true, false);
    if (page.empty()) return all;
    after = page.back().id;
    all.insert(all.end(), page.begin(), page.end());
  }
}

bool contiguous(const std::vector<int64_t>& ids) {
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] != ids[i - 1] + 1) return false;
  }
  return true;
}

/// Threads of a test, joined when it ends even through a failed ASSERT, after `beforeJoin` has
/// told them to finish.
class TestThreads {
 public:
  explicit TestThreads(std::function<void()> beforeJoin = {})
      : beforeJoin_(std::move(beforeJoin)) {}
  ~TestThreads() { join(); }

  void start(std::function<void()> body) { threads_.emplace_back(std::move(body)); }

  void join() {
    if (beforeJoin_) beforeJoin_();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  std::function<void()> beforeJoin_;
  std::vector<std::thread> threads_;
};

class MySqlStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requireMySqlServer();
    if (IsSkipped() || HasFatalFailure()) return;
    server_ = *testMySqlServer();
    database_ = std::make_unique<TestDatabase>(server_);
  }

  /// Options that reach the test database directly.
  MySqlOptions options() const {
    MySqlOptions options;
    options.endpoint = database_->endpoint();
    return options;
  }

  /// The test database reached through `proxy`, so that the test can cut the line.
  MySqlOptions optionsThrough(const e2e::TcpProxy& proxy) const {
    MySqlOptions options = this->options();
    options.endpoint.host = "127.0.0.1";
    options.endpoint.port = proxy.port();
    return options;
  }

  MySqlEndpoint server_;
  std::unique_ptr<TestDatabase> database_;
};

// --- (a) an id that commits late is neither skipped nor announced out of order ---

TEST_F(MySqlStoreTest, LowerIdCommittingAfterAHigherOneIsAnnouncedFirstAndNotSkipped) {
  NoticeLog log;
  auto store = MySqlStore::open(options());
  store->createHook(makeHook("h"));
  store->setNoticeListener(log.listener());
  const int64_t base = store->appendEvent(makeEvent("h", "base"));
  const int64_t n = base + 1;

  // One writer (late) stores id N and keeps its transaction open; another (early) stores N+1,
  // moves the counter past it and commits first: N+1 is visible while N is not.
  auto early = database_->connect();
  auto late = database_->connect();
  auto eventN = makeEvent("h", std::string("late\0N", 6));
  auto eventN1 = makeEvent("h", std::string("early\0N+1", 9));
  eventN.id = n;
  eventN1.id = n + 1;
  late->execute("START TRANSACTION");
  late->insertEvent(eventN);
  early->execute("START TRANSACTION");
  early->insertEvent(eventN1);
  early->execute("UPDATE sequences SET value = " + std::to_string(n + 1) +
                 " WHERE name = 'event_id'");
  early->execute("COMMIT");
  ASSERT_EQ(early->queryInt("SELECT COUNT(*) FROM events WHERE id = " + std::to_string(n + 1)), 1);

  // A relay pages with the last id it got, as it does after each batch of the stream.
  std::vector<int64_t> relayGot;
  int64_t relayAfter = base;
  auto relayPoll = [&] {
    for (const auto& event : store->listEvents("h", relayAfter, 100, false, true)) {
      relayGot.push_back(event.id);
      relayAfter = event.id;
    }
  };

  // Give the follower many polls while N is missing: it must see the hole and wait.
  const MySqlStats before = store->stats();
  ASSERT_TRUE(waitUntil([&] {
    relayPoll();
    return store->stats().followerPolls >= before.followerPolls + 40;
  }));
  EXPECT_FALSE(log.contains(n + 1)) << "N+1 was announced while N was not visible";
  EXPECT_FALSE(log.contains(n));
  EXPECT_TRUE(relayGot.empty()) << "listEvents returned id " << relayGot.front() << " while id "
                                << n << " was not committed";
  EXPECT_TRUE(store->listEvents("h", base, 100, true, false).empty());
  EXPECT_EQ(store->stats().visibleThrough, base);
  EXPECT_GT(store->stats().holesWaited, before.holesWaited)
      << "the follower never saw N+1 before N: the case did not force the hole";

  // Once N commits, both are announced, N first, each once, and the relay gets both.
  late->execute("COMMIT");
  ASSERT_TRUE(log.waitFor(n + 1));
  auto heard = log.ids();
  EXPECT_EQ(heard, (std::vector<int64_t>{base, n, n + 1}));
  ASSERT_TRUE(waitUntil([&] {
    relayPoll();
    return relayGot.size() >= 2;
  }));
  EXPECT_EQ(relayGot, (std::vector<int64_t>{n, n + 1}));

  auto listed = store->listEvents("h", base, 100, true, false);
  ASSERT_EQ(idsOf(listed), (std::vector<int64_t>{n, n + 1}));
  EXPECT_TRUE(listed[0].body == eventN.body);
  EXPECT_TRUE(listed[1].body == eventN1.body);
  EXPECT_EQ(listed[0].headers, eventN.headers);

  // The store's own writer goes on from the counter.
  EXPECT_EQ(store->appendEvent(makeEvent("h", "next")), n + 2);
  EXPECT_EQ(log.ids().back(), n + 2);
  store->setNoticeListener(nullptr);
}

// --- (b) two edges on one database ---

TEST_F(MySqlStoreTest, TwoStoresOnOneDatabaseEachAnnounceEveryEventOfBothInOrder) {
  NoticeLog logA;
  NoticeLog logB;
  auto storeA = MySqlStore::open(options());
  auto storeB = MySqlStore::open(options());
  storeA->createHook(makeHook("h0"));
  storeB->createHook(makeHook("h1"));
  storeA->setNoticeListener(logA.listener());
  storeB->setNoticeListener(logB.listener());

  // Two writers on each store, each on both hooks.
  constexpr int kThreadsPerStore = 2;
  constexpr int kPerThread = 150;
  std::mutex mutex;
  std::vector<int64_t> acked;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (Store* store : {static_cast<Store*>(storeA.get()), static_cast<Store*>(storeB.get())}) {
    for (int t = 0; t < kThreadsPerStore; ++t) {
      threads.emplace_back([&, store, t] {
        for (int i = 0; i < kPerThread; ++i) {
          try {
            int64_t id = store->appendEvent(makeEvent((i + t) % 2 ? "h1" : "h0"));
            std::lock_guard<std::mutex> lock(mutex);
            acked.push_back(id);
          } catch (const StoreError&) {
            ++failures;
          }
        }
      });
    }
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  std::sort(acked.begin(), acked.end());
  ASSERT_EQ(acked.size(), size_t{2 * kThreadsPerStore * kPerThread});
  EXPECT_EQ(std::set<int64_t>(acked.begin(), acked.end()).size(), acked.size()) << "id twice";
  EXPECT_TRUE(contiguous(acked)) << "the counter left a gap";

  // Each store hears every event of both, in strictly increasing order, once each.
  for (const NoticeLog* log : {&logA, &logB}) {
    ASSERT_TRUE(log->waitForCount(acked.size()));
    EXPECT_EQ(log->ids(), acked);
  }

  // Both stores read every event, whoever stored it.
  std::vector<int64_t> listed;
  for (const std::string hook : {"h0", "h1"}) {
    for (Store* store : {static_cast<Store*>(storeA.get()), static_cast<Store*>(storeB.get())}) {
      auto ids = idsOf(listAll(*store, hook));
      if (store == storeA.get()) listed.insert(listed.end(), ids.begin(), ids.end());
      EXPECT_EQ(ids.size(), acked.size() / 2) << hook;
    }
  }
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, acked);
  storeA->setNoticeListener(nullptr);
  storeB->setNoticeListener(nullptr);
}

// --- (c) a transaction held open on one edge orders the other edge behind it ---

TEST_F(MySqlStoreTest, HeldBatchOnOneStoreKeepsTheOtherStoresAppendBehindIt) {
  NoticeLog logA;
  NoticeLog logB;

  // Store A's first batch stops after taking its ids until the test lets it commit.
  std::mutex mutex;
  std::condition_variable changed;
  bool held = false;
  bool released = false;
  int64_t heldFirst = 0;
  int64_t heldLast = 0;
  std::atomic<bool> armed{true};
  auto release = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    released = true;
    changed.notify_all();
  };
  MySqlOptions holding = options();
  holding.beforeCommitForTest = [&](int64_t firstId, int64_t lastId) {
    if (!armed.exchange(false)) return;
    std::unique_lock<std::mutex> lock(mutex);
    held = true;
    heldFirst = firstId;
    heldLast = lastId;
    changed.notify_all();
    changed.wait(lock, [&] { return released; });
  };

  auto storeA = MySqlStore::open(holding);
  auto storeB = MySqlStore::open(options());
  storeA->createHook(makeHook("h"));
  storeA->setNoticeListener(logA.listener());
  storeB->setNoticeListener(logB.listener());

  // Whatever fails below, A's writer is let go before the appending threads are joined.
  std::atomic<int64_t> idA{0};
  std::atomic<int64_t> idB{0};
  TestThreads appendA(release);
  TestThreads appendB(release);
  appendA.start([&] { idA = storeA->appendEvent(makeEvent("h", "from-a")); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return held; }));
  }

  // B's append must wait for A's counter row, however many polls it is given.
  appendB.start([&] {
    try {
      idB = storeB->appendEvent(makeEvent("h", "from-b"));
    } catch (const StoreError& e) {
      ADD_FAILURE() << "B's append failed while A held its batch: " << e.what();
      idB = -1;
    }
  });
  const uint64_t pollsB = storeB->stats().followerPolls;
  EXPECT_TRUE(waitUntil([&] { return storeB->stats().followerPolls >= pollsB + 40; }));
  EXPECT_EQ(idB.load(), 0) << "B's append returned while A's batch with lower ids was open";
  EXPECT_EQ(idA.load(), 0);
  EXPECT_LT(storeB->stats().visibleThrough, heldFirst);

  release();
  appendA.join();
  appendB.join();
  EXPECT_GE(idA.load(), heldFirst);
  EXPECT_LE(idA.load(), heldLast);
  EXPECT_GT(idB.load(), heldLast) << "B got an id below the batch A committed after it";

  // Both stores announce A's ids before B's.
  for (const NoticeLog* log : {&logA, &logB}) {
    ASSERT_TRUE(log->waitFor(idB.load()));
    auto ids = log->ids();
    auto positionA = std::find(ids.begin(), ids.end(), idA.load());
    auto positionB = std::find(ids.begin(), ids.end(), idB.load());
    ASSERT_NE(positionA, ids.end());
    EXPECT_LT(positionA, positionB);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  }
  storeA->setNoticeListener(nullptr);
  storeB->setNoticeListener(nullptr);
}

// --- (d) the database goes away and comes back ---

TEST_F(MySqlStoreTest, OutageFailsAppendsAndTheSameStoreRecoversAfterIt) {
  NoticeLog log;
  e2e::TcpProxy proxy(server_.port);
  const MySqlOptions throughProxy = optionsThrough(proxy);
  auto store = MySqlStore::open(throughProxy);
  store->createHook(makeHook("h"));
  store->setNoticeListener(log.listener());
  const int64_t before = store->appendEvent(makeEvent("h", "before"));

  // While the line is cut, nothing is acknowledged.
  proxy.setDown(true);
  EXPECT_THROW(store->appendEvent(makeEvent("h", "during")), StoreError);
  EXPECT_THROW(store->appendEvent(makeEvent("h", std::string(1 << 20, 'x'))), StoreError);
  EXPECT_THROW(store->addDelivery({before, "r", 200, 1, "", 1}), StoreError);

  // The same object stores again once the line is back, without being reopened. It may refuse
  // for a moment while it reconnects; a refusal stores nothing (checked by the listing below).
  proxy.setDown(false);
  int64_t after = 0;
  int refusals = 0;
  ASSERT_TRUE(waitUntil([&] {
    try {
      after = store->appendEvent(makeEvent("h", "after"));
      return true;
    } catch (const StoreError&) {
      ++refusals;
      return false;
    }
  }));
  RecordProperty("refusals_after_heal", refusals);
  EXPECT_GT(after, before);
  EXPECT_TRUE(log.contains(after)) << "announcements did not resume";
  EXPECT_GT(store->stats().reconnects, 0u);
  EXPECT_GT(store->stats().failedBatches, 0u);

  auto events = listAll(*store, "h");
  ASSERT_EQ(idsOf(events), (std::vector<int64_t>{before, after}));
  EXPECT_EQ(events[0].body, "before");
  EXPECT_EQ(events[1].body, "after");
  EXPECT_EQ(log.ids(), (std::vector<int64_t>{before, after}));
  EXPECT_TRUE(store->listDeliveries(before).empty());
  store->addDelivery({before, "r", 200, 1, "", 1});
  EXPECT_EQ(store->listDeliveries(before).size(), 1u);
  store->setNoticeListener(nullptr);
}

TEST_F(MySqlStoreTest, AppendsDuringRepeatedOutagesLoseNothingAcknowledged) {
  NoticeLog log;
  e2e::TcpProxy proxy(server_.port);
  const MySqlOptions throughProxy = optionsThrough(proxy);
  auto store = MySqlStore::open(throughProxy);
  store->createHook(makeHook("h"));
  store->setNoticeListener(log.listener());

  // Writers append all along; the line is cut and healed under them twice.
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<int64_t> acked;
  std::atomic<size_t> failures{0};
  TestThreads writers([&] {
    stop = true;
    proxy.setDown(false);
  });
  for (int t = 0; t < 3; ++t) {
    writers.start([&, t] {
      for (int i = 0; !stop; ++i) {
        try {
          int64_t id =
              store->appendEvent(makeEvent("h", std::to_string(t) + ":" + std::to_string(i)));
          std::lock_guard<std::mutex> lock(mutex);
          acked.push_back(id);
        } catch (const StoreError&) {
          ++failures;
        }
      }
    });
  }
  auto ackedCount = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return acked.size();
  };
  for (int round = 0; round < 2; ++round) {
    const size_t ackedBefore = ackedCount();
    ASSERT_TRUE(waitUntil([&] { return ackedCount() >= ackedBefore + 20; }));
    const size_t failedBefore = failures.load();
    proxy.setDown(true);
    EXPECT_TRUE(waitUntil([&] { return failures.load() >= failedBefore + 5; }));
    proxy.setDown(false);
  }
  const size_t ackedBefore = ackedCount();
  EXPECT_TRUE(waitUntil([&] { return ackedCount() >= ackedBefore + 20; }))
      << "appends did not succeed again after the line healed";
  writers.join();
  const int64_t last = store->appendEvent(makeEvent("h", "last"));

  // The server is reachable again (that append went through), so reads on the same store work
  // at once, whatever connections of its pool the outages broke.
  EXPECT_NO_THROW(listAll(*store, "h")) << "a read failed after the store had reconnected";

  // Every acknowledged event is stored; ids have no gap; every stored event is announced once,
  // in order. An append whose COMMIT was cut may have been stored without an acknowledgement
  // (the caller saw an error and the provider retries), never the other way round. A second
  // store reads them, so that this holds apart from the pool of the first.
  auto reader = MySqlStore::open(options());
  auto stored = idsOf(listAll(*reader, "h"));
  std::set<int64_t> storedSet(stored.begin(), stored.end());
  for (int64_t id : acked) EXPECT_TRUE(storedSet.count(id)) << "acknowledged id " << id << " lost";
  EXPECT_TRUE(contiguous(stored));
  ASSERT_TRUE(log.waitFor(last));
  EXPECT_EQ(log.ids(), stored);
  RecordProperty("acknowledged", static_cast<int>(acked.size()));
  RecordProperty("failed", static_cast<int>(failures.load()));
  RecordProperty("stored_unacknowledged", static_cast<int>(stored.size() - acked.size() - 1));
  store->setNoticeListener(nullptr);
}

TEST_F(MySqlStoreTest, ReadsWorkAfterAnOutageThatBrokeSeveralIdlePoolConnections) {
  e2e::TcpProxy proxy(server_.port);
  MySqlOptions throughProxy = optionsThrough(proxy);
  throughProxy.poolSize = 4;
  auto store = MySqlStore::open(throughProxy);
  store->createHook(makeHook("h"));
  const int64_t id = store->appendEvent(makeEvent("h", std::string(size_t{4} << 20, 'b')));

  // Concurrent reads of a large body until the pool holds at least two connections besides
  // the writer's and the follower's: the server counts them.
  SqlConnection counter(withoutDatabase(server_));
  const std::string countQuery =
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '" + database_->name() +
      "' AND ID <> CONNECTION_ID()";
  ASSERT_TRUE(waitUntil([&] {
    TestThreads readers;
    for (int t = 0; t < 4; ++t) {
      readers.start([&] { store->listEvents("h", 0, 10, true, false); });
    }
    readers.join();
    return counter.queryInt(countQuery) >= 4;
  }));

  // Every idle connection breaks; then the server is back and takes an append.
  proxy.setDown(true);
  proxy.setDown(false);
  ASSERT_TRUE(waitUntil([&] {
    try {
      store->appendEvent(makeEvent("h", "after"));
      return true;
    } catch (const StoreError&) {
      return false;
    }
  }));

  // A read now must not fail for connections that broke while nobody used them.
  std::vector<EventRecord> listed;
  EXPECT_NO_THROW(listed = store->listEvents("h", 0, 10, false, false));
  EXPECT_EQ(listed.size(), 2u);
  std::optional<EventRecord> fetched;
  EXPECT_NO_THROW(fetched = store->getEvent("h", id));
  EXPECT_TRUE(fetched.has_value());
}

// --- (e) the schema ---

TEST_F(MySqlStoreTest, FreshDatabaseGetsEveryMigrationInnoDbUtf8mb4AndTheEventIndexes) {
  // A database whose default character set is not utf8mb4: the tables must say it themselves.
  TestDatabase latin1(server_, "CHARACTER SET latin1");
  MySqlOptions fresh;
  fresh.endpoint = latin1.endpoint();
  { MySqlStore::open(fresh)->createHook(makeHook("h")); }

  auto raw = latin1.connect();
  auto versions = raw->query("SELECT version, description FROM schema_migrations ORDER BY version");
  ASSERT_EQ(versions.size(), static_cast<size_t>(MySqlStore::kSchemaVersion));
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i][0], std::to_string(i + 1));
    EXPECT_FALSE(versions[i][1].empty());
  }

  auto tables = raw->query(
      "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
      " WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME");
  std::set<std::string> names;
  for (const auto& table : tables) {
    names.insert(table[0]);
    EXPECT_EQ(table[1], "InnoDB") << table[0];
    EXPECT_EQ(table[2].rfind("utf8mb4", 0), 0u) << table[0] << " " << table[2];
  }
  for (const char* expected : {"schema_migrations", "sequences", "hooks", "events", "deliveries"}) {
    EXPECT_TRUE(names.count(expected)) << "no table " << expected;
  }

  // Columns of each index of events, in index order.
  std::map<std::string, std::vector<std::string>> indexes;
  for (const auto& column : raw->query("SELECT INDEX_NAME, COLUMN_NAME FROM "
                                       "information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                                       "DATABASE() AND TABLE_NAME = 'events' ORDER BY "
                                       "INDEX_NAME, SEQ_IN_INDEX")) {
    indexes[column[0]].push_back(column[1]);
  }
  auto hasIndex = [&](const std::vector<std::string>& columns) {
    return std::any_of(indexes.begin(), indexes.end(), [&](const auto& index) {
      return index.second.size() >= columns.size() &&
             std::equal(columns.begin(), columns.end(), index.second.begin());
    });
  };
  EXPECT_TRUE(hasIndex({"hook_id", "id"}));
  EXPECT_TRUE(hasIndex({"hook_id", "received_at_ms"}));
  EXPECT_EQ(indexes["PRIMARY"], std::vector<std::string>{"id"});
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM sequences WHERE name = 'event_id'"), 1);
}

TEST_F(MySqlStoreTest, TwoStoresOpeningOneFreshDatabaseAtOnceBothSucceed) {
  std::atomic<int> ready{0};
  std::unique_ptr<MySqlStore> stores[2];
  std::string errors[2];
  std::vector<std::thread> openers;
  for (int i = 0; i < 2; ++i) {
    openers.emplace_back([&, i] {
      // Both start together, so that both find the database empty.
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      try {
        stores[i] = MySqlStore::open(options());
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& opener : openers) opener.join();
  ASSERT_TRUE(stores[0] && stores[1]) << errors[0] << " / " << errors[1];

  auto raw = database_->connect();
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM schema_migrations"), MySqlStore::kSchemaVersion);
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM schema_migrations WHERE version = 1"), 1);
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM sequences"), 1);

  // Both work on the one schema: what one stores, the other reads.
  NoticeLog log;
  stores[1]->setNoticeListener(log.listener());
  stores[0]->createHook(makeHook("h"));
  int64_t id = stores[0]->appendEvent(makeEvent("h", "shared"));
  ASSERT_TRUE(log.waitFor(id));
  ASSERT_TRUE(stores[1]->getEvent("h", id).has_value());
  EXPECT_EQ(stores[1]->getEvent("h", id)->body, "shared");
  stores[1]->setNoticeListener(nullptr);
}

// --- (f) a newer schema: StoreSuite.NewerSchemaIsRefusedNamingBothVersions/mysql ---

TEST_F(MySqlStoreTest, NewerSchemaMessageNamesBothVersionsAndTheDatabase) {
  { MySqlStore::open(options()); }
  auto raw = database_->connect();
  raw->execute("INSERT INTO schema_migrations (version, description, applied_at_ms) VALUES (" +
               std::to_string(MySqlStore::kSchemaVersion + 1) + ", 'newer', 0)");
  try {
    MySqlStore::open(options());
    FAIL() << "a newer schema was opened";
  } catch (const StoreError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(std::to_string(MySqlStore::kSchemaVersion + 1)), std::string::npos)
        << message;
    EXPECT_NE(message.find("(" + std::to_string(MySqlStore::kSchemaVersion) + ")"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(database_->name()), std::string::npos) << message;
    EXPECT_EQ(message.find(server_.password), std::string::npos) << "the password leaked";
  }
}

// --- (h) the connection pool ---

TEST_F(MySqlStoreTest, ManyConcurrentReadsStayWithinThePoolsConnections) {
  MySqlOptions small = options();
  small.poolSize = 2;
  auto store = MySqlStore::open(small);
  store->createHook(makeHook("h"));
  std::vector<int64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(store->appendEvent(makeEvent("h", std::to_string(i))));
  store->addDelivery({ids[0], "r", 200, 1, "", 1});

  // Connections of the store's user on its database, leaving out the counting one.
  SqlConnection counter(withoutDatabase(server_));
  const std::string countQuery =
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '" + database_->name() +
      "' AND USER = '" + server_.user + "' AND ID <> CONNECTION_ID()";

  constexpr int kThreads = 12;
  constexpr int kReads = 60;
  std::atomic<int> succeeded{0};
  std::atomic<int> wrong{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < kThreads; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < kReads; ++i) {
        try {
          const int64_t id = ids[(t + i) % ids.size()];
          bool right = false;
          switch (i % 3) {
            case 0:
              right = store->listEvents("h", 0, 100, true, false).size() == ids.size();
              break;
            case 1: {
              auto event = store->getEvent("h", id);
              right = event && event->body == std::to_string((t + i) % ids.size());
              break;
            }
            default:
              right = store->listDeliveries(ids[0]).size() == 1;
          }
          ++(right ? succeeded : wrong);
        } catch (const std::exception& e) {
          ADD_FAILURE() << "read failed: " << e.what();
        }
      }
    });
  }
  int64_t most = 0;
  int samples = 0;
  std::thread finisher([&] {
    for (auto& reader : readers) reader.join();
    done = true;
  });
  while (!done) {
    most = std::max(most, counter.queryInt(countQuery));
    ++samples;
  }
  finisher.join();

  EXPECT_EQ(succeeded.load(), kThreads * kReads);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(samples, 0);
  EXPECT_GE(most, 1) << "the count saw none of the store's connections";
  EXPECT_LE(most, static_cast<int64_t>(small.poolSize + 2));
  RecordProperty("most_connections", static_cast<int>(most));
}

// --- (g) parseMySqlUrl ---

TEST(ParseMySqlUrl, AcceptsEveryDocumentedForm) {
  auto full = parseMySqlUrl("mysql://app:pw@db.example.internal:3307/anonymily");
  EXPECT_EQ(full.user, "app");
  EXPECT_EQ(full.password, "pw");
  EXPECT_EQ(full.host, "db.example.internal");
  EXPECT_EQ(full.port, 3307);
  EXPECT_EQ(full.database, "anonymily");
  EXPECT_TRUE(full.socketPath.empty());

  auto bare = parseMySqlUrl("mysql://app@10.0.0.7/db");
  EXPECT_EQ(bare.user, "app");
  EXPECT_EQ(bare.password, "");
  EXPECT_EQ(bare.host, "10.0.0.7");
  EXPECT_EQ(bare.port, 3306) << "the default port";

  auto emptyPassword = parseMySqlUrl("mysql://app:@h/db");
  EXPECT_EQ(emptyPassword.user, "app");
  EXPECT_EQ(emptyPassword.password, "");

  auto v6 = parseMySqlUrl("mysql://app:pw@[::1]:3308/db");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 3308);
  auto v6NoPort = parseMySqlUrl("mysql://app:pw@[fe80::1]/db");
  EXPECT_EQ(v6NoPort.host, "fe80::1");
  EXPECT_EQ(v6NoPort.port, 3306);

  auto encoded = parseMySqlUrl("mysql://us%40er:p%3Aw%2F%40%25@h:1/db");
  EXPECT_EQ(encoded.user, "us@er");
  EXPECT_EQ(encoded.password, "p:w/@%");
  EXPECT_EQ(encoded.port, 1);

  auto socket = parseMySqlUrl("mysql://app:pw@localhost/db?socket=/run/my%20sql/mysqld.sock");
  EXPECT_EQ(socket.socketPath, "/run/my sql/mysqld.sock");
  EXPECT_EQ(socket.database, "db");
  EXPECT_EQ(socket.user, "app");

  auto edges = parseMySqlUrl("mysql://a@h:65535/" + std::string(60, 'x') + "_$9Z");
  EXPECT_EQ(edges.port, 65535);
  EXPECT_EQ(edges.database, std::string(60, 'x') + "_$9Z");
  EXPECT_EQ(parseMySqlUrl("mysql://a@h/d").database, "d");
}

TEST(ParseMySqlUrl, DescribeNamesTheServerButNeverThePassword) {
  auto tcp = parseMySqlUrl("mysql://app:s3cretPW@h:3307/db");
  EXPECT_NE(tcp.describe().find("h:3307"), std::string::npos) << tcp.describe();
  EXPECT_EQ(tcp.describe().find("s3cretPW"), std::string::npos);
  auto socket = parseMySqlUrl("mysql://app:s3cretPW@localhost/db?socket=/tmp/m.sock");
  EXPECT_NE(socket.describe().find("/tmp/m.sock"), std::string::npos) << socket.describe();
  EXPECT_EQ(socket.describe().find("s3cretPW"), std::string::npos);
}

struct Refusal {
  const char* what;
  std::string url;
};

TEST(ParseMySqlUrl, RefusesEveryMalformedUrlWithoutRepeatingThePassword) {
  const std::string pw = "s3cretPW";
  const std::vector<Refusal> refusals = {
      {"no user", "mysql://h/db"},
      {"empty user", "mysql://:" + pw + "@h/db"},
      {"port 0", "mysql://u:" + pw + "@h:0/db"},
      {"port too big", "mysql://u:" + pw + "@h:65536/db"},
      {"port not a number", "mysql://u:" + pw + "@h:33o6/db"},
      {"negative port", "mysql://u:" + pw + "@h:-1/db"},
      {"empty port", "mysql://u:" + pw + "@h:/db"},
      {"no database", "mysql://u:" + pw + "@h"},
      {"empty database", "mysql://u:" + pw + "@h/"},
      {"database with a dash", "mysql://u:" + pw + "@h/anm-test"},
      {"database with a dot", "mysql://u:" + pw + "@h/a.b"},
      {"database of 65 bytes", "mysql://u:" + pw + "@h/" + std::string(65, 'd')},
      {"database with a slash", "mysql://u:" + pw + "@h/a/b"},
      {"unknown scheme", "postgres://u:" + pw + "@h/db"},
      {"http scheme", "http://u:" + pw + "@h/db"},
      {"no scheme", "u:" + pw + "@h/db"},
      {"unknown parameter", "mysql://u:" + pw + "@h/db?ssl=true"},
      {"unknown parameter after socket", "mysql://u:" + pw + "@h/db?socket=/s&timeout=3"},
      {"relative socket", "mysql://u:" + pw + "@localhost/db?socket=mysqld.sock"},
      {"no host", "mysql://u:" + pw + "@/db"},
      {"unclosed IPv6 bracket", "mysql://u:" + pw + "@[::1/db"},
      {"bad percent-encoding in the password", "mysql://u:" + pw + "%zz@h/db"},
      {"truncated percent-encoding in the password", "mysql://u:" + pw + "%4@h/db"},
      {"empty", ""},
  };
  for (const auto& refusal : refusals) {
    try {
      auto endpoint = parseMySqlUrl(refusal.url);
      ADD_FAILURE() << refusal.what << ": accepted " << refusal.url << " as database "
                    << endpoint.database;
    } catch (const std::invalid_argument& e) {
      std::string message = e.what();
      EXPECT_FALSE(message.empty()) << refusal.what;
      EXPECT_EQ(message.find(pw), std::string::npos)
          << refusal.what << ": the message repeats the password: " << message;
    }
  }
}

// --- (i) one event the server refuses fails alone ---

/// Holds the first batch a store commits until the test lets it go, and records the id range
/// of every batch that reached its COMMIT.
class BatchGate {
 public:
  std::function<void(int64_t, int64_t)> hook() {
    return [this](int64_t firstId, int64_t lastId) {
      std::unique_lock<std::mutex> lock(mutex_);
      ranges_.emplace_back(firstId, lastId);
      if (!armed_) return;
      armed_ = false;
      held_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return released_; });
      held_ = false;
    };
  }

  /// Makes the next batch wait in its hook until release().
  void arm() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = true;
    released_ = false;
  }

  bool waitHeld(std::chrono::milliseconds limit = 30s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return held_; });
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

  std::vector<std::pair<int64_t, int64_t>> ranges() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ranges_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = false;
  bool held_ = false;
  bool released_ = false;
  std::vector<std::pair<int64_t, int64_t>> ranges_;
};

TEST_F(MySqlStoreTest, EventOverMaxAllowedPacketFailsAloneAndItsBatchMatesAreStored) {
  constexpr int kSmallPerRound = 8;
  constexpr int kMaxRounds = 3;

  // The oversized body and the small ones must fit one batch: under the default byte limit
  // (32 MiB) the big body would always be committed on its own.
  BatchGate gate;
  MySqlOptions batching = options();
  batching.maxBatchBytes = size_t{512} << 20;
  batching.beforeCommitForTest = gate.hook();
  auto store = MySqlStore::open(batching);
  store->createHook(makeHook("h"));

  // One byte over what the server takes in one packet (scripts/mariadb: 64 MiB): the server
  // refuses the INSERT carrying it with error 1105.
  const int64_t packet = store->maxPacketBytes();
  ASSERT_GT(packet, 0);
  ASSERT_LE(packet, int64_t{256} << 20) << "the test would hold too large a body in memory";
  const std::string bigBody(static_cast<size_t>(packet) + 1, 'B');

  // Every acknowledged id with the body it must read back.
  std::mutex mutex;
  std::map<int64_t, std::string> stored;
  std::vector<std::string> bigErrors;
  std::vector<std::string> smallErrors;
  bool shared = false;
  int rounds = 0;
  for (; rounds < kMaxRounds && !shared && smallErrors.empty(); ++rounds) {
    const MySqlStats before = store->stats();

    // A first append takes the writer and stays in its batch, so that everything appended
    // meanwhile queues and goes into the next batch together.
    gate.arm();
    std::atomic<int> entered{0};
    TestThreads appenders([&] { gate.release(); });
    appenders.start([&] {
      const std::string body = "hold " + std::to_string(rounds);
      const int64_t id = store->appendEvent(makeEvent("h", body));
      std::lock_guard<std::mutex> lock(mutex);
      stored.emplace(id, body);
    });
    ASSERT_TRUE(gate.waitHeld()) << "the first batch never reached its commit";
    for (int i = 0; i < kSmallPerRound; ++i) {
      appenders.start([&, i] {
        const std::string body =
            std::string("small\0\xff\r\n", 9) + std::to_string(rounds) + ":" + std::to_string(i);
        EventRecord event = makeEvent("h", body);
        ++entered;
        try {
          const int64_t id = store->appendEvent(std::move(event));
          std::lock_guard<std::mutex> lock(mutex);
          stored.emplace(id, body);
        } catch (const StoreError& e) {
          std::lock_guard<std::mutex> lock(mutex);
          smallErrors.push_back(e.what());
        }
      });
    }
    appenders.start([&] {
      EventRecord event = makeEvent("h", bigBody);
      ++entered;
      try {
        const int64_t id = store->appendEvent(std::move(event));
        ADD_FAILURE() << "an event over max_allowed_packet was acknowledged as id " << id;
      } catch (const StoreError& e) {
        std::lock_guard<std::mutex> lock(mutex);
        bigErrors.push_back(e.what());
      }
    });

    // Every appender has called appendEvent; the pause lets each reach the writer's queue (a
    // few microseconds of work) before the held batch ends. Nothing is measured here.
    ASSERT_TRUE(waitUntil([&] { return entered.load() == kSmallPerRound + 1; }));
    std::this_thread::sleep_for(300ms);
    gate.release();
    appenders.join();

    // A batch holding the big event fails, then each of its events is tried alone, the big
    // one failing again: two failed batches. The big one alone from the start fails once.
    const uint64_t failed = store->stats().failedBatches - before.failedBatches;
    EXPECT_GE(failed, 1u);
    shared = failed >= 2;
  }
  RecordProperty("rounds", rounds);
  for (const auto& error : smallErrors) ADD_FAILURE() << "a small event failed: " << error;
  ASSERT_TRUE(smallErrors.empty()) << "the refused event took its batch mates down with it";
  ASSERT_TRUE(shared) << "in " << rounds << " rounds the big event never shared a batch";
  ASSERT_EQ(bigErrors.size(), static_cast<size_t>(rounds));
  EXPECT_NE(bigErrors[0].find("max_allowed_packet"), std::string::npos) << bigErrors[0];

  // The connection is not poisoned: the next append succeeds on its own.
  const int64_t after = store->appendEvent(makeEvent("h", "after"));
  stored.emplace(after, "after");
  EXPECT_EQ(stored.rbegin()->first, after) << "an id went back after the refused event";

  // Every acknowledged event is stored byte for byte, the refused one is not, and its rolled
  // back ids were handed out again (no gap).
  ASSERT_EQ(stored.size(), static_cast<size_t>(rounds * (kSmallPerRound + 1) + 1));
  std::vector<int64_t> ids;
  for (const auto& [id, body] : stored) {
    ids.push_back(id);
    auto event = store->getEvent("h", id);
    ASSERT_TRUE(event.has_value()) << "acknowledged id " << id << " is not stored";
    EXPECT_TRUE(event->body == body) << "id " << id << " came back changed";
    EXPECT_EQ(event->headers, makeEvent("h", body).headers) << "id " << id;
  }
  EXPECT_TRUE(contiguous(ids));
  auto raw = database_->connect();
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM events"), static_cast<int64_t>(stored.size()));
  EXPECT_EQ(
      raw->queryInt("SELECT COUNT(*) FROM events WHERE body_size > " + std::to_string(packet)), 0);

  // The small ones of the failed batch committed one by one.
  size_t singles = 0;
  for (const auto& [first, last] : gate.ranges()) singles += first == last ? 1 : 0;
  EXPECT_GE(singles, static_cast<size_t>(kSmallPerRound));
}

// --- (j) the packet limit the edge checks its body limit against ---

TEST_F(MySqlStoreTest, MaxPacketBytesIsTheServersMaxAllowedPacket) {
  auto store = MySqlStore::open(options());
  auto raw = database_->connect();
  const int64_t serverValue = raw->queryInt("SELECT @@max_allowed_packet");
  EXPECT_GT(serverValue, 0);
  EXPECT_EQ(store->maxPacketBytes(), serverValue);
}

// --- (k) ids never go back, even when the counter row does ---

TEST_F(MySqlStoreTest, IdsStayAboveEveryIdHandedOutAfterTheCounterWasLowered) {
  NoticeLog log;
  auto store = MySqlStore::open(options());
  store->createHook(makeHook("h"));
  store->setNoticeListener(log.listener());
  std::vector<int64_t> before;
  for (int i = 0; i < 3; ++i) before.push_back(store->appendEvent(makeEvent("h", "b")));
  ASSERT_TRUE(log.waitFor(before.back()));

  // What a restore of an older copy of the database would do to the counter.
  auto raw = database_->connect();
  raw->execute("UPDATE sequences SET value = value - 10 WHERE name = 'event_id'");
  ASSERT_EQ(raw->queryInt("SELECT value FROM sequences WHERE name = 'event_id'"),
            before.back() - 10);

  int64_t next = 0;
  try {
    next = store->appendEvent(makeEvent("h", "after the restore"));
  } catch (const StoreError& e) {
    FAIL() << "the append after the counter went back failed: " << e.what();
  }
  EXPECT_GT(next, *std::max_element(before.begin(), before.end()));
  EXPECT_TRUE(log.waitFor(next)) << "id " << next << " was never announced";
  EXPECT_EQ(log.ids().back(), next);
  auto listed = idsOf(listAll(*store, "h"));
  EXPECT_EQ(listed.back(), next);
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  store->setNoticeListener(nullptr);
}

TEST_F(MySqlStoreTest, StoreOpenedOnACounterBehindItsEventsContinuesAboveTheNewest) {
  std::vector<int64_t> before;
  {
    auto first = MySqlStore::open(options());
    first->createHook(makeHook("h"));
    for (int i = 0; i < 3; ++i) before.push_back(first->appendEvent(makeEvent("h", "b")));
  }

  // The counter is behind rows that exist when the store opens, as after a bad restore.
  auto raw = database_->connect();
  raw->execute("UPDATE sequences SET value = value - 10 WHERE name = 'event_id'");

  NoticeLog log;
  auto store = MySqlStore::open(options());
  store->setNoticeListener(log.listener());
  int64_t next = 0;
  try {
    next = store->appendEvent(makeEvent("h", "after opening"));
  } catch (const StoreError& e) {
    FAIL() << "the first append of a store opened on a lagging counter failed: " << e.what();
  }
  EXPECT_GT(next, before.back());
  EXPECT_TRUE(log.waitFor(next)) << "id " << next << " was never announced";
  auto listed = idsOf(listAll(*store, "h"));
  ASSERT_FALSE(listed.empty());
  EXPECT_EQ(listed.back(), next);
  EXPECT_EQ(listed.size(), before.size() + 1);
  store->setNoticeListener(nullptr);
}

TEST_F(MySqlStoreTest, IdsStayAboveEveryIdHandedOutAfterAnOlderCopyWasRestored) {
  NoticeLog log;
  auto store = MySqlStore::open(options());
  store->createHook(makeHook("h"));
  store->setNoticeListener(log.listener());
  std::vector<int64_t> before;
  for (int i = 0; i < 12; ++i) before.push_back(store->appendEvent(makeEvent("h", "b")));
  ASSERT_TRUE(log.waitFor(before.back()));

  // An older copy: the last ten events are gone and the counter is back where it was then, so
  // the counter alone would hand their ids out again, to relays that already have them.
  const int64_t restoredTo = before.back() - 10;
  auto raw = database_->connect();
  raw->execute("DELETE FROM events WHERE id > " + std::to_string(restoredTo));
  raw->execute("UPDATE sequences SET value = " + std::to_string(restoredTo) +
               " WHERE name = 'event_id'");

  int64_t next = 0;
  try {
    next = store->appendEvent(makeEvent("h", "after the restore"));
  } catch (const StoreError& e) {
    FAIL() << "the append after the restore failed: " << e.what();
  }
  EXPECT_GT(next, *std::max_element(before.begin(), before.end())) << "an id was handed out again";
  EXPECT_TRUE(log.waitFor(next)) << "id " << next << " was never announced";
  EXPECT_EQ(log.ids().back(), next);
  store->setNoticeListener(nullptr);
}

// --- (l) an edge whose user may only read and write rows ---

/// The variable naming a user with only SELECT, INSERT and UPDATE (scripts/mariadb sets it).
constexpr const char* kMySqlRwUrlVariable = "ANM_TEST_MYSQL_RW_URL";

class MySqlLeastPrivilegeTest : public MySqlStoreTest {
 protected:
  void SetUp() override {
    MySqlStoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const char* url = std::getenv(kMySqlRwUrlVariable);
    if (url == nullptr || *url == '\0') {
      if (std::getenv("CI") != nullptr) GTEST_FAIL() << kMySqlRwUrlVariable << " is not set";
      GTEST_SKIP() << kMySqlRwUrlVariable << " is not set: start the server with scripts/mariadb";
    }
    rwServer_ = parseMySqlUrl(url);
  }

  /// Options of the row-only user for `database`.
  MySqlOptions rwOptions(const TestDatabase& database) const {
    MySqlOptions options;
    options.endpoint = rwServer_;
    options.endpoint.database = database.name();
    return options;
  }

  MySqlEndpoint rwServer_;
};

TEST_F(MySqlLeastPrivilegeTest, RowOnlyUserRunsOnASchemaTheFullUserCreated) {
  { MySqlStore::open(options()); }

  NoticeLog log;
  std::unique_ptr<MySqlStore> store;
  try {
    store = MySqlStore::open(rwOptions(*database_));
  } catch (const StoreError& e) {
    FAIL() << "the row-only user could not open a current schema: " << e.what();
  }
  store->setNoticeListener(log.listener());
  store->createHook(makeHook("h"));
  const std::string body("least\0privilege", 15);
  const int64_t id = store->appendEvent(makeEvent("h", body));
  EXPECT_TRUE(log.waitFor(id));
  auto listed = store->listEvents("h", 0, 10, true, false);
  ASSERT_EQ(idsOf(listed), std::vector<int64_t>{id});
  EXPECT_TRUE(listed[0].body == body);
  store->addDelivery({id, "r", 200, 1, "", 1});
  EXPECT_EQ(store->listDeliveries(id).size(), 1u);
  store->setNoticeListener(nullptr);
}

TEST_F(MySqlLeastPrivilegeTest, RowOnlyUserOnAFreshDatabaseIsRefusedNamingTheMissingPrivilege) {
  try {
    MySqlStore::open(rwOptions(*database_));
    FAIL() << "the row-only user opened a database without a schema";
  } catch (const StoreError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("CREATE command denied"), std::string::npos) << message;
    EXPECT_NE(message.find("needs CREATE, ALTER, INDEX and REFERENCES"), std::string::npos)
        << message;
    EXPECT_NE(message.find(database_->name()), std::string::npos) << message;
    EXPECT_EQ(message.find(rwServer_.password), std::string::npos) << "the password leaked";
  }

  // Nothing half-made is left: the full user still creates the whole schema afterwards.
  auto raw = database_->connect();
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM information_schema.TABLES"
                          " WHERE TABLE_SCHEMA = DATABASE()"),
            0);
  auto store = MySqlStore::open(options());
  store->createHook(makeHook("h"));
  EXPECT_GT(store->appendEvent(makeEvent("h")), 0);
}

TEST_F(MySqlLeastPrivilegeTest, ReadOnlyUserIsRefusedAtOpenNamingThePrivilege) {
  const char* url = std::getenv("ANM_TEST_MYSQL_RO_URL");
  if (url == nullptr || *url == '\0') {
    if (std::getenv("CI") != nullptr) GTEST_FAIL() << "ANM_TEST_MYSQL_RO_URL is not set";
    GTEST_SKIP() << "ANM_TEST_MYSQL_RO_URL is not set: start the server with scripts/mariadb";
  }
  { MySqlStore::open(options()); }

  // A user who may read but not write would otherwise start and refuse every webhook.
  MySqlOptions readOnly;
  readOnly.endpoint = parseMySqlUrl(url);
  readOnly.endpoint.database = database_->name();
  try {
    MySqlStore::open(readOnly);
    FAIL() << "a store opened for a user without INSERT or UPDATE";
  } catch (const StoreError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("command denied"), std::string::npos) << message;
    EXPECT_NE(message.find("lacks a privilege"), std::string::npos) << message;
    EXPECT_EQ(message.find(readOnly.endpoint.password), std::string::npos) << "the password leaked";
  }
}

// --- (m) a writer that stops answering loses its session and the counter row ---

// The writer's session ends after this many seconds without a statement (docs/scaling.md,
// kWriterIdleSeconds in the store).
constexpr auto kWriterIdle = 10s;

TEST_F(MySqlStoreTest, WriterStuckBeforeCommitLosesTheCounterRowAfterItsIdleTimeout) {
  BatchGate gate;
  MySqlOptions stuck = options();
  stuck.beforeCommitForTest = gate.hook();
  MySqlOptions patient = options();
  patient.lockWaitTimeout = 15s;  // past the idle timeout: B waits for the lock, not fails
  auto storeA = MySqlStore::open(stuck);
  storeA->createHook(makeHook("h"));
  auto storeB = MySqlStore::open(patient);
  ASSERT_TRUE(storeB->findHook("h").has_value());

  // A's batch stops after its INSERT, holding the counter row, for longer than the idle
  // timeout; B's append comes right after and needs the row.
  gate.arm();
  std::atomic<bool> aFailed{false};
  std::string aError;
  TestThreads threads([&] { gate.release(); });
  threads.start([&] {
    try {
      const int64_t id = storeA->appendEvent(makeEvent("h", "from-a"));
      ADD_FAILURE() << "A's batch was acknowledged as id " << id
                    << " though its session should have ended";
    } catch (const StoreError& e) {
      aError = e.what();
      aFailed = true;
    }
  });
  ASSERT_TRUE(gate.waitHeld());
  const auto heldAt = std::chrono::steady_clock::now();
  std::atomic<int64_t> idB{0};
  std::atomic<int64_t> msB{-1};
  threads.start([&] {
    try {
      idB = storeB->appendEvent(makeEvent("h", "from-b"));
    } catch (const StoreError& e) {
      ADD_FAILURE() << "B's append failed: " << e.what();
      idB = -1;
    }
    msB = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                heldAt)
              .count();
  });

  // The idle timeout is the behaviour: B gets the row within it plus a margin, while A is
  // still stuck (A is let go only after idle + 3 s).
  const auto limitB = kWriterIdle + 2s;
  EXPECT_TRUE(waitUntil([&] { return msB.load() >= 0; }, limitB))
      << "B still waited " << limitB.count() << " s after A got stuck: A kept the counter row";
  std::this_thread::sleep_until(heldAt + kWriterIdle + 3s);
  gate.release();
  threads.join();
  RecordProperty("b_waited_ms", static_cast<int>(msB.load()));
  EXPECT_GT(idB.load(), 0);
  EXPECT_TRUE(aFailed.load());
  RecordProperty("a_error", aError);

  // A's event is not stored; B's is.
  auto raw = database_->connect();
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM events WHERE body = 'from-a'"), 0);
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM events WHERE body = 'from-b'"), 1);

  // A reconnects and stores again, after B's id.
  int64_t again = 0;
  EXPECT_NO_THROW(again = storeA->appendEvent(makeEvent("h", "a again")));
  EXPECT_GT(again, idB.load());
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM events WHERE body = 'a again'"), 1);
  EXPECT_GT(storeA->stats().reconnects, 0u);
}

// --- (n) accounts, named hooks, relay leases and encryption at rest on a shared database ---

/// A holder of a ring of fresh keys with these ids; the last is active.
std::shared_ptr<crypto::KeyHolder> keyHolder(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += crypto::KeyRing::newKeyLine(id) + "\n";
  return std::make_shared<crypto::KeyHolder>(crypto::KeyRing::parse(text, "test keys"));
}

AccountRecord makeAccount(const std::string& id, const std::string& name) {
  AccountRecord account;
  account.id = id;
  account.name = name;
  account.plan = Plan::kFree;
  account.createdAtMs = 1700000000000;
  return account;
}

/// A named hook of `accountId` with every field of schema 2 set.
HookRecord makeNamedHook(const std::string& id, const std::string& accountId,
                         const std::string& name) {
  HookRecord hook = makeHook(id);
  hook.tokenHash.clear();
  hook.accountId = accountId;
  hook.name = name;
  hook.signingSecret = "whsec_current";
  hook.previousSigningSecret = "whsec_previous";
  hook.previousValidUntilMs = 1700000100000;
  hook.standardWebhooks = true;
  hook.customResponse = CustomResponse{202, {{"X-A", "b"}}, "accepted"};
  return hook;
}

class MySqlAccountTest : public MySqlStoreTest {
 protected:
  MySqlOptions keyedOptions(std::shared_ptr<crypto::KeyHolder> keys) const {
    MySqlOptions keyed = options();
    keyed.keys = std::move(keys);
    return keyed;
  }
};

TEST_F(MySqlAccountTest, CreateHookWithinFromTwoStoresAtOnceNeverPassesTheLimit) {
  auto keys = keyHolder({"k1"});
  auto first = MySqlStore::open(keyedOptions(keys));
  auto second = MySqlStore::open(keyedOptions(keys));
  constexpr size_t kLimit = 3;
  constexpr int kRounds = 5;
  constexpr int kThreadsPerStore = 4;

  for (int round = 0; round < kRounds; ++round) {
    const std::string account = "acc_" + std::to_string(round);
    first->createAccount(makeAccount(account, "team" + std::to_string(round)));

    // Every thread starts together and creates a differently named hook.
    std::atomic<int> ready{0};
    std::atomic<int> created{0};
    std::atomic<int> refused{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
      Store& store = t % 2 == 0 ? static_cast<Store&>(*first) : static_cast<Store&>(*second);
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < 2 * kThreadsPerStore) std::this_thread::yield();
        const std::string suffix = std::to_string(round) + "_" + std::to_string(t);
        try {
          store.createHookWithin(makeNamedHook("h" + suffix, account, "n" + suffix), kLimit);
          ++created;
        } catch (const LimitError&) {
          ++refused;
        } catch (const std::exception&) {
          ++failed;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(failed.load(), 0) << "round " << round;
    EXPECT_EQ(created.load(), static_cast<int>(kLimit)) << "round " << round;
    EXPECT_EQ(refused.load(), 2 * kThreadsPerStore - static_cast<int>(kLimit)) << "round " << round;
    EXPECT_EQ(second->listHooks(account).size(), kLimit) << "round " << round;
  }
}

TEST_F(MySqlAccountTest, CreateHookWithinNamesATakenNameBeforeTheLimitAndNeedsTheAccount) {
  auto store = MySqlStore::open(options());
  store->createAccount(makeAccount("acc_a", "a"));
  store->createHookWithin(makeNamedHook("h1", "acc_a", "main"), 1);
  EXPECT_THROW(store->createHookWithin(makeNamedHook("h2", "acc_a", "main"), 1), ConflictError);
  EXPECT_THROW(store->createHookWithin(makeNamedHook("h3", "acc_a", "other"), 1), LimitError);
  try {
    store->createHookWithin(makeNamedHook("h4", "acc_missing", "main"), 1);
    FAIL() << "a hook was created for an account that does not exist";
  } catch (const ConflictError&) {
    FAIL() << "an unknown account is not a name conflict";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown account"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(store->findHook("h4").has_value());
}

TEST_F(MySqlAccountTest, ClaimRelayFromTwoStoresAtOnceHasOneWinner) {
  auto first = MySqlStore::open(options());
  auto second = MySqlStore::open(options());
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::string hookId = "h" + std::to_string(round);
    first->createHook(makeHook(hookId));
    const int64_t now = 1000;

    std::atomic<int> ready{0};
    bool won[2] = {false, false};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (ready.load() < 2) std::this_thread::yield();
        Store& store = i == 0 ? static_cast<Store&>(*first) : static_cast<Store&>(*second);
        won[i] = store.claimRelay(hookId, "relay" + std::to_string(i), now, now + 30000);
      });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_NE(won[0], won[1]) << "round " << round << ": both or neither won";

    // The winner renews (also with an unchanged lease), the loser waits for the lease to end.
    const int winner = won[0] ? 0 : 1;
    const std::string winnerId = "relay" + std::to_string(winner);
    const std::string loserId = "relay" + std::to_string(1 - winner);
    EXPECT_TRUE(second->claimRelay(hookId, winnerId, now + 1, now + 30000));
    EXPECT_FALSE(first->claimRelay(hookId, loserId, now + 29999, now + 60000));
    EXPECT_TRUE(first->claimRelay(hookId, loserId, now + 30001, now + 60000));
    second->releaseRelay(hookId, winnerId);  // not the holder: changes nothing
    EXPECT_FALSE(second->claimRelay(hookId, winnerId, now + 30002, now + 60000));
    first->releaseRelay(hookId, loserId);
    EXPECT_TRUE(second->claimRelay(hookId, winnerId, now + 30003, now + 60000));
  }
  EXPECT_FALSE(first->claimRelay("no-such-hook", "relay0", 0, 1));
}

TEST_F(MySqlAccountTest, NoRowOfAnyTableHoldsAMarkerPutInEveryEncryptedField) {
  const std::string marker = "MARKER-7f3a9c";
  auto fill = [&](Store& store) {
    HookRecord hook = makeNamedHook("h", "acc_a", "main");
    hook.secret = marker + "-secret";
    hook.signingSecret = marker + "-signing";
    hook.previousSigningSecret = marker + "-previous";
    store.createAccount(makeAccount("acc_a", "a"));
    store.createHook(hook);
    hook.signingSecret = marker + "-rotated";
    ASSERT_TRUE(store.updateHook(hook));
    EventRecord event = makeEvent("h", "{\"card\":\"" + marker + "-body\"}");
    event.rawQuery = "q=" + marker + "-query";
    event.headers.push_back({"X-Card", marker + "-header"});
    event.pathSuffix = "/" + marker + "-path";
    event.reasonMessage = "quoted " + marker + "-message";
    event.eventType = marker + "-type";
    event.deliveryId = marker + "-delivery";
    const int64_t id = store.appendEvent(event);
    DeliveryRecord delivery = makeDelivery(id, "relay", 1700000000999);
    delivery.responseExcerpt = "{\"echo\":\"" + marker + "-excerpt\"}";
    delivery.location = "/login?" + marker + "-location";
    store.addDelivery(delivery);
    store.setSetting("auth.jwt_key", marker + "-setting");
    EXPECT_EQ(store.putSettingIfAbsent("other", marker + "-absent"), marker + "-absent");

    // The store itself still gives everything back.
    auto stored = store.getEvent("h", id);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->body, event.body);
    EXPECT_EQ(stored->rawQuery, event.rawQuery);
    EXPECT_EQ(stored->headers, event.headers);
    EXPECT_EQ(stored->pathSuffix, event.pathSuffix);
    EXPECT_EQ(stored->reasonMessage, event.reasonMessage);
    EXPECT_EQ(stored->eventType, event.eventType);
    EXPECT_EQ(stored->deliveryId, event.deliveryId);
    EXPECT_EQ(store.listDeliveries(id).at(0).responseExcerpt, delivery.responseExcerpt);
    EXPECT_EQ(store.listDeliveries(id).at(0).location, delivery.location);
    EXPECT_EQ(store.findHook("h")->signingSecret, marker + "-rotated");
    EXPECT_EQ(*store.getSetting("auth.jwt_key"), marker + "-setting");
  };

  { fill(*MySqlStore::open(keyedOptions(keyHolder({"k1"})))); }
  const std::string sealed = everyStoredByte(*database_->connect());
  EXPECT_EQ(sealed.find("MARKER"), std::string::npos) << "a marker is stored in the clear";

  // The same without a key ring finds every marker: the scan sees the rows it must.
  TestDatabase clear(server_);
  MySqlOptions clearOptions;
  clearOptions.endpoint = clear.endpoint();
  { fill(*MySqlStore::open(clearOptions)); }
  const std::string plain = everyStoredByte(*clear.connect());
  for (const char* field :
       {"-secret", "-rotated", "-previous", "-body", "-query", "-header", "-path", "-message",
        "-type", "-delivery", "-setting", "-absent", "-excerpt", "-location"}) {
    EXPECT_NE(plain.find(marker + field), std::string::npos) << field;
  }
}

TEST_F(MySqlAccountTest, FlippedByteInABodyCiphertextGivesIntegrityErrorForThatEventOnly) {
  auto store = MySqlStore::open(keyedOptions(keyHolder({"k1"})));
  store->createHook(makeHook("h"));
  const int64_t good = store->appendEvent(makeEvent("h", "intact"));
  const int64_t bad = store->appendEvent(makeEvent("h", "changed"));
  flipCiphertextByte(*database_->connect(), bad);

  auto fetched = store->getEvent("h", bad);
  ASSERT_TRUE(fetched.has_value());
  EXPECT_FALSE(fetched->integrityError.empty());
  EXPECT_NE(fetched->integrityError.find(std::to_string(bad)), std::string::npos)
      << fetched->integrityError;
  EXPECT_TRUE(fetched->body.empty());
  EXPECT_TRUE(fetched->headers.empty());

  // The summary fields are sealed with the contents and go with them.
  EXPECT_TRUE(fetched->eventType.empty());
  EXPECT_TRUE(fetched->deliveryId.empty());

  auto listed = store->listEvents("h", 0, 10, true, false);
  ASSERT_EQ(idsOf(listed), (std::vector<int64_t>{good, bad}));
  EXPECT_TRUE(listed[0].integrityError.empty());
  EXPECT_EQ(listed[0].body, "intact");
  EXPECT_FALSE(listed[1].integrityError.empty());
}

TEST_F(MySqlAccountTest, StoreWithoutKeysRefusesADatabaseHoldingSealedRecords) {
  {
    auto store = MySqlStore::open(keyedOptions(keyHolder({"k1"})));
    store->setSetting("s", "v");
  }
  try {
    MySqlStore::open(options());
    FAIL() << "a store without keys opened a database with sealed records";
  } catch (const StoreError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("key k1"), std::string::npos) << message;
    EXPECT_NE(message.find("no key ring"), std::string::npos) << message;
  }
}

TEST_F(MySqlAccountTest, OwnHookChangesShowAtOnceAndAnotherStoresWithinTheCacheAge) {
  auto writer = MySqlStore::open(options());
  auto reader = MySqlStore::open(options());
  HookRecord hook = makeNamedHook("h", "acc_a", "main");
  writer->createHook(hook);
  ASSERT_EQ(reader->findHook("h")->signingSecret, "whsec_current");  // now cached
  ASSERT_EQ(writer->findHook("h")->signingSecret, "whsec_current");

  hook.signingSecret = "whsec_rotated";
  ASSERT_TRUE(writer->updateHook(hook));
  EXPECT_EQ(writer->findHook("h")->signingSecret, "whsec_rotated");

  // The other store's entry ages out (kHookCacheMs); the limit only bounds a hang.
  EXPECT_TRUE(waitUntil([&] { return reader->findHook("h")->signingSecret == "whsec_rotated"; }));

  // The same for an update to the same values (no row changes) and an unknown hook.
  EXPECT_TRUE(writer->updateHook(hook));
  EXPECT_FALSE(writer->updateHook(makeHook("missing")));
}

TEST_F(MySqlAccountTest, ExpiredHooksAreErasedWithTheirEventsContentsAndNotReturned) {
  auto store = MySqlStore::open(keyedOptions(keyHolder({"k1"})));
  HookRecord expired = makeHook("old");
  expired.expiresAtMs = 5000;
  HookRecord live = makeHook("new");
  live.expiresAtMs = 50000;
  store->createHook(expired);
  store->createHook(live);
  const int64_t gone = store->appendEvent(makeEvent("old", "erase me"));
  const int64_t kept = store->appendEvent(makeEvent("new", "keep me"));
  store->addDelivery({gone, "r", 200, 1, "", 1});

  // Extension moves forward only, never back.
  store->extendHook("new", 40000);
  EXPECT_EQ(store->findHook("new")->expiresAtMs, 50000);
  store->extendHook("new", 60000);
  EXPECT_EQ(store->findHook("new")->expiresAtMs, 60000);

  EXPECT_EQ(store->deleteExpiredHooks(10000), 1u);
  EXPECT_EQ(store->deleteExpiredHooks(10000), 0u);
  EXPECT_FALSE(store->findHook("old").has_value());
  EXPECT_FALSE(store->getEvent("old", gone).has_value());
  EXPECT_TRUE(store->listEvents("old", 0, 10, true, false).empty());
  EXPECT_EQ(store->getEvent("new", kept)->body, "keep me");

  // The rows stay, with nothing of the contents or secrets left in them.
  auto raw = database_->connect();
  auto rows = raw->query(
      "SELECT erased, LENGTH(body), LENGTH(headers), LENGTH(raw_query), "
      "LENGTH(wrapped_key), event_type FROM events WHERE id = " +
      std::to_string(gone));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "0", "0", "0", "0", ""}));
  auto hookRow = raw->query(
      "SELECT LENGTH(secret), LENGTH(signing_secret), token_hash, deleted_at_ms > 0 "
      "FROM hooks WHERE id = 'old'");
  ASSERT_EQ(hookRow.size(), 1u);
  EXPECT_EQ(hookRow[0], (std::vector<std::string>{"0", "0", "", "1"}));
  EXPECT_EQ(store->keyUsage().size(), 1u);  // k1 only: erased rows are not counted

  // The cleanup README "Running on MySQL" gives an administrator, while the store runs.
  raw->execute("DELETE FROM events WHERE erased = 1");
  raw->execute(
      "DELETE FROM hooks WHERE deleted_at_ms > 0 AND id NOT IN (SELECT hook_id FROM events)");
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM events WHERE id = " + std::to_string(gone)), 0);
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM deliveries"), 0);
  EXPECT_EQ(raw->queryInt("SELECT COUNT(*) FROM hooks"), 1);
  EXPECT_EQ(store->getEvent("new", kept)->body, "keep me");
  EXPECT_GT(store->appendEvent(makeEvent("new", "later")), kept);
}

/// Migration 1 exactly as released: a database an older edge created and filled.
void createSchemaVersion1(SqlConnection& raw) {
  raw.execute(
      "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, description "
      "VARCHAR(255) NOT NULL, applied_at_ms BIGINT NOT NULL) ENGINE=InnoDB DEFAULT "
      "CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
  raw.execute(
      "CREATE TABLE hooks (id VARCHAR(64) NOT NULL PRIMARY KEY, provider VARCHAR(64) NOT NULL,"
      " secret BLOB NOT NULL, tolerance_s BIGINT NOT NULL, options MEDIUMBLOB NOT NULL,"
      " token_hash VARCHAR(64) NOT NULL, created_at_ms BIGINT NOT NULL) ENGINE=InnoDB DEFAULT"
      " CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
  raw.execute(
      "CREATE TABLE sequences (name VARCHAR(32) NOT NULL PRIMARY KEY, value BIGINT NOT NULL)"
      " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
  raw.execute(
      "CREATE TABLE events (id BIGINT NOT NULL PRIMARY KEY, hook_id VARCHAR(64) NOT NULL,"
      " received_at_ms BIGINT NOT NULL, method MEDIUMBLOB NOT NULL, path_suffix MEDIUMBLOB NOT"
      " NULL, raw_query MEDIUMBLOB NOT NULL, headers MEDIUMBLOB NOT NULL, body_size BIGINT NOT"
      " NULL, verdict INT NOT NULL, reason INT NOT NULL, reason_message MEDIUMBLOB NOT NULL,"
      " event_type MEDIUMBLOB NOT NULL, delivery_id MEDIUMBLOB NOT NULL, replay_of BIGINT NOT"
      " NULL DEFAULT 0, write_token VARBINARY(16) NOT NULL DEFAULT '', body LONGBLOB NOT NULL,"
      " KEY events_by_hook_id (hook_id, id), KEY events_by_hook_time (hook_id,"
      " received_at_ms), CONSTRAINT events_hook FOREIGN KEY (hook_id) REFERENCES hooks (id))"
      " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
  raw.execute(
      "CREATE TABLE deliveries (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, event_id BIGINT"
      " NOT NULL, relay_id MEDIUMBLOB NOT NULL, status INT NOT NULL, duration_ms BIGINT NOT NULL,"
      " error MEDIUMBLOB NOT NULL, reported_at_ms BIGINT NOT NULL, KEY deliveries_by_event"
      " (event_id, id), CONSTRAINT deliveries_event FOREIGN KEY (event_id) REFERENCES events"
      " (id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
  raw.execute(
      "INSERT INTO schema_migrations VALUES (1, 'hooks, events, deliveries and the event id "
      "counter', 0)");
  raw.execute("INSERT INTO hooks VALUES ('h', 'stripe', 'whsec_old', 300, '', '" +
              std::string(64, 'a') + "', 1700000000123)");
}

TEST_F(MySqlAccountTest, Version1DatabaseMigratesKeepsOldEventsReadableAndGetsThemEncrypted) {
  const std::string oldBody("old\0body", 8);
  {
    auto raw = database_->connect();
    createSchemaVersion1(*raw);
    for (int64_t id = 1; id <= 3; ++id) {
      EventRecord event = makeEvent("h", oldBody + std::to_string(id));
      event.id = id;
      raw->insertEvent(event);
    }
    raw->execute("INSERT INTO sequences VALUES ('event_id', 3)");
  }

  auto keys = keyHolder({"k1"});
  auto store = MySqlStore::open(keyedOptions(keys));
  auto raw = database_->connect();
  EXPECT_EQ(raw->queryInt("SELECT MAX(version) FROM schema_migrations"),
            MySqlStore::kSchemaVersion);

  // Old rows read as they were; the old hook is an anonymous one with no schema 2 settings.
  auto hook = store->findHook("h");
  ASSERT_TRUE(hook.has_value());
  EXPECT_EQ(hook->secret, "whsec_old");
  EXPECT_TRUE(hook->accountId.empty());
  EXPECT_FALSE(hook->customResponse.has_value());
  EXPECT_EQ(hook->expiresAtMs, 0);
  EXPECT_EQ(store->getEvent("h", 2)->body, oldBody + "2");

  // New events continue the ids, sealed.
  const int64_t fresh = store->appendEvent(makeEvent("h", "new body"));
  EXPECT_EQ(fresh, 4);
  auto usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].keyId, "");  // three events and the hook still in the clear
  EXPECT_EQ(usage[0].records, 4);
  EXPECT_EQ(usage[1].keyId, "k1");
  EXPECT_EQ(usage[1].records, 1);

  // Rotation work encrypts what schema 1 stored, and everything still reads the same.
  size_t total = 0;
  for (size_t done; (done = store->reencryptBatch(2)) > 0;) total += done;
  EXPECT_EQ(total, 4u);
  usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].keyId, "k1");
  EXPECT_EQ(usage[0].records, 5);
  auto all = listAll(*store, "h");
  ASSERT_EQ(idsOf(all), (std::vector<int64_t>{1, 2, 3, 4}));
  for (int64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(all[id - 1].integrityError.empty()) << all[id - 1].integrityError;
    EXPECT_TRUE(all[id - 1].body == oldBody + std::to_string(id)) << id;
    EXPECT_EQ(all[id - 1].rawQuery, "a=1&a=2&b");
  }
  EXPECT_EQ(store->findHook("h")->secret, "whsec_old");
  EXPECT_EQ(everyStoredByte(*raw).find("whsec_old"), std::string::npos);
  EXPECT_EQ(everyStoredByte(*raw).find("old\0body", 0, 8), std::string::npos);
}

TEST_F(MySqlAccountTest, Version1DatabaseOpensWithoutKeysAndStaysInTheClear) {
  {
    auto raw = database_->connect();
    createSchemaVersion1(*raw);
    EventRecord event = makeEvent("h", "plain");
    event.id = 1;
    raw->insertEvent(event);
    raw->execute("INSERT INTO sequences VALUES ('event_id', 1)");
  }
  auto store = MySqlStore::open(options());
  EXPECT_EQ(store->getEvent("h", 1)->body, "plain");
  EXPECT_EQ(store->getEvent("h", store->appendEvent(makeEvent("h", "plain too")))->body,
            "plain too");
  EXPECT_THROW(store->reencryptBatch(10), StoreError);
}

TEST_F(MySqlAccountTest, MigrationsRunAgainAfterACrashThatLeftThemUnrecorded) {
  { MySqlStore::open(options())->createHook(makeNamedHook("h", "acc_a", "main")); }

  // As if the server had gone away after the ALTERs, before the steps were recorded.
  auto raw = database_->connect();
  raw->execute("DELETE FROM schema_migrations WHERE version >= 2");
  auto store = MySqlStore::open(options());
  EXPECT_EQ(raw->queryInt("SELECT MAX(version) FROM schema_migrations"),
            MySqlStore::kSchemaVersion);
  EXPECT_EQ(store->findHook("h")->name, "main");
}

/// The summary fields an event of schema 2 held in the clear, with `marker` in each.
void storeSummaryInTheClear(SqlConnection& raw, int64_t eventId, const std::string& marker) {
  const SummaryFields clear = markedSummary(marker);
  raw.execute("UPDATE events SET path_suffix = '" + clear.pathSuffix + "', reason_message = '" +
              clear.reasonMessage + "', event_type = '" + clear.eventType + "', delivery_id = '" +
              clear.deliveryId + "' WHERE id = " + std::to_string(eventId));
}

TEST_F(MySqlAccountTest, SchemaTwoDatabaseHasItsSummaryFieldsSealedByTheMigration) {
  const std::string marker = "MARKER-51d2ae";
  auto keys = keyHolder({"k1"});
  std::vector<int64_t> ids;
  {
    auto store = MySqlStore::open(keyedOptions(keys));
    store->createHook(makeHook("h"));
    for (int i = 0; i < 3; ++i) ids.push_back(store->appendEvent(makeEvent("h", "body")));
  }

  // As a schema 2 build left it: contents sealed, summary fields in the clear, no seal version.
  auto raw = database_->connect();
  revertToSchemaThree(*raw);
  raw->execute("ALTER TABLE events DROP COLUMN seal_version");
  raw->execute("DELETE FROM schema_migrations WHERE version = 3");
  for (size_t i = 0; i < ids.size(); ++i) {
    storeSummaryInTheClear(*raw, ids[i], marker + std::to_string(i));
  }
  ASSERT_NE(everyStoredByte(*raw).find(marker), std::string::npos);

  // Without keys nothing could be sealed: refused, and the step is not recorded.
  try {
    MySqlStore::open(options());
    FAIL() << "a store without keys migrated sealed events";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("no key ring"), std::string::npos) << e.what();
  }
  EXPECT_EQ(raw->queryInt("SELECT MAX(version) FROM schema_migrations"), 2);

  auto store = MySqlStore::open(keyedOptions(keys));
  EXPECT_EQ(raw->queryInt("SELECT MAX(version) FROM schema_migrations"),
            MySqlStore::kSchemaVersion);
  auto all = listAll(*store, "h");
  ASSERT_EQ(idsOf(all), ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    expectMarkedSummary(all[i], marker + std::to_string(i));
    EXPECT_EQ(all[i].body, "body");
  }
  auto usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].keyId, "k1");
  EXPECT_EQ(usage[0].records, 4);  // the three events and the hook
  EXPECT_EQ(store->reencryptBatch(10), 0u);
  EXPECT_EQ(everyStoredByte(*raw).find(marker), std::string::npos);
}

TEST_F(MySqlAccountTest, EventAnOlderBuildSealedAfterTheMigrationReadsRightUntilReencryption) {
  const std::string marker = "MARKER-9e60f3";
  auto keys = keyHolder({"k1"});
  auto store = MySqlStore::open(keyedOptions(keys));
  store->createHook(makeHook("h"));
  store->appendEvent(makeEvent("h"));
  const int64_t id = store->appendEvent(makeEvent("h", "written by an older edge"));

  // An edge of schema 2 still running on the database writes no seal version: the default, 1.
  auto raw = database_->connect();
  storeSummaryInTheClear(*raw, id, marker);
  raw->execute("UPDATE events SET seal_version = DEFAULT WHERE id = " + std::to_string(id));

  auto event = store->getEvent("h", id);
  ASSERT_TRUE(event.has_value());
  expectMarkedSummary(*event, marker);
  EXPECT_EQ(event->body, "written by an older edge");

  // It counts as holding values in the clear until re-encryption seals it.
  auto usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].keyId, "");
  EXPECT_EQ(usage[0].records, 1);
  EXPECT_EQ(store->reencryptBatch(10), 1u);
  EXPECT_EQ(store->reencryptBatch(10), 0u);
  usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].keyId, "k1");
  EXPECT_EQ(usage[0].records, 3);
  expectMarkedSummary(*store->getEvent("h", id), marker);
  EXPECT_EQ(everyStoredByte(*raw).find(marker), std::string::npos);
}

TEST_F(MySqlAccountTest, RotationRewrapsEverythingUnderTheNewKeyWhileOldRecordsStayReadable) {
  const std::string k1 = crypto::KeyRing::newKeyLine("k1");
  const std::string k2 = crypto::KeyRing::newKeyLine("k2");
  auto keys = std::make_shared<crypto::KeyHolder>(crypto::KeyRing::parse(k1, "k1"));
  auto store = MySqlStore::open(keyedOptions(keys));
  store->createHook(makeNamedHook("h", "acc_a", "main"));
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(store->appendEvent(makeEvent("h", "b" + std::to_string(i))));
  }
  store->setSetting("s", "value");
  auto raw = database_->connect();
  const std::string bodiesBefore = raw->query("SELECT GROUP_CONCAT(HEX(body)) FROM events")[0][0];

  // The operator adds k2 and makes it active; the running store takes the new ring.
  keys->replace(crypto::KeyRing::parse(k1 + "\n" + k2, "k1 and k2"));
  const int64_t after = store->appendEvent(makeEvent("h", "after rotation"));
  size_t total = 0;
  for (size_t done; (done = store->reencryptBatch(3)) > 0;) total += done;
  EXPECT_EQ(total, 7u);  // 5 events, the hook and the setting; the newest was under k2 already
  auto usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].keyId, "k2");
  EXPECT_EQ(usage[0].records, 8);

  // Only the wrapped keys changed: the body ciphertexts are the same bytes.
  EXPECT_EQ(raw->query("SELECT GROUP_CONCAT(HEX(body)) FROM events WHERE id <> " +
                       std::to_string(after))[0][0],
            bodiesBefore);

  // A ring of k2 alone reads everything; one of k1 alone reads nothing any more.
  auto onlyNew = MySqlStore::open(
      keyedOptions(std::make_shared<crypto::KeyHolder>(crypto::KeyRing::parse(k2, "k2"))));
  EXPECT_EQ(onlyNew->getEvent("h", ids[3])->body, "b3");
  EXPECT_EQ(onlyNew->findHook("h")->signingSecret, "whsec_current");
  EXPECT_EQ(*onlyNew->getSetting("s"), "value");
  auto onlyOld = MySqlStore::open(
      keyedOptions(std::make_shared<crypto::KeyHolder>(crypto::KeyRing::parse(k1, "k1"))));
  EXPECT_FALSE(onlyOld->getEvent("h", ids[0])->integrityError.empty());
  EXPECT_THROW(onlyOld->getSetting("s"), StoreError);
}

TEST_F(MySqlLeastPrivilegeTest, RowOnlyUserRunsEveryMethodAnEdgeCallsAtRunTime) {
  { MySqlStore::open(options()); }
  const std::vector<std::string> keyLines = {crypto::KeyRing::newKeyLine("k1"),
                                             crypto::KeyRing::newKeyLine("k2")};
  auto keys = std::make_shared<crypto::KeyHolder>(crypto::KeyRing::parse(keyLines[0], "k1"));
  MySqlOptions rw = rwOptions(*database_);
  rw.keys = keys;
  std::unique_ptr<MySqlStore> store;
  try {
    store = MySqlStore::open(rw);
  } catch (const StoreError& e) {
    FAIL() << "the row-only user could not open a current schema: " << e.what();
  }

  store->createAccount(makeAccount("acc_a", "a"));
  EXPECT_EQ(store->findAccountByName("a")->id, "acc_a");
  AccountRecord account = *store->findAccount("acc_a");
  account.plan = Plan::kPro;
  EXPECT_TRUE(store->updateAccount(account));
  EXPECT_EQ(store->listAccounts().size(), 1u);
  store->createMember({"mem_a", "acc_a", "owner", true, 1});
  EXPECT_EQ(store->listMembers("acc_a").size(), 1u);
  EXPECT_TRUE(store->findMember("mem_a")->owner);
  store->createToken({"tok_a", "mem_a", "acc_a", "laptop", std::string(64, 'f'), 1, 0, 0});
  EXPECT_EQ(store->findTokenByHash(std::string(64, 'f'))->id, "tok_a");
  store->touchToken("tok_a", 5);
  EXPECT_EQ(store->findToken("tok_a")->lastUsedAtMs, 5);
  EXPECT_TRUE(store->revokeToken("tok_a", 7));
  EXPECT_EQ(store->revokedTokensSince(7), std::vector<std::string>{"tok_a"});
  EXPECT_EQ(store->listTokens("acc_a").size(), 1u);

  store->createHookWithin(makeNamedHook("named", "acc_a", "main"), 10);
  HookRecord anonymous = makeHook("anon");
  anonymous.expiresAtMs = 100;
  store->createHook(anonymous);
  store->extendHook("anon", 200);
  HookRecord named = *store->findHookByName("acc_a", "main");
  named.signingSecret = "whsec_next";
  EXPECT_TRUE(store->updateHook(named));
  EXPECT_EQ(store->listHooks("acc_a").size(), 1u);
  EXPECT_TRUE(store->claimRelay("named", "r1", 0, 10));
  store->releaseRelay("named", "r1");

  const int64_t id = store->appendEvent(makeEvent("anon", "row only"));
  EXPECT_EQ(store->getEvent("anon", id)->body, "row only");
  EXPECT_EQ(store->listEvents("anon", 0, 10, true, false).size(), 1u);
  store->addDelivery({id, "r", 200, 1, "", 1});
  EXPECT_EQ(store->listDeliveries(id).size(), 1u);
  AuditRecord entry;
  entry.atMs = 1;
  entry.accountId = "acc_a";
  entry.action = "event.read";
  const int64_t auditId = store->appendAudit(entry);
  EXPECT_EQ(store->listAudit("acc_a", 0, 10).at(0).id, auditId);

  EXPECT_EQ(store->putSettingIfAbsent("auth.jwt_key", "k"), "k");
  store->setSetting("encryption.active_key", "k1");
  EXPECT_EQ(*store->getSetting("encryption.active_key"), "k1");

  // Expiry erases with UPDATE alone; rotation rewrites with UPDATE alone.
  EXPECT_EQ(store->deleteExpiredHooks(1000), 1u);
  keys->replace(crypto::KeyRing::parse(keyLines[0] + "\n" + keyLines[1], "k1 and k2"));
  size_t total = 0;
  for (size_t done; (done = store->reencryptBatch(100)) > 0;) total += done;
  EXPECT_GT(total, 0u);
  auto usage = store->keyUsage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].keyId, "k2");
}

}  // namespace
}  // namespace anm::store::test
