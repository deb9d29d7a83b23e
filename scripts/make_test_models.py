#!/usr/bin/python3
"""Writes the models that Systole's end-to-end tests run against ONNX Runtime (issue 3).

Usage: /usr/bin/python3 scripts/make_test_models.py DIR [--small-only] [--if-stale]

Into DIR:
  NAME.onnx, NAME.in/INPUT.npy    a model and its inputs (seeded float32 values)
  manifest-small.txt              small graphs built with onnx.helper: every op of issue 3
                                  alone, in its variants, and in small combinations
  manifest-torch.txt              torchvision's resnet18 and mobilenet_v2 with random
                                  weights that carry signal, nn.LSTM and nn.GRU classifiers
                                  and an nn.TransformerEncoder classifier, exported with
                                  torch.onnx.export; not written with --small-only
Each manifest line is "NAME KIND INPUT=FILE..." (FILE relative to DIR; KIND: small, for
a small graph; net, a whole classifier network; timing, the 224x224 resnet18 that only
the timing test runs).

--if-stale  do nothing if DIR already holds what this version of the script writes
            (stamp files hold the script's hash). A lock on DIR/.lock serialises
            concurrent runs (ctest runs the test scripts that call this in parallel).

Needs Debian's interpreter with python3-onnx and python3-numpy, and for the torch models
python3-torch and python3-torchvision. Everything is seeded: two runs write the same
values.
"""
import fcntl
import hashlib
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

OPSET = 13


def safe(name):
    """The output-file-name rule of `systole run` and tools/ort_run.mjs."""
    return "".join(c if c.isalnum() and c.isascii() or c in "_.-" else "_" for c in name)


class Writer:
    """Saves models and their inputs into a directory and collects manifest lines."""

    def __init__(self, out):
        self.out = out
        self.lines = []
        self.names = set()

    def save(self, name, model, inputs, kind):
        assert name not in self.names, name
        self.names.add(name)
        onnx.save(model, os.path.join(self.out, name + ".onnx"))
        d = os.path.join(self.out, name + ".in")
        os.makedirs(d, exist_ok=True)
        files = []
        for iname, arr in inputs:
            assert arr.dtype in (np.float32, np.int64, np.int32, np.int8, np.uint8, np.bool_), (name, iname)
            f = os.path.join(name + ".in", safe(iname) + ".npy")
            np.save(os.path.join(self.out, f), arr)
            files.append(f"{iname}={f}")
        self.lines.append(" ".join([name, kind] + files))

    def manifest(self, fname):
        with open(os.path.join(self.out, fname), "w") as f:
            f.write("\n".join(self.lines) + "\n")


# ---------------------------------------------------------------- small graphs


