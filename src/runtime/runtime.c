// The runtime behind the public API (systole.h): clients for a chip,
// executables compiled from ONNX or read from .stx files, and execution on
// the simulator with a per-layer profile. docs/runtime.md is the
// specification.
#include "runtime/systole.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "compiler/compiler.h"
#include "frontend/hlo.h"
#include "ir/ir.h"
#include "isa/isa.h"
#include "runtime/npy.h"
#include "sim/chip.h"
#include "sim/numerics.h"
#include "sim/sim.h"

_Static_assert((int)SY_F32 == IO_F32 && (int)SY_BF16 == IO_BF16 && (int)SY_I32 == IO_I32 &&
                   (int)SY_I8 == IO_I8 && (int)SY_I64 == IO_I64 && (int)SY_U8 == IO_U8 && (int)SY_BOOL == IO_BOOL &&
                   (int)SY_I16 == IO_I16 && (int)SY_U16 == IO_U16 && (int)SY_U32 == IO_U32 &&
                   (int)SY_U64 == IO_U64 && (int)SY_DTYPES == IO_DTYPES,
               "sy_dtype numbers are isa_io_dtype's");
_Static_assert(SY_MAX_RANK == ISA_IO_MAX_RANK && SY_MAX_NAME == ISA_IO_MAX_NAME, "I/O limits");
_Static_assert((int)SY_PRECISION_HIGHEST == CC_PRECISION_HIGHEST, "precision numbers are cc_precision's");

struct sy_client {
  chip_config chip;
  char err[SY_ERR_LEN];
};

struct sy_executable {
  isa_program prog;
  // The HBM and host memory contents, laid out at the first run for every
  // run (constants stay resident, as a device keeps an uploaded
  // executable's); NULL: each run writes them (not made yet, or it failed).
  sim_image *image;
  bool image_tried;
  pthread_mutex_t image_mu;
  double compile_seconds;
  int precision; // sy_precision, -1 unknown
};

static int fail(sy_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(sy_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return -1;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------- tensors

const char *sy_dtype_name(sy_dtype t) { return (unsigned)t < SY_DTYPES ? isa_io_dtype_names[t] : "?"; }
size_t sy_dtype_size(sy_dtype t) { return (unsigned)t < SY_DTYPES ? (size_t)isa_io_dtype_bytes[t] : 0; }
const char *sy_precision_name(sy_precision p) {
  return p == SY_PRECISION_HIGHEST ? "highest" : p == SY_PRECISION_DEFAULT ? "default" : "?";
}

int64_t sy_tensor_elements(const sy_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

size_t sy_tensor_bytes(const sy_tensor *t) { return (size_t)sy_tensor_elements(t) * sy_dtype_size(t->dtype); }

char *sy_tensor_type_str(const sy_tensor *t, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "%s[", sy_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? "," : "", t->dims[i]);
  if (n < len) snprintf(buf + n, len - n, "]");
  return buf;
}

// Whether the shape is valid and its byte size fits (ranks, positive dims).
static bool shape_ok(const sy_tensor *t) {
  if (t->rank < 0 || t->rank > SY_MAX_RANK || (unsigned)t->dtype >= SY_DTYPES) return false;
  uint64_t n = sy_dtype_size(t->dtype);
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] < 0 || __builtin_mul_overflow(n, (uint64_t)t->dims[i], &n)) return false;
  return n <= SIZE_MAX / 2;
}

int sy_tensor_alloc(sy_tensor *t) {
  t->data = NULL;
  if (!shape_ok(t)) return -1;
  size_t n = sy_tensor_bytes(t);
  t->data = calloc(n ? n : 1, 1);
  return t->data ? 0 : -1;
}

void sy_tensor_free(sy_tensor *t) {
  if (!t) return;
  free(t->data);
  t->data = NULL;
}

