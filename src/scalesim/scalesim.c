// SCALE-Sim's formats and cycle model. The files are read as SCALE-Sim v2
// (scale-sim-v2 2.0.2) reads them; each layer is cut into SCALE-Sim's folds,
// and the folds are run through Systole's MXU timing model (mxu.c) without
// preloading, which is SCALE-Sim's assumption: every layer's count then equals
// SCALE-Sim's, and the utilisation figures are computed as SCALE-Sim computes
// them, in the same floating-point order, so COMPUTE_REPORT.csv matches digit
// for digit. docs/validation.md has the derivation.
#include "scalesim/scalesim.h"
#include "isa/isa.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE (64u << 20)  // topologies are text; anything bigger is a mistake
#define MAX_DIM 100000000ll   // a dimension beyond this is a typo
#define MAX_LAYERS 100000

typedef unsigned __int128 u128;

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

// Reads a whole text file (NUL-terminated, malloc'd).
static char *read_text(const char *path, char *err, size_t errlen) {
  isa_file f;
  if (isa_file_load(&f, path, true, MAX_FILE, "a SCALE-Sim file", err, errlen)) return NULL;
  return (char *)f.owned; // text is always read into a buffer of its own
}

// The next line of text (without its end) into line; false at the end.
static bool next_line(const char **p, char *line, size_t len, bool *too_long) {
  if (!**p) return false;
  const char *e = *p + strcspn(*p, "\n");
  size_t n = (size_t)(e - *p);
  *too_long = n >= len;
  if (n >= len) n = len - 1;
  memcpy(line, *p, n);
  line[n] = '\0';
  if (n && line[n - 1] == '\r') line[n - 1] = '\0';
  *p = *e ? e + 1 : e;
  return true;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
  return s;
}

// A whole number as Python's int() takes it (blanks around, a sign).
static bool parse_int(const char *s, int64_t *out) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s", s);
  char *t = trim(buf), *end;
  if (!*t) return false;
  errno = 0;
  long long v = strtoll(t, &end, 10);
  if (*end || errno == ERANGE) return false;
  *out = v;
  return true;
}

// ---------------------------------------------------------------- configuration

int scalesim_parse_config(scalesim_config *c, const char *text, const char *path, char *err, size_t errlen) {
  *c = (scalesim_config){.ifmap_kib = 6144, .filter_kib = 6144, .ofmap_kib = 2048, .bandwidth = 10};
  snprintf(c->run_name, sizeof c->run_name, "%s", "scale_sim_run");
  char section[64] = "", line[1024];
  bool have_rows = false, have_cols = false, have_df = false, too_long;
  int lineno = 0;
  const char *p = text;
  if (!strncmp(p, "\xef\xbb\xbf", 3)) p += 3; // a UTF-8 byte-order mark
  while (next_line(&p, line, sizeof line, &too_long)) {
    lineno++;
    char *s = trim(line);
    if (too_long) {
      set_err(err, errlen, "%s:%d: line too long", path, lineno);
      return -1;
    }
    if (!*s || *s == ';' || *s == '#') continue;
    if (*s == '[') {
      char *e = strchr(s, ']');
      if (!e) {
        set_err(err, errlen, "%s:%d: unclosed section header '%.60s'", path, lineno, s);
        return -1;
      }
      *e = '\0';
      snprintf(section, sizeof section, "%s", trim(s + 1));
      continue;
    }
    size_t k = strcspn(s, ":=");
    if (!s[k]) {
      set_err(err, errlen, "%s:%d: expected 'key: value' or 'key = value', got '%.60s'", path, lineno, s);
      return -1;
    }
    s[k] = '\0';
    char *key = trim(s), *val = trim(s + k + 1);
    // configparser compares keys without case; unknown keys and sections are
    // ignored, as SCALE-Sim ignores them (newer versions add some).
    bool arch = !strcasecmp(section, "architecture_presets");
    if (!strcasecmp(section, "general") && !strcasecmp(key, "run_name")) {
      snprintf(c->run_name, sizeof c->run_name, "%s", val);
    } else if (!strcasecmp(section, "run_presets") && !strcasecmp(key, "InterfaceBandwidth")) {
      if (!strcasecmp(val, "USER")) c->user_bandwidth = true;
      else if (!strcasecmp(val, "CALC")) c->user_bandwidth = false;
      else {
        set_err(err, errlen, "%s:%d: [run_presets] InterfaceBandwidth: expected CALC or USER, got '%.40s'", path,
                lineno, val);
        return -1;
      }
    } else if (arch && !strcasecmp(key, "Dataflow")) {
      if (!strcasecmp(val, "ws")) c->dataflow = MXU_WS;
      else if (!strcasecmp(val, "os")) c->dataflow = MXU_OS;
      else if (!strcasecmp(val, "is")) c->dataflow = MXU_IS;
      else {
        set_err(err, errlen, "%s:%d: [architecture_presets] Dataflow: expected ws, os or is, got '%.40s'", path,
                lineno, val);
        return -1;
      }
      have_df = true;
    } else if (arch) {
      static const struct { const char *name; int64_t lo, hi; } nums[] = {
        {"ArrayHeight", 1, 16384}, {"ArrayWidth", 1, 16384}, {"IfmapSramSzkB", 1, 1ll << 30},
        {"FilterSramSzkB", 1, 1ll << 30}, {"OfmapSramSzkB", 1, 1ll << 30}, {"Bandwidth", 1, 1ll << 30},
      };
      for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcasecmp(key, nums[i].name)) continue;
        int64_t v;
        if (!parse_int(val, &v)) {
          set_err(err, errlen, "%s:%d: [architecture_presets] %s: bad number '%.40s' (expected a whole number)",
                  path, lineno, nums[i].name, val);
          return -1;
        }
        if (v < nums[i].lo || v > nums[i].hi) {
          set_err(err, errlen, "%s:%d: [architecture_presets] %s: %lld: must be between %lld and %lld", path,
                  lineno, nums[i].name, (long long)v, (long long)nums[i].lo, (long long)nums[i].hi);
          return -1;
        }
        switch (i) {
        case 0: c->rows = (int)v, have_rows = true; break;
        case 1: c->cols = (int)v, have_cols = true; break;
        case 2: c->ifmap_kib = v; break;
        case 3: c->filter_kib = v; break;
        case 4: c->ofmap_kib = v; break;
        default: c->bandwidth = v; break;
        }
      }
    }
  }
  const char *missing = !have_rows ? "ArrayHeight" : !have_cols ? "ArrayWidth" : !have_df ? "Dataflow" : NULL;
  if (missing) {
    set_err(err, errlen, "%s: [architecture_presets] %s: missing", path, missing);
    return -1;
  }
  return 0;
}

