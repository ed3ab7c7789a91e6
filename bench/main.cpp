// bench/main.cpp: measures ingest, relay latency, stream cost, relay capacity and MariaDB runs.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/crypto/keys.h"
#include "http_load.h"
#include "local_servers.h"
#include "mysql_probe.h"
#include "processes.h"
#include "report.h"
#include "webhook_bodies.h"

namespace anm::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kSecret = "whsec_anonymily_bench_0123456789abcdef";

// Sequence number ranges, one per measurement, so that no answer is mistaken for another's.
constexpr int64_t kSeqIngest = 1;
constexpr int64_t kSeqLatencyRef = 100'000'000;
constexpr int64_t kSeqLatency = 200'000'000;
constexpr int64_t kSeqStreamsIngest = 300'000'000;
constexpr int64_t kSeqRelay = 400'000'000;
constexpr int64_t kSeqCatchUp = 500'000'000;
constexpr int64_t kSeqDbIngestOne = 600'000'000;
constexpr int64_t kSeqDbIngestTwo = 700'000'000;
constexpr int64_t kSeqDbLatencyOne = 800'000'000;
constexpr int64_t kSeqDbLatencyCross = 900'000'000;

// The goals of the MariaDB parts (#3): durable acknowledgements per second from one edge, and
// cross-edge p99.
constexpr double kDbIngestGoalPerSec = 10'000;
constexpr int64_t kCrossEdgeP99GoalNs = 50'000'000;

// Connections of the paced latency runs: enough that a slow acknowledgement (a disk sync)
// never holds back the next send at 200/s.
constexpr int kLatencyConnections = 16;

// Numbers of the warm-up webhooks that prove a relay is connected before timing starts.
constexpr int64_t kWarmupSlots = 100;

struct Options {
  std::string edgeBin;
  std::string relayBin;
  std::string pluginDir;
  std::string workDir;
  std::string parts = "abcdef";
  std::string mysqlUrl;   // parts e and f: the MariaDB every MariaDB edge shares
  int mysqlPid = 0;       // its server process, for CPU figures
  int mysqlPoolSize = 0;  // store.pool_size of the MariaDB edges; 0: the edge's default
  int mysqlPollMs = 0;    // store.poll_interval_ms of the MariaDB edges; 0: the edge's default
  bool quick = false;
  bool keep = false;
  bool profile = false;
  int connections = 64;
  int clientThreads = 1;
  int httpThreads = 64;
  int streams = 1000;
  double latencyRate = 200;
  double relayRate = 5000;
  double ingestSeconds = 5;
  double latencySeconds = 10;
  double latencyRefSeconds = 3;
  double relaySeconds = 5;
};

void usage() {
  std::printf(
      "usage: anonymily-bench --edge-bin PATH --relay-bin PATH --plugin-dir DIR [options]\n"
      "  --work-dir DIR       where edge data and logs go (default: a new /tmp directory)\n"
      "  --keep               keep the work directory\n"
      "  --profile            record the edge in (a), the relay in (d), edge and server in (e)\n"
      "  --quick              run every part briefly (smoke test)\n"
      "  --parts LETTERS      subset of abcdef (default abcdef)\n"
      "  --mysql-url URL      mysql://USER:PW@127.0.0.1:PORT/DB for parts e and f (default:\n"
      "                       $ANM_TEST_MYSQL_URL)\n"
      "  --mysql-pid PID      the MariaDB server's pid, for its CPU use in e and f\n"
      "  --mysql-pool-size N, --mysql-poll-ms MS   store.pool_size, store.poll_interval_ms\n"
      "  --connections N      keep-alive connections for the ingest runs (default 64)\n"
      "  --client-threads N   load generator threads (default 1)\n"
      "  --http-threads N     http.max_threads of the edge and of the ceiling (default 64)\n"
      "  --streams N          SSE streams opened in part c (default 1000)\n"
      "  --ingest-seconds S, --latency-seconds S, --relay-seconds S\n"
      "  --latency-rate R     webhooks/s in part b (default 200)\n"
      "  --relay-rate R       events/s in part d (default 5000)\n");
}

std::optional<Options> parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return std::nullopt;
    }

    // Flags, then options with a value; anything else is a mistake worth stopping for.
    const std::map<std::string, bool*> flags = {
        {"--quick", &o.quick}, {"--keep", &o.keep}, {"--profile", &o.profile}};
    const std::map<std::string, std::string*> texts = {
        {"--edge-bin", &o.edgeBin}, {"--relay-bin", &o.relayBin}, {"--plugin-dir", &o.pluginDir},
        {"--work-dir", &o.workDir}, {"--parts", &o.parts},        {"--mysql-url", &o.mysqlUrl}};
    const std::map<std::string, int*> ints = {
        {"--connections", &o.connections},  {"--client-threads", &o.clientThreads},
        {"--http-threads", &o.httpThreads}, {"--streams", &o.streams},
        {"--mysql-pid", &o.mysqlPid},       {"--mysql-pool-size", &o.mysqlPoolSize},
        {"--mysql-poll-ms", &o.mysqlPollMs}};
    const std::map<std::string, double*> reals = {{"--ingest-seconds", &o.ingestSeconds},
                                                  {"--latency-seconds", &o.latencySeconds},
                                                  {"--relay-seconds", &o.relaySeconds},
                                                  {"--latency-rate", &o.latencyRate},
                                                  {"--relay-rate", &o.relayRate}};
    if (auto f = flags.find(a); f != flags.end()) {
      *f->second = true;
    } else if (auto t = texts.find(a); t != texts.end()) {
      *t->second = next();
    } else if (auto n = ints.find(a); n != ints.end()) {
      *n->second = std::stoi(next());
    } else if (auto r = reals.find(a); r != reals.end()) {
      *r->second = std::stod(next());
    } else {
      throw std::runtime_error("unknown option " + a);
    }
  }
  // The URL may come from the environment, which keeps the password out of process listings.
  if (const char* url = std::getenv("ANM_TEST_MYSQL_URL"); o.mysqlUrl.empty() && url != nullptr) {
    o.mysqlUrl = url;
  }
  if (o.quick) {
    o.ingestSeconds = std::min(o.ingestSeconds, 1.0);
    o.latencySeconds = std::min(o.latencySeconds, 1.0);
    o.latencyRefSeconds = std::min(o.latencyRefSeconds, 0.5);
    o.relaySeconds = std::min(o.relaySeconds, 1.0);
    o.streams = std::min(o.streams, 200);
  }
  if (o.edgeBin.empty() || o.pluginDir.empty())
    throw std::runtime_error("--edge-bin and --plugin-dir are required");
  if (o.connections < 1 || o.clientThreads < 1 || o.httpThreads < 1 || o.streams < 1) {
    throw std::runtime_error("counts must be at least 1");
  }
  if (o.parts.find_first_not_of("abcdef") != std::string::npos) {
    throw std::runtime_error("--parts takes letters from abcdef, not " + o.parts);
  }
  if (o.mysqlPid < 0 || o.mysqlPoolSize < 0 || o.mysqlPollMs < 0) {
    throw std::runtime_error("--mysql-pid, --mysql-pool-size and --mysql-poll-ms take N >= 0");
  }
  return o;
}

std::chrono::nanoseconds secondsToNs(double s) {
  return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
}

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::printf("\n");
  std::fflush(stdout);
}

std::string ratioText(double value, double reference) {
  if (reference <= 0) return "-";
  return fixed(value / reference, 2);
}

// The edge under test, started on an ephemeral loopback port with its own data directory.
class Edge {
 public:
  /// name: the edge's directory under the work directory; extraConfig: more properties lines.
  static std::unique_ptr<Edge> start(const Options& o, const std::string& name,
                                     const std::string& extraConfig, std::string& why) {
    auto edge = std::unique_ptr<Edge>(new Edge);
    std::string dir = o.workDir + "/" + name;
    std::filesystem::create_directories(dir + "/data");
    std::string portFile = dir + "/port";
    std::string config = dir + "/edge.properties";
    {
      // Keys in POCO properties syntax; the ceiling server gets the same numbers.
      std::ofstream c(config);
      c << "http.max_threads = " << o.httpThreads << "\n" << extraConfig;
      // The bench measures the edge's own ceiling from one address; rate limits would cap it.
      c << "ingest.rate_per_hook = 0\ningest.rate_per_address = 0\n";
    }
    if (::access(o.edgeBin.c_str(), X_OK) != 0) {
      why = "no edge binary at " + o.edgeBin;
      return nullptr;
    }
    edge->proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{o.edgeBin, "--listen", "127.0.0.1:0", "--port-file", portFile,
                                 "--data-dir", dir + "/data", "--plugin-dir", o.pluginDir,
                                 "--config", config},
        dir + "/edge.log", false);

    // Ready means: the port file names a port and that port answers.
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!edge->proc_->alive()) {
        why = "edge exited at start; log " + edge->proc_->logPath() + ":\n" +
              tailFile(edge->proc_->logPath(), 8);
        return nullptr;
      }
      std::ifstream in(portFile);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::smatch m;
      if (std::regex_search(text, m, std::regex("([0-9]+)\\s*$"))) {
        long port = std::stol(m[1]);
        if (port > 0 && port < 65536 &&
            httpRequest(static_cast<uint16_t>(port), "GET", "/api/v1/hooks/none", "", "",
                        milliseconds(2000))
                    .status != 0) {
          edge->port_ = static_cast<uint16_t>(port);
          return edge;
        }
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    why = "edge did not become ready within 20 s; log " + edge->proc_->logPath();
    return nullptr;
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  bool alive() { return proc_->alive(); }
  std::string logPath() const { return proc_->logPath(); }
  ChildProcess& process() { return *proc_; }

 private:
  Edge() = default;
  std::unique_ptr<ChildProcess> proc_;
  uint16_t port_ = 0;
};

