// Matmul and convolution on the MXU (docs/compiler.md, "Lowering: the MXU").
//
// Every product is a convolution over a channels-last pixel grid: a matmul is
// a 1x1 convolution over its rows. Output pixels are tiled into m-tiles that
// fit an accumulator buffer, output channels into n-tiles of the array's
// width, and the reduction (kernel positions x input channels) into k-tiles
// of its height. Grouped convolutions pack several groups into one block with
// block-diagonal weights, as many as the cost model finds cheapest.
//
// Per m-tile the pipeline is: LOAD the input rows (f32, HBM to VMEM), CONVERT
// them to bf16 (split into three bf16 parts for precision highest) into a
// zero-padded slab, gather the im2col matrix with local DMAs, run the passes
// (MM) k-tile by k-tile into an accumulator buffer, then the EPILOGUE (bias,
// residual, activation) on the vector unit and STORE to HBM. Emission order
// staggers the stages over successive m-tiles so that DMA, MXU and VPU work
// overlap; the emitter adds the waits.
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"
#include "sim/numerics.h"

#define NPAIRS_MAX 6

typedef struct {
  cc_lower_ctx *c;
  cc_emit *e;
  const chip_config *chip;
  int R, C, nmxu;
  int parts;                        // bf16 parts per operand: 1 (default) or 3 (highest)
  int npairs;                       // products summed per k-tile
  int pair_a[NPAIRS_MAX], pair_b[NPAIRS_MAX];

  // geometry: input [N, H, W, Cin], output [N, OH, OW, M]
  int64_t N, H, W, Cin, OH, OW, M;
  int64_t KH, KW, sh, sw, dh, dw, pt, pl;
  int64_t groups, cin_g, cout_g;
  bool flat;                        // 1x1, stride 1, no padding: pixels are rows
  // The passes read windows of the slab (mxu.mm ..., win) instead of an
  // im2col matrix: k-tiles then lie within one kernel row, whose positions
  // are contiguous in the slab (dense, undilated), win_pieces of them a row.
  bool win;
  int64_t win_pieces;
  uint64_t x_addr, y_addr, res_addr;
  int64_t y_pitch; // elements from one output row to the next: M, or a concatenation's width (cc_place.pitch)
  bool has_res;
  ir_act act;
  float lo, hi;
  bool pscale_on, pscale_div;       // the product times (divided by) pscale first
  float pscale;

  int64_t G, nblocks;               // groups per block (the last may have fewer), blocks

  // weights: constant (pre-arranged bf16 [block][part][Kb][Nb] in HBM) or
  // converted at run time from an f32 [K, M] matrix in HBM
  bool w_runtime;
  uint64_t w_hbm, b_hbm;            // b_hbm: f32 [M] bias or 0 when absent
  bool has_bias;
  uint64_t w_src_f32;               // runtime: f32 B
  uint64_t w_pre;                   // VMEM address of prefetched weights, UINT64_MAX if none
  bool w_conv;                      // runtime weights in ONNX conv layout [M, C, KH, KW]

  // int8 (docs/compiler.md, "Quantisation"): the MXU multiplies int8 into
  // int32; mdt/es are the operand type and its size (bf16, 2 otherwise)
  isa_dtype mdt;
  int es;
  bool q8;
  float x_inv;                      // q8: the input is quantised as sat8(rne(x * x_inv + x_zp))
  int x_zp;                         // q8: 0, or -128 for an input calibrated non-negative
  float *corr;                      // q8: the zero point's share per channel, folded into the bias
  uint64_t s_hbm;                   // q8: f32 [M] dequantisation scales x_scale * w_scale[o]
  uint64_t qinv_vmem, scale_vmem;   // q8: x_inv and the scales in VMEM (make_plan)
  // ONNX integer ops (qint; q8 too): input i8 or u8 (fed as u8 - 128), an int32
  // per-channel addend (zero points' share, QLinearConv's bias), then either
  // int32 out or requantised: sat(rne(f32(acc) * mscale[o]) + y_zp) to i8/u8
  bool qint, x_u8, requant, y_u8;
  int xes;                          // input element bytes: 4 (f32) or 1
  // int8 activations in the arena (cc_place.q8, compile.c): the input is
  // already quantised (x_q8; read in place by the passes when the job is
  // flat, x_local its VMEM address), the output is quantised on store with
  // its readers' scale (y_q8)
  bool x_q8, x_inplace, y_q8;
  // x_q8 windows with a weight FIFO: LOAD copies the input straight into the
  // slab's interior (no staging buffer, no vector unit move) and zeroes its
  // padding border. y_inplace: a y_q8 output in the Unified Buffer with a
  // weight FIFO, which the epilogue writes in place (no int8 output tiles)
  bool x_direct, y_inplace;
  uint64_t x_local;
  float yq_inv;
  int yq_zp;
  int8_t x_pad;                     // qint: the i8 value of a padded input (its zero point)
  int32_t y_zp;
  bool has_addv;
  uint64_t addv_hbm, mscale_hbm;    // i32 [M], f32 [M]
  uint64_t addv_vmem, yzp_vmem;
} job;

// ---------------------------------------------------------------- blocks and weights
//
// The reduction index of (input channel c, kernel row kh, kernel column kw)
// is (kh*KW + kw)*Cin + c for dense convolutions, so an im2col gather moves
// whole channel runs, and (c*KH + kh)*KW + kw for grouped ones, so that each
// block of groups owns a contiguous range of reduction rows and one im2col
// matrix serves every block.

typedef struct {
  int64_t g0, gcount, Cb, Nb, Kb; // groups [g0, g0+gcount), channels in/out, reduction rows
  int ktiles, ntiles;
  int64_t c0, o0, krow0;          // first input channel, output channel, reduction row
  uint64_t w_off;                 // byte offset of its weights (all parts)
} block;

static block block_of(const job *j, int64_t b) {
  block k;
  k.g0 = b * j->G;
  k.gcount = j->groups - k.g0 < j->G ? j->groups - k.g0 : j->G;
  k.Cb = k.gcount * j->cin_g, k.Nb = k.gcount * j->cout_g, k.Kb = j->KH * j->KW * k.Cb;
  k.ktiles = (int)(j->win ? j->KH * j->win_pieces : (k.Kb + j->R - 1) / j->R);
  k.ntiles = (int)((k.Nb + j->C - 1) / j->C);
  k.c0 = k.g0 * j->cin_g, k.o0 = k.g0 * j->cout_g, k.krow0 = k.c0 * j->KH * j->KW;
  int64_t full = j->KH * j->KW * j->G * j->cin_g * j->G * j->cout_g; // a full block's elements
  k.w_off = (uint64_t)(b * full * j->parts) * j->es;
  return k;
}

static int64_t krow(const job *j, int64_t c, int64_t kh, int64_t kw) {
  return j->groups == 1 ? (kh * j->KW + kw) * j->Cin + c : (c * j->KH + kh) * j->KW + kw;
}

// The first reduction row of k-tile kt of block bk (relative to the block)
// and its rows *k: R-row slices of the reduction, or of each kernel row for
// windowed passes.
static int64_t ktile_row(const job *j, const block *bk, int kt, int64_t *k) {
  int64_t r0 = (int64_t)kt * j->R, len = bk->Kb;
  if (j->win) {
    int64_t row = j->KW * j->Cin;
    r0 = kt / j->win_pieces * row + kt % j->win_pieces * j->R, len = (kt / j->win_pieces + 1) * row;
  }
  *k = len - r0 < j->R ? len - r0 : j->R;
  return r0;
}

static uint16_t bf16_part(float *rest) {
  uint16_t h = num_f32_to_bf16(*rest);
  *rest = *rest - num_bf16_to_f32(h);
  return h;
}

// One weight element: bf16 part p of *v (which keeps the rest), or for q8 the
// int8 part of the integer *v, clamped, keeping the rest (an integer op's
// w - w_zp in [-255, 255] takes two parts).
static void put_weight(const job *j, void *out, size_t idx, float *v) {
  if (j->q8) {
    float q = *v > 127 ? 127 : *v < -128 ? -128 : *v;
    ((int8_t *)out)[idx] = (int8_t)q;
    *v -= q;
  } else ((uint16_t *)out)[idx] = bf16_part(v);
}

// Weights of block bk as [part][Kb][Nb] bf16 (block-diagonal over its groups).
static void arrange_conv_weights(const job *j, const float *w, const block *bk, void *out) {
  size_t plane = (size_t)(bk->Kb * bk->Nb);
  memset(out, 0, plane * (size_t)j->parts * j->es);
  for (int64_t o = 0; o < bk->Nb; o++) {
    int64_t og = bk->o0 + o, cg0 = (og / j->cout_g) * j->cin_g; // output channel, its group's first input
    for (int64_t kh = 0; kh < j->KH; kh++)
      for (int64_t kw = 0; kw < j->KW; kw++)
        for (int64_t ci = 0; ci < j->cin_g; ci++) {
          float v = w[((og * j->cin_g + ci) * j->KH + kh) * j->KW + kw];
          int64_t row = krow(j, cg0 + ci, kh, kw) - bk->krow0;
          for (int p = 0; p < j->parts; p++) put_weight(j, out, p * plane + (size_t)(row * bk->Nb + o), &v);
        }
  }
}

static void arrange_matmul_weights(const job *j, const float *w, void *out) {
  size_t plane = (size_t)(j->Cin * j->M);
  for (int64_t k = 0; k < j->Cin; k++)
    for (int64_t n = 0; n < j->M; n++) {
      float v = w[k * j->M + n];
      for (int p = 0; p < j->parts; p++) put_weight(j, out, p * plane + (size_t)(k * j->M + n), &v);
    }
}

// ---------------------------------------------------------------- the plan
//
// Items are (m-tile, block, n-tile) triples numbered in that order; item t
// runs on MXU t mod mxu_count into accumulator buffer (t / mxu_count) mod 2
// of that MXU. A chunk is up to mxu_count consecutive items of one m-tile:
// its passes are emitted k-tile by k-tile across its items so the MXUs run
// side by side. The epilogue of item t is emitted after the passes of item
// t + mxu_count, so every MXU has queued work while the scalar unit waits
// for the oldest; an accumulator buffer is reused 2 x mxu_count items later,
// after its epilogue has been emitted (the emitter then waits for it).

enum { RING_MAX = 8, OUT_MAX = 16, MXU_MAX = 8, NACC = 2, WSLOTS = 8, FIFO_MAX = CC_FIFO_MAX };

// An epilogue's store to the output, held back (a weight FIFO's schedule,
// run_job) until the next epilogue or the end of the job.
typedef struct {
  bool on;
  isa_space dsp;
  uint64_t dst, src, inner, cnt[2];
  int64_t ss[2], ds[2];
} store_op;

typedef struct {
  int64_t mrows;                // output pixels per m-tile
  int64_t rows_tile;            // row mode: output rows per m-tile (per image)
  int64_t imgs;                 // row mode: whole images per m-tile (>= 1; > 1 only with a weight FIFO)
  int64_t slab_rows, slab_cols; // row mode: padded input slab
  int64_t stage_elems;          // input elements of a LOAD buffer (per image)
  int64_t Kt;                   // reduction rows of the whole im2col matrix
  int na, nout, lag;
  int64_t items_per_tile;
  bool w_resident;
  // streamed dense weights: panels of panel_kt k-tiles x the chunk's columns,
  // double-buffered (wpanel[buffer][part]); grouped ones tile by tile (wslot)
  int panel_kt;
  int64_t panel_cols;
  uint64_t wpanel[2][3];
  uint64_t w_vmem, bias_vmem, clip_vmem, zero_vmem, wstage, scale_vmem, qinv_vmem;
  uint64_t rowstat_vmem; // softmax epilogue: one f32 per row of an output tile
  uint64_t pscale_vmem;  // the product's scale
  uint64_t wslot[WSLOTS][3];
  // The weight FIFO (chip weight_fifo_tiles > 0, TPU v1): constant weights
  // never stay in VMEM; every tile streams from HBM into a ring of `fifo`
  // slots (the FIFO's depth plus the tile being shifted in), fetched fifo - 1
  // tiles ahead of the pass that uses it, on the last DMA queue. The tiles
  // of one m-tile, in the order the passes take them: fifo_list. With the
  // program's FIFO (cc_fifo) the slots are its ring, the job's tile s is
  // the ring's tile fifo_base + s, and after the job's own tiles come the
  // next FIFO layer's first ones.
  int fifo;
  uint64_t fifo_slot[FIFO_MAX];
  cc_fifo_tile *fifo_list;
  int64_t fifo_per_mtile, fifo_total, fifo_fetched, fifo_base;
  bool fifo_ring;
  uint64_t stage[2], slab[RING_MAX][3], a[RING_MAX][3], out[OUT_MAX];
  uint64_t out8[OUT_MAX], yq_vmem; // y_q8: int8 output tiles, the readers' scale and zero point
  uint64_t acc[MXU_MAX][NACC];
  int64_t wstage_rows;
  bool defer_store, consts_loaded;
  store_op store;
  bool slab_zeroed[RING_MAX]; // its border is zero, and every m-tile's window the same
} plan;

