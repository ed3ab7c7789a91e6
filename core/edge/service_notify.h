// core/edge/service_notify.h: tells a service manager (systemd) how the edge is doing.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace anm::edge {

/// The sender side of the service notification protocol (sd_notify(3)): one datagram of
/// `KEY=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET. Written directly rather
/// than linked from libsystemd, as the protocol's authors recommend for daemons that need only
/// this. Without $NOTIFY_SOCKET every call does nothing, so the edge runs the same under any
/// supervisor or none.
class ServiceNotifier {
 public:
  /// Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID once. The variables are left in
  /// the environment: plugins and child processes never see the edge's notify socket anyway,
  /// since the edge starts none.
  ServiceNotifier();

  /// Whether a service manager listens.
  bool enabled() const { return !socketPath_.empty(); }

  /// Sends `state` (e.g. "READY=1\nSTATUS=serving"). Returns false when nobody listens or the
  /// datagram could not be sent; a failed send is logged once, never retried.
  bool notify(std::string_view state);

  /// The interval at which WATCHDOG=1 must be sent, half the manager's timeout; empty when
  /// the manager asked for no watchdog (or asked it of another process).
  std::optional<std::chrono::milliseconds> watchdogInterval() const { return watchdog_; }

  /// The socket path as configured ("@name" for an abstract socket), for logs.
  const std::string& socketPath() const { return socketPath_; }

 private:
  std::string socketPath_;
  std::optional<std::chrono::milliseconds> watchdog_;
  bool warned_ = false;
};

/// "MONOTONIC_USEC=<now>": systemd 253 and later want it beside RELOADING=1, older ones ignore it.
std::string monotonicUsecField();

}  // namespace anm::edge
