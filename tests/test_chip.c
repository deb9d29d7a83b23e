// Chip configurations: every shipped config loads and gives the published
// figures; every kind of error names the file, the line and the key; no input
// crashes the loader.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isa/isa.h"
#include "sim/chip.h"
#include "testlib.h"

static const char *const shipped[] = {"tiny", "tpu-v1", "tpu-v2", "tpu-v3", "tpu-v4", "tpu-v5e"};

static bool near(double got, double want, double rel) {
  return fabs(got - want) <= rel * fabs(want);
}

static bool load(chip_config *c, const char *name) {
  char err[CHIP_ERR_LEN];
  int rc = chip_load(c, name, err, sizeof err);
  CHECK(rc == 0, "chip_load(%s): %s", name, err);
  return rc == 0;
}

// chip_print_info into a malloc'd string.
static char *info_text(const chip_config *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  chip_print_info(c, f);
  fclose(f);
  return buf;
}

// ---------------------------------------------------------------- shipped configs

static void test_shipped(void) {
  for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
    chip_config c;
    if (!load(&c, shipped[i])) continue;
    CHECK(!strcmp(c.name, shipped[i]), "%s: name '%s'", shipped[i], c.name);
    CHECK(strstr(c.path, shipped[i]) != NULL, "%s: path '%s'", shipped[i], c.path);
    CHECK(c.clock_hz > 0 && c.tensorcores >= 1 && c.mxu_count >= 1, "%s: basics", shipped[i]);
    CHECK(c.mxu_bf16 || c.mxu_int8, "%s: no MXU type", shipped[i]);
    CHECK(c.weight_load_cycles >= 1, "%s: weight_load_cycles %d", shipped[i], c.weight_load_cycles);
    CHECK(c.vmem_bytes && c.acc_bytes && c.smem_bytes && c.imem_bytes && c.hbm_bytes, "%s: sizes", shipped[i]);
    CHECK(c.vmem_bandwidth > 0 && c.hbm_bandwidth > 0 && c.host_bandwidth > 0, "%s: bandwidths", shipped[i]);
    CHECK(c.dma_queues >= 1 && c.dma_queues <= ISA_MAX_UNIT, "%s: dma_queues %d", shipped[i], c.dma_queues);
    CHECK(c.mxu_count <= ISA_MAX_UNIT, "%s: mxu_count %d", shipped[i], c.mxu_count);
    CHECK(c.host_latency > 0 && c.hbm_latency > 0, "%s: latencies", shipped[i]);
    CHECK(c.ici_links == 0 || (c.ici_link_bandwidth > 0 && c.ici_latency > 0), "%s: ici", shipped[i]);
    char *text = info_text(&c);
    CHECK(text && strstr(text, "Ridge point") && strstr(text, "Energy") && strstr(text, c.path),
          "%s: info text", shipped[i]);
    free(text);
  }
}

