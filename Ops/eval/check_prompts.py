#!/usr/bin/env python3
"""Validate the fidelity prompt lists in Ops/eval (format: Ops/eval/README.md).

Usage:
    python3 Ops/eval/check_prompts.py [--db-root DIR] [--by group|subgroup] [FILE ...]

With no FILE, checks every Ops/eval/fidelity-*.jsonl.  The database of a file is
the part of its name after "fidelity-" without a trailing "-dev" or "-devN"
(fidelity-emoji-dev.jsonl -> emoji); a line may name it in "database", which must
then agree.  Manifests are read from DIR/<database>/manifest.jsonl, DIR defaulting
to ${HUME_HOME:-~/.cache/hume}/db.

Errors (exit 1, one sentence each naming file and line): a line that is not a
JSON object, an unknown key, a missing or empty "prompt", a missing or empty
"concepts" list, a concept that is not an exact concept string of the database's
manifest, a concept listed twice on a line, a prompt repeated (case and spacing
ignored) within a file or across the files of one database.

Printed for information: per file, the prompt count, the number of distinct
concepts, a breakdown by the manifest group (or subgroup) of each line's first
concept, and how many prompts are a caption of an accepted concept word for word
(ignoring case, a leading a/an/the and trailing punctuation).  For emoji files, if
an `emoji-styles` database exists, concepts missing from it are reported as a
warning (that database shares the emoji concept strings).

Standard library only; runs with any python3.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys

ALLOWED_KEYS = {"prompt", "concepts", "database"}
STYLES_OF = {"emoji": "emoji-styles"}


def db_root_default():
    home = os.environ.get("HUME_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "hume")
    return os.path.join(home, "db")


def database_of(path):
    name = os.path.basename(path)
    m = re.fullmatch(r"fidelity-(.+?)(-dev\d*)?\.jsonl", name)
    return m.group(1) if m else None


def norm_prompt(text):
    return " ".join(text.lower().split())


def norm_caption(text):
    t = norm_prompt(text).rstrip(".!?,;: ")
    t = re.sub(r"^(a|an|the) ", "", t)
    return t


class Manifest:
    def __init__(self, path):
        self.concepts = {}  # concept -> (group, subgroup)
        self.captions = collections.defaultdict(set)  # concept -> normalised captions
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                o = json.loads(line)
                c = o["concept"]
                self.concepts.setdefault(c, (o.get("group", ""), o.get("subgroup", "")))
                self.captions[c].add(norm_caption(o.get("caption", "")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--db-root", default=db_root_default())
    ap.add_argument("--by", choices=["group", "subgroup"], default="group")
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    files = args.files or sorted(glob.glob(os.path.join(here, "fidelity-*.jsonl")))
    if not files:
        print("error: no fidelity-*.jsonl files found in %s." % here)
        return 1

    manifests = {}

    def manifest(db):
        if db not in manifests:
            p = os.path.join(args.db_root, db, "manifest.jsonl")
            manifests[db] = Manifest(p) if os.path.isfile(p) else None
        return manifests[db]

    errors = []
    seen_by_db = collections.defaultdict(dict)  # db -> normalised prompt -> "file:line"
    summary = []

    for path in files:
        rel = os.path.relpath(path)
        file_db = database_of(path)
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except OSError as e:
            errors.append("%s: cannot be read (%s)." % (rel, e.strerror))
            continue
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            errors.append("%s has no prompts." % rel)
        missing_reported = set()
        count = 0
        concepts_used = set()
        topics = collections.Counter()
        verbatim = 0
        for no, line in enumerate(lines, 1):
            where = "%s line %d" % (rel, no)
            try:
                o = json.loads(line)
            except ValueError as e:
                errors.append("%s does not parse as JSON (%s)." % (where, e))
                continue
            if not isinstance(o, dict):
                errors.append("%s is not a JSON object." % where)
                continue
            extra = sorted(set(o) - ALLOWED_KEYS)
            if extra:
                errors.append("%s has unknown key(s) %s (allowed: prompt, concepts, database)." % (where, ", ".join(extra)))
            prompt = o.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                errors.append("%s has a missing or empty \"prompt\"." % where)
                prompt = None
            concepts = o.get("concepts")
            if not isinstance(concepts, list) or not concepts:
                errors.append("%s has a missing or empty \"concepts\" list." % where)
                concepts = []
            db = file_db
            if "database" in o:
                if not isinstance(o["database"], str) or not o["database"]:
                    errors.append("%s has a \"database\" that is not a non-empty string." % where)
                elif file_db and o["database"] != file_db:
                    errors.append("%s names database %r but the file is for %r." % (where, o["database"], file_db))
                else:
                    db = o["database"]
            if not db:
                errors.append("%s has no database: name the file fidelity-<database>[-dev].jsonl or add \"database\"." % where)
                continue
            m = manifest(db)
            if m is None:
                if db not in missing_reported:
                    missing_reported.add(db)
                    errors.append("%s names database %r, whose manifest %s does not exist." % (
                        where, db, os.path.join(args.db_root, db, "manifest.jsonl")))
                continue
            ok = True
            for c in concepts:
                if not isinstance(c, str) or not c:
                    errors.append("%s has a concept that is not a non-empty string: %r." % (where, c))
                    ok = False
                elif c not in m.concepts:
                    errors.append("%s lists concept %r, which is not a concept of the %s manifest." % (where, c, db))
                    ok = False
            dups = [c for c, n in collections.Counter(x for x in concepts if isinstance(x, str)).items() if n > 1]
            if dups:
                errors.append("%s lists concept %r more than once." % (where, dups[0]))
            if prompt is not None:
                key = norm_prompt(prompt)
                if key in seen_by_db[db]:
                    errors.append("%s repeats the prompt %r of %s." % (where, prompt, seen_by_db[db][key]))
                else:
                    seen_by_db[db][key] = "%s line %d" % (rel, no)
            if prompt is None or not ok or not concepts:
                continue
            count += 1
            concepts_used.update(concepts)
            g, s = m.concepts[concepts[0]]
            topics[g if args.by == "group" else "%s / %s" % (g, s)] += 1
            np = norm_caption(prompt)
            if any(np in m.captions[c] for c in concepts):
                verbatim += 1
        summary.append((rel, file_db, count, concepts_used, topics, verbatim))

    for rel, db, count, used, topics, verbatim in summary:
        pct = (100.0 * verbatim / count) if count else 0.0
        print("%s (%s): %d prompts, %d distinct concepts, %d (%.0f%%) are a caption word for word" % (
            rel, db, count, len(used), verbatim, pct))
        for t, n in sorted(topics.items(), key=lambda kv: (-kv[1], kv[0])):
            print("    %4d  %s" % (n, t))
        styles = STYLES_OF.get(db)
        if styles and manifest(styles) is not None:
            missing = sorted(c for c in used if c not in manifest(styles).concepts)
            if missing:
                print("    warning: %d concept(s) not in %s, e.g. %s" % (len(missing), styles, ", ".join(missing[:5])))
            else:
                print("    all concepts also exist in %s" % styles)

    if errors:
        for e in errors:
            print("error: " + e)
        print("%d error(s)." % len(errors))
        return 1
    print("OK: %d file(s), %d prompts." % (len(summary), sum(s[2] for s in summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
