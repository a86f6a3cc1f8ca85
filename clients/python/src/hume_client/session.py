"""The client side of one connection to the broker as a state machine without I/O ("sans-I/O").

A driver (:class:`hume_client.Client`, :class:`hume_client.AsyncClient`, or a test) owns the socket. It hands every
message it receives to :meth:`Session.receive`, calls :meth:`Session.tick` when time passes, and sends whatever the
session leaves in :attr:`Session.outbox`. Both drivers use this one class, so they behave the same. The rules are
PROTOCOL.md's sections 3, 4.1, 6, 7 and 8:

* **Window.** Before its first job the session asks for its window with a zero-record SUBMIT. It never has more jobs
  unfinished (ACKed, no result yet) plus in flight (sent, not ACKed) than the window, sends chunks of at most
  ``chunk`` jobs, and keeps at most ``max_in_flight`` SUBMITs unanswered.
* **BUSY.** Nothing of a BUSY SUBMIT was taken: the same jobs go again (new ``req``) after ``retry_after_ms``, in
  pieces that fit the window last heard.
* **too_large.** A chunk the broker says could never fit goes again in halves, and chunks stay that small; a single
  job that is too large gets a failed :class:`Result` carrying the broker's sentence.
* **ACKs** are matched by ``req`` and record position; **results** by job id (so derived keys need no hashing here).
  A repeated key maps one job id to several positions, and its one result answers them all.
* **Lost SUBMIT.** A SUBMIT not ACKed within ``ack_timeout`` is sent again under a new ``req`` (keys make it safe);
  the wait doubles each time, up to 30 s, so a broker down for long does not collect a pile of copies. A late ACK of
  an earlier copy is used too.
* **Re-attach.** With jobs unfinished, nothing in flight and nothing heard for ``silence`` seconds, the session sends
  a zero-record SUBMIT; if its ACK counts fewer unfinished jobs for this connection than the session holds (the
  broker restarted, or another connection took the jobs over), it resubmits the unfinished jobs' keys and becomes
  their owner again. (The reference client resubmits them at once; asking first spares a busy broker a resubmission
  of the whole window every few seconds while a slow stage works.)
* **Requests** (STATUS, CANCEL…) are matched to replies by ``req``.

Memory is bounded by what is unfinished: a job's record is kept from the moment it is taken from the caller's
iterable until its result arrives, and a run takes no more jobs while ``window`` results wait to be read.
"""

from __future__ import annotations

import copy
import json
import struct
from collections import OrderedDict, deque
from itertools import islice
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union, cast

from .errors import BadInput, HumeError, ProtocolError, TooLarge, error_from_broker
from .jobs import Job, Result
from .wire import (MAX_BLOB_BYTES, MAX_RECORDS, SIGNATURE, check_batch, check_route, decode_message,
                   encode_message, encode_submit_record, params_bytes)

__all__ = ["Session", "RunFeed", "StreamFeed", "Ticket", "Request"]

_SUBMIT = b"SUBMIT"
_SUBMIT_HEAD = struct.Struct("<BQH")
_U32 = struct.Struct("<I")
_ACK = struct.Struct("<QB")
_RESULT_HEAD = struct.Struct("<QBH")
_PROGRESS = struct.Struct("<QBB")
_new_result = tuple.__new__
_MAX_ACK_WAIT = 30.0


class _Invalid(Exception):
    pass


