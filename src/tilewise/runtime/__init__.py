"""Runtime: compile generated C, load it, call it with NumPy arrays, time it natively."""

from .aligned import aligned, empty
from .artifact import ArgSpec, KernelArtifact
from .compiler import compile_shared, harness
from .cuda import CudaArtifact, CudaModule
from .module import Module, TimingResult
from .opencl import OpenCLArtifact, OpenCLModule


def load_module(artifact: KernelArtifact | OpenCLArtifact | CudaArtifact
                ) -> Module | OpenCLModule | CudaModule:
    """Load a built kernel (in this process) for calling and timing: a compiled C
    library, OpenCL C built for its device, or CUDA C on the GPU (through CuPy)."""
    if isinstance(artifact, OpenCLArtifact):
        return OpenCLModule(artifact, artifact.device)
    if isinstance(artifact, CudaArtifact):
        return CudaModule(artifact)
    return Module(artifact)


__all__ = ["ArgSpec", "KernelArtifact", "Module", "TimingResult", "aligned", "compile_shared",
           "empty", "harness", "load_module"]
