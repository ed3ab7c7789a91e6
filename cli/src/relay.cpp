// cli/src/relay.cpp: stream reading, reconnection with backoff, forwarding in order.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/relay.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Timestamp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "cli/src/api_client.h"
#include "cli/src/config_store.h"
#include "cli/src/connection.h"
#include "cli/src/delivery_reporter.h"
#include "cli/src/event_output.h"
#include "cli/src/forwarder.h"
#include "cli/src/http_response.h"
#include "cli/src/sse_parser.h"
#include "cli/src/stream_event.h"

namespace anm::cli {

namespace {

constexpr std::chrono::seconds kStreamConnectTimeout{10};
// The saver looks at the position this often and writes it when it moved: a burst costs at most
// one fsync per interval, and a relay that went idle has its place on disk within one interval.
constexpr std::chrono::milliseconds kCursorSaveInterval{200};
constexpr size_t kStreamBufferBytes = 64 * 1024;

// A stream counts as healthy (and resets the backoff) once it carried an event or stayed up
// this long; an edge that accepts and drops at once keeps backing off.
constexpr std::chrono::seconds kHealthyStreamAge{10};

// kAuthRefused: 401 or 404 to a member's JWT, which one renewal may cure.
enum class StreamEnd { kDropped, kStopped, kRefused, kAuthRefused };

// The delivery error reported for an event the edge holds but could not read.
constexpr char kUnreadableError[] = "unreadable at the edge";

DeliveryReporter::Options reporterOptions(MemberSession* session) {
  DeliveryReporter::Options options;
  options.session = session;
  return options;
}

// Keeps the position in <config>/hooks/ up to date from its own thread: a save ends in an fsync,
// which can take milliseconds that every queued event would otherwise wait for.
class CursorSaver {
 public:
  CursorSaver(std::string hookId, std::string target, int64_t initial, bool enabled)
      : hookId_(std::move(hookId)),
        target_(std::move(target)),
        latest_(initial),
        enabled_(enabled) {}

  ~CursorSaver() { stop(); }

  void start() {
    if (enabled_) thread_ = std::thread([this] { run(); });
  }

  /// Records the position; on disk within kCursorSaveInterval (plus the write itself) even when
  /// no further event comes. Never blocks on the disk.
  void update(int64_t lastEventId) { latest_.store(lastEventId, std::memory_order_relaxed); }

  /// Stops the thread and writes the last position on the calling thread.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    save();
  }

 private:
  // Wakes on a timer, not on events: the forwarding thread only stores an integer, and a
  // position that stopped moving is still written on the next tick.
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, kCursorSaveInterval, [this] { return stopping_; });
      if (stopping_) return;
      lock.unlock();
      save();
      lock.lock();
    }
  }

  void save() {
    const int64_t position = latest_.load(std::memory_order_relaxed);
    if (!enabled_ || position == saved_) return;
    try {
      anm::cli::saveCursor(hookId_, target_, position);
      saved_ = position;
    } catch (const std::exception& e) {
      Poco::Logger::get("anm.cli").warning("could not save stream position reason=\"%s\"",
                                           std::string(e.what()));
    }
  }

  const std::string hookId_;
  const std::string target_;
  std::atomic<int64_t> latest_;
  int64_t saved_ = -1;  ///< touched by the saving thread, then by stop() after the join
  const bool enabled_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

class Relay {
 public:
  Relay(const RelayOptions& options, const std::atomic<bool>& stop, std::FILE* out)
      : options_(options),
        stop_(stop),
        out_(out),
        log_(Poco::Logger::get("anm.cli")),
        forwarder_(options.target, options.timeout),
        reporter_(options.edge, options.hookId, options.token, options.relayId,
                  reporterOptions(options.session)),
        cursor_(options.hookId, options.targetText, options.lastEventId, options.saveCursor),
        lastEventId_(options.lastEventId),
        random_(std::random_device{}()) {}

