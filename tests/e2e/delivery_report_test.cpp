// tests/e2e/delivery_report_test.cpp: after forwarding, the relay reports the local outcome to
// the edge, where the developer can read it through the REST API.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Base64Decoder.h>
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "tests/e2e/relay_env.h"

namespace anm::e2e {
namespace {

// The target's answer: not 200, so that the report must carry the real status.
constexpr int kTargetStatus = 202;
constexpr std::chrono::milliseconds kTargetDelay(200);

std::string base64Decode(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in);
  std::string out;
  char c;
  while (decoder.get(c)) out += c;
  return out;
}

// Polls the event detail until it lists a delivery or the deadline passes.
Poco::JSON::Object::Ptr waitForDelivery(RelayEnv& env, int64_t eventId) {
  std::string path = "/api/v1/hooks/" + env.hookId() + "/events/" + std::to_string(eventId);
  auto deadline = std::chrono::steady_clock::now() + kStepTimeout;
  Poco::JSON::Object::Ptr detail;
  while (std::chrono::steady_clock::now() < deadline) {
    WireResponse answer = apiGet(env.edgePort(), path, env.relay->token());
    if (answer.status == 200) {
      detail = parseObject(answer.message.body);
      auto deliveries = detail->getArray("deliveries");
      if (deliveries && deliveries->size() > 0) return detail;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return detail;
}

class DeliveryReportTest : public E2eTest {};

TEST_F(DeliveryReportTest, EventDetailShowsTargetStatus) {
  RelayEnvOptions options;
  options.responder = [](const RecordedRequest&) {
    TargetServer::Reply reply;
    reply.status = kTargetStatus;
    reply.delay = kTargetDelay;
    return reply;
  };
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));

  std::string body = "{\"report\":\"me\"}";
  SentRequest sent =
      request("POST", "/report", "k=v", {{"Content-Type", "application/json"}}, body);
  WireResponse answer = env_->ingest(sent);
  ASSERT_EQ(answer.status, 200) << answer.message.body;
  int64_t eventId = jsonInt(parseObject(answer.message.body), "id");
  ASSERT_GT(eventId, 0);
  ASSERT_TRUE(env_->target->waitForCount(1, kStepTimeout));

  auto detail = waitForDelivery(*env_, eventId);
  ASSERT_TRUE(detail) << "event detail never answered 200";
  auto deliveries = detail->getArray("deliveries");
  ASSERT_TRUE(deliveries && deliveries->size() == 1)
      << "deliveries reported: " << (deliveries ? deliveries->size() : 0);
  auto delivery = deliveries->getObject(0);
  EXPECT_EQ(jsonInt(delivery, "status"), kTargetStatus);
  EXPECT_EQ(jsonText(delivery, "error"), "");
  EXPECT_FALSE(jsonText(delivery, "relay").empty());
  EXPECT_GT(jsonInt(delivery, "reported_at_ms"), 0);

  // The target held its answer back, so a measured duration cannot be shorter than that.
  EXPECT_GE(jsonInt(delivery, "duration_ms"), kTargetDelay.count() * 3 / 4);

  // The stored event is what was sent.
  EXPECT_EQ(jsonInt(detail, "id"), eventId);
  EXPECT_EQ(jsonText(detail, "method"), "POST");
  EXPECT_EQ(jsonText(detail, "path"), "/report");
  EXPECT_EQ(jsonText(detail, "query"), "k=v");
  EXPECT_EQ(base64Decode(jsonText(detail, "body_base64")), body);

  // The relay printed the same outcome on its --json line.
  ASSERT_TRUE(env_->relay->waitForReports(1, kStepTimeout));
  auto report = env_->relay->reports().at(0);
  EXPECT_EQ(jsonInt(report, "id"), eventId);
  EXPECT_EQ(jsonInt(report, "status"), kTargetStatus);
  EXPECT_EQ(jsonText(report, "method"), "POST");
  EXPECT_EQ(jsonText(report, "path"), "/report");
  EXPECT_EQ(jsonText(report, "query"), "k=v");
}

TEST_F(DeliveryReportTest, UnreachableTargetIsReportedAsConnectionRefused) {
  RelayEnvOptions options;
  options.targetUrl = deadTargetUrl();
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));

  SentRequest sent = request("POST", "/nobody-home", "", {{"Content-Type", "text/plain"}}, "x");
  WireResponse answer = env_->ingest(sent);
  ASSERT_EQ(answer.status, 200) << answer.message.body;
  int64_t eventId = jsonInt(parseObject(answer.message.body), "id");

  auto detail = waitForDelivery(*env_, eventId);
  ASSERT_TRUE(detail);
  auto deliveries = detail->getArray("deliveries");
  ASSERT_TRUE(deliveries && deliveries->size() >= 1) << "no delivery reported";
  auto delivery = deliveries->getObject(0);
  EXPECT_EQ(jsonInt(delivery, "status"), 0);
  EXPECT_EQ(jsonText(delivery, "error"), "connection refused");
}

