// core/edge/auth.cpp: who a request acts for: personal access tokens, JWTs and relay tokens.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/auth.h"

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/String.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <sstream>
#include <utility>

#include "core/edge/api_support.h"
#include "core/edge/config.h"
#include "core/edge/handlers.h"
#include "core/edge/metrics.h"
#include "core/edge/plans.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

constexpr char kJwtHeader[] = R"({"alg":"HS256","typ":"JWT"})";
constexpr char kJwtKeySetting[] = "auth.jwt_key";
constexpr size_t kJwtKeyBytes = 32;
constexpr size_t kSignatureBytes = 32;  // SHA-256
constexpr std::string_view kPatPrefix = "anm_pat_";
constexpr size_t kPatChars = 52;
constexpr size_t kIdChars = 26;
constexpr char kBase32Alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Poco::Logger& authLog() {
  static Poco::Logger& instance = Poco::Logger::get("anm.auth");
  return instance;
}

std::string base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t bits = 0;
  int held = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out += kBase64UrlAlphabet[(bits >> held) & 0x3f];
    }
  }
  if (held > 0) out += kBase64UrlAlphabet[(bits << (6 - held)) & 0x3f];
  return out;
}

// Strict: the URL alphabet only, no padding, and no stray bits in the last character, so that
// one token has exactly one text form.
std::optional<std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int held = 0;
  for (char c : text) {
    const char* found = std::char_traits<char>::find(kBase64UrlAlphabet, 64, c);
    if (found == nullptr || c == '\0') return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(found - kBase64UrlAlphabet);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out += static_cast<char>((bits >> held) & 0xff);
    }
  }
  if ((bits & ((1u << held) - 1)) != 0) return std::nullopt;
  return out;
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
           &len) == nullptr) {
    throw std::runtime_error("could not compute HMAC-SHA256");
  }
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0x0f];
  }
  return out;
}

std::optional<std::string> fromHex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); i += 2) {
    const int high = digit(text[i]);
    const int low = digit(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
  }
  return out;
}

bool isBase32(std::string_view text) {
  return text.find_first_not_of(kBase32Alphabet) == std::string_view::npos;
}

// A JSON object of a token part, or null; duplicate keys refuse the token, since two readers
// could take different values from it.
Poco::JSON::Object::Ptr tokenPart(std::string_view encoded) {
  const auto decoded = base64UrlDecode(encoded);
  if (!decoded || decoded->empty()) return nullptr;
  try {
    return parseJsonObject(*decoded);
  } catch (const BadRequest&) {
    return nullptr;
  }
}

std::optional<std::string> stringClaim(const Poco::JSON::Object& claims, const std::string& name) {
  if (!claims.has(name)) return std::nullopt;
  const auto value = claims.get(name);
  if (!value.isString()) return std::nullopt;
  return value.extract<std::string>();
}

