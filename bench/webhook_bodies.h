// bench/webhook_bodies.h: deterministic webhook bodies and the Stripe signatures over them.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace anm::bench {

/// Size of every webhook body the bench sends, in bytes.
inline constexpr size_t kBodyBytes = 1024;

/// A Stripe-like event of exactly kBodyBytes whose content depends only on seq, so that the
/// receiving end can rebuild it and check that not one byte changed on the way.
std::string makeBody(int64_t seq);

/// Reads the sequence number back out of a body made by makeBody.
std::optional<int64_t> parseSeq(std::string_view body);

/// The Stripe-Signature value for body at Unix time t: "t=<t>,v1=<hex HMAC-SHA256>", keyed
/// with the whole whsec_ secret as Stripe does.
std::string stripeSignature(const std::string& secret, int64_t t, std::string_view body);

/// A complete HTTP/1.1 keep-alive POST of body to target (path and query), signed for
/// Stripe when secret is not empty.
std::string makeWebhookRequest(const std::string& hostPort, const std::string& target,
                               const std::string& secret, const std::string& body);

}  // namespace anm::bench
