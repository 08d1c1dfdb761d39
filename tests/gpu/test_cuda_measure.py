"""Tuning on a cuda target: candidates are CUDA C checked by nvcc with their launch,
run on the GPU through CuPy; where either is missing, one line says which before
anything is built. Tuned end to end only where there is a GPU."""

from __future__ import annotations

import pytest
from gpu_testing import needs_nvcc, tune_on_device

import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.autotune.measure.builder import build_candidate
from tilewise.autotune.measure.workload import check_measurable
from tilewise.errors import TuningError
from tilewise.runtime.cuda import CudaArtifact, cuda_unavailable

CONV = (1, 4, 9, 9, 8, 3, 3, 2, 1)
needs_gpu = pytest.mark.skipif(bool(cuda_unavailable()), reason="needs nvcc, CuPy and a GPU")


@pytest.mark.skipif(not cuda_unavailable(), reason="CUDA kernels run here")
def test_without_a_gpu_one_line_says_what_is_missing():
    with pytest.raises(TuningError, match=r"cannot measure on 'cuda -arch=sm_90': .*(nvcc|CuPy|"
                                          r"CUDA device)"):
        check_measurable(Task("gpu_conv2d_nchw", CONV, "cuda -arch=sm_90"))


@needs_nvcc
def test_a_candidate_is_cuda_c_checked_by_nvcc_with_its_launch():
    task = Task("gpu_conv2d_nchw", CONV, "cuda -arch=sm_90")
    built = build_candidate(task, task.config_space.fallback, timeout=60)
    assert built.ok, built.error_msg
    assert isinstance(built.artifact, CudaArtifact) and built.artifact.arch == "sm_90"
    assert '__global__ void gpu_conv2d_nchw(' in built.artifact.source
    assert built.artifact.block[0] * built.artifact.block[1] * built.artifact.block[2] > 1


@needs_gpu
def test_the_tuner_end_to_end_on_the_gpu(tmp_path):
    summary, _ = tune_on_device(Task("gpu_conv2d_nchw", CONV, "cuda -arch=sm_90"), 4,
                                tmp_path / "t.db")
    assert summary.measured == 4 and summary.errors == 0
