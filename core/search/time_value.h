// core/search/time_value.h: the times a search query names: ISO 8601 dates and times, now-2h.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace anm::search {

/// Days between 1970-01-01 and the given proleptic Gregorian date (negative before it).
/// `month` is 1..12 and `day` 1..31; the caller checks that the date exists.
constexpr int64_t daysFromCivil(int64_t year, unsigned month, unsigned day) {
  // The year is counted from March so that the leap day ends it; eras of 400 years repeat.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yearOfEra = static_cast<unsigned>(year - era * 400);
  const unsigned dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
  return era * 146097 + static_cast<int64_t>(dayOfEra) - 719468;
}

inline constexpr int64_t kMsPerSecond = 1000;
inline constexpr int64_t kMsPerMinute = 60 * kMsPerSecond;
inline constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
inline constexpr int64_t kMsPerDay = 24 * kMsPerHour;

/// The times a query can name: years 0000 to 9999, so that every time prints as four digits
/// of year and reads back the same.
inline constexpr int64_t kMinTimeMs = daysFromCivil(0, 1, 1) * kMsPerDay;
inline constexpr int64_t kMaxTimeMs = daysFromCivil(10000, 1, 1) * kMsPerDay - 1;

/// What a time value covers: an ISO date stands for its whole day, a time to the minute for
/// its whole minute, and so on; a relative time (`now-2h`) is one millisecond.
struct TimeSpan {
  int64_t firstMs = 0;
  int64_t lastMs = 0;  ///< inclusive
  bool relative = false;
};

/// Parses a time value of a query: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, then optionally `Thh`,
/// `Thh:mm`, `Thh:mm:ss` or `Thh:mm:ss.f` (1 to 3 digits of fraction), then optionally `Z` or
/// an offset `+hh:mm` / `-hh:mm` (no zone means UTC); or `now` followed by any number of
/// `+N<unit>` / `-N<unit>` with unit s, m, h, d or w, resolved against `nowMs`. Throws
/// QueryError at `offset` plus the place in `text` that is wrong.
TimeSpan parseTime(std::string_view text, size_t offset, int64_t nowMs);

/// How a bound is printed: the start of a span (`asEnd` false) or its end (`asEnd` true), at
/// the coarsest of day, second or millisecond that names exactly that instant. The result
/// reads back through parseTime to the same bound.
std::string formatTimeBound(int64_t ms, bool asEnd);

/// A span that is exactly one year, month, day, second or millisecond printed as one value
/// (`2026-12`, `2026-12-04`); "" when it is none of these.
std::string formatTimeSpan(int64_t firstMs, int64_t lastMs);

}  // namespace anm::search
