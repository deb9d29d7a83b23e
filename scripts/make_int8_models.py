#!/usr/bin/python3
"""Small ONNX models of the int8 operators (issue 4, item 2) for tests/cli_int8_ort.sh, which
requires Systole's outputs to equal ONNX Runtime's exactly.

Usage: /usr/bin/python3 scripts/make_int8_models.py DIR

Into DIR: NAME.onnx and NAME.in/INPUT.npy per model, and manifest.txt with lines
"NAME INPUT=FILE...". Seeded: two runs write the same files.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

OPSET = 13
NP = {T.FLOAT: np.float32, T.INT8: np.int8, T.UINT8: np.uint8, T.INT32: np.int32}


class Writer:
    def __init__(self, out):
        self.out, self.lines = out, []

    def save(self, name, nodes, inputs, outputs, inits=()):
        """inputs: (name, onnx type, array); outputs: (name, onnx type, shape)."""
        g = h.make_graph(nodes, name,
                         [h.make_tensor_value_info(n, t, a.shape) for n, t, a in inputs],
                         [h.make_tensor_value_info(n, t, s) for n, t, s in outputs],
                         [numpy_helper.from_array(a, n) for n, a in inits])
        m = h.make_model(g, opset_imports=[h.make_opsetid("", OPSET)])
        m.ir_version = 7
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(self.out, name + ".onnx"))
        d = os.path.join(self.out, name + ".in")
        os.makedirs(d, exist_ok=True)
        files = []
        for n, _, a in inputs:
            np.save(os.path.join(d, n + ".npy"), a)
            files.append(f"{n}={name}.in/{n}.npy")
        self.lines.append(" ".join([name] + files))


def floats(rng, shape, scale):
    """Values spread over the quantised range and beyond it (saturation), with exact
    ties of the rounding (half-integer multiples of the power-of-two scales)."""
    x = rng.uniform(-160, 160, size=shape) * scale
    flat = x.reshape(-1)
    k = rng.integers(-140, 140, size=flat.size // 4)
    flat[: k.size] = (k + 0.5) * scale
    return x.astype(np.float32)


def qdq_models(w, rng):
    for name, qt, zp in (("quantize_i8", T.INT8, -3), ("quantize_u8", T.UINT8, 130)):
        x = floats(rng, (4, 37), 0.125)
        w.save(name, [h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], [("x", T.FLOAT, x)],
               [("y", qt, x.shape)], [("s", np.array(0.125, np.float32)), ("z", np.array(zp, NP[qt]))])
    # an odd scale: the division rounds, then the result does
    x = floats(rng, (3, 50), 0.0371)
    w.save("quantize_odd_scale", [h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], [("x", T.FLOAT, x)],
           [("y", T.UINT8, x.shape)], [("s", np.array(0.0371, np.float32)), ("z", np.array(7, np.uint8))])
    # per axis: inner > 1 (axis 1 of 4) and inner == 1 (the last axis)
    x = floats(rng, (2, 3, 5, 7), 0.25)
    w.save("quantize_axis", [h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)], [("x", T.FLOAT, x)],
           [("y", T.UINT8, x.shape)],
           [("s", np.array([0.25, 0.5, 0.03125], np.float32)), ("z", np.array([0, 128, 255], np.uint8))])
    x = floats(rng, (6, 16), 0.5)
    w.save("quantize_axis_last", [h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)],
           [("x", T.FLOAT, x)], [("y", T.INT8, x.shape)],
           [("s", (np.arange(16) * 0.0625 + 0.25).astype(np.float32)), ("z", (np.arange(16) * 9 - 70).astype(np.int8))])
    # scale and zero point computed at run time (graph inputs)
    x = floats(rng, (5, 9), 0.0625)
    w.save("quantize_runtime_params", [h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
           [("x", T.FLOAT, x), ("s", T.FLOAT, np.array(0.0625, np.float32)), ("z", T.UINT8, np.array(3, np.uint8))],
           [("y", T.UINT8, x.shape)])
    for name, qt in (("dequantize_i8", T.INT8), ("dequantize_u8", T.UINT8)):
        lo, hi = (-128, 128) if qt == T.INT8 else (0, 256)
        x = rng.integers(lo, hi, size=(6, 21)).astype(NP[qt])
        w.save(name, [h.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])], [("x", qt, x)],
               [("y", T.FLOAT, x.shape)], [("s", np.array(0.0371, np.float32)), ("z", np.array(lo + 77, NP[qt]))])
    x = rng.integers(-2**31, 2**31, size=(4, 9)).astype(np.int32)
    x[0, :4] = [16777217, -16777219, 2**31 - 1, -2**31]
    w.save("dequantize_i32", [h.make_node("DequantizeLinear", ["x", "s"], ["y"])], [("x", T.INT32, x)],
           [("y", T.FLOAT, x.shape)], [("s", np.array(0.0371, np.float32))])
    x = rng.integers(0, 256, size=(2, 4, 3)).astype(np.uint8)
    w.save("dequantize_axis", [h.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)], [("x", T.UINT8, x)],
           [("y", T.FLOAT, x.shape)],
           [("s", np.array([0.1, 0.2, 0.3, 0.7], np.float32)), ("z", np.array([0, 10, 128, 255], np.uint8))])


def ints(rng, dt, shape, lo=None, hi=None):
    info = np.iinfo(NP[dt])
    return rng.integers(info.min if lo is None else lo, (info.max if hi is None else hi) + 1, size=shape).astype(NP[dt])


def mxu_models(w, rng):
    """MatMulInteger and QLinearMatMul with constant weights: zero points scalar and per
    column, u8 and i8, k and n beyond one tile of tpu-v1's 256x256 array, batched A."""
    mm = [
        # name, A type, A shape, B type, K x N, a_zp, b_zp (None: absent; "col": per column)
        ("matmulinteger_u8u8", T.UINT8, (5, 40), T.UINT8, (40, 17), 12, "col"),
        ("matmulinteger_i8i8_batched", T.INT8, (3, 4, 70), T.INT8, (70, 300), 5, 0),
        ("matmulinteger_u8i8_no_zp", T.UINT8, (7, 600), T.INT8, (600, 9), None, None),
        ("matmulinteger_u8u8_wide", T.UINT8, (2, 300), T.UINT8, (300, 260), 255, 128),
    ]
    for name, at, ashape, bt, (K, N), az, bz in mm:
        a = ints(rng, at, ashape)
        if bz == "col":
            bzv = ints(rng, bt, (N,), 100, 150)
            b = np.clip(bzv[None, :].astype(np.int64) + rng.integers(-100, 101, size=(K, N)), 0, 255).astype(NP[bt])
        else:
            b = ints(rng, bt, (K, N))
            bzv = None if bz is None else np.array(bz, NP[bt])
        inits = [("b", b)]
        names = ["a", "b"]
        if az is not None:
            inits.append(("az", np.array(az, NP[at])))
            names.append("az")
        elif bzv is not None:
            names.append("")
        if bzv is not None:
            inits.append(("bz", bzv))
            names.append("bz")
        w.save(name, [h.make_node("MatMulInteger", names, ["y"])], [("a", at, a)],
               [("y", T.INT32, ashape[:-1] + (N,))], inits)
    ql = [
        # name, a type, a shape, b type, K x N, y type, per-column b scale
        ("qlinearmatmul_u8", T.UINT8, (6, 50), T.UINT8, (50, 30), T.UINT8, False),
        ("qlinearmatmul_i8_percol", T.INT8, (9, 300), T.INT8, (300, 20), T.INT8, True),
        ("qlinearmatmul_u8i8_wide", T.UINT8, (3, 64), T.INT8, (64, 270), T.UINT8, False),
    ]
    for name, at, ashape, bt, (K, N), yt, percol in ql:
        a = ints(rng, at, ashape)
        b = ints(rng, bt, (K, N))
        az = ints(rng, at, ())
        bz = np.array(128 if bt == T.UINT8 else 0, NP[bt])
        bs = (rng.uniform(0.5, 2.0, size=(N,)) * 0.01).astype(np.float32) if percol else np.array(0.013, np.float32)
        # y_scale so the outputs spread over the range and saturate at the ends
        ys = np.array(0.02 * np.sqrt(K) * 40 / 127, np.float32)
        inits = [("as", np.array(0.02, np.float32)), ("az", az), ("b", b), ("bs", bs), ("bz", bz),
                 ("ys", ys), ("yz", np.array(100 if yt == T.UINT8 else -7, NP[yt]))]
        w.save(name, [h.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])],
               [("a", at, a)], [("y", yt, ashape[:-1] + (N,))], inits)


