// tests/e2e/cross_edge_revocation_test.cpp: a personal access token revoked through one edge
// stops working on another edge of the same MySQL database at once, and that edge closes the
// streams opened with it within its revocation poll; a dashboard session signed out of on one
// edge is refused by the other at once.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/e2e/multi_edge_env.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/sse_reader.h"

namespace anm::e2e {
namespace {

// Edges poll the store for revocations every second (docs/accounts.md, "Revocation"); twice
// that leaves room for a busy machine without hiding a poll that never comes.
constexpr std::chrono::milliseconds kStreamCloseLimit(2000);

class CrossEdgeRevocationTest : public MultiEdgeTest {
 protected:
  // A PAT exchanged for an access token at `edge`; "" after a recorded failure.
  std::string signIn(EdgeProcess& edge, const std::string& pat) {
    const WireResponse r =
        apiPost(edge.port(), "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
    EXPECT_EQ(r.status, 200) << r.message.body;
    return r.status == 200 ? jsonText(parseObject(r.message.body), "access_token") : "";
  }

  // Edge a started first on the new database, so it made the owner account and wrote its PAT;
  // "" after a recorded failure.
  std::string ownerPatOfEdgeA() {
    std::string pat = readFile(dir_.path() / "edge-a" / "edge-data" / "owner.token");
    EXPECT_FALSE(pat.empty()) << "edge a wrote no owner token";
    if (!pat.empty()) pat.pop_back();
    return pat;
  }

  // A request with the dashboard's session cookie holding `jwt`, and its CSRF header.
  static WireResponse withSessionCookie(EdgeProcess& edge, const std::string& method,
                                        const std::string& target, const std::string& jwt) {
    const std::string request = method + " " + target +
                                " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(edge.port()) +
                                "\r\nCookie: anm_session=" + jwt +
                                "\r\nX-Anonymily-CSRF: 1\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
    return exchange(edge.port(), request, false);
  }

  // The value the answer's Set-Cookie gives the session cookie, or "".
  static std::string sessionCookie(const WireResponse& r) {
    const std::string header = r.message.value("Set-Cookie").value_or("");
    const std::string prefix = "anm_session=";
    if (header.rfind(prefix, 0) != 0) return "";
    return header.substr(prefix.size(), header.find(';') - prefix.size());
  }
};

TEST_F(CrossEdgeRevocationTest, RevokedTokenIsRefusedByTheOtherEdgeAtOnceAndItsStreamThereCloses) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");

  const std::string ownerPat = ownerPatOfEdgeA();
  ASSERT_FALSE(ownerPat.empty());
  const std::string ownerJwt = signIn(edgeA, ownerPat);
  ASSERT_FALSE(ownerJwt.empty());

  // A named hook, and a second PAT of the owner (a laptop's), created through edge a and
  // exchanged at edge b: every edge signs and checks with the database's key.
  const WireResponse hook =
      apiPost(edgeA.port(), "/api/v1/hooks", R"({"name":"shared"})", ownerJwt);
  ASSERT_EQ(hook.status, 201) << hook.message.body;
  const std::string hookId = jsonText(parseObject(hook.message.body), "id");
  const WireResponse laptop =
      apiPost(edgeA.port(), "/api/v1/tokens", R"({"name":"laptop"})", ownerJwt);
  ASSERT_EQ(laptop.status, 201) << laptop.message.body;
  const std::string laptopId = jsonText(parseObject(laptop.message.body), "id");
  const std::string laptopJwt = signIn(edgeB, jsonText(parseObject(laptop.message.body), "token"));
  ASSERT_FALSE(laptopJwt.empty());

  // Streams of the hook on edge b, one opened with each token; both get a webhook stored
  // through edge a.
  SseReader laptopStream(edgeB.port(), hookId, laptopJwt, 0);
  SseReader ownerStream(edgeB.port(), hookId, ownerJwt, 0);
  const int64_t first = ingestOk(edgeA, hookId, request(edgeA, "/revocation", "first"));
  ASSERT_GT(first, 0);
  ASSERT_TRUE(laptopStream.waitForFrames(1, kMultiEdgeStepTimeout)) << laptopStream.error();
  ASSERT_TRUE(ownerStream.waitForFrames(1, kMultiEdgeStepTimeout)) << ownerStream.error();
  ASSERT_EQ(apiGet(edgeB.port(), "/api/v1/account", laptopJwt).status, 200);

