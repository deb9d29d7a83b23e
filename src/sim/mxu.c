// The fast timing model of one MXU: closed-form rules for the three
// dataflows, exact against the processing-element model in pe.c
// (docs/timing.md explains why).
#include "sim/mxu.h"

#include <assert.h>

#include "sim/chip.h"

_Static_assert((int)MXU_WS == (int)DATAFLOW_WS && (int)MXU_OS == (int)DATAFLOW_OS &&
                   (int)MXU_IS == (int)DATAFLOW_IS,
               "mxu_dataflow follows chip_dataflow");

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

void mxu_timing_init(mxu_timing *t, int rows, int cols, int load_cycles) {
  *t = (mxu_timing){0};
  t->rows = rows;
  t->cols = cols;
  t->load_cycles = load_cycles < rows ? rows : load_cycles;
  t->dataflow = MXU_WS;
  t->preload = true;
}

void mxu_timing_set_dataflow(mxu_timing *t, mxu_dataflow df, bool preload) {
  t->dataflow = df;
  t->preload = preload;
}

uint64_t mxu_timing_load_tile(mxu_timing *t, uint64_t ready, int k, int n) {
  assert(k >= 1 && n >= 1);
  if (t->shadow_pending) return UINT64_MAX; // the previous tile was never used
  uint64_t start = umax(ready, t->last_start);
  if (t->dataflow == MXU_WS) {
    // With in-order issue, load_free and shadow_free are never later than
    // last_start (the pass that took the previous tile started after its load
    // and before this load); they are kept so the rule reads like the hardware.
    start = umax(start, umax(t->load_free, t->shadow_free));
    if (!t->preload) start = umax(start, t->drained); // one tile: the array must be empty
    t->load_free = start + (uint64_t)t->load_cycles;
    t->shadow_ready = start + (uint64_t)t->load_cycles;
    t->shadow_free = UINT64_MAX; // until a pass takes the tile
  }
  t->tile_k = k, t->tile_n = n;
  t->shadow_pending = true;
  t->last_start = start;
  return start;
}

uint64_t mxu_timing_load(mxu_timing *t, uint64_t ready) {
  return mxu_timing_load_tile(t, ready, t->rows, t->cols);
}

uint64_t mxu_timing_load_done(const mxu_timing *t, uint64_t start) {
  if (t->dataflow != MXU_WS) return start + 1;
  return start + (uint64_t)t->load_cycles + (uint64_t)t->cols - 1;
}

// ws: one pass streams m rows through the tile.
static void pass_ws(mxu_timing *t, uint64_t lo, int m, uint64_t *start, uint64_t *done) {
  uint64_t s = umax(lo, t->array_free);
  t->weight_wait = 0;
  if (t->shadow_pending) { // the switch travels with the first row
    uint64_t s2 = umax(s, t->shadow_ready);
    t->weight_wait = s2 - s;
    s = s2;
    t->shadow_free = s;
  }
  t->array_free = s + (uint64_t)m;
  *start = s;
  *done = s + (uint64_t)m + (uint64_t)t->rows + (uint64_t)t->cols - 2;
}

// os: folds of up to R output rows, each streaming k elements of both
// operands. Fold f starts at s + f * P: with preloading, P = max(k, R): the
// feeders take k cycles and the R results of a column leave on its bus one
// per cycle; without, a fold waits for the previous one to drain.
static void pass_os(mxu_timing *t, uint64_t lo, int m, int k, uint64_t *start, uint64_t *done) {
  uint64_t R = (uint64_t)t->rows, C = (uint64_t)t->cols, K = (uint64_t)k;
  uint64_t folds = ((uint64_t)m + R - 1) / R, s;
  if (t->preload) // the first results of this fold come k - 1 cycles after its start
    s = umax(umax(lo, t->array_free), t->bus_free > K ? t->bus_free - K : 0);
  else
    s = umax(lo, t->drained);
  uint64_t period = t->preload ? umax(K, R) : K + R + C - 2;
  uint64_t last = s + (folds - 1) * period;
  t->array_free = last + K;
  t->bus_free = last + K + R;
  t->weight_wait = 0;
  *start = s;
  *done = last + K + R + C - 2;
}

// is: folds of up to C input rows. Each fold shifts its input block into the
// PEs (R cycles, into the shadow registers while the previous fold streams if
// preloading), then streams the n weight columns. Block f + 1 may start when
// the stream of fold f has taken block f, so fold f + 1 streams
// max(n, R) cycles after fold f; without preloading, n + 2R + C - 2.
static void pass_is(mxu_timing *t, uint64_t lo, int m, int n, uint64_t *start, uint64_t *done) {
  uint64_t R = (uint64_t)t->rows, C = (uint64_t)t->cols, N = (uint64_t)n;
  uint64_t folds = ((uint64_t)m + C - 1) / C;
  uint64_t b = umax(lo, t->preload ? t->block_free : t->drained);
  uint64_t s0 = umax(b + R, t->stream_free);
  uint64_t period = t->preload ? umax(N, R) : N + 2 * R + C - 2;
  uint64_t last = s0 + (folds - 1) * period;
  t->block_free = last;
  t->stream_free = last + N;
  t->weight_wait = 0;
  *start = b;
  *done = last + N + R + C - 2;
}

bool mxu_timing_pass(mxu_timing *t, uint64_t ready, int m, uint64_t *start, uint64_t *done) {
  if (m < 1 || (!t->shadow_pending && !t->have_weights)) return false;
  uint64_t lo = umax(ready, t->last_start);
  if (t->dataflow != MXU_WS && t->shadow_pending) t->act_k = t->tile_k, t->act_n = t->tile_n;
  switch (t->dataflow) {
  case MXU_WS: pass_ws(t, lo, m, start, done); break;
  case MXU_OS: pass_os(t, lo, m, t->act_k, start, done); break;
  case MXU_IS: pass_is(t, lo, m, t->act_n, start, done); break;
  }
  t->shadow_pending = false;
  t->have_weights = true;
  t->last_start = *start;
  t->drained = umax(t->drained, *done);
  return true;
}
