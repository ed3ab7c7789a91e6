// core/edge/body_reader.cpp: strict request framing: Content-Length and chunked bodies read
// exactly. SPDX-License-Identifier: Apache-2.0
#include "core/edge/body_reader.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/NetException.h>
#include <Poco/String.h>
#include <Poco/Timestamp.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string_view>

namespace anm::edge {
namespace {

// Looked up once: Logger::get takes a process-wide lock and searches a map on every call.
Poco::Logger& httpLog() {
  static Poco::Logger& instance = Poco::Logger::get("anm.http");
  return instance;
}

// Bytes asked for per read: few system calls for large bodies, and the chunk data buffer
// stays a modest part of a pool thread's stack.
constexpr int kReadSlice = 1 << 16;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Control characters other than HTAB never belong in a chunk line or a field (RFC 9110 5.5).
bool hasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

// tchar of RFC 9110 section 5.6.2.
bool isTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// chunk-size [ BWS ";" extensions ], extensions not interpreted (RFC 9112 section 7.1.1).
bool parseChunkSize(std::string_view line, uint64_t& size) {
  size = 0;
  size_t i = 0;
  for (; i < line.size() && hexValue(line[i]) >= 0; ++i) {
    if (i == kMaxChunkSizeDigits) return false;
    size = size * 16 + static_cast<uint64_t>(hexValue(line[i]));
  }
  if (i == 0) return false;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  if (i == line.size()) return true;
  return line[i] == ';' && !hasControl(line.substr(i));
}

// name ":" value, as for header fields: a token name with no whitespace before the colon.
bool isFieldLine(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), isTokenChar)) return false;
  return !hasControl(line.substr(colon + 1));
}

/// Reads one body from the session, remembering when bytes last arrived for the slow-client
/// log line.
class Reader {
 public:
  Reader(EdgeSession& session, size_t limit, std::string& body)
      : session_(session), limit_(limit), body_(body) {}

  BodyStatus fixed(int64_t length) {
    if (length > static_cast<int64_t>(limit_)) return BodyStatus::kTooLarge;
    body_.resize(static_cast<size_t>(length));
    size_t got = 0;
    while (got < body_.size()) {
      const int want = static_cast<int>(std::min<size_t>(body_.size() - got, kReadSlice));
      const int n = session_.readSome(&body_[got], want);
      if (n <= 0) {
        body_.resize(got);
        return BodyStatus::kShort;
      }
      got += static_cast<size_t>(n);
      progress_.update();
    }
    return BodyStatus::kOk;
  }

  BodyStatus chunked() {
    std::string line;
    for (;;) {
      // The size line.
      if (!readLine(kMaxChunkLineBytes, "chunk size line", line)) return BodyStatus::kMalformed;
      uint64_t size = 0;
      if (!parseChunkSize(line, size)) {
        return fail("malformed chunked body: the chunk size is not 1 to " +
                    std::to_string(kMaxChunkSizeDigits) + " hex digits");
      }
      if (size == 0) break;

      // The data, refused as soon as it would pass the limit.
      if (size > limit_ - body_.size()) return BodyStatus::kTooLarge;
      size_t left = static_cast<size_t>(size);
      while (left > 0) {
        char buffer[kReadSlice];
        const int n =
            session_.readSome(buffer, static_cast<int>(std::min<size_t>(left, kReadSlice)));
        if (n <= 0) return truncated();
        body_.append(buffer, static_cast<size_t>(n));
        left -= static_cast<size_t>(n);
        progress_.update();
      }

      // The CRLF that closes the data; anything else means the sender's framing is not ours.
      const int cr = session_.readByte();
      const int lf = cr < 0 ? -1 : session_.readByte();
      if (cr < 0 || lf < 0) return truncated();
      if (cr != '\r' || lf != '\n') {
        return fail("malformed chunked body: the chunk data is not followed by CRLF");
      }
    }

    // Trailer fields, read and dropped, up to the empty line.
    for (size_t fields = 0;; ++fields) {
      if (!readLine(kMaxTrailerLineBytes, "trailer field", line)) return BodyStatus::kMalformed;
      if (line.empty()) return BodyStatus::kOk;
      if (fields == kMaxTrailerFields) {
        return fail("malformed chunked body: more than " + std::to_string(kMaxTrailerFields) +
                    " trailer fields");
      }
      if (!isFieldLine(line)) return fail("malformed chunked body: malformed trailer field");
    }
  }

  int64_t idleMs() const { return progress_.elapsed() / 1000; }
  const std::string& error() const { return error_; }

 private:
  // A line ended by CRLF, without it. On failure error_ says why.
  bool readLine(size_t max, const char* what, std::string& line) {
    line.clear();
    for (;;) {
      const int c = session_.readByte();
      if (c < 0) {
        truncated();
        return false;
      }
      if (c == '\n') {
        if (line.empty() || line.back() != '\r') {
          fail(std::string("malformed chunked body: a ") + what + " is not ended by CRLF");
          return false;
        }
        line.pop_back();
        progress_.update();
        return true;
      }
      if (line.size() + 2 > max) {
        fail(std::string("malformed chunked body: a ") + what + " is longer than " +
             std::to_string(max) + " bytes");
        return false;
      }
      line.push_back(static_cast<char>(c));
    }
  }

