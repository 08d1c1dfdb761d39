"""Peak resident memory of running a model: tilewise's exported library (weights packed
at compile time, and kept as they are) beside ONNX Runtime, each in a fresh process.

    python benchmarks/memory.py                      # the zoo
    python benchmarks/memory.py --only resnet50 --threads 2

Each side runs in its own process: the peak resident set (VmHWM) after importing what
it needs (NumPy and tilewise, or onnxruntime) is the baseline; the figure is the peak after
loading the model and running it three times, minus that baseline. Beside it: the
weights' bytes, tilewise's arena (every activation, planned statically) and its
lower bound, the largest set of activations alive at once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# The high-water mark of this process's own memory: VmHWM (ru_maxrss keeps the
# parent's peak across fork and exec, so a child started by a big parent reads it).
_HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

_TILEWISE = _HWM + """
import sys, numpy as np, tilewise as tw
base = hwm()
m = tw.load_model(sys.argv[1])
feeds = {i["name"]: np.zeros(i["shape"], i["dtype"]) for i in m.inputs}
for _ in range(3):
    m.run(feeds)
print(hwm() - base)
"""

_ORT = _HWM + """
import sys, numpy as np, onnxruntime as ort
base = hwm()
opts = ort.SessionOptions(); opts.intra_op_num_threads = int(sys.argv[2])
s = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
         for i in s.get_inputs()}
for _ in range(3):
    s.run(None, feeds)
print(hwm() - base)
"""


def _peak(script: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[-1])


def main() -> None:
    import onnx

    import tilewise as tw
    from tilewise import models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(models.ZOO))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the rows here")
    opts = ap.parse_args()
    mib = 2.0 ** 20
    rows = []
    print(f"{'model':14s} {'weights':>8s} {'packed':>8s} {'arena':>7s} {'live':>7s} "
          f"{'tw peak':>8s} {'tw unpacked':>11s} {'ORT peak':>8s}   (MiB)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in opts.only.split(","):
            model = models.build(name)
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(model, path)
            raw = sum(onnx.numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
            row = {"model": name, "threads": opts.threads, "onnx_weights_bytes": raw}
            for packed in (True, False):
                compiled = tw.compile_model(model, target=f"c -cores={opts.threads}",
                                            pack_weights=packed)
                out = compiled.export(Path(tmp) / f"{name}-{packed}")
                key = "packed" if packed else "unpacked"
                row[f"{key}_weights_bytes"] = compiled.weights_bytes
                row[f"{key}_peak_bytes"] = _peak(_TILEWISE, str(out))
                row["arena_bytes"] = compiled.arena_bytes
                row["peak_live_bytes"] = compiled.manifest["peak_live_bytes"]
            row["ort_peak_bytes"] = _peak(_ORT, str(path), str(opts.threads))
            rows.append(row)
            print(f"{name:14s} {raw / mib:8.1f} {row['packed_weights_bytes'] / mib:8.1f} "
                  f"{row['arena_bytes'] / mib:7.1f} {row['peak_live_bytes'] / mib:7.1f} "
                  f"{row['packed_peak_bytes'] / mib:8.1f} {row['unpacked_peak_bytes'] / mib:11.1f} "
                  f"{row['ort_peak_bytes'] / mib:8.1f}", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
