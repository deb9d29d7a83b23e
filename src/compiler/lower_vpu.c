// Lowering of the vector-unit ops: elementwise arithmetic with numpy
// broadcasting, the activations, softmax over any axis, and the channels-last
// pools. Every op streams its tensors HBM -> VMEM -> VPU -> HBM in tiles sized
// to the free VMEM, with two sets of buffers: the loads of tile i+1 are
// emitted before the vector work of tile i, and emission order is the
// schedule (the emitter adds the semaphore waits), so DMA and VPU overlap.
//
// Numerics follow ONNX Runtime's formulas in fp32, one VPU operation per
// step: softmax is exp(x - max) * (1 / sum); hardsigmoid max(0, min(1,
// alpha*x + beta)); hardswish x * hardsigmoid(x) with alpha = 1/6, beta =
// 0.5; avgpool sums the window in row-major kernel order, then divides.
#include "compiler/compiler.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define F4 4 // bytes of an f32
// A resident operand (a broadcast vector, a divisor table) may take this
// fraction of the free VMEM.
#define RESIDENT_SHARE 8

// ---------------------------------------------------------------- common

typedef struct {
  cc_lower_ctx *c;
  cc_emit *e;
  const ir_node *n;
  char where[160];
  bool own_error; // the emitter's message already names the node
  // HBM addresses of the inputs and the output as f32 tensors: the values'
  // own, or f32 copies when they hold another type (lower_typed).
  uint64_t in_addr[3], out_addr;
} lw;

static void lw_init(lw *L, cc_lower_ctx *c) {
  L->c = c, L->e = c->e, L->n = c->n, L->own_error = false;
  ir_node_where(c->n, L->where, sizeof L->where);
  for (int i = 0; i < 3; i++) L->in_addr[i] = i < c->n->nin ? cc_addr(c, c->n->in[i]) : 0;
  L->out_addr = c->n->nout ? cc_addr(c, c->n->out[0]) : 0;
}

static int lw_fail(lw *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lw_fail(lw *L, const char *fmt, ...) {
  char msg[CC_ERR_LEN - 200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!cc_emit_failed(L->e, NULL, 0)) {
    cc_emit_fail(L->e, "%s: %s", L->where, msg);
    L->own_error = true;
  }
  return -1;
}

// The layer's outcome: 0, or -1 with the emitter's first error naming the node.
static int lw_finish(lw *L, char *err, size_t errlen) {
  char msg[CC_ERR_LEN];
  if (!cc_emit_failed(L->e, msg, sizeof msg)) return 0;
  if (L->own_error) snprintf(err, errlen, "%s", msg);
  else snprintf(err, errlen, "%.200s: %.800s", L->where, msg);
  return -1;
}

static void step_boundary(lw *L);

static uint64_t vm_alloc(lw *L, uint64_t bytes, const char *what) {
  return cc_vmem_alloc(L->e, bytes ? bytes : F4, what);
}

static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
// floor(a / b) and ceil(a / b) for b > 0 and any sign of a.
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// One f32 vector operation. A single row has no stride: normalised to 0 so
// equal blocks share one descriptor.
static void vop(cc_emit *e, isa_vpu_op op, uint64_t dst, uint64_t s1, uint64_t s2, uint64_t rows,
                uint64_t cols, int64_t ds, int64_t ss1, int64_t ss2, int colstep) {
  if (rows == 1) ds = ss1 = ss2 = 0;
  cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = ds, .src1_stride = ss1, .src2_stride = ss2,
                 .src2_colstep = colstep};
  cc_vpu(e, op, DT_F32, dst, DT_F32, s1, DT_F32, s2, &b);
}

// vop with one element type for every operand (f32, or i8: a max pool's).
static void vop_dt(cc_emit *e, isa_dtype dt, isa_vpu_op op, uint64_t dst, uint64_t s1, uint64_t s2, uint64_t rows,
                   uint64_t cols, int64_t ds, int64_t ss1, int64_t ss2, int colstep) {
  if (rows == 1) ds = ss1 = ss2 = 0;
  cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = ds, .src1_stride = ss1, .src2_stride = ss2,
                 .src2_colstep = colstep};
  cc_vpu(e, op, dt, dst, dt, s1, dt, s2, &b);
}

// A contiguous block of f32 elements, rows x cols with row stride cols.
static void vflat(cc_emit *e, isa_vpu_op op, uint64_t dst, uint64_t s1, uint64_t s2, uint64_t rows,
                  uint64_t cols) {
  int64_t s = (int64_t)cols * F4;
  vop(e, op, dst, s1, s2, rows, cols, s, s, s, 1);
}

static void load(cc_emit *e, uint64_t vdst, uint64_t hsrc, uint64_t bytes) {
  cc_copy(e, SPACE_LOCAL, vdst, SPACE_HBM, hsrc, bytes);
}
static void store(cc_emit *e, uint64_t hdst, uint64_t vsrc, uint64_t bytes) {
  cc_copy(e, SPACE_HBM, hdst, SPACE_LOCAL, vsrc, bytes);
}

// Small f32 constants in VMEM (scalars the VPU broadcasts): one HBM segment,
// one DMA.
static uint64_t vconsts(lw *L, const float *v, int n) {
  uint64_t h = cc_hbm_const(L->e, v, (uint64_t)n * F4);
  uint64_t a = vm_alloc(L, (uint64_t)n * F4, "vector constants");
  if (a != UINT64_MAX) load(L->e, a, h, (uint64_t)n * F4);
  return a;
}

static int too_big(lw *L, uint64_t need) {
  return lw_fail(L, "a tile needs %" PRIu64 " bytes of VMEM, chip '%s' has %" PRIu64 " free of %" PRIu64, need,
                 L->c->chip->name, cc_vmem_free_bytes(L->e), L->c->chip->vmem_bytes);
}

// Bytes of one tile buffer when `total` bytes stream through: about a
// quarter of the tensor, so that loads, vector work and stores of successive
// tiles overlap, but at least what HBM moves in 4 latencies (DMA latency and
// dispatch stay small next to a transfer) and at most 4 times that or 256
// KiB, whichever is more.
static uint64_t tile_cap(const lw *L, uint64_t total) {
  const chip_config *ch = L->c->chip;
  double bpc = ch->hbm_bandwidth / ch->clock_hz; // HBM bytes per cycle
  uint64_t lo = (uint64_t)(bpc * 4 * (ch->hbm_latency > 16 ? ch->hbm_latency : 16));
  uint64_t hi = 4 * lo > (256u << 10) ? 4 * lo : (256u << 10);
  uint64_t cap = total / 4;
  return cap < lo ? lo : cap > hi ? hi : cap;
}

// ---------------------------------------------------------------- elementwise
//
// The output's dims are merged wherever every input allows (numpy broadcast
// strides), giving k >= 2 dims: outer dims, then a "rows" dim and a "cols"
// dim that one vector op covers, each input reading them with a row stride
// (0: broadcast) and a column step (0: one value per row, src2 only). Tiles
// are runs of whole rows, or pieces of one row when a row is too long.
// Inputs laid out like the output stream with it; broadcast inputs small
// enough stay resident in VMEM for the whole layer; others are loaded per
// row segment. Operands and results in the activation arena (chip
// vmem_activations) are read and written where they are, as the TPU's
// Activate reads and writes the Unified Buffer: no copies in or out.

enum { S_NONE, S_A, S_B, S_DST, S_CONST };
typedef struct {
  isa_vpu_op op;
  int s1, s2, k; // operands (S_*); k: constant index for S_CONST
} ew_step;

typedef struct {
  int k;
  int64_t d[IR_MAX_DIMS];
  int nin;
  uint64_t hbm[2];
  int64_t st[2][IR_MAX_DIMS]; // element strides over the merged dims
  int64_t nelem[2];
  bool full[2];   // same shape as the output
  bool alias;     // input 1 is input 0
  bool expand_a;  // input 0 is broadcast along the columns: replicate it into dst first
  bool sep_out;   // the result goes to its own buffer (not in place)
  ew_step steps[12];
  int nsteps;
  float consts[12];
  int nconsts;
} ew;

typedef struct {
  bool resident;
  bool in_arena; // vres is the value's own VMEM address in the arena
  uint64_t vres;
  uint64_t buf[2];
  uint64_t pos; // elements used in buf by earlier segments of this tile
} ew_mem;

// Element offset of input i at outer index o, row r, column c.
static int64_t ew_off(const ew *w, int i, int64_t o, int64_t r, int64_t c) {
  int k = w->k;
  int64_t off = r * w->st[i][k - 2] + c * w->st[i][k - 1];
  for (int d = k - 3; d >= 0; d--) {
    off += (o % w->d[d]) * w->st[i][d];
    o /= w->d[d];
  }
  return off;
}

typedef struct {
  int64_t g0, ng, c0, nc; // rows [g0, g0+ng) of the flattened (outer, rows), columns [c0, c0+nc)
} ew_tile;

static void ew_tile_at(int64_t t, bool colmode, int64_t tr, int64_t cw, int64_t G, int64_t cols, ew_tile *tl) {
  if (!colmode) {
    tl->g0 = t * tr, tl->ng = imin(tr, G - tl->g0), tl->c0 = 0, tl->nc = cols;
  } else {
    int64_t nch = (int64_t)cdiv((uint64_t)cols, (uint64_t)cw);
    tl->g0 = t / nch, tl->ng = 1, tl->c0 = (t % nch) * cw, tl->nc = imin(cw, cols - tl->c0);
  }
}

// VMEM of one buffer set for a tile of r rows x c columns.
static uint64_t ew_set_bytes(const ew *w, const ew_mem *m, int nin, uint64_t r, uint64_t c) {
  uint64_t b = w->sep_out ? r * c * F4 : 0;
  for (int i = 0; i < nin; i++)
    if (!m[i].resident) b += r * (w->st[i][w->k - 1] || w->full[i] ? c : 1) * F4;
  return b;
}

