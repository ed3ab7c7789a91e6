// core/diagnosis/diagnosis.cpp: the rules that turn an event and its deliveries into findings.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/diagnosis.h"

#include <optional>
#include <utility>

#include "anonymily/plugin.h"
#include "core/diagnosis/pages.h"
#include "core/diagnosis/safe_text.h"
#include "core/diagnosis/senders.h"
#include "core/plugin/registry.h"

namespace anm::diagnosis {
namespace {

// --- Facts shared by the rules -----------------------------------------------------------------

/// The input with what every rule derives from it computed once.
struct Context {
  const DiagnosisInput& input;
  const HookFacts& hook;
  const EventFacts& event;
  Scheme scheme;
  const SchemeInfo& info;
  int64_t bodyBytes;   ///< the stored size
  bool bodyAvailable;  ///< event.body holds the whole body
};

Context contextOf(const DiagnosisInput& input) {
  const EventFacts& event = input.event;
  const Scheme scheme = schemeOf(input.hook.provider, input.hook.standardWebhooks);
  const auto fetched = static_cast<int64_t>(event.body.size());
  const int64_t bodyBytes = event.bodySize >= 0 ? event.bodySize : fetched;
  return {input, input.hook, event, scheme, schemeInfo(scheme), bodyBytes, bodyBytes == fetched};
}

std::string lowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view withoutSpaces(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

/// Untrusted text in double quotes, cut and made safe for one line.
std::string quoted(std::string_view untrusted, size_t limitBytes = kQuoteBytes) {
  return "\"" + quoteUntrusted(untrusted, limitBytes) + "\"";
}

std::string seconds(int64_t value) { return std::to_string(value) + " s"; }

/// A duration for a sentence: whole seconds as "30 s", anything else in milliseconds.
std::string millis(int64_t value) {
  return value % 1000 == 0 ? seconds(value / 1000) : std::to_string(value) + " ms";
}

/// A finding of `code` with its page's title and severity.
Finding findingOf(std::string_view code, int64_t atMs, std::string detail, std::string fix) {
  Finding finding;
  finding.code = std::string(code);
  const Page* page = findPage(code);
  finding.severity = page != nullptr ? page->severity : Severity::kError;
  finding.title = page != nullptr ? std::string(page->title) : std::string(code);
  finding.detail = std::move(detail);
  finding.fix = std::move(fix);
  finding.atMs = atMs;
  return finding;
}

void addText(Finding& finding, std::string_view name, std::string_view untrusted,
             size_t limitBytes = kQuoteBytes) {
  finding.evidence.push_back({std::string(name), quoteUntrusted(untrusted, limitBytes), false});
}

void addNumber(Finding& finding, std::string_view name, int64_t value) {
  finding.evidence.push_back({std::string(name), std::to_string(value), true});
}

/// What the hook verifies with, for evidence: the provider, "standard_webhooks" or "none".
std::string verifierName(const Context& c) {
  if (!c.hook.provider.empty()) return c.hook.provider;
  return c.hook.standardWebhooks ? "standard_webhooks" : "none";
}

/// Who signs the hook's requests, in the middle of a sentence: "Stripe", "the sender".
std::string senderPhrase(const Context& c) { return std::string(c.info.sender); }

/// Evidence every signature finding carries.
void addVerdictEvidence(const Context& c, Finding& finding) {
  addText(finding, "verifier", verifierName(c));
  addText(finding, "reason", plugin::reasonName(c.event.reason));
  if (!c.event.reasonMessage.empty()) addText(finding, "edge_message", c.event.reasonMessage);
}

/// The command that replays the event, for a fix sentence.
std::string replayCommand(const Context& c) {
  return "`anonymily events replay " + std::to_string(c.event.id) + " --hook HOOK`";
}

/// The time the verdict was reached, or nothing for a replay whose original time is unknown.
std::optional<int64_t> verdictTimeMs(const EventFacts& event) {
  if (event.verdictAtMs != 0) return event.verdictAtMs;
  if (event.replayOf == 0) return event.receivedAtMs;
  return std::nullopt;
}

/// The hook's window as its verifier applies it: -1 is the verifier's default.
int64_t windowOf(const Context& c) {
  return c.hook.toleranceS < 0 ? c.info.defaultWindowS : c.hook.toleranceS;
}

// --- Signature rules ---------------------------------------------------------------------------

std::optional<Finding> uncheckedSignature(const Context& c) {
  if (c.scheme != Scheme::kNone) return std::nullopt;
  const auto others = othersSignatureHeaders(c.scheme, c.event.headers);
  if (others.empty()) return std::nullopt;

  const SignatureHeader& found = others.front();
  std::string fix =
      found.setting.empty()
          ? "The edge cannot verify " + std::string(found.header) +
                "; verify it in the local handler."
          : "Relay " + std::string(found.sender) + " through a hook created with `" +
                std::string(found.setting) +
                "` and its secret; until then, verify the signature in the local handler.";
  Finding finding = findingOf(
      code::kSignatureUnchecked, c.event.receivedAtMs,
      "The request carries " + std::string(found.header) + ", the signature header of " +
          std::string(found.sender) +
          ", but the hook has no provider, so the edge relayed it without checking the signature.",
      std::move(fix));
  addText(finding, "verifier", verifierName(c));
  addText(finding, "signature_header", found.header);
  addText(finding, "sender", found.sender);
  return finding;
}

Finding secretMissing(const Context& c) {
  std::string fix =
      c.scheme == Scheme::kStandardWebhooks
          ? "Rotate the hook's signing secret (`anonymily hooks rotate-secret "
            "HOOK`) and give the new secret to the sender."
          : "Relay through a hook created with the secret: " + std::string(c.info.secretSource) +
                ".";
  Finding finding =
      findingOf(code::kSignatureSecretMissing, c.event.receivedAtMs,
                "The hook has no usable secret to verify " + senderPhrase(c) +
                    "'s signatures with, so the edge refused the request with 401 and did not "
                    "relay it.",
                std::move(fix));
  addVerdictEvidence(c, finding);
  return finding;
}

Finding headerMissing(const Context& c) {
  const auto others = othersSignatureHeaders(c.scheme, c.event.headers);
  if (!others.empty()) {
    const SignatureHeader& found = others.front();
    std::string expected =
        c.info.signatureHeader.empty()
            ? "the hook's plugin " + quoted(c.hook.provider) + " found no signature header it reads"
            : "the hook verifies " + std::string(c.info.sender) + "'s " +
                  std::string(c.info.signatureHeader) + ", which is missing";
    std::string fix =
        found.setting.empty()
            ? "The edge does not read " + std::string(found.header) +
                  "; ask the sender for the webhook-* header names, or relay it through a hook "
                  "without a provider and verify in the local handler."
            : "Give " + std::string(found.sender) + " the URL of a hook created with `" +
                  std::string(found.setting) +
                  "` and its secret, and give this hook's URL only to " + senderPhrase(c) + ".";
    Finding finding = findingOf(code::kSignatureWrongProvider, c.event.receivedAtMs,
                                "The request was sent to the wrong hook: " + expected +
                                    ", but the request carries " + std::string(found.header) +
                                    ", the signature header of " + std::string(found.sender) + ".",
                                std::move(fix));
    addVerdictEvidence(c, finding);
    addText(finding, "found_header", found.header);
    addText(finding, "found_sender", found.sender);
    return finding;
  }

  // A browser, a probe or a health check is the usual sender of a bodyless GET.
  const std::string method = lowerAscii(c.event.method);
  const bool probe = (method == "get" || method == "head") && c.bodyBytes == 0;
  std::string detail = "The request lacks a header " + senderPhrase(c) + " signs with";
  if (!c.event.reasonMessage.empty()) {
    detail += " (the edge said " + quoted(c.event.reasonMessage) + ")";
  }
  detail += ", so there was nothing to verify; the edge answered 401 and did not relay it.";
  if (probe) {
    detail += " A " + quoteUntrusted(c.event.method, 16) +
              " without a body is what a browser or a health check sends, not a webhook.";
  }
  Finding finding =
      findingOf(code::kSignatureHeaderMissing, c.event.receivedAtMs, std::move(detail),
                "If the request came from " + senderPhrase(c) +
                    ", make sure it signs with the hook's secret, which is " +
                    std::string(c.info.secretSource) + "; if it did not, nothing needs fixing.");
  addVerdictEvidence(c, finding);
  addText(finding, "method", c.event.method, 16);
  if (!c.info.signatureHeader.empty()) addText(finding, "expected_header", c.info.signatureHeader);
  return finding;
}

Finding headerMalformed(const Context& c) {
  std::string where = c.info.signatureHeader.empty() ? std::string("The signature header")
                                                     : std::string(c.info.signatureHeader);
  Finding finding = findingOf(
      code::kSignatureHeaderMalformed, c.event.receivedAtMs,
      where + " is there but cannot be read: " + quoted(c.event.reasonMessage) +
          ". No signature could be compared, so the edge answered 401 and did not relay it.",
      "Send test requests with " + senderPhrase(c) +
          "'s own tools or library instead of a hand-made header, and let any proxy in front of "
          "the edge pass the header unchanged.");
  addVerdictEvidence(c, finding);
  return finding;
}

Finding timestampMissing(const Context& c) {
  std::string detail =
      c.info.timestampSource.empty()
          ? "The plugin " + quoted(c.hook.provider) +
                " needs a signed timestamp and found none: " + quoted(c.event.reasonMessage) + "."
          : "The request does not carry the timestamp " + senderPhrase(c) +
                " signs together with the body (" + std::string(c.info.timestampSource) + ").";
  Finding finding =
      findingOf(code::kSignatureTimestampMissing, c.event.receivedAtMs, std::move(detail),
                "Send test requests from " + senderPhrase(c) +
                    " itself, and let any proxy pass the timestamp header.");
  addVerdictEvidence(c, finding);
  return finding;
}

Finding timestampOutside(const Context& c) {
  const auto signedAt = signedAtSeconds(c.scheme, c.event.headers);
  const auto verdictAt = verdictTimeMs(c.event);
  const int64_t window = windowOf(c);
  const std::string allowed =
      window > 0 ? "the hook allows " + seconds(window) : "the hook now has no window";

  // Without both times only the verifier's own words can be given.
  if (!signedAt || !verdictAt) {
    std::string detail =
        "The signed timestamp was outside the hook's window: " + quoted(c.event.reasonMessage) +
        ".";
    if (signedAt && !verdictAt) {
      detail +=
          " The skew is not computed: this is a replay and its original's time of "
          "receipt was not given.";
    }
    Finding finding = findingOf(
        code::kSignatureTimestampOutside, c.event.receivedAtMs, std::move(detail),
        "Check the sender's and the edge's clocks; to accept old captures on purpose, relay "
        "them through a hook created with `--tolerance 0`.");
    addVerdictEvidence(c, finding);
    return finding;
  }

  // Positive: the signature is older than its receipt; negative: it is dated in the future.
  const int64_t receivedS = floorSeconds(*verdictAt);
  const int64_t skew = receivedS - *signedAt;
  std::string detail =
      skew >= 0 ? "The signature's timestamp (" + std::string(c.info.timestampSource) + ") is " +
                      seconds(skew) + " older than the edge's time of receipt; " + allowed + "."
                : "The signature's timestamp (" + std::string(c.info.timestampSource) + ") is " +
                      seconds(-skew) +
                      " ahead of the edge's time of receipt, dated in the future; " + allowed + ".";
  std::string fix =
      skew < 0 ? "A timestamp in the future means a clock is wrong: synchronise the edge's "
                 "clock (NTP) and ask the sender to check theirs."
               : "If this is a captured request sent again on purpose, relay it through a hook "
                 "created with `--tolerance 0`; otherwise check the edge's clock, since " +
                     std::string(c.info.sender) + " signs each attempt when it sends it.";
  Finding finding = findingOf(code::kSignatureTimestampOutside, c.event.receivedAtMs,
                              std::move(detail), std::move(fix));
  addVerdictEvidence(c, finding);
  addNumber(finding, "skew_s", skew);
  addNumber(finding, "window_s", window);
  addNumber(finding, "signed_at_s", *signedAt);
  addNumber(finding, "received_at_s", receivedS);
  return finding;
}

Finding algorithmRefused(const Context& c) {
  std::string fix;
  if (c.scheme == Scheme::kGithub) {
    fix =
        "Upgrade the GitHub Enterprise Server that signs with SHA-1 only, or relay it through a "
        "hook created with `--option allow_sha1=true`.";
  } else if (c.scheme == Scheme::kStandardWebhooks) {
    fix = "Ask the sender to sign with a symmetric v1 (HMAC-SHA256) secret.";
  } else {
    fix = "Ask the sender to sign with an algorithm the hook accepts.";
  }
  Finding finding = findingOf(code::kSignatureAlgorithmRefused, c.event.receivedAtMs,
                              "The request is signed only with an algorithm the hook refuses: " +
                                  quoted(c.event.reasonMessage) + ".",
                              std::move(fix));
  addVerdictEvidence(c, finding);
  return finding;
}

/// Signs in the body itself that it is not what the sender signed, each as a short clause.
std::vector<std::string> bodyChangeSigns(const Context& c) {
  std::vector<std::string> signs;
  if (!c.bodyAvailable || c.event.body.empty()) return signs;
  const std::string_view body = c.event.body;
  const auto byteAt = [&](size_t i) { return static_cast<unsigned char>(body[i]); };

  // The last coding listed was applied last, so it is the one the bytes must show.
  const auto encodings = headerValues(c.event.headers, "Content-Encoding");
  if (!encodings.empty()) {
    std::string_view coding = encodings.back();
    const size_t comma = coding.rfind(',');
    if (comma != std::string_view::npos) coding.remove_prefix(comma + 1);
    const std::string trimmedName = lowerAscii(withoutSpaces(coding));
    bool matches = true;
    if (trimmedName == "gzip" || trimmedName == "x-gzip") {
      matches = body.size() >= 2 && byteAt(0) == 0x1F && byteAt(1) == 0x8B;
    } else if (trimmedName == "deflate") {
      // A zlib stream: method 8 in the low nibble and a header that is a multiple of 31.
      matches =
          body.size() >= 2 && (byteAt(0) & 0x0F) == 8 && ((byteAt(0) << 8) | byteAt(1)) % 31 == 0;
    } else if (trimmedName == "zstd") {
      matches = body.size() >= 4 && byteAt(0) == 0x28 && byteAt(1) == 0xB5 && byteAt(2) == 0x2F &&
                byteAt(3) == 0xFD;
    }
    if (!matches) {
      signs.push_back("it declares Content-Encoding " + quoted(trimmedName, 32) +
                      " but its bytes are not so encoded (something decoded it and kept the "
                      "header)");
    }
  }

  if (startsWith(body, "\xEF\xBB\xBF")) {
    signs.emplace_back("it starts with a UTF-8 byte-order mark, which no provider sends");
  }

  const size_t first = body.find_first_not_of(" \t\r\n");
  const bool json = first != std::string_view::npos && (body[first] == '{' || body[first] == '[');
  if (json && contains(body, "\r\n")) {
    signs.emplace_back("its JSON has CRLF line ends, where providers send LF");
  }

  // Stripe sends every event as JSON indented over many lines.
  if (json && c.scheme == Scheme::kStripe && !contains(body, "\n")) {
    signs.emplace_back(
        "it is JSON on one line, where Stripe sends its events indented: it "
        "looks re-serialized");
  }
  return signs;
}

Finding signatureMismatch(const Context& c) {
  const std::string header = c.info.signatureHeader.empty() ? std::string("The signature")
                                                            : std::string(c.info.signatureHeader);

  // An edited replay changed the body for certain.
  if (c.event.modified) {
    Finding finding =
        findingOf(code::kSignatureBodyChanged, c.event.receivedAtMs,
                  "This is an edited replay of event " + std::to_string(c.event.replayOf) +
                      ": its body or headers differ from what " + senderPhrase(c) +
                      " signed, so the signature cannot match.",
                  "Expect edited replays to fail verification; replay the event unedited to check "
                  "the signature.");
    addVerdictEvidence(c, finding);
    addNumber(finding, "replay_of", c.event.replayOf);
    addText(finding, "modified", "true");
    return finding;
  }

  // A signature made with the secret before the last rotation proves the body intact.
  if (!c.hook.previousSecret.empty() && c.bodyAvailable &&
      signedWithSecret(c.scheme, c.hook.previousSecret, c.event.headers, c.event.body)) {
    Finding finding = findingOf(
        code::kSignaturePreviousSecret, c.event.receivedAtMs,
        header +
            " matches the hook's secret from before its last rotation, not the current "
            "one: the body is intact, and the sender has not been given the new secret.",
        "Put the hook's current signing secret into the sender's settings; if it is lost, "
        "rotate again (`anonymily hooks rotate-secret HOOK`) and update the sender within 24 "
        "hours.");
    addVerdictEvidence(c, finding);
    addText(finding, "matches", "previous_secret");
    return finding;
  }

  const auto signs = bodyChangeSigns(c);
  if (!signs.empty()) {
    std::string joined;
    for (const auto& sign : signs) joined += (joined.empty() ? "" : "; ") + sign;
    Finding finding = findingOf(
        code::kSignatureBodyChanged, c.event.receivedAtMs,
        header + " does not match, and the body shows it changed after it was signed: " + joined +
            ".",
        "Let webhooks reach the edge unchanged: send them to the edge's URL directly, or turn "
        "off decompression and body rewriting in the proxy in front of it.");
    addVerdictEvidence(c, finding);
    addText(finding, "body_signs", joined, 4 * kQuoteBytes);
    addNumber(finding, "body_bytes", c.bodyBytes);
    return finding;
  }

  Finding finding = findingOf(
      code::kSignatureMismatch, c.event.receivedAtMs,
      header +
          " does not match the body under the hook's secret: either the hook holds another "
          "secret than " +
          senderPhrase(c) +
          " signs with, or the body changed on its way; nothing in the request says which.",
      "Take the secret again from its source (" + std::string(c.info.secretSource) +
          ") and relay through a hook created with it. To tell the causes apart: if every "
          "event of this hook fails, it is the secret; if only some do, something changes the "
          "bodies.");
  addVerdictEvidence(c, finding);
  addNumber(finding, "body_bytes", c.bodyBytes);
  return finding;
}

Finding pluginFailed(const Context& c) {
  const std::string who = c.scheme == Scheme::kStandardWebhooks
                              ? std::string("The edge's Standard Webhooks check")
                              : "The plugin " + quoted(c.hook.provider);
  Finding finding = findingOf(
      code::kSignaturePluginFailed, c.event.receivedAtMs,
      who + " failed while verifying: " + quoted(c.event.reasonMessage) +
          ". The request was stored as invalid; this is not the sender's fault.",
      "Read the edge's log around the event's time, update or reinstall the plugin, then " +
          replayCommand(c) + ".");
  addVerdictEvidence(c, finding);
  return finding;
}

Finding refusedForOtherReason(const Context& c) {
  Finding finding =
      findingOf(code::kSignatureRefused, c.event.receivedAtMs,
                "The request was refused with reason code " + std::to_string(c.event.reason) +
                    ", which this edge does not know: " + quoted(c.event.reasonMessage) + ".",
                "Read the plugin's README for the reason, and upgrade the edge to a "
                "version that knows it.");
  addVerdictEvidence(c, finding);
  addNumber(finding, "reason_code", c.event.reason);
  return finding;
}

std::optional<Finding> signatureFinding(const Context& c) {
  if (c.event.verdict == store::Verdict::kValid) return std::nullopt;
  if (c.event.verdict == store::Verdict::kUnsigned) return uncheckedSignature(c);
  switch (c.event.reason) {
    case ANM_REASON_SECRET_MISSING:
      return secretMissing(c);
    case ANM_REASON_HEADER_MISSING:
      return headerMissing(c);
    case ANM_REASON_HEADER_MALFORMED:
      return headerMalformed(c);
    case ANM_REASON_TIMESTAMP_MISSING:
      return timestampMissing(c);
    case ANM_REASON_TIMESTAMP_OUTSIDE:
      return timestampOutside(c);
    case ANM_REASON_SIGNATURE_MISMATCH:
      return signatureMismatch(c);
    case ANM_REASON_ALGORITHM_REFUSED:
      return algorithmRefused(c);
    case ANM_REASON_INTERNAL:
      return pluginFailed(c);
    default:
      return refusedForOtherReason(c);
  }
}

// --- Delivery rules ----------------------------------------------------------------------------

std::string_view phaseName(DeliveryPhase phase) {
  switch (phase) {
    case DeliveryPhase::kConnecting:
      return "connecting";
    case DeliveryPhase::kSending:
      return "sending";
    case DeliveryPhase::kReceiving:
      return "receiving";
    case DeliveryPhase::kUnknown:
      break;
  }
  return "";
}

/// A delivery finding with the facts every one of them carries.
Finding deliveryFindingOf(std::string_view code, const DeliveryFacts& delivery, std::string detail,
                          std::string fix) {
  const int64_t at = delivery.reportedAtMs != 0 ? delivery.reportedAtMs : delivery.startedAtMs;
  Finding finding = findingOf(code, at, std::move(detail), std::move(fix));
  finding.status = delivery.status;
  finding.relayId = quoteUntrusted(delivery.relayId, kQuoteBytes);
  addText(finding, "relay", delivery.relayId);
  addNumber(finding, "status", delivery.status);
  addNumber(finding, "duration_ms", delivery.durationMs);
  if (!delivery.error.empty()) addText(finding, "error", delivery.error);
  if (delivery.phase != DeliveryPhase::kUnknown) {
    addText(finding, "phase", phaseName(delivery.phase));
  }
  if (!delivery.responseExcerpt.empty()) {
    addText(finding, "excerpt", delivery.responseExcerpt, kExcerptBytes);
  }
  return finding;
}

/// " with \"<excerpt>\"" for a detail sentence, or "" when there is none.
std::string excerptClause(const DeliveryFacts& delivery) {
  if (delivery.responseExcerpt.empty()) return "";
  return " with " + quoted(delivery.responseExcerpt, kDetailExcerptBytes);
}

Finding refusedConnection(const Context& c, const DeliveryFacts& delivery) {
  return deliveryFindingOf(
      code::kDeliveryNothingListening, delivery,
      "The relay's connection to its --to address was refused: nothing listens on that host "
      "and port.",
      "Start the local server or correct the port in --to (use 127.0.0.1 when the server binds "
      "IPv4 only), then " +
          replayCommand(c) + ".");
}

Finding timedOut(const DeliveryFacts& delivery) {
  const std::string limit = delivery.timeoutMs > 0 ? millis(delivery.timeoutMs) : "its --timeout";
  std::string detail =
      delivery.phase == DeliveryPhase::kConnecting
          ? "The relay could not even connect within " + limit +
                ": the target host does not answer (a firewall, or a machine that is off)."
          : "The local server did not answer within " + limit +
                " (the relay's --timeout); the relay gave up after " +
                std::to_string(delivery.durationMs) + " ms.";
  Finding finding = deliveryFindingOf(
      code::kDeliveryTimeout, delivery, std::move(detail),
      "Answer with a 2xx at once and do the work afterwards; while debugging, raise the relay's "
      "--timeout.");
  if (delivery.timeoutMs > 0) addNumber(finding, "timeout_ms", delivery.timeoutMs);
  return finding;
}

Finding tlsFailed(const DeliveryFacts& delivery, std::string_view word) {
  std::string detail =
      "The --to URL is https and the TLS handshake with the local server failed: " +
      quoted(delivery.error) + ".";
  if (contains(word, "wrong version number")) {
    detail += " The server answers in plain HTTP on that port.";
  } else if (contains(word, "certificate")) {
    detail += " The local server's certificate was refused.";
  }
  return deliveryFindingOf(code::kDeliveryTlsFailure, delivery, std::move(detail),
                           "For a server on the same machine use --to http://localhost:PORT; "
                           "otherwise trust its CA in the system's store and use the name its "
                           "certificate is for.");
}

/// The fix of every body-size refusal.
std::string raiseLimit(const Context& c) {
  return "Raise the body size limit of the webhook's route (the framework's body parser, or a "
         "proxy's client_max_body_size) above " +
         std::to_string(c.bodyBytes) + " bytes, then " + replayCommand(c) + ".";
}

Finding cutConnection(const Context& c, const DeliveryFacts& delivery, std::string_view word) {
  // A server that refuses a body's size answers 413 and closes while the client still writes:
  // the client sees the connection cut, not the answer.
  const bool large =
      (delivery.phase == DeliveryPhase::kSending && c.bodyBytes >= kLargeBodyBytes) ||
      (delivery.phase == DeliveryPhase::kUnknown && c.bodyBytes >= kHugeBodyBytes);
  if (large) {
    std::string detail =
        delivery.phase == DeliveryPhase::kSending
            ? "The local server cut the connection while the relay was still sending the " +
                  std::to_string(c.bodyBytes) + "-byte body: it refuses bodies that large."
            : "The connection was cut before an answer, and the " + std::to_string(c.bodyBytes) +
                  "-byte body is larger than the 1 MiB common servers accept by default.";
    Finding finding =
        deliveryFindingOf(code::kDeliveryBodyTooLarge, delivery, std::move(detail), raiseLimit(c));
    addNumber(finding, "body_bytes", c.bodyBytes);
    return finding;
  }

  const std::string how = startsWith(word, "connection reset") ? "reset" : "closed";
  std::string when = " before a complete answer";
  if (delivery.phase == DeliveryPhase::kSending) when = " while the relay was still sending";
  if (delivery.phase == DeliveryPhase::kReceiving) when = " while the relay waited for the answer";
  Finding finding = deliveryFindingOf(
      code::kDeliveryConnectionClosed, delivery,
      "The connection was " + how + when +
          ", so there is no status: the local server or its handler most likely crashed or "
          "dropped the request.",
      "Read the local server's log at the event's time, and watch it while you run " +
          replayCommand(c) + ".");
  addNumber(finding, "body_bytes", c.bodyBytes);
  return finding;
}

Finding unreadableAnswer(const DeliveryFacts& delivery) {
  std::string detail =
      delivery.status != 0
          ? "The local server answered with status " + std::to_string(delivery.status) +
                ", which HTTP does not define."
          : "The answer could not be read as HTTP/1.1: " + quoted(delivery.error) + ".";
  if (delivery.status == 0 && !delivery.targetHttps) {
    detail += " A server that speaks TLS on that port answers plain http:// this way.";
  }
  return deliveryFindingOf(code::kDeliveryInvalidResponse, delivery, std::move(detail),
                           "Check the scheme and port in --to against the server's start-up "
                           "message.");
}

/// A delivery that got no HTTP status: what the relay's error word says.
Finding connectionFinding(const Context& c, const DeliveryFacts& delivery) {
  const std::string word = lowerAscii(delivery.error);
  if (startsWith(word, "connection refused")) return refusedConnection(c, delivery);
  if (startsWith(word, "timeout")) return timedOut(delivery);

  const bool tlsWord = contains(word, "ssl") || contains(word, "tls") ||
                       contains(word, "certificate") || contains(word, "handshake");
  if (tlsWord && delivery.targetHttps) return tlsFailed(delivery, word);
  if (startsWith(word, "connection reset") || startsWith(word, "connection closed")) {
    return cutConnection(c, delivery, word);
  }
  if (startsWith(word, "could not resolve host")) {
    return deliveryFindingOf(code::kDeliveryHostNotFound, delivery,
                             "The host in --to does not resolve: " + quoted(delivery.error) + ".",
                             "Use an address the relay's machine can reach, such as "
                             "--to http://127.0.0.1:PORT.");
  }
  if (startsWith(word, "invalid response")) return unreadableAnswer(delivery);

  // Events the relay could not turn into a request, or could not get from the edge.
  const bool relaySide = startsWith(word, "unreadable at the edge") ||
                         startsWith(word, "invalid event") || startsWith(word, "event too large") ||
                         startsWith(word, "invalid method") || startsWith(word, "invalid path") ||
                         startsWith(word, "invalid header field");
  if (relaySide) {
    return deliveryFindingOf(code::kDeliveryRelayError, delivery,
                             "The relay did not send the event: " + quoted(delivery.error) + ".",
                             "Inspect the event with `anonymily events show ID --hook HOOK`; "
                             "an event unreadable at the edge needs the key it was sealed with.");
  }
  std::string detail = word.empty()
                           ? std::string("The relay reported neither a status nor an error.")
                           : "The relay reported " + quoted(delivery.error) + ".";
  return deliveryFindingOf(code::kDeliveryFailed, delivery, std::move(detail),
                           "Read the relay's log for the event, and replay it once the cause is "
                           "resolved.");
}

Finding redirected(const DeliveryFacts& delivery) {
  std::string detail = "The local server answered " + std::to_string(delivery.status);
  detail += delivery.location.empty() ? " without a Location"
                                      : " with Location " + quoted(delivery.location);
  detail += "; the relay does not follow redirects, so the handler never ran.";
  const std::string location = lowerAscii(delivery.location);
  if (startsWith(location, "https:") && !delivery.targetHttps) {
    detail += " The server sends plain http to https.";
  } else if (contains(location, "login") || contains(location, "signin") ||
             contains(location, "sign_in")) {
    detail += " It looks like a login redirect: the route requires a session.";
  }
  Finding finding = deliveryFindingOf(
      code::kDeliveryRedirect, delivery, std::move(detail),
      "Point --to at the URL in Location if the handler lives there, or exempt the webhook's "
      "route from the redirect.");
  if (!delivery.location.empty()) addText(finding, "location", delivery.location);
  return finding;
}

Finding tooLargeAnswer(const Context& c, const DeliveryFacts& delivery) {
  Finding finding =
      deliveryFindingOf(code::kDeliveryBodyTooLarge, delivery,
                        "The local server answered 413" + excerptClause(delivery) + ": the " +
                            std::to_string(c.bodyBytes) + "-byte body is above its size limit.",
                        raiseLimit(c));
  addNumber(finding, "body_bytes", c.bodyBytes);
  return finding;
}

/// A 400, 401 or 403 to an event the edge verified: which of the local checks failed.
Finding locallyRefusedValid(const Context& c, const DeliveryFacts& delivery) {
  const auto signedAt = signedAtSeconds(c.scheme, c.event.headers);
  const int64_t deliveredAtMs =
      delivery.startedAtMs != 0 ? delivery.startedAtMs : delivery.reportedAtMs;
  const int64_t libraryWindow = c.info.defaultWindowS;

  // Provider libraries judge the age against the local clock when the request arrives.
  if (signedAt && deliveredAtMs != 0 && libraryWindow > 0) {
    const int64_t deliveredS = floorSeconds(deliveredAtMs);
    const int64_t age = deliveredS - *signedAt;
    if (age > libraryWindow || age < -libraryWindow) {
      std::string detail =
          age > 0 ? "When the relay delivered it, the signature's timestamp was " + seconds(age) +
                        " old; " + std::string(c.info.sender) +
                        "'s libraries refuse signatures older than " + seconds(libraryWindow) +
                        " by default, so the local " + std::to_string(delivery.status) +
                        " most likely comes from that check, not from the secret."
                  : "When the relay delivered it, the signature's timestamp lay " + seconds(-age) +
                        " in the future by the relay machine's clock, beyond the " +
                        seconds(libraryWindow) + " " + std::string(c.info.sender) +
                        "'s libraries accept: that machine's clock is most likely wrong.";
      Finding finding = deliveryFindingOf(
          code::kDeliveryLocalTimestampOutside, delivery, std::move(detail),
          age > 0 ? "Trigger a fresh event from " + std::string(c.info.sender) +
                        " instead of replaying an old one, or pass a larger tolerance to the "
                        "library's verify call while testing replays."
                  : "Synchronise the clock of the machine that runs the local server.");
      addNumber(finding, "age_at_delivery_s", age);
      addNumber(finding, "library_window_s", libraryWindow);
      addNumber(finding, "signed_at_s", *signedAt);
      addNumber(finding, "delivered_at_s", deliveredS);
      if (c.event.replayOf != 0) addNumber(finding, "replay_of", c.event.replayOf);
      return finding;
    }
  }

  const std::string header = c.info.signatureHeader.empty() ? std::string("the signature")
                                                            : std::string(c.info.signatureHeader);
  Finding finding = deliveryFindingOf(
      code::kDeliveryLocalVerificationFailed, delivery,
      "The edge verified " + header +
          " with the hook's secret and it was valid, and the relay "
          "delivered the same " +
          std::to_string(c.bodyBytes) + " bytes, yet the local server answered " +
          std::to_string(delivery.status) + excerptClause(delivery) +
          ". So the handler either holds another secret than the hook, or verifies over a "
          "parsed and re-serialized body instead of the raw bytes.",
      "Compare the first 8 characters of the handler's secret with the right one (" +
          std::string(c.info.secretSource) +
          "), and log the length of the body the handler verifies: " + std::to_string(c.bodyBytes) +
          " bytes means the body is intact and the secret differs, any other length means the "
          "body was parsed before verification (verify over the raw bytes). To see both at "
          "once, replay the event (" +
          replayCommand(c) +
          ") to a handler that logs the raw body's length and the signature it computes next "
          "to the received one.");
  addNumber(finding, "body_bytes", c.bodyBytes);
  addText(finding, "verified_header", header);
  const auto contentType = headerValues(c.event.headers, "Content-Type");
  if (!contentType.empty()) addText(finding, "content_type", contentType.front());
  return finding;
}

Finding locallyRefused(const Context& c, const DeliveryFacts& delivery) {
  if (c.event.modified) {
    Finding finding = deliveryFindingOf(
        code::kDeliveryEditedReplayRefused, delivery,
        "This is an edited replay of event " + std::to_string(c.event.replayOf) +
            ": its signature headers are the original's and no longer match, so the local " +
            std::to_string(delivery.status) + " is what a verifying handler should answer.",
        "Test edited payloads against a handler that skips verification in development, or "
        "replay the event unedited.");
    addNumber(finding, "replay_of", c.event.replayOf);
    return finding;
  }
  if (c.event.verdict == store::Verdict::kValid) return locallyRefusedValid(c, delivery);

  // Without a valid verdict the edge cannot say whose check is wrong.
  std::string detail = "The local server answered " + std::to_string(delivery.status) +
                       excerptClause(delivery) + ".";
  detail += c.event.verdict == store::Verdict::kUnsigned
                ? " The edge does not verify this hook's requests, so it cannot say whether the "
                  "signature was good."
                : " The edge found the signature invalid too, so a verifying handler refuses "
                  "this replay as it should.";
  return deliveryFindingOf(code::kDeliveryClientError, delivery, std::move(detail),
                           "Read the answer and the handler's log; relay through a hook that "
                           "verifies the provider to learn whether the signature is good.");
}

Finding clientError(const Context& c, const DeliveryFacts& delivery) {
  std::string detail = "The local server answered " + std::to_string(delivery.status) +
                       excerptClause(delivery) + ".";
  if (delivery.status == 404) {
    detail +=
        " No route matches: the relay sends to the --to path followed by the event's "
        "path suffix " +
        quoted(c.event.pathSuffix) + ".";
  } else if (delivery.status == 405) {
    detail += " The route does not take the method " + quoted(c.event.method, 16) + ".";
  }
  Finding finding = deliveryFindingOf(code::kDeliveryClientError, delivery, std::move(detail),
                                      "Match the route and method to what the event carries, or "
                                      "correct --to; the answer's excerpt and the handler's log "
                                      "say more.");
  if (delivery.status == 404) addText(finding, "path_suffix", c.event.pathSuffix);
  if (delivery.status == 405) addText(finding, "method", c.event.method, 16);
  return finding;
}

Finding serverError(const Context& c, const DeliveryFacts& delivery) {
  std::string detail = "The local server answered " + std::to_string(delivery.status) +
                       excerptClause(delivery) + ": the handler failed.";
  if (delivery.status == 502 || delivery.status == 503 || delivery.status == 504) {
    detail += " A " + std::to_string(delivery.status) +
              " usually comes from a proxy whose server behind it is down or slow.";
  }
  return deliveryFindingOf(code::kDeliveryServerError, delivery, std::move(detail),
                           "Read the local server's log at the event's time, fix the handler, "
                           "then " +
                               replayCommand(c) + ".");
}

std::optional<Finding> deliveryFinding(const Context& c, const DeliveryFacts& delivery) {
  const int32_t status = delivery.status;
  if (status >= 200 && status <= 299) return std::nullopt;
  if (status == 0) return connectionFinding(c, delivery);
  if (status >= 300 && status <= 399) return redirected(delivery);
  if (status == 413) return tooLargeAnswer(c, delivery);
  if (status == 400 || status == 401 || status == 403) return locallyRefused(c, delivery);
  if (status >= 400 && status <= 499) return clientError(c, delivery);
  if (status >= 500 && status <= 599) return serverError(c, delivery);
  return unreadableAnswer(delivery);
}

void addDeliveryFindings(const Context& c, std::vector<Finding>& findings) {
  const auto& deliveries = c.input.deliveries;

  // Invalid events are never streamed, except replays of them.
  const bool forwardable = c.event.verdict != store::Verdict::kInvalid || c.event.replayOf != 0;
  if (deliveries.empty()) {
    if (!forwardable) return;
    Finding finding = findingOf(code::kDeliveryNotRelayed, c.event.receivedAtMs,
                                "No relay has reported a delivery of this event yet.",
                                "Start `anonymily relay --hook HOOK --to URL`; it resumes after "
                                "the last event it forwarded.");
    findings.push_back(std::move(finding));
    return;
  }

  // Each relay's latest report is what holds now; relays are taken in order of first report.
  std::vector<std::pair<std::string_view, size_t>> latest;
  for (size_t i = 0; i < deliveries.size(); ++i) {
    bool seen = false;
    for (auto& entry : latest) {
      if (entry.first == deliveries[i].relayId) entry.second = i, seen = true;
    }
    if (!seen) latest.emplace_back(deliveries[i].relayId, i);
  }
  for (const auto& entry : latest) {
    if (auto finding = deliveryFinding(c, deliveries[entry.second])) {
      findings.push_back(std::move(*finding));
    }
  }
}

}  // namespace

std::string_view severityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      break;
  }
  return "error";
}

