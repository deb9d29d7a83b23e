// The XLA HLO text importer (docs/hlo.md): a recursive-descent parser for
// modules as JAX and XLA print them, then a walk of the entry computation
// that turns each instruction into IR nodes, inlining call and fusion.
//
// Parsing keeps attribute values as raw text; each op decodes the ones it
// needs (windows, padding, slices, dim_labels) when it is mapped, so unknown
// attributes (metadata, sharding, backend_config, ...) cost nothing. Every
// message names the place as FILE:LINE:COL. All parser memory comes from one
// arena freed at the end, so error paths need no cleanup.
#include "frontend/hlo.h"
#include "isa/isa.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CALL_DEPTH 64
#define MAX_FILE_BYTES (1ll << 31)

// ---------------------------------------------------------------- structures

typedef struct hshape hshape;
struct hshape {
  bool tuple;
  ir_type t;      // arrays
  hshape *el;     // tuples
  int nel;
};

typedef struct {
  const char *key;
  size_t pos, vpos, vend; // key's position; the raw value is s[vpos, vend)
} hattr;

typedef struct {
  const char *name, *opcode;
  size_t pos, oppos; // the instruction's and its opcode's positions
  hshape shape;
  int *ops;          // operands: indices into the computation's instructions
  int nops;
  hattr *attrs;
  int nattrs;
  double *lit;       // constant: the values, row-major
  int64_t nlit;
  int64_t param;     // parameter: its number
  bool root;
} hinstr;

typedef struct {
  const char *name;
  size_t pos;
  hinstr *ins;
  int n, cap;
  int root;
  bool entry;
} hcomp;

// A mapped value: an array (v) or a tuple of arrays (el). src, when set, is
// a broadcast's operand reshaped to the result's rank: elementwise readers use
// it instead and let the IR broadcast.
typedef struct {
  ir_value *v, *src;
  ir_value **el;
  int nel;
  bool tuple;
} hval;

typedef struct blk {
  struct blk *next;
  max_align_t data[];
} blk;

typedef struct {
  const char *s;
  size_t n, i;
  const char *file;
  char *err;
  size_t errlen;
  blk *arena;
  hcomp *comps;
  int ncomps, capcomps;
  ir_graph *g;
  int depth;     // call nesting while mapping
  int nmapped;   // instructions mapped so far (src_index of their nodes)
} hp;

static void *arena(hp *p, size_t n) {
  blk *b = calloc(1, sizeof *b + (n ? n : 1));
  if (!b) abort();
  b->next = p->arena;
  p->arena = b;
  return b->data;
}

