// tests/support/mysql/test_mysql.cpp: the test MySQL server, a private database per test and the
// test's own connections to it.
// SPDX-License-Identifier: Apache-2.0
#include "tests/support/mysql/test_mysql.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <mysql_connection.h>
#include <mysql_driver.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/store/field_codec.h"

namespace anm::test {

namespace {

// Databases the test user may create and drop (scripts/mariadb grants this prefix).
constexpr const char* kDatabasePrefix = "anonymily_test_";

// A server that does not answer within this is broken, not slow.
constexpr int kConnectTimeoutS = 10;

sql::mysql::MySQL_Driver& driver() {
  // The driver's first lookup is not thread-safe; every connection reaches it through here.
  static std::once_flag once;
  static sql::mysql::MySQL_Driver* instance = nullptr;
  std::call_once(once, [] { instance = sql::mysql::get_mysql_driver_instance(); });
  return *instance;
}

// The connector's message names neither the statement nor the codes; both say what failed.
[[noreturn]] void rethrow(const sql::SQLException& e, const std::string& what) {
  throw std::runtime_error("mysql error " + std::to_string(e.getErrorCode()) + " (" +
                           e.getSQLState() + ") in " + what + ": " + e.what());
}

// Commits or rolls back the open transaction, then turns autocommit back on, undoing begin().
void endTransaction(sql::Connection& connection, bool commit) {
  try {
    if (commit) {
      connection.commit();
    } else {
      connection.rollback();
    }
    connection.setAutoCommit(true);
  } catch (const sql::SQLException& e) {
    rethrow(e, commit ? "commit" : "rollback");
  }
}

std::string quoted(const std::string& statement) { return "\"" + statement + "\""; }

std::string percentEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
      continue;
    }
    out.push_back('%');
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// Unique across the processes ctest runs at once (pid) and within one (counter); the random
// part keeps a rerun from meeting a database a killed run left behind.
std::string uniqueDatabaseName() {
  static std::atomic<uint64_t> counter{0};
  std::random_device random;
  std::ostringstream name;
  name << kDatabasePrefix << getpid() << '_' << counter++ << '_' << std::hex
       << (random() & 0xffffffu);
  return name.str();
}

}  // namespace

std::optional<store::MySqlEndpoint> testMySqlServer() {
  const char* url = std::getenv(kMySqlUrlVariable);
  if (url == nullptr || *url == '\0') return std::nullopt;
  return store::parseMySqlUrl(url);
}

void requireMySqlServer() {
  try {
    if (testMySqlServer()) return;
  } catch (const std::exception& e) {
    GTEST_FAIL() << kMySqlUrlVariable << " is set but cannot be used: " << e.what();
  }

  // CI must never pass by skipping; a developer without a server gets told how to get one.
  if (std::getenv("CI") != nullptr) {
    GTEST_FAIL() << kMySqlUrlVariable
                 << " is not set, and CI runs every MySQL test: run the tests through "
                    "scripts/test, which starts a private MariaDB";
  }
  GTEST_SKIP() << "this test needs a MySQL server: run scripts/test, or eval \"export "
                  "$(scripts/mariadb start /tmp/anm-db)\" and run the tests again";
}

store::MySqlEndpoint withoutDatabase(const store::MySqlEndpoint& endpoint) {
  store::MySqlEndpoint server = endpoint;
  server.database.clear();
  return server;
}

std::string mysqlUrl(const store::MySqlEndpoint& endpoint, uint16_t port) {
  return "mysql://" + percentEncode(endpoint.user) + ":" + percentEncode(endpoint.password) + "@" +
         endpoint.host + ":" + std::to_string(port == 0 ? endpoint.port : port) + "/" +
         endpoint.database;
}

SqlConnection::SqlConnection(const store::MySqlEndpoint& endpoint) {
  sql::ConnectOptionsMap options;
  options["hostName"] = sql::SQLString(
      endpoint.socketPath.empty() ? "tcp://" + endpoint.host + ":" + std::to_string(endpoint.port)
                                  : "unix://" + endpoint.socketPath);
  options["userName"] = sql::SQLString(endpoint.user);
  options["password"] = sql::SQLString(endpoint.password);
  if (!endpoint.database.empty()) options["schema"] = sql::SQLString(endpoint.database);
  options["OPT_CONNECT_TIMEOUT"] = kConnectTimeoutS;
  try {
    connection_.reset(driver().connect(options));
  } catch (const sql::SQLException& e) {
    rethrow(e, "connect to " + endpoint.describe());
  }
}

