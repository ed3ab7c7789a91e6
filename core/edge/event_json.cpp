// core/edge/event_json.cpp: hand-written serialisation of events for the API and the streams.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/event_json.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace anm::edge {

namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr char kHexDigits[] = "0123456789abcdef";

// Room for the field names and numbers of one event besides its strings, headers and body.
constexpr size_t kFixedOverhead = 320;

// Room for one delivery object besides its relay id, error, excerpt and Location.
constexpr size_t kDeliverySize = 256;

void appendInt(std::string& out, int64_t value) {
  char buf[24];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, result.ptr);
}

// Appends `in` as JSON string content (no quotes). Control characters are escaped so that the
// result stays on one line; bytes that are not valid UTF-8 become U+FFFD so that the output is
// always valid JSON (callers that must keep bytes check isValidUtf8 first and use base64).
void appendEscaped(std::string& out, std::string_view in) {
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(in[i]);

    // Plain ASCII is the common case: copy runs of it in one go.
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      size_t j = i + 1;
      while (j < n) {
        const auto d = static_cast<unsigned char>(in[j]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(in.data() + i, j - i);
      i = j;
      continue;
    }

    if (c < 0x80) {
      out.push_back('\\');
      switch (c) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\n':
          out.push_back('n');
          break;
        case '\r':
          out.push_back('r');
          break;
        case '\t':
          out.push_back('t');
          break;
        case '\b':
          out.push_back('b');
          break;
        case '\f':
          out.push_back('f');
          break;
        default:
          out.append("u00");
          out.push_back(kHexDigits[c >> 4]);
          out.push_back(kHexDigits[c & 0xF]);
      }
      ++i;
      continue;
    }

    // A multi-byte sequence is copied whole when valid, else its first byte is replaced.
    const size_t len = utf8SequenceLength(in, i);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
      continue;
    }
    out.append(in.data() + i, len);
    i += len;
  }
}

void appendString(std::string& out, std::string_view in) {
  out.push_back('"');
  appendEscaped(out, in);
  out.push_back('"');
}

void appendKey(std::string& out, std::string_view key) {
  out.push_back(',');
  out.push_back('"');
  out.append(key);
  out.append("\":");
}

void appendStringField(std::string& out, std::string_view key, std::string_view value) {
  appendKey(out, key);
  appendString(out, value);
}

void appendIntField(std::string& out, std::string_view key, int64_t value) {
  appendKey(out, key);
  appendInt(out, value);
}

void appendBoolField(std::string& out, std::string_view key, bool value) {
  appendKey(out, key);
  out.append(value ? "true" : "false");
}

void appendBase64String(std::string& out, std::string_view in) {
  out.push_back('"');
  appendBase64(out, in);
  out.push_back('"');
}

size_t headersSize(const store::EventRecord& event) {
  size_t size = 0;
  for (const auto& header : event.headers) size += header.name.size() + header.value.size() + 8;
  return size;
}

// Bytes of the scalar fields, before escaping. Path and query get five times their size: a bad
// byte becomes a three-byte U+FFFD, and such a field also goes out base64-encoded.
size_t scalarsSize(const store::EventRecord& event) {
  return kFixedOverhead + event.hookId.size() + event.method.size() +
         5 * (event.pathSuffix.size() + event.rawQuery.size()) + event.eventType.size() +
         event.deliveryId.size() + event.reasonMessage.size();
}

// Bytes of headers and body once encoded; an eighth more for escapes in the headers.
size_t payloadSize(const store::EventRecord& event) {
  const size_t headers = headersSize(event);
  return headers + headers / 8 + (event.body.size() + 2) / 3 * 4;
}

// A text field the relay forwards as bytes: the JSON string is for reading, and when the bytes
// are not valid UTF-8 (so the string had to replace some of them) "<key>_b64" carries them
// exactly.
void appendBytesField(std::string& out, std::string_view key, std::string_view value) {
  appendStringField(out, key, value);
  if (isValidUtf8(value)) return;
  out.push_back(',');
  out.push_back('"');
  out.append(key);
  out.append("_b64\":");
  appendBase64String(out, value);
}

