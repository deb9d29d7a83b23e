// Program files: an ELF64 little-endian executable with machine ISA_ELF_MACHINE
// (docs/isa.md, "Program files"), so readelf and objdump can look inside.
// Sections: .text (instruction words), .smem (the SMEM image from 0), and one
// .hbm.<hex> or .host.<hex> per data segment, sh_addr holding the address;
// .systole.io (the I/O signature), .systole.chip and .systole.layers when the
// program has them.
//
// The reader trusts nothing: every offset, size and name is checked against
// the buffer before it is used, and a bad file gets "name: reason".
#include "isa/isa.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Headers are copied in and out with memcpy, so they are in host order.
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "binfile.c assumes a little-endian host"
#endif

#define MAX_SMEM_IMAGE (1ull << 32)

static int fail(char *err, size_t errlen, const char *name, const char *fmt, ...) {
  char msg[ISA_ERR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s: %s", name, msg);
  return -1;
}

void isa_program_free(isa_program *p) {
  if (!p)
    return;
  free(p->code);
  for (size_t i = 0; i < p->nsegs; i++)
    if (!p->segs[i].borrowed)
      free(p->segs[i].data);
  free(p->segs);
  free(p->io);
  free(p->layers);
  isa_file_release(&p->file);
  *p = (isa_program){0};
}

// ---------------------------------------------------------------- the I/O signature

const char *const isa_io_dtype_names[IO_DTYPES] = {"f32", "bf16", "i32", "i8",  "i64", "u8",
                                                   "bool", "i16",  "u16", "u32", "u64"};
const int isa_io_dtype_bytes[IO_DTYPES] = {4, 2, 4, 1, 8, 1, 1, 2, 2, 4, 8};
const char *const isa_io_mem_names[2] = {"host", "hbm"};

#define IO_VERSION 1
#define IO_HEADER 8 // u32 version, u32 count
#define IO_ENTRY 16 // fixed part of an entry, before dims and name

bool isa_io_name_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  if (n == 0 || n > ISA_IO_MAX_NAME)
    return false;
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    if (c < 0x20 || c == 0x7f)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Continuation count and the least code point for that length (no overlongs).
    size_t k = c >= 0xc2 && c <= 0xdf ? 1 : (c & 0xf0) == 0xe0 ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (!k || n - i <= k)
      return false;
    uint32_t cp = c & (0x3f >> k);
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

// Elements x element size, false on overflow of 64 bits.
static bool io_size(const isa_io *t, uint64_t *bytes) {
  uint64_t n = (uint64_t)isa_io_dtype_bytes[t->dtype];
  for (int i = 0; i < t->rank; i++) {
    uint64_t d = (uint64_t)t->dims[i]; // 0 for an empty tensor
    if (d != 0 && n > UINT64_MAX / d)
      return false;
    n *= d;
  }
  *bytes = n;
  return true;
}

bool isa_io_valid(const isa_io *t, char *why, size_t whylen) {
  size_t n = strnlen(t->name, sizeof t->name);
  if (n == sizeof t->name || !isa_io_name_valid(t->name, n)) {
    snprintf(why, whylen, "the name is not 1..%d bytes of UTF-8 without control characters",
             ISA_IO_MAX_NAME);
    return false;
  }
  if ((unsigned)t->role > IO_OUTPUT) {
    snprintf(why, whylen, "'%s': unknown role %d", t->name, (int)t->role);
    return false;
  }
  if ((unsigned)t->dtype >= IO_DTYPES) {
    snprintf(why, whylen, "'%s': unknown element type %d", t->name, (int)t->dtype);
    return false;
  }
  if ((unsigned)t->mem > IO_MEM_HBM) {
    snprintf(why, whylen, "'%s': unknown memory %d", t->name, (int)t->mem);
    return false;
  }
  if (t->rank < 0 || t->rank > ISA_IO_MAX_RANK) {
    snprintf(why, whylen, "'%s': rank %d is outside 0..%d", t->name, t->rank, ISA_IO_MAX_RANK);
    return false;
  }
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0) {
      snprintf(why, whylen, "'%s': dimension %d is %lld, negative", t->name, i,
               (long long)t->dims[i]);
      return false;
    }
  }
  uint64_t bytes;
  if (!io_size(t, &bytes)) {
    snprintf(why, whylen, "'%s': the byte size overflows 64 bits", t->name);
    return false;
  }
  if (bytes && t->addr + (bytes - 1) < t->addr) {
    snprintf(why, whylen, "'%s': %llu bytes at 0x%llx run past the end of memory", t->name,
             (unsigned long long)bytes, (unsigned long long)t->addr);
    return false;
  }
  return true;
}

uint64_t isa_io_bytes(const isa_io *t) {
  char why[8];
  uint64_t bytes = 0;
  if (!isa_io_valid(t, why, sizeof why) || !io_size(t, &bytes))
    return 0;
  return bytes;
}

// Two tensors of the same role with the same name: the first's index, or -1.
static long duplicate_io(const isa_io *io, size_t n, size_t *second) {
  for (size_t j = 1; j < n; j++)
    for (size_t i = 0; i < j; i++)
      if (io[i].role == io[j].role && !strcmp(io[i].name, io[j].name)) {
        *second = j;
        return (long)i;
      }
  return -1;
}

