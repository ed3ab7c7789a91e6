// tests/unit/edge/stream_hub_test.cpp: relay streams over loopback sockets and a real store.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/stream_hub.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServerConnection.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/edge/connection.h"
#include "core/edge/event_json.h"
#include "core/edge/handlers.h"
#include "core/store/store.h"

namespace anm::edge {
namespace {

using namespace std::chrono_literals;
using Poco::Net::SocketAddress;
using Poco::Net::StreamSocket;

// Generous limits for things that normally take milliseconds; they only stop a broken test
// from hanging, nothing is asserted about speed.
constexpr auto kPatience = 60s;

std::string describe(const StreamHub::Stats& stats) {
  std::ostringstream out;
  out << "attached=" << stats.attached << " closed=" << stats.closed
      << " closed_queue_limit=" << stats.closedQueueLimit
      << " closed_stalled=" << stats.closedStalled
      << " closed_store_error=" << stats.closedStoreError << " live=" << stats.liveStreams
      << " backlog_read_errors=" << stats.backlogReadErrors << " notices=" << stats.notices;
  return out.str();
}

bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = kPatience) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string decodeBase64(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in);
  std::string out;
  char c;
  while (decoder.get(c)) out.push_back(c);
  return out;
}

long rssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

/// The relay's side of one stream: reads the response and splits it into SSE blocks.
class SseClient {
 public:
  explicit SseClient(StreamSocket socket) : socket_(std::move(socket)) {
    socket_.setReceiveTimeout(Poco::Timespan(0, 20000));
  }

  /// Reads until `done` holds or the peer closes; false if neither happened in time.
  bool readUntil(const std::function<bool()>& done, std::chrono::seconds limit = kPatience) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    char buffer[16384];
    while (!done()) {
      if (eof_) return false;
      if (std::chrono::steady_clock::now() > deadline) return false;
      int n = 0;
      try {
        n = socket_.receiveBytes(buffer, sizeof(buffer));
      } catch (const Poco::TimeoutException&) {
        continue;
      } catch (const Poco::Net::NetException&) {
        eof_ = true;
        continue;
      }
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      raw_.append(buffer, static_cast<size_t>(n));
      parse();
    }
    return true;
  }

  bool readUntilEvents(size_t count) {
    return readUntil([&] { return ids.size() >= count; });
  }

  bool readUntilClosed() {
    return readUntil([&] { return eof_; }) || eof_;
  }

  bool lastIs(int64_t id) const { return !ids.empty() && ids.back() == id; }

  void close() { socket_.close(); }
  bool closed() const { return eof_; }

  std::vector<int64_t> ids;
  std::vector<std::string> frames;  ///< each event's whole frame, "\n\n" included
  std::vector<std::string> data;    ///< each event's data line
  int retries = 0;
  int keepAlives = 0;
  bool headSeen = false;
  std::vector<std::string> named;  ///< names of frames without an id, e.g. "shutdown"
  std::vector<size_t> namedAfter;  ///< how many events had arrived before each of them

 private:
  void parse() {
    if (!headSeen) {
      const auto end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      raw_.erase(0, end + 4);
      headSeen = true;
    }
    for (;;) {
      const auto end = raw_.find("\n\n");
      if (end == std::string::npos) return;
      const std::string block = raw_.substr(0, end);
      raw_.erase(0, end + 2);
      if (block.rfind("retry: ", 0) == 0) {
        ++retries;
      } else if (block.rfind(":", 0) == 0) {
        ++keepAlives;
      } else if (block.rfind("event: ", 0) == 0) {
        // A frame without an id: the hub's own word to the relay, after the events before it.
        named.push_back(block.substr(7, block.find('\n') - 7));
        namedAfter.push_back(ids.size());
      } else if (block.rfind("id: ", 0) == 0) {
        ids.push_back(std::stoll(block.substr(4)));
        frames.push_back(block + "\n\n");
        const auto dataAt = block.find("\ndata: ");
        data.push_back(dataAt == std::string::npos ? "" : block.substr(dataAt + 7));
      } else {
        ADD_FAILURE() << "unexpected block: " << block;
      }
    }
  }

  StreamSocket socket_;
  std::string raw_;
  bool eof_ = false;
};

/// A real store whose event reads fail while `failing` is set, the way a database that is
/// briefly unreachable fails them. Everything else goes straight to the store underneath.
class FlakyStore : public store::Store {
 public:
  explicit FlakyStore(store::Store& inner) : inner_(inner) {}

  void createHook(const store::HookRecord& hook) override { inner_.createHook(hook); }
  std::optional<store::HookRecord> findHook(const std::string& hookId) override {
    return inner_.findHook(hookId);
  }
  int64_t appendEvent(store::EventRecord event) override {
    return inner_.appendEvent(std::move(event));
  }
  std::vector<store::EventRecord> listEvents(const std::string& hookId, int64_t afterId,
                                             size_t limit, bool withBodies,
                                             bool forwardableOnly) override {
    if (failing.load()) {
      ++failedReads;
      throw store::StoreError("could not reach the database");
    }
    return inner_.listEvents(hookId, afterId, limit, withBodies, forwardableOnly);
  }
  std::optional<store::EventRecord> getEvent(const std::string& hookId, int64_t eventId) override {
    return inner_.getEvent(hookId, eventId);
  }
  void addDelivery(const store::DeliveryRecord& delivery) override { inner_.addDelivery(delivery); }
  std::vector<store::DeliveryRecord> listDeliveries(int64_t eventId) override {
    return inner_.listDeliveries(eventId);
  }

  std::atomic<bool> failing{false};
  std::atomic<int> failedReads{0};

 private:
  store::Store& inner_;
};

/// What a store shared by several edges tells its notice listener about `event`.
store::EventNotice noticeOf(const store::EventRecord& event) {
  return {event.id, event.hookId, event.verdict != store::Verdict::kInvalid || event.replayOf != 0};
}

class StreamHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-hub-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store_ = store::openSqliteStore(dir_ + "/events.db");
    for (const char* id : {"hook-a", "hook-b", "hook-warm"}) {
      store::HookRecord hook;
      hook.id = id;
      hook.tokenHash = std::string(64, '0');
      store_->createHook(hook);
    }
    listener_ = Poco::Net::ServerSocket(SocketAddress("127.0.0.1", 0), 1024);
  }

  void TearDown() override {
    if (store_) store_->setCommitListener({});
    if (hub_) hub_->stop();
    hub_.reset();
    flaky_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  /// Starts a hub fed the way the edge feeds it: from the store's commit listener.
  void startHub(StreamHub::Options options = {}) {
    hub_ = std::make_unique<StreamHub>(*store_, options);
    store_->setCommitListener([this](const store::EventRecord& event) { hub_->publish(event); });
    hub_->start();
  }

  /// Starts a hub fed the way the edge feeds it from a MySQL store: with notices only, so
  /// that every event is read from `source`. The SQLite store's commit listener stands in for
  /// the notice listener; both announce every event once, in id order.
  void startNoticeHub(store::Store& source, StreamHub::Options options = {}) {
    hub_ = std::make_unique<StreamHub>(source, options);
    store_->setCommitListener(
        [this](const store::EventRecord& event) { hub_->notify(noticeOf(event)); });
    hub_->start();
  }

  /// Connects a relay, answers with a response head as the edge does, and hands the server
  /// side of the connection to the hub. Small buffers make a client that does not read fill
  /// up quickly.
  std::unique_ptr<SseClient> connect(const std::string& hookId, int64_t lastEventId,
                                     int smallBuffers = 0) {
    StreamSocket client(SocketAddress::IPv4);
    if (smallBuffers > 0) client.setReceiveBufferSize(smallBuffers);
    client.connect(listener_.address());
    StreamSocket server = listener_.acceptConnection();
    if (smallBuffers > 0) server.setSendBufferSize(smallBuffers);
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: close\r\n\r\n";
    server.sendBytes(head.data(), static_cast<int>(head.size()));
    hub_->attach(server, hookId, lastEventId);
    return std::make_unique<SseClient>(client);
  }

  int64_t append(const std::string& hookId, store::Verdict verdict = store::Verdict::kValid,
                 int64_t replayOf = 0, size_t bodySize = 64) {
    store::EventRecord event;
    event.hookId = hookId;
    event.receivedAtMs = 1700000000000;
    event.method = "POST";
    event.pathSuffix = "/in";
    event.headers = {{"Content-Type", "application/json"}, {"X-Seq", std::to_string(++seq_)}};
    event.body.assign(bodySize, static_cast<char>('a' + seq_ % 26));
    event.bodySize = static_cast<int64_t>(bodySize);
    event.verdict = verdict;
    event.reason = verdict == store::Verdict::kInvalid ? 5 : 0;
    event.replayOf = replayOf;
    return store_->appendEvent(std::move(event));
  }

  /// The ids a stream of the hook must deliver after `after`: the store's forwardable ones.
  std::vector<int64_t> forwardableIds(const std::string& hookId, int64_t after = 0) {
    std::vector<int64_t> ids;
    for (const auto& event : store_->listEvents(hookId, after, 1000000, false, true)) {
      ids.push_back(event.id);
    }
    return ids;
  }

  bool waitLive(size_t count) {
    return eventually([&] { return hub_->stats().liveStreams == count; });
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FlakyStore> flaky_;  ///< set by tests that make the store fail
  std::unique_ptr<StreamHub> hub_;
  Poco::Net::ServerSocket listener_;
  std::atomic<int> seq_{0};
};

TEST_F(StreamHubTest, DrainSendsWhatIsQueuedThenAShutdownFrameAndClosesEveryStream) {
  startHub();
  auto first = connect("hook-a", 0);
  auto second = connect("hook-b", 0);
  for (int i = 0; i < 3; ++i) append("hook-a");
  append("hook-b");
  ASSERT_TRUE(first->readUntilEvents(3));
  ASSERT_TRUE(second->readUntilEvents(1));

  EXPECT_EQ(hub_->drain(kPatience), 0u);

  // Each relay got its events, then one shutdown frame, then the end of the stream.
  ASSERT_TRUE(first->readUntilClosed());
  ASSERT_TRUE(second->readUntilClosed());
  EXPECT_EQ(first->named, std::vector<std::string>{"shutdown"});
  EXPECT_EQ(first->namedAfter, std::vector<size_t>{3});
  EXPECT_EQ(second->named, std::vector<std::string>{"shutdown"});
  EXPECT_EQ(hub_->openStreams(), 0u);

  // From then on no stream is taken and nothing more is sent: relays read it after reconnecting.
  append("hook-a");
  auto late = connect("hook-a", 0);
  ASSERT_TRUE(late->readUntilClosed());
  EXPECT_EQ(late->retries, 0);
  EXPECT_TRUE(late->ids.empty());
  EXPECT_EQ(first->ids.size(), 3u);
}

TEST_F(StreamHubTest, DrainGivesUpOnARelayThatReadsNothingAndStopClosesIt) {
  startHub();
  auto stuck = connect("hook-a", 0, 4096);
  for (int i = 0; i < 8; ++i) append("hook-a", store::Verdict::kValid, 0, 256 * 1024);
  ASSERT_TRUE(
      eventually([&] { return hub_->stats().liveFrames + hub_->stats().backlogReads > 0; }));

  // The stuck relay's queue never empties, so its stream outlives the drain's wait.
  EXPECT_EQ(hub_->drain(200ms), 1u);
  hub_->stop();
  EXPECT_EQ(hub_->openStreams(), 0u);
  EXPECT_TRUE(stuck->readUntilClosed());
}

TEST_F(StreamHubTest, SendsRetryFirstThenFramesAsFormatted) {
  startHub();
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(client->readUntil([&] { return client->retries == 1; }));
  EXPECT_TRUE(client->ids.empty());

  // A body with every byte value and a header that is not UTF-8.
  store::EventRecord event;
  event.hookId = "hook-a";
  event.receivedAtMs = 1700000000001;
  event.method = "POST";
  event.pathSuffix = "/x";
  event.rawQuery = "a=1";
  event.headers = {{"Content-Type", "application/octet-stream"},
                   {"X-Latin1", std::string("caf\xE9", 4)}};
  for (int i = 0; i < 512; ++i) event.body.push_back(static_cast<char>(i % 256));
  event.bodySize = static_cast<int64_t>(event.body.size());
  const int64_t id = store_->appendEvent(event);

  ASSERT_TRUE(client->readUntilEvents(1));
  ASSERT_EQ(client->ids, std::vector<int64_t>{id});
  const auto stored = store_->getEvent("hook-a", id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(client->frames[0], sseFrame(*stored));

  // The relay can get the bytes back from the envelope alone.
  Poco::JSON::Parser parser;
  const auto object = parser.parse(client->data[0]).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(object->getValue<int64_t>("id"), id);
  EXPECT_EQ(decodeBase64(object->getValue<std::string>("body_base64")), event.body);
  const auto latin1 = object->getArray("headers")->getArray(1);
  ASSERT_EQ(latin1->size(), 3u);
  EXPECT_EQ(latin1->getElement<std::string>(2), "b64");
  EXPECT_EQ(decodeBase64(latin1->getElement<std::string>(1)), event.headers[1].value);
}

TEST_F(StreamHubTest, ClientConnectedBeforeEventsGetsEachOnceInOrder) {
  startHub();
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(1));

  for (int i = 0; i < 50; ++i) append("hook-a");

  // The last event is a sentinel: anything sent twice would have come before it.
  const int64_t sentinel = append("hook-a");
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(sentinel); }));
  EXPECT_EQ(client->ids, forwardableIds("hook-a"));
  EXPECT_EQ(client->ids.size(), 51u);
  EXPECT_EQ(client->retries, 1);
  EXPECT_GT(hub_->stats().liveFrames, 0u);
}

