"""Every supported ONNX operator, as a one-node model on odd shapes and broadcasts:
imported, optimized and interpreted, it agrees with ONNX Runtime to rtol 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_testing import Const, check_against_ort, model, one_node, rand

from tilewise.frontend import from_onnx
from tilewise.graph.interpret import interpret

BIG = np.iinfo(np.int64).max
SMALL = np.iinfo(np.int64).min


def ints(*v: int) -> Const:
    return Const(np.array(v, np.int64))


def _cases():
    c = one_node
    pos = dict(low=0.1, high=3.0)
    yield "relu", c("Relu", rand(2, 3, 5))
    yield "relu-int", c("Relu", rand(4, 3, dtype="int32", low=-5, high=5))
    yield "sigmoid", c("Sigmoid", rand(2, 3, 5, low=-30, high=30))
    yield "tanh", c("Tanh", rand(3, 7))
    yield "erf", c("Erf", rand(3, 7))
    yield "sqrt", c("Sqrt", rand(3, 7, **pos))
    yield "exp", c("Exp", rand(3, 7))
    yield "log", c("Log", rand(3, 7, **pos))
    yield "neg", c("Neg", rand(3, 7))
    yield "neg-int", c("Neg", rand(3, 7, dtype="int64", low=-9, high=9))
    yield "abs", c("Abs", rand(3, 7))
    yield "reciprocal", c("Reciprocal", rand(3, 7, **pos))
    # clip: bounds as inputs (opset 11+), either or both omitted
    yield "clip-13", c("Clip", rand(3, 5), Const(np.float32(-0.5)), Const(np.float32(0.7)),
                       opset=13)
    yield "clip-min-21", c("Clip", rand(3, 5), Const(np.float32(-0.5)), opset=21)
    yield "clip-max", c("Clip", rand(3, 5), None, Const(np.float32(0.2)))
    yield "clip-none", c("Clip", rand(3, 5))
    yield "clip-crossed", c("Clip", rand(3, 5), Const(np.float32(1)), Const(np.float32(0)))
    yield "clip-int", c("Clip", rand(3, 5, dtype="int64", low=-9, high=9),
                        Const(np.int64(-2)), Const(np.int64(3)))
    # broadcasting binaries
    yield "add", c("Add", rand(3, 1, 5), rand(4, 1))
    yield "add-const", c("Add", rand(2, 3), Const(rand(3)))
    yield "sub", c("Sub", rand(2, 3), rand(3))
    yield "mul-scalar", c("Mul", rand(), rand(2, 3))
    yield "div", c("Div", rand(4, 1, 3), rand(1, 5, 1, low=0.5, high=2))
    yield "div-int", c("Div", np.array([7, -7, 7, -7, 0], np.int64),
                       np.array([2, 2, -2, -2, 3], np.int64))
    yield "pow", c("Pow", rand(2, 3, **pos), rand(3))
    yield "pow-int-exponent", c("Pow", rand(2, 3), Const(np.array([2, 3, 1], np.int64)))
    yield "max-3", c("Max", rand(3, 1), rand(1, 4), rand(4))
    yield "min-1", c("Min", rand(2, 3))
    yield "min-2", c("Min", rand(2, 3), rand(2, 1))
    yield "equal", c("Equal", rand(3, 4, dtype="int64", low=0, high=3),
                     rand(4, dtype="int64", low=0, high=3))
    yield "less", c("Less", rand(3, 1), rand(1, 4))
    yield "greater", c("Greater", rand(2, 3), rand(3))
    yield "where", c("Where", rand(3, 1, dtype="bool"), rand(1, 4), rand())
    # matmul and gemm
    yield "matmul", c("MatMul", rand(2, 3, 4), Const(rand(4, 5)))
    yield "matmul-1d-left", c("MatMul", rand(5), rand(2, 5, 3))
    yield "matmul-1d-right", c("MatMul", rand(3, 4), rand(4))
    yield "matmul-batch", c("MatMul", rand(2, 1, 3, 4), rand(5, 4, 2))
    yield "gemm", c("Gemm", rand(3, 4), Const(rand(4, 5)))
    yield "gemm-trans", c("Gemm", rand(4, 3), Const(rand(5, 4)), Const(rand(5)), transA=1,
                          transB=1, alpha=0.5, beta=2.0)
    yield "gemm-c-scalar", c("Gemm", rand(3, 4), rand(4, 2), Const(rand(1)), beta=-1.0)
    yield "gemm-c-matrix", c("Gemm", rand(3, 4), rand(4, 2), rand(3, 2), beta=0.0)
    # convolution
    w33 = Const(rand(6, 4, 3, 3))
    yield "conv", c("Conv", rand(1, 4, 7, 6), w33, pads=[1, 1, 1, 1])
    yield "conv-bias-strides", c("Conv", rand(2, 4, 9, 8), w33, Const(rand(6)),
                                 strides=[2, 3], pads=[0, 1, 2, 1], dilations=[2, 1])
    yield "conv-groups", c("Conv", rand(2, 4, 7, 6), Const(rand(6, 2, 3, 3)), group=2,
                           strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2])
    yield "conv-depthwise", c("Conv", rand(1, 5, 8, 7), Const(rand(5, 1, 3, 3)), group=5,
                              pads=[1, 1, 1, 1])
    yield "conv-1x1", c("Conv", rand(1, 4, 5, 3), Const(rand(7, 4, 1, 1)), Const(rand(7)))
    yield "conv-same-upper", c("Conv", rand(1, 4, 7, 8), w33, auto_pad="SAME_UPPER",
                               strides=[2, 2], kernel_shape=[3, 3])
    yield "conv-same-lower", c("Conv", rand(1, 4, 7, 8), Const(rand(6, 4, 2, 4)),
                               auto_pad="SAME_LOWER", strides=[2, 3])
    yield "conv-valid", c("Conv", rand(1, 4, 7, 8), w33, auto_pad="VALID")
    yield "conv-weight-fed", c("Conv", rand(1, 4, 5, 5), rand(3, 4, 2, 2))
    # normalisation
    bn = [Const(rand(3)), Const(rand(3)), Const(rand(3)), Const(rand(3, low=0.5, high=2))]
    yield "batchnorm", c("BatchNormalization", rand(2, 3, 4, 5), *bn, epsilon=1e-3)
    yield "batchnorm-2d", c("BatchNormalization", rand(4, 3), *bn, opset=14)
    yield "softmax", c("Softmax", rand(2, 3, 5))
    yield "softmax-axis", c("Softmax", rand(2, 3, 5), axis=-2, opset=13)
    yield "layernorm", c("LayerNormalization", rand(2, 3, 8), Const(rand(8)), Const(rand(8)),
                         opset=17)
    yield "layernorm-axis", c("LayerNormalization", rand(2, 3, 4), Const(rand(3, 4)),
                              axis=1, epsilon=1e-3, opset=17)
    yield "gelu", c("Gelu", rand(3, 5), opset=20)
    yield "gelu-tanh", c("Gelu", rand(3, 5), approximate="tanh", opset=20)
    # pooling
    x = rand(2, 3, 9, 8)
    yield "maxpool", c("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    yield "maxpool-ceil", c("MaxPool", x, kernel_shape=[3, 2], strides=[2, 3], ceil_mode=1)
    yield "maxpool-ceil-pads", c("MaxPool", rand(1, 2, 6, 6), kernel_shape=[3, 3],
                                 strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    yield "maxpool-dilated", c("MaxPool", x, kernel_shape=[2, 2], dilations=[2, 3],
                               pads=[0, 1, 1, 0])
    yield "maxpool-same", c("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2],
                            auto_pad="SAME_UPPER")
    yield "avgpool", c("AveragePool", x, kernel_shape=[3, 3], strides=[2, 2],
                       pads=[1, 1, 1, 1])
    yield "avgpool-include-pad", c("AveragePool", x, kernel_shape=[3, 2], pads=[1, 0, 2, 1],
                                   count_include_pad=1)
    yield "avgpool-ceil", c("AveragePool", x, kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 0, 1], ceil_mode=1)
    yield "avgpool-ceil-include", c("AveragePool", x, kernel_shape=[3, 3], strides=[2, 2],
                                    pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)
    yield "avgpool-dilated-19", c("AveragePool", x, kernel_shape=[2, 2], dilations=[2, 2],
                                  pads=[1, 1, 1, 1], opset=19)
    # ceil_mode: a last window that would start in the end padding is dropped (the ONNX
    # text and ONNX Runtime's kernels; ONNX's shape inference still counts it)
    yield "maxpool-ceil-drop", c("MaxPool", rand(1, 1, 5, 5), kernel_shape=[2, 2],
                                 strides=[3, 3], pads=[0, 0, 1, 1], ceil_mode=1)
    yield "avgpool-ceil-drop", c("AveragePool", rand(1, 2, 7, 5), kernel_shape=[3, 2],
                                 strides=[2, 3], pads=[2, 1, 2, 1], ceil_mode=1,
                                 dilations=[2, 1], count_include_pad=1, opset=19)
    yield "globalavgpool", c("GlobalAveragePool", rand(2, 3, 5, 7))
    # shapes and data movement
    yield "flatten", c("Flatten", rand(2, 3, 4, 5))
    yield "flatten-0", c("Flatten", rand(2, 3, 4), axis=0)
    yield "flatten-neg", c("Flatten", rand(2, 3, 4), axis=-1)
    yield "reshape", c("Reshape", rand(2, 3, 4), ints(0, -1, 2))
    yield "reshape-allowzero", c("Reshape", rand(2, 3, 4), ints(4, 6), allowzero=1)
    yield "transpose", c("Transpose", rand(2, 3, 4))
    yield "transpose-perm", c("Transpose", rand(2, 3, 4), perm=[1, 2, 0])
    yield "squeeze-13", c("Squeeze", rand(1, 3, 1, 4), ints(0, -2), opset=13)
    yield "squeeze-all", c("Squeeze", rand(1, 3, 1, 4))
    yield "unsqueeze-13", c("Unsqueeze", rand(3, 4), ints(0, -1), opset=13)
    yield "unsqueeze-21", c("Unsqueeze", rand(3, 4), ints(1), opset=21)
    yield "concat", c("Concat", rand(2, 3), Const(rand(2, 1)), rand(2, 4), axis=-1)
    yield "split-13", c("Split", rand(7, 3), ints(2, 5), outputs=2, opset=13)
    yield "split-equal", c("Split", rand(2, 6), axis=1, outputs=3, opset=13)
    yield "split-num-outputs-18", c("Split", rand(5, 2), num_outputs=3, outputs=3)
    yield "split-input-18", c("Split", rand(3, 5), ints(1, 1, 3), axis=-1, outputs=3)
    yield "slice", c("Slice", rand(5, 6, 7), ints(1, -4), ints(BIG, -1), ints(0, 2))
    yield "slice-steps", c("Slice", rand(5, 6, 7), ints(-1, 0, 10), ints(SMALL, 6, -10),
                           ints(0, 1, 2), ints(-2, 4, -3))
    yield "slice-empty", c("Slice", rand(5, 6), ints(4), ints(2), ints(1))
    yield "slice-13", c("Slice", rand(4, 6), ints(-100), ints(100), opset=13)
    yield "gather-const", c("Gather", rand(3, 5, 2), ints(-1, 0, 3, -5), axis=1)
    yield "gather-fed", c("Gather", rand(4, 3), rand(2, 3, dtype="int64", low=0, high=4))
    yield "gather-scalar", c("Gather", rand(4, 3), Const(np.int64(-2)), axis=0)
    yield "identity", c("Identity", rand(3, 2))
    yield "dropout", c("Dropout", rand(3, 2), Const(np.float32(0.3)), outputs=2)
    yield "cast-int", c("Cast", rand(3, 4, low=-5, high=5), to=TensorProto.INT64)
    yield "cast-float", c("Cast", rand(3, 4, dtype="int32", low=-5, high=5),
                          to=TensorProto.FLOAT)
    yield "cast-bool", c("Cast", rand(3, 4).round(), to=TensorProto.BOOL)
    yield "expand", c("Expand", rand(3, 1), ints(2, 1, 4))
    yield "expand-smaller", c("Expand", rand(2, 3, 1), ints(3, 5))
    # pad: pads and the value as inputs, axes (opset 18) picking which axes they name
    yield "pad-13", c("Pad", rand(2, 3, 4), ints(0, 1, 2, 1, 0, 3), Const(np.float32(-1.5)),
                      opset=13)
    yield "pad-axes-18", c("Pad", rand(2, 3, 4), ints(1, 2, 0, 3), Const(np.float32(0.5)),
                           ints(-1, 0))
    yield "pad-zeros", c("Pad", rand(3, 4), ints(1, 0, 0, 2))
    # reductions: axes as attribute (ReduceMean/Max at 13) or input (ReduceSum at 13, 18)
    yield "reducemean-13", c("ReduceMean", rand(3, 4, 5), axes=[0, -1], opset=13)
    yield "reducemean-18", c("ReduceMean", rand(3, 4, 5), ints(1), keepdims=0)
    yield "reducemean-all", c("ReduceMean", rand(3, 4, 5), keepdims=0)
    yield "reducemean-noop", c("ReduceMean", rand(3, 4), noop_with_empty_axes=1)
    yield "reducesum-13", c("ReduceSum", rand(3, 4, 5), ints(-1, 0), opset=13)
    yield "reducesum-int", c("ReduceSum", rand(3, 4, dtype="int64", low=-5, high=5),
                             ints(1), keepdims=0)
    yield "reducemax-13", c("ReduceMax", rand(3, 4, 5), axes=[1], keepdims=0, opset=13)
    yield "reducemax-18", c("ReduceMax", rand(3, 4, 5), ints(2, 0))


CASES = list(_cases())


@pytest.mark.parametrize("built", [b for _, b in CASES], ids=[n for n, _ in CASES])
def test_agrees_with_onnxruntime(built):
    m, feeds = built
    check_against_ort(m, feeds)


def _constant_model(**attrs):
    node = helper.make_node("Constant", [], ["k"], **attrs)
    add = helper.make_node("Add", ["k", "x"], ["y"])
    x = np.ones((2, 3), np.float32)
    return model([node, add], {"x": x}, ["y", "k"]), {"x": x}


@pytest.mark.parametrize("attrs", [
    {"value": numpy_helper.from_array(rand(2, 3))},
    {"value_float": 2.5},
    {"value_floats": [1.0, 2.0, 3.0]},
], ids=["value", "value_float", "value_floats"])
def test_constant_forms(attrs):
    graph = check_against_ort(*_constant_model(**attrs))
    assert graph.is_constant("k")


@pytest.mark.parametrize("indices", [[1, 5], [[0, 1], [1, 2]]], ids=["linear", "coords"])
def test_sparse_constant(indices):
    """ONNX Runtime has no dense Constant from sparse_value; checked by hand."""
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([5.0, 7.0], np.float32)),
        numpy_helper.from_array(np.array(indices, np.int64)), [2, 3])
    m, _ = _constant_model(sparse_value=sparse)
    graph = from_onnx(m)
    want = np.array([[0, 5, 0], [0, 0, 7]], np.float32)
    np.testing.assert_array_equal(graph.constants["k"], want)
    np.testing.assert_array_equal(interpret(graph, {"x": np.ones((2, 3), np.float32)})["y"],
                                  want + 1)


@pytest.mark.parametrize("attrs", [{"value_int": 4}, {"value_ints": [1, 2, 3]}],
                         ids=["value_int", "value_ints"])
def test_integer_constants(attrs):
    node = helper.make_node("Constant", [], ["k"], **attrs)
    cast = helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT)
    add = helper.make_node("Add", ["kf", "x"], ["y"])
    x = rand(2, 3)
    check_against_ort(model([node, cast, add], {"x": x}, ["y", "k"]), {"x": x})


def test_shape_arithmetic_folds():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape; ConstantOfShape; Shape with
    start/end: all folded, the graph keeps only the arithmetic on data."""
    x = rand(2, 3, 4)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
        helper.make_node("Unsqueeze", ["d0", "ax0"], ["d0u"]),
        helper.make_node("Concat", ["d0u", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Shape", ["flat"], ["tail"], start=-1),
        helper.make_node("ConstantOfShape", ["tail"], ["ones"],
                         value=numpy_helper.from_array(np.array([1.5], np.float32))),
        helper.make_node("Mul", ["flat", "ones"], ["y"]),
    ]
    inits = {"i0": np.array(0, np.int64), "ax0": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64)}
    graph = check_against_ort(model(nodes, {"x": x}, ["y", "tail"], inits), {"x": x})
    assert [n.op for n in graph.nodes] == ["reshape", "mul"]
    assert graph.is_constant("tail")