static uint64_t a64(uint64_t v) { return (v + 63) & ~63ull; }
static int ceil_div(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

static int64_t items_per_tile(const job *j) {
  int64_t n = 0;
  for (int64_t b = 0; b < j->nblocks; b++) n += block_of(j, b).ntiles;
  return n;
}

static uint64_t weight_bytes(const job *j) {
  return (uint64_t)(j->KH * j->KW * j->G * j->cin_g * j->G * j->cout_g * j->parts) * j->es * (uint64_t)j->nblocks;
}

// VMEM bytes the plan needs.
// A softmax epilogue runs on the output tile when the tile holds whole rows
// (one n-tile); otherwise over the finished output in HBM (softmax_after).
static bool softmax_in_tile(const job *j) { return j->act == IR_ACT_SOFTMAX && j->nblocks == 1 && j->M <= j->C; }

// A LOAD buffer of one image holds the input as stored: f32 from HBM, int8
// from the Unified Buffer.
static uint64_t stage_img_bytes(const job *j, const plan *p) { return a64((uint64_t)p->stage_elems * (uint64_t)j->xes); }

static uint64_t plan_bytes(const job *j, const plan *p) {
  uint64_t P = (uint64_t)j->parts, t = 0;
  uint64_t slab = j->flat ? 0 : (uint64_t)(p->slab_rows * p->slab_cols * j->Cin) * j->es * (uint64_t)p->imgs;
  uint64_t amat = j->win ? 0 : (uint64_t)(p->mrows * p->Kt) * j->es;
  if (!j->x_inplace) {
    if (!j->x_direct) t += 2 * a64(stage_img_bytes(j, p) * (uint64_t)p->imgs);
    t += (uint64_t)p->na * P * (a64(slab) + a64(amat));
  }
  t += (uint64_t)p->nout * a64((uint64_t)p->mrows * (uint64_t)j->C * 4);
  if (j->y_q8 && !j->y_inplace) t += (uint64_t)p->nout * a64((uint64_t)p->mrows * (uint64_t)j->C);
  if (j->y_q8) t += 64;
  if (p->w_resident && j->w_pre == UINT64_MAX) t += a64(weight_bytes(j));
  else if (!p->w_resident && p->panel_kt)
    t += 2 * P * a64((uint64_t)p->panel_kt * (uint64_t)j->R * (uint64_t)p->panel_cols * j->es);
  else if (p->fifo && !p->fifo_ring) t += (uint64_t)p->fifo * a64((uint64_t)j->R * (uint64_t)j->C * j->es);
  else if (!p->w_resident) t += WSLOTS * P * a64((uint64_t)j->R * (uint64_t)j->C * j->es);
  if (j->w_runtime) t += a64((uint64_t)p->wstage_rows * (uint64_t)j->M * 4);
  if (j->q8) t += 2 * a64((uint64_t)j->M * 4) + 128;
  if (softmax_in_tile(j)) t += a64((uint64_t)p->mrows * 4);
  if (j->pscale_on) t += 64;
  t += a64((uint64_t)j->M * 4) + 64 + a64((uint64_t)p->slab_cols * (uint64_t)j->Cin * j->es);
  return t + 64 * 8;
}

static void plan_geometry(const job *j, plan *p, int64_t rows_tile_or_m) {
  p->imgs = 1;
  if (j->flat) {
    p->mrows = rows_tile_or_m;
    p->stage_elems = p->mrows * j->Cin;
    p->slab_rows = p->slab_cols = 0;
  } else {
    p->rows_tile = rows_tile_or_m;
    if (p->rows_tile > j->OH) { // whole images (make_plan allows this only with a weight FIFO)
      p->imgs = p->rows_tile / j->OH < j->N ? p->rows_tile / j->OH : j->N;
      p->rows_tile = j->OH;
    }
    p->mrows = p->imgs * p->rows_tile * j->OW;
    p->slab_rows = (p->rows_tile - 1) * j->sh + (j->KH - 1) * j->dh + 1;
    p->slab_cols = (j->OW - 1) * j->sw + (j->KW - 1) * j->dw + 1;
    int64_t vc = p->slab_cols < j->W ? p->slab_cols : j->W;
    int64_t vr = p->slab_rows < j->H ? p->slab_rows : j->H;
    p->stage_elems = vr * vc * j->Cin;
  }
}

// Slots of the weight FIFO a job streams its weights through: the FIFO's
// depth plus the tile shifting in; 0 without one.
static int fifo_slots(const job *j) {
  int depth = j->chip->weight_fifo_tiles;
  return !j->w_runtime && j->w_pre == UINT64_MAX && depth > 0 ? (depth + 1 < FIFO_MAX ? depth + 1 : FIFO_MAX) : 0;
}

static void set_windowed(job *j, bool fifo) {
  j->win_pieces = (j->KW * j->Cin + j->R - 1) / j->R;
  j->win = fifo && !j->flat && j->groups == 1 && j->dw == 1 && (j->q8 || (j->KW * j->Cin) % j->R == 0);
}

static int make_plan(job *j, plan *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  j->x_local = j->x_q8 ? cc_ub_local(j->e, j->x_addr) : UINT64_MAX;
  j->x_inplace = j->x_q8 && j->flat && j->x_local != UINT64_MAX;
  p->Kt = j->KH * j->KW * j->Cin;
  p->items_per_tile = items_per_tile(j);
  p->lag = j->nmxu;
  int in_flight = ceil_div(p->lag, p->items_per_tile); // m-tiles the in-flight items span
  p->na = in_flight + 2 > RING_MAX ? RING_MAX : in_flight + 2;
  p->nout = 2 * j->nmxu > OUT_MAX ? OUT_MAX : 2 * j->nmxu;
  int64_t acc_rows =
      (int64_t)(cc_acc_free_bytes(j->e) / ((uint64_t)j->nmxu * NACC * (uint64_t)j->C * 4));
  if (acc_rows < 1)
    return ir_fail(err, errlen, "the accumulators of chip '%s' are too small for %d buffers", j->chip->name,
                   j->nmxu * NACC);
  int64_t total_px = j->N * j->OH * j->OW;
  uint64_t vfree = cc_vmem_free_bytes(j->e);
  p->wstage_rows = j->w_runtime ? (65536 / (j->M * 4) > 0 ? 65536 / (j->M * 4) : 1) : 0;
  if (p->wstage_rows > j->Cin) p->wstage_rows = j->Cin;
  if (j->w_runtime && j->w_conv) p->wstage_rows = p->Kt; // gathered whole (convert_runtime_weights)
  p->fifo = fifo_slots(j);
  p->fifo_ring = p->fifo && j->c->fifo;
  if (p->fifo_ring) {
    p->fifo = j->c->fifo->slots;
    memcpy(p->fifo_slot, j->c->fifo->slot, sizeof p->fifo_slot);
  }
  // Streaming weights, the m-tile's rows are what hides each tile's fetch:
  // two im2col buffers (the m-tile multiplied, the next one gathered) leave
  // room for more rows than three.
  if (p->fifo && in_flight == 1) p->na = 2;
  // Windowed passes, no im2col gather (docs/compiler.md). Their k-tiles are
  // slices of each kernel row, im2col's R rows of the whole reduction: the
  // same groups only when a kernel row is whole k-tiles. Integer products sum
  // exactly in any grouping; float ones would round otherwise (a bf16
  // calibration run on tpu-v1 would then give other scales), so they keep
  // im2col's grouping.
  set_windowed(j, p->fifo > 0);
  j->x_direct = p->fifo && j->x_q8 && !j->flat && j->parts == 1;
  j->y_inplace = p->fifo && j->y_q8 && cc_ub_local(j->e, j->y_addr) != UINT64_MAX;
  p->w_resident = !p->fifo && (j->w_runtime || j->w_pre != UINT64_MAX || weight_bytes(j) <= vfree / 2);
  if (!p->w_resident && !p->fifo && j->nblocks == 1) { // panels of up to a third of VMEM for both buffers
    int64_t cols = (int64_t)j->nmxu * j->C;
    p->panel_cols = cols < j->M ? cols : j->M;
    uint64_t per_kt = 2 * (uint64_t)j->parts * (uint64_t)j->R * (uint64_t)p->panel_cols * j->es;
    int64_t kts = (int64_t)(vfree / 3 / per_kt), ktiles = (j->KH * j->KW * j->Cin + j->R - 1) / j->R;
    p->panel_kt = (int)(kts < 1 ? 1 : kts > ktiles ? ktiles : kts);
  }
  // With a weight FIFO every m-tile streams the weights again: an m-tile may
  // then hold several whole images (rows of all of them), so that each tile
  // is used for as many rows as the accumulators take.
  bool multi = j->chip->weight_fifo_tiles > 0 && !j->w_runtime;
  int64_t unit = j->flat ? 1 : j->OW, maxm = j->flat ? total_px : multi ? j->N * j->OH : j->OH;
  if (!j->flat && j->OW > acc_rows)
    return ir_fail(err, errlen,
                   "an output row of %" PRId64 " pixels exceeds the %" PRId64 " accumulator rows of chip '%s'",
                   j->OW, acc_rows, j->chip->name);
  int64_t t = acc_rows / unit;
  if (t > maxm) t = maxm;
  for (;;) {
    plan_geometry(j, p, t);
    uint64_t need = plan_bytes(j, p);
    if (need <= vfree) break;
    if (p->panel_kt > 1) { // smaller weight panels before smaller tiles
      p->panel_kt = (p->panel_kt + 1) / 2;
      continue;
    }
    if (t == 1) {
      if (j->w_runtime)
        return ir_fail(err, errlen,
                       "the matmul's %" PRId64 "x%" PRId64 " right operand does not fit the %" PRIu64
                       " bytes of VMEM of chip '%s'",
                       j->Cin, j->M, vfree, j->chip->name);
      return ir_fail(err, errlen, "even the smallest tile needs %" PRIu64 " bytes of VMEM; chip '%s' has %" PRIu64,
                     need, j->chip->name, vfree);
    }
    t = t > 8 ? t / 4 * 3 : t - 1;
  }
  cc_emit *e = j->e;
  uint64_t P = (uint64_t)j->parts;
  for (int i = 0; i < 2 && !j->x_inplace && !j->x_direct; i++)
    p->stage[i] = cc_vmem_alloc(e, stage_img_bytes(j, p) * (uint64_t)p->imgs, "the input tiles");
  for (int r = 0; r < p->na && !j->x_inplace; r++)
    for (uint64_t q = 0; q < P; q++) {
      if (!j->flat)
        p->slab[r][q] = cc_vmem_alloc(e, (uint64_t)(p->slab_rows * p->slab_cols * j->Cin) * j->es * (uint64_t)p->imgs, "input slabs");
      if (!j->win) p->a[r][q] = cc_vmem_alloc(e, (uint64_t)(p->mrows * p->Kt) * j->es, "im2col tiles");
    }
  for (int o = 0; o < p->nout; o++) p->out[o] = cc_vmem_alloc(e, (uint64_t)p->mrows * (uint64_t)j->C * 4, "output tiles");
  if (j->y_q8) {
    for (int o = 0; o < p->nout && !j->y_inplace; o++)
      p->out8[o] = cc_vmem_alloc(e, (uint64_t)p->mrows * (uint64_t)j->C, "int8 output tiles");
    p->yq_vmem = cc_vmem_alloc(e, 8, "the readers' scale and zero point");
  }
  if (j->w_pre != UINT64_MAX) p->w_vmem = j->w_pre;
  else if (p->w_resident) p->w_vmem = cc_vmem_alloc(e, weight_bytes(j), "weights");
  else if (p->fifo && !p->fifo_ring)
    for (int s = 0; s < p->fifo; s++) p->fifo_slot[s] = cc_vmem_alloc(e, (uint64_t)j->R * (uint64_t)j->C * j->es, "the weight FIFO");
  else if (p->panel_kt)
    for (int b = 0; b < 2; b++)
      for (uint64_t q = 0; q < P; q++)
        p->wpanel[b][q] = cc_vmem_alloc(e, (uint64_t)p->panel_kt * (uint64_t)j->R * (uint64_t)p->panel_cols * j->es, "weight panels");
  else
    for (int s = 0; s < WSLOTS; s++)
      for (uint64_t q = 0; q < P; q++) p->wslot[s][q] = cc_vmem_alloc(e, (uint64_t)j->R * (uint64_t)j->C * j->es, "weight tiles");
  if (j->w_runtime) p->wstage = cc_vmem_alloc(e, (uint64_t)(p->wstage_rows * j->M) * 4, "weight staging");
  p->bias_vmem = cc_vmem_alloc(e, (uint64_t)j->M * 4, "bias");
  p->clip_vmem = cc_vmem_alloc(e, 8, "clip bounds");
  if (j->pscale_on) p->pscale_vmem = cc_vmem_alloc(e, 4, "the product's scale");
  if (softmax_in_tile(j)) p->rowstat_vmem = cc_vmem_alloc(e, (uint64_t)p->mrows * 4, "softmax row statistics");
  if (j->qint) {
    j->addv_vmem = cc_vmem_alloc(e, (uint64_t)j->M * 4, "zero-point sums");
    j->yzp_vmem = cc_vmem_alloc(e, 4, "the output zero point");
  }
  if (j->q8) {
    p->scale_vmem = cc_vmem_alloc(e, (uint64_t)j->M * 4, "dequantisation scales");
    p->qinv_vmem = cc_vmem_alloc(e, 8, "the quantisation scale and zero point");
    j->qinv_vmem = p->qinv_vmem, j->scale_vmem = p->scale_vmem;
  }
  if (!j->flat) p->zero_vmem = cc_vmem_alloc(e, (uint64_t)(p->slab_cols * j->Cin) * j->es, "a zero row");
  for (int m = 0; m < j->nmxu; m++)
    for (int b = 0; b < NACC; b++)
      p->acc[m][b] = cc_acc_alloc(e, (uint64_t)acc_rows * (uint64_t)j->C * 4, "accumulator buffers");
  return cc_emit_failed(e, err, errlen);
}

// ---------------------------------------------------------------- stages

typedef struct {
  int64_t img, oh0, rows; // row mode: (first) image, first output row, output rows (per image)
  int64_t nimg;           // row mode: images (1 unless whole images per m-tile)
  int64_t p0, m;          // first output pixel (flat index over N*OH*OW), pixels
} mtile;

static mtile mtile_of(const job *j, const plan *p, int64_t i) {
  mtile t = {0};
  t.nimg = 1;
  if (j->flat) {
    t.p0 = i * p->mrows;
    int64_t total = j->N * j->OH * j->OW;
    t.m = total - t.p0 < p->mrows ? total - t.p0 : p->mrows;
  } else if (p->imgs > 1) {
    t.img = i * p->imgs;
    t.nimg = j->N - t.img < p->imgs ? j->N - t.img : p->imgs;
    t.oh0 = 0, t.rows = j->OH;
    t.p0 = t.img * j->OH * j->OW;
    t.m = t.nimg * j->OH * j->OW;
  } else {
    int64_t per_img = (j->OH + p->rows_tile - 1) / p->rows_tile;
    t.img = i / per_img;
    t.oh0 = (i % per_img) * p->rows_tile;
    t.rows = j->OH - t.oh0 < p->rows_tile ? j->OH - t.oh0 : p->rows_tile;
    t.p0 = (t.img * j->OH + t.oh0) * j->OW;
    t.m = t.rows * j->OW;
  }
  return t;
}

static int64_t mtile_count(const job *j, const plan *p) {
  if (j->flat) return (j->N * j->OH * j->OW + p->mrows - 1) / p->mrows;
  if (p->imgs > 1) return (j->N + p->imgs - 1) / p->imgs;
  return j->N * ((j->OH + p->rows_tile - 1) / p->rows_tile);
}

// The valid input rectangle of a row-mode tile: input rows [ih0, ih0+vr),
// columns [0, vc), and the slab row that input row ih0 lands on.
static void tile_window(const job *j, const plan *p, const mtile *t, int64_t *ih0, int64_t *vr, int64_t *vc,
                        int64_t *slab_r0) {
  int64_t top = t->oh0 * j->sh - j->pt; // input row of slab row 0
  int64_t srows = (t->rows - 1) * j->sh + (j->KH - 1) * j->dh + 1;
  int64_t lo = top < 0 ? 0 : top, hi = top + srows < j->H ? top + srows : j->H;
  *ih0 = lo, *vr = hi > lo ? hi - lo : 0, *slab_r0 = lo - top;
  int64_t cols = p->slab_cols - j->pl;
  *vc = cols < j->W ? cols : j->W;
  if (*vc < 0) *vc = 0;
}

// Zeroes the part of a slab plane (srows rows) outside its valid rectangle:
// rows [r0, r0 + vr), columns [pl, pl + vc).
static void zero_border(const job *j, const plan *p, uint64_t slab, int64_t srows, int64_t r0, int64_t vr, int64_t vc) {
  int64_t rowb = p->slab_cols * j->Cin * j->es, right = p->slab_cols - j->pl - vc;
  struct { int64_t row, rows, col, cols; } part[4] = {
      {0, r0, 0, p->slab_cols}, {r0 + vr, srows - r0 - vr, 0, p->slab_cols}, {r0, vr, 0, j->pl}, {r0, vr, j->pl + vc, right}};
  if (!vr || !vc) part[0].rows = srows, part[1].rows = part[2].rows = part[3].rows = 0;
  for (int k = 0; k < 4; k++) {
    if (part[k].rows <= 0 || part[k].cols <= 0) continue;
    uint64_t cnt[2] = {(uint64_t)part[k].rows, (uint64_t)(part[k].cols * j->Cin) * j->es};
    int64_t ss[2] = {0, 1}, ds[2] = {rowb, 1};
    cc_dma_nd(j->e, SPACE_LOCAL, slab + (uint64_t)(part[k].row * rowb + part[k].col * j->Cin * j->es), SPACE_LOCAL,
              p->zero_vmem, 1, 2, cnt, ss, ds);
  }
}

static void stage_load(const job *j, plan *p, int64_t i) {
  if (j->x_inplace) return; // the passes read the int8 input where it is
  mtile t = mtile_of(j, p, i);
  uint64_t dst = p->stage[i % 2];
  if (j->flat) {
    cc_copy(j->e, SPACE_LOCAL, dst, SPACE_HBM, j->x_addr + (uint64_t)(t.p0 * j->Cin) * (uint64_t)j->xes,
            (uint64_t)(t.m * j->Cin) * (uint64_t)j->xes);
    return;
  }
  int64_t ih0, vr, vc, r0;
  tile_window(j, p, &t, &ih0, &vr, &vc, &r0);
  uint64_t cnt[2] = {(uint64_t)vr, (uint64_t)(vc * j->Cin)};
  int64_t xe = j->xes, ss[2] = {j->W * j->Cin * xe, xe}, ds[2] = {vc * j->Cin * xe, xe};
  uint64_t img_bytes = stage_img_bytes(j, p);
  if (j->x_direct) { // into the slab's interior, rows a slab row apart, after zeroing its border
    int64_t rowb = p->slab_cols * j->Cin, slot = i % p->na;
    ds[0] = rowb;
    dst = p->slab[slot][0] + (uint64_t)(r0 * rowb + j->pl * j->Cin);
    img_bytes = (uint64_t)(p->slab_rows * rowb);
    // The border once per slab when every m-tile's window is the same.
    bool same = p->imgs > 1 || p->rows_tile >= j->OH;
    int64_t srows = (t.rows - 1) * j->sh + (j->KH - 1) * j->dh + 1;
    for (int64_t k = 0; !p->slab_zeroed[slot] && k < (same ? p->imgs : t.nimg); k++)
      zero_border(j, p, p->slab[slot][0] + (uint64_t)k * img_bytes, srows, r0, vr, vc);
    p->slab_zeroed[slot] = same;
  }
  if (!vr || !vc) return;
  for (int64_t k = 0; k < t.nimg; k++) {
    uint64_t src = j->x_addr + (uint64_t)(((t.img + k) * j->H + ih0) * j->W * j->Cin * xe);
    cc_dma_nd(j->e, SPACE_LOCAL, dst + (uint64_t)k * img_bytes, SPACE_HBM, src, (uint64_t)xe, 2, cnt, ss, ds);
  }
}

// f32 rows into bf16 parts: part q = bf16(rest), rest -= part (in place).
static void split_parts(const job *j, uint64_t f32, int64_t f32_stride, uint64_t *bf, int64_t bf_stride,
                        uint64_t rows, uint64_t cols) {
  if (j->qint) { // ONNX integer ops: i8 as it is, u8 as u8 - 128 (exact)
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = bf_stride, .src1_stride = f32_stride,
                   .src2_stride = 0, .src2_colstep = 0, .zp = j->x_u8 ? NUM_IADD_A_U8 : 0};
    cc_vpu(j->e, VOP_IADD, DT_I8, bf[0], DT_I8, f32, DT_I32, j->qinv_vmem, &b);
    return;
  }
  if (j->x_q8) { // already quantised by its producer: as it is
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = bf_stride, .src1_stride = f32_stride};
    cc_vpu(j->e, VOP_MOV, DT_I8, bf[0], DT_I8, f32, DT_F32, 0, &b);
    return;
  }
  if (j->q8) { // quantise: sat8(rne(x * x_inv)), the i8 store rounding (docs/numerics.md 6)
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = bf_stride, .src1_stride = f32_stride};
    if (!j->x_zp) {
      cc_vpu(j->e, VOP_MUL, DT_I8, bf[0], DT_F32, f32, DT_F32, j->qinv_vmem, &b);
      return;
    }
    cc_vblock m = {.rows = rows, .cols = cols, .dst_stride = f32_stride, .src1_stride = f32_stride};
    cc_vpu(j->e, VOP_MUL, DT_F32, f32, DT_F32, f32, DT_F32, j->qinv_vmem, &m); // in place
    cc_vpu(j->e, VOP_ADD, DT_I8, bf[0], DT_F32, f32, DT_F32, j->qinv_vmem + 4, &b);
    return;
  }
  for (int q = 0; q < j->parts; q++) {
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = bf_stride, .src1_stride = f32_stride};
    cc_vpu(j->e, VOP_MOV, DT_BF16, bf[q], DT_F32, f32, DT_F32, 0, &b);
    if (q + 1 < j->parts) {
      cc_vblock s = {.rows = rows, .cols = cols, .dst_stride = f32_stride, .src1_stride = f32_stride,
                     .src2_stride = bf_stride, .src2_colstep = 1};
      cc_vpu(j->e, VOP_SUB, DT_F32, f32, DT_F32, f32, DT_BF16, bf[q], &s);
    }
  }
}

