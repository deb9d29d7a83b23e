// .npy reader and writer: round trips, files written by NumPy, our files read
// by NumPy, and malformed input of every kind (none may crash).
#include "runtime/npy.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char tmpdir[] = "/tmp/systole_npy_XXXXXX";
static int have_numpy;

static void path_in(char *buf, size_t len, const char *file) {
  snprintf(buf, len, "%s/%s", tmpdir, file);
}

// The value of element i of the test pattern, as a double (exact in every
// dtype it is stored in). The Python scripts below compute the same pattern.
static double pattern(npy_dtype t, int64_t i) {
  switch (t) {
  case NPY_F32: case NPY_F64: case NPY_F16: return (double)(i % 17 - 8) * 0.25;
  case NPY_I8: return (double)(i * 37 % 251 - 125);
  case NPY_I16: return (double)(i * 37 % 251 - 125) * 100;
  case NPY_I32: return (double)(i * 37 % 251 - 125) * 1e6;
  case NPY_I64: return (double)(i * 37 % 251 - 125) * 1e12;
  case NPY_U8: return (double)(i * 37 % 251);
  case NPY_U16: return (double)(i * 37 % 251) * 100;
  case NPY_U32: return (double)(i * 37 % 251) * 1e7;
  case NPY_U64: return (double)(i * 37 % 251) * 1e15;
  case NPY_BOOL: return i % 3 == 0;
  default: return 0;
  }
}

// float -> IEEE half for the exact values of pattern() (|v| <= 2, quarters).
static uint16_t f32_to_f16_exact(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  uint16_t sign = (uint16_t)(b >> 16 & 0x8000);
  if ((b & 0x7fffffff) == 0)
    return sign;
  int exp = (int)(b >> 23 & 0xff) - 127 + 15;
  return (uint16_t)(sign | exp << 10 | (b >> 13 & 0x3ff));
}

static void fill_pattern(npy_array *a) {
  int64_t n = npy_count(a);
  for (int64_t i = 0; i < n; i++) {
    double v = pattern(a->dtype, i);
    switch (a->dtype) {
    case NPY_F32: ((float *)a->data)[i] = (float)v; break;
    case NPY_F64: ((double *)a->data)[i] = v; break;
    case NPY_F16: ((uint16_t *)a->data)[i] = f32_to_f16_exact((float)v); break;
    case NPY_I64: ((int64_t *)a->data)[i] = (int64_t)v; break;
    case NPY_I32: ((int32_t *)a->data)[i] = (int32_t)v; break;
    case NPY_I16: ((int16_t *)a->data)[i] = (int16_t)v; break;
    case NPY_I8: ((int8_t *)a->data)[i] = (int8_t)v; break;
    case NPY_U64: ((uint64_t *)a->data)[i] = (uint64_t)v; break;
    case NPY_U32: ((uint32_t *)a->data)[i] = (uint32_t)v; break;
    case NPY_U16: ((uint16_t *)a->data)[i] = (uint16_t)v; break;
    case NPY_U8: case NPY_BOOL: ((uint8_t *)a->data)[i] = (uint8_t)v; break;
    default: break;
    }
  }
}

// Checks a against the pattern; exact via the native value of each element.
static void check_pattern(const npy_array *a, const char *what) {
  int64_t n = npy_count(a), bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = pattern(a->dtype, i), got = 0;
    switch (a->dtype) {
    case NPY_F32: got = ((float *)a->data)[i]; break;
    case NPY_F64: got = ((double *)a->data)[i]; break;
    case NPY_F16: got = ((uint16_t *)a->data)[i] == f32_to_f16_exact((float)v) ? v : NAN; break;
    case NPY_I64: got = ((int64_t *)a->data)[i] == (int64_t)v ? v : NAN; break;
    case NPY_I32: got = ((int32_t *)a->data)[i]; break;
    case NPY_I16: got = ((int16_t *)a->data)[i]; break;
    case NPY_I8: got = ((int8_t *)a->data)[i]; break;
    case NPY_U64: got = ((uint64_t *)a->data)[i] == (uint64_t)v ? v : NAN; break;
    case NPY_U32: got = ((uint32_t *)a->data)[i]; break;
    case NPY_U16: got = ((uint16_t *)a->data)[i]; break;
    case NPY_U8: case NPY_BOOL: got = ((uint8_t *)a->data)[i]; break;
    default: break;
    }
    if (got != v && bad++ < 3)
      CHECK(0, "%s: element %lld is %g, want %g", what, (long long)i, got, v);
  }
  CHECK(bad == 0, "%s: %lld bad elements", what, (long long)bad);
}

