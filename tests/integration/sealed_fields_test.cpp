// tests/integration/sealed_fields_test.cpp: what ingest stores of a request is encrypted at rest,
// summary fields included, and a changed ciphertext is reported as unreadable, never as data.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "backend_env.h"
#include "core/edge/standard_webhooks.h"

namespace anm::test {
namespace {

using Poco::Data::Keywords::now;

// Sent in every part of a request the edge keeps; no stored byte may show it.
constexpr const char* kMarker = "MARKER-a94c02";

// A hook name: stored in the clear by design, so every scan must find it.
constexpr const char* kControl = "control-5e1f08";

// The event columns that hold ciphertext, as both backends name them.
const std::vector<std::string> kSealedColumns = {
    "raw_query", "headers", "body", "path_suffix", "reason_message", "event_type", "delivery_id"};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string hexOf(const std::string& bytes) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string hex;
  for (const unsigned char byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

/// Whether `hex` (upper-case, two digits a byte) holds the bytes of `needle` on a byte boundary.
bool hexHolds(const std::string& hex, const std::string& needle) {
  const std::string wanted = hexOf(needle);
  for (size_t at = hex.find(wanted); at != std::string::npos; at = hex.find(wanted, at + 1)) {
    if (at % 2 == 0) return true;
  }
  return false;
}

int64_t nowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// An edge on SQLite or on the test MySQL server, with a pro account whose Standard Webhooks
/// hook is named kControl.
class SealedFieldsTest : public BackendAccountsTest {
 protected:
  void SetUp() override {
    BackendAccountsTest::SetUp();
    startOnBackend();
    if (HasFatalFailure() || IsSkipped()) return;
    account_ = createAccount("alpha", "pro");
    const auto hook = createNamedHook(account_, kControl, R"("standard_webhooks":true)");
    hookId_ = hook->getValue<std::string>("id");
    secret_ = hook->getValue<std::string>("signing_secret");
  }

  /// Sends a correctly signed Standard Webhooks request; `mark` goes into the path suffix, the
  /// query, a header, the body, the body's "type" (the event type) and webhook-id (the delivery
  /// id). Returns the new event's id.
  int64_t sendSigned(const std::string& mark) {
    const std::string body = "{\"type\":\"" + mark + ".created\",\"note\":\"" + mark + "\"}";
    const std::string id = "msg-" + mark;
    const int64_t ts = nowS();
    const Fields fields = {
        {"webhook-id", id},
        {"webhook-timestamp", std::to_string(ts)},
        {"webhook-signature", edge::standardWebhooksSignature(secret_, id, ts, body)},
        {"X-Note", "before " + mark + " after"}};
    const auto r =
        request(port_, "POST", "/h/" + hookId_ + "/path-" + mark + "?q=" + mark, body, fields);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? std::stoll(jsonField(r.body, "id")) : 0;
  }

  /// Where `needle` is stored: files of the data directory (SQLite, with its -wal and -shm
  /// files and anything else there), or tables whose rows hold it as bytes or in HEX (MySQL).
  std::vector<std::string> placesHolding(const std::string& needle) {
    std::vector<std::string> places;
    if (!db_) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ + "/data")) {
        if (!entry.is_regular_file()) continue;
        if (readFile(entry.path().string()).find(needle) != std::string::npos) {
          places.push_back(entry.path().filename().string());
        }
      }
      return places;
    }
    auto raw = db_->connect();
    for (const auto& table : raw->query("SELECT TABLE_NAME FROM information_schema.TABLES"
                                        " WHERE TABLE_SCHEMA = DATABASE()")) {
      std::string hexColumns;
      for (const auto& column :
           raw->query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                      "DATABASE() AND TABLE_NAME = '" +
                      table[0] + "' ORDER BY ORDINAL_POSITION")) {
        hexColumns += (hexColumns.empty() ? "HEX(`" : ", HEX(`") + column[0] + "`)";
      }
      bool found = false;
      for (const auto& row : raw->query("SELECT * FROM `" + table[0] + "`")) {
        for (const auto& value : row) found = found || value.find(needle) != std::string::npos;
      }
      for (const auto& row : raw->query("SELECT " + hexColumns + " FROM `" + table[0] + "`")) {
        for (const auto& value : row) found = found || hexHolds(value, needle);
      }
      if (found) places.push_back(table[0]);
    }
    return places;
  }

  /// Changes one byte of the ciphertext event `eventId` stores in `column`, the first past its
  /// 12-byte nonce, behind the running edge's back.
  void flipCiphertextByte(int64_t eventId, const std::string& column) {
    const std::string where = " WHERE id = " + std::to_string(eventId);
    if (db_) {
      db_->connect()->execute("UPDATE events SET " + column + " = CONCAT(LEFT(" + column +
                              ", 12), CHAR(ASCII(SUBSTRING(" + column +
                              ", 13, 1)) ^ 1), SUBSTRING(" + column + ", 14))" + where);
      return;
    }
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session session("SQLite", dir_ + "/data/anonymily.db");
    session << "PRAGMA busy_timeout = 5000", now;
    session << "UPDATE events SET " + column + " = CAST(substr(" + column +
                   ", 1, 12) || CASE WHEN substr(" + column +
                   ", 13, 1) = x'00' THEN x'01' ELSE x'00' END || substr(" + column +
                   ", 14) AS BLOB)" + where,
        now;
  }

  std::string eventsPath() const { return "/api/v1/hooks/" + hookId_ + "/events"; }

  Account account_;
  std::string hookId_;
  std::string secret_;
};

