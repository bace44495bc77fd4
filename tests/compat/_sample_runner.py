"""Run README samples with one SDK, in this process, and write what happened to a JSON file.

Usage: ``python _sample_runner.py SAMPLES_JSON official|ours RESULTS_JSON`` with ``COMPAT_BASE_URL``,
``MAGIC_HOUR_BASE_URL`` and ``API_TOKEN`` set (the emulator's). Both SDKs get the same code and the same
redirection to the emulator: the official client classes get ``base_url`` by default, this SDK reads
``MAGIC_HOUR_BASE_URL``; for this SDK the sample's ``magic_hour`` imports become ``magic_hour_async`` (the
README's migration step).
Each sample runs with a 60 s alarm; top-level ``await`` samples run inside ``asyncio.run``.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import sys
import textwrap
import warnings
from typing import Any

SAMPLE_TIMEOUT = 60


def _with_defaults(module: Any, **defaults: Any) -> None:
    """Give ``module.Client`` and ``module.AsyncClient`` these constructor defaults (the sample's own win)."""
    for name in ("Client", "AsyncClient"):
        original: Any = getattr(module, name)

        def init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            for key, value in defaults.items():
                kwargs.setdefault(key, value)
            __original.__init__(self, *args, **kwargs)

        setattr(module, name, type(name, (original,), {"__init__": init}))


def _prepare(code: str, sdk: str) -> str:
    if sdk == "ours":
        code = re.sub(r"\bmagic_hour\b", "magic_hour_async", code)
    if re.search(r"\bawait\b", code):
        code = "import asyncio\n\nasync def __sample__():\n" + textwrap.indent(code, "    ")
        code += "\n\nasyncio.run(__sample__())\n"
    return code


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError(f"the sample ran longer than {SAMPLE_TIMEOUT} s")


def main() -> None:
    samples_file, sdk, results_file = sys.argv[1:4]
    with open(samples_file, encoding="utf-8") as file:
        samples: list[dict[str, Any]] = json.load(file)
    if sdk == "official":
        import magic_hour

        _with_defaults(magic_hour, base_url=os.environ["COMPAT_BASE_URL"])
    else:
        import magic_hour_async

        # Polls as often as MAGIC_HOUR_POLL_INTERVAL makes the official SDK poll (the base URL comes from
        # MAGIC_HOUR_BASE_URL, which this SDK reads).
        fast = magic_hour_async.PollPolicy(initial=0.02, maximum=0.05)
        _with_defaults(magic_hour_async, poll=fast)
    warnings.simplefilter("ignore")  # deprecation notices are expected; only outcomes count
    signal.signal(signal.SIGALRM, _alarm)
    results: dict[str, str] = {}
    for sample in samples:
        code = _prepare(sample["code"], sdk)
        signal.alarm(SAMPLE_TIMEOUT)
        try:
            exec(compile(code, sample["name"], "exec"), {"__name__": "__sample__"})
            results[sample["name"]] = "ok"
        except BaseException as exc:
            results[sample["name"]] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            signal.alarm(0)
            gc.collect()
    with open(results_file, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