TEST_F(StreamHubTest, AttachInTheMiddleGetsExactlyTheRest) {
  startHub({std::chrono::milliseconds(15000), size_t{4} << 20, 16});
  std::vector<int64_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(append("hook-a"));

  auto client = connect("hook-a", ids[49]);
  ASSERT_TRUE(client->readUntilEvents(50));
  const int64_t sentinel = append("hook-a");
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(sentinel); }));

  std::vector<int64_t> expected(ids.begin() + 50, ids.end());
  expected.push_back(sentinel);
  EXPECT_EQ(client->ids, expected);
}

TEST_F(StreamHubTest, LiveEventsDuringALongCatchUpGiveNoGapAndNoDuplicate) {
  // Pages bigger than the queue limit: the backlog is read in many pieces, cut and resumed,
  // while writers keep committing.
  StreamHub::Options options;
  options.backlogPage = 256;
  options.maxQueuedBytes = 64u << 10;
  startHub(options);

  const auto writeMany = [&](int threads, int perThread) {
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
      writers.emplace_back([this, t, perThread] {
        for (int i = 0; i < perThread; ++i) {
          // Every 7th event has a bad signature and must never show up.
          const bool invalid = (t * perThread + i) % 7 == 3;
          append("hook-a", invalid ? store::Verdict::kInvalid : store::Verdict::kValid, 0, 200);
        }
      });
    }
    return writers;
  };
  for (auto& writer : writeMany(8, 400)) writer.join();
  const auto backlog = forwardableIds("hook-a");
  ASSERT_GT(backlog.size(), 2000u);
  const int64_t middle = backlog[backlog.size() / 2];

  // One relay from the start, one from the middle, each read on its own thread while 1200
  // more events arrive; a sentinel stored after the writers are done ends both.
  std::atomic<int64_t> sentinel{-1};
  auto fromStart = connect("hook-a", 0);
  auto fromMiddle = connect("hook-a", middle);
  std::atomic<bool> startDone{false};
  std::atomic<bool> middleDone{false};
  std::thread startReader([&] {
    startDone = fromStart->readUntil([&] { return fromStart->lastIs(sentinel.load()); });
  });
  std::thread middleReader([&] {
    middleDone = fromMiddle->readUntil([&] { return fromMiddle->lastIs(sentinel.load()); });
  });
  for (auto& writer : writeMany(4, 300)) writer.join();
  sentinel = append("hook-a");
  startReader.join();
  middleReader.join();
  ASSERT_TRUE(startDone) << describe(hub_->stats());
  ASSERT_TRUE(middleDone) << describe(hub_->stats());

  EXPECT_EQ(fromStart->ids, forwardableIds("hook-a"));
  EXPECT_EQ(fromMiddle->ids, forwardableIds("hook-a", middle));
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.closed, 0u);
  EXPECT_GT(stats.backlogReads, backlog.size() / options.backlogPage);
  std::cout << "[ stats    ] backlog_reads=" << stats.backlogReads
            << " live_frames=" << stats.liveFrames << " events=" << fromStart->ids.size() << "\n";
}