TEST_P(SealedFieldsTest, NoMarkerFromARequestIsStoredInTheClearWhileTheEdgeRunsOrAfter) {
  // A reason message that quotes the request: the fixture plugin quotes a malformed signature.
  const auto quoting = createNamedHook(account_, "quoting", R"("provider":"hmacfix","secret":"k")");
  const std::string quotingId = quoting->getValue<std::string>("id");
  const int64_t signedId = sendSigned(kMarker);
  ASSERT_GT(signedId, 0);
  const auto refused = request(port_, "POST", "/h/" + quotingId + "/q-" + kMarker, "{}",
                               {{"X-Signature-256", std::string("sig-") + kMarker}});
  ASSERT_EQ(refused.status, 401) << refused.body;

  // The edge stored the marker in every field and gives it back.
  const auto event =
      parseObject(call("GET", eventsPath() + "/" + std::to_string(signedId), account_.jwt).body);
  EXPECT_EQ(event->getValue<std::string>("path"), std::string("/path-") + kMarker);
  EXPECT_EQ(event->getValue<std::string>("query"), std::string("q=") + kMarker);
  EXPECT_EQ(event->getValue<std::string>("event_type"), std::string(kMarker) + ".created");
  EXPECT_EQ(event->getValue<std::string>("delivery_id"), std::string("msg-") + kMarker);
  const auto quoted =
      parseObject(call("GET", "/api/v1/hooks/" + quotingId + "/events", account_.jwt).body)
          ->getArray("events");
  ASSERT_EQ(quoted->size(), 1u);
  EXPECT_NE(quoted->getObject(0)->getValue<std::string>("message").find(kMarker),
            std::string::npos);

  // While the edge runs: the scan sees what the edge wrote in the clear (on SQLite in the WAL,
  // which holds everything since the edge opened the file), and no trace of the marker.
  if (!db_) {
    const std::string wal = readFile(dir_ + "/data/anonymily.db-wal");
    ASSERT_FALSE(wal.empty()) << "no WAL to scan";
    EXPECT_NE(wal.find(kControl), std::string::npos) << "the WAL does not hold the edge's writes";
  }
  EXPECT_FALSE(placesHolding(kControl).empty()) << "the scan does not see what is stored";
  EXPECT_EQ(placesHolding(kMarker), std::vector<std::string>{}) << "stored in the clear";

  // After the edge stopped (SQLite folded its WAL into the database file).
  server_.reset();
  EXPECT_FALSE(placesHolding(kControl).empty()) << "the scan does not see what is stored";
  EXPECT_EQ(placesHolding(kMarker), std::vector<std::string>{}) << "stored in the clear";
}