// CPU used by a process over a span, in cores (1.0 = one core busy all the time).
class CpuMeter {
 public:
  explicit CpuMeter(pid_t pid) : pid_(pid), cpu_(cpuSeconds(pid)), start_(nowNs()) {}
  double cores() const {
    double wall = (nowNs() - start_) / 1e9;
    return wall > 0 ? (cpuSeconds(pid_) - cpu_) / wall : 0;
  }

 private:
  pid_t pid_;
  double cpu_;
  int64_t start_;
};

struct Hook {
  std::string id;
  std::string token;
};

std::optional<Hook> parseHook(std::string_view body) {
  try {
    Poco::JSON::Parser parser;
    auto obj = parser.parse(std::string(body)).extract<Poco::JSON::Object::Ptr>();
    Hook h{obj->getValue<std::string>("id"), obj->getValue<std::string>("token")};
    if (h.id.empty()) return std::nullopt;
    return h;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<Hook> createHook(uint16_t port, const std::string& json, std::string& why) {
  SimpleResponse r = httpRequest(port, "POST", "/api/v1/hooks", json);
  if (r.status != 201) {
    why = "POST /api/v1/hooks answered " + std::to_string(r.status) + " " + r.body + r.error;
    return std::nullopt;
  }
  auto hook = parseHook(r.body);
  if (!hook) why = "POST /api/v1/hooks answer has no id/token: " + r.body;
  return hook;
}

std::string hostPort(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// The ingest load of parts a and c: closed loop, signed 1 KiB bodies, keep-alive.
LoadPlan ingestPlan(const Options& o, uint16_t port, const std::string& hookPath,
                    int64_t firstSeq) {
  LoadPlan plan;
  plan.port = port;
  plan.connections = o.connections;
  plan.threads = o.clientThreads;
  plan.warmup = secondsToNs(o.quick ? 0.2 : 0.5);
  plan.duration = secondsToNs(o.ingestSeconds);
  plan.firstSeq = firstSeq;
  std::string hp = hostPort(port);
  plan.makeRequest = [hp, hookPath](int64_t seq) {
    return makeWebhookRequest(hp, hookPath, kSecret, makeBody(seq));
  };
  return plan;
}

void describe(const char* what, const LoadResult& r) {
  say("  %s: %.0f acknowledged/s (%lld in %.2f s; sent %lld, acked %lld, rejected %lld, "
      "failed %lld, unanswered %lld; answers per connection %lld..%lld)",
      what, r.ackRate(), static_cast<long long>(r.ackedInWindow), r.windowSeconds,
      static_cast<long long>(r.sent), static_cast<long long>(r.acked),
      static_cast<long long>(r.rejected), static_cast<long long>(r.failed),
      static_cast<long long>(r.unanswered), static_cast<long long>(r.minPerConnection),
      static_cast<long long>(r.maxPerConnection));
  if (!r.firstError.empty()) say("  %s: first error: %s", what, r.firstError.c_str());
}

// A running `anonymily relay` forwarding one hook of the edge to a target of the bench.
struct Relay {
  std::unique_ptr<ChildProcess> proc;
  std::string ingestPath;  // /h/<id>
};

std::optional<Relay> startRelay(const Options& o, const Edge& edge, uint16_t targetPort,
                                const std::string& name, std::string& why) {
  if (o.relayBin.empty() || ::access(o.relayBin.c_str(), X_OK) != 0) {
    why = "no relay binary at " + o.relayBin;
    return std::nullopt;
  }
  Relay relay;
  relay.proc = std::make_unique<ChildProcess>(
      std::vector<std::string>{o.relayBin, "relay", "--edge", "http://" + hostPort(edge.port()),
                               "--to", "http://" + hostPort(targetPort), "--provider", "stripe",
                               "--secret", kSecret},
      o.workDir + "/" + name + ".log", true,
      // Token files go to the work directory, not to the home of whoever runs the bench.
      std::vector<std::string>{"XDG_CONFIG_HOME=" + o.workDir + "/" + name + "-config"});

  // The relay prints the ingest URL first; only its path matters, the edge is on loopback.
  auto line = relay.proc->waitForLine("/h/", seconds(15));
  if (!line) {
    why = "relay printed no ingest URL within 15 s; log " + relay.proc->logPath() + ":\n" +
          tailFile(relay.proc->logPath(), 8);
    return std::nullopt;
  }
  std::smatch m;
  if (!std::regex_search(*line, m, std::regex("/h/[A-Za-z0-9_.~-]+"))) {
    why = "could not find /h/<id> in the relay's line: " + *line;
    return std::nullopt;
  }
  relay.ingestPath = m[0];
  return relay;
}

// Sends one signed webhook at a time until the target has one, which proves the relay's
// stream is connected before anything is timed.
bool warmUpRelay(uint16_t edgePort, const Relay& relay, TargetServer& target, int64_t firstSeq,
                 std::string& why) {
  std::string hp = hostPort(edgePort);
  for (int64_t i = 0; i < kWarmupSlots; ++i) {
    int64_t seq = firstSeq + i;
    LoadPlan one;
    one.port = edgePort;
    one.connections = 1;
    one.maxRequests = 1;
    one.firstSeq = seq;
    one.duration = seconds(5);
    one.makeRequest = [&](int64_t s) {
      return makeWebhookRequest(hp, relay.ingestPath, kSecret, makeBody(s));
    };
    LoadResult r = runLoad(one);
    if (r.acked != 1) {
      why = "warm-up webhook was not acknowledged: " + r.firstError;
      return false;
    }
    for (int wait = 0; wait < 20; ++wait) {
      if (target.unique() > 0) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  why = "the relay delivered none of the warm-up webhooks";
  return false;
}

// Opens one stream and reads its response head; returns the socket or -1.
int openStream(uint16_t port, const Hook& hook, std::string& why) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    why = std::string("connect: ") + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string req = "GET /api/v1/hooks/" + hook.id + "/stream HTTP/1.1\r\nHost: " + hostPort(port) +
                    "\r\nAuthorization: Bearer " + hook.token +
                    "\r\nAccept: text/event-stream\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    why = "send failed";
    ::close(fd);
    return -1;
  }
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      why = n == 0 ? "edge closed the stream before the head" : "no stream head within 5 s";
      ::close(fd);
      return -1;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  if (in.compare(0, 12, "HTTP/1.1 200") != 0 && in.compare(0, 12, "HTTP/1.0 200") != 0) {
    why = "stream answered " + in.substr(0, in.find("\r\n"));
    ::close(fd);
    return -1;
  }
  return fd;
}

// A raw stream on a relay's hook, beside the relay: notes when each numbered webhook's frame
// arrives, which splits the end-to-end latency into the edge's part (ingest to stream) and
// the relay's part (stream to target).
class SseTap {
 public:
  SseTap(uint16_t port, const Hook& hook, int64_t firstSeq, size_t capacity)
      : firstSeq_(firstSeq), arrivals_(capacity) {
    fd_ = openStream(port, hook, error_);
    if (fd_ < 0) return;
    timeval none{0, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    reader_ = std::thread([this] { read(); });
  }

  ~SseTap() {
    if (fd_ < 0) return;
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
  }

  bool ok() const { return fd_ >= 0; }
  const std::string& error() const { return error_; }

  int64_t receivedAt(int64_t seq) const {
    if (seq < firstSeq_ || seq >= firstSeq_ + static_cast<int64_t>(arrivals_.size())) return 0;
    return arrivals_[static_cast<size_t>(seq - firstSeq_)].load();
  }

 private:
  void read() {
    // The provider's event id (evt_bench_<12 digits>) appears in clear in each frame's JSON.
    const std::string key = "evt_bench_";
    std::string buf;
    char chunk[65536];
    while (true) {
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      int64_t t = nowNs();
      buf.append(chunk, static_cast<size_t>(n));
      size_t at = 0;
      while ((at = buf.find(key, at)) != std::string::npos && at + key.size() + 12 <= buf.size()) {
        int64_t seq = 0;
        bool digits = true;
        for (size_t i = 0; i < 12; ++i) {
          char c = buf[at + key.size() + i];
          digits = digits && c >= '0' && c <= '9';
          seq = seq * 10 + (c - '0');
        }
        if (digits && seq >= firstSeq_ &&
            seq < firstSeq_ + static_cast<int64_t>(arrivals_.size())) {
          int64_t expected = 0;
          arrivals_[static_cast<size_t>(seq - firstSeq_)].compare_exchange_strong(expected, t);
        }
        at += key.size();
      }
      // Keep only a tail that may hold the start of a key cut by this read.
      size_t keep = std::min(buf.size(), key.size() + 12);
      buf.erase(0, buf.size() - keep);
    }
  }

  int64_t firstSeq_;
  std::vector<std::atomic<int64_t>> arrivals_;
  int fd_ = -1;
  std::string error_;
  std::thread reader_;
};

// The token the relay saved for the hook it created, so that the bench can tap its stream.
std::optional<Hook> relayHook(const Options& o, const std::string& relayName,
                              const std::string& ingestPath) {
  Hook h;
  h.id = ingestPath.substr(3);
  std::ifstream in(o.workDir + "/" + relayName + "-config/anonymily/hooks/" + h.id + ".token");
  std::getline(in, h.token);
  if (h.token.empty()) return std::nullopt;
  return h;
}

struct LatencyRun {
  LoadResult load;
  std::vector<int64_t> latenciesNs;  // sorted
  int64_t acked = 0;
  int64_t delivered = 0;
  double deliveredPerSec = 0;  // delivered / (last arrival - first send)
  int64_t firstSentNs = 0;
  std::vector<int64_t> arrivalsNs;  // target arrival times, unsorted
  int64_t firstSeq = 0;
  int64_t measureFromNs = 0;
  std::vector<int64_t> sentAt;  // by seq - firstSeq
  std::vector<uint8_t> ackedBySeq;
};

// Deliveries per second of the run, from its first send: shows stalls that a percentile
// hides (a stream that waits for something before it moves again).
std::string arrivalTimeline(const LatencyRun& run) {
  std::vector<int64_t> perSecond;
  for (int64_t t : run.arrivalsNs) {
    size_t bucket = static_cast<size_t>(std::max<int64_t>(0, t - run.firstSentNs) / 1'000'000'000);
    if (perSecond.size() <= bucket) perSecond.resize(bucket + 1, 0);
    ++perSecond[bucket];
  }
  std::string out;
  for (int64_t n : perSecond) out += (out.empty() ? "" : " ") + std::to_string(n);
  return out;
}

// Paced webhooks at `rate` to port/path; latency = target arrival - the moment just before
// the request was written. Webhooks sent in the first warmupSecs are delivered and counted
// but give no latency sample (threads and connections are still being set up then).
LatencyRun pacedRun(const Options& o, uint16_t port, const std::string& path, double rate,
                    double secs, double warmupSecs, int connections, int64_t firstSeq,
                    TargetServer& target) {
  size_t capacity = static_cast<size_t>(rate * (secs + warmupSecs + 1) * 1.5) + 1000;
  std::vector<int64_t> sentAt(capacity, 0);
  std::vector<uint8_t> acked(capacity, 0);
  LoadPlan plan;
  plan.port = port;
  plan.connections = connections;
  plan.threads = o.clientThreads;
  plan.ratePerSec = rate;
  plan.duration = secondsToNs(secs + warmupSecs);
  plan.firstSeq = firstSeq;
  plan.maxRequests = static_cast<int64_t>(capacity) - 1;
  int64_t measureFromNs = nowNs() + secondsToNs(warmupSecs).count();
  std::string hp = hostPort(port);
  plan.makeRequest = [hp, path](int64_t seq) {
    return makeWebhookRequest(hp, path, kSecret, makeBody(seq));
  };
  plan.onSent = [&](int64_t seq, int64_t t) { sentAt[static_cast<size_t>(seq - firstSeq)] = t; };
  plan.onResponse = [&](int64_t seq, int status, std::string_view) {
    if (status >= 200 && status < 300) acked[static_cast<size_t>(seq - firstSeq)] = 1;
  };

  LatencyRun run;
  run.load = runLoad(plan);
  for (uint8_t a : acked) run.acked += a;

  // Deliveries may trail the sends; wait while they still make progress.
  auto countDelivered = [&] {
    int64_t n = 0;
    for (size_t i = 0; i < capacity; ++i) {
      if (acked[i] && target.receivedAt(firstSeq + static_cast<int64_t>(i)) != 0) ++n;
    }
    return n;
  };
  auto lastProgress = std::chrono::steady_clock::now();
  int64_t seen = countDelivered();
  while (seen < run.acked && std::chrono::steady_clock::now() - lastProgress < seconds(5)) {
    std::this_thread::sleep_for(milliseconds(100));
    int64_t now = countDelivered();
    if (now != seen) lastProgress = std::chrono::steady_clock::now();
    seen = now;
  }

  int64_t firstSent = 0;
  int64_t lastArrival = 0;
  for (size_t i = 0; i < capacity; ++i) {
    if (!acked[i]) continue;
    if (firstSent == 0 || sentAt[i] < firstSent) firstSent = sentAt[i];
    int64_t got = target.receivedAt(firstSeq + static_cast<int64_t>(i));
    if (got == 0) continue;
    ++run.delivered;
    lastArrival = std::max(lastArrival, got);
    run.arrivalsNs.push_back(got);
    if (sentAt[i] >= measureFromNs) run.latenciesNs.push_back(got - sentAt[i]);
  }
  run.firstSentNs = firstSent;
  run.firstSeq = firstSeq;
  run.measureFromNs = measureFromNs;
  run.sentAt = std::move(sentAt);
  run.ackedBySeq = std::move(acked);
  if (lastArrival > firstSent)
    run.deliveredPerSec = run.delivered / ((lastArrival - firstSent) / 1e9);
  std::sort(run.latenciesNs.begin(), run.latenciesNs.end());
  return run;
}

// Splits each measured latency at the moment the tap saw the event's frame: the edge's part
// (request written to frame on the stream) and the relay's part (frame to target).
void describeSplit(const LatencyRun& run, const SseTap& tap, const TargetServer& target) {
  std::vector<int64_t> edgePart, relayPart;
  for (size_t i = 0; i < run.sentAt.size(); ++i) {
    if (!run.ackedBySeq[i] || run.sentAt[i] < run.measureFromNs) continue;
    int64_t seq = run.firstSeq + static_cast<int64_t>(i);
    int64_t framed = tap.receivedAt(seq);
    int64_t got = target.receivedAt(seq);
    if (framed == 0 || got == 0) continue;
    edgePart.push_back(framed - run.sentAt[i]);
    relayPart.push_back(got - framed);
  }
  std::sort(edgePart.begin(), edgePart.end());
  std::sort(relayPart.begin(), relayPart.end());
  auto show = [](const std::vector<int64_t>& v) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "p50 %.3f ms p99 %.3f ms max %.3f ms", percentile(v, 50) / 1e6,
                  percentile(v, 99) / 1e6, v.empty() ? 0.0 : v.back() / 1e6);
    return std::string(buf);
  };
  say("  split by a raw stream tap on the same hook (%zu samples): edge (request to SSE frame) "
      "%s; relay (frame to target) %s",
      edgePart.size(), show(edgePart).c_str(), show(relayPart).c_str());
}

double latencyWarmup(const Options& o) { return o.quick ? 0.2 : 0.5; }

std::string ms(int64_t ns) { return fixed(ns / 1e6, 3) + " ms"; }

// Records one process with perf while it lives, then prints where its time went. Only
// started with --profile; a missing or refused perf costs the run nothing.
class Profiler {
 public:
  Profiler(const Options& o, pid_t pid, const std::string& name) : o_(o), name_(name) {
    if (!o.profile || ::access("/usr/bin/perf", X_OK) != 0) return;
    data_ = o.workDir + "/perf-" + name + ".data";
    perf_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/perf", "record", "-F", "999", "-g", "-p",
                                 std::to_string(pid), "-o", data_},
        o.workDir + "/perf-" + name + ".log", false);
    std::this_thread::sleep_for(milliseconds(300));
  }

  ~Profiler() { finish(); }

  void finish() {
    if (!perf_) return;
    perf_->stop(seconds(30));
    perf_.reset();

    // Flat profile by library and symbol; the full one stays in the work directory.
    std::string out = o_.workDir + "/perf-" + name_ + ".txt";
    std::string cmd = "/usr/bin/perf report -i '" + data_ +
                      "' --stdio --no-children -g none -F overhead,dso,sym --percent-limit 1.5 "
                      "2>/dev/null | grep '%' | grep -v '^#' | awk 'NR <= 25' > '" +
                      out + "'";
    if (std::system(cmd.c_str()) != 0) return;
    say("  perf profile of %s (self time, >= 1.5%%; data in %s):", name_.c_str(), data_.c_str());
    std::ifstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      line.erase(line.find_last_not_of(" \t") + 1);
      say("    %s", line.c_str());
    }
  }

 private:
  const Options& o_;
  std::string name_;
  std::string data_;
  std::unique_ptr<ChildProcess> perf_;
};

