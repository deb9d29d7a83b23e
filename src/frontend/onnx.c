// The ONNX importer: a ModelProto, parsed by the protobuf-c code generated at
// build time from Debian's onnx.proto, becomes an IR graph (docs/ir.md,
// "ONNX import").
//
// Nodes are imported in file order (ONNX requires topological order). Each
// ONNX op has a row in onnx_ops: its import function, the IR op it makes and
// the attributes it understands (any other attribute is an error, so nothing
// is silently dropped). Inputs that became attributes' replacements across
// opsets (Reshape shape, Clip min/max, Split split, Slice starts/ends, Pad
// pads, Squeeze/Unsqueeze axes, Resize scales/sizes) are accepted in both
// forms and must be constants by the time the node is imported; the constant
// evaluator folds every node it can as soon as it is made, which is what
// turns exported shape arithmetic into those constants.
//
// The reader trusts nothing in the file: every count, index, dim and byte
// length is checked, and a bad model gets "file: [node ...:] reason".
#include "ir/ir.h"
#include "isa/isa.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

// Opsets 7 to 21 are the target; older models import too when each op they
// use still has the definition it has today (the since column of onnx_ops).
#define MIN_OPSET 1
#define MAX_OPSET 21
// protobuf cannot hold a message over 2 GiB: bigger models use external data.
#define MAX_MODEL_BYTES (2ll << 30)

typedef Onnx__AttributeProto attr_proto;
typedef Onnx__NodeProto node_proto;
typedef Onnx__TensorProto tensor_proto;

// A sorted set of names pointing into the model.
typedef struct {
  const char **v;
  size_t n;
} nameset;

typedef struct {
  ir_graph *g;
  const char *file; // for messages
  int opset;
  char *err;
  size_t errlen;
  const node_proto *p; // node being imported, NULL outside nodes
  int index;           // its position in the graph
  nameset defined;     // every name the model defines (inputs, initializers, node outputs)
  nameset used;        // every name a node reads or the graph outputs
} imp;

static int fail(imp *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(imp *m, const char *fmt, ...) {
  char msg[IR_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!m->p)
    snprintf(m->err, m->errlen, "%s: %s", m->file, msg);
  else if (m->p->name && m->p->name[0])
    snprintf(m->err, m->errlen, "%s: node %d '%.100s' (%.64s, opset %d): %s", m->file, m->index, m->p->name,
             m->p->op_type ? m->p->op_type : "?", m->opset, msg);
  else
    snprintf(m->err, m->errlen, "%s: node %d (%.64s, opset %d): %s", m->file, m->index,
             m->p->op_type ? m->p->op_type : "?", m->opset, msg);
  return -1;
}

static const char *str(const char *s) { return s ? s : ""; }

// ---------------------------------------------------------------- name sets

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void set_add(nameset *s, const char *name) {
  if (!name || !name[0])
    return;
  if (!(s->n & (s->n + 1)) || !s->v) { // grow at 0, 1, 3, 7, ...: capacity doubles
    s->v = realloc(s->v, (2 * s->n + 2) * sizeof *s->v);
    if (!s->v)
      abort();
  }
  s->v[s->n++] = name;
}

static void set_sort(nameset *s) {
  if (s->n)
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
}

static bool set_has(const nameset *s, const char *name) {
  return s->n && bsearch(&name, s->v, s->n, sizeof *s->v, cmp_str);
}

// ---------------------------------------------------------------- dtypes and tensors

ir_dtype onnx_dtype(int elem_type) {
  switch (elem_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return IR_DT_F32;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return IR_DT_U8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return IR_DT_I8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return IR_DT_U16;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return IR_DT_I16;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return IR_DT_I32;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return IR_DT_I64;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return IR_DT_BOOL;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return IR_DT_F16;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return IR_DT_F64;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return IR_DT_U32;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return IR_DT_U64;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return IR_DT_BF16;
  default: return IR_DT_UNDEF;
  }
}

static const char *onnx_type_name(int elem_type) {
  static const char *const names[] = {"UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16",   "INT16",
                                      "INT32",     "INT64",  "STRING",    "BOOL",       "FLOAT16",  "DOUBLE",
                                      "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
                                      "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4"};
  return elem_type >= 0 && elem_type < (int)(sizeof names / sizeof *names) ? names[elem_type] : "unknown";
}

static int dtype_of(imp *m, int elem_type, const char *what, ir_dtype *out) {
  *out = onnx_dtype(elem_type);
  if (*out == IR_DT_UNDEF)
    return fail(m, "%s has element type %s (%d), which is not supported", what, onnx_type_name(elem_type), elem_type);
  return 0;
}

// A tensor's type; what names it in messages ("initializer 'w'").
static int tensor_type(imp *m, const tensor_proto *t, const char *what, ir_type *ty) {
  if (!t->has_data_type)
    return fail(m, "%s has no data type", what);
  *ty = (ir_type){0};
  if (dtype_of(m, t->data_type, what, &ty->dtype))
    return -1;
  if (t->n_dims > IR_MAX_DIMS)
    return fail(m, "%s has %zu dims; at most %d are supported", what, t->n_dims, IR_MAX_DIMS);
  ty->rank = (int)t->n_dims;
  int64_t n = 1;
  for (int i = 0; i < ty->rank; i++) {
    int64_t d = t->dims[i];
    if (d < 0 || d > IR_MAX_ELEMS || (d && n > IR_MAX_ELEMS / d))
      return fail(m, "%s has a bad or too large shape (dim %d is %lld)", what, i, (long long)d);
    n *= d;
    ty->dims[i] = d;
  }
  return 0;
}

// The tensor's contents as owned little-endian bytes. raw_data is taken from
// the message rather than copied (protobuf-c already holds one copy).
static int tensor_data(imp *m, tensor_proto *t, const char *what, const ir_type *ty, void **out) {
  *out = NULL;
  if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
      t->n_external_data) {
    const char *loc = "?";
    for (size_t i = 0; i < t->n_external_data; i++)
      if (t->external_data[i] && !strcmp(str(t->external_data[i]->key), "location"))
        loc = str(t->external_data[i]->value);
    return fail(m,
                "%s keeps its data in an external file ('%.200s'); models with external data are not supported "
                "(save the model with all tensors inside the .onnx file)",
                what, loc);
  }
  if (t->segment)
    return fail(m, "%s is a segment of a larger tensor, which is not supported", what);
  size_t nbytes = ir_nbytes(ty), nel = (size_t)ir_nelems(ty);
  if (t->has_raw_data) {
    if (t->raw_data.len != nbytes)
      return fail(m, "%s holds %zu bytes of raw data; %zu expected", what, t->raw_data.len, nbytes);
    if (nbytes && t->raw_data.data) {
      *out = t->raw_data.data;
      t->raw_data.data = NULL;
      t->raw_data.len = 0;
      t->has_raw_data = 0;
    } else if (!(*out = calloc(1, 1)))
      abort();
    return 0;
  }
  // Typed arrays: which field holds which type is fixed by onnx.proto.
  size_t have;
  switch (ty->dtype) {
  case IR_DT_F32: have = t->n_float_data; break;
  case IR_DT_F64: have = t->n_double_data; break;
  case IR_DT_I64: have = t->n_int64_data; break;
  case IR_DT_U32: case IR_DT_U64: have = t->n_uint64_data; break;
  default: have = t->n_int32_data; break;
  }
  if (have != nel)
    return fail(m, "%s holds %zu elements; its shape needs %zu", what, have, nel);
  uint8_t *d = calloc(nbytes + 1, 1);
  if (!d)
    abort();
  for (size_t i = 0; i < nel; i++) {
    switch (ty->dtype) {
    case IR_DT_F32: memcpy(d + 4 * i, &t->float_data[i], 4); break;
    case IR_DT_F64: memcpy(d + 8 * i, &t->double_data[i], 8); break;
    case IR_DT_I64: memcpy(d + 8 * i, &t->int64_data[i], 8); break;
    case IR_DT_U32: case IR_DT_U64: ir_set_int(d, ty->dtype, (int64_t)i, (int64_t)t->uint64_data[i]); break;
    case IR_DT_F16: case IR_DT_BF16: { // the 16 bits, in the low half of an int32
      uint16_t b = (uint16_t)t->int32_data[i];
      memcpy(d + 2 * i, &b, 2);
      break;
    }
    default: ir_set_int(d, ty->dtype, (int64_t)i, t->int32_data[i]); break;
    }
  }
  *out = d;
  return 0;
}

// A constant value named name from a tensor.
static ir_value *tensor_const(imp *m, tensor_proto *t, const char *name, const char *what) {
  ir_type ty;
  void *data;
  if (tensor_type(m, t, what, &ty) || tensor_data(m, t, what, &ty, &data))
    return NULL;
  return ir_add_const(m->g, name, &ty, data);
}

// ---------------------------------------------------------------- attributes

static const attr_proto *attr(imp *m, const char *name) {
  for (size_t i = 0; i < m->p->n_attribute; i++) {
    const attr_proto *a = m->p->attribute[i];
    if (a && a->name && !strcmp(a->name, name))
      return a;
  }
  return NULL;
}

static int attr_is(imp *m, const attr_proto *a, Onnx__AttributeProto__AttributeType want, const char *want_name) {
  bool ok = a->type == want;
  if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) // IR version 1 had no type field
    switch (want) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: ok = a->has_i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: ok = a->has_f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: ok = a->has_s; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: ok = a->t != NULL; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: ok = a->n_ints > 0; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: ok = a->n_floats > 0; break;
    default: break;
    }
  if (want == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR && ok && !a->t)
    ok = false;
  return ok ? 0 : fail(m, "attribute '%s' must be %s", a->name, want_name);
}

