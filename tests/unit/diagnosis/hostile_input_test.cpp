// tests/unit/diagnosis/hostile_input_test.cpp: random and hostile bytes never break a diagnosis.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/diagnosis/issues.h"
#include "core/diagnosis/pages.h"
#include "tests/unit/diagnosis/signing.h"

namespace anm::diagnosis {
namespace {

// Every random string may carry this; no rendered document may show it as markup.
constexpr char kMarkup[] = "<zz onload=x>";

/// Well-formed UTF-8, checked independently of the library's own decoder.
bool isUtf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    uint32_t min = 0;
    uint32_t value = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, min = 0x80, value = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, min = 0x800, value = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, min = 0x10000, value = c & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      value = (value << 6) | (next & 0x3Fu);
    }
    if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

/// Random inputs, half noise and half near-valid, so that deep rules are reached too.
class Hostile {
 public:
  explicit Hostile(uint64_t seed) : random_(seed) {}

  DiagnosisInput input() {
    DiagnosisInput in;
    in.hook.provider = pick<std::string>(
        {"", "stripe", "github", "shopify", "slack", "razorpay", "acme", bytes(12)});
    in.hook.standardWebhooks = coin();
    in.hook.toleranceS = pick<int64_t>({-1, 0, 300, integer()});
    in.hook.previousSecret =
        pick<std::string>({"", test::kSampleSecret, "whsec_" + bytes(40), bytes(30)});

    in.event.id = integer();
    in.event.method = pick<std::string>({"POST", "GET", bytes(8)});
    in.event.pathSuffix = bytes(40);
    const size_t headerCount = below(9);
    for (size_t i = 0; i < headerCount; ++i) in.event.headers.push_back(header());
    in.event.body = body();
    in.event.bodySize =
        pick<int64_t>({-1, static_cast<int64_t>(in.event.body.size()), integer(), 5000000});
    in.event.receivedAtMs = time();
    in.event.verdictAtMs = pick<int64_t>({0, time()});
    in.event.verdict = static_cast<store::Verdict>(pick<int32_t>({0, 1, 2, 2, 3, 99}));
    in.event.reason = pick<int32_t>({0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, -1, 1000});
    in.event.reasonMessage = bytes(300);
    in.event.replayOf = pick<int64_t>({0, integer()});
    in.event.modified = coin();

    const size_t deliveries = below(5);
    for (size_t i = 0; i < deliveries; ++i) in.deliveries.push_back(delivery());
    return in;
  }

 private:
  bool coin() { return random_() % 2 == 0; }
  size_t below(size_t n) { return static_cast<size_t>(random_() % n); }

  template <typename T>
  T pick(std::vector<T> choices) {
    return choices[below(choices.size())];
  }

  int64_t integer() {
    return pick<int64_t>({std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                          -1, static_cast<int64_t>(random_())});
  }

  int64_t time() { return pick<int64_t>({test::kSampleTimestamp * 1000, integer(), 0}); }

  /// Random bytes, sometimes with markup, line breaks, bidi overrides or broken UTF-8 inside.
  std::string bytes(size_t maxSize) {
    std::string out(below(maxSize + 1), '\0');
    for (char& c : out) c = static_cast<char>(random_());
    switch (below(4)) {
      case 0:
        out += kMarkup;
        break;
      case 1:
        out += "\r\n\xE2\x80\xAE\xC0\xAF\"\\";
        break;
      default:
        break;
    }
    return out;
  }

  std::string digits() { return std::to_string(random_() % 3000000000ULL); }

  store::Header header() {
    const std::string name = pick<std::string>(
        {"Stripe-Signature", "X-Slack-Request-Timestamp", "X-Slack-Signature", "webhook-id",
         "webhook-timestamp", "webhook-signature", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256",
         "X-Razorpay-Signature", "svix-signature", "Content-Encoding", "Content-Type", bytes(10)});
    const std::string value = pick<std::string>(
        {"t=" + digits() + ",v1=" + bytes(64), digits(), "v1," + bytes(44), "gzip", "deflate, zstd",
         "sha256=" + bytes(64), bytes(200), std::string(test::kSampleSignature), "t=1,t=2", ""});
    return {name, value};
  }

  std::string body() {
    return pick<std::string>({"", test::kSampleBody, "\xEF\xBB\xBF{\r\n}", "{\"id\":1}",
                              bytes(2000), std::string(70000, 'x')});
  }

