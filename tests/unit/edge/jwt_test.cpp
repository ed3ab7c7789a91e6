// tests/unit/edge/jwt_test.cpp: access tokens: exchange, signing and every verification check.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

#include "core/edge/auth.h"
#include "core/edge/config.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

// The account part of a store, in memory: the checks under test are the authenticator's, and
// the backends' own tests cover the SQLite and MySQL versions of these methods. Everything
// else throws, as an unsupported store does.
class AccountMemoryStore : public store::Store {
 public:
  void createHook(const store::HookRecord&) override { throw store::StoreError("unused"); }
  std::optional<store::HookRecord> findHook(const std::string&) override { return {}; }
  int64_t appendEvent(store::EventRecord) override { throw store::StoreError("unused"); }
  std::vector<store::EventRecord> listEvents(const std::string&, int64_t, size_t, bool,
                                             bool) override {
    return {};
  }
  std::optional<store::EventRecord> getEvent(const std::string&, int64_t) override { return {}; }
  void addDelivery(const store::DeliveryRecord&) override { throw store::StoreError("unused"); }
  std::vector<store::DeliveryRecord> listDeliveries(int64_t) override { return {}; }

  void createAccount(const store::AccountRecord& a) override { accounts_[a.id] = a; }
  std::optional<store::AccountRecord> findAccount(const std::string& id) override {
    return find(accounts_, id);
  }
  bool updateAccount(const store::AccountRecord& a) override {
    if (!accounts_.count(a.id)) return false;
    accounts_[a.id] = a;
    return true;
  }
  void createMember(const store::MemberRecord& m) override { members_[m.id] = m; }
  std::optional<store::MemberRecord> findMember(const std::string& id) override {
    return find(members_, id);
  }
  void createToken(const store::TokenRecord& t) override { tokens_[t.id] = t; }
  std::optional<store::TokenRecord> findTokenByHash(const std::string& hash) override {
    for (const auto& [id, token] : tokens_) {
      if (token.hash == hash) return token;
    }
    return std::nullopt;
  }
  std::optional<store::TokenRecord> findToken(const std::string& id) override {
    return find(tokens_, id);
  }
  bool revokeToken(const std::string& id, int64_t nowMs) override {
    auto it = tokens_.find(id);
    if (it == tokens_.end() || it->second.revokedAtMs != 0) return false;
    it->second.revokedAtMs = nowMs;
    return true;
  }
  void endSession(const std::string& id, int64_t untilMs, int64_t) override {
    endedSessions_[id] = untilMs;
  }
  bool sessionEnded(const std::string& id, int64_t nowMs) override {
    const auto it = endedSessions_.find(id);
    return it != endedSessions_.end() && nowMs < it->second;
  }
  void touchToken(const std::string& id, int64_t nowMs) override {
    auto it = tokens_.find(id);
    if (it != tokens_.end()) it->second.lastUsedAtMs = nowMs;
  }
  std::optional<std::string> getSetting(const std::string& name) override {
    return find(settings_, name);
  }
  std::string putSettingIfAbsent(const std::string& name, const std::string& value) override {
    return settings_.emplace(name, value).first->second;
  }

 private:
  template <typename M>
  static std::optional<typename M::mapped_type> find(const M& map, const std::string& key) {
    const auto it = map.find(key);
    if (it == map.end()) return std::nullopt;
    return it->second;
  }

  std::map<std::string, store::AccountRecord> accounts_;
  std::map<std::string, store::MemberRecord> members_;
  std::map<std::string, store::TokenRecord> tokens_;
  std::map<std::string, int64_t> endedSessions_;
  std::map<std::string, std::string> settings_;
};

constexpr int64_t kNowMs = INT64_C(1796000000123);
constexpr int64_t kNowS = kNowMs / 1000;

std::string base64Url(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  encoder << bytes;
  encoder.close();
  return out.str();
}