  int run() {
    reporter_.start();
    cursor_.start();
    int attempt = 0;
    int exitCode = 0;
    while (!stop_.load()) {
      bool healthy = false;
      std::string reason;
      const StreamEnd end = holdStream(healthy, reason);
      if (end == StreamEnd::kAuthRefused && renewAfterRefusal()) continue;
      if (end == StreamEnd::kRefused || end == StreamEnd::kAuthRefused) {
        exitCode = 1;
        break;
      }
      retriedRefusal_ = false;
      if (end == StreamEnd::kStopped || stop_.load()) break;
      if (healthy) attempt = 0;

      // An edge that said it is stopping is not a failure: reconnect at once, and back off
      // only if nobody answers then.
      if (edgeStopping_) {
        edgeStopping_ = false;
        attempt = 0;
        log_.information("edge is stopping, reconnecting last_event_id=%Ld",
                         static_cast<Poco::Int64>(lastEventId_));
        continue;
      }

      const std::chrono::milliseconds delay =
          backoffDelay(attempt, options_.backoffStart, options_.backoffCap, random_);
      ++attempt;
      log_.warning(
          "stream lost reason=\"%s\" reconnecting attempt=%d delay_ms=%Ld last_event_id=%Ld",
          reason, attempt, static_cast<Poco::Int64>(delay.count()),
          static_cast<Poco::Int64>(lastEventId_));
      sleepUnlessStopped(delay);
    }

    // Leave a resumable cursor and every report we can deliver.
    cursor_.stop();
    reporter_.stop();
    log_.information("relay stopped last_event_id=%Ld reports_sent=%Lu reports_dropped=%Lu",
                     static_cast<Poco::Int64>(lastEventId_),
                     static_cast<Poco::UInt64>(reporter_.sent()),
                     static_cast<Poco::UInt64>(reporter_.dropped()));
    return exitCode;
  }

