#!/usr/bin/env python3
"""Where a fidelity run's misses and copies come from, from its per-sample file (`hume eval fidelity` writes
`<sheet>.samples.jsonl`, one line per sample):

    python3 Ops/eval/fidelity_breakdown.py eval-fidelity.png.samples.jsonl

Prints the totals (the same shares as the run's JSON), how many of the samples not recognised belong to prompts whose
retriever's first neighbour is not an asked-for concept (the retriever's misses, which no generator setting can fix),
the numbers over the other prompts, and the numbers by the drawing style of the neighbour that set each sample's shape,
made from that drawing alone or with partners. Standard library only.
"""
import sys

import samples_file
from collections import defaultdict

KEYS = ("recognised", "near_copy", "faithful_and_new", "warped_copy")


def shares(rows):
    return "  ".join(f"{k} {sum(bool(r.get(k)) for r in rows) / len(rows):.3f}" for k in KEYS)


FIELDS = ("prompt", "concepts", "top1", "used") + KEYS


def read(path):
    return samples_file.read(path, FIELDS)


def main(path):
    rows = read(path)
    print(f"all {len(rows)} samples: {shares(rows)}")
    missed = [r for r in rows if not r["recognised"]]
    by_retriever = [r for r in missed if r["top1"] not in r["concepts"]]
    prompts = {r["prompt"] for r in rows if r["top1"] not in r["concepts"]}
    print(f"not recognised: {len(missed)}, of which {len(by_retriever)} in the {len(prompts)} prompts whose first "
          f"neighbour is not an asked-for concept")
    right = [r for r in rows if r["top1"] in r["concepts"]]
    if right:
        print(f"the {len(right)} samples of prompts whose first neighbour is right: {shares(right)}")
    groups = defaultdict(list)
    for r in rows:
        groups[(r.get("shape_style", "?"), "alone" if len(r["used"]) == 1 else "with partners")].append(r)
    print("by the style that set the shape:")
    for (style, made), g in sorted(groups.items()):
        print(f"  {style:10} {made:14} {len(g):5} samples  {shares(g)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fidelity_breakdown.py <sheet>.samples.jsonl")
    main(sys.argv[1])
