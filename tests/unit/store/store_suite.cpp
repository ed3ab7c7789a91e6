// tests/unit/store/store_suite.cpp: Store behaviour every backend must show.
// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/store/store_suite.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace anm::store::test {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "anm-store-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  // A backend's resources for this directory go first: they may live in its files.
  for (auto cleanup = cleanups_.rbegin(); cleanup != cleanups_.rend(); ++cleanup) {
    try {
      (*cleanup)();
    } catch (...) {
      // Destructors never throw; the cleanup reports its own failures.
    }
  }

  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

HookRecord makeHook(const std::string& id) {
  HookRecord hook;
  hook.id = id;
  hook.provider = "stripe";
  hook.secret = std::string("whsec_\0\xff\x01", 9);
  hook.toleranceS = 300;
  hook.options = {{"allow_sha1", "true"}, {"b", ""}, {"allow_sha1", "false"}};
  hook.tokenHash = std::string(64, 'a');
  hook.createdAtMs = 1700000000123;
  return hook;
}

EventRecord makeEvent(const std::string& hookId, const std::string& body) {
  EventRecord event;
  event.hookId = hookId;
  event.receivedAtMs = 1700000000456;
  event.method = "POST";
  event.pathSuffix = "/x/y";
  event.rawQuery = "a=1&a=2&b";
  event.headers = {{"Content-Type", "application/json"}, {"Stripe-Signature", "t=1,v1=ab"}};
  event.body = body;
  event.verdict = Verdict::kValid;
  event.reason = 0;
  event.reasonMessage = "ok";
  event.eventType = "charge.succeeded";
  event.deliveryId = "evt_1";
  return event;
}

void expectSameContents(const EventRecord& expected, const EventRecord& actual) {
  EXPECT_EQ(actual.integrityError, "");
  EXPECT_EQ(expected.rawQuery, actual.rawQuery);
  EXPECT_EQ(expected.headers, actual.headers);
  EXPECT_TRUE(expected.body == actual.body) << "bodies differ";
  EXPECT_EQ(static_cast<int64_t>(expected.body.size()), actual.bodySize);
  EXPECT_EQ(expected.method, actual.method);
  EXPECT_EQ(expected.pathSuffix, actual.pathSuffix);
  EXPECT_EQ(expected.reasonMessage, actual.reasonMessage);
  EXPECT_EQ(expected.eventType, actual.eventType);
  EXPECT_EQ(expected.deliveryId, actual.deliveryId);
}

DeliveryRecord makeDelivery(int64_t eventId, const std::string& relayId, int64_t reportedAtMs,
                            const std::string& marker) {
  DeliveryRecord delivery;
  delivery.eventId = eventId;
  delivery.relayId = relayId;
  delivery.status = 302;
  delivery.durationMs = 17;
  delivery.error = "";
  delivery.reportedAtMs = reportedAtMs;
  delivery.phase = DeliveryPhase::kReceiving;
  delivery.timeoutMs = 30000;
  delivery.targetHttps = true;
  delivery.startedAtMs = reportedAtMs - 40;
  delivery.responseExcerpt = std::string("{\"error\":\"") + marker + "\"}\0\xff";
  delivery.location = "https://localhost:3000/login?next=" + marker;
  return delivery;
}

void expectSameDelivery(const DeliveryRecord& expected, const DeliveryRecord& actual) {
  EXPECT_EQ(actual.integrityError, "");
  EXPECT_EQ(expected.eventId, actual.eventId);
  EXPECT_EQ(expected.relayId, actual.relayId);
  EXPECT_EQ(expected.status, actual.status);
  EXPECT_EQ(expected.durationMs, actual.durationMs);
  EXPECT_EQ(expected.error, actual.error);
  EXPECT_EQ(expected.reportedAtMs, actual.reportedAtMs);
  EXPECT_EQ(expected.phase, actual.phase);
  EXPECT_EQ(expected.timeoutMs, actual.timeoutMs);
  EXPECT_EQ(expected.targetHttps, actual.targetHttps);
  EXPECT_EQ(expected.startedAtMs, actual.startedAtMs);
  EXPECT_TRUE(expected.responseExcerpt == actual.responseExcerpt)
      << "excerpts differ: " << actual.responseExcerpt;
  EXPECT_EQ(expected.location, actual.location);
}

