// core/edge/metrics.cpp: counters and their Prometheus text rendering.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <fstream>
#include <mutex>
#include <shared_mutex>
#include <sstream>

namespace anm::edge {
namespace {

constexpr std::array<std::string_view, 5> kDeliveryOutcomes = {"2xx", "3xx", "4xx", "5xx",
                                                               "no_response"};

constexpr std::array<store::Verdict, 3> kVerdicts = {
    store::Verdict::kValid, store::Verdict::kInvalid, store::Verdict::kUnsigned};

std::string_view verdictLabel(store::Verdict verdict) {
  switch (verdict) {
    case store::Verdict::kValid:
      return "valid";
    case store::Verdict::kInvalid:
      return "invalid";
    case store::Verdict::kUnsigned:
      return "unsigned";
  }
  return "unsigned";
}

size_t verdictIndex(store::Verdict verdict) {
  for (size_t i = 0; i < kVerdicts.size(); ++i) {
    if (kVerdicts[i] == verdict) return i;
  }
  return kVerdicts.size() - 1;
}

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string labelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The shortest text without an exponent that reads back as the same double ("10", "0.0005").
std::string number(double value) {
  char buffer[512];
  const auto result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed);
  return std::string(buffer, result.ptr);
}

void family(std::ostringstream& out, std::string_view name, std::string_view type,
            std::string_view help) {
  out << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
}

// Resident memory and open descriptors of this process, read from /proc.
int64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  int64_t resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * ::sysconf(_SC_PAGESIZE);
}

int64_t openDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the descriptor opendir itself holds
}

int64_t epochSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

/// The counters of one provider: one per verdict.
struct Metrics::Series {
  std::array<std::atomic<uint64_t>, 3> stored{};
};

Metrics::Metrics(std::string version) : version_(std::move(version)), startedAtS_(epochSeconds()) {}

Metrics::~Metrics() = default;

Metrics::Series& Metrics::seriesFor(std::string_view provider) {
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto it = byLabels_.find(provider);
    if (it != byLabels_.end()) return *it->second;
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  auto& series = byLabels_[std::string(provider)];
  if (!series) series = std::make_unique<Series>();
  return *series;
}

void Metrics::webhookStored(std::string_view provider, store::Verdict verdict, double seconds) {
  seriesFor(provider).stored[verdictIndex(verdict)].fetch_add(1, std::memory_order_relaxed);

  // Buckets are cumulative in the output, so each observation counts once, in its own bucket.
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      latencyBuckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  latencyCount_.fetch_add(1, std::memory_order_relaxed);
  latencySumMicros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Metrics::webhookRefused(IngestRefusal why) {
  refusals_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::storeError() { storeErrors_.fetch_add(1, std::memory_order_relaxed); }

void Metrics::deliveryReported(int32_t status) {
  size_t outcome = 4;
  if (status >= 200 && status < 600) outcome = static_cast<size_t>(status / 100 - 2);
  deliveries_[outcome].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const MetricsReadings& readings) const {
  std::ostringstream out;

  family(out, "anonymily_build_info", "gauge", "Version of the running edge; always 1.");
  out << "anonymily_build_info{version=\"" << labelValue(version_) << "\"} 1\n";

  family(out, "anonymily_ready", "gauge",
         "1 while the edge takes webhooks (store reachable, plugins loaded), else 0.");
  out << "anonymily_ready " << (readings.ready ? 1 : 0) << '\n';

  family(out, "anonymily_webhooks_received_total", "counter",
         "Webhooks stored, by provider and signature verdict.");
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    for (const auto& [provider, series] : byLabels_) {
      for (size_t v = 0; v < kVerdicts.size(); ++v) {
        out << "anonymily_webhooks_received_total{provider=\"" << labelValue(provider)
            << "\",verdict=\"" << verdictLabel(kVerdicts[v]) << "\"} "
            << series->stored[v].load(std::memory_order_relaxed) << '\n';
      }
    }
  }

  family(out, "anonymily_webhooks_refused_total", "counter",
         "Webhooks answered without being stored, by reason; malformed counts malformed "
         "requests on every route.");
  for (size_t i = 0; i < kIngestRefusalNames.size(); ++i) {
    out << "anonymily_webhooks_refused_total{reason=\"" << kIngestRefusalNames[i] << "\"} "
        << refusals_[i].load(std::memory_order_relaxed) << '\n';
  }

  family(out, "anonymily_ingest_duration_seconds", "histogram",
         "Time from a stored webhook's complete request head to its answer: body, verification, "
         "durable store.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cumulative += latencyBuckets_[i].load(std::memory_order_relaxed);
    out << "anonymily_ingest_duration_seconds_bucket{le=\"" << number(kLatencyBuckets[i]) << "\"} "
        << cumulative << '\n';
  }
  const uint64_t count = latencyCount_.load(std::memory_order_relaxed);
  out << "anonymily_ingest_duration_seconds_bucket{le=\"+Inf\"} " << count << '\n'
      << "anonymily_ingest_duration_seconds_sum "
      << number(static_cast<double>(latencySumMicros_.load(std::memory_order_relaxed)) / 1e6)
      << '\n'
      << "anonymily_ingest_duration_seconds_count " << count << '\n';

  family(out, "anonymily_store_errors_total", "counter",
         "Store operations that failed, by the path that needed them.");
  out << "anonymily_store_errors_total{path=\"request\"} "
      << storeErrors_.load(std::memory_order_relaxed) << '\n'
      << "anonymily_store_errors_total{path=\"stream\"} " << readings.streamStoreErrors << '\n';

  family(out, "anonymily_relay_streams_open", "gauge", "Relay event streams open now.");
  out << "anonymily_relay_streams_open " << readings.openStreams << '\n';

  family(out, "anonymily_deliveries_total", "counter",
         "Deliveries relays reported, by the local server's answer.");
  for (size_t i = 0; i < kDeliveryOutcomes.size(); ++i) {
    out << "anonymily_deliveries_total{status=\"" << kDeliveryOutcomes[i] << "\"} "
        << deliveries_[i].load(std::memory_order_relaxed) << '\n';
  }

  family(out, "anonymily_plugins_loaded", "gauge", "Provider plugins offered now.");
  out << "anonymily_plugins_loaded " << readings.pluginsLoaded << '\n';

  family(out, "anonymily_plugin_load_failures_total", "counter",
         "Plugin files refused since the edge started.");
  out << "anonymily_plugin_load_failures_total " << readings.pluginLoadFailures << '\n';

  family(out, "process_start_time_seconds", "gauge", "Start time of the process since the epoch.");
  out << "process_start_time_seconds " << startedAtS_ << '\n';
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out << "process_resident_memory_bytes " << residentBytes() << '\n';
  family(out, "process_open_fds", "gauge", "Open file descriptors.");
  out << "process_open_fds " << openDescriptors() << '\n';
  return out.str();
}

}  // namespace anm::edge
