// core/edge/plans.h: what each plan allows an account, and how a refusal names the plan.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Stringifier.h>

#include <cstddef>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "core/store/store.h"

namespace anm::edge {

/// The free plan's limits (docs/accounts.md, "Plans"). The pro plan has none of them.
inline constexpr size_t kFreeNamedHooks = 1;     ///< named hooks per account
inline constexpr size_t kFreeRelaysPerHook = 1;  ///< live relays per named hook
inline constexpr size_t kFreeMembers = 1;        ///< members, the owner included

/// An account's limits; nothing means unlimited.
struct PlanLimits {
  std::optional<size_t> namedHooks;
  std::optional<size_t> relaysPerHook;
  std::optional<size_t> members;
  bool customResponse = false;  ///< whether hooks may answer senders with their own response
};

inline PlanLimits planLimits(store::Plan plan) {
  if (plan == store::Plan::kPro) return PlanLimits{std::nullopt, std::nullopt, std::nullopt, true};
  return PlanLimits{kFreeNamedHooks, kFreeRelaysPerHook, kFreeMembers, false};
}

inline PlanLimits accountLimits(const store::AccountRecord& account) {
  return planLimits(account.plan);
}

/// Whether the account's plan lets `member` sign in: the free plan allows its owner alone, so
/// the other members of an account moved to free keep their records but may not sign in.
inline bool planAllowsMember(const store::AccountRecord& account,
                             const store::MemberRecord& member) {
  static_assert(kFreeMembers == 1, "the free plan's one member is the owner");
  return member.owner || !accountLimits(account).members;
}

/// "free" or "pro", as the API and the admin command spell plans.
inline std::string planName(store::Plan plan) { return plan == store::Plan::kPro ? "pro" : "free"; }

/// The plan named by `name`, or nothing for any other text.
inline std::optional<store::Plan> parsePlan(std::string_view name) {
  if (name == "free") return store::Plan::kFree;
  if (name == "pro") return store::Plan::kPro;
  return std::nullopt;
}

// The refusal messages. Each says what needs the pro plan and what the free plan allows, so
// that the answer alone tells the user what to do.

inline std::string namedHookRefusal() {
  return "another named hook needs the pro plan: the free plan allows " +
         std::to_string(kFreeNamedHooks) + " named hook per account";
}

inline std::string memberRefusal() {
  return "another member needs the pro plan: the free plan allows " + std::to_string(kFreeMembers) +
         " member (the owner)";
}

/// For a member other than the owner signing in to an account on the free plan.
inline std::string memberSignInRefusal(const std::string& memberName) {
  return "member " + memberName + " needs the pro plan to sign in: the free plan allows " +
         std::to_string(kFreeMembers) + " member (the owner)";
}

/// For a free account's hook, or (anonymous) for a hook of no account.
inline std::string customResponseRefusal(bool anonymous = false) {
  if (anonymous) {
    return "a custom response needs the pro plan: anonymous hooks answer with the default "
           "response; sign in to an account on the pro plan";
  }
  return "a custom response needs the pro plan: the free plan answers senders with the default "
         "response";
}

/// The live-relay rule of a free account's named hook (answered 409: a state conflict).
/// `since` is when the connected relay's stream opened (ISO 8601), "" when this edge does not
/// know (the stream is on another edge). The relay's id is not told: it is what a relay takes
/// the lease back with.
inline std::string liveRelayRefusal(const std::string& since) {
  return "the free plan allows one live relay per hook and another relay is connected" +
         (since.empty() ? std::string() : " since " + since) +
         "; stop it, or move the account to pro for a team";
}

/// The answer body of a plan refusal: {"error": message, "plan": plan}.
inline std::string planRefusalJson(const std::string& message, store::Plan plan) {
  std::ostringstream out;
  out << "{\"error\":";
  Poco::JSON::Stringifier::formatString(message, out);
  out << ",\"plan\":\"" << planName(plan) << "\"}";
  return out.str();
}

/// The last frame of a stream whose hook's live relay another stream took over: a relay that
/// connected again with the same id, or one left after the account moved to the free plan.
/// The relay ends with this message instead of reconnecting (docs/protocol.md).
inline std::string relayReplacedFrame() {
  const std::string message =
      "another stream took this hook's live relay: the free plan allows one live relay per "
      "hook; stop the other relay, or move the account to pro for a team";
  return "event: replaced\ndata: " + planRefusalJson(message, store::Plan::kFree) + "\n\n";
}

}  // namespace anm::edge
