// core/diagnosis/issues.cpp: failures of a hook grouped into issues, with open and resolved states.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/issues.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace anm::diagnosis {

std::vector<Occurrence> occurrencesOf(const EventFacts& event,
                                      const std::vector<Finding>& findings) {
  std::vector<Occurrence> occurrences;
  for (const auto& finding : findings) {
    if (finding.severity != Severity::kError) continue;
    occurrences.push_back(
        {event.id, event.replayOf, event.modified, finding.atMs, finding.code, finding.status});
  }
  return occurrences;
}

std::string Issue::key() const { return hookId + "/" + code + "/" + std::to_string(status); }

std::vector<Issue> groupIssues(std::string_view hookId,
                               const std::vector<Occurrence>& occurrences) {
  // Ordered maps keep the result independent of the order occurrences arrive in.
  std::map<std::pair<std::string, int32_t>, Issue> byKey;
  std::map<std::pair<std::string, int32_t>, std::map<int64_t, IssueEvent>> eventsByKey;
  for (const auto& occurrence : occurrences) {
    const auto key = std::make_pair(occurrence.code, occurrence.status);
    auto [it, created] = byKey.try_emplace(key);
    Issue& issue = it->second;
    if (created) {
      issue.hookId = std::string(hookId);
      issue.code = occurrence.code;
      issue.status = occurrence.status;
      issue.firstSeenMs = occurrence.atMs;
      issue.lastSeenMs = occurrence.atMs;
    }
    issue.firstSeenMs = std::min(issue.firstSeenMs, occurrence.atMs);
    issue.lastSeenMs = std::max(issue.lastSeenMs, occurrence.atMs);
    ++issue.count;

    auto [event, added] = eventsByKey[key].try_emplace(
        occurrence.eventId,
        IssueEvent{occurrence.eventId, occurrence.replayOf, occurrence.modified, occurrence.atMs});
    if (!added) event->second.lastSeenMs = std::max(event->second.lastSeenMs, occurrence.atMs);
  }

  std::vector<Issue> issues;
  for (auto& [key, issue] : byKey) {
    for (auto& entry : eventsByKey[key]) issue.events.push_back(entry.second);
    issues.push_back(std::move(issue));
  }
  std::sort(issues.begin(), issues.end(), [](const Issue& a, const Issue& b) {
    if (a.lastSeenMs != b.lastSeenMs) return a.lastSeenMs > b.lastSeenMs;
    return std::tie(a.code, a.status) < std::tie(b.code, b.status);
  });
  return issues;
}

std::string_view issueStateName(IssueState state) {
  return state == IssueState::kResolved ? "resolved" : "open";
}

IssueStatus issueStatus(const Issue& issue, std::optional<int64_t> resolvedAtMs) {
  IssueStatus status;
  if (!resolvedAtMs) {
    status.eventsSinceMark = issue.events.size();
    return status;
  }

  // Only what failed after the mark counts against it.
  for (const auto& event : issue.events) {
    if (event.lastSeenMs > *resolvedAtMs) ++status.eventsSinceMark;
  }
  status.reopened = status.eventsSinceMark > 0;
  status.state = status.reopened ? IssueState::kOpen : IssueState::kResolved;
  return status;
}

std::vector<int64_t> eventsToReplay(const Issue& issue) {
  std::set<int64_t> ids;
  for (const auto& event : issue.events) {
    const bool standsForOriginal = event.replayOf != 0 && !event.modified;
    ids.insert(standsForOriginal ? event.replayOf : event.eventId);
  }
  return {ids.begin(), ids.end()};
}

}  // namespace anm::diagnosis
