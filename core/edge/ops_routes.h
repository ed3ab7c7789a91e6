// core/edge/ops_routes.h: the routes operators and their tools use: health, readiness,
// metrics and the list of provider plugins.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "core/edge/handlers.h"
#include "core/edge/metrics.h"

namespace anm::edge {

/// How long a store probe's answer is reused by /readyz, so that a load balancer polling many
/// times a second costs the database one query a second.
inline constexpr std::chrono::milliseconds kReadinessProbeInterval{1000};

/// What /readyz and /metrics report of the running edge. Owned by the EdgeServer; every method
/// may be called from any thread.
class EdgeStatus {
 public:
  EdgeStatus(store::Store& store, plugin::Registry& registry, StreamHub& hub);

  /// Called once the plugins were loaded at start: until then the edge is not ready.
  void setPluginsLoaded() { pluginsLoaded_.store(true); }
  /// Called when shutdown begins: from then on the edge is not ready, so that a load balancer
  /// sends new webhooks elsewhere while the requests in flight finish.
  void setStopping() { stopping_.store(true); }

  struct Readiness {
    bool ready = false;
    bool storeReachable = false;
    std::string storeError;  ///< why the probe failed, "" when it worked
    bool pluginsLoaded = false;
    size_t plugins = 0;
    bool stopping = false;
  };

  /// Probes the store (at most once per kReadinessProbeInterval) and reports.
  Readiness readiness();

  /// The readings /metrics renders beside the counters.
  MetricsReadings readings();

 private:
  store::Store& store_;
  plugin::Registry& registry_;
  StreamHub& hub_;
  std::atomic<bool> pluginsLoaded_{false};
  std::atomic<bool> stopping_{false};
  std::mutex probeMutex_;
  std::chrono::steady_clock::time_point probedAt_{};
  bool probeOk_ = false;
  std::string probeError_;
};

/// The handler of an operations route, or a 405 handler for another method on one of them:
/// GET|HEAD /healthz, GET|HEAD /readyz, GET /metrics, GET /api/v1/providers and the pages of
/// the diagnosis codes, GET /diagnosis/[<code>[.json]|index.json]. Returns null when `path` is
/// none of these; the caller owns the handler.
EdgeHandler* routeOperations(const EdgeServices& services, const std::string& method,
                             std::string_view path);

}  // namespace anm::edge