// The fields every form starts with, from "{" up to and including "query" (and "query_b64").
void appendHead(std::string& out, const store::EventRecord& event) {
  out.append("{\"id\":");
  appendInt(out, event.id);
  appendStringField(out, "hook", event.hookId);
  appendIntField(out, "received_at_ms", event.receivedAtMs);
  appendStringField(out, "method", event.method);
  appendBytesField(out, "path", event.pathSuffix);
  appendBytesField(out, "query", event.rawQuery);
}

void appendHeaders(std::string& out, const store::EventRecord& event) {
  appendKey(out, "headers");
  out.push_back('[');
  bool first = true;
  for (const auto& header : event.headers) {
    if (!first) out.push_back(',');
    first = false;

    // Text survives as JSON strings; anything else is sent base64 with a marker saying so.
    const bool nameOk = isValidUtf8(header.name);
    const bool valueOk = isValidUtf8(header.value);
    out.push_back('[');
    if (nameOk && valueOk) {
      appendString(out, header.name);
      out.push_back(',');
      appendString(out, header.value);
    } else if (nameOk) {
      appendString(out, header.name);
      out.push_back(',');
      appendBase64String(out, header.value);
      out.append(",\"b64\"");
    } else {
      appendBase64String(out, header.name);
      out.push_back(',');
      appendBase64String(out, header.value);
      out.append(",\"b64name\"");
    }
    out.push_back(']');
  }
  out.push_back(']');
}

void appendBody(std::string& out, const store::EventRecord& event) {
  appendKey(out, "body_base64");
  appendBase64String(out, event.body);
}

void appendVerdict(std::string& out, const store::EventRecord& event) {
  appendStringField(out, "verdict", verdictName(event.verdict));
  appendStringField(out, "reason", reasonName(event.reason));
}

// The members of a delivery after its opening brace: {"relay":...,"reported_at_ms":N}. The
// excerpt and the Location are display text: bytes that are not UTF-8 become U+FFFD.
void appendDeliveryObject(std::string& out, const store::DeliveryRecord& delivery) {
  out.append("{\"relay\":");
  appendString(out, delivery.relayId);
  appendIntField(out, "status", delivery.status);
  appendIntField(out, "duration_ms", delivery.durationMs);
  appendStringField(out, "error", delivery.error);
  appendStringField(out, "phase", phaseName(delivery.phase));
  appendIntField(out, "timeout_ms", delivery.timeoutMs);
  appendBoolField(out, "target_https", delivery.targetHttps);
  appendIntField(out, "started_at_ms", delivery.startedAtMs);
  appendStringField(out, "response_excerpt", delivery.responseExcerpt);
  appendStringField(out, "location", delivery.location);
  appendIntField(out, "reported_at_ms", delivery.reportedAtMs);

  // Only a delivery whose sealed values did not open carries it (both are "" then).
  if (!delivery.integrityError.empty()) {
    appendStringField(out, "integrity_error", delivery.integrityError);
  }
  out.push_back('}');
}

void appendDeliveries(std::string& out, const std::vector<store::DeliveryRecord>& deliveries) {
  appendKey(out, "deliveries");
  out.push_back('[');
  bool first = true;
  for (const auto& delivery : deliveries) {
    if (!first) out.push_back(',');
    first = false;
    appendDeliveryObject(out, delivery);
  }
  out.push_back(']');
}

void appendSummaryFields(std::string& out, const store::EventRecord& event,
                         const std::vector<store::DeliveryRecord>& deliveries) {
  appendHead(out, event);
  appendVerdict(out, event);
  appendStringField(out, "message", event.reasonMessage);
  appendStringField(out, "event_type", event.eventType);
  appendStringField(out, "delivery_id", event.deliveryId);
  appendIntField(out, "size", event.bodySize);
  appendIntField(out, "replay_of", event.replayOf);
  appendBoolField(out, "modified", event.modified);
  appendDeliveries(out, deliveries);

  // Only an event whose contents could not be read carries it, so that other answers keep
  // their form.
  if (!event.integrityError.empty()) {
    appendStringField(out, "integrity_error", event.integrityError);
  }
}

