"""The runtime under the blocking ``Client``: one event loop on one background thread per client.

``Client`` and its resources are generated (``tools/gen_sync.py``) as thin twins of the async classes; each
blocking method hands the async method to a :class:`Portal`, which runs it on the client's own loop and blocks
the calling thread until it finishes. Design points:

- **One loop, one thread, one session.** The ``AsyncClient`` is built on the portal's loop and only ever used
  there, so its aiohttp session never crosses loops. Calls may come from any thread, concurrently, including a
  thread that already runs an event loop (Jupyter, a coroutine inside ``asyncio.run``): the caller only waits
  on a ``threading.Event``, it never nests a loop.
- **Same exceptions.** What the coroutine raised is re-raised as the very same object, with the portal's own
  frames trimmed from the loop side of the traceback.
- **Ctrl-C.** ``KeyboardInterrupt`` reaches only the main thread, and only when it runs bytecode, so the main
  thread waits in short slices. On interrupt the task is cancelled on the loop and given a moment to unwind
  (closing its connection) before ``KeyboardInterrupt`` propagates.
- **Iterators.** An async iterator is driven one ``__anext__`` per ``next()``; closing or dropping the sync
  generator (``break``) closes the async one on the loop.
- **Shutdown.** :meth:`Portal.stop` cancels what is still running, awaits the async client's ``close``,
  shuts down async generators and the default executor (aiohttp's DNS threads), closes the loop and joins
  the thread. :class:`BlockingClient` ties that to ``close()``, ``with``, and a ``weakref.finalize`` for
  clients nobody closed (it also runs at interpreter exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import types
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from ._exceptions import ClientClosedError

T = TypeVar("T")
P = ParamSpec("P")

# How often the main thread wakes up while blocked, so a pending Ctrl-C is noticed: a signal handled on
# another thread, or raised by _thread.interrupt_main(), does not interrupt a blocked lock acquire.
_INTERRUPT_CHECK = 0.1
# How long Ctrl-C waits for the cancelled task to unwind before giving up on it.
_CANCEL_GRACE = 5.0
_CLOSED_MESSAGE = "this client is closed; create a new one"
_HERE = os.path.normcase(os.path.abspath(__file__))
_ASYNCIO = os.path.normcase(os.path.dirname(os.path.abspath(asyncio.__file__)))


def _wait(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)`` that stays responsive to Ctrl-C in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    remaining = timeout
    while remaining is None or remaining > 0:
        step = _INTERRUPT_CHECK if remaining is None else min(_INTERRUPT_CHECK, remaining)
        if event.wait(step):
            return True
        if remaining is not None:
            remaining -= step
    return event.is_set()


def _trimmed(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback without its leading portal and asyncio frames: users see their call, then the SDK's."""
    while tb is not None:
        filename = os.path.normcase(os.path.abspath(tb.tb_frame.f_code.co_filename))
        if filename != _HERE and not filename.startswith(_ASYNCIO):
            break
        tb = tb.tb_next
    return tb