void expectDeliveryFactsAndModifiedRoundTrip(Store& store) {
  store.createHook(makeHook("h"));
  const int64_t first = store.appendEvent(makeEvent("h"));
  EventRecord edited = makeEvent("h", "edited body");
  edited.replayOf = first;
  edited.modified = true;
  const int64_t second = store.appendEvent(edited);

  // Every fact through each write: no answer at all, and the longest values, of every byte.
  std::vector<DeliveryRecord> reports = {makeDelivery(first, "relay-a", 1000),
                                         makeDelivery(second, "relay-a", 1001),
                                         makeDelivery(first, "relay-b", 1002)};
  reports[1].status = 0;
  reports[1].error = "timeout";
  reports[1].phase = DeliveryPhase::kConnecting;
  reports[1].targetHttps = false;
  reports[1].responseExcerpt.clear();
  reports[1].location.clear();
  reports[2].phase = DeliveryPhase::kSending;
  reports[2].responseExcerpt.clear();
  for (size_t i = 0; i < kMaxResponseExcerptBytes; ++i) {
    reports[2].responseExcerpt.push_back(static_cast<char>(i & 0xff));
  }
  reports[2].location = std::string(kMaxLocationBytes, 'l');
  store.addDelivery(reports[0]);
  store.addDeliveries({reports[1], reports[2]});

  auto ofFirst = store.listDeliveries(first);
  ASSERT_EQ(ofFirst.size(), 2u);
  expectSameDelivery(reports[0], ofFirst[0]);
  expectSameDelivery(reports[2], ofFirst[1]);
  auto ofSecond = store.listDeliveries(second);
  ASSERT_EQ(ofSecond.size(), 1u);
  expectSameDelivery(reports[1], ofSecond[0]);
  auto ofBoth = store.listDeliveriesOf({second, first});
  ASSERT_EQ(ofBoth.size(), 3u);
  expectSameDelivery(reports[0], ofBoth[0]);
  expectSameDelivery(reports[2], ofBoth[1]);
  expectSameDelivery(reports[1], ofBoth[2]);

  // The edited replay is marked in every read; the original is not.
  EXPECT_FALSE(store.getEvent("h", first)->modified);
  EXPECT_TRUE(store.getEvent("h", second)->modified);
  auto listed = store.listEvents("h", 0, 10, false, true);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_FALSE(listed[0].modified);
  EXPECT_TRUE(listed[1].modified);
  auto newestFirst = store.listEventsBefore("h", 0, 10, true);
  ASSERT_EQ(newestFirst.size(), 2u);
  EXPECT_TRUE(newestFirst[0].modified);
  EXPECT_EQ(newestFirst[0].body, "edited body");
  EXPECT_FALSE(newestFirst[1].modified);
}

/// What an event that did not open must look like: reported, with none of its sealed values.
void expectUnreadable(const EventRecord& event, int64_t id) {
  EXPECT_NE(event.integrityError, "") << "event " << id << " was returned as data";
  EXPECT_NE(event.integrityError.find(std::to_string(id)), std::string::npos)
      << event.integrityError;
  EXPECT_EQ(event.rawQuery, "");
  EXPECT_TRUE(event.headers.empty());
  EXPECT_EQ(event.body, "");
  EXPECT_EQ(event.pathSuffix, "");
  EXPECT_EQ(event.reasonMessage, "");
  EXPECT_EQ(event.eventType, "");
  EXPECT_EQ(event.deliveryId, "");
}

SummaryFields markedSummary(const std::string& marker) {
  return SummaryFields{"/p/" + marker, "quoted " + marker, marker + ".created", "msg_" + marker};
}

void expectMarkedSummary(const EventRecord& event, const std::string& marker) {
  const SummaryFields expected = markedSummary(marker);
  EXPECT_EQ(event.integrityError, "");
  EXPECT_EQ(event.pathSuffix, expected.pathSuffix);
  EXPECT_EQ(event.reasonMessage, expected.reasonMessage);
  EXPECT_EQ(event.eventType, expected.eventType);
  EXPECT_EQ(event.deliveryId, expected.deliveryId);
}

namespace {

std::string randomBytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(generator() & 0xffu);
  return bytes;
}

std::vector<int64_t> idsOf(const std::vector<EventRecord>& events) {
  std::vector<int64_t> ids;
  for (const auto& event : events) ids.push_back(event.id);
  return ids;
}

