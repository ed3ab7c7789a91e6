// core/edge/account_routes.cpp: the REST routes of accounts: sign-in, members, tokens, audit log.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/account_routes.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/URI.h>

#include <optional>
#include <sstream>
#include <utility>

#include "core/edge/api_support.h"
#include "core/edge/auth.h"
#include "core/edge/config.h"
#include "core/edge/metrics.h"
#include "core/edge/plans.h"
#include "core/edge/rate_limit.h"
#include "core/edge/secrets.h"
#include "core/edge/stream_hub.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;
using JsonObject = Poco::JSON::Object;

constexpr char kSignInRefusal[] = "access token expired or invalid; sign in again";
constexpr char kInitialTokenName[] = "initial";

std::string stringify(const JsonObject& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

JsonObject::Ptr orderedObject() { return new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER); }

Poco::Dynamic::Var limitValue(const std::optional<size_t>& limit) {
  if (!limit) return Poco::Dynamic::Var();
  return static_cast<Poco::UInt64>(*limit);
}

JsonObject::Ptr memberJson(const store::MemberRecord& member, bool withCreated) {
  auto out = orderedObject();
  out->set("id", member.id);
  out->set("name", member.name);
  out->set("owner", member.owner);
  if (withCreated) out->set("created_at_ms", static_cast<Poco::Int64>(member.createdAtMs));
  return out;
}

JsonObject::Ptr tokenJson(const store::TokenRecord& token) {
  auto out = orderedObject();
  out->set("id", token.id);
  out->set("name", token.name);
  out->set("member", token.memberId);
  out->set("created_at_ms", static_cast<Poco::Int64>(token.createdAtMs));
  out->set("last_used_at_ms", static_cast<Poco::Int64>(token.lastUsedAtMs));
  out->set("revoked_at_ms", static_cast<Poco::Int64>(token.revokedAtMs));
  return out;
}

/// What a sign-in answers: when the access token expires, the account and the member; with the
/// token itself only where it is handed to the client (not for a cookie session).
JsonObject issuedJson(const Authenticator::Issued& issued, int64_t now, bool withToken) {
  auto account = orderedObject();
  account->set("id", issued.account.id);
  account->set("name", issued.account.name);
  account->set("plan", planName(issued.account.plan));
  JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
  if (withToken) {
    out.set("access_token", issued.jwt);
    out.set("token_type", "Bearer");
  }
  out.set("expires_in", static_cast<Poco::Int64>((issued.expiresAtMs - now / 1000 * 1000) / 1000));
  out.set("expires_at_ms", static_cast<Poco::Int64>(issued.expiresAtMs));
  out.set("account", account);
  out.set("member", memberJson(issued.member, false));
  return out;
}