std::string unBase64Url(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  return std::string(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
}

std::string hmac(const EVP_MD* md, const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string fromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::vector<std::string> parts(const std::string& jwt) {
  std::vector<std::string> out;
  std::stringstream in(jwt);
  std::string part;
  while (std::getline(in, part, '.')) out.push_back(part);
  return out;
}

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.jwtTtl = std::chrono::seconds(900);
    config_.jwtIssuer = "anonymily";

    account_.id = newRecordId("acc_");
    account_.name = "acme";
    account_.plan = store::Plan::kPro;
    store_.createAccount(account_);
    member_.id = newRecordId("mem_");
    member_.accountId = account_.id;
    member_.name = "owner";
    member_.owner = true;
    store_.createMember(member_);
    pat_ = addToken(member_, "laptop");

    auth_ = std::make_unique<Authenticator>(store_, config_);
  }

  // A PAT of the member, stored as the edge stores one; returns its text.
  std::string addToken(const store::MemberRecord& member, const std::string& name) {
    const std::string text = newPersonalToken();
    store::TokenRecord token;
    token.id = newRecordId("tok_");
    token.memberId = member.id;
    token.accountId = member.accountId;
    token.name = name;
    token.hash = sha256Hex(text);
    token.createdAtMs = kNowMs - 1000;
    store_.createToken(token);
    tokenIds_[text] = token.id;
    return text;
  }

  // A member of the account other than its owner, stored.
  store::MemberRecord addMember(const std::string& name) {
    store::MemberRecord member = member_;
    member.id = newRecordId("mem_");
    member.name = name;
    member.owner = false;
    store_.createMember(member);
    return member;
  }

  std::string key() { return fromHex(*store_.getSetting("auth.jwt_key")); }

  // A token signed with the edge's own key over the given header and payload texts.
  std::string forge(const std::string& header, const std::string& payload,
                    const EVP_MD* md = EVP_sha256()) {
    const std::string input = base64Url(header) + "." + base64Url(payload);
    return input + "." + base64Url(hmac(md, key(), input));
  }

  std::string claimsJson(int64_t iat, int64_t nbf, int64_t exp,
                         const std::string& iss = "anonymily", const std::string& extra = "") {
    return "{\"iss\":\"" + iss + "\",\"sub\":\"" + member_.id + "\",\"acc\":\"" + account_.id +
           "\",\"tid\":\"" + tokenIds_[pat_] + "\",\"iat\":" + std::to_string(iat) +
           ",\"nbf\":" + std::to_string(nbf) + ",\"exp\":" + std::to_string(exp) +
           ",\"jti\":\"x\"" + extra + "}";
  }

  AccessClaims claimsAt(int64_t iatS, int64_t ttlS = 900) {
    AccessClaims claims;
    claims.memberId = member_.id;
    claims.accountId = account_.id;
    claims.tokenId = tokenIds_[pat_];
    claims.issuedAtS = iatS;
    claims.expiresAtS = iatS + ttlS;
    return claims;
  }

  static constexpr char kHeader[] = R"({"alg":"HS256","typ":"JWT"})";

  EdgeConfig config_;
  AccountMemoryStore store_;
  store::AccountRecord account_;
  store::MemberRecord member_;
  std::string pat_;
  std::map<std::string, std::string> tokenIds_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(JwtTest, ExchangeIssuesAnHs256TokenWithEveryClaim) {
  const auto issued = auth_->exchange(pat_, kNowMs);
  const auto p = parts(issued.jwt);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(unBase64Url(p[0]), kHeader);

  const auto claims = parseObject(unBase64Url(p[1]));
  EXPECT_EQ(claims->getValue<std::string>("iss"), "anonymily");
  EXPECT_EQ(claims->getValue<std::string>("sub"), member_.id);
  EXPECT_EQ(claims->getValue<std::string>("acc"), account_.id);
  EXPECT_EQ(claims->getValue<std::string>("tid"), tokenIds_[pat_]);
  EXPECT_EQ(claims->getValue<Poco::Int64>("iat"), kNowS);
  EXPECT_EQ(claims->getValue<Poco::Int64>("nbf"), kNowS);
  EXPECT_EQ(claims->getValue<Poco::Int64>("exp"), kNowS + 900);
  EXPECT_EQ(claims->getValue<std::string>("jti").size(), 26u);
  EXPECT_EQ(issued.expiresAtMs, (kNowS + 900) * 1000);

  // The signature is HMAC-SHA256 of the first two parts under the stored 32-byte key.
  EXPECT_EQ(key().size(), 32u);
  EXPECT_EQ(unBase64Url(p[2]), hmac(EVP_sha256(), key(), p[0] + "." + p[1]));

  EXPECT_EQ(issued.account.id, account_.id);
  EXPECT_EQ(issued.member.id, member_.id);
  EXPECT_EQ(issued.token.id, tokenIds_[pat_]);
  EXPECT_EQ(store_.findToken(tokenIds_[pat_])->lastUsedAtMs, kNowMs);

  const auto verified = auth_->verify(issued.jwt, kNowMs);
  ASSERT_TRUE(verified);
  EXPECT_EQ(verified->memberId, member_.id);
  EXPECT_EQ(verified->tokenId, tokenIds_[pat_]);
  EXPECT_EQ(verified->expiresAtS - verified->issuedAtS, 900);
}

TEST_F(JwtTest, TwoTokensOfOneExchangeDifferInTheirJti) {
  EXPECT_NE(auth_->exchange(pat_, kNowMs).jwt, auth_->exchange(pat_, kNowMs).jwt);
}

TEST_F(JwtTest, TtlComesFromTheConfiguration) {
  config_.jwtTtl = std::chrono::seconds(60);
  Authenticator shortLived(store_, config_);
  const auto issued = shortLived.exchange(pat_, kNowMs);
  EXPECT_EQ(issued.expiresAtMs, (kNowS + 60) * 1000);
  EXPECT_TRUE(shortLived.verify(issued.jwt, kNowMs + 60000));
  EXPECT_FALSE(shortLived.verify(issued.jwt, (kNowS + 60) * 1000 + kClockLeewayMs));
}

TEST_F(JwtTest, EdgesOnOneStoreShareTheKey) {
  const std::string stored = *store_.getSetting("auth.jwt_key");
  EXPECT_EQ(stored.size(), 64u);
  Authenticator second(store_, config_);
  EXPECT_EQ(*store_.getSetting("auth.jwt_key"), stored);
  EXPECT_TRUE(second.verify(auth_->exchange(pat_, kNowMs).jwt, kNowMs));
}

TEST_F(JwtTest, AMalformedStoredKeyIsAStoreError) {
  AccountMemoryStore other;
  other.putSettingIfAbsent("auth.jwt_key", "not hex");
  EXPECT_THROW(Authenticator(other, config_), store::StoreError);
}

TEST_F(JwtTest, AlgNoneIsRefused) {
  const std::string valid = auth_->exchange(pat_, kNowMs).jwt;
  const auto p = parts(valid);
  const std::string none = base64Url(R"({"alg":"none","typ":"JWT"})");
  EXPECT_FALSE(auth_->verify(none + "." + p[1] + ".", kNowMs));
  EXPECT_FALSE(auth_->verify(none + "." + p[1] + "." + p[2], kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":"none","typ":"JWT"})", unBase64Url(p[1])), kNowMs));
}

