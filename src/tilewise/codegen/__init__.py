"""Code generation: loop IR to C (CPU), CUDA C and OpenCL C (GPU) source text."""

from .c import generate_c
from .cuda import generate_cuda
from .gpu import LaunchConfig, launch_config
from .opencl import generate_opencl

__all__ = ["LaunchConfig", "generate_c", "generate_cuda", "generate_opencl", "launch_config"]
