#!/bin/sh
# make demo: mlsh's main job on the bundled examples (the readiness report once the rules land).
set -e
for m in build/examples/cnn.mlmodel build/examples/cnn_flex.mlmodel build/examples/prog.mlpackage \
         build/examples/prog.mlpackage.zip build/examples/multi.mlpackage build/examples/pipeline.mlmodel; do
  echo "\$ mlsh info $m"
  ./mlsh info "$m"
  echo
done