TEST_F(JwtTest, OtherAlgorithmsAreRefusedEvenWhenSignedWithTheKey) {
  const std::string payload = claimsJson(kNowS, kNowS, kNowS + 900);
  ASSERT_TRUE(auth_->verify(forge(kHeader, payload), kNowMs));
  EXPECT_FALSE(
      auth_->verify(forge(R"({"alg":"HS512","typ":"JWT"})", payload, EVP_sha512()), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":"HS512","typ":"JWT"})", payload), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":"hs256","typ":"JWT"})", payload), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":"RS256","typ":"JWT"})", payload), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"typ":"JWT"})", payload), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":["HS256"]})", payload), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":"HS256","typ":"JWE"})", payload), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(R"({"alg":"HS256","crit":["exp"]})", payload), kNowMs));
  EXPECT_TRUE(auth_->verify(forge(R"({"alg":"HS256"})", payload), kNowMs));
}

TEST_F(JwtTest, AChangedPayloadIsRefused) {
  const std::string valid = auth_->exchange(pat_, kNowMs).jwt;
  const auto p = parts(valid);
  std::string payload = unBase64Url(p[1]);
  const auto at = payload.find(member_.id);
  ASSERT_NE(at, std::string::npos);
  payload.replace(at, member_.id.size(), newRecordId("mem_"));
  EXPECT_FALSE(auth_->verify(p[0] + "." + base64Url(payload) + "." + p[2], kNowMs));

  // A longer lifetime under the old signature.
  std::string later = unBase64Url(p[1]);
  const std::string exp = "\"exp\":" + std::to_string(kNowS + 900);
  later.replace(later.find(exp), exp.size(), "\"exp\":" + std::to_string(kNowS + 90000));
  EXPECT_FALSE(auth_->verify(p[0] + "." + base64Url(later) + "." + p[2], kNowMs));

  // One flipped bit in the signature.
  std::string signature = unBase64Url(p[2]);
  signature[5] = static_cast<char>(signature[5] ^ 0x01);
  EXPECT_FALSE(auth_->verify(p[0] + "." + p[1] + "." + base64Url(signature), kNowMs));
}

