// bench/mysql_probe.cpp: the bench's own look into the MariaDB the edges share.
// SPDX-License-Identifier: Apache-2.0
#include "mysql_probe.h"

#include <Poco/URI.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <unordered_set>

#include "core/crypto/keys.h"
#include "core/store/mysql_store.h"
#include "http_load.h"
#include "webhook_bodies.h"

namespace anm::bench {

namespace {

// Rows read per query while checking a hook: bounded memory for any run length.
constexpr int kCheckPageRows = 2000;

const std::vector<std::string>& statusNames() {
  static const std::vector<std::string> kNames = {"Questions",
                                                  "Com_commit",
                                                  "Com_rollback",
                                                  "Com_insert",
                                                  "Com_update",
                                                  "Com_select",
                                                  "Com_set_option",
                                                  "Com_stmt_prepare",
                                                  "Com_stmt_execute",
                                                  "Com_stmt_close",
                                                  "Handler_commit",
                                                  "Innodb_rows_inserted",
                                                  "Innodb_log_writes",
                                                  "Innodb_os_log_fsyncs",
                                                  "Innodb_os_log_written",
                                                  "Innodb_data_fsyncs",
                                                  "Innodb_data_written",
                                                  "Innodb_row_lock_waits",
                                                  "Innodb_row_lock_time",
                                                  "Bytes_received",
                                                  "Bytes_sent"};
  return kNames;
}

}  // namespace

struct MySqlProbe::Impl {
  std::unique_ptr<sql::Connection> connection;
  std::string url;
};

MySqlProbe::MySqlProbe(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MySqlProbe::~MySqlProbe() = default;

std::unique_ptr<MySqlProbe> MySqlProbe::connect(const std::string& url, std::string& why) {
  // Only the TCP form that scripts/mariadb prints; the password never goes into a message.
  std::string user, password, host, database;
  uint16_t port = 0;
  try {
    Poco::URI uri(url);
    if (uri.getScheme() != "mysql") {
      why = "the database URL must start with mysql://";
      return nullptr;
    }
    const std::string info = uri.getUserInfo();
    const size_t colon = info.find(':');
    user = info.substr(0, colon);
    if (colon != std::string::npos) password = info.substr(colon + 1);
    host = uri.getHost();
    port = uri.getPort();
    database = uri.getPath().empty() ? "" : uri.getPath().substr(1);
  } catch (const std::exception& e) {
    why = std::string("could not read the database URL: ") + e.what();
    return nullptr;
  }
  if (user.empty() || host.empty() || database.empty() || port == 0) {
    why = "the database URL needs mysql://USER:PASSWORD@HOST:PORT/DATABASE";
    return nullptr;
  }

  auto impl = std::make_unique<Impl>();
  impl->url = url;
  try {
    sql::ConnectOptionsMap properties;
    properties["hostName"] = sql::SQLString("tcp://" + host + ":" + std::to_string(port));
    properties["userName"] = sql::SQLString(user);
    properties["password"] = sql::SQLString(password);
    properties["OPT_CONNECT_TIMEOUT"] = 5;
    properties["OPT_RECONNECT"] = false;
    impl->connection.reset(sql::mysql::get_mysql_driver_instance()->connect(properties));
    impl->connection->setSchema(database);
  } catch (const sql::SQLException& e) {
    why = "could not connect to " + host + ":" + std::to_string(port) + " database " + database +
          ": " + e.what() + " (code " + std::to_string(e.getErrorCode()) + ")";
    return nullptr;
  }
  return std::unique_ptr<MySqlProbe>(new MySqlProbe(std::move(impl)));
}

std::vector<std::pair<std::string, std::string>> MySqlProbe::settings() {
  const std::vector<std::string> names = {"version",
                                          "innodb_flush_log_at_trx_commit",
                                          "sync_binlog",
                                          "log_bin",
                                          "innodb_doublewrite",
                                          "innodb_flush_method",
                                          "innodb_buffer_pool_size",
                                          "innodb_log_file_size"};
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<sql::Statement> statement(impl_->connection->createStatement());
  for (const auto& name : names) {
    // One query per name, so that a variable this server lacks costs only its own line.
    try {
      std::unique_ptr<sql::ResultSet> rs(statement->executeQuery("SELECT @@" + name));
      out.emplace_back(name, rs->next() ? std::string(rs->getString(1)) : "?");
    } catch (const sql::SQLException&) {
      out.emplace_back(name, "?");
    }
  }
  return out;
}

StatusSnapshot MySqlProbe::status() {
  StatusSnapshot snap;
  std::string list;
  for (const auto& name : statusNames()) list += (list.empty() ? "'" : ",'") + name + "'";
  std::unique_ptr<sql::Statement> statement(impl_->connection->createStatement());
  std::unique_ptr<sql::ResultSet> rs(
      statement->executeQuery("SHOW GLOBAL STATUS WHERE Variable_name IN (" + list + ")"));
  while (rs->next()) snap.values[rs->getString(1)] = rs->getInt64(2);
  snap.atNs = nowNs();
  return snap;
}

StoredCheck MySqlProbe::check(const std::string& hookId, const std::vector<int64_t>& ackedSeqs,
                              const std::string& keyFile) {
  StoredCheck out;
  std::vector<int64_t> acked = ackedSeqs;
  std::sort(acked.begin(), acked.end());
  std::unordered_set<int64_t> seen;
  try {
    store::MySqlOptions options;
    options.endpoint = store::parseMySqlUrl(impl_->url);
    options.keys = std::make_shared<crypto::KeyHolder>(crypto::KeyRing::loadFile(keyFile));
    options.poolSize = 1;
    const auto events = store::MySqlStore::open(options);

    int64_t after = 0;
    while (true) {
      const auto page = events->listEvents(hookId, after, kCheckPageRows, true, false);
      for (const auto& event : page) {
        ++out.rows;
        after = event.id;

        // The body names its sequence number and must equal what the bench built for it.
        auto seq = parseSeq(event.body);
        if (!event.integrityError.empty() || !seq || event.body != makeBody(*seq)) {
          ++out.corrupted;
          continue;
        }
        if (!seen.insert(*seq).second) {
          ++out.duplicates;
          continue;
        }
        if (!std::binary_search(acked.begin(), acked.end(), *seq)) ++out.storedUnacked;
      }
      if (page.size() < static_cast<size_t>(kCheckPageRows)) break;
    }
  } catch (const std::exception& e) {
    out.error = std::string("could not read the hook's events: ") + e.what();
    return out;
  }
  for (int64_t seq : acked) {
    if (seen.count(seq) == 0) ++out.ackedMissing;
  }
  return out;
}

int64_t counterDelta(const StatusSnapshot& before, const StatusSnapshot& after,
                     const std::string& name) {
  auto b = before.values.find(name);
  auto a = after.values.find(name);
  if (b == before.values.end() || a == after.values.end()) return 0;
  return a->second - b->second;
}

}  // namespace anm::bench
