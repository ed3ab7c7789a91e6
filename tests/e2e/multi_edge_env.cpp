// tests/e2e/multi_edge_env.cpp: several real edges on one private MySQL database.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/multi_edge_env.h"

#include <algorithm>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "core/store/sealing.h"

namespace anm::e2e {

void MultiEdgeTest::SetUp() {
  ASSERT_NO_FATAL_FAILURE(test::requireMySqlServer());
  if (IsSkipped()) return;
  db_ = std::make_unique<test::TestDatabase>(*test::testMySqlServer(), test::kUtf8mb4BinOptions);

  // One ring for every edge: the database records the active key and a check value, and an
  // edge holding another key under that id refuses to start.
  keyFile_ = dir_.path() / "encryption.keys";
  crypto::KeyRing::writeFile(keyFile_.string(), crypto::KeyRing::newKeyLine(kTestKeyId));
  keys_ = crypto::KeyRing::loadFile(keyFile_.string());
  target_ = std::make_unique<TargetServer>();
}

void MultiEdgeTest::TearDown() {
  if (HasFailure()) {
    for (size_t i = 0; i < edges_.size(); ++i) {
      std::cerr << "edge " << edgeNames_[i] << ": " << edges_[i]->process().describe();
    }
    for (size_t i = 0; i < relays_.size(); ++i) {
      std::cerr << "relay " << relayNames_[i] << ": " << relays_[i]->process().describe();
    }
    if (target_) {
      for (const auto& error : target_->protocolErrors()) {
        std::cerr << "target protocol error: " << error << "\n";
      }
    }
  }

  // Relays first, so that none reconnects to a stopping edge; the database goes last.
  relays_.clear();
  edges_.clear();
  target_.reset();
  db_.reset();
}

EdgeProcess& MultiEdgeTest::startEdge(const std::string& name, uint16_t dbPort) {
  EdgeProcess::Options options;
  options.binary = ANM_E2E_EDGE_BIN;
  options.pluginDir = ANM_E2E_PLUGIN_DIR;
  options.workDir = dir_.sub("edge-" + name);
  options.home = dir_.sub("edge-" + name + "-home");
  // Off: the flapping outage test sends as fast as the edge answers 503 (limits: abuse_test).
  options.settings = {{"store", db_->url(dbPort)},
                      {"store.poll_interval_ms", std::to_string(kPollIntervalMs)},
                      {"ingest.rate_per_hook", "0"},
                      {"ingest.rate_per_address", "0"},
                      {"encryption.key_file", keyFile_.string()}};
  edges_.push_back(std::make_unique<EdgeProcess>(options));
  edgeNames_.push_back(name);
  return *edges_.back();
}

HookAccess MultiEdgeTest::createHook(EdgeProcess& edge) {
  WireResponse answer = apiPost(edge.port(), "/api/v1/hooks", "{}");
  if (answer.status != 201) {
    throw std::runtime_error("hook creation answered " + answer.message.startLine + " " +
                             answer.message.body);
  }
  auto json = parseObject(answer.message.body);
  HookAccess hook{jsonText(json, "id"), jsonText(json, "token")};
  if (hook.id.empty() || hook.token.empty()) {
    throw std::runtime_error("hook creation gave no id or token: " + answer.message.body);
  }
  return hook;
}

RelayProcess& MultiEdgeTest::startRelay(EdgeProcess& edge, const std::string& home,
                                        const HookAccess& hook) {
  RelayProcess::Options options;
  options.binary = ANM_E2E_RELAY_BIN;
  options.edgeUrl = edge.url();
  options.targetUrl = target_->url();
  options.home = dir_.sub("relay-" + home);
  options.hookId = hook.id;
  options.token = hook.token;
  relays_.push_back(std::make_unique<RelayProcess>(options));
  relayNames_.push_back(home);
  RelayProcess& relay = *relays_.back();

  // Events sent before the stream is up would still arrive (as backlog), but the tests that
  // time live delivery need the stream open first.
  auto connected = relay.process().waitForAnyLine(
      [](const std::string& line) { return line.find("stream connected") != std::string::npos; },
      kMultiEdgeStepTimeout);
  if (!connected) {
    throw std::runtime_error("relay did not connect its stream\n" + relay.process().describe());
  }
  return relay;
}

SentRequest MultiEdgeTest::request(EdgeProcess& edge, const std::string& suffix,
                                   const std::string& body) {
  HeaderList headers{{"Content-Type", "text/plain"}, {kSeqHeader, std::to_string(nextSeq_++)}};
  return makeRequest("POST", suffix, "", edge.port(), std::move(headers), body);
}

WireResponse MultiEdgeTest::ingest(EdgeProcess& edge, const std::string& hookId,
                                   const SentRequest& sent) {
  return exchange(edge.port(), sent.serialize(hookId), false);
}

int64_t MultiEdgeTest::ingestOk(EdgeProcess& edge, const std::string& hookId,
                                const SentRequest& sent) {
  WireResponse answer = ingest(edge, hookId, sent);
  EXPECT_EQ(answer.status, 200) << "seq " << seqOf(sent) << ": " << answer.message.startLine << " "
                                << answer.message.body;
  if (answer.status != 200) return 0;
  auto json = parseObject(answer.message.body);
  int64_t id = jsonInt(json, "id", 0);
  EXPECT_GT(id, 0) << answer.message.body;
  return id;
}

std::vector<int64_t> MultiEdgeTest::listedIds(EdgeProcess& edge, const HookAccess& hook) {
  std::vector<int64_t> ids;
  int64_t after = 0;
  for (;;) {
    WireResponse answer =
        apiGet(edge.port(),
               "/api/v1/hooks/" + hook.id + "/events?limit=1000&after=" + std::to_string(after),
               hook.token);
    if (answer.status != 200) {
      throw std::runtime_error("event list answered " + answer.message.startLine + " " +
                               answer.message.body);
    }
    auto json = parseObject(answer.message.body);
    auto events = json->getArray("events");
    if (!events || events->size() == 0) return ids;
    for (size_t i = 0; i < events->size(); ++i) {
      ids.push_back(jsonInt(events->getObject(static_cast<unsigned>(i)), "id", -1));
    }
    after = jsonInt(json, "next_after", -1);
    if (after <= 0) throw std::runtime_error("event list without next_after");
  }
}

std::vector<int64_t> MultiEdgeTest::listedIdsOnceCaughtUp(EdgeProcess& edge, const HookAccess& hook,
                                                          const std::vector<int64_t>& expected,
                                                          std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<int64_t> listed = listedIds(edge, hook);
  while (listed != expected && std::chrono::steady_clock::now() < deadline) {
    bool prefix = listed.size() <= expected.size() &&
                  std::equal(listed.begin(), listed.end(), expected.begin());
    EXPECT_TRUE(prefix) << "edge on port " << edge.port()
                        << " listed events with a gap or out of order while catching up";
    if (!prefix) return listed;
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollIntervalMs));
    listed = listedIds(edge, hook);
  }
  return listed;
}

