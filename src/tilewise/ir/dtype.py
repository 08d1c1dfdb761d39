"""Scalar data types: their names, widths, C spellings and NumPy equivalents."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..errors import IRError


class Kind(enum.Enum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True)
class DType:
    """A scalar type such as ``float32``; compare and hash by value."""

    kind: Kind
    bits: int

    @property
    def name(self) -> str:
        return "bool" if self.kind is Kind.BOOL else f"{self.kind.value}{self.bits}"

    @property
    def is_float(self) -> bool:
        return self.kind is Kind.FLOAT

    @property
    def is_int(self) -> bool:
        return self.kind is Kind.INT

    @property
    def is_bool(self) -> bool:
        return self.kind is Kind.BOOL

    @property
    def bytes(self) -> int:
        return max(1, self.bits // 8)

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.name)

    def __str__(self) -> str:
        return self.name


float16 = DType(Kind.FLOAT, 16)
float32 = DType(Kind.FLOAT, 32)
float64 = DType(Kind.FLOAT, 64)
int8 = DType(Kind.INT, 8)
int32 = DType(Kind.INT, 32)
int64 = DType(Kind.INT, 64)
bool_ = DType(Kind.BOOL, 8)

_BY_NAME = {d.name: d for d in (float16, float32, float64, int8, int32, int64, bool_)}


def as_dtype(value: str | DType | np.dtype | type) -> DType:
    """Accept ``"float32"``, a NumPy dtype or a DType; raise naming the bad value."""
    if isinstance(value, DType):
        return value
    try:
        name = value if isinstance(value, str) else np.dtype(value).name
    except TypeError:
        name = str(value)
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise IRError(f"unsupported dtype {value!r}; use one of {sorted(_BY_NAME)}")


def promote(a: DType, b: DType) -> DType:
    """The common type of a binary operation (floats win, then the wider type)."""
    if a == b:
        return a
    rank = {Kind.BOOL: 0, Kind.INT: 1, Kind.FLOAT: 2}
    if rank[a.kind] != rank[b.kind]:
        return a if rank[a.kind] > rank[b.kind] else b
    return a if a.bits >= b.bits else b
