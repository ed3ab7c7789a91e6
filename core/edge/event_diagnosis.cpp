// core/edge/event_diagnosis.cpp: diagnosis of stored events, issues of a hook, resolve marks.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/event_diagnosis.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "core/diagnosis/pages.h"
#include "core/edge/api_support.h"
#include "core/edge/event_json.h"

namespace anm::edge {
namespace {

// Events read per page while building issues.
constexpr size_t kIssueScanPage = 1000;

// The store setting that holds an issue's resolve mark.
std::string markSetting(const std::string& hookId, std::string_view code, int32_t status) {
  return "issue.resolved:" + hookId + "/" + std::string(code) + "/" + std::to_string(status);
}

// Whether an event may have failed, from what a summary and its deliveries show: a refused
// signature, or a relay whose latest report was not a 2xx. Only these are read whole.
bool mayHaveFailed(const store::EventRecord& event,
                   const std::vector<store::DeliveryRecord>& deliveries) {
  if (event.verdict == store::Verdict::kInvalid) return true;
  std::map<std::string, int32_t> latestByRelay;
  for (const auto& delivery : deliveries) latestByRelay[delivery.relayId] = delivery.status;
  return std::any_of(latestByRelay.begin(), latestByRelay.end(),
                     [](const auto& entry) { return entry.second < 200 || entry.second >= 300; });
}

// When an event's verdict was reached: a replay keeps its original's, reached at its receipt.
int64_t verdictTime(store::Store& store, const store::EventRecord& event) {
  if (event.replayOf == 0) return event.receivedAtMs;
  const auto original = store.listEvents(event.hookId, event.replayOf - 1, 1, false, false);
  if (original.empty() || original.front().id != event.replayOf) return 0;
  return original.front().receivedAtMs;
}

}  // namespace

std::vector<diagnosis::Finding> diagnoseEvent(
    store::Store& store, const store::HookRecord& hook, const store::EventRecord& event,
    const std::vector<store::DeliveryRecord>& deliveries) {
  diagnosis::DiagnosisInput input;
  input.hook = diagnosis::hookFacts(hook);
  input.event = diagnosis::eventFacts(event);
  input.event.verdictAtMs = verdictTime(store, event);
  input.deliveries.reserve(deliveries.size());
  for (const auto& delivery : deliveries) {
    input.deliveries.push_back(diagnosis::deliveryFacts(delivery));
  }
  return diagnosis::diagnose(input);
}

std::vector<HookIssue> hookIssues(store::Store& store, const store::HookRecord& hook) {
  std::vector<diagnosis::Occurrence> occurrences;
  int64_t before = 0;
  size_t scanned = 0;
  while (scanned < kIssueScanEvents) {
    const size_t page = std::min(kIssueScanPage, kIssueScanEvents - scanned);
    const auto events = store.listEventsBefore(hook.id, before, page, false);
    if (events.empty()) break;
    scanned += events.size();
    before = events.back().id;

    // One read for the page's deliveries, then the events that may have failed read whole.
    std::vector<int64_t> ids;
    ids.reserve(events.size());
    for (const auto& event : events) ids.push_back(event.id);
    std::map<int64_t, std::vector<store::DeliveryRecord>> deliveriesOf;
    for (auto& delivery : store.listDeliveriesOf(ids)) {
      deliveriesOf[delivery.eventId].push_back(std::move(delivery));
    }
    for (const auto& summary : events) {
      const auto& deliveries = deliveriesOf[summary.id];
      if (!mayHaveFailed(summary, deliveries)) continue;
      const auto event = store.getEvent(hook.id, summary.id);
      if (!event) continue;
      const auto findings = diagnoseEvent(store, hook, *event, deliveries);
      const auto found = diagnosis::occurrencesOf(diagnosis::eventFacts(*event), findings);
      occurrences.insert(occurrences.end(), found.begin(), found.end());
    }
    if (events.size() < page) break;
  }

  // Each issue with the user's mark, if any.
  std::vector<HookIssue> out;
  for (auto& issue : diagnosis::groupIssues(hook.id, occurrences)) {
    HookIssue entry;
    const auto mark = store.getSetting(markSetting(hook.id, issue.code, issue.status));
    std::optional<int64_t> resolvedAt;
    if (mark) {
      int64_t value = 0;
      const auto [end, error] = std::from_chars(mark->data(), mark->data() + mark->size(), value);
      if (error == std::errc() && end == mark->data() + mark->size() && value > 0) {
        resolvedAt = value;
      }
    }
    entry.status = diagnosis::issueStatus(issue, resolvedAt);
    entry.resolvedAtMs = resolvedAt.value_or(0);
    entry.issue = std::move(issue);
    out.push_back(std::move(entry));
  }
  return out;
}

std::string issueUrlKey(const diagnosis::Issue& issue) {
  return issue.code + ":" + std::to_string(issue.status);
}

std::optional<IssueKey> parseIssueUrlKey(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const auto status = parseId(text.substr(colon + 1));
  if (!status || *status > 999) return std::nullopt;
  IssueKey key;
  key.code = std::string(text.substr(0, colon));
  key.status = static_cast<int32_t>(*status);
  return key;
}

void markIssue(store::Store& store, const std::string& hookId, const IssueKey& key, int64_t atMs) {
  store.setSetting(markSetting(hookId, key.code, key.status), std::to_string(atMs));
}

bool explainBodyExcerptAllowed(store::Store& store, const std::string& hookId) {
  return store.getSetting("hook.explain_body_excerpt:" + hookId).value_or("") == "true";
}

void setExplainBodyExcerpt(store::Store& store, const std::string& hookId, bool allowed) {
  store.setSetting("hook.explain_body_excerpt:" + hookId, allowed ? "true" : "false");
}

std::string hookIssueJson(const HookIssue& entry) {
  const diagnosis::Issue& issue = entry.issue;
  std::string out = "{\"key\":" + jsonText(issueUrlKey(issue)) +
                    ",\"code\":" + jsonText(issue.code) +
                    ",\"status\":" + std::to_string(issue.status);
  const diagnosis::Page* page = diagnosis::findPage(issue.code);
  out += ",\"title\":" + jsonText(page != nullptr ? page->title : issue.code);
  out += ",\"page\":" + jsonText(diagnosis::pagePath(issue.code));
  out += ",\"count\":" + std::to_string(issue.count);
  out += ",\"first_at_ms\":" + std::to_string(issue.firstSeenMs);
  out += ",\"last_at_ms\":" + std::to_string(issue.lastSeenMs);
  out += ",\"state\":" + jsonText(diagnosis::issueStateName(entry.status.state));
  out += ",\"reopened\":" + std::string(entry.status.reopened ? "true" : "false");
  out += ",\"resolved_at_ms\":" + std::to_string(entry.resolvedAtMs);

  // The newest events of the issue, newest first.
  out += ",\"events\":[";
  size_t listed = 0;
  for (auto it = issue.events.rbegin(); it != issue.events.rend() && listed < kMaxIssueEventIds;
       ++it, ++listed) {
    if (listed > 0) out += ',';
    out += std::to_string(it->eventId);
  }
  out += "]}";
  return out;
}

}  // namespace anm::edge