// xorshift64* (Vigna): a fixed, documented generator, so random inputs are
// the same on every host and in every language binding.
static uint64_t xorshift64s(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

int sy_tensor_fill_random(sy_tensor *t, uint64_t seed) {
  if (!t->data && sy_tensor_alloc(t)) return -1;
  // A state that is never 0 and differs in many bits between nearby seeds.
  uint64_t s = (seed + 1) * 0x9e3779b97f4a7c15ull;
  if (!s) s = 1;
  int64_t n = sy_tensor_elements(t);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = xorshift64s(&s);
    float f = (float)(r >> 40) * (1.0f / 8388608.0f) - 1.0f; // 24 bits: k / 2^23 - 1, exact
    int bit = (int)(r >> 63);
    switch (t->dtype) {
    case SY_F32: ((float *)t->data)[i] = f; break;
    case SY_BF16: ((uint16_t *)t->data)[i] = num_f32_to_bf16(f); break;
    case SY_I32: ((int32_t *)t->data)[i] = bit; break;
    case SY_I8: ((int8_t *)t->data)[i] = (int8_t)bit; break;
    case SY_I64: ((int64_t *)t->data)[i] = bit; break;
    case SY_U8: case SY_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)bit; break;
    case SY_I16: case SY_U16: ((uint16_t *)t->data)[i] = (uint16_t)bit; break;
    case SY_U32: ((uint32_t *)t->data)[i] = (uint32_t)bit; break;
    case SY_U64: ((uint64_t *)t->data)[i] = (uint64_t)bit; break;
    default: return -1;
    }
  }
  return 0;
}

// An integer element of an integer or bool array; false for float arrays
// and for unsigned values beyond int64.
static bool npy_int(const npy_array *a, int64_t i, int64_t *v) {
  const void *d = a->data;
  switch (a->dtype) {
  case NPY_I64: *v = ((const int64_t *)d)[i]; return true;
  case NPY_I32: *v = ((const int32_t *)d)[i]; return true;
  case NPY_I16: *v = ((const int16_t *)d)[i]; return true;
  case NPY_I8: *v = ((const int8_t *)d)[i]; return true;
  case NPY_U64: {
    uint64_t u = ((const uint64_t *)d)[i];
    *v = (int64_t)u;
    return u <= INT64_MAX;
  }
  case NPY_U32: *v = ((const uint32_t *)d)[i]; return true;
  case NPY_U16: *v = ((const uint16_t *)d)[i]; return true;
  case NPY_U8: case NPY_BOOL: *v = ((const uint8_t *)d)[i]; return true;
  default: return false;
  }
}

static bool npy_is_float(npy_dtype t) { return t == NPY_F32 || t == NPY_F64 || t == NPY_F16; }

int sy_tensor_read_npy(sy_client *c, const char *path, sy_dtype dtype, sy_tensor *out) {
  *out = (sy_tensor){.dtype = dtype};
  npy_array a;
  char err[NPY_ERR_LEN];
  if (npy_read(path, &a, err, sizeof err)) return fail(c, "%s", err);
  int rc = 0;
  out->rank = a.rank;
  for (int i = 0; i < a.rank; i++) out->dims[i] = a.shape[i];
  int64_t n = npy_count(&a);
  if ((unsigned)dtype >= SY_DTYPES) rc = fail(c, "%s: unknown element type %d", path, (int)dtype);
  else if (sy_tensor_alloc(out)) rc = fail(c, "%s: out of memory", path);
  else if ((dtype == SY_F32 || dtype == SY_BF16) && !npy_is_float(a.dtype))
    // Integers (or booleans) where the model wants floats are a mistake worth
    // naming, as ONNX Runtime would; float64 and float16 convert.
    rc = fail(c, "%s: holds %s; the input wants %s (floating point)", path, npy_dtype_name(a.dtype),
              sy_dtype_name(dtype));
  else if (dtype == SY_F32 || dtype == SY_BF16) {
    float *f = dtype == SY_F32 ? out->data : malloc((size_t)n * sizeof *f);
    if (!f || npy_to_f32(&a, f)) rc = fail(c, "%s: cannot convert %s to %s", path, npy_dtype_name(a.dtype),
                                           sy_dtype_name(dtype));
    else if (dtype == SY_BF16)
      for (int64_t i = 0; i < n; i++) ((uint16_t *)out->data)[i] = num_f32_to_bf16(f[i]);
    if (f != out->data) free(f);
  } else if (npy_is_float(a.dtype)) {
    rc = fail(c, "%s: holds %s; the input wants %s (integers)", path, npy_dtype_name(a.dtype), sy_dtype_name(dtype));
  } else {
    static const int64_t lo[] = {[SY_I32] = INT32_MIN, [SY_I8] = INT8_MIN, [SY_I64] = INT64_MIN, [SY_U8] = 0,
                                 [SY_BOOL] = 0, [SY_I16] = INT16_MIN, [SY_U16] = 0, [SY_U32] = 0, [SY_U64] = 0};
    static const int64_t hi[] = {[SY_I32] = INT32_MAX, [SY_I8] = INT8_MAX, [SY_I64] = INT64_MAX,
                                 [SY_U8] = UINT8_MAX, [SY_BOOL] = 1, [SY_I16] = INT16_MAX, [SY_U16] = UINT16_MAX,
                                 [SY_U32] = UINT32_MAX, [SY_U64] = INT64_MAX};
    for (int64_t i = 0; i < n && !rc; i++) {
      int64_t v;
      if (dtype == SY_U64 && a.dtype == NPY_U64) { // the values beyond int64 as well
        ((uint64_t *)out->data)[i] = ((const uint64_t *)a.data)[i];
        continue;
      }
      if (!npy_int(&a, i, &v) || v < lo[dtype] || v > hi[dtype]) {
        rc = fail(c, "%s: element %" PRId64 " does not fit %s", path, i, sy_dtype_name(dtype));
        break;
      }
      switch (dtype) {
      case SY_I32: ((int32_t *)out->data)[i] = (int32_t)v; break;
      case SY_I8: ((int8_t *)out->data)[i] = (int8_t)v; break;
      case SY_I64: case SY_U64: ((int64_t *)out->data)[i] = v; break;
      case SY_I16: case SY_U16: ((uint16_t *)out->data)[i] = (uint16_t)v; break;
      case SY_U32: ((uint32_t *)out->data)[i] = (uint32_t)v; break;
      default: ((uint8_t *)out->data)[i] = (uint8_t)v; break;
      }
    }
  }
  npy_free(&a);
  if (rc) sy_tensor_free(out);
  return rc;
}

