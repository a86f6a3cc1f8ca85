"""Typed errors. Every one carries one English sentence (``message``); errors the broker sent also carry its ``code``
(PROTOCOL.md section 3, "Error codes") and the ``req`` it echoed.

::

    HumeError
    ├── BadInput          this client refused what it was given, before sending anything (also a ValueError)
    ├── BadRequest        broker: bad_request (malformed message, record or header field)
    ├── BadVersion        broker: bad_version
    ├── TooLarge          broker: too_large (frames, header, blob, jobs per SUBMIT)
    ├── Unknown           broker: unknown (command, command on this endpoint, stage not served)
    │   └── UnknownStage  … a route names a stage the broker does not serve
    ├── UnknownWorker     broker: unknown_worker
    ├── BrokerFailure     broker: system, journal, permanent, retryable, timeout, invalid_input, busy, or a code
    │                     this client does not know
    ├── ProtocolError     the broker sent something this client cannot read
    ├── Timeout           this client gave up waiting (also a TimeoutError)
    ├── ClientClosed      the client was used after close()
    └── JobFailed         a job finished, but not ``done`` (status, key, job id and the stage's sentence)
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "HumeError", "BadInput", "BadRequest", "BadVersion", "TooLarge", "Unknown", "UnknownStage", "UnknownWorker",
    "BrokerFailure", "ProtocolError", "Timeout", "ClientClosed", "JobFailed", "error_from_broker",
]


class HumeError(Exception):
    """Base of every error this package raises. ``message`` is the sentence; ``code`` the broker's error code (None
    when the error is this client's own); ``req`` the request id the broker echoed, if any."""

    code: Optional[str] = None

    def __init__(self, message: str, code: Optional[str] = None, req: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.req = req

    def __str__(self) -> str:
        return self.message


class BadInput(HumeError, ValueError):
    """What the caller gave this client cannot be sent (a bad route, batch name, key, params or data). Raised before
    anything goes to the broker."""

    code = "bad_input"


class BadRequest(HumeError):
    """The broker refused a malformed message (``bad_request``)."""

    code = "bad_request"


class BadVersion(HumeError):
    """The broker does not speak this protocol version (``bad_version``)."""

    code = "bad_version"


class TooLarge(HumeError):
    """Over one of the broker's limits (``too_large``): frames, header size, a blob, jobs per SUBMIT."""

    code = "too_large"


class Unknown(HumeError):
    """An unknown command, a command the endpoint does not take, or a stage the broker does not serve (``unknown``)."""

    code = "unknown"


class UnknownStage(Unknown):
    """A route names a stage the broker does not serve; the message lists those it serves."""


class UnknownWorker(HumeError):
    """The broker does not know this worker connection (``unknown_worker``)."""

    code = "unknown_worker"


class BrokerFailure(HumeError):
    """An error code the broker uses inside Hume (``system``, ``journal``…) or one this client does not know."""

    code = "system"


class ProtocolError(HumeError):
    """The broker sent something this client cannot read (not a Hume message, a short record…)."""

    code = "protocol"


class Timeout(HumeError, TimeoutError):
    """This client gave up waiting: every blocking call has a timeout."""

    code = "timeout"


class ClientClosed(HumeError):
    """The client was used after it was closed."""

    code = "closed"


class JobFailed(HumeError):
    """A job finished without being ``done``: ``status`` is its status name (``failed``, ``dead_letter``,
    ``cancelled``, ``expired``), ``message`` the broker's or the stage's sentence."""

    code = "job_failed"

    def __init__(self, message: str, status: str, key: str, job_id: int) -> None:
        super().__init__(message)
        self.status = status
        self.key = key
        self.job_id = job_id

    def __str__(self) -> str:
        return "Job %d (key %r) %s: %s" % (self.job_id, self.key, self.status.replace("_", " "), self.message)


_BY_CODE: Dict[str, Type[HumeError]] = {
    "bad_request": BadRequest,
    "bad_version": BadVersion,
    "too_large": TooLarge,
    "unknown": Unknown,
    "unknown_worker": UnknownWorker,
}


def error_from_broker(header: Dict[str, Any]) -> HumeError:
    """The typed error for an ERROR reply's header (``code``, ``message``, ``req``)."""
    code = str(header.get("code") or "system")
    message = str(header.get("message") or "The broker refused the request (code %s)." % code)
    cls = _BY_CODE.get(code, BrokerFailure)
    if cls is Unknown and message.startswith("Unknown stage"):
        cls = UnknownStage
    return cls(message, code=code, req=header.get("req"))
