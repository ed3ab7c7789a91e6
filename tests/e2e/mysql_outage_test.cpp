// tests/e2e/mysql_outage_test.cpp: an edge that loses its database answers 503, never 200 for
// what it did not store, keeps its streams open and serves again by itself once it is back.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/e2e/multi_edge_env.h"
#include "tests/e2e/support/sse_reader.h"
#include "tests/e2e/support/tcp_proxy.h"

namespace anm::e2e {
namespace {

// How long the database stays unreachable; longer than the edge's follower backoff cap (1 s)
// so that every part of the edge has met the outage.
constexpr auto kOutage = std::chrono::milliseconds(3000);

// Webhooks sent while the database is away; each must be refused.
constexpr int kRefusedDuringOutage = 3;

// After healing, the edge must store again within this, without a restart.
constexpr auto kRecoveryLimit = std::chrono::seconds(10);

// How often a provider in this test retries while the edge refuses.
constexpr auto kRetryEvery = std::chrono::milliseconds(100);

// Webhooks sent after the first one the healed edge acknowledged.
constexpr int kAfterRecovery = 3;

class MySqlOutageTest : public MultiEdgeTest {
 protected:
  // How many stored rows open to this webhook's body: the rows are sealed, so SQL cannot
  // count them by their contents.
  int64_t storedCopiesOf(const SentRequest& sent) {
    int64_t copies = 0;
    for (const auto& row : storedEvents()) {
      EXPECT_EQ(row.opened.integrityError, "") << "event " << row.id;
      copies += row.opened.body == sent.body ? 1 : 0;
    }
    return copies;
  }
};

TEST_F(MySqlOutageTest, RefusesWith503WhileTheDatabaseIsGoneAndResumesByItself) {
  // Edge a reaches the database only through the proxy; edge b keeps its direct line.
  TcpProxy database(test::testMySqlServer()->port);
  EdgeProcess& edgeA = startEdge("a", database.port());
  EdgeProcess& edgeB = startEdge("b");
  RelayProcess& relay = startRelay(edgeA, "relay", HookAccess{});
  HookAccess hook{relay.hookId(), relay.token()};
  SseReader stream(edgeA.port(), hook.id, hook.token, 0);

  // Acknowledged webhooks by id (the order every relay must see), and the refused ones.
  std::map<int64_t, SentRequest> acknowledged;
  std::vector<SentRequest> refused;

  // A healthy delivery first: the stream is live and edge a holds database connections.
  SentRequest first = request(edgeA, "/outage", "before the outage");
  int64_t firstId = ingestOk(edgeA, hook.id, first);
  ASSERT_GT(firstId, 0);
  acknowledged.emplace(firstId, first);
  ASSERT_TRUE(target_->waitForCount(1, kMultiEdgeStepTimeout));
  ASSERT_TRUE(stream.waitForFrames(1, kMultiEdgeStepTimeout)) << stream.error();

  // The database goes away for edge a: every open connection is cut and new ones are closed
  // at once. Edge a must refuse; edge b still stores.
  auto cutAt = std::chrono::steady_clock::now();
  database.setDown(true);
  std::chrono::milliseconds slowestRefusal{0};
  for (int i = 0; i < kRefusedDuringOutage; ++i) {
    refused.push_back(request(edgeA, "/outage", "refused " + std::to_string(i)));
    auto sentAt = std::chrono::steady_clock::now();
    WireResponse answer = ingest(edgeA, hook.id, refused.back());
    slowestRefusal = std::max(slowestRefusal, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - sentAt));
    EXPECT_EQ(answer.status, 503) << "while the database is gone: " << answer.message.startLine
                                  << " " << answer.message.body;
    EXPECT_EQ(answer.message.value("Retry-After").value_or(""), "5");
    SentRequest elsewhere =
        request(edgeB, "/outage", "via b during the outage " + std::to_string(i));
    int64_t id = ingestOk(edgeB, hook.id, elsewhere);
    ASSERT_GT(id, 0);
    acknowledged.emplace(id, elsewhere);
  }

