// core/edge/edge_server.h: the edge as one object: store, plugins, stream hub and HTTP server.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/edge/config.h"
#include "core/plugin/registry.h"

namespace anm::edge {

/// The edge could not start (store, listener, plugins); the message says what and where.
class StartError : public std::runtime_error {
 public:
  StartError(const std::string& what, int exitCode)
      : std::runtime_error(what), exitCode_(exitCode) {}
  int exitCode() const { return exitCode_; }

 private:
  int exitCode_;
};

/// Owns every part of a running edge. The program's main and the integration tests both run
/// the edge through this class, so the tests exercise the server exactly as shipped.
class EdgeServer {
 public:
  explicit EdgeServer(EdgeConfig config);
  ~EdgeServer();  ///< stops if still running
  EdgeServer(const EdgeServer&) = delete;
  EdgeServer& operator=(const EdgeServer&) = delete;

  /// Checks what it can without the store (plugin directory, a key ring from a file or a
  /// variable, TLS files) and takes the listen port; only then creates the data directory,
  /// opens the store, loads the plugins, starts the stream hub and listens. Throws ConfigError
  /// for settings that turn out unusable and StartError for everything else.
  void start();

  /// Stops the edge within config().shutdownTimeout: see stop(within).
  void stop();

  /// Stops accepting connections, tells every relay stream to reconnect elsewhere and closes
  /// it, lets the requests in flight finish, and cuts off those still running when `within`
  /// has passed; then closes the store (which drains its writer), so that every acknowledged
  /// webhook is stored. Safe to call more than once.
  void stop(std::chrono::milliseconds within);

  /// Reads the plugin directory again (SIGHUP): new files load, changed ones replace their
  /// plugin for new requests, removed ones stop being offered; a directory that was missing at
  /// start is read once it is there. Returns what changed (nothing while it is missing).
  plugin::SyncResult reloadPlugins();

  uint16_t port() const;
  const std::string& publicUrl() const;
  size_t pluginCount() const;
  const EdgeConfig& config() const { return config_; }

 private:
  struct Parts;
  EdgeConfig config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace anm::edge
