// The compiler driver: checks that every node can be lowered, places values
// in HBM, lowers node by node into layers, and packs the executable.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"

const char *const cc_precision_names[2] = {"default", "highest"};

static bool is_int_mxu(const ir_node *n) {
  return n->op == IR_OP_MATMUL_INTEGER || n->op == IR_OP_CONV_INTEGER || n->op == IR_OP_QLINEAR_MATMUL ||
         n->op == IR_OP_QLINEAR_CONV;
}
static bool is_mxu(const ir_node *n) { return n->op == IR_OP_CONV || n->op == IR_OP_MATMUL || is_int_mxu(n); }

// Depthwise convolutions run on the vector unit (lower_mxu.c), on any chip.
static bool is_depthwise(const ir_node *n) {
  if (n->op != IR_OP_CONV || n->a.group <= 1 || !n->a.nhwc) return false;
  int r = n->in[0]->ty.rank;
  return n->in[0]->ty.dims[r - 1] == n->a.group && n->out[0]->ty.dims[r - 1] == n->a.group;
}

// Inputs the MXU lowering pre-arranges itself (weights, bias): they need no
// f32 copy in HBM.
static bool mxu_owns(const ir_node *n, int slot) {
  if (is_int_mxu(n)) return slot == (n->op == IR_OP_QLINEAR_MATMUL || n->op == IR_OP_QLINEAR_CONV ? 3 : 1);
  if (!is_mxu(n)) return false;
  bool bias = n->nin - (n->a.residual ? 1 : 0) >= 3;
  if (slot == 2 && bias) return true;
  if (slot == 1) return n->op == IR_OP_CONV || n->in[1]->ty.rank == 2;
  return false;
}

// The I/O element type of an IR type; -1 for the types an executable's
// signature cannot carry.
static int io_dtype(ir_dtype dt) {
  switch (dt) {
  case IR_DT_F32: return IO_F32;
  case IR_DT_BF16: return IO_BF16;
  case IR_DT_I32: return IO_I32;
  case IR_DT_I8: return IO_I8;
  case IR_DT_I64: return IO_I64;
  case IR_DT_U8: return IO_U8;
  case IR_DT_BOOL: return IO_BOOL;
  case IR_DT_I16: return IO_I16;
  case IR_DT_U16: return IO_U16;
  case IR_DT_U32: return IO_U32;
  case IR_DT_U64: return IO_U64;
  default: return -1;
  }
}

static int check_io(const ir_value *v, const char *role, char *err, size_t errlen) {
  char t[128];
  if (io_dtype(v->ty.dtype) < 0)
    return ir_fail(err, errlen,
                   "%s '%s' is %s: inputs and outputs may be f32, bf16, an integer type or bool (not f16 or f64)", role,
                   v->name, ir_type_str(&v->ty, t, sizeof t));
  if (v->ty.rank > ISA_IO_MAX_RANK) return ir_fail(err, errlen, "%s '%s' has rank %d (at most %d)", role, v->name, v->ty.rank, ISA_IO_MAX_RANK);
  return 0;
}

static bool is_empty(const ir_value *v) { return ir_nelems(&v->ty) == 0; }

// A node whose outputs are all empty (a dimension 0) computes nothing and is
// not lowered; one that makes a non-empty tensor from an empty one (Concat
// with an empty piece, a reduction over nothing) is not supported.
static bool computes_nothing(const ir_node *n) {
  for (int s = 0; s < n->nout; s++)
    if (!is_empty(n->out[s])) return false;
  return true;
}

static void layer_label(const ir_node *n, char *name, size_t nl, char *op, size_t ol) {
  if (n->name && n->name[0]) snprintf(name, nl, "%s", n->name);
  else snprintf(name, nl, "%s_%d", ir_ops[n->op].name, n->id);
  const char *bias = "";
  if (is_mxu(n) && n->nin - (n->a.residual ? 1 : 0) >= 3) bias = "+bias";
  snprintf(op, ol, "%s%s%s%s%s%s", ir_ops[n->op].name, n->a.pscale_on ? "+scale" : "", bias, n->a.residual ? "+add" : "",
           n->a.act != IR_ACT_NONE ? "+" : "", n->a.act != IR_ACT_NONE ? ir_act_names[n->a.act] : "");
}

