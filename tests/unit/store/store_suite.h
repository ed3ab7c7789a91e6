// tests/unit/store/store_suite.h: the backend-independent Store test suite and its fixtures.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/store/store.h"

namespace anm::store::test {

/// A fresh directory, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  /// Runs `cleanup` when the directory goes away, before its files are removed (last added runs
  /// first), so that resources a backend keeps for the directory (a database, a proxy) are
  /// released even when the test failed. Exceptions it throws are dropped.
  void onRemove(std::function<void()> cleanup) { cleanups_.push_back(std::move(cleanup)); }

 private:
  std::string path_;
  std::vector<std::function<void()>> cleanups_;
};

/// Opens the backend's store kept in (or named by) the directory. Opening twice with one
/// directory must reach the same data.
using StoreFactory = std::function<std::unique_ptr<Store>(TempDir&)>;

/// Which listener a backend tells about newly stored events (it never calls the other one).
enum class Announcement {
  kCommitListener,  ///< setCommitListener: the single writer hands over each committed record
  kNoticeListener,  ///< setNoticeListener: a follower of a shared database announces each id
};

/// What the suite needs from a backend. Every member is required unless it says otherwise: each
/// case runs for every backend.
struct StoreBackend {
  std::string name;
  StoreFactory open;

  /// The newest schema version the backend knows.
  int64_t schemaVersion = 0;

  /// Records in the store of `dir` (created and closed before) that schema `version` has been
  /// applied, as a newer build would.
  std::function<void(TempDir& dir, int64_t version)> markSchemaVersion;

  /// Makes every later write of the backend's storage fail until the returned function runs.
  std::function<std::function<void()>(TempDir& dir)> failWrites;

  /// How the backend announces events; the announcement case checks the promise through it.
  Announcement announces = Announcement::kCommitListener;

  /// Optional. Runs before each case and may skip or fail it (GTEST_SKIP, GTEST_FAIL) when what
  /// the backend needs, such as a database server, is not there.
  std::function<void()> requireAvailable;
};

inline std::ostream& operator<<(std::ostream& out, const StoreBackend& backend) {
  return out << backend.name;
}

class StoreSuite : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    if (GetParam().requireAvailable) GetParam().requireAvailable();
  }

  std::unique_ptr<Store> open() { return GetParam().open(dir_); }

  TempDir dir_;
};

/// Names instantiations by backend: StoreSuite/Sqlite.CreateHookTwiceThrows/sqlite.
struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<StoreBackend>& info) const {
    return info.param.name;
  }
};

/// A hook with every field set, so that round trips check them all.
HookRecord makeHook(const std::string& id);

/// An event of `hookId` with every field set and a short body.
EventRecord makeEvent(const std::string& hookId, const std::string& body = "{\"ok\":true}");

}  // namespace anm::store::test
