#!/usr/bin/python3
"""Writes the small ONNX models tests/test_onnx_import.c imports into DIR.

Usage: /usr/bin/python3 tests/models/make_models.py DIR

Run with Debian's interpreter (python3-onnx 1.12 and python3-numpy). Models
meant to be valid pass onnx.checker, except those of opsets newer than 17,
which onnx 1.12 writes but cannot check. Models named err_* are broken on
purpose: the importer must refuse them with the message the C test expects.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else "."


def vi(name, elem, shape):
    return h.make_tensor_value_info(name, elem, shape)


def save(name, nodes, inputs, outputs, inits=(), opset=13, check=True, ir_version=None):
    g = h.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="systole-tests")
    if ir_version is not None:
        m.ir_version = ir_version
    elif opset <= 17:
        # onnx 1.12 stamps its newest IR version; older opsets get the IR
        # version of their time so onnxruntime-era readers agree.
        m.ir_version = 8 if opset >= 15 else 7
    if check and opset <= 17:
        onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def raw(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)  # raw_data


def typed(name, elem, dims, field, vals):
    """A tensor with its values in one typed array field, set by hand."""
    t = T()
    t.name = name
    t.data_type = elem
    t.dims.extend(dims)
    getattr(t, field).extend(vals)
    return t


def i64(name, vals):
    return h.make_tensor(name, T.INT64, [len(vals)], vals)


def f32(name, vals):
    return h.make_tensor(name, T.FLOAT, [len(vals)], vals)


def const(out, tensor):
    return h.make_node("Constant", [], [out], value=tensor)


def models():
    rng = np.random.default_rng(3)

    # Weights in every form ONNX stores them.
    inits = [
        raw("w_raw", np.array([[1.5, -2.25, 3.0], [0.1, -0.0, np.inf]], np.float32)),
        typed("w_float", T.FLOAT, [3], "float_data", [0.5, -1e-3, 3.4028235e38]),
        typed("w_i64", T.INT64, [3], "int64_data", [-1, 0, 9007199254740993]),
        raw("w_i64_raw", np.array([-(2**40), 7], np.int64)),
        typed("w_i32", T.INT32, [2], "int32_data", [-7, 2147483647]),
        typed("w_i16", T.INT16, [1], "int32_data", [-300]),
        typed("w_i8", T.INT8, [3], "int32_data", [-128, 127, -1]),
        typed("w_u8", T.UINT8, [2], "int32_data", [0, 255]),
        typed("w_bool", T.BOOL, [3], "int32_data", [1, 0, 1]),
        typed("w_f16", T.FLOAT16, [2], "int32_data", [0x3C00, 0xC000]),
        typed("w_bf16", T.BFLOAT16, [2], "int32_data", [0x3F80, 0x4049]),
        typed("w_f64", T.DOUBLE, [2], "double_data", [3.141592653589793, -0.5]),
        typed("w_u32", T.UINT32, [2], "uint64_data", [4294967295, 1]),
        typed("w_u64", T.UINT64, [1], "uint64_data", [18446744073709551615]),
        typed("w_scalar", T.FLOAT, [], "float_data", [42.0]),
        raw("w_empty", np.zeros((0, 3), np.float32)),
    ]
    nodes = [
        const("c_tensor", f32("v", [7.0, 8.0])),
        h.make_node("Constant", [], ["c_float"], value_float=2.5),
        h.make_node("Constant", [], ["c_floats"], value_floats=[1.0, 2.0, 3.0]),
        h.make_node("Constant", [], ["c_int"], value_int=-9),
        h.make_node("Constant", [], ["c_ints"], value_ints=[4, 5]),
    ]
    outs = [t.name for t in inits] + [n.output[0] for n in nodes]
    save("weights", nodes, [], [vi(o, T.UNDEFINED, None) for o in outs], inits, check=False)

    # A small CNN with a dynamic batch: conv (SAME_UPPER, stride 2), batchnorm,
    # depthwise dilated conv, hardswish, pools, gemm, softmax.
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w1[0, 0, 0, 0] = 0.15625
    nodes = [
        h.make_node("Conv", ["input", "w1", "b1"], ["c1"], "conv1", auto_pad="SAME_UPPER", strides=[2, 2]),
        h.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], "bn1", epsilon=1e-3),
        h.make_node("Relu", ["bn"], ["r1"], "relu1"),
        h.make_node("Conv", ["r1", "w2"], ["c2"], "dw", group=8, dilations=[2, 2], pads=[2, 2, 2, 2]),
        h.make_node("HardSwish", ["c2"], ["hs"], "hswish"),
        h.make_node("MaxPool", ["hs"], ["mp"], "pool1", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        h.make_node("AveragePool", ["mp"], ["ap"], "pool2", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                    count_include_pad=1),
        h.make_node("GlobalAveragePool", ["ap"], ["gap"], "gap"),
        h.make_node("Flatten", ["gap"], ["flat"], "flatten"),
        h.make_node("Gemm", ["flat", "wfc", "bfc"], ["fc"], "fc", transB=1, alpha=0.5, beta=2.0),
        h.make_node("Softmax", ["fc"], ["prob"], "softmax"),
    ]
    inits = [
        raw("w1", w1), raw("b1", rng.standard_normal(8).astype(np.float32)),
        raw("bn_s", np.ones(8, np.float32)), raw("bn_b", np.zeros(8, np.float32)),
        raw("bn_m", np.zeros(8, np.float32)), raw("bn_v", np.ones(8, np.float32)),
        raw("w2", rng.standard_normal((8, 1, 3, 3)).astype(np.float32)),
        raw("wfc", rng.standard_normal((10, 8)).astype(np.float32)),
        raw("bfc", rng.standard_normal(10).astype(np.float32)),
    ]
    save("cnn", nodes, [vi("input", T.FLOAT, ["N", 3, 16, 16])], [vi("prob", T.FLOAT, ["N", 10])], inits, opset=14)

    # Shape arithmetic as torch.onnx.export writes it around Reshape, Resize
    # and ConstantOfShape: all of it must fold away at import.
    nodes = [
        h.make_node("Conv", ["x", "w"], ["y"], "conv", pads=[1, 1, 1, 1]),
        h.make_node("Shape", ["y"], ["s"], "shape"),
        const("zero", h.make_tensor("z", T.INT64, [], [0])),
        h.make_node("Gather", ["s", "zero"], ["batch"], "gather", axis=0),
        const("ax0", i64("a", [0])),
        h.make_node("Unsqueeze", ["batch", "ax0"], ["batch1"], "unsqueeze"),
        const("minus1", i64("m", [-1])),
        h.make_node("Concat", ["batch1", "minus1"], ["target"], "concat", axis=0),
        h.make_node("Reshape", ["y", "target"], ["flat"], "reshape"),
        const("st", i64("st", [2])), const("en", i64("en", [4])),
        h.make_node("Slice", ["s", "st", "en"], ["hw"], "slice_hw"),
        h.make_node("Cast", ["hw"], ["hwf"], "to_float", to=T.FLOAT),
        const("two", h.make_tensor("two", T.FLOAT, [], [2.0])),
        h.make_node("Mul", ["hwf", "two"], ["hw2f"], "mul"),
        h.make_node("Cast", ["hw2f"], ["hw2"], "to_int", to=T.INT64),
        const("st0", i64("st0", [0])), const("en2", i64("en2", [2])),
        h.make_node("Slice", ["s", "st0", "en2"], ["nc"], "slice_nc"),
        h.make_node("Concat", ["nc", "hw2"], ["sizes"], "concat_sizes", axis=0),
        h.make_node("Resize", ["y", "", "", "sizes"], ["up"], "resize", mode="nearest"),
        const("one", h.make_tensor("one", T.INT64, [], [1])),
        h.make_node("Gather", ["s", "one"], ["ch"], "gather_c", axis=0),
        const("two_i", h.make_tensor("two_i", T.INT64, [], [2])),
        h.make_node("Div", ["ch", "two_i"], ["half"], "div"),
        h.make_node("Unsqueeze", ["half", "ax0"], ["half1"], "unsqueeze2"),
        h.make_node("ConstantOfShape", ["half1"], ["ones"], "cos", value=f32("v", [1.0])),
    ]
    save("pytorch", nodes, [vi("x", T.FLOAT, ["batch", 4, 6, 6])],
         [vi("flat", T.FLOAT, ["batch", 72]), vi("up", T.FLOAT, ["batch", 2, 12, 12]), vi("ones", T.FLOAT, [1])],
         [raw("w", rng.standard_normal((2, 4, 3, 3)).astype(np.float32))])

    # Attributes that became inputs across opsets: each op in both forms.
    # Outputs are declared with the shapes the importer must infer (a
    # difference would show as a note, which the C test refuses).
    X = lambda shape, name="x": vi(name, T.FLOAT, shape)  # noqa: E731
    Y = lambda shape, name="y": vi(name, T.FLOAT, shape)  # noqa: E731
    save("clip_v7", [h.make_node("Clip", ["x"], ["y"], min=-1.0, max=2.0)], [X([2, 3])], [Y([2, 3])], opset=7)
    save("clip_v11", [h.make_node("Clip", ["x", "lo", "hi"], ["y"])], [X([2, 3])], [Y([2, 3])],
         [h.make_tensor("lo", T.FLOAT, [], [0.0]), h.make_tensor("hi", T.FLOAT, [], [6.0])], opset=11)
    save("clip_v13_max", [h.make_node("Clip", ["x", "", "hi"], ["y"])], [X([2, 3])], [Y([2, 3])],
         [h.make_tensor("hi", T.FLOAT, [], [6.0])], opset=13)
    split_outs = lambda *shapes: [Y(s, "y%d" % i) for i, s in enumerate(shapes)]  # noqa: E731
    save("split_v11", [h.make_node("Split", ["x"], ["y0", "y1", "y2"], axis=0, split=[1, 2, 3])], [X([6, 4])],
         split_outs([1, 4], [2, 4], [3, 4]), opset=11)
    save("split_v13", [h.make_node("Split", ["x", "sp"], ["y0", "y1"], axis=-1)], [X([6, 4])], split_outs([6, 3], [6, 1]),
         [i64("sp", [3, 1])], opset=13)
    save("split_v18", [h.make_node("Split", ["x"], ["y0", "y1", "y2"], num_outputs=3)], [X([7])], split_outs([3], [3], [1]),
         opset=18)
    save("slice_v9", [h.make_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[1000, -1], axes=[0, 1])],
         [X([10, 10])], [Y([9, 2])], opset=9)
    save("slice_v13", [h.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], [X([10, 10])], [Y([5, 4])],
         [h.make_tensor("s", T.INT32, [2], [-1, 0]), h.make_tensor("e", T.INT32, [2], [-1000, 10]),
          i64("a", [0, -1]), i64("st", [-2, 3])], opset=13)
    save("pad_v7", [h.make_node("Pad", ["x"], ["y"], pads=[1, 0, 2, 1], mode="constant", value=1.5)], [X([2, 3])],
         [Y([5, 4])], opset=7)
    save("pad_v13", [h.make_node("Pad", ["x", "p", "v"], ["y"], mode="reflect")], [X([2, 3])], [Y([2, 5])],
         [i64("p", [0, 1, 0, 1]), h.make_tensor("v", T.FLOAT, [], [0.25])], opset=13)
    save("pad_v18", [h.make_node("Pad", ["x", "p", "", "a"], ["y"])], [X([2, 3, 4])], [Y([5, 3, 7])],
         [i64("p", [1, 1, 2, 2]), i64("a", [0, -1])], opset=18)
    save("squeeze_v11", [h.make_node("Squeeze", ["x"], ["y"], axes=[0, 2])], [X([1, 3, 1, 2])], [Y([3, 2])], opset=11)
    save("squeeze_v13", [h.make_node("Squeeze", ["x", "a"], ["y"])], [X([1, 3, 1, 2])], [Y([1, 3, 2])], [i64("a", [-2])])
    save("squeeze_all", [h.make_node("Squeeze", ["x"], ["y"])], [X([1, 3, 1, 2])], [Y([3, 2])])
    save("unsqueeze_v11", [h.make_node("Unsqueeze", ["x"], ["y"], axes=[0, 3])], [X([3, 2])], [Y([1, 3, 2, 1])], opset=11)
    save("unsqueeze_v13", [h.make_node("Unsqueeze", ["x", "a"], ["y"])], [X([3, 2])], [Y([3, 1, 2, 1])], [i64("a", [-1, 1])])
    save("softmax_v11", [h.make_node("Softmax", ["x"], ["y"], "sm", axis=1)], [X([2, 3, 4])], [Y([2, 3, 4])], opset=11)
    save("softmax_v13", [h.make_node("Softmax", ["x"], ["y"], "sm", axis=1)], [X([2, 3, 4])], [Y([2, 3, 4])], opset=13)
    save("resize_v10", [h.make_node("Resize", ["x", "sc"], ["y"])], [X([1, 1, 2, 2])], [Y([1, 1, 4, 6])],
         [f32("sc", [1, 1, 2, 3])], opset=10)
    save("resize_v11", [h.make_node("Resize", ["x", "roi", "sc", "sz"], ["y"], mode="linear",
                                    coordinate_transformation_mode="align_corners")],
         [X([1, 1, 2, 2])], [Y([1, 1, 3, 5])], [f32("roi", []), f32("sc", []), i64("sz", [1, 1, 3, 5])], opset=11)
    save("resize_v13", [h.make_node("Resize", ["x", "", "sc"], ["y"], mode="cubic")], [X([1, 1, 2, 2])], [Y([1, 1, 1, 3])],
         [f32("sc", [1, 1, 0.5, 1.5])], opset=13)
    save("resize_v18", [h.make_node("Resize", ["x", "", "", "sz"], ["y"], axes=[3])], [X([1, 1, 2, 2])], [Y([1, 1, 2, 4])],
         [i64("sz", [4])], opset=18)
    # MaxPool's indices: ties (the first wins), dilation, ceil_mode's end window, a 1-element window
    I = lambda shape, name: vi(name, T.INT64, shape)  # noqa: E731
    save("maxpool_indices_dilated", [h.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2], dilations=[2])],
         [X([1, 2, 5])], [Y([1, 2, 3]), I([1, 2, 3], "i")], opset=12)
    save("maxpool_indices_ceil", [h.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2], strides=[2], ceil_mode=1)],
         [X([1, 1, 5])], [Y([1, 1, 3]), I([1, 1, 3], "i")], opset=12)
    save("maxpool_indices_one", [h.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[1, 1], storage_order=1)],
         [X([1, 1, 2, 3])], [Y([1, 1, 2, 3]), I([1, 1, 2, 3], "i")], opset=12)
    save("err_maxpool_order", [h.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2], storage_order=2)],
         [X([1, 1, 5])], [Y([1, 1, 4]), I([1, 1, 4], "i")], opset=12, check=False)
    # tf_crop_and_resize with scales: the output spans the crop, floor(4 * (0.75 - 0.25) * 2) = 4 along axis 3
    save("resize_crop", [h.make_node("Resize", ["x", "roi", "sc"], ["y"], mode="linear", extrapolation_value=-1.0,
                                     coordinate_transformation_mode="tf_crop_and_resize", axes=[-1])],
         [X([1, 1, 2, 4])], [Y([1, 1, 2, 4])], [f32("roi", [0.25, 0.75]), f32("sc", [2])], opset=18)
    save("err_resize_roi", [h.make_node("Resize", ["x", "roi", "", "sz"], ["y"],
                                        coordinate_transformation_mode="tf_crop_and_resize")],
         [X([1, 1, 2, 4])], [Y([1, 1, 3, 3])], [f32("roi", [0, 0, 1, 1]), i64("sz", [1, 1, 3, 3])], opset=13,
         check=False)
    save("upsample_v9", [h.make_node("Upsample", ["x", "sc"], ["y"])], [X([1, 1, 2, 2])], [Y([1, 1, 4, 4])],
         [f32("sc", [1, 1, 2, 2])], opset=9)
    save("reshape_v14", [h.make_node("Reshape", ["x", "s"], ["y"], allowzero=1)], [X([0, 3])], [Y([3, 0])],
         [i64("s", [3, 0])], opset=14)
    save("reshape_zero", [h.make_node("Reshape", ["x", "s"], ["y"])], [X([2, 3, 4])], [Y([2, 12])], [i64("s", [0, -1])])
    save("dropout_v7", [h.make_node("Dropout", ["x"], ["y"], ratio=0.3)], [X([2, 3])], [Y([2, 3])], opset=7)
    save("dropout_v12", [h.make_node("Dropout", ["x", "r"], ["y", "mask"])], [X([2, 3])],
         [Y([2, 3]), vi("mask", T.BOOL, [2, 3])], [h.make_tensor("r", T.FLOAT, [], [0.5])], opset=12)
    save("cast", [h.make_node("Cast", ["x"], ["y"], to=T.INT8),
                  h.make_node("Cast", ["c"], ["yc"], to=T.INT8)],
         [X([2, 2])], [vi("y", T.INT8, [2, 2]), vi("yc", T.INT8, [4])],
         [f32("c", [1.7, -2.9, 300.0, float("nan")])])
    save("opset21", [h.make_node("Relu", ["x"], ["y"])], [X([4])], [Y([4])], opset=21)
    # If with a constant condition: the else branch (Neg of the outer x) is taken.
    then_g = h.make_graph([h.make_node("Relu", ["x"], ["t"])], "then", [], [vi("t", T.FLOAT, [2, 3])])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", T.FLOAT, [2, 3])])
    save("if_const", [h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], [X([2, 3])],
         [Y([2, 3])], [h.make_tensor("c", T.BOOL, [], [False])])
    save("err_if_runtime", [h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
         [X([2, 3]), vi("c", T.BOOL, [])], [Y([2, 3])])
    save("constant_of_shape", [h.make_node("ConstantOfShape", ["s"], ["y"], value=i64("v", [7]))], [],
         [vi("y", T.INT64, [2, 3])], [i64("s", [2, 3])])
    save("matmul", [h.make_node("MatMul", ["a", "b"], ["y"]), h.make_node("MatMul", ["v", "b2"], ["y2"])],
         [X([2, 1, 3, 4], "a"), X([5, 4, 6], "b"), X([4], "v"), X([4, 6], "b2")], [Y([2, 5, 3, 6]), Y([6], "y2")])
    save("gather", [h.make_node("Gather", ["table", "ids"], ["y"]),
                    h.make_node("Gather", ["c", "neg"], ["yc"], axis=1)],
         [vi("ids", T.INT64, [2, 3])], [Y([2, 3, 4]), vi("yc", T.INT64, [2])],
         [raw("table", np.arange(40, dtype=np.float32).reshape(10, 4)),
          raw("c", np.array([[1, 2, 3], [4, 5, 6]], np.int64)), h.make_tensor("neg", T.INT64, [], [-1])])
    save("transpose", [h.make_node("Transpose", ["x"], ["y"])], [X([2, 3, 4])], [Y([4, 3, 2])])
    save("concat", [h.make_node("Concat", ["a", "b"], ["y"], axis=-1)], [X([2, 3], "a"), X([2, 5], "b")], [Y([2, 8])])
    # IR version 3: initializers are also listed as graph inputs.
    save("init_as_input", [h.make_node("Add", ["x", "bias"], ["y"])], [X([2]), X([2], "bias")], [Y([2])],
         [f32("bias", [1, 2])], opset=9, ir_version=3)

    # Broken on purpose.
    save("err_unsupported", [h.make_node("Relu", ["x"], ["r"], "r0"), h.make_node("Foo", ["r"], ["y"], "my_foo")],
         [X([2])], [Y([2])], check=False)
    save("err_domain", [h.make_node("FusedConv", ["x"], ["y"], "fc", domain="com.microsoft")], [X([2])], [Y([2])],
         check=False)
    ext = T()
    ext.name = "w"
    ext.data_type = T.FLOAT
    ext.dims.extend([4])
    ext.data_location = T.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "16")):
        e = ext.external_data.add()
        e.key, e.value = k, v
    save("err_external", [h.make_node("Add", ["x", "w"], ["y"])], [X([4])], [Y([2])], [ext], check=False)
    save("dynamic", [h.make_node("Relu", ["x"], ["y"])], [X(["N", 3, "H", 8])], [Y(["N", 3, "H", 8])])
    save("err_undefined", [h.make_node("Relu", ["nope"], ["y"])], [X([2])], [Y([2])], check=False)
    save("err_order", [h.make_node("Relu", ["t"], ["y"], "second"), h.make_node("Relu", ["x"], ["t"], "first")],
         [X([2])], [Y([2])], check=False)
    save("err_twice", [h.make_node("Relu", ["x"], ["y"]), h.make_node("Relu", ["x"], ["y"])], [X([2])], [Y([2])],
         check=False)
    save("err_add_v6", [h.make_node("Add", ["x", "x"], ["y"])], [X([2])], [Y([2])], opset=6, check=False)
    save("err_opset22", [h.make_node("Relu", ["x"], ["y"])], [X([2])], [Y([2])], opset=22, check=False)
    save("err_attr", [h.make_node("Relu", ["x"], ["y"], foo=1)], [X([2])], [Y([2])], check=False)
    save("err_matmul", [h.make_node("MatMul", ["a", "b"], ["y"], "mm")], [X([2, 3], "a"), X([4, 5], "b")], [Y([2])],
         check=False)
    save("err_reshape_runtime", [h.make_node("Reshape", ["x", "s"], ["y"])], [X([2, 3]), vi("s", T.INT64, [2])],
         [Y([2])], check=False)
    save("err_outtype", [h.make_node("Relu", ["x"], ["y"])], [X([2])], [vi("y", T.INT64, [2])], check=False)
    save("err_conv", [h.make_node("Conv", ["x", "w"], ["y"], "conv")], [X([1, 3, 8, 8])], [Y([2])],
         [raw("w", np.zeros((4, 2, 3, 3), np.float32))], check=False)
    save("err_noproducer", [h.make_node("Relu", ["x"], ["y"])], [X([2])], [Y([2], "z")], check=False)
    save("err_gather", [h.make_node("Gather", ["c", "i"], ["y"])], [], [vi("y", T.INT64, None)],
         [i64("c", [1, 2, 3]), h.make_tensor("i", T.INT64, [], [5])], check=False)
    save("err_reshape", [h.make_node("Reshape", ["x", "s"], ["y"])], [X([2, 3])], [Y([2])], [i64("s", [4, -1])],
         check=False)
    save("err_string", [h.make_node("Identity", ["x"], ["y"])], [vi("x", T.STRING, [2])],
         [vi("y", T.STRING, [2])], check=False)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    models()