class _Job(Generic[T]):
    """One call running on the portal's loop, watched from the calling thread."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.done = threading.Event()
        self.task: asyncio.Future[T] | None = None
        self.result: list[T] = []  # one value once it succeeded (T itself may be None)
        self.error: BaseException | None = None

    def finish(self, task: asyncio.Future[T]) -> None:
        if not task.cancelled():
            if (error := task.exception()) is not None:
                self.error = error
            else:
                self.result.append(task.result())
        self.done.set()


class Portal:
    """An event loop running on a daemon thread, and blocking calls into it from any other thread.

    Example:
        ```python
        portal = Portal()
        try:
            project = portal.call(async_client.v1.video_projects.get, id="cuid")
        finally:
            portal.stop(async_client.close)
        ```
    """

    def __init__(self, *, name: str = "magic-hour-async-portal") -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopped = False
        self._tasks: set[asyncio.Future[Any]] = set()  # touched only on the loop thread
        self._shutdown_error: BaseException | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        # Daemon: a forgotten client must not keep the interpreter alive; its finalizer (also run at exit)
        # stops the loop properly.
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def __repr__(self) -> str:
        return f"<Portal {self.thread.name} {'stopped' if self._stopped else 'running'}>"

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    # -- calls ----------------------------------------------------------------------------------------------
    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` on the loop and return its result, blocking this thread."""
        job: _Job[T] = _Job(fn, args, kwargs)
        try:
            # Submitting inside the try: Ctrl-C can land right after the task starts, before the wait.
            self._submit(self._start_task, job)
            _wait(job.done)
        except KeyboardInterrupt:
            # Whether or not the submission got through, _cancel runs after it (callbacks run in order).
            with self._lock:
                if not self._stopped:  # else the shutdown cancels it, and the loop may be closed already
                    self._loop.call_soon_threadsafe(self._cancel, job)
            # Let the task unwind (its connection closes) so nothing keeps running after Ctrl-C returns.
            _wait(job.done, _CANCEL_GRACE)
            raise
        if job.error is not None:
            raise job.error.with_traceback(_trimmed(job.error.__traceback__))
        return self._result(job)

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the plain function ``fn`` on the loop thread (to build objects that belong to the loop)."""
        job: _Job[T] = _Job(fn, args, kwargs)
        self._submit(self._run_function, job)
        _wait(job.done)
        if job.error is not None:
            raise job.error.with_traceback(_trimmed(job.error.__traceback__))
        return self._result(job)

    def iterate(self, fn: Callable[P, AsyncIterable[T]], /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        """Iterate ``fn(*args, **kwargs)`` (an async generator or iterable), one item per portal call.

        The async iterator is created lazily, at the first ``next()``, on the loop.
        """

        async def open_iterator() -> AsyncIterator[T]:
            return aiter(fn(*args, **kwargs))

        return self._drive(open_iterator)

    def iterate_awaited(
        self, fn: Callable[P, Awaitable[AsyncIterable[T]]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[T]:
        """Like :meth:`iterate` for a coroutine that returns an async iterable."""

        async def open_iterator() -> AsyncIterator[T]:
            return aiter(await fn(*args, **kwargs))

        return self._drive(open_iterator)

    def _drive(self, open_iterator: Callable[[], Awaitable[AsyncIterator[T]]]) -> Generator[T, None, None]:
        iterator = self.call(open_iterator)
        try:
            while True:
                item = self.call(_next_item, iterator)
                if not item:
                    return
                yield item[0]
        finally:
            self._close_iterator(iterator)

    def _close_iterator(self, iterator: AsyncIterator[Any]) -> None:
        aclose: Callable[[], Awaitable[object]] | None = getattr(iterator, "aclose", None)
        if aclose is None or self._stopped:
            return  # stopping the loop shuts down its async generators
        if threading.current_thread() is self.thread:  # collected on the loop thread: cannot block here
            self._tasks.add(self._loop.create_task(_ignore_errors(aclose())))
            return
        with contextlib.suppress(ClientClosedError):  # closed concurrently: the shutdown closed it
            self.call(aclose)

    # -- plumbing -------------------------------------------------------------------------------------------
    def _submit(self, start: Callable[[_Job[T]], None], job: _Job[T]) -> None:
        if threading.current_thread() is self.thread:
            raise RuntimeError("a blocking client call from its own event loop thread would deadlock")
        with self._lock:  # a stop() can never slip between the check and the scheduling
            if self._stopped:
                raise ClientClosedError(_CLOSED_MESSAGE)
            self._loop.call_soon_threadsafe(start, job)

    def _start_task(self, job: _Job[Any]) -> None:
        try:
            task = asyncio.ensure_future(job.fn(*job.args, **job.kwargs))
        except BaseException as exc:  # the call failed before it could await anything
            job.error = exc
            job.done.set()
            return
        job.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(job.finish)

    def _run_function(self, job: _Job[Any]) -> None:
        try:
            value = job.fn(*job.args, **job.kwargs)
        except BaseException as exc:  # reported to the waiting thread
            job.error = exc
        else:
            job.result.append(value)
        job.done.set()

    def _cancel(self, job: _Job[Any]) -> None:
        if job.task is not None:
            job.task.cancel()
        elif not job.done.is_set():  # interrupted before it was submitted: nothing runs, nothing to wait for
            job.done.set()

    def _result(self, job: _Job[T]) -> T:
        if job.result:
            return job.result[0]
        if self._stopped:
            raise ClientClosedError("the client was closed while this call was running")
        raise asyncio.CancelledError()  # the coroutine cancelled itself

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        loop = self._loop
        try:
            loop.run_forever()
        except BaseException:
            # A SystemExit or KeyboardInterrupt raised by a call broke out of the loop (asyncio lets those
            # through). The call's caller receives it; the thread itself has nobody else to tell.
            pass
        finally:
            # Normally stop() got here first; if not, refuse new calls and finish the pending ones (their
            # callers must not hang).
            with self._lock:
                self._stopped = True
            try:
                loop.run_until_complete(_cancel_all(self._tasks))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def stop(self, closer: Callable[[], Awaitable[object]] | None = None) -> None:
        """Await ``closer()`` on the loop, stop the loop and join its thread. Stopping twice is harmless.

        Calls still running are cancelled first (their callers get :class:`ClientClosedError`).
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if self.thread.is_alive():
                self._loop.call_soon_threadsafe(self._begin_shutdown, closer)
        if threading.current_thread() is self.thread:
            return  # a finalizer ran on the loop thread: the loop stops itself, nobody can join here
        self.thread.join()
        error, self._shutdown_error = self._shutdown_error, None
        if error is not None:
            raise error

    def _begin_shutdown(self, closer: Callable[[], Awaitable[object]] | None) -> None:
        # Held here because the loop keeps only weak references to its tasks.
        self._shutdown_task = self._loop.create_task(self._shutdown(closer))

    async def _shutdown(self, closer: Callable[[], Awaitable[object]] | None) -> None:
        try:
            await _cancel_all(self._tasks)
            if closer is not None:
                await closer()
            # Whatever the SDK left behind (a background poller) ends before the loop closes, so there is
            # no "Task was destroyed but it is pending" at exit.
            await _cancel_all(asyncio.all_tasks() - {asyncio.current_task()})
        except BaseException as exc:  # re-raised by stop() in the calling thread
            self._shutdown_error = exc
        finally:
            self._loop.stop()


