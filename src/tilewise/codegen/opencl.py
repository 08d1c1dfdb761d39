"""Loop IR -> OpenCL C: the OpenCL table of :class:`.gpu.GPURenderer`. A block is a
work-group, a thread a work-item; ``blockIdx.x`` reads ``get_group_id(0)``."""

from __future__ import annotations

from ..ir import DType, MathFunc, PrimFunc
from .gpu import GPURenderer
from .renderer import _MATH32, _RESERVED

_INDEX = {"blockIdx": "get_group_id", "threadIdx": "get_local_id"}


class OpenCLRenderer(GPURenderer):
    types = {"float16": "half", "float32": "float", "float64": "double", "int8": "char",
             "int32": "int", "int64": "long", "bool": "bool"}
    kernel_prefix = "__kernel "
    buffer_prefix = "__global "
    restrict = "restrict"
    index_type = "int"
    helper_qualifier = "static inline"
    thread_index = {f"{k}.{a}": f"{fn}({i})" for k, fn in _INDEX.items()
                    for i, a in enumerate("xyz")}
    barrier_stmt = "barrier(CLK_LOCAL_MEM_FENCE);"
    shared_prefix = "__local "
    reserved = _RESERVED | frozenset(
        """kernel global local private constant __kernel __global __local __private
        __constant char uchar ushort uint ulong half float2 float4 float8 float16
        get_group_id get_local_id get_global_id barrier CLK_LOCAL_MEM_FENCE prefetch
        read_only write_only image2d_t sampler_t""".split())

    def math_name(self, func: MathFunc, dt: DType) -> str:
        return _MATH32[func][:-1]  # OpenCL C's math functions are overloaded on the type

    def int64_literal(self, value: int) -> str:
        return f"{value}L"

    def prefetch_hint(self, address: str, level: int) -> None:
        self.emit(f"prefetch({address}, 1);")

    def render(self) -> str:
        text = super().render()
        if "half" in text:
            return "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n" + text
        return text


def generate_opencl(func: PrimFunc) -> str:
    """OpenCL C source of ``func`` as a ``__kernel``, launched as
    :func:`.gpu.launch_config` says (global size grid x block, local size block)."""
    return OpenCLRenderer(func).render()
