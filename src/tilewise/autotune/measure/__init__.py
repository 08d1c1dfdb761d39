"""Measurement: build candidates in parallel, run them one at a time in isolation."""

from tilewise.autotune.measure.builder import LocalBuilder
from tilewise.autotune.measure.fake import FakeBuilder, FakeFarmRunner, FakeRunner, ReplayRunner
from tilewise.autotune.measure.options import Builder, MeasureOption, Runner, measure_option
from tilewise.autotune.measure.runner import LocalRunner

__all__ = [
    "Builder",
    "FakeBuilder",
    "FakeFarmRunner",
    "FakeRunner",
    "LocalBuilder",
    "LocalRunner",
    "MeasureOption",
    "ReplayRunner",
    "Runner",
    "measure_option",
]