TEST_P(SealedFieldsTest, ChangedCiphertextInAnySealedColumnIsReportedUnreadableNeverAsData) {
  // Per sealed column an intact event and one whose ciphertext in that column is changed.
  std::vector<int64_t> intact;
  std::vector<int64_t> changed;
  for (size_t i = 0; i < kSealedColumns.size(); ++i) {
    intact.push_back(sendSigned("intact" + std::to_string(i)));
    changed.push_back(sendSigned("changed" + std::to_string(i)));
    ASSERT_GT(changed.back(), 0);
  }
  for (size_t i = 0; i < kSealedColumns.size(); ++i) {
    flipCiphertextByte(changed[i], kSealedColumns[i]);
  }

  // The detail, the raw body and a replay of a changed event answer "cannot be read".
  for (size_t i = 0; i < kSealedColumns.size(); ++i) {
    SCOPED_TRACE("column " + kSealedColumns[i]);
    const std::string path = eventsPath() + "/" + std::to_string(changed[i]);
    for (const auto& [method, target] : {std::pair{"GET", path}, std::pair{"GET", path + "/body"},
                                         std::pair{"POST", path + "/replay"}}) {
      const auto r = call(method, target, account_.jwt);
      EXPECT_EQ(r.status, 500) << target << ": " << r.body;
      EXPECT_EQ(jsonField(r.body, "error")
                    .rfind("event " + std::to_string(changed[i]) + " cannot be read: ", 0),
                0u)
          << r.body;
      EXPECT_EQ(r.body.find("changed" + std::to_string(i)), std::string::npos) << r.body;
    }
    const auto good = call("GET", eventsPath() + "/" + std::to_string(intact[i]), account_.jwt);
    ASSERT_EQ(good.status, 200) << good.body;
    EXPECT_EQ(jsonField(good.body, "delivery_id"), "msg-intact" + std::to_string(i));
  }

  // The list holds every event; a changed one carries integrity_error and none of its values
  // (a list reads no bodies, so a changed body shows only when the body is read).
  const auto listed =
      parseObject(call("GET", eventsPath() + "?limit=100", account_.jwt).body)->getArray("events");
  ASSERT_EQ(listed->size(), 2 * kSealedColumns.size());
  for (size_t i = 0; i < kSealedColumns.size(); ++i) {
    SCOPED_TRACE("column " + kSealedColumns[i]);
    const auto good = listed->getObject(static_cast<unsigned>(2 * i));
    const auto bad = listed->getObject(static_cast<unsigned>(2 * i + 1));
    EXPECT_EQ(good->getValue<int64_t>("id"), intact[i]);
    EXPECT_FALSE(good->has("integrity_error"));
    EXPECT_EQ(good->getValue<std::string>("event_type"), "intact" + std::to_string(i) + ".created");
    EXPECT_EQ(bad->getValue<int64_t>("id"), changed[i]);
    if (kSealedColumns[i] == "body") continue;
    EXPECT_TRUE(bad->has("integrity_error"));
    for (const char* field : {"path", "query", "message", "event_type", "delivery_id"}) {
      EXPECT_EQ(bad->getValue<std::string>(field), "") << field;
    }
  }

  // A relay reading from the start gets every event in order, each changed one as unreadable.
  StreamReader stream(port_, hookId_, account_.jwt, {{"Last-Event-ID", "0"}});
  ASSERT_EQ(stream.status(), 200) << stream.body();
  for (size_t i = 0; i < kSealedColumns.size(); ++i) {
    SCOPED_TRACE("column " + kSealedColumns[i]);
    Frame frame;
    ASSERT_TRUE(stream.next(frame));
    EXPECT_EQ(frame.id, intact[i]);
    EXPECT_EQ(frame.event, "webhook");
    EXPECT_EQ(jsonField(frame.data, "delivery_id"), "msg-intact" + std::to_string(i));
    ASSERT_TRUE(stream.next(frame));
    EXPECT_EQ(frame.id, changed[i]);
    EXPECT_EQ(frame.event, "unreadable");
    EXPECT_NE(jsonField(frame.data, "error"), "") << frame.data;
    EXPECT_EQ(frame.data.find("changed" + std::to_string(i)), std::string::npos) << frame.data;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SealedFieldsTest, kBackends, backendName);

}  // namespace
}  // namespace anm::test
