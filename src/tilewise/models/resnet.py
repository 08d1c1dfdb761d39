"""ResNet-18 and ResNet-50 as ONNX graphs, torchvision's architecture (v1.5: the
bottleneck's stride on its 3x3 conv) and parameter names, with seeded random weights."""

from __future__ import annotations

import onnx

from tilewise.models._onnx import GraphBuilder, check_opset

# The last BatchNorm of each residual branch starts small (as zero_init_residual
# and Fixup do), so the variance grows slowly along the residual stream.
_BRANCH_GAMMA = (0.2, 0.4)


def _conv_bn(g: GraphBuilder, x: str, prefix: str, i: int, cin: int, cout: int, k: int,
             stride: int = 1, relu: bool = True, gamma=(0.9, 1.1)) -> str:
    y = g.conv(x, f"{prefix}.conv{i}", cin, cout, k, stride)
    y = g.batch_norm(y, f"{prefix}.bn{i}", cout, gamma)
    return g.node("Relu", [y], f"{prefix}.relu{i}") if relu else y


def _downsample(g: GraphBuilder, x: str, prefix: str, cin: int, cout: int, stride: int) -> str:
    y = g.conv(x, f"{prefix}.downsample.0", cin, cout, 1, stride, gain=1.0)
    return g.batch_norm(y, f"{prefix}.downsample.1", cout)


def _basic(g: GraphBuilder, x: str, prefix: str, cin: int, planes: int, stride: int) -> str:
    y = _conv_bn(g, x, prefix, 1, cin, planes, 3, stride)
    y = _conv_bn(g, y, prefix, 2, planes, planes, 3, relu=False, gamma=_BRANCH_GAMMA)
    skip = _downsample(g, x, prefix, cin, planes, stride) if stride != 1 or cin != planes else x
    y = g.node("Add", [y, skip], f"{prefix}.add")
    return g.node("Relu", [y], f"{prefix}.relu")


def _bottleneck(g: GraphBuilder, x: str, prefix: str, cin: int, planes: int, stride: int) -> str:
    cout = planes * 4
    y = _conv_bn(g, x, prefix, 1, cin, planes, 1)
    y = _conv_bn(g, y, prefix, 2, planes, planes, 3, stride)
    y = _conv_bn(g, y, prefix, 3, planes, cout, 1, relu=False, gamma=_BRANCH_GAMMA)
    skip = _downsample(g, x, prefix, cin, cout, stride) if stride != 1 or cin != cout else x
    y = g.node("Add", [y, skip], f"{prefix}.add")
    return g.node("Relu", [y], f"{prefix}.relu")


def _resnet(name: str, block, expansion: int, layers: list[int], batch: int, image: int,
            seed: int, opset: int, dynamic_batch: bool) -> onnx.ModelProto:
    check_opset(opset, name)
    n = "N" if dynamic_batch else batch
    g = GraphBuilder(name, opset, seed)
    x = g.input("input", [n, 3, image, image])
    x = g.conv(x, "conv1", 3, 64, 7, 2)
    x = g.batch_norm(x, "bn1", 64)
    x = g.node("Relu", [x], "relu")
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    cin = 64
    for li, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for bi in range(blocks):
            stride = 2 if li > 0 and bi == 0 else 1
            x = block(g, x, f"layer{li + 1}.{bi}", cin, planes, stride)
            cin = planes * expansion
    x = g.node("GlobalAveragePool", [x], "avgpool")
    x = g.node("Flatten", [x], "flatten", axis=1)
    g.linear(x, "fc", cin, 1000, out="output")
    return g.model([("output", [n, 1000])])


def resnet18(batch: int = 1, image: int = 224, seed: int = 0, opset: int = 17,
             dynamic_batch: bool = False) -> onnx.ModelProto:
    """ResNet-18 (basic blocks [2, 2, 2, 2]); input ``input`` NCHW, output ``output``.

    >>> model = resnet18(image=64)
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['input'], ['output'])
    """
    return _resnet("resnet18", _basic, 1, [2, 2, 2, 2], batch, image, seed, opset,
                   dynamic_batch)


def resnet50(batch: int = 1, image: int = 224, seed: int = 0, opset: int = 17,
             dynamic_batch: bool = False) -> onnx.ModelProto:
    """ResNet-50 (bottleneck blocks [3, 4, 6, 3]); input ``input`` NCHW, output ``output``.

    >>> model = resnet50(dynamic_batch=True)
    >>> model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    'N'
    """
    return _resnet("resnet50", _bottleneck, 4, [3, 4, 6, 3], batch, image, seed, opset,
                   dynamic_batch)