static void stage_convert(const job *j, const plan *p, int64_t i) {
  if (j->x_inplace) return;
  mtile t = mtile_of(j, p, i);
  int slot = (int)(i % p->na);
  if (j->x_direct) return; // LOAD wrote the slab
  uint64_t stage = p->stage[i % 2];
  if (j->flat) {
    uint64_t bf[3] = {p->a[slot][0], p->a[slot][1], p->a[slot][2]};
    uint64_t n = (uint64_t)(t.m * j->Cin);
    if (n <= (1u << 30)) split_parts(j, stage, 0, bf, 0, 1, n);
    else split_parts(j, stage, j->Cin * j->xes, bf, j->Cin * j->es, (uint64_t)t.m, (uint64_t)j->Cin);
    return;
  }
  uint64_t stage_img = stage_img_bytes(j, p), slab_img = (uint64_t)(p->slab_rows * p->slab_cols * j->Cin) * j->es;
  uint64_t a_img = (uint64_t)(t.rows * j->OW * p->Kt) * j->es;
  // The same window of every image of the m-tile (whole images when nimg > 1).
  int64_t ih0, vr, vc, r0;
  tile_window(j, p, &t, &ih0, &vr, &vc, &r0);
  int64_t srows = (t.rows - 1) * j->sh + (j->KH - 1) * j->dh + 1;
  int64_t rowb = p->slab_cols * j->Cin * j->es;
  bool padded = r0 > 0 || ih0 + vr < ih0 - r0 + srows || j->pl > 0 || j->pl + vc < p->slab_cols;
  // im2col: one gather per kernel position and part; for a dense undilated
  // row of the kernel, its positions are adjacent in the slab and in the
  // matrix, so one gather moves the whole kernel row.
  bool dense = j->groups == 1, whole_rows = dense && j->dw == 1;
  for (uint64_t k = 0; k < (uint64_t)t.nimg; k++) { // each image of the m-tile
    uint64_t slab[3], amat[3], bf[3];
    for (int q = 0; q < j->parts; q++) {
      slab[q] = p->slab[slot][q] + k * slab_img, amat[q] = p->a[slot][q] + k * a_img;
      if (padded) { // zero the slab: one zero row repeated
        cc_vblock z = {.rows = (uint64_t)srows, .cols = (uint64_t)(p->slab_cols * j->Cin), .dst_stride = rowb,
                       .src1_stride = 0};
        cc_vpu(j->e, VOP_MOV, j->mdt, slab[q], j->mdt, p->zero_vmem, DT_F32, 0, &z);
      }
      bf[q] = slab[q] + (uint64_t)(r0 * rowb + j->pl * j->Cin * j->es);
    }
    if (vr && vc) split_parts(j, stage + k * stage_img, vc * j->Cin * j->xes, bf, rowb, (uint64_t)vr, (uint64_t)(vc * j->Cin));
    for (int q = 0; q < j->parts && !j->win; q++)
      for (int64_t kh = 0; kh < j->KH; kh++)
        for (int64_t kw = 0; kw < j->KW; kw++) {
          if (whole_rows) {
            if (kw) break;
            uint64_t cnt[3] = {(uint64_t)t.rows, (uint64_t)j->OW, (uint64_t)(j->KW * j->Cin)};
            int64_t ss[3] = {j->sh * rowb, j->sw * j->Cin * j->es, j->es}, ds[3] = {j->OW * p->Kt * j->es, p->Kt * j->es, j->es};
            cc_dma_nd(j->e, SPACE_LOCAL, amat[q] + (uint64_t)krow(j, 0, kh, 0) * j->es, SPACE_LOCAL,
                      slab[q] + (uint64_t)(kh * j->dh * rowb), j->es, 3, cnt, ss, ds);
            continue;
          }
          uint64_t cnt[3] = {(uint64_t)t.rows, (uint64_t)j->OW, (uint64_t)j->Cin};
          int64_t ss[3] = {j->sh * rowb, j->sw * j->Cin * j->es, j->es};
          int64_t ds[3] = {j->OW * p->Kt * j->es, p->Kt * j->es, dense ? j->es : j->KH * j->KW * j->es};
          uint64_t src = slab[q] + (uint64_t)(kh * j->dh * rowb + kw * j->dw * j->Cin * j->es);
          uint64_t dst = amat[q] + (uint64_t)krow(j, 0, kh, kw) * j->es;
          cc_dma_nd(j->e, SPACE_LOCAL, dst, SPACE_LOCAL, src, j->es, 3, cnt, ss, ds);
        }
  }
}

// Item t of the job: its m-tile, block and n-tile.
typedef struct {
  int64_t i, b;
  int jj;
} item;

static item item_of(const job *j, const plan *p, int64_t t) {
  item it = {t / p->items_per_tile, 0, 0};
  int64_t r = t % p->items_per_tile;
  for (;; it.b++) {
    int nt = block_of(j, it.b).ntiles;
    if (r < nt) break;
    r -= nt;
  }
  it.jj = (int)r;
  return it;
}

static uint64_t item_acc(const job *j, const plan *p, int64_t t) {
  return p->acc[t % j->nmxu][(t / j->nmxu) % NACC];
}

// Weight tile (part q, k-tile kt, n-tile jj) of block bk, in VMEM.
static uint64_t weight_tile(const job *j, const plan *p, const block *bk, int q, int kt, int jj, int64_t *stride,
                            int64_t step) {
  int64_t k = bk->Kb - (int64_t)kt * j->R < j->R ? bk->Kb - (int64_t)kt * j->R : j->R;
  int64_t n = bk->Nb - (int64_t)jj * j->C < j->C ? bk->Nb - (int64_t)jj * j->C : j->C;
  uint64_t off = bk->w_off + (uint64_t)((q * bk->Kb + (int64_t)kt * j->R) * bk->Nb + (int64_t)jj * j->C) * j->es;
  if (p->w_resident) {
    *stride = bk->Nb * j->es;
    return p->w_vmem + off;
  }
  uint64_t slot = p->wslot[step % WSLOTS][q]; // streamed: copy the tile into a slot of the ring
  uint64_t cnt[2] = {(uint64_t)k, (uint64_t)n};
  int64_t ss[2] = {bk->Nb * j->es, j->es}, ds[2] = {n * j->es, j->es};
  cc_dma_nd(j->e, SPACE_LOCAL, slot, SPACE_HBM, j->w_hbm + off, j->es, 2, cnt, ss, ds);
  *stride = n * j->es;
  return slot;
}

