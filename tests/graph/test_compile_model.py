"""Whole models compiled into one native library, checked against ONNX Runtime: the
zoo's models (at small sizes: the same layers and kernels on smaller maps), inputs
checked, an exported model run in a fresh process with no onnx and no compiler."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tilewise as tw
from tilewise.errors import ModelError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
models = pytest.importorskip("tilewise.models")

pytestmark = pytest.mark.compiles

TARGET = "c -cores=2"
SMALL = {
    "resnet18": {"image": 64},
    "resnet50": {"image": 32},
    "mobilenet_v2": {"image": 64},
    "bert_layer": {"seq": 16, "hidden": 96, "heads": 4, "ffn": 192},
}


def _ort(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


def _assert_close(got, want, rtol):
    for name, w in want.items():
        scale = float(np.max(np.abs(w)))
        err = float(np.max(np.abs(got[name].astype(np.float64) - w))) / scale
        assert err < rtol, f"{name}: {err:.2e} of the output's scale"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_zoo_model_matches_onnxruntime(name):
    model = models.build(name, **SMALL[name])
    feeds = models.example_inputs(model)
    compiled = tw.compile_model(model, target=TARGET)
    got = compiled.run(feeds)
    # Winograd's F(4x4) rounds about two decimal digits worse than the direct sum
    # (benchmarks/winograd_accuracy.py); the direct kernels agree to 1e-4.
    winograd = any("winograd" in k["label"] for k in compiled.kernels)
    _assert_close(got, _ort(model, feeds), rtol=1e-3 if winograd else 1e-4)
    assert compiled.arena_bytes >= compiled.manifest["peak_live_bytes"] > 0


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_values_in_channel_blocks_match_nchw(name):
    """Layout planning keeps values between convolutions in blocks; the model computes
    what it computes with every convolution NCHW at its edges."""
    model = models.build(name, **SMALL[name])
    feeds = models.example_inputs(model)
    blocked = tw.compile_model(model, target=TARGET)
    nchw = tw.compile_model(model, target=TARGET, layouts=False)
    assert blocked.manifest["blocked_values"] > 0 == nchw.manifest["blocked_values"]
    assert any(k["task"]["args"][-1] for k in blocked.manifest["kernels"]
               if k["task"] and k["task"]["name"].startswith(("conv2d", "depthwise")))
    _assert_close(blocked.run(feeds), nchw.run(feeds), rtol=1e-5)


def test_inputs_are_checked():
    model = models.build("bert_layer", **SMALL["bert_layer"])
    compiled = tw.compile_model(model, target=TARGET)
    feeds = models.example_inputs(model)
    with pytest.raises(ModelError, match="unknown input"):
        compiled.run({**feeds, "nope": feeds["hidden_states"]})
    with pytest.raises(ModelError, match="missing input 'attention_mask'"):
        compiled.run({"hidden_states": feeds["hidden_states"]})
    with pytest.raises(ModelError, match="dtype float64"):
        compiled.run({**feeds, "hidden_states": feeds["hidden_states"].astype(np.float64)})
    with pytest.raises(ModelError, match=r"shape \(1, 15, 96\)"):
        compiled.run({**feeds, "hidden_states": feeds["hidden_states"][:, :15]})


def test_exported_model_runs_without_onnx_or_compiler(tmp_path):
    model = models.build("mobilenet_v2", image=32)
    feeds = models.example_inputs(model)
    compiled = tw.compile_model(model, target=TARGET)
    want = compiled.run(feeds)["output"]
    compiled.export(tmp_path / "m")
    np.save(tmp_path / "x.npy", feeds["input"])
    np.save(tmp_path / "want.npy", want)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["onnx"] = None          # importing either now fails
        sys.modules["torch"] = None
        import numpy as np
        import tilewise as tw
        m = tw.load_model({str(tmp_path / "m")!r})
        y = m.run({{"input": np.load({str(tmp_path / "x.npy")!r})}})["output"]
        assert np.array_equal(y, np.load({str(tmp_path / "want.npy")!r}))
        assert "onnx" not in sys.modules or sys.modules["onnx"] is None
        print("ok")
    """)
    env = {"CC": "/nonexistent/cc", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_load_model_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not an exported tilewise model"):
        tw.load_model(tmp_path)


def test_load_model_refuses_weights_that_do_not_match(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": 1, "weights_bytes": 128}')
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64)
    (tmp_path / "model.so").write_bytes(b"")
    with pytest.raises(ModelError, match="does not match"):
        tw.load_model(tmp_path)


def _asymmetric_model(pool: str):
    """TensorFlow's SAME padding as exporters write it: a stride-2 convolution with one
    more row and column at the end, a ReLU, then a pooling padded unevenly too."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 0, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node(pool, ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 0, 2, 1])]
    graph = helper.make_graph(
        nodes, "asymmetric", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                            [1, 3, 17, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_uneven_padding_is_a_pad_node_and_matches_onnxruntime():
    model = _asymmetric_model("MaxPool")
    graph = tw.model.import_model(model)
    pads = [n for n in graph.nodes if n.op == "pad"]
    assert [n.attrs["value"] for n in pads] == [0.0, -np.inf]  # zeros, then -inf for max
    assert all(n.attrs["pads"] == (0, 0, 0, 0) for n in graph.nodes
               if n.op in ("conv2d", "max_pool2d"))
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 3, 17, 16), np.float32)}
    got = tw.compile_model(model, target=TARGET).run(feeds)
    _assert_close(got, _ort(model, feeds), rtol=1e-5)


def test_what_no_template_covers_runs_by_the_generated_schedule():
    """Uneven average pooling, dilated pooling, ceil-mode pooling that counts its pads:
    no operator template runs them, the generated schedule does (the grouped
    convolution is split into convolutions the template runs)."""
    from onnx import TensorProto, helper, numpy_helper

    model = _asymmetric_model("AveragePool")
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 3, 17, 16), np.float32)}
    _assert_close(tw.compile_model(model, target=TARGET).run(feeds), _ort(model, feeds),
                  rtol=1e-5)
    w = np.random.default_rng(2).standard_normal((8, 2, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], group=2, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], dilations=[2, 2]),
             helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)]
    graph = helper.make_graph(
        nodes, "uncovered", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                           [1, 4, 11, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    feeds = {"x": np.random.default_rng(3).standard_normal((1, 4, 11, 12), np.float32)}
    compiled = tw.compile_model(model, target=TARGET)
    _assert_close(compiled.run(feeds), _ort(model, feeds), rtol=1e-5)
    tasks = tw.model.extract_tasks(model, target=TARGET)
    assert {t.name for t, _ in tasks} == {"conv2d_nchw", "generated"}


@pytest.mark.parametrize("size, kernel, strides, pads", [
    ((17, 16), [3, 3], [2, 2], [0, 0, 0, 0]),
    ((10, 11), [3, 2], [2, 3], [1, 1, 1, 1]),
    ((9, 9), [2, 2], [3, 3], [0, 0, 1, 1]),  # a last window starting in the end padding
    ((8, 13), [3, 3], [2, 3], [2, 1, 2, 1]),
], ids=["odd", "uneven-window", "dropped-window", "padded"])
def test_max_pooling_with_ceil_mode_matches_onnxruntime(size, kernel, strides, pads):
    from onnx import TensorProto, helper

    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=kernel, strides=strides,
                            pads=pads, ceil_mode=1)
    graph = helper.make_graph(
        [node], "ceil", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, *size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": np.random.default_rng(2).standard_normal((1, 4, *size), np.float32)}
    got = tw.compile_model(model, target=TARGET).run(feeds)
    _assert_close(got, _ort(model, feeds), rtol=1e-6)


@pytest.mark.parametrize("groups, channels, outputs, bias", [
    (2, 8, 6, True), (4, 16, 8, False), (3, 9, 12, True)])
def test_grouped_convolution_is_one_per_group_and_matches_onnxruntime(groups, channels,
                                                                      outputs, bias):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(groups)
    inits = [numpy_helper.from_array(
        rng.standard_normal((outputs, channels // groups, 3, 3)).astype(np.float32), "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(outputs).astype(np.float32),
                                             "b"))
    nodes = [helper.make_node("Conv", ["x", "w", "b"][:2 + bias], ["c"], pads=[1, 1, 1, 1],
                              strides=[2, 2], group=groups),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "grouped", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                         [1, channels, 10, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    convs = [n for n in tw.model.import_model(model).nodes if n.op == "conv2d"]
    assert len(convs) == groups and all(n.attrs["groups"] == 1 for n in convs)
    feeds = {"x": rng.standard_normal((1, channels, 10, 9), np.float32)}
    _assert_close(tw.compile_model(model, target=TARGET).run(feeds), _ort(model, feeds),
                  rtol=1e-5)


@pytest.mark.parametrize("a_shape, b_shape, b_constant", [
    ((2, 1, 5, 3), (4, 3, 6), False),
    ((5, 3), (4, 3, 6), False),
    ((2, 4, 5, 3), (1, 4, 3, 6), True),
    ((3, 5, 3), (3, 6), False),
], ids=["both", "matrix-by-batch", "constant", "batch-by-matrix"])
def test_matmul_with_broadcast_batches_matches_onnxruntime(a_shape, b_shape, b_constant):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    b = rng.standard_normal(b_shape).astype(np.float32)
    ins = [helper.make_tensor_value_info("a", TensorProto.FLOAT, list(a_shape))]
    if not b_constant:
        ins.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, list(b_shape)))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])], "broadcast", ins,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(b, "b")] if b_constant else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"a": rng.standard_normal(a_shape).astype(np.float32)}
    if not b_constant:
        feeds["b"] = b
    _assert_close(tw.compile_model(model, target=TARGET).run(feeds), _ort(model, feeds),
                  rtol=1e-5)
