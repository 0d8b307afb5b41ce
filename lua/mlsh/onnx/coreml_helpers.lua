-- mlsh.onnx.coreml_helpers — the small readers ONNX Runtime's CoreML EP op builders use, on an
-- mlsh.onnx.ir graph: GetShape/GetStaticShape/IsStaticShape (coreml/shape_utils.cc), GetType,
-- GetConstantInitializer, NodeAttrHelper defaults, BaseOpBuilder::IsInputDtypeSupport.
-- Shapes come back as ONNX Runtime sees them: integer dims, -1 for a dynamic one.
local types = require "mlsh.onnx.types"

local H = {}

local function present(name) return name ~= nil and name ~= "" end

-- ---- the shared helpers version modules use ---------------------------------------------------------
H.present = present

function H.attr(node, name, default)
  local a = node.attrs[name]
  if a == nil or a.value == nil then return default end
  return a.value
end

-- GetShape (coreml/shape_utils.cc): the dims with -1 for a dynamic one, or nil (no shape info).
function H.shape(ir, name)
  if not present(name) then return nil end
  local t = ir:type_of(name)
  if not t or not t.shape then return nil end
  local s = {}
  for i, d in ipairs(t.shape) do s[i] = math.type(d) == "integer" and d or -1 end
  return s
end

-- IsStaticShape: no -1 (a dim of 0 counts as static).
function H.is_static(shape)
  if not shape then return false end
  for _, d in ipairs(shape) do if d == -1 then return false end end
  return true
end

-- GetStaticShape: the shape when known and static, else nil.
function H.static_shape(ir, name)
  local s = H.shape(ir, name)
  if s and H.is_static(s) then return s end
  return nil
end

function H.elem(ir, name)
  local t = present(name) and ir:type_of(name)
  return t and t.elem
end

-- GraphViewer::GetConstantInitializer: an initializer no graph input can override.
function H.const(ir, name) return present(name) and ir:const(name) or nil end

function H.values(ir, name) return present(name) and ir:values(name) or nil end

function H.shape_string(s)
  if not s then return "?" end
  local parts = {}
  for i, d in ipairs(s) do parts[i] = tostring(d) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function H.product(s)
  local n = 1
  for _, d in ipairs(s) do n = n * d end
  return n
end

-- BaseOpBuilder::IsInputDtypeSupport: fp32, or fp16 in an ML program for the ops in Float16Ops.
function H.input_dtype(ir, node, opts, idx, fp16_ops)
  local name = node.inputs[idx + 1]
  if not present(name) then return false, "Input index [" .. idx .. "] is out of range" end
  local e = H.elem(ir, name)
  if not e then return false, "[" .. node.op .. "] Get Input type failed" end
  if e == types.FLOAT then return true end
  if opts.model_format == "mlprogram" and e == types.FLOAT16 and fp16_ops[node.op] then return true end
  return false, "[" .. node.op .. "] Input type: [" .. e .. "] is not currently supported"
end

return H
