// The emitter: tile work in, a synchronised straight-line program out.
//
// Registers are a cache of values: an operand already in a register costs
// nothing, one near a cached value costs an addi, any other an li (two words
// for values beyond 32 bits). Descriptors go to SMEM once per distinct
// content. Synchronisation follows docs/compiler.md: each tile unit signals
// its own semaphore (number = the simulator's unit index) on every
// completion, and the scalar unit counts those tokens with swait before it
// dispatches work that depends on another unit's unfinished instruction.
#include "compiler/compiler.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

enum { NREG = ISA_NUM_REGS, MAX_REGIONS = 4 };

typedef struct {
  uint8_t space; // isa_space
  bool write;
  uint64_t lo, hi; // [lo, hi)
} region;

// An instruction whose completion the scalar unit has not yet observed.
typedef struct {
  int unit;        // simulator unit index (= its semaphore)
  uint64_t token;  // 1-based count of the unit's signals at this instruction
  int nreg;
  region reg[MAX_REGIONS * 2];
} live_entry;

typedef struct {
  uint64_t issued, consumed; // signals dispatched, tokens taken by swait
  bool monotone;             // completions come in dispatch order
  int latency;               // DMA queues: the latency of its first transfer (-1: none yet)
} unit_state;

typedef struct {
  uint64_t addr;
  uint8_t *data;
  uint64_t size, cap; // cap: bytes data has room for
} hbm_seg;

// A DMA held back (cc_defer_dma) and the memory it touches.
typedef struct {
  bool on;
  int queue;
  isa_space dsp, ssp;
  uint64_t dst, src, inner, n[2];
  int64_t ss[2], ds[2];
  region rg[2];
} deferred_dma;

struct cc_emit {
  chip_config chip;
  char err[CC_ERR_LEN];
  bool failed;

  uint64_t *code;
  size_t ncode, capcode;

  uint8_t *smem;
  uint64_t smem_used, smem_cap;
  // descriptor dedup: open addressing over (hash -> smem address + 1)
  uint64_t *desc_hash, *desc_addr;
  size_t desc_cap, ndesc;

  uint64_t regval[NREG];
  bool regvalid[NREG];
  uint64_t reguse[NREG];
  uint64_t clock;

  unit_state units[SIM_UNITS];
  live_entry *live;
  size_t nlive, caplive;
  // mxu.ldw reads waiting for the pass that takes the tile (which signals)
  region ldw_pending[SIM_MAX_MXU][MAX_REGIONS];
  int nldw_pending[SIM_MAX_MXU];
  int mxu_tile_k[SIM_MAX_MXU];
  isa_dtype mxu_tile_dt[SIM_MAX_MXU];

  int dma_queue; // >= 0: the queue of every DMA (cc_dma_queue)
  deferred_dma deferred;
  uint64_t ub_base, ub_bytes; // the activation arena in VMEM (cc_ub_window)
  uint64_t vmem_used, acc_used;
  uint64_t vmem_top; // scratch ends here; above it, regions reserved for the whole program
  uint64_t hbm_top;
  hbm_seg *segs;
  size_t nsegs, capsegs;

  isa_layer *layers;
  size_t nlayers, caplayers;
  bool in_layer;

  // the body of the open loop (cc_loop_begin .. cc_loop_end)
  bool in_loop;
  uint64_t loop_count;
  struct loop_op {
    bool mm;
    int mxu;
    isa_dtype dt;
    uint64_t src, stride, rows_or_k, n_or_acc; // ldw: src, stride, k, n; mm: src, stride, rows, acc
    int64_t step;                              // added to src every iteration
    bool accumulate;
  } *body;
  size_t nbody, capbody;
};

// ---------------------------------------------------------------- basics

int cc_emit_fail(cc_emit *e, const char *fmt, ...) {
  if (e->failed) return -1;
  e->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->err, sizeof e->err, fmt, ap);
  va_end(ap);
  return -1;
}

int cc_emit_failed(const cc_emit *e, char *err, size_t errlen) {
  if (!e->failed) return 0;
  if (err) snprintf(err, errlen, "%s", e->err);
  return -1;
}

const chip_config *cc_emit_chip(const cc_emit *e) { return &e->chip; }

static void *grow(cc_emit *e, void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need) n *= 2;
  void *q = realloc(p, n * elem);
  if (!q) {
    cc_emit_fail(e, "out of host memory");
    return p;
  }
  *cap = n;
  return q;
}

cc_emit *cc_emit_new(const chip_config *chip, char *err, size_t errlen) {
  cc_emit *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(err, errlen, "out of host memory");
    return NULL;
  }
  e->chip = *chip;
  e->smem_cap = chip->smem_bytes;
  e->smem = calloc(1, e->smem_cap ? e->smem_cap : 1);
  e->desc_cap = 1024;
  e->desc_hash = calloc(e->desc_cap, sizeof *e->desc_hash);
  e->desc_addr = calloc(e->desc_cap, sizeof *e->desc_addr);
  if (!e->smem || !e->desc_hash || !e->desc_addr) {
    cc_emit_free(e);
    snprintf(err, errlen, "out of host memory");
    return NULL;
  }
  for (int u = 0; u < SIM_UNITS; u++) e->units[u].monotone = true, e->units[u].latency = -1;
  e->vmem_top = chip->vmem_bytes;
  e->dma_queue = -1;
  return e;
}

void cc_emit_free(cc_emit *e) {
  if (!e) return;
  free(e->code);
  free(e->smem);
  free(e->desc_hash);
  free(e->desc_addr);
  free(e->live);
  for (size_t i = 0; i < e->nsegs; i++) free(e->segs[i].data);
  free(e->segs);
  free(e->layers);
  free(e->body);
  free(e);
}

static void put(cc_emit *e, const isa_inst *in) {
  if (e->failed) return;
  e->code = grow(e, e->code, &e->capcode, e->ncode + 1, sizeof *e->code);
  if (e->failed) return;
  e->code[e->ncode++] = isa_encode(in);
}

static void put_scalar(cc_emit *e, isa_opcode op, int ra, int rb, int32_t imm) {
  isa_inst in = {.op = op, .ra = (uint8_t)ra, .rb = (uint8_t)rb, .imm = imm};
  put(e, &in);
}

// ---------------------------------------------------------------- registers

static bool fits32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

