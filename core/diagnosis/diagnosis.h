// core/diagnosis/diagnosis.h: deterministic rules that say why an event failed, with stable codes.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/store/store.h"

namespace anm::diagnosis {

// diagnose() looks at one event of a hook with its deliveries and returns what went wrong, each
// finding under a stable code with a page of its own (pages.h, docs/diagnosis.md). It is a pure
// function of its input: no clock, no store, no network, the same findings for the same facts.
// Everything in the input that came from a sender or a local server is treated as hostile:
// quoted only through safe_text.h, never trusted to be short, UTF-8 or well-formed.

/// The stable codes. Each is a public contract: the edge's API, the CLI and the dashboard show
/// them, users search for them, and the edge stores them in issues. A code is never renamed and
/// never reused for another meaning; new ones may be added.
namespace code {
inline constexpr std::string_view kSignatureUnchecked = "signature.unchecked";
inline constexpr std::string_view kSignatureSecretMissing = "signature.secret_missing";
inline constexpr std::string_view kSignatureHeaderMissing = "signature.header_missing";
inline constexpr std::string_view kSignatureWrongProvider = "signature.wrong_provider";
inline constexpr std::string_view kSignatureHeaderMalformed = "signature.header_malformed";
inline constexpr std::string_view kSignatureTimestampMissing = "signature.timestamp_missing";
inline constexpr std::string_view kSignatureTimestampOutside = "signature.timestamp_outside";
inline constexpr std::string_view kSignatureAlgorithmRefused = "signature.algorithm_refused";
inline constexpr std::string_view kSignaturePreviousSecret = "signature.previous_secret";
inline constexpr std::string_view kSignatureBodyChanged = "signature.body_changed";
inline constexpr std::string_view kSignatureMismatch = "signature.mismatch";
inline constexpr std::string_view kSignaturePluginFailed = "signature.plugin_failed";
inline constexpr std::string_view kSignatureRefused = "signature.refused";

inline constexpr std::string_view kDeliveryNotRelayed = "delivery.not_relayed";
inline constexpr std::string_view kDeliveryNothingListening = "delivery.nothing_listening";
inline constexpr std::string_view kDeliveryHostNotFound = "delivery.host_not_found";
inline constexpr std::string_view kDeliveryTimeout = "delivery.timeout";
inline constexpr std::string_view kDeliveryTlsFailure = "delivery.tls_failure";
inline constexpr std::string_view kDeliveryConnectionClosed = "delivery.connection_closed";
inline constexpr std::string_view kDeliveryBodyTooLarge = "delivery.body_too_large";
inline constexpr std::string_view kDeliveryInvalidResponse = "delivery.invalid_response";
inline constexpr std::string_view kDeliveryRedirect = "delivery.redirect";
inline constexpr std::string_view kDeliveryLocalVerificationFailed =
    "delivery.local_verification_failed";
inline constexpr std::string_view kDeliveryLocalTimestampOutside =
    "delivery.local_timestamp_outside";
inline constexpr std::string_view kDeliveryEditedReplayRefused = "delivery.edited_replay_refused";
inline constexpr std::string_view kDeliveryClientError = "delivery.client_error";
inline constexpr std::string_view kDeliveryServerError = "delivery.server_error";
inline constexpr std::string_view kDeliveryRelayError = "delivery.relay_error";
inline constexpr std::string_view kDeliveryFailed = "delivery.failed";
}  // namespace code

/// How much a finding matters. Only kError findings are failures that become issues.
enum class Severity {
  kInfo,     ///< a state worth knowing, not a fault (nothing relayed yet)
  kWarning,  ///< works, but not as it should (a signed request the hook does not check)
  kError,    ///< the event did not reach the local server's code, or was refused there
};

/// "info", "warning" or "error".
std::string_view severityName(Severity severity);

/// Most bytes of a local server's answer kept as a finding's excerpt evidence (the relay reports
/// at most this many).
inline constexpr size_t kExcerptBytes = 512;
/// Most bytes of the answer quoted inside a detail sentence.
inline constexpr size_t kDetailExcerptBytes = 120;
/// Most bytes of any other untrusted text quoted: a Location, a header value, a plugin's or a
/// relay's message.
inline constexpr size_t kQuoteBytes = 200;
/// A connection cut while the relay was still sending a body at least this large is taken for
/// a local server that refused the body's size (the server answers 413 and closes while the
/// client writes, so the client sees the reset, not the answer).
inline constexpr int64_t kLargeBodyBytes = 64 * 1024;
/// The same without knowing in which phase the connection was cut: only bodies past the 1 MiB
/// default request limit of common front servers (nginx's client_max_body_size) count.
inline constexpr int64_t kHugeBodyBytes = 1024 * 1024;

/// What the diagnosis needs of the hook. hookFacts() fills it from a HookRecord.
struct HookFacts {
  std::string provider;           ///< plugin name, "" for none
  bool standardWebhooks = false;  ///< verified the Standard Webhooks way (only without provider)
  int64_t toleranceS = -1;        ///< -1: the verifier's default window; 0: no window
  /// The secret the hook verified with before its last rotation, if the edge keeps one: the
  /// previous signing secret of a Standard Webhooks hook. A signature made with it is evidence
  /// that the sender has not taken the new secret. Used only to recompute a signature; never
  /// quoted.
  std::string previousSecret;
};

/// What the diagnosis needs of the event. eventFacts() fills it from an EventRecord.
struct EventFacts {
  int64_t id = 0;
  std::string method;
  std::string pathSuffix;
  std::vector<store::Header> headers;  ///< in arrival order
  std::string body;                    ///< raw bytes, or empty when not fetched
  int64_t bodySize = -1;               ///< the stored size; -1: body.size()
  int64_t receivedAtMs = 0;
  /// When the verdict was reached. A replay keeps its original's verdict (docs/protocol.md), so
  /// for a replay this is the original's receivedAtMs; 0 means receivedAtMs for an original
  /// and unknown for a replay (no timestamp skew is computed then).
  int64_t verdictAtMs = 0;
  store::Verdict verdict = store::Verdict::kUnsigned;
  int32_t reason = 0;  ///< ANM_REASON_*
  std::string reasonMessage;
  int64_t replayOf = 0;   ///< the original's id for a replay, else 0
  bool modified = false;  ///< an edited replay: its body or headers differ from the original's
};

/// Where a delivery was when the connection failed, as the relay saw it.
enum class DeliveryPhase { kUnknown, kConnecting, kSending, kReceiving };

/// What a relay reports about one delivery to its local target (docs/diagnosis.md lists the
/// fields); a relay that does not report some leaves them at their defaults, and then the rules
/// that need them do not fire and the rest still do.
struct DeliveryFacts {
  std::string relayId;
  int32_t status = 0;  ///< the target's status; 0 when no response came
  int64_t durationMs = 0;
  std::string error;  ///< the relay's error word: "timeout", "connection refused", ...
  DeliveryPhase phase = DeliveryPhase::kUnknown;  ///< where a connection error happened
  std::string responseExcerpt;  ///< first bytes of the answer's body, at most kExcerptBytes
  std::string location;         ///< the Location of a 3xx answer (redirects are not followed)
  int64_t timeoutMs = 0;        ///< the relay's --timeout; 0 unknown
  bool targetHttps = false;     ///< the --to URL is https
  int64_t startedAtMs = 0;      ///< the relay's wall clock when it began sending; 0 unknown
  int64_t reportedAtMs = 0;     ///< when the edge stored the report
};

/// One event with everything known about it.
struct DiagnosisInput {
  HookFacts hook;
  EventFacts event;
  std::vector<DeliveryFacts> deliveries;  ///< in the order they were reported
};

/// One fact behind a finding, e.g. {"skew_s", "412", true}. Names are stable (docs/diagnosis.md).
struct Evidence {
  std::string name;
  std::string value;    ///< valid UTF-8, one line, untrusted parts already quoted safely
  bool number = false;  ///< value is a decimal integer (JSON writes it unquoted)
};

/// What a rule found.
struct Finding {
  std::string code;  ///< one of code::*
  Severity severity = Severity::kError;
  std::string title;   ///< one line, the same for every finding of the code
  std::string detail;  ///< one or two sentences with this event's specifics
  std::string fix;     ///< what to do, for this event
  std::vector<Evidence> evidence;
  int32_t status = 0;  ///< the local status for a delivery finding, else 0 (part of an issue's key)
  int64_t atMs = 0;    ///< when it happened: the receipt, or the delivery's report
  std::string relayId;  ///< the relay of a delivery finding, else ""
};

/// The findings for one event: signature findings first, then one delivery finding per relay
/// whose latest delivery failed (or delivery.not_relayed when no relay reported yet). An event
/// that was verified and delivered with a 2xx answer has none. Never throws; if memory runs out
/// midway, the findings made so far are returned.
std::vector<Finding> diagnose(const DiagnosisInput& input) noexcept;

/// Facts from the stored records. hookFacts takes previousSigningSecret for a Standard Webhooks
/// hook; eventFacts leaves verdictAtMs for the caller.
HookFacts hookFacts(const store::HookRecord& hook);
EventFacts eventFacts(const store::EventRecord& event);
DeliveryFacts deliveryFacts(const store::DeliveryRecord& delivery);

/// The path under which the edge serves a code's page: "/diagnosis/<code>".
std::string pagePath(std::string_view code);

/// The findings as a JSON array of objects {"code","severity","title","detail","fix","evidence":
/// {name: value, ...},"status","at_ms","relay","page"}; valid JSON whatever the input held.
std::string findingsJson(const std::vector<Finding>& findings);

}  // namespace anm::diagnosis
