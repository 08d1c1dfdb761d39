"""OpenCL runtime: compile OpenCL C for a device, launch it on NumPy arrays, and time
it with profiling events, through pyopencl on any OpenCL platform (PoCL, Debian's CPU
implementation, is the device in CI).

pyopencl is an optional extra (``pip install 'tilewise[opencl]'``), imported only
here and only when a device is looked for. Where there is no pyopencl or no
platform, a module still holds its source and launch, and says so when called:

>>> mod = OpenCLModule(artifact)          # doctest: +SKIP
>>> mod(a, b, c)                          # doctest: +SKIP
NoDeviceError: no OpenCL device: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..errors import BuildError
from .artifact import ArgSpec
from .device import DeviceLimits, NoDeviceError, check_arrays, device_timing
from .module import TimingResult, check_timing


@dataclass(frozen=True)
class OpenCLArtifact:
    """A rendered OpenCL kernel and its launch: ``global_size`` work-items in
    work-groups of ``local_size``, (x, y, z) as ``get_global_id(0..2)`` count them."""

    name: str
    source: str
    global_size: tuple[int, int, int]
    local_size: tuple[int, int, int]
    arg_specs: tuple[ArgSpec, ...]
    device: int = 0  # the OpenCL device it is for (its number here)


def _pyopencl() -> Any:
    try:
        import pyopencl
    except ImportError:
        return None
    return pyopencl


@cache
def _devices() -> tuple[tuple[Any, ...], str]:
    """Every OpenCL device of every platform, and why there are none where so."""
    cl = _pyopencl()
    if cl is None:
        return (), "pyopencl is not installed: pip install 'tilewise[opencl]'"
    try:
        platforms = cl.get_platforms()
    except Exception as exc:  # noqa: BLE001 - the ICD loader finds no platform
        return (), f"no OpenCL platform ({exc}); install one, e.g. Debian's pocl-opencl-icd"
    devices = tuple(d for p in platforms for d in p.get_devices())
    return devices, "" if devices else "the OpenCL platforms have no device"


def opencl_available() -> bool:
    """Whether an OpenCL device is present (and pyopencl to reach it)."""
    return bool(_devices()[0])


def device_limits(device: int = 0) -> DeviceLimits:
    """The limits of OpenCL device number ``device``; raises NoDeviceError without one."""
    dev = _device(device)
    return DeviceLimits(dev.name.strip(), int(dev.local_mem_size),
                        int(dev.max_work_group_size))


def _device(index: int) -> Any:
    devices, why = _devices()
    if not devices:
        raise NoDeviceError(f"no OpenCL device: {why}")
    if not 0 <= index < len(devices):
        raise NoDeviceError(f"no OpenCL device number {index}: there are {len(devices)}")
    return devices[index]


class OpenCLModule:
    """An OpenCL kernel callable with NumPy arrays, each copied to the device and back
    (all of them: a kernel may write any of its buffers)."""

    def __init__(self, artifact: OpenCLArtifact, device: int = 0) -> None:
        self.artifact = artifact
        self._kernel: Any = None
        self._why = ""
        try:
            dev = _device(device)
        except NoDeviceError as exc:
            self._why = str(exc)
            return
        cl = _pyopencl()
        self._cl = cl
        self.device_name = dev.name.strip()
        self._ctx = cl.Context([dev])
        self._queue = cl.CommandQueue(
            self._ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
        try:
            program = cl.Program(self._ctx, artifact.source).build()
        except cl.Error as exc:  # the device's compiler refused the source
            raise BuildError(f"OpenCL build of {artifact.name} failed on "
                             f"{self.device_name}:\n{str(exc)[-4000:]}") from exc
        self._kernel = getattr(program, artifact.name)

    @property
    def source(self) -> str:
        return self.artifact.source

    def _ready(self) -> None:
        if self._kernel is None:
            raise NoDeviceError(f"{self.artifact.name} was built without a device to run "
                                f"it on: {self._why}")

    def _buffers(self, arrays: tuple[np.ndarray, ...]) -> list[Any]:
        check_arrays(self.artifact.name, self.artifact.arg_specs, arrays)
        flags = self._cl.mem_flags
        return [self._cl.Buffer(self._ctx, flags.READ_WRITE | flags.COPY_HOST_PTR,
                                hostbuf=np.ascontiguousarray(a)) for a in arrays]

    def _launch(self, bufs: list[Any]) -> Any:
        art = self.artifact
        return self._kernel(self._queue, art.global_size, art.local_size, *bufs)

    def __call__(self, *arrays: np.ndarray) -> None:
        self._ready()
        bufs = self._buffers(arrays)
        self._launch(bufs)
        for host, buf in zip(arrays, bufs, strict=True):
            self._cl.enqueue_copy(self._queue, host, buf)
        self._queue.finish()

    def time_evaluator(
        self,
        number: int = 10,
        repeat: int = 3,
        min_repeat_ms: float = 0,
        cache_flush: bool = False,
        warmup: bool = True,
    ):
        """As :meth:`tilewise.runtime.Module.time_evaluator`, each call timed by its
        profiling event, from its start on the device to its end (``cache_flush`` is
        not done)."""
        check_timing(number, repeat)

        def evaluate(*arrays: np.ndarray) -> TimingResult:
            self._ready()
            bufs = self._buffers(arrays)

            def seconds_per_call(calls: int) -> float:
                events = [self._launch(bufs) for _ in range(calls)]
                self._queue.finish()
                return sum(e.profile.end - e.profile.start for e in events) / 1e9 / calls

            return device_timing(seconds_per_call, lambda: self._launch(bufs), number,
                                 repeat, min_repeat_ms, warmup)

        return evaluate
