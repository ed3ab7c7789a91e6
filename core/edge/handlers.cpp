// core/edge/handlers.cpp: the edge's HTTP routes, one handler class per route.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/handlers.h"

#include <Poco/Base64Decoder.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <istream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/edge/account_cache.h"
#include "core/edge/account_routes.h"
#include "core/edge/api_handler.h"
#include "core/edge/api_support.h"
#include "core/edge/auth.h"
#include "core/edge/config.h"
#include "core/edge/dashboard_routes.h"
#include "core/edge/diagnosis_routes.h"
#include "core/edge/event_diagnosis.h"
#include "core/edge/event_json.h"
#include "core/edge/event_search.h"
#include "core/edge/hook_lifecycle.h"
#include "core/edge/metrics.h"
#include "core/edge/ops_routes.h"
#include "core/edge/plans.h"
#include "core/edge/rate_limit.h"
#include "core/edge/raw_head.h"
#include "core/edge/replay_edit.h"
#include "core/edge/replay_jobs.h"
#include "core/edge/secrets.h"
#include "core/edge/standard_webhooks.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool isRelayId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRelayHeaderBytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

bool booleanMember(const Poco::JSON::Object& object, const std::string& key, bool fallback) {
  if (!object.has(key)) return fallback;
  const auto value = object.get(key);
  if (value.type() != typeid(bool)) throw BadRequest(key + " must be true or false");
  return value.extract<bool>();
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

// --- Custom responses -----------------------------------------------------------------------

// Why a custom response may not set the field `name`, or "" when it may (#4). The answer goes
// out on the edge's own origin, where the dashboard runs: nothing in it may frame the answer
// differently, replace what the edge sets on every answer, or change what the browser keeps for
// that origin (cookies, caches, permissions granted to other origins, ...).
std::string customHeaderRefusal(std::string_view name) {
  const auto any = [name](std::initializer_list<std::string_view> names) {
    return std::any_of(names.begin(), names.end(),
                       [name](std::string_view other) { return equalsIgnoringCase(name, other); });
  };
  const auto startsWith = [name](std::string_view prefix) {
    return name.size() >= prefix.size() &&
           equalsIgnoringCase(name.substr(0, prefix.size()), prefix);
  };
  if (any({"Content-Length", "Transfer-Encoding", "Connection"})) {
    return "the edge frames the answer itself";
  }
  if (any({"Keep-Alive", "Upgrade", "Trailer", "TE"}) || startsWith("Proxy-")) {
    return "it belongs to the connection, which is the edge's";
  }
  if (any({"Date", "Server", "Content-Security-Policy", "Content-Security-Policy-Report-Only",
           "X-Content-Type-Options"})) {
    return "the edge sets it on every answer";
  }
  if (any({"Set-Cookie", "Set-Cookie2", "Clear-Site-Data", "Refresh", "Strict-Transport-Security",
           "Alt-Svc", "NEL", "Report-To", "Reporting-Endpoints", "Service-Worker-Allowed"}) ||
      startsWith("Access-Control-")) {
    return "it would reach what browsers keep for the edge's origin, where the dashboard runs";
  }
  return "";
}

bool isFieldValue(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7F;
  });
}

/// Reads "custom_response" ({"status","headers","body"}) within the limits of handlers.h.
store::CustomResponse parseCustomResponse(const Poco::JSON::Object& object) {
  refuseUnknownFields(object, {"status", "headers", "body"});
  store::CustomResponse response;
  response.status = static_cast<int32_t>(integerMember(object, "status", 200, 200, 299));

  if (object.has("headers")) {
    const auto headers = object.getArray("headers");
    if (!headers) throw BadRequest("custom_response headers must be an array of [name, value]");
    if (headers->size() > kMaxCustomResponseHeaders) {
      throw BadRequest("custom_response may have at most " +
                       std::to_string(kMaxCustomResponseHeaders) + " headers");
    }
    for (size_t i = 0; i < headers->size(); ++i) {
      const auto pair = headers->getArray(static_cast<unsigned>(i));
      if (!pair || pair->size() != 2 || !pair->get(0).isString() || !pair->get(1).isString()) {
        throw BadRequest("custom_response header " + std::to_string(i) +
                         " must be [name, value] with two strings");
      }
      store::Header header{pair->get(0).extract<std::string>(),
                           pair->get(1).extract<std::string>()};
      if (!isToken(header.name)) {
        throw BadRequest("custom_response header name " + jsonText(header.name) +
                         " is not an RFC 9110 token");
      }
      const std::string refusal = customHeaderRefusal(header.name);
      if (!refusal.empty()) {
        throw BadRequest("custom_response may not set " + header.name + ": " + refusal);
      }
      if (!isFieldValue(header.value)) {
        throw BadRequest("custom_response header " + header.name +
                         " has a control character in its value");
      }
      response.headers.push_back(std::move(header));
    }
  }

  response.body = stringMember(object, "body", "");
  if (response.body.size() > kMaxCustomResponseBodyBytes) {
    throw BadRequest("custom_response body must be at most " +
                     std::to_string(kMaxCustomResponseBodyBytes) + " bytes");
  }
  return response;
}