TEST_F(StreamHubTest, TwoStreamsOfAHookEachGetEveryEventAndOtherHooksNothing) {
  startHub();
  auto first = connect("hook-a", 0);
  auto second = connect("hook-a", 0);
  auto other = connect("hook-b", 0);
  ASSERT_TRUE(waitLive(3));
  EXPECT_EQ(hub_->openStreams("hook-a"), 2u);
  EXPECT_EQ(hub_->openStreams("hook-b"), 1u);

  for (int i = 0; i < 30; ++i) append("hook-a");
  const int64_t lastA = append("hook-a");
  const int64_t onlyB = append("hook-b");

  ASSERT_TRUE(first->readUntil([&] { return first->lastIs(lastA); }));
  ASSERT_TRUE(second->readUntil([&] { return second->lastIs(lastA); }));
  ASSERT_TRUE(other->readUntilEvents(1));
  EXPECT_EQ(first->ids, forwardableIds("hook-a"));
  EXPECT_EQ(second->ids, forwardableIds("hook-a"));
  EXPECT_EQ(other->ids, std::vector<int64_t>{onlyB});

  // The streams of hook-a must still not have seen hook-b's event: it comes after lastA in id
  // order, so a stray copy would be queued behind it. Another hook-a event flushes it out.
  const int64_t moreA = append("hook-a");
  ASSERT_TRUE(first->readUntil([&] { return first->lastIs(moreA); }));
  EXPECT_EQ(first->ids, forwardableIds("hook-a"));
}

TEST_F(StreamHubTest, InvalidEventsAreNeverSentButReplaysOfThemAre) {
  startHub();
  std::vector<int64_t> expected;
  expected.push_back(append("hook-a", store::Verdict::kValid));
  const int64_t invalidBefore = append("hook-a", store::Verdict::kInvalid);
  expected.push_back(append("hook-a", store::Verdict::kUnsigned));
  expected.push_back(append("hook-a", store::Verdict::kInvalid, invalidBefore));

  auto client = connect("hook-a", 0);
  ASSERT_TRUE(client->readUntilEvents(3));
  ASSERT_TRUE(waitLive(1));

  const int64_t invalidLive = append("hook-a", store::Verdict::kInvalid);
  expected.push_back(append("hook-a", store::Verdict::kValid));
  append("hook-a", store::Verdict::kInvalid);
  expected.push_back(append("hook-a", store::Verdict::kInvalid, invalidLive));
  expected.push_back(append("hook-a", store::Verdict::kUnsigned));

  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(expected.back()); }));
  EXPECT_EQ(client->ids, expected);
}

TEST_F(StreamHubTest, ClosedClientIsRemoved) {
  startHub();
  auto first = connect("hook-a", 0);
  auto second = connect("hook-a", 0);
  auto third = connect("hook-b", 0);
  ASSERT_TRUE(waitLive(3));
  EXPECT_EQ(hub_->openStreams(), 3u);

  second->close();
  ASSERT_TRUE(eventually([&] { return hub_->openStreams() == 2; }));
  EXPECT_EQ(hub_->openStreams("hook-a"), 1u);
  EXPECT_EQ(hub_->openStreams("hook-b"), 1u);
  EXPECT_EQ(hub_->stats().closed, 1u);

  // The stream that is left still gets events.
  const int64_t id = append("hook-a");
  ASSERT_TRUE(first->readUntilEvents(1));
  EXPECT_EQ(first->ids, std::vector<int64_t>{id});
}

// Stream ids are given in attach order, so the n-th stream attached has the n-th smallest id.
std::vector<uint64_t> streamIdsInAttachOrder(const StreamHub& hub) {
  std::vector<uint64_t> ids;
  for (const auto& stream : hub.openStreamList()) ids.push_back(stream.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST_F(StreamHubTest, ClosingStreamsWithALastFrameEndsOnlyThoseAfterTheFrame) {
  startHub();
  auto replaced = connect("hook-a", 0);
  auto kept = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(2));
  const int64_t first = append("hook-a");
  ASSERT_TRUE(replaced->readUntilEvents(1));
  ASSERT_TRUE(kept->readUntilEvents(1));

  const auto ids = streamIdsInAttachOrder(*hub_);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_TRUE(hub_->setLeased(ids[1]));
  EXPECT_EQ(hub_->closeStreams({ids[0], 999999}, "event: replaced\ndata: {}\n\n"), 1u);

  // The closed stream got the frame last and nothing after it; the other one goes on, leased.
  ASSERT_TRUE(replaced->readUntilClosed());
  EXPECT_EQ(replaced->named, std::vector<std::string>{"replaced"});
  EXPECT_EQ(replaced->ids, std::vector<int64_t>{first});
  const int64_t second = append("hook-a");
  ASSERT_TRUE(kept->readUntilEvents(2));
  EXPECT_TRUE(kept->lastIs(second));
  const auto open = hub_->openStreamList();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_TRUE(open.front().tags.leased);
  EXPECT_FALSE(hub_->setLeased(ids[0]));
}

TEST_F(StreamHubTest, AStreamThatDoesNotReadItsLastFrameIsClosedWithinAboutASecond) {
  StreamHub::Options options;
  options.stallTimeout = std::chrono::milliseconds(0);  // only the last frame's wait may end it
  startHub(options);
  auto sleeper = connect("hook-a", 0, 4096);
  for (int i = 0; i < 8; ++i) append("hook-a", store::Verdict::kValid, 0, 256 * 1024);
  ASSERT_TRUE(
      eventually([&] { return hub_->stats().liveFrames + hub_->stats().backlogReads > 0; }));

  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(hub_->closeStreams(streamIdsInAttachOrder(*hub_), "event: replaced\ndata: {}\n\n"), 1u);
  ASSERT_TRUE(eventually([&] { return hub_->openStreams() == 0; }));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(3000));
  EXPECT_TRUE(sleeper->readUntilClosed());
}