static int get_int(imp *m, const char *name, int64_t def, int64_t *out) {
  const attr_proto *a = attr(m, name);
  *out = def;
  if (!a)
    return 0;
  if (attr_is(m, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an int"))
    return -1;
  *out = a->i;
  return 0;
}

static int get_bool(imp *m, const char *name, bool *out) {
  int64_t v;
  if (get_int(m, name, 0, &v))
    return -1;
  if (v != 0 && v != 1)
    return fail(m, "attribute '%s' must be 0 or 1, got %lld", name, (long long)v);
  *out = v;
  return 0;
}

static int get_float(imp *m, const char *name, float def, float *out) {
  const attr_proto *a = attr(m, name);
  *out = def;
  if (!a)
    return 0;
  if (attr_is(m, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a float"))
    return -1;
  *out = a->f;
  return 0;
}

// An ints attribute into out[max]; *n = -1 when absent.
static int get_ints(imp *m, const char *name, int64_t *out, int max, int *n) {
  const attr_proto *a = attr(m, name);
  *n = -1;
  if (!a)
    return 0;
  if (attr_is(m, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "a list of ints"))
    return -1;
  if (a->n_ints > (size_t)max)
    return fail(m, "attribute '%s' has %zu values; at most %d make sense here", name, a->n_ints, max);
  if (a->n_ints)
    memcpy(out, a->ints, a->n_ints * sizeof *out);
  *n = (int)a->n_ints;
  return 0;
}

static int get_string(imp *m, const char *name, const char *def, char *out, size_t cap) {
  const attr_proto *a = attr(m, name);
  snprintf(out, cap, "%s", def);
  if (!a)
    return 0;
  if (attr_is(m, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a string"))
    return -1;
  if (a->s.len >= cap || (a->s.len && memchr(a->s.data, 0, a->s.len)))
    return fail(m, "attribute '%s' is not a valid value here", name);
  if (a->s.len)
    memcpy(out, a->s.data, a->s.len);
  out[a->s.len] = 0;
  return 0;
}

// Which of names (NULL-terminated) s is; -1 with an error if none.
static int get_choice(imp *m, const char *name, const char *def, const char *const *names, int *out) {
  char s[64];
  if (get_string(m, name, def, s, sizeof s))
    return -1;
  for (int i = 0; names[i]; i++)
    if (!strcmp(s, names[i]))
      return *out = i, 0;
  return fail(m, "attribute '%s' = '%s' is not supported", name, s);
}

// ---------------------------------------------------------------- inputs

// Input slots in use: trailing empty names are absent optional inputs.
static int n_in(imp *m) {
  int n = (int)m->p->n_input;
  while (n > 0 && !str(m->p->input[n - 1])[0])
    n--;
  return n;
}

static bool has_in(imp *m, int i) { return i < (int)m->p->n_input && str(m->p->input[i])[0]; }

static ir_value *in_val(imp *m, int i) {
  if (!has_in(m, i)) {
    fail(m, "input %d is missing", i);
    return NULL;
  }
  ir_value *v = ir_find(m->g, m->p->input[i]);
  if (!v)
    fail(m, "input %d '%.200s' is not defined by a graph input, an initializer or an earlier node", i,
         m->p->input[i]);
  return v;
}

static int arity(imp *m, int min_in, int max_in, int min_out, int max_out) {
  int ni = n_in(m), no = (int)m->p->n_output;
  if (ni < min_in || ni > max_in)
    return fail(m, "has %d inputs; %d to %d expected", ni, min_in, max_in);
  if (no < min_out || no > max_out)
    return fail(m, "has %d outputs; %d to %d expected", no, min_out, max_out);
  for (int i = 0; i < min_in; i++)
    if (!has_in(m, i))
      return fail(m, "required input %d is empty", i);
  for (int i = 0; i < min_out; i++)
    if (!str(m->p->output[i])[0])
      return fail(m, "required output %d is empty", i);
  return 0;
}

// Outputs from on exist in ONNX but not in the IR (training statistics,
// indices): fine as long as nothing reads them.
static int unused_outputs(imp *m, int from, const char *what) {
  for (int i = from; i < (int)m->p->n_output; i++)
    if (str(m->p->output[i])[0] && set_has(&m->used, m->p->output[i]))
      return fail(m, "output %d '%.200s' (%s) is used, which is not supported", i, m->p->output[i], what);
  return 0;
}

static int not_constant(imp *m, int slot, const char *what, const ir_value *v) {
  char named[300];
  if (strcmp(v->name, what))
    snprintf(named, sizeof named, "input %d '%.200s' (%s)", slot, v->name, what);
  else
    snprintf(named, sizeof named, "input %d '%s'", slot, what);
  if (v->producer)
    return fail(m, "%s must be a constant, but it is computed at run time by node %d (%s)", named,
                v->producer->src_index, ir_ops[v->producer->op].name);
  return fail(m, "%s must be a constant, but it is a graph input", named);
}

// A constant integer input (1-D or scalar) into out[max]; *n elements.
static int const_ints(imp *m, int slot, const char *what, int64_t *out, int max, int *n) {
  ir_value *v = in_val(m, slot);
  if (!v)
    return -1;
  if (!v->data)
    return not_constant(m, slot, what, v);
  if (!ir_dtype_is_int(v->ty.dtype) || v->ty.rank > 1)
    return fail(m, "input %d (%s) must be a 1-D integer tensor", slot, what);
  int64_t k = ir_nelems(&v->ty);
  if (k > max)
    return fail(m, "input %d (%s) has %lld values; at most %d make sense here", slot, what, (long long)k, max);
  for (int64_t i = 0; i < k; i++)
    out[i] = ir_get_int(v->data, v->ty.dtype, i);
  *n = (int)k;
  return 0;
}

// A constant input of any numeric type (1-D or scalar) as doubles.
static int const_floats(imp *m, int slot, const char *what, double *out, int max, int *n) {
  ir_value *v = in_val(m, slot);
  if (!v)
    return -1;
  if (!v->data)
    return not_constant(m, slot, what, v);
  if (v->ty.rank > 1 || ir_nelems(&v->ty) > max)
    return fail(m, "input %d (%s) must be a 1-D tensor of at most %d values", slot, what, max);
  *n = (int)ir_nelems(&v->ty);
  for (int i = 0; i < *n; i++)
    out[i] = ir_get_float(v->data, v->ty.dtype, i);
  return 0;
}

static int const_scalar(imp *m, int slot, const char *what, double *out) {
  double v[1];
  int n = 0; // set by const_floats on success; -O3 does not follow fail()
  if (const_floats(m, slot, what, v, 1, &n))
    return -1;
  if (n != 1)
    return fail(m, "input %d (%s) must hold one value", slot, what);
  *out = v[0];
  return 0;
}

// An axis in [-rank, rank) (or [-rank, rank] with inclusive) made non-negative.
static int norm_axis(imp *m, int64_t axis, int rank, bool inclusive, const char *what, int *out) {
  int hi = inclusive ? rank : rank - 1;
  if (axis < -rank || axis > hi)
    return fail(m, "%s %lld is out of range for rank %d", what, (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return 0;
}

// ---------------------------------------------------------------- emitting nodes

// A name for a value the importer makes up: never one the model uses.
static char *gen_name(imp *m, const char *base, const char *suffix) {
  size_t n = strlen(base) + strlen(suffix) + 32;
  char *s = malloc(n);
  if (!s)
    abort();
  snprintf(s, n, "%s/%s", base, suffix);
  for (int k = 1; ir_find(m->g, s) || set_has(&m->defined, s); k++)
    snprintf(s, n, "%s/%s_%d", base, suffix, k);
  return s;
}

// Adds the IR node for the current ONNX node: infers it and folds it if its
// inputs are constants. names: output names (NULL: the ONNX node's outputs).
// a->sizes moves into the node. Returns the node's first output.
static ir_value *emit_named(imp *m, ir_op op, ir_value *const *in, int nin, int nout, const char *const *names,
                            ir_attrs *a) {
  char **gen = calloc((size_t)nout, sizeof *gen);
  const char **nm = calloc((size_t)nout, sizeof *nm);
  if (!gen || !nm)
    abort();
  for (int i = 0; i < nout; i++) {
    nm[i] = names ? names[i] : str(m->p->output[i]);
    if (!nm[i][0])
      nm[i] = gen[i] = gen_name(m, str(m->p->output[0])[0] ? m->p->output[0] : "out", "unnamed");
  }
  ir_node *n = ir_add_node(m->g, op, m->p->name, in, nin, nout, nm);
  for (int i = 0; i < nout; i++)
    free(gen[i]);
  free(gen);
  free(nm);
  n->src_index = m->index;
  n->a = *a;
  a->sizes = NULL;
  ir_value *first = n->out[0];
  char msg[IR_ERR_LEN];
  ir_type one, *t = nout == 1 ? &one : malloc((size_t)nout * sizeof *t);
  if (!t)
    abort();
  int rc = ir_infer(n, t, msg, sizeof msg);
  for (int i = 0; !rc && i < nout; i++)
    n->out[i]->ty = t[i];
  if (t != &one)
    free(t);
  if (rc) {
    fail(m, "%s", msg);
    return NULL;
  }
  char where[IR_ERR_LEN / 2];
  size_t wlen = strlen(ir_node_where(n, where, sizeof where));
  if (ir_fold_node(m->g, n, msg, sizeof msg) < 0) {
    // The evaluator names the IR node; the ONNX node is named already.
    bool prefixed = !strncmp(msg, where, wlen) && !strncmp(msg + wlen, ": ", 2);
    fail(m, "%s", prefixed ? msg + wlen + 2 : msg);
    return NULL;
  }
  return first;
}

static int emit(imp *m, ir_op op, ir_value *const *in, int nin, ir_attrs *a) {
  return emit_named(m, op, in, nin, 1, NULL, a) ? 0 : -1;
}

// A reshape the importer inserts (softmax's 2-D view): output named name.
static ir_value *emit_reshape(imp *m, ir_value *x, int rank, const int64_t *dims, const char *name) {
  ir_attrs a = {.ndims = rank};
  memcpy(a.dims, dims, (size_t)rank * sizeof *dims);
  return emit_named(m, IR_OP_RESHAPE, &x, 1, 1, &name, &a);
}

// Inputs [0, n) as values; absent ones end the list.
static int inputs(imp *m, ir_value **in, int n) {
  for (int i = 0; i < n; i++)
    if (!(in[i] = in_val(m, i)))
      return -1;
  return 0;
}

// ---------------------------------------------------------------- ops: plain

typedef struct onnx_op onnx_op;
typedef int import_fn(imp *m, const onnx_op *op);
struct onnx_op {
  const char *type;  // ONNX op_type
  int since;         // first opset whose definition of the op this imports
  import_fn *fn;
  ir_op op;          // the IR op it becomes (where the function needs one)
  const char *attrs; // attribute names it understands, space separated
};

static int imp_unary(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1))
    return -1;
  return emit(m, op->op, &x, 1, &a);
}

static int imp_binary(imp *m, const onnx_op *op) {
  ir_value *in[2];
  ir_attrs a = {0};
  if (arity(m, 2, 2, 1, 1) || inputs(m, in, 2))
    return -1;
  return emit(m, op->op, in, 2, &a);
}

static int imp_hardsigmoid(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_float(m, "alpha", 0.2f, &a.alpha) ||
      get_float(m, "beta", 0.5f, &a.beta))
    return -1;
  return emit(m, op->op, &x, 1, &a);
}

// Clip: bounds are attributes up to opset 10, optional inputs from 11.
static int imp_clip(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {.lo = -INFINITY, .hi = INFINITY};
  if (arity(m, 1, 3, 1, 1) || inputs(m, &x, 1))
    return -1;
  float f;
  if (attr(m, "min")) {
    if (get_float(m, "min", 0, &f))
      return -1;
    a.lo = f;
  }
  if (attr(m, "max")) {
    if (get_float(m, "max", 0, &f))
      return -1;
    a.hi = f;
  }
  if (has_in(m, 1) && const_scalar(m, 1, "min", &a.lo))
    return -1;
  if (has_in(m, 2) && const_scalar(m, 2, "max", &a.hi))
    return -1;
  return emit(m, op->op, &x, 1, &a);
}

static int imp_gemm(imp *m, const onnx_op *op) {
  ir_value *in[3];
  ir_attrs a = {0};
  if (arity(m, 2, 3, 1, 1) || inputs(m, in, n_in(m)) || get_float(m, "alpha", 1.0f, &a.alpha) ||
      get_float(m, "beta", 1.0f, &a.beta) || get_bool(m, "transA", &a.trans_a) || get_bool(m, "transB", &a.trans_b))
    return -1;
  return emit(m, op->op, in, n_in(m), &a);
}

// kernel_shape, strides, dilations, pads and auto_pad of a conv or pool over
// x; wk is the weight's kernel (conv) or NULL (pools: kernel_shape required).
// auto_pad is resolved here into explicit pads, since shapes are known.
static int window_attrs(imp *m, const ir_type *x, const int64_t *wk, ir_attrs *a) {
  int ns = x->rank - 2, n;
  if (ns < 1)
    return fail(m, "input must be [N,C,D1,...], got rank %d", x->rank);
  if (get_ints(m, "kernel_shape", a->kernel, IR_MAX_DIMS, &n))
    return -1;
  if (n < 0 && !wk)
    return fail(m, "attribute 'kernel_shape' is required");
  if (n < 0)
    memcpy(a->kernel, wk, (size_t)ns * sizeof *wk);
  else if (n != ns)
    return fail(m, "kernel_shape has %d values for %d spatial dims", n, ns);
  static const struct { const char *name; int64_t def; int mul; } lists[] = {
      {"strides", 1, 1}, {"dilations", 1, 1}, {"pads", 0, 2}};
  int64_t *dst[] = {a->stride, a->dilation, a->pads};
  for (int k = 0; k < 3; k++) {
    if (get_ints(m, lists[k].name, dst[k], lists[k].mul * IR_MAX_DIMS, &n))
      return -1;
    if (n >= 0 && n != lists[k].mul * ns)
      return fail(m, "%s has %d values for %d spatial dims", lists[k].name, n, ns);
    if (n < 0)
      for (int i = 0; i < lists[k].mul * ns; i++)
        dst[k][i] = lists[k].def;
  }
  static const char *const modes[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "", NULL};
  int mode;
  if (get_choice(m, "auto_pad", "NOTSET", modes, &mode))
    return -1;
  if (mode == 0 || mode == 4)
    return 0;
  for (int i = 0; i < ns; i++) {
    int64_t in = x->dims[2 + i], k = a->kernel[i], s = a->stride[i], d = a->dilation[i];
    if (k < 1 || s < 1 || d < 1 || k > (1 << 30) || s > (1 << 30) || d > (1 << 30))
      return fail(m, "kernel %lld, stride %lld, dilation %lld of spatial dim %d are out of range", (long long)k,
                  (long long)s, (long long)d, i);
    int64_t total = 0;
    if (mode != 1) { // SAME: output = ceil(in / stride), the extra pad at the end (upper) or begin (lower)
      total = ((in + s - 1) / s - 1) * s + (k - 1) * d + 1 - in;
      if (total < 0)
        total = 0;
    }
    int64_t small = total / 2;
    a->pads[i] = mode == 3 ? total - small : small;
    a->pads[ns + i] = total - a->pads[i];
  }
  return 0;
}

static int imp_conv(imp *m, const onnx_op *op) {
  ir_value *in[3];
  ir_attrs a = {0};
  if (arity(m, 2, 3, 1, 1) || inputs(m, in, n_in(m)) || get_int(m, "group", 1, &a.group))
    return -1;
  const ir_type *w = &in[1]->ty;
  if (w->rank != in[0]->ty.rank || w->rank < 3)
    return fail(m, "W must have the rank of X (%d), got %d", in[0]->ty.rank, w->rank);
  if (window_attrs(m, &in[0]->ty, w->dims + 2, &a))
    return -1;
  return emit(m, op->op, in, n_in(m), &a);
}

// ConvTranspose: the window as for Conv, but SAME padding and output_shape
// follow the transposed formula: total = stride*(in-1) + output_padding +
// (k-1)*dilation + 1 - out.
static int imp_conv_transpose(imp *m, const onnx_op *op) {
  ir_value *in[3];
  ir_attrs a = {0};
  if (arity(m, 2, 3, 1, 1) || inputs(m, in, n_in(m)) || get_int(m, "group", 1, &a.group))
    return -1;
  const ir_type *x = &in[0]->ty, *w = &in[1]->ty;
  int ns = x->rank - 2, n;
  if (w->rank != x->rank || ns < 1)
    return fail(m, "W must have the rank of X (%d, at least 3), got %d", x->rank, w->rank);
  if (get_ints(m, "kernel_shape", a.kernel, IR_MAX_DIMS, &n))
    return -1;
  if (n < 0)
    memcpy(a.kernel, w->dims + 2, (size_t)ns * sizeof *a.kernel);
  else if (n != ns)
    return fail(m, "kernel_shape has %d values for %d spatial dims", n, ns);
  static const struct { const char *name; int64_t def; int mul; } lists[] = {
      {"strides", 1, 1}, {"dilations", 1, 1}, {"pads", 0, 2}, {"output_padding", 0, 1}};
  int64_t *dst[] = {a.stride, a.dilation, a.pads, a.out_pad};
  for (int k = 0; k < 4; k++) {
    if (get_ints(m, lists[k].name, dst[k], lists[k].mul * IR_MAX_DIMS, &n))
      return -1;
    if (n >= 0 && n != lists[k].mul * ns)
      return fail(m, "%s has %d values for %d spatial dims", lists[k].name, n, ns);
    if (n < 0)
      for (int i = 0; i < lists[k].mul * ns; i++)
        dst[k][i] = lists[k].def;
  }
  int64_t out_shape[IR_MAX_DIMS];
  int nout;
  if (get_ints(m, "output_shape", out_shape, IR_MAX_DIMS, &nout))
    return -1;
  if (nout >= 0 && nout != ns && nout != x->rank)
    return fail(m, "output_shape has %d values for %d spatial dims", nout, ns);
  static const char *const modes[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "", NULL};
  int mode;
  if (get_choice(m, "auto_pad", "NOTSET", modes, &mode))
    return -1;
  bool same = mode == 2 || mode == 3;
  if (nout >= 0 || same)
    for (int i = 0; i < ns; i++) {
      int64_t in_i = x->dims[2 + i], s = a.stride[i];
      int64_t o = nout >= 0 ? out_shape[nout == ns ? i : 2 + i] : in_i * s;
      int64_t total = s * (in_i - 1) + a.out_pad[i] + (a.kernel[i] - 1) * a.dilation[i] + 1 - o;
      if (total < 0) // the output is larger: the difference becomes output padding
        a.out_pad[i] -= total, total = 0;
      int64_t half = total / 2;
      a.pads[i] = mode == 3 ? total - half : half;
      a.pads[ns + i] = total - a.pads[i];
    }
  return emit(m, op->op, in, n_in(m), &a);
}

static ir_value *emit_tmp(imp *m, ir_op op, ir_value *const *in, int nin, ir_attrs *a, const char *suffix);

// MaxPool's Indices, as ONNX defines them: for each output, the flat index
// into X of the window's first maximum (row-major over N, C and the spatial
// dims; storage_order 1: the spatial dims column-major). Built from ops the
// chip has: X padded with -inf, and per kernel offset k (last to first) a
// strided slice S_k, the output's element matching it, and
// where(S_k == Y, I_k, indices) with I_k the constant indices that offset
// reads; so the first offset in window order that holds the maximum wins.
// The where runs in f32: the indices must stay below 2^24.
static int maxpool_indices(imp *m, ir_value *x, ir_value *y, const ir_attrs *a, int64_t storage_order) {
  const ir_type *xt = &x->ty, *yt = &y->ty;
  int r = xt->rank, ns = r - 2;
  int64_t nx = ir_nelems(xt), ny = ir_nelems(yt), kn = 1;
  if (xt->dtype != IR_DT_F32)
    return fail(m, "output 1 (indices) needs f32 input, not %s", ir_dtypes[xt->dtype].name);
  if (nx > (1 << 24))
    return fail(m, "output 1 (indices): %lld input elements, more than the 2^24 the f32 select keeps exact",
                (long long)nx);
  for (int i = 0; i < ns; i++)
    kn *= a->kernel[i];
  if (kn > 256)
    return fail(m, "output 1 (indices): a window of %lld elements (at most 256 with indices)", (long long)kn);
  // The padding, at the end enough for the last window of ceil_mode.
  ir_attrs pa = {.pad_mode = IR_PAD_CONSTANT, .pad_value = -INFINITY};
  for (int i = 0; i < ns; i++) {
    int64_t reach = (yt->dims[2 + i] - 1) * a->stride[i] + (a->kernel[i] - 1) * a->dilation[i] + 1;
    int64_t end = reach - a->pads[i] - xt->dims[2 + i];
    pa.pads[2 + i] = a->pads[i], pa.pads[r + 2 + i] = end > a->pads[ns + i] ? end : a->pads[ns + i];
  }
  ir_value *xp = emit_tmp(m, IR_OP_PAD, &x, 1, &pa, "indices_padded");
  if (!xp)
    return -1;
  ir_value *idx = NULL;
  ir_type it = ir_type_make(IR_DT_I64, r, yt->dims);
  for (int64_t k = kn - 1; k >= 0; k--) {
    int64_t off[IR_MAX_DIMS], rest = k;
    for (int i = ns - 1; i >= 0; i--)
      off[i] = rest % a->kernel[i], rest /= a->kernel[i];
    ir_attrs sa = {0};
    for (int d = 0; d < r; d++) {
      int64_t s = d < 2 ? 0 : off[d - 2] * a->dilation[d - 2], st = d < 2 ? 1 : a->stride[d - 2];
      sa.start[d] = s, sa.step[d] = st, sa.end[d] = s + (yt->dims[d] - 1) * st + 1;
    }
    int64_t *iv = malloc((size_t)ny * sizeof *iv + 8);
    if (!iv)
      abort();
    for (int64_t o = 0; o < ny; o++) {
      int64_t pos[IR_MAX_DIMS], q = o;
      for (int d = r - 1; d >= 0; d--)
        pos[d] = q % yt->dims[d], q /= yt->dims[d];
      int64_t flat = 0, step = 1; // the spatial part
      for (int j = 0; j < ns; j++) {
        int i = storage_order ? j : ns - 1 - j; // innermost first
        int64_t h = pos[2 + i] * a->stride[i] + off[i] * a->dilation[i] - a->pads[i];
        flat += (h < 0 ? 0 : h >= xt->dims[2 + i] ? xt->dims[2 + i] - 1 : h) * step; // padding: never matched
        step *= xt->dims[2 + i];
      }
      iv[o] = (pos[0] * xt->dims[1] + pos[1]) * step + flat;
    }
    char *nm = gen_name(m, str(m->p->output[1]), "candidates");
    ir_value *cand = ir_add_const(m->g, nm, &it, iv); // takes iv
    free(nm);
    ir_attrs z = {0};
    ir_value *sk = emit_tmp(m, IR_OP_SLICE, &xp, 1, &sa, "indices_window");
    ir_value *eq = sk ? emit_tmp(m, IR_OP_EQUAL, (ir_value *[]){sk, y}, 2, &z, "indices_match") : NULL;
    if (!eq)
      return -1;
    if (!idx) { // the last offset: where nothing earlier matches
      idx = cand;
      continue;
    }
    const char *name = k ? NULL : m->p->output[1];
    if (!(idx = k ? emit_tmp(m, IR_OP_WHERE, (ir_value *[]){eq, cand, idx}, 3, &z, "indices")
                  : emit_named(m, IR_OP_WHERE, (ir_value *[]){eq, cand, idx}, 3, 1, &name, &z)))
      return -1;
  }
  if (kn == 1) { // a 1-element window: the candidates are the indices
    const char *name = m->p->output[1];
    return emit_named(m, IR_OP_IDENTITY, &idx, 1, 1, &name, &(ir_attrs){0}) ? 0 : -1;
  }
  return 0;
}

static int imp_pool(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  int64_t so;
  bool indices = op->op == IR_OP_MAXPOOL && m->p->n_output > 1 && str(m->p->output[1])[0] &&
                 set_has(&m->used, m->p->output[1]);
  if (arity(m, 1, 1, 1, op->op == IR_OP_MAXPOOL ? 2 : 1) || inputs(m, &x, 1) ||
      window_attrs(m, &x->ty, NULL, &a) || get_bool(m, "ceil_mode", &a.ceil_mode) ||
      get_bool(m, "count_include_pad", &a.count_include_pad) || get_int(m, "storage_order", 0, &so))
    return -1;
  if (so != 0 && so != 1)
    return fail(m, "storage_order %lld is not 0 or 1", (long long)so);
  if (!indices)
    return emit(m, op->op, &x, 1, &a);
  const char *yname = m->p->output[0];
  ir_value *y = emit_named(m, op->op, &x, 1, 1, &yname, &a);
  return y ? maxpool_indices(m, x, y, &a, so) : -1;
}

static ir_value *emit_tmp(imp *m, ir_op op, ir_value *const *in, int nin, ir_attrs *a, const char *suffix);
static ir_value *scalar_const(imp *m, ir_dtype dt, double v, const char *suffix);

// BatchNormalization with training_mode=1 (opset 14+), as ONNX defines it:
// the batch's statistics normalise x (the biased variance, over every dim
// but 1), and the running statistics come out as
// mean * momentum + batch_mean * (1 - momentum), likewise for the variance.
static int batchnorm_training(imp *m, ir_value *const *in, float eps, float momentum) {
  ir_value *x = in[0];
  int r = x->ty.rank;
  if (x->ty.dtype != IR_DT_F32 || r < 2)
    return fail(m, "training_mode=1 needs f32 input of rank >= 2");
  if (m->p->n_output > 3 && unused_outputs(m, 3, "saved statistics"))
    return -1;
  int64_t C = x->ty.dims[1], cd[IR_MAX_DIMS];
  ir_attrs red = {.keepdims = true};
  for (int d = 0; d < r; d++) {
    cd[d] = d == 1 ? C : 1;
    if (d != 1)
      red.axes[red.naxes++] = d;
  }
  ir_value *p[4];
  for (int i = 0; i < 4; i++) {
    char *name = gen_name(m, m->p->output[0], "param");
    p[i] = emit_reshape(m, in[i + 1], r, cd, name);
    free(name);
    if (!p[i])
      return -1;
  }
  ir_attrs r2 = red, z = {0};
  ir_value *mean = emit_tmp(m, IR_OP_REDUCE_MEAN, &x, 1, &red, "batch_mean");
  ir_value *d = mean ? emit_tmp(m, IR_OP_SUB, (ir_value *[]){x, mean}, 2, &z, "centred") : NULL;
  ir_value *d2 = d ? emit_tmp(m, IR_OP_MUL, (ir_value *[]){d, d}, 2, &z, "squares") : NULL;
  ir_value *var = d2 ? emit_tmp(m, IR_OP_REDUCE_MEAN, &d2, 1, &r2, "batch_var") : NULL;
  ir_value *e = scalar_const(m, IR_DT_F32, eps, "epsilon");
  ir_value *ve = var ? emit_tmp(m, IR_OP_ADD, (ir_value *[]){var, e}, 2, &z, "var_eps") : NULL;
  ir_value *sd = ve ? emit_tmp(m, IR_OP_SQRT, &ve, 1, &z, "stddev") : NULL;
  ir_value *nx = sd ? emit_tmp(m, IR_OP_DIV, (ir_value *[]){d, sd}, 2, &z, "normalised") : NULL;
  ir_value *sc = nx ? emit_tmp(m, IR_OP_MUL, (ir_value *[]){nx, p[0]}, 2, &z, "scaled") : NULL;
  if (!sc)
    return -1;
  const char *yname = m->p->output[0];
  if (!emit_named(m, IR_OP_ADD, (ir_value *[]){sc, p[1]}, 2, 1, &yname, &z))
    return -1;
  ir_value *mom = scalar_const(m, IR_DT_F32, momentum, "momentum"), *rest = scalar_const(m, IR_DT_F32, 1 - momentum, "one_minus_momentum");
  for (int k = 0; k < 2 && k + 1 < (int)m->p->n_output; k++) {
    const char *out = str(m->p->output[k + 1]);
    if (!out[0])
      continue;
    ir_value *old = emit_tmp(m, IR_OP_MUL, (ir_value *[]){p[2 + k], mom}, 2, &z, "running_old");
    ir_value *now = old ? emit_tmp(m, IR_OP_MUL, (ir_value *[]){k ? var : mean, rest}, 2, &z, "running_new") : NULL;
    ir_value *sum = now ? emit_tmp(m, IR_OP_ADD, (ir_value *[]){old, now}, 2, &z, "running") : NULL;
    if (!sum || !emit_reshape(m, sum, 1, (int64_t[]){C}, out))
      return -1;
  }
  return 0;
}

static int imp_batchnorm(imp *m, const onnx_op *op) {
  ir_value *in[5];
  ir_attrs a = {0};
  int64_t spatial, training;
  float momentum;
  if (arity(m, 5, 5, 1, 5) || inputs(m, in, 5) || get_float(m, "epsilon", 1e-5f, &a.epsilon) ||
      get_float(m, "momentum", 0.9f, &momentum) || get_int(m, "spatial", 1, &spatial) ||
      get_int(m, "training_mode", 0, &training))
    return -1;
  if (spatial != 1)
    return fail(m, "spatial=%lld (statistics per activation) is not supported", (long long)spatial);
  if (training)
    return batchnorm_training(m, in, a.epsilon, momentum);
  if (unused_outputs(m, 1, "training statistics"))
    return -1;
  return emit(m, op->op, in, 5, &a);
}

static int imp_softmax(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  int64_t axis;
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_int(m, "axis", m->opset < 13 ? 1 : -1, &axis))
    return -1;
  int r = x->ty.rank;
  if (r < 1)
    return fail(m, "input must have rank >= 1");
  if (norm_axis(m, axis, r, false, "axis", &a.axis))
    return -1;
  if (m->opset >= 13 || a.axis == r - 1)
    return emit(m, op->op, &x, 1, &a);
  // Before opset 13 the input is viewed as 2-D [outer, inner] split at axis
  // and softmax runs over inner: reshape, softmax, reshape back.
  int64_t d2[2] = {1, 1};
  for (int i = 0; i < r; i++)
    d2[i >= a.axis] *= x->ty.dims[i];
  char *n1 = gen_name(m, m->p->output[0], "2d"), *n2 = gen_name(m, m->p->output[0], "softmax2d");
  ir_value *flat = emit_reshape(m, x, 2, d2, n1), *y = NULL;
  a.axis = 1;
  if (flat)
    y = emit_named(m, op->op, &flat, 1, 1, (const char *const *)&n2, &a);
  free(n1);
  free(n2);
  if (!y || !emit_reshape(m, y, r, x->ty.dims, m->p->output[0]))
    return -1;
  return 0;
}

// ---------------------------------------------------------------- ops: shapes

static int imp_flatten(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t axis;
  ir_attrs a = {.ndims = 2, .dims = {1, 1}};
  int ax = 0;
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_int(m, "axis", 1, &axis) ||
      norm_axis(m, axis, x->ty.rank, true, "axis", &ax))
    return -1;
  for (int i = 0; i < x->ty.rank; i++)
    a.dims[i >= ax] *= x->ty.dims[i];
  return emit(m, op->op, &x, 1, &a);
}

static int imp_reshape(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t shape[IR_MAX_DIMS], allowzero;
  int n;
  if (arity(m, 1, 2, 1, 1) || inputs(m, &x, 1) || get_int(m, "allowzero", 0, &allowzero))
    return -1;
  if (has_in(m, 1)) {
    if (const_ints(m, 1, "shape", shape, IR_MAX_DIMS, &n))
      return -1;
  } else if (get_ints(m, "shape", shape, IR_MAX_DIMS, &n))
    return -1;
  if (n < 0)
    return fail(m, "no target shape (input 1)");
  // 0 copies the input's dim (unless allowzero), one -1 takes what is left.
  ir_attrs a = {.ndims = n};
  int minus = -1;
  int64_t known = 1, total = ir_nelems(&x->ty);
  for (int i = 0; i < n; i++) {
    int64_t d = shape[i];
    if (d == 0 && !allowzero) {
      if (i >= x->ty.rank)
        return fail(m, "shape[%d] is 0 (keep the input's dim) but the input %s has only %d dims", i, x->name,
                    x->ty.rank);
      d = x->ty.dims[i];
    } else if (d == -1) {
      if (minus >= 0)
        return fail(m, "shape has more than one -1");
      minus = i;
      continue;
    } else if (d < 0 || d > IR_MAX_ELEMS) {
      return fail(m, "shape[%d] = %lld is invalid", i, (long long)d);
    }
    a.dims[i] = d;
    if (d && known > IR_MAX_ELEMS / d)
      return fail(m, "target shape too large");
    known *= d;
  }
  if (minus >= 0) {
    if (known == 0 || total % known)
      return fail(m, "cannot infer the -1 in the shape: %lld elements do not divide by %lld", (long long)total,
                  (long long)known);
    a.dims[minus] = total / known;
  }
  return emit(m, op->op, &x, 1, &a);
}

static int imp_transpose(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t perm[IR_MAX_DIMS];
  int n;
  ir_attrs a = {0};
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_ints(m, "perm", perm, IR_MAX_DIMS, &n))
    return -1;
  int r = x->ty.rank;
  if (n >= 0 && n != r)
    return fail(m, "perm has %d values for rank %d", n, r);
  for (int i = 0; i < r; i++) {
    int64_t p = n < 0 ? r - 1 - i : perm[i];
    a.perm[i] = p >= 0 && p < r ? (int)p : -1; // inference rejects -1
  }
  return emit(m, op->op, &x, 1, &a);
}

static int imp_concat(imp *m, const onnx_op *op) {
  int ni = n_in(m);
  int64_t axis;
  ir_attrs a = {0};
  if (arity(m, 1, 1 << 20, 1, 1))
    return -1;
  if (!attr(m, "axis"))
    return fail(m, "attribute 'axis' is required");
  ir_value **in = calloc((size_t)ni, sizeof *in);
  if (!in)
    abort();
  int rc = inputs(m, in, ni) || get_int(m, "axis", 0, &axis) || norm_axis(m, axis, in[0]->ty.rank, false, "axis", &a.axis)
               ? -1
               : emit(m, op->op, in, ni, &a);
  free(in);
  return rc;
}

static int imp_split(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t axis, num;
  int nout = (int)m->p->n_output, n = -1;
  ir_attrs a = {0};
  if (arity(m, 1, 2, 1, 1 << 16) || inputs(m, &x, 1) || get_int(m, "axis", 0, &axis) ||
      norm_axis(m, axis, x->ty.rank, false, "axis", &a.axis) || get_int(m, "num_outputs", nout, &num))
    return -1;
  if (num != nout)
    return fail(m, "num_outputs is %lld but the node has %d outputs", (long long)num, nout);
  a.sizes = calloc((size_t)nout, sizeof *a.sizes);
  if (!a.sizes)
    abort();
  a.nsizes = nout;
  int rc = 0;
  if (has_in(m, 1))
    rc = const_ints(m, 1, "split", a.sizes, nout, &n);
  else
    rc = get_ints(m, "split", a.sizes, nout, &n);
  int64_t dim = x->ty.dims[a.axis];
  if (!rc && n >= 0 && n != nout)
    rc = fail(m, "split has %d sizes for %d outputs", n, nout);
  if (!rc && n < 0) {
    // Equal parts; from opset 18 the last one may be smaller.
    int64_t chunk = dim % nout == 0 ? dim / nout : m->opset >= 18 ? (dim + nout - 1) / nout : -1;
    if (chunk < 0 || dim - chunk * (nout - 1) < 0)
      rc = fail(m, "cannot split dim %d of size %lld into %d equal parts", a.axis, (long long)dim, nout);
    for (int i = 0; !rc && i < nout; i++)
      a.sizes[i] = i < nout - 1 ? chunk : dim - chunk * (nout - 1);
  }
  if (!rc && !emit_named(m, op->op, &x, 1, nout, NULL, &a))
    rc = -1;
  free(a.sizes);
  return rc;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// Slice: starts/ends/axes are attributes before opset 10, inputs (with
// steps) from 10. Indices are normalised as ONNX says: negative ones count
// from the end, then they are clamped to the dim.
static int imp_slice(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t starts[IR_MAX_DIMS], ends[IR_MAX_DIMS], axes[IR_MAX_DIMS], steps[IR_MAX_DIMS];
  int ns = -1, ne = -1, na = -1, nst = -1;
  if (arity(m, 1, 5, 1, 1) || inputs(m, &x, 1))
    return -1;
  if (n_in(m) > 1) {
    if (const_ints(m, 1, "starts", starts, IR_MAX_DIMS, &ns) || const_ints(m, 2, "ends", ends, IR_MAX_DIMS, &ne) ||
        (has_in(m, 3) && const_ints(m, 3, "axes", axes, IR_MAX_DIMS, &na)) ||
        (has_in(m, 4) && const_ints(m, 4, "steps", steps, IR_MAX_DIMS, &nst)))
      return -1;
  } else if (get_ints(m, "starts", starts, IR_MAX_DIMS, &ns) || get_ints(m, "ends", ends, IR_MAX_DIMS, &ne) ||
             get_ints(m, "axes", axes, IR_MAX_DIMS, &na)) {
    return -1;
  }
  if (ns < 0 || ne != ns)
    return fail(m, "starts and ends must be given, with the same length");
  if ((na >= 0 && na != ns) || (nst >= 0 && nst != ns))
    return fail(m, "axes and steps must have the length of starts (%d)", ns);
  const ir_type *t = &x->ty;
  ir_attrs a = {0};
  for (int d = 0; d < t->rank; d++)
    a.start[d] = 0, a.end[d] = t->dims[d], a.step[d] = 1;
  bool seen[IR_MAX_DIMS] = {0};
  for (int k = 0; k < ns; k++) {
    int ax = 0;
    if (norm_axis(m, na >= 0 ? axes[k] : k, t->rank, false, "axis", &ax))
      return -1;
    if (seen[ax])
      return fail(m, "axis %d is sliced twice", ax);
    seen[ax] = true;
    int64_t dim = t->dims[ax], st = nst >= 0 ? steps[k] : 1, s = starts[k], e = ends[k];
    if (st == 0)
      return fail(m, "step of axis %d is 0", ax);
    if (s < 0)
      s += dim;
    if (e < 0)
      e += dim;
    int64_t big = dim > 1 ? dim : 1; // larger steps take one element either way
    if (st > 0) {
      a.start[ax] = clamp64(s, 0, dim), a.end[ax] = clamp64(e, 0, dim), a.step[ax] = st > big ? big : st;
    } else {
      a.start[ax] = clamp64(s, -1, dim - 1), a.end[ax] = clamp64(e, -1, dim - 1), a.step[ax] = st < -big ? -big : st;
    }
  }
  return emit(m, op->op, &x, 1, &a);
}

// Pad: pads (and the value) are attributes before opset 11, inputs from 11;
// axes (opset 18) says which dims the pads are for.
static int imp_pad(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t pads[2 * IR_MAX_DIMS], axes[IR_MAX_DIMS];
  int np = -1, na = -1, mode;
  static const char *const modes[] = {"constant", "reflect", "edge", "wrap", NULL};
  if (arity(m, 1, 4, 1, 1) || inputs(m, &x, 1) || get_choice(m, "mode", "constant", modes, &mode))
    return -1;
  ir_attrs a = {.pad_mode = (ir_pad_mode)mode};
  int r = x->ty.rank;
  if (has_in(m, 1)) {
    if (const_ints(m, 1, "pads", pads, 2 * IR_MAX_DIMS, &np) ||
        (has_in(m, 2) && const_scalar(m, 2, "constant_value", &a.pad_value)) ||
        (has_in(m, 3) && const_ints(m, 3, "axes", axes, IR_MAX_DIMS, &na)))
      return -1;
  } else {
    float v;
    if (get_ints(m, "pads", pads, 2 * IR_MAX_DIMS, &np) || get_float(m, "value", 0, &v))
      return -1;
    a.pad_value = v;
  }
  if (np < 0)
    return fail(m, "no pads given");
  if (na < 0) {
    na = r;
    for (int i = 0; i < r; i++)
      axes[i] = i;
  }
  if (np != 2 * na)
    return fail(m, "pads has %d values for %d axes", np, na);
  for (int k = 0; k < na; k++) {
    int ax = 0;
    if (norm_axis(m, axes[k], r, false, "axis", &ax))
      return -1;
    a.pads[ax] = pads[k], a.pads[r + ax] = pads[na + k];
  }
  return emit(m, op->op, &x, 1, &a);
}

static int import_node(imp *m);

// If with a condition known at compile time: the taken branch's nodes are
// imported in place (they may read the outer graph's values), and each of
// its outputs becomes the If's output through an identity.
static int imp_if(imp *m, const onnx_op *op) {
  (void)op;
  ir_value *c;
  if (arity(m, 1, 1, 1, 64) || inputs(m, &c, 1))
    return -1;
  if (!c->data)
    return not_constant(m, 0, "cond", c);
  if (ir_nelems(&c->ty) != 1)
    return fail(m, "cond has %lld elements; one expected", (long long)ir_nelems(&c->ty));
  bool take = ir_get_float(c->data, c->ty.dtype, 0) != 0;
  const char *which = take ? "then_branch" : "else_branch";
  const attr_proto *br = attr(m, which);
  if (!br)
    return fail(m, "no %s", which);
  if (attr_is(m, br, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH, "a graph") || !br->g)
    return br->g ? -1 : fail(m, "%s has no graph", which);
  const Onnx__GraphProto *sg = br->g;
  if (sg->n_output != m->p->n_output)
    return fail(m, "%s has %zu outputs, the If %zu", which, sg->n_output, m->p->n_output);
  for (size_t i = 0; i < sg->n_initializer; i++) {
    tensor_proto *t = sg->initializer[i];
    if (!t || !t->name || !t->name[0])
      return fail(m, "%s: initializer %zu has no name", which, i);
    if (!tensor_const(m, t, t->name, "a branch initializer"))
      return -1;
  }
  const node_proto *outer = m->p;
  for (size_t i = 0; i < sg->n_node; i++) {
    if (!sg->node[i])
      return fail(m, "%s: node %zu is empty", which, i);
    m->p = sg->node[i];
    int rc = import_node(m);
    m->p = outer;
    if (rc)
      return -1;
  }
  for (size_t k = 0; k < sg->n_output; k++) {
    const char *name = sg->output[k] ? str(sg->output[k]->name) : "";
    ir_value *v = name[0] ? ir_find(m->g, name) : NULL;
    if (!v)
      return fail(m, "%s: output %zu '%.200s' is not defined", which, k, name);
    const char *out = str(m->p->output[k]);
    if (!out[0])
      continue;
    ir_attrs a = {0};
    if (!emit_named(m, IR_OP_IDENTITY, &v, 1, 1, &out, &a))
      return -1;
  }
  return 0;
}

static int imp_identity(imp *m, const onnx_op *op) {
  (void)op;
  ir_value *x;
  ir_attrs a = {0};
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1))
    return -1;
  return emit(m, IR_OP_IDENTITY, &x, 1, &a);
}

// Dropout is the identity at inference; its mask, if read, is all true.
static int imp_dropout(imp *m, const onnx_op *op) {
  (void)op;
  ir_value *x;
  ir_attrs a = {0};
  if (arity(m, 1, 3, 1, 2) || inputs(m, &x, 1))
    return -1;
  if (has_in(m, 2)) {
    double training;
    if (const_scalar(m, 2, "training_mode", &training))
      return -1;
    // Training with ratio 0 drops nothing: the identity, as in inference.
    double ratio = 0.5;
    if (training != 0 && has_in(m, 1) && const_scalar(m, 1, "ratio", &ratio))
      return -1;
    if (training != 0 && ratio != 0)
      return fail(m, "training_mode is true with a ratio of %g: only inference (or ratio 0) is supported", ratio);
  }
  if (emit(m, IR_OP_IDENTITY, &x, 1, &a))
    return -1;
  if (m->p->n_output > 1 && str(m->p->output[1])[0]) {
    // The mask: constant_of_shape, which the evaluator turns into data
    // unless it is too large to hold.
    ir_attrs f = {.ndims = x->ty.rank, .value_dtype = IR_DT_BOOL, .value = {1}};
    memcpy(f.dims, x->ty.dims, sizeof f.dims);
    const char *name = m->p->output[1];
    if (!emit_named(m, IR_OP_CONSTANT_OF_SHAPE, NULL, 0, 1, &name, &f))
      return -1;
  }
  return 0;
}

static int imp_constant(imp *m, const onnx_op *op) {
  (void)op;
  if (arity(m, 0, 0, 1, 1))
    return -1;
  if (m->p->n_attribute != 1)
    return fail(m, "must have exactly one value attribute, has %zu attributes", m->p->n_attribute);
  attr_proto *at = m->p->attribute[0];
  const char *name = str(at->name), *out = m->p->output[0];
  char what[300];
  snprintf(what, sizeof what, "attribute '%s'", name);
  if (!strcmp(name, "value")) {
    if (attr_is(m, at, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, "a tensor"))
      return -1;
    return tensor_const(m, at->t, out, what) ? 0 : -1;
  }
  ir_type t = {0};
  void *d;
  if (!strcmp(name, "value_float") || !strcmp(name, "value_int")) {
    bool isf = name[6] == 'f';
    if (attr_is(m, at, isf ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT,
                isf ? "a float" : "an int"))
      return -1;
    t.dtype = isf ? IR_DT_F32 : IR_DT_I64;
    if (!(d = calloc(8, 1)))
      abort();
    if (isf)
      memcpy(d, &at->f, 4);
    else
      memcpy(d, &at->i, 8);
  } else if (!strcmp(name, "value_floats") || !strcmp(name, "value_ints")) {
    bool isf = name[6] == 'f';
    if (attr_is(m, at, isf ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
                isf ? "a list of floats" : "a list of ints"))
      return -1;
    size_t n = isf ? at->n_floats : at->n_ints;
    t = (ir_type){isf ? IR_DT_F32 : IR_DT_I64, 1, {(int64_t)n}};
    if (!(d = calloc(ir_nbytes(&t) + 1, 1)))
      abort();
    if (n)
      memcpy(d, isf ? (void *)at->floats : (void *)at->ints, ir_nbytes(&t));
  } else {
    return fail(m, "a constant given by attribute '%s' is not supported", name);
  }
  ir_add_const(m->g, out, &t, d);
  return 0;
}

static int imp_shape(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t s, e;
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_int(m, "start", 0, &s) ||
      get_int(m, "end", x->ty.rank, &e))
    return -1;
  int r = x->ty.rank;
  s = clamp64(s < 0 ? s + r : s, 0, r);
  e = clamp64(e < 0 ? e + r : e, 0, r);
  ir_attrs a = {.start = {s}, .end = {e > s ? e : s}};
  return emit(m, op->op, &x, 1, &a);
}

