// tests/cli/relay_test.cpp: `anonymily relay` against a fake edge and a raw recording target.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "cli/src/config_store.h"
#include "support/cli_process.h"
#include "support/fake_edge.h"
#include "support/raw_target.h"
#include "support/temp_dir.h"

namespace anm::cli::test {
namespace {

using namespace std::chrono_literals;

Poco::JSON::Object::Ptr parseJson(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// A loopback port that was free a moment ago and has no listener now.
uint16_t unusedPort() {
  Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
  return probe.address().port();
}

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class RelayTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> env() const {
    return {{"XDG_CONFIG_HOME", config_.path()}, {"ANONYMILY_EDGE", ""}};
  }

  /// Starts a relay that creates a hook, and waits for its banner.
  std::unique_ptr<CliProcess> startRelay(std::vector<std::string> extra, FakeEdge& edge,
                                         const std::string& to) {
    std::vector<std::string> args = {"relay", "--edge", edge.url(), "--to", to};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = std::make_unique<CliProcess>(args, env());
    return process;
  }

  /// The relay's JSON lines parsed, the banner excluded (it goes to stderr with --json).
  static std::vector<Poco::JSON::Object::Ptr> jsonLines(const CliProcess& process) {
    std::vector<Poco::JSON::Object::Ptr> out;
    for (const std::string& line : process.lines()) out.push_back(parseJson(line));
    return out;
  }

  std::string tokenFile() const {
    return config_.path() + "/anonymily/hooks/" + FakeEdge::kHookId + ".token";
  }

  std::string cursorFile(const std::string& target) const {
    return config_.path() + "/anonymily/hooks/" + cursorFileName(FakeEdge::kHookId, target);
  }

  TempDir config_;
  FakeEdge edge_;
  RawTarget target_;
};

TEST_F(RelayTest, CreatesHookPrintsIngestUrlFirstAndSavesTokenPrivately) {
  auto relay = startRelay({"--provider", "stripe", "--secret", "whsec_abc", "--option",
                           "allow_sha1=true", "--tolerance", "300"},
                          edge_, target_.url("/hooks"));
  ASSERT_TRUE(relay->waitForLines(2)) << relay->err();

  // The first stdout line is the public URL and the target.
  const auto lines = relay->lines();
  EXPECT_EQ(lines[0], "forwarding " + edge_.url() + "/h/" + FakeEdge::kHookId + " -> " +
                          target_.url("/hooks"))
      << "got: " << lines[0];
  EXPECT_EQ(lines[1], std::string("hook ") + FakeEdge::kHookId);

  // The create request carried the verification settings.
  ASSERT_EQ(edge_.createBodies().size(), 1u);
  const auto created = parseJson(edge_.createBodies()[0]);
  EXPECT_EQ(created->getValue<std::string>("provider"), "stripe");
  EXPECT_EQ(created->getValue<std::string>("secret"), "whsec_abc");
  EXPECT_EQ(created->getValue<int>("tolerance_s"), 300);
  EXPECT_EQ(created->getObject("options")->getValue<std::string>("allow_sha1"), "true");

  // The token is saved, readable by its owner only, in a private directory.
  struct stat fileStat {};
  ASSERT_EQ(::stat(tokenFile().c_str(), &fileStat), 0);
  EXPECT_EQ(fileStat.st_mode & 0777, 0600u);
  EXPECT_EQ(readFile(tokenFile()), std::string(FakeEdge::kToken) + "\n");
  struct stat dirStat {};
  ASSERT_EQ(::stat((config_.path() + "/anonymily/hooks").c_str(), &dirStat), 0);
  EXPECT_EQ(dirStat.st_mode & 0777, 0700u);
}

TEST_F(RelayTest, ForwardsMethodPathQueryHeadersAndBodyExactly) {
  auto relay = startRelay({"--json"}, edge_, target_.url("/base/"));

  FakeEvent event;
  event.method = "PATCH";
  event.path = "/a%20b/c+d%2Fe";
  event.query = "x=%20&y=+&z=%2F&w=%2f";
  event.headers = {{"Host", "provider.example"},
                   {"X-A", "1"},
                   {"x-MiXed-Case", "Value With  Spaces"},
                   {"X-B", "2"},
                   {"X-A", "3"},
                   {"Connection", "keep-alive, X-Hop"},
                   {"X-Hop", "dropped because Connection names it"},
                   {"Keep-Alive", "timeout=5"},
                   {"Proxy-Connection", "keep-alive"},
                   {"TE", "trailers"},
                   {"Trailer", "X-Checksum"},
                   {"Upgrade", "h2c"},
                   {"Transfer-Encoding", "chunked"},
                   {"Content-Length", "999"},
                   {"set-cookie", "a=1"},
                   {"Set-Cookie", "b=2"},
                   {"X-Raw", "\xff\xfe not utf-8"},
                   {"X-Last", ""}};
  event.body = std::string("a\0b\xff\xfe\x80{\"k\":1}\r\n", 15);
  edge_.addEvent(event);
  ASSERT_TRUE(target_.waitForRequests(1, 15s)) << relay->err();

  // Host takes the original Host's place; hop-by-hop fields and the old length are gone.
  const std::string expectedHead =
      "PATCH /base/a%20b/c+d%2Fe?x=%20&y=+&z=%2F&w=%2f HTTP/1.1\r\n"
      "Host: 127.0.0.1:" +
      std::to_string(target_.port()) +
      "\r\n"
      "X-A: 1\r\n"
      "x-MiXed-Case: Value With  Spaces\r\n"
      "X-B: 2\r\n"
      "X-A: 3\r\n"
      "set-cookie: a=1\r\n"
      "Set-Cookie: b=2\r\n"
      "X-Raw: \xff\xfe not utf-8\r\n"
      "X-Last: \r\n"
      "Content-Length: 15\r\n"
      "\r\n";
  const RawRequest got = target_.requests().at(0);
  EXPECT_EQ(got.head, expectedHead);
  EXPECT_EQ(got.body, event.body);
  EXPECT_EQ(got.raw, expectedHead + event.body);
}

TEST_F(RelayTest, PathAndQueryBytesThatAreNotUtf8ArriveExactly) {
  auto relay = startRelay({"--json"}, edge_, target_.url("/hooks"));

  // Every byte from 0x80 to 0xff in both the suffix and the query: the envelope then carries
  // them in path_b64/query_b64 and shows U+FFFD in "path"/"query".
  std::string high;
  for (int c = 0x80; c <= 0xff; ++c) high.push_back(static_cast<char>(c));
  FakeEvent event;
  event.path = "/raw/" + high + "/end";
  event.query = "q=" + high + "&x=1";
  event.body = "{}";
  edge_.addEvent(event);
  ASSERT_TRUE(target_.waitForRequests(1, 15s)) << relay->err();

  // The request target holds the exact bytes, nothing re-encoded or replaced.
  const RawRequest got = target_.requests().at(0);
  EXPECT_EQ(got.requestLine(), "POST /hooks/raw/" + high + "/end?q=" + high + "&x=1 HTTP/1.1");
  EXPECT_EQ(got.body, "{}");

  // The printed line uses the display form, which stays valid UTF-8.
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();
  const auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(
      line->getValue<std::string>("path"), "/raw/" + [&] {
        std::string shown;
        for (size_t i = 0; i < high.size(); ++i) shown += "\xEF\xBF\xBD";
        return shown;
      }() + "/end");
  EXPECT_EQ(line->getValue<int>("status"), 200);
}

TEST_F(RelayTest, EmptyBodiesGetContentLengthOnlyWhenTheOriginalHadOne) {
  auto relay = startRelay({"--json"}, edge_, target_.url());

  FakeEvent plain;
  plain.method = "GET";
  plain.path = "";
  plain.headers = {{"Accept", "*/*"}};
  edge_.addEvent(plain);
  FakeEvent withLength;
  withLength.method = "POST";
  withLength.path = "/empty";
  withLength.headers = {{"Content-Length", "0"}, {"X-Id", "2"}};
  edge_.addEvent(withLength);
  FakeEvent chunked;
  chunked.method = "POST";
  chunked.path = "/chunked";
  chunked.headers = {{"Transfer-Encoding", "chunked"}};
  edge_.addEvent(chunked);
  ASSERT_TRUE(target_.waitForRequests(3, 15s)) << relay->err();

  const auto requests = target_.requests();
  const std::string host = "Host: 127.0.0.1:" + std::to_string(target_.port()) + "\r\n";
  EXPECT_EQ(requests[0].raw, "GET / HTTP/1.1\r\n" + host + "Accept: */*\r\n\r\n");
  EXPECT_EQ(requests[1].raw,
            "POST /empty HTTP/1.1\r\n" + host + "X-Id: 2\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(requests[2].raw, "POST /chunked HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n");
}

TEST_F(RelayTest, JsonLinesDescribeEachDeliveryAndReportsCarryTheTargetStatus) {
  target_.setResponse("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  auto relay = startRelay({"--json"}, edge_, target_.url());
  FakeEvent first;
  first.path = "/stripe";
  first.query = "x=1";
  first.eventType = "payment_intent.succeeded";
  first.body = "{}";
  const int64_t firstId = edge_.addEvent(first);
  FakeEvent second;
  second.method = "PUT";
  second.path = "/other";
  const int64_t secondId = edge_.addEvent(second);
  ASSERT_TRUE(relay->waitForLines(2)) << relay->err();

  // stdout has only the event lines, each valid JSON with the fields the docs list.
  const auto lines = jsonLines(*relay);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]->getValue<int64_t>("id"), firstId);
  EXPECT_EQ(lines[0]->getValue<std::string>("method"), "POST");
  EXPECT_EQ(lines[0]->getValue<std::string>("path"), "/stripe");
  EXPECT_EQ(lines[0]->getValue<std::string>("query"), "x=1");
  EXPECT_EQ(lines[0]->getValue<std::string>("event_type"), "payment_intent.succeeded");
  EXPECT_EQ(lines[0]->getValue<int>("status"), 201);
  EXPECT_EQ(lines[0]->getValue<std::string>("error"), "");
  EXPECT_TRUE(lines[0]->has("time"));
  EXPECT_TRUE(lines[0]->has("duration_ms"));
  EXPECT_EQ(lines[1]->getValue<int64_t>("id"), secondId);
  EXPECT_EQ(lines[1]->getValue<std::string>("method"), "PUT");
  EXPECT_NE(relay->err().find("forwarding "), std::string::npos);

  // Both deliveries reach the edge with the status the target gave and one relay id.
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() >= 2; })) << relay->err();
  const auto reports = edge_.deliveries();
  EXPECT_EQ(reports[0].event, firstId);
  EXPECT_EQ(reports[0].status, 201);
  EXPECT_EQ(reports[0].error, "");
  EXPECT_EQ(reports[1].event, secondId);
  EXPECT_EQ(reports[1].status, 201);
  EXPECT_FALSE(reports[0].relay.empty());
  EXPECT_EQ(reports[0].relay, reports[1].relay);
}

