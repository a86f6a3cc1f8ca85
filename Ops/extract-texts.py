#!/usr/bin/env python3
"""English sentences from the dictionaries and manuals Debian ships, for the 10^6 retrieval corpus.

  Ops/extract-texts.py ROOT > texts.txt

ROOT holds these packages unpacked (`apt-get download` + `dpkg-deb -x`, as Ops/make-retrieval-corpus.sh does):
dict-gcide (GNU Collaborative International Dictionary of English), dict-foldoc (Free On-line Dictionary of
Computing), dict-jargon (the Jargon File), dict-devil (The Devil's Dictionary), wordnet-base (WordNet glosses and example sentences), linux-doc-6.1 and python3.11-doc (Sphinx sources,
English only), perl-doc (POD), postgresql-doc-15 and debian-reference-en (HTML), manpages and manpages-dev (roff), git-doc (AsciiDoc).
Writes one sentence per line, 20-300 characters, mostly letters, in a fixed order; prints counts per source on stderr.
"""
import gzip
import html
import os
import re
import sys

ROOT = sys.argv[1]
SPLIT = re.compile(r'(?<=[.!?])\s+(?=[A-Z"(])')
counts = {}


def emit(source, paragraph):
    paragraph = re.sub(r'\s+', ' ', paragraph).strip()
    for s in SPLIT.split(paragraph):
        s = s.strip().lstrip('-*+o ').strip()
        if 20 <= len(s) <= 300 and re.search(r'[a-z]{3,} [a-z]{2,}', s) and len(re.findall(r'[A-Za-z]', s)) > 0.6 * len(s):
            counts[source] = counts.get(source, 0) + 1
            print(s)


def files(base, suffix, skip=None):
    for d, subdirs, names in sorted(os.walk(base)):
        subdirs.sort()
        if skip and skip in d:
            continue
        for n in sorted(names):
            if n.endswith(suffix):
                yield os.path.join(d, n)


# Dictionaries in dictd format: a headword line, then the indented body.
for name in ('gcide', 'foldoc', 'jargon', 'devil'):
    text = gzip.open(f'{ROOT}/usr/share/dictd/{name}.dict.dz', 'rt', encoding='utf-8', errors='replace').read()
    for entry in re.split(r'\n\s*\n', text):
        body = ' '.join(line.strip() for line in entry.split('\n') if line.startswith(' '))
        body = re.sub(r'^[^\[]*?\]\s*', '', body)  # the tail of an etymology begun on the headword line
        body = re.sub(r'\[(1913 Webster|PJC|WordNet 1\.5|Century Dict\.|Webster 1913 Suppl\.)[^\]]*\]', ' ', body)
        body = re.sub(r'--[A-Z][\w.]*( [A-Z][\w.]*)*\.?', ' ', body)  # citations: --Shak.
        body = re.sub(r'\{([^}]*)\}', r'\1', body)
        emit(name, re.sub(r'^\d+\.\s*(\([^)]*\)\s*)?', '', body))

# WordNet: each synset's gloss, "definition; definition; "example""
for pos in ('noun', 'verb', 'adj', 'adv'):
    for line in open(f'{ROOT}/usr/share/wordnet/data.{pos}', encoding='latin-1'):
        if not line.startswith(' ') and ' | ' in line:
            for part in line.split(' | ', 1)[1].split(';'):
                part = part.strip().strip('"').strip()
                if 20 <= len(part) <= 300:
                    counts['wordnet'] = counts.get('wordnet', 0) + 1
                    print(part)

# Sphinx sources (reStructuredText): prose paragraphs only.
for base, source in ((f'{ROOT}/usr/share/doc/linux-doc-6.1/html/_sources', 'linux-doc'),
                     (f'{ROOT}/usr/share/doc/python3.11/html/_sources', 'python-doc')):
    for path in files(base, '.txt', skip='/translations'):
        for para in re.split(r'\n\s*\n', open(path, encoding='utf-8', errors='replace').read()):
            if re.match(r'\s*(\.\.|::|[=\-~^*#]{3,}|\||\+[-=])', para) or para.startswith(('    ', '\t')):
                continue
            para = re.sub(r':\w+:`([^`<]*)(<[^>]*>)?`', r'\1', para)
            emit(source, re.sub(r'`+([^`]*)`+_?', r'\1', para).replace('*', ''))

# Perl's POD: prose paragraphs, formatting codes unwrapped.
for path in files(f'{ROOT}/usr/share/perl', '.pod'):
    for para in re.split(r'\n\s*\n', open(path, encoding='utf-8', errors='replace').read()):
        if not para.startswith((' ', '\t', '=')):
            emit('perl-doc', re.sub(r'[A-Z]<+\s*([^>]*?)\s*>+', r'\1', para))

# HTML manuals (PostgreSQL's, the Debian Reference): block elements' text, code listings left out.
for path in [*files(f'{ROOT}/usr/share/doc/postgresql-doc-15', '.html'), *files(f'{ROOT}/usr/share/debian-reference', '.en.html')]:
    text = re.sub(r'(?s)<pre.*?</pre>', '\n\n', open(path, encoding='utf-8', errors='replace').read())
    for para in re.split(r'(?i)</?(?:p|div|li|td|dt|dd|h\d)[^>]*>', text):
        emit('html-manuals', html.unescape(re.sub(r'<[^>]+>', '', para)))

# Manual pages (roff): text lines between paragraph macros, font escapes removed.
ESCAPE = re.compile(r'\\f[BIRP]|\\\(..|\\[&e]|\\\*\(..|\\-|\\.')
for path in files(f'{ROOT}/usr/share/man', '.gz'):
    if '/man/man' not in path:
        continue
    para = []
    for line in gzip.open(path, 'rt', encoding='utf-8', errors='replace').read().split('\n'):
        if line.startswith(('.', "'")):
            if re.match(r'\.(PP|P|LP|TP|IP|SH|SS|sp|br|in|RS|RE|nf|fi|EX|EE)\b', line):
                emit('manpages', ' '.join(para))
                para = []
            continue
        para.append(ESCAPE.sub(lambda m: '-' if m.group(0) == '\\-' else '', line))
    emit('manpages', ' '.join(para))

# Git's AsciiDoc sources.
for path in files(f'{ROOT}/usr/share/doc/git-doc', '.txt'):
    for para in re.split(r'\n\s*\n', open(path, encoding='utf-8', errors='replace').read()):
        if not para.startswith((' ', '\t', '-', '=', '[', '+')):
            emit('git-doc', re.sub(r"[`'*]+", '', para))

print(' '.join(f'{k} {v}' for k, v in counts.items()), file=sys.stderr)