  RecordProperty("slowest_refusal_ms", static_cast<int>(slowestRefusal.count()));
  RecordProperty("outage_phase_ms",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - cutAt)
                                      .count()));

  // A load balancer asking edge a whether to send it webhooks is told no, and why; edge b,
  // whose line is up, says yes. Store errors show in edge a's metrics.
  const auto get = [](EdgeProcess& edge, const std::string& path) {
    return exchange(edge.port(),
                    "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false);
  };
  const WireResponse notReady = get(edgeA, "/readyz");
  EXPECT_EQ(notReady.status, 503) << notReady.message.body;
  EXPECT_NE(notReady.message.body.find("\"store\":\"unreachable"), std::string::npos)
      << notReady.message.body;
  EXPECT_EQ(get(edgeB, "/readyz").status, 200);
  EXPECT_NE(get(edgeA, "/metrics").message.body.find("anonymily_ready 0\n"), std::string::npos);
  const std::string storeErrors = "anonymily_store_errors_total{path=\"request\"} ";
  const std::string metrics = get(edgeA, "/metrics").message.body;
  const size_t errorsAt = metrics.find(storeErrors);
  ASSERT_NE(errorsAt, std::string::npos) << metrics;
  EXPECT_GE(std::stoll(metrics.substr(errorsAt + storeErrors.size())), kRefusedDuringOutage)
      << metrics;

  // The outage lasts; the scenario, not an assertion, needs the wait.
  std::this_thread::sleep_until(cutAt + kOutage);
  EXPECT_GT(database.refused(), 0u) << "edge a never tried to reach the database";
  EXPECT_FALSE(stream.ended()) << "edge a closed a stream during the outage: " << stream.error();
  EXPECT_EQ(target_->count(), 1u) << "edge a relayed what it could not have read";
  database.setDown(false);

  // Providers retry; edge a must take webhooks again by itself, and every refusal on the way
  // must still be a clean 503.
  auto healedAt = std::chrono::steady_clock::now();
  bool recovered = false;
  while (std::chrono::steady_clock::now() - healedAt < kRecoveryLimit) {
    SentRequest sent = request(edgeA, "/outage", "retry " + std::to_string(refused.size()));
    WireResponse answer = ingest(edgeA, hook.id, sent);
    if (answer.status == 200) {
      int64_t id = jsonInt(parseObject(answer.message.body), "id", 0);
      ASSERT_GT(id, 0) << answer.message.body;
      acknowledged.emplace(id, sent);
      recovered = true;
      break;
    }
    EXPECT_EQ(answer.status, 503) << answer.message.startLine << " " << answer.message.body;
    EXPECT_EQ(answer.message.value("Retry-After").value_or(""), "5");
    refused.push_back(sent);
    std::this_thread::sleep_for(kRetryEvery);
  }
  ASSERT_TRUE(recovered) << "edge a did not store again within " << kRecoveryLimit.count()
                         << " s of the database coming back";

  // Ready again once its probe reads the store (at most one probe interval later).
  const auto readyBy = std::chrono::steady_clock::now() + kRecoveryLimit;
  while (get(edgeA, "/readyz").status != 200 && std::chrono::steady_clock::now() < readyBy) {
    std::this_thread::sleep_for(kRetryEvery);
  }
  EXPECT_EQ(get(edgeA, "/readyz").status, 200);
  RecordProperty("refused", static_cast<int>(refused.size()));
  RecordProperty("recovery_ms",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - healedAt)
                                      .count()));
  for (int i = 0; i < kAfterRecovery; ++i) {
    SentRequest sent = request(edgeA, "/outage", "after " + std::to_string(i));
    int64_t id = ingestOk(edgeA, hook.id, sent);
    ASSERT_GT(id, 0);
    acknowledged.emplace(id, sent);
  }
  std::vector<int64_t> ids;
  std::vector<SentRequest> inOrder;
  for (const auto& [id, sent] : acknowledged) {
    ids.push_back(id);
    inOrder.push_back(sent);
  }

  // The relay gets exactly the acknowledged webhooks, those edge b took during the outage
  // included, in id order, over the stream it held all along.
  ASSERT_TRUE(target_->waitForCount(ids.size(), kMultiEdgeStepTimeout))
      << "target got " << target_->count() << " of " << ids.size();
  ASSERT_TRUE(relay.waitForReports(ids.size(), kMultiEdgeStepTimeout));
  EXPECT_EQ(reportedIds(relay), ids);
  ASSERT_TRUE(stream.waitForFrames(ids.size(), kMultiEdgeStepTimeout)) << stream.error();
  EXPECT_EQ(stream.webhookIds(), ids);
  EXPECT_FALSE(stream.ended()) << stream.error();
  size_t streamOpens = 0;
  for (const auto& line : relay.process().stderrLines()) {
    streamOpens += line.find("stream connected") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(streamOpens, 1u) << "the relay had to reconnect its stream";

  auto received = target_->requests();
  ASSERT_EQ(received.size(), inOrder.size());
  for (size_t i = 0; i < inOrder.size(); ++i) {
    SCOPED_TRACE("delivery " + std::to_string(i) + " seq " + seqOf(inOrder[i]));
    expectDeliveredUnchanged(inOrder[i], received[i], target_->port());
  }
  for (const auto& sent : refused) {
    EXPECT_TRUE(withSeq(received, seqOf(sent)).empty())
        << "refused seq " << seqOf(sent) << " was relayed";
  }

  // Straight from the database, opened with the edges' ring: exactly the acknowledged webhooks
  // were stored, under their ids, each sealed and byte for byte, and no refused one.
  std::vector<StoredEvent> stored = storedEvents();
  std::vector<int64_t> storedIds;
  for (const auto& row : stored) storedIds.push_back(row.id);
  EXPECT_EQ(storedIds, ids) << refused.size() << " webhooks were refused";
  for (size_t i = 0; i < stored.size() && i < inOrder.size(); ++i) {
    expectStoredSealed(stored[i], inOrder[i]);
  }
  EXPECT_EQ(listedIdsOnceCaughtUp(edgeA, hook, ids), ids);
  EXPECT_EQ(listedIdsOnceCaughtUp(edgeB, hook, ids), ids);
}

