#!/usr/bin/env python3
"""A Hume client in Python, written from PROTOCOL.md alone (pyzmq + standard library).

Library:
    c = HumeClient("tcp://127.0.0.1:5556")
    for r in c.run("mybatch", ["noop"], [Job(key="k1", data=b"hello")]):
        print(r.job_id, r.status_name, r.body)

CLI:
    python3 hume_client.py --broker tcp://127.0.0.1:5556 --route noop --batch NAME [--count N | lines on stdin]
    python3 hume_client.py --control tcp://127.0.0.1:5557 --status
Prints one JSON line per result and exits 0 once every job has a result (done or not);
exits 1 on a protocol error or timeout, 2 on bad usage.
"""

import argparse
import json
import os
import struct
import sys
import time

try:
    import zmq
except ImportError:  # pragma: no cover
    sys.stderr.write("hume_client.py needs pyzmq: run Ops/setup.sh (or pip install pyzmq).\n")
    sys.exit(3)

SIGNATURE = b"HUME\x01"
STATUS_NAMES = {0: "active", 1: "done", 2: "failed", 3: "dead_letter", 4: "cancelled", 5: "expired"}


class HumeProtocolError(Exception):
    """An ERROR reply from the broker, or a reply this client cannot read."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


# ---------------------------------------------------------------- encoding


def encode_message(command, header=None, records=()):
    """The frames of one message: signature, command, header JSON, records."""
    h = json.dumps(header if header is not None else {}, separators=(",", ":")).encode("utf-8")
    return [SIGNATURE, command.encode("ascii"), h] + [bytes(r) for r in records]


def decode_message(frames):
    """(command, header dict, records) from the frames a DEALER receives."""
    if len(frames) < 3:
        raise HumeProtocolError("bad_request", "reply has %d frames, need at least 3" % len(frames))
    if frames[0] != SIGNATURE:
        raise HumeProtocolError("bad_version", "reply signature is %r" % frames[0])
    cmd = frames[1].decode("ascii", "replace")
    header = json.loads(frames[2].decode("utf-8")) if frames[2] else {}
    return cmd, header, frames[3:]


def short_string(s):
    b = s.encode("utf-8")
    if len(b) > 0xFFFF:
        raise ValueError("key longer than 65535 bytes")
    return struct.pack("<H", len(b)) + b


def blob(b):
    return struct.pack("<I", len(b)) + b


class Job(object):
    """One job to submit. key "" lets the broker derive one from batch, route, params and data."""

    def __init__(self, key="", data=b"", params=b"", priority=0, deadline_ms=0):
        self.key = key
        self.data = data if isinstance(data, bytes) else str(data).encode("utf-8")
        if isinstance(params, dict):
            params = json.dumps(params, separators=(",", ":")).encode("utf-8")
        self.params = params if isinstance(params, bytes) else str(params).encode("utf-8")
        self.priority = priority
        self.deadline_ms = deadline_ms

    def encode(self):
        """SUBMIT record: u8 priority, u64 deadline_ms, u16+key, u32+params, u32+data."""
        return (struct.pack("<BQ", self.priority, self.deadline_ms) + short_string(self.key)
                + blob(self.params) + blob(self.data))


class Reader(object):
    def __init__(self, b, what):
        self.b, self.o, self.what = b, 0, what

    def take(self, n):
        if self.o + n > len(self.b):
            raise HumeProtocolError("bad_request", "%s is truncated" % self.what)
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def short_string(self):
        return self.take(self.u16()).decode("utf-8")

    def blob(self):
        return bytes(self.take(self.u32()))

    def end(self):
        if self.o != len(self.b):
            raise HumeProtocolError("bad_request", "%s has trailing bytes" % self.what)


def decode_ack(rec):
    r = Reader(rec, "ACK record")
    job_id, dup = r.u64(), r.u8()
    r.end()
    return job_id, dup != 0


class Result(object):
    def __init__(self, job_id, status, key, body):
        self.job_id, self.status, self.key, self.body = job_id, status, key, body
        self.duplicate = False
        self.index = None

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    def to_json(self):
        o = {"job": self.job_id, "key": self.key, "status": self.status_name, "duplicate": self.duplicate}
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if self.status == 1:
            if text is None:
                import base64
                o["output_b64"] = base64.b64encode(self.body).decode("ascii")
            else:
                o["output"] = text
        else:
            o["error"] = text if text is not None else repr(self.body)
        return o


def decode_result(rec):
    r = Reader(rec, "RESULT record")
    job_id, status, key, body = r.u64(), r.u8(), r.short_string(), r.blob()
    r.end()
    return Result(job_id, status, key, body)


# ---------------------------------------------------------------- client


def apply_curve(sock, env=os.environ):
    """CURVE (PROTOCOL.md section 1, Security) when HUME_CURVE_KEY (a .key file) and HUME_SERVER_KEY (the
    broker's Z85 public key or .pub file) are set."""
    key_file, server = env.get("HUME_CURVE_KEY"), env.get("HUME_SERVER_KEY")
    if not key_file or not server:
        return
    pair = {}
    with open(key_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("public", "secret"):
                pair[parts[0]] = parts[1]
    if len(server) != 40 or os.path.exists(server):
        with open(server) as f:
            server = f.read().split()[0]
    sock.curve_serverkey = server.encode()
    sock.curve_publickey = pair["public"].encode()
    sock.curve_secretkey = pair["secret"].encode()


class HumeClient(object):
    """One DEALER connection to the broker's client endpoint."""

    def __init__(self, endpoint, chunk=1000, silence_s=4.0, context=None, ack_timeout_s=3.0):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        apply_curve(self.sock)
        self.sock.connect(endpoint)
        self.chunk = max(1, min(chunk, 10000))
        self.silence_s = silence_s
        self.ack_timeout_s = ack_timeout_s
        self.next_req = 1
        self.window = None  # learnt from the first ACK or BUSY
        self.busy_replies = 0

    def close(self):
        self.sock.close(0)

    def _send(self, command, header, records=()):
        self.sock.send_multipart(encode_message(command, header, records))

    def _recv(self, timeout_s):
        if self.sock.poll(int(max(0, timeout_s) * 1000), zmq.POLLIN):
            return decode_message(self.sock.recv_multipart())
        return None

    def run(self, batch, route, jobs, timeout_s=300.0, progress=False):
        """Submits `jobs` to `route` under `batch`; yields one Result per job (in completion order).

        Respects the client window (never more unfinished jobs than the broker allows), waits
        retry_after_ms on BUSY and resends the same chunk, matches ACK records to jobs by `req` and
        position, results by job id (and key), and re-attaches (resubmits unfinished keys) after a
        long silence, e.g. a broker restart. Raises HumeProtocolError on an ERROR reply.
        """
        jobs = list(jobs)
        n = len(jobs)
        results = [None] * n
        next_job = 0  # first job never sent
        in_flight = {}  # req -> list of job indexes, sent and not ACKed
        sent_at = {}  # req -> when it was sent
        by_id = {}  # job id -> list of indexes (several when keys repeat)
        early = {}  # results for job ids not yet ACKed
        unfinished = set()  # ACKed indexes without a result
        pause_until = 0.0
        deadline = time.time() + timeout_s
        last_news = time.time()
        remaining = n

        def send_chunk(idx):
            req = self.next_req
            self.next_req += 1
            in_flight[req] = idx
            sent_at[req] = time.time()
            hdr = {"req": req, "batch": batch, "route": route}
            if progress:
                hdr["progress"] = True
            self._send("SUBMIT", hdr, [jobs[i].encode() for i in idx])

        def deliver(res):
            for i in by_id.get(res.job_id, []):
                if results[i] is None:
                    res_i = Result(res.job_id, res.status, res.key, res.body)
                    res_i.index = i
                    res_i.duplicate = getattr(res, "duplicate_of", {}).get(i, False)
                    results[i] = res_i
                    unfinished.discard(i)
                    yield res_i

        dup_flags = {}
        refused = []  # chunks refused with BUSY, to resend after retry_after_ms
        while remaining > 0:
            now = time.time()
            if now > deadline:
                raise HumeProtocolError("timeout", "%d of %d jobs unfinished after %.0f s" % (remaining, n, timeout_s))
            # After a BUSY pause, first resend what was refused (same jobs, new req).
            if refused and not in_flight and now >= pause_until:
                idx = refused.pop(0)
                if self.window is not None and len(idx) > self.window:
                    # Larger than the window: could never be accepted, so split it.
                    refused.insert(0, idx[self.window:])
                    idx = idx[: self.window]
                send_chunk(idx)
            # Send the next chunk when the window has room and no BUSY pause is on.
            if not refused and next_job < n and not in_flight and now >= pause_until:
                window = self.window if self.window is not None else self.chunk
                room = window - len(unfinished)
                if room > 0:
                    k = min(room, self.chunk, n - next_job)
                    send_chunk(list(range(next_job, next_job + k)))
                    next_job += k
            # A SUBMIT never acknowledged (the broker died with it): send the same jobs again under a new req; their
            # keys make the resend safe. Without this a lost SUBMIT would block every later send.
            for req in [r for r, t in sent_at.items() if r in in_flight and now > t + self.ack_timeout_s]:
                sent_at.pop(req, None)
                send_chunk(in_flight.pop(req))
            # Re-attach after a long silence (broker restart): resubmit unfinished keys.
            if unfinished and not in_flight and now > last_news + self.silence_s:
                idx = sorted(unfinished)[: self.chunk]
                for i in idx:
                    unfinished.discard(i)
                send_chunk(idx)
                last_news = now
            wait = 0.2
            if pause_until > now:
                wait = min(wait, pause_until - now)
            msg = self._recv(wait)
            if msg is None:
                continue
            last_news = time.time()
            cmd, header, records = msg
            if cmd == "ACK":
                sent_at.pop(header.get("req"), None)
                idx = in_flight.pop(header.get("req"), None)
                if idx is None:
                    continue
                if "window" in header:
                    self.window = int(header["window"])
                if len(records) != len(idx):
                    raise HumeProtocolError("bad_request", "ACK has %d records for %d jobs" % (len(records), len(idx)))
                for i, rec in zip(idx, records):
                    job_id, dup = decode_ack(rec)
                    dup_flags[i] = dup
                    by_id.setdefault(job_id, [])
                    if i not in by_id[job_id]:
                        by_id[job_id].append(i)
                    if results[i] is None:
                        unfinished.add(i)
                    if job_id in early:
                        res = early[job_id]
                        res.duplicate_of = dup_flags
                        for r in deliver(res):
                            remaining -= 1
                            yield r
            elif cmd == "BUSY":
                self.busy_replies += 1
                if "window" in header:
                    self.window = int(header["window"])
                sent_at.pop(header.get("req"), None)
                idx = in_flight.pop(header.get("req"), None)
                if idx is not None:
                    # All or nothing: nothing of the chunk was taken; send it again after the pause.
                    pause_until = time.time() + max(10, int(header.get("retry_after_ms", 100))) / 1000.0
                    refused.append(idx)
            elif cmd == "RESULT":
                for rec in records:
                    res = decode_result(rec)
                    res.duplicate_of = dup_flags
                    if res.job_id not in by_id:
                        early[res.job_id] = res
                        continue
                    for r in deliver(res):
                        remaining -= 1
                        yield r
            elif cmd == "ERROR":
                raise HumeProtocolError(header.get("code", "?"), header.get("message", ""))
            # PROGRESS and anything else: ignored.


def request(endpoint, command, header=None, records=(), timeout_s=10.0):
    """One request/reply round trip on a fresh DEALER (e.g. STATUS on the control endpoint)."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        h = dict(header or {})
        h.setdefault("req", 1)
        s.send_multipart(encode_message(command, h, records))
        if not s.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise HumeProtocolError("timeout", "no reply to %s from %s within %.0f s" % (command, endpoint, timeout_s))
        return decode_message(s.recv_multipart())
    finally:
        s.close(0)


# ---------------------------------------------------------------- CLI


def main(argv=None):
    ap = argparse.ArgumentParser(description="Submit jobs to a Hume broker and print one JSON line per result.")
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
    a = ap.parse_args(argv)

    try:
        if a.status:
            cmd, header, _ = request(a.control, "STATUS", timeout_s=min(a.timeout, 10.0))
            if cmd == "ERROR":
                raise HumeProtocolError(header.get("code"), header.get("message"))
            print(json.dumps(header, sort_keys=True))
            return 0
        if not a.batch:
            ap.error("--batch is required to submit")
        if a.count is not None:
            datas = ["job %d" % i for i in range(a.count)]
        else:
            datas = [line.rstrip("\n") for line in sys.stdin]
        params = a.params.encode("utf-8")
        jobs = [Job(key="" if a.derive_keys else "%s-%d" % (a.batch, i), data=d, params=params, priority=a.priority)
                for i, d in enumerate(datas)]
        route = [s for s in a.route.split(",") if s]
        client = HumeClient(a.broker, chunk=a.chunk)
        counts = {}
        for r in client.run(a.batch, route, jobs, timeout_s=a.timeout):
            o = r.to_json()
            o["line"] = r.index
            counts[o["status"]] = counts.get(o["status"], 0) + 1
            sys.stdout.write(json.dumps(o, sort_keys=True) + "\n")
            sys.stdout.flush()
        client.close()
        sys.stderr.write("all %d jobs finished: %s\n" % (len(jobs), json.dumps(counts, sort_keys=True)))
        return 0
    except HumeProtocolError as e:
        sys.stderr.write("hume_client: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
