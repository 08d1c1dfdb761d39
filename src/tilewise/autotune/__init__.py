"""Auto-tuning: templates and config spaces, measurement, tuners, the tuning database
and dispatch of the best configs.

>>> from tilewise import autotune as at
>>> at.Task                                                       # doctest: +ELLIPSIS
<class '...Task'>
"""

from tilewise.autotune.database import Database, default_database_path
from tilewise.autotune.dispatch import (
    FallbackConfigWarning,
    HistoryBest,
    apply_history_best,
    best_implementation,
    dispatch,
)
from tilewise.autotune.knob_features import FeatureExtractor, KnobFeatureExtractor
from tilewise.autotune.knobs import (
    AnnotateEntity,
    OtherOptionEntity,
    ReorderEntity,
    SplitEntity,
)
from tilewise.autotune.measure import (
    FakeBuilder,
    FakeFarmRunner,
    FakeRunner,
    LocalBuilder,
    LocalRunner,
    MeasureOption,
    ReplayRunner,
    measure_option,
)
from tilewise.autotune.placement import Orphan, StaleRecordsWarning
from tilewise.autotune.record import (
    BuildResult,
    ErrorKind,
    MeasureInput,
    MeasureResult,
    Record,
)
from tilewise.autotune.space import ConfigEntity, ConfigSpace
from tilewise.autotune.task import (
    Task,
    TaskKey,
    get_template,
    implementations,
    list_templates,
    template,
)
from tilewise.autotune.tuners import (
    CostModel,
    GATuner,
    GridSearchTuner,
    LightGBMCostModel,
    ModelTuner,
    RandomTuner,
    Tuner,
    TuneSummary,
)

__all__ = [
    "AnnotateEntity",
    "BuildResult",
    "ConfigEntity",
    "ConfigSpace",
    "CostModel",
    "Database",
    "ErrorKind",
    "FakeBuilder",
    "FakeFarmRunner",
    "FakeRunner",
    "FallbackConfigWarning",
    "FeatureExtractor",
    "GATuner",
    "GridSearchTuner",
    "HistoryBest",
    "KnobFeatureExtractor",
    "LightGBMCostModel",
    "LocalBuilder",
    "LocalRunner",
    "MeasureInput",
    "MeasureOption",
    "MeasureResult",
    "ModelTuner",
    "Orphan",
    "OtherOptionEntity",
    "RandomTuner",
    "Record",
    "ReorderEntity",
    "ReplayRunner",
    "SplitEntity",
    "StaleRecordsWarning",
    "Task",
    "TaskKey",
    "TuneSummary",
    "Tuner",
    "apply_history_best",
    "best_implementation",
    "default_database_path",
    "dispatch",
    "get_template",
    "implementations",
    "list_templates",
    "measure_option",
    "template",
]
