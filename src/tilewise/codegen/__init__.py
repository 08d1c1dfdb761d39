"""Code generation: loop IR to C (CPU) and CUDA C (GPU) source text."""

from .c import generate_c
from .cuda import generate_cuda

__all__ = ["generate_c", "generate_cuda"]
