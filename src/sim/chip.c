// Chip configurations: configs/*.ini read with inih, checked key by key and
// as a whole, the figures derived from them (peaks, ridge points), and the
// `systole info` text. docs/chips.md specifies the format.
//
// inih calls its handler without a line number, so lines reach inih through
// our own reader (ini_parse_stream): the reader counts lines, strips leading
// blanks (so an indented line is never taken for a continuation of the
// previous value), reports lines inih would misread (too long, unclosed
// section, no '='), and the handler reads the current line from the context.
#include "sim/chip.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "isa/isa.h"

#ifndef SYSTOLE_SOURCE_DIR
#define SYSTOLE_SOURCE_DIR "."
#endif

#define CHIP_MAX_FILE (1u << 20)      // a config is text; anything bigger is a mistake
#define CHIP_MAX_SIZE (1ull << 48)    // 256 TiB: sizes above this are typos
#define KIB 1024ull

// ---------------------------------------------------------------- the keys

typedef enum {
  K_STR,      // text, stored in a char array
  K_INT,      // whole number in [min, max], stored in an int
  K_SIZE,     // bytes: "24 MiB", "16MiB", "4096"; stored in a uint64_t
  K_MHZ,      // megahertz, stored in Hz
  K_GBS,      // GB/s (1e9 bytes/s), stored in bytes/s
  K_REAL,     // real number in [min, max] (pJ, W)
  K_NS,       // nanoseconds, turned into cycles of the clock after parsing
  K_DTYPES,   // list of MXU operand types: bf16, int8
  K_DATAFLOW, // ws, os, is
  K_BOOL,     // true or false (also yes/no, on/off, 1/0), stored in a bool
  K_TOPOLOGY, // none, ring, 2D torus, 3D torus, 2D mesh, 3D mesh
} key_kind;

typedef struct {
  const char *section, *name;
  key_kind kind;
  size_t off, size; // the chip_config field it sets
  double min, max;  // accepted range (numbers)
  bool required;
} key_info;

#define F(field) offsetof(chip_config, field), sizeof(((chip_config *)0)->field)