static size_t io_entry_size(const isa_io *t) {
  return IO_ENTRY + 8 * (size_t)t->rank + ((strlen(t->name) + 7) & ~(size_t)7);
}

static void put_le(uint8_t *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    b[i] = (uint8_t)(v >> 8 * i);
}

static uint64_t get_le(const uint8_t *b, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v |= (uint64_t)b[i] << 8 * i;
  return v;
}

// The .systole.io table of valid tensors (checked by the caller); NULL if out of memory.
static uint8_t *io_table(const isa_program *p, size_t *size) {
  size_t n = IO_HEADER;
  for (size_t i = 0; i < p->nio; i++)
    n += io_entry_size(&p->io[i]);
  uint8_t *b = calloc(n, 1);
  if (!b)
    return NULL;
  put_le(b, IO_VERSION, 4);
  put_le(b + 4, p->nio, 4);
  uint8_t *e = b + IO_HEADER;
  for (size_t i = 0; i < p->nio; i++) {
    const isa_io *t = &p->io[i];
    size_t len = strlen(t->name);
    e[0] = (uint8_t)t->role, e[1] = (uint8_t)t->dtype, e[2] = (uint8_t)t->mem, e[3] = (uint8_t)t->rank;
    put_le(e + 4, len, 2);
    put_le(e + 8, t->addr, 8);
    for (int d = 0; d < t->rank; d++)
      put_le(e + IO_ENTRY + 8 * d, (uint64_t)t->dims[d], 8);
    memcpy(e + IO_ENTRY + 8 * t->rank, t->name, len);
    e += io_entry_size(t);
  }
  *size = n;
  return b;
}

static int check_io(const isa_program *p, const char *path, char *err, size_t errlen) {
  char why[ISA_ERR_LEN - 64];
  if (p->nio && !p->io)
    return fail(err, errlen, path, "%zu I/O tensors but no table", p->nio);
  if (p->nio > UINT32_MAX)
    return fail(err, errlen, path, "too many I/O tensors (%zu)", p->nio);
  for (size_t i = 0; i < p->nio; i++)
    if (!isa_io_valid(&p->io[i], why, sizeof why))
      return fail(err, errlen, path, "I/O tensor %zu: %s", i, why);
  size_t second;
  long first = duplicate_io(p->io, p->nio, &second);
  if (first >= 0)
    return fail(err, errlen, path, "I/O tensors %ld and %zu are both %s '%s'", first, second,
                p->io[second].role == IO_INPUT ? "inputs named" : "outputs named", p->io[second].name);
  size_t n = strnlen(p->chip, sizeof p->chip);
  if (n == sizeof p->chip || (n && !isa_io_name_valid(p->chip, n)))
    return fail(err, errlen, path, "the chip name is not 1..%d bytes of UTF-8 without control "
                "characters", ISA_CHIP_MAX_NAME);
  return 0;
}

// ---------------------------------------------------------------- layers
//
// .systole.layers: u32 version, u32 count, then per layer (8-aligned):
//   0 pc_begin u64, 8 pc_end u64, 16 macs u64, 24 name length N u8 (1..127),
//   25 op length K u8 (0..31), 26..31 reserved zeros, 32 name, then op, then
//   zeros up to a multiple of 8.
#define LAYERS_VERSION 1
#define LAYER_HEADER 8
#define LAYER_ENTRY 32

static size_t layer_entry_size(const isa_layer *l) {
  return LAYER_ENTRY + ((strlen(l->name) + strlen(l->op) + 7) & ~(size_t)7);
}

// One layer's fields (names, pc range within ncode, after the previous layer);
// false with a reason.
static bool layer_valid(const isa_layer *l, uint64_t prev_end, size_t ncode, char *why, size_t whylen) {
  size_t n = strnlen(l->name, sizeof l->name), k = strnlen(l->op, sizeof l->op);
  if (n == sizeof l->name || !isa_io_name_valid(l->name, n)) {
    snprintf(why, whylen, "the name is not 1..%d bytes of UTF-8 without control characters",
             ISA_LAYER_NAME - 1);
    return false;
  }
  if (k == sizeof l->op || (k && !isa_io_name_valid(l->op, k))) {
    snprintf(why, whylen, "'%s': the op is not 0..%zu bytes of UTF-8 without control characters",
             l->name, sizeof l->op - 1);
    return false;
  }
  if (l->pc_begin > l->pc_end || l->pc_end > ncode) {
    snprintf(why, whylen, "'%s': instructions %llu..%llu are not a range within the %zu of .text",
             l->name, (unsigned long long)l->pc_begin, (unsigned long long)l->pc_end, ncode);
    return false;
  }
  if (l->pc_begin < prev_end) {
    snprintf(why, whylen, "'%s': starts at instruction %llu, before the previous layer ends (%llu)",
             l->name, (unsigned long long)l->pc_begin, (unsigned long long)prev_end);
    return false;
  }
  return true;
}