static int imp_gather(imp *m, const onnx_op *op) {
  ir_value *in[2];
  int64_t axis;
  ir_attrs a = {0};
  if (arity(m, 2, 2, 1, 1) || inputs(m, in, 2) || get_int(m, "axis", 0, &axis) ||
      norm_axis(m, axis, in[0]->ty.rank, false, "axis", &a.axis))
    return -1;
  return emit(m, op->op, in, 2, &a);
}

// Axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13.
static int squeeze_axes(imp *m, int64_t *axes, int *n) {
  if (has_in(m, 1))
    return const_ints(m, 1, "axes", axes, IR_MAX_DIMS, n);
  return get_ints(m, "axes", axes, IR_MAX_DIMS, n);
}

static int imp_squeeze(imp *m, const onnx_op *op) {
  (void)op;
  ir_value *x;
  int64_t axes[IR_MAX_DIMS];
  int n;
  if (arity(m, 1, 2, 1, 1) || inputs(m, &x, 1) || squeeze_axes(m, axes, &n))
    return -1;
  const ir_type *t = &x->ty;
  bool drop[IR_MAX_DIMS] = {0};
  for (int k = 0; k < n; k++) {
    int ax = 0;
    if (norm_axis(m, axes[k], t->rank, false, "axis", &ax))
      return -1;
    if (t->dims[ax] != 1)
      return fail(m, "cannot squeeze dim %d of size %lld", ax, (long long)t->dims[ax]);
    drop[ax] = true;
  }
  ir_attrs a = {0};
  for (int d = 0; d < t->rank; d++)
    if (!(n < 0 ? t->dims[d] == 1 : drop[d]))
      a.dims[a.ndims++] = t->dims[d];
  return emit(m, IR_OP_RESHAPE, &x, 1, &a);
}

