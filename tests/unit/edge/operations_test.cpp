// tests/unit/edge/operations_test.cpp: what operators' tools read: metrics in Prometheus' text
// format, the service manager's notify datagrams and the journal's line format.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Message.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/edge/log_setup.h"
#include "core/edge/metrics.h"
#include "core/edge/service_notify.h"

namespace anm::edge {
namespace {

// Sets an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) {
      ::unsetenv(name_);
    } else {
      ::setenv(name_, old_.c_str(), 1);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
};

// The sample lines of a rendering, "name{labels}" -> value, and the families HELP and TYPE name.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::vector<std::string> malformed;
};

Exposition parse(const std::string& text) {
  // Names, label sets with escaped quotes, then a float: the grammar of format 0.0.4.
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? )"
      R"(([-+]?[0-9.eE+-]+|\+Inf|NaN)$)");
  Exposition out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      out.helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const size_t nameEnd = line.find(' ', 7);
      out.types[line.substr(7, nameEnd - 7)] = line.substr(nameEnd + 1);
      continue;
    }
    std::smatch match;
    if (!std::regex_match(line, match, kSample)) {
      out.malformed.push_back(line);
      continue;
    }
    const size_t split = line.rfind(' ');
    out.samples[line.substr(0, split)] = std::stod(line.substr(split + 1));
  }
  return out;
}

// The family a sample belongs to: histograms add _bucket, _sum and _count.
std::string familyOf(std::string name) {
  name = name.substr(0, name.find('{'));
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
        name.find("duration_seconds") != std::string::npos) {
      return name.substr(0, name.size() - s.size());
    }
  }
  return name;
}

TEST(MetricsTest, RendersEveryFamilyWithHelpAndTypeInTheTextFormat) {
  Metrics metrics("1.2.3");
  metrics.webhookStored("stripe", store::Verdict::kValid, 0.002);
  MetricsReadings readings;
  readings.openStreams = 3;
  readings.pluginsLoaded = 5;
  readings.ready = true;

  const Exposition exposition = parse(metrics.render(readings));

  EXPECT_TRUE(exposition.malformed.empty()) << exposition.malformed.front();
  for (const auto& [sample, value] : exposition.samples) {
    const std::string family = familyOf(sample);
    EXPECT_EQ(exposition.helped.count(family), 1u) << "no HELP for " << sample;
    EXPECT_EQ(exposition.types.count(family), 1u) << "no TYPE for " << sample;
  }
  for (const char* family :
       {"anonymily_webhooks_received_total", "anonymily_webhooks_refused_total",
        "anonymily_ingest_duration_seconds", "anonymily_store_errors_total",
        "anonymily_relay_streams_open", "anonymily_deliveries_total", "anonymily_plugins_loaded",
        "anonymily_plugin_load_failures_total", "anonymily_ready", "anonymily_build_info"}) {
    EXPECT_EQ(exposition.helped.count(family), 1u) << family;
  }
  EXPECT_EQ(exposition.types.at("anonymily_ingest_duration_seconds"), "histogram");
  EXPECT_EQ(exposition.types.at("anonymily_webhooks_received_total"), "counter");
  EXPECT_EQ(exposition.types.at("anonymily_relay_streams_open"), "gauge");
  EXPECT_EQ(exposition.samples.at("anonymily_relay_streams_open"), 3);
  EXPECT_EQ(exposition.samples.at("anonymily_plugins_loaded"), 5);
  EXPECT_EQ(exposition.samples.at("anonymily_ready"), 1);
  EXPECT_EQ(exposition.samples.at("anonymily_build_info{version=\"1.2.3\"}"), 1);
}

TEST(MetricsTest, CountsWebhooksByProviderAndVerdictAndRefusalsByReason) {
  Metrics metrics("1");
  metrics.webhookStored("stripe", store::Verdict::kValid, 0.001);
  metrics.webhookStored("stripe", store::Verdict::kValid, 0.001);
  metrics.webhookStored("stripe", store::Verdict::kInvalid, 0.001);
  metrics.webhookStored("none", store::Verdict::kUnsigned, 0.001);
  metrics.webhookRefused(IngestRefusal::kRateLimited);
  metrics.webhookRefused(IngestRefusal::kProviderUnavailable);
  metrics.webhookRefused(IngestRefusal::kProviderUnavailable);
  metrics.storeError();

  const auto samples = parse(metrics.render({})).samples;

  EXPECT_EQ(samples.at("anonymily_webhooks_received_total{provider=\"stripe\",verdict=\"valid\"}"),
            2);
  EXPECT_EQ(
      samples.at("anonymily_webhooks_received_total{provider=\"stripe\",verdict=\"invalid\"}"), 1);
  EXPECT_EQ(samples.at("anonymily_webhooks_received_total{provider=\"none\",verdict=\"unsigned\"}"),
            1);
  EXPECT_EQ(samples.at("anonymily_webhooks_refused_total{reason=\"rate_limited\"}"), 1);
  EXPECT_EQ(samples.at("anonymily_webhooks_refused_total{reason=\"provider_unavailable\"}"), 2);
  EXPECT_EQ(samples.at("anonymily_webhooks_refused_total{reason=\"unknown_hook\"}"), 0);
  EXPECT_EQ(samples.at("anonymily_store_errors_total{path=\"request\"}"), 1);
}

