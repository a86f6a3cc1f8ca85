"""A local fleet for tests and benchmarks: a ``hume broker`` and ``hume worker`` processes on loopback, started from
a ``hume`` binary, as Hume's own ``LocalFleet`` does (Sources/HumeFleet/LocalFleet.swift).

::

    with LocalFleet("/tmp/f", stages="noop") as fleet:
        fleet.start_worker("noop", "--work-ms", "0", "--batch", "64")
        fleet.wait_for_workers(1)
        with Client(fleet.clients) as c: ...

The broker binds three ephemeral loopback ports and writes them to its ready file; a restart (:meth:`restart_broker`)
binds the same ports again. Every process is killed when the fleet stops. Not part of the client API proper: it
needs the ``hume`` binary (``HUME_BIN``, else ``.build/release/hume`` or ``.build/debug/hume`` of the checkout).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .errors import HumeError

__all__ = ["LocalFleet", "find_hume"]


def find_hume(prefer_release: bool = False) -> str:
    """The ``hume`` binary: ``$HUME_BIN``, else the checkout's ``.build/{debug,release}/hume`` (searched upwards from
    the working directory and from this file), else ``hume`` on PATH."""
    env = os.environ.get("HUME_BIN")
    if env:
        return env
    kinds = ["release", "debug"] if prefer_release else ["debug", "release"]
    starts = [os.getcwd(), os.path.dirname(os.path.abspath(__file__))]
    for start in starts:
        d = start
        while True:
            for k in kinds:
                p = os.path.join(d, ".build", k, "hume")
                if os.access(p, os.X_OK):
                    return p
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
    found = shutil.which("hume")
    if found:
        return found
    raise HumeError("No hume binary: set HUME_BIN, or build Hume (swift build) in this checkout.")


class LocalFleet:
    """A broker and workers as child processes, logs in ``directory``."""

    def __init__(self, directory: str, stages: str = "noop", broker_args: Sequence[str] = (),
                 hume: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
                 startup_timeout: float = 30.0, curve: Any = False) -> None:
        self.directory = directory
        self.curve = curve  # keys for this process's own STATUS requests (False: plaintext)
        os.makedirs(directory, exist_ok=True)
        self.hume = hume or find_hume()
        self.env = dict(os.environ)
        self.env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.env.update(env or {})
        self.broker_args = ["--stages", stages] + list(broker_args)
        self.bind = {"workers": "tcp://127.0.0.1:*", "clients": "tcp://127.0.0.1:*", "control": "tcp://127.0.0.1:*"}
        self.broker: Optional["subprocess.Popen[bytes]"] = None
        self.workers: List["subprocess.Popen[bytes]"] = []
        self._logs: List[Any] = []
        self._serial = 0
        self.start_broker(startup_timeout)

    # endpoints, once the broker has bound them
    @property
    def clients(self) -> str:
        return self.bind["clients"]

    @property
    def control(self) -> str:
        return self.bind["control"]

    @property
    def workers_endpoint(self) -> str:
        return self.bind["workers"]

    def _spawn(self, args: List[str], log_name: str,
               env: Optional[Mapping[str, str]] = None) -> "subprocess.Popen[bytes]":
        log = open(os.path.join(self.directory, log_name), "ab")
        self._logs.append(log)
        e = dict(self.env)
        e.update(env or {})
        return subprocess.Popen([self.hume] + args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=e, start_new_session=True)

    def start_broker(self, timeout: float = 30.0) -> None:
        """Starts (or restarts, on the same ports) the broker and waits until it listens."""
        ready = os.path.join(self.directory, "broker.ready")
        if os.path.exists(ready):
            os.remove(ready)
        args = ["broker", "--journal", os.path.join(self.directory, "journal.sqlite"), "--ready-file", ready,
                "--bind-workers", self.bind["workers"], "--bind-clients", self.bind["clients"],
                "--bind-control", self.bind["control"]] + self.broker_args
        self.broker = self._spawn(args, "broker.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(ready) as f:
                    j = json.load(f)
                if all(isinstance(j.get(k), str) for k in ("workers", "clients", "control")):
                    self.bind = {k: j[k] for k in ("workers", "clients", "control")}
                    return
            except (OSError, ValueError):
                pass
            if self.broker.poll() is not None:
                raise HumeError("The broker exited at start-up (status %s); see %s: %s" % (
                    self.broker.returncode, os.path.join(self.directory, "broker.log"), self.log("broker.log")[-800:]))
            time.sleep(0.02)
        raise HumeError("The broker did not write %s within %g s." % (ready, timeout))

    def kill_broker(self) -> None:
        """kill -9 of the broker."""
        if self.broker is not None and self.broker.poll() is None:
            self.broker.send_signal(signal.SIGKILL)
            self.broker.wait(10)

    restart_broker = start_broker

    def start_worker(self, stage: str, *args: str,
                     env: Optional[Mapping[str, str]] = None) -> "subprocess.Popen[bytes]":
        """Starts ``hume worker STAGE`` against this broker."""
        self._serial += 1
        name = "%s-%d" % (stage, self._serial)
        p = self._spawn(["worker", stage, "--broker", self.bind["workers"], "--name", name] + list(args),
                        name + ".log", env)
        self.workers.append(p)
        return p

    def status(self, timeout: float = 5.0) -> Dict[str, Any]:
        """STATUS from the control endpoint."""
        from .client import Client

        with Client(self.control, timeout=timeout, curve=self.curve) as c:
            return c.status()

    def wait_for_workers(self, count: int, timeout: float = 30.0, stage: Optional[str] = None) -> None:
        """Waits until ``count`` workers (of ``stage``, if given) have joined."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ws = self.status().get("workers") or []
                if len([w for w in ws if stage is None or w.get("stage") == stage]) >= count:
                    return
            except HumeError:
                pass
            time.sleep(0.05)
        raise HumeError("Fewer than %d workers joined within %g s." % (count, timeout))

    def log(self, name: str) -> str:
        try:
            with open(os.path.join(self.directory, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        """Stops every process: the workers first (SIGTERM: they drain and leave), then the broker; SIGKILL for any
        still running after 5 s. Safe to call twice."""
        for group in (self.workers, [self.broker] if self.broker else []):
            procs = [p for p in group if p.poll() is None]
            for p in procs:
                try:
                    p.send_signal(signal.SIGTERM)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            for p in procs:
                try:
                    p.wait(max(0.01, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for f in self._logs:
            f.close()
        self._logs = []

    def __enter__(self) -> "LocalFleet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
