// systole: the command-line tool. A thin layer over the library: each
// subcommand parses its options and calls into src/.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ir/ir.h"
#include "isa/isa.h"
#include "runtime/npy.h"
#include "runtime/systole.h"
#include "scalesim/scalesim.h"
#include "sim/chip.h"
#include "sim/sim.h"

#define SYSTOLE_VERSION "0.1.0"
#define MAX_LIST 64

static const char *prog = "systole";

static int usage_error(const char *cmd, const char *fmt, const char *arg) {
  fprintf(stderr, "%s %s: ", prog, cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry '%s %s --help'.\n", prog, cmd);
  return 2;
}

static void print_main_help(FILE *out) {
  fprintf(out,
          "usage: systole COMMAND [OPTIONS]\n\n"
          "Systole: an open TPU platform. Commands:\n"
          "  info    --chip NAME            peak throughput, bandwidths, capacities, ridge point\n"
          "  asm     FILE.s -o FILE.bin     assemble a program (docs/isa.md)\n"
          "  disasm  FILE.bin [-o FILE.s]   print a program as assembler source\n"
          "  sim     FILE.bin|FILE.s --chip NAME\n"
          "                                 run a program on the simulated chip\n"
          "  import  MODEL.onnx             read an ONNX model and print its graph IR (docs/ir.md)\n"
          "  compile MODEL.onnx -o MODEL.stx [--chip NAME]\n"
          "                                 compile a model into an executable (docs/runtime.md)\n"
          "  run     MODEL.onnx|MODEL.stx [--chip NAME] [--input NAME=FILE.npy]...\n"
          "                                 run a model on the simulated chip: outputs and performance\n"
          "  scalesim -c CONFIG.cfg -t TOPOLOGY.csv -o DIR\n"
          "                                 SCALE-Sim's reports for a network, and Systole's figures beside them\n\n"
          "Chips are configs/NAME.ini (tpu-v1, tpu-v2, tpu-v3, tpu-v4, tpu-v5e, tiny) or a path.\n"
          "'systole COMMAND --help' describes a command's options.\n");
}

static bool is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

// Options shared by the commands: --opt VALUE or --opt=VALUE.
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n)) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n]) return NULL;
  if (*i + 1 >= argc) return "";
  return argv[++*i];
}

// ---------------------------------------------------------------- info

static int cmd_info(int argc, char **argv) {
  const char *chip = NULL;
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (is_help(argv[i])) {
      printf("usage: systole info --chip NAME\n\nPrints a chip's peak operations per second for each data type,\n"
             "every bandwidth and capacity, and its ridge point (MACs and FLOPs per HBM byte).\n"
             "NAME is a file under configs/ without .ini, or a path to a configuration.\n");
      return 0;
    } else if ((v = opt_value(argc, argv, &i, "--chip"))) chip = v;
    else if (argv[i][0] != '-' && !chip) chip = argv[i];
    else return usage_error("info", "unknown option '%s'", argv[i]);
  }
  if (!chip || !*chip) return usage_error("info", "%s", "missing --chip NAME");
  chip_config c;
  char err[CHIP_ERR_LEN];
  if (chip_load(&c, chip, err, sizeof err)) {
    fprintf(stderr, "systole info: %s\n", err);
    return 1;
  }
  chip_print_info(&c, stdout);
  return 0;
}

// ---------------------------------------------------------------- asm / disasm

static int cmd_asm(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *defines[MAX_LIST + 1] = {0};
  int ndef = 0;
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (is_help(argv[i])) {
      printf("usage: systole asm FILE.s -o FILE.bin [-D NAME=VALUE]...\n\n"
             "Assembles FILE.s (syntax in docs/isa.md) into a program file (ELF, machine 0x5359).\n"
             "-D defines a symbol, overriding an .equ of the same name.\n");
      return 0;
    } else if ((v = opt_value(argc, argv, &i, "-o"))) out = v;
    else if (!strncmp(argv[i], "-D", 2)) {
      const char *d = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : "");
      if (ndef == MAX_LIST) return usage_error("asm", "%s", "too many -D options");
      defines[ndef++] = d;
    } else if (argv[i][0] != '-' && !in) in = argv[i];
    else return usage_error("asm", "unexpected argument '%s'", argv[i]);
  }
  if (!in) return usage_error("asm", "%s", "missing input FILE.s");
  if (!out || !*out) return usage_error("asm", "%s", "missing -o FILE.bin");
  isa_program p = {0};
  char err[ISA_ERR_LEN];
  if (isa_assemble_file(in, defines, &p, err, sizeof err) || isa_program_write(&p, out, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    isa_program_free(&p);
    return 1;
  }
  isa_program_free(&p);
  return 0;
}

