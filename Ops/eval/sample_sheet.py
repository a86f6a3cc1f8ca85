#!/usr/bin/env python3
"""A labelled sheet of a fidelity run's samples, to read by eye what its numbers say:

    python3 Ops/eval/sample_sheet.py eval-fidelity.png.samples.jsonl --unrecognised --out unrecognised.png
    python3 Ops/eval/sample_sheet.py eval-fidelity.png.samples.jsonl --recognised 48 --out recognised.png

`--unrecognised` takes every sample the run did not count as `recognised`; `--recognised N` takes N of those it did,
drawn at random (`--pick-seed`), to look for false positives. Each sample is made again with `hume generate PROMPT
--seed S` (the run's settings are generate's defaults, so the picture is the one the run scored; `--database` when the
run named one). Under each tile: its number, the prompt, and the retriever's first neighbour, marked R when it is an
asked-for concept and W when not. Needs python3-pil (Ops/setup.sh installs it).
"""
import argparse, os, random, subprocess, sys, tempfile

import samples_file

try:
    from PIL import Image, ImageDraw, ImageFont
except ImportError:
    sys.exit("sample_sheet.py needs PIL: run it with /usr/bin/python3 after Ops/setup.sh (python3-pil)")

FIELDS = ("prompt", "seed", "concepts", "top1", "recognised")


def read(path):
    return samples_file.read(path, FIELDS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--unrecognised", action="store_true", help="every sample not counted as recognised")
    which.add_argument("--recognised", type=int, metavar="N", help="N recognised samples drawn at random")
    ap.add_argument("--pick-seed", type=int, default=7, help="seed of the random draw (default 7)")
    ap.add_argument("--database", help="the run's --database, if it named one")
    ap.add_argument("--hume", default=".build/release/hume", help="the hume binary (default .build/release/hume)")
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--out", default="samples-sheet.png")
    a = ap.parse_args()
    if not os.access(a.hume, os.X_OK):
        sys.exit(f"{a.hume} is not an executable hume binary; build it (swift build -c release) or name it with --hume")
    if a.columns < 1 or (a.recognised is not None and a.recognised < 1):
        sys.exit("--columns and --recognised take a number of 1 or more")
    rows = read(a.samples)
    if a.unrecognised:
        picked = [r for r in rows if not r["recognised"]]
    else:
        pool = [r for r in rows if r["recognised"]]
        picked = random.Random(a.pick_seed).sample(pool, min(a.recognised, len(pool)))
    if not picked:
        sys.exit("no sample of that kind in the file; nothing to draw")
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 10)
    except OSError:
        font = ImageFont.load_default()
    side, label = 128, 28
    cols = min(a.columns, len(picked))
    sheet = Image.new("RGB", (cols * (side + 2), ((len(picked) + cols - 1) // cols) * (side + label)), "white")
    draw = ImageDraw.Draw(sheet)
    with tempfile.TemporaryDirectory() as tmp:
        for i, r in enumerate(picked):
            out = os.path.join(tmp, f"{i}.png")
            cmd = [a.hume, "generate", r["prompt"], "--seed", str(r["seed"]), "--out", out]
            if a.database:
                cmd += ["--database", a.database]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"hume generate failed for \"{r['prompt']}\" seed {r['seed']}: {run.stderr.strip().splitlines()[-1:] or run.returncode}")
            x, y = (i % cols) * (side + 2), (i // cols) * (side + label)
            tile = Image.open(out).convert("RGB")
            sheet.paste(tile.resize((side, side)) if tile.size != (side, side) else tile, (x, y))
            right = r["top1"] in r["concepts"]
            draw.text((x, y + side + 1), f"{i} {r['prompt']}"[:24], fill="black", font=font)
            draw.text((x, y + side + 14), f"{'R' if right else 'W'} {r['top1']}"[:24], fill="blue" if right else "red", font=font)
    sheet.save(a.out)
    print(f"{len(picked)} samples -> {a.out}")


if __name__ == "__main__":
    main()
