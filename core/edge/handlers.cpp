// core/edge/handlers.cpp: the edge's HTTP routes, one handler class per route.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/handlers.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/URI.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <istream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/edge/body_reader.h"
#include "core/edge/event_json.h"
#include "core/edge/raw_head.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

// Looked up once: Logger::get takes a process-wide lock and searches a map on every call.
Poco::Logger& httpLog() {
  static Poco::Logger& instance = Poco::Logger::get("anm.http");
  return instance;
}

/// A request the client must fix; the message goes back as {"error": ...}.
class BadRequest : public std::runtime_error {
 public:
  explicit BadRequest(const std::string& what, int status = 400)
      : std::runtime_error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

std::string jsonText(std::string_view text) {
  std::ostringstream out;
  Poco::JSON::Stringifier::formatString(std::string(text), out);
  return out.str();
}

std::string errorJson(std::string_view message) { return "{\"error\":" + jsonText(message) + "}"; }

/// POCO's handler keeps the last of two equal keys; this one also remembers the first key that
/// was repeated within one object, so that the request can be refused instead of half-read.
class DuplicateKeyHandler : public Poco::JSON::ParseHandler {
 public:
  DuplicateKeyHandler() : ParseHandler(true) {}

  void startObject() override {
    keys_.emplace_back();
    ParseHandler::startObject();
  }
  void endObject() override {
    if (!keys_.empty()) keys_.pop_back();
    ParseHandler::endObject();
  }
  void key(const std::string& k) override {
    if (!keys_.empty() && !keys_.back().insert(k).second && !duplicate_) duplicate_ = k;
    ParseHandler::key(k);
  }

  const std::optional<std::string>& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::optional<std::string> duplicate_;
};

void sendBody(HTTPServerResponse& resp, int status, const std::string& contentType,
              const std::string& body) {
  resp.setStatusAndReason(static_cast<HTTPResponse::HTTPStatus>(status));
  resp.setContentType(contentType);
  resp.setContentLength64(static_cast<Poco::Int64>(body.size()));
  resp.sendBuffer(body.data(), body.size());
}

void sendJson(HTTPServerResponse& resp, int status, const std::string& body) {
  sendBody(resp, status, "application/json", body);
}

void sendError(HTTPServerResponse& resp, int status, std::string_view message) {
  sendJson(resp, status, errorJson(message));
}

bool hasBody(const HTTPServerRequest& req) {
  return req.getChunkedTransferEncoding() ||
         (req.hasContentLength() && req.getContentLength64() > 0);
}

// A body left unread would be taken for the next request, so such a connection must close.
void closeIfBodyUnread(const HTTPServerRequest& req, HTTPServerResponse& resp) {
  if (hasBody(req)) resp.setKeepAlive(false);
}

/// Logs a store failure at most once a second, with the count of those left out, so that an
/// outage under load writes a few lines instead of one per refused request.
void logStoreFailure(const std::exception& e) {
  static std::mutex mutex;
  static std::chrono::steady_clock::time_point lastLogged;
  static uint64_t suppressed = 0;

  const auto now = std::chrono::steady_clock::now();
  uint64_t alsoRefused = 0;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (now - lastLogged < std::chrono::seconds(1)) {
      ++suppressed;
      return;
    }
    lastLogged = now;
    alsoRefused = suppressed;
    suppressed = 0;
  }
  httpLog().error("could not reach the store error=\"%s\" not_logged=%s", std::string(e.what()),
                  std::to_string(alsoRefused));
}

void sendStoreUnavailable(HTTPServerResponse& resp, const std::exception& e) {
  logStoreFailure(e);
  resp.set("Retry-After", "5");
  sendError(resp, 503, "store unavailable, try again");
}

std::optional<int64_t> parseId(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < 0) return std::nullopt;
  return value;
}

enum class BodyRead { kOk, kTooLarge, kShort };

