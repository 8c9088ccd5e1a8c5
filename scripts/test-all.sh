#!/usr/bin/env bash
# Sets up every native backend (cached; see scripts/setup.sh) and runs every test of every
# backend, then the quickstart as a newcomer runs it, then fuzzes the config loader for 60 s.
# Fails loudly if a backend is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh all
cargo test --release --workspace --all-features
cargo run --release --example quickstart -- --json
cargo run --release -p prune-bench -- --quick
bash scripts/fuzz.sh 60