int scalesim_load_config(scalesim_config *c, const char *path, char *err, size_t errlen) {
  char *text = read_text(path, err, errlen);
  if (!text) return -1;
  int rc = scalesim_parse_config(c, text, path, err, errlen);
  free(text);
  return rc;
}

// ---------------------------------------------------------------- topology

static const char *const conv_cols[] = {"Layer name", "IFMAP Height", "IFMAP Width", "Filter Height",
                                        "Filter Width", "Channels", "Num Filter", "Strides", "Stride width"};
static const char *const gemm_cols[] = {"Layer", "M", "N", "K"};

static int add_layer(scalesim_topology *t, int *cap, const scalesim_layer *l) {
  if (t->n == *cap) {
    int nc = *cap ? 2 * *cap : 64;
    scalesim_layer *p = realloc(t->layers, (size_t)nc * sizeof *p);
    if (!p) return -1;
    t->layers = p, *cap = nc;
  }
  t->layers[t->n++] = *l;
  return 0;
}

int scalesim_parse_topology(scalesim_topology *t, const char *text, const char *path, bool gemm, char *err,
                            size_t errlen) {
  *t = (scalesim_topology){0};
  int cap = 0, lineno = 0;
  char line[4096];
  bool too_long, first = true;
  const char *p = text;
  if (!strncmp(p, "\xef\xbb\xbf", 3)) p += 3;
  while (next_line(&p, line, sizeof line, &too_long)) {
    lineno++;
    char *s = trim(line);
    if (too_long) {
      set_err(err, errlen, "%s:%d: line too long", path, lineno);
      goto fail;
    }
    if (first || !*s) { // the header, and blank lines
      first = false;
      continue;
    }
    // Fields between commas; SCALE-Sim drops what follows the last comma (rows
    // end with one). A row without the trailing comma keeps its last field.
    char *f[16];
    int nf = 0;
    for (char *q = s;;) {
      char *e = strchr(q, ',');
      if (nf == 16) {
        set_err(err, errlen, "%s:%d: too many columns", path, lineno);
        goto fail;
      }
      f[nf++] = q;
      if (!e) break;
      *e = '\0';
      q = e + 1;
    }
    for (int i = 0; i < nf; i++) f[i] = trim(f[i]);
    if (nf > 1 && !*f[nf - 1]) nf--;
    int want = gemm ? 4 : 8;
    if (nf < want || nf > (gemm ? 4 : 9)) {
      if (gemm)
        set_err(err, errlen, "%s:%d: expected 4 columns (Layer, M, N, K), got %d", path, lineno, nf);
      else
        set_err(err, errlen,
                "%s:%d: expected 8 columns (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                "Channels, Num Filter, Strides) or 9 (a width stride), got %d",
                path, lineno, nf);
      goto fail;
    }
    if (!*f[0]) {
      set_err(err, errlen, "%s:%d: empty layer name", path, lineno);
      goto fail;
    }
    int64_t v[8];
    for (int i = 1; i < nf; i++) {
      const char *col = gemm ? gemm_cols[i] : conv_cols[i];
      if (!parse_int(f[i], &v[i - 1])) {
        set_err(err, errlen, "%s:%d: %s: %s: bad number '%.40s'", path, lineno, f[0], col, f[i]);
        goto fail;
      }
      if (v[i - 1] < 1 || v[i - 1] > MAX_DIM) {
        set_err(err, errlen, "%s:%d: %s: %s: %lld: must be between 1 and %lld", path, lineno, f[0], col,
                (long long)v[i - 1], MAX_DIM);
        goto fail;
      }
    }
    scalesim_layer l = {0};
    snprintf(l.name, sizeof l.name, "%s", f[0]);
    if (gemm) { // M x K input, a 1 x K filter, N filters: M output pixels of window K
      l.ifmap_h = v[0], l.ifmap_w = v[2], l.filt_h = 1, l.filt_w = v[2], l.channels = 1, l.filters = v[1];
      l.stride_h = l.stride_w = 1;
    } else {
      l.ifmap_h = v[0], l.ifmap_w = v[1], l.filt_h = v[2], l.filt_w = v[3], l.channels = v[4], l.filters = v[5];
      l.stride_h = v[6], l.stride_w = nf == 9 ? v[7] : v[6];
      if (l.filt_h > l.ifmap_h || l.filt_w > l.ifmap_w) {
        set_err(err, errlen, "%s:%d: %s: the filter (%lldx%lld) is larger than the input (%lldx%lld)", path, lineno,
                f[0], (long long)l.filt_h, (long long)l.filt_w, (long long)l.ifmap_h, (long long)l.ifmap_w);
        goto fail;
      }
    }
    // A name with "DP" is a depthwise convolution: SCALE-Sim runs one layer
    // per channel, each of one channel.
    int64_t copies = !gemm && strstr(l.name, "DP") ? l.channels : 1;
    if (copies > 1) l.channels = 1;
    if (t->n + copies > MAX_LAYERS) {
      set_err(err, errlen, "%s:%d: more than %d layers", path, lineno, MAX_LAYERS);
      goto fail;
    }
    for (int64_t i = 0; i < copies; i++) {
      scalesim_layer c = l;
      if (copies > 1) snprintf(c.name, sizeof c.name, "%.60sChannel_%lld", l.name, (long long)i);
      if (add_layer(t, &cap, &c)) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
      }
    }
  }
  if (!t->n) {
    set_err(err, errlen, "%s: no layers (the first line is the header)", path);
    goto fail;
  }
  return 0;
