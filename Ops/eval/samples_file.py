"""Reading a fidelity run's per-sample file (`hume eval fidelity` writes `<sheet>.samples.jsonl`, one JSON object per
sample), shared by fidelity_breakdown.py and sample_sheet.py. Standard library only."""
import json, sys


def read(path, fields):
    """The samples of a `<sheet>.samples.jsonl`, each holding `fields`, or exit with one sentence saying what is wrong
    with the file."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        sys.exit(f"could not read {path}: {e.strerror}")
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            sys.exit(f"line {n} of {path} is not JSON; give the <sheet>.samples.jsonl that hume eval fidelity wrote")
        missing = [f for f in fields if not isinstance(row, dict) or f not in row]
        if missing:
            sys.exit(f"line {n} of {path} has no {missing[0]!r}; give the <sheet>.samples.jsonl that hume eval fidelity wrote")
        rows.append(row)
    if not rows:
        sys.exit(f"{path} holds no samples")
    return rows
