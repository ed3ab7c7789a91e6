// core/search/query_tree.h: the parsed form of a search query, shared by the parser and Query.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "core/search/fields.h"
#include "core/search/text_pattern.h"
#include "core/store/store.h"

namespace anm::search {

inline constexpr int64_t kOpenLow = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kOpenHigh = std::numeric_limits<int64_t>::max();

/// An inclusive range of whole numbers; kOpenLow / kOpenHigh stand for an open end.
struct Bounds {
  int64_t low = kOpenLow;
  int64_t high = kOpenHigh;

  bool contains(int64_t value) const { return value >= low && value <= high; }
};

/// What a `status` term asks of an event's deliveries.
enum class StatusCheck : uint8_t {
  kCode,    ///< a delivery with a response whose status is within the bounds
  kNone,    ///< `status:none`: never delivered
  kFailed,  ///< `status:failed`: a delivery without a response
  kAny,     ///< `status:*`: delivered at least once, with or without a response
};

/// What a `replay` term asks.
enum class ReplayCheck : uint8_t {
  kIsReplay,    ///< replay:true
  kIsOriginal,  ///< replay:false
  kReplayOf,    ///< replay:<id>: a replay of that event
};

/// One term. Which members count depends on the field.
struct Term {
  Field field = Field::kText;
  TextPattern pattern;  ///< text fields; the header name for kHeader and kHeaderValue
  TextPattern value;    ///< kHeaderValue: the header's value
  Bounds bounds;        ///< kTime, kId, kSize, and kStatus with StatusCheck::kCode
  StatusCheck status = StatusCheck::kCode;
  store::Verdict verdict = store::Verdict::kValid;
  int32_t reason = 0;
  ReplayCheck replay = ReplayCheck::kIsReplay;
  int64_t replayOf = 0;  ///< ReplayCheck::kReplayOf
};

/// A node of the parsed query. AND and OR nodes have two or more children, none of the same
/// kind as themselves (nested ones are merged), and NOT never holds a NOT.
struct Node {
  enum class Kind : uint8_t { kAll, kAnd, kOr, kNot, kTerm };

  Kind kind = Kind::kAll;
  std::vector<Node> children;
  Term term;  ///< kTerm
};

/// Parses a query into its tree (core/search/parser.cpp). Throws QueryError.
Node parseQueryTree(std::string_view text, int64_t nowMs);

}  // namespace anm::search
