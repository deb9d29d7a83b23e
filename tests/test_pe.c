// The fast MXU timing model (mxu.c) and the MXU arithmetic (numerics.c)
// against the processing-element model (pe.c), in the three dataflows (ws, os,
// is) with and without preloading: every start and done cycle of every op and
// every accumulator bit, on directed and randomised op sequences. The
// readiness rules are also shown tight: making any event that waited for the
// hardware (an op's start, an os fold, an is input block or stream) happen one
// cycle earlier makes the PE model report a register hazard.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim/mxu.h"
#include "sim/numerics.h"
#include "testlib.h"

#define MAX_OPS 10
#define MAX_M 64

// One test case: an array, an op sequence and the data the ops point at.
typedef struct {
  int R, C, L;              // L: load_cycles as given to both models
  mxu_dataflow df;
  bool no_preload;
  pe_dtype dt;
  int nops, acc_rows;
  pe_op ops[MAX_OPS];
  void *data[MAX_OPS];      // tile or lhs of each op
  void *acc0;               // initial accumulators
} tcase;

typedef struct {
  pe_result res[MAX_OPS];
  pe_report rep;
  void *acc;
} outcome;

static size_t esize(pe_dtype dt) { return dt == PE_BF16 ? 2 : 1; }
static size_t acc_bytes(const tcase *tc) { return (size_t)tc->acc_rows * (size_t)tc->C * 4; }

static int64_t rnd(int64_t lo, int64_t hi) { // inclusive
  return lo + (int64_t)(test_rand() % (uint64_t)(hi - lo + 1));
}

// ---------------------------------------------------------------- values

static int special_pct; // percent of inf/NaN among bf16 values of this case

static uint16_t rand_bf16(void) {
  uint16_t sign = (uint16_t)((test_rand() & 1) << 15);
  uint16_t mant = (uint16_t)(test_rand() & 0x7f);
  int kind = (int)rnd(0, 99);
  if (kind < 8) return sign;                                         // +-0
  if (kind < 11) return (uint16_t)(sign | (mant ? mant : 1));        // subnormal
  if (kind < 11 + special_pct) return (uint16_t)(sign | 0x7f80 | (test_rand() & 1 ? mant : 0)); // inf, NaN
  if (kind < 30) return (uint16_t)(sign | rnd(1, 254) << 7 | mant);  // any exponent
  if (kind < 36) return (uint16_t)(sign | rnd(1, 12) << 7 | mant);   // tiny: products flush
  return (uint16_t)(sign | rnd(119, 135) << 7 | mant);               // ordinary magnitudes
}

static int8_t rand_i8(void) {
  int kind = (int)rnd(0, 9);
  if (kind == 0) return -128;
  if (kind == 1) return 127;
  if (kind == 2) return 0;
  return (int8_t)rnd(-128, 127);
}

static void fill(pe_dtype dt, void *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (dt == PE_BF16) ((uint16_t *)p)[i] = rand_bf16();
    else ((int8_t *)p)[i] = rand_i8();
}

static void fill_acc(const tcase *tc, void *acc) {
  size_t n = (size_t)tc->acc_rows * (size_t)tc->C;
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)test_rand();
    if (tc->dt == PE_BF16 && test_rand() % 4) u = num_bits(num_bf16_to_f32(rand_bf16()));
    memcpy((char *)acc + 4 * i, &u, 4);
  }
}

// ---------------------------------------------------------------- ops

static void add_load(tcase *tc, uint64_t ready, int k, int n) {
  pe_op *o = &tc->ops[tc->nops];
  size_t stride = (size_t)n + (size_t)rnd(0, 2);
  void *w = malloc((size_t)k * stride * esize(tc->dt));
  fill(tc->dt, w, (size_t)k * stride);
  *o = (pe_op){.kind = PE_LOAD, .ready = ready, .w = w, .k = k, .n = n, .w_stride = stride};
  tc->data[tc->nops++] = w;
}

// lhs rows are allocated with R elements (enough for any tile).
static void add_pass(tcase *tc, uint64_t ready, int m, int dst, bool accumulate) {
  pe_op *o = &tc->ops[tc->nops];
  size_t stride = (size_t)tc->R + (size_t)rnd(0, 1);
  void *x = malloc((size_t)m * stride * esize(tc->dt));
  fill(tc->dt, x, (size_t)m * stride);
  *o = (pe_op){.kind = PE_PASS, .ready = ready, .lhs = x, .lhs_stride = stride, .m = m,
               .dst = dst, .accumulate = accumulate};
  tc->data[tc->nops++] = x;
}

