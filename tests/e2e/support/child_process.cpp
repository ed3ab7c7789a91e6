// tests/e2e/support/child_process.cpp: a real program started by a test and always reaped.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/child_process.h"

#include <Poco/PipeStream.h>
#include <signal.h>

#include <sstream>

namespace anm::e2e {

namespace {

constexpr size_t kDescribeTailLines = 40;

std::string tail(const std::vector<std::string>& lines, size_t n) {
  std::string out;
  size_t start = lines.size() > n ? lines.size() - n : 0;
  for (size_t i = start; i < lines.size(); ++i) out += "  | " + lines[i] + "\n";
  return out;
}

}  // namespace

ChildProcess::ChildProcess(const std::string& program, const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env) {
  commandLine_ = program;
  for (const auto& arg : args) commandLine_ += " " + arg;

  // stdin is a pipe the test keeps open, so the child neither reads the test runner's
  // terminal nor sees an early end of input.
  Poco::Process::Env childEnv(env.begin(), env.end());
  handle_ = std::make_unique<Poco::ProcessHandle>(
      Poco::Process::launch(program, Poco::Process::Args(args.begin(), args.end()), std::string(),
                            &inPipe_, &outPipe_, &errPipe_, childEnv));
  pid_ = handle_->id();

  outReader_ = std::thread([this] { drain(outPipe_, out_); });
  errReader_ = std::thread([this] { drain(errPipe_, err_); });
}

ChildProcess::~ChildProcess() {
  try {
    stop();
  } catch (...) {
    // A destructor must not throw; stop() already did everything it could.
  }
  inPipe_.close();
  if (outReader_.joinable()) outReader_.join();
  if (errReader_.joinable()) errReader_.join();
}

void ChildProcess::drain(Poco::Pipe& pipe, Stream& stream) {
  Poco::PipeInputStream in(pipe);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::lock_guard<std::mutex> lock(mutex_);
    if (stream.lines.size() >= kMaxKeptLines) stream.lines.erase(stream.lines.begin());
    stream.lines.push_back(line);
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stream.closed = true;
  changed_.notify_all();
}

void ChildProcess::reapIfExited() {
  if (exitCode_) return;
  int rc = handle_->tryWait();
  if (rc != -1) exitCode_ = rc;
}

bool ChildProcess::running() {
  reapIfExited();
  return !exitCode_;
}

std::optional<int> ChildProcess::exitCode() {
  reapIfExited();
  return exitCode_;
}

bool ChildProcess::signal(int signal) {
  reapIfExited();
  if (exitCode_) return false;
  return ::kill(static_cast<pid_t>(pid_), signal) == 0;
}

std::optional<int> ChildProcess::waitForExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    reapIfExited();
    if (exitCode_ || std::chrono::steady_clock::now() >= deadline) return exitCode_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  reapIfExited();
  if (exitCode_) return *exitCode_;

  // SIGINT is what Poco's ServerApplication treats as a termination request.
  Poco::Process::requestTermination(pid_);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    reapIfExited();
    if (exitCode_) return *exitCode_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // Still there after the grace period: kill by our own handle and reap.
  Poco::Process::kill(*handle_);
  exitCode_ = handle_->wait();
  return *exitCode_;
}

std::optional<size_t> ChildProcess::waitForStdoutLine(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout,
    size_t from) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mutex_);
  size_t next = from;
  while (true) {
    for (; next < out_.lines.size(); ++next) {
      if (match(out_.lines[next])) return next;
    }
    if (out_.closed) return std::nullopt;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (; next < out_.lines.size(); ++next) {
        if (match(out_.lines[next])) return next;
      }
      return std::nullopt;
    }
  }
}

std::optional<std::string> ChildProcess::waitForAnyLine(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    for (const Stream* stream : {&out_, &err_}) {
      for (const auto& line : stream->lines) {
        if (match(line)) return line;
      }
    }
    if (out_.closed && err_.closed) return std::nullopt;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (const Stream* stream : {&out_, &err_}) {
        for (const auto& line : stream->lines) {
          if (match(line)) return line;
        }
      }
      return std::nullopt;
    }
  }
}

std::vector<std::string> ChildProcess::stdoutLines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return out_.lines;
}

std::vector<std::string> ChildProcess::stderrLines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return err_.lines;
}

std::string ChildProcess::describe() {
  std::ostringstream out;
  out << "process pid=" << pid_ << " cmd=\"" << commandLine_ << "\" state=";
  auto code = exitCode();
  if (code) {
    out << "exited code=" << *code;
  } else {
    out << "running";
  }
  out << "\n stdout tail:\n" << tail(stdoutLines(), kDescribeTailLines);
  out << " stderr tail:\n" << tail(stderrLines(), kDescribeTailLines);
  return out.str();
}

}  // namespace anm::e2e
