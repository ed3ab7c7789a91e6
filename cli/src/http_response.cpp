// cli/src/http_response.cpp: response head parsing and body framing.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/http_response.h"

#include <strings.h>

#include <algorithm>
#include <cctype>

namespace anm::cli {

namespace {

bool equalsIgnoreCase(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string trim(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return text.substr(begin, end - begin);
}

[[noreturn]] void invalid(const std::string& why) {
  throw NetError(NetErrorKind::kProtocol, "invalid response: " + why, NetPhase::kReceiving);
}

bool parseUnsigned(const std::string& text, int base, uint64_t& out) {
  if (text.empty() || text.size() > 16) return false;
  out = 0;
  for (char c : text) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (base == 16 && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (base == 16 && c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (digit < 0) return false;
    out = out * static_cast<uint64_t>(base) + static_cast<uint64_t>(digit);
  }
  return true;
}

}  // namespace

std::string ResponseHead::field(const std::string& name) const {
  for (const auto& [fieldName, value] : headers) {
    if (equalsIgnoreCase(fieldName, name)) return value;
  }
  return "";
}

bool ResponseHead::hasToken(const std::string& name, const std::string& token) const {
  for (const auto& [fieldName, value] : headers) {
    if (!equalsIgnoreCase(fieldName, name)) continue;
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      if (comma == std::string::npos) comma = value.size();
      if (equalsIgnoreCase(trim(value.substr(start, comma - start)), token)) return true;
      start = comma + 1;
    }
  }
  return false;
}

ResponseHead readResponseHead(Connection& connection, Clock::time_point deadline) {
  for (;;) {
    ResponseHead head;
    std::string line;
    if (!connection.readLine(line, kMaxResponseLineBytes, deadline)) {
      throw NetError(NetErrorKind::kClosed, "connection closed before a response",
                     NetPhase::kReceiving);
    }

    // Status line: HTTP/1.x SP 3DIGIT [SP reason]
    if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ' ||
        !std::isdigit(static_cast<unsigned char>(line[7]))) {
      invalid("bad status line");
    }
    head.versionMinor = line[7] - '0';
    uint64_t status = 0;
    if (!parseUnsigned(line.substr(9, 3), 10, status) || status < 100 || status > 999 ||
        (line.size() > 12 && line[12] != ' ')) {
      invalid("bad status code");
    }
    head.status = static_cast<int>(status);
    head.reason = line.size() > 13 ? line.substr(13) : "";

    // Header fields up to the empty line, within the documented limits.
    size_t headBytes = line.size();
    for (;;) {
      if (!connection.readLine(line, kMaxResponseLineBytes, deadline)) {
        throw NetError(NetErrorKind::kClosed, "connection closed inside a response head",
                       NetPhase::kReceiving);
      }
      if (line.empty()) break;
      headBytes += line.size() + 2;
      if (headBytes > kMaxResponseHeadBytes) invalid("head too large");
      if (head.headers.size() >= kMaxResponseFields) invalid("too many header fields");
      const size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) invalid("bad header line");
      head.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    }

    // 101 would switch protocols, which a webhook target has no business doing.
    if (head.status >= 100 && head.status < 200 && head.status != 101) continue;
    return head;
  }
}

BodyReader::BodyReader(Connection& connection, const ResponseHead& head, bool requestWasHead)
    : connection_(connection) {
  if (requestWasHead || (head.status >= 100 && head.status < 200) || head.status == 204 ||
      head.status == 304) {
    framing_ = BodyFraming::kNone;
    done_ = true;
    return;
  }
  if (head.hasToken("Transfer-Encoding", "chunked")) {
    framing_ = BodyFraming::kChunked;
    return;
  }
  const std::string length = head.field("Content-Length");
  if (!length.empty()) {
    if (!parseUnsigned(length, 10, left_)) invalid("bad Content-Length");
    framing_ = BodyFraming::kLength;
    done_ = left_ == 0;
    return;
  }
  framing_ = BodyFraming::kUntilClose;
}

size_t BodyReader::read(char* out, size_t cap, Clock::time_point deadline) {
  if (done_) return 0;
  switch (framing_) {
    case BodyFraming::kNone:
      return 0;
    case BodyFraming::kUntilClose: {
      const size_t n = connection_.read(out, cap, deadline);
      if (n == 0) done_ = true;
      return n;
    }
    case BodyFraming::kLength: {
      const size_t n = connection_.read(out, std::min<uint64_t>(cap, left_), deadline);
      if (n == 0)
        throw NetError(NetErrorKind::kClosed, "connection closed inside a body",
                       NetPhase::kReceiving);
      left_ -= n;
      if (left_ == 0) done_ = true;
      return n;
    }
    case BodyFraming::kChunked:
      break;
  }

  // Chunked: a size line, data, CRLF; a zero size ends with trailer fields.
  std::string line;
  while (left_ == 0) {
    if (!firstChunk_) {
      if (!connection_.readLine(line, kMaxResponseLineBytes, deadline) || !line.empty()) {
        invalid("bad chunk end");
      }
    }
    firstChunk_ = false;
    if (!connection_.readLine(line, kMaxResponseLineBytes, deadline)) {
      throw NetError(NetErrorKind::kClosed, "connection closed inside a chunked body",
                     NetPhase::kReceiving);
    }
    const std::string sizeText = trim(line.substr(0, line.find(';')));
    uint64_t size = 0;
    if (!parseUnsigned(sizeText, 16, size)) invalid("bad chunk size");
    if (size == 0) {
      size_t trailerBytes = 0;
      do {
        if (!connection_.readLine(line, kMaxResponseLineBytes, deadline)) {
          throw NetError(NetErrorKind::kClosed, "connection closed inside chunk trailers",
                         NetPhase::kReceiving);
        }
        trailerBytes += line.size();
        if (trailerBytes > kMaxResponseHeadBytes) invalid("trailers too large");
      } while (!line.empty());
      done_ = true;
      return 0;
    }
    left_ = size;
  }
  const size_t n = connection_.read(out, std::min<uint64_t>(cap, left_), deadline);
  if (n == 0)
    throw NetError(NetErrorKind::kClosed, "connection closed inside a chunk", NetPhase::kReceiving);
  left_ -= n;
  return n;
}

void BodyReader::discard(Clock::time_point deadline) {
  char scratch[8192];
  while (read(scratch, sizeof scratch, deadline) > 0) {
  }
}

}  // namespace anm::cli