// A register holding v, loading it if needed; registers in busy (a mask) are
// operands of the instruction being built and must not be evicted.
static int reg_for(cc_emit *e, uint64_t v, unsigned busy) {
  e->clock++;
  if (v == 0) return 0;
  for (int r = 1; r < NREG; r++)
    if (e->regvalid[r] && e->regval[r] == v) {
      e->reguse[r] = e->clock;
      return r;
    }
  int victim = -1;
  for (int r = 1; r < NREG; r++) {
    if (busy & (1u << r)) continue;
    if (!e->regvalid[r]) {
      victim = r;
      break;
    }
    if (victim < 0 || e->reguse[r] < e->reguse[victim]) victim = r;
  }
  assert(victim > 0);
  // addi from the nearest cached value, else li (+ lih).
  int base = -1;
  for (int r = 1; r < NREG; r++)
    if (e->regvalid[r] && fits32((int64_t)(v - e->regval[r]))) {
      base = r;
      break;
    }
  if (fits32((int64_t)v)) {
    put_scalar(e, OP_LI, victim, 0, (int32_t)(int64_t)v);
  } else if (base >= 0) {
    put_scalar(e, OP_ADDI, victim, base, (int32_t)(int64_t)(v - e->regval[base]));
  } else {
    put_scalar(e, OP_LI, victim, 0, (int32_t)(uint32_t)v);
    put_scalar(e, OP_LIH, victim, 0, (int32_t)(uint32_t)(v >> 32));
  }
  e->regval[victim] = v, e->regvalid[victim] = true, e->reguse[victim] = e->clock;
  return victim;
}

// A register of its own holding v (a loop will change it): never r0 or a
// register shared with another cached value's users.
static int reg_fresh(cc_emit *e, uint64_t v, unsigned busy) {
  int victim = -1;
  for (int r = 1; r < NREG; r++) {
    if (busy & (1u << r)) continue;
    if (!e->regvalid[r]) {
      victim = r;
      break;
    }
    if (victim < 0 || e->reguse[r] < e->reguse[victim]) victim = r;
  }
  assert(victim > 0);
  if (fits32((int64_t)v)) put_scalar(e, OP_LI, victim, 0, (int32_t)(int64_t)v);
  else {
    put_scalar(e, OP_LI, victim, 0, (int32_t)(uint32_t)v);
    put_scalar(e, OP_LIH, victim, 0, (int32_t)(uint32_t)(v >> 32));
  }
  e->regval[victim] = v, e->regvalid[victim] = true, e->reguse[victim] = ++e->clock;
  // any other register caching v stays valid: the loop changes only this one
  return victim;
}

// Registers for up to four operands, none evicting another.
static void regs_for(cc_emit *e, int n, const uint64_t *vals, int *regs) {
  unsigned busy = 0;
  for (int i = 0; i < n; i++) {
    regs[i] = reg_for(e, vals[i], busy);
    busy |= 1u << regs[i];
  }
}

// ---------------------------------------------------------------- descriptors

static uint64_t hash_words(const uint64_t *w, int n) {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < n; i++) h = (h ^ w[i]) * 0x100000001b3ull + (h >> 29);
  return h ? h : 1;
}

// SMEM address of a descriptor with these words, written once.
static uint64_t descriptor(cc_emit *e, const uint64_t *w, int n) {
  uint64_t h = hash_words(w, n);
  size_t mask = e->desc_cap - 1, i = h & mask;
  for (; e->desc_hash[i]; i = (i + 1) & mask)
    if (e->desc_hash[i] == h && !memcmp(e->smem + e->desc_addr[i], w, (size_t)n * 8)) return e->desc_addr[i];
  uint64_t addr = (e->smem_used + 7) & ~7ull;
  if (addr + (uint64_t)n * 8 > e->smem_cap) {
    cc_emit_fail(e, "the program needs more than the %" PRIu64 " bytes of SMEM of chip '%s' for its descriptors",
                 e->smem_cap, e->chip.name);
    return 0;
  }
  memcpy(e->smem + addr, w, (size_t)n * 8);
  e->smem_used = addr + (uint64_t)n * 8;
  e->desc_hash[i] = h, e->desc_addr[i] = addr;
  if (++e->ndesc * 2 > e->desc_cap) { // rehash
    size_t oc = e->desc_cap;
    uint64_t *oh = e->desc_hash, *oa = e->desc_addr;
    e->desc_cap *= 2;
    e->desc_hash = calloc(e->desc_cap, sizeof *e->desc_hash);
    e->desc_addr = calloc(e->desc_cap, sizeof *e->desc_addr);
    if (!e->desc_hash || !e->desc_addr) {
      cc_emit_fail(e, "out of host memory");
      e->desc_cap = oc, free(e->desc_hash), free(e->desc_addr);
      e->desc_hash = oh, e->desc_addr = oa;
      return addr;
    }
    for (size_t j = 0; j < oc; j++)
      if (oh[j]) {
        size_t k = oh[j] & (e->desc_cap - 1);
        while (e->desc_hash[k]) k = (k + 1) & (e->desc_cap - 1);
        e->desc_hash[k] = oh[j], e->desc_addr[k] = oa[j];
      }
    free(oh), free(oa);
  }
  return addr;
}

// ---------------------------------------------------------------- synchronisation

static bool overlap(const region *a, const region *b) {
  return a->space == b->space && a->lo < b->hi && b->lo < a->hi && (a->write || b->write);
}

static void forget_completed(cc_emit *e, int unit) {
  unit_state *u = &e->units[unit];
  size_t j = 0;
  for (size_t i = 0; i < e->nlive; i++) {
    live_entry *l = &e->live[i];
    if (l->unit == unit && l->token <= u->consumed) continue;
    e->live[j++] = *l;
  }
  e->nlive = j;
}

// Makes the scalar unit wait until instruction `token` of unit has completed.
static void wait_for(cc_emit *e, int unit, uint64_t token) {
  unit_state *u = &e->units[unit];
  uint64_t target = u->monotone ? token : u->issued;
  if (target <= u->consumed) return;
  uint64_t n = target - u->consumed;
  while (n) { // a count field holds 2^23 - 1
    uint64_t k = n < (1u << 23) - 1 ? n : (1u << 23) - 1;
    put_scalar(e, OP_SWAIT, 0, 0, (int32_t)(k << 8 | (uint64_t)unit));
    n -= k;
  }
  u->consumed = target;
  forget_completed(e, unit);
}

static bool overlap(const region *a, const region *b);

// Emits the deferred DMA, if any.
static void deferred_flush(cc_emit *e) {
  if (!e->deferred.on) return;
  e->deferred.on = false;
  int q = e->dma_queue;
  e->dma_queue = e->deferred.queue;
  cc_dma_nd(e, e->deferred.dsp, e->deferred.dst, e->deferred.ssp, e->deferred.src, e->deferred.inner, 2,
            e->deferred.n, e->deferred.ss, e->deferred.ds);
  e->dma_queue = q;
}

void cc_flush_deferred(cc_emit *e) { deferred_flush(e); }