bool isPrintableAscii(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/// Common frame of the account routes: error mapping, JSON bodies, the sign-in check.
class AccountHandler : public EdgeHandler {
 public:
  explicit AccountHandler(const EdgeServices& services) : services_(services) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    try {
      handle(req, resp);
    } catch (...) {
      answerRouteFailure(services_, req, resp, bodyRead_);
    }
  }

 protected:
  virtual void handle(HTTPServerRequest& req, HTTPServerResponse& resp) = 0;

  /// Sets principal_ for a valid JWT; otherwise answers 403 for a token that may not be used
  /// now (a disabled account, a member the plan does not allow), 401 for any other, and
  /// returns false.
  bool signIn(HTTPServerRequest& req, HTTPServerResponse& resp) {
    principal_ = services_.auth->authenticateRequest(req, nowMs());
    if (principal_.signedIn()) return true;
    closeIfUnread(req, resp);
    if (principal_.kind == Principal::Kind::kBarred) {
      sendJson(resp, 403, principal_.refusal);
      return false;
    }
    resp.set("WWW-Authenticate", "Bearer realm=\"anonymily\"");
    sendError(resp, 401, kSignInRefusal);
    return false;
  }

  /// Answers 403 and returns false unless the signed-in member owns the account.
  bool requireOwner(HTTPServerRequest& req, HTTPServerResponse& resp, std::string_view what) {
    if (principal_.member.owner) return true;
    closeIfUnread(req, resp);
    sendError(resp, 403, "only the account's owner may " + std::string(what));
    return false;
  }

  void closeIfUnread(const HTTPServerRequest& req, HTTPServerResponse& resp) const {
    if (!bodyRead_) closeIfBodyUnread(req, resp);
  }

  JsonObject::Ptr readJson(HTTPServerRequest& req) {
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

  std::string remote(const HTTPServerRequest& req) const {
    return clientAddress(req, services_.config != nullptr && services_.config->behindProxy);
  }

  void audit(const HTTPServerRequest& req, const std::string& action, const std::string& detail) {
    recordAudit(services_, principal_, remote(req), action, principal_.account.id, "", 0, detail);
  }

  /// A new PAT of the member, stored; `text` receives the token itself.
  store::TokenRecord createToken(const store::MemberRecord& member, const std::string& name,
                                 std::string& text) {
    text = newPersonalToken();
    store::TokenRecord token;
    token.id = newRecordId("tok_");
    token.memberId = member.id;
    token.accountId = member.accountId;
    token.name = name;
    token.hash = sha256Hex(text);
    token.createdAtMs = nowMs();
    services_.store->createToken(token);
    httpLog().information("token created token_id=%s member=%s account=%s", token.id, member.id,
                          member.accountId);
    return token;
  }

  const EdgeServices& services_;
  Principal principal_;
  bool bodyRead_ = false;
};

/// POST /api/v1/auth/token: a PAT in, a short-lived JWT out.
class ExchangeHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    const auto request = readJson(req);
    refuseUnknownFields(*request, {"token"});
    if (!request->has("token")) throw BadRequest("token is required: {\"token\":\"anm_pat_...\"}");
    const std::string pat = stringMember(*request, "token", "");

    const int64_t now = nowMs();
    Authenticator::Issued issued;
    try {
      issued = services_.auth->exchange(pat, now);
    } catch (const AuthError& e) {
      httpLog().information("token exchange refused status=%s remote=%s",
                            std::to_string(e.status()), remote(req));
      throw;
    }

    principal_.kind = Principal::Kind::kMember;
    principal_.account = issued.account;
    principal_.member = issued.member;
    principal_.tokenId = issued.token.id;
    audit(req, "token.exchange", "token=" + issued.token.id);

    // An answer carrying a credential must not be kept by any cache (RFC 6749 section 5.1).
    resp.set("Cache-Control", "no-store");
    sendJson(resp, 200, stringify(issuedJson(issued, now, true)));
  }
};

