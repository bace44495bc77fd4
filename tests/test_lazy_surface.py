"""``import magic_hour_async`` and ``AsyncClient()`` load only what a client needs to exist.

Resources load on first attribute access (``cached_property`` importing the module, openai-python's
pattern), the blocking facade on first use of ``Client``, models and cattrs at the first decode. Each check
runs in a fresh interpreter, where ``sys.modules`` shows exactly what was imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import magic_hour_async as mh
client = mh.AsyncClient(token="mhk_lazy")
before = sorted(m for m in sys.modules if m.startswith(("magic_hour_async", "cattrs")))
tool = client.v1.ai_image_generator
after_tool = sorted(m for m in sys.modules if m.startswith("magic_hour_async._generated."))
Client = mh.Client
after_client = "magic_hour_async._sync" in sys.modules
print(json.dumps({"before": before, "after_tool": after_tool, "after_client": after_client,
                  "same": client.v1.ai_image_generator is tool, "home": Client.__module__}))
"""


def _probe() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_import_and_construction_load_no_resource_no_facade_no_cattrs() -> None:
    result = _probe()
    before = result["before"]
    assert isinstance(before, list)
    assert not [m for m in before if m.startswith("magic_hour_async._generated.")]
    assert not [m for m in before if m.startswith(("magic_hour_async._sync", "cattrs"))]
    assert "magic_hour_async._models" not in before and "magic_hour_async._transfers._parts" not in before
    assert "magic_hour_async._polling._scheduler" not in before  # made by the first wait


def test_the_scheduler_is_made_by_the_first_wait_and_a_closed_client_refuses_waits() -> None:
    code = """
import asyncio, sys
import magic_hour_async as mh

async def main():
    client = mh.AsyncClient(token="mhk_lazy", base_url="http://127.0.0.1:9")
    stats = client.poll_stats  # reading counters makes the scheduler: nothing was sent
    loaded = "magic_hour_async._polling._scheduler" in sys.modules
    await client.close()
    try:
        await client.v1.video_projects.wait(id="p1", timeout=1)
    except mh.ClientClosedError:
        refused = True
    print(stats.polls_sent, loaded, refused, type(mh.PollEvent).__name__, mh.SchedulerStats.__module__)

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "True", "True", "type", "magic_hour_async"]


def test_a_resource_loads_its_module_on_first_access_and_is_cached() -> None:
    result = _probe()
    assert result["after_tool"] == ["magic_hour_async._generated.ai_image_generator"]
    assert result["same"] is True
    assert result["after_client"] is True and result["home"] == "magic_hour_async"


def test_lazy_names_are_listed_and_resolve() -> None:
    import magic_hour_async as mh

    assert {"Client", "VideoProject", "TransferProgress"} <= set(dir(mh))
    assert mh.VideoProject.__module__ == "magic_hour_async"
