// tests/integration/edited_replay_test.cpp: replays with edits (docs/dashboard.md, "Replay"),
// through the in-process edge: each edit, the checks ingest would make, the modified flag in
// every form, the relay stream and the audit log.
// SPDX-License-Identifier: Apache-2.0
#include "accounts_env.h"

namespace anm::test {
namespace {

constexpr size_t kMaxBody = 4096;
constexpr const char* kWarning =
    "the provider's signature covers the original request; the local handler's check will fail "
    "for an edited one";

class EditedReplayTest : public AccountsTest {
 protected:
  void SetUp() override {
    AccountsTest::SetUp();
    startServer([](edge::EdgeConfig& config) { config.maxBodyBytes = kMaxBody; });
    owner_ = createAccount("acme", "pro");
    const auto hook = createNamedHook(owner_, "main", "\"standard_webhooks\":true");
    hookId_ = hook->getValue<std::string>("id");
    secret_ = hook->getValue<std::string>("signing_secret");

    // The original: signed, so verified as valid.
    Fields fields = standardWebhooksFields(secret_, "msg_1", nowSeconds(), kOriginalBody);
    fields.insert(fields.begin(), {"Content-Type", "application/json"});
    const auto r =
        request(port_, "POST", "/h/" + hookId_ + "/orders?page=1", kOriginalBody, fields);
    ASSERT_EQ(r.status, 200) << r.body;
    original_ = jsonField(r.body, "id");
    originalDetail_ = detail(original_);
    ASSERT_EQ(originalDetail_->getValue<std::string>("verdict"), "valid");
  }

  std::string base() const { return "/api/v1/hooks/" + hookId_; }

  Response replay(const std::string& body) {
    return call("POST", base() + "/events/" + original_ + "/replay", owner_.jwt, body,
                {{"Content-Type", "application/json"}});
  }

  Poco::JSON::Object::Ptr detail(const std::string& id) {
    const auto r = call("GET", base() + "/events/" + id, owner_.jwt);
    EXPECT_EQ(r.status, 200) << r.body;
    return parseObject(r.body);
  }

  std::string headersOf(const Poco::JSON::Object& event) {
    std::ostringstream out;
    event.getArray("headers")->stringify(out);
    return out.str();
  }

  int64_t eventCount() {
    return std::stoll(jsonField(call("GET", base() + "/events/count", owner_.jwt).body, "count"));
  }

  /// Expects the edited copy `copy` of the original: marked, unsigned, linked.
  void expectEditedCopy(const Poco::JSON::Object& copy) {
    EXPECT_TRUE(copy.getValue<bool>("modified"));
    EXPECT_EQ(copy.getValue<std::string>("replay_of"), original_);
    EXPECT_EQ(copy.getValue<std::string>("verdict"), "unsigned");
    EXPECT_EQ(copy.getValue<std::string>("reason"), "not_signed");
    EXPECT_EQ(copy.getValue<std::string>("message"), "edited replay");
  }

  static constexpr const char* kOriginalBody = "{\"order\":1}";
  Account owner_;
  std::string hookId_;
  std::string secret_;
  std::string original_;
  Poco::JSON::Object::Ptr originalDetail_;
};

TEST_F(EditedReplayTest, EachEditReplacesOnlyItsPartOfTheOriginal) {
  struct Edit {
    std::string json;
    std::string field;  ///< the detail member it changes
    std::string expected;
  };
  const std::vector<Edit> edits = {
      {R"({"method":"PUT"})", "method", "PUT"},
      {R"({"path":"/refunds/7"})", "path", "/refunds/7"},
      {R"({"path":""})", "path", ""},
      {R"({"query":"page=2&x=%C3%A9"})", "query", "page=2&x=%C3%A9"},
      {R"({"headers":[["X-Only","1"],["x-only","2"]]})", "headers",
       R"([["X-Only","1"],["x-only","2"]])"},
      {R"({"body_base64":")" + base64Encode("{\"order\":2}") + "\"}", "body_base64",
       base64Encode("{\"order\":2}")},
  };
  for (const auto& edit : edits) {
    SCOPED_TRACE(edit.json);
    const auto r = replay(edit.json);
    ASSERT_EQ(r.status, 201) << r.body;
    const auto answer = parseObject(r.body);
    EXPECT_EQ(answer->getValue<std::string>("warning"), kWarning);
    expectEditedCopy(*answer);

    const auto copy = detail(answer->getValue<std::string>("id"));
    expectEditedCopy(*copy);
    for (const char* member : {"method", "path", "query", "headers", "body_base64"}) {
      const auto shown = [&](const Poco::JSON::Object& event) {
        return std::string(member) == "headers" ? headersOf(event)
                                                : event.getValue<std::string>(member);
      };
      if (edit.field == member) {
        EXPECT_EQ(shown(*copy), edit.expected) << member;
      } else {
        EXPECT_EQ(shown(*copy), shown(*originalDetail_)) << member;
      }
    }
    EXPECT_EQ(copy->getValue<std::string>("event_type"),
              originalDetail_->getValue<std::string>("event_type"));
  }

