// tests/unit/search/query_test.cpp: what each field matches, what callers must load, and the
// prefilter a store narrows its scan with.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/query.h"

#include <anonymily/plugin.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/search/time_value.h"
#include "tests/unit/search/allocation_counter.h"

namespace anm::search {
namespace {

constexpr int64_t kNow = daysFromCivil(2026, 12, 4) * kMsPerDay + 12 * kMsPerHour;

Query parsed(const std::string& text) { return Query::parse(text, kNow); }

/// POST /api/orders/42?page=2&sort=asc, a GitHub-style push with a JSON body, received an
/// hour before kNow.
store::EventRecord sampleEvent() {
  store::EventRecord event;
  event.id = 42;
  event.hookId = "hook";
  event.receivedAtMs = kNow - kMsPerHour;
  event.method = "POST";
  event.pathSuffix = "/api/orders/42";
  event.rawQuery = "page=2&sort=asc";
  event.headers = {{"X-GitHub-Event", "push"},
                   {"Content-Type", "application/json; charset=utf-8"},
                   {"X-Forwarded-For", "10.0.0.1"},
                   {"X-Forwarded-For", "10.0.0.2"}};
  event.body =
      "{\"event\":\"Order 42 shipped\",\"note\":\"Gr\xc3\xb6\xc3\x9f"
      "e\"}";
  event.bodySize = static_cast<int64_t>(event.body.size());
  event.verdict = store::Verdict::kValid;
  event.reason = ANM_REASON_OK;
  event.eventType = "invoice.paid";
  return event;
}

bool matches(const std::string& text, const store::EventRecord& event,
             const std::vector<int32_t>& statuses = {}) {
  return parsed(text).matches(Candidate::of(event, statuses));
}

/// Expects each query of `yes` to match and each of `no` not to.
void expectMatches(const store::EventRecord& event, const std::vector<std::string>& yes,
                   const std::vector<std::string>& no, const std::vector<int32_t>& statuses = {}) {
  for (const auto& text : yes) EXPECT_TRUE(matches(text, event, statuses)) << text;
  for (const auto& text : no) EXPECT_FALSE(matches(text, event, statuses)) << text;
}

TEST(QueryMatch, AnEmptyQueryAndAStarMatchEverything) {
  const store::EventRecord event;
  EXPECT_TRUE(matches("", event));
  EXPECT_TRUE(matches("   ", event));
  EXPECT_TRUE(matches("*", event));
  EXPECT_TRUE(Query().matches(Candidate::of(event)));
  EXPECT_TRUE(Query().matchesEverything());
  EXPECT_TRUE(parsed(" * ").matchesEverything());
  EXPECT_FALSE(parsed("NOT *").matches(Candidate::of(event)));
}

TEST(QueryMatch, MethodIgnoresCase) {
  expectMatches(sampleEvent(), {"method:POST", "method:post", "METHOD:Post", "method:P*"},
                {"method:GET", "method:POS", "method:\"\""});
}

TEST(QueryMatch, PathIsTheWholeSuffixWithWildcards) {
  expectMatches(sampleEvent(),
                {"path:/api/orders/42", "path:/api/*", "path:*/42", "path:/API/Orders/42",
                 "path:/api/*/42", "path:*orders*"},
                {"path:/api", "path:/api/orders", "path:\"\"", "path:/api/*/43"});

  store::EventRecord bare = sampleEvent();
  bare.pathSuffix = "";
  expectMatches(bare, {"path:\"\"", "NOT path:*"}, {"path:*", "path:/"});
}

TEST(QueryMatch, QueryContainsTheText) {
  expectMatches(sampleEvent(),
                {"query:page=2", "query:sort", "query:PAGE=2", "query:*", "query:page=*&sort"},
                {"query:page=3", "query:?page=2"});

  store::EventRecord none = sampleEvent();
  none.rawQuery = "";
  expectMatches(none, {"NOT query:*"}, {"query:*", "query:page"});
}

TEST(QueryMatch, HeaderNamesArePresenceIgnoringCase) {
  expectMatches(sampleEvent(),
                {"header:X-GitHub-Event", "header:x-github-event", "header:x-github-*",
                 "header:*-event", "header:*", "header:\"content-type\""},
                {"header:x-stripe-signature", "header:x-github", "header:push"});

  store::EventRecord headerless = sampleEvent();
  headerless.headers.clear();
  expectMatches(headerless, {"NOT header:*"}, {"header:*", "header:x-github-event"});
}

TEST(QueryMatch, HeaderValuesMatchAnyFieldOfThatName) {
  expectMatches(
      sampleEvent(),
      {"header.x-github-event:push", "header.X-GitHub-Event:PUSH", "header.x-github-event:\"push\"",
       "header.content-type:application/json*", "header.x-forwarded-for:10.0.0.1",
       "header.x-forwarded-for:10.0.0.2", "header.x-*:push", "header.x-forwarded-for:*",
       "NOT header.x-forwarded-for:10.0.0.3"},
      {"header.x-github-event:pull", "header.content-type:application/json",
       "header.x-github-event:pus", "header.x-forwarded-for:10.0.0.3",
       "header.x-stripe-signature:*"});
}

TEST(QueryMatch, BodyContainsTextIgnoringAsciiCaseOnly) {
  expectMatches(sampleEvent(),
                {"body:\"order 42\"", "body:ORDER", "body:order*shipped", "body:*",
                 "body:Gr\xc3\xb6\xc3\x9f"
                 "e",
                 "body:\"\\\"event\\\"\""},
                {"body:\"order 43\"", "body:shipped*order",
                 "body:GR\xc3\x96\xc3\x9f"
                 "E"});  // Ö is not folded to ö

  store::EventRecord empty = sampleEvent();
  empty.body.clear();
  expectMatches(empty, {"NOT body:*", "body:\"\""}, {"body:*", "body:order"});
}

TEST(QueryMatch, BinaryBodiesAreSearchedByteForByte) {
  store::EventRecord event = sampleEvent();
  event.body = std::string("\x00\xff\xfe\x80 zip\x00PK\x03\x04 END", 17);
  expectMatches(event,
                {"body:zip", "body:\"pk\"", "body:end", "body:zip*end",
                 std::string("body:\xff\xfe"), std::string("body:\"\x80 ZIP\"")},
                {"body:\"zip end\"", std::string("body:\xfe\xff")});

  // Random bytes in bodies and in terms: any answer will do, but no crash and no exception.
  std::mt19937 random(6);
  for (int round = 0; round < 200; ++round) {
    event.body.resize(random() % 3000);
    for (char& c : event.body) c = static_cast<char>(random());
    std::string word;
    for (int i = 1 + static_cast<int>(random() % 5); i > 0; --i) {
      word.push_back(static_cast<char>('!' + random() % 94));
      if (word.back() == '"' || word.back() == '\\') word.back() = 'x';
    }
    EXPECT_NO_THROW(matches("body:\"" + word + "\" OR \"" + word + "\"", event)) << word;
  }
}

TEST(QueryMatch, TypeIsTheWholeEventTypeWithWildcards) {
  expectMatches(
      sampleEvent(),
      {"type:invoice.paid", "type:INVOICE.PAID", "type:invoice.*", "type:*.paid", "type:*"},
      {"type:invoice", "type:invoice.paid.x", "type:charge.*"});

  store::EventRecord untyped = sampleEvent();
  untyped.eventType.clear();
  expectMatches(untyped, {"NOT type:*", "type:\"\""}, {"type:*"});
}

TEST(QueryMatch, VerdictAndReasonAreNamedValues) {
  store::EventRecord event = sampleEvent();
  event.verdict = store::Verdict::kInvalid;
  event.reason = ANM_REASON_SIGNATURE_MISMATCH;
  expectMatches(event,
                {"verdict:invalid", "verdict:INVALID", "reason:signature_mismatch",
                 "verdict:(valid OR invalid)", "NOT verdict:valid"},
                {"verdict:valid", "verdict:unsigned", "reason:timestamp_outside", "reason:ok"});
}

TEST(QueryMatch, StatusLooksAtEveryDelivery) {
  // A delivery that got no response, a 502, then a 200.
  const std::vector<int32_t> statuses = {0, 502, 200};
  expectMatches(sampleEvent(),
                {"status:200", "status:502", "status:5xx", "status:2XX", "status:[500 TO 599]",
                 "status:>=500", "status:<201", "status:failed", "status:*", "status:[* TO *]",
                 "status:(404 OR 502)", "status:200 status:502"},
                {"status:500", "status:{500 TO 502}", "status:<200", "status:none", "status:4xx",
                 "status:>502"},
                statuses);

  expectMatches(sampleEvent(), {"status:none", "NOT status:*", "NOT status:5xx"},
                {"status:*", "status:failed", "status:[* TO *]", "status:200"});

  expectMatches(sampleEvent(), {"status:failed", "status:*"},
                {"status:none", "status:[* TO *]", "status:<200"}, {0});
}

TEST(QueryMatch, StatusesMayComeAsDeliveryRecords) {
  store::DeliveryRecord delivered;
  delivered.status = 503;
  const std::vector<store::DeliveryRecord> deliveries = {delivered};
  const store::EventRecord event = sampleEvent();
  const Candidate candidate = Candidate::of(event, deliveries);
  EXPECT_TRUE(parsed("status:503").matches(candidate));
  EXPECT_FALSE(parsed("status:none").matches(candidate));
}

TEST(QueryMatch, TimeValuesCoverTheirWholeSpan) {
  // Received at 2026-12-04T11:00:00.000Z.
  expectMatches(
      sampleEvent(),
      {"time:2026-12-04", "time:2026-12", "time:2026", "time:2026-12-04T11",
       "time:2026-12-04T11:00", "time:2026-12-04T11:00:00Z", "time:2026-12-04T11:00:00.000Z",
       "time:2026-12-04T12:00:00+01:00", "time:[2026-12-01 TO 2026-12-04]",
       "time:>=2026-12-04T11:00:00Z", "time:<=2026-12-04T10:59:59.999Z OR time:2026-12-04T11",
       "time:[2026-12-04T10:00:00Z TO 2026-12-04T11:00:00Z]"},
      {"time:2026-12-03", "time:2026-11", "time:[2026-12-01 TO 2026-12-04}",
       "time:{2026-12-04 TO *]", "time:>2026-12-04T11:00:00Z", "time:>2026-12-04T11",
       "time:<2026-12-04", "time:2026-12-04T11:00:00.001Z"});
}

TEST(QueryMatch, RelativeTimesCountBackFromNow) {
  // Received exactly at now-1h.
  expectMatches(sampleEvent(),
                {"time:[now-2h TO now]", "time:>=now-1h", "time:<=now-1h", "time:[now-7d TO *]",
                 "time:[now-61m TO now-59m]", "time:>now-3601s"},
                {"time:[now-30m TO now]", "time:>now-1h", "time:{now-1h TO now]", "time:<now-1h",
                 "time:[now-1d TO now-2h]"});
}

TEST(QueryMatch, IdSizeAndReplay) {
  store::EventRecord event = sampleEvent();
  event.body.clear();  // not loaded: size reads bodySize
  event.bodySize = 2048;
  expectMatches(
      event,
      {"id:42", "id:[40 TO 50]", "id:>=42", "size:2048", "size:2KiB", "size:>=1KiB",
       "size:[0 TO 1MiB]", "size:2kib", "replay:false", "NOT replay:true"},
      {"id:41", "id:>42", "id:{42 TO 50]", "size:<2048", "size:>2KiB", "replay:true", "replay:42"});

  event.replayOf = 7;
  expectMatches(event, {"replay:true", "replay:7", "replay:TRUE"}, {"replay:false", "replay:8"});
}

TEST(QueryMatch, BareWordsSearchEveryTextField) {
  expectMatches(sampleEvent(),
                {"orders", "page", "github", "push", "shipped", "invoice", "\"order 42\"", "ord*42",
                 "charset", "10.0.0.2"},
                {"POST", "valid", "nothing", "\"order 43\"", "hook"});
}

TEST(QueryMatch, EscapesInBareAndQuotedValues) {
  store::EventRecord event = sampleEvent();
  event.body = "say \"hi\" to C:\\dir and a*b (x)";
  event.pathSuffix = "/a(b) c";
  expectMatches(event,
                {"body:\"say \\\"hi\\\"\"", "body:\"C:\\\\dir\"", "body:C:\\\\dir", "body:a\\*b",
                 "body:\"a*b\"", "body:\\(x\\)", "body:\"(x)\"", "path:/a\\(b\\)\\ c",
                 "path:\"/a(b) c\"", "\"(x)\""},
                {"body:\"a*c\"", "body:a\\*c"});

  // Quoted and escaped stars are literal, a bare star is not.
  event.body = "a-b";
  expectMatches(event, {"body:a*b"}, {"body:a\\*b", "body:\"a*b\""});
}

TEST(QueryMatch, GrammarDecidesAsWritten) {
  // POST, valid.
  expectMatches(sampleEvent(),
                {"(verdict:invalid OR verdict:valid) method:POST",
                 "verdict:invalid OR verdict:valid method:POST", "NOT verdict:invalid method:POST",
                 "-verdict:invalid -method:GET", "verdict:valid AND (method:GET OR method:POST)",
                 "NOT NOT method:POST", "method:GET || method:POST && verdict:valid"},
                {"verdict:invalid OR verdict:valid method:GET", "-(method:POST)",
                 "NOT (verdict:valid method:POST)", "method:POST AND NOT verdict:valid",
                 "verdict:valid method:GET", "(method:GET OR method:PUT) verdict:valid"});
}

TEST(QueryMatch, CandidatesMayLeaveOutWhatIsNotNeeded) {
  // Only the columns in the clear, as a store sees them before decrypting.
  Candidate candidate;
  candidate.id = 9;
  candidate.receivedAtMs = kNow;
  candidate.method = "GET";
  candidate.verdict = store::Verdict::kInvalid;
  const Query query = parsed("verdict:invalid method:get time:>=now-5m id:9");
  EXPECT_FALSE(query.needs().contents());
  EXPECT_TRUE(query.matches(candidate));
  EXPECT_FALSE(parsed("header:x").matches(candidate));
}

TEST(QueryMatch, OneQueryServesManyThreads) {
  const Query query = parsed("body:shipped status:2xx time:[now-2h TO now]");
  const store::EventRecord event = sampleEvent();
  const std::vector<int32_t> statuses = {200};
  std::vector<std::thread> threads;
  std::vector<int> hits(4, 0);
  for (size_t t = 0; t < hits.size(); ++t) {
    threads.emplace_back([&, t] {
      const Query copy = query;
      for (int i = 0; i < 1000; ++i) hits[t] += copy.matches(Candidate::of(event, statuses));
    });
  }
  for (auto& thread : threads) thread.join();
  for (int count : hits) EXPECT_EQ(count, 1000);
}

TEST(QueryMatch, MatchingAllocatesNothing) {
  const Query query = parsed(
      "body:\"order 42\" OR header.x-github-event:p*h OR zzzz OR status:5xx OR "
      "(time:[now-2h TO now] -type:x* method:(GET OR POST) verdict:valid)");
  const store::EventRecord event = sampleEvent();
  const std::vector<int32_t> statuses = {0, 200};
  const Candidate candidate = Candidate::of(event, statuses);

  // The counter sees allocations at all: parsing one query makes several.
  const size_t beforeParse = allocationsSoFar();
  (void)parsed("body:x");
  ASSERT_GT(allocationsSoFar(), beforeParse);

  const size_t before = allocationsSoFar();
  size_t matched = 0;
  for (int i = 0; i < 100; ++i) matched += query.matches(candidate) ? 1 : 0;
  EXPECT_EQ(allocationsSoFar() - before, 0u);
  EXPECT_EQ(matched, 100u);
}

TEST(Needs, NameTheEncryptedPartsAndTheDeliveries) {
  const auto needs = [](const std::string& text) { return parsed(text).needs(); };
  EXPECT_FALSE(needs("verdict:valid time:>now-1h method:POST path:/x type:a").contents());
  EXPECT_FALSE(needs("verdict:valid").deliveries);
  EXPECT_TRUE(needs("body:x").body);
  EXPECT_FALSE(needs("body:x").headers);
  EXPECT_TRUE(needs("NOT body:x").body);
  EXPECT_TRUE(needs("header:x").headers);
  EXPECT_TRUE(needs("header.x:y").headers);
  EXPECT_FALSE(needs("header.x:y").body);
  EXPECT_TRUE(needs("query:x").rawQuery);
  EXPECT_FALSE(needs("query:x").body);
  EXPECT_TRUE(needs("status:500").deliveries);
  EXPECT_FALSE(needs("status:500").contents());

  const Needs bare = needs("word");
  EXPECT_TRUE(bare.rawQuery && bare.headers && bare.body);
  EXPECT_FALSE(bare.deliveries);
  EXPECT_FALSE(needs("*").contents());
}

TEST(Prefilter, TheTopLevelConjunctionBoundsTheScan) {
  const Prefilter filter =
      parsed("verdict:invalid time:[now-2h TO now] id:>=100 method:post size:<1KiB body:x")
          .prefilter();
  EXPECT_FALSE(filter.matchesNothing);
  EXPECT_EQ(filter.fromMs, kNow - 2 * kMsPerHour);
  EXPECT_EQ(filter.toMs, kNow);
  EXPECT_EQ(filter.minId, 100);
  EXPECT_FALSE(filter.maxId);
  EXPECT_FALSE(filter.minSize);
  EXPECT_EQ(filter.maxSize, 1023);
  ASSERT_TRUE(filter.verdicts);
  EXPECT_EQ(*filter.verdicts, std::vector<store::Verdict>{store::Verdict::kInvalid});
  ASSERT_TRUE(filter.methods);
  EXPECT_EQ(*filter.methods, std::vector<std::string>{"POST"});
  EXPECT_FALSE(filter.reasons);
  EXPECT_FALSE(filter.replay);
}

TEST(Prefilter, AnEmptyQueryConstrainsNothing) {
  const Prefilter filter = parsed("").prefilter();
  EXPECT_FALSE(filter.fromMs || filter.toMs || filter.minId || filter.maxId || filter.minSize ||
               filter.maxSize || filter.verdicts || filter.reasons || filter.methods ||
               filter.replay || filter.matchesNothing);
  EXPECT_FALSE(parsed("body:x OR header:y").prefilter().verdicts);
}

TEST(Prefilter, OrUnitesAndNotComplements) {
  using store::Verdict;
  EXPECT_EQ(*parsed("verdict:valid OR verdict:unsigned").prefilter().verdicts,
            (std::vector<Verdict>{Verdict::kValid, Verdict::kUnsigned}));
  EXPECT_EQ(*parsed("verdict:(unsigned OR valid)").prefilter().verdicts,
            (std::vector<Verdict>{Verdict::kValid, Verdict::kUnsigned}));
  EXPECT_EQ(*parsed("NOT verdict:valid").prefilter().verdicts,
            (std::vector<Verdict>{Verdict::kInvalid, Verdict::kUnsigned}));
  EXPECT_FALSE(parsed("verdict:valid OR body:x").prefilter().verdicts);

  // A one-sided range has an exact complement; a two-sided one does not.
  EXPECT_EQ(parsed("-time:<now-1h").prefilter().fromMs, kNow - kMsPerHour);
  EXPECT_FALSE(parsed("NOT time:[now-2h TO now-1h]").prefilter().fromMs);
  EXPECT_FALSE(parsed("NOT time:[now-2h TO now-1h]").prefilter().toMs);

  // De Morgan: NOT (a OR b) is NOT a AND NOT b.
  const Prefilter neither = parsed("NOT (verdict:valid OR time:<now-1h)").prefilter();
  EXPECT_EQ(*neither.verdicts, (std::vector<Verdict>{Verdict::kInvalid, Verdict::kUnsigned}));
  EXPECT_EQ(neither.fromMs, kNow - kMsPerHour);

  // The hull of two time ranges.
  const Prefilter hull = parsed("time:[2026-01-01 TO 2026-01-02] OR time:>=now-1h").prefilter();
  EXPECT_EQ(hull.fromMs, daysFromCivil(2026, 1, 1) * kMsPerDay);
  EXPECT_FALSE(hull.toMs);

  EXPECT_EQ(*parsed("method:(GET OR post)").prefilter().methods,
            (std::vector<std::string>{"GET", "POST"}));
  EXPECT_FALSE(parsed("method:P*").prefilter().methods);
  EXPECT_FALSE(parsed("NOT method:GET").prefilter().methods);
  EXPECT_EQ(*parsed("reason:(signature_mismatch OR timestamp_outside)").prefilter().reasons,
            (std::vector<int32_t>{ANM_REASON_TIMESTAMP_OUTSIDE, ANM_REASON_SIGNATURE_MISMATCH}));
  EXPECT_EQ(parsed("replay:true").prefilter().replay, true);
  EXPECT_EQ(parsed("NOT replay:true").prefilter().replay, false);
  EXPECT_EQ(parsed("replay:42").prefilter().replay, true);
  EXPECT_FALSE(parsed("NOT replay:42").prefilter().replay);
  EXPECT_EQ(parsed("id:[10 TO 20] OR id:30").prefilter().maxId, 30);
}

TEST(Prefilter, ContradictionsMatchNothing) {
  const store::EventRecord event = sampleEvent();
  for (const std::string text :
       {"verdict:valid verdict:invalid", "time:<now-2h time:>now-1h", "replay:true replay:false",
        "method:GET method:POST", "NOT *", "id:<5 id:>5", "NOT time:[* TO *]",
        "reason:ok reason:internal", "(verdict:valid verdict:invalid) OR (id:1 id:2)"}) {
    EXPECT_TRUE(parsed(text).prefilter().matchesNothing) << text;
    EXPECT_FALSE(parsed(text).prefilter().admits(Candidate::of(event))) << text;
  }
  EXPECT_FALSE(
      parsed("verdict:valid OR (verdict:valid verdict:invalid)").prefilter().matchesNothing);
}

TEST(Prefilter, AdmitsChecksEveryConstraint) {
  const store::EventRecord event = sampleEvent();  // POST, valid, id 42, now-1h
  const Candidate candidate = Candidate::of(event);
  for (const std::string text : {"verdict:valid", "method:post", "time:>=now-2h", "id:42",
                                 "replay:false", "reason:ok", "size:<1KiB"}) {
    EXPECT_TRUE(parsed(text).prefilter().admits(candidate)) << text;
  }
  for (const std::string text : {"verdict:invalid", "method:GET", "time:>now-1h", "id:<42",
                                 "replay:true", "reason:internal", "size:>1KiB", "method:POSTS"}) {
    EXPECT_FALSE(parsed(text).prefilter().admits(candidate)) << text;
  }
}

}  // namespace
}  // namespace anm::search
