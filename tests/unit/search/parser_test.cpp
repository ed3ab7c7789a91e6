// tests/unit/search/parser_test.cpp: the grammar as the canonical text shows it, every kind of
// error with its exact position, and the limits.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/search/query.h"
#include "core/search/time_value.h"

namespace anm::search {
namespace {

constexpr int64_t kNow = daysFromCivil(2026, 12, 4) * kMsPerDay + 12 * kMsPerHour;

std::string canonical(const std::string& text) { return Query::parse(text, kNow).toString(); }

/// The error parsing `text` raises; fails the test when it parses.
QueryError errorOf(const std::string& text) {
  try {
    Query::parse(text, kNow);
  } catch (const QueryError& e) {
    return e;
  }
  ADD_FAILURE() << "parsed without an error: " << text;
  return QueryError(0, 0, "none");
}

/// Expects an error at `position` covering `length` bytes whose problem starts as given.
void expectError(const std::string& text, size_t position, size_t length,
                 const std::string& problemStart) {
  const QueryError error = errorOf(text);
  EXPECT_EQ(error.position(), position) << text << " -> " << error.what();
  EXPECT_EQ(error.length(), length) << text << " -> " << error.what();
  EXPECT_EQ(error.problem().substr(0, problemStart.size()), problemStart)
      << text << " -> " << error.what();
}

TEST(Grammar, NotBindsTighterThanAndTighterThanOr) {
  EXPECT_EQ(canonical("a OR b c"), "a OR b AND c");
  EXPECT_EQ(canonical("a b OR c"), "a AND b OR c");
  EXPECT_EQ(canonical("(a OR b) c"), "(a OR b) AND c");
  EXPECT_EQ(canonical("NOT a b"), "NOT a AND b");
  EXPECT_EQ(canonical("NOT (a b)"), "NOT (a AND b)");
  EXPECT_EQ(canonical("NOT (a OR b) OR c"), "NOT (a OR b) OR c");
  EXPECT_EQ(canonical("a AND b OR c AND d"), "a AND b OR c AND d");
  EXPECT_EQ(canonical("a AND (b OR c) AND d"), "a AND (b OR c) AND d");
}

TEST(Grammar, AdjacentTermsAreJoinedByAnd) {
  EXPECT_EQ(canonical("a b c"), "a AND b AND c");
  EXPECT_EQ(canonical("a AND b c"), "a AND b AND c");
  EXPECT_EQ(canonical("method:POST\tverdict:valid\n-type:x"),
            "method:POST AND verdict:valid AND NOT type:x");
  EXPECT_EQ(canonical("a(b)"), "a AND b");
}

TEST(Grammar, NotMinusAndTheSymbolOperators) {
  EXPECT_EQ(canonical("-a"), "NOT a");
  EXPECT_EQ(canonical("--a"), "a");
  EXPECT_EQ(canonical("NOT NOT a"), "a");
  EXPECT_EQ(canonical("NOT -a"), "a");
  EXPECT_EQ(canonical("-(a OR b)"), "NOT (a OR b)");
  EXPECT_EQ(canonical("-\"x y\""), "NOT \"x y\"");
  EXPECT_EQ(canonical("NOT(a)"), "NOT a");
  EXPECT_EQ(canonical("a && b || c"), "a AND b OR c");
  EXPECT_EQ(canonical("a-b"), "a-b") << "a dash inside a word is text";
  EXPECT_EQ(canonical("path:-x"), "path:-x") << "a dash starting a value is text";
}

TEST(Grammar, ParenthesesNestAndFlatten) {
  EXPECT_EQ(canonical("((a))"), "a");
  EXPECT_EQ(canonical("a AND (b AND c)"), "a AND b AND c");
  EXPECT_EQ(canonical("(a OR (b OR c)) OR d"), "a OR b OR c OR d");
  EXPECT_EQ(canonical("((a OR b) (c OR d))"), "(a OR b) AND (c OR d)");
}

TEST(Grammar, StarsMatchEverything) {
  EXPECT_EQ(canonical(""), "*");
  EXPECT_EQ(canonical("*"), "*");
  EXPECT_EQ(canonical("a AND *"), "a");
  EXPECT_EQ(canonical("a OR *"), "*");
  EXPECT_EQ(canonical("NOT *"), "NOT *");
  EXPECT_EQ(canonical("\"\""), "*");
}

TEST(Grammar, FieldGroupsSpreadOverTheirValues) {
  EXPECT_EQ(canonical("method:(GET OR post)"), "method:GET OR method:POST");
  EXPECT_EQ(canonical("status:(500 502)"), "status:500 AND status:502");
  EXPECT_EQ(canonical("x method:(GET OR POST)"), "x AND (method:GET OR method:POST)");
  EXPECT_EQ(canonical("status:(>=500 AND NOT 502)"), "status:>=500 AND NOT status:502");
  EXPECT_EQ(canonical("body:(\"a b\" OR c*)"), "body:\"a b\" OR body:c*");
  EXPECT_EQ(canonical("header.x-a:(b OR c)"), "header.x-a:b OR header.x-a:c");
  EXPECT_EQ(canonical("query:(a:b)"), "query:a:b") << "colons in a group are values";
}

TEST(Grammar, FieldsAndValuesPrintCanonically) {
  EXPECT_EQ(canonical("METHOD:post"), "method:POST");
  EXPECT_EQ(canonical("Body:\"Order 42\""), "body:\"order 42\"");
  EXPECT_EQ(canonical("type:Invoice.*"), "type:invoice.*");
  EXPECT_EQ(canonical("header:X-Foo"), "header:x-foo");
  EXPECT_EQ(canonical("header.X-GitHub-Event:Push"), "header.x-github-event:push");
  EXPECT_EQ(canonical("verdict:VALID"), "verdict:valid");
  EXPECT_EQ(canonical("reason:Signature_Mismatch"), "reason:signature_mismatch");
  EXPECT_EQ(canonical("replay:TRUE replay:7"), "replay:true AND replay:7");
  EXPECT_EQ(canonical("path:\"\""), "path:\"\"");
  EXPECT_EQ(canonical("body:\"[x]\""), "body:\"[x]\"");
  EXPECT_EQ(canonical("body:\\[x"), "body:\"[x\"");
  EXPECT_EQ(canonical("body:a\\*b"), "body:\"a*b\"") << "a literal star is quoted";
  EXPECT_EQ(canonical("body:a\\ b*"), "body:a\\ b*") << "wildcards stay bare, escaped";
  EXPECT_EQ(canonical("\"a:b\" \"and\" \"-x\" \"OR\""),
            "\"a:b\" AND \"and\" AND \"-x\" AND \"or\"");
  EXPECT_EQ(canonical("a\\:b*"), "a\\:b*");
}

TEST(Grammar, NumbersAndStatusesPrintCanonically) {
  EXPECT_EQ(canonical("status:5xx"), "status:[500 TO 599]");
  EXPECT_EQ(canonical("status:[500 TO *]"), "status:>=500");
  EXPECT_EQ(canonical("status:{500 TO *]"), "status:>=501");
  EXPECT_EQ(canonical("status:>599"), "status:>599");
  EXPECT_EQ(canonical("status:<100"), "status:<100");
  EXPECT_EQ(canonical("status:[* TO *]"), "status:[* TO *]");
  EXPECT_EQ(canonical("status:* status:none status:failed"),
            "status:* AND status:none AND status:failed");
  EXPECT_EQ(canonical("status:{500 TO 503}"), "status:[501 TO 502]");
  EXPECT_EQ(canonical("status:[500 TO 500]"), "status:500");
  EXPECT_EQ(canonical("id:<0"), "id:<0");
  EXPECT_EQ(canonical("id:>9223372036854775806"), "id:9223372036854775807");
  expectError("id:>9223372036854775807", 3, 20, "range holds no value");
  EXPECT_EQ(canonical("size:1KiB size:<=2MiB"), "size:1024 AND size:<=2097152");
}

TEST(Grammar, TimesPrintAbsoluteAtTheirPrecision) {
  EXPECT_EQ(canonical("time:[now-2h TO now]"),
            "time:[2026-12-04T10:00:00Z TO 2026-12-04T12:00:00.000Z]");
  EXPECT_EQ(canonical("time:>=now-15m"), "time:>=2026-12-04T11:45:00Z");
  EXPECT_EQ(canonical("time:2026-12-04"), "time:2026-12-04");
  EXPECT_EQ(canonical("time:2026-12"), "time:2026-12");
  EXPECT_EQ(canonical("time:[2026-12-01 TO 2026-12-04]"), "time:[2026-12-01 TO 2026-12-04]");
  EXPECT_EQ(canonical("time:{2026-12-01 TO 2026-12-04}"), "time:[2026-12-02 TO 2026-12-03]");
  EXPECT_EQ(canonical("time:>2026-12-04"), "time:>=2026-12-05");
  EXPECT_EQ(canonical("time:<2026-12-04"), "time:<=2026-12-03");
  EXPECT_EQ(canonical("time:2026-12-04T10"), "time:[2026-12-04T10:00:00Z TO 2026-12-04T10:59:59Z]");
  EXPECT_EQ(canonical("time:2026-12-04T10:00:00+01:00"), "time:2026-12-04T09:00:00Z");
  EXPECT_EQ(canonical("time:[* TO 2026-12-04]"), "time:<=2026-12-04");
  EXPECT_EQ(canonical("time:>=0000-01-01 time:<=9999-12-31"),
            "time:>=0000-01-01 AND time:<=9999-12-31");
}

TEST(Grammar, TheCanonicalTextParsesToItself) {
  for (const std::string text :
       {"a OR b c", "NOT (a OR b) OR -c", "method:(GET OR post) path:/api/* -type:invoice.*",
        "header.x-github-event:push OR header:x-stripe-signature",
        "body:\"order \\\"42\\\"\" body:a\\ b* \"a:b\" a\\:b*",
        "status:[500 TO 599] OR status:none OR status:failed OR status:* OR status:<100",
        "time:[now-2h TO now] time:{2026-12-01 TO 2026-12-04} time:2026-12-04T10",
        "time:>2026-12-04T10:00:00.5Z id:{5 TO 9] size:>=1KiB replay:false replay:42",
        "verdict:(valid OR unsigned) reason:signature_mismatch", "\"(x)\" \\(y\\)",
        "body:\"\\\\\" path:\"\"", "*", "NOT *", "body:\"a\tb\nc\""}) {
    const std::string once = canonical(text);
    EXPECT_EQ(canonical(once), once) << text;
  }
}

TEST(Grammar, TheCanonicalExampleOfTheReference) {
  EXPECT_EQ(canonical("METHOD:post  -type:Invoice.*  time:[now-2h TO now]  status:5xx"),
            "method:POST AND NOT type:invoice.* AND time:[2026-12-04T10:00:00Z TO "
            "2026-12-04T12:00:00.000Z] AND status:[500 TO 599]");
}

TEST(Errors, TheMessagesOfTheReference) {
  // docs/search.md quotes these; they must stay as written there.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"stauts:500", "unknown field \"stauts\" at 0; did you mean \"status\"?"},
      {"verdict:ok", "unknown verdict \"ok\" at 8; use valid, invalid or unsigned"},
      {"status:700",
       "status 700 is outside 100..599 at 7; use none for events never delivered and failed "
       "for deliveries without a response"},
      {"time:2026-02-30",
       "day 30 does not exist (February 2026 has 28 days) in time \"2026-02-30\" at 13; write "
       "a time as 2026-12-04, 2026-12-04T10:00:00Z or now-2h (units s, m, h, d, w)"},
      {"(a OR b", "unclosed \"(\" at 0; add \")\" where the group ends"},
      {"a AND", "\"AND\" needs a term after it at 2"},
      {"status:[500 TO ]",
       "range has no upper end at 15; write * for an open end, as in [500 TO *]"},
      {"body:\"abc", "unterminated quote at 5; end the value with \""},
      {"a or b",
       "\"or\" is not an operator at 2; write OR in capitals, or quote it (\"or\") to search "
       "for the word"},
  };
  for (const auto& [text, message] : cases) EXPECT_STREQ(errorOf(text).what(), message.c_str());
}

TEST(Errors, UnknownFieldsSuggestTheNearestName) {
  EXPECT_STREQ(errorOf("stauts:500").what(),
               "unknown field \"stauts\" at 0; did you mean \"status\"?");
  expectError("verdict:valid stauts:500", 14, 6, "unknown field \"stauts\"");
  EXPECT_EQ(errorOf("headers.x-foo:bar").hint(), "did you mean \"header.x-foo\"?");
  EXPECT_EQ(errorOf("http://example.com").position(), 0u);
  EXPECT_EQ(errorOf("http://example.com").length(), 4u);
  EXPECT_NE(errorOf("http://example.com").hint().find("fields are method, path"),
            std::string::npos);
  EXPECT_EQ(errorOf("status.x:1").hint(),
            "only header has named parts (header.NAME); write status:VALUE");
  expectError("header.:x", 0, 8, "missing header name");
}

TEST(Errors, BadValuesPointAtTheValue) {
  EXPECT_STREQ(errorOf("verdict:ok").what(),
               "unknown verdict \"ok\" at 8; use valid, invalid or unsigned");
  EXPECT_EQ(errorOf("verdict:valdi").hint(), "did you mean \"valid\"?");
  expectError("reason:mismatch", 7, 8, "unknown reason \"mismatch\"");
  EXPECT_EQ(errorOf("reason:mismatch").hint(), "did you mean \"signature_mismatch\"?");
  EXPECT_STREQ(errorOf("status:700").what(),
               "status 700 is outside 100..599 at 7; use none for events never delivered and "
               "failed for deliveries without a response");
  expectError("status:99", 7, 2, "status 99 is outside");
  expectError("status:abc", 7, 3, "\"abc\" is not a status code");
  expectError("status:[500 TO 600]", 15, 3, "status 600 is outside");
  expectError("status:[none TO 599]", 8, 4, "\"none\" is not a status code");
  expectError("time:2026-13-01", 10, 2, "month 13 does not exist");
  expectError("time:\"2026-13-01\"", 11, 2, "month 13 does not exist");
  expectError("time:[2026-12-01 TO 2026-12-32]", 28, 2, "day 32 does not exist");
  expectError("time:now-2h", 5, 6, "now-2h is a single instant");
  expectError("id:-1", 3, 2, "an event id is a whole number");
  expectError("id:99999999999999999999", 3, 20, "an event id is a whole number");
  expectError("size:1GB", 5, 3, "a size is a number of bytes");
  expectError("replay:maybe", 7, 5, "replay takes true, false or an event id");
  expectError("replay:0", 7, 1, "replay takes true, false or an event id");
}

TEST(Errors, ValuesAFieldCannotTake) {
  expectError("id:4*", 3, 2, "wildcards do not apply to id");
  expectError("verdict:val*", 8, 4, "wildcards do not apply to verdict");
  expectError("time:*", 5, 1, "wildcards do not apply to time");
  expectError("body:[a TO b]", 5, 1, "body takes no range or comparison");
  expectError("path:>x", 5, 1, "path takes no range or comparison");
  expectError("[1 TO 2]", 0, 1, "a range needs a field");
  expectError(">5", 0, 1, "a comparison needs a field");
  expectError("method:\"GE T\"", 7, 6, "\"GE T\" is not a method");
  expectError("header:\"X-GitHub-Event: push\"", 7, 22,
              "\"X-GitHub-Event: push\" is not a header name");
  EXPECT_EQ(errorOf("header:\"X-GitHub-Event: push\"").hint(),
            "to match a header's value, write header.NAME:VALUE");
  expectError("time:<0000-01-01", 5, 11, "no time is within this range");
  expectError("status:>=none", 9, 4, "\"none\" is not a status code");
}

TEST(Errors, ParenthesesThatDoNotPair) {
  expectError("(a OR b", 0, 1, "unclosed \"(\"");
  expectError("x ((a) OR b", 2, 1, "unclosed \"(\"");
  expectError("a)", 1, 1, "unmatched \")\"");
  expectError("(a))", 3, 1, "unmatched \")\"");
  expectError(")", 0, 1, "unmatched \")\"");
  expectError("()", 0, 2, "empty parentheses");
  expectError("a ( )", 2, 3, "empty parentheses");
  expectError("method:(GET", 7, 1, "unclosed \"(\" of \"method:\"");
  expectError("method:()", 0, 9, "empty field group");
}

TEST(Errors, OperatorsWithoutTerms) {
  EXPECT_STREQ(errorOf("a AND").what(), "\"AND\" needs a term after it at 2");
  expectError("OR a", 0, 2, "\"OR\" needs a term before it");
  expectError("a OR OR b", 2, 2, "\"OR\" needs a term after it");
  expectError("a AND OR b", 2, 3, "\"AND\" needs a term after it");
  expectError("NOT", 0, 3, "\"NOT\" needs a term after it");
  expectError("a NOT", 2, 3, "\"NOT\" needs a term after it");
  expectError("a AND)", 2, 3, "\"AND\" needs a term after it");
  expectError("(AND a)", 1, 3, "\"AND\" needs a term before it");
  expectError("a ||", 2, 2, "\"||\" needs a term after it");
  expectError("method:(GET OR)", 12, 2, "\"OR\" needs a term after it");
  expectError("- a", 0, 1, "\"-\" must stand right before the term it excludes");
  expectError("a -", 2, 1, "\"-\" must stand right before the term it excludes");
  EXPECT_STREQ(errorOf("a or b").what(),
               "\"or\" is not an operator at 2; write OR in capitals, or quote it (\"or\") to "
               "search for the word");
  expectError("a And b", 2, 3, "\"And\" is not an operator");
  expectError("not a", 0, 3, "\"not\" is not an operator");
  expectError("method:(get or post)", 12, 2, "\"or\" is not an operator");
}

TEST(Errors, RangesWithAMissingPart) {
  expectError("status:[ TO 500]", 9, 2, "range has no lower end");
  expectError("status:[TO 500]", 8, 2, "range has no lower end");
  expectError("status:[500 TO ]", 15, 1, "range has no upper end");
  expectError("status:[500 TO}", 14, 1, "range has no upper end");
  expectError("status:[500 TO", 7, 7, "unterminated range");
  expectError("status:[500", 7, 4, "unterminated range");
  expectError("status:[", 7, 1, "unterminated range");
  expectError("status:[500 600]", 12, 3, "expected TO in the range");
  EXPECT_EQ(errorOf("status:[500 to 599]").hint(), "write TO in capitals");
  expectError("status:[500 TO 599 600]", 19, 3, "expected ] or } to end the range");
  expectError("status:[500 TO 599]x", 19, 1, "missing space after the range");
  expectError("status:[599 TO 500]", 7, 12, "range starts after it ends");
  expectError("id:{5 TO 6}", 3, 8, "range holds no value");
  expectError("time:{now TO now}", 5, 12, "range holds no value");
}

TEST(Errors, QuotesAndEscapes) {
  expectError("body:\"abc", 5, 4, "unterminated quote");
  expectError("a \"", 2, 1, "unterminated quote");
  expectError("body:\"a\\nb\"", 7, 2, "unknown escape in quotes");
  expectError("body:\"a\\", 7, 1, "unknown escape in quotes");
  expectError("body:\"a\"b", 8, 1, "missing space after the closing quote");
  expectError("body:a\"b", 6, 1, "quote inside a value");
  expectError("body:a\\", 6, 1, "nothing to escape after \"\\\"");
}

TEST(Errors, MissingValues) {
  expectError("status:", 0, 7, "missing value after \"status:\"");
  expectError("status: 500", 0, 7, "missing value after \"status:\"");
  EXPECT_EQ(errorOf("status: 500").hint(), "remove the space after the colon");
  expectError("(status:)", 1, 7, "missing value after \"status:\"");
  expectError("status:>= 500", 7, 2, "missing value after \">=\"");
  expectError("status:<", 7, 1, "missing value after \"<\"");
}

TEST(Limits, QueryLength) {
  EXPECT_NO_THROW(Query::parse(std::string(kMaxQueryBytes, 'a'), kNow));
  EXPECT_STREQ(errorOf(std::string(kMaxQueryBytes + 1, 'a')).what(),
               "query is 4097 bytes long at 4096; the limit is 4096 bytes");
  expectError(std::string(kMaxQueryBytes + 10, ' '), kMaxQueryBytes, 10, "query is 4106 bytes");
}

TEST(Limits, NestingDepth) {
  const auto parenthesized = [](size_t depth) {
    return std::string(depth, '(') + "a" + std::string(depth, ')');
  };
  EXPECT_NO_THROW(Query::parse(parenthesized(kMaxDepth), kNow));
  expectError(parenthesized(kMaxDepth + 1), kMaxDepth, 1, "nested too deeply");

  std::string nots;
  for (size_t i = 0; i < kMaxDepth; ++i) nots += "NOT ";
  EXPECT_NO_THROW(Query::parse(nots + "a", kNow));
  expectError(nots + "NOT a", 4 * kMaxDepth, 3, "nested too deeply");

  std::string minuses(kMaxDepth + 1, '-');
  expectError(minuses + "a", kMaxDepth, 1, "nested too deeply");

  // Field groups count as a level like parentheses.
  expectError(std::string(kMaxDepth, '(') + "status:(500)" + std::string(kMaxDepth, ')'),
              kMaxDepth + 7, 1, "nested too deeply");
}

TEST(Limits, NumberOfTerms) {
  std::string terms;
  for (size_t i = 0; i < kMaxTerms; ++i) terms += "a ";
  EXPECT_NO_THROW(Query::parse(terms, kNow));
  expectError(terms + "b", 2 * kMaxTerms, 1, "too many terms");

  // Each value of a field group is a term.
  std::string group = "status:(500";
  for (size_t i = 1; i < kMaxTerms; ++i) group += " OR 500";
  EXPECT_NO_THROW(Query::parse(group + ")", kNow));
  expectError(group + " OR 501)", group.size() + 4, 3, "too many terms");
}

TEST(MarkError, UnderlinesTheBytesAtFault) {
  const std::string query = "verdict:invalid AND stauts:500";
  EXPECT_EQ(markError(query, errorOf(query)),
            "verdict:invalid AND stauts:500\n"
            "                    ^^^^^^");

  // Columns count code points: "ö" and "ß" are two bytes each but one column.
  const std::string utf8 =
      "body:\"gr\xc3\xb6\xc3\x9f"
      "e\" stauts:1";
  EXPECT_EQ(markError(utf8, errorOf(utf8)), utf8 + "\n" + std::string(13, ' ') + "^^^^^^");

  // Only the line holding the error, and one mark where something is missing.
  EXPECT_EQ(markError("a AND\nstauts:1", errorOf("a AND\nstauts:1")), "stauts:1\n^^^^^^");
  EXPECT_EQ(markError("a\tAND", errorOf("a\tAND")), "a AND\n  ^^^");
  EXPECT_EQ(markError("(a", QueryError(2, 0, "x")), "(a\n  ^");
}

}  // namespace
}  // namespace anm::search
