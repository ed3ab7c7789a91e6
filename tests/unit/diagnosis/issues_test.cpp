// tests/unit/diagnosis/issues_test.cpp: failures grouped into issues, and their states.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/issues.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/unit/diagnosis/facts.h"

namespace anm::diagnosis {
namespace {

Occurrence occurrence(int64_t eventId, int64_t atMs, std::string_view code, int32_t status = 0) {
  Occurrence out;
  out.eventId = eventId;
  out.atMs = atMs;
  out.code = std::string(code);
  out.status = status;
  return out;
}

std::vector<int64_t> eventIds(const Issue& issue) {
  std::vector<int64_t> ids;
  for (const auto& event : issue.events) ids.push_back(event.eventId);
  return ids;
}

TEST(IssuesTest, GroupsByCodeAndStatus) {
  const std::vector<Occurrence> occurrences = {
      occurrence(10, 1000, code::kDeliveryClientError, 404),
      occurrence(11, 1100, code::kDeliveryClientError, 422),
      occurrence(12, 1200, code::kDeliveryClientError, 404),
      occurrence(13, 1300, code::kSignatureMismatch),
      occurrence(9, 900, code::kDeliveryClientError, 404),
  };
  const auto issues = groupIssues("hook1", occurrences);
  ASSERT_EQ(issues.size(), 3u);

  // Most recently seen first.
  EXPECT_EQ(issues[0].code, code::kSignatureMismatch);
  EXPECT_EQ(issues[1].code, code::kDeliveryClientError);
  EXPECT_EQ(issues[1].status, 404);
  EXPECT_EQ(issues[2].status, 422);

  const Issue& notFound = issues[1];
  EXPECT_EQ(notFound.hookId, "hook1");
  EXPECT_EQ(notFound.firstSeenMs, 900);
  EXPECT_EQ(notFound.lastSeenMs, 1200);
  EXPECT_EQ(notFound.count, 3u);
  EXPECT_EQ(eventIds(notFound), (std::vector<int64_t>{9, 10, 12}));
  EXPECT_EQ(notFound.key(), "hook1/delivery.client_error/404");
  EXPECT_EQ(issues[0].key(), "hook1/signature.mismatch/0");
}

TEST(IssuesTest, GroupingIgnoresArrivalOrder) {
  std::vector<Occurrence> occurrences = {occurrence(1, 100, code::kDeliveryTimeout),
                                         occurrence(2, 100, code::kDeliveryServerError, 500),
                                         occurrence(3, 300, code::kDeliveryTimeout),
                                         occurrence(4, 250, code::kDeliveryServerError, 503)};
  const auto first = groupIssues("h", occurrences);
  std::reverse(occurrences.begin(), occurrences.end());
  const auto second = groupIssues("h", occurrences);
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].key(), second[i].key());
    EXPECT_EQ(eventIds(first[i]), eventIds(second[i]));
  }

  // Ties on the last time are ordered by code, then status.
  const auto tied = groupIssues("h", {occurrence(1, 5, "b.code", 2), occurrence(2, 5, "a.code", 9),
                                      occurrence(3, 5, "b.code", 1)});
  EXPECT_EQ(tied[0].key(), "h/a.code/9");
  EXPECT_EQ(tied[1].key(), "h/b.code/1");
  EXPECT_EQ(tied[2].key(), "h/b.code/2");
}

TEST(IssuesTest, AnEventFailingTwiceCountsOnceAmongEvents) {
  // Two relays of one hook, both refused: two occurrences, one event.
  const auto issues = groupIssues("h", {occurrence(7, 100, code::kDeliveryNothingListening),
                                        occurrence(7, 150, code::kDeliveryNothingListening)});
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].count, 2u);
  ASSERT_EQ(issues[0].events.size(), 1u);
  EXPECT_EQ(issues[0].events[0].lastSeenMs, 150);
}