async def _next_item(iterator: AsyncIterator[T]) -> list[T]:
    # Exhaustion becomes an empty list: StopAsyncIteration is not meant to travel through a task.
    try:
        return [await anext(iterator)]
    except StopAsyncIteration:
        return []


async def _ignore_errors(awaitable: Awaitable[object]) -> None:
    with contextlib.suppress(Exception):  # closing a generator nobody iterates any more: nobody to tell
        await awaitable


async def _cancel_all(tasks: set[asyncio.Future[Any]] | set[asyncio.Task[Any]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


class _ClientPortal(Portal):
    """One blocking client's portal as its twins hold it: the same loop, and a strong reference to the client.

    ``Client(token=...).v1.ai_image_generator.create(...)`` drops the client as soon as ``.v1`` is read; the
    twins (and the iterators they return) hold this view, so the client, and with it the loop, stays alive
    until they are done. The client's finalizer holds the real portal, never this view, so the view keeps
    the client alive only while something uses it.
    """

    def __init__(self, portal: Portal, owner: object) -> None:  # a view: no loop or thread of its own
        self._inner = portal
        self._owner = owner
        self.thread = portal.thread
        self._loop = portal._loop  # the same loop: code that schedules onto the client's loop reads this
        # Calls go straight to the real portal's bound methods (shadowing the delegates below), so a
        # traceback shows no frame of this view.
        vars(self).update(call=portal.call, call_sync=portal.call_sync)

    def __repr__(self) -> str:
        return repr(self._inner)

    @property
    def stopped(self) -> bool:
        return self._inner.stopped

    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._inner.call(fn, *args, **kwargs)

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._inner.call_sync(fn, *args, **kwargs)

    def iterate(self, fn: Callable[P, AsyncIterable[T]], /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        yield from self._inner.iterate(fn, *args, **kwargs)  # the generator's frame holds the view

    def iterate_awaited(
        self, fn: Callable[P, Awaitable[AsyncIterable[T]]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[T]:
        yield from self._inner.iterate_awaited(fn, *args, **kwargs)

    def stop(self, closer: Callable[[], Awaitable[object]] | None = None) -> None:
        self._inner.stop(closer)


def twin_repr(wrapped: object) -> str:
    """The async object's repr with ``Async`` dropped from its class name: ``<AsyncV1>`` becomes ``<V1>``."""
    return re.sub(r"^(<?)Async", r"\1", repr(wrapped), count=1)


class _AsyncClosable(Protocol):
    def close(self) -> Awaitable[None]: ...


C = TypeVar("C", bound=_AsyncClosable)
B = TypeVar("B", bound="BlockingClient[Any]")


class BlockingClient(Generic[C]):
    """The lifecycle of a generated blocking client: a portal, the async client living on it, ``close()``.

    The async client is built on the portal's loop; ``close()``, leaving a ``with`` block or the garbage
    collector (through ``weakref.finalize``, also run at interpreter exit) closes it there and stops the loop.
    """

    def __init__(self, factory: Callable[P, C], /, *args: P.args, **kwargs: P.kwargs) -> None:
        portal = Portal()
        try:
            wrapped = portal.call_sync(factory, *args, **kwargs)
        except BaseException:
            portal.stop()
            raise
        # Twins get a view that holds self (a resource keeps its client alive); the finalizer references the
        # real portal and the async client, never self or the view, so it cannot keep self alive.
        self._portal: Portal = _ClientPortal(portal, self)
        self._wrapped: C = wrapped
        self._finalizer = weakref.finalize(self, portal.stop, wrapped.close)

    def close(self) -> None:
        """Close the client's session and stop its event loop thread. Closing twice is harmless."""
        self._finalizer()

    def __enter__(self: B) -> B:
        if self._portal.stopped:
            raise ClientClosedError(_CLOSED_MESSAGE)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return twin_repr(self._wrapped)
