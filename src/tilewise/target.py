"""Targets: parse ``"c -mcpu=native -cores=2"`` or ``"cuda -arch=sm_90"`` and describe
the machine (ISA features, vector width, cores, caches, compiler flags).

A C target's string names everything that changes which schedule is fastest, so that
tuning records keyed by it never mix machines; what a string leaves out is read from
the host, so ``"c"`` is the host's description and a farm device sends its own:

>>> t = Target.from_str("c -cores=2 -isa=avx2 -l1=32K -l2=1M -line=64 -fma-per-cycle=2 "
...                    "-libmvec=1")
>>> str(t).split()  # doctest: +NORMALIZE_WHITESPACE
['c', '-mcpu=native', '-cores=2', '-isa=avx2', '-vector-bits=256', '-l1=32K', '-l2=1M',
 '-line=64', '-fma-per-cycle=2', '-libmvec=1']
>>> Target.from_str(str(t)) == t, t.vector_lanes(4), sorted(t.features)[-3:]
(True, 8, ['sse2', 'sse4_1', 'sse4_2'])

``-mtriple`` names another architecture, compiled for with its cross compiler
(``aarch64-linux-gnu-gcc``); what the string leaves out is then that architecture's,
never the host's. Where the host cannot run its code, ``-emulator`` names the program
that runs it (qemu-user: for correctness only; its times are not the device's speed):

>>> arm = Target.from_str("c -mtriple=aarch64-linux-gnu -emulator=qemu-aarch64")
>>> arm.machine, arm.isa, arm.vector_lanes(4), arm.compiler, arm.emulated
('aarch64', 'neon', 4, 'aarch64-linux-gnu-gcc', True)
"""

from __future__ import annotations

import dataclasses
import enum
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import env
from .errors import TargetError


class TargetKind(enum.Enum):
    C = "c"
    CUDA = "cuda"
    OPENCL = "opencl"


# ISA levels, lowest first: the features each implies beyond the one before, and its
# vector width. A target holds a level's features, not the host's whole flag list, so
# that a level named in a string and one read from /proc/cpuinfo are the same target.
_ISA_LEVELS: dict[str, tuple[frozenset[str], int]] = {
    "generic": (frozenset(), 128),
    "neon": (frozenset({"neon", "asimd"}), 128),
    "sse2": (frozenset({"sse", "sse2"}), 128),
    "sse4": (frozenset({"sse4_1", "sse4_2"}), 128),
    "avx": (frozenset({"avx"}), 256),
    "avx2": (frozenset({"avx2", "fma"}), 256),
    "avx512": (frozenset({"avx512f"}), 512),
}
# The x86 levels build on each other; neon stands alone.
_X86 = ("sse2", "sse4", "avx", "avx2", "avx512")


def isa_features(level: str) -> frozenset[str]:
    """The features an ISA level implies (``"avx2"``: SSE to AVX2 and FMA)."""
    if level not in _ISA_LEVELS:
        raise TargetError(f"unknown ISA level {level!r}; use one of {', '.join(_ISA_LEVELS)}")
    if level not in _X86:
        return _ISA_LEVELS[level][0]
    return frozenset().union(*(_ISA_LEVELS[x][0] for x in _X86[:_X86.index(level) + 1]))


def isa_level(features: frozenset[str] | set[str]) -> str:
    """The highest ISA level all of whose features are in ``features``."""
    best = "neon" if isa_features("neon") & features else "generic"
    for level in _X86:
        if isa_features(level) <= features:
            best = level
    return best


