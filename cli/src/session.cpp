// cli/src/session.cpp: PAT to JWT exchange, renewal before expiry and after a refusal.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/session.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <sstream>

#include "cli/src/connection.h"
#include "cli/src/credentials.h"

namespace anm::cli {

namespace {

std::string text(const Poco::JSON::Object::Ptr& object, const std::string& key) {
  if (object.isNull() || !object->has(key) || object->isNull(key)) return "";
  return object->get(key).toString();
}

int64_t integer(const Poco::JSON::Object::Ptr& object, const std::string& key) {
  if (object.isNull() || !object->has(key) || object->isNull(key)) return 0;
  try {
    return object->getValue<int64_t>(key);
  } catch (const Poco::Exception&) {
    return 0;
  }
}

}  // namespace

int64_t renewMarginMs(int64_t issuedAtMs, int64_t expiresAtMs) {
  const int64_t capMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(kAccessRenewMargin).count();
  return std::clamp<int64_t>((expiresAtMs - issuedAtMs) / 4, 0, capMs);
}

int64_t systemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MemberSession::MemberSession(Url edge, std::string pat, std::chrono::milliseconds timeout,
                             WallClock clock)
    : edge_(std::move(edge)),
      pat_(std::move(pat)),
      clock_(clock ? std::move(clock) : WallClock(systemNowMs)),
      api_(std::make_unique<ApiClient>(edge_, "", timeout)) {}

void MemberSession::exchange() {
  std::lock_guard<std::mutex> lock(mutex_);
  exchangeLocked();
}

void MemberSession::exchangeLocked() {
  // The last word before the PAT leaves this machine: never in the clear over a network.
  if (const std::string refusal = plainHttpRefusal(edge_); !refusal.empty()) {
    throw SessionError(0, refusal);
  }

  // The PAT travels in the body, never as a bearer value (the API refuses PATs there).
  std::ostringstream body;
  Poco::JSON::Object request;
  request.set("token", pat_);
  request.stringify(body);
  const int64_t sentAtMs = clock_();
  ++exchanges_;
  const ApiResponse response = api_->send("POST", "/api/v1/auth/token", body.str());

  if (response.status == 401) throw SessionError(401, kSignInAgainMessage);
  if (response.status != 200) {
    throw SessionError(response.status, "could not sign in: edge answered " +
                                            std::to_string(response.status) + ": " +
                                            response.errorText());
  }
  Poco::JSON::Object::Ptr root;
  try {
    Poco::JSON::Parser parser;
    root = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
    root = nullptr;
  }
  const std::string jwt = text(root, "access_token");
  if (jwt.empty()) {
    throw SessionError(response.status,
                       "could not sign in: the edge's answer has no access_token; is --edge "
                       "pointing at an Anonymily edge?");
  }

  // The lifetime counts from when we asked, by our own clock: a laptop whose clock is off
  // would otherwise renew on every request or hold tokens the edge already rejects.
  const int64_t expiresIn = integer(root, "expires_in");
  jwt_ = jwt;
  issuedAtMs_ = sentAtMs;
  expiresAtMs_ = expiresIn > 0 ? sentAtMs + expiresIn * 1000 : integer(root, "expires_at_ms");
  const Poco::JSON::Object::Ptr account = root->getObject("account");
  const Poco::JSON::Object::Ptr member = root->getObject("member");
  identity_.accountId = text(account, "id");
  identity_.accountName = text(account, "name");
  identity_.plan = text(account, "plan");
  identity_.memberId = text(member, "id");
  identity_.memberName = text(member, "name");
  identity_.owner = !member.isNull() && member->has("owner") && text(member, "owner") == "true";
}

std::string MemberSession::accessToken() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (jwt_.empty() || clock_() >= expiresAtMs_ - renewMarginMs(issuedAtMs_, expiresAtMs_)) {
    exchangeLocked();
  }
  return jwt_;
}

std::string MemberSession::renewAfterRefusal(const std::string& refused) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (jwt_.empty() || jwt_ == refused) exchangeLocked();
  return jwt_;
}

MemberIdentity MemberSession::identity() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return identity_;
}

int64_t MemberSession::expiresAtMs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return expiresAtMs_;
}

uint64_t MemberSession::exchanges() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return exchanges_;
}

ApiResponse sendAsMember(MemberSession& session, ApiClient& api, const std::string& method,
                         const std::string& path, const std::string& body, bool hookRoute) {
  const std::string first = session.accessToken();
  api.setToken(first);
  ApiResponse response = api.send(method, path, body);
  const bool refused = response.status == 401 || (hookRoute && response.status == 404);
  if (!refused) return response;

  // One renewal: the JWT may have expired or been cut short since we got it.
  api.setToken(session.renewAfterRefusal(first));
  response = api.send(method, path, body);
  if (response.status == 401) throw SessionError(401, kSignInAgainMessage);
  return response;
}

}  // namespace anm::cli
