// core/edge/standard_webhooks.cpp: verifies senders that sign the Standard Webhooks way.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/standard_webhooks.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <iterator>
#include <optional>
#include <sstream>

#include "anonymily/plugin.h"
#include "core/edge/event_json.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

constexpr std::string_view kIdHeader = "webhook-id";
constexpr std::string_view kTimestampHeader = "webhook-timestamp";
constexpr std::string_view kSignatureHeader = "webhook-signature";
constexpr size_t kHmacBytes = 32;

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// Every value of the named field, in arrival order.
std::vector<std::string_view> fieldValues(const std::vector<store::Header>& headers,
                                          std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& header : headers) {
    if (equalsIgnoringCase(header.name, name)) out.emplace_back(header.value);
  }
  return out;
}

std::optional<std::string> decodeBase64(std::string_view text) {
  // Poco's decoder skips nothing but reports bad characters by throwing; '=' padding is taken.
  std::istringstream in{std::string(text)};
  Poco::Base64Decoder decoder(in);
  std::string out;
  try {
    out.assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
  if (decoder.bad()) return std::nullopt;
  return out;
}

/// The key bytes of a "whsec_<base64>" secret, or nothing when it is not of that form.
std::optional<std::string> secretKey(std::string_view secret) {
  if (secret.substr(0, kSigningSecretPrefix.size()) != kSigningSecretPrefix) return std::nullopt;
  auto key = decodeBase64(secret.substr(kSigningSecretPrefix.size()));
  if (!key || key->empty()) return std::nullopt;
  return key;
}

std::string hmacSha256(std::string_view key, std::string_view id, std::string_view timestamp,
                       std::string_view body) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
  bool ok = ctx != nullptr && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()),
                                           key.size(), params) == 1;

  // The signed content is "<id>.<timestamp>.<body>", fed in pieces so that a large body is not
  // copied once more.
  const auto feed = [&](std::string_view part) {
    ok = ok &&
         EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size()) == 1;
  };
  feed(id);
  feed(".");
  feed(timestamp);
  feed(".");
  feed(body);
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t outLen = 0;
  ok = ok && EVP_MAC_final(ctx, out, &outLen, sizeof(out)) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok || outLen != kHmacBytes) return {};
  return std::string(reinterpret_cast<const char*>(out), outLen);
}

std::string eventTypeOf(std::string_view body) {
  // Only a JSON object can carry "type"; anything else is not worth a parse.
  const auto start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || body[start] != '{') return {};
  try {
    Poco::JSON::Parser parser;
    const auto parsed = parser.parse(std::string(body));
    const auto object = parsed.extract<Poco::JSON::Object::Ptr>();
    if (!object || !object->has("type")) return {};
    const auto type = object->get("type");
    if (!type.isString()) return {};
    return type.extract<std::string>();
  } catch (const std::exception&) {
    return {};
  } catch (...) {
    return {};
  }
}

plugin::Outcome refused(int32_t reason, std::string message) {
  plugin::Outcome outcome;
  outcome.verdict = store::Verdict::kInvalid;
  outcome.reason = reason;
  outcome.message = std::move(message);
  return outcome;
}

std::optional<int64_t> parseSeconds(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < 0) return std::nullopt;
  return value;
}

// Splits the header into its entries; false when there are too many to check.
bool signatureEntries(const std::vector<std::string_view>& values,
                      std::vector<std::string_view>& entries) {
  for (std::string_view value : values) {
    while (!value.empty()) {
      const auto space = value.find(' ');
      const std::string_view entry = value.substr(0, space);
      if (!entry.empty()) {
        if (entries.size() == kMaxSignatureEntries) return false;
        entries.push_back(entry);
      }
      if (space == std::string_view::npos) break;
      value.remove_prefix(space + 1);
    }
  }
  return true;
}

