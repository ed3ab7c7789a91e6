// core/edge/body_reader.h: strict request framing: Content-Length and chunked bodies read exactly.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/StreamSocket.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace anm::edge {

/// Longest Content-Length value: 18 digits always fit in an int64 (RFC 9112 section 6.2 asks
/// for a bound; nobody sends 10^18 bytes).
inline constexpr size_t kMaxContentLengthDigits = 18;
/// Longest chunk-size in hex digits: 16 fill a uint64.
inline constexpr size_t kMaxChunkSizeDigits = 16;
/// Longest chunk-size line, extensions and CRLF included.
inline constexpr size_t kMaxChunkLineBytes = 4096;
/// Trailer fields follow the header limits: at most 100 fields, each line at most a 256-byte
/// name, ": ", an 8 KiB value and CRLF.
inline constexpr size_t kMaxTrailerFields = 100;
inline constexpr size_t kMaxTrailerLineBytes = 256 + 2 + 8192 + 2;

/// The connection's HTTP session with the raw reads opened up. HTTPSession's get/read are
/// protected; reading through them (rather than the socket) keeps the bytes POCO has already
/// buffered after the head, so body_reader sees the stream exactly where the head ended.
class EdgeSession : public Poco::Net::HTTPServerSession {
 public:
  EdgeSession(const Poco::Net::StreamSocket& socket, Poco::Net::HTTPServerParams::Ptr params);

  /// Up to `length` bytes, buffered ones first; 0 when the peer has closed. Throws what the
  /// socket throws (Poco::TimeoutException after the receive timeout).
  int readSome(char* buffer, int length);

  /// One byte, or -1 when the peer has closed.
  int readByte();

  /// Bytes received from the socket and not yet consumed by any request.
  int pendingBytes() const { return buffered(); }

  /// With nothing buffered, receives what the socket has into the buffer; returns the bytes
  /// now pending (0 when the peer has closed). Throws what the socket throws.
  int receivePending();

  /// Body bookkeeping: the connection may keep a connection alive only when the body of the
  /// request before was read to its end, or the next "request" would be that body's bytes.
  void beginRequest() { bodyDone_ = false; }
  void markBodyDone() { bodyDone_ = true; }
  bool bodyDone() const { return bodyDone_; }

 private:
  bool bodyDone_ = false;
};

/// A refusal of a request's framing, before any handler runs. status 0 means acceptable.
struct FramingCheck {
  int status = 0;
  std::string error;
};

/// Checks the request line version and the body framing fields (RFC 9112 sections 2.3, 6):
/// versions other than HTTP/1.0 and HTTP/1.1 get 505 (400 when not HTTP/<d>.<d>);
/// Content-Length must be 1 to 18 digits and repeated ones identical (400); Transfer-Encoding
/// with Content-Length, or in an HTTP/1.0 request, is 400; Transfer-Encoding other than one
/// field of exactly "chunked" is 501.
FramingCheck checkFraming(const Poco::Net::HTTPRequest& request);

/// True when the request announces a body (Content-Length above 0, or chunked).
bool announcesBody(const Poco::Net::HTTPRequest& request);

/// How reading a body ended.
enum class BodyStatus {
  kOk,         ///< `body` holds the whole body; the connection may serve a next request
  kTooLarge,   ///< over the limit: refuse with 413 and close
  kShort,      ///< the peer closed before Content-Length bytes arrived
  kMalformed,  ///< chunked framing broken, or ended before its last chunk; `error` says how
  kTimeout,    ///< the client sent nothing for the receive timeout; logged here already
};

struct BodyResult {
  BodyStatus status = BodyStatus::kOk;
  std::string error;  ///< for kMalformed and kTimeout, a sentence for the client
};

/// Reads the body of `request`, which must come from an EdgeConnection (its session is an
/// EdgeSession), framed as checkFraming allowed. Never holds more than `limit` + 1 bytes of
/// body in memory. Chunked bodies are decoded strictly: chunk-size of 1 to 16 hex digits,
/// optional extensions (ignored), CRLF after the size line and after the data, a last chunk of
/// size 0, then trailer fields (read and dropped) and the empty line.
BodyResult readRequestBody(Poco::Net::HTTPServerRequest& request, size_t limit, std::string& body);

}  // namespace anm::edge
