// tests/integration/edge_server_test.cpp: the edge in-process, driven over real loopback HTTP.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/edge_server.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;

constexpr size_t kTestMaxBody = 4096;

struct Hook {
  std::string id;
  std::string token;
};

class EdgeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-edge-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void startServer(int maxThreads = 8) {
    EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxBodyBytes = kTestMaxBody;
    config.maxThreads = maxThreads;
    server_ = std::make_unique<EdgeServer>(config);
    server_->start();
    port_ = server_->port();
  }

  Hook createHook(const std::string& settings = "{}") {
    const auto r = request(port_, "POST", "/api/v1/hooks", settings);
    EXPECT_EQ(r.status, 201) << r.body;
    return Hook{jsonField(r.body, "id"), jsonField(r.body, "token")};
  }

  Response ingest(const Hook& hook, const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request(port_, "POST", "/h/" + hook.id, body, headers);
  }

  Response signedIngest(const Hook& hook, const std::string& secret, const std::string& body) {
    return ingest(hook, body, {{"X-Signature-256", "sha256=" + hmacSha256Hex(secret, body)}});
  }

  Poco::JSON::Object::Ptr json(const std::string& text) {
    Poco::JSON::Parser parser;
    return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
  }

  std::string dir_;
  std::unique_ptr<EdgeServer> server_;
  uint16_t port_ = 0;
};