TEST_F(StreamHubTest, ClientThatNeverReadsIsClosedAtTheQueueLimitWhileOthersGoOn) {
  StreamHub::Options options;
  options.maxQueuedBytes = 64u << 10;
  options.stallTimeout = std::chrono::milliseconds(0);  // only the queue limit may close it
  startHub(options);
  auto reader = connect("hook-a", 0);
  auto sleeper = connect("hook-a", 0, 4096);

  // Both take a first event, then the sleeper stops reading.
  const int64_t first = append("hook-a");
  ASSERT_TRUE(reader->readUntilEvents(1));
  ASSERT_TRUE(sleeper->readUntilEvents(1));
  ASSERT_TRUE(waitLive(2));

  // 100 events of 8 KiB: far more than the sleeper's socket buffers and queue hold.
  std::vector<int64_t> expected{first};
  for (int i = 0; i < 100; ++i) {
    expected.push_back(append("hook-a", store::Verdict::kValid, 0, 8192));
    ASSERT_TRUE(reader->readUntilEvents(expected.size()));
  }
  ASSERT_TRUE(eventually([&] { return hub_->openStreams("hook-a") == 1; }));
  EXPECT_EQ(hub_->stats().closedQueueLimit, 1u);
  EXPECT_EQ(reader->ids, expected);

  // The sleeper got a prefix of the events and then the end of the stream.
  EXPECT_TRUE(sleeper->readUntilClosed());
  ASSERT_LT(sleeper->ids.size(), expected.size());
  EXPECT_EQ(sleeper->ids,
            std::vector<int64_t>(expected.begin(), expected.begin() + sleeper->ids.size()));

  // Reconnecting with the last id it saw gets exactly what it missed.
  auto again = connect("hook-a", sleeper->ids.back());
  ASSERT_TRUE(again->readUntilEvents(expected.size() - sleeper->ids.size()));
  EXPECT_EQ(again->ids,
            std::vector<int64_t>(expected.begin() + sleeper->ids.size(), expected.end()));
}

TEST_F(StreamHubTest, ClientThatStopsReadingDuringItsBacklogIsClosedWhenStalled) {
  StreamHub::Options options;
  options.maxQueuedBytes = 64u << 10;
  options.stallTimeout = std::chrono::milliseconds(300);
  startHub(options);
  for (int i = 0; i < 60; ++i) append("hook-a", store::Verdict::kValid, 0, 8192);

  // A backlog never overfills the queue, so only the stall check can end this stream.
  auto sleeper = connect("hook-a", 0, 4096);
  ASSERT_TRUE(eventually([&] { return hub_->openStreams() == 0; }));
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.closedStalled, 1u);
  EXPECT_EQ(stats.closedQueueLimit, 0u);
  EXPECT_TRUE(sleeper->readUntilClosed());
  EXPECT_LT(sleeper->ids.size(), 60u);
}

TEST_F(StreamHubTest, HeartbeatIsSentWhenIdle) {
  StreamHub::Options options;
  options.heartbeat = std::chrono::milliseconds(50);
  startHub(options);
  auto client = connect("hook-a", 0);

  ASSERT_TRUE(client->readUntil([&] { return client->keepAlives >= 3; }));
  EXPECT_GE(hub_->stats().heartbeats, 3u);
  EXPECT_TRUE(client->ids.empty());

  // Events still arrive between heartbeats.
  const int64_t id = append("hook-a");
  ASSERT_TRUE(client->readUntilEvents(1));
  EXPECT_EQ(client->ids, std::vector<int64_t>{id});
}

TEST_F(StreamHubTest, NoHeartbeatWhileEventsFlow) {
  StreamHub::Options options;
  options.heartbeat = std::chrono::milliseconds(60000);
  startHub(options);
  auto client = connect("hook-a", 0);
  for (int i = 0; i < 20; ++i) append("hook-a");
  ASSERT_TRUE(client->readUntilEvents(20));
  EXPECT_EQ(client->keepAlives, 0);
  EXPECT_EQ(hub_->stats().heartbeats, 0u);
}

TEST_F(StreamHubTest, StopClosesEveryStream) {
  startHub();
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect(i == 2 ? "hook-b" : "hook-a", 0));
  ASSERT_TRUE(waitLive(3));

  hub_->stop();
  EXPECT_EQ(hub_->openStreams(), 0u);
  EXPECT_EQ(hub_->stats().closed, 3u);
  for (auto& client : clients) EXPECT_TRUE(client->readUntilClosed());

  // A stream offered after stop() is closed at once.
  auto late = connect("hook-a", 0);
  EXPECT_EQ(hub_->openStreams(), 0u);
  EXPECT_TRUE(late->readUntilClosed());
}

TEST_F(StreamHubTest, AttachWithLastEventIdAtTheEndWaitsForNewEvents) {
  startHub();
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = append("hook-a");
  auto client = connect("hook-a", last);
  ASSERT_TRUE(waitLive(1));
  const int64_t next = append("hook-a");
  ASSERT_TRUE(client->readUntilEvents(1));
  EXPECT_EQ(client->ids, std::vector<int64_t>{next});
}

TEST_F(StreamHubTest, PublishOutOfOrderIsCountedAndNotSentOutOfOrder) {
  // Without the commit listener: the test publishes by hand, the later event first.
  hub_ = std::make_unique<StreamHub>(*store_, StreamHub::Options{});
  hub_->start();
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(1));

  const int64_t a = append("hook-a");
  const int64_t b = append("hook-a");
  auto eventB = store_->getEvent("hook-a", b);
  auto eventA = store_->getEvent("hook-a", a);
  ASSERT_TRUE(eventA && eventB);
  hub_->publish(*eventB);
  ASSERT_TRUE(client->readUntilEvents(1));
  hub_->publish(*eventA);

  // The stream passed a already; it must not get it after b.
  const int64_t c = append("hook-a");
  hub_->publish(*store_->getEvent("hook-a", c));
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(c); }));
  EXPECT_EQ(hub_->stats().outOfOrder, 1u);
  for (size_t i = 1; i < client->ids.size(); ++i) EXPECT_LT(client->ids[i - 1], client->ids[i]);
}

