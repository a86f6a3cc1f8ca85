#!/usr/bin/env python3
"""The sweeps behind CaptionWords.weight and CaptionWords.thingWeight: how often the first neighbour is an asked-for
concept, on the development lists (fidelity-emoji-dev.jsonl + fidelity-emoji-dev2.jsonl) and the main list, for word
weights 0 ... 0.2 (the thing's words counting 2) and for thing weights 1 ... 5 (word weight 0.1), and the kept rule
with the exact-caption bonus (CaptionWords.form) as the first row; with --caption-side,
also for a penalty tried and not kept: less w2 x the share of the caption's words (by rarity) that the prompt lacks,
w2 = 0 ... 0.08, on top of the kept rule.

It re-implements the rule of PROTOCOL.md 11.2 over every concept (not only the index's first 64, which on these
lists finds the same first neighbours) with embeddings from `hume embed`, so a weight can be tried without a build:

    python3 Ops/eval/word_weight_sweep.py [--hume .build/release/hume] [--database emoji-styles]

Needs numpy and the database's manifest under ${HUME_HOME:-~/.cache/hume}/db.
"""
import argparse, json, math, os, re, subprocess, tempfile
from collections import Counter
import numpy as np

FUNCTION = set("a an the with of in on and for to at by from its it his her their is are be this that some very my your one".split())
COLOURS = set("red orange yellow green blue purple brown black white pink gray grey gold golden silver".split())


