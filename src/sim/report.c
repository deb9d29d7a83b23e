// What a run reports: derived statistics, the terminal summary, JSON for
// scripts and a Chrome trace-event timeline (opens in Perfetto).
#include <inttypes.h>
#include <string.h>

#include "sim/simint.h"

void sim_finish_stats(sim *s) {
  const chip_config *c = &s->chip;
  sim_stats *st = &s->st;
  st->seconds = (double)st->cycles / c->clock_hz;
  double peak = (double)st->cycles * c->mxu_count * c->mxu_rows * c->mxu_cols;
  double work = (double)st->macs_bf16 + (double)st->macs_int8 / (c->int8_macs_per_pe ? c->int8_macs_per_pe : 1);
  st->mxu_utilization = peak > 0 ? work / peak : 0;
  // Table 3's figures are over its window, the cycles between the host transfers.
  const struct t3_counts *b = &s->t3_base, *t = &s->t3_end;
  double t3_bf16 = (double)(t->macs_bf16 - b->macs_bf16), t3_int8 = (double)(t->macs_int8 - b->macs_int8);
  double t3_peak = (double)st->mxu_cycles * c->mxu_rows * c->mxu_cols;
  double t3_seconds = (double)(s->t3_t1 - s->t3_t0) / c->clock_hz;
  double t3_work = t3_bf16 + t3_int8 / (c->int8_macs_per_pe ? c->int8_macs_per_pe : 1);
  st->useful_mac_fraction = t3_peak > 0 ? t3_work / t3_peak : 0;
  double slots = (double)st->mxu_active * c->mxu_rows * c->mxu_cols; // MACs the active cycles could do
  st->unused_mac_fraction = t3_peak > 0 && slots > t3_work ? (slots - t3_work) / t3_peak : 0;
  st->tops = t3_seconds > 0 ? 2.0 * (t3_bf16 + t3_int8) / t3_seconds * 1e-12 : 0;
  double *e = st->energy_pj;
  e[0] = (double)st->macs_bf16 * c->pj_mac_bf16 + (double)st->macs_int8 * c->pj_mac_int8;
  e[1] = (double)st->vpu_elements * c->pj_vpu_op;
  e[2] = (double)(st->vmem_read + st->vmem_write) * c->pj_vmem_byte;
  e[3] = (double)(st->acc_read + st->acc_write) * c->pj_acc_byte;
  e[4] = (double)(st->hbm_read + st->hbm_write) * c->pj_hbm_byte;
  e[5] = (double)(st->host_read + st->host_write) * c->pj_host_byte;
  e[6] = 0; // no ICI traffic from one core
  e[7] = c->static_watts * st->seconds * 1e12;
  st->energy_total_pj = 0;
  for (int i = 0; i < 8; i++) st->energy_total_pj += e[i];
}

const char *sim_fmt_count(uint64_t v) {
  static char bufs[4][32];
  static int next;
  char *out = bufs[next++ & 3], tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v), j = 0;
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) out[j++] = ',';
    out[j++] = tmp[i];
  }
  out[j] = 0;
  return out;
}

const char *sim_fmt_bytes(uint64_t v) {
  static char bufs[4][32];
  static int next;
  char *out = bufs[next++ & 3];
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = (double)v;
  int u = 0;
  while (x >= 1024 && u < 4) x /= 1024, u++;
  snprintf(out, 32, u ? "%.2f %s" : "%.0f %s", x, unit[u]);
  return out;
}

const char *sim_fmt_seconds(double seconds) {
  static char bufs[4][32];
  static int next;
  char *out = bufs[next++ & 3];
  if (seconds < 1e-3) snprintf(out, 32, "%.2f us", seconds * 1e6);
  else if (seconds < 1) snprintf(out, 32, "%.3f ms", seconds * 1e3);
  else snprintf(out, 32, "%.3f s", seconds);
  return out;
}

const char *sim_fmt_energy_pj(double pj) {
  static char bufs[4][32];
  static int next;
  char *out = bufs[next++ & 3];
  if (pj < 1e6) snprintf(out, 32, "%.1f nJ", pj / 1e3);
  else if (pj < 1e9) snprintf(out, 32, "%.2f uJ", pj / 1e6);
  else snprintf(out, 32, "%.3f mJ", pj / 1e9);
  return out;
}

