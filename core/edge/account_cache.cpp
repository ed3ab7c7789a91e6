// core/edge/account_cache.cpp: accounts kept briefly in memory for checks on every webhook.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/account_cache.h"

#include <utility>

namespace anm::edge {

std::optional<store::AccountRecord> AccountCache::find(const std::string& accountId) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = entries_.find(accountId);
    if (it != entries_.end() && now - it->second.readAt < kAccountCacheTtl) {
      return it->second.account;
    }
  }

  // Read without the lock: a slow store must not hold up webhooks of accounts that are cached.
  auto account = store_.findAccount(accountId);
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[accountId] = Entry{account, now};
  return account;
}

}  // namespace anm::edge