// ---- part a ---------------------------------------------------------------------------

// The same generator, requests and HTTP server settings as the edge's ingest runs, no work.
double measureCeiling(const Options& o, const std::string& hookPath) {
  ServerSettings settings;
  settings.maxThreads = o.httpThreads;
  CeilingServer server(settings);
  CpuMeter bench(::getpid());
  LoadResult r = runLoad(ingestPlan(o, server.port(), hookPath, kSeqIngest));
  describe("ceiling (trivial POCO HTTPServer in the bench)", r);
  say("  ceiling: bench process (generator + ceiling server) used %.2f cores", bench.cores());
  return r.ackRate();
}

// Returns the edge's rate and sets ceilingOut to the no-work server's.
double partA(const Options& o, Edge& edge, const std::string& hookPath, Report& report,
             double& ceilingOut) {
  say("(a) ingest throughput: 1 KiB Stripe-signed bodies, %d keep-alive connections, %d client "
      "thread(s), %.1f s measured after a warm-up; http.max_threads=%d on both servers",
      o.connections, o.clientThreads, o.ingestSeconds, o.httpThreads);

  // The ceiling first.
  double ceiling = measureCeiling(o, hookPath);
  ceilingOut = ceiling;
  Profiler profiler(o, edge.pid(), "edge-a");
  CpuMeter edgeCpu(edge.pid());
  CpuMeter bench(::getpid());
  LoadResult r = runLoad(ingestPlan(o, edge.port(), hookPath, kSeqIngest + 50'000'000));
  describe("edge", r);
  say("  edge: edge used %.2f cores, the generator %.2f cores", edgeCpu.cores(), bench.cores());
  profiler.finish();
  double rate = r.ackRate();
  if (!edge.alive()) say("  edge died during part a; log %s", edge.logPath().c_str());
  report.add({"(a) ingest rate", fixed(rate, 0) + "/s", fixed(ceiling, 0) + "/s ceiling",
              ratioText(rate, ceiling), "ratio >= 0.80",
              ceiling > 0 && rate / ceiling >= 0.8 ? "yes" : "no"});
  return rate;
}

