"""The GPU half of the C-style renderer: loops bound to block and thread indices,
shared (work-group local) buffers, barriers, and the launch grid. CUDA and OpenCL C
are two tables over it (:mod:`.cuda`, :mod:`.opencl`), as in tinygrad's renderers.

A shared buffer is declared at the top of the kernel (OpenCL allows ``__local``
arrays nowhere else) and filled by the block's threads together: the block waits at
a barrier after the statements that fill it and again after those that read it, so
that the next fill (the next tile of a reduction) overwrites nothing still being read.
A thread's own buffers (a register tile) may be allocated among the shared ones. A
micro-kernel call (tensorize) that gets a shared buffer's address fills it as a store
does; the buffer is then aligned for its wide loads.

A loop bound to an index reads it; only where the loop covers fewer blocks or threads
than the launch has along that index does a test skip the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CodegenError
from ..ir import (
    Address,
    Allocate,
    Buffer,
    ExternCall,
    For,
    ForKind,
    LetStmt,
    Prefetch,
    PrimFunc,
    Scope,
    Seq,
    Stmt,
    Store,
    collect,
)
from .renderer import Renderer


@dataclass(frozen=True)
class LaunchConfig:
    """Blocks in the grid and threads in a block, (x, y, z): CUDA's ``<<<grid,
    block>>>``; OpenCL's global size is their product, its local size ``block``."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]

    @property
    def global_size(self) -> tuple[int, int, int]:
        return (self.grid[0] * self.block[0], self.grid[1] * self.block[1],
                self.grid[2] * self.block[2])


_AXES = {f"{k}.{a}": i for k in ("blockIdx", "threadIdx") for i, a in enumerate("xyz")}


