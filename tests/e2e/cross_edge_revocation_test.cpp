// tests/e2e/cross_edge_revocation_test.cpp: a personal access token revoked through one edge
// stops working on another edge of the same MySQL database at once, and that edge closes the
// streams opened with it within its revocation poll.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/e2e/multi_edge_env.h"
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
};

TEST_F(CrossEdgeRevocationTest, RevokedTokenIsRefusedByTheOtherEdgeAtOnceAndItsStreamThereCloses) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");

  // Edge a started first on the new database, so it made the owner account and its token.
  std::string ownerPat = readFile(dir_.path() / "edge-a" / "edge-data" / "owner.token");
  ASSERT_FALSE(ownerPat.empty()) << "edge a wrote no owner token";
  ownerPat.pop_back();
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

}  // namespace
}  // namespace anm::e2e
