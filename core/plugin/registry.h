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
  /// No loaded plugin offers the hook's provider (its file was removed, or is being replaced):
  /// the request could not be verified at all, which is not the sender's fault.
  bool providerUnavailable = false;
};

/// What one pass over the plugin directory changed.
struct SyncResult {
  std::vector<PluginInfo> loaded;    ///< plugins that began to be offered, replacements too
  std::vector<PluginInfo> removed;   ///< providers no longer offered
  std::vector<LoadFailure> refused;  ///< files refused in this pass (each logged once)
  /// Files of the directory that offer nothing after the pass: refused in it or in an earlier
  /// one and unchanged since (a broken file left in place is logged only once).
  size_t notLoaded = 0;
  bool changed() const { return !loaded.empty() || !removed.empty(); }
};

/// The plugins of one edge, reloadable while it serves.
///
/// Every library is loaded from a sealed in-memory copy of its file, so a file that is
/// replaced or rewritten in place later never changes code that is running, and the new
/// contents load as a library of their own even at the same path. verify and checkSettings
/// take the current set of plugins without a lock and hold the plugin they call until the call
/// returns: a replaced plugin finishes the calls in flight and is shut down afterwards, on the
/// thread that changes the set, never on a request thread.
///
/// Threads: loadDirectory, loadFile and sync are serialized among themselves and may run while
/// verify, checkSettings, list and has are called from any number of threads.
class Registry {
 public:
  Registry();
  ~Registry();  ///< shuts down every plugin, in reverse name order
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Loads every regular file in `dir` that looks like a shared library (by extension: .so,
  /// .dylib, .dll). The same as sync() on a registry that has loaded nothing yet.
  std::vector<LoadFailure> loadDirectory(const std::string& dir);

  /// Brings the plugins in line with `dir`: new files load, files whose contents changed
  /// (size, time or inode) load anew and take over their provider for new calls, and removed
  /// files stop being offered. A file that cannot be used is refused with one warning naming
  /// it and why, once per version of the file; a refused new version of a file leaves the
  /// version loaded before it in place. When several files offer one provider, the file first
  /// in name order offers it and the others are refused, whatever order they arrived in.
  SyncResult sync(const std::string& dir);

  /// Loads one file; returns the reason on failure (also logged). A provider that is already
  /// offered is refused.
  std::optional<LoadFailure> loadFile(const std::string& file);

  /// The plugins offered now, by provider name.
  std::vector<PluginInfo> list() const;
  bool has(std::string_view provider) const;

  /// Files refused since construction, for the edge's metrics.
  uint64_t loadFailures() const;

  /// Checks a hook's settings with its plugin. Returns "" when accepted, else the reason.
  /// An unknown provider is refused here too.
  std::string checkSettings(const store::HookRecord& hook) const;

  /// Verifies a request under the hook's settings. A hook without a provider gives
  /// Verdict::kUnsigned with ANM_REASON_NOT_SIGNED. A plugin that fails or throws gives
  /// Verdict::kInvalid with ANM_REASON_INTERNAL. A provider no plugin offers gives the same
  /// with providerUnavailable set.
  Outcome verify(const store::HookRecord& hook, const RequestView& request) const;

  /// Shuts down the replaced and removed plugins that no call holds any more. sync does this
  /// too; calling it now and then releases plugins whose last calls ended after a sync.
  void collectRetired();

  /// A loaded plugin; opaque outside the registry.
  struct Loaded;

 private:
  struct Table;
  struct FileState;
  struct Control;

  std::shared_ptr<const Table> table() const;
  void collectRetiredLocked();
  std::shared_ptr<const Loaded> find(std::string_view provider) const;

  std::shared_ptr<const Table> table_;
  std::unique_ptr<Control> control_;
};

/// The stable name of an ANM_REASON_* code, e.g. "timestamp_outside"; "unknown" otherwise.
std::string_view reasonName(int32_t reason);

/// "valid", "invalid" or "unsigned".
std::string_view verdictName(store::Verdict verdict);

}  // namespace anm::plugin
