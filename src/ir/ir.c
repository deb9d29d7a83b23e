// The IR's tables and the graph itself: creating values and nodes, keeping
// use lists and the name index in step with edits, pruning, ordering, and
// reading and writing constant elements.
#include "ir/ir.h"
#include "sim/numerics.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// Constants are stored little-endian and read with memcpy.
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ir.c assumes a little-endian host"
#endif

const ir_dtype_info ir_dtypes[IR_DT_COUNT] = {
#define X(e, name, bytes, kind) [e] = {name, bytes, kind},
    IR_DTYPES(X)
#undef X
};

const ir_op_info ir_ops[IR_OP_COUNT] = {
#define X(e, name, in, inmax, out, outmax, rule, fold, attrs) [e] = {name, in, inmax, out, outmax, attrs},
    IR_OPS(X)
#undef X
};

const char *const ir_pad_mode_names[4] = {"constant", "reflect", "edge", "wrap"};
const char *const ir_rnn_dir_names[3] = {"forward", "reverse", "bidirectional"};
const char *const ir_rnn_act_names[IR_RNN_ACT_COUNT] = {
    "default",     "sigmoid", "tanh", "relu",     "affine",  "leakyrelu", "thresholdedrelu",
    "scaledtanh", "hardsigmoid", "elu", "softsign", "softplus"};

ir_rnn_act ir_rnn_default_act(ir_op op, int pos) {
  return op == IR_OP_RNN || pos > 0 ? IR_RNN_TANH : IR_RNN_SIGMOID;
}

int ir_rnn_nacts(ir_op op) { return op == IR_OP_LSTM ? 3 : op == IR_OP_GRU ? 2 : 1; }
const char *const ir_reduce_kind_names[4] = {"sum", "max", "min", "prod"};
const char *const ir_act_names[6] = {"none", "relu", "clip", "softmax", "sigmoid", "tanh"};
const char *const ir_resize_mode_names[3] = {"nearest", "linear", "cubic"};
const char *const ir_coord_mode_names[7] = {"half_pixel",    "half_pixel_symmetric", "pytorch_half_pixel",
                                            "align_corners", "asymmetric",           "tf_half_pixel_for_nn",
                                            "tf_crop_and_resize"};
const char *const ir_nearest_mode_names[4] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                              "ceil"};

// Out of memory is not an error the compiler can report usefully: stop.
static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fprintf(stderr, "systole: out of memory\n");
    abort();
  }
  return p;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) {
    fprintf(stderr, "systole: out of memory\n");
    abort();
  }
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s);
  char *d = xrealloc(NULL, n + 1);
  memcpy(d, s, n + 1);
  return d;
}

// Grows *v (of element size elem) so that it holds at least need elements.
static void grow(void *v, int *cap, int need, size_t elem) {
  if (need <= *cap)
    return;
  int c = *cap ? *cap : 8;
  while (c < need)
    c *= 2;
  *(void **)v = xrealloc(*(void **)v, (size_t)c * elem);
  *cap = c;
}

// ---------------------------------------------------------------- types

bool ir_dtype_is_float(ir_dtype dt) { return dt < IR_DT_COUNT && ir_dtypes[dt].kind == IR_DK_FLOAT; }

bool ir_dtype_is_int(ir_dtype dt) {
  return dt < IR_DT_COUNT && (ir_dtypes[dt].kind == IR_DK_SINT || ir_dtypes[dt].kind == IR_DK_UINT);
}

