// tests/cli/backoff_test.cpp: the reconnect delays: doubling from the start, capped, jittered.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>

#include "cli/src/relay.h"

namespace anm::cli {
namespace {

using std::chrono::milliseconds;

TEST(BackoffDelayTest, DoublesFromTheStartWithinTheUpperHalfAndStopsAtTheCap) {
  std::mt19937_64 random(42);
  const milliseconds start{250};
  const milliseconds cap{10000};

  // Many draws per attempt, so that a range that is too wide or too narrow shows.
  for (int attempt = 0; attempt < 40; ++attempt) {
    const int64_t base = std::min<int64_t>(cap.count(), start.count() << std::min(attempt, 16));
    int64_t low = INT64_MAX;
    int64_t high = 0;
    for (int draw = 0; draw < 200; ++draw) {
      const int64_t delay = backoffDelay(attempt, start, cap, random).count();
      low = std::min(low, delay);
      high = std::max(high, delay);
    }
    EXPECT_GE(low, base / 2) << "attempt " << attempt;
    EXPECT_LE(high, base) << "attempt " << attempt;
    EXPECT_LT(low, high) << "attempt " << attempt << " has no jitter";
  }
}

TEST(BackoffDelayTest, DocumentedNumbers250MsFirstAnd10SecondsAtMost) {
  std::mt19937_64 random(7);
  const milliseconds start{250};
  const milliseconds cap{10000};
  for (int draw = 0; draw < 100; ++draw) {
    const milliseconds first = backoffDelay(0, start, cap, random);
    EXPECT_GE(first.count(), 125);
    EXPECT_LE(first.count(), 250);
    const milliseconds late = backoffDelay(1000000, start, cap, random);
    EXPECT_GE(late.count(), 5000);
    EXPECT_LE(late.count(), 10000);
  }
}

}  // namespace
}  // namespace anm::cli
