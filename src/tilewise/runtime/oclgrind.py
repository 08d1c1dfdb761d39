"""Check a rendered OpenCL kernel with Oclgrind, the OpenCL device simulator: data
races (uniform writes included: every thread storing the same value is still a
race), barrier divergence, out-of-bounds accesses and, optionally, reads of
uninitialised values. Oclgrind is Debian's ``oclgrind`` package; it simulates every
work-item, so only small launches are practical (``quick``: the first and the last
work-group, where the edge guards are).

>>> problems = oclgrind_check(artifact)   # doctest: +SKIP
>>> problems                              # doctest: +SKIP
[]
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import BuildError
from .opencl import OpenCLArtifact

_SIM_TYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long",
              "int8": "char"}


def oclgrind_available() -> bool:
    return shutil.which("oclgrind-kernel") is not None


def oclgrind_check(artifact: OpenCLArtifact, quick: bool = True,
                   uninitialized: bool = False, timeout: float = 120) -> list[str]:
    """Run ``artifact`` once under Oclgrind on inputs 0, 1, 2, ...; the problems it
    reports, one string each (empty: none)."""
    if not oclgrind_available():
        raise BuildError("oclgrind-kernel is not on PATH; install Debian's oclgrind")
    lines = ["kernel.cl", artifact.name, " ".join(map(str, artifact.global_size)),
             " ".join(map(str, artifact.local_size))]
    for spec in artifact.arg_specs:
        n = math.prod(spec.shape)
        nbytes = n * _itemsize(spec.dtype)
        lines.append(f"<size={nbytes} {_SIM_TYPES[spec.dtype]} range=0:1:{n - 1}>")
    flags = ["--data-races", "--uniform-writes", "--max-errors", "8"]
    flags += ["--quick"] * quick + ["--uninitialized"] * uninitialized
    with tempfile.TemporaryDirectory(prefix="tw-oclgrind-") as tmp:
        (Path(tmp) / "kernel.cl").write_text(artifact.source)
        (Path(tmp) / "kernel.sim").write_text("\n".join(lines) + "\n")
        proc = subprocess.run(["oclgrind-kernel", *flags, "kernel.sim"], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout)
    report = proc.stderr
    problems = [block.strip() for block in re.split(r"\n(?=\S)", report)
                if block.strip() and not block.startswith("Oclgrind:")]
    if proc.returncode != 0 and not problems:
        problems.append(f"oclgrind-kernel exited {proc.returncode}: {report[-2000:]}")
    return problems


def _itemsize(dtype: str) -> int:
    return {"float64": 8, "int64": 8, "int8": 1}.get(dtype, 4)
