/* anonymily/plugin.h: the C ABI between the Anonymily edge and provider verification plugins.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A provider plugin is a shared library that exports exactly one function, anm_plugin_entry(),
 * returning a pointer to a static anm_plugin descriptor. The edge loads every plugin in its
 * plugin directory, calls the descriptor's hooks to verify the signatures of incoming webhooks
 * and never unloads a library while a call into it can be in flight.
 *
 * COMPATIBILITY POLICY
 *   ANM_ABI_MAJOR changes only when an existing struct member, hook signature or meaning
 *   changes; the edge refuses a plugin whose major differs from its own. A minor bump may only
 *   append: new members at the end of a struct, new entries at the end of a table, new enum
 *   values. Every struct that crosses the boundary starts with its struct_size, so each side
 *   reads only the members the other side was built with (ANM_HAS_MEMBER). A plugin that needs
 *   services added in minor N sets abi_minor to N and the edge refuses it when its own minor is
 *   lower. Retired table entries stay in place as NULL forever; offsets never move.
 *
 * TRUST MODEL
 *   Plugins run inside the edge process with its full privileges. The ABI protects against
 *   mistakes (a plugin built for another major, a truncated struct, a hook that throws), not
 *   against a malicious library: install only plugins you would link into the edge itself.
 *
 * OWNERSHIP
 *   Everything the host passes in (requests, settings, views) is BORROWED: valid only for the
 *   duration of the call, never to be freed or written by the plugin. A plugin that needs data
 *   later copies it. Data the plugin hands back goes through host callbacks that copy it before
 *   they return, so no memory ever crosses the boundary in either direction and no allocator is
 *   shared. Strings in the descriptor are plugin-owned and must live as long as the library.
 *
 * THREADING
 *   init and shutdown run on one thread, never concurrently with any other hook of the same
 *   plugin. check_settings and verify may run concurrently from many threads on the same state
 *   pointer: they must be re-entrant and must not mutate shared state without their own locks.
 *   Every host service may be called from any thread.
 *
 * ERRORS
 *   Hooks return an anm_status. A bad or missing signature is NOT an error: verify returns
 *   ANM_OK and reports the verdict through anm_result. No C++ exception, longjmp or signal may
 *   leave a hook; the host treats one that does as ANM_ERR_INTERNAL but it may not be able to
 *   contain it in every case.
 */
#ifndef ANONYMILY_PLUGIN_H
#define ANONYMILY_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------- */
/* Versions                                                                                  */
/* ----------------------------------------------------------------------------------------- */

#define ANM_ABI_MAJOR 1
#define ANM_ABI_MINOR 0

/* The name of the single exported function every plugin defines. */
#define ANM_PLUGIN_ENTRY_SYMBOL "anm_plugin_entry"

/* True when a struct of the given (reported) size contains the whole of `member`. Use it
 * before reading any member added after 1.0 from a struct the other side built. */
#define ANM_HAS_MEMBER(ptr, type, member) \
  ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

#if defined(_WIN32)
#define ANM_EXPORT __declspec(dllexport)
#else
#define ANM_EXPORT __attribute__((visibility("default")))
#endif

/* ----------------------------------------------------------------------------------------- */
/* Plain values                                                                              */
/* ----------------------------------------------------------------------------------------- */

/* Status of a hook or host service. Stored and passed as int32_t; values never change. */
typedef int32_t anm_status;
#define ANM_OK 0
#define ANM_ERR_INVALID_ARGUMENT 1 /* settings or arguments the plugin cannot accept */
#define ANM_ERR_BUFFER_TOO_SMALL 2 /* an output buffer was too small; nothing was written */
#define ANM_ERR_UNSUPPORTED 3      /* an algorithm or feature this side does not have */
#define ANM_ERR_INTERNAL 4         /* anything else; the message says what */

/* The outcome of verifying one request. */
typedef int32_t anm_verdict;
#define ANM_VERDICT_VALID 1    /* the signature checks out under the hook's secret */
#define ANM_VERDICT_INVALID 2  /* signed wrongly, stale, or unsigned where a signature is due */
#define ANM_VERDICT_UNSIGNED 3 /* nothing to verify (e.g. a provider handshake) */

