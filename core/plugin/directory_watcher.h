// core/plugin/directory_watcher.h: reloads the plugins when their directory changes.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/plugin/registry.h"

namespace anm::plugin {

/// Watches a plugin directory with inotify and brings a Registry in line with it once the
/// directory has been quiet for a moment, so that a file being copied in is loaded when the
/// copy is done rather than half-way. Between changes it releases replaced plugins whose last
/// calls have ended.
///
/// A directory that is missing (at start, or removed or moved away later) is looked for again
/// now and then; while it is missing the plugins stay as they are, and once it is there it is
/// watched and read (#5).
///
/// Threads: one thread of its own; start and stop from the thread that owns the watcher.
class DirectoryWatcher {
 public:
  struct Options {
    /// Quiet time after the last change before the directory is read again. A copy that
    /// pauses longer than this is read half-way, refused, and read again when it finishes.
    std::chrono::milliseconds settle{300};
    /// How often replaced plugins are checked for calls still in flight.
    std::chrono::milliseconds collectEvery{1000};
    /// How often a missing directory is looked for.
    std::chrono::milliseconds lookForDirectoryEvery{1000};
  };

  DirectoryWatcher(Registry& registry, std::string dir, Options options);
  ~DirectoryWatcher();  ///< stops
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  /// Starts watching, or looking for the directory when it is missing. Returns false (and logs
  /// why) when it cannot be watched for another reason (no inotify, too many watches); the
  /// plugins then change only on an explicit reload.
  bool start();

  /// Stops and joins the thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::plugin
