// plugins/common/anm_plugin_common.c: parsing and verdict helpers the built-in providers share.
// SPDX-License-Identifier: Apache-2.0

#include "anm_plugin_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

// Room for a verdict message built from a header name and a prefix.
#define MESSAGE_CAP 160

anm_str anm_common_cstr(const char* s) {
  anm_str v = {s, strlen(s)};
  return v;
}

bool anm_common_str_equals(anm_str a, const char* b) {
  size_t n = strlen(b);
  return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

bool anm_common_starts_with(anm_str a, const char* prefix) {
  size_t n = strlen(prefix);
  return a.len >= n && (n == 0 || memcmp(a.ptr, prefix, n) == 0);
}

anm_str anm_common_trim(anm_str s) {
  while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
    ++s.ptr;
    --s.len;
  }
  while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
    --s.len;
  }
  return s;
}

void anm_common_write_err(char* err, size_t err_cap, const char* text) {
  if (err != NULL && err_cap > 0) {
    snprintf(err, err_cap, "%s", text);
  }
}

anm_status anm_common_init_host_state(const anm_host_api* host, void** state, char* err,
                                      size_t err_cap) {
  // The host table is all the state there is; it stays valid until shutdown.
  if (!ANM_HAS_MEMBER(host, anm_host_api, result_set_response)) {
    anm_common_write_err(err, err_cap, "host api table is too small for abi 1.0");
    return ANM_ERR_UNSUPPORTED;
  }
  *state = (void*)(uintptr_t)host;
  return ANM_OK;
}

const anm_host_api* anm_common_host(void* state) { return (const anm_host_api*)state; }

anm_status anm_common_verdict(const anm_host_api* host, anm_result* result, anm_verdict verdict,
                              anm_reason reason, const char* message) {
  host->result_set_verdict(result, verdict, reason, anm_common_cstr(message));
  return ANM_OK;
}

bool anm_common_require_secret(const anm_host_api* host, const anm_settings* settings,
                               anm_result* result, const char* what) {
  if (settings->secret.len > 0) {
    return true;
  }
  char message[MESSAGE_CAP];
  snprintf(message, sizeof message, "the hook has no signing secret; set %s", what);
  anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SECRET_MISSING, message);
  return false;
}

anm_status anm_common_check_option_keys(const anm_settings* settings, const char* provider,
                                        const char* const* known, size_t known_count, char* err,
                                        size_t err_cap) {
  for (size_t i = 0; i < settings->option_count; ++i) {
    anm_str key = settings->options[i].key;
    bool isKnown = false;
    for (size_t k = 0; k < known_count && !isKnown; ++k) {
      isKnown = anm_common_str_equals(key, known[k]);
    }
    if (isKnown) {
      continue;
    }

    // Name what would have been accepted, so the fix is in the message.
    if (err == NULL || err_cap == 0) {
      return ANM_ERR_INVALID_ARGUMENT;
    }
    if (known_count == 0) {
      snprintf(err, err_cap, "unknown option \"%.*s\"; %s takes no options", ANM_COMMON_QUOTED(key),
               provider);
      return ANM_ERR_INVALID_ARGUMENT;
    }
    int used = snprintf(err, err_cap, "unknown option \"%.*s\"; known: %s", ANM_COMMON_QUOTED(key),
                        known[0]);
    for (size_t k = 1; k < known_count && used >= 0 && (size_t)used < err_cap; ++k) {
      int more = snprintf(err + used, err_cap - (size_t)used, ", %s", known[k]);
      used = more < 0 ? more : used + more;
    }
    return ANM_ERR_INVALID_ARGUMENT;
  }
  return ANM_OK;
}

