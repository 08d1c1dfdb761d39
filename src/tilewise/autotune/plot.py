"""Tuning curves: best-so-far GFLOP/s against trial number, one line per task, from
a tuning database (Matplotlib is an optional extra). Tasks measured under an emulator
have no curve: their times are not speed."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import TuningError
from ..target import is_emulated
from .database import Database
from .task import Task


def best_so_far(db: Database, key) -> list[float]:  # type: ignore[no-untyped-def]
    """GFLOP/s of the best config after each trial, in measurement order."""
    try:
        flop = Task.from_key(key).flop or 0.0
    except Exception:  # noqa: BLE001 - an unregistered template still has a curve
        flop = 0.0
    best, out = math.inf, []
    for rec in sorted(db.records(key), key=lambda r: r.result.timestamp):
        if rec.result.ok:
            best = min(best, rec.result.mean)
        value = (flop / best / 1e9 if flop else 1.0 / best) if math.isfinite(best) else 0.0
        out.append(value)
    return out


def plot_tuning_curves(db: Database, output: str | Path) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TuningError("plotting needs matplotlib: pip install 'tilewise[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    n = 0
    for key in db.tasks():
        curve = [] if is_emulated(key.target) else best_so_far(db, key)
        if curve:
            label = f"{key.name}{tuple(key.args)}"
            ax.plot(range(1, len(curve) + 1), curve, label=label)
            n += 1
    ax.set_xlabel("trial")
    ax.set_ylabel("best GFLOP/s so far")
    ax.grid(alpha=0.3)
    if n:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return n
