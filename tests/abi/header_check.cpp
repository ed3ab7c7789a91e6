// tests/abi/header_check.cpp: plugin.h must compile as strict C++17, twice included, warning-free.
// SPDX-License-Identifier: Apache-2.0
#include <anonymily/plugin.h>

#include <type_traits>

static_assert(std::is_standard_layout_v<anm_plugin> && std::is_trivially_copyable_v<anm_plugin>,
              "the descriptor is a plain C struct in C++ too");
static_assert(std::is_same_v<anm_plugin_entry_fn, const anm_plugin* (*)()>, "entry type");

extern "C" int anm_header_check_cpp(const anm_host_api* host, const anm_request* request) {
  anm_str name{"X-Test", 6};
  anm_str value{nullptr, 0};
  return ANM_HAS_MEMBER(host, anm_host_api, result_set_response) &&
         host->find_header(request, name, 0, &value);
}
