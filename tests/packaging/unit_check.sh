#!/usr/bin/env bash
# tests/packaging/unit_check.sh: the installed systemd unit, checked by systemd's own tools
# without running it: `systemd-analyze verify` must accept it without a word, and
# `systemd-analyze security --offline=yes` must score its exposure at or below THRESHOLD
# (tenths: 20 is 2.0). Also the house rules: keys sorted within each group, a stop timeout
# above the edge's own, and the service manager's protocol as the edge speaks it.
# SPDX-License-Identifier: Apache-2.0
#
# usage: unit_check.sh DESTDIR WORK_DIR THRESHOLD     (exit 77: no systemd-analyze here)
set -euo pipefail

root=$1
work=$2
threshold=$3
unit="$root/usr/lib/systemd/system/anonymily-edge.service"

fail() {
  echo "unit_check: $*" >&2
  exit 1
}

if ! command -v systemd-analyze >/dev/null; then
  echo "unit_check: systemd-analyze is not installed (scripts/install-deps installs it)" >&2
  exit 77
fi
[[ -f "$unit" ]] || fail "no unit at $unit"
rm -rf "$work"
mkdir -p "$work"

# verify resolves ExecStart= on this machine's root, where the edge is not installed. Of the
# two ways around that, --root=DESTDIR fails on a tree that holds no systemd (no
# sysinit.target, no kill for ExecReload=), so the unit is verified as a copy whose
# ExecStart= and commented ExecStart= lines point into the DESTDIR; nothing else changes.
copy="$work/anonymily-edge.service"
sed "s#^\(\#\?ExecStart=\)/usr/bin/#\1$root/usr/bin/#" "$unit" >"$copy"
grep -q "^ExecStart=$root/usr/bin/anonymily-edge " "$copy" || fail "could not rewrite ExecStart="
if ! out=$(systemd-analyze verify --man=no "$copy" 2>&1) || [[ -n "$out" ]]; then
  fail "systemd-analyze verify complained: $out"
fi

# The check above must be able to fail: a misspelt key is reported.
mkdir -p "$work/typo"
sed 's/^ProtectSystem=strict$/ProtectSystm=strict/' "$copy" >"$work/typo/anonymily-edge.service"
out=$(systemd-analyze verify --man=no "$work/typo/anonymily-edge.service" 2>&1 || true)
[[ "$out" == *ProtectSystm* ]] || fail "verify did not report a misspelt key: $out"

# The exposure score, against the threshold (systemd-analyze counts in tenths).
if ! systemd-analyze security --offline=yes --threshold="$threshold" "$unit" >"$work/security.txt" 2>&1; then
  cat "$work/security.txt" >&2
  fail "exposure above $threshold/10"
fi
grep 'Overall exposure level' "$work/security.txt"

# Keys are sorted within each group (a run of key lines between comments or blank lines).
awk -F= '
  /^\[/ { section = $0; previous = ""; next }
  /^[A-Za-z]/ { if (previous != "" && $1 < previous) { print section ": " $1 " after " previous; bad = 1 }
                previous = $1; next }
  { previous = "" }
  END { exit bad }' "$unit" >&2 || fail "keys out of order within a group"

# The service manager's side of the edge's behaviour.
for line in Type=notify NotifyAccess=main 'ExecReload=kill -HUP $MAINPID' DynamicUser=yes \
            StateDirectory=anonymily ConfigurationDirectory=anonymily MemoryDenyWriteExecute=yes \
            SystemCallFilter=@system-service 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
            CapabilityBoundingSet=; do
  grep -qxF "$line" "$unit" || fail "the unit lacks $line"
done
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
[[ -n "$stop" && "$stop" -gt 15 ]] ||
  fail "TimeoutStopSec= must exceed shutdown.timeout_ms (15 s by default), got '$stop'"

rm -rf "$work"
echo "unit_check: verify clean, exposure within $threshold/10"