static int imp_unsqueeze(imp *m, const onnx_op *op) {
  (void)op;
  ir_value *x;
  int64_t axes[IR_MAX_DIMS];
  int n;
  if (arity(m, 1, 2, 1, 1) || inputs(m, &x, 1) || squeeze_axes(m, axes, &n))
    return -1;
  const ir_type *t = &x->ty;
  if (n < 0)
    return fail(m, "no axes given");
  int r = t->rank + n;
  if (r > IR_MAX_DIMS)
    return fail(m, "result would have %d dims; at most %d are supported", r, IR_MAX_DIMS);
  bool ins[IR_MAX_DIMS] = {0};
  for (int k = 0; k < n; k++) {
    int ax = 0;
    if (norm_axis(m, axes[k], r, false, "axis", &ax))
      return -1;
    if (ins[ax])
      return fail(m, "axis %d given twice", ax);
    ins[ax] = true;
  }
  ir_attrs a = {.ndims = r};
  for (int d = 0, j = 0; d < r; d++)
    a.dims[d] = ins[d] ? 1 : t->dims[j++];
  return emit(m, IR_OP_RESHAPE, &x, 1, &a);
}

static int imp_cast(imp *m, const onnx_op *op) {
  ir_value *x;
  int64_t to, sat;
  ir_attrs a = {0};
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_int(m, "to", 0, &to) || get_int(m, "saturate", 1, &sat))
    return -1;
  if (!attr(m, "to"))
    return fail(m, "attribute 'to' is required");
  if (to < INT32_MIN || to > INT32_MAX || dtype_of(m, (int)to, "the target type", &a.to))
    return -1;
  return emit(m, op->op, &x, 1, &a);
}

