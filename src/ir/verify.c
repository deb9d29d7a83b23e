// The verifier: every invariant of docs/ir.md ("Invariants"), checked from
// scratch so that a pass that breaks one is caught right after it runs. It
// reads the graph only and reports the first broken invariant.
#include "ir/ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const ir_graph *g;
  const char *stage;
  char *err;
  size_t errlen;
} ctx;

static int fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx *c, const char *fmt, ...) {
  char msg[IR_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(c->err, c->errlen, "IR verifier%s%s: %s", c->stage ? " after " : "", c->stage ? c->stage : "", msg);
  return -1;
}

static bool type_ok(const ir_type *t) {
  if (t->dtype <= IR_DT_UNDEF || t->dtype >= IR_DT_COUNT || t->rank < 0 || t->rank > IR_MAX_DIMS)
    return false;
  int64_t p = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0 || t->dims[i] > IR_MAX_ELEMS || (t->dims[i] && p > IR_MAX_ELEMS / t->dims[i]))
      return false;
    p *= t->dims[i];
  }
  return true;
}

static int cmp_names(const void *x, const void *y) {
  return strcmp((*(ir_value *const *)x)->name, (*(ir_value *const *)y)->name);
}

// How many times n reads v in slot order, and whether v's use list says so.
static int count_in(const ir_node *n, const ir_value *v) {
  int k = 0;
  for (int i = 0; i < n->nin; i++)
    k += n->in[i] == v;
  return k;
}

static int check_values(ctx *c) {
  const ir_graph *g = c->g;
  char s1[96];
  for (int i = 0; i < g->nvalues; i++) {
    const ir_value *v = g->values[i];
    if (!v || v->id != i)
      return fail(c, "value slot %d holds a value whose id is %d", i, v ? v->id : -1);
    if (!v->name || !v->name[0])
      return fail(c, "value %d has no name", i);
    if (ir_find(g, v->name) != v)
      return fail(c, "value '%s' is not in the name index", v->name);
    if (!type_ok(&v->ty))
      return fail(c, "value '%s' has an invalid type %s", v->name, ir_type_str(&v->ty, s1, sizeof s1));
    int defs = (v->producer != NULL) + v->is_input + (v->data != NULL);
    if (defs != 1)
      return fail(c, "value '%s' must have exactly one definition (producer, graph input or constant data), has %d",
                  v->name, defs);
    if (v->producer) {
      const ir_node *p = v->producer;
      if (p->id < 0 || p->id >= g->nnodes || g->nodes[p->id] != p)
        return fail(c, "value '%s' is produced by a node that is not in the graph", v->name);
      if (v->producer_slot < 0 || v->producer_slot >= p->nout || p->out[v->producer_slot] != v)
        return fail(c, "value '%s' says it is output %d of node %d, which disagrees", v->name, v->producer_slot,
                    p->id);
    }
    for (int u = 0; u < v->nuses; u++) {
      const ir_use *us = &v->uses[u];
      const ir_node *n = us->node;
      if (!n || n->id < 0 || n->id >= g->nnodes || g->nodes[n->id] != n)
        return fail(c, "value '%s' is used by a node that is not in the graph", v->name);
      if (us->slot < 0 || us->slot >= n->nin || n->in[us->slot] != v)
        return fail(c, "value '%s' lists a use as input %d of node %d, which reads something else", v->name, us->slot,
                    n->id);
      for (int w = 0; w < u; w++)
        if (v->uses[w].node == n && v->uses[w].slot == us->slot)
          return fail(c, "value '%s' lists input %d of node %d twice", v->name, us->slot, n->id);
    }
  }
  // Names unique: sort a copy and look at neighbours.
  ir_value **sorted = malloc((size_t)(g->nvalues ? g->nvalues : 1) * sizeof *sorted);
  if (!sorted)
    abort();
  if (g->nvalues)
    memcpy(sorted, g->values, (size_t)g->nvalues * sizeof *sorted);
  qsort(sorted, (size_t)g->nvalues, sizeof *sorted, cmp_names);
  int rc = 0;
  for (int i = 1; i < g->nvalues && !rc; i++)
    if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
      rc = fail(c, "two values are named '%s'", sorted[i]->name);
  free(sorted);
  return rc;
}

