// tests/integration/abuse_test.cpp: ingest rate limits and the whole-request deadline, on a
// real edge over loopback, and the limiter's bounds on its own.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/edge/config.h"
#include "core/edge/edge_server.h"
#include "core/edge/rate_limit.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;
using edge::IngestLimiter;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct Hook {
  std::string id;
  std::string token;
};

// A trickling sender's pause between bytes: far below every per-read timeout in these tests.
constexpr milliseconds kTrickleStep{200};

// The deadline of the trickle tests: several pauses long, short enough for a quick test.
constexpr milliseconds kShortDeadline{1500};

int64_t secondsOf(const std::string& text) {
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    return -1;
  }
}

class AbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-abuse-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Every limit off unless a test turns it on: each test names the one it checks.
  EdgeConfig baseConfig() {
    EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxThreads = 8;
    config.ratePerHook = 0;
    config.ratePerAddress = 0;
    return config;
  }

  void startServer(const EdgeConfig& config) {
    server_ = std::make_unique<EdgeServer>(config);
    server_->start();
    port_ = server_->port();
  }

  Hook createHook() {
    const auto r = request(port_, "POST", "/api/v1/hooks", "{}");
    EXPECT_EQ(r.status, 201) << r.body;
    return Hook{jsonField(r.body, "id"), jsonField(r.body, "token")};
  }

  Response ingest(const Hook& hook, const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request(port_, "POST", "/h/" + hook.id, body, headers);
  }

  size_t storedEvents(const Hook& hook) {
    const auto list = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events", hook.token);
    EXPECT_EQ(list.status, 200) << list.body;
    Poco::JSON::Parser parser;
    return parser.parse(list.body).extract<Poco::JSON::Object::Ptr>()->getArray("events")->size();
  }

  // Sends `head` at once, then `trickled` one byte per kTrickleStep until the edge answers or
  // closes; returns everything the edge sent and how long the answer took.
  std::string trickle(const std::string& head, const std::string& trickled, milliseconds& took) {
    Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
    const auto start = Clock::now();
    if (!head.empty()) socket.sendBytes(head.data(), static_cast<int>(head.size()));
    for (const char c : trickled) {
      if (socket.poll(Poco::Timespan(0, 0), Poco::Net::Socket::SELECT_READ)) break;
      try {
        socket.sendBytes(&c, 1);
      } catch (const Poco::Exception&) {
        break;
      }
      if (socket.poll(Poco::Timespan(kTrickleStep.count() * 1000),
                      Poco::Net::Socket::SELECT_READ)) {
        break;
      }
    }
    std::string answer;
    socket.setReceiveTimeout(Poco::Timespan(10, 0));
    try {
      char buffer[4096];
      int n = 0;
      while ((n = socket.receiveBytes(buffer, sizeof(buffer))) > 0) {
        if (answer.empty()) took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
        answer.append(buffer, static_cast<size_t>(n));
      }
    } catch (const Poco::Exception&) {
      // A reset after the answer: what arrived is what counts.
    }
    return answer;
  }

  std::string dir_;
  std::unique_ptr<EdgeServer> server_;
  uint16_t port_ = 0;
};

int statusOf(const std::string& answer) {
  if (answer.size() < 12 || answer.compare(0, 5, "HTTP/") != 0) return 0;
  return std::stoi(answer.substr(9, 3));
}

// --- Rate limits ------------------------------------------------------------------------------

TEST_F(AbuseTest, HookOverItsBurstGets429WithRetryAfterAndNothingOfItIsStored) {
  EdgeConfig config = baseConfig();
  config.ratePerHook = 1;
  config.burstPerHook = 5;
  startServer(config);
  const Hook hook = createHook();
  const Hook other = createHook();

  for (int i = 0; i < 5; ++i) ASSERT_EQ(ingest(hook, "ok " + std::to_string(i)).status, 200);
  const auto refused = ingest(hook, "one too many");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body, R"({"error":"rate limit for this hook exceeded"})");
  EXPECT_GE(secondsOf(refused.header("Retry-After")), 1) << refused.header("Retry-After");
  EXPECT_EQ(storedEvents(hook), 5u);

  // The limit is the hook's own: another hook from the same address is still served.
  EXPECT_EQ(ingest(other, "elsewhere").status, 200);

  // One token comes back after 1/rate seconds.
  std::this_thread::sleep_for(milliseconds(1100));
  EXPECT_EQ(ingest(hook, "after the wait").status, 200);
  EXPECT_EQ(storedEvents(hook), 6u);
}