// Each reason has a counter of its own, and the family lists exactly the reasons the edge has:
// a name past the end of the counters would read whatever memory follows them (#5).
TEST(MetricsTest, EachRefusalReasonCountsOnlyItself) {
  const std::vector<std::pair<IngestRefusal, std::string>> reasons = {
      {IngestRefusal::kUnknownHook, "unknown_hook"},
      {IngestRefusal::kRateLimited, "rate_limited"},
      {IngestRefusal::kTooLarge, "too_large"},
      {IngestRefusal::kMalformed, "malformed"},
      {IngestRefusal::kStoreUnavailable, "store_unavailable"},
      {IngestRefusal::kProviderUnavailable, "provider_unavailable"}};
  const std::string prefix = "anonymily_webhooks_refused_total{reason=\"";
  for (const auto& [why, name] : reasons) {
    Metrics metrics("1");
    metrics.webhookRefused(why);
    // Store errors and deliveries are counted beside the refusals, never in them.
    metrics.storeError();
    metrics.deliveryReported(500);

    size_t listed = 0;
    for (const auto& [sample, value] : parse(metrics.render({})).samples) {
      if (sample.rfind(prefix, 0) != 0) continue;
      ++listed;
      EXPECT_EQ(value, sample == prefix + name + "\"}" ? 1 : 0) << sample << " after " << name;
    }
    EXPECT_EQ(listed, reasons.size()) << "reasons listed after " << name;
  }
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndEndWithAllObservations) {
  Metrics metrics("1");
  metrics.webhookStored("p", store::Verdict::kValid, 0.0003);  // first bucket
  metrics.webhookStored("p", store::Verdict::kValid, 0.003);   // le 0.005
  metrics.webhookStored("p", store::Verdict::kValid, 0.003);
  metrics.webhookStored("p", store::Verdict::kValid, 42.0);  // past the last bound

  const auto samples = parse(metrics.render({})).samples;
  const std::string bucket = "anonymily_ingest_duration_seconds_bucket{le=\"";

  EXPECT_EQ(samples.at(bucket + "0.0005\"}"), 1);
  EXPECT_EQ(samples.at(bucket + "0.0025\"}"), 1);
  EXPECT_EQ(samples.at(bucket + "0.005\"}"), 3);
  EXPECT_EQ(samples.at(bucket + "10\"}"), 3);
  EXPECT_EQ(samples.at(bucket + "+Inf\"}"), 4);
  EXPECT_EQ(samples.at("anonymily_ingest_duration_seconds_count"), 4);
  EXPECT_NEAR(samples.at("anonymily_ingest_duration_seconds_sum"), 42.0063, 1e-4);
  double previous = 0;
  for (double le : Metrics::kLatencyBuckets) {
    const double count = samples.at(bucket + (std::ostringstream() << le).str() + "\"}");
    EXPECT_GE(count, previous) << "le=" << le;
    previous = count;
  }
}

