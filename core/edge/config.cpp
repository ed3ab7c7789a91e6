// core/edge/config.cpp: parsing and checking of the edge's settings.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/config.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>

namespace anm::edge {
namespace {

constexpr std::array<const char*, 38> kKnownKeys = {"listen",
                                                    "data_dir",
                                                    "plugin_dir",
                                                    "public_url",
                                                    "store",
                                                    "store.pool_size",
                                                    "store.poll_interval_ms",
                                                    "store.password_file",
                                                    "store.password_env",
                                                    "ingest.max_body_bytes",
                                                    "ingest.rate_per_hook",
                                                    "ingest.burst_per_hook",
                                                    "ingest.rate_per_address",
                                                    "ingest.burst_per_address",
                                                    "http.max_threads",
                                                    "http.max_queued",
                                                    "http.timeout_ms",
                                                    "http.request_timeout_ms",
                                                    "http.behind_proxy",
                                                    "stream.heartbeat_ms",
                                                    "log.level",
                                                    "tls.cert",
                                                    "tls.key",
                                                    "encryption.key_file",
                                                    "encryption.keys_env",
                                                    "auth.jwt_ttl_s",
                                                    "auth.session_max_s",
                                                    "auth.issuer",
                                                    "auth.anonymous_hooks",
                                                    "hooks.anonymous_ttl_s",
                                                    "shutdown.timeout_ms",
                                                    "plugins.watch",
                                                    "explain.url",
                                                    "explain.model",
                                                    "explain.key_file",
                                                    "explain.key_env",
                                                    "explain.per_hour",
                                                    "explain.timeout_ms"};

std::string_view trimBlanks(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

// public_url becomes the base of every ingest URL handed out, so it must be a plain absolute
// http(s) URL: a host, an optional port and path, no query, fragment or user information.
std::string parsePublicUrl(const std::string& text) {
  const auto refuse = [&text](const std::string& why) {
    return ConfigError("invalid value for public_url: \"" + text + "\" " + why);
  };
  for (char c : text) {
    if (c <= 0x20 || c >= 0x7F) throw refuse("must not hold spaces, controls or non-ASCII bytes");
  }
  const auto schemeEnd = text.find("://");
  std::string scheme = schemeEnd == std::string::npos ? std::string() : text.substr(0, schemeEnd);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") throw refuse("must start with http:// or https://");
  if (text.find_first_of("?#") != std::string::npos) {
    throw refuse("must not hold a query or fragment");
  }

  const size_t authorityStart = schemeEnd + 3;
  const auto slash = text.find('/', authorityStart);
  const std::string authority = text.substr(
      authorityStart, slash == std::string::npos ? std::string::npos : slash - authorityStart);
  if (authority.find('@') != std::string::npos) throw refuse("must not hold user information");

  // The host ends at the port's colon; an IPv6 literal keeps its colons inside brackets.
  std::string host = authority;
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos || close == 1) throw refuse("has a malformed IPv6 host");
    host = authority.substr(0, close + 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') throw refuse("has a malformed IPv6 host");
    if (!after.empty()) port = after.substr(1);
    if (after == ":") throw refuse("has an empty port");
  } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) throw refuse("has an empty port");
  }
  if (host.empty()) throw refuse("has no host");
  if (!port.empty()) {
    int64_t number = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || ptr != port.data() + port.size() || number < 1 || number > 65535) {
      throw refuse("has a port outside 1..65535");
    }
  }

  std::string url = text;
  while (url.size() > authorityStart && url.back() == '/') url.pop_back();
  return url;
}

