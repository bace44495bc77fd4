"""A local emulator of the Magic Hour API, for testing integrations without spending credits.

```python
from magic_hour_async.testing import Emulator, ManualClock

clock = ManualClock()
async with Emulator(seed=1, clock=clock) as emu:          # or: with Emulator() as emu (background thread)
    project_id = emu.create_project("video", duration=10)  # or POST /v1/face-swap through a client
    clock.advance(10)                                      # now complete, with signed download URLs
    emu.faults.add(route="GET /v1/video-projects/{id}", status=503, times=2)
    emu.webhooks.configure("http://127.0.0.1:8080/webhooks/magic-hour", "whsec_test")  # signed webhooks
```

Pytest fixtures (``magic_hour_emulator``, ``magic_hour_emulator_factory``, ``magic_hour_env``) are provided by
the plugin this package registers; ``python -m magic_hour_async.testing`` serves an emulator until Ctrl-C.

``set_testing(True)`` (also ``with set_testing(True): ...``) is the test switch, modelled on stamina's:
retries wait zero seconds and polls follow a compressed schedule, while every request sent stays the same.
The fixtures turn it on for the test that uses them.
"""

from .._test_mode import set_testing
from ._clock import Clock, ManualClock
from ._counters import Counters, RequestRecord
from ._emulator import DEFAULT_TOKEN, Emulator
from ._faults import Fault, Faults
from ._lifecycle import VideoInfo
from ._serve import serve
from ._state import UploadedFile
from ._throttle import RateLimit
from ._tools import TOOLS, Tool
from ._webhooks import DEFAULT_WEBHOOK_SECRET, WebhookAttempt, WebhookConfig, Webhooks, WebhookStats

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_WEBHOOK_SECRET",
    "TOOLS",
    "Clock",
    "Counters",
    "Emulator",
    "Fault",
    "Faults",
    "ManualClock",
    "RateLimit",
    "RequestRecord",
    "Tool",
    "UploadedFile",
    "VideoInfo",
    "WebhookAttempt",
    "WebhookConfig",
    "WebhookStats",
    "Webhooks",
    "serve",
    "set_testing",
]


def _adopt_public_names() -> None:
    # Present the re-exported names as part of this package (repr, docs, error messages).
    import inspect

    for name in __all__:
        obj = globals()[name]
        # Only our own classes and functions: on Python 3.10 ``Clock`` (a Callable alias) passes
        # isinstance(..., type) but its __module__ is read-only.
        own = getattr(obj, "__module__", "").startswith(__name__ + ".")
        if own and (isinstance(obj, type) or inspect.isfunction(obj)):
            obj.__module__ = __name__


_adopt_public_names()
del _adopt_public_names
