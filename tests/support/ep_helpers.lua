-- What the CoreML EP specs share: build an ONNX model with onnx_builder into a temporary folder,
-- run the predictor on it, read a refused node's reason. One helper set per spec file:
--   local H = require("ep_helpers").new("m")   -- file names m1.onnx, m2.onnx ...
--   setup(H.setup) ; teardown(H.teardown)
--   H.save(build, model_opts) -> path ; H.predict(build, opts, model_opts) -> result, path
--   H.reason(result, op) -> reason | nil ; H.seq(n, period, step) -> {n numbers}
require "mlsh.onnx.model"
local mlsh = require "mlsh"
local core = require "mlsh.core"
local F = require "fixtures"
local B = require "onnx_builder"
local ep = require "mlsh.onnx.ep"

local M = {}

function M.new(prefix)
  local H = { counter = 0 }
  function H.setup() H.dir = F.tmpdir() end
  function H.teardown() core.fs.remove_tree(H.dir) end

  function H.save(build, model_opts)
    H.counter = H.counter + 1
    local b = B.model(model_opts or { opset = 17 })
    build(b)
    return b:save(H.dir .. "/" .. prefix .. H.counter .. ".onnx")
  end

  -- Build a model with `build(b)`, run the predictor with opts (ML program format unless given).
  function H.predict(build, opts, model_opts)
    local p = H.save(build, model_opts)
    local m <close> = mlsh.load(p)
    local o = { model_format = "mlprogram" }
    for k, v in pairs(opts or {}) do o[k] = v end
    return ep.run(m, o), p
  end

  -- The reason the (first) node of op type `op` is refused, or nil when it is in a partition.
  function H.reason(r, op)
    for _, u in ipairs(r.unsupported) do
      if u.op == op then return u.reason end
    end
    return nil
  end

  -- n small deterministic values: (i % period) * step
  function H.seq(n, period, step)
    local t = {}
    for i = 1, n do t[i] = (i % (period or 7)) * (step or 0.125) end
    return t
  end
  return H
end

return M
