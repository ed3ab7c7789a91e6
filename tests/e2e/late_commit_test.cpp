// tests/e2e/late_commit_test.cpp: an event whose transaction commits after a later id's must
// still reach every relay, in id order: the edges hold the later one back rather than skip.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <thread>

#include "tests/e2e/multi_edge_env.h"
#include "tests/e2e/support/sse_reader.h"

namespace anm::e2e {
namespace {

// How long the earlier id stays uncommitted while the later one is visible: a hundred of the
// edges' poll intervals, so an edge that skips holes has had every chance to show it.
constexpr auto kHoldOpen = std::chrono::milliseconds(100 * kPollIntervalMs);

// ANM_REASON_NOT_SIGNED: what a hook without a provider stores for every request.
constexpr int32_t kReasonNotSigned = 8;

class LateCommitTest : public MultiEdgeTest {
 protected:
  // The row an edge would have written for `sent`, with the id given.
  store::EventRecord rowFor(const SentRequest& sent, const std::string& hookId, int64_t id) {
    store::EventRecord event;
    event.id = id;
    event.hookId = hookId;
    event.receivedAtMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    event.method = sent.method;
    event.pathSuffix = sent.suffix;
    event.rawQuery = sent.query;
    for (const auto& [name, value] : sent.headers) event.headers.push_back({name, value});
    event.body = sent.body;
    event.bodySize = static_cast<int64_t>(sent.body.size());
    event.verdict = store::Verdict::kUnsigned;
    event.reason = kReasonNotSigned;
    return event;
  }
};

TEST_F(LateCommitTest, LowerIdCommittedAfterAHigherOneReachesTheRelayFirstAndOnce) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");
  HookAccess hook = createHook(edgeA);
  RelayProcess& relay = startRelay(edgeB, "relay", hook);
  SseReader streamA(edgeA.port(), hook.id, hook.token, 0);
  SseReader streamB(edgeB.port(), hook.id, hook.token, 0);

  // A first webhook through edge a proves the streams are live and fixes where ids stand.
  SentRequest warmUp = request(edgeA, "/late", "warm-up");
  int64_t warmUpId = ingestOk(edgeA, hook.id, warmUp);
  ASSERT_GT(warmUpId, 0);
  ASSERT_TRUE(target_->waitForCount(1, kMultiEdgeStepTimeout));
  ASSERT_TRUE(streamB.waitForFrames(1, kMultiEdgeStepTimeout)) << streamB.error();
  ASSERT_TRUE(streamA.waitForFrames(1, kMultiEdgeStepTimeout)) << streamA.error();

  // Two writers of their own. X1 takes id N and holds its transaction open without touching
  // the counter; X2 takes N + 1, moves the counter past both and commits first.
  auto x1 = db_->connect();
  auto x2 = db_->connect();
  const int64_t n = x2->queryInt("SELECT value FROM sequences WHERE name = 'event_id'") + 1;
  ASSERT_EQ(n, warmUpId + 1);
  SentRequest early = makeRequest("POST", "/late", "n=" + std::to_string(n), edgeA.port(),
                                  {{"Content-Type", "text/plain"}, {kSeqHeader, "early"}},
                                  "committed last, id " + std::to_string(n));
  SentRequest later = makeRequest("POST", "/late", "n=" + std::to_string(n + 1), edgeA.port(),
                                  {{"Content-Type", "text/plain"}, {kSeqHeader, "later"}},
                                  "committed first, id " + std::to_string(n + 1));
  x1->begin();
  x1->insertEvent(rowFor(early, hook.id, n));
  x2->begin();
  x2->insertEvent(rowFor(later, hook.id, n + 1));
  x2->execute("UPDATE sequences SET value = " + std::to_string(n + 1) + " WHERE name = 'event_id'");
  x2->commit();
  ASSERT_EQ(x2->queryInt("SELECT COUNT(*) FROM events WHERE id = " + std::to_string(n + 1)), 1)
      << "the later row is not visible to other connections";

  // While N is uncommitted, no edge may pass N + 1 on: not to a relay, not to a stream, not
  // through the API (listEvents returns nothing past a hole).
  std::this_thread::sleep_for(kHoldOpen);
  EXPECT_EQ(target_->count(), 1u) << "an event past an uncommitted id was relayed";
  EXPECT_EQ(streamB.webhookIds(), std::vector<int64_t>{warmUpId});
  EXPECT_EQ(streamA.webhookIds(), std::vector<int64_t>{warmUpId});
  EXPECT_EQ(listedIds(edgeB, hook), std::vector<int64_t>{warmUpId});
  EXPECT_EQ(listedIds(edgeA, hook), std::vector<int64_t>{warmUpId});

  // Once N commits, both arrive in id order, each once.
  x1->commit();
  ASSERT_TRUE(target_->waitForCount(3, kMultiEdgeStepTimeout))
      << "target got " << target_->count() << " of 3: the late commit was skipped";
  ASSERT_TRUE(relay.waitForReports(3, kMultiEdgeStepTimeout));
  EXPECT_EQ(reportedIds(relay), (std::vector<int64_t>{warmUpId, n, n + 1}));
  ASSERT_TRUE(streamB.waitForFrames(3, kMultiEdgeStepTimeout)) << streamB.error();
  ASSERT_TRUE(streamA.waitForFrames(3, kMultiEdgeStepTimeout)) << streamA.error();
  EXPECT_EQ(streamB.webhookIds(), (std::vector<int64_t>{warmUpId, n, n + 1}));
  EXPECT_EQ(streamA.webhookIds(), (std::vector<int64_t>{warmUpId, n, n + 1}));

  // A normal webhook afterwards takes the next id and follows them.
  SentRequest after = request(edgeA, "/late", "after the late commit");
  int64_t afterId = ingestOk(edgeA, hook.id, after);
  EXPECT_EQ(afterId, n + 2);
  ASSERT_TRUE(target_->waitForCount(4, kMultiEdgeStepTimeout));
  ASSERT_TRUE(relay.waitForReports(4, kMultiEdgeStepTimeout));
  EXPECT_EQ(reportedIds(relay), (std::vector<int64_t>{warmUpId, n, n + 1, afterId}));
  ASSERT_TRUE(streamB.waitForFrames(4, kMultiEdgeStepTimeout)) << streamB.error();
  EXPECT_EQ(streamB.webhookIds(), (std::vector<int64_t>{warmUpId, n, n + 1, afterId}));

  // Every delivery carries its own request's bytes.
  auto received = target_->requests();
  ASSERT_EQ(received.size(), 4u);
  std::vector<const SentRequest*> order{&warmUp, &early, &later, &after};
  for (size_t i = 0; i < order.size(); ++i) {
    SCOPED_TRACE("delivery " + std::to_string(i) + " seq " + seqOf(*order[i]));
    EXPECT_EQ(withSeq(received, seqOf(*order[i])).size(), 1u);
    expectDeliveredUnchanged(*order[i], received[i], target_->port());
  }
  EXPECT_EQ(listedIds(edgeB, hook), (std::vector<int64_t>{warmUpId, n, n + 1, afterId}));
}

}  // namespace
}  // namespace anm::e2e
