-- interp_parallel_spec.lua — the elementwise and row kernels that split their work over the
-- worker pool (activations incl. gelu's three modes, clip, unary math, broadcast binary ops,
-- softmax along the last and a strided axis, layer_norm, transpose) at sizes large enough to be
-- split. Values are checked against naive loops written here, and a run with MLSH_THREADS=2 must
-- write byte-identical outputs to a run with MLSH_THREADS=1.
local IH = require "interp_helpers"
local F = require "fixtures"
local core = require "mlsh.core"

local values, tensor, build, run, close = IH.values, IH.tensor, IH.build, IH.run, IH.close
local N, C, H, W = 1, 8, 64, 64
local SHAPE, NX = { N, C, H, W }, N * C * H * W

local R = require "ref_math"
local erf, map = R.erf, R.map

local GAMMA, BETA = values(W, 71), values(W, 72)

-- every op on one [1, 8, 64, 64] input (scaled by 3 so gelu/softmax see a real range)
local function model()
  return build("iOS17", function(f)
    local x0 = f:input("x", "fp32", SHAPE)
    local x = f:op("mul", { x = x0, y = 3.0 })
    f:output("relu", f:op("relu", { x = x }))
    f:output("relu6", f:op("relu6", { x = f:op("mul", { x = x, y = 3.0 }) }))
    f:output("clip", f:op("clip", { x = x, alpha = -0.5, beta = 0.75 }))
    f:output("gelu", f:op("gelu", { x = x }))
    f:output("gelu_tanh", f:op("gelu", { x = x, mode = "TANH_APPROXIMATION" }))
    f:output("gelu_sig", f:op("gelu", { x = x, mode = "SIGMOID_APPROXIMATION" }))
    f:output("sigmoid", f:op("sigmoid", { x = x }))
    f:output("exp", f:op("exp", { x = x }))
    f:output("addrow", f:op("add", { x = x, y = f:const("r", core.array.new(BETA), { shape = { W } }) }))
    f:output("sm_last", f:op("softmax", { x = x, axis = -1 }))
    f:output("sm_chan", f:op("softmax", { x = x, axis = 1 }))
    f:output("ln", f:op("layer_norm", { x = x, axes = { -1 }, epsilon = 1e-5,
      gamma = f:const("g", core.array.new(GAMMA), { shape = { W } }), beta = f:const("b", core.array.new(BETA), { shape = { W } }) }))
    f:output("tr", f:op("transpose", { x = x, perm = { 0, 2, 3, 1 } }))
  end)
end

local function softmax(X, axis_len, inner)
  local want, outer = {}, #X // (axis_len * inner)
  for a = 0, outer - 1 do
    for b = 0, inner - 1 do
      local m, s = -math.huge, 0
      for i = 0, axis_len - 1 do m = math.max(m, X[(a * axis_len + i) * inner + b + 1]) end
      for i = 0, axis_len - 1 do s = s + math.exp(X[(a * axis_len + i) * inner + b + 1] - m) end
      for i = 0, axis_len - 1 do
        local k = (a * axis_len + i) * inner + b + 1
        want[k] = math.exp(X[k] - m) / s
      end
    end
  end
  return want
end

local function layer_norm(X)
  local want = {}
  for r = 0, #X // W - 1 do
    local s, ss = 0, 0
    for i = 1, W do s = s + X[r * W + i] end
    local mean = s / W
    for i = 1, W do ss = ss + (X[r * W + i] - mean) ^ 2 end
    local inv = 1 / math.sqrt(ss / W + 1e-5)
    for i = 1, W do want[r * W + i] = (X[r * W + i] - mean) * inv * GAMMA[i] + BETA[i] end
  end
  return want
end

