// cli/src/credentials.cpp: one private file per edge for its personal access token.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/credentials.h"

#include <Poco/Net/IPAddress.h>
#include <Poco/String.h>
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

// The host as one file-name segment.
std::string safeHost(const Url& edge) {
  std::string host;
  for (const char c : edge.host) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-';
    host.push_back(safe ? c : '-');
  }
  return host;
}

std::string fileName(const Url& edge) {
  return edge.scheme + "_" + safeHost(edge) + "_" + std::to_string(edge.port) + ".pat";
}

std::optional<std::string> readPat(const std::string& path) {
  std::optional<std::string> text = readFileText(path);
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (text->empty()) return std::nullopt;
  return text;
}

// False when there was no file at `path`.
bool unlinkPat(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw std::runtime_error("could not delete " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string credentialsPath(const Url& edge) { return credentialsDir() + "/" + fileName(edge); }

std::string legacyCredentialsPath(const Url& edge) {
  return credentialsDir() + "/" + safeHost(edge) + "_" + std::to_string(edge.port) + ".pat";
}

void saveCredentials(const Url& edge, const std::string& pat) {
  writePrivateFile(credentialsDir(), fileName(edge), pat + "\n");

  // The new file replaces a legacy one of the same edge, which would otherwise outlive a logout.
  if (edge.tls()) unlinkPat(legacyCredentialsPath(edge));
}

std::optional<std::string> loadCredentials(const Url& edge) {
  if (std::optional<std::string> pat = readPat(credentialsPath(edge))) return pat;

  // A legacy file may come from an https login or an http one; only over https, where the
  // edge proves who it is before the token goes out, is either safe to use.
  if (edge.tls()) return readPat(legacyCredentialsPath(edge));
  return std::nullopt;
}

bool deleteCredentials(const Url& edge) {
  const bool current = unlinkPat(credentialsPath(edge));
  const bool legacy = edge.tls() && unlinkPat(legacyCredentialsPath(edge));
  return current || legacy;
}

bool isLoopbackHost(const std::string& host) {
  if (Poco::icompare(host, "localhost") == 0) return true;
  Poco::Net::IPAddress address;
  return Poco::Net::IPAddress::tryParse(host, address) && address.isLoopback();
}

std::string plainHttpRefusal(const Url& edge) {
  if (edge.tls() || isLoopbackHost(edge.host)) return "";
  const std::string where = edge.scheme + "://" + edge.authority() + edge.basePath();
  return "will not send your personal access token to " + where +
         " in clear text: plain http is used only for an edge on this machine (localhost, "
         "127.0.0.1, ::1), since anyone on the network path could read the token; use an "
         "https:// URL for --edge, and if the edge has no certificate, put it behind TLS "
         "(tls.cert and tls.key, or a TLS-terminating proxy in front of it)";
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
