// tests/integration/dashboard_routes_test.cpp: the dashboard's page and files as a running edge
// serves them: the contract's security headers, ETags with 304s, and only GET and HEAD.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/dashboard_routes.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/dashboard/assets.h"
#include "core/edge/edge_server.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

class DashboardRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-dashboard-routes-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    server_ = std::make_unique<edge::EdgeServer>(loopbackEdgeConfig(dir_ + "/data"));
    server_->start();
    port_ = server_->port();
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static void expectPageHeaders(const Response& r) {
    EXPECT_EQ(r.header("Content-Security-Policy"), edge::kDashboardCsp);
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r.header("Cache-Control"), "no-cache");
  }

  std::string dir_;
  std::unique_ptr<edge::EdgeServer> server_;
  uint16_t port_ = 0;
};

TEST_F(DashboardRoutesTest, RootServesThePageWithTheContractsHeaders) {
  const auto r = request(port_, "GET", "/");
  ASSERT_EQ(r.status, 200);
  const dashboard::Asset* page = dashboard::findAsset("/index.html");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(r.body, page->bytes);
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r.header("ETag"), page->etag);
  expectPageHeaders(r);
  // The policy the contract names, word for word: no inline script or style anywhere.
  EXPECT_EQ(std::string(edge::kDashboardCsp),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
}

TEST_F(DashboardRoutesTest, EveryEmbeddedFileIsServedUnderApp) {
  for (const dashboard::Asset& asset : dashboard::allAssets()) {
    if (asset.path.substr(0, 5) != "/app/") continue;
    SCOPED_TRACE(std::string(asset.path));
    const auto r = request(port_, "GET", std::string(asset.path));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, asset.bytes);
    EXPECT_EQ(r.header("Content-Type"), asset.contentType);
    EXPECT_EQ(r.header("ETag"), asset.etag);
    expectPageHeaders(r);
  }
}

TEST_F(DashboardRoutesTest, AMatchingETagAnswers304WithoutTheBytes) {
  const dashboard::Asset* script = dashboard::findAsset("/app/main.js");
  ASSERT_NE(script, nullptr);
  const std::string etag(script->etag);

  for (const std::string& header : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    SCOPED_TRACE(header);
    const auto r = request(port_, "GET", "/app/main.js", "", {{"If-None-Match", header}});
    EXPECT_EQ(r.status, 304);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.header("ETag"), etag);
  }
  const auto changed = request(port_, "GET", "/app/main.js", "", {{"If-None-Match", "\"old\""}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, script->bytes);
}

TEST_F(DashboardRoutesTest, HeadAnswersTheHeadersOnly) {
  const auto r = request(port_, "HEAD", "/app/dashboard.css");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("Content-Type"), "text/css; charset=utf-8");
}

TEST_F(DashboardRoutesTest, OtherMethodsAndUnknownFilesAreRefused) {
  const auto post = request(port_, "POST", "/", "x");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD");
  EXPECT_EQ(request(port_, "DELETE", "/app/main.js").status, 405);

  for (const char* target :
       {"/app/", "/app/nope.js", "/app/../index.html", "/app/main.js/x", "/index.html", "/app"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(request(port_, "GET", target).status, 404);
  }
}

}  // namespace
}  // namespace anm::test