static int check_layers(const isa_program *p, const char *path, char *err, size_t errlen) {
  char why[ISA_ERR_LEN - 64];
  if (p->nlayers && !p->layers)
    return fail(err, errlen, path, "%zu layers but no table", p->nlayers);
  if (p->nlayers > UINT32_MAX)
    return fail(err, errlen, path, "too many layers (%zu)", p->nlayers);
  for (size_t i = 0; i < p->nlayers; i++)
    if (!layer_valid(&p->layers[i], i ? p->layers[i - 1].pc_end : 0, p->ncode, why, sizeof why))
      return fail(err, errlen, path, "layer %zu: %s", i, why);
  return 0;
}

static uint8_t *layer_table(const isa_program *p, size_t *size) {
  size_t n = LAYER_HEADER;
  for (size_t i = 0; i < p->nlayers; i++)
    n += layer_entry_size(&p->layers[i]);
  uint8_t *b = calloc(n, 1);
  if (!b)
    return NULL;
  put_le(b, LAYERS_VERSION, 4);
  put_le(b + 4, p->nlayers, 4);
  uint8_t *e = b + LAYER_HEADER;
  for (size_t i = 0; i < p->nlayers; i++) {
    const isa_layer *l = &p->layers[i];
    size_t nl = strlen(l->name), kl = strlen(l->op);
    put_le(e, l->pc_begin, 8);
    put_le(e + 8, l->pc_end, 8);
    put_le(e + 16, l->macs, 8);
    e[24] = (uint8_t)nl, e[25] = (uint8_t)kl;
    memcpy(e + LAYER_ENTRY, l->name, nl);
    memcpy(e + LAYER_ENTRY + nl, l->op, kl);
    e += layer_entry_size(l);
  }
  *size = n;
  return b;
}

static const char *const seg_prefix[] = {".smem", ".hbm.", ".host."};

// Segments of one kind must not overlap; sorted views make that one pass.
static int cmp_seg(const void *x, const void *y) {
  const isa_segment *s = *(const isa_segment *const *)x, *t = *(const isa_segment *const *)y;
  if (s->kind != t->kind)
    return s->kind < t->kind ? -1 : 1;
  if (s->addr != t->addr)
    return s->addr < t->addr ? -1 : 1;
  return 0;
}

// Returns the first of two overlapping non-empty segments, or NULL.
static const isa_segment *overlap(const isa_segment *segs, size_t n, const isa_segment **other) {
  const isa_segment **v = malloc((n + 1) * sizeof *v);
  const isa_segment *bad = NULL;
  size_t k = 0;
  if (!v)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (segs[i].size)
      v[k++] = &segs[i];
  qsort(v, k, sizeof *v, cmp_seg);
  for (size_t i = 1; i < k && !bad; i++) {
    if (v[i]->kind == v[i - 1]->kind && v[i - 1]->addr + v[i - 1]->size > v[i]->addr) {
      bad = v[i - 1];
      *other = v[i];
    }
  }
  free(v);
  return bad;
}

// ---------------------------------------------------------------- writing

typedef struct {
  char name[32];
  uint32_t type;
  uint64_t flags, addr;
  const void *data;
  uint64_t size, off;
} Sec;

// Writes n bytes (zeros if src is NULL), tracking the file position.
static bool out(FILE *f, const void *src, size_t n, uint64_t *pos) {
  static const uint8_t zeros[64];
  *pos += n;
  if (src)
    return fwrite(src, 1, n, f) == n;
  for (; n; n -= n > 64 ? 64 : n)
    if (fwrite(zeros, 1, n > 64 ? 64 : n, f) != (n > 64 ? 64 : n))
      return false;
  return true;
}

static bool pad_to(FILE *f, uint64_t to, uint64_t *pos) { return out(f, NULL, to - *pos, pos); }

