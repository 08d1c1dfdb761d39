"""What the GPU runtimes share: the artifact of a rendered kernel and its launch, the
error of a module built where no device is, and the check of the arrays a call gets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import RuntimeCallError
from .artifact import ArgSpec
from .module import TimingResult, calls_per_repeat


class NoDeviceError(RuntimeCallError):
    """A kernel was built (rendered, and compiled where a compiler is) on a machine
    without the device it runs on, and then called or timed."""


@dataclass(frozen=True)
class DeviceLimits:
    """What a device allows a kernel: bytes of shared (work-group local) memory per
    block, threads per block. The GPU templates choose their fallback from these."""

    name: str = "unknown"
    local_mem_bytes: int = 48 * 1024
    max_threads: int = 1024


#: An sm_xx GPU's limits without opting in to more shared memory.
CUDA_LIMITS = DeviceLimits("cuda", 48 * 1024, 1024)


def check_arrays(name: str, specs: Sequence[ArgSpec], arrays: Sequence) -> None:
    """Raise RuntimeCallError unless ``arrays`` match ``specs`` one to one."""
    if len(arrays) != len(specs):
        raise RuntimeCallError(
            f"{name} takes {len(specs)} arrays ({', '.join(s.name for s in specs)}), "
            f"got {len(arrays)}")
    for a, spec in zip(arrays, specs, strict=True):
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise RuntimeCallError(
                f"argument {spec.name}: expected an array, got {type(a).__name__}")
        if tuple(a.shape) != spec.shape or str(a.dtype) != spec.dtype:
            got, want = f"{a.dtype}{tuple(a.shape)}", f"{spec.dtype}{spec.shape}"
            raise RuntimeCallError(f"argument {spec.name}: {got}, expected {want}")


def device_timing(seconds_per_call: Callable[[int], float], launch: Callable[[], object],
                  number: int, repeat: int, min_repeat_ms: float,
                  warmup: bool) -> TimingResult:
    """``repeat`` readings of ``seconds_per_call(n)`` (a device's own timer over ``n``
    launches), ``n`` raised from ``number`` until a repeat lasts ``min_repeat_ms``, as
    :meth:`tilewise.runtime.Module.time_evaluator` does; the probing call warms up, or
    one ``launch()`` does where there is no probe and ``warmup``."""
    n = number
    if min_repeat_ms > 0:
        n = calls_per_repeat(number, min_repeat_ms, seconds_per_call(1))
    elif warmup:
        launch()
    return TimingResult(tuple(seconds_per_call(n) for _ in range(repeat)))