static int cmd_disasm(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (is_help(argv[i])) {
      printf("usage: systole disasm FILE.bin [-o FILE.s]\n\n"
             "Prints the program as assembler source; 'systole asm' turns it back into the same bytes.\n");
      return 0;
    } else if ((v = opt_value(argc, argv, &i, "-o"))) out = v;
    else if (argv[i][0] != '-' && !in) in = argv[i];
    else return usage_error("disasm", "unexpected argument '%s'", argv[i]);
  }
  if (!in) return usage_error("disasm", "%s", "missing input FILE.bin");
  isa_program p = {0};
  char err[ISA_ERR_LEN];
  if (isa_program_read(&p, in, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  char *text = isa_disasm_program(&p);
  isa_program_free(&p);
  if (!text) {
    fprintf(stderr, "systole disasm: out of memory\n");
    return 1;
  }
  FILE *f = out ? fopen(out, "w") : stdout;
  if (!f) {
    fprintf(stderr, "systole disasm: %s: %s\n", out, strerror(errno));
    free(text);
    return 1;
  }
  fputs(text, f);
  free(text);
  if (out && fclose(f)) {
    fprintf(stderr, "systole disasm: %s: write failed\n", out);
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------- sim

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

// "hbm:0x1000" -> memory and address; returns the rest after the address.
static const char *parse_place(const char *spec, sim_mem *mem, uint64_t *addr) {
  static const struct { const char *name; sim_mem mem; } names[] = {
      {"host", MEM_HOST}, {"hbm", MEM_HBM}, {"local", MEM_LOCAL}, {"vmem", MEM_LOCAL}, {"smem", MEM_SMEM}};
  const char *colon = strchr(spec, ':');
  if (!colon) return NULL;
  size_t n = (size_t)(colon - spec);
  bool found = false;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen(names[i].name) == n && !strncmp(spec, names[i].name, n)) *mem = names[i].mem, found = true;
  if (!found) return NULL;
  char *end;
  errno = 0;
  *addr = strtoull(colon + 1, &end, 0);
  if (errno || end == colon + 1) return NULL;
  return end;
}

static int load_file_into(sim *s, const char *spec, char *err, size_t errlen) {
  sim_mem mem;
  uint64_t addr;
  const char *rest = parse_place(spec, &mem, &addr);
  if (!rest || *rest != '=' || !rest[1]) {
    snprintf(err, errlen, "--load %s: expected MEM:ADDR=FILE with MEM one of host, hbm, local, smem", spec);
    return -1;
  }
  FILE *f = fopen(rest + 1, "rb");
  if (!f) {
    snprintf(err, errlen, "--load: %s: %s", rest + 1, strerror(errno));
    return -1;
  }
  char buf[1 << 16], why[600];
  size_t n;
  int rc = 0;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0 && !rc) {
    if (sim_write(s, mem, addr, buf, n, why, sizeof why)) {
      snprintf(err, errlen, "--load %s: %s", spec, why);
      rc = -1;
    }
    addr += n;
  }
  fclose(f);
  return rc;
}

static int dump_into_file(sim *s, const char *spec, char *err, size_t errlen) {
  sim_mem mem;
  uint64_t addr, len;
  const char *rest = parse_place(spec, &mem, &addr);
  char *end;
  if (!rest || *rest != ':' || (len = strtoull(rest + 1, &end, 0), end == rest + 1) || *end != '=' || !end[1]) {
    snprintf(err, errlen, "--dump %s: expected MEM:ADDR:LENGTH=FILE", spec);
    return -1;
  }
  FILE *f = fopen(end + 1, "wb");
  if (!f) {
    snprintf(err, errlen, "--dump: %s: %s", end + 1, strerror(errno));
    return -1;
  }
  char buf[1 << 16], why[600];
  int rc = 0;
  while (len && !rc) {
    size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
    if (sim_read(s, mem, addr, buf, n, why, sizeof why)) {
      snprintf(err, errlen, "--dump %s: %s", spec, why);
      rc = -1;
    } else if (fwrite(buf, 1, n, f) != n) {
      snprintf(err, errlen, "--dump: %s: write failed", end + 1);
      rc = -1;
    }
    addr += n, len -= n;
  }
  if (fclose(f) && !rc) {
    snprintf(err, errlen, "--dump: %s: write failed", end + 1);
    rc = -1;
  }
  return rc;
}

static void sim_help(void) {
  printf("usage: systole sim PROGRAM --chip NAME [options]\n\n"
         "Runs PROGRAM (a .bin from 'systole asm', or .s source assembled on the fly) on one\n"
         "TensorCore of the chip, computing exact values and counting cycles, then prints\n"
         "cycles, time at the clock, per-unit busy and stall cycles, bytes per memory level,\n"
         "MACs, MXU utilisation and energy.\n\n"
         "options:\n"
         "  --chip NAME            chip configuration (configs/NAME.ini or a path); required\n"
         "  --json FILE            write the statistics as JSON\n"
         "  --trace FILE           write a Chrome trace-event timeline (open in ui.perfetto.dev)\n"
         "  --load MEM:ADDR=FILE   copy FILE's bytes into memory before the run\n"
         "  --dump MEM:ADDR:LEN=FILE  write LEN bytes of memory to FILE after the run\n"
         "                         MEM is host, hbm, local (VMEM at 0, accumulators at 0x100000000)\n"
         "                         or smem; may repeat\n"
         "  --max-cycles N         trap if the run goes beyond N cycles (default 1e11)\n"
         "  --timing-only          count cycles without computing values\n"
         "  -D NAME=VALUE          symbol for a .s program\n"
         "  -q, --quiet            no statistics on stdout\n");
}

static int cmd_sim(int argc, char **argv) {
  const char *in = NULL, *chip = NULL, *json = NULL, *trace = NULL;
  const char *loads[MAX_LIST], *dumps[MAX_LIST], *defines[MAX_LIST + 1] = {0};
  int nload = 0, ndump = 0, ndef = 0;
  bool quiet = false;
  sim_options opt = {0};
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (is_help(argv[i])) return sim_help(), 0;
    else if ((v = opt_value(argc, argv, &i, "--chip"))) chip = v;
    else if ((v = opt_value(argc, argv, &i, "--json"))) json = v;
    else if ((v = opt_value(argc, argv, &i, "--trace"))) trace = v;
    else if ((v = opt_value(argc, argv, &i, "--load"))) {
      if (nload == MAX_LIST) return usage_error("sim", "%s", "too many --load options");
      loads[nload++] = v;
    } else if ((v = opt_value(argc, argv, &i, "--dump"))) {
      if (ndump == MAX_LIST) return usage_error("sim", "%s", "too many --dump options");
      dumps[ndump++] = v;
    } else if ((v = opt_value(argc, argv, &i, "--max-cycles"))) {
      char *end;
      errno = 0;
      double d = strtod(v, &end);
      if (errno || *end || end == v || d < 1 || d > 1.8e19) return usage_error("sim", "bad --max-cycles '%s'", v);
      opt.max_cycles = (uint64_t)d;
    } else if (!strcmp(argv[i], "--timing-only")) opt.timing_only = true;
    else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = true;
    else if (!strncmp(argv[i], "-D", 2)) {
      if (ndef == MAX_LIST) return usage_error("sim", "%s", "too many -D options");
      defines[ndef++] = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : "");
    } else if (argv[i][0] != '-' && !in) in = argv[i];
    else return usage_error("sim", "unexpected argument '%s'", argv[i]);
  }
  if (!in) return usage_error("sim", "%s", "missing PROGRAM");
  if (!chip || !*chip) return usage_error("sim", "%s", "missing --chip NAME");
  opt.trace = trace != NULL;

  char err[SIM_ERR_LEN];
  chip_config c;
  if (chip_load(&c, chip, err, sizeof err)) {
    fprintf(stderr, "systole sim: %s\n", err);
    return 1;
  }
  isa_program p = {0};
  int rc = ends_with(in, ".s") ? isa_assemble_file(in, defines, &p, err, sizeof err)
                               : isa_program_read(&p, in, err, sizeof err);
  if (rc) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  sim *s = sim_create(&c, &opt, err, sizeof err);
  rc = !s || sim_load(s, &p, err, sizeof err);
  isa_program_free(&p);
  for (int i = 0; i < nload && !rc; i++) rc = load_file_into(s, loads[i], err, sizeof err) != 0;
  if (rc) {
    fprintf(stderr, "systole sim: %s\n", err);
    sim_destroy(s);
    return 1;
  }
  int trapped = sim_run(s, err, sizeof err);
  if (trapped) fprintf(stderr, "systole sim: %s\n", err);
  else {
    if (!quiet) sim_print_stats(s, stdout);
    for (int i = 0; i < ndump && !rc; i++) rc = dump_into_file(s, dumps[i], err, sizeof err) != 0;
    if (!rc && json) rc = sim_write_json(s, json, err, sizeof err) != 0;
    if (rc) fprintf(stderr, "systole sim: %s\n", err);
  }
  // A trace of a trapped run still shows how the program got there.
  if (trace && sim_write_trace(s, trace, err, sizeof err)) {
    fprintf(stderr, "systole sim: %s\n", err);
    rc = 1;
  }
  sim_destroy(s);
  return trapped || rc ? 1 : 0;
}

