// core/edge/config.cpp: parsing and checking of the edge's settings.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/config.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace anm::edge {
namespace {

constexpr std::array<const char*, 11> kKnownKeys = {"listen",
                                                    "data_dir",
                                                    "plugin_dir",
                                                    "public_url",
                                                    "store",
                                                    "ingest.max_body_bytes",
                                                    "http.max_threads",
                                                    "http.max_queued",
                                                    "http.timeout_ms",
                                                    "stream.heartbeat_ms",
                                                    "log.level"};

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

bool isKnownConfigKey(const std::string& key) {
  for (const char* known : kKnownKeys) {
    if (key == known) return true;
  }
  return false;
}

ConfigValues readConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError("could not read configuration file " + path + ": " +
                      std::string(std::strerror(errno)));
  }

  // One "key = value" per line; blank lines and lines starting with # or ! are comments. Every
  // other line must be a known key given once, so that a typo or a stale copy cannot be
  // silently ignored or silently win.
  ConfigValues values;
  std::map<std::string, size_t> lineOfKey;
  std::string text;
  size_t number = 0;
  while (std::getline(in, text)) {
    ++number;
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
    const auto [first, inserted] = lineOfKey.emplace(key, number);
    if (!inserted) {
      throw ConfigError("configuration key " + key + " is given twice in " + path + " (lines " +
                        std::to_string(first->second) + " and " + std::to_string(number) + ")");
    }
    values[key] = std::string(trimBlanks(line.substr(equals + 1)));
  }
  if (in.bad()) throw ConfigError("could not read configuration file " + path);
  return values;
}

EdgeConfig parseConfig(const ConfigValues& values, const std::string& exeDir) {
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

  config.store = "sqlite:" + config.dataDir + "/anonymily.db";
  if (const auto* text = value("store")) config.store = *text;
  if (config.store.rfind("sqlite:", 0) != 0) {
    // TODO(#3): accept mysql://user@host/db here once the MySQL backend exists.
    throw ConfigError("unsupported store \"" + config.store +
                      "\": only sqlite:<path> is available in this version");
  }
  config.sqlitePath = config.store.substr(7);
  if (config.sqlitePath.empty()) throw ConfigError("invalid value for store: sqlite: needs a path");

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
  return config;
}

}  // namespace anm::edge
