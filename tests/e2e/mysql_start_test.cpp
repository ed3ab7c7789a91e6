// tests/e2e/mysql_start_test.cpp: an edge on MySQL refuses to start with a body limit the
// database server could not store, and starts with one it can.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/crypto/keys.h"
#include "tests/e2e/support/child_process.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/temp_dir.h"
#include "tests/support/mysql/test_mysql.h"

namespace anm::e2e {
namespace {

// EX_CONFIG: what the edge exits with for a setting it cannot run with (README.md).
constexpr int kExitConfig = 78;

// What a body needs beyond its own size in one packet to the server (README.md: "plus 64 KiB").
constexpr int64_t kPacketOverheadBytes = 64 << 10;

// Over the 64M max_allowed_packet scripts/mariadb starts the server with, and under the
// edge's own ceiling for ingest.max_body_bytes (256 MiB).
constexpr int64_t kOversizedBodyLimit = 100000000;

using Settings = std::vector<std::pair<std::string, std::string>>;

/// How one edge start ended when it did not come up: its exit code and every line it wrote.
struct Refusal {
  std::optional<int> exitCode;
  bool wrotePort = false;
  std::vector<std::string> lines;

  /// The first line holding every one of `words`, or "" when none does.
  std::string lineWith(const std::vector<std::string>& words) const {
    for (const auto& line : lines) {
      bool all = true;
      for (const auto& word : words) all = all && line.find(word) != std::string::npos;
      if (all) return line;
    }
    return "";
  }
};

class MySqlStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(test::requireMySqlServer());
    if (IsSkipped()) return;
    db_ = std::make_unique<test::TestDatabase>(*test::testMySqlServer(), test::kUtf8mb4BinOptions);

    // One key ring for every edge of a test: the first records its key in the database, and
    // one with a ring of its own would be refused for that instead of for its body limit.
    keyFile_ = dir_.path() / "encryption.keys";
    crypto::KeyRing::writeFile(keyFile_.string(), crypto::KeyRing::newKeyLine("k1"));
  }

  void TearDown() override {
    edges_.clear();
    db_.reset();
  }

  int64_t serverPacket() const { return db_->connect()->queryInt("SELECT @@max_allowed_packet"); }

  /// The store setting for the test database and the test's key file, then `extra`.
  Settings settings(const Settings& extra = {}) const {
    Settings all{{"store", db_->url()}, {"encryption.key_file", keyFile_.string()}};
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  }

  /// Starts an edge the way EdgeProcess does; throws with its output when it does not come up.
  EdgeProcess& startEdge(const std::string& name, const Settings& values) {
    EdgeProcess::Options options;
    options.binary = ANM_E2E_EDGE_BIN;
    options.pluginDir = ANM_E2E_PLUGIN_DIR;
    options.workDir = dir_.sub("edge-" + name);
    options.home = dir_.sub("edge-" + name + "-home");
    options.settings = values;
    edges_.push_back(std::make_unique<EdgeProcess>(options));
    return *edges_.back();
  }

