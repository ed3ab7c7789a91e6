// core/edge/replay_jobs.cpp: bulk replays on a worker thread, with progress and cancellation.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/replay_jobs.h"

#include <Poco/Logger.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "core/edge/api_support.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

Poco::Logger& jobsLog() { return Poco::Logger::get("anm.http"); }

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

store::EventRecord replayCopyOf(store::EventRecord event, int64_t nowMs) {
  event.replayOf = event.id;
  event.id = 0;
  event.receivedAtMs = nowMs;
  return event;
}

int64_t replayEvent(store::Store& store, const std::string& hookId, int64_t eventId,
                    int64_t nowMs) {
  auto event = store.getEvent(hookId, eventId);
  if (!event) throw std::runtime_error("event " + std::to_string(eventId) + " is gone");

  // A copy of contents that could not be read would be a different request.
  if (!event->integrityError.empty()) throw std::runtime_error(event->integrityError);
  return store.appendEvent(replayCopyOf(std::move(*event), nowMs));
}

struct ReplayJobs::Impl {
  struct Job {
    ReplayJobState state;
    std::vector<int64_t> eventIds;
    bool cancelled = false;
  };

  explicit Impl(store::Store& store) : store(store), worker([this] { run(); }) {}

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
      for (auto& [id, job] : jobs) job->cancelled = true;
    }
    wake.notify_all();
    worker.join();
  }

  void run() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [this] { return stopping || !queue.empty(); });
        if (stopping) return;
        job = queue.front();
        queue.pop_front();
      }
      runJob(*job);
    }
  }

  void runJob(Job& job) {
    for (int64_t eventId : job.eventIds) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (job.cancelled) break;
      }

      // One event at a time, outside the lock, so that progress can be read meanwhile.
      int64_t replayId = 0;
      std::string failure;
      try {
        replayId = replayEvent(store, job.state.hookId, eventId, wallMs());
      } catch (const std::exception& e) {
        failure = e.what();
      }

      std::lock_guard<std::mutex> lock(mutex);
      if (failure.empty()) {
        ++job.state.done;
        if (job.state.replays.size() < kMaxListedReplays) job.state.replays.push_back(replayId);
        continue;
      }
      ++job.state.failed;
      jobsLog().warning("could not replay event job=%s event_id=%s error=\"%s\"", job.state.id,
                        std::to_string(eventId), failure);
    }

    std::lock_guard<std::mutex> lock(mutex);
    job.state.state = job.cancelled ? "cancelled" : "done";
    job.state.endedAtMs = wallMs();
    jobsLog().information("replay job ended job=%s hook=%s state=%s replayed=%z failed=%z",
                          job.state.id, job.state.hookId, job.state.state, job.state.done,
                          job.state.failed);
  }

  // Jobs that ended more than kReplayJobKept ago are forgotten; called with the lock held.
  void forgetOldLocked() {
    const int64_t keptFrom =
        wallMs() - std::chrono::duration_cast<std::chrono::milliseconds>(kReplayJobKept).count();
    for (auto it = jobs.begin(); it != jobs.end();) {
      const auto& state = it->second->state;
      if (state.endedAtMs != 0 && state.endedAtMs < keptFrom) {
        it = jobs.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::shared_ptr<Job> findLocked(const std::string& hookId, const std::string& jobId) {
    forgetOldLocked();
    const auto it = jobs.find(jobId);
    if (it == jobs.end() || it->second->state.hookId != hookId) return nullptr;
    return it->second;
  }

  store::Store& store;
  std::mutex mutex;
  std::condition_variable wake;
  std::map<std::string, std::shared_ptr<Job>> jobs;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  std::thread worker;  ///< last: it starts in the constructor and uses the members above
};

ReplayJobs::ReplayJobs(store::Store& store) : impl_(std::make_unique<Impl>(store)) {}

ReplayJobs::~ReplayJobs() = default;

ReplayJobState ReplayJobs::start(const std::string& hookId, std::vector<int64_t> eventIds) {
  auto job = std::make_shared<Impl::Job>();
  job->state.id = "rpl_" + randomBase32(26);
  job->state.hookId = hookId;
  job->state.state = "running";
  job->state.total = eventIds.size();
  job->state.startedAtMs = wallMs();
  job->eventIds = std::move(eventIds);

  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->forgetOldLocked();
  impl_->jobs.emplace(job->state.id, job);
  impl_->queue.push_back(job);
  impl_->wake.notify_one();
  jobsLog().information("replay job started job=%s hook=%s events=%z", job->state.id, hookId,
                        job->state.total);
  return job->state;
}

std::optional<ReplayJobState> ReplayJobs::find(const std::string& hookId,
                                               const std::string& jobId) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const auto job = impl_->findLocked(hookId, jobId);
  if (!job) return std::nullopt;
  return job->state;
}

std::optional<ReplayJobState> ReplayJobs::cancel(const std::string& hookId,
                                                 const std::string& jobId) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const auto job = impl_->findLocked(hookId, jobId);
  if (!job) return std::nullopt;

  // A queued job ends at once; a running one after the event it is on.
  job->cancelled = true;
  if (job->state.endedAtMs == 0) {
    const auto queued = std::find(impl_->queue.begin(), impl_->queue.end(), job);
    if (queued != impl_->queue.end()) {
      impl_->queue.erase(queued);
      job->state.state = "cancelled";
      job->state.endedAtMs = wallMs();
    }
  }
  ReplayJobState state = job->state;
  if (state.endedAtMs == 0) state.state = "cancelled";
  return state;
}

std::string replayJobJson(const ReplayJobState& state) {
  std::string out = "{\"id\":" + jsonText(state.id) + ",\"state\":" + jsonText(state.state) +
                    ",\"total\":" + std::to_string(state.total) +
                    ",\"done\":" + std::to_string(state.done) +
                    ",\"failed\":" + std::to_string(state.failed) + ",\"replays\":[";
  for (size_t i = 0; i < state.replays.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(state.replays[i]);
  }
  out += "],\"started_at_ms\":" + std::to_string(state.startedAtMs) +
         ",\"ended_at_ms\":" + std::to_string(state.endedAtMs) + "}";
  return out;
}

}  // namespace anm::edge