plugin::Outcome check(const store::HookRecord& hook, const std::vector<store::Header>& headers,
                      std::string_view body, int64_t nowMs) {
  const auto ids = fieldValues(headers, kIdHeader);
  const auto timestamps = fieldValues(headers, kTimestampHeader);
  const auto signatures = fieldValues(headers, kSignatureHeader);

  // The three headers, each once: two ids or timestamps would leave open which one was signed.
  if (signatures.empty()) {
    return refused(ANM_REASON_HEADER_MISSING, "no webhook-signature header");
  }
  if (ids.empty()) return refused(ANM_REASON_HEADER_MISSING, "no webhook-id header");
  if (timestamps.empty()) {
    return refused(ANM_REASON_TIMESTAMP_MISSING, "no webhook-timestamp header");
  }
  if (ids.size() > 1) return refused(ANM_REASON_HEADER_MALFORMED, "webhook-id given twice");
  if (timestamps.size() > 1) {
    return refused(ANM_REASON_HEADER_MALFORMED, "webhook-timestamp given twice");
  }
  const std::string_view id = ids.front();
  const std::string_view timestamp = timestamps.front();
  if (id.empty()) return refused(ANM_REASON_HEADER_MALFORMED, "webhook-id is empty");
  const auto seconds = parseSeconds(timestamp);
  if (!seconds) {
    return refused(ANM_REASON_HEADER_MALFORMED,
                   "webhook-timestamp must be whole Unix seconds (digits only)");
  }

  // The window guards against replays of an old signed request, in both directions.
  const int64_t tolerance = hook.toleranceS < 0 ? kStandardWebhooksToleranceS : hook.toleranceS;
  if (tolerance > 0) {
    const int64_t nowS = nowMs / 1000;
    const int64_t skew = *seconds > nowS ? *seconds - nowS : nowS - *seconds;
    if (skew > tolerance) {
      return refused(ANM_REASON_TIMESTAMP_OUTSIDE,
                     "webhook-timestamp is " + std::to_string(skew) +
                         " s away from the edge's clock; the hook allows " +
                         std::to_string(tolerance) + " s");
    }
  }

  std::vector<std::string_view> entries;
  if (!signatureEntries(signatures, entries)) {
    return refused(ANM_REASON_HEADER_MALFORMED, "webhook-signature holds more than " +
                                                    std::to_string(kMaxSignatureEntries) +
                                                    " signatures");
  }
  if (entries.empty()) return refused(ANM_REASON_HEADER_MALFORMED, "webhook-signature is empty");

  // The keys the hook accepts now: its secret, and the one before a rotation while it lasts.
  std::vector<std::string> macs;
  if (const auto key = secretKey(hook.signingSecret)) {
    macs.push_back(hmacSha256(*key, id, timestamp, body));
  }
  if (!hook.previousSigningSecret.empty() && nowMs < hook.previousValidUntilMs) {
    if (const auto key = secretKey(hook.previousSigningSecret)) {
      macs.push_back(hmacSha256(*key, id, timestamp, body));
    }
  }
  if (macs.empty()) {
    return refused(ANM_REASON_SECRET_MISSING, "the hook has no usable signing secret");
  }

  // Every v1 entry is compared with every key, in constant time, whatever matched before.
  size_t v1Entries = 0;
  bool matched = false;
  for (const auto entry : entries) {
    const auto comma = entry.find(',');
    if (comma == std::string_view::npos) {
      return refused(ANM_REASON_HEADER_MALFORMED,
                     "webhook-signature entries must be <version>,<signature>");
    }
    if (entry.substr(0, comma) != "v1") continue;
    ++v1Entries;
    const auto presented = decodeBase64(entry.substr(comma + 1));
    if (!presented || presented->size() != kHmacBytes) continue;
    for (const auto& mac : macs) {
      if (mac.size() == kHmacBytes &&
          CRYPTO_memcmp(mac.data(), presented->data(), kHmacBytes) == 0) {
        matched = true;
      }
    }
  }
  if (v1Entries == 0) {
    return refused(ANM_REASON_ALGORITHM_REFUSED,
                   "webhook-signature has no v1 (HMAC-SHA256) signature; other versions are "
                   "not accepted");
  }
  if (!matched) {
    return refused(ANM_REASON_SIGNATURE_MISMATCH,
                   "no v1 signature matches the hook's signing secret");
  }

  plugin::Outcome outcome;
  outcome.verdict = store::Verdict::kValid;
  outcome.reason = ANM_REASON_OK;
  return outcome;
}

}  // namespace

std::string newSigningSecret() {
  std::string out(kSigningSecretPrefix);
  appendBase64(out, randomSecretBytes(kSigningSecretBytes));
  return out;
}

std::string standardWebhooksSignature(std::string_view secret, std::string_view webhookId,
                                      int64_t timestampS, std::string_view body) {
  const auto key = secretKey(secret);
  if (!key) return {};
  const std::string mac = hmacSha256(*key, webhookId, std::to_string(timestampS), body);
  if (mac.empty()) return {};
  std::string out = "v1,";
  appendBase64(out, mac);
  return out;
}

plugin::Outcome verifyStandardWebhooks(const store::HookRecord& hook,
                                       const std::vector<store::Header>& headers,
                                       std::string_view body, int64_t nowMs) {
  plugin::Outcome outcome;
  try {
    outcome = check(hook, headers, body, nowMs);
  } catch (const std::exception& e) {
    outcome = refused(ANM_REASON_INTERNAL, std::string("could not verify: ") + e.what());
  }

  // What identifies the delivery is kept whatever the verdict, as plugins do.
  const auto ids = fieldValues(headers, kIdHeader);
  if (ids.size() == 1) outcome.deliveryId = std::string(ids.front());
  outcome.eventType = eventTypeOf(body);
  return outcome;
}

}  // namespace anm::edge
