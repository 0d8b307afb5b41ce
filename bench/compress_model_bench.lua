-- compress_model_bench.lua — whole-model compression and decompression: `mlsh compress` work
-- (select, kernels, constexpr ops, validated write of the package) and reading every weight back
-- to dense values (w:values() on the reloaded model), on a 67M-weight fp16 ML program.
-- Run: ./mlsh bench/compress_model_bench.lua [--quick]   (BENCH_REPEATS=n, default 3; best run kept)
local mlsh = require "mlsh"
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/bench/?.lua;" .. package.path
local timing = require "timing"
local compress = require "mlsh.compress"
local K = core.compress

local quick = false
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end
local D, LAYERS = quick and 1024 or 4096, 4
local repeats = tonumber(os.getenv("BENCH_REPEATS") or "3")

local dir = io.popen("mktemp -d /tmp/mlsh-bench.XXXXXX"):read("l")
local src = dir .. "/base.mlpackage"
timing.linear_stack(src, LAYERS, D)
local n = D * D * LAYERS

local function rss_kib()
  local fh = io.open("/proc/self/status")
  if not fh then return 0 end
  local s = fh:read("a")
  fh:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local cases = {
  { "palettize 4-bit per-tensor", { palettize = { nbits = 4 } } },
  { "palettize 4-bit grouped 16", { palettize = { nbits = 4, granularity = "per_grouped_channel", group_size = 16 } } },
  { "int8 per-channel", { quantize = { dtype = "int8" } } },
  { "int4 per-block 32", { quantize = { dtype = "int4", granularity = "per_block", block_size = 32 } } },
  { "prune 50%", { prune = { sparsity = 0.5 } } },
  { "prune 50% + palettize 4-bit", { prune = { sparsity = 0.5 }, palettize = { nbits = 4 } } },
}

print(string.format("compress model bench: %d x [%d, %d] fp16 = %.1fM weights, %d threads, best of %d",
  LAYERS, D, D, n / 1e6, K.threads(), repeats))
print(string.format("%-30s %10s %10s %10s %9s %8s", "setting", "compress", "reload+dec", "Mw/s dec", "size MB", "SNR dB"))
for _, c in ipairs(cases) do
  local best_c, best_d, report, out = math.huge, math.huge, nil, dir .. "/out.mlpackage"
  for _ = 1, repeats do
    local m = mlsh.load(src)
    local t = K.clock()
    report = compress.save(m, out, c[2], { in_place = true })
    best_c = math.min(best_c, K.clock() - t)
    m:close()
    t = K.clock()
    local m2 = mlsh.load(out)
    for _, e in ipairs(m2:inventory()) do
      if e.compression then e:values() end
    end
    best_d = math.min(best_d, K.clock() - t)
    m2:close()
  end
  print(string.format("%-30s %9.2fs %9.2fs %10.1f %9.1f %8.2f", c[1], best_c, best_d, n / best_d / 1e6,
    report.totals.bytes_after / 1e6, report.totals.snr_db))
end
print(string.format("peak RSS %.0f MiB (the dense fp16 model is %.0f MB)", rss_kib() / 1024, n * 2 / 1e6))
os.execute("rm -rf '" .. dir .. "'")