static int imp_constant_of_shape(imp *m, const onnx_op *op) {
  int64_t dims[IR_MAX_DIMS];
  int n;
  ir_attrs a = {.value_dtype = IR_DT_F32}; // default: f32 zero
  if (arity(m, 1, 1, 1, 1) || const_ints(m, 0, "shape", dims, IR_MAX_DIMS, &n))
    return -1;
  a.ndims = n;
  memcpy(a.dims, dims, (size_t)n * sizeof *dims);
  for (int i = 0; i < n; i++)
    if (dims[i] < 0)
      return fail(m, "shape[%d] = %lld is negative", i, (long long)dims[i]);
  attr_proto *v = (attr_proto *)attr(m, "value");
  if (v) {
    ir_type t;
    void *d;
    if (attr_is(m, v, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, "a tensor") ||
        tensor_type(m, v->t, "attribute 'value'", &t) || tensor_data(m, v->t, "attribute 'value'", &t, &d))
      return -1;
    if (ir_nelems(&t) != 1) {
      free(d);
      return fail(m, "attribute 'value' must hold one element");
    }
    a.value_dtype = t.dtype;
    memcpy(a.value, d, (size_t)ir_dtypes[t.dtype].bytes);
    free(d);
  }
  return emit(m, op->op, NULL, 0, &a);
}

// Resize output dims from scales (floor(in * scale)) or sizes, over axes.
static int resize_dims(imp *m, const ir_type *t, const double *scales, int nsc, const int64_t *sizes, int nsz,
                       const int64_t *axes, int na, int policy, ir_attrs *a) {
  int r = t->rank, nax = na >= 0 ? na : r;
  int ax[IR_MAX_DIMS];
  for (int k = 0; k < nax; k++)
    if (norm_axis(m, na >= 0 ? axes[k] : k, r, false, "axis", &ax[k]))
      return -1;
  a->ndims = r;
  for (int d = 0; d < r; d++)
    a->dims[d] = t->dims[d], a->scales[d] = 1;
  if (nsc > 0 && nsz > 0)
    return fail(m, "both scales and sizes are given");
  if (nsc <= 0 && nsz <= 0)
    return fail(m, "neither scales nor sizes is given");
  if ((nsc > 0 ? nsc : nsz) != nax)
    return fail(m, "%s has %d values for %d axes", nsc > 0 ? "scales" : "sizes", nsc > 0 ? nsc : nsz, nax);
  if (nsz > 0 && policy) {
    // keep_aspect_ratio_policy: one scale for all axes, the smallest
    // (not_larger) or largest (not_smaller) of sizes / in.
    double s = policy == 1 ? INFINITY : 0;
    for (int k = 0; k < nax; k++) {
      if (sizes[k] < 0 || sizes[k] > IR_MAX_ELEMS)
        return fail(m, "size %lld of axis %d is invalid", (long long)sizes[k], ax[k]);
      double q = t->dims[ax[k]] ? (double)sizes[k] / (double)t->dims[ax[k]] : 1;
      s = policy == 1 ? fmin(s, q) : fmax(s, q);
    }
    for (int k = 0; k < nax; k++) {
      double d = nearbyint(s * (double)t->dims[ax[k]]);
      if (!(s > 0) || d > (double)IR_MAX_ELEMS)
        return fail(m, "sizes give an invalid scale %g", s);
      a->dims[ax[k]] = (int64_t)d, a->scales[ax[k]] = s;
    }
    return 0;
  }
  for (int k = 0; k < nax; k++) {
    int64_t in = t->dims[ax[k]];
    if (nsc > 0) {
      if (!(scales[k] > 0) || scales[k] * (double)(in ? in : 1) > (double)IR_MAX_ELEMS)
        return fail(m, "scale %g of axis %d is invalid", scales[k], ax[k]);
      a->dims[ax[k]] = (int64_t)floor((double)in * scales[k]);
      a->scales[ax[k]] = scales[k];
    } else {
      if (sizes[k] < 0 || sizes[k] > IR_MAX_ELEMS)
        return fail(m, "size %lld of axis %d is invalid", (long long)sizes[k], ax[k]);
      a->dims[ax[k]] = sizes[k];
      a->scales[ax[k]] = in ? (double)sizes[k] / (double)in : 1;
    }
    if (a->dims[ax[k]] == 0 && in)
      a->scales[ax[k]] = 1; // an empty result: no coordinates to transform
  }
  return 0;
}

// tf_crop_and_resize's roi (input 1, constant): the starts, then the ends, of
// the resized axes, normalised. With scales the output spans the crop:
// floor(in * (end - start) * scale).
static int crop_roi(imp *m, const ir_type *t, const int64_t *axes, int na, bool by_scales, ir_attrs *a) {
  int r = t->rank, nax = na >= 0 ? na : r, n = -1;
  double roi[2 * IR_MAX_DIMS];
  for (int d = 0; d < r; d++)
    a->roi_start[d] = 0, a->roi_end[d] = 1;
  if (!has_in(m, 1))
    return fail(m, "coordinate_transformation_mode 'tf_crop_and_resize' needs roi (input 1)");
  if (const_floats(m, 1, "roi", roi, 2 * IR_MAX_DIMS, &n))
    return -1;
  if (n != 2 * nax)
    return fail(m, "roi has %d values; %d axes need %d (starts, then ends)", n, nax, 2 * nax);
  for (int k = 0; k < nax; k++) {
    int d = na >= 0 ? (int)(axes[k] < 0 ? axes[k] + r : axes[k]) : k; // checked by resize_dims
    if (!isfinite(roi[k]) || !isfinite(roi[nax + k]))
      return fail(m, "roi of axis %d is not finite", d);
    a->roi_start[d] = (float)roi[k], a->roi_end[d] = (float)roi[nax + k];
    if (by_scales) {
      double o = floor((double)t->dims[d] * (roi[nax + k] - roi[k]) * a->scales[d]);
      if (!(o >= 0) || o > (double)IR_MAX_ELEMS)
        return fail(m, "roi and scale give axis %d an invalid size %g", d, o);
      a->dims[d] = (int64_t)o;
    }
  }
  return 0;
}

static int imp_resize(imp *m, const onnx_op *op) {
  ir_value *x;
  static const char *const modes[] = {"nearest", "linear", "cubic", NULL};
  static const char *const coords[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", NULL};
  static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", NULL};
  static const char *const policies[] = {"stretch", "not_larger", "not_smaller", NULL};
  int mode, coord, near, policy;
  int64_t antialias, excl, axes[IR_MAX_DIMS], sizes[IR_MAX_DIMS];
  double scales[IR_MAX_DIMS];
  int na, nsc = -1, nsz = -1;
  float cubic_a, extrap;
  bool v10 = m->opset < 11; // Resize-10: (X, scales), the Upsample semantics
  if (arity(m, v10 ? 2 : 1, 4, 1, 1) || inputs(m, &x, 1) || get_choice(m, "mode", "nearest", modes, &mode) ||
      get_choice(m, "coordinate_transformation_mode", v10 ? "asymmetric" : "half_pixel", coords, &coord) ||
      get_choice(m, "nearest_mode", v10 ? "floor" : "round_prefer_floor", nearest, &near) ||
      get_choice(m, "keep_aspect_ratio_policy", "stretch", policies, &policy) ||
      get_float(m, "cubic_coeff_a", -0.75f, &cubic_a) || get_int(m, "exclude_outside", 0, &excl) ||
      get_float(m, "extrapolation_value", 0, &extrap) || get_int(m, "antialias", 0, &antialias) ||
      get_ints(m, "axes", axes, IR_MAX_DIMS, &na))
    return -1;
  if (antialias)
    return fail(m, "antialias=1 is not supported");
  int sc_slot = v10 ? 1 : 2;
  if (has_in(m, sc_slot) && const_floats(m, sc_slot, "scales", scales, IR_MAX_DIMS, &nsc))
    return -1;
  if (!v10 && has_in(m, 3) && const_ints(m, 3, "sizes", sizes, IR_MAX_DIMS, &nsz))
    return -1;
  ir_attrs a = {.resize_mode = (ir_resize_mode)mode, .coord_mode = (ir_coord_mode)coord,
                .nearest_mode = (ir_nearest_mode)near, .cubic_a = cubic_a, .exclude_outside = excl != 0};
  if (resize_dims(m, &x->ty, scales, nsc, sizes, nsz, axes, na, policy, &a))
    return -1;
  if (a.coord_mode == IR_COORD_TF_CROP_AND_RESIZE && crop_roi(m, &x->ty, axes, na, nsc > 0, &a))
    return -1;
  a.extrapolation = extrap;
  return emit(m, op->op, &x, 1, &a);
}

// Upsample (opsets 7-9, then replaced by Resize): scales as an attribute
// (7, 8) or an input (9); asymmetric coordinates, nearest rounds down.
static int imp_upsample(imp *m, const onnx_op *op) {
  ir_value *x;
  static const char *const modes[] = {"nearest", "linear", "bilinear", NULL};
  int mode, nsc = -1;
  double scales[IR_MAX_DIMS];
  if (arity(m, 1, 2, 1, 1) || inputs(m, &x, 1) || get_choice(m, "mode", "nearest", modes, &mode))
    return -1;
  if (has_in(m, 1)) {
    if (const_floats(m, 1, "scales", scales, IR_MAX_DIMS, &nsc))
      return -1;
  } else {
    const attr_proto *s = attr(m, "scales");
    if (!s || attr_is(m, s, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, "a list of floats"))
      return s ? -1 : fail(m, "no scales given");
    if (s->n_floats > IR_MAX_DIMS)
      return fail(m, "too many scales");
    nsc = (int)s->n_floats;
    for (int i = 0; i < nsc; i++)
      scales[i] = s->floats[i];
  }
  ir_attrs a = {.resize_mode = mode ? IR_RESIZE_LINEAR : IR_RESIZE_NEAREST, .coord_mode = IR_COORD_ASYMMETRIC,
                .nearest_mode = IR_NEAREST_FLOOR, .cubic_a = -0.75f};
  if (resize_dims(m, &x->ty, scales, nsc, NULL, -1, NULL, -1, 0, &a))
    return -1;
  return emit(m, op->op, &x, 1, &a);
}

// ---------------------------------------------------------------- the op table

#define WINDOW "auto_pad dilations kernel_shape pads strides"

// ---------------------------------------------------------------- ops: operator coverage (issue 4)

// An intermediate node the importer makes: output named after the ONNX
// node's first output with suffix; name NULL gives the node's own output.
static ir_value *emit_tmp(imp *m, ir_op op, ir_value *const *in, int nin, ir_attrs *a, const char *suffix) {
  if (!suffix)
    return emit_named(m, op, in, nin, 1, NULL, a);
  char *nm = gen_name(m, str(m->p->output[0])[0] ? m->p->output[0] : "out", suffix);
  ir_value *v = emit_named(m, op, in, nin, 1, (const char *const *)&nm, a);
  free(nm);
  return v;
}

// A scalar constant of dtype dt.
static ir_value *scalar_const(imp *m, ir_dtype dt, double v, const char *suffix) {
  ir_type t = {dt, 0, {0}};
  void *d = calloc(1, 8);
  if (!d)
    abort();
  if (ir_dtype_is_float(dt))
    ir_set_float(d, dt, 0, v);
  else
    ir_set_int(d, dt, 0, (int64_t)v);
  char *nm = gen_name(m, str(m->p->output[0])[0] ? m->p->output[0] : "out", suffix);
  ir_value *c = ir_add_const(m->g, nm, &t, d);
  free(nm);
  return c;
}

static int imp_leaky_relu(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_float(m, "alpha", 0.01f, &a.alpha))
    return -1;
  return emit(m, op->op, &x, 1, &a);
}

static int imp_gelu(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  static const char *const modes[] = {"none", "tanh", NULL};
  int mode;
  if (arity(m, 1, 1, 1, 1) || inputs(m, &x, 1) || get_choice(m, "approximate", "none", modes, &mode))
    return -1;
  a.approx_tanh = mode == 1;
  return emit(m, op->op, &x, 1, &a);
}

