// The chip simulator: runs a program on one TensorCore of a chip, computing
// exact values and counting cycles event by event (docs/timing.md).
// Owner: sim.c (units and timing), mem.c (the memories), report.c (statistics,
// JSON and the Chrome trace).
#ifndef SYSTOLE_SIM_H
#define SYSTOLE_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "isa/isa.h"
#include "sim/chip.h"

#define SIM_ERR_LEN 1024
#define SIM_HOST_BYTES (1ull << 36) // simulated host memory, allocated lazily

// Memories a driver can read and write (beyond the three DMA spaces).
typedef enum { MEM_HOST = SPACE_HOST, MEM_HBM = SPACE_HBM, MEM_LOCAL = SPACE_LOCAL, MEM_SMEM } sim_mem;
// The memory a program's input or output is in, as its signature says.
static inline sim_mem sim_io_mem(const isa_io *t) { return t->mem == IO_MEM_HOST ? MEM_HOST : MEM_HBM; }

typedef struct {
  uint64_t max_cycles; // 0: SIM_DEFAULT_MAX_CYCLES
  bool timing_only;    // count cycles without computing values
  bool trace;          // record every instruction for sim_write_trace
  bool profile;        // record per-instruction figures for sim_get_pc_profile
} sim_options;
#define SIM_DEFAULT_MAX_CYCLES 100000000000ull
// Bounds on one instruction's work, so that a legal but absurd instruction
// traps instead of keeping the host busy for hours (docs/isa.md).
#define SIM_MAX_DMA_BYTES (1ull << 32)
#define SIM_MAX_PASS_ROWS (1 << 20)
#define SIM_MAX_VPU_ELEMENTS (1ull << 32)

// Units of the simulated core, in report order.
#define SIM_MAX_DMA 8
#define SIM_MAX_MXU 8
enum { SIM_UNIT_SCALAR = 0, SIM_UNIT_VPU = 1, SIM_UNIT_DMA0 = 2,
       SIM_UNIT_MXU0 = SIM_UNIT_DMA0 + SIM_MAX_DMA, SIM_UNITS = SIM_UNIT_MXU0 + SIM_MAX_MXU };

// Why a unit waited (stall cycles by cause).
typedef enum {
  STALL_SEMAPHORE,  // tile unit: head waits for a semaphore; scalar: swait
  STALL_WEIGHTS,    // MXU: pass waits for its weight tile to finish loading
  STALL_SHADOW,     // MXU: load waits for the shadow buffer to be taken
  STALL_QUEUE_FULL, // scalar: dispatch to a full queue
  STALL_FENCE,      // scalar: fence or halt waiting for units
  STALL_CAUSES
} sim_stall;
extern const char *const sim_stall_names[STALL_CAUSES];

typedef struct {
  uint64_t cycles;           // the whole run
  double seconds;            // cycles at the chip clock
  uint64_t instructions[SIM_UNITS];
  uint64_t busy[SIM_UNITS];  // cycles the unit was occupied
  uint64_t stall[SIM_UNITS][STALL_CAUSES];
  // bytes read and written per memory level
  uint64_t host_read, host_write, hbm_read, hbm_write, vmem_read, vmem_write;
  uint64_t acc_read, acc_write;
  uint64_t macs_bf16, macs_int8; // useful multiply-accumulates
  uint64_t vpu_elements;
  uint64_t weight_loads, passes;
  double mxu_utilization;    // useful MACs over the MXUs' peak for the run
  // The TPU v1 paper's Table 3 (docs/timing.md, "Statistics and energy"):
  // every MXU cycle of the run (cycles x MXUs) is one of array active (a
  // pass feeds a row), weight stall (idle until the data of the next tile
  // has arrived from HBM or the host), weight shift (idle while the next
  // tile shifts in) or non-matrix (idle for any other reason).
  // The run's host transfers (the program's leading "host-in" and trailing
  // "host-out" layers: graph inputs and outputs over the host link) are
  // outside Table 3, as the paper's host interaction is (its Table 5): the
  // counters, useful MACs and TOPS are over the cycles between them, which
  // host_in_cycles before and host_out_cycles after complete to the run.
  uint64_t mxu_cycles, mxu_active, weight_stall, weight_shift, non_matrix;
  uint64_t host_in_cycles, host_out_cycles;
  double useful_mac_fraction;  // useful MACs over the MXUs' peak between the host transfers
  double unused_mac_fraction;  // active cycles' MACs on weights the tiles do not hold
  double tops;                 // 2 x MACs per second between the host transfers, in 10^12
  double energy_pj[8];       // see sim_energy_names
  double energy_total_pj;
} sim_stats;
extern const char *const sim_energy_names[8];