std::optional<int64_t> integerClaim(const Poco::JSON::Object& claims, const std::string& name) {
  if (!claims.has(name)) return std::nullopt;
  const auto value = claims.get(name);
  if (!value.isInteger() || value.isBoolean()) return std::nullopt;
  try {
    return value.convert<Poco::Int64>();
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

const std::string kRefusedPat = "invalid or revoked token";
const std::string kRenewRefusal =
    "only a session's cookie renews it; exchange the PAT at /api/v1/auth/token for a new "
    "access token";

std::string disabledRefusal(const store::AccountRecord& account) {
  return "account " + account.name + " is disabled";
}

}  // namespace

void refuseRepeatedCredentials(const Poco::Net::HTTPServerRequest& request) {
  const auto count = [](const Poco::Net::NameValueCollection& fields, const std::string& name) {
    return std::count_if(fields.begin(), fields.end(), [&name](const auto& field) {
      return Poco::icompare(field.first, name) == 0;
    });
  };
  const auto headers = count(request, "Authorization");
  if (headers > 1) {
    throw AuthError(400, "a request may carry one Authorization header; this one carries " +
                             std::to_string(headers));
  }
  Poco::Net::NameValueCollection cookies;
  request.getCookies(cookies);
  const auto sessions = count(cookies, kSessionCookie);
  if (sessions > 1) {
    throw AuthError(400, std::string("a request may carry one ") + kSessionCookie +
                             " cookie; this one carries " + std::to_string(sessions));
  }
}

std::string Principal::actor() const {
  switch (kind) {
    case Kind::kMember:
      return "member:" + member.id;
    case Kind::kHookToken:
      return "hook-token";
    default:
      return "anonymous";
  }
}

Authenticator::Authenticator(store::Store& store, const EdgeConfig& config)
    : store_(store),
      issuer_(config.jwtIssuer),
      ttl_(config.jwtTtl),
      sessionMax_(config.sessionMax) {
  // Every edge on one database must sign with one key: the first to start stores it, and the
  // others read back the value stored then.
  const std::string stored =
      store_.putSettingIfAbsent(kJwtKeySetting, toHex(randomSecretBytes(kJwtKeyBytes)));
  const auto key = fromHex(stored);
  if (!key || key->size() != kJwtKeyBytes) {
    throw store::StoreError(std::string("the store setting ") + kJwtKeySetting +
                            " is not 64 lower-case hex digits");
  }
  key_ = *key;
}

Authenticator::Issued Authenticator::exchange(std::string_view pat, int64_t nowMs,
                                              bool browserSession) {
  // Only the hash is looked up, so any text costs one hash and one lookup; a text that cannot
  // be a PAT is refused with the same answer as an unknown one.
  const bool wellFormed = pat.size() == kPatPrefix.size() + kPatChars &&
                          pat.substr(0, kPatPrefix.size()) == kPatPrefix &&
                          isBase32(pat.substr(kPatPrefix.size()));
  if (!wellFormed) throw AuthError(401, kRefusedPat);
  auto token = store_.findTokenByHash(sha256Hex(pat));

  // The lookup found the hash; comparing it again in constant time keeps a backend's index
  // lookup from being the only check.
  if (!token || !tokenMatches(pat, token->hash) || token->revokedAtMs != 0) {
    throw AuthError(401, kRefusedPat);
  }
  auto account = store_.findAccount(token->accountId);
  auto member = store_.findMember(token->memberId);
  if (!account || !member || member->accountId != account->id) throw AuthError(401, kRefusedPat);
  if (account->disabled) throw AuthError(403, disabledRefusal(*account));
  if (!planAllowsMember(*account, *member)) {
    const std::string refusal = memberSignInRefusal(member->name);
    throw AuthError(403, refusal, planRefusalJson(refusal, account->plan));
  }

  store_.touchToken(token->id, nowMs);
  token->lastUsedAtMs = nowMs;
  // A browser session begins here: its sign-in id and time go with every renewal.
  std::optional<SignIn> signIn;
  if (browserSession) signIn = SignIn{randomBase32(kIdChars), nowMs / 1000};
  return issue(std::move(*account), std::move(*member), std::move(*token), nowMs, signIn);
}

Authenticator::Issued Authenticator::renew(const Principal& principal, int64_t nowMs) {
  if (!principal.signedIn()) throw AuthError(401, kRefusedPat);

  // A cookie is only a header a client may write itself: the token must also have been issued
  // for a session, so that one copied from /auth/token cannot be renewed by sending it as a
  // cookie.
  if (!principal.viaCookie || !principal.browserSession) {
    throw AuthError(403, kRenewRefusal);
  }

  // A session cookie taken from a browser could otherwise be renewed for ever: a sign-in lasts
  // auth.session_max_s, then the PAT is asked for again.
  if (nowMs - principal.signedInAtMs > sessionMax_.count() * 1000) {
    throw AuthError(401, "the session began more than " + std::to_string(sessionMax_.count()) +
                             " s ago; sign in again");
  }

  auto token = store_.findToken(principal.tokenId);
  if (!token || token->revokedAtMs != 0) throw AuthError(401, kRefusedPat);
  store_.touchToken(token->id, nowMs);
  token->lastUsedAtMs = nowMs;
  return issue(principal.account, principal.member, std::move(*token), nowMs,
               SignIn{principal.signInId, principal.signedInAtMs / 1000});
}

void Authenticator::endSession(const Principal& principal, int64_t nowMs) {
  if (!principal.signedIn()) return;

  // A browser session ends as a whole: a token its last renewal replaced would otherwise go on
  // until its own exp. Every token of the sign-in was issued by now, by this edge or another,
  // under this lifetime or an earlier setting, so each expires within the longest lifetime.
  if (principal.browserSession) {
    store_.endSession(principal.signInId, nowMs + kMaxJwtTtlS * 1000 + kClockLeewayMs, nowMs);
    return;
  }

  // Kept as long as the token could pass the time checks, leeway included.
  store_.endSession(principal.sessionId, principal.expiresAtMs + kClockLeewayMs, nowMs);
}

Authenticator::Issued Authenticator::issue(store::AccountRecord account, store::MemberRecord member,
                                           store::TokenRecord token, int64_t nowMs,
                                           const std::optional<SignIn>& signIn) const {
  AccessClaims claims;
  claims.memberId = member.id;
  claims.accountId = account.id;
  claims.tokenId = token.id;
  claims.browserSession = signIn.has_value();
  if (signIn) {
    claims.signInId = signIn->id;
    claims.signedInAtS = signIn->atS;
  }
  claims.issuedAtS = nowMs / 1000;
  claims.expiresAtS = claims.issuedAtS + ttl_.count();

  Issued issued;
  issued.jwt = sign(claims, issuer_);
  issued.expiresAtMs = claims.expiresAtS * 1000;
  issued.account = std::move(account);
  issued.member = std::move(member);
  issued.token = std::move(token);
  return issued;
}

Principal Authenticator::authenticateRequest(const Poco::Net::HTTPServerRequest& request,
                                             int64_t nowMs) {
  refuseRepeatedCredentials(request);

  // A header says what the client meant: it wins over a cookie the browser added on its own.
  const std::string& header = request.get("Authorization", "");
  if (header.find_first_not_of(" \t") != std::string::npos) return authenticate(header, nowMs);

  Poco::Net::NameValueCollection cookies;
  request.getCookies(cookies);
  const std::string session = cookies.get(kSessionCookie, "");
  if (session.empty()) return Principal{};

  // Only an access token lives in the cookie; anything else in it is refused, not taken as a
  // relay token.
  Principal principal = authenticate("Bearer " + session, nowMs);
  if (principal.kind == Principal::Kind::kHookToken) {
    principal = Principal();
    principal.kind = Principal::Kind::kRefused;
  }
  principal.viaCookie = true;
  const std::string& method = request.getMethod();
  if (principal.signedIn() && method != "GET" && method != "HEAD" &&
      request.get(kCsrfHeader, "") != "1") {
    throw AuthError(403, std::string("cookie sessions need the ") + kCsrfHeader + " header");
  }
  return principal;
}

Principal Authenticator::authenticate(std::string_view authorizationHeader, int64_t nowMs) {
  Principal principal;
  if (authorizationHeader.find_first_not_of(" \t") == std::string_view::npos) return principal;

  // A header that is there but not a bearer value is refused, not taken as no header: a typo
  // must not turn into an anonymous request.
  const auto bearer = bearerToken(authorizationHeader);
  principal.kind = Principal::Kind::kRefused;
  if (!bearer) return principal;

  // A PAT is only ever exchanged at /auth/token; as a bearer it would be a long-lived secret
  // sent on every request.
  if (bearer->substr(0, kPatPrefix.size()) == kPatPrefix) return principal;

  if (std::count(bearer->begin(), bearer->end(), '.') != 2) {
    principal.kind = Principal::Kind::kHookToken;
    principal.bearer = std::string(*bearer);
    return principal;
  }

  const auto claims = verify(*bearer, nowMs);
  if (!claims) return principal;

  // Looked up on every request, so that a revocation or a disabled account counts at once on
  // every edge.
  const auto token = store_.findToken(claims->tokenId);
  if (!token || token->revokedAtMs != 0 || token->memberId != claims->memberId ||
      token->accountId != claims->accountId) {
    return principal;
  }

  // A token signed out of is refused like a revoked one, on every edge of the store (#4); a
  // browser session's sign-out ends all of its tokens.
  const std::string& endedId = claims->browserSession ? claims->signInId : claims->sessionId;
  if (store_.sessionEnded(endedId, nowMs)) return principal;

  auto account = store_.findAccount(claims->accountId);
  if (!account) return principal;
  auto member = store_.findMember(claims->memberId);
  if (!member || member->accountId != account->id) return principal;

  // A token that is valid in itself but may not be used now gets an answer that says why.
  if (account->disabled) {
    principal.kind = Principal::Kind::kBarred;
    principal.refusal = "{\"error\":" + jsonText(disabledRefusal(*account)) + "}";
    return principal;
  }
  if (!planAllowsMember(*account, *member)) {
    principal.kind = Principal::Kind::kBarred;
    principal.refusal = planRefusalJson(memberSignInRefusal(member->name), account->plan);
    return principal;
  }

  principal.kind = Principal::Kind::kMember;
  principal.account = std::move(*account);
  principal.member = std::move(*member);
  principal.tokenId = claims->tokenId;
  principal.sessionId = claims->sessionId;
  principal.expiresAtMs = claims->expiresAtS * 1000;
  principal.browserSession = claims->browserSession;
  principal.signInId = claims->signInId;
  principal.signedInAtMs = claims->signedInAtS * 1000;
  return principal;
}

std::optional<AccessClaims> Authenticator::verify(std::string_view jwt, int64_t nowMs) const {
  if (jwt.size() > kMaxJwtBytes) return std::nullopt;

  // Exactly three parts, none empty.
  const auto firstDot = jwt.find('.');
  if (firstDot == std::string_view::npos) return std::nullopt;
  const auto secondDot = jwt.find('.', firstDot + 1);
  if (secondDot == std::string_view::npos ||
      jwt.find('.', secondDot + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view headerPart = jwt.substr(0, firstDot);
  const std::string_view payloadPart = jwt.substr(firstDot + 1, secondDot - firstDot - 1);
  const std::string_view signaturePart = jwt.substr(secondDot + 1);
  if (headerPart.empty() || payloadPart.empty() || signaturePart.empty()) return std::nullopt;

  // The algorithm is fixed, never taken from the token: "none", HS512, RS256 ... are refused.
  const auto header = tokenPart(headerPart);
  if (!header || stringClaim(*header, "alg") != std::optional<std::string>("HS256")) {
    return std::nullopt;
  }
  if (header->has("typ") && stringClaim(*header, "typ") != std::optional<std::string>("JWT")) {
    return std::nullopt;
  }
  if (header->has("crit")) return std::nullopt;  // no extension is understood (RFC 7515 4.1.11)

  // The signature before anything in the payload is believed.
  const auto signature = base64UrlDecode(signaturePart);
  if (!signature || signature->size() != kSignatureBytes) return std::nullopt;
  const std::string expected = hmacSha256(key_, jwt.substr(0, secondDot));
  if (CRYPTO_memcmp(expected.data(), signature->data(), kSignatureBytes) != 0) return std::nullopt;

  const auto payload = tokenPart(payloadPart);
  if (!payload) return std::nullopt;
  const auto iss = stringClaim(*payload, "iss");
  const auto sub = stringClaim(*payload, "sub");
  const auto acc = stringClaim(*payload, "acc");
  const auto tid = stringClaim(*payload, "tid");
  const auto iat = integerClaim(*payload, "iat");
  const auto nbf = integerClaim(*payload, "nbf");
  const auto exp = integerClaim(*payload, "exp");
  const auto jti = stringClaim(*payload, "jti");
  if (!iss || !sub || !acc || !tid || !iat || !nbf || !exp || !jti) return std::nullopt;
  if (*iss != issuer_ || sub->empty() || acc->empty() || tid->empty() || jti->empty()) {
    return std::nullopt;
  }

  // Only a session's token carries `ses`, and only as true: any other value is a token this
  // edge did not write.
  const bool browserSession = payload->has("ses");
  if (browserSession && !payload->get("ses").isBoolean()) return std::nullopt;
  if (browserSession && !payload->getValue<bool>("ses")) return std::nullopt;

  // And with it the sign-in it belongs to: an id, and a time no later than the token's own.
  std::optional<std::string> sid;
  std::optional<int64_t> authTime;
  if (browserSession) {
    sid = stringClaim(*payload, "sid");
    authTime = integerClaim(*payload, "auth_time");
    if (!sid || sid->empty() || !authTime || *authTime < 0 || *authTime > *iat) {
      return std::nullopt;
    }
  }

  // Times in seconds, with a small leeway for clocks of edges that differ a little. The bounds
  // keep the multiplication from overflowing.
  constexpr int64_t kMaxClaimS = INT64_C(1) << 40;
  if (*exp < 0 || *exp > kMaxClaimS || *nbf < 0 || *nbf > kMaxClaimS) return std::nullopt;
  if (*exp * 1000 <= nowMs - kClockLeewayMs) return std::nullopt;
  if (*nbf * 1000 > nowMs + kClockLeewayMs) return std::nullopt;

  AccessClaims claims;
  claims.memberId = *sub;
  claims.accountId = *acc;
  claims.tokenId = *tid;
  claims.sessionId = *jti;
  claims.browserSession = browserSession;
  if (browserSession) {
    claims.signInId = *sid;
    claims.signedInAtS = *authTime;
  }
  claims.issuedAtS = *iat;
  claims.expiresAtS = *exp;
  return claims;
}

std::string Authenticator::sign(const AccessClaims& claims, std::string_view issuer) const {
  Poco::JSON::Object payload(Poco::JSON_PRESERVE_KEY_ORDER);
  payload.set("iss", std::string(issuer));
  payload.set("sub", claims.memberId);
  payload.set("acc", claims.accountId);
  payload.set("tid", claims.tokenId);
  payload.set("iat", static_cast<Poco::Int64>(claims.issuedAtS));
  payload.set("nbf", static_cast<Poco::Int64>(claims.issuedAtS));
  payload.set("exp", static_cast<Poco::Int64>(claims.expiresAtS));
  payload.set("jti", claims.sessionId.empty() ? randomBase32(kIdChars) : claims.sessionId);
  if (claims.browserSession) {
    payload.set("ses", true);
    payload.set("sid", claims.signInId);
    payload.set("auth_time", static_cast<Poco::Int64>(claims.signedInAtS));
  }
  std::ostringstream text;
  payload.stringify(text);

  const std::string signingInput = base64UrlEncode(kJwtHeader) + "." + base64UrlEncode(text.str());
  return signingInput + "." + base64UrlEncode(hmacSha256(key_, signingInput));
}

std::string newPersonalToken() { return std::string(kPatPrefix) + randomBase32(kPatChars); }

std::string newRecordId(std::string_view prefix) {
  return std::string(prefix) + randomBase32(kIdChars);
}

void recordAudit(const EdgeServices& services, const Principal& principal,
                 const std::string& remote, std::string action, std::string accountId,
                 std::string hookId, int64_t eventId, std::string detail) {
  store::AuditRecord entry;
  entry.atMs = nowMs();
  entry.accountId = std::move(accountId);
  entry.actor = principal.actor();
  entry.action = std::move(action);
  entry.hookId = std::move(hookId);
  entry.eventId = eventId;
  entry.detail = std::move(detail);
  entry.remote = remote;
  services.store->appendAudit(entry);
  if (authLog().debug()) {
    authLog().debug("audit entry written action=%s actor=%s", entry.action, entry.actor);
  }
}

void answerRouteFailure(const EdgeServices& services, const Poco::Net::HTTPServerRequest& req,
                        Poco::Net::HTTPServerResponse& resp, bool bodyRead) {
  try {
    throw;
  } catch (const store::StoreError& e) {
    services.metrics->storeError();
    closeIfBodyUnread(req, resp);
    if (!resp.sent()) sendStoreUnavailable(resp, e);
  } catch (const BadRequest& e) {
    if (!bodyRead) closeIfBodyUnread(req, resp);
    if (!resp.sent()) sendError(resp, e.status(), e.what());
  } catch (const AuthError& e) {
    if (!bodyRead) closeIfBodyUnread(req, resp);
    if (resp.sent()) return;
    if (!e.body().empty()) {
      sendJson(resp, e.status(), e.body());
      return;
    }
    sendError(resp, e.status(), e.what());
  }
}

}  // namespace anm::edge
