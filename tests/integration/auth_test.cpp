// tests/integration/auth_test.cpp: sign-in, tokens, members and the audit log over real HTTP.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/auth.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/edge/account_routes.h"
#include "core/edge/bootstrap.h"
#include "core/edge/edge_server.h"
#include "core/edge/handlers.h"
#include "core/edge/secrets.h"
#include "core/store/store.h"
#include "test_http.h"

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;

struct Account {
  store::AccountRecord record;
  store::MemberRecord owner;
  std::string pat;
  std::string tokenId;
};

Poco::JSON::Object::Ptr json(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-auth-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    admin_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void startServer(std::chrono::seconds jwtTtl = std::chrono::seconds(900)) {
    config_.listenHost = "127.0.0.1";
    config_.listenPort = 0;
    config_.dataDir = dir_ + "/data";
    config_.sqlitePath = config_.dataDir + "/anonymily.db";
    config_.store = "sqlite:" + config_.sqlitePath;
    config_.maxThreads = 8;
    config_.jwtTtl = jwtTtl;
    server_ = std::make_unique<EdgeServer>(config_);
    server_->start();
    port_ = server_->port();

    // A second handle on the edge's database, as the admin command opens one while edges run.
    admin_ = store::openSqliteStore(config_.sqlitePath, edge::loadKeys(config_));
  }

  std::string addToken(const store::MemberRecord& member, const std::string& name,
                       std::string* tokenId = nullptr) {
    const std::string text = edge::newPersonalToken();
    store::TokenRecord token;
    token.id = edge::newRecordId("tok_");
    token.memberId = member.id;
    token.accountId = member.accountId;
    token.name = name;
    token.hash = edge::sha256Hex(text);
    token.createdAtMs = edge::nowMs();
    admin_->createToken(token);
    if (tokenId) *tokenId = token.id;
    return text;
  }

  Account addAccount(const std::string& name, store::Plan plan) {
    Account a;
    a.record.id = edge::newRecordId("acc_");
    a.record.name = name;
    a.record.plan = plan;
    a.record.createdAtMs = edge::nowMs();
    admin_->createAccount(a.record);
    a.owner.id = edge::newRecordId("mem_");
    a.owner.accountId = a.record.id;
    a.owner.name = "owner";
    a.owner.owner = true;
    a.owner.createdAtMs = edge::nowMs();
    admin_->createMember(a.owner);
    a.pat = addToken(a.owner, "initial", &a.tokenId);
    return a;
  }

  Response exchange(const std::string& pat) {
    return request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
  }

  std::string signIn(const std::string& pat) {
    const auto r = exchange(pat);
    EXPECT_EQ(r.status, 200) << r.body;
    return jsonField(r.body, "access_token");
  }

  Response api(const std::string& method, const std::string& target, const std::string& jwt,
               const std::string& body = "") {
    return apiRequest(port_, method, target, jwt, body);
  }

  std::string dir_;
  EdgeConfig config_;
  std::unique_ptr<EdgeServer> server_;
  std::unique_ptr<store::Store> admin_;
  uint16_t port_ = 0;
};

