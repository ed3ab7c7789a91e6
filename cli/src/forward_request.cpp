// cli/src/forward_request.cpp: writing the forwarded request head without reordering anything.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/forward_request.h"

#include <strings.h>

#include <cctype>

namespace anm::cli {

namespace {

bool equalsIgnoreCase(const std::string& a, const char* b) { return strcasecmp(a.c_str(), b) == 0; }

// Visible ASCII and obs-text: what may appear in a request target without breaking the line.
bool isTargetSafe(const std::string& text) {
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool isValueSafe(const std::string& text) {
  for (unsigned char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

std::string trim(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return text.substr(begin, end - begin);
}

}  // namespace

bool isToken(const std::string& text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0) continue;
    if (std::string("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string::npos) {
      return false;
    }
  }
  return true;
}

std::string targetPath(const Url& target, const ForwardRequest& request) {
  std::string path = target.basePath() + request.pathSuffix;
  if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');
  if (!request.rawQuery.empty()) path += "?" + request.rawQuery;
  return path;
}

bool isDroppedField(const std::string& name, const std::vector<std::string>& connectionTokens) {
  static const char* const kHopByHop[] = {"Connection", "Keep-Alive",    "Proxy-Connection",
                                          "TE",         "Trailer",       "Transfer-Encoding",
                                          "Upgrade",    "Content-Length"};
  for (const char* dropped : kHopByHop) {
    if (equalsIgnoreCase(name, dropped)) return true;
  }
  for (const std::string& token : connectionTokens) {
    if (strcasecmp(name.c_str(), token.c_str()) == 0) return true;
  }
  return false;
}

bool buildRequestHead(const Url& target, const ForwardRequest& request, std::string& head,
                      std::string& error) {
  // Refuse anything that would change meaning once written on the wire.
  if (!isToken(request.method)) {
    error = "invalid method";
    return false;
  }
  if (!request.pathSuffix.empty() && request.pathSuffix.front() != '/') {
    error = "invalid path";
    return false;
  }
  const std::string path = targetPath(target, request);
  if (!isTargetSafe(path)) {
    error = "invalid path";
    return false;
  }

  // Names listed in Connection are hop-by-hop too.
  std::vector<std::string> connectionTokens;
  bool hadLengthOrEncoding = false;
  for (const HeaderField& field : request.headers) {
    if (!isToken(field.name) || !isValueSafe(field.value)) {
      error = "invalid header field";
      return false;
    }
    if (equalsIgnoreCase(field.name, "Content-Length") ||
        equalsIgnoreCase(field.name, "Transfer-Encoding")) {
      hadLengthOrEncoding = true;
    }
    if (!equalsIgnoreCase(field.name, "Connection")) continue;
    size_t start = 0;
    while (start <= field.value.size()) {
      size_t comma = field.value.find(',', start);
      if (comma == std::string::npos) comma = field.value.size();
      const std::string token = trim(field.value.substr(start, comma - start));
      if (!token.empty()) connectionTokens.push_back(token);
      start = comma + 1;
    }
  }

  // Request line, then the fields in arrival order with Host rewritten where it stood.
  head.clear();
  head.reserve(256 + request.headers.size() * 64);
  head += request.method;
  head += ' ';
  head += path;
  head += " HTTP/1.1\r\n";
  bool hostWritten = false;
  const std::string host = target.authority();
  for (const HeaderField& field : request.headers) {
    if (equalsIgnoreCase(field.name, "Host")) {
      if (hostWritten) continue;
      head += field.name + ": " + host + "\r\n";
      hostWritten = true;
      continue;
    }
    if (isDroppedField(field.name, connectionTokens)) continue;
    head += field.name;
    head += ": ";
    head += field.value;
    head += "\r\n";
  }
  if (!hostWritten) head.insert(head.find("\r\n") + 2, "Host: " + host + "\r\n");

  // The body is sent whole, so its length is always known.
  if (!request.body.empty() || hadLengthOrEncoding) {
    head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  head += "\r\n";
  return true;
}

}  // namespace anm::cli
