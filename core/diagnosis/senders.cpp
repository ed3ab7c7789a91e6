// core/diagnosis/senders.cpp: what each signing scheme puts where, as the diagnosis needs it.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/senders.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <initializer_list>
#include <string>
#include <utility>

namespace anm::diagnosis {
namespace {

// The windows of plugins/stripe, plugins/slack and core/edge/standard_webhooks.h; every
// provider's own libraries default to the same five minutes.
constexpr int64_t kFiveMinutesS = 300;

// Unix seconds with more digits cannot come from a clock (the plugins' own bound).
constexpr size_t kMaxTimestampDigits = 18;

constexpr std::string_view kWhsecPrefix = "whsec_";

const SchemeInfo kNoScheme{"the sender", "", "", 0, ""};

const SchemeInfo kStripeInfo{
    "Stripe", "Stripe-Signature", "t= in Stripe-Signature", kFiveMinutesS,
    "the endpoint's whsec_ signing secret under Developers > Webhooks in the Stripe dashboard, "
    "or the one `stripe listen` prints"};

const SchemeInfo kGithubInfo{"GitHub", "X-Hub-Signature-256", "", 0,
                             "the Secret field of the webhook's settings on GitHub"};

const SchemeInfo kShopifyInfo{"Shopify", "X-Shopify-Hmac-Sha256", "", 0,
                              "the app's client secret in the Shopify Partner dashboard, or the "
                              "secret shown under Notifications for webhooks made in the admin"};

const SchemeInfo kSlackInfo{
    "Slack", "X-Slack-Signature", "X-Slack-Request-Timestamp", kFiveMinutesS,
    "the Signing Secret under Basic Information of the Slack app, not its Verification Token"};

const SchemeInfo kRazorpayInfo{"Razorpay", "X-Razorpay-Signature", "", 0,
                               "the secret entered for the webhook in the Razorpay dashboard, "
                               "not the API key secret"};

const SchemeInfo kStandardWebhooksInfo{
    "the Standard Webhooks sender", "webhook-signature", "webhook-timestamp", kFiveMinutesS,
    "the hook's whsec_ signing secret, shown when the hook was created or its secret last "
    "rotated"};

const SchemeInfo kOtherPluginInfo{"the sender", "", "", 0,
                                  "the sender's settings for this webhook"};

/// The signature headers this table recognises on any request, most specific first.
const std::array<SignatureHeader, 8> kKnownSignatureHeaders{{
    {"Stripe-Signature", "Stripe", "--provider stripe"},
    {"X-Hub-Signature-256", "GitHub", "--provider github"},
    {"X-Hub-Signature", "GitHub (SHA-1 only)", "--provider github"},
    {"X-Shopify-Hmac-Sha256", "Shopify", "--provider shopify"},
    {"X-Slack-Signature", "Slack", "--provider slack"},
    {"X-Razorpay-Signature", "Razorpay", "--provider razorpay"},
    {"webhook-signature", "a Standard Webhooks sender", "--standard-webhooks"},
    // Svix signs the Standard Webhooks way under its own header names, which the edge does not
    // read: there is no setting that verifies them.
    {"svix-signature", "Svix (Standard Webhooks signing under svix-* header names)", ""},
}};

char asciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<int64_t> parseUnixSeconds(std::string_view text) {
  if (text.empty() || text.size() > kMaxTimestampDigits) return std::nullopt;
  int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

/// The single value of `name`, or nothing when it is absent or given more than once.
std::optional<std::string_view> singleValue(const std::vector<store::Header>& headers,
                                            std::string_view name) {
  const auto values = headerValues(headers, name);
  if (values.size() != 1) return std::nullopt;
  return values.front();
}

/// The "key=value" elements of Stripe-Signature, split the way plugins/stripe splits them.
std::vector<std::pair<std::string_view, std::string_view>> stripeElements(std::string_view header) {
  std::vector<std::pair<std::string_view, std::string_view>> elements;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    const std::string_view element = trimmed(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const size_t equals = element.find('=');
    if (equals == std::string_view::npos) continue;
    elements.emplace_back(element.substr(0, equals), element.substr(equals + 1));
  }
  return elements;
}

std::optional<int64_t> stripeTimestamp(const std::vector<store::Header>& headers) {
  const auto header = singleValue(headers, "Stripe-Signature");
  if (!header) return std::nullopt;
  std::optional<std::string_view> timestamp;
  for (const auto& [key, value] : stripeElements(*header)) {
    if (key != "t") continue;
    if (timestamp) return std::nullopt;
    timestamp = value;
  }
  if (!timestamp) return std::nullopt;
  return parseUnixSeconds(*timestamp);
}

/// HMAC-SHA256 of the concatenated parts under `key`; empty when OpenSSL refuses.
std::string hmacSha256(std::string_view key, std::initializer_list<std::string_view> parts) {
  std::string message;
  for (const auto part : parts) message.append(part);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* done =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  if (done == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string lowerHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xF]);
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(written < 0 ? 0 : static_cast<size_t>(written));
  return out;
}

/// Standard padded base64 decoded, or nothing for text that is not.
std::optional<std::string> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(text.data()),
                                      static_cast<int>(text.size()));
  if (written < 0) return std::nullopt;

