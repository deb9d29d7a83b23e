#!/usr/bin/python3
"""Compares Systole's outputs with ONNX Runtime's by issue 3's rule.

Usage: /usr/bin/python3 tests/compare_outputs.py REF_DIR GOT_DIR --tol TOL [--top1] [--label L]
       /usr/bin/python3 tests/compare_outputs.py --list FILE

REF_DIR and GOT_DIR hold one .npy file per graph output, matched by file name; every
reference file must have a counterpart of the same shape, and GOT_DIR no others.

A floating-point output passes when max |got - ref| <= TOL * max |ref| (the issue's tolerances: 1e-4
with --precision highest; 2e-2 for small graphs and 5e-2 for whole networks with
default). --top1 (classifiers, classes on the last axis: [N, classes], or [..., classes]
read as rows of classes): also the same argmax in every row where the reference's margin
between its first two classes exceeds twice the allowed error, TOL * max |ref|. An
integer or boolean output passes only when it has the reference's type and every value
is equal.

--list FILE runs many comparisons in one process (numpy's import is slow next to one
comparison), one per line: "LABEL GROUP REF_DIR GOT_DIR TOL top1|top1only|-" (no spaces
inside fields), then prints the worst ratio of each GROUP. top1only asserts the top-1
rule alone: the error is measured and printed, but a ratio above TOL does not fail (for
a known, documented gap such as PP-OCRv4 with bf16 products, tests/cli_real_models.sh).

Prints one line per output with the measured ratio max error / max |ref|; exits 0 when
everything passes, 1 otherwise, 2 on a usage error.
"""
import argparse
import os
import sys

import numpy as np


def compare(name, ref, got, tol, top1, assert_tol=True):
    """Returns (ok, ratio, line)."""
    if ref.shape != got.shape:
        return False, float("inf"), f"{name}: shape {list(got.shape)}, reference {list(ref.shape)}  FAIL"
    if ref.dtype.kind in "biu" or got.dtype.kind in "biu":
        # Integers and booleans have exact semantics: the same type and every value equal.
        if ref.dtype != got.dtype:
            return False, float("inf"), f"{name}: type {got.dtype}, reference {ref.dtype}  FAIL"
        bad = np.flatnonzero(ref.reshape(-1) != got.reshape(-1))
        line = f"{name}: {ref.dtype}, {ref.size - bad.size} of {ref.size} values equal (exact)"
        if bad.size:
            i = int(bad[0])
            line += f"; first at {i}: {got.reshape(-1)[i]}, reference {ref.reshape(-1)[i]}  FAIL"
        return not bad.size, 0.0 if not bad.size else float("inf"), line
    ref = ref.astype(np.float64)
    got = got.astype(np.float64)
    # NaN where the reference has NaN is agreement; anywhere else it is an infinite error.
    both_nan = np.isnan(ref) & np.isnan(got)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan, 0.0, np.abs(got - ref))
    diff = np.where(np.isnan(diff), np.inf, diff)
    # Equal infinities are no error either.
    diff = np.where(np.isinf(ref) & (got == ref), 0.0, diff)
    finite = ref[np.isfinite(ref)]
    ref_max = float(np.abs(finite).max()) if finite.size else 0.0
    err = float(diff.max()) if diff.size else 0.0
    allowed = tol * ref_max
    ratio = err / ref_max if ref_max > 0 else (0.0 if err == 0 else float("inf"))
    ok = err <= allowed or not assert_tol
    line = (f"{name}: max error {err:.3g}, max |ref| {ref_max:.3g}, ratio {ratio:.2e} "
            f"(tol {tol:g}{'' if assert_tol else ', not asserted'})")
    if top1:
        if ref.ndim < 2 or ref.shape[-1] < 2:
            return False, ratio, line + f"; --top1 needs [..., classes], got {list(ref.shape)}  FAIL"
        ref = ref.reshape(-1, ref.shape[-1])
        got = got.reshape(-1, got.shape[-1])
        srt = np.sort(ref, axis=1)
        margin = srt[:, -1] - srt[:, -2]
        clear = margin > 2 * allowed
        agree = ref.argmax(axis=1) == got.argmax(axis=1)
        bad = np.flatnonzero(clear & ~agree)
        line += (f"; top-1 agrees on {int((clear & agree).sum())} of {int(clear.sum())} rows with a clear "
                 f"margin ({ref.shape[0] - int(clear.sum())} rows too close to call)")
        if bad.size:
            r = int(bad[0])
            line += (f"; row {r}: class {int(got[r].argmax())}, reference {int(ref[r].argmax())} "
                     f"by margin {margin[r]:.3g}")
            ok = False
    return ok, ratio, line + ("" if ok else "  FAIL")


def compare_dirs(ref_dir, got_dir, tol, top1, label, assert_tol=True):
    """Prints a line per output; returns (ok, worst ratio)."""
    prefix = label + ": " if label else ""
    try:
        refs = sorted(f for f in os.listdir(ref_dir) if f.endswith(".npy"))
        gots = sorted(f for f in os.listdir(got_dir) if f.endswith(".npy"))
    except OSError as e:
        print(f"{prefix}{e}  FAIL")
        return False, float("inf")
    if not refs:
        print(f"{prefix}no reference outputs in {ref_dir}  FAIL")
        return False, float("inf")
    ok, worst = True, 0.0
    for f in refs:
        name = prefix + f[:-4]
        if f not in gots:
            print(f"{name}: missing from {got_dir}  FAIL")
            ok, worst = False, float("inf")
            continue
        try:
            ref, got = np.load(os.path.join(ref_dir, f)), np.load(os.path.join(got_dir, f))
        except (OSError, ValueError) as e:
            print(f"{name}: cannot read: {e}  FAIL")
            ok, worst = False, float("inf")
            continue
        good, ratio, line = compare(name, ref, got, tol, top1, assert_tol)
        print(line)
        ok, worst = ok and good, max(worst, ratio)
    for f in sorted(set(gots) - set(refs)):
        print(f"{prefix}{f[:-4]}: written, but the reference has no such output  FAIL")
        ok = False
    return ok, worst


def run_list(path):
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
    except OSError as e:
        print(f"compare_outputs: {e}", file=sys.stderr)
        return 2
    ok, worst = True, {}
    for row in rows:
        if len(row) != 6 or row[5] not in ("top1", "top1only", "-"):
            print(f"compare_outputs: {path}: bad line {' '.join(row)!r}", file=sys.stderr)
            return 2
        label, group, ref_dir, got_dir, tol, top1 = row
        good, ratio = compare_dirs(ref_dir, got_dir, float(tol), top1 != "-", label, top1 != "top1only")
        ok = ok and good
        if group not in worst or ratio > worst[group][0]:
            worst[group] = (ratio, label)
    for group, (ratio, label) in worst.items():
        print(f"worst ratio of {group}: {ratio:.2e} ({label})")
    return 0 if ok else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        return run_list(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref_dir")
    ap.add_argument("got_dir")
    ap.add_argument("--tol", type=float, required=True)
    ap.add_argument("--top1", action="store_true")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    return 0 if compare_dirs(a.ref_dir, a.got_dir, a.tol, a.top1, a.label)[0] else 1


if __name__ == "__main__":
    sys.exit(main())