int64_t ir_nelems(const ir_type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

size_t ir_nbytes(const ir_type *t) {
  assert(t->dtype < IR_DT_COUNT);
  return (size_t)ir_nelems(t) * (size_t)ir_dtypes[t->dtype].bytes;
}

bool ir_type_eq(const ir_type *a, const ir_type *b) {
  if (a->dtype != b->dtype || a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return false;
  return true;
}

ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims) {
  assert(rank >= 0 && rank <= IR_MAX_DIMS);
  ir_type t = {.dtype = dt, .rank = rank};
  for (int i = 0; i < rank; i++)
    t.dims[i] = dims[i];
  return t;
}

char *ir_type_str(const ir_type *t, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "%s[", t->dtype < IR_DT_COUNT ? ir_dtypes[t->dtype].name : "?");
  for (int i = 0; i < t->rank && i < IR_MAX_DIMS && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
  if (k < len)
    snprintf(buf + k, len - k, "]");
  return buf;
}

// ---------------------------------------------------------------- name index

static uint64_t hash_name(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static void index_put(ir_graph *g, ir_value *v);

// Rebuilds the index at a size keeping it at most half full.
static void index_rebuild(ir_graph *g) {
  int cap = 64;
  while (cap < 2 * g->nvalues + 2)
    cap *= 2;
  free(g->index);
  g->index = xcalloc((size_t)cap, sizeof *g->index);
  g->index_cap = cap;
  for (int i = 0; i < g->nvalues; i++)
    index_put(g, g->values[i]);
}

static void index_put(ir_graph *g, ir_value *v) {
  size_t mask = (size_t)g->index_cap - 1;
  size_t h = (size_t)hash_name(v->name) & mask;
  while (g->index[h])
    h = (h + 1) & mask;
  g->index[h] = v;
}

ir_value *ir_find(const ir_graph *g, const char *name) {
  if (!g->index_cap)
    return NULL;
  size_t mask = (size_t)g->index_cap - 1;
  for (size_t h = (size_t)hash_name(name) & mask; g->index[h]; h = (h + 1) & mask)
    if (!strcmp(g->index[h]->name, name))
      return g->index[h];
  return NULL;
}

// A name not yet in the graph: base itself, else base_1, base_2, ...
static char *fresh_name(const ir_graph *g, const char *base) {
  if (!base || !*base)
    base = "v";
  if (!ir_find(g, base))
    return xstrdup(base);
  size_t n = strlen(base) + 24;
  char *s = xrealloc(NULL, n);
  for (long k = 1;; k++) {
    snprintf(s, n, "%s_%ld", base, k);
    if (!ir_find(g, s))
      return s;
  }
}

// ---------------------------------------------------------------- graphs

ir_graph *ir_graph_new(const char *name) {
  ir_graph *g = xcalloc(1, sizeof *g);
  g->name = xstrdup(name ? name : "");
  g->source = xstrdup("");
  index_rebuild(g);
  return g;
}

static void value_free(ir_value *v) {
  free(v->name);
  free(v->data);
  free(v->uses);
  free(v);
}

static void node_free(ir_node *n) {
  free(n->name);
  free(n->in);
  free(n->out);
  free(n->a.sizes);
  free(n);
}

void ir_graph_free(ir_graph *g) {
  if (!g)
    return;
  for (int i = 0; i < g->nnodes; i++)
    node_free(g->nodes[i]);
  for (int i = 0; i < g->nvalues; i++)
    value_free(g->values[i]);
  for (int i = 0; i < g->nnotes; i++)
    free(g->notes[i]);
  free(g->notes);
  free(g->nodes);
  free(g->values);
  free(g->inputs);
  free(g->outputs);
  free(g->index);
  free(g->name);
  free(g->source);
  free(g);
}

static ir_value *new_value(ir_graph *g, const char *name, const ir_type *ty) {
  ir_value *v = xcalloc(1, sizeof *v);
  v->name = fresh_name(g, name);
  if (ty)
    v->ty = *ty;
  v->id = g->nvalues;
  grow(&g->values, &g->cap_values, g->nvalues + 1, sizeof *g->values);
  g->values[g->nvalues++] = v;
  if (2 * g->nvalues + 2 > g->index_cap)
    index_rebuild(g);
  else
    index_put(g, v);
  return v;
}

ir_value *ir_add_input(ir_graph *g, const char *name, const ir_type *ty) {
  ir_value *v = new_value(g, name, ty);
  v->is_input = true;
  grow(&g->inputs, &g->cap_inputs, g->ninputs + 1, sizeof *g->inputs);
  g->inputs[g->ninputs++] = v;
  return v;
}

ir_value *ir_add_const(ir_graph *g, const char *name, const ir_type *ty, void *data) {
  ir_value *v = new_value(g, name, ty);
  // Empty tensors get a byte anyway: data != NULL is what makes a constant.
  v->data = data ? data : xcalloc(ir_nbytes(ty) + 1, 1);
  return v;
}

void ir_add_output(ir_graph *g, ir_value *v) {
  assert(!v->is_output);
  v->is_output = true;
  grow(&g->outputs, &g->cap_outputs, g->noutputs + 1, sizeof *g->outputs);
  g->outputs[g->noutputs++] = v;
}

static void use_add(ir_value *v, ir_node *n, int slot) {
  grow(&v->uses, &v->cap_uses, v->nuses + 1, sizeof *v->uses);
  v->uses[v->nuses++] = (ir_use){n, slot};
}

static void use_remove(ir_value *v, ir_node *n, int slot) {
  for (int i = 0; i < v->nuses; i++)
    if (v->uses[i].node == n && v->uses[i].slot == slot) {
      v->uses[i] = v->uses[--v->nuses];
      return;
    }
  assert(!"use list out of step with node inputs");
}

ir_node *ir_add_node(ir_graph *g, ir_op op, const char *name, ir_value *const *in, int nin,
                     int nout, const char *const *out_names) {
  assert(op < IR_OP_COUNT && nin >= 0 && nout >= 1);
  ir_node *n = xcalloc(1, sizeof *n);
  n->op = op;
  n->name = xstrdup(name ? name : "");
  n->src_index = -1;
  n->nin = nin;
  n->in = xcalloc((size_t)nin, sizeof *n->in);
  for (int i = 0; i < nin; i++) {
    assert(in[i]);
    n->in[i] = in[i];
    use_add(in[i], n, i);
  }
  n->nout = nout;
  n->out = xcalloc((size_t)nout, sizeof *n->out);
  for (int i = 0; i < nout; i++) {
    ir_value *v = new_value(g, out_names ? out_names[i] : name, NULL);
    v->producer = n;
    v->producer_slot = i;
    n->out[i] = v;
  }
  n->id = g->nnodes;
  grow(&g->nodes, &g->cap_nodes, g->nnodes + 1, sizeof *g->nodes);
  g->nodes[g->nnodes++] = n;
  return n;
}

void ir_set_input(ir_node *n, int slot, ir_value *v) {
  assert(slot >= 0 && slot < n->nin && v);
  use_remove(n->in[slot], n, slot);
  n->in[slot] = v;
  use_add(v, n, slot);
}

void ir_replace_uses(ir_value *old, ir_value *new_value) {
  assert(old != new_value);
  while (old->nuses) {
    ir_use u = old->uses[old->nuses - 1];
    ir_set_input(u.node, u.slot, new_value);
  }
}

void ir_remove_node(ir_graph *g, ir_node *n) {
  assert(n->id >= 0 && n->id < g->nnodes && g->nodes[n->id] == n);
  for (int i = 0; i < n->nin; i++)
    use_remove(n->in[i], n, i);
  for (int i = 0; i < n->nout; i++)
    n->out[i]->producer = NULL;
  for (int i = n->id + 1; i < g->nnodes; i++) {
    g->nodes[i - 1] = g->nodes[i];
    g->nodes[i - 1]->id = i - 1;
  }
  g->nnodes--;
  node_free(n);
}

static bool node_is_dead(const ir_node *n) {
  for (int i = 0; i < n->nout; i++)
    if (n->out[i]->nuses || n->out[i]->is_output)
      return false;
  return true;
}

int ir_prune(ir_graph *g) {
  int removed = 0;
  // Backwards, so a chain of dead nodes goes in one sweep.
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (node_is_dead(g->nodes[i])) {
      ir_remove_node(g, g->nodes[i]);
      removed++;
    }
  int k = 0;
  for (int i = 0; i < g->nvalues; i++) {
    ir_value *v = g->values[i];
    if (!v->producer && !v->is_input && !v->is_output && !v->nuses) {
      value_free(v);
      continue;
    }
    v->id = k;
    g->values[k++] = v;
  }
  g->nvalues = k;
  index_rebuild(g);
  return removed;
}

// Min-heap of node ids: Kahn's algorithm that always takes the earliest
// ready node, so an already ordered graph keeps its order.
static void heap_push(int *h, int *n, int x) {
  int i = (*n)++;
  for (; i > 0 && h[(i - 1) / 2] > x; i = (i - 1) / 2)
    h[i] = h[(i - 1) / 2];
  h[i] = x;
}

static int heap_pop(int *h, int *n) {
  int top = h[0], x = h[--*n], i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= *n)
      break;
    if (c + 1 < *n && h[c + 1] < h[c])
      c++;
    if (h[c] >= x)
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
  return top;
}

int ir_toposort(ir_graph *g) {
  int n = g->nnodes, nheap = 0, k = 0;
  int *pending = xcalloc((size_t)n, sizeof *pending);
  int *heap = xcalloc((size_t)n, sizeof *heap);
  ir_node **order = xcalloc((size_t)n, sizeof *order);
  for (int i = 0; i < n; i++) {
    ir_node *x = g->nodes[i];
    for (int j = 0; j < x->nin; j++)
      if (x->in[j]->producer)
        pending[i]++;
    if (!pending[i])
      heap_push(heap, &nheap, i);
  }
  while (nheap) {
    ir_node *x = g->nodes[heap_pop(heap, &nheap)];
    order[k++] = x;
    for (int o = 0; o < x->nout; o++)
      for (int u = 0; u < x->out[o]->nuses; u++) {
        int id = x->out[o]->uses[u].node->id;
        if (--pending[id] == 0)
          heap_push(heap, &nheap, id);
      }
  }
  int rc = -1;
  if (k == n) {
    for (int i = 0; i < n; i++) {
      g->nodes[i] = order[i];
      order[i]->id = i;
    }
    rc = 0;
  }
  free(pending);
  free(heap);
  free(order);
  return rc;
}

void ir_note(ir_graph *g, const char *fmt, ...) {
  char buf[IR_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g->notes = xrealloc(g->notes, (size_t)(g->nnotes + 1) * sizeof *g->notes);
  g->notes[g->nnotes++] = xstrdup(buf);
}

char *ir_node_where(const ir_node *n, char *buf, size_t len) {
  if (n->name[0])
    snprintf(buf, len, "node %d '%s' (%s)", n->id, n->name, ir_ops[n->op].name);
  else
    snprintf(buf, len, "node %d (%s)", n->id, ir_ops[n->op].name);
  return buf;
}

// ---------------------------------------------------------------- constant elements

// f16 and bf16 decode exactly; encoding goes through float (bf16: the chip's
// own RNE, src/sim/numerics.c).
static double f16_to_double(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

// f32 -> f16, round to nearest even, overflow to infinity.
static uint16_t f32_to_f16(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
  uint32_t a = b & 0x7fffffffu;
  if (a > 0x7f800000u)
    return sign | 0x7e00;
  if (a >= 0x477ff000u) // rounds to >= 65520: infinity
    return sign | 0x7c00;
  if (a < 0x38800000u) { // below the smallest normal half: subnormal or zero
    float x = fabsf(f) * 16777216.0f; // units of 2^-24, exact scaling
    long m = lrintf(x);               // current rounding mode: nearest even
    return sign | (uint16_t)m;
  }
  uint32_t r = a + 0x0fffu + ((a >> 13) & 1); // RNE at bit 13
  return sign | (uint16_t)(((r >> 13) - (112u << 10)) & 0x7fff);
}

int64_t ir_get_int(const void *data, ir_dtype dt, int64_t i) {
  const uint8_t *p = (const uint8_t *)data + (size_t)i * (size_t)ir_dtypes[dt].bytes;
  switch (dt) {
  case IR_DT_I8: { int8_t x; memcpy(&x, p, 1); return x; }
  case IR_DT_I16: { int16_t x; memcpy(&x, p, 2); return x; }
  case IR_DT_I32: { int32_t x; memcpy(&x, p, 4); return x; }
  case IR_DT_I64: { int64_t x; memcpy(&x, p, 8); return x; }
  case IR_DT_U8: case IR_DT_BOOL: return *p;
  case IR_DT_U16: { uint16_t x; memcpy(&x, p, 2); return x; }
  case IR_DT_U32: { uint32_t x; memcpy(&x, p, 4); return x; }
  case IR_DT_U64: { uint64_t x; memcpy(&x, p, 8); return (int64_t)x; }
  default: {
    double d = ir_get_float(data, dt, i); // truncation toward zero, saturating
    if (isnan(d))
      return 0;
    if (d >= 9223372036854775807.0)
      return INT64_MAX;
    if (d <= -9223372036854775808.0)
      return INT64_MIN;
    return (int64_t)d;
  }
  }
}

double ir_get_float(const void *data, ir_dtype dt, int64_t i) {
  const uint8_t *p = (const uint8_t *)data + (size_t)i * (size_t)ir_dtypes[dt].bytes;
  switch (dt) {
  case IR_DT_F32: { float x; memcpy(&x, p, 4); return x; }
  case IR_DT_F64: { double x; memcpy(&x, p, 8); return x; }
  case IR_DT_F16: { uint16_t x; memcpy(&x, p, 2); return f16_to_double(x); }
  case IR_DT_BF16: { uint16_t x; memcpy(&x, p, 2); return num_bf16_to_f32(x); }
  case IR_DT_U64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
  default: return (double)ir_get_int(data, dt, i);
  }
}

void ir_set_int(void *data, ir_dtype dt, int64_t i, int64_t v) {
  uint8_t *p = (uint8_t *)data + (size_t)i * (size_t)ir_dtypes[dt].bytes;
  // Narrowing keeps the low bits (two's complement), as a cast in C does.
  uint64_t u = (uint64_t)v;
  switch (dt) {
  case IR_DT_I8: case IR_DT_U8: { uint8_t x = (uint8_t)u; memcpy(p, &x, 1); return; }
  case IR_DT_BOOL: *p = v != 0; return;
  case IR_DT_I16: case IR_DT_U16: { uint16_t x = (uint16_t)u; memcpy(p, &x, 2); return; }
  case IR_DT_I32: case IR_DT_U32: { uint32_t x = (uint32_t)u; memcpy(p, &x, 4); return; }
  case IR_DT_I64: case IR_DT_U64: memcpy(p, &u, 8); return;
  default: ir_set_float(data, dt, i, (double)v); return;
  }
}

void ir_set_float(void *data, ir_dtype dt, int64_t i, double v) {
  uint8_t *p = (uint8_t *)data + (size_t)i * (size_t)ir_dtypes[dt].bytes;
  switch (dt) {
  case IR_DT_F32: { float x = (float)v; memcpy(p, &x, 4); return; }
  case IR_DT_F64: memcpy(p, &v, 8); return;
  case IR_DT_BF16: { uint16_t x = num_f32_to_bf16((float)v); memcpy(p, &x, 2); return; }
  case IR_DT_F16: { uint16_t x = f32_to_f16((float)v); memcpy(p, &x, 2); return; }
  case IR_DT_BOOL: *p = v != 0; return;
  case IR_DT_U64: {
    uint64_t x = isnan(v) || v <= 0 ? 0 : v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
    memcpy(p, &x, 8);
    return;
  }
  default: {
    // Out-of-range float -> int conversion is undefined in C and in ONNX:
    // saturate to the target's range so the result is at least defined.
    int bits = 8 * ir_dtypes[dt].bytes;
    bool sgn = ir_dtypes[dt].kind == IR_DK_SINT;
    double lo = sgn ? -ldexp(1, bits - 1) : 0, hi = sgn ? ldexp(1, bits - 1) - 1 : ldexp(1, bits) - 1;
    int64_t x;
    if (isnan(v))
      x = 0;
    else if (v <= lo)
      x = sgn && bits == 64 ? INT64_MIN : (int64_t)lo;
    else if (v >= hi)
      x = bits == 64 ? INT64_MAX : (int64_t)hi;
    else
      x = (int64_t)v;
    ir_set_int(data, dt, i, x);
    return;
  }
  }
}

// ---------------------------------------------------------------- input shapes

int ir_parse_input_shape(const char *spec, ir_input_shape *out, char *err, size_t errlen) {
  *out = (ir_input_shape){0};
  const char *eq = strrchr(spec, '=');
  if (!eq || eq == spec) {
    snprintf(err, errlen, "input shape '%s': expected NAME=D0,D1,... (or D0xD1x...)", spec);
    return -1;
  }
  size_t nlen = (size_t)(eq - spec);
  if (nlen >= sizeof out->name) {
    snprintf(err, errlen, "input shape '%s': name too long", spec);
    return -1;
  }
  memcpy(out->name, spec, nlen);
  out->name[nlen] = 0;
  const char *s = eq + 1;
  if (!*s)
    return 0; // a scalar
  for (;;) {
    if (out->rank == IR_MAX_DIMS) {
      snprintf(err, errlen, "input shape '%s': more than %d dims", spec, IR_MAX_DIMS);
      return -1;
    }
    char *end;
    errno = 0;
    long long d = strtoll(s, &end, 10);
    if (end == s || errno || d < 0 || d > IR_MAX_ELEMS || (*end && *end != ',' && *end != 'x')) {
      snprintf(err, errlen, "input shape '%s': bad dimension at '%s'", spec, s);
      return -1;
    }
    out->dims[out->rank++] = d;
    if (!*end)
      return 0;
    s = end + 1;
  }
}

int ir_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}
