"""``tilewise model``: compile a whole model into one native library and benchmark it.

    tilewise model compile resnet18 -o resnet18.tw
    tilewise model compile model.onnx --db tuning.db --input-shape input=1,3,224,224 -o out
    tilewise model bench resnet18 --threads 2 --profile
    tilewise model bench resnet18.tw

MODEL is an ONNX file, a zoo model's name (``tilewise.models.ZOO``) or, for ``bench``,
a directory written by ``compile``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cli_args import number, whole
from .errors import ModelError
from .target import Target


def _shapes(pairs: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    if not pairs:
        return None
    shapes = {}
    for pair in pairs:
        name, sep, dims = pair.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 1:
            raise ModelError(f"--input-shape {pair!r} must look like NAME=1,3,224,224")
        shapes[name] = shape
    return shapes


def _target(opts: argparse.Namespace) -> str:
    from .model import check_target

    target = opts.target
    if opts.threads is not None:
        if opts.threads < 1:
            raise ModelError(f"--threads must be at least 1, got {opts.threads}")
        if "-cores=" in opts.target:
            raise ModelError("give the cores either by --threads or by the target's -cores=")
        target = f"{opts.target} -cores={opts.threads}"
    check_target(target)  # before a model is read or tuned
    return target


def _onnx_model(model: str):
    """MODEL as an ONNX ModelProto: a file read, or a zoo model built."""
    if Path(model).exists():
        from .frontend import load_onnx

        return load_onnx(model)
    from . import models

    return models.build(model)


def _summary(compiled) -> str:
    m = compiled.manifest
    tuned = sum(k["tuned"] for k in m["kernels"])
    templates = sum(k["task"] is not None for k in m["kernels"])
    b = m.get("build", {})
    blocked = m.get("blocked_values", 0)
    return (f"{m['name']}: {len(m['kernels'])} kernels ({templates} from templates, {tuned} "
            f"tuned), {blocked} values between them in channel blocks, arena "
            f"{m['arena_bytes'] / 2**20:.1f} MiB (live peak "
            f"{m['peak_live_bytes'] / 2**20:.1f} MiB), weights {m['weights_bytes'] / 2**20:.1f}"
            f" MiB; built in {sum(b.values()):.1f} s")


def cmd_compile(opts: argparse.Namespace) -> int:
    from .model import compile_model

    compiled = compile_model(opts.model, db=opts.db, target=_target(opts),
                             input_shapes=_shapes(opts.input_shape),
                             templates=not opts.ignore_templates, layouts=not opts.nchw)
    out = compiled.export(opts.output)
    print(_summary(compiled))
    print(f"wrote {out}")
    return 0


def cmd_bench(opts: argparse.Namespace) -> int:
    from .model import compile_model, load_model
    from .model_bench import (
        bench_model,
        check_against_ort,
        ort_peer,
        ort_session,
        random_feeds,
        torch_peer,
    )

    shapes = _shapes(opts.input_shape)
    proto = None
    if Path(opts.model).is_dir():
        compiled = load_model(opts.model)
    else:
        proto = _onnx_model(opts.model)
        compiled = compile_model(proto, db=opts.db, target=_target(opts), input_shapes=shapes,
                                 templates=not opts.ignore_templates, layouts=not opts.nchw)
    threads = Target.from_str(compiled.manifest["target"]).cores
    feeds = random_feeds(compiled.inputs, seed=opts.seed)
    session = None
    if proto is not None and not opts.no_peer:
        session = ort_session(proto.SerializeToString(), threads)
    error, peers, notes = None, {}, []
    if session is not None:
        error = check_against_ort(compiled, session, feeds)
        if error > opts.tolerance:
            raise ModelError(f"outputs differ from ONNX Runtime's by {error:.2e} of their "
                             f"scale (tolerance {opts.tolerance:g}); not timing a wrong model")
        peers["onnxruntime"] = ort_peer(session, feeds)
        want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                        strict=True))
        pytorch = torch_peer(opts.model, proto, feeds, threads, want)
        if pytorch is None:
            from importlib.util import find_spec

            notes.append("PyTorch: not installed (pip install -e '.[torch]')"
                         if find_spec("torch") is None else
                         "PyTorch: runs only beside a zoo model")
        elif pytorch[1] > opts.tolerance:
            notes.append(f"PyTorch: not timed, its outputs differ from ONNX Runtime's by "
                         f"{pytorch[1]:.2e}")
        else:
            peers["pytorch"] = pytorch[0]
    result = bench_model(compiled, feeds, rounds=opts.rounds, peers=peers)
    result.max_error = error
    profile = compiled.profile(feeds) if opts.profile else []
    if opts.json:
        print(json.dumps({
            "model": compiled.manifest["name"], "threads": threads,
            "tilewise_ms": [t * 1e3 for t in result.tilewise],
            "peers_ms": {k: [t * 1e3 for t in v] for k, v in result.peers.items()},
            "max_error": error, "notes": notes, "arena_bytes": compiled.arena_bytes,
            "profile": [{"kernel": p.name, "label": p.label, "ms": p.seconds * 1e3}
                        for p in profile]}))
        return 0
    print(_summary(compiled))
    line = f"tilewise {result.median() * 1e3:.2f} ms"
    for peer in result.peers:
        line += (f", {peer} {result.median(peer) * 1e3:.2f} ms "
                 f"(tilewise {result.ratio(peer):.2f}x)")
    print(f"{threads} thread(s), median of {opts.rounds} rounds: {line}")
    if error is not None:
        print(f"outputs match ONNX Runtime's to {error:.1e} of their scale")
    for note in notes:
        print(f"note: {note}")
    if profile:
        total = sum(p.seconds for p in profile) or 1.0
        for p in sorted(profile, key=lambda p: -p.seconds):
            print(f"  {p.seconds * 1e3:8.3f} ms {100 * p.seconds / total:5.1f}%  {p.name}  "
                  f"{p.label}")
    return 0


def model_arguments(p: argparse.ArgumentParser, db_help: str, directory: bool = False
                    ) -> None:
    """The arguments every ``tilewise model`` verb takes: the model, its database,
    target, threads, input shapes and whether to ignore the operator templates."""
    p.add_argument("model", help="an .onnx file, a zoo model (resnet18, resnet50, "
                   "mobilenet_v2, bert_layer)" + (", or a compiled directory"
                                                  if directory else ""))
    p.add_argument("--db", help=db_help)
    p.add_argument("--target", default="c", help="target string (default: c, the host)")
    p.add_argument("--threads", type=whole(1, 1024), default=None,
                   help="cores to run on (the target's -cores=)")
    p.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...",
                   help="fix an input's symbolic dimensions")
    p.add_argument("--ignore-templates", action="store_true",
                   help="generate every kernel (convolutions, matrix products and pooling "
                   "too) instead of running the operator templates")
    p.add_argument("--nchw", action="store_true",
                   help="every convolution reads and writes NCHW (no layout planning: "
                   "values between convolutions are not kept in channel blocks)")


def add_model_parser(sub) -> None:
    model = sub.add_parser("model", help="compile and benchmark whole models")
    verbs = model.add_subparsers(dest="verb", required=True)
    for verb, func in (("compile", cmd_compile), ("bench", cmd_bench)):
        p = verbs.add_parser(verb, help=f"{verb} a model (ONNX file or zoo name)")
        model_arguments(p, "tuning database whose best configs to use",
                        directory=verb == "bench")
        p.set_defaults(func=func)
        if verb == "compile":
            p.add_argument("-o", "--output", required=True, help="directory to write")
        else:
            p.add_argument("--rounds", type=whole(1, 10**5), default=5)
            p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
            p.add_argument("--profile", action="store_true",
                           help="each kernel's share of the time")
            p.add_argument("--no-peer", action="store_true",
                           help="do not run ONNX Runtime or PyTorch (no check, no "
                           "comparison)")
            p.add_argument("--tolerance", type=number(0, 1), default=1e-3,
                           help="largest difference from ONNX Runtime's outputs, relative "
                           "to their scale (default 1e-3)")
            p.add_argument("--json", action="store_true")
    from .cli_model_tune import add_tune_parser

    add_tune_parser(verbs)