static const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {2, 1, 3}, {1, 2, 3, 2}};

static void test_round_trip(void) {
  char path[256], err[NPY_ERR_LEN];
  for (int t = 0; t < NPY_DTYPE_COUNT; t++)
    for (int rank = 0; rank <= 4; rank++) {
      npy_array a, b;
      CHECK(npy_alloc(&a, (npy_dtype)t, rank, shapes[rank]) == 0, "alloc");
      fill_pattern(&a);
      snprintf(path, sizeof path, "%s/rt_%s_%d.npy", tmpdir, npy_dtype_name((npy_dtype)t), rank);
      CHECK(npy_write(path, &a, err, sizeof err) == 0, "%s", err);
      CHECK(npy_read(path, &b, err, sizeof err) == 0, "%s", err);
      CHECK(b.dtype == a.dtype && b.rank == a.rank, "%s: type or rank", path);
      CHECK(memcmp(a.shape, b.shape, sizeof a.shape) == 0, "%s: shape", path);
      size_t bytes = (size_t)npy_count(&a) * npy_dtype_size(a.dtype);
      CHECK(b.data && memcmp(a.data, b.data, bytes) == 0, "%s: data", path);
      check_pattern(&b, path);
      struct stat st;
      CHECK(stat(path, &st) == 0 && ((size_t)st.st_size - bytes) % 64 == 0,
            "%s: data not 64-aligned", path);
      npy_free(&a);
      npy_free(&b);
    }
  // Empty and 8-d arrays.
  int64_t empty[2] = {0, 3}, eight[8] = {1, 2, 1, 2, 1, 2, 1, 2};
  npy_array a, b;
  npy_alloc(&a, NPY_F32, 2, empty);
  path_in(path, sizeof path, "empty.npy");
  CHECK(npy_write(path, &a, err, sizeof err) == 0, "%s", err);
  CHECK(npy_read(path, &b, err, sizeof err) == 0 && b.rank == 2 && b.shape[0] == 0 &&
            b.shape[1] == 3 && b.data,
        "empty: %s", err);
  npy_free(&a);
  npy_free(&b);
  npy_alloc(&a, NPY_I32, 8, eight);
  fill_pattern(&a);
  path_in(path, sizeof path, "rank8.npy");
  CHECK(npy_write(path, &a, err, sizeof err) == 0, "%s", err);
  CHECK(npy_read(path, &b, err, sizeof err) == 0 && b.rank == 8 && npy_count(&b) == 16, "%s", err);
  check_pattern(&b, "rank8");
  npy_free(&a);
  npy_free(&b);
  // Writer refusals.
  a = (npy_array){.dtype = NPY_F32, .rank = 9};
  CHECK(npy_write(path, &a, err, sizeof err) == -1 && strstr(err, path), "rank 9: %s", err);
  a = (npy_array){.dtype = NPY_F32, .rank = 1, .shape = {-1}};
  CHECK(npy_write(path, &a, err, sizeof err) == -1, "negative dim");
  a = (npy_array){.dtype = NPY_F32, .rank = 1, .shape = {4}};
  CHECK(npy_write(path, &a, err, sizeof err) == -1, "no data");
  CHECK(npy_write("/nonexistent-dir/x.npy", &b, err, sizeof err) == -1 &&
            strstr(err, "/nonexistent-dir/x.npy"),
        "%s", err);
  CHECK(npy_alloc(&a, NPY_F32, 3, (int64_t[]){1ll << 40, 1ll << 40, 1ll << 40}) == -1 && !a.data,
        "alloc overflow");
}

