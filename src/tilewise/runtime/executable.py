"""Kernels for another architecture, run as programs of their own: the kernel's C, the
timing harness and a generated ``main()`` that reads the arguments from its stdin,
calls (or times) the kernel and writes them back to its stdout; cross-compiled
statically and run in a subprocess, under an emulator (qemu-user) where this host
cannot run the code. This process cannot load such code, as
:class:`~tilewise.runtime.Module` loads a host kernel.

An emulator gives the kernel's answers, never its speed: the seconds it reports are
the emulator's.

Example (what :func:`tilewise.build` does for ``"c -mtriple=aarch64-linux-gnu"``)::

    exe, _ = compile_executable(source + harness(name) + program_main(name, specs),
                                target.cflags, target.compiler)
    mod = ExecutableModule(ExecutableArtifact(name, source, str(exe), specs,
                                              str(target), "qemu-aarch64"))
    mod(a, b, c)                       # C written in place, computed under qemu
"""

from __future__ import annotations

import ctypes
import math
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BuildError, RuntimeCallError
from .artifact import ArgSpec
from .device import check_arrays
from .module import TimingResult, check_timing

_MAIN = r"""
#include <stdio.h>
#include <stdint.h>
/* ``PROGRAM``: the arguments' bytes from stdin, one call of NAME, every argument's bytes
   to stdout. ``PROGRAM NUMBER REPEAT FLUSH_BYTES WARMUP MIN_REPEAT_MS``: times the calls
   as Module.time_evaluator does; seconds per call to stdout, a line a repeat. */
static const size_t tw_bytes[NARGS] = {BYTES};
int main(int argc, char** argv) {
  if (argc != 1 && argc != 6) {
    fprintf(stderr, "usage: %s [NUMBER REPEAT FLUSH_BYTES WARMUP MIN_REPEAT_MS] <IN >OUT\n",
            argv[0]);
    return 2;
  }
  void* args[NARGS];
  for (int i = 0; i < NARGS; ++i) {
    args[i] = aligned_alloc(64, (tw_bytes[i] + 63) / 64 * 64);
    if (!args[i] || fread(args[i], 1, tw_bytes[i], stdin) != tw_bytes[i]) {
      fprintf(stderr, "argument %d: short input\n", i);
      return 2;
    }
  }
  if (argc == 1) {
    NAME_packed(args);
    for (int i = 0; i < NARGS; ++i) fwrite(args[i], 1, tw_bytes[i], stdout);
  } else {
    int32_t number = atoi(argv[1]), repeat = atoi(argv[2]), warmup = atoi(argv[4]);
    const int64_t flush = atoll(argv[3]);
    const double min_repeat_ms = atof(argv[5]);
    if (min_repeat_ms > 0) {  /* as runtime.module.calls_per_repeat */
      double probe;
      tw_time_NAME(args, 1, 1, 0, warmup, &probe);
      warmup = 0;
      const double ms = probe * 1e3 > 1e-6 ? probe * 1e3 : 1e-6;
      const double calls = floor(min_repeat_ms / ms) + 1;
      if (calls > number) number = calls < INT32_MAX ? (int32_t)calls : INT32_MAX;
    }
    double* times = malloc(sizeof(double) * (size_t)repeat);
    if (!times) return 2;
    tw_time_NAME(args, number, repeat, flush, warmup, times);
    for (int32_t r = 0; r < repeat; ++r) printf("%.17g\n", times[r]);
  }
  return fflush(stdout) == 0 ? 0 : 2;
}
"""

#: Exit status of the program around the kernel where it cannot read or write its
#: files (the kernel never exits by itself).
_HARNESS_FAILED = 2


def program_main(name: str, specs: Sequence[ArgSpec]) -> str:
    """The ``main()`` around kernel ``name`` (after its source and
    :func:`~tilewise.runtime.harness`)."""
    sizes = [math.prod(spec.shape) * np.dtype(spec.dtype).itemsize for spec in specs]
    return (_MAIN.replace("NARGS", str(len(specs)))
            .replace("BYTES", ", ".join(str(n) for n in sizes)).replace("NAME", name))


def install_hint(program: str) -> str:
    """Where Debian keeps ``program``: ``<triple>-gcc`` in ``gcc-<triple>``, qemu's
    user-mode emulators in ``qemu-user``."""
    if program.startswith("qemu-"):
        return "apt-get install qemu-user"
    if program.endswith("-linux-gnu-gcc"):
        return f"apt-get install gcc-{program[:-len('-gcc')]}"
    return "install it, or put it on the PATH"