// Per-instruction figures of a run (sim_options.profile), indexed by pc. A
// compiler's layers are pc ranges, so summing these gives per-layer figures.
// After a completed run, count == 0 means never executed (all fields 0).
typedef struct {
  uint64_t count;       // executions (tile instructions: starts)
  uint64_t first_start; // cycle of the first execution's start
  uint64_t last_done;   // cycle the last execution completed (scalar: start + 1)
  // Busy cycles as sim_stats.busy counts them: 1 per scalar execution; for a
  // tile instruction its dispatch cycle plus its unit's busy cycles (weight
  // loads have none). Summed over every pc: the sum of sim_stats.busy.
  uint64_t busy;
  uint64_t macs;        // multiply-accumulates of its passes
  uint64_t hbm_bytes;   // HBM bytes its DMAs read plus wrote
} sim_pc_profile;

typedef struct sim sim;

sim *sim_create(const chip_config *chip, const sim_options *opt, char *err, size_t errlen);
void sim_destroy(sim *s);
// Loads code and initial memory contents. Returns 0 or -1 with err set.
int sim_load(sim *s, const isa_program *p, char *err, size_t errlen);
// A program's HBM and host memory contents laid out once, for runs that
// share them (a device keeps an executable's constants from its upload on):
// sim_load_image loads the code and SMEM as sim_load does and maps the image
// into HBM and host memory, each page copied on the run's first write to it.
// A run sees exactly what sim_load would give it. The image must outlive
// every simulator that maps it, and be made for the chip's HBM size. It also
// keeps the packed weight tiles of loads whose bytes were its own, for later
// runs (sim.c, "provenance"): simulators on several threads may share it.
// Segments that p borrowed from its file (isa_program_read) are not copied:
// their whole pages are the file's bytes, so p must outlive the image.
typedef struct sim_image sim_image;
sim_image *sim_image_create(const chip_config *chip, const isa_program *p, char *err, size_t errlen);
void sim_image_destroy(sim_image *img);
uint64_t sim_image_hbm_bytes(const sim_image *img); // the HBM size it was made for
size_t sim_image_cached_tiles(sim_image *img);       // packed weight tiles in its cache
int sim_load_image(sim *s, const isa_program *p, const sim_image *img, char *err, size_t errlen);
// Driver access to the memories, bounds-checked (for --load, tests, runtime).
int sim_write(sim *s, sim_mem mem, uint64_t addr, const void *src, uint64_t n, char *err, size_t errlen);
int sim_read(sim *s, sim_mem mem, uint64_t addr, void *dst, uint64_t n, char *err, size_t errlen);
// Runs to halt. Returns 0, or -1 with err holding the trap message
// ("trap at pc N (disassembly): reason").
int sim_run(sim *s, char *err, size_t errlen);

uint64_t sim_reg(const sim *s, int r);
uint32_t sim_sem(const sim *s, int n);
const sim_stats *sim_get_stats(const sim *s);
const chip_config *sim_chip(const sim *s);
// The profile, one entry per instruction of the loaded program (*n of them);
// NULL (and *n = 0) unless sim_options.profile was set.
const sim_pc_profile *sim_get_pc_profile(const sim *s, size_t *n);
const char *sim_unit_name(const sim *s, int unit, char *buf, size_t len); // NULL if absent

// report.c
void sim_print_stats(const sim *s, FILE *out);
int sim_write_json(const sim *s, const char *path, char *err, size_t errlen);
// A named span of cycles shown on its own track of the trace (layers).
typedef struct {
  const char *name;
  uint64_t start, end;
} sim_span;
// The Chrome trace-event timeline; spans (may be NULL) go on a "layers" track.
int sim_write_trace(const sim *s, const char *path, char *err, size_t errlen);
int sim_write_trace_spans(const sim *s, const char *path, const sim_span *spans, size_t nspans,
                          char *err, size_t errlen);
// Helpers for JSON writers (shared with the runtime): a string literal with
// escapes, and fclose that reports a failed write as "path: write failed".
void sim_json_str(FILE *f, const char *str);
// Figures for people, shared with the CLI: 1234567 -> "1,234,567", bytes in
// KiB/MiB/GiB, seconds in us/ms/s, picojoules in nJ/uJ/mJ. Each returns one of a
// few rotating static buffers, enough for one printf.
const char *sim_fmt_count(uint64_t v);
const char *sim_fmt_bytes(uint64_t v);
const char *sim_fmt_seconds(double seconds);
const char *sim_fmt_energy_pj(double pj);
int sim_close_checked(FILE *f, const char *path, char *err, size_t errlen);

#endif