// Python source of the pattern, a function pat(dtype, shape).
static const char *py_pattern =
    "import numpy as np, sys\n"
    "def pat(dt, shape):\n"
    "    n = int(np.prod(shape, dtype=np.int64))\n"
    "    i = np.arange(n, dtype=np.int64)\n"
    "    k = i * 37 % 251\n"
    "    dt = np.dtype(dt)\n"
    "    if dt.kind == 'f': v = (i % 17 - 8) * 0.25\n"
    "    elif dt.kind == 'b': v = i % 3 == 0\n"
    "    else:\n"
    "        s = {1: 1, 2: 100, 4: 10**6 if dt.kind == 'i' else 10**7,\n"
    "             8: 10**12 if dt.kind == 'i' else 10**15}[dt.itemsize]\n"
    "        v = ((k - 125) if dt.kind == 'i' else k).astype(object) * s\n"
    "    return np.array(list(v) if n else [], dtype=dt).reshape(shape)\n";

static int run_python(const char *name, const char *body) {
  char path[256], cmd[512];
  path_in(path, sizeof path, name);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fprintf(f, "%s%s", py_pattern, body);
  fclose(f);
  snprintf(cmd, sizeof cmd, "cd %s && /usr/bin/python3 %s", tmpdir, path);
  return system(cmd);
}

