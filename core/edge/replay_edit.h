// core/edge/replay_edit.h: the edits of an edited replay, checked as ingest checks a request.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Object.h>

#include <cstddef>
#include <string_view>

#include "core/store/store.h"

namespace anm::edge {

/// The members of POST .../events/<n>/replay that edit the copy (docs/dashboard.md, "Replay").
inline constexpr std::string_view kReplayEditFields[] = {"method", "path", "query", "headers",
                                                         "body_base64"};

/// What an edited request may hold: the limits ingest puts on a request (docs/protocol.md).
inline constexpr size_t kMaxEditedTargetBytes = 16 * 1024;  ///< path, plus '?' and the query
inline constexpr size_t kMaxEditedHeaders = 100;
inline constexpr size_t kMaxEditedHeaderNameBytes = 256;
inline constexpr size_t kMaxEditedHeaderValueBytes = 8192;

/// What the answer to an edited replay warns of, and the reason message its copy is stored with.
inline constexpr std::string_view kEditedReplayWarning =
    "the provider's signature covers the original request; the local handler's check will fail "
    "for an edited one";
inline constexpr std::string_view kEditedReplayMessage = "edited replay";

/// Makes `copy`, a copy of the original event, the edited replay `request` asks for: each of
/// method, path, query, headers (["Name","value"], or the "b64" and "b64name" forms of the
/// event form) and body_base64 that it gives replaces the original's; the copy is marked
/// modified and unsigned (reason not_signed, message "edited replay"), since the provider's
/// signature no longer covers it. Its event type and delivery id stay the original's.
///
/// The edits are checked as ingest checks a request, and a bad one throws BadRequest (400)
/// saying which member and why: the method must be an RFC 9110 token; the path "" or starting
/// with '/', the path and the query visible ASCII and together within kMaxEditedTargetBytes;
/// at most kMaxEditedHeaders headers with token names and values free of control bytes other
/// than HTAB, within the size limits above; a body of at most `maxBodyBytes`. Any other member,
/// or none of them, is refused too.
void applyReplayEdit(const Poco::JSON::Object& request, size_t maxBodyBytes,
                     store::EventRecord& copy);

}  // namespace anm::edge
