// tests/integration/input_rules_test.cpp: what ingest and the REST API refuse, and how they say it.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/edge/edge_server.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;

struct Hook {
  std::string id;
  std::string token;
};

class InputRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-input-rules-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;

    EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxThreads = 4;
    server_ = std::make_unique<EdgeServer>(config);
    server_->start();
    port_ = server_->port();
    hook_ = createHook();
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Hook createHook(const std::string& settings = "{}") {
    const auto r = request(port_, "POST", "/api/v1/hooks", settings);
    EXPECT_EQ(r.status, 201) << r.body;
    return Hook{jsonField(r.body, "id"), jsonField(r.body, "token")};
  }

  Poco::JSON::Object::Ptr json(const std::string& text) {
    Poco::JSON::Parser parser;
    return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
  }

  // How many events the test hook has stored, read through the API.
  size_t storedEvents() {
    const auto r = apiRequest(port_, "GET", "/api/v1/hooks/" + hook_.id + "/events", hook_.token);
    EXPECT_EQ(r.status, 200) << r.body;
    return json(r.body)->getArray("events")->size();
  }

  // An ingest request to the test hook written byte for byte: `target` after "/h/<id>", and
  // `fields` as complete header lines.
  Response rawIngest(const std::string& target, const std::string& fields = "") {
    return rawExchange(port_, "POST /h/" + hook_.id + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                  fields + "Content-Length: 2\r\nConnection: close\r\n\r\nhi");
  }

  std::string dir_;
  std::unique_ptr<EdgeServer> server_;
  uint16_t port_ = 0;
  Hook hook_;
};

// --- Request targets ------------------------------------------------------------------------

TEST_F(InputRulesTest, TargetBytesOutsideVisibleAsciiAre400AndNothingIsStored) {
  const std::vector<std::string> targets = {
      "/a\xff"
      "b",
      "/caf\xc3\xa9",
      "?q=\x80",
      "/x?\xff",
      "/a\x01",
      "/a\x7f"};
  for (const auto& target : targets) {
    const auto r = rawIngest(target);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(jsonField(r.body, "error"),
              "request target must be ASCII; percent-encode other bytes");
  }
  EXPECT_EQ(storedEvents(), 0u);

  // The same bytes percent-encoded are ordinary ASCII and are stored as sent.
  const auto ok = rawIngest("/caf%C3%A9?q=%FF");
  ASSERT_EQ(ok.status, 200) << ok.body;
  const auto event = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook_.id + "/events/" + jsonField(ok.body, "id"),
                 hook_.token)
          .body);
  EXPECT_EQ(event->getValue<std::string>("path"), "/caf%C3%A9");
  EXPECT_EQ(event->getValue<std::string>("query"), "q=%FF");
  EXPECT_EQ(storedEvents(), 1u);
}

TEST_F(InputRulesTest, ApiRoutesRefuseNonAsciiTargetsToo) {
  const auto r = rawExchange(port_, "GET /api/v1/hooks/" + hook_.id +
                                        "\xff HTTP/1.1\r\nHost: x\r\n"
                                        "Authorization: Bearer " +
                                        hook_.token + "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(jsonField(r.body, "error"), "request target must be ASCII; percent-encode other bytes");
}

// --- Header fields --------------------------------------------------------------------------

TEST_F(InputRulesTest, FieldNamesThatAreNotTokensAre400NamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"X(Bad): 1\r\n", "\"X(Bad)\""},
      {"X\x01"
       "Ctl: 1\r\n",
       "\"X\\x01Ctl\""},
      {"Caf\xc3\xa9: 1\r\n", "\"Caf\\xc3\\xa9\""},
      {"X\xff"
       "Name: 1\r\n",
       "\"X\\xffName\""},
      {std::string(100, 'N') + "\"\x02: 1\r\n", "\"" + std::string(64, 'N') + "\"..."}};
  for (const auto& [line, quoted] : cases) {
    const auto r = rawIngest("", "X-Ok: 1\r\n" + line);
    EXPECT_EQ(r.status, 400) << r.body;
    const std::string error = jsonField(r.body, "error");
    EXPECT_NE(error.find("header field name " + quoted + " is not a token"), std::string::npos)
        << error;
  }
  EXPECT_EQ(storedEvents(), 0u);
}

