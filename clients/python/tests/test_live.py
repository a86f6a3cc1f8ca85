"""The package against a live broker and no-op workers: batches (sync and asyncio), streams, cancel, status, BUSY,
lazy input, re-attachment after a broker restart, typed errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, Iterator, List

import pytest

from hume_client import (AsyncClient, BadInput, Client, Job, JobFailed, Result, Timeout, UnknownStage, derive_key)


def noop_fleet(fleet: Any, stages: str = "noop", workers: Any = ("noop",), broker_args: Any = (),
               worker_args: Any = ()) -> Any:
    f = fleet(stages, broker_args=broker_args)
    for w in workers:
        f.start_worker(w, *worker_args)
    f.wait_for_workers(len(workers))
    return f


def check_exactly_once(results: List[Result], n: int) -> None:
    seen = [0] * n
    for r in results:
        seen[r.index] += 1
    assert seen == [1] * n, "jobs without exactly one result: %s" % [i for i, k in enumerate(seen) if k != 1][:20]
    assert len({r.job_id for r in results}) == n


@pytest.mark.limit(90)
def test_sync_batch_through_noop(fleet: Any) -> None:
    f = noop_fleet(fleet)
    jobs = [Job(key="sb-%d" % i, data=b"payload %d" % i) for i in range(3000)]
    jobs[5] = Job(key="sb-5", data=b"#invalid")
    with Client(f.clients, chunk=700, timeout=30) as c:
        it = c.run("sb", "noop", jobs)
        results = list(it)
        assert it.submitted == 3000 and it.finished == 3000
        assert c.session.window == 10000
    check_exactly_once(results, 3000)
    for r in results:
        assert r.key == "sb-%d" % r.index and not r.duplicate
        if r.index == 5:
            assert r.status_name == "failed" and r.error == (
                "Stage noop refused the job: The input asks to be refused (#invalid).")
            with pytest.raises(JobFailed) as e:
                r.raise_for_status()
            assert e.value.status == "failed" and e.value.key == "sb-5" and e.value.job_id == r.job_id
            assert "The input asks to be refused" in str(e.value)
        else:
            assert r.ok and r.body == b"payload %d" % r.index
    # Resume: a re-run of the batch answers every job from the journal, with the same ids, and runs none again.
    with Client(f.clients, timeout=30) as c:
        again = {r.index: r for r in c.run("sb", "noop", jobs)}
        st = c.batch_status("sb")
    assert all(again[r.index].job_id == r.job_id and again[r.index].duplicate for r in results)
    assert st is not None and (st["total"], st["done"], st["failed"], st["active"]) == (3000, 2999, 1, 0)


@pytest.mark.limit(90)
def test_asyncio_batch_stream_status_cancel(fleet: Any) -> None:
    f = noop_fleet(fleet, stages="noop,noop1")

    async def main() -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        async with AsyncClient(f.clients, timeout=30) as c:
            out["results"] = [r async for r in c.run("ab", ["noop"], (Job(key="ab-%d" % i, data=str(i))
                                                                      for i in range(2000)))]
            h = await c.submit(Job(key="as-1", data="streamed"), "noop", batch="as")
            r = await h.result(timeout=20)
            out["stream"] = (r.body, r.key, h.job_id == r.job_id, h.done())
            hs = [await c.submit(Job(data="s%d" % i), "noop", batch="as") for i in range(5)]
            out["streamed"] = sorted([r.body async for r in c.results(timeout=20)])
            out["status"] = await c.batch_status("ab")
            waiting = await c.submit(Job(key="aw-1", data="waits"), "noop1", batch="aw")  # noop1 has no worker
            while waiting.job_id is None:
                await asyncio.sleep(0.01)
            out["cancelled"] = await waiting.cancel()
            out["cancel_result"] = await waiting.result(check=False)
            out["hs"] = [h.done() for h in hs]
        return out

    out = asyncio.run(main())
    check_exactly_once(out["results"], 2000)
    assert all(r.body == str(r.index).encode() for r in out["results"])
    assert out["stream"] == (b"streamed", "as-1", True, True)
    assert out["streamed"] == [b"s%d" % i for i in range(5)]
    assert out["hs"] == [True] * 5
    assert out["status"]["total"] == 2000 and out["status"]["done"] == 2000
    assert out["cancelled"] is True
    assert out["cancel_result"].status_name == "cancelled"
    assert out["cancel_result"].error == "Cancelled at the client's request."


@pytest.mark.limit(60)
def test_stream_one_job_handle_and_results(fleet: Any) -> None:
    f = noop_fleet(fleet)
    with Client(f.clients, timeout=20) as c:
        h = c.submit(Job(key="st-1", data=b"hello"), "noop", batch="st")
        assert h.key == "st-1" and not h.done()
        r = h.result()
        assert (r.body, r.key, r.status_name, r.index) == (b"hello", "st-1", "done", 0)
        assert h.done() and h.job_id == r.job_id
        assert list(c.results(timeout=1)) == []  # already taken through the handle
        # Derived keys: the broker's key is the FNV-1a of the content, as derive_key computes it.
        params = {"seed": 3}
        hs = [c.submit(Job(data="d%d" % i, params=params), ["noop"], batch="st") for i in range(3)]
        got = list(c.results())
        assert sorted(r.body for r in got) == [b"d0", b"d1", b"d2"]
        for r in got:
            assert r.key == derive_key("st", ["noop"], params, r.body)
        assert all(h.done() for h in hs)
        # The same content again is the same job: answered at once from the journal.
        again = c.submit(Job(data="d1", params=params), "noop", batch="st").result()
        assert again.duplicate and again.job_id == next(r.job_id for r in got if r.body == b"d1")


@pytest.mark.limit(60)
def test_cancel_a_batch_queued_at_a_stage_without_worker(fleet: Any) -> None:
    f = noop_fleet(fleet, stages="noop,noop1", workers=("noop",))
    with Client(f.clients, timeout=20) as c:
        it = c.run("cq", "noop1", (Job(key="cq-%d" % i, data="q%d" % i) for i in range(40)))
        deadline = time.monotonic() + 20
        while c.session.unfinished < 40:  # status() drives the connection: the jobs go out and are ACKed
            c.status()
            assert time.monotonic() < deadline
        st = c.status()
        queued = next(s for s in st["stages"] if s["name"] == "noop1")
        assert queued["queued"] == 40 and queued["workers"] == 0
        assert c.batch_status("cq")["active"] == 40
        assert c.cancel(batch="cq") == 40
        results = list(it)
        assert c.cancel(batch="cq") == 0  # nothing left to cancel
        st = c.batch_status("cq")
    check_exactly_once(results, 40)
    assert {r.status_name for r in results} == {"cancelled"}
    assert {r.error for r in results} == {"Cancelled at the client's request."}
    assert (st["total"], st["cancelled"], st["active"]) == (40, 40, 0)


@pytest.mark.limit(60)
def test_status_and_batch_status_counts(fleet: Any) -> None:
    f = noop_fleet(fleet, stages="noop,noop2", workers=("noop", "noop2"))
    with Client(f.clients, timeout=20) as c:
        jobs = [Job(key="sc-%d" % i, data="#invalid" if i % 10 == 0 else "x%d" % i) for i in range(100)]
        progress: List[Any] = []
        results = list(c.run("sc", "noop,noop2", jobs, progress=True,
                             on_progress=lambda i, d, n: progress.append((i, d, n))))
        st = c.status()
        b = c.batch_status("sc")
        assert c.batch_status("no-such-batch") is None
    assert len(results) == 100
    assert (b["total"], b["done"], b["failed"], b["active"], b["cancelled"]) == (100, 90, 10, 0, 0)
    assert st["submitted"] == 100 and st["finished"]["done"] == 90 and st["finished"]["failed"] == 10
    assert [s["name"] for s in st["stages"]] == ["noop", "noop2"]
    # PROGRESS: each job that passed noop moved on to noop2, 1 of 2 stages; failed ones never did.
    assert sorted(progress) == [(i, 1, 2) for i in range(100) if i % 10]


@pytest.mark.limit(90)
def test_busy_rate_limited_small_window_finishes_every_job_once(fleet: Any) -> None:
    # A window of 200 jobs and at most 1,000 jobs/s: the client learns the window, and BUSY (rate-limited) replies
    # are waited out and the same jobs sent again.
    f = noop_fleet(fleet, broker_args=["--window", "200", "--client-rate", "1000"])
    n = 2500
    peak = 0
    with Client(f.clients, chunk=150, timeout=30) as c:
        results = []
        for r in c.run("bz", "noop", (Job(key="bz-%d" % i, data=b"%d" % i) for i in range(n))):
            results.append(r)
            peak = max(peak, c.session.unfinished + c.session.in_flight_jobs)
        assert c.session.window == 200
        assert c.session.busy_replies > 0
        st = c.batch_status("bz")
    assert peak <= 200
    check_exactly_once(results, n)
    assert all(r.ok and r.body == b"%d" % r.index for r in results)
    assert (st["total"], st["done"]) == (n, n)


@pytest.mark.limit(90)
def test_too_large_and_busy_at_a_full_stage(fleet: Any) -> None:
    # The first stage holds 40 jobs and its worker is slow: a chunk of 2,500 could never fit (too_large: resent in
    # halves, and chunks stay small); then the stage is full and SUBMITs get BUSY until it drains.
    f = noop_fleet(fleet, broker_args=["--queue-capacity", "40"], worker_args=("--work-ms", "2", "--batch", "1"))
    with Client(f.clients, timeout=30) as c:
        results = list(c.run("tl", "noop", (Job(key="tl-%d" % i, data=b"%d" % i) for i in range(400))))
        assert c.session.chunk <= 40
        assert c.session.busy_replies > 0
        st = c.batch_status("tl")
    check_exactly_once(results, 400)
    assert all(r.ok for r in results)
    assert (st["total"], st["done"]) == (400, 400)


@pytest.mark.limit(90)
def test_a_lazy_generator_is_read_as_the_window_frees(fleet: Any) -> None:
    f = noop_fleet(fleet, broker_args=["--window", "2000"])
    n = 20_000
    pulled = 0

    def jobs() -> Iterator[Job]:
        nonlocal pulled
        for i in range(n):
            pulled += 1
            yield Job(key="lz-%d" % i, data=b"x")

    got = 0
    ahead = 0
    first_pulled = None
    t0 = time.monotonic()
    with Client(f.clients, chunk=500, timeout=30) as c:
        for r in c.run("lz", "noop", jobs()):
            got += 1
            if first_pulled is None:
                first_pulled = pulled
            ahead = max(ahead, pulled - got)
    assert got == n and pulled == n
    assert first_pulled is not None and first_pulled <= 2000
    assert ahead <= 2000 + 500, "the client read %d jobs ahead of its results" % ahead
    # No stalls: a wait that blocks until the client's timeout (30 s) although the run has ended would show here.
    assert time.monotonic() - t0 < 20


@pytest.mark.limit(90)
def test_reattach_after_broker_restart(fleet: Any) -> None:
    """Jobs ACKed and waiting at a stage when the broker dies lose their owner; after the restart the client notices
    the silence, finds the broker no longer counts them for it, resubmits their keys and gets every result."""
    f = noop_fleet(fleet, stages="noop,noop1", workers=("noop",))
    with Client(f.clients, timeout=30, silence=1.0, ack_timeout=1.0) as c:
        it = c.run("ra", "noop1", (Job(key="ra-%d" % i, data=b"%d" % i) for i in range(50)))
        deadline = time.monotonic() + 20
        while c.session.unfinished < 50:
            c.status()
            assert time.monotonic() < deadline
        f.kill_broker()
        f.start_broker()
        f.start_worker("noop1")
        results = list(it)
        assert c.session.reattaches >= 1
    check_exactly_once(results, 50)
    assert all(r.ok and r.body == b"%d" % r.index for r in results)


@pytest.mark.limit(60)
def test_typed_errors_for_bad_input_and_unserved_stages(fleet: Any) -> None:
    f = noop_fleet(fleet)
    with Client(f.clients, timeout=10) as c:
        before = c.status()
        with pytest.raises(BadInput, match="stage name 'Noop' is not valid"):
            c.run("bi", ["Noop"], [b"x"])
        with pytest.raises(BadInput, match="A route names 1 to 16 stages"):
            c.run("bi", [], [b"x"])
        with pytest.raises(BadInput, match="batch name is 201 bytes"):
            c.run("b" * 201, "noop", [b"x"])
        with pytest.raises(BadInput, match=r"Job 1 of batch 'bi': The job key is 70000 bytes; a key is at most 65535"):
            list(c.run("bi", "noop", [Job(key="ok", data=b"x"), Job(key="k" * 70000, data=b"x")]))
        with pytest.raises(BadInput, match="Job 0 of batch 'bi': Job data must be bytes or str, not int"):
            list(c.run("bi", "noop", [Job(key="bi-int", data=5)]))  # type: ignore[arg-type]
        with pytest.raises(BadInput, match="A job must be a hume_client.Job, bytes or str, not int"):
            c.submit(7, "noop")
        with pytest.raises(BadInput, match="priority is a whole number from 0 to 255"):
            c.submit(Job(key="p", data=b"x", priority=300), "noop")
        with pytest.raises(BadInput, match="cannot be written as JSON"):
            c.submit(Job(key="p", data=b"x", params={"f": object()}), "noop")
        with pytest.raises(BadInput, match="cancel needs jobs"):
            c.cancel()
        after = c.status()
        assert after["bad_messages"] == before["bad_messages"] and after["submitted"] == 0
        assert after["batches"] == [] or all(b["total"] == 0 for b in after["batches"])
        # A stage this broker does not serve: the broker's sentence, typed.
        with pytest.raises(UnknownStage) as e:
            list(c.run("us", "embed,retrieve", [b"a red apple"]))
        assert str(e.value) == 'Unknown stage "embed"; this broker serves: noop.' and e.value.code == "unknown"
        with pytest.raises(UnknownStage, match='Unknown stage "denoise"'):
            c.submit(b"x", "denoise").result()
        # Nothing served at a stage: the client gives up after its timeout instead of waiting forever.
    f2 = fleet("noop,noop1")
    with Client(f2.clients, timeout=1.0) as c:
        t0 = time.monotonic()
        with pytest.raises(Timeout, match="No result of batch 'to' came for 1 s"):
            list(c.run("to", "noop1", [b"waits"]))
        with pytest.raises(Timeout):
            c.submit(b"waits too", "noop1", batch="to").result(timeout=0.5)
        assert time.monotonic() - t0 < 10
    with pytest.raises(BadInput, match="ZeroMQ address"):
        Client("localhost:5556")