// Reads at most limit + 1 bytes, which is enough to tell a body over the limit from one at it.
// Throws BadRequest for a framing error (malformed chunks, the peer vanished, too slow).
BodyRead readBody(HTTPServerRequest& req, size_t limit, std::string& body) {
  // body_reader decodes the framing itself: POCO's chunked stream ends silently on a truncated
  // or malformed body, which would acknowledge a webhook that never arrived whole.
  const BodyResult result = readRequestBody(req, limit, body);
  switch (result.status) {
    case BodyStatus::kOk:
      return BodyRead::kOk;
    case BodyStatus::kTooLarge:
      return BodyRead::kTooLarge;
    case BodyStatus::kShort:
      return BodyRead::kShort;
    case BodyStatus::kTimeout:
      throw BadRequest(result.error, 408);
    case BodyStatus::kMalformed:
      break;
  }
  throw BadRequest(result.error);
}

Poco::JSON::Object::Ptr parseJsonObject(const std::string& body) {
  if (body.empty()) return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);

  // POCO's parser answers a top-level scalar or array with an error about its own stack, so
  // the shape is checked first to say what is actually wrong.
  const auto start = body.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || body[start] != '{') {
    throw BadRequest("the request body must be a JSON object");
  }

  Poco::Dynamic::Var parsed;
  Poco::SharedPtr<DuplicateKeyHandler> handler = new DuplicateKeyHandler;
  try {
    Poco::JSON::Parser parser(handler);
    parsed = parser.parse(body);
  } catch (const Poco::Exception& e) {
    throw BadRequest("the body is not valid JSON: " + e.message());
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
    throw BadRequest("the request body must be a JSON object");
  }
  if (handler->duplicate()) {
    throw BadRequest("duplicate key " + jsonText(*handler->duplicate()) + " in the request body");
  }
  return parsed.extract<Poco::JSON::Object::Ptr>();
}

std::string stringMember(const Poco::JSON::Object& object, const std::string& key,
                         const std::string& fallback) {
  if (!object.has(key)) return fallback;
  const auto value = object.get(key);
  if (!value.isString()) throw BadRequest(key + " must be a string");
  return value.extract<std::string>();
}

int64_t integerMember(const Poco::JSON::Object& object, const std::string& key, int64_t fallback,
                      int64_t min, int64_t max) {
  if (!object.has(key)) return fallback;
  const auto value = object.get(key);
  // POCO counts a boolean as an integer; JSON does not.
  if (!value.isInteger() || value.isBoolean()) {
    throw BadRequest(key + " must be an integer within " + std::to_string(min) + ".." +
                     std::to_string(max));
  }
  int64_t number = 0;
  try {
    number = value.convert<Poco::Int64>();
  } catch (const Poco::Exception&) {
    throw BadRequest(key + " is out of range");
  }
  if (number < min || number > max) {
    throw BadRequest(key + " must be an integer within " + std::to_string(min) + ".." +
                     std::to_string(max));
  }
  return number;
}

std::string deliveryJson(const store::DeliveryRecord& d) {
  return "{\"relay\":" + jsonText(d.relayId) + ",\"status\":" + std::to_string(d.status) +
         ",\"duration_ms\":" + std::to_string(d.durationMs) + ",\"error\":" + jsonText(d.error) +
         ",\"reported_at_ms\":" + std::to_string(d.reportedAtMs) + "}";
}

// An event's summary or detail with only its latest kMaxListedDeliveries deliveries and the
// number stored, so that an event reported on without end keeps a bounded answer. The count
// goes in as the object's last member, which JSON allows anywhere.
std::string withLatestDeliveries(const store::EventRecord& event,
                                 std::vector<store::DeliveryRecord> deliveries, bool detail) {
  const size_t total = deliveries.size();
  if (total > kMaxListedDeliveries) {
    deliveries.erase(deliveries.begin(), deliveries.end() - kMaxListedDeliveries);
  }
  std::string out =
      detail ? eventDetailJson(event, deliveries) : eventSummaryJson(event, deliveries);
  out.insert(out.size() - 1, ",\"deliveries_total\":" + std::to_string(total));
  return out;
}

// --- Handlers -------------------------------------------------------------------------------

class HealthHandler : public EdgeHandler {
 public:
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (refuseBadTarget(req, resp)) return;
    sendBody(resp, 200, "text/plain", "ok");
  }
};

class NotFoundHandler : public EdgeHandler {
 public:
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (refuseBadTarget(req, resp)) return;
    closeIfBodyUnread(req, resp);
    sendError(resp, 404, "not found");
  }
};

