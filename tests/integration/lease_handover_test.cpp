// tests/integration/lease_handover_test.cpp: two edges sharing the test MySQL server, as behind
// a load balancer: a relay that moves to the other edge takes its hook's live lease along.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>

#include "backend_env.h"
#include "core/edge/edge_server.h"

namespace anm::test {
namespace {

class LeaseHandoverTest : public BackendAccountsTest {};

// A free plan allows one live relay per hook: the same relay reconnecting to another edge holds
// the lease there, and the stream it left ends with a frame that says so at that edge's next
// renewal of the lease.
TEST_P(LeaseHandoverTest, AStreamThatLostTheLeaseToAnotherEdgeEndsAtItsNextRenewal) {
  startOnBackend();
  if (HasFatalFailure() || IsSkipped()) return;
  const Account free = createAccount("alpha", "free");
  const std::string id = createNamedHook(free, "main")->getValue<std::string>("id");

  // A second edge on the same database and keys.
  edge::EdgeConfig config = loopbackEdgeConfig(dir_ + "/data-b");
  config.storeKind = edge::StoreKind::kMySql;
  config.mysql.endpoint = db_->endpoint();
  config.store = "mysql " + db_->name();
  config.keyFile = dir_ + "/data/encryption.keys";
  edge::EdgeServer other(config);
  other.start();

  StreamReader onFirst(port_, id, free.jwt, {{"X-Anonymily-Relay", "relay-1"}});
  ASSERT_EQ(onFirst.status(), 200);
  StreamReader onOther(other.port(), id, free.jwt, {{"X-Anonymily-Relay", "relay-1"}});
  ASSERT_EQ(onOther.status(), 200);

  // The first edge learns it at its next renewal of the lease, at most 10 s on.
  Frame frame;
  ASSERT_TRUE(onFirst.nextNamed(frame, 15000));
  EXPECT_EQ(frame.event, "replaced");
  EXPECT_TRUE(onFirst.closedWithin(5000));
  EXPECT_FALSE(onOther.closedWithin(200));
}

// Edges share events only through MySQL: a second edge on one SQLite file is refused.
INSTANTIATE_TEST_SUITE_P(Backends, LeaseHandoverTest, ::testing::Values(Backend::kMySql),
                         backendName);

}  // namespace
}  // namespace anm::test
