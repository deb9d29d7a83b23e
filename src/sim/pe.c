// The processing-element model of one MXU in each dataflow: every register of
// an R x C array, one clock edge at a time (docs/timing.md). It exists to check
// the closed-form rules of mxu.c and the arithmetic order of numerics.c; it is
// slow (R * C work per cycle) and used by tests only.
//
// The picture, cycle t, for ws and is (one machine, two data mappings):
//   - a *stationary tile* (ws: a weight load; is: the input block of one
//     fold) that starts shifting at s spends L - R cycles fetching (is: none),
//     then shifts column c during s + L - R + c + q, q = 0..R-1: the tile's
//     row R-1-q enters the top shadow register and the rows the new tile has
//     already reached (0..q) move down one. Rows below the new tile's head
//     keep the old shadow tile;
//   - a *stream* started at t0 (ws: a pass's m input rows; is: one fold's n
//     weight columns) feeds element r of its item i into PE(r, 0) at
//     t0 + i + r; streamed operands move right one PE a cycle, partial sums
//     move down one PE a cycle, so PE(r, c) works on item i at t0 + i + r + c
//     and the bottom PE of column c writes the accumulator in that same cycle;
//   - the first item of a stream that takes a new tile carries a switch flag:
//     PE(r, c) copies shadow to active when that element arrives.
// For os, a *fold* started at t0 feeds element q of output row i into PE(i, 0)
// at t0 + i + q (from the left) and element q of weight column j into
// PE(0, j) at t0 + j + q (from the top); PE(i, j) adds their product to its
// output register at t0 + i + j + q, and after the last element puts the
// result on column j's bus, which writes one result per cycle.
// Every register carries tags (stream or tile, row or element) and every step
// checks them: a PE that switches to an incomplete or already-used shadow
// tile, a shift that overwrites a tile no stream has taken yet, a partial sum
// meeting the wrong input, two streams feeding one row, two results on one
// bus: each is a hazard, counted and described.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/mxu.h"
#include "sim/numerics.h"

typedef struct {
  int sl;                 // stationary tile that wrote it, -1: never written
  int row;                // tile row it holds
  uint16_t v;             // bf16 bits, or an int8 as its byte
  bool row_on;            // row < k: rows at or beyond k pass values through
  bool col_on;            // column < n: results written to the accumulators
  bool last;              // row == k - 1: the slice chains end here
} wreg;

typedef struct {
  // operand moving right (ws, is: streamed operand; os: input)
  bool xv, xsw;           // valid; carries the switch to the shadow tile
  int xs, xi;             // stream, item (os: element index)
  uint16_t x;
  // ws, is: partial sum moving down; os: the output register (pi: elements in)
  bool pv;
  int ps, pi;
  float run, even, odd;   // bf16: running sum, even and odd chains of the slice
  uint32_t isum;          // int8: modulo 2^32
  // os: weight moving down
  bool wv;
  int ws, wi;
  uint16_t w;
  // ws, is: stationary registers
  wreg act, sh;
  bool fresh;             // sh holds a complete tile no stream has switched to
} cell;

// A stationary tile: ws, a weight load; is, the input block of one fold.
typedef struct {
  int op;
  uint64_t start, last_shift;
  int L;                  // cycles from start to complete (L - R fetch, R shift)
  int k, n;               // rows and columns that hold data
  const void *base;       // ws: element (r, c) at off + r * stride + c;
  size_t off, stride;     // is: at off + c * stride + r
  bool transposed;
} sload;

// A stream: ws, a pass's input rows; is, one fold's weight columns; os, one fold.
typedef struct {
  int op, fold;
  uint64_t start;
  int len;                // items (ws m, is n) or elements per row (os k)
  int sl;                 // ws, is: the stationary tile it multiplies
  bool takes;             // ws, is: its first item switches to that tile
  int on;                 // is: columns of the block; os: output rows of the fold
  long arrivals, expect;  // results that reached the accumulators
  uint64_t last_write;
} stream;

