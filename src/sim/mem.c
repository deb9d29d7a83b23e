// Lazily allocated memories (host and HBM): pages appear on first write.
#include <stdlib.h>
#include <string.h>

#include "sim/simint.h"

#define PAGE_SIZE (1ull << LAZY_PAGE_BITS)

int lazymem_init(lazymem *m, uint64_t size) {
  m->size = size;
  m->npages = (size + PAGE_SIZE - 1) >> LAZY_PAGE_BITS;
  m->touched = 0;
  m->pages = calloc(m->npages ? m->npages : 1, sizeof *m->pages);
  return m->pages ? 0 : -1;
}

void lazymem_free(lazymem *m) {
  if (!m->pages) return;
  for (uint64_t i = 0; i < m->npages; i++) free(m->pages[i]);
  free(m->pages);
  m->pages = NULL;
}

void lazymem_read(const lazymem *m, uint64_t addr, void *dst, uint64_t n) {
  uint8_t *out = dst;
  while (n) {
    uint64_t page = addr >> LAZY_PAGE_BITS, off = addr & (PAGE_SIZE - 1);
    uint64_t chunk = PAGE_SIZE - off < n ? PAGE_SIZE - off : n;
    if (m->pages[page]) memcpy(out, m->pages[page] + off, chunk);
    else memset(out, 0, chunk);
    out += chunk, addr += chunk, n -= chunk;
  }
}

int lazymem_write(lazymem *m, uint64_t addr, const void *src, uint64_t n) {
  const uint8_t *in = src;
  while (n) {
    uint64_t page = addr >> LAZY_PAGE_BITS, off = addr & (PAGE_SIZE - 1);
    uint64_t chunk = PAGE_SIZE - off < n ? PAGE_SIZE - off : n;
    if (!m->pages[page]) {
      m->pages[page] = calloc(1, PAGE_SIZE);
      if (!m->pages[page]) return -1;
      m->touched++;
    }
    memcpy(m->pages[page] + off, in, chunk);
    in += chunk, addr += chunk, n -= chunk;
  }
  return 0;
}