// The weight FIFO's sequence of tiles for one m-tile: stage_mm's order
// (chunks, k-tiles, pairs, items). Returns -1 when out of host memory.
static int fifo_build(const job *j, plan *p) {
  int64_t n = 0, cap = 64;
  p->fifo_list = malloc((size_t)cap * sizeof *p->fifo_list);
  if (!p->fifo_list) return -1;
  for (int64_t c = 0; c < p->items_per_tile; c += j->nmxu) {
    int64_t c1 = c + j->nmxu < p->items_per_tile ? c + j->nmxu : p->items_per_tile;
    int kmax = 0;
    for (int64_t u = c; u < c1; u++) {
      block bk = block_of(j, item_of(j, p, u).b);
      if (bk.ktiles > kmax) kmax = bk.ktiles;
    }
    for (int kt = 0; kt < kmax; kt++)
      for (int q = 0; q < j->npairs; q++)
        for (int64_t u = c; u < c1; u++) {
          item it = item_of(j, p, u);
          block bk = block_of(j, it.b);
          if (kt >= bk.ktiles) continue;
          if (n == cap) {
            cc_fifo_tile *g = realloc(p->fifo_list, (size_t)(cap *= 2) * sizeof *g);
            if (!g) return -1;
            p->fifo_list = g;
          }
          cc_fifo_tile *f = &p->fifo_list[n++];
          int64_t k, r0 = ktile_row(j, &bk, kt, &k);
          f->k = (int)k, f->es = j->es;
          f->n = (int)(bk.Nb - (int64_t)it.jj * j->C < j->C ? bk.Nb - (int64_t)it.jj * j->C : j->C);
          f->nb = bk.Nb;
          f->hbm = j->w_hbm + bk.w_off + (uint64_t)((j->pair_b[q] * bk.Kb + r0) * bk.Nb + (int64_t)it.jj * j->C) * j->es;
        }
  }
  p->fifo_per_mtile = n;
  p->fifo_total = n * mtile_count(j, p);
  p->fifo_fetched = 0;
  return 0;
}

static void fifo_fetch(const job *j, uint64_t slot, const cc_fifo_tile *f) {
  uint64_t cnt[2] = {(uint64_t)f->k, (uint64_t)f->n};
  int64_t ss[2] = {f->nb * f->es, f->es}, ds[2] = {f->n * f->es, f->es};
  cc_dma_nd(j->e, SPACE_LOCAL, slot, SPACE_HBM, f->hbm, (uint64_t)f->es, 2, cnt, ss, ds);
}

// Fetches the FIFO's tiles up to (not including) step `upto`: tile f goes
// into slot (fifo_base + f) mod fifo, which the pass of tile f - fifo has
// used (emitted before, so the emitter makes the copy wait for it). Steps
// past the job's own tiles are the next FIFO layer's first tiles: its
// weights are constants, so only the FIFO's order and depth hold them back,
// as the TPU's Read_Weights runs ahead of the layer's data (docs/compiler.md).
static void fifo_fill(const job *j, plan *p, int64_t upto) {
  cc_weights *next = p->fifo_ring ? j->c->next : NULL;
  int64_t end = p->fifo_total + (next ? next->nlead : 0);
  if (upto > end) upto = end;
  cc_dma_queue(j->e, j->chip->dma_queues - 1); // beside the layer's own loads
  for (; p->fifo_fetched < upto; p->fifo_fetched++) {
    int64_t f = p->fifo_fetched;
    uint64_t slot = p->fifo_slot[(p->fifo_base + f) % p->fifo];
    if (f < p->fifo_total) fifo_fetch(j, slot, &p->fifo_list[f % p->fifo_per_mtile]);
    else fifo_fetch(j, slot, &next->lead[next->lead_fetched++]);
    if (p->fifo_ring) j->c->fifo->fetched++;
  }
  cc_dma_queue(j->e, -1);
}

// The first tiles a FIFO job takes, for the layer before it to fetch
// (cc_mxu_prepare): the first m-tile's, up to the FIFO's depth.
static int fifo_lead(job *j, cc_weights *cw) {
  cw->nlead = cw->lead_fetched = 0;
  int slots = fifo_slots(j);
  if (!slots) return 0;
  set_windowed(j, true);
  plan p = {0};
  p.items_per_tile = items_per_tile(j);
  p.mrows = p.rows_tile = p.imgs = 1; // (fifo_build counts the m-tiles, not needed here)
  if (fifo_build(j, &p)) {
    free(p.fifo_list);
    return -1;
  }
  cw->nlead = (int)(p.fifo_per_mtile < slots - 1 ? p.fifo_per_mtile : slots - 1);
  memcpy(cw->lead, p.fifo_list, (size_t)cw->nlead * sizeof *cw->lead);
  free(p.fifo_list);
  return 0;
}

// Passes of items [t0, t1) (one chunk of one m-tile, each on its own MXU),
// k-tile by k-tile across the items.
// Copies k-tiles [kt0, kt0+n) of the chunk's columns [c0, c0+cols) of every
// part into panel buffer b.
static void load_panel(const job *j, const plan *p, int b, int kt0, int n, int64_t c0, int64_t cols) {
  block bk = block_of(j, 0);
  int64_t rows = (int64_t)n * j->R;
  if ((int64_t)kt0 * j->R + rows > bk.Kb) rows = bk.Kb - (int64_t)kt0 * j->R;
  for (int q = 0; q < j->parts; q++) {
    uint64_t src = j->w_hbm + bk.w_off + (uint64_t)((q * bk.Kb + (int64_t)kt0 * j->R) * bk.Nb + c0) * j->es;
    uint64_t cnt[2] = {(uint64_t)rows, (uint64_t)cols};
    int64_t ss[2] = {bk.Nb * j->es, j->es}, ds[2] = {cols * j->es, j->es};
    cc_dma_nd(j->e, SPACE_LOCAL, p->wpanel[b][q], SPACE_HBM, src, j->es, 2, cnt, ss, ds);
  }
}

static void stage_epilogue(const job *j, plan *p, int64_t u);
static void stage_load(const job *j, plan *p, int64_t i);
static void epilogue_consts(const job *j, plan *p);

// Passes of items [t0, t1) (one chunk of one m-tile, each on its own MXU),
// k-tile by k-tile across the items; full middle k-tiles as a loop. With a
// weight FIFO the epilogues of the items before the chunk (*epi up to t0)
// follow its first k-tile's passes: every MXU then has queued work, and the
// scalar unit, which the FIFO's refills hold about one pass ahead of the
// array, reaches them while the chunk runs rather than after it.
static void stage_mm(const job *j, plan *p, int64_t t0, int64_t t1, int64_t *wstep, int64_t *epi, int64_t load) {
  item it0 = item_of(j, p, t0);
  mtile t = mtile_of(j, p, it0.i);
  int slot = (int)(it0.i % p->na);
  int kmax = 0;
  bool same = true;
  for (int64_t u = t0; u < t1; u++) {
    block bk = block_of(j, item_of(j, p, u).b);
    if (kmax && bk.ktiles != kmax) same = false;
    if (bk.ktiles > kmax) kmax = bk.ktiles;
  }
  bool panels = !p->w_resident && p->panel_kt;
  int group = panels ? p->panel_kt : kmax; // k-tiles whose weights are in VMEM together
  int64_t c0 = (int64_t)it0.jj * j->C, c1 = 0;
  for (int64_t u = t0; u < t1; u++) {
    block bk = block_of(j, item_of(j, p, u).b);
    int64_t e = ((int64_t)item_of(j, p, u).jj + 1) * j->C;
    c1 = e < bk.Nb ? e : bk.Nb;
  }
  if (panels) load_panel(j, p, 0, 0, group < kmax ? group : kmax, c0, c1 - c0);
  for (int g0 = 0, gi = 0; g0 < kmax; g0 += group, gi++) {
    int g1 = g0 + group < kmax ? g0 + group : kmax;
    if (panels && g1 < kmax) // the next panel comes in while this one is used
      load_panel(j, p, (gi + 1) % 2, g1, g1 + group < kmax ? group : kmax - g1, c0, c1 - c0);
    // full k-tiles that accumulate, with resident or panel weights: a loop
    int loop_from = g1, loop_to = g1;
    if (same && (p->w_resident || panels)) {
      loop_from = g0 > 0 ? g0 : 1;
      loop_to = g1 < kmax ? g1 : kmax - 1; // the last k-tile may be partial
      if (loop_to - loop_from < 2) loop_from = loop_to = g1;
    }
    for (int kt = g0; kt < g1; kt++) {
      bool looped = kt == loop_from;
      if (looped) cc_loop_begin(j->e, (uint64_t)(loop_to - loop_from));
      for (int q = 0; q < j->npairs; q++)
        for (int64_t u = t0; u < t1; u++) {
          item it = item_of(j, p, u);
          block bk = block_of(j, it.b);
          if (kt >= bk.ktiles) continue;
          int64_t k, r0 = ktile_row(j, &bk, kt, &k);
          int64_t n = bk.Nb - (int64_t)it.jj * j->C < j->C ? bk.Nb - (int64_t)it.jj * j->C : j->C;
          int64_t stride, step;
          uint64_t w;
          if (panels) {
            stride = (c1 - c0) * j->es, step = j->R * stride;
            w = p->wpanel[gi % 2][j->pair_b[q]] + (uint64_t)((int64_t)(kt - g0) * j->R * stride) +
                (uint64_t)((int64_t)it.jj * j->C - c0) * j->es;
          } else if (p->fifo) {
            int64_t s = (*wstep)++;
            fifo_fill(j, p, s + 1); // (fetched ahead already, but for the first tiles)
            w = p->fifo_slot[(p->fifo_base + s) % p->fifo], stride = n * j->es, step = 0;
          } else {
            w = weight_tile(j, p, &bk, j->pair_b[q], kt, it.jj, &stride, (*wstep)++);
            step = j->R * bk.Nb * j->es;
          }
          int mxu = (int)(u % j->nmxu);
          if (j->win) { // the k-tile's slice of kernel row kh, at every output pixel
            int64_t kh = kt / j->win_pieces, rowb = p->slab_cols * j->Cin * j->es;
            cc_window win = {.width = (uint64_t)j->OW, .row = (uint64_t)(j->sw * j->Cin * j->es),
                             .height = (uint64_t)t.rows, .wrow = (uint64_t)(j->sh * rowb),
                             .plane = (uint64_t)(p->slab_rows * rowb)};
            uint64_t src = p->slab[slot][j->pair_a[q]] + (uint64_t)(kh * j->dh * rowb + (r0 - kh * j->KW * j->Cin) * j->es);
            cc_ldw(j->e, mxu, j->mdt, w, (uint64_t)stride, (int)k, (int)n);
            cc_mm_win(j->e, mxu, j->mdt, item_acc(j, p, u), src, (uint64_t)t.m, &win, kt > 0 || q > 0);
            fifo_fill(j, p, *wstep - 1 + p->fifo);
            continue;
          }
          uint64_t a = (j->x_inplace ? j->x_local + (uint64_t)(t.p0 * j->Cin) : p->a[slot][j->pair_a[q]]) +
                       (uint64_t)(bk.krow0 + r0) * j->es;
          if (looped) {
            cc_loop_ldw(j->e, mxu, j->mdt, w, step, (uint64_t)stride, (int)k, (int)n);
            cc_loop_mm(j->e, mxu, j->mdt, item_acc(j, p, u), a, j->R * j->es, (uint64_t)t.m, (uint64_t)p->Kt * j->es, true);
          } else {
            cc_ldw(j->e, mxu, j->mdt, w, (uint64_t)stride, (int)k, (int)n);
            cc_mm(j->e, mxu, j->mdt, item_acc(j, p, u), a, (uint64_t)t.m, (uint64_t)p->Kt * j->es, kt > 0 || q > 0);
            if (p->fifo) fifo_fill(j, p, *wstep - 1 + p->fifo); // the slot of the tile before this one
          }
        }
      if (looped) {
        cc_loop_end(j->e);
        kt = loop_to - 1;
      }
      if (kt == 0 && p->fifo) {
        for (; *epi < t0; (*epi)++) stage_epilogue(j, p, *epi);
        if (load >= 0) stage_load(j, p, load); // the next m-tile's inputs
      }
    }
  }
}

static void store_flush(const job *j, plan *p) {
  store_op *s = &p->store;
  if (s->on) cc_dma_nd(j->e, s->dsp, s->dst, SPACE_LOCAL, s->src, s->inner, 2, s->cnt, s->ss, s->ds);
  s->on = false;
}

// The epilogue's last step, the store of its tile: now, or held in p->store.
static void store_tile(const job *j, plan *p, isa_space dsp, uint64_t dst, uint64_t src, uint64_t inner,
                       const uint64_t cnt[2], const int64_t ss[2], const int64_t ds[2]) {
  store_flush(j, p);
  p->store = (store_op){true, dsp, dst, src, inner, {cnt[0], cnt[1]}, {ss[0], ss[1]}, {ds[0], ds[1]}};
  if (!p->defer_store) store_flush(j, p);
}