static int ew_lower(lw *L, ew *w, uint64_t out_hbm) {
  cc_emit *e = L->e;
  int k = w->k;
  assert(k >= 2);
  int64_t cols = w->d[k - 1], rows = w->d[k - 2], nouter = 1;
  for (int d = 0; d < k - 2; d++) nouter *= w->d[d];
  int64_t G = nouter * rows;
  if (G * cols == 0) return 0;
  uint64_t cv = w->nconsts ? vconsts(L, w->consts, w->nconsts) : 0;

  ew_mem m[2] = {{0}};
  int nin = w->alias ? 1 : w->nin;
  uint64_t free0 = cc_vmem_free_bytes(e);
  for (int i = 0; i < nin; i++) {
    uint64_t a = cc_ub_local(e, w->hbm[i]);
    if (a != UINT64_MAX) m[i].resident = m[i].in_arena = true, m[i].vres = a;
  }
  // The result in the arena: written there, unless it overlaps an operand
  // that a later step reads (the plan keeps a node's inputs and its output
  // apart, so never today).
  uint64_t out_local = cc_ub_local(e, out_hbm), out_bytes = (uint64_t)(G * cols) * F4;
  for (int i = 0; i < nin && out_local != UINT64_MAX; i++) {
    uint64_t a = cc_ub_local(e, w->hbm[i]), b = (uint64_t)w->nelem[i] * F4;
    if (a != UINT64_MAX && a < out_local + out_bytes && out_local < a + b) out_local = UINT64_MAX;
  }
  if (out_local != UINT64_MAX) w->sep_out = false;
  else if (!w->sep_out && m[w->full[0] ? 0 : 1].in_arena) w->sep_out = true; // its operand has no tile to reuse
  for (int i = 0; i < nin; i++)
    if (!m[i].resident && !w->full[i] && (uint64_t)w->nelem[i] * F4 <= free0 / RESIDENT_SHARE) {
      m[i].resident = true;
      m[i].vres = vm_alloc(L, (uint64_t)w->nelem[i] * F4, "a broadcast operand");
      if (m[i].vres != UINT64_MAX) load(e, m[i].vres, w->hbm[i], (uint64_t)w->nelem[i] * F4);
    }
  if (cc_emit_failed(e, NULL, 0)) return -1;

  // Tile: rows of the flattened (outer, rows), or a piece of one row.
  int nbuf = w->sep_out;
  for (int i = 0; i < nin; i++) nbuf += !m[i].resident;
  uint64_t slack = 2 * 64 * (uint64_t)nbuf, avail = cc_vmem_free_bytes(e);
  bool colmode = false;
  int64_t tr = 0, cw = cols;
  uint64_t cap = tile_cap(L, (uint64_t)(G * cols) * F4);
  if (!nbuf) tr = G; // nothing streams: one tile
  else if ((uint64_t)cols * F4 <= cap && avail > slack) {
    uint64_t per = ew_set_bytes(w, m, nin, 1, cols);
    tr = imin(G, imin((int64_t)((avail - slack) / (2 * per)), (int64_t)(cap / ((uint64_t)cols * F4))));
  }
  if (tr < 1) {
    colmode = true, tr = 1;
    uint64_t per = ew_set_bytes(w, m, nin, 1, 1), fixed = ew_set_bytes(w, m, nin, 1, 0);
    cw = avail > slack + 2 * fixed ? (int64_t)((avail - slack - 2 * fixed) / (2 * (per - fixed))) : 0;
    cw = imin(cw, imin(cols, (int64_t)(cap / F4)));
    if (cw < 1) return too_big(L, 2 * ew_set_bytes(w, m, nin, 1, 1) + slack);
  }
  uint64_t obuf[2] = {0, 0};
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < nin; i++)
      if (!m[i].resident)
        m[i].buf[s] = vm_alloc(L, (uint64_t)tr * (w->st[i][k - 1] || w->full[i] ? cw : 1) * F4, "an operand tile");
    if (w->sep_out) obuf[s] = vm_alloc(L, (uint64_t)tr * cw * F4, "a result tile");
  }
  if (cc_emit_failed(e, NULL, 0)) return -1;
  int dst_in = w->sep_out || out_local != UINT64_MAX ? -1 : w->full[0] ? 0 : 1;
  assert(dst_in < 0 || w->full[dst_in]);

  int64_t T = colmode ? G * (int64_t)cdiv((uint64_t)cols, (uint64_t)cw) : (int64_t)cdiv((uint64_t)G, (uint64_t)tr);
  for (int64_t t = -1; t < T; t++) {
    // Loads of tile t+1 first, then the vector work and the store of tile t.
    for (int phase = 0; phase < 2; phase++) {
      int64_t tt = phase == 0 ? t + 1 : t;
      if (tt < 0 || tt >= T) continue;
      int s = (int)(tt & 1);
      ew_tile tl;
      ew_tile_at(tt, colmode, tr, cw, G, cols, &tl);
      for (int i = 0; i < nin; i++) m[i].pos = 0;
      int64_t q = 0;
      for (int64_t g = tl.g0; g < tl.g0 + tl.ng;) {
        int64_t o = g / rows, r0 = g % rows, nr = imin(rows - r0, tl.g0 + tl.ng - g);
        uint64_t addr[2];
        int64_t stride[2];
        int cstep[2];
        for (int i = 0; i < nin; i++) {
          bool rreal = w->st[i][k - 2] != 0, creal = w->st[i][k - 1] != 0;
          if (m[i].in_arena) {
            addr[i] = m[i].vres + (uint64_t)ew_off(w, i, o, r0, tl.c0) * F4;
            stride[i] = w->st[i][k - 2] * F4, cstep[i] = creal || w->full[i];
          } else if (w->full[i]) {
            addr[i] = m[i].buf[s] + (uint64_t)q * tl.nc * F4, stride[i] = tl.nc * F4, cstep[i] = 1;
            if (phase == 0 && g == tl.g0)
              load(e, m[i].buf[s], w->hbm[i] + (uint64_t)(tl.g0 * cols + tl.c0) * F4, (uint64_t)(tl.ng * tl.nc) * F4);
          } else if (m[i].resident) {
            addr[i] = m[i].vres + (uint64_t)ew_off(w, i, o, r0, tl.c0) * F4;
            stride[i] = w->st[i][k - 2] * F4, cstep[i] = creal;
          } else {
            int64_t nrx = rreal ? nr : 1, nex = creal ? tl.nc : 1;
            addr[i] = m[i].buf[s] + m[i].pos * F4, stride[i] = rreal ? nex * F4 : 0, cstep[i] = creal;
            if (phase == 0)
              load(e, addr[i], w->hbm[i] + (uint64_t)ew_off(w, i, o, r0, tl.c0) * F4, (uint64_t)(nrx * nex) * F4);
            m[i].pos += (uint64_t)(nrx * nex);
          }
        }
        if (w->alias) addr[1] = addr[0], stride[1] = stride[0], cstep[1] = cstep[0];
        if (phase == 1) {
          uint64_t dst;
          int64_t dstr;
          if (out_local != UINT64_MAX) dst = out_local + (uint64_t)(g * cols + tl.c0) * F4, dstr = cols * F4;
          else dst = (w->sep_out ? obuf[s] : m[dst_in].buf[s]) + (uint64_t)q * tl.nc * F4, dstr = tl.nc * F4;
          if (w->expand_a) { // dst[r][c] = A[r]: a local DMA repeating each value
            uint64_t n2[2] = {(uint64_t)nr, (uint64_t)tl.nc};
            int64_t ss2[2] = {stride[0], 0}, ds2[2] = {dstr, F4};
            cc_dma_nd(e, SPACE_LOCAL, dst, SPACE_LOCAL, addr[0], F4, 2, n2, ss2, ds2);
          }
          for (int j = 0; j < w->nsteps; j++) {
            const ew_step *st = &w->steps[j];
            uint64_t a1 = st->s1 == S_A ? addr[0] : dst, a2 = 0;
            int64_t t1 = st->s1 == S_A ? stride[0] : dstr, t2 = 0;
            int c2 = 1;
            assert(st->s1 != S_A || cstep[0]);
            switch (st->s2) {
            case S_A: a2 = addr[0], t2 = stride[0], c2 = cstep[0]; break;
            case S_B: a2 = addr[1], t2 = stride[1], c2 = cstep[1]; break;
            case S_CONST: a2 = cv + (uint64_t)st->k * F4, t2 = 0, c2 = 0; break;
            default: a2 = a1, t2 = t1; break;
            }
            vop(e, st->op, dst, a1, a2, (uint64_t)nr, (uint64_t)tl.nc, dstr, t1, t2, c2);
          }
        }
        q += nr, g += nr;
      }
      if (phase == 1 && out_local == UINT64_MAX)
        store(e, out_hbm + (uint64_t)(tl.g0 * cols + tl.c0) * F4, w->sep_out ? obuf[s] : m[dst_in].buf[s],
              (uint64_t)(tl.ng * tl.nc) * F4);
    }
  }
  return 0;
}

// Broadcast strides of the inputs over the output, merged (see above).
static void ew_shape(ew *w, const ir_type *out, const ir_value *const *in, int nin) {
  int r = out->rank;
  int64_t sx[2][IR_MAX_DIMS];
  for (int i = 0; i < nin; i++) {
    const ir_type *t = &in[i]->ty;
    int off = r - t->rank;
    int64_t cs = 1;
    for (int j = r - 1; j >= 0; j--) {
      int jj = j - off;
      sx[i][j] = jj < 0 || t->dims[jj] == 1 ? 0 : cs;
      if (jj >= 0) cs *= t->dims[jj];
    }
  }
  w->k = 0;
  w->nin = nin;
  for (int j = 0; j < r; j++) {
    if (out->dims[j] == 1) continue;
    bool merge = w->k > 0;
    for (int i = 0; i < nin && merge; i++) merge = w->st[i][w->k - 1] == out->dims[j] * sx[i][j];
    if (merge) {
      w->d[w->k - 1] *= out->dims[j];
      for (int i = 0; i < nin; i++) w->st[i][w->k - 1] = sx[i][j];
    } else {
      w->d[w->k] = out->dims[j];
      for (int i = 0; i < nin; i++) w->st[i][w->k] = sx[i][j];
      w->k++;
    }
  }
  while (w->k < 2) { // at least a rows and a cols dim
    memmove(w->d + 1, w->d, sizeof w->d[0] * (size_t)w->k);
    w->d[0] = 1;
    for (int i = 0; i < nin; i++) {
      memmove(w->st[i] + 1, w->st[i], sizeof w->st[i][0] * (size_t)w->k);
      w->st[i][0] = 0;
    }
    w->k++;
  }
  for (int i = 0; i < nin; i++) {
    w->nelem[i] = ir_nelems(&in[i]->ty);
    w->full[i] = w->nelem[i] == ir_nelems(out);
  }
}

// All elements of a constant equal to one value? (*v gets it.)
static bool const_uniform(const ir_value *c, double *v) {
  if (!c->data || !ir_nelems(&c->ty)) return false;
  *v = ir_get_float(c->data, c->ty.dtype, 0);
  for (int64_t i = 1, N = ir_nelems(&c->ty); i < N; i++)
    if (ir_get_float(c->data, c->ty.dtype, i) != *v) return false;
  return true;
}

// Pow with a constant exponent the VPU has an exact op for (2, 3, 1, 0.5, -1,
// -0.5) as those ops; otherwise exp(b * log a) (NaN for a < 0, as a real
// power is). PRelu with a constant slope in [0, 1] as max(x, s*x) (exact,
// ONNX Runtime's x*s), above 1 as min; otherwise x + (min(x,0)*s - min(x,0)).
static int lower_pow_prelu(lw *L) {
  const ir_node *n = L->n;
  ew w = {0};
  const ir_value *in[2] = {n->in[0], n->in[1]};
  ew_shape(&w, &n->out[0]->ty, in, 2);
  w.hbm[0] = cc_addr(L->c, in[0]), w.hbm[1] = cc_addr(L->c, in[1]);
  w.alias = in[0] == in[1];
  w.sep_out = true;
  if (w.st[0][w.k - 1] == 0 && w.d[w.k - 1] > 1)
    return lw_fail(L, "%s with its first operand broadcast along the last dim is not supported", ir_ops[n->op].name);
  int ns = 0;
#define STEP(o, a, b, kk) (w.steps[ns++] = (ew_step){o, a, b, kk})
  double v = 0;
  bool uni = const_uniform(in[1], &v);
  w.consts[0] = 0.0f, w.nconsts = 1;
  if (n->op == IR_OP_POW && uni && v == 2) STEP(VOP_MUL, S_A, S_A, 0);
  else if (n->op == IR_OP_POW && uni && v == 3) STEP(VOP_MUL, S_A, S_A, 0), STEP(VOP_MUL, S_DST, S_A, 0);
  else if (n->op == IR_OP_POW && uni && v == 1) STEP(VOP_MOV, S_A, S_NONE, 0);
  else if (n->op == IR_OP_POW && uni && v == 0.5) STEP(VOP_SQRT, S_A, S_NONE, 0);
  else if (n->op == IR_OP_POW && uni && v == -1) STEP(VOP_RECIP, S_A, S_NONE, 0);
  else if (n->op == IR_OP_POW && uni && v == -0.5) STEP(VOP_RSQRT, S_A, S_NONE, 0);
  else if (n->op == IR_OP_POW) {
    STEP(VOP_LOG, S_A, S_NONE, 0), STEP(VOP_MUL, S_DST, S_B, 0), STEP(VOP_EXP, S_DST, S_NONE, 0);
  } else {
    bool lo = true, hi = true; // every slope in [0, 1] / >= 1
    if (!in[1]->data) lo = hi = false;
    for (int64_t i = 0, N = in[1]->data ? ir_nelems(&in[1]->ty) : 0; i < N; i++) {
      double s = ir_get_float(in[1]->data, in[1]->ty.dtype, i);
      lo &= s >= 0 && s <= 1, hi &= s >= 1;
    }
    // The importer decomposes other prelus into relu(x) + s * min(x, 0).
    if (!lo && !hi) return lw_fail(L, "prelu needs a constant slope, all in [0, 1] or all >= 1");
    STEP(VOP_MUL, S_A, S_B, 0), STEP(lo ? VOP_MAX : VOP_MIN, S_DST, S_A, 0);
  }
#undef STEP
  w.nsteps = ns;
  return ew_lower(L, &w, cc_addr(L->c, n->out[0]));
}