int64_t parseInteger(const std::string& key, const std::string& text, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    throw ConfigError("invalid value for " + key + ": \"" + text + "\" is not an integer");
  }
  if (value < min || value > max) {
    throw ConfigError("invalid value for " + key + ": " + text + " is outside " +
                      std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

void parseListen(const std::string& text, EdgeConfig& config) {
  // HOST:PORT, with IPv6 hosts in brackets so that their colons stay apart from the port.
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw ConfigError("invalid value for listen: \"" + text + "\" is not HOST:PORT");
  }
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) {
      throw ConfigError("invalid value for listen: \"" + text + "\" has a malformed IPv6 host");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw ConfigError("invalid value for listen: \"" + text + "\": put IPv6 hosts in brackets");
  }
  config.listenHost = host;
  config.listenPort =
      static_cast<uint16_t>(parseInteger("listen", text.substr(colon + 1), 0, 65535));
}

// The keys that only a mysql store reads; with a sqlite store they are a mistake, not a no-op.
constexpr std::array<const char*, 4> kMySqlOnlyKeys = {"store.pool_size", "store.poll_interval_ms",
                                                       "store.password_file", "store.password_env"};

// The contents of a file holding one secret (store.password_file, explain.key_file). The file
// must be the edge's own secret: one that group or others can read is refused rather than used.
std::string readSecretFile(const std::string& key, const std::string& path) {
  if (path.empty()) throw ConfigError("invalid value for " + key + ": it is empty");
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw ConfigError("could not read " + key + " " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    throw ConfigError("invalid value for " + key + ": " + path + " is not a regular file");
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw ConfigError("invalid value for " + key + ": " + path +
                      " is accessible by group or others; chmod 600 it");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError("could not read " + key + " " + path + ": " + std::strerror(errno));
  }
  std::string password((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ConfigError("could not read " + key + " " + path);

  // Editors end the file with a newline that is not part of the secret.
  if (!password.empty() && password.back() == '\n') {
    password.pop_back();
    if (!password.empty() && password.back() == '\r') password.pop_back();
  }
  if (password.empty()) throw ConfigError("invalid value for " + key + ": " + path + " is empty");
  return password;
}

bool isEnvironmentName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// Fills config.mysql from a mysql:// store URL and the store.* keys.
void parseMySqlStore(const std::string& url, const ConfigValues& values, EdgeConfig& config) {
  auto value = [&values](const char* key) -> const std::string* {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };

  // The parser's messages never repeat the password, and neither does this one.
  try {
    config.mysql.endpoint = store::parseMySqlUrl(url);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("invalid value for store: ") + e.what());
  }
  config.storeKind = StoreKind::kMySql;
  config.store = redactStore(url);

  // The password has one source, so that nobody has to guess which of two would win.
  const auto* file = value("store.password_file");
  const auto* env = value("store.password_env");
  const bool inUrl = !config.mysql.endpoint.password.empty();
  if (inUrl && file) {
    throw ConfigError(
        "store.password_file is set and the store URL holds a password too; keep only one");
  }
  if (inUrl && env) {
    throw ConfigError(
        "store.password_env is set and the store URL holds a password too; keep only one");
  }
  if (file && env) {
    throw ConfigError("store.password_file and store.password_env are both set; keep only one");
  }
  if (file) config.mysql.endpoint.password = readSecretFile("store.password_file", *file);
  if (env) {
    if (!isEnvironmentName(*env)) {
      throw ConfigError("invalid value for store.password_env: \"" + *env +
                        "\" is not an environment variable name");
    }
    const char* password = std::getenv(env->c_str());
    if (password == nullptr || *password == '\0') {
      throw ConfigError("invalid value for store.password_env: " + *env + " is not set or empty");
    }
    config.mysql.endpoint.password = password;
  }
  if (!inUrl && !file && !env) {
    const char* password = std::getenv(kDefaultStorePasswordEnv);
    if (password != nullptr) config.mysql.endpoint.password = password;
  }

  if (const auto* text = value("store.pool_size")) {
    config.mysql.poolSize = static_cast<size_t>(
        parseInteger("store.pool_size", *text, kMinStorePoolSize, kMaxStorePoolSize));
  }
  if (const auto* text = value("store.poll_interval_ms")) {
    config.mysql.pollInterval = std::chrono::milliseconds(
        parseInteger("store.poll_interval_ms", *text, kMinStorePollMs, kMaxStorePollMs));
  }
}

bool parseBoolean(const std::string& key, const std::string& text) {
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  throw ConfigError("invalid value for " + key + ": \"" + text + "\" (use true or false)");
}

// A file the edge must read at start: said now, with the key, rather than at the first request.
std::string requireReadableFile(const std::string& key, const std::string& path) {
  if (path.empty()) throw ConfigError("invalid value for " + key + ": it is empty");
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw ConfigError("could not read " + key + " " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    throw ConfigError("invalid value for " + key + ": " + path + " is not a regular file");
  }
  return path;
}

// TLS, the proxy setting and the rule that plain HTTP stays on loopback unless told otherwise.
void parseTls(const ConfigValues& values, EdgeConfig& config) {
  auto value = [&values](const char* key) -> const std::string* {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };
  if (const auto* text = value("tls.cert")) config.tlsCert = requireReadableFile("tls.cert", *text);
  if (const auto* text = value("tls.key")) config.tlsKey = requireReadableFile("tls.key", *text);
  if (config.tlsCert.empty() != config.tlsKey.empty()) {
    throw ConfigError("tls.cert and tls.key go together: set both, or neither");
  }
  if (const auto* text = value("http.behind_proxy")) {
    config.behindProxy = parseBoolean("http.behind_proxy", *text);
  }

  // Webhooks carry other people's data: in the clear only where nobody else can listen.
  if (config.tlsCert.empty() && !config.behindProxy && !isLoopbackHost(config.listenHost)) {
    throw ConfigError("listen " + config.listenHost +
                      " is not a loopback address and no certificate is configured: set "
                      "tls.cert and tls.key (--tls-cert, --tls-key), or http.behind_proxy = true "
                      "when a TLS-terminating proxy is in front");
  }
}

void parseSecurity(const ConfigValues& values, EdgeConfig& config) {
  auto value = [&values](const char* key) -> const std::string* {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };
  if (const auto* text = value("encryption.key_file")) {
    if (text->empty()) throw ConfigError("invalid value for encryption.key_file: it is empty");
    config.keyFile = *text;
  }
  if (const auto* text = value("encryption.keys_env")) {
    if (!isEnvironmentName(*text)) {
      throw ConfigError("invalid value for encryption.keys_env: \"" + *text +
                        "\" is not an environment variable name");
    }
    if (!config.keyFile.empty()) {
      throw ConfigError("encryption.key_file and encryption.keys_env are both set; keep only one");
    }
    config.keysEnv = *text;
    config.keysEnvGiven = true;
  }
  if (const auto* text = value("auth.jwt_ttl_s")) {
    config.jwtTtl =
        std::chrono::seconds(parseInteger("auth.jwt_ttl_s", *text, kMinJwtTtlS, kMaxJwtTtlS));
  }
  if (const auto* text = value("auth.session_max_s")) {
    config.sessionMax = std::chrono::seconds(
        parseInteger("auth.session_max_s", *text, kMinSessionMaxS, kMaxSessionMaxS));
  }
  if (const auto* text = value("auth.issuer")) {
    if (text->empty() || text->size() > 200) {
      throw ConfigError("invalid value for auth.issuer: it must be 1..200 bytes");
    }
    config.jwtIssuer = *text;
  }
  if (const auto* text = value("auth.anonymous_hooks")) {
    config.anonymousHooks = parseBoolean("auth.anonymous_hooks", *text);
  }
  if (const auto* text = value("hooks.anonymous_ttl_s")) {
    config.anonymousTtl = std::chrono::seconds(
        parseInteger("hooks.anonymous_ttl_s", *text, kMinAnonymousTtlS, kMaxAnonymousTtlS));
  }

  const std::pair<const char*, int64_t*> rates[] = {
      {"ingest.rate_per_hook", &config.ratePerHook},
      {"ingest.burst_per_hook", &config.burstPerHook},
      {"ingest.rate_per_address", &config.ratePerAddress},
      {"ingest.burst_per_address", &config.burstPerAddress}};
  for (const auto& [key, field] : rates) {
    if (const auto* text = value(key)) *field = parseInteger(key, *text, 0, kMaxIngestRate);
  }
  if (config.ratePerHook > 0 && config.burstPerHook < 1) {
    throw ConfigError("ingest.burst_per_hook must be at least 1 while ingest.rate_per_hook is on");
  }
  if (config.ratePerAddress > 0 && config.burstPerAddress < 1) {
    throw ConfigError(
        "ingest.burst_per_address must be at least 1 while ingest.rate_per_address is on");
  }
  if (const auto* text = value("http.request_timeout_ms")) {
    config.requestTimeout = std::chrono::milliseconds(
        parseInteger("http.request_timeout_ms", *text, kMinRequestTimeoutMs, kMaxRequestTimeoutMs));
  }
  if (const auto* text = value("shutdown.timeout_ms")) {
    config.shutdownTimeout = std::chrono::milliseconds(
        parseInteger("shutdown.timeout_ms", *text, kMinShutdownTimeoutMs, kMaxShutdownTimeoutMs));
  }
  if (const auto* text = value("plugins.watch")) {
    config.watchPlugins = parseBoolean("plugins.watch", *text);
  }
}

// The model-based explanation (docs/diagnosis.md): off without explain.url.
void parseExplain(const ConfigValues& values, EdgeConfig& config, ConfigUse use) {
  auto value = [&values](const char* key) -> const std::string* {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };
  ExplainConfig& explain = config.explain;
  if (const auto* text = value("explain.url")) {
    const std::string& url = *text;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      throw ConfigError("invalid value for explain.url: \"" + url +
                        "\" (use the base URL of an OpenAI-compatible API, e.g. "
                        "https://api.example.com/v1)");
    }
    explain.url = url;
    while (!explain.url.empty() && explain.url.back() == '/') explain.url.pop_back();
  }
  if (const auto* text = value("explain.model")) {
    if (text->empty()) throw ConfigError("invalid value for explain.model: it is empty");
    explain.model = *text;
  }
  const auto* file = value("explain.key_file");
  const auto* env = value("explain.key_env");
  if (file && env)
    throw ConfigError("explain.key_file and explain.key_env are both set; keep only one");
  if (file && file->empty()) throw ConfigError("invalid value for explain.key_file: it is empty");
  if (env && !isEnvironmentName(*env)) {
    throw ConfigError("invalid value for explain.key_env: \"" + *env +
                      "\" is not an environment variable name");
  }

  // Only a serving edge asks the model, so only it needs the key.
  if (file && use == ConfigUse::kServer) {
    explain.key = readSecretFile("explain.key_file", *file);
  }
  if (env && use == ConfigUse::kServer) {
    const char* key = std::getenv(env->c_str());
    if (key == nullptr || *key == '\0') {
      throw ConfigError("explain.key_env names " + *env + ", which is not set");
    }
    explain.key = key;
  }
  if (const auto* text = value("explain.per_hour")) {
    explain.perHour = parseInteger("explain.per_hour", *text, 1, kMaxExplainPerHour);
  }
  if (const auto* text = value("explain.timeout_ms")) {
    explain.timeout = std::chrono::milliseconds(
        parseInteger("explain.timeout_ms", *text, kMinExplainTimeoutMs, kMaxExplainTimeoutMs));
  }
  const bool tuned = file || env || value("explain.model") || value("explain.per_hour") ||
                     value("explain.timeout_ms");
  if (tuned && explain.url.empty()) {
    throw ConfigError(
        "explain.* keys are set but explain.url is not; set it to turn the "
        "model-based explanation on, or remove them");
  }
}

