// tests/abi/reload_test.cpp: plugins change while the registry serves: added, replaced (also in
// place), broken, removed and contested, with calls in flight finishing on the plugin they began
// on. SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "anonymily/plugin.h"
#include "core/plugin/directory_watcher.h"
#include "core/plugin/registry.h"
#include "tests/abi/log_capture.h"

namespace anm::plugin {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// How long a test waits for something that happens on another thread before it gives up.
constexpr auto kPatience = std::chrono::seconds(10);

fs::path fixture(const std::string& name) { return fs::path(ANM_ABI_FIXTURE_DIR) / name; }

size_t countLines(const test::LogCapture& logs, const std::string& text) {
  const auto lines = logs.lines();
  return static_cast<size_t>(std::count_if(lines.begin(), lines.end(),
                                           [&](const auto& line) { return line.text == text; }));
}

size_t countWarningsAbout(const test::LogCapture& logs, const std::string& file) {
  const auto warnings = logs.at(Poco::Message::PRIO_WARNING);
  const std::string prefix = "could not load plugin file=" + file + " ";
  return static_cast<size_t>(std::count_if(warnings.begin(), warnings.end(), [&](const auto& w) {
    return w.text.rfind(prefix, 0) == 0;
  }));
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "anm-reload-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Copies a fixture into the plugin directory under `name`, overwriting the file in place
  // when it exists (the same inode, as `cp` does), so that only its contents tell versions apart.
  void copyIn(const std::string& fixtureName, const std::string& name) {
    std::ifstream in(fixture(fixtureName), std::ios::binary);
    std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  }

  // Writes the first `bytes` bytes of a fixture to `name` in place, as a copy that has not
  // finished yet leaves it.
  void copyHead(const std::string& fixtureName, const std::string& name, size_t bytes) {
    std::ifstream in(fixture(fixtureName), std::ios::binary);
    std::string head(bytes, '\0');
    in.read(head.data(), static_cast<std::streamsize>(bytes));
    ASSERT_EQ(in.gcount(), static_cast<std::streamsize>(bytes)) << fixtureName << " is shorter";
    std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc) << head;
  }

