"""Import a PyTorch module into the graph IR through ``torch.export``, with no ONNX in
between.

The module is exported, decomposed to core ATen except for the operators the graph
holds whole (``linear``, ``matmul``, ``conv2d``, ``layer_norm``, ``softmax``,
``max_pool2d``, ``adaptive_avg_pool2d``, ``scaled_dot_product_attention``), checked
(every operator is supported or reads only constants), then translated node by node
(the translators are :mod:`tilewise.frontend.torch_ops`'s). Parameters, buffers and
lifted tensors become constants; whatever reads only constants is evaluated by PyTorch
itself as it is met. User inputs keep their names from the export signature; user
outputs are named ``output`` (one) or ``output_0``, ``output_1``... Every translated
value's type is checked against the shape and dtype PyTorch recorded for its node.

>>> from tilewise.frontend import from_torch
>>> graph = from_torch(model, (torch.randn(1, 3, 224, 224),))  # doctest: +SKIP
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import torch
    from torch import fx
except ImportError as e:  # pragma: no cover - the extra is missing
    raise ImportError("tilewise's PyTorch frontend needs torch: "
                      "pip install 'tilewise[torch]'") from e

from ..errors import ModelError
from ..graph.infer import array_type, infer_node, infer_types
from ..graph.ir import Graph, Node, TensorType
from ..graph.ops import evaluate
from ..graph.passes.rewrite import fresh_name, rename
from .torch_ops import TORCH_DTYPES, TRANSLATORS

_aten = torch.ops.aten

#: Composite operators kept whole through decomposition: each is one graph operator.
KEEP_WHOLE = (_aten.linear.default, _aten.matmul.default, _aten.conv2d.default,
              _aten.layer_norm.default, _aten.softmax.int, _aten.max_pool2d.default,
              _aten.adaptive_avg_pool2d.default, _aten.scaled_dot_product_attention.default)

_LEGAL_NAME = re.compile(r"[A-Za-z0-9_.:/\-]+")
_IGNORED = ("aten._assert_tensor_metadata.", "aten._assert_scalar.",
            "aten.sym_constrain_range")


def from_torch(model: Any, example_inputs: tuple | None = None) -> Graph:
    """The graph of ``model``: a ``torch.nn.Module`` (exported in eval mode on
    ``example_inputs``, whose shapes and dtypes the graph keeps) or a
    ``torch.export.ExportedProgram``. Raises ModelError on anything it cannot import."""
    if isinstance(model, torch.export.ExportedProgram):
        program, name = model, "model"
    elif isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise ModelError(f"importing a torch module ({type(model).__name__}) needs "
                             "example_inputs, a tuple of tensors to export it with")
        program, name = _export(model, example_inputs), type(model).__name__
    else:
        raise ModelError(f"from_torch takes a torch.nn.Module or an ExportedProgram, not "
                         f"{type(model).__name__}")
    table = torch.export.default_decompositions()
    for op in KEEP_WHOLE:
        table.pop(op, None)
    try:
        program = program.run_decompositions(table)
    except Exception as e:  # PyTorch raises many kinds; report them as one
        raise ModelError(f"torch.export cannot decompose the model: {_first_line(e)}") \
            from e
    return _Importer(program, name).run()


def _export(module: torch.nn.Module, example_inputs: Any) -> torch.export.ExportedProgram:
    args = example_inputs if isinstance(example_inputs, tuple) else (
        tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,))
    training = module.training
    module.eval()
    try:
        return torch.export.export(module, args)
    except Exception as e:  # PyTorch raises many kinds; report them as one
        raise ModelError(f"torch.export cannot export {type(module).__name__}: "
                         f"{_first_line(e)}") from e
    finally:
        module.train(training)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _bind(node: fx.Node) -> dict[str, Any]:
    """``node``'s arguments by their schema names, defaults filled."""
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return {}
    bound = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args) and not arg.kwarg_only:
            bound[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            bound[arg.name] = node.kwargs[arg.name]
        else:
            bound[arg.name] = arg.default_value if arg.has_default_value() else None
    return bound


def _tensor_type(val: Any, what: str) -> TensorType:
    if not isinstance(val, torch.Tensor):
        raise ModelError(f"{what} is not a tensor ({type(val).__name__})")
    if any(not isinstance(d, int) for d in val.shape):
        raise ModelError(f"{what} has a symbolic shape {tuple(val.shape)}; export the "
                         "model with static shapes")
    if val.dtype not in TORCH_DTYPES:
        raise ModelError(f"{what} has element type {val.dtype}; the graph holds "
                         f"{', '.join(TORCH_DTYPES.values())}")
    return TensorType(tuple(int(d) for d in val.shape), TORCH_DTYPES[val.dtype])


class TorchNodeContext:
    """What a translator sees of one FX node: its arguments by schema name (graph values
    for tensors read through :meth:`value`), the type PyTorch recorded for it, and
    ``emit``, which adds a graph node (or evaluates it when it reads only constants)."""

    def __init__(self, importer: _Importer, node: fx.Node) -> None:
        self._imp = importer
        self.node = node
        self.name = node.name
        self.op = str(node.target)
        self.args = _bind(node)
        self.made: list[str] = []

    def error(self, problem: str) -> ModelError:
        return ModelError(f"{self.op} node {self.name!r}: {problem}")

    def arg(self, i: int) -> Any:
        """Argument ``i`` in schema order."""
        return list(self.args.values())[i]

    def value(self, arg: Any) -> str:
        """The graph value of a tensor argument."""
        if not isinstance(arg, fx.Node):
            raise self.error(f"takes a tensor where it was given {arg!r}")
        return self._imp.value(arg)

    def x(self, i: int = 0) -> str:
        return self.value(self.arg(i))

    def type(self, value: str) -> TensorType:
        return self._imp.types[value]

    def rank(self, value: str) -> int:
        return len(self._imp.types[value].shape)

    @property
    def out(self) -> TensorType:
        """The type PyTorch recorded for this node's (first) output."""
        val = self.node.meta.get("val")
        if isinstance(val, (tuple, list)):
            val = val[0]
        return _tensor_type(val, f"{self.op} node {self.name!r}'s output")

    def axis(self, axis: int, rank: int) -> int:
        if not -max(rank, 1) <= axis < max(rank, 1):
            raise self.error(f"axis {axis} is outside {-rank}..{rank - 1}")
        return axis % max(rank, 1)

    def constant(self, value: np.ndarray, base: str = "const") -> str:
        name = self._imp.fresh(f"{self.name}_{base}")
        self._imp.add_constant(name, np.asarray(value), f"{self.op} node {self.name!r}")
        self.made.append(name)
        return name

    def operand(self, arg: Any, dtype: str) -> str:
        """A tensor argument cast to ``dtype``, or a number as a 0-d constant of it."""
        if isinstance(arg, fx.Node):
            v = self.value(arg)
            return v if self.type(v).dtype == dtype else self.emit1("cast", [v], {"to": dtype})
        if isinstance(arg, (bool, int, float)):
            return self.constant(np.array(arg, dtype=dtype), "scalar")
        raise self.error(f"takes a tensor or a number where it was given {arg!r}")

    def emit(self, op: str, inputs: Sequence[str], attrs: dict[str, Any] | None = None,
             n_outputs: int = 1) -> list[str]:
        imp = self._imp
        folds = all(v in imp.constants for v in inputs if v)
        base = inputs[0] if folds and inputs else self.name  # a weight's transpose: w_transpose
        outs = [imp.fresh(f"{base}_{op}") for _ in range(n_outputs)]
        node = Node(op, tuple(inputs), tuple(outs), dict(attrs or {}), self.name)
        types = infer_node(node, imp.types)
        if folds:
            values = evaluate(node, [imp.constants[v] if v else None for v in inputs])
            imp.constants.update(zip(outs, values, strict=True))
        else:
            imp.nodes.append(node)
        imp.types.update(zip(outs, types, strict=True))
        self.made.extend(outs)
        return outs

    def emit1(self, op: str, inputs: Sequence[str], attrs: dict[str, Any] | None = None
              ) -> str:
        return self.emit(op, inputs, attrs)[0]


class _Importer:
    """One import: FX nodes -> graph values (or, for constant nodes, PyTorch values), and
    the graph's types, constants and nodes so far."""

    def __init__(self, program: torch.export.ExportedProgram, name: str) -> None:
        self.program = program
        self.fx_graph = program.graph_module.graph
        self.name = name
        self.types: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.nodes: list[Node] = []
        self.env: dict[fx.Node, Any] = {}  # graph value, or a list of them (None: unsupported)
        self.folded: dict[fx.Node, Any] = {}  # PyTorch values of nodes reading only constants
        self.const_names: dict[fx.Node, str] = {}  # the name a folded tensor gets
        self.constant_nodes: set[fx.Node] = set()  # call_functions reading only constants
        self.taken = {n.name for n in self.fx_graph.nodes if n.op != "output"}
        self.placeholders = {n.name: n for n in self.fx_graph.nodes if n.op == "placeholder"}

    def fresh(self, base: str) -> str:
        base = base if _LEGAL_NAME.fullmatch(base) else re.sub(r"[^A-Za-z0-9_.:/\-]", "_",
                                                                base)
        name = fresh_name(base or "v", self.taken)
        self.taken.add(name)
        return name

    def add_constant(self, name: str, value: np.ndarray, what: str) -> None:
        self.constants[name] = value
        self.types[name] = array_type(value, what)

    def value(self, node: fx.Node) -> str:
        """The graph value of ``node``; a folded tensor becomes a constant when first read."""
        if node in self.env:
            value = self.env[node]
            if not isinstance(value, str):
                raise ModelError(f"node {node.name!r} is not one tensor")
            return value
        tensor = self.folded.get(node)
        if not isinstance(tensor, torch.Tensor):
            raise ModelError(f"node {node.name!r} is not a tensor ({type(tensor).__name__})")
        what = f"constant {node.name!r}"
        _tensor_type(tensor, what)
        name = self.const_names.get(node, node.name)  # reserved for this node
        if name in self.types or not _LEGAL_NAME.fullmatch(name):
            name = self.fresh(name)
        self.add_constant(name, tensor.detach().cpu().contiguous().numpy().copy(), what)
        self.env[node] = name
        return name

    def run(self) -> Graph:
        inputs = self._inputs()
        outputs = self._output_nodes()
        self._check(outputs)
        for node in self.fx_graph.nodes:
            if node.op != "call_function":
                continue
            if node in self.constant_nodes:
                self._fold(node)
            elif not str(node.target).startswith(_IGNORED):
                self._translate(node)
        names = self._outputs(outputs)
        graph = Graph(inputs=tuple(inputs), outputs=tuple(names), nodes=tuple(self.nodes),
                      types=self.types, constants=self.constants, name=self.name)
        graph = infer_types(graph)
        self._check_types(graph)
        return graph

    def _inputs(self) -> list[str]:
        program, kinds = self.program, torch.export.graph_signature.InputKind
        inputs = []
        for spec in program.graph_signature.input_specs:
            node = self.placeholders[spec.arg.name]
            if spec.kind == kinds.USER_INPUT:
                val = node.meta.get("val")
                if not isinstance(val, torch.Tensor) and not node.users:
                    continue  # a number export specialised into the graph
                self.types[node.name] = _tensor_type(val, f"input {node.name!r}")
                self.env[node] = node.name
                inputs.append(node.name)
            elif spec.kind in (kinds.PARAMETER, kinds.BUFFER, kinds.CONSTANT_TENSOR):
                target = spec.target
                store = program.state_dict if target in program.state_dict else \
                    program.constants
                self.folded[node] = store[target]
                self.const_names[node] = target
                self.taken.add(target)
            else:
                raise ModelError(f"the program's input {node.name!r} is a "
                                 f"{spec.kind.name.lower()}; tilewise imports tensors only")
        return inputs

    def _output_nodes(self) -> list[fx.Node]:
        kinds = torch.export.graph_signature.OutputKind
        (out_node,) = [n for n in self.fx_graph.nodes if n.op == "output"]
        values = out_node.args[0]
        outputs = []
        for spec, value in zip(self.program.graph_signature.output_specs, values, strict=True):
            if spec.kind != kinds.USER_OUTPUT:
                raise ModelError(f"the model mutates {spec.target!r} "
                                 f"({spec.kind.name.lower()}); tilewise imports pure "
                                 "inference (export in eval mode)")
            if not isinstance(value, fx.Node):
                raise ModelError(f"the model returns {value!r}, not a tensor")
            outputs.append(value)
        return outputs

    def _check(self, outputs: list[fx.Node]) -> None:
        """Find the nodes that read only constants (PyTorch evaluates them); refuse every
        other operator that has no translator, all in one error."""
        bad = []
        for node in self.fx_graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            target = str(node.target)
            if node.op == "call_function":
                seeded = torch.Tag.nondeterministic_seeded in getattr(node.target, "tags", ())
                if not seeded and all(n in self.folded or n in self.constant_nodes
                                      for n in node.all_input_nodes):
                    self.constant_nodes.add(node)
                    continue
                if (target in TRANSLATORS or node.target is operator.getitem
                        or target.startswith(_IGNORED)):
                    continue
            bad.append(f"{target} (node {node.name!r})")
        if bad:
            raise ModelError(f"unsupported PyTorch operators: {', '.join(bad)}")

    def _fold(self, node: fx.Node) -> None:
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: self.folded[n])
        try:
            with torch.no_grad():
                self.folded[node] = node.target(*args, **kwargs)
        except Exception as e:  # PyTorch raises many kinds; report them as one
            raise ModelError(f"{node.target} node {node.name!r}: cannot evaluate it on "
                             f"constants: {_first_line(e)}") from e

    def _translate(self, node: fx.Node) -> None:
        if node.target is operator.getitem:
            source, index = node.args
            values = self.env[source]
            value = values[index] if isinstance(values, (list, tuple)) else None
            if value is None:
                raise ModelError(f"node {node.name!r}: output {index} of {source.target} "
                                 f"node {source.name!r} is not supported")
            self.env[node] = value
            return
        ctx = TorchNodeContext(self, node)
        start = len(self.nodes)
        try:
            result = TRANSLATORS[ctx.op](ctx)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError,
                ArithmeticError) as e:
            raise ctx.error(f"cannot translate: {type(e).__name__}: {e}") from None
        if isinstance(result, str) and result in ctx.made:
            result = self._rename(start, result, node.name)
        self.env[node] = result

    def _rename(self, start: int, value: str, name: str) -> str:
        """Give the value a translation made (in nodes ``start:``) the FX node's name."""
        self.nodes[start:] = rename(self.nodes[start:], {value: name})
        self.types[name] = self.types.pop(value)
        if value in self.constants:
            self.constants[name] = self.constants.pop(value)
        return name

    def _outputs(self, outputs: list[fx.Node]) -> list[str]:
        """Name the outputs ``output`` or ``output_<i>``: rename the value a node computes,
        or copy an input, a constant or a value already returned."""
        produced = {v for n in self.nodes for v in n.outputs}
        names: list[str] = []
        for i, fx_node in enumerate(outputs):
            value = self.value(fx_node)
            wanted = self.fresh("output" if len(outputs) == 1 else f"output_{i}")
            if value in produced and value not in names:
                self.nodes = rename(self.nodes, {value: wanted})
                self.types[wanted] = self.types.pop(value)
                self.env = {k: _renamed(v, value, wanted) for k, v in self.env.items()}
                produced = (produced - {value}) | {wanted}
            elif value in self.constants:
                self.add_constant(wanted, self.constants[value], f"output {wanted!r}")
            else:
                t = self.types[value]
                self.nodes.append(Node("reshape", (value,), (wanted,), {"shape": t.shape},
                                       f"{wanted}_copy"))
                self.types[wanted] = t
            names.append(wanted)
        return names

    def _check_types(self, graph: Graph) -> None:
        """Every translated value against the shape and dtype PyTorch recorded."""
        for node, value in self.env.items():
            vals = node.meta.get("val")
            pairs = (zip(value, vals, strict=False) if isinstance(value, (list, tuple))
                     else [(value, vals)])
            for v, val in pairs:
                if v is None or v not in graph.types or not isinstance(val, torch.Tensor):
                    continue
                want = _tensor_type(val, f"node {node.name!r}")
                if graph.types[v] != want:
                    raise ModelError(f"{node.target} node {node.name!r}: translated to "
                                     f"{graph.types[v]}, but PyTorch computes {want}")


def _renamed(entry: Any, old: str, new: str) -> Any:
    """An ``env`` entry (a value or a list of them) with value ``old`` called ``new``."""
    if isinstance(entry, list):
        return [_renamed(e, old, new) for e in entry]
    return new if entry == old else entry