std::string parseLogLevel(const std::string& text) {
  try {
    Poco::Logger::parseLevel(text);
  } catch (const Poco::Exception&) {
    throw ConfigError("invalid value for log.level: \"" + text +
                      "\" (use fatal, critical, error, warning, notice, information, debug "
                      "or trace)");
  }
  return text;
}

}  // namespace

std::string redactStore(const std::string& store) {
  // Same split as store::parseMySqlUrl: the credentials end at the last '@', the user at the
  // first ':' in them.
  const auto schemeEnd = store.find("://");
  if (schemeEnd == std::string::npos) return store;
  const size_t start = schemeEnd + 3;
  const auto at = store.rfind('@');
  if (at == std::string::npos || at < start) return store;
  const auto colon = store.find(':', start);
  if (colon == std::string::npos || colon > at) return store;
  return store.substr(0, colon + 1) + "***" + store.substr(at);
}

bool isLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8, written as a dotted quad.
  unsigned a = 0, b = 0, c = 0, d = 0;
  char extra = 0;
  if (std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4) return false;
  return a == 127 && b <= 255 && c <= 255 && d <= 255;
}

bool isKnownConfigKey(const std::string& key) {
  for (const char* known : kKnownKeys) {
    if (key == known) return true;
  }
  return false;
}

