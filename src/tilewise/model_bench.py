"""End-to-end latency of a compiled model beside ONNX Runtime, measured round by
round in one process, after checking the outputs against ONNX Runtime's; PyTorch eager
too for a zoo model where torch is installed.

Each round times tilewise's native run (median of its repeats), pauses so that one
side's idle OpenMP threads do not spin into the other's timer, then times each peer
the same way; a ratio is the median over rounds of each round's ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError
from .runtime.model_library import ModelLibrary

PAUSE_S = 0.2


@dataclass
class BenchResult:
    """Seconds per run, one entry per round and side; ``max_error`` is the largest
    difference from ONNX Runtime's outputs relative to their scale (None unchecked)."""

    tilewise: list[float] = field(default_factory=list)
    peers: dict[str, list[float]] = field(default_factory=dict)
    max_error: float | None = None

    def median(self, side: str = "tilewise") -> float:
        return statistics.median(self.tilewise if side == "tilewise" else self.peers[side])

    def ratio(self, peer: str) -> float:
        """Median over rounds of (peer's seconds / tilewise's seconds): above 1 is faster."""
        return statistics.median(p / t for p, t in zip(self.peers[peer], self.tilewise,
                                                       strict=True))


def random_feeds(specs: list[dict[str, Any]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a model's input specs (name, shape, dtype): standard normal
    floats, zero integers, and an attention mask that masks nothing."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
        if dtype.kind == "f" and "mask" not in spec["name"]:
            feeds[spec["name"]] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[spec["name"]] = np.zeros(shape, dtype)
    return feeds


def ort_session(model_bytes: bytes, threads: int):
    """An ONNX Runtime session on ``threads`` threads, or None where it is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def relative_error(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    """The largest ``|got - want|`` over the outputs, each relative to the scale (the
    largest magnitude) of its expected values."""
    worst = 0.0
    for name, w in want.items():
        g = got[name].astype(np.float64)
        scale = float(np.max(np.abs(w))) or 1.0
        worst = max(worst, float(np.max(np.abs(g - w))) / scale if w.size else 0.0)
    return worst


def check_against_ort(compiled: ModelLibrary, session: Any,
                      feeds: dict[str, np.ndarray]) -> float:
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                    strict=True))
    got = compiled.run(feeds)
    missing = set(want) - set(got)
    if missing:
        raise ModelError(f"the compiled model lacks output(s) {sorted(missing)}")
    return relative_error(got, want)


def time_calls(run: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` calls of ``run`` after one warm-up call."""
    run()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def ort_peer(session: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    return lambda: session.run(None, feeds)


def torch_peer(name: str, model: Any, feeds: dict[str, np.ndarray], threads: int,
               want: dict[str, np.ndarray]) -> tuple[Callable[[], Any], float] | None:
    """PyTorch eager on zoo model ``name`` holding ``model``'s weights
    (:mod:`tilewise.models.torch_zoo`), on ``threads`` threads, and the largest
    difference of its output from ``want`` (ONNX Runtime's); None where torch is not
    installed or ``name`` is not a zoo model."""
    try:
        import torch

        from .models.torch_zoo import NAMES, torch_inputs, torch_model
    except ImportError:
        return None
    if name not in NAMES:
        return None
    torch.set_num_threads(threads)
    module, inputs = torch_model(name, model), torch_inputs(model, feeds)

    def run() -> Any:
        with torch.inference_mode():
            return module(*inputs)

    out_name = next(iter(want))
    return run, relative_error({out_name: run().numpy()}, {out_name: want[out_name]})


def bench_model(compiled: ModelLibrary, feeds: dict[str, np.ndarray], rounds: int = 5,
                repeat: int = 5, peers: Mapping[str, Callable[[], Any]] | None = None
                ) -> BenchResult:
    """``rounds`` rounds of tilewise and each of ``peers`` (name -> a call that runs the
    model once), each side the median of ``repeat`` runs, a pause between sides."""
    if rounds < 1 or repeat < 1:
        raise ModelError("rounds and repeat must be at least 1")
    peers = dict(peers or {})
    result = BenchResult(peers={name: [] for name in peers})
    for _ in range(rounds):
        result.tilewise.append(compiled.time(feeds, number=1, repeat=repeat).median)
        for name, run in peers.items():
            time.sleep(PAUSE_S)
            result.peers[name].append(time_calls(run, repeat))
        time.sleep(PAUSE_S)
    return result
