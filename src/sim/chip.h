// A chip generation as data: what configs/*.ini describe (docs/chips.md).
// Owner: chip.c (loading with inih, validation, derived figures).
#ifndef SYSTOLE_CHIP_H
#define SYSTOLE_CHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHIP_ERR_LEN 512

typedef enum { DATAFLOW_WS, DATAFLOW_OS, DATAFLOW_IS } chip_dataflow;

typedef struct {
  char name[64];
  char path[512];        // file it was read from
  char description[256];

  // [chip]
  double clock_hz;
  int tensorcores;       // per chip; the simulator runs one of them

  // [mxu] per TensorCore
  int mxu_count;
  int mxu_rows, mxu_cols;     // R x C processing elements
  bool mxu_bf16, mxu_int8;    // operand types the array supports
  int int8_macs_per_pe;       // int8 MACs per PE per cycle (1 or 2)
  int weight_load_cycles;     // cycles to shift a weight tile in (default: rows)
  int weight_fifo_tiles;      // 0: weights come from VMEM only
  chip_dataflow dataflow;
  bool mxu_preload;           // the next fold's operands load while the current one computes

  // [vpu]
  int vpu_lanes, vpu_sublanes;
  int vpu_latency;            // pipeline cycles added to every vector op

  // [vmem], [acc], [smem], [imem]: per TensorCore, bytes
  uint64_t vmem_bytes, acc_bytes, smem_bytes, imem_bytes;
  double vmem_bandwidth;      // bytes/s for DMA to and from VMEM
  char vmem_label[32];        // what the paper calls it ("Unified Buffer", "VMEM")
  bool vmem_activations;      // the compiler keeps intermediate tensors in VMEM (TPU v1's
                              // Unified Buffer), HBM only for what does not fit

  // [hbm]: per chip
  uint64_t hbm_bytes;
  double hbm_bandwidth;       // bytes/s
  int hbm_latency;            // cycles until the first byte of a DMA
  char hbm_kind[32];          // "HBM2", "DDR3", ...

  // [host]: the host link
  double host_bandwidth;      // bytes/s, each direction
  int host_latency;           // cycles
  char host_link[64];         // "PCIe Gen3 x16"

  // [ici]
  int ici_links;
  double ici_link_bandwidth;  // bytes/s, one direction, per link
  int ici_latency;            // cycles
  char ici_topology[32];

  // [dma], [queues]
  int dma_queues;             // DMA engines, each runs its queue in order
  int queue_depth;            // tile instructions a unit queue holds

  // [energy] picojoules
  double pj_mac_bf16, pj_mac_int8;
  double pj_vpu_op;           // per element operation
  double pj_vmem_byte, pj_acc_byte, pj_hbm_byte, pj_host_byte, pj_ici_byte;
  double static_watts;        // leakage and clock tree, charged per second
} chip_config;

// Reads a configuration: NAME is a file path if it contains '/' or ends in
// ".ini", otherwise configs/NAME.ini under the source tree (SYSTOLE_CONFIG_DIR
// overrides). Errors name the file, the line and the key. Returns 0 or -1.
int chip_load(chip_config *c, const char *name, char *err, size_t errlen);
// Same, from text in memory (tests); path is used in messages.
int chip_load_string(chip_config *c, const char *text, const char *path, char *err, size_t errlen);

// Derived figures (per chip unless named per core).
double chip_peak_macs_per_s(const chip_config *c, int dtype /* isa_dtype */);
double chip_peak_ops_per_s(const chip_config *c, int dtype); // 2 ops per MAC; f32: VPU
double chip_ridge_macs_per_byte(const chip_config *c, int dtype); // vs HBM bandwidth

// `systole info` text.
void chip_print_info(const chip_config *c, void *file /* FILE* */);

#endif
