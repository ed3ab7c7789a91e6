// core/edge/metrics.h: the edge's counters, rendered in the Prometheus text format.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "core/store/store.h"

namespace anm::edge {

/// Why ingest answered without storing the webhook. Values index kIngestRefusalNames.
enum class IngestRefusal {
  kUnknownHook,
  kRateLimited,
  kTooLarge,
  kMalformed,
  kStoreUnavailable,
  kProviderUnavailable,  ///< the last one: kIngestRefusalCount counts up to it
};

/// How many reasons there are; the names and the counters are both sized from it (#5).
inline constexpr size_t kIngestRefusalCount =
    static_cast<size_t>(IngestRefusal::kProviderUnavailable) + 1;

/// The `reason` label of each IngestRefusal, in the enum's order.
inline constexpr std::array<std::string_view, kIngestRefusalCount> kIngestRefusalNames = {
    "unknown_hook", "rate_limited",      "too_large",
    "malformed",    "store_unavailable", "provider_unavailable"};
static_assert(!kIngestRefusalNames.back().empty(), "every IngestRefusal needs its name");

/// Readings taken from the edge's parts when /metrics is asked for, rather than counted.
struct MetricsReadings {
  size_t openStreams = 0;
  uint64_t streamStoreErrors = 0;  ///< backlog reads that failed (the stream hub's count)
  size_t pluginsLoaded = 0;
  uint64_t pluginLoadFailures = 0;
  bool ready = false;
};

/// Counters the request paths bump, cheap enough for every webhook: relaxed atomics, found
/// under a shared lock that is taken exclusively only the first time a provider is seen. Label
/// values come from a bounded set (provider names of loaded plugins, fixed verdicts and outcomes),
/// never from requests, so the series cannot grow with traffic.
class Metrics {
 public:
  /// Upper bounds of the ingest latency histogram in seconds, Prometheus' `le` labels.
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  explicit Metrics(std::string version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// A webhook was stored with this verdict; `seconds` from its first byte to the answer.
  void webhookStored(std::string_view provider, store::Verdict verdict, double seconds);

  /// A webhook was answered without being stored.
  void webhookRefused(IngestRefusal why);

  /// A request failed because the store could not be reached.
  void storeError();

  /// A relay reported a delivery: the local server's status, 0 when none came.
  void deliveryReported(int32_t status);

  /// The text exposition format 0.0.4, every family with HELP and TYPE.
  std::string render(const MetricsReadings& readings) const;

 private:
  struct Series;
  Series& seriesFor(std::string_view provider);

  std::string version_;
  int64_t startedAtS_;
  mutable std::shared_mutex mutex_;  ///< guards the map, not the counters in it
  std::map<std::string, std::unique_ptr<Series>, std::less<>> byLabels_;
  std::array<std::atomic<uint64_t>, kLatencyBuckets.size()> latencyBuckets_{};
  std::atomic<uint64_t> latencyCount_{0};
  std::atomic<uint64_t> latencySumMicros_{0};
  std::array<std::atomic<uint64_t>, kIngestRefusalCount> refusals_{};
  std::atomic<uint64_t> storeErrors_{0};
  std::array<std::atomic<uint64_t>, 5> deliveries_{};  ///< 2xx 3xx 4xx 5xx no-answer
};

}  // namespace anm::edge
