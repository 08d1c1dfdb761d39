"""benchmarks/models.py parses its options (nothing is timed: benchmarks are never
asserted), and the PyTorch zoo holds the zoo's weights under the right names."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_models_benchmark_help():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "models.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--no-compile" in out and "--breakdown" in out


def test_torch_zoo_matches_onnxruntime():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from tilewise import models
    from tilewise.model_bench import ort_session, relative_error
    from tilewise.models.torch_zoo import torch_inputs, torch_model

    model = models.build("bert_layer", seq=16, hidden=64, heads=4, ffn=128)
    feeds = models.example_inputs(model)
    want = dict(zip(["output"], ort_session(model.SerializeToString(), 1).run(None, feeds),
                    strict=True))
    with torch.inference_mode():
        got = torch_model("bert_layer", model)(*torch_inputs(model, feeds))
    assert relative_error({"output": got.numpy()}, want) < 1e-5