/* Why a verdict was reached, for the person who reads it. Stable numbers: the edge stores them
 * and shows their names (see anm_reason names in the README). */
typedef int32_t anm_reason;
#define ANM_REASON_OK 0                 /* valid signature */
#define ANM_REASON_HEADER_MISSING 1     /* the signature header is not there */
#define ANM_REASON_HEADER_MALFORMED 2   /* the header is there but cannot be parsed */
#define ANM_REASON_TIMESTAMP_MISSING 3  /* a signed timestamp is required but absent */
#define ANM_REASON_TIMESTAMP_OUTSIDE 4  /* the signed timestamp is outside the tolerance */
#define ANM_REASON_SIGNATURE_MISMATCH 5 /* well-formed, but no signature matches */
#define ANM_REASON_SECRET_MISSING 6     /* the hook has no secret configured */
#define ANM_REASON_ALGORITHM_REFUSED 7  /* signed with an algorithm the hook does not allow */
#define ANM_REASON_NOT_SIGNED 8         /* the request carries no signature by design */
#define ANM_REASON_INTERNAL 9           /* the plugin could not reach a verdict */

/* Log levels for anm_host_api.log. */
typedef int32_t anm_log_level;
#define ANM_LOG_DEBUG 0
#define ANM_LOG_INFO 1
#define ANM_LOG_WARNING 2
#define ANM_LOG_ERROR 3

/* Hash algorithms offered by the host. */
typedef int32_t anm_hash;
#define ANM_HASH_SHA1 1
#define ANM_HASH_SHA256 2
#define ANM_HASH_SHA512 3

/* Tolerance value meaning "use the plugin's own default window". */
#define ANM_TOLERANCE_DEFAULT (-1)

/* A borrowed run of bytes. Never NUL-terminated by contract; ptr may be NULL when len is 0. */
typedef struct anm_bytes {
  const uint8_t* ptr;
  size_t len;
} anm_bytes;

/* A borrowed run of text (usually ASCII or UTF-8, but not guaranteed: header values are
 * whatever the sender sent). Never NUL-terminated by contract. */
typedef struct anm_str {
  const char* ptr;
  size_t len;
} anm_str;

/* One header field exactly as it arrived: original spelling of the name, raw value with
 * surrounding whitespace removed. This struct is frozen: it will never grow. */
typedef struct anm_header {
  anm_str name;
  anm_str value;
} anm_header;

/* One provider option of a hook, as key and value text. This struct is frozen. */
typedef struct anm_option {
  anm_str key;
  anm_str value;
} anm_option;

/* ----------------------------------------------------------------------------------------- */
/* What the host passes in                                                                   */
/* ----------------------------------------------------------------------------------------- */

/* The webhook to verify. BORROWED, valid only during the call. */
typedef struct anm_request {
  uint32_t struct_size;  /* sizeof(anm_request) as the host was built; since 1.0 */
  uint32_t reserved;     /* zero */
  anm_str method;        /* e.g. "POST"; since 1.0 */
  anm_str path_suffix;   /* the part after /h/<id>, "" or starting with '/'; since 1.0 */
  anm_str raw_query;     /* the query exactly as sent, without '?', undecoded; since 1.0 */
  const anm_header* headers; /* in arrival order, duplicates kept; since 1.0 */
  size_t header_count;       /* since 1.0 */
  anm_bytes body;            /* the raw body bytes, after transfer decoding; since 1.0 */
  int64_t received_at_ms;    /* when the edge received the request, Unix epoch in ms.
                                Plugins judge timestamps against this, never the clock,
                                so that verifying a stored request gives the same answer;
                                since 1.0 */
  anm_str hook_id;           /* the hook the request was posted to; since 1.0 */
} anm_request;

/* The provider settings of the hook the request was posted to. BORROWED. */
typedef struct anm_settings {
  uint32_t struct_size;     /* sizeof(anm_settings) as the host was built; since 1.0 */
  uint32_t reserved;        /* zero */
  anm_bytes secret;         /* the signing secret, exactly as configured; may be empty */
  int64_t tolerance_s;      /* allowed distance between a signed timestamp and
                               received_at_ms, in seconds: ANM_TOLERANCE_DEFAULT for the
                               plugin's default, 0 to turn the window off; since 1.0 */
  const anm_option* options; /* other provider options, in the order configured; since 1.0 */
  size_t option_count;       /* since 1.0 */
} anm_settings;