// ---------------------------------------------------------------- import

static int cmd_import(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  ir_input_shape shapes[MAX_LIST];
  int nshape = 0;
  char err[1024];
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (is_help(argv[i])) {
      printf("usage: systole import MODEL.onnx [--input-shape NAME=D0,D1,...]... [-o FILE]\n\n"
             "Reads an ONNX model (opsets 7 to 21), infers every shape, folds shape arithmetic,\n"
             "verifies the graph and prints its IR (the format is in docs/ir.md). A graph input\n"
             "with symbolic dimensions needs --input-shape, except a batch dimension, which\n"
             "defaults to 1. This is what `systole compile` starts from.\n");
      return 0;
    } else if ((v = opt_value(argc, argv, &i, "-o"))) out = v;
    else if ((v = opt_value(argc, argv, &i, "--input-shape"))) {
      if (nshape == MAX_LIST) return usage_error("import", "%s", "too many --input-shape options");
      if (ir_parse_input_shape(v, &shapes[nshape++], err, sizeof err)) return usage_error("import", "%s", err);
    } else if (argv[i][0] != '-' && !in) in = argv[i];
    else return usage_error("import", "unexpected argument '%s'", argv[i]);
  }
  if (!in) return usage_error("import", "%s", "missing MODEL.onnx");
  ir_graph *g = onnx_import(in, shapes, nshape, err, sizeof err);
  if (!g) {
    fprintf(stderr, "systole import: %s\n", err);
    return 1;
  }
  FILE *f = out ? fopen(out, "w") : stdout;
  if (!f) {
    fprintf(stderr, "systole import: %s: %s\n", out, strerror(errno));
    ir_graph_free(g);
    return 1;
  }
  ir_print(g, f);
  ir_graph_free(g);
  if (out && fclose(f)) {
    fprintf(stderr, "systole import: %s: write failed\n", out);
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------- compile / run
//
// Both are thin layers over the public API (src/runtime/systole.h).

static int parse_precision(const char *v) {
  return !strcmp(v, "default") ? SY_PRECISION_DEFAULT : !strcmp(v, "highest") ? SY_PRECISION_HIGHEST : -1;
}

// Options compile and run share; returns 1 if argv[*i] was one of them, 0 if
// not, 2 after a usage error (printed).
typedef struct {
  const char *chip;
  sy_compile_options co;
  const char *shapes[MAX_LIST];
  bool dump_ir, dump_asm;
} model_opts;

static int model_option(const char *cmd, int argc, char **argv, int *i, model_opts *m) {
  const char *v;
  char err[IR_ERR_LEN];
  ir_input_shape shape;
  if ((v = opt_value(argc, argv, i, "--chip"))) m->chip = v;
  else if ((v = opt_value(argc, argv, i, "--precision"))) {
    int p = parse_precision(v);
    if (p < 0) return usage_error(cmd, "--precision '%s': expected default or highest", v);
    m->co.precision = (sy_precision)p;
  } else if ((v = opt_value(argc, argv, i, "--input-shape"))) {
    if (m->co.ninput_shapes == MAX_LIST) return usage_error(cmd, "%s", "too many --input-shape options");
    if (ir_parse_input_shape(v, &shape, err, sizeof err)) return usage_error(cmd, "%s", err);
    m->shapes[m->co.ninput_shapes++] = v;
  } else if ((v = opt_value(argc, argv, i, "--quantize"))) {
    if (strcmp(v, "int8")) return usage_error(cmd, "--quantize '%s': expected int8", v);
    m->co.quantize = SY_QUANTIZE_INT8;
  } else if ((v = opt_value(argc, argv, i, "--calibrate"))) {
    if (!*v) return usage_error(cmd, "%s", "--calibrate needs a DIR");
    m->co.calibrate_dir = v;
  } else if (!strcmp(argv[*i], "--dump-ir")) m->dump_ir = true;
  else if (!strcmp(argv[*i], "--dump-asm")) m->dump_asm = true;
  else return 0;
  return 1;
}

// Client and executable for a model; NULL (after printing why) on failure.
static sy_executable *open_model(const char *cmd, const char *model, model_opts *m, sy_client **client) {
  char err[SY_ERR_LEN];
  *client = NULL;
  if (m->chip && !*m->chip) {
    usage_error(cmd, "%s", "--chip needs a NAME");
    return NULL;
  }
  sy_client *c = sy_client_create(m->chip ? m->chip : "tpu-v4", err, sizeof err);
  if (!c) {
    fprintf(stderr, "systole %s: %s\n", cmd, err);
    return NULL;
  }
  m->co.input_shapes = m->shapes;
  m->co.dump_ir = m->dump_ir ? stdout : NULL;
  m->co.dump_asm = m->dump_asm ? stdout : NULL;
  sy_executable *x = sy_compile_file(c, model, &m->co);
  fflush(stdout);
  if (!x) {
    fprintf(stderr, "systole %s: %s\n", cmd, sy_last_error(c));
    sy_client_destroy(c);
    return NULL;
  }
  *client = c;
  return x;
}

static int cmd_compile(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  model_opts m = {0};
  for (int i = 0; i < argc; i++) {
    const char *v;
    int r;
    if (is_help(argv[i])) {
      printf("usage: systole compile MODEL.onnx -o MODEL.stx [options]\n\n"
             "Compiles an ONNX model for a chip into an executable (.stx: an ELF file holding the\n"
             "code, the weights, the I/O signature and the layer table; docs/runtime.md).\n\n"
             "options:\n"
             "  --chip NAME               target chip (configs/NAME.ini or a path); default tpu-v4\n"
             "  --precision default|highest\n"
             "                            default: bf16 products, fp32 sums; highest: fp32 accuracy\n"
             "                            from several bf16 passes (slower)\n"
             "  --quantize int8           post-training quantisation: convolutions and matmuls run\n"
             "                            int8 on the MXU (needed on tpu-v1; docs/compiler.md)\n"
             "  --calibrate DIR           calibration inputs for --quantize: DIR/*.npy (one input),\n"
             "                            DIR/SET/NAME.npy (several); default: the random inputs\n"
             "  --input-shape NAME=D0,D1,...  shape of an input with symbolic dimensions\n"
             "  --dump-ir                 print the IR after import and after every pass\n"
             "  --dump-asm                print the program as assembler text\n");
      return 0;
    } else if ((r = model_option("compile", argc, argv, &i, &m))) {
      if (r == 2) return 2;
    } else if ((v = opt_value(argc, argv, &i, "-o"))) out = v;
    else if (argv[i][0] != '-' && !in) in = argv[i];
    else return usage_error("compile", "unexpected argument '%s'", argv[i]);
  }
  if (!in) return usage_error("compile", "%s", "missing MODEL.onnx");
  if (!out || !*out) return usage_error("compile", "%s", "missing -o MODEL.stx");
  sy_client *c;
  sy_executable *x = open_model("compile", in, &m, &c);
  if (!x) return 1;
  int rc = sy_executable_save(c, x, out);
  if (rc) fprintf(stderr, "systole compile: %s\n", sy_last_error(c));
  else if (!m.dump_ir && !m.dump_asm)
    printf("%s: %zu instructions, %d layers, %d input%s, %d output%s, for %s (compiled in %.3f s)\n", out,
           sy_executable_num_instructions(x), sy_executable_num_layers(x), sy_executable_num_inputs(x),
           sy_executable_num_inputs(x) == 1 ? "" : "s", sy_executable_num_outputs(x),
           sy_executable_num_outputs(x) == 1 ? "" : "s", sy_client_chip_name(c), sy_executable_compile_seconds(x));
  sy_executable_destroy(x);
  sy_client_destroy(c);
  return rc ? 1 : 0;
}

// Lines of a labels file (class names), or NULL; *n set to their count.
static char **read_labels(const char *path, int *n) {
  *n = 0;
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char **v = NULL, line[256];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    char **w = realloc(v, (size_t)(*n + 1) * sizeof *v);
    if (!w || !(w[*n] = strdup(line))) {
      free(w ? w : v);
      fclose(f);
      return NULL;
    }
    v = w, (*n)++;
  }
  fclose(f);
  return v;
}

