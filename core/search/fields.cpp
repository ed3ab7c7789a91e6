// core/search/fields.cpp: the field names of the search language and the names of their values.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/fields.h"

#include <anonymily/plugin.h>

#include <algorithm>
#include <utility>

#include "core/search/text_pattern.h"

namespace anm::search {
namespace {

struct FieldEntry {
  std::string_view name;
  Field field;
};

constexpr FieldEntry kFields[] = {
    {"method", Field::kMethod},   {"path", Field::kPath},     {"query", Field::kQuery},
    {"header", Field::kHeader},   {"body", Field::kBody},     {"type", Field::kType},
    {"verdict", Field::kVerdict}, {"reason", Field::kReason}, {"status", Field::kStatus},
    {"time", Field::kTime},       {"id", Field::kId},         {"size", Field::kSize},
    {"replay", Field::kReplay},
};

struct VerdictEntry {
  std::string_view name;
  store::Verdict verdict;
};

constexpr VerdictEntry kVerdicts[] = {
    {"valid", store::Verdict::kValid},
    {"invalid", store::Verdict::kInvalid},
    {"unsigned", store::Verdict::kUnsigned},
};

struct ReasonEntry {
  std::string_view name;
  int32_t code;
};

// NOTE: the same names as plugin::reasonName, which lives in the plugin host; keeping a table
// here spares every user of the search language (the CLI too) the host's loader and its
// libraries. tests/unit/search/fields_test.cpp checks that both agree on every code.
constexpr ReasonEntry kReasons[] = {
    {"ok", ANM_REASON_OK},
    {"header_missing", ANM_REASON_HEADER_MISSING},
    {"header_malformed", ANM_REASON_HEADER_MALFORMED},
    {"timestamp_missing", ANM_REASON_TIMESTAMP_MISSING},
    {"timestamp_outside", ANM_REASON_TIMESTAMP_OUTSIDE},
    {"signature_mismatch", ANM_REASON_SIGNATURE_MISMATCH},
    {"secret_missing", ANM_REASON_SECRET_MISSING},
    {"algorithm_refused", ANM_REASON_ALGORITHM_REFUSED},
    {"not_signed", ANM_REASON_NOT_SIGNED},
    {"internal", ANM_REASON_INTERNAL},
};

template <typename Entry, size_t N>
std::vector<std::string_view> namesOf(const Entry (&entries)[N]) {
  std::vector<std::string_view> names;
  for (const auto& entry : entries) names.push_back(entry.name);
  return names;
}

/// Edits between two words: insertions, deletions, changes, and swaps of neighbours (the
/// optimal string alignment distance), ignoring ASCII case.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t change = foldByte(a[i - 1]) == foldByte(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + change});
      if (i > 1 && j > 1 && foldByte(a[i - 1]) == foldByte(b[j - 2]) &&
          foldByte(a[i - 2]) == foldByte(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string_view fieldName(Field field) {
  if (field == Field::kHeaderValue) return "header";
  for (const auto& entry : kFields) {
    if (entry.field == field) return entry.name;
  }
  return "";
}

std::optional<Field> fieldNamed(std::string_view name) {
  for (const auto& entry : kFields) {
    if (equalsFolded(name, entry.name)) return entry.field;
  }
  return std::nullopt;
}

const std::vector<std::string_view>& fieldNames() {
  static const std::vector<std::string_view> names = namesOf(kFields);
  return names;
}

std::optional<store::Verdict> verdictNamed(std::string_view name) {
  for (const auto& entry : kVerdicts) {
    if (equalsFolded(name, entry.name)) return entry.verdict;
  }
  return std::nullopt;
}

std::string_view verdictLabel(store::Verdict verdict) {
  for (const auto& entry : kVerdicts) {
    if (entry.verdict == verdict) return entry.name;
  }
  return "";
}

const std::vector<std::string_view>& verdictNames() {
  static const std::vector<std::string_view> names = namesOf(kVerdicts);
  return names;
}

std::optional<int32_t> reasonNamed(std::string_view name) {
  for (const auto& entry : kReasons) {
    if (equalsFolded(name, entry.name)) return entry.code;
  }
  return std::nullopt;
}

std::string_view reasonLabel(int32_t reason) {
  for (const auto& entry : kReasons) {
    if (entry.code == reason) return entry.name;
  }
  return "";
}

const std::vector<std::string_view>& reasonNames() {
  static const std::vector<std::string_view> names = namesOf(kReasons);
  return names;
}

std::string_view closestName(std::string_view typed, const std::vector<std::string_view>& names) {
  // Field names are short, so a query of any length is cut to what could still be close.
  if (typed.size() > 64) return "";
  std::string_view best;
  size_t bestDistance = 3;
  for (const auto name : names) {
    const size_t distance = editDistance(typed, name);
    if (distance < bestDistance && distance * 2 < name.size()) {
      best = name;
      bestDistance = distance;
    }
  }
  if (!best.empty() || typed.size() < 3) return best;

  // A part of a longer name ("mismatch" for signature_mismatch) names it when it is the only
  // name holding that part.
  const std::string folded = foldAscii(typed);
  for (const auto name : names) {
    if (name.find(folded) == std::string_view::npos) continue;
    if (!best.empty()) return "";
    best = name;
  }
  return best;
}

}  // namespace anm::search