static int lower_binary(lw *L) {
  const ir_node *n = L->n;
  ew w = {0};
  const ir_value *in[2] = {n->in[0], n->in[1]};
  isa_vpu_op op = n->op == IR_OP_ADD   ? VOP_ADD
                  : n->op == IR_OP_SUB ? VOP_SUB
                  : n->op == IR_OP_MUL ? VOP_MUL
                  : n->op == IR_OP_MAX ? VOP_MAX
                  : n->op == IR_OP_MIN ? VOP_MIN
                                       : VOP_DIV;
  if (n->op == IR_OP_POW || n->op == IR_OP_PRELU) return lower_pow_prelu(L);
  bool commutative = op == VOP_ADD || op == VOP_MUL || op == VOP_MAX || op == VOP_MIN;
  ew_shape(&w, &n->out[0]->ty, in, 2);
  if (w.st[0][w.k - 1] == 0 && commutative) { // src1 cannot broadcast along a row: swap
    const ir_value *t = in[0];
    in[0] = in[1], in[1] = t;
    ew_shape(&w, &n->out[0]->ty, in, 2);
  }
  bool swapped = in[0] != n->in[0];
  w.hbm[0] = L->in_addr[swapped], w.hbm[1] = L->in_addr[!swapped];
  w.alias = in[0] == in[1];
  w.expand_a = w.st[0][w.k - 1] == 0;
  w.sep_out = w.expand_a || (!w.full[0] && !w.full[1]);
  w.steps[w.nsteps++] = (ew_step){op, w.expand_a ? S_DST : S_A, S_B, 0};
  return ew_lower(L, &w, L->out_addr);
}

static int lower_unary(lw *L) {
  const ir_node *n = L->n;
  ew w = {0};
  const ir_value *in = n->in[0];
  ew_shape(&w, &n->out[0]->ty, &in, 1);
  w.hbm[0] = L->in_addr[0];
  int ns = 0;
#define STEP(o, a, b, kk) (w.steps[ns++] = (ew_step){o, a, b, kk})
  switch (n->op) {
  case IR_OP_RELU: STEP(VOP_RELU, S_A, S_NONE, 0); break;
  case IR_OP_SIGMOID: STEP(VOP_SIGMOID, S_A, S_NONE, 0); break;
  case IR_OP_TANH: STEP(VOP_TANH, S_A, S_NONE, 0); break;
  case IR_OP_CLIP: {
    // min(max(x, lo), hi) as ONNX Runtime; an infinite bound is no op.
    bool lo = !(isinf(n->a.lo) && n->a.lo < 0) && !isnan(n->a.lo), hi = !(isinf(n->a.hi) && n->a.hi > 0) && !isnan(n->a.hi);
    w.consts[0] = (float)n->a.lo, w.consts[1] = (float)n->a.hi, w.nconsts = 2;
    if (lo) STEP(VOP_MAX, S_A, S_CONST, 0);
    if (hi) STEP(VOP_MIN, lo ? S_DST : S_A, S_CONST, 1);
    if (!ns) { // both bounds infinite: a copy
      cc_copy(L->e, SPACE_HBM, L->out_addr, SPACE_HBM, w.hbm[0], (uint64_t)ir_nelems(&in->ty) * F4);
      return 0;
    }
    break;
  }
  case IR_OP_HARDSIGMOID:
  case IR_OP_HARDSWISH: {
    bool hs = n->op == IR_OP_HARDSWISH;
    w.consts[0] = hs ? 1.0f / 6.0f : n->a.alpha, w.consts[1] = hs ? 0.5f : n->a.beta;
    w.consts[2] = 1.0f, w.consts[3] = 0.0f, w.nconsts = 4;
    STEP(VOP_MUL, S_A, S_CONST, 0);
    STEP(VOP_ADD, S_DST, S_CONST, 1);
    STEP(VOP_MIN, S_DST, S_CONST, 2);
    STEP(VOP_MAX, S_DST, S_CONST, 3);
    if (hs) STEP(VOP_MUL, S_DST, S_A, 0), w.sep_out = true;
    break;
  }
  case IR_OP_EXP: STEP(VOP_EXP, S_A, S_NONE, 0); break;
  case IR_OP_LOG: STEP(VOP_LOG, S_A, S_NONE, 0); break;
  case IR_OP_SQRT: STEP(VOP_SQRT, S_A, S_NONE, 0); break;
  case IR_OP_RSQRT: STEP(VOP_RSQRT, S_A, S_NONE, 0); break;
  case IR_OP_RECIPROCAL: STEP(VOP_RECIP, S_A, S_NONE, 0); break;
  case IR_OP_ERF: STEP(VOP_ERF, S_A, S_NONE, 0); break;
  case IR_OP_NEG: STEP(VOP_NEG, S_A, S_NONE, 0); break;
  case IR_OP_ABS: STEP(VOP_ABS, S_A, S_NONE, 0); break;
  case IR_OP_LEAKY_RELU: {
    // alpha in [0, 1]: max(x, alpha*x); above 1: min; negative: x + (alpha-1)*min(x, 0).
    float al = n->a.alpha;
    w.consts[0] = al, w.consts[1] = 0.0f, w.consts[2] = al - 1.0f, w.nconsts = 3;
    if (al >= 0) STEP(VOP_MUL, S_A, S_CONST, 0), STEP(al <= 1 ? VOP_MAX : VOP_MIN, S_DST, S_A, 0);
    else STEP(VOP_MIN, S_A, S_CONST, 1), STEP(VOP_MUL, S_DST, S_CONST, 2), STEP(VOP_ADD, S_DST, S_A, 0);
    w.sep_out = true;
    break;
  }
  case IR_OP_GELU:
    // ONNX Runtime: 0.5 * x * (1 + erf(x / sqrt 2)), or with tanh:
    // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
    w.consts[0] = (float)M_SQRT1_2, w.consts[1] = 1.0f, w.consts[2] = 0.5f, w.consts[3] = 0.044715f;
    w.consts[4] = (float)0.7978845608028654, w.nconsts = 5;
    if (!n->a.approx_tanh) STEP(VOP_MUL, S_A, S_CONST, 0), STEP(VOP_ERF, S_DST, S_NONE, 0);
    else
      STEP(VOP_MUL, S_A, S_A, 0), STEP(VOP_MUL, S_DST, S_A, 0), STEP(VOP_MUL, S_DST, S_CONST, 3),
          STEP(VOP_ADD, S_DST, S_A, 0), STEP(VOP_MUL, S_DST, S_CONST, 4), STEP(VOP_TANH, S_DST, S_NONE, 0);
    STEP(VOP_ADD, S_DST, S_CONST, 1), STEP(VOP_MUL, S_DST, S_A, 0), STEP(VOP_MUL, S_DST, S_CONST, 2);
    w.sep_out = true;
    break;
  default: return lw_fail(L, "internal error: not a unary op");
  }
#undef STEP
  w.nsteps = ns;
  return ew_lower(L, &w, L->out_addr);
}

// ---------------------------------------------------------------- softmax
//
// Along the last axis: rows of the tile are the softmax rows, reduced with
// rmax/rsum. Along another axis: each [L, inner] block of an outer index is
// reduced over its rows with cmax/csum, so nothing is transposed.

// softmax (log_softmax with lg) of the f32 tensor of type t at x along axis, into y (x
// itself is fine: tiles are loaded before the one before them is stored).
static int softmax_along(lw *L, const ir_type *t, int axis, uint64_t x, uint64_t y, bool lg) {
  cc_emit *e = L->e;
  int64_t outer = 1, len = t->dims[axis], inner = 1;
  for (int i = 0; i < axis; i++) outer *= t->dims[i];
  for (int i = axis + 1; i < t->rank; i++) inner *= t->dims[i];
  if (outer * len * inner == 0) return 0;
  uint64_t avail = cc_vmem_free_bytes(e), slack = 4 * 64, cap = tile_cap(L, (uint64_t)(outer * len * inner) * F4);
  uint64_t xb[2], rb[2], tb[2] = {0, 0};
  // log_softmax: (x - max) - log(sum(exp(x - max))), the exponentials in a
  // second buffer so that x - max stays.

  if (inner == 1) {
    uint64_t per = (uint64_t)len * F4 * (lg ? 2 : 1) + F4;
    int64_t tr = avail > slack ? (int64_t)((avail - slack) / (2 * per)) : 0;
    tr = imin(tr, imin(outer, imax(1, (int64_t)(cap / ((uint64_t)len * F4)))));
    if (tr < 1) return too_big(L, 2 * per + slack);
    for (int s = 0; s < 2; s++) {
      xb[s] = vm_alloc(L, (uint64_t)tr * len * F4, "a softmax tile");
      rb[s] = vm_alloc(L, (uint64_t)tr * F4, "softmax row statistics");
      if (lg) tb[s] = vm_alloc(L, (uint64_t)tr * len * F4, "log_softmax exponentials");
    }
    if (cc_emit_failed(e, NULL, 0)) return -1;
    int64_t T = (int64_t)cdiv((uint64_t)outer, (uint64_t)tr);
    int64_t rs = len * F4;
    for (int64_t i = 0; i <= T; i++) {
      if (i < T) {
        int64_t g0 = i * tr, nr = imin(tr, outer - g0);
        load(e, xb[i & 1], x + (uint64_t)(g0 * len) * F4, (uint64_t)(nr * len) * F4);
      }
      if (i == 0) continue;
      int64_t ti = i - 1, g0 = ti * tr, nr = imin(tr, outer - g0);
      uint64_t xs = xb[ti & 1], r = rb[ti & 1];
      vop(e, VOP_RMAX, r, xs, 0, (uint64_t)nr, (uint64_t)len, F4, rs, 0, 1);
      vop(e, VOP_SUB, xs, xs, r, (uint64_t)nr, (uint64_t)len, rs, rs, F4, 0);
      if (lg) {
        uint64_t ts = tb[ti & 1];
        vop(e, VOP_EXP, ts, xs, 0, (uint64_t)nr, (uint64_t)len, rs, rs, 0, 1);
        vop(e, VOP_RSUM, r, ts, 0, (uint64_t)nr, (uint64_t)len, F4, rs, 0, 1);
        vflat(e, VOP_LOG, r, r, 0, 1, (uint64_t)nr);
        vop(e, VOP_SUB, xs, xs, r, (uint64_t)nr, (uint64_t)len, rs, rs, F4, 0);
        store(e, y + (uint64_t)(g0 * len) * F4, xs, (uint64_t)(nr * len) * F4);
        continue;
      }
      vop(e, VOP_EXP, xs, xs, 0, (uint64_t)nr, (uint64_t)len, rs, rs, 0, 1);
      vop(e, VOP_RSUM, r, xs, 0, (uint64_t)nr, (uint64_t)len, F4, rs, 0, 1);
      vflat(e, VOP_RECIP, r, r, 0, 1, (uint64_t)nr);
      vop(e, VOP_MUL, xs, xs, r, (uint64_t)nr, (uint64_t)len, rs, rs, F4, 0);
      store(e, y + (uint64_t)(g0 * len) * F4, xs, (uint64_t)(nr * len) * F4);
    }
    return 0;
  }

  // Another axis: tiles of whole [len, inner] blocks, or of column pieces.
  uint64_t blk = (uint64_t)(len * inner) * F4;
  int64_t nb = 0, iw = inner;
  if (blk <= cap && avail > slack)
    nb = imin(outer, imin((int64_t)((avail - slack) / (2 * (blk * (lg ? 2 : 1) + (uint64_t)inner * F4))),
                          (int64_t)(cap / blk)));
  if (nb < 1) {
    nb = 1;
    uint64_t per = (uint64_t)len * F4 * (lg ? 2 : 1) + F4;
    iw = avail > slack ? (int64_t)((avail - slack) / (2 * per)) : 0;
    iw = imin(iw, imin(inner, imax(1, (int64_t)(cap / ((uint64_t)len * F4)))));
    if (iw < 1) return too_big(L, 2 * per + slack);
  }
  for (int s = 0; s < 2; s++) {
    xb[s] = vm_alloc(L, (uint64_t)(nb * len * iw) * F4, "a softmax tile");
    rb[s] = vm_alloc(L, (uint64_t)iw * F4, "softmax column statistics");
    if (lg) tb[s] = vm_alloc(L, (uint64_t)(len * iw) * F4, "log_softmax exponentials");
  }
  if (cc_emit_failed(e, NULL, 0)) return -1;
  int64_t nch = (int64_t)cdiv((uint64_t)inner, (uint64_t)iw);
  int64_t T = iw == inner ? (int64_t)cdiv((uint64_t)outer, (uint64_t)nb) : outer * nch;
  for (int64_t i = 0; i <= T; i++) {
    for (int phase = 0; phase < 2; phase++) {
      int64_t ti = phase == 0 ? i : i - 1;
      if (ti < 0 || ti >= T) continue;
      int64_t o0, no, c0, nc;
      if (iw == inner) o0 = ti * nb, no = imin(nb, outer - o0), c0 = 0, nc = inner;
      else o0 = ti / nch, no = 1, c0 = (ti % nch) * iw, nc = imin(iw, inner - c0);
      uint64_t xs = xb[ti & 1], r = rb[ti & 1], h = (uint64_t)((o0 * len) * inner + c0) * F4;
      uint64_t n2[2] = {(uint64_t)no * (uint64_t)len, 1};
      int64_t hs[2] = {inner * F4, 0}, vs[2] = {nc * F4, 0};
      if (phase == 0) {
        cc_dma_nd(e, SPACE_LOCAL, xs, SPACE_HBM, x + h, (uint64_t)nc * F4, 1, n2, hs, vs);
        continue;
      }
      int64_t rs = nc * F4;
      for (int64_t j = 0; j < no; j++) {
        uint64_t xo = xs + (uint64_t)(j * len * nc) * F4;
        vop(e, VOP_CMAX, r, xo, 0, (uint64_t)len, (uint64_t)nc, 0, rs, 0, 1);
        vop(e, VOP_SUB, xo, xo, r, (uint64_t)len, (uint64_t)nc, rs, rs, 0, 1);
        if (lg) {
          uint64_t ts = tb[ti & 1];
          vop(e, VOP_EXP, ts, xo, 0, (uint64_t)len, (uint64_t)nc, rs, rs, 0, 1);
          vop(e, VOP_CSUM, r, ts, 0, (uint64_t)len, (uint64_t)nc, 0, rs, 0, 1);
          vflat(e, VOP_LOG, r, r, 0, 1, (uint64_t)nc);
          vop(e, VOP_SUB, xo, xo, r, (uint64_t)len, (uint64_t)nc, rs, rs, 0, 1);
          continue;
        }
        vop(e, VOP_EXP, xo, xo, 0, (uint64_t)len, (uint64_t)nc, rs, rs, 0, 1);
        vop(e, VOP_CSUM, r, xo, 0, (uint64_t)len, (uint64_t)nc, 0, rs, 0, 1);
        vflat(e, VOP_RECIP, r, r, 0, 1, (uint64_t)nc);
        vop(e, VOP_MUL, xo, xo, r, (uint64_t)len, (uint64_t)nc, rs, rs, 0, 1);
      }
      cc_dma_nd(e, SPACE_HBM, y + h, SPACE_LOCAL, xs, (uint64_t)nc * F4, 1, n2, vs, hs);
    }
  }
  return 0;
}