static void tcase_init(tcase *tc, int R, int C, int L, pe_dtype dt) {
  memset(tc, 0, sizeof *tc);
  tc->R = R, tc->C = C, tc->L = L, tc->dt = dt, tc->df = MXU_WS;
  tc->acc_rows = MAX_M + 8;
  tc->acc0 = malloc(acc_bytes(tc));
  fill_acc(tc, tc->acc0);
}

static void tcase_free(tcase *tc) {
  for (int i = 0; i < tc->nops; i++) free(tc->data[i]);
  free(tc->acc0);
}

// ---------------------------------------------------------------- models

static void run_pe_ev(const tcase *tc, int force_op, int force_ev, uint64_t force_at, outcome *out) {
  out->acc = malloc(acc_bytes(tc));
  memcpy(out->acc, tc->acc0, acc_bytes(tc));
  pe_config cfg = {.rows = tc->R, .cols = tc->C, .load_cycles = tc->L, .dataflow = tc->df,
                   .no_preload = tc->no_preload, .dtype = tc->dt, .acc = out->acc, .acc_rows = tc->acc_rows,
                   .force = force_op >= 0, .force_op = force_op, .force_ev = force_ev, .force_at = force_at};
  int rc = pe_run(&cfg, tc->ops, tc->nops, out->res, &out->rep);
  CHECK(rc == 0, "pe_run rejected the case");
}

static void run_pe(const tcase *tc, int force_op, uint64_t force_at, outcome *out) {
  run_pe_ev(tc, force_op, 0, force_at, out);
}

// The simulator's view: mxu_timing_* for cycles, num_mxu_pass_* for values.
static void run_fast(const tcase *tc, outcome *out) {
  out->acc = malloc(acc_bytes(tc));
  memcpy(out->acc, tc->acc0, acc_bytes(tc));
  memset(&out->rep, 0, sizeof out->rep);
  mxu_timing mt;
  mxu_timing_init(&mt, tc->R, tc->C, tc->L);
  mxu_timing_set_dataflow(&mt, tc->df, !tc->no_preload);
  const pe_op *tile = NULL;
  bool stop = false;
  for (int j = 0; j < tc->nops; j++) {
    const pe_op *o = &tc->ops[j];
    pe_result *r = &out->res[j];
    *r = (pe_result){0};
    if (stop) continue;
    r->ran = true;
    if (o->kind == PE_LOAD) {
      uint64_t st = mxu_timing_load_tile(&mt, o->ready, o->k, o->n);
      if (st == UINT64_MAX) { r->trap = stop = true; continue; }
      r->start = st, r->done = mxu_timing_load_done(&mt, st);
      tile = o;
      continue;
    }
    if (!mxu_timing_pass(&mt, o->ready, o->m, &r->start, &r->done)) { r->trap = stop = true; continue; }
    size_t C = (size_t)tc->C;
    if (tc->dt == PE_BF16)
      num_mxu_pass_bf16((float *)out->acc + (size_t)o->dst * C, C, o->lhs, o->lhs_stride, tile->w,
                        tile->w_stride, o->m, tile->k, tile->n, o->accumulate);
    else
      num_mxu_pass_i8((int32_t *)out->acc + (size_t)o->dst * C, C, o->lhs, o->lhs_stride, tile->w,
                      tile->w_stride, o->m, tile->k, tile->n, o->accumulate);
  }
}

static const char *df_name(mxu_dataflow df) { return df == MXU_WS ? "ws" : df == MXU_OS ? "os" : "is"; }

static void describe(const tcase *tc, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s%s %dx%d L=%d %s:", df_name(tc->df), tc->no_preload ? " no-preload" : "", tc->R,
                   tc->C, tc->L, tc->dt == PE_BF16 ? "bf16" : "int8");
  for (int j = 0; j < tc->nops && n > 0 && (size_t)n < len; j++) {
    const pe_op *o = &tc->ops[j];
    if (o->kind == PE_LOAD)
      n += snprintf(buf + n, len - (size_t)n, " ld(k%d n%d r%" PRIu64 ")", o->k, o->n, o->ready);
    else
      n += snprintf(buf + n, len - (size_t)n, " mm(m%d d%d%s r%" PRIu64 ")", o->m, o->dst,
                    o->accumulate ? " acc" : "", o->ready);
  }
}

