#!/usr/bin/python3
"""Offline builder of Hume's image databases (see Ops/DATABASES.md).

Builds, from Debian packages only:
  emoji     Noto Color Emoji bitmaps (CBDT/CBLC) captioned with CLDR short names
  tuxpaint  Tux Paint default stamps (PNG) captioned with their English descriptions

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
SIZES = (32, 64)
TEST_PERCENT = 10          # ~10% of concepts are held out
SPLIT_SALT = "hume-split-v1"

EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
CLDR_DIR = "/usr/share/unicode/cldr/common"
CLDR_FILES = ("annotations/en.xml", "annotationsDerived/en.xml")
STAMPS_DIR = "/usr/share/tuxpaint/stamps"

PACKAGES = {
    "emoji": ["fonts-noto-color-emoji", "unicode-cldr-core", "unicode-data",
              "python3-fonttools", "python3-pil"],
    "tuxpaint": ["tuxpaint-stamps-default", "python3-pil"],
}
ALL_DATABASES = ("emoji", "tuxpaint")


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
    parts = ["hume-db", "format=%d" % FORMAT_VERSION, name,
             "builder=" + builder_hash()]
    parts += ["%s=%s" % kv for kv in sorted(vers.items())]
    return " ".join(parts), vers


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
    centred square (aspect kept) and resized with Lanczos (with Pillow's
    reducing_gap pre-reduction for large stamps)."""
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

def build(name, root, pool):
    stamp, versions = stamp_for(name)
    t0 = time.time()
    if name == "emoji":
        items, pngs, stats = collect_emoji()
        images = pool.map(render, pngs, chunksize=64)
        extra = {"source_font": EMOJI_FONT, "report": stats}
    else:
        items, stats = collect_tuxpaint()
        images = pool.map(_render_file, [os.path.join(STAMPS_DIR, it["source"]) for it in items],
                          chunksize=16)
        extra = {"source_root": STAMPS_DIR, "report": stats}
    info = write_database(root, name, stamp, versions, items, images, extra)
    log("hume-db: built %-8s %5d images (train %d / test %d; concepts %d / %d) in %.1fs -> %s"
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
