"""The model zoo: every model is valid ONNX, runs in onnxruntime with finite, varied
outputs, is reproducible from its seed, and takes a symbolic batch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tilewise import models
from tilewise.errors import ModelError

ort = pytest.importorskip("onnxruntime")

EXPECTED = {
    "resnet18": (1, 1000),
    "resnet50": (1, 1000),
    "mobilenet_v2": (1, 1000),
    "bert_layer": (1, 128, 768),
}


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    (out,) = sess.run(["output"], feeds)
    return out


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def zoo_model(request) -> tuple[str, onnx.ModelProto]:
    return request.param, models.build(request.param)


def test_zoo_names():
    assert set(models.ZOO) == set(EXPECTED)


def test_model_is_valid_onnx(zoo_model):
    _, model = zoo_model
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    assert [o.name for o in model.graph.output] == ["output"]


def test_model_runs_with_sane_outputs(zoo_model):
    name, model = zoo_model
    out = _run(model, models.example_inputs(model))
    assert out.shape == EXPECTED[name]
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert 1e-2 < out.std() < 1e3


def test_names_are_meaningful(zoo_model):
    name, model = zoo_model
    weights = _weights(model)
    expected = {"resnet18": "layer1.0.conv1.weight", "resnet50": "layer4.2.conv3.weight",
                "mobilenet_v2": "features.17.conv.1.0.weight",
                "bert_layer": "attention.self.query.weight"}[name]
    assert expected in weights
    assert all(n.name for n in model.graph.node)
    assert len({n.name for n in model.graph.node}) == len(model.graph.node)


def test_parameter_counts(zoo_model):
    # torchvision's counts (BN running stats excluded); BERT-base's per-layer count.
    name, model = zoo_model
    expected = {"resnet18": 11_689_512, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872,
                "bert_layer": 7_087_872}[name]
    count = sum(w.size for n, w in _weights(model).items()
                if w.dtype == np.float32 and w.ndim > 0 and "running" not in n)
    assert count == expected


def test_same_seed_same_weights():
    a, b = models.resnet18(image=32), models.resnet18(image=32)
    c = models.resnet18(image=32, seed=1)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not np.array_equal(wa["conv1.weight"], wc["conv1.weight"])


@pytest.mark.parametrize("name, kwargs", [
    ("resnet18", {"image": 64}),
    ("resnet50", {"image": 64}),
    ("mobilenet_v2", {"image": 64}),
    ("bert_layer", {"seq": 32}),
])
def test_dynamic_batch_runs_at_batch_2(name, kwargs):
    model = models.build(name, dynamic_batch=True, **kwargs)
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    feeds = models.example_inputs(model)
    assert all(v.shape[0] == 1 for v in feeds.values())
    one = _run(model, feeds)
    two = _run(model, {k: np.concatenate([v, v]) for k, v in feeds.items()})
    assert two.shape == (2, *one.shape[1:])
    np.testing.assert_allclose(two[1], one[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_bert_decomposed_layer_norm_across_opsets(opset):
    model = models.bert_layer(seq=32, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"ReduceMean", "Pow", "Sqrt", "Erf", "Shape", "Gather", "Concat"} <= ops
    assert "LayerNormalization" not in ops
    fused = models.bert_layer(seq=32, layer_norm="fused")
    assert "LayerNormalization" in {n.op_type for n in fused.graph.node}
    feeds = models.example_inputs(model)
    np.testing.assert_allclose(_run(model, feeds), _run(fused, feeds), rtol=1e-4, atol=1e-4)


def test_example_inputs_mask():
    feeds = models.example_inputs(models.bert_layer(seq=16, hidden=64, heads=4, ffn=128))
    mask = feeds["attention_mask"]
    assert mask.shape == (1, 1, 1, 16) and mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, -10000.0}
    assert mask[..., 0] == 0.0 and mask[..., -1] == -10000.0
    assert feeds["hidden_states"].shape == (1, 16, 64)


def test_mobilenet_clip_bounds_are_inputs():
    model = models.mobilenet_v2(image=32)
    clips = [n for n in model.graph.node if n.op_type == "Clip"]
    assert clips and all(len(n.input) == 3 and not n.attribute for n in clips)


def test_unknown_name_raises_model_error():
    with pytest.raises(ModelError, match="vgg16.*resnet18"):
        models.build("vgg16")


@pytest.mark.parametrize("kwargs", [{"opset": 12}, {"opset": 16, "layer_norm": "fused"},
                                    {"layer_norm": "apex"}])
def test_bad_bert_options_raise_model_error(kwargs):
    with pytest.raises(ModelError):
        models.bert_layer(seq=8, hidden=64, heads=4, ffn=128, **kwargs)
