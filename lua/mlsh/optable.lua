-- mlsh.optable — MIL ops of opsets iOS15..iOS18 and NeuralNetwork layer types, with what is known
-- of their compute-unit eligibility (C core: core/optable.c, core/spec.c; binding core/lua_optable.c).
--
-- Opset arguments accept "iOS17", "ios17", "CoreML7", any deployment target ("macOS14") or a spec
-- number (8); ML-program opsets run from iOS15 (spec 6) to iOS26 (spec 10, no new ops).
-- Value-dependent failures (unknown op, unknown opset string) return nil plus a message; arguments of
-- the wrong type and malformed override entries raise.
--
-- MIL ops
--   optable.get(name [, opset]) -> entry | nil, msg
--       entry = {name, kind = "mil", introduced = "iOS15", introduced_spec = 6,
--                revisions = {"iOS17"}, revision_specs = {8}, revision_notes = {iOS17 = "..."},
--                versions = {"iOS15", "iOS17"}, version_specs = {6, 8},
--                category = "conv", note = "..."?,
--                eligibility = {ANE = {status, conditions}, GPU = {...}, CPU = {...}},
--                facts = {{text, source, ref}}, origin = "builtin" | "added", overridden = bool}
--       with an opset: nil, msg when the op is not in it; otherwise the entry also has
--       opset = "iOS16", version = "iOS15", version_spec = 6 (the op version that opset uses).
--   optable.exists(name [, opset]) -> bool           optable.version_at(name, opset) -> "iOS17", 8
--   optable.list([opset [, filter]]) -> sorted names; filter = "available" (default: defined in that
--       opset), "new" (introduced there), "revised" (new version there), "changed" (new or revised).
--       Without an opset: every op.
--   optable.opsets() -> {"iOS15", "iOS16", "iOS17", "iOS18"};  optable.opset(v) -> "iOS17", 8
--
-- Eligibility (data for the placement engine; nothing is evaluated here)
--   status: "yes" = eligible when every listed condition holds; "unknown" = no specific fact (the
--   conditions are still necessary); "unlikely" = sources say it tends not to run there; "no" = sources
--   say it does not; "n/a" = not a compute op (const, constexpr_*).
--   condition = {id, text, value? (number), values? (list), source, ref}; ids in optable.conditions():
--   dtype {values}, max_rank {value}, max_dim {value}, shapes {values = static, enumerated},
--   max_dilation, max_kernel, max_stride, max_scale_factor {value}, no_channel_broadcast, small_table,
--   device {values}. source is "code", "vendor-doc" or "community" (optable.sources()).
--   optable.general_facts() lists facts that hold for every op (precision, switching, limits).
--
-- NeuralNetwork layers (names as in NeuralNetwork.proto's layer oneof, or field numbers)
--   optable.layer(name | field) -> {name, kind = "nn", field, min_spec, bumps, category, eligibility,
--                                  facts, origin, overridden} | nil, msg
--   optable.layers() -> names;  optable.layer_min_spec(name | field [, props]) -> n (bumps applied as
--   in mlsh.spec.nn_layer_min_spec, but with overrides)
--
-- Overrides (live in this Lua module, layered over the C table; per Lua state, not persisted)
--   optable.override(name, patch) -> merged entry | nil, msg (unknown op)
--   optable.add(name, entry)      -> entry | nil, msg (already exists); entry needs `introduced`
--   optable.reset(name) -> bool   drop the op's overrides (and the op itself if it was added)
--   optable.override_layer / optable.add_layer (needs `min_spec`) / optable.reset_layer: same for layers
--   optable.reset()               drop every override and addition (ops and layers)
--   optable.overrides() -> {ops = {names}, layers = {names}}
--   A patch is a table with any of: introduced (opset), revisions (list of opsets), revision_notes
--   ({opset = text}), category, note, eligibility, facts — for layers: min_spec, bumps, category,
--   note, eligibility, facts. Overrides stack in call order; each key replaces the current value,
--   except `eligibility`, merged per unit and per field (a unit's `status` and `conditions` replace
--   separately), and `revision_notes`, merged per opset. Keys an entry carries but a patch cannot set
--   (name, kind, field, versions, version_specs, revision_specs, origin, overridden, opset, version,
--   version_spec, introduced_spec when introduced is given) are ignored, so an entry from get() can be
--   modified and passed back. Any other key raises.
--     optable.override("gather", {eligibility = {ANE = {status = "yes"}}})
--     optable.add("my_fused_op", {introduced = "iOS17", category = "attention"})
--     optable.reset("gather")
local corelib = require("mlsh.core")
local core = corelib.optable
local cspec = corelib.spec
local spec = require("mlsh.spec")

local optable = {}

local patchlib = require("mlsh.optable_patch")
local OPSETS, UNITS, set_of, resolve_opset = patchlib.OPSETS, patchlib.UNITS, patchlib.set_of, patchlib.resolve_opset
local guarded, want = patchlib.guarded, patchlib.want
local norm_op_patch, norm_layer_patch = patchlib.norm_op_patch, patchlib.norm_layer_patch
local FILTERS = set_of({"available", "new", "revised", "changed"})

local BUILTIN_OPS = core.names()
local BUILTIN_OP_SET = set_of(BUILTIN_OPS)

-- override state
local op_patches, op_added, layer_patches, layer_added = {}, {}, {}, {}
local op_cache, layer_cache = {}, {} -- merged entries (never handed out; get returns copies)

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

local function argerror(fname, n, expected, v)
  -- level 4: argerror <- check_* <- the API function <- its caller
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(v)), 4)
end

