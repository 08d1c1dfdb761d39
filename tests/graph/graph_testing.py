"""Helpers for the graph tests: a small builder of graphs by hand, and golden files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tilewise.graph import Graph, Node, TensorType
from tilewise.graph.infer import infer_types

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "graph"
REGEN = os.environ.get("TILEWISE_REGEN_GOLDEN") == "1"


class GraphBuilder:
    """``b.input``, ``b.const``, ``b.op``, then ``b.build(outputs)``; types inferred."""

    def __init__(self, name: str = "g") -> None:
        self.name = name
        self.inputs: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.nodes: list[Node] = []

    def input(self, name: str, *shape: int, dtype: str = "float32") -> str:
        self.inputs[name] = TensorType(shape, dtype)
        return name

    def const(self, name: str, value: Any, dtype: str = "float32") -> str:
        self.constants[name] = np.asarray(value, dtype)
        return name

    def op(self, op: str, *inputs: str, out: str | None = None, n: int = 1,
           **attrs: Any) -> Any:
        base = out or f"{op}{len(self.nodes)}"
        outs = (base,) if n == 1 else tuple(f"{base}_{i}" for i in range(n))
        self.nodes.append(Node(op, inputs, outs, attrs, name=f"{op}_{len(self.nodes)}"))
        return outs[0] if n == 1 else outs

    def build(self, *outputs: str) -> Graph:
        g = Graph(inputs=tuple(self.inputs), outputs=outputs, nodes=tuple(self.nodes),
                  types=dict(self.inputs), constants=dict(self.constants), name=self.name)
        return infer_types(g)


def feeds_for(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in graph.inputs:
        t = graph.type_of(name)
        out[name] = rng.uniform(-2, 2, t.shape).astype(t.dtype)
    return out


def check_golden(name: str, graph: Graph | str) -> None:
    """``str(graph)`` (a graph's dump, or a listing) against
    tests/golden/graph/<name>.txt; regenerate with ``TILEWISE_REGEN_GOLDEN=1 pytest
    tests/graph`` and review the diff."""
    path = GOLDEN / f"{name}.txt"
    text = str(graph) + "\n"
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pytest.skip(f"regenerated {path.name}")
    assert path.exists(), f"{path} missing; run with TILEWISE_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; if intended, regenerate"