std::vector<std::string> knownConfigKeys() { return {kKnownKeys.begin(), kKnownKeys.end()}; }

ConfigValues readConfigFile(const std::string& path, std::map<std::string, size_t>* lineOfKey) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError("could not read configuration file " + path + ": " +
                      std::string(std::strerror(errno)));
  }

  // One "key = value" per line; blank lines and lines starting with # or ! are comments. Every
  // other line must be a known key given once, so that a typo or a stale copy cannot be
  // silently ignored or silently win.
  ConfigValues values;
  std::map<std::string, size_t> lineOfKeyRead;
  std::string text;
  size_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    // Editors on some systems start a UTF-8 file with a byte order mark; it is not part of the
    // first key.
    if (number == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
    const std::string_view line = trimBlanks(text);
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    const std::string where = path + " line " + std::to_string(number);
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      throw ConfigError("line " + std::to_string(number) + " has no '=' in " + path);
    }
    const std::string key(trimBlanks(line.substr(0, equals)));
    if (key.empty()) throw ConfigError("line " + std::to_string(number) + " has no key in " + path);
    if (!isKnownConfigKey(key)) {
      throw ConfigError("unknown configuration key " + key + " in " + where);
    }
    const auto [first, inserted] = lineOfKeyRead.emplace(key, number);
    if (!inserted) {
      throw ConfigError("configuration key " + key + " is given twice in " + path + " (lines " +
                        std::to_string(first->second) + " and " + std::to_string(number) + ")");
    }
    values[key] = std::string(trimBlanks(line.substr(equals + 1)));
  }
  if (in.bad()) throw ConfigError("could not read configuration file " + path);
  if (lineOfKey != nullptr) *lineOfKey = std::move(lineOfKeyRead);
  return values;
}

