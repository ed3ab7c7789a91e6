// bench/processes.h: starting, watching and stopping the edge and relay processes.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace anm::bench {

/// A child process. Its stderr goes to a log file; its stdout to the same file or, with
/// captureStdout, to a file of its own (<log>.out) that waitForLine reads. A file rather than
/// a pipe, so that a child printing a line per event never waits for the bench to read.
/// The destructor stops the child (SIGTERM, then SIGKILL).
class ChildProcess {
 public:
  /// extraEnv entries ("NAME=value") are added to, or replace, the bench's environment.
  ChildProcess(const std::vector<std::string>& argv, const std::string& logPath, bool captureStdout,
               const std::vector<std::string>& extraEnv = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool alive();

  /// Waits for a stdout line containing needle and returns it.
  std::optional<std::string> waitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);

  /// SIGTERM, up to `grace` to exit, then SIGKILL. Returns the wait status, or -1.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  std::string logPath() const { return logPath_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string logPath_;
  std::string stdoutPath_;
};

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM, ...), or -1.
long procStatusKiB(pid_t pid, const std::string& field);

/// User plus system CPU time a process has used so far, in seconds, or -1.
double cpuSeconds(pid_t pid);

/// CPU time one thread of a process has used so far.
struct ThreadCpu {
  pid_t tid = 0;
  std::string name;  ///< /proc/<pid>/task/<tid>/comm
  double seconds = 0;
};

/// Every thread of a process with its CPU time so far; empty when the process is gone.
std::vector<ThreadCpu> threadCpu(pid_t pid);

/// The n threads that used the most CPU between two threadCpu() samples, as
/// "name/tid 0.42" in cores over wallSeconds, busiest first.
std::string busiestThreads(const std::vector<ThreadCpu>& before,
                           const std::vector<ThreadCpu>& after, double wallSeconds, size_t n);

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
long raiseFileLimit();

/// The last lines of a log file, for error messages.
std::string tailFile(const std::string& path, size_t lines);

}  // namespace anm::bench
