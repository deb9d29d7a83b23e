// The fast timing model of one MXU in each dataflow (docs/timing.md), and
// the processing-element-level model that checks it (pe.c, tests only).
// Owner: mxu.c, pe.c.
#ifndef SYSTOLE_MXU_H
#define SYSTOLE_MXU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- mxu.c
// The dataflow: which operand stays in the array (docs/timing.md). The order
// is chip_dataflow's (chip.h). The ISA is the same for all three: mxu.ldw
// names a k x n weight tile, mxu.mm streams m rows through it into m x n
// accumulator rows; only the timing differs.
//   ws  weights stay: the tile is shifted into the PEs (shadow registers,
//       L = load_cycles), the m input rows stream from the left;
//   os  outputs stay: each fold of up to R rows x n columns accumulates in
//       the PEs while k elements of both operands stream in (inputs from
//       the left, weights from the top); each column's result bus takes one
//       result per cycle;
//   is  inputs stay: each fold of up to C input rows is shifted into the PEs
//       (R cycles), the n weight columns stream from the left.
// Preloading (the default) overlaps the next fold with the current one (ws:
// the next tile shifts into the shadow registers; is: the next input block;
// os: the next fold streams while the current one drains). Without it a fold
// starts only when everything before it has drained, as SCALE-Sim assumes.
typedef enum { MXU_WS, MXU_OS, MXU_IS } mxu_dataflow;

// Per-MXU timing state. All times are cycles; the MXU runs its queue in order.
// ws (rules exact against the PE model, tests/test_pe.c), with L = load_cycles:
//   load:  start = max(ready, last_start, load_free, shadow_free [, drained
//          without preloading]); done = start + L + C - 1
//          shadow_ready = start + L; load_free = start + L; shadow pending
//   pass:  start = max(ready, last_start, array_free [, shadow_ready if a tile
//          is pending: the pass takes it, shadow_free = start])
//          done  = start + m + R + C - 2; array_free = start + m
// os and is: a load only latches the tile the passes stream (start = max(ready,
// last_start), done = start + 1); a pass is ceil(m / R) (os) or ceil(m / C)
// (is) folds, timed in mxu.c by the formulas of docs/timing.md.
typedef struct {
  int rows, cols;          // R x C
  int load_cycles;         // weight-tile load time L >= R (R by default)
  mxu_dataflow dataflow;
  bool preload;            // overlap the next fold with the current one
  uint64_t last_start;     // start of the latest operation (in-order issue)
  uint64_t drained;        // first cycle by which every pass so far is done
  // the weight tile: ws shadow registers; os and is the tile's descriptor
  uint64_t load_free;      // ws: first cycle the weight-shift path is free
  uint64_t shadow_free;    // ws: first cycle a load may overwrite the shadow tile
  uint64_t shadow_ready;   // ws: first cycle a pass may take the pending tile
  bool shadow_pending;     // a loaded tile waits for the next pass
  bool have_weights;       // some tile is active
  int tile_k, tile_n;      // the pending tile (os, is)
  int act_k, act_n;        // the active tile (os, is)
  // the array
  uint64_t array_free;     // ws: a new pass may feed its first row; os: the
                           // feeders are free for the next fold
  uint64_t bus_free;       // os: the next fold of depth k may start at bus_free - k
  uint64_t block_free;     // is: the next input block may start shifting in
  uint64_t stream_free;    // is: the next weight stream may start
  uint64_t weight_wait;    // of the last mxu_timing_pass: cycles its start
                           // waited for its weight tile and nothing else
} mxu_timing;