static char *arena_str(hp *p, const char *s, size_t n) {
  char *d = arena(p, n + 1);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

// Grows an arena array of *cap elements of size sz to hold need.
static void *grow(hp *p, void *a, int *cap, int need, size_t sz) {
  if (need <= *cap) return a;
  int nc = *cap ? *cap * 2 : 8;
  while (nc < need) nc *= 2;
  void *b = arena(p, (size_t)nc * sz);
  if (*cap) memcpy(b, a, (size_t)*cap * sz);
  *cap = nc;
  return b;
}

// ---------------------------------------------------------------- errors

static void line_col(const hp *p, size_t pos, int *line, int *col) {
  *line = 1, *col = 1;
  for (size_t k = 0; k < pos && k < p->n; k++) {
    if (p->s[k] == '\n') ++*line, *col = 1;
    else ++*col;
  }
}

static int fail_at(hp *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(hp *p, size_t pos, const char *fmt, ...) {
  char msg[IR_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int line, col;
  line_col(p, pos, &line, &col);
  snprintf(p->err, p->errlen, "%s:%d:%d: %s", p->file, line, col, msg);
  return -1;
}

// An error about an instruction: "FILE:L:C: 'add.3' (add): reason".
static int fail_ins(hp *p, const hinstr *ins, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_ins(hp *p, const hinstr *ins, const char *fmt, ...) {
  char msg[IR_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fail_at(p, ins->oppos, "'%.100s' (%.40s): %s", ins->name, ins->opcode, msg);
}

// ---------------------------------------------------------------- lexing

static int peek(const hp *p) { return p->i < p->n ? (unsigned char)p->s[p->i] : -1; }
static int peek_at(const hp *p, size_t k) { return k < p->n ? (unsigned char)p->s[k] : -1; }

static void skip_ws(hp *p) {
  for (;;) {
    int c = peek(p);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') p->i++;
    else if (c == '/' && peek_at(p, p->i + 1) == '/') {
      while (p->i < p->n && p->s[p->i] != '\n') p->i++;
    } else if (c == '/' && peek_at(p, p->i + 1) == '*') {
      size_t k = p->i + 2;
      while (k + 1 < p->n && !(p->s[k] == '*' && p->s[k + 1] == '/')) k++;
      p->i = k + 1 < p->n ? k + 2 : p->n;
    } else return;
  }
}

static bool accept(hp *p, int c) {
  skip_ws(p);
  if (peek(p) != c) return false;
  p->i++;
  return true;
}

static const char *describe(hp *p, char *buf, size_t len) {
  int c = peek(p);
  if (c < 0) return "the end of the file";
  if (isprint(c)) snprintf(buf, len, "'%c'", c);
  else snprintf(buf, len, "byte 0x%02x", c);
  return buf;
}

static int expect(hp *p, int c, const char *what) {
  if (accept(p, c)) return 0;
  char b[16];
  return fail_at(p, p->i, "expected '%c' %s, found %s", c, what, describe(p, b, sizeof b));
}

static bool name_start(int c) { return isalpha(c) || c == '_'; }
static bool name_char(int c) { return isalnum(c) || c == '_' || c == '.' || c == '-'; }

// Length of the name at position k (without a '%' sigil), 0 if none.
static size_t name_len(const hp *p, size_t k) {
  if (!name_start(peek_at(p, k))) return 0;
  size_t e = k + 1;
  while (name_char(peek_at(p, e)) && !(peek_at(p, e) == '-' && peek_at(p, e + 1) == '>')) e++;
  return e - k;
}

// A name, '%' optional; NULL with an error if there is none.
static const char *name(hp *p, const char *what) {
  skip_ws(p);
  size_t start = p->i, k = p->i;
  if (peek(p) == '%') k++;
  size_t n = name_len(p, k);
  if (!n) {
    char b[16];
    fail_at(p, start, "expected %s, found %s", what, describe(p, b, sizeof b));
    return NULL;
  }
  p->i = k + n;
  return arena_str(p, p->s + k, n);
}

// Is the word w next (followed by a character that cannot continue a name)?
static bool at_word(hp *p, const char *w) {
  skip_ws(p);
  size_t n = strlen(w);
  return p->i + n <= p->n && !memcmp(p->s + p->i, w, n) && !name_char(peek_at(p, p->i + n));
}

// A non-negative integer.
static int integer(hp *p, int64_t max, const char *what, int64_t *out) {
  skip_ws(p);
  size_t start = p->i;
  if (!isdigit(peek(p))) {
    char b[16];
    return fail_at(p, start, "expected %s, found %s", what, describe(p, b, sizeof b));
  }
  int64_t v = 0;
  while (isdigit(peek(p))) {
    v = v * 10 + (peek(p) - '0');
    if (v > max) return fail_at(p, start, "%s is larger than %lld", what, (long long)max);
    p->i++;
  }
  *out = v;
  return 0;
}

// ---------------------------------------------------------------- shapes

static int dtype_of(hp *p, size_t pos, const char *s, size_t n, ir_dtype *dt) {
  static const struct { const char *hlo; ir_dtype dt; } map[] = {
      {"pred", IR_DT_BOOL}, {"s8", IR_DT_I8}, {"s16", IR_DT_I16}, {"s32", IR_DT_I32}, {"s64", IR_DT_I64},
      {"u8", IR_DT_U8}, {"u16", IR_DT_U16}, {"u32", IR_DT_U32}, {"u64", IR_DT_U64}, {"f16", IR_DT_F16},
      {"bf16", IR_DT_BF16}, {"f32", IR_DT_F32}, {"f64", IR_DT_F64},
  };
  for (size_t k = 0; k < sizeof map / sizeof *map; k++)
    if (strlen(map[k].hlo) == n && !memcmp(map[k].hlo, s, n)) {
      *dt = map[k].dt;
      return 0;
    }
  return fail_at(p, pos, "element type '%.*s' is not supported (pred, s8..s64, u8..u64, f16, bf16, f32, f64 are)",
                 (int)(n > 40 ? 40 : n), s);
}

// Skips a balanced group opened at p->i ('{', '[' or '('), strings inside
// included. Mismatched closers are tolerated: values are decoded later.
static int skip_group(hp *p) {
  size_t open = p->i;
  int depth = 0;
  while (p->i < p->n) {
    char c = p->s[p->i++];
    if (c == '"') {
      while (p->i < p->n && p->s[p->i] != '"') p->i += p->s[p->i] == '\\' ? 2 : 1;
      if (p->i >= p->n) return fail_at(p, open, "unterminated string in this group");
      p->i++;
    } else if (c == '{' || c == '[' || c == '(') depth++;
    else if (c == '}' || c == ']' || c == ')') {
      if (--depth == 0) return 0;
    }
  }
  p->i = p->n;
  return fail_at(p, open, "unterminated '%c'", p->s[open]);
}

static int shape(hp *p, hshape *out) {
  skip_ws(p);
  size_t start = p->i;
  memset(out, 0, sizeof *out);
  if (accept(p, '(')) {
    out->tuple = true;
    int cap = 0;
    if (accept(p, ')')) return 0;
    do {
      out->el = grow(p, out->el, &cap, out->nel + 1, sizeof *out->el);
      if (shape(p, &out->el[out->nel++])) return -1;
    } while (accept(p, ','));
    return expect(p, ')', "after a tuple shape's elements");
  }
  size_t n = 0;
  while (isalnum(peek_at(p, p->i + n))) n++;
  if (!n) {
    char b[16];
    return fail_at(p, start, "expected a shape such as f32[2,3], found %s", describe(p, b, sizeof b));
  }
  if (dtype_of(p, start, p->s + start, n, &out->t.dtype)) return -1;
  p->i += n;
  if (peek(p) != '[') return fail_at(p, p->i, "expected '[' after the element type");
  p->i++;
  int64_t elems = 1;
  if (!accept(p, ']')) {
    do {
      skip_ws(p);
      if (peek(p) == '?' || peek(p) == '<')
        return fail_at(p, p->i, "dynamic dimensions are not supported: every dimension must be a number");
      if (out->t.rank == IR_MAX_DIMS) return fail_at(p, p->i, "more than %d dimensions", IR_MAX_DIMS);
      int64_t d;
      if (integer(p, IR_MAX_ELEMS, "a dimension", &d)) return -1;
      out->t.dims[out->t.rank++] = d;
      if (d && elems > IR_MAX_ELEMS / d) return fail_at(p, start, "the shape has more than 2^40 elements");
      elems *= d;
    } while (accept(p, ','));
    if (expect(p, ']', "after the dimensions")) return -1;
  }
  // A layout ({1,0}, {0:T(8,128)}) or the '{' that opens a computation body?
  size_t save = p->i;
  skip_ws(p);
  if (peek(p) == '{') {
    size_t k = p->i + 1;
    while (k < p->n && isspace((unsigned char)p->s[k])) k++;
    if (isdigit(peek_at(p, k)) || peek_at(p, k) == '}') return skip_group(p);
  }
  p->i = save;
  return 0;
}

static char *shape_str(const hshape *s, char *buf, size_t len) {
  if (!s->tuple) return ir_type_str(&s->t, buf, len);
  size_t k = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < s->nel && k < len; i++) {
    char e[96];
    k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", shape_str(&s->el[i], e, sizeof e));
  }
  if (k < len) snprintf(buf + k, len - k, ")");
  return buf;
}

// ---------------------------------------------------------------- literals

// One number: digits, inf, nan, true, false (with a sign).
static int number(hp *p, double *out) {
  skip_ws(p);
  size_t start = p->i, e = p->i;
  if (p->i + 3 <= p->n && !memcmp(p->s + p->i, "...", 3))
    return fail_at(p, start, "the constant's values are elided ('{...}'): the module cannot be run without them");
  while (e < p->n && (isalnum((unsigned char)p->s[e]) || strchr("+-.", p->s[e]))) e++;
  char buf[80];
  size_t n = e - start;
  if (!n || n >= sizeof buf) {
    char b[16];
    return fail_at(p, start, "expected a number, found %s", describe(p, b, sizeof b));
  }
  memcpy(buf, p->s + start, n);
  buf[n] = 0;
  p->i = e;
  if (!strcmp(buf, "true")) return *out = 1, 0;
  if (!strcmp(buf, "false")) return *out = 0, 0;
  const char *t = buf + (buf[0] == '-' || buf[0] == '+');
  if (!strcmp(t, "nan")) return *out = NAN, 0;
  if (!strcmp(t, "inf")) return *out = buf[0] == '-' ? -INFINITY : INFINITY, 0;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (*end || (!isdigit((unsigned char)*t) && *t != '.'))
    return fail_at(p, start, "'%s' is not a number", buf);
  *out = v;
  return 0;
}

// Values of a literal, nested braces flattened, into ins->lit.
static int literal_values(hp *p, hinstr *ins, int *cap, int depth) {
  if (depth > IR_MAX_DIMS) return fail_at(p, p->i, "literal nested deeper than %d", IR_MAX_DIMS);
  if (accept(p, '{')) {
    if (accept(p, '}')) return 0;
    do
      if (literal_values(p, ins, cap, depth + 1)) return -1;
    while (accept(p, ','));
    return expect(p, '}', "after the literal's values");
  }
  if (ins->nlit >= IR_FOLD_MAX_BYTES) return fail_at(p, p->i, "the literal is too large");
  int need = (int)ins->nlit + 1;
  ins->lit = grow(p, ins->lit, cap, need, sizeof *ins->lit);
  return number(p, &ins->lit[ins->nlit++]);
}

static int literal(hp *p, hinstr *ins) {
  if (ins->shape.tuple) return fail_at(p, ins->pos, "tuple constants are not supported");
  size_t start = p->i;
  skip_ws(p);
  start = p->i;
  int cap = 0;
  if (literal_values(p, ins, &cap, 0)) return -1;
  int64_t want = ir_nelems(&ins->shape.t);
  if (ins->nlit != want)
    return fail_at(p, start, "the literal has %lld values but the shape %s has %lld", (long long)ins->nlit,
                   ir_type_str(&ins->shape.t, (char[64]){0}, 64), (long long)want);
  return 0;
}

// ---------------------------------------------------------------- computations

static int find_ins(const hcomp *c, const char *nm) {
  for (int k = 0; k < c->n; k++)
    if (!strcmp(c->ins[k].name, nm)) return k;
  return -1;
}

static int find_comp(const hp *p, const char *nm) {
  for (int k = 0; k < p->ncomps; k++)
    if (!strcmp(p->comps[k].name, nm)) return k;
  return -1;
}

static int add_ins(hp *p, hcomp *c, const hinstr *ins) {
  if (find_ins(c, ins->name) >= 0)
    return fail_at(p, ins->pos, "'%s' is defined twice in computation '%s'", ins->name, c->name);
  c->ins = grow(p, c->ins, &c->cap, c->n + 1, sizeof *c->ins);
  c->ins[c->n++] = *ins;
  return 0;
}

// An attribute value as raw text, whatever its form.
static int attr_value(hp *p, hattr *a) {
  skip_ws(p);
  a->vpos = p->i;
  int c = peek(p);
  if (c == '{' || c == '[' || c == '(') {
    if (skip_group(p)) return -1;
  } else if (c == '"') {
    p->i++;
    while (p->i < p->n && p->s[p->i] != '"') p->i += p->s[p->i] == '\\' ? 2 : 1;
    if (p->i >= p->n) return fail_at(p, a->vpos, "unterminated string");
    p->i++;
  } else {
    while (p->i < p->n && !strchr(",; \t\r\n{}()[]", p->s[p->i])) p->i++;
    if (p->i == a->vpos) {
      char b[16];
      return fail_at(p, p->i, "expected the value of '%s', found %s", a->key, describe(p, b, sizeof b));
    }
  }
  a->vend = p->i;
  return 0;
}

// (',' key '=' value)*
static int attr_list(hp *p, hattr **out, int *n) {
  int cap = 0;
  while (accept(p, ',')) {
    hattr a = {0};
    skip_ws(p);
    a.pos = p->i;
    if (!(a.key = name(p, "an attribute name")) || expect(p, '=', "after the attribute name") || attr_value(p, &a))
      return -1;
    *out = grow(p, *out, &cap, *n + 1, sizeof **out);
    (*out)[(*n)++] = a;
  }
  return 0;
}

static int operand(hp *p, hcomp *c, int *out) {
  skip_ws(p);
  size_t start = p->i;
  // A shape first ("f32[2] x", "(f32[], s32[]) t")? Then an operand name, or an
  // inline constant ("s32[] constant(5)").
  size_t n = name_len(p, p->i);
  bool has_shape = peek(p) == '(' || (n && peek_at(p, p->i + n) == '[');
  hinstr k = {0};
  if (has_shape && shape(p, &k.shape)) return -1;
  skip_ws(p);
  size_t npos = p->i;
  const char *nm = name(p, "an operand");
  if (!nm) return -1;
  if (has_shape && !strcmp(nm, "constant") && peek(p) == '(') {
    p->i++;
    char buf[64];
    snprintf(buf, sizeof buf, "constant@%zu", npos);
    k.name = arena_str(p, buf, strlen(buf));
    k.opcode = "constant";
    k.pos = start, k.oppos = npos;
    if (literal(p, &k) || expect(p, ')', "after the literal") || add_ins(p, c, &k)) return -1;
    *out = c->n - 1;
    return 0;
  }
  int at = find_ins(c, nm);
  if (at < 0) return fail_at(p, npos, "operand '%s' is not defined before this point in computation '%s'", nm, c->name);
  *out = at;
  return 0;
}

static int instruction(hp *p, hcomp *c) {
  hinstr ins = {0};
  skip_ws(p);
  ins.pos = p->i;
  if (at_word(p, "ROOT")) p->i += 4, ins.root = true;
  if (!(ins.name = name(p, "an instruction name")) || expect(p, '=', "after the instruction name") ||
      shape(p, &ins.shape))
    return -1;
  skip_ws(p);
  ins.oppos = p->i;
  if (!(ins.opcode = name(p, "an opcode")) || expect(p, '(', "after the opcode")) return -1;
  if (!strcmp(ins.opcode, "constant")) {
    if (literal(p, &ins) || expect(p, ')', "after the literal")) return -1;
  } else if (!strcmp(ins.opcode, "parameter")) {
    if (integer(p, 1 << 20, "the parameter's number", &ins.param) || expect(p, ')', "after the parameter's number"))
      return -1;
  } else if (!accept(p, ')')) {
    int cap = 0;
    do {
      int at = -1;
      if (operand(p, c, &at)) return -1;
      ins.ops = grow(p, ins.ops, &cap, ins.nops + 1, sizeof *ins.ops);
      ins.ops[ins.nops++] = at;
    } while (accept(p, ','));
    if (expect(p, ')', "after the operands")) return -1;
  }
  if (attr_list(p, &ins.attrs, &ins.nattrs)) return -1;
  if (ins.root && c->root >= 0) return fail_at(p, ins.pos, "computation '%s' has a second ROOT", c->name);
  if (add_ins(p, c, &ins)) return -1;
  if (ins.root) c->root = c->n - 1;
  return 0;
}

static int computation(hp *p) {
  hcomp c = {.root = -1};
  skip_ws(p);
  c.pos = p->i;
  if (at_word(p, "ENTRY")) p->i += 5, c.entry = true;
  if (!(c.name = name(p, "a computation name"))) return -1;
  if (find_comp(p, c.name) >= 0) return fail_at(p, c.pos, "computation '%s' is defined twice", c.name);
  skip_ws(p);
  if (peek(p) == '(') { // (x: f32[], y: f32[]) -> f32[]
    hshape ignored;
    if (skip_group(p)) return -1;
    skip_ws(p);
    if (peek(p) != '-' || peek_at(p, p->i + 1) != '>') return fail_at(p, p->i, "expected '->' after the parameters");
    p->i += 2;
    if (shape(p, &ignored)) return -1;
  }
  if (expect(p, '{', "to open the computation's body")) return -1;
  while (!accept(p, '}')) {
    if (peek(p) < 0) return fail_at(p, p->i, "the file ends inside computation '%s' (expected '}')", c.name);
    if (instruction(p, &c)) return -1;
  }
  if (!c.n) return fail_at(p, c.pos, "computation '%s' has no instructions", c.name);
  if (c.root < 0) c.root = c.n - 1;
  hattr *attrs = NULL;
  int nattrs = 0;
  if (attr_list(p, &attrs, &nattrs)) return -1; // execution_thread="..."
  p->comps = grow(p, p->comps, &p->capcomps, p->ncomps + 1, sizeof *p->comps);
  p->comps[p->ncomps++] = c;
  return 0;
}

static int module(hp *p) {
  if (at_word(p, "HloModule")) {
    p->i += 9;
    hattr *attrs = NULL;
    int nattrs = 0;
    if (!name(p, "the module's name") || attr_list(p, &attrs, &nattrs)) return -1;
  }
  skip_ws(p);
  while (peek(p) >= 0) {
    if (computation(p)) return -1;
    skip_ws(p);
  }
  if (!p->ncomps) return fail_at(p, p->i, "no computation in the module");
  int entries = 0;
  for (int k = 0; k < p->ncomps; k++) entries += p->comps[k].entry;
  if (entries > 1) return fail_at(p, p->comps[p->ncomps - 1].pos, "more than one ENTRY computation");
  return 0;
}

// ---------------------------------------------------------------- attributes

static const hattr *attr(const hinstr *ins, const char *key) {
  for (int k = 0; k < ins->nattrs; k++)
    if (!strcmp(ins->attrs[k].key, key)) return &ins->attrs[k];
  return NULL;
}

static const hattr *need_attr(hp *p, const hinstr *ins, const char *key) {
  const hattr *a = attr(ins, key);
  if (!a) fail_ins(p, ins, "the attribute '%s' is missing", key);
  return a;
}

// An attribute's raw text in buf (truncated values are refused).
static int attr_text(hp *p, const hattr *a, char *buf, size_t len) {
  size_t n = a->vend - a->vpos;
  if (n >= len) return fail_at(p, a->vpos, "the value of '%s' is too long", a->key);
  memcpy(buf, p->s + a->vpos, n);
  buf[n] = 0;
  return 0;
}

// A list of integers "{1,0}" (or "{}") into out.
static int attr_ints(hp *p, const hattr *a, int64_t *out, int max, int *n) {
  char buf[512];
  if (attr_text(p, a, buf, sizeof buf)) return -1;
  char *s = buf;
  *n = 0;
  if (*s != '{') return fail_at(p, a->vpos, "'%s' should be a list such as {1,0}", a->key);
  s++;
  while (isspace((unsigned char)*s)) s++;
  if (*s == '}') return 0;
  for (;;) {
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (e == s || errno) return fail_at(p, a->vpos, "'%s' should be a list of integers", a->key);
    if (*n == max) return fail_at(p, a->vpos, "'%s' has more than %d values", a->key, max);
    out[(*n)++] = v;
    s = e;
    while (isspace((unsigned char)*s)) s++;
    if (*s == '}') return s[1] ? fail_at(p, a->vpos, "'%s' should be a list of integers", a->key) : 0;
    if (*s++ != ',') return fail_at(p, a->vpos, "'%s' should be a list of integers", a->key);
  }
}

static int attr_int(hp *p, const hattr *a, int64_t *out) {
  char buf[64], *e;
  if (attr_text(p, a, buf, sizeof buf)) return -1;
  errno = 0;
  *out = strtoll(buf, &e, 10);
  if (e == buf || *e || errno) return fail_at(p, a->vpos, "'%s' should be an integer", a->key);
  return 0;
}

// "3x3" (or "3"): n numbers separated by 'x'; "1_2x0_0" pairs with '_' when
// pairs (lo, hi) are wanted.
static int xlist(hp *p, const hattr *a, const char *s, size_t len, int64_t *out, int per, int max, int *n) {
  *n = 0;
  size_t k = 0;
  while (k < len) {
    for (int j = 0; j < per; j++) {
      char *e;
      char tmp[32];
      size_t m = 0;
      while (k + m < len && m < sizeof tmp - 1 && (isdigit((unsigned char)s[k + m]) || (m == 0 && s[k] == '-'))) m++;
      memcpy(tmp, s + k, m);
      tmp[m] = 0;
      long long v = strtoll(tmp, &e, 10);
      if (!m || *e || (*n == max)) return fail_at(p, a->vpos, "cannot read '%.*s' in '%s'", (int)len, s, a->key);
      out[(*n)++] = v;
      k += m;
      if (j + 1 < per) {
        if (k >= len || s[k] != '_') return fail_at(p, a->vpos, "cannot read '%.*s' in '%s'", (int)len, s, a->key);
        k++;
      }
    }
    if (k < len) {
      if (s[k] != 'x') return fail_at(p, a->vpos, "cannot read '%.*s' in '%s'", (int)len, s, a->key);
      k++;
    }
  }
  return 0;
}

// A window: size, stride, pad, lhs_dilate, rhs_dilate, with defaults.
typedef struct {
  int n;
  int64_t size[IR_MAX_DIMS], stride[IR_MAX_DIMS], lo[IR_MAX_DIMS], hi[IR_MAX_DIMS];
  int64_t lhs_dilate[IR_MAX_DIMS], rhs_dilate[IR_MAX_DIMS];
} hwindow;

static int window(hp *p, const hinstr *ins, int n, hwindow *w) {
  memset(w, 0, sizeof *w);
  w->n = n;
  for (int d = 0; d < n; d++) w->size[d] = w->stride[d] = w->lhs_dilate[d] = w->rhs_dilate[d] = 1;
  const hattr *a = attr(ins, "window");
  if (!a) {
    if (n) return fail_ins(p, ins, "the attribute 'window' is missing");
    return 0;
  }
  char buf[1024];
  if (attr_text(p, a, buf, sizeof buf)) return -1;
  size_t len = strlen(buf);
  if (len < 2 || buf[0] != '{' || buf[len - 1] != '}') return fail_at(p, a->vpos, "'window' should be {size=...}");
  buf[len - 1] = 0;
  bool got_size = false;
  for (char *s = buf + 1; *s;) {
    while (*s == ' ' || *s == ',') s++;
    if (!*s) break;
    char *eq = strchr(s, '='), *end = s + strcspn(s, " ,");
    if (!eq || eq > end) return fail_at(p, a->vpos, "cannot read the window's '%.*s'", (int)(end - s), s);
    size_t kl = (size_t)(eq - s);
    int64_t tmp[2 * IR_MAX_DIMS];
    int m, per = kl == 3 && !memcmp(s, "pad", 3) ? 2 : 1;
    if (xlist(p, a, eq + 1, (size_t)(end - eq - 1), tmp, per, 2 * IR_MAX_DIMS, &m)) return -1;
    if (m != n * per)
      return fail_at(p, a->vpos, "the window's '%.*s' has %d dimensions, the operand has %d", (int)kl, s, m / per, n);
    int64_t *dst = NULL;
#define KEY(k) (kl == strlen(k) && !memcmp(s, k, kl))
    if (KEY("size")) dst = w->size, got_size = true;
    else if (KEY("stride")) dst = w->stride;
    else if (KEY("lhs_dilate")) dst = w->lhs_dilate;
    else if (KEY("rhs_dilate")) dst = w->rhs_dilate;
    else if (KEY("pad"))
      for (int d = 0; d < n; d++) w->lo[d] = tmp[2 * d], w->hi[d] = tmp[2 * d + 1];
    else if (KEY("rhs_reversal")) {
      for (int d = 0; d < n; d++)
        if (tmp[d]) return fail_ins(p, ins, "window reversal is not supported");
    } else return fail_at(p, a->vpos, "unknown window field '%.*s'", (int)kl, s);
#undef KEY
    if (dst)
      for (int d = 0; d < n; d++) {
        if (tmp[d] < 1) return fail_at(p, a->vpos, "the window's '%.*s' must be positive", (int)kl, s);
        dst[d] = tmp[d];
      }
    s = end;
  }
  if (!got_size && n) return fail_at(p, a->vpos, "the window has no size");
  return 0;
}

// The computation named by an attribute (to_apply, calls).
static int comp_attr(hp *p, const hinstr *ins, const char *key, int *out) {
  const hattr *a = need_attr(p, ins, key);
  if (!a) return -1;
  char buf[512];
  if (attr_text(p, a, buf, sizeof buf)) return -1;
  const char *nm = buf[0] == '%' ? buf + 1 : buf;
  if ((*out = find_comp(p, nm)) < 0) return fail_at(p, a->vpos, "computation '%s' is not defined", nm);
  return 0;
}

// ---------------------------------------------------------------- emitting

static int op_find(const char *nm) {
  for (int k = 0; k < IR_OP_COUNT; k++)
    if (!strcmp(ir_ops[k].name, nm)) return k;
  return -1;
}

// An IR node for ins (name: the instruction's, with /suffix for helpers),
// inferred and folded if its inputs are constants. a may be NULL.
static ir_value *emit(hp *p, const hinstr *ins, ir_op op, ir_value *const *in, int nin, const ir_attrs *a,
                      const char *suffix) {
  char nm[300];
  if (suffix) snprintf(nm, sizeof nm, "%.200s/%s", ins->name, suffix);
  else snprintf(nm, sizeof nm, "%.200s", ins->name);
  const char *names[1] = {nm};
  ir_node *n = ir_add_node(p->g, op, ins->name, in, nin, 1, names);
  n->src_index = p->nmapped;
  if (a) n->a = *a;
  char msg[IR_ERR_LEN];
  ir_type t;
  if (ir_infer(n, &t, msg, sizeof msg)) return fail_ins(p, ins, "%s", msg), NULL;
  n->out[0]->ty = t;
  ir_value *out = n->out[0];
  if (ir_fold_node(p->g, n, msg, sizeof msg) < 0) return fail_ins(p, ins, "%s", msg), NULL;
  return out;
}

static ir_value *emit_op(hp *p, const hinstr *ins, const char *opname, ir_value *const *in, int nin,
                         const char *suffix) {
  int op = op_find(opname);
  if (op < 0) return fail_ins(p, ins, "not supported yet: needs the IR op '%s'", opname), NULL;
  return emit(p, ins, (ir_op)op, in, nin, NULL, suffix);
}

static ir_value *reshape(hp *p, const hinstr *ins, ir_value *x, int rank, const int64_t *dims, const char *suffix) {
  ir_type t = ir_type_make(x->ty.dtype, rank, dims);
  if (ir_type_eq(&t, &x->ty)) return x;
  ir_attrs a = {.ndims = rank};
  memcpy(a.dims, dims, (size_t)rank * sizeof *dims);
  return emit(p, ins, IR_OP_RESHAPE, &x, 1, &a, suffix);
}

static ir_value *transpose(hp *p, const hinstr *ins, ir_value *x, const int *perm, const char *suffix) {
  bool id = true;
  ir_attrs a = {0};
  for (int d = 0; d < x->ty.rank; d++) id &= perm[d] == d, a.perm[d] = perm[d];
  if (id) return x;
  return emit(p, ins, IR_OP_TRANSPOSE, &x, 1, &a, suffix);
}

static ir_value *constant(hp *p, const hinstr *ins, const ir_type *t, const double *vals, const char *suffix) {
  void *data = calloc(1, ir_nbytes(t) ? ir_nbytes(t) : 1);
  if (!data) abort();
  int64_t n = ir_nelems(t);
  for (int64_t k = 0; k < n; k++) {
    double v = vals ? vals[k] : 0;
    if (ir_dtype_is_float(t->dtype)) ir_set_float(data, t->dtype, k, v);
    else ir_set_int(data, t->dtype, k, t->dtype == IR_DT_BOOL ? v != 0 : (int64_t)v);
  }
  char nm[300];
  if (suffix) snprintf(nm, sizeof nm, "%.200s/%s", ins->name, suffix);
  else snprintf(nm, sizeof nm, "%.200s", ins->name);
  return ir_add_const(p->g, nm, t, data);
}

static ir_value *scalar_const(hp *p, const hinstr *ins, ir_dtype dt, double v, const char *suffix) {
  ir_type t = {.dtype = dt};
  return constant(p, ins, &t, &v, suffix);
}

// Is v a constant whose elements all equal one value (returned in *out)?
static bool splat(const ir_value *v, double *out) {
  if (!v || !v->data) return false;
  int64_t n = ir_nelems(&v->ty);
  if (!n) return false;
  double first = ir_get_float(v->data, v->ty.dtype, 0);
  for (int64_t k = 1; k < n; k++) {
    double x = ir_get_float(v->data, v->ty.dtype, k);
    if (!(x == first || (isnan(x) && isnan(first)))) return false;
  }
  *out = first;
  return true;
}

// ---------------------------------------------------------------- ops

typedef struct {
  hval *vals;   // per instruction of the computation
  const hval *args;
  int nargs;
} frame;

static int map_comp(hp *p, int ci, const hval *args, int nargs, hval *out);

// The operand k as an array value (tuples refused).
static ir_value *arr(hp *p, const hinstr *ins, const frame *f, int k) {
  const hval *h = &f->vals[ins->ops[k]];
  if (h->tuple) return fail_ins(p, ins, "operand %d is a tuple where an array is expected", k), NULL;
  return h->v;
}

static int arity(hp *p, const hinstr *ins, int lo, int hi) {
  if (ins->nops < lo || ins->nops > hi) {
    if (lo == hi) return fail_ins(p, ins, "takes %d operand%s, not %d", lo, lo == 1 ? "" : "s", ins->nops);
    return fail_ins(p, ins, "takes %d to %d operands, not %d", lo, hi, ins->nops);
  }
  return 0;
}

// Operand k for an elementwise op: a broadcast's reshaped operand when the
// other operands carry the full shape, so the IR broadcasts it.
static ir_value *elem_operand(hp *p, const hinstr *ins, const frame *f, int k, bool *full) {
  const hval *h = &f->vals[ins->ops[k]];
  if (h->tuple) return fail_ins(p, ins, "operand %d is a tuple where an array is expected", k), NULL;
  *full = !h->src;
  return h->v;
}

static ir_value *elementwise(hp *p, const hinstr *ins, const frame *f, ir_op op, const char *opname) {
  int n = ins->nops;
  ir_value *in[3];
  bool full[3];
  for (int k = 0; k < n; k++)
    if (!(in[k] = elem_operand(p, ins, f, k, &full[k]))) return NULL;
  // Use broadcast sources for all but one full-shaped operand.
  int keep = -1;
  for (int k = 0; k < n; k++)
    if (full[k]) keep = k;
  if (keep < 0) keep = 0;
  for (int k = 0; k < n; k++)
    if (k != keep && f->vals[ins->ops[k]].src) in[k] = f->vals[ins->ops[k]].src;
  if (opname) return emit_op(p, ins, opname, in, n, NULL);
  return emit(p, ins, op, in, n, NULL, NULL);
}

static int unary(hp *p, const hinstr *ins, const frame *f, hval *out) {
  static const struct { const char *hlo, *ir; } map[] = {
      {"exponential", "exp"}, {"log", "log"}, {"sqrt", "sqrt"}, {"rsqrt", "rsqrt"}, {"abs", "abs"},
      {"tanh", "tanh"}, {"logistic", "sigmoid"}, {"negate", "neg"}, {"not", "not"}, {"erf", "erf"},
  };
  if (arity(p, ins, 1, 1)) return -1;
  ir_value *x = arr(p, ins, f, 0);
  if (!x) return -1;
  for (size_t k = 0; k < sizeof map / sizeof *map; k++) {
    if (strcmp(map[k].hlo, ins->opcode)) continue;
    if (!strcmp(map[k].ir, "neg") && op_find("neg") < 0) { // 0 - x, exact but for the sign of zero
      ir_value *in[2] = {scalar_const(p, ins, x->ty.dtype, 0, "zero"), x};
      return (out->v = emit(p, ins, IR_OP_SUB, in, 2, NULL, NULL)) ? 0 : -1;
    }
    return (out->v = emit_op(p, ins, map[k].ir, &x, 1, NULL)) ? 0 : -1;
  }
  return fail_ins(p, ins, "unsupported instruction");
}

static int binary(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 2, 2)) return -1;
  const char *op = ins->opcode;
  ir_value *a = arr(p, ins, f, 0), *b = arr(p, ins, f, 1);
  if (!a || !b) return -1;
  if (!strcmp(op, "add")) out->v = elementwise(p, ins, f, IR_OP_ADD, NULL);
  else if (!strcmp(op, "subtract")) out->v = elementwise(p, ins, f, IR_OP_SUB, NULL);
  else if (!strcmp(op, "multiply")) out->v = elementwise(p, ins, f, IR_OP_MUL, NULL);
  else if (!strcmp(op, "divide")) out->v = elementwise(p, ins, f, IR_OP_DIV, NULL);
  else if (!strcmp(op, "power")) out->v = elementwise(p, ins, f, 0, "pow");
  else if (!strcmp(op, "and")) out->v = elementwise(p, ins, f, 0, "and");
  else if (!strcmp(op, "or")) out->v = elementwise(p, ins, f, 0, "or");
  else { // maximum, minimum
    // max(x, c) and min(x, c) with a constant c are relu or clip, exactly,
    // and fuse into a matmul's or conv's epilogue.
    bool max = !strcmp(op, "maximum");
    double c;
    ir_value *x = splat(b, &c) ? a : splat(a, &c) ? b : NULL;
    if (!x) out->v = elementwise(p, ins, f, 0, max ? "max" : "min");
    else {
      ir_attrs at = {.lo = -INFINITY, .hi = INFINITY};
      if (max) at.lo = c;
      else at.hi = c;
      if (max && c == 0) out->v = emit(p, ins, IR_OP_RELU, &x, 1, NULL, NULL);
      else out->v = emit(p, ins, IR_OP_CLIP, &x, 1, &at, NULL);
      if (out->v && !ir_type_eq(&out->v->ty, &ins->shape.t)) { // x was the broadcast side
        ir_value *in[2] = {out->v, constant(p, ins, &ins->shape.t, NULL, "zeros")};
        out->v = emit(p, ins, IR_OP_ADD, in, 2, NULL, "full");
      }
    }
  }
  return out->v ? 0 : -1;
}

static int compare(hp *p, const hinstr *ins, const frame *f, hval *out) {
  static const struct { const char *dir, *ir; } map[] = {
      {"EQ", "equal"}, {"NE", "not_equal"}, {"LT", "less"}, {"LE", "less_equal"}, {"GT", "greater"},
      {"GE", "greater_equal"},
  };
  if (arity(p, ins, 2, 2)) return -1;
  const hattr *a = need_attr(p, ins, "direction");
  char dir[16];
  if (!a || attr_text(p, a, dir, sizeof dir)) return -1;
  for (size_t k = 0; k < sizeof map / sizeof *map; k++)
    if (!strcmp(dir, map[k].dir)) return (out->v = elementwise(p, ins, f, 0, map[k].ir)) ? 0 : -1;
  return fail_at(p, a->vpos, "unknown comparison direction '%s' (EQ, NE, LT, LE, GT, GE)", dir);
}

static int select_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 3, 3)) return -1;
  return (out->v = elementwise(p, ins, f, 0, "where")) ? 0 : -1;
}

