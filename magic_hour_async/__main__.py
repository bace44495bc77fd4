"""``magic-hour-async`` / ``python -m magic_hour_async``: the command-line entry point (see ``_cli``)."""

from __future__ import annotations

import sys

from ._cli._main import main

if __name__ == "__main__":
    sys.exit(main())
