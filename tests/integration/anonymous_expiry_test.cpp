// tests/integration/anonymous_expiry_test.cpp: anonymous hooks live while a relay is connected.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "accounts_env.h"

namespace anm::test {
namespace {

using std::chrono::milliseconds;

constexpr std::chrono::seconds kTtl{2};

class AnonymousExpiryTest : public AccountsTest {
 protected:
  void SetUp() override {
    AccountsTest::SetUp();
    startServer([](edge::EdgeConfig& config) { config.anonymousTtl = kTtl; });
    const auto created = request(port_, "POST", "/api/v1/hooks", "{}");
    ASSERT_EQ(created.status, 201);
    id_ = jsonField(created.body, "id");
    token_ = jsonField(created.body, "token");
  }

  std::string id_;
  std::string token_;
};

TEST_F(AnonymousExpiryTest, HookWithoutStreamIsGoneAfterItsTtl) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(ingest(id_, "early").status, 200);

  // Gone for ingest and for the API, with the answer of a hook that never existed.
  ASSERT_TRUE(eventually([&] { return ingest(id_, "late").status == 404; }, 8000));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(1500));
  const auto view = call("GET", "/api/v1/hooks/" + id_, token_);
  EXPECT_EQ(view.status, 404);
  EXPECT_EQ(jsonField(view.body, "error"), "unknown hook");
  StreamReader stream(port_, id_, token_);
  EXPECT_EQ(stream.status(), 404);
}

TEST_F(AnonymousExpiryTest, OpenStreamKeepsTheHookAliveUntilTtlAfterItCloses) {
  auto stream = std::make_unique<StreamReader>(port_, id_, token_);
  ASSERT_EQ(stream->status(), 200);

  // Well past the ttl, the hook takes webhooks and streams them.
  std::this_thread::sleep_for(kTtl * 2);
  const auto r = ingest(id_, "while connected");
  ASSERT_EQ(r.status, 200) << r.body;
  Frame frame;
  ASSERT_TRUE(stream->next(frame));
  EXPECT_EQ(std::to_string(frame.id), jsonField(r.body, "id"));

  // Closing starts the ttl again: still there at once, gone a ttl later.
  stream->close();
  stream.reset();
  const auto closed = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(ingest(id_, "just after").status, 200);
  ASSERT_TRUE(eventually([&] { return ingest(id_, "later").status == 404; }, 8000));
  EXPECT_GE(std::chrono::steady_clock::now() - closed, milliseconds(1500));
}

}  // namespace
}  // namespace anm::test