static void dump_asm(const cc_executable *x, const cc_options *opt, FILE *f) {
  const isa_program *p = &x->prog;
  fprintf(f, "; systole compile: chip %s, precision %s, %zu instructions, %zu layers\n", p->chip,
          cc_precision_names[opt->precision], p->ncode, p->nlayers);
  fprintf(f, "; (descriptors and constants are in .smem and .hbm: `systole disasm` prints everything)\n");
  size_t l = 0;
  char buf[256];
  for (size_t pc = 0; pc < p->ncode; pc++) {
    while (l < p->nlayers && p->layers[l].pc_begin == pc) {
      fprintf(f, "\n; layer %zu: %s (%s)\n", l, p->layers[l].name, p->layers[l].op);
      l++;
    }
    isa_disasm_inst(p->code[pc], pc, buf, sizeof buf);
    fprintf(f, "        %-56s ; %zu\n", buf, pc);
  }
}

// ---------------------------------------------------------------- the activation arena
//
// On a chip whose VMEM holds the activations (vmem_activations, TPU v1's
// Unified Buffer), intermediate values live in a region reserved at the top
// of VMEM, named by the HBM addresses of the window CC_UB_WINDOW (emit.c
// translates them), first fit in program order; a value's bytes are reused
// once every node that reads it (directly or through a view) has been
// lowered. Graph inputs and outputs are there too, moved from and to host
// memory over the host link (host_io below); what does not fit stays in HBM.

typedef struct {
  uint64_t off, bytes;
  int last; // node index of its last reader
} arena_block;

typedef struct {
  bool on, spilled;    // spilled: a value did not fit (it is in HBM)
  uint64_t base, size; // the address of offset 0 (CC_UB_WINDOW, or 0 for HBM: offsets)
  uint64_t high;       // the most bytes in use at once
  const int *last;      // per value id: the last node that reads it (or a view of it); INT32_MAX: keep
  arena_block *blocks;  // live blocks, by offset
  int nblocks;
} arena;

// Per value id, the last node that reads it, directly or through a view
// (-1: none; INT32_MAX: a graph output, kept), for both arenas. NULL: out of
// host memory.
static int *last_readers(const ir_graph *g) {
  int *last = malloc(((size_t)g->nvalues + 1) * sizeof *last);
  int *root = malloc(((size_t)g->nvalues + 1) * sizeof *root);
  if (!last || !root) return free(last), free(root), NULL;
  for (int v = 0; v <= g->nvalues; v++) last[v] = -1, root[v] = v;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    for (int k = 0; k < n->nin; k++) {
      int r = root[n->in[k]->id];
      if (last[r] < i) last[r] = i;
    }
    if (cc_is_view(n))
      for (int k = 0; k < n->nout; k++) root[n->out[k]->id] = root[n->in[0]->id];
  }
  for (int k = 0; k < g->noutputs; k++) last[root[g->outputs[k]->id]] = INT32_MAX;
  free(root);
  return last;
}

static int arena_init(arena *a, const ir_graph *g, const int *last) {
  *a = (arena){.last = last, .blocks = malloc(((size_t)g->nvalues + 1) * sizeof *a->blocks)};
  return a->blocks ? 0 : -1;
}

static int arena_plan(arena *a, const ir_graph *g, const int *last, const chip_config *chip, uint64_t size,
                      cc_emit *e) {
  *a = (arena){0};
  if (!chip->vmem_activations) return 0;
  if (arena_init(a, g, last)) return -1;
  // half of VMEM unless told: the layers' own tiles need the rest
  if (!size) size = chip->vmem_bytes / 2;
  size &= ~63ull;
  uint64_t base = cc_vmem_reserve(e, size);
  if (base == UINT64_MAX) return 0;
  cc_ub_window(e, base, size);
  a->on = true, a->base = CC_UB_WINDOW, a->size = size;
  return 0;
}

// The values outside the Unified Buffer go to HBM, first fit in program
// order, each value's bytes reused once its last reader is lowered (as XLA
// reuses buffers); placed as offsets, then moved to one range of the most
// bytes in use at once. The chip pays nothing for it: the emitter orders a
// write after every unfinished access it overlaps (sync_and_record), and a
// node's outputs never share bytes with its inputs (released only after it).
// The simulator pays less: its HBM is host pages, and a fresh process pays
// for every page it writes first (docs/performance.md, section 4).
static int hbm_arena_plan(arena *a, const ir_graph *g, const int *last) {
  if (arena_init(a, g, last)) return -1;
  a->on = true, a->size = UINT64_MAX >> 1;
  return 0;
}

