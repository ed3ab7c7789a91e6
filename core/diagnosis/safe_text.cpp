// core/diagnosis/safe_text.cpp: untrusted bytes turned into text that is safe to quote.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/safe_text.h"

#include <algorithm>

namespace anm::diagnosis {
namespace {

/// One decoded character: its code point and how many input bytes it took. `length` is 0 when
/// the bytes at the position do not form a well-formed UTF-8 sequence.
struct Decoded {
  char32_t codePoint = 0;
  size_t length = 0;
};

Decoded decodeAt(std::string_view in, size_t pos) {
  const auto lead = static_cast<unsigned char>(in[pos]);
  if (lead < 0x80) return {lead, 1};

  // The lead byte gives the length and the smallest code point that length may carry; a
  // smaller one is an overlong form, which hides characters from naive filters.
  size_t length = 0;
  char32_t smallest = 0;
  char32_t value = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, smallest = 0x80, value = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, smallest = 0x800, value = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, smallest = 0x10000, value = lead & 0x07;
  } else {
    return {};
  }
  if (in.size() - pos < length) return {};
  for (size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(in[pos + k]);
    if ((next & 0xC0) != 0x80) return {};
    value = (value << 6) | (next & 0x3F);
  }
  const bool surrogate = value >= 0xD800 && value <= 0xDFFF;
  if (value < smallest || value > 0x10FFFF || surrogate) return {};
  return {value, length};
}

/// Characters that change how the text around them is shown: controls, and the bidirectional
/// overrides and isolates that can make quoted text read as something else.
bool hidesOrReorders(char32_t c) {
  const bool control = c < 0x20 || (c >= 0x7F && c <= 0x9F);
  const bool bidi = (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
  return control || bidi;
}

/// Walks `in` and appends its safe form to `out`, stopping before the output would pass
/// `limitBytes`. Returns false when it stopped early.
bool appendSanitized(std::string& out, std::string_view in, bool oneLine, size_t limitBytes) {
  const size_t start = out.size();
  size_t pos = 0;
  while (pos < in.size()) {
    const Decoded decoded = decodeAt(in, pos);
    std::string_view piece;
    if (decoded.length == 0) {
      piece = kReplacement;
    } else if (decoded.codePoint == '\t' || decoded.codePoint == '\n' ||
               decoded.codePoint == '\r') {
      piece = oneLine ? std::string_view(" ") : in.substr(pos, 1);
    } else if (hidesOrReorders(decoded.codePoint)) {
      piece = kReplacement;
    } else {
      piece = in.substr(pos, decoded.length);
    }
    if (out.size() - start + piece.size() > limitBytes) return false;
    out.append(piece);
    pos += decoded.length == 0 ? 1 : decoded.length;
  }
  return true;
}

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::string sanitizeText(std::string_view in, bool oneLine) {
  std::string out;
  out.reserve(in.size());
  appendSanitized(out, in, oneLine, std::string::npos);
  return out;
}

std::string quoteUntrusted(std::string_view in, size_t limitBytes) {
  std::string out;
  out.reserve(std::min(in.size(), limitBytes) + kEllipsis.size());
  if (!appendSanitized(out, in, true, limitBytes)) out.append(kEllipsis);
  return out;
}

void appendJsonString(std::string& out, std::string_view text) {
  const std::string safe = sanitizeText(text, false);
  out.push_back('"');
  for (const char c : safe) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (byte < 0x20 || c == '<' || c == '>' || c == '&') {
      // TAB and CR, and the three characters that would matter if the JSON sat in HTML.
      out.append("\\u00");
      out.push_back(kHexDigits[byte >> 4]);
      out.push_back(kHexDigits[byte & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void appendHtmlText(std::string& out, std::string_view text) {
  const std::string safe = sanitizeText(text, false);
  for (const char c : safe) {
    switch (c) {
      case '&':
        out.append("&amp;");
        break;
      case '<':
        out.append("&lt;");
        break;
      case '>':
        out.append("&gt;");
        break;
      case '"':
        out.append("&quot;");
        break;
      case '\'':
        out.append("&#39;");
        break;
      default:
        out.push_back(c);
    }
  }
}

}  // namespace anm::diagnosis
