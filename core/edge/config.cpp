// core/edge/config.cpp: parsing and checking of the edge's settings.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/config.h"

#include <Poco/AutoPtr.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Util/PropertyFileConfiguration.h>

#include <array>
#include <charconv>
#include <filesystem>

namespace anm::edge {
namespace {

constexpr std::array<const char*, 10> kKnownKeys = {
    "listen",           "data_dir",        "plugin_dir",
    "public_url",       "store",           "ingest.max_body_bytes",
    "http.max_threads", "http.max_queued", "stream.heartbeat_ms",
    "log.level"};

// Walks the key tree of a POCO configuration, which stores "a.b" as a nested key.
void collectKeys(const Poco::Util::AbstractConfiguration& config, const std::string& prefix,
                 ConfigValues& out) {
  Poco::Util::AbstractConfiguration::Keys keys;
  config.keys(prefix, keys);
  for (const auto& key : keys) {
    const std::string full = prefix.empty() ? key : prefix + "." + key;
    if (config.hasProperty(full)) out[full] = config.getRawString(full);
    collectKeys(config, full, out);
  }
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
  Poco::AutoPtr<Poco::Util::PropertyFileConfiguration> file;
  try {
    file = new Poco::Util::PropertyFileConfiguration(path);
  } catch (const Poco::Exception& e) {
    throw ConfigError("could not read configuration file " + path + ": " + e.displayText());
  }

  ConfigValues values;
  collectKeys(*file, "", values);

  // A key the edge does not know is most likely a typo of one it does.
  for (const auto& [key, value] : values) {
    if (!isKnownConfigKey(key)) {
      throw ConfigError("unknown configuration key " + key + " in " + path);
    }
  }
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

  if (const auto* text = value("public_url")) {
    std::string url = *text;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      throw ConfigError("invalid value for public_url: \"" + url +
                        "\" must start with http:// or https://");
    }
    while (!url.empty() && url.back() == '/') url.pop_back();
    config.publicUrl = url;
  }

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
  if (const auto* text = value("stream.heartbeat_ms")) {
    config.heartbeat = std::chrono::milliseconds(
        parseInteger("stream.heartbeat_ms", *text, kMinHeartbeatMs, kMaxHeartbeatMs));
  }
  if (const auto* text = value("log.level")) config.logLevel = parseLogLevel(*text);
  return config;
}

}  // namespace anm::edge
