"""Runtime: compile generated C, load it, call it with NumPy arrays, time it natively."""

from .aligned import aligned, empty
from .artifact import ArgSpec, KernelArtifact
from .compiler import compile_shared, harness
from .module import Module, TimingResult


def load_module(artifact: KernelArtifact) -> Module:
    """Load a built kernel (in this process) for calling and timing."""
    return Module(artifact)


__all__ = ["ArgSpec", "KernelArtifact", "Module", "TimingResult", "aligned", "compile_shared",
           "empty", "harness", "load_module"]
