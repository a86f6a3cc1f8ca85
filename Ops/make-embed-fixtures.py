#!/usr/bin/env python3
"""Writes HumeEmbed's reference fixtures from sentence-transformers (the reference implementation).

    python3 -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install sentence-transformers torch
    Ops/fetch-model.sh
    /tmp/stvenv/bin/python Ops/make-embed-fixtures.py

Loads all-MiniLM-L6-v2 from ${HUME_HOME:-~/.cache/hume}/models/all-MiniLM-L6-v2 (installed by
Ops/fetch-model.sh, a complete sentence-transformers folder) on CPU and writes:
  Tests/HumeEmbedTests/Fixtures/tokens.json      token ids for tokenizer edge cases
  Tests/HumeEmbedTests/Fixtures/embeddings.json  ~30 prompts and their 384-d vectors (7 significant digits)
The token ids are those of the tokenizer sentence-transformers itself uses (the fast tokenizer from
tokenizer.json, truncated at max_seq_length); the script also checks the slow Python BertTokenizer
and prints any case where the two disagree.
"""
import json
import os
import sys
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from transformers import BertTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "HumeEmbedTests" / "Fixtures"
MODEL = Path(os.environ.get("HUME_HOME", Path.home() / ".cache" / "hume")) / "models" / "all-MiniLM-L6-v2"

TOKEN_CASES = {
    "plain": "A photo of a cat sitting on a red sofa.",
    "punctuation": "Hello, world!!! (yes) [no] {maybe} -- 3.14 $5 #tag @user a/b c\\d e_f 'quote' \"dq\" `tick` ~^|<>=+*&%",
    "unicode_punctuation": "“Smart quotes” — em dash – en dash… ¿Qué? ¡Sí! «guillemets» 「括弧」",
    "accents": "Crème brûlée, naïve café, Ångström, São Paulo, façade, ÉCOLE",
    "greek": "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο",
    "cyrillic": "Съешь же ещё этих мягких французских булок, да выпей чаю",
    "arabic": "مرحبا بالعالم، هذه جملة عربية للاختبار",
    "hindi": "नमस्ते दुनिया, यह एक परीक्षण वाक्य है",
    "chinese": "我爱北京天安门，天安门上太阳升。",
    "japanese": "東京タワーはとても高いです。ひらがなとカタカナ",
    "korean": "안녕하세요 세계, 한국어 문장입니다",
    "emoji": "I love pizza 🍕 and cats 😺 🎉 👍🏽 ❤️ 👨‍👩‍👧",
    "zero_width_and_soft_hyphen": "zero\u200bwidth soft\u00adhyphen join\u200dme non\u200cjoiner wo\u2060rd bom\ufeffhere",
    "controls_and_spaces": "tab\tnew\nline\rcr\u000bvt\u0000nul\ufffdrepl\u00a0nbsp\u3000ideo\u2028ls\u0085nel\u200a hair",
    "mixed_case_and_digits": "iPhone15 PRO-Max 2024 HTTPServer x86_64 GPT4o",
    "long_word": "a" * 120 + " ok",
    "exactly_100_chars_word": "b" * 100,
    "unmatchable_piece": "hello\u2603\u2604world \u16a0\u16a1",
    "empty": "",
    "whitespace_only": " \t\n  \u00a0 ",
    "over_long": " ".join(f"word{i} and, more!" for i in range(150)),
    "combining_marks": "e\u0301 n\u0303 a\u0308 Z\u030c",
    "fullwidth_and_compat": "ＡＢＣ ｆｕｌｌ ﬁne ① ²",
    "math_symbols": "x² + y² = z² ≤ ∞ ± √2 ∑ € £ ¥ © ®",
    "greek_capital_final_sigma": "ΟΔΟΣ ΚΑΛΟΣ Σοφία",
    "special_casing": "İstanbul ǅ ß ẞ ΐ",
    "private_use_and_unassigned": "keep\U000F0000private a\u0378b new\U0001FAE0emoji",
    "hangul_compatibility": "ㄱㄴㄷ 한글",
}

PROMPTS = [
    "a cute cat wearing sunglasses",
    "A dog running on the beach at sunset.",
    "smiling face with heart-eyes",
    "red apple",
    "an astronaut riding a horse on the moon",
    "the quick brown fox jumps over the lazy dog",
    "Crème brûlée with a caramelised sugar crust",
    "a bowl of ramen with chopsticks",
    "Snowy mountains under a starry night sky",
    "penguin",
    "A small yellow rubber duck floating in a bathtub.",
    "thumbs up: medium skin tone",
    "flag of Japan",
    "a tux penguin holding a paintbrush",
    "What is the capital of France?",
    "The stock market fell sharply on Tuesday after the announcement.",
    "Ein Hund spielt im Park.",
    "Le chat dort sur le canapé.",
    "猫がソファで寝ている",
    "красный автомобиль на дороге",
    "🍕🍔🍟 fast food",
    "",
    "   ",
    "!!!???...",
    "x" * 150,
    "face with tears of joy, laughing, crying",
    "A watercolour painting of a lighthouse on a rocky cliff during a storm, waves crashing, seagulls flying overhead, dramatic clouds.",
    " ".join(["This sentence is repeated many times so that the input exceeds the model limit."] * 25),
    "zero\u200bwidth soft\u00adhyphen",
    "machine learning; retrieval-augmented diffusion (KNN)",
]


def sig7(x: float) -> float:
    return float(f"{x:.7g}")


def main() -> int:
    if not (MODEL / "model.safetensors").exists():
        print(f"model not found in {MODEL}: run Ops/fetch-model.sh first", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    model = SentenceTransformer(str(MODEL), device="cpu")
    print(model, file=sys.stderr)
    assert model.max_seq_length == 256, model.max_seq_length
    fast = model.tokenizer
    slow = BertTokenizer(str(MODEL / "vocab.txt"), do_lower_case=True)

    cases = []
    for name, text in TOKEN_CASES.items():
        ids = fast(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        slow_ids = slow(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        if ids != slow_ids:
            print(f"NOTE fast and slow tokenizers differ on {name!r}:\n  fast {fast.convert_ids_to_tokens(ids)}\n  slow {slow.convert_ids_to_tokens(slow_ids)}", file=sys.stderr)
        cases.append({"name": name, "text": text, "ids": ids, "tokens": fast.convert_ids_to_tokens(ids)})
    with open(OUT / "tokens.json", "w", encoding="utf-8") as f:
        json.dump({"source": "sentence-transformers all-MiniLM-L6-v2 tokenizer (max_seq_length 256)", "cases": cases},
                  f, ensure_ascii=False, indent=1)

    with torch.inference_mode():
        vectors = model.encode(PROMPTS, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)
    entries = []
    for text, v in zip(PROMPTS, vectors):
        ids = fast(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        entries.append({"text": text, "tokenCount": len(ids), "vector": [sig7(float(x)) for x in v]})
    with open(OUT / "embeddings.json", "w", encoding="utf-8") as f:
        json.dump({"source": "sentence-transformers all-MiniLM-L6-v2 on CPU (float32), mean pooling, L2-normalised",
                   "dimension": int(vectors.shape[1]), "prompts": entries}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    for p in ("tokens.json", "embeddings.json"):
        print(f"wrote {OUT / p} ({(OUT / p).stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