// Compares the two models on a case; returns the number of differences.
static int compare(const tcase *tc, const char *name) {
  outcome pe, fast;
  int before = test_failures;
  run_pe(tc, -1, 0, &pe);
  run_fast(tc, &fast);
  char what[600];
  describe(tc, what, sizeof what);
  CHECK(pe.rep.hazards == 0, "%s: %s: %d hazards, first %s", name, what, pe.rep.hazards, pe.rep.first);
  for (int j = 0; j < tc->nops; j++) {
    const pe_result *a = &pe.res[j], *b = &fast.res[j];
    CHECK(a->ran == b->ran && a->trap == b->trap, "%s: %s: op %d ran/trap pe %d/%d fast %d/%d", name,
          what, j, a->ran, a->trap, b->ran, b->trap);
    if (!a->ran || a->trap) continue;
    CHECK(a->start == b->start, "%s: %s: op %d start pe %" PRIu64 " fast %" PRIu64, name, what, j,
          a->start, b->start);
    CHECK(a->done == b->done, "%s: %s: op %d done pe %" PRIu64 " fast %" PRIu64, name, what, j,
          a->done, b->done);
  }
  size_t n = (size_t)tc->acc_rows * (size_t)tc->C;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t x, y;
    memcpy(&x, (char *)pe.acc + 4 * i, 4);
    memcpy(&y, (char *)fast.acc + 4 * i, 4);
    if (x != y && bad++ < 3)
      CHECK(x == y, "%s: %s: acc[%zu][%zu] pe 0x%08x fast 0x%08x", name, what, i / (size_t)tc->C,
            i % (size_t)tc->C, x, y);
  }
  CHECK(bad == 0, "%s: %d accumulator words differ", name, bad);
  free(pe.acc);
  free(fast.acc);
  return test_failures - before;
}

// Makes event e of op j happen one cycle before the PE model would and
// expects a hazard. Only meaningful when the event waited for the hardware:
// not for its ready time, the op before it or its own previous event. Without
// preloading, a fold that waits for the array to drain follows a policy, not
// a hazard (SCALE-Sim's assumption), so those waits are not forced.
static int tight_checks;
static int waited[3][4]; // per dataflow: ws passes for the array, for their tile, loads; os folds;
                         // is input blocks, streams
// A pass with many folds has many events; three of them (the first, the
// last and one between) are forced, which keeps the test fast.
static void check_tight(const tcase *tc, const pe_result *res, int j, const char *name) {
  if (!res[j].ran || res[j].trap) return;
  const pe_op *o = &tc->ops[j];
  int mid = res[j].nev > 2 ? (int)rnd(1, res[j].nev - 2) : 0;
  for (int e = 0; e < res[j].nev; e++) {
    if (e != 0 && e != res[j].nev - 1 && e != mid && !(tc->df == MXU_IS && e == 1)) continue;
    uint64_t floor;
    if (e == 0) {
      floor = o->ready;
      if (j > 0 && res[j - 1].start > floor) floor = res[j - 1].start;
    } else {
      floor = res[j].ev[tc->df == MXU_IS && e % 2 == 0 ? e - 2 : e - 1];
    }
    if (res[j].ev[e] <= floor) continue;
    int kind;
    if (tc->df == MXU_WS) {
      if (o->kind == PE_LOAD) kind = 2;
      else if (j > 0 && tc->ops[j - 1].kind == PE_LOAD &&
               res[j].start == res[j - 1].start + (uint64_t)(tc->L > tc->R ? tc->L : tc->R))
        kind = 1;
      else kind = 0;
      if (tc->no_preload && kind == 2) continue; // waits for the drain
    } else if (tc->df == MXU_OS) {
      kind = 0;
      if (tc->no_preload) continue;
    } else {
      kind = e % 2;
      if (tc->no_preload && kind == 0) continue;
    }
    waited[tc->df][kind]++;
    outcome early;
    run_pe_ev(tc, j, e, res[j].ev[e] - 1, &early);
    char what[600];
    describe(tc, what, sizeof what);
    CHECK(early.rep.hazards > 0, "%s: %s: op %d event %d forced to %" PRIu64 " gives no hazard", name, what, j, e,
          res[j].ev[e] - 1);
    tight_checks++;
    free(early.acc);
  }
}

