"""The compiled module: calling, .source, time_evaluator, the on-disk cache."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.errors import BuildError, RuntimeCallError, TargetError
from tilewise.runtime import TimingResult
from tilewise.runtime.module import calls_per_repeat
from tw_testing import matmul, rand


@pytest.fixture(scope="module")
def mm():
    A, B, C = matmul(16, 8, 12)
    s = te.create_schedule(C.op)
    return s, [A, B, C], tw.build(s, [A, B, C], name="mm_rt")


def test_call_and_source(mm):
    s, args, mod = mm
    a, b = rand((16, 8), seed=1), rand((8, 12), seed=2)
    c = np.zeros((16, 12), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    assert "void mm_rt(float* restrict A, float* restrict B, float* restrict C)" in mod.source


def test_time_evaluator(mm):
    s, args, mod = mm
    arrays = (rand((16, 8)), rand((8, 12)), np.zeros((16, 12), "float32"))
    res = mod.time_evaluator(number=3, repeat=4)(*arrays)
    assert isinstance(res, TimingResult)
    assert len(res.results) == 4 and all(t > 0 for t in res.results)
    assert min(res.results) <= res.median <= max(res.results)
    assert res.mean > 0
    res2 = mod.time_evaluator(number=1, repeat=2, min_repeat_ms=2)(*arrays)
    assert len(res2.results) == 2
    assert all(t > 0 for t in res2.results)
    cold = mod.time_evaluator(number=2, repeat=3, warmup=False)(*arrays)
    assert len(cold.results) == 3 and all(t > 0 for t in cold.results)
    with pytest.raises(RuntimeCallError, match="number and repeat"):
        mod.time_evaluator(number=0)


def test_cache_hit_and_location(mm):
    s, args, mod = mm
    art = tw.build_artifact(s, args, name="mm_rt")
    assert art.so_path == mod.artifact.so_path
    assert art.compile_s == 0.0  # the second build is a cache hit
    assert art.so_path.startswith(os.environ["TILEWISE_CACHE_DIR"])
    assert pickle.loads(pickle.dumps(art)) == art


def test_load_module_from_artifact(mm):
    s, args, mod = mm
    mod2 = tw.load_module(mod.artifact)
    a, b = rand((16, 8), seed=3), rand((8, 12), seed=4)
    c = np.zeros((16, 12), "float32")
    mod2(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_read_only_output_rejected(mm):
    s, args, mod = mm
    c = np.zeros((16, 12), "float32")
    c.flags.writeable = False
    with pytest.raises(RuntimeCallError, match="argument C: array must be writeable"):
        mod(rand((16, 8)), rand((8, 12)), c)


def test_bad_compiler_flag_is_build_error(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    A = te.placeholder((4,), name="A")
    B = te.compute((4,), lambda i: A[i] + 3.0, name="B")
    s = te.create_schedule(B.op)
    with pytest.raises(BuildError):
        tw.build(s, [A, B], name="cc_missing")


def test_target_parsing():
    t = tw.Target.from_str("c -mcpu=x86-64 -cores=3")
    assert t.cores == 3 and str(t).startswith("c -mcpu=x86-64 -cores=3 -isa=")
    assert tw.Target.from_str(str(t)) == t
    with pytest.raises(TargetError, match="unknown target kind"):
        tw.Target.from_str("fpga")
    with pytest.raises(TargetError, match="-cores"):
        tw.Target.from_str("c -cores=0")


def test_calls_per_repeat_fill_min_repeat_ms():
    # A 0.17 s call fills 20 ms alone; a 2.5 ms call needs 9 (8 would last exactly 20 ms).
    assert calls_per_repeat(1, 20, 0.17) == 1
    assert calls_per_repeat(1, 20, 0.0025) == 9
    assert calls_per_repeat(16, 20, 0.0025) == 16  # never fewer than asked
