// NumPy .npy files (format described in numpy/lib/format.py):
//   "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32 LE for 2.0
//   and 3.0), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }
//   padded with spaces and a final '\n', then the raw elements.
//
// The header is parsed by a tiny recursive-descent parser that knows exactly
// the three keys NumPy writes; anything else is refused with the reason.
// The reader trusts nothing: lengths and the shape's byte count are checked
// (with overflow checks) before anything is allocated or copied.
#include "runtime/npy.h"
#include "isa/isa.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define ALIGN 64

static const struct {
  char kind;  // descr type character: 'f', 'i', 'u' or 'b'
  int size;   // bytes per element
  const char *name;
} dtypes[NPY_DTYPE_COUNT] = {
    [NPY_F32] = {'f', 4, "float32"}, [NPY_F64] = {'f', 8, "float64"},
    [NPY_F16] = {'f', 2, "float16"}, [NPY_I64] = {'i', 8, "int64"},
    [NPY_I32] = {'i', 4, "int32"},   [NPY_I16] = {'i', 2, "int16"},
    [NPY_I8] = {'i', 1, "int8"},     [NPY_U64] = {'u', 8, "uint64"},
    [NPY_U32] = {'u', 4, "uint32"},  [NPY_U16] = {'u', 2, "uint16"},
    [NPY_U8] = {'u', 1, "uint8"},    [NPY_BOOL] = {'b', 1, "bool"},
};

