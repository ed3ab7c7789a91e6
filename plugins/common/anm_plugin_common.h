// plugins/common/anm_plugin_common.h: parsing and verdict helpers the built-in providers share.
// SPDX-License-Identifier: Apache-2.0
//
// A small C11 library compiled into each built-in provider module. It uses only the SDK header
// and the C library, so a module that links it still depends on nothing but the host's
// services. Everything in it is built with hidden visibility: it never becomes part of a
// module's exported interface, which stays the single anm_plugin_entry function.
//
// OWNERSHIP
//   Views passed in are borrowed for the call. Views returned point into the argument they came
//   from (a header of the request, a buffer of the caller); nothing is allocated here.
//
// THREADING
//   Every function is re-entrant and keeps no state, so verify and check_settings may call them
//   concurrently from any thread.
//
// VERDICTS
//   Functions that take an anm_result record at most one verdict. Those that return bool mean
//   "go on" by true; false means they have already recorded an INVALID verdict and the verify
//   hook should return ANM_OK without recording another.
#ifndef ANM_PLUGIN_COMMON_H
#define ANM_PLUGIN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anonymily/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------- */
/* Limits                                                                                    */
/* ----------------------------------------------------------------------------------------- */

// Event types and delivery ids longer than this many bytes are not recorded: no provider sends
// labels that long, so a longer one is noise that should not reach listings.
#define ANM_COMMON_MAX_LABEL 256

// Unix timestamps in seconds with more digits than this cannot come from a real clock, and 18
// digits still fit an int64_t with room for the window arithmetic.
#define ANM_COMMON_MAX_TIMESTAMP_DIGITS 18

// The largest digest of any anm_hash (SHA-512), in bytes: the size for digest buffers.
#define ANM_COMMON_MAX_DIGEST 64

// At most this many bytes of a caller's option key or value are quoted back in an error.
#define ANM_COMMON_MAX_QUOTED 64

// The default window of a provider that signs no timestamp: tolerance_s then has no effect.
#define ANM_COMMON_NO_TIMESTAMP 0

/* ----------------------------------------------------------------------------------------- */
/* Text                                                                                      */
/* ----------------------------------------------------------------------------------------- */

// A view of a string literal, without its NUL and without a strlen at run time (C only: it
// is a compound literal).
#define ANM_COMMON_LIT(s) ((anm_str){(s), sizeof(s) - 1})

// The two printf arguments that quote a view with "%.*s", cut to ANM_COMMON_MAX_QUOTED bytes
// and safe for an empty view whose ptr is NULL. `s` is evaluated more than once.
#define ANM_COMMON_QUOTED(s)                                                \
  (int)((s).len > ANM_COMMON_MAX_QUOTED ? ANM_COMMON_MAX_QUOTED : (s).len), \
      ((s).ptr != NULL ? (s).ptr : "")

// A view of a NUL-terminated string (not including the NUL).
anm_str anm_common_cstr(const char* s);

// True when `a` holds exactly the bytes of the NUL-terminated `b`.
bool anm_common_str_equals(anm_str a, const char* b);

// True when `a` begins with the NUL-terminated `prefix` (an empty prefix always matches).
bool anm_common_starts_with(anm_str a, const char* prefix);

// `s` without leading and trailing spaces and tabs.
anm_str anm_common_trim(anm_str s);

// Copies `text` into a hook's error buffer, cut to fit and always NUL-terminated. Does
// nothing when `err` is NULL or `err_cap` is 0.
void anm_common_write_err(char* err, size_t err_cap, const char* text);

/* ----------------------------------------------------------------------------------------- */
/* Hooks and verdicts                                                                        */
/* ----------------------------------------------------------------------------------------- */

// An anm_plugin.init hook for a plugin whose only state is the host table: checks that the
// table has every 1.0 service and stores the table itself as the state. Returns ANM_OK, or
// ANM_ERR_UNSUPPORTED with a reason in `err` when the table is too small.
anm_status anm_common_init_host_state(const anm_host_api* host, void** state, char* err,
                                      size_t err_cap);

// The host table stored by anm_common_init_host_state, from the state a hook receives.
const anm_host_api* anm_common_host(void* state);