TEST_F(StreamHubTest, NotifyMakesALiveStreamReadTheStoredBytesInOrderOnce) {
  // No commit listener: the test announces the events itself, without their contents.
  hub_ = std::make_unique<StreamHub>(*store_, StreamHub::Options{});
  hub_->start();
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(1));

  std::vector<int64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(append("hook-a", store::Verdict::kValid, 0, 100 + i));
  for (int64_t id : ids) hub_->notify({id, "hook-a", true});
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(ids.back()); }))
      << describe(hub_->stats());

  // Each frame is the stored event, formatted as publish() would have.
  ASSERT_EQ(client->ids, ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto stored = store_->getEvent("hook-a", ids[i]);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(client->frames[i], sseFrame(*stored)) << "event " << ids[i];
  }

  // One more: a copy of an earlier event would come before it.
  const int64_t next = append("hook-a");
  hub_->notify({next, "hook-a", true});
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(next); }));
  ids.push_back(next);
  EXPECT_EQ(client->ids, ids);
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.notices, 21u);
  EXPECT_EQ(stats.liveFrames, 0u);
  EXPECT_EQ(stats.outOfOrder, 0u);
}

TEST_F(StreamHubTest, NoticeOfAnotherHooksEventIsIgnored) {
  hub_ = std::make_unique<StreamHub>(*store_, StreamHub::Options{});
  hub_->start();
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(1));
  const uint64_t readsBefore = hub_->stats().backlogReads;

  // hook-b has no stream: its notice must not send hook-a's stream to the store.
  const int64_t other = append("hook-b");
  hub_->notify({other, "hook-b", true});
  const int64_t own = append("hook-a");
  hub_->notify({own, "hook-a", true});
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(own); }));
  ASSERT_TRUE(waitLive(1));
  EXPECT_EQ(client->ids, std::vector<int64_t>{own});
  EXPECT_EQ(hub_->stats().backlogReads, readsBefore + 1) << describe(hub_->stats());
}

TEST_F(StreamHubTest, NonForwardableNoticeIsIgnored) {
  hub_ = std::make_unique<StreamHub>(*store_, StreamHub::Options{});
  hub_->start();
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(1));
  const uint64_t readsBefore = hub_->stats().backlogReads;

  // An invalid signature is announced as not forwardable and costs no read.
  const int64_t invalid = append("hook-a", store::Verdict::kInvalid);
  hub_->notify({invalid, "hook-a", false});
  EXPECT_EQ(hub_->stats().notices, 0u);
  const int64_t valid = append("hook-a");
  hub_->notify({valid, "hook-a", true});
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(valid); }));
  ASSERT_TRUE(waitLive(1));
  EXPECT_EQ(client->ids, std::vector<int64_t>{valid});
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.notices, 1u);
  EXPECT_EQ(stats.backlogReads, readsBefore + 1) << describe(stats);
  EXPECT_EQ(stats.outOfOrder, 0u);
}

TEST_F(StreamHubTest, NoticesFromConcurrentWritersGiveNoGapAndNoDuplicate) {
  StreamHub::Options options;
  options.maxQueuedBytes = 64u << 10;
  startNoticeHub(*store_, options);
  auto early = connect("hook-a", 0);
  auto other = connect("hook-b", 0);
  ASSERT_TRUE(waitLive(2));

  // Writers on several threads, a stream that joins in the middle, and a sentinel last.
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([this, t] {
      for (int i = 0; i < 300; ++i) {
        const bool invalid = (t * 300 + i) % 9 == 4;
        append("hook-a", invalid ? store::Verdict::kInvalid : store::Verdict::kValid, 0, 300);
      }
    });
  }
  std::this_thread::sleep_for(5ms);
  const auto soFar = forwardableIds("hook-a");
  const int64_t middle = soFar.empty() ? 0 : soFar[soFar.size() / 2];
  auto late = connect("hook-a", middle);
  std::atomic<int64_t> sentinel{-1};
  std::atomic<bool> earlyDone{false};
  std::thread earlyReader(
      [&] { earlyDone = early->readUntil([&] { return early->lastIs(sentinel.load()); }); });
  for (auto& writer : writers) writer.join();
  sentinel = append("hook-a");
  ASSERT_TRUE(late->readUntil([&] { return late->lastIs(sentinel.load()); }))
      << describe(hub_->stats());
  earlyReader.join();
  ASSERT_TRUE(earlyDone) << describe(hub_->stats());

  EXPECT_EQ(early->ids, forwardableIds("hook-a"));
  EXPECT_EQ(late->ids, forwardableIds("hook-a", middle));
  const int64_t onlyB = append("hook-b");
  ASSERT_TRUE(other->readUntilEvents(1));
  EXPECT_EQ(other->ids, std::vector<int64_t>{onlyB});
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.closed, 0u);
  EXPECT_EQ(stats.liveFrames, 0u);
  EXPECT_EQ(stats.outOfOrder, 0u);
  EXPECT_GT(stats.notices, 1000u);
}

TEST_F(StreamHubTest, FailedBacklogReadKeepsTheStreamOpenAndCatchesUpWhenTheStoreHeals) {
  flaky_ = std::make_unique<FlakyStore>(*store_);
  StreamHub::Options options;
  options.heartbeat = std::chrono::milliseconds(50);
  options.stallTimeout = std::chrono::milliseconds(100);  // far shorter than the outage
  options.storeRetry = std::chrono::milliseconds(20);
  hub_ = std::make_unique<StreamHub>(*flaky_, options);
  store_->setCommitListener([this](const store::EventRecord& event) { hub_->publish(event); });
  hub_->start();
  for (int i = 0; i < 5; ++i) append("hook-a");

  // The store is down when the relay attaches: no events, but heartbeats, for several stall
  // timeouts (six heartbeats take at least five heartbeat intervals), and reads are retried.
  flaky_->failing = true;
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(client->readUntil([&] { return client->keepAlives >= 6; }))
      << describe(hub_->stats());
  ASSERT_TRUE(eventually([&] { return flaky_->failedReads.load() >= 3; }));
  EXPECT_TRUE(client->ids.empty());
  EXPECT_FALSE(client->closed());
  EXPECT_EQ(hub_->openStreams("hook-a"), 1u);

  // Events stored during the outage wait in the store.
  for (int i = 0; i < 3; ++i) append("hook-a");
  auto stats = hub_->stats();
  EXPECT_EQ(stats.closed, 0u);
  EXPECT_EQ(stats.closedStoreError, 0u);
  EXPECT_EQ(stats.closedStalled, 0u);
  EXPECT_GE(stats.backlogReadErrors, 3u);
  EXPECT_EQ(stats.liveStreams, 0u);

  // Healed: the backlog, then live events, each once and in order.
  flaky_->failing = false;
  ASSERT_TRUE(client->readUntilEvents(8)) << describe(hub_->stats());
  ASSERT_TRUE(waitLive(1));
  const int64_t next = append("hook-a");
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(next); }));
  EXPECT_EQ(client->ids, forwardableIds("hook-a"));
  EXPECT_EQ(client->ids.size(), 9u);
  stats = hub_->stats();
  EXPECT_EQ(stats.closed, 0u);
  EXPECT_EQ(stats.closedStoreError, 0u);
}