int sy_tensor_write_npy(sy_client *c, const sy_tensor *t, const char *path) {
  npy_array a;
  if (!shape_ok(t) || !t->data) return fail(c, "%s: output '%s' has no data or a bad shape", path, t->name);
  // Floats as float32 (bf16 widens exactly); integers and booleans keep their
  // type, so that every value is written exactly.
  static const npy_dtype as[SY_DTYPES] = {[SY_F32] = NPY_F32, [SY_BF16] = NPY_F32, [SY_I32] = NPY_I32,
                                          [SY_I8] = NPY_I8,   [SY_I64] = NPY_I64,  [SY_U8] = NPY_U8,
                                          [SY_BOOL] = NPY_BOOL, [SY_I16] = NPY_I16, [SY_U16] = NPY_U16,
                                          [SY_U32] = NPY_U32, [SY_U64] = NPY_U64};
  if (npy_alloc(&a, as[t->dtype], t->rank, t->dims)) return fail(c, "%s: out of memory", path);
  int64_t n = sy_tensor_elements(t);
  if (t->dtype == SY_BF16)
    for (int64_t i = 0; i < n; i++) ((float *)a.data)[i] = num_bf16_to_f32(((const uint16_t *)t->data)[i]);
  else memcpy(a.data, t->data, sy_tensor_bytes(t));
  char err[NPY_ERR_LEN];
  int rc = npy_write(path, &a, err, sizeof err) ? fail(c, "%s", err) : 0;
  npy_free(&a);
  return rc;
}

// ---------------------------------------------------------------- clients

sy_client *sy_client_create(const char *chip, char *err, size_t errlen) {
  sy_client *c = calloc(1, sizeof *c);
  char why[CHIP_ERR_LEN];
  if (!c) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (chip_load(&c->chip, chip ? chip : "tpu-v4", why, sizeof why)) {
    if (err && errlen) snprintf(err, errlen, "%s", why);
    free(c);
    return NULL;
  }
  return c;
}

void sy_client_destroy(sy_client *c) { free(c); }
const char *sy_last_error(const sy_client *c) { return c->err; }
const char *sy_client_chip_name(const sy_client *c) { return c->chip.name; }
double sy_client_clock_hz(const sy_client *c) { return c->chip.clock_hz; }

// ---------------------------------------------------------------- compiling

static bool is_elf(const char *path, sy_client *c, int *rc) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st)) {
    *rc = fail(c, "%s: %s", path, strerror(errno));
    if (f) fclose(f);
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    fclose(f);
    *rc = fail(c, "%s: is a directory, not a model", path);
    return false;
  }
  unsigned char magic[4] = {0};
  size_t n = fread(magic, 1, 4, f);
  fclose(f);
  *rc = 0;
  return n == 4 && !memcmp(magic, "\177ELF", 4);
}

