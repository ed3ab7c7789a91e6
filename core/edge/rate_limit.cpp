// core/edge/rate_limit.cpp: ingest rate limits per hook and per client address.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/rate_limit.h"

#include <Poco/Net/IPAddress.h>
#include <Poco/String.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <list>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/edge/config.h"

namespace anm::edge {
namespace {

// Shards per table: enough that pool threads rarely meet on one lock, few enough that the
// per-shard share of the bound stays large.
constexpr size_t kShards = 16;

// Longest X-Forwarded-For entry considered: an IPv6 address in brackets with a port.
constexpr size_t kMaxForwardedEntry = 64;

int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Bucket {
  double tokens = 0;
  int64_t updatedNs = 0;
};

/// One locked part of a table: an LRU list of buckets with an index by key.
struct Shard {
  using Order = std::list<std::pair<std::string, Bucket>>;
  mutable std::mutex mutex;
  /// Most recently used first.
  Order order;
  /// Views the keys stored in `order`, whose nodes never move.
  std::unordered_map<std::string_view, Order::iterator> index;
};

/// One limit: buckets by key, split into shards.
class Table {
 public:
  Table(int64_t rate, int64_t burst, size_t maxKeys)
      : rate_(static_cast<double>(rate)),
        burst_(static_cast<double>(burst)),
        perShard_(std::max<size_t>(1, (maxKeys + kShards - 1) / kShards)) {}

  bool enabled() const { return rate_ > 0; }

  Shard& shardFor(const std::string& key) {
    return shards_[std::hash<std::string>{}(key) % kShards];
  }

  /// The bucket of `key` in `shard` (whose lock the caller holds), refilled up to `nowNs`,
  /// made full when new; the least recently used bucket goes when the shard is full.
  Bucket& bucket(Shard& shard, const std::string& key, int64_t nowNs);

  /// Seconds until `bucket` holds one token again.
  double waitS(const Bucket& bucket) const { return (1.0 - bucket.tokens) / rate_; }

  size_t size() const;

 private:
  double rate_;
  double burst_;
  size_t perShard_;
  std::array<Shard, kShards> shards_;
};

Bucket& Table::bucket(Shard& shard, const std::string& key, int64_t nowNs) {
  const auto found = shard.index.find(key);
  if (found != shard.index.end()) {
    // Most recently used moves to the front; splice keeps the iterator and the key's storage.
    shard.order.splice(shard.order.begin(), shard.order, found->second);
    Bucket& b = found->second->second;
    const double elapsedS = static_cast<double>(std::max<int64_t>(0, nowNs - b.updatedNs)) / 1e9;
    b.tokens = std::min(burst_, b.tokens + elapsedS * rate_);
    b.updatedNs = nowNs;
    return b;
  }

  if (shard.order.size() >= perShard_) {
    shard.index.erase(shard.order.back().first);
    shard.order.pop_back();
  }
  shard.order.emplace_front(key, Bucket{burst_, nowNs});
  // The index views the key stored in the list node, which never moves.
  shard.index.emplace(shard.order.front().first, shard.order.begin());
  return shard.order.front().second;
}

size_t Table::size() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mutex);
    total += shard.order.size();
  }
  return total;
}

// Whole seconds, rounded up, never below 1 (Retry-After: 0 would invite an instant retry).
int64_t wholeSeconds(double seconds) {
  const double up = std::ceil(seconds - 1e-9);
  return up < 1 ? 1 : static_cast<int64_t>(up);
}

std::string_view trimmed(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

// An X-Forwarded-For entry as an address: "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80".
bool forwardedAddress(std::string_view entry, std::string& out) {
  if (entry.empty() || entry.size() > kMaxForwardedEntry) return false;
  std::string text(entry);
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) return false;
    text = text.substr(1, close - 1);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    text = text.substr(0, text.find(':'));
  }
  Poco::Net::IPAddress address;
  if (!Poco::Net::IPAddress::tryParse(text, address)) return false;
  out = address.toString();
  return true;
}

}  // namespace

