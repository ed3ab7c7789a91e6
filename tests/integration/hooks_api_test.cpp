// tests/integration/hooks_api_test.cpp: named hooks, plans, relays, custom responses, audit.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/URI.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "accounts_env.h"

namespace anm::test {
namespace {

class HooksApiTest : public AccountsTest {};

TEST_F(HooksApiTest, NamedHookShowsItsSecretOnceAndHasNoRelayToken) {
  startServer();
  const Account a = createAccount("alpha", "free");
  const auto created = createNamedHook(a, "main", R"("standard_webhooks":true)");
  const std::string id = created->getValue<std::string>("id");
  EXPECT_EQ(created->getValue<std::string>("name"), "main");
  EXPECT_EQ(created->getValue<std::string>("account"), a.id);
  EXPECT_TRUE(created->getValue<bool>("standard_webhooks"));
  EXPECT_EQ(created->getValue<std::string>("signing_secret").rfind("whsec_", 0), 0u);
  EXPECT_FALSE(created->has("token"));

  const auto view = call("GET", "/api/v1/hooks/" + id, a.jwt);
  ASSERT_EQ(view.status, 200) << view.body;
  const auto hook = parseObject(view.body);
  EXPECT_FALSE(hook->has("signing_secret"));
  EXPECT_FALSE(hook->has("token"));
  EXPECT_EQ(hook->getValue<int>("relays"), 0);
  EXPECT_EQ(hook->getValue<int64_t>("expires_at_ms"), 0);
  EXPECT_TRUE(hook->isNull("custom_response"));

  const auto byName = parseObject(call("GET", "/api/v1/hooks?name=main", a.jwt).body);
  ASSERT_EQ(byName->getArray("hooks")->size(), 1u);
  EXPECT_EQ(byName->getArray("hooks")->getObject(0)->getValue<std::string>("id"), id);
  const auto none = parseObject(call("GET", "/api/v1/hooks?name=other", a.jwt).body);
  EXPECT_EQ(none->getArray("hooks")->size(), 0u);
}

TEST_F(HooksApiTest, NamesAreRequiredCheckedAndUniquePerAccount) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  EXPECT_EQ(call("POST", "/api/v1/hooks", pro.jwt, "{}").status, 400);
  EXPECT_EQ(call("POST", "/api/v1/hooks", pro.jwt, R"({"name":"Bad Name"})").status, 400);
  EXPECT_EQ(
      call("POST", "/api/v1/hooks", pro.jwt, "{\"name\":\"" + std::string(65, 'a') + "\"}").status,
      400);
  createNamedHook(pro, std::string(64, 'a'));
  createNamedHook(pro, "main");
  const auto taken = call("POST", "/api/v1/hooks", pro.jwt, R"({"name":"main"})");
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(jsonField(taken.body, "error"), "a hook named main exists");