static float element_f32(const sy_tensor *t, int64_t i) {
  switch (t->dtype) {
  case SY_F32: return ((const float *)t->data)[i];
  case SY_BF16: {
    uint32_t bits = (uint32_t)((const uint16_t *)t->data)[i] << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
  }
  case SY_I32: return (float)((const int32_t *)t->data)[i];
  case SY_I8: return ((const int8_t *)t->data)[i];
  case SY_I64: return (float)((const int64_t *)t->data)[i];
  case SY_I16: return ((const int16_t *)t->data)[i];
  case SY_U16: return ((const uint16_t *)t->data)[i];
  case SY_U32: return (float)((const uint32_t *)t->data)[i];
  case SY_U64: return (float)((const uint64_t *)t->data)[i];
  default: return ((const uint8_t *)t->data)[i];
  }
}

// name, type, min/max/mean, and for a vector (or [1,N]) the five largest.
static void print_output(const sy_tensor *t, bool values, char **labels, int nlabels) {
  char type[160];
  printf("  %-16s %s", t->name, sy_tensor_type_str(t, type, sizeof type));
  if (!values) {
    printf("\n");
    return;
  }
  int64_t n = sy_tensor_elements(t), nans = 0;
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = element_f32(t, i);
    if (v != v) {
      nans++;
      continue;
    }
    lo = v < lo ? v : lo, hi = v > hi ? v : hi, sum += v;
  }
  if (nans < n) printf("  min %.6g  max %.6g  mean %.6g", lo, hi, sum / (double)(n - nans));
  if (nans) printf("  (%" PRId64 " NaN)", nans);
  printf("\n");
  bool vector = (t->rank == 1 || (t->rank == 2 && t->dims[0] == 1)) && n >= 2;
  if (!vector) return;
  int64_t top[5];
  int k = 0;
  for (; k < 5 && k < n; k++) { // selection of the k-th largest, first index on ties
    int64_t best = -1;
    for (int64_t i = 0; i < n; i++) {
      bool taken = false;
      for (int j = 0; j < k; j++) taken |= top[j] == i;
      float v = element_f32(t, i);
      if (!taken && v == v && (best < 0 || v > element_f32(t, best))) best = i;
    }
    if (best < 0) break;
    top[k] = best;
  }
  printf("    top-%d:", k);
  for (int j = 0; j < k; j++) {
    printf("%s %" PRId64, j ? "," : "", top[j]);
    if (top[j] < nlabels) printf(" (%s)", labels[top[j]]);
    printf(" %.4g", element_f32(t, top[j]));
  }
  printf("\n");
}

static int by_cycles(const void *a, const void *b) {
  const sy_layer_profile *x = *(const sy_layer_profile *const *)a, *y = *(const sy_layer_profile *const *)b;
  if (x->cycles != y->cycles) return x->cycles > y->cycles ? -1 : 1;
  return x < y ? -1 : x > y; // program order among equals
}

static void print_performance(const sy_client *c, const sy_profile *p) {
  printf("\nperformance on %s at %.0f MHz (one TensorCore)\n", sy_client_chip_name(c), sy_client_clock_hz(c) / 1e6);
  printf("  cycles            %s (%s at the clock)\n", sim_fmt_count(p->cycles), sim_fmt_seconds(p->seconds));
  printf("  MACs              %s\n", sim_fmt_count(p->macs));
  printf("  MXU utilisation   %.1f%%\n", p->mxu_utilization * 100);
  if (p->mxu_cycles && p->mxu_active) {
    double mc = (double)p->mxu_cycles / 100;
    printf("  MXU cycles        active %.1f%% (unused MACs %.1f%%), weight stall %.1f%%, weight shift %.1f%%, "
           "non-matrix %.1f%%\n", (double)p->mxu_active / mc, p->unused_mac_fraction * 100, (double)p->weight_stall / mc,
           (double)p->weight_shift / mc, (double)p->non_matrix / mc);
    printf("  throughput        %.2f TOPS\n", p->tops);
    if (p->host_in_cycles || p->host_out_cycles)
      printf("  host transfers    %s cycles in, %s out (the MXU cycles and TOPS above are over the %s between)\n",
             sim_fmt_count(p->host_in_cycles), sim_fmt_count(p->host_out_cycles),
             sim_fmt_count(p->cycles - p->host_in_cycles - p->host_out_cycles));
  }
  printf("  HBM traffic       %s read, %s written\n", sim_fmt_bytes(p->hbm_read), sim_fmt_bytes(p->hbm_write));
  printf("  energy            %s\n", sim_fmt_energy_pj(p->energy_j * 1e12));
  if (!p->nlayers) return;
  const sy_layer_profile **v = malloc((size_t)p->nlayers * sizeof *v);
  if (!v) return;
  for (int i = 0; i < p->nlayers; i++) v[i] = &p->layers[i];
  qsort(v, (size_t)p->nlayers, sizeof *v, by_cycles);
  int k = p->nlayers < 10 ? p->nlayers : 10;
  printf("\n  %s costliest of %d layers:\n", k == p->nlayers ? "all, the" : "the ten", p->nlayers);
  printf("  %-28s %-18s %12s %7s %14s %8s\n", "layer", "op", "cycles", "% total", "MACs", "MXU util");
  for (int i = 0; i < k; i++) {
    const sy_layer_profile *l = v[i];
    char name[29];
    size_t len = strlen(l->name);
    if (len > 28) snprintf(name, sizeof name, "%.25s...", l->name);
    else memcpy(name, l->name, len + 1);
    printf("  %-28s %-18s %12s %6.1f%% %14s %7.1f%%\n", name, l->op, sim_fmt_count(l->cycles),
           p->cycles ? 100.0 * (double)l->cycles / (double)p->cycles : 0.0, sim_fmt_count(l->macs), l->mxu_utilization * 100);
  }
  free(v);
}

