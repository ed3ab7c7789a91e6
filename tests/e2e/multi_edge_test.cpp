// tests/e2e/multi_edge_test.cpp: two edges on one MySQL database behave as one service, also
// for a relay that moves from one to the other.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "tests/e2e/multi_edge_env.h"

namespace anm::e2e {
namespace {

// The promise for delivery across edges on loopback (#3), from the acknowledgement to the
// target's receipt.
constexpr std::chrono::milliseconds kCrossEdgeDeliveryLimit(1000);

class CrossEdgeTest : public MultiEdgeTest {};

TEST_F(CrossEdgeTest, WebhookTakenByOneEdgeReachesARelayOnTheOtherWithinOneSecond) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");
  HookAccess hook = createHook(edgeA);
  RelayProcess& relay = startRelay(edgeB, "relay", hook);

  // One at a time, so that each delivery is timed from its own acknowledgement.
  constexpr int kEvents = 6;
  std::vector<SentRequest> sent;
  std::vector<int64_t> ids;
  std::chrono::milliseconds slowest{0};
  for (int i = 0; i < kEvents; ++i) {
    sent.push_back(request(edgeA, "/cross/" + std::to_string(i),
                           "{\"n\":" + std::to_string(i) + ",\"via\":\"a\"}"));
    int64_t id = ingestOk(edgeA, hook.id, sent.back());
    ASSERT_GT(id, 0);
    ids.push_back(id);
    auto acknowledgedAt = std::chrono::steady_clock::now();
    const std::string seq = seqOf(sent.back());
    bool arrived = target_->waitFor(
        [&](const RecordedRequest& got) { return got.message.value(kSeqHeader) == seq; },
        kCrossEdgeDeliveryLimit);
    EXPECT_TRUE(arrived) << "event " << id << " (seq " << seq << ") stored by edge a did not "
                         << "reach the relay on edge b within 1 s";
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - acknowledgedAt));
  }
  RecordProperty("slowest_delivery_ms", static_cast<int>(slowest.count()));

  // Byte for byte, once each, in the order they were stored.
  ASSERT_TRUE(target_->waitForCount(kEvents, kMultiEdgeStepTimeout));
  auto received = target_->requests();
  ASSERT_EQ(received.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    SCOPED_TRACE("event " + std::to_string(ids[i]));
    EXPECT_EQ(withSeq(received, seqOf(sent[i])).size(), 1u);
    expectDeliveredUnchanged(sent[i], received[i], target_->port());
  }
  ASSERT_TRUE(relay.waitForReports(kEvents, kMultiEdgeStepTimeout));
  EXPECT_EQ(reportedIds(relay), ids);

  // The API of either edge sees every event, whichever edge stored it.
  EXPECT_EQ(listedIds(edgeA, hook), ids);
  EXPECT_EQ(listedIdsOnceCaughtUp(edgeB, hook, ids), ids);
}

TEST_F(CrossEdgeTest, ApiOfEitherEdgeListsEventsStoredThroughBoth) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");
  HookAccess hook = createHook(edgeB);

  // Alternate the storing edge; ids must still form one ordered sequence.
  std::vector<int64_t> ids;
  for (int i = 0; i < 8; ++i) {
    EdgeProcess& edge = i % 2 == 0 ? edgeA : edgeB;
    int64_t id = ingestOk(edge, hook.id, request(edge, "/both", "event " + std::to_string(i)));
    ASSERT_GT(id, 0);
    if (!ids.empty()) {
      EXPECT_GT(id, ids.back()) << "ids went backwards across edges";
    }
    ids.push_back(id);
  }

  // The edge that did not store the last event learns of it by polling the database, so its
  // list may lag by a poll interval; it may never show a gap or another order meanwhile.
  EXPECT_EQ(listedIdsOnceCaughtUp(edgeA, hook, ids), ids);
  EXPECT_EQ(listedIdsOnceCaughtUp(edgeB, hook, ids), ids);
}

