#!/usr/bin/python3
"""Where does a model lose accuracy at --precision default? Test and debugging tool.

  tools/precision_bisect.py bf16-operands IN.onnx OUT.onnx
  tools/precision_bisect.py bisect MODEL.onnx --input NAME=FILE.npy... [--input-shape NAME=DIMS]...
                            [--systole build/systole] [--chip NAME] [--all] [--keep DIR]

bf16-operands writes a copy of the model whose Conv, ConvTranspose, MatMul and Gemm
nodes see their operands A and B (inputs 0 and 1) rounded to bf16, everything else
unchanged. Run by ONNX Runtime it computes what --precision default defines (bf16
operands, exact products, fp32 sums; the sums in ONNX Runtime's order), so Systole's
distance from it is what the lowering adds and its distance from the original model is
what bf16 products cost. Constant operands are rounded here (nearest, ties to even);
computed ones by Veltkamp splitting in the graph, h = c - (c - x) with c = x * (2^16+1),
which rounds to 8 significant bits, to nearest (a tie, 1 value in 2^16, may go either
way) for |x| < 2^111.

bisect makes every float result computed from the inputs a graph output (with --all;
otherwise those of the ops below, which are where precision can go), runs that model
under ONNX Runtime (tools/ort_run.mjs) as it is (ref) and with bf16 operands (emu), and
under `systole run --precision default` (got), and prints per tensor, in graph order,
the RMS distances relative to the bf16 cost rms(emu - ref): got-ref near 1 and got-emu
well below 1 mean Systole loses no more than bf16 operands do; a tensor where got-ref
jumps above 1 is where the lowering adds error. The last line sums the table up.
Needs python3-onnx, python3-numpy, node with onnxruntime-node; run from the repository
root.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

TAPPED = {"Conv", "ConvTranspose", "MatMul", "Gemm", "Softmax", "LogSoftmax", "ReduceMean",
          "ReduceSum", "GlobalAveragePool", "AveragePool", "BatchNormalization",
          "LayerNormalization", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Sigmoid",
          "HardSigmoid", "HardSwish", "Tanh", "Erf", "Relu", "Clip", "LeakyRelu"}


def bf16_round(a):
    """fp32 array -> the nearest bf16 values (ties to even), as fp32."""
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32)


def bf16_operands(model):
    from onnx import helper, numpy_helper

    g = model.graph
    consts = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = n.attribute[0].t
    g.initializer.append(numpy_helper.from_array(np.array(65537.0, np.float32), "bf16.split"))
    nodes, k = [], 0
    for n in g.node:
        if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            for i in range(2):
                x = n.input[i]
                k += 1
                if x in consts:
                    t = numpy_helper.to_array(consts[x])
                    if t.dtype != np.float32:
                        sys.exit(f"precision_bisect: {n.name or n.op_type}: operand {x} is {t.dtype}, not float32")
                    g.initializer.append(numpy_helper.from_array(bf16_round(t), f"{x}.bf16.{k}"))
                    n.input[i] = f"{x}.bf16.{k}"
                    continue
                c, d, h = (f"{x}.bf16.{k}.{s}" for s in "cdh")
                nodes += [helper.make_node("Mul", [x, "bf16.split"], [c]),
                          helper.make_node("Sub", [c, x], [d]),
                          helper.make_node("Sub", [c, d], [h])]
                n.input[i] = h
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    return model


def add_taps(model, every):
    """Makes float results that depend on the graph's inputs outputs; returns their names."""
    import onnx
    from onnx import TensorProto, helper

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    g = model.graph
    live = {i.name for i in g.input} - {t.name for t in g.initializer}
    have = {o.name for o in g.output}
    taps = []
    for n in g.node:
        if not any(x in live for x in n.input):
            continue
        live.update(n.output)
        o = n.output[0]
        if o in have or types.get(o, TensorProto.FLOAT) != TensorProto.FLOAT:
            continue
        if every or n.op_type in TAPPED:
            g.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
            taps.append((n.op_type, o))
    return taps + [("output", o.name) for o in g.output if o.name in have]


def npy_name(name):
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in name) + ".npy"


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"precision_bisect: {' '.join(cmd[:3])}...: exit {r.returncode}\n{r.stderr}{r.stdout}")


def bisect(a):
    import onnx

    work = a.keep or tempfile.mkdtemp(prefix="precision_bisect.")
    os.makedirs(work, exist_ok=True)
    model = onnx.load(a.model)
    taps = add_taps(model, a.all)
    tapped = os.path.join(work, "tapped.onnx")
    onnx.save(model, tapped)
    emu = os.path.join(work, "tapped-bf16.onnx")
    onnx.save(bf16_operands(model), emu)
    inputs = [x for i in a.input for x in ("--input", i)]
    run(["node", "tools/ort_run.mjs", tapped, *inputs, "--output-dir", os.path.join(work, "ref")])
    run(["node", "tools/ort_run.mjs", emu, *inputs, "--output-dir", os.path.join(work, "emu")])
    shape = [x for s in a.input_shape for x in ("--input-shape", s)]
    run([a.systole, "run", tapped, *inputs, *shape, "--chip", a.chip, "--precision", "default",
         "-q", "--output-dir", os.path.join(work, "got")])
    rms = lambda v: float(np.sqrt(np.mean(np.square(v)))) if v.size else 0.0
    print(f"{'#':>4} {'op':18} {'tensor':32} {'emu-ref':>9} {'got-ref':>8} {'got-emu':>8}"
          "   (emu-ref: rms(emu - ref) / rms(ref); the others / rms(emu - ref))")
    ratios = []
    for i, (op, name) in enumerate(taps):
        ref, em, got = (np.load(os.path.join(work, d, npy_name(name))).astype(np.float64)
                        for d in ("ref", "emu", "got"))
        cost = rms(em - ref)
        if cost == 0:
            print(f"{i:4} {op:18} {name[:32]:32} {0:9.2e} {'-':>8} {'-':>8}")
            continue
        r = (rms(got - ref) / cost, rms(got - em) / cost)
        ratios.append(r)
        print(f"{i:4} {op:18} {name[:32]:32} {cost / (rms(ref) or 1):9.2e} {r[0]:8.3f} {r[1]:8.3f}")
    if ratios:
        r = np.array(ratios)
        print(f"{len(taps)} tensors; got-ref from {r[:, 0].min():.3f} to {r[:, 0].max():.3f} "
              f"(median {np.median(r[:, 0]):.3f}); got-emu at most {r[:, 1].max():.3f}")
    if not a.keep:
        print(f"(files in {work}; --keep DIR to choose)")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "bf16-operands":
        import onnx
        onnx.save(bf16_operands(onnx.load(sys.argv[2])), sys.argv[3])
        return 0
    if len(sys.argv) < 2 or sys.argv[1] != "bisect":
        sys.exit(__doc__)
    ap = argparse.ArgumentParser(prog="precision_bisect.py bisect")
    ap.add_argument("model")
    ap.add_argument("--input", action="append", default=[])
    ap.add_argument("--input-shape", action="append", default=[])
    ap.add_argument("--systole", default="build/systole")
    ap.add_argument("--chip", default="tpu-v4")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--keep")
    bisect(ap.parse_args(sys.argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
