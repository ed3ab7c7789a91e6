// core/plugin/host_services.h: the anm_host_api table the edge hands to each provider plugin.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "anonymily/plugin.h"
#include "core/plugin/registry.h"

namespace anm::plugin {

/// Longest log line a plugin can write through host->log; longer text is cut and marked.
inline constexpr size_t kMaxPluginLogBytes = 2048;

/// Longest verdict message kept from result_set_verdict; longer text is cut.
inline constexpr size_t kMaxResultMessageBytes = 1024;

/// Longest event type and delivery id kept from result_set_event; longer values are cut.
inline constexpr size_t kMaxEventFieldBytes = 256;

/// Longest content type of a plugin's own response; a longer one refuses the response.
inline constexpr size_t kMaxResponseContentTypeBytes = 128;

/// Largest body of a plugin's own response (a handshake echo); a larger one is refused.
inline constexpr size_t kMaxResponseBodyBytes = 64 * 1024;

/// One plugin's service table. The table is the first member of a standard-layout block so
/// that host->log can find the plugin it belongs to; the object must outlive every call the
/// plugin makes, which the Registry guarantees by keeping it until after shutdown.
class HostApi {
 public:
  /// `provider` names the plugin in its logger, "anm.plugin.<provider>".
  explicit HostApi(const std::string& provider);
  ~HostApi();
  HostApi(const HostApi&) = delete;
  HostApi& operator=(const HostApi&) = delete;

  const anm_host_api* table() const;

  /// The table together with what the services need to know about its plugin.
  struct Block;

 private:
  std::unique_ptr<Block> block_;
};

/// Collects what a plugin records during one verify call through the result_* services. The
/// handle is only valid while the collector lives.
class ResultCollector {
 public:
  ResultCollector();
  ~ResultCollector();
  ResultCollector(const ResultCollector&) = delete;
  ResultCollector& operator=(const ResultCollector&) = delete;

  anm_result* handle();

  /// True once result_set_verdict was called with a known verdict.
  bool hasVerdict() const;

  /// The verdict, reason, message, event fields and response recorded so far.
  const Outcome& outcome() const;

  /// Why a result_* call was refused (e.g. a response status outside 200..299), or "".
  const std::string& problem() const;

 private:
  std::unique_ptr<anm_result> result_;
};

}  // namespace anm::plugin
