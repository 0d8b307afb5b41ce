-- Benchmark: the ML program interpreter (`mlsh run`'s engine) on two programs built here with
-- mlsh.builder, fp32 weights from compress.randn:
--   * MobileNetV2-sized (inverted residual blocks, width 1.0) at 1x3x224x224 — target <= 60 ms
--   * BERT-base-sized encoder (12 layers, hidden 768, 12 heads, FFN 3072) at sequence 128 — target <= 1.5 s
-- Reports the best of N runs, the load time and the process's peak RSS. Threads: $MLSH_THREADS
-- (default: all cores). Run: make bench (or ./mlsh bench/interp_bench.lua [runs] [mobilenet|bert]).
local core = require "mlsh.core"
local home = require "mlsh.home"
local mlsh = require "mlsh"
local B = require "mlsh.builder"

local runs = tonumber(arg and arg[1]) or 5
local only = arg and arg[2]
local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))
local seed = 0

local function w(f, name, shape, std)
  seed = seed + 1
  return f:const(name, core.compress.randn(shape, { seed = seed, std = std or 0.05 }), { shape = shape })
end

local function conv(f, x, name, cin, cout, k, stride, groups, act)
  local y = f:op("conv", { x = x, weight = w(f, name .. "_w", { cout, cin // groups, k, k }, math.sqrt(2 / (cin // groups * k * k))),
    bias = w(f, name .. "_b", { cout }, 0.01), strides = { stride, stride }, pad_type = "same", groups = groups })
  if act then y = f:op("relu6", { x = y }) end
  return y
end

local function mobilenet(path)
  local p = B.program { opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 3, 224, 224 })
  local y = conv(f, x, "stem", 3, 32, 3, 2, 1, true)
  local cin, k = 32, 0
  for _, b in ipairs({ { 1, 16, 1, 1 }, { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 }, { 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 } }) do
    local t, c, n, s = b[1], b[2], b[3], b[4]
    for i = 1, n do
      k = k + 1
      local stride = i == 1 and s or 1
      local h = cin * t
      local z = y
      if t ~= 1 then z = conv(f, z, "b" .. k .. "_expand", cin, h, 1, 1, 1, true) end
      z = conv(f, z, "b" .. k .. "_dw", h, h, 3, stride, h, true)
      z = conv(f, z, "b" .. k .. "_project", h, c, 1, 1, 1, false)
      if stride == 1 and cin == c then z = f:op("add", { x = y, y = z }) end
      y, cin = z, c
    end
  end
  y = conv(f, y, "head", cin, 1280, 1, 1, 1, true)
  y = f:op("reduce_mean", { x = y, axes = { 2, 3 }, keep_dims = false })
  y = f:op("linear", { x = y, weight = w(f, "fc_w", { 1000, 1280 }), bias = w(f, "fc_b", { 1000 }) })
  f:output("logits", y)
  p:save(path)
end

local function bert(path)
  local S, H, NH, FF, L = 128, 768, 12, 3072, 12
  local p = B.program { opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, S, H })
  local function lin(z, name, i, o) return f:op("linear", { x = z, weight = w(f, name .. "_w", { o, i }, 0.02), bias = w(f, name .. "_b", { o }, 0.01) }) end
  local function ln(z, name)
    return f:op("layer_norm", { x = z, axes = { -1 }, gamma = w(f, name .. "_g", { H }, 0.01), beta = w(f, name .. "_b", { H }, 0.01), epsilon = 1e-5 })
  end
  local function heads(z) return f:op("transpose", { x = f:op("reshape", { x = z, shape = { 1, S, NH, H // NH } }), perm = { 0, 2, 1, 3 } }) end
  for l = 1, L do
    local n = "l" .. l
    local q, k, v = heads(lin(x, n .. "_q", H, H)), heads(lin(x, n .. "_k", H, H)), heads(lin(x, n .. "_v", H, H))
    local s = f:op("mul", { x = f:op("matmul", { x = q, y = k, transpose_y = true }), y = 1 / math.sqrt(H // NH) })
    local a = f:op("matmul", { x = f:op("softmax", { x = s, axis = -1 }), y = v })
    a = f:op("reshape", { x = f:op("transpose", { x = a, perm = { 0, 2, 1, 3 } }), shape = { 1, S, H } })
    x = ln(f:op("add", { x = x, y = lin(a, n .. "_o", H, H) }), n .. "_ln1")
    local h = f:op("gelu", { x = lin(x, n .. "_ff1", H, FF), mode = "EXACT" })
    x = ln(f:op("add", { x = x, y = lin(h, n .. "_ff2", FF, H) }), n .. "_ln2")
  end
  f:output("y", x)
  p:save(path)
end

local function peak_rss_mb()
  local fh = io.open("/proc/self/status")
  if not fh then return 0 end
  local s = fh:read("a")
  fh:close()
  return (tonumber(s:match("VmHWM:%s*(%d+)")) or 0) / 1024
end

local function bench(name, build, target)
  local path = dir .. "/" .. name .. ".mlpackage"
  local t0 = core.compress.clock()
  if not io.open(path .. "/Manifest.json") then build(path) end
  local t1 = core.compress.clock()
  local m = mlsh.load(path)
  local run = require "mlsh.run"
  local prog, ins = run.prepare(m, nil, { random = 1 })
  local t2 = core.compress.clock()
  local best, cpu = math.huge, math.huge
  for _ = 1, runs do
    local c0 = os.clock()
    local outs, info = prog:run(ins)
    assert(outs, info)
    best, cpu = math.min(best, info.seconds), math.min(cpu, os.clock() - c0)
  end
  local la = io.open("/proc/loadavg")
  local load = la and la:read("l"):match("^(%S+)") or "?"
  if la then la:close() end
  -- wall time is what the target is about; CPU time (all threads) shows the work when the
  -- machine is shared (load average printed: above the core count, wall time includes waiting)
  print(string.format("%-10s build %.1f s, load %.2f s, best of %d: wall %.1f ms, CPU %.1f ms (target %d ms wall, %s), "
    .. "peak RSS %.0f MiB, threads %d, load average %s",
    name, t1 - t0, t2 - t1, runs, best * 1000, cpu * 1000, target, best * 1000 <= target and "met" or "missed", peak_rss_mb(),
    core.compress.threads(), load))
  m:close()
end

if not only or only == "mobilenet" then bench("mobilenet", mobilenet, 60) end
if not only or only == "bert" then bench("bert", bert, 1500) end
