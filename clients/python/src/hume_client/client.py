"""The synchronous client: one DEALER connection to the broker's client endpoint, driven by the calling thread.

::

    from hume_client import Client, Job

    with Client("tcp://127.0.0.1:5556") as c:
        for r in c.run("b1", "noop", (Job(key="b1:%d" % i, data=b"job %d" % i) for i in range(1_000_000))):
            print(r.index, r.status_name, r.body)

        png = c.generate("a red apple", database="emoji", size=64).image().png()

Nothing happens in the background: the connection makes progress while a call of this client waits (iterating a
run, ``JobHandle.result``, ``results``, ``status``…), and every such wait has a timeout. Not thread-safe: use one
client per thread (or :class:`hume_client.AsyncClient`).
"""

from __future__ import annotations

import math
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union,
                    overload)

import zmq

from .errors import BadInput, ClientClosed, Timeout
from .jobs import Job, Result
from .keys import CurveKeys
from .session import Request, RunFeed, Session, Ticket
from .wire import check_batch

__all__ = ["Client", "JobHandle", "RunIterator", "GENERATE_ROUTE", "EDIT_ROUTE"]

#: The route of a generate job (PROTOCOL.md 11): text -> embedding -> neighbours -> image.
GENERATE_ROUTE = ("embed", "retrieve", "denoise")
#: The route of an edit job: source PNG -> edited image + mask.
EDIT_ROUTE = ("edit",)

Route = Union[str, Sequence[str]]
CurveOption = Union[CurveKeys, None, bool]

_send = zmq.backend.Socket.send
_recv = zmq.backend.Socket.recv
_get = zmq.backend.Socket.get
# Plain ints: pyzmq turns its enum constants into ints on every call otherwise (a measurable share per frame).
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)
_NOBLOCK_SNDMORE = _NOBLOCK | _SNDMORE
_Again = zmq.Again
_monotonic = time.monotonic


def _make_socket(ctx: Any, endpoint: str, curve: CurveOption) -> Any:
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise BadInput("The endpoint must be a ZeroMQ address such as tcp://127.0.0.1:5556; got %r." % (endpoint,))
    if curve is None or curve is True:
        keys = CurveKeys.from_env()
        if curve is True and keys is None:
            raise BadInput("curve=True needs HUME_CURVE_KEY and HUME_SERVER_KEY in the environment.")
    elif curve is False:
        keys = None
    elif isinstance(curve, CurveKeys):
        keys = curve
    else:
        raise BadInput("curve must be a CurveKeys, None (from the environment) or False; got %s."
                       % type(curve).__name__)
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    if keys is not None:
        keys.apply(sock)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as e:
        sock.close(0)
        raise BadInput("Cannot connect to %s: %s." % (endpoint, e)) from None
    return sock


def flush(sock: Any, session: Session) -> bool:
    """Sends what the session queued, without blocking; False when messages are left (the socket is full or not
    connected yet). Records go with ``copy=False``: pyzmq still copies small frames (under its copy threshold,
    64 KiB), and hands big ones (images) to ZeroMQ without copying them."""
    outbox = session.outbox
    while outbox:
        frames = outbox[0]
        try:
            _send(sock, frames[0], _NOBLOCK_SNDMORE)
        except _Again:
            return False
        # Once the first frame is taken the rest of the message is too (high-water marks count whole messages).
        last = len(frames) - 1
        _send(sock, frames[1], _SNDMORE)
        if last == 2:
            _send(sock, frames[2], 0)
        else:
            _send(sock, frames[2], _SNDMORE)
            for i in range(3, last):
                _send(sock, frames[i], _SNDMORE, False)
            _send(sock, frames[last], 0, False)
        outbox.popleft()
    return True


def drain(sock: Any, session: Session, limit: int = 32) -> int:
    """Hands up to ``limit`` waiting messages to the session; returns how many there were."""
    n = 0
    receive = session.receive
    while n < limit:
        try:
            # As Frames: ``more`` is read in C, where asking the socket for RCVMORE costs a Python enum per frame.
            f = _recv(sock, _NOBLOCK, False)
        except _Again:
            break
        frames = [f.bytes]
        append = frames.append
        while f.more:
            f = _recv(sock, 0, False)
            append(f.bytes)
        receive(frames, _monotonic())
        n += 1
    return n