TEST_F(JwtTest, ATokenOfAnotherKeyIsRefused) {
  AccountMemoryStore otherStore;
  Authenticator other(otherStore, config_);
  const std::string foreign = other.sign(claimsAt(kNowS), "anonymily");
  ASSERT_TRUE(other.verify(foreign, kNowMs));
  EXPECT_FALSE(auth_->verify(foreign, kNowMs));
}

TEST_F(JwtTest, ExpiryCountsWithFiveSecondsOfLeeway) {
  // Issued 1000 s ago with the longest lifetime: expired 100 s ago.
  EXPECT_FALSE(auth_->verify(auth_->sign(claimsAt(kNowS - 1000), "anonymily"), kNowMs));

  // exp just inside and just outside the leeway.
  const int64_t expInside = kNowS - 4;
  const int64_t expOutside = kNowS - 6;
  EXPECT_TRUE(auth_->verify(forge(kHeader, claimsJson(kNowS - 60, kNowS - 60, expInside)), kNowMs));
  EXPECT_FALSE(
      auth_->verify(forge(kHeader, claimsJson(kNowS - 60, kNowS - 60, expOutside)), kNowMs));
}

TEST_F(JwtTest, ATokenNotYetValidIsRefused) {
  EXPECT_FALSE(auth_->verify(auth_->sign(claimsAt(kNowS + 60), "anonymily"), kNowMs));
  EXPECT_FALSE(auth_->verify(forge(kHeader, claimsJson(kNowS, kNowS + 7, kNowS + 900)), kNowMs));
  EXPECT_TRUE(auth_->verify(forge(kHeader, claimsJson(kNowS, kNowS + 4, kNowS + 900)), kNowMs));
}

TEST_F(JwtTest, AnotherIssuerIsRefused) {
  EXPECT_FALSE(auth_->verify(auth_->sign(claimsAt(kNowS), "someone-else"), kNowMs));
  EXPECT_FALSE(auth_->verify(auth_->sign(claimsAt(kNowS), ""), kNowMs));
  EXPECT_TRUE(auth_->verify(auth_->sign(claimsAt(kNowS), "anonymily"), kNowMs));
}

