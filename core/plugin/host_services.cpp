// core/plugin/host_services.cpp: the host services behind anm_host_api, backed by OpenSSL.
// SPDX-License-Identifier: Apache-2.0
#include "core/plugin/host_services.h"

#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

/// The host's record of one verify call. Plugins see only a pointer to it.
struct anm_result {
  anm::plugin::Outcome outcome;
  bool hasVerdict = false;
  std::string problem;
};

namespace anm::plugin {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kHexDigits[] = "0123456789abcdef";

// A non-null address for empty inputs: OpenSSL treats a NULL key as "keep the previous key".
constexpr uint8_t kEmpty[1] = {0};

std::string_view view(anm_str s) {
  if (s.ptr == nullptr || s.len == 0) return {};
  return {s.ptr, s.len};
}

std::string_view view(anm_bytes b) {
  if (b.ptr == nullptr || b.len == 0) return {};
  return {reinterpret_cast<const char*>(b.ptr), b.len};
}

// Cuts UTF-8 text at most `cap` bytes long without splitting a multi-byte sequence.
std::string cutUtf8(std::string_view text, size_t cap) {
  if (text.size() <= cap) return std::string(text);
  size_t end = cap;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

struct HashInfo {
  const char* name;
  size_t size;
  const EVP_MD* (*md)();
};

const HashInfo* hashInfo(anm_hash algorithm) {
  static const HashInfo kSha1{"SHA1", 20, EVP_sha1};
  static const HashInfo kSha256{"SHA256", 32, EVP_sha256};
  static const HashInfo kSha512{"SHA512", 64, EVP_sha512};
  switch (algorithm) {
    case ANM_HASH_SHA1:
      return &kSha1;
    case ANM_HASH_SHA256:
      return &kSha256;
    case ANM_HASH_SHA512:
      return &kSha512;
    default:
      return nullptr;
  }
}

// ----------------------------------------------------------------------------------------------
// Cryptography

anm_status hostHmac(anm_hash algorithm, anm_bytes key, const anm_bytes* parts, size_t partCount,
                    uint8_t* out, size_t outCap, size_t* outLen) {
  const HashInfo* info = hashInfo(algorithm);
  if (info == nullptr) return ANM_ERR_UNSUPPORTED;
  if (outLen == nullptr || (parts == nullptr && partCount > 0)) return ANM_ERR_INVALID_ARGUMENT;
  if (out == nullptr || outCap < info->size) return ANM_ERR_BUFFER_TOO_SMALL;

  // The HMAC implementation is fetched once; a fetched EVP_MAC may be shared between threads.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return ANM_ERR_INTERNAL;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  if (ctx == nullptr) return ANM_ERR_INTERNAL;

  // Key and digest go in at init; each part is fed in place so a large body is never copied.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(info->name), 0),
      OSSL_PARAM_construct_end()};
  const uint8_t* keyPtr = (key.ptr != nullptr && key.len > 0) ? key.ptr : kEmpty;
  bool ok = EVP_MAC_init(ctx, keyPtr, key.len, params) == 1;
  for (size_t i = 0; ok && i < partCount; ++i) {
    if (parts[i].len == 0) continue;
    if (parts[i].ptr == nullptr) {
      EVP_MAC_CTX_free(ctx);
      return ANM_ERR_INVALID_ARGUMENT;
    }
    ok = EVP_MAC_update(ctx, parts[i].ptr, parts[i].len) == 1;
  }
  size_t written = 0;
  ok = ok && EVP_MAC_final(ctx, out, &written, outCap) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok) return ANM_ERR_INTERNAL;
  *outLen = written;
  return ANM_OK;
}

anm_status hostDigest(anm_hash algorithm, const anm_bytes* parts, size_t partCount, uint8_t* out,
                      size_t outCap, size_t* outLen) {
  const HashInfo* info = hashInfo(algorithm);
  if (info == nullptr) return ANM_ERR_UNSUPPORTED;
  if (outLen == nullptr || (parts == nullptr && partCount > 0)) return ANM_ERR_INVALID_ARGUMENT;
  if (out == nullptr || outCap < info->size) return ANM_ERR_BUFFER_TOO_SMALL;

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return ANM_ERR_INTERNAL;
  bool ok = EVP_DigestInit_ex(ctx, info->md(), nullptr) == 1;
  for (size_t i = 0; ok && i < partCount; ++i) {
    if (parts[i].len == 0) continue;
    if (parts[i].ptr == nullptr) {
      EVP_MD_CTX_free(ctx);
      return ANM_ERR_INVALID_ARGUMENT;
    }
    ok = EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len) == 1;
  }
  unsigned int written = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out, &written) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return ANM_ERR_INTERNAL;
  *outLen = written;
  return ANM_OK;
}

