// core/edge/hook_lifecycle.cpp: background upkeep of hooks: expiry, relay leases, revocations.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/hook_lifecycle.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/edge/config.h"
#include "core/edge/plans.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Poco::Logger& lifecycleLog() {
  static Poco::Logger& instance = Poco::Logger::get("anm.hooks");
  return instance;
}

int64_t wallMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// One kind of store work that can fail; warns once when it starts failing and once when it
/// works again, so that an outage writes two lines, not one a second.
class FailureNote {
 public:
  explicit FailureNote(const char* what) : what_(what) {}

  void failed(const std::exception& e) {
    ++failures_;
    if (failures_ > 1) return;
    lifecycleLog().warning("could not %s, retrying error=\"%s\"", std::string(what_),
                           std::string(e.what()));
  }

  void worked() {
    if (failures_ == 0) return;
    lifecycleLog().information("%s works again failed_tries=%s", std::string(what_),
                               std::to_string(failures_));
    failures_ = 0;
  }

 private:
  const char* what_;
  uint64_t failures_ = 0;
};

}  // namespace

class HookLifecycle::Impl {
 public:
  Impl(store::Store& store, StreamHub& hub, const EdgeConfig& config, StreamHub* watchHub)
      : store_(store),
        hub_(hub),
        watchHub_(watchHub),
        ttl_(std::chrono::duration_cast<milliseconds>(config.anonymousTtl)) {
    ttl_ = std::max(ttl_, milliseconds(1));
    extendEvery_ = std::clamp(ttl_ / 2, milliseconds(1), kMaxExtendEvery);
    deleteEvery_ = std::clamp(ttl_, milliseconds(1), kMaxDeleteEvery);
  }

  ~Impl() { stop(); }

