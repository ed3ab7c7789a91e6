// core/edge/auth.h: who a request acts for: personal access tokens, JWTs and relay tokens.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "core/store/store.h"

namespace anm::edge {

struct EdgeConfig;
struct EdgeServices;

/// Longest JWT the edge reads (its own are about 400 bytes); a longer bearer value is refused
/// before any parsing. (Appended.)
inline constexpr size_t kMaxJwtBytes = 4096;
/// Leeway on `exp` and `nbf` for edges whose clocks differ a little. (Appended.)
inline constexpr int64_t kClockLeewayMs = 5000;
/// The browser session's cookie, holding an access token the page's scripts cannot read.
inline constexpr char kSessionCookie[] = "anm_session";
/// The header a cookie-authenticated request that changes something must carry.
inline constexpr char kCsrfHeader[] = "X-Anonymily-CSRF";

/// A refused exchange or sign-in; status and message go back to the client as they are.
class AuthError : public std::runtime_error {
 public:
  /// `body` is the answer's JSON when it says more than {"error": what} (a plan refusal names
  /// the plan); empty for that plain form.
  AuthError(int status, const std::string& what, std::string body = "")
      : std::runtime_error(what), status_(status), body_(std::move(body)) {}
  int status() const { return status_; }
  const std::string& body() const { return body_; }

 private:
  int status_;
  std::string body_;
};

/// What the Authorization header of a request proved.
struct Principal {
  enum class Kind {
    kNone,       ///< no bearer value
    kHookToken,  ///< a bearer that is not a JWT: maybe a hook's relay token (checked per hook)
    kMember,     ///< a valid JWT of a live token of an enabled account
    kRefused,    ///< a JWT that failed a check (expired, revoked, bad signature, ...)
    /// A JWT that passed every check of its own but whose account is disabled, or whose member
    /// the account's plan does not allow (a member other than the owner on the free plan):
    /// routes that need a member answer 403 with `refusal`, hook routes the unknown-hook 404.
    /// (Appended.)
    kBarred,
  };
  Kind kind = Kind::kNone;
  bool viaCookie = false;        ///< the access token came in the session cookie, not a header
  std::string bearer;            ///< the presented value (kHookToken), for the relay-token check
  std::string refusal;           ///< kBarred only: the JSON body of the 403 answer
  store::AccountRecord account;  ///< kMember only
  store::MemberRecord member;    ///< kMember only
  std::string tokenId;           ///< kMember only: the PAT the JWT was issued from (`tid`)
  std::string sessionId;         ///< kMember only: the JWT's own id (`jti`), which a sign-out ends
  int64_t expiresAtMs = 0;       ///< kMember only: when the JWT expires (`exp`)
  bool browserSession = false;   ///< kMember only: issued for a session cookie (`ses`)
  std::string signInId;          ///< browser sessions only: shared by its renewals (`sid`)
  int64_t signedInAtMs = 0;      ///< browser sessions only: when it began (`auth_time`)

  bool signedIn() const { return kind == Kind::kMember; }

  /// The audit log's actor: "member:<id>", "hook-token", or "anonymous".
  std::string actor() const;
};

/// The claims of a JWT that passed every check.
struct AccessClaims {
  std::string memberId;         ///< sub
  std::string accountId;        ///< acc
  std::string tokenId;          ///< tid
  std::string sessionId;        ///< jti
  bool browserSession = false;  ///< ses: issued for a session cookie, the only kind renewed
  std::string signInId;         ///< sid: with ses, the sign-in every renewal carries on
  int64_t signedInAtS = 0;      ///< auth_time: with ses, when that sign-in was
  int64_t issuedAtS = 0;
  int64_t expiresAtS = 0;
};

/// Issues and checks the edge's access tokens. Thread-safe.
class Authenticator {
 public:
  /// Reads the store setting `auth.jwt_key`, creating it (32 random bytes) when absent, so that
  /// every edge on one database signs with one key. Throws StoreError.
  Authenticator(store::Store& store, const EdgeConfig& config);

  struct Issued {
    std::string jwt;
    int64_t expiresAtMs = 0;
    store::AccountRecord account;
    store::MemberRecord member;
    store::TokenRecord token;
  };