Poco::JSON::Object::Ptr customResponseJson(const store::CustomResponse& response) {
  Poco::JSON::Object::Ptr out = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  out->set("status", static_cast<Poco::Int64>(response.status));
  Poco::JSON::Array::Ptr headers = new Poco::JSON::Array;
  for (const auto& header : response.headers) {
    Poco::JSON::Array::Ptr pair = new Poco::JSON::Array;
    pair->add(header.name);
    pair->add(header.value);
    headers->add(pair);
  }
  out->set("headers", headers);
  out->set("body", response.body);
  return out;
}

void sendCustomResponse(HTTPServerResponse& resp, const store::CustomResponse& response) {
  resp.setStatusAndReason(static_cast<HTTPResponse::HTTPStatus>(response.status));

  // A field stored before the edge refused it (#4) is left out rather than sent. Without a
  // Content-Type of its own the body is text: a browser must never guess HTML from it.
  bool typed = false;
  for (const auto& header : response.headers) {
    if (!customHeaderRefusal(header.name).empty()) continue;
    typed = typed || equalsIgnoringCase(header.name, "Content-Type");
    resp.add(header.name, header.value);
  }
  if (!typed) resp.setContentType(kCustomResponseDefaultType);
  resp.setContentLength64(static_cast<Poco::Int64>(response.body.size()));
  resp.sendBuffer(response.body.data(), response.body.size());
}

// --- Handlers -------------------------------------------------------------------------------

class NotFoundHandler : public EdgeHandler {
 public:
  bool wantsBody(const HTTPServerRequest&) const override { return false; }
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    sendError(resp, 404, "not found");
  }
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
      services_.metrics->storeError();
      services_.metrics->webhookRefused(IngestRefusal::kStoreUnavailable);
      closeIfBodyUnread(req, resp);
      if (!resp.sent()) sendStoreUnavailable(resp, e);
    } catch (const BadRequest& e) {
      services_.metrics->webhookRefused(IngestRefusal::kMalformed);
      resp.setKeepAlive(false);
      if (!resp.sent()) sendError(resp, e.status(), e.what());
    }
  }

 private:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) {
    // The hook comes first: a request to nowhere is refused before its body is read. A hook of
    // a disabled (or deleted) account is nowhere too, for senders as for its members (#4).
    const auto hook = services_.store->findHook(hookId_);
    const auto account = hook ? accountOf(*hook) : std::nullopt;
    const bool barred = hook && !hook->accountId.empty() && (!account || account->disabled);
    if (!hook || expired(*hook, nowMs()) || barred) {
      services_.metrics->webhookRefused(IngestRefusal::kUnknownHook);
      closeIfBodyUnread(req, resp);
      sendError(resp, 404, "unknown hook");
      return;
    }

    // Rate limits come before the body is read: a flood costs one lookup per request.
    const bool behindProxy = services_.config != nullptr && services_.config->behindProxy;
    int64_t retryAfterS = 0;
    bool hookLimited = false;
    if (services_.limiter != nullptr &&
        !services_.limiter->admit(hookId_, clientAddress(req, behindProxy), retryAfterS,
                                  hookLimited)) {
      services_.metrics->webhookRefused(IngestRefusal::kRateLimited);
      closeIfBodyUnread(req, resp);
      resp.set("Retry-After", std::to_string(retryAfterS));
      sendError(resp, 429,
                hookLimited ? "rate limit for this hook exceeded"
                            : "rate limit for this address exceeded");
      return;
    }

    // A custom response is the pro plan's: a hook whose account moved to free keeps its
    // setting (for a move back) but answers with the default.
    const bool answersCustom =
        hook->customResponse && account && accountLimits(*account).customResponse;

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
      services_.metrics->webhookRefused(IngestRefusal::kTooLarge);
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
    // A hook without a provider may verify the Standard Webhooks way with its own secret.
    plugin::Outcome outcome =
        hook->standardWebhooks && hook->provider.empty()
            ? verifyStandardWebhooks(*hook, headers, body, context_.receivedAtMs)
            : services_.registry->verify(*hook, view);

    // A provider whose plugin is not loaded (removed, or being replaced) cannot judge the
    // request either way; the sender is asked to come back rather than told it is invalid.
    if (outcome.providerUnavailable) {
      services_.metrics->webhookRefused(IngestRefusal::kProviderUnavailable);
      static LogThrottle throttle;
      uint64_t heldBack = 0;
      if (throttle.admit(heldBack)) {
        httpLog().warning(
            "webhook not verified, provider not loaded hook=%s provider=%s not_logged=%s", hookId_,
            hook->provider, std::to_string(heldBack));
      }
      resp.set("Retry-After", "5");
      sendError(resp, 503,
                "provider " + hook->provider + " is not loaded on this edge; try again later");
      return;
    }

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
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - context_.receivedAt;
    services_.metrics->webhookStored(providerName(*hook), verdict, took.count());

    if (verdict == store::Verdict::kInvalid) {
      const std::string reason(plugin::reasonName(reasonCode));
      httpLog().information("webhook refused hook=%s provider=%s reason=%s event_id=%s", hookId_,
                            providerName(*hook), reason, std::to_string(eventId));
      sendJson(resp, 401,
               "{\"error\":\"invalid signature\",\"reason\":" + jsonText(reason) +
                   ",\"message\":" + jsonText(outcome.message) + "}");
      return;
    }

    // The store's commit listener has already handed the event to the stream hub, in commit
    // order, which is the order relays must see.
    if (httpLog().debug()) {
      httpLog().debug("webhook stored hook=%s provider=%s event_id=%s verdict=%s size=%s", hookId_,
                      providerName(*hook), std::to_string(eventId),
                      std::string(plugin::verdictName(verdict)), std::to_string(bodySize));
    }

    if (outcome.response) {
      sendBody(resp, outcome.response->status,
               outcome.response->contentType.empty() ? "text/plain" : outcome.response->contentType,
               outcome.response->body);
      return;
    }

    // The pro plan's own answer replaces the default for every stored webhook.
    if (answersCustom) {
      sendCustomResponse(resp, *hook->customResponse);
      return;
    }
    sendJson(resp, 200, "{\"ok\":true,\"id\":" + std::to_string(eventId) + "}");
  }

  // The hook's account as read at most kAccountCacheTtl ago: one store read per account and
  // second. Read before the body, so that a store that cannot answer refuses the webhook rather
  // than leaves it half answered. Nothing for an anonymous hook.
  std::optional<store::AccountRecord> accountOf(const store::HookRecord& hook) const {
    if (hook.accountId.empty()) return std::nullopt;
    return services_.accounts != nullptr ? services_.accounts->find(hook.accountId)
                                         : services_.store->findAccount(hook.accountId);
  }

  static std::string providerName(const store::HookRecord& hook) {
    if (!hook.provider.empty()) return hook.provider;
    return hook.standardWebhooks ? "standard-webhooks" : "none";
  }

  const EdgeServices& services_;
  std::string hookId_;
  std::string suffix_;
  std::string query_;
};

}  // namespace

