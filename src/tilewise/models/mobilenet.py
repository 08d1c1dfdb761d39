"""MobileNetV2 as an ONNX graph, torchvision's architecture and parameter names
(width 1.0), with seeded random weights; ReLU6 is Clip with its bounds as inputs."""

from __future__ import annotations

import onnx

from tilewise.models._onnx import GraphBuilder, check_opset

# (expand ratio t, output channels c, repeats n, first stride s), as in the paper.
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn_relu6(g: GraphBuilder, x: str, prefix: str, cin: int, cout: int, k: int,
                   stride: int = 1, group: int = 1) -> str:
    """torchvision's Conv2dNormActivation: ``prefix.0`` conv, ``prefix.1`` BN, ``prefix.2``."""
    y = g.conv(x, f"{prefix}.0", cin, cout, k, stride, group)
    y = g.batch_norm(y, f"{prefix}.1", cout)
    lo, hi = g.scalar("relu6.min", 0.0), g.scalar("relu6.max", 6.0)
    return g.node("Clip", [y, lo, hi], f"{prefix}.2")


def _inverted_residual(g: GraphBuilder, x: str, prefix: str, cin: int, cout: int,
                       stride: int, t: int) -> str:
    hidden = cin * t
    y, i = x, 0
    if t != 1:
        y = _conv_bn_relu6(g, y, f"{prefix}.conv.0", cin, hidden, 1)
        i = 1
    y = _conv_bn_relu6(g, y, f"{prefix}.conv.{i}", hidden, hidden, 3, stride, group=hidden)
    # The linear bottleneck: no activation, so a smaller gain keeps the variance.
    y = g.conv(y, f"{prefix}.conv.{i + 1}", hidden, cout, 1, gain=1.0)
    y = g.batch_norm(y, f"{prefix}.conv.{i + 2}", cout)
    if stride == 1 and cin == cout:
        y = g.node("Add", [x, y], f"{prefix}.add")
    return y


def mobilenet_v2(batch: int = 1, image: int = 224, seed: int = 0, opset: int = 17,
                 dynamic_batch: bool = False) -> onnx.ModelProto:
    """MobileNetV2: 17 inverted residual blocks, a 1x1 conv to 1280, the classifier.

    >>> model = mobilenet_v2(image=96)
    >>> sorted({n.op_type for n in model.graph.node})[:3]
    ['Add', 'BatchNormalization', 'Clip']
    """
    check_opset(opset, "mobilenet_v2")
    n = "N" if dynamic_batch else batch
    g = GraphBuilder("mobilenet_v2", opset, seed)
    x = g.input("input", [n, 3, image, image])
    x = _conv_bn_relu6(g, x, "features.0", 3, 32, 3, 2)
    cin, index = 32, 1
    for t, c, repeats, s in _SETTINGS:
        for r in range(repeats):
            x = _inverted_residual(g, x, f"features.{index}", cin, c, s if r == 0 else 1, t)
            cin, index = c, index + 1
    x = _conv_bn_relu6(g, x, f"features.{index}", cin, 1280, 1)
    x = g.node("GlobalAveragePool", [x], "avgpool")
    x = g.node("Flatten", [x], "flatten", axis=1)
    g.linear(x, "classifier.1", 1280, 1000, out="output")
    return g.model([("output", [n, 1000])])