typedef struct {
  const pe_config *cfg;
  const pe_op *ops;
  int nops, R, C, L;
  mxu_dataflow df;
  cell *cells;
  pe_result *res;
  pe_report *rep;
  int *tile_of;           // per pass: the load op whose tile it uses (-1: none)
  bool *takes;            // per pass: it is the first pass after that load
  int *nev;               // per op: its events (pe_result.ev)
  int *sl_of;             // ws: per load op, its stationary tile
  sload *sl;
  stream *st;
  int nsl, nst, live;     // live: streams before it no longer feed anything
  int sl_live;            // stationary tiles before it no longer shift
  int *col_done;          // per column: the stationary tile it holds complete
  uint64_t *bus_at;       // os: per column, the last cycle its bus was used
  int *writer;            // per accumulator word: the op that wrote it last (-1)
  // the sequencer
  int next;               // first op whose first event has not happened
  bool tile_pending;      // a loaded tile no pass has taken (the ISA rule)
  bool sl_pending;        // a stationary tile no stream has taken yet
  bool trapped;
  int unfinished;         // streams whose results are not all in
  uint64_t feeder_free;   // the left edge (os: and the top) takes a new stream
  uint64_t loader_free;   // the stationary shift path takes a new tile
  uint64_t bus_free;      // os: column 0's bus is free from here
  uint64_t busy_until;    // last cycle anything started may still move
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

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

static const pe_op *tile_op(const pe_sim *s, int op) { return &s->ops[s->tile_of[op]]; }

static int folds(const pe_sim *s, const pe_op *o) {
  if (o->kind != PE_PASS || s->df == MXU_WS) return 1;
  int per = s->df == MXU_OS ? s->R : s->C;
  return (o->m + per - 1) / per;
}

// Adds a * b into one chain of sums in the order num_mxu_pass_* defines:
// element idx goes to the even or odd chain by its parity; the chains join
// the running sum at the end of each 32-element slice and at the last one.
static void accumulate(pe_dtype dt, int idx, bool last, uint16_t a, uint16_t b, cell *ps) {
  if (dt == PE_INT8) {
    ps->isum += (uint32_t)(i8(a) * i8(b));
    return;
  }
  float af = num_bf16_to_f32(a), bf = num_bf16_to_f32(b);
  if (idx % 2 == 0) ps->even = num_mxu_fma(af, bf, ps->even);
  else ps->odd = num_mxu_fma(af, bf, ps->odd);
  if (idx % NUM_MXU_SLICE == NUM_MXU_SLICE - 1 || last) {
    ps->run = num_mxu_add(ps->run, num_mxu_add(ps->even, ps->odd));
    ps->even = ps->odd = 0.0f;
  }
}

// A result reaches the accumulators: row, column of the accumulator block.
static void arrive(pe_sim *s, uint64_t t, int si, bool on, int row, int col, const cell *ps) {
  stream *x = &s->st[si];
  const pe_op *o = &s->ops[x->op];
  x->arrivals++;
  x->last_write = t;
  if (x->arrivals == x->expect) s->unfinished--;
  if (!on || row >= o->m) return; // (row >= m only after a hazard: a value of another tile)
  size_t idx = (size_t)(o->dst + row) * (size_t)s->C + (size_t)col;
  // Results must reach each accumulator word in program order. In is, output
  // row c of a block leaves column c, so a later pass whose rows sit at other
  // columns could overtake an earlier one (docs/timing.md).
  if (s->writer[idx] > x->op)
    hazard(s, t, "accumulator row %d column %d: op %d writes after op %d, which comes later", o->dst + row, col,
           x->op, s->writer[idx]);
  s->writer[idx] = x->op;
  if (s->cfg->dtype == PE_INT8) {
    int32_t *a = (int32_t *)s->cfg->acc + idx;
    *a = o->accumulate ? wrap_i32((uint32_t)*a + ps->isum) : wrap_i32(ps->isum);
  } else {
    float *a = (float *)s->cfg->acc + idx;
    *a = o->accumulate ? num_mxu_add(*a, ps->run) : ps->run;
  }
}

// ---------------------------------------------------------------- ws and is

// The left edge of row r at cycle t: the element of the stream whose item
// t - t0 - r exists, or an empty slot.
static void feed(pe_sim *s, int r, uint64_t t, cell *in) {
  *in = (cell){0};
  for (int i = s->live; i < s->nst; i++) {
    const stream *x = &s->st[i];
    if (t < x->start + (uint64_t)r || t >= x->start + (uint64_t)r + (uint64_t)x->len) continue;
    if (in->xv) {
      hazard(s, t, "streams of ops %d and %d both feed array row %d", s->st[in->xs].op, x->op, r);
      continue;
    }
    int item = (int)(t - x->start - (uint64_t)r);
    const pe_op *o = &s->ops[x->op], *w = tile_op(s, x->op);
    in->xv = true;
    in->xs = i;
    in->xi = item;
    in->xsw = x->takes && item == 0;
    if (r >= w->k) in->x = 0;
    else if (s->df == MXU_WS) in->x = elem(s->cfg->dtype, o->lhs, (size_t)item * o->lhs_stride + (size_t)r);
    else in->x = elem(s->cfg->dtype, w->w, (size_t)r * w->w_stride + (size_t)item);
  }
}

// One clock edge of the data path. Walking bottom-right to top-left updates
// every PE in place from its neighbours' values of the previous cycle.
static void step_stationary(pe_sim *s, uint64_t t) {
  int R = s->R, C = s->C;
  for (int r = R - 1; r >= 0; r--)
    for (int c = C - 1; c >= 0; c--) {
      cell *me = at(s, r, c), in, ps;
      if (c == 0) feed(s, r, t, &in);
      else in = *at(s, r, c - 1);
      if (r > 0) ps = *at(s, r - 1, c);
      else ps = (cell){.pv = in.xv, .ps = in.xs, .pi = in.xi}; // from +0
      if (!in.xv) {
        if (r > 0 && ps.pv) hazard(s, t, "partial sum of op %d without its input at PE(%d,%d)", s->st[ps.ps].op, r, c);
        me->xv = me->pv = false;
        continue;
      }
      int si = in.xs, l = s->st[si].sl, op = s->st[si].op;
      if (in.xsw) {
        if (!me->fresh)
          hazard(s, t, "PE(%d,%d) switches to a shadow tile that is incomplete or used (op %d)", r, c, op);
        if (me->sh.sl != l || me->sh.row != r)
          hazard(s, t, "PE(%d,%d) shadow holds the wrong tile for op %d", r, c, op);
        me->act = me->sh;
        me->fresh = false;
      }
      if (me->act.sl != l || me->act.row != r)
        hazard(s, t, "PE(%d,%d) op %d meets a stationary value of another tile", r, c, op);
      if (!ps.pv || ps.ps != si || ps.pi != in.xi)
        hazard(s, t, "PE(%d,%d) op %d: partial sum and input out of step", r, c, op);
      if (me->act.row_on) accumulate(s->cfg->dtype, r, me->act.last, in.x, me->act.v, &ps);
      me->xv = true, me->xsw = in.xsw, me->xs = si, me->xi = in.xi, me->x = in.x;
      me->pv = true, me->ps = si, me->pi = in.xi;
      me->run = ps.run, me->even = ps.even, me->odd = ps.odd, me->isum = ps.isum;
      if (r < R - 1) continue;
      const stream *x = &s->st[si];
      if (s->df == MXU_WS) arrive(s, t, si, me->act.col_on, in.xi, c, me); // input row i, column c
      else arrive(s, t, si, me->act.col_on, x->fold * C + c, in.xi, me); // block row c, weight column i
    }
}

// One clock edge of the stationary shift path: each column shifts for the
// tile whose skewed shift window covers t. Runs after the data path: a PE
// switching in this cycle has already read its shadow register's old value.
static void step_shift(pe_sim *s, uint64_t t) {
  int R = s->R, C = s->C;
  for (int c = 0; c < C; c++) {
    int l = -1, q = 0;
    for (int j = s->sl_live; j < s->nsl; j++) {
      uint64_t first = s->sl[j].start + (uint64_t)(s->sl[j].L - R) + (uint64_t)c;
      if (t < first || t >= first + (uint64_t)R) continue;
      if (l >= 0) hazard(s, t, "stationary tiles of ops %d and %d both shift column %d", s->sl[l].op, s->sl[j].op, c);
      l = j, q = (int)(t - first);
    }
    if (l < 0) continue;
    const sload *ld = &s->sl[l];
    for (int r = q; r >= 0; r--) {
      cell *me = at(s, r, c);
      if (me->fresh) hazard(s, t, "tile of op %d overwrites an unused shadow tile at PE(%d,%d)", ld->op, r, c);
      if (r > 0) {
        me->sh = at(s, r - 1, c)->sh;
        continue;
      }
      int row = R - 1 - q; // rows enter bottom first
      bool on = row < ld->k && c < ld->n;
      size_t r0 = (size_t)row, c0 = (size_t)c;
      size_t idx = ld->off + (ld->transposed ? c0 * ld->stride + r0 : r0 * ld->stride + c0);
      me->sh = (wreg){.sl = l, .row = row, .row_on = row < ld->k, .col_on = c < ld->n, .last = row == ld->k - 1,
                      .v = on ? elem(s->cfg->dtype, ld->base, idx) : 0};
    }
    if (q == R - 1) { // column complete
      for (int r = 0; r < R; r++) at(s, r, c)->fresh = true;
      s->col_done[c] = l;
      s->sl[l].last_shift = t;
    }
  }
}

// ---------------------------------------------------------------- os

// The left edge of row i (inputs) or the top of column j (weights) at cycle t.
static bool feed_os(pe_sim *s, bool left, int lane, uint64_t t, int *si, int *q, uint16_t *v) {
  bool got = false;
  for (int i = s->live; i < s->nst; i++) {
    const stream *x = &s->st[i];
    if (t < x->start + (uint64_t)lane || t >= x->start + (uint64_t)lane + (uint64_t)x->len) continue;
    if (got) {
      hazard(s, t, "folds of ops %d and %d both feed %s %d", s->st[*si].op, x->op, left ? "row" : "column", lane);
      continue;
    }
    got = true;
    *si = i;
    *q = (int)(t - x->start - (uint64_t)lane);
    const pe_op *o = &s->ops[x->op], *w = tile_op(s, x->op);
    if (left) {
      int row = x->fold * s->R + lane;
      *v = row < o->m ? elem(s->cfg->dtype, o->lhs, (size_t)row * o->lhs_stride + (size_t)*q) : 0;
    } else {
      *v = lane < w->n ? elem(s->cfg->dtype, w->w, (size_t)*q * w->w_stride + (size_t)lane) : 0;
    }
  }
  return got;
}

static void step_os(pe_sim *s, uint64_t t) {
  int R = s->R, C = s->C;
  for (int r = R - 1; r >= 0; r--)
    for (int c = C - 1; c >= 0; c--) {
      cell *me = at(s, r, c);
      bool xv, wv;
      int xs = 0, xq = 0, ws = 0, wq = 0;
      uint16_t x = 0, w = 0;
      if (c == 0) xv = feed_os(s, true, r, t, &xs, &xq, &x);
      else { const cell *l = at(s, r, c - 1); xv = l->xv, xs = l->xs, xq = l->xi, x = l->x; }
      if (r == 0) wv = feed_os(s, false, c, t, &ws, &wq, &w);
      else { const cell *u = at(s, r - 1, c); wv = u->wv, ws = u->ws, wq = u->wi, w = u->w; }
      me->xv = xv, me->xs = xs, me->xi = xq, me->x = x;
      me->wv = wv, me->ws = ws, me->wi = wq, me->w = w;
      if (!xv && !wv) continue;
      if (xv != wv || xs != ws || xq != wq) {
        hazard(s, t, "PE(%d,%d): input and weight out of step", r, c);
        continue;
      }
      const stream *st = &s->st[xs];
      if (xq == 0) {
        if (me->pv) hazard(s, t, "PE(%d,%d): a fold of op %d starts over an unfinished result", r, c, st->op);
        me->pv = true, me->ps = xs, me->pi = -1;
        me->run = me->even = me->odd = 0.0f, me->isum = 0;
      } else if (!me->pv || me->ps != xs || me->pi != xq - 1) {
        hazard(s, t, "PE(%d,%d) op %d: output register out of step", r, c, st->op);
      }
      bool on = r < st->on && c < tile_op(s, st->op)->n;
      if (on) accumulate(s->cfg->dtype, xq, xq == st->len - 1, x, w, me);
      me->pi = xq;
      if (xq < st->len - 1) continue;
      if (s->bus_at[c] == t) hazard(s, t, "two results on the bus of column %d", c);
      s->bus_at[c] = t;
      arrive(s, t, xs, on, st->fold * R + r, c, me);
      me->pv = false;
    }
}

// ---------------------------------------------------------------- sequencer

static bool drained(const pe_sim *s) { return s->unfinished == 0; }

static void new_stream(pe_sim *s, int op, int fold, uint64_t t, int len, int sl, bool takes, int on, long expect) {
  s->st[s->nst++] = (stream){.op = op, .fold = fold, .start = t, .len = len, .sl = sl, .takes = takes, .on = on,
                             .expect = expect};
  s->unfinished++;
  s->busy_until = umax(s->busy_until, t + (uint64_t)len + (uint64_t)s->R + (uint64_t)s->C);
}

static int new_sload(pe_sim *s, int op, uint64_t t, int L, int k, int n, const void *base, size_t off,
                     size_t stride, bool transposed) {
  s->sl[s->nsl] = (sload){.op = op, .start = t, .L = L, .k = k, .n = n, .base = base, .off = off, .stride = stride,
                          .transposed = transposed};
  s->busy_until = umax(s->busy_until, t + (uint64_t)L + (uint64_t)s->C);
  return s->nsl++;
}

// Event e of op j at cycle t: happens if the hardware state allows it (always,
// if forced). Returns true if it happened. A trap stops the sequence.
static bool try_event(pe_sim *s, int j, int e, uint64_t t, bool forced) {
  const pe_op *o = &s->ops[j];
  pe_result *res = &s->res[j];
  // After a trap no op starts; those already started finish.
  if (e == 0 && (s->trapped || (!forced && t < o->ready))) return false;
  int R = s->R, C = s->C;
  if (o->kind == PE_LOAD) {
    if (s->tile_pending && !forced) { // the tile loaded before was never used
      res->trap = res->ran = s->trapped = true;
      return false;
    }
    if (s->df == MXU_WS) {
      if (!forced && (t < s->loader_free || (s->cfg->no_preload && !drained(s)))) return false;
      s->sl_of[j] = new_sload(s, j, t, s->L, o->k, o->n, o->w, 0, o->w_stride, false);
      s->loader_free = t + (uint64_t)s->L;
      s->sl_pending = true;
    } else {
      res->done = t + 1; // os, is: latches which tile the passes stream
    }
    s->tile_pending = true;
  } else {
    if (s->tile_of[j] < 0) { // no tile was ever loaded
      res->trap = res->ran = s->trapped = true;
      return false;
    }
    const pe_op *w = tile_op(s, j);
    if (s->df == MXU_WS) {
      int l = s->sl_of[s->tile_of[j]];
      if (!forced && (t < s->feeder_free || (s->takes[j] && s->col_done[0] != l))) return false;
      new_stream(s, j, 0, t, o->m, l, s->takes[j], 0, (long)o->m * C);
      s->feeder_free = t + (uint64_t)o->m;
      if (s->takes[j]) s->tile_pending = s->sl_pending = false;
    } else if (s->df == MXU_OS) {
      // The fold's first result leaves on column 0's bus k - 1 cycles after it starts.
      if (!forced && (t < s->feeder_free || t + (uint64_t)w->k - 1 < s->bus_free ||
                      (s->cfg->no_preload && !drained(s))))
        return false;
      int rows = o->m - e * R < R ? o->m - e * R : R;
      new_stream(s, j, e, t, w->k, -1, false, rows, (long)R * C);
      s->feeder_free = t + (uint64_t)w->k;
      s->bus_free = t + (uint64_t)w->k - 1 + (uint64_t)R;
      if (e == 0 && s->takes[j]) s->tile_pending = false;
    } else if (e % 2 == 0) { // is: the input block of fold e / 2 starts shifting in
      int f = e / 2, cols = o->m - f * C < C ? o->m - f * C : C;
      if (!forced && (s->sl_pending || t < s->loader_free || (s->cfg->no_preload && !drained(s)))) return false;
      new_sload(s, j, t, R, w->k, cols, o->lhs, (size_t)f * (size_t)C * o->lhs_stride, o->lhs_stride, true);
      s->loader_free = t + (uint64_t)R;
      s->sl_pending = true;
      if (e == 0 && s->takes[j]) s->tile_pending = false;
    } else { // is: the fold streams the weight columns through its block
      int f = e / 2, l = s->nsl - 1;
      while (l >= 0 && !(s->sl[l].op == j && s->sl[l].off == (size_t)f * (size_t)C * o->lhs_stride)) l--;
      if (!forced && (t < s->feeder_free || s->col_done[0] != l)) return false;
      int cols = o->m - f * C < C ? o->m - f * C : C;
      new_stream(s, j, f, t, w->n, l, true, cols, (long)w->n * C);
      s->feeder_free = t + (uint64_t)w->n;
      s->sl_pending = false;
    }
  }
  if (e == 0) res->start = t, res->ran = true;
  res->ev[res->nev++] = t;
  return true;
}

static bool valid_op(const pe_sim *s, const pe_op *o, const pe_op *tile) {
  const pe_config *cfg = s->cfg;
  if (o->kind == PE_LOAD)
    return o->w && o->k >= 1 && o->k <= cfg->rows && o->n >= 1 && o->n <= cfg->cols &&
           o->w_stride >= (size_t)o->n;
  if (o->kind != PE_PASS || o->m < 1 || o->dst < 0 || o->dst > cfg->acc_rows - o->m) return false;
  if (folds(s, o) * (s->df == MXU_IS ? 2 : 1) > PE_MAX_EVENTS) return false;
  return !tile || (o->lhs && o->lhs_stride >= (size_t)tile->k);
}

int pe_run(const pe_config *cfg, const pe_op *ops, int nops, pe_result *res, pe_report *rep) {
  memset(rep, 0, sizeof *rep);
  if (cfg->rows < 1 || cfg->cols < 1 || nops < 0 || !cfg->acc || cfg->acc_rows < 0 || cfg->dataflow < MXU_WS ||
      cfg->dataflow > MXU_IS)
    return -1;
  pe_sim s = {.cfg = cfg, .ops = ops, .nops = nops, .R = cfg->rows, .C = cfg->cols, .df = cfg->dataflow,
              .res = res, .rep = rep};
  s.L = cfg->load_cycles < cfg->rows ? cfg->rows : cfg->load_cycles;
  size_t n = (size_t)nops + 1;
  s.tile_of = calloc(n, sizeof *s.tile_of);
  s.takes = calloc(n, sizeof *s.takes);
  s.nev = calloc(n, sizeof *s.nev);
  s.sl_of = calloc(n, sizeof *s.sl_of);
  s.cells = calloc((size_t)s.R * (size_t)s.C, sizeof *s.cells);
  s.col_done = calloc((size_t)s.C, sizeof *s.col_done);
  s.bus_at = calloc((size_t)s.C, sizeof *s.bus_at);
  s.writer = malloc(((size_t)cfg->acc_rows * (size_t)s.C + 1) * sizeof *s.writer);
  int rc = -1;
  if (!s.tile_of || !s.takes || !s.nev || !s.sl_of || !s.cells || !s.col_done || !s.bus_at || !s.writer) goto out;
  for (size_t i = 0; i < (size_t)cfg->acc_rows * (size_t)s.C; i++) s.writer[i] = -1;

  // Program order fixes which tile each pass uses and whether it takes it.
  int last_load = -1;
  bool used = true;
  size_t nfold = 0;
  for (int j = 0; j < nops; j++) {
    res[j] = (pe_result){0};
    if (!valid_op(&s, &ops[j], last_load >= 0 ? &ops[last_load] : NULL)) goto out;
    s.nev[j] = ops[j].kind == PE_PASS && s.df == MXU_IS ? 2 * folds(&s, &ops[j]) : folds(&s, &ops[j]);
    nfold += (size_t)folds(&s, &ops[j]);
    if (ops[j].kind == PE_LOAD) last_load = j, used = false;
    else s.tile_of[j] = last_load, s.takes[j] = !used, used = true;
  }
  s.sl = calloc(nfold + 1, sizeof *s.sl);
  s.st = calloc(nfold + 1, sizeof *s.st);
  if (!s.sl || !s.st) goto out;
  for (int i = 0; i < s.R * s.C; i++)
    s.cells[i].act.sl = s.cells[i].sh.sl = -1, s.cells[i].act.row = s.cells[i].sh.row = -1;
  for (int c = 0; c < s.C; c++) s.col_done[c] = -1, s.bus_at[c] = UINT64_MAX;
  for (int j = 0; j < nops; j++) s.sl_of[j] = -1; // a load not yet issued has no tile

  // The sequencer: ops start in order; a pass's later events follow its first
  // and come before the next pass's. A forced event (testing) happens at
  // force_at whatever the state, even ahead of ops before it, but after
  // those that can happen in the same cycle.
  uint64_t t = 0;
  int fj = cfg->force && cfg->force_op >= 0 && cfg->force_op < nops ? cfg->force_op : -1;
  int fe = fj >= 0 ? cfg->force_ev : -1;
  for (;;) {
    int cur; // the first pass whose later events are still to come
    for (;;) {
      cur = -1;
      for (int j = 0; j < nops && cur < 0; j++)
        if (res[j].nev > 0 && res[j].nev < s.nev[j]) cur = j;
      while (s.next < nops && res[s.next].nev > 0) s.next++;
      if (cur >= 0 && !(cur == fj && res[cur].nev == fe) && try_event(&s, cur, res[cur].nev, t, false)) continue;
      int j = s.next;
      if (j < nops && j != fj && (cur < 0 || ops[j].kind == PE_LOAD) && try_event(&s, j, 0, t, false)) continue;
      if (fj >= 0 && res[fj].nev == fe && t >= cfg->force_at && try_event(&s, fj, fe, t, true)) continue;
      break;
    }
    bool more = false;
    for (int j = 0; j < nops; j++) more |= (res[j].nev > 0 || !s.trapped) && res[j].nev < s.nev[j];
    if (!more && t > s.busy_until) break;
    if (more && t > s.busy_until) { // nothing moves: skip to the next start
      uint64_t wake = UINT64_MAX;
      if (s.next < nops && s.next != fj && ops[s.next].ready > t) wake = ops[s.next].ready;
      if (fj >= 0 && res[fj].nev == fe && cfg->force_at > t && cfg->force_at < wake) wake = cfg->force_at;
      if (wake == UINT64_MAX) {
        hazard(&s, t, "op %d can never start", cur >= 0 ? cur : s.next);
        break;
      }
      t = wake;
      continue;
    }
    while (s.live < s.nst && t >= s.st[s.live].start + (uint64_t)s.st[s.live].len + (uint64_t)s.R +
                                       (uint64_t)s.C)
      s.live++;
    while (s.sl_live < s.nsl && t >= s.sl[s.sl_live].start + (uint64_t)s.sl[s.sl_live].L + (uint64_t)s.C) s.sl_live++;
    if (s.df == MXU_OS) step_os(&s, t);
    else step_stationary(&s, t), step_shift(&s, t);
    t++;
  }
  rep->cycles = t;
  // Completion as the registers saw it: one past the last accumulator write
  // of a pass, one past the last shift of a ws load.
  for (int j = 0; j < nops; j++)
    if (ops[j].kind == PE_LOAD && s.df == MXU_WS && res[j].nev) res[j].done = s.sl[s.sl_of[j]].last_shift + 1;
  for (int i = 0; i < s.nst; i++) {
    const stream *x = &s.st[i];
    if (x->last_write + 1 > res[x->op].done) res[x->op].done = x->last_write + 1;
    if (x->arrivals != x->expect)
      hazard(&s, t, "op %d fold %d: %ld of %ld results reached the accumulators", x->op, x->fold, x->arrivals,
             x->expect);
  }
  for (int j = 0; j < nops; j++)
    if (ops[j].kind == PE_PASS && res[j].ran && !res[j].trap && res[j].nev < s.nev[j])
      hazard(&s, t, "op %d: %d of %d events happened", j, res[j].nev, s.nev[j]);
  rc = 0;
out:
  free(s.tile_of), free(s.takes), free(s.nev), free(s.sl_of), free(s.cells), free(s.col_done), free(s.bus_at);
  free(s.sl), free(s.st), free(s.writer);
  return rc;
}