TEST_F(EdgeServerTest, HealthzAnswersOk) {
  startServer();
  const auto r = request(port_, "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
}

TEST_F(EdgeServerTest, CreatedHookHasLongRandomIdAndTokenAndIngestUrl) {
  startServer();
  const auto r = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(r.status, 201);
  const auto id = jsonField(r.body, "id");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(jsonField(r.body, "token").size(), 64u);
  EXPECT_EQ(jsonField(r.body, "ingest_url"), server_->publicUrl() + "/h/" + id);
  EXPECT_NE(id, createHook().id);
}

TEST_F(EdgeServerTest, IngestStoresBodyByteExact) {
  startServer();
  const Hook hook = createHook();
  std::string body("\x00\x01binary\xff\r\n\r\nend", 16);
  const auto r = request(port_, "PUT", "/h/" + hook.id + "/sub/path?b=2&a=%41", body,
                         {{"Content-Type", "application/x-odd"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = jsonField(r.body, "id");
  ASSERT_FALSE(id.empty());

  const auto raw =
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id + "/body", hook.token);
  ASSERT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, body);
  EXPECT_EQ(raw.header("Content-Type"), "application/octet-stream");

  const auto detail =
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id, hook.token);
  ASSERT_EQ(detail.status, 200);
  const auto event = json(detail.body);
  EXPECT_EQ(event->getValue<std::string>("method"), "PUT");
  EXPECT_EQ(event->getValue<std::string>("path"), "/sub/path");
  EXPECT_EQ(event->getValue<std::string>("query"), "b=2&a=%41");
  EXPECT_EQ(event->getValue<int64_t>("size"), 16);
}

TEST_F(EdgeServerTest, UnknownHookIs404AndStoresNothing) {
  startServer();
  const auto r = ingest(Hook{"nosuchhook", ""}, "x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(jsonField(r.body, "error"), "unknown hook");
}

TEST_F(EdgeServerTest, BodyAtLimitIsStoredAndOneByteMoreIs413) {
  startServer();
  const Hook hook = createHook();
  EXPECT_EQ(ingest(hook, std::string(kTestMaxBody, 'a')).status, 200);
  const auto over = ingest(hook, std::string(kTestMaxBody + 1, 'b'));
  EXPECT_EQ(over.status, 413);

  // The same through chunking, where the edge cannot know the size in advance.
  const std::string chunked = "POST /h/" + hook.id +
                              " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                              "1001\r\n" + std::string(kTestMaxBody + 1, 'c') + "\r\n0\r\n\r\n";
  EXPECT_EQ(rawExchange(port_, chunked).status, 413);

  const auto list = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token);
  EXPECT_EQ(json(list.body)->getArray("events")->size(), 1u);
}

TEST_F(EdgeServerTest, OversizedHeaderBlocksAre431AndLimitsThemselvesPass) {
  startServer();
  const Hook hook = createHook();
  const std::string start = "POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\n";

  // 99 fields plus Host make 100; one more is too many.
  std::string fields;
  for (int i = 0; i < 99; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(rawExchange(port_, start + fields + "Content-Length: 0\r\n\r\n").status, 431);
  fields.clear();
  for (int i = 0; i < 98; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(rawExchange(port_, start + fields + "Content-Length: 0\r\n\r\n").status, 200);

  EXPECT_EQ(rawExchange(port_, start + std::string(257, 'N') + ": v\r\n\r\n").status, 431);
  EXPECT_EQ(rawExchange(port_, start + std::string(256, 'N') + ": v\r\n\r\n").status, 200);
  EXPECT_EQ(rawExchange(port_, start + "X-V: " + std::string(8193, 'v') + "\r\n\r\n").status, 431);
  EXPECT_EQ(rawExchange(port_, start + "X-V: " + std::string(8192, 'v') + "\r\n\r\n").status, 200);
}

TEST_F(EdgeServerTest, OverlongTargetIs414AndOtherTransferCodingsAreRefused) {
  startServer();
  const Hook hook = createHook();
  const std::string target = "/h/" + hook.id + "?" + std::string(16384, 'q');
  EXPECT_EQ(rawExchange(port_, "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n").status, 414);
  EXPECT_EQ(rawExchange(port_, "POST /h/" + hook.id +
                                   " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
                .status,
            501);
  const auto list = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token);
  EXPECT_EQ(json(list.body)->getArray("events")->size(), 0u);
}

TEST_F(EdgeServerTest, ChunkedBodyIsStoredWholeWithTransferEncodingAsSent) {
  startServer();
  const Hook hook = createHook();
  const auto r = rawExchange(port_, "POST /h/" + hook.id +
                                        " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                        "Connection: close\r\n\r\n"
                                        "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = jsonField(r.body, "id");
  const auto body =
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id + "/body", hook.token);
  EXPECT_EQ(body.body, "hello world");
  const auto detail =
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id, hook.token);
  const auto headers = json(detail.body)->getArray("headers");
  bool sawTransferEncoding = false;
  for (size_t i = 0; i < headers->size(); ++i) {
    const auto field = headers->getArray(static_cast<unsigned>(i));
    if (field->getElement<std::string>(0) == "Transfer-Encoding") {
      sawTransferEncoding = field->getElement<std::string>(1) == "chunked";
    }
  }
  EXPECT_TRUE(sawTransferEncoding);
}

std::vector<std::pair<std::string, std::string>> headerList(const Poco::JSON::Object& event) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto headers = event.getArray("headers");
  for (size_t i = 0; i < headers->size(); ++i) {
    const auto field = headers->getArray(static_cast<unsigned>(i));
    out.emplace_back(field->getElement<std::string>(0), field->getElement<std::string>(1));
  }
  return out;
}

TEST_F(EdgeServerTest, InterleavedDuplicateHeadersKeepArrivalOrderOnKeptAliveConnection) {
  startServer();
  const Hook hook = createHook();

  // Two requests on one connection: the second must be recorded afresh.
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
  const std::vector<std::string> heads = {
      "POST /h/" + hook.id +
          " HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\n"
          "Content-Length: 2\r\n\r\nhi",
      "POST /h/" + hook.id +
          " HTTP/1.1\r\nHost: x\r\nX-C: c1\r\nX-D: d\r\nX-C:  c2 \r\n"
          "Content-Length: 0\r\n\r\n"};
  std::vector<std::string> ids;
  for (const auto& bytes : heads) {
    socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
    const auto r = readResponse(socket);
    ASSERT_EQ(r.status, 200);
    ids.push_back(jsonField(r.body, "id"));
  }

  using Fields = std::vector<std::pair<std::string, std::string>>;
  const auto first = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + ids[0], hook.token).body);
  EXPECT_EQ(
      headerList(*first),
      (Fields{{"Host", "x"}, {"X-A", "1"}, {"X-B", "2"}, {"x-a", "3"}, {"Content-Length", "2"}}));
  const auto second = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + ids[1], hook.token).body);
  EXPECT_EQ(
      headerList(*second),
      (Fields{{"Host", "x"}, {"X-C", "c1"}, {"X-D", "d"}, {"X-C", "c2"}, {"Content-Length", "0"}}));
}

