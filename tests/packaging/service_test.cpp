// tests/packaging/service_test.cpp: the installed edge started the way its systemd unit starts
// it, with a notify socket of the test's own standing in for the service manager.
// SPDX-License-Identifier: Apache-2.0
//
// Environment (set by tests/packaging/CMakeLists.txt and the scripts beside it):
//   ANM_PACKAGING_DESTDIR   the DESTDIR the project was installed into with --prefix /usr
//   ANM_PACKAGING_WRAPPER   optional: words put before the edge's command (strace, mdwe_exec)
//   ANM_PACKAGING_WORK_DIR  optional: where the scenario keeps its data and plugin directories
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/support/child_process.h"
#include "tests/e2e/support/digest.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/sse_reader.h"
#include "tests/e2e/support/temp_dir.h"

namespace anm::packaging {
namespace {

namespace fs = std::filesystem;
using e2e::ChildProcess;
using e2e::TempDir;
using e2e::WireResponse;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

const std::set<std::string> kInstalledProviders = {"github", "razorpay", "shopify", "slack",
                                                   "stripe"};
// What the test sends itself to fill the notify socket's queue; never a state the edge sends.
constexpr char kFiller[] = "X-ANM-FILLER=1";

std::string envOr(const char* name, const std::string& fallback = "") {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::string(value);
}

fs::path destdir() { return envOr("ANM_PACKAGING_DESTDIR"); }

/// The words of ExecStart= in the installed unit, with every absolute path moved into the
/// DESTDIR: the edge is started exactly as systemd would start the installed unit.
std::vector<std::string> installedExecStart() {
  std::ifstream unit(destdir() / "usr/lib/systemd/system/anonymily-edge.service");
  std::string line;
  while (std::getline(unit, line)) {
    if (line.rfind("ExecStart=", 0) != 0) continue;
    std::istringstream words(line.substr(10));
    std::vector<std::string> command;
    for (std::string word; words >> word;) {
      command.push_back(word.front() == '/' ? (destdir() / word.substr(1)).string() : word);
    }
    return command;
  }
  return {};
}

/// The service manager's side of sd_notify(3): a datagram socket the edge sends its states to.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path.string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address = addressOf(path_);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      throw std::runtime_error("could not bind the notify socket " + path_);
    }
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }

  /// Fills the socket's receive queue with datagrams of the test's own, so that the next
  /// sender blocks in sendto() until the test reads some. One sender socket runs out of its own
  /// send buffer before the queue is full, so fresh ones are used until even a fresh one's
  /// first datagram is refused: then the queue is full. Returns how many were queued.
  size_t fill() {
    sockaddr_un address = addressOf(path_);
    size_t queued = 0;
    for (;;) {
      const int sender = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      size_t sent = 0;
      while (::sendto(sender, kFiller, sizeof(kFiller) - 1, MSG_DONTWAIT,
                      reinterpret_cast<sockaddr*>(&address), sizeof(address)) > 0) {
        ++sent;
      }
      ::close(sender);
      queued += sent;
      if (sent == 0) return queued;
    }
  }

  /// The next datagram, or nothing within `timeout`.
  std::optional<std::string> receive(milliseconds timeout) {
    timeval wait{};
    wait.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    wait.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    char buffer[4096];
    const ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (got < 0) return std::nullopt;
    return std::string(buffer, static_cast<size_t>(got));
  }

  /// The next datagram that is neither filler nor a watchdog ping.
  std::optional<std::string> nextState(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      auto message = receive(std::max(left, milliseconds(1)));
      if (!message) return std::nullopt;
      if (*message == kFiller || *message == "WATCHDOG=1") continue;
      return message;
    }
    return std::nullopt;
  }

 private:
  static sockaddr_un addressOf(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) throw std::runtime_error("path too long");
    std::copy(path.begin(), path.end(), address.sun_path);
    return address;
  }

  std::string path_;
  int fd_ = -1;
};