void cc_barrier(cc_emit *e) {
  deferred_flush(e);
  // Nothing is in flight afterwards: a queue's completions are in order again
  // (the host transfers' latency no longer mixes with the weight FIFO's).
  for (int u = 0; u < SIM_UNITS; u++) {
    if (e->units[u].issued > e->units[u].consumed) wait_for(e, u, e->units[u].issued);
    e->units[u].monotone = true, e->units[u].latency = -1;
  }
  for (int m = 0; m < SIM_MAX_MXU; m++) e->nldw_pending[m] = 0;
  e->nlive = 0;
}

// Waits for every unfinished instruction of another unit that conflicts
// with these regions; then records the new instruction (if it signals).
static void sync_and_record(cc_emit *e, int unit, uint64_t signals, const region *rg, int nrg) {
  if (e->failed) return;
  for (int a = 0; e->deferred.on && a < 2; a++) // touching its memory: the deferred DMA goes first
    for (int b = 0; b < nrg; b++)
      if (overlap(&e->deferred.rg[a], &rg[b])) {
        deferred_flush(e);
        break;
      }
  // A conflict with a weight load no pass has taken yet: only a barrier
  // orders it (the compiler never emits this; kept for safety).
  for (int m = 0; m < SIM_MAX_MXU; m++) {
    if (SIM_UNIT_MXU0 + m == unit) continue;
    for (int i = 0; i < e->nldw_pending[m]; i++)
      for (int j = 0; j < nrg; j++)
        if (overlap(&e->ldw_pending[m][i], &rg[j])) {
          cc_barrier(e);
          goto checked;
        }
  }
  for (;;) {
    int wunit = -1;
    uint64_t wtoken = 0;
    for (size_t i = 0; i < e->nlive; i++) {
      live_entry *l = &e->live[i];
      if (l->unit == unit) continue;
      for (int a = 0; a < l->nreg; a++)
        for (int b = 0; b < nrg; b++)
          if (overlap(&l->reg[a], &rg[b]) && (l->unit != wunit || l->token > wtoken)) {
            if (wunit < 0 || l->unit == wunit) wunit = l->unit, wtoken = l->token;
          }
    }
    if (wunit < 0) break;
    wait_for(e, wunit, wtoken);
  }
checked:
  if (!signals) return;
  unit_state *u = &e->units[unit];
  u->issued += signals; // more than one for an instruction in a loop
  e->live = grow(e, e->live, &e->caplive, e->nlive + 1, sizeof *e->live);
  if (e->failed) return;
  live_entry *l = &e->live[e->nlive++];
  l->unit = unit, l->token = u->issued, l->nreg = 0;
  for (int j = 0; j < nrg; j++) l->reg[l->nreg++] = rg[j];
  if (unit >= SIM_UNIT_MXU0) { // the pass carries its tile load's reads
    int m = unit - SIM_UNIT_MXU0;
    for (int i = 0; i < e->nldw_pending[m] && l->nreg < MAX_REGIONS * 2; i++) l->reg[l->nreg++] = e->ldw_pending[m][i];
    e->nldw_pending[m] = 0;
  }
  // Bound the bookkeeping: a long list means work nobody waited for.
  if (e->nlive > 4096) cc_barrier(e);
}

// ---------------------------------------------------------------- memory checks

static region local_region(uint64_t lo, uint64_t hi, bool write) {
  return (region){SPACE_LOCAL, write, lo, hi};
}

static bool in_local(const cc_emit *e, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return false;
  if (hi <= e->chip.vmem_bytes) return true;
  return lo >= ISA_ACC_BASE && hi <= ISA_ACC_BASE + e->chip.acc_bytes;
}

static bool check_space(cc_emit *e, isa_space sp, uint64_t lo, uint64_t hi, const char *what) {
  bool ok;
  switch (sp) {
  case SPACE_LOCAL: ok = in_local(e, lo, hi); break;
  case SPACE_HBM: ok = hi > lo && hi <= e->chip.hbm_bytes; break;
  default: ok = hi > lo && hi <= SIM_HOST_BYTES; break;
  }
  if (!ok)
    cc_emit_fail(e, "internal error: %s [0x%" PRIx64 ", 0x%" PRIx64 ") lies outside %s memory", what, lo, hi,
                 isa_space_names[sp]);
  return ok;
}

// Lowest and one-past-highest byte of a strided block.
static void extent(uint64_t base, uint64_t inner, const uint64_t *n, const int64_t *stride, int ndims,
                   uint64_t *lo, uint64_t *hi) {
  int64_t mn = 0, mx = 0;
  for (int d = 0; d < ndims; d++) {
    int64_t span = (int64_t)(n[d] - 1) * stride[d];
    if (span < 0) mn += span;
    else mx += span;
  }
  *lo = base + (uint64_t)mn;
  *hi = base + (uint64_t)mx + inner;
}

// ---------------------------------------------------------------- tile instructions

static int dma_queue(const cc_emit *e, isa_space dst, isa_space src) {
  int q;
  if (dst == SPACE_HOST || src == SPACE_HOST) q = 3;
  else if (dst == SPACE_LOCAL && src == SPACE_LOCAL) q = 2;
  else if (dst == SPACE_LOCAL) q = 0;
  else q = 1;
  return q % e->chip.dma_queues;
}

static int space_latency(const cc_emit *e, isa_space s) {
  return s == SPACE_HOST ? e->chip.host_latency : s == SPACE_HBM ? e->chip.hbm_latency : 0;
}

void cc_dma_queue(cc_emit *e, int q) { e->dma_queue = q; }

static void ub_translate(const cc_emit *e, isa_space *sp, uint64_t *addr);

void cc_defer_dma(cc_emit *e, isa_space dsp, uint64_t dst, isa_space ssp, uint64_t src, uint64_t inner,
                  const uint64_t n[2], const int64_t ss[2], const int64_t ds[2]) {
  deferred_flush(e);
  if (e->failed) return;
  e->deferred = (deferred_dma){true, e->dma_queue, dsp, ssp, dst, src, inner, {n[0], n[1]}, {ss[0], ss[1]},
                                       {ds[0], ds[1]}, {{0}}};
  isa_space sd = dsp, sr = ssp;
  uint64_t d = dst, r = src, lo, hi;
  ub_translate(e, &sd, &d);
  ub_translate(e, &sr, &r);
  extent(r, inner, n, ss, 2, &lo, &hi);
  e->deferred.rg[0] = (region){(uint8_t)sr, false, lo, hi};
  extent(d, inner, n, ds, 2, &lo, &hi);
  e->deferred.rg[1] = (region){(uint8_t)sd, true, lo, hi};
}