TEST_F(RelayTest, ReadableLinesShowTimeMethodPathTypeStatusAndDuration) {
  auto relay = startRelay({}, edge_, target_.url());
  FakeEvent event;
  event.path = "/stripe";
  event.query = "x=1";
  event.eventType = "payment_intent.succeeded";
  edge_.addEvent(event);
  ASSERT_TRUE(relay->waitForLines(3)) << relay->err();
  const std::string line = relay->lines()[2];
  ASSERT_GE(line.size(), 14u);
  EXPECT_EQ(line[2], ':');
  EXPECT_EQ(line[5], ':');
  EXPECT_EQ(line[8], '.');
  EXPECT_NE(line.find("  POST /stripe?x=1  payment_intent.succeeded  -> 200  "), std::string::npos)
      << line;
  EXPECT_EQ(line.substr(line.size() - 3), " ms");
}

TEST_F(RelayTest, RedirectIsReportedNotFollowed) {
  target_.setResponse(
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: "
      "3\r\n\r\nbye");
  auto relay = startRelay({"--json"}, edge_, target_.url());
  const int64_t id = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();

  const auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(line->getValue<int>("status"), 302);
  EXPECT_EQ(line->getValue<std::string>("location"), "http://127.0.0.1:1/elsewhere");
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return !edge_.deliveries().empty(); }));
  const ReportedDelivery report = edge_.deliveries()[0];
  EXPECT_EQ(report.event, id);
  EXPECT_EQ(report.status, 302);

  // The report says where it pointed and what came with it, and the relay's own facts.
  EXPECT_EQ(report.location, "http://127.0.0.1:1/elsewhere");
  EXPECT_EQ(report.responseExcerpt, "bye");
  EXPECT_EQ(report.phase, "unknown");
  EXPECT_EQ(report.timeoutMs, 30000);
  EXPECT_FALSE(report.targetHttps);
  EXPECT_GT(report.startedAtMs, 1700000000000);

  // Exactly the one request: nothing went to the Location.
  EXPECT_EQ(target_.requests().size(), 1u);
}

