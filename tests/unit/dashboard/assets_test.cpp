// tests/unit/dashboard/assets_test.cpp: the embedded dashboard files against the source tree.
// SPDX-License-Identifier: Apache-2.0
#include "core/dashboard/assets.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace anm::dashboard {
namespace {

namespace fs = std::filesystem;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string sha256Hex(const std::string& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

TEST(DashboardAssets, EveryFileOfTheSourceTreeIsEmbeddedByteForByte) {
  const fs::path web = ANM_DASHBOARD_WEB_DIR;
  std::set<std::string> onDisk;
  for (const auto& entry : fs::recursive_directory_iterator(web)) {
    if (!entry.is_regular_file()) continue;
    // Hidden files and editor backups are left out of the build, as core/dashboard says.
    const std::string name = entry.path().filename().string();
    if (name.front() == '.' || name.back() == '~') continue;
    const std::string path = "/" + fs::relative(entry.path(), web).generic_string();
    onDisk.insert(path);

    const Asset* asset = findAsset(path);
    ASSERT_NE(asset, nullptr) << path;
    EXPECT_EQ(asset->path, path);
    EXPECT_EQ(asset->bytes, readFile(entry.path())) << path;
    // A strong ETag: quoted, the first 128 bits of the SHA-256 of the bytes.
    EXPECT_EQ(asset->etag, "\"" + sha256Hex(readFile(entry.path())).substr(0, 32) + "\"") << path;
  }
  EXPECT_GE(onDisk.size(), 3u) << "index.html, a script and a style sheet at least";

  std::set<std::string> embedded;
  for (const Asset& asset : allAssets()) embedded.insert(std::string(asset.path));
  EXPECT_EQ(embedded, onDisk) << "a file removed from web/ must leave the binary too";
}

TEST(DashboardAssets, ContentTypesLetBrowsersRunScriptsUnderNosniff) {
  ASSERT_NE(findAsset("/index.html"), nullptr);
  EXPECT_EQ(findAsset("/index.html")->contentType, "text/html; charset=utf-8");
  ASSERT_NE(findAsset("/app/main.js"), nullptr);
  EXPECT_EQ(findAsset("/app/main.js")->contentType, "text/javascript; charset=utf-8");
  ASSERT_NE(findAsset("/app/dashboard.css"), nullptr);
  EXPECT_EQ(findAsset("/app/dashboard.css")->contentType, "text/css; charset=utf-8");
}

TEST(DashboardAssets, ListIsSortedAndLookupsAreExact) {
  std::string_view previous;
  for (const Asset& asset : allAssets()) {
    EXPECT_LT(previous, asset.path);
    previous = asset.path;
  }
  EXPECT_EQ(findAsset("/"), nullptr);
  EXPECT_EQ(findAsset("index.html"), nullptr);
  EXPECT_EQ(findAsset("/app/../index.html"), nullptr);
  EXPECT_EQ(findAsset("/APP/MAIN.JS"), nullptr);
  EXPECT_EQ(findAsset("/app/main.js/"), nullptr);
  EXPECT_EQ(findAsset(""), nullptr);
}

}  // namespace
}  // namespace anm::dashboard
