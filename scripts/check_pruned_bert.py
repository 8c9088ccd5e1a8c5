"""Checks a pruned BERT-family sentence encoder saved as a Hugging Face folder: an independent
NumPy forward pass that reads only DIR/model.safetensors and DIR/config.json (hidden_size,
num_attention_heads, attention_head_size, pruned_heads, layer_norm_eps) must give the sentence
embeddings (mean pooling, L2 norm) that DIR/check.json records for its token ids, within 1e-4.
Exits 1 naming the first sentence that differs. Needs numpy.

    python3 scripts/check_pruned_bert.py DIR
"""
import json, struct, sys
import math
from math import sqrt
import numpy as np

TOLERANCE = 1e-4


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or e["dtype"] != "F32":
            continue
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"]).astype(np.float64)
    return out


erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def embed(W, config, ids):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    width = config.get("attention_head_size", hidden // heads)
    pruned = {int(k): len(v) for k, v in config.get("pruned_heads", {}).items()}
    eps = config.get("layer_norm_eps", 1e-12)
    s = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:s] \
        + W["embeddings.token_type_embeddings.weight"][0]
    assert x.shape[1] == hidden, "config.json hidden_size %d, embeddings %d wide" % (hidden, x.shape[1])
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    for l in range(config["num_hidden_layers"]):
        p = "encoder.layer.%d." % l
        n = heads - pruned.get(l, 0)
        lin = lambda t, name: t @ W[p + name + ".weight"].T + W[p + name + ".bias"]
        q, k, v = (lin(x, "attention.self." + name).reshape(s, n, width).transpose(1, 0, 2)
                   for name in ("query", "key", "value"))
        sc = q @ k.transpose(0, 2, 1) / sqrt(width)
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        ctx = ((sc / sc.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(s, n * width)
        x = layer_norm(lin(ctx, "attention.output.dense") + x,
                       W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / sqrt(2)))
        x = layer_norm(lin(h, "output.dense") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    m = x.mean(0)
    return m / np.linalg.norm(m)


def main(folder):
    W = load(folder + "/model.safetensors")
    with open(folder + "/config.json") as f:
        config = json.load(f)
    with open(folder + "/check.json") as f:
        check = json.load(f)
    worst = 0.0
    for row in check["sentences"]:
        ours = np.array(row["embedding"])
        theirs = embed(W, config, row["ids"])
        if ours.shape != theirs.shape:
            sys.exit("%r: embedding of %d values, NumPy gives %d" % (row["text"], ours.size, theirs.size))
        diff = float(np.abs(ours - theirs).max())
        worst = max(worst, diff)
        if diff > TOLERANCE:
            sys.exit("%r: max abs difference %.2e to the NumPy forward pass (tolerance %g)" % (row["text"], diff, TOLERANCE))
    print(json.dumps({"sentences": len(check["sentences"]), "hidden_size": config["hidden_size"],
                      "max_abs_difference": worst}))


if __name__ == "__main__":
    main(sys.argv[1])