TEST_F(InputRulesTest, ControlCharactersInValuesAre400NamingTheField) {
  const std::vector<std::string> values = {std::string("a\0b", 3),
                                           "a\x01"
                                           "b",
                                           "a\x1b[0m", "a\x7f"};
  for (const auto& value : values) {
    const auto r = rawIngest("", "X-Bad-Value: " + value + "\r\n");
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(jsonField(r.body, "error").find("header field \"X-Bad-Value\" has a control"),
              std::string::npos)
        << r.body;
  }
  EXPECT_EQ(storedEvents(), 0u);
}

TEST_F(InputRulesTest, BareCrAfterTheVersionIsRefusedRatherThanHidingAField) {
  // POCO ends the request line at the CR and reads "Content-Length: 5" as part of it, so the
  // body would be stored empty; the raw line shows the CR.
  const auto r = rawExchange(
      port_, "POST /h/" + hook_.id + "/bcr HTTP/1.1\rContent-Length: 5\r\nHost: x\r\n\r\nABCDE");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(storedEvents(), 0u);
}

TEST_F(InputRulesTest, MethodThatIsNotATokenIs400AndNothingIsStored) {
  for (const std::string method : {"P@ST", "GET(x)"}) {
    const auto r = rawExchange(
        port_, method + " /h/" + hook_.id + "/m HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.status, 400) << method << ": " << r.body;
    EXPECT_NE(jsonField(r.body, "error").find("token"), std::string::npos) << r.body;
  }
  EXPECT_EQ(storedEvents(), 0u);
}

// POCO ends its header block early when a 0xFF byte comes right before a line end; the fields
// after it (Content-Length here) would be lost while the request was acknowledged.
TEST_F(InputRulesTest, FFBeforeALineEndIsRefusedRatherThanStoredTruncated) {
  for (const std::string fields :
       {"X-End: v\xff\r\nX-After: 1\r\n", "X-End:\xff\r\nX-After: 1\r\n"}) {
    const auto r = rawIngest("", fields);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(jsonField(r.body, "error"), "the header fields could not be read exactly as sent");
  }
  const auto r =
      rawExchange(port_, "POST /h/" + hook_.id + " HTTP/1.1\xff\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(storedEvents(), 0u);
}

// POCO refuses this head before any handler runs with "field value too long/no CRLF found";
// the connection asks headFieldRefusal about the recorded bytes so the answer names the field.
TEST_F(InputRulesTest, CarriageReturnInsideAValueIs400Not431) {
  const auto r = rawIngest("", "X-Cr: a\rb\r\n");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(jsonField(r.body, "error").find("\"X-Cr\""), std::string::npos) << r.body;
  EXPECT_EQ(storedEvents(), 0u);
}

TEST_F(InputRulesTest, TabsAndObsTextInValuesAreStoredByteExact) {
  const std::string value =
      "a\tb \x80\xfe\xff"
      "end";
  const auto r = rawIngest("", "X-Obs: " + value + "\r\nX-Obs: second\r\n");
  ASSERT_EQ(r.status, 200) << r.body;

  const auto detail = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook_.id + "/events/" + jsonField(r.body, "id"),
                 hook_.token)
          .body);
  const auto headers = detail->getArray("headers");
  bool found = false;
  for (size_t i = 0; i < headers->size(); ++i) {
    const auto field = headers->getArray(static_cast<unsigned>(i));
    if (field->getElement<std::string>(0) != "X-Obs" || field->size() != 3) continue;
    // Not UTF-8, so the value travels base64-encoded: "a\tb \x80\xfe\xffend".
    EXPECT_EQ(field->getElement<std::string>(1), "YQliIID+/2VuZA==");
    EXPECT_EQ(field->getElement<std::string>(2), "b64");
    found = true;
  }
  EXPECT_TRUE(found) << detail->get("headers").toString();
}

