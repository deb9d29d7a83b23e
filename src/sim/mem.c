// Lazily allocated memories (host and HBM): pages appear on first write.
//
// Pages come from a process-wide pool and go back to it when a memory is
// freed, so a process that simulates again (a benchmark, a sweep, a library
// user) reuses them instead of faulting fresh ones in: page faults and the
// kernel's zeroing were about half of a ResNet-50 run's host time. New pool
// memory is mapped in 2 MiB chunks of huge pages, faulted in at once
// (hot_map). A page taken from the pool has only the bytes its first write
// does not cover zeroed. The pool keeps what it has for the process's
// lifetime (at most the most pages in use at once); the page tables (one
// pointer per page of a 64 GiB host memory and of the HBM) are kept likewise,
// two of them, already zero when freed.
//
// A memory may also map pages of an image (lazyimage: a program's constants,
// laid out once), shared by every memory that maps it and never written: a
// table entry with bit 0 set. The first write to such a page copies it into
// a page of the memory's own (copy on write), so each memory sees its own
// writes and only them, and the image stays as it was made. An image's page
// may also be borrowed (bit 1 as well): bytes of a program's file, never
// written and never the pool's (lazymem_borrow).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim/simint.h"

#define PAGE_SIZE (1ull << LAZY_PAGE_BITS)
#define CHUNK_SIZE (2ull << 20)
#define CHUNK_PAGES (CHUNK_SIZE / PAGE_SIZE)

static struct {
  pthread_mutex_t mu;
  uintptr_t *free; // pages, bit 0 set when still zero (never written)
  size_t n, cap;
  uint8_t **tables[2];
  uint64_t table_pages[2];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t huge_round(uint64_t n) { return (n + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1); }

// On this project's hosts (virtual machines with shadow page tables) a fault
// on fresh memory costs ~2.6 us per 4 KiB page and ~1.6 ms per 2 MiB huge
// page, while one madvise(MADV_POPULATE_WRITE) of huge pages takes ~0.1 ms per
// 2 MiB: 64 MiB cost 170 ms, 104 ms and 3.5 ms the three ways. So memory that
// will be written is mapped as huge pages and faulted in at once.
void *hot_map(uint64_t bytes, uint64_t populate) {
  size_t n = huge_round(bytes ? bytes : 1), len = n + CHUNK_SIZE;
  uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  uint8_t *a = (uint8_t *)(((uintptr_t)p + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1));
  if (a > p) munmap(p, (size_t)(a - p));
  if (a + n < p + len) munmap(a + n, (size_t)(p + len - (a + n)));
  isa_prefault(a, n, populate ? huge_round(populate < n ? populate : n) : 0);
  return a;
}

void hot_unmap(void *p, uint64_t bytes) {
  if (p) munmap(p, huge_round(bytes ? bytes : 1));
}

// A chunk of zero pages, or NULL: all of them are handed out before the next.
static uint8_t *chunk_map(void) { return hot_map(CHUNK_SIZE, CHUNK_SIZE); }

static int pool_push(uintptr_t page) { // with pool.mu held
  if (pool.n == pool.cap) {
    size_t cap = pool.cap ? 2 * pool.cap : 1024;
    uintptr_t *f = realloc(pool.free, cap * sizeof *f);
    if (!f) return -1;
    pool.free = f, pool.cap = cap;
  }
  pool.free[pool.n++] = page;
  return 0;
}

// A page; *zero tells whether it is known to be all zeros.
static uint8_t *page_get(bool *zero) {
  uintptr_t got = 0;
  pthread_mutex_lock(&pool.mu);
  if (!pool.n) {
    uint8_t *c = chunk_map();
    if (c)
      for (uint64_t i = CHUNK_PAGES; i-- > 0;)
        if (pool_push((uintptr_t)(c + i * PAGE_SIZE) | 1)) break;
  }
  if (pool.n) got = pool.free[--pool.n];
  pthread_mutex_unlock(&pool.mu);
  *zero = got & 1;
  return (uint8_t *)(got & ~(uintptr_t)1);
}

int lazymem_init(lazymem *m, uint64_t size) {
  m->size = size;
  m->npages = (size + PAGE_SIZE - 1) >> LAZY_PAGE_BITS;
  m->touched = 0;
  m->pages = NULL;
  m->list = NULL, m->list_cap = 0;
  uint64_t np = m->npages ? m->npages : 1;
  pthread_mutex_lock(&pool.mu);
  for (int i = 0; i < 2 && !m->pages; i++)
    if (pool.tables[i] && pool.table_pages[i] == np) m->pages = pool.tables[i], pool.tables[i] = NULL;
  pthread_mutex_unlock(&pool.mu);
  if (!m->pages) m->pages = calloc(np, sizeof *m->pages);
  return m->pages ? 0 : -1;
}

#define SHARED(p) ((uintptr_t)(p) & 1)
#define BORROWED(p) ((uintptr_t)(p) & 2)
#define PAGE_OF(p) ((uint8_t *)((uintptr_t)(p) & ~(uintptr_t)3))

// Room in the list of touched pages for one more.
static int list_room(lazymem *m) {
  if (m->touched < m->list_cap) return 0;
  uint64_t cap = m->list_cap ? 2 * m->list_cap : 256;
  uint64_t *l = realloc(m->list, cap * sizeof *l);
  if (!l) return -1;
  m->list = l, m->list_cap = cap;
  return 0;
}

void lazymem_free(lazymem *m) {
  if (!m->pages) return;
  uint64_t np = m->npages ? m->npages : 1;
  pthread_mutex_lock(&pool.mu);
  for (uint64_t i = 0; i < m->touched; i++) {
    uint64_t pg = m->list[i];
    if (!SHARED(m->pages[pg]) && pool_push((uintptr_t)m->pages[pg])) {
      // No room to remember it: lost to this process, never reused.
    }
    m->pages[pg] = NULL;
  }
  int kept = 0;
  for (int i = 0; i < 2 && !kept; i++)
    if (!pool.tables[i]) pool.tables[i] = m->pages, pool.table_pages[i] = np, kept = 1;
  pthread_mutex_unlock(&pool.mu);
  if (!kept) free(m->pages);
  free(m->list);
  m->pages = NULL, m->list = NULL, m->touched = m->list_cap = 0;
}

void lazymem_read(const lazymem *m, uint64_t addr, void *dst, uint64_t n) {
  uint8_t *out = dst;
  while (n) {
    uint64_t page = addr >> LAZY_PAGE_BITS, off = addr & (PAGE_SIZE - 1);
    uint64_t chunk = PAGE_SIZE - off < n ? PAGE_SIZE - off : n;
    if (m->pages[page]) memcpy(out, PAGE_OF(m->pages[page]) + off, chunk);
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
      bool zero;
      if (list_room(m)) return -1;
      uint8_t *p = page_get(&zero);
      if (!p) return -1;
      if (!zero) { // what this write does not cover reads as zero
        memset(p, 0, off);
        memset(p + off + chunk, 0, PAGE_SIZE - off - chunk);
      }
      m->pages[page] = p;
      m->list[m->touched++] = page;
    } else if (SHARED(m->pages[page])) { // an image's page: this memory's own copy from now on
      bool zero;
      uint8_t *p = page_get(&zero);
      if (!p) return -1;
      memcpy(p, PAGE_OF(m->pages[page]), PAGE_SIZE);
      m->pages[page] = p; // already listed
    }
    memcpy(m->pages[page] + off, in, chunk);
    in += chunk, addr += chunk, n -= chunk;
  }
  return 0;
}

