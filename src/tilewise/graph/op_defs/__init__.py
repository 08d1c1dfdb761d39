"""The graph operators' definitions, one module per family; importing registers them."""

from . import conv, elementwise, nn, pool, reduce, shape

__all__ = ["conv", "elementwise", "nn", "pool", "reduce", "shape"]
