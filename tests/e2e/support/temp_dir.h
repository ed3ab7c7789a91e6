// tests/e2e/support/temp_dir.h: a private directory per test, removed with everything in it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <string>

namespace anm::e2e {

/// A fresh directory under the system temp dir. The destructor removes it recursively, so a
/// test that fails halfway leaves nothing behind.
class TempDir {
 public:
  TempDir();
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  /// Creates (if needed) and returns a subdirectory.
  std::filesystem::path sub(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

/// The whole content of a file, or "" when it cannot be read.
std::string readFile(const std::filesystem::path& file);

}  // namespace anm::e2e