TEST_F(RelayTest, SilentTargetTimesOutAndTheNextEventStillGoes) {
  target_.setMode(RawTarget::Mode::kHang);
  auto relay = startRelay({"--json", "--timeout", "1"}, edge_, target_.url());
  const int64_t first = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();
  auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(line->getValue<int64_t>("id"), first);
  EXPECT_EQ(line->getValue<int>("status"), 0);
  EXPECT_EQ(line->getValue<std::string>("error"), "timeout");

  // The timed-out event is not retried; the next one is delivered normally.
  target_.setMode(RawTarget::Mode::kRespond);
  const int64_t second = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(2)) << relay->err();
  line = jsonLines(*relay).at(1);
  EXPECT_EQ(line->getValue<int64_t>("id"), second);
  EXPECT_EQ(line->getValue<int>("status"), 200);
  EXPECT_EQ(target_.requests().size(), 2u);

  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() >= 2; }));
  EXPECT_EQ(edge_.deliveries()[0].status, 0);
  EXPECT_EQ(edge_.deliveries()[0].error, "timeout");

  // Where it timed out, and after how long the relay gave up.
  EXPECT_EQ(edge_.deliveries()[0].phase, "receiving");
  EXPECT_EQ(edge_.deliveries()[0].timeoutMs, 1000);
  EXPECT_EQ(edge_.deliveries()[1].phase, "unknown");
  EXPECT_EQ(edge_.deliveries()[1].responseExcerpt, "ok");
}

