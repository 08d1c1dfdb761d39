"""Templates and cost surfaces for the autotune tests; no compiler needed.

Kept in an importable module (not a test file) so child processes can register them.
"""

from __future__ import annotations

import ctypes
import math
import time

from tilewise.autotune import ConfigEntity, template
from tilewise.errors import InvalidConfigError


@template("toy_matmul", flop=lambda n, m: 2.0 * n * m * n)
def toy_matmul(cfg, n, m):
    """A schedule-free template: knobs on plain extents; returns the config itself."""
    cfg.define_split("tile_y", n, num_outputs=2)
    cfg.define_split("tile_x", m, num_outputs=3)
    cfg.define_knob("unroll", [0, 1, 2, 4])
    cfg.fallback_with(tile_y=[-1, 4], unroll=2)
    return cfg, []


@template("toy_matmul_alt", flop=lambda n, m: 2.0 * n * m * n, implements="toy_matmul",
          applies=lambda n, m: n == m, untuned_first=lambda n, m: n >= 256)
def toy_matmul_alt(cfg, n, m):
    """Another way to compute toy_matmul, for square ones only; it runs first untuned
    from n = 256 on. Its ``alt`` knob tells its configs from toy_matmul's."""
    cfg.define_knob("alt", [1, 2, 3, 4])
    cfg.fallback_with(alt=3)
    return cfg, []


def alt_cost(cfg: ConfigEntity) -> float:
    """What toy_matmul_alt builds costs: from 0.5 ms at alt=1 up."""
    return 1e-3 * (0.5 + 0.25 * (cfg["alt"].val - 1))


@template("toy_invalid")
def toy_invalid(cfg, n):
    """Rejects every config whose ``bad`` knob is true."""
    cfg.define_split("tile", n)
    cfg.define_knob("bad", [False, True])
    if cfg["bad"].val:
        raise InvalidConfigError("bad=True is not a valid combination")
    return cfg, []


@template("toy_flops")
def toy_flops(cfg, n):
    cfg.define_knob("k", [1, 2, 3])
    cfg.add_flop(2 * n)
    return cfg, []


@template("toy_paths")
def toy_paths(cfg, n):
    """Two paths; ``detail`` is read on the second only, as declared, so on the first
    the four configs that differ in it build one kernel (the template's result)."""
    cfg.define_knob("path", ["plain", "detailed"])
    cfg.define_knob("detail", [1, 2, 3, 4])
    cfg.define_knob("size", [n, 2 * n])
    cfg.conditional("detail", ("path",), lambda path: path == "detailed")
    kernel = (cfg["path"].val, cfg["size"].val)
    if cfg["path"].val == "detailed":
        kernel += (cfg["detail"].val,)
    return kernel, []


@template("toy_twins")
def toy_twins(cfg, n):
    """A larger toy_paths with refusals: ``detail`` (eight values) is read on the slow
    path only, so each fast kernel has eight configs; ``odd=3`` is refused, undeclared."""
    cfg.define_knob("path", ["fast", "slow"])
    cfg.define_knob("detail", list(range(8)))
    cfg.define_split("tile", n, num_outputs=2)
    cfg.define_knob("odd", [0, 1, 2, 3])
    cfg.conditional("detail", ("path",), lambda path: path == "slow")
    if cfg["odd"].val == 3:
        raise InvalidConfigError("odd=3 is refused")
    kernel = (cfg["path"].val, cfg["tile"].size[1], cfg["odd"].val)
    if cfg["path"].val == "slow":
        kernel += (cfg["detail"].val,)
    return kernel, []


def twins_cost(cfg: ConfigEntity) -> float:
    """What toy_twins builds costs: fast beats slow, a middle tile is best, and the larger
    ``odd`` the better, so a model that has not met odd=3 yet rates it as odd=2."""
    slow = cfg["path"].val == "slow"
    tile = math.log2(cfg["tile"].size[1])
    detail = cfg["detail"].val if slow else 0
    return 1e-3 * (1 + 4 * slow + 0.1 * detail + (tile - 3) ** 2 + 2 - cfg["odd"].val)


def paths_cost(cfg: ConfigEntity) -> float:
    """What toy_paths builds costs: the plain path reads no detail."""
    detail = cfg["detail"].val if cfg["path"].val == "detailed" else 0
    return 1e-3 * (1 + detail + cfg["size"].val)


def bowl_cost(cfg: ConfigEntity) -> float:
    """A smooth cost surface over toy_matmul(256, 256), unique minimum at
    tile_y=[-1, 16], tile_x=[-1, 8, 4], unroll=2."""
    y = math.log2(cfg["tile_y"].size[1])
    x1, x2 = (math.log2(f) for f in cfg["tile_x"].size[1:])
    u = [0, 1, 2, 4].index(cfg["unroll"].val)
    return 1e-3 * (
        1 + (y - 4) ** 2 + 0.5 * (x1 - 3) ** 2 + 0.7 * (x2 - 2) ** 2 + 0.3 * (u - 2) ** 2
    )


def slow_bowl_cost(cfg: ConfigEntity) -> float:
    time.sleep(0.02)
    return bowl_cost(cfg)


# -- functions for the isolation tests (picklable by reference) --------------------------
def returns_square(x: int) -> int:
    return x * x


def raises_value_error() -> None:
    raise ValueError("boom")


def segfaults() -> None:
    ctypes.string_at(0)


def hangs() -> None:
    time.sleep(600)
