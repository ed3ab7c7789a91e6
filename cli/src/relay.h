// cli/src/relay.h: the relay loop: hold the event stream, forward each event, report it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

#include "cli/src/session.h"
#include "cli/src/url.h"

namespace anm::cli {

struct RelayOptions {
  Url edge;
  Url target;
  std::string hookId;
  std::string token;
  std::string relayId;      ///< random per process; names this relay in delivery reports
  int64_t lastEventId = 0;  ///< resume after this id
  std::chrono::milliseconds timeout{30000};  ///< per delivery to the target
  /// A stream that sends nothing for this long is taken as dead (heartbeats come every 15 s).
  std::chrono::milliseconds idleTimeout{45000};
  std::chrono::milliseconds backoffStart{250};
  std::chrono::milliseconds backoffCap{10000};
  bool json = false;
  bool quiet = false;
  bool saveCursor = true;  ///< keep the position in <config>/hooks/ up to date
  /// The --to URL as given, which the saved position is kept under (see saveCursor). Kept
  /// last so that initialisers of the fields above still compile.
  std::string targetText;
  /// A signed-in member's session for a named hook: the stream and the reports then carry its
  /// JWT (renewed before each reconnect as it nears expiry, and once after a refusal) instead
  /// of `token`. Not owned; must outlive runRelay.
  MemberSession* session = nullptr;
};

/// Runs until `stop` turns true, then finishes the delivery in progress, flushes the delivery
/// reports and returns 0. Returns 1 when the edge refuses the stream for good (unknown hook,
/// wrong token, a sign-in that no longer works, or 409: another relay holds the hook's one live
/// relay of the free plan), printing the edge's message to stderr. Per-event lines go to
/// `out`; diagnostics go to the "anm.cli" logger. An `event: unreadable` frame (the edge could
/// not decrypt or read a stored event) is logged as an error with its id, reported as a
/// delivery with status 0 and error "unreadable at the edge", and passed.
int runRelay(const RelayOptions& options, const std::atomic<bool>& stop, std::FILE* out);

/// How long to wait before reconnect attempt `attempt` (0 for the first): `start` doubled per
/// attempt up to `cap`, then a random point in the upper half of that, so that many relays cut
/// off together do not come back in step. The relay loop and `relay --hook` startup share it.
std::chrono::milliseconds backoffDelay(int attempt, std::chrono::milliseconds start,
                                       std::chrono::milliseconds cap, std::mt19937_64& random);

/// A new random relay id (16 hex digits).
std::string newRelayId();

}  // namespace anm::cli
