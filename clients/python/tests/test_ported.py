"""The four checks of the Swift suite this package replaced (Tests/HumeIntegrationTests/PythonClientTests.swift, which
drove Ops/examples/hume_client.py): submit and resume by keys, a lost SUBMIT sent again after a broker restart,
CURVE, malformed messages. Here they drive ``python -m hume_client`` and the package against a live broker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Dict, List

import pytest
import zmq

from hume_client import Client, wire
from hume_client.errors import BadRequest, BadVersion, Unknown
from hume_client.keys import CurveKeys

from conftest import hume_bin, run_cli


def json_lines(s: str) -> List[Dict[str, Any]]:
    out = []
    for line in s.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


@pytest.mark.limit(120)
def test_submit_and_resume_by_keys(fleet: Any) -> None:
    """50 jobs through noop: 49 echo their input, #invalid fails permanently, a re-run gets the same job ids."""
    f = fleet("noop")
    f.start_worker("noop")
    f.wait_for_workers(1)
    lines = ["line %d payload" % i for i in range(50)]
    lines[17] = "line 17 #invalid please refuse"
    stdin = "\n".join(lines) + "\n"
    args = ["--broker", f.clients, "--route", "noop", "--batch", "pybatch", "--timeout", "60"]

    p = run_cli(args, stdin)
    assert p.returncode == 0, p.stderr
    results = json_lines(p.stdout)
    assert len(results) == 50, p.stdout
    ids = {}
    done = failed = 0
    for r in results:
        line = r["line"]
        assert r["key"] == "pybatch-%d" % line
        ids[r["key"]] = r["job"]
        assert r["duplicate"] is False
        if r["status"] == "done":
            done += 1
            assert r["output"] == lines[line]
        else:
            assert r["status"] == "failed" and line == 17
            assert r["error"] == "Stage noop refused the job: The input asks to be refused (#invalid)."
            failed += 1
    assert (done, failed) == (49, 1)
    assert len(set(ids.values())) == 50
    assert "all 50 jobs finished" in p.stderr

    # The same batch again: every key is a duplicate, answered at once from the journal with the same ids.
    p2 = run_cli(args, stdin)
    assert p2.returncode == 0, p2.stderr
    again = json_lines(p2.stdout)
    assert len(again) == 50
    for r in again:
        assert r["job"] == ids[r["key"]], "%s changed id" % r["key"]
        assert r["duplicate"] is True
    assert sum(r["status"] == "done" for r in again) == 49

    # STATUS through the CLI (control endpoint): the batch's counts.
    p3 = run_cli(["--control", f.control, "--status"])
    assert p3.returncode == 0, p3.stderr
    status = json.loads(p3.stdout)
    batch = next(b for b in status["batches"] if b["batch"] == "pybatch")
    assert (batch["total"], batch["done"], batch["failed"]) == (50, 49, 1)
    assert status["submitted"] == 50


@pytest.mark.limit(150)
def test_lost_submit_is_resent_after_broker_restart(fleet: Any) -> None:
    """A SUBMIT the broker took and died with is sent again: the client finishes after the restart instead of
    hanging. A stand-in ROUTER on the broker's port answers the client's window request, swallows its first SUBMIT
    of jobs and goes away; then the real broker comes back on the same port."""
    f = fleet("noop")
    f.start_worker("noop")
    f.wait_for_workers(1)
    f.kill_broker()
    ctx = zmq.Context.instance()
    sink = ctx.socket(zmq.ROUTER)
    sink.setsockopt(zmq.LINGER, 0)
    sink.bind(f.clients)
    stdin = "".join("lost %d\n" % i for i in range(20))
    out: Dict[str, Any] = {}

    def client() -> None:
        out["p"] = run_cli(["--broker", f.clients, "--route", "noop", "--batch", "lost", "--timeout", "120"], stdin,
                           timeout=140)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    swallowed = None
    deadline = time.monotonic() + 60
    while swallowed is None and time.monotonic() < deadline:
        if not sink.poll(100):
            continue
        frames = sink.recv_multipart()
        peer, msg = frames[0], frames[1:]
        if msg[1] != b"SUBMIT":
            continue
        header = json.loads(msg[2])
        if len(msg) == 3:  # the zero-record SUBMIT that asks for the window: answer it as the broker would
            sink.send_multipart([peer, wire.SIGNATURE, b"ACK", json.dumps(
                {"req": header["req"], "accepted": 0, "duplicates": 0, "window": 10000, "outstanding": 0}).encode()])
        else:
            swallowed = len(msg) - 3
    sink.close(0)
    assert swallowed == 20, "the client's SUBMIT of 20 jobs should reach the stand-in"
    f.start_broker()
    t.join(140)
    p = out["p"]
    assert p.returncode == 0, p.stderr
    results = json_lines(p.stdout)
    assert len(results) == 20 and all(r["status"] == "done" for r in results), p.stdout
    assert sorted(r["line"] for r in results) == list(range(20))