static int load_stx(sy_client *c, const char *path, const sy_compile_options *opt, sy_executable *x) {
  char err[ISA_ERR_LEN];
  if (isa_program_read(&x->prog, path, err, sizeof err)) return fail(c, "%s", err);
  if (x->prog.chip[0] && strcmp(x->prog.chip, c->chip.name))
    return fail(c, "%s was compiled for %s, not %s: compile the model again with --chip %s", path, x->prog.chip,
                c->chip.name, c->chip.name);
  if (opt->dump_ir) fprintf(opt->dump_ir, "; %s is a compiled executable: it holds no IR\n", path);
  if (opt->dump_asm) {
    char *text = isa_disasm_program(&x->prog);
    if (!text) return fail(c, "%s: out of memory", path);
    fputs(text, opt->dump_asm);
    free(text);
  }
  return 0;
}

// Messages from the compiler name the node; put the model's file in front.
static int compile_fail(sy_client *c, const char *path, const char *msg) {
  size_t n = strlen(path);
  if (!strncmp(msg, path, n) && msg[n] == ':') return fail(c, "%s", msg);
  return fail(c, "%s: %s", path, msg);
}

// ---------------------------------------------------------------- calibration

static int ir_to_sy(ir_dtype dt) {
  switch (dt) {
  case IR_DT_F32: return SY_F32;
  case IR_DT_BF16: return SY_BF16;
  case IR_DT_I32: return SY_I32;
  case IR_DT_I8: return SY_I8;
  case IR_DT_I64: return SY_I64;
  case IR_DT_U8: return SY_U8;
  case IR_DT_BOOL: return SY_BOOL;
  case IR_DT_I16: return SY_I16;
  case IR_DT_U16: return SY_U16;
  case IR_DT_U32: return SY_U32;
  case IR_DT_U64: return SY_U64;
  default: return -1;
  }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted names in dir that end in .npy (files) or are subdirectories.
static int list_dir(sy_client *c, const char *dir, bool subdirs, char ***out, int *n) {
  *out = NULL, *n = 0;
  DIR *d = opendir(dir);
  if (!d) return fail(c, "--calibrate %s: %s", dir, strerror(errno));
  int cap = 0, rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) && !rc) {
    if (de->d_name[0] == '.') continue;
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(full, &st)) continue;
    size_t l = strlen(de->d_name);
    bool want = subdirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && l > 4 && !strcmp(de->d_name + l - 4, ".npy");
    if (!want) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      char **t = realloc(*out, (size_t)cap * sizeof *t);
      if (!t) rc = fail(c, "out of memory");
      else *out = t;
    }
    if (!rc && !((*out)[(*n)++] = strdup(full))) rc = fail(c, "out of memory");
  }
  closedir(d);
  if (!rc && *n) qsort(*out, (size_t)*n, sizeof **out, cmp_str);
  return rc;
}

static void free_list(char **l, int n) {
  for (int i = 0; i < n; i++) free(l[i]);
  free(l);
}

// Calibration sets: a model with one input takes every DIR/*.npy as one
// input; a model with several takes every subdirectory of DIR as one set
// holding NAME.npy per input (NAME's characters outside [A-Za-z0-9_.-] as _).
// Without a DIR: the random inputs of `systole run` (seed = input index).
static int load_calibration(sy_client *c, const ir_graph *g, const char *dir, sy_tensor **sets, int *nsets) {
  int ni = g->ninputs, rc = 0;
  *sets = NULL, *nsets = 0;
  for (int i = 0; i < ni; i++)
    if (ir_to_sy(g->inputs[i]->ty.dtype) < 0) return fail(c, "input '%s': no calibration for its type", g->inputs[i]->name);
  char **list = NULL;
  int n = 1;
  if (dir) {
    if (list_dir(c, dir, ni > 1, &list, &n)) return -1;
    if (!n) {
      free_list(list, n);
      return fail(c, "--calibrate %s: no %s", dir, ni > 1 ? "subdirectories (one per set of inputs)" : ".npy files");
    }
  }
  sy_tensor *t = calloc((size_t)(n * ni) + 1, sizeof *t);
  if (!t) rc = fail(c, "out of memory");
  for (int s = 0; s < n && !rc; s++)
    for (int i = 0; i < ni && !rc; i++) {
      const ir_value *v = g->inputs[i];
      sy_tensor *u = &t[s * ni + i];
      sy_dtype dt = (sy_dtype)ir_to_sy(v->ty.dtype);
      if (!dir) {
        *u = (sy_tensor){.dtype = dt, .rank = v->ty.rank};
        for (int d = 0; d < v->ty.rank; d++) u->dims[d] = v->ty.dims[d];
        if (sy_tensor_fill_random(u, (uint64_t)i)) rc = fail(c, "out of memory");
        continue;
      }
      char file[4096];
      if (ni == 1) snprintf(file, sizeof file, "%s", list[s]);
      else {
        char nm[SY_MAX_NAME + 1];
        snprintf(nm, sizeof nm, "%s", v->name);
        for (char *q = nm; *q; q++)
          if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || strchr("_.-", *q)))
            *q = '_';
        snprintf(file, sizeof file, "%s/%s.npy", list[s], nm);
      }
      if (sy_tensor_read_npy(c, file, dt, u)) {
        char why[SY_ERR_LEN];
        snprintf(why, sizeof why, "%s", c->err);
        rc = fail(c, "--calibrate: input '%s': %s", v->name, why);
        break;
      }
      bool same = u->rank == v->ty.rank;
      for (int d = 0; same && d < u->rank; d++) same = u->dims[d] == v->ty.dims[d];
      if (!same) {
        char a[128], b[128];
        ir_type_str(&v->ty, b, sizeof b);
        rc = fail(c, "--calibrate: %s is %s; input '%s' is %s", file, sy_tensor_type_str(u, a, sizeof a), v->name, b);
      }
    }
  free_list(list, dir ? n : 0);
  if (rc) {
    for (int k = 0; t && k < n * ni; k++) sy_tensor_free(&t[k]);
    free(t);
    return -1;
  }
  *sets = t, *nsets = n;
  return 0;
}