def job_ids(jobs: Iterable[Any]) -> List[int]:
    """Job ids from ints, Results and JobHandles."""
    out = []
    for j in jobs:
        if isinstance(j, Result):
            jid: Any = j.job_id
        elif hasattr(j, "job_id") and not isinstance(j, (int, str, bytes)):
            jid = j.job_id
        else:
            jid = j
        if type(jid) is not int or jid <= 0:
            raise BadInput("A job to cancel is a positive job id (or a Result or JobHandle that has one); got %r."
                           % (j,))
        out.append(jid)
    return out


def generate_params(database: Optional[str], size: Optional[int], seed: Optional[int],
                    params: Mapping[str, Any]) -> Dict[str, Any]:
    p = {k: v for k, v in params.items() if v is not None}
    for k, v in (("database", database), ("size", size), ("seed", seed)):
        if v is not None:
            p[k] = v
    return p


def edit_params(edit: str, caption: Optional[str], params: Mapping[str, Any]) -> Dict[str, Any]:
    if not isinstance(edit, str) or not edit.strip():
        raise BadInput("An edit needs the text of what to change, e.g. \"wearing sunglasses\"; got %r." % (edit,))
    p = {k: v for k, v in params.items() if v is not None}
    p["edit"] = edit
    if caption is not None:
        if not isinstance(caption, str) or not caption.strip():
            raise BadInput("An edit's caption, when given, is a non-empty string; got %r." % (caption,))
        p["caption"] = caption
    return p


def as_png(png: Any) -> bytes:
    """An edit's source as bytes: a PNG or JPEG file's (the edit stage tells them apart by their first bytes)."""
    if isinstance(png, (bytearray, memoryview)):
        png = bytes(png)
    if not isinstance(png, bytes):
        raise BadInput("An edit's source is the PNG or JPEG file's bytes, not %s." % type(png).__name__)
    if not png.startswith(b"\x89PNG\r\n\x1a\n") and not png.startswith(b"\xff\xd8\xff"):
        raise BadInput("An edit's source must be a PNG or JPEG file; these %d bytes start with neither's signature."
                       % len(png))
    return png


def _run_timeout(feed: RunFeed, timeout: float, total: bool) -> Timeout:
    what = "The batch %r did not finish within its total timeout" % feed.batch if total else \
        "No result of batch %r came for %g s" % (feed.batch, timeout)
    return Timeout("%s: %d results in, %d%s jobs unfinished; giving up." % (
        what, feed.finished, len(feed.live), "+" if not feed.exhausted else ""))


class _RunOver(Exception):
    """Every result of a run has been given (or the run was closed)."""


class _RunIteratorBase:
    """What the blocking and the asyncio run iterators share: the feed, the timeouts, and one look at the run."""

    def __init__(self, client: Any, feed: RunFeed, timeout: float, total_timeout: Optional[float] = None) -> None:
        self._client = client
        self._feed = feed
        self._timeout = timeout
        self._last = _monotonic()
        self._deadline = self._last + total_timeout if total_timeout is not None else math.inf

    def _poll(self) -> Tuple[Optional[Result], bool, float]:
        """``(result, was_full, 0)`` when a result is there (``was_full``: the run had stopped taking jobs while its
        results waited), else ``(None, False, seconds left to wait)``. Raises the run's error, its timeout, or
        :class:`_RunOver` once every result has been given."""
        feed = self._feed
        results = feed.results
        if results:
            self._last = _monotonic()
            full = len(results) == feed.max_buffer
            return results.popleft(), full, 0.0
        if feed.error is not None:
            err = feed.error
            self.close()
            raise err
        if feed.done or feed.closed:
            self.close()
            raise _RunOver()
        now = _monotonic()
        left = min(self._last + self._timeout, self._deadline) - now
        if left <= 0:
            self.close()
            raise _run_timeout(feed, self._timeout, now >= self._deadline)
        return None, False, left

    @property
    def submitted(self) -> int:
        """Jobs taken from the iterable so far."""
        return self._feed.taken

    @property
    def finished(self) -> int:
        """Jobs with a result so far."""
        return self._feed.finished

    def close(self) -> None:
        """Stops sending this batch's jobs (those sent keep running at the broker)."""
        if not self._feed.closed:
            self._client._session.close_feed(self._feed)

    def __del__(self) -> None:
        try:
            self._feed.closed = True  # the session drops it at its next pump; nothing else is safe in a finaliser
            self._feed.exhausted = True
        except Exception:  # pragma: no cover
            pass


