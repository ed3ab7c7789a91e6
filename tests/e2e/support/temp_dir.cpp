// tests/e2e/support/temp_dir.cpp: a private directory per test, removed with everything in it.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/temp_dir.h"

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace anm::e2e {

TempDir::TempDir() {
  // mkdtemp gives a name nobody else holds, so parallel tests never share a directory.
  std::string pattern = (std::filesystem::temp_directory_path() / "anm-e2e-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("could not create temp dir pattern=" + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::sub(const std::string& name) const {
  std::filesystem::path dir = path_ / name;
  std::filesystem::create_directories(dir);
  return dir;
}

std::string readFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace anm::e2e