static void arena_release(arena *a, int node) {
  if (!a->on) return;
  int k = 0;
  for (int i = 0; i < a->nblocks; i++)
    if (a->blocks[i].last >= node) a->blocks[k++] = a->blocks[i];
  a->nblocks = k;
}

// The window address of v's bytes in the arena, or UINT64_MAX (HBM then).
static uint64_t arena_take(arena *a, const ir_value *v, uint64_t nbytes) {
  if (!a->on || a->last[v->id] < 0 || !nbytes) return UINT64_MAX;
  uint64_t bytes = (nbytes + 63) & ~63ull, at = 0;
  int i = 0;
  for (; i < a->nblocks; i++) { // the first gap that fits
    if (a->blocks[i].off >= at + bytes) break;
    at = a->blocks[i].off + a->blocks[i].bytes;
  }
  if (at + bytes > a->size) {
    a->spilled = true;
    return UINT64_MAX;
  }
  memmove(&a->blocks[i + 1], &a->blocks[i], (size_t)(a->nblocks - i) * sizeof *a->blocks);
  a->blocks[i] = (arena_block){at, bytes, a->last[v->id]};
  a->nblocks++;
  if (at + bytes > a->high) a->high = at + bytes;
  return a->base + at;
}

// Where a value goes: the Unified Buffer's arena; else an offset in the
// HBM arena (*rel set: cc_place.hbm_rel, so that copies of the placement,
// views and concatenation pieces, carry it); else (a value nothing reads) HBM of its own.
static uint64_t place_take(arena *ub, arena *hb, cc_emit *e, const ir_value *v, uint64_t bytes, bool *rel) {
  uint64_t a = arena_take(ub, v, bytes);
  if (a != UINT64_MAX) return a;
  if ((a = arena_take(hb, v, bytes)) != UINT64_MAX) return *rel = true, a;
  return cc_hbm_alloc(e, bytes);
}

static void arena_free(arena *a) { free(a->blocks); }

// An int8 product quantised by cc_quantize (lowered by lower_mxu.c's jobs
// with their f32 epilogue).
static bool q8_product(const ir_node *n) {
  return (n->op == IR_OP_CONV || n->op == IR_OP_MATMUL) && n->a.qscale > 0 && !is_depthwise(n);
}

// A max pool the vector unit lowers on int8 as on f32 (lower_vpu.c): the
// maximum commutes with the monotone quantisation, so it is exact.
static bool q8_pool(const ir_node *n) {
  int r = n->in[0]->ty.rank;
  return n->op == IR_OP_MAXPOOL && n->nout == 1 && n->a.nhwc && (r == 3 || r == 4) &&
         n->in[0]->ty.dtype == IR_DT_F32;
}

// A node that passes int8 through with one scale: max pools, concatenations
// (bytes moved) and views.
static bool q8_through(const ir_node *n) {
  return q8_pool(n) || cc_is_view(n) || (n->op == IR_OP_CONCAT && n->out[0]->ty.dtype == IR_DT_F32);
}

static int uf_find(int *up, int v) {
  while (up[v] != v) v = up[v] = up[up[v]];
  return v;
}

int cc_q8_classes(const ir_graph *g, const bool *product, int *cls) {
  int nv = g->nvalues + 1, *up = malloc((size_t)nv * sizeof *up);
  bool *bad = calloc((size_t)nv, sizeof *bad), *read = calloc((size_t)nv, sizeof *read);
  if (!up || !bad || !read) return free(up), free(bad), free(read), -1;
  for (int v = 0; v < nv; v++) up[v] = v;
  for (int i = 0; i < g->nnodes; i++) { // join what passes through
    const ir_node *n = g->nodes[i];
    if (!q8_through(n)) continue;
    for (int k = 0; k < n->nin; k++)
      for (int o = 0; o < n->nout; o++) up[uf_find(up, n->in[k]->id)] = uf_find(up, n->out[o]->id);
  }
  // A class is bad if a member is made or read by anything else, or is a
  // graph input, output or constant; it needs an int8 product reading it.
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    bool through = q8_through(n), prod = product[n->id];
    for (int k = 0; k < n->nin; k++) {
      int r = uf_find(up, n->in[k]->id);
      if (prod && k == 0) read[r] = true;
      else if (!through) bad[r] = true; // a weight, a residual, another op
    }
    for (int o = 0; o < n->nout; o++)
      if (!through && !(prod && o == 0 && n->a.act != IR_ACT_SOFTMAX)) bad[uf_find(up, n->out[o]->id)] = true;
  }
  for (int k = 0; k < g->ninputs; k++) bad[uf_find(up, g->inputs[k]->id)] = true;
  for (int k = 0; k < g->noutputs; k++) bad[uf_find(up, g->outputs[k]->id)] = true;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++)
      if (g->nodes[i]->in[k]->data) bad[uf_find(up, g->nodes[i]->in[k]->id)] = true;
  for (int v = 0; v < nv; v++) {
    int r = uf_find(up, v);
    cls[v] = read[r] && !bad[r] ? r : -1;
  }
  free(up), free(bad), free(read);
  return 0;
}

