"""One BERT encoder layer as an ONNX graph, written the way torch.onnx.export writes
Hugging Face's BertLayer (shape arithmetic and erf GELU included), with seeded weights."""

from __future__ import annotations

import math

import numpy as np
import onnx

from tilewise.errors import ModelError
from tilewise.models._onnx import GraphBuilder, check_opset

_EPS = 1e-12
_LAYER_NORMS = ("decomposed", "fused")


def _dense(g: GraphBuilder, x: str, name: str, cin: int, cout: int) -> str:
    """MatMul by a (cin, cout) weight, then Add of the bias."""
    w = g.normal(f"{name}.weight", (cin, cout), 1.0 / math.sqrt(cin))
    b = g.normal(f"{name}.bias", (cout,), 0.02)
    y = g.node("MatMul", [x, w], f"{name}.MatMul")
    return g.node("Add", [y, b], f"{name}.Add")


def _layer_norm(g: GraphBuilder, x: str, name: str, hidden: int, fused: bool,
                out: str | None = None) -> str:
    gamma = g.uniform(f"{name}.weight", (hidden,), 0.9, 1.1)
    beta = g.normal(f"{name}.bias", (hidden,), 0.02)
    if fused:
        return g.node("LayerNormalization", [x, gamma, beta], name, out=out, axis=-1,
                      epsilon=_EPS)
    # The decomposition torch.onnx.export writes below opset 17.
    mean = g.reduce_mean(x, f"{name}.ReduceMean", [-1])
    d = g.node("Sub", [x, mean], f"{name}.Sub")
    sq = g.node("Pow", [d, g.scalar(f"{name}.pow", 2.0)], f"{name}.Pow")
    var = g.reduce_mean(sq, f"{name}.ReduceMean_1", [-1])
    var = g.node("Add", [var, g.scalar(f"{name}.eps", _EPS)], f"{name}.Add")
    std = g.node("Sqrt", [var], f"{name}.Sqrt")
    y = g.node("Div", [d, std], f"{name}.Div")
    y = g.node("Mul", [y, gamma], f"{name}.Mul")
    return g.node("Add", [y, beta], f"{name}.Add_1", out=out)


def _gelu(g: GraphBuilder, x: str, name: str) -> str:
    """``x * 0.5 * (1 + erf(x / sqrt(2)))``, node by node as the exporter traces it."""
    half = g.node("Mul", [x, g.scalar(f"{name}.half", 0.5)], f"{name}.Mul")
    y = g.node("Div", [x, g.scalar(f"{name}.sqrt2", math.sqrt(2.0))], f"{name}.Div")
    y = g.node("Erf", [y], f"{name}.Erf")
    y = g.node("Add", [y, g.scalar(f"{name}.one", 1.0)], f"{name}.Add")
    return g.node("Mul", [half, y], f"{name}.Mul_1")


def _merge_heads_shape(g: GraphBuilder, x: str, hidden: int) -> str:
    """The target (B, S, hidden) built from ``x``'s own dims, as exporters write it."""
    p = "attention.self.merge_shape"
    shape = g.node("Shape", [x], f"{p}.Shape")
    axes = g.ints(f"{p}.axes", [0])
    dims = []
    for i in (0, 1):
        index = g.init(f"{p}.index{i}", np.array(i, dtype=np.int64))
        d = g.node("Gather", [shape, index], f"{p}.Gather_{i}", axis=0)
        dims.append(g.node("Unsqueeze", [d, axes], f"{p}.Unsqueeze_{i}"))
    last = g.ints(f"{p}.hidden", [hidden])
    return g.node("Concat", [*dims, last], f"{p}.Concat", axis=0)


def bert_layer(batch: int = 1, seq: int = 128, hidden: int = 768, heads: int = 12,
               ffn: int = 3072, seed: int = 0, layer_norm: str = "decomposed",
               opset: int = 17, dynamic_batch: bool = False) -> onnx.ModelProto:
    """One BERT-base encoder layer: self-attention, residual, LayerNorm, GELU FFN.

    Inputs ``hidden_states`` (B, S, hidden) and ``attention_mask`` (B, 1, 1, S), an
    additive mask (0 or -10000); output ``output`` (B, S, hidden).

    >>> model = bert_layer(seq=16, hidden=64, heads=4, ffn=256, layer_norm="fused")
    >>> [i.name for i in model.graph.input]
    ['hidden_states', 'attention_mask']
    """
    if layer_norm not in _LAYER_NORMS:
        raise ModelError(f"layer_norm {layer_norm!r} is not one of {', '.join(_LAYER_NORMS)}")
    fused = layer_norm == "fused"
    if fused:
        check_opset(opset, "layer_norm='fused' (LayerNormalization)", 17)
    check_opset(opset, "bert_layer")
    if hidden % heads:
        raise ModelError(f"hidden {hidden} is not a multiple of heads {heads}")
    head = hidden // heads
    n = "N" if dynamic_batch else batch
    g = GraphBuilder("bert_layer", opset, seed)
    x = g.input("hidden_states", [n, seq, hidden])
    mask = g.input("attention_mask", [n, 1, 1, seq])

    # The heads split's target is a constant; a symbolic batch becomes -1 in it.
    batch_dim = -1 if dynamic_batch else batch
    split = g.ints("attention.self.split_shape", [batch_dim, seq, heads, head])
    qkv = {}
    for part, perm in (("query", [0, 2, 1, 3]), ("key", [0, 2, 3, 1]), ("value", [0, 2, 1, 3])):
        name = f"attention.self.{part}"
        y = _dense(g, x, name, hidden, hidden)
        y = g.node("Reshape", [y, split], f"{name}.Reshape")
        qkv[part] = g.node("Transpose", [y], f"{name}.Transpose", perm=perm)

    p = "attention.self"
    s = g.node("MatMul", [qkv["query"], qkv["key"]], f"{p}.scores")
    s = g.node("Div", [s, g.scalar(f"{p}.scale", math.sqrt(head))], f"{p}.Div")
    s = g.node("Add", [s, mask], f"{p}.mask")
    s = g.node("Softmax", [s], f"{p}.Softmax", axis=-1)
    ctx = g.node("MatMul", [s, qkv["value"]], f"{p}.context")
    ctx = g.node("Transpose", [ctx], f"{p}.context.Transpose", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, _merge_heads_shape(g, ctx, hidden)], f"{p}.context.Reshape")

    y = _dense(g, ctx, "attention.output.dense", hidden, hidden)
    y = g.node("Add", [y, x], "attention.output.residual")
    h = _layer_norm(g, y, "attention.output.LayerNorm", hidden, fused)

    y = _dense(g, h, "intermediate.dense", hidden, ffn)
    y = _gelu(g, y, "intermediate.gelu")
    y = _dense(g, y, "output.dense", ffn, hidden)
    y = g.node("Add", [y, h], "output.residual")
    _layer_norm(g, y, "output.LayerNorm", hidden, fused, out="output")
    return g.model([("output", [n, seq, hidden])])