TEST_F(AbuseTest, AddressLimitCountsWebhooksToEveryHook) {
  EdgeConfig config = baseConfig();
  config.ratePerAddress = 1;
  config.burstPerAddress = 4;
  startServer(config);
  const Hook a = createHook();
  const Hook b = createHook();

  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(ingest(a, "a").status, 200);
    ASSERT_EQ(ingest(b, "b").status, 200);
  }
  const auto refused = ingest(b, "fifth from one address");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body, R"({"error":"rate limit for this address exceeded"})");
  EXPECT_GE(secondsOf(refused.header("Retry-After")), 1);
  EXPECT_EQ(ingest(a, "also refused").status, 429);
  EXPECT_EQ(storedEvents(a), 2u);
  EXPECT_EQ(storedEvents(b), 2u);

  std::this_thread::sleep_for(milliseconds(1100));
  EXPECT_EQ(ingest(a, "after the wait").status, 200);
}

TEST_F(AbuseTest, RateZeroTurnsEachLimitOffWhateverItsBurst) {
  EdgeConfig config = baseConfig();
  config.ratePerHook = 0;
  config.burstPerHook = 1;
  config.ratePerAddress = 0;
  config.burstPerAddress = 1;
  startServer(config);
  const Hook hook = createHook();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ingest(hook, std::to_string(i)).status, 200) << i;
  EXPECT_EQ(storedEvents(hook), 20u);
}

TEST_F(AbuseTest, BehindProxyLimitsTheLastForwardedAddress) {
  EdgeConfig config = baseConfig();
  config.behindProxy = true;
  config.ratePerAddress = 1;
  config.burstPerAddress = 2;
  startServer(config);
  const Hook hook = createHook();

  // The first entry is whatever the client wrote; the last is what the proxy saw.
  const auto from = [](const std::string& last) {
    return std::vector<std::pair<std::string, std::string>>{
        {"X-Forwarded-For", "198.51.100.7, " + last}};
  };
  EXPECT_EQ(ingest(hook, "1", from("203.0.113.1")).status, 200);
  EXPECT_EQ(ingest(hook, "2", from("203.0.113.1")).status, 200);
  EXPECT_EQ(ingest(hook, "3", from("203.0.113.1")).status, 429);
  EXPECT_EQ(ingest(hook, "4", from("203.0.113.2")).status, 200);
  EXPECT_EQ(ingest(hook, "5", from("[2001:db8::1]:4711")).status, 200);

  // Without the field, or with an entry that is no address, the proxy's own address counts.
  EXPECT_EQ(ingest(hook, "6").status, 200);
  EXPECT_EQ(ingest(hook, "7", from("not-an-address")).status, 200);
  EXPECT_EQ(ingest(hook, "8").status, 429);
  EXPECT_EQ(storedEvents(hook), 6u);
}

TEST_F(AbuseTest, WithoutBehindProxyForwardedForIsIgnored) {
  EdgeConfig config = baseConfig();
  config.ratePerAddress = 1;
  config.burstPerAddress = 2;
  startServer(config);
  const Hook hook = createHook();
  EXPECT_EQ(ingest(hook, "1", {{"X-Forwarded-For", "203.0.113.1"}}).status, 200);
  EXPECT_EQ(ingest(hook, "2", {{"X-Forwarded-For", "203.0.113.2"}}).status, 200);
  EXPECT_EQ(ingest(hook, "3", {{"X-Forwarded-For", "203.0.113.3"}}).status, 429);
  EXPECT_EQ(storedEvents(hook), 2u);
}

