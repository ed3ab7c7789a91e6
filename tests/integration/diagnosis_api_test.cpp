// tests/integration/diagnosis_api_test.cpp: search, diagnosis, issues, bulk replay and the model
// explanation, through the REST API of a running edge.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/edge/edge_server.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr parse(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Object::Ptr>();
}

std::vector<int64_t> idsOf(const Array::Ptr& array) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < array->size(); ++i) out.push_back(array->getElement<int64_t>(i));
  return out;
}

std::vector<std::string> codesOf(const std::string& findingsJson) {
  std::vector<std::string> out;
  const auto findings = parse(findingsJson)->getArray("findings");
  for (size_t i = 0; i < findings->size(); ++i) {
    out.push_back(findings->getObject(static_cast<unsigned>(i))->getValue<std::string>("code"));
  }
  return out;
}

// An OpenAI-compatible endpoint that answers every chat completion with one fixed explanation
// and counts what it was asked.
class ModelStandIn {
 public:
  ModelStandIn() : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)) {
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket_,
                                                      new Poco::Net::HTTPServerParams);
    server_->start();
  }
  ~ModelStandIn() { server_->stopAll(true); }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(socket_.address().port()) + "/v1";
  }
  int asked() const { return asked_.load(); }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(ModelStandIn& owner) : owner_(owner) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
      std::string ignored;
      Poco::StreamCopier::copyToString(req.stream(), ignored);
      ++owner_.asked_;

      Object answer;
      answer.set("summary", "Nothing listened on the relay's target.");
      answer.set("cause", "The local server was not running.");
      Array evidence;
      evidence.add("connection refused");
      answer.set("evidence", evidence);
      answer.set("fix", "Start the local server, then replay.");
      answer.set("confidence", 0.9);
      std::ostringstream content;
      answer.stringify(content);

      Object message;
      message.set("role", "assistant");
      message.set("content", content.str());
      Object choice;
      choice.set("message", message);
      Array choices;
      choices.add(choice);
      Object reply;
      reply.set("choices", choices);
      std::ostringstream out;
      reply.stringify(out);
      resp.setContentType("application/json");
      resp.sendBuffer(out.str().data(), out.str().size());
    }

   private:
    ModelStandIn& owner_;
  };

  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(ModelStandIn& owner) : owner_(owner) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(owner_);
    }

   private:
    ModelStandIn& owner_;
  };

  Poco::Net::ServerSocket socket_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::atomic<int> asked_{0};
};

class DiagnosisApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-diagnosis-api-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void startEdge(const std::string& explainUrl = "") {
    edge::EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxThreads = 8;
    config.ratePerHook = 0;
    config.ratePerAddress = 0;
    config.explain.url = explainUrl;
    config.explain.key = explainUrl.empty() ? "" : "sk-test";
    server_ = std::make_unique<edge::EdgeServer>(config);
    server_->start();
    port_ = server_->port();
    const auto created =
        request(port_, "POST", "/api/v1/hooks", R"({"provider":"hmacfix","secret":"s3"})");
    ASSERT_EQ(created.status, 201) << created.body;
    hookId_ = jsonField(created.body, "id");
    token_ = jsonField(created.body, "token");
  }

  // A webhook signed with the hook's secret, or with another to be refused; returns its id.
  int64_t ingest(const std::string& body, bool validSignature = true,
                 const std::string& path = "") {
    const std::string key = validSignature ? "s3" : "wrong";
    const auto r = request(port_, "POST", "/h/" + hookId_ + path, body,
                           {{"X-Signature-256", "sha256=" + hmacSha256Hex(key, body)}});
    EXPECT_EQ(r.status, validSignature ? 200 : 401) << r.body;
    const auto listed = api("GET", "/events?order=desc&limit=1");
    return parse(listed.body)->getArray("events")->getObject(0)->getValue<int64_t>("id");
  }

  void report(int64_t eventId, int status, const std::string& error = "") {
    Object delivery;
    delivery.set("relay", "laptop");
    delivery.set("status", status);
    delivery.set("duration_ms", 3);
    delivery.set("error", error);
    std::ostringstream out;
    delivery.stringify(out);
    const auto r = api("POST", "/events/" + std::to_string(eventId) + "/deliveries", out.str());
    ASSERT_EQ(r.status, 201) << r.body;
  }

  Response api(const std::string& method, const std::string& target, const std::string& body = "") {
    return apiRequest(port_, method, "/api/v1/hooks/" + hookId_ + target, token_, body);
  }

  // Reads the job until it ends (up to 10 s) and returns its last state.
  Object::Ptr waitForJob(const std::string& jobId) {
    Object::Ptr state;
    for (int i = 0; i < 200; ++i) {
      const auto r = api("GET", "/replays/" + jobId);
      EXPECT_EQ(r.status, 200) << r.body;
      state = parse(r.body);
      if (state->getValue<std::string>("state") != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return state;
  }

  std::string dir_;
  std::unique_ptr<edge::EdgeServer> server_;
  uint16_t port_ = 0;
  std::string hookId_;
  std::string token_;
};

TEST_F(DiagnosisApiTest, SearchFindsMatchingEventsNewestFirstAndReportsWhatItScanned) {
  startEdge();
  const int64_t first = ingest(R"({"order":42,"state":"paid"})", true, "/orders");
  ingest(R"({"order":43,"state":"open"})", true, "/carts");
  const int64_t third = ingest(R"({"order":44,"state":"paid"})", false, "/orders");

  const auto r = api("GET", "/events?q=path:/orders%20body:paid");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = parse(r.body);
  const auto events = body->getArray("events");
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(events->getObject(0)->getValue<int64_t>("id"), third);
  EXPECT_EQ(events->getObject(1)->getValue<int64_t>("id"), first);
  EXPECT_EQ(body->getValue<int64_t>("scanned"), 3);
  EXPECT_EQ(body->getValue<int64_t>("next_before"), 0);

  // The body is read after decryption: a word inside it finds it, a word outside it does not.
  const auto refused = parse(api("GET", "/events?q=verdict:invalid%20body:%2244%22").body);
  ASSERT_EQ(refused->getArray("events")->size(), 1u);
  EXPECT_EQ(refused->getArray("events")->getObject(0)->getValue<int64_t>("id"), third);
  EXPECT_EQ(parse(api("GET", "/events?q=body:refund").body)->getArray("events")->size(), 0u);
}

TEST_F(DiagnosisApiTest, SearchPagesContinueBelowTheLastMatch) {
  startEdge();
  std::vector<int64_t> matching;
  for (int i = 0; i < 5; ++i) {
    matching.push_back(ingest("match " + std::to_string(i)));
    ingest("other " + std::to_string(i));
  }

  const auto seen = newestFirstIds([this](const std::string& before) {
    return api("GET", "/events?q=body:match&limit=2" + before);
  });
  EXPECT_EQ(seen, std::vector<int64_t>(matching.rbegin(), matching.rend()));

  // A search has one order; asking for the other is refused rather than ignored.
  EXPECT_EQ(api("GET", "/events?q=body:match&order=asc").status, 400);
  EXPECT_EQ(api("GET", "/events?q=body:match&after=1").status, 400);
  EXPECT_EQ(api("GET", "/events?q=body:match&order=desc").status, 200);
}

TEST_F(DiagnosisApiTest, AQueryErrorNamesWhereItIs) {
  startEdge();
  ingest("x");

  // "verdict:maybe": the value starts at offset 8.
  const auto r = api("GET", "/events?q=verdict:maybe");
  ASSERT_EQ(r.status, 400) << r.body;
  const auto body = parse(r.body);
  EXPECT_EQ(body->getValue<int64_t>("position"), 8);
  EXPECT_GT(body->getValue<int64_t>("length"), 0);
  EXPECT_NE(body->getValue<std::string>("error").find("verdict"), std::string::npos);

  // An unclosed parenthesis points at the parenthesis.
  const auto unclosed = parse(api("GET", "/events?q=(method:POST%20OR%20method:PUT").body);
  EXPECT_EQ(unclosed->getValue<int64_t>("position"), 0);

  // Lower-case operators are refused where they stand.
  const auto lower = parse(api("GET", "/events?q=verdict:invalid%20or%20status:500").body);
  EXPECT_EQ(lower->getValue<int64_t>("position"), 16);
}

TEST_F(DiagnosisApiTest, DiagnosisNamesNothingListeningAndALocalHandlerRefusingAValidSignature) {
  startEdge();
  const int64_t unheard = ingest(R"({"n":1})");
  report(unheard, 0, "connection refused");
  const int64_t refused = ingest(R"({"n":2})");
  report(refused, 401, "");
  const int64_t forged = ingest(R"({"n":3})", false);

  EXPECT_EQ(codesOf(api("GET", "/events/" + std::to_string(unheard) + "/diagnosis").body),
            std::vector<std::string>{"delivery.nothing_listening"});
  EXPECT_EQ(codesOf(api("GET", "/events/" + std::to_string(refused) + "/diagnosis").body),
            std::vector<std::string>{"delivery.local_verification_failed"});
  const auto forgedCodes =
      codesOf(api("GET", "/events/" + std::to_string(forged) + "/diagnosis").body);
  ASSERT_FALSE(forgedCodes.empty());
  EXPECT_EQ(forgedCodes.front(), "signature.mismatch");

  // The event's detail carries the same findings, each with a page the edge serves.
  const auto detail = parse(api("GET", "/events/" + std::to_string(refused)).body);
  const auto finding = detail->getArray("diagnosis")->getObject(0);
  EXPECT_EQ(finding->getValue<std::string>("code"), "delivery.local_verification_failed");
  const std::string page = finding->getValue<std::string>("page");
  const auto served = request(port_, "GET", page, "");
  EXPECT_EQ(served.status, 200) << page;
  EXPECT_NE(served.body.find("local_verification_failed"), std::string::npos);

  EXPECT_EQ(api("GET", "/events/999/diagnosis").status, 404);
  EXPECT_EQ(api("POST", "/events/" + std::to_string(refused) + "/diagnosis").status, 405);
}

TEST_F(DiagnosisApiTest, IssuesGroupFailuresAndKeepTheResolveMarkUntilTheFailureComesBack) {
  startEdge();
  for (int i = 0; i < 2; ++i)
    report(ingest("unheard " + std::to_string(i)), 0, "connection refused");
  report(ingest("refused"), 401);
  report(ingest("fine"), 200);

  const auto open = parse(api("GET", "/issues").body)->getArray("issues");
  ASSERT_EQ(open->size(), 2u);
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < open->size(); ++i) {
    const auto issue = open->getObject(static_cast<unsigned>(i));
    EXPECT_EQ(issue->getValue<std::string>("state"), "open");
    counts[issue->getValue<std::string>("key")] = issue->getValue<int64_t>("count");
  }
  EXPECT_EQ(counts["delivery.nothing_listening:0"], 2);
  EXPECT_EQ(counts["delivery.local_verification_failed:401"], 1);

  // Resolved, the issue leaves the open list and shows in the resolved one.
  const auto resolved = api("POST", "/issues/delivery.nothing_listening:0/resolve");
  ASSERT_EQ(resolved.status, 200) << resolved.body;
  EXPECT_EQ(jsonField(resolved.body, "state"), "resolved");
  EXPECT_EQ(parse(api("GET", "/issues").body)->getArray("issues")->size(), 1u);
  const auto listedResolved = parse(api("GET", "/issues?state=resolved").body)->getArray("issues");
  ASSERT_EQ(listedResolved->size(), 1u);
  EXPECT_EQ(listedResolved->getObject(0)->getValue<std::string>("key"),
            "delivery.nothing_listening:0");
  EXPECT_EQ(parse(api("GET", "/issues?state=all").body)->getArray("issues")->size(), 2u);

  // The same failure after the mark opens the issue again, marked as reopened.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  report(ingest("unheard again"), 0, "connection refused");
  const auto again = parse(api("GET", "/issues").body)->getArray("issues");
  bool reopened = false;
  for (size_t i = 0; i < again->size(); ++i) {
    const auto issue = again->getObject(static_cast<unsigned>(i));
    if (issue->getValue<std::string>("key") == "delivery.nothing_listening:0") {
      reopened = issue->getValue<bool>("reopened");
    }
  }
  EXPECT_TRUE(reopened);

  // Reopen clears the mark; a key the hook has no issue for, or malformed, is unknown.
  ASSERT_EQ(api("POST", "/issues/delivery.local_verification_failed:401/resolve").status, 200);
  const auto cleared = api("POST", "/issues/delivery.local_verification_failed:401/reopen");
  EXPECT_EQ(jsonField(cleared.body, "state"), "open");
  EXPECT_EQ(jsonField(cleared.body, "resolved_at_ms"), "0");
  EXPECT_EQ(api("POST", "/issues/delivery.timeout:0/resolve").status, 404);
  EXPECT_EQ(api("POST", "/issues/nonsense/resolve").status, 404);
  EXPECT_EQ(api("GET", "/issues?state=closed").status, 400);
}