static void test_v1(void) {
  chip_config c;
  if (!load(&c, "tpu-v1")) return;
  CHECK(c.clock_hz == 700e6, "clock %g", c.clock_hz);
  CHECK(c.mxu_rows == 256 && c.mxu_cols == 256 && c.mxu_count == 1 && c.tensorcores == 1, "MXU");
  CHECK(c.mxu_int8 && !c.mxu_bf16, "int8 only");
  CHECK(c.vmem_bytes == 24ull << 20 && !strcmp(c.vmem_label, "Unified Buffer"), "UB");
  CHECK(c.acc_bytes == 4ull << 20, "acc %llu", (unsigned long long)c.acc_bytes);
  CHECK(c.hbm_bytes == 8ull << 30 && c.hbm_bandwidth == 34e9 && !strcmp(c.hbm_kind, "DDR3"), "DDR3");
  CHECK(c.weight_fifo_tiles == 4 && c.weight_load_cycles == 256, "weight FIFO");
  CHECK(c.ici_links == 0, "no ICI");
  CHECK(c.vpu_lanes == 256 && c.vpu_sublanes == 1, "activation unit");
  CHECK(c.host_latency == 700, "1 us at 700 MHz: %d", c.host_latency);
  CHECK(chip_peak_ops_per_s(&c, DT_I8) == 65536.0 * 700e6 * 2, "peak %g", chip_peak_ops_per_s(&c, DT_I8));
  CHECK(chip_peak_macs_per_s(&c, DT_BF16) == 0, "no bf16");
  CHECK(chip_peak_ops_per_s(&c, DT_F32) == 256.0 * 2 * 700e6, "VPU peak");
  double ridge = chip_ridge_macs_per_byte(&c, DT_I8);
  CHECK(fabs(ridge - 1349) <= 1, "ridge %g", ridge);
  char *text = info_text(&c);
  CHECK(text && strstr(text, "92 TOPS"), "92 TOPS in:\n%s", text ? text : "");
  CHECK(text && strstr(text, "1349"), "1349 in:\n%s", text ? text : "");
  CHECK(text && strstr(text, "Unified Buffer") && strstr(text, "DDR3") && strstr(text, "PCIe Gen3 x16"), "labels");
  free(text);
}

static void test_later(void) {
  chip_config c;
  if (load(&c, "tpu-v2")) {
    CHECK(near(chip_peak_ops_per_s(&c, DT_BF16), 45.9e12, 0.01), "v2 %g", chip_peak_ops_per_s(&c, DT_BF16));
    CHECK(chip_peak_macs_per_s(&c, DT_I8) == 0, "v2 int8");
  }
  if (load(&c, "tpu-v3"))
    CHECK(near(chip_peak_ops_per_s(&c, DT_BF16), 123e12, 0.005), "v3 %g", chip_peak_ops_per_s(&c, DT_BF16));
  if (load(&c, "tpu-v4")) {
    CHECK(near(chip_peak_ops_per_s(&c, DT_BF16), 275e12, 0.005), "v4 %g", chip_peak_ops_per_s(&c, DT_BF16));
    CHECK(near(chip_peak_ops_per_s(&c, DT_I8), 275e12, 0.005), "v4 int8 %g", chip_peak_ops_per_s(&c, DT_I8));
    CHECK(c.tensorcores == 2 && c.mxu_count == 4 && c.ici_links == 6, "v4 shape");
    char *text = info_text(&c);
    CHECK(text && strstr(text, "275 TFLOPS") && strstr(text, "138 TFLOPS"), "v4 text:\n%s", text ? text : "");
    free(text);
  }
  if (load(&c, "tpu-v5e")) {
    CHECK(near(chip_peak_ops_per_s(&c, DT_BF16), 197e12, 0.005), "v5e %g", chip_peak_ops_per_s(&c, DT_BF16));
    CHECK(near(chip_peak_ops_per_s(&c, DT_I8), 393e12, 0.005), "v5e int8 %g", chip_peak_ops_per_s(&c, DT_I8));
    // Scaling book: v5e MXU critical intensity "about 240 FLOPs/byte".
    CHECK(near(2 * chip_ridge_macs_per_byte(&c, DT_BF16), 240, 0.01), "v5e ridge");
  }
  if (load(&c, "tiny")) {
    CHECK(c.mxu_rows == 8 && c.mxu_cols == 8 && c.mxu_bf16 && c.mxu_int8 && c.clock_hz == 1e9, "tiny MXU");
    CHECK(c.vmem_bytes == 256 << 10 && c.acc_bytes == 64 << 10 && c.smem_bytes == 16 << 10, "tiny memories");
    CHECK(c.hbm_bytes == 64 << 20 && c.hbm_bandwidth == 16e9 && c.vpu_lanes == 8 && c.vpu_sublanes == 1, "tiny");
    CHECK(chip_peak_macs_per_s(&c, DT_BF16) == 64e9, "tiny peak");
  }
}

