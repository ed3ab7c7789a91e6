// tests/e2e/relay_env.cpp: one complete relay set-up per test.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/relay_env.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <iostream>
#include <map>

namespace anm::e2e {

RelayEnv::RelayEnv(RelayEnvOptions options) {
  target = options.responder ? std::make_unique<TargetServer>(options.responder)
                             : std::make_unique<TargetServer>();

  EdgeProcess::Options edgeOptions;
  edgeOptions.binary = ANM_E2E_EDGE_BIN;
  edgeOptions.pluginDir = ANM_E2E_PLUGIN_DIR;
  edgeOptions.workDir = dir.sub("edge");
  edgeOptions.home = dir.sub("edge-home");
  edge = std::make_unique<EdgeProcess>(edgeOptions);

  // The relay talks to the proxy when the test wants to cut it off, else to the edge itself.
  if (options.viaProxy) proxy = std::make_unique<TcpProxy>(edge->port());

  RelayProcess::Options relayOptions;
  relayOptions.binary = ANM_E2E_RELAY_BIN;
  relayOptions.edgeUrl = proxy ? proxy->url() : edge->url();
  relayOptions.targetUrl = options.targetUrl.empty() ? target->url() : options.targetUrl;
  relayOptions.home = dir.sub("relay-home");
  relayOptions.extraArgs = options.relayArgs;
  relay = std::make_unique<RelayProcess>(relayOptions);
}

WireResponse RelayEnv::ingest(const SentRequest& request) const {
  return exchange(edge->port(), request.serialize(relay->hookId()), request.method == "HEAD");
}

std::string RelayEnv::describe() {
  std::string out;
  if (edge) out += "edge: " + edge->process().describe();
  if (relay) out += "relay: " + relay->process().describe();
  if (target) {
    for (const auto& error : target->protocolErrors())
      out += "target protocol error: " + error + "\n";
  }
  return out;
}

void E2eTest::start(RelayEnvOptions options) {
  try {
    env_ = std::make_unique<RelayEnv>(std::move(options));
  } catch (const std::exception& e) {
    FAIL() << "could not start the relay set-up: " << e.what();
  }
}

void E2eTest::TearDown() {
  if (HasFailure() && env_) std::cerr << env_->describe();
  env_.reset();
}

SentRequest E2eTest::request(const std::string& method, const std::string& suffix,
                             const std::string& query, HeaderList headers,
                             const std::string& body) {
  headers.emplace_back(kSeqHeader, std::to_string(nextSeq_++));
  return makeRequest(method, suffix, query, env_->edgePort(), std::move(headers), body);
}

void E2eTest::sendAndExpectDelivered(const std::vector<SentRequest>& requests) {
  // Every request must be acknowledged before the relay can be expected to have it.
  std::map<std::string, int64_t> eventIds;
  for (const auto& sent : requests) {
    std::string seq = seqOf(sent);
    WireResponse answer = env_->ingest(sent);
    ASSERT_EQ(answer.status, 200) << "ingest of seq " << seq << " answered "
                                  << answer.message.startLine << " " << answer.message.body;
    if (sent.method == "HEAD") continue;
    auto json = parseObject(answer.message.body);
    EXPECT_EQ(jsonText(json, "ok"), "true") << answer.message.body;
    eventIds[seq] = jsonInt(json, "id", 0);
    EXPECT_GT(eventIds[seq], 0) << answer.message.body;
  }

  ASSERT_TRUE(env_->target->waitForCount(requests.size(), kStepTimeout))
      << "target got " << env_->target->count() << " of " << requests.size() << " requests";
  auto received = env_->target->requests();
  EXPECT_EQ(received.size(), requests.size());
  EXPECT_TRUE(env_->target->protocolErrors().empty());

  for (const auto& sent : requests) {
    std::string seq = seqOf(sent);
    SCOPED_TRACE("seq " + seq + " " + sent.method);
    auto got = withSeq(received, seq);
    ASSERT_EQ(got.size(), 1u) << "delivered " << got.size() << " times";
    expectDeliveredUnchanged(sent, got[0], env_->target->port());
  }

  // The relay's --json report: one line per forwarded event with the target's status.
  ASSERT_TRUE(env_->relay->waitForReports(requests.size(), kStepTimeout))
      << "relay printed " << env_->relay->reports().size() << " delivery lines";
  auto reports = env_->relay->reports();
  EXPECT_EQ(reports.size(), requests.size());
  for (const auto& report : reports) {
    EXPECT_EQ(jsonInt(report, "status"), 200);
    EXPECT_EQ(jsonText(report, "error"), "");
  }
  for (const auto& [seq, id] : eventIds) {
    bool reported = false;
    for (const auto& report : reports) reported |= jsonInt(report, "id") == id;
    EXPECT_TRUE(reported) << "no report for event " << id << " (seq " << seq << ")";
  }
}

std::string deadTargetUrl() {
  Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
  return "http://127.0.0.1:" + std::to_string(probe.address().port());
}

}  // namespace anm::e2e
