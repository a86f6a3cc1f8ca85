"""The command line, ``python -m hume_client`` (the flags of the example script it replaces)::

    python -m hume_client --broker tcp://127.0.0.1:5556 --route noop --batch NAME [--count N | lines on stdin]
    python -m hume_client --control tcp://127.0.0.1:5557 --status

Prints one JSON line per result (``job``, ``key``, ``status``, ``duplicate``, ``output``/``output_b64``/``error``,
``line``) as jobs finish and exits 0 once every job has a result (done or not); 1 on an error or timeout, 2 on bad
usage. Keys are ``BATCH-LINE`` (``--derive-keys``: derived by the broker), so running the same input again resumes.
CURVE from ``HUME_CURVE_KEY``/``HUME_SERVER_KEY``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, Iterator, List, Optional

from .client import Client
from .errors import HumeError
from .jobs import Job


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m hume_client",
                                 description="Submit jobs to a Hume broker and print one JSON line per result.")
    ap.add_argument("--broker", default="tcp://127.0.0.1:5556", help="client endpoint")
    ap.add_argument("--control", default="tcp://127.0.0.1:5557", help="control endpoint (for --status)")
    ap.add_argument("--route", default="noop", help="comma-separated stage names")
    ap.add_argument("--batch", help="batch name (also the key prefix)")
    ap.add_argument("--count", type=int, help="submit N generated jobs ('job I') instead of reading stdin lines")
    ap.add_argument("--params", default="", help="params JSON object for every job")
    ap.add_argument("--derive-keys", action="store_true", help="send empty keys; the broker derives them")
    ap.add_argument("--priority", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=1000, help="jobs per SUBMIT (max 10000)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    ap.add_argument("--status", action="store_true", help="print the broker's STATUS reply and exit")
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    try:
        if a.status:
            with Client(a.control, timeout=min(a.timeout, 10.0)) as c:
                print(json.dumps(c.status(), sort_keys=True))
            return 0
        if not a.batch:
            ap.error("--batch is required to submit")
        if a.count is not None and a.count < 0:
            ap.error("--count must be 0 or more")
        if not 1 <= a.chunk <= 10_000:
            ap.error("--chunk must be 1 to 10000")
        params = a.params.encode("utf-8")
        batch = a.batch

        def lines() -> Iterator[str]:
            if a.count is not None:
                for i in range(a.count):
                    yield "job %d" % i
            else:
                for line in sys.stdin:
                    yield line.rstrip("\n")

        jobs = (Job(key="" if a.derive_keys else "%s-%d" % (batch, i), data=d, params=params, priority=a.priority)
                for i, d in enumerate(lines()))
        counts: Dict[str, int] = {}
        n = 0
        out = sys.stdout
        with Client(a.broker, chunk=a.chunk, timeout=a.timeout) as c:
            for r in c.run(batch, a.route, jobs, timeout=a.timeout, total_timeout=a.timeout):
                o = r.to_json()
                o["line"] = r.index
                counts[o["status"]] = counts.get(o["status"], 0) + 1
                n += 1
                out.write(json.dumps(o, sort_keys=True) + "\n")
                out.flush()
        sys.stderr.write("all %d jobs finished: %s\n" % (n, json.dumps(counts, sort_keys=True)))
        return 0
    except HumeError as e:
        sys.stderr.write("hume_client: %s\n" % e)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
