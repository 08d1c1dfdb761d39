"""Golden text for one printed loop IR and one generated C kernel.

Regenerate after an intended change with ``TILEWISE_REGEN_GOLDEN=1 pytest tests/lower``
and review the diff of tests/golden/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tilewise as tw
from tw_testing import register_tile_schedule

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
REGEN = os.environ.get("TILEWISE_REGEN_GOLDEN") == "1"


def _register_tile():
    return register_tile_schedule()


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pytest.skip(f"regenerated {path.name}")
    assert path.exists(), f"{path} missing; run with TILEWISE_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; if intended, regenerate (see module doc)"


def test_golden_lowered_ir():
    s, args = _register_tile()
    _check("matmul_register_tile.ir.txt", str(tw.lower(s, args, "mm")) + "\n")


def test_golden_generated_c():
    s, args = _register_tile()
    func = tw.lower(s, args, "mm")
    # a fixed target string: the source must not depend on the host running the test
    _check("matmul_register_tile.c", tw.generate_source(func, "c -mcpu=x86-64 -cores=2"))


def test_lowering_is_deterministic():
    s1, a1 = _register_tile()
    s2, a2 = _register_tile()
    assert str(tw.lower(s1, a1)) == str(tw.lower(s2, a2)) == str(tw.lower(s1, a1))
