"""Tuners: strategies that propose configs, all behind one contract (see ``base``)."""

from tilewise.autotune.tuners.base import Callback, Tuner, TuneSummary
from tilewise.autotune.tuners.cost_model import CostModel, LightGBMCostModel
from tilewise.autotune.tuners.ga_tuner import GATuner
from tilewise.autotune.tuners.grid_tuner import GridSearchTuner
from tilewise.autotune.tuners.model_tuner import ModelTuner
from tilewise.autotune.tuners.random_tuner import RandomTuner
from tilewise.autotune.tuners.sa import AnnealingOptions, anneal

__all__ = [
    "AnnealingOptions",
    "Callback",
    "CostModel",
    "GATuner",
    "GridSearchTuner",
    "LightGBMCostModel",
    "ModelTuner",
    "RandomTuner",
    "TuneSummary",
    "Tuner",
    "anneal",
]
