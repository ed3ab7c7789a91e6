// tests/e2e/support/mysql_db.h: a private MySQL database per end-to-end test, and the test's own
// connections to it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/store/mysql_store.h"

namespace sql {
class Connection;
}  // namespace sql

namespace anm::e2e {

/// The variable naming the test server; scripts/test sets it from scripts/mariadb.
constexpr const char* kTestMySqlUrlVariable = "ANM_TEST_MYSQL_URL";

/// The server of ANM_TEST_MYSQL_URL, or nothing when the variable is unset or empty.
std::optional<store::MySqlEndpoint> testMySqlServer();

/// For the start of a MySQL test (SetUp): returns quietly when the test server is configured;
/// otherwise fails the test when the environment variable CI is set (CI runs every MySQL
/// test) and skips it with a message naming scripts/test when it is not.
void requireTestMySqlServer();

/// `mysql://USER:PASSWORD@127.0.0.1:PORT/DATABASE` with user and password percent-encoded, the
/// form the edge's `store` setting takes. `port` 0 means the endpoint's own.
std::string mysqlUrl(const store::MySqlEndpoint& endpoint, uint16_t port = 0);

/// A connection of the test's own through MySQL Connector/C++, beside the edges': what
/// another writer of the same database would do. Statements run with autocommit until
/// begin() is called.
class SqlConnection {
 public:
  explicit SqlConnection(const store::MySqlEndpoint& endpoint);
  ~SqlConnection();

  SqlConnection(const SqlConnection&) = delete;
  SqlConnection& operator=(const SqlConnection&) = delete;

  void execute(const std::string& statement);

  /// Every row, every column as bytes ("" for NULL).
  std::vector<std::vector<std::string>> query(const std::string& statement);

  /// The first column of the first row as a number; throws when there is no row.
  int64_t queryInt(const std::string& statement);

  /// Opens a transaction that stays open until commit() or rollback().
  void begin();
  void commit();
  void rollback();

  /// Inserts one events row as the edge would store it, with the id given (the caller decides
  /// whether the sequences row moves too). Headers go through the store's own field encoding.
  void insertEvent(const store::EventRecord& event);

 private:
  std::unique_ptr<sql::Connection> connection_;
};

/// A fresh database named anonymily_test_<unique>, dropped again by the destructor, so also
/// after a failed test. The test user may create databases with that prefix (scripts/mariadb).
class TestDatabase {
 public:
  explicit TestDatabase(const store::MySqlEndpoint& server);
  ~TestDatabase();

  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }

  /// The server with this database selected.
  store::MySqlEndpoint endpoint() const;

  /// The edge's store URL for this database, through `port` when it is not 0 (a proxy).
  std::string url(uint16_t port = 0) const { return mysqlUrl(endpoint(), port); }

  std::unique_ptr<SqlConnection> connect() const;

 private:
  store::MySqlEndpoint server_;
  std::string name_;
};

}  // namespace anm::e2e
