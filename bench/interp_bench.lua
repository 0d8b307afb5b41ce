-- Benchmark: the ML program interpreter (`mlsh run`'s engine) on two programs built here with
-- mlsh.builder, fp32 weights from compress.randn:
--   * MobileNetV2-sized (inverted residual blocks, width 1.0) at 1x3x224x224 — target <= 60 ms
--   * BERT-base-sized encoder (12 layers, hidden 768, 12 heads, FFN 3072) at sequence 128 — target <= 1.5 s
-- Reports the best of N runs, the load time and the process's peak RSS. Threads: $MLSH_THREADS
-- (default: all cores). Run: make bench (or ./mlsh bench/interp_bench.lua [runs] [mobilenet|bert]).
-- Anchor: the same architectures exported to ONNX (tests/support/onnx_builder.lua) timed on ONNX
-- Runtime's CPU provider through the npm package onnxruntime-node, found in $ORT_NODE_DIR (default
-- /tmp/ortbench/node_modules/onnxruntime-node; install with `npm install --ignore-scripts
-- onnxruntime-node` in /tmp/ortbench). Skipped cleanly when node or the package is absent.
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

-- ---- ONNX twins (same shapes; weights from the same generator) ----
local function onnx_builder()
  package.path = home .. "/tests/support/?.lua;" .. package.path
  return require "onnx_builder"
end

local function ort_init(b, name, shape, std)
  seed = seed + 1
  b:init(name, "FLOAT", shape, { raw = core.compress.randn(shape, { seed = seed, std = std or 0.05 }):encode("fp32") })
  return name
end

