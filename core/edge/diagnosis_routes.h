// core/edge/diagnosis_routes.h: the routes that say why events failed and act on it: an
// event's findings and explanation, a hook's issues, and replays of many events at once.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "core/edge/handlers.h"

namespace anm::edge {

/// The handler of one of these routes of a hook (docs/dashboard.md), or a 405 handler for
/// another method on one of them:
///   GET  .../events/<n>/diagnosis          POST .../events/<n>/explain
///   GET  .../issues[?state=]               POST .../issues/<code>:<status>/(resolve|reopen|replay)
///   POST .../replays                       GET|DELETE .../replays/<job id>
/// `parts` is the whole path split at '/' ({"api","v1","hooks",<id>,...}). Returns null for
/// any other path; the caller owns the handler.
EdgeHandler* routeDiagnosisApi(const EdgeServices& services, const std::string& method,
                               const std::vector<std::string>& parts);

}  // namespace anm::edge
