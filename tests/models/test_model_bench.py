"""``model_bench``: the peers ``tilewise model bench`` times beside the compiled model
(nothing here asserts a speed)."""

import pytest

import tilewise as tw
from tilewise import models
from tilewise.errors import ModelError
from tilewise.model_bench import bench_model, ort_peer, ort_session, torch_peer

SMALL_BERT = dict(seq=16, hidden=64, heads=4, ffn=128)


@pytest.fixture(scope="module")
def small_bert():
    model = models.build("bert_layer", **SMALL_BERT)
    return model, models.example_inputs(model)


def test_pytorch_is_a_peer_only_for_zoo_models(small_bert):
    pytest.importorskip("torch")
    model, feeds = small_bert
    assert torch_peer("model.onnx", model, feeds, 1, {}) is None
    session = ort_session(model.SerializeToString(), 1)
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                    strict=True))
    run, error = torch_peer("bert_layer", model, feeds, 1, want)
    assert error < 1e-5
    assert tuple(run().shape) == want[next(iter(want))].shape


@pytest.mark.compiles
def test_bench_times_every_peer_each_round(small_bert):
    pytest.importorskip("onnxruntime")
    model, feeds = small_bert
    compiled = tw.compile_model(model, target="c -cores=1")
    session = ort_session(model.SerializeToString(), 1)
    calls = []
    result = bench_model(compiled, feeds, rounds=2, repeat=1,
                         peers={"onnxruntime": ort_peer(session, feeds),
                                "counted": lambda: calls.append(1)})
    assert len(result.tilewise) == 2 and set(result.peers) == {"onnxruntime", "counted"}
    assert all(len(v) == 2 for v in result.peers.values())
    assert len(calls) == 2 * 2  # a warm-up and one timed call per round
    assert result.ratio("onnxruntime") > 0
    with pytest.raises(ModelError, match="at least 1"):
        bench_model(compiled, feeds, rounds=0)
