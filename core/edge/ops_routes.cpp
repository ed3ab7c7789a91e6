// core/edge/ops_routes.cpp: health, readiness, metrics and the provider list.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/ops_routes.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include <sstream>

#include "core/diagnosis/pages.h"
#include "core/edge/api_support.h"
#include "core/edge/stream_hub.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

// The content type Prometheus' text exposition format 0.0.4 is served with.
constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

std::string stringify(const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

/// GET /healthz: the process answers. Nothing else is checked, so a supervisor restarts only
/// an edge that cannot answer at all.
class HealthHandler : public EdgeHandler {
 public:
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    resp.set("Cache-Control", "no-store");
    sendBody(resp, 200, "text/plain", "ok");
  }
};

/// GET /readyz: whether this edge should be sent webhooks now.
class ReadyHandler : public EdgeHandler {
 public:
  explicit ReadyHandler(EdgeStatus& status) : status_(status) {}
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);

    const EdgeStatus::Readiness readiness = status_.readiness();
    Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("ready", readiness.ready);
    out.set("store",
            readiness.storeReachable ? std::string("ok") : "unreachable: " + readiness.storeError);
    out.set("plugins_loaded", readiness.pluginsLoaded);
    out.set("plugins", readiness.plugins);
    out.set("stopping", readiness.stopping);
    resp.set("Cache-Control", "no-store");
    if (!readiness.ready) resp.set("Retry-After", "5");
    sendJson(resp, readiness.ready ? 200 : 503, stringify(out));
  }

 private:
  EdgeStatus& status_;
};

/// GET /metrics: counters in Prometheus' text format.
class MetricsHandler : public EdgeHandler {
 public:
  MetricsHandler(const Metrics& metrics, EdgeStatus& status) : metrics_(metrics), status_(status) {}
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    resp.set("Cache-Control", "no-store");
    sendBody(resp, 200, kMetricsContentType, metrics_.render(status_.readings()));
  }

 private:
  const Metrics& metrics_;
  EdgeStatus& status_;
};

/// GET /api/v1/providers: the plugins offered now. What they are is no secret: anyone may
/// create an anonymous hook with any of them.
class ProvidersHandler : public EdgeHandler {
 public:
  explicit ProvidersHandler(const plugin::Registry& registry) : registry_(registry) {}
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);

    Poco::JSON::Array::Ptr providers = new Poco::JSON::Array;
    for (const auto& info : registry_.list()) {
      Poco::JSON::Object::Ptr entry = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      entry->set("name", info.name);
      entry->set("version", info.version);
      entry->set("abi", std::to_string(info.abiMajor) + "." + std::to_string(info.abiMinor));
      entry->set("summary", info.summary);
      entry->set("file", info.file);
      providers->add(entry);
    }
    Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("providers", providers);
    resp.set("Cache-Control", "no-store");
    sendJson(resp, 200, stringify(out));
  }

 private:
  const plugin::Registry& registry_;
};

/// GET /diagnosis/, /diagnosis/index.json, /diagnosis/<code> and /diagnosis/<code>.json: the
/// page of each diagnosis code (docs/diagnosis.md). They hold nothing of any hook, so they need
/// no sign-in; as HTML they run no script and load nothing.
class DiagnosisPageHandler : public EdgeHandler {
 public:
  explicit DiagnosisPageHandler(std::string name) : name_(std::move(name)) {}
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    resp.set("X-Content-Type-Options", "nosniff");
    resp.set("Referrer-Policy", "no-referrer");

    const auto& pages = diagnosis::catalog();
    if (name_.empty() || name_ == "index.json") {
      if (name_.empty()) {
        resp.set("Content-Security-Policy", diagnosis::pageContentSecurityPolicy());
        sendBody(resp, 200, "text/html; charset=utf-8", diagnosis::renderIndexHtml(pages));
      } else {
        sendJson(resp, 200, diagnosis::renderIndexJson(pages));
      }
      return;
    }
    const bool json = name_.size() > 5 && name_.compare(name_.size() - 5, 5, ".json") == 0;
    const std::string code = json ? name_.substr(0, name_.size() - 5) : name_;
    const diagnosis::Page* page = diagnosis::findPage(code);
    if (page == nullptr) {
      sendError(resp, 404, "no diagnosis code " + code + "; the list is at /diagnosis/");
      return;
    }
    if (json) {
      sendJson(resp, 200, diagnosis::renderPageJson(*page));
      return;
    }
    resp.set("Content-Security-Policy", diagnosis::pageContentSecurityPolicy());
    sendBody(resp, 200, "text/html; charset=utf-8", diagnosis::renderPageHtml(*page));
  }

 private:
  std::string name_;
};

}  // namespace

EdgeStatus::EdgeStatus(store::Store& store, plugin::Registry& registry, StreamHub& hub)
    : store_(store), registry_(registry), hub_(hub) {}

EdgeStatus::Readiness EdgeStatus::readiness() {
  Readiness out;
  out.pluginsLoaded = pluginsLoaded_.load();
  out.stopping = stopping_.load();
  out.plugins = registry_.list().size();

  // One probe a second at most: a read every backend must answer from the database itself.
  {
    std::lock_guard<std::mutex> lock(probeMutex_);
    const auto now = std::chrono::steady_clock::now();
    if (probedAt_ == std::chrono::steady_clock::time_point{} ||
        now - probedAt_ >= kReadinessProbeInterval) {
      try {
        store_.getSetting("encryption.active_key");
        probeOk_ = true;
        probeError_.clear();
      } catch (const std::exception& e) {
        probeOk_ = false;
        probeError_ = e.what();
      }
      probedAt_ = now;
    }
    out.storeReachable = probeOk_;
    out.storeError = probeError_;
  }
  out.ready = out.storeReachable && out.pluginsLoaded && !out.stopping;
  return out;
}

MetricsReadings EdgeStatus::readings() {
  MetricsReadings out;
  out.openStreams = hub_.openStreams();
  out.streamStoreErrors = hub_.stats().backlogReadErrors;
  out.pluginsLoaded = registry_.list().size();
  out.pluginLoadFailures = registry_.loadFailures();
  out.ready = readiness().ready;
  return out;
}

EdgeHandler* routeOperations(const EdgeServices& services, const std::string& method,
                             std::string_view path) {
  const bool read = method == "GET" || method == "HEAD";
  if (path == "/healthz") {
    if (!read) return new MethodNotAllowedHandler("GET, HEAD");
    return new HealthHandler;
  }
  if (path == "/readyz") {
    if (!read) return new MethodNotAllowedHandler("GET, HEAD");
    return new ReadyHandler(*services.status);
  }
  if (path == "/metrics") {
    if (!read) return new MethodNotAllowedHandler("GET, HEAD");
    return new MetricsHandler(*services.metrics, *services.status);
  }
  if (path == "/api/v1/providers") {
    if (!read) return new MethodNotAllowedHandler("GET, HEAD");
    return new ProvidersHandler(*services.registry);
  }
  if (path == "/diagnosis" || path.rfind("/diagnosis/", 0) == 0) {
    if (!read) return new MethodNotAllowedHandler("GET, HEAD");
    const std::string_view name =
        path.size() > sizeof("/diagnosis/") - 1 ? path.substr(sizeof("/diagnosis/") - 1) : "";
    if (name.find('/') != std::string_view::npos) return nullptr;
    return new DiagnosisPageHandler(std::string(name));
  }
  return nullptr;
}

}  // namespace anm::edge