// Senders and the flapping schedule of the load test below.
constexpr int kFlapSenders = 4;
constexpr int kFlapCycles = 6;
constexpr auto kFlapUp = std::chrono::milliseconds(300);
constexpr auto kFlapDown = std::chrono::milliseconds(300);

TEST_F(MySqlOutageTest, FlappingDatabaseUnderLoadLosesNoAcknowledgedWebhook) {
  TcpProxy database(test::testMySqlServer()->port);
  EdgeProcess& edgeA = startEdge("a", database.port());
  EdgeProcess& edgeB = startEdge("b");
  HookAccess hook = createHook(edgeB);
  RelayProcess& relay = startRelay(edgeB, "relay", hook);
  SseReader streamA(edgeA.port(), hook.id, hook.token, 0);

  // Providers that keep sending to edge a while its database line goes up and down, cutting
  // connections in the middle of whatever they were doing, commits included.
  struct Outcome {
    SentRequest sent;
    int status = 0;
    std::string retryAfter;
    int64_t id = 0;
    std::string failure;  ///< set when no HTTP answer came at all
  };
  std::vector<std::vector<Outcome>> outcomes(kFlapSenders);
  std::atomic<bool> sending{true};
  std::vector<std::thread> senders;
  std::mutex requestMutex;
  for (int s = 0; s < kFlapSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; sending; ++i) {
        Outcome outcome;
        {
          std::lock_guard<std::mutex> lock(requestMutex);
          outcome.sent = request(edgeA, "/flap",
                                 "sender " + std::to_string(s) + " webhook " + std::to_string(i));
        }
        try {
          WireResponse answer = ingest(edgeA, hook.id, outcome.sent);
          outcome.status = answer.status;
          outcome.retryAfter = answer.message.value("Retry-After").value_or("");
          if (answer.status == 200) {
            outcome.id = jsonInt(parseObject(answer.message.body), "id", 0);
          }
        } catch (const std::exception& e) {
          outcome.failure = e.what();
        }
        outcomes[s].push_back(std::move(outcome));
      }
    });
  }
  for (int cycle = 0; cycle < kFlapCycles; ++cycle) {
    std::this_thread::sleep_for(kFlapUp);
    database.setDown(true);
    std::this_thread::sleep_for(kFlapDown);
    database.setDown(false);
  }
  std::this_thread::sleep_for(kFlapUp);
  sending = false;
  for (auto& sender : senders) sender.join();

  // Every answer is a 200 with an id or a 503 with Retry-After; nothing else, and no hang.
  std::map<int64_t, SentRequest> acknowledged;
  std::vector<SentRequest> refused;
  for (const auto& list : outcomes) {
    for (const auto& outcome : list) {
      SCOPED_TRACE("seq " + seqOf(outcome.sent));
      EXPECT_EQ(outcome.failure, "");
      if (outcome.status == 200) {
        EXPECT_GT(outcome.id, 0);
        auto [it, added] = acknowledged.emplace(outcome.id, outcome.sent);
        EXPECT_TRUE(added) << "id " << outcome.id << " acknowledged for two webhooks, seq "
                           << seqOf(it->second) << " and seq " << seqOf(outcome.sent);
        continue;
      }
      if (!outcome.failure.empty()) continue;
      EXPECT_EQ(outcome.status, 503);
      EXPECT_EQ(outcome.retryAfter, "5");
      refused.push_back(outcome.sent);
    }
  }
  RecordProperty("acknowledged", static_cast<int>(acknowledged.size()));
  RecordProperty("refused", static_cast<int>(refused.size()));
  ASSERT_GT(refused.size(), 0u) << "the database line never went down for the edge";

  // With the line back for good, each edge takes webhooks again by itself: an edge may still
  // be waiting out its reconnect pause, so a 503 is retried until kRecoveryLimit.
  for (EdgeProcess* edge : {&edgeA, &edgeB}) {
    const auto giveUpAt = std::chrono::steady_clock::now() + kRecoveryLimit;
    bool taken = false;
    for (int attempt = 0; !taken && std::chrono::steady_clock::now() < giveUpAt; ++attempt) {
      // Each try has a body of its own, so that a refused one is told apart from the one taken.
      SentRequest sent = request(*edge, "/flap",
                                 "after the flapping, try " + std::to_string(attempt) +
                                     " on port " + std::to_string(edge->port()));
      WireResponse answer = ingest(*edge, hook.id, sent);
      if (answer.status == 503) {
        refused.push_back(sent);
        std::this_thread::sleep_for(kRetryEvery);
        continue;
      }
      ASSERT_EQ(answer.status, 200) << answer.message.startLine << " " << answer.message.body;
      const int64_t id = jsonInt(parseObject(answer.message.body), "id", 0);
      ASSERT_GT(id, 0) << answer.message.body;
      acknowledged.emplace(id, sent);
      taken = true;
    }
    ASSERT_TRUE(taken) << "an edge did not store again within " << kRecoveryLimit.count()
                       << " s of the database coming back";
  }
  std::vector<int64_t> ids;
  for (const auto& entry : acknowledged) ids.push_back(entry.first);

  // Every acknowledged webhook is stored, sealed, with its bytes, and none that was refused.
  std::map<int64_t, StoredEvent> stored;
  for (auto& row : storedEvents()) stored.emplace(row.id, std::move(row));
  for (const auto& [id, sent] : acknowledged) {
    auto it = stored.find(id);
    if (it == stored.end()) {
      ADD_FAILURE() << "acknowledged event " << id << " (seq " << seqOf(sent) << ") is lost";
      continue;
    }
    expectStoredSealed(it->second, sent);
  }
  std::set<std::string> storedBodies;
  for (const auto& entry : stored) storedBodies.insert(entry.second.opened.body);
  for (const auto& sent : refused) {
    EXPECT_EQ(storedBodies.count(sent.body), 0u)
        << "seq " << seqOf(sent) << " was answered 503 yet stored: its provider will send it "
        << "again and the relay will get it twice";
  }
  EXPECT_EQ(stored.size(), acknowledged.size());

  // The relay on edge b and the stream on edge a get exactly the acknowledged ones, in order.
  ASSERT_TRUE(relay.waitForReports(ids.size(), kMultiEdgeStepTimeout))
      << "relay reported " << relay.reports().size() << " of " << ids.size();
  EXPECT_EQ(reportedIds(relay), ids);
  ASSERT_TRUE(streamA.waitForFrames(ids.size(), kMultiEdgeStepTimeout))
      << "edge a streamed " << streamA.frames().size() << " of " << ids.size() << " "
      << streamA.error();
  EXPECT_EQ(streamA.webhookIds(), ids);
  auto received = target_->requests();
  ASSERT_EQ(received.size(), ids.size());
  size_t i = 0;
  for (const auto& [id, sent] : acknowledged) {
    SCOPED_TRACE("event " + std::to_string(id) + " seq " + seqOf(sent));
    expectDeliveredUnchanged(sent, received[i++], target_->port());
  }
}