std::string ApiHandler::hookJson(const store::HookRecord& hook, bool created,
                                 const std::string* token) const {
  const bool named = !hook.accountId.empty();
  Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
  out.set("id", hook.id);
  if (!created || named) {
    out.set("name", hook.name);
    out.set("account", hook.accountId);
  }
  out.set("ingest_url", services_.publicUrl + "/h/" + hook.id);
  if (created && token) out.set("token", *token);
  out.set("provider", hook.provider);
  out.set("tolerance_s", static_cast<Poco::Int64>(hook.toleranceS));
  Poco::JSON::Object::Ptr options = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [key, value] : hook.options) options->set(key, value);
  out.set("options", options);
  out.set("standard_webhooks", hook.standardWebhooks);
  if (hook.customResponse) {
    out.set("custom_response", customResponseJson(*hook.customResponse));
  } else {
    out.set("custom_response", Poco::Dynamic::Var());
  }
  if (created) out.set("signing_secret", hook.signingSecret);
  if (!created || !named) out.set("expires_at_ms", static_cast<Poco::Int64>(hook.expiresAtMs));
  if (!created) {
    const size_t relays = services_.hub ? services_.hub->openStreams(hook.id) : 0;
    out.set("relays", static_cast<Poco::UInt64>(relays));
    const auto newest = services_.store->listEventsBefore(hook.id, 0, 1, false);
    out.set("last_event_at_ms",
            static_cast<Poco::Int64>(newest.empty() ? 0 : newest.front().receivedAtMs));
    out.set("explain_body_excerpt", explainBodyExcerptAllowed(*services_.store, hook.id));
  }
  out.set("created_at_ms", static_cast<Poco::Int64>(hook.createdAtMs));
  std::ostringstream text;
  out.stringify(text);
  return text.str();
}

std::optional<std::optional<store::CustomResponse>> ApiHandler::customResponseMember(
    const Poco::JSON::Object& request, const store::AccountRecord* account) {
  if (!request.has("custom_response")) return std::nullopt;
  const auto value = request.get("custom_response");
  if (value.isEmpty()) return std::optional<store::CustomResponse>();
  const auto object = request.getObject("custom_response");
  if (!object) throw BadRequest("custom_response must be an object or null");
  if (account == nullptr) {
    throw PlanRefusal(planRefusalJson(customResponseRefusal(true), store::Plan::kFree));
  }
  if (!accountLimits(*account).customResponse) {
    throw PlanRefusal(planRefusalJson(customResponseRefusal(false), account->plan));
  }
  return std::optional<store::CustomResponse>(parseCustomResponse(*object));
}