// ---------------------------------------------------------------- the format

// The smallest valid file: the required keys (line numbers matter below).
static const char *const minimal =
    "[chip]\n"               // 1
    "clock_mhz = 1000\n"     // 2
    "tensorcores = 1\n"      // 3
    "[mxu]\n"                // 4
    "count = 1\n"            // 5
    "rows = 4\n"             // 6
    "cols = 4\n"             // 7
    "dtypes = bf16\n"        // 8
    "[vpu]\n"                // 9
    "lanes = 4\n"            // 10
    "sublanes = 1\n"         // 11
    "[vmem]\n"               // 12
    "size = 64 KiB\n"        // 13
    "[acc]\n"                // 14
    "size = 4KiB\n"          // 15
    "[smem]\n"               // 16
    "size = 1024\n"          // 17
    "[hbm]\n"                // 18
    "size = 1 MiB\n"         // 19
    "bandwidth_gbs = 10\n"   // 20
    "[host]\n"               // 21
    "bandwidth_gbs = 1.5\n"; // 22

// minimal with line `line` replaced by repl ("" deletes nothing: replaces with
// an empty line, so other line numbers stay put) and extra appended.
static char *variant(int line, const char *repl, const char *extra) {
  size_t cap = strlen(minimal) + strlen(repl) + strlen(extra) + 4;
  char *out = malloc(cap);
  out[0] = '\0';
  const char *p = minimal;
  for (int n = 1; *p; n++) {
    const char *nl = strchr(p, '\n');
    size_t len = (size_t)(nl - p);
    if (n == line) {
      strcat(out, repl);
    } else {
      strncat(out, p, len);
    }
    strcat(out, "\n");
    p = nl + 1;
  }
  strcat(out, extra);
  return out;
}

// Loads text and checks that it fails with exactly `want` (or, if want ends in
// "...", with that prefix).
static void expect_error(const char *text, const char *want) {
  chip_config c;
  char err[CHIP_ERR_LEN];
  int rc = chip_load_string(&c, text, "t.ini", err, sizeof err);
  size_t n = strlen(want);
  bool prefix = n > 3 && !strcmp(want + n - 3, "...");
  bool ok = rc == -1 && (prefix ? !strncmp(err, want, n - 3) : !strcmp(err, want));
  CHECK(ok, "rc %d\n  got:  %s\n  want: %s", rc, err, want);
}

static void expect_variant_error(int line, const char *repl, const char *extra, const char *want) {
  char *text = variant(line, repl, extra);
  expect_error(text, want);
  free(text);
}

static void test_minimal(void) {
  chip_config c;
  char err[CHIP_ERR_LEN];
  int rc = chip_load_string(&c, minimal, "dir/mini.ini", err, sizeof err);
  CHECK(rc == 0, "minimal: %s", err);
  if (rc) return;
  CHECK(!strcmp(c.name, "mini") && !strcmp(c.path, "dir/mini.ini"), "name from path: %s", c.name);
  CHECK(c.vmem_bytes == 65536 && c.acc_bytes == 4096 && c.smem_bytes == 1024 && c.hbm_bytes == 1 << 20, "sizes");
  CHECK(c.hbm_bandwidth == 10e9 && c.host_bandwidth == 1.5e9, "bandwidths");
  // Defaults.
  CHECK(c.weight_load_cycles == 4, "weight_load_cycles = rows: %d", c.weight_load_cycles);
  CHECK(c.int8_macs_per_pe == 1 && c.weight_fifo_tiles == 0 && c.dataflow == DATAFLOW_WS, "mxu defaults");
  CHECK(c.dma_queues == 4 && c.queue_depth == 16 && c.vpu_latency == 2 && c.hbm_latency == 64, "defaults");
  CHECK(c.host_latency == 1000 && c.ici_links == 0 && !strcmp(c.ici_topology, "none"), "host/ici defaults");
  CHECK(c.imem_bytes == 256 << 10 && !strcmp(c.vmem_label, "VMEM") && c.vmem_bandwidth == 220e9, "vmem defaults");
  CHECK(c.pj_mac_bf16 > 0 && c.pj_hbm_byte > 0, "energy defaults");
  CHECK(!c.mxu_int8 && c.mxu_bf16, "dtypes");
}

