"""Passes over the loop IR after the nests are built: buffer flattening, loop-kind
legalisation, bounded unrolling and integer-division lowering."""

from __future__ import annotations

import dataclasses

from ..ir import (
    Allocate,
    Binary,
    BinaryOp,
    Buffer,
    Const,
    Expr,
    For,
    ForKind,
    Load,
    Mutator,
    Stmt,
    Store,
    Var,
    collect,
    const,
    const_bound,
    map_children,
)
from ..te.tensor import Tensor, TensorRead


class Flatten(Mutator):
    """Tensor reads and writes -> loads and stores at flat offsets into buffers."""

    def __init__(self, buffers: dict[Tensor, Buffer], mins: dict[Tensor, tuple[Expr, ...]]):
        self.buffers, self.mins = buffers, mins

    def offset(self, t: Tensor, indices: tuple[Expr, ...]) -> Expr:
        buf = self.buffers[t]
        flat: Expr = const(0)
        for ix, m, stride in zip(indices, self.mins[t], buf.strides, strict=False):
            flat = flat + (self.visit(ix) - m) * stride
        return flat

    def visit_TensorRead(self, node: TensorRead) -> Expr:
        return Load(self.buffers[node.tensor], self.offset(node.tensor, node.indices), node.dtype)

    def visit_Provide(self, node) -> Stmt:
        return Store(
            self.buffers[node.tensor],
            self.offset(node.tensor, node.indices),
            self.visit(node.value),
        )


def legalize_loops(s: Stmt, in_parallel: bool = False, in_vector: bool = False) -> Stmt:
    """Downgrade annotations the target cannot honour to serial loops.

    A parallel loop inside another parallel or vector loop, and a vector loop that
    holds an allocation or a parallel loop, become serial: the result is the same,
    only slower, and the alternatives (nested OpenMP teams, shared scratch across
    SIMD lanes) are wrong or slower still.
    """
    if isinstance(s, For):
        kind = s.kind
        if kind is ForKind.PARALLEL and (in_parallel or in_vector):
            kind = ForKind.SERIAL
        if kind is ForKind.VECTORIZED and (
            collect(s.body, Allocate) or _has_kind(s.body, ForKind.PARALLEL)
        ):
            kind = ForKind.SERIAL
        body = legalize_loops(
            s.body, in_parallel or kind is ForKind.PARALLEL, in_vector or kind is ForKind.VECTORIZED
        )
        if kind is not s.kind or body is not s.body:
            return dataclasses.replace(s, kind=kind, body=body)
        return s
    return map_children(
        s, lambda n: legalize_loops(n, in_parallel, in_vector) if isinstance(n, Stmt) else n
    )


#: Copies of loops with a run-time extent that unrolling may put in the source. The
#: loop partitioner splits a guarded loop into three such loops; unrolled 5x5x4 around
#: it (a depthwise 5x5 with inline padding) that was 300 vector loops with prologues
#: and epilogues, and 44 s of gcc for one kernel.
MAX_UNROLLED_RAGGED = 16


def limit_unrolling(s: Stmt) -> Stmt:
    """Unrolled loops that would copy more than :data:`MAX_UNROLLED_RAGGED` loops of
    run-time extent into the source run as serial loops instead, innermost kept first:
    the same result, and a kernel the C compiler builds in seconds."""
    return _limit_unrolling(s)[0]


def _limit_unrolling(s: Stmt) -> tuple[Stmt, int]:
    """(``s`` with its unrolling bounded, loops of run-time extent in its source)."""
    if isinstance(s, For):
        body, ragged = _limit_unrolling(s.body)
        kind = s.kind
        if kind is ForKind.UNROLLED and ragged:
            trips = int(s.extent.value) if isinstance(s.extent, Const) else 1
            if trips * ragged > MAX_UNROLLED_RAGGED:
                kind = ForKind.SERIAL
            else:
                ragged *= trips
        if not isinstance(s.extent, Const):
            ragged += 1
        if kind is not s.kind or body is not s.body:
            s = dataclasses.replace(s, kind=kind, body=body)
        return s, ragged
    total = 0

    def go(n):  # type: ignore[no-untyped-def]
        nonlocal total
        if not isinstance(n, Stmt):
            return n
        n, count = _limit_unrolling(n)
        total += count
        return n

    return map_children(s, go), total


def _has_kind(s: Stmt, kind: ForKind) -> bool:
    return any(f.kind is kind for f in collect(s, For))


def lower_division(s: Stmt, ranges: dict[Var, tuple[int, int]] | None = None) -> Stmt:
    """Floor division/modulo by a positive constant of a non-negative value is C's
    ``/`` and ``%``; rewrite those so generated code needs no floor helper there."""
    ranges = dict(ranges or {})
    if isinstance(s, For):
        ext = const_bound(s.extent, ranges)[1]
        inner = dict(ranges)
        if ext is not None:
            inner[s.var] = (0, ext - 1)
        return dataclasses.replace(
            s, extent=_div_expr(s.extent, ranges), body=lower_division(s.body, inner)
        )
    return map_children(
        s, lambda n: lower_division(n, ranges) if isinstance(n, Stmt) else _div_expr(n, ranges)
    )


def _div_expr(e: Expr, ranges: dict[Var, tuple[int, int]]) -> Expr:
    def go(n: Expr) -> Expr:
        n = map_children(n, go)
        if isinstance(n, Binary) and n.op in (BinaryOp.FLOORDIV, BinaryOp.FLOORMOD):
            lo_b = const_bound(n.b, ranges)[0]
            lo_a = const_bound(n.a, ranges)[0]
            if lo_b is not None and lo_b > 0 and lo_a is not None and lo_a >= 0:
                op = BinaryOp.TRUNCDIV if n.op is BinaryOp.FLOORDIV else BinaryOp.TRUNCMOD
                return Binary(op, n.a, n.b, n.dtype)
        return n

    return go(e)