// The COM_QUERY packet body of the COMMIT that the client library sends (command byte 0x03).
const std::string kCommitCommand = std::string("\x03") + "COMMIT";

TEST_F(MySqlOutageTest, WebhookWhoseCommitNeverReachedTheDatabaseIsNotAcknowledged) {
  // Edge a writes through the proxy and has no relay (so its only COMMITs are event writes);
  // the relay and the hook live on edge b.
  TcpProxy database(test::testMySqlServer()->port);
  EdgeProcess& edgeA = startEdge("a", database.port());
  EdgeProcess& edgeB = startEdge("b");
  HookAccess hook = createHook(edgeB);
  RelayProcess& relay = startRelay(edgeB, "relay", hook);
  SentRequest first = request(edgeA, "/commit", "before the trap");
  int64_t firstId = ingestOk(edgeA, hook.id, first);
  ASSERT_GT(firstId, 0);

  // The line to the database breaks exactly when the writer sends COMMIT: the server never
  // gets it and rolls the transaction back. The edge must not answer 200 for that webhook.
  database.cutWhenClientSends(kCommitCommand);
  SentRequest trapped = request(edgeA, "/commit", "its commit never arrived");
  WireResponse answer = ingest(edgeA, hook.id, trapped);
  ASSERT_EQ(database.trapsSprung(), 1u) << "the trap did not see the COMMIT";
  RecordProperty("trapped_status", answer.status);
  int64_t trappedId = answer.status == 200 ? jsonInt(parseObject(answer.message.body), "id") : 0;

  // The edge reconnects by itself and stores the next webhook.
  SentRequest next = request(edgeA, "/commit", "after the trap");
  int64_t nextId = ingestOk(edgeA, hook.id, next);
  ASSERT_GT(nextId, 0);

  // Whatever was acknowledged is stored, sealed, under its id with its own bytes.
  auto expectStored = [&](int64_t id, const SentRequest& sent) {
    auto row = storedEvent(id);
    if (!row) {
      ADD_FAILURE() << "edge a acknowledged event " << id << " (seq " << seqOf(sent)
                    << ") with 200 but never stored it";
      return;
    }
    expectStoredSealed(*row, sent);
  };
  expectStored(firstId, first);
  expectStored(nextId, next);
  if (answer.status == 200) {
    expectStored(trappedId, trapped);
    EXPECT_NE(trappedId, nextId) << "one id was acknowledged for two webhooks";
  } else {
    EXPECT_EQ(answer.status, 503) << answer.message.startLine << " " << answer.message.body;
    EXPECT_EQ(answer.message.value("Retry-After").value_or(""), "5");
    EXPECT_EQ(storedCopiesOf(trapped), 0) << "answered 503 yet stored";
  }

  // The relay gets every acknowledged webhook exactly as it was sent.
  std::map<int64_t, const SentRequest*> acknowledged{{firstId, &first}, {nextId, &next}};
  if (answer.status == 200) acknowledged.emplace(trappedId, &trapped);
  ASSERT_TRUE(target_->waitForCount(acknowledged.size(), kMultiEdgeStepTimeout))
      << "target got " << target_->count() << " of " << acknowledged.size();
  ASSERT_TRUE(relay.waitForReports(acknowledged.size(), kMultiEdgeStepTimeout));
  auto received = target_->requests();
  for (const auto& [id, sent] : acknowledged) {
    SCOPED_TRACE("event " + std::to_string(id));
    auto got = withSeq(received, seqOf(*sent));
    ASSERT_EQ(got.size(), 1u) << "acknowledged seq " << seqOf(*sent) << " was delivered "
                              << got.size() << " times";
    expectDeliveredUnchanged(*sent, got[0], target_->port());
  }
}

