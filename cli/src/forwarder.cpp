// cli/src/forwarder.cpp: one delivery to the local target, with keep-alive and a deadline.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/forwarder.h"

#include <strings.h>

#include "cli/src/event_output.h"
#include "cli/src/http_response.h"

namespace anm::cli {

Forwarder::Forwarder(Url target, std::chrono::milliseconds timeout)
    : target_(std::move(target)), timeout_(timeout) {}

Forwarder::~Forwarder() = default;

DeliveryResult Forwarder::forward(const ForwardRequest& request) {
  const Clock::time_point start = Clock::now();
  const int64_t startedAtMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const Clock::time_point deadline = start + timeout_;
  auto finish = [&](DeliveryResult result) {
    result.durationMs =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    result.startedAtMs = startedAtMs;
    return result;
  };

  // A request that cannot be written faithfully is not sent at all.
  std::string head;
  std::string error;
  if (!buildRequestHead(target_, request, head, error)) {
    DeliveryResult refused;
    refused.error = error;
    return finish(refused);
  }

  // A kept-alive connection may have been closed by the target while idle; a request that
  // got no byte back on such a connection is sent once more on a fresh one.
  bool retryable = false;
  DeliveryResult result = attempt(head, request, deadline, retryable);
  if (retryable && Clock::now() < deadline) result = attempt(head, request, deadline, retryable);
  return finish(result);
}

DeliveryResult Forwarder::attempt(const std::string& head, const ForwardRequest& request,
                                  Clock::time_point deadline, bool& retryable) {
  retryable = false;
  bool reused = false;
  try {
    if (connection_ && connection_->stale()) connection_.reset();
    if (connection_) {
      reused = true;
    } else {
      connection_ = std::make_unique<Connection>(target_, deadline);
      // Many local servers write a response's head and body separately with Nagle on; an
      // immediate ACK of the head lets the body follow at once instead of ~40 ms later.
      connection_->setQuickAck(true);
      ++opened_;
    }
    const uint64_t receivedBefore = connection_->bytesReceived();

    // Send, then read the answer; the body is read only to keep the connection usable.
    ResponseHead response;
    try {
      // Head and body in one gathered write: a target never waits for the second half.
      connection_->writeAll(head, request.body, deadline);
      response = readResponseHead(*connection_, deadline);
    } catch (const NetError& e) {
      const bool silent = connection_->bytesReceived() == receivedBefore;
      if (reused && silent &&
          (e.kind() == NetErrorKind::kClosed || e.kind() == NetErrorKind::kReset)) {
        retryable = true;
      }
      throw;
    }
    // The start of the body is kept for the report; the rest is read only to keep the
    // connection usable, and dropped as it comes.
    BodyReader body(*connection_, response, strcasecmp(request.method.c_str(), "HEAD") == 0);
    std::string excerpt(kResponseExcerptBytes, '\0');
    size_t kept = 0;
    while (kept < excerpt.size()) {
      const size_t n = body.read(excerpt.data() + kept, excerpt.size() - kept, deadline);
      if (n == 0) break;
      kept += n;
    }
    excerpt.resize(kept);
    body.discard(deadline);

    // Keep the connection only when both sides allow it and the body had a known end.
    const bool keep = body.framing() != BodyFraming::kUntilClose &&
                      !response.hasToken("Connection", "close") &&
                      (response.versionMinor >= 1 || response.hasToken("Connection", "keep-alive"));
    if (!keep) connection_.reset();

    DeliveryResult result;
    result.status = response.status;
    result.responseExcerpt = textExcerpt(excerpt, kResponseExcerptBytes);
    if (response.status >= 300 && response.status < 400) {
      result.location = textExcerpt(response.field("Location"), kLocationBytes);
    }
    return result;
  } catch (const NetError& e) {
    connection_.reset();
    DeliveryResult failed;
    failed.error = e.word();
    failed.phase = e.phase();
    return failed;
  }
}

}  // namespace anm::cli
