"""Runtime: compile generated C, load it, call it with NumPy arrays, time it natively."""

from .aligned import aligned, empty
from .artifact import ArgSpec, KernelArtifact
from .compiler import compile_shared, harness
from .module import Module, TimingResult
from .opencl import OpenCLArtifact, OpenCLModule


def load_module(artifact: KernelArtifact | OpenCLArtifact) -> Module | OpenCLModule:
    """Load a built kernel (in this process) for calling and timing: a compiled C
    library, or OpenCL C built for its device."""
    if isinstance(artifact, OpenCLArtifact):
        return OpenCLModule(artifact, artifact.device)
    return Module(artifact)


__all__ = ["ArgSpec", "KernelArtifact", "Module", "TimingResult", "aligned", "compile_shared",
           "empty", "harness", "load_module"]
