// core/diagnosis/senders.h: what each signing scheme puts where, as the diagnosis needs it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/store/store.h"

namespace anm::diagnosis {

// The built-in plugins (plugins/*) and the edge's Standard Webhooks verifier each read their
// signature and timestamp from fixed headers. The diagnosis reads the same headers again to say
// more than a verdict can: how far a timestamp was off, which other sender's signature a request
// carries, whether a signature was made with the secret before a rotation. When a plugin changes
// its headers or its default window, this table changes with it.

/// How a hook verifies its requests.
enum class Scheme {
  kNone,              ///< no provider and no Standard Webhooks: nothing is verified
  kStripe,            ///< plugins/stripe
  kGithub,            ///< plugins/github
  kShopify,           ///< plugins/shopify
  kSlack,             ///< plugins/slack
  kRazorpay,          ///< plugins/razorpay
  kStandardWebhooks,  ///< core/edge/standard_webhooks.cpp, with the hook's signing secret
  /// A plugin this table does not know: only its verdict is known, so no skew, no other
  /// sender's header and no recomputed signature.
  /// Known limit: plugins cannot yet describe their signature and timestamp headers and their
  /// default window through the SDK, so third-party providers get fewer findings than built-in
  /// ones.
  kOtherPlugin,
};

/// What a person needs to know about a scheme to act on a finding.
struct SchemeInfo {
  std::string_view sender;           ///< who signs, for sentences: "Stripe"
  std::string_view signatureHeader;  ///< the header the verifier reads first; "" for none
  std::string_view timestampSource;  ///< where the signed time is, "" when none is signed
  int64_t defaultWindowS = 0;        ///< the verifier's default window; 0 when none is signed
  std::string_view secretSource;     ///< where the right secret is found
};

/// The scheme of a hook with this provider and Standard Webhooks flag, as the edge chooses it:
/// a provider wins; without one, the flag.
Scheme schemeOf(std::string_view provider, bool standardWebhooks);

const SchemeInfo& schemeInfo(Scheme scheme);

/// Every value of the header `name` (ASCII case ignored), in arrival order.
std::vector<std::string_view> headerValues(const std::vector<store::Header>& headers,
                                           std::string_view name);

/// The signed Unix time in seconds that the scheme's verifier judged, read the way it reads it:
/// Stripe's single t= in Stripe-Signature, Slack's X-Slack-Request-Timestamp, Standard
/// Webhooks' single webhook-timestamp. Nothing for a scheme that signs no time, or when the
/// time is absent, given twice, or not 1 to 18 plain digits.
std::optional<int64_t> signedAtSeconds(Scheme scheme, const std::vector<store::Header>& headers);

/// `ms` in whole seconds, rounded towards the past, as the verifiers round the time of receipt.
int64_t floorSeconds(int64_t ms);

/// A signature header of a known sender found on a request.
struct SignatureHeader {
  std::string_view header;   ///< as this table spells it
  std::string_view sender;   ///< for sentences: "GitHub"
  std::string_view setting;  ///< what makes a hook verify it: "--provider github"; "" for none
};

/// The known signature headers on the request that the scheme itself does not read, in this
/// table's order: a Stripe hook that receives X-Hub-Signature-256 was given GitHub's webhook.
std::vector<SignatureHeader> othersSignatureHeaders(Scheme scheme,
                                                    const std::vector<store::Header>& headers);

/// True when the request carries a well-formed signature of the scheme that verifies under
/// `secret` (the secret as the hook holds it: Stripe's whole whsec_ string, Standard Webhooks'
/// whsec_ + base64). False for anything else, including schemes this table cannot compute.
/// The timestamp window is not judged.
bool signedWithSecret(Scheme scheme, std::string_view secret,
                      const std::vector<store::Header>& headers, std::string_view body);

}  // namespace anm::diagnosis
