"""Generic traversal of IR trees: children, rebuilding, visitors and mutators.

Traversal is driven by dataclass fields, so node types declared in other layers
(te's tensor reads and reductions) are walked without registering anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from .expr import Binary, Expr
from .stmt import Stmt

Node = Any  # Expr | Stmt


_FIELDS: dict[type, tuple[str, ...]] = {}
_INIT_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    """Field names that may hold children (cached per node class: a hot path)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if f.name != "dtype"
        )
    return names


def _rebuild(node: Node, changes: dict[str, Any]) -> Node:
    """``dataclasses.replace`` without its per-call field scan (lowering rebuilds
    nodes by the hundred thousand)."""
    cls = type(node)
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = _INIT_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return cls(**{n: changes[n] if n in changes else getattr(node, n) for n in names})


def _is_node(v: Any) -> bool:
    return isinstance(v, (Expr, Stmt))


def children(node: Node) -> Iterator[Node]:
    """The direct sub-expressions and sub-statements of ``node``."""
    if type(node) is Binary:  # most nodes of an index; spelled out, as in map_children
        yield node.a
        yield node.b
        return
    for name in _child_fields(type(node)):
        v = getattr(node, name)
        if _is_node(v):
            yield v
        elif isinstance(v, tuple):
            yield from (x for x in v if _is_node(x))


def map_children(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Rebuild ``node`` with ``fn`` applied to each child; the same object if nothing changed."""
    if type(node) is Binary:
        # Most nodes lowering rewrites are index arithmetic: their two operands taken
        # directly, not through the field scan below.
        a, b = fn(node.a), fn(node.b)
        if a is node.a and b is node.b:
            return node
        return Binary(node.op, a, b, node.dtype)
    changes: dict[str, Any] = {}
    for name in _child_fields(type(node)):
        v = getattr(node, name)
        if _is_node(v):
            nv = fn(v)
            if nv is not v:
                changes[name] = nv
        elif isinstance(v, tuple) and any(_is_node(x) for x in v):
            nt = tuple(fn(x) if _is_node(x) else x for x in v)
            if any(a is not b for a, b in zip(nt, v, strict=False)):
                changes[name] = nt
    return _rebuild(node, changes) if changes else node


def post_order(node: Node, fn: Callable[[Node], None]) -> None:
    """Call ``fn`` on every node, children first."""
    for c in children(node):
        post_order(c, fn)
    fn(node)


def collect(node: Node, cls: type | tuple[type, ...]) -> list[Any]:
    """Every node of the given type(s) under ``node``, in post-order."""
    out: list[Any] = []
    post_order(node, lambda n: out.append(n) if isinstance(n, cls) else None)
    return out


class Mutator:
    """Rewrites a tree bottom-up; override ``visit_<ClassName>`` for the nodes you change."""

    def visit(self, node: Node) -> Node:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            return method(node)
        return map_children(node, self.visit)


def substitute(node: Node, mapping: dict[Any, Expr]) -> Node:
    """Replace variables (by identity) with expressions."""
    if not mapping:
        return node

    def go(n: Node) -> Node:
        hit = mapping.get(n) if isinstance(n, Expr) else None
        if hit is not None:
            return hit
        return map_children(n, go)

    return go(node)


def structural_equal(a: Node, b: Node) -> bool:
    """Trees equal field by field; variables and buffers by identity."""
    if a is b:
        return True
    if type(a) is not type(b) or not dataclasses.is_dataclass(a):
        return False
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if _is_node(x):
            if not structural_equal(x, y):
                return False
        elif isinstance(x, tuple):
            if not isinstance(y, tuple) or len(x) != len(y):
                return False
            for p, q in zip(x, y, strict=False):
                if _is_node(p):
                    if not structural_equal(p, q):
                        return False
                elif p is not q and p != q:
                    return False
        elif f.name in ("name",) and type(a).__name__ == "Var":
            return False
        elif x is not y and x != y:
            return False
    return True
