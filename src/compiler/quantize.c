// Post-training quantisation to int8 (docs/compiler.md, "Quantisation").
//
// Calibration runs the fp32 graph on the simulator, with the input of every
// MXU layer made an extra graph output, and records each input's largest
// magnitude over the calibration inputs. Each such layer then gets its input
// scale (ir_attrs.qscale = max |x| / 127, symmetric, per tensor); the MXU
// lowering quantises its input to int8 as it loads it, quantises the weights
// per output channel, multiplies int8 x int8 into int32 and dequantises in
// the epilogue, so everything between MXU layers stays f32 on the vector unit;
// except where the chip's VMEM holds the activations (compile.c stores them
// int8 there), whose layers reading values joined by max pools and
// concatenations share one scale (joint_ranges).
//
// The calibration run needs a floating-point MXU: on a chip whose MXU is
// int8 only (tpu-v1) it runs on the same chip with bf16 enabled, precision
// default. bf16 products change the ranges by well under 1%.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"
#include "sim/sim.h"

// Where an I/O tensor lives: tpu-v1 keeps graph inputs and outputs in host memory (compile.c).

// The layers to quantise: dense or grouped (not depthwise) convolutions and
// matmuls with constant weights, whose input is f32.
static bool quantisable(const ir_node *n) {
  if (n->op != IR_OP_CONV && n->op != IR_OP_MATMUL) return false;
  const ir_value *x = n->in[0], *w = n->in[1];
  if (x->ty.dtype != IR_DT_F32 || x->data || !w->data) return false;
  bool bias = n->nin - (n->a.residual ? 1 : 0) >= 3;
  if (bias && !n->in[2]->data) return false;
  if (n->op == IR_OP_MATMUL) return w->ty.rank == 2;
  int rank = x->ty.rank;
  if (!n->a.nhwc || (rank != 3 && rank != 4)) return false;
  int64_t cin = x->ty.dims[rank - 1], m = n->out[0]->ty.dims[rank - 1];
  return !(n->a.group > 1 && cin / n->a.group == 1 && m / n->a.group == 1);
}

// Largest |v| into *amax, and whether any v is negative into *neg.
static void range_f32(const float *v, int64_t n, float *amax, bool *neg) {
  for (int64_t i = 0; i < n; i++) {
    float a = fabsf(v[i]);
    if (a > *amax) *amax = a; // NaN never compares greater: skipped
    if (v[i] < 0) *neg = true;
  }
}

// Each point's range widened to its class's: the largest amax, negative if any is.
static int joint_ranges(const ir_graph *g, ir_node **pts, int npts, float *amax, bool *neg, char *err, size_t errlen) {
  bool *prod = calloc((size_t)g->nnodes + 1, sizeof *prod);
  int *cls = calloc((size_t)g->nvalues + 1, sizeof *cls);
  float *camax = calloc((size_t)g->nvalues + 1, sizeof *camax);
  bool *cneg = calloc((size_t)g->nvalues + 1, sizeof *cneg);
  int rc = 0;
  if (!prod || !cls || !camax || !cneg) rc = ir_fail(err, errlen, "out of host memory");
  for (int t = 0; !rc && t < npts; t++) prod[pts[t]->id] = true;
  if (!rc && cc_q8_classes(g, prod, cls)) rc = ir_fail(err, errlen, "out of host memory");
  for (int t = 0; !rc && t < npts; t++) {
    int c = cls[pts[t]->in[0]->id];
    if (c < 0) continue;
    if (amax[t] > camax[c]) camax[c] = amax[t];
    cneg[c] |= neg[t];
  }
  for (int t = 0; !rc && t < npts; t++) {
    int c = cls[pts[t]->in[0]->id];
    if (c >= 0) amax[t] = camax[c], neg[t] = cneg[c];
  }
  free(prod), free(cls), free(camax), free(cneg);
  return rc;
}

