-- mlsh.surgery — editing a loaded model in place and writing the result (docs/surgery.md).
--
--   local surgery = require "mlsh.surgery"
--   local e = surgery.edit(m)                 -- m: a loaded model (mlsh.load); m is never modified
--   local f = e:func()                         -- the default function (or e:func("name")); see mlsh.surgery.func
--   f:insert{type = "relu", inputs = {x = "y"}, name = "r"}
--   e:fold() ; e:dce()                         -- constant folding, dead-code removal (passes of their own)
--   local problems = e:validate()              -- {} when the result is a valid model
--   e:save("Out.mlpackage")                    -- validates first; atomic; refuses to replace m's file
--   e.spec                                     -- the output Model message (description, metadata, spec version)
--   e.changes                                  -- {{pass, function, op, type, what}} logged by the passes
-- Only the functions opened with e:func() are re-encoded: the others are written back untouched.
local core = require "mlsh.core"
local writer = require "mlsh.model.writer"
local features = require "mlsh.builder.features"
local ir = require "mlsh.surgery.ir"
local func = require "mlsh.surgery.func"

local M = {}
local E = {}
E.__index = E
M.Editor = E
M.tensor = func.tensor
M.BLOB_FILE = func.BLOB_FILE

-- An editor over spec (a Model message) whose blobs read_blob serves; m is the model (optional).
function M.from_spec(spec, read_blob, o)
  o = o or {}
  local self = setmetatable({ src = spec:copy(), spec = spec:copy(), funcs = {}, order = {}, changes = {},
                              blobs = {}, nblobs = 0, source = o.source, model = o.model }, E)
  self.spec_version = self.spec.specificationVersion
  local base = read_blob
  self.read_blob = function(file, offset, value)
    if file == func.BLOB_FILE then
      local b = self.blobs[offset]
      if not b then error("no new blob at " .. tostring(offset), 0) end
      return b.dtype, b.bytes, b.n
    end
    if not base then error("no weights to read for " .. tostring(file), 0) end
    return base(file, offset, value)
  end
  return self
end

function M.edit(m)
  if not m or not m.spec then error("surgery.edit: expected a loaded model", 2) end
  return M.from_spec(m.spec, writer.model_reader(m), { source = m.path, model = m })
end

function E:add_blob(dtype, bytes, n)
  self.nblobs = self.nblobs + 1
  local key = 64 * self.nblobs
  self.blobs[key] = { dtype = dtype, bytes = bytes, n = n }
  return key
end

function E:log(pass, fname, op, what)
  self.changes[#self.changes + 1] = { pass = pass, ["function"] = fname, op = op and op.name or nil,
                                      type = op and op.type or nil, what = what }
end

-- ---- functions ---------------------------------------------------------------------------------------
function E:is_program() return self.src:has("mlProgram") end

function E:function_names()
  if not self:is_program() then return {} end
  local _, keys = self.src.mlProgram:map("functions")
  return keys
end

function E:default_function()
  local d = self.src.description
  local name = d and d.defaultFunctionName or ""
  if name ~= "" then return name end
  return self:function_names()[1]
end

function E:func(name)
  name = name or self:default_function()
  if self.funcs[name] then return self.funcs[name] end
  if not self:is_program() then error("surgery: not an ML program (model type has no functions)", 0) end
  local fmsg = self.src.mlProgram:get("functions", name)
  if not fmsg then error("surgery: no function named '" .. tostring(name) .. "'", 0) end
  local f = func.new(self, ir.decode(name, fmsg))
  self.funcs[name] = f
  self.order[#self.order + 1] = name
  return f
end

-- A fresh, unedited view of a function (for before/after comparisons).
function E:original(name)
  local fmsg = self.src.mlProgram:get("functions", name)
  return func.new(self, ir.decode(name, fmsg))
end

-- ---- descriptions ------------------------------------------------------------------------------------
-- The FunctionDescription of fname in a multi-function model, else the model's description.
function E:description_for(fname)
  local d = self.spec:mutable("description")
  for _, fd in ipairs(d.functions) do
    if fd.name == fname then return fd end
  end
  return d
end

function E:feature(fname, field, name)
  for _, fd in ipairs(self:description_for(fname)[field]) do
    if fd.name == name then return fd end
  end
  return nil
end

function E:describe(fname, field, f)
  local d = self:description_for(fname)
  if f.feature then
    local fd = d:add(field, f.feature)
    fd.name = f.name
    return fd
  end
  if not features.ARRAY_DATA_TYPE[f.dtype] then
    error(string.format("function %s: %s '%s' of dtype %s cannot be a model %s (fp32, fp16, int32, int8, fp64 only)",
      fname, field, f.name, tostring(f.dtype), field), 0)
  end
  local known = true
  for _, x in ipairs(f.shape or {}) do if x < 0 then known = false end end
  return features.describe(d, field, { name = f.name, kind = "array", dtype = f.dtype, shape = known and f.shape or nil })
end

function E:undescribe(fname, field, name)
  local d = self:description_for(fname)
  local keep = {}
  for _, fd in ipairs(d[field]) do if fd.name ~= name then keep[#keep + 1] = fd:copy() end end
  d[field] = keep
end

function E:rename_feature(fname, old, new)
  for _, field in ipairs({ "input", "output", "state" }) do
    local fd = self:feature(fname, field, old)
    if fd then fd.name = new end
  end
end

-- ---- building, validating, saving --------------------------------------------------------------------
-- The neural-network layer editor (mlsh.surgery.nn), or nil, reason for other model types.
function E:nn()
  if not self._nn then
    local n, why = require("mlsh.surgery.nn").open(self)
    if not n then return nil, why end
    self._nn = n
  end
  return self._nn
end

function E:build()
  local out = self.spec:copy()
  if self._nn then self._nn:write(out) end
  if #self.order > 0 then
    local prog = out.mlProgram
    for _, e in ipairs(prog.functions) do
      local f = self.funcs[e.key]
      if f then ir.encode(f.fn, e.value) end
    end
  end
  return out, self.read_blob
end

function E:validate()
  return require("mlsh.surgery.validate").run(self)
end

function E:save(path, o)
  o = o or {}
  local problems = self:validate()
  if #problems > 0 then
    error(path .. ": invalid model: " .. problems[1] .. (#problems > 1 and string.format(" (and %d more)", #problems - 1) or ""), 0)
  end
  local spec = self:build()
  return writer.save(spec, self.read_blob, path, { source = o.source or self.source, in_place = o.in_place, uuid = o.uuid })
end

-- ---- passes -------------------------------------------------------------------------------------------
function E:fold(fname, o) return require("mlsh.surgery.fold").run(self:func(fname), o) end
function E:dce(fname) return require("mlsh.surgery.dce").run(self:func(fname)) end
function E:propagate(fname) return require("mlsh.surgery.fold").propagate(self:func(fname)) end

M.core = core
return M