// Two rows that set the same field (latency_cycles and latency_ns) are
// alternatives: a file may give one of them.
static const key_info keys[] = {
  {"chip", "name", K_STR, F(name), 0, 0, false},
  {"chip", "description", K_STR, F(description), 0, 0, false},
  {"chip", "clock_mhz", K_MHZ, F(clock_hz), 1e-3, 1e5, true},
  {"chip", "tensorcores", K_INT, F(tensorcores), 1, 64, true},

  {"mxu", "count", K_INT, F(mxu_count), 1, 8, true}, // 3-bit unit field (isa.h)
  {"mxu", "rows", K_INT, F(mxu_rows), 1, 4096, true},
  {"mxu", "cols", K_INT, F(mxu_cols), 1, 4096, true},
  {"mxu", "dtypes", K_DTYPES, F(mxu_bf16), 0, 0, true},
  {"mxu", "int8_macs_per_pe", K_INT, F(int8_macs_per_pe), 1, 2, false},
  {"mxu", "weight_load_cycles", K_INT, F(weight_load_cycles), 1, 1e6, false},
  {"mxu", "weight_fifo_tiles", K_INT, F(weight_fifo_tiles), 0, 64, false},
  {"mxu", "dataflow", K_DATAFLOW, F(dataflow), 0, 0, false},
  {"mxu", "preload", K_BOOL, F(mxu_preload), 0, 0, false},

  {"vpu", "lanes", K_INT, F(vpu_lanes), 1, 4096, true},
  {"vpu", "sublanes", K_INT, F(vpu_sublanes), 1, 64, true},
  {"vpu", "latency_cycles", K_INT, F(vpu_latency), 0, 1000, false},

  {"vmem", "size", K_SIZE, F(vmem_bytes), 0, 0, true},
  {"vmem", "bandwidth_gbs", K_GBS, F(vmem_bandwidth), 1e-6, 1e9, false},
  {"vmem", "label", K_STR, F(vmem_label), 0, 0, false},
  {"vmem", "activations", K_BOOL, F(vmem_activations), 0, 0, false},
  {"acc", "size", K_SIZE, F(acc_bytes), 0, 0, true},
  {"smem", "size", K_SIZE, F(smem_bytes), 0, 0, true},
  {"imem", "size", K_SIZE, F(imem_bytes), 0, 0, false},

  {"hbm", "kind", K_STR, F(hbm_kind), 0, 0, false},
  {"hbm", "size", K_SIZE, F(hbm_bytes), 0, 0, true},
  {"hbm", "bandwidth_gbs", K_GBS, F(hbm_bandwidth), 1e-6, 1e9, true},
  {"hbm", "latency_cycles", K_INT, F(hbm_latency), 0, 1e6, false},
  {"hbm", "latency_ns", K_NS, F(hbm_latency), 0, 1e6, false},

  {"host", "link", K_STR, F(host_link), 0, 0, false},
  {"host", "bandwidth_gbs", K_GBS, F(host_bandwidth), 1e-6, 1e9, true},
  {"host", "latency_cycles", K_INT, F(host_latency), 0, 1e9, false},
  {"host", "latency_ns", K_NS, F(host_latency), 0, 1e9, false},

  {"ici", "links", K_INT, F(ici_links), 0, 64, false},
  {"ici", "link_bandwidth_gbs", K_GBS, F(ici_link_bandwidth), 1e-6, 1e9, false},
  {"ici", "latency_cycles", K_INT, F(ici_latency), 0, 1e9, false},
  {"ici", "latency_ns", K_NS, F(ici_latency), 0, 1e9, false},
  {"ici", "topology", K_TOPOLOGY, F(ici_topology), 0, 0, false},

  {"dma", "queues", K_INT, F(dma_queues), 1, 8, false}, // 3-bit unit field
  {"queues", "depth", K_INT, F(queue_depth), 1, 65536, false},

  {"energy", "pj_mac_bf16", K_REAL, F(pj_mac_bf16), 0, 1e6, false},
  {"energy", "pj_mac_int8", K_REAL, F(pj_mac_int8), 0, 1e6, false},
  {"energy", "pj_vpu_op", K_REAL, F(pj_vpu_op), 0, 1e6, false},
  {"energy", "pj_vmem_byte", K_REAL, F(pj_vmem_byte), 0, 1e6, false},
  {"energy", "pj_acc_byte", K_REAL, F(pj_acc_byte), 0, 1e6, false},
  {"energy", "pj_hbm_byte", K_REAL, F(pj_hbm_byte), 0, 1e6, false},
  {"energy", "pj_host_byte", K_REAL, F(pj_host_byte), 0, 1e6, false},
  {"energy", "pj_ici_byte", K_REAL, F(pj_ici_byte), 0, 1e6, false},
  {"energy", "static_watts", K_REAL, F(static_watts), 0, 1e6, false},
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *const sections[] = {"chip", "mxu", "vpu", "vmem", "acc", "smem", "imem",
                                       "hbm", "host", "ici", "dma", "queues", "energy"};
#define NSECTIONS ((int)(sizeof sections / sizeof sections[0]))
#define SECTION_LIST "chip, mxu, vpu, vmem, acc, smem, imem, hbm, host, ici, dma, queues, energy"

static const char *const topologies[] = {"none", "ring", "2D torus", "3D torus", "2D mesh", "3D mesh"};

// Defaults that depend on other keys are filled in after parsing.
#define DEFAULT_HOST_LATENCY_NS 1000.0 // ~1 us: PCIe round trip plus driver
#define DEFAULT_ICI_LATENCY_NS 1000.0  // ~1 us: SerDes, routing, flow control
#define DEFAULT_VMEM_BW_PER_HBM 22.0   // scaling book: VMEM ~22x HBM bandwidth

static void set_defaults(chip_config *c) {
  memset(c, 0, sizeof *c);
  c->int8_macs_per_pe = 1;
  c->weight_load_cycles = 0; // 0: rows, after parsing
  c->weight_fifo_tiles = 0;
  c->dataflow = DATAFLOW_WS;
  c->mxu_preload = true;
  c->vpu_latency = 2; // scaling book: VPU op latency 2 cycles
  c->imem_bytes = 256 * KIB;
  strcpy(c->vmem_label, "VMEM");
  strcpy(c->hbm_kind, "HBM");
  c->hbm_latency = 64; // ~60 ns at 1 GHz: DRAM access plus controller
  strcpy(c->host_link, "PCIe");
  strcpy(c->ici_topology, "none");
  c->dma_queues = 4;
  c->queue_depth = 16;
  // Horowitz, ISSCC 2014, 45 nm at 0.9 V, unscaled (configs scale them).
  c->pj_mac_bf16 = 2.0;   // 16-bit FP multiply 1.1 + 32-bit FP add 0.9
  c->pj_mac_int8 = 0.3;   // 8-bit multiply 0.2 + 32-bit add 0.1
  c->pj_vpu_op = 3.7;     // 32-bit FP multiply
  c->pj_vmem_byte = 2.5;  // 32 KiB SRAM: 20 pJ per 64-bit access
  c->pj_acc_byte = 1.25;  // 8 KiB SRAM: 10 pJ per 64-bit access
  c->pj_hbm_byte = 31.0;  // HBM2, ~3.9 pJ/bit (estimate)
  c->pj_host_byte = 80.0; // ~10 pJ/bit over PCIe (estimate)
  c->pj_ici_byte = 40.0;  // ~5 pJ/bit SerDes (estimate)
  c->static_watts = 0.0;
}

// ---------------------------------------------------------------- parse state

typedef struct {
  chip_config *c;
  const char *path;
  const char *text;
  size_t len, pos;
  int line;                  // the line the reader handed inih last
  bool failed;               // the first error is kept
  int err_line;              // 0: not tied to a line
  char msg[CHIP_ERR_LEN];
  int set_line[NKEYS];       // where each key was given, 0 if not
  double ns[NKEYS];          // values of latency_ns keys
} parse_ctx;

static void fail(parse_ctx *x, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parse_ctx *x, int line, const char *fmt, ...) {
  if (x->failed) return;
  x->failed = true;
  x->err_line = line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->msg, sizeof x->msg, fmt, ap);
  va_end(ap);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int find_section(const char *s) {
  for (int i = 0; i < NSECTIONS; i++)
    if (!strcmp(sections[i], s)) return i;
  return -1;
}

static int find_key(const char *section, const char *name) {
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name)) return i;
  return -1;
}

