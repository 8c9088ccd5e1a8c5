#!/usr/bin/env bash
# Runs docs/getting-started.md as a new user would: in a fresh folder outside this repository
# (so that none of the repository's cargo settings apply), every `<!-- run -->` block in order,
# every `<!-- file: PATH -->` block written to PATH, and every `<!-- prints -->` line looked for
# in the output of the run block before it. PRUNE is the doc's one variable: this checkout.
#
#   bash scripts/getting-started.sh [WORK_DIR]      # default: a new temporary folder
#
# The crate is built as a user builds it: no LIBTORCH, LD_LIBRARY_PATH, PKG_CONFIG_PATH or
# CARGO_TARGET_DIR from the caller reaches it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="$ROOT/docs/getting-started.md"
WORK="${1:-$(mktemp -d "${TMPDIR:-/tmp}/prune-getting-started.XXXXXX")}"
mkdir -p "$WORK"
case "$WORK" in "$ROOT"/*) echo "getting-started: $WORK is inside the repository" >&2; exit 2 ;; esac
SCRIPT="$WORK/steps.sh"
python3 - "$DOC" "$SCRIPT" "$ROOT" <<'PY'
import re, shlex, sys
doc, out, root = sys.argv[1:]
lines = open(doc).read().splitlines()
steps, i, marker = [], 0, None
while i < len(lines):
    m = re.match(r"<!-- (run|prints|file: (\S+)) -->$", lines[i].strip())
    if m:
        marker = m
        i += 1
        continue
    if lines[i].startswith("```") and marker:
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        body = lines[i + 1:j]
        kind = marker.group(1)
        if kind == "run":
            steps.append(("run", body))
        elif kind == "prints":
            steps.append(("prints", body))
        else:
            steps.append(("file", marker.group(2), body))
        marker, i = None, j + 1
        continue
    i += 1
# fd 3 is the terminal's stderr: a failing step exits inside its own redirection.
sh = ["set -euo pipefail", "LOG=$(mktemp)", "exec 3>&2",
      "trap 'status=$?; [ $status -eq 0 ] || { echo \"[getting-started] a step failed; its output:\" >&3; cat \"$LOG\" >&3; }' EXIT"]
for n, step in enumerate(steps):
    if step[0] == "run":
        sh.append(f"echo '[getting-started] step {n}: run' >&2")
        body = [l for l in step[1] if not l.startswith("PRUNE=")]
        if len(body) != len(step[1]):
            sh.append(f"PRUNE={shlex.quote(root)}")
        sh.append("{ :")
        sh += body
        sh.append('} > "$LOG" 2>&1')
        sh.append('cat "$LOG"')
    elif step[0] == "file":
        path = step[1]
        sh.append(f"echo '[getting-started] step {n}: write {path}' >&2")
        sh.append(f"mkdir -p \"$(dirname {shlex.quote(path)})\"")
        sh.append(f"cat > {shlex.quote(path)} <<'PRUNE_DOC_EOF'")
        sh += step[2]
        sh.append("PRUNE_DOC_EOF")
    else:
        for want in step[1]:
            sh.append(f"grep -qF -- {shlex.quote(want)} \"$LOG\" || {{ echo \"[getting-started] step {n}: the output lacks '{want}'\" >&2; exit 1; }}")
sh.append("echo '[getting-started] every step of docs/getting-started.md ran' >&2")
open(out, "w").write("\n".join(sh) + "\n")
PY
cd "$WORK"
env -u LIBTORCH -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u CPLUS_INCLUDE_PATH -u CARGO_TARGET_DIR \
  bash "$SCRIPT"
