// core/edge/dashboard_routes.h: the dashboard's page and files (docs/dashboard.md), served from
// the bytes embedded at build time.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "core/edge/handlers.h"

namespace anm::edge {

/// The Content-Security-Policy every dashboard file is served with: scripts and styles from
/// this origin only, no inline script or style, requests to this origin only.
inline constexpr char kDashboardCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The handler of GET|HEAD / (the page) and /app/<file>, a 405 handler for another method on
/// them, or a 404 handler for an /app/ file that does not exist. Returns null for any other
/// path; the caller owns the handler.
EdgeHandler* routeDashboard(const std::string& method, std::string_view path);

}  // namespace anm::edge