class RunIterator(_RunIteratorBase, Iterator[Result]):
    """Results of :meth:`Client.run` as they finish (completion order; ``Result.index`` is the job's position).

    ``timeout`` bounds the wait for each next result. Breaking out stops sending the rest of the batch (call
    :meth:`close`, or leave a ``with`` block); jobs already sent keep running at the broker.
    """

    def __iter__(self) -> "RunIterator":
        return self

    def __next__(self) -> Result:
        while True:
            try:
                result, _, left = self._poll()
            except _RunOver:
                raise StopIteration from None
            if result is not None:
                return result
            self._client._step(left)

    def __enter__(self) -> "RunIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _HandleBase:
    """What a streamed job's handle knows without waiting: shared by :class:`JobHandle` and the asyncio handle."""

    def __init__(self, client: Any, ticket: Ticket) -> None:
        self._client = client
        self._ticket = ticket

    @property
    def key(self) -> str:
        """The key given ("" when the broker derives it; the result carries the derived one)."""
        return self._ticket.key

    @property
    def index(self) -> int:
        """The order of this job among the client's submits."""
        return self._ticket.index

    @property
    def job_id(self) -> Optional[int]:
        """The broker's id, once it has acknowledged the job (None before)."""
        return self._client._session.job_id_of(self._ticket)

    @property
    def progress(self) -> Optional[Tuple[int, int]]:
        """(stages done, stages) from the last PROGRESS, for jobs submitted with ``progress=True``."""
        return self._ticket.progress

    def done(self) -> bool:
        """Whether the result (or a refusal) has arrived. Does not wait; ``result`` does."""
        return self._ticket.done

    def _finished(self, check: bool) -> Result:
        """The result once ``done``: consumed from the session, refusals raised, failures raised with ``check``."""
        t = self._ticket
        self._client._session.consume(t)
        if t.error is not None:
            raise t.error
        assert t.result is not None
        if check:
            t.result.raise_for_status()
        return t.result


class JobHandle(_HandleBase):
    """A job submitted with :meth:`Client.submit`."""

    def result(self, timeout: Optional[float] = None, check: bool = True) -> Result:
        """Waits for the job's result (at most ``timeout`` s, default the client's). With ``check`` (the default) a
        job that is not ``done`` raises :class:`JobFailed`; a SUBMIT the broker refused raises its typed error."""
        t = self._ticket
        self._client._wait_until(lambda: t.done, timeout, "the result of streamed job %d" % t.index)
        return self._finished(check)

    def cancel(self, timeout: Optional[float] = None) -> bool:
        """Cancels the job if it is still running; True if the broker cancelled it."""
        jid = self.job_id
        if jid is None:
            self._client._wait_until(lambda: self.job_id is not None or self._ticket.done, timeout,
                                     "the acknowledgement of streamed job %d" % self._ticket.index)
            jid = self.job_id
        if jid is None or self._ticket.done:
            return False
        return self._client.cancel(jobs=[jid], timeout=timeout) > 0

    def __repr__(self) -> str:
        return "JobHandle(index=%d, key=%r, done=%s)" % (self._ticket.index, self._ticket.key, self._ticket.done)


class _Base:
    """What the sync and async clients share: options, the session, request headers."""

    def _setup(self, chunk: int, max_in_flight: int, window: Optional[int], ack_timeout: float, silence: float,
               timeout: float) -> None:
        if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise BadInput("timeout must be a positive number of seconds; got %r." % (timeout,))
        self.timeout = float(timeout)
        self._session = Session(chunk=chunk, max_in_flight=max_in_flight, ack_timeout=ack_timeout, silence=silence,
                                window=window)
        self._closed = False

    def _timeout(self, timeout: Optional[float]) -> float:
        if timeout is None:
            return self.timeout
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise BadInput("A timeout is a positive number of seconds; got %r." % (timeout,))
        return float(timeout)

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("This client is closed; make a new one.")

    @staticmethod
    def _cancel_header(jobs: Optional[Iterable[Any]], batch: Optional[str]) -> Dict[str, Any]:
        if jobs is not None:
            ids = job_ids(jobs)
            if not ids:
                raise BadInput("cancel(jobs=…) needs at least one job id.")
            return {"jobs": ids}
        if batch is not None:
            return {"batch": check_batch(batch)}
        raise BadInput("cancel needs jobs=[ids] or batch=NAME.")

    @property
    def session(self) -> Session:
        """The protocol state (for inspection: ``window``, ``busy_replies``, ``unfinished``…)."""
        return self._session