// load_cycles <= 0 means R; a value below R is raised to R (the shift from the
// top of the array needs R cycles). Weight-stationary, preloading.
void mxu_timing_init(mxu_timing *t, int rows, int cols, int load_cycles);
// Chooses the dataflow and preloading (before the first operation).
void mxu_timing_set_dataflow(mxu_timing *t, mxu_dataflow df, bool preload);
// A weight load of a k x n tile whose instruction is ready at `ready` (queue
// head, semaphores met). Returns its start; it completes at
// mxu_timing_load_done(t, start). Returns UINT64_MAX if the shadow tile holds
// a load no pass has used yet (a trap); the state is then unchanged. Only os
// and is use k and n (os streams k, is streams n); k, n >= 1.
uint64_t mxu_timing_load_tile(mxu_timing *t, uint64_t ready, int k, int n);
// The same for a full R x C tile.
uint64_t mxu_timing_load(mxu_timing *t, uint64_t ready);
// Completion of a load that started at `start`: ws, the last shadow register
// of the last column is written (start + load_cycles + cols - 1; a pass may
// take the tile earlier, from start + load_cycles); os and is, start + 1.
uint64_t mxu_timing_load_done(const mxu_timing *t, uint64_t start);
// A pass of m >= 1 rows ready at `ready`. Sets *start (ws and os: its first
// row enters the array; is: its first input block starts shifting in) and
// *done (first cycle at which every result is in the accumulators), and
// t->weight_wait. A pass switches to the pending tile if there is one.
// Returns false, changing nothing, if no tile was ever loaded or m < 1.
bool mxu_timing_pass(mxu_timing *t, uint64_t ready, int m, uint64_t *start, uint64_t *done);

// ---------------------------------------------------------------- pe.c
// The array as registers, simulated cycle by cycle (small arrays, tests only),
// in any of the three dataflows. Each PE(r, c) holds:
//   ws, is: a streamed-operand register (moves right), a partial-sum register
//     (moves down: running sum plus the even and odd chains of the current
//     32-row slice, or an int32 sum), an active and a shadow stationary
//     register (ws: the weight tile; is: the input block). Stationary tiles
//     shift down each column from the top, column c one cycle behind column
//     c - 1; the switch to the shadow tile travels with the first streamed item;
//   os: an input register (moves right), a weight register (moves down) and
//     an output accumulator that leaves on the column's result bus when the
//     fold's last element has been added.
// Every register carries tags (which op, fold, row) and the model checks at
// every step that each PE uses the operands and partial sum it should: a
// broken readiness rule shows up as a hazard, not as a silently different
// number.
typedef enum { PE_BF16, PE_INT8 } pe_dtype;
typedef enum { PE_LOAD, PE_PASS } pe_kind;

#define PE_MAX_EVENTS 128 // per op; see pe_result.ev

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
  // The op's internal events, in order, and when they happened: a load or a
  // ws pass has one (its start); an os pass one per fold (its streams); an is
  // pass two per fold (the input block starts shifting in, then its stream).
  int nev;
  uint64_t ev[PE_MAX_EVENTS];
} pe_result;

typedef struct {
  int rows, cols, load_cycles; // load_cycles as in mxu_timing_init
  mxu_dataflow dataflow;
  bool no_preload;         // a fold starts only when the array has drained
  pe_dtype dtype;
  void *acc;               // acc_rows x cols accumulators: float or int32_t
  int acc_rows;
  // Testing the readiness rules: with force, event force_ev of op force_op
  // happens at force_at (or as soon after as its own earlier events allow),
  // whatever the hardware state says, even ahead of ops before it; the tags
  // then report a hazard.
  bool force;
  int force_op, force_ev;
  uint64_t force_at;
} pe_config;

typedef struct {
  int hazards;             // register-level conflicts found (0 when rules hold)
  char first[200];         // the first one, described
  uint64_t cycles;         // cycles simulated
} pe_report;

// Runs ops in order; fills res[0..nops). Stops at the first trap. Returns 0,
// or -1 if the configuration or an op is malformed (out of range, or a pass
// with more than PE_MAX_EVENTS events).
int pe_run(const pe_config *cfg, const pe_op *ops, int nops, pe_result *res, pe_report *rep);

#endif