static void epilogue(const job *j, plan *p, const mtile *tp, uint64_t acc, int64_t accs, int64_t ch,
                     int64_t n, uint64_t out, uint64_t out8) {
  mtile t = *tp;
  uint64_t rows = (uint64_t)t.m, cols = (uint64_t)n;
  int64_t outs = n * 4;
  uint64_t cnt[2] = {rows, cols};
  int64_t hs[2] = {j->M * 4, 4}, vs[2] = {outs, 4};
  uint64_t hbm_off = (uint64_t)(t.p0 * j->M + ch) * 4;
  int64_t yp = j->y_pitch ? j->y_pitch : j->M, ys4[2] = {yp * 4, 4}; // the output's rows (a residual's are M)
  uint64_t y_off = (uint64_t)(t.p0 * yp + ch) * 4;
  uint64_t bias = p->bias_vmem + (uint64_t)ch * 4;
  if (j->qint) { // integers: + addend, then int32 out or requantised to i8/u8
    cc_vblock q = {.rows = rows, .cols = cols, .dst_stride = accs, .src1_stride = accs, .src2_stride = 0,
                   .src2_colstep = 1};
    if (j->has_addv) cc_vpu(j->e, VOP_IADD, DT_I32, acc, DT_I32, acc, DT_I32, j->addv_vmem + (uint64_t)ch * 4, &q);
    int64_t ye = j->requant ? 1 : 4;
    uint64_t yoff = (uint64_t)(t.p0 * j->M + ch) * (uint64_t)ye, src = acc;
    int64_t ys[2] = {j->M * ye, ye}, ls[2] = {accs, 4};
    if (j->requant) {
      // ONNX Runtime's MlasRequantizeOutput: f32(acc) * scale, rounded to nearest even, + zp, saturated
      cc_vpu(j->e, VOP_MUL, DT_I32, acc, DT_I32, acc, DT_F32, j->scale_vmem + (uint64_t)ch * 4, &q);
      cc_vblock z = {.rows = rows, .cols = cols, .dst_stride = n, .src1_stride = accs, .src2_stride = 0,
                     .src2_colstep = 0, .zp = j->y_u8 ? NUM_IADD_D_U8 : 0};
      cc_vpu(j->e, VOP_IADD, DT_I8, out, DT_I32, acc, DT_I32, j->yzp_vmem, &z);
      src = out, ls[0] = n, ls[1] = 1;
    }
    uint64_t ycnt[2] = {rows, cols};
    store_tile(j, p, SPACE_HBM, j->y_addr + yoff, src, (uint64_t)ye, ycnt, ls, ys);
    return;
  }
  if (j->q8) { // int32 sums to f32 (RNE), times x_scale * w_scale of their channel, in place
    cc_vblock q = {.rows = rows, .cols = cols, .dst_stride = accs, .src1_stride = accs, .src2_stride = 0,
                   .src2_colstep = 1};
    cc_vpu(j->e, VOP_MUL, DT_F32, acc, DT_I32, acc, DT_F32, j->scale_vmem + (uint64_t)ch * 4, &q);
  }
  if (j->pscale_on) { // as the scalar Mul or Div the fusion took in would round
    cc_vblock s = {.rows = rows, .cols = cols, .dst_stride = accs, .src1_stride = accs};
    cc_vpu(j->e, j->pscale_div ? VOP_DIV : VOP_MUL, DT_F32, acc, DT_F32, acc, DT_F32, p->pscale_vmem, &s);
  }
  if (j->has_res) {
    cc_dma_nd(j->e, SPACE_LOCAL, out, SPACE_HBM, j->res_addr + hbm_off, 4, 2, cnt, hs, vs);
    if (j->has_bias) { // (acc + bias) + residual, the order ONNX Runtime rounds in
      cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = accs, .src1_stride = accs, .src2_stride = 0,
                     .src2_colstep = 1};
      cc_vpu(j->e, VOP_ADD, DT_F32, acc, DT_F32, acc, DT_F32, bias, &b);
    }
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = outs, .src1_stride = accs, .src2_stride = outs,
                   .src2_colstep = 1};
    cc_vpu(j->e, VOP_ADD, DT_F32, out, DT_F32, acc, DT_F32, out, &b);
  } else if (j->has_bias) {
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = outs, .src1_stride = accs, .src2_stride = 0,
                   .src2_colstep = 1};
    cc_vpu(j->e, VOP_ADD, DT_F32, out, DT_F32, acc, DT_F32, bias, &b);
  } else {
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = outs, .src1_stride = accs};
    cc_vpu(j->e, VOP_MOV, DT_F32, out, DT_F32, acc, DT_F32, 0, &b);
  }
  // the activation over the contiguous tile
  cc_vblock flat = {.rows = 1, .cols = rows * cols};
  if (rows * cols > (1u << 30)) flat = (cc_vblock){.rows = rows, .cols = cols, .dst_stride = outs, .src1_stride = outs};
  if (j->act == IR_ACT_RELU) cc_vpu(j->e, VOP_RELU, DT_F32, out, DT_F32, out, DT_F32, 0, &flat);
  else if (j->act == IR_ACT_SIGMOID) cc_vpu(j->e, VOP_SIGMOID, DT_F32, out, DT_F32, out, DT_F32, 0, &flat);
  else if (j->act == IR_ACT_TANH) cc_vpu(j->e, VOP_TANH, DT_F32, out, DT_F32, out, DT_F32, 0, &flat);
  else if (j->act == IR_ACT_CLIP) {
    cc_vblock c = flat;
    c.src2_stride = 0, c.src2_colstep = 0;
    if (j->lo > -INFINITY) cc_vpu(j->e, VOP_MAX, DT_F32, out, DT_F32, out, DT_F32, p->clip_vmem, &c);
    if (j->hi < INFINITY) cc_vpu(j->e, VOP_MIN, DT_F32, out, DT_F32, out, DT_F32, p->clip_vmem + 4, &c);
  } else if (softmax_in_tile(j)) { // lower_vpu.c's softmax steps, with the same blocks
    uint64_t r = p->rowstat_vmem;
    int64_t rs = rows == 1 ? 0 : outs, r4 = rows == 1 ? 0 : 4;
    cc_vblock red = {.rows = rows, .cols = cols, .dst_stride = r4, .src1_stride = rs, .src2_colstep = 1};
    cc_vblock bcast = {.rows = rows, .cols = cols, .dst_stride = rs, .src1_stride = rs, .src2_stride = r4};
    cc_vblock each = {.rows = rows, .cols = cols, .dst_stride = rs, .src1_stride = rs, .src2_colstep = 1};
    cc_vblock stat = {.rows = 1, .cols = rows, .src2_colstep = 1};
    cc_vpu(j->e, VOP_RMAX, DT_F32, r, DT_F32, out, DT_F32, 0, &red);
    cc_vpu(j->e, VOP_SUB, DT_F32, out, DT_F32, out, DT_F32, r, &bcast);
    cc_vpu(j->e, VOP_EXP, DT_F32, out, DT_F32, out, DT_F32, 0, &each);
    cc_vpu(j->e, VOP_RSUM, DT_F32, r, DT_F32, out, DT_F32, 0, &red);
    cc_vpu(j->e, VOP_RECIP, DT_F32, r, DT_F32, r, DT_F32, 0, &stat);
    cc_vpu(j->e, VOP_MUL, DT_F32, out, DT_F32, out, DT_F32, r, &bcast);
  }
  if (j->y_q8) { // quantised for the readers, as they would quantise it (split_parts)
    cc_vblock b = {.rows = rows, .cols = cols, .dst_stride = n, .src1_stride = outs};
    // With a weight FIFO (TPU v1) the output in the Unified Buffer is written
    // in place, as the TPU's Activate writes it ("its output is the Unified
    // Buffer", facts 1.2), not through a tile and a copy.
    uint64_t dst = out8;
    if (j->y_inplace) dst = cc_ub_local(j->e, j->y_addr) + (uint64_t)(t.p0 * yp + ch), b.dst_stride = yp;
    if (!j->yq_zp) cc_vpu(j->e, VOP_MUL, DT_I8, dst, DT_F32, out, DT_F32, p->yq_vmem, &b);
    else {
      cc_vblock m = {.rows = rows, .cols = cols, .dst_stride = outs, .src1_stride = outs};
      cc_vpu(j->e, VOP_MUL, DT_F32, out, DT_F32, out, DT_F32, p->yq_vmem, &m); // in place
      cc_vpu(j->e, VOP_ADD, DT_I8, dst, DT_F32, out, DT_F32, p->yq_vmem + 4, &b);
    }
    if (j->y_inplace) return;
    int64_t s8[2] = {n, 1}, d8[2] = {yp, 1};
    store_tile(j, p, SPACE_HBM, j->y_addr + (uint64_t)(t.p0 * yp + ch), out8, 1, cnt, s8, d8);
    return;
  }
  store_tile(j, p, SPACE_HBM, j->y_addr + y_off, out, 4, cnt, vs, ys4);
}

static void stage_epilogue(const job *j, plan *p, int64_t u) {
  store_flush(j, p); // the previous tile's, whose vector work is done or queued before this one's
  epilogue_consts(j, p);
  item it = item_of(j, p, u);
  block bk = block_of(j, it.b);
  mtile t = mtile_of(j, p, it.i);
  int64_t n = bk.Nb - (int64_t)it.jj * j->C < j->C ? bk.Nb - (int64_t)it.jj * j->C : j->C;
  epilogue(j, p, &t, item_acc(j, p, u), j->C * 4, bk.o0 + (int64_t)it.jj * j->C, n, p->out[u % p->nout],
           p->out8[u % p->nout]);
}

// Runtime weights into the resident bf16 parts: a matmul's B (f32 [Cin, M]
// in HBM) a chunk of rows at a time; a convolution's W (f32 [M, Cin, KH, KW],
// as JAX passes parameters) gathered whole into reduction order [KH, KW, Cin,
// M] by one strided DMA, then split.
static void convert_runtime_weights(const job *j, const plan *p) {
  if (j->w_conv) {
    uint64_t cnt[4] = {(uint64_t)j->KH, (uint64_t)j->KW, (uint64_t)j->Cin, (uint64_t)j->M};
    int64_t ss[4] = {j->KW * 4, 4, j->KH * j->KW * 4, j->Cin * j->KH * j->KW * 4};
    int64_t ds[4] = {j->KW * j->Cin * j->M * 4, j->Cin * j->M * 4, j->M * 4, 4};
    cc_dma_nd(j->e, SPACE_LOCAL, p->wstage, SPACE_HBM, j->w_src_f32, 4, 4, cnt, ss, ds);
    uint64_t bf[3];
    for (int q = 0; q < j->parts; q++) bf[q] = p->w_vmem + (uint64_t)(q * p->Kt * j->M) * 2;
    split_parts(j, p->wstage, 0, bf, 0, 1, (uint64_t)(p->Kt * j->M));
    return;
  }
  for (int64_t r0 = 0; r0 < j->Cin; r0 += p->wstage_rows) {
    int64_t r = j->Cin - r0 < p->wstage_rows ? j->Cin - r0 : p->wstage_rows;
    cc_copy(j->e, SPACE_LOCAL, p->wstage, SPACE_HBM, j->w_src_f32 + (uint64_t)(r0 * j->M) * 4, (uint64_t)(r * j->M) * 4);
    uint64_t bf[3];
    for (int q = 0; q < j->parts; q++) bf[q] = p->w_vmem + (uint64_t)((q * j->Cin + r0) * j->M) * 2;
    split_parts(j, p->wstage, 0, bf, 0, 1, (uint64_t)(r * j->M));
  }
}

// The whole job: weights, then the m-tiles' stages staggered (docs/compiler.md).
// The constants only epilogues read. With a weight FIFO they come before
// the first epilogue: at the start they would wait for the previous layer's
// last epilogue, which reads the same VMEM, and hold everything behind them.
static void epilogue_consts(const job *j, plan *p) {
  cc_emit *e = j->e;
  if (p->consts_loaded) return;
  p->consts_loaded = true;
  if (j->act == IR_ACT_CLIP) {
    float b[2] = {j->lo, j->hi};
    cc_copy(e, SPACE_LOCAL, p->clip_vmem, SPACE_HBM, cc_hbm_const(e, b, sizeof b), 8);
  }
  if (j->pscale_on) cc_copy(e, SPACE_LOCAL, p->pscale_vmem, SPACE_HBM, cc_hbm_const(e, &j->pscale, 4), 4);
  if (j->y_q8) {
    float q[2] = {j->yq_inv, (float)j->yq_zp};
    cc_copy(e, SPACE_LOCAL, p->yq_vmem, SPACE_HBM, cc_hbm_const(e, q, sizeof q), sizeof q);
  }
  if (!p->fifo) return;
  if (j->has_bias) cc_copy(e, SPACE_LOCAL, p->bias_vmem, SPACE_HBM, j->b_hbm, (uint64_t)j->M * 4);
  if (j->q8 && !j->qint) cc_copy(e, SPACE_LOCAL, p->scale_vmem, SPACE_HBM, j->s_hbm, (uint64_t)j->M * 4);
}