// An int8 product quantised by cc_quantize, per node id (or NULL: out of memory).
static bool *q8_products(const ir_graph *g) {
  bool *p = calloc((size_t)g->nnodes + 1, sizeof *p);
  for (int i = 0; p && i < g->nnodes; i++) p[g->nodes[i]->id] = q8_product(g->nodes[i]);
  return p;
}

// The int8 classes whose products all read them with one scale (cc_quantize
// chose it jointly; a graph quantised otherwise may disagree): cls[v] as
// cc_q8_classes, and the scale of each in *reader[class]. -1: out of memory.
static int plan_int8_storage(const ir_graph *g, int *cls, const ir_node **reader) {
  bool *prod = q8_products(g);
  if (!prod || cc_q8_classes(g, prod, cls)) return free(prod), -1;
  free(prod);
  bool *mixed = calloc((size_t)g->nvalues + 1, sizeof *mixed);
  if (!mixed) return -1;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!q8_product(n) || cls[n->in[0]->id] < 0) continue;
    const ir_node **r = &reader[cls[n->in[0]->id]];
    if (*r && ((*r)->a.qscale != n->a.qscale || (*r)->a.qzp != n->a.qzp)) mixed[cls[n->in[0]->id]] = true;
    *r = n;
  }
  for (int v = 0; v <= g->nvalues; v++)
    if (cls[v] >= 0 && mixed[cls[v]]) cls[v] = -1;
  free(mixed);
  return 0;
}

// Pieces of a concatenation along the last axis that their producer writes
// in place, as the TPU v1's Activate writes its results to any address of the
// Unified Buffer: a constant-weight product (its epilogue stores rows with the
// concatenation's pitch, lower_mxu.c) whose output nothing else reads.
// cat[value id]: the concatenation, or NULL. -1: out of host memory.
static int plan_concat_in_place(const ir_graph *g, const ir_node **cat) {
  int *reads = calloc((size_t)g->nvalues + 1, sizeof *reads);
  if (!reads) return -1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++) reads[g->nodes[i]->in[k]->id]++;
  for (int k = 0; k < g->noutputs; k++) reads[g->outputs[k]->id] += 2;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!is_mxu(n) || is_int_mxu(n) || is_depthwise(n) || n->nout != 1 || !n->in[1]->data ||
        n->a.act == IR_ACT_SOFTMAX || (n->op == IR_OP_MATMUL && n->in[1]->ty.rank != 2))
      continue;
    const ir_value *v = n->out[0];
    if (reads[v->id] != 1) continue;
    for (int r = i + 1; r < g->nnodes; r++) {
      const ir_node *c = g->nodes[r];
      if (c->op != IR_OP_CONCAT || cc_is_view(c)) continue;
      int rank = c->out[0]->ty.rank, axis = c->a.axis < 0 ? c->a.axis + rank : c->a.axis;
      for (int k = 0; k < c->nin; k++)
        if (c->in[k] == v && axis == rank - 1 && v->ty.dtype == IR_DT_F32) cat[v->id] = c;
    }
  }
  free(reads);
  return 0;
}

// What a compile found of the Unified Buffer: whether a value did not fit
// the arena, and the most VMEM a matrix layer's tiles took.
typedef struct {
  bool spilled;
  uint64_t mxu_scratch;
} ub_fit;

