#!/usr/bin/env bash
# Sets up every native backend (cached; see scripts/setup.sh) and runs every test of every
# backend, then the quickstart as a newcomer runs it, the quick benchmark, and 60 s of fuzzing
# of the config loader. Fails loudly if a backend is missing. Ends with one summary line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh all
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release --workspace --all-features 2>&1 | tee "$log"
cargo run --release --example quickstart -- --json
cargo run --release -p prune-bench -- --quick
bash scripts/fuzz.sh 60
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
