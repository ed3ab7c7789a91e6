// tests/integration/standard_webhooks_test.cpp: ingest verifies Standard Webhooks senders.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>

#include "accounts_env.h"

namespace anm::test {
namespace {

class StandardWebhooksIngestTest : public AccountsTest {
 protected:
  void SetUp() override {
    AccountsTest::SetUp();
    startServer();
    account_ = createAccount("alpha", "free");
    const auto hook = createNamedHook(account_, "main", R"("standard_webhooks":true)");
    hookId_ = hook->getValue<std::string>("id");
    secret_ = hook->getValue<std::string>("signing_secret");
  }

  Response send(const std::string& body, const Fields& fields) {
    return ingest(hookId_, body, fields);
  }

  Account account_;
  std::string hookId_;
  std::string secret_;
};

TEST_F(StandardWebhooksIngestTest, CorrectlySignedRequestIsValidAndStoredByteForByte) {
  const std::string body = "{\"type\":\"order.created\",\"n\":1}\r\n\x01";
  const auto r = send(body, standardWebhooksFields(secret_, "msg_1", nowSeconds(), body));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string eventId = jsonField(r.body, "id");

  const auto event = parseObject(
      call("GET", "/api/v1/hooks/" + hookId_ + "/events/" + eventId, account_.jwt).body);
  EXPECT_EQ(event->getValue<std::string>("verdict"), "valid");
  EXPECT_EQ(event->getValue<std::string>("reason"), "ok");
  EXPECT_EQ(event->getValue<std::string>("delivery_id"), "msg_1");
  EXPECT_EQ(event->getValue<std::string>("event_type"), "");  // the body is not JSON
  EXPECT_EQ(
      call("GET", "/api/v1/hooks/" + hookId_ + "/events/" + eventId + "/body", account_.jwt).body,
      body);

  const std::string json = R"({"type":"order.created"})";
  const auto typed = send(json, standardWebhooksFields(secret_, "msg_2", nowSeconds(), json));
  ASSERT_EQ(typed.status, 200);
  const auto typedEvent =
      parseObject(call("GET", "/api/v1/hooks/" + hookId_ + "/events/" + jsonField(typed.body, "id"),
                       account_.jwt)
                      .body);
  EXPECT_EQ(typedEvent->getValue<std::string>("event_type"), "order.created");
}

TEST_F(StandardWebhooksIngestTest, EachWrongRequestIsRefusedWithItsReason) {
  const std::string body = R"({"type":"a"})";
  const int64_t ts = nowSeconds();

  // Signed with another secret.
  const std::string other =
      createNamedHook(createAccount("beta", "free"), "x", R"("standard_webhooks":true)")
          ->getValue<std::string>("signing_secret");
  auto r = send(body, standardWebhooksFields(other, "m1", ts, body));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "signature_mismatch");

  // The body changed after signing.
  r = send(body + " ", standardWebhooksFields(secret_, "m2", ts, body));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "signature_mismatch");

  // Signed correctly, but ten minutes ago.
  r = send(body, standardWebhooksFields(secret_, "m3", ts - 600, body));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "timestamp_outside");

  // Headers missing.
  r = send(body, {});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "header_missing");
  r = send(body, {{"webhook-id", "m4"},
                  {"webhook-signature", standardWebhooksSignature(secret_, "m4", ts, body)}});
  EXPECT_EQ(jsonField(r.body, "reason"), "timestamp_missing");

  // Every refused request is stored as invalid, with its reason.
  const auto events =
      parseObject(call("GET", "/api/v1/hooks/" + hookId_ + "/events", account_.jwt).body)
          ->getArray("events");
  ASSERT_EQ(events->size(), 5u);
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ(events->getObject(static_cast<unsigned>(i))->getValue<std::string>("verdict"),
              "invalid");
  }
}

TEST_F(StandardWebhooksIngestTest, OldSecretStillVerifiesAfterRotation) {
  const auto rotated = call("POST", "/api/v1/hooks/" + hookId_ + "/signing-secret", account_.jwt);
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string fresh = jsonField(rotated.body, "signing_secret");
  ASSERT_NE(fresh, secret_);
  const int64_t until = std::stoll(jsonField(rotated.body, "previous_valid_until_ms"));
  EXPECT_GT(until, nowSeconds() * 1000 + 23 * 3600 * 1000);

  const std::string body = "{}";
  EXPECT_EQ(send(body, standardWebhooksFields(secret_, "old", nowSeconds(), body)).status, 200);
  EXPECT_EQ(send(body, standardWebhooksFields(fresh, "new", nowSeconds(), body)).status, 200);

  // A second rotation retires the first secret: only one previous secret is kept.
  ASSERT_EQ(call("POST", "/api/v1/hooks/" + hookId_ + "/signing-secret", account_.jwt).status, 200);
  EXPECT_EQ(send(body, standardWebhooksFields(secret_, "older", nowSeconds(), body)).status, 401);
  EXPECT_EQ(send(body, standardWebhooksFields(fresh, "previous", nowSeconds(), body)).status, 200);
}

TEST_F(StandardWebhooksIngestTest, AnonymousHookCanTurnItOnWithPatch) {
  const auto created = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(created.status, 201);
  const std::string id = jsonField(created.body, "id");
  const std::string token = jsonField(created.body, "token");
  const std::string secret = jsonField(created.body, "signing_secret");

  // Without the setting nothing is verified; with it, unsigned requests are refused.
  EXPECT_EQ(ingest(id, "x").status, 200);
  ASSERT_EQ(call("PATCH", "/api/v1/hooks/" + id, token, R"({"standard_webhooks":true})").status,
            200);
  EXPECT_EQ(ingest(id, "x").status, 401);
  EXPECT_EQ(ingest(id, "x", standardWebhooksFields(secret, "m", nowSeconds(), "x")).status, 200);
}

}  // namespace
}  // namespace anm::test