bool hostEqualConstantTime(anm_bytes a, anm_bytes b) {
  // Only the lengths may leak: they are public (a signature's size follows from its algorithm).
  if (a.len != b.len) return false;
  if (a.len == 0) return true;
  if (a.ptr == nullptr || b.ptr == nullptr) return false;
  return CRYPTO_memcmp(a.ptr, b.ptr, a.len) == 0;
}

// ----------------------------------------------------------------------------------------------
// Encodings

anm_status hostBase64Encode(anm_bytes in, char* out, size_t outCap, size_t* outLen) {
  if (outLen == nullptr || (in.ptr == nullptr && in.len > 0)) return ANM_ERR_INVALID_ARGUMENT;
  if (in.len > (SIZE_MAX / 4) * 3 - 2) return ANM_ERR_INVALID_ARGUMENT;
  const size_t need = ((in.len + 2) / 3) * 4;
  if (need > 0 && (out == nullptr || outCap < need)) return ANM_ERR_BUFFER_TOO_SMALL;

  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= in.len; i += 3) {
    const uint32_t v = (uint32_t{in.ptr[i]} << 16) | (uint32_t{in.ptr[i + 1]} << 8) | in.ptr[i + 2];
    out[o++] = kBase64Alphabet[(v >> 18) & 0x3F];
    out[o++] = kBase64Alphabet[(v >> 12) & 0x3F];
    out[o++] = kBase64Alphabet[(v >> 6) & 0x3F];
    out[o++] = kBase64Alphabet[v & 0x3F];
  }

  // The last one or two bytes are padded to a full quantum.
  const size_t rest = in.len - i;
  if (rest > 0) {
    uint32_t v = uint32_t{in.ptr[i]} << 16;
    if (rest == 2) v |= uint32_t{in.ptr[i + 1]} << 8;
    out[o++] = kBase64Alphabet[(v >> 18) & 0x3F];
    out[o++] = kBase64Alphabet[(v >> 12) & 0x3F];
    out[o++] = rest == 2 ? kBase64Alphabet[(v >> 6) & 0x3F] : '=';
    out[o++] = '=';
  }
  *outLen = o;
  return ANM_OK;
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

anm_status hostBase64Decode(anm_str in, uint8_t* out, size_t outCap, size_t* outLen) {
  if (outLen == nullptr || (in.ptr == nullptr && in.len > 0)) return ANM_ERR_INVALID_ARGUMENT;
  const std::string_view text = view(in);
  if (text.size() % 4 != 0) return ANM_ERR_INVALID_ARGUMENT;
  if (text.empty()) {
    *outLen = 0;
    return ANM_OK;
  }

  // Validate everything first so that refused input writes nothing: padding only at the very
  // end, at most two '=', and the bits the padding hides must be zero (canonical form).
  size_t pad = 0;
  if (text[text.size() - 1] == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  const size_t dataChars = text.size() - pad;
  for (size_t i = 0; i < dataChars; ++i) {
    if (base64Value(text[i]) < 0) return ANM_ERR_INVALID_ARGUMENT;
  }
  const int last = base64Value(text[dataChars - 1]);
  if (pad == 1 && (last & 0x03) != 0) return ANM_ERR_INVALID_ARGUMENT;
  if (pad == 2 && (last & 0x0F) != 0) return ANM_ERR_INVALID_ARGUMENT;
  const size_t need = (text.size() / 4) * 3 - pad;
  if (out == nullptr || outCap < need) return ANM_ERR_BUFFER_TOO_SMALL;

  // Decode whole quanta; the padded tail contributes its one or two bytes.
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < dataChars; ++i) {
    acc = (acc << 6) | static_cast<uint32_t>(base64Value(text[i]));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = static_cast<uint8_t>((acc >> bits) & 0xFF);
    }
  }
  *outLen = o;
  return ANM_OK;
}

