/* tests/abi/header_check.c: plugin.h must compile as strict C11, twice included, warning-free.
 * SPDX-License-Identifier: Apache-2.0 */
#include <anonymily/plugin.h>

int anm_header_check_c(const anm_host_api* host, const anm_request* request) {
  anm_str name = {"X-Test", 6};
  anm_str value = {NULL, 0};
  return ANM_HAS_MEMBER(host, anm_host_api, result_set_response) &&
         host->find_header(request, name, 0, &value);
}
