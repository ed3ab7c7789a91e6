// plugins/stripe/stripe.c: verifies Stripe's Stripe-Signature header (t=<unix>,v1=<hex>).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: HMAC-SHA256 under the whole endpoint secret (its "whsec_" prefix included) over
// "<t>.<body>", sent as lower-case hex in one or more v1= elements. The header may carry
// several v1= elements while a secret is being rolled and v0= test signatures; any matching
// v1 is enough, other schemes are ignored.

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "anonymily/plugin.h"

// Stripe's documented default window between the signed t= and the time of receipt.
#define STRIPE_DEFAULT_TOLERANCE_S 300

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

// Event types and ids longer than this are not recorded (they would not be Stripe's).
#define MAX_LABEL 256

// Unix timestamps longer than this cannot come from a real clock and could overflow int64.
#define MAX_TIMESTAMP_DIGITS 18

#define LIT(s) ((anm_str){(s), sizeof(s) - 1})

static anm_str cstr(const char* s) {
  anm_str v = {s, strlen(s)};
  return v;
}

static bool strEquals(anm_str a, const char* b) {
  size_t n = strlen(b);
  return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

static anm_str trim(anm_str s) {
  while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
    ++s.ptr;
    --s.len;
  }
  while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
    --s.len;
  }
  return s;
}

static void writeErr(char* err, size_t errCap, const char* text) {
  if (err != NULL && errCap > 0) {
    snprintf(err, errCap, "%s", text);
  }
}

