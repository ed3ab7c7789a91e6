// cli/src/event_output.cpp: formatting of per-event output lines.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/event_output.h"

#include <Poco/DateTimeFormatter.h>

#include <locale.h>
#include <wchar.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace anm::cli {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t utf8Length(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  uint32_t min = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// The envelope's display forms when it gave them (raw bytes that are not UTF-8 are shown with
// U+FFFD), else the request's own bytes.
const std::string& shownSuffix(const StreamEvent& event) {
  return event.displayPath.empty() ? event.request.pathSuffix : event.displayPath;
}

const std::string& shownQuery(const StreamEvent& event) {
  return event.displayQuery.empty() ? event.request.rawQuery : event.displayQuery;
}

std::string displayPath(const StreamEvent& event) {
  std::string path = shownSuffix(event).empty() ? "/" : shownSuffix(event);
  if (!shownQuery(event).empty()) path += "?" + shownQuery(event);
  return path;
}

// Local wall-clock time as HH:MM:SS.mmm. localtime_r reads the zone once per process, where
// a LocalDateTime looks at /etc/localtime again for every line.
std::string localClock(const Poco::Timestamp& when) {
  const std::time_t seconds = static_cast<std::time_t>(when.epochTime());
  std::tm parts{};
  if (localtime_r(&seconds, &parts) == nullptr) return "--:--:--.---";
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec,
                static_cast<int>(when.epochMicroseconds() % 1000000 / 1000));
  return text;
}

// The code point of the valid UTF-8 sequence of `n` bytes at s[i].
uint32_t codePointAt(const std::string& s, size_t i, size_t n) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  uint32_t cp = n == 1 ? byte(i) : byte(i) & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  return cp;
}

// glibc's built-in C.UTF-8 (2.35 on), or the C locale when a system lacks it (then every
// character counts one column).
locale_t utf8Locale() {
  static const locale_t locale = [] {
    locale_t made = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    return made != static_cast<locale_t>(nullptr) ? made : LC_GLOBAL_LOCALE;
  }();
  return locale;
}

// Characters that steer a terminal or the order text is shown in: C0 and C1 controls, DEL,
// and the bidirectional marks, embeddings, overrides and isolates.
bool steersDisplay(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

// Control bytes would let a sender draw on the developer's terminal, and bidirectional
// controls would let it reorder what is shown; both are shown escaped, as are bytes that are
// not UTF-8. `keepLines` leaves tabs, line feeds and the CR of a CRLF as they are, for bodies.
std::string printable(const std::string& text, bool keepLines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8Length(text, i);
    if (n == 0) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned char>(text[i]));
      out += buffer;
      ++i;
      continue;
    }
    const uint32_t cp = codePointAt(text, i, n);
    const bool lineBreak =
        cp == '\n' || cp == '\t' || (cp == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
    if (steersDisplay(cp) && !(keepLines && lineBreak)) {
      char buffer[12];
      if (cp < 0x80) {
        std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned>(cp));
      } else {
        std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(cp));
      }
      out += buffer;
    } else {
      out.append(text, i, n);
    }
    i += n;
  }
  return out;
}

}  // namespace

std::string printableText(const std::string& text) { return printable(text, false); }

std::string printableBody(const std::string& text) { return printable(text, true); }

size_t displayWidth(const std::string& text) {
  const locale_t callers = ::uselocale(utf8Locale());
  size_t columns = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8Length(text, i);
    if (n == 0) {
      ++columns;
      ++i;
      continue;
    }
    // The C library's table of East Asian widths and emoji, read through a UTF-8 locale of its
    // own so that the user's locale does not matter; a character it does not know takes one.
    const int width = ::wcwidth(static_cast<wchar_t>(codePointAt(text, i, n)));
    columns += width < 0 ? 1 : static_cast<size_t>(width);
    i += n;
  }
  ::uselocale(callers);
  return columns;
}

bool isValidUtf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8Length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string textExcerpt(const std::string& bytes, size_t maxBytes) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(std::min(bytes.size(), maxBytes));
  for (size_t i = 0; i < bytes.size();) {
    size_t n = utf8Length(bytes, i);
    std::string_view piece(bytes.data() + i, n);
    if (n == 0) {
      // The start of a character that the end of the bytes cut off.
      const auto lead = static_cast<unsigned char>(bytes[i]);
      const size_t wanted = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
      const bool continues = std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                         bytes.end(), [](char c) { return (c & 0xC0) == 0x80; });
      if (wanted > 0 && i + wanted > bytes.size() && continues) break;
      n = 1;
      piece = kReplacement;
    }
    if (out.size() + piece.size() > maxBytes) break;
    out.append(piece);
    i += n;
  }
  return out;
}

std::string jsonQuote(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
      ++i;
      continue;
    }
    const size_t n = utf8Length(text, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    out.append(text, i, n);
    i += n;
  }
  out.push_back('"');
  return out;
}

std::string formatEventLine(const StreamEvent& event, const DeliveryResult& result,
                            const Poco::Timestamp& when) {
  std::string outcome;
  if (result.status == 0) {
    outcome = result.error;
  } else {
    outcome = std::to_string(result.status);
    if (!result.location.empty()) outcome += " Location: " + result.location;
  }
  const std::string time = localClock(when);
  return time + "  " + printableText(event.request.method) + " " +
         printableText(displayPath(event)) + "  " +
         (event.eventType.empty() ? "-" : printableText(event.eventType)) + "  -> " +
         printableText(outcome) + "  " + std::to_string(result.durationMs) + " ms";
}

std::string formatEventJson(const StreamEvent& event, const DeliveryResult& result,
                            const Poco::Timestamp& when) {
  std::string json = "{\"id\":" + std::to_string(event.id);
  json += ",\"time\":" + jsonQuote(Poco::DateTimeFormatter::format(when, "%Y-%m-%dT%H:%M:%S.%iZ"));
  json += ",\"method\":" + jsonQuote(event.request.method);
  json += ",\"path\":" + jsonQuote(shownSuffix(event).empty() ? "/" : shownSuffix(event));
  json += ",\"query\":" + jsonQuote(shownQuery(event));
  json += ",\"event_type\":" + jsonQuote(event.eventType);
  json += ",\"status\":" + std::to_string(result.status);
  json += ",\"duration_ms\":" + std::to_string(result.durationMs);
  json += ",\"error\":" + jsonQuote(result.error);
  if (!result.location.empty()) json += ",\"location\":" + jsonQuote(result.location);
  json += "}";
  return json;
}

}  // namespace anm::cli
