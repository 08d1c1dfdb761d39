"""A function run in an isolated child: its value, its exception, its crash, its hang."""

import time

import toy_templates as toy

from tilewise.autotune.measure.isolation import Outcome, run_isolated


def test_returns():
    out = run_isolated(toy.returns_square, (7,), timeout=30)
    assert out.outcome is Outcome.RETURNED and out.value == 49


def test_raises():
    out = run_isolated(toy.raises_value_error, (), timeout=30)
    assert out.outcome is Outcome.RAISED and out.message == "ValueError: boom"


def test_segfault_is_a_crash():
    out = run_isolated(toy.segfaults, (), timeout=30)
    assert out.outcome is Outcome.CRASHED and "SIGSEGV" in out.message


def test_hang_is_killed():
    run_isolated(toy.returns_square, (1,), timeout=30)  # warm the fork server
    start = time.perf_counter()
    out = run_isolated(toy.hangs, (), timeout=1.0)
    assert out.outcome is Outcome.TIMED_OUT
    assert time.perf_counter() - start < 10