void sim_print_stats(const sim *s, FILE *out) {
  const chip_config *c = &s->chip;
  const sim_stats *st = &s->st;
  fprintf(out, "%s: one TensorCore of %d, %d MXU%s of %dx%d, %.0f MHz\n", c->name, c->tensorcores, c->mxu_count,
          c->mxu_count > 1 ? "s" : "", c->mxu_rows, c->mxu_cols, c->clock_hz / 1e6);
  fprintf(out, "  cycles            %s (%s at the clock)\n", sim_fmt_count(st->cycles), sim_fmt_seconds(st->seconds));
  if (st->macs_bf16) fprintf(out, "  MACs bf16         %s\n", sim_fmt_count(st->macs_bf16));
  if (st->macs_int8) fprintf(out, "  MACs int8         %s\n", sim_fmt_count(st->macs_int8));
  fprintf(out, "  MXU utilisation   %.1f%% (%s passes, %s weight loads)\n", st->mxu_utilization * 100,
          sim_fmt_count(st->passes), sim_fmt_count(st->weight_loads));
  if (st->passes && st->mxu_cycles) {
    double mc = (double)st->mxu_cycles / 100;
    fprintf(out, "  MXU cycles        active %.1f%% (useful MACs %.1f%%, unused %.1f%%), weight stall %.1f%%, "
                 "weight shift %.1f%%, non-matrix %.1f%%; %.2f TOPS\n",
            (double)st->mxu_active / mc, st->useful_mac_fraction * 100, st->unused_mac_fraction * 100,
            (double)st->weight_stall / mc, (double)st->weight_shift / mc, (double)st->non_matrix / mc, st->tops);
    if (st->host_in_cycles || st->host_out_cycles)
      fprintf(out, "                    over the %s cycles between the host transfers (in %s, out %s)\n",
              sim_fmt_count(st->mxu_cycles / (uint64_t)c->mxu_count), sim_fmt_count(st->host_in_cycles),
              sim_fmt_count(st->host_out_cycles));
  }
  fprintf(out, "\n  unit      instructions        busy   busy%%   stalls\n");
  for (int id = 0; id < SIM_UNITS; id++) {
    char name[16];
    if (!sim_unit_name(s, id, name, sizeof name)) continue;
    char stalls[200] = "";
    size_t n = 0;
    for (int k = 0; k < STALL_CAUSES; k++)
      if (st->stall[id][k])
        n += (size_t)snprintf(stalls + n, sizeof stalls - n, "%s%s %s", n ? ", " : "", sim_stall_names[k],
                              sim_fmt_count(st->stall[id][k]));
    fprintf(out, "  %-8s %13s %11s  %5.1f%%   %s\n", name, sim_fmt_count(st->instructions[id]), sim_fmt_count(st->busy[id]),
            st->cycles ? 100.0 * (double)st->busy[id] / (double)st->cycles : 0.0, n ? stalls : "-");
  }
  fprintf(out, "\n  memory            read         written\n");
  fprintf(out, "  host        %12s  %12s\n", sim_fmt_bytes(st->host_read), sim_fmt_bytes(st->host_write));
  fprintf(out, "  %-10s  %12s  %12s\n", c->hbm_kind[0] ? c->hbm_kind : "HBM", sim_fmt_bytes(st->hbm_read),
          sim_fmt_bytes(st->hbm_write));
  fprintf(out, "  %-10s  %12s  %12s\n", "VMEM", sim_fmt_bytes(st->vmem_read), sim_fmt_bytes(st->vmem_write));
  fprintf(out, "  %-10s  %12s  %12s\n", "accum.", sim_fmt_bytes(st->acc_read), sim_fmt_bytes(st->acc_write));
  fprintf(out, "\n  energy            %s", sim_fmt_energy_pj(st->energy_total_pj));
  const char *sep = " (";
  for (int i = 0; i < 8; i++)
    if (st->energy_pj[i] > 0) fprintf(out, "%s%s %s", sep, sim_energy_names[i], sim_fmt_energy_pj(st->energy_pj[i])), sep = ", ";
  fprintf(out, "%s\n", sep[0] == ',' ? ")" : "");
}