static int clamp(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 3, 3)) return -1;
  ir_value *lo = arr(p, ins, f, 0), *x = arr(p, ins, f, 1), *hi = arr(p, ins, f, 2);
  if (!lo || !x || !hi) return -1;
  double l, h;
  if (splat(lo, &l) && splat(hi, &h)) {
    ir_attrs at = {.lo = l, .hi = h};
    return (out->v = emit(p, ins, IR_OP_CLIP, &x, 1, &at, NULL)) ? 0 : -1;
  }
  ir_value *in[2] = {x, hi};
  ir_value *m = emit_op(p, ins, "min", in, 2, "min");
  if (!m) return -1;
  in[0] = m, in[1] = lo;
  return (out->v = emit_op(p, ins, "max", in, 2, NULL)) ? 0 : -1;
}

static int convert(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  ir_value *x = arr(p, ins, f, 0);
  if (!x) return -1;
  if (x->ty.dtype == ins->shape.t.dtype) return out->v = x, 0;
  ir_attrs a = {.to = ins->shape.t.dtype};
  return (out->v = emit(p, ins, IR_OP_CAST, &x, 1, &a, NULL)) ? 0 : -1;
}

static int reshape_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  ir_value *x = arr(p, ins, f, 0);
  if (!x) return -1;
  if (ins->shape.tuple) return fail_ins(p, ins, "the result cannot be a tuple");
  if (x->ty.dtype != ins->shape.t.dtype)
    return fail_ins(p, ins, "changes the element type (%s to %s): not supported", ir_dtypes[x->ty.dtype].name,
                    ir_dtypes[ins->shape.t.dtype].name);
  if (ir_nelems(&x->ty) != ir_nelems(&ins->shape.t)) {
    char a[96], b[96];
    return fail_ins(p, ins, "shape mismatch: %s has not as many elements as %s", ir_type_str(&x->ty, a, sizeof a),
                    ir_type_str(&ins->shape.t, b, sizeof b));
  }
  return (out->v = reshape(p, ins, x, ins->shape.t.rank, ins->shape.t.dims, NULL)) ? 0 : -1;
}