fail:
  scalesim_topology_free(t);
  return -1;
}

int scalesim_load_topology(scalesim_topology *t, const char *path, bool gemm, char *err, size_t errlen) {
  *t = (scalesim_topology){0};
  char *text = read_text(path, err, errlen);
  if (!text) return -1;
  int rc = scalesim_parse_topology(t, text, path, gemm, err, errlen);
  free(text);
  return rc;
}

void scalesim_topology_free(scalesim_topology *t) {
  free(t->layers);
  *t = (scalesim_topology){0};
}

// ---------------------------------------------------------------- arithmetic

static int bits(u128 x) {
  int n = 0;
  while (x) x >>= 1, n++;
  return n;
}

// a / b rounded to the nearest double, ties to even: Python's int / int.
// Exact for b below 2^70 (far beyond any layer); long double above.
static double div_exact(u128 a, u128 b) {
  assert(b > 0);
  if (!a) return 0.0;
  if (bits(b) > 70) return (double)((long double)a / (long double)b);
  // q = floor(a * 2^s / b) with 55 bits: 53 for the result, a guard bit and
  // a round bit; the remainder is the sticky bit.
  int s = 55 - (bits(a) - bits(b));
  u128 q, r;
  for (;;) {
    assert(bits(a) + (s > 0 ? s : 0) < 128 && bits(b) + (s < 0 ? -s : 0) < 128);
    u128 num = s >= 0 ? a << s : a, den = s >= 0 ? b : b << -s;
    q = num / den, r = num % den;
    if (q >> 55) s--;
    else if (!(q >> 54)) s++;
    else break;
  }
  uint64_t mant = (uint64_t)(q >> 2), low = (uint64_t)(q & 3);
  bool sticky = r != 0;
  if (low > 2 || (low == 2 && (sticky || (mant & 1)))) mant++;
  return ldexp((double)mant, 2 - s);
}