def make_encoder() -> Callable[[Any], bytes]:
    """A function from a job (:class:`Job`, or bytes/str data with a derived key) to its SUBMIT record. The common
    cases take a fast path; anything unusual goes through :func:`~hume_client.wire.encode_submit_record`, which
    raises :class:`BadInput` with the sentence. Params repeated from the previous job are encoded once."""
    head = _SUBMIT_HEAD.pack
    u32 = _U32.pack
    cache: List[Any] = [None, None, b"\x00\x00\x00\x00"]  # params object, its deep copy, its encoded blob

    def params_blob(params: Any) -> bytes:
        if params is cache[0] and (type(params) is bytes or type(params) is str or params == cache[1]):
            return cast(bytes, cache[2])
        pb = params_bytes(params)
        if len(pb) > MAX_BLOB_BYTES:
            raise _Invalid()
        blob = u32(len(pb)) + pb
        cache[0] = params
        cache[1] = params if type(params) is bytes or type(params) is str else copy.deepcopy(params)
        cache[2] = blob
        return blob

    def encode(item: Any) -> bytes:
        t = type(item)
        if t is Job:
            key, data, params, priority, deadline_ms = item
        elif t is bytes or t is str:
            key, data, params, priority, deadline_ms = "", item, b"", 0, 0
        elif isinstance(item, Job):
            key, data, params, priority, deadline_ms = tuple(item)
        elif isinstance(item, (bytearray, memoryview)):
            key, data, params, priority, deadline_ms = "", bytes(item), b"", 0, 0
        else:
            raise BadInput("A job must be a hume_client.Job, bytes or str, not %s." % t.__name__)
        try:
            kb = key.encode()
            db = data if type(data) is bytes else data.encode()
            if len(db) > MAX_BLOB_BYTES:
                raise _Invalid()
            return cast(bytes, head(priority, deadline_ms, len(kb)) + kb + params_blob(params) + u32(len(db)) + db)
        except (AttributeError, UnicodeError, struct.error, TypeError, _Invalid):
            return encode_submit_record(key, data, params, priority, deadline_ms)  # raises BadInput with the reason

    return encode


class Request:
    """A request (STATUS, CANCEL, …) waiting for its reply."""

    __slots__ = ("req", "command", "reply", "error", "done")

    def __init__(self, req: int, command: str) -> None:
        self.req = req
        self.command = command
        self.reply: Optional[Dict[str, Any]] = None
        self.error: Optional[HumeError] = None
        self.done = False


class _Probe:
    """A zero-record SUBMIT: learns the window (``initial``) or whether the broker still knows our jobs."""

    __slots__ = ("req", "initial", "feed", "sent_at", "wait")

    def __init__(self, req: int, initial: bool, feed: "_Feed", sent_at: float, wait: float) -> None:
        self.req, self.initial, self.feed, self.sent_at, self.wait = req, initial, feed, sent_at, wait


class _Chunk:
    """Jobs of one feed sent (or to be sent) in one SUBMIT."""

    __slots__ = ("feed", "indexes", "records", "req", "sent_at", "wait", "acked", "reattach", "in_flight")

    def __init__(self, feed: "_Feed", indexes: Sequence[int], records: List[bytes], reattach: bool = False) -> None:
        self.feed = feed
        self.indexes = indexes
        self.records = records
        self.req = 0
        self.sent_at = 0.0
        self.wait = 0.0
        self.acked = False
        self.reattach = reattach
        self.in_flight = False

    def split(self, n: int) -> "_Chunk":
        """Cuts off and returns the first n jobs."""
        head = _Chunk(self.feed, self.indexes[:n], self.records[:n], self.reattach)
        self.indexes = self.indexes[n:]
        self.records = self.records[n:]
        return head


class _Feed:
    """Where jobs of one batch and route come from, and where their results go."""

    def __init__(self, batch: str, route: Sequence[str], progress: bool) -> None:
        self.batch = check_batch(batch)
        self.route = check_route(route)
        self.progress = bool(progress)
        h: Dict[str, Any] = {"batch": self.batch, "route": self.route}
        if self.progress:
            h["progress"] = True
        text = json.dumps(h, separators=(",", ":"), ensure_ascii=False)
        #: The SUBMIT header without its closing brace: ``{…,"req":`` is appended the req and ``}``.
        self.header_head = (text[:-1] + ',"req":').encode("utf-8")
        #: Index -> SUBMIT record of every job taken and not finished (sent or not): what a resend needs.
        self.live: Dict[int, bytes] = {}
        self.error: Optional[BaseException] = None
        self.closed = False
        self.on_progress: Optional[Callable[[int, int, int], None]] = None

    def header(self, req: int) -> bytes:
        return self.header_head + b"%d}" % req

    def has_work(self) -> bool:  # pragma: no cover - overridden
        return False

    def take(self, n: int, encode: Callable[[Any], bytes]) -> Tuple[Sequence[int], List[bytes]]:  # pragma: no cover
        return (), []

    def deliver(self, result: Result) -> None:  # pragma: no cover - overridden
        pass

    def fail(self, indexes: Sequence[int], error: HumeError) -> None:  # pragma: no cover - overridden
        pass


