"""Hume wire protocol, version 1: frames, records, encoding and decoding (PROTOCOL.md sections 2, 3 and 5).

Everything here is pure: bytes in, bytes out, no sockets. Every check raises :class:`~hume_client.errors.BadInput`
(something the caller gave this client) or :class:`~hume_client.errors.ProtocolError` (something the broker sent that
this client cannot read), each with one sentence saying what was wrong.
"""

from __future__ import annotations

import json
import re
import struct
from enum import IntEnum
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import BadInput, ProtocolError

__all__ = [
    "SIGNATURE", "VERSION", "MAX_FRAMES", "MAX_RECORDS", "MAX_HEADER_BYTES", "MAX_BLOB_BYTES", "MAX_KEY_BYTES",
    "MAX_BATCH_BYTES", "MAX_ROUTE_STAGES", "JobStatus", "STATUS_NAMES", "Message", "SubmitRecord", "ResultRecord",
    "ProgressRecord", "encode_message", "decode_message", "encode_header", "encode_submit_record",
    "decode_submit_record", "decode_ack_record", "decode_ack_records", "decode_result_record",
    "decode_progress_record", "check_batch", "check_route", "derive_key", "params_bytes",
]

#: Frame 0 of every message: "HUME" and the protocol version byte.
SIGNATURE = b"HUME\x01"
VERSION = 1
#: Most frames in one message (signature + command + header + 100,000 records).
MAX_FRAMES = 100_003
#: Most records (jobs) in one SUBMIT.
MAX_RECORDS = 10_000
#: Largest header frame.
MAX_HEADER_BYTES = 65_536
#: Largest params or data blob (SUBMIT) and stage body.
MAX_BLOB_BYTES = 32 * 1024 * 1024
#: Largest key (a u16 length).
MAX_KEY_BYTES = 65_535
#: A batch name is 1-200 UTF-8 bytes.
MAX_BATCH_BYTES = 200
#: A route is 1-16 stage names.
MAX_ROUTE_STAGES = 16

_STAGE_NAME = re.compile(r"[a-z0-9_-]{1,32}\Z")

# Precompiled record layouts (all little-endian, PROTOCOL.md 5.x).
_SUBMIT_HEAD = struct.Struct("<BQH")  # priority, deadline_ms, key length
_U32 = struct.Struct("<I")
_ACK = struct.Struct("<QB")  # job id, duplicate
_RESULT_HEAD = struct.Struct("<QBH")  # job id, status, key length
_PROGRESS = struct.Struct("<QBB")  # job id, stages done, stages in route


class JobStatus(IntEnum):
    """A job's status (the RESULT ``status`` byte; PROTOCOL.md section 3)."""

    ACTIVE = 0
    DONE = 1
    FAILED = 2
    DEAD_LETTER = 3
    CANCELLED = 4
    EXPIRED = 5

    @property
    def label(self) -> str:
        """The protocol's name for the status: ``done``, ``failed``, ``dead_letter``…"""
        return STATUS_NAMES[int(self)]


#: Status byte -> the protocol's name (as in STATUS batch counters).
STATUS_NAMES: Dict[int, str] = {0: "active", 1: "done", 2: "failed", 3: "dead_letter", 4: "cancelled", 5: "expired"}


class Message(NamedTuple):
    """One decoded message: its command name, header object and record frames."""

    command: str
    header: Dict[str, Any]
    records: List[bytes]


class SubmitRecord(NamedTuple):
    """A decoded SUBMIT record (5.1)."""

    priority: int
    deadline_ms: int
    key: str
    params: bytes
    data: bytes


class ResultRecord(NamedTuple):
    """A decoded RESULT record (5.3)."""

    job_id: int
    status: int
    key: str
    body: bytes


class ProgressRecord(NamedTuple):
    """A decoded PROGRESS record (5.4): ``done`` of ``stages`` stages finished."""

    job_id: int
    done: int
    stages: int


