// cli/src/url.cpp: parsing of the edge and target URLs.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/url.h"

#include <Poco/Exception.h>
#include <Poco/URI.h>

namespace anm::cli {

std::string Url::authority() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string out = ipv6 ? "[" + host + "]" : host;
  const uint16_t defaultPort = tls() ? 443 : 80;
  if (explicitPort || port != defaultPort) out += ":" + std::to_string(port);
  return out;
}

std::string Url::basePath() const {
  std::string out = path;
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

std::optional<Url> Url::parse(const std::string& text, std::string& error) {
  Poco::URI uri;
  try {
    uri = Poco::URI(text);
  } catch (const Poco::Exception& e) {
    error = "invalid URL '" + text + "': " + e.message();
    return std::nullopt;
  }

  // Only plain and TLS HTTP make sense for both the edge and the local target.
  Url url;
  url.scheme = uri.getScheme();
  if (url.scheme != "http" && url.scheme != "https") {
    error = "invalid URL '" + text + "': scheme must be http or https";
    return std::nullopt;
  }
  url.host = uri.getHost();
  if (url.host.empty()) {
    error = "invalid URL '" + text + "': no host";
    return std::nullopt;
  }
  if (!uri.getQuery().empty() || !uri.getFragment().empty()) {
    error = "invalid URL '" + text + "': a query or fragment is not allowed here";
    return std::nullopt;
  }

  // Poco fills in the default port; look at the text to know whether one was written.
  url.port = uri.getPort();
  const std::string::size_type hostEnd = text.find('/', url.scheme.size() + 3);
  const std::string authority = text.substr(
      url.scheme.size() + 3,
      hostEnd == std::string::npos ? std::string::npos : hostEnd - url.scheme.size() - 3);
  const std::string::size_type bracket = authority.rfind(']');
  const std::string::size_type colon = authority.rfind(':');
  url.explicitPort =
      colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (url.port == 0) {
    error = "invalid URL '" + text + "': port must be 1..65535";
    return std::nullopt;
  }

  // Keep the path exactly as typed (Poco would decode it).
  url.path = hostEnd == std::string::npos ? "" : text.substr(hostEnd);
  return url;
}

}  // namespace anm::cli
