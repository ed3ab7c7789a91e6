// core/edge/api_handler.cpp: the frame of every REST route: errors, caller, audit, scoping.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/api_handler.h"

#include "core/edge/api_support.h"
#include "core/edge/config.h"
#include "core/edge/metrics.h"
#include "core/edge/rate_limit.h"
#include "core/edge/secrets.h"

namespace anm::edge {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

bool expired(const store::HookRecord& hook, int64_t now) {
  return hook.expiresAtMs > 0 && hook.expiresAtMs < now;
}

void ApiHandler::handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) {
  try {
    handle(req, resp);
  } catch (...) {
    answerRouteFailure(services_, req, resp, bodyRead_);
  }
}

const Principal& ApiHandler::principal(const HTTPServerRequest& req) {
  if (principal_) return *principal_;
  if (services_.auth != nullptr) {
    principal_ = services_.auth->authenticateRequest(req, nowMs());
    return *principal_;
  }

  // Without an authenticator (an edge part run alone) a bearer can only be a relay token.
  refuseRepeatedCredentials(req);
  Principal none;
  if (const auto bearer = bearerToken(req.get("Authorization", ""))) {
    none.kind = Principal::Kind::kHookToken;
    none.bearer = std::string(*bearer);
  }
  principal_ = std::move(none);
  return *principal_;
}

std::string ApiHandler::remote(const HTTPServerRequest& req) const {
  const bool behindProxy = services_.config != nullptr && services_.config->behindProxy;
  return clientAddress(req, behindProxy);
}

bool ApiHandler::refuseBarred(const Principal& caller, HTTPServerRequest& req,
                              HTTPServerResponse& resp) {
  if (caller.kind != Principal::Kind::kBarred) return false;
  closeIfBodyUnread(req, resp);
  sendJson(resp, 403, caller.refusal);
  return true;
}

void ApiHandler::audit(const HTTPServerRequest& req, std::string action, std::string accountId,
                       std::string hookId, int64_t eventId, std::string detail) {
  recordAudit(services_, principal(req), remote(req), std::move(action), std::move(accountId),
              std::move(hookId), eventId, std::move(detail));
}

std::optional<store::HookRecord> ApiHandler::authorize(const std::string& hookId,
                                                       HTTPServerRequest& req,
                                                       HTTPServerResponse& resp) {
  const Principal& caller = principal(req);
  auto hook = services_.store->findHook(hookId);
  if (hook && expired(*hook, nowMs())) hook.reset();

  bool allowed = false;
  if (caller.kind == Principal::Kind::kHookToken) {
    // Hash even when there is nothing to match so that every refusal costs the same.
    const bool anonymous = hook && hook->accountId.empty() && !hook->tokenHash.empty();
    const bool match =
        tokenMatches(caller.bearer, anonymous ? hook->tokenHash : std::string(64, '0'));
    allowed = anonymous && match;
  } else if (caller.kind == Principal::Kind::kMember) {
    allowed = hook && !hook->accountId.empty() && hook->accountId == caller.account.id;
  }
  if (allowed) return hook;
  closeIfBodyUnread(req, resp);
  sendError(resp, 404, kUnknownHook);
  return std::nullopt;
}

Poco::JSON::Object::Ptr ApiHandler::readJson(HTTPServerRequest& req, size_t limit) {
  std::string body;
  const BodyRead read = readBody(req, limit, body);
  if (read == BodyRead::kTooLarge) {
    throw BadRequest("body exceeds the limit of " + std::to_string(limit) + " bytes", 413);
  }
  bodyRead_ = true;
  if (read == BodyRead::kShort) throw BadRequest("the body ended before its content-length");
  return parseJsonObject(body);
}

bool ApiHandler::hookHasEvent(const std::string& hookId, int64_t eventId) {
  if (eventId <= 0) return false;
  const auto events = services_.store->listEvents(hookId, eventId - 1, 1, false, false);
  return !events.empty() && events.front().id == eventId;
}

void HookApiHandler::handle(HTTPServerRequest& req, HTTPServerResponse& resp) {
  const auto hook = authorize(hookId_, req, resp);
  if (!hook) return;
  handleHook(*hook, req, resp);
}

const store::AccountRecord* HookApiHandler::accountOf(const HTTPServerRequest& req) {
  const Principal& caller = principal(req);
  return caller.signedIn() ? &caller.account : nullptr;
}

std::optional<store::EventRecord> HookApiHandler::readableEvent(HTTPServerResponse& resp) {
  auto event = services_.store->getEvent(hookId_, eventId_);
  if (!event) {
    sendError(resp, 404, "unknown event");
    return std::nullopt;
  }
  if (!event->integrityError.empty()) {
    sendError(resp, 500,
              "event " + std::to_string(event->id) + " cannot be read: " + event->integrityError);
    return std::nullopt;
  }
  return event;
}

}  // namespace anm::edge