class MethodNotAllowedHandler : public EdgeHandler {
 public:
  explicit MethodNotAllowedHandler(std::string allow) : allow_(std::move(allow)) {}
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (refuseBadTarget(req, resp)) return;
    closeIfBodyUnread(req, resp);
    resp.set("Allow", allow_);
    sendError(resp, 405, "method not allowed");
  }

 private:
  std::string allow_;
};

/// ANY /h/<id>[/suffix][?query]: verify, store durably, then acknowledge.
class IngestHandler : public EdgeHandler {
 public:
  IngestHandler(const EdgeServices& services, std::string hookId, std::string suffix,
                std::string query)
      : services_(services),
        hookId_(std::move(hookId)),
        suffix_(std::move(suffix)),
        query_(std::move(query)) {}

  bool wantsBody(const HTTPServerRequest& req) const override {
    return !(req.hasContentLength() &&
             req.getContentLength64() > static_cast<Poco::Int64>(services_.maxBodyBytes));
  }

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    try {
      handle(req, resp);
    } catch (const store::StoreError& e) {
      closeIfBodyUnread(req, resp);
      if (!resp.sent()) sendStoreUnavailable(resp, e);
    } catch (const BadRequest& e) {
      resp.setKeepAlive(false);
      if (!resp.sent()) sendError(resp, e.status(), e.what());
    }
  }

 private:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) {
    // A target that cannot be relayed byte for byte is refused whichever hook it names.
    if (refuseBadTarget(req, resp)) return;

    // The hook comes first: a request to nowhere is refused before its body is read.
    const auto hook = services_.store->findHook(hookId_);
    if (!hook) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 404, "unknown hook");
      return;
    }

    // Request framing the edge cannot relay faithfully is refused rather than guessed at.
    if (req.has("Transfer-Encoding") && !req.getChunkedTransferEncoding()) {
      throw BadRequest("unsupported transfer-encoding (only chunked is accepted)", 501);
    }
    if (req.has("Transfer-Encoding") && req.has("Content-Length")) {
      throw BadRequest("a request must not carry both transfer-encoding and content-length");
    }

    // The raw head gives the true arrival order; POCO's map groups repeated names.
    std::vector<store::Header> headers;
    const std::string requestLine = req.getMethod() + " " + req.getURI() + " " + req.getVersion();
    RawHead raw = parseRawHead(context_.rawHead, requestLine);
    if (raw.status == RawHead::Status::kRefused) throw BadRequest(raw.reason);
    if (raw.status == RawHead::Status::kOk && sameFields(raw.headers, req)) {
      headers = std::move(raw.headers);
    } else if (raw.status == RawHead::Status::kOk) {
      // This request's own head shows other fields than POCO read (a 0xFF right before a line
      // end makes POCO end the head there): storing either view would alter the request.
      throw BadRequest("the header fields could not be read exactly as sent");
    } else {
      if (httpLog().debug()) {
        httpLog().debug("header order unavailable, using parsed order hook=%s reason=\"%s\"",
                        hookId_, raw.reason);
      }
      headers = pocoFields(req);
    }

    // Fields that cannot be relayed exactly are refused, whichever way they were read.
    const std::string fieldProblem = fieldRefusal(headers);
    if (!fieldProblem.empty()) throw BadRequest(fieldProblem);

    // The body, never more than the limit plus the one byte that proves it too long.
    std::string body;
    const BodyRead read = readBody(req, services_.maxBodyBytes, body);
    if (read == BodyRead::kTooLarge) {
      resp.setKeepAlive(false);
      sendError(resp, 413,
                "body exceeds the limit of " + std::to_string(services_.maxBodyBytes) + " bytes");
      return;
    }
    if (read == BodyRead::kShort) throw BadRequest("the body ended before its content-length");

    // Verification sees exactly the bytes that will be stored.
    plugin::RequestView view;
    view.hookId = hookId_;
    view.method = req.getMethod();
    view.pathSuffix = suffix_;
    view.rawQuery = query_;
    view.headers = &headers;
    view.body = body;
    view.receivedAtMs = context_.receivedAtMs;
    plugin::Outcome outcome = services_.registry->verify(*hook, view);

    store::EventRecord event;
    event.hookId = hookId_;
    event.receivedAtMs = context_.receivedAtMs;
    event.method = req.getMethod();
    event.pathSuffix = std::move(suffix_);
    event.rawQuery = std::move(query_);
    event.headers = std::move(headers);
    event.bodySize = static_cast<int64_t>(body.size());
    event.body = std::move(body);
    event.verdict = outcome.verdict;
    event.reason = outcome.reason;
    event.reasonMessage = outcome.message;
    event.eventType = std::move(outcome.eventType);
    event.deliveryId = std::move(outcome.deliveryId);

    // Durable before acknowledged: appendEvent returns once the event is committed (and, through
    // the commit listener, published to the hub when it is forwardable). The record is moved
    // in, so that the body and headers are not copied once more; what the answer needs stays.
    const store::Verdict verdict = event.verdict;
    const auto reasonCode = event.reason;
    const int64_t bodySize = event.bodySize;
    const int64_t eventId = services_.store->appendEvent(std::move(event));

    if (verdict == store::Verdict::kInvalid) {
      const std::string reason(plugin::reasonName(reasonCode));
      httpLog().information("webhook refused hook=%s provider=%s reason=%s event_id=%s", hookId_,
                            hook->provider, reason, std::to_string(eventId));
      sendJson(resp, 401,
               "{\"error\":\"invalid signature\",\"reason\":" + jsonText(reason) +
                   ",\"message\":" + jsonText(outcome.message) + "}");
      return;
    }

    // The store's commit listener has already handed the event to the stream hub, in commit
    // order, which is the order relays must see.
    if (httpLog().debug()) {
      httpLog().debug("webhook stored hook=%s provider=%s event_id=%s verdict=%s size=%s", hookId_,
                      hook->provider, std::to_string(eventId),
                      std::string(plugin::verdictName(verdict)), std::to_string(bodySize));
    }

    if (outcome.response) {
      sendBody(resp, outcome.response->status,
               outcome.response->contentType.empty() ? "text/plain" : outcome.response->contentType,
               outcome.response->body);
      return;
    }
    sendJson(resp, 200, "{\"ok\":true,\"id\":" + std::to_string(eventId) + "}");
  }

  const EdgeServices& services_;
  std::string hookId_;
  std::string suffix_;
  std::string query_;
};