  // Another account may use the name; an anonymous hook may not have one.
  const Account other = createAccount("beta", "free");
  createNamedHook(other, "main");
  EXPECT_EQ(request(port_, "POST", "/api/v1/hooks", R"({"name":"main"})").status, 400);
  EXPECT_EQ(call("POST", "/api/v1/hooks", pro.jwt,
                 R"({"name":"sw","provider":"hmacfix","secret":"k","standard_webhooks":true})")
                .status,
            400);
}

TEST_F(HooksApiTest, FreePlanAllowsOneNamedHook) {
  startServer();
  const Account free = createAccount("alpha", "free");
  createNamedHook(free, "one");
  const auto second = call("POST", "/api/v1/hooks", free.jwt, R"({"name":"two"})");
  EXPECT_EQ(second.status, 403) << second.body;
  EXPECT_EQ(jsonField(second.body, "plan"), "free");
  EXPECT_NE(jsonField(second.body, "error").find("needs the pro plan"), std::string::npos);

  const Account pro = createAccount("beta", "pro");
  createNamedHook(pro, "one");
  createNamedHook(pro, "two");
  EXPECT_EQ(parseObject(call("GET", "/api/v1/hooks", pro.jwt).body)->getArray("hooks")->size(), 2u);
}

TEST_F(HooksApiTest, FreePlanAllowsOneLiveRelayAndTheSameRelayMayReconnect) {
  startServer();
  const Account free = createAccount("alpha", "free");
  const std::string id = createNamedHook(free, "main")->getValue<std::string>("id");

  StreamReader first(port_, id, free.jwt, {{"X-Anonymily-Relay", "laptop-1"}});
  ASSERT_EQ(first.status(), 200);
  StreamReader refused(port_, id, free.jwt, {{"X-Anonymily-Relay", "laptop-2"}});
  EXPECT_EQ(refused.status(), 409);
  EXPECT_EQ(jsonField(refused.body(), "plan"), "free");
  const std::string error = jsonField(refused.body(), "error");
  EXPECT_EQ(error.rfind("the free plan allows one live relay per hook and another relay is "
                        "connected since 20",
                        0),
            0u)
      << error;
  EXPECT_EQ(error.find("laptop-1"), std::string::npos) << "the refusal tells the relay's id";

  // The relay that holds the lease gets back in, even before its old stream is seen closed,
  // and that old stream ends.
  StreamReader again(port_, id, free.jwt, {{"X-Anonymily-Relay", "laptop-1"}});
  EXPECT_EQ(again.status(), 200);
  EXPECT_TRUE(first.closedWithin(5000));
  const auto view = parseObject(call("GET", "/api/v1/hooks/" + id, free.jwt).body);
  EXPECT_EQ(view->getValue<int>("relays"), 1);

  // Once laptop-1's stream is gone its lease is given back.
  again.close();
  EXPECT_TRUE(eventually([&] {
    StreamReader next(port_, id, free.jwt, {{"X-Anonymily-Relay", "laptop-2"}});
    return next.status() == 200;
  }));
}

TEST_F(HooksApiTest, AStreamWithTheConnectedRelaysIdReplacesItInsteadOfJoiningIt) {
  startServer();
  const Account free = createAccount("alpha", "free");
  const std::string id = createNamedHook(free, "main")->getValue<std::string>("id");
  StreamReader holder(port_, id, free.jwt, {{"X-Anonymily-Relay", "7dba35e5221cd8da"}});
  ASSERT_EQ(holder.status(), 200);

  // A second client naming the same relay is let in, and the first stream is told and closed,
  // so that the hook never has two live streams.
  StreamReader second(port_, id, free.jwt, {{"X-Anonymily-Relay", "7dba35e5221cd8da"}});
  ASSERT_EQ(second.status(), 200);
  Frame frame;
  ASSERT_TRUE(holder.nextNamed(frame));
  EXPECT_EQ(frame.event, "replaced");
  EXPECT_EQ(jsonField(frame.data, "plan"), "free");
  EXPECT_NE(jsonField(frame.data, "error").find("another stream took this hook's live relay"),
            std::string::npos)
      << frame.data;
  EXPECT_TRUE(holder.closedWithin(5000));

  const auto stored = ingest(id, "only one stream gets this");
  ASSERT_EQ(stored.status, 200);
  ASSERT_TRUE(second.next(frame));
  EXPECT_EQ(std::to_string(frame.id), jsonField(stored.body, "id"));
  EXPECT_FALSE(holder.next(frame, 500));
}

TEST_F(HooksApiTest, ProPlanRelaysWithDifferentIdsEachGetEveryEvent) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  StreamReader one(port_, id, pro.jwt, {{"X-Anonymily-Relay", "r-one"}});
  StreamReader two(port_, id, pro.jwt, {{"X-Anonymily-Relay", "r-two"}});
  ASSERT_EQ(one.status(), 200);
  ASSERT_EQ(two.status(), 200);

  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const auto r = ingest(id, "event " + std::to_string(i));
    ASSERT_EQ(r.status, 200) << r.body;
    ids.push_back(jsonField(r.body, "id"));
  }
  for (StreamReader* reader : {&one, &two}) {
    for (const auto& expected : ids) {
      Frame frame;
      ASSERT_TRUE(reader->next(frame));
      EXPECT_EQ(std::to_string(frame.id), expected);
      EXPECT_EQ(frame.event, "webhook");
    }
  }
}

