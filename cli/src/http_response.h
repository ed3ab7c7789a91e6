// cli/src/http_response.h: reads HTTP/1.1 response heads and bodies from a Connection.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/src/connection.h"

namespace anm::cli {

/// Limits on what a peer may send us in a response head. Past them the response is refused
/// as invalid rather than buffered.
inline constexpr size_t kMaxResponseLineBytes = 16 * 1024;
inline constexpr size_t kMaxResponseHeadBytes = 64 * 1024;
inline constexpr size_t kMaxResponseFields = 200;

struct ResponseHead {
  int versionMinor = 1;  ///< HTTP/1.<minor>
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;

  /// The first field of that name (case-insensitive), or "".
  std::string field(const std::string& name) const;
  bool hasToken(const std::string& name, const std::string& token) const;
};

/// Reads a final response head, skipping 1xx interim responses. Throws NetError: kClosed
/// when the peer closed before sending anything, kProtocol for a malformed head.
ResponseHead readResponseHead(Connection& connection, Clock::time_point deadline);

/// How the body after a head ends (RFC 9112 section 6.3).
enum class BodyFraming { kNone, kLength, kChunked, kUntilClose };

/// Reads one response body in pieces, with chunked decoding, never holding more than the
/// caller's buffer.
class BodyReader {
 public:
  BodyReader(Connection& connection, const ResponseHead& head, bool requestWasHead);

  BodyFraming framing() const { return framing_; }

  /// Up to cap body bytes; 0 at the end of the body. Throws NetError.
  size_t read(char* out, size_t cap, Clock::time_point deadline);

  /// Reads and drops the rest of the body.
  void discard(Clock::time_point deadline);

 private:
  Connection& connection_;
  BodyFraming framing_ = BodyFraming::kNone;
  uint64_t left_ = 0;  ///< in the current chunk, or of the fixed length
  bool done_ = false;
  bool firstChunk_ = true;
};

}  // namespace anm::cli
