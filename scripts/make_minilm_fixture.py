"""Writes tests/fixtures/minilm_reference.json: token ids from the Hugging Face `tokenizers`
library and sentence embeddings from a NumPy BERT forward pass (mean pooling, L2 norm) of
all-MiniLM-L6-v2, for a few sentences. Needs numpy and tokenizers.

    python scripts/make_minilm_fixture.py .deps/minilm tests/fixtures/minilm_reference.json
"""
import json, sys
import numpy as np
from math import erf, sqrt
from tokenizers import Tokenizer
from check_pruned_bert import load

SENTENCES = [
    "The current code generator emits no code for an assert statement.",
    "Assignment is defined recursively depending on the form of the target (list).",
    "Café owners don't like naïve, UNKNOWN-words: e.g. x_y.z!",
    "Short.",
]


def layer_norm(x, w, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


gelu = np.vectorize(lambda x: 0.5 * x * (1 + erf(x / sqrt(2))))


def embed(W, ids):
    s = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:s] \
        + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    l = 0
    while f"encoder.layer.{l}.attention.self.query.weight" in W:
        p = f"encoder.layer.{l}."
        lin = lambda t, n: t @ W[p + n + ".weight"].T + W[p + n + ".bias"]
        q, k, v = (lin(x, "attention.self." + n).reshape(s, 12, 32).transpose(1, 0, 2) for n in ("query", "key", "value"))
        sc = q @ k.transpose(0, 2, 1) / sqrt(32)
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        pr = sc / sc.sum(-1, keepdims=True)
        ctx = (pr @ v).transpose(1, 0, 2).reshape(s, 384)
        x = layer_norm(lin(ctx, "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(h, "output.dense") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
        l += 1
    m = x.mean(0)
    return m / np.linalg.norm(m)


def main(model_dir, out):
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    W = load(f"{model_dir}/model.safetensors")
    rows = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        rows.append({"text": s, "ids": ids, "embedding": [round(float(v), 7) for v in embed(W, ids)]})
    with open(out, "w") as f:
        json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "sentences": rows}, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