static int run_job(job *j, plan *p) {
  cc_emit *e = j->e;
  p->consts_loaded = false;
  if (!p->fifo) epilogue_consts(j, p);
  if (!j->flat) { // a zero row for padding: an all-zero constant
    uint64_t bytes = (uint64_t)(p->slab_cols * j->Cin) * j->es;
    void *z = calloc(1, bytes);
    if (!z) return cc_emit_fail(e, "out of host memory");
    if (j->q8) memset(z, j->qint ? j->x_pad : (int8_t)j->x_zp, bytes); // padding is the quantised 0
    cc_copy(e, SPACE_LOCAL, p->zero_vmem, SPACE_HBM, cc_hbm_const(e, z, bytes), bytes);
    free(z);
  }
  if (j->has_bias && !p->fifo) cc_copy(e, SPACE_LOCAL, p->bias_vmem, SPACE_HBM, j->b_hbm, (uint64_t)j->M * 4);
  if (j->qint) {
    int32_t off[2] = {j->x_u8 ? -128 : 0, j->y_zp};
    cc_copy(e, SPACE_LOCAL, p->qinv_vmem, SPACE_HBM, cc_hbm_const(e, off, 4), 4);
    cc_copy(e, SPACE_LOCAL, j->yzp_vmem, SPACE_HBM, cc_hbm_const(e, &off[1], 4), 4);
    if (j->has_addv) cc_copy(e, SPACE_LOCAL, j->addv_vmem, SPACE_HBM, j->addv_hbm, (uint64_t)j->M * 4);
    if (j->requant) cc_copy(e, SPACE_LOCAL, p->scale_vmem, SPACE_HBM, j->mscale_hbm, (uint64_t)j->M * 4);
  } else if (j->q8) {
    if (!p->fifo) cc_copy(e, SPACE_LOCAL, p->scale_vmem, SPACE_HBM, j->s_hbm, (uint64_t)j->M * 4);
    float q[2] = {j->x_inv, (float)j->x_zp};
    cc_copy(e, SPACE_LOCAL, p->qinv_vmem, SPACE_HBM, cc_hbm_const(e, q, sizeof q), sizeof q);
  }
  if (j->w_runtime) convert_runtime_weights(j, p);
  else if (p->w_resident && j->w_pre == UINT64_MAX)
    cc_copy(e, SPACE_LOCAL, p->w_vmem, SPACE_HBM, j->w_hbm, weight_bytes(j));
  else if (p->fifo) {
    if (fifo_build(j, p)) {
      free(p->fifo_list), p->fifo_list = NULL;
      return cc_emit_fail(e, "out of host memory");
    }
    cc_weights *cw = p->fifo_ring && j->c->weights ? &j->c->weights[j->c->n->id] : NULL;
    if (cw && cw->lead_fetched) { // the previous layer fetched the first tiles: they must be these
      p->fifo_fetched = cw->lead_fetched;
      for (int k = 0; k < cw->lead_fetched; k++) {
        const cc_fifo_tile *a = &cw->lead[k], *b = &p->fifo_list[k];
        if (k >= p->fifo_per_mtile || a->hbm != b->hbm || a->k != b->k || a->n != b->n || a->es != b->es || a->nb != b->nb) {
          free(p->fifo_list), p->fifo_list = NULL;
          return cc_emit_fail(e, "internal error: the weight FIFO's prefetched tiles are not the layer's");
        }
      }
    }
    if (p->fifo_ring) p->fifo_base = j->c->fifo->fetched - p->fifo_fetched;
    fifo_fill(j, p, p->fifo - 1); // every slot but the one of the tile before the first
  }
  int64_t mt = mtile_count(j, p), nitems = mt * p->items_per_tile, epi = 0, wstep = 0;
  // The FIFO's refills hold the scalar unit about a pass ahead of the array:
  // a store emitted right after its tile's vector work would hold it until
  // that work is done, and the array would run dry meanwhile.
  p->defer_store = p->fifo;
  stage_load(j, p, 0);
  stage_convert(j, p, 0);
  for (int64_t i = 0; i < mt; i++) {
    // Inputs read straight into the slab load after the first passes of this
    // m-tile: the previous layer's last store, which they may wait for, then
    // finds the array busy.
    bool late = j->x_direct && i + 1 < mt;
    if (i + 1 < mt && !late) stage_load(j, p, i + 1);
    // With a weight FIFO (one MXU, an m-tile of many rows) the next m-tile's
    // gather goes first, so that it runs during this m-tile's passes rather
    // than after its first chunk, which holds all of them when the weights
    // are one n-tile wide: the array would idle for the whole gather.
    bool early = p->fifo && i + 1 < mt;
    if (early) stage_convert(j, p, i + 1);
    int64_t t0 = i * p->items_per_tile, tend = t0 + p->items_per_tile;
    for (int64_t c = t0; c < tend; c += j->nmxu) {
      int64_t c1 = c + j->nmxu < tend ? c + j->nmxu : tend;
      stage_mm(j, p, c, c1, &wstep, &epi, late && c == t0 ? i + 1 : -1);
      if (c == t0 && i + 1 < mt && !early) stage_convert(j, p, i + 1);
      for (; epi < c1 - p->lag; epi++) stage_epilogue(j, p, epi);
    }
    if (cc_emit_failed(e, NULL, 0)) {
      free(p->fifo_list), p->fifo_list = NULL;
      return -1;
    }
  }
  for (; epi < nitems; epi++) stage_epilogue(j, p, epi);
  if (p->defer_store && p->store.on) { // the emitter holds the last store until something touches its memory
    store_op *st = &p->store;
    cc_defer_dma(e, st->dsp, st->dst, SPACE_LOCAL, st->src, st->inner, st->cnt, st->ss, st->ds);
    st->on = false;
  }
  store_flush(j, p);
  free(p->fifo_list), p->fifo_list = NULL;
  return cc_emit_failed(e, NULL, 0) ? -1 : 0;
}

// ---------------------------------------------------------------- nodes

// A matmul whose A is a cast of a bool (the one-hot of a gather, gather.c)
// selects values: precision highest, so that they come out exact.
static bool one_hot_a(const ir_node *n) {
  const ir_node *p = n && n->nin ? n->in[0]->producer : NULL;
  return n && n->op == IR_OP_MATMUL && p && p->op == IR_OP_CAST && p->in[0]->ty.dtype == IR_DT_BOOL;
}

// A matmul whose B is a constant of zeros and ones (nearest resize, resize.c)
// selects values too.
static bool selection_b(const ir_node *n) {
  if (!n || n->op != IR_OP_MATMUL || n->nin < 2 || !n->in[1]->data || n->in[1]->ty.dtype != IR_DT_F32) return false;
  const float *w = n->in[1]->data;
  for (int64_t i = 0, k = ir_nelems(&n->in[1]->ty); i < k; i++)
    if (w[i] != 0.0f && w[i] != 1.0f) return false;
  return true;
}

static void set_precision(job *j, const cc_options *opt, const ir_node *n) {
  static const int hi_a[6] = {2, 1, 0, 1, 0, 0}, hi_b[6] = {0, 1, 2, 0, 1, 0}; // small terms first
  if ((opt && opt->precision == CC_PRECISION_HIGHEST) || one_hot_a(n) || selection_b(n)) {
    j->parts = 3, j->npairs = 6;
    for (int i = 0; i < 6; i++) j->pair_a[i] = hi_a[i], j->pair_b[i] = hi_b[i];
  } else {
    j->parts = 1, j->npairs = 1, j->pair_a[0] = j->pair_b[0] = 0;
  }
}

static bool has_bias(const ir_node *n) { return n->nin - (n->a.residual ? 1 : 0) >= 3; }

static float *const_f32(const ir_value *v) {
  int64_t n = ir_nelems(&v->ty);
  float *f = isa_malloc_big((size_t)n * sizeof *f);
  if (f && v->ty.dtype == IR_DT_F32) memcpy(f, v->data, (size_t)n * sizeof *f);
  else if (f)
    for (int64_t i = 0; i < n; i++) f[i] = (float)ir_get_float(v->data, v->ty.dtype, i);
  return f;
}

// Groups per block: the fewest passes per m-tile, then the fewest blocks.
static int64_t choose_groups_per_block(const job *j) {
  if (j->groups == 1) return 1;
  int64_t best = 1, best_cost = INT64_MAX;
  for (int64_t G = 1; G <= j->groups; G++) {
    int64_t nb = (j->groups + G - 1) / G;
    int64_t kt = (j->KH * j->KW * G * j->cin_g + j->R - 1) / j->R, nt = (G * j->cout_g + j->C - 1) / j->C;
    int64_t cost = nb * kt * nt;
    if (cost <= best_cost) best = G, best_cost = cost;
  }
  return best;
}

static void job_init(job *j, cc_lower_ctx *c) {
  memset(j, 0, sizeof *j);
  j->c = c, j->e = c->e, j->chip = c->chip;
  j->R = c->chip->mxu_rows, j->C = c->chip->mxu_cols, j->nmxu = c->chip->mxu_count;
  if (j->nmxu > MXU_MAX) j->nmxu = MXU_MAX;
  set_precision(j, c->opt, c->n);
  const ir_node *n = c->n;
  j->mdt = DT_BF16, j->es = 2, j->xes = 4;
  if (n->a.qscale > 0) { // quantised by cc_quantize: int8 operands, one part
    j->q8 = true, j->mdt = DT_I8, j->es = 1;
    j->parts = 1, j->npairs = 1, j->pair_a[0] = j->pair_b[0] = 0;
    j->x_inv = 1.0f / n->a.qscale;
    j->x_zp = n->a.qzp;
    if (c->place[n->in[0]->id].q8) j->x_q8 = true, j->xes = 1;
  }
  const cc_place *yp = &c->place[n->out[0]->id];
  if (yp->q8) j->y_q8 = true, j->yq_inv = yp->q8_inv, j->yq_zp = yp->q8_zp;
  j->act = n->a.act;
  j->lo = (float)n->a.lo, j->hi = (float)n->a.hi;
  j->pscale_on = n->a.pscale_on, j->pscale_div = n->a.pscale_div, j->pscale = n->a.pscale;
  j->has_res = n->a.residual;
  if (j->has_res) j->res_addr = cc_addr(c, n->in[n->nin - 1]);
  j->y_addr = cc_addr(c, n->out[0]);
  j->y_pitch = yp->pitch; // 0: dense, rows of M
  j->w_pre = UINT64_MAX;
}

// Pre-arranges constant weights (and the bias) into HBM.
// int8 weights, symmetric per output channel o: w_scale[o] = max |w[o]| / 127
// (1 for an all-zero channel), q = clamp(rne(w / w_scale[o]), -127, 127),
// into wq (as floats); the f32 [M] scales x_scale * w_scale[o] go to HBM.
static int quantize_weights(job *j, const float *w, bool matmul, float *wq) {
  int64_t n = matmul ? j->Cin * j->M : j->M * j->cin_g * j->KH * j->KW, per = n / j->M;
  float *amax = calloc((size_t)j->M, sizeof *amax);
  if (!amax) return cc_emit_fail(j->e, "out of host memory");
  for (int64_t i = 0; i < n; i++) {
    int64_t o = matmul ? i % j->M : i / per;
    float a = fabsf(w[i]);
    if (a > amax[o]) amax[o] = a;
  }
  for (int64_t o = 0; o < j->M; o++) amax[o] = amax[o] > 0 ? amax[o] / 127.0f : 1.0f;
  double *colsum = calloc((size_t)j->M, sizeof *colsum);
  if (!colsum) return free(amax), cc_emit_fail(j->e, "out of host memory");
  for (int64_t i = 0; i < n; i++) {
    int64_t o = matmul ? i % j->M : i / per;
    float q = nearbyintf(w[i] / amax[o]);
    wq[i] = q > 127 ? 127 : q < -127 ? -127 : q;
    colsum[o] += wq[i];
  }
  float x_scale = 1.0f / j->x_inv;
  for (int64_t o = 0; o < j->M; o++) amax[o] *= x_scale;
  // y = s_x s_w (sum q w - zp sum w): the second term is a constant per channel
  if (j->x_zp && (j->corr = malloc((size_t)j->M * sizeof *j->corr)))
    for (int64_t o = 0; o < j->M; o++) j->corr[o] = (float)(-(double)amax[o] * j->x_zp * colsum[o]);
  free(colsum);
  if (j->x_zp && !j->corr) return free(amax), cc_emit_fail(j->e, "out of host memory");
  j->s_hbm = cc_hbm_const(j->e, amax, (uint64_t)j->M * 4);
  free(amax);
  return 0;
}

static int place_weights(job *j, const float *w_in, const ir_value *bias, bool matmul) {
  uint64_t total = weight_bytes(j);
  const float *w = w_in;
  float *wq = NULL;
  if (j->q8 && !j->qint) {
    int64_t n = matmul ? j->Cin * j->M : j->M * j->cin_g * j->KH * j->KW;
    if (!(wq = malloc((size_t)(n ? n : 1) * sizeof *wq))) return cc_emit_fail(j->e, "out of host memory");
    if (quantize_weights(j, w_in, matmul, wq)) return free(wq), -1;
    w = wq;
  }
  uint8_t *buf = cc_hbm_const_room(j->e, total, &j->w_hbm);
  if (!buf) return free(wq), -1;
  if (matmul) arrange_matmul_weights(j, w, buf);
  else
    for (int64_t b = 0; b < j->nblocks; b++) {
      block bk = block_of(j, b);
      arrange_conv_weights(j, w, &bk, buf + bk.w_off);
    }
  free(wq);
  if (bias || j->corr) {
    float *bf = bias ? const_f32(bias) : calloc((size_t)j->M, sizeof *bf);
    if (!bf) return free(j->corr), cc_emit_fail(j->e, "out of host memory");
    for (int64_t o = 0; j->corr && o < j->M; o++) bf[o] += j->corr[o];
    free(j->corr), j->corr = NULL;
    j->b_hbm = cc_hbm_const(j->e, bf, (uint64_t)j->M * 4);
    j->has_bias = true;
    free(bf);
  }
  return 0;
}

// ---------------------------------------------------------------- depthwise
//
// A depthwise convolution (one input and one output channel per group) runs
// on the vector unit: per kernel position, a local DMA gathers the shifted
// window of the tile into a [pixels, C] block, and a multiply by that
// position's weight row (broadcast down the pixels) adds into an fp32 sum.
// On the MXU it would need block-diagonal weight tiles that are almost all
// zeros: as many passes, many more instructions. Precision as on the MXU:
// default multiplies bf16 operands (exact in fp32) and sums in fp32; highest
// multiplies the fp32 operands.

