-- "The repaired model computes the same thing", proven without the interpreter under test: a naive
-- reference evaluator written here (plain Lua loops over the ops the fixtures use, fp16 results
-- rounded through mlsh.Array's fp16 encoding) runs the original and the transformed model on the
-- same random inputs. Bars from issue 14: fp32-preserving transforms <= 1e-5 max relative error,
-- --fp16 >= 35 dB against the fp32 original, split parts chained = the original bit for bit.
local mlsh = require "mlsh"
local F = require "fixtures"
local SF = require "surgery_fixtures"

local A = mlsh.core.array

-- ---- the reference evaluator ----------------------------------------------------------------------------
local function count(shape) local n = 1 for _, d in ipairs(shape) do n = n * d end return n end
local function strides(shape)
  local s, acc = {}, 1
  for i = #shape, 1, -1 do s[i] = acc acc = acc * shape[i] end
  return s
end
local function T(shape, data) return { shape = shape, data = data } end
local function map(x, fn) local o = {} for i, v in ipairs(x.data) do o[i] = fn(v) end return T(x.shape, o) end

local function round16(t)
  local a = A.decode(A.new(t.data):encode("fp16"), "fp16", #t.data)
  return T(t.shape, a:totable())
end

local function permute(x, perm) -- perm 0-based
  local shape = {}
  for i, p in ipairs(perm) do shape[i] = x.shape[p + 1] end
  local st, out = strides(x.shape), {}
  local ost = strides(shape)
  for k = 0, count(shape) - 1 do
    local rem, src = k, 0
    for d = 1, #shape do
      local idx = rem // ost[d]
      rem = rem % ost[d]
      src = src + idx * st[perm[d] + 1]
    end
    out[k + 1] = x.data[src + 1]
  end
  return T(shape, out)
end

local function reshape(x, shape) return T(shape, x.data) end

-- y[..., o] = sum_i x[..., i] * w[o, i] + b[o]  (w: [O, I])
local function linear(x, w, b)
  local I = x.shape[#x.shape]
  local O = w.shape[1]
  local rows = count(x.shape) // I
  local out = {}
  for r = 0, rows - 1 do
    for o = 0, O - 1 do
      local s = 0.0
      for i = 0, I - 1 do s = s + x.data[r * I + i + 1] * w.data[o * I + i + 1] end
      out[r * O + o + 1] = s + (b and b.data[o + 1] or 0.0)
    end
  end
  local shape = {}
  for i = 1, #x.shape - 1 do shape[i] = x.shape[i] end
  shape[#shape + 1] = O
  return T(shape, out)
end

-- 1x1 conv, stride 1, NCHW: y[n, o, h, w] = sum_c x[n, c, h, w] * w[o, c] + b[o]
local function conv1x1(x, w, b)
  local N, C, H, W = table.unpack(x.shape)
  local O = w.shape[1]
  local out = {}
  for n = 0, N - 1 do
    for o = 0, O - 1 do
      for p = 0, H * W - 1 do
        local s = 0.0
        for c = 0, C - 1 do s = s + x.data[((n * C + c) * H * W) + p + 1] * w.data[o * C + c + 1] end
        out[((n * O + o) * H * W) + p + 1] = s + (b and b.data[o + 1] or 0.0)
      end
    end
  end
  return T({ N, O, H, W }, out)
end

local function broadcast_add(x, y)
  assert(#x.data % #y.data == 0)
  local out = {}
  for i, v in ipairs(x.data) do out[i] = v + y.data[(i - 1) % #y.data + 1] end
  return T(x.shape, out)
end

local function softmax_last(x)
  local n = x.shape[#x.shape]
  local out = {}
  for r = 0, #x.data // n - 1 do
    local m = -math.huge
    for i = 1, n do m = math.max(m, x.data[r * n + i]) end
    local s = 0.0
    for i = 1, n do s = s + math.exp(x.data[r * n + i] - m) end
    for i = 1, n do out[r * n + i] = math.exp(x.data[r * n + i] - m) / s end
  end
  return T(x.shape, out)
end

-- erf from the Chebyshev fit of erfc (Numerical Recipes erfcc, fractional error < 1.2e-7)
local function tanh(x) local e = math.exp(2 * x) return (e - 1) / (e + 1) end -- (math.tanh is a 5.3 compat extra)
local function erf(x)
  local t = 1 / (1 + 0.5 * math.abs(x))
  local y = 1 - t * math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 and y or -y
end

local function matmul(x, y, ty)
  -- x [B, M, K], y [B, K, N] (or [B, N, K] with ty)
  local B, M, K = table.unpack(x.shape)
  local N = ty and y.shape[2] or y.shape[3]
  local out = {}
  for b = 0, B - 1 do
    for m = 0, M - 1 do
      for n = 0, N - 1 do
        local s = 0.0
        for k = 0, K - 1 do
          local yv = ty and y.data[b * N * K + n * K + k + 1] or y.data[b * K * N + k * N + n + 1]
          s = s + x.data[b * M * K + m * K + k + 1] * yv
        end
        out[b * M * N + m * N + n + 1] = s
      end
    end
  end
  return T({ B, M, N }, out)
end

local OPS = {
  relu = function(a) return map(a.x, function(v) return v > 0 and v or 0.0 end) end,
  sigmoid = function(a) return map(a.x, function(v) return 1 / (1 + math.exp(-v)) end) end,
  identity = function(a) return a.x end,
  cast = function(a) return a.x end,
  linear = function(a) return linear(a.x, a.weight, a.bias) end,
  conv = function(a) return conv1x1(a.x, a.weight, a.bias) end,
  transpose = function(a) return permute(a.x, a.perm.data) end,
  expand_dims = function(a, out) return reshape(a.x, out.shape) end,
  squeeze = function(a, out) return reshape(a.x, out.shape) end,
  reshape = function(a, out) return reshape(a.x, out.shape) end,
  add = function(a) return broadcast_add(a.x, a.y) end,
  softmax = function(a) return softmax_last(a.x) end,
  matmul = function(a) return matmul(a.x, a.y, a.transpose_y and a.transpose_y.data[1]) end,
  gelu = function(a)
    local mode = a.mode and a.mode.data[1] or "EXACT"
    if mode == "TANH_APPROXIMATION" then
      return map(a.x, function(v) return 0.5 * v * (1 + tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ^ 3))) end)
    end
    return map(a.x, function(v) return 0.5 * v * (1 + erf(v / math.sqrt(2))) end)
  end,
}

local function const_value(m, op)
  local v = op:attr("val")
  local shape = op.outputs[1].shape
  if v == nil then
    for _, w in ipairs(m:weights()) do
      if w.name == op.outputs[1].name then return T(shape, w:values():totable()) end
    end
    error("no data for const " .. op.name)
  end
  if type(v) ~= "table" then v = { v } end
  return T(shape, v)
end

-- Evaluate a loaded model's main function on inputs {name = T}; returns {value name = T}.
local function evaluate(m, inputs)
  local env = {}
  for k, v in pairs(inputs) do env[k] = v end
  for _, op in ipairs(m:ops()) do
    local out = op.outputs[1]
    if op.type == "const" then
      env[out.name] = const_value(m, op)
    else
      local args = {}
      for _, i in ipairs(op:inputs()) do
        args[i.param] = i.name and assert(env[i.name], "undefined " .. i.name) or T(i.shape, { i.value })
      end
      local fn = assert(OPS[op.type], "reference evaluator has no " .. op.type)
      local r = fn(args, out)
      if out.dtype == "fp16" then r = round16(r) end
      env[out.name] = T(out.shape, r.data)
    end
  end
  return env
end

local function random_input(shape, seed)
  local data = {}
  local s = seed
  for i = 1, count(shape) do
    s = (s * 1103515245 + 12345) % 2147483648
    data[i] = (s / 2147483648) * 2 - 1
  end
  return T(shape, round16(T(shape, data)).data) -- exactly representable in fp16 and fp32
end

local function max_rel(a, b)
  local m, scale = 0, 0
  for i = 1, #a.data do scale = math.max(scale, math.abs(a.data[i])) end
  for i = 1, #a.data do m = math.max(m, math.abs(a.data[i] - b.data[i])) end
  return m / math.max(scale, 1e-30)
end

local function snr(ref, x)
  local s, n = 0, 0
  for i = 1, #ref.data do s = s + ref.data[i] ^ 2 n = n + (ref.data[i] - x.data[i]) ^ 2 end
  if n == 0 then return math.huge end
  return 10 * math.log(s / n, 10)
end

describe("surgery results compute what the original computes (reference evaluator)", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  local function fixed(src, args, dst)
    local _, err, code = F.run("fix " .. F.q(src) .. " -o " .. F.q(dst) .. " " .. args)
    assert.equal(0, code, err)
    return dst
  end

  it("the evaluator itself: linear by hand", function()
    local y = linear(T({ 1, 2 }, { 1, 2 }), T({ 2, 2 }, { 1, 0, 3, 4 }), T({ 2 }, { 0.5, 0 }))
    assert.same({ 1.5, 11 }, y.data)
    assert.same({ 1, 3, 2, 4 }, permute(T({ 2, 2 }, { 1, 2, 3, 4 }), { 1, 0 }).data)
    assert.near(0.8427007929, erf(1), 1e-6)
  end)

  it("--linear-to-conv: max relative error <= 1e-5", function()
    for _, rank in ipairs({ 3, 2 }) do
      local src = SF.linear3(dir .. "/l" .. rank .. ".mlpackage", rank)
      local dst = fixed(src, "--linear-to-conv", dir .. "/c" .. rank .. ".mlpackage")
      local x = random_input(rank == 3 and { 1, 5, 8 } or { 1, 8 }, 7)
      local a = evaluate(mlsh.load(src), { x = x }).y
      local b = evaluate(mlsh.load(dst), { x = x }).y
      assert.same(a.shape, b.shape)
      assert.is_true(max_rel(a, b) <= 1e-5, "max rel " .. max_rel(a, b))
    end
  end)

  it("--fp16: >= 35 dB against the fp32 original", function()
    local src = SF.mlp(dir .. "/mlp.mlpackage")
    local dst = fixed(src, "--fp16", dir .. "/mlp16.mlpackage")
    local x = random_input({ 1, 8 }, 3)
    local a = evaluate(mlsh.load(src), { x = x }).y
    local b = evaluate(mlsh.load(dst), { x = x }).y
    local db = snr(a, b)
    assert.is_true(db >= 35, "SNR " .. db)
    assert.is_true(db < 200, "the fp16 result should differ from fp32 somewhere (SNR " .. db .. ")")
  end)

  it("--mask-fill -1e4 and --fix-shape are fp32-preserving", function()
    local src = SF.attention_like(dir .. "/att.mlpackage")
    local dst = fixed(src, "--mask-fill -1e4", dir .. "/att2.mlpackage")
    local x = random_input({ 1, 4, 8 }, 11)
    local a = evaluate(mlsh.load(src), { x = x }).y
    local b = evaluate(mlsh.load(dst), { x = x }).y
    assert.is_true(max_rel(a, b) <= 1e-5)
    local flex = SF.flexible(dir .. "/flex.mlpackage")
    local fdst = fixed(flex, "--fix-shape x=1x16x8", dir .. "/flex2.mlpackage")
    local xi = random_input({ 1, 16, 8 }, 5)
    local yb = evaluate(mlsh.load(fdst), { x = xi }).y
    -- the original's reshape target comes from shape/gather/concat; by hand it is [1,16,2,4]
    assert.same({ 1, 16, 2, 4 }, yb.shape)
    for i, v in ipairs(xi.data) do assert.equal(v > 0 and v or 0.0, yb.data[i]) end
  end)

  it("--gelu tanh stays close to the exact gelu (>= 35 dB)", function()
    local src = SF.attention_like(dir .. "/g.mlpackage")
    local dst = fixed(src, "--gelu tanh", dir .. "/g2.mlpackage")
    local x = random_input({ 1, 4, 8 }, 13)
    local db = snr(evaluate(mlsh.load(src), { x = x }).y, evaluate(mlsh.load(dst), { x = x }).y)
    assert.is_true(db >= 35, "SNR " .. db)
  end)

  it("split: A then B equals the original bit for bit", function()
    local src = SF.deep(dir .. "/deep.mlpackage", 4, 8)
    local _, err, code = F.run("split " .. F.q(src) .. " --chunks 2 -o " .. F.q(dir .. "/d.mlpackage"))
    assert.equal(0, code, err)
    local x = random_input({ 1, 8 }, 17)
    local whole = evaluate(mlsh.load(src), { x = x }).y
    local ma = mlsh.load(dir .. "/d_chunk1.mlpackage")
    local ea = evaluate(ma, { x = x })
    local mb = mlsh.load(dir .. "/d_chunk2.mlpackage")
    local feed = {}
    for _, i in ipairs(mb:inputs()) do feed[i.name] = ea[i.name] end
    local y = evaluate(mb, feed).y
    assert.same(whole.data, y.data)
  end)
end)