static int lower_softmax(lw *L) {
  const ir_node *n = L->n;
  return softmax_along(L, &n->in[0]->ty, n->a.axis, cc_addr(L->c, n->in[0]), cc_addr(L->c, n->out[0]),
                       n->op == IR_OP_LOG_SOFTMAX);
}

int cc_lower_softmax_inplace(cc_lower_ctx *c, const ir_value *v, char *err, size_t errlen) {
  lw L;
  lw_init(&L, c);
  step_boundary(&L);
  uint64_t a = cc_addr(c, v);
  softmax_along(&L, &v->ty, v->ty.rank - 1, a, a, false);
  return lw_finish(&L, err, errlen);
}

// ---------------------------------------------------------------- reductions, layernorm
//
// A reduction over a contiguous run of dims is [outer, len, inner]: with
// inner == 1 each tile row is reduced with rsum/rmax/rmin, otherwise each
// [len, inner-piece] block is reduced over its rows with csum/cmax/cmin (no
// transpose). reduce_prod multiplies rows (or columns) one at a time. Axes in
// several runs reduce run by run, the last first, through HBM temporaries.
// reduce_mean sums, then divides by the count (as ONNX Runtime).

static isa_vpu_op red_op(ir_op op, bool rows) {
  switch (op) {
  case IR_OP_REDUCE_MAX: return rows ? VOP_RMAX : VOP_CMAX;
  case IR_OP_REDUCE_MIN: return rows ? VOP_RMIN : VOP_CMIN;
  default: return rows ? VOP_RSUM : VOP_CSUM;
  }
}

// One contiguous reduction of x [outer, len, inner] into y [outer, inner];
// div > 0: the result is divided by it.
static int reduce_run(lw *L, ir_op op, uint64_t x, uint64_t y, int64_t outer, int64_t len, int64_t inner, float div) {
  cc_emit *e = L->e;
  if (outer * inner == 0) return 0;
  bool prod = op == IR_OP_REDUCE_PROD;
  uint64_t cdv = 0;
  if (div > 0) cdv = vconsts(L, &div, 1);
  if (len == 0) return lw_fail(L, "reducing an empty dim is not supported by the lowering");
  uint64_t avail = cc_vmem_free_bytes(e), slack = 4 * 64, cap = tile_cap(L, (uint64_t)(outer * len * inner) * F4);
  uint64_t xb[2], rb[2];
  // Tiles: nb whole [len, iw] blocks of consecutive outers (iw == inner), or
  // one outer's [len, iw] column piece.
  uint64_t blk = (uint64_t)(len * inner) * F4;
  int64_t nb = 0, iw = inner;
  if (blk <= cap && avail > slack)
    nb = imin(outer, imin((int64_t)((avail - slack) / (2 * (blk + (uint64_t)inner * F4))), (int64_t)(cap / blk)));
  if (nb < 1) {
    nb = 1;
    uint64_t per = (uint64_t)len * F4 + F4;
    iw = avail > slack ? (int64_t)((avail - slack) / (2 * per)) : 0;
    iw = imin(iw, imin(inner, imax(1, (int64_t)(cap / ((uint64_t)len * F4)))));
    if (iw < 1) return too_big(L, 2 * per + slack);
  }
  for (int s = 0; s < 2; s++) {
    xb[s] = vm_alloc(L, (uint64_t)(nb * len * iw) * F4, "a reduction tile");
    rb[s] = vm_alloc(L, (uint64_t)(nb * iw) * F4, "a reduction result");
  }
  if (cc_emit_failed(e, NULL, 0)) return -1;
  int64_t nch = (int64_t)cdiv((uint64_t)inner, (uint64_t)iw);
  int64_t T = iw == inner ? (int64_t)cdiv((uint64_t)outer, (uint64_t)nb) : outer * nch;
  for (int64_t i = 0; i <= T; i++) {
    for (int phase = 0; phase < 2; phase++) {
      int64_t ti = phase == 0 ? i : i - 1;
      if (ti < 0 || ti >= T) continue;
      int64_t o0, no, c0, nc;
      if (iw == inner) o0 = ti * nb, no = imin(nb, outer - o0), c0 = 0, nc = inner;
      else o0 = ti / nch, no = 1, c0 = (ti % nch) * iw, nc = imin(iw, inner - c0);
      uint64_t xs = xb[ti & 1], r = rb[ti & 1];
      if (phase == 0) {
        uint64_t n2[1] = {(uint64_t)(no * len)};
        int64_t hs[1] = {inner * F4}, vs[1] = {nc * F4};
        cc_dma_nd(e, SPACE_LOCAL, xs, SPACE_HBM, x + (uint64_t)(o0 * len * inner + c0) * F4, (uint64_t)nc * F4, 1, n2,
               hs, vs);
        continue;
      }
      int64_t rs = nc * F4;
      if (inner == 1 && !prod) vop(e, red_op(op, true), r, xs, 0, (uint64_t)no, (uint64_t)len, F4, len * F4, 0, 1);
      else if (inner == 1) { // product of the columns of each row
        vop(e, VOP_MOV, r, xs, 0, (uint64_t)no, 1, F4, len * F4, 0, 1);
        for (int64_t c = 1; c < len; c++)
          vop(e, VOP_MUL, r, r, xs + (uint64_t)c * F4, (uint64_t)no, 1, F4, F4, len * F4, 1);
      } else
        for (int64_t j = 0; j < no; j++) {
          uint64_t xo = xs + (uint64_t)(j * len * nc) * F4, ro = r + (uint64_t)(j * nc) * F4;
          if (!prod) vop(e, red_op(op, false), ro, xo, 0, (uint64_t)len, (uint64_t)nc, 0, rs, 0, 1);
          else {
            vflat(e, VOP_MOV, ro, xo, 0, 1, (uint64_t)nc);
            for (int64_t q = 1; q < len; q++) vflat(e, VOP_MUL, ro, ro, xo + (uint64_t)(q * nc) * F4, 1, (uint64_t)nc);
          }
        }
      if (div > 0) vop(e, VOP_DIV, r, r, cdv, 1, (uint64_t)(no * nc), 0, 0, 0, 0);
      uint64_t n2[1] = {(uint64_t)no};
      int64_t hs[1] = {inner * F4}, vs[1] = {nc * F4};
      cc_dma_nd(e, SPACE_HBM, y + (uint64_t)(o0 * inner + c0) * F4, SPACE_LOCAL, r, (uint64_t)nc * F4, 1, n2, vs, hs);
    }
  }
  return 0;
}

static int lower_reduce(lw *L) {
  const ir_node *n = L->n;
  const ir_type *t = &n->in[0]->ty;
  uint64_t x = cc_addr(L->c, n->in[0]), y = cc_addr(L->c, n->out[0]);
  int64_t dims[IR_MAX_DIMS], count = 1;
  bool red[IR_MAX_DIMS] = {0};
  int r = t->rank;
  memcpy(dims, t->dims, sizeof dims[0] * (size_t)r);
  for (int i = 0; i < n->a.naxes; i++) red[n->a.axes[i]] = true, count *= t->dims[n->a.axes[i]];
  if (!n->a.naxes || count == 1) { // nothing reduced: a copy
    cc_copy(L->e, SPACE_HBM, y, SPACE_HBM, x, ir_nbytes(&n->out[0]->ty));
    return 0;
  }
  // Runs of reduced dims, last first.
  int nruns = 0;
  for (int d = 0; d < r; d++) nruns += red[d] && (d == 0 || !red[d - 1]);
  uint64_t src = x;
  for (int d = r - 1, k = 0; d >= 0; d--) {
    if (!red[d] || (d + 1 < r && red[d + 1])) continue;
    int d0 = d;
    while (d0 > 0 && red[d0 - 1]) d0--;
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < d0; i++) outer *= dims[i];
    for (int i = d0; i <= d; i++) len *= dims[i], dims[i] = 1;
    for (int i = d + 1; i < r; i++) inner *= dims[i];
    bool last = ++k == nruns;
    uint64_t dst = last ? y : cc_hbm_alloc(L->e, (uint64_t)(outer * inner) * F4);
    if (reduce_run(L, n->op, src, dst, outer, len, inner, last && n->op == IR_OP_REDUCE_MEAN ? (float)count : 0))
      return -1;
    src = dst;
  }
  return 0;
}