void sim_json_str(FILE *f, const char *str) {
  fputc('"', f);
  for (; *str; str++) {
    unsigned char ch = (unsigned char)*str;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

int sim_close_checked(FILE *f, const char *path, char *err, size_t errlen) {
  int bad = ferror(f);
  if (fclose(f) || bad) {
    snprintf(err, errlen, "%s: write failed", path);
    return -1;
  }
  return 0;
}

int sim_write_json(const sim *s, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open for writing", path);
    return -1;
  }
  const chip_config *c = &s->chip;
  const sim_stats *st = &s->st;
  fprintf(f, "{\n  \"chip\": ");
  sim_json_str(f, c->name);
  fprintf(f, ",\n  \"clock_hz\": %.0f,\n  \"cycles\": %" PRIu64 ",\n  \"seconds\": %.9g,\n", c->clock_hz, st->cycles,
          st->seconds);
  fprintf(f, "  \"macs\": %" PRIu64 ",\n  \"macs_bf16\": %" PRIu64 ",\n  \"macs_int8\": %" PRIu64 ",\n",
          st->macs_bf16 + st->macs_int8, st->macs_bf16, st->macs_int8);
  fprintf(f, "  \"mxu_utilization\": %.6f,\n  \"passes\": %" PRIu64 ",\n  \"weight_loads\": %" PRIu64 ",\n",
          st->mxu_utilization, st->passes, st->weight_loads);
  fprintf(f, "  \"mxu_cycles\": %" PRIu64 ",\n  \"mxu_active\": %" PRIu64 ",\n  \"weight_stall\": %" PRIu64
             ",\n  \"weight_shift\": %" PRIu64 ",\n  \"non_matrix\": %" PRIu64 ",\n",
          st->mxu_cycles, st->mxu_active, st->weight_stall, st->weight_shift, st->non_matrix);
  fprintf(f, "  \"useful_mac_fraction\": %.6f,\n  \"unused_mac_fraction\": %.6f,\n  \"tops\": %.6g,\n",
          st->useful_mac_fraction, st->unused_mac_fraction, st->tops);
  fprintf(f, "  \"host_in_cycles\": %" PRIu64 ",\n  \"host_out_cycles\": %" PRIu64 ",\n", st->host_in_cycles,
          st->host_out_cycles);
  fprintf(f, "  \"vpu_elements\": %" PRIu64 ",\n  \"units\": {", st->vpu_elements);
  const char *sep = "\n";
  for (int id = 0; id < SIM_UNITS; id++) {
    char name[16];
    if (!sim_unit_name(s, id, name, sizeof name)) continue;
    fprintf(f, "%s    \"%s\": {\"instructions\": %" PRIu64 ", \"busy\": %" PRIu64 ", \"stalls\": {", sep, name,
            st->instructions[id], st->busy[id]);
    for (int k = 0; k < STALL_CAUSES; k++)
      fprintf(f, "%s\"%s\": %" PRIu64, k ? ", " : "", sim_stall_names[k], st->stall[id][k]);
    fprintf(f, "}}");
    sep = ",\n";
  }
  fprintf(f, "\n  },\n  \"bytes\": {\"host_read\": %" PRIu64 ", \"host_write\": %" PRIu64 ", \"hbm_read\": %" PRIu64
             ", \"hbm_write\": %" PRIu64 ", \"vmem_read\": %" PRIu64 ", \"vmem_write\": %" PRIu64
             ", \"acc_read\": %" PRIu64 ", \"acc_write\": %" PRIu64 "},\n",
          st->host_read, st->host_write, st->hbm_read, st->hbm_write, st->vmem_read, st->vmem_write, st->acc_read,
          st->acc_write);
  fprintf(f, "  \"energy_pj\": {");
  for (int i = 0; i < 8; i++) {
    fprintf(f, "%s", i ? ", " : "");
    sim_json_str(f, sim_energy_names[i]);
    fprintf(f, ": %.6g", st->energy_pj[i]);
  }
  fprintf(f, ", \"total\": %.6g}\n}\n", st->energy_total_pj);
  return sim_close_checked(f, path, err, errlen);
}

int sim_write_trace(const sim *s, const char *path, char *err, size_t errlen) {
  return sim_write_trace_spans(s, path, NULL, 0, err, errlen);
}

int sim_write_trace_spans(const sim *s, const char *path, const sim_span *spans, size_t nspans,
                          char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open for writing", path);
    return -1;
  }
  double us = 1e6 / s->chip.clock_hz;
  fprintf(f, "{\"displayTimeUnit\": \"ns\", \"otherData\": {\"chip\": ");
  sim_json_str(f, s->chip.name);
  fprintf(f, ", \"cycles\": %" PRIu64 "},\n\"traceEvents\": [\n", s->st.cycles);
  fprintf(f, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 0, \"args\": {\"name\": ");
  sim_json_str(f, s->chip.name);
  fprintf(f, "}}");
  for (int id = 0; id < SIM_UNITS; id++) {
    char name[16];
    if (!sim_unit_name(s, id, name, sizeof name)) continue;
    for (int sub = 0; sub < (s->units[id].kind == UNIT_MXU ? 2 : 1); sub++) {
      fprintf(f, ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 0, \"tid\": %d, \"args\": {\"name\": \"%s%s\"}}",
              id * 2 + sub, name, sub ? " weights" : "");
      fprintf(f, ",\n{\"name\": \"thread_sort_index\", \"ph\": \"M\", \"pid\": 0, \"tid\": %d, \"args\": {\"sort_index\": %d}}",
              id * 2 + sub, id * 2 + sub);
    }
  }
  // Layers above the units: one track after them, sorted first.
  const int ltid = SIM_UNITS * 2;
  if (nspans)
    fprintf(f, ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 0, \"tid\": %d, \"args\": {\"name\": \"layers\"}}"
               ",\n{\"name\": \"thread_sort_index\", \"ph\": \"M\", \"pid\": 0, \"tid\": %d, \"args\": {\"sort_index\": -1}}",
            ltid, ltid);
  for (size_t i = 0; i < nspans; i++) {
    const sim_span *sp = &spans[i];
    if (sp->end < sp->start) continue;
    fprintf(f, ",\n{\"name\": ");
    sim_json_str(f, sp->name);
    fprintf(f, ", \"ph\": \"X\", \"pid\": 0, \"tid\": %d, \"ts\": %.6f, \"dur\": %.6f, \"args\": {\"cycle\": %" PRIu64
               ", \"cycles\": %" PRIu64 "}}",
            ltid, (double)sp->start * us, (double)(sp->end - sp->start) * us, sp->start, sp->end - sp->start);
  }
  for (size_t i = 0; i < s->ntrace; i++) {
    const trace_rec *t = &s->trace[i];
    char dis[160], name[48];
    if (t->pc == UINT64_MAX) {
      snprintf(dis, sizeof dis, "waiting: %s", sim_stall_names[t->cause]);
      snprintf(name, sizeof name, "stall: %s", sim_stall_names[t->cause]);
    } else {
      isa_disasm_inst(s->code[t->pc], t->pc, dis, sizeof dis);
      snprintf(name, sizeof name, "%.*s", (int)strcspn(dis, " "), dis);
    }
    fprintf(f, ",\n{\"name\": ");
    sim_json_str(f, name);
    fprintf(f, ", \"ph\": \"X\", \"pid\": 0, \"tid\": %d, \"ts\": %.6f, \"dur\": %.6f, \"args\": {\"cycle\": %" PRIu64
               ", \"cycles\": %" PRIu64,
            t->track, (double)t->start * us, (double)(t->end - t->start) * us, t->start, t->end - t->start);
    if (t->pc != UINT64_MAX) fprintf(f, ", \"pc\": %" PRIu64, t->pc);
    fprintf(f, ", \"instruction\": ");
    sim_json_str(f, dis);
    fprintf(f, "}}");
  }
  fprintf(f, "\n]}\n");
  return sim_close_checked(f, path, err, errlen);
}