TEST_F(StreamHubTest, LiveStreamSentToAFailingStoreByANoticeWaitsAndMissesNothing) {
  flaky_ = std::make_unique<FlakyStore>(*store_);
  StreamHub::Options options;
  options.storeRetry = std::chrono::milliseconds(20);
  startNoticeHub(*flaky_, options);
  auto client = connect("hook-a", 0);
  ASSERT_TRUE(waitLive(1));
  const int64_t first = append("hook-a");
  ASSERT_TRUE(client->readUntilEvents(1));

  // Each notice now needs a read that fails; the stream waits, open, for the store.
  flaky_->failing = true;
  std::vector<int64_t> during;
  for (int i = 0; i < 4; ++i) during.push_back(append("hook-a"));
  ASSERT_TRUE(eventually([&] { return flaky_->failedReads.load() >= 3; }));
  EXPECT_EQ(hub_->openStreams("hook-a"), 1u);
  EXPECT_EQ(hub_->stats().liveStreams, 0u);

  flaky_->failing = false;
  ASSERT_TRUE(client->readUntil([&] { return client->lastIs(during.back()); }))
      << describe(hub_->stats());
  std::vector<int64_t> expected{first};
  expected.insert(expected.end(), during.begin(), during.end());
  EXPECT_EQ(client->ids, expected);
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.closed, 0u);
  EXPECT_GE(stats.backlogReadErrors, 3u);
}

TEST_F(StreamHubTest, ThousandIdleStreamsEachGetTheNextEvent) {
  // Two descriptors per stream live in this process (relay and edge side).
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 4096 && limit.rlim_max >= 4096) {
    limit.rlim_cur = 4096;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  ASSERT_GE(limit.rlim_cur, 2100u) << "not enough file descriptors for the test";

  startHub();
  constexpr size_t kStreams = 1000;

  // Warm up the allocator and the store's read sessions before measuring.
  {
    auto warm = connect("hook-warm", 0);
    ASSERT_TRUE(waitLive(1));
    warm->close();
    ASSERT_TRUE(eventually([&] { return hub_->openStreams() == 0; }));
  }

  const long before = rssKiB();
  const size_t heapBefore = mallinfo2().uordblks;
  std::vector<std::unique_ptr<SseClient>> clients;
  clients.reserve(kStreams);
  for (size_t i = 0; i < kStreams; ++i) clients.push_back(connect("hook-a", 0));
  ASSERT_TRUE(waitLive(kStreams));
  const long after = rssKiB();
  const size_t heapAfter = mallinfo2().uordblks;
  EXPECT_EQ(hub_->openStreams("hook-a"), kStreams);

  // Reported, not asserted: RSS moves in pages and depends on what ran before in the process;
  // the heap figure counts the bytes in use, both sides of each connection together.
  const long heapPerStream =
      (static_cast<long>(heapAfter) - static_cast<long>(heapBefore)) / static_cast<long>(kStreams);
  std::cout << "[ memory   ] streams=" << kStreams << " rss_growth_kib=" << (after - before)
            << " rss_per_stream_bytes=" << (after - before) * 1024 / static_cast<long>(kStreams)
            << " heap_per_stream_bytes=" << heapPerStream << " (relay and edge sides)\n";
  RecordProperty("rss_growth_kib", static_cast<int>(after - before));
  RecordProperty("heap_per_stream_bytes", static_cast<int>(heapPerStream));

  // The event is formatted once and reaches every stream.
  const int64_t id = append("hook-a");
  for (auto& client : clients) {
    ASSERT_TRUE(client->readUntilEvents(1));
    ASSERT_EQ(client->ids, std::vector<int64_t>{id});
  }
  EXPECT_EQ(hub_->stats().liveFrames, kStreams);
}

/// Reads one stream on a thread of its own, so that a test can watch many streams at once
/// while it writes. The ids are read by the test only after stop().
class BackgroundReader {
 public:
  BackgroundReader(std::unique_ptr<SseClient> client, int64_t lastEventId)
      : client_(std::move(client)), lastEventId_(lastEventId) {
    thread_ = std::thread([this] {
      client_->readUntil(
          [this] {
            if (!client_->ids.empty()) last_.store(client_->ids.back());
            return stop_.load();
          },
          std::chrono::seconds(600));
      if (client_->closed()) closed_.store(true);
    });
  }

  ~BackgroundReader() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  int64_t last() const { return last_.load(); }
  bool closed() const { return closed_.load(); }
  int64_t lastEventId() const { return lastEventId_; }
  const SseClient& client() const { return *client_; }

