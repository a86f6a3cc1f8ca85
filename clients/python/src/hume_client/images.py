"""The stage image format ``HIMG`` (PROTOCOL.md 11.5), the output of the ``denoise`` and ``edit`` stages, and a small
PNG writer (zlib only, no imaging library) so a result can be saved as a file any viewer opens.

::

    img = result.image()              # a StageImage
    img.width, img.height, img.metadata["prompt"]
    open("out.png", "wb").write(img.png())
    if img.mask is not None:          # an edit: 255 = edited, 0 = kept
        open("out.mask.png", "wb").write(img.mask_png())
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from .errors import ProtocolError

__all__ = ["StageImage", "Section", "encode_png", "is_stage_image"]

_MAGIC = b"HIMG"
_HEAD = struct.Struct("<4sHHI")
_SECTION = struct.Struct("<4sHHB")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Section(NamedTuple):
    """A section after a stage image's pixels: a 4-byte tag, width, height, channels and the pixel bytes."""

    tag: str
    width: int
    height: int
    channels: int
    pixels: bytes


def is_stage_image(body: bytes) -> bool:
    """Whether ``body`` starts like a stage image."""
    return body[:4] == _MAGIC


class StageImage:
    """A decoded stage image: ``width`` × ``height`` RGB8 pixels (row-major, no padding), its ``metadata`` (the JSON
    object the stage wrote: prompt, database, seed, neighbours…) and its sections; ``mask`` is the ``MASK`` section's
    pixels (one byte a pixel) or None."""

    __slots__ = ("width", "height", "metadata", "metadata_json", "rgb", "sections")

    def __init__(self, width: int, height: int, metadata: Dict[str, Any], rgb: bytes,
                 sections: Optional[List[Section]] = None, metadata_json: Optional[str] = None) -> None:
        if len(rgb) != width * height * 3:
            raise ValueError("An RGB image of %d×%d needs %d bytes; got %d." % (width, height, width * height * 3,
                                                                                  len(rgb)))
        self.width = width
        self.height = height
        self.metadata = metadata
        self.metadata_json = metadata_json if metadata_json is not None else json.dumps(
            metadata, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        self.rgb = rgb
        self.sections = list(sections or [])

    @classmethod
    def parse(cls, body: bytes) -> "StageImage":
        """Decodes a stage image (a ``denoise`` or ``edit`` result body). Raises :class:`ProtocolError` with one
        sentence when the bytes are not one."""
        b = bytes(body)
        if len(b) < _HEAD.size or b[:4] != _MAGIC:
            raise ProtocolError("This is not a stage image: it does not start with \"HIMG\" (got %r)." % b[:8])
        _, w, h, mlen = _HEAD.unpack_from(b, 0)
        o = _HEAD.size
        if o + mlen > len(b):
            raise ProtocolError("The stage image is truncated: its metadata claims %d bytes, %d are left."
                                % (mlen, len(b) - o))
        try:
            text = b[o:o + mlen].decode("utf-8")
            meta = json.loads(text) if mlen else {}
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError("The stage image's metadata is not UTF-8 JSON: %s." % e) from None
        if not isinstance(meta, dict):
            raise ProtocolError("The stage image's metadata must be a JSON object.")
        o += mlen
        n = w * h * 3
        if o + n > len(b):
            raise ProtocolError("The stage image is truncated: %d×%d RGB needs %d bytes, %d are left."
                                % (w, h, n, len(b) - o))
        rgb = b[o:o + n]
        o += n
        sections: List[Section] = []
        while o < len(b):
            if o + _SECTION.size > len(b):
                raise ProtocolError("The stage image ends inside a section header.")
            tag, sw, sh, ch = _SECTION.unpack_from(b, o)
            o += _SECTION.size
            size = sw * sh * ch
            if o + size > len(b):
                raise ProtocolError("The stage image's %r section is truncated." % tag)
            sections.append(Section(tag.decode("latin-1"), sw, sh, ch, b[o:o + size]))
            o += size
        return cls(w, h, meta, rgb, sections, text)

    def section(self, tag: str) -> Optional[Section]:
        """The first section with this tag, or None."""
        for s in self.sections:
            if s.tag == tag:
                return s
        return None

    @property
    def mask(self) -> Optional[bytes]:
        """The edit mask (``MASK`` section, one byte a pixel: 255 edited, 0 kept), or None."""
        s = self.section("MASK")
        return s.pixels if s is not None and s.channels == 1 else None

    def pixel(self, x: int, y: int) -> Tuple[int, int, int]:
        """(r, g, b) at column x, row y."""
        i = (y * self.width + x) * 3
        r, g, b = self.rgb[i:i + 3]
        return r, g, b

    def png(self) -> bytes:
        """The image as a PNG file (RGB, 8 bits), its metadata JSON in a ``tEXt`` chunk keyed ``hume`` as Hume
        writes it (non-ASCII characters as ``\\uXXXX`` escapes, since ``tEXt`` is Latin-1)."""
        return encode_png(self.width, self.height, 3, self.rgb, {"hume": _ascii_json(self.metadata_json)})

    def mask_png(self) -> Optional[bytes]:
        """The mask as a greyscale PNG, or None when the image has none."""
        s = self.section("MASK")
        if s is None or s.channels != 1:
            return None
        return encode_png(s.width, s.height, 1, s.pixels)

    def __repr__(self) -> str:
        tags = ",".join(s.tag for s in self.sections)
        return "StageImage(%d×%d%s, %d metadata keys)" % (self.width, self.height, ", " + tags if tags else "",
                                                         len(self.metadata))


def _ascii_json(text: str) -> str:
    """The same JSON with every non-ASCII character as a \\uXXXX escape (non-ASCII can only occur inside strings)."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        c = ord(ch)
        if c < 0x80:
            out.append(ch)
        elif c < 0x10000:
            out.append("\\u%04x" % c)
        else:
            c -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF)))
    return "".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(width: int, height: int, channels: int, pixels: bytes,
               text: Optional[Mapping[str, str]] = None, level: int = 6) -> bytes:
    """A PNG file of 8-bit pixels: ``channels`` 1 (grey), 3 (RGB) or 4 (RGBA), row-major without padding. ``text``
    entries become ``tEXt`` chunks (Latin-1)."""
    colour = {1: 0, 3: 2, 4: 6}.get(channels)
    if colour is None:
        raise ValueError("A PNG here has 1, 3 or 4 channels, not %d." % channels)
    if not (1 <= width <= 0x7FFFFFFF and 1 <= height <= 0x7FFFFFFF):
        raise ValueError("A PNG is at least 1×1; got %d×%d." % (width, height))
    stride = width * channels
    if len(pixels) != stride * height:
        raise ValueError("%d×%d with %d channels needs %d bytes; got %d." % (width, height, channels,
                                                                           stride * height, len(pixels)))
    raw = bytearray()
    mv = memoryview(pixels)
    for y in range(height):
        raw.append(0)  # filter: none
        raw += mv[y * stride:(y + 1) * stride]
    out = [_PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))]
    for k, v in (text or {}).items():
        out.append(_chunk(b"tEXt", k.encode("latin-1") + b"\x00" + v.encode("latin-1")))
    out.append(_chunk(b"IDAT", zlib.compress(bytes(raw), level)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
