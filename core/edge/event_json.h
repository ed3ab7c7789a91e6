// core/edge/event_json.h: the JSON forms of events and deliveries used by the API and streams.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/store/store.h"

namespace anm::edge {

// Every form is one line of valid JSON whatever bytes the event holds. Header fields keep their
// bytes: a field whose value is not valid UTF-8 is sent as ["Name","<base64 value>","b64"], and
// one whose name is not valid UTF-8 as ["<base64 name>","<base64 value>","b64name"] (see the
// event stream section of docs/protocol.md). "path" and "query" that are not valid UTF-8 have
// each bad byte replaced by U+FFFD, and the form then also holds "path_b64" / "query_b64" with
// the exact bytes base64-encoded, which is what a relay must forward. Other text fields
// (message, event type, ...) are display text only: bad bytes become U+FFFD. The body is always
// base64.

/// The summary form of docs/protocol.md, with the deliveries given. An event whose
/// integrityError is set also carries "integrity_error" (its contents are empty).
std::string eventSummaryJson(const store::EventRecord& event,
                             const std::vector<store::DeliveryRecord>& deliveries);

/// The full form: the summary plus headers and body_base64.
std::string eventDetailJson(const store::EventRecord& event,
                            const std::vector<store::DeliveryRecord>& deliveries);

/// The stream envelope (one line, no deliveries).
std::string eventEnvelopeJson(const store::EventRecord& event);

/// One complete SSE frame: "id: N\nevent: webhook\ndata: {...}\n\n". For an event whose
/// integrityError is set, the unreadable frame instead.
std::string sseFrame(const store::EventRecord& event);

/// "id: N\nevent: unreadable\ndata: {"id":N,"error":"<integrity error>"}\n\n": an event that
/// exists but whose contents could not be read, so that a relay can move past it and say so.
std::string unreadableFrame(const store::EventRecord& event);

/// One delivery report: {"relay":...,"status":N,"duration_ms":N,"error":...,"phase":...,
/// "timeout_ms":N,"target_https":B,"started_at_ms":N,"response_excerpt":...,"location":...,
/// "reported_at_ms":N}, plus "integrity_error" for one whose sealed values did not open.
std::string deliveryJson(const store::DeliveryRecord& delivery);

/// A dashboard's frame of a new event: "id: N\nevent: summary\ndata: <summary>\n\n", without
/// contents beyond the summary and without deliveries.
std::string summaryFrame(const store::EventRecord& event);

/// A dashboard's frame of a delivery report, without an id so that it moves no cursor:
/// "event: delivery\ndata: {"event":N,"relay":...}\n\n".
std::string deliveryFrame(const store::DeliveryRecord& delivery);

/// "connecting", "sending", "receiving" or "unknown": a delivery's phase in the protocol.
std::string_view phaseName(store::DeliveryPhase phase);

/// The phase of that protocol name, or nothing for another text.
std::optional<store::DeliveryPhase> phaseFromName(std::string_view name);

/// "valid", "invalid" or "unsigned" (the names of plugin::verdictName, without the plugin host).
std::string_view verdictName(store::Verdict verdict);

/// The protocol name of an ANM_REASON_* code, e.g. "timestamp_outside"; "unknown" otherwise.
std::string_view reasonName(int32_t reason);

/// True when `in` is well-formed UTF-8 (no overlong forms, surrogates or code points past
/// U+10FFFF).
bool isValidUtf8(std::string_view in);

/// Length of the well-formed UTF-8 sequence starting at in[pos], or 0 if there is none.
/// Requires pos < in.size().
size_t utf8SequenceLength(std::string_view in, size_t pos);

/// Appends the standard base64 form of `in` (RFC 4648 alphabet, '=' padding) to `out`.
void appendBase64(std::string& out, std::string_view in);

/// The bytes of `text` in exactly the form appendBase64 writes (whole groups of four, '='
/// padding only at the end, no white space), or nothing for any other text.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace anm::edge