  // EVP_DecodeBlock counts the padding as zero bytes; they are not part of the data.
  size_t size = static_cast<size_t>(written);
  if (text.back() == '=') --size;
  if (text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

/// Compares a computed digest text with a received one in time that depends only on lengths.
bool sameText(std::string_view computed, std::string_view received) {
  return !computed.empty() && computed.size() == received.size() &&
         CRYPTO_memcmp(computed.data(), received.data(), computed.size()) == 0;
}

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = asciiLower(c);
  return out;
}

/// `header` is `prefix` and the lower- or upper-case hex of `digest`.
bool prefixedHexMatches(std::optional<std::string_view> header, std::string_view prefix,
                        const std::string& digest) {
  if (!header || header->substr(0, prefix.size()) != prefix) return false;
  return sameText(lowerHex(digest), lowered(header->substr(prefix.size())));
}

bool stripeSigned(std::string_view secret, const std::vector<store::Header>& headers,
                  std::string_view body) {
  const auto header = singleValue(headers, "Stripe-Signature");
  if (!header) return false;
  const auto elements = stripeElements(*header);
  std::optional<std::string_view> timestamp;
  for (const auto& [key, value] : elements) {
    if (key == "t") timestamp = value;
  }
  if (!timestamp) return false;
  const std::string expected = lowerHex(hmacSha256(secret, {*timestamp, ".", body}));
  for (const auto& [key, value] : elements) {
    if (key == "v1" && sameText(expected, lowered(value))) return true;
  }
  return false;
}

bool slackSigned(std::string_view secret, const std::vector<store::Header>& headers,
                 std::string_view body) {
  const auto timestamp = singleValue(headers, "X-Slack-Request-Timestamp");
  if (!timestamp) return false;
  return prefixedHexMatches(singleValue(headers, "X-Slack-Signature"),
                            "v0=", hmacSha256(secret, {"v0:", *timestamp, ":", body}));
}

bool standardWebhooksSigned(std::string_view secret, const std::vector<store::Header>& headers,
                            std::string_view body) {
  if (secret.substr(0, kWhsecPrefix.size()) != kWhsecPrefix) return false;
  const auto key = unbase64(secret.substr(kWhsecPrefix.size()));
  const auto id = singleValue(headers, "webhook-id");
  const auto timestamp = singleValue(headers, "webhook-timestamp");
  if (!key || key->empty() || !id || !timestamp) return false;
  const std::string expected = base64(hmacSha256(*key, {*id, ".", *timestamp, ".", body}));
  for (std::string_view value : headerValues(headers, "webhook-signature")) {
    while (!value.empty()) {
      const size_t space = value.find(' ');
      const std::string_view entry = value.substr(0, space);
      value = space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
      if (entry.substr(0, 3) == "v1," && sameText(expected, entry.substr(3))) return true;
    }
  }
  return false;
}

}  // namespace

