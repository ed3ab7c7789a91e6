// bench/http_load.h: a load generator over raw keep-alive HTTP/1.1 connections to loopback.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace anm::bench {

/// Nanoseconds on the steady clock; every timestamp the bench compares comes from here.
int64_t nowNs();

/// What to send, how hard and for how long. Every connection goes to 127.0.0.1:port.
struct LoadPlan {
  uint16_t port = 0;
  /// When not empty, connection i goes to ports[i % ports.size()] instead of port, so that one
  /// generator can split the same load over several servers.
  std::vector<uint16_t> ports;
  int connections = 64;
  int threads = 1;        ///< client threads; connections are spread over them
  double ratePerSec = 0;  ///< 0: closed loop (each connection sends again on its answer)
  std::chrono::nanoseconds warmup{0};  ///< answers in this first span are not counted
  std::chrono::nanoseconds duration{std::chrono::seconds(5)};  ///< measured span
  int64_t maxRequests = -1;  ///< stop sending after this many; -1: no limit
  std::chrono::nanoseconds drainTimeout{std::chrono::seconds(10)};
  int64_t firstSeq = 1;  ///< requests are numbered from here, one number per request

  /// Builds the complete request bytes for one sequence number. Called on client threads.
  std::function<std::string(int64_t seq)> makeRequest;

  /// Optional, used instead of makeRequest when set: also told which port the request goes to.
  std::function<std::string(int64_t seq, uint16_t port)> makeRequestTo;

  /// Optional: told just before the first byte of a request is written.
  std::function<void(int64_t seq, int64_t sentNs)> onSent;

  /// Optional: told about every complete answer, from the client thread that read it.
  std::function<void(int64_t seq, int status, std::string_view body)> onResponse;
};

struct LoadResult {
  int64_t sent = 0;        ///< requests whose bytes were written
  int64_t acked = 0;       ///< answered 2xx
  int64_t rejected = 0;    ///< answered with another status
  int64_t failed = 0;      ///< connection lost before the answer came
  int64_t unanswered = 0;  ///< still waiting when the drain timeout ended the run
  int64_t ackedInWindow = 0;
  double windowSeconds = 0;
  double sendSeconds = 0;        ///< from the first send to the last
  int64_t lateSends = 0;         ///< paced runs: sends more than 2 ms behind schedule
  int64_t minPerConnection = 0;  ///< answers in the window on the least served connection
  int64_t maxPerConnection = 0;
  std::map<int, int64_t> statuses;
  std::map<uint16_t, int64_t> ackedInWindowByPort;  ///< the window's 2xx answers per server
  std::string firstError;

  double ackRate() const { return windowSeconds > 0 ? ackedInWindow / windowSeconds : 0; }
};

/// Runs the plan to completion: sends for warmup + duration (or until maxRequests), then
/// waits up to drainTimeout for the answers still outstanding.
LoadResult runLoad(const LoadPlan& plan);

/// One blocking request on a fresh connection; returns the status (0 on failure) and body.
struct SimpleResponse {
  int status = 0;
  std::string body;
  std::string error;
};
SimpleResponse httpRequest(uint16_t port, const std::string& method, const std::string& target,
                           const std::string& body, const std::string& bearer = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Parses one HTTP/1.1 response at the start of buf. Returns 0 when more bytes are needed,
/// -1 when the bytes are not HTTP, else the number of bytes the response took.
struct ParsedResponse {
  int status = 0;
  std::string body;
  bool close = false;  ///< the server will close the connection after this answer
};
long parseResponse(std::string_view buf, ParsedResponse& out);

}  // namespace anm::bench