TEST_F(MySqlOutageTest, WebhookWhoseCommitWasUnconfirmedIsAnsweredAsStoredOrNotStored) {
  TcpProxy database(test::testMySqlServer()->port);
  EdgeProcess& edgeA = startEdge("a", database.port());
  EdgeProcess& edgeB = startEdge("b");
  HookAccess hook = createHook(edgeB);
  RelayProcess& relay = startRelay(edgeB, "relay", hook);
  SentRequest first = request(edgeA, "/commit", "before the trap");
  ASSERT_GT(ingestOk(edgeA, hook.id, first), 0);

  // The COMMIT reaches the server, which commits; its answer never reaches the edge. The edge
  // cannot tell from the lost line, but docs/protocol.md promises that a 503 stored nothing
  // (the provider sends it again) and a 200 stored it.
  database.cutWhenClientSends(kCommitCommand, true);
  SentRequest unconfirmed = request(edgeA, "/commit", "its commit was not confirmed");
  WireResponse answer = ingest(edgeA, hook.id, unconfirmed);
  ASSERT_EQ(database.trapsSprung(), 1u) << "the trap did not see the COMMIT";
  RecordProperty("unconfirmed_status", answer.status);
  SentRequest next = request(edgeA, "/commit", "after the trap");
  int64_t nextId = ingestOk(edgeA, hook.id, next);
  ASSERT_GT(nextId, 0);

  const int64_t storedCopies = storedCopiesOf(unconfirmed);
  if (answer.status == 200) {
    EXPECT_EQ(storedCopies, 1) << "acknowledged with 200 but not stored";
    int64_t id = jsonInt(parseObject(answer.message.body), "id", 0);
    auto row = storedEvent(id);
    ASSERT_TRUE(row.has_value()) << "acknowledged as event " << id << " which is not stored";
    expectStoredSealed(*row, unconfirmed);
  } else {
    EXPECT_EQ(answer.status, 503) << answer.message.startLine << " " << answer.message.body;
    EXPECT_EQ(storedCopies, 0) << "answered 503 (\"nothing was stored\") yet stored: the "
                               << "provider's retry will reach the relay a second time";
  }

  // What is stored reaches the relay, once.
  const size_t expected = 2 + static_cast<size_t>(storedCopies);
  ASSERT_TRUE(relay.waitForReports(expected, kMultiEdgeStepTimeout))
      << "relay reported " << relay.reports().size() << " of " << expected;
  EXPECT_EQ(withSeq(target_->requests(), seqOf(unconfirmed)).size(),
            static_cast<size_t>(storedCopies));
}

}  // namespace
}  // namespace anm::e2e