  // The original itself is unchanged.
  EXPECT_FALSE(detail(original_)->getValue<bool>("modified"));
  EXPECT_EQ(detail(original_)->getValue<std::string>("verdict"), "valid");
}

TEST_F(EditedReplayTest, TheStoredLengthFollowsANewBodyAndAGivenOneMustAgree) {
  const auto contentLength = [](const Poco::JSON::Object& event) {
    std::vector<std::string> values;
    const auto headers = event.getArray("headers");
    for (size_t i = 0; i < headers->size(); ++i) {
      const auto field = headers->getArray(static_cast<unsigned>(i));
      if (Poco::icompare(field->getElement<std::string>(0), "content-length") == 0) {
        values.push_back(field->getElement<std::string>(1));
      }
    }
    return values;
  };
  ASSERT_EQ(contentLength(*originalDetail_), std::vector<std::string>{"11"});

  // A longer body kept with the original's headers: their length is the new body's.
  const std::string longer = "{\"order\":1,\"note\":\"longer than before\"}";
  const auto r = replay(R"({"body_base64":")" + base64Encode(longer) + "\"}");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto copy = detail(jsonField(r.body, "id"));
  EXPECT_EQ(contentLength(*copy), std::vector<std::string>{std::to_string(longer.size())});

  // Headers given with the edit are the user's: a length that lies is refused, not fixed.
  const int64_t before = eventCount();
  const auto lying = replay(R"({"headers":[["Content-Length","5"]]})");
  EXPECT_EQ(lying.status, 400) << lying.body;
  EXPECT_NE(lying.body.find("Content-Length says 5 but the body has 11 bytes"), std::string::npos)
      << lying.body;
  EXPECT_EQ(eventCount(), before);
  EXPECT_EQ(replay(R"({"headers":[["Content-Length","11"]]})").status, 201);
}

TEST_F(EditedReplayTest, TheRelayGetsTheEditedBytesAndEveryFormShowsTheFlag) {
  StreamReader relay(port_, hookId_, owner_.jwt, {{"Last-Event-ID", original_}});
  ASSERT_EQ(relay.status(), 200) << relay.body();
  SseClient watch(port_, hookId_, owner_.jwt, std::stoll(original_), "watch");
  ASSERT_EQ(watch.head().status, 200);

  // Bytes that are not UTF-8 travel in the event form's "b64" forms, both ways.
  const std::string body("\x00\xff edited \xfe", 11);
  const std::string value("caf\xe9", 4);
  const std::string edit = R"({"method":"PATCH","path":"/x/%20y","query":"a=1&a=2","headers":[)"
                           R"(["Content-Type","application/octet-stream"],["X-Latin1",")" +
                           base64Encode(value) + R"(","b64"]],"body_base64":")" +
                           base64Encode(body) + "\"}";
  const auto r = replay(edit);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string copyId = jsonField(r.body, "id");

  Frame frame;
  ASSERT_TRUE(relay.next(frame));
  EXPECT_EQ(std::to_string(frame.id), copyId);
  EXPECT_EQ(frame.event, "webhook");
  const auto envelope = parseObject(frame.data);
  EXPECT_TRUE(envelope->getValue<bool>("modified"));
  EXPECT_EQ(envelope->getValue<std::string>("method"), "PATCH");
  EXPECT_EQ(envelope->getValue<std::string>("path"), "/x/%20y");
  EXPECT_EQ(envelope->getValue<std::string>("query"), "a=1&a=2");
  EXPECT_EQ(frameBody(frame), body);
  const auto headers = envelope->getArray("headers");
  ASSERT_EQ(headers->size(), 2u);
  EXPECT_EQ(headers->getArray(1)->getElement<std::string>(0), "X-Latin1");
  EXPECT_EQ(base64Decode(headers->getArray(1)->getElement<std::string>(1)), value);
  EXPECT_EQ(headers->getArray(1)->getElement<std::string>(2), "b64");

  ASSERT_TRUE(watch.nextNamed(frame));
  EXPECT_EQ(frame.event, "summary");
  EXPECT_EQ(jsonField(frame.data, "modified"), "true");

  const auto list = parseObject(call("GET", base() + "/events", owner_.jwt).body);
  const auto events = list->getArray("events");
  ASSERT_EQ(events->size(), 2u);
  EXPECT_FALSE(events->getObject(0)->getValue<bool>("modified"));
  EXPECT_TRUE(events->getObject(1)->getValue<bool>("modified"));
  EXPECT_TRUE(detail(copyId)->getValue<bool>("modified"));
  EXPECT_EQ(call("GET", base() + "/events/" + copyId + "/body", owner_.jwt).body, body);
}

