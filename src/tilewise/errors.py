"""The exception tree: one root, one subclass per layer, so callers match on type."""


class TilewiseError(Exception):
    """Root of every error tilewise raises on purpose."""


class IRError(TilewiseError):
    """An ill-formed expression or statement (wrong dtype, bad operand)."""


class TensorError(TilewiseError):
    """An ill-formed tensor expression (bad shape, index arity, reduction use)."""


class ScheduleError(TilewiseError):
    """A schedule primitive that cannot apply (foreign axis, cycle, illegal annotation)."""


class LowerError(TilewiseError):
    """A schedule that cannot be lowered to loops (unbounded region, illegal attachment)."""


class CodegenError(TilewiseError):
    """Loop IR that the target language cannot express."""


class TargetError(TilewiseError):
    """An unknown or malformed target description."""


class BuildError(TilewiseError):
    """The system compiler rejected generated code, or it could not be loaded."""


class RuntimeCallError(TilewiseError):
    """A compiled kernel was called with arrays of the wrong shape, dtype or layout."""


class TuningError(TilewiseError):
    """Auto-tuning misuse: unknown template, bad config, unreadable database."""


class InvalidConfigError(TuningError):
    """A template rejects this config (an invalid combination of knob values)."""


class DatabaseFormatError(TuningError):
    """A tuning-database path that exists but is not a readable SQLite tuning database."""


class UnknownTemplateError(TuningError):
    """A task names a template that is not registered."""


class ModelError(TilewiseError):
    """A model that cannot be imported, compiled or run: an unsupported operator, a
    malformed file, inputs of the wrong name, shape or dtype."""