// Max, Min: variadic (one input is a copy), chained pairwise.
static int imp_variadic(imp *m, const onnx_op *op) {
  ir_attrs a = {0};
  int k = n_in(m);
  if (arity(m, 1, 64, 1, 1))
    return -1;
  ir_value *acc = in_val(m, 0);
  if (!acc)
    return -1;
  if (k == 1)
    return emit(m, IR_OP_IDENTITY, &acc, 1, &a);
  for (int i = 1; i < k; i++) {
    ir_value *in[2] = {acc, in_val(m, i)};
    if (!in[1] || !(acc = emit_tmp(m, op->op, in, 2, &a, i == k - 1 ? NULL : "partial")))
      return -1;
  }
  return 0;
}

// Pow: an exponent of another type is cast to the base's (ONNX allows mixed types).
static int imp_pow(imp *m, const onnx_op *op) {
  ir_value *in[2];
  ir_attrs a = {0};
  if (arity(m, 2, 2, 1, 1) || inputs(m, in, 2))
    return -1;
  if (in[1]->ty.dtype != in[0]->ty.dtype) {
    ir_attrs c = {.to = in[0]->ty.dtype};
    if (!(in[1] = emit_tmp(m, IR_OP_CAST, &in[1], 1, &c, "exponent")))
      return -1;
  }
  return emit(m, op->op, in, 2, &a);
}

// PRelu: the slope broadcasts to X. The lowering computes max(x, s*x) for a
// constant slope in [0, 1] (min above 1); any other slope becomes
// relu(x) + s * min(x, 0).
static int imp_prelu(imp *m, const onnx_op *op) {
  ir_value *in[2];
  ir_attrs a = {0};
  if (arity(m, 2, 2, 1, 1) || inputs(m, in, 2))
    return -1;
  bool lo = in[1]->data != NULL, hi = lo;
  for (int64_t i = 0, N = lo ? ir_nelems(&in[1]->ty) : 0; i < N; i++) {
    double s = ir_get_float(in[1]->data, in[1]->ty.dtype, i);
    lo &= s >= 0 && s <= 1, hi &= s >= 1;
  }
  if (lo || hi || !ir_dtype_is_float(in[0]->ty.dtype))
    return emit(m, op->op, in, 2, &a);
  ir_value *zero = scalar_const(m, in[0]->ty.dtype, 0, "zero"), *r, *mn, *p;
  ir_value *mi[2] = {in[0], zero};
  if (!(r = emit_tmp(m, IR_OP_RELU, in, 1, &a, "relu")) || !(mn = emit_tmp(m, IR_OP_MIN, mi, 2, &a, "neg")))
    return -1;
  ir_value *pm[2] = {mn, in[1]};
  if (!(p = emit_tmp(m, IR_OP_MUL, pm, 2, &a, "scaled")))
    return -1;
  ir_value *s[2] = {r, p};
  return emit(m, IR_OP_ADD, s, 2, &a);
}

// Comparisons: LessOrEqual and GreaterOrEqual too.
static int imp_compare(imp *m, const onnx_op *op) { return imp_binary(m, op); }

static int imp_where(imp *m, const onnx_op *op) {
  ir_value *in[3];
  ir_attrs a = {0};
  if (arity(m, 3, 3, 1, 1) || inputs(m, in, 3))
    return -1;
  return emit(m, op->op, in, 3, &a);
}

// ReduceSum/Mean/Max/Min/Prod: axes an attribute (ReduceSum before 13, the
// others before 18) or an input; none means every dim, unless
// noop_with_empty_axes.
static int imp_reduce(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  int64_t keep, noop, axes[IR_MAX_DIMS];
  int n = -1;
  if (arity(m, 1, 2, 1, 1) || inputs(m, &x, 1) || get_int(m, "keepdims", 1, &keep) ||
      get_int(m, "noop_with_empty_axes", 0, &noop) || get_ints(m, "axes", axes, IR_MAX_DIMS, &n))
    return -1;
  if (has_in(m, 1) && const_ints(m, 1, "axes", axes, IR_MAX_DIMS, &n))
    return -1;
  int r = x->ty.rank;
  bool red[IR_MAX_DIMS] = {0};
  if (n <= 0 && !noop)
    for (int d = 0; d < r; d++)
      red[d] = true;
  for (int i = 0; i < n; i++) {
    int ax = 0;
    if (norm_axis(m, axes[i], r, false, "axis", &ax))
      return -1;
    red[ax] = true;
  }
  for (int d = 0; d < r; d++)
    if (red[d])
      a.axes[a.naxes++] = d;
  a.keepdims = keep != 0;
  return emit(m, op->op, &x, 1, &a);
}

static int imp_layernorm(imp *m, const onnx_op *op) {
  ir_value *in[3];
  ir_attrs a = {0};
  int64_t axis, stash;
  if (arity(m, 2, 3, 1, 3) || inputs(m, in, n_in(m)) || get_int(m, "axis", -1, &axis) ||
      get_float(m, "epsilon", 1e-5f, &a.epsilon) || get_int(m, "stash_type", 1, &stash) ||
      norm_axis(m, axis, in[0]->ty.rank, false, "axis", &a.axis))
    return -1;
  int nout = (int)m->p->n_output;
  while (nout > 1 && !str(m->p->output[nout - 1])[0])
    nout--;
  return emit_named(m, op->op, in, n_in(m), nout, NULL, &a) ? 0 : -1;
}

// Expand: the output is X broadcast with the shape input (either may be larger).
static int imp_expand(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  int64_t sh[IR_MAX_DIMS];
  int n;
  if (arity(m, 2, 2, 1, 1) || inputs(m, &x, 1) || const_ints(m, 1, "shape", sh, IR_MAX_DIMS, &n))
    return -1;
  ir_type t = ir_type_make(x->ty.dtype, n, sh), o;
  for (int i = 0; i < n; i++)
    if (sh[i] < 0)
      return fail(m, "shape value %lld is negative", (long long)sh[i]);
  if (ir_broadcast(&x->ty, &t, &o))
    return fail(m, "input does not broadcast with the shape");
  a.ndims = o.rank;
  memcpy(a.dims, o.dims, sizeof a.dims);
  return emit(m, op->op, &x, 1, &a);
}

static int imp_tile(imp *m, const onnx_op *op) {
  ir_value *x;
  ir_attrs a = {0};
  int n;
  if (arity(m, 2, 2, 1, 1) || inputs(m, &x, 1) || const_ints(m, 1, "repeats", a.repeats, IR_MAX_DIMS, &n))
    return -1;
  if (n != x->ty.rank)
    return fail(m, "%d repeats for rank %d", n, x->ty.rank);
  return emit(m, op->op, &x, 1, &a);
}

// Range: start, limit, delta constants; the result is a constant.
static int imp_range(imp *m, const onnx_op *op) {
  (void)op;
  double v[3];
  if (arity(m, 3, 3, 1, 1))
    return -1;
  static const char *const what[] = {"start", "limit", "delta"};
  for (int i = 0; i < 3; i++)
    if (const_scalar(m, i, what[i], &v[i]))
      return -1;
  ir_value *s = in_val(m, 0);
  ir_dtype dt = s->ty.dtype;
  if (v[2] == 0)
    return fail(m, "delta is 0");
  double cnt = ceil((v[1] - v[0]) / v[2]);
  int64_t N = cnt > 0 ? (int64_t)cnt : 0;
  if (N > (1 << 24))
    return fail(m, "%lld elements is more than a constant range may have here", (long long)N);
  ir_type t = {dt, 1, {N}};
  void *d = calloc((size_t)N + 1, 8);
  if (!d)
    abort();
  for (int64_t i = 0; i < N; i++) {
    if (ir_dtype_is_float(dt))
      ir_set_float(d, dt, i, dt == IR_DT_F32 ? (double)((float)v[0] + (float)i * (float)v[2]) : v[0] + (double)i * v[2]);
    else
      ir_set_int(d, dt, i, (int64_t)v[0] + i * (int64_t)v[2]);
  }
  if (!ir_add_const(m->g, m->p->output[0], &t, d))
    return -1;
  return 0;
}

// ---------------------------------------------------------------- ops: recurrences

// ONNX's activation list as ONNX Runtime reads it (names in any case; each
// function takes the next alpha and beta from the lists if it uses them, its
// default when a list has run out).
static const struct {
  bool alpha, beta;
  float da, db;
} rnn_act_args[IR_RNN_ACT_COUNT] = {
    [IR_RNN_AFFINE] = {true, true, 0, 0},          [IR_RNN_LEAKY_RELU] = {true, false, 0.01f, 0},
    [IR_RNN_THRESHOLDED_RELU] = {true, false, 0, 0}, [IR_RNN_SCALED_TANH] = {true, true, 0, 0},
    [IR_RNN_HARD_SIGMOID] = {true, true, 0.2f, 0.5f}, [IR_RNN_ELU] = {true, false, 1.0f, 0},
};

static int rnn_activations(imp *m, ir_op op, int D, ir_attrs *a) {
  int per = ir_rnn_nacts(op);
  for (int i = 0; i < 6; i++)
    a->rnn_act[i] = ir_rnn_default_act(op, i % 3);
  const attr_proto *acts = attr(m, "activations"), *al = attr(m, "activation_alpha"), *be = attr(m, "activation_beta");
  if (!acts)
    return 0; // the defaults take no alpha or beta
  if (attr_is(m, acts, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS, "a list of strings") ||
      (al && attr_is(m, al, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, "a list of floats")) ||
      (be && attr_is(m, be, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, "a list of floats")))
    return -1;
  if (acts->n_strings != (size_t)(per * D))
    return fail(m, "activations: %zu given, %d expected (%d per direction)", acts->n_strings, per * D, per);
  size_t ia = 0, ib = 0;
  for (int j = 0; j < per * D; j++) {
    const ProtobufCBinaryData *sd = &acts->strings[j];
    char name[32];
    size_t len = sd->len < sizeof name - 1 ? sd->len : sizeof name - 1;
    for (size_t k = 0; k < len; k++)
      name[k] = (char)tolower(sd->data[k]);
    name[len] = 0;
    int k = IR_RNN_SIGMOID;
    while (k < IR_RNN_ACT_COUNT && (sd->len != len || strcmp(name, ir_rnn_act_names[k])))
      k++;
    if (k == IR_RNN_ACT_COUNT)
      return fail(m, "activation %d '%.*s' is not one of ONNX's", j, (int)len, (const char *)sd->data);
    int slot = j / per * 3 + j % per;
    a->rnn_act[slot] = (ir_rnn_act)k;
    if (rnn_act_args[k].alpha)
      a->rnn_alpha[slot] = al && ia < al->n_floats ? al->floats[ia++] : rnn_act_args[k].da;
    if (rnn_act_args[k].beta)
      a->rnn_beta[slot] = be && ib < be->n_floats ? be->floats[ib++] : rnn_act_args[k].db;
  }
  return 0;
}

// A layout-1 (batch first) tensor swapped into layout 0, or back: a transpose.
static ir_value *rnn_transpose(imp *m, ir_value *v, const int *perm, const char *name) {
  ir_attrs a = {0};
  for (int i = 0; i < v->ty.rank; i++)
    a.perm[i] = perm[i];
  char *gen = name ? NULL : gen_name(m, v->name, "layout0");
  const char *nm = name ? name : gen;
  ir_value *out = emit_named(m, IR_OP_TRANSPOSE, &v, 1, 1, &nm, &a);
  free(gen);
  return out;
}

