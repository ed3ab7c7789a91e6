// cli/src/api_client.h: requests to the edge's REST API (docs/protocol.md, /api/v1).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cli/src/url.h"

namespace Poco::Net {
class HTTPClientSession;
}

namespace anm::cli {

/// Largest API answer read into memory (an event detail carries at most a 10 MiB body).
inline constexpr size_t kMaxApiResponseBytes = 64u << 20;

struct ApiResponse {
  int status = 0;
  std::string body;

  /// The "error" member of a JSON error answer, or the status line's meaning.
  std::string errorText() const;
};

/// One kept-alive connection to the edge. Not thread-safe; each thread makes its own.
class ApiClient {
 public:
  ApiClient(Url edge, std::string token, std::chrono::milliseconds timeout);
  ~ApiClient();

  void setToken(std::string token) { token_ = std::move(token); }

  /// Sends a request to edge path prefix + `path` (which starts with "/api/v1/"). JSON bodies
  /// only. Throws NetError when no answer came.
  ApiResponse send(const std::string& method, const std::string& path,
                   const std::string& body = "");

 private:
  Url edge_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
};

/// Percent-encodes one path segment (hook ids are URL-safe already; this is a safety net).
std::string encodeSegment(const std::string& segment);

}  // namespace anm::cli
