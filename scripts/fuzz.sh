#!/usr/bin/env bash
# Fuzzes the config loader and the safetensors checkpoint reader, each for a bounded time
# (default 45 s) from the committed corpus. Installs cargo-fuzz on first use. libFuzzer needs
# compiler flags that stable Rust accepts only with RUSTC_BOOTSTRAP=1; no sanitizer is used, so
# no nightly toolchain is needed.
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-45}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
for target in config safetensors; do
  # New inputs found during the run go to a scratch folder; the committed corpus stays as it is.
  scratch="$(mktemp -d)"
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --release "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
  rm -rf "$scratch"
  echo "fuzz: $target ran ${seconds}s without a finding"
done
