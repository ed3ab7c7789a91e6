// tests/integration/disabled_account_test.cpp: a disabled account's hooks take no webhooks, on
// SQLite and on the test MySQL server, and take them again once it is enabled.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "backend_env.h"
#include "core/edge/admin.h"

namespace anm::test {
namespace {

class DisabledAccountTest : public BackendAccountsTest {
 protected:
  /// Runs `anonymily-edge admin` on the edge's store, as an operator would.
  void admin(const std::vector<std::string>& command) {
    std::vector<std::string> args = {"--data-dir", dir_ + "/data"};
    if (!adminStore_.empty()) args.insert(args.end(), {"--store", adminStore_});
    args.insert(args.end(), command.begin(), command.end());
    std::ostringstream out;
    std::ostringstream err;
    ASSERT_EQ(edge::runAdmin(args, out, err), 0) << err.str();
  }
};

TEST_P(DisabledAccountTest, HooksOfADisabledAccountAnswerAsUnknownHooksAndStoreNothing) {
  startOnBackend();
  if (HasFatalFailure() || IsSkipped()) return;
  const Account acme = createAccount("acme", "pro");
  const std::string id = createNamedHook(acme, "main")->getValue<std::string>("id");
  ASSERT_EQ(ingest(id, "before").status, 200);
  const Response unknown = ingest("no-such-hook", "x");
  ASSERT_EQ(unknown.status, 404);

  // Edges read an account at most once a second for ingest; what arrives meanwhile is stored.
  admin({"accounts", "disable", "acme"});
  int storedMeanwhile = 0;
  Response refused;
  ASSERT_TRUE(eventually([&] {
    refused = ingest(id, "while disabled");
    storedMeanwhile += refused.status == 200;
    return refused.status != 200;
  }));
  EXPECT_EQ(refused.status, unknown.status);
  EXPECT_EQ(refused.body, unknown.body);
  EXPECT_EQ(ingest(id + "/suffix", "again").status, 404);
  EXPECT_EQ(ingest(id, "and again").status, 404);

  // Enabled again, the hook takes webhooks again, and nothing refused was kept.
  admin({"accounts", "enable", "acme"});
  ASSERT_TRUE(eventually([&] { return ingest(id, "after").status == 200; }));
  const std::string jwt = exchange(acme.pat);
  const auto events =
      parseObject(call("GET", "/api/v1/hooks/" + id + "/events", jwt).body)->getArray("events");
  ASSERT_EQ(events->size(), static_cast<size_t>(2 + storedMeanwhile));
  EXPECT_EQ(
      call("GET",
           "/api/v1/hooks/" + id + "/events/" +
               std::to_string(events->getObject(events->size() - 1)->getValue<int64_t>("id")) +
               "/body",
           jwt)
          .body,
      "after");
}

INSTANTIATE_TEST_SUITE_P(Backends, DisabledAccountTest, kBackends, backendName);

}  // namespace
}  // namespace anm::test