/// Common frame of the REST API: error mapping, JSON bodies and the bearer token check.
class ApiHandler : public EdgeHandler {
 public:
  explicit ApiHandler(const EdgeServices& services) : services_(services) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (refuseBadTarget(req, resp)) return;
    try {
      handle(req, resp);
    } catch (const store::StoreError& e) {
      closeIfBodyUnread(req, resp);
      if (!resp.sent()) sendStoreUnavailable(resp, e);
    } catch (const BadRequest& e) {
      if (!bodyRead_) closeIfBodyUnread(req, resp);
      if (!resp.sent()) sendError(resp, e.status(), e.what());
    }
  }

 protected:
  virtual void handle(HTTPServerRequest& req, HTTPServerResponse& resp) = 0;

  /// The hook when the request carries its relay token; otherwise answers 404 and returns
  /// nothing, the same answer as for an unknown hook.
  std::optional<store::HookRecord> authorize(const std::string& hookId, HTTPServerRequest& req,
                                             HTTPServerResponse& resp) {
    auto hook = services_.store->findHook(hookId);
    const std::string& header = req.get("Authorization", "");
    const auto presented = bearerToken(header);
    const bool bearer = presented.has_value();
    const std::string token = bearer ? std::string(*presented) : std::string();

    // Hash even when the hook is unknown so that both refusals cost the same.
    const bool match = tokenMatches(token, hook ? hook->tokenHash : std::string(64, '0'));
    if (hook && bearer && match) return hook;
    closeIfBodyUnread(req, resp);
    sendError(resp, 404, "unknown hook");
    return std::nullopt;
  }

  Poco::JSON::Object::Ptr readJson(HTTPServerRequest& req) {
    std::string body;
    const BodyRead read = readBody(req, kMaxApiBodyBytes, body);
    if (read == BodyRead::kTooLarge) {
      throw BadRequest("body exceeds the limit of " + std::to_string(kMaxApiBodyBytes) + " bytes",
                       413);
    }
    bodyRead_ = true;
    if (read == BodyRead::kShort) throw BadRequest("the body ended before its content-length");
    return parseJsonObject(body);
  }

  // Does the hook own the event? Asks for one summary without its body.
  bool hookHasEvent(const std::string& hookId, int64_t eventId) {
    if (eventId <= 0) return false;
    const auto events = services_.store->listEvents(hookId, eventId - 1, 1, false, false);
    return !events.empty() && events.front().id == eventId;
  }

  std::string hookJson(const store::HookRecord& hook, const std::string* token) const {
    Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("id", hook.id);
    out.set("ingest_url", services_.publicUrl + "/h/" + hook.id);
    if (token) out.set("token", *token);
    out.set("provider", hook.provider);
    out.set("tolerance_s", static_cast<Poco::Int64>(hook.toleranceS));
    Poco::JSON::Object::Ptr options = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [key, value] : hook.options) options->set(key, value);
    out.set("options", options);
    out.set("created_at_ms", static_cast<Poco::Int64>(hook.createdAtMs));
    std::ostringstream text;
    out.stringify(text);
    return text.str();
  }

  const EdgeServices& services_;
  bool bodyRead_ = false;
};

