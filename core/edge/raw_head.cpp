// core/edge/raw_head.cpp: reads header fields in true arrival order from a raw request head.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/raw_head.h"

#include <Poco/Net/MessageHeader.h>

#include <algorithm>
#include <optional>

namespace anm::edge {
namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trimBlanks(std::string_view text) {
  while (!text.empty() && isBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && isBlank(text.back())) text.remove_suffix(1);
  return text;
}

// RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
bool isTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return kSymbols.find(c) != std::string_view::npos;
}

// Controls are 0x00..0x1F and DEL; HTAB is the one a field value may hold (RFC 9110 5.5).
bool isForbiddenInValue(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && byte != '\t') || byte == 0x7F;
}

// POCO's header reader hands bytes on as signed chars, so 0xFF reads as end of input and is
// lost; comparisons with POCO's view skip it.
std::string withoutFF(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (static_cast<unsigned char>(c) != 0xFF) out.push_back(c);
  }
  return out;
}

RawHead refused(std::string reason) {
  RawHead result;
  result.status = RawHead::Status::kRefused;
  result.reason = std::move(reason);
  return result;
}

RawHead unavailable(std::string reason) {
  RawHead result;
  result.status = RawHead::Status::kUnavailable;
  result.reason = std::move(reason);
  return result;
}

// Cuts the next line off `rest`, without its CR LF or bare LF. False when no line end is left.
bool nextLine(std::string_view& rest, std::string_view& line) {
  const auto lf = rest.find('\n');
  if (lf == std::string_view::npos) return false;
  line = rest.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  rest.remove_prefix(lf + 1);
  return true;
}

// The first line of `head` when it is the line POCO parsed as `requestLine`, else nothing.
std::optional<std::string_view> ownRequestLine(std::string_view head,
                                               std::string_view requestLine) {
  std::string_view rest = head;
  std::string_view line;
  if (!nextLine(rest, line)) return std::nullopt;
  line = trimBlanks(line);
  if (withoutFF(line) != requestLine) return std::nullopt;
  return line;
}

std::string nameRefusal(std::string_view name) {
  return "header field name " + quoteForMessage(name) + " is not a token (RFC 9110 section 5.1)";
}

std::string valueRefusal(std::string_view name) {
  return "header field " + quoteForMessage(name) +
         " has a control character in its value (only HTAB is allowed)";
}

std::string checkField(std::string_view name, std::string_view value) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), isTokenChar)) {
    return nameRefusal(name);
  }
  if (std::any_of(value.begin(), value.end(), isForbiddenInValue)) return valueRefusal(name);
  return {};
}

}  // namespace

RawHead parseRawHead(std::string_view head, std::string_view requestLine) {
  if (head.empty()) return unavailable("no raw head was recorded");

  // The recorder may hold bytes of an earlier pipelined request; then the first line differs.
  std::string_view rest = head;
  std::string_view line;
  if (!nextLine(rest, line)) return unavailable("the raw head has no request line");
  if (!ownRequestLine(head, requestLine)) return unavailable("the raw request line differs");

  RawHead result;
  while (nextLine(rest, line)) {
    if (line.empty()) {
      result.status = RawHead::Status::kOk;
      return result;
    }
    if (isBlank(line.front())) return refused("folded header lines are not accepted");

    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return refused("a header line has no colon");
    const std::string_view name = line.substr(0, colon);
    if (name.empty()) return refused("a header line has an empty name");
    for (char c : name) {
      if (isBlank(c)) return refused("a header name contains whitespace");
    }
    const std::string_view value = trimBlanks(line.substr(colon + 1));
    std::string refusal = checkField(name, value);
    if (!refusal.empty()) return refused(std::move(refusal));
    result.headers.push_back(store::Header{std::string(name), std::string(value)});
  }
  return unavailable("the raw head has no empty line");
}

bool isVisibleAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

bool targetAcceptable(std::string_view head, std::string_view requestLine, std::string_view uri) {
  if (!isVisibleAscii(uri)) return false;

  // The whole raw line is checked, not only the target: a 0xFF that POCO drops at the end of
  // the line also makes it end the head there, so the fields after it would be lost.
  // A control character in the raw first line is refused even when that line differs from
  // what POCO parsed: POCO ends the request line at a bare CR after the version and reads the
  // rest as a header, so "HTTP/1.1\rContent-Length: 5" would lose the field and change the
  // body framing.
  std::string_view rest = head;
  std::string_view rawLine;
  if (nextLine(rest, rawLine) && std::any_of(rawLine.begin(), rawLine.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return (byte < 0x20 && c != '\t') || byte == 0x7F;
      })) {
    return false;
  }

  const auto line = ownRequestLine(head, requestLine);
  if (!line) return true;
  return std::all_of(line->begin(), line->end(),
                     [](char c) { return (c >= 0x21 && c <= 0x7E) || isBlank(c); });
}

std::string requestLineRefusal(std::string_view head, const std::string& method,
                               const std::string& uri, const std::string& version) {
  if (!isToken(method)) return kMethodRefusal;
  if (!targetAcceptable(head, method + " " + uri + " " + version, uri)) return kTargetRefusal;
  return {};
}

bool isToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), isTokenChar);
}

std::string fieldRefusal(const std::vector<store::Header>& fields) {
  for (const auto& field : fields) {
    std::string refusal = checkField(field.name, field.value);
    if (!refusal.empty()) return refusal;
  }
  return {};
}

std::string headFieldRefusal(std::string_view head) {
  std::string_view rest = head;
  std::string_view line;
  if (!nextLine(rest, line)) return {};

  // Each field line is checked as sent: a CR that does not end the line is part of its value.
  while (nextLine(rest, line) && !line.empty()) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || isBlank(line.front())) continue;
    const std::string_view name = line.substr(0, colon);
    if (std::any_of(name.begin(), name.end(), isBlank)) continue;
    std::string refusal = checkField(name, trimBlanks(line.substr(colon + 1)));
    if (!refusal.empty()) return refusal;
  }
  return {};
}

std::string quoteForMessage(std::string_view text, size_t maxBytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "\"";
  const size_t shown = std::min(text.size(), maxBytes);
  for (size_t i = 0; i < shown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '"' || byte == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(byte));
    } else if (byte >= 0x20 && byte <= 0x7E) {
      out.push_back(static_cast<char>(byte));
    } else {
      out += "\\x";
      out.push_back(kDigits[byte >> 4]);
      out.push_back(kDigits[byte & 0x0F]);
    }
  }
  out.push_back('"');
  if (text.size() > shown) out += "...";
  return out;
}

bool sameFields(const std::vector<store::Header>& raw,
                const Poco::Net::NameValueCollection& parsed) {
  if (raw.size() != parsed.size()) return false;

  // At most 100 fields, so pairing them up one by one is cheap enough.
  std::vector<bool> used(raw.size(), false);
  for (const auto& [name, value] : parsed) {
    bool found = false;
    for (size_t i = 0; i < raw.size() && !found; ++i) {
      if (used[i] || raw[i].name != name) continue;
      if (raw[i].value == value || withoutFF(raw[i].value) == value ||
          Poco::Net::MessageHeader::decodeWord(raw[i].value) == value) {
        used[i] = true;
        found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

std::vector<store::Header> pocoFields(const Poco::Net::NameValueCollection& parsed) {
  std::vector<store::Header> fields;
  fields.reserve(parsed.size());
  for (const auto& [name, value] : parsed) fields.push_back(store::Header{name, value});
  return fields;
}

}  // namespace anm::edge
