// cli/src/forward_request.h: the request the relay sends to the local target, byte for byte.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "cli/src/url.h"

namespace anm::cli {

struct HeaderField {
  std::string name;
  std::string value;
};

/// A stored webhook as the stream delivers it: what the provider sent to /h/<id><pathSuffix>.
struct ForwardRequest {
  std::string method;
  std::string pathSuffix;            ///< "" or starting with '/', exactly as received
  std::string rawQuery;              ///< without '?', never decoded or re-encoded
  std::vector<HeaderField> headers;  ///< arrival order, original spelling, repeats kept
  std::string body;                  ///< exact bytes
};

/// True for a non-empty RFC 9110 token (tchar only): the form of methods and field names.
bool isToken(const std::string& text);

/// The request target: the target URL's path without trailing slash, the suffix, then "?" and
/// the raw query when there is one. "/" when all of that is empty.
std::string targetPath(const Url& target, const ForwardRequest& request);

/// True for fields a relay must not pass on (RFC 9110 section 7.6.1), for Content-Length (it is
/// written anew) and for any name listed in the request's Connection fields.
bool isDroppedField(const std::string& name, const std::vector<std::string>& connectionTokens);

/// Writes the request head: request line, the kept fields in arrival order with Host in the
/// position of the original Host, Content-Length when needed, and the empty line.
/// Returns false and sets `error` when the request cannot be written as valid HTTP/1.1
/// (a method that is not a token, a path with spaces or controls, a field with CR or LF).
bool buildRequestHead(const Url& target, const ForwardRequest& request, std::string& head,
                      std::string& error);

}  // namespace anm::cli
