"""Model importers: ONNX files (:func:`from_onnx`) and PyTorch modules through
torch.export (:func:`from_torch`, imported on first use so that tilewise never imports
torch unless asked) into the graph IR."""

from typing import Any

from .onnx import from_onnx, load_onnx

__all__ = ["from_onnx", "from_torch", "load_onnx"]


def __getattr__(name: str) -> Any:
    if name == "from_torch":
        from .torch_export import from_torch

        return from_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