  DeliveryFacts delivery() {
    DeliveryFacts d;
    d.relayId = bytes(20);
    d.status =
        pick<int32_t>({0, 0, 200, 301, 400, 401, 403, 404, 405, 413, 500, 503, 600, -5,
                       std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()});
    d.durationMs = integer();
    d.error = pick<std::string>(
        {"", "timeout", "connection refused", "connection reset", "connection closed inside a body",
         "could not resolve host " + bytes(10), "invalid response: " + bytes(10),
         "SSL " + bytes(20), "unreadable at the edge", bytes(100)});
    d.phase = static_cast<DeliveryPhase>(below(5));
    d.responseExcerpt = bytes(3000);
    d.location = bytes(300);
    d.timeoutMs = integer();
    d.targetHttps = coin();
    d.startedAtMs = time();
    d.reportedAtMs = time();
    return d;
  }

  std::mt19937_64 random_;
};

void expectSafeText(const std::string& text, const char* what) {
  EXPECT_TRUE(isUtf8(text)) << what;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    ASSERT_FALSE(byte < 0x20 || byte == 0x7F) << what << " holds control byte " << int{byte};
  }
}

TEST(HostileInputTest, RandomEventsNeverBreakFindingsJsonOrHtml) {
  Hostile hostile(20260601);
  std::vector<Occurrence> occurrences;
  std::set<std::string> codesSeen;
  for (int round = 0; round < 3000; ++round) {
    SCOPED_TRACE(round);
    const DiagnosisInput input = hostile.input();
    const std::vector<Finding> findings = diagnose(input);

    for (const auto& finding : findings) {
      codesSeen.insert(finding.code);
      const Page* page = findPage(finding.code);
      ASSERT_NE(page, nullptr) << finding.code;
      EXPECT_EQ(finding.title, page->title);
      EXPECT_EQ(finding.severity, page->severity);
      expectSafeText(finding.detail, "detail");
      expectSafeText(finding.fix, "fix");
      expectSafeText(finding.relayId, "relay");
      std::set<std::string> names;
      for (const auto& fact : finding.evidence) {
        EXPECT_TRUE(names.insert(fact.name).second) << "evidence named twice: " << fact.name;
        expectSafeText(fact.value, "evidence");
        EXPECT_LE(fact.value.size(), 4 * kQuoteBytes + kExcerptBytes);
      }
    }

    // The JSON parses, and the documents hold no markup that came from the input.
    const std::string json = findingsJson(findings);
    EXPECT_TRUE(isUtf8(json));
    Poco::JSON::Parser parser;
    const auto parsed = parser.parse(json).extract<Poco::JSON::Array::Ptr>();
    EXPECT_EQ(parsed->size(), findings.size());
    const std::string html = renderFindingsHtml(input.event.id, findings);
    EXPECT_TRUE(isUtf8(html));
    EXPECT_EQ(html.find("<zz"), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);

    const auto mine = occurrencesOf(input.event, findings);
    occurrences.insert(occurrences.end(), mine.begin(), mine.end());
  }

  // The noise reaches most rules, not only the first ones.
  EXPECT_GE(codesSeen.size(), 26u);

  // Whatever was found groups, and every state question has an answer.
  const auto issues = groupIssues("hook", occurrences);
  EXPECT_FALSE(issues.empty());
  for (const auto& issue : issues) {
    EXPECT_LE(issue.firstSeenMs, issue.lastSeenMs);
    EXPECT_GE(issue.count, issue.events.size());
    issueStatus(issue, std::numeric_limits<int64_t>::min());
    issueStatus(issue, std::numeric_limits<int64_t>::max());
    eventsToReplay(issue);
  }
}

TEST(HostileInputTest, RandomBytesThroughEveryQuotingPath) {
  const auto pageOf = [](const std::string& text) {
    return Page{"x.noise", Severity::kError, text, text, {text}, {text}, {text}};
  };
  const auto tags = [](const std::string& html) {
    return std::count(html.begin(), html.end(), '<');
  };
  const auto emptyTags = tags(renderPageHtml(pageOf("")));

  std::mt19937_64 random(7);
  for (int round = 0; round < 2000; ++round) {
    SCOPED_TRACE(round);
    std::string noise(random() % 600, '\0');
    for (char& c : noise) c = static_cast<char>(random());
    noise += kMarkup;

    // Without code spans, the template's tags are the only ones, however many '<' came in.
    std::replace(noise.begin(), noise.end(), '`', 'a');
    const std::string html = renderPageHtml(pageOf(noise));
    EXPECT_TRUE(isUtf8(html));
    EXPECT_EQ(tags(html), emptyTags);
    Poco::JSON::Parser parser;
    EXPECT_NO_THROW(parser.parse(renderPageJson(pageOf(noise))));
  }
}

}  // namespace
}  // namespace anm::diagnosis
