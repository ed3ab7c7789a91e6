// plugins/razorpay/razorpay.c: verifies Razorpay's X-Razorpay-Signature (hex HMAC-SHA256).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: the lower-case hex HMAC-SHA256 of the raw body under the webhook secret chosen in
// the Razorpay dashboard (not the API key secret, which signs checkout callbacks). Razorpay
// signs no timestamp; the body's top-level "event" names the event and X-Razorpay-Event-Id
// identifies it.

#include "anm_plugin_common.h"
#include "anonymily/plugin.h"

// Razorpay's one signature header: the bare hex HMAC-SHA256 of the body.
static const anm_common_signature_header kSignatureHeader = {
    "X-Razorpay-Signature", "", ANM_COMMON_ENCODING_HEX, ANM_HASH_SHA256};

static anm_status razorpayCheckSettings(void* state, const anm_settings* settings, char* err,
                                        size_t errCap) {
  (void)state;

  // Razorpay has no provider options, and signs no timestamp, so any window has no effect.
  return anm_common_check_settings_without_options(settings, "razorpay", ANM_COMMON_NO_TIMESTAMP,
                                                   err, errCap);
}

// Records the body's "event" and the X-Razorpay-Event-Id header whatever the verdict.
static void recordEvent(const anm_host_api* host, const anm_request* request, anm_result* result) {
  char type[ANM_COMMON_MAX_LABEL];
  host->result_set_event(result,
                         anm_common_json_label(host, request->body, "event", type, sizeof type),
                         anm_common_header_label(host, request, "X-Razorpay-Event-Id"));
}

static anm_status razorpayVerify(void* state, const anm_settings* settings,
                                 const anm_request* request, anm_result* result, char* err,
                                 size_t errCap) {
  const anm_host_api* host = anm_common_host(state);

  recordEvent(host, request, result);

  // Without the webhook secret nothing can be verified.
  if (!anm_common_require_secret(host, settings, result, "the webhook secret")) {
    return ANM_OK;
  }

  return anm_common_find_and_verify_body_hmac(host, settings, request, result, &kSignatureHeader,
                                              err, errCap);
}

static const anm_plugin kRazorpayPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "razorpay",
    .version = "1.0.0",
    .summary = "Razorpay webhooks: X-Razorpay-Signature (hex HMAC-SHA256)",
    .init = anm_common_init_host_state,
    .shutdown = NULL,
    .check_settings = razorpayCheckSettings,
    .verify = razorpayVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kRazorpayPlugin; }