class IngestLimiter::Impl {
 public:
  Impl(const EdgeConfig& config, Clock clock, size_t maxAddresses, size_t maxHooks)
      : clock_(clock ? std::move(clock) : Clock(steadyNowNs)),
        addresses_(config.ratePerAddress, config.burstPerAddress, maxAddresses),
        hooks_(config.ratePerHook, config.burstPerHook, maxHooks) {}

  bool admit(const std::string& hookId, const std::string& address, int64_t& retryAfterS,
             bool& hookLimited) {
    if (!addresses_.enabled() && !hooks_.enabled()) return true;
    const int64_t now = clock_();

    // NOTE: the address shard is always locked before the hook shard, and they belong to
    // different tables, so two calls can never wait on each other in a cycle.
    std::unique_lock<std::mutex> addressLock;
    std::unique_lock<std::mutex> hookLock;
    Bucket* byAddress = nullptr;
    Bucket* byHook = nullptr;
    if (addresses_.enabled()) {
      auto& shard = addresses_.shardFor(address);
      addressLock = std::unique_lock<std::mutex>(shard.mutex);
      byAddress = &addresses_.bucket(shard, address, now);
    }
    if (hooks_.enabled()) {
      auto& shard = hooks_.shardFor(hookId);
      hookLock = std::unique_lock<std::mutex>(shard.mutex);
      byHook = &hooks_.bucket(shard, hookId, now);
    }

    // Both or neither: a webhook refused by one limit must not use up the other.
    const bool addressOk = byAddress == nullptr || byAddress->tokens >= 1.0;
    const bool hookOk = byHook == nullptr || byHook->tokens >= 1.0;
    if (addressOk && hookOk) {
      if (byAddress != nullptr) byAddress->tokens -= 1.0;
      if (byHook != nullptr) byHook->tokens -= 1.0;
      return true;
    }

    const double addressWait = addressOk ? 0.0 : addresses_.waitS(*byAddress);
    const double hookWait = hookOk ? 0.0 : hooks_.waitS(*byHook);
    hookLimited = !hookOk && hookWait >= addressWait;
    retryAfterS = wholeSeconds(std::max(addressWait, hookWait));
    return false;
  }

  size_t trackedAddresses() const { return addresses_.size(); }
  size_t trackedHooks() const { return hooks_.size(); }

 private:
  Clock clock_;
  Table addresses_;
  Table hooks_;
};

IngestLimiter::IngestLimiter(const EdgeConfig& config)
    : impl_(std::make_unique<Impl>(config, Clock(), kMaxTrackedAddresses, kMaxTrackedHooks)) {}

IngestLimiter::IngestLimiter(const EdgeConfig& config, Clock clock, size_t maxAddresses,
                             size_t maxHooks)
    : impl_(std::make_unique<Impl>(config, std::move(clock), maxAddresses, maxHooks)) {}

IngestLimiter::~IngestLimiter() = default;

bool IngestLimiter::admit(const std::string& hookId, const std::string& address,
                          int64_t& retryAfterS, bool& hookLimited) {
  return impl_->admit(hookId, address, retryAfterS, hookLimited);
}

size_t IngestLimiter::trackedAddresses() const { return impl_->trackedAddresses(); }

size_t IngestLimiter::trackedHooks() const { return impl_->trackedHooks(); }

std::string clientAddress(const Poco::Net::HTTPServerRequest& request, bool behindProxy) {
  const std::string peer = request.clientAddress().host().toString();
  if (!behindProxy) return peer;

  // Repeated fields sit together in POCO's map; the proxy's entry is the last of the last.
  const std::string* last = nullptr;
  for (auto it = request.find("X-Forwarded-For");
       it != request.end() && Poco::icompare(it->first, "X-Forwarded-For") == 0; ++it) {
    last = &it->second;
  }
  if (last == nullptr) return peer;
  std::string_view value(*last);
  const auto comma = value.rfind(',');
  if (comma != std::string_view::npos) value.remove_prefix(comma + 1);
  std::string address;
  return forwardedAddress(trimmed(value), address) ? address : peer;
}

}  // namespace anm::edge
