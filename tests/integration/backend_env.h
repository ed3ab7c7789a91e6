// tests/integration/backend_env.h: an in-process edge with accounts on SQLite or on the test
// MySQL server, for tests that must hold on both backends.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "accounts_env.h"
#include "tests/support/mysql/test_mysql.h"

namespace anm::test {

enum class Backend { kSqlite, kMySql };

/// AccountsTest run once per backend (INSTANTIATE_TEST_SUITE_P with kBackends and
/// backendName). Without ANM_TEST_MYSQL_URL the MySQL cases skip, and fail when CI is set.
class BackendAccountsTest : public AccountsTest, public ::testing::WithParamInterface<Backend> {
 protected:
  void TearDown() override {
    AccountsTest::TearDown();
    db_.reset();
  }

  /// Starts the edge on the test's backend, a private database of the test server for MySQL
  /// (which the admin command then opens too). The caller returns when the test was skipped or
  /// failed here.
  void startOnBackend(const std::function<void(edge::EdgeConfig&)>& tweak = {}) {
    if (GetParam() == Backend::kMySql) {
      requireMySqlServer();
      if (::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()) return;
      db_ = std::make_unique<TestDatabase>(*testMySqlServer());
      adminStore_ = db_->url();
    }
    startServer([this, &tweak](edge::EdgeConfig& config) {
      if (db_) {
        config.storeKind = edge::StoreKind::kMySql;
        config.mysql.endpoint = db_->endpoint();
        config.store = "mysql " + db_->name();
      }
      if (tweak) tweak(config);
    });
  }

  std::unique_ptr<TestDatabase> db_;  ///< the test's MySQL database; null on SQLite
};

inline const auto kBackends = ::testing::Values(Backend::kSqlite, Backend::kMySql);

inline std::string backendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "MySql";
}

}  // namespace anm::test