static const char *const np_names[NPY_DTYPE_COUNT] = {
    "<f4", "<f8", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"};

static void test_numpy_writes(void) {
  char body[4096];
  size_t n = 0;
  n += (size_t)snprintf(body + n, sizeof body - n,
                        "dts = %s\n"
                        "shapes = [(), (5,), (2, 3), (2, 1, 3), (1, 2, 3, 2), (0, 3)]\n"
                        "for t, dt in enumerate(dts):\n"
                        "    for r, s in enumerate(shapes):\n"
                        "        np.save('np_%%d_%%d.npy' %% (t, r), pat(dt, s))\n",
                        "['<f4','<f8','<f2','<i8','<i4','<i2','|i1','<u8','<u4','<u2','|u1','|b1']");
  n += (size_t)snprintf(
      body + n, sizeof body - n,
      "from numpy.lib import format as F\n"
      "for v in [(2, 0), (3, 0)]:\n"
      "    with open('v%%d.npy' %% v[0], 'wb') as f: F.write_array(f, pat('<f4', (3, 4)), version=v)\n"
      "np.save('fortran.npy', np.asfortranarray(pat('<i4', (2, 3))))\n"
      "for dt in ['>i4', '>f8', '>f2', '>u2', '>i8']:\n"
      "    np.save('be_%%s.npy' %% dt[1:], pat(dt, (2, 3)))\n"
      "np.save('special_f16.npy', np.array([1.5, -2, 65504, 2**-24, -0.0, np.inf, -np.inf, "
      "np.nan], dtype='<f2'))\n"
      "np.save('special_f64.npy', np.array([1e300, 2**-1074, -0.0], dtype='<f8'))\n");
  (void)n;
  int rc = run_python("gen.py", body);
  CHECK(rc == 0, "python generator exited with %d", rc);
  if (rc)
    return;

  char path[256], err[NPY_ERR_LEN];
  static const int64_t np_shapes[][4] = {{0}, {5}, {2, 3}, {2, 1, 3}, {1, 2, 3, 2}, {0, 3}};
  static const int np_ranks[] = {0, 1, 2, 3, 4, 2};
  for (int t = 0; t < NPY_DTYPE_COUNT; t++)
    for (int r = 0; r < 6; r++) {
      char file[64];
      snprintf(file, sizeof file, "np_%d_%d.npy", t, r);
      path_in(path, sizeof path, file);
      npy_array a;
      CHECK(npy_read(path, &a, err, sizeof err) == 0, "%s", err);
      CHECK(a.dtype == (npy_dtype)t && a.rank == np_ranks[r], "%s: dtype %d rank %d", file,
            a.dtype, a.rank);
      CHECK(memcmp(a.shape, np_shapes[r], (size_t)a.rank * 8) == 0, "%s: shape", file);
      check_pattern(&a, file);
      npy_free(&a);
    }
  for (int v = 2; v <= 3; v++) {
    char file[16];
    snprintf(file, sizeof file, "v%d.npy", v);
    path_in(path, sizeof path, file);
    npy_array a;
    CHECK(npy_read(path, &a, err, sizeof err) == 0 && a.dtype == NPY_F32 && a.rank == 2 &&
              a.shape[0] == 3 && a.shape[1] == 4,
          "%s: %s", file, err);
    check_pattern(&a, file);
    npy_free(&a);
  }
  npy_array a;
  path_in(path, sizeof path, "fortran.npy");
  CHECK(npy_read(path, &a, err, sizeof err) == -1 && strstr(err, "fortran_order") &&
            strstr(err, path) && !a.data,
        "fortran: %s", err);
  static const struct { const char *file; npy_dtype t; } be[] = {
      {"be_i4.npy", NPY_I32}, {"be_f8.npy", NPY_F64}, {"be_f2.npy", NPY_F16},
      {"be_u2.npy", NPY_U16}, {"be_i8.npy", NPY_I64}};
  for (size_t i = 0; i < sizeof be / sizeof be[0]; i++) {
    path_in(path, sizeof path, be[i].file);
    CHECK(npy_read(path, &a, err, sizeof err) == 0 && a.dtype == be[i].t && a.rank == 2,
          "%s: %s", be[i].file, err);
    check_pattern(&a, be[i].file);
    npy_free(&a);
  }
  // float16 specials through npy_to_f32.
  path_in(path, sizeof path, "special_f16.npy");
  CHECK(npy_read(path, &a, err, sizeof err) == 0 && npy_count(&a) == 8, "%s", err);
  if (a.data && npy_count(&a) == 8) {
    float f[8];
    CHECK(npy_to_f32(&a, f) == 0, "to_f32");
    CHECK(f[0] == 1.5f && f[1] == -2.0f && f[2] == 65504.0f && f[3] == ldexpf(1, -24),
          "f16 values %g %g %g %g", f[0], f[1], f[2], f[3]);
    CHECK(f[4] == 0 && signbit(f[4]), "-0");
    CHECK(isinf(f[5]) && f[5] > 0 && isinf(f[6]) && f[6] < 0 && isnan(f[7]), "inf/nan");
  }
  npy_free(&a);
  path_in(path, sizeof path, "special_f64.npy");
  CHECK(npy_read(path, &a, err, sizeof err) == 0, "%s", err);
  if (a.data) {
    double *d = a.data;
    CHECK(d[0] == 1e300 && d[1] == ldexp(1, -1074) && d[2] == 0 && signbit(d[2]), "f64 specials");
  }
  npy_free(&a);
}

static void test_numpy_reads(void) {
  char path[256], err[NPY_ERR_LEN];
  char body[8192];
  size_t n = (size_t)snprintf(body, sizeof body, "bad = 0\ncases = [\n");
  for (int t = 0; t < NPY_DTYPE_COUNT; t++)
    for (int rank = 0; rank <= 4; rank++) {
      npy_array a;
      npy_alloc(&a, (npy_dtype)t, rank, shapes[rank]);
      fill_pattern(&a);
      char file[64];
      snprintf(file, sizeof file, "ours_%d_%d.npy", t, rank);
      path_in(path, sizeof path, file);
      CHECK(npy_write(path, &a, err, sizeof err) == 0, "%s", err);
      n += (size_t)snprintf(body + n, sizeof body - n, "  ('%s', '%s', (", file, np_names[t]);
      for (int i = 0; i < rank; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%lld,", (long long)shapes[rank][i]);
      n += (size_t)snprintf(body + n, sizeof body - n, ")),\n");
      npy_free(&a);
    }
  snprintf(body + n, sizeof body - n,
           "]\n"
           "from numpy.lib import format as F\n"
           "for file, dt, shape in cases:\n"
           "    a = np.load(file)\n"
           "    want = pat(dt, shape)\n"
           "    with open(file, 'rb') as f:\n"
           "        ver = F.read_magic(f)\n"
           "        F.read_array_header_1_0(f)\n"
           "        off = f.tell()\n"
           "    if a.dtype != want.dtype or a.shape != want.shape or not np.array_equal(a, want)"
           " or ver != (1, 0) or off %% 64:\n"
           "        print('mismatch', file, a.dtype, a.shape, ver, off); bad += 1\n"
           "print('numpy read %%d files, %%d bad' %% (len(cases), bad))\n"
           "sys.exit(1 if bad else 0)\n");
  int rc = run_python("check.py", body);
  CHECK(rc == 0, "numpy check exited with %d", rc);
}

// Builds a .npy buffer from a version, header text and data length.
static size_t make_npy(uint8_t *buf, int major, const char *hdr, size_t data) {
  size_t hl = strlen(hdr), pre = major == 1 ? 10 : 12;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (uint8_t)major;
  buf[7] = 0;
  for (size_t i = 0; i < pre - 8; i++)
    buf[8 + i] = (uint8_t)(hl >> (8 * i));
  memcpy(buf + pre, hdr, hl);
  memset(buf + pre + hl, 0x3f, data);
  return pre + hl + data;
}

static void test_headers(void) {
  static const struct { int major; const char *hdr; size_t data; const char *why; } bad[] = {
      {1, "{'descr': '<f4', 'fortran_order': False, }", 4, "lacks 'shape'"},
      {1, "{'descr': '<f4', 'shape': (), }", 4, "lacks 'fortran_order'"},
      {1, "{'fortran_order': False, 'shape': (), }", 4, "lacks 'descr'"},
      {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "twice"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", 4, "unexpected key"},
      {1, "{'descr': '<c8', 'fortran_order': False, 'shape': (), }", 8, "unsupported dtype"},
      {1, "{'descr': '<f3', 'fortran_order': False, 'shape': (), }", 3, "unsupported dtype"},
      {1, "{'descr': 'f4', 'fortran_order': False, 'shape': (), }", 4, "unsupported dtype"},
      {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (), }", 4, "structured"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12, "not a tuple"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", 12, "tuple"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, "negative"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9), }", 4, "more than"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4, "too large"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 4, "too large"},
      {1, "{'descr': '<u1', 'fortran_order': False, 'shape': (9223372036854775807, 2), }", 4, "too large"},
      {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", 4, "too large"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,, 2), }", 8, "integer"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2), }", 8, "expected ','"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 8, "shape"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), ", 4, "expected"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()} x", 4, "after the header"},
      {1, "{'descr': '<f4', 'fortran_order': maybe, 'shape': (), }", 4, "True or False"},
      {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 4, "fortran_order"},
      {1, "{'descr': '<f4 , 'fortran_order': False, 'shape': (), }", 4, "header"},
      {1, "{'descr: '<f4', 'fortran_order': False, 'shape': (), }", 4, "header"},
      {1, "{'descr' '<f4', 'fortran_order': False, 'shape': (), }", 4, "expected ':'"},
      {1, "['descr', '<f4']", 4, "not a dict"},
      {1, "", 4, "not a dict"},
      {1, "{descr: '<f4'}", 4, "quoted string"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, "truncated data"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, "too much data"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 1, "too much data"},
      {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "version"},
      {0, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "version"},
  };
  uint8_t buf[512];
  char err[NPY_ERR_LEN];
  npy_array a;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = make_npy(buf, bad[i].major == 0 ? 1 : bad[i].major, bad[i].hdr, bad[i].data);
    if (bad[i].major == 0)
      buf[7] = 1;  // version 1.1
    err[0] = 0;
    int rc = npy_read_buffer(buf, len, "bad.npy", &a, err, sizeof err);
    CHECK(rc == -1 && !a.data && strncmp(err, "bad.npy: ", 9) == 0 && strstr(err, bad[i].why),
          "case %zu (%s): rc %d err '%s'", i, bad[i].hdr, rc, err);
    npy_free(&a);
  }
  static const struct { int major; const char *hdr; size_t data; npy_dtype t; int rank; } good[] = {
      {1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}", 8, NPY_F32, 1},
      {1, "{'shape': (1, 3,), 'fortran_order': False, 'descr': '=i2'}   \n", 6, NPY_I16, 2},
      {1, "{ 'descr' : '|f8' , 'fortran_order' : False , 'shape' : ( 2L , 1L ) , }\n", 16, NPY_F64, 2},
      {1, "{'descr': '>u1', 'fortran_order': False, 'shape': (3,)}", 3, NPY_U8, 1},
      {2, "{'descr': '<b1', 'fortran_order': False, 'shape': (0, 0)}", 0, NPY_BOOL, 2},
      {3, "{'descr': '<i8', 'fortran_order': False, 'shape': ()}", 8, NPY_I64, 0},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t len = make_npy(buf, good[i].major, good[i].hdr, good[i].data);
    int rc = npy_read_buffer(buf, len, "good.npy", &a, err, sizeof err);
    CHECK(rc == 0 && a.dtype == good[i].t && a.rank == good[i].rank, "good %zu: %s", i, err);
    npy_free(&a);
  }
  // bool bytes other than 0/1 are normalized.
  size_t len = make_npy(buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", 0);
  buf[len++] = 7;
  buf[len++] = 0;
  CHECK(npy_read_buffer(buf, len, "b", &a, err, sizeof err) == 0 &&
            ((uint8_t *)a.data)[0] == 1 && ((uint8_t *)a.data)[1] == 0,
        "bool normalize");
  npy_free(&a);
  // Magic, header length and file errors.
  CHECK(npy_read_buffer("\x93NUMPZ\x01\x00\x00\x00", 10, "m", &a, err, sizeof err) == -1 &&
            strstr(err, "bad magic"),
        "%s", err);
  CHECK(npy_read_buffer("", 0, "m", &a, err, sizeof err) == -1 && strstr(err, "bad magic"), "%s", err);
  CHECK(npy_read_buffer("\x93NUMPY\x01\x00\xff\xff{}", 12, "m", &a, err, sizeof err) == -1 &&
            strstr(err, "truncated header"),
        "%s", err);
  CHECK(npy_read_buffer("\x93NUMPY\x02\x00\x00\x00\x00\x80", 12, "m", &a, err, sizeof err) == -1 &&
            strstr(err, "truncated header"),
        "%s", err);
  CHECK(npy_read("/nonexistent/in.npy", &a, err, sizeof err) == -1 &&
            strstr(err, "/nonexistent/in.npy: "),
        "%s", err);
  CHECK(npy_read(tmpdir, &a, err, sizeof err) == -1 && strstr(err, tmpdir), "dir: %s", err);
  char small[8];
  CHECK(npy_read_buffer("x", 1, "long-name.npy", &a, small, sizeof small) == -1 &&
            strlen(small) == 7,
        "short err buffer");
  CHECK(npy_read_buffer("x", 1, "n", &a, NULL, 0) == -1, "NULL err");
}

