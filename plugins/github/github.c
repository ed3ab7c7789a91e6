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
#include <string.h>

#include "anonymily/plugin.h"

#define SHA1_LEN 20
#define SHA256_LEN 32

// Event names and delivery ids longer than this are not recorded (they would not be GitHub's).
#define MAX_LABEL 256

#define LIT(s) ((anm_str){(s), sizeof(s) - 1})

static anm_str cstr(const char* s) {
  anm_str v = {s, strlen(s)};
  return v;
}

static bool strEquals(anm_str a, const char* b) {
  size_t n = strlen(b);
  return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

static bool startsWith(anm_str a, const char* prefix) {
  size_t n = strlen(prefix);
  return a.len >= n && memcmp(a.ptr, prefix, n) == 0;
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

// Reads allow_sha1; a missing option means false. Returns false for any other spelling.
static bool readAllowSha1(const anm_host_api* host, const anm_settings* settings, bool* allow) {
  anm_str value;
  *allow = false;
  if (!host->find_option(settings, LIT("allow_sha1"), &value)) {
    return true;
  }
  if (strEquals(value, "true")) {
    *allow = true;
    return true;
  }
  return strEquals(value, "false");
}

static anm_status githubInit(const anm_host_api* host, void** state, char* err, size_t errCap) {
  // The host table is all the state there is; it stays valid until shutdown.
  if (!ANM_HAS_MEMBER(host, anm_host_api, result_set_response)) {
    writeErr(err, errCap, "host api table is too small for abi 1.0");
    return ANM_ERR_UNSUPPORTED;
  }
  *state = (void*)(uintptr_t)host;
  return ANM_OK;
}

static anm_status githubCheckSettings(void* state, const anm_settings* settings, char* err,
                                      size_t errCap) {
  const anm_host_api* host = (const anm_host_api*)state;

  // A misspelt option would otherwise silently leave SHA-1 refused.
  for (size_t i = 0; i < settings->option_count; ++i) {
    anm_str key = settings->options[i].key;
    if (!strEquals(key, "allow_sha1")) {
      snprintf(err, errCap, "unknown option \"%.*s\"; known: allow_sha1",
               (int)(key.len > 64 ? 64 : key.len), key.ptr ? key.ptr : "");
      return ANM_ERR_INVALID_ARGUMENT;
    }
  }
  bool allow = false;
  if (!readAllowSha1(host, settings, &allow)) {
    anm_str value;
    host->find_option(settings, LIT("allow_sha1"), &value);
    snprintf(err, errCap, "option allow_sha1 must be \"true\" or \"false\", not \"%.*s\"",
             (int)(value.len > 64 ? 64 : value.len), value.ptr ? value.ptr : "");
    return ANM_ERR_INVALID_ARGUMENT;
  }

  // GitHub signs no timestamp, so any window is accepted and has no effect.
  if (settings->tolerance_s < ANM_TOLERANCE_DEFAULT) {
    snprintf(err, errCap,
             "tolerance_s must be -1 (default), 0 or a number of seconds, not %" PRId64,
             settings->tolerance_s);
    return ANM_ERR_INVALID_ARGUMENT;
  }
  return ANM_OK;
}

// Records X-GitHub-Event and X-GitHub-Delivery whatever the verdict.
static void recordEvent(const anm_host_api* host, const anm_request* request, anm_result* result) {
  anm_str type = {NULL, 0};
  anm_str id = {NULL, 0};
  if (!host->find_header(request, LIT("X-GitHub-Event"), 0, &type) || type.len > MAX_LABEL) {
    type.ptr = NULL;
    type.len = 0;
  }
  if (!host->find_header(request, LIT("X-GitHub-Delivery"), 0, &id) || id.len > MAX_LABEL) {
    id.ptr = NULL;
    id.len = 0;
  }
  host->result_set_event(result, type, id);
}

// Checks one "<prefix><hex>" header against the HMAC of the body with the given algorithm.
static anm_status checkSignature(const anm_host_api* host, const anm_settings* settings,
                                 const anm_request* request, anm_result* result, anm_str header,
                                 const char* headerName, const char* prefix, anm_hash algorithm,
                                 size_t digestLen, char* err, size_t errCap) {
  char message[160];

  if (header.len == 0) {
    snprintf(message, sizeof message, "%s is empty", headerName);
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED, message);
  }
  if (!startsWith(header, prefix)) {
    snprintf(message, sizeof message, "%s does not start with \"%s\"", headerName, prefix);
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED, message);
  }

  // The digest must be exactly one hex-encoded digest of the algorithm.
  anm_str hex = {header.ptr + strlen(prefix), header.len - strlen(prefix)};
  uint8_t received[64];
  size_t receivedLen = 0;
  if (hex.len != digestLen * 2 ||
      host->hex_decode(hex, received, sizeof received, &receivedLen) != ANM_OK ||
      receivedLen != digestLen) {
    snprintf(message, sizeof message, "%s is not \"%s\" and %zu hex digits", headerName, prefix,
             digestLen * 2);
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED, message);
  }

  uint8_t expected[64];
  size_t expectedLen = 0;
  anm_status st = host->hmac(algorithm, settings->secret, &request->body, 1, expected,
                             sizeof expected, &expectedLen);
  if (st != ANM_OK || expectedLen != digestLen) {
    snprintf(err, errCap, "could not compute the hmac status=%d", (int)st);
    return ANM_ERR_INTERNAL;
  }
  anm_bytes a = {received, digestLen};
  anm_bytes b = {expected, digestLen};
  if (!host->equal_constant_time(a, b)) {
    snprintf(message, sizeof message, "%s does not match the secret", headerName);
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH, message);
  }
  snprintf(message, sizeof message, "%s matches", headerName);
  return verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK, message);
}

static anm_status githubVerify(void* state, const anm_settings* settings,
                               const anm_request* request, anm_result* result, char* err,
                               size_t errCap) {
  const anm_host_api* host = (const anm_host_api*)state;

  recordEvent(host, request, result);

  // Without the webhook secret nothing can be verified.
  if (settings->secret.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SECRET_MISSING,
                   "the hook has no signing secret; set the webhook's secret");
  }

  // SHA-256 wins whenever it is there, even if SHA-1 is allowed.
  anm_str header;
  if (host->find_header(request, LIT("X-Hub-Signature-256"), 0, &header)) {
    return checkSignature(host, settings, request, result, header, "X-Hub-Signature-256",
                          "sha256=", ANM_HASH_SHA256, SHA256_LEN, err, errCap);
  }

  // Only the legacy header: accepted only when the hook opted in.
  if (host->find_header(request, LIT("X-Hub-Signature"), 0, &header)) {
    bool allow = false;
    if (!readAllowSha1(host, settings, &allow) || !allow) {
      return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_ALGORITHM_REFUSED,
                     "only the sha1 X-Hub-Signature is present; set allow_sha1=true to accept it");
    }
    return checkSignature(host, settings, request, result, header, "X-Hub-Signature",
                          "sha1=", ANM_HASH_SHA1, SHA1_LEN, err, errCap);
  }
  return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING,
                 "no X-Hub-Signature-256 header");
}

static const anm_plugin kGithubPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "github",
    .version = "1.0.0",
    .summary = "GitHub webhooks: X-Hub-Signature-256 (HMAC-SHA256), SHA-1 with allow_sha1",
    .init = githubInit,
    .shutdown = NULL,
    .check_settings = githubCheckSettings,
    .verify = githubVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kGithubPlugin; }