def require_programs(*programs: str) -> None:
    """Raise :class:`~tilewise.errors.BuildError`, naming the package, where one of
    ``programs`` (a cross compiler, an emulator; "" for none) is not on the PATH."""
    for program in programs:
        if program and shutil.which(program) is None:
            raise BuildError(f"{program} is not installed here ({install_hint(program)})")


@dataclass(frozen=True)
class ExecutableArtifact:
    """A kernel compiled into a program: run by ``emulator`` ("" where this host runs
    it itself); picklable, like :class:`~tilewise.runtime.KernelArtifact`."""

    name: str
    source: str
    exe_path: str
    arg_specs: tuple[ArgSpec, ...]
    target: str
    emulator: str = ""
    compile_s: float = 0.0


def _die_with_parent() -> None:
    """In the program's process before it starts: end when the process that started it
    ends (a measuring child killed at its time limit takes its hung kernel along)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ExecutableModule:
    """A callable kernel that runs as its own program: ``mod(a, b, c)`` writes its
    outputs in place; each call or timing is one run of the program, stopped after
    ``timeout`` seconds (None: no limit but the caller's)."""

    def __init__(self, artifact: ExecutableArtifact, timeout: float | None = None) -> None:
        if not Path(artifact.exe_path).is_file():
            raise RuntimeCallError(f"cannot load {artifact.exe_path}: no such program")
        require_programs(artifact.emulator)
        self.artifact = artifact
        self.timeout = timeout

    @property
    def source(self) -> str:
        return self.artifact.source

    def _check(self, arrays: Sequence[np.ndarray]) -> None:
        check_arrays(self.artifact.name, self.artifact.arg_specs, arrays)
        for a, spec in zip(arrays, self.artifact.arg_specs, strict=True):
            if not a.flags.writeable:
                raise RuntimeCallError(f"argument {spec.name}: array must be writeable")

    def _run(self, arrays: Sequence[np.ndarray], *timing: str) -> bytes:
        """Run the program on ``arrays`` (``timing``: its timing arguments); what it
        wrote. The arrays travel through its stdin and stdout: a program killed
        mid-run leaves no files behind."""
        feed = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
        cmd = [*([self.artifact.emulator] if self.artifact.emulator else []),
               self.artifact.exe_path, *timing]
        try:
            proc = subprocess.run(cmd, input=feed, capture_output=True, timeout=self.timeout,
                                  preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise RuntimeCallError(f"{self._what()} gave no result within "
                                   f"{self.timeout:g} s") from None
        except OSError as err:
            raise RuntimeCallError(f"cannot run {self._what()}: {err}") from None
        if proc.returncode != 0:
            raise RuntimeCallError(self._failure(proc))
        return proc.stdout

    def _what(self) -> str:
        under = f" under {self.artifact.emulator}" if self.artifact.emulator else ""
        return f"kernel {self.artifact.name}{under}"

    def _failure(self, proc: subprocess.CompletedProcess) -> str:
        said = proc.stderr.decode(errors="replace").strip()[-1000:]
        code = proc.returncode
        if code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        elif code == _HARNESS_FAILED:
            how = "could not read its arguments"
        else:
            how = f"exited with status {code}"
        return f"{self._what()} {how}" + (f": {said}" if said else "")

    def __call__(self, *arrays: np.ndarray) -> None:
        self._check(arrays)
        data = self._run(arrays)
        if len(data) != sum(a.nbytes for a in arrays):
            raise RuntimeCallError(f"{self._what()} wrote {len(data)} bytes, not the "
                                   f"{sum(a.nbytes for a in arrays)} of its arguments")
        at = 0
        for a in arrays:
            a[...] = np.frombuffer(data, a.dtype, a.size, at).reshape(a.shape)
            at += a.nbytes

    def time_evaluator(
        self,
        number: int = 10,
        repeat: int = 3,
        min_repeat_ms: float = 0,
        cache_flush: bool = False,
        warmup: bool = True,
    ):
        """As :meth:`tilewise.runtime.Module.time_evaluator`, timed by the program (in
        its own clock: under an emulator, the emulator's speed, not the device's)."""
        check_timing(number, repeat)
        flush = 64 * 1024 * 1024 if cache_flush else 0

        def evaluate(*arrays: np.ndarray) -> TimingResult:
            self._check(arrays)
            text = self._run(arrays, str(number), str(repeat), str(flush), str(int(warmup)),
                             repr(float(min_repeat_ms))).decode()
            return TimingResult(tuple(float(line) for line in text.split()))

        return evaluate


__all__ = ["ExecutableArtifact", "ExecutableModule", "install_hint", "program_main",
           "require_programs"]
