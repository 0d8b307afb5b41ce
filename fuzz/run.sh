#!/bin/sh
# make fuzz [FUZZ_SECONDS=N]: build every fuzz/fuzz_*.c with libFuzzer + ASan + UBSan against the C
# core (no Lua), seed it from files mlsh's own fixture writer makes, and run it N seconds.
# A crash is minimized into tests/fuzz-regressions/<harness>/ so `make test` replays it forever.
set -e
secs=${1:-30}
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/fuzz
mkdir -p "$out"
cd "$top"
make -s all >/dev/null
# seeds: the test fixtures (built by mlsh's own writer), never files from ../shared
seeds=$out/fixtures
rm -rf "$seeds"
./mlsh -e "package.path='$top/tests/support/?.lua;'..package.path; assert(require('mlsh.core').fs.mkdir_p('$seeds')); require('fixtures').build_all('$seeds')" >/dev/null
for h in mlmodel json blob miltext zip onnx npy interp pte inmemoryfs espresso png constexpr compress; do mkdir -p "$out/seeds-$h"; done
find "$seeds" -name '*.mlmodel' -exec cp {} "$out/seeds-mlmodel/" \;
i=0; for f in $(find "$seeds" -name Manifest.json); do i=$((i+1)); cp "$f" "$out/seeds-json/m$i.json"; done
i=0; for f in $(find "$seeds" -name weight.bin); do i=$((i+1)); cp "$f" "$out/seeds-blob/w$i.bin"; done
find "$seeds" -name '*.zip' -exec cp {} "$out/seeds-zip/" \;
cp fuzz/seeds/*.mil "$out/seeds-miltext/" 2>/dev/null || true
# interp seeds: small ML programs without a weight file, written by mlsh.builder
./mlsh -e "local B = require('mlsh.builder'); for k, ops in ipairs({{'relu','softmax'},{'sigmoid','exp'},{'tanh','reduce_mean'}}) do local p = B.program{opset = 'iOS17', precision = 'fp32'}; local f = p:func('main'); local y = f:input('x', 'fp32', {2, 3}); for _, o in ipairs(ops) do if o == 'softmax' then y = f:op(o, {x = y, axis = -1}) elseif o == 'reduce_mean' then y = f:op(o, {x = y, axes = {1}, keep_dims = true}) else y = f:op(o, {x = y}) end end; f:output('y', f:op('add', {x = y, y = 1.0})); p:save('$out/seeds-interp/p' .. k .. '.mlmodel') end" >/dev/null
# depthwise and im2col convs (one channel: the 3x3 weights stay inline), through each kernel path
./mlsh -e "local B = require('mlsh.builder'); local A = require('mlsh.core').array; for k, c in ipairs({{9, 12, 1, 1, 1}, {20, 40, 1, 1, 1}, {15, 33, 2, 2, 1}, {12, 17, 2, 1, 2}}) do local p = B.program{opset = 'iOS17', precision = 'fp32'}; local f = p:func('main'); local x = f:input('x', 'fp32', {1, 1, c[1], c[2]}); local w = f:const('w', A.new({1, -2, 3, -4, 5, -6, 7, -8, 9}), {shape = {1, 1, 3, 3}}); local y = f:op('conv', {x = x, weight = w, groups = 1, pad_type = 'same', strides = {c[3], c[4]}, dilations = {c[5], c[5]}}); f:output('y', f:op('relu', {x = y})); p:save('$out/seeds-interp/conv' .. k .. '.mlmodel') end" >/dev/null
# and the fixtures' own small models (NeuralNetwork layers, pipelines, trees, GLMs) for the other loaders
find "$seeds" -name '*.mlmodel' -size -64k -exec cp {} "$out/seeds-interp/" \;
# npy seeds written by the interpreter's own writer, in several dtypes and ranks
./mlsh -e "local i = require('mlsh.core').interp; local a = require('mlsh.core').array; for k, dt in ipairs({'fp16','fp32','fp64','int8','int32','int64','uint16','bool'}) do assert(i.tensor(a.new({1,2,3,4,5,6}), dt, {2,3}):save('$out/seeds-npy/s' .. k .. '.npy')) end" >/dev/null
# ONNX seeds from the project's own ONNX test builder
./mlsh -e "package.path='$top/tests/support/?.lua;'..package.path; local B = require('onnx_builder'); local m = B.model(); m:input('x', 'FLOAT', {1, 8}); m:init('w', 'FLOAT', {8, 8}); m:node('MatMul', {'x', 'w'}, {'y'}); m:node('Erf', {'y'}, {'z'}); m:output('z', 'FLOAT', {1, 8}); m:save('$out/seeds-onnx/seed.onnx')">/dev/null 2>&1 || true
# ExecuTorch seeds from the project's own .pte builder (small files only: no sparse giants)
./mlsh -e "package.path='$top/tests/support/?.lua;'..package.path; local d='$out/pte-fixtures'; require('mlsh.core').fs.remove_tree(d); assert(require('mlsh.core').fs.mkdir_p(d)); local out = require('pte_fixtures').build_all(d); local pte = require('mlsh.pte'); for k, p in pairs(out) do local h = pte.open(p); if h then for i, dl in ipairs(h:delegates()) do local f = io.open('$out/seeds-inmemoryfs/'..k..i, 'wb'); f:write(dl:bytes()); f:close() end h:close() end end" >/dev/null
find "$out/pte-fixtures" -size -1000k \( -name '*.pte' -o -name '*.bpte' \) -exec cp {} "$out/seeds-pte/" \;
rm -rf "$out/pte-fixtures"
./mlsh -e "package.path='$top/tests/support/?.lua;'..package.path; require('pte_fixtures').espresso_mlmodelc('$out/esp.mlmodelc')" >/dev/null
cp "$out/esp.mlmodelc/model.espresso.weights" "$out/seeds-espresso/w1"; rm -rf "$out/esp.mlmodelc"
# PNG seeds from the specs' own encoder (tests/support/png_write.lua): colour types, depths, Adam7
./mlsh -e "package.path='$top/tests/support/?.lua;'..package.path; local W = require('png_write'); for k, c in ipairs({{0,1},{0,16},{2,8},{2,16},{3,4},{4,8},{6,16}}) do local ch = ({[0]=1,[2]=3,[3]=1,[4]=2,[6]=4})[c[1]]; W.write('$out/seeds-png/p' .. k .. '.png', {width = 5, height = 3, color = c[1], depth = c[2], interlace = k % 2 == 0, palette = c[1] == 3 and {{1,2,3},{4,5,6}} or nil, pixel = function(x, y) local v = {} for i = 1, ch do v[i] = (x + y + i) % (c[1] == 3 and 2 or (1 << c[2])) end return table.unpack(v) end}) end" >/dev/null
# compress seeds (fuzz_compress.c's header, then fp16 codes): 8-bit per channel, 4-bit per block,
# magnitude pruning over 64K elements (the sampled window), threshold pruning
./mlsh -e "local function w(name, s) local f = assert(io.open('$out/seeds-compress/' .. name, 'wb')); f:write(s); f:close() end; local d = {}; for i = 1, 97 do d[i] = string.pack('<I2', 0x2000 + ((i * 2654435761) >> 7) % 0x2400 | (i % 3 == 0 and 0x8000 or 0)) end; d = table.concat(d); w('q8', string.char(0, 0, 3, 63, 0, 7) .. d); w('q4b', string.char(2, 17, 15, 255, 0, 3) .. d); w('pm', string.char(3, 0, 255, 43, 1, 128) .. d); w('pt', string.char(1, 1, 9, 100, 0, 40) .. d)" >/dev/null
src=""
for f in core/*.c core/interp/*.c core/compress/*.c; do case "$f" in core/lua_*) ;; *) src="$src $f";; esac; done
gen=$(ls build/gen/*.pb-c.c)
# the core is compiled once (instrumented for libFuzzer, no main), then linked into each harness
flags="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Icore -Ibuild/gen $(pkg-config --cflags libprotobuf-c libzip libpng lua5.4)"
objs=$out/obj
rm -rf "$objs"; mkdir -p "$objs"
for f in $src $gen build/gen/proto_registry.c; do echo "$f"; done |
  CFLAGS="$flags" OBJS="$objs" xargs -P "$(nproc)" -I{} sh -c 'clang $CFLAGS -c "{}" -o "$OBJS/$(echo "{}" | tr / _).o"'
libs="$(pkg-config --libs libprotobuf-c libzip libpng lua5.4) -lm"
status=0
for h in mlmodel json blob miltext zip onnx npy interp pte inmemoryfs espresso png constexpr compress; do
  bin=$out/fuzz_$h
  clang $flags -fsanitize=fuzzer fuzz/fuzz_$h.c "$objs"/*.o $libs -o "$bin"
  rm -rf "$out/crashes-$h"
  mkdir -p "$out/corpus-$h" "$out/crashes-$h"
  echo "fuzz_$h: $secs s"
  if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/crashes-$h/" \
       "$out/corpus-$h" "$out/seeds-$h" 2>"$out/fuzz_$h.log"; then
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/fuzz_$h.log" | sed 's/^/  /'
  for crash in "$out/crashes-$h"/*; do
    [ -e "$crash" ] || continue
    mkdir -p tests/fuzz-regressions/$h
    "$bin" -minimize_crash=1 -runs=2000 -exact_artifact_path="tests/fuzz-regressions/$h/$(basename "$crash")" "$crash" >/dev/null 2>&1 || true
    [ -e "tests/fuzz-regressions/$h/$(basename "$crash")" ] || cp "$crash" tests/fuzz-regressions/$h/
    echo "  crash saved: tests/fuzz-regressions/$h/$(basename "$crash")"
  done
done
exit $status