SqlConnection::~SqlConnection() = default;

void SqlConnection::execute(const std::string& statement) {
  try {
    std::unique_ptr<sql::Statement> s(connection_->createStatement());
    s->execute(statement);
  } catch (const sql::SQLException& e) {
    rethrow(e, quoted(statement));
  }
}

std::vector<std::vector<std::string>> SqlConnection::query(const std::string& statement) {
  std::vector<std::vector<std::string>> rows;
  try {
    std::unique_ptr<sql::Statement> s(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> result(s->executeQuery(statement));
    const unsigned columns = result->getMetaData()->getColumnCount();
    while (result->next()) {
      std::vector<std::string> row;
      for (unsigned column = 1; column <= columns; ++column) {
        row.push_back(result->isNull(column) ? std::string()
                                             : result->getString(column).asStdString());
      }
      rows.push_back(std::move(row));
    }
  } catch (const sql::SQLException& e) {
    rethrow(e, quoted(statement));
  }
  return rows;
}

int64_t SqlConnection::queryInt(const std::string& statement) {
  auto rows = query(statement);
  if (rows.empty() || rows[0].empty() || rows[0][0].empty()) {
    throw std::runtime_error("no value from " + quoted(statement));
  }
  return std::stoll(rows[0][0]);
}

void SqlConnection::begin() {
  try {
    connection_->setAutoCommit(false);
  } catch (const sql::SQLException& e) {
    rethrow(e, "begin");
  }
}

void SqlConnection::commit() { endTransaction(*connection_, true); }

void SqlConnection::rollback() { endTransaction(*connection_, false); }

void SqlConnection::insertEvent(const store::EventRecord& event) {
  const std::string text =
      "INSERT INTO events (id, hook_id, received_at_ms, method, path_suffix, raw_query, headers, "
      "body_size, verdict, reason, reason_message, event_type, delivery_id, replay_of, body) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  try {
    std::unique_ptr<sql::PreparedStatement> s(connection_->prepareStatement(text));

    // Binary columns go in as blobs, byte for byte; the connector reads each stream while it
    // sends, so the streams must outlive executeUpdate().
    std::istringstream headers(store::encodeHeaders(event.headers));
    std::istringstream body(event.body);
    s->setInt64(1, event.id);
    s->setString(2, event.hookId);
    s->setInt64(3, event.receivedAtMs);
    s->setString(4, event.method);
    s->setString(5, event.pathSuffix);
    s->setString(6, event.rawQuery);
    s->setBlob(7, &headers);
    s->setInt64(8, static_cast<int64_t>(event.body.size()));
    s->setInt(9, static_cast<int32_t>(event.verdict));
    s->setInt(10, event.reason);
    s->setString(11, event.reasonMessage);
    s->setString(12, event.eventType);
    s->setString(13, event.deliveryId);
    s->setInt64(14, event.replayOf);
    s->setBlob(15, &body);
    s->executeUpdate();
  } catch (const sql::SQLException& e) {
    rethrow(e, "insert of event " + std::to_string(event.id));
  }
}

TestDatabase::TestDatabase(const store::MySqlEndpoint& server, const std::string& createOptions)
    : server_(server), name_(uniqueDatabaseName()) {
  SqlConnection(withoutDatabase(server_))
      .execute("CREATE DATABASE `" + name_ + "` " + createOptions);
}

TestDatabase::~TestDatabase() {
  // A database left behind by every run would pile up on the developer's server.
  try {
    SqlConnection(withoutDatabase(server_)).execute("DROP DATABASE IF EXISTS `" + name_ + "`");
  } catch (const std::exception& e) {
    std::cerr << "could not drop test database name=" << name_ << ": " << e.what() << "\n";
  }
}

store::MySqlEndpoint TestDatabase::endpoint() const {
  store::MySqlEndpoint endpoint = server_;
  endpoint.database = name_;
  return endpoint;
}

std::unique_ptr<SqlConnection> TestDatabase::connect() const {
  return std::make_unique<SqlConnection>(endpoint());
}

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace anm::test