TEST_F(JwtTest, MalformedTokensAreRefused) {
  const std::string valid = auth_->exchange(pat_, kNowMs).jwt;
  const auto p = parts(valid);
  const std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "a.b",
      p[0] + "." + p[1],
      valid + ".",
      valid + ".x",
      "." + p[1] + "." + p[2],
      p[0] + ".." + p[2],
      p[0] + "." + p[1] + ".",
      p[0] + "=." + p[1] + "." + p[2],  // padding
      p[0] + "." + p[1] + "." + p[2] + "=",
      p[0] + "." + p[1] + "+" + "." + p[2],  // standard, not URL, alphabet
      p[0] + "." + p[1] + "." + p[2] + "A",  // signature of the wrong length
      " " + valid,
      valid + std::string(kMaxJwtBytes, 'A'),
  };
  for (const auto& token : bad) EXPECT_FALSE(auth_->verify(token, kNowMs)) << token;

  // Well signed, but not the JSON objects with the claims the edge issues.
  const std::vector<std::pair<std::string, std::string>> signedBad = {
      {"[\"HS256\"]", claimsJson(kNowS, kNowS, kNowS + 900)},
      {"not json", claimsJson(kNowS, kNowS, kNowS + 900)},
      {kHeader, "[]"},
      {kHeader, "{}"},
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"exp\":99999999999")},
      {kHeader,
       "{\"iss\":\"anonymily\",\"sub\":\"m\",\"acc\":\"a\",\"iat\":1,\"nbf\":1,"
       "\"exp\":99999999999}"},  // no tid
      {kHeader,
       "{\"iss\":\"anonymily\",\"sub\":\"m\",\"acc\":\"a\",\"tid\":\"t\",\"iat\":1,"
       "\"nbf\":1,\"exp\":\"99999999999\"}"},  // exp as a string
      {kHeader,
       "{\"iss\":\"anonymily\",\"sub\":\"m\",\"acc\":\"a\",\"tid\":\"t\",\"iat\":1,"
       "\"nbf\":true,\"exp\":99999999999}"},  // nbf as a boolean
      {kHeader,
       "{\"iss\":\"anonymily\",\"sub\":\"\",\"acc\":\"a\",\"tid\":\"t\",\"iat\":1,"
       "\"nbf\":1,\"exp\":99999999999}"},  // empty sub
      {kHeader,
       "{\"iss\":\"anonymily\",\"sub\":\"m\",\"acc\":\"a\",\"tid\":\"t\",\"iat\":1,"
       "\"nbf\":1,\"exp\":99999999999}"},  // no jti: a sign-out could not end it
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"jti\":\"\"")},
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"ses\":false")},
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"ses\":1")},
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"ses\":\"true\"")},
      // A session's token names its sign-in, which cannot be later than the token itself.
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"ses\":true")},
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily",
                           ",\"ses\":true,\"sid\":\"\",\"auth_time\":" + std::to_string(kNowS))},
      {kHeader, claimsJson(kNowS, kNowS, kNowS + 900, "anonymily", ",\"ses\":true,\"sid\":\"s\"")},
      {kHeader,
       claimsJson(kNowS, kNowS, kNowS + 900, "anonymily",
                  ",\"ses\":true,\"sid\":\"s\",\"auth_time\":" + std::to_string(kNowS + 1))},
  };
  for (const auto& [header, payload] : signedBad) {
    EXPECT_FALSE(auth_->verify(forge(header, payload), kNowMs)) << header << " " << payload;
  }
}

TEST_F(JwtTest, AuthenticateChecksTheTokenAndAccountOnEveryRequest) {
  const std::string jwt = auth_->exchange(pat_, kNowMs).jwt;
  const auto principal = auth_->authenticate("Bearer " + jwt, kNowMs);
  ASSERT_EQ(principal.kind, Principal::Kind::kMember);
  EXPECT_EQ(principal.member.id, member_.id);
  EXPECT_EQ(principal.account.id, account_.id);
  EXPECT_EQ(principal.tokenId, tokenIds_[pat_]);
  EXPECT_EQ(principal.actor(), "member:" + member_.id);

  // A revoked tid ends the JWT at once, long before it expires.
  ASSERT_TRUE(store_.revokeToken(tokenIds_[pat_], kNowMs + 1000));
  EXPECT_TRUE(auth_->verify(jwt, kNowMs + 2000));
  EXPECT_EQ(auth_->authenticate("Bearer " + jwt, kNowMs + 2000).kind, Principal::Kind::kRefused);
}

