"""Without a broker: the wire format against PROTOCOL.md's worked example, the session's rules against a scripted
broker, the stage image and PNG writer, keys."""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Tuple

import pytest

from hume_client import (BadInput, CurveKeys, Job, ProtocolError, Session, StageImage, TooLarge, UnknownStage,
                         derive_key, wire)
from hume_client.errors import error_from_broker
from hume_client.session import RunFeed

from pngcheck import png_structure

# ------------------------------------------------------------------------------------------------ wire


def test_worked_example_bytes() -> None:
    """PROTOCOL.md section 10, byte for byte."""
    rec = wire.encode_submit_record("demo-0", b"hello")
    assert rec.hex(" ") == "00 00 00 00 00 00 00 00 00 06 00 64 65 6d 6f 2d 30 00 00 00 00 05 00 00 00 68 65 6c 6c 6f"
    assert wire.decode_submit_record(rec) == (0, 0, "demo-0", b"", b"hello")
    frames = wire.encode_message("SUBMIT", {"req": 1, "batch": "demo", "route": ["noop"]}, [rec])
    assert frames[0] == bytes.fromhex("48554d4501") and frames[1] == b"SUBMIT"
    assert frames[2] == b'{"req":1,"batch":"demo","route":["noop"]}'
    ack = wire.decode_message([wire.SIGNATURE, b"ACK",
                               b'{"accepted":1,"duplicates":0,"outstanding":1,"req":1,"window":10000}',
                               bytes.fromhex("0100000000000000 00".replace(" ", ""))])
    assert ack.command == "ACK" and ack.header["window"] == 10000
    assert wire.decode_ack_record(ack.records[0]) == (1, False)
    res = bytes.fromhex("0100000000000000" "01" "0600" + b"demo-0".hex() + "05000000" + b"hello".hex())
    assert wire.decode_result_record(res) == (1, 1, "demo-0", b"hello")


def test_wire_refuses_what_the_broker_would() -> None:
    with pytest.raises(BadInput, match="at most 65535 bytes"):
        wire.encode_submit_record("k" * 65536)
    with pytest.raises(BadInput, match="must be bytes or str, not int"):
        wire.encode_submit_record("k", 3)
    with pytest.raises(BadInput, match="priority"):
        wire.encode_submit_record("k", b"", b"", 256)
    with pytest.raises(BadInput, match="deadline_ms"):
        wire.encode_submit_record("k", b"", b"", 0, -1)
    with pytest.raises(BadInput, match="32 MiB"):
        wire.encode_submit_record("k", b"x" * (32 * 1024 * 1024 + 1))
    with pytest.raises(BadInput, match="lone surrogate"):
        wire.encode_submit_record("\ud800")
    assert wire.check_route("embed,retrieve,denoise") == ["embed", "retrieve", "denoise"]
    for bad in ("", "a,,b", "UPPER", "x" * 33, ["ok", 3], ["s"] * 17, 5):
        with pytest.raises(BadInput):
            wire.check_route(bad)  # type: ignore[arg-type]
    for bad in ("", "b" * 201, 7):
        with pytest.raises(BadInput):
            wire.check_batch(bad)  # type: ignore[arg-type]
    assert wire.params_bytes({"seed": 1, "k": 4}) == b'{"seed":1,"k":4}'


def test_decoding_refuses_what_is_not_a_message() -> None:
    with pytest.raises(ProtocolError, match="at least 3 frames"):
        wire.decode_message([wire.SIGNATURE, b"ACK"])
    with pytest.raises(ProtocolError, match="version 2"):
        wire.decode_message([b"HUME\x02", b"ACK", b"{}"])
    with pytest.raises(ProtocolError, match="not valid JSON"):
        wire.decode_message([wire.SIGNATURE, b"ACK", b"{"])
    with pytest.raises(ProtocolError, match="9 bytes"):
        wire.decode_ack_record(b"\x00" * 8)
    with pytest.raises(ProtocolError, match="its lengths say"):
        wire.decode_result_record(bytes(15) + b"x")
    assert wire.decode_message([wire.SIGNATURE, b"RESULT", b""]).header == {}


def test_derive_key_follows_section_7() -> None:
    # 128-bit FNV-1a of "b\0noop\0\0x": computed independently here, byte by byte.
    h = 0x6C62272E07BB014262B821756295C58D
    for byte in b"b\x00noop\x00\x00x":
        h = ((h ^ byte) * ((1 << 88) + 0x13B)) % (1 << 128)
    assert derive_key("b", ["noop"], b"", b"x") == "b#%032x" % h
    assert derive_key("b", "noop,noop1", {"k": 1}, "x") != derive_key("b", "noop", {"k": 1}, "x")