Scheme schemeOf(std::string_view provider, bool standardWebhooks) {
  if (provider.empty()) return standardWebhooks ? Scheme::kStandardWebhooks : Scheme::kNone;
  if (provider == "stripe") return Scheme::kStripe;
  if (provider == "github") return Scheme::kGithub;
  if (provider == "shopify") return Scheme::kShopify;
  if (provider == "slack") return Scheme::kSlack;
  if (provider == "razorpay") return Scheme::kRazorpay;
  return Scheme::kOtherPlugin;
}

const SchemeInfo& schemeInfo(Scheme scheme) {
  switch (scheme) {
    case Scheme::kStripe:
      return kStripeInfo;
    case Scheme::kGithub:
      return kGithubInfo;
    case Scheme::kShopify:
      return kShopifyInfo;
    case Scheme::kSlack:
      return kSlackInfo;
    case Scheme::kRazorpay:
      return kRazorpayInfo;
    case Scheme::kStandardWebhooks:
      return kStandardWebhooksInfo;
    case Scheme::kOtherPlugin:
      return kOtherPluginInfo;
    case Scheme::kNone:
      break;
  }
  return kNoScheme;
}

std::vector<std::string_view> headerValues(const std::vector<store::Header>& headers,
                                           std::string_view name) {
  std::vector<std::string_view> values;
  for (const auto& header : headers) {
    if (equalsIgnoringCase(header.name, name)) values.emplace_back(header.value);
  }
  return values;
}

std::optional<int64_t> signedAtSeconds(Scheme scheme, const std::vector<store::Header>& headers) {
  switch (scheme) {
    case Scheme::kStripe:
      return stripeTimestamp(headers);
    case Scheme::kSlack: {
      const auto value = singleValue(headers, "X-Slack-Request-Timestamp");
      return value ? parseUnixSeconds(*value) : std::nullopt;
    }
    case Scheme::kStandardWebhooks: {
      const auto value = singleValue(headers, "webhook-timestamp");
      return value ? parseUnixSeconds(*value) : std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

int64_t floorSeconds(int64_t ms) {
  int64_t seconds = ms / 1000;
  if (ms % 1000 < 0) --seconds;
  return seconds;
}

std::vector<SignatureHeader> othersSignatureHeaders(Scheme scheme,
                                                    const std::vector<store::Header>& headers) {
  std::vector<SignatureHeader> found;
  for (const auto& known : kKnownSignatureHeaders) {
    // A scheme's own headers say nothing about a wrong provider; GitHub reads both of its.
    const bool own =
        equalsIgnoringCase(known.header, schemeInfo(scheme).signatureHeader) ||
        (scheme == Scheme::kGithub && equalsIgnoringCase(known.header, "X-Hub-Signature"));
    if (own || headerValues(headers, known.header).empty()) continue;
    found.push_back(known);
  }
  return found;
}

bool signedWithSecret(Scheme scheme, std::string_view secret,
                      const std::vector<store::Header>& headers, std::string_view body) {
  if (secret.empty()) return false;
  switch (scheme) {
    case Scheme::kStripe:
      return stripeSigned(secret, headers, body);
    case Scheme::kGithub:
      return prefixedHexMatches(singleValue(headers, "X-Hub-Signature-256"),
                                "sha256=", hmacSha256(secret, {body}));
    case Scheme::kShopify: {
      const auto header = singleValue(headers, "X-Shopify-Hmac-Sha256");
      return header && sameText(base64(hmacSha256(secret, {body})), *header);
    }
    case Scheme::kSlack:
      return slackSigned(secret, headers, body);
    case Scheme::kRazorpay:
      return prefixedHexMatches(singleValue(headers, "X-Razorpay-Signature"), "",
                                hmacSha256(secret, {body}));
    case Scheme::kStandardWebhooks:
      return standardWebhooksSigned(secret, headers, body);
    default:
      return false;
  }
}

}  // namespace anm::diagnosis
