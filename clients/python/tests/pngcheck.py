"""A strict little PNG reader for the tests (what encode_png writes: 8 bits, no interlace, filter 0 rows)."""

from __future__ import annotations

import struct
import zlib
from typing import Tuple


def png_structure(png: bytes) -> Tuple[int, int, int, bytes]:
    """(width, height, channels, pixels) of an 8-bit, non-interlaced PNG with filter 0 rows (what encode_png writes),
    read chunk by chunk with CRCs checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    o = 8
    idat = b""
    ihdr = None
    while o < len(png):
        (n,) = struct.unpack(">I", png[o:o + 4])
        kind, data, (crc,) = png[o + 4:o + 8], png[o + 8:o + 8 + n], struct.unpack(">I", png[o + 8 + n:o + 12 + n])
        assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc, "bad CRC in %r" % kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        o += 12 + n
    assert ihdr is not None
    w, h, depth, colour, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0
    ch = {0: 1, 2: 3, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = w * ch
    assert len(raw) == h * (stride + 1)
    rows = [raw[y * (stride + 1):(y + 1) * (stride + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    return w, h, ch, b"".join(r[1:] for r in rows)
