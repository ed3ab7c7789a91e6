// cli/src/credentials.cpp: one private file per edge for its personal access token.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/credentials.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "cli/src/config_store.h"

namespace anm::cli {

namespace {

constexpr char kPatPrefix[] = "anm_pat_";
// Far above the 60 characters of a token today; anything longer was not pasted as one.
constexpr size_t kMaxPatChars = 256;

std::string credentialsDir() { return configDir() + "/credentials"; }

std::string fileName(const Url& edge) {
  std::string host;
  for (const char c : edge.host) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-';
    host.push_back(safe ? c : '-');
  }
  return host + "_" + std::to_string(edge.port) + ".pat";
}

}  // namespace

std::string credentialsPath(const Url& edge) { return credentialsDir() + "/" + fileName(edge); }

void saveCredentials(const Url& edge, const std::string& pat) {
  writePrivateFile(credentialsDir(), fileName(edge), pat + "\n");
}

std::optional<std::string> loadCredentials(const Url& edge) {
  std::optional<std::string> text = readFileText(credentialsPath(edge));
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (text->empty()) return std::nullopt;
  return text;
}

bool deleteCredentials(const Url& edge) {
  const std::string path = credentialsPath(edge);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw std::runtime_error("could not delete " + path + ": " + std::strerror(errno));
}

bool looksLikePersonalToken(const std::string& text) {
  // The shape only, so that a pasted relay token or JWT is named as such; the edge decides
  // whether the token is valid.
  const size_t prefix = sizeof kPatPrefix - 1;
  if (text.size() <= prefix || text.size() > kMaxPatChars ||
      text.compare(0, prefix, kPatPrefix) != 0) {
    return false;
  }
  for (size_t i = prefix; i < text.size(); ++i) {
    const char c = text[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace anm::cli