void expectSameEvent(const EventRecord& expected, const EventRecord& actual) {
  EXPECT_EQ(expected.id, actual.id);
  EXPECT_EQ(expected.hookId, actual.hookId);
  EXPECT_EQ(expected.receivedAtMs, actual.receivedAtMs);
  EXPECT_EQ(expected.verdict, actual.verdict);
  EXPECT_EQ(expected.reason, actual.reason);
  EXPECT_EQ(expected.replayOf, actual.replayOf);
  expectSameContents(expected, actual);
}

/// Appends `event` once the store accepts writes again after an outage: a backend may refuse
/// for a moment while it reconnects, but each refusal must be a StoreError that stored nothing
/// (the callers check that). Fails the test if the store is not back within a generous bound.
int64_t appendWhenBack(Store& store, const EventRecord& event, int* refusals = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    try {
      return store.appendEvent(event);
    } catch (const StoreError& e) {
      if (refusals != nullptr) ++*refusals;
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "the store did not take writes again within 30 s: " << e.what();
        return 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Appends `event` and fetches it back with its body.
EventRecord roundTrip(Store& store, EventRecord event) {
  event.id = store.appendEvent(event);
  auto stored = store.getEvent(event.hookId, event.id);
  EXPECT_TRUE(stored.has_value());
  if (!stored) return EventRecord{};
  expectSameEvent(event, *stored);
  return *stored;
}

TEST_P(StoreSuite, IdsStrictlyIncreaseAcrossHooks) {
  auto store = open();
  store->createHook(makeHook("hook-a"));
  store->createHook(makeHook("hook-b"));

  int64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    int64_t id = store->appendEvent(makeEvent(i % 2 ? "hook-a" : "hook-b"));
    EXPECT_GT(id, last) << "append " << i;
    last = id;
  }
}

TEST_P(StoreSuite, BodyWithNulAndInvalidUtf8RoundTripsByteForByte) {
  auto store = open();
  store->createHook(makeHook("h"));

  std::string body;
  for (int b = 0; b < 256; ++b) body.push_back(static_cast<char>(b));
  body += std::string("\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\x00\x00\xff\xfe", 15);
  auto stored = roundTrip(*store, makeEvent("h", body));

  // Listing with bodies hands out the same bytes; without, only the size.
  auto withBodies = store->listEvents("h", 0, 10, true, false);
  ASSERT_EQ(withBodies.size(), 1u);
  EXPECT_TRUE(withBodies[0].body == body);
  auto withoutBodies = store->listEvents("h", 0, 10, false, false);
  ASSERT_EQ(withoutBodies.size(), 1u);
  EXPECT_TRUE(withoutBodies[0].body.empty());
  EXPECT_EQ(withoutBodies[0].bodySize, static_cast<int64_t>(body.size()));
}

TEST_P(StoreSuite, EmptyBodyRoundTrips) {
  auto store = open();
  store->createHook(makeHook("h"));

  auto event = makeEvent("h", "");
  event.headers.clear();
  event.pathSuffix.clear();
  event.rawQuery.clear();
  event.reasonMessage.clear();
  event.eventType.clear();
  event.deliveryId.clear();
  auto stored = roundTrip(*store, event);
  EXPECT_EQ(stored.bodySize, 0);
}

TEST_P(StoreSuite, TwentyMebibyteBodyRoundTrips) {
  auto store = open();
  store->createHook(makeHook("h"));

  std::string body = randomBytes(size_t{20} << 20, 7);
  roundTrip(*store, makeEvent("h", body));
}

TEST_P(StoreSuite, BodySizeIsTakenFromTheBody) {
  auto store = open();
  store->createHook(makeHook("h"));

  auto event = makeEvent("h", "12345");
  event.bodySize = 999;
  int64_t id = store->appendEvent(event);
  EXPECT_EQ(store->getEvent("h", id)->bodySize, 5);
}

TEST_P(StoreSuite, HeadersKeepOrderSpellingDuplicatesAndBytes) {
  auto store = open();
  store->createHook(makeHook("h"));

  auto event = makeEvent("h");
  event.headers = {
      {"X-Dup", "1"},
      {"content-TYPE", "application/json"},
      {"x-dup", "2"},
      {"X-Dup", "3"},
      {"X-Empty", ""},
      {"X-Bin", std::string("\0\xff\xc3\x28 tail", 9)},
      {"X-\xc3\xbc\xff", "v\xc3\xa4lue\x80"},
      {"", ""},
  };
  auto stored = roundTrip(*store, event);
  EXPECT_EQ(stored.headers, event.headers);
}

TEST_P(StoreSuite, OtherFieldsKeepTheirBytes) {
  auto store = open();
  store->createHook(makeHook("h"));

  auto event = makeEvent("h");
  event.method = "PATCH";
  event.pathSuffix = std::string("/a%2F\xff\0b", 8);
  event.rawQuery = std::string("q=\xe2\x28\0&x", 7);
  event.verdict = Verdict::kUnsigned;
  event.reason = 7;
  event.reasonMessage = std::string("bad\0msg", 7);
  event.eventType = std::string("t\0y", 3);
  event.deliveryId = "\xff\xfe";
  roundTrip(*store, event);
}

TEST_P(StoreSuite, ListEventsPagesWithAfterIdAndLimit) {
  auto store = open();
  store->createHook(makeHook("h"));
  store->createHook(makeHook("other"));

  std::vector<int64_t> expected;
  for (int i = 0; i < 25; ++i) {
    expected.push_back(store->appendEvent(makeEvent("h", std::to_string(i))));
    store->appendEvent(makeEvent("other"));
  }

  // Walk the pages the way the API does: after = last id of the previous page.
  std::vector<int64_t> seen;
  std::vector<size_t> pageSizes;
  int64_t after = 0;
  for (;;) {
    auto page = store->listEvents("h", after, 10, false, false);
    pageSizes.push_back(page.size());
    if (page.empty()) break;
    for (const auto& event : page) {
      EXPECT_EQ(event.hookId, "h");
      seen.push_back(event.id);
    }
    after = page.back().id;
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(pageSizes, (std::vector<size_t>{10, 10, 5, 0}));

  // afterId in the middle starts right after it; limit 0 gives nothing.
  auto tail = store->listEvents("h", expected[19], 100, true, false);
  EXPECT_EQ(idsOf(tail), std::vector<int64_t>(expected.begin() + 20, expected.end()));
  EXPECT_EQ(tail[0].body, "20");
  EXPECT_TRUE(store->listEvents("h", 0, 0, false, false).empty());
  EXPECT_TRUE(store->listEvents("no-such-hook", 0, 10, false, false).empty());
}

TEST_P(StoreSuite, ForwardableOnlyLeavesOutInvalidEventsButNotTheirReplays) {
  auto store = open();
  store->createHook(makeHook("h"));

  auto valid = makeEvent("h");
  auto invalid = makeEvent("h");
  invalid.verdict = Verdict::kInvalid;
  invalid.reason = 3;
  auto unsignedEvent = makeEvent("h");
  unsignedEvent.verdict = Verdict::kUnsigned;

  int64_t validId = store->appendEvent(valid);
  int64_t invalidId = store->appendEvent(invalid);
  int64_t unsignedId = store->appendEvent(unsignedEvent);
  auto replay = invalid;
  replay.replayOf = invalidId;
  int64_t replayId = store->appendEvent(replay);

  EXPECT_EQ(idsOf(store->listEvents("h", 0, 10, false, true)),
            (std::vector<int64_t>{validId, unsignedId, replayId}));
  EXPECT_EQ(idsOf(store->listEvents("h", 0, 10, false, false)),
            (std::vector<int64_t>{validId, invalidId, unsignedId, replayId}));

  // The limit counts returned events, not skipped ones.
  EXPECT_EQ(idsOf(store->listEvents("h", 0, 2, false, true)),
            (std::vector<int64_t>{validId, unsignedId}));
}

TEST_P(StoreSuite, GetEventOfAnotherHookReturnsNothing) {
  auto store = open();
  store->createHook(makeHook("mine"));
  store->createHook(makeHook("theirs"));

  int64_t theirs = store->appendEvent(makeEvent("theirs"));
  EXPECT_FALSE(store->getEvent("mine", theirs).has_value());
  EXPECT_FALSE(store->getEvent("mine", theirs + 1000).has_value());
  EXPECT_TRUE(store->getEvent("theirs", theirs).has_value());
}

TEST_P(StoreSuite, ConcurrentWritersGetDistinctIncreasingIds) {
  auto store = open();
  store->createHook(makeHook("h0"));
  store->createHook(makeHook("h1"));

  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string body = std::to_string(t) + ":" + std::to_string(i);
        ids[t].push_back(store->appendEvent(makeEvent(t % 2 ? "h1" : "h0", body)));
      }
    });
  }
  for (auto& thread : threads) thread.join();

  // Each thread saw its own ids rise; no id was handed out twice.
  std::set<int64_t> all;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(ids[t].size(), static_cast<size_t>(kPerThread));
    EXPECT_TRUE(std::is_sorted(ids[t].begin(), ids[t].end())) << "thread " << t;
    all.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));

  // Every event is stored under the id its writer got, with its own body.
  std::set<int64_t> stored;
  for (const std::string hook : {"h0", "h1"}) {
    for (const auto& event : store->listEvents(hook, 0, 100000, true, false)) {
      stored.insert(event.id);
    }
  }
  EXPECT_EQ(stored, all);
  for (int t = 0; t < kThreads; ++t) {
    auto event = store->getEvent(t % 2 ? "h1" : "h0", ids[t][kPerThread - 1]);
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->body, std::to_string(t) + ":" + std::to_string(kPerThread - 1));
  }
}