// --- Authorization --------------------------------------------------------------------------

TEST_F(InputRulesTest, BearerSchemeIsCaseInsensitiveAndToleratesBlanks) {
  const std::string path = "/api/v1/hooks/" + hook_.id;
  for (const std::string& value : {"bearer " + hook_.token, "BEARER " + hook_.token,
                                   "Bearer   " + hook_.token + "  ", "bEaReR\t" + hook_.token}) {
    const auto r = request(port_, "GET", path, "", {{"Authorization", value}});
    EXPECT_EQ(r.status, 200) << value << " " << r.body;
  }
  for (const std::string& value :
       {"Basic " + hook_.token, "Bearer" + hook_.token, "Bearer " + hook_.token + "x",
        "Bearer " + hook_.token + " x", std::string("Bearer"), "Bearer " + std::string(64, '0')}) {
    const auto r = request(port_, "GET", path, "", {{"Authorization", value}});
    EXPECT_EQ(r.status, 404) << value << " " << r.body;
    EXPECT_EQ(jsonField(r.body, "error"), "unknown hook");
  }
}

// --- Hook settings --------------------------------------------------------------------------

TEST_F(InputRulesTest, UnknownHookFieldsAreNamedWithTheKnownOnes) {
  const auto r = request(port_, "POST", "/api/v1/hooks", R"({"provder":"hmacfix","tolerance":5})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(jsonField(r.body, "error"),
            "unknown fields \"provder\", \"tolerance\" (known fields: provider, secret, "
            "secret_base64, tolerance_s, options, name, standard_webhooks, custom_response)");
}

