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
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
  size_t tile = (size_t)chip->mxu_rows * chip->mxu_cols * 2;
  if (lazymem_init(&s->host, SIM_HOST_BYTES) || lazymem_init(&s->hbm, chip->hbm_bytes)) goto oom;
  s->vmem = calloc(1, chip->vmem_bytes ? chip->vmem_bytes : 1);
  s->acc = calloc(1, chip->acc_bytes ? chip->acc_bytes : 1);
  s->smem = calloc(1, chip->smem_bytes ? chip->smem_bytes : 1);
  if (!s->vmem || !s->acc || !s->smem) goto oom;
  for (int i = 0; i < chip->mxu_count; i++) {
    s->mw[i].shadow = calloc(1, tile);
    s->mw[i].active = calloc(1, tile);
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
    if (u->kind == UNIT_MXU)
      mxu_timing_init(&u->mt, chip->mxu_rows, chip->mxu_cols, chip->weight_load_cycles);
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
  free(s->vmem), free(s->acc), free(s->smem);
  for (int i = 0; i < SIM_MAX_MXU; i++) free(s->mw[i].shadow), free(s->mw[i].active);
  for (int id = 0; id < SIM_UNITS; id++) free(s->units[id].q);
  free(s->code), free(s->dec), free(s->legal), free(s->heap), free(s->trace), free(s->tmp);
  free(s->prof);
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
  if (n) mem_read(s, m, addr, dst, n);
  return 0;
}

