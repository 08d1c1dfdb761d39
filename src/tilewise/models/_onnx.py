"""A small graph builder over ``onnx.helper``: initializers, nodes and the model,
named the way exporters name them, with opset-dependent spellings in one place."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tilewise.errors import ModelError

MIN_OPSET = 13
MAX_OPSET = 21


def check_opset(opset: int, needs: str, minimum: int = MIN_OPSET) -> None:
    """Raise ModelError unless ``minimum <= opset <= MAX_OPSET``."""
    if not minimum <= opset <= MAX_OPSET:
        raise ModelError(f"{needs} needs opset {minimum}..{MAX_OPSET}, got {opset}")


class GraphBuilder:
    """Collects nodes and initializers; each node's output tensor is named after the node.

    >>> g = GraphBuilder("tiny", opset=17, seed=0)
    >>> x = g.input("input", ["N", 4])
    >>> y = g.node("Relu", [x], "relu")
    >>> model = g.model([(y, ["N", 4])])
    """

    def __init__(self, name: str, opset: int, seed: int) -> None:
        self.name = name
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self.inputs: list[onnx.ValueInfoProto] = []

    # -- tensors -----------------------------------------------------------

    def input(self, name: str, shape: list[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def init(self, name: str, array: np.ndarray) -> str:
        """Add an initializer (once: a second call with the same name reuses it)."""
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(np.asarray(array), name)
        return name

    def scalar(self, name: str, value: float) -> str:
        return self.init(name, np.array(value, dtype=np.float32))

    def ints(self, name: str, values: list[int]) -> str:
        return self.init(name, np.array(values, dtype=np.int64))

    def normal(self, name: str, shape: tuple[int, ...], std: float) -> str:
        return self.init(name, self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std))

    def uniform(self, name: str, shape: tuple[int, ...], low: float, high: float) -> str:
        return self.init(name, self.rng.uniform(low, high, shape).astype(np.float32))

    # -- nodes -------------------------------------------------------------

    def node(self, op: str, inputs: list[str], name: str, out: str | None = None, **attrs) -> str:
        """Append one node; returns its output tensor's name (``out`` or the node's name)."""
        out = out or name
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1,
             group: int = 1, gain: float = 2.0, bias: bool = False) -> str:
        """A k x k convolution, 'same' padding, He-style weights (``gain / fan_in``)."""
        fan_in = cin // group * k * k
        w = self.normal(f"{name}.weight", (cout, cin // group, k, k), math.sqrt(gain / fan_in))
        ins = [x, w]
        if bias:
            ins.append(self.normal(f"{name}.bias", (cout,), 0.01))
        return self.node("Conv", ins, name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[k // 2] * 4, dilations=[1, 1], group=group)

    def batch_norm(self, x: str, name: str, c: int, gamma: tuple[float, float] = (0.9, 1.1)) -> str:
        """Inference BatchNorm with random stats: variance near 1, small means."""
        ins = [x,
               self.uniform(f"{name}.weight", (c,), *gamma),
               self.normal(f"{name}.bias", (c,), 0.02),
               self.normal(f"{name}.running_mean", (c,), 0.05),
               self.uniform(f"{name}.running_var", (c,), 0.8, 1.2)]
        return self.node("BatchNormalization", ins, name, epsilon=1e-5)

    def linear(self, x: str, name: str, cin: int, cout: int, out: str | None = None) -> str:
        """Gemm with transB=1, weight (cout, cin) as torch's Linear stores it."""
        w = self.normal(f"{name}.weight", (cout, cin), 1.0 / math.sqrt(cin))
        b = self.normal(f"{name}.bias", (cout,), 0.01)
        return self.node("Gemm", [x, w, b], name, out=out, alpha=1.0, beta=1.0, transB=1)

    def reduce_mean(self, x: str, name: str, axes: list[int]) -> str:
        """ReduceMean, keepdims: axes an attribute before opset 18, an input from 18."""
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.ints(f"{name}.axes", axes)], name,
                             keepdims=1)
        return self.node("ReduceMean", [x], name, axes=axes, keepdims=1)

    # -- the model ---------------------------------------------------------

    def model(self, outputs: list[tuple[str, list[int | str]]]) -> onnx.ModelProto:
        outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs]
        graph = helper.make_graph(self.nodes, self.name, self.inputs, outs,
                                  initializer=list(self.inits.values()))
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="tilewise.models",
                                 ir_version=helper.find_min_ir_version_for(opsets))
