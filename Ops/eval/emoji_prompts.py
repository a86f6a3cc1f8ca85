#!/usr/bin/env python3
"""Prompts that are, or hold, an emoji: how often the retriever's first neighbour is that emoji's picture.

People type an emoji as a prompt ("🍓", "a 🐸"). The text model reads one as an unknown token, so before emoji were
read as their names (EmojiNames, PROTOCOL.md 11.1) every such prompt found the same few pictures. This samples
emoji the database holds (seeded), asks `hume search PROMPT -k 1 --json` for each, alone and as "a <emoji>", and
counts the first neighbours whose caption is the emoji's own (the emoji databases caption a picture by the name
unicode-data gives its emoji, so this is the right answer):

    python3 Ops/eval/emoji_prompts.py [--hume .build/release/hume] [--database emoji-styles] [--count 100] [--seed 7]

With HUME_EMOJI_TEST=/nonexistent in the environment, `hume` reads no names: the behaviour before.
"""
import argparse, json, os, random, subprocess

a = argparse.ArgumentParser()
a.add_argument("--hume", default=".build/release/hume")
a.add_argument("--database", default="emoji-styles")
a.add_argument("--count", type=int, default=100)
a.add_argument("--seed", type=int, default=7)
a = a.parse_args()
root = os.path.join(os.environ.get("HUME_HOME", os.path.expanduser("~/.cache/hume")), "db", a.database)
captions = {}
for line in open(os.path.join(root, "manifest.jsonl"), encoding="utf-8"):
    item = json.loads(line)
    captions.setdefault(item["caption"], item["source"])
random.seed(a.seed)
picked = random.sample(sorted(captions.items()), a.count)
for template in ("{}", "a {}"):
    right, wrong = 0, []
    for caption, source in picked:
        emoji = "".join(chr(int(h, 16)) for h in source.split("-"))
        prompt = template.format(emoji)
        out = subprocess.run([a.hume, "search", prompt, "-k", "1", "--json", "--database", a.database],
                             capture_output=True, text=True, check=True).stdout
        first = json.loads(out)["captions"][0]
        if first == caption: right += 1
        else: wrong.append((prompt, caption, first))
    print(f"{template.format('<emoji>'):<10} {right}/{a.count} first neighbour is the emoji's picture")
    for prompt, caption, first in wrong[:8]:
        print(f"    {prompt}  ({caption})  → {first}")