TEST_F(AuthTest, ExchangedJwtOpensTheAccount) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);

  const int64_t before = edge::nowMs();
  const auto r = exchange(acme.pat);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
  const auto issued = json(r.body);
  const std::string jwt = issued->getValue<std::string>("access_token");
  EXPECT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2);
  EXPECT_EQ(issued->getValue<std::string>("token_type"), "Bearer");
  EXPECT_EQ(issued->getValue<int64_t>("expires_in"), 900);
  EXPECT_GE(issued->getValue<int64_t>("expires_at_ms"), before / 1000 * 1000 + 900000);
  EXPECT_LE(issued->getValue<int64_t>("expires_at_ms"), edge::nowMs() + 900000);
  EXPECT_EQ(issued->getObject("account")->getValue<std::string>("id"), acme.record.id);
  EXPECT_EQ(issued->getObject("account")->getValue<std::string>("name"), "acme");
  EXPECT_EQ(issued->getObject("account")->getValue<std::string>("plan"), "pro");
  EXPECT_EQ(issued->getObject("member")->getValue<std::string>("id"), acme.owner.id);
  EXPECT_TRUE(issued->getObject("member")->getValue<bool>("owner"));

  // The exchange counts as the token's use.
  EXPECT_GE(admin_->findToken(acme.tokenId)->lastUsedAtMs, before);

  const auto account = api("GET", "/api/v1/account", jwt);
  ASSERT_EQ(account.status, 200) << account.body;
  const auto info = json(account.body);
  EXPECT_EQ(info->getValue<std::string>("id"), acme.record.id);
  EXPECT_EQ(info->getValue<std::string>("name"), "acme");
  EXPECT_EQ(info->getValue<std::string>("plan"), "pro");
  EXPECT_FALSE(info->getValue<bool>("disabled"));
  EXPECT_EQ(info->getValue<int64_t>("created_at_ms"), acme.record.createdAtMs);
  const auto limits = info->getObject("limits");
  EXPECT_TRUE(limits->isNull("named_hooks"));
  EXPECT_TRUE(limits->isNull("relays_per_hook"));
  EXPECT_TRUE(limits->isNull("members"));
  EXPECT_TRUE(limits->getValue<bool>("custom_response"));
  EXPECT_EQ(info->getObject("member")->getValue<std::string>("name"), "owner");
}

TEST_F(AuthTest, FreeAccountShowsItsLimits) {
  startServer();
  const Account small = addAccount("small", store::Plan::kFree);
  const auto r = api("GET", "/api/v1/account", signIn(small.pat));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto info = json(r.body);
  EXPECT_EQ(info->getValue<std::string>("plan"), "free");
  const auto limits = info->getObject("limits");
  EXPECT_EQ(limits->getValue<int64_t>("named_hooks"), 1);
  EXPECT_EQ(limits->getValue<int64_t>("relays_per_hook"), 1);
  EXPECT_EQ(limits->getValue<int64_t>("members"), 1);
  EXPECT_FALSE(limits->getValue<bool>("custom_response"));
}

TEST_F(AuthTest, WrongUnknownAndRevokedTokensGetOneAnswer) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  std::string revokedId;
  const std::string revoked = addToken(acme.owner, "old", &revokedId);
  ASSERT_TRUE(admin_->revokeToken(revokedId, edge::nowMs()));
  std::string wrong = acme.pat;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';

  for (const auto& pat : {wrong, edge::newPersonalToken(), revoked, std::string("nonsense")}) {
    const auto r = exchange(pat);
    EXPECT_EQ(r.status, 401) << pat;
    EXPECT_EQ(r.body, "{\"error\":\"invalid or revoked token\"}");
  }

  // What is not a request of the right shape is a 400, not a sign-in failure.
  EXPECT_EQ(request(port_, "POST", "/api/v1/auth/token", "{}").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/v1/auth/token", "{\"token\":1}").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"x\",\"tokn\":\"y\"}").status,
            400);
  EXPECT_EQ(request(port_, "GET", "/api/v1/auth/token").status, 405);
}

TEST_F(AuthTest, DisabledAccountIsRefusedAtSignInAndOnItsOpenTokens) {
  startServer();
  Account acme = addAccount("acme", store::Plan::kPro);
  const std::string jwt = signIn(acme.pat);
  ASSERT_EQ(api("GET", "/api/v1/account", jwt).status, 200);
  const auto hook = api("POST", "/api/v1/hooks", jwt, "{\"name\":\"main\"}");
  ASSERT_EQ(hook.status, 201) << hook.body;
  const std::string hookId = jsonField(hook.body, "id");

  acme.record.disabled = true;
  ASSERT_TRUE(admin_->updateAccount(acme.record));
  const std::string disabled = "{\"error\":\"account acme is disabled\"}";
  const auto r = exchange(acme.pat);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, disabled);

  // The JWT it holds still says who it is, so the answer says why, on every route that is
  // not a hook's; creating a hook with it does not fall back to an anonymous hook.
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/api/v1/account"},
                                                        {"GET", "/api/v1/tokens"},
                                                        {"GET", "/api/v1/hooks"},
                                                        {"POST", "/api/v1/hooks"}}) {
    const auto refused = api(method, target, jwt, method == "POST" ? "{}" : "");
    EXPECT_EQ(refused.status, 403) << method << " " << target;
    EXPECT_EQ(refused.body, disabled) << method << " " << target;
  }

  // Hook routes keep the one answer of a hook the caller may not use.
  const auto view = api("GET", "/api/v1/hooks/" + hookId, jwt);
  EXPECT_EQ(view.status, 404);
  EXPECT_EQ(view.body, "{\"error\":\"unknown hook\"}");
}