TEST_F(RelayTest, RefusedConnectionIsReported) {
  // A port that was free a moment ago and has no listener now.
  uint16_t closedPort = 0;
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    closedPort = probe.address().port();
  }
  auto relay =
      startRelay({"--json"}, edge_, "http://127.0.0.1:" + std::to_string(closedPort) + "/x");
  const int64_t id = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();
  const auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(line->getValue<int>("status"), 0);
  EXPECT_EQ(line->getValue<std::string>("error"), "connection refused");
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return !edge_.deliveries().empty(); }));
  EXPECT_EQ(edge_.deliveries()[0].event, id);
  EXPECT_EQ(edge_.deliveries()[0].error, "connection refused");
  EXPECT_EQ(edge_.deliveries()[0].phase, "connecting");
}

TEST_F(RelayTest, HeadAnswerHasNoBodyEvenWithContentLength) {
  target_.setResponse("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n");
  auto relay = startRelay({"--json", "--timeout", "5"}, edge_, target_.url());
  FakeEvent head;
  head.method = "HEAD";
  edge_.addEvent(head);
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();
  const auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(line->getValue<int>("status"), 200);
  EXPECT_EQ(line->getValue<std::string>("error"), "");
}

TEST_F(RelayTest, ResponseHeadOverTheLimitIsAnInvalidResponse) {
  // kMaxResponseHeadBytes is 64 KiB: 80 fields of 1 KiB go past it.
  std::string response = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 80; ++i)
    response += "X-Pad-" + std::to_string(i) + ": " + std::string(1024, 'p') + "\r\n";
  response += "Content-Length: 0\r\n\r\n";
  target_.setResponse(response);
  auto relay = startRelay({"--json"}, edge_, target_.url());
  edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();
  const auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(line->getValue<int>("status"), 0);
  EXPECT_EQ(line->getValue<std::string>("error"), "invalid response: head too large");
}

TEST_F(RelayTest, TargetThatClosesKeptAliveConnectionsStillGetsEveryEvent) {
  target_.setMode(RawTarget::Mode::kRespondClose);
  auto relay = startRelay({"--json"}, edge_, target_.url());
  for (int i = 0; i < 5; ++i) edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(5)) << relay->err();
  for (const auto& line : jsonLines(*relay)) EXPECT_EQ(line->getValue<int>("status"), 200);
  EXPECT_EQ(target_.requests().size(), 5u);
  EXPECT_EQ(target_.connections(), 5u);
}

TEST_F(RelayTest, KeepsOneConnectionToATargetThatAllowsIt) {
  auto relay = startRelay({"--json"}, edge_, target_.url());
  for (int i = 0; i < 5; ++i) edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(5)) << relay->err();
  EXPECT_EQ(target_.requests().size(), 5u);
  EXPECT_EQ(target_.connections(), 1u);
}

