// Internal state of the simulator, shared by sim.c, mem.c and report.c.
#ifndef SYSTOLE_SIMINT_H
#define SYSTOLE_SIMINT_H

#include "sim/mxu.h"
#include "sim/sim.h"

// ---------------------------------------------------------------- mem.c
// A large memory allocated in pages on first write; unwritten bytes read as
// zero, so a 32 GiB HBM costs only what a program touches.
#define LAZY_PAGE_BITS 16
typedef struct {
  uint8_t **pages;
  uint64_t size, npages, touched; // touched: pages allocated
  uint64_t *list, list_cap;        // the indices of the touched pages (freeing visits only them)
} lazymem;

int lazymem_init(lazymem *m, uint64_t size);
void lazymem_free(lazymem *m);
// The caller has checked addr + n <= size.
void lazymem_read(const lazymem *m, uint64_t addr, void *dst, uint64_t n);
int lazymem_write(lazymem *m, uint64_t addr, const void *src, uint64_t n); // -1: out of host memory
// As lazymem_write, but the whole pages of [addr, addr + n) become src's own
// bytes, not copies (src 4-byte aligned there): read-only, copied on the first
// write like an image's, never the pool's. src must outlive m and any image
// taken from it.
int lazymem_borrow(lazymem *m, uint64_t addr, const void *src, uint64_t n);

// Zeroed memory, 2 MiB-aligned huge pages, the first `populate` bytes (rounded
// up to 2 MiB) faulted in now rather than a page at a time as written. NULL:
// out of memory. Freed by hot_unmap with the same size.
void *hot_map(uint64_t bytes, uint64_t populate);
void hot_unmap(void *p, uint64_t bytes);

// Pages made once and shared, read-only, by the memories that map them.
typedef struct {
  uint64_t size, n;   // the memory's size; pages
  uint64_t *index;    // page numbers
  uint8_t **page;
} lazyimage;
// Moves m's pages into an image and frees m. -1: out of host memory (m unchanged).
int lazyimage_take(lazyimage *im, lazymem *m);
void lazyimage_free(lazyimage *im); // only when no memory maps it any more
// Maps the image's pages into m (same size, none of those pages written yet),
// copied on the first write to each. -1: out of host memory or a page written.
int lazymem_map(lazymem *m, const lazyimage *im);
// Whether page `page` of m is an image's (mapped and not written since).
static inline bool lazymem_shared(const lazymem *m, uint64_t page) { return (uintptr_t)m->pages[page] & 1; }

// ---------------------------------------------------------------- sim.c
// A tile instruction waiting in, or taken from, a unit's queue. Register
// operands and SMEM descriptors are captured at dispatch.
typedef struct {
  isa_inst in;
  uint64_t pc;
  uint64_t ra, rb, rc, rd; // register values
  uint64_t desc[ISA_DMA_DESC_WORDS > ISA_VPU_DESC_WORDS ? ISA_DMA_DESC_WORDS : ISA_VPU_DESC_WORDS];
  uint64_t arrive;         // first cycle it may start (dispatch + 1)
  uint64_t bytes;          // DMA: bytes to move
  uint64_t elems;          // VPU: elements
  uint64_t dst_lo, dst_hi; // DMA: the destination's extent
  uint64_t ext[3];         // VPU: bytes the destination, source and source 2 span from their addresses
} qentry;

typedef struct {
  int id;                  // SIM_UNIT_*
  isa_unit_kind kind;
  bool present;
  qentry *q;               // ring buffer of queue_depth entries
  int qhead, qcount;
  bool blocked;            // head waits for a semaphore
  uint64_t blocked_since;
  uint64_t free_at;        // VPU: next issue; DMA: engine free (UINT64_MAX while moving data)
  uint64_t last_done;
  bool try_pending;        // a try-start event is queued
  // MXU
  mxu_timing mt;
  // MXU, the TPU v1 paper's Table 3 (report.c): the array is free from
  // t3_free (the last pass's start + rows); the pending tile's load started
  // at ld_start, can be taken from ld_ready, and its data arrived at ld_arrive
  uint64_t t3_free, ld_start, ld_ready, ld_arrive;
  bool ld_pending;
  // DMA: the transfer in its data phase
  bool moving;
  double remaining, rate;
  int res_mask;            // memories it uses (RES_*)
  qentry cur;
} unit;