// ---- part b ---------------------------------------------------------------------------

// The figures of a latency run that later parts compare with.
struct LatencyFigures {
  int64_t p50 = 0;
  int64_t p99 = 0;
  int64_t max = 0;
};

// The paced run of parts b and f: webhooks at o.latencyRate to ingestPort, forwarded by a relay
// that streams from streamPort, with a raw stream tap on the relay's hook (also on streamPort)
// that splits each latency into the edge's part and the relay's.
LatencyRun tappedPacedRun(const Options& o, uint16_t ingestPort, uint16_t streamPort,
                          const std::string& relayName, const std::string& ingestPath,
                          int64_t firstSeq, size_t capacity, TargetServer& target) {
  auto tapHook = relayHook(o, relayName, ingestPath);
  std::unique_ptr<SseTap> tap;
  if (tapHook) tap = std::make_unique<SseTap>(streamPort, *tapHook, firstSeq, capacity);
  LatencyRun run = pacedRun(o, ingestPort, ingestPath, o.latencyRate, o.latencySeconds,
                            latencyWarmup(o), kLatencyConnections, firstSeq + kWarmupSlots, target);
  if (tap && tap->ok()) {
    describeSplit(run, *tap, target);
  } else {
    say("  no stream tap: %s", tap ? tap->error().c_str() : "the relay saved no token");
  }
  return run;
}

LatencyFigures partB(const Options& o, Edge& edge, Report& report) {
  say("(b) end-to-end latency at %.0f webhooks/s for %.1f s: from just before the bench writes "
      "the request to the edge until the bench's target has read the forwarded body",
      o.latencyRate, o.latencySeconds);
  const std::string goal = "p99 <= 2 ms";
  size_t capacity = static_cast<size_t>(o.latencyRate * (o.latencySeconds + 1) * 1.5) + 2000;

  // Reference: the same paced generator straight to the same kind of target, one HTTP hop.
  LatencyRun ref;
  {
    TargetServer direct(kSeqLatencyRef, capacity, 8);
    ref = pacedRun(o, direct.port(), "/direct", o.latencyRate, o.latencyRefSeconds,
                   latencyWarmup(o), kLatencyConnections, kSeqLatencyRef, direct);
    say("  reference (bench -> target directly, %.1f s): p50 %s p99 %s max %s (%zu samples)",
        o.latencyRefSeconds, ms(percentile(ref.latenciesNs, 50)).c_str(),
        ms(percentile(ref.latenciesNs, 99)).c_str(),
        ms(ref.latenciesNs.empty() ? 0 : ref.latenciesNs.back()).c_str(), ref.latenciesNs.size());
  }

  TargetServer target(kSeqLatency, capacity + kWarmupSlots, 8);
  std::string why;
  auto relay = startRelay(o, edge, target.port(), "relay-b", why);
  if (!relay || !warmUpRelay(edge.port(), *relay, target, kSeqLatency, why)) {
    say("  not run: %s", why.c_str());
    report.notRun("(b) latency p99", goal, why.substr(0, why.find('\n')));
    return {};
  }
  LatencyRun run = tappedPacedRun(o, edge.port(), edge.port(), "relay-b", relay->ingestPath,
                                  kSeqLatency, capacity, target);
  const auto& l = run.latenciesNs;
  say("  edge + relay: p50 %s p99 %s max %s (%zu samples; acked %lld, delivered %lld, "
      "late sends %lld, rejected %lld)",
      ms(percentile(l, 50)).c_str(), ms(percentile(l, 99)).c_str(),
      ms(l.empty() ? 0 : l.back()).c_str(), l.size(), static_cast<long long>(run.acked),
      static_cast<long long>(run.delivered), static_cast<long long>(run.load.lateSends),
      static_cast<long long>(run.load.rejected));
  if (!run.load.firstError.empty()) say("  first error: %s", run.load.firstError.c_str());
  if (l.empty()) {
    report.notRun("(b) latency p99", goal, "no webhook reached the target");
    return {};
  }
  int64_t p99 = percentile(l, 99);
  report.add({"(b) latency p50", ms(percentile(l, 50)),
              ms(percentile(ref.latenciesNs, 50)) + " direct",
              ratioText(percentile(l, 50), percentile(ref.latenciesNs, 50)), "-", "n/a"});
  report.add({"(b) latency p99", ms(p99), ms(percentile(ref.latenciesNs, 99)) + " direct",
              ratioText(p99, percentile(ref.latenciesNs, 99)), goal,
              p99 <= 2'000'000 ? "yes" : "no"});
  report.add({"(b) latency max", ms(l.back()),
              ms(ref.latenciesNs.empty() ? 0 : ref.latenciesNs.back()) + " direct",
              ratioText(l.back(), ref.latenciesNs.empty() ? 0 : ref.latenciesNs.back()), "-",
              "n/a"});
  report.add({"(b) delivered/acked",
              std::to_string(run.delivered) + "/" + std::to_string(run.acked), "-", "-", "all",
              run.delivered == run.acked ? "yes" : "no"});
  relay->proc->stop();
  return {percentile(l, 50), p99, l.back()};
}

// ---- part c ---------------------------------------------------------------------------

