"""The one place that reads the process environment."""

from __future__ import annotations

import os
from pathlib import Path


def c_compiler() -> str:
    """The system C compiler: ``$CC``, default ``gcc``."""
    return os.environ.get("CC", "gcc")


def cross_compiler(triple: str) -> str:
    """The C compiler for another architecture: ``$CC_<triple>`` (dashes as
    underscores: ``CC_aarch64_linux_gnu``), default ``<triple>-gcc``."""
    return os.environ.get("CC_" + triple.replace("-", "_"), f"{triple}-gcc")


def cache_dir() -> Path:
    """Compiled kernels: ``$TILEWISE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tilewise``."""
    if "TILEWISE_CACHE_DIR" in os.environ:
        return Path(os.environ["TILEWISE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tilewise"


def data_dir() -> Path:
    """Tuning databases: ``$XDG_DATA_HOME/tilewise``, else ``~/.local/share/tilewise``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tilewise"
