"""tilewise: a learning-based auto-tuner for tensor operators.

>>> import tilewise as tw
>>> from tilewise import te
>>> A = te.placeholder((64, 64), "float32", name="A")
>>> B = te.compute((64, 64), lambda i, j: A[i, j] * 2, name="B")
>>> s = te.create_schedule(B.op)
>>> mod = tw.build(s, [A, B])
"""

from . import ir, te
from .driver import build, build_artifact, generate_source
from .errors import TilewiseError
from .lower import lower
from .model import CompiledModel, compile_model, extract_tasks, load_model
from .model_tune import tune_model
from .runtime import load_module
from .schedule import create_schedule
from .target import Target

__version__ = "0.1.0"

__all__ = [
    "ir", "te", "build", "build_artifact", "generate_source", "TilewiseError", "lower",
    "load_module", "create_schedule", "Target", "__version__", "CompiledModel",
    "compile_model", "extract_tasks", "load_model", "tune_model",
]