static int copy_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  *out = f->vals[ins->ops[0]];
  return 0;
}

static int transpose_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  ir_value *x = arr(p, ins, f, 0);
  const hattr *a = need_attr(p, ins, "dimensions");
  int64_t d[IR_MAX_DIMS];
  int n;
  if (!x || !a || attr_ints(p, a, d, IR_MAX_DIMS, &n)) return -1;
  if (n != x->ty.rank) return fail_at(p, a->vpos, "'dimensions' has %d values for an operand of rank %d", n, x->ty.rank);
  int perm[IR_MAX_DIMS];
  for (int k = 0; k < n; k++) perm[k] = d[k] < 0 || d[k] >= n ? -1 : (int)d[k];
  ir_attrs at = {0};
  memcpy(at.perm, perm, sizeof perm);
  return (out->v = emit(p, ins, IR_OP_TRANSPOSE, &x, 1, &at, NULL)) ? 0 : -1;
}

// broadcast(x), dimensions={...}: output dim dims[k] is x's dim k.
static int broadcast(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  ir_value *x = arr(p, ins, f, 0);
  const hattr *a = need_attr(p, ins, "dimensions");
  int64_t d[IR_MAX_DIMS];
  int n;
  if (!x || !a || attr_ints(p, a, d, IR_MAX_DIMS, &n)) return -1;
  if (ins->shape.tuple) return fail_ins(p, ins, "the result cannot be a tuple");
  const ir_type *t = &ins->shape.t;
  if (n != x->ty.rank) return fail_at(p, a->vpos, "'dimensions' has %d values for an operand of rank %d", n, x->ty.rank);
  if (x->ty.dtype != t->dtype) return fail_ins(p, ins, "shape mismatch: the operand's element type differs");
  for (int k = 0; k < n; k++) {
    if (d[k] < 0 || d[k] >= t->rank || (k && d[k] <= d[k - 1] && false))
      return fail_at(p, a->vpos, "'dimensions' value %lld is out of range", (long long)d[k]);
    if (x->ty.dims[k] != t->dims[d[k]]) {
      char s1[96], s2[96];
      return fail_ins(p, ins, "shape mismatch: operand %s dim %d is %lld, result %s dim %lld is %lld",
                      ir_type_str(&x->ty, s1, sizeof s1), k, (long long)x->ty.dims[k], ir_type_str(t, s2, sizeof s2),
                      (long long)d[k], (long long)t->dims[d[k]]);
    }
  }
  // Order x's dims as they appear in the output, then insert 1s.
  int order[IR_MAX_DIMS], perm[IR_MAX_DIMS];
  for (int k = 0; k < n; k++) order[k] = k;
  for (int k = 1; k < n; k++)
    for (int j = k; j > 0 && d[order[j]] < d[order[j - 1]]; j--) {
      int tmp = order[j];
      order[j] = order[j - 1], order[j - 1] = tmp;
    }
  for (int k = 0; k < n; k++) {
    if (k && d[order[k]] == d[order[k - 1]]) return fail_at(p, a->vpos, "'dimensions' repeats a dimension");
    perm[k] = order[k];
  }
  ir_value *y = transpose(p, ins, x, perm, "perm");
  if (!y) return -1;
  int64_t dims[IR_MAX_DIMS];
  for (int k = 0; k < t->rank; k++) dims[k] = 1;
  for (int k = 0; k < n; k++) dims[d[k]] = t->dims[d[k]];
  if (!(y = reshape(p, ins, y, t->rank, dims, "rank"))) return -1;
  if (ir_type_eq(&y->ty, t)) return out->v = y, 0;
  out->src = y;
  if (y->data) { // fold: every output element from its source
    int64_t total = ir_nelems(t);
    double *vals = malloc((size_t)(total ? total : 1) * sizeof *vals);
    if (!vals) abort();
    for (int64_t k = 0; k < total; k++) {
      int64_t rem = k, src = 0, stride = 1;
      for (int dd = t->rank - 1; dd >= 0; dd--) {
        int64_t i = rem % t->dims[dd];
        rem /= t->dims[dd];
        if (dims[dd] != 1) src += i * stride;
        stride *= dims[dd];
      }
      vals[k] = ir_get_float(y->data, y->ty.dtype, src);
    }
    out->v = constant(p, ins, t, vals, NULL);
    free(vals);
    return 0;
  }
  int ex = op_find("expand");
  if (ex >= 0) {
    ir_attrs at = {.ndims = t->rank};
    memcpy(at.dims, t->dims, sizeof at.dims);
    return (out->v = emit(p, ins, (ir_op)ex, &y, 1, &at, NULL)) ? 0 : -1;
  }
  // No expand: y * ones (exact; a broadcast only elementwise ops read costs nothing, see elementwise).
  ir_value *in[2] = {y, constant(p, ins, t, NULL, "zeros")};
  return (out->v = emit(p, ins, IR_OP_ADD, in, 2, NULL, NULL)) ? 0 : -1;
}

