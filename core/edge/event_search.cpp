// core/edge/event_search.cpp: a search query run page by page over a hook's events.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/event_search.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/edge/api_support.h"
#include "core/edge/handlers.h"

namespace anm::edge {

std::optional<search::Query> parseQueryOrAnswer(const std::string& text,
                                                Poco::Net::HTTPServerResponse& resp) {
  try {
    return search::Query::parse(text, nowMs());
  } catch (const search::QueryError& e) {
    sendJson(resp, 400,
             "{\"error\":" + jsonText(e.what()) + ",\"position\":" + std::to_string(e.position()) +
                 ",\"length\":" + std::to_string(e.length()) + "}");
    return std::nullopt;
  }
}

std::string queryAuditDetail(const search::Query& query, size_t bytes) {
  std::string fields;
  for (const std::string_view name : query.fields()) {
    if (!fields.empty()) fields += ',';
    fields += name;
  }
  return "fields=" + (fields.empty() ? std::string("none") : fields) +
         " q_bytes=" + std::to_string(bytes);
}

SearchPage searchEvents(store::Store& store, const std::string& hookId, const search::Query& query,
                        const SearchScope& scope) {
  SearchPage out;
  if (query.prefilter().matchesNothing || scope.limit == 0) return out;
  const search::Needs& needs = query.needs();

  int64_t cursor = scope.cursor;
  while (out.events.size() < scope.limit && out.scanned < scope.maxScan) {
    const size_t page = std::min(kSearchPage, scope.maxScan - out.scanned);
    auto events = scope.newestFirst ? store.listEventsBefore(hookId, cursor, page, needs.body)
                                    : store.listEvents(hookId, cursor, page, needs.body, false);
    if (events.empty()) {
      cursor = 0;
      break;
    }
    out.scanned += events.size();
    cursor = events.back().id;

    // Deliveries only when the query asks about them; they are needed for the answer anyway
    // for the matches, which are read below.
    std::map<int64_t, std::vector<store::DeliveryRecord>> deliveriesOf;
    if (needs.deliveries) {
      std::vector<int64_t> ids;
      ids.reserve(events.size());
      for (const auto& event : events) ids.push_back(event.id);
      for (auto& delivery : store.listDeliveriesOf(ids)) {
        deliveriesOf[delivery.eventId].push_back(std::move(delivery));
      }
    }

    std::vector<int64_t> matched;
    for (auto& event : events) {
      const auto& deliveries = deliveriesOf[event.id];
      const search::Candidate candidate = search::Candidate::of(event, deliveries);
      if (!query.prefilter().admits(candidate) || !query.matches(candidate)) continue;
      event.body.clear();
      out.events.push_back(std::move(event));
      matched.push_back(out.events.back().id);
      if (out.events.size() == scope.limit) break;
    }

    // The matches' deliveries, for their summaries, in one read when the query did not load
    // them already.
    if (needs.deliveries) {
      for (int64_t id : matched) out.deliveries.push_back(std::move(deliveriesOf[id]));
    } else if (!matched.empty()) {
      std::map<int64_t, std::vector<store::DeliveryRecord>> ofMatches;
      for (auto& delivery : store.listDeliveriesOf(matched)) {
        ofMatches[delivery.eventId].push_back(std::move(delivery));
      }
      for (int64_t id : matched) out.deliveries.push_back(std::move(ofMatches[id]));
    }

    // A match that filled the answer may have stopped the page early: go on after it.
    if (out.events.size() == scope.limit) cursor = out.events.back().id;
    if (events.size() < page && out.events.size() < scope.limit) {
      cursor = 0;
      break;
    }
  }
  out.next = cursor;
  return out;
}

}  // namespace anm::edge