/// What an announcement tells: the id and hook, and the body when the listener gets the record.
using AnnouncementListener =
    std::function<void(int64_t id, const std::string& hookId, const std::string* body)>;

/// Sets the listener the backend announces through; an empty function removes it.
void setAnnouncementListener(Store& store, Announcement announces, AnnouncementListener heard) {
  if (announces == Announcement::kCommitListener) {
    if (!heard) return store.setCommitListener(nullptr);
    return store.setCommitListener(
        [heard](const EventRecord& event) { heard(event.id, event.hookId, &event.body); });
  }
  if (!heard) return store.setNoticeListener(nullptr);
  store.setNoticeListener(
      [heard](const EventNotice& notice) { heard(notice.id, notice.hookId, nullptr); });
}

TEST_P(StoreSuite, AnnouncesEveryEventOnceInIdOrderBeforeAppendReturns) {
  const Announcement announces = GetParam().announces;
  auto store = open();
  store->createHook(makeHook("h"));

  std::mutex mutex;
  std::vector<int64_t> heard;
  std::vector<std::string> hooks;
  std::vector<std::string> bodies;
  setAnnouncementListener(*store, announces,
                          [&](int64_t id, const std::string& hookId, const std::string* body) {
                            std::lock_guard<std::mutex> lock(mutex);
                            heard.push_back(id);
                            hooks.push_back(hookId);
                            if (body != nullptr) bodies.push_back(*body);
                          });

  // The listener the backend does not announce through must never be called.
  std::atomic<int> otherCalls{0};
  if (announces == Announcement::kCommitListener) {
    store->setNoticeListener([&](const EventNotice&) { ++otherCalls; });
  } else {
    store->setCommitListener([&](const EventRecord&) { ++otherCalls; });
  }

  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::atomic<int> heardLate{0};
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int64_t id = store->appendEvent(makeEvent("h", "body-" + std::to_string(t)));
        ids[t].push_back(id);
        std::lock_guard<std::mutex> lock(mutex);
        if (std::find(heard.begin(), heard.end(), id) == heard.end()) ++heardLate;
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::vector<int64_t> all;
  for (const auto& own : ids) all.insert(all.end(), own.begin(), own.end());
  std::sort(all.begin(), all.end());
  {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(heard, all) << "every event once, in id order";
    for (const auto& hookId : hooks) EXPECT_EQ(hookId, "h");

    // A commit listener gets the whole record; a notice carries no contents.
    if (announces == Announcement::kCommitListener) {
      ASSERT_EQ(bodies.size(), all.size());
      for (const auto& body : bodies) EXPECT_EQ(body.rfind("body-", 0), 0u) << body;
    }
  }
  EXPECT_EQ(heardLate.load(), 0) << "an append returned before the listener heard of it";
  EXPECT_EQ(otherCalls.load(), 0) << "the backend called the listener it does not announce with";

  // Removing the listener stops the calls.
  setAnnouncementListener(*store, announces, nullptr);
  store->appendEvent(makeEvent("h"));
  {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(heard.size(), all.size());
  }
  store->setNoticeListener(nullptr);
  store->setCommitListener(nullptr);
}

