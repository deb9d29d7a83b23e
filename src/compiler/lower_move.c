// Lowering of the data-movement ops (transpose, concat, split, slice, pad),
// the views (reshape, identity: no code), and the check of what the three
// lowerings support.
//
// Movement is bytes, whatever the dtype. Most of it is one strided DMA from
// HBM to HBM, which reads and writes every byte once and needs no VMEM: a
// DMA block has a contiguous run and up to three strided dims (negative
// strides walk backwards), more dims loop. A transpose that moves the
// innermost dim would make runs of one element; f32 ones go through VMEM
// instead, in tiles: strided DMA in, v.trans, strided DMA out, double
// buffered.
#include "compiler/compiler.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
  cc_lower_ctx *c;
  cc_emit *e;
  const ir_node *n;
  char where[160];
  bool own_error;
} mv;

static int mv_fail(mv *M, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mv_fail(mv *M, const char *fmt, ...) {
  char msg[CC_ERR_LEN - 200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!cc_emit_failed(M->e, NULL, 0)) {
    cc_emit_fail(M->e, "%s: %s", M->where, msg);
    M->own_error = true;
  }
  return -1;
}

static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// Row-major element strides of a type.
static void strides(const ir_type *t, int64_t *s) {
  int64_t m = 1;
  for (int i = t->rank - 1; i >= 0; i--) s[i] = m, m *= t->dims[i];
}

// ---------------------------------------------------------------- transpose

// Bytes of one tile buffer when `total` bytes stream through VMEM (the rule
// of lower_vpu.c): about a quarter of the tensor, at least 4 HBM latencies'
// worth of transfer, at most 4 times that or 256 KiB.
static uint64_t tile_cap(const mv *M, uint64_t total) {
  const chip_config *ch = M->c->chip;
  double bpc = ch->hbm_bandwidth / ch->clock_hz;
  uint64_t lo = (uint64_t)(bpc * 4 * (ch->hbm_latency > 16 ? ch->hbm_latency : 16));
  uint64_t hi = 4 * lo > (256u << 10) ? 4 * lo : (256u << 10);
  uint64_t cap = total / 4;
  return cap < lo ? lo : cap > hi ? hi : cap;
}

// The transpose without its dims of 1, with runs of input dims that stay
// adjacent and in order in the output merged: merged input dims d[0..r-1]
// (input order), output dim i is merged input dim p[i]. Returns r.
static int transpose_dims(const ir_node *n, int64_t *d, int *p) {
  const ir_type *t = &n->in[0]->ty;
  int kept[IR_MAX_DIMS], q[IR_MAX_DIMS], m = 0, mo = 0;
  for (int i = 0; i < t->rank; i++) kept[i] = t->dims[i] == 1 ? -1 : m++;
  for (int i = 0; i < t->rank; i++) // output order, as indices of kept input dims
    if (kept[n->a.perm[i]] >= 0) q[mo++] = kept[n->a.perm[i]];
  int gfirst[IR_MAX_DIMS], ng = 0; // groups in output order: first kept index
  int64_t gsize[IR_MAX_DIMS];
  int64_t kd[IR_MAX_DIMS] = {0}; // only its first m are read; -O3 cannot see that
  for (int i = 0, j = 0; i < t->rank; i++)
    if (kept[i] >= 0) kd[j++] = t->dims[i];
  for (int i = 0; i < mo; i++) {
    if (ng && q[i] == q[i - 1] + 1) {
      gsize[ng - 1] *= kd[q[i]];
      continue;
    }
    gfirst[ng] = q[i], gsize[ng] = kd[q[i]], ng++;
  }
  for (int g = 0; g < ng; g++) {
    int rank = 0; // position of group g in input order
    for (int h = 0; h < ng; h++) rank += gfirst[h] < gfirst[g];
    d[rank] = gsize[g], p[g] = rank;
  }
  return ng;
}

static int lower_transpose(mv *M) {
  cc_emit *e = M->e;
  const ir_node *n = M->n;
  int es = ir_dtypes[n->in[0]->ty.dtype].bytes;
  uint64_t x = cc_addr(M->c, n->in[0]), y = cc_addr(M->c, n->out[0]);
  if (ir_nelems(&n->in[0]->ty) == 0) return 0;
  int64_t d[IR_MAX_DIMS];
  int p[IR_MAX_DIMS];
  int r = transpose_dims(n, d, p);
  int64_t S[IR_MAX_DIMS], To[IR_MAX_DIMS]; // input strides; output strides by input dim
  int64_t m = 1;
  for (int i = r - 1; i >= 0; i--) S[i] = m, m *= d[i];
  m = 1;
  for (int i = r - 1; i >= 0; i--) To[p[i]] = m, m *= d[p[i]];
  if (r <= 1) { // the same bytes
    cc_copy(e, SPACE_HBM, y, SPACE_HBM, x, ir_nbytes(&n->in[0]->ty));
    return 0;
  }
  uint64_t nn[IR_MAX_DIMS];
  int64_t ss[IR_MAX_DIMS], ds[IR_MAX_DIMS];
  if (p[r - 1] == r - 1 || n->in[0]->ty.dtype != IR_DT_F32) {
    // Rows stay rows (or not f32): one strided HBM -> HBM copy, dims in output order.
    int k = 0;
    bool keep_last = p[r - 1] == r - 1;
    for (int i = 0; i < r - keep_last; i++) nn[k] = (uint64_t)d[p[i]], ss[k] = S[p[i]] * es, ds[k] = To[p[i]] * es, k++;
    uint64_t inner = (uint64_t)(keep_last ? d[r - 1] : 1) * (uint64_t)es;
    cc_dma_nd(e, SPACE_HBM, y, SPACE_HBM, x, inner, k, nn, ss, ds);
    return 0;
  }

  // Through VMEM: the input dim kk becomes the output's innermost; the input's
  // innermost, ll, goes elsewhere. A tile is rk x rl elements of those two
  // dims, for nb consecutive indices of one more dim bb (the largest other).
  int kk = p[r - 1], ll = r - 1, bb = -1;
  for (int i = 0; i < r; i++)
    if (i != kk && i != ll && (bb < 0 || d[i] > d[bb])) bb = i;
  uint64_t avail = cc_vmem_free_bytes(e), slack = 4 * 64;
  int64_t maxel = avail > slack ? (int64_t)((avail - slack) / (4 * 4)) : 0; // 2 sets of in + out
  maxel = imin(maxel, (int64_t)(tile_cap(M, ir_nbytes(&n->in[0]->ty)) / 4));
  if (maxel < 1)
    return mv_fail(M, "a tile needs %" PRIu64 " bytes of VMEM, chip '%s' has %" PRIu64 " free", slack + 16,
                   M->c->chip->name, avail);
  int64_t rk = d[kk], rl = d[ll], nb = 1;
  if (rk * rl <= maxel) {
    if (bb >= 0) nb = imin(d[bb], maxel / (rk * rl));
  } else {
    int64_t side = 1;
    while ((side + 1) * (side + 1) <= maxel) side++;
    if (rl <= side) rk = maxel / rl;
    else if (rk <= side) rl = maxel / rk;
    else rk = side, rl = maxel / side;
    rk = imin(rk, d[kk]), rl = imin(rl, d[ll]);
  }
  uint64_t tile = (uint64_t)(nb * rk * rl) * 4;
  uint64_t ib[2], ob[2];
  for (int s = 0; s < 2; s++) {
    ib[s] = cc_vmem_alloc(e, tile, "a transpose tile");
    ob[s] = cc_vmem_alloc(e, tile, "a transposed tile");
  }
  if (cc_emit_failed(e, NULL, 0)) return -1;
  // Tiles: every index of the other dims, and chunks of bb, kk, ll.
  int64_t cnt[IR_MAX_DIMS], T = 1;
  for (int i = 0; i < r; i++) {
    int64_t step = i == kk ? rk : i == ll ? rl : i == bb ? nb : 1;
    cnt[i] = (d[i] + step - 1) / step;
    T *= cnt[i];
  }
  for (int64_t t = 0; t <= T; t++) {
    for (int phase = 0; phase < 2; phase++) {
      int64_t ti = phase == 0 ? t : t - 1;
      if (ti < 0 || ti >= T) continue;
      int64_t idx[IR_MAX_DIMS], rem = ti;
      for (int i = r - 1; i >= 0; i--) idx[i] = rem % cnt[i], rem /= cnt[i];
      int64_t k0 = idx[kk] * rk, l0 = idx[ll] * rl, nk = imin(rk, d[kk] - k0), nl = imin(rl, d[ll] - l0);
      int64_t b0 = bb >= 0 ? idx[bb] * nb : 0, nbb = bb >= 0 ? imin(nb, d[bb] - b0) : 1;
      int64_t xo = 0, yo = 0;
      for (int i = 0; i < r; i++) {
        int64_t v = i == kk ? k0 : i == ll ? l0 : i == bb ? b0 : idx[i];
        xo += v * S[i], yo += v * To[i];
      }
      int s = (int)(ti & 1);
      if (phase == 0) { // in[b][k][l]
        uint64_t n2[2] = {(uint64_t)nbb, (uint64_t)nk};
        int64_t s2[2] = {bb >= 0 ? S[bb] * 4 : 0, S[kk] * 4}, d2[2] = {nk * nl * 4, nl * 4};
        cc_dma_nd(e, SPACE_LOCAL, ib[s], SPACE_HBM, x + (uint64_t)xo * 4, (uint64_t)nl * 4, 2, n2, s2, d2);
        continue;
      }
      // out[l][b*nk + k] = in[b*nk + k][l]
      cc_vblock vb = {.rows = (uint64_t)(nbb * nk), .cols = (uint64_t)nl, .dst_stride = nbb * nk * 4,
                      .src1_stride = nl * 4};
      cc_vpu(e, VOP_TRANS, DT_F32, ob[s], DT_F32, ib[s], DT_F32, 0, &vb);
      uint64_t n2[2] = {(uint64_t)nl, (uint64_t)nbb};
      int64_t s2[2] = {nbb * nk * 4, nk * 4}, d2[2] = {To[ll] * 4, bb >= 0 ? To[bb] * 4 : 0};
      cc_dma_nd(e, SPACE_HBM, y + (uint64_t)yo * 4, SPACE_LOCAL, ob[s], (uint64_t)nk * 4, 2, n2, s2, d2);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- concat, split, slice

// [outer, axis, inner] view of a type.
static void axis_split(const ir_type *t, int axis, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= t->dims[i];
  for (int i = axis + 1; i < t->rank; i++) *inner *= t->dims[i];
}

static int lower_concat_split(mv *M) {
  const ir_node *n = M->n;
  bool concat = n->op == IR_OP_CONCAT;
  const ir_value *whole = concat ? n->out[0] : n->in[0];
  // int8 storage (cc_place.q8): every piece of an int8 concatenation is too
  int es = M->c->place[whole->id].q8 ? 1 : ir_dtypes[whole->ty.dtype].bytes, axis = n->a.axis;
  int64_t outer, inner;
  axis_split(&whole->ty, axis, &outer, &inner);
  int64_t total = whole->ty.dims[axis], off = 0;
  uint64_t base = cc_addr(M->c, whole);
  int parts = concat ? n->nin : n->nout;
  for (int i = 0; i < parts; i++) {
    const ir_value *v = concat ? n->in[i] : n->out[i];
    int64_t len = v->ty.dims[axis];
    uint64_t nn[1] = {(uint64_t)outer};
    int64_t sp[1] = {len * inner * es}, sw[1] = {total * inner * es};
    uint64_t at = base + (uint64_t)(off * inner * es), pa = cc_addr(M->c, v);
    // a piece its producer wrote in place (cc_place.pitch) is there already
    if (len * inner * outer > 0 && !(concat && M->c->place[v->id].pitch)) {
      if (concat) cc_dma_nd(M->e, SPACE_HBM, at, SPACE_HBM, pa, (uint64_t)(len * inner * es), 1, nn, sp, sw);
      else cc_dma_nd(M->e, SPACE_HBM, pa, SPACE_HBM, at, (uint64_t)(len * inner * es), 1, nn, sw, sp);
    }
    off += len;
  }
  return 0;
}

static int lower_slice(mv *M) {
  const ir_node *n = M->n;
  const ir_type *xt = &n->in[0]->ty, *yt = &n->out[0]->ty;
  int es = ir_dtypes[xt->dtype].bytes, r = xt->rank;
  if (ir_nelems(yt) == 0) return 0;
  int64_t S[IR_MAX_DIMS], T[IR_MAX_DIMS];
  strides(xt, S), strides(yt, T);
  uint64_t nn[IR_MAX_DIMS];
  int64_t ss[IR_MAX_DIMS], ds[IR_MAX_DIMS], off = 0;
  for (int i = 0; i < r; i++) {
    off += n->a.start[i] * S[i];
    nn[i] = (uint64_t)yt->dims[i], ss[i] = n->a.step[i] * S[i] * es, ds[i] = T[i] * es;
  }
  cc_dma_nd(M->e, SPACE_HBM, cc_addr(M->c, n->out[0]), SPACE_HBM, cc_addr(M->c, n->in[0]) + (uint64_t)(off * es),
         (uint64_t)es, r, nn, ss, ds);
  return 0;
}

// ---------------------------------------------------------------- pad
//
// The input goes to the interior of the output (negative pads crop it);
// then the border: constant mode writes the value from a row of copies in
// VMEM, each region once; edge, reflect and wrap copy slabs of the output
// to itself, dim by dim from the innermost, each slab spanning the dims
// already padded.

// expand: one strided HBM -> HBM copy whose broadcast dims read with stride 0.
static int lower_expand(mv *M) {
  const ir_node *n = M->n;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  int es = ir_dtypes[x->dtype].bytes, r = y->rank;
  if (ir_nelems(y) == 0) return 0;
  uint64_t nn[IR_MAX_DIMS];
  int64_t ss[IR_MAX_DIMS], ds[IR_MAX_DIMS], sx = es, sy = es;
  for (int d = r - 1; d >= 0; d--) {
    int dx = d - (r - x->rank);
    nn[d] = (uint64_t)y->dims[d];
    ss[d] = dx >= 0 && x->dims[dx] != 1 ? sx : 0;
    ds[d] = sy;
    if (dx >= 0) sx *= x->dims[dx];
    sy *= y->dims[d];
  }
  cc_dma_nd(M->e, SPACE_HBM, cc_addr(M->c, n->out[0]), SPACE_HBM, cc_addr(M->c, n->in[0]), (uint64_t)es, r, nn, ss, ds);
  return 0;
}

// tile: one strided copy of X per combination of repeats.
static int lower_tile(mv *M) {
  const ir_node *n = M->n;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  int es = ir_dtypes[x->dtype].bytes, r = x->rank;
  if (ir_nelems(y) == 0) return 0;
  uint64_t nn[IR_MAX_DIMS];
  int64_t ss[IR_MAX_DIMS], ds[IR_MAX_DIMS], sx = es, sy = es, q[IR_MAX_DIMS] = {0};
  for (int d = r - 1; d >= 0; d--) {
    nn[d] = (uint64_t)x->dims[d], ss[d] = sx, ds[d] = sy;
    sx *= x->dims[d], sy *= y->dims[d];
  }
  uint64_t xa = cc_addr(M->c, n->in[0]), ya = cc_addr(M->c, n->out[0]);
  for (;;) {
    int64_t off = 0;
    for (int d = 0; d < r; d++) off += q[d] * x->dims[d] * ds[d];
    if (r == 0) {
      cc_copy(M->e, SPACE_HBM, ya, SPACE_HBM, xa, (uint64_t)es);
      return 0;
    }
    cc_dma_nd(M->e, SPACE_HBM, ya + (uint64_t)off, SPACE_HBM, xa, (uint64_t)es, r, nn, ss, ds);
    int d = r - 1;
    while (d >= 0 && ++q[d] == n->a.repeats[d]) q[d--] = 0;
    if (d < 0) return 0;
  }
}

static int lower_pad(mv *M) {
  cc_emit *e = M->e;
  const ir_node *n = M->n;
  const ir_type *xt = &n->in[0]->ty, *yt = &n->out[0]->ty;
  int es = ir_dtypes[xt->dtype].bytes, r = xt->rank;
  uint64_t x = cc_addr(M->c, n->in[0]), y = cc_addr(M->c, n->out[0]);
  if (ir_nelems(yt) == 0) return 0;
  int64_t S[IR_MAX_DIMS], T[IR_MAX_DIMS], ob[IR_MAX_DIMS], cnt[IR_MAX_DIMS], ib[IR_MAX_DIMS];
  strides(xt, S), strides(yt, T);
  bool empty = false, interior = false;
  for (int i = 0; i < r; i++) {
    int64_t pb = n->a.pads[i], pe = n->a.pads[r + i];
    ob[i] = imax(pb, 0), ib[i] = imax(-pb, 0);
    cnt[i] = xt->dims[i] - ib[i] - imax(-pe, 0);
    if (cnt[i] <= 0) empty = true, cnt[i] = 0;
    interior |= n->a.interior[i] > 0;
  }
  uint64_t nn[IR_MAX_DIMS] = {0};
  int64_t ss[IR_MAX_DIMS] = {0}, ds[IR_MAX_DIMS] = {0};
  if (interior) {
    // Interior padding (XLA's, and a transposed convolution's stride): the
    // whole output takes the value (below, as if the input were empty), then
    // the input goes to every (interior+1)-th position, after the fill.
    for (int i = 0; i < r; i++)
      if (n->a.pads[i] < 0 || n->a.pads[r + i] < 0)
        return mv_fail(M, "interior padding with negative edge padding is not supported");
    if (n->a.pad_mode != IR_PAD_CONSTANT) return mv_fail(M, "interior padding needs constant mode");
    empty = true;
  }
  if (!empty) {
    int64_t xo = 0, yo = 0;
    for (int i = 0; i < r; i++) {
      xo += ib[i] * S[i], yo += ob[i] * T[i];
      nn[i] = (uint64_t)cnt[i], ss[i] = S[i] * es, ds[i] = T[i] * es;
    }
    cc_dma_nd(e, SPACE_HBM, y + (uint64_t)(yo * es), SPACE_HBM, x + (uint64_t)(xo * es), (uint64_t)es, r, nn, ss, ds);
  }

  if (n->a.pad_mode == IR_PAD_CONSTANT) {
    // Regions: for each dim d, the border along d, with the dims before d
    // limited to the interior and the dims after d whole.
    typedef struct {
      uint64_t at, n[IR_MAX_DIMS];
      int64_t ds[IR_MAX_DIMS];
      uint64_t run; // contiguous bytes at the inner end
      int k;        // dims outside the run
    } region;
    region rg[2 * IR_MAX_DIMS + 1];
    int nrg = 0;
    for (int d = 0; d < (empty ? 1 : r); d++)
      for (int side = 0; side < 2; side++) {
        int64_t lo = empty ? 0 : side == 0 ? 0 : ob[d] + cnt[d], len = empty ? yt->dims[d] : side == 0 ? ob[d] : yt->dims[d] - lo;
        if (empty && side) continue;
        if (len <= 0) continue;
        region *g = &rg[nrg];
        uint64_t at = y;
        int64_t dn[IR_MAX_DIMS];
        for (int i = 0; i < r; i++) {
          int64_t o = i < d ? ob[i] : i == d ? lo : 0;
          dn[i] = i < d && !empty ? cnt[i] : i == d ? len : yt->dims[i];
          at += (uint64_t)(o * T[i] * es);
        }
        // Contiguous inner run, then the remaining dims.
        uint64_t run = (uint64_t)es;
        int k = r;
        while (k > 0 && (dn[k - 1] == 1 || T[k - 1] * es == (int64_t)run)) run *= (uint64_t)dn[--k];
        g->at = at, g->run = run, g->k = 0;
        for (int i = 0; i < k; i++)
          if (dn[i] != 1) g->n[g->k] = (uint64_t)dn[i], g->ds[g->k++] = T[i] * es;
        nrg++;
      }
    if (!nrg) return 0;
    uint64_t maxrun = 0;
    for (int i = 0; i < nrg; i++) maxrun = rg[i].run > maxrun ? rg[i].run : maxrun;
    uint64_t cap = cc_vmem_free_bytes(e) / 2;
    cap = cap > (16u << 10) ? (16u << 10) : cap;
    cap -= cap % (uint64_t)es;
    if (cap < (uint64_t)es) return mv_fail(M, "no VMEM left for the pad value");
    uint64_t rowb = maxrun < cap ? maxrun : cap;
    uint8_t *row = malloc(rowb);
    if (!row) return mv_fail(M, "out of host memory");
    for (uint64_t i = 0; i < rowb / (uint64_t)es; i++) ir_set_float(row, xt->dtype, (int64_t)i, n->a.pad_value);
    uint64_t h = cc_hbm_const(e, row, rowb);
    free(row);
    uint64_t v = cc_vmem_alloc(e, rowb, "the pad value");
    if (cc_emit_failed(e, NULL, 0)) return -1;
    cc_copy(e, SPACE_LOCAL, v, SPACE_HBM, h, rowb);
    for (int i = 0; i < nrg; i++) {
      region *g = &rg[i];
      // Runs longer than the row repeat it: the largest piece that divides the run.
      uint64_t el = g->run / (uint64_t)es, f = rowb / (uint64_t)es < el ? rowb / (uint64_t)es : el;
      while (el % f) f--;
      int k = g->k;
      int64_t zs[IR_MAX_DIMS + 1] = {0};
      g->n[k] = el / f, g->ds[k] = (int64_t)(f * (uint64_t)es);
      cc_dma_nd(e, SPACE_HBM, g->at, SPACE_LOCAL, v, f * (uint64_t)es, k + 1, g->n, zs, g->ds);
    }
    if (interior) {
      int64_t yo = 0;
      for (int i = 0; i < r; i++) {
        yo += ob[i] * T[i];
        nn[i] = (uint64_t)xt->dims[i], ss[i] = S[i] * es, ds[i] = T[i] * (n->a.interior[i] + 1) * es;
      }
      cc_dma_nd(e, SPACE_HBM, y + (uint64_t)(yo * es), SPACE_HBM, x, (uint64_t)es, r, nn, ss, ds);
    }
    return 0;
  }

  // edge, reflect, wrap: from the output's own interior.
  if (empty) return mv_fail(M, "%s padding of an empty interior", ir_pad_mode_names[n->a.pad_mode]);
  for (int d = r - 1; d >= 0; d--)
    for (int side = 0; side < 2; side++) {
      int64_t pb = n->a.pads[d], pe = n->a.pads[r + d];
      int64_t len = side == 0 ? ob[d] : yt->dims[d] - ob[d] - cnt[d];
      if (len <= 0) continue;
      int64_t dst0 = side == 0 ? 0 : ob[d] + cnt[d], src0, step;
      switch (n->a.pad_mode) {
      case IR_PAD_EDGE: src0 = side == 0 ? ob[d] : ob[d] + cnt[d] - 1, step = 0; break;
      case IR_PAD_REFLECT:
        if (len > cnt[d] - 1)
          return mv_fail(M, "reflect padding of %" PRId64 " exceeds the %" PRId64 " kept elements of dim %d", len,
                         cnt[d], d);
        src0 = side == 0 ? 2 * ob[d] : ob[d] + cnt[d] - 2, step = -1;
        break;
      default: // wrap
        if (pb < 0 || pe < 0 || len > cnt[d])
          return mv_fail(M, "wrap padding of dim %d with pads %" PRId64 ", %" PRId64 " is not supported", d, pb, pe);
        src0 = side == 0 ? cnt[d] : ob[d], step = 1;
        break;
      }
      int64_t so = 0, dof = 0;
      for (int i = 0; i < r; i++) {
        int64_t o = i < d ? ob[i] : 0;
        nn[i] = (uint64_t)(i < d ? cnt[i] : i == d ? len : yt->dims[i]);
        ss[i] = (i == d ? step : 1) * T[i] * es, ds[i] = T[i] * es;
        so += (i == d ? src0 : o) * T[i], dof += (i == d ? dst0 : o) * T[i];
      }
      cc_dma_nd(e, SPACE_HBM, y + (uint64_t)(dof * es), SPACE_HBM, y + (uint64_t)(so * es), (uint64_t)es, r, nn, ss, ds);
    }
  return 0;
}

// ---------------------------------------------------------------- views

static bool all_ones_but_order(const ir_node *n) { // transpose keeping the order of non-1 dims
  const ir_type *t = &n->in[0]->ty;
  int last = -1;
  for (int i = 0; i < t->rank; i++) {
    int d = n->a.perm[i];
    if (t->dims[d] == 1) continue;
    if (d < last) return false;
    last = d;
  }
  return true;
}

bool cc_is_view(const ir_node *n) {
  switch (n->op) {
  case IR_OP_RESHAPE:
  case IR_OP_IDENTITY: return true;
  case IR_OP_TRANSPOSE: return all_ones_but_order(n);
  case IR_OP_CONCAT: return n->nin == 1;
  case IR_OP_SPLIT: return n->nout == 1;
  case IR_OP_SLICE: {
    const ir_type *t = &n->in[0]->ty;
    for (int i = 0; i < t->rank; i++)
      if (t->dims[i] > 1 && (n->a.start[i] != 0 || n->a.step[i] != 1 || n->out[0]->ty.dims[i] != t->dims[i]))
        return false;
    return ir_nelems(&n->out[0]->ty) == ir_nelems(t);
  }
  case IR_OP_PAD:
    for (int i = 0; i < 2 * n->in[0]->ty.rank; i++)
      if (n->a.pads[i]) return false;
    return true;
  default: return false;
  }
}

// ---------------------------------------------------------------- support

static bool is_move(ir_op op) {
  return op == IR_OP_TRANSPOSE || op == IR_OP_CONCAT || op == IR_OP_SPLIT || op == IR_OP_SLICE || op == IR_OP_PAD ||
         op == IR_OP_RESHAPE || op == IR_OP_IDENTITY || op == IR_OP_EXPAND || op == IR_OP_TILE;
}

static bool fail_why(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail_why(char *why, size_t len, const char *fmt, ...) {
  if (why && len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
  }
  return false;
}

// The types lower_vpu.c converts to and from f32 (docs/compiler.md, "Other types").
static bool typed_ok(const ir_node *n, char *why, size_t whylen) {
  for (int i = 0; i < n->nin + n->nout; i++) {
    ir_dtype dt = i < n->nin ? n->in[i]->ty.dtype : n->out[i - n->nin]->ty.dtype;
    if (dt == IR_DT_F16 || dt == IR_DT_F64 || dt == IR_DT_UNDEF)
      return fail_why(why, whylen,
                      "dtype %s is not supported by the lowering (f32, bf16 and the integer types and bool are)",
                      ir_dtypes[dt].name);
  }
  return true;
}

bool cc_lower_supported(const ir_node *n, char *why, size_t whylen) {
  const char *op = ir_ops[n->op].name;
  switch (n->op) {
  case IR_OP_MATMUL:
  case IR_OP_CONV:
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL:
  case IR_OP_GLOBAL_AVGPOOL:
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_DIV:
  case IR_OP_RELU:
  case IR_OP_CLIP:
  case IR_OP_SIGMOID:
  case IR_OP_TANH:
  case IR_OP_HARDSIGMOID:
  case IR_OP_HARDSWISH:
  case IR_OP_SOFTMAX:
  case IR_OP_LOG_SOFTMAX:
  case IR_OP_EXP:
  case IR_OP_LOG:
  case IR_OP_SQRT:
  case IR_OP_RSQRT:
  case IR_OP_RECIPROCAL:
  case IR_OP_ERF:
  case IR_OP_NEG:
  case IR_OP_ABS:
  case IR_OP_GELU:
  case IR_OP_LEAKY_RELU:
  case IR_OP_MAX:
  case IR_OP_MIN:
  case IR_OP_POW:
  case IR_OP_PRELU:
  case IR_OP_REDUCE_SUM:
  case IR_OP_REDUCE_MEAN:
  case IR_OP_REDUCE_MAX:
  case IR_OP_REDUCE_MIN:
  case IR_OP_REDUCE_PROD:
  case IR_OP_LAYERNORM: break;
  case IR_OP_QUANTIZE_LINEAR: // integer types: lower_q8.c and lower_mxu.c check them
  case IR_OP_DEQUANTIZE_LINEAR:
  case IR_OP_MATMUL_INTEGER:
  case IR_OP_QLINEAR_MATMUL: return true;
  case IR_OP_CONV_INTEGER:
  case IR_OP_QLINEAR_CONV:
    if (!n->a.nhwc) return fail_why(why, whylen, "%s without the channels-last layout is not supported by the lowering", op);
    return true;
  case IR_OP_CAST:
  case IR_OP_EQUAL:
  case IR_OP_NOT_EQUAL:
  case IR_OP_LESS:
  case IR_OP_LESS_EQUAL:
  case IR_OP_GREATER:
  case IR_OP_GREATER_EQUAL:
  case IR_OP_AND:
  case IR_OP_OR:
  case IR_OP_XOR:
  case IR_OP_NOT:
  case IR_OP_WHERE: return typed_ok(n, why, whylen);
  default:
    if (is_move(n->op)) { // bytes: any dtype
      for (int i = 0; i < n->nin; i++)
        if (ir_dtypes[n->in[i]->ty.dtype].bytes == 0)
          return fail_why(why, whylen, "dtype %s is not supported by the lowering", ir_dtypes[n->in[i]->ty.dtype].name);
      return true;
    }
    return fail_why(why, whylen, "op '%s' is not supported by the lowering", op);
  }
  // Computation: f32 only, but for the elementwise ops lower_vpu.c converts.
  switch (n->op) {
  case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV: case IR_OP_MAX: case IR_OP_MIN:
  case IR_OP_NEG: case IR_OP_ABS: case IR_OP_RELU: case IR_OP_CLIP: return typed_ok(n, why, whylen);
  default: break;
  }
  for (int i = 0; i < n->nin; i++)
    if (n->in[i]->ty.dtype != IR_DT_F32)
      return fail_why(why, whylen, "dtype %s is not supported by the lowering", ir_dtypes[n->in[i]->ty.dtype].name);
  for (int i = 0; i < n->nout; i++)
    if (n->out[i]->ty.dtype != IR_DT_F32)
      return fail_why(why, whylen, "dtype %s is not supported by the lowering", ir_dtypes[n->out[i]->ty.dtype].name);
  int rank = n->nin ? n->in[0]->ty.rank : 0;
  switch (n->op) {
  case IR_OP_CONV:
  case IR_OP_MAXPOOL:
  case IR_OP_AVGPOOL:
    if (!n->a.nhwc) return fail_why(why, whylen, "%s without the channels-last layout is not supported by the lowering", op);
    if (rank != 3 && rank != 4)
      return fail_why(why, whylen, "%s over %d spatial dims (rank %d) is not supported by the lowering", op, rank - 2,
                      rank);
    if (n->op != IR_OP_CONV && (n->a.kernel[0] > 64 || (rank == 4 && n->a.kernel[1] > 64)))
      return fail_why(why, whylen, "%s with a window larger than 64 is not supported by the lowering", op);
    break;
  default: break;
  }
  return true;
}

// ---------------------------------------------------------------- entry

int cc_lower_move(cc_lower_ctx *c, char *err, size_t errlen) {
  mv M = {.c = c, .e = c->e, .n = c->n};
  ir_node_where(c->n, M.where, sizeof M.where);
  if (!is_move(c->n->op)) return cc_lower_vpu(c, err, errlen);
  if (!cc_is_view(c->n)) {
    switch (c->n->op) {
    case IR_OP_TRANSPOSE: lower_transpose(&M); break;
    case IR_OP_CONCAT:
    case IR_OP_SPLIT: lower_concat_split(&M); break;
    case IR_OP_SLICE: lower_slice(&M); break;
    case IR_OP_PAD: lower_pad(&M); break;
    case IR_OP_EXPAND: lower_expand(&M); break;
    case IR_OP_TILE: lower_tile(&M); break;
    default: break; // reshape, identity: views
    }
  }
  char msg[CC_ERR_LEN];
  if (!cc_emit_failed(c->e, msg, sizeof msg)) return 0;
  if (M.own_error) snprintf(err, errlen, "%s", msg);
  else snprintf(err, errlen, "%.200s: %.800s", M.where, msg);
  return -1;
}
