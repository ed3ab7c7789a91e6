// core/plugin/registry.h: loads provider plugins from a directory and runs their verifiers.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/store/store.h"

namespace anm::plugin {

/// Size of the error buffer every hook gets; the host reads at most one byte less, so a
/// message that is not NUL-terminated is cut, never overrun.
inline constexpr size_t kPluginErrorBytes = 512;

/// Longest provider name: the ABI's rule is lower-case [a-z0-9_-]{1,32}.
inline constexpr size_t kMaxProviderNameBytes = 32;

/// Longest descriptor version and summary kept in PluginInfo; longer text is cut.
inline constexpr size_t kMaxPluginVersionBytes = 64;
inline constexpr size_t kMaxPluginSummaryBytes = 256;

/// A loaded plugin as listed by the edge.
struct PluginInfo {
  std::string name;
  std::string version;
  std::string summary;
  uint16_t abiMajor = 0;
  uint16_t abiMinor = 0;
  std::string file;  ///< absolute path of the library
};

/// A file that was refused, with the reason that was logged.
struct LoadFailure {
  std::string file;
  std::string reason;
};

/// The request as the verifier sees it. Views borrow from the caller for the call's duration.
struct RequestView {
  std::string_view hookId;
  std::string_view method;
  std::string_view pathSuffix;
  std::string_view rawQuery;
  const std::vector<store::Header>* headers = nullptr;
  std::string_view body;
  int64_t receivedAtMs = 0;
};

/// A response the plugin asked the edge to send instead of its default.
struct Response {
  int status = 200;
  std::string contentType;
  std::string body;
};

/// What verification concluded.
struct Outcome {
  store::Verdict verdict = store::Verdict::kUnsigned;
  int32_t reason = 0;  ///< ANM_REASON_*
  std::string message;
  std::string eventType;
  std::string deliveryId;
  std::optional<Response> response;
};

/// The plugins of one edge. Loading happens at start-up on one thread; verify and
/// checkSettings may then be called from any number of threads.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Loads every regular file in `dir` that looks like a shared library (by extension: .so,
  /// .dylib, .dll), in name order. A file that cannot be used is refused with one warning log
  /// line naming it and why; the others still load. When two files claim one provider name the
  /// first in name order wins and the other is refused.
  std::vector<LoadFailure> loadDirectory(const std::string& dir);

  /// Loads one file; returns the reason on failure (also logged).
  std::optional<LoadFailure> loadFile(const std::string& file);

  std::vector<PluginInfo> list() const;
  bool has(std::string_view provider) const;

  /// Checks a hook's settings with its plugin. Returns "" when accepted, else the reason.
  /// An unknown provider is refused here too.
  std::string checkSettings(const store::HookRecord& hook) const;

  /// Verifies a request under the hook's settings. A hook without a provider gives
  /// Verdict::kUnsigned with ANM_REASON_NOT_SIGNED. A plugin that fails or throws gives
  /// Verdict::kInvalid with ANM_REASON_INTERNAL; a missing plugin does as well.
  Outcome verify(const store::HookRecord& hook, const RequestView& request) const;

 private:
  struct Loaded;
  const Loaded* find(std::string_view provider) const;

  std::vector<std::unique_ptr<Loaded>> plugins_;
};

/// The stable name of an ANM_REASON_* code, e.g. "timestamp_outside"; "unknown" otherwise.
std::string_view reasonName(int32_t reason);

/// "valid", "invalid" or "unsigned".
std::string_view verdictName(store::Verdict verdict);

}  // namespace anm::plugin
