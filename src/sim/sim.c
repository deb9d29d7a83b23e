// The simulator: a scalar unit that runs the program and dispatches tile
// instructions to in-order unit queues (DMA engines, MXUs, the vector unit),
// and an event queue that starts and completes them in cycle order.
//
// Time rules (docs/timing.md): a tile instruction starts at the first cycle its
// unit can take it and its wait semaphore is non-zero; its data effect happens
// at the start; its signal at completion. Events at one cycle are handled
// before the scalar instruction of that cycle, in the order they were made.
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sim/kernels.h"
#include "sim/numerics.h"
#include "sim/simint.h"

#define NEVER UINT64_MAX

const char *const sim_stall_names[STALL_CAUSES] = {
    "semaphore", "weights", "shadow buffer", "queue full", "fence/halt"};
const char *const sim_energy_names[8] = {"MXU MACs", "vector unit", "VMEM", "accumulators",
                                         "HBM", "host link", "ICI", "static"};

// ---------------------------------------------------------------- errors

static void errf(char *err, size_t len, const char *fmt, ...) {
  if (!err || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

// Stops the run with a message naming the instruction at pc.
static int trap(sim *s, uint64_t pc, const char *fmt, ...) {
  if (s->trapped) return -1;
  s->trapped = true;
  char why[512], dis[160] = "outside the program";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (pc < s->ncode) isa_disasm_inst(s->code[pc], pc, dis, sizeof dis);
  errf(s->err, s->errlen, "trap at pc %" PRIu64 " (byte 0x%" PRIx64 ": %s), cycle %" PRIu64 ": %s",
       pc, pc * 8, dis, s->now, why);
  return -1;
}

static const char *unit_label(const sim *s, int id, char *buf, size_t len) {
  const char *name = sim_unit_name(s, id, buf, len);
  return name ? name : "?";
}

const char *sim_unit_name(const sim *s, int id, char *buf, size_t len) {
  if (id < 0 || id >= SIM_UNITS || !s->units[id].present) return NULL;
  if (id == SIM_UNIT_SCALAR) snprintf(buf, len, "scalar");
  else if (id == SIM_UNIT_VPU) snprintf(buf, len, "vpu");
  else if (id < SIM_UNIT_MXU0) snprintf(buf, len, "dma%d", id - SIM_UNIT_DMA0);
  else snprintf(buf, len, "mxu%d", id - SIM_UNIT_MXU0);
  return buf;
}

// ---------------------------------------------------------------- set-up

// Local memory (VMEM, accumulators) of a simulator that ended is kept for the
// next one in the process: a fresh allocation costs page faults during the
// run, while clearing a kept one costs a memset here. A fresh one is faulted
// in at once (hot_map), up to LOCAL_POPULATE bytes: more than that may be a
// chip's memory that programs use little of. One of each size; nothing else
// is shared between simulators.
#include <pthread.h>
#define LOCAL_POPULATE (32ull << 20)
static struct {
  pthread_mutex_t mu;
  void *buf[2];
  uint64_t size[2];
} local_cache = {PTHREAD_MUTEX_INITIALIZER, {NULL, NULL}, {0, 0}};

static void *local_alloc(uint64_t size) {
  void *p = NULL;
  pthread_mutex_lock(&local_cache.mu);
  for (int i = 0; i < 2 && !p; i++)
    if (local_cache.buf[i] && local_cache.size[i] == size) p = local_cache.buf[i], local_cache.buf[i] = NULL;
  pthread_mutex_unlock(&local_cache.mu);
  if (p) return memset(p, 0, size);
  return hot_map(size, LOCAL_POPULATE);
}

static void local_free(void *p, uint64_t size) {
  if (!p) return;
  pthread_mutex_lock(&local_cache.mu);
  for (int i = 0; i < 2 && p; i++)
    if (!local_cache.buf[i]) local_cache.buf[i] = p, local_cache.size[i] = size, p = NULL;
  pthread_mutex_unlock(&local_cache.mu);
  hot_unmap(p, size);
}

sim *sim_create(const chip_config *chip, const sim_options *opt, char *err, size_t errlen) {
  if (chip->mxu_count > SIM_MAX_MXU || chip->dma_queues > SIM_MAX_DMA || chip->dma_queues < 1 ||
      chip->queue_depth < 1) {
    errf(err, errlen, "%s: the simulator supports 1..%d DMA queues, up to %d MXUs per core, and queue depth >= 1",
         chip->path, SIM_MAX_DMA, SIM_MAX_MXU);
    return NULL;
  }
  sim *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  s->chip = *chip;
  if (opt) s->opt = *opt;
  if (!s->opt.max_cycles) s->opt.max_cycles = SIM_DEFAULT_MAX_CYCLES;
  if (lazymem_init(&s->host, SIM_HOST_BYTES) || lazymem_init(&s->hbm, chip->hbm_bytes)) goto oom;
  s->vmem = local_alloc(chip->vmem_bytes);
  s->acc = local_alloc(chip->acc_bytes);
  s->smem = calloc(1, chip->smem_bytes ? chip->smem_bytes : 1);
  if (!s->vmem || !s->acc || !s->smem) goto oom;
  for (int i = 0; i < chip->mxu_count; i++) { // weights as the host kernels want them (kernels.h)
    s->mw[i].shadow = num_tile_alloc(chip->mxu_rows, chip->mxu_cols);
    s->mw[i].active = num_tile_alloc(chip->mxu_rows, chip->mxu_cols);
    if (!s->mw[i].shadow || !s->mw[i].active) goto oom;
  }
  for (int id = 0; id < SIM_UNITS; id++) {
    unit *u = &s->units[id];
    u->id = id;
    if (id == SIM_UNIT_SCALAR) u->kind = UNIT_SCALAR, u->present = true;
    else if (id == SIM_UNIT_VPU) u->kind = UNIT_VPU, u->present = true;
    else if (id < SIM_UNIT_MXU0) u->kind = UNIT_DMA, u->present = id - SIM_UNIT_DMA0 < chip->dma_queues;
    else u->kind = UNIT_MXU, u->present = id - SIM_UNIT_MXU0 < chip->mxu_count;
    if (u->present && id != SIM_UNIT_SCALAR) {
      u->q = calloc((size_t)chip->queue_depth, sizeof *u->q);
      if (!u->q) goto oom;
    }
    if (u->kind == UNIT_MXU) {
      mxu_timing_init(&u->mt, chip->mxu_rows, chip->mxu_cols, chip->weight_load_cycles);
      mxu_timing_set_dataflow(&u->mt, (mxu_dataflow)chip->dataflow, chip->mxu_preload);
    }
  }
  s->res_bw[SPACE_HOST] = chip->host_bandwidth / chip->clock_hz;
  s->res_bw[SPACE_HBM] = chip->hbm_bandwidth / chip->clock_hz;
  s->res_bw[SPACE_LOCAL] = chip->vmem_bandwidth / chip->clock_hz;
  return s;
oom:
  errf(err, errlen, "out of host memory creating the simulator for %s", chip->name);
  sim_destroy(s);
  return NULL;
}

void sim_destroy(sim *s) {
  if (!s) return;
  lazymem_free(&s->host);
  lazymem_free(&s->hbm);
  local_free(s->vmem, s->chip.vmem_bytes), local_free(s->acc, s->chip.acc_bytes), free(s->smem);
  for (int i = 0; i < SIM_MAX_MXU; i++) free(s->mw[i].shadow), free(s->mw[i].active);
  for (int id = 0; id < SIM_UNITS; id++) free(s->units[id].q);
  free(s->code), free(s->dec), free(s->legal), free(s->heap), free(s->trace), free(s->tmp);
  free(s->prof), free(s->lx), free(s->hbm_written);
  free(s);
}

static const char *mem_name(sim_mem m) {
  static const char *const names[] = {"host memory", "HBM", "local memory", "SMEM"};
  return names[m];
}

static uint64_t mem_size(const sim *s, sim_mem m) {
  switch (m) {
  case MEM_HOST: return SIM_HOST_BYTES;
  case MEM_HBM: return s->chip.hbm_bytes;
  case MEM_SMEM: return s->chip.smem_bytes;
  case MEM_LOCAL: break;
  }
  return 0;
}

// A local range [addr, addr+n) wholly inside VMEM or the accumulators, or NULL.
static uint8_t *local_ptr(const sim *s, uint64_t addr, uint64_t n) {
  if (addr < s->chip.vmem_bytes && n <= s->chip.vmem_bytes - addr) return s->vmem + addr;
  if (addr >= ISA_ACC_BASE && addr - ISA_ACC_BASE < s->chip.acc_bytes &&
      n <= s->chip.acc_bytes - (addr - ISA_ACC_BASE))
    return s->acc + (addr - ISA_ACC_BASE);
  return NULL;
}

static bool in_range(const sim *s, sim_mem m, uint64_t addr, uint64_t n) {
  if (m == MEM_LOCAL) return local_ptr(s, addr, n) != NULL;
  uint64_t size = mem_size(s, m);
  return addr <= size && n <= size - addr;
}

static void describe_range(const sim *s, sim_mem m, uint64_t addr, uint64_t n, char *buf, size_t len) {
  if (m == MEM_LOCAL)
    snprintf(buf, len,
             "local range 0x%" PRIx64 "+%" PRIu64 " bytes is not inside VMEM (%" PRIu64
             " bytes at 0) or the accumulators (%" PRIu64 " bytes at 0x%llx)",
             addr, n, s->chip.vmem_bytes, s->chip.acc_bytes, ISA_ACC_BASE);
  else
    snprintf(buf, len, "%s range 0x%" PRIx64 "+%" PRIu64 " bytes is outside %s (%" PRIu64 " bytes)",
             mem_name(m), addr, n, mem_name(m), mem_size(s, m));
}

// Provenance (below): what a driver's access must do first.
static void prov_read(sim *s, uint64_t lo, uint64_t hi);
static void prov_write(sim *s, uint64_t lo, uint64_t hi, bool whole);
static void prov_hbm_written(sim *s, uint64_t lo, uint64_t hi);

static void mem_read(sim *s, sim_mem m, uint64_t addr, void *dst, uint64_t n) {
  switch (m) {
  case MEM_HOST: lazymem_read(&s->host, addr, dst, n); break;
  case MEM_HBM: lazymem_read(&s->hbm, addr, dst, n); break;
  case MEM_LOCAL: memcpy(dst, local_ptr(s, addr, n), n); break;
  case MEM_SMEM: memcpy(dst, s->smem + addr, n); break;
  }
}

static int mem_write(sim *s, sim_mem m, uint64_t addr, const void *src, uint64_t n) {
  switch (m) {
  case MEM_HOST: return lazymem_write(&s->host, addr, src, n);
  case MEM_HBM: return lazymem_write(&s->hbm, addr, src, n);
  case MEM_LOCAL: memcpy(local_ptr(s, addr, n), src, n); return 0;
  case MEM_SMEM: memcpy(s->smem + addr, src, n); return 0;
  }
  return 0;
}

int sim_write(sim *s, sim_mem m, uint64_t addr, const void *src, uint64_t n, char *err, size_t errlen) {
  char why[300];
  if (!in_range(s, m, addr, n)) {
    describe_range(s, m, addr, n, why, sizeof why);
    errf(err, errlen, "%s", why);
    return -1;
  }
  if (n && m == MEM_LOCAL) prov_write(s, addr, addr + n, true);
  if (n && m == MEM_HBM) prov_hbm_written(s, addr, addr + n);
  if (n && mem_write(s, m, addr, src, n)) {
    errf(err, errlen, "out of host memory writing %s", mem_name(m));
    return -1;
  }
  return 0;
}

int sim_read(sim *s, sim_mem m, uint64_t addr, void *dst, uint64_t n, char *err, size_t errlen) {
  char why[300];
  if (!in_range(s, m, addr, n)) {
    describe_range(s, m, addr, n, why, sizeof why);
    errf(err, errlen, "%s", why);
    return -1;
  }
  if (n && m == MEM_LOCAL) prov_read(s, addr, addr + n);
  if (n) mem_read(s, m, addr, dst, n);
  return 0;
}

// Code, and the data segments whose kinds are in `kinds` (bit per SEG_*).
// borrow: the HBM and host pages that a segment borrowed from the program's
// file covers whole are those bytes themselves, not copies (an image's).
static int load_program(sim *s, const isa_program *p, unsigned kinds, bool borrow, char *err, size_t errlen) {
  if (p->ncode * 8 > s->chip.imem_bytes) {
    errf(err, errlen, "program has %zu instructions (%zu bytes); %s's instruction memory holds %" PRIu64 " bytes",
         p->ncode, p->ncode * 8, s->chip.name, s->chip.imem_bytes);
    return -1;
  }
  free(s->code), free(s->dec), free(s->legal), free(s->prof);
  size_t n = p->ncode ? p->ncode : 1;
  s->code = malloc(n * sizeof *s->code);
  s->dec = malloc(n * sizeof *s->dec);
  s->legal = malloc(n * sizeof *s->legal);
  s->prof = s->opt.profile ? calloc(n, sizeof *s->prof) : NULL;
  s->ncode = 0;
  if (!s->code || !s->dec || !s->legal || (s->opt.profile && !s->prof)) {
    errf(err, errlen, "out of host memory");
    return -1;
  }
  if (p->ncode) memcpy(s->code, p->code, p->ncode * sizeof *s->code); // code is NULL when empty
  s->ncode = p->ncode;
  // Decoded once here; an illegal word traps only if it is executed.
  for (size_t i = 0; i < s->ncode; i++) s->legal[i] = isa_decode(s->code[i], &s->dec[i], NULL, 0);
  // Table 3's window: after the leading host-in layers, before the trailing host-out ones.
  size_t first = 0, last = p->nlayers;
  while (first < p->nlayers && !strcmp(p->layers[first].op, ISA_LAYER_HOST_IN)) first++;
  while (last > first && !strcmp(p->layers[last - 1].op, ISA_LAYER_HOST_OUT)) last--;
  s->t3_open_pc = first ? p->layers[first - 1].pc_end : UINT64_MAX;
  s->t3_close_pc = last < p->nlayers ? p->layers[last].pc_begin : UINT64_MAX;
  s->t3_opened = !first, s->t3_closed = false, s->t3_t0 = 0, s->t3_base = (struct t3_counts){0};
  static const sim_mem seg_mem[] = {[SEG_SMEM] = MEM_SMEM, [SEG_HBM] = MEM_HBM, [SEG_HOST] = MEM_HOST};
  for (size_t i = 0; i < p->nsegs; i++) {
    const isa_segment *g = &p->segs[i];
    char why[400];
    if (!((kinds >> g->kind) & 1)) continue;
    sim_mem m = seg_mem[g->kind];
    if (borrow && g->borrowed && (m == MEM_HBM || m == MEM_HOST) && in_range(s, m, g->addr, g->size)) {
      if (lazymem_borrow(m == MEM_HBM ? &s->hbm : &s->host, g->addr, g->data, g->size)) {
        errf(err, errlen, "program data segment %zu: out of host memory writing %s", i, mem_name(m));
        return -1;
      }
      continue;
    }
    if (sim_write(s, m, g->addr, g->data, g->size, why, sizeof why)) {
      errf(err, errlen, "program data segment %zu: %s", i, why);
      return -1;
    }
  }
  return 0;
}

int sim_load(sim *s, const isa_program *p, char *err, size_t errlen) {
  return load_program(s, p, 1u << SEG_SMEM | 1u << SEG_HBM | 1u << SEG_HOST, false, err, errlen);
}

// The packed weight tiles of weight loads whose bytes were the image's,
// keyed by where those bytes are in the image's HBM and how the load read
// them ("provenance", below). Shared by every simulator that maps the image,
// on any thread: entries are added and given tiles under the mutex, and a
// tile is read-only once `ready` (a run that is filling one uses it before,
// ordered by its effects; other runs do not).
//
// A tile is cached the second time its load is seen, in the same run or a
// later one; the first time only its entry is made and the load packs into
// the simulator's own tile. Most loads of a model happen once a run, so a
// process that runs it once (a user's `systole run`) would otherwise pack
// every tile into fresh memory it never reads again: ResNet-50's 50 MiB,
// about 60 ms of page clearing when the host has to back that memory anew.
typedef struct tile_entry {
  uint64_t hbm, stride;
  int k, n, dtype, kernel;
  uint64_t hash;
  void *tile;              // NULL: seen once, not cached
  atomic_bool ready;
  uint64_t filler;         // the run filling it (sim.run_id)
  struct tile_entry *next;
} tile_entry;

#define TILE_CACHE_BYTES (1ull << 30) // past this, weight loads pack into the simulator's own tiles

// Entries and tiles are cut from slabs of huge pages faulted in at once
// (hot_map), freed with the image: as one allocation per tile, the cache's
// fresh 4 KiB pages (ResNet-50: 50 MiB) faulted in one by one took a third
// of the host time of the run that filled it.
#define TILE_SLAB_BYTES (2ull << 20)
typedef struct tile_slab {
  struct tile_slab *next;
  uint64_t size, used;
} tile_slab;

struct sim_image {
  lazyimage host, hbm;
  pthread_mutex_t mu;
  tile_entry **bucket;
  size_t nbucket, n, ntiles; // entries; those with a tile
  tile_slab *slab;         // the newest first
  uint64_t bytes;          // of the slabs
};

// bytes (a multiple of 64) from the image's newest slab or a new one, with
// img->mu held; NULL: the cache is full or out of host memory.
static void *slab_take(sim_image *img, uint64_t bytes) {
  tile_slab *b = img->slab;
  if (!b || b->size - b->used < bytes) {
    uint64_t size = bytes + 64 > TILE_SLAB_BYTES ? bytes + 64 : TILE_SLAB_BYTES;
    if (img->bytes + size > TILE_CACHE_BYTES || !(b = hot_map(size, size))) return NULL;
    b->next = img->slab, b->size = size, b->used = 64;
    img->slab = b, img->bytes += size;
  }
  void *p = (char *)b + b->used;
  b->used += bytes;
  return p;
}

sim_image *sim_image_create(const chip_config *chip, const isa_program *p, char *err, size_t errlen) {
  sim_image *img = calloc(1, sizeof *img);
  sim_options opt = {.timing_only = true};
  sim *s = img ? sim_create(chip, &opt, err, errlen) : NULL;
  if (!s) {
    if (!img) errf(err, errlen, "out of host memory");
    free(img);
    return NULL;
  }
  pthread_mutex_init(&img->mu, NULL);
  if (load_program(s, p, 1u << SEG_HBM | 1u << SEG_HOST, true, err, errlen)) { // sim_load's checks and messages
    sim_destroy(s), free(img);
    return NULL;
  }
  if (lazyimage_take(&img->host, &s->host) || lazyimage_take(&img->hbm, &s->hbm)) {
    errf(err, errlen, "out of host memory");
    sim_destroy(s), sim_image_destroy(img);
    return NULL;
  }
  sim_destroy(s);
  return img;
}

void sim_image_destroy(sim_image *img) {
  if (!img) return;
  lazyimage_free(&img->host), lazyimage_free(&img->hbm);
  for (tile_slab *b = img->slab, *next; b; b = next) next = b->next, hot_unmap(b, b->size);
  free(img->bucket);
  pthread_mutex_destroy(&img->mu);
  free(img);
}

uint64_t sim_image_hbm_bytes(const sim_image *img) { return img->hbm.size; }

size_t sim_image_cached_tiles(sim_image *img) {
  pthread_mutex_lock(&img->mu);
  size_t n = img->ntiles;
  pthread_mutex_unlock(&img->mu);
  return n;
}

int sim_load_image(sim *s, const isa_program *p, const sim_image *img, char *err, size_t errlen) {
  if (img->hbm.size != s->hbm.size) {
    errf(err, errlen, "the memory image was made for %" PRIu64 " bytes of HBM; %s has %" PRIu64, img->hbm.size,
         s->chip.name, s->hbm.size);
    return -1;
  }
  if (s->host.touched || s->hbm.touched) {
    errf(err, errlen, "a memory image maps only into a simulator whose HBM and host memory are unwritten");
    return -1;
  }
  free(s->hbm_written);
  s->hbm_written = calloc(s->hbm.npages / 64 + 1, sizeof *s->hbm_written);
  if (!s->hbm_written || lazymem_map(&s->host, &img->host) || lazymem_map(&s->hbm, &img->hbm)) {
    errf(err, errlen, "out of host memory");
    return -1;
  }
  s->image = (sim_image *)img; // its tile cache changes, never what a run computes
  return load_program(s, p, 1u << SEG_SMEM, false, err, errlen);
}

uint64_t sim_reg(const sim *s, int r) { return r > 0 && r < ISA_NUM_REGS ? s->reg[r] : 0; }
uint32_t sim_sem(const sim *s, int n) { return n >= 0 && n < ISA_NUM_SEMS ? s->sem[n] : 0; }
const sim_stats *sim_get_stats(const sim *s) { return &s->st; }
const chip_config *sim_chip(const sim *s) { return &s->chip; }

const sim_pc_profile *sim_get_pc_profile(const sim *s, size_t *n) {
  *n = s->prof ? s->ncode : 0;
  return s->prof;
}

// Profile: an execution of pc starts at cycle t (callers check s->prof).
static sim_pc_profile *prof_start(sim *s, uint64_t pc, uint64_t t) {
  sim_pc_profile *p = &s->prof[pc];
  if (!p->count++ || t < p->first_start) p->first_start = t;
  return p;
}

// ---------------------------------------------------------------- events

enum { EV_TRY, EV_DONE, EV_DMA };
struct event {
  uint64_t time, seq;
  int type, unit;
  uint64_t arg; // EV_DONE: signal semaphore + 1 (0: none); EV_DMA: generation
  uint64_t pc;  // EV_DONE: the completing instruction (a trap names it)
};

static bool ev_before(const struct event *a, const struct event *b) {
  return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static void push_event(sim *s, uint64_t time, int type, int unit, uint64_t arg, uint64_t pc) {
  if (s->nheap == s->capheap) {
    size_t cap = s->capheap ? s->capheap * 2 : 256;
    struct event *h = realloc(s->heap, cap * sizeof *h);
    if (!h) abort(); // the heap holds a few events per unit: this cannot grow without bound
    s->heap = h, s->capheap = cap;
  }
  struct event e = {time, s->seq++, type, unit, arg, pc};
  size_t i = s->nheap++;
  while (i && ev_before(&e, &s->heap[(i - 1) / 2])) {
    s->heap[i] = s->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->heap[i] = e;
}

static struct event pop_event(sim *s) {
  struct event top = s->heap[0], last = s->heap[--s->nheap];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= s->nheap) break;
    if (c + 1 < s->nheap && ev_before(&s->heap[c + 1], &s->heap[c])) c++;
    if (!ev_before(&s->heap[c], &last)) break;
    s->heap[i] = s->heap[c];
    i = c;
  }
  if (s->nheap) s->heap[i] = last;
  return top;
}

static void schedule_try(sim *s, unit *u, uint64_t t) {
  if (u->try_pending) return;
  u->try_pending = true;
  push_event(s, t, EV_TRY, u->id, 0, 0);
}

static void add_trace(sim *s, int track, uint64_t start, uint64_t end, uint64_t pc, int cause) {
  if (!s->opt.trace) return;
  if (s->ntrace == s->captrace) {
    size_t cap = s->captrace ? s->captrace * 2 : 1024;
    trace_rec *t = realloc(s->trace, cap * sizeof *t);
    if (!t) { s->opt.trace = false; return; } // keep simulating; the trace is lost, not the run
    s->trace = t, s->captrace = cap;
  }
  s->trace[s->ntrace++] = (trace_rec){track, start, end, pc, cause};
}

// ---------------------------------------------------------------- dispatch

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

// Bytes spanned by `count` items of `item` bytes spaced `stride` apart, or
// UINT64_MAX if that does not fit in 64 bits.
static uint64_t span(uint64_t count, uint64_t stride, uint64_t item) {
  unsigned __int128 v = (unsigned __int128)(count - 1) * stride + item;
  return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

// Row i of a pass's input, as an offset from its source address (docs/isa.md
// 5.5): rows rd bytes apart, or a window of a slab (MXU_FLAG_WIN).
static uint64_t pass_row(const qentry *e, uint64_t i) {
  return e->in.flags & MXU_FLAG_WIN ? isa_win_row(e->desc, i) : i * e->rd;
}

// Bytes from the source address to the end of the last element rows
// [0, m) read, `item` bytes a row (UINT64_MAX past 2^64).
static uint64_t pass_in_len(const qentry *e, uint64_t m, uint64_t item) {
  if (!(e->in.flags & MXU_FLAG_WIN)) return span(m, e->rd, item);
  uint64_t far = isa_win_far(e->desc, m);
  return far > UINT64_MAX - item ? UINT64_MAX : far + item;
}

static int check_local(sim *s, uint64_t pc, const char *what, uint64_t addr, uint64_t n, int align) {
  char why[300];
  if (n == UINT64_MAX || !local_ptr(s, addr, n)) {
    describe_range(s, MEM_LOCAL, addr, n, why, sizeof why);
    return trap(s, pc, "%s: %s", what, why);
  }
  if (addr % (uint64_t)align)
    return trap(s, pc, "%s: address 0x%" PRIx64 " is not aligned to %d bytes", what, addr, align);
  return 0;
}

static int read_desc(sim *s, uint64_t pc, uint64_t addr, int words, uint64_t *out) {
  if (addr % 8)
    return trap(s, pc, "descriptor address 0x%" PRIx64 " in SMEM is not 8-byte aligned", addr);
  if (addr > s->chip.smem_bytes || (uint64_t)words * 8 > s->chip.smem_bytes - addr)
    return trap(s, pc, "descriptor at SMEM 0x%" PRIx64 " (%d bytes) is outside SMEM (%" PRIu64 " bytes)",
                addr, words * 8, s->chip.smem_bytes);
  memcpy(out, s->smem + addr, (size_t)words * 8);
  return 0;
}

static int check_dma(sim *s, qentry *e) {
  const isa_inst *in = &e->in;
  uint64_t pc = e->pc, *d = e->desc;
  assert(in->unit < s->chip.dma_queues); // checked by dispatch, before the queue lookup
  if (read_desc(s, pc, e->rc, ISA_DMA_DESC_WORDS, d)) return -1;
  if (!d[0] || !d[1] || !d[4] || !d[7])
    return trap(s, pc, "empty DMA: inner bytes %" PRIu64 ", counts %" PRIu64 " x %" PRIu64 " x %" PRIu64,
                d[0], d[1], d[4], d[7]);
  uint64_t bytes = d[0];
  bool huge = false;
  for (int i = 1; i < ISA_DMA_DESC_WORDS; i += 3) huge |= __builtin_mul_overflow(bytes, d[i], &bytes);
  if (huge)
    return trap(s, pc, "DMA of %" PRIu64 " x %" PRIu64 " x %" PRIu64 " runs of %" PRIu64 " bytes moves more than 2^64 - 1 bytes",
                d[7], d[4], d[1], d[0]);
  // Strides are signed 64-bit offsets (a "negative" one walks backwards), so
  // the runs start between base + lo and base + hi; [0] source, [1] destination.
  const __int128 lim = (__int128)1 << 65; // beyond any memory: keeps the sums in range
  __int128 lo[2] = {0, 0}, hi[2] = {0, 0};
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++) {
      __int128 off = (__int128)(d[1 + 3 * i] - 1) * (int64_t)d[2 + 3 * i + j];
      off = off > lim ? lim : off < -lim ? -lim : off;
      *(off < 0 ? &lo[j] : &hi[j]) += off;
    }
  sim_mem sm = (sim_mem)(in->funct & 3), dm = (sim_mem)(in->funct >> 2);
  const sim_mem mem[2] = {sm, dm};
  const uint64_t base[2] = {e->rb, e->ra};
  for (int j = 0; j < 2; j++) {
    __int128 first = (__int128)base[j] + lo[j], len = hi[j] - lo[j] + d[0];
    uint64_t n = len > UINT64_MAX ? UINT64_MAX : (uint64_t)len;
    if (first < 0 || first + len > ((__int128)1 << 64) || n == UINT64_MAX || !in_range(s, mem[j], (uint64_t)first, n)) {
      char why[300];
      describe_range(s, mem[j], (uint64_t)first, n, why, sizeof why);
      return trap(s, pc, "DMA %s: %s", j ? "destination" : "source", why);
    }
  }
  if (bytes > SIM_MAX_DMA_BYTES) // after the range checks: those say more
    return trap(s, pc, "DMA of %" PRIu64 " x %" PRIu64 " x %" PRIu64 " runs of %" PRIu64
                " bytes moves more than the %llu bytes one DMA may move",
                d[7], d[4], d[1], d[0], SIM_MAX_DMA_BYTES);
  e->bytes = bytes;
  e->dst_lo = (uint64_t)((__int128)e->ra + lo[1]);
  e->dst_hi = e->dst_lo + (uint64_t)(hi[1] - lo[1]) + d[0];
  return 0;
}

static bool mxu_supports(const sim *s, int dt) {
  return dt == DT_BF16 ? s->chip.mxu_bf16 : s->chip.mxu_int8;
}

static int check_mxu(sim *s, qentry *e) {
  const isa_inst *in = &e->in;
  uint64_t pc = e->pc;
  int R = s->chip.mxu_rows, C = s->chip.mxu_cols;
  assert(in->unit < s->chip.mxu_count); // checked by dispatch, before the queue lookup
  if (!mxu_supports(s, in->dt_src1))
    return trap(s, pc, "%s's MXU does not multiply %s", s->chip.name, isa_dtype_names[in->dt_src1]);
  int es = isa_dtype_bytes[in->dt_src1];
  mxu_logical *ml = &s->ml[in->unit];
  if (in->op == OP_MXU_LDW) {
    uint64_t k = e->rc, n = e->rd, stride = e->rb;
    if (k < 1 || k > (uint64_t)R) return trap(s, pc, "weight tile rows k=%" PRIu64 " must be 1..%d", k, R);
    if (n < 1 || n > (uint64_t)C) return trap(s, pc, "weight tile columns n=%" PRIu64 " must be 1..%d", n, C);
    if (stride % (uint64_t)es) return trap(s, pc, "row stride %" PRIu64 " is not a multiple of %d", stride, es);
    if (check_local(s, pc, "weight tile", e->ra, span(k, stride, n * (uint64_t)es), es)) return -1;
    if (ml->pending)
      return trap(s, pc, "mxu%d's shadow buffer holds a tile no pass has used yet", in->unit);
    ml->pending = true, ml->k = (int)k, ml->n = (int)n, ml->dt = in->dt_src1;
    return 0;
  }
  uint64_t m = e->rc, stride = e->rd;
  if (!ml->pending && !ml->loaded) return trap(s, pc, "pass on mxu%d before any weight tile was loaded", in->unit);
  if (ml->pending) ml->pending = false, ml->loaded = true;
  if (in->dt_src1 != ml->dt)
    return trap(s, pc, "pass type %s does not match the weight tile's %s", isa_dtype_names[in->dt_src1],
                isa_dtype_names[ml->dt]);
  if (m < 1) return trap(s, pc, "a pass needs at least one row (m=0)");
  if (in->flags & MXU_FLAG_WIN) {
    uint64_t *d = e->desc;
    if (read_desc(s, pc, e->rd, ISA_WIN_DESC_WORDS, d)) return -1;
    if (!d[0] || !d[2])
      return trap(s, pc, "empty window: %" PRIu64 " rows by %" PRIu64 " window rows", d[0], d[2]);
    if (d[1] % (uint64_t)es || d[3] % (uint64_t)es || d[4] % (uint64_t)es)
      return trap(s, pc, "window strides %" PRIu64 ", %" PRIu64 ", %" PRIu64 " are not multiples of %d", d[1], d[3],
                  d[4], es);
    stride = d[1];
  } else if (stride % (uint64_t)es)
    return trap(s, pc, "row stride %" PRIu64 " is not a multiple of %d", stride, es);
  if (check_local(s, pc, "pass input", e->rb, pass_in_len(e, m, (uint64_t)ml->k * es), es)) return -1;
  if (e->ra < ISA_ACC_BASE)
    return trap(s, pc, "pass destination 0x%" PRIx64 " is not in the accumulators (0x%llx..)", e->ra, ISA_ACC_BASE);
  if (check_local(s, pc, "pass destination", e->ra, span(m, (uint64_t)C * 4, (uint64_t)ml->n * 4), 4))
    return -1;
  if (m > SIM_MAX_PASS_ROWS)
    return trap(s, pc, "a pass of %" PRIu64 " rows is longer than %d rows", m, SIM_MAX_PASS_ROWS);
  return 0;
}

// Whether [lo, hi) and [lo2, hi2) share a byte (an empty range shares none).
static bool overlap(uint64_t lo, uint64_t hi, uint64_t lo2, uint64_t hi2) { return lo < hi2 && lo2 < hi; }

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return overlap(a, a + alen, b, b + blen); }

static int check_vpu(sim *s, qentry *e) {
  const isa_inst *in = &e->in;
  uint64_t pc = e->pc, *d = e->desc;
  const isa_vpu_info *v = &isa_vpu_ops[in->funct];
  if (read_desc(s, pc, e->rd, ISA_VPU_DESC_WORDS, d)) return -1;
  uint64_t rows = d[0], cols = d[1];
  if (!rows || !cols || rows > (1u << 30) || cols > (1u << 30) || rows * cols > SIM_MAX_VPU_ELEMENTS)
    return trap(s, pc, "vector block of %" PRIu64 " x %" PRIu64 " elements (rows and columns 1..2^30, at most %llu elements)",
                rows, cols, SIM_MAX_VPU_ELEMENTS);
  if (d[5] > 1) return trap(s, pc, "src2 column step %" PRIu64 " must be 0 or 1", d[5]);
  if (v->kind == VK_REQUANT) {
    if (in->dt_dst != DT_I8 || in->dt_src1 != DT_I32)
      return trap(s, pc, "requant converts i32 to i8 (got %s to %s)", isa_dtype_names[in->dt_src1],
                  isa_dtype_names[in->dt_dst]);
    if ((int64_t)d[6] != (int32_t)d[6] || d[7] > 63 || (int64_t)d[8] != (int32_t)d[8])
      return trap(s, pc, "requant multiplier and zero point must be int32 and shift 0..63");
  }
  if (in->funct == VOP_IADD) {
    if ((in->dt_src1 != DT_I8 && in->dt_src1 != DT_I32) || (in->dt_src2 != DT_I8 && in->dt_src2 != DT_I32) ||
        in->dt_dst == DT_BF16)
      return trap(s, pc, "iadd adds i8 or i32 into i8, i32 or f32 (got %s + %s to %s)", isa_dtype_names[in->dt_src1],
                  isa_dtype_names[in->dt_src2], isa_dtype_names[in->dt_dst]);
    if (d[8] > 7 || ((d[8] & NUM_IADD_A_U8) && in->dt_src1 != DT_I8) ||
        ((d[8] & NUM_IADD_B_U8) && in->dt_src2 != DT_I8) || ((d[8] & NUM_IADD_D_U8) && in->dt_dst != DT_I8))
      return trap(s, pc, "iadd flags 0x%" PRIx64 ": bits 0..2 mark i8 operands unsigned", d[8]);
  }
  int ed = isa_dtype_bytes[in->dt_dst], e1 = isa_dtype_bytes[in->dt_src1], e2 = isa_dtype_bytes[in->dt_src2];
  uint64_t dst_ext;
  switch (v->kind) {
  case VK_REDUCE: dst_ext = span(rows, d[2], (uint64_t)ed); break;
  case VK_REDUCE_COL: dst_ext = cols * (uint64_t)ed; break;
  case VK_TRANSPOSE: dst_ext = span(cols, d[2], rows * (uint64_t)ed); break;
  default: dst_ext = span(rows, d[2], cols * (uint64_t)ed); break;
  }
  if (d[2] % (uint64_t)ed || d[3] % (uint64_t)e1 || (v->kind == VK_BINARY && d[4] % (uint64_t)e2))
    return trap(s, pc, "a row stride is not a multiple of its element size");
  uint64_t ext1 = span(rows, d[3], cols * (uint64_t)e1), ext2 = span(rows, d[4], ((cols - 1) * d[5] + 1) * (uint64_t)e2);
  e->ext[0] = dst_ext, e->ext[1] = ext1, e->ext[2] = ext2;
  if (check_local(s, pc, "vector destination", e->ra, dst_ext, ed)) return -1;
  if (check_local(s, pc, "vector source", e->rb, ext1, e1)) return -1;
  if (v->kind == VK_BINARY && check_local(s, pc, "vector source 2", e->rc, ext2, e2)) return -1;
  // Elementwise operations go row by row (a row is read whole before it is
  // written): in place on the same rows is fine, even when the element size
  // changes, but a destination that partly overlaps a source would see its
  // own earlier rows.
  if (v->kind == VK_UNARY || v->kind == VK_BINARY || v->kind == VK_REQUANT) {
    bool same1 = e->ra == e->rb && (rows == 1 || d[2] == d[3]);
    bool same2 = e->ra == e->rc && (rows == 1 || d[2] == d[4]) && d[5] == 1;
    if ((!same1 && overlaps(e->ra, dst_ext, e->rb, ext1)) ||
        (v->kind == VK_BINARY && !same2 && overlaps(e->ra, dst_ext, e->rc, ext2)))
      return trap(s, pc, "the destination overlaps a source without being the same block (in place)");
  }
  e->elems = rows * cols;
  return 0;
}

static unit *target_unit(sim *s, const isa_inst *in) {
  switch (in->op) {
  case OP_DMA: return &s->units[SIM_UNIT_DMA0 + in->unit];
  case OP_MXU_LDW: case OP_MXU_MM: return &s->units[SIM_UNIT_MXU0 + in->unit];
  default: return &s->units[SIM_UNIT_VPU];
  }
}

// Returns 0 dispatched, 1 blocked on a full queue, -1 trap.
static int dispatch(sim *s, const isa_inst *in) {
  if (in->op == OP_DMA && in->unit >= s->chip.dma_queues)
    return trap(s, s->pc, "DMA queue q=%d does not exist (%s has %d)", in->unit, s->chip.name, s->chip.dma_queues);
  if (in->op != OP_DMA && in->op != OP_VPU && in->unit >= s->chip.mxu_count)
    return trap(s, s->pc, "MXU %d does not exist (%s has %d per core)", in->unit, s->chip.name, s->chip.mxu_count);
  unit *u = target_unit(s, in);
  if (u->qcount == s->chip.queue_depth) {
    s->sstate = SC_QFULL, s->sblock_unit = u->id, s->sblocked_since = s->now;
    return 1;
  }
  qentry e = {.in = *in, .pc = s->pc, .arrive = s->now + 1};
  e.ra = s->reg[in->ra], e.rb = s->reg[in->rb], e.rc = s->reg[in->rc], e.rd = s->reg[in->rd];
  int rc = in->op == OP_DMA ? check_dma(s, &e) : in->op == OP_VPU ? check_vpu(s, &e) : check_mxu(s, &e);
  if (rc) return -1;
  u->q[(u->qhead + u->qcount++) % s->chip.queue_depth] = e;
  s->st.instructions[u->id]++;
  if (u->qcount == 1 && !u->blocked) schedule_try(s, u, e.arrive);
  return 0;
}

// ---------------------------------------------------------------- data effects
// A tile instruction's data effect happens when it starts (docs/timing.md).
// Each effect is written as work on a piece of its instruction (runs of a
// DMA, rows of a pass, items of a vector block), so that it can run whole,
// split across the host's threads, or later on another thread (deferred
// effects, below): the values are the same in every case.

// Where a local address is on the host; the caller has checked the range.
static uint8_t *local_at(const sim *s, uint64_t addr) {
  return addr < s->chip.vmem_bytes ? s->vmem + addr : s->acc + (addr - ISA_ACC_BASE);
}

static uint64_t umin(uint64_t a, uint64_t b) { return a < b ? a : b; }

static void count_bytes(sim *s, sim_mem m, uint64_t addr, uint64_t n, bool write) {
  switch (m) {
  case MEM_HOST: *(write ? &s->st.host_write : &s->st.host_read) += n; break;
  case MEM_HBM: *(write ? &s->st.hbm_write : &s->st.hbm_read) += n; break;
  case MEM_LOCAL:
    if (addr >= ISA_ACC_BASE) *(write ? &s->st.acc_write : &s->st.acc_read) += n;
    else *(write ? &s->st.vmem_write : &s->st.vmem_read) += n;
    break;
  case MEM_SMEM: break;
  }
}

// ---- DMA

// Bytes [off, off + n) of runs [first, last), in order, each read whole before
// it is written (a run that overlaps itself moves like memmove). Local memory
// is addressed directly; host memory and HBM through their pages. -1: out of
// host memory (a page, or a run's copy between two paged memories).
static int dma_runs(sim *s, const qentry *e, uint64_t first, uint64_t last, uint64_t off, size_t n) {
  const uint64_t *d = e->desc;
  sim_mem sm = (sim_mem)(e->in.funct & 3), dm = (sim_mem)(e->in.funct >> 2);
  lazymem *lz[] = {[MEM_HOST] = &s->host, [MEM_HBM] = &s->hbm};
  uint8_t *buf = NULL;
  if (sm != MEM_LOCAL && dm != MEM_LOCAL && !(buf = malloc(n ? n : 1))) return -1;
  uint64_t i1 = first % d[1], i2 = first / d[1] % d[4], i3 = first / d[1] / d[4];
  int rc = 0;
  for (uint64_t r = first; r < last && !rc; r++) {
    uint64_t src = e->rb + i1 * d[2] + i2 * d[5] + i3 * d[8] + off;
    uint64_t dst = e->ra + i1 * d[3] + i2 * d[6] + i3 * d[9] + off;
    if (sm == MEM_LOCAL && dm == MEM_LOCAL) memmove(local_at(s, dst), local_at(s, src), n);
    else if (sm == MEM_LOCAL) rc = lazymem_write(lz[dm], dst, local_at(s, src), n);
    else if (dm == MEM_LOCAL) lazymem_read(lz[sm], src, local_at(s, dst), n);
    else {
      lazymem_read(lz[sm], src, buf, n);
      rc = lazymem_write(lz[dm], dst, buf, n);
    }
    if (++i1 == d[1]) {
      i1 = 0;
      if (++i2 == d[4]) i2 = 0, i3++;
    }
  }
  free(buf);
  return rc;
}

// Where runs [first, last) lie: the lowest byte and one past the highest
// (strides are signed; the block is inside one memory, checked at dispatch).
// j = 0 source, 1 destination.
static void dma_extent(const qentry *e, uint64_t first, uint64_t last, int j, uint64_t *lo, uint64_t *hi) {
  const uint64_t *d = e->desc;
  uint64_t base = j ? e->ra : e->rb, runs = d[1] * d[4] * d[7];
  int64_t l = 0, h = 0;
  if (first == 0 && last == runs) // the whole block: its corners
    for (int i = 0; i < 3; i++) {
      int64_t o = (int64_t)(d[1 + 3 * i] - 1) * (int64_t)d[2 + 3 * i + j];
      *(o < 0 ? &l : &h) += o;
    }
  else
    for (uint64_t r = first; r < last; r++) {
      uint64_t i1 = r % d[1], i2 = r / d[1] % d[4], i3 = r / d[1] / d[4];
      int64_t o = (int64_t)(i1 * d[2 + j] + i2 * d[5 + j] + i3 * d[8 + j]);
      if (r == first || o < l) l = o;
      if (r == first || o > h) h = o;
    }
  *lo = base + (uint64_t)l, *hi = base + (uint64_t)h + d[0];
}

// Whether no two runs of a block overlap: with the dimensions ordered by
// stride, each stride clears everything inside it (sufficient, not necessary).
static bool runs_disjoint(const uint64_t *d, int j) {
  uint64_t count[3], stride[3];
  int nd = 0;
  for (int i = 0; i < 3; i++)
    if (d[1 + 3 * i] > 1) {
      int64_t st = (int64_t)d[2 + 3 * i + j];
      count[nd] = d[1 + 3 * i], stride[nd++] = st < 0 ? (uint64_t)0 - (uint64_t)st : (uint64_t)st;
    }
  for (int a = 1; a < nd; a++) // insertion sort by stride
    for (int b = a; b > 0 && stride[b] < stride[b - 1]; b--) {
      uint64_t t = stride[b];
      stride[b] = stride[b - 1], stride[b - 1] = t;
      t = count[b], count[b] = count[b - 1], count[b - 1] = t;
    }
  unsigned __int128 ext = d[0];
  for (int i = 0; i < nd; i++) {
    if (stride[i] < ext) return false;
    ext += (unsigned __int128)stride[i] * (count[i] - 1);
  }
  return true;
}

#define DMA_TASK_BYTES (64 << 10) // the least a thread is handed

// How a DMA splits into `parts` pieces whose order cannot be seen: none
// (false) when a destination overlaps another run or a source, or writes host
// memory or HBM (their pages appear as they are written, one at a time).
// Pieces are `per` whole runs, or, when runs are few and long, `piece` bytes
// of one run (pieces per run: `pieces`).
typedef struct {
  sim *s;
  const qentry *e;
  uint64_t runs, per, pieces, piece, tasks;
} dma_split;

static bool dma_plan(sim *s, const qentry *e, uint64_t parts, dma_split *sp) {
  const uint64_t *d = e->desc;
  sim_mem sm = (sim_mem)(e->in.funct & 3), dm = (sim_mem)(e->in.funct >> 2);
  uint64_t runs = d[1] * d[4] * d[7]; // e->bytes fits 64 bits (dispatch), so this does
  *sp = (dma_split){s, e, runs, runs, 1, d[0], 1};
  if (parts < 2 || dm != MEM_LOCAL || e->bytes < 2 * DMA_TASK_BYTES || !runs_disjoint(d, 1)) return false;
  if (sm == MEM_LOCAL) {
    uint64_t slo, shi, dlo, dhi;
    dma_extent(e, 0, runs, 0, &slo, &shi);
    dma_extent(e, 0, runs, 1, &dlo, &dhi);
    if (shi > dlo && dhi > slo) return false;
  }
  if (runs >= parts) {
    uint64_t want = (runs + parts - 1) / parts, least = (DMA_TASK_BYTES + d[0] - 1) / d[0];
    sp->per = want > least ? want : least;
    sp->tasks = (runs + sp->per - 1) / sp->per;
  } else { // a few long runs: pieces of them
    uint64_t want = (e->bytes + parts - 1) / parts;
    sp->per = 1;
    sp->piece = want > DMA_TASK_BYTES ? want : DMA_TASK_BYTES;
    sp->pieces = (d[0] + sp->piece - 1) / sp->piece;
    sp->tasks = runs * sp->pieces;
  }
  return sp->tasks > 1;
}

// Piece `task` of a split: runs [*first, *last), bytes [*off, *off + *len).
static void dma_piece(const dma_split *sp, uint64_t task, uint64_t *first, uint64_t *last, uint64_t *off,
                      uint64_t *len) {
  uint64_t n = sp->e->desc[0];
  if (sp->pieces > 1) {
    *first = task / sp->pieces, *last = *first + 1, *off = task % sp->pieces * sp->piece;
    *len = umin(sp->piece, n - *off);
  } else {
    *first = task * sp->per, *last = umin(sp->runs, *first + sp->per), *off = 0, *len = n;
  }
}

static void dma_task(void *ctx, int task) {
  const dma_split *sp = ctx;
  uint64_t first, last, off, len;
  dma_piece(sp, (uint64_t)task, &first, &last, &off, &len);
  dma_runs(sp->s, sp->e, first, last, off, (size_t)len); // into local memory: cannot fail
}

// The whole DMA now, on the pool's threads when its pieces allow. -1: out of
// host memory.
static int dma_now(sim *s, const qentry *e) {
  dma_split sp;
  if (dma_plan(s, e, 2 * (uint64_t)num_threads(), &sp)) {
    num_parallel((int)sp.tasks, dma_task, &sp);
    return 0;
  }
  return dma_runs(s, e, 0, sp.runs, 0, (size_t)e->desc[0]);
}

// ---- MXU

// Rows [r0, r1) of a pass with the prepared tile (already loaded: a deferred
// pass runs after its weight load). An input that overlaps the output sees
// earlier outputs (numerics.c's order): only the reference, one output at a
// time, does that.
static void pass_now(sim *s, const qentry *e, const void *tile, uint64_t r0, uint64_t r1) {
  const num_tile_hdr *t = tile;
  uint64_t C = (uint64_t)s->chip.mxu_cols, es = t->dtype == DT_BF16 ? 2 : 1;
  bool acc = e->in.flags & MXU_FLAG_ACC, win = e->in.flags & MXU_FLAG_WIN;
  uint64_t stride = win ? e->desc[1] : e->rd, width = win ? e->desc[0] : r1;
  uint64_t in_len = pass_in_len(e, e->rc, (uint64_t)t->k * es), out_len = span(e->rc, C * 4, (uint64_t)t->n * 4);
  bool ref = overlaps(e->rb, in_len, e->ra, out_len);
  // Rows are independent: a window's runs of rows are passes of their own.
  for (uint64_t r = r0, n; r < r1; r += n) {
    n = width - r % width < r1 - r ? width - r % width : r1 - r;
    void *out = local_at(s, e->ra + r * C * 4);
    const void *in = local_at(s, e->rb + pass_row(e, r));
    if (ref) num_tile_pass_ref(tile, out, (size_t)C, in, (size_t)stride, (int)n, acc);
    else num_tile_pass(tile, out, (size_t)C, in, (size_t)stride, (int)n, acc);
  }
}

// ---- vector unit
// Elements are staged in fp32 a chunk at a time (kernels.h converts and
// computes whole chunks). docs/isa.md defines an elementwise instruction row
// by row, each row read whole before it is written; work is split where the
// result cannot depend on the order.

#define VPU_CHUNK 512        // elements staged at a time, per thread
#define VPU_TASK_ELEMS 32768 // the least work worth handing to another thread

typedef struct {
  sim *s;
  const qentry *e;
  int op, kind, dt, dt1, dt2;    // dt: destination type
  uint64_t ed, e1, e2, rows, cols;
  uint64_t sd, s1, s2, bstep;    // elementwise: row strides (bytes) and src2's column step, as planned
  uint8_t *dst;
  const uint8_t *a, *b;
  const uint64_t *d;
  bool whole_rows;               // elementwise with one source wider and one narrower, in place: rows staged whole
  bool rows_indep;               // no destination row reaches into another row
  bool flat;                     // items are (row, chunk) pairs, else whole rows
  bool reverse;                  // a row's chunks from its end
  bool fused;                    // fp32 in and out: num_vop_f32 straight on memory
  bool a_apart, b_apart;         // a source is not the destination: read where it is, not staged
  uint64_t nchunks, items, first, per_task;
  float *out;                    // reductions: results before they are stored
  uint8_t *tmp;                  // transpose: where the result goes (the destination or a copy)
  uint64_t tmp_step;             // bytes between its rows
} vpu_job;

static void vpu_plan(sim *s, const qentry *e, vpu_job *j) {
  const isa_inst *in = &e->in;
  const uint64_t *d = e->desc;
  const isa_vpu_info *v = &isa_vpu_ops[in->funct];
  uint64_t rows = d[0], cols = d[1];
  uint64_t ed = (uint64_t)isa_dtype_bytes[in->dt_dst], e1 = (uint64_t)isa_dtype_bytes[in->dt_src1],
           e2 = (uint64_t)isa_dtype_bytes[in->dt_src2];
  // Base pointers were range-checked at dispatch for the whole block.
  *j = (vpu_job){.s = s, .e = e, .op = in->funct, .kind = v->kind, .dt = in->dt_dst, .dt1 = in->dt_src1,
                 .dt2 = in->dt_src2, .ed = ed, .e1 = e1, .e2 = e2, .rows = rows, .cols = cols,
                 .sd = d[2], .s1 = d[3], .s2 = d[4], .bstep = d[5],
                 .dst = local_at(s, e->ra), .a = local_at(s, e->rb),
                 .b = v->kind == VK_BINARY ? local_at(s, e->rc) : NULL, .d = d,
                 .nchunks = (cols + VPU_CHUNK - 1) / VPU_CHUNK};
  if (v->kind != VK_UNARY && v->kind != VK_BINARY && v->kind != VK_REQUANT) return;
  // A source that is the destination (dispatch allows only the same rows) of
  // a narrower type must be read before the wider results overwrite it:
  // chunks from the end of the row; of a wider type: from the start.
  bool in1 = e->ra == e->rb, in2 = v->kind == VK_BINARY && e->ra == e->rc;
  bool wider = (in1 && e1 < ed) || (in2 && e2 < ed), narrower = (in1 && e1 > ed) || (in2 && e2 > ed);
  uint64_t reach = cols * ed;
  if (in1 && cols * e1 > reach) reach = cols * e1;
  if (in2 && cols * e2 > reach) reach = cols * e2;
  j->rows_indep = rows == 1 || d[2] >= reach;
  j->whole_rows = wider && narrower;
  j->reverse = wider;
  j->flat = !wider && !narrower;
  j->a_apart = !in1, j->b_apart = !in2;
  // Rows that follow each other in every operand are one long row (a max
  // pool's rows of 13 elements, a call each before): each element's result
  // depends only on its own sources, and a source is the destination exactly
  // or apart from it (dispatch).
  if (j->flat && rows > 1 && d[2] == cols * ed && d[3] == cols * e1 &&
      (v->kind != VK_BINARY || (d[5] ? d[4] == cols * e2 : !d[4])))
    j->rows = 1, j->cols = rows * cols, j->nchunks = (j->cols + VPU_CHUNK - 1) / VPU_CHUNK;
  j->items = j->flat ? j->rows * j->nchunks : j->rows;
  // fp32 throughout with an operation num_vop_f32 knows: no staging. Sources
  // are the destination exactly or apart from it (dispatch), as it needs.
  j->fused = v->kind != VK_REQUANT && in->dt_dst == DT_F32 && in->dt_src1 == DT_F32 &&
             (v->kind == VK_UNARY || in->dt_src2 == DT_F32) && num_vop_f32(j->op, NULL, 0, NULL, 0, NULL, 0, 0, 0);
}

// Elementwise (and requant) on columns [c0, c0 + n) of row r.
static void vpu_chunk(const vpu_job *j, uint64_t r, uint64_t c0, uint64_t n, float *x, float *y) {
  const uint64_t *d = j->d;
  uint8_t *dst = j->dst + r * j->sd + c0 * j->ed;
  const uint8_t *a = j->a + r * j->s1 + c0 * j->e1;
  if (j->kind == VK_REQUANT) { // int32 staged first: dst may be the same row
    for (uint64_t c = 0; c < n; c += VPU_CHUNK) {
      int32_t v[VPU_CHUNK];
      uint64_t len = umin(VPU_CHUNK, n - c);
      memcpy(v, a + c * 4, len * 4);
      num_vrequant((int8_t *)dst + c, v, len, (int32_t)d[6], (int)d[7], (int32_t)d[8]);
    }
    return;
  }
  if (j->op == VOP_IADD) { // integers throughout (num_viadd reads before it writes)
    const uint8_t *b = j->b + r * j->s2 + (j->bstep ? c0 * j->e2 : 0);
    num_viadd(dst, j->dt, a, j->dt1, b, j->dt2, !j->bstep, n, (unsigned)d[8]);
    return;
  }
  if (j->fused) { // fp32 throughout, memory to memory (aligned: dispatch checks)
    const float *b = NULL;
    if (j->kind == VK_BINARY) {
      if (j->bstep) b = (const float *)(const void *)(j->b + r * j->s2 + c0 * 4);
      else { // one value for the whole row
        for (uint64_t i = 0; i < n; i++) memcpy(&y[i], j->b + r * j->s2, 4);
        b = y;
      }
    }
    num_vop_f32(j->op, (float *)(void *)dst, 0, (const float *)(const void *)a, 0, b, 0, 1, n);
    return;
  }
  if (j->op == VOP_MOVU) { // i8 operands are unsigned bytes
    if (j->dt1 == DT_I8)
      for (uint64_t i = 0; i < n; i++) x[i] = (float)a[i];
    else num_vload(j->dt1, x, a, n);
    if (j->dt == DT_I8)
      for (uint64_t i = 0; i < n; i++) dst[i] = num_store_u8(x[i]);
    else num_vstore(j->dt, dst, x, n);
    return;
  }
  // fp32 sources apart from the destination are read where they are (a load
  // of fp32 is a copy); a mov is its load and store alone.
  const float *xa = x, *xb = NULL;
  if (j->dt1 == DT_F32 && j->a_apart) xa = (const float *)(const void *)a;
  else num_vload(j->dt1, x, a, n);
  if (j->op == VOP_MOV) {
    num_vstore(j->dt, dst, xa, n);
    return;
  }
  if (j->kind == VK_BINARY) {
    const uint8_t *b = j->b + r * j->s2 + (j->bstep ? c0 * j->e2 : 0);
    if (!j->bstep) { // one value for the whole row
      num_vload(j->dt2, y, b, 1);
      for (uint64_t i = 1; i < n; i++) y[i] = y[0];
      xb = y;
    } else if (j->dt2 == DT_F32 && j->b_apart) xb = (const float *)(const void *)b;
    else num_vload(j->dt2, y, b, n), xb = y;
  }
  num_vop(j->op, x, xa, xb, n);
  num_vstore(j->dt, dst, x, n);
}

// Rows [r, r + nrows), columns [c0, c0 + n), of a fused job: one call.
static void vpu_fused(const vpu_job *j, uint64_t r, uint64_t nrows, uint64_t c0, uint64_t n) {
  const float *b = j->kind == VK_BINARY ? (const float *)(const void *)(j->b + r * j->s2 + c0 * 4) : NULL;
  num_vop_f32(j->op, (float *)(void *)(j->dst + r * j->sd + c0 * 4), (size_t)j->sd / 4,
              (const float *)(const void *)(j->a + r * j->s1 + c0 * 4), (size_t)j->s1 / 4, b, (size_t)j->s2 / 4,
              (size_t)nrows, (size_t)n);
}

// Items [i0, i1) of an elementwise job.
static void vpu_items(const vpu_job *j, uint64_t i0, uint64_t i1) {
  if (i0 >= i1) return;
  if (j->fused && j->flat && (j->kind != VK_BINARY || j->bstep)) {
    // Straight on memory, chunks need not be staged: the items' columns of
    // their first row, whole rows, then their last row's, a call each.
    uint64_t nc = j->nchunks, r = i0 / nc, c0 = i0 % nc * VPU_CHUNK;
    uint64_t rl = (i1 - 1) / nc, cl = umin(j->cols, ((i1 - 1) % nc + 1) * VPU_CHUNK);
    if (r == rl) {
      vpu_fused(j, r, 1, c0, cl - c0);
      return;
    }
    if (c0) vpu_fused(j, r++, 1, c0, j->cols - c0);
    uint64_t whole_end = cl == j->cols ? rl + 1 : rl;
    if (whole_end > r) vpu_fused(j, r, whole_end - r, 0, j->cols);
    if (cl < j->cols) vpu_fused(j, rl, 1, 0, cl);
    return;
  }
  float x[VPU_CHUNK], y[VPU_CHUNK];
  for (uint64_t i = i0; i < i1; i++) {
    if (j->flat) {
      uint64_t c0 = i % j->nchunks * VPU_CHUNK;
      vpu_chunk(j, i / j->nchunks, c0, umin(VPU_CHUNK, j->cols - c0), x, y);
      continue;
    }
    for (uint64_t c = 0; c < j->nchunks; c++) {
      uint64_t c0 = (j->reverse ? j->nchunks - 1 - c : c) * VPU_CHUNK;
      vpu_chunk(j, i, c0, umin(VPU_CHUNK, j->cols - c0), x, y);
    }
  }
}

static void vpu_elementwise_task(void *ctx, int task) {
  const vpu_job *j = ctx;
  uint64_t i0 = j->first + (uint64_t)task * j->per_task;
  vpu_items(j, i0, umin(j->items, i0 + j->per_task));
}

// Row reductions: out[r] = src[r][0] op src[r][1] op ..., in column order.
static void vpu_reduce_task(void *ctx, int task) {
  const vpu_job *j = ctx;
  float x[VPU_CHUNK];
  uint64_t r0 = (uint64_t)task * j->per_task, r1 = umin(j->rows, r0 + j->per_task);
  for (uint64_t r = r0; r < r1; r++) {
    float acc = 0.0f;
    for (uint64_t c0 = 0; c0 < j->cols; c0 += VPU_CHUNK) {
      uint64_t n = umin(VPU_CHUNK, j->cols - c0);
      num_vload(j->dt1, x, j->a + r * j->d[3] + c0 * j->e1, n);
      if (!c0) acc = x[0];
      acc = num_vreduce(j->op, acc, x + !c0, n - !c0);
    }
    j->out[r] = acc;
  }
}

// Column reductions: out[c] = src[0][c] op src[1][c] op ..., in row order,
// for the columns of a group of chunks.
static void vpu_reduce_col_task(void *ctx, int task) {
  const vpu_job *j = ctx;
  float x[VPU_CHUNK];
  uint64_t k0 = (uint64_t)task * j->per_task, k1 = umin(j->nchunks, k0 + j->per_task);
  for (uint64_t k = k0; k < k1; k++) {
    uint64_t c0 = k * VPU_CHUNK, n = umin(VPU_CHUNK, j->cols - c0);
    num_vload(j->dt1, j->out + c0, j->a + c0 * j->e1, n);
    for (uint64_t r = 1; r < j->rows; r++) {
      num_vload(j->dt1, x, j->a + r * j->d[3] + c0 * j->e1, n);
      num_vfold(j->op, j->out + c0, x, n);
    }
  }
}

// Transpose into tmp (the destination's rows, tmp_step bytes apart).
static void vpu_transpose_task(void *ctx, int task) {
  const vpu_job *j = ctx;
  float x[VPU_CHUNK];
  union {
    uint32_t u32[VPU_CHUNK];
    uint16_t u16[VPU_CHUNK];
    uint8_t u8[VPU_CHUNK];
  } conv;
  uint64_t r0 = (uint64_t)task * j->per_task, r1 = umin(j->rows, r0 + j->per_task);
  for (uint64_t r = r0; r < r1; r++)
    for (uint64_t c0 = 0; c0 < j->cols; c0 += VPU_CHUNK) {
      uint64_t n = umin(VPU_CHUNK, j->cols - c0);
      num_vload(j->dt1, x, j->a + r * j->d[3] + c0 * j->e1, n);
      num_vstore(j->dt, &conv, x, n);
      uint8_t *t = j->tmp + r * j->ed;
      size_t step = (size_t)j->tmp_step;
      switch (j->ed) { // aligned: malloc'd, or the destination (dispatch checks)
      case 4: for (uint64_t i = 0; i < n; i++) *(uint32_t *)(void *)(t + (c0 + i) * step) = conv.u32[i]; break;
      case 2: for (uint64_t i = 0; i < n; i++) *(uint16_t *)(void *)(t + (c0 + i) * step) = conv.u16[i]; break;
      default: for (uint64_t i = 0; i < n; i++) t[(c0 + i) * step] = conv.u8[i]; break;
      }
    }
}

// Splits items [first, last) of item_elems elements each into tasks and runs
// them (tasks of reductions and transposes count from 0).
static void vpu_run(vpu_job *j, uint64_t first, uint64_t last, uint64_t item_elems, bool parallel,
                    void (*fn)(void *, int)) {
  uint64_t threads = (uint64_t)num_threads(), items = last - first;
  uint64_t per = parallel ? (items + 2 * threads - 1) / (2 * threads) : items;
  uint64_t least = (VPU_TASK_ELEMS + item_elems - 1) / item_elems;
  if (per < least) per = least;
  if (per < 1) per = 1;
  if (items / per >= 1 << 30) per = items / (1 << 29); // a task count that fits an int
  j->first = first, j->items = last, j->per_task = per;
  num_parallel((int)((items + per - 1) / per), fn, j);
}

// Items [i0, i1) of a vector instruction (elementwise; any other kind runs
// whole), on the pool's threads where the order cannot be seen. -1: out of
// host memory.
static int vpu_now(sim *s, const qentry *e, uint64_t i0, uint64_t i1) {
  vpu_job j;
  vpu_plan(s, e, &j);
  uint64_t rows = j.rows, cols = j.cols, ed = j.ed;
  const uint64_t *d = j.d;
  switch (j.kind) {
  case VK_UNARY: case VK_BINARY: case VK_REQUANT:
    if (j.whole_rows) { // a source narrower and one wider in place: stage whole rows, in order
      float *x = malloc(cols * 2 * sizeof(float)); // (rows of both types at once: rare)
      if (!x) return -1;
      for (uint64_t r = 0; r < rows; r++) vpu_chunk(&j, r, 0, cols, x, x + cols);
      free(x);
      return 0;
    }
    i1 = umin(i1, j.items);
    if (i0 < i1) vpu_run(&j, i0, i1, j.flat ? umin(VPU_CHUNK, cols) : cols, j.rows_indep, vpu_elementwise_task);
    return 0;
  case VK_REDUCE: // all rows first: the destination may overlap the source
    if (!(j.out = malloc(rows * sizeof(float)))) return -1;
    vpu_run(&j, 0, rows, cols, true, vpu_reduce_task);
    if (d[2] == ed) num_vstore(j.dt, j.dst, j.out, rows);
    else
      for (uint64_t r = 0; r < rows; r++) num_vstore(j.dt, j.dst + r * d[2], j.out + r, 1);
    free(j.out);
    return 0;
  case VK_REDUCE_COL:
    if (!(j.out = malloc(cols * sizeof(float)))) return -1;
    vpu_run(&j, 0, j.nchunks, rows * umin(VPU_CHUNK, cols), true, vpu_reduce_col_task);
    num_vstore(j.dt, j.dst, j.out, cols);
    free(j.out);
    return 0;
  case VK_TRANSPOSE:
    // Straight into the destination unless it overlaps the source (then the
    // whole result first, as the instruction reads its source whole).
    if (!overlaps(e->ra, span(cols, d[2], rows * ed), e->rb, span(rows, d[3], cols * j.e1))) {
      j.tmp = j.dst, j.tmp_step = d[2];
      vpu_run(&j, 0, rows, cols, true, vpu_transpose_task);
      return 0;
    }
    if (!(j.tmp = malloc(rows * cols * ed))) return -1;
    j.tmp_step = rows * ed;
    vpu_run(&j, 0, rows, cols, true, vpu_transpose_task);
    for (uint64_t c = 0; c < cols; c++) memcpy(j.dst + c * d[2], j.tmp + c * rows * ed, rows * ed);
    free(j.tmp);
    return 0;
  }
  return 0;
}

// ---------------------------------------------------------------- deferred effects
// With several host threads the event loop does not wait for values: timing
// never reads simulated memory (no DMA reaches SMEM, where descriptors and the
// scalar unit's data are). Effects go to a queue in start order, and workers
// (the pool's threads, and the event loop's when the queue is full or the run
// ends) run each one once every earlier effect it conflicts with is done: two
// effects conflict when they touch the same bytes and one of them writes.
// Every byte therefore sees the same writes in the same order as when the
// effects run one by one at their starts, whatever runs them and when.
// What effects touch is described conservatively by spans:
//   local memory: byte ranges; host memory and HBM: whole 64 KiB pages (their
//   page tables change as pages appear), and every effect that writes one of
//   them also writes its ALLOC span (pages appear one at a time);
//   TILE: an MXU weight buffer, by its address: a weight load writes the
//   buffer it fills, a pass reads the one it uses.
// Big effects are queued as pieces (rows of a pass, items of a vector block,
// runs of a DMA) where the pieces' order cannot be seen, so that one
// instruction, too, can run on several threads.

enum { SP_HOST, SP_HBM, SP_LOCAL, SP_TILE, SP_HOST_ALLOC, SP_HBM_ALLOC };
enum { EFF_DMA, EFF_LDW, EFF_PASS, EFF_VPU };

typedef struct {
  int space;
  bool write;
  uint64_t lo, hi;
} eff_span;

typedef struct {
  int kind;
  qentry e;
  void *tile;             // LDW: the buffer it fills; PASS: the one it reads
  tile_entry *fill;       // LDW: the cache entry whose tile it fills, ready when done
  uint64_t p0, p1;        // the piece: runs, rows or items
  uint64_t off, len;      // DMA: bytes of each run
  uint64_t cycle;         // its start, for a trap's message
  int mxu;                // LDW, PASS: the MXU, whose effects one thread runs; else -1
  eff_span span[4];
  int nspan;
} effect;

// What pushing and claiming test of a queued effect, apart from it: small,
// so that a scan of the queue reads a few cache lines that only the event
// loop writes (the effects themselves are 400 bytes each).
typedef struct {
  uint8_t reads, writes;  // spaces its spans read and write (bit per SP_*)
  int8_t mxu;             // as the effect's
  int16_t granule;        // the writer[] slot of its first local span; -1: none
  // The local bytes its spans read and write cover, apart: a quick test first
  // (a pass reads its rows far from the accumulators it writes, which one
  // range for both would cover, with every effect between).
  uint64_t read_lo, read_hi, write_lo, write_hi;
} eff_sum;

// Effects between the oldest unfinished one and the newest (at most 64: the
// bit masks). The event loop runs ahead of the effects by this many:
// with 32, a thread that had nothing ready found the ring full behind one
// long effect more often (ResNet-50, 2 threads, busy host: medians lower in 5
// of 6 alternated rounds with 64).
#define EFF_RING 64
#define GRANULES 4096

typedef struct {
  // The ring is guarded by a spin lock (sections are a few hundred
  // nanoseconds), and waiting is spinning on `version`, which every change
  // bumps: on this project's virtual hosts each futex call costs microseconds,
  // as much as a small pass, and a mutex and condition variable per effect
  // made two host threads no faster than one. A waiter that spins for a
  // millisecond sleeps on `cv`, and changes wake it only then. The lock, the
  // version and the state the lock guards are on lines of their own: threads
  // spinning on one do not slow the writers of the others.
  _Alignas(64) atomic_bool lock;
  _Alignas(64) atomic_uint_fast64_t version;
  atomic_int sleepers;
  // Guarded by the lock; `head` and `live` are also read without it by the
  // event loop, which alone makes slots live (so what it reads is a superset).
  _Alignas(64) _Atomic uint64_t head; // [head, tail): queued and not yet retired
  _Atomic uint64_t live;  // slots queued and not done (bit per slot)
  uint64_t ready;         // live slots not claimed whose conflicts are all done
  uint64_t tail;          // written by the event loop alone
  uint64_t joined;        // the tasks working (bit per task)
  bool ended;
  bool failed;            // an effect ran out of host memory
  uint64_t fail_pc, fail_cycle;
  const char *fail_what;  // the memory it was filling
  uint8_t ndeps[EFF_RING]; // unfinished earlier effects it conflicts with
  uint64_t dependents[EFF_RING]; // later slots that wait for it
  // Written by the event loop alone, for a slot that is not live.
  _Alignas(64) eff_sum sum[EFF_RING];
  effect ring[EFF_RING];
  // A hint, written without the lock: by hashed 16 KiB granule of local
  // memory, the task that last wrote it, + 1.
  _Atomic uint8_t writer[GRANULES];
  pthread_mutex_t mu;     // only for sleeping
  pthread_cond_t cv;
  sim *s;
} engine;

static _Thread_local engine *fx; // the event loop's engine on its thread; NULL: effects run at once
static _Thread_local int fx_task; // this thread's task in the engine

#define GRANULE_BITS 14
static unsigned granule_slot(uint64_t addr) {
  uint64_t x = (addr >> GRANULE_BITS) * 0x9e3779b97f4a7c15ull;
  return (unsigned)(x >> 52);
}

static eff_sum spans_summarise(const effect *f) {
  eff_sum x = {.mxu = (int8_t)f->mxu, .granule = -1, .read_lo = UINT64_MAX, .write_lo = UINT64_MAX};
  for (int i = 0; i < f->nspan; i++) {
    const eff_span *p = &f->span[i];
    *(p->write ? &x.writes : &x.reads) |= (uint8_t)(1u << p->space);
    if (p->space != SP_LOCAL) continue;
    if (x.granule < 0) x.granule = (int16_t)granule_slot(p->lo);
    uint64_t *lo = p->write ? &x.write_lo : &x.read_lo, *hi = p->write ? &x.write_hi : &x.read_hi;
    *lo = umin(*lo, p->lo), *hi = umax(*hi, p->hi);
  }
  return x;
}

static bool spans_conflict(const eff_sum *sa, const effect *a, const eff_sum *sb, const effect *b) {
  unsigned shared = (sa->writes & (sb->reads | sb->writes)) | (sb->writes & sa->reads);
  if (!shared) return false;
  if (shared == 1u << SP_LOCAL && !overlap(sa->write_lo, sa->write_hi, sb->write_lo, sb->write_hi) &&
      !overlap(sa->write_lo, sa->write_hi, sb->read_lo, sb->read_hi) &&
      !overlap(sa->read_lo, sa->read_hi, sb->write_lo, sb->write_hi))
    return false;
  for (int i = 0; i < a->nspan; i++)
    for (int j = 0; j < b->nspan; j++) {
      const eff_span *x = &a->span[i], *y = &b->span[j];
      if (x->space == y->space && (x->write || y->write) && overlap(x->lo, x->hi, y->lo, y->hi)) return true;
    }
  return false;
}

static void add_span(effect *f, sim_mem m, bool write, uint64_t lo, uint64_t hi) {
  assert(f->nspan < 4);
  if (m == MEM_LOCAL) {
    f->span[f->nspan++] = (eff_span){SP_LOCAL, write, lo, hi};
    return;
  }
  int space = m == MEM_HBM ? SP_HBM : SP_HOST;
  f->span[f->nspan++] = (eff_span){space, write, lo >> LAZY_PAGE_BITS, ((hi - 1) >> LAZY_PAGE_BITS) + 1};
  if (write) f->span[f->nspan++] = (eff_span){space == SP_HBM ? SP_HBM_ALLOC : SP_HOST_ALLOC, true, 0, 1};
}

// Runs an effect (on any thread). -1: out of host memory.
static int effect_run(sim *s, const effect *f) {
  const qentry *e = &f->e;
  switch (f->kind) {
  case EFF_DMA:
    if (f->len) return dma_runs(s, e, f->p0, f->p1, f->off, (size_t)f->len);
    return dma_now(s, e);
  case EFF_LDW:
    num_tile_load(f->tile, e->in.dt_src1, local_at(s, e->ra), (size_t)e->rb, (int)e->rc, (int)e->rd);
    if (f->fill) atomic_store_explicit(&f->fill->ready, true, memory_order_release);
    return 0;
  case EFF_PASS: pass_now(s, e, f->tile, f->p0, f->p1); return 0;
  default: return vpu_now(s, e, f->p0, f->p1);
  }
}

static void engine_lock(engine *g) {
  num_waiter w = {0, 0};
  // Waiters only read the lock's line until it is free: exchanges in a loop
  // would take the line from its holder at every try.
  while (atomic_exchange_explicit(&g->lock, true, memory_order_acquire))
    while (atomic_load_explicit(&g->lock, memory_order_relaxed)) num_keep_waiting(&w, 1e30);
}

static void engine_unlock(engine *g) { atomic_store_explicit(&g->lock, false, memory_order_release); }

// Publishes a change of the ring (lock held or not) and wakes sleepers.
static void engine_changed(engine *g) {
  atomic_fetch_add(&g->version, 1);
  if (atomic_load(&g->sleepers)) {
    pthread_mutex_lock(&g->mu);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
  }
}

// Waits, lock not held, until the version is no longer `seen`: spinning
// (num_keep_waiting), then after a millisecond asleep.
static void engine_wait(engine *g, uint_fast64_t seen) {
  num_waiter w = {0, 0};
  while (atomic_load(&g->version) == seen)
    if (!num_keep_waiting(&w, 1e-3)) break;
  if (atomic_load(&g->version) != seen) return;
  pthread_mutex_lock(&g->mu);
  atomic_fetch_add(&g->sleepers, 1);
  while (atomic_load(&g->version) == seen) pthread_cond_wait(&g->cv, &g->mu);
  atomic_fetch_sub(&g->sleepers, 1);
  pthread_mutex_unlock(&g->mu);
}

// Which working task runs MXU u's effects: the tile it fills, the passes
// that read it and the accumulators they write stay in one core's caches.
// Who runs what changes no value (the dependencies order every conflict);
// it is only locality. On this project's 2-core host, effects handed
// between cores at random took about twice their one-thread time (ResNet-50:
// 84 ms of effect work on two threads against 46 ms on one); with MXUs and
// the last writer's bytes kept on one core, about 65 ms.
static int engine_owner(const engine *g, int u) {
  int n = __builtin_popcountll(g->joined), k;
  if (!n) return fx_task;
  k = u % n;
  uint64_t m = g->joined;
  while (k--) m &= m - 1;
  return __builtin_ctzll(m);
}

// The task an effect had best run on: MXU effects on their MXU's, others on
// the one that last wrote (a hashed 16 KiB granule of) the local memory it
// touches first; -1: any.
static int engine_pref(const engine *g, const eff_sum *x) {
  if (x->mxu >= 0) return engine_owner(g, x->mxu);
  if (x->granule >= 0) return (int)atomic_load_explicit(&g->writer[x->granule], memory_order_relaxed) - 1;
  return -1;
}

static void engine_note_writes(engine *g, const effect *f) {
  for (int i = 0; i < f->nspan; i++) {
    const eff_span *x = &f->span[i];
    if (x->space != SP_LOCAL || !x->write) continue;
    uint64_t a = x->lo >> GRANULE_BITS, b = (x->hi - 1) >> GRANULE_BITS;
    if (b - a > 64) b = a + 64; // a hint: the start of a long span is enough
    for (uint64_t k = a; k <= b; k++)
      atomic_store_explicit(&g->writer[granule_slot(k << GRANULE_BITS)], (uint8_t)(fx_task + 1), memory_order_relaxed);
  }
}

// The oldest ready effect this task should run, taken from the ready set;
// else the oldest that any task may run; NULL if none. An MXU's effects run
// only on its owner. Lock held.
static effect *engine_claim(engine *g) {
  uint64_t r = g->ready;
  if (!r) return NULL;
  unsigned h = (unsigned)(atomic_load_explicit(&g->head, memory_order_relaxed) % EFF_RING);
  r = h ? r >> h | r << (EFF_RING - h) : r; // bit 0: the oldest slot
  int slot = -1;
  for (; r; r &= r - 1) {
    int i = (int)((__builtin_ctzll(r) + h) % EFF_RING), pref = engine_pref(g, &g->sum[i]);
    if (pref == fx_task || pref < 0) {
      slot = i;
      break;
    }
    if (slot < 0 && g->sum[i].mxu < 0) slot = i;
  }
  if (slot < 0) return NULL;
  g->ready &= ~(1ull << slot);
  return &g->ring[slot];
}

// Runs f (claimed, lock not held), then marks it done. Takes the lock.
static void engine_finish(engine *g, effect *f) {
  int rc = effect_run(g->s, f);
  if (fx_task < 255) engine_note_writes(g, f);
  int slot = (int)(f - g->ring);
  engine_lock(g);
  if (rc && (!g->failed || f->cycle < g->fail_cycle)) {
    g->failed = true, g->fail_pc = f->e.pc, g->fail_cycle = f->cycle;
    g->fail_what = f->kind == EFF_DMA ? mem_name((sim_mem)(f->e.in.funct >> 2)) : "vector unit staging";
  }
  uint64_t live = atomic_load_explicit(&g->live, memory_order_relaxed) & ~(1ull << slot), freed = 0;
  atomic_store_explicit(&g->live, live, memory_order_relaxed);
  for (uint64_t m = g->dependents[slot]; m; m &= m - 1) {
    int d = __builtin_ctzll(m);
    if (!--g->ndeps[d]) freed |= 1ull << d;
  }
  g->ready |= freed;
  uint64_t head = atomic_load_explicit(&g->head, memory_order_relaxed), head0 = head;
  while (head < g->tail && !(live >> (head % EFF_RING) & 1)) head++;
  atomic_store_explicit(&g->head, head, memory_order_release); // the slots behind are free
  if (freed || head != head0) engine_changed(g); // else no waiter can go on
}

// Runs one ready effect, or waits for a change. Lock held on entry and exit.
static void engine_step(engine *g) {
  effect *f = engine_claim(g);
  if (!f) {
    uint_fast64_t seen = atomic_load(&g->version);
    engine_unlock(g);
    engine_wait(g, seen);
    engine_lock(g);
    return;
  }
  engine_unlock(g);
  engine_finish(g, f);
}

static uint64_t engine_head(engine *g) { return atomic_load_explicit(&g->head, memory_order_relaxed); }

// Queues f (on the event loop's thread). What it conflicts with is found
// without the lock: only this thread fills slots, so their summaries and
// effects stay as they are while live, and the live set read here can only
// shrink; under the lock the ones done meanwhile are dropped.
static void engine_push(engine *g, effect *f) {
  // Acquire: a slot behind head is no longer read by the task that ran it.
  if (g->tail - atomic_load_explicit(&g->head, memory_order_acquire) == EFF_RING) { // full: help
    engine_lock(g);
    while (g->tail - engine_head(g) == EFF_RING) engine_step(g);
    engine_unlock(g);
  }
  int slot = (int)(g->tail % EFF_RING);
  eff_sum x = spans_summarise(f);
  uint64_t deps = 0;
  for (uint64_t m = atomic_load_explicit(&g->live, memory_order_relaxed); m; m &= m - 1) {
    int i = __builtin_ctzll(m);
    if (spans_conflict(&g->sum[i], &g->ring[i], &x, f)) deps |= 1ull << i;
  }
  g->sum[slot] = x, g->ring[slot] = *f;
  engine_lock(g);
  deps &= atomic_load_explicit(&g->live, memory_order_relaxed);
  for (uint64_t m = deps; m; m &= m - 1) g->dependents[__builtin_ctzll(m)] |= 1ull << slot;
  g->ndeps[slot] = (uint8_t)__builtin_popcountll(deps), g->dependents[slot] = 0;
  atomic_store_explicit(&g->live, atomic_load_explicit(&g->live, memory_order_relaxed) | 1ull << slot,
                        memory_order_relaxed);
  if (!deps) g->ready |= 1ull << slot;
  g->tail++;
  engine_unlock(g);
  if (!deps) engine_changed(g);
}

// Waits until every queued effect is done (helping).
static void engine_drain(engine *g) {
  engine_lock(g);
  while (engine_head(g) < g->tail) engine_step(g);
  engine_unlock(g);
}

static void engine_work(engine *g) {
  engine_lock(g);
  while (!g->ended || engine_head(g) < g->tail) engine_step(g);
  engine_unlock(g);
}

// Pieces worth queueing for an effect of `work` units (MACs, elements, bytes)
// when a piece should have at least `least`.
static uint64_t effect_parts(uint64_t work, uint64_t least) {
  uint64_t threads = (uint64_t)num_threads(), parts = work / least;
  return parts < 1 ? 1 : parts > threads ? threads : parts;
}

// ---- the effects of starting instructions: statistics now, values now or queued

static int do_dma(sim *s, const qentry *e) {
  if (!fx) {
    if (!dma_now(s, e)) return 0;
    return trap(s, e->pc, "out of host memory backing the simulated %s", mem_name((sim_mem)(e->in.funct >> 2)));
  }
  sim_mem sm = (sim_mem)(e->in.funct & 3), dm = (sim_mem)(e->in.funct >> 2);
  dma_split sp;
  bool split = dma_plan(s, e, effect_parts(e->bytes, 4 * DMA_TASK_BYTES), &sp);
  for (uint64_t t = 0; t < (split ? sp.tasks : 1); t++) {
    effect f = {.kind = EFF_DMA, .e = *e, .cycle = s->now, .mxu = -1};
    if (split) dma_piece(&sp, t, &f.p0, &f.p1, &f.off, &f.len);
    else f.p0 = 0, f.p1 = sp.runs; // len 0: dma_now
    uint64_t lo, hi;
    bool bytes = split && sp.pieces > 1; // bytes of one run
    dma_extent(e, f.p0, f.p1, 0, &lo, &hi);
    if (bytes) lo += f.off, hi = lo + f.len;
    add_span(&f, sm, false, lo, hi);
    dma_extent(e, f.p0, f.p1, 1, &lo, &hi);
    if (bytes) lo += f.off, hi = lo + f.len;
    add_span(&f, dm, true, lo, hi);
    engine_push(fx, &f);
  }
  return 0;
}

// ---- provenance: weights from the image
// Most bytes a model's DMAs bring into local memory are its weights, which
// are the image's constants (sim_load_image): the same bytes every run. So
// when an image is mapped the event loop keeps, in start order, which local
// ranges hold which of the image's HBM bytes (s->lx), and:
//  - a DMA of one run from HBM pages that are still the image's (mapped, and
//    no DMA started to write them) into local memory is recorded, not copied
//    (virt);
//  - a weight load whose bytes lie in one recorded range takes its packed tile
//    from the image's cache (tile_entry), or packs into the cache when the
//    tile is not there yet: the tile depends only on those image bytes;
//  - every other access is checked against the ranges when its instruction
//    starts, before its effects are queued: a read of recorded bytes not yet
//    copied copies them first (a DMA effect of its own, queued before the
//    reader: materialise); a write forgets the bytes it spans, copying them
//    first unless it writes every byte of its span; a DMA that writes HBM
//    copies the recorded bytes it would change first. Driver reads and
//    writes (sim_read, sim_write) do the same, outside runs.
// A reader therefore sees exactly the bytes the DMA would have copied, and
// the deferred effects order the copies like any other DMA.

// Copies local [lo, hi), inside x, from where x's bytes came from.
static void materialise(sim *s, const lextent *x, uint64_t lo, uint64_t hi) {
  qentry q = {.in = {.op = OP_DMA, .funct = MEM_HBM | MEM_LOCAL << 2}, .pc = s->pc, .ra = lo,
              .rb = x->hbm + (lo - x->lo), .bytes = hi - lo, .dst_lo = lo, .dst_hi = hi,
              .desc = {hi - lo, 1, 0, 0, 1, 0, 0, 1, 0, 0}};
  do_dma(s, &q); // into local memory: cannot fail
}

// Room for one more recorded range: 0, or -1 out of memory.
static int lx_room(sim *s) {
  if (s->nlx < s->caplx) return 0;
  size_t cap = s->caplx ? 2 * s->caplx : 16;
  lextent *l = realloc(s->lx, cap * sizeof *l);
  if (!l) return -1;
  s->lx = l, s->caplx = cap;
  return 0;
}

static void prov_read(sim *s, uint64_t lo, uint64_t hi) {
  for (size_t i = 0; i < s->nlx; i++) {
    lextent *x = &s->lx[i];
    if (x->virt && x->lo < hi && lo < x->hi) materialise(s, x, x->lo, x->hi), x->virt = false;
  }
}

// whole: the write changes every byte of [lo, hi).
static void prov_write(sim *s, uint64_t lo, uint64_t hi, bool whole) {
  for (size_t i = 0; i < s->nlx; i++) {
    lextent x = s->lx[i];
    if (hi <= x.lo || x.hi <= lo) continue;
    uint64_t a = umax(lo, x.lo), b = umin(hi, x.hi);
    if (x.virt && !whole) materialise(s, &x, a, b);
    if (x.lo < a && b < x.hi) { // a hole in the middle: two ranges
      s->lx[i].hi = a;
      if (lx_room(s)) { // forget the rest, copied
        if (x.virt) materialise(s, &x, b, x.hi);
        continue;
      }
      s->lx[s->nlx++] = (lextent){b, x.hi, x.hbm + (b - x.lo), x.virt};
    } else if (x.lo < a) s->lx[i].hi = a;
    else if (b < x.hi) s->lx[i].lo = b, s->lx[i].hbm += b - x.lo;
    else s->lx[i--] = s->lx[--s->nlx];
  }
}

static void prov_hbm_written(sim *s, uint64_t lo, uint64_t hi) {
  if (!s->image || lo >= hi) return;
  for (uint64_t p = lo >> LAZY_PAGE_BITS; p <= (hi - 1) >> LAZY_PAGE_BITS; p++)
    s->hbm_written[p / 64] |= 1ull << (p % 64);
  for (size_t i = 0; i < s->nlx; i++) {
    lextent *x = &s->lx[i];
    if (x->virt && x->hbm < hi && lo < x->hbm + (x->hi - x->lo)) materialise(s, x, x->lo, x->hi), x->virt = false;
  }
}

// Whether HBM [addr, addr + n) is still the image's, as every effect started
// so far leaves it (pages no DMA was started to write are changed by none
// running now, so reading their table entries here is safe).
static bool image_clean(const sim *s, uint64_t addr, uint64_t n) {
  for (uint64_t p = addr >> LAZY_PAGE_BITS; p <= (addr + n - 1) >> LAZY_PAGE_BITS; p++)
    if ((s->hbm_written[p / 64] >> (p % 64) & 1) || !lazymem_shared(&s->hbm, p)) return false;
  return true;
}

// A DMA's provenance. true: recorded from the image, nothing to copy.
static bool prov_dma(sim *s, const qentry *e) {
  if (!s->image) return false;
  const uint64_t *d = e->desc;
  sim_mem sm = (sim_mem)(e->in.funct & 3), dm = (sim_mem)(e->in.funct >> 2);
  uint64_t runs = d[1] * d[4] * d[7];
  if (sm == MEM_LOCAL) {
    uint64_t lo, hi;
    dma_extent(e, 0, runs, 0, &lo, &hi);
    prov_read(s, lo, hi);
  }
  if (dm == MEM_HBM) prov_hbm_written(s, e->dst_lo, e->dst_hi);
  if (dm != MEM_LOCAL) return false;
  bool image = sm == MEM_HBM && runs == 1 && image_clean(s, e->rb, e->bytes);
  bool whole = runs == 1 || (runs_disjoint(d, 1) && e->bytes == e->dst_hi - e->dst_lo);
  prov_write(s, e->dst_lo, e->dst_hi, whole);
  if (!image) return false;
  if (lx_room(s)) return false; // copied as without an image
  s->lx[s->nlx++] = (lextent){e->ra, e->ra + e->bytes, e->rb, true};
  return true;
}

// A vector instruction's reads and writes.
static void prov_vpu(sim *s, const qentry *e) {
  if (!s->image) return;
  const uint64_t *d = e->desc;
  const isa_vpu_info *v = &isa_vpu_ops[e->in.funct];
  uint64_t rows = d[0], cols = d[1], ed = (uint64_t)isa_dtype_bytes[e->in.dt_dst];
  prov_read(s, e->rb, e->rb + e->ext[1]);
  if (v->kind == VK_BINARY) prov_read(s, e->rc, e->rc + e->ext[2]);
  bool whole = false; // no gaps between the rows written
  switch (v->kind) {
  case VK_UNARY: case VK_BINARY: case VK_REQUANT: whole = rows == 1 || d[2] == cols * ed; break;
  case VK_REDUCE: whole = rows == 1 || d[2] == ed; break;
  case VK_REDUCE_COL: whole = true; break;
  case VK_TRANSPOSE: whole = cols == 1 || d[2] == rows * ed; break;
  }
  prov_write(s, e->ra, e->ra + e->ext[0], whole);
}

// The one recorded range holding all of [lo, hi), or NULL.
static const lextent *prov_find(const sim *s, uint64_t lo, uint64_t hi) {
  for (size_t i = 0; i < s->nlx; i++)
    if (s->lx[i].lo <= lo && hi <= s->lx[i].hi) return &s->lx[i];
  return NULL;
}

enum { TILE_OWN, TILE_HIT, TILE_FILL };
#define ENTRY_BYTES ((sizeof(tile_entry) + 63) / 64 * 64) // tiles stay 64-byte aligned

// The cached tile of a weight load reading the image's HBM from hbm (k rows
// of n elements, stride bytes apart) for the current kernel: TILE_HIT, ready
// or being filled by this run; TILE_FILL, a tile this load must fill (its
// load was seen before); TILE_OWN, none (the load is seen for the first time,
// another run is filling the tile, the cache is full, or out of host memory):
// the load packs into the simulator's own buffer.
static int tile_cache_get(sim *s, uint64_t hbm, uint64_t stride, int k, int n, int dtype, void **tile,
                          tile_entry **fill) {
  sim_image *img = s->image;
  int kernel = (int)num_kernel_current(), got = TILE_OWN;
  uint64_t h = (hbm * 0x9e3779b97f4a7c15ull) ^ (stride * 0xff51afd7ed558ccdull) ^
               ((uint64_t)k << 40 | (uint64_t)n << 16 | (uint64_t)dtype << 8 | (uint64_t)kernel);
  h ^= h >> 29;
  pthread_mutex_lock(&img->mu);
  if (img->n >= img->nbucket) { // grow (chains stay short); a failure keeps the old table
    size_t nb = img->nbucket ? 2 * img->nbucket : 1024;
    tile_entry **b = calloc(nb, sizeof *b);
    if (b) {
      for (size_t i = 0; i < img->nbucket; i++)
        for (tile_entry *t = img->bucket[i], *next; t; t = next) next = t->next, t->next = b[t->hash % nb], b[t->hash % nb] = t;
      free(img->bucket);
      img->bucket = b, img->nbucket = nb;
    }
  }
  tile_entry *t = NULL;
  if (img->nbucket) {
    for (t = img->bucket[h % img->nbucket]; t; t = t->next)
      if (t->hbm == hbm && t->stride == stride && t->k == k && t->n == n && t->dtype == dtype && t->kernel == kernel) break;
    void *room;
    if (t && t->tile) {
      if (atomic_load_explicit(&t->ready, memory_order_acquire) || t->filler == s->run_id) *tile = t->tile, got = TILE_HIT;
    } else if (t && (room = slab_take(img, num_tile_exact_bytes(dtype, k, n)))) { // seen before: cache it
      t->tile = num_tile_place_exact(room, dtype, k, n), t->filler = s->run_id, img->ntiles++;
      *tile = t->tile, *fill = t, got = TILE_FILL;
    } else if (!t && (t = slab_take(img, ENTRY_BYTES))) {
      *t = (tile_entry){.hbm = hbm, .stride = stride, .k = k, .n = n, .dtype = dtype, .kernel = kernel, .hash = h,
                        .next = img->bucket[h % img->nbucket]};
      img->bucket[h % img->nbucket] = t, img->n++;
    }
  }
  pthread_mutex_unlock(&img->mu);
  return got;
}

static void do_ldw(sim *s, const qentry *e) {
  mxu_weights *w = &s->mw[e->in.unit];
  int es = isa_dtype_bytes[e->in.dt_src1];
  int k = (int)e->rc, n = (int)e->rd;
  w->spending = true, w->sk = k, w->sn = n, w->sdt = e->in.dt_src1;
  count_bytes(s, MEM_LOCAL, e->ra, (uint64_t)k * n * es, false);
  w->sload = w->shadow;
  if (s->opt.timing_only) return;
  uint64_t lo = e->ra, hi = e->ra + span((uint64_t)k, e->rb, (uint64_t)n * es);
  effect f = {.kind = EFF_LDW, .e = *e, .tile = w->shadow, .cycle = s->now, .mxu = e->in.unit};
  if (s->image) { // bytes from the image: the cache's tile (provenance, above)
    const lextent *x = prov_find(s, lo, hi);
    if (x && tile_cache_get(s, x->hbm + (lo - x->lo), e->rb, k, n, e->in.dt_src1, &f.tile, &f.fill) == TILE_HIT) {
      w->sload = f.tile;
      return;
    }
    w->sload = f.tile;
    prov_read(s, lo, hi);
  }
  if (!fx) {
    effect_run(s, &f);
    return;
  }
  add_span(&f, MEM_LOCAL, false, lo, hi);
  f.span[f.nspan++] = (eff_span){SP_TILE, true, (uintptr_t)f.tile, (uintptr_t)f.tile + 1};
  engine_push(fx, &f);
}

static void do_pass(sim *s, const qentry *e) {
  mxu_weights *w = &s->mw[e->in.unit];
  if (w->spending) {
    uint8_t *t = w->active;
    w->active = w->shadow, w->shadow = t;
    w->aload = w->sload;
    w->ak = w->sk, w->an = w->sn, w->adt = w->sdt, w->spending = false, w->have = true;
  }
  assert(w->have && w->adt == e->in.dt_src1); // checked at dispatch
  uint64_t C = (uint64_t)s->chip.mxu_cols, es = (uint64_t)isa_dtype_bytes[w->adt], m = e->rc;
  bool acc = e->in.flags & MXU_FLAG_ACC;
  uint64_t macs = m * (uint64_t)w->ak * (uint64_t)w->an;
  *(w->adt == DT_BF16 ? &s->st.macs_bf16 : &s->st.macs_int8) += macs;
  if (s->prof) s->prof[e->pc].macs += macs;
  count_bytes(s, MEM_LOCAL, e->rb, m * w->ak * es, false);
  if (acc) count_bytes(s, MEM_LOCAL, e->ra, m * w->an * 4, false);
  count_bytes(s, MEM_LOCAL, e->ra, m * w->an * 4, true);
  if (s->opt.timing_only) return;
  uint64_t in_len = pass_in_len(e, m, (uint64_t)w->ak * es), out_len = span(m, C * 4, (uint64_t)w->an * 4);
  if (s->image) prov_read(s, e->rb, e->rb + in_len), prov_write(s, e->ra, e->ra + out_len, false);
  if (!fx) {
    pass_now(s, e, w->aload, 0, m);
    return;
  }
  // Pieces of whole 32-row blocks, unless the input overlaps the output.
  uint64_t parts = overlaps(e->rb, in_len, e->ra, out_len) ? 1 : effect_parts(macs, 1 << 21);
  uint64_t rows = (m + parts - 1) / parts;
  rows = (rows + 31) / 32 * 32;
  for (uint64_t r0 = 0; r0 < m; r0 += rows) {
    uint64_t r1 = umin(m, r0 + rows);
    effect f = {.kind = EFF_PASS, .e = *e, .tile = w->aload, .p0 = r0, .p1 = r1, .cycle = s->now,
                .mxu = e->in.unit};
    if (e->in.flags & MXU_FLAG_WIN) add_span(&f, MEM_LOCAL, false, e->rb, e->rb + in_len); // the whole window
    else add_span(&f, MEM_LOCAL, false, e->rb + r0 * e->rd, e->rb + r0 * e->rd + span(r1 - r0, e->rd, (uint64_t)w->ak * es));
    add_span(&f, MEM_LOCAL, true, e->ra + r0 * C * 4, e->ra + r0 * C * 4 + span(r1 - r0, C * 4, (uint64_t)w->an * 4));
    f.span[f.nspan++] = (eff_span){SP_TILE, false, (uintptr_t)w->aload, (uintptr_t)w->aload + 1};
    engine_push(fx, &f);
  }
}

// The bytes rows [r0, r1] (columns [c0, c1) when r0 == r1) of a block span.
static void rows_span(effect *f, bool write, uint64_t base, uint64_t stride, uint64_t es, uint64_t r0, uint64_t r1,
                      uint64_t c0, uint64_t c1, uint64_t cols) {
  if (r0 == r1) add_span(f, MEM_LOCAL, write, base + r0 * stride + c0 * es, base + r0 * stride + c1 * es);
  else add_span(f, MEM_LOCAL, write, base + r0 * stride, base + r1 * stride + cols * es);
}

static void do_vpu(sim *s, const qentry *e) {
  const isa_inst *in = &e->in;
  const uint64_t *d = e->desc;
  const isa_vpu_info *v = &isa_vpu_ops[in->funct];
  uint64_t rows = d[0], cols = d[1];
  uint64_t ed = (uint64_t)isa_dtype_bytes[in->dt_dst], e1 = (uint64_t)isa_dtype_bytes[in->dt_src1],
           e2 = (uint64_t)isa_dtype_bytes[in->dt_src2];
  s->st.vpu_elements += rows * cols;
  count_bytes(s, MEM_LOCAL, e->rb, rows * cols * e1, false);
  if (v->kind == VK_BINARY) count_bytes(s, MEM_LOCAL, e->rc, rows * cols * e2, false);
  uint64_t out = v->kind == VK_REDUCE ? rows : v->kind == VK_REDUCE_COL ? cols : rows * cols;
  count_bytes(s, MEM_LOCAL, e->ra, out * ed, true);
  if (s->opt.timing_only) return;
  if (!fx) {
    if (vpu_now(s, e, 0, UINT64_MAX)) trap(s, e->pc, "out of host memory");
    return;
  }
  vpu_job j;
  vpu_plan(s, e, &j);
  bool elementwise = v->kind == VK_UNARY || v->kind == VK_BINARY || v->kind == VK_REQUANT;
  uint64_t parts = elementwise && j.rows_indep && !j.whole_rows ? effect_parts(rows * cols, 2 * VPU_TASK_ELEMS) : 1;
  uint64_t items = elementwise ? j.items : 1, per = (items + parts - 1) / parts;
  for (uint64_t i0 = 0; i0 < items; i0 += per) {
    uint64_t i1 = umin(items, i0 + per);
    effect f = {.kind = EFF_VPU, .e = *e, .p0 = i0, .p1 = i1, .cycle = s->now, .mxu = -1};
    if (elementwise) {
      // Rows ra..rb, and within one row the columns of its chunks (of the
      // block as planned: rows that follow each other may be one).
      uint64_t jc = j.cols, r0 = j.flat ? i0 / j.nchunks : i0, r1 = j.flat ? (i1 - 1) / j.nchunks : i1 - 1;
      uint64_t c0 = j.flat ? i0 % j.nchunks * VPU_CHUNK : 0;
      uint64_t c1 = j.flat ? umin(jc, ((i1 - 1) % j.nchunks + 1) * VPU_CHUNK) : jc;
      rows_span(&f, false, e->rb, j.s1, e1, r0, r1, c0, c1, jc);
      if (v->kind == VK_BINARY) {
        if (j.bstep) rows_span(&f, false, e->rc, j.s2, e2, r0, r1, c0, c1, jc);
        else rows_span(&f, false, e->rc, j.s2, e2, r0, r1, 0, 1, 1);
      }
      rows_span(&f, true, e->ra, j.sd, ed, r0, r1, c0, c1, jc);
    } else { // the whole block, as dispatch checked it
      add_span(&f, MEM_LOCAL, false, e->rb, e->rb + span(rows, d[3], cols * e1));
      uint64_t dst_ext = v->kind == VK_REDUCE ? span(rows, d[2], ed)
                         : v->kind == VK_REDUCE_COL ? cols * ed
                                                    : span(cols, d[2], rows * ed); // transpose
      add_span(&f, MEM_LOCAL, true, e->ra, e->ra + dst_ext);
    }
    engine_push(fx, &f);
  }
}

// ---------------------------------------------------------------- DMA bandwidth

// Transfers in their data phase share each memory's bandwidth equally; a
// transfer moves at the smallest share among the memories it touches.
static void dma_advance(sim *s, uint64_t t) {
  uint64_t dt = t - s->dma_last;
  for (int q = 0; q < s->chip.dma_queues; q++) {
    unit *u = &s->units[SIM_UNIT_DMA0 + q];
    if (u->moving) u->remaining -= u->rate * (double)dt;
  }
  s->dma_last = t;
}

static void dma_reschedule(sim *s, uint64_t t) {
  int users[3] = {0};
  for (int q = 0; q < s->chip.dma_queues; q++) {
    unit *u = &s->units[SIM_UNIT_DMA0 + q];
    for (int r = 0; r < 3 && u->moving; r++) users[r] += (u->res_mask >> r) & 1;
  }
  uint64_t next = NEVER;
  for (int q = 0; q < s->chip.dma_queues; q++) {
    unit *u = &s->units[SIM_UNIT_DMA0 + q];
    if (!u->moving) continue;
    u->rate = INFINITY;
    for (int r = 0; r < 3; r++)
      if ((u->res_mask >> r) & 1 && s->res_bw[r] / users[r] < u->rate) u->rate = s->res_bw[r] / users[r];
    double cycles = u->remaining > 0 ? ceil(u->remaining / u->rate) : 0;
    next = cycles < 1 ? t : t + (uint64_t)cycles < next ? t + (uint64_t)cycles : next;
  }
  s->dma_gen++;
  if (next != NEVER) push_event(s, next, EV_DMA, 0, s->dma_gen, 0);
}

static int mem_latency(const sim *s, sim_mem m) {
  return m == MEM_HOST ? s->chip.host_latency : m == MEM_HBM ? s->chip.hbm_latency : 0;
}

static void dma_finish_data(sim *s, uint64_t t) {
  for (int q = 0; q < s->chip.dma_queues; q++) {
    unit *u = &s->units[SIM_UNIT_DMA0 + q];
    if (!u->moving || u->remaining > 1e-6 * (double)u->cur.bytes + 1e-6) continue;
    u->moving = false;
    u->free_at = t;
    const qentry *e = &u->cur;
    uint64_t start = u->last_done; // data phase start, kept here while moving
    s->st.busy[u->id] += t - start;
    if (s->prof) s->prof[e->pc].busy += t - start;
    int lat = mem_latency(s, (sim_mem)(e->in.funct & 3));
    if (mem_latency(s, (sim_mem)(e->in.funct >> 2)) > lat) lat = mem_latency(s, (sim_mem)(e->in.funct >> 2));
    uint64_t done = t + (uint64_t)lat;
    if ((e->in.funct >> 2) == MEM_LOCAL && (e->in.funct & 3) != MEM_LOCAL) { // data from HBM or the host
      unsigned k = s->narrivals++ % SIM_ARRIVALS;
      s->arrivals[k].lo = e->dst_lo, s->arrivals[k].hi = e->dst_hi, s->arrivals[k].done = done;
    }
    add_trace(s, u->id * 2, start, done, e->pc, -1);
    push_event(s, done, EV_DONE, u->id, e->in.signal ? e->in.signal_sem + 1u : 0, e->pc);
    if (u->qcount) schedule_try(s, u, t);
  }
}

// ---------------------------------------------------------------- Table 3
//
// The TPU v1 paper's Table 3 splits the matrix unit's cycles into array
// active, weight stall, weight shift and non-matrix (docs/timing.md). Each
// idle gap of the array, from the end of one pass's rows to the start of the
// next pass, is attributed when that pass starts: if it takes a new tile,
// the part of the gap during the tile's load is weight shift and the part
// before the tile's data arrived from HBM or the host is weight stall; the
// rest, and every gap before a pass that keeps its tile, is non-matrix.

static uint64_t overlap_len(uint64_t a, uint64_t b, uint64_t lo, uint64_t hi) {
  uint64_t x = umax(a, lo), y = umin(b, hi);
  return y > x ? y - x : 0;
}

static struct t3_counts t3_now(const sim *s) {
  return (struct t3_counts){s->st.mxu_active, s->st.weight_stall, s->st.weight_shift, s->st.non_matrix,
                            s->st.macs_bf16, s->st.macs_int8};
}

// The window opens at cycle t: an idle array's next gap starts there, and the
// rows of a pass still running count as active inside it.
static void t3_open(sim *s, uint64_t t) {
  s->t3_opened = true, s->t3_t0 = t, s->t3_base = t3_now(s);
  for (int i = 0; i < s->chip.mxu_count; i++) {
    unit *u = &s->units[SIM_UNIT_MXU0 + i];
    if (u->t3_free > t) s->t3_base.active -= u->t3_free - t;
    else u->t3_free = t;
  }
}

// The window closes at cycle t: each array's idle tail is non-matrix, and the
// rows of a pass still running after t are outside.
static void t3_close(sim *s, uint64_t t) {
  s->t3_closed = true, s->t3_t1 = t, s->t3_end = t3_now(s);
  for (int i = 0; i < s->chip.mxu_count; i++) {
    const unit *u = &s->units[SIM_UNIT_MXU0 + i];
    if (u->t3_free > t) s->t3_end.active -= u->t3_free - t;
    else s->t3_end.non_matrix += t - u->t3_free;
  }
}

static void table3_load(sim *s, unit *u, const qentry *e, uint64_t t) {
  uint64_t es = (uint64_t)isa_dtype_bytes[e->in.dt_src1];
  uint64_t lo = e->ra, hi = e->ra + span(e->rc, e->rb, e->rd * es), arrive = 0;
  unsigned n = s->narrivals < SIM_ARRIVALS ? s->narrivals : SIM_ARRIVALS;
  for (unsigned i = 0; i < n; i++)
    if (s->arrivals[i].lo < hi && lo < s->arrivals[i].hi && s->arrivals[i].done > arrive) arrive = s->arrivals[i].done;
  u->ld_start = t;
  u->ld_ready = u->mt.dataflow == MXU_WS ? u->mt.shadow_ready : t;
  u->ld_arrive = arrive;
  u->ld_pending = true;
}

static void table3_pass(sim *s, unit *u, uint64_t t, uint64_t m) {
  if (t > u->t3_free) {
    uint64_t a = u->t3_free, gap = t - a, shift = 0, stall = 0;
    if (u->ld_pending) {
      shift = overlap_len(a, t, u->ld_start, u->ld_ready);
      stall = overlap_len(a, t, a, umin(u->ld_arrive, u->ld_start));
    }
    s->st.weight_shift += shift;
    s->st.weight_stall += stall;
    s->st.non_matrix += gap - shift - stall;
  }
  u->ld_pending = false;
  s->st.mxu_active += m;
  u->t3_free = t + m;
}

// ---------------------------------------------------------------- starting

// An instruction that cannot end within the cycle budget traps as it starts,
// before its data effect (which happens then): a DMA of many overlapping runs
// may name gigabytes, and copying them would take the host that long whatever
// the budget (found by tests/fuzz/fuzz_program). end: the earliest cycle it
// can end (a DMA alone on its memories' bandwidth; a pass or a vector
// instruction exactly).
static bool over_budget(sim *s, const qentry *e, uint64_t t, uint64_t end) {
  if (end <= s->opt.max_cycles) return false;
  trap(s, e->pc, "cycle budget of %" PRIu64 " cycles exceeded (--max-cycles): this instruction, started at cycle %" PRIu64
       ", ends at cycle %" PRIu64 " at the earliest", s->opt.max_cycles, t, end);
  return true;
}

static void start(sim *s, unit *u, uint64_t t) {
  qentry e = u->q[u->qhead];
  s->inflight++;
  u->qhead = (u->qhead + 1) % s->chip.queue_depth;
  u->qcount--;
  uint64_t done = t;
  sim_pc_profile *prof = s->prof ? prof_start(s, e.pc, t) : NULL;
  switch (e.in.op) {
  case OP_DMA: {
    sim_mem sm = (sim_mem)(e.in.funct & 3), dm = (sim_mem)(e.in.funct >> 2);
    double data = ceil((double)e.bytes / fmin(s->res_bw[sm], s->res_bw[dm]));
    if (over_budget(s, &e, t, data < 1e18 ? t + (uint64_t)data : NEVER)) return;
    if (!s->opt.timing_only && !prov_dma(s, &e) && do_dma(s, &e)) return;
    count_bytes(s, sm, e.rb, e.bytes, false);
    count_bytes(s, dm, e.ra, e.bytes, true);
    if (prof) prof->hbm_bytes += e.bytes * ((sm == MEM_HBM) + (dm == MEM_HBM));
    dma_advance(s, t);
    u->moving = true, u->remaining = (double)e.bytes, u->cur = e, u->last_done = t;
    u->res_mask = 1 << sm | 1 << dm;
    u->free_at = NEVER;
    dma_reschedule(s, t);
    return; // completion is found by the bandwidth model
  }
  case OP_MXU_LDW: {
    uint64_t st = mxu_timing_load_tile(&u->mt, t, (int)e.rc, (int)e.rd);
    assert(st == t);
    (void)st;
    do_ldw(s, &e);
    done = mxu_timing_load_done(&u->mt, t);
    table3_load(s, u, &e, t);
    s->st.weight_loads++;
    add_trace(s, u->id * 2 + 1, t, done, e.pc, -1);
    break;
  }
  case OP_MXU_MM: {
    int rate = e.in.dt_src1 == DT_I8 ? s->chip.int8_macs_per_pe : 1;
    int m = (int)((e.rc + (uint64_t)rate - 1) / (uint64_t)rate);
    uint64_t st;
    bool ok = mxu_timing_pass(&u->mt, t, m, &st, &done);
    assert(ok && st == t);
    (void)ok;
    if (over_budget(s, &e, t, done)) return;
    table3_pass(s, u, t, (uint64_t)m);
    do_pass(s, &e);
    s->st.busy[u->id] += (uint64_t)m;
    if (prof) prof->busy += (uint64_t)m;
    s->st.passes++;
    add_trace(s, u->id * 2, t, done, e.pc, -1);
    break;
  }
  case OP_VPU: {
    uint64_t lanes = (uint64_t)s->chip.vpu_lanes * s->chip.vpu_sublanes;
    uint64_t issue = (e.elems + lanes - 1) / lanes * (uint64_t)isa_vpu_ops[e.in.funct].cost;
    done = t + issue + (uint64_t)s->chip.vpu_latency;
    if (over_budget(s, &e, t, done)) return;
    if (!s->opt.timing_only) prov_vpu(s, &e);
    do_vpu(s, &e);
    u->free_at = t + issue;
    s->st.busy[u->id] += issue;
    if (prof) prof->busy += issue;
    add_trace(s, u->id * 2, t, done, e.pc, -1);
    break;
  }
  }
  push_event(s, done, EV_DONE, u->id, e.in.signal ? e.in.signal_sem + 1u : 0, e.pc);
  if (u->qcount) schedule_try(s, u, t);
}

// The first cycle >= t at which unit u's resources let its head start.
static uint64_t resource_ready(sim *s, unit *u, const qentry *h, uint64_t t) {
  t = umax(t, h->arrive);
  switch (h->in.op) {
  case OP_DMA: return u->moving ? NEVER : umax(t, u->free_at);
  case OP_VPU: return umax(t, u->free_at);
  case OP_MXU_LDW: {
    mxu_timing tmp = u->mt;
    uint64_t st = mxu_timing_load_tile(&tmp, t, (int)h->rc, (int)h->rd);
    assert(st != NEVER); // two loads without a pass trap at dispatch
    if (st > t) s->st.stall[u->id][STALL_SHADOW] += st - t;
    return st;
  }
  default: {
    mxu_timing tmp = u->mt;
    uint64_t st, done;
    int rate = h->in.dt_src1 == DT_I8 ? s->chip.int8_macs_per_pe : 1;
    mxu_timing_pass(&tmp, t, (int)((h->rc + (uint64_t)rate - 1) / (uint64_t)rate), &st, &done);
    s->st.stall[u->id][STALL_WEIGHTS] += tmp.weight_wait;
    return st;
  }
  }
}

static void try_start(sim *s, unit *u, uint64_t t) {
  u->try_pending = false;
  if (!u->qcount || u->blocked) return;
  const qentry *h = &u->q[u->qhead];
  uint64_t st = resource_ready(s, u, h, t);
  if (st == NEVER) return; // a DMA engine still moving data: its end retries
  if (st > t) {
    schedule_try(s, u, st);
    return;
  }
  if (h->in.wait) {
    if (!s->sem[h->in.wait_sem]) {
      u->blocked = true, u->blocked_since = t;
      return;
    }
    s->sem[h->in.wait_sem]--;
  }
  start(s, u, t);
}

static bool units_idle(const sim *s) {
  for (int id = 1; id < SIM_UNITS; id++)
    if (s->units[id].present && (s->units[id].qcount || s->units[id].moving)) return false;
  return s->inflight == 0;
}

static int signal_sem(sim *s, int sem, uint64_t t, int unit_id, uint64_t pc) {
  if (s->sem[sem] == UINT32_MAX) {
    char name[16];
    return trap(s, pc, "semaphore s%d overflowed (signalled by %s)", sem, unit_label(s, unit_id, name, sizeof name));
  }
  s->sem[sem]++;
  for (int id = 1; id < SIM_UNITS; id++) {
    unit *u = &s->units[id];
    if (u->blocked && u->q[u->qhead].in.wait_sem == sem) {
      u->blocked = false;
      s->st.stall[id][STALL_SEMAPHORE] += t - u->blocked_since;
      add_trace(s, id * 2, u->blocked_since, t, NEVER, STALL_SEMAPHORE);
      schedule_try(s, u, t);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- scalar unit

static int64_t sx(uint64_t v) { return (int64_t)v; }

// Executes one instruction at s->now. Returns 0, 1 if the scalar unit blocked
// (the instruction will be retried), or -1 on a trap.
static int scalar_step(sim *s) {
  if (s->pc == s->t3_open_pc && !s->t3_opened) t3_open(s, s->now);
  if (s->pc == s->t3_close_pc && s->t3_opened && !s->t3_closed) t3_close(s, s->now);
  if (s->pc >= s->ncode) return trap(s, s->pc, "pc %" PRIu64 " is outside the program (%zu instructions)", s->pc, s->ncode);
  if (!s->legal[s->pc]) {
    isa_inst bad;
    char why[200];
    isa_decode(s->code[s->pc], &bad, why, sizeof why);
    return trap(s, s->pc, "illegal instruction: %s", why);
  }
  const isa_inst in = s->dec[s->pc];
  const isa_op_info *info = &isa_ops[in.op];
  uint64_t *r = s->reg, a = r[in.ra], b = r[in.rb], c = r[in.rc];
  int64_t imm = in.imm;
  uint64_t next = s->pc + 1, val = 0;
  bool write = false;
  if (info->format == FMT_T) {
    int rc = dispatch(s, &in);
    if (rc) return rc;
  } else {
    switch (in.op) {
    case OP_NOP: break;
    case OP_HALT: // pc stays on the halt: a later trap (deadlock, cycle budget) names it
      s->sstate = SC_HALT, s->halt_cycle = s->now, s->sblocked_since = s->now, next = s->pc;
      break;
    case OP_FENCE:
      if (!units_idle(s)) {
        s->sstate = SC_FENCE, s->sblocked_since = s->now;
        return 1;
      }
      break;
    case OP_LI: val = (uint64_t)imm, write = true; break;
    case OP_LIH: val = (uint64_t)(uint32_t)imm << 32 | (a & 0xffffffffu), write = true; break;
    case OP_ADD: val = b + c, write = true; break;
    case OP_SUB: val = b - c, write = true; break;
    case OP_MUL: val = b * c, write = true; break;
    case OP_AND: val = b & c, write = true; break;
    case OP_OR: val = b | c, write = true; break;
    case OP_XOR: val = b ^ c, write = true; break;
    case OP_SHL: val = b << (c & 63), write = true; break;
    case OP_SHR: val = b >> (c & 63), write = true; break;
    case OP_SRA: val = (uint64_t)(sx(b) >> (c & 63)), write = true; break;
    case OP_SLT: val = sx(b) < sx(c), write = true; break;
    case OP_SLTU: val = b < c, write = true; break;
    case OP_MIN: val = sx(b) < sx(c) ? b : c, write = true; break;
    case OP_MAX: val = sx(b) > sx(c) ? b : c, write = true; break;
    case OP_DIV: case OP_REM:
      if (!c) return trap(s, s->pc, "division by zero (r%d is 0)", in.rc);
      if (sx(b) == INT64_MIN && sx(c) == -1) val = in.op == OP_DIV ? b : 0;
      else val = (uint64_t)(in.op == OP_DIV ? sx(b) / sx(c) : sx(b) % sx(c));
      write = true;
      break;
    case OP_ADDI: val = b + (uint64_t)imm, write = true; break;
    case OP_MULI: val = b * (uint64_t)imm, write = true; break;
    case OP_ANDI: val = b & (uint64_t)imm, write = true; break;
    case OP_ORI: val = b | (uint64_t)imm, write = true; break;
    case OP_XORI: val = b ^ (uint64_t)imm, write = true; break;
    case OP_SHLI: val = b << (imm & 63), write = true; break;
    case OP_SHRI: val = b >> (imm & 63), write = true; break;
    case OP_SRAI: val = (uint64_t)(sx(b) >> (imm & 63)), write = true; break;
    case OP_SLTI: val = sx(b) < imm, write = true; break;
    case OP_LD: case OP_ST: case OP_LDW: case OP_STW: {
      uint64_t addr = b + (uint64_t)imm, n = in.op == OP_LD || in.op == OP_ST ? 8 : 4;
      if (addr % n) return trap(s, s->pc, "SMEM address 0x%" PRIx64 " is not aligned to %" PRIu64 " bytes", addr, n);
      if (addr > s->chip.smem_bytes || n > s->chip.smem_bytes - addr)
        return trap(s, s->pc, "SMEM address 0x%" PRIx64 " is outside SMEM (%" PRIu64 " bytes)", addr, s->chip.smem_bytes);
      if (in.op == OP_LD) memcpy(&val, s->smem + addr, 8), write = true;
      else if (in.op == OP_LDW) {
        int32_t w;
        memcpy(&w, s->smem + addr, 4);
        val = (uint64_t)(int64_t)w, write = true;
      } else if (in.op == OP_ST) memcpy(s->smem + addr, &a, 8);
      else {
        uint32_t w = (uint32_t)a;
        memcpy(s->smem + addr, &w, 4);
      }
      break;
    }
    case OP_BEQ: if (a == b) next = s->pc + (uint64_t)imm; break;
    case OP_BNE: if (a != b) next = s->pc + (uint64_t)imm; break;
    case OP_BLT: if (sx(a) < sx(b)) next = s->pc + (uint64_t)imm; break;
    case OP_BGE: if (sx(a) >= sx(b)) next = s->pc + (uint64_t)imm; break;
    case OP_BLTU: if (a < b) next = s->pc + (uint64_t)imm; break;
    case OP_BGEU: if (a >= b) next = s->pc + (uint64_t)imm; break;
    case OP_JAL: val = s->pc + 1, write = true, next = s->pc + (uint64_t)imm; break;
    case OP_JALR: val = s->pc + 1, write = true, next = b + (uint64_t)imm; break;
    case OP_DBNZ: val = a - 1, write = true; if (val) next = s->pc + (uint64_t)imm; break;
    case OP_SWAIT: case OP_SSIGNAL: {
      int sem = imm & 31;
      uint32_t n = (uint32_t)imm >> 8;
      if (in.op == OP_SWAIT) {
        if (s->sem[sem] < n) {
          s->sstate = SC_SWAIT, s->sblocked_since = s->now, s->swait_sem = sem, s->swait_count = n;
          return 1;
        }
        s->sem[sem] -= n;
      } else {
        if ((uint64_t)s->sem[sem] + n > UINT32_MAX) return trap(s, s->pc, "semaphore s%d overflowed", sem);
        s->sem[sem] += n - 1;
        if (signal_sem(s, sem, s->now, SIM_UNIT_SCALAR, s->pc)) return -1;
      }
      break;
    }
    case OP_CSRR: {
      const chip_config *ch = &s->chip;
      uint64_t v[CSR_COUNT] = {
          [CSR_CYCLE] = s->now, [CSR_CORE_ID] = 0, [CSR_NUM_MXU] = (uint64_t)ch->mxu_count,
          [CSR_MXU_ROWS] = (uint64_t)ch->mxu_rows, [CSR_MXU_COLS] = (uint64_t)ch->mxu_cols,
          [CSR_VMEM_BYTES] = ch->vmem_bytes, [CSR_ACC_BYTES] = ch->acc_bytes,
          [CSR_SMEM_BYTES] = ch->smem_bytes, [CSR_HBM_BYTES] = ch->hbm_bytes,
          [CSR_ACC_BASE] = ISA_ACC_BASE, [CSR_DMA_QUEUES] = (uint64_t)ch->dma_queues,
          [CSR_VPU_LANES] = (uint64_t)ch->vpu_lanes, [CSR_VPU_SUBLANES] = (uint64_t)ch->vpu_sublanes};
      val = v[imm], write = true;
      break;
    }
    }
    if (write && in.ra) r[in.ra] = val;
  }
  s->st.instructions[SIM_UNIT_SCALAR]++;
  s->st.busy[SIM_UNIT_SCALAR]++;
  if (s->prof) { // a tile instruction's dispatch cycle counts as its busy time, not as a start
    sim_pc_profile *p = info->format == FMT_T ? &s->prof[s->pc] : prof_start(s, s->pc, s->now);
    p->busy++;
    if (info->format != FMT_T) p->last_done = s->now + 1;
  }
  s->pc = next;
  s->now++;
  return 0;
}

// Re-checks a blocked scalar unit after events at cycle t.
static void scalar_wake(sim *s, uint64_t t) {
  bool ok = false;
  int cause = STALL_FENCE;
  switch (s->sstate) {
  case SC_SWAIT: ok = s->sem[s->swait_sem] >= s->swait_count, cause = STALL_SEMAPHORE; break;
  case SC_QFULL: ok = s->units[s->sblock_unit].qcount < s->chip.queue_depth, cause = STALL_QUEUE_FULL; break;
  case SC_FENCE: ok = units_idle(s); break;
  default: return;
  }
  if (!ok) return;
  if (t > s->now) s->now = t;
  s->st.stall[SIM_UNIT_SCALAR][cause] += s->now - s->sblocked_since;
  add_trace(s, 0, s->sblocked_since, s->now, NEVER, cause);
  s->sstate = SC_RUN;
}

// ---------------------------------------------------------------- the run

static int deadlock(sim *s) {
  char buf[600] = "", name[16];
  size_t n = 0;
  for (int id = 1; id < SIM_UNITS && n < sizeof buf - 80; id++) {
    unit *u = &s->units[id];
    if (u->present && u->qcount)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s waits for s%d (pc %" PRIu64 ")", n ? ", " : "",
                            unit_label(s, id, name, sizeof name), u->q[u->qhead].in.wait_sem, u->q[u->qhead].pc);
  }
  const char *sc = s->sstate == SC_SWAIT ? "the scalar unit waits in swait"
                   : s->sstate == SC_QFULL ? "the scalar unit waits for a full queue"
                   : s->sstate == SC_FENCE ? "the scalar unit waits in fence"
                                           : "the program has halted";
  return trap(s, s->pc, "deadlock: every unit is waiting and nothing is in flight: %s%s%s", sc, n ? "; " : "", buf);
}

static void handle_event(sim *s, const struct event *ev) {
  unit *u = &s->units[ev->unit];
  switch (ev->type) {
  case EV_TRY: try_start(s, u, ev->time); break;
  case EV_DMA:
    if (ev->arg != s->dma_gen) break; // superseded by a later reschedule
    dma_advance(s, ev->time);
    dma_finish_data(s, ev->time);
    dma_reschedule(s, ev->time);
    break;
  case EV_DONE:
    s->inflight--;
    if (ev->time > s->end_cycle) s->end_cycle = ev->time;
    if (s->prof && ev->time > s->prof[ev->pc].last_done) s->prof[ev->pc].last_done = ev->time;
    if (ev->arg) signal_sem(s, (int)ev->arg - 1, ev->time, ev->unit, ev->pc);
    break;
  }
}

static int run_events(sim *s, char *err, size_t errlen) {
  s->err = err, s->errlen = errlen;
  if (err && errlen) err[0] = 0;
  while (!s->trapped) {
    uint64_t next_ev = s->nheap ? s->heap[0].time : NEVER;
    if (s->sstate == SC_RUN && s->now < next_ev) {
      if (s->now >= s->opt.max_cycles)
        return trap(s, s->pc, "cycle budget of %" PRIu64 " cycles exceeded (--max-cycles)", s->opt.max_cycles);
      if (scalar_step(s) < 0) return -1;
      continue;
    }
    if (!s->nheap) {
      if (s->sstate == SC_HALT && units_idle(s)) break;
      return deadlock(s);
    }
    if (next_ev > s->opt.max_cycles)
      return trap(s, s->pc, "cycle budget of %" PRIu64 " cycles exceeded (--max-cycles)", s->opt.max_cycles);
    struct event ev = pop_event(s);
    handle_event(s, &ev);
    if (s->sstate != SC_RUN && s->sstate != SC_HALT) scalar_wake(s, ev.time);
  }
  if (s->trapped) return -1;
  s->sstate = SC_DONE;
  uint64_t end = umax(s->halt_cycle + 1, s->end_cycle);
  s->st.stall[SIM_UNIT_SCALAR][STALL_FENCE] += end - (s->halt_cycle + 1);
  s->st.cycles = end;
  if (!s->t3_opened) t3_open(s, end);
  if (!s->t3_closed) t3_close(s, end);
  const struct t3_counts *b = &s->t3_base, *c = &s->t3_end;
  s->st.mxu_active = c->active - b->active, s->st.weight_stall = c->stall - b->stall;
  s->st.weight_shift = c->shift - b->shift, s->st.non_matrix = c->non_matrix - b->non_matrix;
  s->st.mxu_cycles = (s->t3_t1 - s->t3_t0) * (uint64_t)s->chip.mxu_count;
  s->st.host_in_cycles = s->t3_t0, s->st.host_out_cycles = end - s->t3_t1;
  sim_finish_stats(s);
  return 0;
}

// With several host threads: the event loop on one (task 0, whichever thread
// takes it), deferred effects on all (section "deferred effects").
typedef struct {
  sim *s;
  engine *g;
  char *err;
  size_t errlen;
  int rc;
} run_ctx;

static void run_task(void *ctx, int task) {
  run_ctx *c = ctx;
  engine *g = c->g;
  fx_task = task;
  engine_lock(g);
  if (task < 64) g->joined |= 1ull << task; // later tasks run only other effects
  engine_unlock(g);
  // A join moves MXUs to other owners (engine_owner): a ready MXU effect may
  // now be a waiting task's, which no finish need wake (finishes bump the
  // version only when they free an effect or a slot). Without this, three
  // tasks could all wait beside a ready effect (test_kernels hung).
  engine_changed(g);
  if (task) {
    engine_work(g);
    return;
  }
  fx = g;
  c->rc = run_events(c->s, c->err, c->errlen);
  fx = NULL;
  engine_drain(g);
  engine_lock(g);
  g->ended = true;
  engine_unlock(g);
  engine_changed(g);
}

int sim_run(sim *s, char *err, size_t errlen) {
  static atomic_uint_fast64_t runs;
  s->run_id = atomic_fetch_add(&runs, 1) + 1;
  int threads = num_threads();
  engine *g = s->opt.timing_only || threads < 2 ? NULL : aligned_alloc(_Alignof(engine), sizeof *g);
  if (!g) return run_events(s, err, errlen);
  memset(g, 0, sizeof *g);
  atomic_init(&g->lock, false);
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->s = s;
  run_ctx c = {s, g, err, errlen, 0};
  num_parallel(threads, run_task, &c);
  if (g->failed) { // an effect ran out of host memory: the run traps there
    uint64_t now = s->now;
    s->now = g->fail_cycle, s->trapped = false;
    trap(s, g->fail_pc, "out of host memory (%s)", g->fail_what);
    s->now = now, c.rc = -1;
  }
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
  free(g);
  return c.rc;
}