// A relay whose stream drops comes back with Last-Event-ID and gets each event once, in order.
void expectResumeAfterDrop(FakeEdge& edge, RawTarget& target, CliProcess& relay) {
  for (int i = 0; i < 3; ++i) {
    FakeEvent event;
    event.headers = {{"X-Seq", std::to_string(i + 1)}};
    edge.addEvent(event);
  }
  ASSERT_TRUE(target.waitForRequests(3, 15s)) << relay.err();
  edge.dropStreams();
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge.streamLastEventIds().size() >= 2; }))
      << relay.err();
  EXPECT_EQ(edge.streamLastEventIds()[0], "");
  EXPECT_EQ(edge.streamLastEventIds()[1], "3");

  for (int i = 3; i < 5; ++i) {
    FakeEvent event;
    event.headers = {{"X-Seq", std::to_string(i + 1)}};
    edge.addEvent(event);
  }
  ASSERT_TRUE(target.waitForRequests(5, 15s)) << relay.err();
  const auto requests = target.requests();
  ASSERT_EQ(requests.size(), 5u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].headers().at(1).second, std::to_string(i + 1));
  }
  EXPECT_NE(relay.err().find("reconnecting"), std::string::npos);
}

TEST_F(RelayTest, ReconnectsWithLastEventIdAfterTheStreamDrops) {
  auto relay = startRelay({"--json"}, edge_, target_.url());
  expectResumeAfterDrop(edge_, target_, *relay);
}

TEST(RelayChunkedStreamTest, ReconnectsOverAChunkedStreamToo) {
  TempDir config;
  FakeEdge edge(true);
  RawTarget target;
  CliProcess relay({"relay", "--edge", edge.url(), "--to", target.url(), "--json"},
                   {{"XDG_CONFIG_HOME", config.path()}});
  expectResumeAfterDrop(edge, target, relay);
}

TEST_F(RelayTest, OddFramesAreSkippedWithoutLosingThePlace) {
  auto relay = startRelay({"--json"}, edge_, target_.url());

  // A frame of another type, a broken envelope, comments, CRLF line ends, split data lines.
  edge_.addRawFrame(1, ": hello\r\nevent: other\r\ndata: {}\r\n\r\n");
  edge_.addRawFrame(2, "id: 2\nevent: webhook\ndata: {not json\n\n");
  edge_.addRawFrame(3,
                    "id: 3\r\nevent: webhook\r\ndata: {\"id\":3,\"method\":\"POST\",\r\n"
                    "data: \"path\":\"/split\",\"headers\":[],\"body_base64\":\"aGk=\"}\r\n\r\n");
  ASSERT_TRUE(relay->waitForLines(1)) << relay->err();
  const auto line = jsonLines(*relay).at(0);
  EXPECT_EQ(line->getValue<int64_t>("id"), 3);
  ASSERT_TRUE(target_.waitForRequests(1, 5s));
  EXPECT_EQ(target_.requests()[0].body, "hi");
  EXPECT_EQ(target_.requests()[0].requestLine(), "POST /split HTTP/1.1");

  // The broken one is reported as not delivered; the stream position moved past both.
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() >= 2; }));
  EXPECT_EQ(edge_.deliveries()[0].event, 2);
  EXPECT_EQ(edge_.deliveries()[0].status, 0);
  EXPECT_NE(edge_.deliveries()[0].error.find("invalid event"), std::string::npos);
  edge_.dropStreams();
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.streamLastEventIds().size() >= 2; }));
  EXPECT_EQ(edge_.streamLastEventIds()[1], "3");
}

TEST_F(RelayTest, InterruptFlushesReportsExitsZeroAndALaterRelayResumes) {
  auto relay = startRelay({"--json"}, edge_, target_.url());
  for (int i = 0; i < 20; ++i) edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(relay->waitForLines(20)) << relay->err();
  relay->interrupt();
  EXPECT_EQ(relay->wait(), 0) << relay->err();
  EXPECT_EQ(edge_.deliveries().size(), 20u);

  // The next relay for the same hook finds the saved token and resumes after event 20.
  edge_.addEvent(FakeEvent{});
  CliProcess again({"relay", "--edge", edge_.url(), "--to", target_.url(), "--hook",
                    FakeEdge::kHookId, "--json"},
                   env());
  ASSERT_TRUE(again.waitForLines(1)) << again.err();
  EXPECT_EQ(jsonLines(again).at(0)->getValue<int64_t>("id"), 21);
  EXPECT_EQ(edge_.streamLastEventIds().back(), "20");
  EXPECT_EQ(edge_.authorizations().back(), std::string("Bearer ") + FakeEdge::kToken);
  again.interrupt();
  EXPECT_EQ(again.wait(), 0);
  EXPECT_EQ(target_.requests().size(), 21u);
}

