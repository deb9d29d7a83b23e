// The assembler: source text to an isa_program (docs/isa.md, "Assembly
// language"), and isa_disasm_program, its inverse.
//
// Symbols may be used before they are defined, and `li` takes one or two words
// depending on its value, so the source is read in passes until no symbol
// changes value, then once more to emit code and data. Errors that depend on
// values (undefined symbol, out of range) are reported only in that last pass;
// syntax errors in any. The first error stops everything: error_at() formats
// "name:line:col: message" and longjmps back to isa_assemble, as Lua does.
#include "isa/isa.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PASSES 64
#define MAX_DEPTH 200                // expression nesting
#define MAX_CODE (1u << 24)          // instruction words
#define MAX_RUN (1ull << 30)         // bytes of one .hbm/.host run
#define MAX_SMEM (1ull << 26)        // the SMEM image covers 0..end
#define MAX_REPT (1 << 24)           // iterations of one .rept
#define MAX_STATEMENTS (1 << 25)     // per pass, counting .rept bodies and iterations

typedef enum { SEC_TEXT, SEC_SMEM, SEC_HBM, SEC_HOST } Section;
static const char *const sec_names[] = {"text", "SMEM", "HBM", "host"};

typedef enum {
  TK_END,   // end of line or a comment
  TK_IDENT, // names, mnemonics, directives, registers
  TK_NUM,   // starts with a digit; converted when used (floats rescan it)
  TK_PUNCT, // punct holds the character; '<' and '>' stand for << and >>
  TK_STR,   // "..." with \" and \\ escapes (only in .input, .output, .chip)
} TokKind;

typedef struct {
  TokKind kind;
  const char *s;
  int len;
  int col; // 1-based
  int punct;
} Tok;

typedef struct {
  char *name;
  int64_t value;
  int pass;  // last pass that defined it; 0 for a -D define; -1 undefined
  int line;
  bool rept; // a .rept counter: defined only inside its loop
} Sym;

typedef struct {
  const char *s, *e; // without the newline
} Line;

// A run of data started by a section directive.
typedef struct {
  Section sec;
  uint64_t addr, size;
  uint8_t *data; // final pass only
  size_t cap;
  int line, col; // the directive, for overlap errors
} Chunk;

typedef struct {
  const char *name; // of the source, for messages
  char *err;
  size_t errlen;
  jmp_buf jb;
  int pass;
  bool final;   // the emitting pass: value errors are errors
  bool changed; // a symbol or an li size changed in this pass
  int changed_line;

  // the source, and the line being read
  Line *lines;
  size_t nlines, caplines, next; // next: the line to run after this one
  size_t statements;
  int lineno;
  const char *line, *end, *p;
  Tok tok;
  Tok label;          // pending label of this line (len 0: none)
  const char *define; // the -D being read, else NULL
  bool io_syntax;     // this line is .input/.output/.chip: strings and [ ] are tokens
  int depth;
  char desc[80];

  Sym *syms;
  size_t nsyms, capsyms;
  size_t *hash; // symbol index + 1, open addressing
  size_t hashcap;

  Section sec;
  Chunk *chunks;
  size_t nchunks, capchunks;
  long cur, last_smem; // chunk indices, -1: none
  uint64_t *code;
  size_t ncode, capcode;
  uint8_t *li_big; // per li statement: needs li + lih (only ever grows)
  size_t nli, capli, li_next;

  isa_segment *segs; // built at the end
  size_t nsegs;

  isa_io *io; // the I/O signature, collected in the final pass
  size_t nio, capio;
  char chip[ISA_CHIP_MAX_NAME + 1];
  int chip_line; // of this pass's .chip, 0 if none yet
  isa_layer *layers; // the layer table, collected in the final pass
  size_t nlayers, caplayers;
  bool layer_open;   // the last layer has no end yet
} Asm;

// ---------------------------------------------------------------- errors

static _Noreturn void fail_at(Asm *a, int col, const char *msg) {
  if (a->define)
    snprintf(a->err, a->errlen, "-D %s: column %d: %s", a->define, col, msg);
  else
    snprintf(a->err, a->errlen, "%s:%d:%d: %s", a->name, a->lineno, col, msg);
  longjmp(a->jb, 1);
}

#define FORMAT(msg, fmt)                                                                  \
  char msg[ISA_ERR_LEN];                                                                 \
  va_list ap;                                                                            \
  va_start(ap, fmt);                                                                     \
  vsnprintf(msg, sizeof msg, fmt, ap);                                                   \
  va_end(ap)

static _Noreturn void error_at(Asm *a, int col, const char *fmt, ...) {
  FORMAT(msg, fmt);
  fail_at(a, col, msg);
}

// An error that depends on symbol values: only real in the final pass, when
// every value is known. Earlier, the caller substitutes a harmless value.
static void value_error(Asm *a, int col, const char *fmt, ...) {
  if (!a->final)
    return;
  FORMAT(msg, fmt);
  fail_at(a, col, msg);
}

static void *grow(Asm *a, void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return p;
  size_t n = *cap ? *cap : 16;
  while (n < need)
    n *= 2;
  void *q = realloc(p, n * elem);
  if (!q)
    error_at(a, 1, "out of memory");
  *cap = n;
  return q;
}

// ---------------------------------------------------------------- lexer

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident_char(int c) { return is_alpha(c) || is_digit(c) || c == '.'; }

// The token for messages: 'text' or "end of line".
static const char *desc(Asm *a, const Tok *t) {
  if (t->kind == TK_END)
    return "end of line";
  int n = t->len > 40 ? 40 : t->len;
  snprintf(a->desc, sizeof a->desc, "'%.*s%s'", n, t->s, t->len > 40 ? "..." : "");
  return a->desc;
}

static bool tok_is(const Tok *t, const char *s) {
  return t->kind == TK_IDENT && (size_t)t->len == strlen(s) && !memcmp(t->s, s, (size_t)t->len);
}

static void lex(Asm *a) {
  const char *p = a->p, *e = a->end;
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v'))
    p++;
  Tok t = {.s = p, .col = (int)(p - a->line) + 1};
  if (p == e || *p == ';' || *p == '#') {
    t.kind = TK_END;
  } else if (is_alpha(*p) || *p == '.' || is_digit(*p)) {
    t.kind = is_digit(*p) ? TK_NUM : TK_IDENT;
    while (p < e && is_ident_char(*p))
      p++;
    t.len = (int)(p - t.s);
    if (tok_is(&t, ".input") || tok_is(&t, ".output") || tok_is(&t, ".chip") || tok_is(&t, ".layer"))
      a->io_syntax = true; // the rest of the line may have strings and [ ]
  } else if ((*p == '<' || *p == '>') && p + 1 < e && p[1] == *p) {
    t.kind = TK_PUNCT, t.punct = *p, p += 2;
  } else if (strchr(",:()+-*/%&|^~=@", *p) || (a->io_syntax && (*p == '[' || *p == ']'))) {
    t.kind = TK_PUNCT, t.punct = *p++;
  } else if (a->io_syntax && *p == '"') {
    t.kind = TK_STR;
    for (p++;; p++) {
      if (p == e)
        error_at(a, t.col, "unterminated string");
      if (*p == '"')
        break;
      if (*p == '\\') {
        if (p + 1 == e || (p[1] != '"' && p[1] != '\\'))
          error_at(a, (int)(p - a->line) + 1, "unknown escape in a string (only \\\" and \\\\)");
        p++;
      }
    }
    p++;
  } else {
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7f)
      error_at(a, t.col, "unexpected character '%c'", c);
    error_at(a, t.col, "unexpected byte 0x%02x", c);
  }
  t.len = (int)(p - t.s);
  a->p = p;
  a->tok = t;
}

static Tok peek(Asm *a) {
  const char *p = a->p;
  Tok t = a->tok;
  lex(a);
  Tok next = a->tok;
  a->p = p;
  a->tok = t;
  return next;
}

static bool is_punct(Asm *a, int c) { return a->tok.kind == TK_PUNCT && a->tok.punct == c; }

static bool accept(Asm *a, int c) {
  if (!is_punct(a, c))
    return false;
  lex(a);
  return true;
}

