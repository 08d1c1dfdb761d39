"""Loop IR -> C-family source. The C, CUDA and OpenCL renderers share this class
(the GPU ones through :class:`.gpu.GPURenderer`) and differ in tables (type names,
qualifiers, thread indices, math names) and a few hooks."""

from __future__ import annotations

import math
import re

from ..errors import CodegenError
from ..ir import (
    Address,
    Allocate,
    Barrier,
    Binary,
    BinaryOp,
    Call,
    Cast,
    Const,
    DType,
    Expr,
    ExternCall,
    For,
    IfThenElse,
    LetStmt,
    Load,
    MathFunc,
    Not,
    Prefetch,
    PrimFunc,
    Select,
    Seq,
    Stmt,
    Store,
    Var,
)
from ..ir.buffer import Buffer
from ..ir.dtype import float64

_INFIX = {
    BinaryOp.ADD: "+",
    BinaryOp.SUB: "-",
    BinaryOp.MUL: "*",
    BinaryOp.DIV: "/",
    BinaryOp.TRUNCDIV: "/",
    BinaryOp.TRUNCMOD: "%",
    BinaryOp.EQ: "==",
    BinaryOp.NE: "!=",
    BinaryOp.LT: "<",
    BinaryOp.LE: "<=",
    BinaryOp.GT: ">",
    BinaryOp.GE: ">=",
    BinaryOp.AND: "&&",
    BinaryOp.OR: "||",
}

_MATH32 = {
    MathFunc.EXP: "expf",
    MathFunc.LOG: "logf",
    MathFunc.SQRT: "sqrtf",
    MathFunc.TANH: "tanhf",
    MathFunc.ABS: "fabsf",
    MathFunc.ERF: "erff",
    MathFunc.POW: "powf",
}


# Spellings a tensor or loop variable must not take: C/C++/CUDA keywords, the type
# names and library functions the generated code uses.
_RESERVED = frozenset(
    """auto break case char const continue default do double else enum extern float for
    goto if inline int long register restrict return short signed sizeof static struct
    switch typedef union unsigned void volatile while bool true false half class template
    namespace new delete this operator private public protected virtual _Float16 int8_t
    int32_t int64_t INT64_C INFINITY NAN free malloc aligned_alloc exp expf log logf sqrt
    sqrtf tanh tanhf fabs fabsf erf erff pow powf args blockIdx threadIdx blockDim gridDim
    __syncthreads""".split()
)


