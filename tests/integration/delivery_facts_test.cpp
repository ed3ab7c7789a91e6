// tests/integration/delivery_facts_test.cpp: what relays report of each delivery, through the
// in-process edge: accepted, refused, stored sealed and shown in every delivery form.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>

#include "accounts_env.h"

namespace anm::test {
namespace {

using Poco::Data::Keywords::now;

/// A report with every fact, in the protocol's JSON.
constexpr const char* kFullReport =
    R"({"relay":"laptop","status":302,"duration_ms":12,"error":"","phase":"receiving",)"
    R"("timeout_ms":30000,"target_https":true,"started_at_ms":1764800000000,)"
    R"("response_excerpt":"Moved \u00e9\n\u0001<a href=\"/login\">","location":"/login?next=%2F"})";

class DeliveryFactsTest : public AccountsTest {
 protected:
  void SetUp() override {
    AccountsTest::SetUp();
    startServer();
    const auto created = request(port_, "POST", "/api/v1/hooks", "{}");
    ASSERT_EQ(created.status, 201) << created.body;
    hookId_ = jsonField(created.body, "id");
    token_ = jsonField(created.body, "token");
    eventId_ = jsonField(ingest(hookId_, "{\"n\":1}").body, "id");
    ASSERT_FALSE(eventId_.empty());
  }

  Response api(const std::string& method, const std::string& target, const std::string& body = "") {
    return apiRequest(port_, method, "/api/v1/hooks/" + hookId_ + target, token_, body);
  }

  /// The deliveries of the one event as the detail shows them.
  Poco::JSON::Array::Ptr deliveries() {
    const auto r = api("GET", "/events/" + eventId_);
    EXPECT_EQ(r.status, 200) << r.body;
    return parseObject(r.body)->getArray("deliveries");
  }

  /// Expects `delivery` to show every fact of kFullReport.
  static void expectFullReport(const Poco::JSON::Object& delivery) {
    EXPECT_EQ(delivery.getValue<std::string>("relay"), "laptop");
    EXPECT_EQ(delivery.getValue<int>("status"), 302);
    EXPECT_EQ(delivery.getValue<std::string>("phase"), "receiving");
    EXPECT_EQ(delivery.getValue<int64_t>("timeout_ms"), 30000);
    EXPECT_TRUE(delivery.getValue<bool>("target_https"));
    EXPECT_EQ(delivery.getValue<int64_t>("started_at_ms"), 1764800000000);
    EXPECT_EQ(delivery.getValue<std::string>("response_excerpt"),
              "Moved \xC3\xA9\n\x01<a href=\"/login\">");
    EXPECT_EQ(delivery.getValue<std::string>("location"), "/login?next=%2F");
    EXPECT_FALSE(delivery.has("integrity_error"));
  }

  std::string hookId_;
  std::string token_;
  std::string eventId_;
};

TEST_F(DeliveryFactsTest, EveryFactIsStoredAndShownInTheAnswerListDetailAndWatch) {
  SseClient watch(port_, hookId_, token_, -1, "watch");
  ASSERT_EQ(watch.head().status, 200);

  const auto one = api("POST", "/events/" + eventId_ + "/deliveries", kFullReport);
  ASSERT_EQ(one.status, 201) << one.body;
  expectFullReport(*parseObject(one.body));

  std::string bulk = kFullReport;
  bulk.insert(1, "\"event\":" + eventId_ + ",");
  ASSERT_EQ(api("POST", "/deliveries", "{\"deliveries\":[" + bulk + "]}").status, 201);

  const auto detail = deliveries();
  ASSERT_EQ(detail->size(), 2u);
  expectFullReport(*detail->getObject(0));
  expectFullReport(*detail->getObject(1));
  const auto list = parseObject(api("GET", "/events").body)->getArray("events");
  expectFullReport(*list->getObject(0)->getArray("deliveries")->getObject(1));

  // The dashboard hears each report with the same members.
  for (int i = 0; i < 2; ++i) {
    Frame frame;
    ASSERT_TRUE(watch.nextNamed(frame));
    EXPECT_EQ(frame.event, "delivery");
    const auto object = parseObject(frame.data);
    EXPECT_EQ(object->getValue<std::string>("event"), eventId_);
    expectFullReport(*object);
  }
}

TEST_F(DeliveryFactsTest, AReportWithoutTheFactsShowsThemUnknown) {
  ASSERT_EQ(api("POST", "/events/" + eventId_ + "/deliveries",
                R"({"relay":"old","status":0,"duration_ms":30001,"error":"timeout"})")
                .status,
            201);
  const auto delivery = deliveries()->getObject(0);
  EXPECT_EQ(delivery->getValue<std::string>("phase"), "unknown");
  EXPECT_EQ(delivery->getValue<int64_t>("timeout_ms"), 0);
  EXPECT_FALSE(delivery->getValue<bool>("target_https"));
  EXPECT_EQ(delivery->getValue<int64_t>("started_at_ms"), 0);
  EXPECT_EQ(delivery->getValue<std::string>("response_excerpt"), "");
  EXPECT_EQ(delivery->getValue<std::string>("location"), "");
}