/// The value of `key` in a notify datagram ("KEY=value" lines), or "".
std::string field(const std::string& message, const std::string& key) {
  std::istringstream lines(message);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

/// The names in a GET /api/v1/providers answer.
std::set<std::string> providerNames(const WireResponse& answer) {
  std::set<std::string> names;
  auto providers = e2e::parseObject(answer.message.body)->getArray("providers");
  for (size_t i = 0; providers && i < providers->size(); ++i) {
    names.insert(providers->getObject(static_cast<unsigned>(i))->getValue<std::string>("name"));
  }
  return names;
}

WireResponse get(uint16_t port, const std::string& target) {
  return e2e::exchange(
      port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", false);
}

/// The system call the main thread of `pid` is in (first field of /proc/PID/syscall), or -2.
long currentSyscall(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  long number = -2;
  in >> number;
  return number;
}

/// Waits for the child to exit and returns its code; -1 when it is still running after `limit`.
int waitForExit(ChildProcess& child, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (child.running() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
  return child.exitCode().value_or(-1);
}

/// A GitHub-signed webhook to the hook, as GitHub sends it.
WireResponse postSigned(uint16_t port, const std::string& hookId, const std::string& secret,
                        const std::string& body) {
  const e2e::SentRequest request =
      e2e::makeRequest("POST", "", "", port,
                       {{"X-GitHub-Event", "push"},
                        {"X-GitHub-Delivery", "d-" + std::to_string(body.size())},
                        {"X-Hub-Signature-256", "sha256=" + e2e::hmacSha256Hex(secret, body)},
                        {"Content-Type", "application/json"}},
                       body);
  return e2e::exchange(port, request.serialize(hookId), false);
}

class InstalledEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (destdir().empty()) GTEST_SKIP() << "ANM_PACKAGING_DESTDIR is not set";
    command_ = installedExecStart();
    ASSERT_GE(command_.size(), 3u) << "no ExecStart= in the installed unit";
    ASSERT_TRUE(fs::exists(command_.front())) << command_.front();
  }

  /// Starts the installed command with the given overrides of the installed edge.conf: only the
  /// paths and a port of the kernel's choosing differ from what the unit runs.
  std::unique_ptr<ChildProcess> start(const std::vector<std::string>& wrapper,
                                      const std::vector<std::string>& overrides,
                                      const std::map<std::string, std::string>& env) {
    std::vector<std::string> words = wrapper;
    words.insert(words.end(), command_.begin(), command_.end());
    words.insert(words.end(), overrides.begin(), overrides.end());
    const std::string program = words.front();
    words.erase(words.begin());
    return std::make_unique<ChildProcess>(program, words, env);
  }

  std::vector<std::string> command_;
};

// READY=1 must mean "serving": the test keeps the notify socket's queue full, so that the
// edge's sendto(READY=1) blocks, and while the edge's main thread sits in that call the test
// checks that the listener answers, /readyz says 200 and all five installed plugins are
// offered. Only then does it make room and read READY=1. Then a reload and a stop.
TEST_F(InstalledEdgeTest, ReadyOnlyOnceServingThenReloadsAndStops) {
  TempDir temp;
  NotifySocket notify(temp.path() / "notify.sock");
  ASSERT_GT(notify.fill(), 0u);

  const fs::path portFile = temp.path() / "edge.port";
  const fs::path pluginDir = destdir() / "usr/lib/anonymily/plugins";
  auto edge = start({},
                    {"--listen", "127.0.0.1:0", "--port-file", portFile.string(), "--data-dir",
                     (temp.path() / "data").string(), "--plugin-dir", pluginDir.string()},
                    {{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "1000000"}});
  const long pid = edge->pid();

  // Wait until the main thread blocks in sendto(), its first since start: the READY=1 datagram.
  const auto deadline = Clock::now() + seconds(30);
  while (currentSyscall(pid) != SYS_sendto) {
    ASSERT_TRUE(edge->running()) << edge->describe();
    ASSERT_LT(Clock::now(), deadline) << "the edge never tried to notify\n" << edge->describe();
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_EQ(currentSyscall(pid), SYS_sendto) << "the main thread did not stay in sendto()";

  // While READY=1 is still on its way, everything it promises already holds.
  std::ifstream portIn(portFile);
  int port = 0;
  portIn >> port;
  ASSERT_GT(port, 0) << "no port file before READY=1";
  const WireResponse ready = get(static_cast<uint16_t>(port), "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.message.body;
  EXPECT_NE(ready.message.body.find("\"plugins\":5"), std::string::npos) << ready.message.body;
  const WireResponse providers = get(static_cast<uint16_t>(port), "/api/v1/providers");
  ASSERT_EQ(providers.status, 200) << providers.message.body;
  EXPECT_EQ(providerNames(providers), kInstalledProviders) << providers.message.body;

  // Room in the queue: the blocked datagram arrives, and it is READY=1 naming the port.
  const auto readyState = notify.nextState(seconds(10));
  ASSERT_TRUE(readyState) << edge->describe();
  EXPECT_EQ(readyState->rfind("READY=1\n", 0), 0u) << *readyState;
  EXPECT_EQ(field(*readyState, "STATUS"), "serving on 127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(field(*readyState, "MAINPID"), std::to_string(pid));

  // The watchdog the unit may ask for (WatchdogSec=) is fed at half its interval.
  bool watchdog = false;
  for (int i = 0; i < 10 && !watchdog; ++i) {
    const auto message = notify.receive(milliseconds(500));
    watchdog = message && *message == "WATCHDOG=1";
  }
  EXPECT_TRUE(watchdog) << "no WATCHDOG=1 with WATCHDOG_USEC=1000000";

  // ExecReload= sends SIGHUP: RELOADING=1 with the time systemd 253+ wants, then READY=1.
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGHUP), 0);
  const auto reloading = notify.nextState(seconds(10));
  ASSERT_TRUE(reloading);
  EXPECT_EQ(reloading->rfind("RELOADING=1\n", 0), 0u) << *reloading;
  EXPECT_FALSE(field(*reloading, "MONOTONIC_USEC").empty()) << *reloading;
  const auto reloaded = notify.nextState(seconds(10));
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(*reloaded, "READY=1\nSTATUS=serving, plugins reloaded");
  EXPECT_EQ(providerNames(get(static_cast<uint16_t>(port), "/api/v1/providers")),
            kInstalledProviders);

  // systemd stops the service with SIGTERM: STOPPING=1, then exit code 0.
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGTERM), 0);
  const auto stopping = notify.nextState(seconds(10));
  ASSERT_TRUE(stopping);
  EXPECT_EQ(*stopping, "STOPPING=1\nSTATUS=stopping");
  EXPECT_EQ(waitForExit(*edge, seconds(20)), 0) << edge->describe();
}

