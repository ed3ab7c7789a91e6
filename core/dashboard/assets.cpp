// core/dashboard/assets.cpp: lookups in the embedded dashboard files.
// SPDX-License-Identifier: Apache-2.0
#include "core/dashboard/assets.h"

#include <algorithm>

#include "asset_table.h"

namespace anm::dashboard {

const Asset* findAsset(std::string_view path) {
  const Asset* end = kAssetTable + kAssetCount;
  const Asset* found =
      std::lower_bound(kAssetTable, end, path,
                       [](const Asset& asset, std::string_view p) { return asset.path < p; });
  if (found == end || found->path != path) return nullptr;
  return found;
}

AssetList allAssets() { return AssetList{kAssetTable, kAssetCount}; }

}  // namespace anm::dashboard
