#!/usr/bin/env python3
"""How sharp the stickers generated from a database of one's own pictures are, and how many were drawn from a picture
enlarged more than twice:

    python3 Ops/eval/sharpness.py --database oxy --prompts Ops/eval/prompts-icons.txt [--sheet oxy.png] [--json]

Each prompt is generated with `hume generate PROMPT --database D --seed S` (seeds 1 to `--seeds`, generate's defaults
otherwise: 128²). For each sample it reads the metadata generate writes into the PNG (`used`: the pictures the sample
was made from) and the database's manifest (`side`: the longer side of each source picture, which `hume db` records),
and reports:

- `enlarged`: the share of samples made with a picture whose source is smaller than half the sample's side, that is
  enlarged more than twice (a 16-pixel icon in a 128² sticker);
- `sharpness`: the median, over samples, of the mean absolute Laplacian (4-neighbour, grey levels in [0, 255]) of the
  sample: a blurred picture has less of it. It compares two runs on the same prompts and database; across databases
  it says little (a flat drawing has little of it however sharp it is).

To compare with a build that did not look at sizes, copy the database and take the sizes out of the copy's manifest
(a database made before they were recorded looks the same), then run both:

    sudo apt-get install -y oxygen-icon-theme
    hume db create oxy --images /usr/share/icons/oxygen/base
    D=${HUME_HOME:-~/.cache/hume}/db; cp -r $D/oxy $D/oxy-old; sed -i 's/,"side":[0-9]*//' $D/oxy-old/manifest.jsonl
    python3 Ops/eval/sharpness.py --database oxy --prompts Ops/eval/prompts-icons.txt
    python3 Ops/eval/sharpness.py --database oxy-old --sides-from oxy --prompts Ops/eval/prompts-icons.txt

`--sheet` writes the samples, one prompt per row, to look at. Needs python3-pil (Ops/setup.sh installs it).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

try:
    from PIL import Image, ImageDraw
except ImportError:
    sys.exit("sharpness.py needs PIL: run it with /usr/bin/python3 after Ops/setup.sh (python3-pil)")


def manifest_sides(database):
    home = os.environ.get("HUME_HOME") or os.path.expanduser("~/.cache/hume")
    sides = {}
    with open(os.path.join(home, "db", database, "manifest.jsonl")) as f:
        for line in f:
            item = json.loads(line)
            sides[item["id"]] = item.get("side")
    return sides


def on_white(path):
    image = Image.open(path)
    meta = json.loads(image.info["hume"])
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, "white")
    white.alpha_composite(rgba)
    return white.convert("RGB"), meta


def laplacian(image):
    grey = image.convert("L")
    w, h = grey.size
    px = grey.load()
    total = 0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            total += abs(4 * px[x, y] - px[x - 1, y] - px[x + 1, y] - px[x, y - 1] - px[x, y + 1])
    return total / ((w - 2) * (h - 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", required=True)
    ap.add_argument("--prompts", required=True, help="a file with one prompt per line")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--hume", default=".build/release/hume")
    ap.add_argument("--sheet", help="write the samples here (PNG), one prompt per row")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    ap.add_argument("--samples", help="write each sample's prompt, seed, used ids, their sides and scores here (JSON Lines)")
    ap.add_argument("--sides-from", help="read the pictures' sides from this database's manifest (a copy of --database "
                    "whose manifest lacks them, as one made before hume db recorded them)")
    a = ap.parse_args()
    prompts = [l.strip() for l in open(a.prompts) if l.strip() and not l.startswith("#")]
    sides = manifest_sides(a.sides_from or a.database)
    rows, samples = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for p in prompts:
            row = []
            for seed in range(1, a.seeds + 1):
                out = os.path.join(tmp, "s.png")
                r = subprocess.run([a.hume, "generate", p, "--database", a.database, "--seed", str(seed), "--out", out],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"hume generate {p!r} failed: {r.stderr.strip()}")
                image, meta = on_white(out)
                size = meta["size"]
                used = meta.get("used", [])
                enlarged = any(sides.get(i) is not None and sides[i] < size / 2 for i in used)
                samples.append({"prompt": p, "seed": seed, "used": used, "sides": [sides.get(i) for i in used],
                                "enlarged": enlarged, "sharpness": round(laplacian(image), 3)})
                row.append(image)
            rows.append((p, row))
    result = {"database": a.database, "prompts": len(prompts), "samples": len(samples),
              "enlarged": round(sum(s["enlarged"] for s in samples) / len(samples), 3),
              "sharpness": round(statistics.median(s["sharpness"] for s in samples), 2)}
    if a.samples:
        with open(a.samples, "w") as f:
            for sample in samples:
                f.write(json.dumps(sample) + "\n")
    if a.sheet:
        side = rows[0][1][0].width
        sheet = Image.new("RGB", (a.seeds * side + 220, len(rows) * side), "white")
        draw = ImageDraw.Draw(sheet)
        for r, (p, row) in enumerate(rows):
            draw.text((4, r * side + side // 2 - 6), p, fill="black")
            for k, image in enumerate(row):
                sheet.paste(image, (220 + k * side, r * side))
        sheet.save(a.sheet)
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
