-- Benchmark: `mlsh info` on an ML program package with >= 1 GiB of weights. The weight file is
-- written sparse (real header and metadata records, data left as holes) so the bench is cheap to
-- set up; info must not read weight data, so its time and peak RSS should not depend on it.
-- Run: make bench (or ./mlsh bench/info_bench.lua [GiB]).
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/tests/support/?.lua;" .. package.path
local F = require "fixtures"

local gib = tonumber(arg and arg[1]) or 1
local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))

local function build(path, total_bytes)
  local nblobs = 64
  local per = total_bytes // nblobs // 64 * 64
  local elems = per // 2
  local spec, _ = F.mlprogram()
  local fe = spec.mlProgram.functions[1]
  local block = fe.value.block_specializations[1].value
  local f = assert(io.open(path .. ".weights.tmp", "wb"))
  f:write(string.pack("<I4I4", nblobs, 2), string.rep("\0", 56))
  local off = 64
  for i = 1, nblobs do
    f:seek("set", off)
    f:write(string.pack("<I4I4I8I8I8", 0xDEADBEEF, 1, per, off + 64, 0), string.rep("\0", 32))
    local op = block:add("operations")
    op.type = "const"
    local out = op:add("outputs")
    out.name = "w" .. i
    local tt = out:mutable("type"):mutable("tensorType")
    tt.dataType, tt.rank = "FLOAT16", 2
    tt:add("dimensions"):mutable("constant").size = elems // 1024
    tt:add("dimensions"):mutable("constant").size = 1024
    local a = op:add("attributes")
    a.key = "val"
    local v = a:mutable("value")
    v.type = out.type
    local b = v:mutable("blobFileValue")
    b.fileName, b.offset = "@model_path/weights/weight.bin", off
    off = off + 64 + per
  end
  f:seek("set", off - 1)
  f:write("\0")
  f:close()
  local pkg = path
  core.fs.remove_tree(pkg)
  F.write_package(pkg, spec, nil)
  os.rename(path .. ".weights.tmp", pkg .. "/Data/com.apple.CoreML/weights/weight.bin")
  return off
end

local function measure(pkg, runs)
  local best_t, best_rss = math.huge, 0
  for _ = 1, runs do
    local cmd = string.format("a=$(date +%%s%%N); /usr/bin/time -f '%%M' %s/mlsh info --json %s 2>&1 >/dev/null; b=$(date +%%s%%N); echo $(( (b - a) / 1000 ))",
      home, pkg)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    local rss, us = out:match("(%d+)%s+(%d+)%s*$")
    local t = tonumber(us) and tonumber(us) / 1e6
    rss = tonumber(rss)
    if t and t < best_t then best_t, best_rss = t, rss end
  end
  return best_t, best_rss
end

print(string.format("mlsh info bench (machine: %d cores)", tonumber(io.popen("nproc"):read("l")) or 0))
for _, size in ipairs({ 16 * 2 ^ 20, gib * 2 ^ 30 }) do
  local pkg = string.format("%s/big_%dMiB.mlpackage", dir, size // 2 ^ 20)
  local bytes = build(pkg, math.floor(size))
  local t, rss = measure(pkg, 5)
  print(string.format("  weights %8.1f MiB: info --json best of 5 %.0f ms, peak RSS %d KiB", bytes / 2 ^ 20, t * 1000, rss))
end