TEST_P(StoreSuite, DeliveriesComeBackInReportOrder) {
  auto store = open();
  store->createHook(makeHook("h"));
  int64_t first = store->appendEvent(makeEvent("h"));
  int64_t second = store->appendEvent(makeEvent("h"));

  std::vector<DeliveryRecord> reports = {
      {first, "relay-b", 500, 12, "", 1000},
      {first, "relay-a", 0, 30000, "timeout", 999},
      {first, "relay-b", 200, 3, "", 1002},
  };
  store->addDelivery(reports[0]);
  store->addDelivery({second, "relay-a", 200, 1, "", 1001});
  store->addDelivery(reports[1]);
  store->addDeliveries({reports[2]});

  auto listed = store->listDeliveries(first);
  ASSERT_EQ(listed.size(), reports.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(listed[i].eventId, first);
    EXPECT_EQ(listed[i].relayId, reports[i].relayId);
    EXPECT_EQ(listed[i].status, reports[i].status);
    EXPECT_EQ(listed[i].durationMs, reports[i].durationMs);
    EXPECT_EQ(listed[i].error, reports[i].error);
    EXPECT_EQ(listed[i].reportedAtMs, reports[i].reportedAtMs);
  }
  EXPECT_EQ(store->listDeliveries(second).size(), 1u);
  EXPECT_TRUE(store->listDeliveries(second + 100).empty());
}