TEST_F(EdgeServerTest, LaterHeadLargerThanOneReceiveKeepsArrivalOrderOnKeptAliveConnection) {
  startServer();
  const Hook hook = createHook();

  // A kept-alive connection's next head is received in pieces of the session's 4 KiB buffer;
  // this one spans three of them, and its repeated names must still come back as sent.
  const std::string big(3000, 'v');
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
  const std::vector<std::string> heads = {
      "POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
      "POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\nX-A: " + big + "1\r\nX-B: " + big +
          "\r\nx-a: " + big + "2\r\nX-C: 3\r\nContent-Length: 2\r\n\r\nhi"};
  std::vector<std::string> ids;
  for (const auto& bytes : heads) {
    socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
    const auto r = readResponse(socket);
    ASSERT_EQ(r.status, 200);
    ids.push_back(jsonField(r.body, "id"));
  }

  using Fields = std::vector<std::pair<std::string, std::string>>;
  const auto second = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + ids[1], hook.token).body);
  EXPECT_EQ(headerList(*second), (Fields{{"Host", "x"},
                                         {"X-A", big + "1"},
                                         {"X-B", big},
                                         {"x-a", big + "2"},
                                         {"X-C", "3"},
                                         {"Content-Length", "2"}}));
}

TEST_F(EdgeServerTest, FoldedHeaderLineIsRefusedWith400) {
  startServer();
  const Hook hook = createHook();
  const auto r = rawExchange(port_, "POST /h/" + hook.id +
                                        " HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n"
                                        "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  const auto list = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token);
  EXPECT_EQ(json(list.body)->getArray("events")->size(), 0u);
}

TEST_F(EdgeServerTest, InvalidSignatureIs401StoredWithReasonAndNeverStreamed) {
  startServer();
  const Hook hook = createHook(R"({"provider":"hmacfix","secret":"s3cret"})");
  SseClient stream(port_, hook.id, hook.token);
  ASSERT_EQ(stream.head().status, 200);

  const auto bad =
      ingest(hook, "{\"x\":1}", {{"X-Signature-256", "sha256=" + std::string(64, '0')}});
  ASSERT_EQ(bad.status, 401) << bad.body;
  EXPECT_EQ(jsonField(bad.body, "error"), "invalid signature");
  EXPECT_EQ(jsonField(bad.body, "reason"), "signature_mismatch");

  const auto good = signedIngest(hook, "s3cret", "{\"x\":2}");
  ASSERT_EQ(good.status, 200) << good.body;

  // The stream's first event is the valid one: the invalid one never reached it.
  Frame frame;
  ASSERT_TRUE(stream.nextEvent(frame));
  EXPECT_EQ(std::to_string(frame.id), jsonField(good.body, "id"));
  EXPECT_EQ(jsonField(frame.data, "verdict"), "valid");

  const auto list =
      json(apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token).body);
  const auto events = list->getArray("events");
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(events->getObject(0)->getValue<std::string>("verdict"), "invalid");
  EXPECT_EQ(events->getObject(0)->getValue<std::string>("reason"), "signature_mismatch");
}