namespace {

class CreateHookHandler : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    // Who asks decides the kind of hook: nobody gets an anonymous hook, a member a named one.
    const Principal& caller = principal(req);
    if (refuseBarred(caller, req, resp)) return;
    if (caller.kind == Principal::Kind::kRefused) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 401, kSignInAgain);
      return;
    }
    if (caller.kind == Principal::Kind::kHookToken) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 401,
                "hooks are created without a bearer (anonymous) or with an access token; "
                "exchange a personal access token at /api/v1/auth/token");
      return;
    }
    const bool named = caller.signedIn();
    if (!named && services_.config != nullptr && !services_.config->anonymousHooks) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 401, "sign in to create hooks on this edge");
      return;
    }

    const auto request = readJson(req);
    refuseUnknownFields(*request, {"provider", "secret", "secret_base64", "tolerance_s", "options",
                                   "name", "standard_webhooks", "custom_response"});

    store::HookRecord hook;
    if (named) {
      hook.accountId = caller.account.id;
      if (!request->has("name")) throw BadRequest("name is required for a hook of an account");
      hook.name = stringMember(*request, "name", "");
      if (!isRecordName(hook.name)) {
        throw BadRequest("name must be 1.." + std::to_string(kMaxRecordNameBytes) +
                         " of a-z 0-9 - _");
      }
    } else if (request->has("name")) {
      throw BadRequest("only hooks of an account have a name; sign in to create a named hook");
    }

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
    hook.standardWebhooks = booleanMember(*request, "standard_webhooks", false);
    if (hook.standardWebhooks && !hook.provider.empty()) {
      throw BadRequest("standard_webhooks is for hooks without a provider; the provider " +
                       hook.provider + " verifies this hook");
    }
    try {
      if (auto custom = customResponseMember(*request, named ? &caller.account : nullptr)) {
        hook.customResponse = std::move(*custom);
      }
    } catch (const PlanRefusal& e) {
      sendJson(resp, 403, e.what());
      return;
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

    hook.id = newHookId();
    hook.createdAtMs = nowMs();
    hook.signingSecret = newSigningSecret();
    std::string token;
    if (named) {
      // The store counts and inserts in one step, so two edges cannot pass the limit together.
      const auto limit = accountLimits(caller.account).namedHooks;
      try {
        services_.store->createHookWithin(hook, limit.value_or(std::numeric_limits<size_t>::max()));
      } catch (const store::LimitError&) {
        sendJson(resp, 403, planRefusalJson(namedHookRefusal(), caller.account.plan));
        return;
      } catch (const store::ConflictError&) {
        sendError(resp, 409, "a hook named " + hook.name + " exists");
        return;
      }
    } else {
      token = newRelayToken();
      hook.tokenHash = sha256Hex(token);
      const auto ttl =
          services_.config != nullptr ? services_.config->anonymousTtl : std::chrono::seconds(3600);
      hook.expiresAtMs =
          hook.createdAtMs + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count();
      services_.store->createHook(hook);
    }

    audit(req, "hook.create", hook.accountId, hook.id, 0, named ? "name=" + hook.name : "");
    httpLog().information("hook created hook=%s provider=%s account=%s", hook.id,
                          hook.provider.empty() ? std::string("none") : hook.provider,
                          named ? hook.accountId : std::string("none"));
    sendJson(resp, 201, hookJson(hook, true, named ? nullptr : &token));
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

/// GET /api/v1/hooks[?name=N]: the signed-in account's hooks.
class ListHooksHandler : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    const Principal& caller = principal(req);
    if (refuseBarred(caller, req, resp)) return;
    if (!caller.signedIn()) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 401, kSignInAgain);
      return;
    }

    std::optional<std::string> name;
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key == "name") name = value;
    }
    std::vector<store::HookRecord> hooks;
    if (name) {
      if (auto hook = services_.store->findHookByName(caller.account.id, *name)) {
        hooks.push_back(std::move(*hook));
      }
    } else {
      hooks = services_.store->listHooks(caller.account.id);
    }

    std::string out = "{\"hooks\":[";
    for (size_t i = 0; i < hooks.size(); ++i) {
      if (i > 0) out += ',';
      out += hookJson(hooks[i], false);
    }
    out += "]}";
    closeIfBodyUnread(req, resp);
    sendJson(resp, 200, out);
  }
};

class GetHookHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& /*req*/,
                  HTTPServerResponse& resp) override {
    sendJson(resp, 200, hookJson(hook, false));
  }
};

/// PATCH /api/v1/hooks/<id>: standard_webhooks and custom_response.
class PatchHookHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& found, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const auto request = readJson(req);
    refuseUnknownFields(*request, {"standard_webhooks", "custom_response", "explain_body_excerpt"});

    store::HookRecord hook = found;
    std::string detail;
    if (request->has("explain_body_excerpt")) {
      const bool allowed = booleanMember(*request, "explain_body_excerpt", false);
      setExplainBodyExcerpt(*services_.store, hook.id, allowed);
      detail = std::string("explain_body_excerpt=") + (allowed ? "true" : "false");
    }
    if (request->has("standard_webhooks")) {
      hook.standardWebhooks = booleanMember(*request, "standard_webhooks", false);
      if (hook.standardWebhooks && !hook.provider.empty()) {
        throw BadRequest("standard_webhooks is for hooks without a provider; the provider " +
                         hook.provider + " verifies this hook");
      }
      if (!detail.empty()) detail += ' ';
      detail += std::string("standard_webhooks=") + (hook.standardWebhooks ? "true" : "false");
    }
    try {
      if (auto custom = customResponseMember(*request, accountOf(req))) {
        hook.customResponse = std::move(*custom);
        if (!detail.empty()) detail += ' ';
        detail += hook.customResponse ? "custom_response=set" : "custom_response=cleared";
      }
    } catch (const PlanRefusal& e) {
      sendJson(resp, 403, e.what());
      return;
    }

    if (!services_.store->updateHook(hook)) {
      sendError(resp, 404, kUnknownHook);
      return;
    }
    audit(req, "hook.update", hook.accountId, hook.id, 0, detail);
    sendJson(resp, 200, hookJson(hook, false));
  }
};