TEST_F(HooksApiTest, TwoMembersOfAProTeamStreamOneHookAtOnceAndEachGetsEveryEventInOrder) {
  startServer();
  const Account owner = createAccount("alpha", "pro");
  const Account bob = addMember(owner, "bob");
  ASSERT_FALSE(bob.jwt.empty());
  ASSERT_NE(bob.memberId, owner.memberId);
  const std::string id = createNamedHook(owner, "main")->getValue<std::string>("id");

  // Each member relays from a machine of their own: own access token, own relay id, both
  // streams open before the first event.
  StreamReader ownerStream(port_, id, owner.jwt, {{"X-Anonymily-Relay", "owner-laptop"}});
  StreamReader bobStream(port_, id, bob.jwt, {{"X-Anonymily-Relay", "bob-laptop"}});
  ASSERT_EQ(ownerStream.status(), 200) << ownerStream.body();
  ASSERT_EQ(bobStream.status(), 200) << bobStream.body();
  EXPECT_EQ(parseObject(call("GET", "/api/v1/hooks/" + id, bob.jwt).body)->getValue<int>("relays"),
            2);

  // Bodies that differ in every event, with bytes that are not text.
  std::vector<std::pair<int64_t, std::string>> sent;
  for (int i = 0; i < 12; ++i) {
    const std::string body = "event " + std::to_string(i) + std::string("\0\xff\r\n", 4);
    const auto r = ingest(id, body);
    ASSERT_EQ(r.status, 200) << r.body;
    sent.emplace_back(std::stoll(jsonField(r.body, "id")), body);
  }

  // Neither stream shares out the events with the other: each gets all of them, in order.
  for (auto* member : {&ownerStream, &bobStream}) {
    const std::string who = member == &ownerStream ? "owner" : "bob";
    for (const auto& [eventId, body] : sent) {
      Frame frame;
      ASSERT_TRUE(member->next(frame)) << who << " missed event " << eventId;
      EXPECT_EQ(frame.id, eventId) << who;
      EXPECT_EQ(frame.event, "webhook") << who;
      EXPECT_EQ(frameBody(frame), body) << who << " event " << eventId;
    }
  }

  // Each member's stream is on the record under that member.
  std::vector<std::string> openedBy;
  const auto entries = auditEntries(owner);
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("action") != "stream.open") continue;
    openedBy.push_back(entry->getValue<std::string>("actor"));
  }
  EXPECT_EQ(openedBy,
            (std::vector<std::string>{"member:" + owner.memberId, "member:" + bob.memberId}));
}

TEST_F(HooksApiTest, RelayHeaderMustBeAShortToken) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  StreamReader bad(port_, id, pro.jwt, {{"X-Anonymily-Relay", "has space"}});
  EXPECT_EQ(bad.status(), 400);
  StreamReader longer(port_, id, pro.jwt, {{"X-Anonymily-Relay", std::string(65, 'r')}});
  EXPECT_EQ(longer.status(), 400);
  StreamReader longest(port_, id, pro.jwt, {{"X-Anonymily-Relay", std::string(64, 'r')}});
  EXPECT_EQ(longest.status(), 200);
}

