"""Whole models: the graph IR, its passes, and building a model into one native library."""

from .ir import Graph, Node, TensorType

__all__ = ["Graph", "Node", "TensorType"]
