// core/edge/handlers.h: the edge's HTTP routes, one handler class per route.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Logger.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/edge/stream_hub.h"
#include "core/plugin/registry.h"
#include "core/store/store.h"

namespace anm::edge {

/// Largest JSON body the REST API reads (hook settings, delivery reports): 1 MiB.
inline constexpr size_t kMaxApiBodyBytes = 1u << 20;

/// Most replay ids an event's detail lists ("replays"), the oldest first.
inline constexpr size_t kMaxListedReplayIds = 100;
/// Most delivery reports in one bulk request (docs/protocol.md).
inline constexpr size_t kMaxBulkDeliveries = 1000;
/// Page size bounds of GET .../events.
inline constexpr size_t kMaxEventsPage = 1000;
inline constexpr size_t kDefaultEventsPage = 100;
/// Bounds of a hook's tolerance_s: -1 (the plugin's default) up to one day.
inline constexpr int64_t kMaxToleranceS = 86400;
/// Bounds of GET .../activity?minutes=N: a day of minutes at most, an hour by default.
inline constexpr int64_t kMaxActivityMinutes = 1440;
inline constexpr int64_t kDefaultActivityMinutes = 60;
/// Longest relay id and delivery error text a report may carry.
inline constexpr size_t kMaxRelayIdBytes = 200;
inline constexpr size_t kMaxDeliveryErrorBytes = 1000;
/// The header a relay names itself with on GET .../stream, and its bounds: 1..64 of
/// A-Z a-z 0-9 - _ (docs/protocol.md).
inline constexpr char kRelayHeader[] = "X-Anonymily-Relay";
inline constexpr size_t kMaxRelayHeaderBytes = 64;
/// Bounds of a hook's custom response (the pro plan): header fields and body bytes.
inline constexpr size_t kMaxCustomResponseHeaders = 20;
inline constexpr size_t kMaxCustomResponseBodyBytes = 64u << 10;
/// The Content-Type of a custom response that names none.
inline constexpr char kCustomResponseDefaultType[] = "text/plain; charset=utf-8";
/// Most deliveries an event summary or detail lists: the latest ones, with "deliveries_total"
/// giving how many are stored (docs/protocol.md).
inline constexpr size_t kMaxListedDeliveries = 20;

/// What every handler shares. Owned by the EdgeServer, which outlives every request.
struct EdgeConfig;
class AccountCache;
class Authenticator;
class IngestLimiter;
class Metrics;
class EdgeStatus;
class ReplayJobs;
class Explainer;

struct EdgeServices {
  const EdgeConfig* config = nullptr;  ///< the settings the edge started with
  store::Store* store = nullptr;
  plugin::Registry* registry = nullptr;
  StreamHub* hub = nullptr;       ///< relays' streams
  StreamHub* watchHub = nullptr;  ///< dashboards' streams of summaries (StreamHub::Options)
  Authenticator* auth = nullptr;
  IngestLimiter* limiter = nullptr;
  Metrics* metrics = nullptr;  ///< never null in a running edge
  EdgeStatus* status = nullptr;
  ReplayJobs* replayJobs = nullptr;  ///< bulk replays (docs/dashboard.md)
  Explainer* explainer = nullptr;    ///< the model-based explanation; off unless configured
  size_t maxBodyBytes = 10485760;
  std::string publicUrl;
  /// Accounts for ingest's check of a hook's plan; null reads the store each time. (Appended.)
  AccountCache* accounts = nullptr;
};

/// Per-request facts the connection knows and POCO's request does not.
struct RequestContext {
  int64_t receivedAtMs = 0;                          ///< when the request head had arrived
  std::chrono::steady_clock::time_point receivedAt;  ///< the same, for measuring durations
  std::string_view rawHead;  ///< the head as received, or "" when it was not recorded whole
};

/// Base of every edge handler: receives the request context before handleRequest.
class EdgeHandler : public Poco::Net::HTTPRequestHandler {
 public:
  void setContext(const RequestContext& context) { context_ = context; }

  /// Whether to answer "Expect: 100-continue" before the handler runs. A request whose body
  /// will be refused anyway gets its answer without the client sending the body first.
  virtual bool wantsBody(const Poco::Net::HTTPServerRequest& request) const;

 protected:
  RequestContext context_;
};

/// 405 with the methods the route does take in `Allow`.
class MethodNotAllowedHandler : public EdgeHandler {
 public:
  explicit MethodNotAllowedHandler(std::string allow) : allow_(std::move(allow)) {}
  bool wantsBody(const Poco::Net::HTTPServerRequest&) const override { return false; }
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override;

 private:
  std::string allow_;
};

/// Routes a request to its handler (docs/protocol.md). Never returns null: unknown routes get
/// a 404 handler, known routes with the wrong method a 405 handler.
class Router : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Router(const EdgeServices& services);

  EdgeHandler* createRequestHandler(const Poco::Net::HTTPServerRequest& request) override;

  /// Counts a request the connection refused as malformed before any route saw it (the
  /// `malformed` refusal of the metrics; a head that does not parse names no route).
  void countMalformed() const;

 private:
  const EdgeServices& services_;
};

/// Milliseconds since the Unix epoch.
int64_t nowMs();

}  // namespace anm::edge