TEST_F(DiagnosisApiTest, ReplayingAnIssueReplaysEachOfItsOriginalsOnce) {
  startEdge();
  const int64_t a = ingest("unheard a");
  const int64_t b = ingest("unheard b");
  report(a, 0, "connection refused");
  report(b, 0, "connection refused");

  // A replay that failed the same way belongs to the issue but stands for its original.
  const auto replay = api("POST", "/events/" + std::to_string(a) + "/replay");
  ASSERT_EQ(replay.status, 201) << replay.body;
  report(std::stoll(jsonField(replay.body, "id")), 0, "connection refused");

  const auto started = api("POST", "/issues/delivery.nothing_listening:0/replay");
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_EQ(jsonField(started.body, "total"), "2");
  const auto job = waitForJob(jsonField(started.body, "id"));
  EXPECT_EQ(job->getValue<std::string>("state"), "done");
  EXPECT_EQ(job->getValue<int64_t>("done"), 2);

  // The new events are replays of the originals, in the order those came.
  const auto replays = idsOf(job->getArray("replays"));
  ASSERT_EQ(replays.size(), 2u);
  EXPECT_EQ(jsonField(api("GET", "/events/" + std::to_string(replays[0])).body, "replay_of"),
            std::to_string(a));
  EXPECT_EQ(jsonField(api("GET", "/events/" + std::to_string(replays[1])).body, "replay_of"),
            std::to_string(b));
}

