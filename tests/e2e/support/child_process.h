// tests/e2e/support/child_process.h: a real program started by a test and always reaped.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Pipe.h>
#include <Poco/Process.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace anm::e2e {

/// Runs a program with its stdout and stderr on pipes that background threads drain, so a
/// chatty child never blocks on a full pipe. The destructor stops the child (SIGINT, then
/// SIGKILL after a grace period) by the handle it was launched with and reaps it, also when
/// the test failed an assertion halfway.
class ChildProcess {
 public:
  /// Lines kept per stream; older ones are dropped so that a runaway child cannot exhaust
  /// the test's memory.
  static constexpr size_t kMaxKeptLines = 20000;

  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env);
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  long pid() const { return pid_; }

  /// True while the child has not exited. Reaps it when it has.
  bool running();

  /// Exit code once the child has been reaped (256 + signal number for a signal), else empty.
  std::optional<int> exitCode();

  /// Sends `signal` to the child, if it has not exited; true when it was sent.
  bool signal(int signal);

  /// Waits up to `timeout` for the child to exit and reaps it; the exit code, or empty.
  std::optional<int> waitForExit(std::chrono::milliseconds timeout);

  /// Asks the child to stop, kills it after `grace` and reaps it. Returns the exit code.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

  /// Waits until a stdout line at index >= `from` satisfies `match`; returns its index.
  std::optional<size_t> waitForStdoutLine(const std::function<bool(const std::string&)>& match,
                                          std::chrono::milliseconds timeout, size_t from = 0);

  /// Waits until a line on stdout or stderr satisfies `match`; returns that line.
  std::optional<std::string> waitForAnyLine(const std::function<bool(const std::string&)>& match,
                                            std::chrono::milliseconds timeout);

  std::vector<std::string> stdoutLines() const;
  std::vector<std::string> stderrLines() const;

  /// The command line, pid, state and the last lines of both streams, for failure messages.
  std::string describe();

 private:
  struct Stream {
    std::vector<std::string> lines;
    bool closed = false;
  };

  void drain(Poco::Pipe& pipe, Stream& stream);
  void reapIfExited();

  std::string commandLine_;
  Poco::Pipe inPipe_;
  Poco::Pipe outPipe_;
  Poco::Pipe errPipe_;
  std::unique_ptr<Poco::ProcessHandle> handle_;
  long pid_ = 0;
  std::optional<int> exitCode_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Stream out_;
  Stream err_;
  std::thread outReader_;
  std::thread errReader_;
};

}  // namespace anm::e2e