static void test_values(void) {
  chip_config c;
  char err[CHIP_ERR_LEN];
  // Sizes with and without a space, binary and decimal units.
  static const struct { const char *text; uint64_t bytes; } sizes[] = {
    {"16 MiB", 16ull << 20}, {"16MiB", 16ull << 20}, {"16 MB", 16000000}, {"2 GiB", 2ull << 30},
    {"3 GB", 3000000000ull}, {"5 KB", 5000}, {"5 kB", 5000}, {"7 KiB", 7 << 10}, {"123", 123}, {"99 B", 99},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char line[64];
    snprintf(line, sizeof line, "size = %s", sizes[i].text);
    char *text = variant(13, line, "");
    int rc = chip_load_string(&c, text, "t.ini", err, sizeof err);
    CHECK(rc == 0 && c.vmem_bytes == sizes[i].bytes, "%s: %s", sizes[i].text, err);
    free(text);
  }
  // Every optional key; latencies in ns are converted at the clock (1 GHz
  // here); a section may be reopened.
  char *text = variant(8, "dtypes = int8, bf16",
                 "[mxu]\nint8_macs_per_pe = 2\nweight_load_cycles = 9\nweight_fifo_tiles = 3\ndataflow = os\n"
                 "[ici]\nlinks = 2\nlink_bandwidth_gbs = 25\ntopology = 3d torus\nlatency_ns = 2.5\n"
                 "[hbm]\nlatency_ns = 100\nkind = HBM3\n[host]\nlatency_cycles = 77\nlink = test\n"
                 "[dma]\nqueues = 8\n[queues]\ndepth = 2\n[vpu]\nlatency_cycles = 0\n"
                 "[energy]\npj_mac_int8 = 0\nstatic_watts = 1e2\n[imem]\nsize = 8 KiB\n"
                 "[vmem]\nlabel = Unified Buffer\nbandwidth_gbs = 5\n");
  int rc = chip_load_string(&c, text, "t.ini", err, sizeof err);
  CHECK(rc == 0, "all keys: %s", err);
  if (rc == 0) {
    CHECK(c.mxu_int8 && c.mxu_bf16 && c.int8_macs_per_pe == 2 && c.weight_load_cycles == 9, "mxu");
    CHECK(c.weight_fifo_tiles == 3 && c.dataflow == DATAFLOW_OS, "mxu 2");
    CHECK(c.ici_links == 2 && c.ici_link_bandwidth == 25e9 && !strcmp(c.ici_topology, "3D torus"), "ici");
    CHECK(c.ici_latency == 3, "2.5 ns at 1 GHz rounds up: %d", c.ici_latency);
    CHECK(c.hbm_latency == 100 && !strcmp(c.hbm_kind, "HBM3"), "hbm");
    CHECK(c.host_latency == 77 && !strcmp(c.host_link, "test"), "host");
    CHECK(c.dma_queues == 8 && c.queue_depth == 2 && c.vpu_latency == 0, "queues");
    CHECK(c.pj_mac_int8 == 0 && c.static_watts == 100 && c.imem_bytes == 8192, "energy");
    CHECK(!strcmp(c.vmem_label, "Unified Buffer") && c.vmem_bandwidth == 5e9, "vmem");
    CHECK(chip_peak_macs_per_s(&c, DT_I8) == 2 * chip_peak_macs_per_s(&c, DT_BF16), "int8 2x");
  }
  free(text);
  // Indented lines, CRLF, a BOM, comments of any length, inline comments.
  char longc[600];
  memset(longc, '-', sizeof longc);
  longc[0] = ';';
  longc[sizeof longc - 1] = '\0';
  size_t cap = strlen(minimal) * 2 + sizeof longc + 64;
  char *crlf = malloc(cap);
  strcpy(crlf, "\xEF\xBB\xBF; comment\r\n");
  strcat(crlf, longc);
  strcat(crlf, "\r\n");
  for (const char *p = minimal; *p; p++) {
    size_t n = strlen(crlf);
    if (*p == '\n') {
      crlf[n++] = '\r';
      crlf[n++] = '\n';
      crlf[n] = '\0';
      strcat(crlf, "   ");
    } else {
      crlf[n] = *p;
      crlf[n + 1] = '\0';
    }
  }
  strcat(crlf, "\t[chip]   ; inline\r\n  description = a; b  ; c\r\n");
  rc = chip_load_string(&c, crlf, "t.ini", err, sizeof err);
  CHECK(rc == 0, "CRLF, indent, BOM: %s", err);
  CHECK(rc || (c.hbm_bandwidth == 10e9 && !strcmp(c.description, "a; b")), "values: '%s'", c.description);
  free(crlf);
}

