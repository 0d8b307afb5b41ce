-- compress_bench.lua — time the compression kernels on a 63M-weight model's worth of tensors.
-- Run: ./mlsh bench/compress_bench.lua [--quick]   (or, before the CLI runs scripts:
--      LUA_CPATH="build/lua/?.so;;" lua5.4 bench/compress_bench.lua)
-- Weights are Gaussian (std 0.02) and fp16-representable, generated in C (compress.randn).
-- Each row times whole calls of the Lua API over every tensor (kernel + output allocation +
-- packing), wall clock; SNR is over the whole model; metrics are computed outside the timing.
-- Threads: compress.threads() (online CPUs, or $MLSH_THREADS).
local core = require "mlsh.core"
local C = core.compress

local quick = false
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end

-- A 63M-parameter stack: three 4096x4096 projections, two 1024x4096 and one 4096x1024.
local shapes = { { 4096, 4096 }, { 4096, 4096 }, { 4096, 4096 }, { 1024, 4096 }, { 1024, 4096 }, { 4096, 1024 } }
if quick then shapes = { { 1024, 1024 }, { 512, 2048 } } end

local function vm_kib(field)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

local tensors, total = {}, 0
local t0 = C.clock()
for i, s in ipairs(shapes) do
  tensors[i] = C.randn(s, { seed = i, std = 0.02, weight_dtype = "fp16" })
  total = total + #tensors[i]
end
local gen_s = C.clock() - t0

local cases = {
  { name = "palettize kmeans 4-bit per-tensor", target = 1.0,
    run = function(a) return C.palettize(a, { nbits = 4, weight_dtype = "fp16" }) end },
  { name = "palettize kmeans 4-bit grouped G=16", target = 3.0,
    run = function(a) return C.palettize(a, { nbits = 4, granularity = "per_grouped_channel", group_size = 16, weight_dtype = "fp16" }) end },
  { name = "quantize int8 per-channel", target = 0.5,
    run = function(a) return C.quantize(a, { dtype = "int8", granularity = "per_channel", weight_dtype = "fp16" }) end },
  { name = "quantize int4 per-block 32", target = 0.5,
    run = function(a) return C.quantize(a, { dtype = "int4", granularity = "per_block", block_size = 32, weight_dtype = "fp16" }) end },
  { name = "prune magnitude 50%", target = 0.5,
    run = function(a) return C.prune(a, { sparsity = 0.5, weight_dtype = "fp16" }) end },
}

local load = io.open("/proc/loadavg")
local loadavg = load and load:read("l") or "?"
if load then load:close() end
print(string.format("compress bench: %d tensors, %.1fM fp16 weights, %d threads, generated in %.2f s, load %s",
  #shapes, total / 1e6, C.threads(), gen_s, loadavg))
print(string.format("%-38s %9s %8s %9s %12s", "case", "seconds", "target", "SNR dB", "compressed"))

local repeats = tonumber(os.getenv("BENCH_REPEATS") or "3")
for _, case in ipairs(cases) do
  local best, signal, noise, bytes = math.huge, 0, 0, 0
  for rep = 1, repeats do
    collectgarbage()
    local elapsed = 0
    for _, a in ipairs(tensors) do
      local t = C.clock()
      local r = case.run(a)
      elapsed = elapsed + (C.clock() - t)
      if rep == 1 then
        local m = C.metrics(a, r.reconstructed)
        local e = m.mse * m.n
        noise = noise + e
        signal = signal + e * 10 ^ (m.snr_db / 10)
        bytes = bytes + r.nbytes
      end
      r = nil -- luacheck: ignore 311 (drop the result before the collection)
      collectgarbage()
    end
    if elapsed < best then best = elapsed end
  end
  local snr = 10 * math.log(signal / noise, 10)
  print(string.format("%-38s %9.3f %7.1fs %9.2f %9.1f MB %s", case.name, best, case.target, snr, bytes / 1e6,
    (quick or best < case.target) and "" or "(over target)"))
end
print(string.format("peak RSS (VmHWM) %.0f MiB", (vm_kib("VmHWM") or 0) / 1024))