int cc_quantize(ir_graph *g, const chip_config *chip, const cc_calibration *cal, char *err, size_t errlen) {
  if (!cal || cal->nsets < 1) return ir_fail(err, errlen, "quantisation needs at least one calibration input");
  int npts = 0;
  ir_node **pts = calloc((size_t)g->nnodes + 1, sizeof *pts);
  float *amax = calloc((size_t)g->nnodes + 1, sizeof *amax);
  bool *neg = calloc((size_t)g->nnodes + 1, sizeof *neg);
  int *out_of = calloc((size_t)g->nnodes + 1, sizeof *out_of); // graph output index, or -1
  int *in_of = calloc((size_t)g->nnodes + 1, sizeof *in_of);   // graph input index, or -1
  if (!pts || !amax || !neg || !out_of || !in_of) {
    free(pts), free(amax), free(neg), free(out_of), free(in_of);
    return ir_fail(err, errlen, "out of host memory");
  }
  int nout0 = g->noutputs, rc = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (!quantisable(n)) continue;
    ir_value *x = n->in[0];
    int k = npts++;
    pts[k] = n;
    out_of[k] = in_of[k] = -1;
    for (int q = 0; q < g->ninputs; q++)
      if (g->inputs[q] == x) in_of[k] = q;
    if (in_of[k] >= 0) continue;
    for (int q = 0; q < g->noutputs; q++)
      if (g->outputs[q] == x) out_of[k] = q;
    if (out_of[k] == -1) {
      out_of[k] = g->noutputs;
      ir_add_output(g, x);
    }
  }
  if (!npts) goto done;

  chip_config fchip = *chip; // the calibration run multiplies bf16
  fchip.mxu_bf16 = true;
  cc_options copt = {.precision = CC_PRECISION_DEFAULT};
  cc_executable exe = {0};
  char why[CC_ERR_LEN];
  if (cc_compile(g, &fchip, &copt, &exe, why, sizeof why)) {
    rc = ir_fail(err, errlen, "calibration: %s", why);
    goto done;
  }
  const isa_program *p = &exe.prog;
  for (int s = 0; s < cal->nsets && !rc; s++) {
    sim_options so = {0};
    sim *sm = sim_create(&fchip, &so, why, sizeof why);
    if (!sm) {
      rc = ir_fail(err, errlen, "calibration: %s", why);
      break;
    }
    int in = 0, out = 0;
    rc = sim_load(sm, p, why, sizeof why);
    for (size_t k = 0; !rc && k < p->nio; k++)
      if (p->io[k].role == IO_INPUT) {
        const void *d = cal->inputs[(size_t)s * (size_t)g->ninputs + (size_t)in];
        rc = sim_write(sm, sim_io_mem(&p->io[k]), p->io[k].addr, d, ir_nbytes(&g->inputs[in]->ty), why, sizeof why);
        in++;
      }
    if (!rc) rc = sim_run(sm, why, sizeof why);
    for (size_t k = 0; !rc && k < p->nio; k++) {
      if (p->io[k].role != IO_OUTPUT) continue;
      int o = out++;
      for (int t = 0; t < npts && !rc; t++) {
        if (out_of[t] != o) continue;
        const ir_value *v = g->outputs[o];
        int64_t n = ir_nelems(&v->ty);
        float *buf = malloc((size_t)n * sizeof *buf);
        if (!buf) {
          rc = ir_fail(why, sizeof why, "out of host memory");
          break;
        }
        rc = sim_read(sm, sim_io_mem(&p->io[k]), p->io[k].addr, buf, (uint64_t)n * 4, why, sizeof why);
        range_f32(buf, n, &amax[t], &neg[t]);
        free(buf);
      }
    }
    sim_destroy(sm);
    for (int t = 0; t < npts && !rc; t++)
      if (in_of[t] >= 0) {
        int q = in_of[t];
        const float *d = cal->inputs[(size_t)s * (size_t)g->ninputs + (size_t)q];
        range_f32(d, ir_nelems(&g->inputs[q]->ty), &amax[t], &neg[t]);
      }
    if (rc) rc = ir_fail(err, errlen, "calibration input %d: %s", s, why);
  }
  cc_executable_free(&exe);
  // Symmetric, or for an input never negative (after a relu) all 256 levels
  // on [0, max]: q = rne(x / s) - 128. An input always 0 (or inf) gets scale 1.
  // Where the chip stores int8 between layers, the layers reading one class
  // of values joined by max pools and concatenations (cc_q8_classes) share
  // the class's scale, the largest of their ranges: the producers quantise
  // once, and the pools and concatenations move int8 exactly.
  if (!rc && chip->vmem_activations) rc = joint_ranges(g, pts, npts, amax, neg, err, errlen);
  for (int t = 0; t < npts && !rc; t++) {
    pts[t]->a.qzp = neg[t] ? 0 : -128;
    pts[t]->a.qscale = amax[t] > 0 && isfinite(amax[t]) ? amax[t] / (neg[t] ? 127.0f : 255.0f) : 1.0f;
  }
done:
  g->noutputs = nout0;
  free(pts), free(amax), free(neg), free(out_of), free(in_of);
  return rc;
}
