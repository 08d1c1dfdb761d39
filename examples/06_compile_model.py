"""Tutorial 6: a whole model into one native library, checked against ONNX Runtime,
timed, profiled, exported and loaded back.

    python examples/06_compile_model.py [--model resnet18] [--image 224] [--threads 2]

The model comes from the zoo in code (``tilewise.models``: ResNet-18/50, MobileNetV2, a
BERT encoder layer, seeded random weights); any ``.onnx`` file compiles the same way.
"""

import argparse
import tempfile

import numpy as np

import tilewise as tw
from tilewise import models


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18", choices=sorted(models.ZOO))
    ap.add_argument("--image", type=int, default=224, help="input size of the CNNs")
    ap.add_argument("--threads", type=int, default=2)
    opts = ap.parse_args()
    kwargs = {} if opts.model == "bert_layer" else {"image": opts.image}
    onnx_model = models.build(opts.model, **kwargs)
    feeds = models.example_inputs(onnx_model)

    # import, optimise, fuse, pack the weights, plan the memory, compile, link, load
    compiled = tw.compile_model(onnx_model, target=f"c -cores={opts.threads}")
    print(f"{len(compiled.kernels)} kernels, arena {compiled.arena_bytes / 2**20:.1f} MiB, "
          f"weights {compiled.weights_bytes / 2**20:.1f} MiB")
    for k in compiled.kernels[:4]:
        print("  ", k["name"], k["label"])

    outputs = compiled.run(feeds)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: outputs not checked")
    else:
        sess = ort.InferenceSession(onnx_model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        for name, want in zip(names, sess.run(None, feeds), strict=True):
            err = np.abs(outputs[name] - want).max() / np.abs(want).max()
            print(f"{name}: {err:.1e} of the scale from ONNX Runtime's")
            assert err < 1e-3

    ms = compiled.time(feeds, repeat=5).median * 1e3
    print(f"{ms:.2f} ms per run on {opts.threads} thread(s)")
    slowest = sorted(compiled.profile(feeds, rounds=3), key=lambda p: -p.seconds)[:3]
    for p in slowest:
        print(f"  {p.seconds * 1e3:.3f} ms  {p.label}")

    with tempfile.TemporaryDirectory() as d:
        compiled.export(d)
        again = tw.load_model(d).run(feeds)
        assert all(np.array_equal(again[k], outputs[k]) for k in outputs)
        print(f"exported to and loaded back from {d}: same outputs")


if __name__ == "__main__":
    main()
