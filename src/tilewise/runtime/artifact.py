"""What a build produces: picklable, so a builder process can hand it to a runner."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArgSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class KernelArtifact:
    """Generated source and the compiled library that holds it."""

    name: str
    source: str
    so_path: str
    arg_specs: tuple[ArgSpec, ...]
    target: str
    compile_s: float = 0.0