static int key_index(const char *section, const char *name) {
  int i = find_key(section, name);
  if (i < 0) abort(); // a name below that is not in the table: a bug here
  return i;
}

// Copies s[0..n) without surrounding blanks into out (at most outlen-1 bytes).
static void trim_copy(char *out, size_t outlen, const char *s, size_t n) {
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  if (n >= outlen) n = outlen - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

// ---------------------------------------------------------------- values

// A real number: digits, '.', exponent; no hex, inf or nan.
static bool parse_real(const char *v, double *out) {
  if (!*v) return false;
  for (const char *p = v; *p; p++)
    if (!strchr("0123456789.eE+-", *p)) return false;
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (end == v || *end || errno == ERANGE || !isfinite(d)) return false;
  *out = d;
  return true;
}

// A whole decimal number with an optional sign.
static bool parse_integer(const char *v, long long *out) {
  const char *p = v;
  if (*p == '+' || *p == '-') p++;
  if (!*p) return false;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return false;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (*end || errno == ERANGE) return false;
  *out = n;
  return true;
}

static const struct { const char *name; uint64_t bytes; } size_units[] = {
  {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
  {"KB", 1000}, {"kB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
};

// "24 MiB", "16MiB", "4096", "4096 B". Writes the reason to why on failure.
static bool parse_size(const char *v, uint64_t *out, char *why, size_t whylen) {
  const char *p = v;
  if (*p == '-') {
    snprintf(why, whylen, "bad size '%.60s': must be positive", v);
    return false;
  }
  if (*p == '+') p++;
  const char *digits = p;
  while (*p >= '0' && *p <= '9') p++;
  if (p == digits) {
    snprintf(why, whylen, "bad size '%.60s': expected a whole number of bytes, e.g. 16 MiB", v);
    return false;
  }
  if (*p == '.' || *p == ',') {
    snprintf(why, whylen, "bad size '%.60s': the number must be whole (e.g. 1536 MiB, not 1.5 GiB)", v);
    return false;
  }
  const char *num_end = p;
  while (*p == ' ' || *p == '\t') p++;
  uint64_t unit = 1;
  if (*p) {
    unit = 0;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
      if (!strcmp(p, size_units[i].name)) unit = size_units[i].bytes;
    if (!unit) {
      snprintf(why, whylen, "bad size '%.60s': unknown unit '%.20s' (use B, KiB, MiB, GiB, KB, MB, GB)", v, p);
      return false;
    }
  }
  uint64_t n = 0;
  for (const char *q = digits; q < num_end; q++) {
    if (n > CHIP_MAX_SIZE) break;
    n = n * 10 + (uint64_t)(*q - '0');
  }
  if (n == 0) {
    snprintf(why, whylen, "bad size '%.60s': must be positive", v);
    return false;
  }
  if (n > CHIP_MAX_SIZE / unit) {
    snprintf(why, whylen, "bad size '%.60s': too large (at most 256 TiB)", v);
    return false;
  }
  *out = n * unit;
  return true;
}

static const char *dataflow_names[] = {"ws", "os", "is"};

// "bf16, int8": sets mxu_bf16 and mxu_int8.
static bool parse_dtypes(chip_config *c, const char *v, char *why, size_t whylen) {
  bool bf16 = false, int8 = false;
  const char *p = v;
  for (;;) {
    const char *end = p + strcspn(p, ",");
    char word[32];
    trim_copy(word, sizeof word, p, (size_t)(end - p));
    bool *flag = !strcasecmp(word, "bf16") ? &bf16 : !strcasecmp(word, "int8") ? &int8 : NULL;
    if (!*word) {
      snprintf(why, whylen, "empty entry in '%.60s' (expected a list of bf16, int8)", v);
      return false;
    }
    if (!flag) {
      snprintf(why, whylen, "unknown type '%s' (expected bf16, int8)", word);
      return false;
    }
    if (*flag) {
      snprintf(why, whylen, "'%s' listed twice", word);
      return false;
    }
    *flag = true;
    if (!*end) break;
    p = end + 1;
  }
  c->mxu_bf16 = bf16;
  c->mxu_int8 = int8;
  return true;
}

// Parses v for key k into the config (or the context, for K_NS).
static bool set_value(parse_ctx *x, int k, const char *v, char *why, size_t whylen) {
  const key_info *ki = &keys[k];
  char *field = (char *)x->c + ki->off;
  double d;
  long long n;
  switch (ki->kind) {
  case K_STR:
    if (strlen(v) >= ki->size) {
      snprintf(why, whylen, "too long (at most %zu characters)", ki->size - 1);
      return false;
    }
    memcpy(field, v, strlen(v) + 1);
    return true;
  case K_INT:
    if (!parse_integer(v, &n)) {
      snprintf(why, whylen, "bad number '%.60s' (expected a whole number)", v);
      return false;
    }
    if (n < (long long)ki->min || n > (long long)ki->max) {
      if (ki->min == 1 && ki->max == 2)
        snprintf(why, whylen, "%lld: must be 1 or 2", n);
      else if (n < (long long)ki->min)
        snprintf(why, whylen, "%lld: must be at least %.0f", n, ki->min);
      else
        snprintf(why, whylen, "%lld: must be at most %.0f", n, ki->max);
      return false;
    }
    *(int *)(void *)field = (int)n;
    return true;
  case K_SIZE:
    return parse_size(v, (uint64_t *)(void *)field, why, whylen);
  case K_MHZ:
  case K_GBS:
  case K_REAL:
  case K_NS:
    if (!parse_real(v, &d)) {
      snprintf(why, whylen, "bad number '%.60s'", v);
      return false;
    }
    if (d < ki->min || d > ki->max) {
      if (d <= 0 && ki->min > 0)
        snprintf(why, whylen, "%g: must be positive", d);
      else if (d < ki->min)
        snprintf(why, whylen, "%g: must not be negative", d);
      else
        snprintf(why, whylen, "%g: too large (at most %g)", d, ki->max);
      return false;
    }
    if (ki->kind == K_NS)
      x->ns[k] = d;
    else
      *(double *)(void *)field = ki->kind == K_MHZ ? d * 1e6 : ki->kind == K_GBS ? d * 1e9 : d;
    return true;
  case K_DTYPES:
    return parse_dtypes(x->c, v, why, whylen);
  case K_DATAFLOW:
    for (int i = 0; i < 3; i++)
      if (!strcasecmp(v, dataflow_names[i])) {
        x->c->dataflow = (chip_dataflow)i;
        return true;
      }
    snprintf(why, whylen, "unknown dataflow '%.40s' (expected ws, os or is)", v);
    return false;
  case K_BOOL:
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1"))
      *(bool *)(void *)field = true;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0"))
      *(bool *)(void *)field = false;
    else {
      snprintf(why, whylen, "expected true or false, not '%.40s'", v);
      return false;
    }
    return true;
  case K_TOPOLOGY:
    for (size_t i = 0; i < sizeof topologies / sizeof topologies[0]; i++)
      if (!strcasecmp(v, topologies[i])) {
        strcpy(field, topologies[i]);
        return true;
      }
    snprintf(why, whylen, "unknown topology '%.40s' (expected none, ring, 2D torus, 3D torus, 2D mesh, 3D mesh)", v);
    return false;
  }
  return false;
}

// ---------------------------------------------------------------- inih glue

// fgets-style reader for ini_parse_stream: hands inih one line per call.
static char *read_line(char *str, int num, void *stream) {
  parse_ctx *x = stream;
  if (x->pos >= x->len) return NULL;
  const char *p = x->text + x->pos;
  size_t n = 0;
  while (x->pos + n < x->len && p[n] != '\n') n++;
  x->pos += n + (x->pos + n < x->len ? 1 : 0);
  x->line++;
  str[0] = '\0';
  if (x->line == 1 && n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3, n -= 3; // UTF-8 BOM
  while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v')) p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\f' || p[n - 1] == '\v')) n--;
  if (n == 0 || *p == ';' || *p == '#') return str; // blank or comment: any length
  if (num < 2 || n > (size_t)num - 2) {
    fail(x, x->line, "line too long (at most %d characters)", num < 2 ? 0 : num - 2);
    return str;
  }
  if (*p == '[') {
    const char *close = memchr(p, ']', n);
    if (!close) {
      fail(x, x->line, "expected ']' to close the section name");
      return str;
    }
    const char *after = close + 1;
    size_t rest = n - (size_t)(after - p);
    while (rest && (*after == ' ' || *after == '\t')) after++, rest--;
    if (rest && *after != ';' && *after != '#') {
      fail(x, x->line, "unexpected text after ']'");
      return str;
    }
    char sec[64];
    trim_copy(sec, sizeof sec, p + 1, (size_t)(close - p - 1));
    if (find_section(sec) < 0) fail(x, x->line, "[%s]: unknown section (known: " SECTION_LIST ")", sec);
  } else if (!memchr(p, '=', n) && !memchr(p, ':', n)) {
    fail(x, x->line, "expected 'key = value' or '[section]'");
    return str;
  }
  memcpy(str, p, n);
  str[n] = '\0';
  return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
  parse_ctx *x = user;
  int line = x->line;
  char sec[64];
  trim_copy(sec, sizeof sec, section ? section : "", strlen(section ? section : ""));
  if (!name) name = "";
  if (!value) value = "";
  if (!*sec) {
    fail(x, line, "%.60s: outside any section (put it under [chip], [mxu], ...)", name);
    return 1;
  }
  if (find_section(sec) < 0) {
    fail(x, line, "[%s]: unknown section (known: " SECTION_LIST ")", sec);
    return 1;
  }
  if (!*name) {
    fail(x, line, "[%s]: missing key name before '='", sec);
    return 1;
  }
  int k = find_key(sec, name);
  if (k < 0) {
    char known[400] = "";
    size_t used = 0;
    for (int i = 0; i < NKEYS; i++) {
      if (strcmp(keys[i].section, sec)) continue;
      int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", keys[i].name);
      if (w < 0 || (size_t)w >= sizeof known - used) break;
      used += (size_t)w;
    }
    fail(x, line, "[%s] %.60s: unknown key (known in [%s]: %s)", sec, name, sec, known);
    return 1;
  }
  if (x->set_line[k]) {
    fail(x, line, "[%s] %s: duplicate key (first given on line %d)", sec, name, x->set_line[k]);
    return 1;
  }
  for (int j = 0; j < NKEYS; j++)
    if (j != k && keys[j].off == keys[k].off && x->set_line[j]) {
      fail(x, line, "[%s] %s: conflicts with %s on line %d (give one of them)", sec, name, keys[j].name,
           x->set_line[j]);
      return 1;
    }
  x->set_line[k] = line;
  char why[300];
  if (!set_value(x, k, value, why, sizeof why))
    fail(x, line, "[%s] %s: %s%s", sec, name, why,
         strchr(value, '#') ? " (comments after a value start with ';', not '#')" : "");
  return 1;
}

// ---------------------------------------------------------------- checks

static bool given(const parse_ctx *x, const char *section, const char *name) {
  return x->set_line[key_index(section, name)] != 0;
}

static int line_of(const parse_ctx *x, const char *section, const char *name) {
  return x->set_line[key_index(section, name)];
}

// Cycles of the clock covering ns nanoseconds (rounded up).
static bool ns_to_cycles(double ns, double clock_hz, int *out) {
  double cyc = ns * clock_hz / 1e9;
  double r = nearbyint(cyc);
  if (fabs(cyc - r) > 1e-6 * (r > 1 ? r : 1)) r = ceil(cyc);
  if (r > INT_MAX / 2) return false;
  *out = (int)r;
  return true;
}

// Fills defaults that depend on other keys and checks the file as a whole.
static void finish(parse_ctx *x) {
  chip_config *c = x->c;
  for (int k = 0; k < NKEYS && !x->failed; k++)
    if (keys[k].required && !x->set_line[k]) fail(x, 0, "[%s] %s: missing", keys[k].section, keys[k].name);
  if (x->failed) return;

  if (given(x, "mxu", "int8_macs_per_pe") && !c->mxu_int8)
    fail(x, line_of(x, "mxu", "int8_macs_per_pe"), "[mxu] int8_macs_per_pe: given but [mxu] dtypes lacks int8");
  if (!c->weight_load_cycles) c->weight_load_cycles = c->mxu_rows;
  if ((uint64_t)c->mxu_cols * 4 > c->acc_bytes)
    fail(x, line_of(x, "acc", "size"),
         "[acc] size: %llu bytes cannot hold one MXU output row (cols x 4 bytes = %d bytes)",
         (unsigned long long)c->acc_bytes, c->mxu_cols * 4);
  if (!given(x, "vmem", "bandwidth_gbs")) c->vmem_bandwidth = DEFAULT_VMEM_BW_PER_HBM * c->hbm_bandwidth;

  // Latencies given in nanoseconds, and the defaults that are.
  for (int k = 0; k < NKEYS; k++) {
    if (keys[k].kind != K_NS) continue;
    double ns = x->ns[k];
    bool alt_given = false;
    for (int j = 0; j < NKEYS; j++)
      if (j != k && keys[j].off == keys[k].off && x->set_line[j]) alt_given = true;
    if (!x->set_line[k]) {
      if (alt_given) continue;
      if (!strcmp(keys[k].section, "host")) ns = DEFAULT_HOST_LATENCY_NS;
      else if (!strcmp(keys[k].section, "ici")) ns = DEFAULT_ICI_LATENCY_NS;
      else continue; // hbm: the default is in cycles
    }
    int *field = (int *)(void *)((char *)c + keys[k].off);
    if (!ns_to_cycles(ns, c->clock_hz, field))
      fail(x, x->set_line[k], "[%s] %s: %g ns is too many cycles at %g MHz", keys[k].section, keys[k].name, ns,
           c->clock_hz / 1e6);
  }

  if (c->ici_links > 0) {
    if (!given(x, "ici", "link_bandwidth_gbs"))
      fail(x, 0, "[ici] link_bandwidth_gbs: missing (needed when links > 0)");
    else if (!strcmp(c->ici_topology, "none"))
      fail(x, given(x, "ici", "topology") ? line_of(x, "ici", "topology") : 0,
           "[ici] topology: %s (needed when links > 0)", given(x, "ici", "topology") ? "none" : "missing");
  } else {
    if (given(x, "ici", "link_bandwidth_gbs"))
      fail(x, line_of(x, "ici", "link_bandwidth_gbs"), "[ici] link_bandwidth_gbs: given but links = 0");
    else if (strcmp(c->ici_topology, "none"))
      fail(x, line_of(x, "ici", "topology"), "[ici] topology: %s given but links = 0", c->ici_topology);
  }

  if (!given(x, "chip", "name")) {
    const char *base = strrchr(x->path, '/');
    base = base ? base + 1 : x->path;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".ini")) n -= 4;
    if (n >= sizeof c->name) n = sizeof c->name - 1;
    memcpy(c->name, base, n);
    c->name[n] = '\0';
  }
}

