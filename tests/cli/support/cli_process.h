// tests/cli/support/cli_process.h: runs the real `anonymily` binary and collects its output.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Pipe.h>
#include <Poco/Process.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace anm::cli::test {

class CliProcess {
 public:
  /// Starts ANM_CLI_BINARY with `args`; `env` is added to the inherited environment.
  /// `input`, when given, is written to the process's stdin, which is then closed.
  CliProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
             const std::optional<std::string>& input = std::nullopt);
  ~CliProcess();  ///< kills the process (by its pid) if it still runs

  /// Waits until stdout holds at least `count` complete lines.
  bool waitForLines(size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(15));

  std::vector<std::string> lines() const;
  std::string out() const;
  std::string err() const;

  int pid() const { return static_cast<int>(handle_->id()); }

  /// SIGINT, as Ctrl-C would send.
  void interrupt();

  /// Waits for the exit and returns the exit code.
  int wait();

 private:
  std::unique_ptr<Poco::ProcessHandle> handle_;
  Poco::Pipe inPipe_;
  Poco::Pipe outPipe_;
  Poco::Pipe errPipe_;
  mutable std::mutex mutex_;
  std::string out_;
  std::string err_;
  std::thread outReader_;
  std::thread errReader_;
  bool exited_ = false;
  int exitCode_ = -1;
};

/// Runs the binary to completion: exit code, stdout, stderr.
struct CliResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};
CliResult runCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env,
                 const std::optional<std::string>& input = std::nullopt);

}  // namespace anm::cli::test
