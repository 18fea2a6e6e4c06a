"""Multiply-accumulates per image of an ONNX graph: the FLOP count behind the GFLOP/s figures.

Counts Conv (output pixels x output channels x input channels per group x kernel area), Gemm and
MatMul; element-wise ops, pools and activations are left out, as FLOP figures of CNNs usually
are. Shapes come from onnx's shape inference with the batch dimension set to 1.
"""

from __future__ import annotations

import math

import onnx
from onnx import numpy_helper, shape_inference


def _fix_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    return model


def macs_per_image(model: onnx.ModelProto | bytes | str) -> int:
    if isinstance(model, bytes):
        model = onnx.ModelProto.FromString(model)
    elif isinstance(model, str):
        model = onnx.load(model)
    model = shape_inference.infer_shapes(_fix_batch(model))
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)
    }
    for init in model.graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            weight = shapes[node.input[1]]  # [cout, cin / group, kh, kw]
            total += math.prod(out) * math.prod(weight[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            rows, b = shapes[node.input[0]], shapes[node.input[1]]
            transposed = any(a.name == "transB" and a.i for a in node.attribute)
            total += math.prod(rows) * (b[0] if transposed else b[-1])
    return total