// ---------------------------------------------------------------- loading

int chip_load_string(chip_config *c, const char *text, const char *path, char *err, size_t errlen) {
  if (!path) path = "<string>";
  if (err && errlen) err[0] = '\0';
  if (!c || !text) {
    set_err(err, errlen, "%s: no configuration text", path);
    return -1;
  }
  chip_config tmp;
  set_defaults(&tmp);
  parse_ctx *x = calloc(1, sizeof *x);
  if (!x) {
    set_err(err, errlen, "%s: out of memory", path);
    return -1;
  }
  x->c = &tmp;
  x->path = path;
  x->text = text;
  x->len = strlen(text);
  int rc = ini_parse_stream(read_line, x, on_key, x);
  // inih reports lines it could not parse that the reader let through; its
  // count of lines is ours (one reader call per line).
  if (rc > 0 && (!x->failed || x->err_line == 0 || rc < x->err_line)) {
    x->failed = false;
    fail(x, rc, "syntax error (expected '[section]' or 'key = value')");
  } else if (rc < 0) {
    fail(x, 0, "inih failed (%d)", rc);
  }
  if (!x->failed) finish(x);
  int result = 0;
  if (x->failed) {
    if (x->err_line > 0)
      set_err(err, errlen, "%s:%d: %s", path, x->err_line, x->msg);
    else
      set_err(err, errlen, "%s: %s", path, x->msg);
    memset(c, 0, sizeof *c);
    result = -1;
  } else {
    size_t n = strlen(path);
    if (n >= sizeof tmp.path) n = sizeof tmp.path - 1;
    memcpy(tmp.path, path, n);
    tmp.path[n] = '\0';
    *c = tmp;
  }
  free(x);
  return result;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

// "tiny, tpu-v1, ..." : the configs in dir, sorted.
static void list_configs(const char *dir, char *out, size_t outlen) {
  out[0] = '\0';
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(out, outlen, "none: cannot read %s: %s", dir, strerror(errno));
    return;
  }
  char *names[128];
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) && count < 128) {
    size_t n = strlen(e->d_name);
    if (n <= 4 || e->d_name[0] == '.' || strcmp(e->d_name + n - 4, ".ini")) continue;
    names[count] = strndup(e->d_name, n - 4);
    if (names[count]) count++;
  }
  closedir(d);
  qsort(names, (size_t)count, sizeof names[0], cmp_str);
  size_t used = 0;
  for (int i = 0; i < count; i++) {
    if (used < outlen) {
      int w = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", names[i]);
      if (w > 0) used += (size_t)w;
    }
    free(names[i]);
  }
  if (!count) snprintf(out, outlen, "none in %s", dir);
}