class Small:
    """Builds one small graph: inputs with seeded values, initializers, nodes.

    The seed comes from the model's name, so adding a model changes no other model.
    """

    def __init__(self, name):
        self.name = name
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes, self.inits, self.inputs, self.values = [], [], [], []
        self.nid = 0

    def input(self, name, shape, scale=1.0, positive=False):
        """A graph input: standard normal values times scale; positive: in [0.5, 2]
        with a random sign (a divisor kept away from zero)."""
        if positive:
            v = self.rng.uniform(0.5, 2.0, shape) * self.rng.choice([-1.0, 1.0], shape)
        else:
            v = self.rng.standard_normal(shape) * scale
        self.inputs.append(h.make_tensor_value_info(name, T.FLOAT, list(shape)))
        self.values.append((name, np.asarray(v, np.float32)))
        return name

    def typed_input(self, name, arr):
        """A graph input of any element type, with the given values."""
        arr = np.asarray(arr)
        self.inputs.append(h.make_tensor_value_info(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype],
                                                    list(arr.shape)))
        self.values.append((name, arr))
        return name

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, name, shape, fan_in=None, scale=1.0):
        """Random weights of scale 1/sqrt(fan_in): outputs stay of order one."""
        fan_in = fan_in or int(np.prod(shape[1:]))
        return self.const(name, (self.rng.standard_normal(shape) * scale / np.sqrt(fan_in)).astype(np.float32))

    def bias(self, name, n):
        return self.const(name, (self.rng.standard_normal(n) * 0.5).astype(np.float32))

    def i64(self, name, vals):
        return self.const(name, np.array(vals, np.int64))

    def f32(self, name, vals):
        return self.const(name, np.array(vals, np.float32))

    def node(self, op, ins, nout=1, **attrs):
        """Adds a node; returns its output name (a list if nout > 1)."""
        self.nid += 1
        outs = [f"{op.lower()}{self.nid}" + (f"_{k}" if nout > 1 else "") for k in range(nout)]
        self.nodes.append(h.make_node(op, list(ins), outs, f"{op.lower()}_{self.nid}", **attrs))
        return outs if nout > 1 else outs[0]

    def batchnorm(self, x, c, eps=1e-5):
        r = self.rng
        p = [self.const(f"bn{self.nid}_{k}", v.astype(np.float32)) for k, v in (
            ("scale", r.uniform(0.5, 1.5, c)), ("b", r.standard_normal(c) * 0.2),
            ("mean", r.standard_normal(c) * 0.3), ("var", r.uniform(0.5, 2.0, c)))]
        return self.node("BatchNormalization", [x] + p, epsilon=eps)

    def conv(self, x, cin, cout, k, group=1, bias=True, **attrs):
        ks = k if isinstance(k, (list, tuple)) else [k, k]
        w = self.weight(f"w{self.nid + 1}", [cout, cin // group] + list(ks))
        ins = [x, w] + ([self.bias(f"b{self.nid + 1}", cout)] if bias else [])
        return self.node("Conv", ins, group=group, **attrs)

    def model(self, outputs, opset=OPSET):
        """The checked model; outputs: the names of the graph outputs, renamed y, y1, ...
        (through Identity when the value is also used inside the graph)."""
        outs = []
        for k, o in enumerate(outputs):
            yname = "y" if len(outputs) == 1 else f"y{k}"
            used = any(o in n.input for n in self.nodes)
            if used or o in [i.name for i in self.inputs]:
                self.nodes.append(h.make_node("Identity", [o], [yname], f"out_{k}"))
            else:
                for n in self.nodes:
                    n.output[:] = [yname if v == o else v for v in n.output]
            outs.append(h.make_tensor_value_info(yname, T.UNDEFINED, None))
        g = h.make_graph(self.nodes, self.name, self.inputs, outs, initializer=self.inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="systole-tests")
        m.ir_version = 8 if opset >= 15 else 7
        # Declare the output shapes, as exporters do.
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        for o, io in zip(m.graph.output, inferred.graph.output):
            o.CopyFrom(io)
        onnx.checker.check_model(m, full_check=True)
        return m


def small_models(w):
    def add(name, build, opset=OPSET):
        s = Small(name)
        outs = build(s)
        w.save(name, s.model(outs if isinstance(outs, list) else [outs], opset), s.values, "small")

    # Convolution: padding, stride, dilation, groups, depthwise, 1x1, big channel counts.
    add("conv_3x3_pad1", lambda s: s.conv(s.input("x", [1, 3, 16, 16]), 3, 8, 3, pads=[1, 1, 1, 1]))
    add("conv_1x1_nobias", lambda s: s.conv(s.input("x", [1, 16, 8, 8]), 16, 32, 1, bias=False))
    add("conv_stride2", lambda s: s.conv(s.input("x", [1, 4, 15, 15]), 4, 8, 3, strides=[2, 2], pads=[1, 1, 1, 1]))
    add("conv_asym_pads", lambda s: s.conv(s.input("x", [1, 3, 9, 11]), 3, 6, 3, pads=[0, 1, 2, 1]))
    add("conv_dilation2", lambda s: s.conv(s.input("x", [1, 4, 12, 12]), 4, 8, 3, dilations=[2, 2], pads=[2, 2, 2, 2]))
    add("conv_rect_stride_dil", lambda s: s.conv(s.input("x", [1, 5, 13, 17]), 5, 7, [3, 5], strides=[2, 1],
                                                 dilations=[1, 2], pads=[1, 3, 0, 2]))
    add("conv_5x5_stride2", lambda s: s.conv(s.input("x", [1, 6, 16, 16]), 6, 12, 5, strides=[2, 2], pads=[2, 2, 2, 2]))
    add("conv_7x7_stem", lambda s: s.conv(s.input("x", [1, 3, 32, 32]), 3, 16, 7, strides=[2, 2], pads=[3, 3, 3, 3]))
    add("conv_groups2", lambda s: s.conv(s.input("x", [1, 8, 10, 10]), 8, 12, 3, group=2, pads=[1, 1, 1, 1]))
    add("conv_groups4_stride2", lambda s: s.conv(s.input("x", [1, 16, 9, 9]), 16, 8, 3, group=4, strides=[2, 2]))
    add("conv_depthwise", lambda s: s.conv(s.input("x", [1, 16, 12, 12]), 16, 16, 3, group=16, pads=[1, 1, 1, 1]))
    add("conv_depthwise_s2_mult2", lambda s: s.conv(s.input("x", [1, 8, 11, 11]), 8, 16, 3, group=8,
                                                    strides=[2, 2], pads=[1, 1, 1, 1]))
    add("conv_depthwise_dil2", lambda s: s.conv(s.input("x", [1, 24, 10, 10]), 24, 24, 3, group=24,
                                                dilations=[2, 2], pads=[2, 2, 2, 2]))
    # Channel counts past one 128-lane tile and not a multiple of it.
    add("conv_depthwise_144", lambda s: s.conv(s.input("x", [1, 144, 8, 8]), 144, 144, 3, group=144, pads=[1, 1, 1, 1]))

    def conv_t(s, cin, cout, k, group=1, **attrs):
        w = s.weight(f"w{s.nid + 1}", [cin, cout // group, k, k])
        return s.node("ConvTranspose", [s.input("x", [1, cin, 5, 6]), w, s.bias(f"b{s.nid + 1}", cout)],
                      group=group, **attrs)
    add("convtranspose_s2", lambda s: conv_t(s, 6, 4, 3, strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]))
    add("convtranspose_group_dil", lambda s: conv_t(s, 6, 8, 3, group=2, dilations=[2, 2], strides=[3, 2]))
    add("convtranspose_same", lambda s: conv_t(s, 4, 4, 4, strides=[2, 2], auto_pad="SAME_UPPER"))
    add("conv_groups2_wide", lambda s: s.conv(s.input("x", [1, 200, 5, 5]), 200, 144, 3, group=2, pads=[1, 1, 1, 1]))
    add("conv_same_upper", lambda s: s.conv(s.input("x", [1, 3, 10, 10]), 3, 4, 3, strides=[2, 2], auto_pad="SAME_UPPER"))
    add("conv_wide", lambda s: s.conv(s.input("x", [1, 160, 6, 6]), 160, 200, 3, pads=[1, 1, 1, 1]))
    add("conv_batch2", lambda s: s.conv(s.input("x", [2, 3, 9, 9]), 3, 5, 3))

    # BatchNormalization alone and after conv (the folding pass), with relu and relu6.
    add("batchnorm", lambda s: s.batchnorm(s.input("x", [2, 8, 6, 6]), 8, eps=1e-3))
    add("conv_bn_relu", lambda s: s.node("Relu", [s.batchnorm(
        s.conv(s.input("x", [1, 8, 10, 10]), 8, 16, 3, pads=[1, 1, 1, 1]), 16)]))
    add("conv_bn_nobias", lambda s: s.batchnorm(s.conv(s.input("x", [1, 4, 8, 8]), 4, 8, 3, bias=False), 8))

    def dw_bn_relu6(s):
        x = s.conv(s.input("x", [1, 16, 8, 8]), 16, 16, 3, group=16, bias=False, pads=[1, 1, 1, 1])
        return s.node("Clip", [s.batchnorm(x, 16), s.f32("lo", 0.0), s.f32("hi", 6.0)])
    add("dw_bn_relu6", dw_bn_relu6)

    # Gemm: transA, transB, alpha, beta, the shapes C broadcasts from, no C.
    def gemm(M, K, N, ta=0, tb=0, c=(-1,), both_inputs=False, **attrs):
        def build(s):
            a = s.input("a", [K, M] if ta else [M, K])
            bshape = [N, K] if tb else [K, N]
            b = s.input("b", bshape) if both_inputs else s.weight("w", bshape, fan_in=K)
            ins = [a, b] + ([s.bias("c", [N] if c == (-1,) else list(c))] if c is not None else [])
            return s.node("Gemm", ins, transA=ta, transB=tb, **attrs)
        return build
    add("gemm_basic", gemm(4, 32, 16))
    add("gemm_transb", gemm(4, 32, 16, tb=1))
    add("gemm_transa", gemm(4, 32, 16, ta=1))
    add("gemm_transa_transb", gemm(3, 20, 9, ta=1, tb=1))
    add("gemm_alpha_beta", gemm(4, 32, 16, c=(1, 16), alpha=0.5, beta=2.0))
    add("gemm_c_full", gemm(4, 32, 16, c=(4, 16), beta=0.25))
    add("gemm_c_column", gemm(4, 32, 16, c=(4, 1)))
    add("gemm_c_one", gemm(4, 32, 16, c=(1,), alpha=-1.5))
    add("gemm_no_c", gemm(5, 24, 12, c=None, alpha=2.0))
    add("gemm_inputs", gemm(6, 20, 10, both_inputs=True, tb=1))
    add("gemm_large", gemm(8, 300, 260, tb=1))

    # MatMul: 2-D, A rank 3 with B rank 2, two activations, sizes past one MXU tile.
    def matmul(ashape, bshape, both_inputs=False):
        def build(s):
            b = s.input("b", bshape) if both_inputs else s.weight("w", bshape, fan_in=bshape[0])
            return s.node("MatMul", [s.input("a", ashape), b])
        return build
    add("matmul_2d", matmul([8, 64], [64, 32]))
    add("matmul_3d_2d", matmul([2, 5, 48], [48, 24]))
    add("matmul_inputs", matmul([6, 20], [20, 10], both_inputs=True))
    add("matmul_large", matmul([70, 200], [200, 150]))
    add("matmul_vector_rows", matmul([1, 130], [130, 3]))
    add("matmul_bias_relu", lambda s: s.node("Relu", [s.node("Add", [
        s.node("MatMul", [s.input("a", [2, 7, 40]), s.weight("w", [40, 24])]), s.bias("bias", 24)])]))

    # Pools.
    add("maxpool_2x2", lambda s: s.node("MaxPool", [s.input("x", [1, 4, 8, 8])], kernel_shape=[2, 2], strides=[2, 2]))
    add("maxpool_3x3_s2_p1", lambda s: s.node("MaxPool", [s.input("x", [1, 4, 9, 9])], kernel_shape=[3, 3],
                                              strides=[2, 2], pads=[1, 1, 1, 1]))
    add("maxpool_3x3_s1", lambda s: s.node("MaxPool", [s.input("x", [2, 3, 7, 6])], kernel_shape=[3, 3]))
    add("maxpool_ceil", lambda s: s.node("MaxPool", [s.input("x", [1, 3, 10, 10])], kernel_shape=[3, 3],
                                         strides=[2, 2], ceil_mode=1))
    add("maxpool_dilation2", lambda s: s.node("MaxPool", [s.input("x", [1, 2, 9, 9])], kernel_shape=[2, 2],
                                              dilations=[2, 2]))
    add("maxpool_rect_pads", lambda s: s.node("MaxPool", [s.input("x", [1, 3, 8, 9])], kernel_shape=[2, 3],
                                              strides=[2, 1], pads=[0, 1, 1, 1]))
    add("avgpool_2x2", lambda s: s.node("AveragePool", [s.input("x", [1, 4, 8, 8])], kernel_shape=[2, 2], strides=[2, 2]))
    add("avgpool_3x3_p1_exclude", lambda s: s.node("AveragePool", [s.input("x", [1, 4, 7, 7])], kernel_shape=[3, 3],
                                                   pads=[1, 1, 1, 1], count_include_pad=0))
    add("avgpool_3x3_p1_include", lambda s: s.node("AveragePool", [s.input("x", [1, 4, 7, 7])], kernel_shape=[3, 3],
                                                   pads=[1, 1, 1, 1], count_include_pad=1))
    add("avgpool_ceil", lambda s: s.node("AveragePool", [s.input("x", [1, 3, 10, 10])], kernel_shape=[3, 3],
                                         strides=[2, 2], ceil_mode=1))
    add("maxpool_wide", lambda s: s.node("MaxPool", [s.input("x", [1, 144, 6, 6])], kernel_shape=[3, 3],
                                         strides=[2, 2], pads=[1, 1, 1, 1]))
    add("avgpool_wide", lambda s: s.node("AveragePool", [s.input("x", [1, 200, 6, 6])], kernel_shape=[2, 2],
                                         strides=[2, 2]))
    add("global_avgpool", lambda s: s.node("GlobalAveragePool", [s.input("x", [1, 8, 7, 7])]))
    add("global_avgpool_batch2", lambda s: s.node("GlobalAveragePool", [s.input("x", [2, 5, 3, 4])]))
    add("global_avgpool_wide", lambda s: s.node("GlobalAveragePool", [s.input("x", [1, 300, 4, 4])]))

    # Elementwise arithmetic with broadcasting.
    add("add_same", lambda s: s.node("Add", [s.input("a", [2, 3, 4, 5]), s.input("b", [2, 3, 4, 5])]))
    add("add_channel_const", lambda s: s.node("Add", [s.input("x", [1, 4, 5, 5]), s.bias("c", [1, 4, 1, 1])]))
    add("add_channel_wide", lambda s: s.node("Add", [s.input("x", [1, 144, 3, 3]), s.bias("c", [1, 144, 1, 1])]))
    add("add_last_dim", lambda s: s.node("Add", [s.input("a", [2, 3, 4, 5]), s.input("b", [5])]))
    add("add_scalar", lambda s: s.node("Add", [s.input("x", [3, 7]), s.f32("c", 0.75)]))
    add("add_both_broadcast", lambda s: s.node("Add", [s.input("a", [2, 1, 4, 5]), s.input("b", [1, 3, 1, 5])]))
    add("sub_const_first", lambda s: s.node("Sub", [s.bias("c", [4, 1, 1]), s.input("x", [2, 4, 3, 3])]))
    add("sub_same", lambda s: s.node("Sub", [s.input("a", [6, 10]), s.input("b", [6, 10])]))
    add("mul_channel", lambda s: s.node("Mul", [s.input("x", [1, 6, 4, 4]), s.input("g", [1, 6, 1, 1])]))
    add("mul_scalar", lambda s: s.node("Mul", [s.f32("c", -2.5), s.input("x", [4, 9])]))
    add("div_broadcast", lambda s: s.node("Div", [s.input("x", [2, 3, 4]), s.input("d", [1, 1, 4], positive=True)]))
    add("div_const", lambda s: s.node("Div", [s.input("x", [3, 8]), s.f32("c", [[1.5], [-3.0], [0.8]])]))
    add("div_same", lambda s: s.node("Div", [s.input("x", [5, 6]), s.input("d", [5, 6], positive=True)]))

    # Activations, over a range wide enough to reach every piece of each.
    add("relu", lambda s: s.node("Relu", [s.input("x", [2, 3, 5, 5])]))
    add("relu_wide", lambda s: s.node("Relu", [s.input("x", [1, 144, 3, 5])]))
    add("clip_0_6", lambda s: s.node("Clip", [s.input("x", [1, 4, 6, 6], scale=4.0), s.f32("lo", 0.0), s.f32("hi", 6.0)]))
    add("clip_min_only", lambda s: s.node("Clip", [s.input("x", [3, 10], scale=2.0), s.f32("lo", -0.5)]))
    add("clip_max_only", lambda s: s.node("Clip", [s.input("x", [3, 10], scale=2.0), "", s.f32("hi", 0.25)]))
    add("clip_opset7", lambda s: s.node("Clip", [s.input("x", [4, 9], scale=2.0)], min=-1.0, max=1.5), opset=7)
    add("sigmoid", lambda s: s.node("Sigmoid", [s.input("x", [2, 4, 5], scale=4.0)]))
    add("tanh", lambda s: s.node("Tanh", [s.input("x", [2, 4, 5], scale=3.0)]))
    add("hardsigmoid", lambda s: s.node("HardSigmoid", [s.input("x", [2, 4, 5], scale=4.0)]))
    add("hardsigmoid_alpha_beta", lambda s: s.node("HardSigmoid", [s.input("x", [3, 16], scale=4.0)],
                                                   alpha=1.0 / 6.0, beta=0.5))
    add("hardswish", lambda s: s.node("HardSwish", [s.input("x", [1, 3, 6, 6], scale=4.0)]), opset=14)
    add("softmax_last", lambda s: s.node("Softmax", [s.input("x", [3, 10], scale=2.0)], axis=-1))
    add("softmax_axis0", lambda s: s.node("Softmax", [s.input("x", [4, 6], scale=2.0)], axis=0))
    add("softmax_axis1_4d", lambda s: s.node("Softmax", [s.input("x", [1, 5, 3, 4], scale=2.0)], axis=1))
    add("softmax_wide_range", lambda s: s.node("Softmax", [s.input("x", [2, 200], scale=20.0)]))
    add("softmax_opset11", lambda s: s.node("Softmax", [s.input("x", [2, 3, 4], scale=2.0)], axis=1), opset=11)

    # Data movement.
    add("flatten_axis1", lambda s: s.node("Flatten", [s.input("x", [2, 3, 4, 5])], axis=1))
    add("flatten_axis0", lambda s: s.node("Flatten", [s.input("x", [2, 3, 4])], axis=0))
    add("flatten_axis2", lambda s: s.node("Flatten", [s.input("x", [2, 3, 4, 5])], axis=2))
    add("reshape_zero_minus1", lambda s: s.node("Reshape", [s.input("x", [2, 3, 4]), s.i64("shape", [0, -1])]))
    add("reshape_4d", lambda s: s.node("Reshape", [s.input("x", [1, 12, 2, 2]), s.i64("shape", [1, 3, 4, 4])]))
    add("transpose_nhwc", lambda s: s.node("Transpose", [s.input("x", [1, 3, 4, 5])], perm=[0, 2, 3, 1]))
    add("transpose_2d", lambda s: s.node("Transpose", [s.input("x", [5, 7])], perm=[1, 0]))
    add("transpose_reverse", lambda s: s.node("Transpose", [s.input("x", [2, 3, 4])]))
    add("transpose_wide", lambda s: s.node("Transpose", [s.input("x", [130, 260])], perm=[1, 0]))
    add("concat_channels", lambda s: s.node("Concat", [s.input("a", [1, 2, 4, 4]), s.input("b", [1, 3, 4, 4]),
                                                       s.input("c", [1, 1, 4, 4])], axis=1))
    add("concat_last", lambda s: s.node("Concat", [s.input("a", [2, 3]), s.input("b", [2, 5])], axis=-1))
    add("concat_axis0_const", lambda s: s.node("Concat", [s.input("a", [2, 4]), s.bias("c", [3, 4])], axis=0))
    add("split_equal", lambda s: s.node("Split", [s.input("x", [1, 6, 3, 3])], nout=2, axis=1))
    add("split_sizes", lambda s: s.node("Split", [s.input("x", [2, 6, 3]), s.i64("sizes", [1, 3, 2])], nout=3, axis=1))
    add("split_last", lambda s: s.node("Split", [s.input("x", [4, 10]), s.i64("sizes", [7, 3])], nout=2, axis=-1))
    add("split_opset11", lambda s: s.node("Split", [s.input("x", [5, 4])], nout=2, axis=0, split=[2, 3]), opset=11)
    add("slice_basic", lambda s: s.node("Slice", [s.input("x", [1, 4, 6, 6]), s.i64("st", [1, 0]),
                                                  s.i64("en", [3, -1]), s.i64("ax", [1, 3])]))
    add("slice_steps", lambda s: s.node("Slice", [s.input("x", [2, 3, 10]), s.i64("st", [1]), s.i64("en", [9]),
                                                  s.i64("ax", [2]), s.i64("sp", [3])]))
    add("slice_reverse", lambda s: s.node("Slice", [s.input("x", [3, 8]), s.i64("st", [-1]),
                                                    s.i64("en", [-(2 ** 63)]), s.i64("ax", [1]), s.i64("sp", [-1])]))
    add("slice_clamped", lambda s: s.node("Slice", [s.input("x", [4, 5]), s.i64("st", [-3, 2]),
                                                    s.i64("en", [2 ** 63 - 1, 1000])]))
    add("slice_opset9", lambda s: s.node("Slice", [s.input("x", [3, 6])], starts=[1], ends=[5], axes=[1]), opset=9)
    add("pad_constant", lambda s: s.node("Pad", [s.input("x", [1, 2, 4, 4]), s.i64("pads", [0, 0, 1, 2, 0, 0, 2, 1]),
                                                 s.f32("v", 0.5)]))
    add("pad_zero", lambda s: s.node("Pad", [s.input("x", [2, 3, 3]), s.i64("pads", [0, 1, 1, 0, 0, 2])]))
    add("pad_reflect", lambda s: s.node("Pad", [s.input("x", [1, 2, 5, 5]), s.i64("pads", [0, 0, 2, 1, 0, 0, 1, 2])],
                                        mode="reflect"))
    add("pad_edge", lambda s: s.node("Pad", [s.input("x", [1, 2, 4, 5]), s.i64("pads", [0, 0, 1, 3, 0, 0, 2, 0])],
                                     mode="edge"))
    add("pad_opset9", lambda s: s.node("Pad", [s.input("x", [2, 4])], pads=[1, 0, 0, 2], value=-1.0), opset=9)
    add("identity", lambda s: s.node("Identity", [s.input("x", [3, 4])]))

    # Small combinations: what networks do.
    def cnn(s):
        x = s.node("Relu", [s.conv(s.input("x", [1, 4, 12, 12]), 4, 8, 3, pads=[1, 1, 1, 1])])
        x = s.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        x = s.node("Relu", [s.conv(x, 8, 16, 3, pads=[1, 1, 1, 1])])
        x = s.node("Flatten", [s.node("GlobalAveragePool", [x])])
        x = s.node("Gemm", [x, s.weight("wfc", [10, 16]), s.bias("bfc", 10)], transB=1)
        return s.node("Softmax", [x], axis=1)
    add("cnn_small", cnn)

    def residual(s):
        x = s.input("x", [1, 8, 8, 8])
        y = s.node("Relu", [s.batchnorm(s.conv(x, 8, 8, 3, bias=False, pads=[1, 1, 1, 1]), 8)])
        y = s.batchnorm(s.conv(y, 8, 8, 3, bias=False, pads=[1, 1, 1, 1]), 8)
        return s.node("Relu", [s.node("Add", [y, x])])
    add("residual_block", residual)

    def residual_down(s):
        x = s.input("x", [1, 8, 10, 10])
        y = s.node("Relu", [s.batchnorm(s.conv(x, 8, 16, 3, bias=False, strides=[2, 2], pads=[1, 1, 1, 1]), 16)])
        y = s.batchnorm(s.conv(y, 16, 16, 3, bias=False, pads=[1, 1, 1, 1]), 16)
        sc = s.batchnorm(s.conv(x, 8, 16, 1, bias=False, strides=[2, 2]), 16)
        return s.node("Relu", [s.node("Add", [sc, y])])
    add("residual_downsample", residual_down)

    def inverted_residual(s):
        x = s.input("x", [1, 8, 8, 8])
        r6 = lambda v: s.node("Clip", [v, s.f32(f"lo{s.nid}", 0.0), s.f32(f"hi{s.nid}", 6.0)])
        y = r6(s.batchnorm(s.conv(x, 8, 48, 1, bias=False), 48))
        y = r6(s.batchnorm(s.conv(y, 48, 48, 3, group=48, bias=False, pads=[1, 1, 1, 1]), 48))
        y = s.batchnorm(s.conv(y, 48, 8, 1, bias=False), 8)
        return s.node("Add", [x, y])
    add("inverted_residual", inverted_residual)

    def squeeze_excite(s):
        x = s.node("HardSwish", [s.conv(s.input("x", [1, 8, 6, 6]), 8, 16, 3, pads=[1, 1, 1, 1])])
        g = s.node("Relu", [s.conv(s.node("GlobalAveragePool", [x]), 16, 4, 1)])
        g = s.node("HardSigmoid", [s.conv(g, 4, 16, 1)], alpha=1.0 / 6.0, beta=0.5)
        return s.node("Mul", [x, g])
    add("squeeze_excite", squeeze_excite, opset=14)

    def attention(s):
        x = s.input("x", [8, 16])
        q, k, v = (s.node("MatMul", [x, s.weight(f"w{n}", [16, 16])]) for n in "qkv")
        sc = s.node("Mul", [s.node("MatMul", [q, s.node("Transpose", [k], perm=[1, 0])]), s.f32("scale", 0.25)])
        return s.node("MatMul", [s.node("Softmax", [sc], axis=-1), v])
    add("attention_2d", attention)

    def mlp(s):
        x = s.node("Flatten", [s.input("x", [2, 3, 4, 4])])
        x = s.node("Relu", [s.node("Gemm", [x, s.weight("w1", [64, 48]), s.bias("b1", 64)], transB=1)])
        x = s.node("Tanh", [s.node("Gemm", [x, s.weight("w2", [64, 32]), s.bias("b2", 32)])])
        return s.node("Gemm", [x, s.weight("w3", [5, 32]), s.bias("b3", 5)], transB=1)
    add("mlp", mlp)

    def explicit_norm(s):
        x = s.conv(s.input("x", [1, 3, 8, 8]), 3, 6, 3)
        x = s.node("Div", [s.node("Sub", [x, s.bias("mu", [1, 6, 1, 1])]), s.f32("sd", np.full((6, 1, 1), 1.7, np.float32))])
        return s.node("Sigmoid", [s.node("Add", [s.node("Mul", [x, s.bias("g", [6, 1, 1])]), s.bias("b", [1, 6, 1, 1])])])
    add("explicit_norm", explicit_norm)

    add("pad_conv", lambda s: s.conv(s.node("Pad", [s.input("x", [1, 3, 6, 6]), s.i64("pads", [0, 0, 2, 1, 0, 0, 0, 1])]),
                                     3, 4, 3))

    def split_concat(s):
        a, b = s.node("Split", [s.conv(s.input("x", [1, 4, 5, 5]), 4, 8, 1)], nout=2, axis=1)
        return s.node("Concat", [s.node("Relu", [a]), s.node("Sigmoid", [b])], axis=1)
    add("split_concat", split_concat)

    def two_branches(s):
        x = s.input("x", [1, 6, 8, 8])
        a = s.conv(x, 6, 4, 1)
        b = s.conv(x, 6, 4, 3, pads=[1, 1, 1, 1])
        c = s.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
        return s.node("Concat", [a, b, c], axis=1)
    add("inception_branches", two_branches)

    def slice_add(s):
        x = s.input("x", [2, 8, 5])
        a = s.node("Slice", [x, s.i64("s0", [0]), s.i64("e0", [4]), s.i64("a0", [1])])
        b = s.node("Slice", [x, s.i64("s1", [4]), s.i64("e1", [8]), s.i64("a1", [1])])
        return s.node("Add", [a, b])
    add("slice_add", slice_add)

    # Inputs and outputs of integer and boolean types: data movement keeps every bit.
    def typed_moves(dtype, vals):
        def build(s):
            x = s.typed_input("x", np.asarray(vals, dtype).reshape(2, 3, 4))
            t = s.node("Transpose", [x], perm=[2, 0, 1])
            r = s.node("Reshape", [x, s.i64("shape", [6, 4])])
            c = s.node("Concat", [s.node("Slice", [x, s.i64("s", [1]), s.i64("e", [3]), s.i64("a", [2])]), x], axis=2)
            return [t, r, c]
        return build
    big = [(-1) ** k * (k * 0x10000000001 + 3) for k in range(24)]
    add("moves_i64", typed_moves(np.int64, big))
    add("moves_i32", typed_moves(np.int32, [(-1) ** k * (k * 16777217 + 1) for k in range(24)]))
    add("moves_u8", typed_moves(np.uint8, [k * 11 % 256 for k in range(24)]))
    add("moves_i8", typed_moves(np.int8, [k * 11 % 256 - 128 for k in range(24)]))
    add("moves_bool", typed_moves(np.bool_, [k % 3 == 0 for k in range(24)]))

    def transpose_matmul(s):
        x = s.node("Transpose", [s.input("x", [2, 4, 6])], perm=[0, 2, 1])
        return s.node("Softmax", [s.node("MatMul", [x, s.weight("w", [4, 5])])], axis=-1)
    add("transpose_matmul_softmax", transpose_matmul)

    def reshape_gemm(s):
        x = s.node("Reshape", [s.node("Relu", [s.input("x", [1, 2, 4, 4])]), s.i64("shape", [1, -1])])
        return [s.node("Gemm", [x, s.weight("w", [32, 7]), s.bias("b", 7)]), x]
    add("reshape_gemm_two_outputs", reshape_gemm)

    # Issue 4: elementwise math, activations, reductions, normalisations, attention.
    un = lambda op, pre=None, **at: (lambda s: s.node(op, [s.node(pre, [s.input("x", [2, 3, 17])]) if pre
                                                       else s.input("x", [2, 3, 17])], **at))
    add("exp", un("Exp"))
    add("log_abs", un("Log", "Abs"))
    add("sqrt_abs", un("Sqrt", "Abs"))
    add("reciprocal", lambda s: s.node("Reciprocal", [s.input("x", [4, 9], positive=True)]))
    add("erf", un("Erf"))
    add("neg", un("Neg"))
    add("abs", un("Abs"))
    add("leaky_relu", un("LeakyRelu", alpha=0.1))
    add("leaky_relu_steep", un("LeakyRelu", alpha=2.5))
    add("prelu_channel", lambda s: s.node("PRelu", [s.input("x", [1, 4, 5, 5]),
                                                   s.f32("slope", np.array([0.1, 0.25, 0.0, 1.0]).reshape(4, 1, 1))]))
    add("prelu_mixed", lambda s: s.node("PRelu", [s.input("x", [2, 3, 6]), s.f32("slope", [-0.5, 0.3, 2.0, 1.5, 0.0, -1.0])]))
    add("pow_square", lambda s: s.node("Pow", [s.input("x", [3, 10]), s.f32("e", 2.0)]))
    add("pow_general", lambda s: s.node("Pow", [s.node("Abs", [s.input("x", [3, 10])]), s.input("e", [10])]))
    add("max3_broadcast", lambda s: s.node("Max", [s.input("a", [2, 3, 4]), s.input("b", [3, 1]), s.input("c", [4])]))
    add("min2", lambda s: s.node("Min", [s.input("a", [5, 6]), s.input("b", [5, 6])]))
    red = lambda op, axes, keep=1, shape=(2, 3, 4, 5): (lambda s: s.node(op, [s.input("x", list(shape))], axes=axes,
                                                                        keepdims=keep))
    add("reduce_mean_last", red("ReduceMean", [-1]), opset=13)
    add("reduce_max_middle", red("ReduceMax", [1], keep=0), opset=13)
    add("reduce_min_two", red("ReduceMin", [0, 2]), opset=13)
    add("reduce_prod_first", lambda s: s.node("ReduceProd", [s.input("x", [3, 4, 5], positive=True)], axes=[0]),
        opset=13)
    add("reduce_sum_all", lambda s: s.node("ReduceSum", [s.input("x", [3, 4, 5])], keepdims=0), opset=13)
    add("reduce_sum_axes_input", lambda s: s.node("ReduceSum", [s.input("x", [2, 3, 4, 5]), s.i64("axes", [1, 3])]),
        opset=13)

    def layernorm(axis, bias=True):
        def build(s):
            x = s.input("x", [2, 5, 16])
            n = int(np.prod([2, 5, 16][axis:]))
            shp = [2, 5, 16][axis:]
            sc = s.f32("scale", (s.rng.uniform(0.5, 1.5, n)).reshape(shp))
            ins = [x, sc] + ([s.f32("bias", (s.rng.standard_normal(n) * 0.3).reshape(shp))] if bias else [])
            return s.node("LayerNormalization", ins, axis=axis, epsilon=1e-5)
        return build
    add("layernorm_last", layernorm(-1), opset=17)
    add("layernorm_two_dims", layernorm(1, bias=False), opset=17)
    add("log_softmax_last", lambda s: s.node("LogSoftmax", [s.input("x", [3, 11])], axis=-1))
    add("log_softmax_axis1", lambda s: s.node("LogSoftmax", [s.input("x", [2, 5, 4])], axis=1))

    def attention(s):
        # Single-head scaled dot-product attention, as exporters write it.
        x = s.input("x", [2, 6, 16])
        q = s.node("MatMul", [x, s.weight("wq", [16, 16])])
        k = s.node("MatMul", [x, s.weight("wk", [16, 16])])
        v = s.node("MatMul", [x, s.weight("wv", [16, 16])])
        sc = s.node("Div", [s.node("MatMul", [q, s.node("Transpose", [k], perm=[0, 2, 1])]), s.f32("d", 4.0)])
        return s.node("MatMul", [s.node("Softmax", [sc], axis=-1), v])
    add("attention", attention)

    def mini_transformer_block(s):
        x = s.input("x", [1, 8, 32])
        h1 = layernorm_node(s, x, 32)
        # GELU as exporters before opset 20 write it: x * 0.5 * (1 + erf(x / sqrt 2)).
        f = s.node("MatMul", [h1, s.weight("w1", [32, 64])])
        e = s.node("Add", [s.node("Erf", [s.node("Div", [f, s.f32("sqrt2", 1.4142135)])]), s.f32("one", 1.0)])
        f = s.node("Mul", [s.node("Mul", [f, e]), s.f32("half", 0.5)])
        f = s.node("MatMul", [f, s.weight("w2", [64, 32])])
        return s.node("Add", [x, f])

    def layernorm_node(s, x, n):
        return s.node("LayerNormalization", [x, s.f32(f"g{s.nid}", s.rng.uniform(0.5, 1.5, n)),
                                             s.f32(f"b{s.nid}", s.rng.standard_normal(n) * 0.1)], axis=-1)
    add("transformer_mlp_block", mini_transformer_block, opset=17)

    # Recurrences: LSTM, GRU and RNN in every direction, with and without biases and
    # initial states (constants or graph inputs), every output, peepholes, clip,
    # input_forget, linear_before_reset, sequence_lens, non-default activations,
    # stacked layers. (ONNX Runtime refuses layout 1, batch first: tests/test_rnn.c
    # holds those models to their layout-0 twins instead.)
    def rnn(s, op, x, S, B, I, H, direction="forward", bias=True, h0=None, c0=None, peep=False, lens=None,
            outs=(0, 1, 2), weight_inputs=False, **attrs):
        """An LSTM, GRU or RNN node over x; h0/c0: None (absent), "const" or "input".
        outs: which outputs exist (0 Y, 1 Y_h, 2 Y_c); weight_inputs: W, R and B are
        graph inputs (computed at run time) instead of initializers. Returns the
        outputs' names."""
        G, D = {"LSTM": 4, "GRU": 3, "RNN": 1}[op], (2 if direction == "bidirectional" else 1)
        k = s.nid + 1
        if weight_inputs:
            wr = [s.input(f"W{k}", [D, G * H, I], scale=I ** -0.5), s.input(f"R{k}", [D, G * H, H], scale=H ** -0.5),
                  s.input(f"B{k}", [D, 2 * G * H], scale=0.5) if bias else ""]
        else:
            wr = [s.weight(f"W{k}", [D, G * H, I], fan_in=I), s.weight(f"R{k}", [D, G * H, H], fan_in=H),
                  s.bias(f"B{k}", [D, 2 * G * H]) if bias else ""]
        ins = [x] + wr + [s.const(f"lens{k}", np.array(lens, np.int32)) if lens is not None else ""]
        state = [D, B, H]
        for name, kind in [("h0", h0)] + ([("c0", c0)] if op == "LSTM" else []):
            if kind == "const":
                ins.append(s.const(f"{name}_{k}", (s.rng.standard_normal(state) * 0.5).astype(np.float32)))
            elif kind == "input":
                ins.append(s.input(f"{name}_{k}", state, scale=0.5))
            else:
                ins.append("")
        if peep:
            ins.append(s.const(f"P{k}", (s.rng.standard_normal([D, 3 * H]) * 0.5).astype(np.float32)))
        while ins[-1] == "":
            ins.pop()
        s.nid += 1
        names = [f"{op.lower()}{s.nid}_{n}" for n in ("y", "yh", "yc")[:3 if op == "LSTM" else 2]]
        outputs = [n if i in outs else "" for i, n in enumerate(names)]
        while outputs[-1] == "":
            outputs.pop()
        s.nodes.append(h.make_node(op, ins, outputs, f"{op.lower()}_{s.nid}", hidden_size=H, direction=direction,
                                   **attrs))
        return [n for n in outputs if n]

    def rnn_model(op, S=5, B=2, I=3, H=4, **kw):
        return lambda s: rnn(s, op, s.input("x", [S, B, I]), S, B, I, H, **kw)
    add("lstm_forward", rnn_model("LSTM"))
    add("lstm_reverse_state_inputs", rnn_model("LSTM", direction="reverse", h0="input", c0="input"))
    add("lstm_bidirectional", rnn_model("LSTM", direction="bidirectional", h0="const", c0="const", B=3))
    add("lstm_no_bias_y_only", rnn_model("LSTM", bias=False, outs=(0,), direction="bidirectional"))
    add("lstm_yc_only", rnn_model("LSTM", outs=(2,), h0="const", c0="input"))
    add("lstm_peepholes_clip", rnn_model("LSTM", direction="bidirectional", peep=True, h0="input", c0="const",
                                         clip=0.6))
    add("lstm_input_forget", rnn_model("LSTM", input_forget=1, peep=True, c0="const"))
    add("lstm_seq_lens", rnn_model("LSTM", direction="bidirectional", B=4, lens=[5, 2, 0, 4], h0="const",
                                   c0="input"))
    add("lstm_activations", rnn_model("LSTM", direction="bidirectional", h0="const", c0="const",
                                      activations=["HardSigmoid", "LeakyRelu", "Softsign",
                                                   "Sigmoid", "ScaledTanh", "Affine"],
                                      activation_alpha=[0.25, 0.1, 0.8, 0.5], activation_beta=[0.45, 1.2, 0.1]))
    add("lstm_activations_elu_softplus", rnn_model("LSTM", activations=["sigmoid", "Elu", "Softplus"],
                                                   activation_alpha=[0.7]))
    add("lstm_wide", rnn_model("LSTM", S=3, B=2, I=150, H=40, h0="const"))
    add("lstm_runtime_weights", rnn_model("LSTM", direction="bidirectional", weight_inputs=True, h0="input"))
    add("gru_runtime_weights", rnn_model("GRU", weight_inputs=True, linear_before_reset=1, h0="const"))
    add("gru_forward", rnn_model("GRU"))
    add("gru_linear_before_reset", rnn_model("GRU", direction="bidirectional", linear_before_reset=1, h0="input"))
    add("gru_reverse_clip", rnn_model("GRU", direction="reverse", clip=0.5, h0="const", bias=False))
    add("gru_lbr_no_state", rnn_model("GRU", linear_before_reset=1, outs=(1,)))
    add("gru_seq_lens", rnn_model("GRU", direction="bidirectional", linear_before_reset=1, B=3, lens=[3, 5, 1],
                                  h0="const"))
    add("gru_activations", rnn_model("GRU", direction="bidirectional", activations=["HardSigmoid", "Relu",
                                                                                    "Sigmoid", "Softsign"]))

    add("rnn_forward", rnn_model("RNN"))
    add("rnn_bidirectional_state", rnn_model("RNN", direction="bidirectional", h0="input", clip=0.8))
    add("rnn_reverse_seq_lens", rnn_model("RNN", direction="reverse", B=3, lens=[2, 5, 0], h0="const", bias=False))
    add("rnn_activations", rnn_model("RNN", direction="bidirectional", activations=["Relu", "Softsign"]))

    def rnn_stack(s):
        # Two layers as exporters write them: Y [S,2,B,H] -> [S,B,2H] into the next.
        S, B, I, H = 4, 2, 3, 5
        y = rnn(s, "LSTM", s.input("x", [S, B, I]), S, B, I, H, direction="bidirectional", outs=(0,))[0]
        y = s.node("Reshape", [s.node("Transpose", [y], perm=[0, 2, 1, 3]), s.i64("shape", [S, B, 2 * H])])
        y, yh = rnn(s, "GRU", y, S, B, 2 * H, H, outs=(0, 1), linear_before_reset=1)
        return [s.node("Squeeze", [y, s.i64("axes", [1])]), yh]
    add("recurrent_two_layers", rnn_stack)


# ---------------------------------------------------------------- torchvision networks

TORCH_SEED = 20240603
# (name, constructor, keyword arguments, input shape, kind)
NETWORKS = [
    ("resnet18", "resnet18", {}, (1, 3, 64, 64), "net"),
    ("mobilenet_v2", "mobilenet_v2", {}, (2, 3, 64, 64), "net"),
    ("resnet18_224", "resnet18", {}, (1, 3, 224, 224), "timing"),
]


def randomize(torch, model, gen, shape):
    """Random weights that carry signal: every parameter re-drawn (torchvision zeroes
    classifier biases and, with zero_init_residual, residual BN gammas), then BatchNorm
    statistics measured on random images so each layer's output is of unit scale, then
    perturbed so they are not exact batch statistics."""
    nn = torch.nn
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batch
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, m.in_features ** -0.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)
        model.train()
        model(torch.randn((8,) + tuple(shape[1:]), generator=gen))
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.add_(torch.randn(n, generator=gen) * 0.1 * m.running_var.sqrt())
                m.running_var.mul_(torch.empty(n).uniform_(0.8, 1.25, generator=gen))
                # A channel that was nearly constant on the calibration batch would
                # otherwise be scaled up by 1/sqrt(var): a random network made that
                # ill-conditioned amplifies bf16 rounding (or any perturbation) by
                # orders of magnitude, which no trained network does.
                m.running_var.clamp_(min=0.1 * float(m.running_var.mean()) + 1e-3)
        # Residual branches start small, as torchvision's zero_init_residual suggests
        # (but not zero, so they carry signal): a deep random MobileNetV2 without it is
        # chaotic, its output moving by ~13% of its range under bf16 rounding of the
        # conv operands against under 1% with it.
        import torchvision
        for blk in model.modules():
            if isinstance(blk, torchvision.models.mobilenetv2.InvertedResidual) and blk.use_res_connect:
                [m for m in blk.modules() if isinstance(m, nn.BatchNorm2d)][-1].weight.mul_(0.3)


def pick_input(torch, model, rng, shape):
    """A seeded random input: each image is the first of the draws whose top-2 logit
    margin is at least 0.15 of its largest |logit|, three times the error the default
    precision may make on whole networks, so that the tests' top-1 check applies at
    both precisions."""
    rows, logits = [], []
    for _ in range(shape[0]):
        for _ in range(100):
            x = rng.standard_normal((1,) + tuple(shape[1:])).astype(np.float32)
            with torch.no_grad():
                y = model(torch.from_numpy(x)).numpy()
            top2 = np.sort(y[0])[-2:]
            if top2[1] - top2[0] >= 0.15 * np.abs(y).max():
                break
        else:
            raise AssertionError("no input with a clear top-1 class in 100 draws")
        rows.append(x)
        logits.append(y)
    return np.concatenate(rows), np.concatenate(logits)


def torch_models(w):
    import torch
    import torchvision

    torch.set_num_threads(1)
    torch.manual_seed(TORCH_SEED)
    for i, (name, ctor, kwargs, shape, kind) in enumerate(NETWORKS):
        gen = torch.Generator().manual_seed(TORCH_SEED + i)
        model = getattr(torchvision.models, ctor)(weights=None, **kwargs)
        randomize(torch, model, gen, shape)
        x, logits = pick_input(torch, model, np.random.default_rng(TORCH_SEED + i), shape)
        # The signal check: finite, spread out, and not one class everywhere.
        top2 = np.sort(logits, axis=1)[:, -2:]
        spread = float(logits.std())
        assert np.isfinite(logits).all() and spread > 0.1, (name, spread)
        print(f"make_test_models: {name} {list(shape)}: logits std {spread:.3f}, max |logit| "
              f"{np.abs(logits).max():.3f}, top-1 {logits.argmax(1).tolist()}, margins "
              f"{[round(float(m), 3) for m in top2[:, 1] - top2[:, 0]]}")
        path = os.path.join(w.out, name + ".onnx")
        torch.onnx.export(model, torch.from_numpy(x), path, opset_version=OPSET, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True)
        m = onnx.load(path)
        onnx.checker.check_model(m)
        w.save(name, m, [("input", x)], kind)
    rnn_torch_models(w, torch)
    transformer_torch_model(w, torch)


def rnn_torch_models(w, torch):
    """Recurrent classifiers as PyTorch exports them: a 2-layer bidirectional
    batch-first nn.LSTM with a Linear head on its outputs averaged over time
    (opset 14), and an nn.GRU (PyTorch's GRU is ONNX's linear_before_reset=1) with a
    head on its final state (opset 13). The recurrent weights are drawn wider than
    PyTorch's default init (uniform(-3/sqrt(H), 3/sqrt(H)) instead of 1/sqrt(H)) and the
    heads have no bias, so that the logits move with the input (their spread across
    inputs is about half their spread across classes, against a tenth by default)."""
    nn = torch.nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(input_size=12, hidden_size=24, num_layers=2, bidirectional=True, batch_first=True)
            self.head = nn.Linear(48, 6)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.head(y.mean(dim=1))

    class GRUClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(input_size=10, hidden_size=20, batch_first=True)
            self.head = nn.Linear(20, 4)

        def forward(self, x):
            _, hn = self.rnn(x)
            return self.head(hn.squeeze(0))

    for i, (name, cls, shape, opset) in enumerate([("lstm_classifier", LSTMClassifier, (3, 10, 12), 14),
                                                     ("gru_classifier", GRUClassifier, (2, 8, 10), 13)]):
        gen = torch.Generator().manual_seed(TORCH_SEED + 100 + i)
        model = cls().eval()
        with torch.no_grad():
            for p in model.rnn.parameters():
                p.uniform_(-3.0 / model.rnn.hidden_size ** 0.5, 3.0 / model.rnn.hidden_size ** 0.5, generator=gen)
            model.head.weight.uniform_(-2.0 / model.head.in_features ** 0.5, 2.0 / model.head.in_features ** 0.5,
                                       generator=gen)
            model.head.bias.zero_()
        x, logits = pick_input(torch, model, np.random.default_rng(TORCH_SEED + 100 + i), shape)
        x = torch.from_numpy(x)
        spread = float(logits.std())
        assert np.isfinite(logits).all() and spread > 0.1, (name, spread)
        print(f"make_test_models: {name} {list(shape)}: logits std {spread:.3f}, max |logit| "
              f"{np.abs(logits).max():.3f}, top-1 {logits.argmax(1).tolist()}")
        path = os.path.join(w.out, name + ".onnx")
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                          do_constant_folding=True)
        m = onnx.load(path)
        onnx.checker.check_model(m)
        w.save(name, m, [("input", x.numpy())], "net")


def transformer_torch_model(w, torch):
    """A classifier on an nn.TransformerEncoder as PyTorch exports it (opset 14): two
    post-norm layers (d_model 32, 4 heads, feed-forward 64, ReLU), batch first, with
    a Linear head on the outputs averaged over the sequence. Attention becomes MatMul,
    Softmax, Transpose and Reshape; the norms LayerNorm's decomposition (ReduceMean,
    Sub, Pow, Sqrt, Div). Default init (no change needed: its logits move with the input)."""
    nn = torch.nn

    class TransformerClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
                                               batch_first=True)
            self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.head = nn.Linear(32, 5)

        def forward(self, x):
            return self.head(self.enc(x).mean(dim=1))

    name, shape = "transformer_encoder", (2, 12, 32)
    torch.manual_seed(TORCH_SEED + 200)
    model = TransformerClassifier().eval()
    x, logits = pick_input(torch, model, np.random.default_rng(TORCH_SEED + 200), shape)
    spread = float(logits.std())
    assert np.isfinite(logits).all() and spread > 0.1, (name, spread)
    print(f"make_test_models: {name} {list(shape)}: logits std {spread:.3f}, max |logit| "
          f"{np.abs(logits).max():.3f}, top-1 {logits.argmax(1).tolist()}")
    path = os.path.join(w.out, name + ".onnx")
    torch.onnx.export(model, torch.from_numpy(x), path, opset_version=14, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    w.save(name, m, [("input", x)], "net")


# ---------------------------------------------------------------- driver


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    if len(args) != 1 or flags - {"--small-only", "--if-stale"}:
        sys.exit(__doc__.split("\n\n")[1])
    out = args[0]
    os.makedirs(out, exist_ok=True)
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    sets = ["small"] + ([] if "--small-only" in flags else ["torch"])

    def fresh(s):
        try:
            with open(os.path.join(out, f".stamp-{s}")) as f:
                return f.read().strip() == digest
        except OSError:
            return False

    with open(os.path.join(out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for s in sets:
            if "--if-stale" in flags and fresh(s):
                continue
            stamp = os.path.join(out, f".stamp-{s}")
            if os.path.exists(stamp):
                os.remove(stamp)
            w = Writer(out)
            (small_models if s == "small" else torch_models)(w)
            w.manifest(f"manifest-{s}.txt")
            with open(stamp, "w") as f:
                f.write(digest + "\n")
            print(f"make_test_models: wrote {len(w.lines)} {s} models into {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
