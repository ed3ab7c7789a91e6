// tests/unit/search/fields_test.cpp: field names, value names and the near-miss suggestions.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/fields.h"

#include <gtest/gtest.h>

#include "core/plugin/registry.h"

namespace anm::search {
namespace {

TEST(Fields, NamesAreLookedUpIgnoringCase) {
  EXPECT_EQ(fieldNamed("status"), Field::kStatus);
  EXPECT_EQ(fieldNamed("STATUS"), Field::kStatus);
  EXPECT_EQ(fieldNamed("header"), Field::kHeader);
  EXPECT_FALSE(fieldNamed("headers"));
  EXPECT_FALSE(fieldNamed(""));
  for (const auto name : fieldNames()) EXPECT_EQ(fieldName(*fieldNamed(name)), name);
}

TEST(Fields, ReasonNamesAgreeWithThePluginHost) {
  // Every code the host names must be named the same here, and no other code.
  for (int32_t code = -1; code < 64; ++code) {
    const std::string_view hostName = plugin::reasonName(code);
    if (hostName == "unknown") {
      EXPECT_EQ(reasonLabel(code), "") << code;
      continue;
    }
    EXPECT_EQ(reasonLabel(code), hostName) << code;
    EXPECT_EQ(reasonNamed(hostName), code) << code;
  }
}

TEST(Fields, VerdictNamesAgreeWithThePluginHost) {
  for (const auto verdict :
       {store::Verdict::kValid, store::Verdict::kInvalid, store::Verdict::kUnsigned}) {
    EXPECT_EQ(verdictLabel(verdict), plugin::verdictName(verdict));
    EXPECT_EQ(verdictNamed(plugin::verdictName(verdict)), verdict);
  }
  EXPECT_EQ(verdictNamed("VALID"), store::Verdict::kValid);
  EXPECT_FALSE(verdictNamed("ok"));
}

TEST(ClosestName, SuggestsOnlyNearMisses) {
  EXPECT_EQ(closestName("stauts", fieldNames()), "status") << "two letters swapped";
  EXPECT_EQ(closestName("metod", fieldNames()), "method") << "a letter dropped";
  EXPECT_EQ(closestName("headers", fieldNames()), "header") << "a letter added";
  EXPECT_EQ(closestName("Tyep", fieldNames()), "type");
  EXPECT_EQ(closestName("http", fieldNames()), "") << "nothing is close";
  EXPECT_EQ(closestName("ix", fieldNames()), "") << "one edit is half of a short name";
  EXPECT_EQ(closestName(std::string(500, 'x'), fieldNames()), "");
}

TEST(ClosestName, APartOfOneLongerNameNamesIt) {
  EXPECT_EQ(closestName("mismatch", reasonNames()), "signature_mismatch");
  EXPECT_EQ(closestName("missing", reasonNames()), "") << "three names hold it";
  EXPECT_EQ(closestName("valdi", verdictNames()), "valid");
}

}  // namespace
}  // namespace anm::search
