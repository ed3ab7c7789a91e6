// tests/e2e/stripe_signature_test.cpp: a Stripe-signed webhook reaches the developer's server
// still verifiable with the real secret; a wrongly signed one is refused at the edge and never
// forwarded.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <ctime>
#include <mutex>
#include <set>

#include "tests/e2e/relay_env.h"
#include "tests/e2e/support/digest.h"

namespace anm::e2e {
namespace {

const std::string kSecret = "whsec_test_e2eRelaySecret0123456789abcdef";

std::string stripeSignature(const std::string& secret, int64_t t, const std::string& body) {
  return "t=" + std::to_string(t) + ",v1=" + hmacSha256Hex(secret, std::to_string(t) + "." + body);
}

// The check a developer's server runs with the Stripe secret it knows: some v1 entry of the
// header must be the HMAC of "<t>.<body>".
bool stripeVerifies(const std::string& header, const std::string& body) {
  std::string t;
  std::vector<std::string> signatures;
  size_t start = 0;
  while (start <= header.size()) {
    size_t comma = header.find(',', start);
    std::string item =
        header.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.rfind("t=", 0) == 0) t = item.substr(2);
    if (item.rfind("v1=", 0) == 0) signatures.push_back(item.substr(3));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (t.empty()) return false;
  std::string expected = hmacSha256Hex(kSecret, t + "." + body);
  for (const auto& signature : signatures) {
    if (signature == expected) return true;
  }
  return false;
}

std::string eventBody(const std::string& id) {
  return "{\n  \"id\": \"" + id +
         "\",\n  \"object\": \"event\",\n  \"type\": \"payment_intent.succeeded\",\n"
         "  \"data\": {\"object\": {\"amount\": 2000, \"currency\": \"usd\"}}\n}\n";
}

class StripeSignatureTest : public E2eTest {
 protected:
  void startStripe() {
    RelayEnvOptions options;
    options.relayArgs = {"--provider", "stripe", "--secret", kSecret};

    // The target answers 200 only when the signature verifies, as a real handler would.
    options.responder = [this](const RecordedRequest& request) {
      TargetServer::Reply reply;
      bool ok = stripeVerifies(request.message.value("Stripe-Signature").value_or(""),
                               request.message.body);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (ok) verifiedSeqs_.insert(request.message.value(kSeqHeader).value_or(""));
      }
      reply.status = ok ? 200 : 400;
      reply.body = ok ? "verified\n" : "bad signature\n";
      return reply;
    };
    ASSERT_NO_FATAL_FAILURE(start(std::move(options)));
  }

  SentRequest stripeRequest(const std::string& signature, const std::string& body) {
    return request("POST", "/stripe", "",
                   {{"User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
                    {"Content-Type", "application/json; charset=utf-8"},
                    {"Cache-Control", "no-cache"},
                    {"Stripe-Signature", signature}},
                   body);
  }

  bool verified(const std::string& seq) {
    std::lock_guard<std::mutex> lock(mutex_);
    return verifiedSeqs_.count(seq) == 1;
  }

  std::mutex mutex_;
  std::set<std::string> verifiedSeqs_;
};

TEST_F(StripeSignatureTest, SignedRequestReachesTargetStillVerifiable) {
  ASSERT_NO_FATAL_FAILURE(startStripe());
  std::string body = eventBody("evt_e2e_signed");
  std::string signature = stripeSignature(kSecret, std::time(nullptr), body);
  SentRequest sent = stripeRequest(signature, body);
  ASSERT_NO_FATAL_FAILURE(sendAndExpectDelivered({sent}));

  auto got = env_->target->requests().at(0);
  EXPECT_EQ(got.message.values("Stripe-Signature"), std::vector<std::string>{signature});
  EXPECT_TRUE(verified(seqOf(sent))) << "the target could not verify the forwarded signature";
}

TEST_F(StripeSignatureTest, WronglySignedRequestsGet401AndNeverReachTarget) {
  ASSERT_NO_FATAL_FAILURE(startStripe());
  int64_t now = std::time(nullptr);

  // Signed with another secret, and signed correctly but with the body changed afterwards.
  std::string body = eventBody("evt_e2e_bad");
  std::vector<SentRequest> bad{
      stripeRequest(stripeSignature("whsec_someone_else", now, body), body),
      stripeRequest(stripeSignature(kSecret, now, body), eventBody("evt_e2e_tampered")),
  };
  for (const auto& sent : bad) {
    SCOPED_TRACE("seq " + seqOf(sent));
    WireResponse answer = env_->ingest(sent);
    EXPECT_EQ(answer.status, 401) << answer.message.body;
    auto json = parseObject(answer.message.body);
    EXPECT_EQ(jsonText(json, "error"), "invalid signature");
    EXPECT_FALSE(jsonText(json, "reason").empty());
  }

  // A good request after the bad ones: once it is delivered, anything streamed before it in
  // id order would have been delivered too.
  std::string goodBody = eventBody("evt_e2e_good");
  SentRequest good = stripeRequest(stripeSignature(kSecret, now, goodBody), goodBody);
  ASSERT_EQ(env_->ingest(good).status, 200);
  ASSERT_TRUE(env_->target->waitFor(
      [&](const RecordedRequest& r) { return r.message.value(kSeqHeader) == seqOf(good); },
      kStepTimeout));

  auto received = env_->target->requests();
  ASSERT_EQ(received.size(), 1u);
  expectDeliveredUnchanged(good, received[0], env_->target->port());
  EXPECT_TRUE(verified(seqOf(good)));
  for (const auto& sent : bad) EXPECT_TRUE(withSeq(received, seqOf(sent)).empty());

  // The refused requests are kept for inspection, marked invalid.
  WireResponse list =
      apiGet(env_->edgePort(), "/api/v1/hooks/" + env_->hookId() + "/events", env_->relay->token());
  ASSERT_EQ(list.status, 200) << list.message.body;
  auto events = parseObject(list.message.body)->getArray("events");
  ASSERT_TRUE(events);
  int invalid = 0;
  int valid = 0;
  for (size_t i = 0; i < events->size(); ++i) {
    std::string verdict = jsonText(events->getObject(static_cast<unsigned>(i)), "verdict");
    invalid += verdict == "invalid" ? 1 : 0;
    valid += verdict == "valid" ? 1 : 0;
  }
  EXPECT_EQ(invalid, 2);
  EXPECT_EQ(valid, 1);
}

}  // namespace
}  // namespace anm::e2e