void appendEnvelope(std::string& out, const store::EventRecord& event) {
  appendHead(out, event);
  appendHeaders(out, event);
  appendBody(out, event);
  appendVerdict(out, event);
  appendStringField(out, "event_type", event.eventType);
  appendStringField(out, "delivery_id", event.deliveryId);
  appendIntField(out, "replay_of", event.replayOf);
  appendBoolField(out, "modified", event.modified);
  out.push_back('}');
}

}  // namespace

size_t utf8SequenceLength(std::string_view in, size_t pos) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(in[pos + k]); };
  const auto cont = [&](size_t k) { return pos + k < in.size() && (at(k) & 0xC0) == 0x80; };
  const unsigned char c = at(0);
  if (c < 0x80) return 1;

  // Lead bytes C0, C1 and F5..FF never occur; E0, ED, F0 and F4 narrow the second byte so that
  // overlong forms, surrogates and code points past U+10FFFF are refused.
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && at(1) < 0xA0) return 0;
    if (c == 0xED && at(1) > 0x9F) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && at(1) < 0x90) return 0;
    if (c == 0xF4 && at(1) > 0x8F) return 0;
    return 4;
  }
  return 0;
}

bool isValidUtf8(std::string_view in) {
  size_t i = 0;
  while (i < in.size()) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8SequenceLength(in, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void appendBase64(std::string& out, std::string_view in) {
  const size_t start = out.size();
  out.resize(start + (in.size() + 2) / 3 * 4);
  char* dst = out.data() + start;
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0;

  // Whole groups of three bytes give four characters each. The characters are put together
  // in a local and copied out at once: stores through char* would otherwise make the compiler
  // reload the input after every character.
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{src[i]} << 16) | (uint32_t{src[i + 1]} << 8) | src[i + 2];
    const char quad[4] = {kBase64Alphabet[(v >> 18) & 0x3F], kBase64Alphabet[(v >> 12) & 0x3F],
                          kBase64Alphabet[(v >> 6) & 0x3F], kBase64Alphabet[v & 0x3F]};
    std::memcpy(dst, quad, sizeof(quad));
    dst += sizeof(quad);
  }

  // The last one or two bytes are padded with '='.
  const size_t rest = in.size() - i;
  if (rest == 0) return;
  uint32_t v = uint32_t{src[i]} << 16;
  if (rest == 2) v |= uint32_t{src[i + 1]} << 8;
  *dst++ = kBase64Alphabet[(v >> 18) & 0x3F];
  *dst++ = kBase64Alphabet[(v >> 12) & 0x3F];
  *dst++ = rest == 2 ? kBase64Alphabet[(v >> 6) & 0x3F] : '=';
  *dst++ = '=';
}

std::optional<std::string> decodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  const auto valueOf = [](char c) -> int {
    const char* at = std::strchr(kBase64Alphabet, c);
    return c != '\0' && at != nullptr ? static_cast<int>(at - kBase64Alphabet) : -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    // Padding may only end the last group, and leaves at least two characters of data.
    const bool last = i + 4 == text.size();
    const size_t padding =
        last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int digit = k >= 4 - padding ? 0 : valueOf(text[i + k]);
      if (digit < 0) return std::nullopt;
      v = (v << 6) | static_cast<uint32_t>(digit);
    }
    out.push_back(static_cast<char>((v >> 16) & 0xFF));
    if (padding < 2) out.push_back(static_cast<char>((v >> 8) & 0xFF));
    if (padding < 1) out.push_back(static_cast<char>(v & 0xFF));
  }
  return out;
}

std::string_view verdictName(store::Verdict verdict) {
  switch (verdict) {
    case store::Verdict::kValid:
      return "valid";
    case store::Verdict::kInvalid:
      return "invalid";
    case store::Verdict::kUnsigned:
      return "unsigned";
  }
  return "unknown";
}

