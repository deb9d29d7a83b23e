// The fast timing model of one MXU: closed-form rules, exact against the
// processing-element model in pe.c (docs/timing.md explains why).
#include "sim/mxu.h"

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

void mxu_timing_init(mxu_timing *t, int rows, int cols, int load_cycles) {
  *t = (mxu_timing){0};
  t->rows = rows;
  t->cols = cols;
  t->load_cycles = load_cycles < rows ? rows : load_cycles;
}

uint64_t mxu_timing_load(mxu_timing *t, uint64_t ready) {
  if (t->shadow_pending) return UINT64_MAX; // the previous tile was never used
  // With in-order issue, load_free and shadow_free are never later than
  // last_start (the pass that took the previous tile started after its load
  // and before this load); they are kept so the rule reads like the hardware.
  uint64_t start = umax(umax(ready, t->last_start), umax(t->load_free, t->shadow_free));
  t->load_free = start + (uint64_t)t->load_cycles;
  t->shadow_ready = start + (uint64_t)t->load_cycles;
  t->shadow_free = UINT64_MAX; // until a pass takes the tile
  t->shadow_pending = true;
  t->last_start = start;
  return start;
}

uint64_t mxu_timing_load_done(const mxu_timing *t, uint64_t start) {
  return start + (uint64_t)t->load_cycles + (uint64_t)t->cols - 1;
}

bool mxu_timing_pass(mxu_timing *t, uint64_t ready, int m, uint64_t *start, uint64_t *done) {
  if (m < 1 || (!t->shadow_pending && !t->have_weights)) return false;
  uint64_t s = umax(umax(ready, t->last_start), t->array_free);
  if (t->shadow_pending) { // the switch travels with the first row
    s = umax(s, t->shadow_ready);
    t->shadow_pending = false;
    t->shadow_free = s;
    t->have_weights = true;
  }
  t->array_free = s + (uint64_t)m;
  t->last_start = s;
  *start = s;
  *done = s + (uint64_t)m + (uint64_t)t->rows + (uint64_t)t->cols - 2;
  return true;
}
