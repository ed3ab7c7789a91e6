// tests/packaging/config_test.cpp: the installed /etc/anonymily/edge.conf against the edge's
// own parser: it names every key the edge knows, shows each default truly, and sets only what
// a service needs.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace anm::edge {
namespace {

namespace fs = std::filesystem;

/// One setting line of the file: "key = value", active or commented out ("#key = value"),
/// with the "# Default: ..." line of the comment block above it.
struct Setting {
  std::string key;
  std::string value;
  bool active = false;
  std::string documentedDefault;  ///< the text after "# Default: ", "" when there is none
  size_t line = 0;
};

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::vector<Setting> readSettings(const fs::path& path) {
  std::ifstream in(path);
  std::vector<Setting> settings;
  std::string documentedDefault;
  size_t number = 0;
  for (std::string text; std::getline(in, text);) {
    ++number;
    if (text.rfind("# Default: ", 0) == 0) {
      documentedDefault = text.substr(11);
      continue;
    }
    // A setting is a line of its own whose key the parser would take: prose never starts a
    // line with a key directly after the '#'.
    const bool commented = text.size() > 1 && text[0] == '#' && text[1] != ' ' && text[1] != '#';
    const std::string body = commented ? text.substr(1) : text;
    const auto equals = body.find('=');
    if (text.empty() || (text[0] == '#' && !commented) || equals == std::string::npos) {
      if (text.empty()) documentedDefault.clear();
      continue;
    }
    settings.push_back({trim(body.substr(0, equals)), trim(body.substr(equals + 1)), !commented,
                        documentedDefault, number});
    documentedDefault.clear();
  }
  return settings;
}

/// Every field of a configuration, so that two of them can be compared as text.
std::string describe(const EdgeConfig& c) {
  std::ostringstream out;
  const auto& m = c.mysql;
  out << c.listenHost << '|' << c.listenPort << '|' << c.dataDir << '|' << c.pluginDir << '|'
      << c.pluginDirGiven << '|' << c.publicUrl << '|' << c.store << '|' << c.sqlitePath << '|'
      << static_cast<int>(c.storeKind) << '|' << m.endpoint.host << '|' << m.endpoint.port << '|'
      << m.endpoint.socketPath << '|' << m.endpoint.user << '|' << m.endpoint.password << '|'
      << m.endpoint.database << '|' << m.poolSize << '|' << m.pollInterval.count() << '|'
      << c.maxBodyBytes << '|' << c.maxThreads << '|' << c.maxQueued << '|' << c.httpTimeout.count()
      << '|' << c.heartbeat.count() << '|' << c.logLevel << '|' << c.tlsCert << '|' << c.tlsKey
      << '|' << c.behindProxy << '|' << c.keyFile << '|' << c.keysEnv << '|' << c.keysEnvGiven
      << '|' << c.jwtTtl.count() << '|' << c.jwtIssuer << '|' << c.anonymousHooks << '|'
      << c.anonymousTtl.count() << '|' << c.ratePerHook << '|' << c.burstPerHook << '|'
      << c.ratePerAddress << '|' << c.burstPerAddress << '|' << c.requestTimeout.count() << '|'
      << c.shutdownTimeout.count() << '|' << c.watchPlugins << '|' << c.explain.url << '|'
      << c.explain.model << '|' << c.explain.perHour << '|' << c.explain.timeout.count();
  return out.str();
}

class InstalledConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* root = std::getenv("ANM_PACKAGING_DESTDIR");
    if (root == nullptr) GTEST_SKIP() << "ANM_PACKAGING_DESTDIR is not set";
    path_ = fs::path(root) / "etc/anonymily/edge.conf";
    ASSERT_TRUE(fs::exists(path_)) << path_;
    settings_ = readSettings(path_);
  }

  fs::path path_;
  std::vector<Setting> settings_;
};

TEST_F(InstalledConfigTest, NamesEveryKeyOnceWithItsDefault) {
  std::map<std::string, size_t> seen;
  for (const Setting& s : settings_) {
    EXPECT_TRUE(isKnownConfigKey(s.key)) << "line " << s.line << ": unknown key " << s.key;
    EXPECT_FALSE(s.documentedDefault.empty())
        << "line " << s.line << ": " << s.key << " has no \"# Default: \" line above it";
    EXPECT_EQ(seen.count(s.key), 0u) << s.key << " appears twice";
    seen[s.key] = s.line;
  }
  for (const std::string& key : knownConfigKeys()) {
    EXPECT_EQ(seen.count(key), 1u) << "edge.conf does not describe " << key;
  }
}

TEST_F(InstalledConfigTest, SetsOnlyWhatTheServiceNeeds) {
  std::set<std::string> active;
  for (const Setting& s : settings_) {
    if (s.active) active.insert(s.key);
  }
  EXPECT_EQ(active, (std::set<std::string>{"data_dir", "listen", "plugin_dir"}));

  // The file as installed is accepted by the edge, and says what the unit provides.
  const EdgeConfig config = parseConfig(readConfigFile(path_.string()), "/usr/bin");
  EXPECT_EQ(config.dataDir, "/var/lib/anonymily");
  EXPECT_EQ(config.pluginDir, "/usr/lib/anonymily/plugins");
  EXPECT_EQ(config.listenHost, "127.0.0.1");
  EXPECT_EQ(config.store, "sqlite:/var/lib/anonymily/anonymily.db");
}

// Uncommenting a line whose value is the documented default changes nothing: the edge parses
// the file with that line exactly as it parses it without.
TEST_F(InstalledConfigTest, EveryShownDefaultIsTheDefault) {
  ::setenv("ANONYMILY_STORE_PASSWORD", "from-the-environment", 1);
  const ConfigValues installed = readConfigFile(path_.string());
  size_t checked = 0;
  for (const Setting& s : settings_) {
    if (s.active || s.value != s.documentedDefault) continue;
    ConfigValues base = installed;
    // The mysql-only keys are compared on a mysql store (nothing connects while parsing).
    if (s.key.rfind("store.", 0) == 0) base["store"] = "mysql://anonymily@127.0.0.1/anonymily";
    // The explain.* keys are compared with the explanation on (nothing connects either).
    if (s.key.rfind("explain.", 0) == 0) base["explain.url"] = "http://127.0.0.1:9/v1";
    ConfigValues with = base;
    with[s.key] = s.value;
    EXPECT_EQ(describe(parseConfig(with, "/usr/bin")), describe(parseConfig(base, "/usr/bin")))
        << "line " << s.line << ": " << s.key << " = " << s.value << " is not the default";
    ++checked;
  }
  // Most keys have a plain default; only paths, URLs and variable names do not.
  EXPECT_GE(checked, 20u);
}

}  // namespace
}  // namespace anm::edge
