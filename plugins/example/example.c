/* plugins/example/example.c: the "example" provider, an HMAC-SHA256 signature of the body.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A sender signs a webhook by putting the lower-case hex HMAC-SHA256 of the raw body, keyed
 * with the hook's secret, in the X-Example-Signature header. Upper-case hex is accepted too.
 * The plugin takes no options and has no timestamp, so tolerance_s is ignored. */
#include <anonymily/plugin.h>
#include <stdio.h>
#include <string.h>

#ifndef ANM_EXAMPLE_VERSION
#define ANM_EXAMPLE_VERSION "1.0.0"
#endif

#define EXAMPLE_HEADER "X-Example-Signature"
#define EXAMPLE_MAC_BYTES 32

/* The host table is the same for every call, so one copy per process is enough. */
static const anm_host_api* g_host;

static anm_str example_text(const char* text) {
  anm_str out;
  out.ptr = text;
  out.len = strlen(text);
  return out;
}

static void example_verdict(anm_result* result, anm_verdict verdict, anm_reason reason,
                            const char* message) {
  g_host->result_set_verdict(result, verdict, reason, example_text(message));
}

static anm_status example_init(const anm_host_api* host, void** state, char* err, size_t err_cap) {
  *state = NULL;
  if (host->struct_size < sizeof(anm_host_api)) {
    snprintf(err, err_cap, "host table is smaller than this plugin needs");
    return ANM_ERR_UNSUPPORTED;
  }
  g_host = host;
  return ANM_OK;
}

/* The example provider has no options: any option is a typo worth refusing early. */
static anm_status example_check_settings(void* state, const anm_settings* settings, char* err,
                                         size_t err_cap) {
  (void)state;
  if (settings->option_count > 0) {
    const anm_option* first = &settings->options[0];
    snprintf(err, err_cap, "the example provider takes no options, got \"%.*s\"",
             (int)(first->key.len > 64 ? 64 : first->key.len), first->key.ptr);
    return ANM_ERR_INVALID_ARGUMENT;
  }
  return ANM_OK;
}

static anm_status example_verify(void* state, const anm_settings* settings,
                                 const anm_request* request, anm_result* result, char* err,
                                 size_t err_cap) {
  anm_str header;
  uint8_t received[EXAMPLE_MAC_BYTES];
  size_t received_len = 0;
  uint8_t computed[64];
  size_t computed_len = 0;
  anm_bytes received_view;
  anm_bytes computed_view;
  (void)state;

  if (settings->secret.len == 0) {
    example_verdict(result, ANM_VERDICT_INVALID, ANM_REASON_SECRET_MISSING,
                    "hook has no secret to check the signature with");
    return ANM_OK;
  }
  if (!g_host->find_header(request, example_text(EXAMPLE_HEADER), 0, &header)) {
    example_verdict(result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING,
                    "x-example-signature header is missing");
    return ANM_OK;
  }

  /* Exactly 64 hex characters; anything else cannot be a SHA-256 MAC. */
  if (header.len != 2 * EXAMPLE_MAC_BYTES ||
      g_host->hex_decode(header, received, sizeof(received), &received_len) != ANM_OK) {
    example_verdict(result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                    "x-example-signature is not 64 hex characters");
    return ANM_OK;
  }

  if (g_host->hmac(ANM_HASH_SHA256, settings->secret, &request->body, 1, computed, sizeof(computed),
                   &computed_len) != ANM_OK) {
    snprintf(err, err_cap, "could not compute HMAC-SHA256");
    return ANM_ERR_INTERNAL;
  }
  received_view.ptr = received;
  received_view.len = received_len;
  computed_view.ptr = computed;
  computed_view.len = computed_len;
  if (!g_host->equal_constant_time(received_view, computed_view)) {
    example_verdict(result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                    "signature does not match the body");
    return ANM_OK;
  }
  example_verdict(result, ANM_VERDICT_VALID, ANM_REASON_OK, "signature matches");
  return ANM_OK;
}

static const anm_plugin kExamplePlugin = {
    sizeof(anm_plugin),
    ANM_ABI_MAJOR,
    0, /* uses only 1.0 services */
    "example",
    ANM_EXAMPLE_VERSION,
    "HMAC-SHA256 hex of the body in X-Example-Signature",
    example_init,
    NULL,
    example_check_settings,
    example_verify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kExamplePlugin; }