anm_status anm_common_check_tolerance(const anm_settings* settings, int64_t default_tolerance_s,
                                      char* err, size_t err_cap) {
  if (settings->tolerance_s >= ANM_TOLERANCE_DEFAULT) {
    return ANM_OK;
  }
  if (err == NULL || err_cap == 0) {
    return ANM_ERR_INVALID_ARGUMENT;
  }

  // Without a signed timestamp the window means nothing, so the message promises no default.
  if (default_tolerance_s == ANM_COMMON_NO_TIMESTAMP) {
    snprintf(err, err_cap,
             "tolerance_s must be -1 (default), 0 or a number of seconds, not %" PRId64,
             settings->tolerance_s);
    return ANM_ERR_INVALID_ARGUMENT;
  }
  snprintf(err, err_cap,
           "tolerance_s must be -1 (default %" PRId64
           " s), 0 (no window) or a number of seconds, not %" PRId64,
           default_tolerance_s, settings->tolerance_s);
  return ANM_ERR_INVALID_ARGUMENT;
}

anm_status anm_common_check_settings_without_options(const anm_settings* settings,
                                                     const char* provider,
                                                     int64_t default_tolerance_s, char* err,
                                                     size_t err_cap) {
  anm_status st = anm_common_check_option_keys(settings, provider, NULL, 0, err, err_cap);
  if (st != ANM_OK) {
    return st;
  }
  return anm_common_check_tolerance(settings, default_tolerance_s, err, err_cap);
}

bool anm_common_parse_unix_seconds(anm_str s, int64_t* out) {
  if (s.len == 0 || s.len > ANM_COMMON_MAX_TIMESTAMP_DIGITS) {
    return false;
  }
  int64_t value = 0;
  for (size_t i = 0; i < s.len; ++i) {
    if (s.ptr[i] < '0' || s.ptr[i] > '9') {
      return false;
    }
    value = value * 10 + (s.ptr[i] - '0');
  }
  *out = value;
  return true;
}

bool anm_common_within_tolerance(int64_t received_at_ms, int64_t signed_at_s, int64_t tolerance_s,
                                 int64_t default_tolerance_s, char* message, size_t message_cap) {
  if (tolerance_s == 0) {
    return true;
  }
  if (tolerance_s < 0) {
    tolerance_s = default_tolerance_s;
  }

  // Floor division, so that a receipt time before 1970 still rounds towards the past.
  int64_t nowS = received_at_ms / 1000;
  if (received_at_ms % 1000 < 0) {
    --nowS;
  }

  // Both operands are bounded (|nowS| < 9.3e15, signed_at_s < 1e18), so this cannot overflow.
  int64_t skew = nowS - signed_at_s;
  if (skew > tolerance_s) {
    snprintf(message, message_cap,
             "timestamp is %" PRId64 " s old, outside the %" PRId64 " s tolerance", skew,
             tolerance_s);
    return false;
  }
  if (skew < -tolerance_s) {
    snprintf(message, message_cap,
             "timestamp is %" PRId64 " s in the future, outside the %" PRId64 " s tolerance", -skew,
             tolerance_s);
    return false;
  }
  return true;
}

anm_str anm_common_header_label(const anm_host_api* host, const anm_request* request,
                                const char* name) {
  anm_str empty = {NULL, 0};
  anm_str value;
  if (!host->find_header(request, anm_common_cstr(name), 0, &value) ||
      value.len > ANM_COMMON_MAX_LABEL) {
    return empty;
  }
  return value;
}

anm_str anm_common_json_label(const anm_host_api* host, anm_bytes body, const char* key, char* buf,
                              size_t buf_cap) {
  anm_str label = {buf, 0};
  if (host->json_find_string(body, anm_common_cstr(key), buf, buf_cap, &label.len) != ANM_OK) {
    label.len = 0;
  }
  return label;
}

// What this library knows of each anm_hash: its digest size and how messages name it.
typedef struct {
  anm_hash algorithm;
  size_t digestLen;
  const char* hmacName;    // in "could not compute hmac-<name>" errors
  const char* personName;  // in verdict messages, as a person writes it
} HashInfo;

