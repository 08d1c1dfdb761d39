"""Buffers: named, typed, row-major memory regions in a storage scope."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .dtype import DType


class Scope(enum.Enum):
    GLOBAL = "global"
    LOCAL = "local"
    SHARED = "shared"


@dataclass(frozen=True, eq=False)
class Buffer:
    """A row-major array; identity-compared so two buffers may share a name."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    scope: Scope = Scope.GLOBAL

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def strides(self) -> tuple[int, ...]:
        out, acc = [], 1
        for extent in reversed(self.shape):
            out.append(acc)
            acc *= extent
        return tuple(reversed(out))

    def __repr__(self) -> str:
        dims = ", ".join(map(str, self.shape))
        return f"{self.name}: {self.dtype}[{dims}] ({self.scope.value})"
