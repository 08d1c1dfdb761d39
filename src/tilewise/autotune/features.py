"""Loop-IR features for the cost model: what the lowered loop nest of a config does,
independent of how its knobs are spelled, so a model transfers across shapes and
operators.

For every store in the nest we look at the loops around it (extent, kind) and at
each buffer access under it: the stride of the access along each loop (contiguous,
strided or reused), the bytes it touches inside each of the innermost loops, and
the work done per byte. Statements are summarised by buffer role in a fixed-size
vector, log-scaled so that counts spanning orders of magnitude stay comparable.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir import (
    Allocate,
    Binary,
    BinaryOp,
    Call,
    Const,
    Expr,
    For,
    ForKind,
    IfThenElse,
    Load,
    PrimFunc,
    Scope,
    Stmt,
    Store,
    Var,
    children,
    collect,
)
from ..ir.simplify import linear_form
from ..ir.stmt import ExternCall, Prefetch

#: Innermost loops described one by one (innermost first).
INNER_LOOPS = 5
#: Loop levels (from the innermost) at which each access's footprint is measured.
FOOTPRINT_LEVELS = 5
#: Accesses described per statement: the store, then loads by bytes touched.
ACCESSES = 4
_KINDS = (ForKind.SERIAL, ForKind.PARALLEL, ForKind.VECTORIZED, ForKind.UNROLLED)


def _log(x: float) -> float:
    return math.log2(1.0 + max(x, 0.0))


@dataclass
class _Loop:
    var: Var
    extent: int
    kind: ForKind


def _strides(index: Expr, loop_vars: list[Var]) -> list[float | None]:
    """Elements the index moves when each loop variable grows by one; None where the
    index is not affine in it (the variable sits under a division or a product)."""
    lin = linear_form(index)
    coeff: dict[int, float] = {}
    nonlinear: set[int] = set()
    for atom, c in lin:
        if isinstance(atom, Var):
            coeff[id(atom)] = coeff.get(id(atom), 0.0) + c
        else:
            nonlinear.update(id(v) for v in collect(atom, Var))
    return [None if id(v) in nonlinear else coeff.get(id(v), 0.0) for v in loop_vars]


def _flops(e: Expr) -> int:
    n = 0
    if isinstance(e, Binary) and e.dtype.is_float and e.op in (
        BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV, BinaryOp.MIN, BinaryOp.MAX
    ):
        n += 1
    elif isinstance(e, Call):
        n += 4
    return n + sum(_flops(c) for c in children(e) if isinstance(c, Expr))


class _Collector:
    def __init__(self) -> None:
        self.rows: list[tuple[float, np.ndarray]] = []  # (trip count, per-statement row)
        self.local_bytes = 0
        self.global_alloc_bytes = 0
        self.guard_trips = 0.0
        self.extern_trips = 0.0
        self.prefetched_bytes = 0.0

    def walk(self, s: Stmt, loops: list[_Loop]) -> None:
        if isinstance(s, For):
            ext = int(s.extent.value) if isinstance(s.extent, Const) else 1
            self.walk(s.body, [*loops, _Loop(s.var, ext, s.kind)])
            return
        if isinstance(s, Store):
            self.rows.append(self.statement(s, loops))
            return
        if isinstance(s, IfThenElse):
            self.guard_trips += math.prod(lp.extent for lp in loops)
        if isinstance(s, Allocate):
            nbytes = s.buffer.size * s.buffer.dtype.bytes
            if s.buffer.scope is Scope.GLOBAL:
                self.global_alloc_bytes += nbytes
            else:
                self.local_bytes += nbytes
        if isinstance(s, ExternCall):
            self.extern_trips += math.prod(lp.extent for lp in loops)
        if isinstance(s, Prefetch):
            self.prefetched_bytes += (math.prod(lp.extent for lp in loops)
                                      * s.extent * s.buffer.dtype.bytes)
        for c in children(s):
            if isinstance(c, Stmt):
                self.walk(c, loops)

    def statement(self, st: Store, loops: list[_Loop]) -> tuple[float, np.ndarray]:
        trips = float(math.prod(lp.extent for lp in loops))
        flops = _flops(st.value)
        inner = list(reversed(loops))
        loop_feats: list[float] = []
        for i in range(INNER_LOOPS):
            if i < len(inner):
                lp = inner[i]
                loop_feats += [_log(lp.extent), *[float(lp.kind is k) for k in _KINDS]]
            else:
                loop_feats += [0.0] * (1 + len(_KINDS))
        accesses = [(st.buffer, st.index, True)] + [
            (ld.buffer, ld.index, False) for ld in collect(st.value, Load)
        ]
        described = [self.access(buf, idx, inner, is_store) for buf, idx, is_store in accesses]
        store_row, loads = described[0], sorted(described[1:], key=lambda r: -r[0])
        acc_feats: list[float] = list(store_row[1])
        for i in range(ACCESSES - 1):
            acc_feats += list(loads[i][1]) if i < len(loads) else [0.0] * len(store_row[1])
        total_bytes = sum(r[0] for r in described)
        par = math.prod(lp.extent for lp in loops if lp.kind is ForKind.PARALLEL)
        vec = math.prod(lp.extent for lp in loops if lp.kind is ForKind.VECTORIZED)
        unr = math.prod(lp.extent for lp in loops if lp.kind is ForKind.UNROLLED)
        summary = [
            _log(trips), _log(trips * flops), float(flops), _log(len(loops)),
            _log(par), _log(vec), _log(unr),
            _log(trips * flops / max(total_bytes, 1.0)),  # arithmetic intensity
        ]
        return trips, np.array(summary + loop_feats + acc_feats, dtype=np.float64)

    @staticmethod
    def access(buf, index: Expr, inner: list[_Loop], is_store: bool) -> tuple[float, list[float]]:
        """(bytes touched by the whole nest, features of this access)."""
        strides = _strides(index, [lp.var for lp in inner])
        elems = 1.0
        footprint: list[float] = []
        for lp, stride in zip(inner, strides, strict=False):
            if stride is None or stride != 0:
                elems *= lp.extent
            footprint.append(min(elems, float(buf.size)) * buf.dtype.bytes)
        footprint = (footprint + [footprint[-1] if footprint else 0.0] * FOOTPRINT_LEVELS)
        innermost = strides[0] if strides else 0.0
        feats = [
            1.0 if is_store else 0.0,
            float(buf.scope is not Scope.GLOBAL),
            float(innermost == 0), float(innermost == 1),
            float(innermost is None or abs(innermost or 0) > 1),
            _log(abs(innermost or 0.0)),
            *[_log(f) for f in footprint[:FOOTPRINT_LEVELS]],
            _log(float(sum(1 for s in strides if s == 0))),  # loops that reuse the element
        ]
        total = footprint[min(len(inner), FOOTPRINT_LEVELS) - 1] if inner else buf.dtype.bytes
        return total, feats


def loop_features(func: PrimFunc) -> np.ndarray:
    """A fixed-length feature vector of a lowered function."""
    col = _Collector()
    col.walk(func.body, [])
    width = _row_width()
    if col.rows:
        trips = np.array([t for t, _ in col.rows])
        rows = np.stack([r for _, r in col.rows])
        weights = trips / trips.sum()
        heaviest = rows[int(np.argmax(trips))]
        mean = weights @ rows
    else:
        heaviest = mean = np.zeros(width)
    extra = [
        _log(col.local_bytes), _log(col.global_alloc_bytes), _log(col.guard_trips),
        _log(col.extern_trips), float(len(col.rows)), _log(col.prefetched_bytes),
    ]
    return np.concatenate([heaviest, mean, np.array(extra)])


def _row_width() -> int:
    return 8 + INNER_LOOPS * (1 + len(_KINDS)) + ACCESSES * (6 + FOOTPRINT_LEVELS + 1)


def feature_width() -> int:
    return 2 * _row_width() + 6


class IRFeatureExtractor:
    """Features of each config's lowered loop nest (cached per config index), before
    loop partitioning and unswitching: those copy nests without changing what the
    schedule does, and skipping them halves the cost of a feature row.

    Configs the template rejects, or that fail to lower, get a row of zeros plus an
    "invalid" flag so the model learns to avoid them.

    Lowering is most of a tuning run's time (annealing visits thousands of configs
    while nothing is measured), so a call with many uncached configs lowers them in
    ``workers`` processes (default: one per core), started on first need and kept
    while the extractor lives. A config that breaks a declared constraint gets the
    invalid row without running the template; one that differs from its kernel's
    config only in knobs that do not matter (:meth:`ConfigSpace.canonical`) gets that
    config's row.
    """

    def __init__(self, task, workers: int | None = None) -> None:  # type: ignore[no-untyped-def]
        from ..lower import lower

        self.task = task
        self._lower = lower
        self._cache: dict[int, np.ndarray] = {}
        self.workers = max(1, os.cpu_count() or 1) if workers is None else workers
        self._pool: cf.ProcessPoolExecutor | None = None

    def one(self, index: int) -> np.ndarray:
        row = self._known(index)
        if row is None:
            self._settle([index])
            row = self._known(index)
            if row is None:
                space = self.task.config_space
                row = self._cache[index] = self._row(space.canonical_index(index))
        return row

    def _known(self, index: int) -> np.ndarray | None:
        """The row of config ``index`` where one was made or settled (:meth:`_settle`)."""
        return self._cache.get(index)

    def _settle(self, indices: Sequence[int]) -> list[int]:
        """Cache the rows of ``indices`` that need no lowering (a declared constraint
        broken: the invalid row; their kernel's config lowered before: its row), in one
        pass over the space's tables; return the kernels' configs left to lower."""
        fresh = [i for i in dict.fromkeys(indices) if i not in self._cache]
        if not fresh:
            return []
        space = self.task.config_space
        valid = space.valid(fresh).tolist()
        kernels = [int(c) for c in space.canonical(fresh).tolist()]
        missing: dict[int, None] = {}
        for index, ok, kernel in zip(fresh, valid, kernels, strict=True):
            if not ok:
                self._cache[index] = _invalid_row()
            elif kernel in self._cache:
                self._cache[index] = self._cache[kernel]
            else:
                missing[kernel] = None
        return list(missing)

    def _row(self, index: int) -> np.ndarray:
        """Instantiate and lower config ``index``: its row (the invalid row where the
        template refuses it or lowering fails)."""
        try:
            s, args = self.task.instantiate(self.task.config_space.get(index))
            row = np.append(loop_features(self._lower(s, args, optimize_loops=False)), 0.0)
        except Exception:  # noqa: BLE001 - a refusal or a broken template is "invalid" too
            row = _invalid_row()
        self._cache[index] = row
        return row

    def __call__(self, indices: Sequence[int]) -> np.ndarray:
        if not indices:
            return np.zeros((0, feature_width() + 1))
        missing = self._settle(indices)
        if self.workers > 1 and len(missing) >= _PARALLEL_MIN:
            self._lower_in_pool(missing)
        return np.stack([self.one(i) for i in indices])

    def _lower_in_pool(self, indices: list[int]) -> None:
        from .measure.isolation import process_context
        from .measure.lifeline import holding_signals

        try:
            if self._pool is None:
                self._pool = cf.ProcessPoolExecutor(
                    self.workers, mp_context=process_context(),
                    initializer=_start_worker, initargs=(self.task, os.getpid()))
                weakref.finalize(self, self._pool.shutdown, wait=True, cancel_futures=True)
            _keep_warm(self)
            chunk = -(-len(indices) // (4 * self.workers))
            with holding_signals():  # submitting starts the workers
                rows = self._pool.map(_worker_row, indices, chunksize=chunk)
            for index, row in zip(indices, rows, strict=True):
                self._cache[index] = row
        except (cf.process.BrokenProcessPool, OSError):
            # A worker died (out of memory, killed): go on lowering here, one by one.
            pool, self._pool, self.workers = self._pool, None, 1
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (a later call starts them again)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}, "_pool": None}


#: Extractors whose workers are kept, most recently used last. A network's tuners each
#: have one; the scheduler comes back to a few tasks at a time, and each pool holds
#: ``workers`` processes with the task's space.
WARM_POOLS = 2
_warm: list[weakref.ref[IRFeatureExtractor]] = []


def _keep_warm(extractor: IRFeatureExtractor) -> None:
    """Mark ``extractor``'s workers most recently used; stop those of the extractors
    beyond the ``WARM_POOLS`` most recent."""
    _warm[:] = [r for r in _warm if r() is not None and r() is not extractor]
    _warm.append(weakref.ref(extractor))
    while len(_warm) > WARM_POOLS:
        old = _warm.pop(0)()
        if old is not None:
            old.close()


#: Unknown configs in one call below which lowering them here beats shipping them out.
#: Each is a kernel to lower (7-10 ms for gemm, 25 for a 3x3 convolution): two are
#: worth the workers' round trip.
_PARALLEL_MIN = 2

_worker: IRFeatureExtractor | None = None


def _start_worker(task, tuner: int) -> None:  # type: ignore[no-untyped-def]
    from .measure.lifeline import end_with

    global _worker
    end_with(tuner)  # a worker must not outlive a killed tuner
    _worker = IRFeatureExtractor(task, workers=1)


def _worker_row(index: int) -> np.ndarray:
    assert _worker is not None
    return _worker._row(index)


def _invalid_row() -> np.ndarray:
    return np.append(np.zeros(feature_width()), 1.0)