void cc_ub_window(cc_emit *e, uint64_t vmem_base, uint64_t bytes) { e->ub_base = vmem_base, e->ub_bytes = bytes; }

uint64_t cc_ub_local(const cc_emit *e, uint64_t addr) {
  if (addr < CC_UB_WINDOW || addr - CC_UB_WINDOW >= e->ub_bytes) return UINT64_MAX;
  return addr - CC_UB_WINDOW + e->ub_base;
}

// An address in the arena's window of HBM addresses becomes the VMEM address it names.
static void ub_translate(const cc_emit *e, isa_space *sp, uint64_t *addr) {
  uint64_t local = *sp == SPACE_HBM ? cc_ub_local(e, *addr) : UINT64_MAX;
  if (local != UINT64_MAX) *sp = SPACE_LOCAL, *addr = local;
}

void cc_dma(cc_emit *e, isa_space dst_space, uint64_t dst, isa_space src_space, uint64_t src,
            const cc_dma_shape *sh) {
  if (e->failed) return;
  ub_translate(e, &dst_space, &dst);
  ub_translate(e, &src_space, &src);
  uint64_t total = sh->inner;
  for (int d = 0; d < 3; d++) total *= sh->n[d] ? sh->n[d] : 0;
  if (!total) {
    cc_emit_fail(e, "internal error: empty DMA");
    return;
  }
  if (total > SIM_MAX_DMA_BYTES) {
    cc_emit_fail(e, "internal error: a DMA of %" PRIu64 " bytes (at most 2^32)", total);
    return;
  }
  region rg[2];
  uint64_t lo, hi;
  extent(src, sh->inner, sh->n, sh->src_stride, 3, &lo, &hi);
  if (!check_space(e, src_space, lo, hi, "DMA source")) return;
  rg[0] = (region){(uint8_t)src_space, false, lo, hi};
  extent(dst, sh->inner, sh->n, sh->dst_stride, 3, &lo, &hi);
  if (!check_space(e, dst_space, lo, hi, "DMA destination")) return;
  rg[1] = (region){(uint8_t)dst_space, true, lo, hi};

  int q = e->dma_queue >= 0 ? e->dma_queue % e->chip.dma_queues : dma_queue(e, dst_space, src_space);
  int unit = SIM_UNIT_DMA0 + q;
  unit_state *u = &e->units[unit];
  int lat = space_latency(e, dst_space) > space_latency(e, src_space) ? space_latency(e, dst_space)
                                                                       : space_latency(e, src_space);
  if (u->latency < 0) u->latency = lat;
  else if (u->latency != lat) u->monotone = false;

  uint64_t w[ISA_DMA_DESC_WORDS] = {sh->inner};
  for (int d = 0; d < 3; d++) {
    w[1 + 3 * d] = sh->n[d];
    w[2 + 3 * d] = (uint64_t)sh->src_stride[d];
    w[3 + 3 * d] = (uint64_t)sh->dst_stride[d];
  }
  uint64_t da = descriptor(e, w, ISA_DMA_DESC_WORDS);
  sync_and_record(e, unit, 1, rg, 2);
  uint64_t vals[3] = {dst, src, da};
  int r[3];
  regs_for(e, 3, vals, r);
  isa_inst in = {.op = OP_DMA, .ra = (uint8_t)r[0], .rb = (uint8_t)r[1], .rc = (uint8_t)r[2],
                 .signal = true, .signal_sem = (uint8_t)unit, .unit = (uint8_t)q,
                 .funct = (uint8_t)(dst_space << 2 | src_space)};
  put(e, &in);
}

void cc_copy(cc_emit *e, isa_space dst_space, uint64_t dst, isa_space src_space, uint64_t src, uint64_t bytes) {
  // Runs of at most 1 GiB keep every transfer far below the 2^32-byte bound.
  const uint64_t run = 1ull << 30;
  while (bytes && !e->failed) {
    uint64_t b = bytes < run ? bytes : run;
    cc_dma_shape sh = {.inner = b, .n = {1, 1, 1}};
    cc_dma(e, dst_space, dst, src_space, src, &sh);
    dst += b, src += b, bytes -= b;
  }
}

static bool check_mxu(cc_emit *e, int mxu, isa_dtype dt) {
  if (mxu < 0 || mxu >= e->chip.mxu_count) return cc_emit_fail(e, "internal error: MXU %d of %d", mxu, e->chip.mxu_count), false;
  if (dt == DT_BF16 ? !e->chip.mxu_bf16 : dt == DT_I8 ? !e->chip.mxu_int8 : true)
    return cc_emit_fail(e, "chip '%s' has no %s matrix unit", e->chip.name, isa_dtype_names[dt]), false;
  return true;
}

void cc_ldw(cc_emit *e, int mxu, isa_dtype dt, uint64_t src, uint64_t stride, int k, int n) {
  if (e->failed || !check_mxu(e, mxu, dt)) return;
  int es = isa_dtype_bytes[dt];
  if (k < 1 || k > e->chip.mxu_rows || n < 1 || n > e->chip.mxu_cols || src % es || stride % es) {
    cc_emit_fail(e, "internal error: weight tile %dx%d at 0x%" PRIx64 " stride %" PRIu64, k, n, src, stride);
    return;
  }
  region rg = local_region(src, src + (uint64_t)(k - 1) * stride + (uint64_t)n * es, false);
  if (!check_space(e, SPACE_LOCAL, rg.lo, rg.hi, "weight tile")) return;
  int unit = SIM_UNIT_MXU0 + mxu;
  sync_and_record(e, unit, 0, &rg, 1);
  if (e->nldw_pending[mxu] < MAX_REGIONS) e->ldw_pending[mxu][e->nldw_pending[mxu]++] = rg;
  e->mxu_tile_k[mxu] = k, e->mxu_tile_dt[mxu] = dt;
  uint64_t vals[4] = {src, stride, (uint64_t)k, (uint64_t)n};
  int r[4];
  regs_for(e, 4, vals, r);
  isa_inst in = {.op = OP_MXU_LDW, .ra = (uint8_t)r[0], .rb = (uint8_t)r[1], .rc = (uint8_t)r[2],
                 .rd = (uint8_t)r[3], .unit = (uint8_t)mxu, .dt_src1 = (uint8_t)dt};
  put(e, &in);
}