/* Opaque: the host's record of one verification. The plugin fills it only through the
 * anm_host_api result_* services, during the verify call that received it. */
typedef struct anm_result anm_result;

/* ----------------------------------------------------------------------------------------- */
/* Services the host offers (append-only)                                                    */
/* ----------------------------------------------------------------------------------------- */

/* The host's table of services. BORROWED for the plugin's whole lifetime: the pointer passed
 * to init stays valid until shutdown returns, so a plugin may keep it in its state. Each
 * plugin gets a table of its own, which is how host->log knows who is speaking. */
typedef struct anm_host_api anm_host_api;
struct anm_host_api {
  uint32_t struct_size; /* sizeof(anm_host_api) as the host was built */
  uint16_t abi_major;   /* ANM_ABI_MAJOR of the host */
  uint16_t abi_minor;   /* ANM_ABI_MINOR of the host */

  /* Writes one log line, prefixed by the host with the plugin's name. `message` is copied.
   * Never pass secrets or signatures above ANM_LOG_DEBUG. since 1.0 */
  void (*log)(const anm_host_api* host, anm_log_level level, anm_str message);

  /* HMAC of the concatenation of `parts` under `key`. Writes the digest to `out` (at least
   * 64 bytes covers every algorithm) and its length to *out_len. Returns ANM_OK,
   * ANM_ERR_UNSUPPORTED for an unknown algorithm or ANM_ERR_BUFFER_TOO_SMALL. since 1.0 */
  anm_status (*hmac)(anm_hash algorithm, anm_bytes key, const anm_bytes* parts,
                     size_t part_count, uint8_t* out, size_t out_cap, size_t* out_len);

  /* Plain digest of the concatenation of `parts`; same conventions as hmac. since 1.0 */
  anm_status (*digest)(anm_hash algorithm, const anm_bytes* parts, size_t part_count,
                       uint8_t* out, size_t out_cap, size_t* out_len);

  /* Compares two runs of bytes in time that depends only on their lengths. Returns true when
   * they are equal. Use it for every comparison of a computed and a received signature.
   * since 1.0 */
  bool (*equal_constant_time)(anm_bytes a, anm_bytes b);

  /* Standard base64 (RFC 4648 section 4, with padding). encode writes ((len+2)/3)*4 chars.
   * decode accepts padded input only and returns ANM_ERR_INVALID_ARGUMENT for anything that is
   * not canonical base64. Both return ANM_ERR_BUFFER_TOO_SMALL when out_cap is short.
   * since 1.0 */
  anm_status (*base64_encode)(anm_bytes in, char* out, size_t out_cap, size_t* out_len);
  anm_status (*base64_decode)(anm_str in, uint8_t* out, size_t out_cap, size_t* out_len);

  /* Lower-case hex. decode accepts either case and refuses odd lengths and non-hex characters
   * with ANM_ERR_INVALID_ARGUMENT. since 1.0 */
  anm_status (*hex_encode)(anm_bytes in, char* out, size_t out_cap, size_t* out_len);
  anm_status (*hex_decode)(anm_str in, uint8_t* out, size_t out_cap, size_t* out_len);

  /* Finds the n-th (from 0) header whose name equals `name` ignoring ASCII case. Returns true
   * and sets *value (borrowed from the request) when there is one. since 1.0 */
  bool (*find_header)(const anm_request* request, anm_str name, size_t n, anm_str* value);

  /* Finds the last option with this key (exact match). since 1.0 */
  bool (*find_option)(const anm_settings* settings, anm_str key, anm_str* value);

