"""EfficientNet-Lite0 as an ONNX graph for onnxruntime: the CPU path of the offline embedder.

PyTorch's CPU kernels run this network at about a tenth of the FLOP rate onnxruntime reaches on a
dense network on the same core (depthwise convolutions, unfused batch norms, the explicit "same"
pads). The graph is written here from the loaded torch module (one architecture, in
`efficientnet_lite.py`), not traced: every batch norm is folded into its convolution, and the
TensorFlow "same" padding becomes the convolution's own asymmetric `pads`, which is exact because
the input size is fixed (224). ReLU6 is `Clip(0, 6)`. The same weights give the same features as
the torch module within float32 rounding (tested), so embeddings and beta do not change.
"""

from __future__ import annotations

import numpy as np

from danqing.embed.efficientnet_lite import INPUT_SIZE, EfficientNetLite0, same_padding

OPSET = 17
FEATURES = "features"
LOGITS = "logits"


class _Graph:
    def __init__(self) -> None:
        from onnx import numpy_helper

        self._tensor = numpy_helper.from_array
        self.nodes: list = []
        self.initializers: list = []
        self._names = 0
        self.zero = self.constant(np.array(0.0, np.float32), "zero")  # ReLU6 = Clip(0, 6)
        self.six = self.constant(np.array(6.0, np.float32), "six")

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}_{self._names}"

    def constant(self, value: np.ndarray, prefix: str) -> str:
        name = self.name(prefix)
        self.initializers.append(self._tensor(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out


def _conv_bn(graph: _Graph, x: str, size: int, conv, bn, relu6: bool) -> tuple[str, int]:
    """Conv (TF "same" pads) with the batch norm folded into its weights, then ReLU6."""
    weight = conv.weight.detach().double().numpy()
    scale = bn.weight.detach().double().numpy() / np.sqrt(
        bn.running_var.detach().double().numpy() + bn.eps
    )
    folded = (weight * scale[:, None, None, None]).astype(np.float32)
    bias = (
        bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * scale
    ).astype(np.float32)
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    before, after, out = same_padding(size, kernel, stride)
    y = graph.node(
        "Conv",
        [x, graph.constant(folded, "w"), graph.constant(bias, "b")],
        kernel_shape=[kernel, kernel],
        strides=[stride, stride],
        pads=[before, before, after, after],
        group=conv.groups,
    )
    if relu6:
        y = graph.node("Clip", [y, graph.zero, graph.six])
    return y, out


def to_onnx(model: EfficientNetLite0, size: int = INPUT_SIZE) -> bytes:
    """The serialised ONNX model of `model` for NCHW float32 input of `size` x `size`: outputs
    `features` [N, 1280] (pooled head activations, as `model.features`) and `logits` [N, 1000]."""
    from onnx import TensorProto, checker, helper

    graph = _Graph()
    x, hw = _conv_bn(graph, "pixels", size, model._conv_stem, model._bn0, relu6=True)
    for block in model._blocks:
        y = x
        if block.expand:
            y, _ = _conv_bn(graph, y, hw, block._expand_conv, block._bn0, relu6=True)
        y, out_hw = _conv_bn(graph, y, hw, block._depthwise_conv, block._bn1, relu6=True)
        y, _ = _conv_bn(graph, y, out_hw, block._project_conv, block._bn2, relu6=False)
        x, hw = (graph.node("Add", [y, x]) if block.residual else y), out_hw
    x, _ = _conv_bn(graph, x, hw, model._conv_head, model._bn1, relu6=True)
    pooled = graph.node("Flatten", [graph.node("GlobalAveragePool", [x])])
    graph.nodes.append(helper.make_node("Identity", [pooled], [FEATURES]))
    fc_weight = graph.constant(model._fc.weight.detach().numpy(), "fc_w")
    fc_bias = graph.constant(model._fc.bias.detach().numpy(), "fc_b")
    graph.nodes.append(helper.make_node("Gemm", [pooled, fc_weight, fc_bias], [LOGITS], transB=1))
    onnx_graph = helper.make_graph(
        graph.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, size, size])],
        [
            helper.make_tensor_value_info(
                FEATURES, TensorProto.FLOAT, ["n", model._bn1.num_features]
            ),
            helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["n", model._fc.out_features]),
        ],
        graph.initializers,
    )
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = 8
    checker.check_model(onnx_model)
    return onnx_model.SerializeToString()


class OnnxNetwork:
    """`features(x)` and `logits(x)` of one EfficientNet-Lite0 under onnxruntime on the CPU
    (`threads` intra-op threads; 0 = onnxruntime's default, all cores)."""

    def __init__(self, model: EfficientNetLite0, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            to_onnx(model), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _run(self, output: str, pixels: np.ndarray) -> np.ndarray:
        return self.session.run([output], {"pixels": np.ascontiguousarray(pixels, np.float32)})[0]

    def features(self, pixels: np.ndarray) -> np.ndarray:
        return self._run(FEATURES, pixels)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self._run(LOGITS, pixels)