TEST_F(EdgeServerTest, PluginHandshakeResponseIsSentAndRequestStored) {
  startServer();
  const Hook hook = createHook(R"({"provider":"hmacfix","secret":"k"})");
  const auto r = ingest(hook, "", {{"X-Handshake", "challenge-42"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "challenge-42");
  EXPECT_EQ(r.header("Content-Type"), "text/plain");
  const auto list =
      json(apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token).body);
  EXPECT_EQ(list->getArray("events")->size(), 1u);
}

TEST_F(EdgeServerTest, UnknownProviderAndBadSettingsAre400) {
  startServer();
  EXPECT_EQ(request(port_, "POST", "/api/v1/hooks", R"({"provider":"nope"})").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/v1/hooks", R"({"tolerance_s":"x"})").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/v1/hooks", R"({"tolerance_s":86401})").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/v1/hooks", "not json").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/v1/hooks", std::string((1 << 20) + 1, ' ')).status, 413);
}

TEST_F(EdgeServerTest, EveryApiRouteAnswers404WithoutTheHooksToken) {
  startServer();
  const Hook hook = createHook();
  const Hook other = createHook();
  const auto stored = ingest(hook, "x");
  const std::string eid = jsonField(stored.body, "id");
  const std::string base = "/api/v1/hooks/" + hook.id;
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", base},
      {"GET", base + "/events"},
      {"GET", base + "/events/" + eid},
      {"GET", base + "/events/" + eid + "/body"},
      {"POST", base + "/events/" + eid + "/deliveries"},
      {"POST", base + "/deliveries"},
      {"POST", base + "/events/" + eid + "/replay"},
      {"GET", base + "/stream"}};
  for (const auto& [method, target] : routes) {
    EXPECT_EQ(request(port_, method, target).status, 404) << method << " " << target;
    EXPECT_EQ(apiRequest(port_, method, target, std::string(64, 'f')).status, 404) << target;
    EXPECT_EQ(apiRequest(port_, method, target, other.token).status, 404) << target;
    EXPECT_EQ(request(port_, method, target, "", {{"Authorization", hook.token}}).status, 404)
        << "token without Bearer: " << target;
  }
  // The right token works, so the 404s above were about the token.
  EXPECT_EQ(apiRequest(port_, "GET", base, hook.token).status, 200);
}

TEST_F(EdgeServerTest, UnknownRoutesAre404AndWrongMethods405WithAllow) {
  startServer();
  const Hook hook = createHook();
  const auto missing = request(port_, "GET", "/nothing/here");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(jsonField(missing.body, "error"), "not found");
  const auto wrong = apiRequest(port_, "DELETE", "/api/v1/hooks/" + hook.id, hook.token);
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("Allow"), "GET, PATCH");
  const auto collection = request(port_, "DELETE", "/api/v1/hooks");
  EXPECT_EQ(collection.status, 405);
  EXPECT_EQ(collection.header("Allow"), "GET, POST");
}

