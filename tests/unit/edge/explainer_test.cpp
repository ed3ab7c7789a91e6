// tests/unit/edge/explainer_test.cpp: the model-based explanation against a stand-in for an
// OpenAI-compatible endpoint that the test runs on loopback: what is sent, what is accepted
// back, the cache and the hourly budget.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/explainer.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace anm::edge {
namespace {

// What the stand-in saw and what it answers.
struct StandIn {
  std::mutex mutex;
  std::vector<std::string> bodies;
  std::vector<std::string> authorizations;
  std::vector<std::string> paths;
  int status = 200;
  std::string content =
      R"({"summary":"The local handler refused a valid signature.","cause":"It verifies with )"
      R"(another secret.","evidence":["status 401","verdict valid"],"fix":"Use the hook's )"
      R"(secret.","confidence":0.8})";
};

class StandInHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit StandInHandler(StandIn& standIn) : standIn_(standIn) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    std::string body;
    Poco::StreamCopier::copyToString(req.stream(), body);
    std::string content;
    int status = 200;
    {
      std::lock_guard<std::mutex> lock(standIn_.mutex);
      standIn_.bodies.push_back(body);
      standIn_.authorizations.push_back(req.get("Authorization", ""));
      standIn_.paths.push_back(req.getURI());
      content = standIn_.content;
      status = standIn_.status;
    }
    Poco::JSON::Object message;
    message.set("role", "assistant");
    message.set("content", content);
    Poco::JSON::Object choice;
    choice.set("message", message);
    Poco::JSON::Array choices;
    choices.add(choice);
    Poco::JSON::Object reply;
    reply.set("choices", choices);
    std::ostringstream out;
    reply.stringify(out);
    resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    resp.setContentType("application/json");
    resp.sendBuffer(out.str().data(), out.str().size());
  }

 private:
  StandIn& standIn_;
};

class StandInFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit StandInFactory(StandIn& standIn) : standIn_(standIn) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new StandInHandler(standIn_);
  }

 private:
  StandIn& standIn_;
};

// A webhook the edge verified, that the local handler refused with 401.
struct Subject {
  store::HookRecord hook;
  store::EventRecord event;
  std::vector<store::DeliveryRecord> deliveries;
  std::vector<diagnosis::Finding> findings;

  Subject() {
    hook.id = "hook-1";
    hook.provider = "stripe";
    hook.secret = "whsec_THEHOOKSSECRETNEVERLEAVES";
    event.id = 42;
    event.hookId = hook.id;
    event.method = "POST";
    event.pathSuffix = "/stripe";
    event.rawQuery = "account=acct_SECRETVALUE&mode=live";
    event.headers = {
        {"Content-Type", "application/json"},
        {"Stripe-Signature",
         "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"},
        {"Authorization", "Bearer sk_live_TOPSECRETKEY"},
        {"X-Customer-Email", "someone@example.com"}};
    event.body = R"({"id":"evt_1","type":"payment_intent.succeeded","card":"4242BODYMARKER"})";
    event.bodySize = static_cast<int64_t>(event.body.size());
    event.verdict = store::Verdict::kValid;
    event.eventType = "payment_intent.succeeded";
    deliveries.push_back({42, "laptop", 401, 12, "", 1700000001000});
    diagnosis::Finding finding;
    finding.code = "delivery.local_verification_failed";
    finding.title = "The local handler refused a webhook the edge verified";
    finding.detail = "It answered 401: card 4242BODYMARKER";
    finding.evidence = {{"status", "401", true},
                        {"response_excerpt", "card 4242BODYMARKER", false}};
    findings.push_back(finding);
  }

  ExplainSubject view(bool bodyAllowed) const {
    ExplainSubject subject;
    subject.hook = &hook;
    subject.event = &event;
    subject.deliveries = &deliveries;
    subject.findings = &findings;
    subject.bodyExcerptAllowed = bodyAllowed;
    return subject;
  }
};

class ExplainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    server_ = std::make_unique<Poco::Net::HTTPServer>(new StandInFactory(standIn_), socket,
                                                      new Poco::Net::HTTPServerParams);
    server_->start();
  }

  void TearDown() override { server_->stop(); }

  ExplainConfig config(int64_t perHour = 30) const {
    ExplainConfig out;
    out.url = "http://127.0.0.1:" + std::to_string(port_) + "/v1";
    out.model = "stand-in-model";
    out.key = "the-operators-api-key";
    out.perHour = perHour;
    return out;
  }

  size_t calls() {
    std::lock_guard<std::mutex> lock(standIn_.mutex);
    return standIn_.bodies.size();
  }

  StandIn standIn_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ExplainerTest, OffWithoutAnEndpoint) {
  Explainer off{ExplainConfig{}};
  Subject subject;
  EXPECT_FALSE(off.enabled());
  try {
    off.explain("acc", subject.view(false));
    FAIL() << "explained while off";
  } catch (const ExplainError& e) {
    EXPECT_EQ(e.status(), 404);
  }
}

TEST_F(ExplainerTest, AsksTheEndpointWithTheKeyAndReturnsTheCheckedAnswer) {
  Explainer explainer(config());
  Subject subject;

  const Explanation answer = explainer.explain("acc", subject.view(false));

  EXPECT_EQ(answer.summary, "The local handler refused a valid signature.");
  EXPECT_EQ(answer.cause, "It verifies with another secret.");
  EXPECT_EQ(answer.fix, "Use the hook's secret.");
  ASSERT_EQ(answer.evidence.size(), 2u);
  EXPECT_DOUBLE_EQ(answer.confidence, 0.8);
  EXPECT_EQ(answer.model, "stand-in-model");
  EXPECT_FALSE(answer.cached);

  std::lock_guard<std::mutex> lock(standIn_.mutex);
  ASSERT_EQ(standIn_.bodies.size(), 1u);
  EXPECT_EQ(standIn_.paths[0], "/v1/chat/completions");
  EXPECT_EQ(standIn_.authorizations[0], "Bearer the-operators-api-key");
  Poco::JSON::Parser parser;
  const auto request = parser.parse(standIn_.bodies[0]).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(request->getValue<std::string>("model"), "stand-in-model");
  EXPECT_EQ(request->getArray("messages")->size(), 2u);
}

TEST_F(ExplainerTest, TheSummarySentCarriesNoSecretNoSignatureNoQueryValueAndNoBody) {
  Explainer explainer(config());
  Subject subject;
  explainer.explain("acc", subject.view(false));

  std::string sent;
  {
    std::lock_guard<std::mutex> lock(standIn_.mutex);
    sent = standIn_.bodies.at(0);
  }
  for (const char* secret :
       {"THEHOOKSSECRETNEVERLEAVES", "sk_live_TOPSECRETKEY", "5257a869e7ecebeda32affa6",
        "acct_SECRETVALUE", "someone@example.com", "4242BODYMARKER"}) {
    EXPECT_EQ(sent.find(secret), std::string::npos) << secret << " left the edge:\n" << sent;
  }

  // What helps stays: the shape of the request, the verdict, the status and the finding.
  for (const char* kept : {"Stripe-Signature", "application/json", "payment_intent.succeeded",
                           "delivery.local_verification_failed", "401", "account", "mode"}) {
    EXPECT_NE(sent.find(kept), std::string::npos) << kept << " is missing:\n" << sent;
  }
}

TEST_F(ExplainerTest, ABodyExcerptLeavesOnlyWhenTheHookAllowsIt) {
  Subject subject;
  const std::string without = Explainer::redactedSummary(subject.view(false));
  const std::string with = Explainer::redactedSummary(subject.view(true));
  EXPECT_EQ(without.find("4242BODYMARKER"), std::string::npos);
  EXPECT_NE(with.find("4242BODYMARKER"), std::string::npos);

  // Credentials are scrubbed even from an allowed excerpt.
  subject.event.body = "token whsec_ABCDEFGHIJKLMNOP and anm_pat_abcdefghij end";
  const std::string scrubbed = Explainer::redactedSummary(subject.view(true));
  EXPECT_EQ(scrubbed.find("whsec_ABCDEFGHIJKLMNOP"), std::string::npos) << scrubbed;
  EXPECT_EQ(scrubbed.find("anm_pat_abcdefghij"), std::string::npos) << scrubbed;
  EXPECT_NE(scrubbed.find("[redacted]"), std::string::npos) << scrubbed;
}

