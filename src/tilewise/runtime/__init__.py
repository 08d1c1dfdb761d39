"""Runtime: compile generated C, load it, call it with NumPy arrays, time it natively."""

from .aligned import aligned, empty
from .artifact import ArgSpec, KernelArtifact
from .compiler import compile_executable, compile_shared, harness
from .cuda import CudaArtifact, CudaModule
from .executable import ExecutableArtifact, ExecutableModule
from .module import Module, TimingResult
from .opencl import OpenCLArtifact, OpenCLModule


def load_module(
    artifact: KernelArtifact | OpenCLArtifact | CudaArtifact | ExecutableArtifact,
) -> Module | OpenCLModule | CudaModule | ExecutableModule:
    """Load a built kernel for calling and timing: a compiled C library (in this
    process), OpenCL C built for its device, CUDA C on the GPU (through CuPy), or a
    program of another architecture (run as its own process, under its emulator)."""
    if isinstance(artifact, OpenCLArtifact):
        return OpenCLModule(artifact, artifact.device)
    if isinstance(artifact, CudaArtifact):
        return CudaModule(artifact)
    if isinstance(artifact, ExecutableArtifact):
        return ExecutableModule(artifact)
    return Module(artifact)


__all__ = ["ArgSpec", "CudaArtifact", "CudaModule", "ExecutableArtifact", "ExecutableModule",
           "KernelArtifact", "Module", "TimingResult", "aligned", "compile_executable",
           "compile_shared", "empty", "harness", "load_module"]