local function check_string(fname, n, v)
  if type(v) ~= "string" then argerror(fname, n, "string", v) end
end

local function check_table(fname, n, v)
  if type(v) ~= "table" then argerror(fname, n, "table", v) end
end

local function check_name_or_int(fname, n, v)
  if type(v) ~= "string" and math.type(v) ~= "integer" then argerror(fname, n, "string or integer", v) end
end

local function check_opset_arg(fname, n, v)
  if type(v) ~= "string" and math.type(v) ~= "integer" then argerror(fname, n, "opset name or spec number", v) end
end


function optable.opset(v)
  check_opset_arg("opset", 1, v)
  return resolve_opset(v)
end

function optable.opsets() return copy(OPSETS) end
function optable.conditions() return core.conditions() end
function optable.general_facts() return core.general_facts() end
function optable.statuses() return core.statuses() end
function optable.sources() return core.sources() end
function optable.units() return copy(UNITS) end
-- Per-chip column (entry.chips, read-only data from core/optable_chips.c): Neural Engine families
-- A13..A16 with status native / emulated / walled / unknown, note, source, ref, and chip conditions
-- {id, text, values = {A13 = n, ...}}; optable.chip_conditions() hold for every op.
function optable.chips() return core.chips() end
function optable.chip_statuses() return core.chip_statuses() end
function optable.chip_conditions() return core.chip_conditions() end

---------------------------------------------------------------------------- patch validation

local function apply_patch(e, p)
  for k, v in pairs(p) do
    if k == "eligibility" then
      e.eligibility = e.eligibility or {}
      for unit, u in pairs(v) do
        local cur = e.eligibility[unit] or {status = "unknown", conditions = {}}
        if u.status ~= nil then cur.status = u.status end
        if u.conditions ~= nil then cur.conditions = copy(u.conditions) end
        e.eligibility[unit] = cur
      end
    elseif k == "revision_notes" then
      e.revision_notes = e.revision_notes or {}
      for o, text in pairs(v) do e.revision_notes[o] = text end
    else
      e[k] = copy(v)
    end
  end
end