int sim_load(sim *s, const isa_program *p, char *err, size_t errlen) {
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
  static const sim_mem seg_mem[] = {[SEG_SMEM] = MEM_SMEM, [SEG_HBM] = MEM_HBM, [SEG_HOST] = MEM_HOST};
  for (size_t i = 0; i < p->nsegs; i++) {
    const isa_segment *g = &p->segs[i];
    char why[400];
    if (sim_write(s, seg_mem[g->kind], g->addr, g->data, g->size, why, sizeof why)) {
      errf(err, errlen, "program data segment %zu: %s", i, why);
      return -1;
    }
  }
  return 0;
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
  if (stride % (uint64_t)es) return trap(s, pc, "row stride %" PRIu64 " is not a multiple of %d", stride, es);
  if (check_local(s, pc, "pass input", e->rb, span(m, stride, (uint64_t)ml->k * es), es)) return -1;
  if (e->ra < ISA_ACC_BASE)
    return trap(s, pc, "pass destination 0x%" PRIx64 " is not in the accumulators (0x%llx..)", e->ra, ISA_ACC_BASE);
  if (check_local(s, pc, "pass destination", e->ra, span(m, (uint64_t)C * 4, (uint64_t)ml->n * 4), 4))
    return -1;
  if (m > SIM_MAX_PASS_ROWS)
    return trap(s, pc, "a pass of %" PRIu64 " rows is longer than %d rows", m, SIM_MAX_PASS_ROWS);
  return 0;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

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

static void *staging(sim *s, uint64_t n) {
  if (n > s->tmpcap) {
    free(s->tmp);
    s->tmp = malloc(n);
    s->tmpcap = s->tmp ? n : 0;
  }
  return s->tmp;
}

static int do_dma(sim *s, const qentry *e) {
  const uint64_t *d = e->desc;
  sim_mem sm = (sim_mem)(e->in.funct & 3), dm = (sim_mem)(e->in.funct >> 2);
  uint8_t *buf = staging(s, d[0]);
  if (!buf) return trap(s, e->pc, "out of host memory staging a %" PRIu64 "-byte DMA run", d[0]);
  for (uint64_t i3 = 0; i3 < d[7]; i3++)
    for (uint64_t i2 = 0; i2 < d[4]; i2++)
      for (uint64_t i1 = 0; i1 < d[1]; i1++) {
        uint64_t so = i1 * d[2] + i2 * d[5] + i3 * d[8], dof = i1 * d[3] + i2 * d[6] + i3 * d[9];
        mem_read(s, sm, e->rb + so, buf, d[0]);
        if (mem_write(s, dm, e->ra + dof, buf, d[0]))
          return trap(s, e->pc, "out of host memory backing the simulated %s", mem_name(dm));
      }
  return 0;
}

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

static void do_ldw(sim *s, const qentry *e) {
  mxu_weights *w = &s->mw[e->in.unit];
  int C = s->chip.mxu_cols, es = isa_dtype_bytes[e->in.dt_src1];
  int k = (int)e->rc, n = (int)e->rd;
  w->spending = true, w->sk = k, w->sn = n, w->sdt = e->in.dt_src1;
  count_bytes(s, MEM_LOCAL, e->ra, (uint64_t)k * n * es, false);
  if (s->opt.timing_only) return;
  memset(w->shadow, 0, (size_t)s->chip.mxu_rows * C * es);
  for (int i = 0; i < k; i++)
    memcpy(w->shadow + (size_t)i * C * es, local_ptr(s, e->ra + (uint64_t)i * e->rb, (uint64_t)n * es),
           (size_t)n * es);
}

static void do_pass(sim *s, const qentry *e) {
  mxu_weights *w = &s->mw[e->in.unit];
  if (w->spending) {
    uint8_t *t = w->active;
    w->active = w->shadow, w->shadow = t;
    w->ak = w->sk, w->an = w->sn, w->adt = w->sdt, w->spending = false, w->have = true;
  }
  assert(w->have && w->adt == e->in.dt_src1); // checked at dispatch
  int C = s->chip.mxu_cols, es = isa_dtype_bytes[w->adt], m = (int)e->rc;
  bool acc = e->in.flags & MXU_FLAG_ACC;
  uint64_t macs = (uint64_t)m * w->ak * w->an;
  *(w->adt == DT_BF16 ? &s->st.macs_bf16 : &s->st.macs_int8) += macs;
  if (s->prof) s->prof[e->pc].macs += macs;
  count_bytes(s, MEM_LOCAL, e->rb, (uint64_t)m * w->ak * es, false);
  if (acc) count_bytes(s, MEM_LOCAL, e->ra, (uint64_t)m * w->an * 4, false);
  count_bytes(s, MEM_LOCAL, e->ra, (uint64_t)m * w->an * 4, true);
  if (s->opt.timing_only) return;
  uint8_t *lhs = local_ptr(s, e->rb, span((uint64_t)m, e->rd, (uint64_t)w->ak * es));
  uint8_t *dst = local_ptr(s, e->ra, span((uint64_t)m, (uint64_t)C * 4, (uint64_t)w->an * 4));
  if (w->adt == DT_BF16)
    num_mxu_pass_bf16((float *)(void *)dst, (size_t)C, (const uint16_t *)(void *)lhs, e->rd / 2,
                      (const uint16_t *)(void *)w->active, (size_t)C, m, w->ak, w->an, acc);
  else
    num_mxu_pass_i8((int32_t *)(void *)dst, (size_t)C, (const int8_t *)lhs, e->rd, (const int8_t *)w->active,
                    (size_t)C, m, w->ak, w->an, acc);
}

static float vpu_apply(int op, float a, float b) {
  switch (op) {
  case VOP_MOV: return a;
  case VOP_ADD: return a + b;
  case VOP_SUB: return a - b;
  case VOP_MUL: return a * b;
  case VOP_DIV: return a / b;
  case VOP_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b > a ? b : (signbit(a) ? b : a);
  case VOP_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b < a ? b : (signbit(a) ? a : b);
  case VOP_RELU: return isnan(a) ? a : a > 0 ? a : 0.0f;
  case VOP_NEG: return -a;
  case VOP_ABS: return fabsf(a);
  case VOP_EXP: return num_exp(a);
  case VOP_LOG: return num_log(a);
  case VOP_TANH: return num_tanh(a);
  case VOP_SIGMOID: return num_sigmoid(a);
  case VOP_ERF: return num_erf(a);
  case VOP_RSQRT: return num_rsqrt(a);
  case VOP_SQRT: return num_sqrt(a);
  case VOP_RECIP: return num_recip(a);
  case VOP_RSUM: case VOP_CSUM: return a + b;
  case VOP_RMAX: case VOP_CMAX: return vpu_apply(VOP_MAX, a, b);
  case VOP_RMIN: case VOP_CMIN: return vpu_apply(VOP_MIN, a, b);
  }
  return a;
}

static void do_vpu(sim *s, const qentry *e) {
  const isa_inst *in = &e->in;
  const uint64_t *d = e->desc;
  const isa_vpu_info *v = &isa_vpu_ops[in->funct];
  uint64_t rows = d[0], cols = d[1];
  int ed = isa_dtype_bytes[in->dt_dst], e1 = isa_dtype_bytes[in->dt_src1], e2 = isa_dtype_bytes[in->dt_src2];
  s->st.vpu_elements += rows * cols;
  count_bytes(s, MEM_LOCAL, e->rb, rows * cols * e1, false);
  if (v->kind == VK_BINARY) count_bytes(s, MEM_LOCAL, e->rc, rows * cols * e2, false);
  uint64_t out = v->kind == VK_REDUCE ? rows : v->kind == VK_REDUCE_COL ? cols : rows * cols;
  count_bytes(s, MEM_LOCAL, e->ra, out * ed, true);
  if (s->opt.timing_only) return;
  // Base pointers were range-checked at dispatch for the whole block.
  uint8_t *dst = local_ptr(s, e->ra, 1), *a = local_ptr(s, e->rb, 1);
  uint8_t *b = v->kind == VK_BINARY ? local_ptr(s, e->rc, 1) : NULL;
  // Elementwise results go through a staging row so that dst may alias a source.
  switch (v->kind) {
  case VK_UNARY: case VK_BINARY: {
    float *row = staging(s, cols * sizeof(float));
    if (!row) { trap(s, e->pc, "out of host memory"); return; }
    for (uint64_t r = 0; r < rows; r++) {
      for (uint64_t c = 0; c < cols; c++) {
        float x = num_load(in->dt_src1, a + r * d[3] + c * e1);
        float y = b ? num_load(in->dt_src2, b + r * d[4] + c * d[5] * e2) : 0.0f;
        row[c] = num_canon(vpu_apply(in->funct, x, y));
      }
      for (uint64_t c = 0; c < cols; c++) num_store(in->dt_dst, dst + r * d[2] + c * ed, row[c]);
    }
    break;
  }
  case VK_REDUCE: { // all rows first: the destination may overlap the source
    float *out = staging(s, rows * sizeof(float));
    if (!out) { trap(s, e->pc, "out of host memory"); return; }
    for (uint64_t r = 0; r < rows; r++) {
      float acc = num_load(in->dt_src1, a + r * d[3]);
      for (uint64_t c = 1; c < cols; c++) acc = vpu_apply(in->funct, acc, num_load(in->dt_src1, a + r * d[3] + c * e1));
      out[r] = num_canon(acc);
    }
    for (uint64_t r = 0; r < rows; r++) num_store(in->dt_dst, dst + r * d[2], out[r]);
    break;
  }
  case VK_REDUCE_COL: {
    float *row = staging(s, cols * sizeof(float));
    if (!row) { trap(s, e->pc, "out of host memory"); return; }
    for (uint64_t c = 0; c < cols; c++) row[c] = num_load(in->dt_src1, a + c * e1);
    for (uint64_t r = 1; r < rows; r++)
      for (uint64_t c = 0; c < cols; c++) row[c] = vpu_apply(in->funct, row[c], num_load(in->dt_src1, a + r * d[3] + c * e1));
    for (uint64_t c = 0; c < cols; c++) num_store(in->dt_dst, dst + c * ed, num_canon(row[c]));
    break;
  }
  case VK_TRANSPOSE: {
    uint8_t *tmp = staging(s, rows * cols * (uint64_t)ed);
    if (!tmp) { trap(s, e->pc, "out of host memory"); return; }
    for (uint64_t r = 0; r < rows; r++)
      for (uint64_t c = 0; c < cols; c++)
        num_store(in->dt_dst, tmp + (c * rows + r) * ed, num_load(in->dt_src1, a + r * d[3] + c * e1));
    for (uint64_t c = 0; c < cols; c++) memcpy(dst + c * d[2], tmp + c * rows * ed, rows * ed);
    break;
  }
  case VK_REQUANT:
    for (uint64_t r = 0; r < rows; r++)
      for (uint64_t c = 0; c < cols; c++) {
        int32_t x;
        memcpy(&x, a + r * d[3] + c * 4, 4);
        int8_t q = num_requant(x, (int32_t)d[6], (int)d[7], (int32_t)d[8]);
        memcpy(dst + r * d[2] + c, &q, 1);
      }
    break;
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
    add_trace(s, u->id * 2, start, done, e->pc, -1);
    push_event(s, done, EV_DONE, u->id, e->in.signal ? e->in.signal_sem + 1u : 0, e->pc);
    if (u->qcount) schedule_try(s, u, t);
  }
}

// ---------------------------------------------------------------- starting

static void start(sim *s, unit *u, uint64_t t) {
  qentry e = u->q[u->qhead];
  s->inflight++;
  u->qhead = (u->qhead + 1) % s->chip.queue_depth;
  u->qcount--;
  uint64_t done = t;
  sim_pc_profile *prof = s->prof ? prof_start(s, e.pc, t) : NULL;
  switch (e.in.op) {
  case OP_DMA: {
    if (!s->opt.timing_only && do_dma(s, &e)) return;
    sim_mem sm = (sim_mem)(e.in.funct & 3), dm = (sim_mem)(e.in.funct >> 2);
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
    uint64_t st = mxu_timing_load(&u->mt, t);
    assert(st == t);
    (void)st;
    do_ldw(s, &e);
    done = mxu_timing_load_done(&u->mt, t);
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
    do_vpu(s, &e);
    u->free_at = t + issue;
    done = t + issue + (uint64_t)s->chip.vpu_latency;
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
    uint64_t st = mxu_timing_load(&tmp, t);
    assert(st != NEVER); // two loads without a pass trap at dispatch
    if (st > t) s->st.stall[u->id][STALL_SHADOW] += st - t;
    return st;
  }
  default: {
    mxu_timing tmp = u->mt;
    uint64_t st, done;
    int rate = h->in.dt_src1 == DT_I8 ? s->chip.int8_macs_per_pe : 1;
    mxu_timing_pass(&tmp, t, (int)((h->rc + (uint64_t)rate - 1) / (uint64_t)rate), &st, &done);
    if (u->mt.shadow_pending && st > umax(t, u->mt.array_free))
      s->st.stall[u->id][STALL_WEIGHTS] += st - umax(t, u->mt.array_free);
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

int sim_run(sim *s, char *err, size_t errlen) {
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
  sim_finish_stats(s);
  return 0;
}