// LSTM, GRU and RNN (7 to 21). Every input the IR op has is made present: a
// missing B, initial_h, initial_c or P is a zero constant. sequence_lens must be a
// constant; it is dropped when every length is the full sequence. Layout 1
// (batch first) becomes transposes around the layout-0 op. hidden_size, if
// absent, is R's last dim.
static int imp_rnn(imp *m, const onnx_op *op) {
  bool lstm = op->op == IR_OP_LSTM, gru = op->op == IR_OP_GRU;
  int gates = lstm ? 4 : gru ? 3 : 1, nout = lstm ? 3 : 2;
  if (arity(m, 3, lstm ? 8 : 6, 0, nout))
    return -1;
  ir_value *x = in_val(m, 0), *r = x ? in_val(m, 2) : NULL;
  if (!r || !in_val(m, 1))
    return -1;
  ir_attrs a = {0};
  static const char *const dirs[] = {"forward", "reverse", "bidirectional", NULL};
  int dir;
  int64_t layout, hidden;
  if (get_choice(m, "direction", "forward", dirs, &dir) || get_int(m, "layout", 0, &layout) ||
      get_int(m, "hidden_size", 0, &hidden) || get_float(m, "clip", 0, &a.rnn_clip) ||
      (lstm && get_bool(m, "input_forget", &a.input_forget)) ||
      (gru && get_bool(m, "linear_before_reset", &a.linear_before_reset)))
    return -1;
  a.rnn_dir = (ir_rnn_dir)dir;
  int D = dir == IR_RNN_BIDIRECTIONAL ? 2 : 1;
  if (attr(m, "clip") && !(a.rnn_clip > 0))
    return fail(m, "clip %g must be positive", (double)a.rnn_clip);
  if (attr(m, "layout") && m->opset < 14)
    return fail(m, "attribute 'layout' is new in opset 14");
  if (layout != 0 && layout != 1)
    return fail(m, "layout %lld must be 0 or 1", (long long)layout);
  if (x->ty.rank != 3 || r->ty.rank != 3)
    return fail(m, "X and R must be 3-D, got ranks %d and %d", x->ty.rank, r->ty.rank);
  if (hidden < 0 || (attr(m, "hidden_size") && hidden != r->ty.dims[2]))
    return fail(m, "hidden_size %lld does not match R's last dim %lld", (long long)hidden, (long long)r->ty.dims[2]);
  a.hidden = r->ty.dims[2];
  if (rnn_activations(m, op->op, D, &a))
    return -1;
  int64_t S = x->ty.dims[layout ? 1 : 0], B = x->ty.dims[layout ? 0 : 1], H = a.hidden;
  static const int swap[] = {1, 0, 2}, y_out[] = {2, 0, 1, 3};
  ir_value *in[8] = {x, in_val(m, 1), r};
  if (layout && !(in[0] = rnn_transpose(m, x, swap, NULL)))
    return -1;
  // B, initial_h, initial_c, P: ONNX slots 3, 5, 6, 7; IR slots 3, 4, 5, 6.
  static const int onnx_slot[] = {3, 5, 6, 7};
  static const char *const what[] = {"B", "initial_h", "initial_c", "P"};
  for (int k = 0; k < (lstm ? 4 : 2); k++) {
    int64_t dims[3] = {D, 2 * gates * H};
    int rank = 2;
    if (k == 1 || k == 2)
      rank = 3, dims[0] = D, dims[1] = B, dims[2] = H;
    if (k == 3)
      dims[1] = 3 * H;
    ir_value *v;
    if (has_in(m, onnx_slot[k])) {
      if (!(v = in_val(m, onnx_slot[k])))
        return -1;
      if (layout && rank == 3 && !(v = rnn_transpose(m, v, swap, NULL)))
        return -1;
    } else {
      char *nm = gen_name(m, str(m->p->name)[0] ? m->p->name : ir_ops[op->op].name, what[k]);
      ir_type t = ir_type_make(x->ty.dtype, rank, dims);
      v = ir_add_const(m->g, nm, &t, NULL);
      free(nm);
    }
    in[3 + k] = v;
  }
  int nin = lstm ? 7 : 5;
  if (has_in(m, 4)) {
    ir_value *l = in_val(m, 4);
    if (!l)
      return -1;
    if (!l->data)
      return not_constant(m, 4, "sequence_lens", l);
    if (!ir_dtype_is_int(l->ty.dtype) || l->ty.rank != 1 || l->ty.dims[0] != B)
      return fail(m, "sequence_lens must be an integer tensor of %lld values", (long long)B);
    bool full = true;
    for (int64_t b = 0; b < B; b++) {
      int64_t len = ir_get_int(l->data, l->ty.dtype, b);
      if (len < 0 || len > S)
        return fail(m, "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b, (long long)len, (long long)S);
      full = full && len == S;
    }
    if (!full)
      in[nin++] = l;
  }
  // Output names: the node's own (layout 0), or made up and then transposed.
  static const char *const roles[3] = {"Y", "Y_h", "Y_c"};
  const char *names[3], *node = str(m->p->name)[0] ? m->p->name : ir_ops[op->op].name;
  char *gen[3] = {0};
  for (int i = 0; i < nout; i++) {
    const char *o = i < (int)m->p->n_output ? str(m->p->output[i]) : "";
    names[i] = o[0] && !layout ? o : (gen[i] = o[0] ? gen_name(m, o, "layout0") : gen_name(m, node, roles[i]));
  }
  ir_value *y = emit_named(m, op->op, in, nin, nout, names, &a);
  int rc = y ? 0 : -1;
  for (int i = 0; !rc && layout && i < nout; i++) {
    const char *o = i < (int)m->p->n_output ? str(m->p->output[i]) : "";
    if (o[0] && !rnn_transpose(m, ir_find(m->g, names[i]), i ? swap : y_out, o))
      rc = -1;
  }
  for (int i = 0; i < nout; i++)
    free(gen[i]);
  return rc;
}

// The int8 operators (QuantizeLinear, DequantizeLinear, MatMulInteger,
// ConvInteger, QLinearMatMul, QLinearConv). An absent zero point becomes a
// zero constant of its type: QuantizeLinear's u8 of the scale's shape,
// DequantizeLinear's of X's type and the scale's shape, the others' a scalar
// of the type of the tensor it belongs to.
static int imp_int8(imp *m, const onnx_op *op) {
  int min_in = 2, max_in = 4, w = 1; // w: the weight slot of a convolution
  switch (op->op) {
  case IR_OP_QUANTIZE_LINEAR:
  case IR_OP_DEQUANTIZE_LINEAR: max_in = 3; break;
  case IR_OP_QLINEAR_MATMUL: min_in = max_in = 8; break;
  case IR_OP_QLINEAR_CONV: min_in = 8, max_in = 9, w = 3; break;
  default: break;
  }
  if (arity(m, min_in, max_in, 1, 1))
    return -1;
  int n = n_in(m);
  ir_value *in[9] = {0};
  for (int i = 0; i < n; i++)
    if (has_in(m, i) && !(in[i] = in_val(m, i)))
      return -1;
  for (int i = 0; i < n; i++)
    if (!in[i] && (op->op == IR_OP_QLINEAR_MATMUL || op->op == IR_OP_QLINEAR_CONV || i < 2))
      return fail(m, "input %d is missing", i);
  ir_attrs a = {0};
  int64_t axis = 1, odt = 0;
  if (op->op == IR_OP_QUANTIZE_LINEAR || op->op == IR_OP_DEQUANTIZE_LINEAR) {
    if (get_int(m, "axis", 1, &axis) || get_int(m, "output_dtype", 0, &odt))
      return -1;
    if (odt != 0 && odt != ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 && odt != ONNX__TENSOR_PROTO__DATA_TYPE__INT8)
      return fail(m, "output_dtype %lld is not supported (int8 and uint8 only)", (long long)odt);
    if (in[1]->ty.rank == 1 && in[1]->ty.dims[0] > 1 && norm_axis(m, axis, in[0]->ty.rank, false, "axis", &a.axis))
      return -1;
  } else if (op->op == IR_OP_CONV_INTEGER || op->op == IR_OP_QLINEAR_CONV) {
    const ir_type *wt = &in[w]->ty;
    if (get_int(m, "group", 1, &a.group))
      return -1;
    if (wt->rank != in[0]->ty.rank || wt->rank < 3)
      return fail(m, "W must have the rank of X (%d), got %d", in[0]->ty.rank, wt->rank);
    if (window_attrs(m, &in[0]->ty, wt->dims + 2, &a))
      return -1;
  }
  int nin = op->op == IR_OP_QUANTIZE_LINEAR || op->op == IR_OP_DEQUANTIZE_LINEAR ? 3
            : op->op == IR_OP_QLINEAR_MATMUL || op->op == IR_OP_QLINEAR_CONV ? n : 4;
  for (int i = 2; i < nin; i++) {
    if (in[i])
      continue;
    ir_type t = {.dtype = IR_DT_U8};
    if (op->op == IR_OP_QUANTIZE_LINEAR || op->op == IR_OP_DEQUANTIZE_LINEAR) {
      t = in[1]->ty;
      t.dtype = op->op == IR_OP_QUANTIZE_LINEAR ? (odt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? IR_DT_I8 : IR_DT_U8) : in[0]->ty.dtype;
    } else
      t.dtype = in[i - 2]->ty.dtype; // a_zero_point: A's type, b_zero_point: B's
    char *nm = gen_name(m, m->p->output[0], "zero_point");
    in[i] = ir_add_const(m->g, nm, &t, NULL);
    free(nm);
    if (!in[i])
      return fail(m, "out of memory");
  }
  return emit(m, op->op, in, nin, &a);
}

static const onnx_op onnx_ops[] = {
    {"QuantizeLinear",     10, imp_int8,              IR_OP_QUANTIZE_LINEAR,    "axis saturate output_dtype"},
    {"DequantizeLinear",   10, imp_int8,              IR_OP_DEQUANTIZE_LINEAR,  "axis"},
    {"MatMulInteger",      10, imp_int8,              IR_OP_MATMUL_INTEGER,     ""},
    {"ConvInteger",        10, imp_int8,              IR_OP_CONV_INTEGER,       WINDOW " group"},
    {"QLinearMatMul",      10, imp_int8,              IR_OP_QLINEAR_MATMUL,     ""},
    {"QLinearConv",        10, imp_int8,              IR_OP_QLINEAR_CONV,       WINDOW " group"},
    {"Abs",                 6, imp_unary,             IR_OP_ABS,                ""},
    {"And",                 7, imp_binary,            IR_OP_AND,                ""},
    {"Equal",               7, imp_compare,           IR_OP_EQUAL,              ""},
    {"Erf",                 9, imp_unary,             IR_OP_ERF,                ""},
    {"Exp",                 6, imp_unary,             IR_OP_EXP,                ""},
    {"Expand",              8, imp_expand,            IR_OP_EXPAND,             ""},
    {"Gelu",               20, imp_gelu,              IR_OP_GELU,               "approximate"},
    {"Greater",             7, imp_compare,           IR_OP_GREATER,            ""},
    {"GreaterOrEqual",     12, imp_compare,           IR_OP_GREATER_EQUAL,      ""},
    {"LayerNormalization", 17, imp_layernorm,         IR_OP_LAYERNORM,          "axis epsilon stash_type"},
    {"LeakyRelu",           6, imp_leaky_relu,        IR_OP_LEAKY_RELU,         "alpha"},
    {"Less",                7, imp_compare,           IR_OP_LESS,               ""},
    {"LessOrEqual",        12, imp_compare,           IR_OP_LESS_EQUAL,         ""},
    {"Log",                 6, imp_unary,             IR_OP_LOG,                ""},
    {"LogSoftmax",          1, imp_softmax,           IR_OP_LOG_SOFTMAX,        "axis"},
    {"Max",                 8, imp_variadic,          IR_OP_MAX,                ""},
    {"Min",                 8, imp_variadic,          IR_OP_MIN,                ""},
    {"Neg",                 6, imp_unary,             IR_OP_NEG,                ""},
    {"Not",                 1, imp_unary,             IR_OP_NOT,                ""},
    {"Or",                  7, imp_binary,            IR_OP_OR,                 ""},
    {"Pow",                 7, imp_pow,               IR_OP_POW,                ""},
    {"PRelu",               7, imp_prelu,             IR_OP_PRELU,              ""},
    {"Range",              11, imp_range,             IR_OP_COUNT,              ""},
    {"Reciprocal",          6, imp_unary,             IR_OP_RECIPROCAL,         ""},
    {"ReduceMax",           1, imp_reduce,            IR_OP_REDUCE_MAX,         "axes keepdims noop_with_empty_axes"},
    {"ReduceMean",          1, imp_reduce,            IR_OP_REDUCE_MEAN,        "axes keepdims noop_with_empty_axes"},
    {"ReduceMin",           1, imp_reduce,            IR_OP_REDUCE_MIN,         "axes keepdims noop_with_empty_axes"},
    {"ReduceProd",          1, imp_reduce,            IR_OP_REDUCE_PROD,        "axes keepdims noop_with_empty_axes"},
    {"ReduceSum",           1, imp_reduce,            IR_OP_REDUCE_SUM,         "axes keepdims noop_with_empty_axes"},
    {"Sqrt",                6, imp_unary,             IR_OP_SQRT,               ""},
    {"Tile",                6, imp_tile,              IR_OP_TILE,               ""},
    {"Where",               9, imp_where,             IR_OP_WHERE,              ""},
    {"Xor",                 7, imp_binary,            IR_OP_XOR,                ""},
    // type                since import                 IR op                     attributes
    {"Add",                 7, imp_binary,            IR_OP_ADD,                ""},
    {"AveragePool",         1, imp_pool,              IR_OP_AVGPOOL,            WINDOW " ceil_mode count_include_pad"},
    {"BatchNormalization",  7, imp_batchnorm,         IR_OP_BATCHNORM,          "epsilon momentum spatial training_mode"},
    {"Cast",                6, imp_cast,              IR_OP_CAST,               "to saturate"},
    {"Clip",                6, imp_clip,              IR_OP_CLIP,               "min max"},
    {"Concat",              4, imp_concat,            IR_OP_CONCAT,             "axis"},
    {"Constant",            1, imp_constant,          IR_OP_COUNT,              "value value_float value_floats value_int value_ints "
                                                                                 "value_string value_strings sparse_value"},
    {"ConstantOfShape",     9, imp_constant_of_shape, IR_OP_CONSTANT_OF_SHAPE,  "value"},
    {"Conv",                1, imp_conv,              IR_OP_CONV,               WINDOW " group"},
    {"ConvTranspose",       1, imp_conv_transpose,    IR_OP_CONV_TRANSPOSE,     WINDOW " group output_padding output_shape"},
    {"Div",                 7, imp_binary,            IR_OP_DIV,                ""},
    {"Dropout",             7, imp_dropout,           IR_OP_IDENTITY,           "ratio seed"},
    {"Flatten",             1, imp_flatten,           IR_OP_RESHAPE,            "axis"},
    {"Gather",              1, imp_gather,            IR_OP_GATHER,             "axis"},
    {"Gemm",                7, imp_gemm,              IR_OP_GEMM,               "alpha beta transA transB"},
    {"GlobalAveragePool",   1, imp_unary,             IR_OP_GLOBAL_AVGPOOL,     ""},
    {"HardSigmoid",         6, imp_hardsigmoid,       IR_OP_HARDSIGMOID,        "alpha beta"},
    {"HardSwish",          14, imp_unary,             IR_OP_HARDSWISH,          ""},
    {"Identity",            1, imp_identity,          IR_OP_IDENTITY,           ""},
    {"If",                  1, imp_if,                IR_OP_IDENTITY,           "then_branch else_branch"},
    {"MatMul",              1, imp_binary,            IR_OP_MATMUL,             ""},
    {"MaxPool",             1, imp_pool,              IR_OP_MAXPOOL,            WINDOW " ceil_mode storage_order"},
    {"Mul",                 7, imp_binary,            IR_OP_MUL,                ""},
    {"Pad",                 2, imp_pad,               IR_OP_PAD,                "mode pads value"},
    {"Relu",                6, imp_unary,             IR_OP_RELU,               ""},
    {"Reshape",             5, imp_reshape,           IR_OP_RESHAPE,            "allowzero shape"},
    {"Resize",             10, imp_resize,            IR_OP_RESIZE,             "antialias axes coordinate_transformation_mode "
                                                                                 "cubic_coeff_a exclude_outside extrapolation_value "
                                                                                 "keep_aspect_ratio_policy mode nearest_mode"},
    {"Shape",               1, imp_shape,             IR_OP_SHAPE,              "start end"},
    {"Sigmoid",             6, imp_unary,             IR_OP_SIGMOID,            ""},
    {"Slice",               1, imp_slice,             IR_OP_SLICE,              "starts ends axes"},
    {"Softmax",             1, imp_softmax,           IR_OP_SOFTMAX,            "axis"},
    {"Split",               2, imp_split,             IR_OP_SPLIT,              "axis split num_outputs"},
    {"Squeeze",             1, imp_squeeze,           IR_OP_RESHAPE,            "axes"},
    {"Sub",                 7, imp_binary,            IR_OP_SUB,                ""},
    {"Tanh",                6, imp_unary,             IR_OP_TANH,               ""},
    {"Transpose",           1, imp_transpose,         IR_OP_TRANSPOSE,          "perm"},
    {"Unsqueeze",           1, imp_unsqueeze,         IR_OP_RESHAPE,            "axes"},
    {"Upsample",            7, imp_upsample,          IR_OP_RESIZE,             "mode scales"},
    // recurrences
    {"GRU",                 7, imp_rnn,               IR_OP_GRU,                "activation_alpha activation_beta activations clip "
                                                                                 "direction hidden_size layout linear_before_reset"},
    {"LSTM",                7, imp_rnn,               IR_OP_LSTM,               "activation_alpha activation_beta activations clip "
                                                                                 "direction hidden_size input_forget layout"},
    {"RNN",                 7, imp_rnn,               IR_OP_RNN,                "activation_alpha activation_beta activations clip "
                                                                                 "direction hidden_size layout"},
};

static const onnx_op *find_op(const char *type) {
  for (size_t i = 0; i < sizeof onnx_ops / sizeof *onnx_ops; i++)
    if (!strcmp(onnx_ops[i].type, type))
      return &onnx_ops[i];
  return NULL;
}

bool onnx_op_supported(const char *op_type) { return op_type && find_op(op_type); }

// Is name one of the space-separated words of list?
static bool in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  if (!n)
    return false;
  for (const char *p = list; (p = strstr(p, name)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
      return true;
  return false;
}

static int import_node(imp *m) {
  const node_proto *p = m->p;
  const char *domain = str(p->domain), *type = str(p->op_type);
  if (domain[0] && strcmp(domain, "ai.onnx"))
    return fail(m, "unsupported op '%.64s' of domain '%.64s' (only the default ONNX domain is supported)", type,
                domain);
  const onnx_op *op = find_op(type);
  if (!op)
    return fail(m, "unsupported op '%.64s' (docs/ir.md lists the supported ops)", type);
  if (m->opset < op->since)
    return fail(m, "%s before opset %d is a different definition, which is not supported", type, op->since);
  for (size_t i = 0; i < p->n_attribute; i++) {
    const attr_proto *a = p->attribute[i];
    if (!a || !a->name || !in_list(op->attrs, a->name))
      return fail(m, "attribute '%.64s' of %s is not supported", a && a->name ? a->name : "?", type);
    if (a->ref_attr_name && a->ref_attr_name[0])
      return fail(m, "attribute '%s' refers to a function attribute, which is not supported", a->name);
  }
  for (size_t i = 0; i < p->n_output; i++)
    if (str(p->output[i])[0] && ir_find(m->g, p->output[i]))
      return fail(m, "output '%.200s' is already defined", p->output[i]);
  return op->fn(m, op);
}

// ---------------------------------------------------------------- graph inputs

static const ir_input_shape *find_override(const ir_input_shape *ov, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(ov[i].name, name))
      return &ov[i];
  return NULL;
}

// A graph input's type: the model's dims, overridden ones, and a dynamic
// batch dim (dim 0) set to 1 with a note. Any other unknown dim is an error.
static int input_type(imp *m, const Onnx__ValueInfoProto *vi, const ir_input_shape *ov, ir_type *ty) {
  const char *name = vi->name;
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return fail(m, "input '%.200s' is not a tensor (sequences, maps and optionals are not supported)", name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  char what[300];
  snprintf(what, sizeof what, "input '%.200s'", name);
  *ty = (ir_type){0};
  if (dtype_of(m, tt->has_elem_type ? tt->elem_type : 0, what, &ty->dtype))
    return -1;
  const Onnx__TensorShapeProto *sp = tt->shape;
  if (sp && sp->n_dim > IR_MAX_DIMS)
    return fail(m, "input '%.200s' has %zu dims; at most %d are supported", name, sp->n_dim, IR_MAX_DIMS);
  if (!sp && !ov)
    return fail(m, "input '%.200s' has no shape in the model; give its shape as an input-shape override", name);
  if (ov && sp && ov->rank != (int)sp->n_dim)
    return fail(m, "input '%.200s' has %zu dims in the model but the override gives %d", name, sp->n_dim, ov->rank);
  ty->rank = ov ? ov->rank : (int)sp->n_dim;
  for (int i = 0; i < ty->rank; i++) {
    const Onnx__TensorShapeProto__Dimension *d = sp ? sp->dim[i] : NULL;
    bool known = d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    if (known && (d->dim_value < 0 || d->dim_value > IR_MAX_ELEMS))
      return fail(m, "input '%.200s' dim %d is %lld", name, i, (long long)d->dim_value);
    const char *sym = d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ? str(d->dim_param)
                                                                                                 : "?";
    if (ov) {
      if (known && d->dim_value != ov->dims[i])
        return fail(m, "input '%.200s' dim %d is %lld in the model but the override gives %lld", name, i,
                    (long long)d->dim_value, (long long)ov->dims[i]);
      ty->dims[i] = ov->dims[i];
    } else if (known) {
      ty->dims[i] = d->dim_value;
    } else if (i == 0) {
      ty->dims[i] = 1;
      ir_note(m->g, "input '%.200s' dim 0 ('%.64s') is dynamic: using 1 (a batch of one)", name, sym);
    } else {
      return fail(m, "input '%.200s' dim %d ('%.64s') is dynamic; give the input's shape as an input-shape override",
                  name, i, sym);
    }
  }
  int64_t n = 1;
  for (int i = 0; i < ty->rank; i++) {
    if (ty->dims[i] < 0 || ty->dims[i] > IR_MAX_ELEMS || (ty->dims[i] && n > IR_MAX_ELEMS / ty->dims[i]))
      return fail(m, "input '%.200s' is too large", name);
    n *= ty->dims[i];
  }
  return 0;
}

// ---------------------------------------------------------------- the model

static int default_opset(imp *m, const Onnx__ModelProto *model) {
  int64_t v = -1;
  for (size_t i = 0; i < model->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = model->opset_import[i];
    const char *d = o ? str(o->domain) : "x";
    if ((!d[0] || !strcmp(d, "ai.onnx")) && o->has_version)
      v = o->version;
  }
  if (v < 0)
    return fail(m, "the model imports no version of the default ONNX opset");
  if (v < MIN_OPSET || v > MAX_OPSET)
    return fail(m, "opset %lld is not supported (opsets %d to %d are)", (long long)v, MIN_OPSET, MAX_OPSET);
  m->opset = (int)v;
  return 0;
}

// The names the nodes of gp define and read, and those of the subgraphs (If's
// branches) in their attributes, whose nodes the importer may inline.
static void collect_node_names(imp *m, const Onnx__GraphProto *gp, int depth) {
  for (size_t i = 0; i < gp->n_node; i++) {
    const node_proto *p = gp->node[i];
    if (!p)
      continue;
    for (size_t k = 0; k < p->n_output; k++)
      set_add(&m->defined, p->output[k]);
    for (size_t k = 0; k < p->n_input; k++)
      set_add(&m->used, p->input[k]);
    for (size_t k = 0; k < p->n_attribute && depth < 16; k++)
      if (p->attribute[k] && p->attribute[k]->g) {
        const Onnx__GraphProto *sg = p->attribute[k]->g;
        for (size_t j = 0; j < sg->n_initializer; j++)
          if (sg->initializer[j])
            set_add(&m->defined, sg->initializer[j]->name);
        collect_node_names(m, sg, depth + 1);
      }
  }
  for (size_t i = 0; i < gp->n_output; i++)
    if (gp->output[i])
      set_add(&m->used, gp->output[i]->name);
}

// Every name the graph defines, once; and every name something reads.
static int collect_names(imp *m, const Onnx__GraphProto *gp) {
  nameset inits = {0};
  for (size_t i = 0; i < gp->n_initializer; i++)
    set_add(&inits, gp->initializer[i] ? gp->initializer[i]->name : NULL);
  set_sort(&inits);
  for (size_t i = 0; i < gp->n_input; i++)
    if (gp->input[i] && !set_has(&inits, str(gp->input[i]->name)))
      set_add(&m->defined, gp->input[i]->name);
  for (size_t i = 0; i < inits.n; i++)
    set_add(&m->defined, inits.v[i]);
  free(inits.v);
  collect_node_names(m, gp, 0);
  set_sort(&m->defined);
  set_sort(&m->used);
  for (size_t i = 1; i < m->defined.n; i++)
    if (!strcmp(m->defined.v[i - 1], m->defined.v[i]))
      return fail(m, "value '%.200s' is defined more than once", m->defined.v[i]);
  return 0;
}

static int import_inputs(imp *m, Onnx__GraphProto *gp, const ir_input_shape *ov, int nov) {
  for (size_t i = 0; i < gp->n_initializer; i++) {
    tensor_proto *t = gp->initializer[i];
    if (!t || !t->name || !t->name[0])
      return fail(m, "initializer %zu has no name", i);
    char what[300];
    snprintf(what, sizeof what, "initializer '%.200s'", t->name);
    if (!tensor_const(m, t, t->name, what))
      return -1;
  }
  if (gp->n_sparse_initializer)
    return fail(m, "sparse initializers are not supported");
  for (int k = 0; k < nov; k++) {
    bool found = false;
    for (size_t i = 0; i < gp->n_input && !found; i++)
      found = gp->input[i] && !strcmp(str(gp->input[i]->name), ov[k].name);
    if (!found)
      return fail(m, "an input shape is given for '%.200s', which is not an input of the model", ov[k].name);
  }
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi || !vi->name || !vi->name[0])
      return fail(m, "graph input %zu has no name", i);
    ir_value *init = ir_find(m->g, vi->name);
    if (init) {
      // Before IR version 4 initializers were also listed as inputs; they
      // are weights, and stay constants here.
      if (find_override(ov, nov, vi->name))
        return fail(m, "'%.200s' is an initializer; its shape cannot be overridden", vi->name);
      continue;
    }
    ir_type ty;
    if (input_type(m, vi, find_override(ov, nov, vi->name), &ty))
      return -1;
    ir_add_input(m->g, vi->name, &ty);
  }
  return 0;
}

