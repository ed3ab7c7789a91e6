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
/// Threads: one thread of its own; start and stop from the thread that owns the watcher.
class DirectoryWatcher {
 public:
  struct Options {
    /// Quiet time after the last change before the directory is read again. A copy that
    /// pauses longer than this is read half-way, refused, and read again when it finishes.
    std::chrono::milliseconds settle{300};
    /// How often replaced plugins are checked for calls still in flight.
    std::chrono::milliseconds collectEvery{1000};
  };

  DirectoryWatcher(Registry& registry, std::string dir, Options options);
  ~DirectoryWatcher();  ///< stops
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  /// Starts watching. Returns false (and logs why) when the directory cannot be watched; the
  /// plugins then change only on an explicit reload.
  bool start();

  /// Stops and joins the thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::plugin
