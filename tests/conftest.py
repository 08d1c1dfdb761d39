"""Shared test setup: compiled kernels go to a per-session cache directory, and
tests that run the C compiler carry the ``compiles`` marker."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _kernel_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``TILEWISE_CACHE_DIR`` at a fresh directory for the whole session."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TILEWISE_CACHE_DIR", str(tmp_path_factory.mktemp("tw-cache")))
    yield
    mp.undo()


_COMPILING_DIRS = ("e2e", "property", "runtime")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e, tests/property and tests/runtime compiles C."""
    for item in items:
        parts = item.path.parts
        if "tests" in parts:
            sub = parts[parts.index("tests") + 1 :]
            if sub and sub[0] in _COMPILING_DIRS:
                item.add_marker(pytest.mark.compiles)
