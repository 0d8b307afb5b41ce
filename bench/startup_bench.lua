-- Benchmark: what a start costs. `mlsh --version` should cost about one Lua start (`lua5.4 -e ''`)
-- and `mlsh info MODEL` at most two: modules load when first used (lua/mlsh/init.lua's FIELDS,
-- commands found by name), readline and libzip are loaded by the C core when first needed, and
-- the Linux binary links Lua and protobuf-c statically (Makefile; still a PIE), and the mlsh
-- program loads the Lua modules from the bytecode `make` precompiles while it is fresh
-- (repl/bytecode.h).
-- Run: make bench (or ./mlsh bench/startup_bench.lua [RUNS]). For each command: the CPU time of
-- one run (task-clock from `perf stat`, the runs of all commands interleaved, median and lower
-- quartile), its ratio to the bare Lua start, and the mlsh Lua files it loads. Without perf: the
-- median wall and CPU time from bash's `time` (millisecond resolution: too coarse for this).
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

local rows = {
  { "lua5.4 -e ''", "lua5.4 -e ''", "-" },
  { "mlsh --version", q(bin) .. " --version", loaded("") },
  { "mlsh info MODEL", q(bin) .. " info " .. q(model),
    loaded("require('mlsh.cmd.info').run({" .. string.format("%q", model) .. "})") },
  { "mlsh info --json MODEL", q(bin) .. " info --json " .. q(model), "-" },
  { "mlsh check MODEL", q(bin) .. " check " .. q(model),
    loaded("require('mlsh.cmd.check').run({" .. string.format("%q", model) .. "})") },
}

-- CPU milliseconds of one run of cmd (perf's task-clock), or nil when perf cannot count.
local function task_clock(cmd)
  local p = io.popen("perf stat -x, -e task-clock " .. cmd .. " 2>&1 >/dev/null")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("([%d.]+),msec,task%-clock"))
end

local function quantile(t, f)
  table.sort(t)
  return t[math.max(1, math.floor(#t * f + 0.5))]
end

if task_clock("true") then
  local ms = {}
  for i = 1, #rows do ms[i] = {} end
  for _ = 1, runs do
    for i, r in ipairs(rows) do ms[i][#ms[i] + 1] = assert(task_clock(r[2]), "failed: " .. r[2]) end
  end
  print(string.format("%-24s %12s %12s %10s %10s", "command", "cpu median", "cpu p25", "x lua", "mlsh .lua"))
  local base = quantile(ms[1], 0.5)
  for i, r in ipairs(rows) do
    local med, p25 = quantile(ms[i], 0.5), quantile(ms[i], 0.25)
    print(string.format("%-24s %9.2f ms %9.2f ms %9.2fx %10s", r[1], med, p25, med / base, tostring(r[3])))
  end
  print(string.format("(perf stat task-clock, %d interleaved runs of each)", runs))
  return
end

local base_wall, base_cpu = timing.measure("lua5.4 -e ''", runs)
print(string.format("%-24s %10s %10s %8s %10s", "command", "wall", "cpu", "cpu x lua", "mlsh .lua"))
for _, r in ipairs(rows) do
  local wall, cpu = timing.measure(r[2], runs)
  print(string.format("%-24s %7.1f ms %7s ms %8s %10s", r[1], wall * 1000, cpu and string.format("%.1f", cpu * 1000) or "-",
    cpu and base_cpu and base_cpu > 0 and string.format("%.2fx", cpu / base_cpu) or "-", tostring(r[3])))
end
print(string.format("(lua5.4 -e '': wall %.1f ms)", base_wall * 1000))
