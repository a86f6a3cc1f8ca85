"""``python -m hume_client.bench``: how many no-op jobs a second this package moves through a real broker.

Starts a broker (``--stages noop``) and one no-op worker (``--work-ms 0 --batch 64``, as ``hume bench submit``
does) from a ``hume`` binary (``HUME_BIN``, else the checkout's release build, else its debug build), submits
``--jobs`` jobs (key ``bench:I``, data ``a sticker of job number I``) with :meth:`hume_client.Client.run`, counts the
results, and repeats with a fresh fleet ``--runs`` times. Prints JSON: every run's jobs/s, the median, the client's
CPU per job (and the broker's and the worker's, from /proc), and a check that every job finished exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from .client import Client
from .fleet import LocalFleet, find_hume
from .jobs import Job


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), or NaN elsewhere."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def one_run(hume: str, jobs: int, chunk: int, max_in_flight: int, directory: str, worker_batch: int,
            broker_args: List[str], asyncio_client: bool) -> Dict[str, Any]:
    with LocalFleet(directory, stages="noop", hume=hume, broker_args=broker_args) as fleet:
        worker = fleet.start_worker("noop", "--work-ms", "0", "--batch", str(worker_batch))
        fleet.wait_for_workers(1)
        data = ["a sticker of job number %d" % i for i in range(jobs)]  # made before the clock starts
        keys = ["bench:%d" % i for i in range(jobs)]
        seen = bytearray(jobs)
        done = 0
        assert fleet.broker is not None
        others0 = (_cpu_seconds(fleet.broker.pid), _cpu_seconds(worker.pid))
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        if asyncio_client:
            done, busy = _run_async(fleet.clients, keys, data, chunk, max_in_flight, seen)
        else:
            with Client(fleet.clients, chunk=chunk, max_in_flight=max_in_flight, timeout=60, curve=False) as c:
                for r in c.run("bench", "noop", map(Job, keys, data)):
                    seen[r.index] += 1
                    done += r.status == 1
                busy = c.session.busy_replies
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        others1 = (_cpu_seconds(fleet.broker.pid), _cpu_seconds(worker.pid))
        status = fleet.status()
    return {"jobs": jobs, "seconds": round(seconds, 3), "jobs_per_s": round(jobs / seconds),
            "client_cpu_us_per_job": round(cpu / jobs * 1e6, 2),
            "broker_cpu_us_per_job": round((others1[0] - others0[0]) / jobs * 1e6, 2),
            "worker_cpu_us_per_job": round((others1[1] - others0[1]) / jobs * 1e6, 2), "done": done,
            "exactly_once": seen.count(1) == jobs, "busy_replies": busy,
            "broker_done": (status.get("finished") or {}).get("done")}


def _run_async(endpoint: str, keys: List[str], data: List[str], chunk: int, max_in_flight: int,
               seen: bytearray) -> Any:
    import asyncio

    from .aio import AsyncClient

    async def go() -> Any:
        done = 0
        async with AsyncClient(endpoint, chunk=chunk, max_in_flight=max_in_flight, timeout=60, curve=False) as c:
            async for r in c.run("bench", "noop", map(Job, keys, data)):
                seen[r.index] += 1
                done += r.status == 1
            return done, c.session.busy_replies

    return asyncio.run(go())


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hume_client.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=200_000, help="jobs per run (default 200000)")
    ap.add_argument("--runs", type=int, default=3, help="runs, each with a fresh fleet (default 3)")
    ap.add_argument("--chunk", type=int, default=2500, help="jobs per SUBMIT (default 2500)")
    ap.add_argument("--max-in-flight", type=int, default=4, help="SUBMITs unanswered at once (default 4)")
    ap.add_argument("--worker-batch", type=int, default=64, help="the no-op worker's --batch (default 64)")
    ap.add_argument("--asyncio", action="store_true", help="use AsyncClient instead of Client")
    ap.add_argument("--hume", help="the hume binary (default: HUME_BIN, else .build/release/hume, else debug)")
    ap.add_argument("--broker-arg", action="append", default=[], help="extra hume broker argument (repeatable)")
    ap.add_argument("--json", action="store_true", help="print only the JSON")
    a = ap.parse_args(argv)
    hume = a.hume or find_hume(prefer_release=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="hume-pybench-") as tmp:
        for i in range(a.runs):
            r = one_run(hume, a.jobs, a.chunk, a.max_in_flight, os.path.join(tmp, "run%d" % i), a.worker_batch,
                        a.broker_arg, a.asyncio)
            runs.append(r)
            if not a.json:
                sys.stderr.write("run %d: %s\n" % (i + 1, json.dumps(r, sort_keys=True)))
    rates = [r["jobs_per_s"] for r in runs]
    out = {"client": "AsyncClient" if a.asyncio else "Client", "hume": hume, "jobs": a.jobs, "runs": runs,
           "jobs_per_s_median": round(statistics.median(rates)), "jobs_per_s_min": min(rates),
           "jobs_per_s_max": max(rates), "chunk": a.chunk, "max_in_flight": a.max_in_flight,
           "worker_batch": a.worker_batch, "all_exactly_once": all(r["exactly_once"] for r in runs),
           "client_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(json.dumps(out, sort_keys=True))
    return 0 if out["all_exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