  // Appends the rest of a fixture to `name`, as the writer of copyHead finishing its copy.
  void copyRest(const std::string& fixtureName, const std::string& name, size_t from) {
    std::ifstream in(fixture(fixtureName), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(from));
    std::ofstream(dir_ / name, std::ios::binary | std::ios::app) << in.rdbuf();
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static store::HookRecord hook(const std::string& provider) {
    store::HookRecord h;
    h.id = "hook-1";
    h.provider = provider;
    h.secret = "secret";
    return h;
  }

  static Outcome verify(const Registry& registry, const std::string& provider,
                        const std::vector<store::Header>& headers = {}) {
    RequestView request;
    request.hookId = "hook-1";
    request.method = "POST";
    request.headers = &headers;
    request.body = "{}";
    return registry.verify(hook(provider), request);
  }

  static std::string offeredVersion(const Registry& registry, const std::string& provider) {
    for (const auto& info : registry.list()) {
      if (info.name == provider) return info.version;
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(ReloadTest, FileCopiedInIsOfferedAfterTheNextSync) {
  test::LogCapture logs;
  Registry registry;
  EXPECT_TRUE(registry.sync(dir_.string()).refused.empty());
  EXPECT_TRUE(registry.list().empty());

  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  const SyncResult result = registry.sync(dir_.string());

  ASSERT_EQ(result.loaded.size(), 1u);
  EXPECT_EQ(result.loaded[0].name, "gamma");
  EXPECT_EQ(result.loaded[0].file, path("anm-gamma.so"));
  EXPECT_EQ(verify(registry, "gamma").message, "gamma 1.0.0");

  // A pass with nothing changed loads nothing again.
  EXPECT_FALSE(registry.sync(dir_.string()).changed());
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 ready"), 1u);
}

TEST_F(ReloadTest, FileRewrittenInPlaceTakesOverAndTheOldVersionShutsDownOnce) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  registry.sync(dir_.string());
  ASSERT_EQ(verify(registry, "gamma").message, "gamma 1.0.0");

  // Same path, same inode, new contents: the dynamic loader alone would hand back version 1.
  copyIn("anm-gamma-v2.so", "anm-gamma.so");
  const SyncResult result = registry.sync(dir_.string());

  ASSERT_EQ(result.loaded.size(), 1u);
  EXPECT_EQ(result.loaded[0].version, "2.0.0");
  EXPECT_TRUE(result.removed.empty());
  EXPECT_EQ(offeredVersion(registry, "gamma"), "2.0.0");
  EXPECT_EQ(verify(registry, "gamma").message, "gamma 2.0.0");
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 stopped"), 1u);
  EXPECT_EQ(countLines(logs, "gamma: gamma 2.0.0 stopped"), 0u);
}

TEST_F(ReloadTest, CallInFlightFinishesOnItsPluginWhichShutsDownOnlyAfterIt) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  registry.sync(dir_.string());

  // A call into version 1 that waits at a gate the test opens.
  const std::string gate = path("gate");
  std::vector<store::Header> headers = {{"X-Gamma-Gate", gate}};
  auto inFlight =
      std::async(std::launch::async, [&] { return verify(registry, "gamma", headers); });
  const auto giveUpAt = std::chrono::steady_clock::now() + kPatience;
  while (!fs::exists(gate + ".entered") && std::chrono::steady_clock::now() < giveUpAt) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(fs::exists(gate + ".entered")) << "the call never reached the plugin";

  // Version 2 takes over for new calls while the first is still inside version 1.
  copyIn("anm-gamma-v2.so", "anm-gamma.so");
  registry.sync(dir_.string());
  EXPECT_EQ(verify(registry, "gamma").message, "gamma 2.0.0");
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 stopped"), 0u) << "shut down under a call";

  std::ofstream(gate) << "open\n";
  EXPECT_EQ(inFlight.get().message, "gamma 1.0.0");

  // Released by the next collection, on the collecting thread.
  registry.collectRetired();
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 stopped"), 1u);
}

TEST_F(ReloadTest, BrokenNewVersionIsRefusedOnceAndThePreviousVersionStays) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  registry.sync(dir_.string());

  std::ofstream(dir_ / "anm-gamma.so", std::ios::trunc) << std::string(300, '#') << "\n";
  const SyncResult result = registry.sync(dir_.string());

  ASSERT_EQ(result.refused.size(), 1u);
  EXPECT_EQ(result.refused[0].file, path("anm-gamma.so"));
  EXPECT_NE(result.refused[0].reason.find("invalid ELF header"), std::string::npos)
      << result.refused[0].reason;
  EXPECT_EQ(result.refused[0].reason.find("/proc/self/fd"), std::string::npos)
      << "the reason must name the file, not its in-memory copy: " << result.refused[0].reason;
  EXPECT_FALSE(result.changed());
  EXPECT_EQ(verify(registry, "gamma").message, "gamma 1.0.0");
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 stopped"), 0u);

  // One line, naming the file and the version kept; the same broken file is not reported again.
  const auto warnings = logs.at(Poco::Message::PRIO_WARNING);
  ASSERT_EQ(countWarningsAbout(logs, path("anm-gamma.so")), 1u);
  const auto line = std::find_if(warnings.begin(), warnings.end(), [](const auto& w) {
    return w.text.find("keeping_version=1.0.0") != std::string::npos;
  });
  EXPECT_NE(line, warnings.end());
  EXPECT_TRUE(registry.sync(dir_.string()).refused.empty());
  EXPECT_EQ(countWarningsAbout(logs, path("anm-gamma.so")), 1u);
  EXPECT_EQ(registry.loadFailures(), 1u);
}

// A broken file left in place is reported once, and each later pass still counts it among the
// files that offer nothing, so that a reload's log line does not read as if all were well.
TEST_F(ReloadTest, ABrokenFileLeftInPlaceIsCountedByEveryPassUntilItGoes) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  std::ofstream(dir_ / "anm-broken.so") << std::string(300, '#') << "\n";

  SyncResult result = registry.sync(dir_.string());
  EXPECT_EQ(result.refused.size(), 1u);
  EXPECT_EQ(result.notLoaded, 1u);

  result = registry.sync(dir_.string());
  EXPECT_TRUE(result.refused.empty());
  EXPECT_EQ(result.notLoaded, 1u);
  EXPECT_EQ(countWarningsAbout(logs, path("anm-broken.so")), 1u);

  std::filesystem::remove(dir_ / "anm-broken.so");
  EXPECT_EQ(registry.sync(dir_.string()).notLoaded, 0u);
  EXPECT_EQ(verify(registry, "gamma").message, "gamma 1.0.0");
}

