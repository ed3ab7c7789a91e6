// plugins/shopify/shopify.c: verifies Shopify's X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: the standard, padded base64 of the HMAC-SHA256 of the raw body under the app's
// client secret. Shopify signs no timestamp; X-Shopify-Topic names the event and
// X-Shopify-Webhook-Id (older deliveries: X-Shopify-Event-Id) identifies the delivery.

#include <stddef.h>

#include "anm_plugin_common.h"
#include "anonymily/plugin.h"

// Shopify's one signature header: the padded base64 HMAC-SHA256 of the body.
static const anm_common_signature_header kSignatureHeader = {
    "X-Shopify-Hmac-Sha256", "", ANM_COMMON_ENCODING_BASE64, ANM_HASH_SHA256};

static anm_status shopifyCheckSettings(void* state, const anm_settings* settings, char* err,
                                       size_t errCap) {
  (void)state;

  // Shopify has no provider options, and signs no timestamp, so any window has no effect.
  return anm_common_check_settings_without_options(settings, "shopify", ANM_COMMON_NO_TIMESTAMP,
                                                   err, errCap);
}

// Records the topic and the delivery id whatever the verdict.
static void recordEvent(const anm_host_api* host, const anm_request* request, anm_result* result) {
  anm_str topic = anm_common_header_label(host, request, "X-Shopify-Topic");

  // Older deliveries name the delivery only in X-Shopify-Event-Id; an empty Webhook-Id counts
  // as absent, an oversized one as unknown.
  anm_str id;
  if (!host->find_header(request, ANM_COMMON_LIT("X-Shopify-Webhook-Id"), 0, &id) || id.len == 0) {
    id = anm_common_header_label(host, request, "X-Shopify-Event-Id");
  } else if (id.len > ANM_COMMON_MAX_LABEL) {
    id.ptr = NULL;
    id.len = 0;
  }
  host->result_set_event(result, topic, id);
}

static anm_status shopifyVerify(void* state, const anm_settings* settings,
                                const anm_request* request, anm_result* result, char* err,
                                size_t errCap) {
  const anm_host_api* host = anm_common_host(state);

  recordEvent(host, request, result);

  // Without the app secret nothing can be verified.
  if (!anm_common_require_secret(host, settings, result, "the app's client secret")) {
    return ANM_OK;
  }

  return anm_common_find_and_verify_body_hmac(host, settings, request, result, &kSignatureHeader,
                                              err, errCap);
}

static const anm_plugin kShopifyPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "shopify",
    .version = "1.0.0",
    .summary = "Shopify webhooks: X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256)",
    .init = anm_common_init_host_state,
    .shutdown = NULL,
    .check_settings = shopifyCheckSettings,
    .verify = shopifyVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kShopifyPlugin; }
