// The textual dump of a graph (what `systole compile --dump-ir` prints). One
// line per input, constant, node and output; the format is in docs/ir.md.
// Meant for people: small constants show their values, big ones their size.
#include "ir/ir.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#define INLINE_ELEMS 8 // constants up to this many elements print their values

// %name, quoted when it holds anything but the characters ONNX exporters use.
static void print_name(FILE *f, const char *s) {
  bool plain = *s != 0;
  for (const char *p = s; *p && plain; p++)
    plain = isalnum((unsigned char)*p) || strchr("_.:/-", *p);
  if (plain) {
    fprintf(f, "%%%s", s);
    return;
  }
  fputs("%\"", f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\x%02x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static void print_type(FILE *f, const ir_type *t) {
  char buf[128];
  fputs(ir_type_str(t, buf, sizeof buf), f);
}

static void print_ints(FILE *f, const char *key, const int64_t *v, int n) {
  fprintf(f, " %s=[", key);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%" PRId64, i ? "," : "", v[i]);
  fputc(']', f);
}

static void print_elems(FILE *f, const ir_value *v) {
  int64_t n = ir_nelems(&v->ty);
  fputs(" = [", f);
  for (int64_t i = 0; i < n; i++) {
    if (i)
      fputs(", ", f);
    if (ir_dtype_is_float(v->ty.dtype))
      fprintf(f, "%.9g", ir_get_float(v->data, v->ty.dtype, i));
    else if (v->ty.dtype == IR_DT_U64)
      fprintf(f, "%" PRIu64, (uint64_t)ir_get_int(v->data, v->ty.dtype, i));
    else
      fprintf(f, "%" PRId64, ir_get_int(v->data, v->ty.dtype, i));
  }
  fputc(']', f);
}

// The attributes the op's table row names, in a fixed order.
static void print_attrs(FILE *f, const ir_node *n) {
  unsigned m = ir_ops[n->op].attrs;
  const ir_attrs *a = &n->a;
  // Layout and epilogue flags show only when set: a plain matmul has no braces.
  bool nhwc = m & IR_A_LAYOUT && a->nhwc, epi = m & IR_A_EPILOGUE && (a->act != IR_ACT_NONE || a->residual || a->pscale_on);
  if (!(m & ~(unsigned)(IR_A_LAYOUT | IR_A_EPILOGUE)) && !nhwc && !epi)
    return;
  int ns = n->nin ? n->in[0]->ty.rank - 2 : 0, rank = n->nin ? n->in[0]->ty.rank : 0;
  if (ns < 0)
    ns = 0;
  fputs(" {", f);
  if (m & IR_A_WINDOW) {
    print_ints(f, "kernel", a->kernel, ns);
    print_ints(f, "stride", a->stride, ns);
    print_ints(f, "dilation", a->dilation, ns);
    print_ints(f, "pads", a->pads, 2 * ns);
  }
  if (m & IR_A_GROUP)
    fprintf(f, " group=%" PRId64, a->group);
  if (m & IR_A_CEIL)
    fprintf(f, " ceil_mode=%d", a->ceil_mode);
  if (m & IR_A_CIP)
    fprintf(f, " count_include_pad=%d", a->count_include_pad);
  if (m & IR_A_GEMM)
    fprintf(f, " trans_a=%d trans_b=%d alpha=%.9g beta=%.9g", a->trans_a, a->trans_b, (double)a->alpha,
            (double)a->beta);
  if (m & IR_A_ALPHA)
    fprintf(f, " alpha=%.9g beta=%.9g", (double)a->alpha, (double)a->beta);
  if (m & IR_A_EPS)
    fprintf(f, " epsilon=%.9g", (double)a->epsilon);
  if (m & IR_A_CLIP)
    fprintf(f, " lo=%.9g hi=%.9g", a->lo, a->hi);
  if (m & IR_A_AXIS)
    fprintf(f, " axis=%d", a->axis);
  if (m & IR_A_PERM) {
    fputs(" perm=[", f);
    for (int i = 0; i < rank; i++)
      fprintf(f, "%s%d", i ? "," : "", a->perm[i]);
    fputc(']', f);
  }
  if (m & IR_A_DIMS)
    print_ints(f, "dims", a->dims, a->ndims);
  if (m & IR_A_SLICE) {
    print_ints(f, "start", a->start, rank);
    print_ints(f, "end", a->end, rank);
    print_ints(f, "step", a->step, rank);
  }
  if (m & IR_A_PAD) {
    fprintf(f, " mode=%s", a->pad_mode <= IR_PAD_WRAP ? ir_pad_mode_names[a->pad_mode] : "?");
    print_ints(f, "pads", a->pads, 2 * rank);
    fprintf(f, " value=%.9g", a->pad_value);
    bool interior = false;
    for (int i = 0; i < rank && i < IR_MAX_DIMS; i++)
      interior |= a->interior[i] != 0;
    if (interior)
      print_ints(f, "interior", a->interior, rank);
  }
  if (m & IR_A_GELU)
    fprintf(f, " approximate=%s", a->approx_tanh ? "tanh" : "none");
  if (m & IR_A_SLOPE)
    fprintf(f, " alpha=%.9g", (double)a->alpha);
  if (m & IR_A_REDUCE) {
    fputs(" axes=[", f);
    for (int i = 0; i < a->naxes && i < IR_MAX_DIMS; i++)
      fprintf(f, "%s%d", i ? "," : "", a->axes[i]);
    fprintf(f, "] keepdims=%d", a->keepdims);
  }
  if (m & IR_A_REPEATS)
    print_ints(f, "repeats", a->repeats, rank);
  if (m & IR_A_OUTPAD)
    print_ints(f, "output_padding", a->out_pad, ns);
  if (m & IR_A_RNN) {
    fprintf(f, " direction=%s hidden=%" PRId64, a->rnn_dir <= IR_RNN_BIDIRECTIONAL ? ir_rnn_dir_names[a->rnn_dir] : "?",
            a->hidden);
    if (a->rnn_clip > 0)
      fprintf(f, " clip=%.9g", (double)a->rnn_clip);
    if (n->op == IR_OP_LSTM && a->input_forget)
      fputs(" input_forget=1", f);
    if (n->op == IR_OP_GRU)
      fprintf(f, " linear_before_reset=%d", a->linear_before_reset);
    int per = ir_rnn_nacts(n->op), na = per * (a->rnn_dir == IR_RNN_BIDIRECTIONAL ? 2 : 1);
    bool plain = true; // defaults everywhere: nothing to show
    for (int i = 0; i < na; i++) {
      ir_rnn_act k = a->rnn_act[(i / per) * 3 + i % per];
      plain = plain && (k == IR_RNN_ACT_DEFAULT || k == ir_rnn_default_act(n->op, i % per));
    }
    if (!plain) {
      fputs(" activations=[", f);
      for (int i = 0; i < na; i++) {
        int k = (i / per) * 3 + i % per;
        fprintf(f, "%s%s", i ? "," : "", a->rnn_act[k] < IR_RNN_ACT_COUNT ? ir_rnn_act_names[a->rnn_act[k]] : "?");
        if (a->rnn_alpha[k] != 0 || a->rnn_beta[k] != 0)
          fprintf(f, "(%.9g,%.9g)", (double)a->rnn_alpha[k], (double)a->rnn_beta[k]);
      }
      fputc(']', f);
    }
  }
  if (m & IR_A_RWINDOW) {
    fprintf(f, " kind=%s", a->reduce_kind <= IR_RK_PROD ? ir_reduce_kind_names[a->reduce_kind] : "?");
    print_ints(f, "window", a->kernel, rank);
    print_ints(f, "stride", a->stride, rank);
    print_ints(f, "dilation", a->dilation, rank);
    print_ints(f, "pads", a->pads, 2 * rank);
  }
  if (m & IR_A_SIZES)
    print_ints(f, "sizes", a->sizes, a->sizes ? a->nsizes : 0);
  if (m & IR_A_RANGE)
    fprintf(f, " start=%" PRId64 " end=%" PRId64, a->start[0], a->end[0]);
  if (m & IR_A_TO)
    fprintf(f, " to=%s", a->to < IR_DT_COUNT ? ir_dtypes[a->to].name : "?");
  if (m & IR_A_VALUE && a->value_dtype > IR_DT_UNDEF && a->value_dtype < IR_DT_COUNT) {
    if (ir_dtype_is_float(a->value_dtype))
      fprintf(f, " value=%.9g:%s", ir_get_float(a->value, a->value_dtype, 0), ir_dtypes[a->value_dtype].name);
    else
      fprintf(f, " value=%" PRId64 ":%s", ir_get_int(a->value, a->value_dtype, 0), ir_dtypes[a->value_dtype].name);
  }
  if (m & IR_A_RESIZE) {
    fprintf(f, " mode=%s coord=%s", a->resize_mode <= IR_RESIZE_CUBIC ? ir_resize_mode_names[a->resize_mode] : "?",
            a->coord_mode <= IR_COORD_TF_CROP_AND_RESIZE ? ir_coord_mode_names[a->coord_mode] : "?");
    if (a->coord_mode == IR_COORD_TF_CROP_AND_RESIZE) {
      fprintf(f, " roi=[");
      for (int d = 0; d < a->ndims; d++) fprintf(f, "%s%.9g:%.9g", d ? "," : "", (double)a->roi_start[d], (double)a->roi_end[d]);
      fprintf(f, "] extrapolation=%.9g", (double)a->extrapolation);
    }
    if (a->resize_mode == IR_RESIZE_NEAREST)
      fprintf(f, " nearest=%s", a->nearest_mode <= IR_NEAREST_CEIL ? ir_nearest_mode_names[a->nearest_mode] : "?");
    if (a->resize_mode == IR_RESIZE_CUBIC)
      fprintf(f, " cubic_a=%.9g exclude_outside=%d", (double)a->cubic_a, a->exclude_outside);
    fputs(" scales=[", f);
    for (int i = 0; i < a->ndims && i < IR_MAX_DIMS; i++)
      fprintf(f, "%s%.9g", i ? "," : "", a->scales[i]);
    fputc(']', f);
  }
  if (nhwc)
    fputs(" nhwc", f);
  if (m & IR_A_EPILOGUE && a->pscale_on)
    fprintf(f, " %s=%.9g", a->pscale_div ? "pdiv" : "pmul", a->pscale);
  if (epi && a->act == IR_ACT_CLIP)
    fprintf(f, " act=clip[%.9g,%.9g]", a->lo, a->hi);
  else if (epi && a->act != IR_ACT_NONE)
    fprintf(f, " act=%s", a->act <= IR_ACT_TANH ? ir_act_names[a->act] : "?");
  if (epi && a->residual)
    fputs(" residual", f);
  fputs(" }", f);
}

static void print_node(FILE *f, const ir_node *n) {
  fputs("  ", f);
  for (int i = 0; i < n->nout; i++) {
    if (i)
      fputs(", ", f);
    print_name(f, n->out[i]->name);
  }
  fprintf(f, " = %s(", ir_ops[n->op].name);
  for (int i = 0; i < n->nin; i++) {
    if (i)
      fputs(", ", f);
    print_name(f, n->in[i]->name);
  }
  fputc(')', f);
  print_attrs(f, n);
  fputs(" : ", f);
  for (int i = 0; i < n->nout; i++) {
    if (i)
      fputs(", ", f);
    print_type(f, &n->out[i]->ty);
  }
  if (n->src_index >= 0 || n->name[0]) {
    fputs("  #", f);
    if (n->src_index >= 0)
      fprintf(f, " %d", n->src_index);
    if (n->name[0])
      fprintf(f, " '%s'", n->name);
  }
  fputc('\n', f);
}

void ir_print(const ir_graph *g, FILE *f) {
  int nconst = 0;
  uint64_t cbytes = 0;
  for (int i = 0; i < g->nvalues; i++)
    if (g->values[i]->data) {
      nconst++;
      cbytes += ir_nbytes(&g->values[i]->ty);
    }
  fprintf(f, "graph \"%s\"", g->name);
  if (g->source[0])
    fprintf(f, " from \"%s\"", g->source);
  if (g->opset)
    fprintf(f, " (onnx opset %d)", g->opset);
  fprintf(f, ": %d inputs, %d outputs, %d nodes, %d constants of %" PRIu64 " bytes\n", g->ninputs, g->noutputs,
          g->nnodes, nconst, cbytes);
  for (int i = 0; i < g->nnotes; i++)
    fprintf(f, "  # note: %s\n", g->notes[i]);
  for (int i = 0; i < g->ninputs; i++) {
    fputs("  input ", f);
    print_name(f, g->inputs[i]->name);
    fputs(" : ", f);
    print_type(f, &g->inputs[i]->ty);
    fputc('\n', f);
  }
  for (int i = 0; i < g->nvalues; i++) {
    const ir_value *v = g->values[i];
    if (!v->data)
      continue;
    fputs("  const ", f);
    print_name(f, v->name);
    fputs(" : ", f);
    print_type(f, &v->ty);
    if (ir_nelems(&v->ty) <= INLINE_ELEMS)
      print_elems(f, v);
    else
      fprintf(f, "  # %zu bytes", ir_nbytes(&v->ty));
    fputc('\n', f);
  }
  for (int i = 0; i < g->nnodes; i++)
    print_node(f, g->nodes[i]);
  for (int i = 0; i < g->noutputs; i++) {
    fputs("  output ", f);
    print_name(f, g->outputs[i]->name);
    fputs(" : ", f);
    print_type(f, &g->outputs[i]->ty);
    fputc('\n', f);
  }
}