static int quantize_graph(sy_client *c, ir_graph *g, const sy_compile_options *opt) {
  sy_tensor *sets;
  int n;
  if (load_calibration(c, g, opt->calibrate_dir, &sets, &n)) return -1;
  int ni = g->ninputs;
  const void **ptr = calloc((size_t)(n * ni) + 1, sizeof *ptr);
  int rc = ptr ? 0 : fail(c, "out of memory");
  for (int k = 0; !rc && k < n * ni; k++) ptr[k] = sets[k].data;
  char err[CC_ERR_LEN];
  cc_calibration cal = {n, ptr};
  if (!rc && cc_quantize(g, &c->chip, &cal, err, sizeof err)) rc = fail(c, "--quantize int8: %s", err);
  for (int k = 0; k < n * ni; k++) sy_tensor_free(&sets[k]);
  free(sets);
  free(ptr);
  return rc;
}

static int compile_onnx(sy_client *c, const char *path, const sy_compile_options *opt, sy_executable *x) {
  char err[CC_ERR_LEN];
  int n = opt->ninput_shapes > 0 ? opt->ninput_shapes : 0;
  ir_input_shape *shapes = calloc(n ? (size_t)n : 1, sizeof *shapes);
  if (!shapes) return fail(c, "out of memory");
  for (int i = 0; i < n; i++)
    if (ir_parse_input_shape(opt->input_shapes[i], &shapes[i], err, sizeof err)) {
      free(shapes);
      return fail(c, "--input-shape %s: %s", opt->input_shapes[i], err);
    }
  bool hlo = hlo_is_hlo_file(path); // HLO text (docs/hlo.md): static shapes, results named by number
  ir_graph *g = hlo ? hlo_import(path, err, sizeof err) : onnx_import(path, shapes, n, err, sizeof err);
  free(shapes);
  if (!g) return compile_fail(c, path, err);
  cc_options co = {.precision = (cc_precision)opt->precision, .dump_ir = opt->dump_ir, .dump_asm = opt->dump_asm,
                   .quantize = opt->quantize == SY_QUANTIZE_INT8, .fuse_activate = c->chip.vmem_activations};
  cc_executable exe = {0};
  int rc = 0;
  if (cc_optimize(g, &co, err, sizeof err)) rc = compile_fail(c, path, err);
  else if (opt->quantize == SY_QUANTIZE_INT8 && quantize_graph(c, g, opt)) {
    char why[SY_ERR_LEN];
    snprintf(why, sizeof why, "%s", c->err);
    rc = compile_fail(c, path, why);
  } else if (cc_compile(g, &c->chip, &co, &exe, err, sizeof err)) rc = compile_fail(c, path, err);
  ir_graph_free(g);
  if (rc) {
    cc_executable_free(&exe);
    return rc;
  }
  x->prog = exe.prog;
  for (size_t k = 0; hlo && k < x->prog.nio; k++) // "result:1" is HLO's result 1: "1"
    if (x->prog.io[k].role == IO_OUTPUT) {
      char *nm = x->prog.io[k].name;
      memmove(nm, hlo_public_name(nm), strlen(hlo_public_name(nm)) + 1);
    }
  exe.prog = (isa_program){0};
  cc_executable_free(&exe);
  if (strcmp(x->prog.chip, c->chip.name)) // the compiler names its target; a mismatch is a bug there
    snprintf(x->prog.chip, sizeof x->prog.chip, "%s", c->chip.name);
  x->precision = opt->precision;
  return 0;
}