// What a service does in its life, run under ANM_PACKAGING_WRAPPER (strace for the system call
// checks, mdwe_exec for the write-xor-execute lock): start, ingest, API, a relay stream, a
// plugin replaced and reloaded, more ingest through the new copy, and a stop.
TEST_F(InstalledEdgeTest, ServesReloadsAndStopsUnderWrapper) {
  std::vector<std::string> wrapper;
  std::istringstream words(envOr("ANM_PACKAGING_WRAPPER"));
  for (std::string word; words >> word;) wrapper.push_back(word);

  TempDir temp;
  const fs::path work = envOr("ANM_PACKAGING_WORK_DIR", temp.path().string());
  const fs::path pluginDir = work / "plugins";
  fs::create_directories(pluginDir);
  for (const auto& entry : fs::directory_iterator(destdir() / "usr/lib/anonymily/plugins")) {
    fs::copy_file(entry.path(), pluginDir / entry.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
  NotifySocket notify(temp.path() / "notify.sock");
  auto edge = start(wrapper,
                    {"--listen", "127.0.0.1:0", "--data-dir", (work / "data").string(),
                     "--plugin-dir", pluginDir.string()},
                    {{"NOTIFY_SOCKET", notify.path()}});

  // Under strace everything is slower: give the start a minute.
  const auto readyState = notify.nextState(seconds(60));
  ASSERT_TRUE(readyState) << edge->describe();
  ASSERT_EQ(readyState->rfind("READY=1\n", 0), 0u) << *readyState;
  const std::string status = field(*readyState, "STATUS");
  const uint16_t port = static_cast<uint16_t>(std::stoi(status.substr(status.rfind(':') + 1)));
  const pid_t pid = static_cast<pid_t>(std::stol(field(*readyState, "MAINPID")));
  EXPECT_EQ(get(port, "/readyz").status, 200);
  EXPECT_EQ(providerNames(get(port, "/api/v1/providers")), kInstalledProviders);

  // An anonymous GitHub hook, its relay stream, and a signed webhook through both.
  const std::string secret = "packaging-secret";
  const WireResponse created =
      e2e::apiPost(port, "/api/v1/hooks", R"({"provider":"github","secret":")" + secret + R"("})");
  ASSERT_EQ(created.status, 201) << created.message.body;
  const auto hook = e2e::parseObject(created.message.body);
  const std::string hookId = e2e::jsonText(hook, "id");
  const std::string token = e2e::jsonText(hook, "token");
  e2e::SseReader stream(port, hookId, token, 0, seconds(30));

  const WireResponse first = postSigned(port, hookId, secret, R"({"n":1})");
  EXPECT_EQ(first.status, 200) << first.message.body;
  ASSERT_TRUE(stream.waitForFrames(1, seconds(30))) << stream.error();
  EXPECT_EQ(stream.webhookIds(), std::vector<int64_t>({1}));
  const WireResponse events = e2e::apiGet(port, "/api/v1/hooks/" + hookId + "/events", token);
  EXPECT_EQ(events.status, 200);
  EXPECT_NE(events.message.body.find("\"verdict\":\"valid\""), std::string::npos)
      << events.message.body;
  EXPECT_EQ(get(port, "/metrics").status, 200);

  // A new copy of the GitHub plugin replaces the old one (a new file renamed over it, as a
  // package upgrade does), and the reload loads it into a fresh in-memory image.
  const fs::path plugin = pluginDir / "anm-github.so";
  fs::copy_file(plugin, pluginDir / "anm-github.so.new");
  fs::rename(pluginDir / "anm-github.so.new", plugin);
  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  const auto reloading = notify.nextState(seconds(30));
  ASSERT_TRUE(reloading);
  EXPECT_EQ(reloading->rfind("RELOADING=1\n", 0), 0u) << *reloading;
  const auto reloaded = notify.nextState(seconds(30));
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->rfind("READY=1\n", 0), 0u) << *reloaded;
  EXPECT_EQ(providerNames(get(port, "/api/v1/providers")), kInstalledProviders);

  const WireResponse second = postSigned(port, hookId, secret, R"({"n":2})");
  EXPECT_EQ(second.status, 200) << second.message.body;
  const WireResponse forged = postSigned(port, hookId, "not-the-secret", R"({"n":3})");
  EXPECT_EQ(forged.status, 401) << forged.message.body;
  ASSERT_TRUE(stream.waitForFrames(2, seconds(30))) << stream.error();
  EXPECT_EQ(stream.webhookIds(), std::vector<int64_t>({1, 2}));

  // The stop: STOPPING=1, the stream is told, exit code 0 (a wrapper passes the edge's on).
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  const auto stopping = notify.nextState(seconds(30));
  ASSERT_TRUE(stopping);
  EXPECT_EQ(*stopping, "STOPPING=1\nSTATUS=stopping");
  EXPECT_EQ(waitForExit(*edge, seconds(60)), 0) << edge->describe();
  const auto frames = stream.frames();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().event, "shutdown");
}

}  // namespace
}  // namespace anm::packaging
