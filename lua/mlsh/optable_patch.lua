-- mlsh.optable_patch — checking and normalizing the patches and entries users give mlsh.optable
-- (override/add of ops and NeuralNetwork layers): every field against the table's vocabulary, with
-- errors thrown as {msg = ...} and re-raised at the API caller by guarded().
local core = require("mlsh.core").optable
local spec = require("mlsh.spec")

local M = {}

M.OPSETS = {"iOS15", "iOS16", "iOS17", "iOS18"}
M.MIN_OPSET_SPEC = 6
M.UNITS = {"ANE", "GPU", "CPU"}
local MIN_OPSET_SPEC = M.MIN_OPSET_SPEC

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
M.set_of = set_of

local STATUSES = set_of(core.statuses())
local SOURCES = set_of(core.sources())
local UNIT_SET = set_of(M.UNITS)

-- Opset -> "iOS17", 8 | nil, msg (types already checked).
local function resolve_opset(v)
  local n, err = spec.resolve(v)
  if not n then return nil, err end
  if n < MIN_OPSET_SPEC then
    return nil, string.format("%s is spec %d; ML-program opsets start at iOS15 (spec 6)", tostring(v), n)
  end
  return spec.target_name(n), n
end

M.resolve_opset = resolve_opset

-- Validation failures are thrown as {msg = ...} and re-raised by the API function at the caller.
local function bad(fmt, ...) error({msg = string.format(fmt, ...)}, 0) end