TEST_F(EdgeServerTest, EventsArePagedOldestFirst) {
  startServer();
  const Hook hook = createHook();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(jsonField(ingest(hook, std::to_string(i)).body, "id"));

  std::vector<std::string> seen;
  std::string after = "0";
  for (int page = 0; page < 4; ++page) {
    const auto r = apiRequest(
        port_, "GET", "/api/v1/hooks/" + hook.id + "/events?limit=2&after=" + after, hook.token);
    ASSERT_EQ(r.status, 200);
    const auto body = json(r.body);
    const auto events = body->getArray("events");
    EXPECT_LE(events->size(), 2u);
    for (size_t i = 0; i < events->size(); ++i) {
      seen.push_back(
          std::to_string(events->getObject(static_cast<unsigned>(i))->getValue<int64_t>("id")));
    }
    after = std::to_string(body->getValue<int64_t>("next_after"));
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(after, ids.back());
  const std::string base = "/api/v1/hooks/" + hook.id + "/events?limit=";
  EXPECT_EQ(apiRequest(port_, "GET", base + "0", hook.token).status, 400);
  EXPECT_EQ(apiRequest(port_, "GET", base + "1001", hook.token).status, 400);
  EXPECT_EQ(apiRequest(port_, "GET", base + "1000", hook.token).status, 200);
}

TEST_F(EdgeServerTest, DeliveriesSingleAndBulkAreStoredAndListed) {
  startServer();
  const Hook hook = createHook();
  const Hook other = createHook();
  const std::string e1 = jsonField(ingest(hook, "1").body, "id");
  const std::string e2 = jsonField(ingest(hook, "2").body, "id");
  const std::string foreign = jsonField(ingest(other, "3").body, "id");
  const std::string base = "/api/v1/hooks/" + hook.id;

  const auto one = apiRequest(port_, "POST", base + "/events/" + e1 + "/deliveries", hook.token,
                              R"({"relay":"r1","status":200,"duration_ms":3,"error":""})");
  ASSERT_EQ(one.status, 201) << one.body;
  EXPECT_EQ(jsonField(one.body, "relay"), "r1");

  const auto bulk =
      apiRequest(port_, "POST", base + "/deliveries", hook.token,
                 R"({"deliveries":[{"event":)" + e1 +
                     R"(,"relay":"r2","status":0,"duration_ms":9,"error":"timeout"},{"event":)" +
                     e2 + R"(,"relay":"r2","status":204,"duration_ms":1}]})");
  ASSERT_EQ(bulk.status, 201) << bulk.body;
  EXPECT_EQ(jsonField(bulk.body, "stored"), "2");

  // A report naming another hook's event refuses the whole request.
  const auto mixed =
      apiRequest(port_, "POST", base + "/deliveries", hook.token,
                 R"({"deliveries":[{"event":)" + e2 + R"(,"relay":"r3","status":200},{"event":)" +
                     foreign + R"(,"relay":"r3","status":200}]})");
  EXPECT_EQ(mixed.status, 400);
  EXPECT_EQ(apiRequest(port_, "POST", base + "/events/" + foreign + "/deliveries", hook.token,
                       R"({"relay":"r1","status":200})")
                .status,
            404);

  std::string tooMany = R"({"deliveries":[)";
  for (int i = 0; i < 1001; ++i) {
    tooMany += (i ? "," : "") + std::string(R"({"event":)") + e1 + R"(,"relay":"r","status":200})";
  }
  EXPECT_EQ(apiRequest(port_, "POST", base + "/deliveries", hook.token, tooMany + "]}").status,
            400);

  const auto list = json(apiRequest(port_, "GET", base + "/events", hook.token).body);
  const auto events = list->getArray("events");
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(events->getObject(0)->getArray("deliveries")->size(), 2u);
  EXPECT_EQ(events->getObject(1)->getArray("deliveries")->size(), 1u);
  EXPECT_EQ(
      events->getObject(0)->getArray("deliveries")->getObject(1)->getValue<std::string>("error"),
      "timeout");
}

TEST_F(EdgeServerTest, ReplayStoresALinkedCopyThatArrivesOnTheStream) {
  startServer();
  const Hook hook = createHook(R"({"provider":"hmacfix","secret":"k"})");
  const auto bad = ingest(hook, "payload", {{"X-Signature-256", "sha256=00"}, {"X-Keep", "me"}});
  ASSERT_EQ(bad.status, 401);
  const auto list =
      json(apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token).body);
  const int64_t original = list->getArray("events")->getObject(0)->getValue<int64_t>("id");

  SseClient stream(port_, hook.id, hook.token);
  const auto replay = apiRequest(
      port_, "POST", "/api/v1/hooks/" + hook.id + "/events/" + std::to_string(original) + "/replay",
      hook.token);
  ASSERT_EQ(replay.status, 201) << replay.body;
  EXPECT_EQ(jsonField(replay.body, "replay_of"), std::to_string(original));

  Frame frame;
  ASSERT_TRUE(stream.nextEvent(frame));
  EXPECT_EQ(std::to_string(frame.id), jsonField(replay.body, "id"));
  EXPECT_EQ(jsonField(frame.data, "replay_of"), std::to_string(original));
  const auto body = apiRequest(
      port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + std::to_string(frame.id) + "/body",
      hook.token);
  EXPECT_EQ(body.body, "payload");
}

