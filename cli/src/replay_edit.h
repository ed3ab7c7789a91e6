// cli/src/replay_edit.h: the edits of `anonymily events replay`, from options or from the event
// opened as a text in the user's editor.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/src/forward_request.h"

namespace anm::cli {

/// What an edited replay changes (docs/dashboard.md, "Replay"): each member set replaces the
/// original's; `headers` replaces all of them.
struct ReplayEdit {
  std::optional<std::string> method;
  std::optional<std::string> path;   ///< the path suffix after /h/<hook id>: "" or "/..."
  std::optional<std::string> query;  ///< without '?'
  std::optional<std::vector<HeaderField>> headers;
  std::optional<std::string> body;

  bool empty() const { return !method && !path && !query && !headers && !body; }
};

/// A --header value, "Name: value": the name before the first colon, the value after it
/// without the spaces and tabs that follow the colon. False, with `error`, when there is no
/// colon or no name, or the name is not an RFC 9110 token.
bool parseHeaderOption(const std::string& text, HeaderField& field, std::string& error);

/// The event as a text to edit, in the form of an HTTP request without its version:
///
///     METHOD TARGET            (TARGET: the path suffix, then '?' and the raw query if any;
///     Name: value               left out when both are empty)
///     ...                      (the header fields in arrival order)
///                              (one empty line)
///     BODY                     (the exact bytes)
///
/// followed by one line feed that is not part of the body, so that an editor that ends every
/// file with one leaves the body as it was.
std::string editableText(const ForwardRequest& request);

/// Reads a text in the form editableText writes, back into `request`. Lines of the head may end
/// in LF or CRLF; the body is every byte after the empty line, less one final line feed. A file
/// that ends after the head has an empty body. Returns false and sets `error` to
/// "line N: <what is wrong>" for a request line that is not METHOD [TARGET] with a token method
/// and a target in visible ASCII that is empty or starts with '/' or '?', or a header line that
/// is not "Name: value" with a token name.
bool parseEditedText(const std::string& text, ForwardRequest& request, std::string& error);

/// The members of `edited` that differ from `original`.
ReplayEdit differences(const ForwardRequest& original, const ForwardRequest& edited);

/// The JSON body of POST .../events/<n>/replay for `edit` (docs/protocol.md). Header fields
/// whose bytes are not UTF-8 go in the "b64" and "b64name" forms.
std::string replayEditJson(const ReplayEdit& edit);

}  // namespace anm::cli