int chip_load(chip_config *c, const char *name, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  if (!c || !name) {
    set_err(err, errlen, "chip_load: no chip name");
    return -1;
  }
  size_t nlen = strlen(name);
  if (!nlen) {
    set_err(err, errlen, "no chip name given");
    return -1;
  }
  bool is_path = strchr(name, '/') || (nlen >= 4 && !strcmp(name + nlen - 4, ".ini"));
  char path[sizeof c->path];
  const char *dir = NULL;
  if (is_path) {
    if (nlen >= sizeof path) {
      set_err(err, errlen, "%.100s...: path too long", name);
      return -1;
    }
    memcpy(path, name, nlen + 1);
  } else {
    dir = getenv("SYSTOLE_CONFIG_DIR");
    if (!dir || !*dir) dir = SYSTOLE_SOURCE_DIR "/configs";
    int w = snprintf(path, sizeof path, "%s/%s.ini", dir, name);
    if (w < 0 || (size_t)w >= sizeof path) {
      set_err(err, errlen, "%.100s: chip name or config directory too long", name);
      return -1;
    }
  }
  isa_file f;
  if (isa_file_load(&f, path, true, CHIP_MAX_FILE, "a chip configuration", err, errlen)) {
    if (!is_path && errno == ENOENT) {
      char avail[300];
      list_configs(dir, avail, sizeof avail);
      set_err(err, errlen, "unknown chip '%.64s': no %s (available: %s)", name, path, avail);
    }
    return -1;
  }
  int rc = chip_load_string(c, (const char *)f.data, path, err, errlen);
  isa_file_release(&f);
  return rc;
}

