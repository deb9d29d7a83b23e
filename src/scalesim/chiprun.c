// Systole's own figure for a SCALE-Sim layer: the layer as a graph, compiled
// for a chip whose MXUs are replaced by the SCALE-Sim array, and simulated
// timing only. Unlike SCALE-Sim's count this includes everything the chip
// does: inputs and weights come from HBM at its bandwidth through VMEM of its
// size, the compiler's tiling and im2col, the epilogue, the results going
// back to HBM; weight tiles load while the previous ones compute.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"
#include "scalesim/scalesim.h"
#include "sim/sim.h"

void scalesim_chip_variant(const scalesim_config *c, const chip_config *base, chip_config *out) {
  *out = *base;
  char name[sizeof out->name];
  snprintf(name, sizeof name, "%.30s+%dx%d-%s", base->name, c->rows, c->cols,
           c->dataflow == MXU_WS ? "ws" : c->dataflow == MXU_OS ? "os" : "is");
  memcpy(out->name, name, sizeof name);
  out->mxu_count = 1;
  out->mxu_rows = c->rows;
  out->mxu_cols = c->cols;
  out->weight_load_cycles = c->rows; // one row per cycle, as SCALE-Sim's fill
  out->mxu_bf16 = true;               // the compiler's MXU type
  out->dataflow = (chip_dataflow)c->dataflow;
}

// The layer as one node: conv (channels last, padded at the end only where
// SCALE-Sim's rounding up adds an output row or column) or matmul.
static ir_graph *layer_graph(const scalesim_layer *l) {
  ir_graph *g = ir_graph_new(l->name);
  if (!g) return NULL;
  int64_t oh = (l->ifmap_h - l->filt_h + l->stride_h - 1) / l->stride_h + 1;
  int64_t ow = (l->ifmap_w - l->filt_w + l->stride_w - 1) / l->stride_w + 1;
  ir_node *n;
  if (l->filt_h == 1 && l->channels == 1 && l->filt_w == l->ifmap_w && l->stride_w == 1) { // a GEMM row
    int64_t m = l->ifmap_h, k = l->ifmap_w, nn = l->filters;
    ir_type xt = ir_type_make(IR_DT_F32, 2, (int64_t[]){m, k}), wt = ir_type_make(IR_DT_F32, 2, (int64_t[]){k, nn});
    ir_value *in[2] = {ir_add_input(g, "x", &xt), ir_add_const(g, "w", &wt, NULL)};
    n = ir_add_node(g, IR_OP_MATMUL, l->name, in, 2, 1, NULL);
    n->out[0]->ty = ir_type_make(IR_DT_F32, 2, (int64_t[]){m, nn});
  } else {
    ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){1, l->ifmap_h, l->ifmap_w, l->channels});
    ir_type wt = ir_type_make(IR_DT_F32, 4, (int64_t[]){l->filters, l->channels, l->filt_h, l->filt_w});
    ir_value *in[2] = {ir_add_input(g, "x", &xt), ir_add_const(g, "w", &wt, NULL)};
    n = ir_add_node(g, IR_OP_CONV, l->name, in, 2, 1, NULL);
    n->a.nhwc = true, n->a.group = 1;
    n->a.kernel[0] = l->filt_h, n->a.kernel[1] = l->filt_w;
    n->a.stride[0] = l->stride_h, n->a.stride[1] = l->stride_w;
    n->a.dilation[0] = n->a.dilation[1] = 1;
    n->a.pads[2] = (oh - 1) * l->stride_h + l->filt_h - l->ifmap_h;
    n->a.pads[3] = (ow - 1) * l->stride_w + l->filt_w - l->ifmap_w;
    n->out[0]->ty = ir_type_make(IR_DT_F32, 4, (int64_t[]){1, oh, ow, l->filters});
  }
  ir_add_output(g, n->out[0]);
  return g;
}

int scalesim_chip_run(const chip_config *chip, const scalesim_layer *l, scalesim_chip_result *out, char *err,
                      size_t errlen) {
  *out = (scalesim_chip_result){0};
  ir_graph *g = layer_graph(l);
  if (!g) {
    snprintf(err, errlen, "%s: out of memory", l->name);
    return -1;
  }
  char why[CC_ERR_LEN];
  cc_options opt = {.precision = CC_PRECISION_DEFAULT};
  cc_executable ex;
  int rc = -1;
  if (cc_compile(g, chip, &opt, &ex, why, sizeof why)) {
    snprintf(err, errlen, "%s: compiling for %s: %s", l->name, chip->name, why);
    ir_graph_free(g);
    return -1;
  }
  ir_graph_free(g);
  sim_options so = {.timing_only = true};
  sim *s = sim_create(chip, &so, why, sizeof why);
  if (!s || sim_load(s, &ex.prog, why, sizeof why) || sim_run(s, why, sizeof why)) {
    snprintf(err, errlen, "%s: simulating on %s: %s", l->name, chip->name, why);
  } else {
    const sim_stats *st = sim_get_stats(s);
    out->cycles = st->cycles;
    out->mxu_busy = st->busy[SIM_UNIT_MXU0];
    out->hbm_bytes = st->hbm_read + st->hbm_write;
    out->mxu_utilization = st->mxu_utilization;
    rc = 0;
  }
  sim_destroy(s);
  cc_executable_free(&ex);
  return rc;
}
