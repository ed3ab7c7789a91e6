// tests/unit/diagnosis/signature_rules_test.cpp: each signature rule on its case and near misses.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/diagnosis/diagnosis.h"
#include "tests/unit/diagnosis/facts.h"

namespace anm::diagnosis {
namespace {

using test::expectCodes;
using test::RuleCase;

constexpr char kFamily[] = "signature.";

DiagnosisInput withHeaders(DiagnosisInput input, std::vector<store::Header> headers) {
  input.event.headers = std::move(headers);
  return input;
}

DiagnosisInput unsignedOnPlainHook(std::vector<store::Header> headers) {
  DiagnosisInput input = test::stripeEvent();
  input.hook.provider = "";
  input.event.verdict = store::Verdict::kUnsigned;
  input.event.reason = ANM_REASON_NOT_SIGNED;
  input.event.headers = std::move(headers);
  return input;
}

/// A Standard Webhooks event with the specification's sample, refused with `reason`.
DiagnosisInput standardWebhooksEvent(int32_t reason, std::string signature) {
  DiagnosisInput input;
  input.hook.standardWebhooks = true;
  input.event.method = "POST";
  input.event.body = test::kSampleBody;
  input.event.headers = {{"webhook-id", test::kSampleId},
                         {"webhook-timestamp", std::to_string(test::kSampleTimestamp)},
                         {"webhook-signature", std::move(signature)}};
  input.event.receivedAtMs = test::kSampleTimestamp * 1000 + 2000;
  input.event.verdict = store::Verdict::kInvalid;
  input.event.reason = reason;
  return input;
}

DiagnosisInput mismatchWithBody(std::string body, std::vector<store::Header> extra = {}) {
  DiagnosisInput input = test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH);
  input.event.body = std::move(body);
  for (auto& header : extra) input.event.headers.push_back(std::move(header));
  return input;
}

TEST(SignatureRulesTest, ValidEventsHaveNoSignatureFinding) {
  expectCodes({{"valid stripe event", [] { return test::stripeEvent(); }, ""}}, kFamily);
  EXPECT_TRUE(diagnose(test::stripeEvent()).size() == 1);  // only delivery.not_relayed
}

TEST(SignatureRulesTest, UncheckedFiresOnlyForSignedRequestsToPlainHooks) {
  expectCodes({{"stripe-signed request to a plain hook",
                [] {
                  return unsignedOnPlainHook({{"Stripe-Signature", "t=1,v1=00"}});
                },
                std::string(code::kSignatureUnchecked)},
               {"standard webhooks request to a plain hook",
                [] {
                  return unsignedOnPlainHook({{"webhook-signature", "v1,AA=="}});
                },
                std::string(code::kSignatureUnchecked)},
               {"unsigned request to a plain hook", [] { return unsignedOnPlainHook({}); }, ""},
               {"unknown signature header",
                [] {
                  return unsignedOnPlainHook({{"X-Signature", "00"}});
                },
                ""}},
              kFamily);

  const auto finding =
      test::findingWith(diagnose(unsignedOnPlainHook({{"x-hub-signature-256", "sha256=00"}})),
                        code::kSignatureUnchecked);
  EXPECT_EQ(finding.severity, Severity::kWarning);
  EXPECT_EQ(test::evidence(finding, "signature_header"), "X-Hub-Signature-256");
  EXPECT_NE(finding.fix.find("--provider github"), std::string::npos);
}

TEST(SignatureRulesTest, SecretMissing) {
  expectCodes({{"reason secret_missing",
                [] { return test::refusedStripeEvent(ANM_REASON_SECRET_MISSING, "no secret"); },
                std::string(code::kSignatureSecretMissing)},
               {"standard webhooks without a usable secret",
                [] { return standardWebhooksEvent(ANM_REASON_SECRET_MISSING, "v1,AA=="); },
                std::string(code::kSignatureSecretMissing)},
               {"near miss: mismatch is not a missing secret",
                [] { return test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH); },
                std::string(code::kSignatureMismatch)}},
              kFamily);
  const auto finding =
      test::findingWith(diagnose(standardWebhooksEvent(ANM_REASON_SECRET_MISSING, "")),
                        code::kSignatureSecretMissing);
  EXPECT_NE(finding.fix.find("rotate-secret"), std::string::npos);
}