class RunFeed(_Feed):
    """A batch run: jobs pulled lazily from the caller's iterable, results queued for its iterator."""

    def __init__(self, batch: str, route: Sequence[str], jobs: Iterable[Any], progress: bool = False,
                 max_buffer: int = 10_000) -> None:
        super().__init__(batch, route, progress)
        self.iterator: Iterator[Any] = iter(jobs)
        self.exhausted = False
        self.next_index = 0
        self.results: Deque[Result] = deque()
        self.max_buffer = max_buffer
        self.taken = 0
        self.finished = 0

    def has_work(self) -> bool:
        return not self.exhausted and not self.closed and len(self.results) < self.max_buffer

    def take(self, n: int, encode: Callable[[Any], bytes]) -> Tuple[Sequence[int], List[bytes]]:
        start = self.next_index
        records: List[bytes] = []
        append = records.append
        try:
            for item in islice(self.iterator, n):
                append(encode(item))
        except BadInput as e:
            self.error = BadInput("Job %d of batch %r: %s" % (start + len(records), self.batch, e.message))
            self.exhausted = True
            return (), []
        except Exception as e:  # the caller's iterable raised: hand the same exception back to the caller
            self.error = e
            self.exhausted = True
            return (), []
        k = len(records)
        if k < n:
            self.exhausted = True
        if not k:
            return (), []
        indexes = range(start, start + k)
        self.next_index = start + k
        self.live.update(zip(indexes, records))
        self.taken += k
        return indexes, records

    def deliver(self, result: Result) -> None:
        self.finished += 1
        if not self.closed:
            self.results.append(result)

    def fail(self, indexes: Sequence[int], error: HumeError) -> None:
        if self.error is None:
            self.error = error

    @property
    def done(self) -> bool:
        """Every job taken has its result and the iterable is exhausted (results may still wait to be read)."""
        return self.exhausted and not self.live