TEST_F(HooksApiTest, CustomResponseIsProOnlyAndAnswersSendersExactly) {
  startServer();
  const std::string response =
      R"({"custom_response":{"status":202,"headers":[["X-Thanks","yes"],)"
      R"(["Content-Type","text/plain"]],"body":"got it"}})";

  const Account free = createAccount("alpha", "free");
  const std::string freeHook = createNamedHook(free, "main")->getValue<std::string>("id");
  const auto refused = call("PATCH", "/api/v1/hooks/" + freeHook, free.jwt, response);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(jsonField(refused.body, "plan"), "free");
  const auto anonymous = request(port_, "POST", "/api/v1/hooks", response);
  EXPECT_EQ(anonymous.status, 403) << anonymous.body;

  const Account pro = createAccount("beta", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  const auto patched = call("PATCH", "/api/v1/hooks/" + id, pro.jwt, response);
  ASSERT_EQ(patched.status, 200) << patched.body;
  const auto shown = parseObject(patched.body)->getObject("custom_response");
  EXPECT_EQ(shown->getValue<int>("status"), 202);
  EXPECT_EQ(shown->getValue<std::string>("body"), "got it");

  const auto answer = ingest(id, "payload bytes");
  EXPECT_EQ(answer.status, 202);
  EXPECT_EQ(answer.header("X-Thanks"), "yes");
  EXPECT_EQ(answer.header("Content-Type"), "text/plain");
  EXPECT_EQ(answer.body, "got it");

  // The sender got the hook's answer, and the webhook is stored all the same.
  const auto events = parseObject(call("GET", "/api/v1/hooks/" + id + "/events", pro.jwt).body);
  ASSERT_EQ(events->getArray("events")->size(), 1u);
  const std::string eventId =
      std::to_string(events->getArray("events")->getObject(0)->getValue<int64_t>("id"));
  EXPECT_EQ(call("GET", "/api/v1/hooks/" + id + "/events/" + eventId + "/body", pro.jwt).body,
            "payload bytes");

  // null puts the default answer back.
  ASSERT_EQ(call("PATCH", "/api/v1/hooks/" + id, pro.jwt, R"({"custom_response":null})").status,
            200);
  EXPECT_EQ(ingest(id, "again").status, 200);
}

TEST_F(HooksApiTest, CustomResponseLimits) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string target =
      "/api/v1/hooks/" + createNamedHook(pro, "main")->getValue<std::string>("id");
  const auto patch = [&](const std::string& custom) {
    return call("PATCH", target, pro.jwt, "{\"custom_response\":" + custom + "}").status;
  };
  EXPECT_EQ(patch(R"({"status":199})"), 400);
  EXPECT_EQ(patch(R"({"status":300})"), 400);
  EXPECT_EQ(patch(R"({"status":299})"), 200);
  EXPECT_EQ(patch(R"({"headers":[["Content-Length","3"]]})"), 400);
  EXPECT_EQ(patch(R"({"headers":[["transfer-encoding","chunked"]]})"), 400);
  EXPECT_EQ(patch(R"({"headers":[["Connection","close"]]})"), 400);
  EXPECT_EQ(patch(R"({"headers":[["Bad Name","v"]]})"), 400);
  EXPECT_EQ(patch(R"({"headers":[["X-A","line\nbreak"]]})"), 400);
  EXPECT_EQ(patch(R"({"other":1})"), 400);

  std::string twenty = "[";
  for (int i = 0; i < 20; ++i) twenty += (i ? "," : "") + std::string("[\"X-H\",\"v\"]");
  EXPECT_EQ(patch(R"({"headers":)" + twenty + "]}"), 200);
  EXPECT_EQ(patch(R"({"headers":)" + twenty + R"(,["X-H","v"]]})"), 400);

  EXPECT_EQ(patch("{\"body\":\"" + std::string(64 * 1024, 'b') + "\"}"), 200);
  EXPECT_EQ(patch("{\"body\":\"" + std::string(64 * 1024 + 1, 'b') + "\"}"), 400);
}

// What an answer on /h/... must carry, whoever wrote its body (#4).
void expectSandboxed(const Response& r, const std::string& what) {
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << what;
  EXPECT_EQ(r.header("Content-Security-Policy"), "sandbox; default-src 'none'") << what;
}

