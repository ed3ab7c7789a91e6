// tests/integration/session_test.cpp: the browser's sign-in: a PAT becomes an access token held
// in an HttpOnly cookie, renewed and ended through the API, and refused for forged requests.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>

#include "accounts_env.h"

namespace anm::test {
namespace {

// The cookie's value and attributes from a Set-Cookie header ("" when it is not the session's).
struct SessionCookie {
  std::string value;
  std::string attributes;
};

SessionCookie sessionCookie(const Response& r) {
  const std::string header = r.header("Set-Cookie");
  const std::string prefix = "anm_session=";
  if (header.rfind(prefix, 0) != 0) return {};
  const size_t end = header.find(';');
  return {header.substr(prefix.size(), end - prefix.size()),
          end == std::string::npos ? "" : header.substr(end)};
}

class SessionTest : public AccountsTest {
 protected:
  void SetUp() override {
    AccountsTest::SetUp();
    startServer();
    acme_ = createAccount("acme", "pro");
  }

  Response withCookie(const std::string& method, const std::string& target,
                      const std::string& cookie, const std::string& body = "", Fields fields = {}) {
    fields.insert(fields.begin(), {"Cookie", "theme=dark; anm_session=" + cookie});
    return request(port_, method, target, body, fields);
  }

  Account acme_;
};

TEST_F(SessionTest, PatBecomesAnHttpOnlyStrictCookieTheApiAccepts) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  ASSERT_EQ(started.status, 200) << started.body;

  // The cookie holds an access token the page cannot read; the body never carries it.
  const SessionCookie cookie = sessionCookie(started);
  ASSERT_FALSE(cookie.value.empty()) << started.header("Set-Cookie");
  EXPECT_NE(cookie.attributes.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.attributes.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(cookie.attributes.find("Path=/"), std::string::npos);
  EXPECT_NE(cookie.attributes.find("Max-Age=900"), std::string::npos) << cookie.attributes;
  EXPECT_EQ(cookie.attributes.find("Secure"), std::string::npos) << "plain http on loopback";
  EXPECT_EQ(started.body.find(cookie.value), std::string::npos);
  EXPECT_EQ(started.body.find("access_token"), std::string::npos);
  EXPECT_EQ(started.header("Cache-Control"), "no-store");
  const auto body = parseObject(started.body);
  EXPECT_EQ(body->getObject("account")->getValue<std::string>("name"), "acme");
  EXPECT_GT(body->getValue<int64_t>("expires_at_ms"), 0);

  // Reads work with the cookie alone, like with the bearer.
  const auto account = withCookie("GET", "/api/v1/account", cookie.value);
  EXPECT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(jsonField(account.body, "name"), "acme");
  const auto hooks = withCookie("GET", "/api/v1/hooks", cookie.value);
  EXPECT_EQ(hooks.status, 200) << hooks.body;

  // The sign-in is in the audit log.
  const auto entries = auditEntries(acme_);
  bool audited = false;
  for (size_t i = 0; i < entries->size(); ++i) {
    audited |= entries->getObject(static_cast<unsigned>(i))->getValue<std::string>("action") ==
               "session.create";
  }
  EXPECT_TRUE(audited);
}

TEST_F(SessionTest, ChangesThroughTheCookieNeedTheCsrfHeader) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string cookie = sessionCookie(started).value;
  ASSERT_FALSE(cookie.empty());

  // What another site could make a browser send: the cookie, without the header.
  const auto forged = withCookie("POST", "/api/v1/hooks", cookie, "{\"name\":\"forged\"}");
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_EQ(jsonField(forged.body, "error"), "cookie sessions need the X-Anonymily-CSRF header");
  const auto forgedToken = withCookie("POST", "/api/v1/tokens", cookie, "{\"name\":\"x\"}");
  EXPECT_EQ(forgedToken.status, 403) << forgedToken.body;
  EXPECT_TRUE(
      parseObject(call("GET", "/api/v1/hooks", acme_.jwt).body)->getArray("hooks")->size() == 0);

