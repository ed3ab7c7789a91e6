// tests/integration/edge_process_test.cpp: the anonymily-edge binary as a process: its options,
// its configuration errors, its port file and its shutdown on SIGTERM.
// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_http.h"

namespace anm::test {
namespace {

struct ProcessResult {
  int exitCode = -1;
  std::string out;
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
      const int out = open((dir_ + "/stdout.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(out, 1);
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
    run.out = readAll(dir_ + "/stdout.log");
    run.err = readAll(dir_ + "/stderr.log");
    return run;
  }

  static std::string readAll(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  ProcessResult runToEnd(const std::vector<std::string>& args) {
    spawn(args);
    return wait();
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

// A value refused in the file is named with its place there; the same value given on the
// command line is not the file's.
TEST_F(EdgeProcessTest, AValueRefusedInTheFileNamesItsLine) {
  const std::string config =
      writeConfig("# limits\nlisten = 127.0.0.1:0\ningest.max_body_bytes = 10MB\n");
  ProcessResult run = runToEnd({"--config", config});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("invalid value for ingest.max_body_bytes: \"10MB\" is not an integer (" +
                         config + " line 3)"),
            std::string::npos)
      << run.err;

  run = runToEnd({"--config", config, "--listen", "nonsense"});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("invalid value for listen"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(" line 2)"), std::string::npos) << run.err;

  // Also where the refusal names the key in other words.
  const std::string plugins = writeConfig("plugin_dir = " + dir_ + "/no-plugins\n");
  run = runToEnd({"--config", plugins, "--listen", "127.0.0.1:0", "--data-dir", dir_ + "/d"});
  EXPECT_EQ(run.exitCode, 78);
  EXPECT_NE(run.err.find("is not a directory (" + plugins + " line 1)"), std::string::npos)
      << run.err;
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

// Every command line the edge cannot take ends the same way: exit 64 and one line in the edge's
// log format. That includes POCO's --daemon, which forked away with stderr on /dev/null and lost
// every log line; --umask and --pidfile went with it (#5). A bad listen address comes after
// each option, so that a --daemon that was still taken ends in its child, not in a stray edge.
TEST_F(EdgeProcessTest, UnknownOptionsAndArgumentsAreUsageErrorsOfOneLine) {
  const std::regex line(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} Error anm\.edge: [^\n]*\n$)");
  const std::vector<std::string> badListen = {"--listen", "nonsense", "--data-dir", dir_ + "/d"};
  const auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), badListen.begin(), badListen.end());
    return args;
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {with({"--frobnicate"}), "unknown option --frobnicate (see --help)"},
      {with({"--daemon"}), "unknown option --daemon (see --help)"},
      {with({"--umask=022"}), "unknown option --umask (see --help)"},
      {with({"--pidfile", dir_ + "/pid"}), "unknown option --pidfile (see --help)"},
      {with({"surplus"}), "unexpected argument surplus (see --help)"},
      {badListen, ""},
      {{"--listen=127.0.0.1:0", "--listen=127.0.0.1:1"}, "option --listen is given twice"},
  };
  for (const auto& [args, message] : cases) {
    const ProcessResult run = runToEnd(args);
    if (message.empty()) {
      // The bad address alone is a configuration error, not a usage error.
      EXPECT_EQ(run.exitCode, 78) << run.err;
      continue;
    }
    EXPECT_EQ(run.exitCode, 64) << args[0] << "\n" << run.err;
    EXPECT_TRUE(std::regex_match(run.err, line)) << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/pid"));

  const ProcessResult help = runToEnd({"--help"});
  EXPECT_NE(help.out.find("--plugin-dir"), std::string::npos) << help.out;
  for (const char* gone : {"daemon", "umask", "pidfile"}) {
    EXPECT_EQ(help.out.find(gone), std::string::npos) << help.out;
  }
}

TEST_F(EdgeProcessTest, ServesOnPortFromPortFileAndExitsZeroOnSigterm) {
  const std::string portFile = dir_ + "/port";
  spawn({"--listen", "127.0.0.1:0", "--port-file", portFile, "--plugin-dir", ANM_TEST_PLUGIN_DIR});
  const uint16_t port = waitForPortFile(portFile);
  ASSERT_GT(port, 0);
  EXPECT_EQ(request(port, "GET", "/healthz").body, "ok");

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

// A plugin file cut short (a copy that had not finished when the edge started) is refused with
// one line saying where it ends; the edge starts and offers the other plugins (#5).
TEST_F(EdgeProcessTest, StartsWithATruncatedPluginFileAndSaysWhereItEnds) {
  const std::string plugins = dir_ + "/plugins";
  std::filesystem::create_directories(plugins);
  const std::string fixture = std::string(ANM_TEST_PLUGIN_DIR) + "/hmac_fixture.so";
  std::filesystem::copy_file(fixture, plugins + "/hmac_fixture.so");
  {
    std::ifstream in(fixture, std::ios::binary);
    std::string head(6000, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(plugins + "/half.so", std::ios::binary) << head;
  }

  const std::string portFile = dir_ + "/port";
  spawn({"--listen", "127.0.0.1:0", "--port-file", portFile, "--plugin-dir", plugins, "--data-dir",
         dir_ + "/data"});
  const uint16_t port = waitForPortFile(portFile);
  ASSERT_GT(port, 0) << wait().err;
  EXPECT_NE(request(port, "GET", "/api/v1/providers").body.find("\"hmacfix\""), std::string::npos);

  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  const ProcessResult run = wait();
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.err.find("could not load plugin file=" + plugins +
                         "/half.so reason=\"truncated: segment "),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find(", the file has 6000\""), std::string::npos) << run.err;
}

// A service manager may send SIGHUP right after it started the edge. One that arrives while the
// edge still reads its configuration (here a FIFO that the test holds open) must not kill it
// (SIGHUP's default, exit 129): it is taken as a reload once the edge serves (#5).
TEST_F(EdgeProcessTest, SighupWhileStartingIsAReloadNotTheEnd) {
  const std::string config = dir_ + "/edge.conf";
  ASSERT_EQ(mkfifo(config.c_str(), 0600), 0);
  const std::string portFile = dir_ + "/port";
  spawn({"--config", config, "--port-file", portFile, "--plugin-dir", ANM_TEST_PLUGIN_DIR,
         "--data-dir", dir_ + "/data"});

  // A writer can open the FIFO once the edge has it open for reading: main is running then.
  int writer = -1;
  for (int i = 0; i < 1000 && writer < 0; ++i) {
    writer = open(config.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(writer, 0) << "the edge never opened its configuration: " << wait().err;
  ASSERT_EQ(kill(pid_, SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string text = "listen = 127.0.0.1:0\n";
  EXPECT_EQ(write(writer, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(writer);

  const uint16_t port = waitForPortFile(portFile);
  ASSERT_GT(port, 0) << wait().err;
  EXPECT_EQ(request(port, "GET", "/healthz").body, "ok");
  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  const ProcessResult run = wait();
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.err.find("plugins reloaded loaded=0 removed=0 refused=0 plugins=1"),
            std::string::npos)
      << run.err;
}

// A start that fails on its settings or its port leaves no trace in the data directory: no
// owner token, no generated key, no store for a first start that never served (#5).
TEST_F(EdgeProcessTest, AStartThatFailsBeforeServingCreatesNothingInTheDataDirectory) {
  const std::string data = dir_ + "/data";

  // The port is held by a socket of the test's own.
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  ProcessResult run = runToEnd(
      {"--listen", taken, "--plugin-dir", ANM_TEST_PLUGIN_DIR, "--data-dir", data});
  close(holder);
  EXPECT_EQ(run.exitCode, 69) << run.err;
  EXPECT_NE(run.err.find("could not listen on " + taken), std::string::npos) << run.err;
  EXPECT_FALSE(std::filesystem::exists(data)) << run.err;

  run = runToEnd({"--listen", "127.0.0.1:0", "--tls-cert", dir_ + "/none.pem", "--tls-key",
                  dir_ + "/none.key", "--data-dir", data});
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_FALSE(std::filesystem::exists(data)) << run.err;

  run = runToEnd({"--listen", "127.0.0.1:0", "--plugin-dir", dir_ + "/no-plugins", "--data-dir",
                  data});
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find("is not a directory"), std::string::npos) << run.err;
  EXPECT_FALSE(std::filesystem::exists(data)) << run.err;
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
  const uint16_t port = waitForPortFile(portFile);
  ASSERT_GT(port, 0);

  // A webhook stored, so that the store's journal files exist too.
  const Response hook = request(port, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(hook.status, 201) << hook.body;
  ASSERT_EQ(
      request(port, "POST", "/h/" + jsonField(hook.body, "id"), "x").status,
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
