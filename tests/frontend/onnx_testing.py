"""Helpers for the ONNX importer tests: tiny models built with onnx.helper, and the
check that tilewise (import, optimize, interpret) agrees with ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tilewise.frontend import from_onnx
from tilewise.graph import Graph
from tilewise.graph.interpret import interpret
from tilewise.graph.passes import optimize

_RNG = np.random.default_rng(7)


@dataclass(frozen=True)
class Const:
    """A node input given as an initializer (a constant), not fed."""

    value: Any


def rand(*shape: int, dtype: str = "float32", low: float = -2.0, high: float = 2.0
         ) -> np.ndarray:
    """Random values; integers in [low, high), bools half true."""
    if dtype == "bool":
        return _RNG.integers(0, 2, size=shape).astype(bool)
    if np.dtype(dtype).kind == "i":
        return _RNG.integers(int(low), int(high), size=shape).astype(dtype)
    return _RNG.uniform(low, high, size=shape).astype(dtype)


def model(nodes: Sequence[onnx.NodeProto], feeds: dict[str, np.ndarray],
          outputs: Sequence[str], initializers: dict[str, np.ndarray] | None = None,
          opset: int = 18, name: str = "test") -> onnx.ModelProto:
    """A model of ``nodes`` whose inputs are typed after ``feeds``; outputs untyped."""
    inputs = [helper.make_tensor_value_info(
        k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()]
    inits = [numpy_helper.from_array(np.asarray(v), k)
             for k, v in (initializers or {}).items()]
    outs = [onnx.ValueInfoProto(name=o) for o in outputs]
    graph = helper.make_graph(list(nodes), name, inputs, outs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def one_node(op_type: str, *args: Any, opset: int = 18, outputs: int = 1,
             **attrs: Any) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A model of one node. ``args``: arrays (fed), Const (initializers), None (an
    omitted optional input)."""
    names, feeds, inits = [], {}, {}
    for i, a in enumerate(args):
        if a is None:
            names.append("")
        elif isinstance(a, Const):
            names.append(f"c{i}")
            inits[f"c{i}"] = np.asarray(a.value)
        else:
            names.append(f"in{i}")
            feeds[f"in{i}"] = np.asarray(a)
    outs = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op_type, names, outs, name=f"{op_type.lower()}_0", **attrs)
    return model([node], feeds, outs, inits, opset), feeds


def run_ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


def check_against_ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray], rtol: float = 1e-5,
                      atol: float = 1e-6, input_shapes: dict | None = None) -> Graph:
    """Import, optimize and interpret ``m``; compare every output with ONNX Runtime's
    (same names, dtypes, shapes; values to ``rtol``/``atol``). Returns the graph."""
    graph = optimize(from_onnx(m, input_shapes))
    ours = interpret(graph, feeds)
    ref = run_ort(m, feeds)
    assert list(ours) == list(ref)
    for name, want in ref.items():
        got = ours[name]
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
    return graph
