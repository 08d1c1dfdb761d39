"""Load a compiled kernel, call it with NumPy arrays, and time it in native code."""

from __future__ import annotations

import ctypes
import statistics
from dataclasses import dataclass

import numpy as np

from ..errors import RuntimeCallError
from .artifact import KernelArtifact


@dataclass(frozen=True)
class TimingResult:
    """Seconds per call, one entry per repeat."""

    results: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.results)

    @property
    def median(self) -> float:
        return statistics.median(self.results)


def check_timing(number: int, repeat: int) -> None:
    """The arguments every ``time_evaluator`` refuses."""
    if number < 1 or repeat < 1:
        raise RuntimeCallError("time_evaluator: number and repeat must be at least 1")


def calls_per_repeat(number: int, min_repeat_ms: float, probe_seconds: float) -> int:
    """``number``, raised so that a repeat of calls that each last ``probe_seconds``
    lasts ``min_repeat_ms``."""
    return max(number, int(min_repeat_ms / max(probe_seconds * 1e3, 1e-6)) + 1)


class Module:
    """A callable kernel: ``mod(a, b, c)`` writes its outputs in place."""

    def __init__(self, artifact: KernelArtifact) -> None:
        self.artifact = artifact
        try:
            self._lib = ctypes.CDLL(artifact.so_path)
        except OSError as exc:
            raise RuntimeCallError(f"cannot load {artifact.so_path}: {exc}") from exc
        self._ptrs_type = ctypes.c_void_p * len(artifact.arg_specs)
        self._dtypes = [np.dtype(spec.dtype) for spec in artifact.arg_specs]
        self._entry = getattr(self._lib, f"{artifact.name}_packed")
        self._entry.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        self._entry.restype = None
        self._timer = getattr(self._lib, f"tw_time_{artifact.name}")
        self._timer.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int32,
            ctypes.c_int32,
            ctypes.c_int64,
            ctypes.c_int32,
            ctypes.POINTER(ctypes.c_double),
        ]
        self._timer.restype = ctypes.c_int

    @property
    def source(self) -> str:
        return self.artifact.source

    def _pack(self, arrays: tuple[np.ndarray, ...]) -> ctypes.Array:
        specs = self.artifact.arg_specs
        if len(arrays) != len(specs):
            raise RuntimeCallError(
                f"{self.artifact.name} takes {len(specs)} arrays "
                f"({', '.join(s.name for s in specs)}), got {len(arrays)}"
            )
        ptrs = self._ptrs_type()
        for i, (a, spec, dtype) in enumerate(zip(arrays, specs, self._dtypes, strict=True)):
            if not isinstance(a, np.ndarray):
                raise RuntimeCallError(
                    f"argument {spec.name}: expected a NumPy array, got {type(a).__name__}"
                )
            if a.dtype != dtype:
                raise RuntimeCallError(
                    f"argument {spec.name}: dtype {a.dtype}, expected {spec.dtype}"
                )
            if a.shape != spec.shape:
                raise RuntimeCallError(
                    f"argument {spec.name}: shape {a.shape}, expected {spec.shape}"
                )
            flags = a.flags
            if not flags.c_contiguous:
                raise RuntimeCallError(f"argument {spec.name}: array must be C-contiguous")
            if not flags.writeable:
                raise RuntimeCallError(f"argument {spec.name}: array must be writeable")
            # The buffer's address without building a.ctypes, a third of what a call
            # from Python cost (every shape is positive: there is a first byte).
            # NumPy's stubs do not declare the buffer protocol that arrays have.
            ptrs[i] = ctypes.addressof(ctypes.c_char.from_buffer(a))  # type: ignore[arg-type]
        return ptrs

    def __call__(self, *arrays: np.ndarray) -> None:
        self._entry(self._pack(arrays))

    def time_evaluator(
        self,
        number: int = 10,
        repeat: int = 3,
        min_repeat_ms: float = 0,
        cache_flush: bool = False,
        warmup: bool = True,
    ):
        """A function that times calls with given arrays; returns a TimingResult.

        Each repeat runs the kernel ``number`` times, raised until a repeat lasts
        ``min_repeat_ms`` (as long as one probing call took). One call warms up first
        (the probing call, where there is one) unless ``warmup`` is False: the caller
        has just run the kernel on these arrays itself, as a correctness check does.
        """
        check_timing(number, repeat)
        flush = 64 * 1024 * 1024 if cache_flush else 0

        def evaluate(*arrays: np.ndarray) -> TimingResult:
            ptrs = self._pack(arrays)
            n, warm = number, int(warmup)
            if min_repeat_ms > 0:
                probe = (ctypes.c_double * 1)()
                self._timer(ptrs, 1, 1, 0, warm, probe)
                warm = 0  # the probe's call warmed up
                n = calls_per_repeat(number, min_repeat_ms, probe[0])
            out = (ctypes.c_double * repeat)()
            self._timer(ptrs, n, repeat, flush, warm, out)
            return TimingResult(tuple(out))

        return evaluate
