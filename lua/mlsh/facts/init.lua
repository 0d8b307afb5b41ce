-- mlsh.facts — what is known about one model, computed once and read by everyone: rules, playbooks,
-- checklists and reports all ask the same facts object (a per-model memo), so placement, the
-- required spec, the weights, the compression inventory and the comparison with an original run
-- at most once per command.
--   local facts = require("mlsh.facts").new(m, {target = 8, compute_units = "ALL", original = m0})
--   facts:placement() facts:required_spec() facts:weights() facts:weight_bytes() facts:compression()
--   facts:compute_dtypes() facts:flexible_inputs() facts:converter() facts:compare() facts:error_spread()
--   facts:dense_weights() facts:size_table() facts:size_lines() facts:cached(key, fn) facts:note(msg)
-- The analyses themselves live in their modules (mlsh.placement.coreml, mlsh.required_spec,
-- mlsh.model.*, mlsh.facts.compression, mlsh.facts.sizes); this file only remembers their answers.
local spec = require "mlsh.spec"
local compression = require "mlsh.facts.compression"
local sizes = require "mlsh.facts.sizes"

local M = {}

local Facts = {}
Facts.__index = Facts
M.Facts = Facts

-- opts: path, load_error, target (spec number), target_name, compute_units (as given, or nil),
-- original (a model to compare with), memory_budget, device, calibrated (placement's second
-- stage, mlsh.placement.evidence), rule_set, fallbacks, placement and
-- required (results computed elsewhere, to share). class: a table whose __index reaches Facts
-- (mlsh.engine.context adds the rule engine's findings that way).
function M.new(m, opts, class)
  opts = opts or {}
  local cu = opts.compute_units
  if cu then
    local name, err = require("mlsh.placement.coreml").compute_units(cu)
    if not name then error(err, 2) end
    cu = name
  end
  return setmetatable({
    model = m, path = opts.path or (m and m.path) or nil, load_error = opts.load_error,
    target = opts.target, target_name = opts.target_name or (opts.target and spec.target_name(opts.target)) or nil,
    compute_units = cu or "ALL", compute_units_given = cu ~= nil, original = opts.original,
    original_path = opts.original_path or (opts.original and opts.original.path) or nil,
    options = { memory_budget = opts.memory_budget }, device = opts.device, calibrated = opts.calibrated,
    given_rules = opts.rule_set, given_fallbacks = opts.fallbacks, notes = {},
    _cache = { placement = opts.placement, required = opts.required },
  }, class or Facts)
end

function Facts:cached(key, fn)
  local c = self._cache
  if c[key] == nil then
    local v = fn()
    c[key] = v == nil and false or v
  end
  return c[key] or nil
end

function Facts:note(msg)
  for _, n in ipairs(self.notes) do
    if n == msg then return end
  end
  self.notes[#self.notes + 1] = msg
end

-- The team fallbacks placement applies (opts.fallbacks; the engine's context: the rule set's).
function Facts:fallbacks() return self.given_fallbacks end

function Facts:placement()
  if not self.model then return nil end
  return self:cached("placement", function()
    return require("mlsh.placement.coreml").simulate(self.model, { compute_units = self.compute_units, target = self.target,
      fallbacks = self:fallbacks(), device = self.device, calibrated = self.calibrated })
  end)
end

function Facts:required_spec()
  if not self.model then return nil end
  return self:cached("required", function() return require("mlsh.required_spec").explain(self.model) end)
end

function Facts:weights()
  if not self.model then return {} end
  return self:cached("weights", function()
    local ok, w = pcall(self.model.weights, self.model)
    return ok and w or {}
  end)
end

function Facts:weight_bytes()
  local n = 0
  for _, w in ipairs(self:weights()) do n = n + (w.bytes or 0) end
  return n
end

function Facts:is_program() return self.model ~= nil and self.model.model_type == "mlProgram" end
function Facts:is_nn() return self.model ~= nil and self.model.neural_network ~= nil end

-- "coremltools 8.1" from the metadata the converter writes, or nil.
function Facts:converter()
  if not self.model then return nil end
  local ok, md = pcall(function() return self.model.metadata end)
  local ud = ok and md and md.user_defined or {}
  local ver = ud["com.github.apple.coremltools.version"]
  local src = ud["com.github.apple.coremltools.source"]
  if not ver then return nil end
  return ver, src
end

local COMPUTE_SKIP = { const = true, cast = true }
-- Counts of ML program compute ops by output dtype: {fp16 = n, fp32 = n, total = n}.
function Facts:compute_dtypes()
  return self:cached("compute_dtypes", function()
    local c = { fp16 = 0, fp32 = 0, total = 0 }
    if not self:is_program() then return c end
    for _, op in ipairs(self.model:ops()) do
      if not COMPUTE_SKIP[op.type] and not op.type:match("^constexpr_") and op.outputs[1] then
        local dt = op.outputs[1].dtype
        if dt == "fp16" or dt == "fp32" then
          c[dt] = c[dt] + 1
          c.total = c.total + 1
        end
      end
    end
    return c
  end)
end

-- Flexible inputs: {range = {names}, enumerated = {names}}.
function Facts:flexible_inputs()
  local out = { range = {}, enumerated = {} }
  if not self.model then return out end
  for _, f in ipairs(self.model:inputs()) do
    local fl = f.flexibility
    if fl and fl.kind == "range" then out.range[#out.range + 1] = f.name
    elseif fl and fl.kind == "enumerated" then out.enumerated[#out.enumerated + 1] = f.name end
  end
  return out
end

for k, f in pairs(compression.methods) do Facts[k] = f end
for k, f in pairs(sizes.methods) do Facts[k] = f end

return M
