#!/usr/bin/env bash
# tests/packaging/mdwe.sh: MemoryDenyWriteExecute=yes as newer systemd versions apply it, with
# the kernel's own lock (prctl PR_SET_MDWE, Linux 6.3 and later): the installed edge, started
# under that lock, must still load every plugin from its in-memory copies, serve, reload and
# stop (the scenario of service_test). syscalls.sh checks the seccomp form of the same option.
# SPDX-License-Identifier: Apache-2.0
#
# usage: mdwe.sh MDWE_EXEC SERVICE_TEST          (exit 77: the kernel has no such lock)
set -euo pipefail

mdwe_exec=$1
service_test=$2

fail() {
  echo "mdwe: $*" >&2
  exit 1
}

# The probe must see the difference, or the scenario below would prove nothing: without the
# lock it may make memory executable, and after the lock and an exec it may not.
if "$mdwe_exec" --probe; then fail "the probe finds memory locked without the lock"; fi
status=0
"$mdwe_exec" "$mdwe_exec" --probe || status=$?
[[ $status -eq 77 ]] && exit 77
[[ $status -eq 0 ]] || fail "the lock did not hold across exec"

ANM_PACKAGING_WRAPPER="$mdwe_exec" "$service_test" --gtest_filter='*UnderWrapper*' ||
  fail "the edge did not serve under the write-xor-execute lock"
echo "mdwe: the edge loads its plugins and serves under PR_MDWE_REFUSE_EXEC_GAIN"