static int lower_depthwise(job *j, const float *w, char *err, size_t errlen) {
  cc_emit *e = j->e;
  j->q8 = false; // depthwise stays f32 on the vector unit (cc_quantize does not mark it)
  isa_dtype dt = j->parts == 1 ? DT_BF16 : DT_F32;
  int64_t es = isa_dtype_bytes[dt], C = j->Cin, KK = j->KH * j->KW;
  j->flat = false;
  plan pl, *p = &pl;
  memset(p, 0, sizeof *p);
  uint64_t vfree = cc_vmem_free_bytes(e);
  int64_t t = j->OH;
  while (t * j->OW > 16384 && t > 1) t--; // keep tiles small enough to pipeline
  for (;;) {
    plan_geometry(j, p, t);
    uint64_t m = (uint64_t)p->mrows, slab = (uint64_t)(p->slab_rows * p->slab_cols * C * es);
    uint64_t need = 2 * a64((uint64_t)p->stage_elems * 4) + 2 * a64(slab) + 2 * a64(m * (uint64_t)(C * es)) +
                    5 * a64(m * (uint64_t)C * 4) + a64((uint64_t)(KK * C * es)) + a64((uint64_t)C * 4) +
                    a64((uint64_t)(p->slab_cols * C * es)) + 64 * 12;
    if (need <= vfree) break;
    if (t == 1)
      return ir_fail(err, errlen, "even the smallest tile needs %" PRIu64 " bytes of VMEM; chip '%s' has %" PRIu64,
                     need, j->chip->name, vfree);
    t = t > 8 ? t / 4 * 3 : t - 1;
  }
  uint64_t m = (uint64_t)p->mrows, g[2], accb[2], tmp, wv;
  for (int i = 0; i < 2; i++) {
    p->stage[i] = cc_vmem_alloc(e, (uint64_t)p->stage_elems * 4, "the input tiles");
    p->slab[i][0] = cc_vmem_alloc(e, (uint64_t)(p->slab_rows * p->slab_cols * C * es), "input slabs");
    g[i] = cc_vmem_alloc(e, m * (uint64_t)(C * es), "window tiles");
    accb[i] = cc_vmem_alloc(e, m * (uint64_t)C * 4, "sums");
    p->out[i] = cc_vmem_alloc(e, m * (uint64_t)C * 4, "output tiles");
  }
  tmp = cc_vmem_alloc(e, m * (uint64_t)C * 4, "products");
  wv = cc_vmem_alloc(e, (uint64_t)(KK * C * es), "weights");
  p->bias_vmem = cc_vmem_alloc(e, (uint64_t)C * 4, "bias");
  p->clip_vmem = cc_vmem_alloc(e, 8, "clip bounds");
  p->zero_vmem = cc_vmem_alloc(e, (uint64_t)(p->slab_cols * C * es), "a zero row");
  if (cc_emit_failed(e, err, errlen)) return -1;

  // weights [kernel position][channel], rounded to bf16 for default precision
  uint8_t *wb = malloc((size_t)(KK * C * es));
  if (!wb) return ir_fail(err, errlen, "out of host memory");
  for (int64_t c = 0; c < C; c++)
    for (int64_t k = 0; k < KK; k++) {
      float v = w[c * KK + k];
      if (dt == DT_BF16) {
        uint16_t h = num_f32_to_bf16(v);
        memcpy(wb + (k * C + c) * es, &h, 2);
      } else memcpy(wb + (k * C + c) * es, &v, 4);
    }
  cc_copy(e, SPACE_LOCAL, wv, SPACE_HBM, cc_hbm_const(e, wb, (uint64_t)(KK * C * es)), (uint64_t)(KK * C * es));
  free(wb);
  void *z = calloc(1, (size_t)(p->slab_cols * C * es));
  if (!z) return ir_fail(err, errlen, "out of host memory");
  cc_copy(e, SPACE_LOCAL, p->zero_vmem, SPACE_HBM, cc_hbm_const(e, z, (uint64_t)(p->slab_cols * C * es)),
          (uint64_t)(p->slab_cols * C * es));
  free(z);
  if (j->has_bias) cc_copy(e, SPACE_LOCAL, p->bias_vmem, SPACE_HBM, j->b_hbm, (uint64_t)C * 4);
  if (j->act == IR_ACT_CLIP) {
    float b[2] = {j->lo, j->hi};
    cc_copy(e, SPACE_LOCAL, p->clip_vmem, SPACE_HBM, cc_hbm_const(e, b, sizeof b), 8);
  }

  int64_t mt = mtile_count(j, p), rowb = p->slab_cols * C * es;
  stage_load(j, p, 0);
  for (int64_t i = 0; i < mt; i++) {
    if (i + 1 < mt) stage_load(j, p, i + 1);
    mtile tl = mtile_of(j, p, i);
    int64_t ih0, vr, vc, r0;
    tile_window(j, p, &tl, &ih0, &vr, &vc, &r0);
    int64_t srows = (tl.rows - 1) * j->sh + (j->KH - 1) * j->dh + 1;
    uint64_t slab = p->slab[i % 2][0], acc = accb[i % 2];
    if (r0 > 0 || ih0 + vr < ih0 - r0 + srows || j->pl > 0 || j->pl + vc < p->slab_cols) {
      cc_vblock zb = {.rows = (uint64_t)srows, .cols = (uint64_t)(p->slab_cols * C), .dst_stride = rowb};
      cc_vpu(e, VOP_MOV, dt, slab, dt, p->zero_vmem, DT_F32, 0, &zb);
    }
    if (vr && vc) {
      cc_vblock cb = {.rows = (uint64_t)vr, .cols = (uint64_t)(vc * C), .dst_stride = rowb, .src1_stride = vc * C * 4};
      cc_vpu(e, VOP_MOV, dt, slab + (uint64_t)(r0 * rowb + j->pl * C * es), DT_F32, p->stage[i % 2], DT_F32, 0, &cb);
    }
    for (int64_t k = 0; k < KK; k++) {
      int64_t kh = k / j->KW, kw = k % j->KW;
      uint64_t cnt[3] = {(uint64_t)tl.rows, (uint64_t)j->OW, (uint64_t)(C * es)};
      int64_t ss[3] = {j->sh * rowb, j->sw * C * es, 1}, ds[3] = {j->OW * C * es, C * es, 1};
      cc_dma_nd(e, SPACE_LOCAL, g[k % 2], SPACE_LOCAL, slab + (uint64_t)(kh * j->dh * rowb + kw * j->dw * C * es), 1, 3,
                cnt, ss, ds);
      cc_vblock mb = {.rows = (uint64_t)tl.m, .cols = (uint64_t)C, .dst_stride = C * 4, .src1_stride = C * es,
                      .src2_stride = 0, .src2_colstep = 1};
      cc_vpu(e, VOP_MUL, DT_F32, k ? tmp : acc, dt, g[k % 2], dt, wv + (uint64_t)(k * C * es), &mb);
      if (k) {
        cc_vblock ab = {.rows = 1, .cols = (uint64_t)(tl.m * C), .src2_colstep = 1};
        cc_vpu(e, VOP_ADD, DT_F32, acc, DT_F32, acc, DT_F32, tmp, &ab);
      }
    }
    epilogue(j, p, &tl, acc, C * 4, 0, C, p->out[i % 2], 0);
    if (cc_emit_failed(e, err, errlen)) return -1;
  }
  return 0;
}

// The job of a convolution node: geometry and blocks, no code.
static int conv_job_w(cc_lower_ctx *c, job *j, int wslot, char *err, size_t errlen) {
  const ir_node *n = c->n;
  const ir_value *x = n->in[0], *w = n->in[wslot], *y = n->out[0];
  job_init(j, c);
  int rank = x->ty.rank;
  if (!n->a.nhwc || (rank != 3 && rank != 4))
    return ir_fail(err, errlen, "only 1-D and 2-D channels-last convolutions are lowered (rank %d)", rank);
  if (n->op == IR_OP_CONV && has_bias(n) && !n->in[2]->data) return ir_fail(err, errlen, "convolution bias must be constant");
  j->N = x->ty.dims[0], j->Cin = x->ty.dims[rank - 1], j->M = y->ty.dims[rank - 1];
  if (rank == 4) {
    j->H = x->ty.dims[1], j->W = x->ty.dims[2], j->OH = y->ty.dims[1], j->OW = y->ty.dims[2];
    j->KH = n->a.kernel[0], j->KW = n->a.kernel[1], j->sh = n->a.stride[0], j->sw = n->a.stride[1];
    j->dh = n->a.dilation[0], j->dw = n->a.dilation[1], j->pt = n->a.pads[0], j->pl = n->a.pads[1];
  } else {
    j->H = 1, j->W = x->ty.dims[1], j->OH = 1, j->OW = y->ty.dims[1];
    j->KH = 1, j->KW = n->a.kernel[0], j->sh = 1, j->sw = n->a.stride[0], j->dh = 1, j->dw = n->a.dilation[0];
    j->pt = 0, j->pl = n->a.pads[0];
  }
  j->groups = n->a.group, j->cin_g = j->Cin / j->groups, j->cout_g = j->M / j->groups;
  j->flat = j->KH == 1 && j->KW == 1 && j->sh == 1 && j->sw == 1 && j->OH == j->H && j->OW == j->W && j->pt == 0 &&
            j->pl == 0;
  j->G = choose_groups_per_block(j);
  j->nblocks = (j->groups + j->G - 1) / j->G;
  j->x_addr = cc_addr(c, x);
  if (!w->data) { // weights computed at run time (a JAX parameter): dense only
    if (j->groups != 1)
      return ir_fail(err, errlen, "a grouped convolution needs constant weights (group %" PRId64 ")", j->groups);
    j->w_runtime = j->w_conv = true;
    j->w_src_f32 = cc_addr(c, w);
  }
  return 0;
}

static int conv_job(cc_lower_ctx *c, job *j, char *err, size_t errlen) { return conv_job_w(c, j, 1, err, errlen); }

static bool is_depthwise(const job *j) { return j->groups > 1 && j->cin_g == 1 && j->cout_g == 1; }

// The job of a matmul whose B is a constant matrix: a 1x1 convolution.
static void matmul_job(cc_lower_ctx *c, job *j) {
  const ir_node *n = c->n;
  const ir_value *a = n->in[0], *b = n->in[1];
  job_init(j, c);
  int64_t K = a->ty.dims[a->ty.rank - 1], Nn = b->ty.dims[1];
  j->N = 1, j->OH = 1, j->H = 1, j->Cin = K, j->M = Nn;
  j->KH = j->KW = j->sh = j->sw = j->dh = j->dw = 1;
  j->groups = 1, j->cin_g = K, j->cout_g = Nn, j->G = 1, j->nblocks = 1, j->flat = true;
  j->W = j->OW = ir_nelems(&a->ty) / K;
  j->x_addr = cc_addr(c, a);
}

static bool const_matmul(const ir_node *n) { return n->in[1]->data && n->in[1]->ty.rank == 2; }

int cc_mxu_prepare(cc_lower_ctx *c, char *err, size_t errlen) {
  const ir_node *n = c->n;
  cc_weights *cw = &c->weights[n->id];
  *cw = (cc_weights){.vmem = UINT64_MAX};
  job j;
  if (n->op == IR_OP_CONV) {
    if (conv_job(c, &j, err, errlen) || is_depthwise(&j) || j.w_runtime) return 0; // errors surface when lowering
  } else {
    if (!const_matmul(n) || (has_bias(n) && !n->in[2]->data)) return 0;
    matmul_job(c, &j);
  }
  float *wf = const_f32(n->in[1]);
  if (!wf) return ir_fail(err, errlen, "out of host memory");
  int rc = place_weights(&j, wf, has_bias(n) ? n->in[2] : NULL, n->op == IR_OP_MATMUL);
  free(wf);
  if (rc) return cc_emit_failed(c->e, err, errlen);
  *cw = (cc_weights){j.w_hbm, weight_bytes(&j), j.b_hbm, j.has_bias, UINT64_MAX, j.s_hbm, 0, 0, {{0}}};
  if (fifo_lead(&j, cw)) return ir_fail(err, errlen, "out of host memory");
  return 0;
}

// Takes the weights cc_mxu_prepare arranged (and prefetched), if any.
static bool take_prepared(cc_lower_ctx *c, job *j) {
  const cc_weights *cw = c->weights ? &c->weights[c->n->id] : NULL;
  if (!cw || !cw->w_bytes) return false;
  j->w_hbm = cw->w_hbm, j->b_hbm = cw->b_hbm, j->has_bias = cw->has_bias, j->w_pre = cw->vmem, j->s_hbm = cw->s_hbm;
  return true;
}

static int lower_conv(cc_lower_ctx *c, char *err, size_t errlen) {
  const ir_node *n = c->n;
  job j;
  if (conv_job(c, &j, err, errlen)) return -1;
  if (j.q8 && (j.w_runtime || is_depthwise(&j)))
    return ir_fail(err, errlen, "int8 needs constant weights and a non-depthwise convolution");
  if (j.w_runtime) {
    if (has_bias(n)) {
      float *bf = const_f32(n->in[2]);
      if (!bf) return ir_fail(err, errlen, "out of host memory");
      j.b_hbm = cc_hbm_const(c->e, bf, (uint64_t)j.M * 4), j.has_bias = true;
      free(bf);
    }
    cc_layer_add_macs(c->e, (uint64_t)(j.N * j.OH * j.OW * j.M * j.cin_g * j.KH * j.KW));
    plan p;
    if (make_plan(&j, &p, err, errlen)) return -1;
    return run_job(&j, &p) ? cc_emit_failed(c->e, err, errlen) : 0;
  }
  float *wf = const_f32(n->in[1]);
  if (!wf) return ir_fail(err, errlen, "out of host memory");
  if (is_depthwise(&j)) {
    cc_layer_add_macs(c->e, (uint64_t)(j.N * j.OH * j.OW * j.M * j.KH * j.KW));
    if (has_bias(n)) {
      float *bf = const_f32(n->in[2]);
      if (!bf) return free(wf), ir_fail(err, errlen, "out of host memory");
      j.b_hbm = cc_hbm_const(c->e, bf, (uint64_t)j.M * 4), j.has_bias = true;
      free(bf);
    }
    int rc = lower_depthwise(&j, wf, err, errlen);
    free(wf);
    if (!rc && cc_emit_failed(c->e, err, errlen)) rc = -1;
    return rc;
  }
  int rc = take_prepared(c, &j) ? 0 : place_weights(&j, wf, has_bias(n) ? n->in[2] : NULL, false);
  free(wf);
  if (rc) return cc_emit_failed(c->e, err, errlen);
  cc_layer_add_macs(c->e, (uint64_t)(j.N * j.OH * j.OW * j.M * j.cin_g * j.KH * j.KW));
  plan p;
  if (make_plan(&j, &p, err, errlen)) return -1;
  if (run_job(&j, &p)) return cc_emit_failed(c->e, err, errlen);
  return 0;
}