std::string_view phaseName(store::DeliveryPhase phase) {
  switch (phase) {
    case store::DeliveryPhase::kConnecting:
      return "connecting";
    case store::DeliveryPhase::kSending:
      return "sending";
    case store::DeliveryPhase::kReceiving:
      return "receiving";
    case store::DeliveryPhase::kUnknown:
      break;
  }
  return "unknown";
}

std::optional<store::DeliveryPhase> phaseFromName(std::string_view name) {
  for (const auto phase : {store::DeliveryPhase::kUnknown, store::DeliveryPhase::kConnecting,
                           store::DeliveryPhase::kSending, store::DeliveryPhase::kReceiving}) {
    if (phaseName(phase) == name) return phase;
  }
  return std::nullopt;
}

std::string_view reasonName(int32_t reason) {
  // Indexed by ANM_REASON_*; the names are part of the protocol and never change.
  static constexpr std::string_view kNames[] = {"ok",
                                                "header_missing",
                                                "header_malformed",
                                                "timestamp_missing",
                                                "timestamp_outside",
                                                "signature_mismatch",
                                                "secret_missing",
                                                "algorithm_refused",
                                                "not_signed",
                                                "internal"};
  if (reason < 0 || static_cast<size_t>(reason) >= std::size(kNames)) return "unknown";
  return kNames[reason];
}

std::string eventSummaryJson(const store::EventRecord& event,
                             const std::vector<store::DeliveryRecord>& deliveries) {
  std::string out;
  out.reserve(scalarsSize(event) + deliveries.size() * kDeliverySize);
  appendSummaryFields(out, event, deliveries);
  out.push_back('}');
  return out;
}

std::string eventDetailJson(const store::EventRecord& event,
                            const std::vector<store::DeliveryRecord>& deliveries) {
  std::string out;
  out.reserve(scalarsSize(event) + payloadSize(event) + deliveries.size() * kDeliverySize);
  appendSummaryFields(out, event, deliveries);
  appendHeaders(out, event);
  appendBody(out, event);
  out.push_back('}');
  return out;
}

std::string eventEnvelopeJson(const store::EventRecord& event) {
  std::string out;
  out.reserve(scalarsSize(event) + payloadSize(event));
  appendEnvelope(out, event);
  return out;
}

std::string unreadableFrame(const store::EventRecord& event) {
  std::string out;
  out.reserve(64 + event.integrityError.size());
  out.append("id: ");
  appendInt(out, event.id);
  out.append("\nevent: unreadable\ndata: {\"id\":");
  appendInt(out, event.id);
  appendStringField(out, "error", event.integrityError);
  out.append("}\n\n");
  return out;
}

std::string deliveryJson(const store::DeliveryRecord& delivery) {
  std::string out;
  appendDeliveryObject(out, delivery);
  return out;
}

std::string summaryFrame(const store::EventRecord& event) {
  std::string out = "id: ";
  appendInt(out, event.id);
  out.append("\nevent: summary\ndata: ");
  out.append(eventSummaryJson(event, {}));
  out.append("\n\n");
  return out;
}

std::string deliveryFrame(const store::DeliveryRecord& delivery) {
  std::string out = "event: delivery\ndata: {\"event\":";
  appendInt(out, delivery.eventId);
  out.push_back(',');
  std::string object = deliveryJson(delivery);
  out.append(object, 1, std::string::npos);
  out.append("\n\n");
  return out;
}

std::string sseFrame(const store::EventRecord& event) {
  // An event the store could not decrypt still takes its place in the stream, so that a relay
  // moves past it (and says so) instead of waiting for it or being sent empty contents.
  if (!event.integrityError.empty()) return unreadableFrame(event);

  std::string out;
  out.reserve(scalarsSize(event) + payloadSize(event) + 48);
  out.append("id: ");
  appendInt(out, event.id);
  out.append("\nevent: webhook\ndata: ");
  appendEnvelope(out, event);
  out.append("\n\n");
  return out;
}

}  // namespace anm::edge
