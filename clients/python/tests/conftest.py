"""Fixtures: real fleets (a ``hume broker`` and ``hume worker`` processes on loopback) and a time limit per test.

The ``hume`` binary is ``$HUME_BIN``, else the checkout's ``.build/debug/hume``. Every process a test starts is
killed when it ends. Every test is bounded in time (``@pytest.mark.limit(seconds)``, default 120 s) by SIGALRM,
so no plugin is needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any, Callable, Iterator, List

import pytest

from hume_client.fleet import LocalFleet

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_LIMIT = 120


def hume_bin() -> str:
    path = os.environ.get("HUME_BIN") or os.path.join(REPO, ".build", "debug", "hume")
    if not os.access(path, os.X_OK):
        pytest.fail("No hume binary at %s: build Hume (swift build) or set HUME_BIN." % path, pytrace=False)
    return path


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "limit(seconds): fail the test if it runs longer than this (default 120)")


class _TimeLimit(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any) -> Iterator[None]:
    m = item.get_closest_marker("limit")
    seconds = int(m.args[0]) if m else DEFAULT_LIMIT

    def alarm(signum: int, frame: Any) -> None:
        raise _TimeLimit("The test ran longer than its limit of %d s." % seconds)

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def fleet(tmp_path: Any) -> Iterator[Callable[..., LocalFleet]]:
    """``fleet(stages="noop", broker_args=[...], env={...}, curve=keys)`` starts a fleet in a fresh directory; all of
    them are stopped (every process killed) when the test ends."""
    made: List[LocalFleet] = []

    def make(stages: str = "noop", broker_args: Any = (), env: Any = None, curve: Any = False) -> LocalFleet:
        f = LocalFleet(str(tmp_path / ("fleet%d" % len(made))), stages=stages, broker_args=list(broker_args),
                       hume=hume_bin(), env=env, curve=curve)
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def run_cli(args: List[str], stdin: str = "", env: Any = None, timeout: float = 90) -> subprocess.CompletedProcess:
    """``python -m hume_client ARGS`` with this interpreter; its stdin, stdout and stderr as text."""
    e = dict(os.environ)
    e.pop("HUME_CURVE_KEY", None)
    e.pop("HUME_SERVER_KEY", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "hume_client"] + args, input=stdin, capture_output=True, text=True,
                          env=e, timeout=timeout)