static void expect(Asm *a, int c) {
  if (a->tok.kind == TK_END && c == ',')
    error_at(a, a->tok.col, "missing operand");
  if (!accept(a, c))
    error_at(a, a->tok.col, "expected '%c', found %s", c, desc(a, &a->tok));
}

static void expect_end(Asm *a) {
  if (a->tok.kind != TK_END)
    error_at(a, a->tok.col, "unexpected %s at end of statement", desc(a, &a->tok));
}


// ---------------------------------------------------------------- registers

// r0..r31 or s0..s31: returns the number, -1 if the name does not look like
// one, -2 if it does but is out of range (r32, r07).
static int reg_name(const Tok *t, char prefix) {
  if (t->kind != TK_IDENT || t->len < 2 || t->s[0] != prefix)
    return -1;
  int n = 0;
  for (int i = 1; i < t->len; i++) {
    if (!is_digit(t->s[i]))
      return -1;
    n = n < 1000 ? n * 10 + (t->s[i] - '0') : n;
  }
  if (n >= 32 || (t->len > 2 && t->s[1] == '0'))
    return -2;
  return n;
}

static bool reserved_name(const Tok *t) { return reg_name(t, 'r') != -1 || reg_name(t, 's') != -1; }

static int64_t expr_in(Asm *a, int64_t lo, int64_t hi, const char *what);

// rN or r(expr); sN or s(expr), the latter for .rept bodies.
static bool computed_reg(Asm *a, const Tok *t, char prefix) {
  return t->kind == TK_IDENT && t->len == 1 && t->s[0] == prefix && peek(a).kind == TK_PUNCT &&
         peek(a).punct == '(';
}

static uint8_t reg_or_sem(Asm *a, char prefix, const char *what) {
  if (computed_reg(a, &a->tok, prefix)) {
    lex(a);
    lex(a);
    uint8_t n = (uint8_t)expr_in(a, 0, 31, what);
    expect(a, ')');
    return n;
  }
  int n = reg_name(&a->tok, prefix);
  if (n == -2)
    error_at(a, a->tok.col, "bad %s %s (%c0..%c31)", what, desc(a, &a->tok), prefix, prefix);
  if (n < 0)
    error_at(a, a->tok.col, "expected a %s, found %s", what, desc(a, &a->tok));
  lex(a);
  return (uint8_t)n;
}

static uint8_t reg(Asm *a) { return reg_or_sem(a, 'r', "register"); }
static uint8_t sem(Asm *a) { return reg_or_sem(a, 's', "semaphore"); }

// ---------------------------------------------------------------- symbols