static int fail(char *err, size_t errlen, const char *name, const char *fmt, ...) {
  char msg[NPY_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (err && errlen)
    snprintf(err, errlen, "%s: %s", name ? name : "(npy)", msg);
  return -1;
}

size_t npy_dtype_size(npy_dtype t) {
  return (unsigned)t < NPY_DTYPE_COUNT ? (size_t)dtypes[t].size : 0;
}

const char *npy_dtype_name(npy_dtype t) {
  return (unsigned)t < NPY_DTYPE_COUNT ? dtypes[t].name : "?";
}

int64_t npy_count(const npy_array *a) {
  int64_t n = 1;
  for (int i = 0; i < a->rank; i++)
    n *= a->shape[i];
  return n;
}

// The byte count of a shape of elements of size esize, or -1 if a dimension is
// negative or the count does not fit in both int64_t and size_t.
static int64_t shape_bytes(int rank, const int64_t *shape, size_t esize) {
  uint64_t limit = (uint64_t)INT64_MAX < (uint64_t)SIZE_MAX ? (uint64_t)INT64_MAX : SIZE_MAX;
  for (int i = 0; i < rank; i++)
    if (shape[i] < 0)
      return -1;
  for (int i = 0; i < rank; i++)
    if (shape[i] == 0)
      return 0;
  uint64_t n = esize;
  for (int i = 0; i < rank; i++) {
    if ((uint64_t)shape[i] > limit / n)
      return -1;
    n *= (uint64_t)shape[i];
  }
  return (int64_t)n;
}

int npy_alloc(npy_array *a, npy_dtype t, int rank, const int64_t *shape) {
  *a = (npy_array){0};
  if ((unsigned)t >= NPY_DTYPE_COUNT || rank < 0 || rank > NPY_MAX_RANK)
    return -1;
  int64_t bytes = shape_bytes(rank, shape, npy_dtype_size(t));
  if (bytes < 0)
    return -1;
  void *data = calloc(bytes ? (size_t)bytes : 1, 1);
  if (!data)
    return -1;
  a->dtype = t;
  a->rank = rank;
  for (int i = 0; i < rank; i++)
    a->shape[i] = shape[i];
  a->data = data;
  return 0;
}

void npy_free(npy_array *a) {
  if (!a)
    return;
  free(a->data);
  *a = (npy_array){0};
}

// ---- Header parser ----

typedef struct {
  const char *p, *end;
  char msg[200];  // the reason, once something is wrong
} parser;

static int perr(parser *ps, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ps->msg, sizeof ps->msg, fmt, ap);
  va_end(ap);
  return -1;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int peek(parser *ps) { return ps->p < ps->end ? (unsigned char)*ps->p : -1; }

// A quoted string without escapes, 'like this' or "like this".
static int parse_string(parser *ps, char *out, size_t outlen) {
  int q = peek(ps);
  if (q != '\'' && q != '"')
    return perr(ps, "expected a quoted string in the header");
  ps->p++;
  size_t n = 0;
  while (ps->p < ps->end && *ps->p != q) {
    if (*ps->p == '\\' || *ps->p == '\n')
      return perr(ps, "unsupported character in a header string");
    if (n + 1 >= outlen)
      return perr(ps, "header string too long");
    out[n++] = *ps->p++;
  }
  if (ps->p >= ps->end)
    return perr(ps, "unterminated string in the header");
  ps->p++;
  out[n] = 0;
  return 0;
}

static int match_word(parser *ps, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
    return 0;
  ps->p += n;
  return 1;
}

static int parse_bool(parser *ps, int *out) {
  if (match_word(ps, "True"))
    *out = 1;
  else if (match_word(ps, "False"))
    *out = 0;
  else
    return perr(ps, "fortran_order must be True or False");
  return 0;
}

// A non-negative decimal integer (a Python 2 'L' suffix allowed).
static int parse_dim(parser *ps, int64_t *out) {
  if (peek(ps) == '-')
    return perr(ps, "negative dimension in shape");
  if (peek(ps) < '0' || peek(ps) > '9')
    return perr(ps, "expected an integer in shape");
  int64_t v = 0;
  while (peek(ps) >= '0' && peek(ps) <= '9') {
    int d = *ps->p++ - '0';
    if (v > (INT64_MAX - d) / 10)
      return perr(ps, "dimension too large in shape");
    v = v * 10 + d;
  }
  if (peek(ps) == 'L')
    ps->p++;
  *out = v;
  return 0;
}

// A tuple of dimensions: (), (3,), (1, 3, 224, 224) or (1, 3,).
static int parse_shape(parser *ps, int *rank, int64_t *shape) {
  if (peek(ps) != '(')
    return perr(ps, "shape must be a tuple");
  ps->p++;
  skip_ws(ps);
  int n = 0, comma = 0;
  while (peek(ps) != ')') {
    if (n == NPY_MAX_RANK)
      return perr(ps, "shape has more than %d dimensions", NPY_MAX_RANK);
    if (parse_dim(ps, &shape[n++]))
      return -1;
    skip_ws(ps);
    comma = 0;
    if (peek(ps) == ',') {
      ps->p++;
      skip_ws(ps);
      comma = 1;
    } else if (peek(ps) != ')') {
      return perr(ps, "expected ',' or ')' in shape");
    }
  }
  ps->p++;
  if (n == 1 && !comma)
    return perr(ps, "shape (N) is not a tuple; a 1-d shape is written (N,)");
  *rank = n;
  return 0;
}

typedef struct {
  char descr[32];
  int fortran;
  int rank;
  int64_t shape[NPY_MAX_RANK];
} header;

static int parse_header(parser *ps, header *h) {
  int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
  skip_ws(ps);
  if (peek(ps) != '{')
    return perr(ps, "header is not a dict");
  ps->p++;
  skip_ws(ps);
  while (peek(ps) != '}') {
    char key[32];
    if (parse_string(ps, key, sizeof key))
      return -1;
    skip_ws(ps);
    if (peek(ps) != ':')
      return perr(ps, "expected ':' after '%s' in the header", key);
    ps->p++;
    skip_ws(ps);
    int *seen;
    int rc;
    if (!strcmp(key, "descr")) {
      seen = &seen_descr;
      if (peek(ps) == '[')
        return perr(ps, "structured dtypes are not supported");
      rc = parse_string(ps, h->descr, sizeof h->descr);
    } else if (!strcmp(key, "fortran_order")) {
      seen = &seen_fortran;
      rc = parse_bool(ps, &h->fortran);
    } else if (!strcmp(key, "shape")) {
      seen = &seen_shape;
      rc = parse_shape(ps, &h->rank, h->shape);
    } else {
      return perr(ps, "unexpected key '%s' in the header", key);
    }
    if (rc)
      return -1;
    if ((*seen)++)
      return perr(ps, "key '%s' appears twice in the header", key);
    skip_ws(ps);
    if (peek(ps) == ',') {
      ps->p++;
      skip_ws(ps);
    } else if (peek(ps) != '}') {
      return perr(ps, "expected ',' or '}' in the header");
    }
  }
  ps->p++;
  skip_ws(ps);
  if (ps->p != ps->end)
    return perr(ps, "unexpected text after the header dict");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return perr(ps, "header lacks '%s'",
                !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
  return 0;
}

// Maps a descr such as '<f4' to a dtype; *swap is set for big-endian data.
static int parse_descr(const char *d, npy_dtype *t, int *swap) {
  if (strlen(d) != 3 || !strchr("<>=|", d[0]))
    return -1;
  for (int i = 0; i < NPY_DTYPE_COUNT; i++)
    if (d[1] == dtypes[i].kind && d[2] - '0' == dtypes[i].size) {
      *t = (npy_dtype)i;
      *swap = d[0] == '>' && dtypes[i].size > 1;
      return 0;
    }
  return -1;
}

static void byteswap(uint8_t *p, size_t n, size_t esize) {
  for (size_t i = 0; i < n; i++, p += esize)
    for (size_t j = 0; j < esize / 2; j++) {
      uint8_t t = p[j];
      p[j] = p[esize - 1 - j];
      p[esize - 1 - j] = t;
    }
}

static void format_shape(char *buf, size_t len, int rank, const int64_t *shape) {
  size_t n = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < rank && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < len)
    snprintf(buf + n, len - n, "%s)", rank == 1 ? "," : "");
}

int npy_read_buffer(const void *buf, size_t len, const char *name, npy_array *out, char *err,
                    size_t errlen) {
  const uint8_t *b = buf;
  *out = (npy_array){0};
  if (len < MAGIC_LEN || memcmp(b, MAGIC, MAGIC_LEN) != 0)
    return fail(err, errlen, name, "not a .npy file (bad magic)");
  if (len < MAGIC_LEN + 2)
    return fail(err, errlen, name, "truncated header (no version)");
  int major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
    return fail(err, errlen, name, "unsupported .npy format version %d.%d", major, minor);
  size_t lenbytes = major == 1 ? 2 : 4;
  size_t start = MAGIC_LEN + 2 + lenbytes;
  if (len < start)
    return fail(err, errlen, name, "truncated header (no header length)");
  size_t hlen = b[8] | (size_t)b[9] << 8;
  if (lenbytes == 4)
    hlen |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
  if (hlen > len - start)
    return fail(err, errlen, name, "truncated header (%zu bytes announced, %zu present)", hlen,
                len - start);

  header h = {0};
  parser ps = {(const char *)b + start, (const char *)b + start + hlen, {0}};
  if (parse_header(&ps, &h))
    return fail(err, errlen, name, "bad header: %s", ps.msg);
  npy_dtype t;
  int swap;
  if (parse_descr(h.descr, &t, &swap))
    return fail(err, errlen, name, "unsupported dtype '%s'", h.descr);
  if (h.fortran)
    return fail(err, errlen, name,
                "fortran_order arrays are not supported; save a C-order array "
                "(np.ascontiguousarray)");
  size_t esize = npy_dtype_size(t);
  int64_t bytes = shape_bytes(h.rank, h.shape, esize);
  char shp[NPY_MAX_RANK * 24 + 8];
  format_shape(shp, sizeof shp, h.rank, h.shape);
  if (bytes < 0)
    return fail(err, errlen, name, "shape %s of %s is too large", shp, dtypes[t].name);
  size_t have = len - start - hlen;
  if (have != (uint64_t)bytes)
    return fail(err, errlen, name, "%s data: shape %s of %s needs %lld bytes, file has %zu",
                have < (uint64_t)bytes ? "truncated" : "too much", shp, dtypes[t].name,
                (long long)bytes, have);

  if (npy_alloc(out, t, h.rank, h.shape))
    return fail(err, errlen, name, "out of memory for %lld bytes", (long long)bytes);
  memcpy(out->data, b + start + hlen, (size_t)bytes);
  if (swap)
    byteswap(out->data, (size_t)bytes / esize, esize);
  if (t == NPY_BOOL) {
    uint8_t *p = out->data;
    for (size_t i = 0; i < (size_t)bytes; i++)
      p[i] = p[i] != 0;
  }
  return 0;
}

int npy_read(const char *path, npy_array *out, char *err, size_t errlen) {
  *out = (npy_array){0};
  isa_file f;
  if (isa_file_load(&f, path, false, SIZE_MAX - 1, "a .npy array", err, errlen)) return -1;
  int rc = npy_read_buffer(f.data, f.len, path, out, err, errlen);
  isa_file_release(&f);
  return rc;
}

int npy_write(const char *path, const npy_array *a, char *err, size_t errlen) {
  if ((unsigned)a->dtype >= NPY_DTYPE_COUNT)
    return fail(err, errlen, path, "bad dtype %d", (int)a->dtype);
  if (a->rank < 0 || a->rank > NPY_MAX_RANK)
    return fail(err, errlen, path, "bad rank %d", a->rank);
  int64_t bytes = shape_bytes(a->rank, a->shape, npy_dtype_size(a->dtype));
  if (bytes < 0)
    return fail(err, errlen, path, "bad shape");
  if (bytes > 0 && !a->data)
    return fail(err, errlen, path, "array has no data");

  // Dict as NumPy writes it (keys sorted), then spaces and '\n' up to a
  // multiple of ALIGN counting the magic, version and length fields.
  char dict[NPY_MAX_RANK * 24 + 128], shp[NPY_MAX_RANK * 24 + 8];
  format_shape(shp, sizeof shp, a->rank, a->shape);
  const char *order = dtypes[a->dtype].size == 1 ? "|" : "<";
  int dn = snprintf(dict, sizeof dict, "{'descr': '%s%c%d', 'fortran_order': False, 'shape': %s, }",
                    order, dtypes[a->dtype].kind, dtypes[a->dtype].size, shp);
  size_t prefix = MAGIC_LEN + 2 + 2;
  int major = 1;
  size_t total = (prefix + (size_t)dn + 1 + ALIGN - 1) / ALIGN * ALIGN;
  if (total - prefix > 65535) {
    major = 2;
    prefix += 2;
    total = (prefix + (size_t)dn + 1 + ALIGN - 1) / ALIGN * ALIGN;
  }
  size_t hlen = total - prefix;
  uint8_t head[sizeof dict + 2 * ALIGN];
  memcpy(head, MAGIC, MAGIC_LEN);
  head[6] = (uint8_t)major;
  head[7] = 0;
  for (size_t i = 0; i < prefix - 8; i++)
    head[8 + i] = (uint8_t)(hlen >> (8 * i));
  memcpy(head + prefix, dict, (size_t)dn);
  memset(head + prefix + dn, ' ', hlen - (size_t)dn - 1);
  head[total - 1] = '\n';

  FILE *f = fopen(path, "wb");
  if (!f)
    return fail(err, errlen, path, "%s", strerror(errno));
  int ok = fwrite(head, 1, total, f) == total &&
           (bytes == 0 || fwrite(a->data, 1, (size_t)bytes, f) == (size_t)bytes);
  int e = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    remove(path);
    return fail(err, errlen, path, "write error: %s", strerror(e));
  }
  return 0;
}

