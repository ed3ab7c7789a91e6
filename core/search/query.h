// core/search/query.h: the search query language of the API, the CLI and the dashboard (#6).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/search/query_error.h"
#include "core/store/store.h"

namespace anm::search {

/// Longest query accepted, in bytes. A search box holds far less; the cap bounds what one API
/// call can make the edge parse and keep.
inline constexpr size_t kMaxQueryBytes = 4096;

/// Deepest nesting of parentheses, field groups and NOT / `-` inside one another. Parsing and
/// matching recurse once per level, so this also bounds their stack.
inline constexpr size_t kMaxDepth = 32;

/// Most terms (field:value, a bare word or phrase, each value of a field group) in one query.
/// Matching costs up to one pass per term over every event scanned.
inline constexpr size_t kMaxTerms = 64;

/// The statuses of an event's deliveries, as the store's records or as a bare list (what a
/// SELECT of the status column gives). A status of 0 is a delivery that got no response.
/// Borrows the vector it is made from.
class DeliveryStatuses {
 public:
  DeliveryStatuses() = default;  ///< never delivered
  /// Implicit, like a string_view's, so that either vector can be passed where one is expected.
  DeliveryStatuses(const std::vector<store::DeliveryRecord>& deliveries)
      : records_(deliveries.data()), size_(deliveries.size()) {}
  DeliveryStatuses(const std::vector<int32_t>& statuses)
      : statuses_(statuses.data()), size_(statuses.size()) {}
  /// A view of a temporary would dangle once the statement ends.
  DeliveryStatuses(std::vector<store::DeliveryRecord>&&) = delete;
  DeliveryStatuses(std::vector<int32_t>&&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int32_t operator[](size_t i) const {
    return records_ != nullptr ? records_[i].status : statuses_[i];
  }

 private:
  const store::DeliveryRecord* records_ = nullptr;
  const int32_t* statuses_ = nullptr;
  size_t size_ = 0;
};

/// One event as a query sees it. Every view borrows from the caller for the call to matches().
/// Parts that Query::needs() does not ask for may be left empty.
struct Candidate {
  int64_t id = 0;
  int64_t receivedAtMs = 0;
  std::string_view method;
  std::string_view path;   ///< the path suffix after /h/<hook id>: "" or starting with '/'
  std::string_view query;  ///< the raw query string, without '?'
  const std::vector<store::Header>* headers = nullptr;  ///< null: no headers
  std::string_view body;                                ///< raw bytes, any encoding
  int64_t bodySize = 0;   ///< what `size` compares; set even when the body is not loaded
  std::string_view type;  ///< the provider's event type, "" when none
  store::Verdict verdict = store::Verdict::kUnsigned;
  int32_t reason = 0;    ///< ANM_REASON_*
  int64_t replayOf = 0;  ///< the original's id for a replay, else 0
  DeliveryStatuses deliveries;

  /// A view of a stored event. The event (and the deliveries) must outlive the candidate.
  static Candidate of(const store::EventRecord& event, DeliveryStatuses deliveries = {});
  /// A view of a temporary would dangle once the statement ends.
  static Candidate of(store::EventRecord&&, DeliveryStatuses = {}) = delete;
};

/// What a caller must load for matches() to answer: the parts the store keeps encrypted (raw
/// query, headers, body) and the deliveries, which live in a table of their own. Method, path,
/// type, verdict, reason, time, id, size and replay are always expected.
struct Needs {
  bool rawQuery = false;
  bool headers = false;
  bool body = false;
  bool deliveries = false;

  /// Whether any encrypted part is needed, that is, whether the event's data key must be
  /// unwrapped at all.
  bool contents() const { return rawQuery || headers || body; }
};

/// What a store can filter on before decrypting anything, from the columns it keeps in the
/// clear. Every event the query matches passes the prefilter; events that pass may still not
/// match, so the caller runs matches() on them. An unset member constrains nothing. Bounds are
/// inclusive.
struct Prefilter {
  std::optional<int64_t> fromMs;  ///< received_at_ms >= fromMs
  std::optional<int64_t> toMs;    ///< received_at_ms <= toMs
  std::optional<int64_t> minId;
  std::optional<int64_t> maxId;
  std::optional<int64_t> minSize;  ///< body_size bounds
  std::optional<int64_t> maxSize;
  std::optional<std::vector<store::Verdict>> verdicts;  ///< in ascending order
  std::optional<std::vector<int32_t>> reasons;          ///< ANM_REASON_* codes, ascending
  /// Upper case and sorted; compare with the stored method ignoring case (UPPER(method) IN).
  std::optional<std::vector<std::string>> methods;
  std::optional<bool> replay;  ///< true: replay_of <> 0; false: replay_of = 0
  /// The query can match no event at all (verdict:valid AND verdict:invalid); skip the scan.
  bool matchesNothing = false;

  /// Whether an event passes, for callers that filter in memory (a live stream).
  bool admits(const Candidate& candidate) const;
};

/// A parsed search query. Parse once, then match any number of events, from any number of
/// threads: a Query is immutable and copies share one parsed form.
///
/// The language (docs/search.md): `field:value` terms and bare words or "phrases" that search
/// the text fields, joined by AND, OR, NOT (or `-term`) and parentheses, with NOT binding
/// tighter than AND and AND tighter than OR; terms side by side are joined by AND.
class Query {
 public:
  /// The query that matches every event (what an empty search box means).
  Query();

  /// Parses `text`, resolving relative times (`now-2h`) against `nowMs` (ms since the epoch).
  /// Throws QueryError, with the byte offset and length of what is wrong, for anything it
  /// cannot take; never anything else but std::bad_alloc.
  static Query parse(std::string_view text, int64_t nowMs);

  /// Whether the event matches. Allocates nothing.
  bool matches(const Candidate& candidate) const;

  const Prefilter& prefilter() const;
  const Needs& needs() const;

  /// Whether matches() is true for every event (an empty query or `*`).
  bool matchesEverything() const;

  /// The query in a canonical spelling: lower-case field names and text values, explicit AND,
  /// OR and NOT, parentheses only where they matter, field groups spread out, and every time
  /// absolute (relative ones resolved). Parsing the result gives the same query again, so it
  /// suits logs and comparing queries.
  std::string toString() const;

  /// The names of the fields the query's terms use, each once, in the order fieldNames()
  /// lists them, with "text" last for a bare term. What a query looks at without any value it
  /// looks for, so that it may be recorded where the values may not (the audit log, #4).
  std::vector<std::string_view> fields() const;

  struct Parsed;

 private:
  explicit Query(std::shared_ptr<const Parsed> parsed);

  std::shared_ptr<const Parsed> parsed_;
};

}  // namespace anm::search