std::vector<int64_t> MultiEdgeTest::reportedIds(const RelayProcess& relay) {
  std::vector<int64_t> ids;
  for (const auto& report : relay.reports()) ids.push_back(jsonInt(report, "id", -1));
  return ids;
}

std::vector<StoredEvent> MultiEdgeTest::storedEvents() {
  auto direct = db_->connect();
  std::vector<StoredEvent> events;
  for (const auto& row : direct->query(
           "SELECT id, hook_id, key_id, wrapped_key, raw_query, headers, body, seal_version, "
           "path_suffix, reason_message, event_type, delivery_id FROM events ORDER BY id")) {
    StoredEvent stored;
    stored.id = std::stoll(row.at(0));
    stored.keyId = row.at(2);
    stored.rawQuery = row.at(4);
    stored.rawHeaders = row.at(5);
    stored.rawBody = row.at(6);

    // The store's own opening rules (sealing.h), so that a row the edges could not read back
    // fails here too, with the reason in integrityError.
    stored.opened.id = stored.id;
    stored.opened.hookId = row.at(1);
    store::StoredContents contents;
    contents.wrapped = store::WrappedKey{stored.keyId, row.at(3)};
    contents.sealVersion = std::stoll(row.at(7));
    contents.query = stored.rawQuery;
    contents.headers = stored.rawHeaders;
    contents.body = &stored.rawBody;
    contents.summary = store::SummaryFields{row.at(8), row.at(9), row.at(10), row.at(11)};
    store::openContents(*keys_, contents, stored.opened);
    events.push_back(std::move(stored));
  }
  return events;
}

std::optional<StoredEvent> MultiEdgeTest::storedEvent(int64_t id) {
  for (auto& stored : storedEvents()) {
    if (stored.id == id) return std::move(stored);
  }
  return std::nullopt;
}

void MultiEdgeTest::expectStoredSealed(const StoredEvent& stored, const SentRequest& sent) {
  SCOPED_TRACE("stored event " + std::to_string(stored.id) + " seq " + seqOf(sent));

  // What the edge stored opens to exactly what was sent.
  EXPECT_EQ(stored.opened.integrityError, "");
  EXPECT_EQ(stored.opened.body, sent.body);
  EXPECT_EQ(stored.opened.rawQuery, sent.query);
  for (const auto& [name, value] : sent.headers) {
    EXPECT_NE(std::find(stored.opened.headers.begin(), stored.opened.headers.end(),
                        store::Header{name, value}),
              stored.opened.headers.end())
        << "header " << name << " is not stored as sent";
  }

  // And the database never saw the plaintext: sealed under the edges' ring, not stored in the
  // clear and not under a key an edge generated for itself.
  EXPECT_EQ(stored.keyId, kTestKeyId);
  EXPECT_NE(stored.rawBody, sent.body) << "the body is stored in the clear";
  if (!sent.body.empty()) {
    EXPECT_EQ(stored.rawBody.find(sent.body), std::string::npos) << "the body shows in the row";
  }
  if (!sent.query.empty()) {
    EXPECT_EQ(stored.rawQuery.find(sent.query), std::string::npos) << "the query shows in the row";
  }
  EXPECT_EQ(stored.rawHeaders.find(kSeqHeader), std::string::npos)
      << "header names show in the row";
}

}  // namespace anm::e2e
