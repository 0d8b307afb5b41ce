-- Benchmark: what a start costs. `mlsh --version` should cost about one Lua start (`lua5.4 -e ''`)
-- and `mlsh info MODEL` at most two: modules load when first used (lua/mlsh/init.lua's FIELDS,
-- commands found by name), so a start reads only what its command needs.
-- Run: make bench (or ./mlsh bench/startup_bench.lua [RUNS]). Prints the median wall time of RUNS
-- runs (default 40) of each command, its ratio to the bare Lua start, and the Lua files each loads.
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/bench/?.lua;" .. package.path
local timing = require "timing"

local runs = math.tointeger(tonumber(arg and arg[1])) or 40
local bin = os.getenv("MLSH_BIN") or (home .. "/mlsh")

local q = timing.q

-- A small model to ask about: the builder writes it (no examples needed).
local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))
local model = dir .. "/startup.mlpackage"
do
  local B = require("mlsh").builder
  local p = B.program { opset = "iOS16", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 16 })
  f:output("y", B.layers.linear(f, x, { name = "fc", out = 8 }))
  p:save(model)
end

local function measure(cmd) return timing.measure(cmd, runs) end

-- Lua files a command line loads: the mlsh binary runs `-e` after the command-line module, so
-- list package.loaded from inside (the count for --version is that of -e '' minus nothing).
local function loaded(code)
  local p = io.popen(q(bin) .. " -e " .. q(code .. "; local n = 0 for k in pairs(package.loaded) do "
    .. "if k:match('^mlsh') and not k:match('^mlsh%.core') and k ~= 'mlsh.home' then n = n + 1 end end "
    .. "io.write('\\nLUA_FILES=', n, '\\n')"))
  local n = tonumber(p:read("a"):match("LUA_FILES=(%d+)"))
  p:close()
  return n
end

local base_wall, base_cpu = measure("lua5.4 -e ''")
local rows = {
  { "lua5.4 -e ''", "lua5.4 -e ''", "-" },
  { "mlsh --version", q(bin) .. " --version", loaded("") },
  { "mlsh info MODEL", q(bin) .. " info " .. q(model),
    loaded("require('mlsh.cmd.info').run({" .. string.format("%q", model) .. "})") },
  { "mlsh info --json MODEL", q(bin) .. " info --json " .. q(model), "-" },
  { "mlsh check MODEL", q(bin) .. " check " .. q(model),
    loaded("require('mlsh.cmd.check').run({" .. string.format("%q", model) .. "})") },
}
print(string.format("%-24s %10s %10s %8s %10s", "command", "wall", "cpu", "cpu x lua", "mlsh .lua"))
for _, r in ipairs(rows) do
  local wall, cpu = measure(r[2])
  print(string.format("%-24s %7.1f ms %7s ms %8s %10s", r[1], wall * 1000, cpu and string.format("%.1f", cpu * 1000) or "-",
    cpu and base_cpu and base_cpu > 0 and string.format("%.2fx", cpu / base_cpu) or "-", tostring(r[3])))
end
print(string.format("(lua5.4 -e '': wall %.1f ms)", base_wall * 1000))