  void start() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (started_ || stopped_) return;
      started_ = true;
    }

    // Closes are queued here and handled on the upkeep thread: the hub's loop must not wait on
    // the store.
    hub_.setCloseListener([this](const StreamHub::OpenStream& stream) { onClosed(stream); });
    revokedSinceMs_ = wallMs() - kRevocationOverlapMs;
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    hub_.setCloseListener({});
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Upkeep intervals (docs/accounts.md): revocations and the accounts of open streams are
  // polled every second, leases renewed every 10 s (they last 30 s), anonymous hooks extended
  // every min(ttl/2, 60 s) and expired ones deleted every min(ttl, 60 s).
  static constexpr milliseconds kRevocationEvery{1000};
  static constexpr milliseconds kLeaseEvery{kRelayLeaseRenewMs};
  static constexpr milliseconds kMaxExtendEvery{60000};
  static constexpr milliseconds kMaxDeleteEvery{60000};
  /// Revocations are asked for from a little before the last poll: another edge's clock, which
  /// stamped the revocation, may be behind ours.
  static constexpr int64_t kRevocationOverlapMs = 5000;

  void onClosed(const StreamHub::OpenStream& stream) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      closed_.push_back(stream);
    }
    cv_.notify_all();
  }

  void run() {
    auto now = Clock::now();
    auto nextRevocations = now;
    auto nextLeases = now + kLeaseEvery;
    auto nextExtend = now + extendEvery_;
    auto nextDelete = now + deleteEvery_;
    for (;;) {
      std::deque<StreamHub::OpenStream> closed;
      {
        std::unique_lock<std::mutex> lock(mu_);
        const auto due = std::min({nextRevocations, nextLeases, nextExtend, nextDelete});
        cv_.wait_until(lock, due, [this] { return stopped_ || !closed_.empty(); });
        if (stopped_) return;
        closed.swap(closed_);
      }

      for (const auto& stream : closed) afterClose(stream);

      now = Clock::now();
      if (now >= nextRevocations) {
        closeRevoked();
        enforceAccounts();
        nextRevocations = now + kRevocationEvery;
      }
      if (now >= nextLeases) {
        renewLeases();
        nextLeases = now + kLeaseEvery;
      }
      if (now >= nextExtend) {
        extendOpen();
        nextExtend = now + extendEvery_;
      }
      if (now >= nextDelete) {
        deleteExpired();
        nextDelete = now + deleteEvery_;
      }
    }
  }

  // A closed stream gives its lease back, if it still holds it (a newer stream of the same
  // relay may have taken it over; releasing names this stream's own holder), and an anonymous
  // hook gets a whole ttl from the moment its last relay went away.
  void afterClose(const StreamHub::OpenStream& stream) {
    try {
      if (stream.tags.leased) store_.releaseRelay(stream.hookId, stream.tags.leaseHolder);
      if (stream.tags.accountId.empty()) {
        store_.extendHook(stream.hookId, wallMs() + ttl_.count());
      }
      closeNote_.worked();
    } catch (const std::exception& e) {
      closeNote_.failed(e);
    }
  }

  void closeRevoked() {
    const int64_t pollStartedMs = wallMs();
    try {
      const auto revoked = store_.revokedTokensSince(revokedSinceMs_);
      revocationNote_.worked();
      for (const auto& tokenId : revoked) {
        size_t closed = hub_.closeStreamsOfToken(tokenId);
        if (watchHub_ != nullptr) closed += watchHub_->closeStreamsOfToken(tokenId);
        if (closed > 0) {
          lifecycleLog().information("streams of a revoked token closed token=%s streams=%s",
                                     tokenId, std::to_string(closed));
        }
      }
      revokedSinceMs_ = pollStartedMs - kRevocationOverlapMs;
    } catch (const std::exception& e) {
      revocationNote_.failed(e);
    }
  }

  // An account disabled or moved to another plan by another process (the admin command) shows
  // only in the store. Only the accounts with a stream open here are looked up, one read each.
  // Known limit: that is a read per such account and second; a change counter the store bumps with
  // every account update would make it one read per second however many accounts stream here.
  void enforceAccounts() {
    // Relays' streams and dashboards' watches, by account.
    std::map<std::string, std::vector<StreamHub::OpenStream>> relaysOf;
    std::map<std::string, std::vector<StreamHub::OpenStream>> watchesOf;
    for (auto& stream : hub_.openStreamList()) {
      if (!stream.tags.accountId.empty()) relaysOf[stream.tags.accountId].push_back(stream);
    }
    if (watchHub_ != nullptr) {
      for (auto& stream : watchHub_->openStreamList()) {
        if (!stream.tags.accountId.empty()) watchesOf[stream.tags.accountId].push_back(stream);
      }
    }
    std::set<std::string> accountIds;
    for (const auto& entry : relaysOf) accountIds.insert(entry.first);
    for (const auto& entry : watchesOf) accountIds.insert(entry.first);

    for (const auto& accountId : accountIds) {
      std::optional<store::AccountRecord> account;
      try {
        account = store_.findAccount(accountId);
        accountNote_.worked();
      } catch (const std::exception& e) {
        accountNote_.failed(e);
        return;
      }
      const auto& relays = relaysOf[accountId];
      const auto& watches = watchesOf[accountId];
      if (account && !account->disabled) {
        enforcePlan(*account, relays);
        enforceWatchPlan(*account, watches);
        continue;
      }

      size_t closed = hub_.closeStreams(idsOf(relays));
      if (watchHub_ != nullptr) closed += watchHub_->closeStreams(idsOf(watches));
      if (closed > 0) {
        lifecycleLog().information("streams of a disabled account closed account=%s streams=%s",
                                   accountId, std::to_string(closed));
      }
    }
  }

  static std::vector<uint64_t> idsOf(const std::vector<StreamHub::OpenStream>& streams) {
    std::vector<uint64_t> ids;
    ids.reserve(streams.size());
    for (const auto& stream : streams) ids.push_back(stream.id);
    return ids;
  }

  // A dashboard's watch follows the member rule of the plan; it holds no relay.
  void enforceWatchPlan(const store::AccountRecord& account,
                        const std::vector<StreamHub::OpenStream>& watches) {
    if (watchHub_ == nullptr || !accountLimits(account).members) return;
    std::vector<uint64_t> members;
    for (const auto& watch : watches) {
      if (!watch.tags.owner) members.push_back(watch.id);
    }
    const size_t closed = watchHub_->closeStreams(members);
    if (closed > 0) {
      lifecycleLog().information(
          "watches of members the plan does not allow closed account=%s plan=%s streams=%s",
          account.id, planName(account.plan), std::to_string(closed));
    }
  }

  // What streams opened under the pro plan may no longer do once the account is on free: a
  // member other than the owner may not relay, and each hook keeps one live relay.
  void enforcePlan(const store::AccountRecord& account,
                   const std::vector<StreamHub::OpenStream>& streams) {
    const PlanLimits limits = accountLimits(account);
    std::vector<uint64_t> members;
    std::map<std::string, std::vector<StreamHub::OpenStream>> byHook;
    for (const auto& stream : streams) {
      if (limits.members && !stream.tags.owner) {
        members.push_back(stream.id);
        continue;
      }
      if (limits.relaysPerHook) byHook[stream.hookId].push_back(stream);
    }
    const std::string plan = planName(account.plan);
    const size_t closedMembers = hub_.closeStreams(members);
    if (closedMembers > 0) {
      lifecycleLog().information(
          "streams of members the plan does not allow closed account=%s plan=%s streams=%s",
          account.id, plan, std::to_string(closedMembers));
    }

    std::vector<uint64_t> extra;
    for (const auto& [hookId, list] : byHook) keepOneRelay(hookId, list, extra);
    const size_t closedRelays = hub_.closeStreams(extra, relayReplacedFrame());
    if (closedRelays > 0) {
      lifecycleLog().information(
          "live relays past the plan's one per hook closed account=%s plan=%s streams=%s",
          account.id, plan, std::to_string(closedRelays));
    }
  }

  // The stream that stays is the newest holding the lease, else the oldest, if it can take the
  // lease (another edge's stream may hold it); every other one goes into `extra`.
  void keepOneRelay(const std::string& hookId, const std::vector<StreamHub::OpenStream>& list,
                    std::vector<uint64_t>& extra) {
    if (list.size() == 1 && list.front().tags.leased) return;
    const StreamHub::OpenStream* kept = nullptr;
    for (const auto& stream : list) {
      if (stream.tags.leased && (kept == nullptr || stream.id > kept->id)) kept = &stream;
    }
    if (kept == nullptr) {
      const auto oldest = std::min_element(
          list.begin(), list.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      const int64_t now = wallMs();
      try {
        if (store_.claimRelay(hookId, oldest->tags.leaseHolder, now, now + kRelayLeaseMs)) {
          // A stream that closed meanwhile would never give the lease back: do it here.
          if (hub_.setLeased(oldest->id)) {
            kept = &*oldest;
          } else {
            store_.releaseRelay(hookId, oldest->tags.leaseHolder);
          }
        }
        leaseNote_.worked();
      } catch (const std::exception& e) {
        leaseNote_.failed(e);
        return;
      }
    }
    for (const auto& stream : list) {
      if (&stream != kept) extra.push_back(stream.id);
    }
  }

  // A stream whose lease another stream took (a newer one of the same relay, on any edge, or
  // any relay after the store was away for the lease's whole length) is no longer the hook's
  // live relay: it ends with a frame that says so.
  // Known limit: a stream that lost its lease to another edge runs on until this edge's next
  // renewal, up to kRelayLeaseRenewMs; asking the store for the holder every second would end
  // it sooner for one more read per leased stream and second.
  void renewLeases() {
    const int64_t now = wallMs();
    std::vector<uint64_t> lost;
    for (const auto& stream : hub_.openStreamList()) {
      if (!stream.tags.leased) continue;
      try {
        if (!store_.claimRelay(stream.hookId, stream.tags.leaseHolder, now, now + kRelayLeaseMs)) {
          lifecycleLog().information(
              "relay lease taken by another stream, closing hook=%s relay=%s", stream.hookId,
              stream.tags.relayId);
          lost.push_back(stream.id);
        }
        leaseNote_.worked();
      } catch (const std::exception& e) {
        leaseNote_.failed(e);
      }
    }
    if (!lost.empty()) hub_.closeStreams(lost, relayReplacedFrame());
  }

  void extendOpen() {
    const int64_t until = wallMs() + ttl_.count();
    std::set<std::string> done;
    for (const auto& stream : hub_.openStreamList()) {
      if (!stream.tags.accountId.empty()) continue;
      if (!done.insert(stream.hookId).second) continue;
      try {
        store_.extendHook(stream.hookId, until);
        extendNote_.worked();
      } catch (const std::exception& e) {
        extendNote_.failed(e);
      }
    }
  }

  void deleteExpired() {
    try {
      const size_t deleted = store_.deleteExpiredHooks(wallMs());
      deleteNote_.worked();
      if (deleted > 0) {
        lifecycleLog().information("expired hooks deleted hooks=%s", std::to_string(deleted));
      }
    } catch (const std::exception& e) {
      deleteNote_.failed(e);
    }
  }

  store::Store& store_;
  StreamHub& hub_;
  StreamHub* watchHub_;  ///< the dashboards' streams, or null
  milliseconds ttl_;
  milliseconds extendEvery_;
  milliseconds deleteEvery_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamHub::OpenStream> closed_;
  bool started_ = false;
  bool stopped_ = false;
  std::thread thread_;

  // Touched by the upkeep thread only.
  int64_t revokedSinceMs_ = 0;
  FailureNote closeNote_{"update hooks after a stream closed"};
  FailureNote revocationNote_{"poll revoked tokens"};
  FailureNote accountNote_{"check the accounts of open streams"};
  FailureNote leaseNote_{"renew relay leases"};
  FailureNote extendNote_{"extend anonymous hooks"};
  FailureNote deleteNote_{"delete expired hooks"};
};

std::string relayLeasePrefix(const std::string& relayId) {
  return sha256Hex(relayId).substr(0, 32) + ".";
}

std::string newLeaseHolder(const std::string& relayId) {
  return relayLeasePrefix(relayId) + randomBase32(26);
}

HookLifecycle::HookLifecycle(store::Store& store, StreamHub& hub, const EdgeConfig& config,
                             StreamHub* watchHub)
    : impl_(std::make_unique<Impl>(store, hub, config, watchHub)) {}

HookLifecycle::~HookLifecycle() { stop(); }

void HookLifecycle::start() { impl_->start(); }

void HookLifecycle::stop() {
  if (impl_) impl_->stop();
}

}  // namespace anm::edge