static const HashInfo kHashes[] = {
    {ANM_HASH_SHA1, 20, "sha1", "sha-1"},
    {ANM_HASH_SHA256, 32, "sha256", "sha-256"},
    {ANM_HASH_SHA512, 64, "sha512", "sha-512"},
};

// The entry for `algorithm`, or one with digestLen 0 for an algorithm not in the table.
static const HashInfo* hashInfo(anm_hash algorithm) {
  static const HashInfo kUnknown = {0, 0, "unknown", "unknown"};
  for (size_t i = 0; i < sizeof kHashes / sizeof kHashes[0]; ++i) {
    if (kHashes[i].algorithm == algorithm) {
      return &kHashes[i];
    }
  }
  return &kUnknown;
}

size_t anm_common_digest_len(anm_hash algorithm) { return hashInfo(algorithm)->digestLen; }

bool anm_common_decode_hex_digest(const anm_host_api* host, anm_str hex, size_t digest_len,
                                  uint8_t* out) {
  // A value of the wrong length is refused before the host decodes anything.
  if (digest_len == 0 || digest_len > ANM_COMMON_MAX_DIGEST || hex.len != digest_len * 2) {
    return false;
  }
  size_t written = 0;
  return host->hex_decode(hex, out, digest_len, &written) == ANM_OK && written == digest_len;
}

bool anm_common_decode_base64_digest(const anm_host_api* host, anm_str text, size_t digest_len,
                                     uint8_t* out) {
  if (digest_len == 0 || digest_len > ANM_COMMON_MAX_DIGEST ||
      text.len != ((digest_len + 2) / 3) * 4) {
    return false;
  }

  // Room for three bytes per four characters, so that no host refuses the buffer however it
  // counts the padding.
  uint8_t decoded[ANM_COMMON_MAX_DIGEST + 3];
  size_t written = 0;
  if (host->base64_decode(text, decoded, sizeof decoded, &written) != ANM_OK ||
      written != digest_len) {
    return false;
  }
  memcpy(out, decoded, digest_len);
  return true;
}

anm_status anm_common_hmac(const anm_host_api* host, anm_hash algorithm, anm_bytes key,
                           const anm_bytes* parts, size_t part_count, uint8_t* out, char* err,
                           size_t err_cap) {
  size_t expectedLen = 0;
  anm_status st =
      host->hmac(algorithm, key, parts, part_count, out, ANM_COMMON_MAX_DIGEST, &expectedLen);
  if (st != ANM_OK || expectedLen == 0 || expectedLen != anm_common_digest_len(algorithm)) {
    if (err != NULL && err_cap > 0) {
      snprintf(err, err_cap, "could not compute hmac-%s status=%d", hashInfo(algorithm)->hmacName,
               (int)st);
    }
    return ANM_ERR_INTERNAL;
  }
  return ANM_OK;
}

anm_status anm_common_hmac_matches(const anm_host_api* host, anm_hash algorithm, anm_bytes key,
                                   const anm_bytes* parts, size_t part_count,
                                   const uint8_t* received, bool* matches, char* err,
                                   size_t err_cap) {
  uint8_t expected[ANM_COMMON_MAX_DIGEST];
  *matches = false;
  anm_status st = anm_common_hmac(host, algorithm, key, parts, part_count, expected, err, err_cap);
  if (st != ANM_OK) {
    return st;
  }

  // Only the host's constant-time comparison may judge a received signature.
  size_t len = anm_common_digest_len(algorithm);
  anm_bytes a = {received, len};
  anm_bytes b = {expected, len};
  *matches = host->equal_constant_time(a, b);
  return ANM_OK;
}

bool anm_common_find_signature_header(const anm_host_api* host, const anm_request* request,
                                      anm_result* result, const char* name, anm_str* value) {
  if (host->find_header(request, anm_common_cstr(name), 0, value)) {
    return true;
  }
  char message[MESSAGE_CAP];
  snprintf(message, sizeof message, "no %s header", name);
  anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING, message);
  return false;
}