// ---------------------------------------------------------------- directed

static void directed_single(void) {
  int dims[][2] = {{2, 2}, {4, 4}, {8, 8}, {3, 7}, {16, 5}, {1, 1}, {16, 16}};
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
    for (int m = 1; m <= 40; m += 13) {
      int R = dims[d][0], C = dims[d][1];
      tcase tc;
      tcase_init(&tc, R, C, R, PE_BF16);
      add_load(&tc, 0, R, C);
      add_pass(&tc, 0, m, 3, false);
      compare(&tc, "single pass");
      outcome pe;
      run_pe(&tc, -1, 0, &pe);
      CHECK(pe.res[0].start == 0 && pe.res[0].done == (uint64_t)(R + C - 1), "%dx%d load %" PRIu64 "..%" PRIu64,
            R, C, pe.res[0].start, pe.res[0].done);
      CHECK(pe.res[1].start == (uint64_t)R, "%dx%d pass waits for the tile: start %" PRIu64, R, C,
            pe.res[1].start);
      CHECK(pe.res[1].done - pe.res[1].start == (uint64_t)(m + R + C - 2), "%dx%d m=%d pass takes %" PRIu64,
            R, C, m, pe.res[1].done - pe.res[1].start);
      free(pe.acc);
      tcase_free(&tc);
    }
}

static void directed_back_to_back(void) {
  for (int R = 2; R <= 12; R += 5)
    for (int C = 2; C <= 12; C += 5) {
      tcase tc;
      tcase_init(&tc, R, C, R, PE_INT8);
      add_load(&tc, 0, R, C);
      int ms[] = {7, 1, 30, 2, 64};
      for (int i = 0; i < 5; i++) add_pass(&tc, 0, ms[i], i * 2, i > 0);
      compare(&tc, "back to back");
      outcome pe;
      run_pe(&tc, -1, 0, &pe);
      uint64_t t = pe.res[1].start;
      for (int i = 0; i < 5; i++) {
        CHECK(pe.res[1 + i].start == t, "%dx%d pass %d starts %" PRIu64 " want %" PRIu64, R, C, i,
              pe.res[1 + i].start, t);
        t += (uint64_t)ms[i];
      }
      // Only one fill and drain is exposed after the last row enters.
      CHECK(pe.res[5].done == t + (uint64_t)(R + C - 2), "%dx%d last done %" PRIu64, R, C, pe.res[5].done);
      free(pe.acc);
      tcase_free(&tc);
    }
}

// ld A; mm; ld B; mm: B's load runs under the first pass. With m >= R nothing
// is exposed; with m = R - 1 exactly one cycle is.
static void directed_double_buffer(void) {
  for (int R = 2; R <= 16; R += 7)
    for (int C = 2; C <= 16; C += 7)
      for (int extra = -1; extra <= 3; extra++) {
        int m = R + extra;
        tcase tc;
        tcase_init(&tc, R, C, R, PE_BF16);
        add_load(&tc, 0, R, C);
        add_pass(&tc, 0, m, 0, false);
        add_load(&tc, 0, R - 1, C - 1);
        add_pass(&tc, 0, m, 0, true);
        compare(&tc, "double buffer");
        outcome pe;
        run_pe(&tc, -1, 0, &pe);
        uint64_t p1 = pe.res[1].start;
        CHECK(pe.res[2].start == p1, "%dx%d load B starts %" PRIu64 " with the pass at %" PRIu64, R, C,
              pe.res[2].start, p1);
        uint64_t want = p1 + (uint64_t)m + (m < R ? 1u : 0u);
        CHECK(pe.res[3].start == want, "%dx%d m=%d second pass %" PRIu64 " want %" PRIu64, R, C, m,
              pe.res[3].start, want);
        free(pe.acc);
        tcase_free(&tc);
      }
}