/// POST /api/v1/hooks/<id>/signing-secret: a new secret; the old one verifies for 24 h more.
class RotateSecretHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& found, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    store::HookRecord hook = found;
    const int64_t now = nowMs();
    hook.previousSigningSecret = hook.signingSecret;
    hook.previousValidUntilMs = now + kPreviousSecretValidMs;
    hook.signingSecret = newSigningSecret();
    if (!services_.store->updateHook(hook)) {
      closeIfBodyUnread(req, resp);
      sendError(resp, 404, kUnknownHook);
      return;
    }
    audit(req, "hook.rotate_secret", hook.accountId, hook.id, 0, "");
    httpLog().information("signing secret rotated hook=%s", hook.id);

    Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("signing_secret", hook.signingSecret);
    out.set("previous_valid_until_ms", static_cast<Poco::Int64>(hook.previousValidUntilMs));
    std::ostringstream text;
    out.stringify(text);
    closeIfBodyUnread(req, resp);
    sendJson(resp, 200, text.str());
  }
};

class ListEventsHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    int64_t after = 0;
    int64_t before = 0;
    bool newestFirst = false;
    bool orderGiven = false;
    size_t limit = kDefaultEventsPage;
    std::optional<std::string> queryText;
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key == "after" || key == "before") {
        const auto parsed = parseId(value);
        if (!parsed) throw BadRequest(key + " must be a non-negative integer");
        (key == "after" ? after : before) = *parsed;
      } else if (key == "limit") {
        const auto parsed = parseId(value);
        if (!parsed || *parsed < 1 || *parsed > static_cast<int64_t>(kMaxEventsPage)) {
          throw BadRequest("limit must be within 1.." + std::to_string(kMaxEventsPage));
        }
        limit = static_cast<size_t>(*parsed);
      } else if (key == "order") {
        if (value != "asc" && value != "desc") throw BadRequest("order must be asc or desc");
        newestFirst = value == "desc";
        orderGiven = true;
      } else if (key == "q") {
        queryText = value;
      }
    }
    if (queryText) {
      // A search reads newest first whatever the order, so only the other order is refused.
      if (after != 0 || (orderGiven && !newestFirst)) {
        throw BadRequest("a search pages newest first: use before, not after or order=asc");
      }
      return search(hook, req, resp, *queryText, before, limit);
    }
    if (newestFirst && after != 0) throw BadRequest("order=desc pages with before, not after");
    if (!newestFirst && before != 0) throw BadRequest("before needs order=desc");

    // Oldest first continues after the last id; newest first continues below it.
    const auto events = newestFirst
                            ? services_.store->listEventsBefore(hookId_, before, limit, false)
                            : services_.store->listEvents(hookId_, after, limit, false, false);
    std::string out = "{\"events\":[";
    for (size_t i = 0; i < events.size(); ++i) {
      if (i > 0) out += ',';
      out += withLatestDeliveries(events[i], services_.store->listDeliveries(events[i].id), false);
    }
    if (newestFirst) {
      // 0 says the list is at its end: there is nothing below the last id.
      const bool more = events.size() == limit;
      out += "],\"next_before\":" + std::to_string(more ? events.back().id : 0) + "}";
    } else {
      out += "],\"next_after\":" + std::to_string(events.empty() ? after : events.back().id) + "}";
    }

    // Summaries carry contents (raw query, path, event type): the listing is on the record
    // before they leave, once per request rather than once per event.
    audit(req, "event.list", hook.accountId, hook.id, 0,
          std::string(newestFirst ? "before=" + std::to_string(before)
                                  : "after=" + std::to_string(after)) +
              " limit=" + std::to_string(limit) + " count=" + std::to_string(events.size()));
    sendJson(resp, 200, out);
  }

 private:
  // ?q=: the events that match, newest first (docs/search.md). One request reads at most
  // kMaxSearchScan events, decrypting what the query needs, and says where to go on.
  void search(const store::HookRecord& hook, HTTPServerRequest& req, HTTPServerResponse& resp,
              const std::string& text, int64_t before, size_t limit) {
    const auto query = parseQueryOrAnswer(text, resp);
    if (!query) return;

    SearchScope scope;
    scope.cursor = before;
    scope.limit = limit;
    const SearchPage page = searchEvents(*services_.store, hookId_, *query, scope);

    // Searching reads contents, so it is on the record before anything leaves; the query's
    // values are not (they quote what bodies hold), only what it looks at.
    audit(req, "event.search", hook.accountId, hook.id, 0,
          queryAuditDetail(*query, text.size()) + " before=" + std::to_string(before) +
              " count=" + std::to_string(page.events.size()));
    std::string out = "{\"events\":[";
    for (size_t i = 0; i < page.events.size(); ++i) {
      if (i > 0) out += ',';
      out += withLatestDeliveries(page.events[i], page.deliveries[i], false);
    }
    out += "],\"next_before\":" + std::to_string(page.next) +
           ",\"scanned\":" + std::to_string(page.scanned) + "}";
    sendJson(resp, 200, out);
  }
};

/// GET /api/v1/hooks/<id>/events/count.
class CountEventsHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& /*req*/,
                  HTTPServerResponse& resp) override {
    sendJson(resp, 200,
             "{\"count\":" + std::to_string(services_.store->countEvents(hookId_)) + "}");
  }
};

