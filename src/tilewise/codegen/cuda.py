"""Loop IR -> CUDA C. Loops bound to ``blockIdx``/``threadIdx`` become index reads;
the launch grid comes from their extents. A shared-memory buffer is filled by
the block, then the block synchronises before and after using it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CodegenError
from ..ir import Allocate, For, ForKind, Prefetch, PrimFunc, Scope, Seq, collect
from ..target import Target
from .renderer import Renderer


@dataclass(frozen=True)
class LaunchConfig:
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


class CUDARenderer(Renderer):
    types = dict(Renderer.types, float16="half", bool="bool")
    kernel_prefix = 'extern "C" __global__ '
    restrict = "__restrict__"
    helper_qualifier = "static __device__ __forceinline__"
    preamble = "#include <cuda_fp16.h>\n#include <stdint.h>"

    def __init__(self, func: PrimFunc, target: Target) -> None:
        super().__init__(func, target.line_bytes)
        self.target = target

    def loop(self, s: For) -> None:
        if s.kind is ForKind.THREAD_BINDING:
            v = self.name(s.var)
            self.emit(f"const int32_t {v} = (int32_t){s.thread_tag};")
            self.emit(f"if ({v} < {self.expr(s.extent)}) {{")
            self.block(s.body)
            self.emit("}")
            return
        super().loop(s)

    def loop_pragma(self, s: For) -> None:
        if s.kind is ForKind.PARALLEL:
            raise CodegenError(
                f"loop {s.var.name} is 'parallel'; on cuda bind it to blockIdx/threadIdx instead"
            )
        if s.kind is ForKind.UNROLLED:
            self.emit("#pragma unroll")

    def allocate(self, s: Allocate) -> None:
        b = s.buffer
        t, n = self.ctype(b.dtype), self.name(b)
        qual = "__shared__ " if b.scope is Scope.SHARED else ""
        self.emit("{")
        self.indent += 1
        self.emit(f"{qual}{t} {n}[{b.size}];")
        body = s.body
        if b.scope is Scope.SHARED and isinstance(body, Seq) and len(body.stmts) > 1:
            self.stmt(body.stmts[0])
            self.emit("__syncthreads();")
            for c in body.stmts[1:]:
                self.stmt(c)
            self.emit("__syncthreads();")
        else:
            self.stmt(body)
        self.indent -= 1
        self.emit("}")

    def barrier(self) -> None:
        self.emit("__syncthreads();")

    def prefetch(self, s: Prefetch) -> None:
        if s.buffer.scope is Scope.GLOBAL:  # shared and local memory are on the chip
            super().prefetch(s)

    def prefetch_hint(self, address: str, level: int) -> None:
        self.emit(f'asm volatile("prefetch.global.L2 [%0];" :: "l"({address}));')


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


_AXES = {f"{k}.{a}": i for k in ("blockIdx", "threadIdx") for i, a in enumerate("xyz")}


def generate_cuda(func: PrimFunc, target: Target) -> str:
    """CUDA C source of ``func`` as an ``extern "C" __global__`` kernel."""
    return CUDARenderer(func, target).render()
