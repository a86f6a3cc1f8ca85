"""The asyncio client: the same session and methods as :class:`hume_client.Client`, as coroutines and async
iterators, on ``zmq.asyncio``.

::

    import asyncio
    from hume_client import AsyncClient, Job

    async def main():
        async with AsyncClient("tcp://127.0.0.1:5556") as c:
            async for r in c.run("b1", "noop", (Job(key="b1:%d" % i, data=b"x") for i in range(100_000))):
                ...
            r = await c.generate("a red apple", database="emoji", size=64)
            open("apple.png", "wb").write(r.image().png())

    asyncio.run(main())

One background task per client (started by the first call) sends, receives and keeps time; callers wait on it.
Several coroutines may use one client at once (a run, some streamed jobs, a STATUS). Use it from one event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable, Dict, Iterable, Optional, Sequence, Tuple, Union, overload

import zmq
import zmq.asyncio

from .client import (EDIT_ROUTE, GENERATE_ROUTE, CurveOption, Route, _Base, _HandleBase, _RunIteratorBase, _RunOver,
                     _make_socket, as_png, drain, edit_params, flush, generate_params)
from .errors import Timeout  # noqa: F401  (re-exported for type checkers)
from .jobs import Job, Result
from .session import Request
from .wire import check_batch

__all__ = ["AsyncClient", "AsyncJobHandle", "AsyncRunIterator"]

_monotonic = time.monotonic


class AsyncRunIterator(_RunIteratorBase):
    """Results of :meth:`AsyncClient.run` as they finish (an async iterator; see :class:`hume_client.RunIterator`)."""

    def __aiter__(self) -> "AsyncRunIterator":
        return self

    async def __anext__(self) -> Result:
        kicked = False
        while True:
            try:
                result, was_full, left = self._poll()
            except _RunOver:
                raise StopAsyncIteration from None
            if result is not None:
                if was_full:
                    self._client._kick()  # the run had stopped taking jobs while its results waited
                return result
            if not kicked:  # send what can go, then look again before waiting
                self._client._kick()
                kicked = True
                continue
            kicked = False
            await self._client._changed(left)

    async def aclose(self) -> None:
        self.close()


class AsyncJobHandle(_HandleBase):
    """A job submitted with :meth:`AsyncClient.submit`."""

    async def result(self, timeout: Optional[float] = None, check: bool = True) -> Result:
        """Waits for the result; see :meth:`hume_client.JobHandle.result`."""
        t = self._ticket
        await self._client._wait_until(lambda: t.done, timeout, "the result of streamed job %d" % t.index)
        return self._finished(check)

    async def cancel(self, timeout: Optional[float] = None) -> bool:
        """Cancels the job if it is still running; True if the broker cancelled it."""
        if self.job_id is None:
            await self._client._wait_until(lambda: self.job_id is not None or self._ticket.done, timeout,
                                           "the acknowledgement of streamed job %d" % self._ticket.index)
        jid = self.job_id
        if jid is None or self._ticket.done:
            return False
        return await self._client.cancel(jobs=[jid], timeout=timeout) > 0


class AsyncClient(_Base):
    """An asyncio Hume client; the parameters are :class:`hume_client.Client`'s."""

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5556", *, curve: CurveOption = None, timeout: float = 60.0,
                 chunk: int = 2500, max_in_flight: int = 4, window: Optional[int] = None,
                 ack_timeout: float = 3.0, silence: float = 4.0,
                 context: Optional[zmq.asyncio.Context] = None) -> None:
        self._setup(chunk, max_in_flight, window, ack_timeout, silence, timeout)
        self.endpoint = endpoint
        self._sock = _make_socket(context or zmq.asyncio.Context.instance(), endpoint, curve)
        self._task: Optional["asyncio.Task[None]"] = None
        self._event: Optional[asyncio.Event] = None
        self._error: Optional[BaseException] = None

    # ------------------------------------------------------------------------------------------------ driving

    def _start(self) -> None:
        self._check_open()
        if self._task is None or self._task.done():  # first use, or a new event loop (asyncio.run again)
            self._event = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._pump())

    def _notify(self) -> None:
        ev = self._event
        if ev is not None:
            ev.set()
            self._event = asyncio.Event()

    def _kick(self) -> None:
        """Sends what can go now (called by coroutines after they queue work)."""
        self._start()
        s = self._session
        changes = s.changes
        s.tick(_monotonic())
        flush(self._sock, s)
        if s.changes != changes:
            self._notify()

    async def _pump(self) -> None:
        s = self._session
        sock = self._sock
        try:
            while not self._closed:
                now = _monotonic()
                changes = s.changes
                s.tick(now)
                sent_all = flush(sock, s)
                n = drain(sock, s)
                if s.fatal is not None:
                    self._error, s.fatal = s.fatal, None
                if n or s.changes != changes or self._error is not None:
                    self._notify()
                    await asyncio.sleep(0)
                    continue
                d = s.next_deadline(now)
                wait = 0.25 if d is None else min(0.25, max(0.0, d - now))
                if not sent_all:
                    wait = min(wait, 0.05)
                if wait > 0:
                    await sock.poll(max(1, int(wait * 1000)), zmq.POLLIN if sent_all else zmq.POLLIN | zmq.POLLOUT)
                else:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # e.g. a ProtocolError: every waiter gets it
            self._error = e
            self._notify()

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            if self._task is not None and self._task.done():
                self._task = None  # the pump died with it; the next call starts a new one
            raise err

    async def _changed(self, timeout: float) -> None:
        """Waits until the pump has handled something (or ``timeout`` s)."""
        self._start()
        self._raise_error()
        ev = self._event
        assert ev is not None
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self._raise_error()

    async def _wait_until(self, cond: Callable[[], bool], timeout: Optional[float], what: str) -> None:
        limit = self._timeout(timeout)
        deadline = _monotonic() + limit
        self._kick()
        while not cond():
            left = deadline - _monotonic()
            if left <= 0:
                raise Timeout("Waited %g s for %s from %s; giving up." % (limit, what, self.endpoint))
            await self._changed(left)

    async def _request(self, command: str, header: Dict[str, Any], timeout: Optional[float]) -> Dict[str, Any]:
        self._check_open()
        r: Request = self._session.request(command, header)
        try:
            await self._wait_until(lambda: r.done, timeout, "the broker's reply to %s" % command)
        finally:
            if not r.done:
                self._session.forget(r)
        if r.error is not None:
            raise r.error
        assert r.reply is not None
        return r.reply

    # ------------------------------------------------------------------------------------------------ API

    def run(self, batch: str, route: Route, jobs: Iterable[Any], *, progress: bool = False,
            on_progress: Optional[Callable[[int, int, int], None]] = None,
            timeout: Optional[float] = None, total_timeout: Optional[float] = None) -> AsyncRunIterator:
        """Submits a batch; an async iterator of its results as they finish. See :meth:`hume_client.Client.run`
        (``jobs`` is a plain iterable, read lazily)."""
        self._check_open()
        feed = self._session.add_run(batch, route, jobs, progress, on_progress)
        return AsyncRunIterator(self, feed, self._timeout(timeout),
                                None if total_timeout is None else self._timeout(total_timeout))

    async def submit(self, job: Any, route: Route, batch: str = "stream", *, progress: bool = False) -> AsyncJobHandle:
        """Queues and sends one job; ``await handle.result()`` waits for it."""
        self._check_open()
        t = self._session.submit(job, batch, route, progress)
        self._kick()
        return AsyncJobHandle(self, t)

    async def results(self, timeout: Optional[float] = None) -> AsyncIterator[Result]:
        """Streamed jobs' results as they finish, each once; ends when all have been handed out."""
        s = self._session
        limit = self._timeout(timeout)
        while True:
            t = s.next_stream_result()
            if t is not None:
                if t.error is not None:
                    raise t.error
                assert t.result is not None
                yield t.result
                continue
            if s.streams_pending == 0:
                return
            await self._wait_until(lambda: s.stream_results_waiting > 0 or s.streams_pending == 0, limit,
                                   "the next streamed result (%d pending)" % s.streams_pending)

    async def cancel(self, jobs: Optional[Iterable[Any]] = None, batch: Optional[str] = None,
                     timeout: Optional[float] = None) -> int:
        """Cancels jobs by id or a whole batch; returns how many the broker cancelled."""
        reply = await self._request("CANCEL", self._cancel_header(jobs, batch), timeout)
        return int(reply.get("cancelled", 0))

    async def status(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The broker's STATUS snapshot."""
        reply = dict(await self._request("STATUS", {}, timeout))
        reply.pop("req", None)
        return reply

    async def batch_status(self, name: str, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """One batch's counts from STATUS, or None."""
        check_batch(name)
        for b in (await self.status(timeout)).get("batches") or []:
            if b.get("batch") == name:
                return dict(b)
        return None

    @overload
    async def generate(self, prompts: str, *, database: Optional[str] = None, size: Optional[int] = None,
                       seed: Optional[int] = None, batch: str = "generate", timeout: Optional[float] = None,
                       **params: Any) -> Result: ...

    @overload
    async def generate(self, prompts: Sequence[str], *, database: Optional[str] = None, size: Optional[int] = None,
                       seed: Optional[int] = None, batch: str = "generate", timeout: Optional[float] = None,
                       **params: Any) -> AsyncRunIterator: ...

    async def generate(self, prompts: Union[str, Iterable[str]], *, database: Optional[str] = None,
                       size: Optional[int] = None, seed: Optional[int] = None, batch: str = "generate",
                       timeout: Optional[float] = None, **params: Any) -> Union[Result, AsyncRunIterator]:
        """See :meth:`hume_client.Client.generate`: one prompt returns its Result, several an async iterator."""
        p = generate_params(database, size, seed, params)
        if isinstance(prompts, str):
            h = await self.submit(Job(data=prompts, params=p), GENERATE_ROUTE, batch)
            return await h.result(timeout)
        return self.run(batch, GENERATE_ROUTE, (Job(data=t, params=p) for t in prompts), timeout=timeout)

    async def edit(self, png: bytes, edit: str, caption: Optional[str] = None, *, batch: str = "edit",
                   timeout: Optional[float] = None, **params: Any) -> Result:
        """See :meth:`hume_client.Client.edit`."""
        h = await self.submit(Job(data=as_png(png), params=edit_params(edit, caption, params)), EDIT_ROUTE, batch)
        return await h.result(timeout)

    # ------------------------------------------------------------------------------------------------ lifetime

    async def close(self) -> None:
        """Stops the background task and closes the connection."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._sock.close(0)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
