#!/usr/bin/env bash
# tests/packaging/install_layout.sh: installs the build into a DESTDIR as a system install
# (`cmake --install BUILD --prefix /usr`) and checks the layout: every file in its place with
# its mode, nothing else, programs that run and name no build directory, a unit and a config
# that name the installed paths. The DESTDIR stays for the other packaging tests (a CTest
# fixture); packaging_cleanup removes it.
# SPDX-License-Identifier: Apache-2.0
#
# usage: install_layout.sh CMAKE BUILD_DIR DESTDIR EXPECTED_FILES
set -euo pipefail

cmake_bin=$1
build_dir=$2
root=$3
expected=$4

fail() {
  echo "install_layout: $*" >&2
  exit 1
}

rm -rf "$root"
mkdir -p "$root"
DESTDIR="$root" "$cmake_bin" --install "$build_dir" --prefix /usr >"$root.log" 2>&1 ||
  { cat "$root.log" >&2; fail "cmake --install failed"; }

# Exactly the expected files and directories, with their modes. A directory with something in
# it (usr/, usr/lib/, ...) is implied by its content; only empty ones are entries of their own.
want=$(grep -v '^#' "$expected" | sort -k2)
have=$(cd "$root" && find . -mindepth 1 \( -type f -o -type l -o -type d -empty \) -printf '%m %P %y\n' |
       awk '{ print $1 " " $2 ($3 == "d" ? "/" : "") }' | sort -k2)
if [[ "$have" != "$want" ]]; then
  diff <(echo "$want") <(echo "$have") >&2 || true
  fail "the install differs from $expected (< expected, > installed)"
fi

# No file or directory the service's users could change: nothing writable by group or others.
writable=$(cd "$root" && find . -perm /022 -printf '%m %P\n')
[[ -z "$writable" ]] || fail "writable by group or others: $writable"

# The programs run from their installed place and look for no library in the build tree.
for program in usr/bin/anonymily-edge usr/bin/anonymily; do
  if readelf -d "$root/$program" | grep -qE 'R(UN)?PATH'; then
    fail "$program keeps a run path: $(readelf -d "$root/$program" | grep -E 'R(UN)?PATH')"
  fi
done
"$root/usr/bin/anonymily-edge" --version | grep -q '^anonymily-edge [0-9]' ||
  fail "the installed edge does not run"

# The unit starts the installed edge with the installed config; the config points at the
# installed plugins and at the unit's state directory.
unit="$root/usr/lib/systemd/system/anonymily-edge.service"
grep -qx 'ExecStart=/usr/bin/anonymily-edge --config /etc/anonymily/edge.conf' "$unit" ||
  fail "ExecStart= does not run /usr/bin/anonymily-edge --config /etc/anonymily/edge.conf"
grep -qx 'StateDirectory=anonymily' "$unit" || fail "no StateDirectory=anonymily"
grep -qx 'ConfigurationDirectory=anonymily' "$unit" || fail "no ConfigurationDirectory=anonymily"
grep -qx 'plugin_dir = /usr/lib/anonymily/plugins' "$root/etc/anonymily/edge.conf" ||
  fail "edge.conf does not name /usr/lib/anonymily/plugins"
grep -qx 'data_dir = /var/lib/anonymily' "$root/etc/anonymily/edge.conf" ||
  fail "edge.conf does not name /var/lib/anonymily"
if grep -rq "$build_dir" "$unit" "$root/etc/anonymily/edge.conf"; then
  fail "the unit or edge.conf names the build directory"
fi
# Installing again keeps an edge.conf the operator changed and puts the new default beside it.
conf="$root/etc/anonymily/edge.conf"
cp -p "$conf" "$root.conf"
echo "listen = 127.0.0.1:9090" >>"$conf"
DESTDIR="$root" "$cmake_bin" --install "$build_dir" --prefix /usr >"$root.log" 2>&1 ||
  { cat "$root.log" >&2; fail "the second cmake --install failed"; }
grep -qx 'listen = 127.0.0.1:9090' "$conf" || fail "a second install overwrote a changed edge.conf"
cmp -s "$root.conf" "$conf.new" || fail "a second install did not put the new default in edge.conf.new"
mv "$root.conf" "$conf"
rm "$conf.new" "$root.log"

echo "install_layout: $(echo "$want" | wc -l) entries in place under $root"
