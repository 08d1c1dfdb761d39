"""Helpers of the GPU tests: capability probes (each test skips cleanly where its
device or tool is missing), the CUDA codegen test's matmul schedule
(``tw_testing.matmul_gpu``), and what the GPU template tests share: a template's
space, configs drawn from it, the shared memory a lowered kernel declares, and a run
on the OpenCL device checked against NumPy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tilewise as tw
from tilewise.autotune.space import ConfigSpace
from tilewise.ir import Allocate, Scope, collect
from tilewise.runtime.oclgrind import oclgrind_available
from tilewise.runtime.opencl import opencl_available
from tilewise.target import Target
from tw_testing import matmul_gpu  # noqa: F401  (the GPU tests import it from here)

needs_opencl = pytest.mark.skipif(not opencl_available(),
                                  reason="no OpenCL platform (install pocl-opencl-icd)")
needs_oclgrind = pytest.mark.skipif(not oclgrind_available(),
                                    reason="oclgrind is not installed")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")


def gemm_arrays(M: int, N: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    return a, b, np.zeros((M, N), np.float32)


CUDA = Target.from_str("cuda -arch=sm_90")


def space_of(schedule, args, limits=None) -> ConfigSpace:
    """The space a GPU template's ``schedule(cfg, *args, limits=...)`` defines (for
    the CUDA target; ``limits``: a device's, else the target's)."""
    space = ConfigSpace(CUDA)
    schedule(space, *args, limits=limits)
    return space


def sampled(space: ConfigSpace, n: int, seed: int) -> list:
    """``n`` configs the space offers (each one its declared constraints accept)."""
    return [space.get(i) for i in space.sample(n, np.random.default_rng(seed))]


def shared_bytes(func) -> int:
    """Bytes of shared memory a lowered kernel declares."""
    return sum(a.buffer.size * np.dtype(a.buffer.dtype.name).itemsize
               for a in collect(func.body, Allocate) if a.buffer.scope is Scope.SHARED)


def check_on_opencl(schedule, args, configs, limits, inputs, expected) -> None:
    """Each of ``configs`` built for the OpenCL device (``limits``: its own) and run on
    ``inputs``: its output is ``expected`` (NumPy's)."""
    for config in configs:
        s, tensors = schedule(config, *args, limits=limits)
        out = np.zeros_like(expected)
        tw.build(s, tensors, target="opencl", name="k")(*inputs, out)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4, err_msg=str(config))


def oclgrind_problems(schedule, args, configs) -> list[str]:
    """What Oclgrind finds running each of ``configs`` (whole launches, every group)."""
    from tilewise.driver import build_opencl_artifact
    from tilewise.runtime.oclgrind import oclgrind_check

    problems = []
    for config in configs:
        s, tensors = schedule(config, *args)
        problems += oclgrind_check(build_opencl_artifact(s, tensors, "k"), quick=False)
    return problems


def ptxas_of(schedule, args, config):
    """ptxas's report on ``config``'s CUDA C for sm_90."""
    from tilewise.runtime.cuda import ptxas_info

    s, tensors = schedule(config, *args)
    return ptxas_info(tw.generate_source(tw.lower(s, tensors, "k"), CUDA), "sm_90")


def nvcc_compiles(schedule, args, configs) -> None:
    """Each of ``configs`` rendered as CUDA C and compiled by nvcc for sm_90 (raises
    BuildError where nvcc refuses one)."""
    from tilewise.driver import build_cuda_artifact

    for config in configs:
        s, tensors = schedule(config, *args)
        build_cuda_artifact(s, tensors, CUDA, "k")


def tune_on_device(task, trials: int, db_path):
    """``trials`` random configs of ``task`` built and measured here, into a database at
    ``db_path``: ``(summary, database)``."""
    from tilewise.autotune import Database, LocalBuilder, LocalRunner, MeasureOption, RandomTuner
    from tilewise.autotune.measure.workload import check_measurable

    check_measurable(task)
    db = Database(db_path)
    builder = LocalBuilder(n_parallel=2, timeout=60)
    try:
        option = MeasureOption(builder, LocalRunner(number=1, repeat=2, timeout=60), 4)
        return RandomTuner(task, 0).tune(trials, option, database=db), db
    finally:
        builder.close()
