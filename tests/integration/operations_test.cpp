// tests/integration/operations_test.cpp: what an operator's tools read from a running edge:
// /healthz, /readyz, /metrics and /api/v1/providers, counted from real traffic.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/edge/edge_server.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;

struct Hook {
  std::string id;
  std::string token;
};

// The samples of a /metrics answer by their full name with labels.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t split = line.rfind(' ');
    out[line.substr(0, split)] = std::stod(line.substr(split + 1));
  }
  return out;
}

class OperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-operations-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxThreads = 8;
    config.maxBodyBytes = 1024;
    config.ratePerHook = 0;
    config.ratePerAddress = 0;
    server_ = std::make_unique<EdgeServer>(config);
    server_->start();
    port_ = server_->port();
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Hook createHook(const std::string& settings) {
    const auto r = request(port_, "POST", "/api/v1/hooks", settings);
    EXPECT_EQ(r.status, 201) << r.body;
    return Hook{jsonField(r.body, "id"), jsonField(r.body, "token")};
  }

  Response signedIngest(const Hook& hook, const std::string& secret, const std::string& body) {
    return request(port_, "POST", "/h/" + hook.id, body,
                   {{"X-Signature-256", "sha256=" + hmacSha256Hex(secret, body)}});
  }

  std::map<std::string, double> metrics() {
    const auto r = request(port_, "GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return samples(r.body);
  }

  std::string dir_;
  std::unique_ptr<EdgeServer> server_;
  uint16_t port_ = 0;
};

