// plugins/shopify/shopify.c: verifies Shopify's X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: the standard, padded base64 of the HMAC-SHA256 of the raw body under the app's
// client secret. Shopify signs no timestamp; X-Shopify-Topic names the event and
// X-Shopify-Webhook-Id (older deliveries: X-Shopify-Event-Id) identifies the delivery.

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "anonymily/plugin.h"

#define SHA256_LEN 32

// base64 of 32 bytes is 44 characters with its padding.
#define SHA256_BASE64_LEN 44

// Topics and ids longer than this are not recorded (they would not be Shopify's).
#define MAX_LABEL 256

#define LIT(s) ((anm_str){(s), sizeof(s) - 1})

static anm_str cstr(const char* s) {
  anm_str v = {s, strlen(s)};
  return v;
}

static void writeErr(char* err, size_t errCap, const char* text) {
  if (err != NULL && errCap > 0) {
    snprintf(err, errCap, "%s", text);
  }
}

static anm_status verdict(const anm_host_api* host, anm_result* result, anm_verdict v,
                          anm_reason why, const char* message) {
  host->result_set_verdict(result, v, why, cstr(message));
  return ANM_OK;
}

static anm_status shopifyInit(const anm_host_api* host, void** state, char* err, size_t errCap) {
  // The host table is all the state there is; it stays valid until shutdown.
  if (!ANM_HAS_MEMBER(host, anm_host_api, result_set_response)) {
    writeErr(err, errCap, "host api table is too small for abi 1.0");
    return ANM_ERR_UNSUPPORTED;
  }
  *state = (void*)(uintptr_t)host;
  return ANM_OK;
}

static anm_status shopifyCheckSettings(void* state, const anm_settings* settings, char* err,
                                       size_t errCap) {
  (void)state;

  // Shopify has no provider options: anything given is a typo or meant for another provider.
  if (settings->option_count > 0) {
    anm_str key = settings->options[0].key;
    snprintf(err, errCap, "unknown option \"%.*s\"; shopify takes no options",
             (int)(key.len > 64 ? 64 : key.len), key.ptr ? key.ptr : "");
    return ANM_ERR_INVALID_ARGUMENT;
  }

  // Shopify signs no timestamp, so any window is accepted and has no effect.
  if (settings->tolerance_s < ANM_TOLERANCE_DEFAULT) {
    snprintf(err, errCap,
             "tolerance_s must be -1 (default), 0 or a number of seconds, not %" PRId64,
             settings->tolerance_s);
    return ANM_ERR_INVALID_ARGUMENT;
  }
  return ANM_OK;
}

// Records the topic and the delivery id whatever the verdict.
static void recordEvent(const anm_host_api* host, const anm_request* request, anm_result* result) {
  anm_str topic = {NULL, 0};
  anm_str id = {NULL, 0};
  if (!host->find_header(request, LIT("X-Shopify-Topic"), 0, &topic) || topic.len > MAX_LABEL) {
    topic.ptr = NULL;
    topic.len = 0;
  }
  if (!host->find_header(request, LIT("X-Shopify-Webhook-Id"), 0, &id) || id.len == 0) {
    if (!host->find_header(request, LIT("X-Shopify-Event-Id"), 0, &id)) {
      id.len = 0;
    }
  }
  if (id.len == 0 || id.len > MAX_LABEL) {
    id.ptr = NULL;
    id.len = 0;
  }
  host->result_set_event(result, topic, id);
}

static anm_status shopifyVerify(void* state, const anm_settings* settings,
                                const anm_request* request, anm_result* result, char* err,
                                size_t errCap) {
  const anm_host_api* host = (const anm_host_api*)state;

  recordEvent(host, request, result);

  // Without the app secret nothing can be verified.
  if (settings->secret.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SECRET_MISSING,
                   "the hook has no signing secret; set the app's client secret");
  }

  anm_str header;
  if (!host->find_header(request, LIT("X-Shopify-Hmac-Sha256"), 0, &header)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING,
                   "no X-Shopify-Hmac-Sha256 header");
  }
  if (header.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "X-Shopify-Hmac-Sha256 is empty");
  }

  // The value must be exactly one base64-encoded SHA-256 digest.
  uint8_t received[48];
  size_t receivedLen = 0;
  if (header.len != SHA256_BASE64_LEN ||
      host->base64_decode(header, received, sizeof received, &receivedLen) != ANM_OK ||
      receivedLen != SHA256_LEN) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "X-Shopify-Hmac-Sha256 is not the base64 of a sha-256 digest");
  }

  uint8_t expected[64];
  size_t expectedLen = 0;
  anm_status st = host->hmac(ANM_HASH_SHA256, settings->secret, &request->body, 1, expected,
                             sizeof expected, &expectedLen);
  if (st != ANM_OK || expectedLen != SHA256_LEN) {
    snprintf(err, errCap, "could not compute hmac-sha256 status=%d", (int)st);
    return ANM_ERR_INTERNAL;
  }
  anm_bytes a = {received, SHA256_LEN};
  anm_bytes b = {expected, SHA256_LEN};
  if (!host->equal_constant_time(a, b)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                   "X-Shopify-Hmac-Sha256 does not match the secret");
  }
  return verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK, "X-Shopify-Hmac-Sha256 matches");
}

static const anm_plugin kShopifyPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "shopify",
    .version = "1.0.0",
    .summary = "Shopify webhooks: X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256)",
    .init = shopifyInit,
    .shutdown = NULL,
    .check_settings = shopifyCheckSettings,
    .verify = shopifyVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kShopifyPlugin; }
