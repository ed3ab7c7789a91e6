#!/usr/bin/env bash
# tests/packaging/syscalls.sh: runs the installed edge under strace through a service's life
# (start, ingest, API, a relay stream, a plugin replaced and reloaded, stop) and checks what
# it asked of the kernel against the unit's sandbox, option by option:
#   SystemCallFilter=@system-service  every system call is in the set, as this machine's
#                                     systemd-analyze lists it; none from @resources
#   RestrictAddressFamilies=          sockets of AF_UNIX, AF_INET and AF_INET6 only
#   MemoryDenyWriteExecute=           no mmap with PROT_WRITE|PROT_EXEC, no mprotect or
#                                     pkey_mprotect with PROT_EXEC, no shmat with SHM_EXEC
#                                     (the seccomp rules systemd 252 installs)
#   ProtectSystem=strict, ProtectHome=, PrivateTmp=
#                                     every file written, created, renamed or removed is in
#                                     the data directory (the unit's StateDirectory=)
#   ProcSubset=pid, ProtectProc=      /proc is used for the edge's own process only
#   PrivateDevices=                   /dev for the pseudo devices only
#   RestrictNamespaces=, LockPersonality=, RestrictSUIDSGID=, NoNewPrivileges=
#                                     no namespace flags, no personality(), no set-id modes,
#                                     no program run
# SPDX-License-Identifier: Apache-2.0
#
# usage: syscalls.sh SERVICE_TEST WORK_DIR       (exit 77: no strace or systemd-analyze here)
set -euo pipefail

service_test=$1
work=$2

fail() {
  echo "syscalls: $*" >&2
  exit 1
}

for tool in strace systemd-analyze; do
  if ! command -v "$tool" >/dev/null; then
    echo "syscalls: $tool is not installed (scripts/install-deps installs it)" >&2
    exit 77
  fi
done
rm -rf "$work"
mkdir -p "$work"
trace="$work/trace"

# The scenario, with the edge (and every thread of it) traced into one file.
ANM_PACKAGING_WORK_DIR="$work" \
  ANM_PACKAGING_WRAPPER="strace -f -qq -s 512 -o $trace -e trace=all" \
  "$service_test" --gtest_filter='*UnderWrapper*' || fail "the scenario failed under strace"
[[ -s "$trace" ]] || fail "strace wrote nothing"

# One line per call start: "PID name(args..." (resumed halves carry no name or arguments).
calls="$work/calls"
grep -E '^[0-9]+ +[a-z_0-9]+\(' "$trace" | sed -E 's/^[0-9]+ +//' >"$calls"
names=$(sed -E 's/\(.*//' "$calls" | sort -u)
echo "syscalls: $(wc -l <"$calls") calls of $(echo "$names" | wc -l) kinds"

# A set as systemd-analyze lists it, with the sets inside it expanded.
expand() {
  systemd-analyze syscall-filter "$1" | awk 'NR > 1 && NF && $1 !~ /^#/ { print $1 }' |
    while read -r entry; do
      if [[ "$entry" == @* ]]; then expand "$entry"; else echo "$entry"; fi
    done
}
allowed=$(expand @system-service | sort -u)
[[ $(echo "$allowed" | wc -l) -gt 100 ]] || fail "could not read @system-service"
outside=$(comm -23 <(echo "$names") <(echo "$allowed"))
[[ -z "$outside" ]] || fail "system calls outside @system-service: $(echo $outside)"
resources=$(comm -12 <(echo "$names") <(expand @resources | sort -u))
[[ -z "$resources" ]] || fail "system calls from @resources: $(echo $resources)"

# Address families.
families=$(grep -oE '^socket(pair)?\(AF_[A-Z0-9]+' "$calls" | sed 's/.*(//' | sort -u)
echo "syscalls: address families: $(echo $families)"
for family in $families; do
  [[ "$family" =~ ^AF_(UNIX|INET|INET6)$ ]] || fail "a socket of family $family"
done
echo "$families" | grep -qx AF_UNIX || fail "no AF_UNIX socket: was the notify socket used?"

