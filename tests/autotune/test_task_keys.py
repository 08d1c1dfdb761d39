"""One key per task however it is asked for (the command, Python with or without its
defaulted arguments, the model importer), and targets that keep machines apart."""

import json
import warnings

import numpy as np
import pytest

import tilewise.ops  # noqa: F401  (registers the operator templates)
from tilewise.autotune import (
    Database,
    FakeBuilder,
    FakeRunner,
    FallbackConfigWarning,
    MeasureOption,
    RandomTuner,
    Task,
    TaskKey,
    apply_history_best,
    dispatch,
)
from tilewise.autotune.migration import legacy_keys
from tilewise.cli import main, parse_op_args
from tilewise.errors import TargetError, TuningError
from tilewise.target import Target, isa_features

GEMM = (24, 16, 8)


def test_defaults_are_filled_in_however_the_args_are_spelt():
    key = Task("gemm", parse_op_args("gemm", ["M=24", "N=16", "K=8"])).key
    assert key.args == (*GEMM, "float32")
    assert Task("gemm", GEMM).key == key
    assert Task("gemm", (np.int64(24), np.int32(16), 8)).key == key
    assert json.loads(key.canonical())["args"] == [*GEMM, "float32"]
    # a float parameter given an int keys as the command's float
    assert Task("layer_norm", (8, 8, 1)).key == Task("layer_norm", (8, 8, 1.0)).key
    assert Task("layer_norm", (8, 8, np.int64(1))).key == Task("layer_norm", (8, 8, 1.0)).key
    assert legacy_keys(Task("gemm", GEMM)) == [TaskKey("gemm", GEMM, key.target)]


def test_a_pair_of_equal_numbers_keys_as_the_one_number():
    conv = (1, 8, 10, 10, 16, 3, 3)
    one = Task("conv2d_nchw", (*conv, 1, 1, 1)).key
    assert Task("conv2d_nchw", (*conv, (1, 1), [1, 1], (1, 1))).key == one
    assert Task("conv2d_nchw", (*conv, 1, 1, 1, "float32", "")).key == one
    uneven = Task("conv2d_nchw", (*conv, (1, 2), 1, 1)).key
    assert uneven != one and uneven.args[7] == (1, 2)


def test_args_that_do_not_fit_the_template_are_one_clear_error():
    takes = r"template 'gemm' takes \(M, N, K, dtype='float32'\): missing"
    with pytest.raises(TuningError, match=takes):
        Task("gemm", (1, 2))
    with pytest.raises(TuningError, match="unexpected keyword argument 'Q'"):
        dispatch("gemm", 8, 8, 8, Q=1)


def tune_in_python(db, task):
    option = MeasureOption(FakeBuilder(), FakeRunner(lambda c: 1e-3 + 1e-6 * (c.index % 97)))
    RandomTuner(task, 0).tune(6, option, database=db)


def test_python_keyword_and_positional_dispatch_find_one_record(tmp_path):
    db = Database(tmp_path / "t.db")
    tune_in_python(db, Task("gemm", (*GEMM, "float32")))
    best = db.best(Task("gemm", GEMM)).config
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackConfigWarning)
        with apply_history_best(db):
            for _, tensors in (dispatch("gemm", *GEMM), dispatch("gemm", *GEMM, "float32"),
                               dispatch("gemm", 24, 16, K=8, dtype="float32")):
                assert len(tensors) == 3
        chosen = apply_history_best(db).query(Task("gemm", GEMM))
    assert chosen == best


def test_the_model_importer_keys_as_python_does():
    models = pytest.importorskip("tilewise.models")
    import tilewise as tw

    tasks = tw.extract_tasks(models.build("resnet18", image=32), target="c -cores=2")
    dense = next(t for t, _ in tasks if t.name == "dense")
    assert dense.key == Task("dense", (1, 1000, 512, "bias"), "c -cores=2").key
    pool = next(t for t, _ in tasks if t.name == "max_pool2d")
    assert pool.key == Task("max_pool2d", (1, 64, 16, 16, 3, 3, 2, 1), "c -cores=2").key


@pytest.mark.compiles
def test_a_record_of_the_command_is_found_by_python_and_the_other_way_round(capsys,
                                                                           tmp_path):
    db_path = str(tmp_path / "t.db")
    args = ["M=24", "N=16", "K=8", "--db", db_path, "--json", "--tuner", "random"]
    assert main(["tune", "gemm", *args, "--trials", "2"]) == 0
    tuned = json.loads(capsys.readouterr().out)
    db = Database(db_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackConfigWarning)
        with apply_history_best(db) as ctx:
            dispatch("gemm", *GEMM)
            config = ctx.query(Task("gemm", GEMM))
    assert config.to_json()["entities"] == tuned["best_config"]["entities"]

    other = Database(tmp_path / "python.db")
    tune_in_python(other, Task("gemm", GEMM))
    measured = len(other.records(Task("gemm", GEMM)))
    other.close()
    args[args.index(db_path)] = str(tmp_path / "python.db")
    assert main(["tune", "gemm", *args, "--trials", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == measured


# -- targets -------------------------------------------------------------------------

AVX2 = "c -cores=2 -isa=avx2 -l1=32K -l2=1M -line=64 -fma-per-cycle=2 -libmvec=1"
AVX512 = AVX2.replace("avx2", "avx512")


def test_a_target_string_names_the_machine_and_round_trips():
    t = Target.from_str(AVX512)
    assert (t.isa, t.vector_bits, t.cores, t.l1_bytes, t.l2_bytes) == (
        "avx512", 512, 2, 32 * 1024, 1024 * 1024)
    assert {"avx2", "fma", "avx512f"} <= t.features and Target.from_str(str(t)) == t
    assert Target.from_str(AVX2 + " -vector-bits=128").vector_bits == 128
    host = Target.from_str("c")
    assert Target.from_str(str(host)) == host and host.features == isa_features(host.isa)
    assert Task("gemm", GEMM, "c").target == str(host)
    with pytest.raises(TargetError, match="unknown ISA level 'avx9'"):
        Target.from_str("c -isa=avx9")
    with pytest.raises(TargetError, match="-l2 must be a size"):
        Target.from_str("c -l2=big")
    with pytest.raises(TargetError, match=r"unknown target option\(s\) \['arch'\] for c"):
        Target.from_str("c -arch=sm_90")


def test_records_of_an_avx2_machine_are_not_an_avx512_machines(tmp_path):
    db = Database(tmp_path / "t.db")
    tune_in_python(db, Task("gemm", GEMM, AVX2))
    assert db.best(Task("gemm", GEMM, AVX2)) is not None
    assert db.best(Task("gemm", GEMM, AVX512)) is None
    with apply_history_best(db), pytest.warns(FallbackConfigWarning):
        dispatch("gemm", *GEMM, target=AVX512)


def test_a_key_of_0_1_takes_the_hosts_target_where_its_description_is_the_hosts():
    host = Target.from_str("c -cores=3")
    described = {**host.describe(), "target": "c -mcpu=native -cores=3"}
    assert Target.from_legacy("c -mcpu=native -cores=3", described) == host
    foreign = {"machine": "x86_64", "cpu": "Some Other CPU", "vector_bits": 256,
               "l1_bytes": 48 * 1024, "l2_bytes": 2 << 20, "fma_per_cycle": 2}
    old = Target.from_legacy("c -mcpu=native -cores=4", foreign)
    assert (old.isa, old.vector_bits, old.cores, old.l1_bytes, old.l2_bytes) == (
        "avx2", 256, 4, 48 * 1024, 2 << 20)
