// Program files: the layer table (.systole.layers, docs/isa.md section 8)
// through the writer and the reader, and every way a corrupt table is refused;
// isa_file_load, the one way input files are read.
// The rest of the container is tested in test_asm.c.
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isa/isa.h"
#include "testlib.h"

static char err[ISA_ERR_LEN];
static char path[256];

static isa_program sample(void) {
  isa_program p = {0};
  int rc = isa_assemble(".chip \"tiny\"\n.input \"x\", f32, [4], hbm:0\n"
                        "nop\nnop\nnop\nnop\nnop\nhalt\n",
                        "t.s", NULL, &p, err, sizeof err);
  CHECK(rc == 0, "assemble: %s", err);
  return p;
}

// Three layers over the 6 instructions of sample(); layer 1 has an empty op
// and a multi-byte name, layer 2 a 64-bit MAC count.
static const isa_layer sample_layers[3] = {
    {"conv1", "conv+relu", 0, 2, 1000},
    {"pool/1 \xc3\xa9", "", 3, 5, 0},
    {"fc", "gemm", 5, 6, 1ull << 40},
};

static bool same_layers(const isa_program *a, const isa_layer *want, size_t n) {
  if (a->nlayers != n || (n && !a->layers))
    return false;
  for (size_t i = 0; i < n; i++) {
    const isa_layer *x = &a->layers[i], *y = &want[i];
    if (strcmp(x->name, y->name) || strcmp(x->op, y->op) || x->pc_begin != y->pc_begin ||
        x->pc_end != y->pc_end || x->macs != y->macs)
      return false;
  }
  return true;
}

static uint8_t *file_bytes(const isa_program *p, size_t *len) {
  CHECK(isa_program_write(p, path, err, sizeof err) == 0, "write: %s", err);
  return (uint8_t *)test_read_file(path, len);
}

static Elf64_Ehdr *ehdr(uint8_t *b) { return (Elf64_Ehdr *)b; }
static Elf64_Shdr *shdr(uint8_t *b, int i) { return (Elf64_Shdr *)(b + ehdr(b)->e_shoff) + i; }
static int section_named(uint8_t *b, const char *name) {
  Elf64_Shdr *st = shdr(b, ehdr(b)->e_shstrndx);
  for (int i = 1; i < ehdr(b)->e_shnum; i++)
    if (!strcmp((char *)b + st->sh_offset + shdr(b, i)->sh_name, name))
      return i;
  return -1;
}

static void test_round_trip(void) {
  isa_program p = sample(), q;
  p.layers = malloc(sizeof sample_layers);
  memcpy(p.layers, sample_layers, sizeof sample_layers);
  p.nlayers = 3;
  size_t len;
  uint8_t *buf = file_bytes(&p, &len);
  CHECK(buf && section_named(buf, ".systole.layers") > 0, "section written");
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0, "read: %s", err);
  CHECK(same_layers(&q, sample_layers, 3), "layers read back");
  CHECK(q.ncode == 6 && q.nio == 1 && !strcmp(q.chip, "tiny"), "the rest read back");
  isa_program_free(&q);
  CHECK(q.layers == NULL && q.nlayers == 0, "freed");
  free(buf);
  // readelf sees the section and accepts the file.
  if (system("command -v readelf >/dev/null 2>&1") == 0) {
    char cmd[300], out[4096] = "";
    snprintf(cmd, sizeof cmd, "readelf -S -W %s 2>&1", path);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    int rc = f ? pclose(f) : -1;
    CHECK(rc == 0 && strstr(out, ".systole.layers") && !strstr(out, "arning"), "readelf:\n%s", out);
  }
  // No layers: no section. Empty layers (no instructions) are allowed.
  isa_program_free(&p);
  p = sample();
  buf = file_bytes(&p, &len);
  CHECK(buf && section_named(buf, ".systole.layers") < 0, "no empty section");
  free(buf);
  isa_layer empty[2] = {{"a", "view", 2, 2, 0}, {"b", "x", 2, 6, 5}};
  p.layers = empty, p.nlayers = 2;
  CHECK(isa_program_write(&p, path, err, sizeof err) == 0, "empty layer: %s", err);
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0 && same_layers(&q, empty, 2), "empty layer: %s", err);
  isa_program_free(&q);
  // The longest names.
  isa_layer big = {.pc_begin = 0, .pc_end = 6, .macs = UINT64_MAX};
  memset(big.name, 'n', ISA_LAYER_NAME - 1);
  memset(big.op, 'o', sizeof big.op - 1);
  p.layers = &big, p.nlayers = 1;
  CHECK(isa_program_write(&p, path, err, sizeof err) == 0, "longest names: %s", err);
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0 && same_layers(&q, &big, 1), "longest names: %s", err);
  isa_program_free(&q);
  p.layers = NULL, p.nlayers = 0;
  isa_program_free(&p);
}