// Every truncation and a few thousand random corruptions of valid files.
static void test_fuzz(void) {
  char path[256], err[NPY_ERR_LEN];
  const char *files[] = {"rt_float32_2.npy", "rt_int64_3.npy", "rt_bool_0.npy", "np_2_3.npy",
                         "v2.npy", "v3.npy", "be_f8.npy"};
  test_seed(12345);
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    if (!have_numpy && f >= 3)
      break;
    path_in(path, sizeof path, files[f]);
    size_t len;
    uint8_t *good = (uint8_t *)test_read_file(path, &len);
    CHECK(good != NULL, "%s missing", path);
    if (!good)
      continue;
    npy_array a;
    CHECK(npy_read_buffer(good, len, files[f], &a, err, sizeof err) == 0, "%s", err);
    npy_free(&a);
    int failed_trunc = 0;
    for (size_t n = 0; n < len; n++) {
      uint8_t *cut = malloc(n ? n : 1);  // exact size, so ASan catches over-reads
      memcpy(cut, good, n);
      err[0] = 0;
      if (npy_read_buffer(cut, n, files[f], &a, err, sizeof err) != -1 || a.data ||
          strncmp(err, files[f], strlen(files[f])) != 0)
        failed_trunc++;
      npy_free(&a);
      free(cut);
    }
    CHECK(failed_trunc == 0, "%s: %d truncations accepted", files[f], failed_trunc);
    int accepted = 0, bad_err = 0;
    for (int it = 0; it < 800; it++) {
      uint8_t *m = malloc(len);
      memcpy(m, good, len);
      int flips = 1 + (int)(test_rand() % 4);
      for (int k = 0; k < flips; k++) {
        size_t pos = test_rand() % 2 ? test_rand() % (len < 128 ? len : 128) : test_rand() % len;
        uint64_t r = test_rand();
        // Sometimes a character that means something to the parser.
        static const char meaningful[] = "{}(),:' 0123456789-LTF<>|fiub\n";
        m[pos] = r % 3 ? (uint8_t)(r >> 8) : (uint8_t)meaningful[(r >> 8) % (sizeof meaningful - 1)];
      }
      err[0] = 0;
      int rc = npy_read_buffer(m, len, files[f], &a, err, sizeof err);
      if (rc == 0) {
        accepted++;
        int ok = a.data && a.rank >= 0 && a.rank <= NPY_MAX_RANK;
        size_t bytes = ok ? (size_t)npy_count(&a) * npy_dtype_size(a.dtype) : 0;
        CHECK(ok && bytes <= len, "accepted corruption has bad array");
        if (ok && bytes) {  // touch every byte so ASan would notice a short buffer
          volatile uint8_t s = 0;
          for (size_t i = 0; i < bytes; i++)
            s ^= ((uint8_t *)a.data)[i];
          (void)s;
        }
      } else if (rc != -1 || a.data || strncmp(err, files[f], strlen(files[f])) != 0) {
        bad_err++;
      }
      npy_free(&a);
      free(m);
    }
    CHECK(bad_err == 0, "%s: %d corruptions with a bad error", files[f], bad_err);
    CHECK(accepted < 800, "%s: all corruptions accepted", files[f]);
    free(good);
  }
}