TEST_P(StoreSuite, DeliveryFactsAndTheModifiedFlagRoundTrip) {
  auto store = open();
  expectDeliveryFactsAndModifiedRoundTrip(*store);
}

TEST_P(StoreSuite, DeliveryForUnknownEventThrowsAndBulkReportsAreAllOrNothing) {
  auto store = open();
  store->createHook(makeHook("h"));
  int64_t event = store->appendEvent(makeEvent("h"));

  EXPECT_THROW(store->addDelivery({event + 1000, "r", 200, 1, "", 1}), StoreError);

  // One bad report in a bulk request keeps the good ones before it out as well.
  std::vector<DeliveryRecord> bulk = {
      {event, "r", 200, 1, "", 1},
      {event, "r", 200, 2, "", 2},
      {event + 1000, "r", 200, 3, "", 3},
  };
  EXPECT_THROW(store->addDeliveries(bulk), StoreError);
  EXPECT_TRUE(store->listDeliveries(event).empty());

  // The store goes on working after the refused reports.
  bulk.pop_back();
  store->addDeliveries(bulk);
  EXPECT_EQ(store->listDeliveries(event).size(), 2u);
}

TEST_P(StoreSuite, ReplayOfIsKept) {
  auto store = open();
  store->createHook(makeHook("h"));
  int64_t original = store->appendEvent(makeEvent("h"));

  auto replay = makeEvent("h");
  replay.replayOf = original;
  int64_t copy = store->appendEvent(replay);

  EXPECT_EQ(store->getEvent("h", copy)->replayOf, original);
  EXPECT_EQ(store->getEvent("h", original)->replayOf, 0);
  auto listed = store->listEvents("h", original, 10, false, true);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].replayOf, original);
}

TEST_P(StoreSuite, HookRoundTripsAndUnknownHookIsNothing) {
  auto store = open();
  HookRecord hook = makeHook("hook-1");
  store->createHook(hook);

  auto found = store->findHook("hook-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, hook.id);
  EXPECT_EQ(found->provider, hook.provider);
  EXPECT_EQ(found->secret, hook.secret);
  EXPECT_EQ(found->toleranceS, hook.toleranceS);
  EXPECT_EQ(found->options, hook.options);
  EXPECT_EQ(found->tokenHash, hook.tokenHash);
  EXPECT_EQ(found->createdAtMs, hook.createdAtMs);

  HookRecord bare;
  bare.id = "bare";
  store->createHook(bare);
  auto foundBare = store->findHook("bare");
  ASSERT_TRUE(foundBare.has_value());
  EXPECT_EQ(foundBare->provider, "");
  EXPECT_EQ(foundBare->secret, "");
  EXPECT_EQ(foundBare->toleranceS, -1);
  EXPECT_TRUE(foundBare->options.empty());

  EXPECT_FALSE(store->findHook("hook-2").has_value());
}

TEST_P(StoreSuite, CreateHookTwiceWithOneIdThrows) {
  auto store = open();
  store->createHook(makeHook("dup"));

  HookRecord again = makeHook("dup");
  again.provider = "github";
  EXPECT_THROW(store->createHook(again), StoreError);

  // The first hook is unchanged and the store takes new writes.
  EXPECT_EQ(store->findHook("dup")->provider, "stripe");
  store->createHook(makeHook("next"));
  EXPECT_GT(store->appendEvent(makeEvent("next")), 0);
}

TEST_P(StoreSuite, EventOfUnknownHookIsRefused) {
  auto store = open();
  EXPECT_THROW(store->appendEvent(makeEvent("no-such-hook")), StoreError);

  store->createHook(makeHook("h"));
  int64_t id = store->appendEvent(makeEvent("h"));
  EXPECT_EQ(idsOf(store->listEvents("h", 0, 10, false, false)), std::vector<int64_t>{id});
}

TEST_P(StoreSuite, ReopenKeepsEverythingAndIdsContinueAboveTheOldOnes) {
  std::vector<EventRecord> written;
  {
    auto store = open();
    store->createHook(makeHook("h"));
    for (int i = 0; i < 5; ++i) {
      auto event = makeEvent("h", randomBytes(1000 + i, i));
      event.id = store->appendEvent(event);
      written.push_back(event);
    }
    store->addDelivery({written[2].id, "relay", 204, 5, "", 77});
  }

  auto store = open();
  ASSERT_TRUE(store->findHook("h").has_value());
  EXPECT_EQ(store->findHook("h")->secret, makeHook("h").secret);
  auto events = store->listEvents("h", 0, 100, true, false);
  ASSERT_EQ(events.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) expectSameEvent(written[i], events[i]);
  ASSERT_EQ(store->listDeliveries(written[2].id).size(), 1u);
  EXPECT_EQ(store->listDeliveries(written[2].id)[0].status, 204);

  EXPECT_GT(store->appendEvent(makeEvent("h")), written.back().id);
}

TEST_P(StoreSuite, NewerSchemaIsRefusedNamingBothVersions) {
  { open()->createHook(makeHook("h")); }
  const int64_t known = GetParam().schemaVersion;
  GetParam().markSchemaVersion(dir_, known + 5);

  try {
    open();
    FAIL() << "a database with a newer schema was opened";
  } catch (const StoreError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(std::to_string(known + 5)), std::string::npos) << message;
    EXPECT_NE(message.find("(" + std::to_string(known) + ")"), std::string::npos) << message;
    EXPECT_NE(message.find("newer"), std::string::npos) << message;
  }
}