/// GET /api/v1/hooks/<id>/activity?minutes=N: events and deliveries per minute, for charts.
class ActivityHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& /*hook*/, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    int64_t minutes = kDefaultActivityMinutes;
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key != "minutes") continue;
      const auto parsed = parseId(value);
      if (!parsed || *parsed < 1 || *parsed > kMaxActivityMinutes) {
        throw BadRequest("minutes must be within 1.." + std::to_string(kMaxActivityMinutes));
      }
      minutes = *parsed;
    }

    // Whole minutes, the last one being the current one.
    constexpr int64_t kMinuteMs = 60000;
    const int64_t from = (nowMs() / kMinuteMs - (minutes - 1)) * kMinuteMs;
    const auto buckets =
        services_.store->activity(hookId_, from, kMinuteMs, static_cast<size_t>(minutes));
    Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
    for (const auto& bucket : buckets) {
      Poco::JSON::Object::Ptr entry = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      entry->set("at_ms", static_cast<Poco::Int64>(bucket.atMs));
      entry->set("valid", static_cast<Poco::Int64>(bucket.valid));
      entry->set("invalid", static_cast<Poco::Int64>(bucket.invalid));
      entry->set("unsigned", static_cast<Poco::Int64>(bucket.unsigned_));
      entry->set("delivered", static_cast<Poco::Int64>(bucket.delivered));
      entry->set("failed", static_cast<Poco::Int64>(bucket.failed));
      list->add(entry);
    }
    Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("bucket_ms", kMinuteMs);
    out.set("buckets", list);
    std::ostringstream text;
    out.stringify(text);
    sendJson(resp, 200, text.str());
  }
};

class GetEventHandler : public HookApiHandler {
 public:
  GetEventHandler(const EdgeServices& services, std::string hookId, int64_t eventId, bool rawBody)
      : HookApiHandler(services, std::move(hookId), eventId), rawBody_(rawBody) {}

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const auto event = readableEvent(resp);
    if (!event) return;

    // Every read of an event's contents is on the record before the contents leave.
    audit(req, "event.read", hook.accountId, hook.id, event->id, rawBody_ ? "body" : "detail");
    if (rawBody_) {
      sendBody(resp, 200, "application/octet-stream", event->body);
      return;
    }
    // The detail carries the event's replays and what the rules make of it (docs/diagnosis.md).
    const auto deliveries = services_.store->listDeliveries(event->id);
    std::string out = withLatestDeliveries(*event, deliveries, true);
    std::string replays = "[";
    for (int64_t id : services_.store->listReplayIds(hookId_, event->id, kMaxListedReplayIds)) {
      if (replays.size() > 1) replays += ',';
      replays += std::to_string(id);
    }
    out.insert(out.size() - 1, ",\"replays\":" + replays + "]");
    const auto findings = diagnoseEvent(*services_.store, hook, *event, deliveries);
    out.insert(out.size() - 1, ",\"diagnosis\":" + diagnosis::findingsJson(findings));
    sendJson(resp, 200, out);
  }

 private:
  bool rawBody_;
};

// The members of one delivery report (docs/protocol.md); a report in bulk also names its "event".
const std::vector<std::string> kDeliveryFields = {
    "relay",        "status",        "duration_ms",      "error",   "phase", "timeout_ms",
    "target_https", "started_at_ms", "response_excerpt", "location"};

// Longest timeout_ms a report may give: a day, far past the relay's own limit.
constexpr int64_t kMaxReportedTimeoutMs = INT64_C(86400000);

// Reads one delivery report of event `eventId`, whose members may be `known` only.
store::DeliveryRecord parseDelivery(const Poco::JSON::Object& report, int64_t eventId,
                                    const std::vector<std::string>& known = kDeliveryFields) {
  refuseUnknownFields(report, known);
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

  // What the relay saw of the local server (since schema 4); absent ones stay unknown.
  const auto phase = phaseFromName(stringMember(report, "phase", "unknown"));
  if (!phase) throw BadRequest("phase must be connecting, sending, receiving or unknown");
  delivery.phase = *phase;
  delivery.timeoutMs = integerMember(report, "timeout_ms", 0, 0, kMaxReportedTimeoutMs);
  delivery.targetHttps = booleanMember(report, "target_https", false);
  delivery.startedAtMs = integerMember(report, "started_at_ms", 0, 0, INT64_MAX);
  delivery.responseExcerpt = stringMember(report, "response_excerpt", "");
  if (delivery.responseExcerpt.size() > store::kMaxResponseExcerptBytes) {
    throw BadRequest("response_excerpt must be at most " +
                     std::to_string(store::kMaxResponseExcerptBytes) + " bytes");
  }
  delivery.location = stringMember(report, "location", "");
  if (delivery.location.size() > store::kMaxLocationBytes) {
    throw BadRequest("location must be at most " + std::to_string(store::kMaxLocationBytes) +
                     " bytes");
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
    services_.metrics->deliveryReported(delivery.status);
    if (services_.watchHub != nullptr)
      services_.watchHub->postFrame(hookId_, deliveryFrame(delivery));
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
    std::vector<std::string> known = kDeliveryFields;
    known.insert(known.begin(), "event");
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
      try {
        deliveries.push_back(parseDelivery(*report, eventId, known));
      } catch (const BadRequest& e) {
        throw BadRequest("delivery " + std::to_string(i) + ": " + e.what(), e.status());
      }
    }
    services_.store->addDeliveries(deliveries);
    for (const auto& delivery : deliveries) {
      services_.metrics->deliveryReported(delivery.status);
      if (services_.watchHub != nullptr) {
        services_.watchHub->postFrame(hookId_, deliveryFrame(delivery));
      }
    }
    sendJson(resp, 201, "{\"stored\":" + std::to_string(deliveries.size()) + "}");
  }
};