static void test_to_f32(void) {
  npy_array a;
  float f[6];
  npy_alloc(&a, NPY_I64, 1, (int64_t[]){3});
  ((int64_t *)a.data)[0] = -5;
  ((int64_t *)a.data)[1] = (1ll << 53) + 1;
  ((int64_t *)a.data)[2] = INT64_MIN;
  CHECK(npy_to_f32(&a, f) == 0 && f[0] == -5 && f[1] == 0x1p53f && f[2] == -0x1p63f, "i64");
  npy_free(&a);
  npy_alloc(&a, NPY_U8, 0, NULL);
  ((uint8_t *)a.data)[0] = 255;
  CHECK(npy_to_f32(&a, f) == 0 && f[0] == 255, "u8 scalar");
  npy_free(&a);
  for (int t = 0; t < NPY_DTYPE_COUNT; t++) {
    npy_alloc(&a, (npy_dtype)t, 1, (int64_t[]){6});
    fill_pattern(&a);
    CHECK(npy_to_f32(&a, f) == 0, "to_f32 %d", t);
    for (int i = 0; i < 6; i++)
      CHECK(f[i] == (float)pattern((npy_dtype)t, i), "%s[%d] = %g", npy_dtype_name((npy_dtype)t),
            i, f[i]);
    npy_free(&a);
  }
  a = (npy_array){.dtype = NPY_DTYPE_COUNT};
  CHECK(npy_to_f32(&a, f) == -1, "bad dtype");
  CHECK(npy_dtype_size(NPY_F16) == 2 && npy_dtype_size(NPY_BOOL) == 1 &&
            npy_dtype_size(NPY_DTYPE_COUNT) == 0,
        "sizes");
  CHECK(!strcmp(npy_dtype_name(NPY_U16), "uint16") && !strcmp(npy_dtype_name(-1), "?"), "names");
}

