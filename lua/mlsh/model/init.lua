-- mlsh.model — opening a model and handing it the method table of its format: the only place a
-- Model gets its API. One module per format owns that table ({methods, props}):
--   mlsh.model.coreml   .mlmodel .mlpackage .mlpackage.zip .mlmodelc (a new Model method goes there)
--   mlsh.model.onnx     .onnx (the ONNX methods of mlsh.onnx.model, completed with the Core ML ones)
-- The C binding (core/lua_model.c) looks m.key up in that table and nowhere else.
local core = require "mlsh.core"

local M = {}

M.FORMATS = { mlmodel = "mlsh.model.coreml", mlpackage = "mlsh.model.coreml", ["mlpackage.zip"] = "mlsh.model.coreml",
              mlmodelc = "mlsh.model.coreml", onnx = "mlsh.model.onnx" }

-- The {methods, props} of a container format (its module is loaded on first use).
function M.api(format)
  local api = core.model.formats[format]
  if api and api.complete then return api end
  api = require(M.FORMATS[format] or "mlsh.model.coreml").api
  api.complete = true
  core.model.formats[format] = api
  return api
end

-- Give a Model userdata the C side opened (core.model.open, or a payload core.pte hands out) the
-- API of its format: the Model, or nil, "path: reason" (and m is closed).
function M.adopt(m)
  local format = core.model.format(m)
  core.model.attach(m, M.api(format))
  if format == "mlmodelc" then
    local ok, e = require("mlsh.model.compiled").attach_spec(m)
    if not ok then
      m:close()
      return nil, e
    end
  end
  return m
end

-- Open path: the Model, or nil, "path: reason". Containers of other tools (an ExecuTorch .pte,
-- ONNX Runtime's Core ML cache folder) open as their own objects (mlsh.containers); with opts
-- ({delegate = N}) the caller wants one Model and gets the selected Core ML model inside.
function M.open(path, opts)
  if type(path) ~= "string" then return nil, "mlsh.load: expected a path string, got " .. type(path) end
  local other, oerr = require("mlsh.containers").try_open(path, opts)
  if other or oerr then return other, oerr end
  local m, err = core.model.open(path)
  if not m then return nil, err end
  return M.adopt(m)
end

return M
