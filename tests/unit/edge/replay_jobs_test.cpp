// tests/unit/edge/replay_jobs_test.cpp: bulk replay jobs: order, progress, failures, cancelling
// a running and a queued job, and which hook may see a job.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/replay_jobs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/store/sqlite_store.h"

namespace anm::edge {
namespace {

/// A real store whose appends wait at a gate while it is closed, so that a test can hold a
/// job in the middle of its work. Everything else goes straight to the store underneath.
class GatedStore : public store::Store {
 public:
  explicit GatedStore(store::Store& inner) : inner_(inner) {}

  void createHook(const store::HookRecord& hook) override { inner_.createHook(hook); }
  std::optional<store::HookRecord> findHook(const std::string& hookId) override {
    return inner_.findHook(hookId);
  }
  int64_t appendEvent(store::EventRecord event) override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++waiting_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return open_; });
      --waiting_;
    }
    return inner_.appendEvent(std::move(event));
  }
  std::vector<store::EventRecord> listEvents(const std::string& hookId, int64_t afterId,
                                             size_t limit, bool withBodies,
                                             bool forwardableOnly) override {
    return inner_.listEvents(hookId, afterId, limit, withBodies, forwardableOnly);
  }
  std::optional<store::EventRecord> getEvent(const std::string& hookId, int64_t eventId) override {
    return inner_.getEvent(hookId, eventId);
  }
  void addDelivery(const store::DeliveryRecord& delivery) override { inner_.addDelivery(delivery); }
  std::vector<store::DeliveryRecord> listDeliveries(int64_t eventId) override {
    return inner_.listDeliveries(eventId);
  }

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  /// Waits until an append stands at the closed gate.
  bool waitForAppend() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [this] { return waiting_ > 0; });
  }

 private:
  store::Store& inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  int waiting_ = 0;
};

class ReplayJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-replay-jobs-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store_ = store::openSqliteStore(dir_ + "/events.db");
    for (const char* id : {"hook-a", "hook-b"}) {
      store::HookRecord hook;
      hook.id = id;
      hook.tokenHash = std::string(64, '0');
      store_->createHook(hook);
    }
    gated_ = std::make_unique<GatedStore>(*store_);
  }

  void TearDown() override {
    gated_->open();
    jobs_.reset();
    gated_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int64_t storeEvent(const std::string& hookId, const std::string& body) {
    store::EventRecord event;
    event.hookId = hookId;
    event.method = "POST";
    event.body = body;
    event.bodySize = static_cast<int64_t>(body.size());
    event.verdict = store::Verdict::kValid;
    event.receivedAtMs = 1;
    return store_->appendEvent(std::move(event));
  }

  ReplayJobs& jobs() {
    if (!jobs_) jobs_ = std::make_unique<ReplayJobs>(*gated_);
    return *jobs_;
  }

  ReplayJobState waitForEnd(const std::string& hookId, const std::string& jobId) {
    for (int i = 0; i < 500; ++i) {
      const auto state = jobs().find(hookId, jobId);
      if (!state || state->endedAtMs != 0) return state.value_or(ReplayJobState{});
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "job " << jobId << " did not end";
    return {};
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<GatedStore> gated_;
  std::unique_ptr<ReplayJobs> jobs_;
};

TEST_F(ReplayJobsTest, ReplaysEachEventInTheOrderGivenAsACopyLinkedToIt) {
  const int64_t first = storeEvent("hook-a", "first");
  const int64_t second = storeEvent("hook-a", "second");

  const auto started = jobs().start("hook-a", {second, first});
  EXPECT_EQ(started.state, "running");
  EXPECT_EQ(started.total, 2u);
  const auto ended = waitForEnd("hook-a", started.id);
  EXPECT_EQ(ended.state, "done");
  EXPECT_EQ(ended.done, 2u);
  EXPECT_EQ(ended.failed, 0u);
  ASSERT_EQ(ended.replays.size(), 2u);

  const auto copyOfSecond = store_->getEvent("hook-a", ended.replays[0]);
  const auto copyOfFirst = store_->getEvent("hook-a", ended.replays[1]);
  ASSERT_TRUE(copyOfSecond && copyOfFirst);
  EXPECT_EQ(copyOfSecond->replayOf, second);
  EXPECT_EQ(copyOfSecond->body, "second");
  EXPECT_EQ(copyOfFirst->replayOf, first);
  EXPECT_GT(copyOfFirst->receivedAtMs, 1);
}

TEST_F(ReplayJobsTest, AnEventThatIsGoneIsCountedAsFailedAndTheRestGoOn) {
  const int64_t kept = storeEvent("hook-a", "kept");
  const int64_t otherHooks = storeEvent("hook-b", "not yours");

  const auto started = jobs().start("hook-a", {9999, otherHooks, kept});
  const auto ended = waitForEnd("hook-a", started.id);
  EXPECT_EQ(ended.state, "done");
  EXPECT_EQ(ended.done, 1u);
  EXPECT_EQ(ended.failed, 2u);
  ASSERT_EQ(ended.replays.size(), 1u);
  EXPECT_EQ(store_->getEvent("hook-a", ended.replays[0])->replayOf, kept);
}

TEST_F(ReplayJobsTest, CancellingARunningJobStopsItAfterTheEventItIsOn) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(storeEvent("hook-a", "e" + std::to_string(i)));

  gated_->close();
  const auto started = jobs().start("hook-a", ids);
  ASSERT_TRUE(gated_->waitForAppend());
  const auto cancelled = jobs().cancel("hook-a", started.id);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state, "cancelled");
  gated_->open();

  const auto ended = waitForEnd("hook-a", started.id);
  EXPECT_EQ(ended.state, "cancelled");
  EXPECT_EQ(ended.done, 1u);
  EXPECT_EQ(store_->listEvents("hook-a", 0, 100, false, false).size(), ids.size() + 1);
}