static void json_shape(FILE *f, const sy_tensor *t) {
  fprintf(f, "[");
  for (int d = 0; d < t->rank; d++) fprintf(f, "%s%" PRId64, d ? ", " : "", t->dims[d]);
  fprintf(f, "]");
}

static void json_str_or_null(FILE *f, const char *s) {
  if (s) sim_json_str(f, s);
  else fprintf(f, "null");
}

typedef struct {
  const char *model;
  const sy_client *c;
  const sy_executable *x;
  const sy_profile *p;
  const sy_tensor *in, *out;
  const char *const *in_files, *const *out_files;
} run_report;

static int write_run_json(const char *path, const run_report *r) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "systole run: %s: %s\n", path, strerror(errno));
    return -1;
  }
  const sy_profile *p = r->p;
  int prec = sy_executable_precision(r->x);
  fprintf(f, "{\n  \"model\": ");
  sim_json_str(f, r->model);
  fprintf(f, ",\n  \"chip\": ");
  sim_json_str(f, sy_client_chip_name(r->c));
  fprintf(f, ",\n  \"precision\": ");
  json_str_or_null(f, prec < 0 ? NULL : sy_precision_name((sy_precision)prec));
  fprintf(f, ",\n  \"clock_hz\": %.0f,\n  \"cycles\": %" PRIu64 ",\n  \"seconds\": %.9g,\n  \"macs\": %" PRIu64
             ",\n  \"mxu_utilization\": %.6f,\n  \"hbm_read_bytes\": %" PRIu64 ",\n  \"hbm_write_bytes\": %" PRIu64
             ",\n  \"energy_j\": %.6g,\n  \"host_seconds\": %.6f,\n  \"compile_seconds\": %.6f,\n",
          sy_client_clock_hz(r->c), p->cycles, p->seconds, p->macs, p->mxu_utilization, p->hbm_read, p->hbm_write,
          p->energy_j, p->host_seconds, sy_executable_compile_seconds(r->x));
  fprintf(f, "  \"mxu_cycles\": %" PRIu64 ",\n  \"mxu_active\": %" PRIu64 ",\n  \"weight_stall\": %" PRIu64
             ",\n  \"weight_shift\": %" PRIu64 ",\n  \"non_matrix\": %" PRIu64 ",\n  \"useful_mac_fraction\": %.6f"
             ",\n  \"unused_mac_fraction\": %.6f,\n  \"tops\": %.6g,\n  \"host_in_cycles\": %" PRIu64
             ",\n  \"host_out_cycles\": %" PRIu64 ",\n  \"inputs\": [",
          p->mxu_cycles, p->mxu_active, p->weight_stall, p->weight_shift, p->non_matrix, p->useful_mac_fraction,
          p->unused_mac_fraction, p->tops, p->host_in_cycles, p->host_out_cycles);
  for (int i = 0; i < sy_executable_num_inputs(r->x); i++) {
    fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
    sim_json_str(f, r->in[i].name);
    fprintf(f, ", \"dtype\": \"%s\", \"shape\": ", sy_dtype_name(r->in[i].dtype));
    json_shape(f, &r->in[i]);
    fprintf(f, ", \"file\": ");
    json_str_or_null(f, r->in_files[i]);
    fprintf(f, "}");
  }
  fprintf(f, "\n  ],\n  \"outputs\": [");
  for (int i = 0; i < sy_executable_num_outputs(r->x); i++) {
    fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
    sim_json_str(f, r->out[i].name);
    fprintf(f, ", \"dtype\": \"%s\", \"shape\": ", sy_dtype_name(r->out[i].dtype));
    json_shape(f, &r->out[i]);
    fprintf(f, ", \"file\": ");
    json_str_or_null(f, r->out_files[i]);
    fprintf(f, "}");
  }
  fprintf(f, "\n  ],\n  \"layers\": [");
  for (int i = 0; i < p->nlayers; i++) {
    const sy_layer_profile *l = &p->layers[i];
    fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
    sim_json_str(f, l->name);
    fprintf(f, ", \"op\": ");
    sim_json_str(f, l->op);
    fprintf(f, ", \"cycles\": %" PRIu64 ", \"start\": %" PRIu64 ", \"end\": %" PRIu64 ", \"macs\": %" PRIu64
               ", \"model_macs\": %" PRIu64 ", \"mxu_utilization\": %.6f, \"hbm_bytes\": %" PRIu64 "}",
            l->cycles, l->start, l->end, l->macs, l->model_macs, l->mxu_utilization, l->hbm_bytes);
  }
  fprintf(f, "\n  ]\n}\n");
  char err[SIM_ERR_LEN];
  if (sim_close_checked(f, path, err, sizeof err)) {
    fprintf(stderr, "systole run: %s\n", err);
    return -1;
  }
  return 0;
}

static void run_help(void) {
  printf("usage: systole run MODEL.onnx|MODEL.stx [options]\n\n"
         "Compiles the model (or loads an executable from 'systole compile'), runs it on the\n"
         "simulated chip, and prints a summary of the outputs (shape, min, max, mean, and the\n"
         "five largest values of a vector) and of performance: cycles, time at the clock, MACs,\n"
         "MXU utilisation, HBM traffic, energy and the ten costliest layers.\n\n"
         "options:\n"
         "  --chip NAME               chip (configs/NAME.ini or a path); default tpu-v4. An .stx\n"
         "                            runs only on the chip it was compiled for\n"
         "  --input NAME=FILE.npy     an input's values; may repeat. Inputs not given get\n"
         "                            deterministic random values (docs/runtime.md)\n"
         "  --output-dir DIR          write each output as float32 DIR/NAME.npy (characters\n"
         "                            outside [A-Za-z0-9_.-] of NAME become _)\n"
         "  --precision default|highest\n"
         "  --quantize int8           run convolutions and matmuls int8 on the MXU (tpu-v1)\n"
         "  --calibrate DIR           calibration inputs for --quantize (see compile --help)\n"
         "  --json FILE               write the figures, with every layer, as JSON\n"
         "  --trace FILE              write a Chrome trace-event timeline (ui.perfetto.dev)\n"
         "  --timing-only             count cycles without computing values\n"
         "  --labels FILE             class names, one per line, for the top-5 listing\n"
         "  --max-cycles N            stop a run that goes beyond N cycles\n"
         "  --input-shape NAME=D0,D1,...  shape of an input with symbolic dimensions\n"
         "  --dump-ir, --dump-asm     print the IR after every pass, the program as assembler\n"
         "  -q, --quiet               print nothing but errors\n");
}

