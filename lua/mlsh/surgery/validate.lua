-- mlsh.surgery.validate — what an edit must not produce, checked before anything is saved.
--   validate.run(editor) -> list of one-line problems ({} when the model may be written)
-- mlsh.writer's validation runs on the built spec (undefined values, ops outside the opset, const data
-- that does not match its type, undefined block outputs). For every edited function this adds:
-- values defined twice; op output types that contradict what the op's inputs give (mlsh.builder.infer
-- rules: dtype, and every dimension known on both sides); model I/O descriptions that do not match
-- the function (missing or extra inputs/outputs, dtype mismatches). Problems the unedited function
-- already had are not reported: an edit is judged by what it adds.
local writer = require "mlsh.model.writer"
local types = require "mlsh.types"
local ir = require "mlsh.surgery.ir"

local M = {}

local function fmt(t) return types.type_string(t) end

local function shapes_conflict(a, b)
  if #a ~= #b then return true end
  for i = 1, #a do
    if a[i] >= 0 and b[i] >= 0 and a[i] ~= b[i] then return true end
  end
  return false
end

local function check_defs(f, out)
  local seen = {}
  for _, v in ipairs(f.fn.inputs) do seen[v.name] = "input" end
  f:each_op(function(op)
    for _, v in ipairs(op.outputs) do
      if seen[v.name] then out[#out + 1] = string.format("%s '%s' redefines value '%s'", op.type, op.name, v.name) end
      seen[v.name] = op.name
    end
  end)
end

local function check_types(f, out)
  f:each_op(function(op)
    local inferred, why = f:infer(op)
    if not inferred then
      if why then out[#out + 1] = string.format("%s '%s': %s", op.type, op.name, why) end
      return
    end
    for k, t in ipairs(inferred) do
      local d = op.outputs[k]
      if d and d.kind == "tensor" and t.dtype and (d.dtype ~= t.dtype or shapes_conflict(d.shape, t.shape or d.shape)) then
        out[#out + 1] = string.format("%s '%s': output '%s' is declared %s but its inputs give %s", op.type, op.name,
          d.name, fmt(d), fmt(t))
      end
    end
    if #inferred ~= #op.outputs and op.type ~= "lstm" and op.type ~= "gru" then
      out[#out + 1] = string.format("%s '%s' declares %d outputs, its inputs give %d", op.type, op.name, #op.outputs, #inferred)
    end
  end)
end

local FEATURE_DTYPE = { fp32 = "fp32", fp16 = "fp16", int32 = "int32", fp64 = "fp64", int8 = "int8" }

local function feature_dtype(fd)
  local f = types.feature(fd)
  if f.kind == "multiArray" then return FEATURE_DTYPE[f.dtype] or f.dtype end
  if f.kind == "image" then return f.color_space == "grayscale_fp16" and "fp16" or "fp32" end
  return nil
end

local function check_io(e, f, out)
  local d = e:description_for(f.name)
  local ins = {}
  for _, v in ipairs(f.fn.inputs) do ins[v.name] = v end
  local described = {}
  for _, field in ipairs({ "input", "state" }) do
    for _, fd in ipairs(d[field]) do
      described[fd.name] = true
      local v = ins[fd.name]
      if not v then
        out[#out + 1] = string.format("model %s '%s' is not an input of the program", field, fd.name)
      else
        local want = feature_dtype(fd)
        if want and v.dtype ~= want then
          out[#out + 1] = string.format("model input '%s' is %s but the program input is %s", fd.name, want, fmt(v))
        end
      end
    end
  end
  for _, v in ipairs(f.fn.inputs) do
    if not described[v.name] then out[#out + 1] = string.format("program input '%s' is not described as a model input", v.name) end
  end
  local outs = {}
  for _, n in ipairs(f.fn.block.outputs) do outs[n] = true end
  local dout = {}
  for _, fd in ipairs(d.output) do
    dout[fd.name] = true
    if not outs[fd.name] then
      out[#out + 1] = string.format("model output '%s' is not an output of the program (dangling output)", fd.name)
    else
      local v = f:type_of(fd.name)
      local want = feature_dtype(fd)
      if v and want and v.dtype ~= want then
        out[#out + 1] = string.format("model output '%s' is %s but the program gives %s", fd.name, want, fmt(v))
      end
    end
  end
  for _, n in ipairs(f.fn.block.outputs) do
    if not dout[n] then out[#out + 1] = string.format("program output '%s' is not described as a model output", n) end
  end
end

local function problems_of(e, f)
  local out = {}
  check_defs(f, out)
  check_types(f, out)
  check_io(e, f, out)
  return out
end

-- The original function's problems, judged against the original description.
local function baseline(e, name)
  local saved = e.spec
  e.spec = e.src:copy()
  local ok, res = pcall(problems_of, e, e:original(name))
  e.spec = saved
  local set = {}
  if ok then for _, p in ipairs(res) do set[p] = true end end
  return set
end

function M.run(e)
  local problems = {}
  for _, name in ipairs(e.order) do
    local f = e.funcs[name]
    local base = baseline(e, name)
    for _, p in ipairs(problems_of(e, f)) do
      if not base[p] then problems[#problems + 1] = "function " .. name .. ": " .. p end
    end
  end
  if e._nn then
    for _, p in ipairs(e._nn:problems()) do problems[#problems + 1] = p end
  end
  local spec = e:build()
  for _, p in ipairs(writer.validate(spec, e.read_blob)) do problems[#problems + 1] = p end
  return problems
end

M.shapes_conflict = shapes_conflict
M.copy_shape = ir.copy_shape
return M