TEST(MetricsTest, DeliveriesAreCountedByStatusClass) {
  Metrics metrics("1");
  for (int32_t status : {200, 204, 301, 401, 404, 500, 503, 0}) metrics.deliveryReported(status);

  const auto samples = parse(metrics.render({})).samples;

  EXPECT_EQ(samples.at("anonymily_deliveries_total{status=\"2xx\"}"), 2);
  EXPECT_EQ(samples.at("anonymily_deliveries_total{status=\"3xx\"}"), 1);
  EXPECT_EQ(samples.at("anonymily_deliveries_total{status=\"4xx\"}"), 2);
  EXPECT_EQ(samples.at("anonymily_deliveries_total{status=\"5xx\"}"), 2);
  EXPECT_EQ(samples.at("anonymily_deliveries_total{status=\"no_response\"}"), 1);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics metrics("1");
  metrics.webhookStored("a\"b\\c\nd", store::Verdict::kValid, 0.001);

  const std::string text = metrics.render({});

  EXPECT_NE(text.find(R"(provider="a\"b\\c\nd")"), std::string::npos) << text;
  EXPECT_TRUE(parse(text).malformed.empty());
}

// A datagram socket bound where the edge is told to send, as a service manager binds it.
class NotifyListener {
 public:
  explicit NotifyListener(bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (abstract) {
      name_ = "@anm-notify-test-" + std::to_string(::getpid());
    } else {
      char pattern[] = "/tmp/anm-notify-XXXXXX";
      dir_ = ::mkdtemp(pattern);
      name_ = dir_ + "/notify.sock";
    }
    std::memcpy(address.sun_path, name_.data(), name_.size());
    if (abstract) address.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0;
    timeval wait{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  }
  ~NotifyListener() {
    ::close(fd_);
    if (!dir_.empty()) {
      ::unlink(name_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  bool bound() const { return bound_; }
  const std::string& name() const { return name_; }

  std::string receive() {
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
  }

 private:
  int fd_ = -1;
  std::string dir_;
  std::string name_;
  bool bound_ = false;
};

TEST(ServiceNotifierTest, SendsEachStateAsOneDatagramToAPathSocket) {
  NotifyListener listener(false);
  ASSERT_TRUE(listener.bound());
  ScopedEnv socket("NOTIFY_SOCKET", listener.name());

  ServiceNotifier notifier;
  ASSERT_TRUE(notifier.enabled());
  EXPECT_TRUE(notifier.notify("READY=1\nSTATUS=serving"));
  EXPECT_TRUE(notifier.notify("STOPPING=1"));

  EXPECT_EQ(listener.receive(), "READY=1\nSTATUS=serving");
  EXPECT_EQ(listener.receive(), "STOPPING=1");
}

TEST(ServiceNotifierTest, ReachesAnAbstractSocket) {
  NotifyListener listener(true);
  ASSERT_TRUE(listener.bound());
  ScopedEnv socket("NOTIFY_SOCKET", listener.name());

  ServiceNotifier notifier;
  EXPECT_TRUE(notifier.notify("READY=1"));
  EXPECT_EQ(listener.receive(), "READY=1");
}

TEST(ServiceNotifierTest, DoesNothingWithoutAManagerAndRefusesARelativePath) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(ServiceNotifier().enabled());
  EXPECT_FALSE(ServiceNotifier().notify("READY=1"));

  ScopedEnv socket("NOTIFY_SOCKET", "relative/notify.sock");
  EXPECT_FALSE(ServiceNotifier().notify("READY=1"));
}

TEST(ServiceNotifierTest, WatchdogIntervalIsHalfTheTimeoutAndOnlyForThisProcess) {
  ScopedEnv usec("WATCHDOG_USEC", "30000000");
  {
    ::unsetenv("WATCHDOG_PID");
    const auto interval = ServiceNotifier().watchdogInterval();
    ASSERT_TRUE(interval.has_value());
    EXPECT_EQ(interval->count(), 15000);
  }
  {
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
    EXPECT_TRUE(ServiceNotifier().watchdogInterval().has_value());
  }
  {
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
    EXPECT_FALSE(ServiceNotifier().watchdogInterval().has_value());
  }
  {
    ScopedEnv bad("WATCHDOG_USEC", "soon");
    EXPECT_FALSE(ServiceNotifier().watchdogInterval().has_value());
  }
}

TEST(JournalFormatTest, LinesCarryTheSyslogPriorityAndNoTime) {
  JournalFormatter formatter;
  std::string text;
  formatter.format(Poco::Message("anm.http", "webhook refused hook=x", Poco::Message::PRIO_ERROR),
                   text);
  EXPECT_EQ(text, "<3>anm.http: webhook refused hook=x");

  const std::map<Poco::Message::Priority, int> expected = {
      {Poco::Message::PRIO_FATAL, 2},  {Poco::Message::PRIO_CRITICAL, 2},
      {Poco::Message::PRIO_ERROR, 3},  {Poco::Message::PRIO_WARNING, 4},
      {Poco::Message::PRIO_NOTICE, 5}, {Poco::Message::PRIO_INFORMATION, 6},
      {Poco::Message::PRIO_DEBUG, 7},  {Poco::Message::PRIO_TRACE, 7}};
  for (const auto& [priority, syslog] : expected) {
    EXPECT_EQ(JournalFormatter::syslogPriority(priority), syslog) << priority;
  }
}

TEST(JournalFormatTest, StderrIsTheJournalOnlyWhenItsDeviceAndInodeMatch) {
  struct stat info {};
  ASSERT_EQ(::fstat(2, &info), 0);
  const std::string self = std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino);
  {
    ScopedEnv stream("JOURNAL_STREAM", self);
    EXPECT_TRUE(stderrIsJournal());
  }
  {
    ScopedEnv stream("JOURNAL_STREAM",
                     std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino + 1));
    EXPECT_FALSE(stderrIsJournal());
  }
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderrIsJournal());
}

}  // namespace
}  // namespace anm::edge