TEST_F(OperationsTest, HealthAndReadinessAnswerWhileTheEdgeServes) {
  const auto health = request(port_, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");

  const auto ready = request(port_, "GET", "/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  Poco::JSON::Parser parser;
  const auto body = parser.parse(ready.body).extract<Poco::JSON::Object::Ptr>();
  EXPECT_TRUE(body->getValue<bool>("ready"));
  EXPECT_EQ(body->getValue<std::string>("store"), "ok");
  EXPECT_TRUE(body->getValue<bool>("plugins_loaded"));
  EXPECT_EQ(body->getValue<int>("plugins"), 1);
  EXPECT_FALSE(body->getValue<bool>("stopping"));

  // Both are probes: any other method is refused and says which ones it takes.
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/api/v1/providers"}) {
    const auto post = request(port_, "POST", path, "{}");
    EXPECT_EQ(post.status, 405) << path;
    EXPECT_EQ(post.header("Allow"), "GET, HEAD") << path;
  }
}

TEST_F(OperationsTest, ProvidersListsEachLoadedPluginWithVersionAbiAndFile) {
  const auto r = request(port_, "GET", "/api/v1/providers");
  ASSERT_EQ(r.status, 200) << r.body;

  Poco::JSON::Parser parser;
  const auto list = parser.parse(r.body).extract<Poco::JSON::Object::Ptr>()->getArray("providers");
  ASSERT_EQ(list->size(), 1u);
  const auto plugin = list->getObject(0);
  EXPECT_EQ(plugin->getValue<std::string>("name"), "hmacfix");
  EXPECT_EQ(plugin->getValue<std::string>("version"), "1.0.0");
  EXPECT_EQ(plugin->getValue<std::string>("abi"), "1.0");
  EXPECT_EQ(plugin->getValue<std::string>("file"),
            std::filesystem::path(ANM_TEST_PLUGIN_DIR "/hmac_fixture.so").lexically_normal());
}

TEST_F(OperationsTest, MetricsCountWhatTheEdgeDidByProviderVerdictAndReason) {
  const Hook signedHook = createHook(R"({"provider":"hmacfix","secret":"s3"})");
  const Hook openHook = createHook("{}");

  // Two valid, one invalid, one unsigned, one to nowhere and one too large.
  ASSERT_EQ(signedIngest(signedHook, "s3", "one").status, 200);
  ASSERT_EQ(signedIngest(signedHook, "s3", "two").status, 200);
  ASSERT_EQ(signedIngest(signedHook, "wrong", "three").status, 401);
  ASSERT_EQ(request(port_, "POST", "/h/" + openHook.id, "four").status, 200);
  ASSERT_EQ(request(port_, "POST", "/h/nosuchhook", "five").status, 404);
  ASSERT_EQ(request(port_, "POST", "/h/" + openHook.id, std::string(2048, 'x')).status, 413);

  // A relay reports two deliveries of the unsigned event: the local server failed, then took it.
  const std::string eventsPath = "/api/v1/hooks/" + openHook.id + "/events";
  const auto listed = apiRequest(port_, "GET", eventsPath, openHook.token);
  ASSERT_EQ(listed.status, 200);
  Poco::JSON::Parser parser;
  const auto events =
      parser.parse(listed.body).extract<Poco::JSON::Object::Ptr>()->getArray("events");
  ASSERT_EQ(events->size(), 1u);
  const std::string eventId = std::to_string(events->getObject(0)->getValue<int64_t>("id"));
  for (const char* report :
       {R"({"relay":"r1","status":502,"duration_ms":3})", R"({"relay":"r1","status":200})"}) {
    ASSERT_EQ(apiRequest(port_, "POST", eventsPath + "/" + eventId + "/deliveries", openHook.token,
                         report)
                  .status,
              201);
  }

  // An open relay stream shows as one.
  SseClient stream(port_, openHook.id, openHook.token);
  ASSERT_EQ(stream.head().status, 200);

  const auto m = metrics();
  EXPECT_EQ(m.at(R"(anonymily_webhooks_received_total{provider="hmacfix",verdict="valid"})"), 2);
  EXPECT_EQ(m.at(R"(anonymily_webhooks_received_total{provider="hmacfix",verdict="invalid"})"), 1);
  EXPECT_EQ(m.at(R"(anonymily_webhooks_received_total{provider="none",verdict="unsigned"})"), 1);
  EXPECT_EQ(m.at(R"(anonymily_webhooks_refused_total{reason="unknown_hook"})"), 1);
  EXPECT_EQ(m.at(R"(anonymily_webhooks_refused_total{reason="too_large"})"), 1);
  EXPECT_EQ(m.at(R"(anonymily_webhooks_refused_total{reason="rate_limited"})"), 0);
  EXPECT_EQ(m.at("anonymily_ingest_duration_seconds_count"), 4);
  EXPECT_EQ(m.at(R"(anonymily_ingest_duration_seconds_bucket{le="+Inf"})"), 4);
  EXPECT_GT(m.at("anonymily_ingest_duration_seconds_sum"), 0);
  EXPECT_EQ(m.at(R"(anonymily_deliveries_total{status="5xx"})"), 1);
  EXPECT_EQ(m.at(R"(anonymily_deliveries_total{status="2xx"})"), 1);
  EXPECT_EQ(m.at("anonymily_relay_streams_open"), 1);
  EXPECT_EQ(m.at("anonymily_plugins_loaded"), 1);
  EXPECT_EQ(m.at("anonymily_plugin_load_failures_total"), 0);
  EXPECT_EQ(m.at(R"(anonymily_store_errors_total{path="request"})"), 0);
  EXPECT_EQ(m.at("anonymily_ready"), 1);
}

// Whatever part of a request is malformed, and whichever layer refuses it, the refusal is
// counted once as `malformed` (#5): before, the ones refused before routing were not.
TEST_F(OperationsTest, EveryMalformedRequestIsCountedOnce) {
  const Hook hook = createHook("{}");
  const std::string line = "POST /h/" + hook.id;
  const std::vector<std::pair<std::string, int>> cases = {
      {line + " HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
      {line + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {line + "/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 400},
      {"PO(ST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 400},
      {line + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", 400},
      {line + " HTTP/1.1\r\nHost: x\r\nX(Bad): 1\r\nContent-Length: 2\r\n\r\nhi", 400},
      {line + " HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
      {line + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400},
  };
  const std::string malformed = R"(anonymily_webhooks_refused_total{reason="malformed"})";
  double counted = metrics().at(malformed);
  for (const auto& [bytes, status] : cases) {
    EXPECT_EQ(rawExchange(port_, bytes).status, status) << bytes;
    const double now = metrics().at(malformed);
    EXPECT_EQ(now, counted + 1) << bytes;
    counted = now;
  }
  EXPECT_EQ(request(port_, "POST", "/h/" + hook.id, "fine").status, 200);
  EXPECT_EQ(metrics().at(malformed), counted);
}

// The default plugin directory may be missing at start; SIGHUP (reloadPlugins) reads it once
// it is there instead of reporting nothing loaded until a restart (#5).
TEST(PluginDirectoryTest, ReloadReadsADirectoryThatWasMissingAtStart) {
  char pattern[] = "/tmp/anm-plugin-dir-test-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  EdgeConfig config = loopbackEdgeConfig(dir + "/data");
  config.pluginDir = dir + "/plugins";
  config.pluginDirGiven = false;
  config.watchPlugins = false;
  {
    EdgeServer server(config);
    server.start();
    EXPECT_EQ(server.pluginCount(), 0u);
    EXPECT_FALSE(server.reloadPlugins().changed());

    std::filesystem::create_directory(config.pluginDir);
    std::filesystem::copy_file(ANM_TEST_PLUGIN_DIR "/hmac_fixture.so",
                               config.pluginDir + "/hmac_fixture.so");
    const plugin::SyncResult result = server.reloadPlugins();
    ASSERT_EQ(result.loaded.size(), 1u);
    EXPECT_EQ(result.loaded[0].name, "hmacfix");
    EXPECT_EQ(server.pluginCount(), 1u);
    EXPECT_NE(request(server.port(), "GET", "/api/v1/providers").body.find("\"hmacfix\""),
              std::string::npos);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_F(OperationsTest, EveryDiagnosisCodeHasAPageWithoutScriptAndAJsonForm) {
  const auto index = request(port_, "GET", "/diagnosis/");
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_EQ(index.header("Content-Type"), "text/html; charset=utf-8");
  const std::string policy = index.header("Content-Security-Policy");
  EXPECT_EQ(policy.find("script-src"), std::string::npos) << policy;
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos) << policy;
  EXPECT_EQ(index.header("X-Content-Type-Options"), "nosniff");

  // Every code the index lists has both forms, served without a sign-in.
  const auto listed = request(port_, "GET", "/diagnosis/index.json");
  ASSERT_EQ(listed.status, 200);
  Poco::JSON::Parser parser;
  const auto codes =
      parser.parse(listed.body).extract<Poco::JSON::Object::Ptr>()->getArray("codes");
  ASSERT_GT(codes->size(), 20u);
  for (size_t i = 0; i < codes->size(); ++i) {
    const std::string code =
        codes->getObject(static_cast<unsigned>(i))->getValue<std::string>("code");
    const auto html = request(port_, "GET", "/diagnosis/" + code);
    EXPECT_EQ(html.status, 200) << code;
    EXPECT_NE(html.body.find("<html"), std::string::npos) << code;
    EXPECT_EQ(html.body.find("<script"), std::string::npos) << code;
    const auto json = request(port_, "GET", "/diagnosis/" + code + ".json");
    EXPECT_EQ(json.status, 200) << code;
    EXPECT_EQ(jsonField(json.body, "code"), code);
  }

  EXPECT_EQ(request(port_, "GET", "/diagnosis/no.such_code").status, 404);
  EXPECT_EQ(request(port_, "POST", "/diagnosis/", "{}").status, 405);
}

}  // namespace
}  // namespace anm::test
