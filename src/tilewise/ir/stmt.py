"""Statement nodes of the loop IR and the function that holds them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .buffer import Buffer
from .expr import Expr, Var


class ForKind(enum.Enum):
    SERIAL = "serial"
    PARALLEL = "parallel"
    VECTORIZED = "vectorized"
    UNROLLED = "unrolled"
    THREAD_BINDING = "thread_binding"


class Stmt:
    __slots__ = ()
    __hash__ = object.__hash__

    def __str__(self) -> str:
        from .printer import stmt_str

        return stmt_str(self)


@dataclass(frozen=True, eq=False, repr=False)
class For(Stmt):
    """``for var in [0, extent)``; every loop of the IR starts at zero."""

    var: Var
    extent: Expr
    kind: ForKind
    body: Stmt
    thread_tag: str | None = None
    pragmas: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, eq=False, repr=False)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(frozen=True, eq=False, repr=False)
class IfThenElse(Stmt):
    cond: Expr
    then_case: Stmt
    else_case: Stmt | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Seq(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, eq=False, repr=False)
class Allocate(Stmt):
    """``buffer`` lives for the duration of ``body``."""

    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, eq=False, repr=False)
class LetStmt(Stmt):
    var: Var
    value: Expr
    body: Stmt


@dataclass(frozen=True, eq=False, repr=False)
class ExternCall(Stmt):
    """A call to a hand-written function (a tensorize micro-kernel).

    ``fence``, where not empty, names a function that the thread which made the call
    must run before other threads read what the call stored: its stores are weakly
    ordered (non-temporal). The code generator runs it once per thread, after the
    parallel loop that holds the call, or at the kernel's end."""

    func: str
    args: tuple[Expr, ...]
    fence: str = ""


@dataclass(frozen=True, eq=False, repr=False)
class Prefetch(Stmt):
    """Ask the cache for the ``extent`` elements of ``buffer`` from ``index`` on, ahead
    of their use: one hint per cache line of the target, into cache ``level`` (1: the
    first level and every one below it; 2: the second, leaving the first alone). It
    reads and stores nothing, so a target without such a hint leaves it out."""

    buffer: Buffer
    index: Expr
    extent: int
    level: int = 1


@dataclass(frozen=True, eq=False, repr=False)
class Barrier(Stmt):
    """Synchronise the threads of a GPU block."""


@dataclass(frozen=True, eq=False, repr=False)
class PrimFunc:
    """A lowered kernel: parameters in call order, a body, and extern C snippets it uses."""

    name: str
    params: tuple[Buffer, ...]
    body: Stmt
    extern_sources: tuple[str, ...] = ()

    def __str__(self) -> str:
        from .printer import func_str

        return func_str(self)

    __repr__ = __str__


def seq(*stmts: Stmt | None) -> Stmt:
    """Flatten nested sequences and drop Nones; one statement stays itself."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))
