// cli/src/delivery_reporter.cpp: the background sender of delivery reports.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/delivery_reporter.h"

#include <Poco/Logger.h>

#include "cli/src/api_client.h"
#include "cli/src/event_output.h"

namespace anm::cli {

DeliveryReporter::DeliveryReporter(Url edge, std::string hookId, std::string token,
                                   std::string relayId, Options options)
    : edge_(std::move(edge)),
      hookId_(std::move(hookId)),
      token_(std::move(token)),
      relayId_(std::move(relayId)),
      options_(options) {}

DeliveryReporter::~DeliveryReporter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    flushDeadline_ = Clock::now();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DeliveryReporter::start() {
  thread_ = std::thread([this] { run(); });
}

void DeliveryReporter::enqueue(DeliveryReport report) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.size() >= options_.maxQueued) {
      queue_.pop_front();
      const uint64_t dropped = ++dropped_;
      // One warning per thousand keeps stderr readable while the edge is unreachable.
      if (dropped % 1000 == 1) {
        Poco::Logger::get("anm.cli").warning("dropping delivery reports queue_full=%z dropped=%Lu",
                                             options_.maxQueued,
                                             static_cast<Poco::UInt64>(dropped));
      }
    }
    queue_.push_back(std::move(report));

    // The thread waits either for a first report or for a batch to fill; nothing in between
    // is worth a wake-up.
    wake = queue_.size() == 1 || queue_.size() == options_.batchSize;
  }
  if (wake) wake_.notify_one();
}

void DeliveryReporter::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    flushDeadline_ = Clock::now() + options_.flushTimeout;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string DeliveryReporter::batchJson(const std::string& relayId,
                                        const std::deque<DeliveryReport>& batch) {
  std::string json = "{\"deliveries\":[";
  const std::string relay = jsonQuote(relayId);
  bool first = true;
  for (const DeliveryReport& report : batch) {
    if (!first) json += ',';
    first = false;
    json += "{\"event\":" + std::to_string(report.eventId) + ",\"relay\":" + relay +
            ",\"status\":" + std::to_string(report.status) +
            ",\"duration_ms\":" + std::to_string(report.durationMs) +
            ",\"error\":" + jsonQuote(report.error) + ",\"phase\":\"" + phaseName(report.phase) +
            "\",\"timeout_ms\":" + std::to_string(report.timeoutMs) +
            ",\"target_https\":" + (report.targetHttps ? "true" : "false") +
            ",\"started_at_ms\":" + std::to_string(report.startedAtMs) +
            ",\"response_excerpt\":" + jsonQuote(report.responseExcerpt) +
            ",\"location\":" + jsonQuote(report.location) + "}";
  }
  json += "]}";
  return json;
}

void DeliveryReporter::run() {
  Poco::Logger& log = Poco::Logger::get("anm.cli");
  ApiClient api(edge_, token_, options_.requestTimeout);
  const std::string path = "/api/v1/hooks/" + encodeSegment(hookId_) + "/deliveries";

  for (;;) {
    // Take up to one batch; whatever else arrives meanwhile waits for the next request.
    std::deque<DeliveryReport> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;

      // Let the batch fill for a moment; the reports of a burst then share one request.
      const Clock::time_point gathered = Clock::now() + options_.gatherDelay;
      wake_.wait_until(lock, gathered,
                       [this] { return stopping_ || queue_.size() >= options_.batchSize; });
      if (stopping_ && Clock::now() >= flushDeadline_) {
        dropped_ += queue_.size();
        log.warning("could not flush delivery reports left=%z", queue_.size());
        return;
      }
      const size_t n = std::min(queue_.size(), options_.batchSize);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }

    // Send with a few retries; a refusal (4xx) will not get better by retrying.
    const std::string body = batchJson(relayId_, batch);
    std::chrono::milliseconds delay = options_.firstRetryDelay;
    bool done = false;
    for (int attempt = 1; attempt <= options_.attempts && !done; ++attempt) {
      std::string problem;
      try {
        ++requests_;
        const ApiResponse response =
            options_.session != nullptr
                ? sendAsMember(*options_.session, api, "POST", path, body, true)
                : api.send("POST", path, body);
        if (response.status == 201 || response.status == 200) {
          sent_ += batch.size();
          done = true;
          break;
        }
        problem =
            "status=" + std::to_string(response.status) + " error=\"" + response.errorText() + "\"";
        if (response.status >= 400 && response.status < 500 && response.status != 408 &&
            response.status != 429) {
          log.error("edge refused delivery reports count=%z %s", batch.size(), problem);
          break;
        }
      } catch (const NetError& e) {
        problem = std::string("error=\"") + e.what() + "\"";
      } catch (const SessionError& e) {
        // The sign-in itself was refused: no retry brings the token back.
        log.error("edge refused delivery reports count=%z status=%d error=\"%s\"", batch.size(),
                  e.status(), std::string(e.what()));
        break;
      }
      log.warning("could not report deliveries count=%z attempt=%d %s", batch.size(), attempt,
                  problem);
      if (attempt == options_.attempts) break;

      // Wait before the next try, but give up waiting once a flush is out of time.
      std::unique_lock<std::mutex> lock(mutex_);
      const Clock::time_point until = Clock::now() + delay;
      wake_.wait_until(lock, until, [this] { return stopping_ && Clock::now() >= flushDeadline_; });
      if (stopping_ && Clock::now() >= flushDeadline_) break;
      delay *= 2;
    }
    if (!done) {
      dropped_ += batch.size();
      log.error("dropped delivery reports count=%z first_event=%Ld", batch.size(),
                static_cast<Poco::Int64>(batch.front().eventId));
    }
  }
}

}  // namespace anm::cli