  /* Looks up a string member at the top level of a JSON object body, e.g. Stripe's "type" or
   * Slack's "challenge". Writes the unescaped UTF-8 value to `out` and its length to *out_len.
   * Returns ANM_OK, ANM_ERR_INVALID_ARGUMENT when the body is not a JSON object or the member
   * is absent or not a string, or ANM_ERR_BUFFER_TOO_SMALL. Nested objects are skipped, never
   * searched. since 1.0 */
  anm_status (*json_find_string)(anm_bytes json, anm_str key, char* out, size_t out_cap,
                                 size_t* out_len);

  /* Records the verdict. `message` is a short lower-case sentence for a person, e.g.
   * "timestamp is 412 s older than the 300 s tolerance"; it is copied. A verify call that
   * returns ANM_OK without calling this is treated as ANM_REASON_INTERNAL. since 1.0 */
  void (*result_set_verdict)(anm_result* result, anm_verdict verdict, anm_reason reason,
                             anm_str message);

  /* Records the provider's own event type (e.g. "payment_intent.succeeded") and delivery id
   * (e.g. GitHub's X-GitHub-Delivery) where the request carries them. Both are copied; pass an
   * empty view for one that is unknown. since 1.0 */
  void (*result_set_event)(anm_result* result, anm_str event_type, anm_str delivery_id);

  /* Asks the edge to answer the sender with this response instead of its default, e.g. to
   * echo a handshake challenge. `status` must be 200..299; `content_type` and `body` are
   * copied. The edge still stores the request. since 1.0 */
  void (*result_set_response)(anm_result* result, int32_t status, anm_str content_type,
                              anm_bytes body);

  /* Append new services here only, each marked with the minor it arrived in. */
};

/* ----------------------------------------------------------------------------------------- */
/* What the plugin exports                                                                   */
/* ----------------------------------------------------------------------------------------- */

/* The plugin's descriptor: static, const, plugin-owned, valid as long as the library is
 * loaded. The host reads struct_size and abi_major before anything else. */
typedef struct anm_plugin {
  uint32_t struct_size; /* sizeof(anm_plugin) as the plugin was built; since 1.0 */
  uint16_t abi_major;   /* ANM_ABI_MAJOR the plugin was built against; since 1.0 */
  uint16_t abi_minor;   /* the lowest host minor whose services the plugin uses; since 1.0 */

  const char* name;    /* provider name, lower-case [a-z0-9_-]{1,32}, e.g. "stripe"; since 1.0 */
  const char* version; /* the plugin's own version, e.g. "1.2.0"; since 1.0 */
  const char* summary; /* one line for listings; may be NULL; since 1.0 */

  /* Called once after loading, before any other hook. May be NULL. Sets *state to whatever
   * the plugin wants back in later calls (NULL is fine). On failure returns non-OK and writes a
   * NUL-terminated reason of at most err_cap bytes to `err`; the plugin is then not used and
   * shutdown is not called. since 1.0 */
  anm_status (*init)(const anm_host_api* host, void** state, char* err, size_t err_cap);

  /* Called once before the library is released, after every other call has returned. May be
   * NULL. since 1.0 */
  void (*shutdown)(void* state);

  /* Checks a hook's settings when the hook is created, so that a typo in an option is refused
   * at once instead of failing every webhook later. May be NULL (everything is accepted).
   * Returns ANM_OK or ANM_ERR_INVALID_ARGUMENT with a NUL-terminated reason in `err`.
   * since 1.0 */
  anm_status (*check_settings)(void* state, const anm_settings* settings, char* err,
                               size_t err_cap);

  /* Verifies one request and reports through `result`. Required. Returns ANM_OK whenever a
   * verdict was recorded (valid or not); any other status means the plugin failed, and the
   * edge stores the request as invalid with ANM_REASON_INTERNAL and `err` as the message.
   * since 1.0 */
  anm_status (*verify)(void* state, const anm_settings* settings, const anm_request* request,
                       anm_result* result, char* err, size_t err_cap);

  /* Append new hooks here only, each marked with the minor it arrived in. */
} anm_plugin;

/* The entry function's type. A plugin defines it as
 *   ANM_EXPORT const anm_plugin* anm_plugin_entry(void) { return &my_descriptor; }
 * It must have no side effects: the host may call it more than once. Returning NULL refuses
 * loading. */
typedef const anm_plugin* (*anm_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ANONYMILY_PLUGIN_H */