// --input NAME=FILE: the input whose name is a prefix ending at one of the
// '='s (names may hold '='), else the text before the first '='.
static int input_of(const sy_executable *x, const char *spec, const char **file, char *name, size_t len) {
  for (const char *eq = strchr(spec, '='); eq; eq = strchr(eq + 1, '=')) {
    snprintf(name, len, "%.*s", (int)(eq - spec), spec);
    int i = sy_executable_find_input(x, name);
    if (i >= 0) {
      *file = eq + 1;
      return i;
    }
  }
  const char *eq = strchr(spec, '=');
  snprintf(name, len, "%.*s", eq ? (int)(eq - spec) : (int)strlen(spec), spec);
  *file = eq ? eq + 1 : NULL;
  return -1;
}

static void list_inputs(const sy_executable *x) {
  char type[160];
  int n = sy_executable_num_inputs(x);
  fprintf(stderr, "  the model's input%s:", n == 1 ? "" : "s");
  for (int i = 0; i < n; i++) {
    sy_tensor t;
    sy_executable_input(x, i, &t);
    fprintf(stderr, "%s '%s' %s", i ? "," : "", t.name, sy_tensor_type_str(&t, type, sizeof type));
  }
  fprintf(stderr, "%s\n", n ? "" : " none");
}

static int cmd_run(int argc, char **argv) {
  const char *in = NULL, *outdir = NULL, *json = NULL, *labels_path = NULL;
  const char *inputs[MAX_LIST];
  int ninputs = 0;
  bool quiet = false;
  model_opts m = {0};
  sy_execute_options eo = {0};
  for (int i = 0; i < argc; i++) {
    const char *v;
    int r;
    if (is_help(argv[i])) return run_help(), 0;
    else if ((r = model_option("run", argc, argv, &i, &m))) {
      if (r == 2) return 2;
    } else if ((v = opt_value(argc, argv, &i, "--input"))) {
      if (ninputs == MAX_LIST) return usage_error("run", "%s", "too many --input options");
      if (!strchr(v, '=')) return usage_error("run", "--input '%s': expected NAME=FILE.npy", v);
      inputs[ninputs++] = v;
    } else if ((v = opt_value(argc, argv, &i, "--output-dir"))) outdir = v;
    else if ((v = opt_value(argc, argv, &i, "--json"))) json = v;
    else if ((v = opt_value(argc, argv, &i, "--trace"))) eo.trace_path = v;
    else if ((v = opt_value(argc, argv, &i, "--labels"))) labels_path = v;
    else if ((v = opt_value(argc, argv, &i, "--max-cycles"))) {
      char *end;
      errno = 0;
      double d = strtod(v, &end);
      if (errno || *end || end == v || d < 1 || d > 1.8e19) return usage_error("run", "bad --max-cycles '%s'", v);
      eo.max_cycles = (uint64_t)d;
    } else if (!strcmp(argv[i], "--timing-only")) eo.timing_only = true;
    else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = true;
    else if (argv[i][0] != '-' && !in) in = argv[i];
    else return usage_error("run", "unexpected argument '%s'", argv[i]);
  }
  if (!in) return usage_error("run", "%s", "missing MODEL.onnx or MODEL.stx");
  if (outdir && !*outdir) return usage_error("run", "%s", "--output-dir needs a DIR");
  if ((json && !*json) || (eo.trace_path && !*eo.trace_path)) return usage_error("run", "%s", "--json and --trace need a FILE");
  if (outdir && eo.timing_only) return usage_error("run", "%s", "--timing-only computes no values for --output-dir");
  int nlabels = 0;
  char **labels = NULL;
  if (labels_path && !(labels = read_labels(labels_path, &nlabels))) {
    fprintf(stderr, "systole run: %s: %s\n", labels_path, errno ? strerror(errno) : "cannot read");
    return 1;
  }

  sy_client *c = NULL;
  sy_executable *x = open_model("run", in, &m, &c);
  int nin = x ? sy_executable_num_inputs(x) : 0, nout = x ? sy_executable_num_outputs(x) : 0;
  sy_tensor *tin = calloc((size_t)nin + 1, sizeof *tin), *tout = calloc((size_t)nout + 1, sizeof *tout);
  const char **in_files = calloc((size_t)nin + 1, sizeof *in_files);
  char **out_files = calloc((size_t)nout + 1, sizeof *out_files);
  sy_profile prof = {0};
  int rc = !x;
  if (!rc && (!tin || !tout || !in_files || !out_files)) {
    fprintf(stderr, "systole run: out of memory\n");
    rc = 1;
  }
  // Inputs: files given, then random values for the rest.
  for (int k = 0; k < ninputs && !rc; k++) {
    char name[SY_MAX_NAME + 1], want[160], got[160];
    const char *file;
    int i = input_of(x, inputs[k], &file, name, sizeof name);
    if (i < 0) {
      fprintf(stderr, "systole run: --input %s: the model has no input '%s'\n", inputs[k], name);
      list_inputs(x);
      rc = 1;
    } else if (in_files[i]) {
      fprintf(stderr, "systole run: --input %s: input '%s' is already given (%s)\n", inputs[k], name, in_files[i]);
      rc = 1;
    } else {
      sy_tensor spec;
      sy_executable_input(x, i, &spec);
      if (sy_tensor_read_npy(c, file, spec.dtype, &tin[i])) {
        fprintf(stderr, "systole run: input '%s': %s\n", name, sy_last_error(c));
        rc = 1;
      } else if (tin[i].rank != spec.rank || memcmp(tin[i].dims, spec.dims, sizeof spec.dims[0] * (size_t)spec.rank)) {
        fprintf(stderr, "systole run: %s: input '%s': expected %s, got %s\n", file, name,
                sy_tensor_type_str(&spec, want, sizeof want), sy_tensor_type_str(&tin[i], got, sizeof got));
        rc = 1;
      }
      snprintf(tin[i].name, sizeof tin[i].name, "%s", spec.name);
      in_files[i] = file;
    }
  }
  for (int i = 0; i < nin && !rc; i++)
    if (!in_files[i]) {
      sy_executable_input(x, i, &tin[i]);
      if (sy_tensor_fill_random(&tin[i], (uint64_t)i)) {
        fprintf(stderr, "systole run: input '%s': out of memory\n", tin[i].name);
        rc = 1;
      }
    }
  if (!rc && sy_execute(c, x, tin, nin, tout, &prof, &eo)) {
    fprintf(stderr, "systole run: %s: %s\n", in, sy_last_error(c));
    rc = 1;
  }
  // Outputs to DIR/NAME.npy; names that map to the same file get a suffix.
  if (!rc && outdir) {
    if (mkdir(outdir, 0777) && errno != EEXIST) {
      fprintf(stderr, "systole run: --output-dir %s: %s\n", outdir, strerror(errno));
      rc = 1;
    }
    for (int i = 0; i < nout && !rc; i++) {
      char safe[SY_MAX_NAME + 1], path[4096];
      npy_safe_name(tout[i].name, safe, sizeof safe);
      snprintf(path, sizeof path, "%s/%s.npy", outdir, safe);
      for (int k = 1;; k++) {
        bool clash = false;
        for (int j = 0; j < i; j++) clash |= !strcmp(out_files[j], path);
        if (!clash) break;
        snprintf(path, sizeof path, "%s/%s_%d.npy", outdir, safe, k);
      }
      if (!(out_files[i] = strdup(path)) || sy_tensor_write_npy(c, &tout[i], path)) {
        fprintf(stderr, "systole run: %s\n", out_files[i] ? sy_last_error(c) : "out of memory");
        rc = 1;
      }
    }
  }
  if (!rc && !quiet) {
    int prec = sy_executable_precision(x);
    printf("%s on %s, precision %s: %zu instructions, %d layers\n", in, sy_client_chip_name(c),
           prec < 0 ? "as compiled" : sy_precision_name((sy_precision)prec), sy_executable_num_instructions(x),
           sy_executable_num_layers(x));
    printf("  host time: %s %s, ", sy_executable_precision(x) < 0 ? "loading" : "compiling",
           sim_fmt_seconds(sy_executable_compile_seconds(x)));
    printf("simulating %s\n", sim_fmt_seconds(prof.host_seconds));
    printf("\ninputs\n");
    for (int i = 0; i < nin; i++) {
      char type[160];
      printf("  %-16s %s  ", tin[i].name, sy_tensor_type_str(&tin[i], type, sizeof type));
      if (in_files[i]) printf("from %s\n", in_files[i]);
      else printf("random (seed %d)\n", i);
    }
    printf("\noutputs%s\n", eo.timing_only ? " (timing only: no values)" : "");
    for (int i = 0; i < nout; i++) {
      print_output(&tout[i], !eo.timing_only, labels, nlabels);
      if (out_files[i]) printf("    written to %s\n", out_files[i]);
    }
    print_performance(c, &prof);
  }
  if (!rc && json) {
    run_report r = {in, c, x, &prof, tin, tout, in_files, (const char *const *)out_files};
    rc = write_run_json(json, &r) != 0;
  }
  for (int i = 0; i < nin && tin; i++) sy_tensor_free(&tin[i]);
  for (int i = 0; i < nout && tout; i++) sy_tensor_free(&tout[i]);
  for (int i = 0; i < nout && out_files; i++) free(out_files[i]);
  for (int i = 0; i < nlabels; i++) free(labels[i]);
  free(labels), free(tin), free(tout), free(in_files), free(out_files);
  sy_profile_free(&prof);
  sy_executable_destroy(x);
  sy_client_destroy(c);
  return rc;
}

