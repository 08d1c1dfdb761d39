"""ONNX operator -> graph operators, one translator per ONNX operator (opsets 13..21),
in one module per family.

A translator reads a :class:`~tilewise.frontend.onnx.NodeContext` and returns one graph
value per ONNX output (None where an optional output is not supported). It resolves
everything ONNX leaves to run time: defaults, auto_pad, negative axes, and the shapes,
axes, sizes and bounds that ONNX passes as (constant) inputs.
"""

from . import constants, elementwise, nn, shape
from .registry import ONNX_DTYPES, TRANSLATORS, dtype_name, to_array

__all__ = ["ONNX_DTYPES", "TRANSLATORS", "constants", "dtype_name", "elementwise", "nn",
           "shape", "to_array"]