static int iota(hp *p, const hinstr *ins, hval *out) {
  if (arity(p, ins, 0, 0)) return -1;
  const hattr *a = need_attr(p, ins, "iota_dimension");
  int64_t dim;
  if (!a || attr_int(p, a, &dim)) return -1;
  const ir_type *t = &ins->shape.t;
  if (ins->shape.tuple || dim < 0 || dim >= t->rank) return fail_at(p, a->vpos, "iota_dimension %lld is out of range", (long long)dim);
  int64_t total = ir_nelems(t), inner = 1;
  for (int d = (int)dim + 1; d < t->rank; d++) inner *= t->dims[d];
  double *vals = malloc((size_t)(total ? total : 1) * sizeof *vals);
  if (!vals) abort();
  for (int64_t k = 0; k < total; k++) vals[k] = (double)((k / inner) % t->dims[dim]);
  out->v = constant(p, ins, t, vals, NULL);
  free(vals);
  return 0;
}

// slice={[0:10], [0:25:2]}
static int slice_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  ir_value *x = arr(p, ins, f, 0);
  const hattr *a = need_attr(p, ins, "slice");
  char buf[1024];
  if (!x || !a || attr_text(p, a, buf, sizeof buf)) return -1;
  ir_attrs at = {0};
  int d = 0;
  char *s = buf;
  if (*s++ != '{') return fail_at(p, a->vpos, "'slice' should be {[start:limit], ...}");
  for (;;) {
    while (isspace((unsigned char)*s) || *s == ',') s++;
    if (*s == '}') break;
    long long v[3] = {0, 0, 1};
    int nv = 0;
    if (*s++ != '[') return fail_at(p, a->vpos, "'slice' should be {[start:limit], ...}");
    while (nv < 3) {
      char *e;
      v[nv++] = strtoll(s, &e, 10);
      if (e == s) return fail_at(p, a->vpos, "'slice' should be {[start:limit], ...}");
      s = e;
      if (*s == ']') break;
      if (*s++ != ':') return fail_at(p, a->vpos, "'slice' should be {[start:limit], ...}");
    }
    if (*s++ != ']' || nv < 2) return fail_at(p, a->vpos, "'slice' should be {[start:limit], ...}");
    if (d == x->ty.rank) return fail_at(p, a->vpos, "'slice' has more dimensions than the operand (%d)", x->ty.rank);
    if (v[0] < 0 || v[1] < v[0] || v[1] > x->ty.dims[d] || v[2] < 1)
      return fail_at(p, a->vpos, "'slice' dimension %d [%lld:%lld:%lld] is out of range for %lld", d, v[0], v[1],
                     v[2], (long long)x->ty.dims[d]);
    at.start[d] = v[0], at.end[d] = v[1], at.step[d] = v[2];
    d++;
  }
  if (d != x->ty.rank) return fail_at(p, a->vpos, "'slice' has %d dimensions, the operand %d", d, x->ty.rank);
  return (out->v = emit(p, ins, IR_OP_SLICE, &x, 1, &at, NULL)) ? 0 : -1;
}

static int concat_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (ins->nops < 1) return fail_ins(p, ins, "needs operands");
  const hattr *a = need_attr(p, ins, "dimensions");
  int64_t d[IR_MAX_DIMS];
  int n;
  if (!a || attr_ints(p, a, d, IR_MAX_DIMS, &n)) return -1;
  if (n != 1) return fail_at(p, a->vpos, "'dimensions' should hold one dimension");
  ir_value **in = calloc((size_t)ins->nops, sizeof *in);
  if (!in) abort();
  int rc = 0;
  for (int k = 0; k < ins->nops && !rc; k++)
    if (!(in[k] = arr(p, ins, f, k))) rc = -1;
  if (!rc && (d[0] < 0 || d[0] >= in[0]->ty.rank)) rc = fail_at(p, a->vpos, "dimension %lld is out of range", (long long)d[0]);
  ir_attrs at = {.axis = (int)d[0]};
  if (!rc && !(out->v = emit(p, ins, IR_OP_CONCAT, in, ins->nops, &at, NULL))) rc = -1;
  free(in);
  return rc;
}