// A load ready long before the pass that takes the previous tile starts at
// that pass's first cycle, in the very cycle PE(0,0) switches. One cycle
// earlier (forced, ahead of the pass) the shift would overwrite the shadow
// tile before PE(0,0) reads it.
static void directed_load_after_pass(void) {
  for (int R = 2; R <= 9; R += 7)
    for (int C = 2; C <= 9; C += 7) {
      tcase tc;
      tcase_init(&tc, R, C, R, PE_INT8);
      add_load(&tc, 0, R, C);
      add_pass(&tc, 50, 5, 0, false); // late: the tile is ready at R
      add_load(&tc, 0, R, C);
      add_pass(&tc, 0, 5, 8, false);
      compare(&tc, "load after pass");
      outcome pe, early;
      run_pe(&tc, -1, 0, &pe);
      CHECK(pe.res[1].start == 50 && pe.res[2].start == 50, "%dx%d pass %" PRIu64 " load %" PRIu64, R, C,
            pe.res[1].start, pe.res[2].start);
      CHECK(pe.res[3].start == 50 + (uint64_t)(R > 5 ? R : 5), "%dx%d next pass %" PRIu64, R, C,
            pe.res[3].start);
      run_pe(&tc, 2, 49, &early);
      CHECK(early.rep.hazards > 0, "%dx%d load one cycle before the switch is not caught", R, C);
      free(pe.acc);
      free(early.acc);
      tcase_free(&tc);
    }
}

static void directed_traps(void) {
  tcase tc;
  tcase_init(&tc, 4, 4, 4, PE_BF16);
  add_pass(&tc, 0, 3, 0, false);
  add_load(&tc, 0, 4, 4);
  compare(&tc, "pass without a tile");
  tcase_free(&tc);

  tcase_init(&tc, 4, 3, 4, PE_INT8);
  add_load(&tc, 0, 4, 3);
  add_pass(&tc, 0, 3, 0, false);
  add_load(&tc, 0, 2, 3);
  add_load(&tc, 0, 4, 3);
  add_pass(&tc, 0, 3, 0, false);
  compare(&tc, "two loads without a pass");
  outcome pe;
  run_pe(&tc, -1, 0, &pe);
  CHECK(pe.res[3].trap && !pe.res[4].ran, "second load traps, the rest does not run");
  free(pe.acc);
  tcase_free(&tc);
}

// Numbers the fast model could get wrong only through the order of the sums:
// deep arrays with several 32-row slices, and load_cycles above R.
static void directed_deep_and_slow(void) {
  int shapes[][3] = {{33, 2, 33}, {64, 3, 64}, {70, 2, 70}, {40, 4, 45}, {8, 8, 12}, {5, 3, 0}, {6, 6, 2}};
  for (size_t d = 0; d < sizeof shapes / sizeof shapes[0]; d++) {
    int R = shapes[d][0], C = shapes[d][1];
    tcase tc;
    tcase_init(&tc, R, C, shapes[d][2], PE_BF16);
    add_load(&tc, 0, R, C);
    add_pass(&tc, 0, 9, 0, false);
    add_load(&tc, 0, R - 1, C);
    add_pass(&tc, 3, 2, 4, true);
    add_load(&tc, 0, R / 2 + 1, C);
    add_pass(&tc, 0, 20, 1, true);
    compare(&tc, "deep or slow load");
    tcase_free(&tc);
  }
}

// The worked example of docs/timing.md.
static void directed_doc_example(void) {
  tcase tc;
  tcase_init(&tc, 4, 4, 4, PE_BF16);
  add_load(&tc, 0, 4, 4);
  add_pass(&tc, 0, 8, 0, false);
  add_load(&tc, 0, 4, 4);
  add_pass(&tc, 0, 8, 0, true);
  compare(&tc, "docs example");
  outcome pe;
  run_pe(&tc, -1, 0, &pe);
  uint64_t want[4][2] = {{0, 7}, {4, 18}, {4, 11}, {12, 26}};
  for (int j = 0; j < 4; j++)
    CHECK(pe.res[j].start == want[j][0] && pe.res[j].done == want[j][1],
          "docs example op %d: %" PRIu64 "..%" PRIu64, j, pe.res[j].start, pe.res[j].done);
  free(pe.acc);
  tcase_free(&tc);
}

// ---------------------------------------------------------------- random

