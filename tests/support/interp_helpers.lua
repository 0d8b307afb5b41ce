-- interp_helpers.lua — shared by the interpreter specs: models built with mlsh.builder in a
-- temporary folder, deterministic values, tensors, runs, and an element-wise closeness check.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local B = require "mlsh.builder"
local F = require "fixtures"

local H = {}
local interp = core.interp
local dir = F.tmpdir()
local n_models = 0
H.dir = dir

-- Deterministic pseudo-random values in [-1, 1).
function H.values(n, seed)
  local t, s = {}, seed or 1
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    t[i] = s / 1073741824 - 1
  end
  return t
end

function H.tensor(vals, shape, dtype) return assert(interp.tensor(core.array.new(vals), dtype or "fp32", shape)) end

function H.build(opset, fn, precision)
  local p = B.program { opset = opset or "iOS17", precision = precision or "fp32" }
  local f = p:func("main")
  fn(f, p)
  n_models = n_models + 1
  local path = string.format("%s/m%d.mlpackage", dir, n_models)
  p:save(path)
  return path
end

-- Save a NeuralNetwork builder's model in the temporary folder; its path.
function H.save_nn(nn)
  n_models = n_models + 1
  local path = string.format("%s/nn%d.mlmodel", dir, n_models)
  nn:save(path)
  return path
end

function H.run(path, inputs, opts)
  local m = mlsh.load(path)
  local outs, info = m:run(inputs, opts or { precision = "fp32" })
  m:close()
  return outs, info
end

function H.close(got, want, tol)
  local a = got:array()
  if #want ~= #a then error(string.format("%d elements, want %d", #a, #want), 2) end
  for i = 1, #want do
    if math.abs(a[i] - want[i]) > tol * (1 + math.abs(want[i])) then
      error(string.format("element %d: got %.7g, want %.7g", i, a[i], want[i]), 2)
    end
  end
end

return H