  // The owner revokes the laptop's token through edge a.
  const WireResponse revoked = apiDelete(edgeA.port(), "/api/v1/tokens/" + laptopId, ownerJwt);
  ASSERT_EQ(revoked.status, 204) << revoked.message.body;
  const auto revokedAt = std::chrono::steady_clock::now();

  // Edge b refuses its access token on the very next request, on account and hook routes
  // alike: it looks the token up in the database every time.
  const WireResponse account = apiGet(edgeB.port(), "/api/v1/account", laptopJwt);
  EXPECT_EQ(account.status, 401) << account.message.body;
  const WireResponse events =
      apiGet(edgeB.port(), "/api/v1/hooks/" + hookId + "/events", laptopJwt);
  EXPECT_EQ(events.status, 404) << events.message.body;
  EXPECT_EQ(jsonText(parseObject(events.message.body), "error"), "unknown hook");

  // Edge b learns of the revocation by polling and closes the stream opened with the token.
  EXPECT_TRUE(test::waitUntil([&] { return laptopStream.ended(); }, kStreamCloseLimit))
      << "the revoked token's stream on edge b was still open after " << kStreamCloseLimit.count()
      << " ms";
  RecordProperty("stream_closed_after_ms",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - revokedAt)
                                      .count()));

  // Only that stream: the owner's goes on and gets the next webhook.
  const int64_t second = ingestOk(edgeA, hookId, request(edgeA, "/revocation", "second"));
  ASSERT_GT(second, 0);
  ASSERT_TRUE(ownerStream.waitForFrames(2, kMultiEdgeStepTimeout)) << ownerStream.error();
  EXPECT_FALSE(ownerStream.ended());
  EXPECT_EQ(ownerStream.webhookIds(), (std::vector<int64_t>{first, second}));
  EXPECT_EQ(laptopStream.webhookIds(), std::vector<int64_t>{first});
  EXPECT_EQ(apiGet(edgeB.port(), "/api/v1/account", ownerJwt).status, 200);
}

TEST_F(CrossEdgeRevocationTest, SessionSignedOutOfOnOneEdgeIsRefusedByTheOtherAtOnce) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");
  const std::string ownerPat = ownerPatOfEdgeA();
  ASSERT_FALSE(ownerPat.empty());

  // A dashboard signs in at edge a; its access token works on edge b too.
  const WireResponse started =
      apiPost(edgeA.port(), "/api/v1/auth/session", "{\"token\":\"" + ownerPat + "\"}");
  ASSERT_EQ(started.status, 200) << started.message.body;
  const std::string jwt = sessionCookie(started);
  ASSERT_FALSE(jwt.empty());
  ASSERT_EQ(withSessionCookie(edgeB, "GET", "/api/v1/account", jwt).status, 200);
  ASSERT_EQ(apiGet(edgeB.port(), "/api/v1/account", jwt).status, 200);

  // Renewal takes the session's cookie only: the same token as a bearer is refused, saying
  // what to do instead.
  const WireResponse renewAsBearer = apiPost(edgeB.port(), "/api/v1/auth/session/renew", "", jwt);
  EXPECT_EQ(renewAsBearer.status, 403) << renewAsBearer.message.body;
  EXPECT_EQ(jsonText(parseObject(renewAsBearer.message.body), "error"),
            "only a session's cookie renews it; exchange the PAT at /api/v1/auth/token for a new "
            "access token");
  EXPECT_EQ(sessionCookie(renewAsBearer), "");

  // It signs out at edge a. Edge b, which signed nothing, refuses the token on the very next
  // request, in the cookie or as a bearer, and will not renew it.
  const WireResponse ended = withSessionCookie(edgeA, "DELETE", "/api/v1/auth/session", jwt);
  ASSERT_EQ(ended.status, 204) << ended.message.body;
  EXPECT_EQ(withSessionCookie(edgeB, "GET", "/api/v1/account", jwt).status, 401);
  EXPECT_EQ(apiGet(edgeB.port(), "/api/v1/account", jwt).status, 401);
  EXPECT_EQ(withSessionCookie(edgeB, "POST", "/api/v1/auth/session/renew", jwt).status, 401);
  EXPECT_EQ(apiGet(edgeA.port(), "/api/v1/account", jwt).status, 401);

  // The PAT itself is untouched: a new sign-in works on both.
  const std::string fresh = signIn(edgeB, ownerPat);
  ASSERT_FALSE(fresh.empty());
  EXPECT_EQ(apiGet(edgeA.port(), "/api/v1/account", fresh).status, 200);
}

}  // namespace
}  // namespace anm::e2e