static void test_safe_name(void) {
  static const struct { const char *in, *out; } cases[] = {
      {"logits", "logits"},
      {"out:0", "out_0"},
      {"a/b\\c", "a_b_c"},
      {"../etc/passwd", ".._etc_passwd"},
      {"x y\tz\n", "x_y_z_"},
      {"A-Za_z.09", "A-Za_z.09"},
      {"", "_"},
      {"caf\xc3\xa9", "caf__"},
      {"***", "___"},
  };
  char out[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    npy_safe_name(cases[i].in, out, sizeof out);
    CHECK(!strcmp(out, cases[i].out), "'%s' -> '%s', want '%s'", cases[i].in, out, cases[i].out);
  }
  npy_safe_name(NULL, out, sizeof out);
  CHECK(!strcmp(out, "_"), "NULL -> '%s'", out);
  npy_safe_name("abcdef", out, 4);
  CHECK(!strcmp(out, "abc"), "cut -> '%s'", out);
  out[0] = 'x';
  npy_safe_name("abc", out, 1);
  CHECK(out[0] == 0, "len 1");
  npy_safe_name("abc", out, 0);  // writes nothing
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  have_numpy = system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  test_round_trip();
  if (have_numpy) {
    test_numpy_writes();
    test_numpy_reads();
  } else {
    printf("test_npy: /usr/bin/python3 with numpy not found; NumPy interop tests skipped\n");
  }
  test_headers();
  test_fuzz();
  test_to_f32();
  test_safe_name();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "test_npy: could not remove %s\n", tmpdir);
  return test_done("test_npy");
}