// Records a verdict with a NUL-terminated message (copied by the host) and returns ANM_OK,
// so that a verify hook can end with `return anm_common_verdict(...)`.
anm_status anm_common_verdict(const anm_host_api* host, anm_result* result, anm_verdict verdict,
                              anm_reason reason, const char* message);

// Without a secret nothing can be verified: returns true when the hook has one; otherwise
// records INVALID / ANM_REASON_SECRET_MISSING "the hook has no signing secret; set <what>",
// where `what` names the provider's secret (e.g. "the webhook secret"), and returns false.
bool anm_common_require_secret(const anm_host_api* host, const anm_settings* settings,
                               anm_result* result, const char* what);

/* ----------------------------------------------------------------------------------------- */
/* Settings                                                                                  */
/* ----------------------------------------------------------------------------------------- */

// Refuses the first option whose key is not one of the `known_count` names in `known`, so a
// typo is reported when the hook is created. The error names the known keys, or says that
// `provider` takes no options when `known_count` is 0 (`known` may then be NULL). Returns
// ANM_OK or ANM_ERR_INVALID_ARGUMENT with the reason in `err`.
anm_status anm_common_check_option_keys(const anm_settings* settings, const char* provider,
                                        const char* const* known, size_t known_count, char* err,
                                        size_t err_cap);

// Refuses a tolerance_s below ANM_TOLERANCE_DEFAULT. `default_tolerance_s` is the provider's
// own window, named in the error, or ANM_COMMON_NO_TIMESTAMP for a provider that signs no
// timestamp. Returns ANM_OK or ANM_ERR_INVALID_ARGUMENT with the reason in `err`.
anm_status anm_common_check_tolerance(const anm_settings* settings, int64_t default_tolerance_s,
                                      char* err, size_t err_cap);

// The whole check_settings of a provider with no options: the two checks above, in that
// order.
anm_status anm_common_check_settings_without_options(const anm_settings* settings,
                                                     const char* provider,
                                                     int64_t default_tolerance_s, char* err,
                                                     size_t err_cap);

/* ----------------------------------------------------------------------------------------- */
/* Timestamps                                                                                */
/* ----------------------------------------------------------------------------------------- */

// Parses 1 to ANM_COMMON_MAX_TIMESTAMP_DIGITS decimal digits (no sign, no spaces) as Unix
// seconds. Returns false, leaving *out alone, for anything else.
bool anm_common_parse_unix_seconds(anm_str s, int64_t* out);

// Judges a signed time (from anm_common_parse_unix_seconds, so below 10^18) against the time
// of receipt in whole seconds, the receipt time rounded down: a skew of exactly the tolerance
// is still inside, in either direction. `tolerance_s` is the hook's setting: 0 turns the window
// off, a negative value means `default_tolerance_s`. Returns true when inside; otherwise false
// with a message for the verdict, such as "timestamp is 301 s old, outside the 300 s
// tolerance", in `message` (NUL-terminated, cut to `message_cap`).
bool anm_common_within_tolerance(int64_t received_at_ms, int64_t signed_at_s, int64_t tolerance_s,
                                 int64_t default_tolerance_s, char* message, size_t message_cap);

/* ----------------------------------------------------------------------------------------- */
/* Event labels                                                                              */
/* ----------------------------------------------------------------------------------------- */

// The first header called `name` (ASCII case ignored), or an empty view when there is none or
// it is longer than ANM_COMMON_MAX_LABEL. The view borrows from the request.
anm_str anm_common_header_label(const anm_host_api* host, const anm_request* request,
                                const char* name);

// The top-level JSON string member `key` of `body`, unescaped into `buf`, or an empty view
// (pointing at `buf`) when the body is not an object, the member is absent or not a string,
// or it does not fit `buf_cap` bytes.
anm_str anm_common_json_label(const anm_host_api* host, anm_bytes body, const char* key, char* buf,
                              size_t buf_cap);

/* ----------------------------------------------------------------------------------------- */
/* Signatures                                                                                */
/* ----------------------------------------------------------------------------------------- */

// How a provider writes a digest into its header. Stored as int32_t; values never change.
typedef int32_t anm_common_encoding;
#define ANM_COMMON_ENCODING_HEX 1     // hex digits, either case (providers send lower case)
#define ANM_COMMON_ENCODING_BASE64 2  // standard padded base64

