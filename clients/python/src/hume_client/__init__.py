"""hume-client: a Python client for Hume, retrieval-augmented diffusion behind a ZeroMQ broker.

::

    from hume_client import Client, Job

    with Client("tcp://127.0.0.1:5556") as c:
        for r in c.run("b1", ["noop"], [Job(key="b1:0", data=b"hello")]):
            print(r.job_id, r.status_name, r.body)

The wire protocol is PROTOCOL.md in the Hume repository; :mod:`hume_client.wire` implements it,
:mod:`hume_client.session` holds the client's rules as a state machine shared by :class:`Client` (blocking) and
:class:`AsyncClient` (asyncio).
"""

from .aio import AsyncClient, AsyncJobHandle, AsyncRunIterator
from .client import EDIT_ROUTE, GENERATE_ROUTE, Client, JobHandle, RunIterator
from .errors import (BadInput, BadRequest, BadVersion, BrokerFailure, ClientClosed, HumeError, JobFailed,
                     ProtocolError, Timeout, TooLarge, Unknown, UnknownStage, UnknownWorker)
from .images import StageImage, encode_png
from .jobs import Job, Result
from .keys import CurveKeys
from .session import Session
from .wire import JobStatus, derive_key

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "Job", "Result", "JobHandle", "AsyncJobHandle", "RunIterator", "AsyncRunIterator",
    "CurveKeys", "StageImage", "encode_png", "JobStatus", "derive_key", "Session", "GENERATE_ROUTE", "EDIT_ROUTE",
    "HumeError", "BadInput", "BadRequest", "BadVersion", "TooLarge", "Unknown", "UnknownStage", "UnknownWorker",
    "BrokerFailure", "ProtocolError", "Timeout", "ClientClosed", "JobFailed", "__version__",
]
