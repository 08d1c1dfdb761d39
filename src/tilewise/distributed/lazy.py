"""Import Dask distributed on first use, so that tilewise runs without it and says how
to install it where a farm is asked for."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "the device farm needs Dask distributed: pip install 'tilewise[distributed]'"


def import_distributed() -> ModuleType:
    """The ``distributed`` package, or an ImportError that says how to get it."""
    try:
        import distributed
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return distributed