def test_identity_output_of_an_input_and_of_an_output():
    x = rand(2, 3)
    nodes = [helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Identity", ["r"], ["z"])]
    graph = check_against_ort(model(nodes, {"x": x}, ["y", "r", "z"]), {"x": x})
    assert graph.outputs == ("y", "r", "z")


def test_symbolic_dims_given_in_input_shapes():
    x = rand(2, 3, 5)
    node = helper.make_node("Softmax", ["x"], ["y"])
    m = model([node], {"x": x}, ["y"])
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[2].dim_param = "batch", "seq"
    graph = check_against_ort(m, {"x": x}, input_shapes={"x": (2, 3, 5)})
    assert graph.type_of("y").shape == (2, 3, 5)


@pytest.mark.parametrize("attrs, pads, message", [
    ({"mode": "reflect"}, [0, 1, 0, 1], "mode 'reflect' is not supported"),
    ({}, [0, -1, 0, 1], "negative pads"),
    ({}, [0, 1, 1], "a start and an end"),
], ids=["reflect", "negative", "odd"])
def test_pads_it_cannot_take_are_one_clear_error(attrs, pads, message):
    from tilewise.errors import ModelError

    m, _ = one_node("Pad", rand(3, 4), ints(*pads), **attrs)
    with pytest.raises(ModelError, match=message):
        from_onnx(m)
