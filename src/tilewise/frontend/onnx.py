"""Import an ONNX model into the graph IR.

The importer checks the whole model before translating anything (the file parses, the
default-domain opset is 13..21, every operator is supported, every symbolic dimension
is given a size), then translates node by node. Values that depend only on constants
(shape arithmetic: Shape, Gather, Concat, ...) are evaluated as they are met, so a
Reshape's target shape is known when the Reshape is translated.

>>> from tilewise.frontend import from_onnx
>>> graph = from_onnx("model.onnx", input_shapes={"input": (1, 3, 224, 224)})  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from ..errors import ModelError
from ..graph.infer import array_type, infer_node, infer_types
from ..graph.ir import Graph, Node, TensorType
from ..graph.ops import evaluate
from ..graph.passes.rewrite import fresh_name, rename
from .onnx_ops import TRANSLATORS, dtype_name, to_array

#: The default-domain opsets the importer reads.
OPSETS = range(13, 22)

_LEGAL_NAME = re.compile(r"[A-Za-z0-9_.:/\-]+")
_DEFAULT_DOMAINS = ("", "ai.onnx")


def from_onnx(model: onnx.ModelProto | str | os.PathLike | bytes,
              input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """The graph of an ONNX model (a ModelProto, a file path, or serialised bytes).
    ``input_shapes`` gives sizes to the inputs' symbolic dimensions (it may also repeat
    fixed ones). Raises ModelError on anything it cannot import."""
    proto = load_onnx(model)
    _check_text(proto)
    _check_opset(proto)
    _check_ops(proto.graph)
    return _Importer(proto.graph, dict(input_shapes or {})).run()


def load_onnx(model: onnx.ModelProto | str | os.PathLike | bytes) -> onnx.ModelProto:
    """The ModelProto of ``model`` (a path or bytes read; one ModelError if it is not one)."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(bytes(model))
        except (DecodeError, ValueError, RuntimeError) as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            raise ModelError(f"these {len(model)} bytes are not an ONNX model: {reason}") \
                from None
        return proto
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"from_onnx takes a ModelProto, a path or bytes, not "
                         f"{type(model).__name__}")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelError(f"no ONNX model file at {path!r}")
    try:
        return onnx.load(path)
    except (DecodeError, OSError, ValueError, RuntimeError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ModelError(f"cannot read ONNX model {path!r}: {reason}") from None


def _check_text(message: Any) -> None:
    """Protobuf hands back a name that is not UTF-8 as bytes; refuse such a model."""
    for field, value in message.ListFields():
        repeated = (field.is_repeated if hasattr(field, "is_repeated")
                    else field.label == field.LABEL_REPEATED)
        items = value if repeated else [value]
        if field.type == field.TYPE_MESSAGE:
            for item in items:
                _check_text(item)
        elif field.type == field.TYPE_STRING and any(isinstance(v, bytes) for v in items):
            raise ModelError(f"the model's {field.full_name} holds bytes that are not UTF-8")


def _check_opset(proto: onnx.ModelProto) -> None:
    versions = [o.version for o in proto.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not versions:
        raise ModelError("the model imports no default-domain (ai.onnx) opset")
    if versions[0] not in OPSETS:
        raise ModelError(f"the model uses opset {versions[0]}; tilewise imports opsets "
                         f"{OPSETS.start}..{OPSETS.stop - 1} (convert it with "
                         "onnx.version_converter)")


def _check_ops(graph: onnx.GraphProto) -> None:
    bad = [f"{n.op_type} (node {_node_name(n, i)!r})" for i, n in enumerate(graph.node)
           if n.domain not in _DEFAULT_DOMAINS or n.op_type not in TRANSLATORS]
    if bad:
        raise ModelError(f"unsupported ONNX operators: {', '.join(bad)}")


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


class NodeContext:
    """What a translator sees of one ONNX node: its inputs as graph values, its
    attributes, and ``emit``, which adds a graph node (or, when all its inputs are
    constants, evaluates it into a constant)."""

    def __init__(self, importer: _Importer, node: onnx.NodeProto, index: int) -> None:
        self._imp = importer
        self.op_type = node.op_type
        self.name = _node_name(node, index)
        self.inputs = [importer.resolve(v, self) if v else "" for v in node.input]
        self.outputs = list(node.output)
        self.attrs = {a.name: _attr_value(a) for a in node.attribute}
        self.nodes: list[Node] = []
        self.made: list[str] = []  # values this node created, in order

    def error(self, problem: str) -> ModelError:
        return ModelError(f"{self.op_type} node {self.name!r}: {problem}")

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, i: int) -> str:
        """Input ``i``'s graph value, "" if omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def type(self, value: str) -> TensorType:
        return self._imp.types[value]

    def rank(self, value: str) -> int:
        return len(self._imp.types[value].shape)

    def const(self, value: str) -> np.ndarray | None:
        return self._imp.constants.get(value) if value else None

    def const_input(self, i: int, what: str) -> np.ndarray | None:
        """Input ``i``'s constant value; None if omitted; an error if not constant."""
        value = self.input(i)
        if not value:
            return None
        if value not in self._imp.constants:
            raise self.error(f"its {what} (input {i}) must be a constant")
        return self._imp.constants[value]

    def required_const_input(self, i: int, what: str) -> np.ndarray:
        """Input ``i``'s constant value; an error if omitted or not constant."""
        value = self.const_input(i, what)
        if value is None:
            raise self.error(f"has no {what} input")
        return value

    def constant(self, value: np.ndarray, base: str = "const") -> str:
        name = self._imp.fresh(f"{self.name}_{base}")
        self._imp.constants[name] = value
        self._imp.types[name] = array_type(value, f"{self.op_type} node {self.name!r}'s {base}")
        self.made.append(name)
        return name

    def emit(self, op: str, inputs: Sequence[str], attrs: Mapping[str, Any] | None = None,
             n_outputs: int = 1) -> list[str]:
        """Add graph operator ``op``; returns its output values (temporary names; the
        importer renames those that become the ONNX node's outputs)."""
        outs = [self._imp.fresh(f"{self.name}_{op}") for _ in range(n_outputs)]
        node = Node(op, tuple(inputs), tuple(outs), dict(attrs or {}), self.name)
        types = infer_node(node, self._imp.types)
        if all(v in self._imp.constants for v in inputs if v):
            values = evaluate(node, [self._imp.constants[v] if v else None for v in inputs])
            self._imp.constants.update(zip(outs, values, strict=True))
        else:
            self.nodes.append(node)
        self._imp.types.update(zip(outs, types, strict=True))
        self.made.extend(outs)
        return outs

    def emit1(self, op: str, inputs: Sequence[str],
              attrs: Mapping[str, Any] | None = None) -> str:
        return self.emit(op, inputs, attrs)[0]


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value


class _Importer:
    """One import: the values defined so far (types, constants, ONNX -> graph names)
    and the graph nodes emitted."""

    def __init__(self, graph: onnx.GraphProto, input_shapes: dict[str, Sequence[int]]) -> None:
        self.proto = graph
        self.input_shapes = input_shapes
        self.types: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.nodes: list[Node] = []
        self.names: dict[str, str] = {}  # ONNX value name -> graph value name
        self.own: dict[str, str] = {}  # ONNX value name -> the graph value it names
        self.taken: set[str] = set()
        self._reserve_names()

    def _reserve_names(self) -> None:
        """Keep every legal ONNX name; temporaries and repaired names avoid them."""
        onnx_names = [v.name for v in self.proto.input]
        onnx_names += [t.name for t in self.proto.initializer]
        onnx_names += [v for n in self.proto.node for v in n.output if v]
        self.taken.update(v for v in onnx_names if _LEGAL_NAME.fullmatch(v))

    def fresh(self, base: str) -> str:
        base = base if _LEGAL_NAME.fullmatch(base) else re.sub(r"[^A-Za-z0-9_.:/\-]", "_", base)
        name = fresh_name(base or "v", self.taken)
        self.taken.add(name)
        return name

    def define(self, onnx_name: str) -> str:
        """The graph name for a value ONNX defines: its own if legal and still free."""
        if onnx_name in self.names:
            raise ModelError(f"value {onnx_name!r} is defined twice")
        if _LEGAL_NAME.fullmatch(onnx_name) and onnx_name not in self.types:
            name = onnx_name
        else:
            name = self.fresh(onnx_name)
        self.names[onnx_name] = self.own[onnx_name] = name
        return name

    def resolve(self, onnx_name: str, ctx: NodeContext | None = None) -> str:
        try:
            return self.names[onnx_name]
        except KeyError:
            where = f"{ctx.op_type} node {ctx.name!r} reads" if ctx else "the model outputs"
            raise ModelError(f"{where} {onnx_name!r}, which nothing defines before it") \
                from None

    def run(self) -> Graph:
        initializers = {t.name for t in self.proto.initializer}
        fed = [v.name for v in self.proto.input if v.name not in initializers]
        unknown = sorted(set(self.input_shapes) - set(fed))
        if unknown:
            raise ModelError(f"input_shapes names {unknown}; the model's inputs are {fed}")
        for t in self.proto.initializer:
            name = self.define(t.name)
            self.constants[name] = to_array(t, f"initializer {t.name!r}")
            self.types[name] = array_type(self.constants[name], f"initializer {t.name!r}")
        inputs = []
        for v in self.proto.input:
            if v.name in initializers:
                continue
            t = self._input_type(v)
            name = self.define(v.name)
            self.types[name] = t
            inputs.append(name)
        for i, node in enumerate(self.proto.node):
            self._translate(node, i)
        outputs = self._outputs()
        graph = Graph(inputs=tuple(inputs), outputs=tuple(outputs), nodes=tuple(self.nodes),
                      types=self.types, constants=self.constants,
                      name=self.proto.name or "model")
        return infer_types(graph)

    def _input_type(self, v: onnx.ValueInfoProto) -> TensorType:
        what = f"input {v.name!r}"
        if not v.type.HasField("tensor_type"):
            raise ModelError(f"{what} is not a tensor")
        tt = v.type.tensor_type
        dtype = dtype_name(tt.elem_type, what)
        dims = list(tt.shape.dim) if tt.HasField("shape") else None
        given = self.input_shapes.get(v.name)
        if given is not None:
            given = _checked_shape(given, what)
        if dims is None:
            if given is None:
                raise ModelError(f"{what} has no declared shape; give it in input_shapes")
            return TensorType(given, dtype)
        if given is not None and len(given) != len(dims):
            raise ModelError(f"{what} has rank {len(dims)}; input_shapes gives {given}")
        shape = []
        for i, d in enumerate(dims):
            fixed = d.dim_value if d.HasField("dim_value") else None
            if given is not None:
                if fixed is not None and fixed != given[i]:
                    raise ModelError(f"{what} has size {fixed} in dim {i}; input_shapes "
                                     f"gives {given[i]}")
                shape.append(given[i])
            elif fixed is None:
                label = repr(d.dim_param) if d.dim_param else "unnamed"
                raise ModelError(f"{what} has symbolic dim {i} ({label}); give its size in "
                                 "input_shapes")
            else:
                shape.append(fixed)
        return TensorType(tuple(shape), dtype)

    def _translate(self, node: onnx.NodeProto, index: int) -> None:
        ctx = NodeContext(self, node, index)
        try:
            results = TRANSLATORS[node.op_type](ctx)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError,
                ArithmeticError) as e:
            raise ctx.error(f"cannot translate: {type(e).__name__}: {e}") from None
        renames: dict[str, str] = {}
        for i, onnx_name in enumerate(node.output):
            if not onnx_name:
                continue
            value = results[i] if i < len(results) else None
            if value is None:
                raise ctx.error(f"output {i} ({onnx_name!r}) is not supported")
            if not value:
                raise ctx.error("misses a required input")
            if value in ctx.made and value not in renames:
                renames[value] = self.define(onnx_name)
            else:
                self.names[onnx_name] = value
        for old, new in renames.items():
            self.types[new] = self.types.pop(old)
            if old in self.constants:
                self.constants[new] = self.constants.pop(old)
        self.nodes.extend(rename(ctx.nodes, renames))

    def _outputs(self) -> list[str]:
        """The graph's outputs, under their ONNX names. An output that ONNX makes with
        Identity (or Dropout) gets its name by renaming the value it copies, or, where
        that value is an input or another output, by an explicit copy."""
        produced = {v for n in self.nodes for v in n.outputs}
        own = {self.own[o.name] for o in self.proto.output if o.name in self.own}
        outputs: list[str] = []
        renames: dict[str, str] = {}
        copies: list[Node] = []
        for o in self.proto.output:
            if o.name in self.own:
                outputs.append(self.own[o.name])
                continue
            value = self.resolve(o.name)
            value = renames.get(value, value)
            wanted = o.name if _LEGAL_NAME.fullmatch(o.name) else self.fresh(o.name)
            if value in self.constants:
                self.constants[wanted] = self.constants[value]
            elif value in produced and value not in own and value not in renames:
                renames[value] = wanted
            else:
                shape = self.types[value].shape
                copies.append(Node("reshape", (value,), (wanted,), {"shape": shape},
                                   f"{wanted}_copy"))
            self.types[wanted] = self.types[value]
            outputs.append(wanted)
        self.nodes = rename(self.nodes, renames) + copies
        return outputs


def _checked_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise ModelError(f"input_shapes gives {what} the shape {shape!r}, not a tuple") \
            from None
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0
           for d in dims):
        raise ModelError(f"input_shapes gives {what} the shape {shape!r}; sizes are "
                         "non-negative integers")
    return tuple(int(d) for d in dims)
