// bench/search_bench.cpp: what matching search queries over decrypted events costs, and what
// decrypting them costs first (#6). The figures in docs/search.md come from this program.
// SPDX-License-Identifier: Apache-2.0
//
// usage: anonymily-search-bench [EVENTS [BODY_BYTES]]   (defaults: 100000 events of 1024 bytes)
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/crypto/keys.h"
#include "core/search/query.h"
#include "core/search/time_value.h"

namespace {

constexpr int64_t kNow =
    anm::search::daysFromCivil(2026, 12, 4) * anm::search::kMsPerDay + 12 * anm::search::kMsPerHour;

/// Webhook-like events: a JSON body of `bodyBytes` made of ordinary words, eight headers, a
/// path, a query string and an event type; received over the last day.
std::vector<anm::store::EventRecord> makeEvents(size_t count, size_t bodyBytes) {
  static const char* const kWords[] = {"customer", "amount",  "currency", "usd",     "invoice",
                                       "paid",     "created", "status",   "pending", "charge",
                                       "refund",   "line",    "item",     "price",   "total"};
  std::mt19937 random(6);
  std::vector<anm::store::EventRecord> events(count);
  for (size_t i = 0; i < count; ++i) {
    auto& event = events[i];
    event.id = static_cast<int64_t>(i + 1);
    event.receivedAtMs = kNow - static_cast<int64_t>(random() % anm::search::kMsPerDay);
    event.method = "POST";
    event.pathSuffix = "/stripe/events";
    event.rawQuery = "source=live&attempt=" + std::to_string(random() % 3);
    event.headers = {{"Host", "relay.example"},
                     {"User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
                     {"Content-Type", "application/json; charset=utf-8"},
                     {"Content-Length", std::to_string(bodyBytes)},
                     {"Stripe-Signature", "t=1796342400,v1=" + std::string(64, 'a')},
                     {"Accept", "*/*; q=0.5, application/xml"},
                     {"Cache-Control", "no-cache"},
                     {"X-Request-Id", "req_" + std::to_string(random())}};
    event.eventType = i % 10 == 0 ? "charge.failed" : "invoice.paid";
    event.verdict = i % 20 == 0 ? anm::store::Verdict::kInvalid : anm::store::Verdict::kValid;

    std::string body = "{\"id\":\"evt_" + std::to_string(i) + "\",\"description\":\"";
    while (body.size() + 3 < bodyBytes) {
      body += kWords[random() % (sizeof kWords / sizeof kWords[0])];
      body += ' ';
    }
    body.resize(bodyBytes - 2);
    event.body = body + "\"}";
    event.bodySize = static_cast<int64_t>(event.body.size());
  }
  return events;
}

/// CPU time of this thread: on a machine shared with other work, wall time would count the
/// time the scheduler gave to others.
double threadSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

/// Runs `pass` (one pass over every event) until it has used at least half a second of CPU
/// and returns the CPU seconds one pass took.
template <typename Pass>
double timePerPass(Pass pass) {
  pass();  // warm caches and branch predictors
  size_t passes = 0;
  const double start = threadSeconds();
  do {
    pass();
    ++passes;
  } while (threadSeconds() - start < 0.5);
  return (threadSeconds() - start) / static_cast<double>(passes);
}

void benchMatching(const std::vector<anm::store::EventRecord>& events, size_t bodyBytes) {
  const std::vector<int32_t> statuses = {200};
  std::vector<anm::search::Candidate> candidates;
  candidates.reserve(events.size());
  for (const auto& event : events)
    candidates.push_back(anm::search::Candidate::of(event, statuses));

  std::printf("matching %zu events of %zu body bytes (one thread)\n", events.size(), bodyBytes);
  std::printf("%-52s %10s %10s %12s\n", "query", "matched", "ns/event", "body MiB/s");
  for (const char* text :
       {"verdict:invalid", "type:invoice.* time:[now-1h TO now]", "header.stripe-signature:t=*",
        "body:refund", "body:\"order 123456\"", "body:customer*refund*total", "zzzz",
        "method:POST status:2xx body:\"no such words\""}) {
    const anm::search::Query query = anm::search::Query::parse(text, kNow);
    size_t matched = 0;
    const double seconds = timePerPass([&] {
      matched = 0;
      for (const auto& candidate : candidates) matched += query.matches(candidate) ? 1 : 0;
    });
    const double nsPerEvent = seconds * 1e9 / static_cast<double>(events.size());
    const double mibPerSecond =
        static_cast<double>(events.size() * bodyBytes) / seconds / (1024.0 * 1024.0);
    std::printf("%-52s %10zu %10.1f %12.0f\n", text, matched, nsPerEvent, mibPerSecond);
  }
}

void benchDecryption(const std::vector<anm::store::EventRecord>& events) {
  // What the store does per event before a query sees it: unwrap the event's data key under
  // the ring key, then open the sealed raw query, header block and body (core/store/sealing.h).
  const auto ring = anm::crypto::KeyRing::parse(anm::crypto::KeyRing::newKeyLine("k1"), "bench");
  const anm::crypto::Key dataKey{"data", anm::crypto::randomBytes(anm::crypto::kKeyBytes)};
  const size_t sample = std::min<size_t>(events.size(), 20000);
  struct Sealed {
    std::string key, query, headers, body;
  };
  std::vector<Sealed> sealed(sample);
  for (size_t i = 0; i < sample; ++i) {
    std::string headerBlock;
    for (const auto& header : events[i].headers) headerBlock += header.name + header.value;
    sealed[i] = {anm::crypto::seal(ring.active(), dataKey.bytes, "key"),
                 anm::crypto::seal(dataKey, events[i].rawQuery, "query"),
                 anm::crypto::seal(dataKey, headerBlock, "headers"),
                 anm::crypto::seal(dataKey, events[i].body, "body")};
  }

  size_t opened = 0;
  const double perPass = timePerPass([&] {
    for (const auto& one : sealed) {
      const anm::crypto::Key key{"data", anm::crypto::open(ring.active(), one.key, "key")};
      opened += anm::crypto::open(key, one.query, "query").size();
      opened += anm::crypto::open(key, one.headers, "headers").size();
      opened += anm::crypto::open(key, one.body, "body").size();
    }
  });
  std::printf("\ndecrypting a whole event (key unwrap + query + headers + body): %.2f us/event\n",
              perPass * 1e6 / static_cast<double>(sample));

  // Bulk throughput, where the per-call set-up no longer counts.
  const std::string mebibyte(1024 * 1024, 'x');
  const std::string sealedMebibyte = anm::crypto::seal(dataKey, mebibyte, "body");
  const double perMebibyte =
      timePerPass([&] { opened += anm::crypto::open(dataKey, sealedMebibyte, "body").size(); });
  std::printf("decrypting 1 MiB with AES-256-GCM: %.2f ms (%.0f MiB/s)\n", perMebibyte * 1e3,
              1.0 / perMebibyte);
  if (opened == 0) std::printf("nothing opened\n");
}

}  // namespace

int main(int argc, char** argv) {
  const size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const size_t bodyBytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1024;
  if (count == 0 || bodyBytes < 16) {
    std::fprintf(stderr, "usage: anonymily-search-bench [EVENTS [BODY_BYTES >= 16]]\n");
    return 2;
  }
  const auto events = makeEvents(count, bodyBytes);
  benchMatching(events, bodyBytes);
  benchDecryption(events);
  return 0;
}