TEST_F(AuthTest, RevokingAPatEndsItsJwtOnTheNextRequest) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  std::string laptopId;
  const std::string laptop = addToken(acme.owner, "laptop", &laptopId);
  const std::string owner = signIn(acme.pat);
  const std::string other = signIn(laptop);
  ASSERT_EQ(api("GET", "/api/v1/account", other).status, 200);

  const auto revoke = api("DELETE", "/api/v1/tokens/" + laptopId, owner);
  EXPECT_EQ(revoke.status, 204) << revoke.body;
  EXPECT_EQ(revoke.body, "");
  EXPECT_GT(admin_->findToken(laptopId)->revokedAtMs, 0);

  const auto after = api("GET", "/api/v1/account", other);
  EXPECT_EQ(after.status, 401);
  EXPECT_EQ(after.body, "{\"error\":\"access token expired or invalid; sign in again\"}");
  EXPECT_EQ(exchange(laptop).status, 401);

  // The other token is untouched, and revoking again is answered alike.
  EXPECT_EQ(api("GET", "/api/v1/account", owner).status, 200);
  EXPECT_EQ(api("DELETE", "/api/v1/tokens/" + laptopId, owner).status, 204);

  // A member may revoke the token it is signed in with; that ends its own JWT.
  EXPECT_EQ(api("DELETE", "/api/v1/tokens/" + acme.tokenId, owner).status, 204);
  EXPECT_EQ(api("GET", "/api/v1/account", owner).status, 401);
}

TEST_F(AuthTest, RevokingATokenClosesTheStreamsOpenedWithIt) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  std::string laptopId;
  const std::string laptop = addToken(acme.owner, "laptop", &laptopId);
  const std::string owner = signIn(acme.pat);
  const std::string other = signIn(laptop);
  const auto hook = api("POST", "/api/v1/hooks", owner, "{\"name\":\"main\"}");
  ASSERT_EQ(hook.status, 201) << hook.body;
  const std::string hookId = jsonField(hook.body, "id");

  SseClient revoked(port_, hookId, other);
  ASSERT_EQ(revoked.head().status, 200) << revoked.head().body;
  SseClient kept(port_, hookId, owner);
  ASSERT_EQ(kept.head().status, 200) << kept.head().body;

  // Both streams are live before the revocation.
  ASSERT_EQ(request(port_, "POST", "/h/" + hookId, "one").status, 200);
  Frame frame;
  ASSERT_TRUE(revoked.nextEvent(frame));
  ASSERT_TRUE(kept.nextEvent(frame));
  const int64_t firstId = frame.id;

  ASSERT_EQ(api("DELETE", "/api/v1/tokens/" + laptopId, owner).status, 204);

  // The revoked token's stream ends (the read sees the close, long before its 10 s timeout);
  // the owner's stream goes on and gets the next event.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(revoked.nextEvent(frame));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(request(port_, "POST", "/h/" + hookId, "two").status, 200);
  ASSERT_TRUE(kept.nextEvent(frame));
  EXPECT_GT(frame.id, firstId);

  // A new stream with the revoked token's JWT is refused like an unknown hook.
  SseClient again(port_, hookId, other);
  EXPECT_EQ(again.head().status, 404);
}

