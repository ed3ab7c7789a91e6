// core/edge/api_handler.h: the frame every REST route of the edge is built in: error mapping,
// JSON bodies, who the caller is, the audit log, and the scoping of hook routes.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/edge/auth.h"
#include "core/edge/handlers.h"

namespace anm::edge {

/// The one refusal of every hook route: an unknown hook, a hook of someone else and a hook that
/// expired all look the same, so that nobody learns which hooks exist.
inline constexpr std::string_view kUnknownHook = "unknown hook";
inline constexpr std::string_view kSignInAgain = "access token expired or invalid; sign in again";

/// An anonymous hook whose time ran out is gone, whether or not it was deleted yet.
bool expired(const store::HookRecord& hook, int64_t now);

/// Common frame of the REST API. A store failure answers 503, a BadRequest its status and
/// message, an AuthError its status; nothing else is caught.
class ApiHandler : public EdgeHandler {
 public:
  explicit ApiHandler(const EdgeServices& services) : services_(services) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override;

 protected:
  virtual void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) = 0;

  /// Who the request acts for, worked out once: the bearer (or the session cookie) as a JWT,
  /// fully checked with the store, or as a value that may be a hook's relay token.
  const Principal& principal(const Poco::Net::HTTPServerRequest& req);

  /// The client's address, for audit entries: the socket's peer, or behind a proxy the last
  /// X-Forwarded-For entry.
  std::string remote(const Poco::Net::HTTPServerRequest& req) const;

  /// Answers 403 with the reason, and returns true, for a valid access token that may not be
  /// used now (a disabled account, a member the plan does not allow). Hook routes do not call
  /// it: they answer such a token with the unknown-hook 404, like every token that fails a
  /// check.
  bool refuseBarred(const Principal& caller, Poco::Net::HTTPServerRequest& req,
                    Poco::Net::HTTPServerResponse& resp);

  /// Writes the audit entry before the answer; a StoreError from it turns the request into a
  /// 503 that gives away nothing.
  void audit(const Poco::Net::HTTPServerRequest& req, std::string action, std::string accountId,
             std::string hookId, int64_t eventId, std::string detail);

  /// The hook when the caller may use it (docs/accounts.md, "Scoping"): its relay token for an
  /// anonymous hook, an access token of its account for a named one. Otherwise answers 404 and
  /// returns nothing, the answer an unknown or expired hook gets too.
  std::optional<store::HookRecord> authorize(const std::string& hookId,
                                             Poco::Net::HTTPServerRequest& req,
                                             Poco::Net::HTTPServerResponse& resp);

  /// The request's body as a JSON object of at most `limit` bytes (413 beyond); "" is an empty
  /// object.
  Poco::JSON::Object::Ptr readJson(Poco::Net::HTTPServerRequest& req,
                                   size_t limit = kMaxApiBodyBytes);

  /// Does the hook own the event? Asks for one summary without its body.
  bool hookHasEvent(const std::string& hookId, int64_t eventId);

  /// The public form of a hook (docs/protocol.md). `created` is the answer of a create: it adds
  /// the relay token of an anonymous hook and the signing secret, the only times they are
  /// shown; otherwise the form adds what only a view needs (open relays on this edge).
  std::string hookJson(const store::HookRecord& hook, bool created,
                       const std::string* token = nullptr) const;

  /// The custom_response member of a create or PATCH: nothing to change when absent, a reset
  /// for null, and for an object the response, if the hook's plan allows one (403 otherwise).
  std::optional<std::optional<store::CustomResponse>> customResponseMember(
      const Poco::JSON::Object& request, const store::AccountRecord* account);

  /// A refusal whose body is already JSON (a plan limit), answered 403.
  class PlanRefusal : public std::runtime_error {
   public:
    explicit PlanRefusal(const std::string& json) : std::runtime_error(json) {}
  };

  const EdgeServices& services_;
  bool bodyRead_ = false;
  std::optional<Principal> principal_;
};

/// An API route under /api/v1/hooks/<id>: it runs only for a caller the hook belongs to; any
/// other request gets the same 404 as an unknown hook.
class HookApiHandler : public ApiHandler {
 public:
  HookApiHandler(const EdgeServices& services, std::string hookId, int64_t eventId = 0)
      : ApiHandler(services), hookId_(std::move(hookId)), eventId_(eventId) {}

 protected:
  virtual void handleHook(const store::HookRecord& hook, Poco::Net::HTTPServerRequest& req,
                          Poco::Net::HTTPServerResponse& resp) = 0;

  void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) final;

  /// The account a named hook's caller acts for (authorize made sure it owns the hook), or
  /// null for an anonymous hook.
  const store::AccountRecord* accountOf(const Poco::Net::HTTPServerRequest& req);

  /// The route's event (eventId_) with its contents, or nothing once the answer is sent: 404
  /// when the hook has no such event, 500 when its contents failed their integrity check, so
  /// that empty contents are never handed out as if they were the event's.
  std::optional<store::EventRecord> readableEvent(Poco::Net::HTTPServerResponse& resp);

  const std::string hookId_;
  const int64_t eventId_;  ///< 0 on routes without an event
};

}  // namespace anm::edge