// layernorm over the trailing dims: rows of len values. mean = sum / len; d =
// x - mean; y = d * rsqrt(sum(d*d) / len + eps) * scale + bias.
static int lower_layernorm(lw *L) {
  cc_emit *e = L->e;
  const ir_node *n = L->n;
  const ir_type *t = &n->in[0]->ty;
  int64_t outer = 1, len = 1;
  for (int i = 0; i < n->a.axis; i++) outer *= t->dims[i];
  for (int i = n->a.axis; i < t->rank; i++) len *= t->dims[i];
  uint64_t x = cc_addr(L->c, n->in[0]), y = cc_addr(L->c, n->out[0]);
  if (outer * len == 0) return 0;
  // scale and bias as full [len] rows in VMEM (constants broadcast on the host).
  uint64_t pv[2] = {0, 0};
  for (int k = 1; k < n->nin; k++) {
    const ir_value *p = n->in[k];
    if (ir_nelems(&p->ty) == len) {
      pv[k - 1] = vm_alloc(L, (uint64_t)len * F4, "layernorm parameters");
      if (pv[k - 1] != UINT64_MAX) load(e, pv[k - 1], cc_addr(L->c, p), (uint64_t)len * F4);
    } else if (p->data) {
      float *v = malloc((size_t)len * sizeof *v);
      if (!v) return lw_fail(L, "out of host memory");
      int64_t pn = ir_nelems(&p->ty);
      for (int64_t i = 0; i < len; i++) v[i] = (float)ir_get_float(p->data, p->ty.dtype, i % pn);
      uint64_t h = cc_hbm_const(e, v, (uint64_t)len * F4);
      free(v);
      pv[k - 1] = vm_alloc(L, (uint64_t)len * F4, "layernorm parameters");
      if (pv[k - 1] != UINT64_MAX) load(e, pv[k - 1], h, (uint64_t)len * F4);
    } else return lw_fail(L, "a broadcast scale or bias computed at run time is not supported");
  }
  float cst[2] = {(float)len, n->a.epsilon};
  uint64_t cv = vconsts(L, cst, 2);
  if (cc_emit_failed(e, NULL, 0)) return -1;
  uint64_t avail = cc_vmem_free_bytes(e), slack = 8 * 64, cap = tile_cap(L, (uint64_t)(outer * len) * F4);
  uint64_t per = 2 * (uint64_t)len * F4 + 2 * F4;
  int64_t tr = avail > slack ? (int64_t)((avail - slack) / (2 * per)) : 0;
  tr = imin(tr, imin(outer, imax(1, (int64_t)(cap / ((uint64_t)len * F4)))));
  if (tr < 1) return too_big(L, 2 * per + slack);
  uint64_t xb[2], tb[2], mb[2], vb[2];
  for (int s = 0; s < 2; s++) {
    xb[s] = vm_alloc(L, (uint64_t)(tr * len) * F4, "a layernorm tile");
    tb[s] = vm_alloc(L, (uint64_t)(tr * len) * F4, "layernorm squares");
    mb[s] = vm_alloc(L, (uint64_t)tr * F4, "layernorm means");
    vb[s] = vm_alloc(L, (uint64_t)tr * F4, "layernorm variances");
  }
  if (cc_emit_failed(e, NULL, 0)) return -1;
  int64_t T = (int64_t)cdiv((uint64_t)outer, (uint64_t)tr), rs = len * F4;
  for (int64_t i = 0; i <= T; i++) {
    if (i < T) {
      int64_t g0 = i * tr, nr = imin(tr, outer - g0);
      load(e, xb[i & 1], x + (uint64_t)(g0 * len) * F4, (uint64_t)(nr * len) * F4);
    }
    if (i == 0) continue;
    int64_t ti = i - 1, g0 = ti * tr, nr = imin(tr, outer - g0);
    uint64_t xs = xb[ti & 1], ts = tb[ti & 1], m = mb[ti & 1], v = vb[ti & 1];
    vop(e, VOP_RSUM, m, xs, 0, (uint64_t)nr, (uint64_t)len, F4, rs, 0, 1);
    vop(e, VOP_DIV, m, m, cv, 1, (uint64_t)nr, 0, 0, 0, 0);
    vop(e, VOP_SUB, xs, xs, m, (uint64_t)nr, (uint64_t)len, rs, rs, F4, 0);
    vflat(e, VOP_MUL, ts, xs, xs, (uint64_t)nr, (uint64_t)len);
    vop(e, VOP_RSUM, v, ts, 0, (uint64_t)nr, (uint64_t)len, F4, rs, 0, 1);
    vop(e, VOP_DIV, v, v, cv, 1, (uint64_t)nr, 0, 0, 0, 0);
    vop(e, VOP_ADD, v, v, cv + F4, 1, (uint64_t)nr, 0, 0, 0, 0);
    vflat(e, VOP_SQRT, v, v, 0, 1, (uint64_t)nr);
    vop(e, VOP_DIV, xs, xs, v, (uint64_t)nr, (uint64_t)len, rs, rs, F4, 0);
    vop(e, VOP_MUL, xs, xs, pv[0], (uint64_t)nr, (uint64_t)len, rs, rs, 0, 1);
    if (n->nin == 3) vop(e, VOP_ADD, xs, xs, pv[1], (uint64_t)nr, (uint64_t)len, rs, rs, 0, 1);
    store(e, y + (uint64_t)(g0 * len) * F4, xs, (uint64_t)(nr * len) * F4);
    // ONNX's optional outputs: the mean and 1 / sqrt(var + eps) of each row.
    if (n->nout > 1) store(e, cc_addr(L->c, n->out[1]) + (uint64_t)g0 * F4, m, (uint64_t)nr * F4);
    if (n->nout > 2) {
      vflat(e, VOP_RECIP, v, v, 0, 1, (uint64_t)nr);
      store(e, cc_addr(L->c, n->out[2]) + (uint64_t)g0 * F4, v, (uint64_t)nr * F4);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- pools
//
// Channels last: x [N, H, W, C] (or [N, W, C]), y [N, OH, OW, C]. A kernel
// position (kh, kw) reads padded input row oh*sh + kh*dh and column ow*sw +
// kw*dw. The input is loaded as stride phases: slab (ph, pw) holds padded
// rows ph, ph+sh, ... and columns pw, pw+sw, ..., so every kernel position
// reads a slab with unit steps, and one vector op (rows = output pixels,
// cols = channels) covers a whole tile of output rows at once: slabs and the
// result share one row pitch JP (output columns plus the kernel's reach; the
// few extra pixels per row are computed and never stored). Positions in
// the padding hold -inf (max) or 0 (avg): the pad columns are written once
// per buffer set, pad rows by the tiles that reach them. Only the slab rows
// and columns some kernel position reads are loaded.

enum { POOL_MAXK = 64 };

typedef struct {
  int64_t qmin, qmax; // offsets (kernel reach in slab units) of this phase
  int64_t p;          // the phase
} pool_phase;

typedef struct {
  int64_t N, H, W, C, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
} pool_geo;

// Phases of one spatial dim: for each kernel index its phase and offset.
static int pool_phases(int64_t K, int64_t S, int64_t D, pool_phase *ph, int *kph, int64_t *kq) {
  int np = 0;
  for (int64_t k = 0; k < K; k++) {
    int64_t p = k * D % S, q = k * D / S;
    int j = 0;
    while (j < np && ph[j].p != p) j++;
    if (j == np) ph[np++] = (pool_phase){q, q, p};
    ph[j].qmin = imin(ph[j].qmin, q), ph[j].qmax = imax(ph[j].qmax, q);
    kph[k] = j, kq[k] = q;
  }
  return np;
}

// Window positions of output index o counted for the divisor (ONNX Runtime's
// rule): inside the padded extent [-pb, in + pe) with count_include_pad,
// inside the input otherwise.
static int64_t pool_count(int64_t o, int64_t in, int64_t K, int64_t S, int64_t D, int64_t pb, int64_t pe, bool cip) {
  int64_t c = 0;
  for (int64_t k = 0; k < K; k++) {
    int64_t p = o * S - pb + k * D;
    c += cip ? p < in + pe : p >= 0 && p < in;
  }
  return c;
}

// VMEM of one buffer set of a pool tile of t output rows x c channels.
static uint64_t pool_set_bytes(const pool_phase *hp, int nhp, int nwp, int64_t JP, bool tbl_tile, int64_t t,
                               int64_t c, int64_t es) {
  uint64_t r = 0;
  for (int i = 0; i < nhp; i++) r += (uint64_t)(t + hp[i].qmax - hp[i].qmin) * (uint64_t)nwp;
  return (r + (uint64_t)t) * (uint64_t)JP * (uint64_t)c * (uint64_t)es + (tbl_tile ? (uint64_t)t * (uint64_t)JP * F4 : 0);
}

static int lower_pool(lw *L) {
  cc_emit *e = L->e;
  const ir_node *n = L->n;
  const ir_attrs *a = &n->a;
  const ir_type *xt = &n->in[0]->ty, *yt = &n->out[0]->ty;
  bool mx = n->op == IR_OP_MAXPOOL;
  pool_geo g;
  g.N = xt->dims[0], g.C = xt->dims[xt->rank - 1];
  if (xt->rank == 4) {
    g.H = xt->dims[1], g.W = xt->dims[2], g.OH = yt->dims[1], g.OW = yt->dims[2];
    g.KH = a->kernel[0], g.KW = a->kernel[1], g.SH = a->stride[0], g.SW = a->stride[1];
    g.DH = a->dilation[0], g.DW = a->dilation[1];
    g.PT = a->pads[0], g.PL = a->pads[1], g.PB = a->pads[2], g.PR = a->pads[3];
  } else {
    g.H = g.OH = g.KH = g.SH = g.DH = 1, g.PT = g.PB = 0;
    g.W = xt->dims[1], g.OW = yt->dims[1], g.KW = a->kernel[0], g.SW = a->stride[0], g.DW = a->dilation[0];
    g.PL = a->pads[0], g.PR = a->pads[1];
  }
  if (g.N * g.C * g.OH * g.OW == 0) return 0;
  if (g.KH > POOL_MAXK || g.KW > POOL_MAXK)
    return lw_fail(L, "a %" PRId64 "x%" PRId64 " window is larger than the lowering handles (%d)", g.KH, g.KW,
                   POOL_MAXK);
  uint64_t x = cc_addr(L->c, n->in[0]), y = cc_addr(L->c, n->out[0]);
  // int8 storage (cc_place.q8, a max pool only): the input's scale is the
  // output's, so the maximum of the int8 values is the int8 of the maximum.
  bool q8 = L->c->place[n->in[0]->id].q8;
  if (q8 != L->c->place[n->out[0]->id].q8 || (q8 && !mx)) return lw_fail(L, "internal error: int8 pool storage");
  int64_t xe = q8 ? 1 : F4;
  isa_dtype vt = q8 ? DT_I8 : DT_F32;

  pool_phase hp[POOL_MAXK], wp[POOL_MAXK];
  int khp[POOL_MAXK], kwp[POOL_MAXK];
  int64_t khq[POOL_MAXK], kwq[POOL_MAXK];
  int nhp = pool_phases(g.KH, g.SH, g.DH, hp, khp, khq);
  int nwp = pool_phases(g.KW, g.SW, g.DW, wp, kwp, kwq);
  int64_t JP = g.OW, pad_run = 1;
  for (int j = 0; j < nwp; j++) JP = imax(JP, g.OW + wp[j].qmax - wp[j].qmin);
  // Valid (inside the input) slab columns of each column phase, local to the slab.
  int64_t jv0[POOL_MAXK], jv1[POOL_MAXK], jn[POOL_MAXK];
  for (int j = 0; j < nwp; j++) {
    jn[j] = g.OW + wp[j].qmax - wp[j].qmin;
    jv0[j] = imin(jn[j], imax(0, ceil_div(g.PL - wp[j].p, g.SW) - wp[j].qmin));
    jv1[j] = imax(jv0[j], imin(jn[j], ceil_div(g.W + g.PL - wp[j].p, g.SW) - wp[j].qmin));
    pad_run = imax(pad_run, imax(jv0[j], jn[j] - jv1[j]));
  }

  // The divisor of each output pixel (avg): one value when all agree.
  float *cnt = NULL;
  bool uniform = true;
  float c0v = 1;
  if (!mx) {
    cnt = malloc((size_t)(g.OH * JP) * sizeof *cnt);
    if (!cnt) return lw_fail(L, "out of host memory");
    for (int64_t oh = 0; oh < g.OH; oh++) {
      int64_t ch = pool_count(oh, g.H, g.KH, g.SH, g.DH, g.PT, g.PB, a->count_include_pad);
      for (int64_t ow = 0; ow < JP; ow++) {
        int64_t cw = ow < g.OW ? pool_count(ow, g.W, g.KW, g.SW, g.DW, g.PL, g.PR, a->count_include_pad) : 1;
        float v = (float)(ch * cw > 0 ? ch * cw : 1);
        cnt[oh * JP + ow] = v;
        if (oh == 0 && ow == 0) c0v = v;
        if (ow < g.OW && v != c0v) uniform = false;
      }
    }
  }

  // Constants: the pad row (pad_run * C copies of -inf or 0) and a divisor.
  uint64_t padrow = 0, cdv = 0, tbl_res = 0, tbl_h = 0;
  bool any_pad = g.PT || g.PB || g.PL || g.PR || (g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1 > g.H ||
                 (g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1 > g.W;
  if (any_pad && q8) { // -128, the least int8: no maximum takes it but over the padding alone
    uint64_t nr = (uint64_t)(pad_run * g.C);
    int8_t *row = malloc(nr);
    if (!row) return free(cnt), lw_fail(L, "out of host memory");
    memset(row, 0x80, nr);
    uint64_t h = cc_hbm_const(e, row, nr);
    free(row);
    padrow = vm_alloc(L, nr, "the int8 pad row");
    if (padrow != UINT64_MAX) load(e, padrow, h, nr);
  } else if (any_pad) {
    uint64_t nr = (uint64_t)(pad_run * g.C);
    float *row = malloc(nr * sizeof *row);
    if (!row) return free(cnt), lw_fail(L, "out of host memory");
    for (uint64_t i = 0; i < nr; i++) row[i] = mx ? -INFINITY : 0.0f;
    padrow = vconsts(L, row, (int)nr);
    free(row);
  }
  if (!mx && uniform) cdv = vconsts(L, &c0v, 1);
  if (!mx && !uniform) {
    tbl_h = cc_hbm_const(e, cnt, (uint64_t)(g.OH * JP) * F4);
    if ((uint64_t)(g.OH * JP) * F4 <= cc_vmem_free_bytes(e) / RESIDENT_SHARE) {
      tbl_res = vm_alloc(L, (uint64_t)(g.OH * JP) * F4, "the avgpool divisors");
      if (tbl_res != UINT64_MAX) load(e, tbl_res, tbl_h, (uint64_t)(g.OH * JP) * F4);
    }
  }
  free(cnt);
  if (cc_emit_failed(e, NULL, 0)) return -1;
  bool tbl_tile = !mx && !uniform && !tbl_res;

  // Tile: t output rows x cw channels of one image.
  uint64_t avail = cc_vmem_free_bytes(e), slack = 2 * 64 * (uint64_t)(nhp * nwp + 2);
  // The tile by a cost model, in cycles: HBM bytes read (tiles of few rows
  // re-read the window's overlap), the pipeline's fill (one tile not
  // overlapped) and the instructions of each tile.
  const chip_config *ch = L->c->chip;
  double bpc = ch->hbm_bandwidth / ch->clock_hz, best = INFINITY;
  int64_t t = 0, cw = 0;
  for (int64_t k = 1; k <= g.C; k++) {
    int64_t c = (g.C + k - 1) / k, tmax = 0;
    if (k > 1 && c == (g.C + k - 2) / (k - 1)) continue; // same pieces as k - 1
    for (int64_t lo = 1, hi = g.OH; lo <= hi;) {          // the most rows that fit
      int64_t mid = lo + (hi - lo) / 2;
      if (2 * pool_set_bytes(hp, nhp, nwp, JP, tbl_tile, mid, c, xe) + slack <= avail) tmax = mid, lo = mid + 1;
      else hi = mid - 1;
    }
    for (int64_t tt = tmax; tt >= 1; tt /= 2) {
      double tiles = (double)g.N * (double)cdiv((uint64_t)g.C, (uint64_t)c) * (double)cdiv((uint64_t)g.OH, (uint64_t)tt);
      double rows = (double)imin(g.H, (tt - 1) * g.SH + (g.KH - 1) * g.DH + 1);
      double bytes = tiles * rows * (double)(g.W * c * xe) + 2.0 * (double)pool_set_bytes(hp, nhp, nwp, JP, tbl_tile, tt, c, xe);
      // ~2.5 instructions per tile operation; each weighs 4 cycles, since
      // straight-line code must also fit IMEM.
      double cost = bytes / bpc + tiles * 2.5 * (double)(g.KH * g.KW + 2 * nhp * nwp + 4) * 4;
      if (cost < best) best = cost, t = tt, cw = c;
    }
  }
  if (t < 1) return too_big(L, 2 * pool_set_bytes(hp, nhp, nwp, JP, tbl_tile, 1, 1, xe) + slack);
  uint64_t *slab[2], ob[2], tb[2] = {0, 0};
  slab[0] = malloc(2 * (size_t)(nhp * nwp) * sizeof *slab[0]);
  if (!slab[0]) return lw_fail(L, "out of host memory");
  slab[1] = slab[0] + nhp * nwp;
  int64_t rows_ph[POOL_MAXK];
  for (int i = 0; i < nhp; i++) rows_ph[i] = t + hp[i].qmax - hp[i].qmin;
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < nhp; i++)
      for (int j = 0; j < nwp; j++)
        slab[s][i * nwp + j] = vm_alloc(L, (uint64_t)(rows_ph[i] * JP * cw * xe), "a pool input slab");
    ob[s] = vm_alloc(L, (uint64_t)(t * JP * cw * xe), "a pool result tile");
    if (tbl_tile) tb[s] = vm_alloc(L, (uint64_t)(t * JP) * F4, "avgpool divisors");
  }
  if (cc_emit_failed(e, NULL, 0)) return free(slab[0]), -1;

  int64_t nrt = (int64_t)cdiv((uint64_t)g.OH, (uint64_t)t), nct = (int64_t)cdiv((uint64_t)g.C, (uint64_t)cw);
  int64_t T = g.N * nct * nrt;
  int64_t filled_cw[2] = {0, 0}; // channels the pad columns of a set were written for
  isa_vpu_op acc = mx ? VOP_MAX : VOP_ADD;
  for (int64_t i = 0; i <= T; i++) {
    for (int phase = 0; phase < 2; phase++) {
      int64_t ti = phase == 0 ? i : i - 1;
      if (ti < 0 || ti >= T) continue;
      int s = (int)(ti & 1);
      int64_t nimg = ti / (nct * nrt), c0 = (ti / nrt) % nct * cw, oh0 = ti % nrt * t;
      int64_t nc = imin(cw, g.C - c0), nt = imin(t, g.OH - oh0);
      uint64_t px = (uint64_t)(nc * xe); // bytes of one pixel in VMEM
      if (phase == 0) {
        for (int a_ = 0; a_ < nhp; a_++)
          for (int b_ = 0; b_ < nwp; b_++) {
            uint64_t sb = slab[s][a_ * nwp + b_];
            int64_t need = nt + hp[a_].qmax - hp[a_].qmin; // slab rows read by this tile
            int64_t i0 = oh0 + hp[a_].qmin;                // absolute slab row of local row 0
            int64_t iv0 = imin(need, imax(0, ceil_div(g.PT - hp[a_].p, g.SH) - i0));
            int64_t iv1 = imax(iv0, imin(need, ceil_div(g.H + g.PT - hp[a_].p, g.SH) - i0));
            if (filled_cw[s] != nc && (jv0[b_] > 0 || jv1[b_] < jn[b_])) {
              int64_t rr = rows_ph[a_], rs = JP * (int64_t)px;
              if (jv0[b_] > 0) vop_dt(e, vt, VOP_MOV, sb, padrow, 0, (uint64_t)rr, (uint64_t)(jv0[b_] * nc), rs, 0, 0, 1);
              if (jv1[b_] < jn[b_])
                vop_dt(e, vt, VOP_MOV, sb + (uint64_t)jv1[b_] * px, padrow, 0, (uint64_t)rr,
                    (uint64_t)((jn[b_] - jv1[b_]) * nc), rs, 0, 0, 1);
            }
            if (iv0 > 0) // top pad rows
              vop_dt(e, vt, VOP_MOV, sb, padrow, 0, (uint64_t)((iv0 - 1) * JP + jn[b_]), (uint64_t)nc, (int64_t)px, 0, 0, 1);
            if (iv1 < need)
              vop_dt(e, vt, VOP_MOV, sb + (uint64_t)(iv1 * JP) * px, padrow, 0, (uint64_t)((need - iv1 - 1) * JP + jn[b_]),
                  (uint64_t)nc, (int64_t)px, 0, 0, 1);
            if (iv1 > iv0 && jv1[b_] > jv0[b_]) {
              int64_t ih = (i0 + iv0) * g.SH + hp[a_].p - g.PT, iw = (jv0[b_] + wp[b_].qmin) * g.SW + wp[b_].p - g.PL;
              uint64_t src = x + (uint64_t)((((nimg * g.H + ih) * g.W + iw) * g.C + c0) * xe);
              uint64_t nn[2] = {(uint64_t)(iv1 - iv0), (uint64_t)(jv1[b_] - jv0[b_])};
              int64_t ss[2] = {g.SH * g.W * g.C * xe, g.SW * g.C * xe}, ds[2] = {JP * (int64_t)px, (int64_t)px};
              cc_dma_nd(e, SPACE_LOCAL, sb + (uint64_t)(iv0 * JP + jv0[b_]) * px, SPACE_HBM, src, px, 2, nn, ss, ds);
            }
          }
        filled_cw[s] = nc;
        if (tbl_tile) load(e, tb[s], tbl_h + (uint64_t)(oh0 * JP) * F4, (uint64_t)(nt * JP) * F4);
        continue;
      }
      uint64_t npix = (uint64_t)((nt - 1) * JP + g.OW), o = ob[s];
      int kk = 0;
      for (int64_t kh = 0; kh < g.KH; kh++)
        for (int64_t kw = 0; kw < g.KW; kw++, kk++) {
          int a_ = khp[kh], b_ = kwp[kw];
          uint64_t src = slab[s][a_ * nwp + b_] +
                         (uint64_t)((khq[kh] - hp[a_].qmin) * JP + kwq[kw] - wp[b_].qmin) * px;
          if (g.KH * g.KW == 1) vop_dt(e, vt, VOP_MOV, o, src, 0, npix, (uint64_t)nc, (int64_t)px, (int64_t)px, 0, 1);
          else if (kk == 0) continue;
          else if (kk == 1) {
            uint64_t first = slab[s][khp[0] * nwp + kwp[0]] +
                             (uint64_t)((khq[0] - hp[khp[0]].qmin) * JP + kwq[0] - wp[kwp[0]].qmin) * px;
            vop_dt(e, vt, acc, o, first, src, npix, (uint64_t)nc, (int64_t)px, (int64_t)px, (int64_t)px, 1);
          } else vop_dt(e, vt, acc, o, o, src, npix, (uint64_t)nc, (int64_t)px, (int64_t)px, (int64_t)px, 1);
        }
      if (!mx && uniform) vop_dt(e, vt, VOP_DIV, o, o, cdv, npix, (uint64_t)nc, (int64_t)px, (int64_t)px, 0, 0);
      else if (!mx)
        vop_dt(e, vt, VOP_DIV, o, o, tbl_tile ? tb[s] : tbl_res + (uint64_t)(oh0 * JP) * F4, npix, (uint64_t)nc,
            (int64_t)px, (int64_t)px, F4, 0);
      uint64_t dst = y + (uint64_t)((((nimg * g.OH + oh0) * g.OW) * g.C + c0) * xe);
      uint64_t nn[2] = {(uint64_t)nt, (uint64_t)g.OW};
      int64_t ss[2] = {JP * (int64_t)px, (int64_t)px}, ds[2] = {g.OW * g.C * xe, g.C * xe};
      cc_dma_nd(e, SPACE_HBM, dst, SPACE_LOCAL, o, px, 2, nn, ss, ds);
    }
  }
  free(slab[0]);
  return 0;
}

// Global average pool: the mean over the spatial dims, channels last
// (column sums over the pixels of an image) or first (row sums).
static int lower_global_avgpool(lw *L) {
  cc_emit *e = L->e;
  const ir_node *n = L->n;
  const ir_type *xt = &n->in[0]->ty;
  int64_t N = xt->dims[0], C = xt->dims[n->a.nhwc ? xt->rank - 1 : 1], P = 1;
  for (int i = n->a.nhwc ? 1 : 2; i < (n->a.nhwc ? xt->rank - 1 : xt->rank); i++) P *= xt->dims[i];
  uint64_t x = cc_addr(L->c, n->in[0]), y = cc_addr(L->c, n->out[0]);
  if (N * C * P == 0) return 0;
  float pv = (float)P;
  uint64_t cP = vconsts(L, &pv, 1);
  uint64_t avail = cc_vmem_free_bytes(e), slack = 6 * 64;
  if (cc_emit_failed(e, NULL, 0)) return -1;

  // Images (channels last) or rows (channels first) as units: R units of
  // P pixels x C' values, each reduced to C' values (C' = C or 1).
  bool last = n->a.nhwc;
  int64_t R = last ? N : N * C, cc = last ? C : 1;
  uint64_t unit = (uint64_t)(P * cc) * F4, cap = tile_cap(L, (uint64_t)R * unit);
  int64_t nb = 0;
  if (unit <= cap && avail > slack)
    nb = imin(R, imin((int64_t)((avail - slack) / (2 * (unit + (uint64_t)cc * F4))), (int64_t)(cap / unit)));
  uint64_t xb[2], ob[2];
  if (nb >= 1) { // whole units per tile
    for (int s = 0; s < 2; s++) {
      xb[s] = vm_alloc(L, (uint64_t)nb * unit, "a pool input tile");
      ob[s] = vm_alloc(L, (uint64_t)(nb * cc) * F4, "a pool result tile");
    }
    if (cc_emit_failed(e, NULL, 0)) return -1;
    int64_t T = (int64_t)cdiv((uint64_t)R, (uint64_t)nb);
    for (int64_t i = 0; i <= T; i++) {
      if (i < T) {
        int64_t u0 = i * nb, nu = imin(nb, R - u0);
        load(e, xb[i & 1], x + (uint64_t)u0 * unit, (uint64_t)nu * unit);
      }
      if (i == 0) continue;
      int64_t ti = i - 1, u0 = ti * nb, nu = imin(nb, R - u0);
      uint64_t xs = xb[ti & 1], os = ob[ti & 1];
      if (last)
        for (int64_t j = 0; j < nu; j++)
          vop(e, VOP_CSUM, os + (uint64_t)(j * C) * F4, xs + (uint64_t)j * unit, 0, (uint64_t)P, (uint64_t)C, 0,
              C * F4, 0, 1);
      else vop(e, VOP_RSUM, os, xs, 0, (uint64_t)nu, (uint64_t)P, F4, P * F4, 0, 1);
      vop(e, VOP_DIV, os, os, cP, 1, (uint64_t)(nu * cc), 0, 0, 0, 0);
      store(e, y + (uint64_t)(u0 * cc) * F4, os, (uint64_t)(nu * cc) * F4);
    }
    return 0;
  }
  // Pieces of one unit per tile: partial sums added into an accumulator.
  uint64_t per = (uint64_t)cc * F4;
  int64_t tp = avail > slack + 4 * per ? (int64_t)((avail - slack - 4 * per) / (2 * per)) : 0;
  tp = imin(tp, imin(P, imax(1, (int64_t)(cap / per))));
  if (tp < 1) return too_big(L, 6 * per + slack);
  uint64_t part[2], accb[2];
  for (int s = 0; s < 2; s++) {
    xb[s] = vm_alloc(L, (uint64_t)tp * per, "a pool input tile");
    part[s] = vm_alloc(L, per, "a partial sum");
    accb[s] = vm_alloc(L, per, "a pool result");
  }
  if (cc_emit_failed(e, NULL, 0)) return -1;
  int64_t np = (int64_t)cdiv((uint64_t)P, (uint64_t)tp), T = R * np;
  for (int64_t i = 0; i <= T; i++) {
    if (i < T) {
      int64_t u = i / np, p0 = i % np * tp, npx = imin(tp, P - p0);
      load(e, xb[i & 1], x + (uint64_t)u * unit + (uint64_t)p0 * per, (uint64_t)npx * per);
    }
    if (i == 0) continue;
    int64_t ti = i - 1, u = ti / np, p0 = ti % np * tp, npx = imin(tp, P - p0);
    uint64_t xs = xb[ti & 1], ac = accb[u & 1];
    uint64_t dst = p0 == 0 ? ac : part[ti & 1];
    if (last) vop(e, VOP_CSUM, dst, xs, 0, (uint64_t)npx, (uint64_t)C, 0, C * F4, 0, 1);
    else vop(e, VOP_RSUM, dst, xs, 0, 1, (uint64_t)npx, 0, 0, 0, 1);
    if (p0) vflat(e, VOP_ADD, ac, ac, part[ti & 1], 1, (uint64_t)cc);
    if (p0 + npx == P) {
      vop(e, VOP_DIV, ac, ac, cP, 1, (uint64_t)cc, 0, 0, 0, 0);
      store(e, y + (uint64_t)(u * cc) * F4, ac, per);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- other types
//
// The vector unit computes in fp32. A tensor of another type is converted
// into an f32 copy in HBM before the op and its f32 result converted back
// after it (lower_typed), with one conversion routine that is also Cast:
// load, widen to f32 (v.mov, or v.movu for u8 and bool; i64 through its low
// word), round toward zero for a float-to-integer cast (v.trunc) or test
// against 0 for a cast to bool (v.cne), and narrow on the store (saturating;
// i64 gets its sign-extension word from v.clt). So integers are exact up to
// 2^24 in magnitude; int32 <-> int64 casts and copies between equal types
// are exact for every value.

// The VPU operand type holding an element of dt (i64: its low word).
static isa_dtype tile_dt(ir_dtype dt) {
  switch (dt) {
  case IR_DT_BF16: return DT_BF16;
  case IR_DT_I32: case IR_DT_I64: case IR_DT_U32: case IR_DT_U64: return DT_I32;
  case IR_DT_I8: case IR_DT_U8: case IR_DT_BOOL: return DT_I8;
  default: return DT_F32;
  }
}
static bool unsigned_dt(ir_dtype dt) { return dt == IR_DT_U8 || dt == IR_DT_BOOL; }

static void vrow(cc_emit *e, isa_vpu_op op, isa_dtype dd, uint64_t dst, isa_dtype d1, uint64_t s1, isa_dtype d2,
                 uint64_t s2, uint64_t rows, uint64_t cols, int64_t ds, int64_t ss1, int colstep) {
  cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = rows == 1 ? 0 : ds, .src1_stride = rows == 1 ? 0 : ss1,
                 .src2_stride = 0, .src2_colstep = colstep};
  cc_vpu(e, op, dd, dst, d1, s1, d2, s2, &b);
}

// Constants of the conversions, at these indices of cvt_hbm's table.
enum { K_ZERO, K_2M16, K_2P31, K_2P32, K_2M32, K_LO, K_HI, K_COUNT };

// dst (rows of 4 bytes, dstride apart) = the u32 bits of f, whose values are
// integers in [0, 2^32): those from 2^31 up less 2^32, so the signed store
// keeps the bits. tmp: m f32.
static void f32_to_u32(cc_emit *e, uint64_t dst, int64_t dstride, uint64_t f, uint64_t tmp, uint64_t m, uint64_t k) {
  vrow(e, VOP_CGE, DT_F32, tmp, DT_F32, f, DT_F32, k + K_2P31 * F4, 1, m, 0, 0, 0);
  vrow(e, VOP_MUL, DT_F32, tmp, DT_F32, tmp, DT_F32, k + K_2P32 * F4, 1, m, 0, 0, 0);
  vrow(e, VOP_SUB, DT_F32, tmp, DT_F32, f, DT_F32, tmp, 1, m, 0, 0, 1);
  vrow(e, VOP_MOV, DT_I32, dst, DT_F32, tmp, DT_F32, 0, m, 1, dstride, 4, 1);
}

static bool is_16(ir_dtype dt) { return dt == IR_DT_I16 || dt == IR_DT_U16; }
static bool is_wide(ir_dtype dt) { return dt == IR_DT_I64 || dt == IR_DT_U64; }

// dst (n elements of ddt) = cast(src (n elements of sdt)), HBM to HBM.
static int cvt_hbm(lw *L, uint64_t dst, ir_dtype ddt, uint64_t src, ir_dtype sdt, int64_t n) {
  cc_emit *e = L->e;
  int sb = ir_dtypes[sdt].bytes, db = ir_dtypes[ddt].bytes;
  if (n <= 0) return 0;
  // Integers of one width keep their bits (ONNX Runtime's static_cast).
  bool same = sdt == ddt || (sb == 1 && db == 1 && sdt == IR_DT_BOOL && ddt == IR_DT_U8) ||
              (sb == db && ir_dtype_is_int(sdt) && ir_dtype_is_int(ddt));
  if (same) {
    cc_copy(e, SPACE_HBM, dst, SPACE_HBM, src, (uint64_t)n * (uint64_t)sb);
    return 0;
  }
  if (is_wide(sdt) && (ddt == IR_DT_I32 || ddt == IR_DT_U32)) { // the low words: wraps, as ONNX Runtime
    uint64_t cnt[1] = {(uint64_t)n};
    int64_t ss[1] = {8}, ds[1] = {4};
    cc_dma_nd(e, SPACE_HBM, dst, SPACE_HBM, src, 4, 1, cnt, ss, ds);
    return 0;
  }
  // The clamp of a saturating store the tile types do not give: i16, u16
  // (stored from i32), u32 and u64 (stored as u32 words). The largest floats
  // below 2^32 and 2^64 are 2^32 - 2^8 and 2^64 - 2^40.
  float lo = 0, hi = 0;
  switch (ddt) {
  case IR_DT_I16: lo = -32768.0f, hi = 32767.0f; break;
  case IR_DT_U16: hi = 65535.0f; break;
  case IR_DT_U32: hi = 4294967040.0f; break;
  case IR_DT_U64: hi = 18446742974197923840.0f; break;
  default: break;
  }
  float kv[K_COUNT] = {[K_2M16] = 0x1p-16f, [K_2P31] = 0x1p31f, [K_2P32] = 0x1p32f, [K_2M32] = 0x1p-32f,
                       [K_LO] = lo, [K_HI] = hi};
  uint64_t k = vconsts(L, kv, K_COUNT), z = k + K_ZERO * F4;
  // Per element: raw source (up to 8), f32 (4), a temporary (4), the result (up to 8).
  uint64_t per = 24, avail = cc_vmem_free_bytes(e);
  int64_t T = imin(n, (int64_t)(tile_cap(L, (uint64_t)n * 4) / 4));
  if (avail < 4 * 64 + 8 * per) return too_big(L, 4 * 64 + 8 * per);
  T = imin(T, (int64_t)((avail - 4 * 64) / per));
  T = imin(T, 1 << 24);
  uint64_t raw = vm_alloc(L, (uint64_t)T * 8, "a cast's source tile"), f = vm_alloc(L, (uint64_t)T * 4, "a cast's f32 tile");
  uint64_t tmp = vm_alloc(L, (uint64_t)T * 4, "a cast's temporary"), out = vm_alloc(L, (uint64_t)T * 8, "a cast's result tile");
  if (cc_emit_failed(e, NULL, 0)) return -1;
  bool f2i = ir_dtype_is_float(sdt) && (ir_dtype_is_int(ddt)), tobool = ddt == IR_DT_BOOL;
  for (int64_t t0 = 0; t0 < n; t0 += T) {
    uint64_t m = (uint64_t)imin(T, n - t0);
    // Load and widen to f32.
    if (sdt == IR_DT_F32) load(e, f, src + (uint64_t)t0 * 4, m * 4);
    else if (is_16(sdt)) {
      // Into zeroed i32 words: u16 in the low half, i16 in the high half
      // (x * 2^16, scaled back in f32), so that either extends exactly.
      uint64_t cnt[1] = {m};
      int64_t ss[1] = {2}, ds[1] = {4};
      vrow(e, VOP_SUB, DT_I32, raw, DT_I32, raw, DT_I32, raw, 1, m, 0, 0, 1);
      cc_dma_nd(e, SPACE_LOCAL, raw + (sdt == IR_DT_I16 ? 2 : 0), SPACE_HBM, src + (uint64_t)t0 * 2, 2, 1, cnt, ss, ds);
      vrow(e, VOP_MOV, DT_F32, f, DT_I32, raw, DT_F32, 0, 1, m, 0, 0, 1);
      if (sdt == IR_DT_I16) vrow(e, VOP_MUL, DT_F32, f, DT_F32, f, DT_F32, k + K_2M16 * F4, 1, m, 0, 0, 0);
    } else {
      if (is_wide(sdt)) {
        uint64_t cnt[1] = {m};
        int64_t ss[1] = {8}, ds[1] = {4};
        cc_dma_nd(e, SPACE_LOCAL, raw, SPACE_HBM, src + (uint64_t)t0 * 8, 4, 1, cnt, ss, ds);
      } else load(e, raw, src + (uint64_t)t0 * (uint64_t)sb, m * (uint64_t)sb);
      vrow(e, unsigned_dt(sdt) ? VOP_MOVU : VOP_MOV, DT_F32, f, tile_dt(sdt), raw, DT_F32, 0, 1, m, 0, 0, 1);
      if (sdt == IR_DT_U32 || sdt == IR_DT_U64) { // a low word from 2^31 up read as negative: add 2^32
        vrow(e, VOP_CLT, DT_F32, tmp, DT_F32, f, DT_F32, z, 1, m, 0, 0, 0);
        vrow(e, VOP_MUL, DT_F32, tmp, DT_F32, tmp, DT_F32, k + K_2P32 * F4, 1, m, 0, 0, 0);
        vrow(e, VOP_ADD, DT_F32, f, DT_F32, f, DT_F32, tmp, 1, m, 0, 0, 1);
      }
    }
    if (tobool) vrow(e, VOP_CNE, DT_F32, f, DT_F32, f, DT_F32, z, 1, m, 0, 0, 0);
    else if (f2i) vrow(e, VOP_TRUNC, DT_F32, f, DT_F32, f, DT_F32, 0, 1, m, 0, 0, 1);
    if (hi != 0) {
      vrow(e, VOP_MAX, DT_F32, f, DT_F32, f, DT_F32, k + K_LO * F4, 1, m, 0, 0, 0);
      vrow(e, VOP_MIN, DT_F32, f, DT_F32, f, DT_F32, k + K_HI * F4, 1, m, 0, 0, 0);
    }
    // Narrow and store.
    uint64_t res = out;
    if (ddt == IR_DT_F32) res = f;
    else if (is_16(ddt)) { // the low halves of i32 words
      uint64_t cnt[1] = {m};
      int64_t ss[1] = {4}, ds[1] = {2};
      vrow(e, VOP_MOV, DT_I32, out, DT_F32, f, DT_F32, 0, 1, m, 0, 0, 1);
      cc_dma_nd(e, SPACE_HBM, dst + (uint64_t)t0 * 2, SPACE_LOCAL, out, 2, 1, cnt, ss, ds);
      continue;
    } else if (ddt == IR_DT_U32) f32_to_u32(e, out, 4, f, tmp, m, k);
    else if (ddt == IR_DT_U64) {
      // The high word trunc(f / 2^32), the low word f less 2^32 times that
      // (exact: both are multiples of f's ulp), each a u32.
      uint64_t h = raw, t2 = raw + m * 4;
      vrow(e, VOP_MUL, DT_F32, h, DT_F32, f, DT_F32, k + K_2M32 * F4, 1, m, 0, 0, 0);
      vrow(e, VOP_TRUNC, DT_F32, h, DT_F32, h, DT_F32, 0, 1, m, 0, 0, 1);
      vrow(e, VOP_MUL, DT_F32, tmp, DT_F32, h, DT_F32, k + K_2P32 * F4, 1, m, 0, 0, 0);
      vrow(e, VOP_SUB, DT_F32, f, DT_F32, f, DT_F32, tmp, 1, m, 0, 0, 1);
      f32_to_u32(e, out, 8, f, tmp, m, k);
      f32_to_u32(e, out + 4, 8, h, t2, m, k);
    } else if (ddt == IR_DT_I64) {
      if (sdt == IR_DT_I32) { // the low word exactly, by a local copy
        uint64_t cnt[1] = {m};
        int64_t ss[1] = {4}, ds[1] = {8};
        cc_dma_nd(e, SPACE_LOCAL, out, SPACE_LOCAL, raw, 4, 1, cnt, ss, ds);
      } else vrow(e, VOP_MOV, DT_I32, out, DT_F32, f, DT_F32, 0, m, 1, 8, 4, 1);
      // The high word: -1 for a negative value, else 0.
      vrow(e, VOP_CLT, DT_F32, tmp, DT_F32, f, DT_F32, z, 1, m, 0, 0, 0);
      vrow(e, VOP_NEG, DT_F32, tmp, DT_F32, tmp, DT_F32, 0, 1, m, 0, 0, 1);
      vrow(e, VOP_MOV, DT_I32, out + 4, DT_F32, tmp, DT_F32, 0, m, 1, 8, 4, 1);
    } else vrow(e, unsigned_dt(ddt) ? VOP_MOVU : VOP_MOV, tile_dt(ddt), out, DT_F32, f, DT_F32, 0, 1, m, 0, 0, 1);
    store(e, dst + (uint64_t)t0 * (uint64_t)db, res, m * (uint64_t)db);
  }
  return cc_emit_failed(e, NULL, 0);
}

// Between the steps of one node: everything in flight done, VMEM free again.
static void step_boundary(lw *L) {
  cc_barrier(L->e);
  cc_scratch_reset(L->e);
}

// A fresh f32 tensor in HBM of t's shape.
static uint64_t hbm_f32(lw *L, const ir_type *t) { return cc_hbm_alloc(L->e, (uint64_t)ir_nelems(t) * F4); }

// One binary step of where/compare/logical ops on f32 tensors at a0, a1 of
// types t0, t1, into the f32 tensor at out of type ot (broadcasting).
static int ew_binary_at(lw *L, isa_vpu_op op, const ir_value *v0, uint64_t a0, const ir_value *v1, uint64_t a1,
                        const ir_type *ot, uint64_t out) {
  ew w = {0};
  const ir_value *in[2] = {v0, v1};
  ew_shape(&w, ot, in, 2);
  if (w.st[0][w.k - 1] == 0 && op != VOP_MASK && op != VOP_MASKN) { // src1 cannot broadcast along a row: swap
    static const isa_vpu_op mirror[64] = {[VOP_CEQ] = VOP_CEQ, [VOP_CNE] = VOP_CNE, [VOP_CLT] = VOP_CGT,
                                          [VOP_CLE] = VOP_CGE, [VOP_CGT] = VOP_CLT, [VOP_CGE] = VOP_CLE,
                                          [VOP_MUL] = VOP_MUL, [VOP_MAX] = VOP_MAX, [VOP_ADD] = VOP_ADD};
    if (mirror[op]) {
      op = mirror[op];
      in[0] = v1, in[1] = v0;
      uint64_t t = a0;
      a0 = a1, a1 = t;
      ew_shape(&w, ot, in, 2);
    }
  }
  w.hbm[0] = a0, w.hbm[1] = a1;
  w.alias = in[0] == in[1] && a0 == a1;
  w.expand_a = w.st[0][w.k - 1] == 0;
  w.sep_out = w.expand_a || (!w.full[0] && !w.full[1]);
  w.steps[w.nsteps++] = (ew_step){op, w.expand_a ? S_DST : S_A, S_B, 0};
  return ew_lower(L, &w, out);
}

static int lower_compare_logic(lw *L) {
  const ir_node *n = L->n;
  const ir_type *ot = &n->out[0]->ty;
  isa_vpu_op op;
  switch (n->op) {
  case IR_OP_EQUAL: op = VOP_CEQ; break;
  case IR_OP_NOT_EQUAL: case IR_OP_XOR: op = VOP_CNE; break;
  case IR_OP_LESS: op = VOP_CLT; break;
  case IR_OP_LESS_EQUAL: op = VOP_CLE; break;
  case IR_OP_GREATER: op = VOP_CGT; break;
  case IR_OP_GREATER_EQUAL: op = VOP_CGE; break;
  case IR_OP_AND: op = VOP_MUL; break; // on 0/1
  case IR_OP_OR: op = VOP_MAX; break;
  case IR_OP_NOT: { // x == 0
    ew w = {0};
    const ir_value *in = n->in[0];
    ew_shape(&w, ot, &in, 1);
    w.hbm[0] = L->in_addr[0];
    w.consts[0] = 0.0f, w.nconsts = 1;
    w.steps[w.nsteps++] = (ew_step){VOP_CEQ, S_A, S_CONST, 0};
    return ew_lower(L, &w, L->out_addr);
  }
  default: return lw_fail(L, "internal error: not a comparison");
  }
  return ew_binary_at(L, op, n->in[0], L->in_addr[0], n->in[1], L->in_addr[1], ot, L->out_addr);
}

// where(c, a, b) = mask(a, c) + maskn(b, c), exactly (docs/isa.md 5.6).
static int lower_where(lw *L) {
  const ir_node *n = L->n;
  const ir_type *ot = &n->out[0]->ty;
  ir_value tv = {.ty = *ot}; // the f32 temporaries' shape, for ew_shape
  uint64_t t1 = hbm_f32(L, ot), t2 = hbm_f32(L, ot);
  if (ew_binary_at(L, VOP_MASK, n->in[1], L->in_addr[1], n->in[0], L->in_addr[0], ot, t1)) return -1;
  step_boundary(L);
  if (ew_binary_at(L, VOP_MASKN, n->in[2], L->in_addr[2], n->in[0], L->in_addr[0], ot, t2)) return -1;
  step_boundary(L);
  return ew_binary_at(L, VOP_ADD, &tv, t1, &tv, t2, ot, L->out_addr);
}

static int lower_cast(lw *L) {
  const ir_node *n = L->n;
  return cvt_hbm(L, cc_addr(L->c, n->out[0]), n->out[0]->ty.dtype, cc_addr(L->c, n->in[0]), n->in[0]->ty.dtype,
                 ir_nelems(&n->in[0]->ty));
}

static bool typed_op(ir_op op) {
  switch (op) {
  case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV: case IR_OP_MAX: case IR_OP_MIN:
  case IR_OP_NEG: case IR_OP_ABS: case IR_OP_RELU: case IR_OP_CLIP:
  case IR_OP_EQUAL: case IR_OP_NOT_EQUAL: case IR_OP_LESS: case IR_OP_LESS_EQUAL: case IR_OP_GREATER:
  case IR_OP_GREATER_EQUAL: case IR_OP_AND: case IR_OP_OR: case IR_OP_XOR: case IR_OP_NOT: case IR_OP_WHERE:
    return true;
  default: return false;
  }
}

// An elementwise op with operands of any supported type: f32 copies of the
// other-typed inputs, the op in f32, its result converted to the output type.
static int lower_typed(lw *L, int (*f32_op)(lw *)) {
  const ir_node *n = L->n;
  bool conv = false;
  for (int i = 0; i < n->nin; i++) {
    const ir_value *v = n->in[i];
    if (v->ty.dtype == IR_DT_F32) continue;
    int j = 0;
    while (j < i && n->in[j] != v) j++;
    if (j < i) { // the same value again
      L->in_addr[i] = L->in_addr[j];
      continue;
    }
    uint64_t t = hbm_f32(L, &v->ty);
    if (cvt_hbm(L, t, IR_DT_F32, L->in_addr[i], v->ty.dtype, ir_nelems(&v->ty))) return -1;
    L->in_addr[i] = t, conv = true;
  }
  const ir_value *o = n->out[0];
  bool oconv = o->ty.dtype != IR_DT_F32;
  if (oconv) L->out_addr = hbm_f32(L, &o->ty);
  if (conv) step_boundary(L);
  if (f32_op(L)) return -1;
  if (!oconv) return 0;
  step_boundary(L);
  // An integer division rounds toward zero, as the conversion does.
  return cvt_hbm(L, cc_addr(L->c, o), o->ty.dtype, L->out_addr, IR_DT_F32, ir_nelems(&o->ty));
}

// ---------------------------------------------------------------- entry

int cc_lower_vpu(cc_lower_ctx *c, char *err, size_t errlen) {
  lw L;
  lw_init(&L, c);
  switch (c->n->op) {
  case IR_OP_CAST: lower_cast(&L); return lw_finish(&L, err, errlen);
  case IR_OP_WHERE: lower_typed(&L, lower_where); return lw_finish(&L, err, errlen);
  case IR_OP_EQUAL: case IR_OP_NOT_EQUAL: case IR_OP_LESS: case IR_OP_LESS_EQUAL: case IR_OP_GREATER:
  case IR_OP_GREATER_EQUAL: case IR_OP_AND: case IR_OP_OR: case IR_OP_XOR: case IR_OP_NOT:
    lower_typed(&L, lower_compare_logic);
    return lw_finish(&L, err, errlen);
  default:
    if (typed_op(c->n->op)) {
      bool f32 = true;
      for (int i = 0; i < c->n->nin; i++) f32 &= c->n->in[i]->ty.dtype == IR_DT_F32;
      f32 &= c->n->out[0]->ty.dtype == IR_DT_F32;
      if (!f32) {
        lower_typed(&L, c->n->nin == 2 ? lower_binary : lower_unary);
        return lw_finish(&L, err, errlen);
      }
    }
    break;
  }
  switch (c->n->op) {
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_DIV: lower_binary(&L); break;
  case IR_OP_RELU:
  case IR_OP_CLIP:
  case IR_OP_SIGMOID:
  case IR_OP_TANH:
  case IR_OP_HARDSIGMOID:
  case IR_OP_HARDSWISH: lower_unary(&L); break;
  case IR_OP_SOFTMAX:
  case IR_OP_LOG_SOFTMAX: lower_softmax(&L); break;
  case IR_OP_MAX:
  case IR_OP_MIN:
  case IR_OP_POW:
  case IR_OP_PRELU: lower_binary(&L); break;
  case IR_OP_EXP:
  case IR_OP_LOG:
  case IR_OP_SQRT:
  case IR_OP_RSQRT:
  case IR_OP_RECIPROCAL:
  case IR_OP_ERF:
  case IR_OP_NEG:
  case IR_OP_ABS:
  case IR_OP_GELU:
  case IR_OP_LEAKY_RELU: lower_unary(&L); break;
  case IR_OP_REDUCE_SUM:
  case IR_OP_REDUCE_MEAN:
  case IR_OP_REDUCE_MAX:
  case IR_OP_REDUCE_MIN:
  case IR_OP_REDUCE_PROD: lower_reduce(&L); break;
  case IR_OP_LAYERNORM: lower_layernorm(&L); break;
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL: lower_pool(&L); break;
  case IR_OP_GLOBAL_AVGPOOL: lower_global_avgpool(&L); break;
  case IR_OP_TRANSPOSE:
  case IR_OP_CONCAT:
  case IR_OP_SPLIT:
  case IR_OP_SLICE:
  case IR_OP_PAD:
  case IR_OP_RESHAPE:
  case IR_OP_IDENTITY: return cc_lower_move(c, err, errlen);
  default: lw_fail(&L, "internal error: not a vector-unit op"); break;
  }
  return lw_finish(&L, err, errlen);
}