  // The page's own request carries it.
  const auto created = withCookie("POST", "/api/v1/hooks", cookie, "{\"name\":\"mine\"}",
                                  {{"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(created.status, 201) << created.body;

  // A bearer header is not a cookie: it needs no CSRF header and wins over the cookie.
  const auto viaBearer = call("POST", "/api/v1/tokens", acme_.jwt, "{\"name\":\"cli\"}",
                              {{"Cookie", "anm_session=garbage"}});
  EXPECT_EQ(viaBearer.status, 201) << viaBearer.body;
}

TEST_F(SessionTest, RenewGivesAFreshCookieAndEndClearsIt) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string cookie = sessionCookie(started).value;

  const auto renewed =
      withCookie("POST", "/api/v1/auth/session/renew", cookie, "", {{"X-Anonymily-CSRF", "1"}});
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  const std::string fresh = sessionCookie(renewed).value;
  ASSERT_FALSE(fresh.empty());
  EXPECT_EQ(withCookie("GET", "/api/v1/account", fresh).status, 200);

  const auto ended =
      withCookie("DELETE", "/api/v1/auth/session", fresh, "", {{"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(ended.status, 204);
  EXPECT_EQ(ended.header("Set-Cookie").rfind("anm_session=; ", 0), 0u)
      << ended.header("Set-Cookie");
  EXPECT_NE(ended.header("Set-Cookie").find("Max-Age=0"), std::string::npos);
}

TEST_F(SessionTest, SigningOutEndsTheAccessTokenItselfNotOnlyTheCookie) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string cookie = sessionCookie(started).value;
  const auto otherStarted =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string otherCookie = sessionCookie(otherStarted).value;
  ASSERT_FALSE(cookie.empty());
  ASSERT_NE(cookie, otherCookie);
  ASSERT_EQ(withCookie("GET", "/api/v1/account", cookie).status, 200);
  ASSERT_EQ(call("GET", "/api/v1/account", cookie).status, 200);

  const auto ended =
      withCookie("DELETE", "/api/v1/auth/session", cookie, "", {{"X-Anonymily-CSRF", "1"}});
  ASSERT_EQ(ended.status, 204) << ended.body;

  // A copy of the token kept anywhere is refused from now on, in the cookie or as a bearer,
  // and cannot be renewed into a new one.
  EXPECT_EQ(withCookie("GET", "/api/v1/account", cookie).status, 401);
  EXPECT_EQ(call("GET", "/api/v1/account", cookie).status, 401);
  EXPECT_EQ(call("GET", "/api/v1/hooks", cookie).status, 401);
  const auto renewed =
      withCookie("POST", "/api/v1/auth/session/renew", cookie, "", {{"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(renewed.status, 401) << renewed.body;
  EXPECT_TRUE(sessionCookie(renewed).value.empty());

  // Only that session ended: another of the same PAT, and the PAT itself, go on.
  EXPECT_EQ(withCookie("GET", "/api/v1/account", otherCookie).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/account", acme_.jwt).status, 200);

  // Signing out again, with the ended token, only clears the cookie.
  const auto again =
      withCookie("DELETE", "/api/v1/auth/session", cookie, "", {{"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(again.status, 204);
  EXPECT_NE(again.header("Set-Cookie").find("Max-Age=0"), std::string::npos);

  size_t endings = 0;
  const auto entries = auditEntries(acme_);
  for (size_t i = 0; i < entries->size(); ++i) {
    endings += entries->getObject(static_cast<unsigned>(i))->getValue<std::string>("action") ==
               "session.end";
  }
  EXPECT_EQ(endings, 1u);
}

TEST_F(SessionTest, RenewTakesTheSessionsOwnCookieOnly) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string cookie = sessionCookie(started).value;
  ASSERT_FALSE(cookie.empty());
  const std::string refusal =
      "only a session's cookie renews it; exchange the PAT at /api/v1/auth/token for a new "
      "access token";

  // The session's token sent as a bearer, as a client holding a copy of it would.
  const auto asBearer = call("POST", "/api/v1/auth/session/renew", cookie);
  EXPECT_EQ(asBearer.status, 403) << asBearer.body;
  EXPECT_EQ(jsonField(asBearer.body, "error"), refusal);
  EXPECT_TRUE(sessionCookie(asBearer).value.empty());

  // A client's token from /auth/token, written into the cookie by hand.
  const auto clientToken =
      withCookie("POST", "/api/v1/auth/session/renew", acme_.jwt, "", {{"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(clientToken.status, 403) << clientToken.body;
  EXPECT_EQ(jsonField(clientToken.body, "error"), refusal);
  EXPECT_TRUE(sessionCookie(clientToken).value.empty());

  // The cookie itself still renews.
  const auto renewed =
      withCookie("POST", "/api/v1/auth/session/renew", cookie, "", {{"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_FALSE(sessionCookie(renewed).value.empty());
}

TEST_F(SessionTest, RevokingThePatEndsItsSessionsAtOnce) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string cookie = sessionCookie(started).value;
  ASSERT_EQ(withCookie("GET", "/api/v1/account", cookie).status, 200);

  // The owner revokes the PAT the session came from.
  const auto tokens =
      parseObject(call("GET", "/api/v1/tokens", acme_.jwt).body)->getArray("tokens");
  ASSERT_EQ(tokens->size(), 1u);
  const std::string tokenId = tokens->getObject(0)->getValue<std::string>("id");
  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + tokenId, acme_.jwt).status, 204);

  EXPECT_EQ(withCookie("GET", "/api/v1/account", cookie).status, 401);
  EXPECT_EQ(
      withCookie("POST", "/api/v1/auth/session/renew", cookie, "", {{"X-Anonymily-CSRF", "1"}})
          .status,
      401);
}

TEST_F(SessionTest, TwoCredentialsOfOneKindAreRefusedWhicheverComesFirst) {
  const auto started =
      request(port_, "POST", "/api/v1/auth/session", "{\"token\":\"" + acme_.pat + "\"}");
  const std::string cookie = sessionCookie(started).value;
  ASSERT_FALSE(cookie.empty());
  const Account other = createAccount("other", "pro");

  // Two Authorization headers, valid or not, on account routes and hook routes alike.
  const Fields twoBearers = {{"Authorization", "Bearer " + acme_.jwt},
                             {"Authorization", "Bearer " + other.jwt}};
  for (const std::string target : {"/api/v1/account", "/api/v1/hooks", "/api/v1/tokens"}) {
    const auto r = request(port_, "GET", target, "", twoBearers);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_EQ(jsonField(r.body, "error"),
              "a request may carry one Authorization header; this one carries 2");
  }
  EXPECT_EQ(request(port_, "GET", "/api/v1/account", "",
                    {{"Authorization", "Bearer " + acme_.jwt}, {"authorization", "Basic eA=="}})
                .status,
            400);

  // Two session cookies, in one Cookie header or in two.
  const auto oneHeader = request(port_, "GET", "/api/v1/account", "",
                                 {{"Cookie", "anm_session=" + cookie + "; anm_session=x.y.z"}});
  EXPECT_EQ(oneHeader.status, 400) << oneHeader.body;
  EXPECT_EQ(jsonField(oneHeader.body, "error"),
            "a request may carry one anm_session cookie; this one carries 2");
  const auto twoHeaders = request(port_, "POST", "/api/v1/hooks", "{\"name\":\"twice\"}",
                                  {{"Cookie", "anm_session=" + cookie},
                                   {"Cookie", "anm_session=" + cookie},
                                   {"X-Anonymily-CSRF", "1"}});
  EXPECT_EQ(twoHeaders.status, 400) << twoHeaders.body;
  EXPECT_TRUE(
      parseObject(call("GET", "/api/v1/hooks", acme_.jwt).body)->getArray("hooks")->size() == 0);

  // One of each is as before.
  EXPECT_EQ(withCookie("GET", "/api/v1/account", cookie).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/account", acme_.jwt).status, 200);
}

TEST_F(SessionTest, WrongPatAndGarbageCookiesAreRefused) {
  const auto wrong = request(port_, "POST", "/api/v1/auth/session",
                             "{\"token\":\"anm_pat_" + std::string(52, 'a') + "\"}");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(sessionCookie(wrong).value.empty());

  // Neither a forged value nor a hook's relay token is taken from the cookie.
  EXPECT_EQ(withCookie("GET", "/api/v1/account", "not.a.jwt").status, 401);
  const Response anonymous = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(anonymous.status, 201);
  const std::string hookId = jsonField(anonymous.body, "id");
  const std::string relayToken = jsonField(anonymous.body, "token");
  EXPECT_EQ(withCookie("GET", "/api/v1/hooks/" + hookId + "/events", relayToken).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/hooks/" + hookId + "/events", relayToken).status, 200);
}

}  // namespace
}  // namespace anm::test