/// The browser's sessions: the access token travels in an HttpOnly cookie the page's scripts
/// cannot read, so that nothing a webhook body could smuggle into the page can take it.
class SessionHandler : public AccountHandler {
 public:
  enum class Step { kStart, kRenew, kEnd };
  SessionHandler(const EdgeServices& services, Step step) : AccountHandler(services), step_(step) {}

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    const int64_t now = nowMs();
    if (step_ == Step::kEnd) {
      // The access token ends on every edge, not only in this browser: one copied out of it
      // must not outlive the sign-out (#4). Without a valid one there is only the cookie to
      // clear.
      principal_ = services_.auth->authenticateRequest(req, now);
      if (principal_.signedIn()) {
        services_.auth->endSession(principal_, now);
        audit(req, "session.end", "token=" + principal_.tokenId);
      }
      closeIfUnread(req, resp);
      resp.set("Cache-Control", "no-store");
      resp.set("Set-Cookie", cookie("", 0));
      resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NO_CONTENT);
      resp.setContentLength(0);
      resp.send();
      return;
    }

    Authenticator::Issued issued;
    if (step_ == Step::kStart) {
      const auto request = readJson(req);
      refuseUnknownFields(*request, {"token"});
      if (!request->has("token")) {
        throw BadRequest("token is required: {\"token\":\"anm_pat_...\"}");
      }
      try {
        issued = services_.auth->exchange(stringMember(*request, "token", ""), now, true);
      } catch (const AuthError& e) {
        httpLog().information("session refused status=%s remote=%s", std::to_string(e.status()),
                              remote(req));
        throw;
      }
    } else {
      if (!signIn(req, resp)) return;

      // Only a session renews itself (#4): a client holding an access token in a header
      // exchanges its PAT again, so that a copied token cannot be kept alive for ever.
      issued = services_.auth->renew(principal_, now);
    }

    principal_.kind = Principal::Kind::kMember;
    principal_.account = issued.account;
    principal_.member = issued.member;
    principal_.tokenId = issued.token.id;
    audit(req, step_ == Step::kStart ? "session.create" : "session.renew",
          "token=" + issued.token.id);

    resp.set("Cache-Control", "no-store");
    resp.set("Set-Cookie", cookie(issued.jwt, (issued.expiresAtMs - now / 1000 * 1000) / 1000));
    sendJson(resp, 200, stringify(issuedJson(issued, now, false)));
  }

 private:
  // SameSite=Strict: other sites' pages never send it; Secure whenever the edge is reached
  // over https, so that it never travels in clear.
  std::string cookie(const std::string& value, int64_t maxAgeS) const {
    const bool secure = (services_.config != nullptr && !services_.config->tlsCert.empty()) ||
                        services_.publicUrl.rfind("https://", 0) == 0;
    return std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict" +
           "; Max-Age=" + std::to_string(std::max<int64_t>(maxAgeS, 0)) +
           (secure ? "; Secure" : "");
  }

  Step step_;
};

/// GET /api/v1/account.
class AccountInfoHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;
    const store::AccountRecord& account = principal_.account;
    const PlanLimits limits = accountLimits(account);

    auto limitsJson = orderedObject();
    limitsJson->set("named_hooks", limitValue(limits.namedHooks));
    limitsJson->set("relays_per_hook", limitValue(limits.relaysPerHook));
    limitsJson->set("members", limitValue(limits.members));
    limitsJson->set("custom_response", limits.customResponse);
    JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("id", account.id);
    out.set("name", account.name);
    out.set("plan", planName(account.plan));
    out.set("disabled", account.disabled);
    out.set("created_at_ms", static_cast<Poco::Int64>(account.createdAtMs));
    out.set("limits", limitsJson);
    out.set("member", memberJson(principal_.member, false));
    sendJson(resp, 200, stringify(out));
  }
};

/// GET /api/v1/account/members.
class ListMembersHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;
    Poco::JSON::Array::Ptr members = new Poco::JSON::Array;
    for (const auto& member : services_.store->listMembers(principal_.account.id)) {
      members->add(memberJson(member, true));
    }
    JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("members", members);
    sendJson(resp, 200, stringify(out));
  }
};

/// POST /api/v1/account/members: the owner adds a member, who gets a first token.
class AddMemberHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;
    const auto request = readJson(req);
    if (!requireOwner(req, resp, "add members")) return;

    // The plan first: on the free plan no name would do.
    const PlanLimits limits = accountLimits(principal_.account);
    if (limits.members &&
        services_.store->listMembers(principal_.account.id).size() >= *limits.members) {
      sendJson(resp, 403, planRefusalJson(memberRefusal(), principal_.account.plan));
      return;
    }

    refuseUnknownFields(*request, {"name"});
    const std::string name = stringMember(*request, "name", "");
    if (!isRecordName(name)) {
      throw BadRequest("name must be 1.." + std::to_string(kMaxRecordNameBytes) +
                       " of a-z 0-9 - _");
    }

    store::MemberRecord member;
    member.id = newRecordId("mem_");
    member.accountId = principal_.account.id;
    member.name = name;
    member.owner = false;
    member.createdAtMs = nowMs();
    try {
      services_.store->createMember(member);
    } catch (const store::ConflictError&) {
      sendError(resp, 409, "a member named " + name + " exists");
      return;
    }
    std::string text;
    const store::TokenRecord token = createToken(member, kInitialTokenName, text);
    audit(req, "member.create", "member=" + member.id + " name=" + member.name);
    audit(req, "token.create", "token=" + token.id + " member=" + member.id);

    auto tokenOut = orderedObject();
    tokenOut->set("id", token.id);
    tokenOut->set("name", token.name);
    tokenOut->set("token", text);
    JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("member", memberJson(member, true));
    out.set("token", tokenOut);
    resp.set("Cache-Control", "no-store");
    sendJson(resp, 201, stringify(out));
  }
};