static int check_io(ctx *c) {
  const ir_graph *g = c->g;
  int nin = 0, nout = 0;
  for (int i = 0; i < g->nvalues; i++) {
    nin += g->values[i]->is_input;
    nout += g->values[i]->is_output;
  }
  if (nin != g->ninputs || nout != g->noutputs)
    return fail(c, "%d values are marked inputs and %d outputs, but the graph lists %d and %d", nin, nout,
                g->ninputs, g->noutputs);
  for (int i = 0; i < g->ninputs; i++) {
    const ir_value *v = g->inputs[i];
    if (!v || !v->is_input || v->id < 0 || v->id >= g->nvalues || g->values[v->id] != v)
      return fail(c, "graph input %d is not an input value of the graph", i);
  }
  if (g->noutputs == 0)
    return fail(c, "the graph has no outputs");
  for (int i = 0; i < g->noutputs; i++) {
    const ir_value *v = g->outputs[i];
    if (!v || !v->is_output || v->id < 0 || v->id >= g->nvalues || g->values[v->id] != v)
      return fail(c, "graph output %d is not an output value of the graph", i);
  }
  return 0;
}

static int check_nodes(ctx *c) {
  const ir_graph *g = c->g;
  char where[IR_ERR_LEN / 2], msg[IR_ERR_LEN], s1[96], s2[96];
  ir_type one, *want = &one;
  int cap = 1, rc = 0;
  for (int i = 0; i < g->nnodes && !rc; i++) {
    const ir_node *n = g->nodes[i];
    if (!n || n->id != i)
      return fail(c, "node slot %d holds a node whose id is %d", i, n ? n->id : -1);
    if (n->op >= IR_OP_COUNT)
      return fail(c, "node %d has an invalid op %d", i, (int)n->op);
    ir_node_where(n, where, sizeof where);
    for (int k = 0; k < n->nin; k++) {
      const ir_value *v = n->in[k];
      if (!v || v->id < 0 || v->id >= g->nvalues || g->values[v->id] != v)
        return fail(c, "%s: input %d is not a value of the graph", where, k);
      // Topological order: a producer comes before every reader.
      if (v->producer && v->producer->id >= i)
        return fail(c, "%s: input %d '%s' is produced later, by node %d", where, k, v->name, v->producer->id);
      int listed = 0;
      for (int u = 0; u < v->nuses; u++)
        listed += v->uses[u].node == n;
      if (listed != count_in(n, v))
        return fail(c, "%s: reads '%s' %d times but its use list says %d", where, v->name, count_in(n, v), listed);
    }
    for (int k = 0; k < n->nout; k++)
      if (!n->out[k] || n->out[k]->producer != n || n->out[k]->producer_slot != k)
        return fail(c, "%s: output %d does not name this node as its producer", where, k);
    if (n->nout > cap) {
      if (want != &one)
        free(want);
      want = malloc((size_t)n->nout * sizeof *want);
      if (!want)
        abort();
      cap = n->nout;
    }
    // Layout and epilogue attributes only on the ops that read them: a pass
    // that sets them elsewhere would have them silently ignored.
    unsigned m = ir_ops[n->op].attrs;
    if (n->a.nhwc && !(m & IR_A_LAYOUT)) {
      rc = fail(c, "%s: nhwc is set, but %s has no layout", where, ir_ops[n->op].name);
      break;
    }
    if ((n->a.act != IR_ACT_NONE || n->a.residual || n->a.pscale_on) && !(m & IR_A_EPILOGUE)) {
      rc = fail(c, "%s: an epilogue (activation or residual) is set, but %s has none", where, ir_ops[n->op].name);
      break;
    }
    // The stored types must be what inference says (it also checks arity
    // and attributes).
    if (ir_infer(n, want, msg, sizeof msg)) {
      rc = fail(c, "%s: %s", where, msg);
      break;
    }
    for (int k = 0; k < n->nout; k++)
      if (!ir_type_eq(&want[k], &n->out[k]->ty)) {
        rc = fail(c, "%s: output %d '%s' is %s but inference gives %s", where, k, n->out[k]->name,
                  ir_type_str(&n->out[k]->ty, s1, sizeof s1), ir_type_str(&want[k], s2, sizeof s2));
        break;
      }
  }
  if (want != &one)
    free(want);
  return rc;
}

int ir_verify(const ir_graph *g, const char *stage, char *err, size_t errlen) {
  ctx c = {g, stage, err, errlen};
  if (check_values(&c) || check_io(&c) || check_nodes(&c))
    return -1;
  return 0;
}
