// Host memory for large buffers: faulted in at once, as huge pages where the
// kernel allows, and files mapped rather than read.
//
// Why: touching fresh memory page by page costs a fault per 4 KiB page, and on
// a virtual machine with shadow page tables (this project's hosts) a fault is
// ~2.5 us: 100 MiB is 250 ms, most of a ResNet-50 compile (its weights go
// through the model file, protobuf's copy, f32, bf16 and the HBM image). The
// same bytes faulted in by one madvise as 2 MiB pages take ~15 ms.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isa/isa.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14
#endif

enum { BIG_BYTES = 1 << 20, PAGE = 4096 };

void isa_prefault(void *p, size_t n, size_t populate) {
  if (!p) return;
  uintptr_t a = ((uintptr_t)p + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
  uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(PAGE - 1);
  if (e <= a) return;
#ifdef MADV_HUGEPAGE
  madvise((void *)a, e - a, MADV_HUGEPAGE);
#endif
  uintptr_t pe = populate < e - a ? (a + populate + PAGE - 1) & ~(uintptr_t)(PAGE - 1) : e;
  // Older kernels refuse MADV_POPULATE_WRITE: the pages then fault in as used.
  if (pe > a) madvise((void *)a, (pe < e ? pe : e) - a, MADV_POPULATE_WRITE);
}

void *isa_malloc_big(size_t n) {
  void *p = malloc(n ? n : 1);
  if (n >= BIG_BYTES) isa_prefault(p, n, n);
  return p;
}

// A regular file's bytes, mapped read-only; NULL if it cannot be mapped (an
// empty or not a regular file, or over limit bytes): it is read instead.
static const uint8_t *file_map(const char *path, size_t limit, size_t *len) {
  // Opening a FIFO would take its writer's rendezvous from the reader that
  // follows: look before opening.
  struct stat pre;
  if (stat(path, &pre) || !S_ISREG(pre.st_mode)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *p = NULL;
  if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= limit) {
    // Read-only: populating a writable private mapping would copy every page.
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m != MAP_FAILED) p = m, *len = (size_t)st.st_size;
  }
  close(fd);
  return p;
}

static int load_fail(char *err, size_t errlen, const char *path, const char *why, int e) {
  snprintf(err, errlen, "%s: %s%s%s", path, why, e ? ": " : "", e ? strerror(e) : "");
  errno = e;
  return -1;
}

int isa_file_load(isa_file *f, const char *path, bool text, size_t limit, const char *what, char *err,
                  size_t errlen) {
  *f = (isa_file){0};
  char why[200];
  struct stat st;
  if (!stat(path, &st) && S_ISREG(st.st_mode) && (uint64_t)st.st_size > limit) {
    snprintf(why, sizeof why, "too large for %s (over %zu bytes)", what, limit);
    return load_fail(err, errlen, path, why, 0);
  }
  if (!text) {
    size_t n;
    const uint8_t *m = file_map(path, limit, &n);
    if (m) {
      f->data = m, f->len = n;
      return 0;
    }
  }
  FILE *in = fopen(path, "rb");
  if (!in) return load_fail(err, errlen, path, "cannot open", errno);
  // Read up to one byte past the limit, so that a file over it is told apart.
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 1 >= cap) {
      if (cap > limit) break;
      size_t want = cap ? 2 * cap : 65536;
      if (limit < want - 2) want = limit + 2; // no overflow: want >= 65536
      uint8_t *b = realloc(buf, want);
      if (!b) {
        free(buf);
        fclose(in);
        return load_fail(err, errlen, path, "out of memory", 0);
      }
      buf = b, cap = want;
    }
    size_t k = fread(buf + n, 1, cap - n - 1, in); // one byte kept for the NUL
    n += k;
    if (!k) break;
  }
  int bad = ferror(in) ? errno : 0;
  fclose(in);
  if (bad) {
    free(buf);
    return load_fail(err, errlen, path, "cannot read", bad);
  }
  if (n > limit) {
    free(buf);
    snprintf(why, sizeof why, "too large for %s (over %zu bytes)", what, limit);
    return load_fail(err, errlen, path, why, 0);
  }
  if (!buf && !(buf = malloc(1))) return load_fail(err, errlen, path, "out of memory", 0);
  buf[n] = 0;
  if (text && memchr(buf, 0, n)) {
    free(buf);
    snprintf(why, sizeof why, "not %s (contains a NUL byte)", what);
    return load_fail(err, errlen, path, why, 0);
  }
  f->data = f->owned = buf, f->len = n;
  return 0;
}

void isa_file_release(isa_file *f) {
  if (f->owned) free(f->owned);
  else if (f->data) munmap((void *)f->data, f->len);
  *f = (isa_file){0};
}