class CreateHookHandler : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    const auto request = readJson(req);

    // A misspelt field would otherwise create a hook without the setting the caller meant.
    static const std::vector<std::string> kKnownFields = {"provider", "secret", "secret_base64",
                                                          "tolerance_s", "options"};
    std::vector<std::string> unknown;
    for (const auto& name : request->getNames()) {
      if (std::find(kKnownFields.begin(), kKnownFields.end(), name) == kKnownFields.end()) {
        unknown.push_back(jsonText(name));
      }
    }
    if (!unknown.empty()) {
      std::string message = unknown.size() == 1 ? "unknown field " : "unknown fields ";
      for (size_t i = 0; i < unknown.size(); ++i) message += (i > 0 ? ", " : "") + unknown[i];
      message += " (known fields: ";
      for (size_t i = 0; i < kKnownFields.size(); ++i) {
        message += (i > 0 ? ", " : "") + kKnownFields[i];
      }
      throw BadRequest(message + ")");
    }

    store::HookRecord hook;
    hook.provider = stringMember(*request, "provider", "");
    if (request->has("secret") && request->has("secret_base64")) {
      throw BadRequest("give either secret or secret_base64, not both");
    }
    hook.secret = stringMember(*request, "secret", "");
    if (request->has("secret_base64"))
      hook.secret = decodeBase64(stringMember(*request, "secret_base64", ""));
    if (hook.provider.empty() && !hook.secret.empty()) {
      throw BadRequest(
          "secret given without a provider; a hook without a provider verifies nothing, so name "
          "the provider or leave the secret out");
    }
    hook.toleranceS = integerMember(*request, "tolerance_s", -1, -1, kMaxToleranceS);
    if (request->has("options")) {
      const auto options = request->getObject("options");
      if (!options) throw BadRequest("options must be an object of strings");
      for (const auto& key : options->getNames()) {
        const auto value = options->get(key);
        if (!value.isString()) throw BadRequest("option " + key + " must be a string");
        hook.options.emplace_back(key, value.extract<std::string>());
      }
    }

    // The plugin checks the settings now so that a typo fails here, not on every webhook.
    if (!hook.provider.empty()) {
      if (!services_.registry->has(hook.provider)) {
        throw BadRequest("unknown provider " + hook.provider);
      }
      const std::string refusal = services_.registry->checkSettings(hook);
      if (!refusal.empty()) throw BadRequest(refusal);

      // Every provider signs with a secret; a hook without one would refuse every webhook.
      if (hook.secret.empty()) {
        throw BadRequest("provider " + hook.provider +
                         " needs a secret (secret or secret_base64) to verify signatures");
      }
    }

    const std::string token = newRelayToken();
    hook.id = newHookId();
    hook.tokenHash = sha256Hex(token);
    hook.createdAtMs = nowMs();
    services_.store->createHook(hook);
    httpLog().information("hook created hook=%s provider=%s", hook.id,
                          hook.provider.empty() ? std::string("none") : hook.provider);
    sendJson(resp, 201, hookJson(hook, &token));
  }

 private:
  static std::string decodeBase64(const std::string& text) {
    std::istringstream in(text);
    Poco::Base64Decoder decoder(in);
    std::string out;
    try {
      out.assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
    } catch (const Poco::Exception&) {
      throw BadRequest("secret_base64 is not valid base64");
    }
    if (decoder.bad()) throw BadRequest("secret_base64 is not valid base64");
    return out;
  }
};