TEST_F(HooksApiTest, IngestAnswersCannotActAsTheDashboardsOrigin) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  const std::string page =
      R"(<script>fetch('/api/v1/tokens',{method:'POST',)"
      R"(headers:{'X-Anonymily-CSRF':'1'}})</script>)";

  // A page of the account's own making is served, but as a sandboxed document: no script runs
  // in it and its origin is opaque, so the dashboard's session cookie is out of its reach.
  const auto patched = call(
      "PATCH", "/api/v1/hooks/" + id, pro.jwt,
      R"({"custom_response":{"headers":[["Content-Type","text/html"]],"body":")" + page + R"("}})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  const auto html = ingest(id, "{}");
  EXPECT_EQ(html.status, 200);
  EXPECT_EQ(html.header("Content-Type"), "text/html");
  EXPECT_EQ(html.body, page);
  expectSandboxed(html, "custom response");

  // Without a Content-Type of its own the body is text, never sniffed.
  ASSERT_EQ(call("PATCH", "/api/v1/hooks/" + id, pro.jwt,
                 R"({"custom_response":{"body":")" + page + R"("}})")
                .status,
            200);
  const auto untyped = ingest(id, "{}");
  EXPECT_EQ(untyped.header("Content-Type"), "text/plain; charset=utf-8");
  expectSandboxed(untyped, "custom response without a type");

  // The edge's own answers on the ingest routes, and a plugin's handshake answer.
  ASSERT_EQ(call("PATCH", "/api/v1/hooks/" + id, pro.jwt, R"({"custom_response":null})").status,
            200);
  expectSandboxed(ingest(id, "{}"), "default answer");
  expectSandboxed(ingest("nosuchhook", "{}"), "unknown hook");
  expectSandboxed(request(port_, "GET", "/h/"), "no hook id");
  const auto created = call("POST", "/api/v1/hooks", pro.jwt,
                            R"({"name":"signed","provider":"hmacfix","secret":"s3cret"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto handshake =
      ingest(jsonField(created.body, "id"), "{}", {{"X-Handshake", "<b>hello</b>"}});
  EXPECT_EQ(handshake.body, "<b>hello</b>");
  expectSandboxed(handshake, "plugin handshake");
  const auto invalid = ingest(jsonField(created.body, "id"), "{}",
                              {{"X-Signature-256", "sha256=" + std::string(64, '0')}});
  EXPECT_EQ(invalid.status, 401);
  expectSandboxed(invalid, "invalid signature");

  // The API's answers and the dashboard's files are not sniffed either.
  EXPECT_EQ(call("GET", "/api/v1/hooks", pro.jwt).header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(request(port_, "GET", "/").header("X-Content-Type-Options"), "nosniff");
}

TEST_F(HooksApiTest, CustomResponseMayNotSetWhatTheEdgeOrTheBrowsersOriginOwns) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string target =
      "/api/v1/hooks/" + createNamedHook(pro, "main")->getValue<std::string>("id");
  for (const std::string name : {"Set-Cookie",
                                 "set-cookie2",
                                 "Content-Security-Policy",
                                 "Content-Security-Policy-Report-Only",
                                 "X-Content-Type-Options",
                                 "Refresh",
                                 "Clear-Site-Data",
                                 "Access-Control-Allow-Origin",
                                 "access-control-allow-credentials",
                                 "Strict-Transport-Security",
                                 "Alt-Svc",
                                 "NEL",
                                 "Report-To",
                                 "Date",
                                 "Server",
                                 "Upgrade",
                                 "Keep-Alive",
                                 "Trailer",
                                 "Proxy-Authenticate",
                                 "Proxy-Connection"}) {
    const auto r = call("PATCH", target, pro.jwt,
                        R"({"custom_response":{"headers":[[")" + name + R"(","x=y; Path=/"]]}})");
    EXPECT_EQ(r.status, 400) << name << ": " << r.body;
    EXPECT_EQ(jsonField(r.body, "error").rfind("custom_response may not set " + name + ": ", 0), 0u)
        << r.body;
  }

  // Nothing was stored by the refusals; ordinary fields still go through.
  const auto hook = parseObject(call("GET", target, pro.jwt).body);
  EXPECT_TRUE(hook->isNull("custom_response"));
  EXPECT_EQ(
      call("PATCH", target, pro.jwt,
           R"({"custom_response":{"headers":[["Cache-Control","no-store"],["X-Set-Cookie","a"]]}})")
          .status,
      200);
}

TEST_F(HooksApiTest, ReadingAnEventIsAuditedForTheOwner) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  const auto stored = ingest(id, "secret contents");
  const std::string eventId = jsonField(stored.body, "id");
  ASSERT_EQ(call("GET", "/api/v1/hooks/" + id + "/events/" + eventId, pro.jwt).status, 200);
  ASSERT_EQ(call("GET", "/api/v1/hooks/" + id + "/events/" + eventId + "/body", pro.jwt).status,
            200);

  const auto log = call("GET", "/api/v1/audit", pro.jwt);
  ASSERT_EQ(log.status, 200) << log.body;
  const auto entries = parseObject(log.body)->getArray("entries");
  std::vector<std::string> details;
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("action") != "event.read") continue;
    EXPECT_EQ(entry->getValue<std::string>("hook"), id);
    EXPECT_EQ(std::to_string(entry->getValue<int64_t>("event")), eventId);
    EXPECT_EQ(entry->getValue<std::string>("actor").rfind("member:", 0), 0u);
    details.push_back(entry->getValue<std::string>("detail"));
  }
  EXPECT_EQ(details, (std::vector<std::string>{"detail", "body"}));
  EXPECT_EQ(log.body.find("secret contents"), std::string::npos);
}

