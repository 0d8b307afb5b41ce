#!/bin/sh
# make demo: mlsh's main job on the bundled examples — the ANE-readiness report (per-op devices,
# segments, coverage, top fixes), then `mlsh check` against a deployment target.
set -e
ex=build/examples
for m in $ex/mobilenet_like_good.mlpackage $ex/mobilenet_like_dilated.mlpackage $ex/transformer_encoder_gather.mlpackage \
         $ex/transformer_encoder_range.mlpackage $ex/mobilenet_like_nn.mlmodel; do
  echo "\$ mlsh recipes/ane-readiness.lua $m"
  ./mlsh recipes/ane-readiness.lua "$m"
  echo
done
echo "\$ mlsh check --target iOS17 $ex/transformer_encoder_good.mlpackage"
./mlsh check --target iOS17 $ex/transformer_encoder_good.mlpackage
echo
echo "\$ mlsh check --target iOS16 $ex/mobilenet_like_ios18.mlpackage   # an iOS16 app cannot load it"
./mlsh check --target iOS16 $ex/mobilenet_like_ios18.mlpackage || true
echo
echo "\$ mlsh info $ex/image_classifier.mlpackage"
./mlsh info $ex/image_classifier.mlpackage