std::string placeConfigError(const std::string& message, const std::string& path,
                             const std::map<std::string, size_t>& lineOfKey) {
  // The key the message names first, as a word of its own: "invalid value for KEY: ...",
  // "KEY VALUE is not ...", "could not read KEY FILE: ...".
  const auto namedAt = [&message](const std::string& key) {
    for (size_t at = message.find(key); at != std::string::npos; at = message.find(key, at + 1)) {
      const size_t end = at + key.size();
      const bool startsWord = at == 0 || message[at - 1] == ' ';
      const bool endsWord = end == message.size() || message[end] == ' ' || message[end] == ':';
      if (startsWord && endsWord) return at;
    }
    return std::string::npos;
  };
  size_t first = std::string::npos;
  size_t line = 0;
  for (const auto& [key, number] : lineOfKey) {
    const size_t at = namedAt(key);
    if (at < first) {
      first = at;
      line = number;
    }
  }
  if (first == std::string::npos) return message;
  return message + " (" + path + " line " + std::to_string(line) + ")";
}

EdgeConfig parseConfig(const ConfigValues& values, const std::string& exeDir, ConfigUse use) {
  EdgeConfig config;
  auto value = [&values](const char* key) -> const std::string* {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };

  for (const auto& [key, text] : values) {
    if (!isKnownConfigKey(key)) throw ConfigError("unknown configuration key " + key);
  }

  if (const auto* text = value("listen")) parseListen(*text, config);

  if (const auto* text = value("data_dir")) {
    if (text->empty()) throw ConfigError("invalid value for data_dir: it is empty");
    config.dataDir = *text;
  }

  // The default sits beside the executable so that the build tree and an install both work.
  if (const auto* text = value("plugin_dir")) {
    if (text->empty()) throw ConfigError("invalid value for plugin_dir: it is empty");
    config.pluginDir = *text;
    config.pluginDirGiven = true;
  } else {
    config.pluginDir = (std::filesystem::path(exeDir) / ".." / "lib" / "anonymily" / "plugins")
                           .lexically_normal()
                           .string();
  }

  if (const auto* text = value("public_url")) config.publicUrl = parsePublicUrl(*text);

  // The store: a SQLite file of this edge's own, or a MySQL database edges may share.
  const std::string storeText =
      value("store") ? *value("store") : "sqlite:" + config.dataDir + "/anonymily.db";
  if (storeText.rfind("mysql://", 0) == 0) {
    parseMySqlStore(storeText, values, config);
  } else if (storeText.rfind("sqlite:", 0) == 0) {
    for (const char* key : kMySqlOnlyKeys) {
      if (value(key)) throw ConfigError(std::string(key) + " applies to a mysql store only");
    }
    config.store = storeText;
    config.sqlitePath = storeText.substr(7);
    if (config.sqlitePath.empty()) {
      throw ConfigError("invalid value for store: sqlite: needs a path");
    }
  } else {
    // Only the scheme is repeated: the rest of an unknown URL may hold a password.
    const auto colon = storeText.find(':');
    const std::string scheme =
        colon == std::string::npos ? std::string() : " \"" + storeText.substr(0, colon + 1) + "\"";
    throw ConfigError("unsupported store" + scheme +
                      ": use sqlite:PATH or mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
  }

  if (const auto* text = value("ingest.max_body_bytes")) {
    config.maxBodyBytes = static_cast<size_t>(
        parseInteger("ingest.max_body_bytes", *text, 1, static_cast<int64_t>(kMaxBodyBytesLimit)));
  }
  if (const auto* text = value("http.max_threads")) {
    config.maxThreads =
        static_cast<int>(parseInteger("http.max_threads", *text, 1, kMaxThreadsLimit));
  }
  if (const auto* text = value("http.max_queued")) {
    config.maxQueued = static_cast<int>(parseInteger("http.max_queued", *text, 1, kMaxQueuedLimit));
  }
  if (const auto* text = value("http.timeout_ms")) {
    config.httpTimeout = std::chrono::milliseconds(
        parseInteger("http.timeout_ms", *text, kMinHttpTimeoutMs, kMaxHttpTimeoutMs));
  }
  if (const auto* text = value("stream.heartbeat_ms")) {
    config.heartbeat = std::chrono::milliseconds(
        parseInteger("stream.heartbeat_ms", *text, kMinHeartbeatMs, kMaxHeartbeatMs));
  }
  if (const auto* text = value("log.level")) config.logLevel = parseLogLevel(*text);

  parseTls(values, config);
  parseSecurity(values, config);
  parseExplain(values, config, use);
  return config;
}

}  // namespace anm::edge
