#!/bin/sh
# make valgrind: the main CLI commands over the test fixtures (built by `make test`) and the
# bundled examples under valgrind; any memory error or definite leak fails.
set -u
fx=build/test-fixtures
ex=build/examples
[ -d "$fx" ] || { echo "valgrind: run make test first (it builds $fx)"; exit 2; }
out=$(mktemp -d)
status=0
run() {
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    ./mlsh "$@" >/dev/null 2>"$out/err"
  rc=$?
  if [ $rc -eq 99 ] || grep -q "==[0-9]*==" "$out/err"; then
    echo "valgrind: errors in: mlsh $*"; sed -n '1,30p' "$out/err"; status=1
  else
    echo "valgrind clean: mlsh $* (exit $rc)"
  fi
}
run info --json $fx/prog.mlpackage.zip
run info $fx/pipeline.mlmodel
run info $fx/corrupt.mlpackage.zip
run info $fx/truncated.mlmodel
run check --format json $fx/cnn.mlmodel
run save $fx/multi.mlpackage "$out/multi.mlpackage.zip"
[ -e $ex/mobilenet_like_good.mlpackage ] && run check --target iOS17 $ex/mobilenet_like_good.mlpackage
[ -e $ex/transformer_encoder_good.mlpackage ] && run compress $ex/transformer_encoder_good.mlpackage -o "$out/c.mlpackage" --palettize 4
./mlsh -e "package.path='tests/support/?.lua;'..package.path; local B = require('onnx_builder'); local m = B.model(); m:input('x', 'FLOAT', {1, 8}); m:node('Relu', {'x'}, {'a'}); m:node('Hardmax', {'a'}, {'y'}, {axis = 1}); m:output('y', 'FLOAT', {1, 8}); m:save('$out/m.onnx')"
run ep --json "$out/m.onnx"
run info "$out/m.onnx"
run weights --json $fx/prog.mlpackage
# the interpreter: an ML program (threaded kernels), a NeuralNetwork, a pipeline, and compress --check-outputs
[ -e $ex/mobilenet_like_good.mlpackage ] && run run $ex/mobilenet_like_good.mlpackage --random 1 --json
run run $fx/cnn.mlmodel --random 1 -o "$out/run"
run run $fx/pipeline.mlmodel --random 1 --json
[ -e $ex/transformer_encoder_good.mlpackage ] && run compress $ex/transformer_encoder_good.mlpackage -o "$out/q.mlpackage" --quantize int8 --check-outputs --random 1
rm -rf "$out"
exit $status