TEST_F(AuthTest, ExpiredJwtIsRefused) {
  startServer(std::chrono::seconds(60));
  const Account acme = addAccount("acme", store::Plan::kPro);
  const auto issued = json(exchange(acme.pat).body);
  EXPECT_EQ(issued->getValue<int64_t>("expires_in"), 60);

  // Signed with the edges' key (shared through the store) as if issued two minutes ago.
  edge::Authenticator signer(*admin_, config_);
  edge::AccessClaims claims;
  claims.memberId = acme.owner.id;
  claims.accountId = acme.record.id;
  claims.tokenId = acme.tokenId;
  claims.issuedAtS = edge::nowMs() / 1000 - 120;
  claims.expiresAtS = claims.issuedAtS + 60;
  const auto expired = api("GET", "/api/v1/account", signer.sign(claims, config_.jwtIssuer));
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.header("WWW-Authenticate"), "Bearer realm=\"anonymily\"");

  // The same claims with a current iat pass, so the key and the claims were right.
  claims.issuedAtS = edge::nowMs() / 1000;
  claims.expiresAtS = claims.issuedAtS + 60;
  EXPECT_EQ(api("GET", "/api/v1/account", signer.sign(claims, config_.jwtIssuer)).status, 200);
}

TEST_F(AuthTest, PatIsNeverAcceptedAsABearer) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  for (const char* target :
       {"/api/v1/account", "/api/v1/account/members", "/api/v1/tokens", "/api/v1/audit"}) {
    const auto r = api("GET", target, acme.pat);
    EXPECT_EQ(r.status, 401) << target;
    EXPECT_EQ(r.body, "{\"error\":\"access token expired or invalid; sign in again\"}");
    EXPECT_EQ(request(port_, "GET", target).status, 401) << target;
  }
  EXPECT_EQ(api("POST", "/api/v1/tokens", acme.pat, "{\"name\":\"x\"}").status, 401);
  EXPECT_EQ(api("DELETE", "/api/v1/tokens/" + acme.tokenId, acme.pat).status, 401);
  EXPECT_EQ(admin_->findToken(acme.tokenId)->revokedAtMs, 0);
}

TEST_F(AuthTest, TokenListNeverShowsTokenTextOrHash) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  const std::string jwt = signIn(acme.pat);

  const auto created = api("POST", "/api/v1/tokens", jwt, "{\"name\":\"ci runner\"}");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("Cache-Control"), "no-store");
  const std::string text = jsonField(created.body, "token");
  const std::string id = jsonField(created.body, "id");
  EXPECT_EQ(text.rfind("anm_pat_", 0), 0u);
  EXPECT_EQ(text.size(), 60u);
  EXPECT_EQ(id.rfind("tok_", 0), 0u);
  EXPECT_EQ(jsonField(created.body, "name"), "ci runner");
  EXPECT_EQ(signIn(text).empty(), false);

  const auto list = api("GET", "/api/v1/tokens", jwt);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.body.find(text), std::string::npos);
  EXPECT_EQ(list.body.find(acme.pat), std::string::npos);
  EXPECT_EQ(list.body.find(edge::sha256Hex(text)), std::string::npos);
  EXPECT_EQ(list.body.find(edge::sha256Hex(acme.pat)), std::string::npos);
  EXPECT_EQ(list.body.find("anm_pat_"), std::string::npos);
  const auto tokens = json(list.body)->getArray("tokens");
  ASSERT_EQ(tokens->size(), 2u);
  const auto second = tokens->getObject(1);
  EXPECT_EQ(second->getValue<std::string>("id"), id);
  EXPECT_EQ(second->getValue<std::string>("name"), "ci runner");
  EXPECT_EQ(second->getValue<std::string>("member"), acme.owner.id);
  EXPECT_GT(second->getValue<int64_t>("created_at_ms"), 0);
  EXPECT_GT(second->getValue<int64_t>("last_used_at_ms"), 0);
  EXPECT_EQ(second->getValue<int64_t>("revoked_at_ms"), 0);
  EXPECT_EQ(second->size(), 6u);

  // Names: 1..64 printable bytes.
  EXPECT_EQ(api("POST", "/api/v1/tokens", jwt, "{\"name\":\"\"}").status, 400);
  EXPECT_EQ(api("POST", "/api/v1/tokens", jwt, "{}").status, 400);
  EXPECT_EQ(api("POST", "/api/v1/tokens", jwt, "{\"name\":\"a\\u0001b\"}").status, 400);
  EXPECT_EQ(
      api("POST", "/api/v1/tokens", jwt, "{\"name\":\"" + std::string(65, 'x') + "\"}").status,
      400);
  EXPECT_EQ(
      api("POST", "/api/v1/tokens", jwt, "{\"name\":\"" + std::string(64, 'x') + "\"}").status,
      201);
}

