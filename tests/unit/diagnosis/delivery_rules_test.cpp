// tests/unit/diagnosis/delivery_rules_test.cpp: each delivery rule on its case and near misses.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/diagnosis/diagnosis.h"
#include "tests/unit/diagnosis/facts.h"

namespace anm::diagnosis {
namespace {

using test::delivery;
using test::expectCodes;
using test::RuleCase;

constexpr char kFamily[] = "delivery.";

/// The valid Stripe event delivered once as `facts` says.
DiagnosisInput deliveredAs(DeliveryFacts facts) {
  DiagnosisInput input = test::stripeEvent();
  input.deliveries = {std::move(facts)};
  return input;
}

DeliveryFacts withPhase(DeliveryFacts facts, DeliveryPhase phase) {
  facts.phase = phase;
  return facts;
}

DeliveryFacts overHttps(DeliveryFacts facts) {
  facts.targetHttps = true;
  return facts;
}

DiagnosisInput withBodyBytes(DiagnosisInput input, int64_t bytes) {
  input.event.body.clear();
  input.event.bodySize = bytes;
  return input;
}

Finding only(const DiagnosisInput& input, std::string_view code) {
  return test::findingWith(diagnose(input), code);
}

TEST(DeliveryRulesTest, SuccessAndMissingDeliveries) {
  expectCodes({{"2xx", [] { return deliveredAs(delivery(200)); }, ""},
               {"204", [] { return deliveredAs(delivery(204)); }, ""},
               {"no delivery yet", [] { return test::stripeEvent(); },
                std::string(code::kDeliveryNotRelayed)}},
              kFamily);
  EXPECT_EQ(only(test::stripeEvent(), code::kDeliveryNotRelayed).severity, Severity::kInfo);
}

TEST(DeliveryRulesTest, OnlyEachRelaysLatestReportCounts) {
  DiagnosisInput recovered = test::stripeEvent();
  recovered.deliveries = {delivery(0, "connection refused"), delivery(200)};
  DiagnosisInput broke = test::stripeEvent();
  broke.deliveries = {delivery(200), delivery(500)};
  DiagnosisInput twoRelays = test::stripeEvent();
  twoRelays.deliveries = {delivery(500), delivery(0, "timeout")};
  twoRelays.deliveries[1].relayId = "r2";
  expectCodes(
      {{"failed then delivered", [&] { return recovered; }, ""},
       {"delivered then failed", [&] { return broke; }, std::string(code::kDeliveryServerError)}},
      kFamily);
  EXPECT_EQ(test::codesIn(diagnose(twoRelays), kFamily),
            (std::vector<std::string>{std::string(code::kDeliveryServerError),
                                      std::string(code::kDeliveryTimeout)}));
  EXPECT_EQ(diagnose(twoRelays)[1].relayId, "r2");
}

TEST(DeliveryRulesTest, ConnectionErrorWords) {
  expectCodes(
      {{"refused", [] { return deliveredAs(delivery(0, "connection refused")); },
        std::string(code::kDeliveryNothingListening)},
       {"unresolvable host",
        [] { return deliveredAs(delivery(0, "could not resolve host app.local")); },
        std::string(code::kDeliveryHostNotFound)},
       {"timeout", [] { return deliveredAs(delivery(0, "timeout")); },
        std::string(code::kDeliveryTimeout)},
       {"invalid response",
        [] { return deliveredAs(delivery(0, "invalid response: bad status line")); },
        std::string(code::kDeliveryInvalidResponse)},
       {"status outside HTTP's range", [] { return deliveredAs(delivery(600)); },
        std::string(code::kDeliveryInvalidResponse)},
       {"unreadable at the edge", [] { return deliveredAs(delivery(0, "unreadable at the edge")); },
        std::string(code::kDeliveryRelayError)},
       {"unsendable header", [] { return deliveredAs(delivery(0, "invalid header field")); },
        std::string(code::kDeliveryRelayError)},
       {"unknown word", [] { return deliveredAs(delivery(0, "something odd")); },
        std::string(code::kDeliveryFailed)},
       {"neither status nor error", [] { return deliveredAs(delivery(0, "")); },
        std::string(code::kDeliveryFailed)}},
      kFamily);
}

TEST(DeliveryRulesTest, TimeoutGivesTheLimit) {
  DeliveryFacts slow = delivery(0, "timeout");
  slow.durationMs = 30004;
  const auto finding = only(deliveredAs(slow), code::kDeliveryTimeout);
  EXPECT_EQ(test::evidence(finding, "timeout_ms"), "30000");
  EXPECT_EQ(test::evidence(finding, "duration_ms"), "30004");
  EXPECT_NE(finding.detail.find("within 30 s"), std::string::npos);

  const auto connecting =
      only(deliveredAs(withPhase(slow, DeliveryPhase::kConnecting)), code::kDeliveryTimeout);
  EXPECT_NE(connecting.detail.find("could not even connect"), std::string::npos);
  EXPECT_EQ(test::evidence(connecting, "phase"), "connecting");
}

TEST(DeliveryRulesTest, TlsFailureNeedsAnHttpsTarget) {
  const std::string handshake =
      "could not finish connecting: SSL Exception: error:0A000086:SSL routines::certificate "
      "verify failed";
  expectCodes(
      {{"certificate refused over https",
        [&] { return deliveredAs(overHttps(delivery(0, handshake))); },
        std::string(code::kDeliveryTlsFailure)},
       {"plain http spoken on an https target",
        [] {
          return deliveredAs(overHttps(
              delivery(0, "could not finish connecting: SSL Exception: wrong version number")));
        },
        std::string(code::kDeliveryTlsFailure)},
       {"near miss: the same words on an http target",
        [&] { return deliveredAs(delivery(0, handshake)); }, std::string(code::kDeliveryFailed)},
       {"near miss: refused connection over https",
        [] { return deliveredAs(overHttps(delivery(0, "connection refused"))); },
        std::string(code::kDeliveryNothingListening)}},
      kFamily);
  const auto plain =
      only(deliveredAs(overHttps(delivery(0, "SSL Exception: wrong version number"))),
           code::kDeliveryTlsFailure);
  EXPECT_NE(plain.detail.find("plain HTTP"), std::string::npos);
}

TEST(DeliveryRulesTest, BodyTooLargeOrConnectionClosed) {
  const auto cut = [](DeliveryPhase phase, int64_t bytes, const char* word = "connection reset") {
    return withBodyBytes(deliveredAs(withPhase(delivery(0, word), phase)), bytes);
  };
  expectCodes(
      {{"413", [] { return deliveredAs(delivery(413)); }, std::string(code::kDeliveryBodyTooLarge)},
       {"reset while sending 100 KiB", [&] { return cut(DeliveryPhase::kSending, 100 * 1024); },
        std::string(code::kDeliveryBodyTooLarge)},
       {"closed while sending 64 KiB",
        [&] { return cut(DeliveryPhase::kSending, kLargeBodyBytes, "connection closed"); },
        std::string(code::kDeliveryBodyTooLarge)},
       {"reset in an unknown phase with 2 MiB",
        [&] { return cut(DeliveryPhase::kUnknown, 2 * 1024 * 1024); },
        std::string(code::kDeliveryBodyTooLarge)},
       {"near miss: reset while sending a small body",
        [&] { return cut(DeliveryPhase::kSending, kLargeBodyBytes - 1); },
        std::string(code::kDeliveryConnectionClosed)},
       {"near miss: reset while receiving 2 MiB",
        [&] { return cut(DeliveryPhase::kReceiving, 2 * 1024 * 1024); },
        std::string(code::kDeliveryConnectionClosed)},
       {"near miss: unknown phase with 100 KiB",
        [&] { return cut(DeliveryPhase::kUnknown, 100 * 1024); },
        std::string(code::kDeliveryConnectionClosed)},
       {"closed before a response",
        [&] { return cut(DeliveryPhase::kUnknown, 10, "connection closed before a response"); },
        std::string(code::kDeliveryConnectionClosed)}},
      kFamily);
  const auto finding = only(cut(DeliveryPhase::kSending, 100 * 1024), code::kDeliveryBodyTooLarge);
  EXPECT_EQ(test::evidence(finding, "body_bytes"), "102400");
  EXPECT_NE(finding.detail.find("still sending the 102400-byte body"), std::string::npos);
}

TEST(DeliveryRulesTest, RedirectGivesItsLocation) {
  DeliveryFacts redirect = delivery(301);
  redirect.location = "https://localhost:3000/webhooks/stripe/";
  const auto finding = only(deliveredAs(redirect), code::kDeliveryRedirect);
  EXPECT_EQ(finding.status, 301);
  EXPECT_EQ(test::evidence(finding, "location"), "https://localhost:3000/webhooks/stripe/");
  EXPECT_NE(finding.detail.find("plain http to https"), std::string::npos);

  redirect.location = "/users/sign_in";
  EXPECT_NE(only(deliveredAs(redirect), code::kDeliveryRedirect).detail.find("login redirect"),
            std::string::npos);
  redirect.location.clear();
  EXPECT_NE(only(deliveredAs(redirect), code::kDeliveryRedirect).detail.find("without a Location"),
            std::string::npos);

  // Near miss: a 2xx with a Location is a success.
  DeliveryFacts created = delivery(201);
  created.location = "/things/1";
  expectCodes({{"201 with a Location", [&] { return deliveredAs(created); }, ""}}, kFamily);
}

TEST(DeliveryRulesTest, LocalRefusalAfterAValidSignature) {
  const auto refusedWith = [](int32_t status) {
    DeliveryFacts facts = delivery(status);
    facts.responseExcerpt = R"({"error":"No signatures found matching the expected signature"})";
    return deliveredAs(facts);
  };
  expectCodes({{"401", [&] { return refusedWith(401); },
                std::string(code::kDeliveryLocalVerificationFailed)},
               {"400", [&] { return refusedWith(400); },
                std::string(code::kDeliveryLocalVerificationFailed)},
               {"403", [&] { return refusedWith(403); },
                std::string(code::kDeliveryLocalVerificationFailed)},
               {"near miss: 404 is a routing error", [&] { return refusedWith(404); },
                std::string(code::kDeliveryClientError)},
               {"near miss: 422 is the handler's validation", [&] { return refusedWith(422); },
                std::string(code::kDeliveryClientError)},
               {"near miss: the hook verifies nothing",
                [&] {
                  DiagnosisInput input = refusedWith(401);
                  input.hook.provider = "";
                  input.event.verdict = store::Verdict::kUnsigned;
                  return input;
                },
                std::string(code::kDeliveryClientError)},
               {"near miss: a replay of an invalid event",
                [&] {
                  DiagnosisInput input = refusedWith(401);
                  input.event.verdict = store::Verdict::kInvalid;
                  input.event.reason = ANM_REASON_SIGNATURE_MISMATCH;
                  input.event.replayOf = 3;
                  return input;
                },
                std::string(code::kDeliveryClientError)},
               {"an edited replay",
                [&] {
                  DiagnosisInput input = refusedWith(401);
                  input.event.replayOf = 3;
                  input.event.modified = true;
                  return input;
                },
                std::string(code::kDeliveryEditedReplayRefused)}},
              kFamily);

  // The finding says the edge verified it, what that leaves, and which checks tell them apart.
  const auto finding = only(refusedWith(401), code::kDeliveryLocalVerificationFailed);
  EXPECT_EQ(finding.status, 401);
  EXPECT_NE(finding.detail.find("The edge verified Stripe-Signature with the hook's secret"),
            std::string::npos);
  EXPECT_NE(finding.detail.find("another secret"), std::string::npos);
  EXPECT_NE(finding.detail.find("re-serialized"), std::string::npos);
  EXPECT_NE(finding.detail.find("No signatures found"), std::string::npos);
  EXPECT_NE(finding.fix.find("first 8 characters"), std::string::npos);
  const std::string size = std::to_string(std::string(test::kStripeBody).size());
  EXPECT_NE(finding.fix.find(size + " bytes means the body is intact"), std::string::npos);
  EXPECT_EQ(test::evidence(finding, "body_bytes"), size);
  EXPECT_EQ(test::evidence(finding, "content_type"), "application/json; charset=utf-8");
}

TEST(DeliveryRulesTest, LocalTimestampOutsideTellsAgeFromSecret) {
  // An event signed 2 s before receipt, delivered `delayS` seconds after receipt.
  const auto deliveredAfter = [](int64_t delayS, const char* provider = "stripe") {
    DiagnosisInput input = test::stripeEvent();
    input.hook.provider = provider;
    DeliveryFacts facts = delivery(400);
    facts.startedAtMs = test::kReceivedMs + delayS * 1000;
    input.deliveries = {facts};
    return input;
  };
  expectCodes(
      {{"replayed an hour later", [&] { return deliveredAfter(3600); },
        std::string(code::kDeliveryLocalTimestampOutside)},
       {"local clock far behind", [&] { return deliveredAfter(-400); },
        std::string(code::kDeliveryLocalTimestampOutside)},
       {"near miss: 298 s old at delivery, inside 300 s", [&] { return deliveredAfter(296); },
        std::string(code::kDeliveryLocalVerificationFailed)},
       {"near miss: github signs no time", [&] { return deliveredAfter(3600, "github"); },
        std::string(code::kDeliveryLocalVerificationFailed)}},
      kFamily);

  const auto old = only(deliveredAfter(3600), code::kDeliveryLocalTimestampOutside);
  EXPECT_EQ(test::evidence(old, "age_at_delivery_s"), "3602");
  EXPECT_EQ(test::evidence(old, "library_window_s"), "300");
  EXPECT_NE(old.detail.find("3602 s old"), std::string::npos);
  const auto future = only(deliveredAfter(-400), code::kDeliveryLocalTimestampOutside);
  EXPECT_EQ(test::evidence(future, "age_at_delivery_s"), "-398");
  EXPECT_NE(future.detail.find("clock is most likely wrong"), std::string::npos);

  // Without the relay's start time, the edge's report time stands in.
  DiagnosisInput reportedOnly = deliveredAfter(3600);
  reportedOnly.deliveries[0].startedAtMs = 0;
  EXPECT_EQ(test::codesIn(diagnose(reportedOnly), kFamily),
            std::vector<std::string>{std::string(code::kDeliveryLocalVerificationFailed)});
  reportedOnly.deliveries[0].reportedAtMs = test::kReceivedMs + 3600 * 1000;
  EXPECT_EQ(test::codesIn(diagnose(reportedOnly), kFamily),
            std::vector<std::string>{std::string(code::kDeliveryLocalTimestampOutside)});
}

TEST(DeliveryRulesTest, ClientAndServerErrorsQuoteTheAnswer) {
  DeliveryFacts notFound = delivery(404);
  notFound.responseExcerpt = "Cannot POST /api/hooks/stripe";
  const auto routing = only(deliveredAs(notFound), code::kDeliveryClientError);
  EXPECT_NE(routing.detail.find("\"Cannot POST /api/hooks/stripe\""), std::string::npos);
  EXPECT_NE(routing.detail.find("path suffix \"/stripe\""), std::string::npos);
  EXPECT_EQ(test::evidence(routing, "excerpt"), "Cannot POST /api/hooks/stripe");

  DeliveryFacts badGateway = delivery(502);
  const auto proxy = only(deliveredAs(badGateway), code::kDeliveryServerError);
  EXPECT_NE(proxy.detail.find("proxy"), std::string::npos);
  expectCodes(
      {{"500", [] { return deliveredAs(delivery(500)); }, std::string(code::kDeliveryServerError)},
       {"near miss: 499 is a client error", [] { return deliveredAs(delivery(499)); },
        std::string(code::kDeliveryClientError)}},
      kFamily);
}

TEST(DeliveryRulesTest, ExcerptsAreCutAndMadeSafe) {
  DeliveryFacts noisy = delivery(500);
  noisy.responseExcerpt = "\xFF\r\n" + std::string(2000, 'x');
  const auto finding = only(deliveredAs(noisy), code::kDeliveryServerError);

  // Evidence keeps up to kExcerptBytes on one line, the detail sentence far less.
  const std::string excerpt = test::evidence(finding, "excerpt");
  EXPECT_EQ(excerpt.substr(0, 5), "\xEF\xBF\xBD  ");
  EXPECT_EQ(excerpt.size(), kExcerptBytes + 3);
  EXPECT_EQ(excerpt.substr(excerpt.size() - 3), "\xE2\x80\xA6");
  EXPECT_LE(finding.detail.size(), 200 + kDetailExcerptBytes);
  EXPECT_EQ(finding.detail.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace anm::diagnosis
