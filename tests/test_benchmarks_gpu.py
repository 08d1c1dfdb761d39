"""benchmarks/gpu.py: without a GPU, one line and exit 0; every workload it measures is
a GPU template's task whose fallback renders as CUDA C (nothing is timed here)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def gpu():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import gpu
    finally:
        sys.path.remove(str(BENCHMARKS))
    return gpu


def test_without_a_gpu_one_line_and_exit_0(gpu):
    if not gpu.missing():
        pytest.skip("a GPU is here: the benchmark would run")
    out = subprocess.run([sys.executable, str(BENCHMARKS / "gpu.py")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("benchmarks/gpu.py: no NVIDIA GPU to measure on here (")
    assert out.stdout.count("\n") == 1 and not out.stderr


def test_every_workload_is_a_gpu_task(gpu):
    if not gpu.WORKLOADS.exists():
        pytest.skip("the shared workloads file lies beside the checkout, not in it")
    import tilewise as tw
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import Task

    target = "cuda -arch=sm_90"
    workloads = gpu.load_workloads()
    assert {"gemm-4096", "gemm-4096-fp16", "resnet-c2-3x3", "resnet-c5-3x3", "mobilenet-dw1"} <= \
        {w["name"] for w in workloads}
    for w in workloads:
        task = Task(*gpu.tilewise_task(w), target)
        s, tensors = task.instantiate(task.config_space.fallback)
        assert "__global__" in tw.generate_source(tw.lower(s, tensors, "k"), target)