static void mm_any(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, uint64_t rows, uint64_t stride,
                   const cc_window *w, bool accumulate) {
  if (e->failed || !check_mxu(e, mxu, dt)) return;
  int es = isa_dtype_bytes[dt], k = e->mxu_tile_k[mxu];
  if (!k || e->mxu_tile_dt[mxu] != dt || rows < 1 || rows > SIM_MAX_PASS_ROWS || src % es || stride % es ||
      acc % 4 || (w && (!w->width || !w->height || w->row % es || w->wrow % es || w->plane % es))) {
    cc_emit_fail(e, "internal error: pass of %" PRIu64 " rows at 0x%" PRIx64, rows, src);
    return;
  }
  uint64_t d[ISA_WIN_DESC_WORDS] = {0}, last = (rows - 1) * stride; // the farthest row's offset
  if (w) {
    d[0] = w->width, d[1] = w->row, d[2] = w->height, d[3] = w->wrow, d[4] = w->plane;
    last = isa_win_far(d, rows);
  }
  region rg[2];
  rg[0] = local_region(src, src + last + (uint64_t)k * es, false);
  rg[1] = local_region(acc, acc + rows * (uint64_t)e->chip.mxu_cols * 4, true);
  if (!check_space(e, SPACE_LOCAL, rg[0].lo, rg[0].hi, "pass input") ||
      !check_space(e, SPACE_LOCAL, rg[1].lo, rg[1].hi, "pass output"))
    return;
  if (rg[1].lo < ISA_ACC_BASE) {
    cc_emit_fail(e, "internal error: pass output outside the accumulators");
    return;
  }
  int unit = SIM_UNIT_MXU0 + mxu;
  sync_and_record(e, unit, 1, rg, 2);
  if (w) stride = descriptor(e, d, ISA_WIN_DESC_WORDS);
  uint64_t vals[4] = {acc, src, rows, stride};
  int r[4];
  regs_for(e, 4, vals, r);
  isa_inst in = {.op = OP_MXU_MM, .ra = (uint8_t)r[0], .rb = (uint8_t)r[1], .rc = (uint8_t)r[2],
                 .rd = (uint8_t)r[3], .signal = true, .signal_sem = (uint8_t)unit, .unit = (uint8_t)mxu,
                 .dt_src1 = (uint8_t)dt,
                 .flags = (uint8_t)((accumulate ? MXU_FLAG_ACC : 0) | (w ? MXU_FLAG_WIN : 0))};
  put(e, &in);
}

void cc_mm(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, uint64_t rows, uint64_t stride,
           bool accumulate) {
  mm_any(e, mxu, dt, acc, src, rows, stride, NULL, accumulate);
}

void cc_mm_win(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, uint64_t rows, const cc_window *w,
               bool accumulate) {
  mm_any(e, mxu, dt, acc, src, rows, 0, w, accumulate);
}

// ---------------------------------------------------------------- loops
//
// A loop is emitted once as a counted scalar loop: the body's instructions,
// one addi per stepping operand, and dbnz. Its inputs must all be ready when
// it starts: the emitter waits, before the loop, for everything any of its
// iterations conflicts with (the union of the regions each operand sweeps),
// and charges every pass count times to its MXU's semaphore. When the body's
// registers do not fit, or a step does not fit an addi, the loop is unrolled.

void cc_loop_begin(cc_emit *e, uint64_t count) {
  assert(!e->in_loop);
  deferred_flush(e); // not into the body
  e->in_loop = true, e->loop_count = count, e->nbody = 0;
}

static void loop_add(cc_emit *e, const struct loop_op *op) {
  assert(e->in_loop);
  e->body = grow(e, e->body, &e->capbody, e->nbody + 1, sizeof *e->body);
  if (!e->failed) e->body[e->nbody++] = *op;
}

void cc_loop_ldw(cc_emit *e, int mxu, isa_dtype dt, uint64_t src, int64_t step, uint64_t stride, int k, int n) {
  loop_add(e, &(struct loop_op){false, mxu, dt, src, stride, (uint64_t)k, (uint64_t)n, step, false});
}

void cc_loop_mm(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, int64_t step, uint64_t rows,
                uint64_t stride, bool accumulate) {
  loop_add(e, &(struct loop_op){true, mxu, dt, src, stride, rows, acc, step, accumulate});
}

static void loop_unrolled(cc_emit *e) {
  for (uint64_t it = 0; it < e->loop_count; it++)
    for (size_t i = 0; i < e->nbody; i++) {
      const struct loop_op *o = &e->body[i];
      uint64_t src = o->src + it * (uint64_t)o->step;
      if (o->mm) cc_mm(e, o->mxu, o->dt, o->n_or_acc, src, o->rows_or_k, o->stride, o->accumulate);
      else cc_ldw(e, o->mxu, o->dt, src, o->stride, (int)o->rows_or_k, (int)o->n_or_acc);
    }
}

