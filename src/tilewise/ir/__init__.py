"""Scalar IR: types, expression and statement nodes, traversal, simplification."""

from .buffer import Buffer, Scope
from .dtype import DType, as_dtype, bool_, float16, float32, float64, int8, int32, int64
from .expr import (
    Address,
    Binary,
    BinaryOp,
    Call,
    Cast,
    Const,
    Expr,
    Load,
    MathFunc,
    Not,
    Select,
    Var,
    binary,
    call,
    const,
    convert,
    max_,
    min_,
    select,
)
from .functor import Mutator, children, collect, map_children, post_order, structural_equal, substitute
from .interval import Interval, const_bound, eval_interval
from .simplify import simplify, simplify_stmt
from .stmt import (
    Allocate,
    Barrier,
    ExternCall,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    PrimFunc,
    Seq,
    Stmt,
    Store,
    seq,
)

__all__ = [name for name in dir() if not name.startswith("_")]
