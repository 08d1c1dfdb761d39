"""Whatever bytes or shapes reach from_onnx, only a TilewiseError escapes."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper
from onnx_testing import model, rand

from tilewise.errors import TilewiseError
from tilewise.frontend import from_onnx
from tilewise.graph import Graph

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _small_cnn():
    """Conv, pool, Shape arithmetic and Reshape on symbolic N, H, W."""
    x = rand(2, 3, 8, 8)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], ceil_mode=1),
        helper.make_node("Shape", ["p"], ["s"], end=1),
        helper.make_node("Concat", ["s", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["p", "target"], ["flat"]),
        helper.make_node("ReduceMean", ["flat", "ax"], ["y"], keepdims=0),
    ]
    inits = {"w": rand(4, 3, 3, 3), "minus1": np.array([-1], np.int64),
             "ax": np.array([-1], np.int64)}
    m = model(nodes, {"x": x}, ["y"], inits)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for i, name in ((0, "N"), (2, "H"), (3, "W")):
        dims[i].dim_param = name
    return m


CNN = _small_cnn()
CNN_BYTES = CNN.SerializeToString()


def _imports_or_refuses(model_like, shapes=None):
    try:
        graph = from_onnx(model_like, shapes)
    except TilewiseError:
        return
    assert isinstance(graph, Graph)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    _imports_or_refuses(data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(CNN_BYTES) - 1), st.integers(0, 255)),
                min_size=1, max_size=6))
def test_corrupted_model_bytes(flips):
    data = bytearray(CNN_BYTES)
    for at, value in flips:
        data[at] = value
    _imports_or_refuses(bytes(data))


_DIM = st.one_of(st.integers(-2, 12), st.sampled_from([0, 1, 3, 2**40]))


@FUZZ
@given(st.dictionaries(st.sampled_from(["x", "y", "w"]),
                       st.lists(_DIM, min_size=0, max_size=5).map(tuple), max_size=2))
def test_random_input_shapes(shapes):
    _imports_or_refuses(CNN, shapes)


def test_the_fuzzed_model_imports():
    graph = from_onnx(CNN, {"x": (2, 3, 9, 7)})
    assert graph.type_of("y").shape == (2,)


_ATTR_VALUES = st.one_of(
    st.integers(-3, 5), st.floats(-2, 2, allow_nan=False),
    st.lists(st.integers(-3, 5), min_size=1, max_size=5),
    st.sampled_from(["SAME_UPPER", "VALID", "x"]))
_ATTR_NAMES = ["axis", "axes", "perm", "pads", "strides", "dilations", "kernel_shape", "group",
               "to", "keepdims", "split", "num_outputs", "auto_pad", "ceil_mode", "alpha",
               "transA", "start", "end", "allowzero", "epsilon", "approximate"]


def _operand(draw):
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    dtype = draw(st.sampled_from(["float32", "int64"]))
    const = draw(st.booleans())
    return rand(*shape, dtype=dtype, low=-3, high=4), const


@st.composite
def _one_node_models(draw):
    from tilewise.frontend.onnx_ops import TRANSLATORS

    op = draw(st.sampled_from(sorted(TRANSLATORS)))
    operands = [_operand(draw) for _ in range(draw(st.integers(0, 4)))]
    attrs = draw(st.dictionaries(st.sampled_from(_ATTR_NAMES), _ATTR_VALUES, max_size=3))
    names, feeds, inits = [], {}, {}
    for i, (value, const) in enumerate(operands):
        names.append(f"v{i}")
        (inits if const else feeds)[f"v{i}"] = value
    outs = [f"o{i}" for i in range(draw(st.integers(1, 3)))]
    node = helper.make_node(op, names, outs, name="n", **attrs)
    return model([node], feeds, outs, inits, opset=draw(st.sampled_from([13, 18, 21])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_one_node_models())
def test_random_nodes(m):
    _imports_or_refuses(m)
