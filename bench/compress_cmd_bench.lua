-- compress_cmd_bench.lua — the real processes: `mlsh compress MODEL -o OUT <setting>` and
-- `mlsh weights MODEL`, process start to exit, on the 67.1M-weight fp16 ML program of
-- compress_model_bench.lua (four 4096x4096 linear weights, 134 MB weight.bin). Reports the median
-- wall time, CPU time (user + system) and peak RSS (/usr/bin/time -f; on a shared machine CPU is
-- the figure to compare) against the issue-12 targets: compress <= 0.6 s with peak RSS <= 2x the
-- weight file, weights <= 0.3 s.
-- Run: ./mlsh bench/compress_cmd_bench.lua [RUNS] [--quick]   (RUNS default 3; --quick: 1024x1024)
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/bench/?.lua;" .. package.path
local timing = require "timing"
local K = core.compress

local runs, quick = 3, false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true else runs = math.tointeger(tonumber(a)) or runs end
end
local D, LAYERS = quick and 1024 or 4096, 4
local bin = os.getenv("MLSH_BIN") or (home .. "/mlsh")
local q = timing.q

local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))
local src = string.format("%s/compress_%dx%d.mlpackage", dir, LAYERS, D)
timing.linear_stack(src, LAYERS, D)
local wbin = src .. "/Data/com.apple.CoreML/weights/weight.bin"
local fh = assert(io.open(wbin, "rb"))
local wsize = fh:seek("end")
fh:close()
local out = dir .. "/compress_out.mlpackage"

-- Median wall / CPU seconds and peak RSS (KiB) of RUNS runs of cmd, from /usr/bin/time.
local function measure(cmd)
  local walls, cpus, rss = {}, {}, {}
  for i = 1, runs do
    local p = io.popen("/usr/bin/time -f 'MLSH_TIME %e %U %S %M' " .. cmd .. " 2>&1 >/dev/null")
    local text = p:read("a")
    p:close()
    local e, u, s, m = text:match("MLSH_TIME ([%d.]+) ([%d.]+) ([%d.]+) (%d+)")
    assert(e, "failed: " .. cmd .. "\n" .. text)
    walls[i], cpus[i], rss[i] = tonumber(e), tonumber(u) + tonumber(s), tonumber(m)
  end
  for _, t in ipairs({ walls, cpus, rss }) do table.sort(t) end
  local mid = (runs + 1) // 2
  return walls[mid], cpus[mid], rss[mid]
end

local cases = {
  { "compress --palettize 4", "--palettize 4" },
  { "compress --quantize int8", "--quantize int8" },
  { "compress --quantize int4 --per-block 32", "--quantize int4 --per-block 32" },
  { "compress --prune 0.5", "--prune 0.5" },
  { "compress --palettize 4 --dry-run", "--palettize 4 --dry-run" },
}
print(string.format("%d x [%d, %d] fp16 = %.1fM weights, weight.bin %.1f MB; %d threads; median of %d",
  LAYERS, D, D, LAYERS * D * D / 1e6, wsize / 1e6, K.threads(), runs))
print(string.format("%-44s %8s %8s %9s %7s", "command", "wall s", "cpu s", "RSS MiB", "RSS/wb"))
local function row(name, cmd)
  local wall, cpu, kib = measure(cmd)
  print(string.format("%-44s %8.2f %8.2f %9.0f %7.2f", name, wall, cpu, kib / 1024, kib * 1024 / wsize))
end
for _, c in ipairs(cases) do
  local dry = c[2]:match("dry%-run")
  row(c[1], q(bin) .. " compress " .. q(src) .. (dry and "" or (" -o " .. q(out))) .. " --quiet " .. c[2])
end
row("weights", q(bin) .. " weights " .. q(src))
row("weights --json", q(bin) .. " weights --json " .. q(src))
core.fs.remove_tree(out)