TEST(SignatureRulesTest, HeaderMissingOrWrongProvider) {
  const auto missing = [](std::vector<store::Header> headers) {
    return withHeaders(
        test::refusedStripeEvent(ANM_REASON_HEADER_MISSING, "no Stripe-Signature header"),
        std::move(headers));
  };
  expectCodes({{"no signature header at all",
                [&] {
                  return missing({{"Content-Type", "text/plain"}});
                },
                std::string(code::kSignatureHeaderMissing)},
               {"github's header on a stripe hook",
                [&] {
                  return missing({{"X-Hub-Signature-256", "sha256=00"}});
                },
                std::string(code::kSignatureWrongProvider)},
               {"svix names on a standard webhooks hook",
                [] {
                  return withHeaders(standardWebhooksEvent(ANM_REASON_HEADER_MISSING, ""),
                                     {{"svix-id", "msg_1"}, {"svix-signature", "v1,AA=="}});
                },
                std::string(code::kSignatureWrongProvider)},
               {"near miss: github's legacy header on a github hook is its own",
                [] {
                  DiagnosisInput input = test::refusedStripeEvent(ANM_REASON_HEADER_MISSING);
                  input.hook.provider = "github";
                  input.event.headers = {{"X-Hub-Signature", "sha1=00"}};
                  return input;
                },
                std::string(code::kSignatureHeaderMissing)}},
              kFamily);

  const auto wrong = test::findingWith(diagnose(missing({{"X-Shopify-Hmac-Sha256", "AA=="}})),
                                       code::kSignatureWrongProvider);
  EXPECT_EQ(test::evidence(wrong, "found_sender"), "Shopify");
  EXPECT_NE(wrong.fix.find("--provider shopify"), std::string::npos);

  // A bodyless GET is named for what it most likely is.
  DiagnosisInput probe = missing({});
  probe.event.method = "GET";
  probe.event.body.clear();
  const auto finding = test::findingWith(diagnose(probe), code::kSignatureHeaderMissing);
  EXPECT_NE(finding.detail.find("browser"), std::string::npos);
  EXPECT_EQ(test::evidence(finding, "expected_header"), "Stripe-Signature");
}

TEST(SignatureRulesTest, HeaderMalformedTimestampMissingAlgorithmRefused) {
  expectCodes({{"malformed",
                [] {
                  return test::refusedStripeEvent(ANM_REASON_HEADER_MALFORMED,
                                                  "Stripe-Signature has an element without \"=\"");
                },
                std::string(code::kSignatureHeaderMalformed)},
               {"timestamp missing",
                [] {
                  return test::refusedStripeEvent(ANM_REASON_TIMESTAMP_MISSING,
                                                  "Stripe-Signature has no t= timestamp");
                },
                std::string(code::kSignatureTimestampMissing)},
               {"sha1 only on github",
                [] {
                  DiagnosisInput input = test::refusedStripeEvent(ANM_REASON_ALGORITHM_REFUSED);
                  input.hook.provider = "github";
                  return input;
                },
                std::string(code::kSignatureAlgorithmRefused)}},
              kFamily);

  DiagnosisInput github = test::refusedStripeEvent(ANM_REASON_ALGORITHM_REFUSED, "sha1 only");
  github.hook.provider = "github";
  const auto finding = test::findingWith(diagnose(github), code::kSignatureAlgorithmRefused);
  EXPECT_NE(finding.fix.find("allow_sha1=true"), std::string::npos);
  EXPECT_EQ(test::evidence(finding, "edge_message"), "sha1 only");
  EXPECT_EQ(test::evidence(finding, "reason"), "algorithm_refused");
}

