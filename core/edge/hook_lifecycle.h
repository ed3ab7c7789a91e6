// core/edge/hook_lifecycle.h: background upkeep of hooks: expiry, relay leases, revocations.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>

#include "core/edge/stream_hub.h"
#include "core/store/store.h"

namespace anm::edge {

struct EdgeConfig;

/// How long a relay lease lasts from its last claim, and how often an edge renews the leases of
/// its open streams: a relay whose edge died holds the hook for at most kRelayLeaseMs.
inline constexpr int64_t kRelayLeaseMs = 30000;
inline constexpr int64_t kRelayLeaseRenewMs = 10000;

/// One thread that keeps what hooks promise over time (docs/accounts.md): extends anonymous
/// hooks that have a stream open here and deletes expired ones, renews the relay leases of this
/// edge's open streams, and closes streams opened with a token revoked on any edge or of an
/// account disabled anywhere.
class HookLifecycle {
 public:
  HookLifecycle(store::Store& store, StreamHub& hub, const EdgeConfig& config);
  ~HookLifecycle();  ///< stops

  void start();
  void stop();  ///< idempotent

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::edge
