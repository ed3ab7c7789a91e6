// tests/integration/scoping_test.cpp: no hook route answers anyone but the hook's owner.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "accounts_env.h"

namespace anm::test {
namespace {

constexpr char kUnknownId[] = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

struct Route {
  std::string method;
  std::string suffix;  ///< after /api/v1/hooks/<id>
  std::string body;
};

// Every route under /api/v1/hooks/<id>, for the event `eventId`.
std::vector<Route> hookRoutes(const std::string& eventId) {
  const std::string e = "/events/" + eventId;
  return {
      {"GET", "", ""},
      {"PATCH", "", R"({"standard_webhooks":true})"},
      {"GET", "/events", ""},
      {"GET", e, ""},
      {"GET", e + "/body", ""},
      {"POST", e + "/deliveries", R"({"relay":"r1","status":200})"},
      {"POST", "/deliveries", R"({"deliveries":[{"event":)" + eventId + R"(,"relay":"r1"}]})"},
      {"POST", e + "/replay", ""},
      {"GET", "/stream", ""},
      {"POST", "/signing-secret", ""},
  };
}

// What a refusal may not vary in: status, body and every field but the date.
std::string answerBytes(const Response& r) {
  std::string out = std::to_string(r.status) + "\n";
  for (const auto& [name, value] : r.headers) {
    if (name == "Date") continue;
    out += name + ": " + value + "\n";
  }
  return out + "\n" + r.body;
}

class ScopingTest : public AccountsTest {
 protected:
  // Walks every route of `hookId` with `bearer` and expects exactly the answer the same route
  // gets for a hook that does not exist.
  void expectLikeUnknown(const std::string& hookId, const std::string& eventId,
                         const std::string& bearer, const std::string& who) {
    for (const auto& route : hookRoutes(eventId)) {
      const auto answer =
          call(route.method, "/api/v1/hooks/" + hookId + route.suffix, bearer, route.body);
      const auto unknown =
          call(route.method, "/api/v1/hooks/" + std::string(kUnknownId) + route.suffix, bearer,
               route.body);
      EXPECT_EQ(answer.status, 404) << who << " " << route.method << " " << route.suffix;
      EXPECT_EQ(jsonField(answer.body, "error"), "unknown hook") << who << " " << route.suffix;
      EXPECT_EQ(answerBytes(answer), answerBytes(unknown)) << who << " " << route.suffix;
      EXPECT_EQ(answer.body.find(hookId), std::string::npos) << who << " " << route.suffix;
    }
  }
};

TEST_F(ScopingTest, AnotherAccountGetsTheUnknownHookAnswerOnEveryRoute) {
  startServer();
  const Account a = createAccount("alpha", "pro");
  const Account b = createAccount("beta", "pro");
  const auto hook = createNamedHook(a, "main");
  const std::string hookId = hook->getValue<std::string>("id");
  const auto stored = ingest(hookId, R"({"secret":"of alpha"})");
  ASSERT_EQ(stored.status, 200) << stored.body;
  const std::string eventId = jsonField(stored.body, "id");

  // The owner reaches every one of them: the refusals below are about who asks.
  ASSERT_EQ(call("GET", "/api/v1/hooks/" + hookId, a.jwt).status, 200);
  ASSERT_EQ(call("GET", "/api/v1/hooks/" + hookId + "/events/" + eventId + "/body", a.jwt).body,
            R"({"secret":"of alpha"})");

  expectLikeUnknown(hookId, eventId, b.jwt, "account beta");
  expectLikeUnknown(hookId, eventId, "", "no token");

  // Beta's list has none of alpha's hooks, also when asked by name.
  const auto list = call("GET", "/api/v1/hooks", b.jwt);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(parseObject(list.body)->getArray("hooks")->size(), 0u);
  EXPECT_EQ(list.body.find(hookId), std::string::npos);
  const auto byName = call("GET", "/api/v1/hooks?name=main", b.jwt);
  EXPECT_EQ(parseObject(byName.body)->getArray("hooks")->size(), 0u);

  // Nothing beta tried changed alpha's hook or its event.
  const auto after = parseObject(call("GET", "/api/v1/hooks/" + hookId, a.jwt).body);
  EXPECT_FALSE(after->getValue<bool>("standard_webhooks"));
  const auto events = parseObject(call("GET", "/api/v1/hooks/" + hookId + "/events", a.jwt).body);
  ASSERT_EQ(events->getArray("events")->size(), 1u);
  EXPECT_EQ(events->getArray("events")->getObject(0)->getValue<int>("deliveries_total"), 0);
}

TEST_F(ScopingTest, OwnerTokenDoesNotReachAnotherAccountsHook) {
  startServer();
  const Account a = createAccount("alpha", "pro");
  const Account b = createAccount("beta", "pro");
  const std::string hookId = createNamedHook(b, "beta-hook")->getValue<std::string>("id");
  const auto stored = ingest(hookId, "x");
  ASSERT_EQ(stored.status, 200);
  expectLikeUnknown(hookId, jsonField(stored.body, "id"), a.jwt, "account alpha");
}

TEST_F(ScopingTest, RelayTokenReachesOnlyItsOwnAnonymousHook) {
  startServer();
  const Account a = createAccount("alpha", "pro");
  const auto first = request(port_, "POST", "/api/v1/hooks", "{}");
  const auto second = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(first.status, 201);
  ASSERT_EQ(second.status, 201);
  const std::string firstId = jsonField(first.body, "id");
  const std::string secondToken = jsonField(second.body, "token");
  const auto stored = ingest(firstId, "y");
  ASSERT_EQ(stored.status, 200);
  const std::string eventId = jsonField(stored.body, "id");

  ASSERT_EQ(call("GET", "/api/v1/hooks/" + firstId, jsonField(first.body, "token")).status, 200);
  expectLikeUnknown(firstId, eventId, secondToken, "relay token of another hook");
  expectLikeUnknown(firstId, eventId, a.jwt, "an account's access token");

  // A relay token never opens a named hook, whatever it is.
  const std::string named = createNamedHook(a, "main")->getValue<std::string>("id");
  const auto namedEvent = ingest(named, "z");
  expectLikeUnknown(named, jsonField(namedEvent.body, "id"), secondToken, "relay token");
}

TEST_F(ScopingTest, AccountRoutesNeedASignedInMember) {
  startServer();
  const auto anonymous = request(port_, "POST", "/api/v1/hooks", "{}");
  const std::string relayToken = jsonField(anonymous.body, "token");
  for (const std::string& bearer : {std::string(), relayToken}) {
    const auto list = call("GET", "/api/v1/hooks", bearer);
    EXPECT_EQ(list.status, 401) << list.body;
    EXPECT_EQ(jsonField(list.body, "error"), "access token expired or invalid; sign in again");
  }
}

}  // namespace
}  // namespace anm::test