local function mobilenet_onnx(path)
  local OB = onnx_builder()
  local b = OB.model { opset = 17 }
  b:input("x", "FLOAT", { 1, 3, 224, 224 })
  local k = 0
  local function oconv(x, name, cin, cout, ks, stride, groups, act)
    local wn = ort_init(b, name .. "_w", { cout, cin // groups, ks, ks })
    local bias = ort_init(b, name .. "_b", { cout }, 0.01)
    local p = (ks - 1) // 2
    b:node("Conv", { x, wn, bias }, { name .. "_y" }, { strides = { stride, stride }, pads = { p, p, p, p }, group = groups })
    if not act then return name .. "_y" end
    b:node("Clip", { name .. "_y", "zero", "six" }, { name .. "_a" })
    return name .. "_a"
  end
  b:const("zero", "FLOAT", {}, { 0 })
  b:const("six", "FLOAT", {}, { 6 })
  local y = oconv("x", "stem", 3, 32, 3, 2, 1, true)
  local cin = 32
  for _, blk in ipairs({ { 1, 16, 1, 1 }, { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 }, { 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 } }) do
    local t, c, n, s = blk[1], blk[2], blk[3], blk[4]
    for i = 1, n do
      k = k + 1
      local stride, h, z = i == 1 and s or 1, cin * t, y
      if t ~= 1 then z = oconv(z, "b" .. k .. "_expand", cin, h, 1, 1, 1, true) end
      z = oconv(z, "b" .. k .. "_dw", h, h, 3, stride, h, true)
      z = oconv(z, "b" .. k .. "_project", h, c, 1, 1, 1, false)
      if stride == 1 and cin == c then b:node("Add", { y, z }, { "b" .. k .. "_sum" }) z = "b" .. k .. "_sum" end
      y, cin = z, c
    end
  end
  y = oconv(y, "head", cin, 1280, 1, 1, 1, true)
  b:node("GlobalAveragePool", { y }, { "gap" })
  b:node("Flatten", { "gap" }, { "flat" })
  b:node("Gemm", { "flat", ort_init(b, "fc_w", { 1000, 1280 }), ort_init(b, "fc_b", { 1000 }) }, { "logits" }, { transB = 1 })
  b:output("logits", "FLOAT", { 1, 1000 })
  b:save(path)
end

local function bert_onnx(path)
  local OB = onnx_builder()
  local S, H, NH, FF, L = 128, 768, 12, 3072, 12
  local b = OB.model { opset = 17 }
  b:input("x", "FLOAT", { 1, S, H })
  b:const("heads_shape", "INT64", { 4 }, { 1, S, NH, H // NH })
  b:const("flat_shape", "INT64", { 3 }, { 1, S, H })
  b:const("scale", "FLOAT", {}, { 1 / math.sqrt(H // NH) })
  b:const("half", "FLOAT", {}, { 0.5 })
  b:const("one", "FLOAT", {}, { 1 })
  b:const("rsqrt2", "FLOAT", {}, { 1 / math.sqrt(2) })
  local x = "x"
  local function lin(z, name, i, o)
    b:node("MatMul", { z, ort_init(b, name .. "_wt", { i, o }, 0.02) }, { name .. "_mm" })
    b:node("Add", { name .. "_mm", ort_init(b, name .. "_b", { o }, 0.01) }, { name .. "_y" })
    return name .. "_y"
  end
  local function heads(z, name, perm)
    b:node("Reshape", { z, "heads_shape" }, { name .. "_r" })
    b:node("Transpose", { name .. "_r" }, { name .. "_t" }, { perm = perm })
    return name .. "_t"
  end
  for l = 1, L do
    local n = "l" .. l
    local q = heads(lin(x, n .. "_q", H, H), n .. "_qh", { 0, 2, 1, 3 })
    local k = heads(lin(x, n .. "_k", H, H), n .. "_kh", { 0, 2, 3, 1 })
    local v = heads(lin(x, n .. "_v", H, H), n .. "_vh", { 0, 2, 1, 3 })
    b:node("MatMul", { q, k }, { n .. "_s" })
    b:node("Mul", { n .. "_s", "scale" }, { n .. "_ss" })
    b:node("Softmax", { n .. "_ss" }, { n .. "_p" }, { axis = -1 })
    b:node("MatMul", { n .. "_p", v }, { n .. "_a" })
    b:node("Transpose", { n .. "_a" }, { n .. "_at" }, { perm = { 0, 2, 1, 3 } })
    b:node("Reshape", { n .. "_at", "flat_shape" }, { n .. "_af" })
    b:node("Add", { x, lin(n .. "_af", n .. "_o", H, H) }, { n .. "_r1" })
    b:node("LayerNormalization", { n .. "_r1", ort_init(b, n .. "_g1", { H }, 0.01), ort_init(b, n .. "_b1", { H }, 0.01) }, { n .. "_x1" }, { axis = -1, epsilon = 1e-5 })
    local h = lin(n .. "_x1", n .. "_ff1", H, FF)
    b:node("Mul", { h, "rsqrt2" }, { n .. "_gs" })
    b:node("Erf", { n .. "_gs" }, { n .. "_ge" })
    b:node("Add", { n .. "_ge", "one" }, { n .. "_g1p" })
    b:node("Mul", { h, n .. "_g1p" }, { n .. "_gm" })
    b:node("Mul", { n .. "_gm", "half" }, { n .. "_gelu" })
    b:node("Add", { n .. "_x1", lin(n .. "_gelu", n .. "_ff2", FF, H) }, { n .. "_r2" })
    b:node("LayerNormalization", { n .. "_r2", ort_init(b, n .. "_g2", { H }, 0.01), ort_init(b, n .. "_b2", { H }, 0.01) }, { n .. "_x2" }, { axis = -1, epsilon = 1e-5 })
    x = n .. "_x2"
  end
  b:node("Identity", { x }, { "y" })
  b:output("y", "FLOAT", { 1, S, H })
  b:save(path)
end

-- Best ms of `runs` ORT runs, or nil and the reason it was skipped.
local function ort_time(name, build, shape)
  local moddir = os.getenv("ORT_NODE_DIR") or "/tmp/ortbench/node_modules/onnxruntime-node"
  if not io.open(moddir .. "/package.json") then return nil, "onnxruntime-node not found in " .. moddir end
  local path = dir .. "/" .. name .. ".onnx"
  if not io.open(path) then build(path) end
  local p = io.popen(string.format("node %s/bench/ort_anchor.js '%s' '%s' x %s %d %d 2>&1", home, moddir, path, table.concat(shape, "x"), runs,
    core.compress.threads()))
  if not p then return nil, "cannot start node" end
  local out = p:read("a")
  p:close()
  local ms = tonumber(out:match("best_ms=([%d%.]+)"))
  if ms then return ms, nil, tonumber(out:match("cpu_ms=([%d%.]+)")) end
  return nil, out:match("skip=([^\n]*)") or ("node: " .. out:sub(1, 200))
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
  return { best * 1000, cpu * 1000 }
end

-- ours = { wall ms, CPU ms }; ORT's CPU time includes its threads' spin-waiting
local function anchor(name, ours, build, shape)
  seed = 0
  local ms, why, cpu = ort_time(name, build, shape)
  if not ms then print(string.format("%-10s ORT anchor skipped: %s", name, why)) return end
  print(string.format("%-10s ORT CPU provider (onnxruntime-node, " .. core.compress.threads() .. " threads) best of %d: wall %.1f ms, CPU %s ms; mlsh/ORT wall %.2f, CPU %s",
    name, runs, ms, cpu and string.format("%.1f", cpu) or "?", ours[1] / ms, cpu and string.format("%.2f", ours[2] / cpu) or "?"))
end

if not only or only == "mobilenet" then
  seed = 0
  anchor("mobilenet", bench("mobilenet", mobilenet, 60), mobilenet_onnx, { 1, 3, 224, 224 })
end
if not only or only == "bert" then
  seed = 0
  anchor("bert", bench("bert", bert, 1500), bert_onnx, { 1, 128, 768 })
end