TEST_P(StoreSuite, FailedWritesThrowAndAcknowledgeNothing) {
  auto store = open();
  store->createHook(makeHook("h"));
  int64_t before = store->appendEvent(makeEvent("h", "before"));

  // While storage refuses writes, appends fail rather than return an id.
  {
    auto restore = GetParam().failWrites(dir_);
    EXPECT_THROW(store->appendEvent(makeEvent("h", randomBytes(1 << 20, 3))), StoreError);
    EXPECT_THROW(store->appendEvent(makeEvent("h", "small")), StoreError);
    EXPECT_THROW(store->addDelivery({before, "r", 200, 1, "", 1}), StoreError);
    restore();
  }

  // Afterwards the same store works again, by itself, and holds exactly what was acknowledged.
  int64_t after = appendWhenBack(*store, makeEvent("h", "after"));
  EXPECT_GT(after, before);
  auto events = store->listEvents("h", 0, 100, true, false);
  ASSERT_EQ(idsOf(events), (std::vector<int64_t>{before, after}));
  EXPECT_EQ(events[0].body, "before");
  EXPECT_EQ(events[1].body, "after");
  EXPECT_TRUE(store->listDeliveries(before).empty());
}

TEST_P(StoreSuite, ListingNewestFirstPagesBackWithoutGapsOrOtherHooks) {
  auto store = open();
  store->createHook(makeHook("h"));
  store->createHook(makeHook("other"));
  std::vector<int64_t> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(store->appendEvent(makeEvent("h", "event " + std::to_string(i))));
    store->appendEvent(makeEvent("other"));
  }

  // Pages of three from the newest, each continuing below the last id of the one before.
  std::vector<int64_t> seen;
  int64_t before = 0;
  for (;;) {
    const auto page = store->listEventsBefore("h", before, 3, false);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 3u);
    for (const auto& event : page) {
      EXPECT_EQ(event.hookId, "h");
      EXPECT_TRUE(event.body.empty()) << "bodies were not asked for";
      seen.push_back(event.id);
    }
    before = page.back().id;
  }
  EXPECT_EQ(seen, std::vector<int64_t>(ids.rbegin(), ids.rend()));

  // With bodies, and the summary fields as stored.
  const auto newest = store->listEventsBefore("h", 0, 1, true);
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(newest[0].body, "event 6");
  EXPECT_EQ(newest[0].eventType, "charge.succeeded");
  EXPECT_TRUE(store->listEventsBefore("h", ids.front(), 10, false).empty());
  EXPECT_TRUE(store->listEventsBefore("none", 0, 10, false).empty());
}

