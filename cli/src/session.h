// cli/src/session.h: a signed-in member's access: the saved PAT exchanged for short-lived JWTs.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cli/src/api_client.h"
#include "cli/src/url.h"

namespace anm::cli {

/// A JWT is renewed when less than a quarter of its lifetime is left, and at most this much,
/// so that no request goes out with a token about to expire on its way (spec: renew before
/// expires_at_ms - 60 s) and a short-lived token still serves three quarters of its life: with
/// auth.jwt_ttl_s = 60, a margin of 60 s would renew before nearly every request.
inline constexpr std::chrono::seconds kAccessRenewMargin{60};

/// How long before `expiresAtMs` a JWT issued at `issuedAtMs` is renewed: a quarter of its
/// lifetime, at most kAccessRenewMargin.
int64_t renewMarginMs(int64_t issuedAtMs, int64_t expiresAtMs);

/// Said when the edge refuses the PAT itself, or a fresh JWT: only a new login helps.
inline constexpr char kSignInAgainMessage[] =
    "your access token was revoked or expired; run 'anonymily login' again";

/// Who the PAT belongs to, from the exchange's answer.
struct MemberIdentity {
  std::string accountId;
  std::string accountName;
  std::string plan;
  std::string memberId;
  std::string memberName;
  bool owner = false;
};

/// Why an exchange or a member request failed. `status` is the edge's (0 when none came).
class SessionError : public std::runtime_error {
 public:
  SessionError(int status, const std::string& what) : std::runtime_error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

/// Milliseconds since the Unix epoch; tests pass their own clock.
using WallClock = std::function<int64_t()>;

/// Holds the PAT of one edge and the current JWT for it. Every method is thread-safe: the relay
/// loop, its delivery reporter and a command's own requests may share one session.
class MemberSession {
 public:
  MemberSession(Url edge, std::string pat, std::chrono::milliseconds timeout, WallClock clock = {});

  /// POST /api/v1/auth/token now. Throws SessionError: status 0 with plainHttpRefusal's
  /// sentence before anything is sent to a plain-http edge off this machine, 401 with
  /// kSignInAgainMessage, 403 with the edge's message (a disabled account), anything else with
  /// what went wrong.
  /// NetError passes through when the edge could not be reached.
  void exchange();

  /// A JWT with more than its renewal margin (renewMarginMs) left, exchanging first when the
  /// current one has less (or there is none yet). Throws as exchange().
  std::string accessToken();

  /// For a request refused with 401 while carrying `refused`: exchanges once, unless another
  /// thread already replaced that token, and returns the JWT to retry with.
  std::string renewAfterRefusal(const std::string& refused);

  MemberIdentity identity() const;
  const Url& edge() const { return edge_; }

  /// When the current JWT expires by this machine's clock (0 before the first exchange).
  int64_t expiresAtMs() const;

  /// Exchanges made so far, answered or not.
  uint64_t exchanges() const;

 private:
  void exchangeLocked();

  const Url edge_;
  const std::string pat_;
  const WallClock clock_;
  mutable std::mutex mutex_;
  std::unique_ptr<ApiClient> api_;  ///< for exchanges only, under mutex_
  std::string jwt_;
  int64_t issuedAtMs_ = 0;  ///< when the exchange was sent, by clock_
  int64_t expiresAtMs_ = 0;
  MemberIdentity identity_;
  uint64_t exchanges_ = 0;
};

/// Sends one API request with the session's JWT through `api`. A 401 makes one renewal and one
/// retry; a second 401 throws SessionError(401, kSignInAgainMessage). When `hookRoute` is set a
/// 404 counts the same way (hook routes answer 404, not 401, to a bad token), so a renewal
/// first rules out an expired JWT; a 404 after it is returned as the answer.
ApiResponse sendAsMember(MemberSession& session, ApiClient& api, const std::string& method,
                         const std::string& path, const std::string& body = "",
                         bool hookRoute = false);

/// Milliseconds since the epoch by the system clock.
int64_t systemNowMs();

}  // namespace anm::cli
