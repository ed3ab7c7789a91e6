/* tests/packaging/mdwe_exec.c: runs a program with the kernel's write-xor-execute lock on, as
 * systemd's MemoryDenyWriteExecute=yes does with prctl(PR_SET_MDWE) where the kernel has it
 * (Linux 6.3 and later; older systemd versions use a seccomp filter to the same effect).
 * SPDX-License-Identifier: Apache-2.0
 *
 *   mdwe_exec PROGRAM [ARGS...]   sets PR_MDWE_REFUSE_EXEC_GAIN, then execs PROGRAM; the lock
 *                                 is inherited across exec and cannot be lifted again
 *   mdwe_exec --probe             exits 0 when this process may not map memory writable and
 *                                 executable nor make a mapping executable, 1 when it may
 * Exit code 77 means the kernel has no such lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

/* 0 when both ways of gaining executable memory are refused, 1 when either works. */
static int probe(void) {
  const size_t size = (size_t)sysconf(_SC_PAGESIZE);
  void* both =
      mmap(NULL, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (both != MAP_FAILED) {
    munmap(both, size);
    printf("a writable and executable mapping was allowed\n");
    return 1;
  }
  void* data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return 1;
  const int gained = mprotect(data, size, PROT_READ | PROT_EXEC) == 0;
  munmap(data, size);
  if (gained) {
    printf("making a data mapping executable was allowed\n");
    return 1;
  }
  printf("writable-and-executable and later-executable memory are refused\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0) return probe();
  if (argc < 2) {
    fprintf(stderr, "usage: mdwe_exec PROGRAM [ARGS...] | mdwe_exec --probe\n");
    return 2;
  }
  if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0L, 0L, 0L) != 0) {
    fprintf(stderr, "mdwe_exec: prctl(PR_SET_MDWE) failed: %s\n", strerror(errno));
    return errno == EINVAL ? 77 : 1;
  }
  execv(argv[1], argv + 1);
  fprintf(stderr, "mdwe_exec: could not run %s: %s\n", argv[1], strerror(errno));
  return 127;
}