def stem(w):
    if len(w) <= 3: return w
    if w.endswith("ies") and len(w) > 4: return w[:-3] + "y"
    if w.endswith("sses"): return w[:-2]
    if w.endswith(("ches", "shes", "xes", "zes")): return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")): w = w[:-1]
    for suffix in ("ing", "er"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3: return w[:-len(suffix)]
    return w


def words(text):
    return {stem(w) for w in re.findall(r"[^\W_]+", text.lower()) if w not in FUNCTION and w not in COLOURS}


# CaptionWords.thingWords (ThingPhrase, Sources/HumeCore/ThingPhrase.swift): the thing's words end at the first phrase
# start but "and" (which joins things), or at "of" after a word that is not a collective.
PHRASE_STARTS = set(("with in on wearing holding under over at near beside behind from having that which who and inside "
                     "against by for into onto through without").split())
COLLECTIVES = set(("bunch pair couple pile group set handful bouquet lot lots dozen few herd flock heap stack row swarm "
                   "school pack litter cluster bundle kind sort type").split())


def thing_words(text):
    runs = re.findall(r"[^\W_]+", text.lower())
    for i, w in enumerate(runs):
        if (w == "of" and i > 0 and runs[i - 1] not in COLLECTIVES) or \
                (w in PHRASE_STARTS and w != "and"):
            runs = runs[:i]
            break
    return words(" ".join(runs))


def embed(hume, texts):
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "t.txt"), os.path.join(d, "t.npy")
        open(src, "w").write("\n".join(t.replace("\n", " ") for t in texts) + "\n")
        subprocess.run([hume, "embed", "--file", src, "--format", "npy", "--out", out], check=True)
        return np.load(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hume", default=".build/release/hume")
    ap.add_argument("--database", default="emoji-styles")
    ap.add_argument("--caption-side", action="store_true", help="also sweep the caption-side penalty (not kept)")
    a = ap.parse_args()
    home = os.environ.get("HUME_HOME", os.path.expanduser("~/.cache/hume"))
    items = [json.loads(l) for l in open(os.path.join(home, "db", a.database, "manifest.jsonl"))]

    def retrieval_text(it):  # Database.retrievalText: what the index embeds
        extra = [k for k in it["keywords"] if k.lower() not in it["caption"].lower()]
        return it["caption"] + (": " + ", ".join(extra) if extra else "")

    docs = sorted({(it["concept"], it["caption"], retrieval_text(it)) for it in items})
    concepts = sorted({c for c, _, _ in docs})
    col = {c: i for i, c in enumerate(concepts)}
    caption_words = {cap: words(cap) for _, cap, _ in docs}
    df = Counter(w for ws in caption_words.values() for w in ws)
    n = len(caption_words) + 1
    rarity = lambda w: math.log(n / (df.get(w, 0) + 0.5))

    lists = {"dev": ["fidelity-emoji-dev.jsonl", "fidelity-emoji-dev2.jsonl"], "main": ["fidelity-emoji.jsonl"]}
    here = os.path.dirname(os.path.abspath(__file__))
    prompts = [(name, json.loads(l)) for name, files in lists.items() for f in files for l in open(os.path.join(here, f))]
    q = embed(a.hume, [p["prompt"] for _, p in prompts])
    d = embed(a.hume, [t for _, _, t in docs])
    cos = q @ d.T
    # Per concept: the best cosine, and the best coverage over its items' texts for a thing weight.
    best_cos = np.full((len(prompts), len(concepts)), -9.0)
    for j, (c, cap, _) in enumerate(docs):
        best_cos[:, col[c]] = np.maximum(best_cos[:, col[c]], cos[:, j])
    prompt_words = [words(p["prompt"]) for _, p in prompts]
    prompt_things = [thing_words(p["prompt"]) for _, p in prompts]

    def coverage(thing_weight):
        cover = np.zeros((len(prompts), len(concepts)))
        for i, (pw, tw) in enumerate(zip(prompt_words, prompt_things)):
            weight = {w: rarity(w) * (thing_weight if w in tw else 1) for w in pw}
            total = sum(weight.values())
            for c, cap, _ in docs:
                v = sum(weight[w] for w in pw & caption_words[cap]) / total if total > 0 else 1
                cover[i, col[c]] = max(cover[i, col[c]], v)
        return cover

    def report(label, cover, weight, exact_bonus=0.0):
        first = (best_cos - weight * (1 - cover) + exact_bonus * exact).argmax(1)
        hits = Counter()
        for i, (name, p) in enumerate(prompts):
            hits[name] += concepts[first[i]] in p["concepts"]
        sizes = Counter(name for name, _ in prompts)
        print(f"{label:<32} dev {hits['dev'] / sizes['dev']:.3f} ({hits['dev']}/{sizes['dev']})  "
              f"main {hits['main'] / sizes['main']:.3f} ({hits['main']}/{sizes['main']})")

    # CaptionWords.form: a caption that is the prompt (lowercased letter/digit runs, no leading article) gains the weight.
    def form(text):
        runs = re.findall(r"[^\W_]+", text.lower())
        while len(runs) > 1 and runs[0] in ("a", "an", "the"): runs = runs[1:]
        return " ".join(runs)
    exact = np.zeros((len(prompts), len(concepts)))
    for i, (_, p) in enumerate(prompts):
        for c, cap, _ in docs:
            if form(cap) == form(p["prompt"]): exact[i, col[c]] = 1

    chosen = coverage(2)
    report("weight 0.1, thing 2, exact caption +0.1", chosen, 0.1, 0.1)
    for weight in (0, 0.05, 0.08, 0.1, 0.15, 0.2):
        report(f"weight {weight}, thing weight 2", chosen, weight)
    for thing_weight in (1, 1.5, 3, 5):
        report(f"weight 0.1, thing weight {thing_weight}", coverage(thing_weight), 0.1)
    if a.caption_side:
        # Per concept, the least share of a caption's words (weighed by rarity) that the prompt lacks.
        lacks = np.full((len(prompts), len(concepts)), 9.0)
        for i, pw in enumerate(prompt_words):
            for c, cap, _ in docs:
                cw = caption_words[cap]
                total = sum(rarity(w) for w in cw)
                share = sum(rarity(w) for w in cw - pw) / total if total > 0 else 0
                lacks[i, col[c]] = min(lacks[i, col[c]], share)
        for w2 in (0, 0.01, 0.02, 0.03, 0.05, 0.08):
            # report() subtracts weight x (1 - cover); folding w2 x lacks into cover keeps one ranking rule.
            report(f"weight 0.1, caption-side {w2}", chosen - (w2 / 0.1) * lacks, 0.1)


if __name__ == "__main__":
    main()