/// POST .../events/<n>/replay: a copy of the event, or with a JSON body an edited copy.
class ReplayHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    // An edit is read first, with room for a body as large as ingest takes in base64.
    Poco::JSON::Object::Ptr edit;
    if (hasBody(req)) {
      edit = readJson(req, kMaxApiBodyBytes + (services_.maxBodyBytes + 2) / 3 * 4);
    }

    // A copy of contents that could not be read would be a different request.
    auto event = readableEvent(resp);
    if (!event) return;

    if (edit) applyReplayEdit(*edit, services_.maxBodyBytes, *event);
    store::EventRecord copy = replayCopyOf(std::move(*event), nowMs());
    copy.id = services_.store->appendEvent(copy);
    audit(req, "event.replay", hook.accountId, hook.id, copy.replayOf,
          "replay_id=" + std::to_string(copy.id) + (edit ? " modified" : ""));
    httpLog().information("event replayed hook=%s event_id=%s replay_of=%s modified=%s", hookId_,
                          std::to_string(copy.id), std::to_string(copy.replayOf),
                          std::string(edit ? "true" : "false"));
    std::string answer = withLatestDeliveries(copy, {}, false);
    if (edit) answer.insert(answer.size() - 1, ",\"warning\":" + jsonText(kEditedReplayWarning));
    sendJson(resp, 201, answer);
  }
};

/// GET .../stream: answers the head, then hands the socket to the hub and frees the thread.
// Where a stream resumes: Last-Event-ID, else ?last_event_id=, else nothing.
std::optional<int64_t> resumeAfter(const HTTPServerRequest& req) {
  std::string resume = req.get("Last-Event-ID", "");
  if (resume.empty()) {
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key == "last_event_id") resume = value;
    }
  }
  if (resume.empty()) return std::nullopt;
  const auto parsed = parseId(resume);
  if (!parsed) throw BadRequest("Last-Event-ID must be a non-negative integer");
  return parsed;
}

// Sends the head of an event stream and hands its connection over: no length and no chunking,
// the stream is the rest of the connection.
Poco::Net::StreamSocket startEventStream(HTTPServerRequest& req, HTTPServerResponse& resp) {
  resp.setStatus(HTTPResponse::HTTP_OK);
  resp.setContentType("text/event-stream");
  resp.set("Cache-Control", "no-cache");
  resp.set("X-Accel-Buffering", "no");
  resp.setChunkedTransferEncoding(false);
  resp.setKeepAlive(false);
  resp.send().flush();
  return static_cast<Poco::Net::HTTPServerRequestImpl&>(req).detachSocket();
}

class StreamHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const int64_t lastEventId = resumeAfter(req).value_or(0);

    // The relay names itself so that a reconnect is known as the same relay.
    StreamHub::StreamTags tags;
    tags.relayId = req.get(kRelayHeader, "");
    if (req.has(kRelayHeader) && !isRelayId(tags.relayId)) {
      throw BadRequest(std::string(kRelayHeader) + " must be 1.." +
                       std::to_string(kMaxRelayHeaderBytes) + " of A-Z a-z 0-9 - _");
    }
    if (tags.relayId.empty()) tags.relayId = "edge-" + randomBase32(26);
    tags.accountId = hook.accountId;
    const Principal& caller = principal(req);
    if (caller.signedIn()) {
      tags.tokenId = caller.tokenId;
      tags.owner = caller.member.owner;
    }
    const int64_t now = nowMs();
    tags.openedAtMs = now;
    if (!hook.accountId.empty()) tags.leaseHolder = newLeaseHolder(tags.relayId);

    // A named hook of a plan with a live-relay limit takes the hook's lease; it is renewed
    // while the stream is open and given back when it closes (HookLifecycle). The same relay
    // connecting again takes it over from its older stream, which then ends.
    const store::AccountRecord* account = accountOf(req);
    if (account != nullptr && accountLimits(*account).relaysPerHook) {
      if (!services_.store->takeOverRelay(hook.id, tags.leaseHolder, relayLeasePrefix(tags.relayId),
                                          now, now + kRelayLeaseMs)) {
        sendJson(resp, 409,
                 planRefusalJson(liveRelayRefusal(connectedSince(hook.id)), account->plan));
        return;
      }
      tags.leased = true;
    }

    try {
      // An anonymous hook lives on while a relay is connected.
      if (hook.accountId.empty() && hook.expiresAtMs > 0 && services_.config != nullptr) {
        services_.store->extendHook(hook.id,
                                    now + std::chrono::duration_cast<std::chrono::milliseconds>(
                                              services_.config->anonymousTtl)
                                              .count());
      }
      audit(req, "stream.open", hook.accountId, hook.id, 0,
            "last_event_id=" + std::to_string(lastEventId) + " relay=" + tags.relayId);
    } catch (const store::StoreError&) {
      // No stream will hold the lease: give it back for the relay's next try.
      if (tags.leased) releaseQuietly(hook.id, tags.leaseHolder);
      throw;
    }

    // This stream is the hook's one live relay now: any other of it here ends, told why.
    // Another edge's ends when that edge next renews its lease.
    if (tags.leased) {
      std::vector<uint64_t> others;
      for (const auto& stream : services_.hub->openStreamList()) {
        if (stream.hookId == hook.id) others.push_back(stream.id);
      }
      services_.hub->closeStreams(others, relayReplacedFrame());
    }

    auto socket = startEventStream(req, resp);
    const std::string relayId = tags.relayId;
    services_.hub->attach(std::move(socket), hookId_, lastEventId, std::move(tags));
    if (httpLog().debug()) {
      httpLog().debug("stream opened hook=%s last_event_id=%s relay=%s", hookId_,
                      std::to_string(lastEventId), relayId);
    }
  }

 private:
  // When the stream holding the lease opened, if it is on this edge; "" otherwise.
  std::string connectedSince(const std::string& hookId) const {
    for (const auto& stream : services_.hub->openStreamList()) {
      if (stream.hookId == hookId && stream.tags.leased) {
        return Poco::DateTimeFormatter::format(Poco::Timestamp(stream.tags.openedAtMs * 1000),
                                               Poco::DateTimeFormat::ISO8601_FORMAT);
      }
    }
    return "";
  }

  void releaseQuietly(const std::string& hookId, const std::string& relayId) {
    try {
      services_.store->releaseRelay(hookId, relayId);
    } catch (const store::StoreError&) {
      // The lease ends on its own within kRelayLeaseMs.
    }
  }
};

