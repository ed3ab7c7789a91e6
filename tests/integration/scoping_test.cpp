// tests/integration/scoping_test.cpp: no hook route answers anyone but the hook's owner.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "accounts_env.h"

namespace anm::test {
namespace {

constexpr char kUnknownId[] = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
// An event id no hook has.
constexpr char kUnknownEventId[] = "999999999";

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
      {"PATCH", "", R"({"standard_webhooks":false})"},
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

// The routes of one event of a hook, for the event `eventId`: those that name it in the path,
// and the bulk report that names it in the body.
std::vector<Route> eventRoutes(const std::string& eventId) {
  const std::string e = "/events/" + eventId;
  return {
      {"GET", e, ""},
      {"GET", e + "/body", ""},
      {"POST", e + "/deliveries", R"({"relay":"r1","status":200})"},
      {"POST", e + "/replay", ""},
      {"POST", "/deliveries", R"({"deliveries":[{"event":)" + eventId + R"(,"relay":"r1"}]})"},
  };
}

class ScopingTest : public AccountsTest {
 protected:
  // A named hook of `owner` that verifies Standard Webhooks senders, and its signing secret.
  std::pair<std::string, std::string> createSignedHook(const Account& owner) {
    const auto hook = createNamedHook(owner, "main", R"("standard_webhooks":true)");
    return {hook->getValue<std::string>("id"), hook->getValue<std::string>("signing_secret")};
  }

  // Stores `body` on `hookId` as a sender holding `secret` would send it; returns its id.
  std::string ingestSigned(const std::string& hookId, const std::string& secret,
                           const std::string& body) {
    const auto stored =
        ingest(hookId, body,
               standardWebhooksFields(secret, "msg_" + body.substr(0, 8), nowSeconds(), body));
    EXPECT_EQ(stored.status, 200) << stored.body;
    return jsonField(stored.body, "id");
  }

  // The hook still verifies with the secret its owner was given, and nothing moved it: the
  // store holds the same secret and no previous one (a rotation would keep the old secret
  // verifying for 24 h, so verification alone would not show it).
  void expectSigningSecretUnchanged(const std::string& hookId, const std::string& secret) {
    const std::string body = R"({"type":"check.after"})";
    const auto good =
        ingest(hookId, body, standardWebhooksFields(secret, "msg_check", nowSeconds(), body));
    EXPECT_EQ(good.status, 200) << good.body;
    const std::string forged = "whsec_" + base64Encode(std::string(32, 'f'));
    const auto bad =
        ingest(hookId, body, standardWebhooksFields(forged, "msg_forged", nowSeconds(), body));
    EXPECT_EQ(bad.status, 401) << "the hook no longer verifies: " << bad.body;

    const auto stored = openStore()->findHook(hookId);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->signingSecret, secret);
    EXPECT_EQ(stored->previousSigningSecret, "");
    EXPECT_EQ(stored->previousValidUntilMs, 0);
    EXPECT_TRUE(stored->standardWebhooks);
  }

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
  const auto [hookId, secret] = createSignedHook(a);
  const std::string eventId = ingestSigned(hookId, secret, R"({"secret":"of alpha"})");

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

  // Nothing beta tried changed alpha's hook or its event: verification is still on (beta's
  // PATCH would have turned it off), the secret is the one alpha was given (beta asked for a
  // new one), and there is no report and no replay.
  const auto after = parseObject(call("GET", "/api/v1/hooks/" + hookId, a.jwt).body);
  EXPECT_TRUE(after->getValue<bool>("standard_webhooks"));
  const auto events = parseObject(call("GET", "/api/v1/hooks/" + hookId + "/events", a.jwt).body);
  ASSERT_EQ(events->getArray("events")->size(), 1u);
  EXPECT_EQ(events->getArray("events")->getObject(0)->getValue<int>("deliveries_total"), 0);
  expectSigningSecretUnchanged(hookId, secret);
}

TEST_F(ScopingTest, AnotherAccountsEventIdOnItsOwnHookIsAnUnknownEvent) {
  startServer();
  const Account a = createAccount("alpha", "pro");
  const Account b = createAccount("beta", "pro");
  const auto [hookId, secret] = createSignedHook(a);
  const std::string body = R"({"type":"of.alpha","card":"4242-alpha-only"})";
  const std::string eventId = ingestSigned(hookId, secret, body);
  ASSERT_FALSE(eventId.empty());

  // Beta's own hook, with an event of its own: the refusals below are about the event id.
  const std::string ownHook = createNamedHook(b, "main")->getValue<std::string>("id");
  const auto own = ingest(ownHook, "beta's own");
  ASSERT_EQ(own.status, 200) << own.body;
  const std::string ownEvent = jsonField(own.body, "id");
  ASSERT_EQ(call("GET", "/api/v1/hooks/" + ownHook + "/events/" + ownEvent + "/body", b.jwt).body,
            "beta's own");

  // Alpha's event id through beta's hook answers exactly what an id nobody has answers: the
  // event routes 404 "unknown event", the bulk report its 400 for an event the hook lacks.
  const auto routes = eventRoutes(eventId);
  const auto unknownRoutes = eventRoutes(kUnknownEventId);
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& route = routes[i];
    const Route& unknownRoute = unknownRoutes[i];
    const std::string what = route.method + " " + route.suffix;
    const auto answer =
        call(route.method, "/api/v1/hooks/" + ownHook + route.suffix, b.jwt, route.body);
    const auto unknown = call(unknownRoute.method, "/api/v1/hooks/" + ownHook + unknownRoute.suffix,
                              b.jwt, unknownRoute.body);
    EXPECT_EQ(answerBytes(answer), answerBytes(unknown)) << what;
    if (route.suffix == "/deliveries") {
      EXPECT_EQ(answer.status, 400) << what;
    } else {
      EXPECT_EQ(answer.status, 404) << what;
      EXPECT_EQ(jsonField(answer.body, "error"), "unknown event") << what;
    }
    EXPECT_EQ(answer.body.find("alpha-only"), std::string::npos) << what;
    EXPECT_EQ(answer.body.find(hookId), std::string::npos) << what;
  }

  // Nothing reached alpha's event: no report, no replay on either hook, no read on record.
  const auto events = parseObject(call("GET", "/api/v1/hooks/" + hookId + "/events", a.jwt).body);
  ASSERT_EQ(events->getArray("events")->size(), 1u);
  EXPECT_EQ(events->getArray("events")->getObject(0)->getValue<int>("deliveries_total"), 0);
  const auto ownEvents =
      parseObject(call("GET", "/api/v1/hooks/" + ownHook + "/events", b.jwt).body);
  ASSERT_EQ(ownEvents->getArray("events")->size(), 1u);
  for (const Account* owner : {&a, &b}) {
    const auto entries = auditEntries(*owner);
    for (size_t i = 0; i < entries->size(); ++i) {
      const auto entry = entries->getObject(static_cast<unsigned>(i));
      EXPECT_NE(std::to_string(entry->getValue<int64_t>("event")), eventId)
          << owner->name << ": " << entry->getValue<std::string>("action");
      EXPECT_NE(entry->getValue<std::string>("actor"), "member:" + (owner == &a ? b : a).memberId)
          << owner->name;
    }
  }
  expectSigningSecretUnchanged(hookId, secret);
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
