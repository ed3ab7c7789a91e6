// tests/integration/dashboard_api_test.cpp: the reads the dashboard builds its views from:
// newest-first pages, the event count, per-minute activity and the live watch stream.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/edge/edge_server.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

struct Hook {
  std::string id;
  std::string token;
};

Poco::JSON::Object::Ptr parse(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

class DashboardApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-dashboard-api-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    edge::EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxThreads = 8;
    config.ratePerHook = 0;
    config.ratePerAddress = 0;
    server_ = std::make_unique<edge::EdgeServer>(config);
    server_->start();
    port_ = server_->port();
    const auto created =
        request(port_, "POST", "/api/v1/hooks", R"({"provider":"hmacfix","secret":"s3"})");
    ASSERT_EQ(created.status, 201) << created.body;
    hook_ = Hook{jsonField(created.body, "id"), jsonField(created.body, "token")};
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A webhook signed with the hook's secret (or not, to be refused); returns its event id.
  int64_t ingest(const std::string& body, bool validSignature = true) {
    const std::string key = validSignature ? "s3" : "wrong";
    const auto r = request(port_, "POST", "/h/" + hook_.id, body,
                           {{"X-Signature-256", "sha256=" + hmacSha256Hex(key, body)}});
    EXPECT_EQ(r.status, validSignature ? 200 : 401) << r.body;
    if (!validSignature) return 0;
    return std::stoll(jsonField(r.body, "id"));
  }

  Response api(const std::string& method, const std::string& target, const std::string& body = "") {
    return apiRequest(port_, method, "/api/v1/hooks/" + hook_.id + target, hook_.token, body);
  }

  std::string dir_;
  std::unique_ptr<edge::EdgeServer> server_;
  uint16_t port_ = 0;
  Hook hook_;
};

TEST_F(DashboardApiTest, NewestFirstPagesContinueBelowTheLastIdUntilTheEnd) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(ingest("event " + std::to_string(i)));

  const auto seen = newestFirstIds([this](const std::string& before) {
    return api("GET", "/events?order=desc&limit=2" + before);
  });
  EXPECT_EQ(seen, std::vector<int64_t>(ids.rbegin(), ids.rend()));

  // Mixing the two directions' cursors is refused rather than guessed at.
  EXPECT_EQ(api("GET", "/events?order=desc&after=1").status, 400);
  EXPECT_EQ(api("GET", "/events?before=3").status, 400);
  EXPECT_EQ(api("GET", "/events?order=sideways").status, 400);
}

TEST_F(DashboardApiTest, CountAndLastEventShowWhatTheHookHolds) {
  EXPECT_EQ(jsonField(api("GET", "/events/count").body, "count"), "0");
  EXPECT_EQ(jsonField(api("GET", "").body, "last_event_at_ms"), "0");

  ingest("one");
  ingest("two", false);
  ingest("three");

  EXPECT_EQ(jsonField(api("GET", "/events/count").body, "count"), "3");
  const auto hook = parse(api("GET", "").body);
  EXPECT_GT(hook->getValue<int64_t>("last_event_at_ms"), 0);
  EXPECT_EQ(api("POST", "/events/count").status, 405);
}

TEST_F(DashboardApiTest, ActivityHasOneBucketPerMinuteEndingWithTheCurrentOne) {
  const int64_t first = ingest("valid");
  ingest("refused", false);
  ASSERT_EQ(api("POST", "/events/" + std::to_string(first) + "/deliveries",
                R"({"relay":"r","status":503})")
                .status,
            201);

  const auto r = api("GET", "/activity?minutes=5");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = parse(r.body);
  EXPECT_EQ(body->getValue<int64_t>("bucket_ms"), 60000);
  const auto buckets = body->getArray("buckets");
  ASSERT_EQ(buckets->size(), 5u);
  int64_t valid = 0, invalid = 0, failed = 0;
  int64_t previousAt = 0;
  for (size_t i = 0; i < buckets->size(); ++i) {
    const auto bucket = buckets->getObject(static_cast<unsigned>(i));
    const int64_t at = bucket->getValue<int64_t>("at_ms");
    EXPECT_EQ(at % 60000, 0);
    if (i > 0) {
      EXPECT_EQ(at - previousAt, 60000);
    }
    previousAt = at;
    valid += bucket->getValue<int64_t>("valid");
    invalid += bucket->getValue<int64_t>("invalid");
    failed += bucket->getValue<int64_t>("failed");
  }
  EXPECT_EQ(valid, 1);
  EXPECT_EQ(invalid, 1);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(api("GET", "/activity?minutes=0").status, 400);
  EXPECT_EQ(api("GET", "/activity?minutes=1441").status, 400);
}

TEST_F(DashboardApiTest, WatchStreamsEverySummaryInvalidOnesTooAndDeliveryReports) {
  const int64_t before = ingest("before the watch");

  // Without a position the watch starts after the newest event: nothing old comes.
  SseClient watch(port_, hook_.id, hook_.token, -1, "watch");
  ASSERT_EQ(watch.head().status, 200) << watch.head().body;
  const int64_t valid = ingest("watched");
  ingest("refused while watched", false);

  Frame frame;
  ASSERT_TRUE(watch.nextNamed(frame));
  EXPECT_EQ(frame.event, "summary");
  EXPECT_EQ(frame.id, valid);
  EXPECT_EQ(jsonField(frame.data, "verdict"), "valid");
  EXPECT_EQ(frame.data.find("body_base64"), std::string::npos) << "summaries carry no body";
  EXPECT_EQ(frame.data.find("watched"), std::string::npos);

  // The invalid one, which relays never see, comes to the dashboard.
  ASSERT_TRUE(watch.nextNamed(frame));
  EXPECT_EQ(frame.event, "summary");
  EXPECT_EQ(frame.id, valid + 1);
  EXPECT_EQ(jsonField(frame.data, "verdict"), "invalid");
  EXPECT_EQ(jsonField(frame.data, "reason"), "signature_mismatch");

  // A delivery report of an earlier event arrives as a frame without an id.
  ASSERT_EQ(api("POST", "/events/" + std::to_string(before) + "/deliveries",
                R"({"relay":"laptop","status":502,"duration_ms":7})")
                .status,
            201);
  ASSERT_TRUE(watch.nextNamed(frame));
  EXPECT_EQ(frame.event, "delivery");
  EXPECT_EQ(frame.id, -1);
  EXPECT_EQ(jsonField(frame.data, "event"), std::to_string(before));
  EXPECT_EQ(jsonField(frame.data, "status"), "502");
  EXPECT_EQ(jsonField(frame.data, "relay"), "laptop");

  // A watch is no relay.
  EXPECT_EQ(jsonField(api("GET", "").body, "relays"), "0");
}

TEST_F(DashboardApiTest, WatchResumesAfterLastEventIdAndNeedsTheHooksToken) {
  const int64_t first = ingest("first");
  ingest("second");

  SseClient resumed(port_, hook_.id, hook_.token, first, "watch");
  Frame frame;
  ASSERT_TRUE(resumed.nextNamed(frame));
  EXPECT_EQ(frame.id, first + 1);

  SseClient stranger(port_, hook_.id, std::string(64, 'f'), -1, "watch");
  EXPECT_EQ(stranger.head().status, 404);
}

}  // namespace
}  // namespace anm::test
