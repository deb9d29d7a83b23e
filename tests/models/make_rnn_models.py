#!/usr/bin/python3
"""Writes the LSTM, GRU and RNN models tests/test_rnn.c reads into DIR.

Usage: /usr/bin/python3 tests/models/make_rnn_models.py DIR

Run with Debian's interpreter (python3-onnx 1.12 and python3-numpy). Models named
err_* are broken on purpose, or use what the compiler refuses: the C test expects
the message. NAME_l0 / NAME_l1 pairs hold the same recurrence in layout 0 and in
layout 1 (batch first, which ONNX Runtime does not run), with the same weights.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
S, B, I, H = 5, 2, 3, 4


def save(name, nodes, inputs, outputs, inits=(), opset=14, check=True):
    g = h.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="systole-tests")
    m.ir_version = 7
    if check:
        # Declare the output shapes, as exporters do.
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        for o, io in zip(m.graph.output, inferred.graph.output):
            o.CopyFrom(io)
        onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def vi(name, shape, elem=T.FLOAT):
    return h.make_tensor_value_info(name, elem, shape)


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def weights(rng, op, D, inp=I, hid=H, dtype=np.float32):
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    return [const("W", (rng.standard_normal([D, G * hid, inp]) / np.sqrt(inp)).astype(dtype)),
            const("R", (rng.standard_normal([D, G * hid, hid]) / np.sqrt(hid)).astype(dtype)),
            const("B", (rng.standard_normal([D, 2 * G * hid]) * 0.3).astype(dtype))]


def one(name, op, ins, outs, inits, inputs=None, opset=14, check=True, **attrs):
    """A model of one recurrence node over x [S, B, I] (unless inputs says otherwise)."""
    node = h.make_node(op, ins, outs, name="rnn", **attrs)
    save(name, [node], inputs or [vi("x", [S, B, I])], [vi(o, None) for o in outs if o], inits, opset, check)


def main():
    rng = np.random.default_rng(7)
    # Attributes after import: activations with alpha/beta taken in ONNX Runtime's
    # order, hidden_size from R, missing inputs zero, a full sequence_lens dropped.
    w = weights(rng, "LSTM", 2)
    one("lstm_attrs", "LSTM", ["x", "W", "R", "", "lens"], ["y", "yh", "yc"],
        w[:2] + [const("lens", np.array([S, S], np.int32))], direction="bidirectional",
        activations=["LeakyRelu", "HardSigmoid", "Affine", "elu", "ScaledTanh", "Sigmoid"],
        activation_alpha=[0.3, 0.25, 2.0], activation_beta=[0.6])
    one("lstm_lens", "LSTM", ["x", "W", "R", "B", "lens"], ["", "yh"],
        weights(rng, "LSTM", 1) + [const("lens", np.array([5, 3], np.int32))], hidden_size=H)
    one("gru_layout1", "GRU", ["x", "W", "R", "B", "", "h0"], ["y", "yh"], weights(rng, "GRU", 1),
        inputs=[vi("x", [B, S, I]), vi("h0", [B, 1, H])], layout=1, linear_before_reset=1)
    # One layer, as the pass unrolls it.
    one("lstm_plain", "LSTM", ["x", "W", "R", "B"], ["y", "yh", "yc"], weights(rng, "LSTM", 1))
    one("gru_bidir", "GRU", ["x", "W", "R", "B", "", "h0"], ["y"], weights(rng, "GRU", 2),
        inputs=[vi("x", [S, B, I]), vi("h0", [2, B, H])], direction="bidirectional")

    # Layout 0 and layout 1 pairs: the same weights, every output.
    for op, D, attrs in [("LSTM", 2, {"direction": "bidirectional"}),
                         ("GRU", 1, {"direction": "reverse", "linear_before_reset": 1}),
                         ("RNN", 2, {"direction": "bidirectional", "clip": 0.9})]:
        w = weights(rng, op, D)
        states = ["h0", "c0"] if op == "LSTM" else ["h0"]
        outs = ["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"]
        extra = [const("P", (rng.standard_normal([D, 3 * H]) * 0.5).astype(np.float32))] if op == "LSTM" else []
        ins = ["x", "W", "R", "B", ""] + states + (["P"] if extra else [])
        for layout in (0, 1):
            shapes = [[B, S, I] if layout else [S, B, I]] + [[B, D, H] if layout else [D, B, H]] * len(states)
            one(f"{op.lower()}_l{layout}", op, ins, outs, w + extra,
                inputs=[vi(n, s) for n, s in zip(["x"] + states, shapes)], layout=layout, **attrs)

    # Refused by the importer.
    w = weights(rng, "LSTM", 1)
    one("err_rnn_lens_input", "LSTM", ["x", "W", "R", "B", "lens"], ["y"], w,
        inputs=[vi("x", [S, B, I]), vi("lens", [B], T.INT32)])
    one("err_rnn_act_name", "LSTM", ["x", "W", "R"], ["y"], w, activations=["Sigmoid", "Swish", "Tanh"],
        check=False)
    one("err_rnn_act_count", "GRU", ["x", "W", "R"], ["y"], weights(rng, "GRU", 1), activations=["Sigmoid"],
        check=False)
    one("err_rnn_layout_opset13", "LSTM", ["x", "W", "R"], ["y"], w, opset=13, layout=1, check=False)
    one("err_rnn_hidden", "LSTM", ["x", "W", "R"], ["y"], w, hidden_size=5, check=False)
    one("err_rnn_lens_range", "LSTM", ["x", "W", "R", "B", "lens"], ["y"],
        w + [const("lens", np.array([2, 7], np.int32))])
    one("err_rnn_clip", "LSTM", ["x", "W", "R"], ["y"], w, clip=0.0)
    one("err_rnn_w_shape", "LSTM", ["x", "W", "R"], ["y"],
        [const("W", np.zeros([1, 12, I], np.float32)), w[1]], check=False)
    one("err_rnn_direction", "GRU", ["x", "W", "R"], ["y"], weights(rng, "GRU", 1), direction="sideways",
        check=False)
    # Imported, refused by the compiler.
    one("err_rnn_thresholded", "LSTM", ["x", "W", "R"], ["y"], w,
        activations=["Sigmoid", "ThresholdedRelu", "Tanh"], activation_alpha=[0.5])
    w16 = weights(rng, "GRU", 1, dtype=np.float16)
    save("err_rnn_f16", [h.make_node("Cast", ["x"], ["x16"], to=T.FLOAT16),
                         h.make_node("GRU", ["x16", "W", "R", "B"], ["y16"], name="rnn", hidden_size=H),
                         h.make_node("Cast", ["y16"], ["y"], to=T.FLOAT)],
         [vi("x", [S, B, I])], [vi("y", None)], w16)


if __name__ == "__main__":
    main()
