"""The build driver: schedule -> loop IR -> source -> compiled, loaded kernel."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .codegen import generate_c, generate_cuda, generate_opencl, launch_config
from .errors import BuildError
from .ir import PrimFunc
from .lower import lower
from .runtime import (
    ArgSpec,
    ExecutableArtifact,
    ExecutableModule,
    KernelArtifact,
    Module,
    compile_executable,
    compile_shared,
    harness,
    load_module,
)
from .runtime.cuda import CudaArtifact, CudaModule, check_compiles
from .runtime.executable import program_main, require_programs
from .runtime.opencl import OpenCLArtifact, OpenCLModule
from .schedule import Schedule
from .target import Target, TargetKind
from .te.tensor import Tensor


def opencl_device(target: str | Target) -> int | None:
    """The device number an ``"opencl"`` or ``"opencl -device=N"`` target names, None
    for any other target."""
    tgt = Target.from_str(target)
    return tgt.device if tgt.kind is TargetKind.OPENCL else None


def generate_source(func: PrimFunc, target: str | Target) -> str:
    """Source text of a lowered function for ``target``."""
    if opencl_device(target) is not None:
        return generate_opencl(func)
    tgt = Target.from_str(target)
    return generate_cuda(func, tgt) if tgt.kind is TargetKind.CUDA else generate_c(func, tgt)


def build_artifact(
    sch: Schedule,
    args: Sequence[Tensor],
    target: str | Target = "c",
    name: str = "default_function",
    timeout: float | None = None,
    given: Collection[Tensor] = (),
) -> KernelArtifact | ExecutableArtifact:
    """Lower, generate and compile; the result is picklable (for builder processes).
    ``given``: stages of ``args`` the caller computes (:func:`~tilewise.lower.lower`)."""
    tgt = Target.from_str(target)
    if tgt.kind is not TargetKind.C:
        raise BuildError(
            "build_artifact compiles for the 'c' target; for cuda use build_cuda_artifact"
        )
    func = lower(sch, args, name, given=given)
    specs = tuple(ArgSpec(b.name, b.shape, b.dtype.name) for b in func.params)
    return compile_c(name, generate_c(func, tgt), specs, tgt, timeout)


def compile_c(
    name: str,
    source: str,
    specs: tuple[ArgSpec, ...],
    target: Target,
    timeout: float | None = None,
    flags: tuple[str, ...] | None = None,
) -> KernelArtifact | ExecutableArtifact:
    """Compile generated C with the timing harness (and ``flags``, default the target's):
    a library loaded here for the host, or for another architecture (``-mtriple``) a
    program that runs under the target's emulator."""
    flags = target.cflags if flags is None else flags
    if target.triple:
        require_programs(target.compiler, target.emulator)
        program = source + harness(name) + program_main(name, specs)
        exe, compile_s = compile_executable(program, flags, target.compiler, timeout)
        return ExecutableArtifact(name, source, str(exe), specs, str(target), target.emulator,
                                  compile_s)
    # compile_s is the compiler's time: 0 on a cache hit, so compile-time reports
    # are not polluted by hits
    so, compile_s = compile_shared(source + harness(name), flags, timeout)
    return KernelArtifact(name, source, str(so), specs, str(target), compile_s)


def build_cuda_artifact(
    sch: Schedule, args: Sequence[Tensor], target: str | Target, name: str = "default_function"
) -> CudaArtifact:
    """Lower and generate CUDA C, checked by nvcc; runnable where a GPU and CuPy are."""
    tgt = Target.from_str(target)
    func = lower(sch, args, name)
    source = generate_cuda(func, tgt)
    check_compiles(source, tgt.arch)
    launch = launch_config(func)
    specs = tuple(ArgSpec(b.name, b.shape, b.dtype.name) for b in func.params)
    return CudaArtifact(name, source, launch.grid, launch.block, specs, tgt.arch)


def build_opencl_artifact(
    sch: Schedule, args: Sequence[Tensor], name: str = "default_function", device: int = 0
) -> OpenCLArtifact:
    """Lower and generate OpenCL C with its launch; compiled where it is loaded (on
    OpenCL device number ``device``)."""
    func = lower(sch, args, name)
    launch = launch_config(func)
    specs = tuple(ArgSpec(b.name, b.shape, b.dtype.name) for b in func.params)
    return OpenCLArtifact(name, generate_opencl(func), launch.global_size, launch.block,
                          specs, device)


def build(
    sch: Schedule,
    args: Sequence[Tensor],
    target: str | Target = "c",
    name: str = "default_function",
    given: Collection[Tensor] = (),
) -> Module | CudaModule | OpenCLModule | ExecutableModule:
    """Compile and load a kernel: ``mod = tw.build(s, [A, B, C]); mod(a, b, c)``;
    ``given``: stages of ``args`` passed in, not computed (:func:`~tilewise.lower.lower`).

    On ``"opencl"`` and ``"cuda -arch=sm_90"`` the module runs on the device; built
    where there is none, it holds the source (checked by nvcc for cuda) and raises
    :class:`~tilewise.runtime.device.NoDeviceError` when called. A target of another
    architecture (``"c -mtriple=aarch64-linux-gnu"``) runs each call as a program of its
    own, under its emulator."""
    device = opencl_device(target)
    if device is not None or Target.from_str(target).kind is TargetKind.CUDA:
        if given:
            raise BuildError("build: given stages are for the 'c' target")
        if device is not None:
            return OpenCLModule(build_opencl_artifact(sch, args, name, device), device)
        return CudaModule(build_cuda_artifact(sch, args, target, name))
    return load_module(build_artifact(sch, args, target, name, given=given))