static int compile_once(ir_graph *g, const chip_config *chip, const cc_options *opt, bool prefetch,
                        uint64_t arena_bytes, ub_fit *fit, cc_executable *out, char *err, size_t errlen) {
  *fit = (ub_fit){0};
  memset(out, 0, sizeof *out);
  bool quantised = opt->quantize;
  for (int i = 0; i < g->ninputs; i++)
    if (check_io(g->inputs[i], "input", err, errlen)) return -1;
  for (int i = 0; i < g->noutputs; i++)
    if (check_io(g->outputs[i], "output", err, errlen)) return -1;
  for (int i = 0; i < g->nnodes; i++) {
    char why[CC_ERR_LEN], where[160], t[128];
    if (computes_nothing(g->nodes[i])) continue;
    for (int s = 0; s < g->nodes[i]->nin; s++)
      if (is_empty(g->nodes[i]->in[s])) {
        ir_node_where(g->nodes[i], where, sizeof where);
        return ir_fail(err, errlen, "%s: input %d '%s' is empty (%s) and an output is not: not supported", where, s,
                       g->nodes[i]->in[s]->name, ir_type_str(&g->nodes[i]->in[s]->ty, t, sizeof t));
      }
    if (is_mxu(g->nodes[i]) && !is_int_mxu(g->nodes[i]) && !chip->mxu_bf16 && !(g->nodes[i]->a.qscale > 0) &&
        !is_depthwise(g->nodes[i])) {
      ir_node_where(g->nodes[i], where, sizeof where);
      if (quantised)
        return ir_fail(err, errlen, "%s: chip '%s' has no bf16 matrix unit (its [mxu] dtypes are int8 only), and "
                       "--quantize int8 quantises only products with constant weights", where, chip->name);
      return ir_fail(err, errlen, "%s: chip '%s' has no bf16 matrix unit (its [mxu] dtypes are int8 only): "
                     "compile with --quantize int8", where, chip->name);
    }
    if (!cc_lower_supported(g->nodes[i], why, sizeof why)) {
      ir_node_where(g->nodes[i], where, sizeof where);
      return ir_fail(err, errlen, "%s: %s", where, why);
    }
  }

  cc_emit *e = cc_emit_new(chip, err, errlen);
  if (!e) return -1;
  cc_place *place = calloc((size_t)g->nvalues + 1, sizeof *place);
  if (!place) {
    cc_emit_free(e);
    return ir_fail(err, errlen, "out of host memory");
  }
#define PLACE_CONST(v)                                                                      \
  do {                                                                                      \
    if (!place[(v)->id].placed) {                                                           \
      place[(v)->id].addr = cc_hbm_const(e, (v)->data, ir_nbytes(&(v)->ty));                \
      place[(v)->id].placed = true;                                                         \
    }                                                                                       \
  } while (0)
  // Where the Unified Buffer holds the activations, the tensors that int8
  // products read (through max pools, concatenations and views) are stored
  // int8, decided before the arena plan so that it counts their bytes.
  arena ar = {0}, hb = {0};
  int *last = last_readers(g);
  int *q8cls = calloc((size_t)g->nvalues + 1, sizeof *q8cls);
  const ir_node **q8reader = calloc((size_t)g->nvalues + 1, sizeof *q8reader);
  const ir_node **cat = calloc((size_t)g->nvalues + 1, sizeof *cat);
  bool oom = !last || !q8cls || !q8reader || !cat;
  for (int v = 0; !oom && v <= g->nvalues; v++) q8cls[v] = -1;
  if (!oom && chip->vmem_activations)
    oom = plan_int8_storage(g, q8cls, q8reader) != 0 || plan_concat_in_place(g, cat) != 0;
  if (oom || arena_plan(&ar, g, last, chip, arena_bytes, e) || hbm_arena_plan(&hb, g, last)) {
    cc_emit_free(e);
    arena_free(&ar), arena_free(&hb);
    free(place), free(last), free(q8cls), free(q8reader), free(cat);
    return ir_fail(err, errlen, "out of host memory");
  }
#define STORED_BYTES(v) (q8cls[(v)->id] >= 0 ? (uint64_t)ir_nelems(&(v)->ty) : ir_nbytes(&(v)->ty))
  for (int i = 0; i < g->ninputs; i++) {
    ir_value *v = g->inputs[i];
    place[v->id].addr = place_take(&ar, &hb, e, v, ir_nbytes(&v->ty), &place[v->id].hbm_rel);
    place[v->id].placed = true;
  }
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    for (int s = 0; s < n->nin; s++)
      if (n->in[s]->data && !mxu_owns(n, s)) PLACE_CONST(n->in[s]);
    arena_release(&ar, i);
    arena_release(&hb, i);
    for (int s = 0; s < n->nout; s++) {
      ir_value *v = n->out[s];
      if (cc_is_view(n)) {
        place[v->id] = place[n->in[0]->id];
        continue;
      }
      // a piece written in place: the concatenation is placed with its first piece
      const ir_node *c = cat[v->id];
      ir_value *w = c ? c->out[0] : v;
      if (!place[w->id].placed) {
        place[w->id].addr = place_take(&ar, &hb, e, w, STORED_BYTES(w), &place[w->id].hbm_rel);
        place[w->id].placed = true;
        if (q8cls[w->id] >= 0) {
          const ir_node *r = q8reader[q8cls[w->id]];
          place[w->id].q8 = true, place[w->id].q8_inv = 1.0f / r->a.qscale, place[w->id].q8_zp = r->a.qzp;
        }
      }
      if (c) {
        int64_t off = 0, total = w->ty.dims[w->ty.rank - 1];
        for (int k = 0; c->in[k] != v; k++) off += c->in[k]->ty.dims[w->ty.rank - 1];
        place[v->id] = place[w->id]; // one class: int8 alike
        place[v->id].addr += (uint64_t)off * (place[w->id].q8 ? 1 : 4), place[v->id].pitch = total;
      }
    }
  }
