"""The machine's fp32 FMA peak, measured: the roof over every GFLOP/s in compare.py's
table, read in the same run as they are (a shared VM's peak moves with its neighbours).

    python benchmarks/fma_peak.py                  # 1 and 2 threads
    python benchmarks/fma_peak.py --threads 4 --rounds 5

Each thread runs twelve independent chains of vector FMAs at the target's vector
width (AVX2: 8 floats, AVX-512: 16): more chains than FMA latency times FMA units on
the x86 and Arm cores we meet, and few enough for 16 vector registers. Built by
tilewise's own compiler path (the target's flags), so it sees what generated kernels
see.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time

CHAINS = 12

_SOURCE = r"""
#include <stdint.h>
#include <omp.h>
typedef float vec __attribute__((vector_size({BYTES})));
#define STEP(a) a = a * b + c
/* Seconds for `iters` steps of CHAINS independent FMAs on each of `threads` threads. */
double tw_fma_peak(int64_t iters, int32_t threads, float* sink) {
  double t0 = omp_get_wtime();
  #pragma omp parallel num_threads(threads)
  {
    int id = omp_get_thread_num();
    vec b = (vec){} + 0.999999f, c = (vec){} + 1e-3f;
    vec a0 = (vec){} + (float)id, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4,
        a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10,
        a11 = a0 + 11;
    for (int64_t i = 0; i < iters; ++i) {
      STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
      STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
    }
    vec s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    sink[id] = s[0];
  }
  return omp_get_wtime() - t0;
}
"""


class FmaPeak:
    """The probe, compiled for the host target: ``FmaPeak()(threads)`` is GFLOP/s."""

    def __init__(self) -> None:
        from tilewise.runtime import compile_shared
        from tilewise.target import Target

        target = Target.from_str("c")
        self.lanes = target.vector_lanes(4)
        source = _SOURCE.replace("{BYTES}", str(4 * self.lanes))
        path, _ = compile_shared(source, target.cflags)
        self._lib = ctypes.CDLL(str(path))
        self._run = self._lib.tw_fma_peak
        self._run.argtypes = [ctypes.c_int64, ctypes.c_int32, ctypes.POINTER(ctypes.c_float)]
        self._run.restype = ctypes.c_double

    def _gflops(self, iters: int, threads: int) -> tuple[float, float]:
        sink = (ctypes.c_float * threads)()
        seconds = self._run(iters, threads, sink)
        return 2.0 * iters * CHAINS * self.lanes * threads / seconds / 1e9, seconds

    def __call__(self, threads: int, repeat: int = 5, seconds: float = 0.05) -> float:
        """The median GFLOP/s of ``repeat`` runs of about ``seconds`` each."""
        iters = 1 << 16
        _, took = self._gflops(iters, threads)  # also wakes the OpenMP pool
        iters = max(iters, int(iters * seconds / max(took, 1e-6)))
        return statistics.median(self._gflops(iters, threads)[0] for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    opts = ap.parse_args()
    peak = FmaPeak()
    for threads in opts.threads:
        readings = []
        for _ in range(opts.rounds):
            readings.append(peak(threads))
            time.sleep(0.2)
        print(f"{threads} thread(s), {peak.lanes} floats a vector: median "
              f"{statistics.median(readings):.1f} GFLOP/s "
              f"(rounds: {', '.join(f'{r:.1f}' for r in readings)})")


if __name__ == "__main__":
    main()