// Records why a signature header value is not the digest it should be.
static void recordNotADigest(const anm_host_api* host, anm_result* result,
                             const anm_common_signature_header* spec) {
  char message[MESSAGE_CAP];
  size_t digestLen = anm_common_digest_len(spec->algorithm);
  bool prefixed = spec->prefix[0] != '\0';

  if (spec->encoding == ANM_COMMON_ENCODING_BASE64 && prefixed) {
    snprintf(message, sizeof message, "%s is not \"%s\" and the base64 of a %s digest", spec->name,
             spec->prefix, hashInfo(spec->algorithm)->personName);
  } else if (spec->encoding == ANM_COMMON_ENCODING_BASE64) {
    snprintf(message, sizeof message, "%s is not the base64 of a %s digest", spec->name,
             hashInfo(spec->algorithm)->personName);
  } else if (prefixed) {
    snprintf(message, sizeof message, "%s is not \"%s\" and %zu hex digits", spec->name,
             spec->prefix, digestLen * 2);
  } else {
    snprintf(message, sizeof message, "%s is not %zu hex digits", spec->name, digestLen * 2);
  }
  anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED, message);
}

bool anm_common_decode_signature_header(const anm_host_api* host, anm_result* result,
                                        const anm_common_signature_header* spec, anm_str value,
                                        uint8_t* digest) {
  char message[MESSAGE_CAP];

  if (value.len == 0) {
    snprintf(message, sizeof message, "%s is empty", spec->name);
    anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED, message);
    return false;
  }
  if (!anm_common_starts_with(value, spec->prefix)) {
    snprintf(message, sizeof message, "%s does not start with \"%s\"", spec->name, spec->prefix);
    anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED, message);
    return false;
  }

  // What follows the prefix must be exactly one encoded digest of the algorithm.
  size_t prefixLen = strlen(spec->prefix);
  anm_str encoded = {value.ptr + prefixLen, value.len - prefixLen};
  size_t digestLen = anm_common_digest_len(spec->algorithm);
  bool decoded = spec->encoding == ANM_COMMON_ENCODING_BASE64
                     ? anm_common_decode_base64_digest(host, encoded, digestLen, digest)
                     : anm_common_decode_hex_digest(host, encoded, digestLen, digest);
  if (!decoded) {
    recordNotADigest(host, result, spec);
    return false;
  }
  return true;
}

anm_status anm_common_verify_body_hmac(const anm_host_api* host, const anm_settings* settings,
                                       const anm_request* request, anm_result* result,
                                       const anm_common_signature_header* spec, anm_str value,
                                       char* err, size_t err_cap) {
  char message[MESSAGE_CAP];

  uint8_t received[ANM_COMMON_MAX_DIGEST];
  if (!anm_common_decode_signature_header(host, result, spec, value, received)) {
    return ANM_OK;
  }

  // The body is passed to the host as the one part, never copied.
  bool matches = false;
  anm_status st = anm_common_hmac_matches(host, spec->algorithm, settings->secret, &request->body,
                                          1, received, &matches, err, err_cap);
  if (st != ANM_OK) {
    return st;
  }
  if (!matches) {
    snprintf(message, sizeof message, "%s does not match the secret", spec->name);
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                              message);
  }
  snprintf(message, sizeof message, "%s matches", spec->name);
  return anm_common_verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK, message);
}

anm_status anm_common_find_and_verify_body_hmac(const anm_host_api* host,
                                                const anm_settings* settings,
                                                const anm_request* request, anm_result* result,
                                                const anm_common_signature_header* spec, char* err,
                                                size_t err_cap) {
  anm_str value;
  if (!anm_common_find_signature_header(host, request, result, spec->name, &value)) {
    return ANM_OK;
  }
  return anm_common_verify_body_hmac(host, settings, request, result, spec, value, err, err_cap);
}
