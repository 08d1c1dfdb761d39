"""Two or more compiled libraries of one zoo model, beside ONNX Runtime, round by round
in one process: for judging a change to the compiler on a machine whose readings swing.

    git stash && tilewise model compile mobilenet_v2 --threads 2 -o /tmp/before
    git stash pop && tilewise model compile mobilenet_v2 --threads 2 -o /tmp/after
    python benchmarks/paired_models.py /tmp/before /tmp/after [--rounds 9] [--profile]

Every directory must hold the same zoo model (its manifest's ``name``) compiled for the
same thread count; ONNX Runtime runs on that many threads. Each side is checked against
ONNX Runtime's outputs first; one that differs by more than 1e-3 of their scale stops
the run. Then each round times every side (the median of
``--repeat`` runs, tilewise by its native timer), 0.3 s apart. Printed: each side's
median over rounds, ``ORT/side`` (above 1: the side is faster), and each later side's
per-round ratio to the first. ``--profile`` adds the kernels whose median time differs
between the first and the last side by more than 20 us.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import tilewise as tw
from tilewise import models
from tilewise.model_bench import ort_session, random_feeds, relative_error, time_calls

PAUSE_S = 0.3
TOLERANCE = 1e-3  # relative to the outputs' scale, as `tilewise model bench` checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="compiled model directories")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    libs = {d: tw.load_model(d) for d in args.dirs}
    names = {lib.manifest["name"] for lib in libs.values()}
    targets = {lib.manifest["target"] for lib in libs.values()}
    if len(names) != 1 or len(targets) != 1:
        sys.exit(f"the directories hold different models or targets: {names} {targets}")
    (name,), (target,) = names, targets
    threads = int(target.split("-cores=")[1].split()[0]) if "-cores=" in target else 1
    first = next(iter(libs.values()))
    feeds = random_feeds(first.inputs)
    session = ort_session(models.build(name).SerializeToString(), threads)
    if session is None:
        sys.exit("ONNX Runtime is not installed (pip install onnxruntime)")
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                    strict=True))
    for d, lib in libs.items():
        err = relative_error(lib.run(feeds), want)
        if err > TOLERANCE:
            sys.exit(f"{d}: outputs differ from ONNX Runtime's by {err:.1e} of their scale")
        print(f"{d}: outputs match ONNX Runtime's to {err:.1e}")
    samples: dict[str, list[float]] = {d: [] for d in [*libs, "onnxruntime"]}
    for _ in range(args.rounds):
        for d, lib in libs.items():
            samples[d].append(lib.time(feeds, repeat=args.repeat).median)
            time.sleep(PAUSE_S)
        samples["onnxruntime"].append(
            time_calls(lambda: session.run(None, feeds), args.repeat))
        time.sleep(PAUSE_S)
    ort = statistics.median(samples["onnxruntime"])
    print(f"{name}, {threads} thread(s), median of {args.rounds} rounds; "
          f"onnxruntime {ort * 1e3:.2f} ms")
    base = samples[args.dirs[0]]
    for d in libs:
        ms = statistics.median(samples[d])
        ratios = [a / b for a, b in zip(samples[d], base, strict=True)]
        print(f"  {d}: {ms * 1e3:.2f} ms, ORT/side {ort / ms:.3f}, "
              f"per round / first: median {statistics.median(ratios):.3f} "
              f"[{', '.join(f'{r:.2f}' for r in ratios)}]")
    if args.profile and len(libs) > 1:
        a, b = libs[args.dirs[0]], libs[args.dirs[-1]]
        for pa, pb in zip(a.profile(feeds, rounds=7), b.profile(feeds, rounds=7),
                          strict=True):
            if abs(pa.seconds - pb.seconds) > 20e-6:
                print(f"  {pa.seconds * 1e3:7.3f} -> {pb.seconds * 1e3:7.3f} ms  {pa.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
