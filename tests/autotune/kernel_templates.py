"""Compiling templates for the measurement tests: a small gemm, and a gemm whose knob
can make it wrong or invalid. Importable, so builder processes can register them."""

from __future__ import annotations

import numpy as np

from tilewise import te
from tilewise.autotune import template
from tilewise.errors import InvalidConfigError


def gemm_reference(n: int):
    def make(rng: np.random.Generator):
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        return [a, b, np.zeros((n, n), np.float32)], [a @ b]

    return make


def _gemm(n: int, extra: float = 0.0):
    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), name="k")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * B[k, j] + extra, axis=k), name="C")
    return A, B, C


def _schedule(cfg, A, B, C):
    s = te.create_schedule(C.op)
    y, x = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    cfg.define_split("tile_y", y, num_outputs=2)
    cfg.define_split("tile_x", x, num_outputs=2)
    cfg.define_knob("vec", [0, 1])
    yo, yi = cfg["tile_y"].apply(s, C, y)
    xo, xi = cfg["tile_x"].apply(s, C, x)
    s[C].reorder(yo, xo, k, yi, xi)
    if cfg["vec"].val:
        s[C].vectorize(xi)
    return s, [A, B, C]


@template("test_gemm", reference=gemm_reference, flop=lambda n: 2.0 * n**3)
def test_gemm(cfg, n):
    return _schedule(cfg, *_gemm(n))


@template("test_faulty_gemm", reference=gemm_reference, flop=lambda n: 2.0 * n**3)
def test_faulty_gemm(cfg, n):
    """``mode``: ok; wrong (adds 1 per product); invalid (the template rejects it);
    crash (reads far outside A); hang (a reduction of 2**31 - 1 steps)."""
    cfg.define_knob("mode", ["ok", "wrong", "invalid", "crash", "hang"])
    mode = cfg["mode"].val
    if mode == "invalid":
        raise InvalidConfigError("mode=invalid")
    if mode in ("crash", "hang"):
        A = te.placeholder((n, n), "float32", name="A")
        B = te.placeholder((n, n), "float32", name="B")
        if mode == "crash":
            k = te.reduce_axis((0, n), name="k")
            C = te.compute(
                (n, n), lambda i, j: te.sum(A[(i + 1) * 4_000_000, k] * B[k, j], axis=k), name="C"
            )
        else:
            k = te.reduce_axis((0, 2**31 - 1), name="k")
            C = te.compute((n, n), lambda i, j: te.sum(A[i, k % n] * B[k % n, j], axis=k), name="C")
        return _schedule(cfg, A, B, C)
    return _schedule(cfg, *_gemm(n, 1.0 if mode == "wrong" else 0.0))


def assert_faulty_records(db, task, summary) -> None:
    """Eight trials of ``test_faulty_gemm`` on the grid: every mode twice, each with its
    error kind; the two rejected configs are recorded but spent no trial."""
    from tilewise.autotune import ErrorKind

    want = {
        "ok": ErrorKind.NONE,
        "wrong": ErrorKind.WRONG_ANSWER,
        "invalid": ErrorKind.INSTANTIATION,
        "crash": ErrorKind.RUNTIME,
        "hang": ErrorKind.TIMEOUT,
    }
    records = db.records(task)
    assert len(records) == 10 and summary.measured == 8
    assert summary.errors == 6 and summary.rejected == 2
    for record in records:
        assert record.result.error is want[record.config["mode"].val], record.result.error_msg
    assert summary.best_config["mode"].val == "ok"


@template("test_packed_gemm", reference=gemm_reference, flop=lambda n: 2.0 * n**3,
          weights=("B",))
def test_packed_gemm(cfg, n):
    """``C = A @ B`` reading B through its transpose ``Bt``, a stage of the weight B
    alone; ``pack``: right, or wrong (Bt is B + 1)."""
    cfg.define_knob("pack", ["right", "wrong"])
    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    off = 1.0 if cfg["pack"].val == "wrong" else 0.0
    Bt = te.compute((n, n), lambda j, k: B[k, j] + off, name="Bt")
    k = te.reduce_axis((0, n), name="k")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * Bt[j, k], axis=k), name="C")
    return te.create_schedule(C.op), [A, B, C]
