// tests/unit/search/query_fuzz_test.cpp: random, mutated and generated queries never crash,
// fail only with a QueryError inside the text, print canonically without changing what they
// match, and never have a prefilter that drops a match. Seeds are fixed, so runs repeat.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/search/query.h"
#include "core/search/time_value.h"

namespace anm::search {
namespace {

constexpr int64_t kNow = daysFromCivil(2026, 12, 4) * kMsPerDay + 12 * kMsPerHour;

/// Events with a spread of every field, bodies with binary bytes among them.
class EventPool {
 public:
  explicit EventPool(std::mt19937& random) {
    const std::vector<std::string> methods = {"GET", "POST", "put", "DELETE"};
    const std::vector<std::string> paths = {"", "/", "/api/orders/42", "/a(b) c", "/x*y"};
    const std::vector<std::string> types = {"", "invoice.paid", "push", "charge.failed"};
    const std::vector<std::string> words = {"order", "42", "ÄÖ", "a*b", "\"q\"", "and", "x:y"};
    const std::vector<std::vector<int32_t>> deliveries = {{}, {200}, {0}, {0, 502}, {404, 200}};
    for (int i = 0; i < 60; ++i) {
      store::EventRecord event;
      event.id = 1 + static_cast<int64_t>(random() % 200);
      event.receivedAtMs = kNow - static_cast<int64_t>(random() % (10 * kMsPerDay));
      event.method = methods[random() % methods.size()];
      event.pathSuffix = paths[random() % paths.size()];
      event.rawQuery = random() % 2 ? "page=" + std::to_string(random() % 5) : "";
      for (int h = static_cast<int>(random() % 4); h > 0; --h) {
        event.headers.push_back({"X-" + words[random() % words.size()], words[random() % 3]});
      }
      for (int w = static_cast<int>(random() % 6); w > 0; --w) {
        event.body += words[random() % words.size()] + " ";
      }
      if (random() % 4 == 0) event.body += std::string("\0\xff\xfe", 3);
      event.bodySize = static_cast<int64_t>(event.body.size());
      event.verdict = static_cast<store::Verdict>(1 + random() % 3);
      event.reason = static_cast<int32_t>(random() % 12);
      event.eventType = types[random() % types.size()];
      event.replayOf = random() % 4 == 0 ? static_cast<int64_t>(random() % 50) : 0;
      events_.push_back(std::move(event));
      statuses_.push_back(deliveries[random() % deliveries.size()]);
    }
  }

  size_t size() const { return events_.size(); }
  Candidate candidate(size_t i) const { return Candidate::of(events_[i], statuses_[i]); }

