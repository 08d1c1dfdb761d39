"""Templates and tasks: a registry of schedule templates and the workloads that use them.

>>> @template("toy_add")
... def toy_add(cfg, n):
...     cfg.define_split("tile", n)
...     return None, []
>>> task = Task("toy_add", (64,), "c")
>>> len(task.config_space), task.key.to_json()["args"]
(7, [64])
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tilewise.autotune.space import ConfigEntity, ConfigSpace
from tilewise.errors import TuningError, UnknownTemplateError
from tilewise.target import Target

#: ``reference(*args)`` returns ``make(rng) -> (arrays, expected)``: ``arrays`` are the
#: kernel arguments in tensor order (outputs allocated), ``expected`` maps an argument
#: position to its NumPy result (a sequence aligns with the trailing arguments).
ReferenceFactory = Callable[..., Callable[[Any], tuple[Sequence[Any], Any]]]


@dataclass(frozen=True)
class Template:
    """A registered schedule template and what the tuner may ask of it.

    ``implements`` names another template that this one computes by other means, with
    the same arguments and the same tensors in the same order (a Winograd convolution
    for the direct one): dispatch of that template's name may pick this one
    (:func:`~tilewise.autotune.dispatch.dispatch`). ``applies(*args)`` says whether it
    computes those arguments (None: any); ``untuned_first(*args)`` whether, untuned,
    its fallback is the one to run rather than the other template's (None: never).

    ``targets`` names the target kinds its schedule is for (``"c"``; a GPU template's
    ``"cuda"``, ``"opencl"``).

    ``weights`` names the template's input tensors that hold weights: constants
    wherever its kernel runs in a model. Its stages that read only them are computed
    ahead, once, where a model is compiled, and the tuner times the kernel without them
    as well (:mod:`tilewise.schedule.weights`), so records rank kernels as models run them.

    ``version`` is stored with every record; bump it when a knob's meaning changes,
    so that records of the old meaning are reported, not dispatched. Adding or removing
    a knob or a value needs no bump: records are placed by their knob values, a knob
    added since taking its fallback choice (so make that what the template did before
    it) and a removed one fitting where the record chose its fallback then.
    """

    name: str
    func: Callable[..., tuple[Any, Sequence[Any]]]
    reference: ReferenceFactory | None = None
    flop: Callable[..., float] | None = None
    implements: str | None = None
    applies: Callable[..., bool] | None = None
    untuned_first: Callable[..., bool] | None = None
    version: int = 1
    weights: tuple[str, ...] = ()
    targets: tuple[str, ...] = ("c",)

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None
             ) -> tuple[Any, ...]:
        """``args`` and ``kwargs`` as the canonical positional arguments of a task: bound
        to the template's parameters with their defaults filled in, so that every way of
        asking (``gemm(512, 512, 512)``, ``dtype="float32"`` spelt out, the command's
        ``M=512 N=512 K=512``) makes one key. Numbers are converted as the parameters
        are annotated (an ``int`` given to a ``float`` parameter becomes a float)."""
        params = list(inspect.signature(self.func).parameters.values())[1:]  # drop cfg
        kwargs = {k: _plain(v) for k, v in (kwargs or {}).items()}
        try:
            bound = inspect.Signature(params).bind(*_freeze_args(args), **kwargs)
        except TypeError as err:
            takes = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                              for p in params)
            raise TuningError(f"template {self.name!r} takes ({takes}): {err}") from None
        bound.apply_defaults()
        out: list[Any] = []
        for p in params:
            value = bound.arguments.get(p.name, ())
            if p.kind is p.VAR_POSITIONAL:
                out.extend(value)
            elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                wants_float = p.annotation in (float, "float")
                is_int = isinstance(value, int) and not isinstance(value, bool)
                out.append(float(value) if wants_float and is_int else _one_if_same(p, value))
            # keyword-only parameters are not part of a task: it calls positionally
        return _freeze_args(out)

    @property
    def module(self) -> str:
        """Where the template is defined, so a fresh process can import (register) it."""
        return self.func.__module__


# The registry: written only by @template at import time, read by name.
_TEMPLATES: dict[str, Template] = {}


def template(
    name: str,
    reference: ReferenceFactory | None = None,
    flop: Callable[..., float] | None = None,
    *,
    implements: str | None = None,
    applies: Callable[..., bool] | None = None,
    untuned_first: Callable[..., bool] | None = None,
    version: int = 1,
    weights: Sequence[str] = (),
    targets: Sequence[str] = ("c",),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``f(cfg, *args) -> (schedule, tensors)`` under ``name``; the keywords
    are :class:`Template`'s."""
    if implements == name:
        raise UnknownTemplateError(f"template {name!r} cannot implement itself")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TuningError(f"template {name!r}: version must be a positive integer, "
                          f"got {version!r}")

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _TEMPLATES[name] = Template(name, func, reference, flop, implements, applies,
                                    untuned_first, version, tuple(weights), tuple(targets))
        return func

    return register


