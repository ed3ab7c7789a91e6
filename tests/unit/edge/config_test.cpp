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
  EXPECT_EQ(config.maxThreads, 64);
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

TEST(ConfigTest, PublicUrlNeedsHttpSchemeAndHostAndNoQueryOrFragment) {
  const std::vector<std::pair<std::string, std::string>> good = {
      {"http://hooks.example", "http://hooks.example"},
      {"https://hooks.example:8443/", "https://hooks.example:8443"},
      {"https://hooks.example/base//", "https://hooks.example/base"},
      {"HTTPS://[::1]:8080/x", "HTTPS://[::1]:8080/x"}};
  for (const auto& [text, expected] : good) {
    EXPECT_EQ(parseConfig({{"public_url", text}}, "/x").publicUrl, expected) << text;
  }

  const std::vector<std::string> bad = {"hooks.example",
                                        "http://",
                                        "http:///path",
                                        "http://:8080",
                                        "https://hooks.example?x=1",
                                        "https://hooks.example/#top",
                                        "https://hooks.example:99999",
                                        "https://hooks.example:",
                                        "https://user:pw@hooks.example",
                                        "https://hooks example",
                                        "https://[::1",
                                        "ws://hooks.example"};
  for (const auto& text : bad) {
    try {
      parseConfig({{"public_url", text}}, "/x");
      ADD_FAILURE() << "accepted " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("invalid value for public_url"), std::string::npos)
          << e.what();
    }
  }
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The message readConfigFile refuses `text` with, or "" when it accepts it.
  std::string refusal(const std::string& text) {
    const std::string path = dir_ + "/edge.properties";
    std::ofstream(path) << text;
    try {
      readConfigFile(path);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(ConfigFileTest, LineWithoutEqualsSignIsNamedByNumber) {
  const std::string message = refusal("# settings\nlisten = 127.0.0.1:0\n\nhttp.max_threads 4\n");
  EXPECT_NE(message.find("line 4 has no '='"), std::string::npos) << message;
  EXPECT_EQ(message.find("unknown configuration key"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, KeyGivenTwiceIsRefusedWithBothLineNumbers) {
  const std::string message =
      refusal("listen = 127.0.0.1:1\nlog.level = debug\n! note\nlisten=127.0.0.1:2\n");
  EXPECT_NE(message.find("listen is given twice"), std::string::npos) << message;
  EXPECT_NE(message.find("lines 1 and 4"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, UnknownKeyAndEmptyKeyAreNamedWithTheirLine) {
  std::string message = refusal("listen = 127.0.0.1:0\nlisen = x\n");
  EXPECT_NE(message.find("unknown configuration key lisen"), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  message = refusal(" = 4\n");
  EXPECT_NE(message.find("line 1 has no key"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, CommentsBlanksAndValuesWithEqualsSignsAreRead) {
  const std::string path = dir_ + "/edge.properties";
  std::ofstream(path) << "# comment\r\n\r\n  ! other comment\n\tpublic_url = http://h/a=b \r\n"
                         "log.level=\n";
  const auto values = readConfigFile(path);
  EXPECT_EQ(values.size(), 2u);
  EXPECT_EQ(values.at("public_url"), "http://h/a=b");
  EXPECT_EQ(values.at("log.level"), "");
}

}  // namespace
}  // namespace anm::edge