# Writable and executable memory.
wx=$(grep -E '^(mmap|mmap2)\(.*PROT_WRITE\|PROT_EXEC|^(mmap|mmap2)\(.*PROT_EXEC\|PROT_WRITE|^(mprotect|pkey_mprotect)\([^,]*, [^,]*, [^,]*PROT_EXEC|^shmat\(.*SHM_EXEC' "$calls" || true)
[[ -z "$wx" ]] || fail "memory made writable and executable, or executable later: $wx"
grep -qE '^mmap\(.*PROT_EXEC' "$calls" || fail "no executable mapping seen: is the trace complete?"
grep -q '^memfd_create("anm-plugin:anm-github.so"' "$calls" ||
  fail "no plugin was loaded from an in-memory copy"
[[ $(grep -c '^memfd_create("anm-plugin:anm-github.so"' "$calls") -ge 2 ]] ||
  fail "the replaced plugin was not loaded again"

# Paths: the first quoted argument of calls that take one (two for rename and link).
path_calls='open|openat|openat2|creat|stat|lstat|newfstatat|statx|access|faccessat|faccessat2|readlink|readlinkat|mkdir|mkdirat|rmdir|unlink|unlinkat|rename|renameat|renameat2|link|linkat|symlink|symlinkat|chmod|fchmodat|chown|lchown|fchownat|truncate|utimensat|inotify_add_watch|chdir|mknod|mknodat'
paths() { grep -E "^($path_calls)\(" "$calls" | grep -oE '"[^"]*"' | tr -d '"'; }
writes=$(grep -E '^(open|openat|openat2)\(.*(O_WRONLY|O_RDWR|O_CREAT|O_TRUNC)|^(creat|mkdir|mkdirat|rmdir|unlink|unlinkat|rename|renameat|renameat2|link|linkat|symlink|symlinkat|chmod|fchmodat|chown|lchown|fchownat|truncate|mknod|mknodat)\(' "$calls" |
         grep -oE '"[^"]*"' | tr -d '"' | sort -u)
data="$work/data"
for path in $writes; do
  [[ "$path" == "$data" || "$path" == "$data"/* ]] || fail "wrote outside the data directory: $path"
done
[[ -n "$writes" ]] || fail "no write seen: is the trace complete?"

pids=$(grep -oE '^[0-9]+' "$trace" | sort -u)
for path in $(paths | grep -E '^/proc(/|$)' | sort -u); do
  owner=$(echo "$path" | cut -d/ -f3)
  [[ "$owner" == self || "$owner" == thread-self ]] && continue
  echo "$pids" | grep -qx "$owner" || fail "looked at /proc beyond its own process: $path"
done
for path in $(paths | grep -E '^/dev(/|$)' | sort -u); do
  [[ "$path" =~ ^/dev/(null|zero|full|random|urandom|tty)$ ]] || fail "used a device: $path"
done
for path in $(paths | grep -E '^/(sys|proc/sys)(/|$)' | sort -u); do
  if echo "$writes" | grep -qxF "$path"; then fail "wrote a kernel tunable: $path"; fi
done

# Namespaces, personality, set-id modes, programs.
if grep -qE 'CLONE_NEW' "$calls"; then fail "asked for a new namespace: $(grep -m1 CLONE_NEW "$calls")"; fi
if grep -qE '^(unshare|setns|personality)\(' "$calls"; then
  fail "$(grep -m1 -E '^(unshare|setns|personality)\(' "$calls")"
fi
if grep -E '^(chmod|fchmod|fchmodat)\(' "$calls" | grep -qE ', 0?[2467][0-7]{3}'; then
  fail "set a set-id mode: $(grep -E '^(chmod|fchmod|fchmodat)\(' "$calls" | grep -E ', 0?[2467][0-7]{3}')"
fi
[[ $(grep -c '^execve(' "$calls") -eq 1 ]] || fail "ran another program: $(grep '^execve(' "$calls")"

rm -rf "$work"
echo "syscalls: every call, family, mapping and path fits the unit's sandbox"
