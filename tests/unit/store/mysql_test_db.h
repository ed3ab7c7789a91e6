// tests/unit/store/mysql_test_db.h: a private MySQL test database per test, and raw connections.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/store/mysql_store.h"

namespace sql {
class Connection;
}  // namespace sql

namespace anm::store::test {

/// The environment variable naming the test server (scripts/test and scripts/mariadb set it).
inline constexpr const char* kMySqlUrlVariable = "ANM_TEST_MYSQL_URL";

/// The server of ANM_TEST_MYSQL_URL, or nothing when the variable is unset.
std::optional<MySqlEndpoint> testMySqlServer();

/// For the start of a test: does nothing when the test server is configured. Otherwise fails
/// the test when the environment variable CI is set (CI runs every MySQL test) and skips it
/// with a message on how to run it when not. Call it from SetUp or a test body and return when
/// the test is skipped or failed.
void requireMySqlServer();

/// A connection of the test's own, next to the store's, through MySQL Connector/C++: what
/// another edge, or an operator, would do to the same database.
class RawConnection {
 public:
  /// Connects to `server`; with a database name, that database is the default one.
  RawConnection(const MySqlEndpoint& server, const std::string& database);
  ~RawConnection();

  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void execute(const std::string& statement);

  /// Every row of the result, each column as text ("" for NULL).
  std::vector<std::vector<std::string>> query(const std::string& statement);

  /// The first column of the first row as a number; throws if there is no row.
  int64_t queryInt(const std::string& statement);

  sql::Connection& connection() { return *connection_; }

 private:
  std::unique_ptr<sql::Connection> connection_;
};

/// A fresh database named anonymily_test_<unique>, dropped when the object goes away (also
/// when the test failed). The test user may create and drop databases with that prefix.
class TestDatabase {
 public:
  /// `createOptions` follows CREATE DATABASE name, e.g. "CHARACTER SET latin1".
  explicit TestDatabase(const MySqlEndpoint& server, const std::string& createOptions = "");
  ~TestDatabase();

  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }

  /// The server with this database selected.
  MySqlEndpoint endpoint() const;

  std::unique_ptr<RawConnection> connect() const;

 private:
  MySqlEndpoint server_;
  std::string name_;
};

/// Polls `condition` every millisecond until it holds or `limit` has passed; returns whether it
/// holds. Limits are generous: they bound a hang, they do not measure speed.
bool waitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace anm::store::test