TEST_F(JwtTest, OnlyATokenIssuedForASessionAndSentInItsCookieIsRenewed) {
  // The exchange for a client carries no `ses`; the one for a session cookie carries true.
  const auto cli = auth_->exchange(pat_, kNowMs);
  const auto session = auth_->exchange(pat_, kNowMs, true);
  EXPECT_FALSE(parseObject(unBase64Url(parts(cli.jwt)[1]))->has("ses"));
  EXPECT_TRUE(parseObject(unBase64Url(parts(session.jwt)[1]))->getValue<bool>("ses"));

  // What authenticateRequest makes of each, sent in a header or in the cookie.
  const auto principal = [&](const std::string& jwt, bool viaCookie) {
    Principal found = auth_->authenticate("Bearer " + jwt, kNowMs);
    found.viaCookie = viaCookie;
    return found;
  };
  const auto refusal = [&](const Principal& presented) {
    try {
      auth_->renew(presented, kNowMs + 1000);
    } catch (const AuthError& e) {
      return std::to_string(e.status()) + " " + e.what();
    }
    return std::string("renewed");
  };
  const std::string refused =
      "403 only a session's cookie renews it; exchange the PAT at /api/v1/auth/token for a new "
      "access token";
  EXPECT_EQ(refusal(principal(session.jwt, false)), refused);
  EXPECT_EQ(refusal(principal(cli.jwt, false)), refused);
  EXPECT_EQ(refusal(principal(cli.jwt, true)), refused);

  // The session's own token in its cookie gets a new one, again for a session, with its own id.
  const auto renewed = auth_->renew(principal(session.jwt, true), kNowMs + 1000);
  const auto claims = auth_->verify(renewed.jwt, kNowMs + 1000);
  ASSERT_TRUE(claims);
  EXPECT_TRUE(claims->browserSession);
  EXPECT_NE(claims->sessionId, auth_->verify(session.jwt, kNowMs)->sessionId);
}

TEST_F(JwtTest, AnEndedTokenIsRefusedWhileTheOthersOfItsPatGoOn) {
  const std::string ended = auth_->exchange(pat_, kNowMs, true).jwt;
  const std::string other = auth_->exchange(pat_, kNowMs, true).jwt;
  const Principal principal = auth_->authenticate("Bearer " + ended, kNowMs);
  ASSERT_TRUE(principal.signedIn());
  EXPECT_EQ(principal.expiresAtMs, (kNowS + 900) * 1000);

  auth_->endSession(principal, kNowMs + 1000);
  EXPECT_TRUE(auth_->verify(ended, kNowMs + 2000));
  EXPECT_EQ(auth_->authenticate("Bearer " + ended, kNowMs + 2000).kind, Principal::Kind::kRefused);
  EXPECT_TRUE(auth_->authenticate("Bearer " + other, kNowMs + 2000).signedIn());

  // Its record lasts as long as the token passes the time checks, leeway included.
  const int64_t lastAcceptedMs = (kNowS + 900) * 1000 + kClockLeewayMs - 1;
  ASSERT_TRUE(auth_->verify(ended, lastAcceptedMs));
  EXPECT_TRUE(store_.sessionEnded(principal.signInId, lastAcceptedMs));
}

TEST_F(JwtTest, SigningOutEndsTheTokensARenewalReplacedAsWell) {
  const auto cookie = [&](const std::string& jwt, int64_t atMs) {
    Principal found = auth_->authenticate("Bearer " + jwt, atMs);
    found.viaCookie = true;
    return found;
  };
  const std::string first = auth_->exchange(pat_, kNowMs, true).jwt;
  const std::string second = auth_->renew(cookie(first, kNowMs + 1000), kNowMs + 1000).jwt;
  const Principal current = cookie(second, kNowMs + 2000);
  ASSERT_TRUE(current.signedIn());
  EXPECT_EQ(current.signInId, cookie(first, kNowMs + 2000).signInId);
  EXPECT_EQ(current.signedInAtMs, kNowS * 1000);

  auth_->endSession(current, kNowMs + 3000);
  EXPECT_EQ(auth_->authenticate("Bearer " + first, kNowMs + 4000).kind, Principal::Kind::kRefused);
  EXPECT_EQ(auth_->authenticate("Bearer " + second, kNowMs + 4000).kind,
            Principal::Kind::kRefused);
}