static int write_file(const char *path, Sec *secs, int nsec, char *err, size_t errlen) {
  // .shstrtab is the last section; build it now that every name is known.
  size_t strsize = 1;
  for (int i = 1; i < nsec; i++)
    strsize += strlen(secs[i].name) + 1;
  char *strtab = calloc(strsize, 1);
  if (!strtab)
    return fail(err, errlen, path, "out of memory");
  Elf64_Shdr *sh = calloc((size_t)nsec, sizeof *sh);
  if (!sh) {
    free(strtab);
    return fail(err, errlen, path, "out of memory");
  }
  size_t at = 1;
  uint64_t pos = sizeof(Elf64_Ehdr);
  for (int i = 1; i < nsec; i++) {
    sh[i].sh_name = (uint32_t)at;
    memcpy(strtab + at, secs[i].name, strlen(secs[i].name) + 1);
    at += strlen(secs[i].name) + 1;
  }
  secs[nsec - 1].data = strtab;
  secs[nsec - 1].size = strsize;
  for (int i = 1; i < nsec; i++) {
    pos = (pos + 7) & ~7ull;
    secs[i].off = pos;
    pos += secs[i].size;
    sh[i].sh_type = secs[i].type;
    sh[i].sh_flags = secs[i].flags;
    sh[i].sh_addr = secs[i].addr;
    sh[i].sh_offset = secs[i].off;
    sh[i].sh_size = secs[i].size;
    sh[i].sh_addralign = secs[i].type == SHT_STRTAB ? 1 : 8;
    sh[i].sh_entsize = i == 1 ? 8 : 0; // .text: one instruction per 8 bytes
  }
  uint64_t shoff = (pos + 7) & ~7ull;
  Elf64_Ehdr eh = {
      .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT,
                  ELFOSABI_NONE},
      .e_type = ET_EXEC,
      .e_machine = ISA_ELF_MACHINE,
      .e_version = EV_CURRENT,
      .e_shoff = shoff,
      .e_ehsize = sizeof(Elf64_Ehdr),
      .e_shentsize = sizeof(Elf64_Shdr),
      .e_shnum = (uint16_t)nsec,
      .e_shstrndx = (uint16_t)(nsec - 1),
  };
  // A regular file is written beside and renamed over the old one: a program
  // read from the old one keeps its bytes mapped (its segments borrow them),
  // the same process saving to the path it loaded from included, and no one
  // sees a half-written file. Anything else (a FIFO, /dev/stdout, a symbolic
  // link) directly.
  struct stat st;
  bool direct = !lstat(path, &st) && !S_ISREG(st.st_mode);
  char tmp[4096];
  if (!direct && snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) direct = true;
  FILE *f = fopen(direct ? path : tmp, "wb");
  if (!f) {
    int e = errno;
    free(strtab);
    free(sh);
    return fail(err, errlen, path, "%s", strerror(e));
  }
  pos = 0;
  bool ok = out(f, &eh, sizeof eh, &pos);
  for (int i = 1; i < nsec && ok; i++)
    ok = pad_to(f, secs[i].off, &pos) && out(f, secs[i].data, secs[i].size, &pos);
  ok = ok && pad_to(f, shoff, &pos) && out(f, sh, (size_t)nsec * sizeof *sh, &pos);
  int saved = errno;
  ok = fclose(f) == 0 && ok;
  if (!ok && !saved) saved = errno;
  if (ok && !direct && rename(tmp, path)) ok = false, saved = errno;
  if (!ok && !direct) remove(tmp);
  free(strtab);
  free(sh);
  if (!ok)
    return fail(err, errlen, path, "write failed: %s", strerror(saved));
  return 0;
}

// SMEM segments at any address become one image from 0, as the file holds it.
static int smem_image(const isa_program *p, uint8_t **img, uint64_t *size, const char *path,
                      char *err, size_t errlen) {
  uint64_t end = 0;
  *img = NULL;
  for (size_t i = 0; i < p->nsegs; i++) {
    const isa_segment *s = &p->segs[i];
    if (s->kind != SEG_SMEM || !s->size)
      continue;
    if (s->addr > MAX_SMEM_IMAGE || s->size > MAX_SMEM_IMAGE - s->addr)
      return fail(err, errlen, path, "SMEM segment at 0x%llx is beyond 4 GiB",
                  (unsigned long long)s->addr);
    if (s->addr + s->size > end)
      end = s->addr + s->size;
  }
  *size = end;
  if (!end)
    return 0;
  if (!(*img = calloc(end, 1)))
    return fail(err, errlen, path, "out of memory");
  for (size_t i = 0; i < p->nsegs; i++)
    if (p->segs[i].kind == SEG_SMEM && p->segs[i].size)
      memcpy(*img + p->segs[i].addr, p->segs[i].data, p->segs[i].size);
  return 0;
}

static int check_segments(const isa_program *p, const char *path, char *err, size_t errlen) {
  for (size_t i = 0; i < p->nsegs; i++) {
    const isa_segment *s = &p->segs[i];
    if ((unsigned)s->kind > SEG_HOST)
      return fail(err, errlen, path, "segment %zu has an unknown kind %d", i, (int)s->kind);
    if (s->size && !s->data)
      return fail(err, errlen, path, "segment %zu has no data", i);
    if (s->size && s->addr + s->size - 1 < s->addr)
      return fail(err, errlen, path, "segment at 0x%llx runs past the end of memory",
                  (unsigned long long)s->addr);
  }
  const isa_segment *other, *bad = overlap(p->segs, p->nsegs, &other);
  if (bad)
    return fail(err, errlen, path, "segments at 0x%llx and 0x%llx overlap",
                (unsigned long long)bad->addr, (unsigned long long)other->addr);
  return 0;
}