def test_errors_are_typed_with_the_sentence() -> None:
    e = error_from_broker({"req": 3, "code": "unknown", "message": 'Unknown stage "x"; this broker serves: noop.'})
    assert isinstance(e, UnknownStage) and e.req == 3 and str(e) == 'Unknown stage "x"; this broker serves: noop.'
    assert isinstance(error_from_broker({"code": "too_large", "message": "m"}), TooLarge)
    assert error_from_broker({"code": "journal", "message": "m"}).code == "journal"


# ------------------------------------------------------------------------------------------------ session


class Broker:
    """A scripted broker for one session: reads what the session sends, answers as told."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.now = 0.0
        self.next_id = 100
        self.window = 10000

    def sent(self) -> List[Tuple[str, Dict[str, Any], List[bytes]]]:
        out = []
        while self.s.outbox:
            m = wire.decode_message(self.s.outbox.popleft())
            out.append((m.command, m.header, m.records))
        return out

    def tick(self, dt: float = 0.0) -> List[Tuple[str, Dict[str, Any], List[bytes]]]:
        self.now += dt
        self.s.tick(self.now)
        return self.sent()

    def reply(self, command: str, header: Dict[str, Any], records: Optional[List[bytes]] = None) -> None:
        self.s.receive([wire.SIGNATURE, command.encode(), json.dumps(header).encode()] + list(records or []),
                       self.now)

    def ack(self, req: int, n: int, window: Optional[int] = None, outstanding: int = 0,
            ids: Optional[List[int]] = None, dups: Optional[List[int]] = None) -> List[int]:
        window = window or self.window
        if ids is None:
            ids = list(range(self.next_id, self.next_id + n))
            self.next_id += n
        dups = dups or [0] * n
        self.reply("ACK", {"req": req, "accepted": n - sum(dups), "duplicates": sum(dups), "window": window,
                           "outstanding": outstanding}, [struct.pack("<QB", i, d) for i, d in zip(ids, dups)])
        return ids

    def results(self, items: List[Tuple[int, str, bytes]], status: int = 1) -> None:
        recs = [struct.pack("<QBH", jid, status, len(k.encode())) + k.encode() + struct.pack("<I", len(b)) + b
                for jid, k, b in items]
        self.reply("RESULT", {}, recs)


def keys_of(records: List[bytes]) -> List[str]:
    return [wire.decode_submit_record(r).key for r in records]


def start(n: int, window: int = 10000, chunk: int = 50, window_cap: Optional[int] = None,
          **kw: Any) -> Tuple[Session, RunFeed, Broker]:
    s = Session(chunk=chunk, window=window_cap, **kw)
    feed = s.add_run("b", ["noop"], (Job(key="k%d" % i, data=b"d%d" % i) for i in range(n)))
    b = Broker(s)
    b.window = window
    probe = b.tick()
    assert [(c, len(r)) for c, _, r in probe] == [("SUBMIT", 0)], "first the window, with no jobs"
    assert probe[0][1]["batch"] == "b" and probe[0][1]["route"] == ["noop"]
    b.ack(probe[0][1]["req"], 0, window=window)
    return s, feed, b


def test_window_and_chunks_are_respected() -> None:
    s, feed, b = start(500, window=120, chunk=50)
    first = b.tick()
    # Chunks of 50 while they fit the window of 120; the 20 left are not worth a SUBMIT while 100 are out (a chunk
    # goes when a quarter of the window, or a whole chunk, is free).
    assert [len(r) for _, _, r in first] == [50, 50]
    assert keys_of(first[0][2])[:2] == ["k0", "k1"]
    ids = b.ack(first[0][1]["req"], 50)
    b.results([(ids[0], "k0", b"d0")])
    assert b.tick() == []  # 21 free
    b.results([(i, "k%d" % (i - ids[0]), b"") for i in ids[1:10]])
    (more,) = b.tick()  # 30 free
    assert len(more[2]) == 30 and keys_of(more[2])[0] == "k100"
    assert s.unfinished + s.in_flight_jobs == 120
    assert [r.index for r in feed.results] == list(range(10))


def test_a_client_window_below_the_brokers() -> None:
    s, feed, b = start(500, window=10000, chunk=50, window_cap=100)
    sent = b.tick()
    assert sum(len(r) for _, _, r in sent) == 100 and s.window == 10000


def test_busy_resends_the_same_jobs_after_the_pause() -> None:
    s, feed, b = start(30, chunk=10)
    sent = b.tick()
    reqs = [h["req"] for _, h, _ in sent]
    b.reply("BUSY", {"req": reqs[1], "retry_after_ms": 250, "reason": "full", "window": 10000, "outstanding": 0})
    ids0 = b.ack(reqs[0], 10)
    assert s.busy_replies == 1
    assert b.tick(0.1) == []  # still pausing
    again = b.tick(0.2)
    assert len(again) == 1 and again[0][1]["req"] not in reqs
    assert keys_of(again[0][2]) == keys_of(sent[1][2])  # the same jobs, a new req
    ids1 = b.ack(again[0][1]["req"], 10)
    ids2 = b.ack(reqs[2], 10)
    b.results([(i, "k", b"") for i in ids0 + ids1 + ids2])
    assert sorted(r.index for r in feed.results) == list(range(30))
    assert b.tick() == [] and feed.done


def test_an_unacknowledged_submit_is_sent_again_and_a_late_ack_still_counts() -> None:
    s, feed, b = start(5, chunk=10, ack_timeout=3.0)
    (first,) = b.tick()
    assert b.tick(2.9) == []
    (second,) = b.tick(0.2)
    assert second[1]["req"] != first[1]["req"] and second[2] == first[2]
    assert s.resent_submits == 1
    (third,) = b.tick(6.0)  # the wait doubles
    assert b.tick(5.0) == []
    ids = b.ack(first[1]["req"], 5)  # the first copy's ACK arrives after all
    b.ack(second[1]["req"], 5, ids=ids, dups=[1] * 5)
    b.results([(i, "k%d" % n, b"ok") for n, i in enumerate(ids)])
    assert sorted(r.index for r in feed.results) == list(range(5))
    b.results([(ids[0], "k0", b"ok")])  # and a second result for a job is not a second result
    assert len(feed.results) == 5 and feed.done


def test_too_large_splits_in_halves_and_a_single_job_fails_alone() -> None:
    s, feed, b = start(8, chunk=8)
    (m,) = b.tick()
    b.reply("ERROR", {"req": m[1]["req"], "code": "too_large", "message": "This SUBMIT carries 8 jobs …"})
    halves = b.tick()
    assert [keys_of(r) for _, _, r in halves] == [["k0", "k1", "k2", "k3"], ["k4", "k5", "k6", "k7"]]
    assert s.chunk == 4
    b.reply("ERROR", {"req": halves[0][1]["req"], "code": "too_large", "message": "m"})
    b.ack(halves[1][1]["req"], 4)
    quarters = b.tick()
    assert [keys_of(r) for _, _, r in quarters] == [["k0", "k1"], ["k2", "k3"]]
    b.reply("ERROR", {"req": quarters[0][1]["req"], "code": "too_large", "message": "m"})
    singles = b.tick()
    assert [keys_of(r) for _, _, r in singles] == [["k0"], ["k1"]]
    b.reply("ERROR", {"req": singles[0][1]["req"], "code": "too_large", "message": "Job k0 is too large."})
    (failed,) = list(feed.results)
    assert (failed.index, failed.job_id, failed.status_name, failed.key, failed.error) == (
        0, 0, "failed", "k0", "Job k0 is too large.")


def test_a_refused_submit_fails_the_run_with_the_brokers_sentence() -> None:
    s = Session()
    feed = s.add_run("b", ["embed"], [b"x"])
    b = Broker(s)
    (probe,) = b.tick()
    b.reply("ERROR", {"req": probe[1]["req"], "code": "unknown",
                      "message": 'Unknown stage "embed"; this broker serves: noop.'})
    assert isinstance(feed.error, UnknownStage) and feed.closed
    assert str(feed.error) == 'Unknown stage "embed"; this broker serves: noop.'
    assert b.tick() == []  # nothing of it is sent


def test_silence_then_reattach_only_when_the_broker_forgot_the_jobs() -> None:
    s, feed, b = start(6, chunk=10, silence=4.0)
    (m,) = b.tick()
    ids = b.ack(m[1]["req"], 6, outstanding=6)
    assert b.tick(3.9) == []
    (probe,) = b.tick(0.2)
    assert len(probe[2]) == 0  # asks first
    b.ack(probe[1]["req"], 0, outstanding=6)  # the broker still counts all six for this connection
    assert b.tick(0.1) == [] and s.reattaches == 0
    (probe2,) = b.tick(4.0)
    b.ack(probe2[1]["req"], 0, outstanding=0)  # it restarted: they have no owner
    (again,) = b.tick()
    assert keys_of(again[2]) == ["k%d" % i for i in range(6)] and s.reattaches == 1
    b.ack(again[1]["req"], 6, ids=ids, dups=[1] * 6, outstanding=6)
    b.results([(i, "k", b"") for i in ids])
    assert len(feed.results) == 6 and feed.done


def test_a_repeated_key_is_one_job_answering_every_position() -> None:
    s = Session(chunk=10)
    feed = s.add_run("b", ["noop"], [Job("same", b"1"), Job("other", b"2"), Job("same", b"3")])
    b = Broker(s)
    (probe,) = b.tick()
    b.ack(probe[1]["req"], 0)
    (m,) = b.tick()
    b.ack(m[1]["req"], 3, ids=[7, 8, 7], dups=[0, 0, 1])
    b.results([(7, "same", b"1")])
    assert sorted((r.index, r.job_id, r.duplicate) for r in feed.results) == [(0, 7, False), (2, 7, True)]
    b.results([(8, "other", b"2")])
    assert feed.done


def test_a_bad_ack_is_a_protocol_error() -> None:
    s, feed, b = start(3, chunk=10)
    (m,) = b.tick()
    with pytest.raises(ProtocolError, match="has 2 records for 3 jobs"):
        b.ack(m[1]["req"], 2)


def test_the_callers_iterable_errors_reach_the_caller() -> None:
    def jobs() -> Any:
        yield b"fine"
        raise RuntimeError("the job source broke")

    s = Session()
    feed = s.add_run("b", "noop", jobs())
    b = Broker(s)
    (probe,) = b.tick()
    b.ack(probe[1]["req"], 0)
    b.tick()
    assert isinstance(feed.error, RuntimeError) and str(feed.error) == "the job source broke"


def test_params_cache_sees_a_mutated_dict() -> None:
    from hume_client.session import make_encoder

    enc = make_encoder()
    p = {"seed": 1}
    a = enc(Job("a", b"x", p))
    p["seed"] = 2
    b = enc(Job("b", b"x", p))
    assert wire.decode_submit_record(a).params == b'{"seed":1}'
    assert wire.decode_submit_record(b).params == b'{"seed":2}'


# ------------------------------------------------------------------------------------------------ images, keys


def himg(w: int, h: int, meta: Dict[str, Any], rgb: bytes, mask: Optional[bytes] = None) -> bytes:
    m = json.dumps(meta, ensure_ascii=False).encode()
    out = b"HIMG" + struct.pack("<HHI", w, h, len(m)) + m + rgb
    out += b"ZZZZ" + struct.pack("<HHB", 1, 1, 1) + b"\x07"  # an unknown section: skipped
    if mask is not None:
        out += b"MASK" + struct.pack("<HHB", w, h, 1) + mask
    return out


def test_stage_image_and_png() -> None:
    rgb = bytes(range(2 * 3 * 3)) * 1
    img = StageImage.parse(himg(3, 2, {"prompt": "café ☕"}, rgb, bytes([0, 255, 0, 0, 255, 255])))
    assert (img.width, img.height, img.metadata["prompt"], img.pixel(1, 0)) == (3, 2, "café ☕", (3, 4, 5))
    assert img.mask == bytes([0, 255, 0, 0, 255, 255])
    png = img.png()
    assert png_structure(png) == (3, 2, 3, rgb)
    assert b"tEXthume\x00" in png and b"caf\\u00e9 \\u2615" in png  # Latin-1 safe, same JSON
    assert png_structure(img.mask_png() or b"") == (3, 2, 1, img.mask)
    plain = StageImage.parse(himg(1, 1, {}, b"\x01\x02\x03"))
    assert plain.mask is None and plain.mask_png() is None
    for bad in (b"NOPE", b"HIMG" + struct.pack("<HHI", 4, 4, 0) + b"\x00" * 10, himg(1, 1, {}, b"\x01\x02\x03")[:-8]):
        with pytest.raises(ProtocolError):
            StageImage.parse(bad)


def test_curve_keys_from_files_and_env(tmp_path: Any) -> None:
    pub, sec, srv = "A" * 40, "B" * 40, "C" * 40
    (tmp_path / "me.key").write_text("# Hume CURVE key pair; keep this file secret.\npublic %s\nsecret %s\n"
                                     % (pub, sec))
    (tmp_path / "broker.pub").write_text(srv + "\n")
    k = CurveKeys.from_files(str(tmp_path / "me.key"), str(tmp_path / "broker.pub"))
    assert k == (pub.encode(), sec.encode(), srv.encode())
    assert CurveKeys.from_files(str(tmp_path / "me.key"), srv) == k
    assert CurveKeys.from_env({"HUME_CURVE_KEY": str(tmp_path / "me.key"), "HUME_SERVER_KEY": srv}) == k
    assert CurveKeys.from_env({}) is None
    assert sec not in repr(k)
    with pytest.raises(BadInput, match="Cannot read the CURVE key file"):
        CurveKeys.from_files(str(tmp_path / "missing.key"), srv)
    (tmp_path / "bad.key").write_text("public short\n")
    with pytest.raises(BadInput, match="no \"public\" and \"secret\" lines"):
        CurveKeys.from_files(str(tmp_path / "bad.key"), srv)