void cc_loop_end(cc_emit *e) {
  assert(e->in_loop);
  e->in_loop = false;
  uint64_t count = e->loop_count;
  if (e->failed || !count || !e->nbody) return;
  // Registers: one per distinct stepping operand, one per constant, a counter.
  uint64_t vals[NREG];
  int64_t steps[NREG];
  int nv = 0;
  bool fits = count > 1;
  for (size_t i = 0; i < e->nbody && fits; i++) {
    const struct loop_op *o = &e->body[i];
    uint64_t ops[4] = {o->src, o->stride, o->rows_or_k, o->n_or_acc};
    for (int k = 0; k < 4 && fits; k++) {
      int64_t st = k == 0 ? o->step : 0;
      int j = 0;
      while (j < nv && !(vals[j] == ops[k] && steps[j] == st)) j++;
      if (j == nv) {
        if (nv == NREG - 2 || !fits32(st)) fits = false;
        else vals[nv] = ops[k], steps[nv] = st, nv++;
      }
    }
  }
  int nstep = 0;
  for (int j = 0; j < nv; j++) nstep += steps[j] != 0;
  // The loop costs the body, an addi per stepping operand, the counter and
  // dbnz (and their loads); unrolled, about two words per instruction.
  if (!fits || !fits32((int64_t)count) || count * e->nbody * 2 <= e->nbody + 2 * (uint64_t)nstep + 3) {
    loop_unrolled(e);
    return;
  }
  // Wait for what any iteration depends on, and record every instruction once
  // with the regions all its iterations cover.
  for (size_t i = 0; i < e->nbody && !e->failed; i++) {
    const struct loop_op *o = &e->body[i];
    if (!check_mxu(e, o->mxu, o->dt)) return;
    int es = isa_dtype_bytes[o->dt], unit = SIM_UNIT_MXU0 + o->mxu;
    int64_t sweep = (int64_t)(count - 1) * o->step;
    uint64_t lo = o->src + (uint64_t)(sweep < 0 ? sweep : 0), hi = o->src + (uint64_t)(sweep > 0 ? sweep : 0);
    if (o->mm) {
      int k = e->mxu_tile_k[o->mxu];
      region rg[2] = {local_region(lo, hi + (o->rows_or_k - 1) * o->stride + (uint64_t)k * es, false),
                      local_region(o->n_or_acc, o->n_or_acc + o->rows_or_k * (uint64_t)e->chip.mxu_cols * 4, true)};
      if (!k || !check_space(e, SPACE_LOCAL, rg[0].lo, rg[0].hi, "pass input") ||
          !check_space(e, SPACE_LOCAL, rg[1].lo, rg[1].hi, "pass output") || rg[1].lo < ISA_ACC_BASE) {
        cc_emit_fail(e, "internal error: a looped pass at 0x%" PRIx64, o->src);
        return;
      }
      sync_and_record(e, unit, count, rg, 2);
    } else {
      region rg = local_region(lo, hi + (o->rows_or_k - 1) * o->stride + o->n_or_acc * (uint64_t)es, false);
      if (!check_space(e, SPACE_LOCAL, rg.lo, rg.hi, "weight tile")) return;
      sync_and_record(e, unit, 0, &rg, 1);
      if (e->nldw_pending[o->mxu] < MAX_REGIONS) e->ldw_pending[o->mxu][e->nldw_pending[o->mxu]++] = rg;
      e->mxu_tile_k[o->mxu] = (int)o->rows_or_k, e->mxu_tile_dt[o->mxu] = o->dt;
    }
  }
  // Registers: constants from the cache (kept), stepping ones fresh.
  int reg[NREG];
  unsigned busy = 0;
  for (int j = 0; j < nv; j++)
    if (!steps[j]) reg[j] = reg_for(e, vals[j], busy), busy |= 1u << reg[j];
  for (int j = 0; j < nv; j++)
    if (steps[j]) reg[j] = reg_fresh(e, vals[j], busy), busy |= 1u << reg[j];
  int counter = reg_fresh(e, count, busy);
  size_t top = e->ncode;
  for (size_t i = 0; i < e->nbody; i++) {
    const struct loop_op *o = &e->body[i];
    uint64_t ops[4] = {o->src, o->stride, o->rows_or_k, o->n_or_acc};
    int r[4];
    for (int k = 0; k < 4; k++) {
      int64_t st = k == 0 ? o->step : 0;
      int j = 0;
      while (!(vals[j] == ops[k] && steps[j] == st)) j++;
      r[k] = reg[j];
    }
    isa_inst in;
    if (o->mm)
      in = (isa_inst){.op = OP_MXU_MM, .ra = (uint8_t)r[3], .rb = (uint8_t)r[0], .rc = (uint8_t)r[2],
                      .rd = (uint8_t)r[1], .signal = true, .signal_sem = (uint8_t)(SIM_UNIT_MXU0 + o->mxu),
                      .unit = (uint8_t)o->mxu, .dt_src1 = (uint8_t)o->dt, .flags = o->accumulate ? MXU_FLAG_ACC : 0};
    else
      in = (isa_inst){.op = OP_MXU_LDW, .ra = (uint8_t)r[0], .rb = (uint8_t)r[1], .rc = (uint8_t)r[2],
                      .rd = (uint8_t)r[3], .unit = (uint8_t)o->mxu, .dt_src1 = (uint8_t)o->dt};
    put(e, &in);
  }
  for (int j = 0; j < nv; j++)
    if (steps[j]) {
      put_scalar(e, OP_ADDI, reg[j], reg[j], (int32_t)steps[j]);
      e->regval[reg[j]] = vals[j] + count * (uint64_t)steps[j]; // what it holds after the loop
    }
  put_scalar(e, OP_DBNZ, counter, 0, (int32_t)((int64_t)top - (int64_t)e->ncode));
  e->regval[counter] = 0, e->regvalid[counter] = true;
}

void cc_vpu(cc_emit *e, isa_vpu_op op, isa_dtype dt_dst, uint64_t dst, isa_dtype dt1, uint64_t src1,
            isa_dtype dt2, uint64_t src2, const cc_vblock *b) {
  if (e->failed) return;
  const isa_vpu_info *vi = &isa_vpu_ops[op & 63];
  assert(vi->name);
  bool binary = vi->kind == VK_BINARY;
  if (!b->rows || !b->cols || b->rows * b->cols > SIM_MAX_VPU_ELEMENTS) {
    cc_emit_fail(e, "internal error: vector block %" PRIu64 "x%" PRIu64, b->rows, b->cols);
    return;
  }
  int ed = isa_dtype_bytes[dt_dst], e1 = isa_dtype_bytes[dt1], e2 = isa_dtype_bytes[binary ? dt2 : dt1];
  region rg[3];
  int nrg = 0;
  uint64_t rows = b->rows, cols = b->cols, lo, hi;
  uint64_t n1[1] = {rows};
  int64_t s;
  // destination
  switch (vi->kind) {
  case VK_REDUCE: s = b->dst_stride, extent(dst, (uint64_t)ed, n1, &s, 1, &lo, &hi); break;
  case VK_REDUCE_COL: lo = dst, hi = dst + cols * (uint64_t)ed; break;
  case VK_TRANSPOSE: {
    uint64_t nc[1] = {cols};
    s = b->dst_stride, extent(dst, rows * (uint64_t)ed, nc, &s, 1, &lo, &hi);
    break;
  }
  default: s = b->dst_stride, extent(dst, cols * (uint64_t)ed, n1, &s, 1, &lo, &hi); break;
  }
  rg[nrg++] = local_region(lo, hi, true);
  s = b->src1_stride, extent(src1, cols * (uint64_t)e1, n1, &s, 1, &lo, &hi);
  rg[nrg++] = local_region(lo, hi, false);
  if (binary) {
    s = b->src2_stride;
    extent(src2, b->src2_colstep ? cols * (uint64_t)e2 : (uint64_t)e2, n1, &s, 1, &lo, &hi);
    rg[nrg++] = local_region(lo, hi, false);
  }
  for (int i = 0; i < nrg; i++)
    if (!check_space(e, SPACE_LOCAL, rg[i].lo, rg[i].hi, "vector operand")) return;
  uint64_t w[ISA_VPU_DESC_WORDS] = {rows, cols, (uint64_t)b->dst_stride, (uint64_t)b->src1_stride,
                                    (uint64_t)(binary ? b->src2_stride : 0),
                                    (uint64_t)(binary ? b->src2_colstep : 1),
                                    (uint64_t)(int64_t)(op == VOP_REQUANT ? b->mult : 1),
                                    (uint64_t)(op == VOP_REQUANT ? b->shift : 0),
                                    (uint64_t)(int64_t)(op == VOP_REQUANT || op == VOP_IADD ? b->zp : 0)}; // iadd: flags
  uint64_t da = descriptor(e, w, ISA_VPU_DESC_WORDS);
  sync_and_record(e, SIM_UNIT_VPU, 1, rg, nrg);
  uint64_t vals[4] = {dst, src1, da, src2};
  int r[4];
  regs_for(e, binary ? 4 : 3, vals, r);
  isa_inst in = {.op = OP_VPU, .ra = (uint8_t)r[0], .rb = (uint8_t)r[1], .signal = true,
                 .signal_sem = SIM_UNIT_VPU, .funct = (uint8_t)op, .dt_dst = (uint8_t)dt_dst,
                 .dt_src1 = (uint8_t)dt1};
  if (binary) in.rc = (uint8_t)r[3], in.rd = (uint8_t)r[2], in.dt_src2 = (uint8_t)dt2;
  else in.rd = (uint8_t)r[2];
  put(e, &in);
}

