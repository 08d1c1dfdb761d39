"""The model zoo: ResNet-18/50, MobileNetV2 and one BERT encoder layer, built in code as
ONNX graphs with seeded random weights (nothing is downloaded), and random inputs for them.

>>> from tilewise import models
>>> model = models.build("resnet18", image=64)
>>> feeds = models.example_inputs(model)
>>> feeds["input"].shape
(1, 3, 64, 64)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from tilewise.errors import ModelError
from tilewise.models.bert import bert_layer
from tilewise.models.mobilenet import mobilenet_v2
from tilewise.models.resnet import resnet18, resnet50

__all__ = ["ZOO", "bert_layer", "build", "example_inputs", "mobilenet_v2", "resnet18",
           "resnet50"]

ZOO: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "bert_layer": bert_layer,
}

# Positions masked at the end of each sequence by example_inputs' attention mask.
_MASKED_FRACTION = 8


def build(name: str, **kwargs) -> onnx.ModelProto:
    """Build the zoo model ``name``; keyword arguments go to its builder.

    >>> build("bert_layer", seq=32, layer_norm="fused").graph.name
    'bert_layer'
    """
    if name not in ZOO:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name](**kwargs)


def example_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds for the model's graph inputs; a symbolic dimension takes 1.

    ``attention_mask`` gets a valid additive mask: 0, and -10000 on the last
    eighth of the positions (at least one, never all).

    >>> feeds = example_inputs(build("bert_layer", seq=16, dynamic_batch=True))
    >>> feeds["attention_mask"].shape, float(feeds["attention_mask"][0, 0, 0, -1])
    ((1, 1, 1, 16), -10000.0)
    """
    rng = np.random.default_rng(seed)
    init_names = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        tt = vi.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim)
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if vi.name == "attention_mask":
            mask = np.zeros(shape, dtype=dtype)
            masked = min(max(1, shape[-1] // _MASKED_FRACTION), shape[-1] - 1)
            mask[..., shape[-1] - masked:] = -10000.0
            feeds[vi.name] = mask
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds
