// plugins/slack/slack.c: verifies Slack's X-Slack-Signature (v0, HMAC-SHA256 with timestamp).
// SPDX-License-Identifier: Apache-2.0
//
// Scheme: "v0=" followed by the lower-case hex HMAC-SHA256 under the app's signing secret of
// "v0:<X-Slack-Request-Timestamp>:<body>". Events API requests carry JSON; slash commands and
// interactivity carry form bodies. A correctly signed url_verification request is answered
// with its challenge so that Slack accepts the hook's URL.

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "anonymily/plugin.h"

// Slack's documented window: requests more than five minutes from local time are refused.
#define SLACK_DEFAULT_TOLERANCE_S 300

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

// Event types and ids longer than this are not recorded (they would not be Slack's).
#define MAX_LABEL 256

// Slack's challenges are about 50 characters; a longer one is not echoed.
#define MAX_CHALLENGE 1024

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

// Judges the signed time against the time of receipt in whole seconds, as Slack's own SDKs
// do: a skew of exactly the tolerance is still inside.
static bool withinWindow(int64_t receivedAtMs, int64_t signedAt, int64_t toleranceS, char* message,
                         size_t cap) {
  if (toleranceS == 0) {
    return true;
  }
  if (toleranceS < 0) {
    toleranceS = SLACK_DEFAULT_TOLERANCE_S;
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

static anm_status slackInit(const anm_host_api* host, void** state, char* err, size_t errCap) {
  // The host table is all the state there is; it stays valid until shutdown.
  if (!ANM_HAS_MEMBER(host, anm_host_api, result_set_response)) {
    writeErr(err, errCap, "host api table is too small for abi 1.0");
    return ANM_ERR_UNSUPPORTED;
  }
  *state = (void*)(uintptr_t)host;
  return ANM_OK;
}

static anm_status slackCheckSettings(void* state, const anm_settings* settings, char* err,
                                     size_t errCap) {
  (void)state;

  // Slack has no provider options: anything given is a typo or meant for another provider.
  if (settings->option_count > 0) {
    anm_str key = settings->options[0].key;
    snprintf(err, errCap, "unknown option \"%.*s\"; slack takes no options",
             (int)(key.len > 64 ? 64 : key.len), key.ptr ? key.ptr : "");
    return ANM_ERR_INVALID_ARGUMENT;
  }

  if (settings->tolerance_s < ANM_TOLERANCE_DEFAULT) {
    snprintf(err, errCap,
             "tolerance_s must be -1 (default %d s), 0 (no window) or a number of seconds, "
             "not %" PRId64,
             SLACK_DEFAULT_TOLERANCE_S, settings->tolerance_s);
    return ANM_ERR_INVALID_ARGUMENT;
  }
  return ANM_OK;
}

// Works out the event type and id, whatever the verdict: the JSON "type" and "event_id" for
// the Events API, the kind of form for slash commands and interactivity.
static void recordEvent(const anm_host_api* host, anm_bytes body, anm_result* result, char* type,
                        size_t typeCap, size_t* typeLen) {
  char id[MAX_LABEL];
  size_t idLen = 0;
  *typeLen = 0;

  if (looksLikeJson(body)) {
    if (host->json_find_string(body, LIT("type"), type, typeCap, typeLen) != ANM_OK) {
      *typeLen = 0;
    }
    if (host->json_find_string(body, LIT("event_id"), id, sizeof id, &idLen) != ANM_OK) {
      idLen = 0;
    }
  } else if (formHasField(body, "command")) {
    *typeLen = strlen("slash_command");
    memcpy(type, "slash_command", *typeLen);
  } else if (formHasField(body, "payload")) {
    *typeLen = strlen("interactive");
    memcpy(type, "interactive", *typeLen);
  }
  anm_str typeView = {type, *typeLen};
  anm_str idView = {id, idLen};
  host->result_set_event(result, typeView, idView);
}

static anm_status slackVerify(void* state, const anm_settings* settings, const anm_request* request,
                              anm_result* result, char* err, size_t errCap) {
  const anm_host_api* host = (const anm_host_api*)state;
  char message[160];
  char type[MAX_LABEL];
  size_t typeLen = 0;

  recordEvent(host, request->body, result, type, sizeof type, &typeLen);

  // Without the signing secret nothing can be verified.
  if (settings->secret.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SECRET_MISSING,
                   "the hook has no signing secret; set the app's signing secret");
  }

  anm_str signature;
  if (!host->find_header(request, LIT("X-Slack-Signature"), 0, &signature)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MISSING,
                   "no X-Slack-Signature header");
  }
  if (signature.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "X-Slack-Signature is empty");
  }
  if (!startsWith(signature, "v0=")) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "X-Slack-Signature does not start with \"v0=\"");
  }
  anm_str hex = {signature.ptr + 3, signature.len - 3};
  uint8_t received[SHA256_LEN];
  size_t receivedLen = 0;
  if (hex.len != SHA256_HEX_LEN ||
      host->hex_decode(hex, received, sizeof received, &receivedLen) != ANM_OK ||
      receivedLen != SHA256_LEN) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "X-Slack-Signature is not \"v0=\" and 64 hex digits");
  }

  // The timestamp is part of what was signed, so it must be there and be a number.
  anm_str timestamp;
  if (!host->find_header(request, LIT("X-Slack-Request-Timestamp"), 0, &timestamp) ||
      timestamp.len == 0) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_MISSING,
                   "no X-Slack-Request-Timestamp header");
  }
  int64_t signedAt = 0;
  if (!parseUnixSeconds(timestamp, &signedAt)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_HEADER_MALFORMED,
                   "X-Slack-Request-Timestamp is not a unix timestamp in seconds");
  }

  // The base string is "v0:<timestamp>:<body>"; the body is passed as a part, never copied.
  anm_bytes parts[4] = {
      {(const uint8_t*)"v0:", 3},
      {(const uint8_t*)timestamp.ptr, timestamp.len},
      {(const uint8_t*)":", 1},
      request->body,
  };
  uint8_t expected[64];
  size_t expectedLen = 0;
  anm_status st = host->hmac(ANM_HASH_SHA256, settings->secret, parts, 4, expected, sizeof expected,
                             &expectedLen);
  if (st != ANM_OK || expectedLen != SHA256_LEN) {
    snprintf(err, errCap, "could not compute hmac-sha256 status=%d", (int)st);
    return ANM_ERR_INTERNAL;
  }
  anm_bytes a = {received, SHA256_LEN};
  anm_bytes b = {expected, SHA256_LEN};
  if (!host->equal_constant_time(a, b)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_SIGNATURE_MISMATCH,
                   "X-Slack-Signature does not match the signing secret");
  }

  // Only a genuine signature gets its age judged, so the reason names the real problem.
  if (!withinWindow(request->received_at_ms, signedAt, settings->tolerance_s, message,
                    sizeof message)) {
    return verdict(host, result, ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_OUTSIDE, message);
  }

  // Slack accepts a Request URL only when it echoes the challenge of a signed handshake.
  anm_str typeView = {type, typeLen};
  if (strEquals(typeView, "url_verification")) {
    char challenge[MAX_CHALLENGE];
    size_t challengeLen = 0;
    if (host->json_find_string(request->body, LIT("challenge"), challenge, sizeof challenge,
                               &challengeLen) == ANM_OK) {
      anm_bytes body = {(const uint8_t*)challenge, challengeLen};
      host->result_set_response(result, 200, LIT("text/plain"), body);
    }
  }
  return verdict(host, result, ANM_VERDICT_VALID, ANM_REASON_OK, "X-Slack-Signature matches");
}

static const anm_plugin kSlackPlugin = {
    .struct_size = sizeof(anm_plugin),
    .abi_major = ANM_ABI_MAJOR,
    .abi_minor = 0,
    .name = "slack",
    .version = "1.0.0",
    .summary = "Slack requests: X-Slack-Signature v0 (HMAC-SHA256, 300 s window), url_verification",
    .init = slackInit,
    .shutdown = NULL,
    .check_settings = slackCheckSettings,
    .verify = slackVerify,
};

ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &kSlackPlugin; }