class Client(_Base):
    """A synchronous Hume client.

    :param endpoint: the broker's client endpoint.
    :param curve: :class:`CurveKeys`; None (default) reads ``HUME_CURVE_KEY``/``HUME_SERVER_KEY`` when both are set;
        False never uses CURVE.
    :param timeout: the default for every wait, in seconds: a run's wait for its next result, a handle's result, a
        STATUS or CANCEL reply.
    :param chunk: jobs per SUBMIT (at most 10,000). :param max_in_flight: SUBMITs unanswered at once.
    :param window: the most jobs to keep unfinished at once, if fewer than the broker's window (default: the broker's).
    :param ack_timeout: seconds before an unanswered SUBMIT is sent again. :param silence: seconds without news
        before checking the broker still knows this connection's jobs (and resubmitting them if not).
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5556", *, curve: CurveOption = None, timeout: float = 60.0,
                 chunk: int = 2500, max_in_flight: int = 4, window: Optional[int] = None,
                 ack_timeout: float = 3.0, silence: float = 4.0,
                 context: Optional["zmq.Context[Any]"] = None) -> None:
        self._setup(chunk, max_in_flight, window, ack_timeout, silence, timeout)
        self.endpoint = endpoint
        self._sock = _make_socket(context or zmq.Context.instance(), endpoint, curve)

    # ------------------------------------------------------------------------------------------------ driving

    def _step(self, max_wait: float) -> None:
        """Sends, receives and handles what it can, waiting at most ``max_wait`` s for something to happen."""
        self._check_open()
        s = self._session
        sock = self._sock
        now = _monotonic()
        changes = s.changes
        s.tick(now)
        sent_all = flush(sock, s)
        if not drain(sock, s) and s.changes == changes:
            d = s.next_deadline(now)
            wait = max_wait if d is None else min(max_wait, d - now)
            if not sent_all:
                wait = min(wait, 0.05)
            if wait > 0:
                sock.poll(max(1, int(math.ceil(wait * 1000))), zmq.POLLIN if sent_all else zmq.POLLIN | zmq.POLLOUT)
                drain(sock, s)
        if s.fatal is not None:
            err, s.fatal = s.fatal, None
            raise err

    def _wait_until(self, cond: Callable[[], bool], timeout: Optional[float], what: str) -> None:
        limit = self._timeout(timeout)
        deadline = _monotonic() + limit
        while not cond():
            left = deadline - _monotonic()
            if left <= 0:
                raise Timeout("Waited %g s for %s from %s; giving up." % (limit, what, self.endpoint))
            self._step(left)

    def _request(self, command: str, header: Dict[str, Any], timeout: Optional[float]) -> Dict[str, Any]:
        self._check_open()
        r: Request = self._session.request(command, header)
        try:
            self._wait_until(lambda: r.done, timeout, "the broker's reply to %s" % command)
        finally:
            if not r.done:
                self._session.forget(r)
        if r.error is not None:
            raise r.error
        assert r.reply is not None
        return r.reply

    # ------------------------------------------------------------------------------------------------ batches

    def run(self, batch: str, route: Route, jobs: Iterable[Any], *, progress: bool = False,
            on_progress: Optional[Callable[[int, int, int], None]] = None,
            timeout: Optional[float] = None, total_timeout: Optional[float] = None) -> RunIterator:
        """Submits ``jobs`` under ``batch`` through ``route`` and returns an iterator of their results as they finish.

        ``jobs`` is any iterable of :class:`Job` (or bytes/str data, whose key the broker derives); it is read lazily,
        as the window frees, so a generator of a million jobs stays small in memory. The window is respected, BUSY
        waited out and resent, lost SUBMITs resent, and unfinished jobs re-attached after a broker restart; every
        job gets exactly one result (``Result.index`` = its position). Running the same batch again resumes it: jobs
        whose keys finished answer at once from the journal (``duplicate`` true), none runs twice.

        Raises (from the iterator) :class:`BadInput` for a job this client cannot send, the broker's typed error
        when it refuses the batch (e.g. :class:`UnknownStage`), :class:`Timeout` after ``timeout`` s (default the
        client's) without a result or ``total_timeout`` s (default: none) in all, or whatever the iterable raised.
        With ``progress`` the broker reports each job's stages and ``on_progress(index, done, stages)`` is called.
        """
        self._check_open()
        feed = self._session.add_run(batch, route, jobs, progress, on_progress)
        return RunIterator(self, feed, self._timeout(timeout),
                           None if total_timeout is None else self._timeout(total_timeout))

    # ------------------------------------------------------------------------------------------------ streaming

    def submit(self, job: Any, route: Route, batch: str = "stream", *, progress: bool = False) -> JobHandle:
        """Queues one job (a :class:`Job`, or bytes/str data), sends it if the window has room, and returns its
        handle at once. ``handle.result(timeout)`` waits for it; :meth:`results` yields streamed jobs' results as
        they finish. Raises :class:`BadInput` at once for a job that cannot be sent."""
        self._check_open()
        t = self._session.submit(job, batch, route, progress)
        h = JobHandle(self, t)
        self._session.tick(_monotonic())
        flush(self._sock, self._session)
        return h

    def results(self, timeout: Optional[float] = None) -> Iterator[Result]:
        """Results of submitted jobs as they finish, each once (those already taken by ``JobHandle.result`` are
        not repeated); ends when every submitted job's result has been handed out. ``timeout`` bounds the wait
        for each next one."""
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
            self._wait_until(lambda: s.stream_results_waiting > 0 or s.streams_pending == 0, limit,
                             "the next streamed result (%d pending)" % s.streams_pending)

    # ------------------------------------------------------------------------------------------------ requests

    def cancel(self, jobs: Optional[Iterable[Any]] = None, batch: Optional[str] = None,
               timeout: Optional[float] = None) -> int:
        """Cancels jobs by id (ints, Results or JobHandles) or every active job of a batch; returns how many the
        broker cancelled. Each cancelled job's owner gets a ``cancelled`` result."""
        reply = self._request("CANCEL", self._cancel_header(jobs, batch), timeout)
        return int(reply.get("cancelled", 0))

    def status(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The broker's STATUS snapshot (PROTOCOL.md 4.1): counters, stages, workers, batches, fleet."""
        reply = dict(self._request("STATUS", {}, timeout))
        reply.pop("req", None)
        return reply

    def batch_status(self, name: str, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """One batch's counts from STATUS (``total``, ``active``, ``done``, ``failed``, ``dead_letter``,
        ``cancelled``, ``expired``), or None if the broker knows no such batch."""
        check_batch(name)
        for b in self.status(timeout).get("batches") or []:
            if b.get("batch") == name:
                return dict(b)
        return None

    # ------------------------------------------------------------------------------------------------ conveniences

    @overload
    def generate(self, prompts: str, *, database: Optional[str] = None, size: Optional[int] = None,
                 seed: Optional[int] = None, batch: str = "generate", timeout: Optional[float] = None,
                 **params: Any) -> Result: ...

    @overload
    def generate(self, prompts: Iterable[str], *, database: Optional[str] = None, size: Optional[int] = None,
                 seed: Optional[int] = None, batch: str = "generate", timeout: Optional[float] = None,
                 **params: Any) -> RunIterator: ...

    def generate(self, prompts: Union[str, Iterable[str]], *, database: Optional[str] = None,
                 size: Optional[int] = None, seed: Optional[int] = None, batch: str = "generate",
                 timeout: Optional[float] = None, **params: Any) -> Union[Result, RunIterator]:
        """Generates stickers through ``embed,retrieve,denoise``. Other keyword arguments are stage parameters
        (``k``, ``steps``, ``temperature``…; PROTOCOL.md 11.3).

        One prompt (a str): waits and returns its :class:`Result` (``.image().png()`` is the picture), raising
        :class:`JobFailed` if it failed. An iterable of prompts: returns the run's iterator (results as they
        finish, ``index`` = the prompt's position). Keys are derived from the content, so the same call again
        answers from the journal.
        """
        p = generate_params(database, size, seed, params)
        if isinstance(prompts, str):
            return self.submit(Job(data=prompts, params=p), GENERATE_ROUTE, batch).result(timeout)
        return self.run(batch, GENERATE_ROUTE, (Job(data=t, params=p) for t in prompts), timeout=timeout)

    def edit(self, png: bytes, edit: str, caption: Optional[str] = None, *, batch: str = "edit",
             timeout: Optional[float] = None, **params: Any) -> Result:
        """Edits a picture (the bytes of a PNG or JPEG file) through the ``edit`` stage: ``edit`` says what to change
        (``"wearing sunglasses"``), ``caption`` what the picture shows (else its neighbours are found by pixels).
        Other keyword arguments are stage parameters (``database``, ``size``, ``seed``, ``steps``, ``k``; 11.4).
        Returns the :class:`Result` (``.image().png()`` and ``.image().mask_png()``) or raises :class:`JobFailed`.
        """
        job = Job(data=as_png(png), params=edit_params(edit, caption, params))
        return self.submit(job, EDIT_ROUTE, batch).result(timeout)

    # ------------------------------------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Closes the connection. Jobs already sent keep running at the broker."""
        if not self._closed:
            self._closed = True
            self._sock.close(0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._sock.close(0)
        except Exception:  # pragma: no cover
            pass