// Parses a plain run of decimal digits; no sign, no spaces.
static bool parseUnixSeconds(anm_str s, int64_t* out) {
  if (s.len == 0 || s.len > MAX_TIMESTAMP_DIGITS) {
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

// Judges the signed time against the time of receipt in whole seconds, as Stripe's own
// libraries do: a skew of exactly the tolerance is still inside.
static bool withinWindow(int64_t receivedAtMs, int64_t signedAt, int64_t toleranceS, char* message,
                         size_t cap) {
  if (toleranceS == 0) {
    return true;
  }
  if (toleranceS < 0) {
    toleranceS = STRIPE_DEFAULT_TOLERANCE_S;
  }

  // Floor division, so that a receipt time before 1970 still rounds towards the past.
  int64_t nowS = receivedAtMs / 1000;
  if (receivedAtMs % 1000 < 0) {
    --nowS;
  }

  // Both operands are bounded (|nowS| < 9.3e15, signedAt < 1e18), so this cannot overflow.
  int64_t skew = nowS - signedAt;
  if (skew > toleranceS) {
    snprintf(message, cap, "timestamp is %" PRId64 " s old, outside the %" PRId64 " s tolerance",
             skew, toleranceS);
    return false;
  }
  if (skew < -toleranceS) {
    snprintf(message, cap,
             "timestamp is %" PRId64 " s in the future, outside the %" PRId64 " s tolerance", -skew,
             toleranceS);
    return false;
  }
  return true;
}

static anm_status stripeInit(const anm_host_api* host, void** state, char* err, size_t errCap) {
  // The host table is all the state there is; it stays valid until shutdown.
  if (!ANM_HAS_MEMBER(host, anm_host_api, result_set_response)) {
    writeErr(err, errCap, "host api table is too small for abi 1.0");
    return ANM_ERR_UNSUPPORTED;
  }
  *state = (void*)(uintptr_t)host;
  return ANM_OK;
}

static anm_status stripeCheckSettings(void* state, const anm_settings* settings, char* err,
                                      size_t errCap) {
  (void)state;

  // Stripe has no provider options: anything given is a typo or meant for another provider.
  if (settings->option_count > 0) {
    anm_str key = settings->options[0].key;
    snprintf(err, errCap, "unknown option \"%.*s\"; stripe takes no options",
             (int)(key.len > 64 ? 64 : key.len), key.ptr ? key.ptr : "");
    return ANM_ERR_INVALID_ARGUMENT;
  }

  if (settings->tolerance_s < ANM_TOLERANCE_DEFAULT) {
    snprintf(err, errCap,
             "tolerance_s must be -1 (default %d s), 0 (no window) or a number of seconds, "
             "not %" PRId64,
             STRIPE_DEFAULT_TOLERANCE_S, settings->tolerance_s);
    return ANM_ERR_INVALID_ARGUMENT;
  }
  return ANM_OK;
}

// Records the top-level "type" and "id" of the event object, whatever the verdict, so that a
// refused request can still be recognised in listings.
static void recordEvent(const anm_host_api* host, anm_bytes body, anm_result* result) {
  char type[MAX_LABEL];
  char id[MAX_LABEL];
  size_t typeLen = 0;
  size_t idLen = 0;
  if (host->json_find_string(body, LIT("type"), type, sizeof type, &typeLen) != ANM_OK) {
    typeLen = 0;
  }
  if (host->json_find_string(body, LIT("id"), id, sizeof id, &idLen) != ANM_OK) {
    idLen = 0;
  }
  anm_str typeView = {type, typeLen};
  anm_str idView = {id, idLen};
  host->result_set_event(result, typeView, idView);
}

static anm_status verdict(const anm_host_api* host, anm_result* result, anm_verdict v,
                          anm_reason why, const char* message) {
  host->result_set_verdict(result, v, why, cstr(message));
  return ANM_OK;
}

// Walks the comma-separated elements of the header, skipping empty ones, each split at its
// first '='. nextElement returns false at the end, or early with *malformed set when an
// element has no '='.
typedef struct {
  anm_str rest;
} ElementCursor;

static bool nextElement(ElementCursor* c, anm_str* key, anm_str* value, bool* malformed) {
  *malformed = false;
  while (c->rest.len > 0) {
    const char* comma = memchr(c->rest.ptr, ',', c->rest.len);
    size_t len = comma ? (size_t)(comma - c->rest.ptr) : c->rest.len;
    anm_str element = {c->rest.ptr, len};
    c->rest.ptr += comma ? len + 1 : len;
    c->rest.len -= comma ? len + 1 : len;
    element = trim(element);
    if (element.len == 0) {
      continue;
    }
    const char* eq = memchr(element.ptr, '=', element.len);
    if (eq == NULL) {
      *malformed = true;
      return false;
    }
    key->ptr = element.ptr;
    key->len = (size_t)(eq - element.ptr);
    value->ptr = eq + 1;
    value->len = element.len - key->len - 1;
    return true;
  }
  return false;
}

static anm_status stripeVerify(void* state, const anm_settings* settings,
                               const anm_request* request, anm_result* result, char* err,
                               size_t errCap) {
  const anm_host_api* host = (const anm_host_api*)state;
  char message[160];

  recordEvent(host, request->body, result);

  // Without the endpoint secret nothing can be verified.
  if (settings->secret.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SECRET_MISSING,
                   "the hook has no signing secret; set the endpoint's whsec_ secret");
  }

  anm_str header;
  if (!host->find_header(request, LIT("Stripe-Signature"), 0, &header)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING,
                   "no Stripe-Signature header");
  }
  if (trim(header).len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "Stripe-Signature is empty");
  }

  // First pass: find the one timestamp and check that every element is key=value.
  anm_str timestamp = {NULL, 0};
  size_t timestampCount = 0;
  size_t v1Count = 0;
  size_t v0Count = 0;
  ElementCursor cursor = {header};
  anm_str key;
  anm_str value;
  bool malformed = false;
  while (nextElement(&cursor, &key, &value, &malformed)) {
    if (strEquals(key, "t")) {
      timestamp = value;
      ++timestampCount;
    } else if (strEquals(key, "v1")) {
      ++v1Count;
    } else if (strEquals(key, "v0")) {
      ++v0Count;
    }
  }
  if (malformed) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "Stripe-Signature has an element without \"=\"");
  }
  if (timestampCount == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_MISSING,
                   "Stripe-Signature has no t= timestamp");
  }
  if (timestampCount > 1) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "Stripe-Signature has more than one t= timestamp");
  }
  int64_t signedAt = 0;
  if (!parseUnixSeconds(timestamp, &signedAt)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "Stripe-Signature t= is not a unix timestamp in seconds");
  }
  if (v1Count == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                   v0Count > 0 ? "Stripe-Signature has only v0 signatures; v1 is required"
                               : "Stripe-Signature has no v1 signature");
  }

  // The signed payload is "<t>.<body>"; the body is passed as a part, never copied.
  anm_bytes parts[3] = {
      {(const uint8_t*)timestamp.ptr, timestamp.len},
      {(const uint8_t*)".", 1},
      request->body,
  };
  uint8_t expected[64];
  size_t expectedLen = 0;
  anm_status st = host->hmac(ANM_HASH_SHA256, settings->secret, parts, 3, expected, sizeof expected,
                             &expectedLen);
  if (st != ANM_OK || expectedLen != SHA256_LEN) {
    snprintf(err, errCap, "could not compute hmac-sha256 status=%d", (int)st);
    return ANM_ERR_INTERNAL;
  }
  anm_bytes expectedView = {expected, SHA256_LEN};

  // Second pass: any well-formed v1 that matches is enough (several exist while rolling).
  bool matched = false;
  size_t badV1 = 0;
  cursor.rest = header;
  while (nextElement(&cursor, &key, &value, &malformed)) {
    if (!strEquals(key, "v1")) {
      continue;
    }
    uint8_t candidate[SHA256_LEN];
    size_t candidateLen = 0;
    if (value.len != SHA256_HEX_LEN ||
        host->hex_decode(value, candidate, sizeof candidate, &candidateLen) != ANM_OK ||
        candidateLen != SHA256_LEN) {
      ++badV1;
      continue;
    }
    anm_bytes candidateView = {candidate, SHA256_LEN};
    if (host->equal_constant_time(candidateView, expectedView)) {
      matched = true;
    }
  }
  if (!matched) {
    if (badV1 == v1Count) {
      return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                     "Stripe-Signature v1= is not 64 hex digits");
    }
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                   "no v1 signature matches the secret");
  }

  // Only a genuine signature gets its age judged, so the reason names the real problem.
  if (!withinWindow(request->received_at_ms, signedAt, settings->tolerance_s, message,
                    sizeof message)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_OUTSIDE, message);
  }
  return verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK, "v1 signature matches");
}

static const anm_plugin kStripePlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "stripe",
    .version = "1.0.0",
    .summary = "Stripe webhooks: Stripe-Signature t=,v1= (HMAC-SHA256, 300 s window)",
    .init = stripeInit,
    .shutdown = NULL,
    .check_settings = stripeCheckSettings,
    .verify = stripeVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kStripePlugin; }