/// GET /api/v1/tokens: the caller's tokens; an owner sees every member's.
class ListTokensHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;
    Poco::JSON::Array::Ptr tokens = new Poco::JSON::Array;
    for (const auto& token : services_.store->listTokens(principal_.account.id)) {
      if (!principal_.member.owner && token.memberId != principal_.member.id) continue;
      tokens->add(tokenJson(token));
    }
    JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("tokens", tokens);
    sendJson(resp, 200, stringify(out));
  }
};

/// POST /api/v1/tokens: a new PAT of the caller, shown once.
class CreateTokenHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;
    const auto request = readJson(req);
    refuseUnknownFields(*request, {"name"});
    const std::string name = stringMember(*request, "name", "");
    if (name.empty() || name.size() > kMaxTokenNameBytes || !isPrintableAscii(name)) {
      throw BadRequest("name must be 1.." + std::to_string(kMaxTokenNameBytes) +
                       " printable ASCII characters");
    }

    // A bound on live tokens keeps a leaked JWT from minting credentials without end.
    size_t live = 0;
    for (const auto& token : services_.store->listTokens(principal_.account.id)) {
      if (token.memberId == principal_.member.id && token.revokedAtMs == 0) ++live;
    }
    if (live >= kMaxLiveTokensPerMember) {
      sendError(resp, 409,
                "member " + principal_.member.name + " has " +
                    std::to_string(kMaxLiveTokensPerMember) +
                    " live tokens, the most allowed; revoke one first");
      return;
    }

    std::string text;
    const store::TokenRecord token = createToken(principal_.member, name, text);
    audit(req, "token.create", "token=" + token.id + " member=" + token.memberId);

    JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("id", token.id);
    out.set("name", token.name);
    out.set("token", text);
    out.set("created_at_ms", static_cast<Poco::Int64>(token.createdAtMs));
    resp.set("Cache-Control", "no-store");
    sendJson(resp, 201, stringify(out));
  }
};

/// DELETE /api/v1/tokens/<id>: revokes at once on every edge (each JWT's token is looked up).
class RevokeTokenHandler : public AccountHandler {
 public:
  RevokeTokenHandler(const EdgeServices& services, std::string tokenId)
      : AccountHandler(services), tokenId_(std::move(tokenId)) {}

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;

    // Another account's token and a member's token seen by a non-owner get the answer of an
    // unknown id, which tells nothing about whether it exists.
    const auto token = services_.store->findToken(tokenId_);
    const bool visible = token && token->accountId == principal_.account.id &&
                         (principal_.member.owner || token->memberId == principal_.member.id);
    if (!visible) {
      closeIfUnread(req, resp);
      sendError(resp, 404, "unknown token");
      return;
    }

    // Revoking twice is answered the same; only the first is a change worth an audit entry.
    if (services_.store->revokeToken(tokenId_, nowMs())) {
      audit(req, "token.revoke", "token=" + tokenId_ + " member=" + token->memberId);
      httpLog().information("token revoked token_id=%s member=%s account=%s", tokenId_,
                            token->memberId, token->accountId);
    }

    // This edge's streams of the token end now; other edges find the revocation when they poll
    // revokedTokensSince. Also after a second revocation, in case a stream outlived the first.
    size_t closed = services_.hub ? services_.hub->closeStreamsOfToken(tokenId_) : 0;
    if (services_.watchHub != nullptr) closed += services_.watchHub->closeStreamsOfToken(tokenId_);
    if (closed > 0) {
      httpLog().information("streams of revoked token closed token_id=%s streams=%s", tokenId_,
                            std::to_string(closed));
    }
    closeIfUnread(req, resp);
    resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NO_CONTENT);
    resp.setContentLength64(0);
    resp.send();
  }

 private:
  std::string tokenId_;
};