TEST(SignatureRulesTest, SentencesNameTheSenderNotThePlugin) {
  DiagnosisInput acme = test::refusedStripeEvent(ANM_REASON_HEADER_MISSING, "no X-Acme header");
  acme.hook.provider = "acme";
  acme.event.headers.clear();
  const auto missing = test::findingWith(diagnose(acme), code::kSignatureHeaderMissing);
  EXPECT_NE(missing.detail.find("lacks a header the sender signs with"), std::string::npos);
  EXPECT_EQ(test::evidence(missing, "verifier"), "acme");

  acme.event.reason = ANM_REASON_TIMESTAMP_MISSING;
  EXPECT_NE(test::findingWith(diagnose(acme), code::kSignatureTimestampMissing)
                .detail.find("The plugin \"acme\" needs a signed timestamp"),
            std::string::npos);

  const auto stripe =
      test::findingWith(diagnose(test::refusedStripeEvent(ANM_REASON_TIMESTAMP_MISSING)),
                        code::kSignatureTimestampMissing);
  EXPECT_NE(stripe.detail.find("the timestamp Stripe signs together with the body (t= in "
                               "Stripe-Signature)"),
            std::string::npos);
}

TEST(SignatureRulesTest, TimestampOutsideGivesSkewAndWindow) {
  DiagnosisInput old = test::stripeEvent(412);
  old.event.verdict = store::Verdict::kInvalid;
  old.event.reason = ANM_REASON_TIMESTAMP_OUTSIDE;
  const auto finding = test::findingWith(diagnose(old), code::kSignatureTimestampOutside);
  EXPECT_EQ(test::evidence(finding, "skew_s"), "412");
  EXPECT_EQ(test::evidence(finding, "window_s"), "300");
  EXPECT_NE(finding.detail.find("412 s older"), std::string::npos);
  EXPECT_NE(finding.detail.find("allows 300 s"), std::string::npos);

  // The hook's own window counts, not the default.
  old.hook.toleranceS = 60;
  EXPECT_EQ(test::evidence(test::findingWith(diagnose(old), code::kSignatureTimestampOutside),
                           "window_s"),
            "60");

  // Near miss: a replay without its original's time gets no skew against the replay's time.
  DiagnosisInput replay = old;
  replay.event.replayOf = 3;
  replay.event.receivedAtMs = test::kReceivedMs + 86400000;
  const auto unknown = test::findingWith(diagnose(replay), code::kSignatureTimestampOutside);
  EXPECT_EQ(test::evidence(unknown, "skew_s"), "<none>");
  EXPECT_NE(unknown.detail.find("not computed"), std::string::npos);

  // With the original's time of receipt, the skew is the original's.
  replay.event.verdictAtMs = test::kReceivedMs;
  EXPECT_EQ(test::evidence(test::findingWith(diagnose(replay), code::kSignatureTimestampOutside),
                           "skew_s"),
            "412");
}

TEST(SignatureRulesTest, PreviousSecretIsRecognised) {
  DiagnosisInput rotated =
      standardWebhooksEvent(ANM_REASON_SIGNATURE_MISMATCH, test::kSampleSignature);
  rotated.hook.previousSecret = test::kSampleSecret;
  expectCodes({{"signed with the previous secret", [&] { return rotated; },
                std::string(code::kSignaturePreviousSecret)},
               {"near miss: no previous secret kept",
                [&] {
                  DiagnosisInput input = rotated;
                  input.hook.previousSecret.clear();
                  return input;
                },
                std::string(code::kSignatureMismatch)},
               {"near miss: another previous secret",
                [&] {
                  DiagnosisInput input = rotated;
                  input.hook.previousSecret = "whsec_bm90IHRoZSBzZWNyZXQ=";
                  return input;
                },
                std::string(code::kSignatureMismatch)},
               {"near miss: body not fetched",
                [&] {
                  DiagnosisInput input = rotated;
                  input.event.bodySize = static_cast<int64_t>(input.event.body.size());
                  input.event.body.clear();
                  return input;
                },
                std::string(code::kSignatureMismatch)}},
              kFamily);

  // Stripe too, when the edge keeps a provider's previous secret.
  DiagnosisInput stripe = test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH);
  stripe.hook.previousSecret = test::kStripeSecret;
  expectCodes({{"stripe signed with the previous secret", [&] { return stripe; },
                std::string(code::kSignaturePreviousSecret)}},
              kFamily);
}

