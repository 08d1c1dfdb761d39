"""``tilewise model compile`` and ``bench`` end to end on a small ONNX file, and their
one-line errors (exit status 2)."""

from __future__ import annotations

import json

import pytest

from tilewise.cli import main

models = pytest.importorskip("tilewise.models")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    import onnx

    path = tmp_path_factory.mktemp("m") / "mobilenet.onnx"
    onnx.save(models.build("mobilenet_v2", image=32), path)
    return path


@pytest.mark.compiles
def test_compile_then_bench_the_directory_and_the_file(small_onnx, tmp_path, capsys):
    out = tmp_path / "m.tw"
    assert main(["model", "compile", str(small_onnx), "--threads", "2", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"model.so", "weights.bin", "manifest.json"}
    assert main(["model", "bench", str(out), "--rounds", "1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["threads"] == 2 and row["peers_ms"] == {} and row["max_error"] is None
    assert main(["model", "bench", str(small_onnx), "--threads", "1", "--rounds", "1",
                 "--json", "--profile"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["max_error"] < 1e-4 and len(row["peers_ms"]["onnxruntime"]) == 1
    assert len(row["profile"]) > 10


@pytest.mark.parametrize("argv, message", [
    (["model", "compile", "no_such_model", "-o", "x"], "unknown model 'no_such_model'"),
    (["model", "bench", "resnet18", "--threads", "0"], "argument --threads: must be a whole"),
    (["model", "bench", "resnet18", "--threads", "2", "--target", "c -cores=1"],
     "either by --threads"),
    (["model", "compile", "resnet18", "--input-shape", "input=1,x", "-o", "x"],
     "must look like NAME=1,3,224,224"),
    (["model", "compile", "resnet18", "--db", "/nonexistent/t.db", "-o", "x"],
     "no tuning database"),
])
def test_mistakes_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_corrupt_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["model", "compile", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "cannot read ONNX model" in capsys.readouterr().err
