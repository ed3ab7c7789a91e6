// core/edge/account_routes.h: the REST routes of accounts: sign-in, members, tokens, audit log.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/edge/handlers.h"

namespace anm::edge {

/// Longest account, member (and hook) name: 1..64 of a-z 0-9 - _.
inline constexpr size_t kMaxRecordNameBytes = 64;
/// Longest token name: 1..64 printable ASCII bytes.
inline constexpr size_t kMaxTokenNameBytes = 64;
/// Most live (not revoked) tokens one member may hold; POST /api/v1/tokens past it is 409.
inline constexpr size_t kMaxLiveTokensPerMember = 100;
/// Page size bounds of GET /api/v1/audit.
inline constexpr size_t kMaxAuditPage = 1000;
inline constexpr size_t kDefaultAuditPage = 100;

/// True for 1..kMaxRecordNameBytes of a-z 0-9 - _ (account, member and hook names).
bool isRecordName(std::string_view name);

/// The handler of an account route (docs/accounts.md): POST /api/v1/auth/token,
/// GET /api/v1/account, GET|POST /api/v1/account/members, GET|POST /api/v1/tokens,
/// DELETE /api/v1/tokens/<id> and GET /api/v1/audit, or a 405 handler for another method on one
/// of them. `segments` is the whole path split at '/' ({"api","v1","tokens"}). Returns null
/// when the path is none of these, so that the router goes on; the caller owns the handler.
EdgeHandler* routeAccountApi(const EdgeServices& services, const std::string& method,
                             const std::vector<std::string>& segments);

}  // namespace anm::edge