// ---------------------------------------------------------------- derived figures

double chip_peak_macs_per_s(const chip_config *c, int dtype) {
  double pes = (double)c->tensorcores * c->mxu_count * c->mxu_rows * c->mxu_cols;
  switch (dtype) {
  case DT_BF16: return c->mxu_bf16 ? pes * c->clock_hz : 0;
  case DT_I8: return c->mxu_int8 ? pes * c->int8_macs_per_pe * c->clock_hz : 0;
  default: return 0; // the MXU multiplies bf16 and int8 only
  }
}

double chip_peak_ops_per_s(const chip_config *c, int dtype) {
  if (dtype == DT_F32) // the VPU: one FMA (2 ops) per lane and sublane per cycle
    return (double)c->tensorcores * c->vpu_lanes * c->vpu_sublanes * 2.0 * c->clock_hz;
  return 2.0 * chip_peak_macs_per_s(c, dtype);
}

double chip_ridge_macs_per_byte(const chip_config *c, int dtype) {
  return c->hbm_bandwidth > 0 ? chip_peak_macs_per_s(c, dtype) / c->hbm_bandwidth : 0;
}

// ---------------------------------------------------------------- systole info

// 700, 15.03, 179.2: whole numbers without decimals, else up to two.
static const char *fmt_num(char *buf, size_t n, double v) {
  if (fabs(v - nearbyint(v)) < 1e-9 * (fabs(v) > 1 ? fabs(v) : 1)) {
    snprintf(buf, n, "%.0f", v);
  } else {
    snprintf(buf, n, "%.2f", v);
    char *p = buf + strlen(buf);
    while (p > buf && p[-1] == '0') *--p = '\0';
    if (p > buf && p[-1] == '.') p[-1] = '\0';
  }
  return buf;
}