static void random_case(int idx) {
  tcase tc;
  int R, C, L;
  if (idx % 25 == 24) R = (int)rnd(33, 72), C = (int)rnd(1, 3); // several slices
  else R = (int)rnd(2, 16), C = (int)rnd(2, 16);
  int lk = (int)rnd(0, 9);
  L = lk < 7 ? R : lk == 7 ? R + (int)rnd(1, 6) : lk == 8 ? 0 : (int)rnd(1, R);
  pe_dtype dt = test_rand() % 2 ? PE_BF16 : PE_INT8;
  special_pct = test_rand() % 10 == 0 ? 2 : 0;
  tcase_init(&tc, R, C, L, dt);
  tc.df = idx % 4 == 1 ? MXU_OS : idx % 4 == 2 ? MXU_IS : MXU_WS; // ws half the time
  tc.no_preload = idx / 4 % 4 == 3;
  int nops = (int)rnd(1, 8);
  int ready_mode = (int)rnd(0, 2); // 0: all at once, 1: rising with gaps, 2: any order
  uint64_t ready = 0;
  bool have_tile = false, pending = false;
  for (int j = 0; j < nops; j++) {
    if (ready_mode == 1) ready += (uint64_t)rnd(0, 3 * R);
    else if (ready_mode == 2) ready = (uint64_t)rnd(0, 150);
    bool load;
    if (!have_tile) load = test_rand() % 40 != 0;                  // rarely: pass with no tile
    else if (pending) load = test_rand() % 40 == 0;                // rarely: load over a pending tile
    else load = test_rand() % 3 == 0;
    if (load) {
      int k = test_rand() % 2 ? R : (int)rnd(1, R);
      int n = test_rand() % 2 ? C : (int)rnd(1, C);
      add_load(&tc, ready, k, n);
      have_tile = pending = true;
    } else {
      int mk = (int)rnd(0, 3);
      // os folds R rows, is C rows: around one fold, and up to five
      int per = tc.df == MXU_IS ? C : R, most = tc.df == MXU_WS || 5 * per > MAX_M ? MAX_M : 5 * per;
      int m = mk == 0 ? (int)rnd(1, 4) : mk == 1 ? (int)rnd(per - 1 > 1 ? per - 1 : 1, per + 2) : (int)rnd(1, most);
      if (m > MAX_M) m = MAX_M;
      int dst = (int)rnd(0, tc.acc_rows - m);
      // is: output row c of a block leaves array column c, so only passes
      // whose rows sit at the same columns keep program order (docs/timing.md)
      if (tc.df == MXU_IS) dst = (int)rnd(0, (tc.acc_rows - m) / C) * C;
      add_pass(&tc, ready, m, dst, test_rand() % 2);
      pending = false;
    }
  }
  char name[32];
  snprintf(name, sizeof name, "random %d", idx);
  if (compare(&tc, name) == 0) {
    outcome pe;
    run_pe(&tc, -1, 0, &pe);
    for (int j = 0; j < tc.nops; j++) check_tight(&tc, pe.res, j, name);
    free(pe.acc);
  }
  tcase_free(&tc);
}

// The first pass of directed_dataflows by docs/timing.md's formulas: it starts
// at `first` and its folds start `period` cycles apart, each `span` cycles
// from its stream's start to its last result (is: a stream starts R cycles
// after its block). Without preloading every fold costs `alone`, SCALE-Sim's
// per-fold cycles: ws 2R + C + m - 2, os k + R + C - 2, is 2R + C + n - 2.
typedef struct { uint64_t folds, first, lead, period, span, alone; } fold_times;

static fold_times expected_folds(mxu_dataflow df, bool np, int R, int C, int m, int k, int n) {
  uint64_t r = (uint64_t)R, c = (uint64_t)C;
  switch (df) {
  case MXU_WS: return (fold_times){1, r, 0, (uint64_t)m, (uint64_t)m + r + c - 2, 2 * r + c + (uint64_t)m - 2};
  case MXU_OS: {
    uint64_t K = (uint64_t)k, alone = K + r + c - 2;
    return (fold_times){(uint64_t)((m + R - 1) / R), 0, 0, np ? alone : (K > r ? K : r), K + r + c - 2, alone};
  }
  default: {
    uint64_t N = (uint64_t)n, alone = N + 2 * r + c - 2;
    return (fold_times){(uint64_t)((m + C - 1) / C), 0, r, np ? alone : (N > r ? N : r), N + r + c - 2, alone};
  }
  }
}