TEST_F(EdgeServerTest, StreamHasSseHeadersAndResumesWithoutGapOrDuplicate) {
  startServer();
  const Hook hook = createHook();
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(std::stoll(jsonField(ingest(hook, "e").body, "id")));

  SseClient first(port_, hook.id, hook.token);
  EXPECT_EQ(first.head().status, 200);
  EXPECT_EQ(first.head().header("Content-Type"), "text/event-stream");
  EXPECT_EQ(first.head().header("Cache-Control"), "no-cache");
  EXPECT_EQ(first.head().header("X-Accel-Buffering"), "no");
  EXPECT_EQ(first.head().header("Content-Length"), "");
  EXPECT_EQ(first.head().header("Transfer-Encoding"), "");
  Frame frame;
  ASSERT_TRUE(first.nextEvent(frame));
  EXPECT_EQ(frame.id, ids[0]);
  EXPECT_EQ(frame.event, "webhook");

  // Resume after the first: the backlog continues with the second, then live events follow.
  SseClient resumed(port_, hook.id, hook.token, ids[0]);
  ids.push_back(std::stoll(jsonField(ingest(hook, "live").body, "id")));
  std::vector<int64_t> got;
  while (got.size() < 3 && resumed.nextEvent(frame)) got.push_back(frame.id);
  EXPECT_EQ(got, (std::vector<int64_t>{ids[1], ids[2], ids[3]}));
  EXPECT_TRUE(resumed.eventsWithin(300).empty());

  // The query form of the resume point works the same way.
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
  const std::string bytes =
      "GET /api/v1/hooks/" + hook.id + "/stream?last_event_id=" + std::to_string(ids[2]) +
      " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + hook.token + "\r\n\r\n";
  socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  std::string received;
  char buffer[4096];
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  while (received.find("id: " + std::to_string(ids[3])) == std::string::npos) {
    const int n = socket.receiveBytes(buffer, sizeof(buffer));
    ASSERT_GT(n, 0);
    received.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(received.find("id: " + std::to_string(ids[2]) + "\n"), std::string::npos);
}

TEST_F(EdgeServerTest, OpenStreamsDoNotHoldPoolThreads) {
  startServer(2);
  const Hook hook = createHook();
  std::vector<std::unique_ptr<SseClient>> streams;
  for (int i = 0; i < 20; ++i) {
    streams.push_back(std::make_unique<SseClient>(port_, hook.id, hook.token));
    ASSERT_EQ(streams.back()->head().status, 200) << "stream " << i;
  }
  EXPECT_EQ(apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id, hook.token).status, 200);
  const auto stored = ingest(hook, "to all");
  ASSERT_EQ(stored.status, 200);
  Frame frame;
  ASSERT_TRUE(streams.back()->nextEvent(frame));
  EXPECT_EQ(std::to_string(frame.id), jsonField(stored.body, "id"));
}

TEST_F(EdgeServerTest, StopFinishesAndAcknowledgedEventsSurviveARestart) {
  startServer();
  const Hook hook = createHook();
  const std::string id = jsonField(ingest(hook, "durable").body, "id");
  server_->stop();
  server_.reset();
  startServer();
  const auto body =
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + id + "/body", hook.token);
  EXPECT_EQ(body.status, 200);
  EXPECT_EQ(body.body, "durable");
}

}  // namespace
}  // namespace anm::test