// >= 10: no decimals; below: three significant digits ("92", "4.59", "0.105").
static const char *fmt_sig(char *buf, size_t n, double v) {
  if (fabs(v) >= 10)
    snprintf(buf, n, "%.0f", v);
  else
    snprintf(buf, n, "%.3g", v);
  return buf;
}

// 91.75e12 ops/s -> "92 TOPS".
static const char *fmt_rate(char *buf, size_t n, double v, const char *unit) {
  static const struct { double scale; const char *prefix; } p[] = {
    {1e18, "E"}, {1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}};
  size_t i = 0;
  while (i + 1 < sizeof p / sizeof p[0] && v < p[i].scale) i++;
  char num[32];
  snprintf(buf, n, "%s %s%s", fmt_sig(num, sizeof num, v / p[i].scale), p[i].prefix, unit);
  return buf;
}

// 25165824 -> "24 MiB"; the largest binary unit that divides exactly.
static const char *fmt_bytes(char *buf, size_t n, uint64_t b) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && b && b % 1024 == 0) b /= 1024, u++;
  snprintf(buf, n, "%llu %s", (unsigned long long)b, units[u]);
  return buf;
}

static const char *fmt_gbs(char *buf, size_t n, double bytes_per_s) {
  char num[32];
  snprintf(buf, n, "%s GB/s", fmt_num(num, sizeof num, bytes_per_s / 1e9));
  return buf;
}

#define ROW "  %-22s"

static void print_mem(FILE *f, const chip_config *c, const char *label, uint64_t bytes, const char *extra) {
  char b1[32], b2[32];
  fprintf(f, ROW "%s per TensorCore", label, fmt_bytes(b1, sizeof b1, bytes));
  if (c->tensorcores > 1)
    fprintf(f, " (%s per chip)", fmt_bytes(b2, sizeof b2, bytes * (uint64_t)c->tensorcores));
  fprintf(f, "%s\n", extra);
}

