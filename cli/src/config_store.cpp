// cli/src/config_store.cpp: private files for hook tokens and stream cursors.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/config_store.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace anm::cli {

namespace {

// Creates each missing directory of `path` with mode 0700 (our own ones at least).
void makeDirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("could not create directory " + part + ": " + std::strerror(errno));
    }
  }
  ::chmod(path.c_str(), 0700);
}

std::string hooksDir() { return configDir() + "/hooks"; }

}  // namespace

std::string configDir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/anonymily";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.config/anonymily";
  throw std::runtime_error("neither XDG_CONFIG_HOME nor HOME is set");
}

bool isValidHookId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (std::isalnum(c) == 0 && c != '-' && c != '_') return false;
  }
  return true;
}

std::string tokenPath(const std::string& hookId) { return hooksDir() + "/" + hookId + ".token"; }

void saveToken(const std::string& hookId, const std::string& token) {
  writePrivateFile(hooksDir(), hookId + ".token", token + "\n");
}

std::optional<std::string> loadToken(const std::string& hookId) {
  std::optional<std::string> text = readFileText(tokenPath(hookId));
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (text->empty()) return std::nullopt;
  return text;
}

std::string cursorFileName(const std::string& hookId, const std::string& target) {
  Poco::SHA2Engine sha256;
  sha256.update(target);
  const std::string digest = Poco::DigestEngine::digestToHex(sha256.digest());
  return hookId + "." + digest.substr(0, 12) + ".cursor";
}

void saveCursor(const std::string& hookId, const std::string& target, int64_t lastEventId) {
  writePrivateFile(hooksDir(), cursorFileName(hookId, target), std::to_string(lastEventId) + "\n");
}

std::optional<int64_t> loadCursor(const std::string& hookId, const std::string& target) {
  std::optional<std::string> text = readFileText(hooksDir() + "/" + cursorFileName(hookId, target));
  if (!text) text = readFileText(hooksDir() + "/" + hookId + ".cursor");
  if (!text) return std::nullopt;
  try {
    return std::stoll(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void writePrivateFile(const std::string& dir, const std::string& name, const std::string& data) {
  makeDirs(dir);
  const std::string path = dir + "/" + name;
  const std::string temp = path + ".tmp." + std::to_string(::getpid());

  // Write a temporary file that is private from its first byte, then rename it into place.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("could not write " + path + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int savedErrno = errno;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = ok ? errno : savedErrno;
    ::unlink(temp.c_str());
    throw std::runtime_error("could not write " + path + ": " + std::strerror(err));
  }
}

std::optional<std::string> readFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace anm::cli