TEST(SignatureRulesTest, BodyChangedNeedsEvidence) {
  const std::string gzip("\x1F\x8B\x08\x00rest", 8);
  const std::string zlib("\x78\x9C rest", 7);
  expectCodes(
      {{"edited replay",
        [] {
          DiagnosisInput input = test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH);
          input.event.replayOf = 5;
          input.event.modified = true;
          return input;
        },
        std::string(code::kSignatureBodyChanged)},
       {"gzip declared, plain body",
        [] {
          return mismatchWithBody(test::kStripeBody, {{"Content-Encoding", "gzip"}});
        },
        std::string(code::kSignatureBodyChanged)},
       {"near miss: gzip declared, gzip body",
        [&] {
          return mismatchWithBody(gzip, {{"Content-Encoding", " GZIP "}});
        },
        std::string(code::kSignatureMismatch)},
       {"deflate declared, plain body",
        [] {
          return mismatchWithBody(test::kStripeBody, {{"Content-Encoding", "deflate"}});
        },
        std::string(code::kSignatureBodyChanged)},
       {"near miss: deflate declared, zlib body",
        [&] {
          return mismatchWithBody(zlib, {{"Content-Encoding", "deflate"}});
        },
        std::string(code::kSignatureMismatch)},
       {"near miss: brotli cannot be checked",
        [] {
          return mismatchWithBody(test::kStripeBody, {{"Content-Encoding", "br"}});
        },
        std::string(code::kSignatureMismatch)},
       {"the last coding is the one the bytes show",
        [&] {
          return mismatchWithBody(gzip, {{"Content-Encoding", "br, zstd"}});
        },
        std::string(code::kSignatureBodyChanged)},
       {"byte-order mark", [] { return mismatchWithBody("\xEF\xBB\xBF{\n}"); },
        std::string(code::kSignatureBodyChanged)},
       {"CRLF in JSON", [] { return mismatchWithBody("{\r\n  \"id\": 1\r\n}"); },
        std::string(code::kSignatureBodyChanged)},
       {"near miss: CRLF in a form body", [] { return mismatchWithBody("a=1\r\nb=2"); },
        std::string(code::kSignatureMismatch)},
       {"stripe JSON on one line", [] { return mismatchWithBody(R"({"id":"evt_1"})"); },
        std::string(code::kSignatureBodyChanged)},
       {"near miss: github JSON on one line",
        [] {
          DiagnosisInput input = mismatchWithBody(R"({"action":"opened"})");
          input.hook.provider = "github";
          return input;
        },
        std::string(code::kSignatureMismatch)},
       {"near miss: stripe's indented JSON", [] { return mismatchWithBody(test::kStripeBody); },
        std::string(code::kSignatureMismatch)}},
      kFamily);

  const auto finding = test::findingWith(
      diagnose(mismatchWithBody(test::kStripeBody, {{"Content-Encoding", "gzip"}})),
      code::kSignatureBodyChanged);
  EXPECT_NE(test::evidence(finding, "body_signs").find("Content-Encoding"), std::string::npos);
}

TEST(SignatureRulesTest, MismatchNamesBothCausesAndHowToTellThemApart) {
  const auto finding =
      test::findingWith(diagnose(test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH,
                                                          "no v1 signature matches the secret")),
                        code::kSignatureMismatch);
  EXPECT_NE(finding.detail.find("another secret"), std::string::npos);
  EXPECT_NE(finding.detail.find("body changed"), std::string::npos);
  EXPECT_NE(finding.fix.find("if every event of this hook fails, it is the secret"),
            std::string::npos);
  EXPECT_NE(finding.fix.find("Stripe dashboard"), std::string::npos);
  EXPECT_EQ(test::evidence(finding, "body_bytes"),
            std::to_string(std::string(test::kStripeBody).size()));
}

