#!/usr/bin/env python3
"""Reference timing for `hume bench embed`: sentence-transformers all-MiniLM-L6-v2 on CPU, one thread.

Usage: bench-embed-reference.py SENTENCES.txt [--repeats N] [--model DIR]
Prints {"1": s/s, "32": s/s, "256": s/s} (median over repeats). Exits 3 when sentence-transformers
is not importable, so the benchmark can report that the reference was not run.
"""
import json, os, statistics, sys, time

os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import torch
    from sentence_transformers import SentenceTransformer
except ImportError:
    sys.exit(3)

def main():
    args = sys.argv[1:]
    path = args[0]
    repeats = int(args[args.index("--repeats") + 1]) if "--repeats" in args else 3
    default = os.path.join(os.environ.get("HUME_HOME", os.path.expanduser("~/.cache/hume")), "models/all-MiniLM-L6-v2")
    model_dir = args[args.index("--model") + 1] if "--model" in args else default
    torch.set_num_threads(1)
    texts = open(path, encoding="utf-8").read().split("\n")
    model = SentenceTransformer(model_dir if os.path.exists(os.path.join(model_dir, "modules.json")) else "sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    model.encode(texts[:8], batch_size=8)
    out = {}
    for batch in (1, 32, 256):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.encode(texts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True)
            times.append(time.perf_counter() - t0)
        out[str(batch)] = len(texts) / statistics.median(times)
    print(json.dumps(out))

if __name__ == "__main__":
    main()
