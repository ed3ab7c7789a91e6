// cli/src/url.h: the http(s) URLs the CLI talks to (edge and local target).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace anm::cli {

/// An absolute http or https URL, split the way the CLI needs it.
struct Url {
  std::string scheme;  ///< "http" or "https"
  std::string host;    ///< without brackets for IPv6 literals
  uint16_t port = 0;   ///< explicit or the scheme's default
  std::string path;    ///< as written, without query; "" when the URL has none
  bool explicitPort = false;

  /// "host" or "host:port" (the port left out only when it is the scheme's default), for Host.
  std::string authority() const;

  /// The path with any trailing slashes removed, so that a suffix can be appended.
  std::string basePath() const;

  bool tls() const { return scheme == "https"; }

  /// Parses `text`; on failure returns nothing and sets `error` to a one-line reason.
  static std::optional<Url> parse(const std::string& text, std::string& error);
};

}  // namespace anm::cli