int isa_program_write(const isa_program *p, const char *path, char *err, size_t errlen) {
  if (check_segments(p, path, err, errlen) || check_io(p, path, err, errlen) ||
      check_layers(p, path, err, errlen))
    return -1;
  if (p->ncode > SIZE_MAX / 8)
    return fail(err, errlen, path, "too much code");
  uint8_t *smem = NULL;
  uint64_t smem_size = 0;
  if (smem_image(p, &smem, &smem_size, path, err, errlen))
    return -1;
  Sec *secs = calloc(p->nsegs + 7, sizeof *secs);
  size_t io_size = 0, layers_size = 0;
  uint8_t *io = p->nio ? io_table(p, &io_size) : NULL;
  uint8_t *layers = p->nlayers ? layer_table(p, &layers_size) : NULL;
  if (!secs || (p->nio && !io) || (p->nlayers && !layers)) {
    free(secs);
    free(io);
    free(layers);
    free(smem);
    return fail(err, errlen, path, "out of memory");
  }
  int n = 1; // section 0 is the null section
  secs[n++] = (Sec){".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0, p->code, p->ncode * 8, 0};
  if (smem_size)
    secs[n++] = (Sec){".smem", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 0, smem, smem_size, 0};
  for (size_t i = 0; i < p->nsegs; i++) {
    const isa_segment *s = &p->segs[i];
    if (s->kind == SEG_SMEM || !s->size)
      continue;
    secs[n] = (Sec){"", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, s->addr, s->data, s->size, 0};
    snprintf(secs[n].name, sizeof secs[n].name, "%s%llx", seg_prefix[s->kind],
             (unsigned long long)s->addr);
    n++;
  }
  if (p->nio)
    secs[n++] = (Sec){".systole.io", SHT_PROGBITS, 0, 0, io, io_size, 0};
  if (p->chip[0]) // the name and its NUL
    secs[n++] = (Sec){".systole.chip", SHT_PROGBITS, 0, 0, p->chip, strlen(p->chip) + 1, 0};
  if (p->nlayers)
    secs[n++] = (Sec){".systole.layers", SHT_PROGBITS, 0, 0, layers, layers_size, 0};
  secs[n++] = (Sec){".shstrtab", SHT_STRTAB, 0, 0, NULL, 0, 0};
  int rc = -1;
  if (n > SHN_LORESERVE - 1)
    fail(err, errlen, path, "too many segments (%d sections)", n);
  else
    rc = write_file(path, secs, n, err, errlen);
  free(secs);
  free(io);
  free(layers);
  free(smem);
  return rc;
}

// ---------------------------------------------------------------- reading

// A section name for messages, with anything unprintable shown as '?'.
static const char *shown(const char *s, char *buf, size_t len) {
  size_t i = 0;
  for (; s[i] && i + 1 < len; i++)
    buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  buf[i] = 0;
  return buf;
}

// The address in ".hbm.<hex>": lowercase, no leading zeros, as written.
static bool parse_hex_name(const char *s, uint64_t *v) {
  size_t n = strlen(s);
  if (n == 0 || n > 16 || (n > 1 && s[0] == '0'))
    return false;
  *v = 0;
  for (size_t i = 0; i < n; i++) {
    int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
    if (d < 0)
      return false;
    *v = *v << 4 | (uint64_t)d;
  }
  return true;
}

static bool in_bounds(uint64_t off, uint64_t size, size_t len) {
  return off <= len && size <= len - off;
}

static int check_header(const Elf64_Ehdr *eh, size_t len, const char *name, char *err,
                        size_t errlen) {
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
    return fail(err, errlen, name, "not an ELF file (bad magic)");
  if (eh->e_ident[EI_CLASS] != ELFCLASS64)
    return fail(err, errlen, name, "not a 64-bit ELF file (class %d)", eh->e_ident[EI_CLASS]);
  if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
    return fail(err, errlen, name, "not a little-endian ELF file");
  if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
    return fail(err, errlen, name, "unknown ELF version");
  if (eh->e_machine != ISA_ELF_MACHINE)
    return fail(err, errlen, name, "machine 0x%x is not Systole (0x%x)", eh->e_machine,
                ISA_ELF_MACHINE);
  if (eh->e_type != ET_EXEC)
    return fail(err, errlen, name, "ELF type %d is not an executable", eh->e_type);
  if (eh->e_ehsize != sizeof(Elf64_Ehdr) || eh->e_shentsize != sizeof(Elf64_Shdr))
    return fail(err, errlen, name, "unexpected ELF header or section header size");
  if (eh->e_shnum == 0)
    return fail(err, errlen, name, "no section headers");
  if (!in_bounds(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), len))
    return fail(err, errlen, name, "section headers (%u at offset %llu) lie outside the file",
                eh->e_shnum, (unsigned long long)eh->e_shoff);
  if (eh->e_phnum &&
      (eh->e_phentsize != sizeof(Elf64_Phdr) ||
       !in_bounds(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len)))
    return fail(err, errlen, name, "program headers lie outside the file");
  if (eh->e_shstrndx == SHN_UNDEF || eh->e_shstrndx >= eh->e_shnum)
    return fail(err, errlen, name, "bad section name table index %u", eh->e_shstrndx);
  return 0;
}

// The parser's state: the file, its section headers, the program so far.
typedef struct {
  const uint8_t *buf;
  size_t len;
  const char *name;
  char *err;
  size_t errlen;
  Elf64_Shdr *sh;
  unsigned nsh;
  const char *strtab;
  uint64_t strsize;
  isa_program *p;
  bool borrow; // segments point into buf, which outlives the program (isa_program_read)
  bool have_text, have_smem, have_io, have_chip;
  const Elf64_Shdr *layers; // read last: its pc ranges are checked against .text
} Reader;

#define IO_FAIL(...) fail(r->err, r->errlen, r->name, ".systole.io: " __VA_ARGS__)