# ---------------------------------------------------------------------------------------------------------- messages


def encode_header(header: Optional[Mapping[str, Any]]) -> bytes:
    """A header frame: the object as compact UTF-8 JSON (``{}`` for None)."""
    if not header:
        return b"{}"
    try:
        h = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise BadInput("The message header cannot be written as JSON: %s." % e) from None
    if len(h) > MAX_HEADER_BYTES:
        raise BadInput("The message header is %d bytes; the protocol allows at most %d." % (len(h), MAX_HEADER_BYTES))
    return h


def encode_message(command: str, header: Optional[Mapping[str, Any]] = None,
                   records: Sequence[bytes] = ()) -> List[bytes]:
    """The frames of one message: signature, command name, header JSON, then one frame per record."""
    if len(records) + 3 > MAX_FRAMES:
        raise BadInput("A message may have at most %d records; this one has %d." % (MAX_FRAMES - 3, len(records)))
    frames = [SIGNATURE, command.encode("ascii"), encode_header(header)]
    frames.extend(records)
    return frames


def decode_message(frames: Sequence[bytes]) -> Message:
    """Decodes the frames a DEALER receives (no routing id). Raises :class:`ProtocolError` for what is not a Hume
    message."""
    if len(frames) < 3:
        raise ProtocolError("A Hume message needs at least 3 frames (signature, command, header); got %d."
                            % len(frames))
    sig = bytes(frames[0])
    if len(sig) != 5 or sig[:4] != b"HUME":
        raise ProtocolError("The first frame is not the Hume signature; got %r." % sig[:16])
    if sig[4] != VERSION:
        raise ProtocolError("The broker speaks protocol version %d; this client speaks %d." % (sig[4], VERSION))
    try:
        command = bytes(frames[1]).decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("The command name is not ASCII: %r." % bytes(frames[1])[:32]) from None
    raw = bytes(frames[2])
    header: Dict[str, Any]
    if raw:
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError("The %s header is not valid JSON: %s." % (command, e)) from None
        if not isinstance(header, dict):
            raise ProtocolError("The %s header must be a JSON object." % command)
    else:
        header = {}
    return Message(command, header, [bytes(f) for f in frames[3:]] if not isinstance(frames, list)
                   else frames[3:])


# ---------------------------------------------------------------------------------------------------------- checks


def check_batch(batch: Any) -> str:
    """The batch name if it is a string of 1-200 UTF-8 bytes, else :class:`BadInput`."""
    if not isinstance(batch, str):
        raise BadInput("The batch name must be a string, not %s." % type(batch).__name__)
    n = len(batch.encode("utf-8", "surrogatepass"))
    if not 1 <= n <= MAX_BATCH_BYTES:
        raise BadInput("The batch name is %d bytes; it must be 1 to %d bytes of UTF-8." % (n, MAX_BATCH_BYTES))
    try:
        batch.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("The batch name %r is not valid UTF-8 (it holds a lone surrogate)." % batch) from None
    return batch


def check_route(route: Union[str, Iterable[str]]) -> List[str]:
    """The route as a list of stage names (a comma-separated string is split), else :class:`BadInput`: 1-16 names of
    1-32 characters from ``a-z 0-9 _ -``."""
    if isinstance(route, str):
        names = [s for s in route.split(",")]
    else:
        try:
            names = list(route)
        except TypeError:
            raise BadInput("The route must be a list of stage names or a comma-separated string, not %s."
                           % type(route).__name__) from None
    if not 1 <= len(names) <= MAX_ROUTE_STAGES:
        raise BadInput("A route names 1 to %d stages; this one names %d." % (MAX_ROUTE_STAGES, len(names)))
    for name in names:
        if not isinstance(name, str):
            raise BadInput("A stage name must be a string, not %s." % type(name).__name__)
        if not _STAGE_NAME.match(name):
            raise BadInput("The stage name %r is not valid: a stage name is 1 to 32 characters of a-z, 0-9, _ and -."
                           % name)
    return names


