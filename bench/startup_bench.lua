-- Benchmark: what a start costs. `mlsh --version` should cost about one Lua start (`lua5.4 -e ''`)
-- and `mlsh info MODEL` at most two: modules load when first used (lua/mlsh/init.lua's FIELDS,
-- commands found by name), so a start reads only what its command needs.
-- Run: make bench (or ./mlsh bench/startup_bench.lua [RUNS]). Prints the median wall time of RUNS
-- runs (default 40) of each command, its ratio to the bare Lua start, and the Lua files each loads.
local core = require "mlsh.core"
local home = require "mlsh.home"

local runs = math.tointeger(tonumber(arg and arg[1])) or 40
local bin = os.getenv("MLSH_BIN") or (home .. "/mlsh")
local clock = core.compress.clock

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

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

local function median_time(cmd)
  local t = {}
  for i = 1, runs do
    local t0 = clock()
    local ok = os.execute(cmd .. " >/dev/null 2>&1")
    t[i] = clock() - t0
    assert(ok, "failed: " .. cmd)
  end
  table.sort(t)
  return t[(runs + 1) // 2]
end

-- Lua files a command line loads: the mlsh binary runs `-e` after the command-line module, so
-- list package.loaded from inside (the count for --version is that of -e '' minus nothing).
local function loaded(code)
  local p = io.popen(q(bin) .. " -e " .. q(code .. "; local n = 0 for k in pairs(package.loaded) do "
    .. "if k:match('^mlsh') and not k:match('^mlsh%.core') and k ~= 'mlsh.home' then n = n + 1 end end print(n)"))
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

local base = median_time("lua5.4 -e ''")
local rows = {
  { "lua5.4 -e ''", base, "-" },
  { "mlsh --version", median_time(q(bin) .. " --version"), loaded("") },
  { "mlsh info MODEL", median_time(q(bin) .. " info " .. q(model)),
    loaded("require('mlsh.cmd.info').run({" .. string.format("%q", model) .. "})") },
  { "mlsh info --json MODEL", median_time(q(bin) .. " info --json " .. q(model)), "-" },
}
print(string.format("%-24s %10s %8s %12s", "command", "median", "x lua", "mlsh .lua"))
for _, r in ipairs(rows) do
  print(string.format("%-24s %8.1f ms %7.2fx %12s", r[1], r[2] * 1000, r[2] / base, tostring(r[3])))
end
