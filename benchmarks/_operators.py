"""The benchmarks' operators as one-node graphs, and each one's generated task (the
group a model compiles with the operator templates ignored, ``templates=False``):
what benchmarks/generated_spaces.py and tuning_efficiency.py tune. Beside the scripts,
imported by them; a test puts this folder on ``sys.path`` first.

>>> task = generated_task("gemm", (64, 64, 64), "c")               # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: operator -> (hand template's name, its task arguments)
OPS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "gemm512": ("gemm", (512, 512, 512)),
    "conv3x3": ("conv2d_nchw", (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, "float32", "")),
    "conv1x1": ("conv2d_nchw", (1, 256, 56, 56, 64, 1, 1, 1, 0, 1, "float32", "")),
}


def operator_graph(name: str, args: tuple[Any, ...]):
    """The hand template ``name``'s operator with ``args`` as a one-node graph (a gemm
    or a ``conv2d_nchw``; weights constants, as a model holds them)."""
    from tilewise.graph import Graph, Node, TensorType
    from tilewise.graph.infer import infer_types

    rng = np.random.default_rng(0)
    if name == "gemm":
        M, N, K = args
        types = {"a": TensorType((M, K), "float32"), "b": TensorType((K, N), "float32")}
        node = Node("matmul", ("a", "b"), ("y",), {}, name="matmul")
        return infer_types(Graph(inputs=("a", "b"), outputs=("y",), nodes=(node,),
                                 types=types, name=f"gemm{M}x{N}x{K}"))
    if name != "conv2d_nchw":
        raise ValueError(f"no graph for the operator {name!r} (gemm, conv2d_nchw)")
    n, c, h, w, k, r, s, stride, pad, dilation, _, _ = args
    weight = (rng.standard_normal((k, c, r, s)) * 0.1).astype(np.float32)
    node = Node("conv2d", ("x", "w"), ("y",),
                {"strides": (stride, stride), "pads": (pad,) * 4,
                 "dilations": (dilation, dilation), "groups": 1}, name="conv")
    return infer_types(Graph(inputs=("x",), outputs=("y",), nodes=(node,),
                             types={"x": TensorType((n, c, h, w), "float32")},
                             constants={"w": weight}, name=f"conv{k}x{c}x{r}x{s}"))


def generated_task(name: str, args: tuple[Any, ...], target: str):
    """The ``generated`` task of the operator's graph: its one group, templates ignored."""
    from tilewise.graph.tasks import extract_tasks

    ((task, _),) = extract_tasks(operator_graph(name, args), target, templates=False)
    return task
