/* tests/abi/abi_layout.c: freezes the 1.0 ABI layout on LP64; a moved member fails the build.
 * SPDX-License-Identifier: Apache-2.0 */
#include <anonymily/plugin.h>
#include <stddef.h>

#define ANM_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), "size of " #type)
#define ANM_ASSERT_AT(type, member, offset) \
  _Static_assert(offsetof(type, member) == (offset), "offset of " #type "." #member)

/* The numbers are stored in databases and compiled into plugins: they never change. */
_Static_assert(ANM_ABI_MAJOR == 1, "ABI major");
_Static_assert(ANM_OK == 0 && ANM_ERR_INVALID_ARGUMENT == 1 && ANM_ERR_BUFFER_TOO_SMALL == 2 &&
                   ANM_ERR_UNSUPPORTED == 3 && ANM_ERR_INTERNAL == 4,
               "status values");
_Static_assert(ANM_VERDICT_VALID == 1 && ANM_VERDICT_INVALID == 2 && ANM_VERDICT_UNSIGNED == 3,
               "verdict values");
_Static_assert(ANM_REASON_OK == 0 && ANM_REASON_HEADER_MISSING == 1 &&
                   ANM_REASON_HEADER_MALFORMED == 2 && ANM_REASON_TIMESTAMP_MISSING == 3 &&
                   ANM_REASON_TIMESTAMP_OUTSIDE == 4 && ANM_REASON_SIGNATURE_MISMATCH == 5 &&
                   ANM_REASON_SECRET_MISSING == 6 && ANM_REASON_ALGORITHM_REFUSED == 7 &&
                   ANM_REASON_NOT_SIGNED == 8 && ANM_REASON_INTERNAL == 9,
               "reason values");
_Static_assert(ANM_LOG_DEBUG == 0 && ANM_LOG_INFO == 1 && ANM_LOG_WARNING == 2 &&
                   ANM_LOG_ERROR == 3,
               "log levels");
_Static_assert(ANM_HASH_SHA1 == 1 && ANM_HASH_SHA256 == 2 && ANM_HASH_SHA512 == 3, "hashes");
_Static_assert(ANM_TOLERANCE_DEFAULT == -1, "tolerance default");
_Static_assert(sizeof(anm_status) == 4 && sizeof(anm_verdict) == 4 && sizeof(anm_reason) == 4 &&
                   sizeof(anm_log_level) == 4 && sizeof(anm_hash) == 4,
               "enums travel as int32_t");

#if defined(__x86_64__) || defined(__LP64__)
_Static_assert(sizeof(void*) == 8 && sizeof(size_t) == 8, "LP64");

ANM_ASSERT_SIZE(anm_bytes, 16);
ANM_ASSERT_AT(anm_bytes, ptr, 0);
ANM_ASSERT_AT(anm_bytes, len, 8);

ANM_ASSERT_SIZE(anm_str, 16);
ANM_ASSERT_AT(anm_str, ptr, 0);
ANM_ASSERT_AT(anm_str, len, 8);

ANM_ASSERT_SIZE(anm_header, 32);
ANM_ASSERT_AT(anm_header, name, 0);
ANM_ASSERT_AT(anm_header, value, 16);

ANM_ASSERT_SIZE(anm_option, 32);
ANM_ASSERT_AT(anm_option, key, 0);
ANM_ASSERT_AT(anm_option, value, 16);

ANM_ASSERT_SIZE(anm_request, 112);
ANM_ASSERT_AT(anm_request, struct_size, 0);
ANM_ASSERT_AT(anm_request, reserved, 4);
ANM_ASSERT_AT(anm_request, method, 8);
ANM_ASSERT_AT(anm_request, path_suffix, 24);
ANM_ASSERT_AT(anm_request, raw_query, 40);
ANM_ASSERT_AT(anm_request, headers, 56);
ANM_ASSERT_AT(anm_request, header_count, 64);
ANM_ASSERT_AT(anm_request, body, 72);
ANM_ASSERT_AT(anm_request, received_at_ms, 88);
ANM_ASSERT_AT(anm_request, hook_id, 96);

ANM_ASSERT_SIZE(anm_settings, 48);
ANM_ASSERT_AT(anm_settings, struct_size, 0);
ANM_ASSERT_AT(anm_settings, reserved, 4);
ANM_ASSERT_AT(anm_settings, secret, 8);
ANM_ASSERT_AT(anm_settings, tolerance_s, 24);
ANM_ASSERT_AT(anm_settings, options, 32);
ANM_ASSERT_AT(anm_settings, option_count, 40);

ANM_ASSERT_SIZE(anm_host_api, 120);
ANM_ASSERT_AT(anm_host_api, struct_size, 0);
ANM_ASSERT_AT(anm_host_api, abi_major, 4);
ANM_ASSERT_AT(anm_host_api, abi_minor, 6);
ANM_ASSERT_AT(anm_host_api, log, 8);
ANM_ASSERT_AT(anm_host_api, hmac, 16);
ANM_ASSERT_AT(anm_host_api, digest, 24);
ANM_ASSERT_AT(anm_host_api, equal_constant_time, 32);
ANM_ASSERT_AT(anm_host_api, base64_encode, 40);
ANM_ASSERT_AT(anm_host_api, base64_decode, 48);
ANM_ASSERT_AT(anm_host_api, hex_encode, 56);
ANM_ASSERT_AT(anm_host_api, hex_decode, 64);
ANM_ASSERT_AT(anm_host_api, find_header, 72);
ANM_ASSERT_AT(anm_host_api, find_option, 80);
ANM_ASSERT_AT(anm_host_api, json_find_string, 88);
ANM_ASSERT_AT(anm_host_api, result_set_verdict, 96);
ANM_ASSERT_AT(anm_host_api, result_set_event, 104);
ANM_ASSERT_AT(anm_host_api, result_set_response, 112);

ANM_ASSERT_SIZE(anm_plugin, 64);
ANM_ASSERT_AT(anm_plugin, struct_size, 0);
ANM_ASSERT_AT(anm_plugin, abi_major, 4);
ANM_ASSERT_AT(anm_plugin, abi_minor, 6);
ANM_ASSERT_AT(anm_plugin, name, 8);
ANM_ASSERT_AT(anm_plugin, version, 16);
ANM_ASSERT_AT(anm_plugin, summary, 24);
ANM_ASSERT_AT(anm_plugin, init, 32);
ANM_ASSERT_AT(anm_plugin, shutdown, 40);
ANM_ASSERT_AT(anm_plugin, check_settings, 48);
ANM_ASSERT_AT(anm_plugin, verify, 56);
#endif

/* An object file must define something; this also proves ANM_HAS_MEMBER reads as intended. */
int anm_abi_layout_checked(const anm_plugin* plugin) {
  return ANM_HAS_MEMBER(plugin, anm_plugin, verify);
}
