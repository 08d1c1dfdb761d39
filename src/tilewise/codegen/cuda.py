"""Loop IR -> CUDA C: the CUDA table of :class:`.gpu.GPURenderer`. Loops bound to
``blockIdx``/``threadIdx`` become index reads; the launch grid comes from their
extents (:func:`.gpu.launch_config`)."""

from __future__ import annotations

from ..ir import PrimFunc
from ..target import Target
from .gpu import GPURenderer, LaunchConfig, launch_config
from .renderer import Renderer


class CUDARenderer(GPURenderer):
    types = dict(Renderer.types, float16="half", bool="bool")
    kernel_prefix = 'extern "C" __global__ '
    restrict = "__restrict__"
    helper_qualifier = "static __device__ __forceinline__"
    preamble = "#include <cuda_fp16.h>\n#include <stdint.h>"
    thread_index = {f"{k}.{a}": f"{k}.{a}" for k in ("blockIdx", "threadIdx") for a in "xyz"}
    barrier_stmt = "__syncthreads();"
    shared_prefix = "__shared__ "
    shared_align = "__align__(32) "

    def __init__(self, func: PrimFunc, target: Target) -> None:
        super().__init__(func, target.line_bytes)
        self.target = target

    def prefetch_hint(self, address: str, level: int) -> None:
        self.emit(f'asm volatile("prefetch.global.L2 [%0];" :: "l"({address}));')


def generate_cuda(func: PrimFunc, target: Target) -> str:
    """CUDA C source of ``func`` as an ``extern "C" __global__`` kernel."""
    return CUDARenderer(func, target).render()


__all__ = ["CUDARenderer", "LaunchConfig", "generate_cuda", "launch_config"]