TEST_F(RelayTest, WrongTokenForAnExistingHookFailsWithExitOne) {
  const CliResult result = runCli({"relay", "--edge", edge_.url(), "--to", target_.url(), "--hook",
                                   FakeEdge::kHookId, "--token", "wrong"},
                                  env());
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("token refused"), std::string::npos) << result.err;
}

TEST_F(RelayTest, UsageErrorsExitTwoWithAMessage) {
  const std::vector<std::vector<std::string>> cases = {
      {"relay"},
      {"relay", "--to", "http://127.0.0.1:9", "--bogus"},
      {"relay", "--to", "ftp://127.0.0.1/"},
      {"relay", "--to", "http://127.0.0.1:9", "--timeout", "0"},
      {"relay", "--to", "http://127.0.0.1:9", "--timeout", "abc"},
      {"relay", "--to", "http://127.0.0.1:9", "--option", "novalue"},
      {"relay", "--to", "http://127.0.0.1:9", "--secret", "a", "--secret-file", "/dev/null"},
      {"relay", "--to", "http://127.0.0.1:9", "--hook", "x", "--provider", "stripe"},
      {"frobnicate"},
      {"events", "list"},
      {"events", "show", "--hook", FakeEdge::kHookId, "--token", "t"},
      {"events", "show", "abc", "--hook", FakeEdge::kHookId, "--token", "t"},
  };
  for (const auto& args : cases) {
    const CliResult result = runCli(args, env());
    EXPECT_EQ(result.exitCode, 2) << args.back();
    EXPECT_NE(result.err.find("anonymily: "), std::string::npos) << args.back();
  }
  const CliResult help = runCli({"relay", "--help"}, env());
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("--to URL"), std::string::npos);
  EXPECT_EQ(runCli({"--help"}, env()).exitCode, 0);
}

TEST_F(RelayTest, CursorReachesTheDiskAfterABurstWithoutAnotherEvent) {
  auto relay = startRelay({"--json", "--quiet"}, edge_, target_.url());
  int64_t lastId = 0;
  for (int i = 0; i < 300; ++i) lastId = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(target_.waitForRequests(300, 30s)) << relay->err();

  // No further event comes; the idle relay still writes its place within the deadline.
  EXPECT_TRUE(FakeEdge::waitUntil(
      [&] { return readFile(cursorFile(target_.url())) == std::to_string(lastId) + "\n"; }, 3s))
      << "cursor file holds: " << readFile(cursorFile(target_.url()));

  // A relay killed without a chance to save resumes there: nothing is delivered twice.
  ::kill(relay->pid(), SIGKILL);
  relay->wait();
  CliProcess again({"relay", "--edge", edge_.url(), "--to", target_.url(), "--hook",
                    FakeEdge::kHookId, "--json"},
                   env());
  const int64_t next = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(again.waitForLines(1)) << again.err();
  EXPECT_EQ(jsonLines(again).at(0)->getValue<int64_t>("id"), next);
  EXPECT_EQ(edge_.streamLastEventIds().back(), std::to_string(lastId));
  EXPECT_EQ(target_.requests().size(), 301u);
  again.interrupt();
  EXPECT_EQ(again.wait(), 0) << again.err();
}