  BodyStatus fail(std::string error) {
    error_ = std::move(error);
    return BodyStatus::kMalformed;
  }

  BodyStatus truncated() { return fail("the chunked body ended before its last chunk"); }

  EdgeSession& session_;
  size_t limit_;
  std::string& body_;
  Poco::Timestamp progress_;
  std::string error_;
};

}  // namespace

EdgeSession::EdgeSession(const Poco::Net::StreamSocket& socket,
                         Poco::Net::HTTPServerParams::Ptr params)
    : HTTPServerSession(socket, params) {}

int EdgeSession::readSome(char* buffer, int length) { return read(buffer, length); }

int EdgeSession::receivePending() {
  if (buffered() == 0) refill();
  return buffered();
}

int EdgeSession::readByte() {
  // HTTPSession::get() returns a plain char, so byte 0xFF would look like the end; refilling
  // and reading one byte from the buffer keeps both apart and costs no extra system call.
  if (buffered() == 0) refill();
  if (buffered() == 0) return -1;
  char c = 0;
  if (read(&c, 1) != 1) return -1;
  return static_cast<unsigned char>(c);
}

FramingCheck checkFraming(const Poco::Net::HTTPRequest& request) {
  // Only HTTP/1.x has this framing; HTTP/2 and later speak another protocol on the wire.
  const std::string& version = request.getVersion();
  if (version != Poco::Net::HTTPMessage::HTTP_1_0 && version != Poco::Net::HTTPMessage::HTTP_1_1) {
    const bool wellFormed = version.size() == 8 && version.compare(0, 5, "HTTP/") == 0 &&
                            isDigit(version[5]) && version[6] == '.' && isDigit(version[7]);
    if (!wellFormed) return {400, "malformed HTTP version in the request line"};
    return {505, "HTTP version " + version + " is not supported (use HTTP/1.1)"};
  }

  // Every Content-Length field: repeated ones sit together in POCO's map.
  std::string length;
  size_t lengths = 0;
  for (auto it = request.find("Content-Length");
       it != request.end() && Poco::icompare(it->first, "Content-Length") == 0; ++it) {
    const std::string& value = it->second;
    if (value.empty() || value.size() > kMaxContentLengthDigits ||
        !std::all_of(value.begin(), value.end(), isDigit)) {
      return {400,
              "content-length must be 1 to " + std::to_string(kMaxContentLengthDigits) + " digits"};
    }
    if (lengths > 0 && value != length) {
      return {400, "the request carries content-length fields with different values"};
    }
    length = value;
    ++lengths;
  }

  size_t codings = 0;
  bool chunked = false;
  for (auto it = request.find("Transfer-Encoding");
       it != request.end() && Poco::icompare(it->first, "Transfer-Encoding") == 0; ++it) {
    ++codings;
    chunked = Poco::icompare(it->second, "chunked") == 0;
  }
  if (codings == 0) return {};

  // A body framed two ways is how requests are smuggled past a proxy (RFC 9112 section 6.3).
  if (lengths > 0) {
    return {400, "a request must not carry both transfer-encoding and content-length"};
  }
  if (version == Poco::Net::HTTPMessage::HTTP_1_0) {
    return {400, "transfer-encoding is not allowed in an HTTP/1.0 request"};
  }
  if (codings > 1 || !chunked) {
    return {501, "unsupported transfer-encoding (only a single chunked coding is accepted)"};
  }
  return {};
}

bool announcesBody(const Poco::Net::HTTPRequest& request) {
  return request.getChunkedTransferEncoding() ||
         (request.hasContentLength() && request.getContentLength64() > 0);
}

BodyResult readRequestBody(Poco::Net::HTTPServerRequest& request, size_t limit, std::string& body) {
  body.clear();
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
  auto* session = impl == nullptr ? nullptr : dynamic_cast<EdgeSession*>(&impl->session());
  if (session == nullptr) throw std::logic_error("request does not come from an EdgeConnection");

  // Without Content-Length or chunking a request has no body (RFC 9112 section 6.3).
  if (!request.getChunkedTransferEncoding() && !request.hasContentLength()) {
    session->markBodyDone();
    return {};
  }

  Reader reader(*session, limit, body);
  BodyResult result;
  const bool chunked = request.getChunkedTransferEncoding();
  try {
    result.status = chunked ? reader.chunked() : reader.fixed(request.getContentLength64());
    result.error = reader.error();
  } catch (const Poco::TimeoutException&) {
    const std::string waited = std::to_string(reader.idleMs());
    httpLog().information("client too slow, connection closed peer=%s waited_ms=%s",
                          request.clientAddress().toString(), waited);
    return {BodyStatus::kTimeout,
            "the request body stopped arriving (nothing for " + waited + " ms)"};
  } catch (const Poco::Net::NetException&) {
    // The peer reset the connection: the body is incomplete and nobody will read an answer.
    result.status = chunked ? BodyStatus::kMalformed : BodyStatus::kShort;
    result.error = chunked ? "the chunked body ended before its last chunk" : "";
  }
  if (result.status == BodyStatus::kOk) session->markBodyDone();
  return result;
}

}  // namespace anm::edge