// ---------------------------------------------------------------- scalesim

static void scalesim_help(void) {
  printf("usage: systole scalesim -c CONFIG.cfg -t TOPOLOGY.csv [-i conv|gemm] -o DIR [--chip NAME] [--mxu-only]\n\n"
         "Reads SCALE-Sim's configuration and topology files and writes DIR/COMPUTE_REPORT.csv\n"
         "with SCALE-Sim's columns: every layer's folds run through Systole's MXU model under\n"
         "SCALE-Sim's assumptions (no preloading of the next fold, no memory stalls, no padding),\n"
         "which gives SCALE-Sim's cycle counts. DIR/SYSTOLE_REPORT.csv puts Systole's own figures\n"
         "beside them: the same folds with preloading, and the layer compiled for a chip with that\n"
         "array and simulated, memory bandwidth and capacity included (docs/validation.md).\n\n"
         "options:\n"
         "  -c CONFIG.cfg          SCALE-Sim configuration (array size, dataflow)\n"
         "  -t TOPOLOGY.csv        SCALE-Sim topology: conv layers, or GEMMs with -i gemm\n"
         "  -i conv|gemm           the topology's format (default conv)\n"
         "  -o DIR                 where the reports go (created if missing)\n"
         "  --chip NAME            memories, clock and latencies of Systole's figures (default tpu-v4)\n"
         "  --mxu-only             skip compiling and simulating the layers\n");
}

static FILE *scalesim_open(const char *dir, const char *name, char *path, size_t len) {
  snprintf(path, len, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) fprintf(stderr, "systole scalesim: %s: cannot create: %s\n", path, strerror(errno));
  return f;
}

// SYSTOLE_REPORT.csv: SCALE-Sim's count beside Systole's figures for each layer.
static void scalesim_write_systole(FILE *f, const scalesim_topology *t, const scalesim_result *r,
                                   const scalesim_chip_result *cr) {
  fprintf(f, "LayerID, Layer, M, N, K, Folds, SCALE-Sim Cycles, Systole MXU Cycles, Systole Chip Cycles, "
             "Chip MXU Util %%, Chip HBM Bytes,\n");
  for (int i = 0; i < t->n; i++) {
    const scalesim_result *x = &r[i];
    fprintf(f, "%d, %s, %lld, %lld, %lld, %lld, %llu, %llu, ", i, t->layers[i].name, (long long)x->m,
            (long long)x->n, (long long)x->k, (long long)(x->row_folds * x->col_folds),
            (unsigned long long)x->total_cycles, (unsigned long long)x->preloaded_cycles);
    if (!cr || !cr[i].cycles) fprintf(f, ", , ,\n");
    else
      fprintf(f, "%llu, %.2f, %llu,\n", (unsigned long long)cr[i].cycles, 100 * cr[i].mxu_utilization,
              (unsigned long long)cr[i].hbm_bytes);
  }
}

