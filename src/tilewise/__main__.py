"""``python -m tilewise``: the same as the ``tilewise`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