#undef STORED_BYTES
  uint64_t hbase = cc_hbm_alloc(e, hb.high ? hb.high : 1);
  for (int v = 0; v <= g->nvalues; v++)
    if (place[v].hbm_rel) place[v].addr += hbase, place[v].hbm_rel = false;
  fit->spilled = ar.spilled;
  arena_free(&ar), arena_free(&hb);
  free(last), free(q8cls), free(q8reader), free(cat);
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i]->data) PLACE_CONST(g->outputs[i]);
#undef PLACE_CONST

  int rc = cc_emit_failed(e, err, errlen);
  // Weights of the MXU layers, arranged up front so they can be prefetched.
  cc_weights *weights = calloc((size_t)g->nnodes + 1, sizeof *weights);
  if (!weights) rc = ir_fail(err, errlen, "out of host memory");
  uint64_t wmax = 0;
  for (int i = 0; i < g->nnodes && !rc; i++) {
    weights[i].vmem = UINT64_MAX;
    if (!is_mxu(g->nodes[i]) || is_int_mxu(g->nodes[i]) || computes_nothing(g->nodes[i]))
      continue; // integer ops place their own weights
    cc_lower_ctx c = {e, chip, opt, g, g->nodes[i], place, weights, NULL, NULL};
    if (cc_mxu_prepare(&c, err, errlen)) {
      char where[160], why[CC_ERR_LEN];
      snprintf(why, sizeof why, "%s", err);
      ir_node_where(g->nodes[i], where, sizeof where);
      rc = ir_fail(err, errlen, "%s: %s", where, why);
    }
    if (weights[i].w_bytes > wmax) wmax = weights[i].w_bytes;
  }
  // Two prefetch regions at the top of VMEM, each at most a quarter of it, if
  // at least two layers' weights fit one.
  uint64_t half = wmax < chip->vmem_bytes / 4 ? wmax : chip->vmem_bytes / 4, region[2] = {0, 0};
  half = (half + 63) & ~63ull;
  int fits = 0, parity = 0;
  for (int i = 0; i < g->nnodes && !rc; i++) fits += weights[i].w_bytes && weights[i].w_bytes <= half;
  // A chip with a weight FIFO streams every weight tile from HBM through its
  // slots, reserved for the whole program so that a layer can fetch the next
  // layer's first tiles while it runs (lower_mxu.c).
  cc_fifo fifo = {0};
  if (!rc && chip->weight_fifo_tiles) {
    fifo.slots = chip->weight_fifo_tiles + 1 < CC_FIFO_MAX ? chip->weight_fifo_tiles + 1 : CC_FIFO_MAX;
    uint64_t tile = (uint64_t)chip->mxu_rows * (uint64_t)chip->mxu_cols * (chip->mxu_bf16 ? 2 : 1);
    uint64_t base = cc_vmem_reserve(e, (uint64_t)fifo.slots * ((tile + 63) & ~63ull));
    if (base == UINT64_MAX) rc = ir_fail(err, errlen, "the weight FIFO's %d tiles do not fit the VMEM of chip '%s'", fifo.slots, chip->name);
    for (int s = 0; s < fifo.slots && !rc; s++) fifo.slot[s] = base + (uint64_t)s * ((tile + 63) & ~63ull);
  }
  if (!rc && prefetch && fits >= 2 && !chip->weight_fifo_tiles && (region[0] = cc_vmem_reserve(e, 2 * half)) != UINT64_MAX)
    region[1] = region[0] + half;
  else half = 0;
  // Graph inputs and outputs in the Unified Buffer come from and go to host
  // memory over the host link, as the TPU v1's Read_Host_Memory and
  // Write_Host_Memory move them, in layers of their own before the first
  // layer and after the last, each fenced, so that Table 3 counts the cycles
  // between them (docs/timing.md).
  int nio = g->ninputs + g->noutputs, last_layer = -1;
  uint64_t *host = malloc(((size_t)nio + 1) * sizeof *host), host_next = 0;
  bool host_in = false, host_out = false;
  if (!host && !rc) rc = ir_fail(err, errlen, "out of host memory");
  for (int i = 0; i < nio && !rc; i++) {
    const ir_value *v = i < g->ninputs ? g->inputs[i] : g->outputs[i - g->ninputs];
    host[i] = UINT64_MAX;
    if (place[v->id].addr < CC_UB_WINDOW) continue;
    host[i] = host_next, host_next += (ir_nbytes(&v->ty) + 63) & ~63ull;
    *(i < g->ninputs ? &host_in : &host_out) = true;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (!cc_is_view(g->nodes[i]) && !computes_nothing(g->nodes[i])) last_layer = i;
  if (host_in && !rc) {
    cc_layer_begin(e, "read_host_memory", ISA_LAYER_HOST_IN);
    for (int i = 0; i < g->ninputs; i++)
      if (host[i] != UINT64_MAX)
        cc_copy(e, SPACE_HBM, place[g->inputs[i]->id].addr, SPACE_HOST, host[i], ir_nbytes(&g->inputs[i]->ty));
    cc_barrier(e);
    cc_layer_end(e);
  }
  for (int i = 0; i < g->nnodes && !rc; i++) {
    ir_node *n = g->nodes[i];
    if (cc_is_view(n) || computes_nothing(n)) continue;
    char name[CC_ERR_LEN], op[64];
    layer_label(n, name, sizeof name, op, sizeof op);
    cc_layer_begin(e, name, op);
    cc_scratch_reset(e);
    // While this layer runs, the next MXU layer's weights come into VMEM.
    for (int k = i + 1; half && k < g->nnodes; k++) {
      if (!is_mxu(g->nodes[k])) continue;
      cc_weights *w = &weights[k];
      if (w->w_bytes && w->w_bytes <= half && w->vmem == UINT64_MAX) {
        w->vmem = region[parity], parity ^= 1;
        cc_prefetch_copy(e, w->vmem, w->w_hbm, w->w_bytes);
      }
      break;
    }
    cc_lower_ctx c = {e, chip, opt, g, n, place, weights, fifo.slots ? &fifo : NULL, NULL};
    for (int k = i + 1; c.fifo && k < g->nnodes && !c.next; k++)
      if (weights[k].nlead) c.next = &weights[k];
    if (is_mxu(n)) {
      rc = cc_lower_mxu(&c, err, errlen);
      uint64_t used = cc_vmem_scratch_bytes(e);
      if (used > fit->mxu_scratch) fit->mxu_scratch = used;
    }
    else if (n->op == IR_OP_TRANSPOSE || n->op == IR_OP_CONCAT || n->op == IR_OP_SPLIT || n->op == IR_OP_SLICE ||
             n->op == IR_OP_PAD || n->op == IR_OP_EXPAND || n->op == IR_OP_TILE)
      rc = cc_lower_move(&c, err, errlen);
    else if (n->op == IR_OP_QUANTIZE_LINEAR || n->op == IR_OP_DEQUANTIZE_LINEAR) rc = cc_lower_q8(&c, err, errlen);
    else rc = cc_lower_vpu(&c, err, errlen);
    if (i == last_layer && host_out) cc_barrier(e);
    // A store held back (cc_defer_dma) goes into the next layer only if that
    // layer is a product, whose first passes it would hold; otherwise it stays
    // with its own layer.
    int k = i + 1;
    while (k < g->nnodes && (cc_is_view(g->nodes[k]) || computes_nothing(g->nodes[k]))) k++;
    if (k == g->nnodes || !is_mxu(g->nodes[k])) cc_flush_deferred(e);
    cc_layer_end(e);
    if (!rc && cc_emit_failed(e, NULL, 0)) {
      char where[160], why[CC_ERR_LEN];
      cc_emit_failed(e, why, sizeof why);
      ir_node_where(n, where, sizeof where);
      snprintf(err, errlen, "%s: %s", where, why);
      rc = -1;
    }
  }
  if (host_out && !rc) {
    cc_layer_begin(e, "write_host_memory", ISA_LAYER_HOST_OUT);
    for (int i = g->ninputs; i < nio; i++)
      if (host[i] != UINT64_MAX) {
        const ir_value *v = g->outputs[i - g->ninputs];
        cc_copy(e, SPACE_HOST, host[i], SPACE_HBM, place[v->id].addr, ir_nbytes(&v->ty));
      }
    cc_layer_end(e);
  }
  if (!rc) rc = cc_emit_finish(e, out, err, errlen);
  if (!rc) { // the I/O signature: inputs, then outputs
    isa_program *p = &out->prog;
    p->io = calloc((size_t)(g->ninputs + g->noutputs) + 1, sizeof *p->io);
    if (!p->io) rc = ir_fail(err, errlen, "out of host memory");
    for (int i = 0; !rc && i < g->ninputs + g->noutputs; i++) {
      bool in = i < g->ninputs;
      ir_value *v = in ? g->inputs[i] : g->outputs[i - g->ninputs];
      isa_io *t = &p->io[p->nio++];
      t->role = in ? IO_INPUT : IO_OUTPUT;
      snprintf(t->name, sizeof t->name, "%s", v->name);
      t->dtype = (isa_io_dtype)io_dtype(v->ty.dtype);
      t->rank = v->ty.rank;
      for (int d = 0; d < v->ty.rank; d++) t->dims[d] = v->ty.dims[d];
      t->mem = host[i] != UINT64_MAX ? IO_MEM_HOST : IO_MEM_HBM;
      t->addr = host[i] != UINT64_MAX ? host[i] : place[v->id].addr;
      char why[256];
      if (!isa_io_valid(t, why, sizeof why)) rc = ir_fail(err, errlen, "%s '%s': %s", in ? "input" : "output", v->name, why);
    }
  }
  free(place);
  free(weights);
  free(host);
  cc_emit_free(e);
  if (rc) {
    cc_executable_free(out);
    return -1;
  }
  return 0;
}

