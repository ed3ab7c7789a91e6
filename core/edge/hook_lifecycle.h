// core/edge/hook_lifecycle.h: background upkeep of hooks: expiry, relay leases, revocations.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/edge/stream_hub.h"
#include "core/store/store.h"

namespace anm::edge {

struct EdgeConfig;

/// How long a relay lease lasts from its last claim, and how often an edge renews the leases of
/// its open streams: a relay whose edge died holds the hook for at most kRelayLeaseMs.
inline constexpr int64_t kRelayLeaseMs = 30000;
inline constexpr int64_t kRelayLeaseRenewMs = 10000;

/// What every lease holder of one relay starts with: 32 hex digits of the SHA-256 of its id and
/// a dot. A hash, not the id itself, so that a holder fits the store's 64 bytes whatever the id.
std::string relayLeasePrefix(const std::string& relayId);

/// A holder of its own for one stream of the relay: the prefix and 26 random base32
/// characters. A new stream of the same relay takes the lease over (Store::takeOverRelay); the
/// older stream then fails to renew it and is closed.
std::string newLeaseHolder(const std::string& relayId);

/// One thread that keeps what hooks promise over time (docs/accounts.md): extends anonymous
/// hooks that have a stream open here and deletes expired ones, renews the relay leases of this
/// edge's open streams, and closes streams opened with a token revoked on any edge or of an
/// account disabled anywhere.
class HookLifecycle {
 public:
  /// `hub` holds the relays' streams; `watchHub`, when given, the dashboards', whose streams
  /// close with their token too.
  HookLifecycle(store::Store& store, StreamHub& hub, const EdgeConfig& config,
                StreamHub* watchHub = nullptr);
  ~HookLifecycle();  ///< stops

  void start();
  void stop();  ///< idempotent

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::edge