// A softmax epilogue the output tiles could not hold: over the output in HBM.
static int softmax_after(cc_lower_ctx *c, const job *j, char *err, size_t errlen) {
  if (j->act != IR_ACT_SOFTMAX || softmax_in_tile(j)) return 0;
  return cc_lower_softmax_inplace(c, c->n->out[0], err, errlen);
}

static int lower_matmul(cc_lower_ctx *c, char *err, size_t errlen) {
  const ir_node *n = c->n;
  const ir_value *a = n->in[0], *b = n->in[1];
  job j;
  job_init(&j, c);
  int ra = a->ty.rank, rb = b->ty.rank;
  int64_t K = a->ty.dims[ra - 1];
  int64_t Mr = ra >= 2 ? a->ty.dims[ra - 2] : 1;
  int64_t Nn = rb >= 2 ? b->ty.dims[rb - 1] : 1;
  j.N = 1, j.OH = 1, j.H = 1, j.Cin = K, j.M = Nn;
  j.KH = j.KW = j.sh = j.sw = j.dh = j.dw = 1;
  j.groups = 1, j.cin_g = K, j.cout_g = Nn, j.G = 1, j.nblocks = 1, j.flat = true;
  if (has_bias(n) && !n->in[2]->data) return ir_fail(err, errlen, "matmul bias must be constant");
  if (const_matmul(n)) { // weights known at compile time
    matmul_job(c, &j);
    if (!take_prepared(c, &j)) {
      float *wf = const_f32(b);
      if (!wf) return ir_fail(err, errlen, "out of host memory");
      int rc = place_weights(&j, wf, has_bias(n) ? n->in[2] : NULL, true);
      free(wf);
      if (rc) return cc_emit_failed(c->e, err, errlen);
    }
    cc_layer_add_macs(c->e, (uint64_t)(j.OW * K * Nn));
    plan p;
    if (make_plan(&j, &p, err, errlen)) return -1;
    if (run_job(&j, &p)) return cc_emit_failed(c->e, err, errlen);
    return softmax_after(c, &j, err, errlen);
  }
  // B computed at run time (or batched): one job per batch matrix.
  if (j.q8) return ir_fail(err, errlen, "int8 needs a constant right operand");
  j.w_runtime = true;
  j.W = j.OW = Mr;
  if (has_bias(n)) {
    float *bf = const_f32(n->in[2]);
    if (!bf) return ir_fail(err, errlen, "out of host memory");
    j.b_hbm = cc_hbm_const(c->e, bf, (uint64_t)Nn * 4), j.has_bias = true;
    free(bf);
  }
  // batch dims (right-aligned, numpy broadcasting) and element strides of A and B
  int abatch = ra >= 3 ? ra - 2 : 0, bbatch = rb >= 3 ? rb - 2 : 0;
  int nb = abatch > bbatch ? abatch : bbatch;
  int64_t bd[IR_MAX_DIMS], sa[IR_MAX_DIMS], sb[IR_MAX_DIMS];
  int64_t stride_a = Mr * K, stride_b = K * Nn;
  for (int d = nb - 1; d >= 0; d--) {
    int da = d - (nb - abatch), db = d - (nb - bbatch);
    int64_t na = da >= 0 ? a->ty.dims[da] : 1, nbb = db >= 0 ? b->ty.dims[db] : 1;
    bd[d] = na > nbb ? na : nbb;
    sa[d] = na == 1 ? 0 : stride_a, sb[d] = nbb == 1 ? 0 : stride_b;
    stride_a *= na, stride_b *= nbb;
  }
  int64_t nbatch = 1;
  for (int d = 0; d < nb; d++) nbatch *= bd[d];
  cc_layer_add_macs(c->e, (uint64_t)(nbatch * Mr * K * Nn));
  plan p;
  if (make_plan(&j, &p, err, errlen)) return -1;
  uint64_t a0 = cc_addr(c, a), b0 = cc_addr(c, b), y0 = j.y_addr, r0 = j.res_addr;
  for (int64_t bi = 0; bi < nbatch; bi++) {
    int64_t rem = bi, ao = 0, bo = 0;
    for (int d = nb - 1; d >= 0; d--) {
      int64_t idx = rem % bd[d];
      rem /= bd[d];
      ao += idx * sa[d], bo += idx * sb[d];
    }
    j.x_addr = a0 + (uint64_t)ao * 4, j.w_src_f32 = b0 + (uint64_t)bo * 4;
    j.y_addr = y0 + (uint64_t)(bi * Mr * Nn) * 4;
    if (j.has_res) j.res_addr = r0 + (uint64_t)(bi * Mr * Nn) * 4;
    if (run_job(&j, &p)) return cc_emit_failed(c->e, err, errlen);
  }
  return softmax_after(c, &j, err, errlen);
}

// ---------------------------------------------------------------- ONNX integer ops
//
// MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv with ONNX Runtime's
// integers: the MXU sums int8 products into int32. u8 inputs enter as
// x' = x - 128 (exact in int8), weights as w - w_zp (which must fit int8), so
//   sum (x - x_zp)(w - w_zp) = sum x' (w - w_zp) + (oa - x_zp) colsum(w - w_zp)
// with oa 128 for u8, 0 for i8: the second term (plus QLinearConv's bias) is
// an int32 constant per output channel added in the epilogue with v.iadd.
// Padding holds x_zp (as ONNX Runtime pads), so it contributes 0.

static int const_int(const ir_value *v, int64_t i, int64_t *out) {
  if (!v->data) return -1;
  int64_t n = ir_nelems(&v->ty);
  *out = ir_get_int(v->data, v->ty.dtype, n == 1 ? 0 : i);
  return 0;
}

// Weights of batch bi (w - w_zp per output channel, into wq), the int32
// addends and the requantisation scales of that batch into HBM.
static int int_weights(const ir_node *n, job *j, int64_t bi, bool conv, bool ql, int ws, int wzs, int64_t xz,
                       int64_t oa, float *wq, bool *wide, char *err, size_t errlen) {
  const ir_value *w = n->in[ws];
  int64_t nw = conv ? ir_nelems(&w->ty) : j->Cin * j->M, per = conv ? nw / j->M : 1, w0 = bi * nw;
  int64_t *colsum = calloc((size_t)j->M, sizeof *colsum);
  int32_t *addv = calloc((size_t)j->M, sizeof *addv);
  float *ms = calloc((size_t)j->M, sizeof *ms);
  int rc = 0;
  if (!colsum || !addv || !ms) rc = ir_fail(err, errlen, "out of host memory");
  for (int64_t i = 0; !rc && i < nw; i++) {
    int64_t o = conv ? i / per : i % j->M, wz = 0;
    const_int(n->in[wzs], o, &wz);
    int64_t v = ir_get_int(w->data, w->ty.dtype, w0 + i) - wz;
    if (v < -128 || v > 127) *wide = true;
    wq[i] = (float)v, colsum[o] += v;
  }
  j->has_addv = false;
  for (int64_t o = 0; !rc && o < j->M; o++) {
    int64_t b = 0;
    if (n->op == IR_OP_QLINEAR_CONV && n->nin == 9) const_int(n->in[8], o, &b);
    int64_t a = (oa - xz) * colsum[o] + b;
    if (a < INT32_MIN || a > INT32_MAX) rc = ir_fail(err, errlen, "the zero-point sum of channel %" PRId64 " overflows int32", o);
    addv[o] = (int32_t)a;
    if (a) j->has_addv = true;
    if (ql) { // ONNX Runtime: (x_scale * w_scale[o]) / y_scale in fp32
      float xs = (float)ir_get_float(n->in[1]->data, n->in[1]->ty.dtype, 0);
      float wsc = (float)ir_get_float(n->in[4]->data, n->in[4]->ty.dtype, ir_nelems(&n->in[4]->ty) == 1 ? 0 : o);
      float ysc = (float)ir_get_float(n->in[6]->data, n->in[6]->ty.dtype, 0);
      float t = xs * wsc;
      ms[o] = t / ysc;
    }
  }
  if (!rc && ql) j->mscale_hbm = cc_hbm_const(j->e, ms, (uint64_t)j->M * 4);
  if (!rc && j->has_addv) j->addv_hbm = cc_hbm_const(j->e, addv, (uint64_t)j->M * 4);
  free(colsum), free(addv), free(ms);
  return rc;
}

static int lower_int_product(cc_lower_ctx *c, char *err, size_t errlen) {
  const ir_node *n = c->n;
  bool conv = n->op == IR_OP_CONV_INTEGER || n->op == IR_OP_QLINEAR_CONV;
  bool ql = n->op == IR_OP_QLINEAR_MATMUL || n->op == IR_OP_QLINEAR_CONV;
  int ws = ql ? 3 : 1, xzs = 2, wzs = ql ? 5 : 3;
  const ir_value *x = n->in[0], *w = n->in[ws], *y = n->out[0];
  job j;
  int64_t nbatch = 1, xstride = 0, ystride = 0; // batched B: one job per batch matrix
  if (conv) {
    if (conv_job_w(c, &j, ws, err, errlen)) return -1;
  } else {
    job_init(&j, c);
    int rw = w->ty.rank, rx = x->ty.rank;
    if (rw != 2 && !(rw == 3 && rx == 3 && x->ty.dims[0] == w->ty.dims[0]))
      return ir_fail(err, errlen, "B must be a matrix, or [batch, K, N] with A [batch, M, K] (B %dD, A %dD)", rw, rx);
    int64_t K = x->ty.dims[rx - 1], Nn = w->ty.dims[rw - 1];
    j.N = 1, j.OH = 1, j.H = 1, j.Cin = K, j.M = Nn;
    j.KH = j.KW = j.sh = j.sw = j.dh = j.dw = 1;
    j.groups = 1, j.cin_g = K, j.cout_g = Nn, j.G = 1, j.nblocks = 1, j.flat = true;
    j.W = j.OW = ir_nelems(&x->ty) / K;
    if (rw == 3) nbatch = w->ty.dims[0], j.W = j.OW = x->ty.dims[1], xstride = j.W * K, ystride = j.W * Nn;
    j.x_addr = cc_addr(c, x);
  }
  if (!w->data) return ir_fail(err, errlen, "the weights must be constant");
  for (int i = 1; i < n->nin; i++)
    if (i != ws && !n->in[i]->data)
      return ir_fail(err, errlen, "input %d ('%s'), a scale, zero point or bias, must be constant", i, n->in[i]->name);
  j.q8 = j.qint = true, j.mdt = DT_I8, j.es = 1, j.xes = 1;
  j.parts = 1, j.npairs = 1, j.pair_a[0] = j.pair_b[0] = 0;
  j.x_u8 = x->ty.dtype == IR_DT_U8;
  j.w_runtime = false;
  int64_t xz = 0, oa = j.x_u8 ? 128 : 0;
  const ir_value *xzv = n->in[xzs];
  if (const_int(xzv, 0, &xz)) return -1;
  for (int64_t i = 1; i < ir_nelems(&xzv->ty); i++) {
    int64_t v = 0;
    const_int(xzv, i, &v);
    if (v != xz) return ir_fail(err, errlen, "a zero point per row of A is not lowered (only one for all rows)");
  }
  j.x_pad = (int8_t)(xz - oa);
  if (ql) {
    int64_t yz = 0;
    const_int(n->in[7], 0, &yz);
    j.requant = true, j.y_zp = (int32_t)yz, j.y_u8 = y->ty.dtype == IR_DT_U8;
  }
  int64_t nw = conv ? ir_nelems(&w->ty) : j.Cin * j.M;
  float *wq = malloc((size_t)nw * sizeof *wq);
  if (!wq) return ir_fail(err, errlen, "out of host memory");
  bool wide = false;
  for (int64_t bi = 0; bi < nbatch; bi++) // every batch's weights decide whether two parts are needed
    if (int_weights(n, &j, bi, conv, ql, ws, wzs, xz, oa, wq, &wide, err, errlen)) return free(wq), -1;
  if (wide) { // w - w_zp outside int8: two int8 parts, two accumulating passes per k-tile
    j.parts = 2, j.npairs = 2;
    j.pair_a[0] = j.pair_a[1] = 0, j.pair_b[0] = 0, j.pair_b[1] = 1;
  }
  cc_layer_add_macs(c->e, (uint64_t)(nbatch * j.N * j.OH * j.OW * j.M * j.cin_g * j.KH * j.KW));
  plan p;
  uint64_t x0 = j.x_addr, y0 = j.y_addr;
  int rc = 0;
  for (int64_t bi = 0; !rc && bi < nbatch; bi++) {
    rc = int_weights(n, &j, bi, conv, ql, ws, wzs, xz, oa, wq, &wide, err, errlen);
    if (!rc && place_weights(&j, wq, NULL, !conv)) rc = cc_emit_failed(c->e, err, errlen);
    if (!rc && bi == 0 && make_plan(&j, &p, err, errlen)) rc = -1;
    j.x_addr = x0 + (uint64_t)(bi * xstride), j.y_addr = y0 + (uint64_t)(bi * ystride * (j.requant ? 1 : 4));
    if (!rc && run_job(&j, &p)) rc = cc_emit_failed(c->e, err, errlen);
  }
  free(wq);
  return rc;
}

int cc_lower_mxu(cc_lower_ctx *c, char *err, size_t errlen) {
  char where[160];
  ir_node_where(c->n, where, sizeof where);
  char why[CC_ERR_LEN] = "";
  ir_op op = c->n->op;
  bool integer = op == IR_OP_MATMUL_INTEGER || op == IR_OP_CONV_INTEGER || op == IR_OP_QLINEAR_MATMUL ||
                 op == IR_OP_QLINEAR_CONV;
  int rc = integer ? lower_int_product(c, why, sizeof why)
           : op == IR_OP_CONV ? lower_conv(c, why, sizeof why)
                               : lower_matmul(c, why, sizeof why);
  if (rc) snprintf(err, errlen, "%s: %s", where, why);
  return rc;
}