// Each dataflow, with and without preloading: ldw, mm, ldw, mm on several
// arrays and pass sizes, the cycles of the first pass by formula, and without
// preloading the second tile's folds each SCALE-Sim's cycles after the first.
static void directed_dataflows(void) {
  int dims[][2] = {{2, 2}, {4, 4}, {3, 7}, {8, 5}, {16, 16}};
  for (int df = MXU_WS; df <= MXU_IS; df++)
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
      for (int np = 0; np < 2; np++)
        for (int m = 1; m <= 40; m += 13) {
          int R = dims[d][0], C = dims[d][1], k = R > 2 ? R - 1 : R, n = C;
          tcase tc;
          tcase_init(&tc, R, C, R, PE_BF16);
          tc.df = (mxu_dataflow)df, tc.no_preload = np;
          add_load(&tc, 0, k, n);
          add_pass(&tc, 0, m, 3, false);
          add_load(&tc, 0, k, n);
          add_pass(&tc, 0, m, 3, true);
          compare(&tc, "dataflow");
          outcome pe;
          run_pe(&tc, -1, 0, &pe);
          fold_times f = expected_folds(tc.df, np, R, C, m, k, n);
          uint64_t done = f.first + f.lead + (f.folds - 1) * f.period + f.span;
          CHECK(pe.res[1].start == f.first && pe.res[1].done == done,
                "%s%s %dx%d m=%d: first pass %" PRIu64 "..%" PRIu64 ", want %" PRIu64 "..%" PRIu64, df_name(tc.df),
                np ? " no-preload" : "", R, C, m, pe.res[1].start, pe.res[1].done, f.first, done);
          if (np)
            CHECK(pe.res[3].done - pe.res[1].done == f.folds * f.alone,
                  "%s no-preload %dx%d m=%d: second pass done %" PRIu64 " after %" PRIu64, df_name(tc.df), R, C, m,
                  pe.res[3].done, pe.res[1].done);
          free(pe.acc);
          tcase_free(&tc);
        }
}

// os and is traps: the ISA rules do not depend on the dataflow.
static void directed_dataflow_traps(void) {
  for (int df = MXU_OS; df <= MXU_IS; df++) {
    tcase tc;
    tcase_init(&tc, 4, 4, 4, PE_INT8);
    tc.df = (mxu_dataflow)df;
    add_pass(&tc, 0, 3, 0, false);
    compare(&tc, "os/is pass without a tile");
    tcase_free(&tc);
    tcase_init(&tc, 4, 3, 4, PE_BF16);
    tc.df = (mxu_dataflow)df;
    add_load(&tc, 0, 4, 3);
    add_pass(&tc, 0, 9, 0, false);
    add_load(&tc, 0, 2, 3);
    add_load(&tc, 0, 4, 3);
    compare(&tc, "os/is two loads without a pass");
    tcase_free(&tc);
  }
}

// is: a pass whose accumulator rows sit at other array columns than an
// earlier pass's can overtake it; the PE model reports it.
static void directed_is_overtake(void) {
  tcase tc;
  tcase_init(&tc, 4, 8, 4, PE_INT8);
  tc.df = MXU_IS;
  add_load(&tc, 0, 4, 1);         // one weight column: passes follow R cycles apart
  add_pass(&tc, 0, 8, 0, false);  // row 7 leaves column 7
  add_pass(&tc, 0, 1, 7, false);  // row 7 leaves column 0, 7 cycles earlier in the wave
  outcome pe;
  run_pe(&tc, -1, 0, &pe);
  CHECK(pe.rep.hazards > 0, "is: an overtaking accumulator write is not caught");
  free(pe.acc);
  tcase_free(&tc);
}

int main(void) {
  directed_single();
  directed_back_to_back();
  directed_double_buffer();
  directed_load_after_pass();
  directed_traps();
  directed_deep_and_slow();
  directed_doc_example();
  directed_dataflows();
  directed_dataflow_traps();
  directed_is_overtake();
  test_seed(0x5157011eull);
  int n = 4800;
  for (int i = 0; i < n; i++) random_case(i);
  printf("test_pe: %d random cases (half ws, a quarter each os and is; a quarter without preloading); "
         "%d events waited for the "
         "hardware and happening a cycle earlier is a hazard: ws %d passes for the array, %d for their tile, %d "
         "loads; os %d folds; is %d input blocks, %d streams\n",
         n, tight_checks, waited[0][0], waited[0][1], waited[0][2], waited[1][0], waited[2][0], waited[2][1]);
  return test_done("test_pe");
}
