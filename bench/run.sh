#!/bin/sh
# run.sh — run every bench/*_bench.lua with the mlsh binary ($MLSH_BIN, default ./mlsh).
# Usage: make bench   (or: MLSH_BIN=./mlsh sh bench/run.sh). Extra arguments go to each bench.
# Exit status: 1 if any bench failed, else 0.
cd "$(dirname "$0")/.." || exit 1
bin=${MLSH_BIN:-./mlsh}
status=0
for f in bench/*_bench.lua; do
  [ -e "$f" ] || continue
  echo "== $f"
  "$bin" "$f" "$@" || { echo "bench failed: $f" >&2; status=1; }
done
exit $status