/// An API route under /api/v1/hooks/<id>: it runs only for a request that carries the
/// hook's relay token; any other request gets the same 404 as an unknown hook.
class HookApiHandler : public ApiHandler {
 public:
  HookApiHandler(const EdgeServices& services, std::string hookId, int64_t eventId = 0)
      : ApiHandler(services), hookId_(std::move(hookId)), eventId_(eventId) {}

 protected:
  virtual void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                          HTTPServerResponse& resp) = 0;

  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) final {
    const auto hook = authorize(hookId_, req, resp);
    if (!hook) return;
    handleHook(*hook, req, resp);
  }

  const std::string hookId_;
  const int64_t eventId_;  ///< 0 on routes without an event
};

class GetHookHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& /*req*/,
                  HTTPServerResponse& resp) override {
    sendJson(resp, 200, hookJson(hook, nullptr));
  }
};

class ListEventsHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    int64_t after = 0;
    size_t limit = kDefaultEventsPage;
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key == "after") {
        const auto parsed = parseId(value);
        if (!parsed) throw BadRequest("after must be a non-negative integer");
        after = *parsed;
      } else if (key == "limit") {
        const auto parsed = parseId(value);
        if (!parsed || *parsed < 1 || *parsed > static_cast<int64_t>(kMaxEventsPage)) {
          throw BadRequest("limit must be within 1.." + std::to_string(kMaxEventsPage));
        }
        limit = static_cast<size_t>(*parsed);
      }
    }

    const auto events = services_.store->listEvents(hookId_, after, limit, false, false);
    std::string out = "{\"events\":[";
    for (size_t i = 0; i < events.size(); ++i) {
      if (i > 0) out += ',';
      out += withLatestDeliveries(events[i], services_.store->listDeliveries(events[i].id), false);
    }
    out += "],\"next_after\":" + std::to_string(events.empty() ? after : events.back().id) + "}";
    sendJson(resp, 200, out);
  }
};

class GetEventHandler : public HookApiHandler {
 public:
  GetEventHandler(const EdgeServices& services, std::string hookId, int64_t eventId, bool rawBody)
      : HookApiHandler(services, std::move(hookId), eventId), rawBody_(rawBody) {}

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& /*req*/,
                  HTTPServerResponse& resp) override {
    const auto event = services_.store->getEvent(hookId_, eventId_);
    if (!event) {
      sendError(resp, 404, "unknown event");
      return;
    }
    if (rawBody_) {
      sendBody(resp, 200, "application/octet-stream", event->body);
      return;
    }
    sendJson(resp, 200,
             withLatestDeliveries(*event, services_.store->listDeliveries(event->id), true));
  }

 private:
  bool rawBody_;
};

// Reads one delivery report; `withEvent` also requires its "event" member.
store::DeliveryRecord parseDelivery(const Poco::JSON::Object& report, int64_t eventId) {
  store::DeliveryRecord delivery;
  delivery.eventId = eventId;
  delivery.relayId = stringMember(report, "relay", "");
  if (delivery.relayId.empty() || delivery.relayId.size() > kMaxRelayIdBytes) {
    throw BadRequest("relay must be a string of 1.." + std::to_string(kMaxRelayIdBytes) + " bytes");
  }
  delivery.status = static_cast<int32_t>(integerMember(report, "status", 0, 0, 999));
  delivery.durationMs = integerMember(report, "duration_ms", 0, 0, INT64_C(86400000) * 365);
  delivery.error = stringMember(report, "error", "");
  if (delivery.error.size() > kMaxDeliveryErrorBytes) {
    throw BadRequest("error must be at most " + std::to_string(kMaxDeliveryErrorBytes) + " bytes");
  }
  delivery.reportedAtMs = nowMs();
  return delivery;
}

class AddDeliveryHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const auto report = readJson(req);
    if (!hookHasEvent(hookId_, eventId_)) {
      sendError(resp, 404, "unknown event");
      return;
    }
    const store::DeliveryRecord delivery = parseDelivery(*report, eventId_);
    services_.store->addDelivery(delivery);
    sendJson(resp, 201, deliveryJson(delivery));
  }
};

class BulkDeliveriesHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const auto request = readJson(req);
    const auto reports = request->getArray("deliveries");
    if (!reports) throw BadRequest("deliveries must be an array");
    if (reports->size() > kMaxBulkDeliveries) {
      throw BadRequest("at most " + std::to_string(kMaxBulkDeliveries) + " deliveries per request");
    }

    // Every report is checked before any is stored, so a bad one stores nothing.
    std::vector<store::DeliveryRecord> deliveries;
    std::vector<int64_t> checked;
    for (size_t i = 0; i < reports->size(); ++i) {
      const auto report = reports->getObject(static_cast<unsigned>(i));
      if (!report) throw BadRequest("delivery " + std::to_string(i) + " is not an object");
      const int64_t eventId = integerMember(*report, "event", 0, 0, INT64_MAX);
      if (std::find(checked.begin(), checked.end(), eventId) == checked.end()) {
        if (!hookHasEvent(hookId_, eventId)) {
          throw BadRequest("delivery " + std::to_string(i) + " names no event of this hook");
        }
        checked.push_back(eventId);
      }
      deliveries.push_back(parseDelivery(*report, eventId));
    }
    services_.store->addDeliveries(deliveries);
    sendJson(resp, 201, "{\"stored\":" + std::to_string(deliveries.size()) + "}");
  }
};

class ReplayHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    auto event = services_.store->getEvent(hookId_, eventId_);
    if (!event) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 404, "unknown event");
      return;
    }

    // The copy keeps the request and the original verdict; replay_of marks it, which is also
    // what lets the copy of an invalid event reach the relays (docs/protocol.md).
    store::EventRecord copy = std::move(*event);
    copy.replayOf = copy.id;
    copy.id = 0;
    copy.receivedAtMs = nowMs();
    copy.id = services_.store->appendEvent(copy);
    httpLog().information("event replayed hook=%s event_id=%s replay_of=%s", hookId_,
                          std::to_string(copy.id), std::to_string(copy.replayOf));
    closeIfBodyUnread(req, resp);
    sendJson(resp, 201, withLatestDeliveries(copy, {}, false));
  }
};

/// GET .../stream: answers the head, then hands the socket to the hub and frees the thread.
class StreamHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    int64_t lastEventId = 0;
    std::string resume = req.get("Last-Event-ID", "");
    if (resume.empty()) {
      for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
        if (key == "last_event_id") resume = value;
      }
    }
    if (!resume.empty()) {
      const auto parsed = parseId(resume);
      if (!parsed) throw BadRequest("Last-Event-ID must be a non-negative integer");
      lastEventId = *parsed;
    }

    // No length and no chunking: the stream is the rest of the connection.
    resp.setStatus(HTTPResponse::HTTP_OK);
    resp.setContentType("text/event-stream");
    resp.set("Cache-Control", "no-cache");
    resp.set("X-Accel-Buffering", "no");
    resp.setChunkedTransferEncoding(false);
    resp.setKeepAlive(false);
    resp.send().flush();

    auto socket = static_cast<Poco::Net::HTTPServerRequestImpl&>(req).detachSocket();
    services_.hub->attach(std::move(socket), hookId_, lastEventId);
    if (httpLog().debug()) {
      httpLog().debug("stream opened hook=%s last_event_id=%s", hookId_,
                      std::to_string(lastEventId));
    }
  }
};