describe("parallel elementwise and row kernels", function()
  local path, X0 = model(), values(NX, 70)
  local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end
  local X = map(X0, function(v) return f32(3 * f32(v)) end) -- what the fp32 mul gives

  it("match naive loops", function()
    local outs = run(path, { x = tensor(X0, SHAPE) })
    close(outs.relu, map(X, function(v) return math.max(v, 0) end), 1e-6)
    close(outs.relu6, map(X, function(v) return math.min(math.max(3 * v, 0), 6) end), 1e-6)
    close(outs.clip, map(X, function(v) return math.min(math.max(v, -0.5), 0.75) end), 1e-6)
    close(outs.gelu, map(X, function(v) return 0.5 * v * (1 + erf(v / math.sqrt(2))) end), 1e-5)
    close(outs.gelu_tanh, map(X, function(v)
      local t = math.sqrt(2 / math.pi) * (v + 0.044715 * v ^ 3)
      return 0.5 * v * (1 + (math.exp(2 * t) - 1) / (math.exp(2 * t) + 1))
    end), 1e-5)
    close(outs.gelu_sig, map(X, function(v) return v / (1 + math.exp(-1.702 * v)) end), 1e-5)
    close(outs.sigmoid, map(X, function(v) return 1 / (1 + math.exp(-v)) end), 1e-6)
    close(outs.exp, map(X, math.exp), 1e-6)
    local addrow = {}
    for i = 1, NX do addrow[i] = X[i] + BETA[(i - 1) % W + 1] end
    close(outs.addrow, addrow, 1e-6)
    close(outs.sm_last, softmax(X, W, 1), 1e-5)
    close(outs.sm_chan, softmax(X, C, H * W), 1e-5)
    close(outs.ln, layer_norm(X), 1e-4)
    local tr = {}
    for c = 0, C - 1 do
      for h = 0, H - 1 do
        for w = 0, W - 1 do tr[(h * W + w) * C + c + 1] = X[(c * H + h) * W + w + 1] end
      end
    end
    close(outs.tr, tr, 0)
    assert.are.same({ 1, H, W, C }, outs.tr:shape())
  end)

  it("write the same bytes with 1 and 2 threads", function()
    local dirs = {}
    for _, t in ipairs({ 1, 2 }) do
      dirs[t] = string.format("%s/par%d", IH.dir, t)
      local ok = os.execute(string.format("MLSH_THREADS=%d %s run %s --random 7 -o %s >/dev/null", t,
        os.getenv("MLSH_BIN") or "./mlsh", F.q(path), F.q(dirs[t])))
      assert.is_true(ok == true or ok == 0, "mlsh run with " .. t .. " threads failed")
    end
    for _, name in ipairs({ "relu", "relu6", "clip", "gelu", "gelu_tanh", "gelu_sig", "sigmoid", "exp", "addrow", "sm_last",
      "sm_chan", "ln", "tr" }) do
      local a, b = F.read(dirs[1] .. "/" .. name .. ".npy"), F.read(dirs[2] .. "/" .. name .. ".npy")
      assert.is_true(a ~= nil and #a > NX * 4, name)
      assert.is_true(a == b, name .. " differs between 1 and 2 threads")
    end
  end)
end)

-- An activation whose input dies at it rewrites that input's buffer; it must not when the input
-- has another reader, is a program output, or is kept by a trace.
describe("activation in place after linear", function()
  local M, K, Nn = 4, 6, 40
  local Wt = values(Nn * K, 81)
  local Xv = values(M * K, 82)
  local lin = {}
  for i = 0, M - 1 do
    for j = 0, Nn - 1 do
      local acc = 0
      for k = 0, K - 1 do acc = acc + Xv[i * K + k + 1] * Wt[j * K + k + 1] end
      lin[#lin + 1] = 3 * acc
    end
  end
  local r6 = map(lin, function(v) return math.min(math.max(v, 0), 6) end)
  local function graph(f)
    local y = f:op("linear", { x = f:input("x", "fp32", { M, K }), weight = f:const("w", core.array.new(map(Wt, function(v) return 3 * v end)),
      { shape = { Nn, K } }) })
    return y, f:op("relu6", { x = y })
  end

  it("sole reader: the result is right", function()
    local path = build("iOS17", function(f) local _, a = graph(f) f:output("a", a) end)
    close(run(path, { x = tensor(Xv, { M, K }) }).a, r6, 1e-5)
  end)

  it("another reader after the activation still sees the pre-activation values", function()
    local path = build("iOS17", function(f)
      local y, a = graph(f)
      f:output("a", a)
      f:output("s", f:op("add", { x = y, y = 0.0 }))
    end)
    local outs = run(path, { x = tensor(Xv, { M, K }) })
    close(outs.a, r6, 1e-5)
    close(outs.s, lin, 1e-5)
  end)

  it("a program output is not overwritten", function()
    local path = build("iOS17", function(f)
      local y, a = graph(f)
      f:output("y", y)
      f:output("a", a)
    end)
    local outs = run(path, { x = tensor(Xv, { M, K }) })
    close(outs.y, lin, 1e-5)
    close(outs.a, r6, 1e-5)
  end)

  it("a kept trace shows the linear's own output", function()
    local mlsh = require "mlsh"
    local path = build("iOS17", function(f) local _, a = graph(f) f:output("a", a) end)
    local m = mlsh.load(path)
    local outs, info = m:run({ x = tensor(Xv, { M, K }) }, { precision = "fp32", keep = true })
    m:close()
    close(outs.a, r6, 1e-5)
    local seen = {}
    for _, e in ipairs(info.trace) do seen[e.type] = e.outputs[1].tensor end
    close(seen.linear, lin, 1e-5)
    close(seen.relu6, r6, 1e-5)
  end)

  it("fp16 programs round the in-place result", function()
    local function is_half(v) -- a normal or subnormal fp16 value: a multiple of its fp16 step
      if v == 0 then return true end
      local e = math.max(math.floor(math.log(math.abs(v), 2)), -14)
      local q = math.abs(v) / 2 ^ (e - 10)
      return q == math.floor(q)
    end
    local path = build("iOS17", function(f) local y = graph(f) f:output("a", f:op("sigmoid", { x = y })) end)
    local a = run(path, { x = tensor(Xv, { M, K }) }, { precision = "fp16" }).a:array()
    for i = 1, #a do assert.is_true(is_half(a[i]), string.format("element %d = %.9g is not an fp16 value", i, a[i])) end
  end)
end)

-- relu6 and clip are split only above IT_BIG_MAP (2^20) values: one tensor just past it
describe("memory-bound maps on a large tensor", function()
  local S = { 1, 16, 256, 257 }
  local n = 16 * 256 * 257
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", S)
    f:output("r6", f:op("relu6", { x = f:op("mul", { x = x, y = 8.0 }) }))
    f:output("cl", f:op("clip", { x = x, alpha = -0.25, beta = 0.5 }))
  end)

  it("match naive loops and write the same bytes with 1 and 2 threads", function()
    local X = values(n, 90)
    local outs = run(path, { x = tensor(X, S) })
    close(outs.r6, map(X, function(v) return math.min(math.max(8 * v, 0), 6) end), 1e-6)
    close(outs.cl, map(X, function(v) return math.min(math.max(v, -0.25), 0.5) end), 1e-6)
    local dirs = {}
    for _, t in ipairs({ 1, 2 }) do
      dirs[t] = string.format("%s/big%d", IH.dir, t)
      local ok = os.execute(string.format("MLSH_THREADS=%d %s run %s --random 5 -o %s >/dev/null", t,
        os.getenv("MLSH_BIN") or "./mlsh", F.q(path), F.q(dirs[t])))
      assert.is_true(ok == true or ok == 0, "mlsh run with " .. t .. " threads failed")
    end
    for _, name in ipairs({ "r6", "cl" }) do
      local a, b = F.read(dirs[1] .. "/" .. name .. ".npy"), F.read(dirs[2] .. "/" .. name .. ".npy")
      assert.is_true(a ~= nil and #a > n * 4 and a == b, name .. " differs between 1 and 2 threads")
    end
  end)
end)
