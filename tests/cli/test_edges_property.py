"""Random arguments, to the command line and to the operator templates: every answer is
a result or one line with exit status 2 (a TilewiseError), never a traceback.

Nothing is compiled: ``tune`` measures with the fake builder and runner, and ``model``
stops where the model would be built or tuned. (Here, not in tests/property: that folder is
marked as compiling.)
"""

from __future__ import annotations

import contextlib
import inspect
import io
from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tilewise import autotune as at
from tilewise.autotune.measure.fake import FakeBuilder, FakeRunner
from tilewise.cli import _template_params, _templates, main
from tilewise.errors import TilewiseError

# A generous deadline: an example is a fraction of a second; one that takes ten is a
# hang (an extent's divisors counted one by one took minutes for 2**31).
SETTINGS = settings(max_examples=60, deadline=timedelta(seconds=10), derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

TEMPLATES = {name: t for name, t in _templates().items()
             if t.func.__module__.startswith("tilewise.ops")}

INTS = st.one_of(st.integers(-2, 40), st.sampled_from([0, 2**31 - 1, 10**12, -(10**9)]))
DTYPES = st.sampled_from(["float32", "float64", "float16", "int8", "int32", "bool",
                          "float13", "", "FLOAT32"])
EPILOGUES = st.one_of(st.sampled_from(["", "bias", "relu", "bias+relu", "gelu", "residual",
                                       "bias+bias", "nope", "+"]), st.text(max_size=6))


def _value(p: inspect.Parameter):
    """A strategy for a template argument, by its name, annotation or default."""
    if p.name == "dtype":
        return DTYPES
    if p.name == "epilogue":
        return EPILOGUES
    if p.annotation in (float, "float") or isinstance(p.default, float):
        return st.floats(allow_nan=True, allow_infinity=True)
    return INTS


@st.composite
def _template_call(draw):
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    params = _template_params(TEMPLATES[name].func)
    return name, tuple(draw(_value(p)) for p in params)


@settings(SETTINGS, max_examples=200)
@given(call=_template_call(), pick=st.integers(0, 2**62),
       target=st.sampled_from(["c", "c -cores=1 -isa=sse2", "cuda -arch=sm_80"]))
def test_templates_answer_any_arguments_with_a_tilewise_error(call, pick, target):
    name, args = call
    try:
        task = at.Task(name, args, target)
        task.flop  # noqa: B018
        task.implementations()
        space = task.config_space
        task.instantiate(space.get(pick % len(space)))
    except TilewiseError as err:
        assert str(err)


# -- the command line ------------------------------------------------------------------

class _Builder(FakeBuilder):
    def __init__(self, timeout: float = 10.0) -> None:
        super().__init__(n_parallel=2)

    def close(self, wait: bool = True) -> None:
        pass


def _runner(**_options):
    return FakeRunner(lambda cfg: 1e-3 * (1 + cfg.index % 7))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Paths a user might give: good, missing, uncreatable, junk, a directory."""
    onnx = pytest.importorskip("onnx")
    from tilewise import models

    root = tmp_path_factory.mktemp("edges")
    model = root / "small.onnx"
    onnx.save(models.build("mobilenet_v2", image=32), model)
    junk = root / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    lines = root / "records.jsonl"
    lines.write_text('{"not": "a record"}\n')
    return {"db": str(root / "t.db"), "missing": str(root / "none" / "x.db"),
            "uncreatable": "/proc/no/such/t.db", "junk": str(junk), "dir": str(root),
            "model": str(model), "lines": str(lines), "out": str(root / "out")}


def _mostly(valid, bad):
    """``valid``, or one time in six ``bad``: a command line holds one mistake or none,
    most of the time, so that the checks after the first are reached too."""
    return st.integers(0, 5).flatmap(lambda k: bad if k == 5 else valid)


def _count(valid=None):
    valid = st.integers(1, 3) if valid is None else valid
    bad = st.one_of(st.integers(-2, 0), st.sampled_from([10**7, 2**70])).map(str) | \
        st.sampled_from(["x", "1.5", "", "nan", "inf"])
    return _mostly(valid.map(str), bad)


def _seconds(valid=None):
    valid = st.sampled_from(["0.5", "2", "10"]) if valid is None else valid
    bad = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["0", "x", "-1", "1e300"]))
    return _mostly(valid, bad)


@st.composite
def _tune_argv(draw, files):
    op = draw(_mostly(st.sampled_from(sorted(TEMPLATES)), st.just("nosuchop")))
    argv = ["tune", op]
    params = _template_params(TEMPLATES[op].func) if op in TEMPLATES else []
    for p in params:
        if p.default is not inspect.Parameter.empty and draw(st.booleans()):
            continue  # its default
        if p.name in ("dtype", "epilogue") or p.annotation in (float, "float"):
            good = st.sampled_from([str(p.default)])
        elif p.name in ("pad",):
            good = st.integers(0, 2).map(str)
        else:
            good = st.integers(1, 12 if p.name not in "RS" else 4).map(str)
        bad = st.one_of(_value(p).map(str), st.just(None))  # None: leave it out
        value = draw(_mostly(good, bad))
        if value is not None:
            argv.append(f"{p.name}={value}")
    argv += draw(_mostly(st.just([]), st.sampled_from([["Q=1"], ["M64"], ["=3"]])))
    argv += ["--db", files[draw(_mostly(st.just("db"), st.sampled_from(
        ["missing", "uncreatable", "junk", "dir"])))]]
    argv += ["--trials", draw(_count(st.integers(1, 2)))]
    argv += ["--target", draw(_mostly(st.sampled_from(["c", "c -cores=2"]), st.sampled_from(
        ["cuda", "opencl", "c -cores=0", "c -cores=100000", "c -x"])))]
    argv += ["--confirm", "0", "--tuner", draw(st.sampled_from(["random", "grid", "ga"]))]
    for option, values in (("--repeat", _count()), ("--number", _count()),
                           ("--timeout", _seconds()),
                           ("--min-repeat-ms", _seconds(st.sampled_from(["0", "1"]))),
                           ("--seed", _count()), ("--early-stopping", _count()),
                           ("--confirm", _count(st.integers(0, 2)))):
        if draw(st.integers(0, 3)) == 0:
            argv += [option, draw(values)]
    if draw(st.integers(0, 5)) == 0:
        argv.append("--implementations")
    return argv


@st.composite
def _other_argv(draw, files):
    f = {k: files[k] for k in ("db", "missing", "uncreatable", "junk", "dir", "lines")}
    verb = draw(st.sampled_from(["best", "export", "import", "plot", "ops", "nosuch"]))
    argv = [verb, "--db", draw(st.sampled_from(list(f.values())))]
    if verb == "export":  # anywhere but over the database the other examples use
        argv.append(draw(st.sampled_from([files[k] for k in ("out", "missing", "dir")])))
    if verb == "import":
        argv.append(draw(st.sampled_from(list(f.values()))))
    if verb == "plot":
        argv += ["-o", draw(st.sampled_from([files["out"] + ".png", "/proc/no/x.png"]))]
    return argv


@st.composite
def _model_argv(draw, files):
    verb = draw(st.sampled_from(["compile", "bench", "tune"]))
    model = draw(_mostly(st.just(files["model"]), st.sampled_from(
        [files["junk"], files["dir"], files["missing"], "no_such_zoo_model"])))
    argv = ["model", verb, model]
    if verb == "compile":
        argv += ["-o", draw(_mostly(st.just(files["out"]), st.just("/proc/no/out")))]
    if draw(st.booleans()):
        argv += ["--threads", draw(_count())]
    if draw(st.booleans()):
        argv += ["--target", draw(_mostly(st.just("c"), st.sampled_from(
            ["cuda", "c -cores=100000", "c -q"])))]
    if draw(st.booleans()):
        argv += ["--db", draw(_mostly(st.just(files["db"]), st.sampled_from(
            [files["junk"], files["missing"]])))]
    if draw(st.booleans()):
        shape = draw(_mostly(st.just("input=1,3,32,32"), st.sampled_from(
            ["input=1,3,64,64", "input=0,3", "nosuch=1,3,32,32", "input=", "x", "input=9" * 3])))
        argv += ["--input-shape", shape]
    if verb == "bench":
        for option, values in (("--rounds", _count()), ("--seed", _count()),
                               ("--tolerance", _seconds(st.just("0.001")))):
            if draw(st.booleans()):
                argv += [option, draw(values)]
        argv.append("--no-peer")
    if verb == "tune":
        for option, values in (("--trials", _count()), ("--seed", _count()),
                               ("--time-budget", _seconds())):
            if draw(st.booleans()):
                argv += [option, draw(values)]
    return argv


class _Built(Exception):
    """Raised where the model would be compiled: every check before it has passed."""


def _run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except _Built:
            return 0, ""
    return code, err.getvalue()


def _check(argv):
    with mock.patch.object(at, "LocalBuilder", _Builder), \
            mock.patch.object(at, "LocalRunner", _runner), \
            mock.patch("tilewise.graph.library.build_model", side_effect=_Built), \
            mock.patch("tilewise.model_tune.tune_model", side_effect=_Built):
        code, err = _run(argv)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_command_line_property(files):
    """Random ``tune``, other commands and ``model`` command lines (one test, so
    that the files are made once)."""

    @settings(SETTINGS, max_examples=100)
    @given(argv=st.one_of(_tune_argv(files), _other_argv(files), _model_argv(files)))
    def check(argv):
        _check(argv)

    check()


def test_the_fakes_are_what_the_command_measures_with(files):
    """The property above tunes for real through the command, only measured by fakes."""
    argv = ["tune", "gemm", "M=8", "N=8", "K=8", "--trials", "2", "--db", files["db"],
            "--tuner", "random", "--confirm", "0"]
    with mock.patch.object(at, "LocalBuilder", _Builder), \
            mock.patch.object(at, "LocalRunner", _runner):
        code, err = _run(argv)
    assert code == 0, err
