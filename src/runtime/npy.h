// NumPy .npy files: the inputs of `systole run --input NAME=FILE.npy` and the
// files its outputs are written to.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, any of the dtypes below in
// little-endian, native ('=') or byte-order-free ('|') form, and big-endian
// ('>') data, which is byte-swapped to native on load. fortran_order True and
// structured dtypes are refused. Every problem with a file is an error
// "NAME: reason", never a crash.
//
// Writing produces version 1.0 (2.0 only if the header would not fit), the
// header padded with spaces so the data starts at a multiple of 64 bytes, as
// NumPy does.
#ifndef SYSTOLE_NPY_H
#define SYSTOLE_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_RANK 8
#define NPY_ERR_LEN 512

typedef enum {
  NPY_F32,  // '<f4' float32
  NPY_F64,  // '<f8' float64
  NPY_F16,  // '<f2' float16 (IEEE binary16)
  NPY_I64,  // '<i8'
  NPY_I32,  // '<i4'
  NPY_I16,  // '<i2'
  NPY_I8,   // '|i1'
  NPY_U64,  // '<u8'
  NPY_U32,  // '<u4'
  NPY_U16,  // '<u2'
  NPY_U8,   // '|u1'
  NPY_BOOL, // '|b1', one byte per element, 0 or 1
  NPY_DTYPE_COUNT
} npy_dtype;

// An n-dimensional array in C order, elements in native (little-endian) order.
typedef struct {
  npy_dtype dtype;
  int rank;                     // 0 (a scalar) .. NPY_MAX_RANK
  int64_t shape[NPY_MAX_RANK];  // shape[0..rank), each >= 0
  void *data;                   // malloc'd by npy_read/npy_alloc; never NULL after them
} npy_array;

// Size of one element in bytes, and the NumPy name ("float32", "bool", ...).
size_t npy_dtype_size(npy_dtype t);
const char *npy_dtype_name(npy_dtype t);
// Number of elements (1 for rank 0).
int64_t npy_count(const npy_array *a);

// Fills *a with a zeroed array of the given type and shape. Returns 0, or -1
// (with *a zeroed) for a bad rank or dimension, an overflowing size or no memory.
int npy_alloc(npy_array *a, npy_dtype t, int rank, const int64_t *shape);
// Frees a->data and zeroes *a; NULL is allowed.
void npy_free(npy_array *a);

// Reads a .npy file into *out. Returns 0, or -1 with err set to "path: reason"
// and *out zeroed.
int npy_read(const char *path, npy_array *out, char *err, size_t errlen);
// Same for a file already in memory; name is used in error messages.
int npy_read_buffer(const void *buf, size_t len, const char *name, npy_array *out, char *err,
                    size_t errlen);

// Writes *a to path. Returns 0, or -1 with err set to "path: reason".
int npy_write(const char *path, const npy_array *a, char *err, size_t errlen);

// Converts every element of a to float (bool -> 0 or 1; wide integers round to
// nearest) into out[0..npy_count(a)). Returns 0, or -1 for an unknown dtype.
int npy_to_f32(const npy_array *a, float *out);

// The output-file-name rule: a copy of name with every character outside
// [A-Za-z0-9_.-] replaced by '_', cut to len-1 bytes; "" (or NULL) becomes "_".
void npy_safe_name(const char *name, char *out, size_t len);

#endif
