#!/usr/bin/python3
"""Tests of Ops/build_db.py and of the databases it builds.

Run with Debian's python (fontTools/PIL/numpy from apt):
    /usr/bin/python3 -m pytest Ops/test_build_db.py      or      /usr/bin/python3 Ops/test_build_db.py

The database checks use the databases under ${HUME_HOME:-~/.cache/hume}/db when they
are built and current; otherwise they build both into a temporary HUME_HOME first
(about 20 s).  HUME_DB_TEST_FRESH=1 forces the temporary build.
"""

import io
import json
import math
import os
import shutil
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

RANGES = {"emoji": (3400, 4200), "tuxpaint": (700, 1200)}
_ROOT = None
_TMP = None


def db_root():
    """Root holding current emoji and tuxpaint databases (built on demand)."""
    global _ROOT, _TMP
    if _ROOT is not None:
        return _ROOT
    root = build_db.db_root()
    fresh = os.environ.get("HUME_DB_TEST_FRESH") == "1"
    if fresh or not all(build_db.is_current(root, n, build_db.stamp_for(n)[0])
                        for n in build_db.ALL_DATABASES):
        _TMP = tempfile.mkdtemp(prefix="hume-db-test-")
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
        self.assertEqual(self.info["sizes"], [32, 64])
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
        for s in (32, 64):
            self.assertEqual(os.path.getsize(os.path.join(self.dir, "images%d.rgb" % s)),
                             n * s * s * 3)
        names = os.listdir(os.path.join(self.dir, "originals"))
        self.assertEqual(sorted(names), sorted("%d.png" % i for i in range(n)))

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

    def test_white_padding(self):
        """Corners of non-square bitmaps are white wherever the resize kernel can
        only have seen padding or transparent pixels."""
        checked = nonsquare = 0
        data = {}
        for s in (32, 64):
            with open(os.path.join(self.dir, "images%d.rgb" % s), "rb") as f:
                data[s] = f.read()
        for it in self.items:
            im = Image.open(os.path.join(self.dir, "originals", "%d.png" % it["id"]))
            self.assertEqual(im.mode, "RGBA")
            w, h = im.size
            if w == h:
                continue
            nonsquare += 1
            side = max(w, h)
            ox, oy = (side - w) // 2, (side - h) // 2
            alpha = None
            for s in (32, 64):
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
        self.assertGreater(nonsquare, 0)
        self.assertGreater(checked, nonsquare)               # not vacuous


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


def tearDownModule():
    if _TMP is not None:
        shutil.rmtree(_TMP, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
