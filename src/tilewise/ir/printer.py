"""Readable text for expressions, loop nests and functions (``print(tw.lower(...))``)."""

from __future__ import annotations

from typing import Any

from .expr import Address, Binary, BinaryOp, Call, Cast, Const, Load, Not, Select, Var
from .stmt import (
    Allocate,
    Barrier,
    ExternCall,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    Prefetch,
    PrimFunc,
    Seq,
    Stmt,
    Store,
)

_INFIX = {
    BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV, BinaryOp.FLOORDIV,
    BinaryOp.FLOORMOD, BinaryOp.EQ, BinaryOp.NE, BinaryOp.LT, BinaryOp.LE,
    BinaryOp.GT, BinaryOp.GE, BinaryOp.AND, BinaryOp.OR,
}


def expr_str(e: Any) -> str:
    if isinstance(e, Const):
        if e.dtype.is_float:
            return repr(float(e.value)) + ("f" if e.dtype.bits == 32 else "")
        return str(e.value).lower() if e.dtype.is_bool else str(e.value)
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Binary):
        if e.op in _INFIX:
            return f"({expr_str(e.a)} {e.op.value} {expr_str(e.b)})"
        return f"{e.op.value}({expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, Not):
        return f"!{expr_str(e.a)}"
    if isinstance(e, Select):
        t, f = expr_str(e.true_value), expr_str(e.false_value)
        return f"select({expr_str(e.cond)}, {t}, {f})"
    if isinstance(e, Cast):
        return f"{e.dtype}({expr_str(e.value)})"
    if isinstance(e, Call):
        return f"{e.func.value}({', '.join(expr_str(a) for a in e.args)})"
    if isinstance(e, Load):
        return f"{e.buffer.name}[{expr_str(e.index)}]"
    if isinstance(e, Address):
        return f"&{e.buffer.name}[{expr_str(e.index)}]"
    if hasattr(e, "ir_str"):
        return e.ir_str()
    return type(e).__name__


def _lines(s: Stmt, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if isinstance(s, For):
        kind = "" if s.kind is ForKind.SERIAL else f"{s.kind.value} "
        tag = f" <{s.thread_tag}>" if s.thread_tag else ""
        out.append(f"{pad}{kind}for {s.var.name} in [0, {expr_str(s.extent)}){tag}:")
        _lines(s.body, depth + 1, out)
    elif isinstance(s, Store):
        out.append(f"{pad}{s.buffer.name}[{expr_str(s.index)}] = {expr_str(s.value)}")
    elif isinstance(s, IfThenElse):
        out.append(f"{pad}if {expr_str(s.cond)}:")
        _lines(s.then_case, depth + 1, out)
        if s.else_case is not None:
            out.append(f"{pad}else:")
            _lines(s.else_case, depth + 1, out)
    elif isinstance(s, Seq):
        for c in s.stmts:
            _lines(c, depth, out)
    elif isinstance(s, Allocate):
        b = s.buffer
        out.append(f"{pad}allocate {b.name}: {b.dtype}[{b.size}] in {b.scope.value}")
        _lines(s.body, depth, out)
    elif isinstance(s, LetStmt):
        out.append(f"{pad}let {s.var.name} = {expr_str(s.value)}")
        _lines(s.body, depth, out)
    elif isinstance(s, ExternCall):
        out.append(f"{pad}{s.func}({', '.join(expr_str(a) for a in s.args)})")
    elif isinstance(s, Prefetch):
        into = f", L{s.level}" if s.level != 1 else ""
        out.append(f"{pad}prefetch({s.buffer.name}[{expr_str(s.index)} : +{s.extent}]{into})")
    elif isinstance(s, Barrier):
        out.append(f"{pad}barrier()")
    else:
        out.append(f"{pad}<{type(s).__name__}>")


def stmt_str(s: Stmt) -> str:
    out: list[str] = []
    _lines(s, 0, out)
    return "\n".join(out)


def func_str(f: PrimFunc) -> str:
    params = ", ".join(repr(b) for b in f.params)
    out = [f"func {f.name}({params}):"]
    _lines(f.body, 1, out)
    return "\n".join(out)


