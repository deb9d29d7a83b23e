// Host memory for large buffers: faulted in at once, as huge pages where the
// kernel allows, and files mapped rather than read.
//
// Why: touching fresh memory page by page costs a fault per 4 KiB page, and on
// a virtual machine with shadow page tables (this project's hosts) a fault is
// ~2.5 us: 100 MiB is 250 ms, most of a ResNet-50 compile (its weights go
// through the model file, protobuf's copy, f32, bf16 and the HBM image). The
// same bytes faulted in by one madvise as 2 MiB pages take ~15 ms.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isa/isa.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14
#endif

enum { BIG_BYTES = 1 << 20, PAGE = 4096 };

static void prefault(void *p, size_t n) {
  if (!p || n < BIG_BYTES) return;
  uintptr_t a = ((uintptr_t)p + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
  uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(PAGE - 1);
  if (e <= a) return;
#ifdef MADV_HUGEPAGE
  madvise((void *)a, e - a, MADV_HUGEPAGE);
#endif
  // Older kernels refuse MADV_POPULATE_WRITE: the pages then fault in as used.
  madvise((void *)a, e - a, MADV_POPULATE_WRITE);
}

void *isa_malloc_big(size_t n) {
  void *p = malloc(n ? n : 1);
  prefault(p, n);
  return p;
}

const uint8_t *isa_file_map(const char *path, size_t *len) {
  // Opening a FIFO would take its writer's rendezvous from the reader that
  // follows: look before opening.
  struct stat pre;
  if (stat(path, &pre) || !S_ISREG(pre.st_mode)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *p = NULL;
  if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= SIZE_MAX) {
    // Read-only: populating a writable private mapping would copy every page.
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m != MAP_FAILED) p = m, *len = (size_t)st.st_size;
  }
  close(fd);
  return p;
}

void isa_file_unmap(const uint8_t *p, size_t len) {
  if (p) munmap((void *)p, len);
}
