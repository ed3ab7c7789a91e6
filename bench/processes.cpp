// bench/processes.cpp: starting, watching and stopping the edge and relay processes.
// SPDX-License-Identifier: Apache-2.0
#include "processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace anm::bench {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& logPath,
                           bool captureStdout, const std::vector<std::string>& extraEnv)
    : logPath_(logPath) {
  // Everything exec needs is prepared before fork: the child may only make system calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& extra : extraEnv) {
      if (extra.compare(0, name.size() + 1, name + "=") == 0) replaced = true;
    }
    if (!replaced) envStrings.push_back(entry);
  }
  envStrings.insert(envStrings.end(), extraEnv.begin(), extraEnv.end());
  std::vector<char*> envp;
  for (auto& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error("could not open log " + logPath);
  int outFd = logFd;
  if (captureStdout) {
    stdoutPath_ = logPath + ".out";
    outFd = ::open(stdoutPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (outFd < 0) {
      ::close(logFd);
      throw std::runtime_error("could not open " + stdoutPath_);
    }
  }
  pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(logFd);
    throw std::runtime_error(std::string("could not fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    // The child dies with the bench, so that an interrupted run leaves nothing behind.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(outFd, STDOUT_FILENO);
    ::dup2(logFd, STDERR_FILENO);
    int devNull = ::open("/dev/null", O_RDONLY);
    if (devNull >= 0) ::dup2(devNull, STDIN_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  if (outFd != logFd) ::close(outFd);
  ::close(logFd);
}

ChildProcess::~ChildProcess() { stop(); }

bool ChildProcess::alive() {
  if (status_ != -1) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return r == 0;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!alive()) return status_;
  if (pid_ < 0) return status_;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!alive()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  if (::waitpid(pid_, &status, 0) == pid_) status_ = status;
  return status_;
}

std::optional<std::string> ChildProcess::waitForLine(const std::string& needle,
                                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // Only complete lines count: the child may be half way through writing one.
    std::ifstream in(stdoutPath_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t start = 0;
    size_t nl;
    while ((nl = text.find('\n', start)) != std::string::npos) {
      std::string line = text.substr(start, nl - start);
      if (line.find(needle) != std::string::npos) return line;
      start = nl + 1;
      if (start > 1 << 20) break;
    }
    if (!alive()) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

long procStatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) {
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

namespace {

// User plus system CPU seconds from the text of a /proc stat file, or -1.
double statCpuSeconds(const std::string& path) {
  // Fields 14 and 15, counted after the parenthesised command name, which may itself contain
  // spaces.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::strtol(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

double cpuSeconds(pid_t pid) { return statCpuSeconds("/proc/" + std::to_string(pid) + "/stat"); }

std::vector<ThreadCpu> threadCpu(pid_t pid) {
  std::vector<ThreadCpu> out;
  std::error_code ec;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    ThreadCpu t;
    t.tid = static_cast<pid_t>(std::strtol(entry.path().filename().c_str(), nullptr, 10));
    std::ifstream comm(entry.path() / "comm");
    std::getline(comm, t.name);
    t.seconds = statCpuSeconds((entry.path() / "stat").string());
    if (t.tid > 0 && t.seconds >= 0) out.push_back(t);
  }
  return out;
}

std::string busiestThreads(const std::vector<ThreadCpu>& before,
                           const std::vector<ThreadCpu>& after, double wallSeconds, size_t n) {
  if (wallSeconds <= 0) return "-";
  std::vector<std::pair<double, const ThreadCpu*>> used;
  for (const auto& a : after) {
    double start = 0;
    for (const auto& b : before) {
      if (b.tid == a.tid) start = b.seconds;
    }
    used.emplace_back((a.seconds - start) / wallSeconds, &a);
  }
  std::sort(used.begin(), used.end(),
            [](const auto& x, const auto& y) { return x.first > y.first; });
  std::string out;
  for (size_t i = 0; i < used.size() && i < n; ++i) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%s%s/%d %.2f", i ? ", " : "", used[i].second->name.c_str(),
                  static_cast<int>(used[i].second->tid), used[i].first);
    out += buf;
  }
  out += " (of " + std::to_string(after.size()) + " threads)";
  return out;
}

long raiseFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return static_cast<long>(lim.rlim_cur);
}

std::string tailFile(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::ostringstream out;
  for (const auto& l : last) out << "    " << l << "\n";
  return out.str();
}

}  // namespace anm::bench