class Ticket:
    """One streamed job (:meth:`Session.submit`): its result, or the error that refused it."""

    __slots__ = ("feed", "index", "key", "result", "error", "progress", "consumed", "__weakref__")

    def __init__(self, feed: "StreamFeed", index: int, key: str) -> None:
        self.feed = feed
        self.index = index
        self.key = key
        self.result: Optional[Result] = None
        self.error: Optional[BaseException] = None
        self.progress: Optional[Tuple[int, int]] = None
        self.consumed = False

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class StreamFeed(_Feed):
    """Jobs submitted one at a time with :meth:`Session.submit`, for one batch and route."""

    def __init__(self, session: "Session", batch: str, route: Sequence[str], progress: bool) -> None:
        super().__init__(batch, route, progress)
        self.session = session
        self.queue: Deque[Tuple[int, bytes]] = deque()
        self.tickets: Dict[int, Ticket] = {}

    def has_work(self) -> bool:
        return bool(self.queue)

    def take(self, n: int, encode: Callable[[Any], bytes]) -> Tuple[Sequence[int], List[bytes]]:
        q = self.queue
        k = min(n, len(q))
        pairs = [q.popleft() for _ in range(k)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def deliver(self, result: Result) -> None:
        t = self.tickets.pop(result.index, None)
        if t is not None:
            t.result = result
            self.session._ticket_finished(t)

    def fail(self, indexes: Sequence[int], error: HumeError) -> None:
        for i in indexes:
            self.live.pop(i, None)
            t = self.tickets.pop(i, None)
            if t is not None:
                t.error = error
                self.session._ticket_finished(t)


_Entry = Tuple[_Feed, int, int]  # feed, index, duplicate byte
_Slot = Union[_Entry, List[_Entry]]  # one position, or several when a key repeats


def _entries(v: _Slot) -> List[_Entry]:
    return [v] if isinstance(v, tuple) else v


class Session:
    """One connection's protocol state. Single-threaded: a driver calls it from one thread (or one event loop).

    Parameters (all optional): ``chunk`` jobs per SUBMIT (at most 10,000; smaller after a ``too_large``),
    ``max_in_flight`` SUBMITs unanswered at once, ``ack_timeout`` seconds before an unanswered SUBMIT is sent again,
    ``silence`` seconds without news (jobs unfinished, nothing in flight) before checking that the broker still knows
    this connection's jobs, ``window`` (optional) the most jobs this client keeps unfinished, when that should be
    fewer than the broker allows.
    """

    def __init__(self, chunk: int = 2500, max_in_flight: int = 4, ack_timeout: float = 3.0,
                 silence: float = 4.0, window: Optional[int] = None) -> None:
        if not isinstance(chunk, int) or not 1 <= chunk <= MAX_RECORDS:
            raise BadInput("chunk is the number of jobs per SUBMIT, 1 to %d; got %r." % (MAX_RECORDS, chunk))
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise BadInput("max_in_flight must be a whole number of at least 1; got %r." % (max_in_flight,))
        if not ack_timeout > 0 or not silence > 0:
            raise BadInput("ack_timeout and silence must be positive numbers of seconds.")
        if window is not None and (not isinstance(window, int) or window < 1):
            raise BadInput("window, when given, is a whole number of jobs of at least 1; got %r." % (window,))
        self.window_cap = window
        self.chunk = chunk
        self.max_in_flight = max_in_flight
        self.ack_timeout = float(ack_timeout)
        self.silence = float(silence)
        #: Messages (lists of frames) for the driver to send, oldest first.
        self.outbox: Deque[List[bytes]] = deque()
        #: This connection's window, as the broker last said (None until it has).
        self.window: Optional[int] = None
        #: The broker's count of this connection's unfinished jobs, as last said.
        self.outstanding: Optional[int] = None
        #: An error no request can own (an ERROR with ``"req": null``); drivers raise it once.
        self.fatal: Optional[HumeError] = None
        # counters
        self.busy_replies = 0
        self.resent_submits = 0
        self.reattaches = 0
        self.duplicate_results = 0
        self.messages_in = 0
        #: Counts events a waiting caller may care about (messages handled, a run's input ending); drivers compare it
        #: to know whether to look again before they block.
        self.changes = 0

        self._encode = make_encoder()
        self._next_req = 1
        self._reqs: Dict[int, Any] = {}  # req -> _Chunk | _Probe | Request
        self._in_flight: Dict[_Chunk, None] = {}  # chunks sent and not answered (insertion ordered)
        self._in_flight_jobs = 0
        self._retry: Deque[_Chunk] = deque()
        self._reattach: Deque[_Chunk] = deque()
        self._feeds: List[_Feed] = []
        self._rr = 0
        self._streams: Dict[Tuple[str, Tuple[str, ...], bool], StreamFeed] = {}
        self._by_id: Dict[int, _Slot] = {}
        self._early: Dict[int, Tuple[int, str, bytes]] = {}
        self._probe: Optional[_Probe] = None
        self._pause_until = 0.0
        self._last_news: Optional[float] = None
        self._stream_index = 0
        self._tickets_open = 0
        self._tickets_done: "OrderedDict[Ticket, None]" = OrderedDict()

    # ------------------------------------------------------------------------------------------------ public input

    def new_req(self) -> int:
        r = self._next_req
        self._next_req += 1
        return r

    def add_run(self, batch: str, route: Union[str, Sequence[str]], jobs: Iterable[Any], progress: bool = False,
                on_progress: Optional[Callable[[int, int, int], None]] = None) -> RunFeed:
        """Starts a batch run; results gather in the returned feed's ``results`` as they arrive."""
        feed = RunFeed(batch, route, jobs, progress,
                       max_buffer=max(min(self.window or 10_000, self.window_cap or 10_000), self.chunk))
        feed.on_progress = on_progress
        self._feeds.append(feed)
        return feed

    def close_feed(self, feed: _Feed) -> None:
        """Stops a run: no more of its jobs are sent, and results for those in flight are dropped when they come. The
        broker still runs them (cancel them to stop that)."""
        if feed.closed:
            return
        feed.closed = True
        if isinstance(feed, RunFeed):
            feed.exhausted = True
            feed.results.clear()
        if feed in self._feeds:
            self._feeds.remove(feed)
        self._retry = deque(c for c in self._retry if c.feed is not feed)
        self._reattach = deque(c for c in self._reattach if c.feed is not feed)

    def submit(self, job: Any, batch: str, route: Union[str, Sequence[str]], progress: bool = False) -> Ticket:
        """Queues one job for streaming; the ticket gets its result. Raises :class:`BadInput` at once for a bad job."""
        names = check_route(route)
        fkey = (batch, tuple(names), bool(progress))
        feed = self._streams.get(fkey)
        if feed is None:
            feed = StreamFeed(self, batch, names, progress)
            self._streams[fkey] = feed
            self._feeds.append(feed)
        record = self._encode(job)
        index = self._stream_index
        self._stream_index += 1
        key = job.key if isinstance(job, Job) else ""
        ticket = Ticket(feed, index, key)
        feed.tickets[index] = ticket
        feed.live[index] = record
        feed.queue.append((index, record))
        self._tickets_open += 1
        return ticket

    def _ticket_finished(self, t: Ticket) -> None:
        self._tickets_open -= 1
        if not t.consumed:
            self._tickets_done[t] = None

    def consume(self, t: Ticket) -> None:
        """Marks a finished ticket's result as taken (so :meth:`next_stream_result` will not hand it out)."""
        t.consumed = True
        self._tickets_done.pop(t, None)

    def next_stream_result(self) -> Optional[Ticket]:
        """The oldest finished streamed job not yet taken, or None."""
        if not self._tickets_done:
            return None
        t, _ = self._tickets_done.popitem(last=False)
        t.consumed = True
        return t

    @property
    def streams_pending(self) -> int:
        """Streamed jobs without a result yet."""
        return self._tickets_open

    @property
    def stream_results_waiting(self) -> int:
        return len(self._tickets_done)

    def request(self, command: str, header: Optional[Dict[str, Any]] = None) -> Request:
        """Queues a request (STATUS, CANCEL…); its reply lands in the returned object."""
        req = self.new_req()
        h = dict(header or {})
        h["req"] = req
        r = Request(req, command)
        self._reqs[req] = r
        self.outbox.append(encode_message(command, h))
        return r

    def forget(self, r: Request) -> None:
        """Drops a request whose caller stopped waiting."""
        self._reqs.pop(r.req, None)

    # ------------------------------------------------------------------------------------------------ state

    @property
    def unfinished(self) -> int:
        """Jobs the broker acknowledged that have no result yet."""
        return len(self._by_id)

    @property
    def in_flight_jobs(self) -> int:
        return self._in_flight_jobs

    def next_deadline(self, now: float) -> Optional[float]:
        """When :meth:`tick` next has something to do (a monotonic time), or None for "only when a message comes"."""
        times = []
        if self._pause_until > now:
            times.append(self._pause_until)
        if self.outbox:
            return min(times) if times else None  # answers are awaited only once the messages have gone out
        for c in self._in_flight:
            times.append(c.sent_at + c.wait)
        if self._probe is not None:
            times.append(self._probe.sent_at + self._probe.wait)
        elif self._by_id and not self._in_flight and self._last_news is not None:
            times.append(self._last_news + self.silence)
        return min(times) if times else None

    # ------------------------------------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Resends what timed out, re-attaches after a silence, and sends what the window allows."""
        if self._last_news is None:
            self._last_news = now
        if not self.outbox:  # while messages wait to go out, waiting for their answer means nothing yet
            if self._in_flight:
                for c in [c for c in self._in_flight if now >= c.sent_at + c.wait]:
                    self.resent_submits += 1
                    self._send_chunk(c, now, min(c.wait * 2, _MAX_ACK_WAIT))
            p = self._probe
            if p is not None and now >= p.sent_at + p.wait:
                self._reqs.pop(p.req, None)
                self._probe = None
                if p.initial:
                    self._send_probe(p.feed, now, True, min(p.wait * 2, _MAX_ACK_WAIT))
                # a silence probe that got no answer: the silence check below sends another in time
            if (self._probe is None and self._by_id and not self._in_flight and self.window is not None
                    and now >= self._last_news + self.silence):
                feed = self._any_feed()
                if feed is not None:
                    self._last_news = now
                    self._send_probe(feed, now, False, self.ack_timeout)
        self._pump(now)

    def _any_feed(self) -> Optional[_Feed]:
        for v in self._by_id.values():
            return _entries(v)[0][0]
        return None

    def _send_probe(self, feed: _Feed, now: float, initial: bool, wait: float) -> None:
        req = self.new_req()
        p = _Probe(req, initial, feed, now, wait)
        self._reqs[req] = p
        self._probe = p
        self.outbox.append([SIGNATURE, _SUBMIT, feed.header(req)])

    def _send_chunk(self, c: _Chunk, now: float, wait: float) -> None:
        req = self.new_req()
        c.req = req
        c.sent_at = now
        c.wait = wait
        if not c.in_flight:
            c.in_flight = True
            self._in_flight[c] = None
            self._in_flight_jobs += len(c.records)
        self._reqs[req] = c
        frames = [SIGNATURE, _SUBMIT, c.feed.header(req)]
        frames += c.records
        self.outbox.append(frames)

    def _land(self, c: _Chunk) -> None:
        """The chunk is answered (ACK, BUSY or ERROR): no longer in flight."""
        if c.in_flight:
            c.in_flight = False
            del self._in_flight[c]
            self._in_flight_jobs -= len(c.records)

    def _pump(self, now: float) -> None:
        if any(f.closed for f in self._feeds):
            self._feeds = [f for f in self._feeds if not f.closed]  # runs abandoned by their iterators
        if now < self._pause_until:
            return
        if self.window is None:
            if self._probe is None:
                for f in self._feeds:
                    if f.has_work() or (isinstance(f, RunFeed) and not f.exhausted and not f.closed):
                        self._send_probe(f, now, True, self.ack_timeout)
                        break
            return
        # Re-attachment first: the broker forgot these jobs, so they do not count in its window for us.
        while self._reattach and len(self._in_flight) < self.max_in_flight + 4:
            c = self._reattach.popleft()
            if c.feed.closed:
                continue
            self._send_chunk(c, now, self.ack_timeout)
        window = self.window if self.window_cap is None else min(self.window, self.window_cap)
        min_send = min(self.chunk, max(1, window // 4))
        feeds = self._feeds
        while len(self._in_flight) < self.max_in_flight:
            room = window - len(self._by_id) - self._in_flight_jobs
            if room <= 0:
                return
            busy = self._by_id or self._in_flight
            if self._retry:
                c = self._retry[0]
                if c.feed.closed:
                    self._retry.popleft()
                    continue
                n = min(len(c.records), room, self.chunk)
                if n < len(c.records):
                    if n < min_send and busy:
                        return
                    c = c.split(n)
                else:
                    self._retry.popleft()
                self._send_chunk(c, now, self.ack_timeout)
                continue
            n = min(self.chunk, room)
            if n < min_send and busy:
                return
            sent = False
            for _ in range(len(feeds)):
                if not feeds:
                    break
                self._rr = (self._rr + 1) % len(feeds)
                f = feeds[self._rr]
                if not f.has_work():
                    continue
                indexes, records = f.take(n, self._encode)
                if isinstance(f, RunFeed) and (f.exhausted or f.error is not None):
                    self.changes += 1
                if records:
                    self._send_chunk(_Chunk(f, indexes, records), now, self.ack_timeout)
                    sent = True
                    break
            if not sent:
                return

    # ------------------------------------------------------------------------------------------------ messages

    def receive(self, frames: List[bytes], now: float) -> None:
        """Handles one message from the broker (the frames a DEALER received)."""
        self._last_news = now
        self.messages_in += 1
        self.changes += 1
        if len(frames) < 3 or frames[0] != SIGNATURE:
            decode_message(frames)  # raises ProtocolError with the reason
            raise ProtocolError("The broker sent a message that is not a Hume message.")
        command = frames[1]
        if command == b"RESULT":
            self._on_result(frames)
            return
        raw = frames[2]
        try:
            header = json.loads(raw) if raw else {}
        except ValueError as e:
            raise ProtocolError("The broker's %s header is not valid JSON: %s." % (command.decode("ascii", "replace"),
                                                                                  e)) from None
        if not isinstance(header, dict):
            raise ProtocolError("The broker's %s header is not a JSON object." % command.decode("ascii", "replace"))
        if command == b"ACK":
            self._on_ack(header, frames, now)
        elif command == b"BUSY":
            self._on_busy(header, now)
        elif command == b"PROGRESS":
            self._on_progress(frames)
        elif command == b"ERROR":
            self._on_error(header, now)
        else:
            req = header.get("req")
            target = self._reqs.get(req) if isinstance(req, int) else None
            if isinstance(target, Request):
                del self._reqs[target.req]
                target.reply = header
                target.done = True
            # anything else unasked for (a late reply to a request given up on): ignored

    def _window_from(self, header: Dict[str, Any]) -> None:
        w = header.get("window")
        if type(w) is int and w > 0:
            self.window = w
        o = header.get("outstanding")
        if type(o) is int:
            self.outstanding = o

    def _on_ack(self, header: Dict[str, Any], frames: List[bytes], now: float) -> None:
        self._window_from(header)
        req = header.get("req")
        target = self._reqs.pop(req, None) if type(req) is int else None
        if target is None:
            return
        if type(target) is _Probe:
            if self._probe is target:
                self._probe = None
            if not target.initial:
                outstanding = header.get("outstanding")
                if type(outstanding) is int and outstanding < len(self._by_id):
                    self._reattach_all()
            return
        if type(target) is not _Chunk:
            return
        c: _Chunk = target
        self._land(c)
        if c.acked:
            return  # a late ACK of a copy: the first one mapped the jobs
        c.acked = True
        records = frames[3:]
        if len(records) != len(c.records):
            raise ProtocolError("The ACK of req %s has %d records for %d jobs." % (req, len(records), len(c.records)))
        if not records:
            return
        if set(map(len, records)) != {9}:
            raise ProtocolError("An ACK record is 9 bytes; the ACK of req %s has others." % req)
        pairs = _ACK.iter_unpack(b"".join(records))
        by_id = self._by_id
        feed = c.feed
        early = self._early
        if header.get("duplicates") == 0 and not c.reattach and not early:
            # New jobs only: fresh ids, so no entry can collide.
            by_id.update([(jid, (feed, idx, 0)) for (jid, _), idx in zip(pairs, c.indexes)])
            return
        for (jid, dup), idx in zip(pairs, c.indexes):
            if idx not in feed.live:
                continue  # finished meanwhile (a repeated key answered it)
            entry: _Entry = (feed, idx, dup)
            prev = by_id.get(jid)
            if prev is None:
                by_id[jid] = entry
            elif isinstance(prev, tuple):
                if prev[0] is not feed or prev[1] != idx:
                    by_id[jid] = [prev, entry]
            elif not any(e[0] is feed and e[1] == idx for e in prev):
                prev.append(entry)
            if jid in early:
                status, key, body = early.pop(jid)
                self._finish(jid, status, key, body)

    def _on_busy(self, header: Dict[str, Any], now: float) -> None:
        self.busy_replies += 1
        self._window_from(header)
        req = header.get("req")
        target = self._reqs.pop(req, None) if type(req) is int else None
        retry_ms = header.get("retry_after_ms")
        pause = max(10, retry_ms if type(retry_ms) is int else 100) / 1000.0
        if target is None:
            return
        if type(target) is _Probe:
            if self._probe is target:
                self._probe = None
            self._pause_until = max(self._pause_until, now + pause)
            if not target.initial:
                outstanding = header.get("outstanding")
                if type(outstanding) is int and outstanding < len(self._by_id):
                    self._reattach_all()
            return
        if type(target) is not _Chunk:
            return
        c: _Chunk = target
        if c.acked or c.req != req:
            return  # an older copy; the newest is still in flight
        self._land(c)
        (self._reattach if c.reattach else self._retry).appendleft(c)
        self._pause_until = max(self._pause_until, now + pause)

    def _on_error(self, header: Dict[str, Any], now: float) -> None:
        err = error_from_broker(header)
        req = header.get("req")
        target = self._reqs.pop(req, None) if type(req) is int else None
        if target is None:
            if req is None:
                self.fatal = err
            return
        if isinstance(target, Request):
            target.error = err
            target.done = True
            return
        if type(target) is _Probe:
            if self._probe is target:
                self._probe = None
            self._fail_feed(target.feed, err)
            return
        c: _Chunk = target
        if c.acked or c.req != req:
            return
        self._land(c)
        if isinstance(err, TooLarge) and len(c.records) > 1:
            # Could never fit (window, queue capacity or bytes): send it in halves, and smaller chunks from now on.
            half = len(c.records) // 2
            self.chunk = max(1, min(self.chunk, half))
            first = c.split(half)
            q = self._reattach if c.reattach else self._retry
            q.appendleft(c)
            q.appendleft(first)
            return
        if isinstance(err, TooLarge):
            # One job too large for this broker: it alone fails, with the broker's sentence.
            idx = c.indexes[0]
            if c.feed.live.pop(idx, None) is not None:
                body = err.message.encode("utf-8")
                c.feed.deliver(_new_result(Result, (0, 2, self._key_of(c.records[0]), body, idx, False)))
            return
        # Anything else concerns the whole SUBMIT (batch, route: e.g. a stage the broker does not serve).
        if isinstance(c.feed, StreamFeed):
            c.feed.fail(c.indexes, err)
        else:
            self._fail_feed(c.feed, err)

    def _fail_feed(self, feed: _Feed, err: HumeError) -> None:
        if isinstance(feed, RunFeed):
            if feed.error is None:
                feed.error = err
            self.close_feed(feed)
        elif isinstance(feed, StreamFeed):
            feed.fail(list(feed.tickets), err)
            feed.queue.clear()
            self._retry = deque(c for c in self._retry if c.feed is not feed)

    @staticmethod
    def _key_of(record: bytes) -> str:
        (klen,) = struct.unpack_from("<H", record, 9)
        return record[11:11 + klen].decode("utf-8", "replace")

    def _on_result(self, frames: List[bytes]) -> None:
        by_id_pop = self._by_id.pop
        unpack = _RESULT_HEAD.unpack_from
        u32 = _U32.unpack_from
        for rec in frames[3:]:
            n = len(rec)
            if n < 15:
                raise ProtocolError("A RESULT record is at least 15 bytes; got %d." % n)
            jid, status, klen = unpack(rec, 0)
            (blen,) = u32(rec, 11 + klen) if n >= 15 + klen else (-1,)
            if n != 15 + klen + blen:
                raise ProtocolError("The RESULT record of job %d is %d bytes; its lengths say %d."
                                    % (jid, n, 15 + klen + max(blen, 0)))
            entry = by_id_pop(jid, None)
            if entry is None:
                self._stash(jid, status, rec[11:11 + klen].decode("utf-8", "replace"), rec[15 + klen:])
                continue
            key = rec[11:11 + klen].decode("utf-8", "replace")
            body = rec[15 + klen:]
            if isinstance(entry, tuple):
                feed, idx, dup = entry
                if feed.live.pop(idx, None) is not None:
                    feed.deliver(_new_result(Result, (jid, status, key, body, idx, dup != 0)))
                else:
                    self.duplicate_results += 1
            else:
                for feed, idx, dup in entry:
                    if feed.live.pop(idx, None) is not None:
                        feed.deliver(_new_result(Result, (jid, status, key, body, idx, dup != 0)))

    def _finish(self, jid: int, status: int, key: str, body: bytes) -> None:
        entry = self._by_id.pop(jid, None)
        if entry is None:
            return
        for feed, idx, dup in _entries(entry):
            if feed.live.pop(idx, None) is not None:
                feed.deliver(_new_result(Result, (jid, status, key, body, idx, dup != 0)))

    def _stash(self, jid: int, status: int, key: str, body: bytes) -> None:
        """A result for a job id not (yet) ACKed to this session: kept briefly in case its ACK is still to come."""
        self.duplicate_results += 1
        if len(self._early) >= 10_000:
            self._early.clear()
        self._early[jid] = (status, key, body)

    def _on_progress(self, frames: List[bytes]) -> None:
        for rec in frames[3:]:
            if len(rec) != 10:
                raise ProtocolError("A PROGRESS record is 10 bytes; got %d." % len(rec))
            jid, done, stages = _PROGRESS.unpack(rec)
            entry = self._by_id.get(jid)
            if entry is None:
                continue
            for feed, idx, _ in _entries(entry):
                if isinstance(feed, StreamFeed):
                    t = feed.tickets.get(idx)
                    if t is not None:
                        t.progress = (done, stages)
                elif feed.on_progress is not None:
                    feed.on_progress(idx, done, stages)

    def _reattach_all(self) -> None:
        """Resubmits every unfinished job's record (same keys), grouped by feed, in chunks."""
        self.reattaches += 1
        groups: Dict[_Feed, List[int]] = {}
        for jid, v in list(self._by_id.items()):
            keep = [e for e in _entries(v) if not e[0].closed and e[1] in e[0].live]
            if not keep:
                del self._by_id[jid]  # a closed run's job: the broker no longer counts it for us either
                continue
            for e in keep:
                groups.setdefault(e[0], []).append(e[1])
        for feed, idxs in groups.items():
            idxs.sort()
            for s in range(0, len(idxs), self.chunk):
                part = idxs[s:s + self.chunk]
                self._reattach.append(_Chunk(feed, part, [feed.live[i] for i in part], reattach=True))

    # ------------------------------------------------------------------------------------------------ tickets

    def job_id_of(self, t: Ticket) -> Optional[int]:
        """The broker's id for a streamed job once ACKed (None before)."""
        if t.result is not None:
            return t.result.job_id
        for jid, v in self._by_id.items():
            for feed, idx, _ in _entries(v):
                if feed is t.feed and idx == t.index:
                    return jid
        return None
