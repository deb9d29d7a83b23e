"""The same model with unsigned weights, for ONNX Runtime on x86 hosts without VNNI.

There ONNX Runtime computes uint8 x int8 products with VPMADDUBSW, which adds pairs of
products into int16 with saturation: a pair can reach 2 x 255 x 127 = 64770, so results
are wrong wherever it does (ONNX Runtime pull request 12088; oneDNN's "nuances of int8
computations"). uint8 x uint8 goes through exact 16-bit products. So the oracle runs
w + 128 with zero point zp + 128, which is the same arithmetic, (a - a_zp) (w - w_zp),
for every int8 weight initializer of MatMulInteger, QLinearMatMul and QLinearConv.

    /usr/bin/python3 tests/ort_u8u8.py IN.onnx OUT.onnx    (prints how many it changed)
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

# op: (weight input, weight zero point input)
WEIGHT = {"MatMulInteger": (1, 3), "QLinearMatMul": (3, 5), "QLinearConv": (3, 5)}


def main(src, dst):
    model = onnx.load(src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    changed, done = 0, set()  # a shared initializer is shifted once
    for node in g.node:
        if node.op_type not in WEIGHT:
            continue
        wi, zi = WEIGHT[node.op_type]
        a = node.input[0]
        a_u8 = a in inits and inits[a].data_type == onnx.TensorProto.UINT8 or any(
            i.name == a and i.type.tensor_type.elem_type == onnx.TensorProto.UINT8 for i in g.input)
        w = node.input[wi] if len(node.input) > wi else ""
        z = node.input[zi] if len(node.input) > zi else ""
        if w in done or z in done:
            sys.exit(f"ort_u8u8: {node.name or node.op_type}: weights or zero point shared: not handled")
        if not a_u8 or w not in inits or inits[w].data_type != onnx.TensorProto.INT8:
            continue
        done.update({w, z} - {""})
        wv = numpy_helper.to_array(inits[w]).astype(np.int16)
        inits[w].CopyFrom(numpy_helper.from_array((wv + 128).astype(np.uint8), w))
        if z:
            if z not in inits:
                sys.exit(f"ort_u8u8: {node.name or node.op_type}: weight zero point {z} is not an initializer")
            zv = numpy_helper.to_array(inits[z]).astype(np.int16)
            inits[z].CopyFrom(numpy_helper.from_array((zv + 128).astype(np.uint8), z))
        else:  # MatMulInteger without zero points: add one of 128 (and an empty a_zero_point)
            name = w + "_u8u8_zp"
            g.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), name))
            while len(node.input) < zi:
                node.input.append("")
            node.input.append(name)
        changed += 1
    onnx.save(model, dst)
    print(changed)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
