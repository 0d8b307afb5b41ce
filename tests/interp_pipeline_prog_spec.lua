-- interp_pipeline_prog_spec.lua — pipelines whose sub-models are ML programs (what `mlsh split
-- --pipeline` and coremltools' make_pipeline write: mlProgram parts sharing the package's one
-- weight file) on the interpreter. Programs are built here with known weights, cut into pipelines
-- with mlsh split, and run; expected values come from naive loops in this file. Error paths too.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local F = require "fixtures"
local IH = require "interp_helpers"

local dir = F.tmpdir()
local tensor, close = IH.tensor, IH.close

-- y = W2 * relu(W1 x + b1) + b2 (x [1, K], W1 [H, K], W2 [N, H]); weights >= 10 values go to weight.bin
local K, H, N = 6, 12, 3
local W1, b1, W2, b2 = IH.values(H * K, 3), IH.values(H, 5), IH.values(N * H, 7), IH.values(N, 9)

local function naive(x)
  local h = {}
  for i = 1, H do
    local v = b1[i]
    for k = 1, K do v = v + W1[(i - 1) * K + k] * x[k] end
    h[i] = math.max(v, 0)
  end
  local y = {}
  for j = 1, N do
    local v = b2[j]
    for i = 1, H do v = v + W2[(j - 1) * H + i] * h[i] end
    y[j] = 2 * v
  end
  return y
end

local function split(src, at, out)
  local _, err, code = F.run("split " .. F.q(src) .. " " .. at .. " --pipeline -o " .. F.q(out))
  assert.equal(0, code, err)
  return out
end

local function run(path, x)
  local m = mlsh.load(path)
  local outs, info = m:run({ x = tensor(x, { 1, K }) }, { precision = "fp32" })
  m:close()
  return outs, info
end

describe("pipelines of ML programs on the interpreter", function()
  local src
  setup(function()
    src = IH.build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, K })
      local h = f:op("linear", { x = x, weight = f:const("w1", core.array.new(W1), { shape = { H, K } }),
        bias = f:const("b1", core.array.new(b1), { shape = { H } }) }, { name = "fc1" })
      h = f:op("relu", { x = h }, { name = "act" })
      local y = f:op("linear", { x = h, weight = f:const("w2", core.array.new(W2), { shape = { N, H } }),
        bias = f:const("b2", core.array.new(b2), { shape = { N } }) }, { name = "fc2" })
      f:output("y", f:op("mul", { x = y, y = 2.0 }, { name = "twice" }))
    end)
  end)
  teardown(function() core.fs.remove_tree(dir) end)

  it("two parts (split after relu) give the naive MLP's values", function()
    local p = split(src, "--at act", dir .. "/two.mlpackage")
    assert.equal("pipeline", mlsh.load(p).model_type)
    for _, seed in ipairs({ 11, 12 }) do
      local x = IH.values(K, seed)
      close(run(p, x).y, naive(x), 1e-5)
    end
  end)

  it("three parts (--chunks 3), each part's weights read from the one weight file", function()
    local p = split(src, "--chunks 3", dir .. "/three.mlpackage")
    local subs = mlsh.load(p):submodels()
    assert.equal(3, #subs)
    local x = IH.values(K, 21)
    close(run(p, x).y, naive(x), 1e-5)
  end)

  it("a part whose weight blob is missing from the package fails at load, naming the sub-model", function()
    local p = split(src, "--at act", dir .. "/broken.mlpackage")
    local w = p .. "/Data/com.apple.CoreML/weights/weight.bin"
    assert(core.fs.write_atomic(w, string.rep("\0", 16)))
    local m = mlsh.load(p)
    local ok, err = pcall(m.run, m, { x = tensor(IH.values(K, 1), { 1, K }) }, { precision = "fp32" })
    m:close()
    assert.is_false(ok)
    assert.matches("pipeline model 1 %(mlProgram%)", tostring(err))
  end)

end)
