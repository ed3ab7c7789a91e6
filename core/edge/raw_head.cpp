// core/edge/raw_head.cpp: reads header fields in true arrival order from a raw request head.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/raw_head.h"

#include <Poco/Net/MessageHeader.h>

namespace anm::edge {
namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trimBlanks(std::string_view text) {
  while (!text.empty() && isBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && isBlank(text.back())) text.remove_suffix(1);
  return text;
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

}  // namespace

RawHead parseRawHead(std::string_view head, std::string_view requestLine) {
  if (head.empty()) return unavailable("no raw head was recorded");

  // The recorder may hold bytes of an earlier pipelined request; then the first line differs.
  std::string_view rest = head;
  std::string_view line;
  if (!nextLine(rest, line)) return unavailable("the raw head has no request line");
  if (trimBlanks(line) != requestLine) return unavailable("the raw request line differs");

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
    result.headers.push_back(
        store::Header{std::string(name), std::string(trimBlanks(line.substr(colon + 1)))});
  }
  return unavailable("the raw head has no empty line");
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
      if (raw[i].value == value || Poco::Net::MessageHeader::decodeWord(raw[i].value) == value) {
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
