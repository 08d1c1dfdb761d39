"""The graph operators' definitions, one module per family; importing registers them."""

from . import elementwise, nn, pool, reduce, shape

__all__ = ["elementwise", "nn", "pool", "reduce", "shape"]
