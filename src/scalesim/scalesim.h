// SCALE-Sim's formats and cycle model (docs/validation.md): its configuration
// (.cfg) and topology (.csv) files read as SCALE-Sim v2 reads them, every
// layer timed by Systole's MXU model (mxu.c) under SCALE-Sim's assumptions,
// its COMPUTE_REPORT.csv written digit for digit, and Systole's own figures
// for the same layers beside them. Owner: scalesim.c (formats and model),
// chiprun.c (a layer compiled and simulated on a chip).
#ifndef SYSTOLE_SCALESIM_H
#define SYSTOLE_SCALESIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/chip.h"
#include "sim/mxu.h"

#define SCALESIM_ERR_LEN 512

// ---------------------------------------------------------------- scalesim.c

// A .cfg file: [general] run_name; [architecture_presets] ArrayHeight,
// ArrayWidth, IfmapSramSzkB, FilterSramSzkB, OfmapSramSzkB, Dataflow,
// Bandwidth, ...; [run_presets] InterfaceBandwidth.
typedef struct {
  char run_name[128];
  int rows, cols;               // ArrayHeight (AR), ArrayWidth (AC)
  int64_t ifmap_kib, filter_kib, ofmap_kib;
  mxu_dataflow dataflow;
  int64_t bandwidth;            // words per cycle, used in USER mode only
  bool user_bandwidth;          // InterfaceBandwidth: USER (else CALC)
} scalesim_config;

// A layer as SCALE-Sim holds it: a convolution (a GEMM row is one too, with
// a 1 x K filter over an M x K input).
typedef struct {
  char name[96];
  int64_t ifmap_h, ifmap_w, filt_h, filt_w, channels, filters, stride_h, stride_w;
} scalesim_layer;

typedef struct {
  scalesim_layer *layers;
  int n;
} scalesim_topology;

// One layer's COMPUTE_REPORT row and how it was mapped.
typedef struct {
  int64_t m, n, k;              // GEMM view: output pixels, filters, window
  int64_t sr, sc, t;            // spatial rows and columns, temporal extent
  int64_t row_folds, col_folds;
  uint64_t total_cycles;        // SCALE-Sim's count: the index of the last busy cycle
  uint64_t stall_cycles;        // 0: no memory stalls (CALC)
  double overall_util, mapping_eff, compute_util; // percent, as SCALE-Sim computes them
  uint64_t preloaded_cycles;    // Systole's MXU model with preloading, same folds (a count)
} scalesim_result;

// Errors name the file, the line and the key or field. Return 0 or -1.
int scalesim_load_config(scalesim_config *c, const char *path, char *err, size_t errlen);
int scalesim_parse_config(scalesim_config *c, const char *text, const char *path, char *err, size_t errlen);
// gemm: rows "Layer, M, N, K," (-i gemm); else conv rows "Layer name, IFMAP
// Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
// Strides," (a 9th column: separate width stride). The first line is a header.
int scalesim_load_topology(scalesim_topology *t, const char *path, bool gemm, char *err, size_t errlen);
int scalesim_parse_topology(scalesim_topology *t, const char *text, const char *path, bool gemm, char *err,
                            size_t errlen);
void scalesim_topology_free(scalesim_topology *t);

// Times a layer: the folds of SCALE-Sim's mapping run through Systole's MXU
// model (mxu_timing) without preloading, as SCALE-Sim assumes, and again with
// preloading. Returns 0, or -1 if the layer is too large to time (err says).
int scalesim_run_layer(const scalesim_config *c, const scalesim_layer *l, scalesim_result *r, char *err,
                       size_t errlen);

// COMPUTE_REPORT.csv as SCALE-Sim writes it: its header, then one line per
// layer ("0, 12865, 0, 13.501840021375825, 14.35546875, 13.238409562914413,").
void scalesim_write_compute_report(FILE *f, const scalesim_result *r, int n);
// A double as Python's repr() prints it: the shortest digits that read back
// to the same value, "100.0", "0.05593623269472801", "1e-05".
char *scalesim_float_repr(double v, char *buf, size_t len);
// (a * b) / (c * d) rounded to the nearest double (ties to even), as Python
// divides two integers; c, d > 0.
double scalesim_ratio(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

// ---------------------------------------------------------------- chiprun.c

// Systole's own figure for one layer: the layer built as a graph (a conv
// without padding, or a matmul; f32 weights, bf16 on the MXU), compiled for
// `chip` with its MXUs replaced by one array of the config's size and
// dataflow (preloading as the chip says), and simulated timing only: memory
// bandwidth, latency and capacity are the chip's.
typedef struct {
  uint64_t cycles;              // the whole program: inputs from HBM to outputs in HBM
  uint64_t mxu_busy;            // cycles the MXU fed rows
  uint64_t hbm_bytes;           // read plus written
  double mxu_utilization;
} scalesim_chip_result;

// The chip the layers run on: `base` with its MXUs replaced by one array of
// the config's size and dataflow (bf16 enabled).
void scalesim_chip_variant(const scalesim_config *c, const chip_config *base, chip_config *out);
int scalesim_chip_run(const chip_config *chip, const scalesim_layer *l, scalesim_chip_result *out, char *err,
                      size_t errlen);

#endif