// The I/O table (docs/isa.md, section 8), every field checked before use.
static int read_io(Reader *r, const uint8_t *b, uint64_t size) {
  if (r->have_io)
    return fail(r->err, r->errlen, r->name, "more than one .systole.io section");
  r->have_io = true;
  if (size < IO_HEADER)
    return IO_FAIL("%llu bytes is too short for the header", (unsigned long long)size);
  uint32_t version = (uint32_t)get_le(b, 4), count = (uint32_t)get_le(b + 4, 4);
  if (version != IO_VERSION)
    return IO_FAIL("unknown version %u (this reader knows %d)", version, IO_VERSION);
  if (count > (size - IO_HEADER) / (IO_ENTRY + 8))
    return IO_FAIL("%u entries cannot fit in %llu bytes", count, (unsigned long long)size);
  isa_io *io = calloc(count ? count : 1, sizeof *io);
  if (!io)
    return fail(r->err, r->errlen, r->name, "out of memory");
  r->p->io = io;
  uint64_t at = IO_HEADER;
  char why[ISA_ERR_LEN - 64];
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = b + at;
    if (size - at < IO_ENTRY)
      return IO_FAIL("entry %u is truncated", i);
    isa_io *t = &io[i];
    unsigned rank = e[3], len = (unsigned)get_le(e + 4, 2);
    if (e[0] > IO_OUTPUT)
      return IO_FAIL("entry %u: unknown role %u", i, e[0]);
    if (e[1] >= IO_DTYPES)
      return IO_FAIL("entry %u: unknown element type %u", i, e[1]);
    if (e[2] > IO_MEM_HBM)
      return IO_FAIL("entry %u: unknown memory %u", i, e[2]);
    if (rank > ISA_IO_MAX_RANK)
      return IO_FAIL("entry %u: rank %u is more than %d", i, rank, ISA_IO_MAX_RANK);
    if (len == 0 || len > ISA_IO_MAX_NAME)
      return IO_FAIL("entry %u: name length %u is outside 1..%d", i, len, ISA_IO_MAX_NAME);
    if (get_le(e + 6, 2))
      return IO_FAIL("entry %u: reserved bytes are not zero", i);
    uint64_t esize = IO_ENTRY + 8 * (uint64_t)rank + ((len + 7u) & ~7u);
    if (size - at < esize)
      return IO_FAIL("entry %u is truncated (%llu bytes of %llu)", i,
                     (unsigned long long)(size - at), (unsigned long long)esize);
    t->role = (isa_io_role)e[0];
    t->dtype = (isa_io_dtype)e[1];
    t->mem = (isa_io_mem)e[2];
    t->rank = (int)rank;
    t->addr = get_le(e + 8, 8);
    for (unsigned d = 0; d < rank; d++)
      t->dims[d] = (int64_t)get_le(e + IO_ENTRY + 8 * d, 8);
    const uint8_t *nm = e + IO_ENTRY + 8 * rank;
    if (!isa_io_name_valid((const char *)nm, len))
      return IO_FAIL("entry %u: the name is not UTF-8 without control characters", i);
    memcpy(t->name, nm, len);
    for (uint64_t k = len; k < ((len + 7u) & ~7u); k++)
      if (nm[k])
        return IO_FAIL("entry %u: the padding after the name is not zero", i);
    if (!isa_io_valid(t, why, sizeof why))
      return IO_FAIL("entry %u: %s", i, why);
    r->p->nio = i + 1;
    at += esize;
  }
  if (at != size)
    return IO_FAIL("%llu bytes after the last entry", (unsigned long long)(size - at));
  size_t second;
  long first = duplicate_io(io, count, &second);
  if (first >= 0)
    return IO_FAIL("entries %ld and %zu are both %s '%s'", first, second,
                   io[second].role == IO_INPUT ? "inputs named" : "outputs named", io[second].name);
  return 0;
}

static int read_chip(Reader *r, const uint8_t *b, uint64_t size) {
  if (r->have_chip)
    return fail(r->err, r->errlen, r->name, "more than one .systole.chip section");
  r->have_chip = true;
  if (size < 2 || size > ISA_CHIP_MAX_NAME + 1 || b[size - 1] ||
      !isa_io_name_valid((const char *)b, size - 1))
    return fail(r->err, r->errlen, r->name, ".systole.chip: not a name of 1..%d bytes of UTF-8 "
                "without control characters, ending in a NUL", ISA_CHIP_MAX_NAME);
  memcpy(r->p->chip, b, size);
  return 0;
}

#define LAYERS_FAIL(...) fail(r->err, r->errlen, r->name, ".systole.layers: " __VA_ARGS__)