TEST_F(ExplainerTest, WhatTheLocalServerAnsweredLeavesOnlyAsTheBodyDoes) {
  Subject subject;
  auto& delivery = subject.deliveries.at(0);
  delivery.status = 302;
  delivery.responseExcerpt = "ANSWERMARKER signature mismatch";
  delivery.location = "http://localhost:3000/LOCATIONMARKER";
  delivery.phase = store::DeliveryPhase::kReceiving;
  delivery.timeoutMs = 10000;

  // The relay's own facts always help and carry nothing of the request.
  const std::string without = Explainer::redactedSummary(subject.view(false));
  EXPECT_EQ(without.find("ANSWERMARKER"), std::string::npos) << without;
  EXPECT_EQ(without.find("LOCATIONMARKER"), std::string::npos) << without;
  EXPECT_NE(without.find("\"phase\":\"receiving\""), std::string::npos) << without;
  EXPECT_NE(without.find("\"timeout_ms\":10000"), std::string::npos) << without;

  const std::string with = Explainer::redactedSummary(subject.view(true));
  EXPECT_NE(with.find("ANSWERMARKER"), std::string::npos) << with;
  EXPECT_NE(with.find("LOCATIONMARKER"), std::string::npos) << with;
}

TEST_F(ExplainerTest, TheSameEventIsAnsweredFromTheCacheWithoutAskingAgain) {
  Explainer explainer(config());
  Subject subject;
  explainer.explain("acc", subject.view(false));
  const Explanation again = explainer.explain("acc", subject.view(false));
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(again.summary, "The local handler refused a valid signature.");
  EXPECT_EQ(calls(), 1u);

  // A new delivery report is new evidence: asked again.
  subject.deliveries.push_back({42, "laptop", 500, 3, "", 1700000009000});
  EXPECT_FALSE(explainer.explain("acc", subject.view(false)).cached);
  EXPECT_EQ(calls(), 2u);
}

TEST_F(ExplainerTest, EachAccountHasItsHourlyBudgetAndIsToldWhenToComeBack) {
  Explainer explainer(config(2));
  Subject subject;
  for (int i = 0; i < 2; ++i) {
    subject.event.id = 100 + i;
    explainer.explain("acc_a", subject.view(false));
  }
  subject.event.id = 200;
  try {
    explainer.explain("acc_a", subject.view(false));
    FAIL() << "a third explanation within the hour";
  } catch (const ExplainError& e) {
    EXPECT_EQ(e.status(), 429);
    EXPECT_GT(e.retryAfterS(), 0);
  }

  // Another account's budget is its own, and cached answers cost nothing.
  EXPECT_NO_THROW(explainer.explain("acc_b", subject.view(false)));
  subject.event.id = 100;
  EXPECT_TRUE(explainer.explain("acc_a", subject.view(false)).cached);
  EXPECT_EQ(calls(), 3u);
}

TEST_F(ExplainerTest, AnAnswerOffFormOrAFailingEndpointIsAClearError) {
  Explainer explainer(config());
  Subject subject;
  const auto expectError = [&](int64_t eventId, const std::string& part) {
    subject.event.id = eventId;
    try {
      explainer.explain("acc", subject.view(false));
      FAIL() << "accepted";
    } catch (const ExplainError& e) {
      EXPECT_EQ(e.status(), 502);
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };

  {
    std::lock_guard<std::mutex> lock(standIn_.mutex);
    standIn_.content = "this is prose, not JSON";
  }
  expectError(1, "JSON object");
  {
    std::lock_guard<std::mutex> lock(standIn_.mutex);
    standIn_.content = R"({"summary":"x","cause":"y","fix":"z"})";
  }
  expectError(2, "confidence");
  {
    std::lock_guard<std::mutex> lock(standIn_.mutex);
    standIn_.status = 500;
  }
  expectError(3, "answered 500");

  // Nobody listening at all.
  ExplainConfig unreachable = config();
  unreachable.url = "http://127.0.0.1:1/v1";
  unreachable.timeout = std::chrono::milliseconds(2000);
  Explainer nowhere(unreachable);
  try {
    nowhere.explain("acc", subject.view(false));
    FAIL() << "explained without an endpoint";
  } catch (const ExplainError& e) {
    EXPECT_EQ(e.status(), 502);
    EXPECT_NE(std::string(e.what()).find("could not reach"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anm::edge