TEST_F(DiagnosisApiTest, BulkReplayShowsTheCountFirstAndRefusesACountThatChanged) {
  startEdge();
  std::vector<int64_t> paid;
  for (int i = 0; i < 3; ++i) {
    paid.push_back(ingest("paid " + std::to_string(i)));
    ingest("open " + std::to_string(i));
  }

  const auto dry = api("POST", "/replays", R"({"q":"body:paid","dry_run":true})");
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(jsonField(dry.body, "count"), "3");
  EXPECT_EQ(jsonField(dry.body, "over_limit"), "false");

  // Confirmation is required, and must match what the query matches now.
  EXPECT_EQ(api("POST", "/replays", R"({"q":"body:paid"})").status, 400);
  paid.push_back(ingest("paid 3"));
  const auto stale = api("POST", "/replays", R"({"q":"body:paid","expect":3})");
  EXPECT_EQ(stale.status, 409) << stale.body;
  EXPECT_EQ(jsonField(stale.body, "count"), "4");
  EXPECT_EQ(parse(api("GET", "/events/count").body)->getValue<int64_t>("count"), 7);

  const auto started = api("POST", "/replays", R"({"q":"body:paid","expect":4})");
  ASSERT_EQ(started.status, 202) << started.body;
  const auto job = waitForJob(jsonField(started.body, "id"));
  EXPECT_EQ(job->getValue<std::string>("state"), "done");
  EXPECT_EQ(job->getValue<int64_t>("total"), 4);
  EXPECT_EQ(job->getValue<int64_t>("failed"), 0);

  // Each replay is an event of its own, linked to its original both ways, oldest original
  // first.
  const auto replays = idsOf(job->getArray("replays"));
  ASSERT_EQ(replays.size(), paid.size());
  for (size_t i = 0; i < replays.size(); ++i) {
    EXPECT_EQ(jsonField(api("GET", "/events/" + std::to_string(replays[i])).body, "replay_of"),
              std::to_string(paid[i]));
    const auto original = parse(api("GET", "/events/" + std::to_string(paid[i])).body);
    EXPECT_EQ(idsOf(original->getArray("replays")), std::vector<int64_t>{replays[i]});
  }

  // Bad requests are refused before anything is replayed.
  EXPECT_EQ(api("POST", "/replays", R"({"q":"body:(paid","expect":1})").status, 400);
  EXPECT_EQ(api("POST", "/replays", R"({"q":"x","expect":1,"force":true})").status, 400);
  EXPECT_EQ(api("POST", "/replays", R"({"dry_run":true})").status, 400);
  EXPECT_EQ(parse(api("GET", "/events/count").body)->getValue<int64_t>("count"), 11);
}

TEST_F(DiagnosisApiTest, AReplayReachesAConnectedRelayAsAnEventOfItsOwn) {
  startEdge();
  const int64_t original = ingest("to replay");
  SseClient relay(port_, hookId_, token_, original);
  ASSERT_EQ(relay.head().status, 200);

  const auto started = api("POST", "/replays", R"({"q":"body:replay","expect":1})");
  ASSERT_EQ(started.status, 202) << started.body;
  Frame frame;
  ASSERT_TRUE(relay.nextEvent(frame));
  EXPECT_GT(frame.id, original);
  EXPECT_EQ(frameBody(frame), "to replay");
  EXPECT_EQ(jsonField(frame.data, "replay_of"), std::to_string(original));
}

TEST_F(DiagnosisApiTest, AJobCanBeCancelledAndBelongsToItsHookOnly) {
  startEdge();
  std::vector<int64_t> ids;
  for (int i = 0; i < 30; ++i) ids.push_back(ingest("bulk " + std::to_string(i)));

  // Cancelling stops the job after the event it is on; what was replayed stays.
  const auto started = api("POST", "/replays", R"({"q":"body:bulk","expect":30})");
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string jobId = jsonField(started.body, "id");
  const auto cancelled = api("DELETE", "/replays/" + jobId);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;

  // A job that ended first stays done; the worker's timing is held still in replay_jobs_test.
  const auto job = waitForJob(jobId);
  EXPECT_EQ(job->getValue<std::string>("state"), jsonField(cancelled.body, "state"));
  const int64_t replayed = job->getValue<int64_t>("done");
  if (job->getValue<std::string>("state") == "done") {
    EXPECT_EQ(replayed, 30);
  }
  EXPECT_EQ(parse(api("GET", "/events/count").body)->getValue<int64_t>("count"), 30 + replayed);

  // Another hook's token sees no such job.
  const auto other =
      request(port_, "POST", "/api/v1/hooks", R"({"provider":"hmacfix","secret":"s4"})");
  const std::string otherId = jsonField(other.body, "id");
  const std::string otherToken = jsonField(other.body, "token");
  EXPECT_EQ(
      apiRequest(port_, "GET", "/api/v1/hooks/" + otherId + "/replays/" + jobId, otherToken).status,
      404);
  EXPECT_NE(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hookId_ + "/replays/" + jobId, otherToken).status,
      200);
  EXPECT_EQ(api("GET", "/replays/rpl_unknown").status, 404);
}