// An edge whose token lifetime was lowered since the sign-in (or another edge of the store with
// a shorter one) must still end the sign-in's longer-lived tokens for their whole life.
TEST_F(JwtTest, ASignOutOutlivesTokensIssuedUnderALongerLifetime) {
  const std::string longLived = auth_->exchange(pat_, kNowMs, true).jwt;
  config_.jwtTtl = std::chrono::seconds(60);
  Authenticator shortLived(store_, config_);
  const Principal principal = shortLived.authenticate("Bearer " + longLived, kNowMs + 1000);
  ASSERT_TRUE(principal.signedIn());

  shortLived.endSession(principal, kNowMs + 1000);
  const int64_t lastAcceptedMs = (kNowS + 900) * 1000 + kClockLeewayMs - 1;
  ASSERT_TRUE(shortLived.verify(longLived, lastAcceptedMs));
  EXPECT_EQ(shortLived.authenticate("Bearer " + longLived, lastAcceptedMs).kind,
            Principal::Kind::kRefused);
}

TEST_F(JwtTest, ASessionIsRenewedUntilItsMaximumAgeAndNoLonger) {
  config_.jwtTtl = std::chrono::seconds(60);
  config_.sessionMax = std::chrono::seconds(120);
  Authenticator auth(store_, config_);
  const auto renewAt = [&](const std::string& jwt, int64_t atMs) {
    Principal found = auth.authenticate("Bearer " + jwt, atMs);
    found.viaCookie = true;
    return auth.renew(found, atMs).jwt;
  };

  // Renewed within each token's minute, the session lasts two minutes from its sign-in.
  std::string jwt = auth.exchange(pat_, kNowMs, true).jwt;
  jwt = renewAt(jwt, kNowMs + 50'000);
  jwt = renewAt(jwt, kNowMs + 100'000);
  EXPECT_EQ(auth.verify(jwt, kNowMs + 100'000)->signedInAtS, kNowS);
  try {
    renewAt(jwt, kNowMs + 121'000);
    FAIL() << "renewed past the session's maximum age";
  } catch (const AuthError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_STREQ(e.what(), "the session began more than 120 s ago; sign in again");
  }
}

TEST_F(JwtTest, ADisabledAccountEndsItsTokensWithAReason) {
  const std::string jwt = auth_->exchange(pat_, kNowMs).jwt;
  account_.disabled = true;
  store_.updateAccount(account_);
  const Principal principal = auth_->authenticate("Bearer " + jwt, kNowMs);
  EXPECT_EQ(principal.kind, Principal::Kind::kBarred);
  EXPECT_FALSE(principal.signedIn());
  EXPECT_EQ(principal.refusal, "{\"error\":\"account acme is disabled\"}");
}

TEST_F(JwtTest, OnTheFreePlanOnlyTheOwnerSignsIn) {
  const std::string bobPat = addToken(addMember("bob"), "ci");
  const std::string bobJwt = auth_->exchange(bobPat, kNowMs).jwt;

  // Moved to free: bob's token and JWT are refused naming the plan, the owner's still work.
  account_.plan = store::Plan::kFree;
  store_.updateAccount(account_);
  const std::string refusal =
      "member bob needs the pro plan to sign in: the free plan allows 1 member (the owner)";
  try {
    auth_->exchange(bobPat, kNowMs);
    ADD_FAILURE() << "a second member of a free account signed in";
  } catch (const AuthError& e) {
    EXPECT_EQ(e.status(), 403);
    EXPECT_EQ(e.what(), refusal);
    EXPECT_EQ(e.body(), "{\"error\":\"" + refusal + "\",\"plan\":\"free\"}");
  }
  const Principal principal = auth_->authenticate("Bearer " + bobJwt, kNowMs);
  EXPECT_EQ(principal.kind, Principal::Kind::kBarred);
  EXPECT_EQ(principal.refusal, "{\"error\":\"" + refusal + "\",\"plan\":\"free\"}");
  EXPECT_TRUE(
      auth_->authenticate("Bearer " + auth_->exchange(pat_, kNowMs).jwt, kNowMs).signedIn());
}

TEST_F(JwtTest, ClaimsMustMatchTheTokenTheyName) {
  // A token id of another member under this member's sub, well signed.
  const std::string bobPat = addToken(addMember("bob"), "ci");
  AccessClaims claims = claimsAt(kNowS);
  claims.tokenId = tokenIds_[bobPat];
  EXPECT_EQ(auth_->authenticate("Bearer " + auth_->sign(claims, "anonymily"), kNowMs).kind,
            Principal::Kind::kRefused);

  // A token id that does not exist.
  claims.tokenId = newRecordId("tok_");
  EXPECT_EQ(auth_->authenticate("Bearer " + auth_->sign(claims, "anonymily"), kNowMs).kind,
            Principal::Kind::kRefused);
}

TEST_F(JwtTest, BearerValuesAreToldApartByShape) {
  EXPECT_EQ(auth_->authenticate("", kNowMs).kind, Principal::Kind::kNone);
  EXPECT_EQ(auth_->authenticate("  ", kNowMs).kind, Principal::Kind::kNone);
  EXPECT_EQ(auth_->authenticate("Basic dXNlcjpwdw==", kNowMs).kind, Principal::Kind::kRefused);
  EXPECT_EQ(auth_->authenticate("Bearer", kNowMs).kind, Principal::Kind::kRefused);

  // A PAT is never a bearer value, valid or not.
  EXPECT_EQ(auth_->authenticate("Bearer " + pat_, kNowMs).kind, Principal::Kind::kRefused);

  const std::string relay = newRelayToken();
  const auto hookToken = auth_->authenticate("Bearer " + relay, kNowMs);
  EXPECT_EQ(hookToken.kind, Principal::Kind::kHookToken);
  EXPECT_EQ(hookToken.bearer, relay);
  EXPECT_EQ(hookToken.actor(), "hook-token");

  EXPECT_EQ(auth_->authenticate("Bearer a.b.c", kNowMs).kind, Principal::Kind::kRefused);
}

TEST_F(JwtTest, ExchangeRefusesUnknownWrongAndRevokedTokensAlike) {
  std::string wrong = pat_;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  const std::vector<std::string> refused = {wrong,      newPersonalToken(),         "", "anm_pat_",
                                            pat_ + "a", "ANM_PAT_" + pat_.substr(8)};
  for (const auto& text : refused) {
    try {
      auth_->exchange(text, kNowMs);
      ADD_FAILURE() << "accepted " << text;
    } catch (const AuthError& e) {
      EXPECT_EQ(e.status(), 401);
      EXPECT_STREQ(e.what(), "invalid or revoked token");
    }
  }

  ASSERT_TRUE(store_.revokeToken(tokenIds_[pat_], kNowMs));
  try {
    auth_->exchange(pat_, kNowMs);
    ADD_FAILURE() << "a revoked token was exchanged";
  } catch (const AuthError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_STREQ(e.what(), "invalid or revoked token");
  }
}

TEST_F(JwtTest, ExchangeRefusesADisabledAccountByName) {
  account_.disabled = true;
  store_.updateAccount(account_);
  try {
    auth_->exchange(pat_, kNowMs);
    ADD_FAILURE() << "a disabled account signed in";
  } catch (const AuthError& e) {
    EXPECT_EQ(e.status(), 403);
    EXPECT_STREQ(e.what(), "account acme is disabled");
  }
}

TEST(RecordIdTest, IdsAndTokensHaveTheirDocumentedShape) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = newRecordId("acc_");
    ASSERT_EQ(id.size(), 4u + 26u);
    EXPECT_EQ(id.rfind("acc_", 0), 0u);
    EXPECT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567", 4), std::string::npos);
    seen.insert(id);

    const std::string pat = newPersonalToken();
    ASSERT_EQ(pat.size(), 8u + 52u);
    EXPECT_EQ(pat.rfind("anm_pat_", 0), 0u);
    EXPECT_EQ(pat.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567", 8), std::string::npos);
    seen.insert(pat);
  }
  EXPECT_EQ(seen.size(), 200u);
  EXPECT_EQ(randomBase32(0), "");
  EXPECT_EQ(randomBase32(1).size(), 1u);
  EXPECT_EQ(randomSecretBytes(32).size(), 32u);
}

}  // namespace
}  // namespace anm::edge
