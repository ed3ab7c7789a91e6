#!/usr/bin/env bash
# tests/sdk_consumer/run_consumer.sh: installs the SDK, builds the example plugin out of tree
# against it (two releases) and hands the result to the check program.
# SPDX-License-Identifier: Apache-2.0
#
# usage: run_consumer.sh CMAKE GENERATOR C_COMPILER BUILD_DIR EXAMPLE_SRC WORK_DIR CHECK [EDGE]
set -euo pipefail

cmake_bin=$1
generator=$2
c_compiler=$3
build_dir=$4
example_src=$5
work=$6
check=$7
edge=${8:-}

fail() {
  echo "sdk_consumer: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

# 1. Install only the SDK component of this build into a private prefix.
"$cmake_bin" --install "$build_dir" --component sdk --prefix "$prefix"
for f in include/anonymily/plugin.h \
         lib/cmake/anonymily-sdk/anonymily-sdk-config.cmake \
         lib/cmake/anonymily-sdk/anonymily-sdk-config-version.cmake \
         lib/cmake/anonymily-sdk/anonymily-sdk-targets.cmake \
         lib/cmake/anonymily-sdk/AnonymilyPlugin.cmake; do
  [[ -f "$prefix/$f" ]] || fail "the SDK install lacks $f"
done

# 2. Build and install the example as a separate project that knows only the prefix.
"$cmake_bin" -S "$example_src" -B "$work/example-build" -G "$generator" \
  -DCMAKE_C_COMPILER="$c_compiler" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix"
"$cmake_bin" --build "$work/example-build"
"$cmake_bin" --install "$work/example-build" --prefix "$work/example-install"
module="$work/example-install/lib/anonymily/plugins/anm-example.so"
[[ -f "$module" ]] || fail "the example did not install $module"

# The module exports the entry function and nothing else (hidden visibility works).
exported=$(nm -D --defined-only "$module" | awk 'NF == 3 && $2 ~ /^[TDBR]$/ { print $3 }' | sort)
[[ "$exported" == "anm_plugin_entry" ]] || fail "unexpected exported symbols: $exported"

# 3. The build tree's own package works too, for developers who never install.
"$cmake_bin" -S "$example_src" -B "$work/example-build-tree" -G "$generator" \
  -DCMAKE_C_COMPILER="$c_compiler" -DCMAKE_BUILD_TYPE=Release \
  -Danonymily-sdk_DIR="$build_dir/sdk/anonymily-sdk"
"$cmake_bin" --build "$work/example-build-tree"
[[ -f "$work/example-build-tree/anm-example.so" ]] || fail "the build-tree package built nothing"

# 4. The package version is the ABI version: another major is refused at configure time.
mkdir -p "$work/wrong-major"
cat > "$work/wrong-major/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.23)
project(wrong_major LANGUAGES C)
find_package(anonymily-sdk 2.0 REQUIRED)
CMAKE
if "$cmake_bin" -S "$work/wrong-major" -B "$work/wrong-major/build" -G "$generator" \
     -DCMAKE_C_COMPILER="$c_compiler" -DCMAKE_PREFIX_PATH="$prefix" \
     > "$work/wrong-major.log" 2>&1; then
  fail "find_package(anonymily-sdk 2.0) was accepted by a 1.x SDK"
fi
grep -q "anonymily-sdk" "$work/wrong-major.log" || fail "no version message for the wrong major"

# 5. A second release of the same plugin, for replacing the first in a running edge.
"$cmake_bin" -S "$example_src" -B "$work/example-build-v2" -G "$generator" \
  -DCMAKE_C_COMPILER="$c_compiler" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DANM_EXAMPLE_VERSION=2.0.0
"$cmake_bin" --build "$work/example-build-v2"
module_v2="$work/example-build-v2/anm-example.so"
[[ -f "$module_v2" ]] || fail "the second release did not build"

# 6. A fresh plugin directory with only the example, used by the registry and the real edge.
mkdir -p "$work/plugins"
cp "$module" "$work/plugins/"
ANM_PLUGIN_DIR="$work/plugins" ANM_EDGE_BIN="$edge" ANM_WORK_DIR="$work" \
  ANM_EXAMPLE_V1="$module" ANM_EXAMPLE_V2="$module_v2" "$check"