 private:
  void sleepUnlessStopped(std::chrono::milliseconds delay) {
    const Clock::time_point until = Clock::now() + delay;
    while (!stop_.load() && Clock::now() < until) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(std::chrono::milliseconds(50), until - Clock::now()));
    }
  }

  // Prints why the relay ends, in the edge's words, where the user looks first.
  void fatal(const std::string& message) {
    std::fprintf(stderr, "anonymily: error: %s\n", message.c_str());
    std::fflush(stderr);
  }

  // The bearer value for the next stream: the member's JWT, renewed when it nears expiry, or
  // the hook's relay token. Empty when the sign-in failed for good (already reported).
  std::string streamBearer() {
    if (options_.session == nullptr) return options_.token;
    try {
      bearer_ = options_.session->accessToken();
      return bearer_;
    } catch (const SessionError& e) {
      log_.error("could not renew the access token status=%d hook=%s", e.status(), options_.hookId);
      fatal(e.what());
      return "";
    }
  }

  // After a 401/404 with a JWT: one renewal and an immediate retry. False when it was tried
  // already since the last stream that worked, or the renewal failed.
  bool renewAfterRefusal() {
    if (options_.session == nullptr || retriedRefusal_) {
      fatal("the edge refused the stream of hook " + options_.hookId + ": " + refusal_);
      return false;
    }
    retriedRefusal_ = true;
    try {
      bearer_ = options_.session->renewAfterRefusal(bearer_);
      return true;
    } catch (const SessionError& e) {
      fatal(e.what());
    } catch (const NetError& e) {
      // The edge went away meanwhile: the next stream attempt renews again.
      log_.warning("could not renew the access token reason=\"%s\"", e.word());
      retriedRefusal_ = false;
      return true;
    }
    return false;
  }

  StreamEnd holdStream(bool& healthy, std::string& reason) {
    const Clock::time_point opened = Clock::now();
    bool sawEvent = false;
    std::string replaced;  // why the edge gave the hook's live relay to another stream
    try {
      // The JWT is renewed here, before each connect, when it nears expiry.
      const std::string bearer = retriedRefusal_ ? bearer_ : streamBearer();
      if (bearer.empty()) return StreamEnd::kRefused;

      // Open the stream, resuming after the last event we forwarded.
      const Clock::time_point connectDeadline = Clock::now() + kStreamConnectTimeout;
      Connection connection(options_.edge, connectDeadline, kStreamBufferBytes);
      connection.setStopFlag(&stop_);
      // A proxy in front of the edge may hold frames back until our ACK; never delay it.
      connection.setQuickAck(true);
      std::string request = "GET " + options_.edge.basePath() + "/api/v1/hooks/" +
                            encodeSegment(options_.hookId) + "/stream HTTP/1.1\r\n";
      request += "Host: " + options_.edge.authority() + "\r\n";
      request += "Authorization: Bearer " + bearer + "\r\n";
      // Names this relay for the edge's one-live-relay rule of the free plan.
      request += "X-Anonymily-Relay: " + options_.relayId + "\r\n";
      request += "Accept: text/event-stream\r\nCache-Control: no-cache\r\n";
      request += "User-Agent: anonymily/0.1\r\n";
      if (lastEventId_ > 0) request += "Last-Event-ID: " + std::to_string(lastEventId_) + "\r\n";
      request += "\r\n";
      connection.writeAll(request, connectDeadline);
      const ResponseHead head = readResponseHead(connection, connectDeadline);

      // A refusal of the hook or token will not change by retrying.
      if (head.status != 200) {
        std::string body;
        BodyReader reader(connection, head, false);
        char chunk[4096];
        size_t n = 0;
        while (body.size() < 4096 && (n = reader.read(chunk, sizeof chunk, connectDeadline)) > 0) {
          body.append(chunk, n);
        }
        ApiResponse answer{head.status, body};
        if (head.status == 404 || head.status == 401 || head.status == 403 || head.status == 409) {
          log_.error("edge refused the stream status=%d error=\"%s\" hook=%s", head.status,
                     answer.errorText(), options_.hookId);
          refusal_ = answer.errorText();
          if (head.status == 409 || head.status == 403) {
            fatal(refusal_);
            return StreamEnd::kRefused;
          }
          return options_.session != nullptr ? StreamEnd::kAuthRefused : StreamEnd::kRefused;
        }
        reason = "status " + std::to_string(head.status) + ": " + answer.errorText();
        return StreamEnd::kDropped;
      }
      log_.information("stream connected hook=%s last_event_id=%Ld", options_.hookId,
                       static_cast<Poco::Int64>(lastEventId_));

      // Read and dispatch; a quiet stream past the idle timeout is taken as dead.
      BodyReader body(connection, head, false);
      SseParser parser;
      std::vector<char> buffer(kStreamBufferBytes);
      const SseParser::Callback onEvent = [&](SseEvent& event) {
        if (stop_.load()) return false;
        if (event.type == "unreadable") {
          sawEvent = true;
          handleUnreadable(event);
          return !stop_.load();
        }
        if (event.type == "shutdown") {
          // The edge is stopping and closes the stream next; another edge behind the same
          // address, or this one restarted, takes the relay at once.
          edgeStopping_ = true;
          return true;
        }
        if (event.type == "replaced") {
          // Another stream is the hook's one live relay now; reconnecting would only take the
          // hook back from it, over and over.
          replaced = ApiResponse{409, event.data}.errorText();
          return false;
        }
        if (event.type != "webhook") return true;
        sawEvent = true;
        handleEvent(event);
        return !stop_.load();
      };
      for (;;) {
        const size_t n =
            body.read(buffer.data(), buffer.size(), Clock::now() + options_.idleTimeout);
        if (n == 0) {
          reason = "stream ended";
          break;
        }
        if (parser.feed(buffer.data(), n, onEvent)) continue;
        if (replaced.empty()) return StreamEnd::kStopped;
        log_.error("edge closed the stream error=\"%s\" hook=%s", replaced, options_.hookId);
        fatal(replaced);
        return StreamEnd::kRefused;
      }
    } catch (const NetError& e) {
      if (e.kind() == NetErrorKind::kStopped) return StreamEnd::kStopped;
      reason = e.kind() == NetErrorKind::kTimeout
                   ? "no data within the idle timeout or connect timeout"
                   : e.word();
    }
    healthy = sawEvent || Clock::now() - opened >= kHealthyStreamAge;
    return StreamEnd::kDropped;
  }

  // The edge holds an event it cannot read (a key it lacks, a damaged record): say so, report
  // it, and move on so that one bad record does not stop every later event.
  void handleUnreadable(const SseEvent& frame) {
    long long id = 0;
    std::string message = frame.data;
    try {
      id = frame.id.empty() ? 0 : std::stoll(frame.id);
    } catch (const std::exception&) {
      id = 0;
    }
    try {
      Poco::JSON::Parser parser;
      const auto object = parser.parse(frame.data).extract<Poco::JSON::Object::Ptr>();
      if (!object.isNull()) {
        if (id == 0 && object->has("id")) id = object->getValue<int64_t>("id");
        for (const char* key : {"error", "message", "reason"}) {
          if (object->has(key) && !object->isNull(key)) {
            message = object->get(key).toString();
            break;
          }
        }
      }
    } catch (const Poco::Exception&) {
      // Not JSON: the frame's text is the message.
    }
    if (id <= lastEventId_) return;
    log_.error("event unreadable at the edge event_id=%Ld error=\"%s\"",
               static_cast<Poco::Int64>(id), printableText(message));
    reporter_.enqueue(DeliveryReport{id, 0, 0, kUnreadableError});
    lastEventId_ = id;
    cursor_.update(lastEventId_);
  }

  void handleEvent(SseEvent& frame) {
    // The id from the SSE frame; the JSON carries the same one.
    long long frameId = 0;
    try {
      frameId = frame.id.empty() ? 0 : std::stoll(frame.id);
    } catch (const std::exception&) {
      frameId = 0;
    }

    StreamEvent event;
    std::string error;
    bool parsed = false;
    if (frame.oversized) {
      error = "event too large";
    } else {
      parsed = parseStreamEvent(frame.data, event, error);
    }
    if (!parsed) {
      // Keep our place in the stream; the event stays replayable from the edge.
      if (frameId <= lastEventId_) return;
      log_.error("could not read event event_id=%Ld reason=\"%s\"",
                 static_cast<Poco::Int64>(frameId), error);
      reporter_.enqueue(DeliveryReport{frameId, 0, 0, "invalid event: " + error});
      lastEventId_ = frameId;
      cursor_.update(lastEventId_);
      return;
    }

    // The edge promises no duplicates; this guards the promise we make to the target.
    if (event.id <= lastEventId_) return;

    const Poco::Timestamp started;
    const DeliveryResult result = forwarder_.forward(event.request);
    lastEventId_ = event.id;
    DeliveryReport report{event.id, result.status, result.durationMs, result.error};
    report.phase = result.phase;
    report.timeoutMs = options_.timeout.count();
    report.targetHttps = options_.target.tls();
    report.startedAtMs = result.startedAtMs;
    report.responseExcerpt = result.responseExcerpt;
    report.location = result.location;
    reporter_.enqueue(std::move(report));
    if (!options_.quiet) {
      const std::string line = options_.json ? formatEventJson(event, result, started)
                                             : formatEventLine(event, result, started);
      std::fwrite(line.data(), 1, line.size(), out_);
      std::fputc('\n', out_);
      std::fflush(out_);
    }
    cursor_.update(lastEventId_);
  }

  const RelayOptions& options_;
  const std::atomic<bool>& stop_;
  std::FILE* out_;
  Poco::Logger& log_;
  Forwarder forwarder_;
  DeliveryReporter reporter_;
  CursorSaver cursor_;
  int64_t lastEventId_;
  std::mt19937_64 random_;
  std::string bearer_;           ///< the JWT of the last stream request (member sessions)
  std::string refusal_;          ///< the edge's words for the last refused stream
  bool retriedRefusal_ = false;  ///< a renewal after a refusal was tried and not yet proven
  bool edgeStopping_ = false;    ///< the edge said it is stopping; the next stream is no retry
};

}  // namespace

int runRelay(const RelayOptions& options, const std::atomic<bool>& stop, std::FILE* out) {
  Relay relay(options, stop, out);
  return relay.run();
}

std::chrono::milliseconds backoffDelay(int attempt, std::chrono::milliseconds start,
                                       std::chrono::milliseconds cap, std::mt19937_64& random) {
  // Exponential backoff with jitter, so that many relays do not come back in step.
  const int64_t base = std::min<int64_t>(cap.count(), start.count() << std::clamp(attempt, 0, 16));
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(random));
}

std::string newRelayId() {
  std::random_device device;
  std::uniform_int_distribution<uint64_t> digits;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(digits(device)));
  return text;
}

}  // namespace anm::cli
