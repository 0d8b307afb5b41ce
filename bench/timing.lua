-- bench/timing.lua — what the command-timing benches share: shell quoting and the median wall
-- and CPU time of a command over several runs.
--   local timing = require "timing"   (package.path gets home .. "/bench/?.lua")
--   timing.q(s) -> s quoted for sh ; timing.measure(cmd, runs) -> wall_s, cpu_s | nil
--   timing.linear_stack(path, layers, d) -> path: an iOS18 fp16 ML program of `layers` d x d
--     linear weights (no bias; Gaussian, std 0.02, seed = layer index), written unless it exists
local core = require "mlsh.core"

local M = {}
local clock = core.compress.clock

function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local q = M.q

-- Median wall and CPU (user + system) seconds of RUNS runs of cmd, as bash's `time` reports them
-- (millisecond resolution; without bash the CPU column is nil). On a shared machine the CPU time
-- is the figure to compare: the wall time also holds the wait for a core.
local has_time = core.fs.exists("/bin/bash") ~= nil
function M.measure(cmd, runs)
  local walls, cpus = {}, {}
  for i = 1, runs do
    if has_time then
      local script = "TIMEFORMAT='MLSH_TIME %3R %3U %3S'; time " .. cmd .. " >/dev/null 2>/dev/null"
      local p = io.popen("/bin/bash -c " .. q(script) .. " 2>&1")
      local out = p:read("a")
      p:close()
      local e, u, s = out:match("MLSH_TIME ([%d.]+) ([%d.]+) ([%d.]+)")
      assert(e, "failed: " .. cmd .. "\n" .. out)
      walls[i], cpus[i] = tonumber(e), tonumber(u) + tonumber(s)
    else
      local t0 = clock()
      assert(os.execute(cmd .. " >/dev/null 2>&1"), "failed: " .. cmd)
      walls[i] = clock() - t0
    end
  end
  table.sort(walls)
  table.sort(cpus)
  return walls[(runs + 1) // 2], cpus[(runs + 1) // 2]
end

function M.linear_stack(path, layers, d)
  if core.fs.exists(path) then return path end
  local B = require("mlsh").builder
  local p = B.program { opset = "iOS18", precision = "fp16" }
  local f = p:func("main")
  local y = f:input("x", "fp32", { 1, d })
  for i = 1, layers do
    y = B.layers.linear(f, y, { name = "fc" .. i, out = d, bias = false,
      weight = core.compress.randn({ d, d }, { seed = i, std = 0.02, weight_dtype = "fp16" }) })
  end
  f:output("y", y)
  p:save(path)
  return path
end

return M