double scalesim_ratio(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return div_exact((u128)a * b, (u128)c * d);
}

char *scalesim_float_repr(double v, char *buf, size_t len) {
  if (isnan(v)) return snprintf(buf, len, "nan"), buf;
  if (isinf(v)) return snprintf(buf, len, v < 0 ? "-inf" : "inf"), buf;
  if (v == 0) return snprintf(buf, len, signbit(v) ? "-0.0" : "0.0"), buf;
  // The shortest digits that read back to v: "%.*e" rounds correctly.
  char e[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    if (strtod(e, NULL) == v) break;
  }
  // e is "-d.ddde+XX": digits and the decimal exponent.
  const char *q = e;
  bool neg = *q == '-';
  if (neg) q++;
  char digits[24];
  int nd = 0;
  for (; *q && *q != 'e'; q++)
    if (*q != '.') digits[nd++] = *q;
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = '\0';
  int exp10 = atoi(q + 1), decpt = exp10 + 1; // v = 0.digits x 10^decpt
  char out[64];
  int n = 0;
  if (neg) out[n++] = '-';
  if (decpt <= -4 || decpt > 16) { // Python's repr switches to an exponent here
    out[n++] = digits[0];
    if (nd > 1) n += snprintf(out + n, sizeof out - (size_t)n, ".%s", digits + 1);
    snprintf(out + n, sizeof out - (size_t)n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
  } else if (decpt <= 0) {
    n += snprintf(out + n, sizeof out - (size_t)n, "0.");
    for (int i = 0; i < -decpt; i++) out[n++] = '0';
    snprintf(out + n, sizeof out - (size_t)n, "%s", digits);
  } else if (decpt >= nd) {
    n += snprintf(out + n, sizeof out - (size_t)n, "%s", digits);
    for (int i = nd; i < decpt; i++) out[n++] = '0';
    snprintf(out + n, sizeof out - (size_t)n, ".0");
  } else {
    snprintf(out + n, sizeof out - (size_t)n, "%.*s.%s", decpt, digits, digits + decpt);
  }
  snprintf(buf, len, "%s", out);
  return buf;
}

// ---------------------------------------------------------------- the model

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Runs the folds of a layer through one MXU, in SCALE-Sim's order (column
// folds outer, row folds inner), each a tile load and a pass:
//   ws: a k x n weight tile (rows of Sr = K, columns of Sc = N), a pass of T = M rows;
//   os: the tile's k = T = K elements stream for a pass of one row fold of M;
//   is: a k x T tile (T = N weight columns streamed) for a pass of one block of M.
// Returns the first cycle at which every result is in (a count of cycles).
static uint64_t run_folds(const scalesim_config *c, const scalesim_result *r, bool preload) {
  mxu_timing mt;
  mxu_timing_init(&mt, c->rows, c->cols, c->rows);
  mxu_timing_set_dataflow(&mt, c->dataflow, preload);
  uint64_t end = 0, start, done;
  for (int64_t fc = 0; fc < r->col_folds; fc++)
    for (int64_t fr = 0; fr < r->row_folds; fr++) {
      int rows = (int)(r->sr - fr * c->rows < c->rows ? r->sr - fr * c->rows : c->rows);
      int cols = (int)(r->sc - fc * c->cols < c->cols ? r->sc - fc * c->cols : c->cols);
      uint64_t ld;
      bool ok;
      switch (c->dataflow) {
      case MXU_WS:
        ld = mxu_timing_load_tile(&mt, 0, rows, cols);
        ok = mxu_timing_pass(&mt, 0, (int)r->t, &start, &done);
        break;
      case MXU_OS:
        ld = mxu_timing_load_tile(&mt, 0, (int)r->t, cols);
        ok = mxu_timing_pass(&mt, 0, rows, &start, &done);
        break;
      default:
        ld = mxu_timing_load_tile(&mt, 0, rows, (int)r->t);
        ok = mxu_timing_pass(&mt, 0, cols, &start, &done);
        break;
      }
      assert(ld != UINT64_MAX && ok);
      (void)ld, (void)ok;
      if (done > end) end = done;
    }
  return end;
}

int scalesim_run_layer(const scalesim_config *c, const scalesim_layer *l, scalesim_result *r, char *err,
                       size_t errlen) {
  *r = (scalesim_result){0};
  int64_t oh = (l->ifmap_h - l->filt_h + l->stride_h - 1) / l->stride_h + 1; // ceil((H - R + s) / s)
  int64_t ow = (l->ifmap_w - l->filt_w + l->stride_w - 1) / l->stride_w + 1;
  r->m = oh * ow, r->n = l->filters, r->k = l->filt_h * l->filt_w * l->channels;
  if (r->m > INT_MAX || r->n > INT_MAX || r->k > INT_MAX) {
    set_err(err, errlen, "%s: too large to time (M %lld, N %lld, K %lld; each must be below 2^31)", l->name,
            (long long)r->m, (long long)r->n, (long long)r->k);
    return -1;
  }
  int64_t AR = c->rows, AC = c->cols;
  switch (c->dataflow) {
  case MXU_WS: r->sr = r->k, r->sc = r->n, r->t = r->m; break;
  case MXU_OS: r->sr = r->m, r->sc = r->n, r->t = r->k; break;
  case MXU_IS: r->sr = r->k, r->sc = r->m, r->t = r->n; break;
  }
  r->row_folds = ceil_div(r->sr, AR), r->col_folds = ceil_div(r->sc, AC);
  if (r->row_folds * r->col_folds > 100000000) {
    set_err(err, errlen, "%s: %lld folds: too many to time", l->name, (long long)(r->row_folds * r->col_folds));
    return -1;
  }

  // SCALE-Sim counts the cycle index of the last result, one less than the
  // count of cycles; each fold costs the same, fill and drain included.
  uint64_t end = run_folds(c, r, false);
  uint64_t per = c->dataflow == MXU_OS ? (uint64_t)(r->t + AR + AC - 2) : (uint64_t)(2 * AR + AC + r->t - 2);
  assert(end == (uint64_t)(r->row_folds * r->col_folds) * per);
  (void)per;
  r->total_cycles = end - 1;
  r->preloaded_cycles = run_folds(c, r, true);

  // Utilisation as SCALE-Sim computes it: per fold in the same order, summed
  // left to right in doubles (Python's sum), averaged, times 100. Its compute
  // utilisation divides by a fold's demand-matrix rows plus AC - 1: ws and is
  // 2AR + 2AC + T - 3 (AC - 1 more than the fold adds to the total), os
  // T + AR + AC - 2.
  uint64_t fold_cycles =
      c->dataflow == MXU_OS ? (uint64_t)(r->t + AR + AC - 2) : (uint64_t)(2 * AR + 2 * AC + r->t - 3);
  double map_sum = 0, util_sum = 0;
  for (int64_t fc = 0; fc < r->col_folds; fc++)
    for (int64_t fr = 0; fr < r->row_folds; fr++) {
      uint64_t rows = (uint64_t)(r->sr - fr * AR < AR ? r->sr - fr * AR : AR);
      uint64_t cols = (uint64_t)(r->sc - fc * AC < AC ? r->sc - fc * AC : AC);
      map_sum += scalesim_ratio(rows, cols, (uint64_t)AR, (uint64_t)AC);
      util_sum += scalesim_ratio(rows * cols, (uint64_t)r->t, (uint64_t)(AR * AC), fold_cycles);
    }
  double nfolds = (double)(r->row_folds * r->col_folds);
  r->mapping_eff = map_sum / nfolds * 100;
  r->compute_util = util_sum / nfolds * 100;
  u128 macs = (u128)r->m * (u128)r->n * (u128)r->k;
  r->overall_util = div_exact(macs * 100, (u128)r->total_cycles * (u128)(AR * AC));
  return 0;
}

void scalesim_write_compute_report(FILE *f, const scalesim_result *r, int n) {
  fprintf(f, "LayerID, Total Cycles, Stall Cycles, Overall Util %%, Mapping Efficiency %%, Compute Util %%,\n");
  for (int i = 0; i < n; i++) {
    char a[40], b[40], c[40];
    fprintf(f, "%d, %llu, %llu, %s, %s, %s,\n", i, (unsigned long long)r[i].total_cycles,
            (unsigned long long)r[i].stall_cycles, scalesim_float_repr(r[i].overall_util, a, sizeof a),
            scalesim_float_repr(r[i].mapping_eff, b, sizeof b), scalesim_float_repr(r[i].compute_util, c, sizeof c));
  }
}