def _size(text: str, option: str) -> int:
    """``"32K"``, ``"2M"`` or plain bytes."""
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:].upper(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise TargetError(f"-{option} must be a size such as 32K or 2M, got {text!r}") from None
    if value < 1:
        raise TargetError(f"-{option} must be positive, got {text!r}")
    return value


def _size_str(n: int) -> str:
    for unit, scale in (("M", 1024 * 1024), ("K", 1024)):
        if n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _count(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TargetError(f"-{option} must be an integer, got {text!r}") from None
    if value < 1:
        raise TargetError(f"-{option} must be at least 1, got {value}")
    return value


def _flag(text: str, option: str) -> bool:
    if text not in ("0", "1"):
        raise TargetError(f"-{option} must be 0 or 1, got {text!r}")
    return text == "1"


_C_OPTIONS = ("mtriple", "emulator", "mcpu", "cores", "isa", "vector-bits", "l1", "l2",
              "line", "fma-per-cycle", "libmvec")


@dataclass(frozen=True)
class CrossArch:
    """An architecture that C targets may name with ``-mtriple``: its machine name (as
    ``uname -m`` says it), its ISA levels (the first is the default), and its
    emulator under qemu-user."""

    machine: str
    levels: tuple[str, ...]
    emulator: str


#: The triples a C target may name, each compiled for by ``<triple>-gcc`` (Debian's
#: ``gcc-<triple>``). NEON (Advanced SIMD) is part of every ARMv8-A core, 128 bits wide.
CROSS_TRIPLES: dict[str, CrossArch] = {
    "aarch64-linux-gnu": CrossArch("aarch64", ("neon",), "qemu-aarch64"),
}
_NO_EMULATOR = "none"
_OPTIONS = {TargetKind.C: _C_OPTIONS, TargetKind.CUDA: ("arch", "cores"),
            TargetKind.OPENCL: ("device", "local-mem", "max-threads")}
_KINDS = "'c', 'cuda' or 'opencl'"


@dataclass(frozen=True)
class Target:
    """An immutable target; ``str(target)`` round-trips through :meth:`from_str`."""

    kind: TargetKind
    #: The triple the code is compiled for ("": this host's own, by ``$CC``).
    triple: str = ""
    #: The program that runs the triple's code on this host ("": run natively).
    emulator: str = ""
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
    #: A GPU's: the OpenCL device's number here, and what a block (work-group) may
    #: have: bytes of shared (local) memory, threads. CUDA's: what an sm_xx GPU allows
    #: without opting in.
    device: int = 0
    local_mem_bytes: int = 48 * 1024
    max_threads: int = 1024

    @staticmethod
    def from_str(text: str | Target) -> Target:
        """Parse a target string; what it does not name is the host's."""
        if isinstance(text, Target):
            return text
        parts = str(text).split()
        if not parts:
            raise TargetError(f"empty target string; use {_KINDS}")
        try:
            kind = TargetKind(parts[0])
        except ValueError:
            raise TargetError(f"unknown target kind {parts[0]!r}; use {_KINDS}") from None
        opts: dict[str, str] = {}
        for p in parts[1:]:
            if not p.startswith("-") or "=" not in p:
                raise TargetError(f"target option {p!r} must look like -key=value")
            k, v = p[1:].split("=", 1)
            opts[k] = v
        unknown = set(opts) - set(_OPTIONS[kind])
        if unknown:
            raise TargetError(f"unknown target option(s) {sorted(unknown)} for {parts[0]}; "
                              f"it takes {', '.join('-' + o for o in _OPTIONS[kind])}")
        if kind is TargetKind.OPENCL:
            return _opencl_target(opts)
        triple = opts.get("mtriple", "")
        if triple and triple not in CROSS_TRIPLES:
            raise TargetError(f"unknown -mtriple={triple}; tilewise compiles for "
                              f"{', '.join(CROSS_TRIPLES)} (and this host, without -mtriple)")
        if "emulator" in opts and not triple:
            raise TargetError("-emulator runs another architecture's code; name it with "
                              "-mtriple")
        # what the string leaves out: the host's, or for another architecture its own
        host = ({"mcpu": "native", "emulator": _NO_EMULATOR, **host_info()} if not triple
                else _cross_defaults(triple))
        level = opts.get("isa", host["isa"])
        features = isa_features(level)
        if triple and level not in CROSS_TRIPLES[triple].levels:
            raise TargetError(f"-isa={level} is not an ISA level of {triple}; it takes "
                              f"{', '.join(CROSS_TRIPLES[triple].levels)}")
        named = "isa" in opts  # a named level sets the width, not the host's
        bits = _ISA_LEVELS[level][1] if named else host["vector_bits"]
        if "vector-bits" in opts:
            bits = _count(opts["vector-bits"], "vector-bits")
            if bits not in (128, 256, 512):
                raise TargetError(f"-vector-bits must be 128, 256 or 512, got {bits}")
            if triple and bits != _ISA_LEVELS[level][1]:
                raise TargetError(f"{level} vectors of {triple} are "
                                  f"{_ISA_LEVELS[level][1]} bits, not {bits}")
        mcpu = opts.get("mcpu", host["mcpu"])
        if triple and mcpu == "native":
            raise TargetError(f"-mcpu=native is this host's CPU; name the {triple} core "
                              "(e.g. -mcpu=cortex-a72) or generic")
        vector_math = (_flag(opts["libmvec"], "libmvec") if "libmvec" in opts
                       else host["vector_math"])
        if triple and vector_math:
            raise TargetError(f"-libmvec=1: the SIMD math declarations are x86-64 glibc's, "
                              f"not {triple}'s")
        emulator = opts.get("emulator", host["emulator"])
        if not emulator:
            raise TargetError(f"-emulator must name a program, or be {_NO_EMULATOR} to run "
                              "natively")
        return Target(
            kind=kind,
            triple=triple,
            emulator="" if emulator == _NO_EMULATOR else emulator,
            mcpu=mcpu,
            cores=_count(opts["cores"], "cores") if "cores" in opts else host["cores"],
            arch=opts.get("arch", "sm_80"),
            features=features,
            vector_bits=bits,
            l1_bytes=_size(opts["l1"], "l1") if "l1" in opts else host["l1"],
            l2_bytes=_size(opts["l2"], "l2") if "l2" in opts else host["l2"],
            line_bytes=(_size(opts["line"], "line") if "line" in opts
                        else host["line"] if kind is TargetKind.C else 128),  # a GPU's L2 line
            fma_per_cycle=(_count(opts["fma-per-cycle"], "fma-per-cycle")
                           if "fma-per-cycle" in opts else host["fma_per_cycle"]),
            vector_math=vector_math,
        )

    @property
    def isa(self) -> str:
        """The ISA level of :attr:`features` (``"avx512"``, ``"avx2"``, ``"neon"``...)."""
        return isa_level(self.features)

    def __str__(self) -> str:
        if self.kind is TargetKind.CUDA:
            return f"cuda -arch={self.arch}"
        if self.kind is TargetKind.OPENCL:
            return (f"opencl -device={self.device} -local-mem={_size_str(self.local_mem_bytes)} "
                    f"-max-threads={self.max_threads}")
        cross = (f"-mtriple={self.triple} -emulator={self.emulator or _NO_EMULATOR} "
                 if self.triple else "")
        return (f"c {cross}-mcpu={self.mcpu} -cores={self.cores} -isa={self.isa} "
                f"-vector-bits={self.vector_bits} -l1={_size_str(self.l1_bytes)} "
                f"-l2={_size_str(self.l2_bytes)} -line={self.line_bytes} "
                f"-fma-per-cycle={self.fma_per_cycle} -libmvec={int(self.vector_math)}")

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
    def machine(self) -> str:
        """The machine the code runs on, as ``uname -m`` names it (``aarch64``)."""
        return CROSS_TRIPLES[self.triple].machine if self.triple else platform.machine()

    @property
    def emulated(self) -> bool:
        """Whether this host runs the code under an emulator: right answers, but times
        that say nothing of the device's speed."""
        return bool(self.emulator)

    @property
    def compiler(self) -> str:
        """The C compiler: ``$CC`` (default ``gcc``), or the triple's cross compiler."""
        return env.cross_compiler(self.triple) if self.triple else env.c_compiler()

    @property
    def cflags(self) -> tuple[str, ...]:
        if self.triple:
            # A program of its own (the kernel and a main() that feeds it), static so
            # that the emulator needs no copy of the triple's shared libraries.
            return ("-O3", f"-mcpu={self.mcpu}", "-fopenmp", "-fno-math-errno", "-static",
                    "-std=gnu11", "-Werror=implicit-function-declaration")
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
        if self.kind is TargetKind.OPENCL:
            return {"target": str(self), "device": _opencl_device(self.device).name,
                    "local_mem_bytes": self.local_mem_bytes, "max_threads": self.max_threads}
        cross = {"emulator": self.emulator, "emulated": self.emulated} if self.triple else {}
        return {
            "target": str(self),
            "machine": self.machine,
            "cpu": self.mcpu if self.triple else host_info()["model"],
            **cross,
            "isa": self.isa,
            "vector_bits": self.vector_bits,
            "cores": self.cores,
            "l1_bytes": self.l1_bytes,
            "l2_bytes": self.l2_bytes,
            "line_bytes": self.line_bytes,
            "fma_per_cycle": self.fma_per_cycle,
            "vector_math": self.vector_math,
        }

    @staticmethod
    def from_legacy(text: str, described: Mapping[str, Any]) -> Target:
        """The target of a record stored by tilewise 0.1, whose key held only
        ``c -mcpu=... -cores=...``, from the description stored beside it: the host's
        where that description is the host's, else what it says (an x86 level from its
        vector width)."""
        old = Target.from_str(text)
        if old.kind is not TargetKind.C:
            return old
        host = host_info()
        mine = (described.get("machine", platform.machine()) == platform.machine()
                and described.get("cpu", host["model"]) == host["model"]
                and described.get("vector_bits", host["vector_bits"]) == host["vector_bits"])
        if mine:
            return old
        bits = int(described.get("vector_bits", 128))
        arm = str(described.get("machine", "")).startswith(("aarch64", "arm"))
        level = "neon" if arm else {512: "avx512", 256: "avx2"}.get(bits, "sse4")
        return dataclasses.replace(
            old, features=isa_features(level), vector_bits=bits,
            l1_bytes=int(described.get("l1_bytes", old.l1_bytes)),
            l2_bytes=int(described.get("l2_bytes", old.l2_bytes)),
            line_bytes=64,
            fma_per_cycle=int(described.get("fma_per_cycle", 2)),
            vector_math=False)


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
    level = isa_level(flags)
    return {
        "isa": level,
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


def _cross_defaults(triple: str) -> dict:
    """What a target of ``triple`` is where its string leaves it out: a generic core of
    the architecture, one thread, run under its emulator unless this host is one."""
    arch = CROSS_TRIPLES[triple]
    native = arch.machine == platform.machine()
    return {
        "mcpu": "generic",
        "emulator": _NO_EMULATOR if native else arch.emulator,
        "isa": arch.levels[0],
        "vector_bits": _ISA_LEVELS[arch.levels[0]][1],
        "cores": 1,
        "l1": 32 * 1024,
        "l2": 512 * 1024,
        "line": 64,
        "fma_per_cycle": 2,
        "vector_math": False,
    }


def _glibc() -> tuple[int, ...]:
    """The C library's glibc version, () where it is not glibc."""
    try:
        name, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")  # type: ignore[union-attr]
        return tuple(int(x) for x in version.split(".")[:2]) if name == "glibc" else ()
    except (ValueError, OSError, AttributeError):
        return ()


def _opencl_target(opts: Mapping[str, str]) -> Target:
    """An OpenCL device's target: its number, and its limits as given, else as the
    device here reports them (a device of the farm names its own), else CUDA's."""
    try:
        device = int(opts.get("device", "0"))
    except ValueError:
        raise TargetError(f"-device must be a device number, got {opts['device']!r}") from None
    if device < 0:
        raise TargetError(f"-device must be a device number, got {device}")
    local = _size(opts["local-mem"], "local-mem") if "local-mem" in opts else None
    threads = _count(opts["max-threads"], "max-threads") if "max-threads" in opts else None
    if local is None or threads is None:
        found = _opencl_device(device)
        local = local if local is not None else found.local_mem_bytes
        threads = threads if threads is not None else found.max_threads
    return Target(kind=TargetKind.OPENCL, device=device, local_mem_bytes=local,
                  max_threads=threads, line_bytes=128)


def _opencl_device(device: int) -> Any:
    """OpenCL device ``device``'s name and limits here, or CUDA's limits (named
    "unknown") where there is no such device."""
    from .runtime.device import CUDA_LIMITS, DeviceLimits, NoDeviceError
    from .runtime.opencl import device_limits

    try:
        return device_limits(device)
    except NoDeviceError:
        return DeviceLimits("unknown", CUDA_LIMITS.local_mem_bytes, CUDA_LIMITS.max_threads)


def is_emulated(target: str | Target) -> bool:
    """Whether records keyed by ``target`` were measured under an emulator, so that
    their times are not the device's speed (False for a string this version cannot
    read)."""
    try:
        return Target.from_str(target).emulated
    except TargetError:
        return False


#: What every report says in place of speed where the times are an emulator's.
EMULATED_NOTE = "times under emulation are not speed"


def as_target(t: str | Target) -> Target:
    return Target.from_str(t)