sy_executable *sy_compile_file(sy_client *c, const char *path, const sy_compile_options *opt) {
  static const sy_compile_options defaults = {0};
  if (!opt) opt = &defaults;
  if ((unsigned)opt->precision > SY_PRECISION_HIGHEST) {
    fail(c, "unknown precision %d", (int)opt->precision);
    return NULL;
  }
  if ((unsigned)opt->quantize > SY_QUANTIZE_INT8) {
    fail(c, "unknown quantisation %d", opt->quantize);
    return NULL;
  }
  double t0 = now_seconds();
  sy_executable *x = calloc(1, sizeof *x);
  if (!x) {
    fail(c, "out of memory");
    return NULL;
  }
  x->precision = -1;
  pthread_mutex_init(&x->image_mu, NULL);
  int rc;
  bool elf = is_elf(path, c, &rc);
  if (!rc) rc = elf ? load_stx(c, path, opt, x) : compile_onnx(c, path, opt, x);
  if (rc) {
    sy_executable_destroy(x);
    return NULL;
  }
  x->compile_seconds = now_seconds() - t0;
  return x;
}

int sy_executable_save(sy_client *c, const sy_executable *x, const char *path) {
  char err[ISA_ERR_LEN];
  if (isa_program_write(&x->prog, path, err, sizeof err)) return fail(c, "%s", err);
  return 0;
}

void sy_executable_destroy(sy_executable *x) {
  if (!x) return;
  sim_image_destroy(x->image);
  pthread_mutex_destroy(&x->image_mu);
  isa_program_free(&x->prog);
  free(x);
}

// The i-th tensor of a role, in file order, or NULL.
static const isa_io *io_at(const sy_executable *x, isa_io_role role, int i) {
  for (size_t k = 0; k < x->prog.nio; k++)
    if (x->prog.io[k].role == role && i-- == 0) return &x->prog.io[k];
  return NULL;
}

static int io_count(const sy_executable *x, isa_io_role role) {
  int n = 0;
  for (size_t k = 0; k < x->prog.nio; k++) n += x->prog.io[k].role == role;
  return n;
}

static void io_tensor(const isa_io *t, sy_tensor *out) {
  *out = (sy_tensor){.dtype = (sy_dtype)t->dtype, .rank = t->rank};
  snprintf(out->name, sizeof out->name, "%s", t->name);
  memcpy(out->dims, t->dims, sizeof out->dims);
}

int sy_executable_num_inputs(const sy_executable *x) { return io_count(x, IO_INPUT); }
int sy_executable_num_outputs(const sy_executable *x) { return io_count(x, IO_OUTPUT); }

void sy_executable_input(const sy_executable *x, int i, sy_tensor *out) {
  const isa_io *t = io_at(x, IO_INPUT, i);
  if (t) io_tensor(t, out);
  else *out = (sy_tensor){0};
}

void sy_executable_output(const sy_executable *x, int i, sy_tensor *out) {
  const isa_io *t = io_at(x, IO_OUTPUT, i);
  if (t) io_tensor(t, out);
  else *out = (sy_tensor){0};
}

int sy_executable_find_input(const sy_executable *x, const char *name) {
  for (int i = 0; i < sy_executable_num_inputs(x); i++)
    if (!strcmp(io_at(x, IO_INPUT, i)->name, name)) return i;
  return -1;
}

double sy_executable_compile_seconds(const sy_executable *x) { return x->compile_seconds; }
int sy_executable_precision(const sy_executable *x) { return x->precision; }
size_t sy_executable_num_instructions(const sy_executable *x) { return x->prog.ncode; }
int sy_executable_num_layers(const sy_executable *x) { return (int)x->prog.nlayers; }

// ---------------------------------------------------------------- executing

void sy_profile_free(sy_profile *p) {
  if (!p) return;
  free(p->layers);
  *p = (sy_profile){0};
}

static bool same_type(const isa_io *want, const sy_tensor *got) {
  if ((int)want->dtype != (int)got->dtype || want->rank != got->rank) return false;
  for (int i = 0; i < want->rank; i++)
    if (want->dims[i] != got->dims[i]) return false;
  return true;
}