TEST_F(ReplayJobsTest, AQueuedJobCancelledEndsAtOnceWithNothingReplayed) {
  const int64_t id = storeEvent("hook-a", "e");

  gated_->close();
  const auto running = jobs().start("hook-a", {id});
  ASSERT_TRUE(gated_->waitForAppend());
  const auto queued = jobs().start("hook-a", {id, id});
  const auto cancelled = jobs().cancel("hook-a", queued.id);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state, "cancelled");
  EXPECT_NE(cancelled->endedAtMs, 0);
  gated_->open();

  EXPECT_EQ(waitForEnd("hook-a", running.id).state, "done");
  const auto ended = jobs().find("hook-a", queued.id);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->done, 0u);
  EXPECT_EQ(store_->listEvents("hook-a", 0, 100, false, false).size(), 2u);
}

TEST_F(ReplayJobsTest, AJobIsVisibleToItsOwnHookOnly) {
  const auto started = jobs().start("hook-a", {storeEvent("hook-a", "e")});
  EXPECT_TRUE(jobs().find("hook-a", started.id));
  EXPECT_FALSE(jobs().find("hook-b", started.id));
  EXPECT_FALSE(jobs().cancel("hook-b", started.id));
  EXPECT_FALSE(jobs().find("hook-a", "rpl_unknown"));
  waitForEnd("hook-a", started.id);
}

TEST_F(ReplayJobsTest, StoppingTheEdgeMidJobCancelsItWithoutWaitingForTheRest) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(storeEvent("hook-a", "e" + std::to_string(i)));

  gated_->close();
  jobs().start("hook-a", ids);
  ASSERT_TRUE(gated_->waitForAppend());

  // The destructor joins the worker; opened from another thread, the gate lets the one event
  // in progress finish, after which no other starts.
  std::thread opener([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gated_->open();
  });
  jobs_.reset();
  opener.join();
  EXPECT_EQ(store_->listEvents("hook-a", 0, 100, false, false).size(), ids.size() + 1);
}

}  // namespace
}  // namespace anm::edge