  /// Runs an edge with the command line EdgeProcess gives it and waits until it exits, at most
  /// kStartTimeout; an edge still running then is stopped and reported without an exit code.
  Refusal runRefusedEdge(const std::string& name, const Settings& values) {
    const std::filesystem::path work = dir_.sub("edge-" + name);
    const std::filesystem::path home = dir_.sub("edge-" + name + "-home");
    const std::filesystem::path portFile = work / "edge.port";
    const std::filesystem::path config = work / "edge.properties";
    std::filesystem::create_directories(work / "edge-data");
    {
      std::ofstream out(config, std::ios::trunc);
      for (const auto& [key, value] : values) out << key << " = " << value << "\n";
    }
    ChildProcess edge(ANM_E2E_EDGE_BIN,
                      {"--listen", "127.0.0.1:0", "--port-file", portFile.string(), "--data-dir",
                       (work / "edge-data").string(), "--plugin-dir", ANM_E2E_PLUGIN_DIR,
                       "--config", config.string()},
                      productEnv(home));
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (edge.running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    Refusal refusal;
    refusal.exitCode = edge.exitCode();
    refusal.wrotePort = !readFile(portFile).empty();
    if (!refusal.exitCode) edge.stop();
    refusal.lines = edge.stderrLines();
    const auto out = edge.stdoutLines();
    refusal.lines.insert(refusal.lines.end(), out.begin(), out.end());
    return refusal;
  }

  TempDir dir_;
  std::filesystem::path keyFile_;
  std::unique_ptr<test::TestDatabase> db_;
  std::vector<std::unique_ptr<EdgeProcess>> edges_;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

TEST_F(MySqlStartTest, BodyLimitOverTheServersPacketExitsWithConfigErrorNamingBoth) {
  ASSERT_LT(serverPacket(), kOversizedBodyLimit + kPacketOverheadBytes)
      << "the test server takes packets this large; the case needs a smaller one";

  Refusal refusal = runRefusedEdge(
      "oversized", settings({{"ingest.max_body_bytes", std::to_string(kOversizedBodyLimit)}}));
  ASSERT_TRUE(refusal.exitCode.has_value()) << "the edge did not exit; it wrote:\n"
                                            << joined(refusal.lines);
  EXPECT_EQ(*refusal.exitCode, kExitConfig) << joined(refusal.lines);
  EXPECT_FALSE(refusal.wrotePort) << "the edge listened before refusing";
  const std::string line = refusal.lineWith({"ingest.max_body_bytes", "max_allowed_packet"});
  EXPECT_FALSE(line.empty()) << "no line names both settings:\n" << joined(refusal.lines);
  EXPECT_NE(line.find(std::to_string(kOversizedBodyLimit)), std::string::npos) << line;
  EXPECT_EQ(joined(refusal.lines).find(db_->endpoint().password), std::string::npos)
      << "the password leaked";
}

TEST_F(MySqlStartTest, DefaultBodyLimitStartsAndServes) {
  EdgeProcess& edge = startEdge("default", settings());
  EXPECT_TRUE(edge.process().running());

  // It is serving on the database: a hook can be created.
  WireResponse created = apiPost(edge.port(), "/api/v1/hooks", "{}");
  EXPECT_EQ(created.status, 201) << created.message.startLine << " " << created.message.body;
  EXPECT_EQ(db_->connect()->queryInt("SELECT COUNT(*) FROM hooks"), 1);
}

TEST_F(MySqlStartTest, BodyLimitPlus64KiBMustFitThePacketToTheByte) {
  const int64_t fits = serverPacket() - kPacketOverheadBytes;
  ASSERT_GT(fits, 0);

  // The largest limit that fits starts; one byte more is refused.
  EXPECT_NO_THROW(startEdge("fits", settings({{"ingest.max_body_bytes", std::to_string(fits)}})));
  Refusal refusal =
      runRefusedEdge("over", settings({{"ingest.max_body_bytes", std::to_string(fits + 1)}}));
  ASSERT_TRUE(refusal.exitCode.has_value()) << "the edge did not exit; it wrote:\n"
                                            << joined(refusal.lines);
  EXPECT_EQ(*refusal.exitCode, kExitConfig) << joined(refusal.lines);
  EXPECT_FALSE(refusal.lineWith({"ingest.max_body_bytes", "max_allowed_packet"}).empty())
      << joined(refusal.lines);
}

TEST_F(MySqlStartTest, EdgeWithAnotherKeyUnderTheStoresKeyIdExitsWithConfigError) {
  // The first edge records its key k1 (and a check value sealed under it) in the store.
  startEdge("first", settings());

  // An edge without the key file generates a k1 of its own in its data dir: same id, other
  // bytes. It must refuse rather than seal records the others cannot open.
  Refusal refusal = runRefusedEdge("own-ring", {{"store", db_->url()}});
  ASSERT_TRUE(refusal.exitCode.has_value()) << "the edge did not exit; it wrote:\n"
                                            << joined(refusal.lines);
  EXPECT_EQ(*refusal.exitCode, kExitConfig) << joined(refusal.lines);
  EXPECT_FALSE(refusal.wrotePort) << "the edge listened before refusing";
  EXPECT_FALSE(refusal.lineWith({"encryption key", "k1"}).empty()) << "no line names the key:\n"
                                                                   << joined(refusal.lines);

  // The refused edge changed nothing: one with the right ring still starts and serves.
  EdgeProcess& again = startEdge("again", settings());
  WireResponse created = apiPost(again.port(), "/api/v1/hooks", "{}");
  EXPECT_EQ(created.status, 201) << created.message.startLine << " " << created.message.body;
}

}  // namespace
}  // namespace anm::e2e