// The layer table, every field checked before use, after .text is known.
static int read_layers(Reader *r, const uint8_t *b, uint64_t size) {
  if (size < LAYER_HEADER)
    return LAYERS_FAIL("%llu bytes is too short for the header", (unsigned long long)size);
  uint32_t version = (uint32_t)get_le(b, 4), count = (uint32_t)get_le(b + 4, 4);
  if (version != LAYERS_VERSION)
    return LAYERS_FAIL("unknown version %u (this reader knows %d)", version, LAYERS_VERSION);
  if (count > (size - LAYER_HEADER) / (LAYER_ENTRY + 8))
    return LAYERS_FAIL("%u entries cannot fit in %llu bytes", count, (unsigned long long)size);
  isa_layer *ls = calloc(count ? count : 1, sizeof *ls);
  if (!ls)
    return fail(r->err, r->errlen, r->name, "out of memory");
  r->p->layers = ls;
  uint64_t at = LAYER_HEADER;
  char why[ISA_ERR_LEN - 64];
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = b + at;
    if (size - at < LAYER_ENTRY)
      return LAYERS_FAIL("entry %u is truncated", i);
    unsigned nl = e[24], kl = e[25];
    if (nl == 0 || nl >= ISA_LAYER_NAME)
      return LAYERS_FAIL("entry %u: name length %u is outside 1..%d", i, nl, ISA_LAYER_NAME - 1);
    if (kl >= sizeof ls->op)
      return LAYERS_FAIL("entry %u: op length %u is more than %zu", i, kl, sizeof ls->op - 1);
    for (int k = 26; k < LAYER_ENTRY; k++)
      if (e[k])
        return LAYERS_FAIL("entry %u: reserved bytes are not zero", i);
    uint64_t padded = (nl + kl + 7u) & ~7u, esize = LAYER_ENTRY + padded;
    if (size - at < esize)
      return LAYERS_FAIL("entry %u is truncated (%llu bytes of %llu)", i,
                         (unsigned long long)(size - at), (unsigned long long)esize);
    for (uint64_t k = nl + kl; k < padded; k++)
      if (e[LAYER_ENTRY + k])
        return LAYERS_FAIL("entry %u: the padding after the names is not zero", i);
    isa_layer *l = &ls[i];
    l->pc_begin = get_le(e, 8);
    l->pc_end = get_le(e + 8, 8);
    l->macs = get_le(e + 16, 8);
    // Names with a NUL inside would pass as shorter ones: isa_io_name_valid refuses NULs.
    if (!isa_io_name_valid((const char *)e + LAYER_ENTRY, nl) ||
        (kl && !isa_io_name_valid((const char *)e + LAYER_ENTRY + nl, kl)))
      return LAYERS_FAIL("entry %u: a name is not UTF-8 without control characters", i);
    memcpy(l->name, e + LAYER_ENTRY, nl);
    memcpy(l->op, e + LAYER_ENTRY + nl, kl);
    if (!layer_valid(l, i ? ls[i - 1].pc_end : 0, r->p->ncode, why, sizeof why))
      return LAYERS_FAIL("entry %u: %s", i, why);
    r->p->nlayers = i + 1;
    at += esize;
  }
  if (at != size)
    return LAYERS_FAIL("%llu bytes after the last entry", (unsigned long long)(size - at));
  return 0;
}

static int add_segment(Reader *r, isa_seg_kind kind, const Elf64_Shdr *s) {
  if (!s->sh_size)
    return 0; // an empty segment says nothing
  isa_segment *v = realloc(r->p->segs, (r->p->nsegs + 1) * sizeof *v);
  if (!v)
    return fail(r->err, r->errlen, r->name, "out of memory");
  r->p->segs = v;
  if (r->borrow) { // no copy: a fresh run would fault in and copy ResNet-50's 51 MB of weights
    v[r->p->nsegs++] = (isa_segment){.kind = kind, .addr = s->sh_addr, .data = (uint8_t *)(uintptr_t)(r->buf + s->sh_offset),
                                     .size = s->sh_size, .borrowed = true};
    return 0;
  }
  uint8_t *data = isa_malloc_big(s->sh_size);
  if (!data)
    return fail(r->err, r->errlen, r->name, "out of memory");
  memcpy(data, r->buf + s->sh_offset, s->sh_size);
  v[r->p->nsegs++] = (isa_segment){.kind = kind, .addr = s->sh_addr, .data = data, .size = s->sh_size};
  return 0;
}