TEST_F(AuthTest, LiveTokensPerMemberAreBounded) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  for (size_t i = 1; i < edge::kMaxLiveTokensPerMember; ++i) addToken(acme.owner, "t");
  const std::string jwt = signIn(acme.pat);
  const auto refused = api("POST", "/api/v1/tokens", jwt, "{\"name\":\"one more\"}");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("revoke one first"), std::string::npos) << refused.body;

  // A revoked token frees its place.
  ASSERT_EQ(api("DELETE", "/api/v1/tokens/" + admin_->listTokens(acme.record.id)[1].id, jwt).status,
            204);
  EXPECT_EQ(api("POST", "/api/v1/tokens", jwt, "{\"name\":\"one more\"}").status, 201);
}

TEST_F(AuthTest, ProOwnerAddsMembersWhoSeeOnlyTheirOwnTokens) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  const std::string owner = signIn(acme.pat);

  const auto added = api("POST", "/api/v1/account/members", owner, "{\"name\":\"bob\"}");
  ASSERT_EQ(added.status, 201) << added.body;
  const auto body = json(added.body);
  const auto member = body->getObject("member");
  EXPECT_EQ(member->getValue<std::string>("name"), "bob");
  EXPECT_FALSE(member->getValue<bool>("owner"));
  EXPECT_EQ(member->getValue<std::string>("id").rfind("mem_", 0), 0u);
  const auto token = body->getObject("token");
  EXPECT_EQ(token->getValue<std::string>("name"), "initial");
  const std::string bobPat = token->getValue<std::string>("token");
  const std::string bobTokenId = token->getValue<std::string>("id");

  // Bob signs in with the PAT he was given, and is not the owner.
  const auto bobSignIn = json(exchange(bobPat).body);
  EXPECT_FALSE(bobSignIn->getObject("member")->getValue<bool>("owner"));
  const std::string bob = bobSignIn->getValue<std::string>("access_token");

  const auto members = json(api("GET", "/api/v1/account/members", bob).body)->getArray("members");
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ(members->getObject(0)->getValue<std::string>("name"), "owner");
  EXPECT_TRUE(members->getObject(0)->getValue<bool>("owner"));
  EXPECT_EQ(members->getObject(1)->getValue<std::string>("name"), "bob");

  // Only the owner adds members; a taken name is a conflict; names have one charset.
  const auto notOwner = api("POST", "/api/v1/account/members", bob, "{\"name\":\"carol\"}");
  EXPECT_EQ(notOwner.status, 403);
  EXPECT_EQ(notOwner.body, "{\"error\":\"only the account's owner may add members\"}");
  EXPECT_EQ(api("POST", "/api/v1/account/members", owner, "{\"name\":\"bob\"}").status, 409);
  EXPECT_EQ(api("POST", "/api/v1/account/members", owner, "{\"name\":\"Bob\"}").status, 400);
  EXPECT_EQ(api("POST", "/api/v1/account/members", owner, "{}").status, 400);

  // Bob sees his own tokens, the owner sees every member's.
  const auto bobTokens = json(api("GET", "/api/v1/tokens", bob).body)->getArray("tokens");
  ASSERT_EQ(bobTokens->size(), 1u);
  EXPECT_EQ(bobTokens->getObject(0)->getValue<std::string>("id"), bobTokenId);
  EXPECT_EQ(json(api("GET", "/api/v1/tokens", owner).body)->getArray("tokens")->size(), 2u);

  // Bob cannot revoke the owner's token (the answer of an unknown id); the owner can revoke his.
  const auto hidden = api("DELETE", "/api/v1/tokens/" + acme.tokenId, bob);
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(hidden.body, "{\"error\":\"unknown token\"}");
  EXPECT_EQ(api("DELETE", "/api/v1/tokens/tok_unknown", bob).body, hidden.body);
  EXPECT_EQ(admin_->findToken(acme.tokenId)->revokedAtMs, 0);
  EXPECT_EQ(api("DELETE", "/api/v1/tokens/" + bobTokenId, owner).status, 204);
  EXPECT_EQ(api("GET", "/api/v1/account", bob).status, 401);
}

