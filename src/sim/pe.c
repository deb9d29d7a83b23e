// The processing-element model of one weight-stationary MXU: every register of
// an R x C array, one clock edge at a time (docs/timing.md). It exists to check
// the closed-form rules of mxu.c and the arithmetic order of numerics.c; it is
// slow (R * C work per cycle) and used by tests only.
//
// The picture, cycle t:
//   - a pass started at t0 feeds element r of its row i into PE(r, 0) at
//     t0 + i + r (the skew buffer on the left edge); inputs move right one PE
//     a cycle, partial sums move down one PE a cycle, so PE(r, c) works on row
//     i at t0 + i + r + c and the bottom PE of column c writes the accumulator
//     in that same cycle when r = R - 1;
//   - a load started at s spends L - R cycles fetching, then shifts column c
//     during s + L - R + c + q, q = 0..R-1: the tile's row R-1-q enters the top
//     shadow register and the rows the new tile has already reached (0..q)
//     move down one. Rows below the new tile's head keep the old shadow tile;
//   - the first row of a pass that takes a new tile carries a switch flag:
//     PE(r, c) copies shadow to active when that element arrives.
// Every register carries tags (op index, row) and every step checks them: a
// PE that switches to an incomplete or already-used shadow tile, a shift that
// overwrites a tile no pass has taken yet, a partial sum meeting the wrong
// input, two passes feeding one row: each is a hazard, counted and described.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/mxu.h"
#include "sim/numerics.h"

typedef struct {
  int tile;               // load op that wrote it, -1: never written
  int row;                // tile row it holds
  uint16_t v;             // bf16 bits, or an int8 as its byte
  bool row_on;            // row < k: rows at or beyond k pass values through
  bool col_on;            // column < n: results written to the accumulators
  bool last;              // row == k - 1: the slice chains end here
} wreg;

typedef struct {
  // input register, moving right
  bool xv, xsw;           // valid; carries the switch to the shadow tile
  int xp, xi;             // pass op index, row of the pass
  uint16_t x;
  // partial-sum register, moving down
  bool pv;
  int pp, pi;
  float run, even, odd;   // bf16: running sum, even and odd chains of the slice
  uint32_t isum;          // int8: modulo 2^32
  // weights
  wreg act, sh;
  bool fresh;             // sh holds a complete tile no pass has switched to
} cell;

typedef struct {
  const pe_config *cfg;
  const pe_op *ops;
  int nops, R, C, L;
  cell *cells;
  pe_result *res;
  pe_report *rep;
  int *tile_of;           // per pass: the load op whose tile it uses (-1: none)
  bool *takes;            // per pass: it switches to that tile
  bool *issued;
  uint64_t *last_event;   // pass: last accumulator arrival; load: last shift
  long *arrivals;         // pass: row-column results that reached the bottom
  // the sequencer
  int *col_done;          // per column: the load whose tile it holds complete
  bool pending;           // a loaded tile no issued pass has claimed
  bool trapped;
  uint64_t feeder_free;   // the left edge takes a new pass
  uint64_t loader_free;   // the weight path takes a new load
  uint64_t busy_until;    // last cycle anything issued may still move
} pe_sim;

