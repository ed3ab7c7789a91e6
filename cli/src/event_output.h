// cli/src/event_output.h: the per-event lines the relay prints, readable or JSON.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Timestamp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/src/forwarder.h"
#include "cli/src/stream_event.h"

namespace anm::cli {

bool isValidUtf8(const std::string& text);

/// `text` with what could drive the terminal or reorder the line shown escaped: C0 controls,
/// DEL and bytes that are not UTF-8 as \xNN, C1 controls and bidirectional controls as \uNNNN.
std::string printableText(const std::string& text);

/// The same for a body shown as text: tabs, line feeds and the CR of a CRLF stay as they are.
std::string printableBody(const std::string& text);

/// The columns a terminal gives to `text`, which is printable (printableText or printableBody
/// without line breaks): East Asian wide characters and emoji take two, combining marks none,
/// every other character one.
size_t displayWidth(const std::string& text);

/// `bytes` as text that the edge keeps as given: each byte that is not part of valid UTF-8
/// becomes U+FFFD, and the result is cut to at most `maxBytes` at a character's end. A character
/// cut short by the end of `bytes` (an excerpt that stopped inside it) is left out, not replaced.
std::string textExcerpt(const std::string& bytes, size_t maxBytes);

/// A JSON string literal for `text`. Bytes that are not valid UTF-8 are written as U+FFFD so
/// that the line stays valid JSON (this is display output, never a forwarded byte).
std::string jsonQuote(const std::string& text);

/// "14:03:07.412  POST /stripe?x=1  payment_intent.succeeded  -> 200  3 ms" in local time.
std::string formatEventLine(const StreamEvent& event, const DeliveryResult& result,
                            const Poco::Timestamp& when);

/// One JSON object: id, time (UTC, ISO 8601 with ms), method, path, query, event_type,
/// status, duration_ms, error, and location for a 3xx answer.
std::string formatEventJson(const StreamEvent& event, const DeliveryResult& result,
                            const Poco::Timestamp& when);

}  // namespace anm::cli