// The loader maps segments straight from the file: handed a copy that ends inside one, it
// touched pages with nothing behind them and the process died of SIGBUS (#5). Such a copy is
// refused by name before the loader sees it, and the version before it stays offered.
TEST_F(ReloadTest, TruncatedCopiesAreRefusedBeforeTheLoaderSeesThem) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  registry.sync(dir_.string());
  ASSERT_EQ(offeredVersion(registry, "gamma"), "1.0.0");

  for (const size_t bytes : {100, 1000, 4096, 6000, 10000}) {
    SCOPED_TRACE("first " + std::to_string(bytes) + " bytes");
    copyHead("anm-gamma-v2.so", "anm-gamma.so", bytes);
    const SyncResult result = registry.sync(dir_.string());

    ASSERT_EQ(result.refused.size(), 1u);
    const std::string& reason = result.refused[0].reason;
    EXPECT_EQ(reason.rfind("truncated: ", 0), 0u) << reason;
    EXPECT_NE(reason.find(", the file has " + std::to_string(bytes)), std::string::npos) << reason;
    EXPECT_FALSE(result.changed());
    EXPECT_EQ(verify(registry, "gamma").message, "gamma 1.0.0");
  }
  EXPECT_EQ(countWarningsAbout(logs, path("anm-gamma.so")), 5u);

  // A fresh registry (the edge's start) refuses the same way and loads nothing.
  Registry atStart;
  const std::vector<LoadFailure> failures = atStart.loadDirectory(dir_.string());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].reason.rfind("truncated: segment ", 0), 0u) << failures[0].reason;
  EXPECT_TRUE(atStart.list().empty());
}

// The promise of docs/operations.md: a copy caught half-written is refused, keeping the version
// before it, and loaded once the writer has finished.
TEST_F(ReloadTest, HalfWrittenCopyIsRefusedThenLoadedWhenTheWriterFinishes) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  registry.sync(dir_.string());

  const size_t half = static_cast<size_t>(fs::file_size(fixture("anm-gamma-v2.so")) / 4);
  copyHead("anm-gamma-v2.so", "anm-gamma.so", half);
  SyncResult result = registry.sync(dir_.string());
  ASSERT_EQ(result.refused.size(), 1u);
  EXPECT_EQ(result.refused[0].reason.rfind("truncated: ", 0), 0u) << result.refused[0].reason;
  EXPECT_EQ(offeredVersion(registry, "gamma"), "1.0.0");
  const auto warnings = logs.at(Poco::Message::PRIO_WARNING);
  EXPECT_TRUE(std::any_of(warnings.begin(), warnings.end(), [](const auto& w) {
    return w.text.find("keeping_version=1.0.0") != std::string::npos;
  }));

  copyRest("anm-gamma-v2.so", "anm-gamma.so", half);
  result = registry.sync(dir_.string());
  EXPECT_TRUE(result.refused.empty());
  ASSERT_EQ(result.loaded.size(), 1u);
  EXPECT_EQ(result.loaded[0].version, "2.0.0");
  EXPECT_EQ(verify(registry, "gamma").message, "gamma 2.0.0");
  EXPECT_EQ(countWarningsAbout(logs, path("anm-gamma.so")), 1u);
}

TEST_F(ReloadTest, RemovedFileStopsBeingOfferedAndItsHooksAreUnavailable) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "anm-gamma.so");
  copyIn("anm-alpha.so", "anm-alpha.so");
  registry.sync(dir_.string());

  fs::remove(dir_ / "anm-gamma.so");
  const SyncResult result = registry.sync(dir_.string());

  ASSERT_EQ(result.removed.size(), 1u);
  EXPECT_EQ(result.removed[0].name, "gamma");
  EXPECT_FALSE(registry.has("gamma"));
  EXPECT_TRUE(registry.has("alpha"));
  const Outcome outcome = verify(registry, "gamma");
  EXPECT_TRUE(outcome.providerUnavailable);
  EXPECT_EQ(outcome.verdict, store::Verdict::kInvalid);
  EXPECT_FALSE(verify(registry, "alpha").providerUnavailable);
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 stopped"), 1u);
}