// pad(x, value), padding=lo_hi[_interior]x...
static int pad_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 2, 2)) return -1;
  ir_value *x = arr(p, ins, f, 0), *v = arr(p, ins, f, 1);
  const hattr *a = need_attr(p, ins, "padding");
  char buf[512];
  if (!x || !v || !a || attr_text(p, a, buf, sizeof buf)) return -1;
  double pv;
  if (!splat(v, &pv) || v->ty.rank) return fail_ins(p, ins, "the padding value must be a scalar constant");
  int r = x->ty.rank;
  ir_attrs at = {.pad_mode = IR_PAD_CONSTANT, .pad_value = pv};
  size_t len = strlen(buf);
  int64_t tmp[3 * IR_MAX_DIMS];
  int m;
  // Pairs or triples: try triples when there are two '_' per dim.
  int unders = 0;
  for (size_t k = 0; k < len; k++) unders += buf[k] == '_';
  int per = r && unders == 2 * r ? 3 : 2;
  if (r == 0 && len == 0) return (out->v = x), 0;
  if (xlist(p, a, buf, len, tmp, per, 3 * IR_MAX_DIMS, &m)) return -1;
  if (m != per * r) return fail_at(p, a->vpos, "'padding' has %d dimensions, the operand %d", m / per, r);
  for (int d = 0; d < r; d++) {
    at.pads[d] = tmp[per * d], at.pads[r + d] = tmp[per * d + 1];
    if (per == 3) {
      if (tmp[per * d + 2] < 0) return fail_at(p, a->vpos, "interior padding must not be negative");
      at.interior[d] = tmp[per * d + 2];
    }
  }
  return (out->v = emit(p, ins, IR_OP_PAD, &x, 1, &at, NULL)) ? 0 : -1;
}

// dot: lhs to [B, M, K], rhs to [B, K, N] (or 2-D without batch), matmul,
// then the result's shape (batch, lhs free, rhs free).
static int dot(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 2, 2)) return -1;
  ir_value *x[2] = {arr(p, ins, f, 0), arr(p, ins, f, 1)};
  if (!x[0] || !x[1]) return -1;
  static const char *const keys[2][2] = {{"lhs_batch_dims", "lhs_contracting_dims"},
                                         {"rhs_batch_dims", "rhs_contracting_dims"}};
  int64_t bd[2][IR_MAX_DIMS], cd[2][IR_MAX_DIMS];
  int nb[2] = {0, 0}, nc[2] = {0, 0};
  for (int s = 0; s < 2; s++) {
    const hattr *a = attr(ins, keys[s][0]);
    if (a && attr_ints(p, a, bd[s], IR_MAX_DIMS, &nb[s])) return -1;
    a = attr(ins, keys[s][1]);
    if (a && attr_ints(p, a, cd[s], IR_MAX_DIMS, &nc[s])) return -1;
  }
  if (nb[0] != nb[1] || nc[0] != nc[1]) return fail_ins(p, ins, "lhs and rhs have different numbers of batch or contracting dimensions");
  int64_t B = 1, M = 1, N = 1, K = 1;
  int perm[2][IR_MAX_DIMS], np[2] = {0, 0};
  int64_t freedims[2][IR_MAX_DIMS];
  int nfree[2] = {0, 0};
  for (int s = 0; s < 2; s++) {
    const ir_type *t = &x[s]->ty;
    bool used[IR_MAX_DIMS] = {0};
    for (int k = 0; k < nb[s] + nc[s]; k++) {
      int64_t d = k < nb[s] ? bd[s][k] : cd[s][k - nb[s]];
      if (d < 0 || d >= t->rank || used[d]) return fail_ins(p, ins, "%s dimension %lld is out of range or repeated", s ? "rhs" : "lhs", (long long)d);
      used[d] = true;
    }
    for (int k = 0; k < nb[s]; k++) {
      if (t->dims[bd[s][k]] != x[0]->ty.dims[bd[0][k]]) return fail_ins(p, ins, "shape mismatch: batch dimension %d differs", k);
      perm[s][np[s]++] = (int)bd[s][k];
    }
    int64_t fr = 1;
    if (s == 1)
      for (int k = 0; k < nc[1]; k++) perm[1][np[1]++] = (int)cd[1][k];
    for (int d = 0; d < t->rank; d++)
      if (!used[d]) perm[s][np[s]++] = d, fr *= t->dims[d], freedims[s][nfree[s]++] = t->dims[d];
    if (s == 0)
      for (int k = 0; k < nc[0]; k++) perm[0][np[0]++] = (int)cd[0][k];
    if (s == 0) M = fr;
    else N = fr;
  }
  for (int k = 0; k < nb[0]; k++) B *= x[0]->ty.dims[bd[0][k]];
  for (int k = 0; k < nc[0]; k++) {
    if (x[0]->ty.dims[cd[0][k]] != x[1]->ty.dims[cd[1][k]])
      return fail_ins(p, ins, "shape mismatch: contracting dimension %d is %lld in lhs and %lld in rhs", k,
                      (long long)x[0]->ty.dims[cd[0][k]], (long long)x[1]->ty.dims[cd[1][k]]);
    K *= x[0]->ty.dims[cd[0][k]];
  }
  ir_value *m[2];
  for (int s = 0; s < 2; s++) {
    if (!(m[s] = transpose(p, ins, x[s], perm[s], s ? "rhs_t" : "lhs_t"))) return -1;
    int64_t d3[3] = {B, s ? K : M, s ? N : K};
    bool batched = nb[0] > 0;
    if (!(m[s] = reshape(p, ins, m[s], batched ? 3 : 2, batched ? d3 : d3 + 1, s ? "rhs_r" : "lhs_r"))) return -1;
  }
  if (m[0]->ty.dtype != m[1]->ty.dtype) return fail_ins(p, ins, "lhs and rhs have different element types");
  ir_value *y = emit(p, ins, IR_OP_MATMUL, m, 2, NULL, "matmul");
  if (!y) return -1;
  int64_t od[IR_MAX_DIMS];
  int r = 0;
  for (int k = 0; k < nb[0]; k++) od[r++] = x[0]->ty.dims[bd[0][k]];
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < nfree[s]; k++) {
      if (r == IR_MAX_DIMS) return fail_ins(p, ins, "the result has more than %d dimensions", IR_MAX_DIMS);
      od[r++] = freedims[s][k];
    }
  if (!(y = reshape(p, ins, y, r, od, "out"))) return -1;
  if (!ins->shape.tuple && y->ty.dtype != ins->shape.t.dtype) {
    ir_attrs at = {.to = ins->shape.t.dtype};
    y = emit(p, ins, IR_OP_CAST, &y, 1, &at, "cast");
  }
  return (out->v = y) ? 0 : -1;
}

// dim_labels=b01f_01io->b01f: where batch, feature and the spatial dims are.
typedef struct {
  int b, f, sp[IR_MAX_DIMS]; // lhs / out: batch, feature; kernel: i in b, o in f
} hlabels;

static int labels(hp *p, const hattr *a, const char *s, size_t n, char first, char second, int rank, hlabels *l) {
  if ((int)n != rank) return fail_at(p, a->vpos, "dim_labels '%.*s' does not match rank %d", (int)n, s, rank);
  l->b = l->f = -1;
  for (int d = 0; d < rank - 2; d++) l->sp[d] = -1;
  for (int k = 0; k < (int)n; k++) {
    char c = s[k];
    int *slot = c == first ? &l->b : c == second ? &l->f : NULL;
    if (!slot && c >= '0' && c - '0' < rank - 2) slot = &l->sp[c - '0'];
    if (!slot || *slot >= 0) return fail_at(p, a->vpos, "dim_labels '%.*s' is not valid", (int)n, s);
    *slot = k;
  }
  return 0;
}

static int convolution(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 2, 2)) return -1;
  ir_value *x = arr(p, ins, f, 0), *w = arr(p, ins, f, 1);
  if (!x || !w) return -1;
  int r = x->ty.rank, ns = r - 2;
  if (r < 3 || w->ty.rank != r || ins->shape.tuple || ins->shape.t.rank != r)
    return fail_ins(p, ins, "needs operands and a result of one rank, at least 3");
  const hattr *a = need_attr(p, ins, "dim_labels");
  char buf[64];
  if (!a || attr_text(p, a, buf, sizeof buf)) return -1;
  char *u = strchr(buf, '_'), *arrow = strstr(buf, "->");
  if (!u || !arrow || arrow < u) return fail_at(p, a->vpos, "dim_labels should look like b01f_01io->b01f");
  hlabels li, lk, lo;
  if (labels(p, a, buf, (size_t)(u - buf), 'b', 'f', r, &li) ||
      labels(p, a, u + 1, (size_t)(arrow - u - 1), 'i', 'o', r, &lk) ||
      labels(p, a, arrow + 2, strlen(arrow + 2), 'b', 'f', r, &lo))
    return -1;
  hwindow win;
  if (window(p, ins, ns, &win)) return -1;
  int64_t groups = 1, bgroups = 1;
  const hattr *g = attr(ins, "feature_group_count");
  if (g && attr_int(p, g, &groups)) return -1;
  if ((g = attr(ins, "batch_group_count")) && attr_int(p, g, &bgroups)) return -1;
  if (bgroups != 1) return fail_ins(p, ins, "batch_group_count %lld is not supported", (long long)bgroups);
  if (groups < 1) return fail_ins(p, ins, "feature_group_count must be positive");
  ir_attrs at = {.group = groups};
  for (int d = 0; d < ns; d++) {
    if (win.lhs_dilate[d] != 1) return fail_ins(p, ins, "lhs_dilate (a transposed convolution) is not supported");
    if (win.size[d] != w->ty.dims[lk.sp[d]])
      return fail_ins(p, ins, "shape mismatch: window size %lld differs from the kernel's %lld", (long long)win.size[d],
                      (long long)w->ty.dims[lk.sp[d]]);
    at.kernel[d] = win.size[d], at.stride[d] = win.stride[d], at.dilation[d] = win.rhs_dilate[d];
    at.pads[d] = win.lo[d], at.pads[ns + d] = win.hi[d];
  }
  int pi[IR_MAX_DIMS] = {li.b, li.f}, pk[IR_MAX_DIMS] = {lk.f, lk.b}, po[IR_MAX_DIMS];
  for (int d = 0; d < ns; d++) pi[2 + d] = li.sp[d], pk[2 + d] = lk.sp[d];
  ir_value *in[2];
  if (!(in[0] = transpose(p, ins, x, pi, "lhs_nchw")) || !(in[1] = transpose(p, ins, w, pk, "rhs_oihw"))) return -1;
  ir_value *y = emit(p, ins, IR_OP_CONV, in, 2, &at, "conv");
  if (!y) return -1;
  // y is [b, f, s0, s1...]; output dim k holds y's dim inv[k].
  po[lo.b] = 0, po[lo.f] = 1;
  for (int d = 0; d < ns; d++) po[lo.sp[d]] = 2 + d;
  return (out->v = transpose(p, ins, y, po, NULL)) ? 0 : -1;
}

