"""Runtime: compile generated C, load it, call it with NumPy arrays, time it natively."""

from .aligned import aligned, empty
from .artifact import ArgSpec, KernelArtifact
from .compiler import compile_executable, compile_shared, harness
from .executable import ExecutableArtifact, ExecutableModule
from .module import Module, TimingResult
from .opencl import OpenCLArtifact, OpenCLModule


def load_module(
    artifact: KernelArtifact | OpenCLArtifact | ExecutableArtifact,
) -> Module | OpenCLModule | ExecutableModule:
    """Load a built kernel for calling and timing: a compiled C library (in this
    process), OpenCL C built for its device, or a program of another architecture (run
    as its own process, under its emulator)."""
    if isinstance(artifact, OpenCLArtifact):
        return OpenCLModule(artifact, artifact.device)
    if isinstance(artifact, ExecutableArtifact):
        return ExecutableModule(artifact)
    return Module(artifact)


__all__ = ["ArgSpec", "ExecutableArtifact", "ExecutableModule", "KernelArtifact", "Module",
           "TimingResult", "aligned", "compile_executable", "compile_shared", "empty",
           "harness", "load_module"]