TEST_F(DiagnosisApiTest, ExplanationIsOffUnlessTheOperatorPointsTheEdgeAtAModel) {
  startEdge();
  const int64_t id = ingest("x");
  report(id, 0, "connection refused");
  const auto off = api("POST", "/events/" + std::to_string(id) + "/explain");
  EXPECT_EQ(off.status, 404) << off.body;
  EXPECT_NE(off.body.find("off"), std::string::npos);
}

TEST_F(DiagnosisApiTest, ExplanationAsksTheModelOnceAndAnswersFromTheCacheAfter) {
  ModelStandIn model;
  startEdge(model.url());
  const int64_t id = ingest("x");
  report(id, 0, "connection refused");

  const auto first = api("POST", "/events/" + std::to_string(id) + "/explain");
  ASSERT_EQ(first.status, 200) << first.body;
  const auto answer = parse(first.body);
  EXPECT_EQ(answer->getValue<std::string>("cause"), "The local server was not running.");
  EXPECT_DOUBLE_EQ(answer->getValue<double>("confidence"), 0.9);
  EXPECT_EQ(model.asked(), 1);

  const auto second = api("POST", "/events/" + std::to_string(id) + "/explain");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(jsonField(second.body, "cached"), "true");
  EXPECT_EQ(model.asked(), 1);
  EXPECT_EQ(api("POST", "/events/999/explain").status, 404);
}

TEST_F(DiagnosisApiTest, TheHookOwnerDecidesWhetherBodyExcerptsMayBeExplained) {
  startEdge();
  EXPECT_EQ(jsonField(api("GET", "").body, "explain_body_excerpt"), "false");
  const auto allowed = api("PATCH", "", R"({"explain_body_excerpt":true})");
  ASSERT_EQ(allowed.status, 200) << allowed.body;
  EXPECT_EQ(jsonField(allowed.body, "explain_body_excerpt"), "true");
  EXPECT_EQ(jsonField(api("GET", "").body, "explain_body_excerpt"), "true");
  EXPECT_EQ(api("PATCH", "", R"({"explain_body_excerpt":"yes"})").status, 400);
  EXPECT_EQ(jsonField(api("GET", "").body, "explain_body_excerpt"), "true");
}

}  // namespace
}  // namespace anm::test