// The writer refuses what the reader would.
static void test_writer_refuses(void) {
  isa_program p = sample();
  isa_layer l[2];
  struct {
    isa_layer a, b;
    const char *want;
  } cases[] = {
      {{"a", "", 0, 7, 0}, {"b", "", 7, 7, 0}, "layer 0: 'a': instructions 0..7 are not a range within the 6 of .text"},
      {{"a", "", 3, 2, 0}, {"b", "", 3, 4, 0}, "layer 0: 'a': instructions 3..2 are not a range"},
      {{"a", "", 0, 3, 0}, {"b", "", 2, 4, 0}, "layer 1: 'b': starts at instruction 2, before the previous layer ends (3)"},
      {{"a", "", 3, 4, 0}, {"b", "", 0, 1, 0}, "layer 1: 'b': starts at instruction 0"},
      {{"", "", 0, 1, 0}, {"b", "", 2, 4, 0}, "layer 0: the name is not 1..127 bytes"},
      {{"a", "x\ny", 0, 1, 0}, {"b", "", 2, 4, 0}, "layer 0: 'a': the op is not"},
      {{"a", "", 0, 1, 0}, {"b\xff", "", 2, 4, 0}, "layer 1: the name is not"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    l[0] = cases[i].a, l[1] = cases[i].b;
    p.layers = l, p.nlayers = 2;
    int rc = isa_program_write(&p, path, err, sizeof err);
    CHECK(rc == -1 && strstr(err, cases[i].want), "case %zu: got \"%s\" want \"%s\"", i, rc ? err : "success",
          cases[i].want);
  }
  memset(l[0].name, 'a', sizeof l[0].name); // no NUL within bounds
  l[1] = (isa_layer){"b", "", 2, 4, 0};
  CHECK(isa_program_write(&p, path, err, sizeof err) == -1 && strstr(err, "layer 0: the name is not"), "%s", err);
  p.layers = NULL, p.nlayers = 1;
  CHECK(isa_program_write(&p, path, err, sizeof err) == -1 && strstr(err, "1 layers but no table"), "%s", err);
  p.nlayers = 0;
  isa_program_free(&p);
}

// Corrupt tables. The good image's table (layers as sample_layers):
//   0 version, 4 count; entry 0 at 8: pc_begin 8, pc_end 16, macs 24, name length 32,
//   op length 33, reserved 34..39, names at 40 ("conv1" "conv+relu", 14 bytes), padding 54..55;
//   entry 1 at 56: pc_begin 56, pc_end 64, name length 80, names at 88 (9 bytes), padding 97..103;
//   entry 2 at 104: pc_begin 104, pc_end 112, names at 136 ("fc" "gemm"), padding 142..143; end 144.
static uint8_t *good;
static size_t good_len;

static uint8_t *table(uint8_t *b) { return b + shdr(b, section_named(b, ".systole.layers"))->sh_offset; }

static void check_refused(uint8_t *b, size_t n, const char *want, const char *what) {
  isa_program p;
  int rc = isa_program_parse(&p, b, n, err, sizeof err);
  CHECK(rc == -1 && strstr(err, want) && !strncmp(err, "program image: ", 15), "%s: got \"%s\" want \"%s\"", what,
        rc ? err : "success", want);
  CHECK(p.code == NULL && p.layers == NULL && p.nlayers == 0, "%s: program empty after failure", what);
}

static void layer_rejects(size_t off, int width, uint64_t v, const char *want) {
  uint8_t *b = malloc(good_len);
  memcpy(b, good, good_len);
  for (int i = 0; i < width; i++)
    table(b)[off + (size_t)i] = (uint8_t)(v >> 8 * i);
  char what[64];
  snprintf(what, sizeof what, "offset %zu = 0x%llx", off, (unsigned long long)v);
  check_refused(b, good_len, want, what);
  free(b);
}

static void shdr_rejects(void (*mutate)(uint8_t *), const char *want) {
  uint8_t *b = malloc(good_len);
  memcpy(b, good, good_len);
  mutate(b);
  check_refused(b, good_len, want, want);
  free(b);
}

static Elf64_Shdr *layers_shdr(uint8_t *b) { return shdr(b, section_named(b, ".systole.layers")); }
static void m_short(uint8_t *b) { layers_shdr(b)->sh_size = 4; }
static void m_trail(uint8_t *b) { layers_shdr(b)->sh_size += 8; }
static void m_cut(uint8_t *b) { layers_shdr(b)->sh_size -= 8; }
static void m_cut_head(uint8_t *b) { layers_shdr(b)->sh_size = 128; }
static void m_alloc(uint8_t *b) { layers_shdr(b)->sh_flags |= SHF_ALLOC; }
static void m_nobits(uint8_t *b) { layers_shdr(b)->sh_type = SHT_NOBITS; }
static void m_outside(uint8_t *b) { layers_shdr(b)->sh_offset = good_len - 8; }
static void m_two(uint8_t *b) {
  shdr(b, section_named(b, ".systole.chip"))->sh_name = layers_shdr(b)->sh_name;
}

static void test_reader_refuses(void) {
  isa_program p = sample();
  p.layers = (isa_layer *)sample_layers, p.nlayers = 3;
  good = file_bytes(&p, &good_len);
  p.layers = NULL, p.nlayers = 0;
  isa_program_free(&p);
  if (!good)
    return;
  CHECK(layers_shdr(good)->sh_size == 144, "table of %llu bytes", (unsigned long long)layers_shdr(good)->sh_size);
  isa_program q;
  CHECK(isa_program_parse(&q, good, good_len, err, sizeof err) == 0 && same_layers(&q, sample_layers, 3),
        "good image: %s", err);
  isa_program_free(&q);

  layer_rejects(0, 4, 2, ".systole.layers: unknown version 2 (this reader knows 1)");
  layer_rejects(4, 4, 4, ".systole.layers: 4 entries cannot fit in 144 bytes");
  layer_rejects(4, 4, 0xffffffff, "entries cannot fit");
  layer_rejects(4, 4, 2, ".systole.layers: 40 bytes after the last entry");
  layer_rejects(32, 1, 0, "entry 0: name length 0 is outside 1..127");
  layer_rejects(32, 1, 128, "entry 0: name length 128 is outside 1..127");
  layer_rejects(33, 1, 32, "entry 0: op length 32 is more than 31");
  layer_rejects(34, 1, 1, "entry 0: reserved bytes are not zero");
  layer_rejects(39, 1, 0x80, "entry 0: reserved bytes are not zero");
  layer_rejects(54, 1, 'x', "entry 0: the padding after the names is not zero");
  layer_rejects(97, 1, 1, "entry 1: the padding after the names is not zero");
  layer_rejects(40, 1, 0x01, "entry 0: a name is not UTF-8 without control characters");
  layer_rejects(40, 1, 0, "entry 0: a name is not UTF-8");
  layer_rejects(50, 1, 0xff, "entry 0: a name is not UTF-8");
  layer_rejects(95, 1, 0x41, "entry 1: a name is not UTF-8"); // cuts the two-byte é
  layer_rejects(32, 1, 14, "entry 0: a name is not UTF-8"); // the op runs into padding and the next entry
  layer_rejects(33, 1, 0, "entry 0: the padding after the names is not zero");
  layer_rejects(16, 8, 7, "entry 0: 'conv1': instructions 0..7 are not a range within the 6 of .text");
  layer_rejects(8, 8, 3, "entry 0: 'conv1': instructions 3..2 are not a range");
  layer_rejects(112, 8, UINT64_MAX, "entry 2: 'fc': instructions 5..18446744073709551615");
  layer_rejects(56, 8, 1, "entry 1: 'pool/1 \xc3\xa9': starts at instruction 1, before the previous layer ends (2)");
  layer_rejects(104, 8, 4, "entry 2: 'fc': starts at instruction 4, before the previous layer ends (5)");
  shdr_rejects(m_short, ".systole.layers: 4 bytes is too short for the header");
  shdr_rejects(m_trail, ".systole.layers: 8 bytes after the last entry");
  shdr_rejects(m_cut, ".systole.layers: entry 2 is truncated (32 bytes of 40)");
  shdr_rejects(m_cut_head, ".systole.layers: entry 2 is truncated");
  shdr_rejects(m_alloc, "section .systole.layers must not be loadable");
  shdr_rejects(m_nobits, "section .systole.layers: type 8 is not PROGBITS");
  shdr_rejects(m_outside, "lies outside the file");
  shdr_rejects(m_two, "more than one .systole.layers section");

  // Every truncation of the file and random bytes in the table: an error or
  // a valid program, never a crash (the sanitizer build checks the reads).
  for (size_t n = 0; n < good_len; n++) {
    uint8_t *b = malloc(n ? n : 1);
    memcpy(b, good, n);
    int rc = isa_program_parse(&q, b, n, err, sizeof err);
    CHECK(rc == -1, "truncated to %zu bytes: parsed", n);
    free(b);
  }
  int parsed = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t *b = malloc(good_len);
    memcpy(b, good, good_len);
    int flips = 1 + (int)(test_rand() % 4);
    for (int k = 0; k < flips; k++) {
      size_t off = test_rand() % 144;
      table(b)[off] = test_rand() % 3 ? (uint8_t)test_rand() : (uint8_t)(table(b)[off] ^ (1u << test_rand() % 8));
    }
    if (isa_program_parse(&q, b, good_len, err, sizeof err) == 0) {
      parsed++;
      for (size_t i = 0; i < q.nlayers; i++)
        CHECK(q.layers[i].pc_begin <= q.layers[i].pc_end && q.layers[i].pc_end <= q.ncode &&
                  (i == 0 || q.layers[i].pc_begin >= q.layers[i - 1].pc_end),
              "accepted a bad range");
      isa_program_free(&q);
    }
    free(b);
  }
  CHECK(parsed > 0 && parsed < 20000, "corruption mix: %d parsed", parsed);
  free(good);
}

