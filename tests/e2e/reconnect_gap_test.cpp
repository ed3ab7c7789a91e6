// tests/e2e/reconnect_gap_test.cpp: a relay that loses its connection to the edge gets every
// event it missed once it is back, once each and in order.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <thread>

#include "tests/e2e/relay_env.h"

namespace anm::e2e {
namespace {

// How long the line stays cut: several of the relay's documented 1 s retry intervals.
constexpr auto kOutage = std::chrono::milliseconds(3000);

// Reconnecting may take a backoff step or two beyond the outage.
constexpr std::chrono::milliseconds kCatchUpTimeout(20000);

class ReconnectGapTest : public E2eTest {};

TEST_F(ReconnectGapTest, EventsStoredWhileCutOffArriveOnceEachInOrder) {
  RelayEnvOptions options;
  options.viaProxy = true;
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));
  TargetServer& target = *env_->target;
  TcpProxy& proxy = *env_->proxy;

  // One event delivered over the healthy line proves the stream is up.
  SentRequest first = request("POST", "/gap", "", {{"Content-Type", "text/plain"}}, "event 1");
  ASSERT_EQ(env_->ingest(first).status, 200);
  ASSERT_TRUE(target.waitForCount(1, kStepTimeout));
  ASSERT_EQ(proxy.openConnections() > 0, true);

  // Cut the line, then store three events that the relay cannot see yet.
  auto cutAt = std::chrono::steady_clock::now();
  proxy.setDown(true);
  std::vector<SentRequest> missed;
  for (int i = 2; i <= 4; ++i) {
    missed.push_back(request("POST", "/gap", "n=" + std::to_string(i),
                             {{"Content-Type", "text/plain"}}, "event " + std::to_string(i)));
    WireResponse answer = env_->ingest(missed.back());
    ASSERT_EQ(answer.status, 200) << answer.message.body;
  }

  // Keep the line down for the whole outage; the scenario, not an assertion, needs the wait.
  std::this_thread::sleep_until(cutAt + kOutage);
  EXPECT_EQ(target.count(), 1u) << "an event got through a cut line";
  EXPECT_GT(proxy.refused(), 0u) << "the relay did not try to reconnect during the outage";
  size_t acceptedBefore = proxy.accepted();
  proxy.setDown(false);

  // Everything missed arrives, and only that.
  ASSERT_TRUE(target.waitForCount(1 + missed.size(), kCatchUpTimeout))
      << "target got " << target.count() << " of " << 1 + missed.size();
  ASSERT_TRUE(env_->relay->waitForReports(1 + missed.size(), kStepTimeout));
  EXPECT_GT(proxy.accepted(), acceptedBefore) << "the relay did not reconnect through the proxy";

  auto received = target.requests();
  ASSERT_EQ(received.size(), 1 + missed.size());
  EXPECT_EQ(withSeq(received, seqOf(first)).size(), 1u) << "the first event came twice";
  expectDeliveredUnchanged(first, received[0], target.port());
  for (size_t i = 0; i < missed.size(); ++i) {
    SCOPED_TRACE("missed event " + std::to_string(i + 2));
    EXPECT_EQ(withSeq(received, seqOf(missed[i])).size(), 1u);
    expectDeliveredUnchanged(missed[i], received[i + 1], target.port());
  }
}

}  // namespace
}  // namespace anm::e2e