anm_status hostHexEncode(anm_bytes in, char* out, size_t outCap, size_t* outLen) {
  if (outLen == nullptr || (in.ptr == nullptr && in.len > 0)) return ANM_ERR_INVALID_ARGUMENT;
  if (in.len > SIZE_MAX / 2) return ANM_ERR_INVALID_ARGUMENT;
  const size_t need = in.len * 2;
  if (need > 0 && (out == nullptr || outCap < need)) return ANM_ERR_BUFFER_TOO_SMALL;
  for (size_t i = 0; i < in.len; ++i) {
    out[2 * i] = kHexDigits[in.ptr[i] >> 4];
    out[2 * i + 1] = kHexDigits[in.ptr[i] & 0x0F];
  }
  *outLen = need;
  return ANM_OK;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

anm_status hostHexDecode(anm_str in, uint8_t* out, size_t outCap, size_t* outLen) {
  if (outLen == nullptr || (in.ptr == nullptr && in.len > 0)) return ANM_ERR_INVALID_ARGUMENT;
  const std::string_view text = view(in);
  if (text.size() % 2 != 0) return ANM_ERR_INVALID_ARGUMENT;
  for (char c : text) {
    if (hexValue(c) < 0) return ANM_ERR_INVALID_ARGUMENT;
  }
  const size_t need = text.size() / 2;
  if (need > 0 && (out == nullptr || outCap < need)) return ANM_ERR_BUFFER_TOO_SMALL;
  for (size_t i = 0; i < need; ++i) {
    out[i] = static_cast<uint8_t>((hexValue(text[2 * i]) << 4) | hexValue(text[2 * i + 1]));
  }
  *outLen = need;
  return ANM_OK;
}

// ----------------------------------------------------------------------------------------------
// Lookups

bool hostFindHeader(const anm_request* request, anm_str name, size_t n, anm_str* value) {
  if (request == nullptr || value == nullptr || request->headers == nullptr) return false;
  const std::string_view wanted = view(name);
  for (size_t i = 0; i < request->header_count; ++i) {
    const anm_header& header = request->headers[i];
    if (!equalsIgnoreAsciiCase(view(header.name), wanted)) continue;
    if (n > 0) {
      --n;
      continue;
    }
    *value = header.value;
    return true;
  }
  return false;
}

bool hostFindOption(const anm_settings* settings, anm_str key, anm_str* value) {
  if (settings == nullptr || value == nullptr || settings->options == nullptr) return false;
  const std::string_view wanted = view(key);
  bool found = false;
  for (size_t i = 0; i < settings->option_count; ++i) {
    if (view(settings->options[i].key) != wanted) continue;
    *value = settings->options[i].value;
    found = true;
  }
  return found;
}

// A forward-only scanner over one JSON text. It decodes only the member names and the one value
// it is asked for and skips everything else, so a large body is read at most once and only up to
// the member that was looked for.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool atEnd() const { return p_ == end_; }
  char peek() const { return *p_; }
  void advance() { ++p_; }

  void skipWhitespace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  // Reads the string at the cursor (which must be a '"'), appending its decoded UTF-8 to `out`
  // unless `out` is null. Returns false for anything that is not a valid JSON string.
  bool readString(std::string* out) {
    if (p_ == end_ || *p_ != '"') return false;
    ++p_;
    while (p_ != end_) {
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') {
        if (out != nullptr) out->push_back(static_cast<char>(c));
        continue;
      }
      if (!readEscape(out)) return false;
    }
    return false;
  }

  // Skips one value of any kind, nested objects and arrays included.
  bool skipValue() {
    if (p_ == end_) return false;
    if (*p_ == '"') return readString(nullptr);
    if (*p_ != '{' && *p_ != '[') return skipScalar();

    // Brackets are matched with an explicit stack so that deep nesting cannot exhaust the
    // call stack; strings inside are skipped whole so their brackets do not count.
    std::string open;
    while (p_ != end_) {
      const char c = *p_;
      if (c == '"') {
        if (!readString(nullptr)) return false;
        continue;
      }
      ++p_;
      if (c == '{' || c == '[') {
        open.push_back(c);
        continue;
      }
      if (c == '}' || c == ']') {
        if (open.empty() || open.back() != (c == '}' ? '{' : '[')) return false;
        open.pop_back();
        if (open.empty()) return true;
      }
    }
    return false;
  }

 private:
  bool skipScalar() {
    const char first = *p_;
    if (!(first == '-' || (first >= '0' && first <= '9') || first == 't' || first == 'f' ||
          first == 'n')) {
      return false;
    }
    while (p_ != end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\t' &&
           *p_ != '\n' && *p_ != '\r') {
      ++p_;
    }
    return true;
  }

  bool readHex4(uint32_t* value) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = hexValue(*p_++);
      if (digit < 0) return false;
      v = (v << 4) | static_cast<uint32_t>(digit);
    }
    *value = v;
    return true;
  }

  // Decodes the escape after a backslash. \u escapes become UTF-8; a surrogate pair becomes
  // one code point; a lone surrogate is refused because it has no UTF-8 form.
  bool readEscape(std::string* out) {
    if (p_ == end_) return false;
    const char e = *p_++;
    char simple = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        simple = e;
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'n':
        simple = '\n';
        break;
      case 'r':
        simple = '\r';
        break;
      case 't':
        simple = '\t';
        break;
      case 'u':
        break;
      default:
        return false;
    }
    if (e != 'u') {
      if (out != nullptr) out->push_back(simple);
      return true;
    }

    uint32_t cp = 0;
    if (!readHex4(&cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
      p_ += 2;
      if (!readHex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (out != nullptr) appendUtf8(cp, out);
    return true;
  }

  static void appendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  const char* p_;
  const char* end_;
};

anm_status hostJsonFindString(anm_bytes json, anm_str key, char* out, size_t outCap,
                              size_t* outLen) {
  if (outLen == nullptr || (json.ptr == nullptr && json.len > 0)) return ANM_ERR_INVALID_ARGUMENT;
  const std::string_view wanted = view(key);
  JsonScanner scanner(view(json));

  // Only an object has members.
  scanner.skipWhitespace();
  if (scanner.atEnd() || scanner.peek() != '{') return ANM_ERR_INVALID_ARGUMENT;
  scanner.advance();
  scanner.skipWhitespace();
  if (!scanner.atEnd() && scanner.peek() == '}') return ANM_ERR_INVALID_ARGUMENT;

  // Walk the members in order; the first one with the wanted name decides.
  std::string name;
  while (true) {
    name.clear();
    if (!scanner.readString(&name)) return ANM_ERR_INVALID_ARGUMENT;
    scanner.skipWhitespace();
    if (scanner.atEnd() || scanner.peek() != ':') return ANM_ERR_INVALID_ARGUMENT;
    scanner.advance();
    scanner.skipWhitespace();
    if (scanner.atEnd()) return ANM_ERR_INVALID_ARGUMENT;

    if (name == wanted) {
      if (scanner.peek() != '"') return ANM_ERR_INVALID_ARGUMENT;
      std::string value;
      if (!scanner.readString(&value)) return ANM_ERR_INVALID_ARGUMENT;
      *outLen = value.size();
      if (value.size() > outCap || (out == nullptr && !value.empty())) {
        return ANM_ERR_BUFFER_TOO_SMALL;
      }
      if (!value.empty()) std::memcpy(out, value.data(), value.size());
      return ANM_OK;
    }
    if (!scanner.skipValue()) return ANM_ERR_INVALID_ARGUMENT;

    scanner.skipWhitespace();
    if (scanner.atEnd()) return ANM_ERR_INVALID_ARGUMENT;
    if (scanner.peek() == '}') return ANM_ERR_INVALID_ARGUMENT;
    if (scanner.peek() != ',') return ANM_ERR_INVALID_ARGUMENT;
    scanner.advance();
    scanner.skipWhitespace();
  }
}

// ----------------------------------------------------------------------------------------------
// Results

void hostResultSetVerdict(anm_result* result, anm_verdict verdict, anm_reason reason,
                          anm_str message) {
  if (result == nullptr) return;
  Outcome& outcome = result->outcome;
  result->hasVerdict = true;

  // An unknown verdict number cannot be trusted to mean "valid": it counts as a failure.
  if (verdict != ANM_VERDICT_VALID && verdict != ANM_VERDICT_INVALID &&
      verdict != ANM_VERDICT_UNSIGNED) {
    outcome.verdict = store::Verdict::kInvalid;
    outcome.reason = ANM_REASON_INTERNAL;
    outcome.message = "plugin reported unknown verdict " + std::to_string(verdict);
    return;
  }
  outcome.verdict = static_cast<store::Verdict>(verdict);
  outcome.reason = reason;
  outcome.message = cutUtf8(view(message), kMaxResultMessageBytes);
}

void hostResultSetEvent(anm_result* result, anm_str eventType, anm_str deliveryId) {
  if (result == nullptr) return;
  result->outcome.eventType = cutUtf8(view(eventType), kMaxEventFieldBytes);
  result->outcome.deliveryId = cutUtf8(view(deliveryId), kMaxEventFieldBytes);
}

void hostResultSetResponse(anm_result* result, int32_t status, anm_str contentType,
                           anm_bytes body) {
  if (result == nullptr) return;

  // A refused response leaves the edge's default answer in place and says why.
  if (status < 200 || status > 299) {
    result->problem = "response status " + std::to_string(status) + " is not 200..299";
    return;
  }
  if (contentType.len > kMaxResponseContentTypeBytes) {
    result->problem = "response content type is longer than " +
                      std::to_string(kMaxResponseContentTypeBytes) + " bytes";
    return;
  }
  if (body.len > kMaxResponseBodyBytes) {
    result->problem =
        "response body is larger than " + std::to_string(kMaxResponseBodyBytes) + " bytes";
    return;
  }
  Response response;
  response.status = status;
  response.contentType = std::string(view(contentType));
  response.body = std::string(view(body));
  result->outcome.response = std::move(response);
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// The per-plugin table

// NOTE: `api` must stay the first member and the block standard-layout: host->log turns the
// table pointer it receives back into the block to find the plugin's logger.
struct HostApi::Block {
  anm_host_api api;
  Poco::Logger* logger;
  char provider[64];
};

namespace {

void hostLog(const anm_host_api* host, anm_log_level level, anm_str message) {
  if (host == nullptr) return;
  const auto* block = reinterpret_cast<const HostApi::Block*>(host);

  Poco::Message::Priority priority = Poco::Message::PRIO_WARNING;
  switch (level) {
    case ANM_LOG_DEBUG:
      priority = Poco::Message::PRIO_DEBUG;
      break;
    case ANM_LOG_INFO:
      priority = Poco::Message::PRIO_INFORMATION;
      break;
    case ANM_LOG_WARNING:
      priority = Poco::Message::PRIO_WARNING;
      break;
    case ANM_LOG_ERROR:
      priority = Poco::Message::PRIO_ERROR;
      break;
    default:
      break;
  }
  if (!block->logger->is(priority)) return;

  // One plugin call gives one log line: control characters (a header value echoed into a
  // message could carry CR/LF) become spaces, and the text is capped.
  std::string text = block->provider;
  text += ": ";
  const std::string_view body = view(message);
  const size_t keep = std::min(body.size(), kMaxPluginLogBytes);
  for (size_t i = 0; i < keep; ++i) {
    const unsigned char c = static_cast<unsigned char>(body[i]);
    text.push_back((c < 0x20 || c == 0x7F) ? ' ' : static_cast<char>(c));
  }
  if (body.size() > keep) text += "...";
  block->logger->log(Poco::Message(block->logger->name(), text, priority));
}

}  // namespace

HostApi::HostApi(const std::string& provider) : block_(std::make_unique<Block>()) {
  std::memset(&block_->api, 0, sizeof(block_->api));
  block_->api.struct_size = sizeof(anm_host_api);
  block_->api.abi_major = ANM_ABI_MAJOR;
  block_->api.abi_minor = ANM_ABI_MINOR;
  block_->api.log = hostLog;
  block_->api.hmac = hostHmac;
  block_->api.digest = hostDigest;
  block_->api.equal_constant_time = hostEqualConstantTime;
  block_->api.base64_encode = hostBase64Encode;
  block_->api.base64_decode = hostBase64Decode;
  block_->api.hex_encode = hostHexEncode;
  block_->api.hex_decode = hostHexDecode;
  block_->api.find_header = hostFindHeader;
  block_->api.find_option = hostFindOption;
  block_->api.json_find_string = hostJsonFindString;
  block_->api.result_set_verdict = hostResultSetVerdict;
  block_->api.result_set_event = hostResultSetEvent;
  block_->api.result_set_response = hostResultSetResponse;

  block_->logger = &Poco::Logger::get("anm.plugin." + provider);
  std::memset(block_->provider, 0, sizeof(block_->provider));
  std::memcpy(block_->provider, provider.data(),
              std::min(provider.size(), sizeof(block_->provider) - 1));
}

HostApi::~HostApi() = default;

const anm_host_api* HostApi::table() const { return &block_->api; }

ResultCollector::ResultCollector() : result_(std::make_unique<anm_result>()) {
  // Until the plugin says otherwise, nothing was verified.
  result_->outcome.verdict = store::Verdict::kInvalid;
  result_->outcome.reason = ANM_REASON_INTERNAL;
}

ResultCollector::~ResultCollector() = default;

anm_result* ResultCollector::handle() { return result_.get(); }

bool ResultCollector::hasVerdict() const { return result_->hasVerdict; }

const Outcome& ResultCollector::outcome() const { return result_->outcome; }

const std::string& ResultCollector::problem() const { return result_->problem; }

}  // namespace anm::plugin