TEST(SignatureRulesTest, PluginFailuresAndUnknownReasons) {
  expectCodes({{"internal", [] { return test::refusedStripeEvent(ANM_REASON_INTERNAL, "boom"); },
                std::string(code::kSignaturePluginFailed)},
               {"a reason from a newer SDK", [] { return test::refusedStripeEvent(42, "new"); },
                std::string(code::kSignatureRefused)}},
              kFamily);
  const auto finding =
      test::findingWith(diagnose(test::refusedStripeEvent(42)), code::kSignatureRefused);
  EXPECT_EQ(test::evidence(finding, "reason_code"), "42");
}

TEST(SignatureRulesTest, InvalidEventsAreNotReportedAsUnrelayed) {
  const auto findings = diagnose(test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH));
  EXPECT_EQ(test::codesOf(findings),
            std::vector<std::string>{std::string(code::kSignatureMismatch)});

  // A replay of an invalid event is streamed, so its missing delivery counts.
  DiagnosisInput replay = test::refusedStripeEvent(ANM_REASON_SIGNATURE_MISMATCH);
  replay.event.replayOf = 9;
  EXPECT_EQ(test::codesIn(diagnose(replay), "delivery."),
            std::vector<std::string>{std::string(code::kDeliveryNotRelayed)});
}

}  // namespace
}  // namespace anm::diagnosis

namespace anm::diagnosis {
namespace {

TEST(StoredRecordsTest, FactsComeFromTheStoredRecords) {
  store::HookRecord hook;
  hook.standardWebhooks = true;
  hook.signingSecret = "whsec_new";
  hook.previousSigningSecret = "whsec_old";
  hook.toleranceS = 60;
  const HookFacts facts = hookFacts(hook);
  EXPECT_TRUE(facts.standardWebhooks);
  EXPECT_EQ(facts.toleranceS, 60);
  EXPECT_EQ(facts.previousSecret, "whsec_old");

  // The signing secret is the Standard Webhooks one; a provider hook verifies with its own.
  hook.provider = "stripe";
  EXPECT_EQ(hookFacts(hook).previousSecret, "");

  store::EventRecord event;
  event.id = 4;
  event.method = "POST";
  event.pathSuffix = "/x";
  event.headers = {{"A", "b"}};
  event.bodySize = 10;
  event.receivedAtMs = 5;
  event.verdict = store::Verdict::kInvalid;
  event.reason = ANM_REASON_HEADER_MISSING;
  event.reasonMessage = "no header";
  event.replayOf = 2;
  const EventFacts fromEvent = eventFacts(event);
  EXPECT_EQ(fromEvent.id, 4);
  EXPECT_EQ(fromEvent.headers, event.headers);
  EXPECT_EQ(fromEvent.bodySize, 10);
  EXPECT_EQ(fromEvent.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(fromEvent.replayOf, 2);
  EXPECT_EQ(fromEvent.verdictAtMs, 0);
  EXPECT_FALSE(fromEvent.modified);

  const DeliveryFacts delivered = deliveryFacts({4, "relay", 502, 7, "", 99});
  EXPECT_EQ(delivered.relayId, "relay");
  EXPECT_EQ(delivered.status, 502);
  EXPECT_EQ(delivered.durationMs, 7);
  EXPECT_EQ(delivered.reportedAtMs, 99);
  EXPECT_EQ(delivered.phase, DeliveryPhase::kUnknown);

  // What schema 4 stores of a report and of an edited replay reaches the rules.
  event.modified = true;
  EXPECT_TRUE(eventFacts(event).modified);
  store::DeliveryRecord report{4, "relay", 0, 30001, "timeout", 99};
  report.phase = store::DeliveryPhase::kSending;
  report.timeoutMs = 30000;
  report.targetHttps = true;
  report.startedAtMs = 60;
  report.responseExcerpt = "busy";
  report.location = "/elsewhere";
  const DeliveryFacts timedOut = deliveryFacts(report);
  EXPECT_EQ(timedOut.phase, DeliveryPhase::kSending);
  EXPECT_EQ(timedOut.timeoutMs, 30000);
  EXPECT_TRUE(timedOut.targetHttps);
  EXPECT_EQ(timedOut.startedAtMs, 60);
  EXPECT_EQ(timedOut.responseExcerpt, "busy");
  EXPECT_EQ(timedOut.location, "/elsewhere");
}

}  // namespace
}  // namespace anm::diagnosis