std::vector<Finding> diagnose(const DiagnosisInput& input) noexcept {
  std::vector<Finding> findings;
  try {
    const Context context = contextOf(input);
    if (auto finding = signatureFinding(context)) findings.push_back(std::move(*finding));
    addDeliveryFindings(context, findings);
  } catch (...) {
    // Only allocation can fail here; what was found so far still helps.
  }
  return findings;
}

HookFacts hookFacts(const store::HookRecord& hook) {
  HookFacts facts;
  facts.provider = hook.provider;
  facts.standardWebhooks = hook.standardWebhooks;
  facts.toleranceS = hook.toleranceS;

  // Known limit: a provider hook keeps no secret from before its secret was replaced, so
  // signature.previous_secret can fire only for Standard Webhooks hooks until the store keeps one.
  if (hook.provider.empty() && hook.standardWebhooks) {
    facts.previousSecret = hook.previousSigningSecret;
  }
  return facts;
}

EventFacts eventFacts(const store::EventRecord& event) {
  EventFacts facts;
  facts.id = event.id;
  facts.method = event.method;
  facts.pathSuffix = event.pathSuffix;
  facts.headers = event.headers;
  facts.body = event.body;
  facts.bodySize = event.bodySize;
  facts.receivedAtMs = event.receivedAtMs;
  facts.verdict = event.verdict;
  facts.reason = event.reason;
  facts.reasonMessage = event.reasonMessage;
  facts.replayOf = event.replayOf;
  facts.modified = event.modified;
  return facts;
}

DeliveryFacts deliveryFacts(const store::DeliveryRecord& delivery) {
  DeliveryFacts facts;
  facts.relayId = delivery.relayId;
  facts.status = delivery.status;
  facts.durationMs = delivery.durationMs;
  facts.error = delivery.error;
  facts.reportedAtMs = delivery.reportedAtMs;
  switch (delivery.phase) {
    case store::DeliveryPhase::kConnecting:
      facts.phase = DeliveryPhase::kConnecting;
      break;
    case store::DeliveryPhase::kSending:
      facts.phase = DeliveryPhase::kSending;
      break;
    case store::DeliveryPhase::kReceiving:
      facts.phase = DeliveryPhase::kReceiving;
      break;
    case store::DeliveryPhase::kUnknown:
      facts.phase = DeliveryPhase::kUnknown;
      break;
  }
  facts.responseExcerpt = delivery.responseExcerpt;
  facts.location = delivery.location;
  facts.timeoutMs = delivery.timeoutMs;
  facts.targetHttps = delivery.targetHttps;
  facts.startedAtMs = delivery.startedAtMs;
  return facts;
}

}  // namespace anm::diagnosis