// ---------------------------------------------------------------- memory plan

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t cc_vmem_alloc(cc_emit *e, uint64_t bytes, const char *what) {
  uint64_t a = align_up(e->vmem_used, 64), top = e->vmem_top;
  if (e->failed) return UINT64_MAX;
  if (a + bytes > top || bytes > top) {
    cc_emit_fail(e, "%s needs %" PRIu64 " bytes of VMEM; chip '%s' has %" PRIu64 " left of %" PRIu64, what, bytes,
                 e->chip.name, top - (a < top ? a : top), e->chip.vmem_bytes);
    return UINT64_MAX;
  }
  e->vmem_used = a + bytes;
  return a;
}

uint64_t cc_vmem_reserve(cc_emit *e, uint64_t bytes) {
  uint64_t b = align_up(bytes, 64);
  if (e->failed || b > e->vmem_top || e->vmem_used) return UINT64_MAX;
  e->vmem_top -= b;
  return e->vmem_top;
}

void cc_prefetch_copy(cc_emit *e, uint64_t dst, uint64_t src_hbm, uint64_t bytes) {
  // The last queue, so the copy runs beside the layer's own loads on queue 0.
  int q = e->chip.dma_queues - 1;
  if (e->failed) return;
  region rg[2] = {{SPACE_HBM, false, src_hbm, src_hbm + bytes}, {SPACE_LOCAL, true, dst, dst + bytes}};
  if (!check_space(e, SPACE_HBM, rg[0].lo, rg[0].hi, "prefetch source") ||
      !check_space(e, SPACE_LOCAL, rg[1].lo, rg[1].hi, "prefetch destination"))
    return;
  int unit = SIM_UNIT_DMA0 + q;
  unit_state *u = &e->units[unit];
  if (u->latency < 0) u->latency = e->chip.hbm_latency;
  else if (u->latency != e->chip.hbm_latency) u->monotone = false;
  uint64_t w[ISA_DMA_DESC_WORDS] = {bytes, 1, 0, 0, 1, 0, 0, 1, 0, 0};
  uint64_t da = descriptor(e, w, ISA_DMA_DESC_WORDS);
  sync_and_record(e, unit, 1, rg, 2);
  uint64_t vals[3] = {dst, src_hbm, da};
  int r[3];
  regs_for(e, 3, vals, r);
  isa_inst in = {.op = OP_DMA, .ra = (uint8_t)r[0], .rb = (uint8_t)r[1], .rc = (uint8_t)r[2], .signal = true,
                 .signal_sem = (uint8_t)unit, .unit = (uint8_t)q, .funct = (uint8_t)(SPACE_LOCAL << 2 | SPACE_HBM)};
  put(e, &in);
}

uint64_t cc_acc_alloc(cc_emit *e, uint64_t bytes, const char *what) {
  uint64_t a = align_up(e->acc_used, 64);
  if (e->failed) return UINT64_MAX;
  if (a + bytes > e->chip.acc_bytes || bytes > e->chip.acc_bytes) {
    cc_emit_fail(e, "%s needs %" PRIu64 " bytes of accumulators; chip '%s' has %" PRIu64, what, bytes,
                 e->chip.name, e->chip.acc_bytes);
    return UINT64_MAX;
  }
  e->acc_used = a + bytes;
  return ISA_ACC_BASE + a;
}

uint64_t cc_vmem_free_bytes(const cc_emit *e) {
  uint64_t a = align_up(e->vmem_used, 64);
  return a < e->vmem_top ? e->vmem_top - a : 0;
}

uint64_t cc_acc_free_bytes(const cc_emit *e) {
  uint64_t a = align_up(e->acc_used, 64);
  return a < e->chip.acc_bytes ? e->chip.acc_bytes - a : 0;
}

// Reuse is safe without a barrier: the next layer's writes to the scratch
// conflict with any unfinished reader, and sync_and_record waits for it.
uint64_t cc_vmem_scratch_bytes(const cc_emit *e) { return align_up(e->vmem_used, 64); }

void cc_scratch_reset(cc_emit *e) { e->vmem_used = e->acc_used = 0; }

uint64_t cc_hbm_alloc(cc_emit *e, uint64_t bytes) {
  uint64_t a = align_up(e->hbm_top, 64);
  if (e->failed) return 0;
  if (a + bytes < a || a + bytes > e->chip.hbm_bytes) {
    cc_emit_fail(e, "the model needs more than the %" PRIu64 " KiB of HBM of chip '%s'", e->chip.hbm_bytes >> 10,
                 e->chip.name);
    return 0;
  }
  e->hbm_top = a + (bytes ? bytes : 1);
  return a;
}

// Constants at touching addresses share a segment, which grows by doubling
// into fresh prefaulted memory (realloc cannot grow prefaulted memory in place:
// its huge-page part is a mapping of its own, and mremap needs one).
void *cc_hbm_const_room(cc_emit *e, uint64_t bytes, uint64_t *addr) {
  uint64_t a = *addr = cc_hbm_alloc(e, bytes);
  if (e->failed) return NULL;
  hbm_seg *last = e->nsegs ? &e->segs[e->nsegs - 1] : NULL;
  if (!last || last->addr + last->size != a) {
    e->segs = grow(e, e->segs, &e->capsegs, e->nsegs + 1, sizeof *e->segs);
    if (e->failed) return NULL;
    last = &e->segs[e->nsegs++];
    *last = (hbm_seg){a, NULL, 0, 0};
  }
  if (!last->data || last->size + bytes > last->cap) {
    uint64_t cap = last->cap ? 2 * last->cap : 1 << 16;
    if (cap < last->size + bytes) cap = last->size + bytes;
    uint8_t *p = isa_malloc_big(cap);
    if (!p) return cc_emit_fail(e, "out of host memory"), NULL;
    if (last->size) memcpy(p, last->data, last->size);
    free(last->data);
    last->data = p, last->cap = cap;
  }
  uint8_t *room = last->data + last->size;
  last->size += bytes;
  return room;
}