// Splits "/a/b/c" into {"a","b","c"}; an empty segment makes the path unroutable.
std::optional<std::vector<std::string>> segments(std::string_view path) {
  std::vector<std::string> out;
  if (path.empty() || path.front() != '/') return std::nullopt;
  path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view segment = path.substr(0, slash);
    if (segment.empty()) return std::nullopt;
    out.emplace_back(segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) return std::nullopt;
  }
  return out;
}

}  // namespace

bool EdgeHandler::wantsBody(const HTTPServerRequest&) const { return true; }

bool EdgeHandler::refuseBadTarget(const HTTPServerRequest& req, HTTPServerResponse& resp) const {
  // A method that is not a token could be stored but never relayed, so it is refused here.
  if (!isToken(req.getMethod())) {
    if (httpLog().debug()) httpLog().debug("request refused reason=method_not_token");
    closeIfBodyUnread(req, resp);
    sendError(resp, 400, "the method must be an RFC 9110 token, e.g. POST");
    return true;
  }

  const std::string requestLine = req.getMethod() + " " + req.getURI() + " " + req.getVersion();
  if (targetAcceptable(context_.rawHead, requestLine, req.getURI())) return false;
  if (httpLog().debug()) httpLog().debug("request refused reason=non_ascii_target");
  closeIfBodyUnread(req, resp);
  sendError(resp, 400, kTargetRefusal);
  return true;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Router::Router(const EdgeServices& services) : services_(services) {}

EdgeHandler* Router::createRequestHandler(const HTTPServerRequest& request) {
  // The target as sent; an absolute-form target ("http://host/h/...") loses its authority.
  std::string_view target = request.getURI();
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    const auto slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  const auto questionMark = target.find('?');
  const std::string_view path = target.substr(0, questionMark);
  const std::string_view query =
      questionMark == std::string_view::npos ? std::string_view() : target.substr(questionMark + 1);
  const std::string& method = request.getMethod();

  // Ingest takes any method and keeps the suffix and query byte for byte.
  if (path.rfind("/h/", 0) == 0) {
    const std::string_view rest = path.substr(3);
    const auto slash = rest.find('/');
    const std::string_view id = rest.substr(0, slash);
    if (id.empty()) return new NotFoundHandler;
    const std::string_view suffix =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    return new IngestHandler(services_, std::string(id), std::string(suffix), std::string(query));
  }

  if (path == "/healthz") {
    if (method != "GET" && method != "HEAD") return new MethodNotAllowedHandler("GET, HEAD");
    return new HealthHandler;
  }

  const auto parts = segments(path);
  if (!parts || parts->size() < 3 || (*parts)[0] != "api" || (*parts)[1] != "v1" ||
      (*parts)[2] != "hooks") {
    return new NotFoundHandler;
  }
  const auto& p = *parts;
  const size_t n = p.size();
  auto allow = [&method](const char* expected) { return method == expected; };

  if (n == 3) {
    if (!allow("POST")) return new MethodNotAllowedHandler("POST");
    return new CreateHookHandler(services_);
  }
  const std::string& hookId = p[3];
  if (n == 4) {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new GetHookHandler(services_, hookId);
  }
  if (n == 5 && p[4] == "events") {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new ListEventsHandler(services_, hookId);
  }
  if (n == 5 && p[4] == "deliveries") {
    if (!allow("POST")) return new MethodNotAllowedHandler("POST");
    return new BulkDeliveriesHandler(services_, hookId);
  }
  if (n == 5 && p[4] == "stream") {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new StreamHandler(services_, hookId);
  }
  if (n < 6 || n > 7 || p[4] != "events") return new NotFoundHandler;

  const auto eventId = parseId(p[5]);
  if (!eventId || *eventId == 0) return new NotFoundHandler;
  if (n == 6) {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new GetEventHandler(services_, hookId, *eventId, false);
  }
  if (p[6] == "body") {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new GetEventHandler(services_, hookId, *eventId, true);
  }
  if (p[6] == "deliveries") {
    if (!allow("POST")) return new MethodNotAllowedHandler("POST");
    return new AddDeliveryHandler(services_, hookId, *eventId);
  }
  if (p[6] == "replay") {
    if (!allow("POST")) return new MethodNotAllowedHandler("POST");
    return new ReplayHandler(services_, hookId, *eventId);
  }
  return new NotFoundHandler;
}

}  // namespace anm::edge