  /// Exchanges a PAT's text for a JWT. Throws AuthError 401 for an unknown, wrong or revoked
  /// PAT (one message for all), and 403 for a disabled account or a member the account's plan
  /// does not allow (naming the plan). `browserSession` marks the token as one for a session
  /// cookie, the only kind renew takes.
  Issued exchange(std::string_view pat, int64_t nowMs, bool browserSession = false);

  /// Checks the header's bearer value. A JWT is verified completely (docs/accounts.md), with a
  /// store lookup of its token and account, so a revocation counts at once. No header (or a
  /// blank one) is kNone; a header that is not a bearer value, a PAT and a failed JWT are
  /// kRefused; a valid JWT of a disabled account, or of a member the plan does not allow, is
  /// kBarred; any other bearer value is kHookToken. Throws StoreError when a lookup fails.
  Principal authenticate(std::string_view authorizationHeader, int64_t nowMs);

  /// Who a request acts for: its Authorization header when it has one, else the access token
  /// in its session cookie (kSessionCookie), checked the same way. A request authenticated by
  /// the cookie whose method changes something must carry kCsrfHeader, since a browser sends
  /// the cookie along with requests other sites make it send: without it, AuthError 403.
  Principal authenticateRequest(const Poco::Net::HTTPServerRequest& request, int64_t nowMs);

  /// A new access token for a member whose current one is valid (a session renewal): the same
  /// PAT, account, member and sign-in, checked again. Throws AuthError 401 when they no longer
  /// hold or the sign-in is older than auth.session_max_s, and 403 unless the current one came
  /// in the session cookie and was issued for it: a token handed out at /auth/token, wherever
  /// it is sent, ends at its `exp` (#4).
  Issued renew(const Principal& principal, int64_t nowMs);

  /// Ends the principal's access token on every edge of the store before its time (a
  /// sign-out): from now on it is refused like a revoked one. For a browser session that is
  /// every token of its sign-in, the ones a renewal replaced too. Throws StoreError.
  void endSession(const Principal& principal, int64_t nowMs);

  /// The signature, algorithm and time checks alone, for tests: nothing when any fails.
  std::optional<AccessClaims> verify(std::string_view jwt, int64_t nowMs) const;

  /// Signs claims as this edge would (tests forge tokens with other values through it).
  std::string sign(const AccessClaims& claims, std::string_view issuer) const;

 private:
  /// A browser session's sign-in, carried from token to token by renewals.
  struct SignIn {
    std::string id;
    int64_t atS = 0;
  };

  Issued issue(store::AccountRecord account, store::MemberRecord member, store::TokenRecord token,
               int64_t nowMs, const std::optional<SignIn>& signIn) const;

  store::Store& store_;
  std::string key_;
  std::string issuer_;
  std::chrono::seconds ttl_;
  std::chrono::seconds sessionMax_;
};

/// Throws AuthError 400 for a request with more than one Authorization header or more than one
/// session cookie (kSessionCookie): readers of such a request disagree on which one counts (a
/// proxy may check the last, the edge would take the first), so none is taken (#4).
void refuseRepeatedCredentials(const Poco::Net::HTTPServerRequest& request);

/// A new PAT: "anm_pat_" + 52 lower-case base32 characters (260 random bits).
std::string newPersonalToken();

/// A new random id: prefix + 26 lower-case base32 characters (130 random bits).
std::string newRecordId(std::string_view prefix);

/// Writes one audit entry for the request's principal before the caller answers. Throws
/// store::StoreError when it could not be written (the caller answers 503 and returns no
/// contents). `remote` is the client address.
void recordAudit(const EdgeServices& services, const Principal& principal,
                 const std::string& remote, std::string action, std::string accountId,
                 std::string hookId, int64_t eventId, std::string detail);

/// Answers a request whose route threw the exception being handled; call it from `catch (...)`.
/// A StoreError is 503 (counted in the metrics; also an audit entry that could not be written,
/// so the answer carries no contents). A BadRequest or an AuthError gets its status and message,
/// an AuthError its own JSON body when it has one. A body the route had not read closes the
/// connection. Any other exception is thrown on.
void answerRouteFailure(const EdgeServices& services, const Poco::Net::HTTPServerRequest& req,
                        Poco::Net::HTTPServerResponse& resp, bool bodyRead);

}  // namespace anm::edge
