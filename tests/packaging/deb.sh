#!/usr/bin/env bash
# tests/packaging/deb.sh: builds the Debian package with CPack from the build's install rules
# and checks it with dpkg-deb: the files and their modes (the same manifest as the DESTDIR
# install, owned by root), the unit and config identical to the DESTDIR install's, edge.conf as
# the package's one conffile, the maintainer scripts, and the metadata.
# SPDX-License-Identifier: Apache-2.0
#
# usage: deb.sh CPACK BUILD_DIR WORK_DIR VERSION EXPECTED_FILES DESTDIR
set -euo pipefail

cpack_bin=$1
build_dir=$2
work=$3
version=$4
expected=$5
root=$6

fail() {
  echo "deb: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work"
"$cpack_bin" -G DEB --config "$build_dir/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
arch=$(dpkg --print-architecture)
deb="$work/out/anonymily_${version}-1_${arch}.deb"
[[ -f "$deb" ]] || fail "no $deb; cpack made: $(ls "$work/out")"

# Metadata.
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == anonymily ]] || fail "Package: $(field Package)"
[[ $(field Version) == "${version}-1" ]] || fail "Version: $(field Version)"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
[[ $(field Section) == net ]] || fail "Section: $(field Section)"
[[ $(field Maintainer) =~ ^[^\<]+\ \<[^\>]+@[^\>]+\>$ ]] || fail "Maintainer: $(field Maintainer)"
[[ $(field Description) == "self-hostable webhook relay"* ]] || fail "Description: $(field Description)"
[[ $(field Description | wc -l) -gt 2 ]] || fail "no long description"
depends=$(field Depends)
for library in libc6 libstdc++6 libssl3 libpoco libmysqlcppconn procps; do
  [[ "$depends" == *"$library"* ]] || fail "Depends lacks $library: $depends"
done

# Files: the manifest, owned by root. dpkg-deb -c lists directories too; those that only hold
# others are implied by their content, as in install_layout.sh.
listing=$(dpkg-deb -c "$deb")
if echo "$listing" | awk '{ print $2 }' | grep -qv '^root/root$'; then
  fail "files not owned by root: $(echo "$listing" | awk '$2 != "root/root"')"
fi
mode() { # ls-style permissions (rwxr-xr-x) to octal
  local p=$1 n=0 i
  for i in 0 1 2 3 4 5 6 7 8; do n=$((n * 2)); [[ ${p:i:1} != - ]] && n=$((n + 1)); done
  printf '%o' "$n"
}
have=$(echo "$listing" | while read -r perms _ _ _ _ path _; do
  path=${path#./}
  [[ -z "$path" ]] && continue
  if [[ $perms == d* ]]; then
    # A directory is an entry of its own only when nothing in the package lies inside it.
    echo "$listing" | awk '{ print $6 }' | grep -q "^\./$path.\+" && continue
  fi
  echo "$(mode "${perms:1}") $path"
done | sort -k2)
want=$(grep -v '^#' "$expected" | sort -k2)
if [[ "$have" != "$want" ]]; then
  diff <(echo "$want") <(echo "$have") >&2 || true
  fail "the package's files differ from $expected (< expected, > packaged)"
fi

# The same install rules as cmake --install: the unit and config are byte for byte the same.
dpkg-deb -x "$deb" "$work/root"
for file in usr/lib/systemd/system/anonymily-edge.service etc/anonymily/edge.conf; do
  cmp -s "$work/root/$file" "$root/$file" || fail "$file differs from the DESTDIR install"
done
"$work/root/usr/bin/anonymily-edge" --version | grep -q "^anonymily-edge $version" ||
  fail "the packaged edge does not run"
file "$work/root/usr/bin/anonymily-edge" | grep -q ', stripped' || fail "the edge is not stripped"

# Control: edge.conf is a conffile (an upgrade keeps the operator's changes), and the
# maintainer scripts are there, executable and valid sh.
dpkg-deb -e "$deb" "$work/control"
[[ "$(cat "$work/control/conffiles")" == /etc/anonymily/edge.conf ]] ||
  fail "conffiles is not exactly /etc/anonymily/edge.conf: $(cat "$work/control/conffiles")"
for script in postinst prerm postrm; do
  [[ -x "$work/control/$script" ]] || fail "no executable $script"
  sh -n "$work/control/$script" || fail "$script is not valid sh"
done

echo "deb: $(basename "$deb"), $(echo "$want" | wc -l) entries, Depends: $depends"
rm -rf "$work"
