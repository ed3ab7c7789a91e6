// cli/src/stream_event.h: the webhook envelope of the event stream (docs/protocol.md).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Array.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cli/src/forward_request.h"

namespace anm::cli {

struct StreamEvent {
  int64_t id = 0;
  int64_t receivedAtMs = 0;
  ForwardRequest request;  ///< the exact bytes to forward (path_b64/query_b64 decoded)
  /// The envelope's "path" and "query" as sent: the same as the request's unless the raw
  /// bytes were not UTF-8, in which case these are display forms with U+FFFD, never forwarded.
  std::string displayPath;
  std::string displayQuery;
  std::string eventType;
  std::string deliveryId;
  std::string verdict;
  int64_t replayOf = 0;
};

/// Parses the JSON of one `event: webhook` frame. Returns false and sets `error` when a field
/// the relay needs is missing or malformed (the body must be valid base64). When the optional
/// "path_b64" or "query_b64" is present (the raw suffix or query was not valid UTF-8), its
/// decoded bytes are what the request carries; "path" and "query" are then only displayed.
bool parseStreamEvent(const std::string& json, StreamEvent& event, std::string& error);

/// Decodes one entry of a `headers` array: ["Name","value"], ["Name","<base64 value>","b64"]
/// or ["<base64 name>","<base64 value>","b64name"] (docs/protocol.md). False if malformed.
bool decodeHeaderField(const Poco::JSON::Array::Ptr& entry, HeaderField& field);

/// Strict RFC 4648 base64 (padding required, no whitespace). Returns false on bad input.
bool decodeBase64(std::string_view text, std::string& out);

std::string encodeBase64(std::string_view bytes);

}  // namespace anm::cli