TEST_F(DeliveryReportTest, RedirectAndRefusalShowTheirLocationAndAnswerAtTheEdge) {
  RelayEnvOptions options;
  options.responder = [](const RecordedRequest& received) {
    TargetServer::Reply reply;
    if (received.target == "/redirect") {
      reply.status = 302;
      reply.location = "/login?next=%2Forders";
      reply.body = "moved";
    } else {
      reply.status = 401;
      reply.body = "{\"error\":\"No signatures found matching the expected signature\"}";
    }
    return reply;
  };
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));

  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::vector<int64_t> ids;
  for (const char* suffix : {"/redirect", "/auth"}) {
    WireResponse answer = env_->ingest(request("POST", suffix, "", {}, "{}"));
    ASSERT_EQ(answer.status, 200) << answer.message.body;
    ids.push_back(jsonInt(parseObject(answer.message.body), "id"));
  }

  // The redirect: its Location and the start of its body, and the relay's own facts.
  auto detail = waitForDelivery(*env_, ids[0]);
  ASSERT_TRUE(detail) << env_->describe();
  auto delivery = detail->getArray("deliveries")->getObject(0);
  EXPECT_EQ(jsonInt(delivery, "status"), 302);
  EXPECT_EQ(jsonText(delivery, "location"), "/login?next=%2Forders");
  EXPECT_EQ(jsonText(delivery, "response_excerpt"), "moved");
  EXPECT_EQ(jsonText(delivery, "phase"), "unknown");
  EXPECT_EQ(jsonInt(delivery, "timeout_ms"), 30000);
  EXPECT_FALSE(delivery->getValue<bool>("target_https"));
  EXPECT_GE(jsonInt(delivery, "started_at_ms"), before);
  EXPECT_LE(jsonInt(delivery, "started_at_ms"), jsonInt(delivery, "reported_at_ms"));

  // The refusal: what the local handler said, and no Location.
  detail = waitForDelivery(*env_, ids[1]);
  ASSERT_TRUE(detail) << env_->describe();
  delivery = detail->getArray("deliveries")->getObject(0);
  EXPECT_EQ(jsonInt(delivery, "status"), 401);
  EXPECT_EQ(jsonText(delivery, "response_excerpt"),
            "{\"error\":\"No signatures found matching the expected signature\"}");
  EXPECT_EQ(jsonText(delivery, "location"), "");
}

TEST_F(DeliveryReportTest, TimeoutReportsTheRelaysLimitAndWhereItHappened) {
  RelayEnvOptions options;
  options.relayArgs = {"--timeout", "1"};
  options.responder = [](const RecordedRequest&) {
    TargetServer::Reply reply;
    reply.delay = std::chrono::milliseconds(3000);
    return reply;
  };
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));

  WireResponse answer = env_->ingest(request("POST", "/slow", "", {}, "{}"));
  ASSERT_EQ(answer.status, 200) << answer.message.body;
  auto detail = waitForDelivery(*env_, jsonInt(parseObject(answer.message.body), "id"));
  ASSERT_TRUE(detail) << env_->describe();
  auto delivery = detail->getArray("deliveries")->getObject(0);
  EXPECT_EQ(jsonInt(delivery, "status"), 0);
  EXPECT_EQ(jsonText(delivery, "error"), "timeout");
  EXPECT_EQ(jsonText(delivery, "phase"), "receiving");
  EXPECT_EQ(jsonInt(delivery, "timeout_ms"), 1000);
  EXPECT_GE(jsonInt(delivery, "duration_ms"), 1000);
}

}  // namespace
}  // namespace anm::e2e