// One section header: bounds, name, and what it holds.
static int read_section(Reader *r, unsigned i) {
  const Elf64_Shdr *s = &r->sh[i];
  char buf[48];
  if (s->sh_name >= r->strsize)
    return fail(r->err, r->errlen, r->name, "section %u: name offset %u is outside .shstrtab", i,
                s->sh_name);
  const char *nm = r->strtab + s->sh_name;
  if (s->sh_type != SHT_NOBITS && !in_bounds(s->sh_offset, s->sh_size, r->len))
    return fail(r->err, r->errlen, r->name, "section %u (%s): data (%llu bytes at offset %llu) "
                "lies outside the file", i, shown(nm, buf, sizeof buf),
                (unsigned long long)s->sh_size, (unsigned long long)s->sh_offset);
  int kind = !strcmp(nm, ".text") ? 0 : !strcmp(nm, ".smem") ? 1
           : !strncmp(nm, ".hbm.", 5) ? 2 : !strncmp(nm, ".host.", 6) ? 3
           : !strcmp(nm, ".systole.io") ? 4 : !strcmp(nm, ".systole.chip") ? 5
           : !strcmp(nm, ".systole.layers") ? 6 : -1;
  if (kind < 0) {
    if (s->sh_flags & SHF_ALLOC)
      return fail(r->err, r->errlen, r->name, "section %u: unknown loadable section '%s'", i,
                  shown(nm, buf, sizeof buf));
    return 0; // notes, symbols, comments: not ours to judge
  }
  if (s->sh_type != SHT_PROGBITS)
    return fail(r->err, r->errlen, r->name, "section %s: type %u is not PROGBITS",
                shown(nm, buf, sizeof buf), s->sh_type);
  if (kind >= 4) {
    if (s->sh_flags & SHF_ALLOC)
      return fail(r->err, r->errlen, r->name, "section %s must not be loadable", nm);
    if (kind == 6) {
      if (r->layers)
        return fail(r->err, r->errlen, r->name, "more than one .systole.layers section");
      r->layers = s;
      return 0;
    }
    return kind == 4 ? read_io(r, r->buf + s->sh_offset, s->sh_size)
                     : read_chip(r, r->buf + s->sh_offset, s->sh_size);
  }
  if (kind == 0) {
    if (r->have_text)
      return fail(r->err, r->errlen, r->name, "more than one .text section");
    if (s->sh_size % 8)
      return fail(r->err, r->errlen, r->name, ".text size %llu is not a multiple of 8",
                  (unsigned long long)s->sh_size);
    r->have_text = true;
    r->p->ncode = s->sh_size / 8;
    if (!(r->p->code = malloc(s->sh_size ? s->sh_size : 1)))
      return fail(r->err, r->errlen, r->name, "out of memory");
    memcpy(r->p->code, r->buf + s->sh_offset, s->sh_size);
    return 0;
  }
  if (kind == 1) {
    if (r->have_smem)
      return fail(r->err, r->errlen, r->name, "more than one .smem section");
    if (s->sh_addr)
      return fail(r->err, r->errlen, r->name, ".smem address must be 0, not 0x%llx",
                  (unsigned long long)s->sh_addr);
    r->have_smem = true;
    return add_segment(r, SEG_SMEM, s);
  }
  uint64_t addr;
  if (!parse_hex_name(nm + (kind == 2 ? 5 : 6), &addr))
    return fail(r->err, r->errlen, r->name, "section %s: the name does not end in a hex address",
                shown(nm, buf, sizeof buf));
  if (addr != s->sh_addr)
    return fail(r->err, r->errlen, r->name, "section %s: sh_addr 0x%llx does not match the name",
                shown(nm, buf, sizeof buf), (unsigned long long)s->sh_addr);
  if (s->sh_size && addr + s->sh_size - 1 < addr)
    return fail(r->err, r->errlen, r->name, "section %s runs past the end of memory",
                shown(nm, buf, sizeof buf));
  return add_segment(r, kind == 2 ? SEG_HBM : SEG_HOST, s);
}

static int parse(Reader *r) {
  Elf64_Ehdr eh;
  if (r->len < sizeof eh)
    return fail(r->err, r->errlen, r->name, "too short for an ELF header (%zu bytes)", r->len);
  memcpy(&eh, r->buf, sizeof eh);
  if (check_header(&eh, r->len, r->name, r->err, r->errlen))
    return -1;
  r->nsh = eh.e_shnum;
  if (!(r->sh = malloc(r->nsh * sizeof *r->sh)))
    return fail(r->err, r->errlen, r->name, "out of memory");
  memcpy(r->sh, r->buf + eh.e_shoff, r->nsh * sizeof *r->sh);
  if (r->sh[0].sh_type != SHT_NULL)
    return fail(r->err, r->errlen, r->name, "section 0 is not the null section");
  const Elf64_Shdr *st = &r->sh[eh.e_shstrndx];
  if (st->sh_type != SHT_STRTAB || !in_bounds(st->sh_offset, st->sh_size, r->len) ||
      st->sh_size == 0 || r->buf[st->sh_offset + st->sh_size - 1] != 0)
    return fail(r->err, r->errlen, r->name, "bad section name table");
  r->strtab = (const char *)r->buf + st->sh_offset;
  r->strsize = st->sh_size;
  for (unsigned i = 1; i < r->nsh; i++)
    if (read_section(r, i))
      return -1;
  if (!r->have_text)
    return fail(r->err, r->errlen, r->name, "no .text section");
  if (r->layers && read_layers(r, r->buf + r->layers->sh_offset, r->layers->sh_size))
    return -1;
  const isa_segment *other, *bad = overlap(r->p->segs, r->p->nsegs, &other);
  if (bad)
    return fail(r->err, r->errlen, r->name, "%s segments at 0x%llx and 0x%llx overlap",
                bad->kind == SEG_HBM ? "HBM" : "host", (unsigned long long)bad->addr,
                (unsigned long long)other->addr);
  return 0;
}

static int parse_named(isa_program *p, const uint8_t *buf, size_t len, const char *name, bool borrow,
                       char *err, size_t errlen) {
  *p = (isa_program){0};
  Reader r = {.buf = buf, .len = len, .name = name, .err = err, .errlen = errlen, .p = p, .borrow = borrow};
  int rc = parse(&r);
  free(r.sh);
  if (rc)
    isa_program_free(p);
  return rc;
}

int isa_program_parse(isa_program *p, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  return parse_named(p, buf, len, "program image", false, err, errlen);
}

int isa_program_read(isa_program *p, const char *path, char *err, size_t errlen) {
  *p = (isa_program){0};
  isa_file f;
  if (isa_file_load(&f, path, false, SIZE_MAX - 1, "a program image", err, errlen)) return -1;
  // The segments borrow the file's bytes (mapped read-only, or read into
  // memory the program now owns): the program keeps the file.
  int rc = parse_named(p, f.data, f.len, path, true, err, errlen);
  if (rc) isa_file_release(&f);
  else p->file = f;
  return rc;
}
