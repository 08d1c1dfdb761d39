"""The zoo's models at their full sizes (and BERT's variants smaller), imported and
optimized: the interpreter agrees with ONNX Runtime, and what is left is the model's
arithmetic, with BatchNorm folded, shapes folded and BERT's LayerNorm and GELU fused."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx_testing import run_ort

from tilewise.frontend import from_onnx
from tilewise.graph.interpret import interpret
from tilewise.graph.passes import optimize

models = pytest.importorskip("tilewise.models")

BERT = {"seq": 16, "hidden": 96, "heads": 4, "ffn": 192}
ZOO = {
    "resnet18": {},
    "resnet50": {},
    "mobilenet_v2": {},
    "bert_layer": {},
    "bert_layer-fused": {**BERT, "layer_norm": "fused"},
    "bert_layer-batch-3": {**BERT, "dynamic_batch": True},
}
SHAPES = {"bert_layer-batch-3": {"hidden_states": (3, 16, 96),
                                 "attention_mask": (3, 1, 1, 16)}}


def _feeds(model, shapes):
    feeds = models.example_inputs(model)
    # a symbolic batch: example_inputs gives 1; repeat to the chosen size
    return {k: np.repeat(v, shapes[k][0], axis=0) if k in shapes else v
            for k, v in feeds.items()}


@pytest.mark.parametrize("case", sorted(ZOO))
def test_zoo_model(case):
    name = case.split("-")[0]
    model = models.build(name, **ZOO[case])
    shapes = SHAPES.get(case, {})
    graph = optimize(from_onnx(model, shapes))
    feeds = _feeds(model, shapes)
    ours, ref = interpret(graph, feeds), run_ort(model, feeds)
    assert list(ours) == list(ref) == ["output"]
    want = ref["output"]
    scale = float(np.max(np.abs(want)))
    np.testing.assert_allclose(ours["output"], want, rtol=1e-4, atol=1e-4 * scale)

    ops = Counter(n.op for n in graph.nodes)
    assert "batch_norm" not in ops
    # shape arithmetic is gone: nothing computes integers, nothing reads only constants
    assert all(graph.type_of(o).dtype == "float32" for n in graph for o in n.outputs)
    assert not [n for n in graph if all(graph.is_constant(i) for i in n.inputs if i)]
    if name == "bert_layer":
        assert ops["layer_norm"] == 2 and ops["gelu"] == 1
        assert not {"erf", "sqrt", "pow", "reduce_mean", "reciprocal"} & set(ops)
