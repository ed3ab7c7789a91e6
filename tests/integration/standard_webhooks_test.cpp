// tests/integration/standard_webhooks_test.cpp: ingest verifies Standard Webhooks senders.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <string>

#include "accounts_env.h"

namespace anm::test {
namespace {

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string unbase64(const std::string& text) {
  std::string out(3 * text.size() / 4 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  out.resize(static_cast<size_t>(n));

  // EVP_DecodeBlock counts the bytes the padding stands for.
  if (!text.empty() && text.back() == '=') out.pop_back();
  if (text.size() > 1 && text[text.size() - 2] == '=') out.pop_back();
  return out;
}

// What a sender computes, from the secret alone: HMAC-SHA256 of "<id>.<ts>.<body>".
std::string sign(const std::string& secret, const std::string& id, int64_t ts,
                 const std::string& body) {
  const std::string key = unbase64(secret.substr(6));
  const std::string content = id + "." + std::to_string(ts) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  return "v1," + base64(std::string(reinterpret_cast<const char*>(mac), len));
}

int64_t nowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

  Fields signedFields(const std::string& secret, const std::string& id, int64_t ts,
                      const std::string& body) {
    return {{"webhook-id", id},
            {"webhook-timestamp", std::to_string(ts)},
            {"webhook-signature", sign(secret, id, ts, body)}};
  }

  Account account_;
  std::string hookId_;
  std::string secret_;
};

TEST_F(StandardWebhooksIngestTest, CorrectlySignedRequestIsValidAndStoredByteForByte) {
  const std::string body = "{\"type\":\"order.created\",\"n\":1}\r\n\x01";
  const auto r = send(body, signedFields(secret_, "msg_1", nowS(), body));
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
  const auto typed = send(json, signedFields(secret_, "msg_2", nowS(), json));
  ASSERT_EQ(typed.status, 200);
  const auto typedEvent =
      parseObject(call("GET", "/api/v1/hooks/" + hookId_ + "/events/" + jsonField(typed.body, "id"),
                       account_.jwt)
                      .body);
  EXPECT_EQ(typedEvent->getValue<std::string>("event_type"), "order.created");
}

TEST_F(StandardWebhooksIngestTest, EachWrongRequestIsRefusedWithItsReason) {
  const std::string body = R"({"type":"a"})";
  const int64_t ts = nowS();

  // Signed with another secret.
  const std::string other =
      createNamedHook(createAccount("beta", "free"), "x", R"("standard_webhooks":true)")
          ->getValue<std::string>("signing_secret");
  auto r = send(body, signedFields(other, "m1", ts, body));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "signature_mismatch");

  // The body changed after signing.
  r = send(body + " ", signedFields(secret_, "m2", ts, body));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "signature_mismatch");

  // Signed correctly, but ten minutes ago.
  r = send(body, signedFields(secret_, "m3", ts - 600, body));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "timestamp_outside");

  // Headers missing.
  r = send(body, {});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(jsonField(r.body, "reason"), "header_missing");
  r = send(body, {{"webhook-id", "m4"}, {"webhook-signature", sign(secret_, "m4", ts, body)}});
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
  EXPECT_GT(until, nowS() * 1000 + 23 * 3600 * 1000);

  const std::string body = "{}";
  EXPECT_EQ(send(body, signedFields(secret_, "old", nowS(), body)).status, 200);
  EXPECT_EQ(send(body, signedFields(fresh, "new", nowS(), body)).status, 200);

  // A second rotation retires the first secret: only one previous secret is kept.
  ASSERT_EQ(call("POST", "/api/v1/hooks/" + hookId_ + "/signing-secret", account_.jwt).status, 200);
  EXPECT_EQ(send(body, signedFields(secret_, "older", nowS(), body)).status, 401);
  EXPECT_EQ(send(body, signedFields(fresh, "previous", nowS(), body)).status, 200);
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
  EXPECT_EQ(ingest(id, "x", signedFields(secret, "m", nowS(), "x")).status, 200);
}

}  // namespace
}  // namespace anm::test
