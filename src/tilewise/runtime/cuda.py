"""CUDA runtime: check generated CUDA C with nvcc, and run it through CuPy on a GPU.

CuPy is an optional extra (``pip install tilewise[cuda]``); it is imported only
when a CUDA module is loaded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BuildError
from .artifact import ArgSpec
from .device import NoDeviceError, check_arrays, device_timing
from .module import TimingResult, check_timing


def nvcc_available() -> bool:
    return shutil.which("nvcc") is not None


def check_compiles(source: str, arch: str, timeout: float = 120) -> str:
    """Compile ``source`` to PTX with nvcc; return the PTX, raise BuildError on failure."""
    if not nvcc_available():
        raise BuildError("nvcc is not on PATH; install the CUDA toolkit to compile CUDA kernels")
    with tempfile.TemporaryDirectory(prefix="tw-cuda-") as tmp:
        src, ptx = Path(tmp) / "kernel.cu", Path(tmp) / "kernel.ptx"
        src.write_text(source)
        proc = subprocess.run(
            ["nvcc", f"-arch={arch}", "-ptx", str(src), "-o", str(ptx)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise BuildError(f"nvcc failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return ptx.read_text()


@dataclass(frozen=True)
class PtxasInfo:
    """What ptxas reports of a kernel's resources (``-Xptxas -v``)."""

    registers: int
    spill_stores: int
    spill_loads: int
    shared_bytes: int
    text: str


def ptxas_info(source: str, arch: str, timeout: float = 120) -> PtxasInfo:
    """Compile ``source`` to a cubin for ``arch`` and read ptxas's resource report:
    registers per thread, bytes spilled, shared memory. Raises BuildError as
    :func:`check_compiles` does."""
    if not nvcc_available():
        raise BuildError("nvcc is not on PATH; install the CUDA toolkit to compile CUDA kernels")
    with tempfile.TemporaryDirectory(prefix="tw-cuda-") as tmp:
        src = Path(tmp) / "kernel.cu"
        src.write_text(source)
        proc = subprocess.run(
            ["nvcc", f"-arch={arch}", "-cubin", "-Xptxas", "-v", str(src),
             "-o", str(Path(tmp) / "kernel.cubin")],
            capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BuildError(f"nvcc failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    text = proc.stderr + proc.stdout

    def number(pattern: str) -> int:
        found = re.search(pattern, text)
        return int(found.group(1)) if found else 0

    return PtxasInfo(number(r"Used (\d+) registers"), number(r"(\d+) bytes spill stores"),
                     number(r"(\d+) bytes spill loads"), number(r"(\d+) bytes smem"), text)


def cuda_unavailable() -> str:
    """Why CUDA kernels cannot be built and run here ("" where they can): nvcc checks
    and compiles them, CuPy runs them on a GPU."""
    if not nvcc_available():
        return "nvcc is not on PATH; install the CUDA toolkit"
    return _no_gpu()


def _no_gpu() -> str:
    """Why CUDA kernels cannot run here, "" where they can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'tilewise[cuda]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CuPy raises its own error without a driver
        return f"no CUDA device ({exc})"
    return "" if count else "no CUDA device"


@dataclass(frozen=True)
class CudaArtifact:
    name: str
    source: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    arg_specs: tuple[ArgSpec, ...]
    arch: str


class CudaModule:
    """A CUDA kernel callable with CuPy arrays (or NumPy arrays, copied in and out).
    Built where there is no CuPy or no GPU, it holds the checked source and raises
    :class:`.device.NoDeviceError` when called."""

    def __init__(self, artifact: CudaArtifact) -> None:
        self.artifact = artifact
        self._why = _no_gpu()
        if self._why:
            return
        import cupy

        self._cp = cupy
        mod = cupy.RawModule(
            code=artifact.source, options=(f"-arch={artifact.arch}",), backend="nvcc"
        )
        self._kernel = mod.get_function(artifact.name)

    def _ready(self) -> None:
        if self._why:
            raise NoDeviceError(f"{self.artifact.name} was compiled for {self.artifact.arch} "
                                f"but cannot run here: {self._why}")

    @property
    def source(self) -> str:
        return self.artifact.source

    def _device_args(self, arrays):
        self._ready()
        cp = self._cp
        check_arrays(self.artifact.name, self.artifact.arg_specs, arrays)
        return [a if isinstance(a, cp.ndarray) else cp.asarray(a) for a in arrays]

    def __call__(self, *arrays) -> None:
        dev = self._device_args(arrays)
        self._kernel(self.artifact.grid, self.artifact.block, tuple(dev))
        for host, d in zip(arrays, dev, strict=False):
            if isinstance(host, np.ndarray):
                host[...] = d.get()

    def time_evaluator(
        self,
        number: int = 10,
        repeat: int = 3,
        min_repeat_ms: float = 0,
        cache_flush: bool = False,
        warmup: bool = True,
    ):
        """As :meth:`tilewise.runtime.Module.time_evaluator`, timed with CUDA events
        (``cache_flush`` is not done on the GPU)."""
        check_timing(number, repeat)
        cp = self._cp

        def evaluate(*arrays) -> TimingResult:
            dev = self._device_args(arrays)
            args = (self.artifact.grid, self.artifact.block, tuple(dev))

            def seconds_per_call(calls: int) -> float:
                start, stop = cp.cuda.Event(), cp.cuda.Event()
                start.record()
                for _ in range(calls):
                    self._kernel(*args)
                stop.record()
                stop.synchronize()
                return cp.cuda.get_elapsed_time(start, stop) / 1e3 / calls

            return device_timing(seconds_per_call, lambda: self._kernel(*args), number,
                                 repeat, min_repeat_ms, warmup)

        return evaluate