// Opens one stream per hook; stops at the first failure and says why.
std::vector<int> openStreams(uint16_t port, const std::vector<Hook>& hooks, std::string& why) {
  std::vector<int> fds;
  for (const auto& h : hooks) {
    int fd = openStream(port, h, why);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  return fds;
}

// Streams the edge has not closed: a read that would block means the stream is still there.
size_t streamsStillOpen(const std::vector<int>& fds) {
  size_t open = 0;
  char buf[4096];
  for (int fd : fds) {
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ++open;
  }
  return open;
}

void closeAll(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

// Part c, first half, run before anything else so that heap pages freed by earlier load
// cannot hide what the streams cost: hooks through the API, VmRSS, streams, VmRSS.
std::vector<Hook> partCMemory(const Options& o, Edge& edge, Report& report) {
  say("(c) %d SSE streams, each a raw socket that reads nothing: edge VmRSS before and after "
      "opening them (measured first, on an edge that has done nothing else)",
      o.streams);

  // Several creations in flight so that store commits can group.
  std::vector<Hook> hooks;
  std::mutex mutex;
  LoadPlan create;
  create.port = edge.port();
  create.connections = 8;
  create.maxRequests = o.streams;
  create.duration = seconds(120);
  std::string hp = hostPort(edge.port());
  create.makeRequest = [hp](int64_t) {
    std::string body = "{}";
    return "POST /api/v1/hooks HTTP/1.1\r\nHost: " + hp +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  };
  create.onResponse = [&](int64_t, int status, std::string_view body) {
    if (status != 201) return;
    auto hook = parseHook(body);
    std::lock_guard<std::mutex> lock(mutex);
    if (hook) hooks.push_back(*hook);
  };
  LoadResult created = runLoad(create);
  say("  created %zu hooks (%lld rejected, %lld failed)", hooks.size(),
      static_cast<long long>(created.rejected), static_cast<long long>(created.failed));
  if (hooks.size() != static_cast<size_t>(o.streams)) {
    report.notRun("(c) edge RSS per stream", "<= 4 KiB",
                  "could not create the hooks: " + created.firstError);
    return {};
  }

  // RSS before: after the hooks exist, so that only the streams differ.
  std::this_thread::sleep_for(milliseconds(o.quick ? 300 : 1000));
  long before = procStatusKiB(edge.pid(), "VmRSS");
  long threadsBefore = procStatusKiB(edge.pid(), "Threads");
  std::string why;
  std::vector<int> fds = openStreams(edge.port(), hooks, why);
  std::this_thread::sleep_for(milliseconds(o.quick ? 300 : 1000));
  long after = procStatusKiB(edge.pid(), "VmRSS");
  size_t open = streamsStillOpen(fds);
  say("  opened %zu streams (%zu still open after the pause); edge VmRSS %ld KiB -> %ld KiB, "
      "threads %ld -> %ld",
      fds.size(), open, before, after, threadsBefore, procStatusKiB(edge.pid(), "Threads"));
  if (fds.size() != hooks.size() || open != fds.size()) {
    if (fds.size() != hooks.size()) say("  stream %zu failed: %s", fds.size() + 1, why.c_str());
    report.notRun(
        "(c) edge RSS per stream", "<= 4 KiB",
        std::to_string(open) + " of " + std::to_string(hooks.size()) + " streams open: " + why);
  } else {
    double perStream = static_cast<double>(after - before) / static_cast<double>(fds.size());
    report.add({"(c) edge RSS per stream", fixed(perStream, 2) + " KiB",
                std::to_string(before) + " KiB edge before",
                fixed(static_cast<double>(after) / before, 2), "<= 4 KiB",
                perStream <= 4 ? "yes" : "no"});
  }
  closeAll(fds);
  return hooks;
}

// Part c, second half: ingest as in part a, on the ingest hook (which has no stream of its
// own), while every other hook holds an open stream.
void partCIngest(const Options& o, Edge& edge, const std::vector<Hook>& hooks,
                 const std::string& hookPath, double rateA, Report& report) {
  std::string why;
  std::vector<int> fds = openStreams(edge.port(), hooks, why);
  say("(c) ingest again with %zu streams open", fds.size());
  if (fds.size() != hooks.size()) {
    report.notRun("(c) ingest with streams", "ratio >= 0.90",
                  "only " + std::to_string(fds.size()) + " streams opened: " + why);
    closeAll(fds);
    return;
  }
  CpuMeter edgeCpu(edge.pid());
  LoadResult r = runLoad(ingestPlan(o, edge.port(), hookPath, kSeqStreamsIngest));
  describe("edge with streams open", r);
  say("  edge used %.2f cores", edgeCpu.cores());
  say("  streams still open afterwards: %zu; edge VmRSS %ld KiB", streamsStillOpen(fds),
      procStatusKiB(edge.pid(), "VmRSS"));
  report.add({"(c) ingest with streams", fixed(r.ackRate(), 0) + "/s",
              fixed(rateA, 0) + "/s from (a)", ratioText(r.ackRate(), rateA), "ratio >= 0.90",
              rateA <= 0                   ? "n/a"
              : r.ackRate() / rateA >= 0.9 ? "yes"
                                           : "no"});
  closeAll(fds);
}

// ---- part d ---------------------------------------------------------------------------

void partD(const Options& o, Edge& edge, Report& report) {
  say("(d) relay capacity: %.0f events/s for %.1f s into the bench's target, %d connections",
      o.relayRate, o.relaySeconds, o.connections);
  size_t capacity = static_cast<size_t>(o.relayRate * (o.relaySeconds + 1) * 1.5) + 2000;
  TargetServer target(kSeqRelay, capacity + kWarmupSlots, 16);
  std::string why;
  auto relay = startRelay(o, edge, target.port(), "relay-d", why);
  if (!relay || !warmUpRelay(edge.port(), *relay, target, kSeqRelay, why)) {
    say("  not run: %s", why.c_str());
    report.notRun("(d) events lost", "0", why.substr(0, why.find('\n')));
    return;
  }
  pid_t pid = relay->proc->pid();
  long idle = procStatusKiB(pid, "VmRSS");

  // Samples the relay's RSS while it works; VmHWM at the end catches peaks between samples.
  std::atomic<bool> stop{false};
  std::atomic<long> peak{idle};
  std::thread sampler([&] {
    while (!stop) {
      long v = procStatusKiB(pid, "VmRSS");
      if (v > peak) peak = v;
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  int64_t warmed = target.unique();
  Profiler profiler(o, pid, "relay-d");
  CpuMeter relayCpu(pid);
  CpuMeter edgeCpu(edge.pid());
  auto tapHook = relayHook(o, "relay-d", relay->ingestPath);
  std::unique_ptr<SseTap> tap;
  if (tapHook) tap = std::make_unique<SseTap>(edge.port(), *tapHook, kSeqRelay, capacity);
  LatencyRun run = pacedRun(o, edge.port(), relay->ingestPath, o.relayRate, o.relaySeconds, 0,
                            o.connections, kSeqRelay + kWarmupSlots, target);
  stop = true;
  sampler.join();
  if (tap && tap->ok()) {
    describeSplit(run, *tap, target);
  } else {
    say("  no stream tap: %s", tap ? tap->error().c_str() : "the relay saved no token");
  }
  double relayCores = relayCpu.cores();
  double edgeCores = edgeCpu.cores();
  long hwm = procStatusKiB(pid, "VmHWM");
  long peakKiB = std::max(peak.load(), hwm);
  bool relayAlive = relay->proc->alive();
  profiler.finish();

  double sendRate = run.load.sendSeconds > 0 ? run.acked / run.load.sendSeconds : 0;
  const auto& l = run.latenciesNs;
  say("  sent %lld, acked %lld (%.0f/s over %.2f s), rejected %lld, failed %lld, late sends %lld",
      static_cast<long long>(run.load.sent), static_cast<long long>(run.acked), sendRate,
      run.load.sendSeconds, static_cast<long long>(run.load.rejected),
      static_cast<long long>(run.load.failed), static_cast<long long>(run.load.lateSends));
  say("  delivered %lld of the acked (target saw %lld requests: %lld unique after warm-up, "
      "%lld duplicates, %lld corrupted); relay RSS idle %ld KiB, sampled peak %ld KiB, VmHWM "
      "%ld KiB%s",
      static_cast<long long>(run.delivered), static_cast<long long>(target.total()),
      static_cast<long long>(target.unique() - warmed), static_cast<long long>(target.duplicates()),
      static_cast<long long>(target.corrupted()), idle, peak.load(), hwm,
      relayAlive ? "" : " (relay exited)");
  say("  from the first send to the last delivery the relay used %.2f cores, the edge %.2f",
      relayCores, edgeCores);
  say("  deliveries in each second since the first send: %s", arrivalTimeline(run).c_str());
  if (!l.empty()) {
    say("  latency under this load: p50 %s p99 %s max %s", ms(percentile(l, 50)).c_str(),
        ms(percentile(l, 99)).c_str(), ms(l.back()).c_str());
  }
  if (!run.load.firstError.empty()) say("  first error: %s", run.load.firstError.c_str());

  // The achieved rate is what reached the target per second of sending; a relay that keeps
  // up delivers at the offered rate.
  int64_t lost = run.acked - run.delivered;
  double achieved = run.deliveredPerSec;
  report.add({"(d) events lost",
              std::to_string(lost) + " (" + std::to_string(run.delivered) + "/" +
                  std::to_string(run.acked) + " delivered)",
              "-", "-", "0", lost == 0 && run.acked > 0 ? "yes" : "no"});
  report.add({"(d) duplicates+corrupted",
              std::to_string(target.duplicates()) + "+" + std::to_string(target.corrupted()), "-",
              "-", "0", target.duplicates() + target.corrupted() == 0 ? "yes" : "no"});
  report.add({"(d) relay peak RSS", fixed(peakKiB / 1024.0, 2) + " MiB",
              fixed(idle / 1024.0, 2) + " MiB idle", ratioText(peakKiB, idle), "<= 15 MiB",
              peakKiB > 0 && peakKiB <= 15 * 1024 ? "yes" : "no"});
  // Two rates: what the edge acknowledged of the offered load, and what the relay delivered
  // of that, so that a shortfall is charged to the right process.
  report.add({"(d) edge acked rate", fixed(sendRate, 0) + "/s",
              fixed(o.relayRate, 0) + "/s offered", ratioText(sendRate, o.relayRate),
              "ratio >= 0.95", sendRate >= 0.95 * o.relayRate ? "yes" : "no"});
  report.add({"(d) relay delivered rate", fixed(achieved, 0) + "/s",
              fixed(sendRate, 0) + "/s acked", ratioText(achieved, sendRate), "ratio >= 0.95",
              sendRate > 0 && achieved >= 0.95 * sendRate ? "yes" : "no"});
  relay->proc->stop();
}

// Part d, second half: the relay's own speed, without the edge's ingest rate as a limit.
// Events are stored while no relay is connected; then a relay attaches to the hook from
// event 0 and the time until the target has all of them gives its delivery rate.
void partDCatchUp(const Options& o, Edge& edge, Report& report) {
  const int64_t count = o.quick ? 2000 : 10000;
  const std::string goal = ">= " + fixed(o.relayRate, 0) + "/s";
  say("(d) relay catch-up: %lld events stored first, then one relay started from event 0",
      static_cast<long long>(count));
  std::string why;
  auto hook = createHook(
      edge.port(),
      std::string("{\"provider\":\"stripe\",\"secret\":\"") + kSecret + "\",\"tolerance_s\":0}",
      why);
  if (!hook || o.relayBin.empty() || ::access(o.relayBin.c_str(), X_OK) != 0) {
    if (why.empty()) why = "no relay binary at " + o.relayBin;
    report.notRun("(d) relay catch-up rate", goal, why);
    return;
  }

  // Store the backlog through ingest, as fast as the edge takes it.
  LoadPlan fill = ingestPlan(o, edge.port(), "/h/" + hook->id, kSeqCatchUp);
  fill.warmup = std::chrono::nanoseconds(0);
  fill.duration = seconds(120);
  fill.maxRequests = count;
  LoadResult stored = runLoad(fill);
  TargetServer target(kSeqCatchUp, static_cast<size_t>(count) + 10, 16);

  // The relay starts with the whole backlog waiting for it.
  int64_t start = nowNs();
  ChildProcess relay({o.relayBin, "relay", "--edge", "http://" + hostPort(edge.port()), "--to",
                      "http://" + hostPort(target.port()), "--hook", hook->id, "--token",
                      hook->token, "--last-event-id", "0"},
                     o.workDir + "/relay-catch-up.log", true,
                     {"XDG_CONFIG_HOME=" + o.workDir + "/relay-catch-up-config"});
  auto lastProgress = std::chrono::steady_clock::now();
  int64_t seen = 0;
  while (seen < stored.acked && std::chrono::steady_clock::now() - lastProgress < seconds(5)) {
    std::this_thread::sleep_for(milliseconds(20));
    int64_t now = target.unique();
    if (now != seen) lastProgress = std::chrono::steady_clock::now();
    seen = now;
  }
  double secs = (target.lastArrivalNs() - start) / 1e9;
  double rate = secs > 0 ? seen / secs : 0;
  long hwm = procStatusKiB(relay.pid(), "VmHWM");
  say("  stored %lld; delivered %lld in %.2f s from the relay's start = %.0f/s; relay VmHWM %ld "
      "KiB; %lld duplicates, %lld corrupted",
      static_cast<long long>(stored.acked), static_cast<long long>(seen), secs, rate, hwm,
      static_cast<long long>(target.duplicates()), static_cast<long long>(target.corrupted()));
  relay.stop();
  if (seen != stored.acked) {
    report.notRun("(d) relay catch-up rate", goal,
                  std::to_string(seen) + " of " + std::to_string(stored.acked) + " delivered");
    return;
  }
  report.add({"(d) relay catch-up rate", fixed(rate, 0) + "/s",
              fixed(o.relayRate, 0) + "/s offered", ratioText(rate, o.relayRate), goal,
              rate >= o.relayRate ? "yes" : "no"});
  report.add({"(d) catch-up relay VmHWM", fixed(hwm / 1024.0, 2) + " MiB", "-", "-", "<= 15 MiB",
              hwm > 0 && hwm <= 15 * 1024 ? "yes" : "no"});
}

// The floor under every durable acknowledgement: how long the work directory's disk takes
// to sync a small append. Measured here because it differs so much between machines.
void measureSync(const Options& o, Report& report) {
  std::string path = o.workDir + "/sync-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::vector<int64_t> ns;
  std::string block(4096, 'x');
  for (int i = 0; i < (o.quick ? 50 : 200); ++i) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
    int64_t t = nowNs();
    ::fdatasync(fd);
    ns.push_back(nowNs() - t);
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::sort(ns.begin(), ns.end());
  say("disk: 4 KiB append + fdatasync in %s: p50 %s p99 %s (%zu samples)", o.workDir.c_str(),
      ms(percentile(ns, 50)).c_str(), ms(percentile(ns, 99)).c_str(), ns.size());
  report.add({"(ref) disk fdatasync p50/p99",
              ms(percentile(ns, 50)) + " / " + ms(percentile(ns, 99)), "-", "-", "-", "n/a"});
}

// ---- parts e and f: MariaDB ------------------------------------------------------------

// The MariaDB of parts e and f, as the bench sees it from outside the edges.
struct SharedDb {
  std::unique_ptr<MySqlProbe> probe;
  pid_t pid = 0;         // the server process, 0 when unknown
  bool durable = false;  // innodb_flush_log_at_trx_commit=1: every acknowledged commit synced
};

// Connects the probe and prints the server's durability settings; returns why on failure.
std::optional<SharedDb> openSharedDb(const Options& o, std::string& why) {
  if (o.mysqlUrl.empty()) {
    why = "no --mysql-url or ANM_TEST_MYSQL_URL (bench/run starts a private MariaDB)";
    return std::nullopt;
  }
  SharedDb db;
  db.probe = MySqlProbe::connect(o.mysqlUrl, why);
  if (!db.probe) return std::nullopt;
  db.pid = static_cast<pid_t>(o.mysqlPid);
  std::string text;
  for (const auto& [name, value] : db.probe->settings()) {
    text += " " + name + "=" + value;
    if (name == "innodb_flush_log_at_trx_commit") db.durable = value == "1";
  }
  say("mariadb for (e) and (f):%s", text.c_str());
  if (db.durable) {
    say("  durability: the server's default, innodb_flush_log_at_trx_commit=1 (each COMMIT "
        "is on disk before it returns); the bench does not change it");
  } else {
    say("  WARNING: innodb_flush_log_at_trx_commit is not 1: commits are not synced, so the "
        "MariaDB figures below do not meet the durability the goals require");
  }
  return db;
}

// The key ring every edge on the shared database encrypts with, and the probe reads with:
// edges that share a database must share its keys. Written once per run, for the owner only.
std::string sharedKeyFile(const Options& o) {
  const std::string path = o.workDir + "/shared-db.keys";
  if (!std::filesystem::exists(path)) {
    std::ofstream(path) << crypto::KeyRing::newKeyLine("bench1");
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
  }
  return path;
}

// The edges on the shared database. Each starts when a part first asks for it, so that the
// one-edge figures are taken while only one edge runs.
class SharedDbEdges {
 public:
  explicit SharedDbEdges(const Options& o) : o_(o) {}

  Edge* get(size_t index, std::string& why) {
    if (edges_[index]) return edges_[index].get();
    if (!failures_[index].empty()) {
      why = failures_[index];
      return nullptr;
    }
    std::string config = "store = " + o_.mysqlUrl + "\n";
    config += "encryption.key_file = " + sharedKeyFile(o_) + "\n";
    if (o_.mysqlPoolSize > 0)
      config += "store.pool_size = " + std::to_string(o_.mysqlPoolSize) + "\n";
    if (o_.mysqlPollMs > 0)
      config += "store.poll_interval_ms = " + std::to_string(o_.mysqlPollMs) + "\n";
    const std::string name = index == 0 ? "edge-db-a" : "edge-db-b";
    edges_[index] = Edge::start(o_, name, config, why);
    if (!edges_[index]) {
      failures_[index] = name + ": " + why;
      why = failures_[index];
      return nullptr;
    }
    say("  %s pid %d on 127.0.0.1:%u, store on the shared MariaDB", name.c_str(),
        edges_[index]->pid(), edges_[index]->port());
    return edges_[index].get();
  }

  void stopAll() {
    for (auto& e : edges_) {
      if (!e) continue;
      bool alive = e->alive();
      int status = e->process().stop();
      say("%s %s (wait status %d)", e->logPath().c_str(), alive ? "stopped" : "had exited", status);
      e.reset();
    }
  }

 private:
  const Options& o_;
  std::unique_ptr<Edge> edges_[2];
  std::string failures_[2];
};

// Events of a hook as the API of one edge lists them, page by page.
std::optional<int64_t> countThroughApi(uint16_t port, const Hook& hook, std::string& why) {
  int64_t count = 0;
  int64_t after = 0;
  while (true) {
    SimpleResponse r = httpRequest(
        port, "GET",
        "/api/v1/hooks/" + hook.id + "/events?after=" + std::to_string(after) + "&limit=1000", "",
        hook.token, seconds(30));
    if (r.status != 200) {
      why = "events list answered " + std::to_string(r.status) + " " + r.error;
      return std::nullopt;
    }
    try {
      Poco::JSON::Parser parser;
      auto obj = parser.parse(r.body).extract<Poco::JSON::Object::Ptr>();
      auto events = obj->getArray("events");
      if (!events || events->size() == 0) return count;
      count += static_cast<int64_t>(events->size());
      after = obj->getValue<int64_t>("next_after");
    } catch (const std::exception& e) {
      why = std::string("could not read the events list: ") + e.what();
      return std::nullopt;
    }
  }
}

// One closed-loop ingest run on the shared database, over one edge or split over several.
struct DbIngest {
  LoadResult load;
  StoredCheck stored;
  std::vector<double> edgeCores;
  double dbCores = -1;
  double benchCores = 0;
  StatusSnapshot before;
  StatusSnapshot after;
  std::string edgeThreads;  // the first edge's busiest threads over the run
  std::string dbThreads;
};

DbIngest runDbIngest(const Options& o, SharedDb& db, const std::vector<Edge*>& edges,
                     const Hook& hook, int64_t firstSeq, const std::string& name) {
  DbIngest out;
  const std::string path = "/h/" + hook.id;
  LoadPlan plan = ingestPlan(o, edges[0]->port(), path, firstSeq);
  if (edges.size() > 1) {
    // Connection i goes to edge i % n: the same connections, requests and bodies as part a.
    for (Edge* e : edges) plan.ports.push_back(e->port());
    plan.makeRequestTo = [path](int64_t seq, uint16_t port) {
      return makeWebhookRequest(hostPort(port), path, kSecret, makeBody(seq));
    };
  }
  std::mutex mutex;
  std::vector<int64_t> acked;
  plan.onResponse = [&](int64_t seq, int status, std::string_view) {
    if (status < 200 || status >= 300) return;
    std::lock_guard<std::mutex> lock(mutex);
    acked.push_back(seq);
  };

  // Meters and counters around the run; perf only with --profile.
  Profiler edgeProfile(o, edges[0]->pid(), name + "-edge");
  std::unique_ptr<Profiler> dbProfile;
  if (db.pid > 0) dbProfile = std::make_unique<Profiler>(o, db.pid, name + "-mariadbd");
  std::vector<CpuMeter> edgeCpu;
  for (Edge* e : edges) edgeCpu.emplace_back(e->pid());
  std::optional<CpuMeter> dbCpu;
  if (db.pid > 0) dbCpu.emplace(db.pid);
  CpuMeter bench(::getpid());
  std::vector<ThreadCpu> edgeThreads = threadCpu(edges[0]->pid());
  std::vector<ThreadCpu> dbThreads;
  if (db.pid > 0) dbThreads = threadCpu(db.pid);
  out.before = db.probe->status();
  out.load = runLoad(plan);
  out.after = db.probe->status();
  double wall = (out.after.atNs - out.before.atNs) / 1e9;
  out.edgeThreads = busiestThreads(edgeThreads, threadCpu(edges[0]->pid()), wall, 4);
  if (db.pid > 0) out.dbThreads = busiestThreads(dbThreads, threadCpu(db.pid), wall, 3);
  for (const auto& m : edgeCpu) out.edgeCores.push_back(m.cores());
  if (dbCpu) out.dbCores = dbCpu->cores();
  out.benchCores = bench.cores();
  edgeProfile.finish();
  if (dbProfile) dbProfile->finish();

  // Every acknowledged webhook must be in the table, once and unchanged.
  out.stored = db.probe->check(hook.id, acked, sharedKeyFile(o));
  return out;
}

void describeDbIngest(const char* what, const DbIngest& r, const std::vector<Edge*>& edges) {
  describe(what, r.load);
  for (size_t i = 0; i < edges.size() && edges.size() > 1; ++i) {
    auto it = r.load.ackedInWindowByPort.find(edges[i]->port());
    int64_t n = it == r.load.ackedInWindowByPort.end() ? 0 : it->second;
    say("  edge %c: %.0f acknowledged/s", static_cast<char>('A' + i),
        r.load.windowSeconds > 0 ? n / r.load.windowSeconds : 0.0);
  }
  std::string cores;
  for (size_t i = 0; i < r.edgeCores.size(); ++i) {
    cores += (i ? ", edge " : "edge ") + std::string(1, static_cast<char>('A' + i)) + " " +
             fixed(r.edgeCores[i], 2);
  }
  say("  cores used: %s, mariadbd %s, bench (generator) %.2f", cores.c_str(),
      r.dbCores < 0 ? "unknown (no --mysql-pid)" : fixed(r.dbCores, 2).c_str(), r.benchCores);
  say("  busiest threads, in cores: edge A %s; mariadbd %s", r.edgeThreads.c_str(),
      r.dbThreads.empty() ? "unknown" : r.dbThreads.c_str());

  // Server counters over the run (warm-up and drain included): where commit time goes.
  double secs = (r.after.atNs - r.before.atNs) / 1e9;
  auto d = [&](const char* n) { return counterDelta(r.before, r.after, n); };
  int64_t commits = d("Com_commit");
  int64_t inserts = d("Com_insert");
  int64_t fsyncs = d("Innodb_os_log_fsyncs");
  int64_t stored = r.stored.rows;
  auto per = [](int64_t a, int64_t b) {
    return b > 0 ? fixed(static_cast<double>(a) / b, 2) : "-";
  };
  say("  mariadb over %.2f s: %lld COMMIT (%.0f/s, %s events each), %lld INSERT, %lld UPDATE, "
      "%lld SELECT, %lld statements (%s per event), redo log fsyncs %lld (%.0f/s, %s events "
      "each), data fsyncs %lld, row lock waits %lld (%lld ms)",
      secs, static_cast<long long>(commits), secs > 0 ? commits / secs : 0.0,
      per(stored, commits).c_str(), static_cast<long long>(inserts),
      static_cast<long long>(d("Com_update")), static_cast<long long>(d("Com_select")),
      static_cast<long long>(d("Questions")), per(d("Questions"), stored).c_str(),
      static_cast<long long>(fsyncs), secs > 0 ? fsyncs / secs : 0.0, per(stored, fsyncs).c_str(),
      static_cast<long long>(d("Innodb_data_fsyncs")),
      static_cast<long long>(d("Innodb_row_lock_waits")),
      static_cast<long long>(d("Innodb_row_lock_time")));
  std::string all;
  for (const auto& [name, value] : r.after.values) {
    int64_t delta = d(name.c_str());
    if (delta != 0) all += " " + name + "=" + std::to_string(delta);
  }
  say("  mariadb counters over the run:%s", all.c_str());
  const StoredCheck& s = r.stored;
  if (!s.error.empty()) {
    say("  COULD NOT CHECK THE DATABASE: %s", s.error.c_str());
    return;
  }
  say("  database check: %lld rows for the hook; %lld acknowledged, %lld of them missing; "
      "%lld stored without an answer, %lld duplicates, %lld corrupted",
      static_cast<long long>(s.rows), static_cast<long long>(r.load.acked),
      static_cast<long long>(s.ackedMissing), static_cast<long long>(s.storedUnacked),
      static_cast<long long>(s.duplicates), static_cast<long long>(s.corrupted));
  if (s.ackedMissing > 0 || s.corrupted > 0) {
    say("  !!! EVENTS LOST OR CHANGED: %lld acknowledged webhooks are not in the database and "
        "%lld rows differ from what was sent !!!",
        static_cast<long long>(s.ackedMissing), static_cast<long long>(s.corrupted));
  }
}

// The summary rows every MariaDB ingest run gets: errors and the database check.
void reportDbIngestChecks(const std::string& label, const DbIngest& r, Report& report) {
  const LoadResult& l = r.load;
  int64_t errors = l.rejected + l.failed + l.unanswered;
  report.add({label + " errors",
              std::to_string(l.rejected) + " rejected, " + std::to_string(l.failed) + " failed, " +
                  std::to_string(l.unanswered) + " unanswered",
              "-", "-", "0", errors == 0 ? "yes" : "no"});
  const StoredCheck& s = r.stored;
  if (!s.error.empty()) {
    report.notRun(label + " acked stored", "all, once, unchanged", s.error);
    return;
  }
  bool good = s.ackedMissing == 0 && s.duplicates == 0 && s.corrupted == 0 && l.acked > 0;
  report.add({label + " acked stored",
              std::to_string(l.acked - s.ackedMissing) + "/" + std::to_string(l.acked) + " (" +
                  std::to_string(s.rows) + " rows, " + std::to_string(s.duplicates) + " dup, " +
                  std::to_string(s.corrupted) + " corrupt)",
              "-", "-", "all, once, unchanged", good ? "yes" : "NO: LOST OR CHANGED"});
}

bool storedIntact(const DbIngest& r) {
  return r.stored.error.empty() && r.stored.ackedMissing == 0 && r.stored.corrupted == 0;
}

// Part e, first half: part a's load on one edge whose store is the shared MariaDB.
// ceiling is measured here when part a did not run, and kept for the second half.
double partEOne(const Options& o, SharedDb& db, SharedDbEdges& edges, double rateA, double& ceiling,
                Report& report) {
  say("(e) ingest on MariaDB, one edge: part a's generator, connections, bodies and signatures");
  const std::string goal = ">= " + fixed(kDbIngestGoalPerSec, 0) + "/s";
  std::string why;
  Edge* a = edges.get(0, why);
  std::optional<Hook> hook;
  if (a) {
    hook = createHook(
        a->port(),
        std::string("{\"provider\":\"stripe\",\"secret\":\"") + kSecret + "\",\"tolerance_s\":0}",
        why);
  }
  if (!hook) {
    say("  not run: %s", why.c_str());
    report.notRun("(e) 1 edge ingest", goal, why.substr(0, why.find('\n')));
    return 0;
  }
  if (ceiling <= 0) ceiling = measureCeiling(o, "/h/" + hook->id);
  DbIngest r = runDbIngest(o, db, {a}, *hook, kSeqDbIngestOne, "edge-e1");
  describeDbIngest("1 edge on mariadb", r, {a});
  double rate = r.load.ackRate();
  bool met = rate >= kDbIngestGoalPerSec && db.durable && storedIntact(r);
  report.add({"(e) 1 edge ingest", fixed(rate, 0) + "/s",
              rateA > 0 ? fixed(rateA, 0) + "/s sqlite (a)" : "(a) not run", ratioText(rate, rateA),
              goal, met ? "yes" : "no"});
  report.add({"(e) 1 edge / ceiling", fixed(rate, 0) + "/s", fixed(ceiling, 0) + "/s ceiling",
              ratioText(rate, ceiling), "-", "n/a"});
  reportDbIngestChecks("(e) 1 edge", r, report);
  return rate;
}

// Part e, second half: the same load split over two edges on the same database.
void partETwo(const Options& o, SharedDb& db, SharedDbEdges& edges, double rateA, double& ceiling,
              double rateOne, Report& report) {
  say("(e) ingest on MariaDB, two edges on one database: the same %d connections split over "
      "both (connection i to edge i %% 2), one hook",
      o.connections);
  const std::string goal = "> 1 edge, >= " + fixed(kDbIngestGoalPerSec, 0) + "/s";
  std::string why;
  Edge* a = edges.get(0, why);
  Edge* b = a ? edges.get(1, why) : nullptr;
  std::optional<Hook> hook;
  if (b) {
    hook = createHook(
        a->port(),
        std::string("{\"provider\":\"stripe\",\"secret\":\"") + kSecret + "\",\"tolerance_s\":0}",
        why);
  }
  if (!hook) {
    say("  not run: %s", why.c_str());
    report.notRun("(e) 2 edges ingest", goal, why.substr(0, why.find('\n')));
    return;
  }
  if (ceiling <= 0) ceiling = measureCeiling(o, "/h/" + hook->id);
  DbIngest r = runDbIngest(o, db, {a, b}, *hook, kSeqDbIngestTwo, "edge-e2");
  describeDbIngest("2 edges on mariadb", r, {a, b});

  // Each edge's API must list what both stored: B's follower sees A's commits and back.
  std::string counts;
  bool listedAll = true;
  for (Edge* e : {a, b}) {
    auto n = countThroughApi(e->port(), *hook, why);
    counts += (counts.empty() ? "" : ", ") + std::string(e == a ? "A " : "B ") +
              (n ? std::to_string(*n) : "error: " + why);
    listedAll = listedAll && n && *n == r.stored.rows;
  }
  say("  events listed through each edge's API: %s (rows %lld)", counts.c_str(),
      static_cast<long long>(r.stored.rows));

  double rate = r.load.ackRate();
  bool met = rate > rateOne && rate >= kDbIngestGoalPerSec && db.durable && storedIntact(r);
  report.add({"(e) 2 edges ingest", fixed(rate, 0) + "/s",
              rateOne > 0 ? fixed(rateOne, 0) + "/s 1 edge" : "1 edge not run",
              ratioText(rate, rateOne), goal, met ? "yes" : "no"});
  report.add({"(e) 2 edges / sqlite (a)", fixed(rate, 0) + "/s",
              rateA > 0 ? fixed(rateA, 0) + "/s sqlite (a)" : "(a) not run", ratioText(rate, rateA),
              "-", "n/a"});
  report.add({"(e) 2 edges / ceiling", fixed(rate, 0) + "/s", fixed(ceiling, 0) + "/s ceiling",
              ratioText(rate, ceiling), "-", "n/a"});
  reportDbIngestChecks("(e) 2 edges", r, report);
  report.add({"(e) 2 edges listed by API", counts, std::to_string(r.stored.rows) + " rows", "-",
              "every row on both", listedAll ? "yes" : "no"});
}

// Part f: paced webhooks to ingestEdge, a relay connected to relayEdge (the same edge or the
// other one), end to end as in part b. The reference is part b's single-edge SQLite run.
void partF(const Options& o, Edge& ingestEdge, Edge& relayEdge, const std::string& label,
           const std::string& name, int64_t firstSeq, const LatencyFigures& refB, int64_t goalNs,
           Report& report) {
  const std::string goal = goalNs > 0 ? "p99 <= " + ms(goalNs) : "-";
  size_t capacity = static_cast<size_t>(o.latencyRate * (o.latencySeconds + 1) * 1.5) + 2000;
  TargetServer target(firstSeq, capacity + kWarmupSlots, 8);
  std::string why;
  auto relay = startRelay(o, relayEdge, target.port(), name, why);
  if (!relay || !warmUpRelay(ingestEdge.port(), *relay, target, firstSeq, why)) {
    say("  not run: %s", why.c_str());
    report.notRun(label + " latency p99", goal, why.substr(0, why.find('\n')));
    return;
  }
  LatencyRun run = tappedPacedRun(o, ingestEdge.port(), relayEdge.port(), name, relay->ingestPath,
                                  firstSeq, capacity, target);
  const auto& l = run.latenciesNs;
  say("  end to end: p50 %s p99 %s max %s (%zu samples; acked %lld, delivered %lld, late sends "
      "%lld, rejected %lld, %lld duplicates, %lld corrupted)",
      ms(percentile(l, 50)).c_str(), ms(percentile(l, 99)).c_str(),
      ms(l.empty() ? 0 : l.back()).c_str(), l.size(), static_cast<long long>(run.acked),
      static_cast<long long>(run.delivered), static_cast<long long>(run.load.lateSends),
      static_cast<long long>(run.load.rejected), static_cast<long long>(target.duplicates()),
      static_cast<long long>(target.corrupted()));
  if (!run.load.firstError.empty()) say("  first error: %s", run.load.firstError.c_str());
  relay->proc->stop();
  if (l.empty()) {
    report.notRun(label + " latency p99", goal, "no webhook reached the target");
    return;
  }
  auto ref = [](int64_t v) { return v > 0 ? ms(v) + " sqlite (b)" : "(b) not run"; };
  int64_t p99 = percentile(l, 99);
  report.add({label + " latency p50", ms(percentile(l, 50)), ref(refB.p50),
              ratioText(percentile(l, 50), refB.p50), "-", "n/a"});
  report.add({label + " latency p99", ms(p99), ref(refB.p99), ratioText(p99, refB.p99), goal,
              goalNs <= 0     ? "n/a"
              : p99 <= goalNs ? "yes"
                              : "no"});
  report.add({label + " latency max", ms(l.back()), ref(refB.max), ratioText(l.back(), refB.max),
              "-", "n/a"});
  bool intact = run.delivered == run.acked && target.duplicates() + target.corrupted() == 0;
  report.add({label + " delivered/acked",
              std::to_string(run.delivered) + "/" + std::to_string(run.acked) + " (" +
                  std::to_string(target.duplicates()) + " dup, " +
                  std::to_string(target.corrupted()) + " corrupt)",
              "-", "-", "all, once, unchanged", intact ? "yes" : "no"});
}

void partFOne(const Options& o, SharedDbEdges& edges, const LatencyFigures& refB, Report& report) {
  say("(f) end-to-end latency on MariaDB, one edge: %.0f webhooks/s for %.1f s, relay on the "
      "same edge, timed as in part b",
      o.latencyRate, o.latencySeconds);
  std::string why;
  Edge* a = edges.get(0, why);
  if (!a) {
    report.notRun("(f) 1 edge latency p99", "-", why.substr(0, why.find('\n')));
    return;
  }
  partF(o, *a, *a, "(f) 1 edge", "relay-f1", kSeqDbLatencyOne, refB, 0, report);
}

void partFCross(const Options& o, SharedDbEdges& edges, const LatencyFigures& refB,
                Report& report) {
  say("(f) cross-edge latency: %.0f webhooks/s for %.1f s posted to edge A, relay connected to "
      "edge B (B's follower finds A's commits by polling the database)",
      o.latencyRate, o.latencySeconds);
  std::string why;
  Edge* a = edges.get(0, why);
  Edge* b = a ? edges.get(1, why) : nullptr;
  if (!b) {
    report.notRun("(f) A->B latency p99", "p99 <= " + ms(kCrossEdgeP99GoalNs),
                  why.substr(0, why.find('\n')));
    return;
  }
  partF(o, *a, *b, "(f) A->B", "relay-f2", kSeqDbLatencyCross, refB, kCrossEdgeP99GoalNs, report);
}

// The 1-minute load average: on a shared machine it says whether a figure is the product's or
// the neighbours'.
std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

template <typename F>
void timed(const char* part, F&& f) {
  int64_t start = nowNs();
  f();
  say("  %s took %.1f s; load average %s on %u cores", part, (nowNs() - start) / 1e9,
      loadAverage().c_str(), std::thread::hardware_concurrency());
}

int run(const Options& given) {
  Options o = given;
  ::signal(SIGPIPE, SIG_IGN);
  long files = raiseFileLimit();
  bool ownWorkDir = o.workDir.empty();
  if (ownWorkDir) {
    char tmpl[] = "/tmp/anm-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("could not create a work directory");
    o.workDir = tmpl;
  }
  std::filesystem::create_directories(o.workDir);
  say("anonymily bench%s: work dir %s, open files limit %ld, %u cores", o.quick ? " (quick)" : "",
      o.workDir.c_str(), files, std::thread::hardware_concurrency());

  Report report;
  measureSync(o, report);
  std::string why;
  auto edge = Edge::start(o, "edge", "", why);
  if (!edge) {
    say("could not start the edge: %s", why.c_str());
    report.notRun("all parts", "-", why.substr(0, why.find('\n')));
    report.print();
    return 2;
  }
  say("edge pid %d on 127.0.0.1:%u, VmRSS %ld KiB", edge->pid(), edge->port(),
      procStatusKiB(edge->pid(), "VmRSS"));

  // The ingest hook of parts a and c: Stripe with no timestamp window.
  auto hook = createHook(
      edge->port(),
      std::string("{\"provider\":\"stripe\",\"secret\":\"") + kSecret + "\",\"tolerance_s\":0}",
      why);
  double rateA = 0;
  double ceiling = 0;
  LatencyFigures latencyB;
  if (!hook) {
    say("could not create the ingest hook: %s", why.c_str());
    report.notRun("(a) ingest rate", "ratio >= 0.80", why);
  } else {
    std::string path = "/h/" + hook->id;
    bool c = o.parts.find('c') != std::string::npos;
    std::vector<Hook> streamHooks;
    if (c) timed("(c) memory", [&] { streamHooks = partCMemory(o, *edge, report); });
    if (o.parts.find('a') != std::string::npos) {
      timed("(a)", [&] { rateA = partA(o, *edge, path, report, ceiling); });
    }
    if (c && !streamHooks.empty()) {
      timed("(c) ingest", [&] { partCIngest(o, *edge, streamHooks, path, rateA, report); });
    }
    if (o.parts.find('b') != std::string::npos) {
      timed("(b)", [&] { latencyB = partB(o, *edge, report); });
    }
  }
  if (o.parts.find('d') != std::string::npos) {
    timed("(d)", [&] { partD(o, *edge, report); });
    timed("(d) catch-up", [&] { partDCatchUp(o, *edge, report); });
  }

  bool edgeAlive = edge->alive();
  int status = edge->process().stop();
  say("edge %s (wait status %d); logs in %s", edgeAlive ? "stopped" : "had exited", status,
      o.workDir.c_str());

  // The MariaDB parts, with the SQLite edge stopped. One-edge figures come first, while the
  // second edge has not been started.
  bool e = o.parts.find('e') != std::string::npos;
  bool f = o.parts.find('f') != std::string::npos;
  if (e || f) {
    auto db = openSharedDb(o, why);
    if (!db) {
      say("(e), (f) not run: %s", why.c_str());
      if (e) report.notRun("(e) 1 edge ingest", ">= 10000/s", why);
      if (f) report.notRun("(f) A->B latency p99", "p99 <= 50 ms", why);
    } else {
      SharedDbEdges dbEdges(o);
      double rateOne = 0;
      if (e) {
        timed("(e) 1 edge", [&] { rateOne = partEOne(o, *db, dbEdges, rateA, ceiling, report); });
      }
      if (f) timed("(f) 1 edge", [&] { partFOne(o, dbEdges, latencyB, report); });
      if (e) {
        timed("(e) 2 edges", [&] { partETwo(o, *db, dbEdges, rateA, ceiling, rateOne, report); });
      }
      if (f) timed("(f) A->B", [&] { partFCross(o, dbEdges, latencyB, report); });
      dbEdges.stopAll();
    }
  }
  std::printf("\n");
  report.print();
  std::printf(
      "\nratios compare with references measured in this run; goals are reported, "
      "never asserted.\n");
  if (ownWorkDir && !o.keep) {
    std::error_code ec;
    std::filesystem::remove_all(o.workDir, ec);
  }
  return report.anyNotRun() ? 2 : 0;
}

}  // namespace
}  // namespace anm::bench

int main(int argc, char** argv) {
  try {
    auto options = anm::bench::parseArgs(argc, argv);
    if (!options) return 0;
    return anm::bench::run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anonymily-bench: %s\n", e.what());
    return 1;
  }
}
