// tests/integration/edge_process_test.cpp: the anonymily-edge binary as a process: its options,
// its configuration errors, its port file and its shutdown on SIGTERM.
// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_http.h"

namespace anm::test {
namespace {

struct ProcessResult {
  int exitCode = -1;
  std::string err;
};

class EdgeProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-edge-proc-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the edge with its stderr in a file; the working directory is the temp dir.
  void spawn(std::vector<std::string> args) {
    args.insert(args.begin(), ANM_EDGE_BINARY);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      if (chdir(dir_.c_str()) != 0) _exit(127);
      const int fd = open((dir_ + "/stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }

  // Waits for the process to end (at most 20 s) and returns its code and stderr.
  ProcessResult wait() {
    ProcessResult run;
    int status = 0;
    for (int i = 0; i < 2000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream in(dir_ + "/stderr.log");
    std::stringstream text;
    text << in.rdbuf();
    run.err = text.str();
    return run;
  }

  ProcessResult runToEnd(const std::vector<std::string>& args) {
    spawn(args);
    return wait();
  }

  // The port the edge wrote to `portFile` once listening (waits up to 10 s), or 0.
  static int waitForPort(const std::string& portFile) {
    int port = 0;
    for (int i = 0; i < 1000 && port == 0; ++i) {
      std::ifstream in(portFile);
      in >> port;
      if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return port;
  }

  std::string writeConfig(const std::string& text) {
    const std::string path = dir_ + "/edge.properties";
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
  pid_t pid_ = -1;
};

TEST_F(EdgeProcessTest, MalformedListenExits78WithOneClearLine) {
  const ProcessResult run = runToEnd({"--listen", "nonsense", "--data-dir", dir_ + "/d"});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("invalid configuration: invalid value for listen"), std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("terminate"), std::string::npos) << run.err;
}

TEST_F(EdgeProcessTest, ZeroThreadsInConfigFileExits78) {
  const ProcessResult run = runToEnd({"--config", writeConfig("http.max_threads = 0\n")});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("http.max_threads"), std::string::npos) << run.err;
}

TEST_F(EdgeProcessTest, UnknownKeyMissingFileAndUnknownStoreExit78) {
  ProcessResult run = runToEnd({"--config", writeConfig("listen = 127.0.0.1:0\nlisen = x\n")});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("unknown configuration key lisen"), std::string::npos) << run.err;

  run = runToEnd({"--config", dir_ + "/missing.properties"});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("could not read configuration file"), std::string::npos) << run.err;

  run = runToEnd({"--config", writeConfig("store = postgres://u@127.0.0.1/db\n")});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("unsupported store"), std::string::npos) << run.err;

  run = runToEnd({"--log-level", "loud", "--data-dir", dir_ + "/d"});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("log.level"), std::string::npos) << run.err;
}

TEST_F(EdgeProcessTest, VersionAndHelpExitZero) {
  ProcessResult run = runToEnd({"--version"});
  EXPECT_EQ(run.exitCode, 0);
  run = runToEnd({"--help"});
  EXPECT_EQ(run.exitCode, 0);
}

TEST_F(EdgeProcessTest, ServesOnPortFromPortFileAndExitsZeroOnSigterm) {
  const std::string portFile = dir_ + "/port";
  spawn({"--listen", "127.0.0.1:0", "--port-file", portFile, "--plugin-dir", ANM_TEST_PLUGIN_DIR});
  const int port = waitForPort(portFile);
  ASSERT_GT(port, 0);
  EXPECT_EQ(request(static_cast<uint16_t>(port), "GET", "/healthz").body, "ok");

  // With no data_dir the store lands in ./anonymily-data, created for the owner only.
  const auto perms = std::filesystem::status(dir_ + "/anonymily-data").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all, std::filesystem::perms::owner_all);

  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  const ProcessResult run = wait();
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.err.find("edge ready listen=127.0.0.1:" + std::to_string(port)), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("edge stopped"), std::string::npos) << run.err;
}

TEST_F(EdgeProcessTest, WhatTheEdgeCreatesIsItsOwnUsersOnlyInAnOpenDataDirectory) {
  namespace fs = std::filesystem;
  const std::string data = dir_ + "/open-data";
  ASSERT_TRUE(fs::create_directory(data));
  fs::permissions(data, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);

  // A umask that leaves files 0644, as a shell's usually does; the edge must not rely on it.
  const mode_t before = ::umask(022);
  const std::string portFile = dir_ + "/port";
  spawn({"--listen", "127.0.0.1:0", "--port-file", portFile, "--data-dir", data, "--plugin-dir",
         ANM_TEST_PLUGIN_DIR});
  ::umask(before);
  const int port = waitForPort(portFile);
  ASSERT_GT(port, 0);

  // A webhook stored, so that the store's journal files exist too.
  const Response hook = request(static_cast<uint16_t>(port), "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(hook.status, 201) << hook.body;
  ASSERT_EQ(
      request(static_cast<uint16_t>(port), "POST", "/h/" + jsonField(hook.body, "id"), "x").status,
      200);
  for (const char* name : {"anonymily.db", "anonymily.db-wal", "anonymily.db-shm"}) {
    EXPECT_TRUE(fs::exists(data + "/" + name)) << name;
  }

  // Every file and directory it made is the owner's only; the directory it was given is kept.
  std::vector<fs::path> made = {portFile};
  for (const auto& entry : fs::recursive_directory_iterator(data)) made.push_back(entry.path());
  EXPECT_GE(made.size(), 5u);
  for (const auto& path : made) {
    const auto perms = fs::status(path).permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none)
        << path << " mode " << std::oct << static_cast<unsigned>(perms);
  }
  EXPECT_EQ(fs::status(data).permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                fs::perms::others_read | fs::perms::others_exec);

  // And says so, once.
  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  const ProcessResult run = wait();
  EXPECT_EQ(run.exitCode, 0) << run.err;
  const std::string warning =
      "data directory accessible by group or others path=" + data + " mode=0755";
  const size_t at = run.err.find(warning);
  EXPECT_NE(at, std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(warning, at + 1), std::string::npos) << run.err;
}

}  // namespace
}  // namespace anm::test
