// tests/e2e/support/product.cpp: the real edge and relay programs, started and watched by a test.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/product.h"

#include <Poco/JSON/Parser.h>

#include <cctype>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/e2e/support/temp_dir.h"

namespace anm::e2e {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// The port file may hold "PORT" or "HOST:PORT"; anything else is not ready yet.
uint16_t parsePort(const std::string& text) {
  std::string value = trim(text);
  size_t colon = value.rfind(':');
  if (colon != std::string::npos) value = value.substr(colon + 1);
  if (value.empty() || value.size() > 5 ||
      value.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  unsigned long port = std::stoul(value);
  return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
}

bool isJsonLine(const std::string& line) {
  std::string t = trim(line);
  return !t.empty() && t.front() == '{';
}

}  // namespace

std::map<std::string, std::string> productEnv(const std::filesystem::path& home) {
  return {
      {"XDG_CONFIG_HOME", home.string()},
      {"XDG_DATA_HOME", (home / "data").string()},
      {"XDG_STATE_HOME", (home / "state").string()},
      {"XDG_CACHE_HOME", (home / "cache").string()},
      {"http_proxy", ""},
      {"https_proxy", ""},
      {"HTTP_PROXY", ""},
      {"HTTPS_PROXY", ""},
      {"all_proxy", ""},
      {"ALL_PROXY", ""},
      {"no_proxy", "*"},
      {"NO_PROXY", "*"},
  };
}

EdgeProcess::EdgeProcess(const Options& options) {
  std::filesystem::path portFile = options.workDir / "edge.port";
  std::filesystem::path dataDir = options.workDir / "edge-data";
  std::filesystem::create_directories(dataDir);
  std::filesystem::create_directories(options.home);

  // A port file left by an earlier edge in the same directory must not be taken for this one's.
  std::filesystem::remove(portFile);
  const std::string listen = "127.0.0.1:" + std::to_string(options.port);
  std::vector<std::string> args{"--listen",   listen,           "--port-file",  portFile.string(),
                                "--data-dir", dataDir.string(), "--plugin-dir", options.pluginDir};

  // Settings beyond the command line's go through a file, the way an operator gives them.
  if (!options.settings.empty()) {
    std::filesystem::path configFile = options.workDir / "edge.properties";
    std::ofstream out(configFile, std::ios::trunc);
    for (const auto& [key, value] : options.settings) out << key << " = " << value << "\n";
    if (!out.flush()) throw std::runtime_error("could not write " + configFile.string());
    args.push_back("--config");
    args.push_back(configFile.string());
  }
  std::map<std::string, std::string> env = productEnv(options.home);
  for (const auto& [name, value] : options.env) env[name] = value;
  process_ = std::make_unique<ChildProcess>(options.binary, args, env);

  // The port file appears once the listener is bound; an edge that exits first has failed.
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    port_ = parsePort(readFile(portFile));
    if (port_ != 0) return;
    if (!process_->running()) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  throw std::runtime_error("edge did not write its port file " + portFile.string() + "\n" +
                           process_->describe());
}

std::string hookIdFromUrl(const std::string& text) {
  size_t at = text.find("/h/");
  if (at == std::string::npos) return "";
  size_t begin = at + 3;
  size_t end = begin;
  while (end < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[end]);
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')) break;
    ++end;
  }
  return text.substr(begin, end - begin);
}

RelayProcess::RelayProcess(const Options& options) {
  std::filesystem::create_directories(options.home);
  std::vector<std::string> args{"relay", "--edge",          options.edgeUrl,
                                "--to",  options.targetUrl, "--json"};
  if (!options.hookId.empty()) {
    args.push_back("--hook");
    args.push_back(options.hookId);
  }
  if (!options.token.empty()) {
    args.push_back("--token");
    args.push_back(options.token);
  }
  args.insert(args.end(), options.extraArgs.begin(), options.extraArgs.end());
  process_ = std::make_unique<ChildProcess>(options.binary, args, productEnv(options.home));

  // The banner names the ingest URL of the hook the relay created: on stdout, or on stderr
  // when --json keeps stdout for event lines.
  auto found = process_->waitForAnyLine(
      [](const std::string& line) { return !hookIdFromUrl(line).empty(); }, kStartTimeout);
  if (!found) {
    throw std::runtime_error("relay printed no ingest url\n" + process_->describe());
  }
  const std::string& line = *found;
  hookId_ = hookIdFromUrl(line);
  size_t urlBegin = line.find("http");
  size_t urlEnd = line.find_first_of(" \t", urlBegin);
  ingestUrl_ = urlBegin == std::string::npos ? line : line.substr(urlBegin, urlEnd - urlBegin);

  // A token given on the command line is never saved; there is no file to wait for.
  if (!options.token.empty()) {
    token_ = options.token;
    return;
  }

  // The token file is how a developer (and this test) reads the hook's events later.
  std::filesystem::path tokenFile = options.home / "anonymily" / "hooks" / (hookId_ + ".token");
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    token_ = trim(readFile(tokenFile));
    if (!token_.empty()) return;
    if (!process_->running()) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  throw std::runtime_error("relay wrote no token file " + tokenFile.string() + "\n" +
                           process_->describe());
}

namespace {

std::vector<Poco::JSON::Object::Ptr> reportsIn(const std::vector<std::string>& lines) {
  std::vector<Poco::JSON::Object::Ptr> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!isJsonLine(lines[i])) continue;
    try {
      out.push_back(parseObject(lines[i]));
    } catch (const std::exception&) {
      // A line that only looks like JSON is reported by the caller's count check.
    }
  }
  return out;
}

}  // namespace

std::vector<Poco::JSON::Object::Ptr> RelayProcess::reports() const {
  return reportsIn(process_->stdoutLines());
}

bool RelayProcess::waitForReports(size_t n, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // Count and wait on one snapshot: a line printed in between must end the wait, not be
    // taken as already seen.
    auto lines = process_->stdoutLines();
    if (reportsIn(lines).size() >= n) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (!process_->running()) return reports().size() >= n;

    // Sleep until the relay prints anything new, at most until the deadline.
    process_->waitForStdoutLine([](const std::string&) { return true; }, left, lines.size());
  }
}

WireResponse apiGet(uint16_t edgePort, const std::string& target, const std::string& token) {
  std::string request = "GET " + target +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(edgePort) +
                        "\r\nAuthorization: Bearer " + token +
                        "\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
  return exchange(edgePort, request, false);
}

WireResponse apiPost(uint16_t edgePort, const std::string& target, const std::string& json,
                     const std::string& token) {
  std::string request =
      "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(edgePort) + "\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
             "\r\nConnection: close\r\n\r\n" + json;
  return exchange(edgePort, request, false);
}

WireResponse apiDelete(uint16_t edgePort, const std::string& target, const std::string& token) {
  std::string request =
      "DELETE " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(edgePort) +
      "\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  return exchange(edgePort, request, false);
}

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
  if (!object) throw std::runtime_error("not a json object");
  return object;
}

std::string jsonText(const Poco::JSON::Object::Ptr& object, const std::string& key) {
  if (!object || !object->has(key)) return "";
  Poco::Dynamic::Var value = object->get(key);
  if (value.isEmpty()) return "";
  return value.convert<std::string>();
}

int64_t jsonInt(const Poco::JSON::Object::Ptr& object, const std::string& key, int64_t fallback) {
  if (!object || !object->has(key)) return fallback;
  Poco::Dynamic::Var value = object->get(key);
  if (value.isEmpty() || !value.isNumeric()) return fallback;
  return value.convert<int64_t>();
}

}  // namespace anm::e2e
