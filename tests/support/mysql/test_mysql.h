// tests/support/mysql/test_mysql.h: the test MySQL server, a private database per test and the
// test's own connections to it, for the store's unit tests and the end-to-end tests alike.
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
#include "core/store/store.h"

namespace sql {
class Connection;
}  // namespace sql

namespace anm::test {

/// The environment variable naming the test server; scripts/test sets it from scripts/mariadb.
inline constexpr const char* kMySqlUrlVariable = "ANM_TEST_MYSQL_URL";

/// CREATE DATABASE options for a database whose default is the one scripts/mariadb gives its
/// own database (the end-to-end tests run the edges on such a database).
inline constexpr const char* kUtf8mb4BinOptions = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";

/// The server of ANM_TEST_MYSQL_URL, or nothing when the variable is unset or empty. Throws
/// when it is set but not a valid URL.
std::optional<store::MySqlEndpoint> testMySqlServer();

/// For the start of a MySQL test (SetUp or the test body): returns quietly when the test server
/// is configured. Otherwise fails the test when the environment variable CI is set (CI runs
/// every MySQL test) and skips it with a message naming scripts/test when it is not. The caller
/// returns when the test was skipped or failed.
void requireMySqlServer();

/// `endpoint` with no database selected: for statements on the server as a whole.
store::MySqlEndpoint withoutDatabase(const store::MySqlEndpoint& endpoint);

/// `mysql://USER:PASSWORD@HOST:PORT/DATABASE` with user and password percent-encoded, the form
/// the edge's `store` setting takes. `port` 0 means the endpoint's own; another one reaches the
/// server through a proxy on that port.
std::string mysqlUrl(const store::MySqlEndpoint& endpoint, uint16_t port = 0);

/// A connection of the test's own through MySQL Connector/C++, beside the store's or the
/// edges': what another writer of the same database, or an operator, would do. Statements run
/// with autocommit until begin() (or an explicit START TRANSACTION) opens a transaction.
/// Every failure throws std::runtime_error naming the statement and the server's error code.
class SqlConnection {
 public:
  /// Connects to `endpoint`; its database, when not empty, is the default one.
  explicit SqlConnection(const store::MySqlEndpoint& endpoint);
  ~SqlConnection();

  SqlConnection(const SqlConnection&) = delete;
  SqlConnection& operator=(const SqlConnection&) = delete;

  void execute(const std::string& statement);

  /// Every row of the result, every column as bytes ("" for NULL).
  std::vector<std::vector<std::string>> query(const std::string& statement);

  /// The first column of the first row as a number; throws when there is no row or it is NULL.
  int64_t queryInt(const std::string& statement);

  /// Opens a transaction that stays open until commit() or rollback().
  void begin();
  void commit();
  void rollback();

  /// Inserts one events row as an edge would store it, with `event.id` as its id, on the
  /// current transaction if one is open. The caller decides whether the sequences row moves
  /// too. Headers go through the store's own field encoding; body_size is the body's length.
  void insertEvent(const store::EventRecord& event);

 private:
  std::unique_ptr<sql::Connection> connection_;
};

/// A fresh database named anonymily_test_<unique>, dropped again by the destructor, so also
/// after a failed test. The test user may create and drop databases with that prefix
/// (scripts/mariadb grants it).
class TestDatabase {
 public:
  /// `createOptions` follows CREATE DATABASE name, e.g. "CHARACTER SET latin1"; empty means the
  /// server's defaults.
  explicit TestDatabase(const store::MySqlEndpoint& server, const std::string& createOptions = "");
  ~TestDatabase();

  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }

  /// The server with this database selected.
  store::MySqlEndpoint endpoint() const;

  /// The edge's store URL for this database, through `port` when it is not 0 (a proxy).
  std::string url(uint16_t port = 0) const { return mysqlUrl(endpoint(), port); }

  /// A new connection with this database selected.
  std::unique_ptr<SqlConnection> connect() const;

 private:
  store::MySqlEndpoint server_;
  std::string name_;
};

/// Polls `condition` every millisecond until it holds or `limit` has passed; returns whether it
/// holds. Limits are generous: they bound a hang, they do not measure speed.
bool waitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace anm::test