TEST_F(HooksApiTest, ReplayIsAuditedWithTheOriginalEventAndItsCopy) {
  startServer();
  const Account owner = createAccount("alpha", "pro");
  const Account bob = addMember(owner, "bob");
  const std::string id = createNamedHook(owner, "main")->getValue<std::string>("id");
  const auto stored = ingest(id, "replay me");
  ASSERT_EQ(stored.status, 200) << stored.body;
  const std::string eventId = jsonField(stored.body, "id");

  // A member other than the owner replays, so that the actor is not the reader's by accident.
  const int64_t before = nowSeconds() * 1000 - 1000;
  const auto replayed =
      call("POST", "/api/v1/hooks/" + id + "/events/" + eventId + "/replay", bob.jwt);
  ASSERT_EQ(replayed.status, 201) << replayed.body;
  const std::string copyId = jsonField(replayed.body, "id");
  ASSERT_NE(copyId, eventId);
  EXPECT_EQ(jsonField(replayed.body, "replay_of"), eventId);

  std::vector<Poco::JSON::Object::Ptr> replays;
  const auto entries = auditEntries(owner);
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("action") == "event.replay") replays.push_back(entry);
  }
  ASSERT_EQ(replays.size(), 1u) << "audit entries: " << entries->size();
  const auto& entry = replays.front();
  EXPECT_EQ(entry->getValue<std::string>("actor"), "member:" + bob.memberId);
  EXPECT_EQ(entry->getValue<std::string>("hook"), id);
  EXPECT_EQ(std::to_string(entry->getValue<int64_t>("event")), eventId);
  EXPECT_EQ(entry->getValue<std::string>("detail"), "replay_id=" + copyId);
  EXPECT_EQ(entry->getValue<std::string>("remote"), "127.0.0.1");
  EXPECT_GE(entry->getValue<int64_t>("at_ms"), before);

  // A refused replay (no such event) writes nothing.
  EXPECT_EQ(call("POST", "/api/v1/hooks/" + id + "/events/999999/replay", bob.jwt).status, 404);
  EXPECT_EQ(auditEntries(owner)->size(), entries->size());
}

TEST_F(HooksApiTest, SearchesAndBulkReplaysAreAuditedWithoutTheirQueries) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  const std::string marker = "cardholder4242";
  ASSERT_EQ(ingest(id, "{\"card\":\"" + marker + "\"}", {{"X-Token", "t-" + marker}}).status, 200);

  // The queries quote what the bodies hold, as queries do.
  const std::string query = "body:" + marker + " OR header.x-token:t-" + marker;
  std::string encoded;
  Poco::URI::encode(query, "+&=#", encoded);
  const auto found = call("GET", "/api/v1/hooks/" + id + "/events?q=" + encoded, pro.jwt);
  ASSERT_EQ(found.status, 200) << found.body;
  const std::string replayQuery = "{\"q\":\"body:" + marker + "\"";
  ASSERT_EQ(
      call("POST", "/api/v1/hooks/" + id + "/replays", pro.jwt, replayQuery + ",\"dry_run\":true}")
          .status,
      200);
  const auto started =
      call("POST", "/api/v1/hooks/" + id + "/replays", pro.jwt, replayQuery + ",\"expect\":1}");
  ASSERT_EQ(started.status, 202) << started.body;

  // What the query looked at, how long it was and what it found are on the record; no value
  // it looked for is.
  std::string search;
  std::string replay;
  const auto entries = auditEntries(pro);
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    const std::string detail = entry->getValue<std::string>("detail");
    EXPECT_EQ(detail.find(marker), std::string::npos) << detail;
    if (entry->getValue<std::string>("action") == "event.search") search = detail;
    if (entry->getValue<std::string>("action") == "event.replay") replay = detail;
  }
  EXPECT_EQ(search,
            "fields=header,body q_bytes=" + std::to_string(query.size()) + " before=0 count=1");
  EXPECT_EQ(replay, "job=" + jsonField(started.body, "id") + " count=1 fields=body q_bytes=" +
                        std::to_string(std::string("body:").size() + marker.size()));
}