class RelayMoveTest : public MultiEdgeTest {};

TEST_F(RelayMoveTest, RelayMovedToAnotherEdgeResumesFromItsSavedPositionWithNoGapOrDuplicate) {
  EdgeProcess& edgeA = startEdge("a");
  EdgeProcess& edgeB = startEdge("b");

  // The first relay creates the hook on edge a and saves its token and position.
  RelayProcess& first = startRelay(edgeA, "laptop", HookAccess{});
  HookAccess hook{first.hookId(), first.token()};
  std::vector<SentRequest> before;
  std::vector<int64_t> beforeIds;
  for (int i = 0; i < 3; ++i) {
    before.push_back(request(edgeA, "/move", "before " + std::to_string(i)));
    beforeIds.push_back(ingestOk(edgeA, hook.id, before.back()));
    ASSERT_GT(beforeIds.back(), 0);
  }
  ASSERT_TRUE(target_->waitForCount(before.size(), kMultiEdgeStepTimeout));
  ASSERT_TRUE(first.waitForReports(before.size(), kMultiEdgeStepTimeout));
  EXPECT_EQ(reportedIds(first), beforeIds);

  // A stopped relay leaves its position behind: the last event it forwarded.
  EXPECT_EQ(first.process().stop(), 0) << "the relay did not stop cleanly";
  // The relay keeps one position per hook and target: <id>.<target digest>.cursor.
  std::filesystem::path cursor;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir_.path() / "relay-laptop" / "anonymily" / "hooks")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(hook.id + ".", 0) == 0 && name.size() > 7 &&
        name.compare(name.size() - 7, 7, ".cursor") == 0) {
      cursor = entry.path();
    }
  }
  ASSERT_FALSE(cursor.empty()) << "the stopped relay saved no position";
  EXPECT_EQ(readFile(cursor), std::to_string(beforeIds.back()) + "\n");

  // Webhooks keep coming while no relay listens, through both edges.
  std::vector<SentRequest> missed;
  std::vector<int64_t> missedIds;
  for (int i = 0; i < 4; ++i) {
    EdgeProcess& edge = i % 2 == 0 ? edgeB : edgeA;
    missed.push_back(request(edge, "/move", "missed " + std::to_string(i)));
    missedIds.push_back(ingestOk(edge, hook.id, missed.back()));
    ASSERT_GT(missedIds.back(), 0);
  }
  ASSERT_EQ(target_->count(), before.size()) << "a stopped relay delivered something";

  // The same laptop (same home: saved token and position) now relays through edge b.
  RelayProcess& second = startRelay(edgeB, "laptop", HookAccess{hook.id, ""});

  // A live event after the missed ones: once it is in, anything sent twice would be in too.
  SentRequest last = request(edgeA, "/move", "live after the move");
  int64_t lastId = ingestOk(edgeA, hook.id, last);
  ASSERT_GT(lastId, 0);
  const size_t total = before.size() + missed.size() + 1;
  ASSERT_TRUE(target_->waitForCount(total, kMultiEdgeStepTimeout))
      << "target got " << target_->count() << " of " << total;
  ASSERT_TRUE(second.waitForReports(missed.size() + 1, kMultiEdgeStepTimeout));

  std::vector<int64_t> expected = missedIds;
  expected.push_back(lastId);
  EXPECT_EQ(reportedIds(second), expected) << "the moved relay got other events than it missed";

  auto received = target_->requests();
  ASSERT_EQ(received.size(), total) << "some event was delivered twice";
  std::vector<SentRequest> all = before;
  all.insert(all.end(), missed.begin(), missed.end());
  all.push_back(last);
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE("delivery " + std::to_string(i) + " seq " + seqOf(all[i]));
    EXPECT_EQ(withSeq(received, seqOf(all[i])).size(), 1u);
    expectDeliveredUnchanged(all[i], received[i], target_->port());
  }
}

}  // namespace
}  // namespace anm::e2e
