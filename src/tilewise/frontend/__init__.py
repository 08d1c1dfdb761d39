"""Model importers: ONNX files into the graph IR (:func:`from_onnx`)."""

from .onnx import from_onnx, load_onnx

__all__ = ["from_onnx", "load_onnx"]
