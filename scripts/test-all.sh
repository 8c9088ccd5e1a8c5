#!/usr/bin/env bash
# Sets up every native backend and the MiniLM model (cached; see scripts/setup.sh) and runs every
# test of every backend, then the quickstart as a newcomer runs it, the MiniLM structured-pruning
# example on burn and torch (failing below the targets of docs/algorithms/gradient-sensitivity.md), the
# CNN filter-pruning example (failing if a target of docs/algorithms/channels.md is missed), the
# data-parallel example on two MPI processes (failing unless both ranks hold the same masks), the
# quick benchmark, the checkpoint commands on a 2 GiB file, 45 s each of fuzzing of the config loader and the checkpoint reader, and
# docs/getting-started.md in a crate of its own.
# Fails loudly if a backend or the model is missing. Ends with one summary line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh all
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --include-ignored: the MiniLM tests, ignored by a plain `cargo test`, run here (setup gave the model).
cargo test --release --workspace --all-features -- --include-ignored 2>&1 | tee "$log"
cargo run --release --example quickstart -- --json
# MiniLM structured pruning (docs/algorithms/gradient-sensitivity.md): on torch the hidden size
# alone (384 -> 288; held-out cosine >= 0.90) and all three structures (8 heads, 1024 FFN units,
# hidden 256; speedup >= 1.8 at cosine >= 0.85), the latter saved and checked by an independent
# NumPy forward pass of model.safetensors + config.json; on burn the same three-structure run with
# a short distillation must keep the same heads, FFN units and hidden dimensions as torch.
minilm() { cargo run --release --features torch --example minilm -- --json "$@"; }
saved="$(mktemp -d)"
h288="$(minilm --backend torch --hidden 288)"
echo "$h288"
full="$(minilm --backend torch --heads 8 --ffn 1024 --hidden 256 --save "$saved/minilm")"
echo "$full"
PYTHONPATH=.deps/python python3 scripts/check_pruned_bert.py "$saved/minilm"
rm -rf "$saved"
onburn="$(minilm --backend burn --heads 8 --ffn 1024 --hidden 256 --finetune-steps 10)"
echo "$onburn"
python3 -c 'import json, sys
h288, full, burn = (json.loads(a) for a in sys.argv[1:4])
fails = []
if h288["hidden"] != 288 or h288["cosine_mean"] < 0.90:
    fails.append("--hidden 288 on torch: hidden %d, held-out cosine %.4f (target >= 0.90)" % (h288["hidden"], h288["cosine_mean"]))
if full["speedup"] < 1.8 or full["cosine_mean"] < 0.85:
    fails.append("--heads 8 --ffn 1024 --hidden 256 on torch: speedup %.2f (target >= 1.8), held-out cosine %.4f (target >= 0.85)" % (full["speedup"], full["cosine_mean"]))
for key in ("heads", "ffn", "hidden_kept"):
    if burn[key] != full[key]:
        fails.append("burn and torch keep different %s" % key)
if fails:
    sys.exit("minilm: " + "; ".join(fails))' "$h288" "$full" "$onburn"
# Filter pruning of CNNs: the MNIST network and ResNet-18 on burn and torch; each run fails here
# if it misses its targets (docs/algorithms/channels.md; ResNet-18's speedup target is torch's).
for run in "burn mnist" "torch mnist" "torch resnet18" "burn resnet18"; do
  set -- $run
  out="$(cargo run --release --features torch --example cnn -- --backend "$1" --model "$2" --json)"
  echo "$out"
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
name = "cnn %s on %s" % (r["model"], r["backend"])
fails = []
if r["model"] == "mnist":
    if r["pruned_accuracy"] < r["dense_accuracy"] - 0.01:
        fails.append("pruned accuracy %.3f is more than 0.01 below dense %.3f" % (r["pruned_accuracy"], r["dense_accuracy"]))
    if r["macs_dense"] < 2 * r["macs_pruned"]:
        fails.append("MACs fell only %.2fx" % (r["macs_dense"] / r["macs_pruned"]))
    if r["speedup"] < 1.5:
        fails.append("speedup %.2f is below 1.5" % r["speedup"])
elif r["backend"] == "torch" and r["speedup"] < 1.3:
    fails.append("speedup %.2f is below 1.3" % r["speedup"])
if fails:
    sys.exit(name + ": " + "; ".join(fails))' "$out"
done
# Data-parallel pruning on two MPI processes, burn and torch: both ranks' masks must agree.
cargo build --release --all-features --example data_parallel   # built already by the tests above
for backend in burn torch; do
  out="$(mpirun --allow-run-as-root --oversubscribe -n 2 target/release/examples/data_parallel --backend "$backend" --json)"
  echo "$out"
  python3 -c 'import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
digests = {r["masks_digest"] for r in rows}
if len(rows) != 2 or len(digests) != 1:
    sys.exit("data_parallel: expected two ranks with one masks digest, got %r" % rows)' "$out"
done
cargo run --release -p prune-bench -- --quick
# The checkpoint commands at scale: `prune apply` (50% and 2:4) and `prune inspect` on a 2 GiB f16
# file made here (docs/checkpoints.md); each must succeed, and fails here if its peak RSS passes
# the goal of twice the largest tensor + 64 MiB.
cargo build --release -p prune-cli -p prune-bench
scale="$(target/release/prune-bench --checkpoint 2 --json)"
echo "$scale"
python3 -c 'import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
over = ["%s: peak RSS %.0f MiB, goal %.0f" % (r["name"], r["peak_rss_mib"], r["rss_goal_mib"]) for r in rows if r["peak_rss_mib"] > r["rss_goal_mib"]]
if len(rows) != 3 or over:
    sys.exit("checkpoint at scale: %d rows; %s" % (len(rows), "; ".join(over)))' "$scale"
bash scripts/fuzz.sh 45
# docs/getting-started.md run as written, in a crate of its own outside the repository, on burn
# and torch with no environment set.
bash scripts/getting-started.sh
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