-- Recompute the derived fields of an op entry and check it is consistent.
local function finalize_op(e)
  local intro = e.introduced_spec
  e.revision_specs, e.versions, e.version_specs = {}, {e.introduced}, {intro}
  local keep = {}
  for i, r in ipairs(e.revisions) do
    local rs = spec.from_target(r)
    want(rs > intro, "revision %s is not after introduced %s", r, e.introduced)
    e.revision_specs[i] = rs
    e.versions[#e.versions + 1] = r
    e.version_specs[#e.version_specs + 1] = rs
    keep[r] = true
  end
  for o in pairs(e.revision_notes) do
    if not keep[o] then e.revision_notes[o] = nil end
  end
end

local function default_eligibility()
  local el = {}
  for _, u in ipairs(UNITS) do el[u] = {status = "unknown", conditions = {}} end
  return el
end

local function build_op(name)
  local e, origin
  if BUILTIN_OP_SET[name] then
    e, origin = core.get(name), "builtin"
  elseif op_added[name] then
    e, origin = copy(op_added[name]), "added"
  else
    return nil
  end
  local patches = op_patches[name]
  if patches then
    for _, p in ipairs(patches) do apply_patch(e, p) end
    finalize_op(e)
  end
  e.origin, e.overridden = origin, patches ~= nil
  return e
end

local function merged_op(name)
  local e = op_cache[name]
  if not e then
    e = build_op(name)
    op_cache[name] = e
  end
  return e
end

local function all_op_names()
  local names = copy(BUILTIN_OPS)
  local extra = {}
  for n in pairs(op_added) do extra[#extra + 1] = n end
  if #extra > 0 then
    for _, n in ipairs(extra) do names[#names + 1] = n end
    table.sort(names)
  end
  return names
end

local function has_spec(list, s)
  for _, x in ipairs(list) do
    if x == s then return true end
  end
  return false
end

local function version_spec_at(e, s)
  if s < e.introduced_spec then return nil end
  local v = e.introduced_spec
  for _, rs in ipairs(e.revision_specs) do
    if rs <= s and rs > v then v = rs end
  end
  return v
end

---------------------------------------------------------------------------- MIL op API

function optable.get(name, opset)
  check_string("get", 1, name)
  if opset ~= nil then check_opset_arg("get", 2, opset) end
  local e = merged_op(name)
  if not e then return nil, string.format("unknown MIL op '%s'", name) end
  e = copy(e)
  if opset ~= nil then
    local oname, s = resolve_opset(opset)
    if not oname then return nil, s end
    local v = version_spec_at(e, s)
    if not v then
      return nil, string.format("MIL op '%s' is not in opset %s (introduced %s)", name, oname, e.introduced)
    end
    e.opset, e.version, e.version_spec = oname, spec.target_name(v), v
  end
  return e
end

function optable.exists(name, opset)
  check_string("exists", 1, name)
  if opset ~= nil then check_opset_arg("exists", 2, opset) end
  local e = merged_op(name)
  if opset == nil then return e ~= nil end
  local oname, s = resolve_opset(opset)
  if not oname then return nil, s end
  return e ~= nil and s >= e.introduced_spec
end

function optable.version_at(name, opset)
  check_string("version_at", 1, name)
  check_opset_arg("version_at", 2, opset)
  local e = merged_op(name)
  if not e then return nil, string.format("unknown MIL op '%s'", name) end
  local oname, s = resolve_opset(opset)
  if not oname then return nil, s end
  local v = version_spec_at(e, s)
  if not v then return nil, string.format("MIL op '%s' is not in opset %s (introduced %s)", name, oname, e.introduced) end
  return spec.target_name(v), v
end

function optable.list(opset, filter)
  if opset ~= nil then check_opset_arg("list", 1, opset) end
  if filter ~= nil then
    check_string("list", 2, filter)
    if not FILTERS[filter] then
      error(string.format("bad argument #2 to 'list' (available, new, revised or changed expected, got '%s')", filter), 2)
    end
    if opset == nil then error("bad argument #1 to 'list' (a filter needs an opset)", 2) end
  end
  local names = all_op_names()
  if opset == nil then return names end
  local oname, s = resolve_opset(opset)
  if not oname then return nil, s end
  filter = filter or "available"
  local out = {}
  for _, n in ipairs(names) do
    local e = merged_op(n)
    local is_new, is_rev = e.introduced_spec == s, has_spec(e.revision_specs, s)
    local keep
    if filter == "available" then keep = s >= e.introduced_spec
    elseif filter == "new" then keep = is_new
    elseif filter == "revised" then keep = is_rev
    else keep = is_new or is_rev end
    if keep then out[#out + 1] = n end
  end
  return out
end

function optable.override(name, patch)
  check_string("override", 1, name)
  check_table("override", 2, patch)
  if not merged_op(name) then
    return nil, string.format("unknown MIL op '%s' (use optable.add for a new op)", name)
  end
  local p = guarded("override", norm_op_patch, name, patch)
  -- try the merge before keeping the patch, so an inconsistent one is refused whole
  local list = op_patches[name] or {}
  list[#list + 1] = p
  op_patches[name] = list
  local ok, err = pcall(build_op, name)
  if not ok then
    list[#list] = nil
    if #list == 0 then op_patches[name] = nil end
    if type(err) == "table" and err.msg then error("override: " .. err.msg, 2) end
    error(err, 0)
  end
  op_cache[name] = nil
  return optable.get(name)
end

function optable.add(name, entry)
  check_string("add", 1, name)
  check_table("add", 2, entry)
  if merged_op(name) then
    return nil, string.format("MIL op '%s' already exists; use optable.override to change it", name)
  end
  local p = guarded("add", norm_op_patch, name, entry)
  if p.introduced == nil then error("add: entry needs 'introduced' (an opset such as \"iOS17\")", 2) end
  local e = {name = name, kind = "mil", revisions = {}, revision_notes = {}, category = "other",
             eligibility = default_eligibility(), facts = {}}
  apply_patch(e, p)
  guarded("add", finalize_op, e)
  op_added[name] = e
  op_cache[name] = nil
  return optable.get(name)
end

function optable.reset(name)
  if name == nil then
    op_patches, op_added, layer_patches, layer_added = {}, {}, {}, {}
    op_cache, layer_cache = {}, {}
    return true
  end
  check_string("reset", 1, name)
  local had = op_patches[name] ~= nil or op_added[name] ~= nil
  op_patches[name], op_added[name], op_cache[name] = nil, nil, nil
  return had
end

function optable.overrides()
  local ops, layers = {}, {}
  local seen = {}
  for n in pairs(op_patches) do seen[n] = true end
  for n in pairs(op_added) do seen[n] = true end
  for n in pairs(seen) do ops[#ops + 1] = n end
  seen = {}
  for n in pairs(layer_patches) do seen[n] = true end
  for n in pairs(layer_added) do seen[n] = true end
  for n in pairs(seen) do layers[#layers + 1] = n end
  table.sort(ops)
  table.sort(layers)
  return {ops = ops, layers = layers}
end

---------------------------------------------------------------------------- NN layer API

-- Canonical name of a layer (builtin via C, case-insensitive; added: exact) or nil, msg.
local function layer_name(v)
  local l, err = cspec.nn_layer(v)
  if l then return l.name, "builtin" end
  if type(v) == "string" and layer_added[v] then return v, "added" end
  if math.type(v) == "integer" then
    for n, e in pairs(layer_added) do
      if e.field == v then return n, "added" end
    end
  end
  return nil, err
end

local function build_layer(name, origin)
  local e
  if origin == "builtin" then
    e = cspec.nn_layer(name)
    local el = core.layer(name)
    e.kind, e.category, e.eligibility, e.facts = "nn", el.category, el.eligibility, el.facts
  else
    e = copy(layer_added[name])
  end
  local patches = layer_patches[name]
  if patches then
    for _, p in ipairs(patches) do apply_patch(e, p) end
  end
  e.origin, e.overridden = origin, patches ~= nil
  return e
end

local function merged_layer(v)
  local name, origin = layer_name(v)
  if not name then return nil, origin end
  local e = layer_cache[name]
  if not e then
    e = build_layer(name, origin)
    layer_cache[name] = e
  end
  return e
end

function optable.layer(v)
  check_name_or_int("layer", 1, v)
  local e, err = merged_layer(v)
  if not e then return nil, err end
  return copy(e)
end

function optable.layers()
  local names = cspec.nn_layers()
  local extra = {}
  for n in pairs(layer_added) do extra[#extra + 1] = n end
  table.sort(extra)
  for _, n in ipairs(extra) do names[#names + 1] = n end
  return names
end

function optable.layer_min_spec(v, props)
  check_name_or_int("layer_min_spec", 1, v)
  if props ~= nil then check_table("layer_min_spec", 2, props) end
  local e, err = merged_layer(v)
  if not e then return nil, err end
  return spec.bumped(e.min_spec, e.bumps, props)
end

function optable.override_layer(v, patch)
  check_name_or_int("override_layer", 1, v)
  check_table("override_layer", 2, patch)
  local name, origin = layer_name(v)
  if not name then return nil, origin .. " (use optable.add_layer for a new layer type)" end
  local p = guarded("override_layer", norm_layer_patch, name, patch, false)
  local list = layer_patches[name] or {}
  list[#list + 1] = p
  layer_patches[name] = list
  layer_cache[name] = nil
  return optable.layer(name)
end

function optable.add_layer(name, entry)
  check_string("add_layer", 1, name)
  check_table("add_layer", 2, entry)
  if layer_name(name) then
    return nil, string.format("NeuralNetwork layer '%s' already exists; use optable.override_layer to change it", name)
  end
  local p = guarded("add_layer", norm_layer_patch, name, entry, true)
  if p.min_spec == nil then error("add_layer: entry needs 'min_spec'", 2) end
  local e = {name = name, kind = "nn", bumps = {}, category = "nn_other", eligibility = default_eligibility(), facts = {}}
  apply_patch(e, p)
  layer_added[name] = e
  layer_cache[name] = nil
  return optable.layer(name)
end

function optable.reset_layer(v)
  check_name_or_int("reset_layer", 1, v)
  local name = layer_name(v)
  if not name then return false end
  local had = layer_patches[name] ~= nil or layer_added[name] ~= nil
  layer_patches[name], layer_added[name], layer_cache[name] = nil, nil, nil
  return had
end

return optable
