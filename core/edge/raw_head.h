// core/edge/raw_head.h: reads header fields in true arrival order from a raw request head.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/NameValueCollection.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/store/store.h"

namespace anm::edge {

/// What parsing a raw request head found.
struct RawHead {
  enum class Status {
    kOk,           ///< `headers` holds every field in arrival order
    kUnavailable,  ///< the bytes are not this request's head; use POCO's fields instead
    kRefused,      ///< the head is malformed in a way the edge answers with 400
  };
  Status status = Status::kUnavailable;
  std::string reason;  ///< why it is unavailable or refused
  std::vector<store::Header> headers;
};

/// Parses `head` (request line, fields, empty line). `requestLine` is what POCO parsed, as
/// "METHOD URI VERSION"; a head whose first line differs is not this request's and is
/// kUnavailable. Folded lines (obs-fold), lines without a colon and whitespace before the colon
/// are kRefused (RFC 9112 section 5). Values lose surrounding spaces and tabs.
RawHead parseRawHead(std::string_view head, std::string_view requestLine);

/// True when `raw` holds the same fields as POCO's `parsed`, ignoring order: same names with
/// the same spelling, and each value equal to POCO's (or to what POCO makes of RFC 2047
/// encoded words).
bool sameFields(const std::vector<store::Header>& raw,
                const Poco::Net::NameValueCollection& parsed);

/// POCO's fields in its own order (repeated names grouped).
std::vector<store::Header> pocoFields(const Poco::Net::NameValueCollection& parsed);

}  // namespace anm::edge
