// core/search/time_value.cpp: the times a search query names: ISO 8601 dates and times, now-2h.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/time_value.h"

#include <cstdio>
#include <string>

#include "core/search/query_error.h"

namespace anm::search {
namespace {

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

Civil civilFromDays(int64_t days) {
  // The inverse of daysFromCivil, on the same March-based 400-year eras.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto dayOfEra = static_cast<unsigned>(days - era * 146097);
  const unsigned yearOfEra =
      (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
  const unsigned dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
  const unsigned monthFromMarch = (5 * dayOfYear + 2) / 153;
  const unsigned day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1;
  const unsigned month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  return {static_cast<int64_t>(yearOfEra) + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

bool isLeapYear(int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned daysInMonth(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && isLeapYear(year) ? 29 : kDays[month - 1];
}

const char* monthName(unsigned month) {
  static constexpr const char* kNames[] = {"January",   "February", "March",    "April",
                                           "May",       "June",     "July",     "August",
                                           "September", "October",  "November", "December"};
  return kNames[month - 1];
}

constexpr const char* kTimeHint =
    "write a time as 2026-12-04, 2026-12-04T10:00:00Z or now-2h (units s, m, h, d, w)";

bool isDigit(char c) { return c >= '0' && c <= '9'; }

/// Reads the fields of one time value left to right, throwing at the first byte that is wrong.
class TimeReader {
 public:
  TimeReader(std::string_view text, size_t offset) : text_(text), offset_(offset) {}

  bool atEnd() const { return at_ == text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[at_]; }
  size_t at() const { return at_; }

  bool accept(char c) {
    if (peek() != c) return false;
    ++at_;
    return true;
  }

  /// Exactly `count` digits, else an error naming what was expected there.
  int64_t digits(size_t count, const char* what) {
    int64_t value = 0;
    for (size_t i = 0; i < count; ++i) {
      if (!isDigit(peek())) fail(at_, 1, std::string("expected ") + what);
      value = value * 10 + (text_[at_++] - '0');
    }
    return value;
  }

  /// A two-digit part of a date or time within [low, high]; `name` says which in messages.
  int64_t component(const std::string& name, int64_t low, int64_t high) {
    const size_t start = at_;
    const int64_t value = digits(2, ("a two-digit " + name).c_str());
    if (value < low || value > high) {
      fail(start, 2, name + " " + std::to_string(value) + " does not exist");
    }
    return value;
  }

  /// `.f` to `.fff` after the seconds, as milliseconds.
  int64_t fraction() {
    const size_t start = at_;
    int64_t ms = 0;
    int64_t scale = 100;
    while (isDigit(peek())) {
      if (scale == 0) fail(start, 4, "more than 3 digits of fraction");
      ms += (text_[at_++] - '0') * scale;
      scale /= 10;
    }
    if (at_ == start) fail(start, 1, "expected digits");
    return ms;
  }

  /// `Z`, `+hh:mm`, `-hh:mm` or nothing (UTC), as the milliseconds the zone is ahead of UTC.
  int64_t zoneOffset() {
    if (atEnd() || accept('Z') || accept('z')) return 0;
    const size_t start = at_;
    const char sign = peek();
    if (sign != '+' && sign != '-') fail(start, 1, "expected Z or an offset");
    ++at_;
    const int64_t hours = digits(2, "a two-digit offset hour");
    if (!accept(':')) fail(at_, 1, "expected \":\" in the offset");
    const int64_t minutes = digits(2, "two-digit offset minutes");
    if (hours > 23 || minutes > 59) fail(start, 6, "offset does not exist");
    const int64_t ahead = hours * kMsPerHour + minutes * kMsPerMinute;
    return sign == '+' ? ahead : -ahead;
  }

  [[noreturn]] void fail(size_t at, size_t length, const std::string& problem) const {
    const size_t clamped = at < text_.size() ? at : text_.size();
    const size_t available = text_.size() - clamped;
    throw QueryError(offset_ + clamped, length < available ? length : available,
                     problem + " in time \"" + std::string(text_) + "\"", kTimeHint);
  }

 private:
  std::string_view text_;
  size_t offset_;
  size_t at_ = 0;
};

TimeSpan parseRelative(std::string_view text, size_t offset, int64_t nowMs) {
  TimeReader reader(text, offset);
  int64_t at = nowMs;
  reader.accept('n'), reader.accept('o'), reader.accept('w');

  // Each step is a sign, a number and a unit; several may follow one another (now-1d+2h).
  while (!reader.atEnd()) {
    const size_t stepStart = reader.at();
    const char sign = reader.peek();
    if (sign != '+' && sign != '-') reader.fail(stepStart, 1, "expected + or - after \"now\"");
    reader.accept(sign);

    const size_t numberStart = reader.at();
    int64_t amount = 0;
    while (isDigit(reader.peek())) {
      if (reader.at() - numberStart >= 9) reader.fail(numberStart, 10, "number too large");
      amount = amount * 10 + (reader.peek() - '0');
      reader.accept(reader.peek());
    }
    if (reader.at() == numberStart) reader.fail(numberStart, 1, "expected a number");

    int64_t unitMs = 0;
    switch (reader.peek()) {
      case 's':
        unitMs = kMsPerSecond;
        break;
      case 'm':
        unitMs = kMsPerMinute;
        break;
      case 'h':
        unitMs = kMsPerHour;
        break;
      case 'd':
        unitMs = kMsPerDay;
        break;
      case 'w':
        unitMs = 7 * kMsPerDay;
        break;
      default:
        reader.fail(reader.at(), 1, "expected a unit (s, m, h, d or w)");
    }
    reader.accept(reader.peek());

    // At most 999,999,999 weeks is about 6e20 ms, past int64; check before adding.
    int64_t step = 0;
    if (__builtin_mul_overflow(amount, unitMs, &step) ||
        __builtin_add_overflow(at, sign == '-' ? -step : step, &at) || at < kMinTimeMs ||
        at > kMaxTimeMs) {
      reader.fail(stepStart, reader.at() - stepStart, "outside the years 0000 to 9999");
    }
  }
  if (at < kMinTimeMs || at > kMaxTimeMs) reader.fail(0, 3, "outside the years 0000 to 9999");
  return {at, at, true};
}

}  // namespace

TimeSpan parseTime(std::string_view text, size_t offset, int64_t nowMs) {
  if (text.substr(0, 3) == "now") return parseRelative(text, offset, nowMs);

  TimeReader reader(text, offset);
  if (!isDigit(reader.peek())) reader.fail(0, text.size(), "expected a date or now");

  // The date, as coarse as a year; `length` grows the span to the precision given.
  const int64_t year = reader.digits(4, "a four-digit year");
  unsigned month = 1;
  unsigned day = 1;
  enum class Precision { kYear, kMonth, kDay, kHour, kMinute, kSecond, kMilli } precision;
  precision = Precision::kYear;
  if (reader.accept('-')) {
    month = static_cast<unsigned>(reader.component("month", 1, 12));
    precision = Precision::kMonth;
    if (reader.accept('-')) {
      const size_t dayAt = reader.at();
      day = static_cast<unsigned>(reader.digits(2, "a two-digit day"));
      if (day < 1 || day > daysInMonth(year, month)) {
        reader.fail(dayAt, 2,
                    "day " + std::to_string(day) + " does not exist (" + monthName(month) + " " +
                        std::to_string(year) + " has " + std::to_string(daysInMonth(year, month)) +
                        " days)");
      }
      precision = Precision::kDay;
    }
  }

  // The time of day, when the date is complete: each part only after the one before it.
  int64_t msOfDay = 0;
  if (precision == Precision::kDay && (reader.accept('T') || reader.accept('t'))) {
    msOfDay = reader.component("hour", 0, 23) * kMsPerHour;
    precision = Precision::kHour;
    if (reader.accept(':')) {
      msOfDay += reader.component("minute", 0, 59) * kMsPerMinute;
      precision = Precision::kMinute;
      if (reader.accept(':')) {
        msOfDay += reader.component("second", 0, 59) * kMsPerSecond;
        precision = Precision::kSecond;
        if (reader.accept('.')) {
          msOfDay += reader.fraction();
          precision = Precision::kMilli;
        }
      }
    }
    msOfDay -= reader.zoneOffset();
  }
  if (!reader.atEnd()) reader.fail(reader.at(), text.size() - reader.at(), "unexpected text");

  // The span from the first to the last millisecond of the precision given.
  const int64_t startMs = daysFromCivil(year, month, day) * kMsPerDay + msOfDay;
  int64_t lengthMs = 1;
  switch (precision) {
    case Precision::kYear:
      lengthMs = (isLeapYear(year) ? 366 : 365) * kMsPerDay;
      break;
    case Precision::kMonth:
      lengthMs = daysInMonth(year, month) * kMsPerDay;
      break;
    case Precision::kDay:
      lengthMs = kMsPerDay;
      break;
    case Precision::kHour:
      lengthMs = kMsPerHour;
      break;
    case Precision::kMinute:
      lengthMs = kMsPerMinute;
      break;
    case Precision::kSecond:
      lengthMs = kMsPerSecond;
      break;
    case Precision::kMilli:
      lengthMs = 1;
      break;
  }
  const int64_t lastMs = startMs + lengthMs - 1;
  if (startMs < kMinTimeMs || lastMs > kMaxTimeMs) {
    reader.fail(0, text.size(), "outside the years 0000 to 9999");
  }
  return {startMs, lastMs, false};
}

namespace {

int64_t floorDiv(int64_t value, int64_t divisor) {
  const int64_t quotient = value / divisor;
  return (value % divisor != 0 && value < 0) ? quotient - 1 : quotient;
}

std::string formatDate(int64_t ms) {
  const Civil date = civilFromDays(floorDiv(ms, kMsPerDay));
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%04lld-%02u-%02u", static_cast<long long>(date.year),
                date.month, date.day);
  return buffer;
}

/// `2026-12-04T10:00:00Z`, with `.mmm` before the Z when `withMs`.
std::string formatDateTime(int64_t ms, bool withMs) {
  const int64_t msOfDay = ms - floorDiv(ms, kMsPerDay) * kMsPerDay;
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "T%02lld:%02lld:%02lld",
                static_cast<long long>(msOfDay / kMsPerHour),
                static_cast<long long>(msOfDay / kMsPerMinute % 60),
                static_cast<long long>(msOfDay / kMsPerSecond % 60));
  std::string text = formatDate(ms) + buffer;
  if (withMs) {
    std::snprintf(buffer, sizeof buffer, ".%03lld", static_cast<long long>(msOfDay % 1000));
    text += buffer;
  }
  return text + "Z";
}

bool alignedTo(int64_t ms, int64_t unitMs) { return ms - floorDiv(ms, unitMs) * unitMs == 0; }

}  // namespace

std::string formatTimeBound(int64_t ms, bool asEnd) {
  // An end prints as the span it closes: the last millisecond of 2026-12-04 prints as
  // 2026-12-04, which as an upper bound means through that whole day.
  const int64_t edge = asEnd ? ms + 1 : ms;
  if (alignedTo(edge, kMsPerDay)) return formatDate(ms);
  if (alignedTo(edge, kMsPerSecond)) return formatDateTime(ms, false);
  return formatDateTime(ms, true);
}

std::string formatTimeSpan(int64_t firstMs, int64_t lastMs) {
  if (firstMs == lastMs) return formatDateTime(firstMs, true);
  if (lastMs - firstMs + 1 == kMsPerSecond && alignedTo(firstMs, kMsPerSecond)) {
    return formatDateTime(firstMs, false);
  }
  if (!alignedTo(firstMs, kMsPerDay) || !alignedTo(lastMs + 1, kMsPerDay)) return "";

  // Whole days: one day, one month or one year prints as that date.
  const Civil first = civilFromDays(floorDiv(firstMs, kMsPerDay));
  const Civil last = civilFromDays(floorDiv(lastMs, kMsPerDay));
  const std::string date = formatDate(firstMs);
  if (lastMs - firstMs + 1 == kMsPerDay) return date;
  const bool wholeMonth = first.day == 1 && last.year == first.year && last.month == first.month &&
                          last.day == daysInMonth(last.year, last.month);
  if (wholeMonth) return date.substr(0, 7);
  const bool wholeYear = first.month == 1 && first.day == 1 && last.year == first.year &&
                         last.month == 12 && last.day == 31;
  if (wholeYear) return date.substr(0, 4);
  return "";
}

}  // namespace anm::search
