// tests/unit/edge/config_test.cpp: defaults, overrides and refusals of the edge's settings.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace anm::edge {
namespace {

TEST(ConfigTest, DefaultsWithoutAnySetting) {
  const EdgeConfig config = parseConfig({}, "/opt/anm/bin");
  EXPECT_EQ(config.listenHost, "127.0.0.1");
  EXPECT_EQ(config.listenPort, 8080);
  EXPECT_EQ(config.dataDir, "./anonymily-data");
  EXPECT_EQ(config.store, "sqlite:./anonymily-data/anonymily.db");
  EXPECT_EQ(config.pluginDir, "/opt/anm/lib/anonymily/plugins");
  EXPECT_FALSE(config.pluginDirGiven);
  EXPECT_EQ(config.maxBodyBytes, 10485760u);
  EXPECT_EQ(config.maxThreads, 32);
  EXPECT_EQ(config.maxQueued, 64);
  EXPECT_EQ(config.heartbeat.count(), 15000);
  EXPECT_EQ(config.logLevel, "information");
  EXPECT_TRUE(config.publicUrl.empty());
}

TEST(ConfigTest, ValuesAreParsed) {
  const EdgeConfig config = parseConfig({{"listen", "[::1]:0"},
                                         {"data_dir", "/var/lib/anm"},
                                         {"public_url", "https://hooks.example/"},
                                         {"ingest.max_body_bytes", "1"},
                                         {"http.max_threads", "1024"},
                                         {"stream.heartbeat_ms", "100"},
                                         {"log.level", "debug"}},
                                        "/x");
  EXPECT_EQ(config.listenHost, "::1");
  EXPECT_EQ(config.listenPort, 0);
  EXPECT_EQ(config.store, "sqlite:/var/lib/anm/anonymily.db");
  EXPECT_EQ(config.sqlitePath, "/var/lib/anm/anonymily.db");
  EXPECT_EQ(config.publicUrl, "https://hooks.example");
  EXPECT_EQ(config.maxBodyBytes, 1u);
  EXPECT_EQ(config.maxThreads, 1024);
  EXPECT_EQ(config.heartbeat.count(), 100);
}

TEST(ConfigTest, OutOfRangeAndMalformedValuesAreRefused) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"listen", "127.0.0.1"},        {"listen", "127.0.0.1:65536"},
      {"listen", "::1:80"},           {"listen", ":80"},
      {"http.max_threads", "0"},      {"http.max_threads", "1025"},
      {"http.max_threads", "4x"},     {"http.max_queued", "0"},
      {"ingest.max_body_bytes", "0"}, {"ingest.max_body_bytes", "268435457"},
      {"stream.heartbeat_ms", "99"},  {"log.level", "chatty"},
      {"public_url", "ftp://x"},      {"store", "mysql://u@h/db"},
      {"store", "sqlite:"},           {"nonsense", "1"}};
  for (const auto& [key, value] : bad) {
    EXPECT_THROW(parseConfig({{key, value}}, "/x"), ConfigError) << key << "=" << value;
  }
}

TEST(ConfigTest, ReadsPropertiesFileAndRefusesUnknownKeys) {
  char pattern[] = "/tmp/anm-config-test-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  std::ofstream(dir + "/ok.properties") << "listen = 0.0.0.0:9000\nhttp.max_threads=4\n";
  const auto values = readConfigFile(dir + "/ok.properties");
  EXPECT_EQ(values.at("listen"), "0.0.0.0:9000");
  EXPECT_EQ(values.at("http.max_threads"), "4");
  std::ofstream(dir + "/bad.properties") << "http.max_thread = 4\n";
  EXPECT_THROW(readConfigFile(dir + "/bad.properties"), ConfigError);
  EXPECT_THROW(readConfigFile(dir + "/missing.properties"), ConfigError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace anm::edge