 private:
  std::vector<store::EventRecord> events_;
  std::vector<std::vector<int32_t>> statuses_;
};

const std::vector<std::string>& seedQueries() {
  static const std::vector<std::string> seeds = {
      "method:POST path:/api/* -type:invoice.*",
      "verdict:(valid OR unsigned) AND NOT reason:signature_mismatch",
      "status:[500 TO 599] OR status:none OR status:failed",
      "time:[now-2h TO now] body:\"order 42\"",
      "header.x-order:42 OR header:x-and",
      "(a OR b) c -\"d e\" f*g",
      "time:{2026-12-01 TO 2026-12-04] id:>=10 size:<1KiB replay:false",
      "status:>=400 status:<500 time:2026-12-04T10:00:00Z",
      "query:page=2 || body:x\\:y && NOT path:\"\"",
      "method:(get OR put) replay:true time:>now-3d",
  };
  return seeds;
}

/// Parses `text` and checks every promise the API makes about it. Counts the queries that
/// parse in `parsedCount`, so that a loop can show it reached past the parser.
void checkQuery(const std::string& text, const EventPool& pool, int& parsedCount) {
  Query query;
  try {
    query = Query::parse(text, kNow);
  } catch (const QueryError& error) {
    ASSERT_LE(error.position(), text.size()) << text;
    ASSERT_LE(error.position() + error.length(), text.size()) << text;
    ASSERT_FALSE(error.problem().empty()) << text;
    (void)markError(text, error);
    return;
  }
  ++parsedCount;

  // The canonical text is a query of its own that matches the same events.
  const std::string canonical = query.toString();
  Query again;
  try {
    again = Query::parse(canonical, kNow);
  } catch (const QueryError& error) {
    FAIL() << "canonical text does not parse: " << text << " -> " << canonical << ": "
           << error.what();
  }
  ASSERT_EQ(again.toString(), canonical) << text;

  for (size_t i = 0; i < pool.size(); ++i) {
    const Candidate candidate = pool.candidate(i);
    const bool matched = query.matches(candidate);
    ASSERT_EQ(again.matches(candidate), matched) << text << " -> " << canonical;
    if (matched) {
      ASSERT_TRUE(query.prefilter().admits(candidate))
          << "the prefilter drops a match of " << text << " (event " << i << ")";
    }
  }
}

TEST(QueryFuzz, RandomBytesNeverCrash) {
  std::mt19937 random(6);
  const EventPool pool(random);
  const std::string alphabet = "ab:*\"\\()[]{}<>=-  \tTONRDAx5.0/|&\xff";
  int parsedCount = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    for (int i = static_cast<int>(random() % 24); i > 0; --i) {
      text.push_back(alphabet[random() % alphabet.size()]);
    }
    ASSERT_NO_FATAL_FAILURE(checkQuery(text, pool, parsedCount));
  }
  EXPECT_GT(parsedCount, 1000) << "too few random texts parse to test what follows";
}

TEST(QueryFuzz, MutatedQueriesNeverCrash) {
  std::mt19937 random(66);
  const EventPool pool(random);
  const std::vector<std::string> pieces = {
      "AND", "OR", "NOT", "TO",   "(",   ")",       "\"",    "\\",      "*",  "[",         "}",
      ":",   "-",  " ",   "now-", "5xx", "status:", "time:", "header.", "&&", "2026-12-04"};
  int parsedCount = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = seedQueries()[random() % seedQueries().size()];
    for (int edits = 1 + static_cast<int>(random() % 4); edits > 0; --edits) {
      const size_t at = text.empty() ? 0 : random() % text.size();
      switch (random() % 4) {
        case 0:
          text.erase(at, 1 + random() % 3);
          break;
        case 1:
          text.insert(at, pieces[random() % pieces.size()]);
          break;
        case 2:
          if (!text.empty()) text[at] = static_cast<char>(random());
          break;
        default:
          text = text.substr(0, at);
          break;
      }
    }
    ASSERT_NO_FATAL_FAILURE(checkQuery(text, pool, parsedCount));
  }
  EXPECT_GT(parsedCount, 5000) << "too few mutations parse to test what follows";
}

TEST(QueryFuzz, GeneratedQueriesKeepTheirMeaningAndPrefilter) {
  // Valid terms joined at random, so that most queries parse and the properties after parsing
  // get exercised.
  std::mt19937 random(666);
  const EventPool pool(random);
  const std::vector<std::string> terms = {"method:GET",
                                          "method:p*",
                                          "path:/api/*",
                                          "path:\"\"",
                                          "query:page=2",
                                          "header:x-order",
                                          "header.x-42:order",
                                          "body:order",
                                          "body:\"\\xff\"",
                                          "type:invoice.*",
                                          "type:*",
                                          "verdict:valid",
                                          "verdict:invalid",
                                          "reason:ok",
                                          "reason:internal",
                                          "status:200",
                                          "status:5xx",
                                          "status:none",
                                          "status:failed",
                                          "status:*",
                                          "status:<300",
                                          "time:[now-2d TO now]",
                                          "time:<now-5d",
                                          "time:2026-12-03",
                                          "time:>=2026-12-02",
                                          "id:>100",
                                          "id:[20 TO 60]",
                                          "size:<10",
                                          "size:>=1KiB",
                                          "replay:true",
                                          "replay:false",
                                          "order",
                                          "\"x:y\"",
                                          "a\\*b",
                                          "*"};
  int parsedCount = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string text;
    for (int i = 1 + static_cast<int>(random() % 6); i > 0; --i) {
      if (!text.empty()) {
        static const char* const kJoins[] = {" ", " AND ", " OR ", " || ", " -", " NOT ", " ("};
        text += kJoins[random() % 7];
      }
      if (random() % 5 == 0) text += "NOT ";
      text += terms[random() % terms.size()];
    }
    // Close what " (" opened.
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '(' && (i == 0 || text[i - 1] == ' ')) text += ")";
    }
    ASSERT_NO_FATAL_FAILURE(checkQuery(text, pool, parsedCount));
  }
  EXPECT_GT(parsedCount, 4000) << "generated queries should mostly parse";
}

}  // namespace
}  // namespace anm::search