TEST_F(HooksApiTest, ListingEventsIsAuditedOncePerRequest) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ingest(id, "event " + std::to_string(i)).status, 200);
  const auto listed = call("GET", "/api/v1/hooks/" + id + "/events?limit=2", pro.jwt);
  ASSERT_EQ(listed.status, 200) << listed.body;
  const std::string after = jsonField(listed.body, "next_after");
  ASSERT_EQ(call("GET", "/api/v1/hooks/" + id + "/events?after=" + after, pro.jwt).status, 200);

  const auto entries = parseObject(call("GET", "/api/v1/audit", pro.jwt).body)->getArray("entries");
  std::vector<std::string> details;
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("action") != "event.list") continue;
    EXPECT_EQ(entry->getValue<std::string>("hook"), id);
    EXPECT_EQ(entry->getValue<int64_t>("event"), 0);
    EXPECT_EQ(entry->getValue<std::string>("actor").rfind("member:", 0), 0u);
    details.push_back(entry->getValue<std::string>("detail"));
  }
  EXPECT_EQ(details, (std::vector<std::string>{"after=0 limit=2 count=2",
                                               "after=" + after + " limit=100 count=1"}));
}

TEST_F(HooksApiTest, HookChangesAreAudited) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");
  ASSERT_EQ(call("PATCH", "/api/v1/hooks/" + id, pro.jwt, R"({"standard_webhooks":true})").status,
            200);
  ASSERT_EQ(call("POST", "/api/v1/hooks/" + id + "/signing-secret", pro.jwt).status, 200);
  StreamReader stream(port_, id, pro.jwt);
  ASSERT_EQ(stream.status(), 200);

  const auto entries = parseObject(call("GET", "/api/v1/audit", pro.jwt).body)->getArray("entries");
  std::vector<std::string> actions;
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("hook") == id) {
      actions.push_back(entry->getValue<std::string>("action"));
    }
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"hook.create", "hook.update", "hook.rotate_secret",
                                               "stream.open"}));
}

TEST_F(HooksApiTest, AnonymousHooksCanBeTurnedOff) {
  startServer([](edge::EdgeConfig& config) { config.anonymousHooks = false; });
  const auto refused = request(port_, "POST", "/api/v1/hooks", "{}");
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(jsonField(refused.body, "error"), "sign in to create hooks on this edge");
  const Account a = createAccount("alpha", "free");
  createNamedHook(a, "main");
}

TEST_F(HooksApiTest, AnonymousHookAnswerHasSigningSecretAndExpiry) {
  startServer();
  const auto r = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(r.status, 201);
  const auto hook = parseObject(r.body);
  EXPECT_EQ(hook->getValue<std::string>("signing_secret").rfind("whsec_", 0), 0u);
  EXPECT_EQ(hook->getValue<int64_t>("expires_at_ms") - hook->getValue<int64_t>("created_at_ms"),
            3600 * 1000);
  EXPECT_EQ(hook->getValue<std::string>("token").size(), 64u);
}

TEST_F(HooksApiTest, RevokingATokenClosesItsStreams) {
  startServer();
  const Account pro = createAccount("alpha", "pro");
  const std::string id = createNamedHook(pro, "main")->getValue<std::string>("id");

  // A second token of the same member opens the stream, the first one revokes it.
  const auto second = call("POST", "/api/v1/tokens", pro.jwt, R"({"name":"ci"})");
  ASSERT_EQ(second.status, 201) << second.body;
  const std::string secondJwt = exchange(jsonField(second.body, "token"));
  StreamReader stream(port_, id, secondJwt);
  ASSERT_EQ(stream.status(), 200);
  ASSERT_FALSE(stream.closedWithin(200));

  const auto revoked = call("DELETE", "/api/v1/tokens/" + jsonField(second.body, "id"), pro.jwt);
  ASSERT_EQ(revoked.status, 204) << revoked.body;
  EXPECT_TRUE(stream.closedWithin(5000));
}

}  // namespace
}  // namespace anm::test
