"""``python -m magic_hour_async.testing``: serve the emulator until Ctrl-C."""

from ._serve import main

if __name__ == "__main__":
    raise SystemExit(main())