TEST(IssuesTest, StateFollowsTheResolveMark) {
  const auto issues = groupIssues("h", {occurrence(1, 100, code::kDeliveryTimeout),
                                        occurrence(2, 200, code::kDeliveryTimeout)});
  const Issue& issue = issues.front();

  // Never marked: open.
  auto status = issueStatus(issue, std::nullopt);
  EXPECT_EQ(status.state, IssueState::kOpen);
  EXPECT_FALSE(status.reopened);
  EXPECT_EQ(status.eventsSinceMark, 2u);
  EXPECT_EQ(issueStateName(status.state), "open");

  // Marked after the last occurrence, or at its very millisecond: resolved.
  status = issueStatus(issue, 250);
  EXPECT_EQ(status.state, IssueState::kResolved);
  EXPECT_FALSE(status.reopened);
  EXPECT_EQ(status.eventsSinceMark, 0u);
  EXPECT_EQ(issueStateName(status.state), "resolved");
  EXPECT_EQ(issueStatus(issue, 200).state, IssueState::kResolved);

  // An occurrence after the mark reopens it.
  status = issueStatus(issue, 150);
  EXPECT_EQ(status.state, IssueState::kOpen);
  EXPECT_TRUE(status.reopened);
  EXPECT_EQ(status.eventsSinceMark, 1u);
}

TEST(IssuesTest, ResolveThenNewFailureReopens) {
  std::vector<Occurrence> occurrences = {occurrence(1, 100, code::kDeliveryServerError, 500)};
  const int64_t mark = 120;
  EXPECT_EQ(issueStatus(groupIssues("h", occurrences).front(), mark).state, IssueState::kResolved);

  // The fix did not hold: the replayed copy fails the same way later.
  Occurrence again = occurrence(2, 180, code::kDeliveryServerError, 500);
  again.replayOf = 1;
  occurrences.push_back(again);
  const auto status = issueStatus(groupIssues("h", occurrences).front(), mark);
  EXPECT_EQ(status.state, IssueState::kOpen);
  EXPECT_TRUE(status.reopened);

  // A failure of another kind is another issue and leaves this one resolved.
  const auto other =
      groupIssues("h", {occurrences[0], occurrence(3, 200, code::kDeliveryServerError, 503)});
  ASSERT_EQ(other.size(), 2u);
  EXPECT_EQ(other[1].status, 500);
  EXPECT_EQ(issueStatus(other[1], mark).state, IssueState::kResolved);
}

TEST(IssuesTest, ReplaysEachOriginalOnce) {
  Occurrence original = occurrence(10, 100, code::kDeliveryTimeout);
  Occurrence replay = occurrence(20, 200, code::kDeliveryTimeout);
  replay.replayOf = 10;
  Occurrence replayOfUnlisted = occurrence(30, 300, code::kDeliveryTimeout);
  replayOfUnlisted.replayOf = 5;
  Occurrence edited = occurrence(40, 400, code::kDeliveryTimeout);
  edited.replayOf = 10;
  edited.modified = true;
  const auto issues = groupIssues("h", {edited, replayOfUnlisted, replay, original});
  EXPECT_EQ(eventsToReplay(issues.front()), (std::vector<int64_t>{5, 10, 40}));
}

TEST(IssuesTest, OnlyErrorFindingsBecomeOccurrences) {
  DiagnosisInput input = test::stripeEvent();
  input.event.id = 17;
  input.event.replayOf = 3;
  input.deliveries = {test::delivery(500)};
  auto findings = diagnose(input);
  ASSERT_EQ(findings.size(), 1u);

  // An informational finding (nothing relayed yet) is no failure.
  findings.push_back(diagnose(test::stripeEvent()).front());
  ASSERT_EQ(findings.back().severity, Severity::kInfo);

  const auto occurrences = occurrencesOf(input.event, findings);
  ASSERT_EQ(occurrences.size(), 1u);
  EXPECT_EQ(occurrences[0].eventId, 17);
  EXPECT_EQ(occurrences[0].replayOf, 3);
  EXPECT_EQ(occurrences[0].code, code::kDeliveryServerError);
  EXPECT_EQ(occurrences[0].status, 500);
  EXPECT_EQ(occurrences[0].atMs, test::kReceivedMs + 1000);
}

TEST(IssuesTest, NothingToGroup) { EXPECT_TRUE(groupIssues("h", {}).empty()); }

}  // namespace
}  // namespace anm::diagnosis