static int cmd_scalesim(int argc, char **argv) {
  const char *cfg_path = NULL, *topo_path = NULL, *dir = NULL, *chipname = "tpu-v4", *v;
  bool gemm = false, mxu_only = false;
  for (int i = 0; i < argc; i++) {
    if (is_help(argv[i])) {
      scalesim_help();
      return 0;
    } else if ((v = opt_value(argc, argv, &i, "-c"))) cfg_path = v;
    else if ((v = opt_value(argc, argv, &i, "-t"))) topo_path = v;
    else if ((v = opt_value(argc, argv, &i, "-o"))) dir = v;
    else if ((v = opt_value(argc, argv, &i, "--chip"))) chipname = v;
    else if ((v = opt_value(argc, argv, &i, "-i"))) {
      if (!strcmp(v, "gemm")) gemm = true;
      else if (!strcmp(v, "conv")) gemm = false;
      else return usage_error("scalesim", "-i '%s': expected conv or gemm", v);
    } else if (!strcmp(argv[i], "--mxu-only")) mxu_only = true;
    else return usage_error("scalesim", "unexpected argument '%s'", argv[i]);
  }
  if (!cfg_path || !*cfg_path) return usage_error("scalesim", "%s", "missing -c CONFIG.cfg");
  if (!topo_path || !*topo_path) return usage_error("scalesim", "%s", "missing -t TOPOLOGY.csv");
  if (!dir || !*dir) return usage_error("scalesim", "%s", "missing -o DIR");
  if (!*chipname) return usage_error("scalesim", "%s", "--chip needs a NAME");

  char err[SCALESIM_ERR_LEN > CHIP_ERR_LEN ? SCALESIM_ERR_LEN : CHIP_ERR_LEN];
  scalesim_config cfg;
  scalesim_topology topo;
  chip_config base, chip;
  if (scalesim_load_config(&cfg, cfg_path, err, sizeof err)) {
    fprintf(stderr, "systole scalesim: %s\n", err);
    return 1;
  }
  if (scalesim_load_topology(&topo, topo_path, gemm, err, sizeof err)) {
    fprintf(stderr, "systole scalesim: %s\n", err);
    return 1;
  }
  int rc = 1;
  scalesim_result *r = calloc((size_t)topo.n, sizeof *r);
  scalesim_chip_result *cr = mxu_only ? NULL : calloc((size_t)topo.n, sizeof *cr);
  if (!r || (!mxu_only && !cr)) {
    fprintf(stderr, "systole scalesim: out of memory\n");
    goto out;
  }
  if (!mxu_only) {
    if (chip_load(&base, chipname, err, sizeof err)) {
      fprintf(stderr, "systole scalesim: %s\n", err);
      goto out;
    }
    scalesim_chip_variant(&cfg, &base, &chip);
  }
  if (cfg.user_bandwidth)
    fprintf(stderr, "systole scalesim: note: %s asks for InterfaceBandwidth USER; SCALE-Sim would add stall "
                    "cycles from its prefetch model, these reports have none (as with CALC)\n", cfg_path);
  if (mkdir(dir, 0777) && errno != EEXIST) {
    fprintf(stderr, "systole scalesim: cannot create %s: %s\n", dir, strerror(errno));
    goto out;
  }
  for (int i = 0; i < topo.n; i++)
    if (scalesim_run_layer(&cfg, &topo.layers[i], &r[i], err, sizeof err)) {
      fprintf(stderr, "systole scalesim: %s: %s\n", topo_path, err);
      goto out;
    }

  static const char *const dfname[] = {"weight-stationary", "output-stationary", "input-stationary"};
  printf("%s: %s on a %dx%d %s array, %d layer%s\n", cfg.run_name, topo_path, cfg.rows, cfg.cols,
         dfname[cfg.dataflow], topo.n, topo.n == 1 ? "" : "s");
  printf("SCALE-Sim: no preloading, no memory stalls (its count: the last busy cycle)\n");
  printf("Systole MXU: the same folds, each tile loaded while the previous one computes\n");
  if (!mxu_only) {
    bool mib = chip.vmem_bytes >= 1 << 20;
    printf("Systole chip: compiled (bf16) and simulated on %s's memories (%s %.0f GB/s, VMEM %llu %s) and "
           "%.0f MHz clock, one %dx%d MXU (%s, %s)\n",
           base.name, chip.hbm_kind, chip.hbm_bandwidth / 1e9, (unsigned long long)(chip.vmem_bytes >> (mib ? 20 : 10)),
           mib ? "MiB" : "KiB", chip.clock_hz / 1e6, chip.mxu_rows, chip.mxu_cols, dfname[cfg.dataflow],
           chip.mxu_preload ? "preloading" : "no preloading");
  }
  printf("\n%-16s %9s %6s %6s %6s %12s %12s %12s\n", "layer", "M", "N", "K", "folds", "SCALE-Sim", "Systole MXU",
         mxu_only ? "" : "Systole chip");
  uint64_t tot[3] = {0};
  int chip_missing = 0;
  for (int i = 0; i < topo.n; i++) {
    const scalesim_result *x = &r[i];
    // A layer the compiler cannot place on this chip keeps its SCALE-Sim
    // figures; its chip figure is left empty (cycles 0).
    if (!mxu_only && scalesim_chip_run(&chip, &topo.layers[i], &cr[i], err, sizeof err))
      fprintf(stderr, "systole scalesim: note: no chip figure: %s\n", err), chip_missing++;
    char cc[24] = "";
    if (!mxu_only && cr[i].cycles)
      snprintf(cc, sizeof cc, "%llu", (unsigned long long)cr[i].cycles), tot[2] += cr[i].cycles;
    printf("%-16.16s %9lld %6lld %6lld %6lld %12llu %12llu %12s\n", topo.layers[i].name, (long long)x->m,
           (long long)x->n, (long long)x->k, (long long)(x->row_folds * x->col_folds),
           (unsigned long long)x->total_cycles, (unsigned long long)x->preloaded_cycles, cc);
    tot[0] += x->total_cycles, tot[1] += x->preloaded_cycles;
  }
  char cc[24] = "";
  if (!mxu_only) snprintf(cc, sizeof cc, "%llu%s", (unsigned long long)tot[2], chip_missing ? "+" : "");
  printf("%-16s %9s %6s %6s %6s %12llu %12llu %12s\n", "total", "", "", "", "", (unsigned long long)tot[0],
         (unsigned long long)tot[1], cc);

  char path[4096], path2[4096];
  FILE *f = scalesim_open(dir, "COMPUTE_REPORT.csv", path, sizeof path);
  if (!f) goto out;
  scalesim_write_compute_report(f, r, topo.n);
  if (sim_close_checked(f, path, err, sizeof err)) {
    fprintf(stderr, "systole scalesim: %s\n", err);
    goto out;
  }
  f = scalesim_open(dir, "SYSTOLE_REPORT.csv", path2, sizeof path2);
  if (!f) goto out;
  scalesim_write_systole(f, &topo, r, cr);
  if (sim_close_checked(f, path2, err, sizeof err)) {
    fprintf(stderr, "systole scalesim: %s\n", err);
    goto out;
  }
  printf("\nwrote %s and %s\n", path, path2);
  rc = 0;
out:
  free(r);
  free(cr);
  scalesim_topology_free(&topo);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || is_help(argv[1]) || !strcmp(argv[1], "help")) {
    print_main_help(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("systole %s\n", SYSTOLE_VERSION);
    return 0;
  }
  static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
      {"info", cmd_info}, {"asm", cmd_asm}, {"disasm", cmd_disasm}, {"sim", cmd_sim}, {"import", cmd_import},
      {"compile", cmd_compile}, {"run", cmd_run}, {"scalesim", cmd_scalesim}};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
    if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 2, argv + 2);
  fprintf(stderr, "systole: unknown command '%s'\n\n", argv[1]);
  print_main_help(stderr);
  return 2;
}