TEST_F(InputRulesTest, HookBodyThatIsNotAnObjectIs400) {
  for (const std::string body : {"null", "[]", "[{}]", "5", "\"x\"", "true", "  \n"}) {
    const auto r = request(port_, "POST", "/api/v1/hooks", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(jsonField(r.body, "error"), "the request body must be a JSON object") << body;
  }
  const auto malformed = request(port_, "POST", "/api/v1/hooks", "{\"provider\":");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(jsonField(malformed.body, "error").rfind("the body is not valid JSON", 0), 0u)
      << malformed.body;
}

TEST_F(InputRulesTest, DuplicateKeysAreRefused) {
  auto r = request(port_, "POST", "/api/v1/hooks",
                   R"({"provider":"hmacfix","secret":"a","secret":"b"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(jsonField(r.body, "error"), "duplicate key \"secret\" in the request body");

  r = request(port_, "POST", "/api/v1/hooks",
              R"({"provider":"hmacfix","options":{"a":"1","a":"2"}})");
  EXPECT_EQ(r.status, 400) << r.body;

  // The same key in two different objects is not a duplicate.
  const std::string event = jsonField(rawIngest("").body, "id");
  r = apiRequest(port_, "POST", "/api/v1/hooks/" + hook_.id + "/deliveries", hook_.token,
                 R"({"deliveries":[{"event":)" + event + R"(,"relay":"r","status":200},)" +
                     R"({"event":)" + event + R"(,"relay":"r","status":500}]})");
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST_F(InputRulesTest, SecretWithoutProviderIsRefused) {
  for (const std::string body : {R"({"secret":"whsec_x"})", R"({"secret_base64":"AAEC"})"}) {
    const auto r = request(port_, "POST", "/api/v1/hooks", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(jsonField(r.body, "error").rfind("secret given without a provider; ", 0), 0u)
        << r.body;
  }
  EXPECT_EQ(
      request(port_, "POST", "/api/v1/hooks", R"({"provider":"hmacfix","secret":"k"})").status,
      201);
}

TEST_F(InputRulesTest, ProviderWithoutSecretIsRefused) {
  for (const std::string body :
       {R"({"provider":"hmacfix"})", R"({"provider":"hmacfix","secret":""})"}) {
    const auto r = request(port_, "POST", "/api/v1/hooks", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(jsonField(r.body, "error"),
              "provider hmacfix needs a secret (secret or secret_base64) to verify signatures")
        << r.body;
  }
}

// --- Delivery reports -----------------------------------------------------------------------

TEST_F(InputRulesTest, DeliveryStatusMustBeAnIntegerWithinRange) {
  const std::string event = jsonField(rawIngest("").body, "id");
  const std::string single = "/api/v1/hooks/" + hook_.id + "/events/" + event + "/deliveries";
  for (const std::string status : {"true", "false", "\"200\"", "1.5", "-1", "1000", "null"}) {
    auto r =
        apiRequest(port_, "POST", single, hook_.token, R"({"relay":"r","status":)" + status + "}");
    EXPECT_EQ(r.status, 400) << status << " " << r.body;
    EXPECT_EQ(jsonField(r.body, "error"), "status must be an integer within 0..999") << status;

    r = apiRequest(
        port_, "POST", "/api/v1/hooks/" + hook_.id + "/deliveries", hook_.token,
        R"({"deliveries":[{"event":)" + event + R"(,"relay":"r","status":)" + status + "}]}");
    EXPECT_EQ(r.status, 400) << status << " " << r.body;
  }
  for (const std::string status : {"0", "999"}) {
    EXPECT_EQ(
        apiRequest(port_, "POST", single, hook_.token, R"({"relay":"r","status":)" + status + "}")
            .status,
        201);
  }

  // Only the two good reports were stored.
  const auto detail = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook_.id + "/events/" + event, hook_.token).body);
  EXPECT_EQ(detail->getArray("deliveries")->size(), 2u);
}

TEST_F(InputRulesTest, SummariesListTheLatest20DeliveriesWithTheTotal) {
  const std::string event = jsonField(rawIngest("").body, "id");
  const std::string other = jsonField(rawIngest("").body, "id");
  std::string bulk = R"({"deliveries":[)";
  for (int i = 0; i < 25; ++i) {
    bulk += (i ? "," : "") + std::string(R"({"event":)") + event + R"(,"relay":"r)" +
            std::to_string(i) + R"(","status":200})";
  }
  ASSERT_EQ(apiRequest(port_, "POST", "/api/v1/hooks/" + hook_.id + "/deliveries", hook_.token,
                       bulk + "]}")
                .status,
            201);

  // Listing form: the latest 20, oldest of them first, and the count of all 25.
  const auto list =
      json(apiRequest(port_, "GET", "/api/v1/hooks/" + hook_.id + "/events", hook_.token).body);
  const auto events = list->getArray("events");
  ASSERT_EQ(events->size(), 2u);
  const auto summary = events->getObject(0);
  EXPECT_EQ(summary->getValue<int64_t>("deliveries_total"), 25);
  const auto listed = summary->getArray("deliveries");
  ASSERT_EQ(listed->size(), 20u);
  EXPECT_EQ(listed->getObject(0)->getValue<std::string>("relay"), "r5");
  EXPECT_EQ(listed->getObject(19)->getValue<std::string>("relay"), "r24");
  EXPECT_EQ(events->getObject(1)->getValue<int64_t>("deliveries_total"), 0);
  EXPECT_EQ(events->getObject(1)->getValue<std::string>("id"), other);

  // Detail form: the same bound, and the body is still there.
  const auto detail = json(
      apiRequest(port_, "GET", "/api/v1/hooks/" + hook_.id + "/events/" + event, hook_.token).body);
  EXPECT_EQ(detail->getValue<int64_t>("deliveries_total"), 25);
  EXPECT_EQ(detail->getArray("deliveries")->size(), 20u);
  EXPECT_EQ(detail->getValue<std::string>("body_base64"), "aGk=");
}

}  // namespace
}  // namespace anm::test
