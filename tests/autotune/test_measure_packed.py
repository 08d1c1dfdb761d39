"""Candidates measured as a compiled model runs them: a template's declared weights
are packed once by a kernel of their own, and the kernel timed is the one without the
packing stages; what the packing makes is checked with the kernel's output."""

import kernel_templates  # noqa: F401  (registers test_packed_gemm)
import pytest

import tilewise.ops  # noqa: F401  (registers the operator templates)
from tilewise.autotune import ErrorKind, LocalBuilder, LocalRunner, MeasureInput, Task
from tilewise.autotune.measure.packed import PackedArtifact
from tilewise.runtime import KernelArtifact

pytestmark = pytest.mark.compiles


@pytest.fixture(scope="module")
def builder():
    b = LocalBuilder(n_parallel=2, timeout=60)
    yield b
    b.close()


def _measure(builder, task, configs):
    inputs = [MeasureInput(task, c) for c in configs]
    builds = builder.build(inputs)
    return builds, LocalRunner(number=1, repeat=1, timeout=30).run(inputs, builds)


def test_the_timed_kernel_reads_the_packed_weight_and_the_packing_is_checked(builder):
    task = Task("test_packed_gemm", (24,))
    right, wrong = (task.config_space.get(i) for i in range(2))
    assert (right["pack"].val, wrong["pack"].val) == ("right", "wrong")
    builds, results = _measure(builder, task, [right, wrong])
    for build in builds:
        art = build.artifact
        assert isinstance(art, PackedArtifact), build.error_msg
        assert [a.name for a in art.kernel.arg_specs] == ["A", "Bt", "C"]
        assert [a.name for a in art.pack.arg_specs] == ["B", "Bt"]
        assert [a.name for a in art.arg_specs] == ["A", "B", "C"]
        assert art.sources == (0, -1, 2) and art.pack_inputs == (1,)
    assert results[0].ok, results[0].error_msg
    assert results[1].error is ErrorKind.WRONG_ANSWER


def test_a_template_without_weights_is_measured_whole(builder):
    task = Task("test_gemm", (16,))
    (build,), (result,) = _measure(builder, task, [task.config_space.get(0)])
    assert isinstance(build.artifact, KernelArtifact) and result.ok


@pytest.mark.parametrize("task", [
    Task("conv2d_nchw", (1, 16, 10, 10, 32, 3, 3, 1, 1, 1, "float32", "bias+relu")),
    Task("conv2d_nchw_winograd", (1, 16, 10, 10, 32, 3, 3, 1, 1, 1, "float32", "bias")),
    Task("dense", (24, 64, 48, "bias+gelu")),
    Task("depthwise_conv2d_nchwc", (1, 32, 12, 12, 3, 3, 1, 1, 1, "float32", "bias+relu6")),
], ids=lambda t: t.name)
def test_operator_fallbacks_are_measured_packed_and_right(builder, task):
    (build,), (result,) = _measure(builder, task, [task.config_space.fallback])
    assert isinstance(build.artifact, PackedArtifact), build.error_msg
    timed = {a.name for a in build.artifact.kernel.arg_specs}
    packed = set(task.template.weights) - timed
    assert packed and packed <= {"kernel", "B"}  # the bias is read as it is
    assert result.ok, result.error_msg
