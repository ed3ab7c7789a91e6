// tests/e2e/relay_env.h: one complete relay set-up per test: target, edge, optional proxy and
// relay, each a real process or socket owned by the test.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/support/delivery_check.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/target_server.h"
#include "tests/e2e/support/tcp_proxy.h"
#include "tests/e2e/support/temp_dir.h"

namespace anm::e2e {

/// How long a test waits for one step (a delivery, a report); far above what a healthy relay
/// needs, so a miss means a lost or stuck event rather than a slow machine.
constexpr std::chrono::milliseconds kStepTimeout(10000);

struct RelayEnvOptions {
  bool viaProxy = false;               ///< relay reaches the edge only through a TcpProxy
  std::vector<std::string> relayArgs;  ///< e.g. --provider stripe --secret ...
  TargetServer::Responder responder;   ///< empty: answer 200 to everything
  std::string targetUrl;               ///< empty: the TargetServer's URL
};

/// Members are declared in start order, so they stop in reverse: relay, proxy, edge, target,
/// and the temp dir last.
class RelayEnv {
 public:
  explicit RelayEnv(RelayEnvOptions options);

  TempDir dir;
  std::unique_ptr<TargetServer> target;
  std::unique_ptr<EdgeProcess> edge;
  std::unique_ptr<TcpProxy> proxy;
  std::unique_ptr<RelayProcess> relay;

  uint16_t edgePort() const { return edge->port(); }
  const std::string& hookId() const { return relay->hookId(); }

  /// Sends the request straight to the edge's ingest URL.
  WireResponse ingest(const SentRequest& request) const;

  /// Output of the edge and the relay, for failure messages.
  std::string describe();
};

/// The URL of a loopback port that was free a moment ago: nothing listens there, so a relay
/// forwarding to it has its connection refused.
std::string deadTargetUrl();

/// The fixture: each test starts its own RelayEnv; on failure the programs' output is printed.
class E2eTest : public ::testing::Test {
 protected:
  /// Starts everything; records a fatal failure (use ASSERT_NO_FATAL_FAILURE) when a program
  /// does not come up.
  void start(RelayEnvOptions options = {});

  void TearDown() override;

  /// A request to the edge with Host first, then `headers`, then X-Test-Seq and a
  /// Content-Length where one belongs.
  SentRequest request(const std::string& method, const std::string& suffix,
                      const std::string& query, HeaderList headers, const std::string& body);

  /// Sends every request, expects each acknowledged with 200, waits until the target has
  /// them all and checks each one with expectDeliveredUnchanged and the relay's JSON report.
  void sendAndExpectDelivered(const std::vector<SentRequest>& requests);

  std::unique_ptr<RelayEnv> env_;
  int nextSeq_ = 1;
};

}  // namespace anm::e2e
