// tests/cli/support/cli_process.cpp: process launch with piped stdout and stderr.
// SPDX-License-Identifier: Apache-2.0
#include "support/cli_process.h"

#include <signal.h>

#include <algorithm>

namespace anm::cli::test {

CliProcess::CliProcess(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env,
                       const std::optional<std::string>& input) {
  Poco::Process::Env environment(env.begin(), env.end());
  handle_ = std::make_unique<Poco::ProcessHandle>(Poco::Process::launch(
      ANM_CLI_BINARY, args, "", input ? &inPipe_ : nullptr, &outPipe_, &errPipe_, environment));
  if (input) {
    inPipe_.writeBytes(input->data(), static_cast<int>(input->size()));
    inPipe_.close(Poco::Pipe::CLOSE_WRITE);
  }
  auto reader = [this](Poco::Pipe& pipe, std::string& sink) {
    char buffer[4096];
    int n = 0;
    while ((n = pipe.readBytes(buffer, sizeof buffer)) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      sink.append(buffer, static_cast<size_t>(n));
    }
  };
  outReader_ = std::thread(reader, std::ref(outPipe_), std::ref(out_));
  errReader_ = std::thread(reader, std::ref(errPipe_), std::ref(err_));
}

CliProcess::~CliProcess() {
  if (!exited_) {
    ::kill(handle_->id(), SIGKILL);
    wait();
  }
}

bool CliProcess::waitForLines(size_t count, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (lines().size() >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return lines().size() >= count;
}

std::vector<std::string> CliProcess::lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  size_t start = 0;
  size_t end;
  while ((end = out_.find('\n', start)) != std::string::npos) {
    out.push_back(out_.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string CliProcess::out() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return out_;
}

std::string CliProcess::err() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return err_;
}

void CliProcess::interrupt() { ::kill(handle_->id(), SIGINT); }

int CliProcess::wait() {
  if (exited_) return exitCode_;
  exitCode_ = handle_->wait();
  exited_ = true;
  outReader_.join();
  errReader_.join();
  return exitCode_;
}

CliResult runCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env,
                 const std::optional<std::string>& input) {
  CliProcess process(args, env, input);
  CliResult result;
  result.exitCode = process.wait();
  result.out = process.out();
  result.err = process.err();
  return result;
}

}  // namespace anm::cli::test