TEST_F(DeliveryFactsTest, ValuesAtTheirLimitsAreKeptByteForByteAndOneByteMoreIsRefused) {
  // 170 three-byte characters and two ASCII ones: 512 bytes of UTF-8, 172 characters.
  std::string excerpt;
  for (int i = 0; i < 170; ++i) excerpt += "\xE2\x82\xAC";
  excerpt += "ab";
  const std::string location(2048, 'l');
  const std::string report = R"({"relay":"r","status":500,"response_excerpt":")" + excerpt +
                             R"(","location":")" + location + "\"}";
  ASSERT_EQ(api("POST", "/events/" + eventId_ + "/deliveries", report).status, 201);
  const auto delivery = deliveries()->getObject(0);
  EXPECT_EQ(delivery->getValue<std::string>("response_excerpt"), excerpt);
  EXPECT_EQ(delivery->getValue<std::string>("location"), location);

  const auto longer = api("POST", "/events/" + eventId_ + "/deliveries",
                          R"({"relay":"r","status":500,"response_excerpt":")" + excerpt + "c\"}");
  EXPECT_EQ(longer.status, 400);
  EXPECT_NE(longer.body.find("response_excerpt must be at most 512 bytes"), std::string::npos)
      << longer.body;
  const auto far = api("POST", "/events/" + eventId_ + "/deliveries",
                       R"({"relay":"r","status":302,"location":")" + location + "l\"}");
  EXPECT_EQ(far.status, 400);
  EXPECT_NE(far.body.find("location must be at most 2048 bytes"), std::string::npos) << far.body;
  EXPECT_EQ(deliveries()->size(), 1u);
}

TEST_F(DeliveryFactsTest, BadFactsAndUnknownFieldsAreRefusedAndStoreNothing) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"relay":"r","status":200,"phase":"writing"})", "phase must be"},
      {R"({"relay":"r","status":200,"timeout_ms":-1})", "timeout_ms"},
      {R"({"relay":"r","status":200,"timeout_ms":"30000"})", "timeout_ms"},
      {R"({"relay":"r","status":200,"target_https":"yes"})", "target_https"},
      {R"({"relay":"r","status":200,"started_at_ms":1.5})", "started_at_ms"},
      {R"({"relay":"r","status":200,"response_excerpt":7})", "response_excerpt"},
      {R"({"relay":"r","status":200,"excerpt":"x"})", "unknown field \"excerpt\""},
  };
  for (const auto& [report, words] : cases) {
    const auto single = api("POST", "/events/" + eventId_ + "/deliveries", report);
    EXPECT_EQ(single.status, 400) << report;
    EXPECT_NE(jsonField(single.body, "error").find(words), std::string::npos) << single.body;

    // In bulk the refusal names the report, and the good one before it is not stored either.
    std::string bad = report;
    bad.insert(1, "\"event\":" + eventId_ + ",");
    const auto bulk = api(
        "POST", "/deliveries",
        R"({"deliveries":[{"event":)" + eventId_ + R"(,"relay":"r","status":200},)" + bad + "]}");
    EXPECT_EQ(bulk.status, 400) << report;
    EXPECT_EQ(jsonField(bulk.body, "error").rfind("delivery 1: ", 0), 0u) << bulk.body;
  }
  EXPECT_EQ(deliveries()->size(), 0u);
}

TEST_F(DeliveryFactsTest, ValuesThatFailTheirCheckAreLeftOutAndTheDeliverySaysSo) {
  ASSERT_EQ(api("POST", "/events/" + eventId_ + "/deliveries", kFullReport).status, 201);

  // Someone with write access to the database changes a byte of the sealed excerpt.
  {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session session("SQLite", server_->config().sqlitePath);
    session << "PRAGMA busy_timeout = 5000", now;
    session << "UPDATE deliveries SET response_excerpt = substr(response_excerpt, 1, 20) || "
               "CASE WHEN substr(response_excerpt, 21, 1) = x'00' THEN x'01' ELSE x'00' END || "
               "substr(response_excerpt, 22)",
        now;
  }

  const auto r = api("GET", "/events/" + eventId_);
  ASSERT_EQ(r.status, 200) << "the event itself is intact: " << r.body;
  const auto delivery = parseObject(r.body)->getArray("deliveries")->getObject(0);
  EXPECT_EQ(delivery->getValue<std::string>("response_excerpt"), "");
  EXPECT_EQ(delivery->getValue<std::string>("location"), "");
  EXPECT_NE(delivery->getValue<std::string>("integrity_error").find("event " + eventId_),
            std::string::npos);
  EXPECT_EQ(delivery->getValue<int>("status"), 302);
  EXPECT_EQ(delivery->getValue<std::string>("phase"), "receiving");
}

}  // namespace
}  // namespace anm::test