static void hazard(pe_sim *s, uint64_t t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void hazard(pe_sim *s, uint64_t t, const char *fmt, ...) {
  if (s->rep->hazards++) return;
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(s->rep->first, sizeof s->rep->first, "cycle %llu: %s", (unsigned long long)t, what);
}

static cell *at(pe_sim *s, int r, int c) { return &s->cells[(size_t)r * (size_t)s->C + (size_t)c]; }

static uint16_t elem(pe_dtype dt, const void *base, size_t idx) {
  if (dt == PE_BF16) return ((const uint16_t *)base)[idx];
  return (uint16_t)(uint8_t)((const int8_t *)base)[idx];
}

static int32_t i8(uint16_t v) { return (int32_t)(v & 0xffu) - (v & 0x80u ? 256 : 0); }

static int32_t wrap_i32(uint32_t u) {
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

// The left edge of row r at cycle t: the element of the pass whose row
// t - t0 - r exists, or an empty slot.
static void feed(pe_sim *s, int r, uint64_t t, cell *in) {
  *in = (cell){0};
  for (int p = 0; p < s->nops; p++) {
    const pe_op *o = &s->ops[p];
    if (o->kind != PE_PASS || !s->issued[p]) continue;
    uint64_t t0 = s->res[p].start;
    if (t < t0 + (uint64_t)r || t >= t0 + (uint64_t)r + (uint64_t)o->m) continue;
    if (in->xv) {
      hazard(s, t, "passes %d and %d both feed array row %d", in->xp, p, r);
      continue;
    }
    int i = (int)(t - t0 - (uint64_t)r);
    const pe_op *w = &s->ops[s->tile_of[p]];
    in->xv = true;
    in->xp = p;
    in->xi = i;
    in->xsw = s->takes[p] && i == 0;
    in->x = r < w->k ? elem(s->cfg->dtype, o->lhs, (size_t)i * o->lhs_stride + (size_t)r) : 0;
  }
}

static void mac(pe_sim *s, int r, cell *ps, const cell *x, const wreg *w) {
  if (!w->row_on) return; // inactive row: the partial sums pass unchanged
  if (s->cfg->dtype == PE_INT8) {
    ps->isum += (uint32_t)(i8(x->x) * i8(w->v));
    return;
  }
  float xf = num_bf16_to_f32(x->x), wf = num_bf16_to_f32(w->v);
  if (r % 2 == 0) ps->even = num_mxu_fma(xf, wf, ps->even);
  else ps->odd = num_mxu_fma(xf, wf, ps->odd);
  if (r % NUM_MXU_SLICE == NUM_MXU_SLICE - 1 || w->last) { // the slice ends here
    ps->run = num_mxu_add(ps->run, num_mxu_add(ps->even, ps->odd));
    ps->even = ps->odd = 0.0f;
  }
}

static void write_acc(pe_sim *s, uint64_t t, int c, const cell *ps, const wreg *w) {
  int p = ps->pp;
  const pe_op *o = &s->ops[p];
  s->arrivals[p]++;
  if (t > s->last_event[p]) s->last_event[p] = t;
  if (!w->col_on) return;
  size_t idx = (size_t)(o->dst + ps->pi) * (size_t)s->C + (size_t)c;
  if (s->cfg->dtype == PE_INT8) {
    int32_t *a = (int32_t *)s->cfg->acc + idx;
    *a = o->accumulate ? wrap_i32((uint32_t)*a + ps->isum) : wrap_i32(ps->isum);
  } else {
    float *a = (float *)s->cfg->acc + idx;
    *a = o->accumulate ? num_mxu_add(*a, ps->run) : ps->run;
  }
}

// One clock edge of the data path. Walking bottom-right to top-left updates
// every PE in place from its neighbours' values of the previous cycle.
static void step_array(pe_sim *s, uint64_t t) {
  int R = s->R, C = s->C;
  for (int r = R - 1; r >= 0; r--)
    for (int c = C - 1; c >= 0; c--) {
      cell *me = at(s, r, c), in, ps;
      if (c == 0) feed(s, r, t, &in);
      else in = *at(s, r, c - 1);
      if (r > 0) ps = *at(s, r - 1, c);
      else ps = (cell){.pv = in.xv, .pp = in.xp, .pi = in.xi}; // from +0
      if (!in.xv) {
        if (r > 0 && ps.pv) hazard(s, t, "partial sum of pass %d without its input at PE(%d,%d)", ps.pp, r, c);
        me->xv = me->pv = false;
        continue;
      }
      int p = in.xp;
      if (in.xsw) {
        if (!me->fresh)
          hazard(s, t, "PE(%d,%d) switches to a shadow tile that is incomplete or used (pass %d)", r, c, p);
        if (me->sh.tile != s->tile_of[p] || me->sh.row != r)
          hazard(s, t, "PE(%d,%d) shadow holds the wrong weight for pass %d", r, c, p);
        me->act = me->sh;
        me->fresh = false;
      }
      if (me->act.tile != s->tile_of[p] || me->act.row != r)
        hazard(s, t, "PE(%d,%d) pass %d meets a weight of another tile", r, c, p);
      if (!ps.pv || ps.pp != p || ps.pi != in.xi)
        hazard(s, t, "PE(%d,%d) pass %d: partial sum and input out of step", r, c, p);
      mac(s, r, &ps, &in, &me->act);
      me->xv = true, me->xsw = in.xsw, me->xp = p, me->xi = in.xi, me->x = in.x;
      me->pv = true, me->pp = p, me->pi = in.xi;
      me->run = ps.run, me->even = ps.even, me->odd = ps.odd, me->isum = ps.isum;
      if (r == R - 1) write_acc(s, t, c, me, &me->act);
    }
}

// One clock edge of the weight path: each column shifts for the load whose
// skewed shift window covers t. Runs after step_array: a PE switching in this
// cycle has already read its shadow register's old value.
static void step_weights(pe_sim *s, uint64_t t) {
  int R = s->R, C = s->C;
  for (int c = 0; c < C; c++) {
    int l = -1, q = 0;
    for (int j = 0; j < s->nops; j++) {
      if (s->ops[j].kind != PE_LOAD || !s->issued[j]) continue;
      uint64_t first = s->res[j].start + (uint64_t)(s->L - R) + (uint64_t)c;
      if (t < first || t >= first + (uint64_t)R) continue;
      if (l >= 0) hazard(s, t, "loads %d and %d both shift column %d", l, j, c);
      l = j, q = (int)(t - first);
    }
    if (l < 0) continue;
    const pe_op *o = &s->ops[l];
    for (int r = q; r >= 0; r--) {
      cell *me = at(s, r, c);
      if (me->fresh) hazard(s, t, "load %d overwrites an unused shadow tile at PE(%d,%d)", l, r, c);
      if (r > 0) {
        me->sh = at(s, r - 1, c)->sh;
        continue;
      }
      int row = R - 1 - q; // rows enter bottom first
      bool on = row < o->k && c < o->n;
      me->sh = (wreg){.tile = l, .row = row, .row_on = row < o->k, .col_on = c < o->n,
                      .last = row == o->k - 1,
                      .v = on ? elem(s->cfg->dtype, o->w, (size_t)row * o->w_stride + (size_t)c) : 0};
    }
    if (q == R - 1) { // column complete
      for (int r = 0; r < R; r++) at(s, r, c)->fresh = true;
      s->col_done[c] = l;
      s->last_event[l] = t;
    }
  }
}

// Starts op j at cycle t if the hardware state allows it (always, if forced).
// Returns true if it started.
static bool try_issue(pe_sim *s, int j, uint64_t t, bool forced) {
  const pe_op *o = &s->ops[j];
  if (s->trapped || (!forced && t < o->ready)) return false;
  uint64_t end;
  if (o->kind == PE_LOAD) {
    if (s->pending && !forced) { // the tile in the shadow registers was never used
      s->res[j].trap = s->res[j].ran = s->trapped = true;
      return false;
    }
    if (!forced && t < s->loader_free) return false;
    s->loader_free = t + (uint64_t)s->L;
    s->pending = true;
    end = t + (uint64_t)s->L + (uint64_t)s->C;
  } else {
    int tile = s->tile_of[j];
    if (tile < 0) { // no tile was ever loaded
      s->res[j].trap = s->res[j].ran = s->trapped = true;
      return false;
    }
    if (!forced && t < s->feeder_free) return false;
    // Column 0 holds the whole tile: the switch, travelling down and right
    // with the first row, then stays behind the shift in every column.
    if (!forced && s->takes[j] && s->col_done[0] != tile) return false;
    if (s->takes[j]) s->pending = false;
    s->feeder_free = t + (uint64_t)o->m;
    end = t + (uint64_t)o->m + (uint64_t)s->R + (uint64_t)s->C;
  }
  if (end > s->busy_until) s->busy_until = end;
  s->res[j].start = t, s->res[j].ran = true;
  s->issued[j] = true;
  return true;
}

static bool valid_op(const pe_config *cfg, const pe_op *o, const pe_op *tile) {
  if (o->kind == PE_LOAD)
    return o->w && o->k >= 1 && o->k <= cfg->rows && o->n >= 1 && o->n <= cfg->cols &&
           o->w_stride >= (size_t)o->n;
  if (o->kind != PE_PASS || o->m < 1 || o->dst < 0 || o->dst > cfg->acc_rows - o->m) return false;
  return !tile || (o->lhs && o->lhs_stride >= (size_t)tile->k);
}

int pe_run(const pe_config *cfg, const pe_op *ops, int nops, pe_result *res, pe_report *rep) {
  memset(rep, 0, sizeof *rep);
  if (cfg->rows < 1 || cfg->cols < 1 || nops < 0 || !cfg->acc || cfg->acc_rows < 0) return -1;
  pe_sim s = {.cfg = cfg, .ops = ops, .nops = nops, .R = cfg->rows, .C = cfg->cols,
              .res = res, .rep = rep};
  s.L = cfg->load_cycles < cfg->rows ? cfg->rows : cfg->load_cycles;
  size_t n = (size_t)nops + 1;
  s.tile_of = calloc(n, sizeof *s.tile_of);
  s.takes = calloc(n, sizeof *s.takes);
  s.issued = calloc(n, sizeof *s.issued);
  s.last_event = calloc(n, sizeof *s.last_event);
  s.arrivals = calloc(n, sizeof *s.arrivals);
  s.cells = calloc((size_t)s.R * (size_t)s.C, sizeof *s.cells);
  s.col_done = calloc((size_t)s.C, sizeof *s.col_done);
  int rc = -1;
  if (!s.tile_of || !s.takes || !s.issued || !s.last_event || !s.arrivals || !s.cells || !s.col_done)
    goto out;

  // Program order fixes which tile each pass uses and whether it switches.
  int last_load = -1;
  bool used = true;
  for (int j = 0; j < nops; j++) {
    res[j] = (pe_result){0};
    if (!valid_op(cfg, &ops[j], last_load >= 0 ? &ops[last_load] : NULL)) goto out;
    if (ops[j].kind == PE_LOAD) last_load = j, used = false;
    else s.tile_of[j] = last_load, s.takes[j] = !used, used = true;
  }
  for (int i = 0; i < s.R * s.C; i++)
    s.cells[i].act.tile = s.cells[i].sh.tile = -1, s.cells[i].act.row = s.cells[i].sh.row = -1;

  for (int c = 0; c < s.C; c++) s.col_done[c] = -1;

  // The sequencer: in order; a pass and the load after it may share a cycle.
  // A forced op (testing) starts at force_at whatever the state, even ahead of
  // ops before it, but after those that can start in the same cycle.
  int next = 0; // next op in order
  uint64_t t = 0;
  int f = cfg->force && cfg->force_op >= 0 && cfg->force_op < nops ? cfg->force_op : -1;
  for (;;) {
    for (;;) {
      while (next < nops && s.issued[next]) next++;
      if (next < nops && next != f && try_issue(&s, next, t, false)) continue;
      if (f >= 0 && !s.issued[f] && t >= cfg->force_at && try_issue(&s, f, t, true)) continue;
      break;
    }
    bool more = next < nops && !s.trapped;
    if (!more && t > s.busy_until) break;
    if (more && t > s.busy_until) { // nothing moves: skip to the next start
      uint64_t wake = next == f ? cfg->force_at : ops[next].ready;
      if (f >= 0 && !s.issued[f] && cfg->force_at < wake) wake = cfg->force_at;
      if (wake <= t) {
        hazard(&s, t, "op %d can never start", next);
        break;
      }
      t = wake;
      continue;
    }
    step_array(&s, t);
    step_weights(&s, t);
    t++;
  }
  rep->cycles = t;
  // Completion as the registers saw it: the last accumulator write of a pass,
  // the last shadow write of a load, plus one.
  for (int j = 0; j < nops; j++) {
    if (!s.issued[j]) continue;
    res[j].done = s.last_event[j] + 1;
    if (ops[j].kind == PE_PASS && s.arrivals[j] != (long)ops[j].m * s.C)
      hazard(&s, t, "pass %d: %d of %d results reached the accumulators", j, (int)s.arrivals[j],
             ops[j].m * s.C);
  }
  rc = 0;
out:
  free(s.tile_of), free(s.takes), free(s.issued), free(s.last_event), free(s.arrivals), free(s.cells);
  free(s.col_done);
  return rc;
}
