// core/edge/rate_limit.h: ingest rate limits per hook and per client address.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/HTTPServerRequest.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace anm::edge {

struct EdgeConfig;

/// Most client addresses whose buckets are kept; past it the least recently used is dropped
/// (it comes back full, which only ever lets that address send more, never less).
inline constexpr size_t kMaxTrackedAddresses = 100000;
/// Most hooks whose buckets are kept, dropped the same way. Buckets are made only for hooks
/// that exist, after the lookup, so unknown ids never take room.
inline constexpr size_t kMaxTrackedHooks = 100000;

/// Token buckets for ingest (README "Limits"): each hook and each client address has a bucket
/// of `burst` tokens that refills at `rate` per second; a webhook takes one token from both.
/// A rate of 0 turns that limit off. Thread-safe: the state is split into independently locked
/// shards and each call does O(1) work under at most two of their locks.
class IngestLimiter {
 public:
  /// Nanoseconds on a monotonic clock.
  using Clock = std::function<int64_t()>;

  explicit IngestLimiter(const EdgeConfig& config);

  /// For tests: an injected clock and smaller bounds.
  IngestLimiter(const EdgeConfig& config, Clock clock, size_t maxAddresses = kMaxTrackedAddresses,
                size_t maxHooks = kMaxTrackedHooks);
  ~IngestLimiter();

  IngestLimiter(const IngestLimiter&) = delete;
  IngestLimiter& operator=(const IngestLimiter&) = delete;

  /// Takes one token from the address's bucket and the hook's. When either is empty, takes
  /// none, returns false and sets retryAfterS (whole seconds until both have a token again, at
  /// least 1) and hookLimited (true when the hook's bucket is the one that waits longer).
  bool admit(const std::string& hookId, const std::string& address, int64_t& retryAfterS,
             bool& hookLimited);

  /// How many addresses and hooks have a bucket now.
  size_t trackedAddresses() const;
  size_t trackedHooks() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// The client's address as text: the socket peer, or with behindProxy the last entry of the
/// last X-Forwarded-For field (the one the proxy in front appended) when the request carries
/// one and it is an IP address (a port or IPv6 brackets around it are dropped). An entry that
/// is not an address is ignored and the peer is used, so that a client cannot make up keys of
/// any size.
std::string clientAddress(const Poco::Net::HTTPServerRequest& request, bool behindProxy);

}  // namespace anm::edge
