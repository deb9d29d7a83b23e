// The fast timing model of one weight-stationary MXU (docs/timing.md), and
// the processing-element-level model that checks it (pe.c, tests only).
// Owner: mxu.c, pe.c.
#ifndef SYSTOLE_MXU_H
#define SYSTOLE_MXU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- mxu.c
// Per-MXU timing state. All times are cycles. The MXU runs its queue in order;
// a pass and the load after it may start in the same cycle (the data feeder
// and the weight shifter are separate ports), nothing else shares a cycle.
// The rules, exact against the PE model (tests/test_pe.c), with L = load_cycles:
//   load:  start = max(ready, last_start, load_free, shadow_free)
//          done  = start + L + C - 1   (the shift is skewed one cycle per column)
//          shadow_ready = start + L; load_free = start + L; shadow pending
//   pass:  start = max(ready, last_start, array_free [, shadow_ready if a tile
//          is pending: the pass takes it, shadow_free = start])
//          done  = start + m + R + C - 2; array_free = start + m
typedef struct {
  int rows, cols;          // R x C
  int load_cycles;         // weight-tile load time L >= R (R by default)
  uint64_t array_free;     // first cycle a new pass may feed its first row
  uint64_t load_free;      // first cycle the weight-shift path is free
  uint64_t shadow_free;    // first cycle a load may overwrite the shadow tile
  uint64_t shadow_ready;   // first cycle a pass may take the pending shadow tile
  uint64_t last_start;     // start of the latest operation (in-order issue)
  bool shadow_pending;     // a loaded tile waits for the next pass
  bool have_weights;       // some tile is active
} mxu_timing;

// load_cycles <= 0 means R; a value below R is raised to R (the shift from the
// top of the array needs R cycles).
void mxu_timing_init(mxu_timing *t, int rows, int cols, int load_cycles);
// A weight load whose instruction is ready at `ready` (queue head, semaphores
// met). Returns its start; it completes at mxu_timing_load_done(t, start).
// Returns UINT64_MAX if the shadow tile holds a load no pass has used yet (a
// trap); the state is then unchanged.
uint64_t mxu_timing_load(mxu_timing *t, uint64_t ready);
// Completion of a load that started at `start`: the last shadow register of
// the last column is written (start + load_cycles + cols - 1). A pass may take
// the tile earlier, from start + load_cycles.
uint64_t mxu_timing_load_done(const mxu_timing *t, uint64_t start);
// A pass of m >= 1 rows ready at `ready`. Sets *start (first row enters the
// array) and *done (first cycle at which every result is in the accumulators).
// A pass switches to the pending shadow tile if there is one. Returns false,
// changing nothing, if no tile was ever loaded or m < 1.
bool mxu_timing_pass(mxu_timing *t, uint64_t ready, int m, uint64_t *start, uint64_t *done);

// ---------------------------------------------------------------- pe.c
// The array as registers, simulated cycle by cycle (small arrays, tests only).
// Each PE(r, c) holds an input register (moves right), a partial-sum register
// (moves down: running sum plus the even and odd chains of the current 32-row
// slice, or an int32 sum), an active and a shadow weight register. Weight
// tiles shift down each column from the top, column c one cycle behind column
// c - 1; the switch to the shadow tile travels with the first row of a pass.
// Every register carries tags (which op, which row) and the model checks at
// every step that each PE uses the weight and partial sum it should: a broken
// readiness rule shows up as a hazard, not as a silently different number.
typedef enum { PE_BF16, PE_INT8 } pe_dtype;
typedef enum { PE_LOAD, PE_PASS } pe_kind;

typedef struct {
  pe_kind kind;
  uint64_t ready;          // earliest start (queue head, semaphores met)
  // PE_LOAD: a k x n tile (1 <= k <= R, 1 <= n <= C), row stride w_stride
  // elements: uint16_t bf16 bits or int8_t.
  const void *w;
  int k, n;
  size_t w_stride;
  // PE_PASS: m rows of the tile's k elements (row stride lhs_stride elements,
  // uint16_t bf16 bits or int8_t); results go to accumulator rows dst..dst+m-1,
  // columns 0..n-1, overwriting or accumulating.
  const void *lhs;
  size_t lhs_stride;
  int m, dst;
  bool accumulate;
} pe_op;

typedef struct {
  uint64_t start, done;    // done: first cycle the effect is complete
  bool trap;               // load over an unused tile, or pass with no tile
  bool ran;                // false after an earlier trap
} pe_result;

typedef struct {
  int rows, cols, load_cycles; // load_cycles as in mxu_timing_init
  pe_dtype dtype;
  void *acc;               // acc_rows x cols accumulators: float or int32_t
  int acc_rows;
  // Testing the readiness rules: with force, op force_op starts at force_at
  // (or as soon after as the ops before it allow), whatever the hardware
  // state says, even ahead of ops before it; the tags then report a hazard.
  bool force;
  int force_op;
  uint64_t force_at;
} pe_config;

typedef struct {
  int hazards;             // register-level conflicts found (0 when rules hold)
  char first[200];         // the first one, described
  uint64_t cycles;         // cycles simulated
} pe_report;

// Runs ops in order; fills res[0..nops). Stops at the first trap. Returns 0,
// or -1 if the configuration or an op is malformed (out of range).
int pe_run(const pe_config *cfg, const pe_op *ops, int nops, pe_result *res, pe_report *rep);

#endif