// An MXU's weights as raw elements, R x C: the shadow tile being loaded and
// the active tile passes use, in buffers of the simulator's own (shadow,
// active) or in the image's cache of packed tiles (sload, aload: the tiles
// loaded, one of those).
typedef struct {
  uint8_t *shadow, *active;
  void *sload, *aload;
  int sk, sn, ak, an, sdt, adt;
  bool spending, have;
} mxu_weights;

// The tile state as the dispatched instruction stream sees it, so that misuse
// traps at dispatch, naming the instruction.
typedef struct {
  bool pending, loaded;
  int k, n, dt;
} mxu_logical;

#define SIM_ARRIVALS 64

// Local bytes [lo, hi) hold the image's HBM bytes from hbm on (sim.c,
// "provenance"); virt: not copied there yet.
typedef struct {
  uint64_t lo, hi, hbm;
  bool virt;
} lextent;

// Trace records (only with sim_options.trace).
typedef struct {
  int track;               // unit id * 2 (+1: MXU weight loads)
  uint64_t start, end;
  uint64_t pc;             // UINT64_MAX: a scalar stall span
  int cause;
} trace_rec;

struct sim {
  chip_config chip;
  sim_options opt;
  // program
  uint64_t *code;
  size_t ncode;
  isa_inst *dec;           // code decoded once at load
  bool *legal;             // false: an illegal word, which traps when executed
  // memories
  lazymem host, hbm;
  uint8_t *vmem, *acc, *smem;
  // provenance of local memory: kept only when an image is mapped
  struct sim_image *image;
  lextent *lx;
  size_t nlx, caplx;
  uint64_t *hbm_written;   // a bit per HBM page some DMA of this simulator was started to write
  uint64_t run_id;         // unique per sim_run, for the cache entries a run is filling
  // scalar unit
  uint64_t reg[ISA_NUM_REGS];
  uint64_t pc, now;        // now: the scalar unit's cycle
  uint32_t sem[ISA_NUM_SEMS];
  enum { SC_RUN, SC_SWAIT, SC_QFULL, SC_FENCE, SC_HALT, SC_DONE } sstate;
  uint64_t sblocked_since;
  int swait_sem;           // SC_SWAIT: what the scalar unit waits for
  uint32_t swait_count;
  int sblock_unit;         // SC_QFULL: the full unit
  uint64_t halt_cycle;
  // tile units
  unit units[SIM_UNITS];
  mxu_weights mw[SIM_MAX_MXU];
  mxu_logical ml[SIM_MAX_MXU];
  int inflight;            // tile instructions started and not yet complete
  // events
  struct event *heap;
  size_t nheap, capheap;
  uint64_t seq;
  uint64_t dma_gen, dma_last;
  double res_bw[3];        // bytes per cycle of host link, HBM, local memory
  int res_users[3];
  uint64_t end_cycle;
  // the latest DMAs from HBM or the host into local memory, for the weight
  // stall counter: when the data an mxu.ldw reads arrived
  struct { uint64_t lo, hi, done; } arrivals[SIM_ARRIVALS];
  unsigned narrivals;
  // Table 3 counts the cycles between the program's host transfers (its
  // leading "host-in" and trailing "host-out" layers, sim_load): the window
  // opens when the scalar unit reaches t3_open_pc and closes at t3_close_pc
  // (UINT64_MAX: at the start, at the end); the counters are their values at
  // the close less those at the open.
  uint64_t t3_open_pc, t3_close_pc, t3_t0, t3_t1;
  bool t3_opened, t3_closed;
  struct t3_counts { uint64_t active, stall, shift, non_matrix, macs_bf16, macs_int8; } t3_base, t3_end;
  // statistics and trace
  sim_stats st;
  trace_rec *trace;
  size_t ntrace, captrace;
  sim_pc_profile *prof;    // ncode entries with sim_options.profile, else NULL
  uint8_t *tmp;            // DMA staging
  size_t tmpcap;
  char *err;
  size_t errlen;
  bool trapped;
};

// ---------------------------------------------------------------- report.c
void sim_finish_stats(sim *s);

#endif
