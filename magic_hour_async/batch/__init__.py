"""Durable batches: a journal that never loses a paid render and never pays twice.

```python
from magic_hour_async import AsyncClient
from magic_hour_async.batch import Batch

async with AsyncClient() as client, Batch(client, "renders.db") as batch:
    await batch.add("tile-1", "photo-colorizer", {"assets": {"image_file_path": "tile-1.jpg"}})
    async for job in batch.run(concurrency=8, max_credits=5_000, download_directory="out"):
        print(job.key, job.state, job.project_id, job.credits_charged, job.paths)
```

The journal is an SQLite file for one process, or a PostgreSQL database (``postgresql://...``, extra
``magic-hour-async[postgres]``) for a fleet of workers. See the README's "Durable batches".
"""

from ._batch import Batch
from ._jobs import STATES, BatchStatus, Job, JobState
from ._journal import Journal, Totals
from ._postgres import PostgresJournal
from ._pricing import worst_case_credits
from ._sqlite import SQLiteJournal

__all__ = [
    "Batch",
    "BatchStatus",
    "Job",
    "JobState",
    "Journal",
    "PostgresJournal",
    "SQLiteJournal",
    "STATES",
    "Totals",
    "worst_case_credits",
]


def _adopt_public_names() -> None:
    """Public classes and functions report this package as their home (reprs, docs, pickles)."""
    import inspect

    for name in __all__:
        obj = globals()[name]
        own = getattr(obj, "__module__", "").startswith(__name__ + ".")
        if own and (isinstance(obj, type) or inspect.isfunction(obj)):
            obj.__module__ = __name__


_adopt_public_names()
