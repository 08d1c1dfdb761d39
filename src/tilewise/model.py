"""Whole models: ``tw.compile_model(model)`` imports, optimises and builds a model into
one native library; ``tw.load_model(directory)`` loads an exported one.

>>> import tilewise as tw
>>> from tilewise import models
>>> compiled = tw.compile_model(models.build("resnet18"), target="c -cores=2")
>>> out = compiled.run(models.example_inputs(models.build("resnet18")))["output"]
>>> compiled.export("resnet18.tw")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .runtime.model_library import ModelLibrary, load_model

#: A compiled model is a loaded model library (run, time, profile, export).
CompiledModel = ModelLibrary


def import_model(model: Any, input_shapes: dict[str, tuple[int, ...]] | None = None,
                 example_inputs: tuple | None = None):
    """The optimised graph of ``model``: an ONNX ModelProto, a path to a ``.onnx`` file,
    its bytes, a zoo model's name (``tilewise.models.ZOO``), a graph, or a PyTorch
    ``nn.Module`` (exported on ``example_inputs``, a tuple of tensors) or
    ``ExportedProgram``."""
    from .errors import ModelError
    from .graph import Graph
    from .graph.passes import optimize

    if _is_torch(model):
        if input_shapes is not None:
            raise ModelError("input_shapes is for ONNX models; a PyTorch model takes its "
                             "shapes from example_inputs")
        from .frontend.torch_export import from_torch

        return optimize(from_torch(model, example_inputs))
    if example_inputs is not None:
        raise ModelError(f"example_inputs is for PyTorch models, not "
                         f"{type(model).__name__}")
    if isinstance(model, Graph):
        return optimize(model)
    if isinstance(model, str) and not os.path.exists(model) and not model.endswith(".onnx"):
        from . import models

        model = models.build(model)
    from .frontend import from_onnx

    return optimize(from_onnx(model, input_shapes=input_shapes))


def _is_torch(model: Any) -> bool:
    """Whether ``model`` is a PyTorch object (a module or an exported program), decided
    without importing torch."""
    return any(cls.__module__.split(".")[0] == "torch" for cls in type(model).__mro__)


def compile_model(model: Any, db: str | os.PathLike[str] | None = None, target: str = "c",
                  input_shapes: dict[str, tuple[int, ...]] | None = None,
                  pack_weights: bool = True, example_inputs: tuple | None = None,
                  templates: bool = True, layouts: bool = True) -> ModelLibrary:
    """Compile ``model`` (see :func:`import_model`) for ``target``: every kernel runs the
    best config of database ``db`` where it has one and its template's fallback
    elsewhere. Weights are packed once at compile time unless ``pack_weights`` is False
    (which keeps Winograd's transformed weights, up to 4x the originals, out of
    memory at some speed). A PyTorch module needs ``example_inputs``. Without
    ``templates`` the operator templates are ignored: every kernel is generated
    (``tune_model(..., templates=False)`` tunes those). With ``layouts`` (the default)
    activations stay in channel blocks from one convolution to the next where the
    layout planning's rule keeps them (:mod:`tilewise.graph.layouts`); without, every
    convolution reads and writes NCHW. Returns the loaded library;
    ``.export(directory)`` writes it out.

    >>> compiled = tw.compile_model(module, example_inputs=(torch.randn(1, 3, 64, 64),))
    """
    from .autotune.database import Database
    from .autotune.dispatch import apply_history_best
    from .errors import ModelError
    from .graph.library import build_model

    if db is not None and not Path(db).is_file():
        raise ModelError(f"no tuning database at {db}")
    check_target(target)
    graph = import_model(model, input_shapes, example_inputs)
    _check_memory(graph)
    context = None if db is None else apply_history_best(Database(Path(db)))
    return build_model(graph, target, context, pack_weights, templates, layouts)


def check_target(target: str) -> None:
    """Refuse, before a model is imported, a target no kernel template builds for, a
    thread count no machine has (OpenMP crashes when asked for many more), and another
    architecture (``-mtriple``), whose kernels are programs of their own.

    >>> check_target("c -cores=2")
    """
    from .autotune.measure.workload import MAX_THREADS
    from .errors import ModelError
    from .target import Target, TargetKind

    tgt = Target.from_str(target)
    if tgt.kind is not TargetKind.C:
        raise ModelError(f"models compile for 'c' targets, not {target!r}: the operator "
                         "templates generate C")
    if tgt.cores > MAX_THREADS:
        raise ModelError(f"-cores={tgt.cores} is more threads than a machine has "
                         f"(at most {MAX_THREADS})")
    if tgt.triple:
        raise ModelError(f"models compile into one library loaded here, not for "
                         f"-mtriple={tgt.triple}; tune its operators with `tilewise tune`")


def _check_memory(graph: Any) -> None:
    """Refuse, before anything is built or allocated, a model whose inputs, outputs and
    largest intermediate value alone exceed the memory available."""
    import math

    import numpy as np

    from .autotune.measure.workload import available_memory
    from .errors import ModelError

    def nbytes(name: str) -> int:
        t = graph.types[name]
        return math.prod(t.shape) * np.dtype(t.dtype).itemsize

    ends = sum(nbytes(v) for v in (*graph.inputs, *graph.outputs))
    need = ends + max((nbytes(v) for v in graph.types), default=0)
    have = available_memory()
    if need > have:
        raise ModelError(f"the model needs at least {need / 2**30:.1f} GiB to run at these "
                         f"input shapes; this machine has {have / 2**30:.1f} GiB available")


def extract_tasks(model: Any, target: str = "c",
                  input_shapes: dict[str, tuple[int, ...]] | None = None,
                  example_inputs: tuple | None = None, generated: bool = False,
                  templates: bool = True, layouts: bool = True) -> list:
    """The template tasks of ``model`` (see :func:`import_model`) with how many times
    each runs: ``[(Task, count)]``, keyed as ``tilewise tune`` keys them; with
    ``generated``, the kernels no operator template covers too (``generated`` tasks);
    without ``templates``, every kernel as a ``generated`` task; ``layouts`` as
    :func:`compile_model` takes it (the tasks are those it compiles).

    >>> for task, count in tw.extract_tasks("resnet18", target="c -cores=2"):
    ...     print(count, task)
    """
    from .graph.tasks import extract_tasks as graph_tasks

    return graph_tasks(import_model(model, input_shapes, example_inputs), target,
                       generated, templates, layouts)


__all__ = ["CompiledModel", "compile_model", "extract_tasks", "import_model", "load_model"]
