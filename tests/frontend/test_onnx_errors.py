"""What the importer refuses, each with one ModelError line naming the problem."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_testing import Const, model, one_node, rand

from tilewise.errors import ModelError
from tilewise.frontend import from_onnx


def _symbolic(m: onnx.ModelProto, *dims: tuple[int, str]) -> onnx.ModelProto:
    shape = m.graph.input[0].type.tensor_type.shape.dim
    for i, name in dims:
        shape[i].dim_param = name
    return m


def test_unsupported_operators_are_all_named_before_anything_is_translated():
    x = rand(2, 3)
    nodes = [
        # translating this one would fail (a fed shape); the unsupported ops come first
        helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape_fed"),
        helper.make_node("LSTM", ["r"], ["l"], name="lstm_1"),
        helper.make_node("Relu", ["l"], ["y"], name="relu_1"),
        helper.make_node("MyOp", ["y"], ["z"], name="custom_1", domain="com.example"),
    ]
    m = model(nodes, {"x": x, "s": np.array([3, 2], np.int64)}, ["z"])
    with pytest.raises(ModelError, match=r"LSTM \(node 'lstm_1'\), MyOp \(node 'custom_1'\)"):
        from_onnx(m)


def test_unsupported_operator_without_a_node_name_gets_one():
    m, _ = one_node("Hardmax", rand(2, 3))
    m.graph.node[0].name = ""
    with pytest.raises(ModelError, match=r"Hardmax \(node 'Hardmax_0'\)"):
        from_onnx(m)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no ONNX model file at .*nothing.onnx"):
        from_onnx(tmp_path / "nothing.onnx")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 512, np.uint8)))
    with pytest.raises(ModelError, match="cannot read ONNX model|opset"):
        from_onnx(str(path))


def test_truncated_bytes():
    data = one_node("Relu", rand(2, 3))[0].SerializeToString()
    with pytest.raises(ModelError, match="not an ONNX model"):
        from_onnx(data[:-3])


def test_a_file_round_trips(tmp_path):
    m, _ = one_node("Relu", rand(2, 3))
    onnx.save(m, tmp_path / "relu.onnx")
    assert [n.op for n in from_onnx(tmp_path / "relu.onnx").nodes] == ["relu"]


@pytest.mark.parametrize("opset", [12, 22])
def test_wrong_opset(opset):
    m, _ = one_node("Relu", rand(2, 3), opset=opset)
    with pytest.raises(ModelError, match=f"opset {opset}; tilewise imports opsets 13..21"):
        from_onnx(m)


def test_no_default_opset():
    m, _ = one_node("Relu", rand(2, 3))
    del m.opset_import[:]
    with pytest.raises(ModelError, match="no default-domain"):
        from_onnx(m)


def test_symbolic_dim_not_given():
    m = _symbolic(one_node("Relu", rand(2, 3))[0], (0, "batch"))
    with pytest.raises(ModelError, match=r"input 'in0' has symbolic dim 0 \('batch'\)"):
        from_onnx(m)


def test_input_shape_contradicts_a_fixed_dim():
    m = _symbolic(one_node("Relu", rand(2, 3))[0], (0, "batch"))
    with pytest.raises(ModelError, match="input 'in0' has size 3 in dim 1; input_shapes gives 4"):
        from_onnx(m, {"in0": (2, 4)})


def test_input_shape_of_the_wrong_rank():
    with pytest.raises(ModelError, match="input 'in0' has rank 2"):
        from_onnx(one_node("Relu", rand(2, 3))[0], {"in0": (2, 3, 1)})


def test_unknown_input_in_input_shapes():
    with pytest.raises(ModelError, match=r"input_shapes names \['y'\]"):
        from_onnx(one_node("Relu", rand(2, 3))[0], {"in0": (2, 3), "y": (1,)})


def test_unsupported_element_type():
    m, _ = one_node("Relu", rand(2, 3).astype(np.float16))
    with pytest.raises(ModelError, match="input 'in0' has element type FLOAT16"):
        from_onnx(m)


@pytest.mark.parametrize("built, match", [
    (one_node("Add", rand(2, 3), rand(4)),
     r"add node 'add_0': shapes \(2, 3\) and \(4,\) do not broadcast"),
    (one_node("Conv", rand(1, 3, 5, 5), Const(rand(4, 2, 3, 3))),
     "conv2d node 'conv_0': input has 3 channels"),
    (one_node("Conv", rand(1, 2, 3, 3), Const(rand(4, 2, 3, 3)), dilations=[2, 2]),
     "conv2d node 'conv_0': its window .* is larger than the padded input"),
    (one_node("MaxPool", rand(1, 2, 3, 3), kernel_shape=[4, 2]),
     "max_pool2d node 'maxpool_0': its window .* larger than the padded input"),
    (one_node("Conv", rand(1, 2, 3, 3, 3), Const(rand(4, 2, 3, 3, 3))),
     "Conv node 'conv_0': only 2-D convolution"),
    (one_node("Reshape", rand(2, 3), np.array([3, 2], np.int64)),
     "Reshape node 'reshape_0': its shape .* must be a constant"),
    (one_node("Reshape", rand(2, 3), Const(np.array([4, -1], np.int64))),
     r"cannot reshape \(2, 3\)"),
    (one_node("MaxPool", rand(1, 1, 4, 4), kernel_shape=[2, 2], outputs=2),
     "its Indices output is not supported"),
    (one_node("BatchNormalization", rand(2, 3), *[Const(rand(3))] * 4, training_mode=1),
     "training mode"),
    (one_node("Squeeze", rand(2, 3), Const(np.array([0], np.int64))),
     r"cannot squeeze axes \[0\]"),
    (one_node("Cast", rand(2, 3), to=TensorProto.FLOAT16), "element type FLOAT16"),
    (one_node("Gather", rand(2, 3), Const(np.array([3], np.int64)), axis=1),
     r"an index lies outside -3..2"),
    (one_node("Slice", rand(2, 3), Const(np.array([0], np.int64)),
              Const(np.array([1], np.int64)), Const(np.array([0], np.int64)),
              Const(np.array([0], np.int64))), "slice step is 0"),
    (one_node("Softmax", rand(2, 3), axis=2), "axis 2 is outside -2..1"),
], ids=["broadcast", "channels", "conv-window", "pool-window", "conv3d", "fed-shape",
        "reshape-size", "pool-indices", "bn-training", "squeeze", "cast", "gather", "step",
        "axis"])
def test_bad_models(built, match):
    with pytest.raises(ModelError, match=match):
        from_onnx(built[0])


def test_error_is_one_line():
    with pytest.raises(ModelError) as info:
        from_onnx(one_node("Add", rand(2, 3), rand(4))[0])
    assert "\n" not in str(info.value)
