// tests/unit/store/mysql_test_db.cpp: a private MySQL test database per test, and raw connections.
// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/store/mysql_test_db.h"

#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <mysql_connection.h>
#include <mysql_driver.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace anm::store::test {

namespace {

// The prefix the test user may create databases with (scripts/mariadb grants it).
constexpr const char* kDatabasePrefix = "anonymily_test_";

sql::mysql::MySQL_Driver& driver() {
  // The driver's first use is not thread-safe; every test reaches it through here first.
  static std::once_flag once;
  static sql::mysql::MySQL_Driver* instance = nullptr;
  std::call_once(once, [] { instance = sql::mysql::get_mysql_driver_instance(); });
  return *instance;
}

std::string uniqueDatabaseName() {
  static std::atomic<uint64_t> counter{0};
  std::random_device device;
  std::ostringstream name;
  name << kDatabasePrefix << getpid() << '_' << counter++ << '_' << std::hex
       << (device() & 0xffffffu);
  return name.str();
}

/// Connector/C++ reports only the server's message; the statement is what says where it was.
[[noreturn]] void rethrow(const sql::SQLException& e, const std::string& statement) {
  throw std::runtime_error("mysql error " + std::to_string(e.getErrorCode()) + " (" +
                           e.getSQLState() + ") in \"" + statement + "\": " + e.what());
}

}  // namespace

std::optional<MySqlEndpoint> testMySqlServer() {
  const char* url = std::getenv(kMySqlUrlVariable);
  if (url == nullptr || *url == '\0') return std::nullopt;
  return parseMySqlUrl(url);
}

void requireMySqlServer() {
  try {
    if (testMySqlServer()) return;
  } catch (const std::exception& e) {
    GTEST_FAIL() << kMySqlUrlVariable << " is set but not usable: " << e.what();
  }

  if (std::getenv("CI") != nullptr) {
    GTEST_FAIL() << kMySqlUrlVariable
                 << " is not set, and CI must run every MySQL test: run them through "
                    "scripts/test, which starts a private MariaDB";
  }
  GTEST_SKIP() << "MySQL tests need a server: run scripts/test, or eval \"export "
                  "$(scripts/mariadb start /tmp/anm-db)\" and run the tests again";
}

RawConnection::RawConnection(const MySqlEndpoint& server, const std::string& database) {
  sql::ConnectOptionsMap options;
  options["hostName"] = sql::SQLString(server.socketPath.empty() ? "tcp://" + server.host + ":" +
                                                                       std::to_string(server.port)
                                                                 : "unix://" + server.socketPath);
  options["userName"] = sql::SQLString(server.user);
  options["password"] = sql::SQLString(server.password);
  if (!database.empty()) options["schema"] = sql::SQLString(database);
  options["OPT_CONNECT_TIMEOUT"] = 10;
  try {
    connection_.reset(driver().connect(options));
  } catch (const sql::SQLException& e) {
    rethrow(e, "connect to " + server.describe());
  }
}

RawConnection::~RawConnection() = default;

void RawConnection::execute(const std::string& statement) {
  try {
    std::unique_ptr<sql::Statement> s(connection_->createStatement());
    s->execute(statement);
  } catch (const sql::SQLException& e) {
    rethrow(e, statement);
  }
}

std::vector<std::vector<std::string>> RawConnection::query(const std::string& statement) {
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
    rethrow(e, statement);
  }
  return rows;
}

int64_t RawConnection::queryInt(const std::string& statement) {
  auto rows = query(statement);
  if (rows.empty() || rows[0].empty()) throw std::runtime_error("no row from: " + statement);
  return std::stoll(rows[0][0]);
}

TestDatabase::TestDatabase(const MySqlEndpoint& server, const std::string& createOptions)
    : server_(server), name_(uniqueDatabaseName()) {
  RawConnection admin(server_, "");
  admin.execute("CREATE DATABASE `" + name_ + "` " + createOptions);
}

TestDatabase::~TestDatabase() {
  // A test database that outlived its test would pile up on a developer's server.
  try {
    RawConnection admin(server_, "");
    admin.execute("DROP DATABASE IF EXISTS `" + name_ + "`");
  } catch (const std::exception& e) {
    std::cerr << "could not drop test database name=" << name_ << ": " << e.what() << "\n";
  }
}

MySqlEndpoint TestDatabase::endpoint() const {
  MySqlEndpoint endpoint = server_;
  endpoint.database = name_;
  return endpoint;
}

std::unique_ptr<RawConnection> TestDatabase::connect() const {
  return std::make_unique<RawConnection>(server_, name_);
}

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace anm::store::test