TEST_F(ReloadTest, ContestedProviderGoesToTheFirstFileInNameOrderWhateverArrivedFirst) {
  test::LogCapture logs;
  Registry registry;
  copyIn("anm-gamma-v1.so", "b-gamma.so");
  registry.sync(dir_.string());
  ASSERT_EQ(offeredVersion(registry, "gamma"), "1.0.0");

  // A file earlier in name order takes the provider over; the later one is refused, by name.
  copyIn("anm-gamma-v2.so", "a-gamma.so");
  SyncResult result = registry.sync(dir_.string());
  EXPECT_EQ(offeredVersion(registry, "gamma"), "2.0.0");
  ASSERT_EQ(result.refused.size(), 1u);
  EXPECT_EQ(result.refused[0].file, path("b-gamma.so"));
  EXPECT_EQ(result.refused[0].reason,
            "provider gamma is already loaded from " + path("a-gamma.so"));
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 stopped"), 1u);

  // Once the first file is gone, the next one in name order offers the provider again.
  fs::remove(dir_ / "a-gamma.so");
  result = registry.sync(dir_.string());
  EXPECT_EQ(offeredVersion(registry, "gamma"), "1.0.0");
  EXPECT_TRUE(result.refused.empty());
  EXPECT_EQ(registry.list().size(), 1u);

  // A refused file's init never ran: each version started exactly as often as it was offered.
  EXPECT_EQ(countLines(logs, "gamma: gamma 1.0.0 ready"), 2u);
  EXPECT_EQ(countLines(logs, "gamma: gamma 2.0.0 ready"), 1u);
}

TEST_F(ReloadTest, WatcherLoadsAFileCopiedIntoTheDirectoryWithoutAnExplicitSync) {
  test::LogCapture logs;
  Registry registry;
  registry.sync(dir_.string());
  DirectoryWatcher watcher(registry, dir_.string(), DirectoryWatcher::Options{milliseconds(50)});
  ASSERT_TRUE(watcher.start());

  // Written under another name and renamed into place, as an installer does.
  copyIn("anm-gamma-v1.so", "anm-gamma.so.part");
  fs::rename(dir_ / "anm-gamma.so.part", dir_ / "anm-gamma.so");
  const auto giveUpAt = std::chrono::steady_clock::now() + kPatience;
  while (!registry.has("gamma") && std::chrono::steady_clock::now() < giveUpAt) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(registry.has("gamma"));

  fs::remove(dir_ / "anm-gamma.so");
  while (registry.has("gamma") && std::chrono::steady_clock::now() < giveUpAt) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_FALSE(registry.has("gamma"));
  watcher.stop();
}

// Waits until `done` holds, at most kPatience; true when it did.
bool eventually(const std::function<bool()>& done) {
  const auto giveUpAt = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > giveUpAt) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

// A watch follows its directory: after the directory was moved away and made again, the watcher
// still watched the old one and never saw the new files (#5).
TEST_F(ReloadTest, WatcherResumesWhenTheDirectoryIsMovedAwayAndMadeAgain) {
  test::LogCapture logs;
  const fs::path plugins = dir_ / "plugins";
  fs::create_directory(plugins);
  fs::copy_file(fixture("anm-gamma-v1.so"), plugins / "anm-gamma.so");
  Registry registry;
  registry.sync(plugins.string());
  DirectoryWatcher::Options options{milliseconds(50)};
  options.lookForDirectoryEvery = milliseconds(50);
  DirectoryWatcher watcher(registry, plugins.string(), options);
  ASSERT_TRUE(watcher.start());

  // Gone: what was loaded stays offered.
  fs::rename(plugins, dir_ / "plugins.old");
  ASSERT_TRUE(eventually([&] { return !logs.at(Poco::Message::PRIO_WARNING).empty(); }))
      << "the watcher did not notice the move";
  EXPECT_EQ(offeredVersion(registry, "gamma"), "1.0.0");

  // Back, with a new release in it: watched and read.
  fs::create_directory(plugins);
  fs::copy_file(fixture("anm-gamma-v2.so"), plugins / "anm-gamma.so");
  EXPECT_TRUE(eventually([&] { return offeredVersion(registry, "gamma") == "2.0.0"; }));

  // And the watch is live again: a removal is seen without any help.
  fs::remove(plugins / "anm-gamma.so");
  EXPECT_TRUE(eventually([&] { return !registry.has("gamma"); }));
  watcher.stop();
}

TEST_F(ReloadTest, WatcherStartedOnAMissingDirectoryReadsItOnceItAppears) {
  const fs::path plugins = dir_ / "later";
  Registry registry;
  DirectoryWatcher::Options options{milliseconds(50)};
  options.lookForDirectoryEvery = milliseconds(50);
  DirectoryWatcher watcher(registry, plugins.string(), options);
  ASSERT_TRUE(watcher.start());

  fs::create_directory(plugins);
  fs::copy_file(fixture("anm-gamma-v1.so"), plugins / "anm-gamma.so");
  EXPECT_TRUE(eventually([&] { return registry.has("gamma"); }));
  watcher.stop();
}

}  // namespace
}  // namespace anm::plugin
