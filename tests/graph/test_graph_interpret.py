"""Type inference over a whole graph, and the NumPy reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from graph_testing import GraphBuilder

from tilewise.errors import ModelError
from tilewise.graph import Graph, Node, TensorType
from tilewise.graph.infer import infer_types
from tilewise.graph.interpret import interpret


def _mlp() -> Graph:
    b = GraphBuilder("mlp")
    x = b.input("x", 2, 3)
    h = b.op("matmul", x, b.const("w", np.arange(12).reshape(3, 4) / 10), out="h")
    r = b.op("relu", b.op("add", h, b.const("bias", [-1, 0, 1, -2]), out="hb"), out="r")
    parts = b.op("split", r, axis=1, sizes=(1, 3), out="part", n=2)
    return b.build(parts[1], "w", h)


def test_infer_types_fills_every_value():
    graph = _mlp()
    assert str(graph) == "\n".join([
        "graph mlp(x: float32[2, 3])",
        "  const bias: float32[4]",
        "  const w: float32[3, 4]",
        "  h = matmul(x, w)  # h: float32[2, 4]",
        "  hb = add(h, bias)  # hb: float32[2, 4]",
        "  r = relu(hb)  # r: float32[2, 4]",
        "  part_0, part_1 = split(r; axis=1, sizes=[1, 3])  # part_0: float32[2, 1], "
        "part_1: float32[2, 3]",
        "  return part_1, w, h",
    ])


def test_interpret_outputs_in_order():
    graph = _mlp()
    x = np.array([[1, 2, 3], [-1, 0, 1]], np.float32)
    out = interpret(graph, {"x": x})
    assert list(out) == ["part_1", "w", "h"]
    h = x @ (np.arange(12).reshape(3, 4) / 10).astype(np.float32)
    np.testing.assert_allclose(out["h"], h, rtol=1e-6)
    np.testing.assert_allclose(out["part_1"], np.maximum(h + [-1, 0, 1, -2], 0)[:, 1:],
                               rtol=1e-6)
    assert out["w"].dtype == np.float32


@pytest.mark.parametrize("feeds, match", [
    ({}, r"missing \['x'\]"),
    ({"x": np.zeros((2, 3), np.float32), "y": 1}, r"unknown \['y'\]"),
    ({"x": np.zeros((3, 2), np.float32)}, r"input 'x' is float32\[2, 3\], not float32\[3, 2\]"),
    ({"x": np.zeros((2, 3))}, r"not float64\[2, 3\]"),
])
def test_interpret_checks_feeds(feeds, match):
    with pytest.raises(ModelError, match=match):
        interpret(_mlp(), feeds)


def _graph(nodes, outputs=("y",)):
    return Graph(inputs=("x",), outputs=outputs, nodes=tuple(nodes),
                 types={"x": TensorType((2,), "float32")})


def test_infer_refuses_an_undefined_value():
    with pytest.raises(ModelError, match="relu node 'r': reads 'z', which nothing defines"):
        infer_types(_graph([Node("relu", ("z",), ("y",), name="r")]))


def test_infer_refuses_a_value_defined_twice():
    nodes = [Node("relu", ("x",), ("y",), name="a"), Node("neg", ("x",), ("y",), name="b")]
    with pytest.raises(ModelError, match="neg node 'b': writes 'y', which is already"):
        infer_types(_graph(nodes))


def test_infer_refuses_an_output_never_computed():
    with pytest.raises(ModelError, match="output 'q' is never computed"):
        infer_types(_graph([Node("relu", ("x",), ("y",))], outputs=("q",)))


def test_infer_refuses_a_wrong_output_count():
    with pytest.raises(ModelError, match="has 2 outputs; the operator makes 1"):
        infer_types(_graph([Node("relu", ("x",), ("y", "z"), name="r")]))
