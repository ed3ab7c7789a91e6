// plugins/github/github.c: verifies GitHub's X-Hub-Signature-256 (and, when allowed, SHA-1).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: "sha256=" followed by the lower-case hex HMAC-SHA256 of the raw body under the
// webhook secret. GitHub still sends the legacy X-Hub-Signature "sha1=<hex>" alongside; it is
// accepted only when the hook sets allow_sha1=true and the SHA-256 header is absent, because
// SHA-1 is kept for old GitHub Enterprise servers, not for new hooks.

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "anm_plugin_common.h"
#include "anonymily/plugin.h"

// The one provider option: whether the legacy SHA-1 header may be accepted.
#define ALLOW_SHA1 "allow_sha1"

// The two headers GitHub signs with, strongest first.
static const anm_common_signature_header kSha256Header = {
    "X-Hub-Signature-256", "sha256=", ANM_COMMON_ENCODING_HEX, ANM_HASH_SHA256};
static const anm_common_signature_header kSha1Header = {
    "X-Hub-Signature", "sha1=", ANM_COMMON_ENCODING_HEX, ANM_HASH_SHA1};

// Reads allow_sha1; a missing option means false. Returns false for any other spelling.
static bool readAllowSha1(const anm_host_api* host, const anm_settings* settings, bool* allow) {
  anm_str value;
  *allow = false;
  if (!host->find_option(settings, ANM_COMMON_LIT(ALLOW_SHA1), &value)) {
    return true;
  }
  if (anm_common_str_equals(value, "true")) {
    *allow = true;
    return true;
  }
  return anm_common_str_equals(value, "false");
}

static anm_status githubCheckSettings(void* state, const anm_settings* settings, char* err,
                                      size_t errCap) {
  const anm_host_api* host = anm_common_host(state);

  // A misspelt option would otherwise silently leave SHA-1 refused.
  static const char* const kKnownOptions[] = {ALLOW_SHA1};
  anm_status st = anm_common_check_option_keys(settings, "github", kKnownOptions, 1, err, errCap);
  if (st != ANM_OK) {
    return st;
  }
  bool allow = false;
  if (!readAllowSha1(host, settings, &allow)) {
    anm_str value;
    host->find_option(settings, ANM_COMMON_LIT(ALLOW_SHA1), &value);
    snprintf(err, errCap, "option allow_sha1 must be \"true\" or \"false\", not \"%.*s\"",
             ANM_COMMON_QUOTED(value));
    return ANM_ERR_INVALID_ARGUMENT;
  }

  // GitHub signs no timestamp, so any window is accepted and has no effect.
  return anm_common_check_tolerance(settings, ANM_COMMON_NO_TIMESTAMP, err, errCap);
}

// Records X-GitHub-Event and X-GitHub-Delivery whatever the verdict.
static void recordEvent(const anm_host_api* host, const anm_request* request, anm_result* result) {
  host->result_set_event(result, anm_common_header_label(host, request, "X-GitHub-Event"),
                         anm_common_header_label(host, request, "X-GitHub-Delivery"));
}

static anm_status githubVerify(void* state, const anm_settings* settings,
                               const anm_request* request, anm_result* result, char* err,
                               size_t errCap) {
  const anm_host_api* host = anm_common_host(state);

  recordEvent(host, request, result);

  // Without the webhook secret nothing can be verified.
  if (!anm_common_require_secret(host, settings, result, "the webhook's secret")) {
    return ANM_OK;
  }

  // SHA-256 wins whenever it is there, even if SHA-1 is allowed.
  anm_str header;
  if (host->find_header(request, anm_common_cstr(kSha256Header.name), 0, &header)) {
    return anm_common_verify_body_hmac(host, settings, request, result, &kSha256Header, header, err,
                                       errCap);
  }

  // Only the legacy header: accepted only when the hook opted in.
  if (host->find_header(request, anm_common_cstr(kSha1Header.name), 0, &header)) {
    bool allow = false;
    if (!readAllowSha1(host, settings, &allow) || !allow) {
      return anm_common_verdict(
          host, result, ANM_VERDICT_INVALID, ANM_REASON_ALGORITHM_REFUSED,
          "only the sha1 X-Hub-Signature is present; set allow_sha1=true to accept it");
    }
    return anm_common_verify_body_hmac(host, settings, request, result, &kSha1Header, header, err,
                                       errCap);
  }
  return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING,
                            "no X-Hub-Signature-256 header");
}

static const anm_plugin kGithubPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "github",
    .version = "1.0.0",
    .summary = "GitHub webhooks: X-Hub-Signature-256 (HMAC-SHA256), SHA-1 with allow_sha1",
    .init = anm_common_init_host_state,
    .shutdown = NULL,
    .check_settings = githubCheckSettings,
    .verify = githubVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kGithubPlugin; }