TEST_F(AuthTest, FreeOwnerCannotAddMembers) {
  startServer();
  const Account small = addAccount("small", store::Plan::kFree);
  const auto r = api("POST", "/api/v1/account/members", signIn(small.pat), "{\"name\":\"bob\"}");
  EXPECT_EQ(r.status, 403);
  const auto body = json(r.body);
  EXPECT_EQ(body->getValue<std::string>("plan"), "free");
  const std::string error = body->getValue<std::string>("error");
  EXPECT_EQ(error.rfind("another member needs the pro plan: the free plan allows 1 member", 0), 0u)
      << error;
  EXPECT_EQ(admin_->listMembers(small.record.id).size(), 1u);
}

TEST_F(AuthTest, AccountsSeeNothingOfEachOther) {
  startServer();
  const Account a = addAccount("alpha", store::Plan::kPro);
  const Account b = addAccount("beta", store::Plan::kPro);
  const std::string jwtA = signIn(a.pat);
  const std::string jwtB = signIn(b.pat);
  ASSERT_EQ(api("POST", "/api/v1/account/members", jwtA, "{\"name\":\"ann\"}").status, 201);

  const auto tokens = api("GET", "/api/v1/tokens", jwtB);
  EXPECT_EQ(tokens.body.find(a.tokenId), std::string::npos);
  EXPECT_EQ(json(tokens.body)->getArray("tokens")->size(), 1u);
  const auto members = api("GET", "/api/v1/account/members", jwtB);
  EXPECT_EQ(members.body.find("ann"), std::string::npos);
  EXPECT_EQ(api("DELETE", "/api/v1/tokens/" + a.tokenId, jwtB).status, 404);
  EXPECT_EQ(admin_->findToken(a.tokenId)->revokedAtMs, 0);

  // Alpha's log holds what alpha did (the check below would pass on an empty log otherwise);
  // beta's holds only beta's own sign-in, by beta's owner, naming nothing of alpha.
  const auto auditA = json(api("GET", "/api/v1/audit", jwtA).body)->getArray("entries");
  std::vector<std::string> actionsA;
  for (size_t i = 0; i < auditA->size(); ++i) {
    actionsA.push_back(
        auditA->getObject(static_cast<unsigned>(i))->getValue<std::string>("action"));
  }
  EXPECT_NE(std::find(actionsA.begin(), actionsA.end(), "member.create"), actionsA.end());
  const auto audit = api("GET", "/api/v1/audit", jwtB);
  ASSERT_EQ(audit.status, 200) << audit.body;
  const auto entriesB = json(audit.body)->getArray("entries");
  ASSERT_EQ(entriesB->size(), 1u) << audit.body;
  const auto onlyB = entriesB->getObject(0);
  EXPECT_EQ(onlyB->getValue<std::string>("action"), "token.exchange");
  EXPECT_EQ(onlyB->getValue<std::string>("actor"), "member:" + b.owner.id);
  EXPECT_EQ(onlyB->getValue<std::string>("detail"), "token=" + b.tokenId);
  EXPECT_EQ(audit.body.find(a.owner.id), std::string::npos);
  EXPECT_EQ(audit.body.find(a.tokenId), std::string::npos);
}