static int check_inputs(sy_client *c, const sy_executable *x, const sy_tensor *in, int n) {
  int want = sy_executable_num_inputs(x);
  if (n != want) return fail(c, "the model has %d input%s, %d given", want, want == 1 ? "" : "s", n);
  for (int i = 0; i < n; i++) {
    const isa_io *t = io_at(x, IO_INPUT, i);
    if (!same_type(t, &in[i])) {
      sy_tensor w;
      char a[160], b[160];
      io_tensor(t, &w);
      return fail(c, "input '%s': expected %s, got %s", t->name, sy_tensor_type_str(&w, a, sizeof a),
                  shape_ok(&in[i]) ? sy_tensor_type_str(&in[i], b, sizeof b) : "a tensor of a bad shape");
    }
    if (!in[i].data) return fail(c, "input '%s': no data", t->name);
  }
  return 0;
}

// Per-layer figures: the pc profile summed over each layer's instructions.
static int fill_layers(sy_client *c, const sy_executable *x, const sim *s, sy_profile *p) {
  size_t npc;
  const sim_pc_profile *pc = sim_get_pc_profile(s, &npc);
  const chip_config *ch = sim_chip(s);
  p->nlayers = (int)x->prog.nlayers;
  if (!p->nlayers) return 0;
  p->layers = calloc(x->prog.nlayers, sizeof *p->layers);
  if (!p->layers) return fail(c, "out of memory");
  // An int8-only MXU does int8_macs_per_pe MACs per PE per cycle.
  double per_mac = !ch->mxu_bf16 && ch->int8_macs_per_pe > 1 ? 1.0 / ch->int8_macs_per_pe : 1.0;
  double peak = (double)ch->mxu_count * ch->mxu_rows * ch->mxu_cols;
  for (size_t i = 0; i < x->prog.nlayers; i++) {
    const isa_layer *l = &x->prog.layers[i];
    sy_layer_profile *lp = &p->layers[i];
    snprintf(lp->name, sizeof lp->name, "%s", l->name);
    snprintf(lp->op, sizeof lp->op, "%s", l->op);
    lp->model_macs = l->macs;
    // The layer's work starts with its first tile instruction: the scalar
    // unit runs ahead, so its address arithmetic says little about when.
    uint64_t start = UINT64_MAX, tile_start = UINT64_MAX, end = 0;
    for (uint64_t k = l->pc_begin; k < l->pc_end && k < npc; k++) {
      if (!pc[k].count) continue;
      isa_inst in;
      bool tile = isa_decode(x->prog.code[k], &in, NULL, 0) && isa_ops[in.op].format == FMT_T;
      uint64_t *first = tile ? &tile_start : &start;
      if (pc[k].first_start < *first) *first = pc[k].first_start;
      if (pc[k].last_done > end) end = pc[k].last_done;
      lp->macs += pc[k].macs;
      lp->hbm_bytes += pc[k].hbm_bytes;
    }
    if (tile_start != UINT64_MAX) start = tile_start;
    if (start == UINT64_MAX) start = end = 0;
    lp->start = start, lp->end = end, lp->cycles = end - start;
    lp->mxu_utilization = lp->cycles ? (double)lp->macs * per_mac / ((double)lp->cycles * peak) : 0;
  }
  return 0;
}

static int write_trace(sy_client *c, const sim *s, const sy_profile *p, const char *path) {
  sim_span *spans = calloc(p && p->nlayers ? (size_t)p->nlayers : 1, sizeof *spans);
  if (!spans) return fail(c, "out of memory");
  size_t n = 0;
  for (int i = 0; p && i < p->nlayers; i++)
    if (p->layers[i].end > p->layers[i].start)
      spans[n++] = (sim_span){p->layers[i].name, p->layers[i].start, p->layers[i].end};
  char err[SIM_ERR_LEN];
  int rc = sim_write_trace_spans(s, path, spans, n, err, sizeof err) ? fail(c, "%s", err) : 0;
  free(spans);
  return rc;
}

// The executable's memory image for c's chip, made at its first run; NULL:
// load the segments into each run (another chip's HBM size, or no memory).
static const sim_image *executable_image(const sy_client *c, const sy_executable *cx) {
  sy_executable *x = (sy_executable *)cx; // the image is a cache: it changes no result
  pthread_mutex_lock(&x->image_mu);
  if (!x->image_tried) {
    char err[SIM_ERR_LEN];
    x->image = sim_image_create(&c->chip, &x->prog, err, sizeof err); // a bad segment: sim_load says so
    x->image_tried = true;
  }
  pthread_mutex_unlock(&x->image_mu);
  return x->image && sim_image_hbm_bytes(x->image) == c->chip.hbm_bytes ? x->image : NULL;
}