TEST_F(AbuseTest, DefaultLimitsAndTheirBoundsAreDocumented) {
  const EdgeConfig defaults = edge::parseConfig({}, "/x");
  EXPECT_EQ(defaults.ratePerHook, 500);
  EXPECT_EQ(defaults.burstPerHook, 1000);
  EXPECT_EQ(defaults.ratePerAddress, 1000);
  EXPECT_EQ(defaults.burstPerAddress, 2000);
  EXPECT_EQ(defaults.requestTimeout, milliseconds(60000));

  EXPECT_EQ(edge::parseConfig({{"ingest.rate_per_hook", "1000000"}}, "/x").ratePerHook,
            edge::kMaxIngestRate);
  EXPECT_THROW(edge::parseConfig({{"ingest.rate_per_hook", "1000001"}}, "/x"), edge::ConfigError);
  EXPECT_THROW(edge::parseConfig({{"ingest.rate_per_address", "-1"}}, "/x"), edge::ConfigError);
  EXPECT_THROW(edge::parseConfig({{"ingest.burst_per_hook", "0"}}, "/x"), edge::ConfigError);
  EXPECT_NO_THROW(
      edge::parseConfig({{"ingest.rate_per_hook", "0"}, {"ingest.burst_per_hook", "0"}}, "/x"));

  EXPECT_EQ(edge::parseConfig({{"http.request_timeout_ms", "1000"}}, "/x").requestTimeout,
            milliseconds(edge::kMinRequestTimeoutMs));
  EXPECT_EQ(edge::parseConfig({{"http.request_timeout_ms", "3600000"}}, "/x").requestTimeout,
            milliseconds(edge::kMaxRequestTimeoutMs));
  EXPECT_THROW(edge::parseConfig({{"http.request_timeout_ms", "999"}}, "/x"), edge::ConfigError);
  EXPECT_THROW(edge::parseConfig({{"http.request_timeout_ms", "3600001"}}, "/x"),
               edge::ConfigError);
}

// --- The limiter itself -----------------------------------------------------------------------

TEST(IngestLimiterTest, RefillsAtTheRateAndTakesNothingWhenEitherBucketIsEmpty) {
  EdgeConfig config;
  config.ratePerHook = 2;
  config.burstPerHook = 3;
  config.ratePerAddress = 1;
  config.burstPerAddress = 1;
  int64_t now = 0;
  IngestLimiter limiter(config, [&now] { return now; });
  int64_t retry = 0;
  bool hookLimited = false;

  // The address allows one; the refused second must leave the hook's tokens alone.
  EXPECT_TRUE(limiter.admit("h", "a1", retry, hookLimited));
  EXPECT_FALSE(limiter.admit("h", "a1", retry, hookLimited));
  EXPECT_FALSE(hookLimited);
  EXPECT_EQ(retry, 1);
  EXPECT_TRUE(limiter.admit("h", "a2", retry, hookLimited));
  EXPECT_TRUE(limiter.admit("h", "a3", retry, hookLimited));
  EXPECT_FALSE(limiter.admit("h", "a4", retry, hookLimited));
  EXPECT_TRUE(hookLimited);
  EXPECT_EQ(retry, 1);

  // Half a second gives the hook one token back (rate 2), not two.
  now += 499'000'000;
  EXPECT_FALSE(limiter.admit("h", "a4", retry, hookLimited));
  now += 1'000'000;
  EXPECT_TRUE(limiter.admit("h", "a4", retry, hookLimited));
  EXPECT_FALSE(limiter.admit("h", "a5", retry, hookLimited));
}