class Renderer:
    """Renders one PrimFunc; subclasses fill the tables."""

    types: dict[str, str] = {
        "float16": "_Float16",
        "float32": "float",
        "float64": "double",
        "int8": "int8_t",
        "int32": "int32_t",
        "int64": "int64_t",
        "bool": "bool",
    }
    kernel_prefix = ""
    #: The address-space qualifier of a pointer parameter (OpenCL's ``__global``).
    buffer_prefix = ""
    restrict = "restrict"
    #: The type of loop counters and thread indices.
    index_type = "int32_t"
    reserved: frozenset[str] = _RESERVED
    stack_limit_bytes = 64 * 1024
    preamble = ""

    def __init__(self, func: PrimFunc, line_bytes: int = 64) -> None:
        self.func = func
        self.line_bytes = line_bytes  # the cache line a prefetch hint asks for
        self.names: dict[int, str] = {}
        self.taken: set[str] = set(self.reserved) | {func.name, f"{func.name}_packed"}
        self.lines: list[str] = []
        self.indent = 1

    # ---- names and types ----------------------------------------------------

    def name(self, obj: Var | Buffer) -> str:
        key = id(obj)
        if key not in self.names:
            self.names[key] = self.fresh(obj.name)
        return self.names[key]

    def fresh(self, name: str) -> str:
        """A legal identifier from ``name`` that no other name of this function takes."""
        base = re.sub(r"\W", "_", name) or "v"
        if base[0].isdigit():
            base = "_" + base
        if base.startswith("tw_"):  # the helpers' prefix
            base = "_" + base
        cand, i = base, 1
        while cand in self.taken:
            cand, i = f"{base}_{i}", i + 1
        self.taken.add(cand)
        return cand

    def ctype(self, dt: DType) -> str:
        return self.types[dt.name]

    # ---- expressions --------------------------------------------------------

    def expr(self, e: Expr) -> str:
        if isinstance(e, Const):
            return self.const(e)
        if isinstance(e, Var):
            return self.name(e)
        if isinstance(e, Binary):
            return self.binary(e)
        if isinstance(e, Load):
            return f"{self.name(e.buffer)}[{self.expr(e.index)}]"
        if isinstance(e, Address):
            return f"({self.name(e.buffer)} + {self.expr(e.index)})"
        if isinstance(e, Select):
            return f"({self.expr(e.cond)} ? {self.expr(e.true_value)} : {self.expr(e.false_value)})"
        if isinstance(e, Cast):
            return f"(({self.ctype(e.dtype)})({self.expr(e.value)}))"
        if isinstance(e, Not):
            return f"(!{self.expr(e.a)})"
        if isinstance(e, Call):
            return self.call(e)
        raise CodegenError(f"cannot generate code for expression {type(e).__name__}: {e}")

    def const(self, e: Const) -> str:
        dt = e.dtype
        if dt.is_bool:
            return "1" if e.value else "0"
        if dt.is_float:
            v = float(e.value)
            if math.isinf(v):
                return "INFINITY" if v > 0 else "(-INFINITY)"
            if math.isnan(v):
                return "NAN"
            text = repr(v)
            return (
                f"{text}f"
                if dt.bits == 32
                else text
                if dt.bits == 64
                else f"(({self.ctype(dt)}){text}f)"
            )
        if dt.bits == 64:
            return self.int64_literal(int(e.value))
        return str(int(e.value)) if e.value >= 0 else f"({int(e.value)})"

    def int64_literal(self, value: int) -> str:
        return f"INT64_C({value})"

    def binary(self, e: Binary) -> str:
        a, b = self.expr(e.a), self.expr(e.b)
        op = e.op
        if op in _INFIX:
            return f"({a} {_INFIX[op]} {b})"
        suffix = e.dtype.name
        if op in (BinaryOp.MIN, BinaryOp.MAX):
            return f"tw_{op.value}_{suffix}({a}, {b})"
        if op is BinaryOp.FLOORDIV:
            return f"tw_floordiv_{suffix}({a}, {b})"
        if op is BinaryOp.FLOORMOD:
            return f"tw_floormod_{suffix}({a}, {b})"
        raise CodegenError(f"no spelling for {op}")

    def call(self, e: Call) -> str:
        args = [self.expr(a) for a in e.args]
        dt = e.dtype
        if e.func is MathFunc.SIGMOID:
            one = self.const(Const(1.0, dt))
            # a float16 sigmoid calls the double exp, as C promotes it
            ex = self.math_name(MathFunc.EXP, dt if dt.bits == 32 else float64)
            return f"({one} / ({one} + {ex}(-({args[0]}))))"
        if e.func is MathFunc.ABS and not dt.is_float:
            return f"(({args[0]}) < 0 ? -({args[0]}) : ({args[0]}))"
        return f"{self.math_name(e.func, dt)}({', '.join(args)})"

    def math_name(self, func: MathFunc, dt: DType) -> str:
        """C's name of a math function: ``expf`` for float32, ``exp`` for float64."""
        fn = _MATH32[func]
        return fn[:-1] if dt.bits == 64 else fn

    # ---- statements ---------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.indent + line)

    def stmt(self, s: Stmt) -> None:
        if isinstance(s, For):
            self.loop(s)
        elif isinstance(s, Store):
            self.emit(f"{self.name(s.buffer)}[{self.expr(s.index)}] = {self.expr(s.value)};")
        elif isinstance(s, Seq):
            for c in s.stmts:
                self.stmt(c)
        elif isinstance(s, IfThenElse):
            self.emit(f"if ({self.expr(s.cond)}) {{")
            self.block(s.then_case)
            if s.else_case is not None:
                self.emit("} else {")
                self.block(s.else_case)
            self.emit("}")
        elif isinstance(s, Allocate):
            self.allocate(s)
        elif isinstance(s, LetStmt):
            # A name of its own at each definition: lowering may place one LetStmt twice
            # in a scope (loop partition's bounds, in a loop that is peeled).
            self.names[id(s.var)] = self.fresh(s.var.name)
            self.emit(f"const {self.ctype(s.var.dtype)} {self.name(s.var)} = {self.expr(s.value)};")
            self.stmt(s.body)
        elif isinstance(s, ExternCall):
            self.emit(f"{s.func}({', '.join(self.expr(a) for a in s.args)});")
        elif isinstance(s, Prefetch):
            self.prefetch(s)
        elif isinstance(s, Barrier):
            self.barrier()
        else:
            raise CodegenError(f"cannot generate code for statement {type(s).__name__}")

    def block(self, s: Stmt) -> None:
        self.indent += 1
        self.stmt(s)
        self.indent -= 1

    def loop(self, s: For) -> None:
        for key, value in s.pragmas:
            self.emit(f"#pragma {key} {value}".rstrip())
        self.loop_pragma(s)
        v = self.name(s.var)
        it = self.index_type
        self.emit(f"for ({it} {v} = 0; {v} < {self.expr(s.extent)}; ++{v}) {{")
        self.block(s.body)
        self.emit("}")

    def loop_pragma(self, s: For) -> None:
        raise NotImplementedError

    def allocate(self, s: Allocate) -> None:
        raise NotImplementedError

    def barrier(self) -> None:
        raise CodegenError("barrier() needs a GPU target")

    def prefetch(self, s: Prefetch) -> None:
        """One :meth:`prefetch_hint` per cache line of the run, as offsets from its
        start a line apart, the last at its end; a loop where there are many."""
        per_line = max(1, self.line_bytes // s.buffer.dtype.bytes)
        start = f"{self.name(s.buffer)} + {self.expr(s.index)}"
        offsets = [*range(0, s.extent - 1, per_line), s.extent - 1]
        if len(offsets) <= 8:
            for off in offsets:
                self.prefetch_hint(f"{start} + {off}" if off else start, s.level)
            return
        v = self.fresh("line")
        it = self.index_type
        self.emit(f"for ({it} {v} = 0; {v} < {s.extent - 1}; {v} += {per_line}) {{")
        self.indent += 1
        self.prefetch_hint(f"{start} + {v}", s.level)
        self.indent -= 1
        self.emit("}")
        self.prefetch_hint(f"{start} + {s.extent - 1}", s.level)

    def prefetch_hint(self, address: str, level: int) -> None:
        raise NotImplementedError

    # ---- the function -------------------------------------------------------

    def helpers(self) -> str:
        out = []
        for suffix in ("float16", "float32", "float64", "int32", "int64", "int8"):
            dt = self.types[suffix]
            q = self.helper_qualifier
            out.append(f"{q} {dt} tw_min_{suffix}({dt} a, {dt} b) {{ return a < b ? a : b; }}")
            out.append(f"{q} {dt} tw_max_{suffix}({dt} a, {dt} b) {{ return a > b ? a : b; }}")
            if suffix.startswith("int"):
                out.append(
                    f"{q} {dt} tw_floordiv_{suffix}({dt} a, {dt} b) "
                    "{ return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }"
                )
                out.append(
                    f"{q} {dt} tw_floormod_{suffix}({dt} a, {dt} b) "
                    "{ return a % b + (((a % b != 0) && ((a < 0) != (b < 0))) ? b : 0); }"
                )
        return "\n".join(out)

    helper_qualifier = "static inline"

    def signature(self) -> str:
        params = ", ".join(
            f"{self.buffer_prefix}{self.ctype(b.dtype)}* {self.restrict} {self.name(b)}"
            for b in self.func.params
        )
        return f"{self.kernel_prefix}void {self.func.name}({params})"

    def body(self) -> str:
        for b in self.func.params:
            self.name(b)
        self.lines = []
        self.indent = 1
        self.stmt(self.func.body)
        return "\n".join(self.lines)

    def render(self) -> str:
        body = self.body()
        used = [h for h in self.helpers().splitlines() if h.split("(")[0].split()[-1] in body]
        parts = [self.preamble, "\n".join(used), *self.func.extern_sources, self.file_scope()]
        parts.append(f"{self.signature()} {{\n{body}\n}}")
        parts.append(self.entry())
        return "\n\n".join(p for p in parts if p) + "\n"

    def file_scope(self) -> str:
        """Declarations the body asked for outside the function (after rendering it)."""
        return ""

    def entry(self) -> str:
        return ""
