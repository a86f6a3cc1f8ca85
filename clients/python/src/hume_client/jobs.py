"""What goes in (:class:`Job`) and what comes back (:class:`Result`)."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, NamedTuple, Optional, Union

from .errors import JobFailed
from .images import StageImage
from .wire import STATUS_NAMES

__all__ = ["Job", "Result", "Params", "Data"]

Params = Union[Dict[str, Any], str, bytes, None]
Data = Union[bytes, bytearray, memoryview, str]


class Job(NamedTuple):
    """One job to submit.

    * ``key``: its idempotency key, unique across the broker's journal (prefix it with the batch name). ``""`` lets
      the broker derive one from batch, route, params and data, so identical content in a batch is one job. Either
      way a re-run of a batch resumes it: finished jobs answer at once from the journal, none runs twice.
    * ``data``: the first stage's input (bytes; a str is sent as UTF-8): a prompt, a PNG…
    * ``params``: the stage parameters, a dict (sent as JSON), JSON text or bytes; see PROTOCOL.md section 11.
    * ``priority``: 0-255, higher runs first. ``deadline_ms``: Unix time in ms after which it is abandoned (0: none).
    """

    key: str = ""
    data: Data = b""
    params: Params = b""
    priority: int = 0
    deadline_ms: int = 0


class Result(NamedTuple):
    """One finished job.

    ``job_id`` is the broker's id (0 when the broker refused the job before giving it one), ``status`` the status
    byte (1 done, 2 failed, 3 dead_letter, 4 cancelled, 5 expired), ``key`` the given or derived key, ``body`` the
    last stage's output when done, else the broker's or stage's sentence (UTF-8). ``index`` is the job's position in
    what was submitted (for :meth:`Client.run`, the position in the iterable; for streamed jobs, the order of
    :meth:`Client.submit` calls); ``duplicate`` is true when the key already named a job (a re-run).
    """

    job_id: int
    status: int
    key: str
    body: bytes
    index: int = -1  # type: ignore[assignment]  # shadows tuple.index on purpose: the job's position
    duplicate: bool = False

    @property
    def status_name(self) -> str:
        """``done``, ``failed``, ``dead_letter``, ``cancelled`` or ``expired``."""
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def ok(self) -> bool:
        """Whether the job is done (every stage succeeded)."""
        return self.status == 1

    @property
    def text(self) -> str:
        """The body as UTF-8 text (replacement characters where it is not)."""
        return self.body.decode("utf-8", "replace")

    @property
    def error(self) -> Optional[str]:
        """The sentence saying why the job did not finish, or None when it is done."""
        return None if self.status == 1 else self.text

    def json(self) -> Any:
        """The body parsed as JSON (e.g. a ``retrieve`` or ``upload`` result)."""
        return json.loads(self.body.decode("utf-8"))

    def image(self) -> StageImage:
        """The body as a stage image (a ``denoise`` or ``edit`` result); raises :class:`JobFailed` if the job is not
        done."""
        self.raise_for_status()
        return StageImage.parse(self.body)

    def raise_for_status(self) -> "Result":
        """Raises :class:`JobFailed` (status, key, job id and the sentence) unless the job is done; returns self."""
        if self.status != 1:
            raise JobFailed(self.text, self.status_name, self.key, self.job_id)
        return self

    def to_json(self) -> Dict[str, Any]:
        """A JSON-able dict: ``job``, ``key``, ``status``, ``duplicate``, and ``output`` (UTF-8 text),
        ``output_b64`` (other bytes) or ``error``."""
        o: Dict[str, Any] = {"job": self.job_id, "key": self.key, "status": self.status_name,
                             "duplicate": self.duplicate}
        try:
            text: Optional[str] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if self.status == 1:
            if text is None:
                o["output_b64"] = base64.b64encode(self.body).decode("ascii")
            else:
                o["output"] = text
        else:
            o["error"] = text if text is not None else self.body.decode("utf-8", "replace")
        return o

    def __repr__(self) -> str:
        body = self.body[:40]
        return "Result(job_id=%d, status=%s, key=%r, body=%r%s, index=%d%s)" % (
            self.job_id, self.status_name, self.key, body, "…" if len(self.body) > 40 else "", self.index,
            ", duplicate" if self.duplicate else "")
