"""Loop IR -> C99 with OpenMP: ``parallel`` loops become ``omp parallel for``,
``vectorized`` loops ``omp simd`` (gcc turns these into full-width FMAs; see
benchmarks/gemm.py), ``unrolled`` loops ``GCC unroll``."""

from __future__ import annotations

import re

from ..errors import CodegenError
from ..ir import Allocate, ExternCall, For, ForKind, PrimFunc, Stmt, collect
from ..target import Target
from .renderer import Renderer


class CRenderer(Renderer):
    preamble = (
        "#include <stdint.h>\n#include <stdbool.h>\n#include <stdlib.h>\n#include <math.h>"
    )

    def __init__(self, func: PrimFunc, target: Target) -> None:
        super().__init__(func, target.line_bytes)
        self.target = target
        self.parallel_depth = 0
        self.nowait = False  # the next parallel loop is a share of an open region
        self.kernel_fences: dict[str, None] = {}  # of calls outside any parallel loop
        self.loop_depth = 0
        self.kept: list[tuple[str, str]] = []  # (pointer, flag) of each kept buffer

    def loop(self, s: For) -> None:
        if s.pragmas and s.kind in (ForKind.PARALLEL, ForKind.VECTORIZED):
            given = ", ".join(f"{k} {v}".strip() for k, v in s.pragmas)
            raise CodegenError(
                f"loop {s.var.name} is {s.kind.value} and carries the pragma(s) {given}: "
                "gcc wants a loop pragma directly before the for, where the loop's OpenMP "
                "pragma must be; put it on a serial or unrolled loop")
        self.loop_depth += 1
        try:
            self._loop(s)
        finally:
            self.loop_depth -= 1

    def _loop(self, s: For) -> None:
        if s.kind is not ForKind.PARALLEL:
            super().loop(s)
            return
        fences = _fences(s.body)
        if fences:
            # Each thread fences its own weakly ordered stores once, after its share of
            # the loop and before the region's closing barrier.
            self.emit(f"#pragma omp parallel num_threads({self.target.cores})")
            self.emit("{")
            self.indent += 1
        self.nowait = bool(fences)
        self.parallel_depth += 1
        super().loop(s)
        self.parallel_depth -= 1
        if fences:
            for fence in fences:
                self.emit(f"{fence}();")
            self.indent -= 1
            self.emit("}")

    def stmt(self, s: Stmt) -> None:
        if isinstance(s, ExternCall) and s.fence and not self.parallel_depth:
            self.kernel_fences[s.fence] = None
        super().stmt(s)

    def prefetch_hint(self, address: str, level: int) -> None:
        # For a read; locality 3 (prefetcht0) into every level of the cache, the line
        # is read soon; 2 (prefetcht1) into the second level and below, for lines read
        # later, which would only evict what the first level holds for now.
        self.emit(f"__builtin_prefetch({address}, 0, {3 if level <= 1 else 2});")

    def body(self) -> str:
        text = super().body()
        return "\n".join([text, *(f"  {f}();" for f in self.kernel_fences)])

    def loop_pragma(self, s: For) -> None:
        if s.kind is ForKind.PARALLEL and self.nowait:
            self.nowait = False
            self.emit("#pragma omp for schedule(static) nowait")
        elif s.kind is ForKind.PARALLEL:
            self.emit(f"#pragma omp parallel for num_threads({self.target.cores}) schedule(static)")
        elif s.kind is ForKind.VECTORIZED:
            self.emit("#pragma omp simd")
        elif s.kind is ForKind.UNROLLED:
            self.emit(f"#pragma GCC unroll {min(int(s.extent.value), 256)}")  # type: ignore[attr-defined]
        elif s.kind is ForKind.THREAD_BINDING:
            raise CodegenError(
                f"loop {s.var.name} is bound to {s.thread_tag}; GPU thread binding needs a "
                "cuda or opencl target"
            )

    def allocate(self, s: Allocate) -> None:
        b = s.buffer
        t, n = self.ctype(b.dtype), self.name(b)
        nbytes = b.size * b.dtype.bytes
        self.emit("{")
        self.indent += 1
        if nbytes <= self.stack_limit_bytes:
            # The kernel reaches a stack array only through a pointer: gcc's vectorizer
            # drops the points-to facts of a stack array indexed by an outer loop's
            # variable, so it could not tell such loads from the register tile's
            # stores and left a store to the stack after every FMA (depthwise 32 -> 45
            # GFLOP/s); a pointer's points-to set is kept.
            stack = self.fresh(f"{b.name}_stack")
            self.emit(f"{t} {stack}[{b.size}] __attribute__((aligned(64)));")
            self.emit(f"{t}* {self.restrict} {n} = {stack};")
            self.stmt(s.body)
        elif self.loop_depth:
            padded = -(-nbytes // 64) * 64
            self.emit(f"{t}* {self.restrict} {n} = ({t}*)aligned_alloc(64, {padded});")
            self.stmt(s.body)
            self.emit(f"free({n});")
        else:
            self.kept_buffer(s, t, n, -(-nbytes // 64) * 64)
        self.indent -= 1
        self.emit("}")

    def kept_buffer(self, s: Allocate, t: str, n: str, nbytes: int) -> None:
        """A buffer of the whole call, allocated on the first call and kept for the next
        (a call that finds it in use, from another thread, allocates its own). Freed and
        allocated each call, buffers of megabytes went back to the system each time and
        each call faulted their pages in anew (resnet-c2-3x3 by Winograd, 8.5 MB of
        transformed tiles a call, one core: 48 GFLOP/s, a third of the time in the
        system's page-fault path; kept, 195)."""
        keep, busy, own = (self.fresh(f"tw_keep_{n}"), self.fresh(f"tw_busy_{n}"),
                           self.fresh(f"{n}_own"))
        self.kept.append((keep, busy))
        self.emit(f"const bool {own} = !__atomic_test_and_set(&{busy}, __ATOMIC_ACQUIRE);")
        self.emit(f"if ({own} && !{keep}) {keep} = aligned_alloc(64, {nbytes});")
        self.emit(f"{t}* {self.restrict} {n} = ({t}*)({own} ? {keep} : "
                  f"aligned_alloc(64, {nbytes}));")
        self.stmt(s.body)
        self.emit(f"if ({own}) __atomic_clear(&{busy}, __ATOMIC_RELEASE); else free({n});")

    def file_scope(self) -> str:
        return "\n".join(p for p in (self._simd_math(), self._kept_scope()) if p)

    def _simd_math(self) -> str:
        """SIMD declarations of the C library's math functions the kernel calls, where
        the library has vector variants: a loop of ``expf`` or ``erff`` under ``omp simd``
        then calls libmvec's 16-lane version (softmax 12x128x128 on one core: 2.1 ms
        with scalar calls, BERT's dense + GELU 8.8 ms against 5.5 ms for the product)."""
        if not self.target.vector_math:
            return ""
        body = "\n".join(self.lines)
        decls = []
        for fn, args in _VECTOR_MATH:
            if re.search(rf"\b{fn}\(", body):
                decls.append(f'__attribute__((__simd__("notinbranch"))) {args[0]} {fn}'
                             f'({", ".join(args[1:])});')
        return "\n".join(decls)

    def _kept_scope(self) -> str:
        if not self.kept:
            return ""
        lines = [f"static void* {keep};\nstatic bool {busy};" for keep, busy in self.kept]
        frees = " ".join(f"free({keep});" for keep, _ in self.kept)
        # Released when the library is unloaded.
        return "\n".join([*lines, "__attribute__((destructor)) static void "
                          f"tw_release_kept(void) {{ {frees} }}"])

    def entry(self) -> str:
        """``<name>_packed(void** args)``: one signature the runtime can call and time."""
        casts = ", ".join(
            f"({self.ctype(b.dtype)}*)args[{i}]" for i, b in enumerate(self.func.params)
        )
        return f"void {self.func.name}_packed(void** args) {{\n  {self.func.name}({casts});\n}}"


# (name, (return type, parameter types)) of the functions glibc's libmvec vectorises.
_VECTOR_MATH = [
    (f"{fn}{suffix}", (t,) * (3 if fn == "pow" else 2))
    for fn in ("exp", "log", "erf", "tanh", "pow")
    for suffix, t in (("f", "float"), ("", "double"))
]


def _fences(s: Stmt) -> list[str]:
    return list(dict.fromkeys(c.fence for c in collect(s, ExternCall) if c.fence))


def generate_c(func: PrimFunc, target: Target) -> str:
    """C source of ``func``: the kernel and a packed entry ``<name>_packed``."""
    return CRenderer(func, target).render()
