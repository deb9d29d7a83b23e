// Graph rewrites that replace one node by several (gather.c, resize.c): new
// nodes are inferred as they are added and named after the node they stand
// for, the first failure is kept, and the last node takes over the output.
#include "compiler/compiler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ir_value *cc_rw_node(cc_rewrite *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, const char *what) {
  if (b->failed) return NULL;
  char name[512], msg[CC_ERR_LEN], where[160];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : ir_ops[b->n->op].name, what);
  const char *out_name = name;
  ir_node *m = ir_add_node(b->g, op, name, in, nin, 1, &out_name);
  m->src_index = b->n->src_index;
  if (a) m->a = *a;
  if (ir_infer_node(m, msg, sizeof msg)) {
    snprintf(b->err, b->errlen, "%s: %s", ir_node_where(b->n, where, sizeof where), msg);
    b->failed = true;
    return NULL;
  }
  return m->out[0];
}

ir_value *cc_rw_f32const(cc_rewrite *b, int rank, const int64_t *dims, const float *v, float fill, const char *what) {
  ir_type t = ir_type_make(IR_DT_F32, rank, dims);
  float *d = malloc(ir_nbytes(&t) + 4);
  if (!d) abort();
  for (int64_t i = 0, k = ir_nelems(&t); i < k; i++) d[i] = v ? v[i] : fill;
  char name[512];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : ir_ops[b->n->op].name, what);
  return ir_add_const(b->g, name, &t, d); // takes d
}

ir_value *cc_rw_reshape(cc_rewrite *b, ir_value *v, int rank, const int64_t *dims, const char *what) {
  ir_attrs a = {.ndims = rank};
  memcpy(a.dims, dims, (size_t)rank * sizeof *dims);
  return cc_rw_node(b, IR_OP_RESHAPE, &v, 1, &a, what);
}

ir_value *cc_rw_cast(cc_rewrite *b, ir_value *v, ir_dtype to, const char *what) {
  ir_attrs a = {.to = to};
  return cc_rw_node(b, IR_OP_CAST, &v, 1, &a, what);
}

int cc_rw_replace(cc_rewrite *b, ir_value *res) {
  if (b->failed) return -1;
  ir_node *m = res->producer, *n = b->n;
  ir_value *out = n->out[0];
  ir_remove_node(b->g, n);
  res->producer = NULL; // unused and undefined: ir_prune frees it
  m->out[0] = out;
  out->producer = m, out->producer_slot = 0;
  return 0;
}

int cc_rewrite_all(ir_graph *g, bool (*wants)(const ir_node *), const char *pass,
                   int (*rewrite)(ir_graph *, ir_node *, char *, size_t), char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (!wants(n)) continue;
    if (rewrite(g, n, err, errlen)) return -1;
    if (ir_toposort(g)) return ir_fail(err, errlen, "%s made a cycle", pass);
    count++;
    i = -1; // nodes moved: rescan
  }
  ir_prune(g);
  return count;
}