static void test_errors(void) {
  // Unknown key, with its line and the keys that exist.
  expect_variant_error(0, "", "[mxu]\ncolz = 4\n",
                       "t.ini:24: [mxu] colz: unknown key (known in [mxu]: count, rows, cols, dtypes, "
                       "int8_macs_per_pe, weight_load_cycles, weight_fifo_tiles, dataflow, preload)");
  expect_variant_error(2, "clock_mhz = fast", "", "t.ini:2: [chip] clock_mhz: bad number 'fast'");
  expect_variant_error(2, "clock_mhz = 0x10", "", "t.ini:2: [chip] clock_mhz: bad number '0x10'");
  expect_variant_error(2, "clock_mhz = nan", "", "t.ini:2: [chip] clock_mhz: bad number 'nan'");
  expect_variant_error(2, "clock_mhz = -700", "", "t.ini:2: [chip] clock_mhz: -700: must be positive");
  expect_variant_error(2, "clock_mhz =", "", "t.ini:2: [chip] clock_mhz: bad number ''");
  expect_variant_error(2, "clock_mhz = 700 # MHz", "",
                       "t.ini:2: [chip] clock_mhz: bad number '700 # MHz' (comments after a value start with ';', "
                       "not '#')");
  expect_variant_error(6, "rows = 4.5", "", "t.ini:6: [mxu] rows: bad number '4.5' (expected a whole number)");
  expect_variant_error(6, "rows = 0", "", "t.ini:6: [mxu] rows: 0: must be at least 1");
  expect_variant_error(6, "rows = 99999999999999999999", "", "t.ini:6: [mxu] rows: bad number...");
  expect_variant_error(5, "count = 9", "", "t.ini:5: [mxu] count: 9: must be at most 8");
  expect_variant_error(0, "", "[bogus]\nx = 1\n",
                       "t.ini:23: [bogus]: unknown section (known: chip, mxu, vpu, vmem, acc, smem, imem, hbm, "
                       "host, ici, dma, queues, energy)");
  expect_variant_error(0, "", "[empty]\n", "t.ini:23: [empty]: unknown section...");
  expect_variant_error(6, "", "", "t.ini: [mxu] rows: missing");
  expect_variant_error(20, "", "", "t.ini: [hbm] bandwidth_gbs: missing");
  expect_variant_error(13, "size = 16 QiB", "",
                       "t.ini:13: [vmem] size: bad size '16 QiB': unknown unit 'QiB' (use B, KiB, MiB, GiB, KB, "
                       "MB, GB)");
  expect_variant_error(13, "size = 16 mib", "", "t.ini:13: [vmem] size: bad size '16 mib': unknown unit 'mib'...");
  expect_variant_error(13, "size = 1.5 GiB", "", "t.ini:13: [vmem] size: bad size '1.5 GiB': the number must be whole...");
  expect_variant_error(13, "size = -1 MiB", "", "t.ini:13: [vmem] size: bad size '-1 MiB': must be positive");
  expect_variant_error(13, "size = 0", "", "t.ini:13: [vmem] size: bad size '0': must be positive");
  expect_variant_error(13, "size = MiB", "", "t.ini:13: [vmem] size: bad size 'MiB': expected a whole number...");
  expect_variant_error(13, "size = 99999999999 GiB", "", "t.ini:13: [vmem] size: bad size '99999999999 GiB': too large...");
  expect_variant_error(0, "", "[mxu]\nrows = 8\n", "t.ini:24: [mxu] rows: duplicate key (first given on line 6)");
  expect_variant_error(8, "dtypes = bf16, fp8", "", "t.ini:8: [mxu] dtypes: unknown type 'fp8' (expected bf16, int8)");
  expect_variant_error(8, "dtypes = bf16,", "", "t.ini:8: [mxu] dtypes: empty entry...");
  expect_variant_error(8, "dtypes = int8, int8", "", "t.ini:8: [mxu] dtypes: 'int8' listed twice");
  expect_variant_error(0, "", "[mxu]\nint8_macs_per_pe = 3\n", "t.ini:24: [mxu] int8_macs_per_pe: 3: must be 1 or 2");
  expect_variant_error(0, "", "[mxu]\nint8_macs_per_pe = 2\n",
                       "t.ini:24: [mxu] int8_macs_per_pe: given but [mxu] dtypes lacks int8");
  expect_variant_error(0, "", "[mxu]\ndataflow = xs\n", "t.ini:24: [mxu] dataflow: unknown dataflow 'xs' (expected ws, os or is)");
  expect_variant_error(0, "", "[mxu]\nweight_load_cycles = 0\n", "t.ini:24: [mxu] weight_load_cycles: 0: must be at least 1");
  expect_variant_error(0, "", "[ici]\nlinks = 4\n", "t.ini: [ici] link_bandwidth_gbs: missing (needed when links > 0)");
  expect_variant_error(0, "", "[ici]\nlinks = 4\nlink_bandwidth_gbs = 1\n", "t.ini: [ici] topology: missing (needed when links > 0)");
  expect_variant_error(0, "", "[ici]\nlink_bandwidth_gbs = 1\n", "t.ini:24: [ici] link_bandwidth_gbs: given but links = 0");
  expect_variant_error(0, "", "[ici]\ntopology = hypercube\n", "t.ini:24: [ici] topology: unknown topology 'hypercube'...");
  expect_variant_error(0, "", "[host]\nlatency_ns = 5\nlatency_cycles = 5\n",
                       "t.ini:25: [host] latency_cycles: conflicts with latency_ns on line 24 (give one of them)");
  expect_variant_error(15, "size = 8", "", "t.ini:15: [acc] size: 8 bytes cannot hold one MXU output row (cols x 4 bytes = 16 bytes)");
  expect_variant_error(1, "clock_mhz = 5", "", "t.ini:1: clock_mhz: outside any section (put it under [chip], [mxu], ...)");
  expect_variant_error(0, "", "[chip\n", "t.ini:23: expected ']' to close the section name");
  expect_variant_error(0, "", "[chip] junk\n", "t.ini:23: unexpected text after ']'");
  expect_variant_error(0, "", "just words\n", "t.ini:23: expected 'key = value' or '[section]'");
  expect_variant_error(0, "", "[chip]\n= 5\n", "t.ini:24: [chip]: missing key name before '='");
  expect_variant_error(0, "", "[chip]\nx ;= 5\n", "t.ini:24: syntax error (expected '[section]' or 'key = value')");
  char longline[400] = "[chip]\ndescription = ";
  memset(longline + strlen(longline), 'x', 250);
  strcat(longline, "\n");
  expect_variant_error(0, "", longline, "t.ini:24: line too long (at most ...");
  expect_variant_error(0, "", "[chip]\nname = 0123456789012345678901234567890123456789012345678901234567890123456789\n",
                       "t.ini:24: [chip] name: too long (at most 63 characters)");
  // The first error in the file wins, whichever part of the loader finds it.
  expect_variant_error(0, "", "garbage\n[mxu]\nfoo = 1\n", "t.ini:23: expected 'key = value' or '[section]'");
  expect_variant_error(0, "", "[mxu]\nfoo = 1\ngarbage\n", "t.ini:24: [mxu] foo: unknown key...");
  expect_variant_error(0, "", "[mxu]\nfoo = 1\nx ;= 5\n", "t.ini:24: [mxu] foo: unknown key...");
  expect_variant_error(0, "", "[mxu]\nx ;= 5\nfoo = 1\n", "t.ini:24: syntax error...");
  // A failed load leaves no half-read config behind.
  chip_config c;
  memset(&c, 0xab, sizeof c);
  char err[CHIP_ERR_LEN];
  CHECK(chip_load_string(&c, "[chip]\nclock_mhz = 5\n", "t.ini", err, sizeof err) == -1 && c.clock_hz == 0,
        "cleared");
  CHECK(chip_load_string(&c, "", "t.ini", err, sizeof err) == -1 && !strcmp(err, "t.ini: [chip] clock_mhz: missing"),
        "empty: %s", err);
  CHECK(chip_load_string(&c, minimal, "t.ini", NULL, 0) == 0, "NULL err");
  CHECK(chip_load_string(&c, "x", "t.ini", NULL, 0) == -1, "NULL err, failing");
  char tiny_err[8];
  CHECK(chip_load_string(&c, "x", "t.ini", tiny_err, sizeof tiny_err) == -1 && strlen(tiny_err) == 7, "short err");
}