def params_bytes(params: Any) -> bytes:
    """Job params as the bytes sent: a mapping becomes compact JSON, a string its UTF-8, bytes stay as they are."""
    if params is None:
        return b""
    if isinstance(params, bytes):
        return params
    if isinstance(params, str):
        return params.encode("utf-8")
    if isinstance(params, Mapping):
        try:
            return json.dumps(params, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise BadInput("The job params cannot be written as JSON: %s." % e) from None
    if isinstance(params, (bytearray, memoryview)):
        return bytes(params)
    raise BadInput("Job params must be a dict, str or bytes, not %s." % type(params).__name__)


def _blob(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        b = value
    elif isinstance(value, str):
        b = value.encode("utf-8")
    elif isinstance(value, (bytearray, memoryview)):
        b = bytes(value)
    else:
        raise BadInput("Job %s must be bytes or str, not %s." % (what, type(value).__name__))
    if len(b) > MAX_BLOB_BYTES:
        raise BadInput("Job %s is %d bytes; the protocol allows at most %d (32 MiB)." % (what, len(b), MAX_BLOB_BYTES))
    return b


# ---------------------------------------------------------------------------------------------------------- records


def encode_submit_record(key: Union[str, bytes] = "", data: Any = b"", params: Any = b"", priority: int = 0,
                         deadline_ms: int = 0) -> bytes:
    """A SUBMIT record (5.1): u8 priority, u64 deadline_ms, u16 + key, u32 + params, u32 + data.

    ``key`` "" lets the broker derive the key from the content (section 7). ``data`` is bytes or str (UTF-8);
    ``params`` a dict (JSON), str or bytes. Raises :class:`BadInput` for anything the broker would refuse.
    """
    if isinstance(key, str):
        try:
            kb = key.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput("The job key %r is not valid UTF-8 (it holds a lone surrogate)." % key[:64]) from None
    elif isinstance(key, (bytes, bytearray)):
        kb = bytes(key)
        try:
            kb.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("The job key is not valid UTF-8.") from None
    else:
        raise BadInput("A job key must be a string, not %s." % type(key).__name__)
    if len(kb) > MAX_KEY_BYTES:
        raise BadInput("The job key is %d bytes; a key is at most %d bytes of UTF-8." % (len(kb), MAX_KEY_BYTES))
    pb = params if type(params) is bytes else params_bytes(params)
    if len(pb) > MAX_BLOB_BYTES:
        raise BadInput("Job params are %d bytes; the protocol allows at most %d (32 MiB)." % (len(pb), MAX_BLOB_BYTES))
    db = _blob(data, "data")
    if type(priority) is not int or not 0 <= priority <= 255:
        raise BadInput("A job priority is a whole number from 0 to 255, not %r." % (priority,))
    if type(deadline_ms) is not int or not 0 <= deadline_ms < 1 << 64:
        raise BadInput("A job deadline_ms is a whole number of Unix milliseconds (0 for none), not %r."
                       % (deadline_ms,))
    return b"".join((_SUBMIT_HEAD.pack(priority, deadline_ms, len(kb)), kb, _U32.pack(len(pb)), pb,
                     _U32.pack(len(db)), db))


class _Reader:
    __slots__ = ("b", "o", "what")

    def __init__(self, b: bytes, what: str) -> None:
        self.b, self.o, self.what = b, 0, what

    def take(self, n: int, field: str) -> bytes:
        if self.o + n > len(self.b):
            raise ProtocolError("The %s is truncated: %s needs %d bytes at offset %d of %d."
                                % (self.what, field, n, self.o, len(self.b)))
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def unpack(self, s: struct.Struct, field: str) -> Tuple[Any, ...]:
        return s.unpack(self.take(s.size, field))

    def end(self) -> None:
        if self.o != len(self.b):
            raise ProtocolError("The %s has %d trailing bytes." % (self.what, len(self.b) - self.o))


def decode_submit_record(rec: bytes) -> SubmitRecord:
    """Decodes a SUBMIT record (the inverse of :func:`encode_submit_record`)."""
    r = _Reader(bytes(rec), "SUBMIT record")
    priority, deadline, klen = r.unpack(_SUBMIT_HEAD, "the fixed fields")
    key = r.take(klen, "key")
    (plen,) = r.unpack(_U32, "params length")
    params = r.take(plen, "params")
    (dlen,) = r.unpack(_U32, "data length")
    data = r.take(dlen, "data")
    r.end()
    try:
        k = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("The SUBMIT record's key is not UTF-8.") from None
    return SubmitRecord(priority, deadline, k, params, data)


def decode_ack_record(rec: bytes) -> Tuple[int, bool]:
    """(job id, duplicate) from an ACK record (5.2)."""
    if len(rec) != 9:
        raise ProtocolError("An ACK record is 9 bytes; got %d." % len(rec))
    job_id, dup = _ACK.unpack(rec)
    return job_id, dup != 0


def decode_ack_records(records: Sequence[bytes]) -> List[Tuple[int, int]]:
    """Every ACK record of a message as (job id, duplicate byte), decoded in one pass."""
    if not records:
        return []
    if set(map(len, records)) != {9}:
        bad = next(len(r) for r in records if len(r) != 9)
        raise ProtocolError("An ACK record is 9 bytes; got %d." % bad)
    return list(_ACK.iter_unpack(b"".join(records)))


def decode_result_record(rec: bytes) -> ResultRecord:
    """Decodes a RESULT record (5.3)."""
    n = len(rec)
    if n < 15:
        raise ProtocolError("A RESULT record is at least 15 bytes; got %d." % n)
    job_id, status, klen = _RESULT_HEAD.unpack_from(rec, 0)
    if n < 15 + klen:
        raise ProtocolError("The RESULT record of job %d is truncated (key of %d bytes in %d)." % (job_id, klen, n))
    (blen,) = _U32.unpack_from(rec, 11 + klen)
    if n != 15 + klen + blen:
        raise ProtocolError("The RESULT record of job %d is %d bytes; its lengths say %d."
                            % (job_id, n, 15 + klen + blen))
    try:
        key = rec[11:11 + klen].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("The RESULT record of job %d has a key that is not UTF-8." % job_id) from None
    return ResultRecord(job_id, status, key, rec[15 + klen:])


def decode_progress_record(rec: bytes) -> ProgressRecord:
    """Decodes a PROGRESS record (5.4)."""
    if len(rec) != 10:
        raise ProtocolError("A PROGRESS record is 10 bytes; got %d." % len(rec))
    return ProgressRecord(*_PROGRESS.unpack(rec))


# ---------------------------------------------------------------------------------------------------------- keys

_FNV_OFFSET = 0x6C62272E07BB014262B821756295C58D
_FNV_PRIME = (1 << 88) + 0x13B
_MASK128 = (1 << 128) - 1


def derive_key(batch: str, route: Union[str, Iterable[str]], params: Any = b"", data: Any = b"") -> str:
    """The key the broker derives for a job sent with an empty key (section 7): ``<batch>#<32 hex digits>``, the
    128-bit FNV-1a of ``batch 00 route 00 params 00 data``. Pure Python: about 0.1 µs per byte."""
    names = check_route(route)
    h = _FNV_OFFSET
    for part in (batch.encode("utf-8"), b"\x00", ",".join(names).encode("utf-8"), b"\x00", params_bytes(params),
                 b"\x00", _blob(data, "data")):
        for byte in part:
            h = ((h ^ byte) * _FNV_PRIME) & _MASK128
    return "%s#%032x" % (batch, h)
