-- mlsh — the Lua API users script against.
--   local mlsh = require "mlsh"
--   local m = mlsh.load("Model.mlpackage")      -- raises "path: reason" on bad input
--   local m, err = mlsh.try_load(path)          -- nil, "path: reason" instead
--   m.spec_version, m.model_type, m:inputs(), m:functions(), m:ops(), m:layers(), m:weights() ...
local core = require "mlsh.core"

local M = { core = core, version = "0.1.0" }
M.json = require "mlsh.json"
M.types = require "mlsh.types"
M.model = require "mlsh.model"
require "mlsh.onnx.model" -- ONNX models answer the same API (core.model.formats.onnx)
M.writer = require "mlsh.writer"
M.required_spec, M.placement, M.rules = require "mlsh.required_spec", require "mlsh.placement", require "mlsh.rules"

local compiled -- loaded on demand

-- One path for both load flavours: nil, msg on failure. Containers of other tools (an ExecuTorch
-- .pte, ORT's Core ML cache folder) load as their own objects (mlsh.containers); with `opts`
-- ({delegate = N}) the caller wants one Model and gets the selected Core ML model inside.
function M.try_load(path, opts)
  if type(path) ~= "string" then return nil, "mlsh.load: expected a path string, got " .. type(path) end
  local other, oerr = require("mlsh.containers").try_open(path, opts)
  if other or oerr then return other, oerr end
  local m, err = core.model.open(path)
  if not m then return nil, err end
  if m:_format() == "mlmodelc" then
    compiled = compiled or require "mlsh.compiled"
    local ok, e = compiled.attach_spec(m)
    if not ok then m:close() return nil, e end
  end
  return m
end

function M.load(path, opts)
  local m, err = M.try_load(path, opts)
  if not m then error(err, 0) end
  return m
end

-- mlsh.safe([on]): from now on rule and fallback code (and recipes run with --safe) is sandboxed:
-- no io, os.execute, package.loadlib, load or debug, read-only models, instruction and memory budgets.
function M.safe(on) M.rules.set_safe(on ~= false) return M.rules.safe end

-- The builder and the compression API are only loaded when a script asks for them.
return setmetatable(M, { __index = function(t, k)
  if k == "builder" or k == "compress" or k == "constexpr" then
    local b = require("mlsh." .. k)
    rawset(t, k, b)
    return b
  end
end })
