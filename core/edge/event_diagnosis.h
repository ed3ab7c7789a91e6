// core/edge/event_diagnosis.h: the diagnosis rules applied to stored events, and the issues
// of a hook with the marks users set on them.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnosis/diagnosis.h"
#include "core/diagnosis/issues.h"
#include "core/store/store.h"

namespace anm::edge {

/// How many of a hook's newest events the issues are built from: enough for the failures a
/// person is working on, bounded so that one request reads a bounded part of the store.
inline constexpr size_t kIssueScanEvents = 10000;

/// Most event ids an issue lists (the newest ones); its count covers them all.
inline constexpr size_t kMaxIssueEventIds = 100;

/// The findings for one stored event of `hook`, with its deliveries. Reads the original of a
/// replay (for the time its verdict was reached) from the store.
std::vector<diagnosis::Finding> diagnoseEvent(store::Store& store, const store::HookRecord& hook,
                                              const store::EventRecord& event,
                                              const std::vector<store::DeliveryRecord>& deliveries);

/// An issue with where it stands.
struct HookIssue {
  diagnosis::Issue issue;
  diagnosis::IssueStatus status;
  int64_t resolvedAtMs = 0;  ///< the user's last mark, 0 when never marked
};

/// The issues of the hook over its newest kIssueScanEvents events, most recently seen first.
/// Only events that may have failed (an invalid verdict, or a delivery that did not answer 2xx)
/// are read whole.
std::vector<HookIssue> hookIssues(store::Store& store, const store::HookRecord& hook);

/// The form of an issue's key in URLs, "<code>:<status>" (the hook is in the path already), and
/// back; nothing for text that is not one.
std::string issueUrlKey(const diagnosis::Issue& issue);
struct IssueKey {
  std::string code;
  int32_t status = 0;
};
std::optional<IssueKey> parseIssueUrlKey(std::string_view text);

/// Marks the issue resolved at `atMs`, or clears the mark (reopen) with 0. The marks live in the
/// store's settings, one per issue, so that every edge sees them.
void markIssue(store::Store& store, const std::string& hookId, const IssueKey& key, int64_t atMs);

/// Whether the hook lets a body or answer excerpt go to the model-based explanation; off until
/// a member turns it on (PATCH .../hooks/<id> {"explain_body_excerpt":true}). Kept in the
/// store's settings, so that every edge sees it.
bool explainBodyExcerptAllowed(store::Store& store, const std::string& hookId);
void setExplainBodyExcerpt(store::Store& store, const std::string& hookId, bool allowed);

/// The issue as JSON (docs/dashboard.md).
std::string hookIssueJson(const HookIssue& issue);

}  // namespace anm::edge
