// core/dashboard/assets.h: the dashboard's files, embedded in the binary at build time.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string_view>

namespace anm::dashboard {

/// One file of core/dashboard/web/. Every view points into static storage that lives as long
/// as the program.
struct Asset {
  std::string_view path;         ///< as requested, e.g. "/index.html", "/app/main.js"
  std::string_view contentType;  ///< e.g. "text/javascript; charset=utf-8"
  std::string_view etag;         ///< a strong ETag, quotes included: a prefix of the SHA-256
  std::string_view bytes;        ///< the file exactly as it is in the source tree
};

/// The file at `path` ("/index.html", "/app/main.js"), or null when there is none. The lookup
/// is exact: no "/" to "/index.html" mapping, no decoding, no "..".
const Asset* findAsset(std::string_view path);

/// Every file, sorted by path.
struct AssetList {
  const Asset* begin() const { return first; }
  const Asset* end() const { return first + count; }
  const Asset* first = nullptr;
  size_t count = 0;
};
AssetList allAssets();

}  // namespace anm::dashboard