// One signature header of a provider: the whole value is `prefix` followed by the encoded
// digest of `algorithm`. All strings are NUL-terminated and static.
typedef struct anm_common_signature_header {
  const char* name;              // as sent and named in messages, e.g. "X-Hub-Signature-256"
  const char* prefix;            // e.g. "sha256=", or "" when the digest stands alone
  anm_common_encoding encoding;  // ANM_COMMON_ENCODING_*
  anm_hash algorithm;            // the HMAC's hash
} anm_common_signature_header;

// The digest length of `algorithm` in bytes, or 0 for one this library does not know.
size_t anm_common_digest_len(anm_hash algorithm);

// Decodes exactly 2 * digest_len hex digits into `out` (digest_len bytes, at most
// ANM_COMMON_MAX_DIGEST). Returns false for any other length or character.
bool anm_common_decode_hex_digest(const anm_host_api* host, anm_str hex, size_t digest_len,
                                  uint8_t* out);

// Decodes the padded base64 of exactly digest_len bytes (at most ANM_COMMON_MAX_DIGEST) into
// `out`. Returns false for any other length or for text that is not canonical base64.
bool anm_common_decode_base64_digest(const anm_host_api* host, anm_str text, size_t digest_len,
                                     uint8_t* out);

// The HMAC of the concatenation of `parts` under `key`, written to `out` (room for
// ANM_COMMON_MAX_DIGEST bytes; anm_common_digest_len(algorithm) are used). The parts are
// passed on, never copied, so a large body costs nothing extra. Returns ANM_OK, or
// ANM_ERR_INTERNAL with the reason in `err` when the host could not compute it.
anm_status anm_common_hmac(const anm_host_api* host, anm_hash algorithm, anm_bytes key,
                           const anm_bytes* parts, size_t part_count, uint8_t* out, char* err,
                           size_t err_cap);

// Computes the HMAC as anm_common_hmac does and compares it with `received` (a digest of
// `algorithm`) in constant time, setting *matches. Returns what anm_common_hmac returns.
anm_status anm_common_hmac_matches(const anm_host_api* host, anm_hash algorithm, anm_bytes key,
                                   const anm_bytes* parts, size_t part_count,
                                   const uint8_t* received, bool* matches, char* err,
                                   size_t err_cap);

// Looks up the first header called `name` (ASCII case ignored), the one that carries the
// signature. Returns true with *value set (borrowed from the request) when it is there;
// otherwise records INVALID / ANM_REASON_HEADER_MISSING "no <name> header" and returns false.
bool anm_common_find_signature_header(const anm_host_api* host, const anm_request* request,
                                      anm_result* result, const char* name, anm_str* value);

// Checks that `value` is `spec->prefix` and one encoded digest, and decodes the digest into
// `digest` (room for ANM_COMMON_MAX_DIGEST bytes). Returns true when it is; otherwise records
// INVALID / ANM_REASON_HEADER_MALFORMED, saying whether the value is empty, lacks the prefix
// or is not a digest, and returns false.
bool anm_common_decode_signature_header(const anm_host_api* host, anm_result* result,
                                        const anm_common_signature_header* spec, anm_str value,
                                        uint8_t* digest);

// The whole check for a provider that signs only the raw body: decodes `value` as above,
// compares it with the HMAC of the body under the hook's secret and records the verdict
// (VALID "<name> matches", or INVALID / ANM_REASON_SIGNATURE_MISMATCH "<name> does not match
// the secret"). Returns ANM_OK whenever a verdict was recorded, or ANM_ERR_INTERNAL with the
// reason in `err`. The caller has already refused an empty secret.
anm_status anm_common_verify_body_hmac(const anm_host_api* host, const anm_settings* settings,
                                       const anm_request* request, anm_result* result,
                                       const anm_common_signature_header* spec, anm_str value,
                                       char* err, size_t err_cap);

// anm_common_find_signature_header for `spec->name`, then anm_common_verify_body_hmac: the
// whole check of a provider whose one signature header covers only the raw body.
anm_status anm_common_find_and_verify_body_hmac(const anm_host_api* host,
                                                const anm_settings* settings,
                                                const anm_request* request, anm_result* result,
                                                const anm_common_signature_header* spec, char* err,
                                                size_t err_cap);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ANM_PLUGIN_COMMON_H */
