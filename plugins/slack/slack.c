// plugins/slack/slack.c: verifies Slack's X-Slack-Signature (v0, HMAC-SHA256 with timestamp).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: "v0=" followed by the lower-case hex HMAC-SHA256 under the app's signing secret of
// "v0:<X-Slack-Request-Timestamp>:<body>". Events API requests carry JSON; slash commands and
// interactivity carry form bodies. A correctly signed url_verification request is answered
// with its challenge so that Slack accepts the hook's URL.

#include <stdint.h>
#include <string.h>

#include "anm_plugin_common.h"
#include "anonymily/plugin.h"

// Slack's documented window: requests more than five minutes from local time are refused.
// Slack's own SDKs judge it in whole seconds, with a skew of exactly the tolerance still
// inside, which is how anm_common_within_tolerance judges it.
#define SLACK_DEFAULT_TOLERANCE_S 300

// Slack's challenges are about 50 characters; a longer one is not echoed.
#define MAX_CHALLENGE 1024

// Slack's one signature header: "v0=" and the hex HMAC-SHA256 of "v0:<timestamp>:<body>".
static const anm_common_signature_header kSignatureHeader = {
    "X-Slack-Signature", "v0=", ANM_COMMON_ENCODING_HEX, ANM_HASH_SHA256};

static bool looksLikeJson(anm_bytes body) {
  for (size_t i = 0; i < body.len; ++i) {
    uint8_t c = body.ptr[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      continue;
    }
    return c == '{';
  }
  return false;
}

// True when the form body has a field named `name` (as "name=..." between '&'s).
static bool formHasField(anm_bytes body, const char* name) {
  size_t n = strlen(name);
  if (body.len == 0) {
    return false;
  }
  size_t start = 0;
  while (start <= body.len) {
    const uint8_t* amp = memchr(body.ptr + start, '&', body.len - start);
    size_t end = amp ? (size_t)(amp - body.ptr) : body.len;
    if (end - start > n && memcmp(body.ptr + start, name, n) == 0 && body.ptr[start + n] == '=') {
      return true;
    }
    if (amp == NULL) {
      break;
    }
    start = end + 1;
  }
  return false;
}

static anm_status slackCheckSettings(void* state, const anm_settings* settings, char* err,
                                     size_t errCap) {
  (void)state;

  // Slack has no provider options: anything given is a typo or meant for another provider.
  return anm_common_check_settings_without_options(settings, "slack", SLACK_DEFAULT_TOLERANCE_S,
                                                   err, errCap);
}

// Works out the event type and id, whatever the verdict: the JSON "type" and "event_id" for
// the Events API, the kind of form for slash commands and interactivity.
static void recordEvent(const anm_host_api* host, anm_bytes body, anm_result* result, char* type,
                        size_t typeCap, size_t* typeLen) {
  char id[ANM_COMMON_MAX_LABEL];
  anm_str idView = {id, 0};
  *typeLen = 0;

  if (looksLikeJson(body)) {
    *typeLen = anm_common_json_label(host, body, "type", type, typeCap).len;
    idView = anm_common_json_label(host, body, "event_id", id, sizeof id);
  } else if (formHasField(body, "command")) {
    *typeLen = strlen("slash_command");
    memcpy(type, "slash_command", *typeLen);
  } else if (formHasField(body, "payload")) {
    *typeLen = strlen("interactive");
    memcpy(type, "interactive", *typeLen);
  }
  anm_str typeView = {type, *typeLen};
  host->result_set_event(result, typeView, idView);
}

static anm_status slackVerify(void* state, const anm_settings* settings, const anm_request* request,
                              anm_result* result, char* err, size_t errCap) {
  const anm_host_api* host = anm_common_host(state);
  char message[160];
  char type[ANM_COMMON_MAX_LABEL];
  size_t typeLen = 0;

  recordEvent(host, request->body, result, type, sizeof type, &typeLen);

  // Without the signing secret nothing can be verified.
  if (!anm_common_require_secret(host, settings, result, "the app's signing secret")) {
    return ANM_OK;
  }

  anm_str signature;
  if (!anm_common_find_signature_header(host, request, result, kSignatureHeader.name, &signature)) {
    return ANM_OK;
  }
  uint8_t received[ANM_COMMON_MAX_DIGEST];
  if (!anm_common_decode_signature_header(host, result, &kSignatureHeader, signature, received)) {
    return ANM_OK;
  }

  // The timestamp is part of what was signed, so it must be there and be a number.
  anm_str timestamp;
  if (!host->find_header(request, ANM_COMMON_LIT("X-Slack-Request-Timestamp"), 0, &timestamp) ||
      timestamp.len == 0) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_MISSING,
                              "no X-Slack-Request-Timestamp header");
  }
  int64_t signedAt = 0;
  if (!anm_common_parse_unix_seconds(timestamp, &signedAt)) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                              "X-Slack-Request-Timestamp is not a unix timestamp in seconds");
  }

  // The base string is "v0:<timestamp>:<body>"; the body is passed as a part, never copied.
  anm_bytes parts[4] = {
      {(const uint8_t*)"v0:", 3},
      {(const uint8_t*)timestamp.ptr, timestamp.len},
      {(const uint8_t*)":", 1},
      request->body,
  };
  bool matches = false;
  anm_status st = anm_common_hmac_matches(host, ANM_HASH_SHA256, settings->secret, parts, 4,
                                          received, &matches, err, errCap);
  if (st != ANM_OK) {
    return st;
  }
  if (!matches) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                              "X-Slack-Signature does not match the signing secret");
  }

  // Only a genuine signature gets its age judged, so the reason names the real problem.
  if (!anm_common_within_tolerance(request->received_at_ms, signedAt, settings->tolerance_s,
                                   SLACK_DEFAULT_TOLERANCE_S, message, sizeof message)) {
    return anm_common_verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_OUTSIDE,
                              message);
  }

  // Slack accepts a Request URL only when it echoes the challenge of a signed handshake.
  anm_str typeView = {type, typeLen};
  if (anm_common_str_equals(typeView, "url_verification")) {
    char challenge[MAX_CHALLENGE];
    size_t challengeLen = 0;
    if (host->json_find_string(request->body, ANM_COMMON_LIT("challenge"), challenge,
                               sizeof challenge, &challengeLen) == ANM_OK) {
      anm_bytes body = {(const uint8_t*)challenge, challengeLen};
      host->result_set_response(result, 200, ANM_COMMON_LIT("text/plain"), body);
    }
  }
  return anm_common_verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK,
                            "X-Slack-Signature matches");
}

static const anm_plugin kSlackPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "slack",
    .version = "1.0.0",
    .summary = "Slack requests: X-Slack-Signature v0 (HMAC-SHA256, 300 s window), url_verification",
    .init = anm_common_init_host_state,
    .shutdown = NULL,
    .check_settings = slackCheckSettings,
    .verify = slackVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kSlackPlugin; }