def get_template(name: str, module: str | None = None) -> Template:
    """The template registered as ``name``, importing ``module`` first if it is not yet."""
    if name not in _TEMPLATES and module is not None:
        importlib.import_module(module)
    try:
        return _TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(_TEMPLATES)) or "none"
        raise UnknownTemplateError(f"no template named {name!r} (registered: {known})") from None


def list_templates() -> list[Template]:
    return [_TEMPLATES[n] for n in sorted(_TEMPLATES)]


def implementations(name: str) -> list[Template]:
    """The template ``name`` and those registered as implementing it, by name."""
    first = get_template(name)
    return [first, *sorted((t for t in _TEMPLATES.values() if t.implements == name),
                           key=lambda t: t.name)]


def _one_if_same(param: inspect.Parameter, value: Any) -> Any:
    """A pair of equal numbers as one, for a parameter whose default is one number (a
    stride of ``(1, 1)`` is a stride of 1): one key for both spellings."""
    default = param.default
    if (isinstance(default, int) and not isinstance(default, bool)
            and isinstance(value, (tuple, list)) and value
            and all(isinstance(v, int) and not isinstance(v, bool) and v == value[0]
                    for v in value)):
        return value[0]
    return value


def _freeze_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_freeze_args(a) if isinstance(a, list | tuple) else _plain(a) for a in args)


def _plain(value: Any) -> Any:
    """A NumPy scalar (a shape read from an array) as the Python number it equals, so
    that it keys and serialises as one."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class TaskKey:
    """What identifies a workload in the database: template name, args, target string."""

    name: str
    args: tuple[Any, ...]
    target: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", _freeze_args(self.args))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": _thaw(self.args), "target": self.target}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TaskKey:
        return cls(obj["name"], tuple(obj["args"]), obj["target"])

    def canonical(self) -> str:
        """A stable string form, used as the database key."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


def _target_string(target: Any) -> str:
    """Normalise a target through the core's parser when it is available."""
    return str(Target.from_str(str(target)))


@dataclass(frozen=True)
class Task:
    """One workload of one template on one target; immutable and picklable."""

    name: str
    args: tuple[Any, ...]
    target: str = "c"
    template_module: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # A registered template's args are bound to its signature, so every way of
        # making a task has one key; an unregistered one (a key read back where its
        # template was never imported) keeps its args as stored.
        known = _TEMPLATES.get(self.name)
        args = known.bind(self.args) if known is not None else _freeze_args(self.args)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "target", _target_string(self.target))
        if self.template_module is None and known is not None:
            object.__setattr__(self, "template_module", known.module)

    @classmethod
    def from_key(cls, key: TaskKey) -> Task:
        return cls(key.name, key.args, key.target)

    @property
    def template(self) -> Template:
        return get_template(self.name, self.template_module)

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.name, self.args, self.target)

    @cached_property
    def config_space(self) -> ConfigSpace:
        space = ConfigSpace(Target.from_str(self.target))
        self.template.func(space, *self.args)
        return space

    def implementations(self) -> list[Task]:
        """This task and, on the same arguments and target, the tasks of every template
        implementing its own (:func:`implementations`) that computes those arguments."""
        self.template  # noqa: B018  (imports the template's module: it registers)
        return [self, *(Task(t.name, self.args, self.target, t.module)
                        for t in implementations(self.name)[1:]
                        if t.applies is None or t.applies(*self.args))]

    def instantiate(self, config: ConfigEntity) -> tuple[Any, Sequence[Any]]:
        """Run the template with ``config``: ``(schedule, tensors)``.

        Raises :class:`~tilewise.errors.InvalidConfigError` when the template rejects it.
        """
        return self.template.func(config.for_target(Target.from_str(self.target)), *self.args)

    def instantiate_best(self, context: Any = None) -> tuple[Any, Sequence[Any]]:
        """The schedule of the best record in ``context`` (default: the active
        :func:`~tilewise.autotune.dispatch.apply_history_best`), else the fallback."""
        from tilewise.autotune.dispatch import best_config  # dispatch builds on tasks

        return self.instantiate(best_config(self, context))

    @property
    def flop(self) -> float | None:
        """FLOPs of one run, from ``cfg.add_flop`` or the template's ``flop`` function."""
        if self.config_space.flop > 0:
            return self.config_space.flop
        if self.template.flop is not None:
            return float(self.template.flop(*self.args))
        return None

    def reference(self) -> Callable[[Any], tuple[Sequence[Any], Any]] | None:
        factory = self.template.reference
        return None if factory is None else factory(*self.args)

    def __getstate__(self) -> dict[str, Any]:
        # Drop the cached space: a child process rebuilds it if it needs.
        return {k: v for k, v in self.__dict__.items() if k != "config_space"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __str__(self) -> str:
        # Strings quoted, so that an empty epilogue still shows: conv2d_nchw(..., '').
        args = ", ".join(repr(a) if isinstance(a, str) else str(a) for a in self.args)
        return f"{self.name}({args}) @ {self.target}"