uint64_t cc_hbm_const(cc_emit *e, const void *data, uint64_t bytes) {
  uint64_t a;
  void *room = cc_hbm_const_room(e, bytes, &a);
  if (!room) return 0;
  if (bytes) memcpy(room, data, bytes);
  return a;
}

// ---------------------------------------------------------------- layers

void cc_layer_begin(cc_emit *e, const char *name, const char *op) {
  assert(!e->in_layer);
  e->layers = grow(e, e->layers, &e->caplayers, e->nlayers + 1, sizeof *e->layers);
  if (e->failed) return;
  isa_layer *l = &e->layers[e->nlayers];
  memset(l, 0, sizeof *l);
  snprintf(l->name, sizeof l->name, "%s", name);
  // A long name is cut at a character boundary: the layer table holds UTF-8.
  size_t len = strlen(l->name);
  if (len == sizeof l->name - 1 && strlen(name) > len) {
    size_t k = len;
    while (k && ((unsigned char)l->name[k - 1] & 0xc0) == 0x80) k--; // back to the last lead byte
    if (k) {
      unsigned char lead = (unsigned char)l->name[k - 1];
      size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
      if (k - 1 + need > len) l->name[k - 1] = 0;
    }
  }
  snprintf(l->op, sizeof l->op, "%s", op);
  l->pc_begin = e->ncode;
  e->in_layer = true;
}

void cc_layer_add_macs(cc_emit *e, uint64_t macs) {
  if (e->in_layer && !e->failed) e->layers[e->nlayers].macs += macs;
}

void cc_layer_end(cc_emit *e) {
  if (!e->in_layer || e->failed) {
    e->in_layer = false;
    return;
  }
  e->in_layer = false;
  isa_layer *l = &e->layers[e->nlayers];
  l->pc_end = e->ncode;
  if (l->pc_end > l->pc_begin) e->nlayers++; // a view emits nothing: no layer
}

// ---------------------------------------------------------------- finish

int cc_emit_finish(cc_emit *e, cc_executable *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  deferred_flush(e);
  put_scalar(e, OP_HALT, 0, 0, 0);
  if (!e->failed && e->ncode * 8 > e->chip.imem_bytes)
    cc_emit_fail(e,
                 "the program has %zu instructions (%zu KiB); the IMEM of chip '%s' holds %" PRIu64
                 " KiB: the model is too big for this chip",
                 e->ncode, e->ncode * 8 / 1024, e->chip.name, e->chip.imem_bytes / 1024);
  if (cc_emit_failed(e, err, errlen)) return -1;
  isa_program *p = &out->prog;
  p->code = e->code, p->ncode = e->ncode;
  e->code = NULL, e->ncode = e->capcode = 0;
  p->segs = calloc(e->nsegs + 1, sizeof *p->segs);
  if (!p->segs) return snprintf(err, errlen, "out of host memory"), -1;
  if (e->smem_used) {
    uint64_t n = align_up(e->smem_used, 8);
    p->segs[p->nsegs++] = (isa_segment){.kind = SEG_SMEM, .addr = 0, .data = e->smem, .size = n};
    e->smem = NULL;
  }
  for (size_t i = 0; i < e->nsegs; i++)
    p->segs[p->nsegs++] =
        (isa_segment){.kind = SEG_HBM, .addr = e->segs[i].addr, .data = e->segs[i].data, .size = e->segs[i].size};
  e->nsegs = 0;
  p->layers = e->layers, p->nlayers = e->nlayers;
  e->layers = NULL, e->nlayers = e->caplayers = 0;
  snprintf(p->chip, sizeof p->chip, "%s", e->chip.name);
  out->hbm_bytes = e->hbm_top;
  return 0;
}

void cc_executable_free(cc_executable *x) {
  if (!x) return;
  isa_program_free(&x->prog);
  memset(x, 0, sizeof *x);
}

void cc_dma_nd(cc_emit *e, isa_space dsp, uint64_t dst, isa_space ssp, uint64_t src, uint64_t inner, int k,
               const uint64_t *n0, const int64_t *ss0, const int64_t *ds0) {
  uint64_t n[IR_MAX_DIMS + 2];
  int64_t ss[IR_MAX_DIMS + 2], ds[IR_MAX_DIMS + 2];
  int m = 0;
  assert(k <= IR_MAX_DIMS + 2);
  for (int i = 0; i < k; i++) {
    if (n0[i] == 0) return; // empty
    if (n0[i] == 1) continue;
    if (m && ss[m - 1] == (int64_t)n0[i] * ss0[i] && ds[m - 1] == (int64_t)n0[i] * ds0[i]) {
      n[m - 1] *= n0[i], ss[m - 1] = ss0[i], ds[m - 1] = ds0[i];
      continue;
    }
    n[m] = n0[i], ss[m] = ss0[i], ds[m] = ds0[i], m++;
  }
  while (m && ss[m - 1] == (int64_t)inner && ds[m - 1] == (int64_t)inner) inner *= n[--m];
  if (m <= 3) {
    cc_dma_shape sh = {.inner = inner, .n = {1, 1, 1}};
    for (int i = 0; i < m; i++) {
      int j = m - 1 - i; // descriptor dim 1 is the innermost
      sh.n[i] = n[j], sh.src_stride[i] = ss[j], sh.dst_stride[i] = ds[j];
    }
    uint64_t total = inner * sh.n[0] * sh.n[1] * sh.n[2];
    if (total <= (1ull << 30) || m == 0) {
      if (m == 0) cc_copy(e, dsp, dst, ssp, src, inner);
      else cc_dma(e, dsp, dst, ssp, src, &sh);
      return;
    }
    // Too big for one transfer: split the outermost dim.
    uint64_t per = total / n[0], chunk = (1ull << 30) / per ? (1ull << 30) / per : 1;
    for (uint64_t i = 0; i < n[0]; i += chunk) {
      uint64_t c = n[0] - i < chunk ? n[0] - i : chunk;
      uint64_t nn[3] = {c, m > 1 ? n[1] : 1, m > 2 ? n[2] : 1};
      cc_dma_nd(e, dsp, dst + i * ds[0], ssp, src + i * ss[0], inner, m, nn, ss, ds);
    }
    return;
  }
  for (uint64_t i = 0; i < n[0]; i++)
    cc_dma_nd(e, dsp, dst + i * ds[0], ssp, src + i * ss[0], inner, m - 1, n + 1, ss + 1, ds + 1);
}
