-- mlsh.onnx.coreml_rules — whether ONNX Runtime's CoreML EP takes a node, for a chosen ONNX
-- Runtime release. The generic part is the EP's BaseOpBuilder::IsOpSupported
-- (onnxruntime/core/providers/coreml/builders/impl/base_op_builder.cc) and IsInputSupported
-- (builders/helper.cc); the per-op part is a version module (mlsh.onnx.ort_<version>) holding one
-- entry per op builder registered in that release's op_builder_factory.cc, each citing its source.
-- The order is the EP's: builder registered for the op type (domain not checked) -> MLProgram
-- support of the builder -> opset range -> every input (shape known, static when
-- RequireStaticInputShapes, no dim over 16384, no dim of 0 unless the builder allows empty
-- inputs, rank <= 5) -> the builder's input dtype check -> external-data initializers -> the
-- builder's own conditions.
--   rules.check(ir, node, opts, env) -> ok, reason, source
--   rules.version(opts) -> the version module; rules.VERSIONS; rules.DEFAULT
-- opts.model_format "mlprogram"|"neuralnetwork", opts.require_static_input_shapes, opts.ort_version;
-- env.producers (value -> node), env.consumers (value -> {node}), env.supported(node),
-- env.input_edges(node) -> producer nodes in ONNX Runtime's edge order.
local opsets = require "mlsh.onnx.opsets"

local M = {}

-- Versions modelled, newest last; DEFAULT is the newest.
M.VERSIONS = { "1.20" }
M.DEFAULT = M.VERSIONS[#M.VERSIONS]
local MODULES = { ["1.20"] = "mlsh.onnx.ort_1_20" }

-- "1.20", "1.20.0", "v1.20.0" -> "1.20"; nil, err for a version not modelled.
function M.normalize(v)
  if v == nil then return M.DEFAULT end
  local major, minor = tostring(v):match("^v?(%d+)%.(%d+)")
  local key = major and (major .. "." .. minor)
  if not key or not MODULES[key] then
    return nil, "ONNX Runtime version " .. tostring(v) .. " is not modelled (modelled: " .. table.concat(M.VERSIONS,
      ", ") .. ")"
  end
  return key
end

function M.version(opts)
  local key = assert(M.normalize(opts and opts.ort_version))
  return require(MODULES[key])
end

local H = require "mlsh.onnx.coreml_helpers"
local present = H.present
M.helpers = H

-- ---- BaseOpBuilder ------------------------------------------------------------------------------------
local MAX_DIM, MAX_RANK = 16384, 5
local SRC_BASE = "builders/impl/base_op_builder.cc BaseOpBuilder::IsOpSupported"
local SRC_INPUT = "builders/helper.cc IsInputSupported"
local SRC_DTYPE = "builders/impl/base_op_builder.cc BaseOpBuilder::IsInputDtypeSupport"

-- IsInputSupported (helper.cc)
local function input_ok(ir, node, name, opts, allow_empty)
  if not present(name) then return true end
  local s = H.shape(ir, name)
  if not s then
    return false, string.format("Input [%s] of Node [%s] type [%s] has no shape", name, node.name or "", node.op)
  end
  if opts.require_static_input_shapes and not H.is_static(s) then
    return false, "CoreML EP is set to only allow static input shapes. Input has a dynamic shape. Input: " .. name
      .. ", shape: " .. H.shape_string(s)
  end
  for _, d in ipairs(s) do
    if d > MAX_DIM then
      return false, "CoreML does not support input dim > 16384. Input:" .. name .. ", shape: " .. H.shape_string(s)
    end
    if d == 0 and not allow_empty then
      return false, "CoreML does not support shapes with dimension values of 0. Input:" .. name .. ", shape: "
        .. H.shape_string(s)
    end
  end
  if #s > MAX_RANK then
    return false, "CoreML EP doesn't allow input shapes with rank greater than 5. Input: " .. name .. ", shape: "
      .. H.shape_string(s)
  end
  return true
end

-- Whether the node's since-version is within the builder's range (opsets.since gives it from the
-- model's opset import; unknown since-versions are not refused).
local function opset_ok(ir, node, b, default_max)
  if node.domain ~= "" and node.domain ~= "ai.onnx" then return true end
  local since = opsets.since(node.op, ir.opset[""])
  local min, max = b.min or 1, b.max or default_max
  if since and (since < min or since > max) then
    return false, string.format("%sis only supported for opset [%d, %d]", node.op, min, max)
  end
  return true
end

function M.check(ir, node, opts, env)
  local V = M.version(opts)
  local b = V.BUILDERS[node.op]
  if not b then return false, "no CoreML op builder for " .. node.op, V.SOURCE.factory end
  local ml = opts.model_format == "mlprogram"
  if ml and not b.ml then
    return false, "Operator [" .. node.op .. "] does not support MLProgram", b.src_class or SRC_BASE
  end
  local ok, why = opset_ok(ir, node, b, V.MAX_OPSET)
  if not ok then return false, why, SRC_BASE end
  for _, name in ipairs(node.inputs) do
    ok, why = input_ok(ir, node, name, opts, b.allow_empty)
    if not ok then return false, why, SRC_INPUT end
  end
  local ctx = { ir = ir, opts = opts, env = env, ml = ml, V = V }
  if b.dtype then
    ok, why = b.dtype(ctx, node)
    if not ok then return false, why, b.dtype_src end
  else
    ok, why = H.input_dtype(ir, node, opts, 0, V.FLOAT16_OPS)
    if not ok then return false, why, SRC_DTYPE end
  end
  for _, name in ipairs(node.inputs) do
    local c = present(name) and ir:const(name)
    if c and c.external then
      return false, "Initializer [" .. name .. "] with external data location are not currently supported", SRC_BASE
    end
  end
  if b.check then
    ok, why = b.check(ctx, node)
    if not ok then return false, why, b.src end
  end
  return true
end

-- The op types the EP registers for a format (for reports).
function M.registered(format, version)
  local V = M.version({ ort_version = version })
  local out = {}
  for op, b in pairs(V.BUILDERS) do
    if format ~= "mlprogram" or b.ml then out[#out + 1] = op end
  end
  table.sort(out)
  return out
end

return M