 private:
  std::unique_ptr<SseClient> client_;
  int64_t lastEventId_;
  std::atomic<int64_t> last_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

TEST_F(StreamHubTest, BurstsReachEveryStreamLongBeforeTheHeartbeat) {
  // Bursts of writes from several threads, committed in batches by the store's writer and
  // published from its commit listener, while streams come and go with old Last-Event-IDs.
  // The heartbeat is a minute away, so a stream that is not woken for work queued for it
  // would miss the deadline below; the deadline is a bound for correctness, not for speed.
  StreamHub::Options options;
  options.heartbeat = std::chrono::milliseconds(60000);
  startHub(options);
  constexpr int kBursts = 50;
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 60;
  constexpr auto kDeadline = std::chrono::seconds(5);

  std::vector<std::unique_ptr<BackgroundReader>> steady;
  for (int i = 0; i < 3; ++i) {
    steady.push_back(std::make_unique<BackgroundReader>(connect("hook-a", 0), 0));
  }
  ASSERT_TRUE(waitLive(steady.size()));

  std::vector<int64_t> burstStarts;
  std::atomic<int> counter{0};
  for (int burst = 0; burst < kBursts; ++burst) {
    burstStarts.push_back(append("hook-a"));

    // Writers commit together; streams attach in the middle of it, from older points.
    std::vector<std::thread> writers;
    for (int t = 0; t < kWriters; ++t) {
      writers.emplace_back([&] {
        for (int i = 0; i < kPerWriter; ++i) {
          const bool invalid = counter.fetch_add(1) % 11 == 5;
          append("hook-a", invalid ? store::Verdict::kInvalid : store::Verdict::kValid, 0, 600);
        }
      });
    }
    std::vector<std::unique_ptr<BackgroundReader>> joining;
    std::this_thread::sleep_for(std::chrono::milliseconds(burst % 5));
    const size_t back = std::min<size_t>(burstStarts.size() - 1, 1 + burst % 4);
    const int64_t from = burst % 7 == 0 ? 0 : burstStarts[burstStarts.size() - 1 - back];
    joining.push_back(std::make_unique<BackgroundReader>(connect("hook-a", from), from));
    joining.push_back(std::make_unique<BackgroundReader>(connect("hook-a", burstStarts.back()),
                                                         burstStarts.back()));
    for (auto& writer : writers) writer.join();

    // The sentinel is stored last; every stream must get it well before any heartbeat.
    const int64_t sentinel = append("hook-a");
    const auto sentAt = std::chrono::steady_clock::now();
    const auto hasSentinel = [&](const std::unique_ptr<BackgroundReader>& r) {
      return r->last() == sentinel;
    };
    const bool allThere = eventually(
        [&] {
          return std::all_of(steady.begin(), steady.end(), hasSentinel) &&
                 std::all_of(joining.begin(), joining.end(), hasSentinel);
        },
        std::chrono::duration_cast<std::chrono::seconds>(kDeadline));
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - sentAt);
    for (const auto& r : steady) ASSERT_FALSE(r->closed()) << describe(hub_->stats());
    ASSERT_TRUE(allThere) << "burst " << burst << " not delivered after " << waited.count()
                          << " ms: " << describe(hub_->stats());

    // A stream that joined late has exactly what followed its Last-Event-ID.
    for (auto& r : joining) {
      r->stop();
      EXPECT_EQ(r->client().ids, forwardableIds("hook-a", r->lastEventId()))
          << "burst " << burst << " from " << r->lastEventId();
    }
    joining.clear();
    ASSERT_TRUE(eventually([&] { return hub_->openStreams("hook-a") == steady.size(); }));
  }

  // The streams that stayed have every forwardable event once, in order.
  const auto expected = forwardableIds("hook-a");
  for (auto& r : steady) {
    r->stop();
    EXPECT_EQ(r->client().ids, expected);
    EXPECT_EQ(r->client().keepAlives, 0);
  }
  const auto stats = hub_->stats();
  EXPECT_EQ(stats.closedQueueLimit + stats.closedStalled + stats.closedStoreError, 0u);
  EXPECT_EQ(stats.heartbeats, 0u);
  std::cout << "[ stats    ] events=" << expected.size() << " backlog_reads=" << stats.backlogReads
            << " live_frames=" << stats.liveFrames << " attached=" << stats.attached << "\n";
}

bool nagleOff(int fd) {
  int on = 0;
  socklen_t len = sizeof(on);
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return false;
  return on != 0;
}

TEST_F(StreamHubTest, TakenOverStreamsHaveNagleOff) {
  startHub();
  StreamSocket client(SocketAddress::IPv4);
  client.connect(listener_.address());
  StreamSocket server = listener_.acceptConnection();
  const int fd = server.impl()->sockfd();
  ASSERT_FALSE(nagleOff(fd)) << "accepted sockets start with Nagle on";
  const std::string head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
  server.sendBytes(head.data(), static_cast<int>(head.size()));

  // `server` shares its descriptor with the copy the hub takes over.
  hub_->attach(server, "hook-a", 0);
  EXPECT_TRUE(nagleOff(fd));
  SseClient reader(client);
  ASSERT_TRUE(reader.readUntil([&] { return reader.retries == 1; }));
}

TEST(EdgeConnectionTest, AcceptedConnectionsHaveNagleOff) {
  Poco::Net::ServerSocket listener(SocketAddress("127.0.0.1", 0));
  StreamSocket client(SocketAddress::IPv4);
  client.connect(listener.address());
  StreamSocket server = listener.acceptConnection();
  const int fd = server.impl()->sockfd();
  ASSERT_FALSE(nagleOff(fd)) << "accepted sockets start with Nagle on";

  // The factory is what the edge's TCPServer calls for each accepted connection.
  EdgeServices services;
  Router router(services);
  ConnectionSet connections;
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  EdgeConnectionFactory factory(params, router, connections);
  std::unique_ptr<Poco::Net::TCPServerConnection> connection(factory.createConnection(server));
  EXPECT_TRUE(nagleOff(fd));
}

}  // namespace
}  // namespace anm::edge
