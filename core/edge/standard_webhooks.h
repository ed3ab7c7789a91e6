// core/edge/standard_webhooks.h: verifies senders that sign the Standard Webhooks way.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/plugin/registry.h"
#include "core/store/store.h"

namespace anm::edge {

/// What every hook's signing secret starts with; base64 of kSigningSecretBytes follows.
inline constexpr std::string_view kSigningSecretPrefix = "whsec_";
inline constexpr size_t kSigningSecretBytes = 32;
/// The timestamp window of a hook whose tolerance_s is -1 (the default).
inline constexpr int64_t kStandardWebhooksToleranceS = 300;
/// How long the secret before a rotation still verifies.
inline constexpr int64_t kPreviousSecretValidMs = 24 * 3600 * 1000;
/// Most signature entries read from one webhook-signature header; a sender signing under more
/// secrets than this at once is refused as malformed rather than costing an HMAC per entry.
inline constexpr size_t kMaxSignatureEntries = 16;

/// A new signing secret: "whsec_" + base64 of 32 bytes from the CSPRNG.
std::string newSigningSecret();

/// The "v1,<base64>" entry a sender puts into webhook-signature for this message, under the
/// signing secret `secret` (with its whsec_ prefix). Empty when the secret is not of that form.
std::string standardWebhooksSignature(std::string_view secret, std::string_view webhookId,
                                      int64_t timestampS, std::string_view body);

/// Verifies a request against the hook's signing secret (and its previous one until
/// previousValidUntilMs) as the Standard Webhooks specification describes: the headers
/// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature (space-separated
/// "v1,<base64 HMAC-SHA256>" entries; other versions are ignored), the signed content
/// "<id>.<timestamp>.<body>", and the hook's tolerance_s as the timestamp window (-1: 300 s;
/// 0: no window). Reasons are the SDK's ANM_REASON_* codes; deliveryId is webhook-id and
/// eventType the body's top-level JSON "type" when it is a string. Never throws.
plugin::Outcome verifyStandardWebhooks(const store::HookRecord& hook,
                                       const std::vector<store::Header>& headers,
                                       std::string_view body, int64_t nowMs);

}  // namespace anm::edge