void chip_print_info(const chip_config *c, void *file) {
  FILE *f = file;
  char b1[64], b2[64], b3[80];
  int tc = c->tensorcores > 0 ? c->tensorcores : 1;

  fprintf(f, "Chip\n");
  fprintf(f, ROW "%s\n", "Name", c->name);
  if (c->description[0]) fprintf(f, ROW "%s\n", "Description", c->description);
  fprintf(f, ROW "%s\n", "Config file", c->path);
  fprintf(f, ROW "%s MHz\n", "Clock", fmt_num(b1, sizeof b1, c->clock_hz / 1e6));
  fprintf(f, ROW "%d per chip (the simulator runs one; per-TensorCore figures below)\n", "TensorCores",
          c->tensorcores);

  fprintf(f, "\nCompute\n");
  fprintf(f, ROW "%d x %dx%d systolic array%s, %s%s\n", "MXUs per TensorCore", c->mxu_count, c->mxu_rows,
          c->mxu_cols, c->mxu_count > 1 ? "s" : "",
          c->dataflow == DATAFLOW_WS ? "weight-stationary"
          : c->dataflow == DATAFLOW_OS ? "output-stationary" : "input-stationary",
          c->mxu_preload ? "" : ", no preloading (folds do not overlap)");
  char types[96] = "";
  if (c->mxu_bf16) strcat(types, "bf16 x bf16 -> f32");
  if (c->mxu_int8) {
    snprintf(b1, sizeof b1, "int8 x int8 -> int32 (%d MAC%s per PE per cycle)", c->int8_macs_per_pe,
             c->int8_macs_per_pe > 1 ? "s" : "");
    if (types[0]) strcat(types, "; ");
    strcat(types, b1);
  }
  fprintf(f, ROW "%s\n", "MXU operand types", types);
  fprintf(f, ROW "%d cycles per weight tile", "Weight load", c->weight_load_cycles);
  if (c->weight_fifo_tiles)
    fprintf(f, "; weight FIFO %d tiles deep\n", c->weight_fifo_tiles);
  else
    fprintf(f, "; weights come from %s\n", c->vmem_label);
  fprintf(f, ROW "%d lanes x %d sublane%s, %d-cycle latency\n", "Vector unit", c->vpu_lanes, c->vpu_sublanes,
          c->vpu_sublanes > 1 ? "s" : "", c->vpu_latency);
  fprintf(f, ROW "%-16s %-16s %s\n", "Peak", "per chip", "per TensorCore", "MACs per cycle per chip");
  const struct { int dt; const char *label, *unit; bool on; } peaks[] = {
    {DT_BF16, "bf16", "FLOPS", c->mxu_bf16},
    {DT_I8, "int8", "OPS", c->mxu_int8},
  };
  for (size_t i = 0; i < 2; i++) {
    if (!peaks[i].on) continue;
    double ops = chip_peak_ops_per_s(c, peaks[i].dt);
    double macs_cycle = c->clock_hz > 0 ? chip_peak_macs_per_s(c, peaks[i].dt) / c->clock_hz : 0;
    fprintf(f, "    %-20s%-16s %-16s %.0f\n", peaks[i].label, fmt_rate(b1, sizeof b1, ops, peaks[i].unit),
            fmt_rate(b2, sizeof b2, ops / tc, peaks[i].unit), macs_cycle);
  }
  double vops = chip_peak_ops_per_s(c, DT_F32);
  fprintf(f, "    %-20s%-16s %-16s %d FMAs\n", "f32 (vector unit)", fmt_rate(b1, sizeof b1, vops, "FLOPS"),
          fmt_rate(b2, sizeof b2, vops / tc, "FLOPS"), tc * c->vpu_lanes * c->vpu_sublanes);

  fprintf(f, "\nMemory\n");
  snprintf(b3, sizeof b3, ", %s", fmt_gbs(b1, sizeof b1, c->vmem_bandwidth));
  print_mem(f, c, c->vmem_label, c->vmem_bytes, b3);
  print_mem(f, c, "Accumulators", c->acc_bytes, "");
  print_mem(f, c, "SMEM (scalar)", c->smem_bytes, "");
  print_mem(f, c, "IMEM (instructions)", c->imem_bytes, "");
  fprintf(f, ROW "%s per chip, %s, first byte after %d cycles\n", c->hbm_kind, fmt_bytes(b1, sizeof b1, c->hbm_bytes),
          fmt_gbs(b2, sizeof b2, c->hbm_bandwidth), c->hbm_latency);
  fprintf(f, ROW "%s, %s each way, latency %d cycles\n", "Host link", c->host_link,
          fmt_gbs(b1, sizeof b1, c->host_bandwidth), c->host_latency);
  if (c->ici_links > 0)
    fprintf(f, ROW "%d links x %s each way (%s per chip), %s, latency %d cycles\n", "ICI", c->ici_links,
            fmt_gbs(b1, sizeof b1, c->ici_link_bandwidth), fmt_gbs(b2, sizeof b2, c->ici_link_bandwidth * c->ici_links),
            c->ici_topology, c->ici_latency);
  else
    fprintf(f, ROW "none (single chip)\n", "ICI");
  fprintf(f, ROW "%d queues; unit queues hold %d tile instructions\n", "DMA", c->dma_queues, c->queue_depth);

  fprintf(f, "\nRidge point (peak compute / %s bandwidth, %s)\n", c->hbm_kind,
          fmt_gbs(b1, sizeof b1, c->hbm_bandwidth));
  for (size_t i = 0; i < 2; i++) {
    if (!peaks[i].on) continue;
    double r = chip_ridge_macs_per_byte(c, peaks[i].dt);
    fprintf(f, "    %-20s%s MACs per byte, %s %s per byte\n", peaks[i].label, fmt_sig(b1, sizeof b1, r),
            fmt_sig(b2, sizeof b2, 2 * r), peaks[i].dt == DT_I8 ? "ops" : "FLOPs");
  }
  if (c->hbm_bandwidth > 0)
    fprintf(f, "    %-20s%s FLOPs per byte\n", "f32 (vector unit)", fmt_sig(b1, sizeof b1, vops / c->hbm_bandwidth));
  fprintf(f, "  (MACs per byte is what the TPU v1 paper calls ops per weight byte)\n");

  fprintf(f, "\nEnergy (estimates; sources in the config file)\n");
  if (c->mxu_bf16) fprintf(f, ROW "%s pJ\n", "bf16 MAC", fmt_sig(b1, sizeof b1, c->pj_mac_bf16));
  if (c->mxu_int8) fprintf(f, ROW "%s pJ\n", "int8 MAC", fmt_sig(b1, sizeof b1, c->pj_mac_int8));
  fprintf(f, ROW "%s pJ per element\n", "Vector op", fmt_sig(b1, sizeof b1, c->pj_vpu_op));
  fprintf(f, ROW "%s pJ per byte\n", c->vmem_label, fmt_sig(b1, sizeof b1, c->pj_vmem_byte));
  fprintf(f, ROW "%s pJ per byte\n", "Accumulators", fmt_sig(b1, sizeof b1, c->pj_acc_byte));
  fprintf(f, ROW "%s pJ per byte\n", c->hbm_kind, fmt_sig(b1, sizeof b1, c->pj_hbm_byte));
  fprintf(f, ROW "%s pJ per byte\n", "Host link", fmt_sig(b1, sizeof b1, c->pj_host_byte));
  if (c->ici_links > 0) fprintf(f, ROW "%s pJ per byte\n", "ICI", fmt_sig(b1, sizeof b1, c->pj_ici_byte));
  fprintf(f, ROW "%s W per chip\n", "Static power", fmt_sig(b1, sizeof b1, c->static_watts));
}
