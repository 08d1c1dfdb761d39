"""Targets: parse ``"c -mcpu=native -cores=2"`` or ``"cuda -arch=sm_90"`` and describe
the machine (ISA features, vector width, cores, caches, compiler flags)."""

from __future__ import annotations

import enum
import os
import platform
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .errors import TargetError


class TargetKind(enum.Enum):
    C = "c"
    CUDA = "cuda"


@dataclass(frozen=True)
class Target:
    """An immutable target; ``str(target)`` round-trips through :meth:`from_str`."""

    kind: TargetKind
    mcpu: str = "native"
    cores: int = 1
    arch: str = "sm_80"
    features: frozenset[str] = field(default_factory=frozenset)
    vector_bits: int = 128
    l1_bytes: int = 32 * 1024
    l2_bytes: int = 512 * 1024
    line_bytes: int = 64
    #: Full-width vector FMAs a core starts per cycle: 1 where a 512-bit FMA is split
    #: in two 256-bit halves (AMD Zen 4), else 2 (Zen 3 and 5, Intel's server cores).
    fma_per_cycle: int = 2
    #: The C library has SIMD variants of expf, erff, tanhf, logf, powf (glibc's
    #: libmvec on x86-64 from 2.35), so loops calling them vectorise.
    vector_math: bool = False

    @staticmethod
    def from_str(text: str | Target) -> Target:
        if isinstance(text, Target):
            return text
        parts = str(text).split()
        if not parts:
            raise TargetError("empty target string; use 'c' or 'cuda'")
        try:
            kind = TargetKind(parts[0])
        except ValueError:
            raise TargetError(f"unknown target kind {parts[0]!r}; use 'c' or 'cuda'") from None
        opts: dict[str, str] = {}
        for p in parts[1:]:
            if not p.startswith("-") or "=" not in p:
                raise TargetError(f"target option {p!r} must look like -key=value")
            k, v = p[1:].split("=", 1)
            opts[k] = v
        unknown = set(opts) - {"mcpu", "cores", "arch"}
        if unknown:
            raise TargetError(f"unknown target option(s) {sorted(unknown)} for {parts[0]}")
        host = host_info()
        cores = host["cores"]
        if "cores" in opts:
            try:
                cores = int(opts["cores"])
            except ValueError:
                raise TargetError(f"-cores must be an integer, got {opts['cores']!r}") from None
            if cores < 1:
                raise TargetError(f"-cores must be at least 1, got {cores}")
        return Target(
            kind=kind,
            mcpu=opts.get("mcpu", "native"),
            cores=cores,
            arch=opts.get("arch", "sm_80"),
            features=host["features"],
            vector_bits=host["vector_bits"],
            l1_bytes=host["l1"],
            l2_bytes=host["l2"],
            line_bytes=host["line"] if kind is TargetKind.C else 128,  # a GPU's L2 line
            fma_per_cycle=host["fma_per_cycle"],
            vector_math=host["vector_math"],
        )

    def __str__(self) -> str:
        if self.kind is TargetKind.CUDA:
            return f"cuda -arch={self.arch}"
        return f"c -mcpu={self.mcpu} -cores={self.cores}"

    def vector_lanes(self, dtype_bytes: int) -> int:
        """How many elements of this size one SIMD register holds."""
        return max(1, self.vector_bits // (8 * dtype_bytes))

    @property
    def vector_registers(self) -> int:
        """How many SIMD registers the ISA names: 32 with AVX-512 (zmm0-31) and on
        AArch64, 16 with SSE or AVX on x86-64 (the bound on a register tile)."""
        if self.vector_bits == 512 or self.features & {"asimd", "neon"}:
            return 32
        return 16

    @property
    def cflags(self) -> tuple[str, ...]:
        # gcc tunes Intel AVX-512 cores (skylake-avx512 .. sapphirerapids) for 256-bit
        # vectors unless told otherwise; our loops are sized for the full register width.
        wide = ("-mprefer-vector-width=512",) if self.vector_bits == 512 else ()
        return (
            "-O3",
            f"-march={self.mcpu}",
            *wide,
            "-fopenmp",
            # errno is never read: without it gcc vectorises loops that call expf beside
            # a select, and keeps sqrtf an instruction it can hoist
            "-fno-math-errno",
            "-fPIC",
            "-shared",
            "-std=gnu11",
            "-Werror=implicit-function-declaration",
        )

    def describe(self) -> dict[str, object]:
        """A JSON-able description, stored beside every tuning record."""
        return {
            "target": str(self),
            "machine": platform.machine(),
            "cpu": host_info()["model"],
            "vector_bits": self.vector_bits,
            "cores": self.cores,
            "l1_bytes": self.l1_bytes,
            "l2_bytes": self.l2_bytes,
            "fma_per_cycle": self.fma_per_cycle,
        }


def _cache_size(level: int) -> int | None:
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            lvl = int((idx / "level").read_text())
            typ = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        if lvl == level and typ in ("Data", "Unified"):
            mult = 1024 if size.endswith("K") else 1024 * 1024 if size.endswith("M") else 1
            return int(size.rstrip("KM")) * mult
    return None


def _line_size() -> int | None:
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size")
                   .read_text())
    except (OSError, ValueError):
        return None


@cache
def host_info() -> dict:
    """Features of the machine we run on (read once)."""
    cpu: dict[str, str] = {}  # the first core's "key : value" lines
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            cpu.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set((cpu.get("flags") or cpu.get("Features") or "").split())  # x86, Arm
    model = cpu.get("model name") or platform.processor() or platform.machine()
    vendor, family = cpu.get("vendor_id", ""), cpu.get("cpu family", "")
    if "avx512f" in flags:
        bits = 512
    elif "avx2" in flags or "avx" in flags:
        bits = 256
    else:
        bits = 128
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {
        "features": frozenset(
            f for f in flags if f.startswith(("avx", "fma", "sse", "neon", "asimd"))
        ),
        "vector_bits": bits,
        "cores": cores,
        "l1": _cache_size(1) or 32 * 1024,
        "l2": _cache_size(2) or 512 * 1024,
        "line": _line_size() or 64,
        "model": model,
        # AMD family 25 (0x19) is Zen 3 and Zen 4; only Zen 4 has AVX-512, on 256-bit units
        "fma_per_cycle": 1 if (vendor, family, bits) == ("AuthenticAMD", "25", 512) else 2,
        "vector_math": platform.machine() == "x86_64" and _glibc() >= (2, 35),
    }


def _glibc() -> tuple[int, ...]:
    """The C library's glibc version, () where it is not glibc."""
    try:
        name, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")  # type: ignore[union-attr]
        return tuple(int(x) for x in version.split(".")[:2]) if name == "glibc" else ()
    except (ValueError, OSError, AttributeError):
        return ()


def as_target(t: str | Target) -> Target:
    return Target.from_str(t)
