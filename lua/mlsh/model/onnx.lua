-- mlsh.model.onnx — the method table of ONNX models: the methods and properties mlsh.onnx.model
-- defines, completed with the Core ML ones it does not (m:inventory(), m:placement() ...) and the
-- raw methods of the binding, so one plain table answers every m.key.
local coreml = require "mlsh.model.coreml"
local onnx = require "mlsh.onnx.model"

local M = {}
local own = require("mlsh.core").model.formats.onnx
local methods, props = {}, {}
for k, f in pairs(own.methods) do methods[k] = f end
for k, f in pairs(own.props) do props[k] = f end
for k, f in pairs(coreml.methods) do
  if methods[k] == nil and props[k] == nil then methods[k] = f end
end
for k, f in pairs(coreml.props) do
  if methods[k] == nil and props[k] == nil then props[k] = f end
end
M.onnx = onnx
M.methods, M.props = methods, props
M.api = { methods = methods, props = props }
return M
