// tests/e2e/support/http_wire.h: HTTP/1.1 messages read and written byte by byte, so that the
// tests see exactly what travelled on the wire.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace anm::e2e {

/// Header fields in the order they were written, names spelled as written.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// Longest head line the reader accepts; the edge's own limit is far below it, so a longer one
/// means the peer is broken.
constexpr size_t kMaxWireLineBytes = 64 * 1024;

/// Largest body the reader accepts (the edge's documented default ingest limit plus room for
/// framing).
constexpr size_t kMaxWireBodyBytes = 11u * 1024 * 1024;

/// Raised when the peer breaks HTTP framing, closes too early or is too slow.
class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A message as received: the first line, every head line verbatim, the parsed fields and
/// the body with any chunked framing removed.
struct WireMessage {
  std::string startLine;
  std::vector<std::string> rawHeadLines;  ///< without CRLF, exactly as received
  HeaderList headers;                     ///< name as received, value without surrounding OWS
  std::string body;
  bool chunked = false;  ///< the body came with Transfer-Encoding: chunked

  /// Every value of a field, compared case-insensitively by name, in order.
  std::vector<std::string> values(const std::string& name) const;
  std::optional<std::string> value(const std::string& name) const;
};

/// Buffered reads from one socket with a deadline, also stoppable from another thread.
class WireReader {
 public:
  explicit WireReader(Poco::Net::StreamSocket& socket, const std::atomic<bool>* stop = nullptr)
      : socket_(socket), stop_(stop) {}

  /// True when the peer closed before sending any byte of a new message.
  bool atCleanEof(std::chrono::steady_clock::time_point deadline);

  /// Reads a request or status line and the head.
  WireMessage readHead(std::chrono::steady_clock::time_point deadline);

  /// Reads the body of a request (chunked, Content-Length, or none).
  void readRequestBody(WireMessage& message, std::chrono::steady_clock::time_point deadline);

  /// Reads the body of a response; `noBody` for answers to HEAD and 1xx/204/304.
  void readResponseBody(WireMessage& message, bool noBody,
                        std::chrono::steady_clock::time_point deadline);

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  std::string readLine(std::chrono::steady_clock::time_point deadline);
  std::string readExact(size_t n, std::chrono::steady_clock::time_point deadline);
  void readChunked(WireMessage& message, std::chrono::steady_clock::time_point deadline);
  void readFramedBody(WireMessage& message, std::chrono::steady_clock::time_point deadline);

  Poco::Net::StreamSocket& socket_;
  const std::atomic<bool>* stop_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
};

/// Writes all bytes or throws WireError.
void sendAll(Poco::Net::StreamSocket& socket, const std::string& bytes);

/// A request as the test writes it on the wire. Headers are written exactly as listed, so the
/// test decides about Host and Content-Length itself (see makeRequest).
struct SentRequest {
  std::string method = "POST";
  std::string suffix;  ///< "" or starting with '/', appended to /h/<hook id>
  std::string query;   ///< raw, without '?'; "" for none
  HeaderList headers;
  std::string body;
  /// When not empty the body goes out with chunked framing, one chunk per element, and `body`
  /// must be their concatenation.
  std::vector<std::string> chunks;

  /// The bytes of the whole request for the hook with this id.
  std::string serialize(const std::string& hookId) const;
};

/// A request with Host first, then `headers`, then Content-Length for a non-empty body or a
/// method that normally carries one.
SentRequest makeRequest(const std::string& method, const std::string& suffix,
                        const std::string& query, uint16_t edgePort, HeaderList headers,
                        const std::string& body);

/// A response as read by exchange().
struct WireResponse {
  int status = 0;
  WireMessage message;
};

/// Sends raw request bytes to 127.0.0.1:port on a new connection and reads one response.
WireResponse exchange(uint16_t port, const std::string& requestBytes, bool headRequest,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

/// Case-insensitive ASCII comparison of header names.
bool sameName(const std::string& a, const std::string& b);

}  // namespace anm::e2e
