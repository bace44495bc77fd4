"""``magic-hour-async`` / ``python -m magic_hour_async``: the command-line entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["demo"]:
        print("The offline demo arrives with the CLI; run `nox -s tests` to see the SDK against the emulator.")
        return 0
    print("usage: magic-hour-async demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
