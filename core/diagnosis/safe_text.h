// core/diagnosis/safe_text.h: untrusted bytes turned into text that is safe to quote.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace anm::diagnosis {

// Bodies, response excerpts, header values and plugin messages come from senders and local
// servers: none of them is trusted to be UTF-8, short, on one line or free of markup. Every
// string a finding quotes passes through quoteUntrusted; every string written into JSON or
// HTML passes through appendJsonString or appendHtmlText, which sanitize once more, so that
// a caller that forgets the first step still cannot produce invalid output.

/// What U+FFFD (REPLACEMENT CHARACTER) is in UTF-8: it stands for each byte that is not part of
/// well-formed UTF-8 and for each control character that is dropped.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

/// What ends a quote that was cut: U+2026 (HORIZONTAL ELLIPSIS).
inline constexpr std::string_view kEllipsis = "\xE2\x80\xA6";

/// `in` made into valid UTF-8 that shows what it holds without being able to hide or reorder
/// other text: each byte that does not start a well-formed sequence (overlong forms, surrogates
/// and code points past U+10FFFF included) becomes U+FFFD, and so does each control character
/// (C0 other than TAB, LF and CR; DEL; C1) and each bidirectional override or isolate
/// (U+202A..U+202E, U+2066..U+2069). With `oneLine`, TAB, LF and CR become spaces.
std::string sanitizeText(std::string_view in, bool oneLine);

/// sanitizeText(in, true) cut to at most `limitBytes` bytes of output, never inside a character,
/// with kEllipsis appended (beyond the limit) when anything was left out.
std::string quoteUntrusted(std::string_view in, size_t limitBytes);

/// Appends `text` as a JSON string, quotes included. The text is sanitized first (without
/// oneLine: JSON escapes line breaks), then '"', '\\', control characters and '<', '>', '&'
/// are escaped, so the result is valid JSON that can also sit inside HTML.
void appendJsonString(std::string& out, std::string_view text);

/// Appends `text` for HTML element content or a double- or single-quoted attribute value:
/// sanitized, then '&', '<', '>', '"' and '\'' become character references.
void appendHtmlText(std::string& out, std::string_view text);

}  // namespace anm::diagnosis
