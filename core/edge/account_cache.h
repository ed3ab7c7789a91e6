// core/edge/account_cache.h: accounts kept briefly in memory for checks on every webhook.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/store/store.h"

namespace anm::edge {

/// How long ingest may go on with an account as it was read: a change of plan made anywhere (the
/// admin command, another edge) reaches every webhook within this.
inline constexpr std::chrono::milliseconds kAccountCacheTtl{1000};

/// Accounts as ingest reads them, each from the store at most once per kAccountCacheTtl, so
/// that a hook's plan can be checked on every webhook for the cost of a map lookup. Thread-safe.
class AccountCache {
 public:
  explicit AccountCache(store::Store& store) : store_(store) {}

  /// The account, or nothing when it does not exist. Throws store::StoreError when it had to
  /// be read and could not be.
  std::optional<store::AccountRecord> find(const std::string& accountId);

 private:
  /// Past this many entries the cache starts over, which bounds its memory.
  static constexpr size_t kMaxEntries = 4096;

  struct Entry {
    std::optional<store::AccountRecord> account;
    std::chrono::steady_clock::time_point readAt;
  };

  store::Store& store_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace anm::edge
