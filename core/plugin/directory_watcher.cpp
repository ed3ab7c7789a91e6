// core/plugin/directory_watcher.cpp: inotify on the plugin directory, settled, then a sync.
// SPDX-License-Identifier: Apache-2.0
#include "core/plugin/directory_watcher.h"

#include <Poco/Logger.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

namespace anm::plugin {
namespace {

using Clock = std::chrono::steady_clock;

Poco::Logger& watchLog() { return Poco::Logger::get("anm.plugin"); }

// Every way a file can appear, change or go: copied in (written, closed), moved in or out,
// deleted, or its permissions changed.
constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_TO |
                                IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

}  // namespace

struct DirectoryWatcher::Impl {
  Impl(Registry& registry, std::string dir, Options options)
      : registry(registry), dir(std::move(dir)), options(options) {}

  ~Impl() { stop(); }

  bool start() {
    inotifyFd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotifyFd < 0) return refuse(std::strerror(errno));
    stopFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stopFd < 0) {
      const std::string reason = std::strerror(errno);
      closeFds();
      return refuse(reason);
    }

    // A directory that is not there yet is waited for; any other failure is final.
    const int error = arm();
    if (error != 0 && !missing(error)) {
      closeFds();
      return refuse(std::strerror(error));
    }
    thread = std::thread([this] { run(); });
    if (error == 0) {
      watchLog().information("watching plugin directory dir=%s", dir);
    } else {
      watchLog().information("plugin directory missing, watching for it dir=%s", dir);
    }
    return true;
  }

  void stop() {
    if (!thread.joinable()) return;
    const uint64_t one = 1;
    if (::write(stopFd, &one, sizeof(one)) < 0) {
      // The thread also wakes on its collect timer, so a lost wake-up only delays the stop.
    }
    thread.join();
    closeFds();
  }

  bool refuse(const std::string& reason) {
    watchLog().warning(
        "could not watch plugin directory, plugins change on reload only dir=%s reason=\"%s\"", dir,
        reason);
    return false;
  }

  void closeFds() {
    if (inotifyFd >= 0) ::close(inotifyFd);
    if (stopFd >= 0) ::close(stopFd);
    inotifyFd = -1;
    stopFd = -1;
    watch = -1;
  }

  static bool missing(int error) { return error == ENOENT || error == ENOTDIR; }

  // Watches the directory at `dir` now; 0, or the errno that prevented it.
  int arm() {
    watch = ::inotify_add_watch(inotifyFd, dir.c_str(), kWatchMask);
    return watch < 0 ? errno : 0;
  }

  void run() {
    std::optional<Clock::time_point> syncAt;
    Clock::time_point collectAt = Clock::now() + options.collectEvery;
    Clock::time_point lookAt = Clock::now() + options.lookForDirectoryEvery;
    for (;;) {
      const Clock::time_point now = Clock::now();
      Clock::time_point wakeAt = collectAt;
      if (syncAt && *syncAt < wakeAt) wakeAt = *syncAt;
      if (watch < 0 && lookAt < wakeAt) wakeAt = lookAt;
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wakeAt - now);

      pollfd fds[2] = {{inotifyFd, POLLIN, 0}, {stopFd, POLLIN, 0}};
      const int ready = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(wait.count(), 0)));
      if (ready < 0 && errno != EINTR) {
        watchLog().error("plugin directory watch failed dir=%s reason=\"%s\"", dir,
                         std::string(std::strerror(errno)));
        return;
      }
      if (fds[1].revents != 0) return;

      // Each change pushes the pass back, so a file is read once its writer is done.
      if (fds[0].revents != 0 && drainEvents()) {
        syncAt = Clock::now() + options.settle;
      }

      // A directory that came back (or appeared) is watched again, then read once it settled.
      if (watch < 0 && Clock::now() >= lookAt) {
        lookAt = Clock::now() + options.lookForDirectoryEvery;
        if (arm() == 0) {
          watchLog().information("plugin directory found, watching it dir=%s", dir);
          syncAt = Clock::now() + options.settle;
        }
      }

      // While the directory is missing there is nothing to read: the plugins stay as they are.
      if (syncAt && Clock::now() >= *syncAt) {
        syncAt.reset();
        if (watch >= 0) registry.sync(dir);
      }
      if (Clock::now() >= collectAt) {
        registry.collectRetired();
        collectAt = Clock::now() + options.collectEvery;
      }
    }
  }

  // Reads every pending inotify event; true when any of them concerns the directory.
  bool drainEvents() {
    bool any = false;
    alignas(inotify_event) char buffer[16 * 1024];
    for (;;) {
      const ssize_t got = ::read(inotifyFd, buffer, sizeof(buffer));
      if (got <= 0) break;
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        any = true;
        if (event->wd != watch || watch < 0) continue;

        // A watch follows its directory's inode: one moved away is dropped, so that the path
        // is watched again once a directory is back at it. The kernel drops a deleted one.
        if ((event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0) {
          watchLog().warning(
              "plugin directory removed, plugins stay as they are until it is back dir=%s", dir);
          if ((event->mask & IN_MOVE_SELF) != 0) ::inotify_rm_watch(inotifyFd, watch);
          watch = -1;
        }
      }
    }
    return any;
  }

  Registry& registry;
  std::string dir;
  Options options;
  int inotifyFd = -1;
  int stopFd = -1;
  int watch = -1;  ///< the directory's watch descriptor, -1 while it is missing
  std::thread thread;
};

DirectoryWatcher::DirectoryWatcher(Registry& registry, std::string dir, Options options)
    : impl_(std::make_unique<Impl>(registry, std::move(dir), options)) {}

DirectoryWatcher::~DirectoryWatcher() = default;

bool DirectoryWatcher::start() { return impl_->start(); }

void DirectoryWatcher::stop() { impl_->stop(); }

}  // namespace anm::plugin
