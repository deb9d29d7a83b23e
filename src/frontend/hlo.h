// The XLA HLO text importer: modules as JAX (`jax.jit(f).lower(x).as_text("hlo")`)
// and XLA (`--xla_dump_hlo_as_text`) print them become an IR graph
// (docs/hlo.md).
//
// Entry parameter N is the graph input named "N". The entry's result (each
// element of a ROOT tuple, or the one value) is the graph output named
// HLO_RESULT_PREFIX "N"; the runtime presents it as "N" (HLO names cannot hold
// ':', so the prefix never collides with a module's own names).
#ifndef SYSTOLE_FRONTEND_HLO_H
#define SYSTOLE_FRONTEND_HLO_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/ir.h"

#define HLO_RESULT_PREFIX "result:"

// Imports an HLO text module. The graph has inferred shapes, constants folded,
// dead values pruned and has passed ir_verify. On error returns NULL with
// "file:LINE:COL: reason" in err (the instruction named, if any).
ir_graph *hlo_import(const char *path, char *err, size_t errlen);
// Same, from text in memory (need not be NUL-terminated); name is for messages.
ir_graph *hlo_import_buffer(const char *text, size_t len, const char *name, char *err, size_t errlen);
// Does path look like HLO text: a name ending in .hlo or .txt, or contents
// that start (after blanks and comments) with "HloModule"?
bool hlo_is_hlo_file(const char *path);
// The name a graph output of an imported module goes by ("result:1" -> "1"),
// or the name itself when it has no HLO_RESULT_PREFIX.
const char *hlo_public_name(const char *ir_name);

#endif