// Which binary op a reducer computation applies: 0 add, 1 max, 2 min, 3 mul; -1 other.
static int reducer(hp *p, int ci) {
  const hcomp *c = &p->comps[ci];
  const hinstr *r = &c->ins[c->root];
  static const char *const ops[] = {"add", "maximum", "minimum", "multiply"};
  if (r->nops != 2) return -1;
  const hinstr *a = &c->ins[r->ops[0]], *b = &c->ins[r->ops[1]];
  if (strcmp(a->opcode, "parameter") || strcmp(b->opcode, "parameter") || r->ops[0] == r->ops[1]) return -1;
  for (int k = 0; k < 4; k++)
    if (!strcmp(r->opcode, ops[k])) return k;
  return -1;
}

static int reducer_of(hp *p, const hinstr *ins, int *kind) {
  int ci;
  if (comp_attr(p, ins, "to_apply", &ci)) return -1;
  if ((*kind = reducer(p, ci)) < 0)
    return fail_ins(p, ins, "the reducer '%s' is not add, maximum, minimum or multiply of its two parameters",
                    p->comps[ci].name);
  return 0;
}


static int reduce(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (ins->nops != 2) return fail_ins(p, ins, "only single-operand reductions are supported (%d operands)", ins->nops);
  ir_value *x = arr(p, ins, f, 0), *init = arr(p, ins, f, 1);
  const hattr *a = need_attr(p, ins, "dimensions");
  int64_t d[IR_MAX_DIMS];
  int n, kind;
  if (!x || !init || !a || attr_ints(p, a, d, IR_MAX_DIMS, &n) || reducer_of(p, ins, &kind)) return -1;
  bool seen[IR_MAX_DIMS] = {0};
  for (int k = 0; k < n; k++) {
    if (d[k] < 0 || d[k] >= x->ty.rank || seen[d[k]])
      return fail_at(p, a->vpos, "dimension %lld is out of range or repeated", (long long)d[k]);
    seen[d[k]] = true;
  }
  static const char *const names[] = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod"};
  static const double identity[] = {0, -INFINITY, INFINITY, 1};
  double iv;
  if (init->ty.rank || !splat(init, &iv)) return fail_ins(p, ins, "the initial value must be a scalar constant");
  ir_value *y;
  int op = op_find(names[kind]);
  if (op < 0) return fail_ins(p, ins, "not supported yet: needs the IR op '%s'", names[kind]);
  ir_attrs at = {.naxes = n};
  for (int k = 0, j = 0; k < x->ty.rank; k++) // increasing, as the IR wants
    if (seen[k]) at.axes[j++] = k;
  if (!(y = emit(p, ins, (ir_op)op, &x, 1, &at, n ? NULL : "reduce"))) return -1;
  if (iv != identity[kind]) {
    static const ir_op ops[] = {IR_OP_ADD, IR_OP_ADD, IR_OP_ADD, IR_OP_MUL};
    if (kind == 1 || kind == 2) return fail_ins(p, ins, "an initial value other than %s is not supported", kind == 1 ? "-inf" : "inf");
    ir_value *in[2] = {y, init};
    if (!(y = emit(p, ins, ops[kind], in, 2, NULL, "init"))) return -1;
  }
  out->v = y;
  return 0;
}

// Any other reduce-window (min and multiply reducers, other ranks, other
// initial values): the operand padded with the initial value, then one
// strided slice per window position, folded with the reducer elementwise
// (in row-major window order), and the initial value applied once unless it
// is the reducer's identity. Windows of up to 256 positions.
static int window_by_slices(hp *p, const hinstr *ins, ir_value *x, ir_value *init, int kind, double iv,
                            const hwindow *w, hval *out) {
  static const ir_op ops[] = {IR_OP_ADD, IR_OP_MAX, IR_OP_MIN, IR_OP_MUL};
  static const double identity[] = {0, -INFINITY, INFINITY, 1};
  int r = x->ty.rank;
  int64_t npos = 1, padded[IR_MAX_DIMS], odim[IR_MAX_DIMS];
  bool pads = false;
  for (int d = 0; d < r; d++) {
    npos *= w->size[d];
    padded[d] = x->ty.dims[d] + w->lo[d] + w->hi[d];
    pads |= w->lo[d] || w->hi[d];
    if (w->size[d] < 1 || w->stride[d] < 1 || padded[d] < w->size[d])
      return fail_ins(p, ins, "shape mismatch: window %lld (stride %lld) does not fit dimension %d of %lld", (long long)w->size[d],
                      (long long)w->stride[d], d, (long long)padded[d]);
    odim[d] = (padded[d] - w->size[d]) / w->stride[d] + 1;
  }
  if (npos > 256) return fail_ins(p, ins, "not supported yet: a window of %lld positions (at most 256)", (long long)npos);
  ir_value *y = x;
  if (pads) {
    ir_attrs pa = {.pad_mode = IR_PAD_CONSTANT, .pad_value = iv};
    for (int d = 0; d < r; d++) pa.pads[d] = w->lo[d], pa.pads[r + d] = w->hi[d];
    if (!(y = emit(p, ins, IR_OP_PAD, &y, 1, &pa, "padded"))) return -1;
  }
  ir_value *acc = NULL;
  for (int64_t k = 0; k < npos; k++) {
    ir_attrs sa = {0};
    int64_t rem = k;
    for (int d = r - 1; d >= 0; d--) {
      int64_t o = rem % w->size[d];
      rem /= w->size[d];
      sa.start[d] = o, sa.end[d] = o + (odim[d] - 1) * w->stride[d] + 1, sa.step[d] = w->stride[d];
    }
    char nm[32];
    snprintf(nm, sizeof nm, "window%lld", (long long)k);
    ir_value *sl = emit(p, ins, IR_OP_SLICE, &y, 1, &sa, nm);
    if (!sl) return -1;
    if (!acc) {
      acc = sl;
      continue;
    }
    ir_value *in[2] = {acc, sl};
    snprintf(nm, sizeof nm, "fold%lld", (long long)k);
    if (!(acc = emit(p, ins, ops[kind], in, 2, NULL, nm))) return -1;
  }
  if (iv != identity[kind]) {
    ir_value *in[2] = {acc, init};
    if (!(acc = emit(p, ins, ops[kind], in, 2, NULL, "init"))) return -1;
  }
  out->v = acc;
  return 0;
}

// reduce-window as max or average pooling over two spatial dims.
static int reduce_window(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 2, 2)) return -1;
  ir_value *x = arr(p, ins, f, 0), *init = arr(p, ins, f, 1);
  int kind;
  if (!x || !init || reducer_of(p, ins, &kind)) return -1;
  int r = x->ty.rank;
  hwindow w;
  if (window(p, ins, r, &w)) return -1;
  double iv;
  if (!splat(init, &iv)) return fail_ins(p, ins, "the initial value must be a constant");
  // The pooled dims: those the window touches; the others are N and C.
  int sp[IR_MAX_DIMS], nsp = 0, other[IR_MAX_DIMS], nother = 0;
  for (int d = 0; d < r; d++) {
    if (w.lhs_dilate[d] != 1 || w.rhs_dilate[d] != 1) return fail_ins(p, ins, "dilated windows are not supported");
    if (w.size[d] != 1 || w.stride[d] != 1 || w.lo[d] || w.hi[d]) sp[nsp++] = d;
    else other[nother++] = d;
  }
  bool maxk = kind == 1 && iv == -INFINITY, sumk = kind == 0 && iv == 0;
  if (r != 4 || nsp > 2 || (!maxk && !sumk)) return window_by_slices(p, ins, x, init, kind, iv, &w, out);
  while (nsp < 2) { // a 1x1 window dim, taken from the others from the back
    sp[nsp++] = other[--nother];
    if (nsp == 2 && sp[0] > sp[1]) { int t = sp[0]; sp[0] = sp[1], sp[1] = t; }
  }
  int perm[4] = {other[0], other[1], sp[0], sp[1]}, inv[4];
  for (int k = 0; k < 4; k++) inv[perm[k]] = k;
  ir_attrs at = {.count_include_pad = true};
  for (int k = 0; k < 2; k++) {
    at.kernel[k] = w.size[sp[k]], at.stride[k] = w.stride[sp[k]], at.dilation[k] = 1;
    at.pads[k] = w.lo[sp[k]], at.pads[2 + k] = w.hi[sp[k]];
  }
  ir_value *y = transpose(p, ins, x, perm, "nchw");
  if (!y || !(y = emit(p, ins, maxk ? IR_OP_MAXPOOL : IR_OP_AVGPOOL, &y, 1, &at, "pool"))) return -1;
  if (sumk) { // the average times the window's size: the sum (rounded twice)
    ir_value *in[2] = {y, scalar_const(p, ins, y->ty.dtype, (double)(at.kernel[0] * at.kernel[1]), "size")};
    if (!(y = emit(p, ins, IR_OP_MUL, in, 2, NULL, "sum"))) return -1;
  }
  return (out->v = transpose(p, ins, y, inv, NULL)) ? 0 : -1;
}

static int tuple_op(hp *p, const hinstr *ins, const frame *f, hval *out) {
  out->tuple = true;
  out->nel = ins->nops;
  out->el = arena(p, (size_t)(ins->nops ? ins->nops : 1) * sizeof *out->el);
  for (int k = 0; k < ins->nops; k++) {
    const hval *h = &f->vals[ins->ops[k]];
    if (h->tuple) return fail_ins(p, ins, "nested tuples are not supported");
    out->el[k] = h->v;
  }
  return 0;
}

