// core/edge/event_json.h: the JSON forms of events and deliveries used by the API and streams.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "core/store/store.h"

namespace anm::edge {

/// The summary form of docs/protocol.md, with the deliveries given.
std::string eventSummaryJson(const store::EventRecord& event,
                             const std::vector<store::DeliveryRecord>& deliveries);

/// The full form: the summary plus headers and body_base64.
std::string eventDetailJson(const store::EventRecord& event,
                            const std::vector<store::DeliveryRecord>& deliveries);

/// The stream envelope (one line, no deliveries).
std::string eventEnvelopeJson(const store::EventRecord& event);

/// One complete SSE frame: "id: N\nevent: webhook\ndata: {...}\n\n".
std::string sseFrame(const store::EventRecord& event);

}  // namespace anm::edge