TEST(IngestLimiterTest, KeepsAtMostItsBoundOfAddressesDroppingTheLeastRecentlyUsed) {
  EdgeConfig config;
  config.ratePerHook = 0;
  config.ratePerAddress = 1;
  config.burstPerAddress = 1;
  int64_t now = 0;
  IngestLimiter limiter(
      config, [&now] { return now; }, 64);
  int64_t retry = 0;
  bool hookLimited = false;

  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(limiter.admit("h",
                              "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                              retry, hookLimited));
  }
  EXPECT_LE(limiter.trackedAddresses(), 64u);
  EXPECT_GT(limiter.trackedAddresses(), 0u);
  EXPECT_EQ(limiter.trackedHooks(), 0u);

  // The most recent one is still tracked and still empty; long-dropped ones start full.
  EXPECT_FALSE(limiter.admit("h", "10.0.39.15", retry, hookLimited));
  EXPECT_TRUE(limiter.admit("h", "10.0.0.0", retry, hookLimited));
}

TEST(IngestLimiterTest, ConcurrentCallersNeverGetMoreThanTheBurst) {
  EdgeConfig config;
  config.ratePerHook = 1;
  config.burstPerHook = 1000;
  config.ratePerAddress = 1;
  config.burstPerAddress = 100000;
  // A clock that never moves: the burst is all there is.
  IngestLimiter limiter(config, [] { return int64_t{0}; });
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&limiter, &admitted, t] {
      int64_t retry = 0;
      bool hookLimited = false;
      for (int i = 0; i < 500; ++i) {
        if (limiter.admit("hook", "addr" + std::to_string(t), retry, hookLimited)) ++admitted;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 1000);
}

// --- The whole-request deadline ---------------------------------------------------------------

TEST_F(AbuseTest, TricklingBodyGets408AtTheDeadlineAndNothingIsStored) {
  EdgeConfig config = baseConfig();
  config.requestTimeout = kShortDeadline;
  startServer(config);
  const Hook hook = createHook();

  milliseconds took{0};
  const std::string answer =
      trickle("POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
              std::string(100, 'b'), took);
  EXPECT_EQ(statusOf(answer), 408) << answer;
  EXPECT_GE(took, kShortDeadline - milliseconds(100));
  EXPECT_LT(took, kShortDeadline + milliseconds(3000));
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(AbuseTest, TricklingHeadGets408AtTheDeadline) {
  EdgeConfig config = baseConfig();
  config.requestTimeout = kShortDeadline;
  startServer(config);
  const Hook hook = createHook();

  milliseconds took{0};
  const std::string answer =
      trickle("",
              "POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'v') +
                  "\r\n\r\n",
              took);
  EXPECT_EQ(statusOf(answer), 408) << answer;
  EXPECT_NE(answer.find("did not arrive within 1500 ms"), std::string::npos) << answer;
  EXPECT_GE(took, kShortDeadline - milliseconds(100));
  EXPECT_LT(took, kShortDeadline + milliseconds(3000));
  EXPECT_EQ(storedEvents(hook), 0u);
}

TEST_F(AbuseTest, SteadyLargeUploadWithinTheDeadlineIsStored) {
  EdgeConfig config = baseConfig();
  config.requestTimeout = milliseconds(4000);
  config.maxBodyBytes = 4u << 20;
  startServer(config);
  const Hook hook = createHook();

  // 2 MiB in 64 KiB pieces over about a second: slow, steady, and within the deadline.
  const std::string body(2u << 20, 'u');
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
  const std::string head = "POST /h/" + hook.id + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";
  socket.sendBytes(head.data(), static_cast<int>(head.size()));
  constexpr size_t kPiece = 64u << 10;
  for (size_t at = 0; at < body.size(); at += kPiece) {
    socket.sendBytes(body.data() + at, static_cast<int>(kPiece));
    std::this_thread::sleep_for(milliseconds(30));
  }
  const Response answer = readResponse(socket);
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(storedEvents(hook), 1u);
}

TEST_F(AbuseTest, EachRequestOnAKeptAliveConnectionHasItsOwnDeadline) {
  EdgeConfig config = baseConfig();
  config.requestTimeout = kShortDeadline;
  startServer(config);
  const Hook hook = createHook();

  // Three requests over more than twice the deadline, on one connection.
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port_));
  for (int i = 0; i < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(milliseconds(1000));
    const std::string bytes = "POST /h/" + hook.id +
                              " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nk" +
                              std::to_string(i);
    socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
    const Response answer = readResponse(socket);
    ASSERT_EQ(answer.status, 200) << "request " << i << ": " << answer.body;
  }
  EXPECT_EQ(storedEvents(hook), 3u);
}

}  // namespace
}  // namespace anm::test
