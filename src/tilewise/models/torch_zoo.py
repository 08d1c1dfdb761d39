"""The zoo's models as PyTorch modules holding the zoo's own weights, so that PyTorch,
ONNX Runtime and tilewise compute one function: ``torch_model("resnet18", onnx_model)``.

The modules are written as torchvision and Hugging Face write them (the zoo's builders
follow their parameter names: ``layer1.0.conv1.weight``, ``features.3.conv.1.0.weight``,
``attention.self.query.weight``), and every parameter and buffer is read from the ONNX
initializer of the same name; a name missing or a shape that differs is an error, not
a random weight. The BERT layer's dense weights are stored (in, out) for ONNX's MatMul,
so they are transposed into ``nn.Linear``'s (out, in). Its attention runs through
``scaled_dot_product_attention``, as Hugging Face's default ("sdpa") does.

    python -m tilewise.models.torch_zoo resnet18 bert_layer   # each beside ONNX Runtime

Needs the ``torch`` extra (``pip install -e '.[torch]'``); ``tilewise model bench`` and
``benchmarks/models.py`` time these modules as the PyTorch peer.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError

# -- ResNet (torchvision's, v1.5) ---------------------------------------------------


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1, self.bn1 = _conv(cin, planes, 1), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = _conv(planes, cout, 1), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


def _downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int]) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(3, 64, 7, 2), nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stages = []
            for b in range(blocks):
                stages.append(block(cin, planes, 2 if i > 0 and b == 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stages))
        self.fc = nn.Linear(cin, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- MobileNetV2 (torchvision's, width 1.0) -------------------------------------------

_MOBILENET = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: ``.0`` conv, ``.1`` BN, ``.2`` ReLU6."""
    return nn.Sequential(_conv(cin, cout, k, stride, groups), nn.BatchNorm2d(cout),
                         nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        layers: list[nn.Module] = [] if t == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   _conv(hidden, cout, 1), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        features: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, repeats, s in _MOBILENET:
            for r in range(repeats):
                features.append(InvertedResidual(cin, c, s if r == 0 else 1, t))
                cin = c
        features.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# -- one BERT encoder layer (Hugging Face's BertLayer) ---------------------------------


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, heads, S, head)
            return t.view(b, s, self.heads, h // self.heads).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)),
                                             split(self.value(x)), attn_mask=mask)
        return ctx.transpose(1, 2).reshape(b, s, h)


class _Output(nn.Module):
    """A dense layer, the residual and a LayerNorm: ``BertSelfOutput`` / ``BertOutput``."""

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(cin, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.self = _SelfAttention(hidden, heads)
        self.output = _Output(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # erf GELU, as the graph's Erf nodes


class BertLayer(nn.Module):
    #: ONNX MatMul weights are (in, out); nn.Linear keeps (out, in).
    transposed_linear = True

    def __init__(self, hidden: int = 768, heads: int = 12, ffn: int = 3072) -> None:
        super().__init__()
        self.attention = _Attention(hidden, heads)
        self.intermediate = _Intermediate(hidden, ffn)
        self.output = _Output(ffn, hidden)

    def forward(self, hidden_states: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(h), h)


# -- from the zoo's initializers --------------------------------------------------------


def _bert_from(onnx_model: onnx.ModelProto) -> BertLayer:
    """A BertLayer of the graph's sizes (read from its weights and its heads split)."""
    inits = {t.name: t for t in onnx_model.graph.initializer}
    hidden, ffn = (int(d) for d in inits["intermediate.dense.weight"].dims)
    split = numpy_helper.to_array(inits["attention.self.split_shape"])
    return BertLayer(hidden, int(split[2]), ffn)


_MODULES = {
    "resnet18": lambda _: ResNet(BasicBlock, [2, 2, 2, 2]),
    "resnet50": lambda _: ResNet(Bottleneck, [3, 4, 6, 3]),
    "mobilenet_v2": lambda _: MobileNetV2(),
    "bert_layer": _bert_from,
}

NAMES = tuple(_MODULES)


def torch_model(name: str, onnx_model: onnx.ModelProto) -> nn.Module:
    """The zoo model ``name`` as a PyTorch module in eval mode, holding ``onnx_model``'s
    initializers (built by ``tilewise.models.build(name, ...)`` with a batch and image
    of any size).

    >>> from tilewise import models
    >>> m = torch_model("resnet18", models.build("resnet18", image=64))
    >>> m(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 1000])
    """
    if name not in _MODULES:
        raise ModelError(f"no PyTorch module for zoo model {name!r}; have {list(NAMES)}")
    module = _MODULES[name](onnx_model)
    inits = {t.name: t for t in onnx_model.graph.initializer}
    transposed = {f"{n}.weight" for n, m in module.named_modules()
                  if isinstance(m, nn.Linear) and getattr(module, "transposed_linear", False)}
    state = {}
    for key, like in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = like
            continue
        if key not in inits:
            raise ModelError(f"{name}: the ONNX graph has no initializer {key!r}")
        array = numpy_helper.to_array(inits[key])
        if key in transposed:
            array = array.T
        if tuple(array.shape) != tuple(like.shape):
            raise ModelError(f"{name}: initializer {key!r} is {array.shape}, the module's "
                             f"{tuple(like.shape)}")
        state[key] = torch.from_numpy(np.array(array, dtype=np.float32, order="C"))
    module.load_state_dict(state, strict=True)
    return module.eval()


def torch_inputs(onnx_model: onnx.ModelProto,
                 feeds: dict[str, np.ndarray]) -> list[torch.Tensor]:
    """The feeds as tensors, in the graph's input order (the modules' argument order)."""
    inits = {t.name for t in onnx_model.graph.initializer}
    return [torch.from_numpy(feeds[i.name]) for i in onnx_model.graph.input
            if i.name not in inits]


def _main() -> None:
    import argparse

    from tilewise import models
    from tilewise.model_bench import ort_session, relative_error

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(NAMES))
    for name in ap.parse_args().names:
        onnx_model = models.build(name)
        feeds = models.example_inputs(onnx_model)
        session = ort_session(onnx_model.SerializeToString(), threads=2)
        want = dict(zip([o.name for o in session.get_outputs()],
                        session.run(None, feeds), strict=True))
        module = torch_model(name, onnx_model)
        with torch.inference_mode():
            out = module(*torch_inputs(onnx_model, feeds))
        error = relative_error({onnx_model.graph.output[0].name: out.numpy()}, want)
        params = sum(p.numel() for p in module.parameters())
        print(f"{name}: {params / 1e6:.1f} M parameters, max |torch - ORT| / scale "
              f"{error:.2e}{'' if math.isfinite(error) else ' (not finite)'}")


if __name__ == "__main__":
    _main()