static size_t hash_name(const char *s, size_t n) {
  size_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static Sym *find(Asm *a, const char *s, int len) {
  if (!a->hashcap)
    return NULL;
  for (size_t i = hash_name(s, (size_t)len) & (a->hashcap - 1);; i = (i + 1) & (a->hashcap - 1)) {
    size_t k = a->hash[i];
    if (!k)
      return NULL;
    Sym *y = &a->syms[k - 1];
    if (strlen(y->name) == (size_t)len && !memcmp(y->name, s, (size_t)len))
      return y;
  }
}

static void rehash(Asm *a, size_t cap) {
  free(a->hash);
  a->hash = calloc(cap, sizeof *a->hash);
  if (!a->hash)
    error_at(a, 1, "out of memory");
  a->hashcap = cap;
  for (size_t k = 0; k < a->nsyms; k++) {
    size_t i = hash_name(a->syms[k].name, strlen(a->syms[k].name)) & (cap - 1);
    while (a->hash[i])
      i = (i + 1) & (cap - 1);
    a->hash[i] = k + 1;
  }
}

static Sym *add_sym(Asm *a, const char *s, int len) {
  if ((a->nsyms + 1) * 2 > a->hashcap)
    rehash(a, a->hashcap ? a->hashcap * 2 : 64);
  a->syms = grow(a, a->syms, &a->capsyms, a->nsyms + 1, sizeof *a->syms);
  char *name = malloc((size_t)len + 1);
  if (!name)
    error_at(a, 1, "out of memory");
  memcpy(name, s, (size_t)len);
  name[len] = 0;
  a->syms[a->nsyms++] = (Sym){.name = name, .pass = -1};
  size_t i = hash_name(s, (size_t)len) & (a->hashcap - 1);
  while (a->hash[i])
    i = (i + 1) & (a->hashcap - 1);
  a->hash[i] = a->nsyms;
  return &a->syms[a->nsyms - 1];
}

// Defines a label (is_label) or an .equ constant in this pass.
static void define(Asm *a, const Tok *t, int64_t value, bool is_label) {
  if (reserved_name(t))
    error_at(a, t->col, "%s is a register or semaphore name", desc(a, t));
  Sym *y = find(a, t->s, t->len);
  if (y && y->rept)
    error_at(a, t->col, "%s is a .rept counter", desc(a, t));
  if (y && y->pass == 0) {
    if (is_label)
      error_at(a, t->col, "label %s is also defined with -D", desc(a, t));
    return; // -D overrides .equ, so a program's default can be changed
  }
  if (y && y->pass == a->pass)
    error_at(a, t->col, "%s is already defined on line %d", desc(a, t), y->line);
  if (!y)
    y = add_sym(a, t->s, t->len);
  if (y->pass < 0 || y->value != value) {
    a->changed = true;
    a->changed_line = a->lineno;
  }
  y->value = value;
  y->pass = a->pass;
  y->line = a->lineno;
}

// ---------------------------------------------------------------- expressions

static uint64_t number(Asm *a, const Tok *t) {
  const char *s = t->s, *e = t->s + t->len;
  int base = 10;
  if (t->len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    base = 16, s += 2;
  else if (t->len > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
    base = 2, s += 2;
  uint64_t v = 0;
  for (; s < e; s++) {
    int d = is_digit(*s) ? *s - '0'
            : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
            : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                       : 99;
    if (d >= base)
      error_at(a, t->col, "bad number %s", desc(a, t));
    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
      error_at(a, t->col, "number %s does not fit 64 bits", desc(a, t));
    v = v * (uint64_t)base + (uint64_t)d;
  }
  return v;
}

static int64_t expr(Asm *a);

static int64_t primary(Asm *a) {
  Tok t = a->tok;
  if (t.kind == TK_NUM) {
    lex(a);
    return (int64_t)number(a, &t);
  }
  if (accept(a, '(')) {
    int64_t v = expr(a);
    expect(a, ')');
    return v;
  }
  if (t.kind == TK_IDENT && reserved_name(&t))
    error_at(a, t.col, "%s is a register, not a value", desc(a, &t));
  if (t.kind == TK_IDENT) {
    lex(a);
    Sym *y = find(a, t.s, t.len);
    if (y && y->pass >= 0)
      return y->value;
    value_error(a, t.col, "undefined symbol %s", desc(a, &t));
    return 0;
  }
  error_at(a, t.col, "expected a value, found %s", desc(a, &t));
}

static int64_t unary(Asm *a) {
  if (++a->depth > MAX_DEPTH)
    error_at(a, a->tok.col, "expression nested too deeply");
  int64_t v;
  if (accept(a, '-'))
    v = (int64_t)(0 - (uint64_t)unary(a));
  else if (accept(a, '~'))
    v = ~unary(a);
  else if (accept(a, '+'))
    v = unary(a);
  else
    v = primary(a);
  a->depth--;
  return v;
}

static int precedence(const Tok *t) {
  if (t->kind != TK_PUNCT)
    return 0;
  switch (t->punct) {
  case '|': return 1;
  case '^': return 2;
  case '&': return 3;
  case '<': case '>': return 4;
  case '+': case '-': return 5;
  case '*': case '/': case '%': return 6;
  }
  return 0;
}

// 64-bit two's complement, computed unsigned so nothing is undefined.
static int64_t apply(Asm *a, int op, int col, int64_t l, int64_t r) {
  uint64_t x = (uint64_t)l, y = (uint64_t)r;
  switch (op) {
  case '|': return (int64_t)(x | y);
  case '^': return (int64_t)(x ^ y);
  case '&': return (int64_t)(x & y);
  case '+': return (int64_t)(x + y);
  case '-': return (int64_t)(x - y);
  case '*': return (int64_t)(x * y);
  }
  if (op == '<' || op == '>') {
    if (r < 0 || r > 63) {
      value_error(a, col, "shift count %lld is not in 0..63", (long long)r);
      return 0;
    }
    if (op == '<')
      return (int64_t)(x << r);
    return l < 0 ? (int64_t)~(~x >> r) : (int64_t)(x >> r); // arithmetic
  }
  if (r == 0) {
    value_error(a, col, "division by zero");
    return 0;
  }
  if (l == INT64_MIN && r == -1)
    return op == '/' ? l : 0;
  return op == '/' ? l / r : l % r;
}

static int64_t binary(Asm *a, int min) {
  int64_t l = unary(a);
  for (;;) {
    int p = precedence(&a->tok);
    if (!p || p < min)
      return l;
    int op = a->tok.punct, col = a->tok.col;
    lex(a);
    l = apply(a, op, col, l, binary(a, p + 1));
  }
}

static int64_t expr(Asm *a) { return binary(a, 1); }

// An expression that must lie in lo..hi; what names it in the message.
static int64_t expr_in(Asm *a, int64_t lo, int64_t hi, const char *what) {
  int col = a->tok.col;
  int64_t v = expr(a);
  if (v < lo || v > hi) {
    value_error(a, col, "%s %lld is out of range (%lld..%lld)", what, (long long)v,
                (long long)lo, (long long)hi);
    return lo > 0 ? lo : 0;
  }
  return v;
}

static int32_t imm32(Asm *a) { return (int32_t)expr_in(a, INT32_MIN, INT32_MAX, "immediate"); }

// A branch target: an instruction index (a label, or "@N" as the
// disassembler prints it). Encoded relative to this instruction.
static int32_t target(Asm *a) {
  int col = a->tok.col;
  accept(a, '@');
  int64_t off = (int64_t)((uint64_t)expr(a) - a->ncode);
  if (off < INT32_MIN || off > INT32_MAX) {
    value_error(a, col, "branch target is too far away (%lld instructions)", (long long)off);
    return 0;
  }
  return (int32_t)off;
}

// ---------------------------------------------------------------- emitting

static void emit(Asm *a, uint64_t word) {
  if (a->ncode >= MAX_CODE)
    error_at(a, 1, "more than %u instructions", MAX_CODE);
  if (a->final) {
    a->code = grow(a, a->code, &a->capcode, a->ncode + 1, sizeof *a->code);
    a->code[a->ncode] = word;
  }
  a->ncode++;
}

static void emit_inst(Asm *a, const isa_inst *in) { emit(a, isa_encode(in)); }

static Chunk *cur(Asm *a) { return &a->chunks[a->cur]; }

// Appends n bytes (zeros if src is NULL) to the current data run.
static void emit_data(Asm *a, const void *src, uint64_t n, int col) {
  Chunk *c = cur(a);
  uint64_t end = c->addr + c->size, room = MAX_SMEM - end; // .smem checked addr <= MAX_SMEM
  if (c->sec != SEC_SMEM) // a run is bounded, and must not wrap past 2^64
    room = MAX_RUN - c->size < UINT64_MAX - end ? MAX_RUN - c->size : UINT64_MAX - end;
  if (n > room) {
    if (c->sec == SEC_SMEM)
      value_error(a, col, "SMEM data beyond %llu bytes", MAX_SMEM);
    else
      value_error(a, col, "%s data run larger than %llu bytes or past the end of memory",
                  sec_names[c->sec], MAX_RUN);
    return;
  }
  if (a->final && n) {
    c->data = grow(a, c->data, &c->cap, c->size + n, 1);
    if (src)
      memcpy(c->data + c->size, src, n);
    else
      memset(c->data + c->size, 0, n);
  }
  c->size += n;
}

static uint64_t here(Asm *a) { return a->sec == SEC_TEXT ? a->ncode : cur(a)->addr + cur(a)->size; }

static void bind_label(Asm *a) {
  if (!a->label.len)
    return;
  Tok t = a->label;
  a->label.len = 0;
  define(a, &t, (int64_t)here(a), true);
}

static void new_chunk(Asm *a, Section sec, uint64_t addr, int col) {
  a->chunks = grow(a, a->chunks, &a->capchunks, a->nchunks + 1, sizeof *a->chunks);
  a->chunks[a->nchunks] = (Chunk){.sec = sec, .addr = addr, .line = a->lineno, .col = col};
  a->cur = (long)a->nchunks++;
  if (sec == SEC_SMEM)
    a->last_smem = a->cur;
  a->sec = sec;
}

// ---------------------------------------------------------------- instructions

static uint8_t space(Asm *a) {
  for (int i = 0; i < 3; i++) {
    if (tok_is(&a->tok, isa_space_names[i])) {
      lex(a);
      expect(a, ':');
      return (uint8_t)i;
    }
  }
  error_at(a, a->tok.col, "expected an address space (host, hbm, local), found %s",
           desc(a, &a->tok));
}

enum { OPT_WAIT = 1, OPT_SIGNAL = 2, OPT_Q = 4, OPT_MXU = 8, OPT_ACC = 16, OPT_WIN = 32 };

// Trailing options of a tile instruction, in any order, each at most once.
static void options(Asm *a, isa_inst *in, unsigned allowed, const char *mn) {
  static const char *const names[] = {"wait", "signal", "q", "mxu", "acc", "win"};
  unsigned seen = 0;
  while (accept(a, ',')) {
    Tok t = a->tok;
    unsigned opt = 0;
    for (int i = 0; i < 6; i++)
      if (tok_is(&t, names[i]))
        opt = 1u << i;
    if (!(opt & allowed))
      error_at(a, t.col, "unknown option %s for %s", desc(a, &t), mn);
    if (seen & opt)
      error_at(a, t.col, "option %s given twice", desc(a, &t));
    seen |= opt;
    lex(a);
    if (opt == OPT_ACC || opt == OPT_WIN) {
      in->flags |= opt == OPT_ACC ? MXU_FLAG_ACC : MXU_FLAG_WIN;
      continue;
    }
    expect(a, '=');
    if (opt == OPT_WAIT)
      in->wait = true, in->wait_sem = sem(a);
    else if (opt == OPT_SIGNAL)
      in->signal = true, in->signal_sem = sem(a);
    else
      in->unit = (uint8_t)expr_in(a, 0, ISA_MAX_UNIT - 1, opt == OPT_Q ? "queue" : "MXU index");
  }
}

static int dtype(const char *s, size_t n) {
  for (int i = 0; i < 4; i++)
    if (strlen(isa_dtype_names[i]) == n && !memcmp(isa_dtype_names[i], s, n))
      return i;
  return -1;
}

// mxu.ldw.T rSrc, rStride, rK, rN / mxu.mm.T rAcc, rSrc, rRows, rStride
// (mxu.mm.T rAcc, rSrc, rRows, rDesc, win: a window of a slab)
static void mxu(Asm *a, const Tok *mn, int op, const char *suffix) {
  int dt = dtype(suffix, (size_t)(mn->s + mn->len - suffix));
  if (dt != DT_BF16 && dt != DT_I8)
    error_at(a, mn->col, "%s needs an operand type: %s.bf16 or %s.i8", isa_ops[op].mnemonic,
             isa_ops[op].mnemonic, isa_ops[op].mnemonic);
  isa_inst in = {.op = (uint8_t)op, .dt_src1 = (uint8_t)dt};
  in.ra = reg(a), expect(a, ',');
  in.rb = reg(a), expect(a, ',');
  in.rc = reg(a), expect(a, ',');
  in.rd = reg(a);
  options(a, &in, OPT_WAIT | OPT_SIGNAL | OPT_MXU | (op == OP_MXU_MM ? OPT_ACC | OPT_WIN : 0),
          isa_ops[op].mnemonic);
  emit_inst(a, &in);
}

// v.OP.T or v.OP.Tdst.Tsrc1[.Tsrc2]
static void vpu(Asm *a, const Tok *mn) {
  const char *s = mn->s + 2, *e = mn->s + mn->len;
  const char *dot = memchr(s, '.', (size_t)(e - s));
  int funct = -1;
  for (int f = 0; f < 64 && dot; f++) {
    const char *n = isa_vpu_ops[f].name;
    if (n && strlen(n) == (size_t)(dot - s) && !memcmp(n, s, (size_t)(dot - s)))
      funct = f;
  }
  if (funct < 0)
    error_at(a, mn->col, "unknown vector instruction %s (v.OP.TYPE)", desc(a, mn));
  bool binary = isa_vpu_ops[funct].kind == VK_BINARY;
  int dt[3], n = 0, want = binary ? 3 : 2;
  for (const char *p = dot + 1, *q = p; q < e; p = q + 1) {
    q = memchr(p, '.', (size_t)(e - p));
    if (!q)
      q = e;
    int t = dtype(p, (size_t)(q - p));
    if (t < 0)
      error_at(a, mn->col + (int)(p - mn->s), "unknown type '%.*s' (f32, bf16, i32, i8)",
               (int)(q - p), p);
    if (n == want)
      n = 99; // too many: reported below
    else
      dt[n++] = t;
  }
  if (n == 1)
    dt[1] = dt[2] = dt[0];
  else if (n != want)
    error_at(a, mn->col, "v.%s takes one type or %s", isa_vpu_ops[funct].name,
             binary ? "three (dst.src1.src2)" : "two (dst.src1)");
  isa_inst in = {.op = OP_VPU, .funct = (uint8_t)funct, .dt_dst = (uint8_t)dt[0],
                 .dt_src1 = (uint8_t)dt[1], .dt_src2 = binary ? (uint8_t)dt[2] : 0};
  in.ra = reg(a), expect(a, ',');
  in.rb = reg(a), expect(a, ',');
  if (binary)
    in.rc = reg(a), expect(a, ',');
  in.rd = reg(a);
  options(a, &in, OPT_WAIT | OPT_SIGNAL, "v");
  emit_inst(a, &in);
}

static void dma(Asm *a) {
  isa_inst in = {.op = OP_DMA};
  uint8_t dst = space(a);
  in.ra = reg(a), expect(a, ',');
  uint8_t src = space(a);
  in.rb = reg(a), expect(a, ',');
  in.rc = reg(a);
  in.funct = (uint8_t)(dst << 2 | src);
  options(a, &in, OPT_WAIT | OPT_SIGNAL | OPT_Q, "dma");
  emit_inst(a, &in);
}

// li of any 64-bit value: one word if it fits sign-extended 32 bits, else
// li of the low half and lih of the high half.
static void li(Asm *a, uint8_t ra) {
  int64_t v = expr(a);
  size_t i = a->li_next++;
  if (i == a->nli) { // first time this li is seen
    a->li_big = grow(a, a->li_big, &a->capli, i + 1, 1);
    a->li_big[a->nli++] = 0;
  }
  if ((v < INT32_MIN || v > INT32_MAX) && !a->li_big[i]) {
    a->li_big[i] = 1;
    a->changed = true;
    a->changed_line = a->lineno;
  }
  emit_inst(a, &(isa_inst){.op = OP_LI, .ra = ra, .imm = (int32_t)(uint32_t)v});
  if (a->li_big[i])
    emit_inst(a, &(isa_inst){.op = OP_LIH, .ra = ra, .imm = (int32_t)(uint32_t)((uint64_t)v >> 32)});
}

static uint8_t csr(Asm *a) {
  for (int i = 0; i < CSR_COUNT; i++) {
    if (tok_is(&a->tok, isa_csr_names[i])) {
      lex(a);
      return (uint8_t)i;
    }
  }
  if (a->tok.kind == TK_IDENT && !find(a, a->tok.s, a->tok.len))
    value_error(a, a->tok.col, "unknown control register %s", desc(a, &a->tok));
  return (uint8_t)expr_in(a, 0, CSR_COUNT - 1, "control register");
}

// imm(rB) or (rB)
static void mem_operand(Asm *a, isa_inst *in) {
  Tok next = peek(a);
  bool is_reg = reg_name(&next, 'r') != -1 || (next.kind == TK_IDENT && next.len == 1 && *next.s == 'r');
  if (!(is_punct(a, '(') && is_reg))
    in->imm = imm32(a);
  expect(a, '(');
  in->rb = reg(a);
  expect(a, ')');
}

static void scalar(Asm *a, int op) {
  isa_inst in = {.op = (uint8_t)op};
  switch (isa_ops[op].format) {
  case FMT_NONE: break;
  case FMT_R:
    in.ra = reg(a), expect(a, ',');
    in.rb = reg(a), expect(a, ',');
    in.rc = reg(a);
    break;
  case FMT_I:
    in.ra = reg(a), expect(a, ',');
    in.rb = reg(a), expect(a, ',');
    if (op == OP_SHLI || op == OP_SHRI || op == OP_SRAI)
      in.imm = (int32_t)expr_in(a, 0, 63, "shift amount");
    else
      in.imm = imm32(a);
    break;
  case FMT_LI:
    in.ra = reg(a), expect(a, ',');
    if (op == OP_LI) {
      li(a, in.ra);
      return;
    }
    in.imm = (int32_t)(uint32_t)expr_in(a, INT32_MIN, UINT32_MAX, "immediate");
    break;
  case FMT_MEM:
    in.ra = reg(a), expect(a, ',');
    mem_operand(a, &in);
    break;
  case FMT_B:
    in.ra = reg(a), expect(a, ',');
    in.rb = reg(a), expect(a, ',');
    in.imm = target(a);
    break;
  case FMT_J:
  case FMT_DB:
    in.ra = reg(a), expect(a, ',');
    in.imm = target(a);
    break;
  case FMT_JR:
    in.ra = reg(a), expect(a, ',');
    in.rb = reg(a), expect(a, ',');
    in.imm = imm32(a);
    break;
  case FMT_SEM: {
    uint8_t s = sem(a);
    int64_t count = accept(a, ',') ? expr_in(a, 1, (1 << 23) - 1, "count") : 1;
    in.imm = (int32_t)((uint32_t)count << 8 | s);
    break;
  }
  case FMT_CSR:
    in.ra = reg(a), expect(a, ',');
    in.imm = csr(a);
    break;
  case FMT_T: dma(a); return;
  }
  emit_inst(a, &in);
}

static bool has_prefix(const Tok *t, const char *p) {
  size_t n = strlen(p);
  return (size_t)t->len > n && !memcmp(t->s, p, n);
}

static void instruction(Asm *a) {
  Tok mn = a->tok;
  if (a->sec != SEC_TEXT)
    error_at(a, mn.col, "instruction %s outside .text", desc(a, &mn));
  bind_label(a);
  lex(a);
  for (int op = 0; op < 256; op++) {
    const char *m = isa_ops[op].mnemonic;
    if (m && tok_is(&mn, m)) {
      if (isa_ops[op].format == FMT_T && op != OP_DMA)
        error_at(a, mn.col, "%s needs a type suffix, e.g. %s", m,
                 op == OP_VPU ? "v.add.f32" : op == OP_MXU_MM ? "mxu.mm.bf16" : "mxu.ldw.bf16");
      scalar(a, op);
      return;
    }
  }
  if (tok_is(&mn, "mv")) { // addi rA, rB, 0
    isa_inst in = {.op = OP_ADDI};
    in.ra = reg(a), expect(a, ',');
    in.rb = reg(a);
    emit_inst(a, &in);
  } else if (tok_is(&mn, "j")) { // jal r0, target
    emit_inst(a, &(isa_inst){.op = OP_JAL, .imm = target(a)});
  } else if (has_prefix(&mn, "mxu.ldw.")) {
    mxu(a, &mn, OP_MXU_LDW, mn.s + 8);
  } else if (has_prefix(&mn, "mxu.mm.")) {
    mxu(a, &mn, OP_MXU_MM, mn.s + 7);
  } else if (has_prefix(&mn, "v.")) {
    vpu(a, &mn);
  } else {
    error_at(a, mn.col, "unknown instruction %s", desc(a, &mn));
  }
}

// ---------------------------------------------------------------- directives

static void need_data(Asm *a, const Tok *d) {
  if (a->sec == SEC_TEXT)
    error_at(a, d->col, "%s outside a data section (.smem, .hbm, .host)", desc(a, d));
}

static void put_le(uint8_t *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    b[i] = (uint8_t)(v >> 8 * i);
}

static void data_ints(Asm *a, int width) {
  do {
    int col = a->tok.col;
    int64_t v = expr(a);
    if (width < 8 && (v < -(INT64_C(1) << (8 * width - 1)) || v >= INT64_C(1) << 8 * width)) {
      value_error(a, col, "value %lld does not fit %d bits", (long long)v, 8 * width);
      v = 0;
    }
    uint8_t b[8];
    put_le(b, (uint64_t)v, width);
    emit_data(a, b, (uint64_t)width, col);
  } while (accept(a, ','));
}

// Rounds a double to an IEEE format with an 8-bit exponent and mbits of
// fraction (bf16: 7), to nearest even; gives the bits without the sign.
// Works in units of the result's last place, so subnormals and the carry
// into the exponent fall out of the same formula.
static uint32_t round_e8(double d, int mbits) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  int exp = (int)(u >> 52 & 0x7ff);
  uint64_t frac = u & ((UINT64_C(1) << 52) - 1);
  uint32_t inf = 0xffu << mbits;
  if (exp == 0x7ff)
    return frac ? inf | 1u << (mbits - 1) : inf;
  if (exp == 0)
    return 0; // double subnormals are far below the smallest bf16
  int e = exp - 1023, emin = e < -126 ? -126 : e;
  uint64_t sig = frac | UINT64_C(1) << 52;
  int shift = 52 - mbits + (emin - e); // bits below the result's last place
  uint64_t q;
  if (shift >= 64) {
    q = 0;
  } else {
    uint64_t rest = sig & ((UINT64_C(1) << shift) - 1), half = UINT64_C(1) << (shift - 1);
    q = sig >> shift;
    if (rest > half || (rest == half && (q & 1)))
      q++;
  }
  uint64_t bits = ((uint64_t)(emin + 126) << mbits) + q;
  return bits >= inf ? inf : (uint32_t)bits;
}

// A decimal float literal, inf or nan, with an optional sign. Scanned from the
// raw text, since the lexer splits "1.5e-3" into several tokens.
static uint32_t float_literal(Asm *a, bool bf16) {
  const char *p = a->tok.s, *s = p, *e = a->end;
  int col = a->tok.col;
  bool neg = p < e && *p == '-';
  if (p < e && (*p == '-' || *p == '+'))
    p++;
  const char *num = p;
  while (p < e && is_alpha(*p))
    p++;
  size_t n = (size_t)(p - num);
  bool word = n && ((n == 3 && !memcmp(num, "inf", 3)) || (n == 3 && !memcmp(num, "nan", 3)) ||
                    (n == 8 && !memcmp(num, "infinity", 8)));
  if (!word) {
    p = num;
    size_t digits = 0;
    for (; p < e && is_digit(*p); p++)
      digits++;
    if (p < e && *p == '.')
      for (p++; p < e && is_digit(*p); p++)
        digits++;
    if (digits && p < e && (*p == 'e' || *p == 'E')) {
      const char *q = p + 1;
      if (q < e && (*q == '+' || *q == '-'))
        q++;
      if (q < e && is_digit(*q)) {
        while (q < e && is_digit(*q))
          q++;
        p = q;
      }
    }
    if (!digits || (p < e && is_ident_char(*p)))
      error_at(a, col, "expected a float literal (1.5, -2e3, inf, nan or 0x bits)");
  }
  char buf[512];
  if ((size_t)(p - s) >= sizeof buf)
    error_at(a, col, "float literal too long");
  memcpy(buf, s, (size_t)(p - s));
  buf[p - s] = 0;
  a->p = p;
  lex(a);
  if (bf16)
    return round_e8(strtod(buf, NULL), 7) | (uint32_t)neg << 15;
  float f = strtof(buf, NULL);
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}

static void data_floats(Asm *a, bool bf16) {
  int width = bf16 ? 2 : 4;
  do {
    int col = a->tok.col;
    uint32_t bits;
    if (a->tok.kind == TK_NUM && a->tok.len > 1 && (a->tok.s[1] == 'x' || a->tok.s[1] == 'X'))
      bits = (uint32_t)expr_in(a, bf16 ? INT16_MIN : INT32_MIN, bf16 ? UINT16_MAX : UINT32_MAX,
                               "raw bits");
    else
      bits = float_literal(a, bf16);
    uint8_t b[4];
    put_le(b, bits, width);
    emit_data(a, b, (uint64_t)width, col);
  } while (accept(a, ','));
}

static void align(Asm *a, uint64_t n, int col) {
  uint64_t pad = (0 - here(a)) & (n - 1);
  emit_data(a, NULL, pad, col);
}

static void words(Asm *a, const int64_t *w, int n, int col) {
  for (int i = 0; i < n; i++) {
    uint8_t b[8];
    put_le(b, (uint64_t)w[i], 8);
    emit_data(a, b, 8, col);
  }
}

// .dmadesc inner, n1, ss1, ds1 [, n2, ss2, ds2 [, n3, ss3, ds3]]
static void dmadesc(Asm *a, int col) {
  int64_t w[ISA_DMA_DESC_WORDS] = {0, 1, 0, 0, 1, 0, 0, 1, 0, 0};
  w[0] = expr(a);
  int dims = 0;
  while (accept(a, ',')) {
    if (dims == 3)
      error_at(a, a->tok.col, "a DMA descriptor has at most 3 outer dimensions");
    for (int i = 0; i < 3; i++) {
      if (i)
        expect(a, ',');
      w[1 + 3 * dims + i] = expr(a);
    }
    dims++;
  }
  if (!dims)
    error_at(a, a->tok.col, "missing operand: .dmadesc inner, n1, ss1, ds1, ...");
  words(a, w, ISA_DMA_DESC_WORDS, col);
}

// .vdesc rows, cols, dst_stride, src1_stride [, src2_stride [, colstep [, mult, shift, zp]]]
static void vdesc(Asm *a, int col) {
  int64_t w[ISA_VPU_DESC_WORDS] = {0, 0, 0, 0, 0, 1, 1, 0, 0};
  for (int i = 0; i < 4; i++) {
    if (i)
      expect(a, ',');
    w[i] = expr(a);
  }
  w[4] = w[3];
  if (accept(a, ',')) {
    w[4] = expr(a);
    if (accept(a, ',')) {
      w[5] = expr_in(a, 0, 1, "src2 column step");
      if (accept(a, ',')) {
        w[6] = expr_in(a, INT32_MIN, INT32_MAX, "requant multiplier");
        expect(a, ',');
        w[7] = expr_in(a, 0, 63, "requant shift");
        expect(a, ',');
        w[8] = expr_in(a, INT32_MIN, INT32_MAX, "requant zero point");
      }
    }
  }
  words(a, w, ISA_VPU_DESC_WORDS, col);
}

// .windesc width, row_stride [, height, wrow_stride [, plane_stride]]
static void windesc(Asm *a, int col) {
  int64_t w[ISA_WIN_DESC_WORDS] = {0, 0, 1, 0, 0};
  w[0] = expr(a);
  expect(a, ',');
  w[1] = expr(a);
  if (accept(a, ',')) {
    w[2] = expr(a);
    expect(a, ',');
    w[3] = expr(a);
    if (accept(a, ','))
      w[4] = expr(a);
  }
  words(a, w, ISA_WIN_DESC_WORDS, col);
}

static void section(Asm *a, const Tok *d) {
  if (tok_is(d, ".text")) {
    a->sec = SEC_TEXT;
    a->cur = -1;
  } else if (tok_is(d, ".smem")) {
    uint64_t addr = 0;
    if (a->tok.kind != TK_END)
      addr = (uint64_t)expr_in(a, 0, MAX_SMEM, "SMEM address");
    else if (a->last_smem >= 0)
      addr = a->chunks[a->last_smem].addr + a->chunks[a->last_smem].size;
    new_chunk(a, SEC_SMEM, addr, d->col);
  } else {
    if (a->tok.kind == TK_END)
      error_at(a, a->tok.col, "missing operand: %s needs an address", desc(a, d));
    uint64_t addr = (uint64_t)expr(a);
    new_chunk(a, tok_is(d, ".hbm") ? SEC_HBM : SEC_HOST, addr, d->col);
  }
  bind_label(a); // a label on a section line names the new place
}

// A string literal decoded into out (ISA_IO_MAX_NAME + 1 bytes): a name for
// .input, .output or .chip.
static void name_string(Asm *a, char *out, const char *what) {
  Tok t = a->tok;
  if (t.kind != TK_STR)
    error_at(a, t.col, "expected the %s in double quotes, found %s", what, desc(a, &t));
  size_t n = 0;
  for (const char *p = t.s + 1; p < t.s + t.len - 1; p++) {
    if (*p == '\\')
      p++;
    if (n == ISA_IO_MAX_NAME)
      error_at(a, t.col, "%s longer than %d bytes", what, ISA_IO_MAX_NAME);
    out[n++] = *p;
  }
  out[n] = 0;
  if (!n)
    error_at(a, t.col, "empty %s", what);
  if (!isa_io_name_valid(out, n))
    error_at(a, t.col, "%s is not UTF-8 without control characters", what);
  lex(a);
}

// .input/.output "NAME", DTYPE, [D0, D1, ...], MEM:ADDR
static void io_decl(Asm *a, const Tok *d) {
  isa_io t = {.role = tok_is(d, ".input") ? IO_INPUT : IO_OUTPUT};
  const char *role = t.role == IO_INPUT ? "input" : "output";
  int name_col = a->tok.col;
  name_string(a, t.name, "name");
  expect(a, ',');
  Tok ty = a->tok;
  int dt = -1;
  for (int i = 0; i < IO_DTYPES; i++)
    if (tok_is(&ty, isa_io_dtype_names[i]))
      dt = i;
  if (dt < 0)
    error_at(a, ty.col, "expected an element type (f32, bf16, i32, i8, i64, u8), found %s",
             desc(a, &ty));
  t.dtype = (isa_io_dtype)dt;
  lex(a);
  expect(a, ',');
  int shape_col = a->tok.col;
  if (!accept(a, '['))
    error_at(a, a->tok.col, "expected a shape in [ ], found %s", desc(a, &a->tok));
  bool overflow = false;
  uint64_t bytes = (uint64_t)isa_io_dtype_bytes[dt];
  if (!is_punct(a, ']')) {
    for (;;) {
      int col = a->tok.col;
      if (t.rank == ISA_IO_MAX_RANK)
        error_at(a, col, "more than %d dimensions", ISA_IO_MAX_RANK);
      int64_t v = expr(a);
      if (v < 0) {
        value_error(a, col, "dimension %lld is negative", (long long)v);
        v = 1;
      }
      t.dims[t.rank++] = v;
      overflow |= __builtin_mul_overflow(bytes, (uint64_t)v, &bytes);
      if (!accept(a, ','))
        break;
    }
  }
  expect(a, ']');
  if (overflow)
    value_error(a, shape_col, "the %s's size in bytes overflows 64 bits", role);
  expect(a, ',');
  Tok m = a->tok;
  if (tok_is(&m, "host"))
    t.mem = IO_MEM_HOST;
  else if (tok_is(&m, "hbm"))
    t.mem = IO_MEM_HBM;
  else
    error_at(a, m.col, "expected host or hbm, found %s", desc(a, &m));
  lex(a);
  expect(a, ':');
  int addr_col = a->tok.col;
  t.addr = (uint64_t)expr(a);
  if (!overflow && t.addr + (bytes - 1) < t.addr)
    value_error(a, addr_col, "%llu bytes at 0x%llx run past the end of memory",
                (unsigned long long)bytes, (unsigned long long)t.addr);
  if (!a->final)
    return;
  for (size_t i = 0; i < a->nio; i++)
    if (a->io[i].role == t.role && !strcmp(a->io[i].name, t.name))
      error_at(a, name_col, "a second %s named '%s'", role, t.name);
  a->io = grow(a, a->io, &a->capio, a->nio + 1, sizeof *a->io);
  a->io[a->nio++] = t;
}

static void chip(Asm *a, const Tok *d) {
  char name[ISA_CHIP_MAX_NAME + 1];
  name_string(a, name, "chip name");
  if (a->chip_line)
    error_at(a, d->col, "a second .chip (the first is on line %d)", a->chip_line);
  a->chip_line = a->lineno;
  memcpy(a->chip, name, sizeof name);
}

// Ends the open layer at the current instruction; an empty one is an error.
static void end_layer(Asm *a, int col) {
  if (!a->layer_open)
    return;
  a->layer_open = false;
  isa_layer *l = &a->layers[a->nlayers - 1];
  l->pc_end = a->ncode;
  if (l->pc_end == l->pc_begin)
    error_at(a, col, "layer '%s' has no instructions", l->name);
}

// .layer "NAME", "OP" [, MACS]: a layer starts here and runs to the next
// .layer or .endlayer (or the end of the code). Collected in the final pass.
static void layer(Asm *a, const Tok *d) {
  if (a->sec != SEC_TEXT)
    error_at(a, d->col, ".layer outside .text");
  char name[ISA_IO_MAX_NAME + 1], op[ISA_IO_MAX_NAME + 1];
  int name_col = a->tok.col;
  name_string(a, name, "layer name");
  expect(a, ',');
  int op_col = a->tok.col;
  name_string(a, op, "layer op");
  int64_t macs = 0;
  if (accept(a, ','))
    macs = expr(a);
  if (strlen(name) >= ISA_LAYER_NAME)
    error_at(a, name_col, "layer name longer than %d bytes", ISA_LAYER_NAME - 1);
  if (strlen(op) >= sizeof ((isa_layer *)0)->op)
    error_at(a, op_col, "layer op longer than %zu bytes", sizeof ((isa_layer *)0)->op - 1);
  if (!a->final)
    return;
  end_layer(a, d->col);
  a->layers = grow(a, a->layers, &a->caplayers, a->nlayers + 1, sizeof *a->layers);
  isa_layer *l = &a->layers[a->nlayers++];
  memset(l, 0, sizeof *l);
  memcpy(l->name, name, strlen(name) + 1);
  memcpy(l->op, op, strlen(op) + 1);
  l->pc_begin = a->ncode;
  l->macs = (uint64_t)macs;
  a->layer_open = true;
}

static void rept(Asm *a);

static void directive(Asm *a) {
  Tok d = a->tok;
  lex(a);
  if (tok_is(&d, ".text") || tok_is(&d, ".smem") || tok_is(&d, ".hbm") || tok_is(&d, ".host")) {
    section(a, &d);
    return;
  }
  if (tok_is(&d, ".align")) {
    need_data(a, &d);
    int col = a->tok.col;
    int64_t n = expr(a);
    if (n < 1 || n > (1 << 30) || (n & (n - 1))) {
      value_error(a, col, "alignment %lld is not a power of two up to 2^30", (long long)n);
      n = 1;
    }
    align(a, (uint64_t)n, d.col);
    bind_label(a); // a label on the line names the aligned address
    return;
  }
  if (tok_is(&d, ".dmadesc") || tok_is(&d, ".vdesc") || tok_is(&d, ".windesc")) {
    need_data(a, &d);
    align(a, 8, d.col); // the label names the descriptor, not the padding
    bind_label(a);
    if (tok_is(&d, ".dmadesc"))
      dmadesc(a, d.col);
    else if (tok_is(&d, ".vdesc"))
      vdesc(a, d.col);
    else
      windesc(a, d.col);
    return;
  }
  bind_label(a);
  if (tok_is(&d, ".equ") || tok_is(&d, ".set")) {
    Tok name = a->tok;
    if (name.kind != TK_IDENT)
      error_at(a, name.col, "expected a symbol name, found %s", desc(a, &name));
    lex(a);
    expect(a, ',');
    define(a, &name, expr(a), false);
  } else if (tok_is(&d, ".rept")) {
    rept(a);
  } else if (tok_is(&d, ".endr")) {
    error_at(a, d.col, ".endr without .rept");
  } else if (tok_is(&d, ".input") || tok_is(&d, ".output")) {
    io_decl(a, &d);
  } else if (tok_is(&d, ".chip")) {
    chip(a, &d);
  } else if (tok_is(&d, ".layer")) {
    layer(a, &d);
  } else if (tok_is(&d, ".endlayer")) {
    if (a->sec != SEC_TEXT)
      error_at(a, d.col, ".endlayer outside .text");
    if (a->final && !a->layer_open)
      error_at(a, d.col, ".endlayer without .layer");
    if (a->final)
      end_layer(a, d.col);
  } else if (tok_is(&d, ".inst")) {
    if (a->sec != SEC_TEXT)
      error_at(a, d.col, ".inst outside .text");
    emit(a, (uint64_t)expr(a));
  } else {
    static const struct { const char *name; int width; } ints[] = {
        {".i8", 1}, {".byte", 1}, {".i16", 2}, {".i32", 4}, {".word", 4}, {".i64", 8}, {".dword", 8},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
      if (tok_is(&d, ints[i].name)) {
        need_data(a, &d);
        data_ints(a, ints[i].width);
        return;
      }
    }
    if (tok_is(&d, ".f32") || tok_is(&d, ".bf16")) {
      need_data(a, &d);
      data_floats(a, tok_is(&d, ".bf16"));
    } else if (tok_is(&d, ".zero")) {
      need_data(a, &d);
      emit_data(a, NULL, (uint64_t)expr_in(a, 0, INT64_MAX, "size"), d.col);
    } else {
      error_at(a, d.col, "unknown directive %s", desc(a, &d));
    }
  }
}

// ---------------------------------------------------------------- passes

static void statement(Asm *a) {
  lex(a);
  if (a->tok.kind == TK_END)
    return;
  if (a->tok.kind == TK_IDENT && peek(a).kind == TK_PUNCT && peek(a).punct == ':') {
    a->label = a->tok;
    lex(a);
    lex(a);
  }
  if (a->tok.kind == TK_END) {
    bind_label(a);
    return;
  }
  if (a->tok.kind != TK_IDENT)
    error_at(a, a->tok.col, "expected an instruction or directive, found %s", desc(a, &a->tok));
  if (a->tok.s[0] == '.')
    directive(a);
  else
    instruction(a);
  expect_end(a);
}

static void free_chunks(Asm *a) {
  for (size_t i = 0; i < a->nchunks; i++)
    free(a->chunks[i].data);
  a->nchunks = 0;
}

static void start_line(Asm *a, size_t i) {
  a->lineno = (int)i + 1;
  a->line = a->p = a->lines[i].s;
  a->end = a->lines[i].e;
  a->label.len = 0;
  a->depth = 0;
  a->io_syntax = false;
}

static void count_statement(Asm *a) {
  if (++a->statements > MAX_STATEMENTS)
    error_at(a, 1, "more than %d statements in one pass (a runaway .rept?)", MAX_STATEMENTS);
}

static void run_lines(Asm *a, size_t from, size_t to) {
  for (size_t i = from; i < to; i = a->next) {
    count_statement(a);
    a->next = i + 1;
    start_line(a, i);
    statement(a);
  }
}

static void run_pass(Asm *a) {
  free_chunks(a);
  a->sec = SEC_TEXT;
  a->cur = a->last_smem = -1;
  a->ncode = a->li_next = a->statements = 0;
  a->chip_line = 0;
  a->changed = false;
  run_lines(a, 0, a->nlines);
}

// Whether line i is a .rept (1), an .endr (-1) or anything else (0).
static int rept_kind(Asm *a, size_t i) {
  start_line(a, i);
  lex(a);
  Tok first = a->tok;
  if (first.kind == TK_IDENT && peek(a).kind == TK_PUNCT && peek(a).punct == ':') {
    lex(a);
    lex(a);
    if (tok_is(&a->tok, ".endr"))
      error_at(a, first.col, "a label cannot name an .endr");
  }
  return tok_is(&a->tok, ".rept") ? 1 : tok_is(&a->tok, ".endr") ? -1 : 0;
}

// .rept [NAME,] COUNT ... .endr: runs the lines between COUNT times, with
// NAME = 0, 1, ... visible as a symbol inside.
static void rept(Asm *a) {
  size_t at = (size_t)a->lineno - 1;
  Tok var = {.len = 0};
  if (a->tok.kind == TK_IDENT && peek(a).kind == TK_PUNCT && peek(a).punct == ',') {
    var = a->tok;
    lex(a);
    lex(a);
  }
  int64_t n = expr_in(a, 0, MAX_REPT, "repeat count");
  expect_end(a);
  size_t end = at + 1;
  for (int depth = 0;; end++) {
    if (end == a->nlines) {
      start_line(a, at);
      error_at(a, 1, ".rept without a matching .endr");
    }
    int k = rept_kind(a, end);
    if (k < 0 && depth-- == 0)
      break;
    depth += k > 0;
  }
  size_t y = SIZE_MAX; // the counter's index: the body may add symbols and move them
  if (var.len) {
    start_line(a, at);
    if (reserved_name(&var))
      error_at(a, var.col, "%s is a register or semaphore name", desc(a, &var));
    Sym *s = find(a, var.s, var.len);
    if (s && (!s->rept || s->pass >= 0))
      error_at(a, var.col, "%s is already defined", desc(a, &var));
    if (!s)
      s = add_sym(a, var.s, var.len);
    s->rept = true;
    y = (size_t)(s - a->syms);
  }
  for (int64_t i = 0; i < n; i++) {
    start_line(a, at); // for the message
    count_statement(a);
    if (y != SIZE_MAX)
      a->syms[y].value = i, a->syms[y].pass = a->pass;
    run_lines(a, at + 1, end);
  }
  if (y != SIZE_MAX)
    a->syms[y].pass = -1;
  start_line(a, end); // carry on after the .endr
  a->p = a->end;
  lex(a);
  a->next = end + 1;
}

// -D NAME=VALUE, read before the source; VALUE may use earlier defines.
static void read_define(Asm *a, const char *d) {
  a->define = d;
  a->line = a->p = d;
  a->end = d + strlen(d);
  a->final = true;
  lex(a);
  Tok name = a->tok;
  if (name.kind != TK_IDENT || name.s[0] == '.' || reserved_name(&name))
    error_at(a, name.col, "expected NAME=VALUE");
  lex(a);
  expect(a, '=');
  int64_t v = expr(a);
  expect_end(a);
  Sym *y = find(a, name.s, name.len);
  if (!y)
    y = add_sym(a, name.s, name.len);
  y->value = v;
  y->pass = 0;
  a->define = NULL;
  a->final = false;
}

// ---------------------------------------------------------------- segments

static int cmp_chunk(const void *x, const void *y) {
  const Chunk *c = *(const Chunk *const *)x, *d = *(const Chunk *const *)y;
  if (c->sec != d->sec)
    return c->sec < d->sec ? -1 : 1;
  if (c->addr != d->addr)
    return c->addr < d->addr ? -1 : 1;
  return c < d ? -1 : c > d;
}

static isa_segment *add_seg(Asm *a, isa_seg_kind kind, uint64_t addr, uint64_t size) {
  isa_segment *s = realloc(a->segs, (a->nsegs + 1) * sizeof *s);
  if (!s)
    error_at(a, 1, "out of memory");
  a->segs = s;
  s = &a->segs[a->nsegs];
  *s = (isa_segment){.kind = kind, .addr = addr};
  if (!(s->data = calloc(size ? size : 1, 1)))
    error_at(a, 1, "out of memory");
  s->size = size;
  a->nsegs++;
  return s;
}

// SMEM becomes one image from 0; HBM and host runs that touch are merged.
// Overlapping data is an error at the directive of the later run.
static void build_segments(Asm *a) {
  Chunk **v = calloc(a->nchunks + 1, sizeof *v);
  if (!v)
    error_at(a, 1, "out of memory");
  size_t n = 0;
  uint64_t smem_end = 0;
  for (size_t i = 0; i < a->nchunks; i++) {
    Chunk *c = &a->chunks[i];
    if (c->size)
      v[n++] = c;
    if (c->size && c->sec == SEC_SMEM && c->addr + c->size > smem_end)
      smem_end = c->addr + c->size;
  }
  qsort(v, n, sizeof *v, cmp_chunk);
  for (size_t i = 1; i < n; i++) {
    Chunk *p = v[i - 1], *c = v[i];
    if (p->sec == c->sec && p->addr + p->size > c->addr) {
      a->lineno = c->line;
      free(v);
      error_at(a, c->col, "%s data at 0x%llx overlaps data placed on line %d", sec_names[c->sec],
               (unsigned long long)c->addr, p->line);
    }
  }
  isa_segment *smem = smem_end ? add_seg(a, SEG_SMEM, 0, smem_end) : NULL;
  for (size_t i = 0; i < n;) {
    Chunk *c = v[i];
    if (c->sec == SEC_SMEM) {
      memcpy(smem->data + c->addr, c->data, c->size);
      i++;
      continue;
    }
    size_t j = i + 1;
    uint64_t end = c->addr + c->size;
    while (j < n && v[j]->sec == c->sec && v[j]->addr == end)
      end += v[j++]->size;
    isa_segment *s = add_seg(a, c->sec == SEC_HBM ? SEG_HBM : SEG_HOST, c->addr, end - c->addr);
    for (; i < j; i++)
      memcpy(s->data + (v[i]->addr - c->addr), v[i]->data, v[i]->size);
  }
  free(v);
}

static void free_asm(Asm *a) {
  free_chunks(a);
  free(a->chunks);
  for (size_t i = 0; i < a->nsyms; i++)
    free(a->syms[i].name);
  free(a->syms);
  free(a->hash);
  free(a->lines);
  free(a->code);
  free(a->li_big);
  for (size_t i = 0; i < a->nsegs; i++)
    free(a->segs[i].data);
  free(a->segs);
  free(a->io);
  free(a->layers);
  free(a);
}

static void assemble(Asm *a, const char *src, const char *const *defines) {
  for (size_t i = 0; defines && defines[i]; i++)
    read_define(a, defines[i]);
  for (const char *p = src; *p;) { // split into lines once
    const char *e = strchr(p, '\n');
    if (!e)
      e = p + strlen(p);
    a->lines = grow(a, a->lines, &a->caplines, a->nlines + 1, sizeof *a->lines);
    a->lines[a->nlines++] = (Line){p, e};
    p = *e ? e + 1 : e;
  }
  for (a->pass = 1;; a->pass++) {
    run_pass(a);
    if (!a->changed)
      break;
    if (a->pass == MAX_PASSES) {
      a->lineno = a->changed_line;
      error_at(a, 1, "values do not settle after %d passes (circular definitions?)", MAX_PASSES);
    }
  }
  a->final = true;
  a->pass++;
  run_pass(a);
  end_layer(a, 1);
  build_segments(a);
}

int isa_assemble(const char *src, const char *name, const char *const *defines,
                 isa_program *out, char *err, size_t errlen) {
  *out = (isa_program){0};
  Asm *a = calloc(1, sizeof *a);
  if (!a) {
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
  }
  a->name = name;
  a->err = err;
  a->errlen = errlen;
  if (setjmp(a->jb)) {
    free_asm(a);
    return -1;
  }
  assemble(a, src, defines);
  *out = (isa_program){.code = a->code, .ncode = a->ncode, .segs = a->segs, .nsegs = a->nsegs,
                       .io = a->io, .nio = a->nio, .layers = a->layers, .nlayers = a->nlayers};
  memcpy(out->chip, a->chip, sizeof out->chip);
  a->layers = NULL;
  a->code = NULL;
  a->segs = NULL;
  a->nsegs = 0;
  a->io = NULL;
  free_asm(a);
  return 0;
}

int isa_assemble_file(const char *path, const char *const *defines, isa_program *out,
                      char *err, size_t errlen) {
  *out = (isa_program){0};
  isa_file f;
  if (isa_file_load(&f, path, true, SIZE_MAX - 1, "assembler source", err, errlen))
    return -1;
  int rc = isa_assemble((const char *)f.data, path, defines, out, err, errlen);
  isa_file_release(&f);
  return rc;
}

// ---------------------------------------------------------------- disassembly

typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
} Str;

static void sput(Str *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[1024];
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (b->oom || k < 0)
    return;
  if (b->n + (size_t)k + 1 > b->cap) {
    size_t cap = (b->n + (size_t)k + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = true;
      return;
    }
    b->s = s, b->cap = cap;
  }
  memcpy(b->s + b->n, tmp, (size_t)k + 1); // every call fits tmp
  b->n += (size_t)k;
}

// Data as .i64 words, four to a line, then the last bytes as .i8.
static void disasm_data(Str *b, const isa_segment *s) {
  static const char *const dir[] = {".smem", ".hbm", ".host"};
  sput(b, "\n%s 0x%llx\n", dir[s->kind], (unsigned long long)s->addr);
  size_t nw = s->size / 8;
  for (size_t i = 0; i < nw; i++) {
    uint64_t w = 0;
    for (int k = 0; k < 8; k++)
      w |= (uint64_t)s->data[i * 8 + k] << 8 * k;
    sput(b, "%s0x%016llx%s", i % 4 ? ", " : "    .i64 ", (unsigned long long)w,
         i % 4 == 3 || i + 1 == nw ? "\n" : "");
  }
  for (size_t i = nw * 8; i < s->size; i++)
    sput(b, "%s0x%02x%s", i == nw * 8 ? "    .i8 " : ", ", s->data[i], i + 1 == s->size ? "\n" : "");
}

// A name as a string literal: quotes, with \" and \\ escaped.
static void put_string(Str *b, const char *s) {
  char q[2 * (ISA_IO_MAX_NAME + 1) + 3];
  size_t n = 0;
  q[n++] = '"';
  for (size_t i = 0; s[i] && i <= ISA_IO_MAX_NAME; i++) {
    if (s[i] == '"' || s[i] == '\\')
      q[n++] = '\\';
    q[n++] = s[i];
  }
  q[n++] = '"';
  q[n] = 0;
  sput(b, "%s", q);
}

// The chip and the I/O signature, before the code.
static void disasm_io(Str *b, const isa_program *p) {
  if (p->chip[0]) {
    sput(b, ".chip ");
    put_string(b, p->chip);
    sput(b, "\n");
  }
  for (size_t i = 0; i < p->nio; i++) {
    const isa_io *t = &p->io[i];
    sput(b, t->role == IO_INPUT ? ".input " : ".output ");
    put_string(b, t->name);
    sput(b, ", %s, [", (unsigned)t->dtype < IO_DTYPES ? isa_io_dtype_names[t->dtype] : "?");
    for (int d = 0; d < t->rank && d < ISA_IO_MAX_RANK; d++)
      sput(b, "%s%lld", d ? ", " : "", (long long)t->dims[d]);
    sput(b, "], %s:0x%llx\n", (unsigned)t->mem <= IO_MEM_HBM ? isa_io_mem_names[t->mem] : "?",
         (unsigned long long)t->addr);
  }
}

char *isa_disasm_program(const isa_program *p) {
  Str b = {0};
  disasm_io(&b, p);
  sput(&b, ".text\n");
  size_t l = 0;
  for (size_t pc = 0; pc < p->ncode; pc++) {
    if (l < p->nlayers && p->layers[l].pc_end == pc && (l + 1 == p->nlayers || p->layers[l + 1].pc_begin != pc))
      sput(&b, "    .endlayer\n");
    if (l < p->nlayers && p->layers[l].pc_end <= pc)
      l++;
    if (l < p->nlayers && p->layers[l].pc_begin == pc) {
      sput(&b, "    .layer ");
      put_string(&b, p->layers[l].name);
      sput(&b, ", ");
      put_string(&b, p->layers[l].op);
      sput(&b, ", %llu\n", (unsigned long long)p->layers[l].macs);
    }
    char line[160];
    isa_disasm_inst(p->code[pc], pc, line, sizeof line);
    sput(&b, "    %-44s ; %zu\n", line, pc);
  }
  for (size_t i = 0; i < p->nsegs; i++)
    if (p->segs[i].kind <= SEG_HOST && p->segs[i].size)
      disasm_data(&b, &p->segs[i]);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}