def _keys(dir: str) -> Dict[str, str]:
    os.makedirs(dir + "/allowed", exist_ok=True)
    for name in ("broker", "worker", "client"):
        subprocess.run([hume_bin(), "keys", "generate", name, "--dir", dir], check=True, capture_output=True)
    for name in ("worker", "client"):
        shutil.copy("%s/%s.pub" % (dir, name), "%s/allowed/%s.pub" % (dir, name))
    return {"dir": dir}


@pytest.mark.limit(120)
def test_curve_from_environment(fleet: Any, tmp_path: Any) -> None:
    """The client speaks CURVE from HUME_CURVE_KEY/HUME_SERVER_KEY; without them it gets no answer."""
    d = str(tmp_path / "keys")
    _keys(d)
    client_keys = CurveKeys.from_files(d + "/client.key", d + "/broker.pub")
    f = fleet("noop", broker_args=["--curve-key", d + "/broker.key", "--allow-keys", d + "/allowed"],
              env={"HUME_CURVE_KEY": d + "/worker.key", "HUME_SERVER_KEY": d + "/broker.pub"}, curve=client_keys)
    f.start_worker("noop")
    f.wait_for_workers(1)
    args = ["--broker", f.clients, "--route", "noop", "--batch", "pycurve", "--timeout", "20"]
    env = {"HUME_CURVE_KEY": d + "/client.key", "HUME_SERVER_KEY": d + "/broker.pub"}
    p = run_cli(args, "one\ntwo\n", env=env)
    assert p.returncode == 0, p.stderr
    assert {r.get("output") for r in json_lines(p.stdout)} == {"one", "two"}
    # The server key given as Z85 text instead of a file works too.
    with open(d + "/broker.pub") as fh:
        z85 = fh.read().strip()
    args_z85 = ["--broker", f.clients, "--route", "noop", "--batch", "pycurve-z85", "--timeout", "20"]
    p = run_cli(args_z85, "three\n", env={"HUME_CURVE_KEY": d + "/client.key", "HUME_SERVER_KEY": z85})
    assert p.returncode == 0 and json_lines(p.stdout)[0]["output"] == "three", p.stderr
    # Plaintext: no handshake, so no reply at all; the client gives up after its timeout.
    t0 = time.monotonic()
    p2 = run_cli(["--broker", f.clients, "--route", "noop", "--batch", "pyplain", "--timeout", "3"], "four\n")
    assert p2.returncode == 1
    assert not any(r.get("status") == "done" for r in json_lines(p2.stdout)), "plaintext must get nothing done"
    assert "hume_client:" in p2.stderr and "giving up" in p2.stderr
    assert time.monotonic() - t0 < 30
    # And the library: the same keys as an object.
    with Client(f.clients, curve=client_keys, timeout=20) as c:
        assert [r.body for r in c.run("pycurve2", "noop", [b"five"])] == [b"five"]


@pytest.mark.limit(60)
def test_malformed_messages_get_errors(fleet: Any) -> None:
    """Malformed messages get ERROR replies with the right codes and req; the broker still answers STATUS."""
    f = fleet("noop")
    ctx = zmq.Context.instance()

    def ask(endpoint: str, frames: List[bytes]) -> wire.Message:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        try:
            s.send_multipart(frames)
            assert s.poll(10000), "no reply"
            return wire.decode_message(s.recv_multipart())
        finally:
            s.close(0)

    bad_sig = ask(f.clients, [b"HUMX\x01", b"SUBMIT", b"{}"])
    assert bad_sig.command == "ERROR" and bad_sig.header["code"] == "bad_request" and bad_sig.header["req"] is None
    bad_version = ask(f.clients, [b"HUME\x02", b"STATUS", b"{}"])
    assert bad_version.command == "ERROR" and bad_version.header["code"] == "bad_version"
    unknown = ask(f.clients, [wire.SIGNATURE, b"FROBNICATE", b'{"req":7}'])
    assert unknown.command == "ERROR" and unknown.header["code"] == "unknown"
    assert "FROBNICATE" in unknown.header["message"] and unknown.header["req"] is None  # header never read
    wrong_endpoint = ask(f.clients, [wire.SIGNATURE, b"READY", b'{"req":8}'])
    assert wrong_endpoint.command == "ERROR" and wrong_endpoint.header["code"] == "unknown"
    assert wrong_endpoint.header["req"] == 8
    truncated = ask(f.clients, [wire.SIGNATURE, b"SUBMIT", b'{"req":9,"batch":"b","route":["noop"]}', b"\x00\x01"])
    assert truncated.command == "ERROR" and truncated.header["code"] == "bad_request" and truncated.header["req"] == 9
    assert truncated.header["message"].startswith("SUBMIT record 0 is truncated")
    # The package maps those codes to typed errors carrying the broker's sentence.
    for m, cls in ((bad_sig, BadRequest), (bad_version, BadVersion), (unknown, Unknown), (truncated, BadRequest)):
        e = wire_error(m)
        assert isinstance(e, cls) and str(e) == m.header["message"] and e.code == m.header["code"]
    with Client(f.control, timeout=10) as c:
        st = c.status()
    assert st["bad_messages"] >= 5
    assert st["submitted"] == 0


def wire_error(m: wire.Message) -> Exception:
    from hume_client.errors import error_from_broker

    return error_from_broker(m.header)
