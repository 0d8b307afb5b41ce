#!/bin/sh
# Conformance: every model the bundled examples write must decode with Google's protoc against
# mlsh's own schema (core/proto/coreml.proto): an independent protobuf implementation agreeing that
# the bytes are a well-formed CoreML.Specification.Model. Builds the examples into a temporary
# folder, decodes each .mlmodel and each package's Data/com.apple.CoreML/model.mlmodel (zipped
# packages are unpacked first), prints one line per model and exits non-zero on any failure.
# Usage: sh tests/conformance/protoc_decode.sh   (from the repository root; needs ./mlsh and protoc)
set -u
MLSH=${MLSH_BIN:-./mlsh}
if ! command -v protoc >/dev/null 2>&1; then
  echo "protoc_decode: protoc is not installed (apt-get install protobuf-compiler)"; exit 1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mlsh-protoc.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
for recipe in examples/*.lua; do
  [ -e "$recipe" ] || continue
  if ! "$MLSH" "$recipe" "$TMP/out" >/dev/null; then echo "FAIL build $recipe"; exit 1; fi
done

decode() { # $1 = label, $2 = a serialized Model
  if protoc --decode=CoreML.Specification.Model -I core/proto core/proto/coreml.proto <"$2" >"$TMP/decoded.txt" 2>"$TMP/err.txt" \
     && grep -q '^specificationVersion:' "$TMP/decoded.txt"; then
    echo "ok   $1 ($(wc -l <"$TMP/decoded.txt") lines)"
  else
    echo "FAIL $1: $(head -c 300 "$TMP/err.txt")"; failed=$((failed + 1))
  fi
  total=$((total + 1))
}

failed=0 total=0
for m in "$TMP"/out/*; do
  name=$(basename "$m")
  case "$name" in
    *.mlmodel) decode "$name" "$m" ;;
    *.mlpackage) decode "$name" "$m/Data/com.apple.CoreML/model.mlmodel" ;;
    *.zip)
      mkdir -p "$TMP/unzip/$name"
      if command -v unzip >/dev/null 2>&1; then unzip -q -o "$m" -d "$TMP/unzip/$name"
      else python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$m" "$TMP/unzip/$name"; fi
      spec=$(find "$TMP/unzip/$name" -path '*Data/com.apple.CoreML/model.mlmodel' | head -n 1)
      if [ -n "$spec" ]; then decode "$name" "$spec"; else echo "FAIL $name: no model.mlmodel inside"; failed=$((failed + 1)); total=$((total + 1)); fi ;;
  esac
done
echo "protoc --decode: $((total - failed))/$total models decode"
[ "$failed" -eq 0 ]
