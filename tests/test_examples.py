"""The README's tutorials that build and run a kernel without tuning run as written on
this machine; each checks its results against NumPy itself (the tuning ones, 03 and
05, are the tuner's tests' ground)."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.compiles
@pytest.mark.parametrize("name", ["01_first_kernel.py", "02_schedule_matmul.py",
                                  "04_tensorize_microkernel.py"])
def test_tutorial_runs(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert "GFLOP/s" in capsys.readouterr().out or name == "01_first_kernel.py"


@pytest.mark.compiles
def test_model_tutorial_runs(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["06_compile_model.py", "--model", "mobilenet_v2",
                                     "--image", "32"])
    runpy.run_path(str(EXAMPLES / "06_compile_model.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "same outputs" in out and "ONNX Runtime" in out
