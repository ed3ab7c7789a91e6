// tests/e2e/support/product.h: the real edge and relay programs, started and watched by a test.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Object.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/e2e/support/child_process.h"
#include "tests/e2e/support/http_wire.h"

namespace anm::e2e {

/// How long a program may take to get ready (edge port file, relay ingest URL and token).
constexpr auto kStartTimeout = std::chrono::seconds(15);

/// The environment every product process gets: its XDG directories inside the test's own
/// temp dir, so that nothing reads or writes the real user's configuration, and proxies off,
/// so that every connection stays on loopback.
std::map<std::string, std::string> productEnv(const std::filesystem::path& home);

/// anonymily-edge listening on 127.0.0.1 with a kernel-chosen port, read from its port file.
class EdgeProcess {
 public:
  struct Options {
    std::string binary;
    std::string pluginDir;
    std::filesystem::path workDir;  ///< port file and data dir go here
    std::filesystem::path home;     ///< XDG base for the process
    /// Settings for a configuration file (`key = value` lines, in this order) that the edge
    /// reads with --config, e.g. {"store", "mysql://..."}. Empty: no file, the defaults.
    std::vector<std::pair<std::string, std::string>> settings;
    /// The port to listen on; 0 lets the kernel choose. A restarted edge takes its old one.
    uint16_t port = 0;
    /// Variables added to the product environment, e.g. NOTIFY_SOCKET.
    std::map<std::string, std::string> env;
  };

  /// Starts the edge and waits for its port; throws with the process's output on failure.
  explicit EdgeProcess(const Options& options);

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
};

/// `anonymily relay --edge URL --to URL --json [extra]`: creates a hook, prints its ingest URL,
/// then forwards each event and prints one JSON line per delivery.
class RelayProcess {
 public:
  struct Options {
    std::string binary;
    std::string edgeUrl;
    std::string targetUrl;
    std::filesystem::path home;  ///< XDG base; the token lands in <home>/anonymily/hooks/
    std::vector<std::string> extraArgs;
    /// An existing hook to relay (--hook) instead of creating one. With `token` empty the
    /// relay uses the token file a relay with the same `home` saved, and its saved position.
    std::string hookId;
    std::string token;  ///< passed as --token; only with hookId
  };

  /// Starts the relay and waits for its ingest URL and token file; throws on failure.
  explicit RelayProcess(const Options& options);

  const std::string& ingestUrl() const { return ingestUrl_; }
  const std::string& hookId() const { return hookId_; }
  const std::string& token() const { return token_; }
  ChildProcess& process() { return *process_; }

  /// The JSON delivery lines printed on stdout so far, in order.
  std::vector<Poco::JSON::Object::Ptr> reports() const;

  /// Waits until at least n JSON delivery lines were printed.
  bool waitForReports(size_t n, std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string ingestUrl_;
  std::string hookId_;
  std::string token_;
};

/// The hook id in an ingest URL (".../h/<id>"), or "" when there is none.
std::string hookIdFromUrl(const std::string& text);

/// GET on the edge's REST API with the relay token; the answer is read to its end.
WireResponse apiGet(uint16_t edgePort, const std::string& target, const std::string& token);

/// POST of a JSON body to the edge's REST API, with the relay token when `token` is not empty.
WireResponse apiPost(uint16_t edgePort, const std::string& target, const std::string& json,
                     const std::string& token = "");

/// DELETE on the edge's REST API with a bearer token; the answer is read to its end.
WireResponse apiDelete(uint16_t edgePort, const std::string& target, const std::string& token);

/// Parses a JSON object; throws when the text is not one.
Poco::JSON::Object::Ptr parseObject(const std::string& text);

/// A member as text: "" when absent or null, numbers in their JSON form.
std::string jsonText(const Poco::JSON::Object::Ptr& object, const std::string& key);

/// A member as an integer, or `fallback` when absent, null or not a number.
int64_t jsonInt(const Poco::JSON::Object::Ptr& object, const std::string& key,
                int64_t fallback = -1);

}  // namespace anm::e2e
