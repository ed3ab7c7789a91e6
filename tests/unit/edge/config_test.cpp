// tests/unit/edge/config_test.cpp: defaults, overrides and refusals of the edge's settings.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  EXPECT_EQ(config.storeKind, StoreKind::kSqlite);
  EXPECT_EQ(config.sqlitePath, "./anonymily-data/anonymily.db");
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
      {"public_url", "ftp://x"},      {"store", "postgres://u@h/db"},
      {"store", "sqlite:"},           {"nonsense", "1"}};
  for (const auto& [key, value] : bad) {
    EXPECT_THROW(parseConfig({{key, value}}, "/x"), ConfigError) << key << "=" << value;
  }
}

TEST(ConfigTest, JwtLifetimeIsOneToFifteenMinutes) {
  EXPECT_EQ(parseConfig({}, "/x").jwtTtl.count(), 900);

  // Both ends are accepted as given.
  EXPECT_EQ(parseConfig({{"auth.jwt_ttl_s", "60"}}, "/x").jwtTtl.count(), 60);
  EXPECT_EQ(parseConfig({{"auth.jwt_ttl_s", "900"}}, "/x").jwtTtl.count(), 900);

  // The message of a refused value, or "" when it was accepted.
  const auto refusal = [](const std::string& text) -> std::string {
    try {
      parseConfig({{"auth.jwt_ttl_s", text}}, "/x");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };

  // One second past either end is refused naming the key and its range.
  for (const char* text : {"59", "901", "0", "-60"}) {
    const std::string message = refusal(text);
    EXPECT_NE(message.find("invalid value for auth.jwt_ttl_s: " + std::string(text) +
                           " is outside 60..900"),
              std::string::npos)
        << text << ": " << message;
  }

  // So is what is not a whole number of seconds.
  for (const char* text : {"", "600s", "1e3", "60.5"}) {
    const std::string message = refusal(text);
    EXPECT_NE(message.find("invalid value for auth.jwt_ttl_s"), std::string::npos)
        << text << ": " << message;
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

  // A byte order mark before the first key is not part of it.
  std::ofstream(dir + "/bom.properties") << "\xEF\xBB\xBFlisten = 127.0.0.1:9001\n";
  EXPECT_EQ(readConfigFile(dir + "/bom.properties").at("listen"), "127.0.0.1:9001");
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

// --- the mysql store ---

// A password that must never show up in a message or in config.store.
constexpr char kPassword[] = "Sup3rSecretPw";

/// Settings tests that touch the environment and files put everything back.
class MySqlConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    if (const char* old = getenv(kDefaultStorePasswordEnv)) savedDefault_ = old;
    unsetenv(kDefaultStorePasswordEnv);
    unsetenv("ANM_CONFIG_TEST_PW");
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    unsetenv("ANM_CONFIG_TEST_PW");
    if (savedDefault_) {
      setenv(kDefaultStorePasswordEnv, savedDefault_->c_str(), 1);
    } else {
      unsetenv(kDefaultStorePasswordEnv);
    }
  }

  std::string writeFile(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  // The message parseConfig refuses `values` with, or "" when it accepts them.
  static std::string refusal(const ConfigValues& values) {
    try {
      parseConfig(values, "/x");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
  std::optional<std::string> savedDefault_;
};

TEST_F(MySqlConfigTest, TcpUrlWithPortAndPassword) {
  const auto config = parseConfig(
      {{"store", std::string("mysql://anm:") + kPassword + "@db.internal:3307/relay"}}, "/x");
  EXPECT_EQ(config.storeKind, StoreKind::kMySql);
  const auto& endpoint = config.mysql.endpoint;
  EXPECT_EQ(endpoint.host, "db.internal");
  EXPECT_EQ(endpoint.port, 3307);
  EXPECT_EQ(endpoint.user, "anm");
  EXPECT_EQ(endpoint.password, kPassword);
  EXPECT_EQ(endpoint.database, "relay");
  EXPECT_TRUE(endpoint.socketPath.empty());
  EXPECT_EQ(config.store, "mysql://anm:***@db.internal:3307/relay");

  // The numbers the store runs with unless told otherwise.
  EXPECT_EQ(config.mysql.poolSize, 8u);
  EXPECT_EQ(config.mysql.pollInterval.count(), 5);
}

TEST_F(MySqlConfigTest, TcpUrlWithoutPortOrPasswordIsShownAsGiven) {
  const auto config = parseConfig({{"store", "mysql://anm@10.0.0.7/relay_1"}}, "/x");
  EXPECT_EQ(config.storeKind, StoreKind::kMySql);
  EXPECT_EQ(config.mysql.endpoint.host, "10.0.0.7");
  EXPECT_EQ(config.mysql.endpoint.port, 3306);
  EXPECT_EQ(config.mysql.endpoint.password, "");
  EXPECT_EQ(config.mysql.endpoint.database, "relay_1");
  EXPECT_EQ(config.store, "mysql://anm@10.0.0.7/relay_1");
}

TEST_F(MySqlConfigTest, Ipv6HostInBrackets) {
  const auto config =
      parseConfig({{"store", std::string("mysql://anm:") + kPassword + "@[::1]:3310/relay"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.host, "::1");
  EXPECT_EQ(config.mysql.endpoint.port, 3310);
  EXPECT_EQ(config.store, "mysql://anm:***@[::1]:3310/relay");
}

TEST_F(MySqlConfigTest, SocketForm) {
  const auto config =
      parseConfig({{"store", "mysql://anm@localhost/relay?socket=/run/mysqld/mysqld.sock"}}, "/x");
  EXPECT_EQ(config.storeKind, StoreKind::kMySql);
  EXPECT_EQ(config.mysql.endpoint.socketPath, "/run/mysqld/mysqld.sock");
  EXPECT_EQ(config.mysql.endpoint.user, "anm");
  EXPECT_EQ(config.mysql.endpoint.database, "relay");
}

TEST_F(MySqlConfigTest, PercentEncodedUserAndPasswordAreDecodedAndHidden) {
  const auto config = parseConfig({{"store", "mysql://an%40m:p%3Aw%2F%40x@h/relay"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.user, "an@m");
  EXPECT_EQ(config.mysql.endpoint.password, "p:w/@x");
  EXPECT_EQ(config.store, "mysql://an%40m:***@h/relay");

  // An unencoded '@' in the password: the credentials end at the last one.
  const auto raw = parseConfig({{"store", "mysql://anm:p@ss@h/relay"}}, "/x");
  EXPECT_EQ(raw.mysql.endpoint.password, "p@ss");
  EXPECT_EQ(raw.store, "mysql://anm:***@h/relay");
}

TEST_F(MySqlConfigTest, PasswordFileIsReadWithOneNewlineDropped) {
  const auto path = writeFile("pw", std::string(kPassword) + "\n", 0600);
  auto config =
      parseConfig({{"store", "mysql://anm@h/relay"}, {"store.password_file", path}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, kPassword);
  EXPECT_EQ(config.store, "mysql://anm@h/relay");

  // CRLF counts as one newline; a second newline belongs to the password.
  writeFile("crlf", "a b\r\n", 0400);
  config = parseConfig({{"store", "mysql://anm@h/relay"}, {"store.password_file", dir_ + "/crlf"}},
                       "/x");
  EXPECT_EQ(config.mysql.endpoint.password, "a b");
  writeFile("two", "pw\n\n", 0600);
  config =
      parseConfig({{"store", "mysql://anm@h/relay"}, {"store.password_file", dir_ + "/two"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, "pw\n");
}

TEST_F(MySqlConfigTest, PasswordFileReadableByOthersIsRefused) {
  for (mode_t mode : {0640, 0604, 0660, 0700 | 0020}) {
    const auto path = writeFile("pw", kPassword, mode);
    const auto message = refusal({{"store", "mysql://anm@h/relay"}, {"store.password_file", path}});
    EXPECT_NE(message.find("chmod 600"), std::string::npos) << std::oct << mode << ": " << message;
    EXPECT_NE(message.find("store.password_file"), std::string::npos) << message;
    EXPECT_EQ(message.find(kPassword), std::string::npos) << message;
  }
}

TEST_F(MySqlConfigTest, MissingOrEmptyPasswordFileIsRefused) {
  auto message =
      refusal({{"store", "mysql://anm@h/relay"}, {"store.password_file", dir_ + "/no-such-file"}});
  EXPECT_NE(message.find("store.password_file"), std::string::npos) << message;
  EXPECT_NE(message.find("no-such-file"), std::string::npos) << message;

  for (const char* text : {"", "\n", "\r\n"}) {
    const auto path = writeFile("empty", text, 0600);
    message = refusal({{"store", "mysql://anm@h/relay"}, {"store.password_file", path}});
    EXPECT_NE(message.find("is empty"), std::string::npos) << message;
  }

  message = refusal({{"store", "mysql://anm@h/relay"}, {"store.password_file", dir_}});
  EXPECT_NE(message.find("not a regular file"), std::string::npos) << message;
}

TEST_F(MySqlConfigTest, DefaultPasswordVariableIsUsedOnlyWithoutAnotherSource) {
  setenv(kDefaultStorePasswordEnv, "from-env", 1);
  auto config = parseConfig({{"store", "mysql://anm@h/relay"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, "from-env");

  // The URL's own password wins over the default variable, and so does the file.
  config = parseConfig({{"store", "mysql://anm:url-pw@h/relay"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, "url-pw");
  const auto path = writeFile("pw", "file-pw", 0600);
  config = parseConfig({{"store", "mysql://anm@h/relay"}, {"store.password_file", path}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, "file-pw");

  // Without the variable there is no password (a server may allow that).
  unsetenv(kDefaultStorePasswordEnv);
  config = parseConfig({{"store", "mysql://anm@h/relay"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, "");
}

TEST_F(MySqlConfigTest, NamedPasswordVariable) {
  setenv(kDefaultStorePasswordEnv, "not-this-one", 1);
  setenv("ANM_CONFIG_TEST_PW", kPassword, 1);
  auto config = parseConfig(
      {{"store", "mysql://anm@h/relay"}, {"store.password_env", "ANM_CONFIG_TEST_PW"}}, "/x");
  EXPECT_EQ(config.mysql.endpoint.password, kPassword);

  // A named variable that is not there is a mistake, not an empty password.
  unsetenv("ANM_CONFIG_TEST_PW");
  auto message =
      refusal({{"store", "mysql://anm@h/relay"}, {"store.password_env", "ANM_CONFIG_TEST_PW"}});
  EXPECT_NE(message.find("ANM_CONFIG_TEST_PW is not set"), std::string::npos) << message;
  message = refusal({{"store", "mysql://anm@h/relay"}, {"store.password_env", "1BAD-NAME"}});
  EXPECT_NE(message.find("not an environment variable name"), std::string::npos) << message;
}

TEST_F(MySqlConfigTest, TwoPasswordSourcesAreAmbiguous) {
  setenv("ANM_CONFIG_TEST_PW", "env-pw", 1);
  const auto path = writeFile("pw", "file-pw", 0600);
  const std::string withPassword = std::string("mysql://anm:") + kPassword + "@h/relay";
  const std::vector<ConfigValues> ambiguous = {
      {{"store", withPassword}, {"store.password_file", path}},
      {{"store", withPassword}, {"store.password_env", "ANM_CONFIG_TEST_PW"}},
      {{"store", "mysql://anm@h/relay"},
       {"store.password_file", path},
       {"store.password_env", "ANM_CONFIG_TEST_PW"}}};
  for (const auto& values : ambiguous) {
    const auto message = refusal(values);
    EXPECT_NE(message.find("keep only one"), std::string::npos) << message;
    EXPECT_EQ(message.find(kPassword), std::string::npos) << message;
    EXPECT_EQ(message.find("file-pw"), std::string::npos) << message;
    EXPECT_EQ(message.find("env-pw"), std::string::npos) << message;
  }
}

TEST_F(MySqlConfigTest, PoolSizeAndPollIntervalBounds) {
  const std::string url = "mysql://anm@h/relay";
  auto config = parseConfig({{"store", url},
                             {"store.pool_size", std::to_string(kMinStorePoolSize)},
                             {"store.poll_interval_ms", std::to_string(kMaxStorePollMs)}},
                            "/x");
  EXPECT_EQ(config.mysql.poolSize, 1u);
  EXPECT_EQ(config.mysql.pollInterval.count(), 1000);
  config = parseConfig({{"store", url},
                        {"store.pool_size", std::to_string(kMaxStorePoolSize)},
                        {"store.poll_interval_ms", std::to_string(kMinStorePollMs)}},
                       "/x");
  EXPECT_EQ(config.mysql.poolSize, 256u);
  EXPECT_EQ(config.mysql.pollInterval.count(), 1);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"store.pool_size", "0"},         {"store.pool_size", "257"},
      {"store.pool_size", "8x"},        {"store.pool_size", ""},
      {"store.poll_interval_ms", "0"},  {"store.poll_interval_ms", "1001"},
      {"store.poll_interval_ms", "-5"}, {"store.poll_interval_ms", "5ms"}};
  for (const auto& [key, text] : bad) {
    const auto message = refusal({{"store", url}, {key, text}});
    EXPECT_NE(message.find("invalid value for " + key), std::string::npos)
        << key << "=" << text << ": " << message;
  }
}

TEST_F(MySqlConfigTest, MySqlKeysWithASqliteStoreAreRefused) {
  const auto path = writeFile("pw", "pw", 0600);
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"store.pool_size", "8"},
      {"store.poll_interval_ms", "5"},
      {"store.password_file", path},
      {"store.password_env", kDefaultStorePasswordEnv}};
  for (const auto& [key, text] : keys) {
    for (const auto& store : std::vector<std::optional<std::string>>{
             std::nullopt, std::string("sqlite:" + dir_ + "/a.db")}) {
      ConfigValues values{{key, text}};
      if (store) values["store"] = *store;
      EXPECT_EQ(refusal(values), key + " applies to a mysql store only") << key;
    }
  }
}

TEST_F(MySqlConfigTest, NoMessageRepeatsThePassword) {
  const std::string pw = kPassword;
  const std::vector<ConfigValues> bad = {
      {{"store", "mysql://anm:" + pw + "@h:99999/relay"}},
      {{"store", "mysql://anm:" + pw + "@h/bad-name"}},
      {{"store", "mysql://anm:" + pw + "@h/relay?ssl=1"}},
      {{"store", "mysql://anm:" + pw + "@h"}},
      {{"store", "mysql://anm:" + pw + "@/relay"}},
      {{"store", "mysql://anm:" + pw + "%zz@h/relay"}},
      {{"store", "mysql://anm:" + pw + "@h/relay"}, {"store.pool_size", "0"}},
      {{"store", "mysql://anm:" + pw + "@h/relay"}, {"store.poll_interval_ms", "x"}},
      {{"store", "postgres://anm:" + pw + "@h/relay"}},
      {{"store", "MySQL://anm:" + pw + "@h/relay"}},
      {{"store", "anm:" + pw + "@h/relay"}},
      {{"store", pw}}};
  for (const auto& values : bad) {
    const auto message = refusal(values);
    EXPECT_FALSE(message.empty()) << values.at("store");
    EXPECT_EQ(message.find(pw), std::string::npos) << message;
    EXPECT_EQ(message.find("Sup3r"), std::string::npos) << message;
  }
}

TEST(RedactStoreTest, HidesOnlyThePassword) {
  EXPECT_EQ(redactStore("mysql://u:pw@h:1/db"), "mysql://u:***@h:1/db");
  EXPECT_EQ(redactStore("mysql://u:p@w:x@[::1]/db"), "mysql://u:***@[::1]/db");
  EXPECT_EQ(redactStore("mysql://u:@h/db"), "mysql://u:***@h/db");
  EXPECT_EQ(redactStore("mysql://u@h:3306/db"), "mysql://u@h:3306/db");
  EXPECT_EQ(redactStore("mysql://u@localhost/db?socket=/run/m.sock"),
            "mysql://u@localhost/db?socket=/run/m.sock");
  EXPECT_EQ(redactStore("sqlite:/var/lib/anm/a:b@c.db"), "sqlite:/var/lib/anm/a:b@c.db");
}

TEST_F(MySqlConfigTest, ConfigFileAcceptsTheStoreKeys) {
  const std::string path = dir_ + "/edge.properties";
  std::ofstream(path) << "store = mysql://anm@h/relay\nstore.pool_size = 4\n"
                         "store.poll_interval_ms = 20\nstore.password_env = ANM_CONFIG_TEST_PW\n";
  setenv("ANM_CONFIG_TEST_PW", "pw", 1);
  const auto config = parseConfig(readConfigFile(path), "/x");
  EXPECT_EQ(config.mysql.poolSize, 4u);
  EXPECT_EQ(config.mysql.pollInterval.count(), 20);
  EXPECT_EQ(config.mysql.endpoint.password, "pw");
}

}  // namespace
}  // namespace anm::edge
