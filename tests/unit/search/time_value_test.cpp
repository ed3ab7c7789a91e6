// tests/unit/search/time_value_test.cpp: ISO 8601 and relative times, and printing them back.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/time_value.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/search/query_error.h"

namespace anm::search {
namespace {

constexpr int64_t kDec4 = daysFromCivil(2026, 12, 4) * kMsPerDay;
constexpr int64_t kNow = kDec4 + 12 * kMsPerHour;

TimeSpan timeOf(const std::string& text) { return parseTime(text, 0, kNow); }

/// The offset of the error parsing `text` at offset 5, or -1 when it parses.
long errorAt(const std::string& text) {
  try {
    parseTime(text, 5, kNow);
  } catch (const QueryError& e) {
    return static_cast<long>(e.position());
  }
  return -1;
}

TEST(DaysFromCivil, KnownDates) {
  EXPECT_EQ(daysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(daysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(daysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(kDec4 / 1000, 1796342400) << "2026-12-04T00:00:00Z in Unix seconds";
}

TEST(ParseTime, EachPrecisionCoversItsWholeSpan) {
  EXPECT_EQ(timeOf("2026-12-04").firstMs, kDec4);
  EXPECT_EQ(timeOf("2026-12-04").lastMs, kDec4 + kMsPerDay - 1);
  EXPECT_EQ(timeOf("2026-12").firstMs, daysFromCivil(2026, 12, 1) * kMsPerDay);
  EXPECT_EQ(timeOf("2026-12").lastMs, daysFromCivil(2027, 1, 1) * kMsPerDay - 1);
  EXPECT_EQ(timeOf("2026").lastMs, daysFromCivil(2027, 1, 1) * kMsPerDay - 1);
  EXPECT_EQ(timeOf("2026-12-04T10").firstMs, kDec4 + 10 * kMsPerHour);
  EXPECT_EQ(timeOf("2026-12-04T10").lastMs, kDec4 + 11 * kMsPerHour - 1);
  EXPECT_EQ(timeOf("2026-12-04T10:05").lastMs, kDec4 + 10 * kMsPerHour + 6 * kMsPerMinute - 1);
  EXPECT_EQ(timeOf("2026-12-04T10:00:00Z").firstMs, kDec4 + 10 * kMsPerHour);
  EXPECT_EQ(timeOf("2026-12-04T10:00:00Z").lastMs, kDec4 + 10 * kMsPerHour + 999);
  EXPECT_EQ(timeOf("2026-12-04T10:00:00.5Z").firstMs, kDec4 + 10 * kMsPerHour + 500);
  EXPECT_EQ(timeOf("2026-12-04T10:00:00.123").lastMs, kDec4 + 10 * kMsPerHour + 123);
  EXPECT_FALSE(timeOf("2026-12-04").relative);
}

TEST(ParseTime, OffsetsAreConvertedToUtc) {
  EXPECT_EQ(timeOf("2026-12-04T10:00:00+02:00").firstMs, kDec4 + 8 * kMsPerHour);
  EXPECT_EQ(timeOf("2026-12-04T01:30-01:30").firstMs, kDec4 + 3 * kMsPerHour);
  EXPECT_EQ(timeOf("2026-12-04T10:00:00z").firstMs, timeOf("2026-12-04T10:00:00").firstMs);
}

TEST(ParseTime, LeapDays) {
  EXPECT_EQ(timeOf("2024-02-29").firstMs, daysFromCivil(2024, 2, 29) * kMsPerDay);
  EXPECT_EQ(timeOf("2000-02-29").firstMs, daysFromCivil(2000, 2, 29) * kMsPerDay);
  EXPECT_EQ(errorAt("2026-02-29"), 5 + 8);
  EXPECT_EQ(errorAt("1900-02-29"), 5 + 8);
}

TEST(ParseTime, RelativeTimesAreInstantsAgainstNow) {
  EXPECT_EQ(timeOf("now").firstMs, kNow);
  EXPECT_TRUE(timeOf("now").relative);
  EXPECT_EQ(timeOf("now-2h").firstMs, kNow - 2 * kMsPerHour);
  EXPECT_EQ(timeOf("now-2h").lastMs, kNow - 2 * kMsPerHour);
  EXPECT_EQ(timeOf("now-15m").firstMs, kNow - 15 * kMsPerMinute);
  EXPECT_EQ(timeOf("now-30s").firstMs, kNow - 30 * kMsPerSecond);
  EXPECT_EQ(timeOf("now-7d").firstMs, kNow - 7 * kMsPerDay);
  EXPECT_EQ(timeOf("now-1w").firstMs, kNow - 7 * kMsPerDay);
  EXPECT_EQ(timeOf("now+1h").firstMs, kNow + kMsPerHour);
  EXPECT_EQ(timeOf("now-1d+2h").firstMs, kNow - kMsPerDay + 2 * kMsPerHour);
}

TEST(ParseTime, ErrorsPointAtTheWrongPart) {
  EXPECT_EQ(errorAt("2026-13-01"), 5 + 5) << "the month";
  EXPECT_EQ(errorAt("2026-12-32"), 5 + 8) << "the day";
  EXPECT_EQ(errorAt("2026-12-04T24"), 5 + 11) << "the hour";
  EXPECT_EQ(errorAt("2026-12-04T10:60"), 5 + 14) << "the minute";
  EXPECT_EQ(errorAt("2026-12-04T10:00:60"), 5 + 17) << "the second";
  EXPECT_EQ(errorAt("2026-12-04T10:00:00.1234"), 5 + 20) << "a fourth digit of fraction";
  EXPECT_EQ(errorAt("2026-12-04T10:00:00+25:00"), 5 + 19) << "the offset";
  EXPECT_EQ(errorAt("2026-12-04T10:00:00Zx"), 5 + 20) << "text after the zone";
  EXPECT_EQ(errorAt("2026-1-04"), 5 + 6) << "a one-digit month";
  EXPECT_EQ(errorAt("26-12-04"), 5 + 2) << "a two-digit year";
  EXPECT_EQ(errorAt("2026-12-04Z"), 5 + 10) << "a zone without a time";
  EXPECT_EQ(errorAt("yesterday"), 5);
  EXPECT_EQ(errorAt("now-2"), 5 + 5) << "no unit";
  EXPECT_EQ(errorAt("now-2y"), 5 + 5) << "an unknown unit";
  EXPECT_EQ(errorAt("now-h"), 5 + 4) << "no number";
  EXPECT_EQ(errorAt("now2h"), 5 + 3) << "no sign";
  EXPECT_EQ(errorAt("now-1234567890h"), 5 + 4) << "a number too large";
  EXPECT_EQ(errorAt("now-999999999w"), 5 + 3) << "before the year 0000";
}

TEST(ParseTime, MessagesNameTheProblemAndTheValue) {
  try {
    parseTime("2026-02-30", 5, kNow);
    FAIL() << "no error";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.problem(),
              "day 30 does not exist (February 2026 has 28 days) in time \"2026-02-30\"");
    EXPECT_EQ(e.position(), 13u);
    EXPECT_EQ(e.length(), 2u);
  }
}

TEST(FormatTime, BoundsPrintAtTheCoarsestExactPrecision) {
  EXPECT_EQ(formatTimeBound(kDec4, false), "2026-12-04");
  EXPECT_EQ(formatTimeBound(kDec4 + kMsPerDay - 1, true), "2026-12-04");
  EXPECT_EQ(formatTimeBound(kDec4 + 10 * kMsPerHour, false), "2026-12-04T10:00:00Z");
  EXPECT_EQ(formatTimeBound(kDec4 + 10 * kMsPerHour - 1, true), "2026-12-04T09:59:59Z");
  EXPECT_EQ(formatTimeBound(kDec4 + 10 * kMsPerHour + 7, false), "2026-12-04T10:00:00.007Z");
  EXPECT_EQ(formatTimeBound(kMinTimeMs, false), "0000-01-01");
  EXPECT_EQ(formatTimeBound(kMaxTimeMs, true), "9999-12-31");
  EXPECT_EQ(formatTimeBound(-1, false), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(formatTimeBound(-1, true), "1969-12-31");
}

TEST(FormatTime, WholeSpansPrintAsOneValue) {
  EXPECT_EQ(formatTimeSpan(kDec4, kDec4 + kMsPerDay - 1), "2026-12-04");
  const TimeSpan month = timeOf("2026-02");
  EXPECT_EQ(formatTimeSpan(month.firstMs, month.lastMs), "2026-02");
  const TimeSpan year = timeOf("2024");
  EXPECT_EQ(formatTimeSpan(year.firstMs, year.lastMs), "2024");
  EXPECT_EQ(formatTimeSpan(kDec4, kDec4 + 999), "2026-12-04T00:00:00Z");
  EXPECT_EQ(formatTimeSpan(kDec4 + 5, kDec4 + 5), "2026-12-04T00:00:00.005Z");
  EXPECT_EQ(formatTimeSpan(kDec4, kDec4 + kMsPerHour - 1), "") << "an hour prints as a range";
  EXPECT_EQ(formatTimeSpan(kDec4, kDec4 + 2 * kMsPerDay - 1), "");
}

TEST(FormatTime, EveryPrintedBoundReadsBackTheSame) {
  std::mt19937_64 random(6);
  for (int round = 0; round < 5000; ++round) {
    // Whole days, seconds and milliseconds all occur often enough.
    int64_t ms = kMinTimeMs +
                 static_cast<int64_t>(random() % static_cast<uint64_t>(kMaxTimeMs - kMinTimeMs));
    if (round % 3 == 0) ms -= ms % kMsPerDay;
    if (round % 3 == 1) ms -= ms % kMsPerSecond;
    EXPECT_EQ(timeOf(formatTimeBound(ms, false)).firstMs, ms) << ms;
    EXPECT_EQ(timeOf(formatTimeBound(ms, true)).lastMs, ms) << ms;
  }
}

}  // namespace
}  // namespace anm::search