static int import_outputs(imp *m, const Onnx__GraphProto *gp) {
  if (!gp->n_output)
    return fail(m, "the graph has no outputs");
  char s1[128], s2[128];
  for (size_t i = 0; i < gp->n_output; i++) {
    const Onnx__ValueInfoProto *vi = gp->output[i];
    const char *name = vi ? str(vi->name) : "";
    ir_value *v = ir_find(m->g, name);
    if (!v || !set_has(&m->defined, name))
      return fail(m, "graph output '%.200s' is not produced by any node, initializer or input", name);
    if (v->is_output)
      return fail(m, "graph output '%.200s' is listed twice", name);
    ir_add_output(m->g, v);
    // A declared type is a check on inference: a dtype that differs is an
    // error; dims may legitimately differ when dynamic dims were fixed.
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
      continue;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type && onnx_dtype(tt->elem_type) != v->ty.dtype)
      return fail(m, "graph output '%.200s' is declared %s but computes %s", name, onnx_type_name(tt->elem_type),
                  ir_type_str(&v->ty, s1, sizeof s1));
    const Onnx__TensorShapeProto *sp = tt->shape;
    if (!sp)
      continue;
    bool same = (int)sp->n_dim == v->ty.rank;
    for (size_t k = 0; same && k < sp->n_dim; k++)
      same = !sp->dim[k] || sp->dim[k]->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
             sp->dim[k]->dim_value == v->ty.dims[k];
    if (!same) {
      ir_type d = {v->ty.dtype, (int)(sp->n_dim <= IR_MAX_DIMS ? sp->n_dim : IR_MAX_DIMS), {0}};
      for (int k = 0; k < d.rank; k++)
        d.dims[k] = sp->dim[k] && sp->dim[k]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                        ? sp->dim[k]->dim_value
                        : -1;
      ir_note(m->g, "output '%.200s' is declared %s (-1: dynamic) but is %s with these input shapes", name,
              ir_type_str(&d, s1, sizeof s1), ir_type_str(&v->ty, s2, sizeof s2));
    }
  }
  return 0;
}

static ir_graph *import_model(imp *m, Onnx__ModelProto *model, const ir_input_shape *ov, int nov) {
  Onnx__GraphProto *gp = model->graph;
  if (!gp)
    return fail(m, "the model has no graph"), NULL;
  if (default_opset(m, model))
    return NULL;
  m->g = ir_graph_new(str(gp->name));
  free(m->g->source);
  m->g->source = strdup(m->file);
  if (!m->g->source)
    abort();
  m->g->opset = m->opset;
  if (collect_names(m, gp) || import_inputs(m, gp, ov, nov))
    return NULL;
  for (size_t i = 0; i < gp->n_node; i++) {
    if (!gp->node[i])
      return fail(m, "node %zu is empty", i), NULL;
    m->p = gp->node[i];
    m->index = (int)i;
    if (import_node(m))
      return NULL;
    m->p = NULL;
  }
  if (import_outputs(m, gp))
    return NULL;
  ir_prune(m->g);
  char msg[IR_ERR_LEN];
  if (ir_verify(m->g, "import", msg, sizeof msg))
    return fail(m, "%s", msg), NULL;
  return m->g;
}

// protobuf-c copies every bytes field (the weights' raw_data): large ones go
// where their pages are faulted in at once. tensor_data takes them over, and
// the graph frees them with free().
static void *big_alloc(void *unused, size_t n) {
  (void)unused;
  return isa_malloc_big(n);
}
static void big_free(void *unused, void *p) {
  (void)unused;
  free(p);
}
static ProtobufCAllocator big_allocator = {big_alloc, big_free, NULL};

ir_graph *onnx_import_buffer(const void *buf, size_t len, const char *name, const ir_input_shape *overrides,
                             int noverrides, char *err, size_t errlen) {
  imp m = {.file = name ? name : "model", .err = err, .errlen = errlen};
  if (!len) {
    fail(&m, "the file is empty");
    return NULL;
  }
  Onnx__ModelProto *model = onnx__model_proto__unpack(&big_allocator, len, buf);
  if (!model) {
    fail(&m, "not a valid ONNX model (the protobuf data is truncated or corrupt)");
    return NULL;
  }
  ir_graph *g = import_model(&m, model, overrides, noverrides > 0 ? noverrides : 0);
  if (!g)
    ir_graph_free(m.g);
  onnx__model_proto__free_unpacked(model, NULL);
  free(m.defined.v);
  free(m.used.v);
  return g;
}

ir_graph *onnx_import(const char *path, const ir_input_shape *overrides, int noverrides, char *err, size_t errlen) {
  isa_file f;
  if (isa_file_load(&f, path, false, MAX_MODEL_BYTES,
                    "one protobuf message (models this large keep their weights in external data, which is not "
                    "supported)",
                    err, errlen))
    return NULL;
  ir_graph *g = onnx_import_buffer(f.data, f.len, path, overrides, noverrides, err, errlen);
  isa_file_release(&f);
  return g;
}