// ---------------------------------------------------------------- files

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL, "cannot write %s", path);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void test_files(void) {
  char err[CHIP_ERR_LEN];
  chip_config c;
  // Unknown chip names list what is there.
  int rc = chip_load(&c, "tpu-v9", err, sizeof err);
  CHECK(rc == -1 && strstr(err, "unknown chip 'tpu-v9': no ") && strstr(err, "configs/tpu-v9.ini (available: tiny, "),
        "%s", err);
  for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++)
    CHECK(strstr(err, shipped[i]) != NULL, "%s not listed in: %s", shipped[i], err);
  rc = chip_load(&c, "", err, sizeof err);
  CHECK(rc == -1 && !strcmp(err, "no chip name given"), "%s", err);
  rc = chip_load(&c, "configs/tpu-v4.ini", err, sizeof err);
  CHECK(rc == 0 && !strcmp(c.path, "configs/tpu-v4.ini") && !strcmp(c.name, "tpu-v4"), "by path: %s", err);
  rc = chip_load(&c, "nowhere/x.ini", err, sizeof err);
  CHECK(rc == -1 && !strcmp(err, "nowhere/x.ini: cannot open: No such file or directory"), "%s", err);
  rc = chip_load(&c, "configs/", err, sizeof err);
  CHECK(rc == -1 && strstr(err, "configs/: cannot read"), "directory: %s", err);

  // SYSTOLE_CONFIG_DIR overrides the directory; errors in files name them.
  char dir[] = "/tmp/systole_chip_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp");
    return;
  }
  char p1[256], p2[256], p3[256];
  snprintf(p1, sizeof p1, "%s/mine.ini", dir);
  snprintf(p2, sizeof p2, "%s/broken.ini", dir);
  snprintf(p3, sizeof p3, "%s/nul.ini", dir);
  write_file(p1, minimal);
  char *bad = variant(0, "", "\n[mxu]\nrows = 3\n");
  write_file(p2, bad);
  free(bad);
  FILE *f = fopen(p3, "wb");
  if (f) {
    fwrite("[chip]\0x", 1, 8, f);
    fclose(f);
  }
  setenv("SYSTOLE_CONFIG_DIR", dir, 1);
  rc = chip_load(&c, "mine", err, sizeof err);
  CHECK(rc == 0 && !strcmp(c.name, "mine") && !strcmp(c.path, p1), "SYSTOLE_CONFIG_DIR: %s", err);
  rc = chip_load(&c, "broken", err, sizeof err);
  char want[CHIP_ERR_LEN];
  snprintf(want, sizeof want, "%s:25: [mxu] rows: duplicate key (first given on line 6)", p2);
  CHECK(rc == -1 && !strcmp(err, want), "got %s\nwant %s", err, want);
  rc = chip_load(&c, "nul", err, sizeof err);
  CHECK(rc == -1 && strstr(err, "contains a NUL byte"), "%s", err);
  rc = chip_load(&c, "tpu-v1", err, sizeof err);
  CHECK(rc == -1 && strstr(err, "available: broken, mine, nul"), "%s", err);
  unsetenv("SYSTOLE_CONFIG_DIR");
  unlink(p1);
  unlink(p2);
  unlink(p3);
  rmdir(dir);
}