TEST_F(AuthTest, AuditLogRecordsEveryAccountChangeForTheOwnerOnly) {
  startServer();
  const Account acme = addAccount("acme", store::Plan::kPro);
  const int64_t before = edge::nowMs();
  const std::string owner = signIn(acme.pat);
  const auto created = api("POST", "/api/v1/tokens", owner, "{\"name\":\"laptop\"}");
  ASSERT_EQ(created.status, 201);
  const std::string laptopId = jsonField(created.body, "id");
  ASSERT_EQ(api("DELETE", "/api/v1/tokens/" + laptopId, owner).status, 204);
  const auto added = api("POST", "/api/v1/account/members", owner, "{\"name\":\"bob\"}");
  ASSERT_EQ(added.status, 201);
  const std::string bobId = json(added.body)->getObject("member")->getValue<std::string>("id");
  const std::string bobPat = json(added.body)->getObject("token")->getValue<std::string>("token");
  const std::string bob = signIn(bobPat);
  const int64_t after = edge::nowMs();

  const auto r = api("GET", "/api/v1/audit", owner);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto entries = json(r.body)->getArray("entries");
  std::vector<std::string> actions;
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto e = entries->getObject(static_cast<unsigned>(i));
    actions.push_back(e->getValue<std::string>("action"));
    EXPECT_EQ(e->getValue<std::string>("remote"), "127.0.0.1");
    EXPECT_GE(e->getValue<int64_t>("at_ms"), before);
    EXPECT_LE(e->getValue<int64_t>("at_ms"), after);
    EXPECT_EQ(e->getValue<std::string>("hook"), "");
    EXPECT_EQ(e->getValue<int64_t>("event"), 0);
    const std::string expectedActor =
        "member:" + (i + 1 == entries->size() ? bobId : acme.owner.id);
    EXPECT_EQ(e->getValue<std::string>("actor"), expectedActor) << actions.back();
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"token.exchange", "token.create", "token.revoke",
                                               "member.create", "token.create", "token.exchange"}));
  EXPECT_NE(entries->getObject(2)->getValue<std::string>("detail").find(laptopId),
            std::string::npos);
  EXPECT_EQ(r.body.find("anm_pat_"), std::string::npos);

  // Paging: after and limit, with next_after to go on from.
  const auto page = json(api("GET", "/api/v1/audit?limit=2", owner).body);
  ASSERT_EQ(page->getArray("entries")->size(), 2u);
  const int64_t next = page->getValue<int64_t>("next_after");
  EXPECT_EQ(next, page->getArray("entries")->getObject(1)->getValue<int64_t>("id"));
  const auto rest = json(api("GET", "/api/v1/audit?after=" + std::to_string(next), owner).body);
  EXPECT_EQ(rest->getArray("entries")->getObject(0)->getValue<std::string>("action"),
            "token.revoke");
  EXPECT_EQ(api("GET", "/api/v1/audit?limit=0", owner).status, 400);
  EXPECT_EQ(api("GET", "/api/v1/audit?limit=1001", owner).status, 400);
  EXPECT_EQ(api("GET", "/api/v1/audit?after=-1", owner).status, 400);

  // Only the owner reads it.
  const auto refused = api("GET", "/api/v1/audit", bob);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body, "{\"error\":\"only the account's owner may read the audit log\"}");
}

TEST_F(AuthTest, WrongMethodsAreAnswered405WithAllow) {
  startServer();
  const auto r = request(port_, "PUT", "/api/v1/tokens");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, POST");
  EXPECT_EQ(request(port_, "POST", "/api/v1/account").status, 405);
  EXPECT_EQ(request(port_, "GET", "/api/v1/tokens/tok_x").status, 405);
  EXPECT_EQ(request(port_, "GET", "/api/v1/account/nothing").status, 404);
}

}  // namespace
}  // namespace anm::test