class GPURenderer(Renderer):
    """Renders a kernel of one GPU language; subclasses are tables."""

    #: How the language reads each index a loop can be bound to.
    thread_index: dict[str, str] = {}
    #: The statement every thread of a block waits at.
    barrier_stmt = ""
    #: Declares a buffer in the block's shared memory.
    shared_prefix = ""
    #: Asks the compiler to unroll the next loop.
    unroll_pragma = "#pragma unroll"
    #: Aligns a shared buffer whose address a micro-kernel gets (it may load whole
    #: fragments or vectors from it: CUDA's wmma wants 32 bytes).
    shared_align = ""

    def __init__(self, func: PrimFunc, line_bytes: int = 128) -> None:
        super().__init__(func, line_bytes)
        self.shared_decls: list[str] = []
        self.launch = launch_config(func)

    def launch_extent(self, tag: str) -> int:
        """How many blocks or threads the launch has along the index ``tag``."""
        kind, axis = tag.split(".")
        launch = self.launch.grid if kind == "blockIdx" else self.launch.block
        return launch["xyz".index(axis)]

    # ---- loops --------------------------------------------------------------

    def loop(self, s: For) -> None:
        if s.kind is ForKind.THREAD_BINDING:
            if s.thread_tag not in self.thread_index:
                raise CodegenError(f"loop {s.var.name} is bound to {s.thread_tag}; bind it "
                                   f"to one of {', '.join(self.thread_index)}")
            v, it = self.name(s.var), self.index_type
            self.emit(f"const {it} {v} = ({it}){self.thread_index[s.thread_tag]};")
            if getattr(s.extent, "value", None) == self.launch_extent(s.thread_tag):
                # Every thread is in range: no branch, so the barriers inside stay
                # where every thread visibly reaches them (PoCL's compiler corrupts
                # memory on barriers under branches it cannot prove uniform).
                self.stmt(s.body)
                return
            self.emit(f"if ({v} < {self.expr(s.extent)}) {{")
            self.block(s.body)
            self.emit("}")
            return
        super().loop(s)

    def loop_pragma(self, s: For) -> None:
        if s.kind is ForKind.PARALLEL:
            raise CodegenError(
                f"loop {s.var.name} is 'parallel'; on a GPU bind it to blockIdx/threadIdx "
                "instead"
            )
        if s.kind is ForKind.UNROLLED:
            self.emit(self.unroll_pragma)

    # ---- buffers and barriers ----------------------------------------------

    def allocate(self, s: Allocate) -> None:
        chain, private, body = _shared_chain(s)
        if not chain:
            private, body = [s.buffer], s.body
        handed = {id(b) for b in _handed_to_calls(body)}
        for b in chain:
            align = self.shared_align if id(b) in handed else ""
            self.shared_decls.append(f"{self.shared_prefix}{align}{self.ctype(b.dtype)} "
                                     f"{self.name(b)}[{b.size}];")
        for b in private:
            self.emit("{")
            self.indent += 1
            self.emit(f"{self.ctype(b.dtype)} {self.name(b)}[{b.size}];")
        if chain:
            self.fill_then_read(body, {id(b) for b in chain})
        else:
            self.stmt(body)
        for _ in private:
            self.indent -= 1
            self.emit("}")

    def fill_then_read(self, body: Stmt, shared: set[int]) -> None:
        """``body``'s statements that fill the buffers ``shared``, a barrier, the rest,
        a barrier. Lets around them (a tile's bounds) stay around them."""
        while isinstance(body, LetStmt):
            self.names[id(body.var)] = self.fresh(body.var.name)
            self.emit(f"const {self.ctype(body.var.dtype)} {self.name(body.var)} = "
                      f"{self.expr(body.value)};")
            body = body.body
        stmts = list(body.stmts) if isinstance(body, Seq) else [body]
        fills = [i for i, c in enumerate(stmts)
                 if any(id(st.buffer) in shared for st in collect(c, Store))
                 or any(id(b) in shared for b in _handed_to_calls(c))]
        cut = fills[-1] + 1 if fills else 0
        for c in stmts[:cut]:
            self.stmt(c)
        if cut:
            self.barrier()
        for c in stmts[cut:]:
            self.stmt(c)
        self.barrier()

    def barrier(self) -> None:
        self.emit(self.barrier_stmt)

    def prefetch(self, s: Prefetch) -> None:
        if s.buffer.scope is Scope.GLOBAL:  # shared and local memory are on the chip
            super().prefetch(s)

    def body(self) -> str:
        text = super().body()
        return "\n".join([*(f"  {d}" for d in self.shared_decls), text])


def _handed_to_calls(s: Stmt) -> list[Buffer]:
    """The buffers whose addresses ``s`` hands to micro-kernel calls (which may write
    them)."""
    return [a.buffer for call in collect(s, ExternCall) for arg in call.args
            for a in collect(arg, Address)]


def _shared_chain(s: Allocate) -> tuple[list[Buffer], list[Buffer], Stmt]:
    """The shared buffers allocated one inside the other from ``s``, the thread's own
    buffers allocated among them, and the body inside the last: a stage's producers
    attached at one loop (lower's nest), a register tile among them."""
    chain: list[Buffer] = []
    private: list[Buffer] = []
    body: Stmt = s
    while isinstance(body, Allocate):
        (chain if body.buffer.scope is Scope.SHARED else private).append(body.buffer)
        body = body.body
    if not chain:
        return [], [], s
    return chain, private, body


def launch_config(func: PrimFunc) -> LaunchConfig:
    """Grid and block sizes from the extents of thread-bound loops."""
    dims = {"blockIdx": [1, 1, 1], "threadIdx": [1, 1, 1]}
    for loop in collect(func.body, For):
        if loop.kind is ForKind.THREAD_BINDING and loop.thread_tag in _AXES:
            kind = loop.thread_tag.split(".")[0]
            slot = _AXES[loop.thread_tag]
            ext = int(loop.extent.value)  # type: ignore[attr-defined]
            dims[kind][slot] = max(dims[kind][slot], ext)
    return LaunchConfig(tuple(dims["blockIdx"]), tuple(dims["threadIdx"]))  # type: ignore[arg-type]