local function guarded(fname, f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  if type(a) == "table" and a.msg then error(fname .. ": " .. a.msg, 3) end
  error(a, 0)
end

local function want(cond, fmt, ...) if not cond then bad(fmt, ...) end end

local function norm_string_list(v, where)
  want(type(v) == "table", "%s must be a list", where)
  local out = {}
  for i, x in ipairs(v) do
    want(type(x) == "string" or type(x) == "number", "%s[%d] must be a string or number", where, i)
    out[i] = x
  end
  return out
end

local COND_KEYS = {id = "string", text = "string", ref = "string", value = "number", values = "list", source = "source"}

local function norm_condition(c, where, extra_keys)
  want(type(c) == "table", "%s must be a table", where)
  want(type(c.id) == "string", "%s.id must be a string", where)
  local out = {}
  for k, v in pairs(c) do
    local kind = COND_KEYS[k] or (extra_keys and extra_keys[k])
    want(kind ~= nil, "%s has unknown key '%s'", where, tostring(k))
    if kind == "list" then
      out[k] = norm_string_list(v, where .. "." .. k)
    elseif kind == "source" then
      want(SOURCES[v], "%s.source must be one of code, vendor-doc, community (got %s)", where, tostring(v))
      out[k] = v
    elseif kind == "spec" then
      want(math.type(v) == "integer" and v >= spec.MIN and v <= spec.MAX, "%s.%s must be a spec version %d..%d",
        where, k, spec.MIN, spec.MAX)
      out[k] = v
    else
      want(type(v) == kind, "%s.%s must be a %s", where, k, kind)
      out[k] = v
    end
  end
  return out
end

local function norm_conditions(v, where, extra_keys)
  want(type(v) == "table", "%s must be a list", where)
  local out = {}
  for i, c in ipairs(v) do out[i] = norm_condition(c, string.format("%s[%d]", where, i), extra_keys) end
  return out
end

local function norm_eligibility(v)
  want(type(v) == "table", "eligibility must be a table keyed by ANE / GPU / CPU")
  local out = {}
  for unit, u in pairs(v) do
    want(UNIT_SET[unit], "eligibility has unknown unit '%s' (expected ANE, GPU, CPU)", tostring(unit))
    want(type(u) == "table", "eligibility.%s must be a table {status, conditions}", unit)
    local nu = {}
    for k, x in pairs(u) do
      if k == "status" then
        want(STATUSES[x], "eligibility.%s.status must be one of yes, unknown, unlikely, no, n/a (got %s)", unit,
          tostring(x))
        nu.status = x
      elseif k == "conditions" then
        nu.conditions = norm_conditions(x, "eligibility." .. unit .. ".conditions")
      else
        bad("eligibility.%s has unknown key '%s'", unit, tostring(k))
      end
    end
    out[unit] = nu
  end
  return out
end

local function norm_facts(v)
  want(type(v) == "table", "facts must be a list")
  local out = {}
  for i, f in ipairs(v) do
    local where = string.format("facts[%d]", i)
    want(type(f) == "table", "%s must be a table {text, source, ref?}", where)
    want(type(f.text) == "string", "%s.text must be a string", where)
    want(SOURCES[f.source], "%s.source must be one of code, vendor-doc, community", where)
    want(f.ref == nil or type(f.ref) == "string", "%s.ref must be a string", where)
    for k in pairs(f) do
      want(k == "text" or k == "source" or k == "ref", "%s has unknown key '%s'", where, tostring(k))
    end
    out[i] = {text = f.text, source = f.source, ref = f.ref}
  end
  return out
end

local function norm_opset_value(v, where)
  want(type(v) == "string" or math.type(v) == "integer", "%s must be an opset name or spec number", where)
  local name, n = resolve_opset(v)
  want(name ~= nil, "%s: %s", where, n)
  return name, n
end

local OP_IGNORED = set_of({"name", "kind", "revision_specs", "versions", "version_specs", "origin", "overridden",
                           "opset", "version", "version_spec", "chips"})

local function norm_op_patch(name, p)
  local out = {}
  for k, v in pairs(p) do
    if OP_IGNORED[k] then
      want(k ~= "name" or v == name, "name '%s' does not match '%s'", tostring(v), name)
      want(k ~= "kind" or v == "mil", "kind must be 'mil'")
    elseif k == "introduced" then
      out.introduced, out.introduced_spec = norm_opset_value(v, "introduced")
    elseif k == "introduced_spec" then
      if p.introduced == nil then
        want(math.type(v) == "integer", "introduced_spec must be an integer")
        out.introduced, out.introduced_spec = norm_opset_value(v, "introduced_spec")
      end
    elseif k == "revisions" then
      want(type(v) == "table", "revisions must be a list of opsets")
      local seen, list = {}, {}
      for i, r in ipairs(v) do
        local rn, rs = norm_opset_value(r, string.format("revisions[%d]", i))
        if not seen[rn] then
          seen[rn] = true
          list[#list + 1] = {rn, rs}
        end
      end
      table.sort(list, function(a, b) return a[2] < b[2] end)
      out.revisions = {}
      for i, r in ipairs(list) do out.revisions[i] = r[1] end
    elseif k == "revision_notes" then
      want(type(v) == "table", "revision_notes must be a table {opset = text}")
      out.revision_notes = {}
      for o, text in pairs(v) do
        local on = norm_opset_value(o, "revision_notes key")
        want(type(text) == "string", "revision_notes.%s must be a string", on)
        out.revision_notes[on] = text
      end
    elseif k == "category" or k == "note" then
      want(type(v) == "string", "%s must be a string", k)
      out[k] = v
    elseif k == "eligibility" then
      out.eligibility = norm_eligibility(v)
    elseif k == "facts" then
      out.facts = norm_facts(v)
    else
      bad("unknown key '%s' (patchable: introduced, revisions, revision_notes, category, note, eligibility, facts)",
        tostring(k))
    end
  end
  return out
end

local LAYER_IGNORED = set_of({"name", "kind", "field", "origin", "overridden"})
local BUMP_KEYS = {min_spec = "spec"}

local function norm_layer_patch(name, p, allow_field)
  local out = {}
  for k, v in pairs(p) do
    if k == "field" and allow_field then
      want(math.type(v) == "integer", "field must be an integer")
      out.field = v
    elseif LAYER_IGNORED[k] then
      want(k ~= "name" or v == name, "name '%s' does not match '%s'", tostring(v), name)
      want(k ~= "kind" or v == "nn", "kind must be 'nn'")
    elseif k == "min_spec" then
      want(math.type(v) == "integer" and v >= spec.MIN and v <= spec.MAX, "min_spec must be a spec version %d..%d",
        spec.MIN, spec.MAX)
      out.min_spec = v
    elseif k == "bumps" then
      out.bumps = norm_conditions(v, "bumps", BUMP_KEYS)
      for i, b in ipairs(out.bumps) do want(b.min_spec ~= nil, "bumps[%d].min_spec is required", i) end
    elseif k == "category" or k == "note" then
      want(type(v) == "string", "%s must be a string", k)
      out[k] = v
    elseif k == "eligibility" then
      out.eligibility = norm_eligibility(v)
    elseif k == "facts" then
      out.facts = norm_facts(v)
    else
      bad("unknown key '%s' (patchable: min_spec, bumps, category, note, eligibility, facts)", tostring(k))
    end
  end
  return out
end

---------------------------------------------------------------------------- merging

M.bad, M.guarded, M.want, M.norm_op_patch, M.norm_layer_patch = bad, guarded, want, norm_op_patch, norm_layer_patch
return M
