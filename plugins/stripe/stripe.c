// plugins/stripe/stripe.c: verifies Stripe's Stripe-Signature header (t=<unix>,v1=<hex>).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: HMAC-SHA256 under the whole endpoint secret (its "whsec_" prefix included) over
// "<t>.<body>", sent as lower-case hex in one or more v1= elements. The header may carry
// several v1= elements while a secret is being rolled and v0= test signatures; any matching
// v1 is enough, other schemes are ignored.

#include <stdint.h>
#include <string.h>

#include "anm_plugin_common.h"
#include "anonymily/plugin.h"

// Stripe's documented default window between the signed t= and the time of receipt. Stripe's
// own libraries judge it in whole seconds, with a skew of exactly the tolerance still inside,
// which is how anm_common_within_tolerance judges it.
#define STRIPE_DEFAULT_TOLERANCE_S 300

#define SHA256_LEN 32

static anm_status stripeCheckSettings(void* state, const anm_settings* settings, char* err,
                                      size_t errCap) {
  (void)state;

  // Stripe has no provider options: anything given is a typo or meant for another provider.
  return anm_common_check_settings_without_options(settings, "stripe", STRIPE_DEFAULT_TOLERANCE_S,
                                                   err, errCap);
}

// Records the top-level "type" and "id" of the event object, whatever the verdict, so that a
// refused request can still be recognised in listings.
static void recordEvent(const anm_host_api* host, anm_bytes body, anm_result* result) {
  char type[ANM_COMMON_MAX_LABEL];
  char id[ANM_COMMON_MAX_LABEL];
  host->result_set_event(result, anm_common_json_label(host, body, "type", type, sizeof type),
                         anm_common_json_label(host, body, "id", id, sizeof id));
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
    element = anm_common_trim(element);
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
  const anm_host_api* host = anm_common_host(state);
  char message[160];

  recordEvent(host, request->body, result);

  // Without the endpoint secret nothing can be verified.
  if (!anm_common_require_secret(host, settings, result, "the endpoint's whsec_ secret")) {
    return ANM_OK;
  }

  anm_str header;
  if (!anm_common_find_signature_header(host, request, result, "Stripe-Signature", &header)) {
    return ANM_OK;
  }
  if (anm_common_trim(header).len == 0) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
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
    if (anm_common_str_equals(key, "t")) {
      timestamp = value;
      ++timestampCount;
    } else if (anm_common_str_equals(key, "v1")) {
      ++v1Count;
    } else if (anm_common_str_equals(key, "v0")) {
      ++v0Count;
    }
  }
  if (malformed) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                              "Stripe-Signature has an element without \"=\"");
  }
  if (timestampCount == 0) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_MISSING,
                              "Stripe-Signature has no t= timestamp");
  }
  if (timestampCount > 1) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                              "Stripe-Signature has more than one t= timestamp");
  }
  int64_t signedAt = 0;
  if (!anm_common_parse_unix_seconds(timestamp, &signedAt)) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                              "Stripe-Signature t= is not a unix timestamp in seconds");
  }
  if (v1Count == 0) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                              v0Count > 0
                                  ? "Stripe-Signature has only v0 signatures; v1 is required"
                                  : "Stripe-Signature has no v1 signature");
  }

  // The signed payload is "<t>.<body>"; the body is passed as a part, never copied.
  anm_bytes parts[3] = {
      {(const uint8_t*)timestamp.ptr, timestamp.len},
      {(const uint8_t*)".", 1},
      request->body,
  };
  uint8_t expected[ANM_COMMON_MAX_DIGEST];
  anm_status st =
      anm_common_hmac(host, ANM_HASH_SHA256, settings->secret, parts, 3, expected, err, errCap);
  if (st != ANM_OK) {
    return st;
  }
  anm_bytes expectedView = {expected, SHA256_LEN};

  // Second pass: any well-formed v1 that matches is enough (several exist while rolling).
  bool matched = false;
  size_t badV1 = 0;
  cursor.rest = header;
  while (nextElement(&cursor, &key, &value, &malformed)) {
    if (!anm_common_str_equals(key, "v1")) {
      continue;
    }
    uint8_t candidate[SHA256_LEN];
    if (!anm_common_decode_hex_digest(host, value, SHA256_LEN, candidate)) {
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
      return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                                "Stripe-Signature v1= is not 64 hex digits");
    }
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                              "no v1 signature matches the secret");
  }

  // Only a genuine signature gets its age judged, so the reason names the real problem.
  if (!anm_common_within_tolerance(request->received_at_ms, signedAt, settings->tolerance_s,
                                   STRIPE_DEFAULT_TOLERANCE_S, message, sizeof message)) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_OUTSIDE,
                              message);
  }
  return anm_common_verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK, "v1 signature matches");
}

static const anm_plugin kStripePlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "stripe",
    .version = "1.0.0",
    .summary = "Stripe webhooks: Stripe-Signature t=,v1= (HMAC-SHA256, 300 s window)",
    .init = anm_common_init_host_state,
    .shutdown = NULL,
    .check_settings = stripeCheckSettings,
    .verify = stripeVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kStripePlugin; }