int lazymem_borrow(lazymem *m, uint64_t addr, const void *src, uint64_t n) {
  const uint8_t *in = src;
  while (n) {
    uint64_t page = addr >> LAZY_PAGE_BITS, off = addr & (PAGE_SIZE - 1);
    uint64_t chunk = PAGE_SIZE - off < n ? PAGE_SIZE - off : n;
    if (!off && chunk == PAGE_SIZE && !m->pages[page] && !((uintptr_t)in & 3)) {
      if (list_room(m)) return -1;
      m->pages[page] = (uint8_t *)((uintptr_t)in | 3); // read-only: a write copies it first
      m->list[m->touched++] = page;
    } else if (lazymem_write(m, addr, in, chunk)) {
      return -1;
    }
    in += chunk, addr += chunk, n -= chunk;
  }
  return 0;
}

int lazyimage_take(lazyimage *im, lazymem *m) {
  *im = (lazyimage){0};
  im->size = m->size;
  im->index = malloc((m->touched ? m->touched : 1) * sizeof *im->index);
  im->page = malloc((m->touched ? m->touched : 1) * sizeof *im->page);
  if (!im->index || !im->page) {
    free(im->index), free(im->page);
    *im = (lazyimage){0};
    return -1;
  }
  for (uint64_t i = 0; i < m->touched; i++) im->index[i] = m->list[i], im->page[i] = m->pages[m->list[i]];
  im->n = m->touched;
  m->touched = 0; // the pages are the image's now: freeing m clears only its table
  for (uint64_t i = 0; i < im->n; i++) m->pages[im->index[i]] = NULL;
  lazymem_free(m);
  return 0;
}

void lazyimage_free(lazyimage *im) {
  pthread_mutex_lock(&pool.mu);
  for (uint64_t i = 0; i < im->n; i++)
    if (!BORROWED(im->page[i])) pool_push((uintptr_t)im->page[i]); // no room: lost, never reused
  pthread_mutex_unlock(&pool.mu);
  free(im->index), free(im->page);
  *im = (lazyimage){0};
}

int lazymem_map(lazymem *m, const lazyimage *im) {
  for (uint64_t i = 0; i < im->n; i++) {
    uint64_t pg = im->index[i];
    if (m->pages[pg] || list_room(m)) return -1; // a page written already would hide the image's
    m->pages[pg] = (uint8_t *)((uintptr_t)im->page[i] | 1);
    m->list[m->touched++] = pg;
  }
  return 0;
}
