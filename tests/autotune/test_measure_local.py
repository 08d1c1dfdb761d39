"""LocalBuilder + LocalRunner on real kernels: every tuner tunes a small gemm, and
kernels that crash, hang, write out of bounds or compute wrongly become error records."""

import kernel_templates  # registers test_gemm, test_faulty_gemm
import pytest

from tilewise.autotune import (
    BuildResult,
    Database,
    ErrorKind,
    GATuner,
    GridSearchTuner,
    LocalBuilder,
    LocalRunner,
    MeasureInput,
    MeasureOption,
    ModelTuner,
    RandomTuner,
    Task,
)
from tilewise.autotune.tuners import AnnealingOptions

runtime = pytest.importorskip("tilewise.runtime")

pytestmark = pytest.mark.compiles

TUNERS = [
    lambda t: RandomTuner(t, 0),
    lambda t: GridSearchTuner(t, 0),
    lambda t: GATuner(t, 0, pop_size=4, elite_num=1),
    lambda t: ModelTuner(
        t, 0, plan_size=4, annealing=AnnealingOptions(n_iter=20, parallel_size=16)
    ),
]


@pytest.fixture(scope="module")
def builder():
    b = LocalBuilder(n_parallel=2, timeout=60)
    yield b
    b.close()


@pytest.fixture
def option(builder):
    return MeasureOption(builder, LocalRunner(number=2, repeat=2, timeout=30), batch_size=4)


@pytest.mark.parametrize("make_tuner", TUNERS, ids=["random", "grid", "ga", "model"])
def test_each_tuner_tunes_a_small_gemm(make_tuner, option, tmp_path):
    task = Task("test_gemm", (64,))
    db = Database(tmp_path / "t.db")
    summary = make_tuner(task).tune(8, option, database=db)
    records = db.records(task)
    assert summary.measured == 8 == len(records) == len({r.config.index for r in records})
    assert summary.errors == 0, [r.result.error_msg for r in records if not r.result.ok]
    assert all(len(r.result.costs) == 2 and min(r.result.costs) > 0 for r in records)
    assert summary.best_flops > 0
    assert records[0].target["target"] == task.target


def test_faulty_configs_get_their_error_kind(builder, tmp_path):
    task = Task("test_faulty_gemm", (64,))
    db = Database(tmp_path / "t.db")
    option = MeasureOption(builder, LocalRunner(number=1, repeat=1, timeout=3), batch_size=5)
    # "mode" is the fastest knob: the first 10 configs hold every mode twice, 8 of them trials
    summary = GridSearchTuner(task, 0).tune(8, option, database=db)
    kernel_templates.assert_faulty_records(db, task, summary)


def test_compile_error(builder):
    task = Task("test_gemm", (64,), target="cuda")
    (build,) = builder.build([MeasureInput(task, task.config_space.get(0))])
    assert build.error is ErrorKind.COMPILE and "BuildError" in build.error_msg


HAND_WRITTEN = {
    "crash": "  *(volatile float*)0 = 1.0f;",
    "hang": "  for (volatile int64_t i = 0; ; ++i) {}",
    "oob": "  for (int64_t i = 0; i < ((int64_t)1 << 40); i += 4096) C[i] = 1.0f;",
}


def hand_written_artifact(kind, like):
    """A kernel with gemm's signature whose body misbehaves."""
    body = HAND_WRITTEN[kind]
    name = f"bad_{kind}"
    source = (
        "#include <stdint.h>\n#include <stdlib.h>\n"
        f"void {name}(float* A, float* B, float* C) {{\n{body}\n}}\n"
        f"void {name}_packed(void** args) {{ {name}(args[0], args[1], args[2]); }}\n"
    )
    so, _ = runtime.compile_shared(source + runtime.harness(name), ("-O1", "-shared", "-fPIC"))
    return runtime.KernelArtifact(name, source, str(so), like.arg_specs, like.target)


@pytest.mark.parametrize(
    "kind, error",
    [("crash", ErrorKind.RUNTIME), ("hang", ErrorKind.TIMEOUT), ("oob", ErrorKind.RUNTIME)],
)
def test_misbehaving_kernels_become_error_records(kind, error, builder):
    task = Task("test_gemm", (64,))
    inp = MeasureInput(task, task.config_space.get(0))
    (good,) = builder.build([inp])
    assert good.ok, good.error_msg
    bad = BuildResult(artifact=hand_written_artifact(kind, good.artifact))
    runner = LocalRunner(number=1, repeat=1, timeout=3)
    bad_result, good_result = runner.run([inp, inp], [bad, good])
    assert bad_result.error is error, bad_result.error_msg
    assert good_result.ok  # the runner goes on after a bad kernel
