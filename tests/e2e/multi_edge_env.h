// tests/e2e/multi_edge_env.h: several real edges on one private MySQL database, with relays,
// a recording target and the test's own SQL connections.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/crypto/keys.h"
#include "core/store/store.h"
#include "tests/e2e/support/delivery_check.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/target_server.h"
#include "tests/e2e/support/temp_dir.h"
#include "tests/support/mysql/test_mysql.h"

namespace anm::e2e {

/// How long a test waits for one step it expects to happen; far above what healthy programs
/// need, so that a miss means a lost or stuck event rather than a busy machine.
constexpr std::chrono::milliseconds kMultiEdgeStepTimeout(15000);

/// The follower's poll interval the edges run with: the documented default.
constexpr int kPollIntervalMs = 5;

/// The id of the one key every edge of a test holds. Not the k1 an edge generates for itself,
/// so that a row sealed under it proves the edge used the test's ring.
constexpr const char* kTestKeyId = "e2e1";

/// One events row as the database holds it, beside what it holds once opened with the edges'
/// key ring.
struct StoredEvent {
  int64_t id = 0;
  std::string keyId;       ///< the key that wrapped its data key; "" for a row in the clear
  std::string rawQuery;    ///< the raw_query column, as stored
  std::string rawHeaders;  ///< the headers column, as stored
  std::string rawBody;     ///< the body column, as stored
  /// Query, headers, body and summary fields opened (integrityError set when they do not open);
  /// the other fields are left empty.
  store::EventRecord opened;
};

/// A hook as POST /api/v1/hooks answered it.
struct HookAccess {
  std::string id;
  std::string token;
};

/// The fixture: SetUp creates a fresh database (or skips or fails the test as
/// test::requireMySqlServer says) and one key ring for all its edges, in a key file of mode
/// 0600 (edges with rings of their own would refuse to share the database); TearDown prints every
/// program's output when the test failed, stops relays before edges and drops the database last.
class MultiEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  /// Starts an edge whose store is the test database, reached through 127.0.0.1:dbPort when it
  /// is not 0 (a proxy in front of the server). Throws when it does not come up.
  EdgeProcess& startEdge(const std::string& name, uint16_t dbPort = 0);

  /// Creates a hook without a provider (every request is stored as unsigned and relayed).
  HookAccess createHook(EdgeProcess& edge);

  /// Starts `anonymily relay --json` against `edge` with a home of its own named `home` (the
  /// same name means the same saved token and position). `hook.id` empty: the relay creates a
  /// hook; `hook.token` empty: it uses the saved token. Waits until its stream is connected.
  RelayProcess& startRelay(EdgeProcess& edge, const std::string& home, const HookAccess& hook);

  /// A POST for the hook with Host naming `edge`, Content-Type, X-Test-Seq and Content-Length.
  SentRequest request(EdgeProcess& edge, const std::string& suffix, const std::string& body);

  WireResponse ingest(EdgeProcess& edge, const std::string& hookId, const SentRequest& sent);

  /// Sends the request to `edge`, expects 200 with an event id and returns that id (0 after a
  /// recorded failure).
  int64_t ingestOk(EdgeProcess& edge, const std::string& hookId, const SentRequest& sent);

  /// Every event id the edge's API lists for the hook, paging with next_after, in order.
  std::vector<int64_t> listedIds(EdgeProcess& edge, const HookAccess& hook);

  /// listedIds once it equals `expected`, waiting up to `limit`: an edge learns of another
  /// edge's events by polling, so its list may lag a poll interval behind an acknowledgement.
  /// Records a failure for every list seen meanwhile that is not a prefix of `expected` (a
  /// gap or another order) and returns the last list.
  std::vector<int64_t> listedIdsOnceCaughtUp(
      EdgeProcess& edge, const HookAccess& hook, const std::vector<int64_t>& expected,
      std::chrono::milliseconds limit = std::chrono::milliseconds(1000));

  /// The ids of a relay's JSON delivery lines, in order.
  static std::vector<int64_t> reportedIds(const RelayProcess& relay);

  /// Every events row in id order, read with a connection of the test's own and opened with
  /// the ring the edges hold: what is stored, independent of what any edge answers.
  std::vector<StoredEvent> storedEvents();

  /// The row stored for event `id`, or nothing when there is none.
  std::optional<StoredEvent> storedEvent(int64_t id);

  /// Records a failure unless `stored` holds `sent` byte for byte (query, body, the headers
  /// sent) and was stored encrypted: sealed under the test's key, none of the raw columns
  /// showing the plaintext.
  void expectStoredSealed(const StoredEvent& stored, const SentRequest& sent);

  TempDir dir_;
  std::filesystem::path keyFile_;  ///< the ring every edge reads (encryption.key_file)
  std::optional<crypto::KeyRing> keys_;
  std::unique_ptr<test::TestDatabase> db_;
  std::unique_ptr<TargetServer> target_;
  std::vector<std::unique_ptr<EdgeProcess>> edges_;
  std::vector<std::unique_ptr<RelayProcess>> relays_;
  std::vector<std::string> edgeNames_;   ///< beside edges_, for failure output
  std::vector<std::string> relayNames_;  ///< beside relays_
  int nextSeq_ = 1;
};

}  // namespace anm::e2e
