// tests/unit/diagnosis/facts.h: inputs for the rule tests and ways to look at their findings.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "anonymily/plugin.h"
#include "core/diagnosis/diagnosis.h"
#include "tests/unit/diagnosis/signing.h"

namespace anm::diagnosis::test {

/// The edge received the events at this time: 1700000000 whole seconds and a half.
inline constexpr int64_t kReceivedMs = 1700000000500;
inline constexpr int64_t kReceivedS = 1700000000;

inline constexpr char kStripeSecret[] = "whsec_current";
inline constexpr char kStripeBody[] =
    "{\n  \"id\": \"evt_1\",\n  \"type\": \"charge.succeeded\"\n}";

/// A Stripe event signed `ageS` seconds before its receipt, verified valid, no deliveries.
inline DiagnosisInput stripeEvent(int64_t ageS = 2) {
  DiagnosisInput input;
  input.hook.provider = "stripe";
  input.event.id = 17;
  input.event.method = "POST";
  input.event.pathSuffix = "/stripe";
  input.event.body = kStripeBody;
  input.event.headers = {
      {"Content-Type", "application/json; charset=utf-8"},
      {"Stripe-Signature", stripeSignature(kStripeSecret, kReceivedS - ageS, kStripeBody)}};
  input.event.receivedAtMs = kReceivedMs;
  input.event.verdict = store::Verdict::kValid;
  input.event.reason = ANM_REASON_OK;
  return input;
}

/// The same event refused by the plugin with `reason` and `message`.
inline DiagnosisInput refusedStripeEvent(int32_t reason, std::string message = "") {
  DiagnosisInput input = stripeEvent();
  input.event.verdict = store::Verdict::kInvalid;
  input.event.reason = reason;
  input.event.reasonMessage = std::move(message);
  return input;
}

/// One delivery report of relay "r1", reported a second after receipt.
inline DeliveryFacts delivery(int32_t status, std::string error = "") {
  DeliveryFacts facts;
  facts.relayId = "r1";
  facts.status = status;
  facts.durationMs = 12;
  facts.error = std::move(error);
  facts.timeoutMs = 30000;
  facts.startedAtMs = kReceivedMs + 900;
  facts.reportedAtMs = kReceivedMs + 1000;
  return facts;
}

inline std::vector<std::string> codesOf(const std::vector<Finding>& findings) {
  std::vector<std::string> codes;
  for (const auto& finding : findings) codes.push_back(finding.code);
  return codes;
}

/// The codes of the findings whose code starts with `family` ("signature." or "delivery.").
inline std::vector<std::string> codesIn(const std::vector<Finding>& findings,
                                        std::string_view family) {
  std::vector<std::string> codes;
  for (const auto& finding : findings) {
    if (finding.code.compare(0, family.size(), family) == 0) codes.push_back(finding.code);
  }
  return codes;
}

/// The value of the evidence `name`, or "<none>".
inline std::string evidence(const Finding& finding, std::string_view name) {
  for (const auto& fact : finding.evidence) {
    if (fact.name == name) return fact.value;
  }
  return "<none>";
}

/// The first finding with `code`, or a failed expectation and an empty finding.
inline Finding findingWith(const std::vector<Finding>& findings, std::string_view code) {
  for (const auto& finding : findings) {
    if (finding.code == code) return finding;
  }
  ADD_FAILURE() << "no finding " << code;
  return {};
}

/// One row of a rule's table: the input and the code expected in the family, "" for none.
struct RuleCase {
  std::string name;
  std::function<DiagnosisInput()> input;
  std::string expected;
};

/// Runs every row: the family's findings must be exactly the expected code, or nothing.
inline void expectCodes(const std::vector<RuleCase>& cases, std::string_view family) {
  for (const auto& row : cases) {
    SCOPED_TRACE(row.name);
    const auto codes = codesIn(diagnose(row.input()), family);
    if (row.expected.empty()) {
      EXPECT_TRUE(codes.empty()) << "unexpected " << (codes.empty() ? "" : codes.front());
    } else {
      EXPECT_EQ(codes, std::vector<std::string>{row.expected});
    }
  }
}

}  // namespace anm::diagnosis::test