int sy_execute(sy_client *c, const sy_executable *x, const sy_tensor *inputs, int ninputs, sy_tensor *outputs,
               sy_profile *profile, const sy_execute_options *opt) {
  static const sy_execute_options defaults = {0};
  if (!opt) opt = &defaults;
  if (profile) *profile = (sy_profile){0};
  int nout = sy_executable_num_outputs(x);
  for (int i = 0; i < nout; i++) outputs[i] = (sy_tensor){0};
  if (check_inputs(c, x, inputs, ninputs)) return -1;
  char err[SIM_ERR_LEN];
  // The layer profile needs the pc profile; a trace shows layers too.
  bool want_layers = profile || opt->trace_path;
  sim_options so = {.max_cycles = opt->max_cycles, .timing_only = opt->timing_only,
                    .trace = opt->trace_path != NULL, .profile = want_layers};
  sim *s = sim_create(&c->chip, &so, err, sizeof err);
  if (!s) return fail(c, "%s", err);
  int rc = 0;
  const sim_image *img = executable_image(c, x);
  if (img ? sim_load_image(s, &x->prog, img, err, sizeof err) : sim_load(s, &x->prog, err, sizeof err))
    rc = fail(c, "%s", err);
  for (int i = 0; i < ninputs && !rc; i++) {
    const isa_io *t = io_at(x, IO_INPUT, i);
    sim_mem mem = sim_io_mem(t);
    if (sim_write(s, mem, t->addr, inputs[i].data, sy_tensor_bytes(&inputs[i]), err, sizeof err))
      rc = fail(c, "input '%s': %s", t->name, err);
  }
  double t0 = now_seconds();
  bool ran = !rc;
  if (!rc && sim_run(s, err, sizeof err)) rc = fail(c, "the run stopped: %s", err);
  double host = now_seconds() - t0;
  for (int i = 0; i < nout && !rc; i++) {
    const isa_io *t = io_at(x, IO_OUTPUT, i);
    io_tensor(t, &outputs[i]);
    if (sy_tensor_alloc(&outputs[i])) rc = fail(c, "output '%s': out of memory", t->name);
    else if (sim_read(s, sim_io_mem(t), t->addr, outputs[i].data,
                      sy_tensor_bytes(&outputs[i]), err, sizeof err))
      rc = fail(c, "output '%s': %s", t->name, err);
  }
  sy_profile tmp = {0}, *p = profile ? profile : &tmp;
  if (ran) { // after a trap too: the trace shows the layers that ran
    const sim_stats *st = sim_get_stats(s);
    p->cycles = st->cycles;
    p->seconds = st->seconds;
    p->macs = st->macs_bf16 + st->macs_int8;
    p->mxu_utilization = st->mxu_utilization;
    p->hbm_read = st->hbm_read, p->hbm_write = st->hbm_write;
    p->energy_j = st->energy_total_pj * 1e-12;
    p->mxu_cycles = st->mxu_cycles, p->mxu_active = st->mxu_active, p->weight_stall = st->weight_stall;
    p->weight_shift = st->weight_shift, p->non_matrix = st->non_matrix;
    p->useful_mac_fraction = st->useful_mac_fraction, p->unused_mac_fraction = st->unused_mac_fraction;
    p->tops = st->tops;
    p->host_in_cycles = st->host_in_cycles, p->host_out_cycles = st->host_out_cycles;
    p->host_seconds = host;
    if (fill_layers(c, x, s, p) && !rc) rc = -1;
  }
  // A trace of a run that trapped still shows how it got there.
  if (ran && opt->trace_path) {
    char saved[SY_ERR_LEN];
    memcpy(saved, c->err, sizeof saved);
    if (write_trace(c, s, p, opt->trace_path) && !rc) rc = -1;
    else if (rc) memcpy(c->err, saved, sizeof saved); // the run's error matters more
  }
  sim_destroy(s);
  if (p == &tmp) sy_profile_free(&tmp);
  if (rc) {
    for (int i = 0; i < nout; i++) sy_tensor_free(&outputs[i]);
    if (profile) sy_profile_free(profile);
  }
  return rc;
}
