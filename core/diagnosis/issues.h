// core/diagnosis/issues.h: failures of a hook grouped into issues, with open and resolved states.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnosis/diagnosis.h"

namespace anm::diagnosis {

// An issue is one kind of failure of one hook: every occurrence with the same code and the same
// local status (0 for signature and connection failures) belongs to it, so "404 from the local
// server" and "500 from the local server" are two issues, and so are "timestamp outside" and
// "mismatch". This is the pure logic; the edge stores the occurrences and the marks.
//
// States: an issue is open until the user marks it resolved (the edge stores the mark's time).
// It stays resolved while nothing new happens, and is open again, "reopened", as soon as an
// occurrence is later than the mark. An occurrence at the very millisecond of the mark counts as
// seen by the user, so it does not reopen the issue.

/// One failure of one event, as grouping needs it.
struct Occurrence {
  int64_t eventId = 0;
  int64_t replayOf = 0;   ///< the event's original when it is a replay, else 0
  bool modified = false;  ///< the event is an edited replay
  int64_t atMs = 0;       ///< the finding's time
  std::string code;
  int32_t status = 0;
};

/// The failures (kError findings) among an event's findings, as occurrences.
std::vector<Occurrence> occurrencesOf(const EventFacts& event,
                                      const std::vector<Finding>& findings);

/// An event of an issue, with the time it last failed this way.
struct IssueEvent {
  int64_t eventId = 0;
  int64_t replayOf = 0;
  bool modified = false;
  int64_t lastSeenMs = 0;
};

/// One issue of a hook.
struct Issue {
  std::string hookId;
  std::string code;
  int32_t status = 0;
  int64_t firstSeenMs = 0;
  int64_t lastSeenMs = 0;
  size_t count = 0;                ///< occurrences, several per event when several relays fail
  std::vector<IssueEvent> events;  ///< one per event, by ascending event id

  /// The issue's stable identity for storage: "<hook>/<code>/<status>".
  std::string key() const;
};

/// The occurrences of one hook grouped per (code, status), most recently seen first; issues seen
/// last at the same time are ordered by code, then status.
std::vector<Issue> groupIssues(std::string_view hookId, const std::vector<Occurrence>& occurrences);

enum class IssueState { kOpen, kResolved };

/// "open" or "resolved".
std::string_view issueStateName(IssueState state);

/// Where an issue stands against the user's resolve mark.
struct IssueStatus {
  IssueState state = IssueState::kOpen;
  bool reopened = false;       ///< open because of occurrences after a mark
  size_t eventsSinceMark = 0;  ///< events that failed this way after the mark (all without one)
};

/// The state of `issue` given the time it was last marked resolved, if ever.
IssueStatus issueStatus(const Issue& issue, std::optional<int64_t> resolvedAtMs);

/// The events to replay once the cause is fixed, ascending: each unedited replay stands for its
/// original, so that one webhook is not sent to the local server twice; an edited replay is
/// replayed itself, since its original lacks the edits.
std::vector<int64_t> eventsToReplay(const Issue& issue);

}  // namespace anm::diagnosis
