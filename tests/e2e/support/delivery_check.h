// tests/e2e/support/delivery_check.h: what the target must receive for a request sent to the
// edge, and the gtest checks that compare the two.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/target_server.h"

namespace anm::e2e {

/// The header that gives every request of a test its own number, so that deliveries are
/// matched to what was sent by content rather than by timing.
constexpr const char* kSeqHeader = "X-Test-Seq";

/// True for the hop-by-hop fields of RFC 9110 section 7.6.1 (Connection, Keep-Alive,
/// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade) and for any field that the
/// request's own Connection header names. These are the only fields a relay may drop.
bool isHopByHop(const std::string& name, const HeaderList& sent);

/// The fields a byte-exact relay passes through unchanged and in order: everything sent except
/// hop-by-hop fields, Host (rewritten to the target) and Content-Length (recomputed).
HeaderList endToEndHeaders(const HeaderList& sent);

/// The request-target the target must see: the path suffix after /h/<id> ("/" when there is
/// none) and the raw query exactly as sent.
std::string expectedTarget(const SentRequest& sent);

/// Records gtest failures for every way `got` differs from `sent` beyond the documented
/// changes: method, request-target, body bytes (SHA-256 and size), the end-to-end header list
/// in order, Host equal to the target's address, one Content-Length equal to the body size (it
/// may be absent only for an empty body that was sent without one) and no chunked framing.
void expectDeliveredUnchanged(const SentRequest& sent, const RecordedRequest& got,
                              uint16_t targetPort);

/// The kSeqHeader value of a sent request, or "" when it has none.
std::string seqOf(const SentRequest& sent);

/// The recorded requests whose kSeqHeader equals seq, in arrival order.
std::vector<RecordedRequest> withSeq(const std::vector<RecordedRequest>& all,
                                     const std::string& seq);

}  // namespace anm::e2e