TEST_P(StoreSuite, CountsEveryEventOfAHookInvalidOnesAndReplaysIncluded) {
  auto store = open();
  store->createHook(makeHook("h"));
  store->createHook(makeHook("other"));
  EXPECT_EQ(store->countEvents("h"), 0);

  EventRecord invalid = makeEvent("h");
  invalid.verdict = Verdict::kInvalid;
  const int64_t original = store->appendEvent(invalid);
  EventRecord replay = makeEvent("h");
  replay.replayOf = original;
  store->appendEvent(replay);
  store->appendEvent(makeEvent("h"));
  store->appendEvent(makeEvent("other"));

  EXPECT_EQ(store->countEvents("h"), 3);
  EXPECT_EQ(store->countEvents("other"), 1);
}

TEST_P(StoreSuite, ListsTheReplaysOfAnEventOldestFirstAndOnlyItsOwn) {
  auto store = open();
  store->createHook(makeHook("h"));
  store->createHook(makeHook("other"));
  const int64_t original = store->appendEvent(makeEvent("h"));
  const int64_t unrelated = store->appendEvent(makeEvent("h"));
  EXPECT_TRUE(store->listReplayIds("h", original, 10).empty());

  std::vector<int64_t> replays;
  for (int i = 0; i < 3; ++i) {
    EventRecord replay = makeEvent("h");
    replay.replayOf = original;
    replay.modified = i == 1;  // an edited replay is a replay too
    replays.push_back(store->appendEvent(replay));
    EventRecord other = makeEvent("h");
    other.replayOf = unrelated;
    store->appendEvent(other);
  }

  EXPECT_EQ(store->listReplayIds("h", original, 10), replays);
  EXPECT_EQ(store->listReplayIds("h", original, 2),
            std::vector<int64_t>(replays.begin(), replays.begin() + 2));
  EXPECT_TRUE(store->listReplayIds("other", original, 10).empty());
  EXPECT_TRUE(store->listReplayIds("h", replays[0], 10).empty());
  EXPECT_TRUE(store->listReplayIds("h", original, 0).empty());
}

TEST_P(StoreSuite, ActivityCountsEventsByVerdictAndReportsByOutcomePerBucket) {
  auto store = open();
  store->createHook(makeHook("h"));
  store->createHook(makeHook("other"));
  const int64_t from = 1700000040000;
  const int64_t minute = 60000;
  const auto append = [&](const std::string& hook, int64_t at, Verdict verdict) {
    EventRecord event = makeEvent(hook);
    event.receivedAtMs = at;
    event.verdict = verdict;
    return store->appendEvent(event);
  };

  // Bucket 0: two valid and one invalid; bucket 2: one unsigned; nothing in bucket 1.
  const int64_t first = append("h", from, Verdict::kValid);
  append("h", from + minute - 1, Verdict::kValid);
  append("h", from + 30000, Verdict::kInvalid);
  const int64_t late = append("h", from + 2 * minute + 5, Verdict::kUnsigned);

  // Outside the window or of another hook: not counted.
  append("h", from - 1, Verdict::kValid);
  append("h", from + 3 * minute, Verdict::kValid);
  append("other", from + 10, Verdict::kValid);

  // Reports of bucket 0's first event in buckets 0 and 2; of bucket 2's event in bucket 2.
  store->addDelivery({first, "r", 500, 3, "", from + 1000});
  store->addDelivery({first, "r", 200, 3, "", from + 2 * minute + 1});
  store->addDelivery({late, "r", 0, 3, "connection refused", from + 2 * minute + 10});

  const auto buckets = store->activity("h", from, minute, 3);
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].atMs, from);
  EXPECT_EQ(buckets[1].atMs, from + minute);
  EXPECT_EQ(buckets[2].atMs, from + 2 * minute);
  EXPECT_EQ(buckets[0].valid, 2);
  EXPECT_EQ(buckets[0].invalid, 1);
  EXPECT_EQ(buckets[0].unsigned_, 0);
  EXPECT_EQ(buckets[0].failed, 1);
  EXPECT_EQ(buckets[0].delivered, 0);
  EXPECT_EQ(buckets[1].valid + buckets[1].invalid + buckets[1].unsigned_, 0);
  EXPECT_EQ(buckets[1].delivered + buckets[1].failed, 0);
  EXPECT_EQ(buckets[2].unsigned_, 1);
  EXPECT_EQ(buckets[2].valid, 0);
  EXPECT_EQ(buckets[2].delivered, 1);
  EXPECT_EQ(buckets[2].failed, 1);
}

}  // namespace
}  // namespace anm::store::test