/// GET /api/v1/hooks/<id>/watch: a dashboard's live view of a hook: the summary of every new
/// event, whatever its verdict, and every delivery report. It holds no relay lease and is not
/// counted among the hook's relays; it closes with the token it was opened with.
class WatchHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    if (services_.watchHub == nullptr) {
      sendError(resp, 404, "not found");
      return;
    }

    // Without a position the view starts at the newest event: the page has read the list.
    std::optional<int64_t> lastEventId = resumeAfter(req);
    if (!lastEventId) {
      const auto newest = services_.store->listEventsBefore(hook.id, 0, 1, false);
      lastEventId = newest.empty() ? 0 : newest.front().id;
    }

    StreamHub::StreamTags tags;
    tags.relayId = "watch-" + randomBase32(16);
    tags.accountId = hook.accountId;
    const Principal& caller = principal(req);
    if (caller.signedIn()) {
      tags.tokenId = caller.tokenId;
      tags.owner = caller.member.owner;
    }
    audit(req, "stream.open", hook.accountId, hook.id, 0,
          "watch last_event_id=" + std::to_string(*lastEventId));

    auto socket = startEventStream(req, resp);
    services_.watchHub->attach(std::move(socket), hookId_, *lastEventId, std::move(tags));
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

void MethodNotAllowedHandler::handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) {
  closeIfBodyUnread(req, resp);
  resp.set("Allow", allow_);
  sendError(resp, 405, "method not allowed");
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Router::Router(const EdgeServices& services) : services_(services) {}

void Router::countMalformed() const {
  if (services_.metrics != nullptr) services_.metrics->webhookRefused(IngestRefusal::kMalformed);
}

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

  if (EdgeHandler* operations = routeOperations(services_, method, path)) return operations;
  if (EdgeHandler* dashboardRoute = routeDashboard(method, path)) return dashboardRoute;

  const auto parts = segments(path);
  if (!parts) return new NotFoundHandler;
  if (EdgeHandler* accountRoute = routeAccountApi(services_, method, *parts)) return accountRoute;
  if (EdgeHandler* diagnosisRoute = routeDiagnosisApi(services_, method, *parts)) {
    return diagnosisRoute;
  }
  if (parts->size() < 3 || (*parts)[0] != "api" || (*parts)[1] != "v1" || (*parts)[2] != "hooks") {
    return new NotFoundHandler;
  }
  const auto& p = *parts;
  const size_t n = p.size();
  auto allow = [&method](const char* expected) { return method == expected; };

  if (n == 3) {
    if (allow("GET")) return new ListHooksHandler(services_);
    if (allow("POST")) return new CreateHookHandler(services_);
    return new MethodNotAllowedHandler("GET, POST");
  }
  const std::string& hookId = p[3];
  if (n == 4) {
    if (allow("GET")) return new GetHookHandler(services_, hookId);
    if (allow("PATCH")) return new PatchHookHandler(services_, hookId);
    return new MethodNotAllowedHandler("GET, PATCH");
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
  if (n == 5 && p[4] == "signing-secret") {
    if (!allow("POST")) return new MethodNotAllowedHandler("POST");
    return new RotateSecretHandler(services_, hookId);
  }
  if (n == 5 && p[4] == "watch") {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new WatchHandler(services_, hookId);
  }
  if (n == 5 && p[4] == "activity") {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new ActivityHandler(services_, hookId);
  }
  if (n == 6 && p[4] == "events" && p[5] == "count") {
    if (!allow("GET")) return new MethodNotAllowedHandler("GET");
    return new CountEventsHandler(services_, hookId);
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