// A regular file is mapped, anything else read; a segment over a megabyte
// (prefaulted memory) reads back the same bytes either way.
static void test_big_segment_and_pipe(void) {
  isa_program p = sample();
  size_t big = (3u << 20) + 12345;
  uint8_t *data = malloc(big);
  for (size_t i = 0; i < big; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
  p.segs = realloc(p.segs, (p.nsegs + 1) * sizeof *p.segs);
  p.segs[p.nsegs++] = (isa_segment){.kind = SEG_HBM, .addr = 1 << 20, .data = data, .size = big};
  CHECK(isa_program_write(&p, path, err, sizeof err) == 0, "write: %s", err);
  char fifo[300];
  snprintf(fifo, sizeof fifo, "%s.fifo", path);
  remove(fifo);
  CHECK(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
  pid_t pid = fork();
  if (pid == 0) { // the writer: the file's bytes into the pipe
    size_t len;
    char *b = test_read_file(path, &len);
    FILE *f = fopen(fifo, "wb");
    size_t put = b && f ? fwrite(b, 1, len, f) : 0;
    _exit(b && f && fclose(f) == 0 && put == len ? 0 : 1);
  }
  for (int via_pipe = 0; via_pipe < 2; via_pipe++) {
    isa_program q;
    int rc = isa_program_read(&q, via_pipe ? fifo : path, err, sizeof err);
    CHECK(rc == 0, "read %s: %s", via_pipe ? "a pipe" : "a file", err);
    const isa_segment *g = NULL;
    for (size_t i = 0; !rc && i < q.nsegs; i++)
      if (q.segs[i].kind == SEG_HBM) g = &q.segs[i];
    CHECK(g && g->addr == 1 << 20 && g->size == big && !memcmp(g->data, data, big),
          "the big segment through %s", via_pipe ? "a pipe" : "a file");
    CHECK(q.ncode == 6 && q.nio == 1, "the rest through %s", via_pipe ? "a pipe" : "a file");
    isa_program_free(&q);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the pipe's writer failed");
  remove(fifo);
  isa_program_free(&p);
}

// isa_file_load, which every reader of an input file uses: mapped or read, the
// limit exact to the byte (for a file and a pipe), text NUL-terminated and
// refused with a NUL inside, errors naming the path and the reason.
static void put_file(const char *name, const void *b, size_t n) {
  FILE *f = fopen(name, "wb");
  CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "write %s", name);
}

static void test_file_load(void) {
  char name[300], fifo[300];
  snprintf(name, sizeof name, "%s.load", path);
  snprintf(fifo, sizeof fifo, "%s.loadfifo", path);
  const char text[] = "abc\ndef\n";
  put_file(name, text, 8);
  isa_file f;
  for (int as_text = 0; as_text < 2; as_text++) {
    CHECK(isa_file_load(&f, name, as_text, 8, "a test", err, sizeof err) == 0 && f.len == 8 &&
              !memcmp(f.data, text, 8), "limit == size (text %d): %s", as_text, err);
    CHECK(!as_text || (f.owned && f.data[8] == 0), "text is read and NUL-terminated");
    CHECK(as_text || !f.owned, "a regular binary file is mapped");
    isa_file_release(&f);
    CHECK(isa_file_load(&f, name, as_text, 7, "a test", err, sizeof err) == -1 &&
              strstr(err, ".load: too large for a test (over 7 bytes)") && !f.data, "over the limit: %s", err);
  }
  put_file(name, "ab\0cd", 5);
  CHECK(isa_file_load(&f, name, true, 100, "a test", err, sizeof err) == -1 &&
            strstr(err, ": not a test (contains a NUL byte)"), "NUL in text: %s", err);
  CHECK(isa_file_load(&f, name, false, 100, "a test", err, sizeof err) == 0 && f.len == 5 &&
            !memcmp(f.data, "ab\0cd", 5), "NUL in binary: %s", err);
  isa_file_release(&f);
  put_file(name, "", 0); // empty: cannot be mapped, read as zero bytes
  CHECK(isa_file_load(&f, name, false, 100, "a test", err, sizeof err) == 0 && f.len == 0 && f.data,
        "empty file: %s", err);
  isa_file_release(&f);
  CHECK(isa_file_load(&f, "/nonexistent/x", false, 100, "a test", err, sizeof err) == -1 &&
            !strcmp(err, "/nonexistent/x: cannot open: No such file or directory"), "%s", err);
  CHECK(isa_file_load(&f, "/tmp", true, 100, "a test", err, sizeof err) == -1 &&
            !strcmp(err, "/tmp: cannot read: Is a directory"), "%s", err);
  // A pipe of 70000 bytes (past the first buffer): at the limit, and one over.
  size_t n = 70000;
  char *b = malloc(n);
  for (size_t i = 0; i < n; i++) b[i] = (char)('a' + i % 26);
  for (int over = 0; over < 2; over++) {
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    pid_t pid = fork();
    if (pid == 0) {
      FILE *w = fopen(fifo, "wb");
      size_t put = w ? fwrite(b, 1, n, w) : 0;
      _exit(w && fclose(w) == 0 && put == n ? 0 : 1);
    }
    int rc = isa_file_load(&f, fifo, true, over ? n - 1 : n, "a test", err, sizeof err);
    if (over)
      CHECK(rc == -1 && strstr(err, "too large for a test (over 69999 bytes)"), "pipe over the limit: %s", err);
    else
      CHECK(rc == 0 && f.len == n && !memcmp(f.data, b, n) && f.data[n] == 0, "pipe at the limit: %s", err);
    isa_file_release(&f);
    int status = -1;
    waitpid(pid, &status, 0); // the writer may see EPIPE when the reader stops early
    CHECK(WIFEXITED(status) || WIFSIGNALED(status), "the pipe's writer ended");
  }
  free(b);
  remove(fifo);
  remove(name);
}

// A program read from a file borrows its segments from the file (no copy,
// kept until the program is freed); one parsed from memory copies them, since
// the caller's buffer may go away.
static void test_segments_borrowed(void) {
  isa_program p = sample(), q, m;
  uint8_t hbm[5000], host[3] = {7, 8, 9};
  for (size_t i = 0; i < sizeof hbm; i++) hbm[i] = (uint8_t)(i * 31);
  isa_segment segs[2] = {{.kind = SEG_HBM, .addr = 0x1000, .data = hbm, .size = sizeof hbm},
                         {.kind = SEG_HOST, .addr = 0x40, .data = host, .size = sizeof host}};
  isa_segment *own = p.segs;
  size_t nown = p.nsegs;
  p.segs = segs, p.nsegs = 2;
  size_t len;
  uint8_t *buf = file_bytes(&p, &len);
  CHECK(buf != NULL, "written");
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0 && q.nsegs == 2, "read: %s", err);
  for (size_t i = 0; i < q.nsegs && i < 2; i++) {
    const isa_segment *g = &q.segs[i], *want = g->kind == SEG_HBM ? &segs[0] : &segs[1];
    CHECK(g->borrowed && g->data >= q.file.data && g->data + g->size <= q.file.data + q.file.len,
          "segment %zu lies in the file", i);
    CHECK(g->size == want->size && !memcmp(g->data, want->data, g->size), "segment %zu's bytes", i);
  }
  // Saved to the path it was read from: the new file is written beside and
  // renamed over, so the borrowed bytes stay (truncating in place would take
  // them from under the writer: SIGBUS).
  CHECK(isa_program_write(&q, path, err, sizeof err) == 0, "saved over its own file: %s", err);
  CHECK(q.nsegs == 2 && !memcmp(q.segs[0].data, q.segs[0].kind == SEG_HBM ? hbm : host, q.segs[0].size),
        "the borrowed bytes after the save");
  isa_program r;
  CHECK(isa_program_read(&r, path, err, sizeof err) == 0 && r.nsegs == 2 && r.segs[0].size == q.segs[0].size &&
            !memcmp(r.segs[0].data, q.segs[0].data, r.segs[0].size),
        "read back after the save: %s", err);
  isa_program_free(&r);
  isa_program_free(&q);
  CHECK(q.file.data == NULL && q.segs == NULL, "freed, the file released");
  CHECK(buf && isa_program_parse(&m, buf, len, err, sizeof err) == 0 && m.nsegs == 2, "parse: %s", err);
  for (size_t i = 0; i < m.nsegs && i < 2; i++)
    CHECK(!m.segs[i].borrowed && (m.segs[i].data < buf || m.segs[i].data >= buf + len), "parsed segment %zu copied", i);
  isa_program_free(&m);
  free(buf);
  p.segs = own, p.nsegs = nown;
  isa_program_free(&p);
}

int main(void) {
  snprintf(path, sizeof path, "%s/test_binfile.%d.stx", SYSTOLE_BUILD_DIR, (int)getpid());
  test_seed(7);
  test_round_trip();
  test_segments_borrowed();
  test_writer_refuses();
  test_reader_refuses();
  test_big_segment_and_pipe();
  test_file_load();
  remove(path);
  return test_done("test_binfile");
}