int cc_compile(ir_graph *g, const chip_config *chip, const cc_options *opt_in, cc_executable *out, char *err,
               size_t errlen) {
  cc_options defaults = {0};
  const cc_options *opt = opt_in ? opt_in : &defaults;
  // The prefetch regions take half of VMEM from every layer's scratch: a
  // layer that then does not fit is compiled again without them.
  ub_fit fit;
  bool prefetch = true;
  if (compile_once(g, chip, opt, true, 0, &fit, out, err, errlen)) {
    prefetch = false;
    if (compile_once(g, chip, opt, false, 0, &fit, out, err, errlen)) return -1;
  }
  // A Unified Buffer whose half did not hold every value: the arena may take
  // all that the largest matrix layer's tiles leave (they plan the same
  // tiles in it); if another layer then does not fit, the first plan stays.
  uint64_t grown = chip->vmem_bytes > fit.mxu_scratch ? (chip->vmem_bytes - fit.mxu_scratch) & ~63ull : 0;
  if (chip->vmem_activations && fit.spilled && grown > chip->vmem_bytes / 2) {
    cc_executable big;
    char why[CC_ERR_LEN];
    if (!compile_once(g, chip, opt, prefetch, grown, &fit, &big, why, sizeof why)) {
      cc_executable_free(out);
      *out = big;
    }
  }
  if (opt->dump_asm) dump_asm(out, opt, opt->dump_asm);
  return 0;
}