static int gte(hp *p, const hinstr *ins, const frame *f, hval *out) {
  if (arity(p, ins, 1, 1)) return -1;
  const hval *t = &f->vals[ins->ops[0]];
  const hattr *a = need_attr(p, ins, "index");
  int64_t k;
  if (!a || attr_int(p, a, &k)) return -1;
  if (!t->tuple) return fail_ins(p, ins, "the operand is not a tuple");
  if (k < 0 || k >= t->nel) return fail_at(p, a->vpos, "index %lld is out of range (the tuple has %d elements)", (long long)k, t->nel);
  out->v = t->el[k];
  return 0;
}

static int call(hp *p, const hinstr *ins, const frame *f, hval *out) {
  int ci;
  if (comp_attr(p, ins, !strcmp(ins->opcode, "fusion") ? "calls" : "to_apply", &ci)) return -1;
  hval *args = arena(p, (size_t)(ins->nops ? ins->nops : 1) * sizeof *args);
  for (int k = 0; k < ins->nops; k++) args[k] = f->vals[ins->ops[k]];
  if (p->depth >= MAX_CALL_DEPTH) return fail_ins(p, ins, "calls nest deeper than %d (a recursive computation?)", MAX_CALL_DEPTH);
  p->depth++;
  int rc = map_comp(p, ci, args, ins->nops, out);
  p->depth--;
  if (rc) {
    // Say where the call was, after the message from inside the callee.
    size_t len = strlen(p->err);
    int line, col;
    line_col(p, ins->oppos, &line, &col);
    if (len + 1 < p->errlen) snprintf(p->err + len, p->errlen - len, " (called from line %d)", line);
  }
  return rc;
}

// Does the mapped value have the declared shape?
static int check_shape(hp *p, const hinstr *ins, const hval *h) {
  char s1[256], s2[256];
  if (h->tuple != ins->shape.tuple) goto bad;
  if (!h->tuple) {
    if (!ir_type_eq(&h->v->ty, &ins->shape.t)) goto bad;
    return 0;
  }
  if (h->nel != ins->shape.nel) goto bad;
  for (int k = 0; k < h->nel; k++)
    if (ins->shape.el[k].tuple || !ir_type_eq(&h->el[k]->ty, &ins->shape.el[k].t)) goto bad;
  return 0;
bad:
  if (h->tuple) {
    size_t n = (size_t)snprintf(s2, sizeof s2, "(");
    for (int k = 0; k < h->nel && n < sizeof s2; k++) {
      char e[96];
      n += (size_t)snprintf(s2 + n, sizeof s2 - n, "%s%s", k ? ", " : "", ir_type_str(&h->el[k]->ty, e, sizeof e));
    }
    if (n < sizeof s2) snprintf(s2 + n, sizeof s2 - n, ")");
  } else ir_type_str(&h->v->ty, s2, sizeof s2);
  return fail_ins(p, ins, "shape mismatch: declared %s, but the operands give %s", shape_str(&ins->shape, s1, sizeof s1), s2);
}

static int map_ins(hp *p, const hinstr *ins, const frame *f, hval *out) {
  const char *op = ins->opcode;
  static const char *const unaries[] = {"exponential", "log", "sqrt", "rsqrt", "abs", "tanh", "logistic", "negate", "not", "erf"};
  static const char *const binaries[] = {"add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "and", "or"};
  for (size_t k = 0; k < sizeof unaries / sizeof *unaries; k++)
    if (!strcmp(op, unaries[k])) return unary(p, ins, f, out);
  for (size_t k = 0; k < sizeof binaries / sizeof *binaries; k++)
    if (!strcmp(op, binaries[k])) return binary(p, ins, f, out);
  if (!strcmp(op, "constant")) {
    if (ins->shape.tuple) return fail_ins(p, ins, "tuple constants are not supported");
    out->v = constant(p, ins, &ins->shape.t, ins->lit, NULL);
    return 0;
  }
  if (!strcmp(op, "compare")) return compare(p, ins, f, out);
  if (!strcmp(op, "select")) return select_op(p, ins, f, out);
  if (!strcmp(op, "clamp")) return clamp(p, ins, f, out);
  if (!strcmp(op, "convert")) return convert(p, ins, f, out);
  if (!strcmp(op, "reshape") || !strcmp(op, "bitcast")) return reshape_op(p, ins, f, out);
  if (!strcmp(op, "copy")) return copy_op(p, ins, f, out);
  if (!strcmp(op, "transpose")) return transpose_op(p, ins, f, out);
  if (!strcmp(op, "broadcast")) return broadcast(p, ins, f, out);
  if (!strcmp(op, "iota")) return iota(p, ins, out);
  if (!strcmp(op, "slice")) return slice_op(p, ins, f, out);
  if (!strcmp(op, "concatenate")) return concat_op(p, ins, f, out);
  if (!strcmp(op, "pad")) return pad_op(p, ins, f, out);
  if (!strcmp(op, "dot")) return dot(p, ins, f, out);
  if (!strcmp(op, "convolution")) return convolution(p, ins, f, out);
  if (!strcmp(op, "reduce")) return reduce(p, ins, f, out);
  if (!strcmp(op, "reduce-window")) return reduce_window(p, ins, f, out);
  if (!strcmp(op, "tuple")) return tuple_op(p, ins, f, out);
  if (!strcmp(op, "get-tuple-element")) return gte(p, ins, f, out);
  if (!strcmp(op, "call") || !strcmp(op, "fusion")) return call(p, ins, f, out);
  return fail_at(p, ins->oppos, "'%.100s': unsupported instruction '%.60s'", ins->name, op);
}

static int map_comp(hp *p, int ci, const hval *args, int nargs, hval *out) {
  const hcomp *c = &p->comps[ci];
  frame f = {arena(p, (size_t)c->n * sizeof(hval)), args, nargs};
  memset(f.vals, 0, (size_t)c->n * sizeof(hval));
  for (int k = 0; k < c->n; k++) {
    const hinstr *ins = &c->ins[k];
    hval *h = &f.vals[k];
    p->nmapped++;
    if (!strcmp(ins->opcode, "parameter")) {
      int64_t n = ins->param;
      if (n >= nargs)
        return fail_ins(p, ins, "parameter %lld, but computation '%s' is given %d argument%s", (long long)n, c->name,
                        nargs, nargs == 1 ? "" : "s");
      *h = args[n];
      h->src = NULL;
    } else if (map_ins(p, ins, &f, h)) return -1;
    if (check_shape(p, ins, h)) return -1;
  }
  *out = f.vals[c->root];
  return 0;
}

// ---------------------------------------------------------------- the module

static int map_entry(hp *p) {
  int ci = p->ncomps - 1;
  for (int k = 0; k < p->ncomps; k++)
    if (p->comps[k].entry) ci = k;
  const hcomp *c = &p->comps[ci];
  // Parameters: inputs named by number, every number from 0 once.
  int np = 0;
  for (int k = 0; k < c->n; k++) np += !strcmp(c->ins[k].opcode, "parameter");
  hval *args = arena(p, (size_t)(np ? np : 1) * sizeof *args);
  for (int k = 0; k < c->n; k++) {
    const hinstr *ins = &c->ins[k];
    if (strcmp(ins->opcode, "parameter")) continue;
    int64_t n = ins->param;
    if (n >= np) return fail_ins(p, ins, "parameter %lld, but the entry has %d parameters (numbered from 0)", (long long)n, np);
    if (args[n].v) return fail_ins(p, ins, "parameter %lld is declared twice", (long long)n);
    if (ins->shape.tuple) return fail_ins(p, ins, "tuple parameters are not supported");
    char nm[32];
    snprintf(nm, sizeof nm, "%lld", (long long)n);
    args[n].v = ir_add_input(p->g, nm, &ins->shape.t);
  }
  hval res;
  if (map_comp(p, ci, args, np, &res)) return -1;
  int nres = res.tuple ? res.nel : 1;
  for (int k = 0; k < nres; k++) {
    ir_value *v = res.tuple ? res.el[k] : res.v;
    char nm[64];
    snprintf(nm, sizeof nm, HLO_RESULT_PREFIX "%d", k);
    const char *names[1] = {nm};
    ir_node *n = ir_add_node(p->g, IR_OP_IDENTITY, nm, &v, 1, 1, names);
    n->out[0]->ty = v->ty;
    ir_add_output(p->g, n->out[0]);
  }
  return 0;
}

ir_graph *hlo_import_buffer(const char *text, size_t len, const char *nm, char *err, size_t errlen) {
  hp p = {.s = text, .n = len, .file = nm ? nm : "module", .err = err, .errlen = errlen};
  if (errlen) err[0] = 0;
  ir_graph *g = NULL;
  if (!len) fail_at(&p, 0, "the file is empty");
  else if (!module(&p)) {
    p.g = ir_graph_new(p.file);
    free(p.g->source);
    p.g->source = strdup(p.file);
    if (!p.g->source) abort();
    char msg[IR_ERR_LEN];
    if (!map_entry(&p)) {
      ir_prune(p.g);
      if (ir_verify(p.g, "import", msg, sizeof msg)) fail_at(&p, 0, "%s", msg);
      else g = p.g;
    }
    if (!g) ir_graph_free(p.g);
  }
  while (p.arena) {
    blk *b = p.arena;
    p.arena = b->next;
    free(b);
  }
  return g;
}


ir_graph *hlo_import(const char *path, char *err, size_t errlen) {
  isa_file f;
  if (isa_file_load(&f, path, true, MAX_FILE_BYTES, "an HLO text module", err, errlen)) return NULL;
  ir_graph *g = hlo_import_buffer((const char *)f.data, f.len, path, err, errlen);
  isa_file_release(&f);
  return g;
}

bool hlo_is_hlo_file(const char *path) {
  size_t n = strlen(path);
  if ((n >= 4 && !strcmp(path + n - 4, ".hlo")) || (n >= 4 && !strcmp(path + n - 4, ".txt"))) return true;
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char buf[4096];
  size_t got = fread(buf, 1, sizeof buf, f);
  fclose(f);
  hp p = {.s = buf, .n = got};
  skip_ws(&p);
  return at_word(&p, "HloModule");
}

const char *hlo_public_name(const char *ir_name) {
  size_t n = strlen(HLO_RESULT_PREFIX);
  return strncmp(ir_name, HLO_RESULT_PREFIX, n) ? ir_name : ir_name + n;
}