def conv_out(xs, wsh, attrs):
    k = wsh[2:]
    st = attrs.get("strides", [1, 1])
    dl = attrs.get("dilations", [1, 1])
    pd = attrs.get("pads", [0, 0, 0, 0])
    sp = [(xs[2 + i] + pd[i] + pd[i + 2] - dl[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(2)]
    return (xs[0], wsh[0], sp[0], sp[1])


def conv_models(w, rng):
    """ConvInteger and QLinearConv with constant weights: padding (which holds the input's
    zero point), strides, dilations, groups, 1x1, and k and n beyond one tpu-v1 tile."""
    cv = [
        # name, x type, x shape, w type, w shape, attrs, x_zp, w_zp
        ("convinteger_u8_pad", T.UINT8, (1, 3, 9, 9), T.UINT8, (4, 3, 3, 3), dict(pads=[1, 1, 1, 1]), 7, 128),
        ("convinteger_i8_stride_dilation", T.INT8, (2, 5, 11, 8), T.INT8, (6, 5, 3, 3),
         dict(strides=[2, 1], dilations=[1, 2], pads=[1, 0, 1, 2]), -5, 0),
        ("convinteger_u8_group", T.UINT8, (1, 4, 7, 7), T.UINT8, (6, 2, 3, 3), dict(group=2, pads=[1, 1, 1, 1]), 100, 128),
    ]
    for name, xt, xs, wt, wsh, attrs, xz, wz in cv:
        x = ints(rng, xt, xs)
        wv = ints(rng, wt, wsh) if wt == T.INT8 else ints(rng, wt, wsh, wz - 128, min(255, wz + 127))
        node = h.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)
        w.save(name, [node], [("x", xt, x)], [("y", T.INT32, conv_out(xs, wsh, attrs))],
               [("w", wv), ("xz", np.array(xz, NP[xt])), ("wz", np.array(wz, NP[wt]))])
    ql = [
        # name, x type, x shape, w type, w shape, y type, attrs, bias, per-channel w scale
        ("qlinearconv_u8_pad_bias", T.UINT8, (1, 8, 10, 10), T.UINT8, (5, 8, 3, 3), T.UINT8, dict(pads=[1, 1, 1, 1]),
         True, False),
        ("qlinearconv_i8_1x1", T.INT8, (2, 16, 6, 6), T.INT8, (12, 16, 1, 1), T.INT8, {}, True, True),
        ("qlinearconv_u8i8_big", T.UINT8, (1, 64, 8, 8), T.INT8, (300, 64, 3, 3), T.UINT8,
         dict(pads=[1, 1, 1, 1], strides=[2, 2]), False, True),
    ]
    for name, xt, xs, wt, wsh, yt, attrs, bias, percol in ql:
        x = ints(rng, xt, xs)
        M = wsh[0]
        wz = np.array(128 if wt == T.UINT8 else 0, NP[wt])
        wv = ints(rng, wt, wsh)
        K = wsh[1] * wsh[2] * wsh[3]
        wsc = (rng.uniform(0.5, 2.0, size=(M,)) * 0.01).astype(np.float32) if percol else np.array(0.011, np.float32)
        inits = [("xs", np.array(0.02, np.float32)), ("xz", ints(rng, xt, ())), ("w", wv), ("ws", wsc), ("wz", wz),
                 ("ys", np.array(0.02 * np.sqrt(K) * 40 / 127, np.float32)),
                 ("yz", np.array(90 if yt == T.UINT8 else 3, NP[yt]))]
        names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
        if bias:
            inits.append(("B", rng.integers(-20000, 20000, size=(M,)).astype(np.int32)))
            names.append("B")
        w.save(name, [h.make_node("QLinearConv", names, ["y"], **attrs)], [("x", xt, x)], [("y", yt, conv_out(xs, wsh, attrs))],
               inits)


TESTDATA = "/usr/share/libonnx-testdata/data/node"
NODE_TESTS = ["test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear", "test_dequantizelinear_axis",
              "test_matmulinteger", "test_basic_convinteger", "test_convinteger_with_padding",
              "test_convinteger_without_padding", "test_qlinearconv", "test_qlinearmatmul_2D", "test_qlinearmatmul_3D"]


def node_tests(w):
    """ONNX's own node tests of these ops (Debian's libonnx-testdata, when installed), with
    inputs 1.. bound as initializers (the MXU lowering needs constant weights, scales and
    zero points) and input 0 as the model's input."""
    for test in NODE_TESTS:
        d = os.path.join(TESTDATA, test)
        if not os.path.isdir(d):
            continue
        m = onnx.load(os.path.join(d, "model.onnx"))
        g = m.graph
        data = []
        for i, vi in enumerate(g.input):
            t = onnx.TensorProto()
            with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "rb") as f:
                t.ParseFromString(f.read())
            data.append((vi, numpy_helper.to_array(t)))
        keep = data[0][0]
        for vi, a in data[1:]:
            g.initializer.append(numpy_helper.from_array(a, vi.name))
        del g.input[:]
        g.input.append(keep)
        name = test[len("test_"):]
        onnx.save(m, os.path.join(w.out, name + ".onnx"))
        sub = os.path.join(w.out, name + ".in")
        os.makedirs(sub, exist_ok=True)
        np.save(os.path.join(sub, "x.npy"), data[0][1])
        w.lines.append(f"{name} {keep.name}={name}.in/x.npy")


def main(argv):
    out = argv[0]
    os.makedirs(out, exist_ok=True)
    w = Writer(out)
    rng = np.random.default_rng(20261206)
    qdq_models(w, rng)
    mxu_models(w, rng)
    conv_models(w, rng)
    node_tests(w)
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(w.lines) + "\n")
    print(f"make_int8_models: wrote {len(w.lines)} models into {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
