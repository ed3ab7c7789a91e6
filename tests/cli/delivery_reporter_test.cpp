// tests/cli/delivery_reporter_test.cpp: the report queue's bound, batching and bulk body.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/delivery_reporter.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/fake_edge.h"

namespace anm::cli {
namespace {

TEST(DeliveryReporterTest, FullQueueDropsTheOldestAndCountsThem) {
  std::string error;
  const auto edge = Url::parse("http://127.0.0.1:9", error);
  ASSERT_TRUE(edge);
  DeliveryReporter::Options options;
  options.maxQueued = 3;

  // Not started: nothing is sent, so the bound alone decides.
  DeliveryReporter reporter(*edge, "hook", "token", "relay", options);
  for (int i = 1; i <= 5; ++i) reporter.enqueue(DeliveryReport{i, 200, 1, ""});
  EXPECT_EQ(reporter.dropped(), 2u);
  EXPECT_EQ(reporter.sent(), 0u);
}

Url fakeEdgeUrl(const test::FakeEdge& edge) {
  std::string error;
  const auto url = Url::parse(edge.url(), error);
  if (!url) throw std::runtime_error(error);
  return *url;
}

TEST(DeliveryReporterTest, ReportsQueuedTogetherShareOneRequest) {
  test::FakeEdge edge;
  DeliveryReporter::Options options;
  options.gatherDelay = std::chrono::hours(1);  // only stop() ends the gathering here
  DeliveryReporter reporter(fakeEdgeUrl(edge), test::FakeEdge::kHookId, test::FakeEdge::kToken,
                            "relay-1", options);
  reporter.start();
  for (int i = 1; i <= 50; ++i) reporter.enqueue(DeliveryReport{i, 200, 1, ""});
  reporter.stop();

  // All fifty arrived, in order, with one POST.
  const auto deliveries = edge.deliveries();
  ASSERT_EQ(deliveries.size(), 50u);
  EXPECT_EQ(deliveries.front().event, 1);
  EXPECT_EQ(deliveries.back().event, 50);
  EXPECT_EQ(reporter.requests(), 1u);
  EXPECT_EQ(edge.authorizations().size(), 1u);
  EXPECT_EQ(reporter.sent(), 50u);
}

TEST(DeliveryReporterTest, AFullBatchGoesOutWithoutWaitingForTheGatherDelay) {
  test::FakeEdge edge;
  DeliveryReporter::Options options;
  options.batchSize = 10;
  options.gatherDelay = std::chrono::hours(1);
  DeliveryReporter reporter(fakeEdgeUrl(edge), test::FakeEdge::kHookId, test::FakeEdge::kToken,
                            "relay-1", options);
  reporter.start();
  for (int i = 1; i <= 10; ++i) reporter.enqueue(DeliveryReport{i, 200, 1, ""});

  // No stop(): only the full batch can have woken the sender.
  ASSERT_TRUE(test::FakeEdge::waitUntil([&] { return edge.deliveries().size() == 10; }));
  EXPECT_EQ(reporter.requests(), 1u);
  reporter.stop();
}

TEST(DeliveryReporterTest, BatchJsonFollowsTheProtocol) {
  std::deque<DeliveryReport> batch = {{17, 302, 3, ""}, {18, 0, 1000, "timeout"}};
  batch[0].timeoutMs = 1000;
  batch[0].startedAtMs = 1764800000000;
  batch[0].responseExcerpt = "<a href=\"/login\">\n";
  batch[0].location = "/login";
  batch[1].phase = NetPhase::kReceiving;
  batch[1].timeoutMs = 1000;
  batch[1].targetHttps = true;
  EXPECT_EQ(DeliveryReporter::batchJson("r1", batch),
            R"({"deliveries":[{"event":17,"relay":"r1","status":302,"duration_ms":3,"error":"",)"
            R"("phase":"unknown","timeout_ms":1000,"target_https":false,)"
            R"("started_at_ms":1764800000000,"response_excerpt":"<a href=\"/login\">\u000a",)"
            R"("location":"/login"},)"
            R"({"event":18,"relay":"r1","status":0,"duration_ms":1000,"error":"timeout",)"
            R"("phase":"receiving","timeout_ms":1000,"target_https":true,"started_at_ms":0,)"
            R"("response_excerpt":"","location":""}]})");
}

}  // namespace
}  // namespace anm::cli