// Two relays of one hook on one machine, each forwarding to its own local service: each keeps
// its own place, so the one that was away gets what it missed, not what the other forwarded.
TEST_F(RelayTest, TwoRelaysOfOneHookToTwoTargetsEachResumeWhereTheyLeftOff) {
  RawTarget second;
  auto first = startRelay({"--json", "--quiet"}, edge_, target_.url());
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return !readFile(tokenFile()).empty(); }, 10s))
      << first->err();
  CliProcess other({"relay", "--edge", edge_.url(), "--to", second.url(), "--hook",
                    FakeEdge::kHookId, "--json", "--quiet"},
                   env());
  const int64_t both = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(target_.waitForRequests(1, 10s)) << first->err();
  ASSERT_TRUE(second.waitForRequests(1, 10s)) << other.err();

  // The second relay is away while the first forwards three more events.
  other.interrupt();
  ASSERT_EQ(other.wait(), 0) << other.err();
  ASSERT_EQ(readFile(cursorFile(second.url())), std::to_string(both) + "\n");
  int64_t last = 0;
  for (int i = 0; i < 3; ++i) last = edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(target_.waitForRequests(4, 10s)) << first->err();
  ASSERT_TRUE(FakeEdge::waitUntil(
      [&] { return readFile(cursorFile(target_.url())) == std::to_string(last) + "\n"; }, 3s));
  EXPECT_EQ(readFile(cursorFile(second.url())), std::to_string(both) + "\n");

  // Back, it resumes from its own place and gets exactly the three it missed.
  CliProcess again({"relay", "--edge", edge_.url(), "--to", second.url(), "--hook",
                    FakeEdge::kHookId, "--json", "--quiet"},
                   env());
  ASSERT_TRUE(second.waitForRequests(4, 10s)) << again.err();
  EXPECT_EQ(second.requests().size(), 4u);
  EXPECT_EQ(edge_.streamLastEventIds().back(), std::to_string(both));
  again.interrupt();
  EXPECT_EQ(again.wait(), 0) << again.err();
  first->interrupt();
  EXPECT_EQ(first->wait(), 0) << first->err();
}