// IEEE binary16 to binary32, exact.
static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | man << 13;
  } else if (exp == 0) {
    float v = (float)man * (1.0f / 16777216.0f);  // man * 2^-24, exact
    return sign ? -v : v;
  } else {
    bits = sign | (exp + 112) << 23 | man << 13;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

int npy_to_f32(const npy_array *a, float *out) {
  size_t n = (size_t)npy_count(a);
  const void *d = a->data;
  switch (a->dtype) {
#define CONVERT(T)                     \
  for (size_t i = 0; i < n; i++)       \
    out[i] = (float)((const T *)d)[i]; \
  return 0;
  case NPY_F32: CONVERT(float)
  case NPY_F64: CONVERT(double)
  case NPY_I64: CONVERT(int64_t)
  case NPY_I32: CONVERT(int32_t)
  case NPY_I16: CONVERT(int16_t)
  case NPY_I8: CONVERT(int8_t)
  case NPY_U64: CONVERT(uint64_t)
  case NPY_U32: CONVERT(uint32_t)
  case NPY_U16: CONVERT(uint16_t)
  case NPY_U8: CONVERT(uint8_t)
#undef CONVERT
  case NPY_BOOL:
    for (size_t i = 0; i < n; i++)
      out[i] = ((const uint8_t *)d)[i] ? 1.0f : 0.0f;
    return 0;
  case NPY_F16:
    for (size_t i = 0; i < n; i++)
      out[i] = f16_to_f32(((const uint16_t *)d)[i]);
    return 0;
  default:
    return -1;
  }
}

void npy_safe_name(const char *name, char *out, size_t len) {
  if (!len)
    return;
  size_t n = 0;
  for (; name && name[n] && n + 1 < len; n++) {
    char c = name[n];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    out[n] = ok ? c : '_';
  }
  if (n == 0 && len > 1)
    out[n++] = '_';
  out[n] = 0;
}
