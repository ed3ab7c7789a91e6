// tests/e2e/lifecycle_test.cpp: the edge stopped (SIGTERM) and started again under load loses no
// acknowledged webhook, and tells a service manager when it is ready, reloading and stopping.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/relay_env.h"

namespace anm::e2e {
namespace {

using std::chrono::milliseconds;

// How long a stopping edge waits for requests in flight: well above what any takes here.
constexpr char kShutdownTimeoutMs[] = "5000";

// Senders keep posting for this long before the stop, between stop and start, and after.
constexpr milliseconds kLoadPhase(700);

// A relay reconnecting to the restarted edge may wait out a backoff step or two.
constexpr milliseconds kCatchUpTimeout(30000);

// What the senders learned: the bodies the edge acknowledged, and how many answers there were.
struct SendLog {
  std::mutex mutex;
  std::set<std::string> acknowledged;
  size_t refusedOrFailed = 0;
};

// Posts webhooks with unique bodies to `port` until `stop`, on new connections (as providers
// do), recording which ones got a 2xx.
void sendUntil(const std::atomic<uint16_t>& port, const std::string& hookId, int sender,
               const std::atomic<bool>& stop, SendLog& log) {
  for (int n = 0; !stop.load(); ++n) {
    const std::string body = "sender " + std::to_string(sender) + " webhook " + std::to_string(n);
    SentRequest request =
        makeRequest("POST", "/lifecycle", "", port.load(), {{"Content-Type", "text/plain"}}, body);
    int status = 0;
    try {
      status = exchange(port.load(), request.serialize(hookId), false, milliseconds(5000)).status;
    } catch (const std::exception&) {
      status = 0;  // refused while the edge is down: the provider would retry later
    }
    std::lock_guard<std::mutex> lock(log.mutex);
    if (status >= 200 && status < 300) {
      log.acknowledged.insert(body);
    } else {
      ++log.refusedOrFailed;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
}

class LifecycleTest : public E2eTest {};

TEST_F(LifecycleTest, EveryWebhookAcknowledgedAcrossAStopAndRestartIsDeliveredOnce) {
  ASSERT_NO_FATAL_FAILURE(start());
  TargetServer& target = *env_->target;
  const std::string hookId = env_->hookId();
  const uint16_t edgePort = env_->edgePort();

  // Two providers post all the time, before, during and after the restart.
  std::atomic<uint16_t> port{edgePort};
  std::atomic<bool> stopSending{false};
  SendLog log;
  std::vector<std::thread> senders;
  for (int s = 0; s < 2; ++s) {
    senders.emplace_back([&, s] { sendUntil(port, hookId, s, stopSending, log); });
  }
  std::this_thread::sleep_for(kLoadPhase);

  // SIGTERM, as a service manager stops it: the edge exits by itself, successfully.
  ASSERT_TRUE(env_->edge->process().signal(SIGTERM));
  const auto exitCode = env_->edge->process().waitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(exitCode.has_value()) << env_->describe();
  EXPECT_EQ(*exitCode, 0) << env_->describe();
  std::this_thread::sleep_for(kLoadPhase);

  // The same edge again: same data directory, same port, so the relay finds it.
  EdgeProcess::Options options;
  options.binary = ANM_E2E_EDGE_BIN;
  options.pluginDir = ANM_E2E_PLUGIN_DIR;
  options.workDir = env_->dir.sub("edge");
  options.home = env_->dir.sub("edge-home");
  options.port = edgePort;
  options.settings = {{"shutdown.timeout_ms", kShutdownTimeoutMs}};
  std::unique_ptr<EdgeProcess> restarted;
  ASSERT_NO_THROW(restarted = std::make_unique<EdgeProcess>(options)) << env_->describe();
  std::this_thread::sleep_for(kLoadPhase);
  stopSending = true;
  for (auto& sender : senders) sender.join();

  // Every acknowledged webhook reaches the local target exactly once.
  size_t expected = 0;
  {
    std::lock_guard<std::mutex> lock(log.mutex);
    expected = log.acknowledged.size();
  }
  ASSERT_GT(expected, 0u);
  EXPECT_GT(log.refusedOrFailed, 0u) << "the senders never met the stopped edge";
  ASSERT_TRUE(target.waitForCount(expected, kCatchUpTimeout))
      << "target got " << target.count() << " of " << expected << "\n"
      << env_->describe() << restarted->process().describe();
  std::map<std::string, int> delivered;
  for (const auto& request : target.requests()) ++delivered[request.message.body];
  for (const auto& body : log.acknowledged) {
    const auto it = delivered.find(body);
    if (it == delivered.end()) {
      ADD_FAILURE() << "acknowledged but never delivered: " << body;
      continue;
    }
    EXPECT_EQ(it->second, 1) << "delivered " << it->second << " times: " << body;
  }

  // The relay was told the edge was stopping rather than losing it.
  const auto told = env_->relay->process().waitForAnyLine(
      [](const std::string& line) {
        return line.find("edge is stopping, reconnecting") != std::string::npos;
      },
      milliseconds(1000));
  EXPECT_TRUE(told.has_value()) << env_->relay->process().describe();
}

// The service manager's side of the notify protocol: a datagram socket the edge sends to.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  bool bound() const { return bound_; }

  /// The next datagram, or "" when none came within `timeout`.
  std::string next(milliseconds timeout) {
    timeval wait{static_cast<time_t>(timeout.count() / 1000),
                 static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
  }

  /// The next datagram that is not a watchdog ping.
  std::string nextState(milliseconds timeout) {
    for (;;) {
      const std::string datagram = next(timeout);
      if (datagram != "WATCHDOG=1") return datagram;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

bool startsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

TEST(NotifyProtocolTest, EdgeSaysReadyOnlyOnceItAnswersThenReloadingAndStopping) {
  TempDir dir;
  NotifySocket manager((dir.path() / "notify.sock").string());
  ASSERT_TRUE(manager.bound());

  EdgeProcess::Options options;
  options.binary = ANM_E2E_EDGE_BIN;
  options.pluginDir = ANM_E2E_PLUGIN_DIR;
  options.workDir = dir.sub("edge");
  options.home = dir.sub("home");
  options.env = {{"NOTIFY_SOCKET", (dir.path() / "notify.sock").string()},
                 {"WATCHDOG_USEC", "400000"}};
  EdgeProcess edge(options);

  // The first word is READY=1, and by then the edge answers and has its plugins.
  const std::string ready = manager.nextState(milliseconds(10000));
  ASSERT_TRUE(startsWith(ready, "READY=1\n")) << ready;
  EXPECT_NE(ready.find("MAINPID=" + std::to_string(edge.process().pid())), std::string::npos)
      << ready;
  const WireResponse readiness = exchange(edge.port(),
                                          "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: "
                                          "close\r\n\r\n",
                                          false);
  EXPECT_EQ(readiness.status, 200) << readiness.message.body;
  const WireResponse providers = exchange(edge.port(),
                                          "GET /api/v1/providers HTTP/1.1\r\nHost: x\r\n"
                                          "Connection: close\r\n\r\n",
                                          false);
  EXPECT_NE(providers.message.body.find("\"stripe\""), std::string::npos) << providers.message.body;

  // The watchdog is fed at half its timeout.
  EXPECT_EQ(manager.next(milliseconds(2000)), "WATCHDOG=1");

  // SIGHUP: the reload is bracketed by RELOADING=1 and READY=1.
  ASSERT_TRUE(edge.process().signal(SIGHUP));
  const std::string reloading = manager.nextState(milliseconds(10000));
  EXPECT_TRUE(startsWith(reloading, "RELOADING=1\nMONOTONIC_USEC=")) << reloading;
  EXPECT_TRUE(startsWith(manager.nextState(milliseconds(10000)), "READY=1"));

  // SIGTERM: STOPPING=1, then a clean exit.
  ASSERT_TRUE(edge.process().signal(SIGTERM));
  EXPECT_TRUE(startsWith(manager.nextState(milliseconds(10000)), "STOPPING=1"));
  const auto exitCode = edge.process().waitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(exitCode.has_value());
  EXPECT_EQ(*exitCode, 0) << edge.process().describe();
}

}  // namespace
}  // namespace anm::e2e