// ---------------------------------------------------------------- fuzz

static void test_fuzz(void) {
  test_seed(20240601);
  static const char alphabet[] = "[]=;:# \t\n\r-.,0123456789abcdefgimnrstuwxyzBGKMi_";
  char *v4 = test_read_file("configs/tpu-v4.ini", NULL);
  CHECK(v4 != NULL, "read tpu-v4.ini");
  size_t v4len = v4 ? strlen(v4) : 0;
  char *buf = malloc(v4len + 4096);
  int ok = 0;
  for (int iter = 0; iter < 3000; iter++) {
    size_t n;
    if (iter % 3 == 0 || !v4) {
      // Garbage from characters that mean something to the parser, and raw bytes.
      n = test_rand() % 1500;
      for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rand();
        buf[i] = r % 8 ? alphabet[(r >> 8) % (sizeof alphabet - 1)] : (char)(1 + (r >> 8) % 255);
      }
    } else {
      // A real config with a few bytes changed, inserted or deleted.
      memcpy(buf, v4, v4len);
      n = v4len;
      int edits = 1 + (int)(test_rand() % 4);
      for (int e = 0; e < edits && n > 0; e++) {
        size_t at = test_rand() % n;
        uint64_t r = test_rand();
        char ch = alphabet[(r >> 8) % (sizeof alphabet - 1)];
        if (r % 3 == 0) {
          buf[at] = ch;
        } else if (r % 3 == 1) {
          memmove(buf + at + 1, buf + at, n - at);
          buf[at] = ch;
          n++;
        } else {
          memmove(buf + at, buf + at + 1, n - at - 1);
          n--;
        }
      }
    }
    buf[n] = '\0';
    chip_config c;
    char err[CHIP_ERR_LEN];
    err[0] = 'X';
    int rc = chip_load_string(&c, buf, "fuzz.ini", err, sizeof err);
    CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc == 0) {
      ok++;
      CHECK(err[0] == '\0', "success leaves err empty");
      CHECK(c.clock_hz > 0 && c.mxu_rows > 0 && c.weight_load_cycles > 0 && c.hbm_bandwidth > 0, "valid config");
      char *text = info_text(&c);
      free(text);
      (void)chip_ridge_macs_per_byte(&c, DT_I8);
    } else {
      CHECK(!strncmp(err, "fuzz.ini", 8) && strlen(err) < sizeof err, "error names the file: %s", err);
    }
  }
  CHECK(ok > 0, "some mutated configs still load");
  free(buf);
  free(v4);
}

int main(void) {
  test_shipped();
  test_v1();
  test_later();
  test_minimal();
  test_values();
  test_errors();
  test_files();
  test_fuzz();
  return test_done("test_chip");
}