/// GET /api/v1/audit?after=N&limit=M: the account's audit log, for its owner.
class AuditHandler : public AccountHandler {
 public:
  using AccountHandler::AccountHandler;

 protected:
  void handle(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    if (!signIn(req, resp)) return;
    if (!requireOwner(req, resp, "read the audit log")) return;

    int64_t after = 0;
    size_t limit = kDefaultAuditPage;
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key == "after") {
        const auto parsed = parseId(value);
        if (!parsed) throw BadRequest("after must be a non-negative integer");
        after = *parsed;
      } else if (key == "limit") {
        const auto parsed = parseId(value);
        if (!parsed || *parsed < 1 || *parsed > static_cast<int64_t>(kMaxAuditPage)) {
          throw BadRequest("limit must be within 1.." + std::to_string(kMaxAuditPage));
        }
        limit = static_cast<size_t>(*parsed);
      }
    }

    const auto entries = services_.store->listAudit(principal_.account.id, after, limit);
    Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
    for (const auto& entry : entries) {
      auto item = orderedObject();
      item->set("id", static_cast<Poco::Int64>(entry.id));
      item->set("at_ms", static_cast<Poco::Int64>(entry.atMs));
      item->set("actor", entry.actor);
      item->set("action", entry.action);
      item->set("hook", entry.hookId);
      item->set("event", static_cast<Poco::Int64>(entry.eventId));
      item->set("detail", entry.detail);
      item->set("remote", entry.remote);
      list->add(item);
    }
    JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("entries", list);
    out.set("next_after", static_cast<Poco::Int64>(entries.empty() ? after : entries.back().id));
    sendJson(resp, 200, stringify(out));
  }
};

}  // namespace

bool isRecordName(std::string_view name) {
  if (name.empty() || name.size() > kMaxRecordNameBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

EdgeHandler* routeAccountApi(const EdgeServices& services, const std::string& method,
                             const std::vector<std::string>& segments) {
  const auto& p = segments;
  const size_t n = p.size();
  if (n < 3 || p[0] != "api" || p[1] != "v1") return nullptr;
  const std::string& area = p[2];

  if (area == "auth" && n == 4 && p[3] == "token") {
    if (method != "POST") return new MethodNotAllowedHandler("POST");
    return new ExchangeHandler(services);
  }
  if (area == "auth" && n == 4 && p[3] == "session") {
    if (method == "POST") return new SessionHandler(services, SessionHandler::Step::kStart);
    if (method == "DELETE") return new SessionHandler(services, SessionHandler::Step::kEnd);
    return new MethodNotAllowedHandler("POST, DELETE");
  }
  if (area == "auth" && n == 5 && p[3] == "session" && p[4] == "renew") {
    if (method != "POST") return new MethodNotAllowedHandler("POST");
    return new SessionHandler(services, SessionHandler::Step::kRenew);
  }
  if (area == "account" && n == 3) {
    if (method != "GET") return new MethodNotAllowedHandler("GET");
    return new AccountInfoHandler(services);
  }
  if (area == "account" && n == 4 && p[3] == "members") {
    if (method == "GET") return new ListMembersHandler(services);
    if (method == "POST") return new AddMemberHandler(services);
    return new MethodNotAllowedHandler("GET, POST");
  }
  if (area == "tokens" && n == 3) {
    if (method == "GET") return new ListTokensHandler(services);
    if (method == "POST") return new CreateTokenHandler(services);
    return new MethodNotAllowedHandler("GET, POST");
  }
  if (area == "tokens" && n == 4) {
    if (method != "DELETE") return new MethodNotAllowedHandler("DELETE");
    return new RevokeTokenHandler(services, p[3]);
  }
  if (area == "audit" && n == 3) {
    if (method != "GET") return new MethodNotAllowedHandler("GET");
    return new AuditHandler(services);
  }
  return nullptr;
}

}  // namespace anm::edge
