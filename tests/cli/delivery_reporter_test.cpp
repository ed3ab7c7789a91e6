// tests/cli/delivery_reporter_test.cpp: the report queue's bound and the bulk body it sends.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/delivery_reporter.h"

#include <gtest/gtest.h>

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

TEST(DeliveryReporterTest, BatchJsonFollowsTheProtocol) {
  const std::deque<DeliveryReport> batch = {{17, 200, 3, ""}, {18, 0, 1000, "timeout"}};
  EXPECT_EQ(DeliveryReporter::batchJson("r1", batch),
            R"({"deliveries":[{"event":17,"relay":"r1","status":200,"duration_ms":3,"error":""},)"
            R"({"event":18,"relay":"r1","status":0,"duration_ms":1000,"error":"timeout"}]})");
}

}  // namespace
}  // namespace anm::cli
