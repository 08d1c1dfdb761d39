"""Compile generated C with the system compiler into a shared library, cached on disk
by a hash of everything that can change the result (source, flags, compiler)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

from .. import env
from ..errors import BuildError

_HARNESS = r"""
#include <time.h>
static double tw_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
/* Seconds per call for each repeat; first a warm-up call if asked; optionally evict
   caches. */
int tw_time_{NAME}(void** args, int32_t number, int32_t repeat, int64_t flush_bytes,
                   int32_t warmup, double* out) {
  volatile char* flush = flush_bytes > 0 ? (volatile char*)malloc((size_t)flush_bytes) : 0;
  if (warmup) {NAME}_packed(args);
  for (int32_t r = 0; r < repeat; ++r) {
    if (flush) for (int64_t i = 0; i < flush_bytes; i += 64) flush[i] += 1;
    double t0 = tw_now();
    for (int32_t n = 0; n < number; ++n) {NAME}_packed(args);
    out[r] = (tw_now() - t0) / (double)number;
  }
  free((void*)flush);
  return 0;
}
"""


def harness(name: str) -> str:
    return _HARNESS.replace("{NAME}", name)


@cache
def compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"C compiler {cc!r} cannot run: {exc}") from exc
    return out.stdout.splitlines()[0] if out.stdout else cc


def compile_shared(
    source: str, flags: tuple[str, ...], timeout: float | None = None
) -> tuple[Path, float]:
    """Compile ``source`` to a cached ``.so``; return its path and the seconds spent
    compiling (0 on a cache hit)."""
    return _compile_cached(source, flags, env.c_compiler(), "kernels", ".so", timeout)


def compile_executable(
    source: str, flags: tuple[str, ...], cc: str, timeout: float | None = None
) -> tuple[Path, float]:
    """Compile ``source`` (a whole program) with ``cc``, a cross compiler, to a cached
    executable; its path and the compiler's seconds (0 on a cache hit)."""
    return _compile_cached(source, flags, cc, "programs", "", timeout)


def _compile_cached(source: str, flags: tuple[str, ...], cc: str, folder: str, suffix: str,
                    timeout: float | None) -> tuple[Path, float]:
    key = hashlib.sha256("\0".join([source, *flags, cc, compiler_id(cc)]).encode()).hexdigest()
    out_dir = env.cache_dir() / folder
    out = out_dir / f"{key[:32]}{suffix}"
    if out.exists():
        return out, 0.0
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tw-build-") as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_text(source)
        made = Path(tmp) / f"kernel{suffix or '.bin'}"
        _run_compiler([cc, *flags, str(src), "-o", str(made), "-lm"], timeout, cc)
        os.replace(made, out)  # atomic: concurrent builders of one kernel never see half a file
    return out, time.perf_counter() - start


def _object_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("-c" if f == "-shared" else f for f in flags)


def compile_object(
    source: str, flags: tuple[str, ...], timeout: float | None = None
) -> tuple[Path, float]:
    """Compile ``source`` to a cached object file (``flags`` as for
    :func:`compile_shared`, compiled with ``-c``); its path and the compiler's seconds."""
    cc = env.c_compiler()
    oflags = _object_flags(flags)
    key = hashlib.sha256("\0".join([source, *oflags, cc, compiler_id(cc)]).encode()).hexdigest()
    out = env.cache_dir() / "objects" / f"{key[:32]}.o"
    if out.exists():
        return out, 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tw-build-") as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_text(source)
        obj = Path(tmp) / "kernel.o"
        _run_compiler([cc, *oflags, str(src), "-o", str(obj)], timeout, cc)
        os.replace(obj, out)
    return out, time.perf_counter() - start


def link_shared(objects: list[Path], flags: tuple[str, ...], out: Path,
                timeout: float | None = None) -> Path:
    """Link object files into the shared library ``out`` (with OpenMP and libm)."""
    cc = env.c_compiler()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    _run_compiler([cc, "-shared", "-fopenmp", *map(str, objects), "-o", str(tmp), "-lm"],
                  timeout, cc)
    os.replace(tmp, out)
    return out


def _run_compiler(cmd: list[str], timeout: float | None, cc: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{cc} timed out after {timeout}s") from exc
    except OSError as exc:
        raise BuildError(f"C compiler {cc!r} cannot run: {exc}") from exc
    if proc.returncode != 0:
        raise BuildError(f"{cc} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
