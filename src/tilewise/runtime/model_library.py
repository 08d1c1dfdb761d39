"""A whole model as one native library: load it, run it with named arrays, time and
profile it in native code, export it and load it back.

A model library is three files: ``model.so`` (every kernel and the entry points that
run them in order), ``weights.bin`` (the constants, each on a cache line) and
``manifest.json`` (inputs, outputs, kernels, arena size). Loading needs NumPy and the C
runtime only: no compiler, no onnx, no torch, as TVM's exported libraries.

>>> model = load_model("resnet18.tw")
>>> out = model.run({"input": image})["output"]
"""

from __future__ import annotations

import ctypes
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .aligned import empty
from .module import TimingResult, calls_per_repeat, check_timing

FORMAT = 1
LIBRARY, WEIGHTS, MANIFEST = "model.so", "weights.bin", "manifest.json"

_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)


@dataclass(frozen=True)
class KernelProfile:
    """One kernel's share of a run: its label and median seconds per run."""

    name: str
    label: str
    seconds: float


class ModelLibrary:
    """A loaded model: ``model.run({"input": x})`` -> ``{"output": y}``.

    Calls run one at a time (activations live in one arena); the lock makes concurrent
    callers wait rather than share it.
    """

    def __init__(self, so_path: str | Path, manifest: dict[str, Any],
                 weights: np.ndarray) -> None:
        if manifest.get("format") != FORMAT:
            raise ModelError(f"model library format {manifest.get('format')!r}; this "
                             f"tilewise reads format {FORMAT}")
        self.manifest = manifest
        self.so_path = Path(so_path)
        self.weights = weights
        try:
            self._lib = ctypes.CDLL(str(self.so_path))
        except OSError as exc:
            raise ModelError(f"cannot load model library {self.so_path}: {exc}") from exc
        self._run = self._lib.tw_model_run
        self._run.argtypes = [_PP, _PP, _P, _P]
        self._run.restype = None
        self._time = self._lib.tw_model_time
        self._time.argtypes = [_PP, _PP, _P, _P, ctypes.c_int32, ctypes.c_int32,
                               ctypes.POINTER(ctypes.c_double)]
        self._time.restype = None
        self._profile = self._lib.tw_model_profile
        self._profile.argtypes = [_PP, _PP, _P, _P, ctypes.POINTER(ctypes.c_double)]
        self._profile.restype = None
        self.arena = empty((max(1, int(manifest["arena_bytes"])),), np.uint8)
        self._lock = threading.Lock()

    # ---- what it is --------------------------------------------------------

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return self.manifest["inputs"]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return self.manifest["outputs"]

    @property
    def kernels(self) -> list[dict[str, Any]]:
        return self.manifest["kernels"]

    @property
    def arena_bytes(self) -> int:
        """Bytes of the one buffer every intermediate activation lives in."""
        return int(self.manifest["arena_bytes"])

    @property
    def weights_bytes(self) -> int:
        return int(self.weights.nbytes)

    # ---- running -----------------------------------------------------------

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (input name -> array); returns output name -> array."""
        ins = self._inputs(feeds)
        outs = [empty(o["shape"], o["dtype"]) for o in self.outputs]
        in_ptrs, out_ptrs = _pointers(ins), _pointers(outs)
        with self._lock:
            self._run(in_ptrs, out_ptrs, _addr(self.arena), _addr(self.weights))
        for o, arr in zip(self.outputs, outs, strict=True):
            self._copy_out(o, ins, arr)
        return {o["name"]: arr for o, arr in zip(self.outputs, outs, strict=True)}

    def time(self, feeds: dict[str, np.ndarray], number: int = 1, repeat: int = 5,
             min_repeat_ms: float = 0) -> TimingResult:
        """Seconds per run of the whole model, timed in native code (one warm-up run)."""
        check_timing(number, repeat)
        ins = self._inputs(feeds)
        outs = [empty(o["shape"], o["dtype"]) for o in self.outputs]
        in_ptrs, out_ptrs = _pointers(ins), _pointers(outs)
        with self._lock:
            args = (in_ptrs, out_ptrs, _addr(self.arena), _addr(self.weights))
            if min_repeat_ms > 0:
                probe = (ctypes.c_double * 1)()
                self._time(*args, 1, 1, probe)
                number = calls_per_repeat(number, min_repeat_ms, probe[0])
            res = (ctypes.c_double * repeat)()
            self._time(*args, number, repeat, res)
        return TimingResult(tuple(res))

    def profile(self, feeds: dict[str, np.ndarray], rounds: int = 5) -> list[KernelProfile]:
        """Each kernel's median seconds over ``rounds`` runs, in run order."""
        check_timing(1, rounds)
        ins = self._inputs(feeds)
        outs = [empty(o["shape"], o["dtype"]) for o in self.outputs]
        in_ptrs, out_ptrs = _pointers(ins), _pointers(outs)
        n = len(self.kernels)
        samples = np.zeros((rounds, max(n, 1)))
        with self._lock:
            for r in range(rounds + 1):  # the first run warms up
                res = (ctypes.c_double * max(n, 1))()
                self._profile(in_ptrs, out_ptrs, _addr(self.arena), _addr(self.weights), res)
                if r:
                    samples[r - 1] = list(res)
        med = np.median(samples, axis=0)
        return [KernelProfile(k["name"], k["label"], float(med[i]))
                for i, k in enumerate(self.kernels)]

    def _inputs(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not isinstance(feeds, dict):
            raise ModelError(f"feeds must be a dict of input name -> array, not "
                             f"{type(feeds).__name__}")
        names = [i["name"] for i in self.inputs]
        unknown = sorted(set(feeds) - set(names))
        if unknown:
            raise ModelError(f"unknown input(s) {unknown}; the model's inputs are {names}")
        arrays = []
        for spec in self.inputs:
            name = spec["name"]
            if name not in feeds:
                raise ModelError(f"missing input {name!r} ({spec['dtype']}"
                                 f"{list(spec['shape'])}); the model's inputs are {names}")
            a = feeds[name]
            if not isinstance(a, np.ndarray):
                raise ModelError(f"input {name!r}: expected a NumPy array, got "
                                 f"{type(a).__name__}")
            if a.dtype != np.dtype(spec["dtype"]):
                raise ModelError(f"input {name!r}: dtype {a.dtype}, expected {spec['dtype']}")
            if a.shape != tuple(spec["shape"]):
                raise ModelError(f"input {name!r}: shape {a.shape}, expected "
                                 f"{tuple(spec['shape'])}")
            arrays.append(np.ascontiguousarray(a))
        return arrays

    def _copy_out(self, spec: dict[str, Any], ins: list[np.ndarray], arr: np.ndarray) -> None:
        """Outputs that no kernel writes: a model input or a constant passed through."""
        source = spec.get("source", {"kind": "kernel"})
        if source["kind"] == "input":
            arr[...] = ins[source["index"]].reshape(arr.shape)
        elif source["kind"] == "constant":
            start = source["offset"]
            raw = self.weights[start:start + arr.nbytes]
            arr[...] = raw.view(arr.dtype).reshape(arr.shape)

    # ---- files -------------------------------------------------------------

    def export(self, directory: str | Path) -> Path:
        """Write the library, its weights and its manifest into ``directory``."""
        out = Path(directory)
        try:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.so_path, out / LIBRARY)
            self.weights.tofile(out / WEIGHTS)
            (out / MANIFEST).write_text(json.dumps(self.manifest, indent=1) + "\n")
        except OSError as exc:
            raise ModelError(f"cannot export the model to {out}: {exc}") from exc
        return out


def load_model(directory: str | Path) -> ModelLibrary:
    """Load a model exported by :meth:`ModelLibrary.export`."""
    d = Path(directory)
    try:
        manifest = json.loads((d / MANIFEST).read_text())
        size = (d / WEIGHTS).stat().st_size
        if not isinstance(manifest, dict) or size != manifest.get("weights_bytes"):
            raise ModelError(f"{d}: weights.bin does not match manifest.json")
        weights = empty((size,), np.uint8)  # read in place: the weights are held once
        with open(d / WEIGHTS, "rb") as f:
            f.readinto(weights.data)
    except FileNotFoundError as exc:
        raise ModelError(f"{d} is not an exported tilewise model: {exc.filename} is "
                         "missing") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the exported model in {d}: {exc}") from None
    return ModelLibrary(d / LIBRARY, manifest, weights)


def _addr(a: np.ndarray) -> int:
    return a.ctypes.data


def _pointers(arrays: list[np.ndarray]) -> ctypes.Array:
    ptrs = (ctypes.c_void_p * max(1, len(arrays)))()
    for i, a in enumerate(arrays):
        ptrs[i] = a.ctypes.data
    return ptrs
