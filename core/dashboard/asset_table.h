// core/dashboard/asset_table.h: the table embed_assets.cmake generates, read by assets.cpp.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string_view>

#include "core/dashboard/assets.h"

namespace anm::dashboard {

/// Sorted by path; kAssetCount entries.
extern const Asset kAssetTable[];
extern const size_t kAssetCount;

}  // namespace anm::dashboard