TEST_F(RelayTest, ProviderWithoutASecretIsRefusedBeforeAnyHookExists) {
  const std::string emptyFile = config_.path() + "/empty-secret";
  writeFile(emptyFile, "");
  const std::string newlineFile = config_.path() + "/newline-secret";
  writeFile(newlineFile, "\n");
  const std::vector<std::vector<std::string>> cases = {
      {"--provider", "stripe"},
      {"--provider", "stripe", "--secret", ""},
      {"--provider", "stripe", "--secret-file", emptyFile},
      {"--provider", "stripe", "--secret-file", newlineFile},
  };
  for (const auto& extra : cases) {
    std::vector<std::string> args = {"relay", "--edge", edge_.url(), "--to", target_.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliResult result = runCli(args, env());
    EXPECT_EQ(result.exitCode, 2) << extra.back();
    EXPECT_NE(result.err.find("anonymily: --provider stripe needs --secret or --secret-file"),
              std::string::npos)
        << result.err;
  }
  EXPECT_TRUE(edge_.createBodies().empty());
}

TEST_F(RelayTest, SecretWithoutAProviderIsRefusedBeforeAnyHookExists) {
  const std::string secretFile = config_.path() + "/secret";
  writeFile(secretFile, "whsec_abc\n");
  const std::vector<std::vector<std::string>> cases = {
      {"--secret", "x"},
      {"--secret-file", secretFile},
      {"--secret", "x", "--option", "allow_sha1=true"},
  };
  for (const auto& extra : cases) {
    std::vector<std::string> args = {"relay", "--edge", edge_.url(), "--to", target_.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliResult result = runCli(args, env());
    EXPECT_EQ(result.exitCode, 2) << extra.front();
    EXPECT_NE(result.err.find("need --provider NAME"), std::string::npos) << result.err;
  }
  EXPECT_TRUE(edge_.createBodies().empty());
}

TEST(RelayEdgeDownTest, RelayWithHookWaitsForTheEdgeAndConnectsWhenItComesUp) {
  TempDir config;
  RawTarget target;
  const uint16_t port = unusedPort();
  const std::string edgeUrl = "http://127.0.0.1:" + std::to_string(port);
  CliProcess relay({"relay", "--edge", edgeUrl, "--to", target.url(), "--hook", FakeEdge::kHookId,
                    "--token", FakeEdge::kToken, "--json"},
                   {{"XDG_CONFIG_HOME", config.path()}, {"ANONYMILY_EDGE", ""}});

  // Nothing listens: each attempt is logged, and the process keeps going.
  ASSERT_TRUE(FakeEdge::waitUntil([&] {
    return relay.err().find("retrying attempt=2 ") != std::string::npos;
  })) << relay.err();
  const std::string waiting = relay.err();
  EXPECT_NE(waiting.find("retrying attempt=1 "), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("reason=\"connection refused\""), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("edge=" + edgeUrl), std::string::npos) << waiting;

  // The edge comes up on that port; the relay finds it and forwards what arrives.
  FakeEdge edge(false, port);
  const int64_t id = edge.addEvent(FakeEvent{});
  ASSERT_TRUE(relay.waitForLines(1, 30s)) << relay.err();
  EXPECT_EQ(parseJson(relay.lines().at(0))->getValue<int64_t>("id"), id);
  EXPECT_EQ(target.requests().size(), 1u);
  relay.interrupt();
  EXPECT_EQ(relay.wait(), 0) << relay.err();
}

TEST(RelayEdgeDownTest, StopSignalEndsTheWaitForAnEdgeWithExitZero) {
  TempDir config;
  const std::string edgeUrl = "http://127.0.0.1:" + std::to_string(unusedPort());
  CliProcess relay({"relay", "--edge", edgeUrl, "--to", "http://127.0.0.1:9", "--hook",
                    FakeEdge::kHookId, "--token", FakeEdge::kToken},
                   {{"XDG_CONFIG_HOME", config.path()}, {"ANONYMILY_EDGE", ""}});
  ASSERT_TRUE(FakeEdge::waitUntil([&] {
    return relay.err().find("retrying attempt=1 ") != std::string::npos;
  })) << relay.err();
  relay.interrupt();
  EXPECT_EQ(relay.wait(), 0) << relay.err();
  EXPECT_NE(relay.err().find("relay stopped before the edge answered"), std::string::npos)
      << relay.err();
}

TEST_F(RelayTest, CreatingAHookWhileTheEdgeIsDownFailsAtOnceWithExitOne) {
  const std::string edgeUrl = "http://127.0.0.1:" + std::to_string(unusedPort());
  const CliResult result = runCli({"relay", "--edge", edgeUrl, "--to", target_.url()}, env());
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(
      result.err.find("anonymily: error: could not create hook: could not reach the edge at " +
                      edgeUrl + ": connection refused"),
      std::string::npos)
      << result.err;
  EXPECT_EQ(countOf(result.err, "retrying"), 0u) << result.err;
}

TEST_F(RelayTest, HookWithoutASavedTokenNamesTheFileItLookedFor) {
  const CliResult result = runCli(
      {"relay", "--edge", edge_.url(), "--to", target_.url(), "--hook", FakeEdge::kHookId}, env());
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_NE(
      result.err.find(std::string("anonymily: no token for hook ") + FakeEdge::kHookId + " in " +
                      tokenFile() + ": give --token or run 'anonymily relay' without --hook first"),
      std::string::npos)
      << result.err;
  EXPECT_TRUE(edge_.authorizations().empty());
}

TEST_F(RelayTest, AnEdgeUrlThatIsNotAnEdgeIsNamedAsSuch) {
  // The raw target answers every request with "ok", as many servers' root or health page does.
  RawTarget notAnEdge;
  const std::string expected =
      "anonymily: error: the edge answered 200 with something that is not JSON; is --edge "
      "pointing at an Anonymily edge?";
  const CliResult create =
      runCli({"relay", "--edge", notAnEdge.url(), "--to", target_.url()}, env());
  EXPECT_EQ(create.exitCode, 1);
  EXPECT_NE(create.err.find(expected), std::string::npos) << create.err;
  EXPECT_EQ(create.err.find("JSON Exception"), std::string::npos) << create.err;

  const CliResult existing = runCli({"relay", "--edge", notAnEdge.url(), "--to", target_.url(),
                                     "--hook", FakeEdge::kHookId, "--token", "t"},
                                    env());
  EXPECT_EQ(existing.exitCode, 1);
  EXPECT_NE(existing.err.find(expected), std::string::npos) << existing.err;

  // An HTML error page names its status too, instead of a bare "Not Found".
  notAnEdge.setResponse(
      "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n"
      "<h1>nope</h1>");
  const CliResult html = runCli({"relay", "--edge", notAnEdge.url(), "--to", target_.url(),
                                 "--hook", FakeEdge::kHookId, "--token", "t"},
                                env());
  EXPECT_EQ(html.exitCode, 1);
  EXPECT_NE(html.err.find("the edge answered 404 with something that is not JSON"),
            std::string::npos)
      << html.err;
  const CliResult list = runCli(
      {"events", "list", "--edge", notAnEdge.url(), "--hook", FakeEdge::kHookId, "--token", "t"},
      env());
  EXPECT_EQ(list.exitCode, 1);
  EXPECT_NE(list.err.find("the edge answered 404 with something that is not JSON"),
            std::string::npos)
      << list.err;
  EXPECT_EQ(target_.requests().size(), 0u);
}

}  // namespace
}  // namespace anm::cli::test
