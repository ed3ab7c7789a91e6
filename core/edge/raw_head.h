// core/edge/raw_head.h: reads header fields in true arrival order from a raw request head.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/NameValueCollection.h>

#include <cstddef>
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

/// The answer to a request target that holds a byte outside visible ASCII.
inline constexpr const char* kTargetRefusal =
    "request target must be ASCII; percent-encode other bytes";

/// Most bytes of a field name quoted in a refusal message; longer names are cut and end in "...".
inline constexpr size_t kMaxQuotedNameBytes = 64;

/// Parses `head` (request line, fields, empty line). `requestLine` is what POCO parsed, as
/// "METHOD URI VERSION"; a head whose first line differs (other than by the 0xFF bytes POCO
/// drops) is not this request's and is kUnavailable. Folded lines (obs-fold), lines without a
/// colon, whitespace before the colon and fields that fieldRefusal refuses are kRefused
/// (RFC 9112 section 5). Values lose surrounding spaces and tabs.
RawHead parseRawHead(std::string_view head, std::string_view requestLine);

/// True when every byte of `text` is visible ASCII (0x21..0x7E), the only bytes RFC 9112
/// section 3.2 allows in a request target.
bool isVisibleAscii(std::string_view text);

/// True when `text` is a non-empty RFC 9110 token (the form of methods and field names).
bool isToken(std::string_view text);

/// True when the request target may be stored and relayed as received: POCO's `uri` is visible
/// ASCII and, when the first line of `head` is this request's line (see parseRawHead), so is
/// every byte of that raw line apart from its blanks. The raw check matters because POCO drops
/// 0xFF bytes while parsing (and one right before the line end makes it end the head early).
bool targetAcceptable(std::string_view head, std::string_view requestLine, std::string_view uri);

/// The answer to a method that is not an RFC 9110 token: it could be stored but never relayed.
inline constexpr const char* kMethodRefusal = "the method must be an RFC 9110 token, e.g. POST";

/// "" when the request line (POCO's `method`, `uri` and `version`, with the raw `head` as in
/// targetAcceptable) may be stored and relayed as received, else the refusal to answer with 400:
/// kMethodRefusal or kTargetRefusal.
std::string requestLineRefusal(std::string_view head, const std::string& method,
                               const std::string& uri, const std::string& version);

/// "" when every field can be relayed exactly, else a message naming the first one that cannot:
/// a name that is not an RFC 9110 token, or a value holding a control character other than HTAB
/// (NUL, CR, LF, DEL, ...). Bytes 0x80..0xFF in values (obs-text) are accepted.
std::string fieldRefusal(const std::vector<store::Header>& fields);

/// The refusal for a head POCO could not parse, when its recorded bytes show a field that
/// fieldRefusal refuses or a bare CR inside a field line; "" when they show none (or `head` is
/// empty). Lets the connection answer 400 with the field's name instead of POCO's generic
/// "field value too long/no CRLF found".
std::string headFieldRefusal(std::string_view head);

/// `text` in double quotes, safe to show: printable ASCII as is (with \" and \\ escaped),
/// other bytes as \xHH; at most `maxBytes` input bytes, then "...".
std::string quoteForMessage(std::string_view text, size_t maxBytes = kMaxQuotedNameBytes);

/// True when `raw` holds the same fields as POCO's `parsed`, ignoring order: same names with
/// the same spelling, and each value equal to POCO's (or to what POCO makes of RFC 2047
/// encoded words), where 0xFF bytes of the raw value, which POCO drops, are ignored.
bool sameFields(const std::vector<store::Header>& raw,
                const Poco::Net::NameValueCollection& parsed);

/// POCO's fields in its own order (repeated names grouped).
std::vector<store::Header> pocoFields(const Poco::Net::NameValueCollection& parsed);

}  // namespace anm::edge
