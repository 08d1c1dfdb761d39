"""Task extraction keys a model's kernels as ``tilewise tune`` keys them, and a record
stored under such a key is what the compiled model runs."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
from tilewise.autotune.database import Database
from tilewise.autotune.record import MeasureResult, Record, describe_target, tool_version
from tilewise.cli import parse_op_args

models = pytest.importorskip("tilewise.models")
ort = pytest.importorskip("onnxruntime")

TARGET = "c -cores=2"


def test_tasks_count_repeated_layers():
    tasks = tw.extract_tasks(models.build("resnet18", image=64), target=TARGET)
    counts = {t.args: c for t, c in tasks}
    assert sum(counts.values()) == 22  # 20 convolutions, the max pool, the dense layer
    assert counts[(1, 64, 16, 16, 64, 3, 3, 1, 1, 1, "float32", "bias+relu", 0, 0)] == 2
    assert {t.name for t, _ in tasks} == {"conv2d_nchw", "max_pool2d", "dense"}


def test_the_command_writes_the_same_key():
    tasks = tw.extract_tasks(models.build("resnet18", image=64), target=TARGET)
    stem = tasks[0][0]
    args = parse_op_args("conv2d_nchw", ["N=1", "C=3", "H=64", "W=64", "K=64", "R=7", "S=7",
                                         "stride=2", "pad=3", "epilogue=bias+relu"])
    assert tw.autotune.Task("conv2d_nchw", args, TARGET).key == stem.key


@pytest.mark.compiles
def test_a_record_in_the_database_is_what_the_model_runs(tmp_path):
    model = models.build("resnet18", image=32)
    task = next(t for t, _ in tw.extract_tasks(model, target=TARGET)
                if t.name == "conv2d_nchw" and t.args[5] == 1)  # a 1x1 downsample
    space = task.config_space
    config = next(space.get(i) for i in range(len(space))
                  if space.get(i).index != space.fallback.index and _builds(task, space.get(i)))
    db = Database(tmp_path / "t.db")
    db.add(Record(task.key, config, MeasureResult(costs=(1e-6,)), tool_version(),
                  describe_target(task.target)))
    db.close()
    compiled = tw.compile_model(model, db=tmp_path / "t.db", target=TARGET)
    tuned = [k for k in compiled.kernels if k["tuned"]]
    assert [tuple(k["task"]["args"]) for k in tuned] == [tuple(task.key.to_json()["args"])]
    feeds = models.example_inputs(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)[0]
    got = compiled.run(feeds)["output"]
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def _builds(task, config) -> bool:
    try:
        task.instantiate(config)
    except tw.TilewiseError:
        return False
    return True
