// core/edge/event_search.h: runs a search query over a hook's stored events.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/HTTPServerResponse.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/search/query.h"
#include "core/store/store.h"

namespace anm::edge {

/// Most events one search request reads before it answers with what it found and where to go
/// on: contents are encrypted at rest, so a search decrypts what it reads, and this bounds what
/// one request costs (docs/search.md).
inline constexpr size_t kMaxSearchScan = 5000;

/// Events read from the store at a time while searching.
inline constexpr size_t kSearchPage = 200;

/// Where a search starts and which way it goes.
struct SearchScope {
  bool newestFirst = true;
  int64_t cursor = 0;  ///< newest first: ids below it (0: from the newest); else ids above it
  size_t limit = 100;  ///< most matches to return
  size_t maxScan = kMaxSearchScan;
};

/// What one search request found.
struct SearchPage {
  std::vector<store::EventRecord> events;  ///< the matches, in the scope's order, no bodies
  std::vector<std::vector<store::DeliveryRecord>> deliveries;  ///< of each match
  size_t scanned = 0;                                          ///< events read
  /// Where to go on: the last id read, or 0 when the scan reached the end of the hook.
  int64_t next = 0;
};

/// Parses a query a request gave; for one that cannot be parsed answers 400 with the error and
/// where it is ({"error","position","length"}: byte offset and bytes at fault) and returns
/// nothing.
std::optional<search::Query> parseQueryOrAnswer(const std::string& text,
                                                Poco::Net::HTTPServerResponse& resp);

/// What the audit log keeps of a query whose text was `bytes` long: the fields it uses and its
/// length, "fields=body,header q_bytes=42" ("fields=none" for a query of no term). Never a
/// value it searches for: a query often quotes what the bodies hold, and the audit log holds no
/// request data (docs/security.md, #4).
std::string queryAuditDetail(const search::Query& query, size_t bytes);

/// Reads the hook's events in the scope's order until `limit` match or `maxScan` were read,
/// loading only what the query needs (bodies, deliveries) and skipping what its prefilter
/// excludes before matching. Bodies are dropped from the matches it returns.
SearchPage searchEvents(store::Store& store, const std::string& hookId, const search::Query& query,
                        const SearchScope& scope);

}  // namespace anm::edge