TEST_F(EditedReplayTest, EditsIngestWouldRefuseAre400AndStoreNothing) {
  const std::string tooLong = base64Encode(std::string(kMaxBody + 1, 'b'));
  std::string manyHeaders = R"({"headers":[)";
  for (int i = 0; i <= 100; ++i) manyHeaders += (i ? "," : "") + std::string(R"(["X-N","v"])");
  manyHeaders += "]}";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"method":"PO ST"})", "method must be an RFC 9110 token"},
      {R"({"method":""})", "method must be an RFC 9110 token"},
      {R"({"method":7})", "method must be a string"},
      {R"({"path":"orders"})", "path must be \"\" or start with \"/\""},
      {R"({"path":"/caf\u00e9"})", "path must be \"\" or start with \"/\""},
      {R"({"path":"/a b"})", "path must be \"\" or start with \"/\""},
      {R"({"query":"a=\u0001"})", "query must be visible ASCII"},
      {R"({"query":")" + std::string(16 * 1024, 'q') + "\"}", "at most 16384 bytes together"},
      {R"({"headers":{"X":"1"}})", "headers must be an array"},
      {R"({"headers":[["X-One"]]})", "header 0 must be [name, value]"},
      {R"({"headers":[["Bad Name","1"]]})", "headers: "},
      {R"({"headers":[["X-Nul","a\u0000b"]]})", "headers: "},
      {R"({"headers":[["X-A","!!","b64"]]})", "header 0 is not valid base64"},
      {R"({"headers":[["X-A","1","hex"]]})", "the third element is b64 or b64name"},
      {manyHeaders, "at most 100 fields"},
      {R"({"body_base64":"not base64!"})", "body_base64 is not valid base64"},
      {R"({"body_base64":")" + tooLong + "\"}", "over ingest.max_body_bytes (4096)"},
      {R"({"verdict":"valid"})", "unknown field \"verdict\""},
      {R"({})", "changes at least one of"},
      {R"([1])", "must be a JSON object"},
  };
  const int64_t before = eventCount();
  for (const auto& [body, words] : cases) {
    const auto r = replay(body);
    EXPECT_EQ(r.status, 400) << body.substr(0, 80) << ": " << r.body;
    EXPECT_NE(jsonField(r.body, "error").find(words), std::string::npos)
        << body.substr(0, 80) << ": " << r.body;
  }
  EXPECT_EQ(eventCount(), before);
}

TEST_F(EditedReplayTest, AReplayWithoutABodyIsAsBeforeAndBothAreAudited) {
  const auto plain = call("POST", base() + "/events/" + original_ + "/replay", owner_.jwt);
  ASSERT_EQ(plain.status, 201) << plain.body;
  const auto copy = parseObject(plain.body);
  EXPECT_FALSE(copy->getValue<bool>("modified"));
  EXPECT_FALSE(copy->has("warning"));
  EXPECT_EQ(copy->getValue<std::string>("verdict"), "valid");
  EXPECT_EQ(detail(copy->getValue<std::string>("id"))->getValue<std::string>("body_base64"),
            originalDetail_->getValue<std::string>("body_base64"));

  const auto edited = replay(R"({"method":"DELETE"})");
  ASSERT_EQ(edited.status, 201) << edited.body;

  std::vector<std::string> details;
  const auto entries = auditEntries(owner_);
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("action") != "event.replay") continue;
    EXPECT_EQ(entry->getValue<std::string>("event"), original_);
    details.push_back(entry->getValue<std::string>("detail"));
  }
  EXPECT_EQ(details,
            (std::vector<std::string>{"replay_id=" + copy->getValue<std::string>("id"),
                                      "replay_id=" + jsonField(edited.body, "id") + " modified"}));
}

}  // namespace
}  // namespace anm::test
