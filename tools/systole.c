// systole: the command-line tool. A thin layer over the library: each
// subcommand parses its options and calls into src/.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "isa/isa.h"
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
          "  import  MODEL.onnx             read an ONNX model and print its graph IR (docs/ir.md)\n\n"
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
             "defaults to 1. Compiling to the chip is not there yet: this shows what the\n"
             "compiler will start from.\n");
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
      {"info", cmd_info}, {"asm", cmd_asm}, {"disasm", cmd_disasm}, {"sim", cmd_sim}, {"import", cmd_import}};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
    if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 2, argv + 2);
  fprintf(stderr, "systole: unknown command '%s'\n\n", argv[1]);
  print_main_help(stderr);
  return 2;
}
