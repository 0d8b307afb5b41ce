-- Benchmark: `mlsh weights` (the inventory with per-weight statistics) on an fp16 ML program with
-- N x 2048x2048 linear weights (default 4: 16.8M weights, 33.6 MB). Weight-file weights are
-- streamed through the C core (m:_blob_stats: decoded in 4096-value chunks on the stack, one pass,
-- no array), so the time should be a pass over the file plus the Lua start.
-- Run: make bench (or ./mlsh bench/weights_bench.lua [N] [RUNS]).
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/bench/?.lua;" .. package.path
local timing = require "timing"

local layers = math.tointeger(tonumber(arg and arg[1])) or 4
local runs = math.tointeger(tonumber(arg and arg[2])) or 5
local bin = os.getenv("MLSH_BIN") or (home .. "/mlsh")
local q = timing.q

local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))
local path = string.format("%s/weights_%dx2048.mlpackage", dir, layers)
if not core.fs.exists(path) then
  local B = require("mlsh").builder
  local p = B.program { opset = "iOS16", precision = "fp16" }
  local f = p:func("main")
  local y = f:input("x", "fp32", { 1, 2048 })
  for i = 1, layers do y = B.layers.linear(f, y, { name = "fc" .. i, out = 2048 }) end
  f:output("y", y)
  p:save(path)
end

local function measure(cmd) return timing.measure(cmd, runs) end

local n = layers * 2048 * 2048
print(string.format("%d weights (%.1f MB fp16) in %d tensors", n, n * 2 / 1e6, layers))
print(string.format("%-34s %10s %10s", "command", "wall", "cpu"))
for _, c in ipairs({ { "lua5.4 -e ''", "lua5.4 -e ''" }, { "mlsh weights --no-stats", q(bin) .. " weights --no-stats " .. q(path) },
                     { "mlsh weights", q(bin) .. " weights " .. q(path) }, { "mlsh weights --json", q(bin) .. " weights --json " .. q(path) } }) do
  local wall, cpu = measure(c[2])
  print(string.format("%-34s %7.1f ms %7s ms", c[1], wall * 1000, cpu and string.format("%.1f", cpu * 1000) or "-"))
end
