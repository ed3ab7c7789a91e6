// core/edge/dashboard_routes.cpp: the dashboard's page and files from core/dashboard/assets.h.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/dashboard_routes.h"

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include "core/dashboard/assets.h"
#include "core/edge/api_support.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// Whether If-None-Match names `etag` (RFC 9110 section 13.1.2: a list, "*", and the weak
/// comparison, so W/"x" matches "x").
bool noneMatchNames(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view tag = trimmed(header.substr(0, comma));
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

/// GET|HEAD of one embedded file.
class DashboardAssetHandler : public EdgeHandler {
 public:
  explicit DashboardAssetHandler(const dashboard::Asset& asset) : asset_(asset) {}
  bool wantsBody(const HTTPServerRequest&) const override { return false; }

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);

    // The page's own rules, on every file: a script or style sheet opened on its own is a
    // document too. no-cache (not no-store) lets the browser keep a copy and ask with the ETag.
    resp.set("Content-Security-Policy", kDashboardCsp);
    resp.set("X-Content-Type-Options", "nosniff");
    resp.set("Referrer-Policy", "no-referrer");
    resp.set("Cache-Control", "no-cache");
    resp.set("ETag", std::string(asset_.etag));

    if (noneMatchNames(req.get("If-None-Match", ""), asset_.etag)) {
      resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NOT_MODIFIED);
      resp.setContentLength64(0);
      resp.send();
      return;
    }
    resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_OK);
    resp.setContentType(std::string(asset_.contentType));
    resp.setContentLength64(static_cast<Poco::Int64>(asset_.bytes.size()));
    resp.sendBuffer(asset_.bytes.data(), asset_.bytes.size());
  }

 private:
  const dashboard::Asset& asset_;
};

/// 404 for an /app/ file that is not embedded.
class UnknownAssetHandler : public EdgeHandler {
 public:
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    resp.set("X-Content-Type-Options", "nosniff");
    sendError(resp, 404, "not found");
  }
};

}  // namespace

EdgeHandler* routeDashboard(const std::string& method, std::string_view path) {
  std::string_view assetPath;
  if (path == "/") {
    assetPath = "/index.html";
  } else if (path.substr(0, 5) == "/app/") {
    assetPath = path;
  } else {
    return nullptr;
  }
  if (method != "GET" && method != "HEAD") return new MethodNotAllowedHandler("GET, HEAD");

  const dashboard::Asset* asset = dashboard::findAsset(assetPath);
  if (asset == nullptr) return new UnknownAssetHandler;
  return new DashboardAssetHandler(*asset);
}

}  // namespace anm::edge
