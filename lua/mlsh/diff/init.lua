-- mlsh.diff — what changed between two models (the engine of `mlsh diff`).
--   local diff = require "mlsh.diff"
--   local r = diff.compare(ma, mb, { ignore = {weights = true}, compute_units = "ALL" })
--   r.sections[id] = {title, changes = n, ignored = bool, ...}; r.order = {ids}; r.differences = n
--   diff.to_json(r) -> the `mlsh diff --format json` object (docs/diff.md)
-- Both models are Core ML (any container) or both ONNX; anything else raises "A and B: ...".
-- Built on the public Model API only (inputs/outputs, functions, ops, inventory/weights,
-- required_spec, placement) plus mlsh check's own pipeline (mlsh.engine.check) for the rule findings and ONNX EP.
local mlsh = require "mlsh"
local align = require "mlsh.diff.align"
local dweights = require "mlsh.diff.weights"

local M = {}

M.SECTIONS = { "io", "spec", "histogram", "ops", "dtypes", "weights", "required_spec", "placement", "ep", "findings",
               "outputs" }
M.TITLES = { io = "Inputs and outputs", spec = "Spec version, OS and opsets", histogram = "Op histogram",
             ops = "Op-by-op alignment", dtypes = "Dtype changes", weights = "Weights",
             required_spec = "Required spec reasons", placement = "Predicted placement",
             ep = "ONNX Runtime CoreML EP partitions", findings = "Rule findings",
             outputs = "Outputs on shared inputs (mlsh run)" }
M.ONNX_SKIP = { required_spec = true, placement = true }
M.COREML_SKIP = { ep = true }

local shape_text = align.shape_text

-- ---- I/O ------------------------------------------------------------------------------------------
local function feature_text(f)
  local s = tostring(f.kind or "?")
  if f.dtype then s = s .. " " .. f.dtype end
  if f.shape then s = s .. " " .. shape_text(f.shape) end
  if f.width then s = s .. string.format(" %sx%s %s", tostring(f.width), tostring(f.height), tostring(f.color_space or "")) end
  local fl = f.flexibility
  if fl and fl.kind == "enumerated" then
    local p = {}
    for i, sh in ipairs(fl.shapes or {}) do p[i] = shape_text(sh) end
    s = s .. " enumerated{" .. table.concat(p, " ") .. "}"
  elseif fl and fl.kind == "range" then
    local p = {}
    for i, r in ipairs(fl.ranges or {}) do p[i] = tostring(r[1]) .. ".." .. tostring(r[2]) end
    s = s .. " range[" .. table.concat(p, ",") .. "]"
  end
  if f.optional then s = s .. " optional" end
  return s
end
M.feature_text = feature_text

local function io_section(ma, mb)
  local items = {}
  for _, kind in ipairs({ "inputs", "outputs", "states" }) do
    local fa = (ma[kind] and ma[kind](ma)) or {}
    local fb = (mb[kind] and mb[kind](mb)) or {}
    local ia, seen = {}, {}
    for _, f in ipairs(fa) do ia[f.name] = f end
    for _, f in ipairs(fb) do
      seen[f.name] = true
      local a = ia[f.name]
      local tb = feature_text(f)
      if not a then items[#items + 1] = { kind = kind:sub(1, -2), name = f.name, change = "added", after = tb }
      elseif feature_text(a) ~= tb then
        items[#items + 1] = { kind = kind:sub(1, -2), name = f.name, change = "changed", before = feature_text(a), after = tb }
      end
    end
    for _, f in ipairs(fa) do
      if not seen[f.name] then items[#items + 1] = { kind = kind:sub(1, -2), name = f.name, change = "removed", before = feature_text(f) } end
    end
  end
  return { items = items, changes = #items }
end

-- ---- spec, OS, opsets ------------------------------------------------------------------------------
local function spec_fields(m)
  local f = { format = m.format, model_type = m.model_type }
  if m.format == "onnx" then
    f.ir_version = m.ir_version
    for d, v in pairs(m.opsets or {}) do f["opset " .. (d == "" and "ai.onnx" or d)] = v end
  else
    local spec = require "mlsh.spec"
    f.spec_version = m.spec_version
    f.os = m.spec_version and spec.target_name(m.spec_version) or nil
    for _, fn in ipairs(m:functions()) do f["opset " .. fn.name] = fn.opset end
    local names = {}
    for i, fn in ipairs(m:functions()) do names[i] = fn.name end
    if #names > 0 then f.functions = table.concat(names, ",") end
  end
  return f
end

local function spec_section(ma, mb)
  local a, b = spec_fields(ma), spec_fields(mb)
  local keys, seen = {}, {}
  for k in pairs(a) do keys[#keys + 1] = k seen[k] = true end
  for k in pairs(b) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local items = {}
  for _, k in ipairs(keys) do
    local x, y = a[k], b[k]
    if tostring(x) ~= tostring(y) then
      items[#items + 1] = { field = k, before = x ~= nil and tostring(x) or nil, after = y ~= nil and tostring(y) or nil }
    end
  end
  -- a different container alone (.mlpackage vs .mlmodelc) is not a difference of the model
  local changes = 0
  for _, it in ipairs(items) do if it.field ~= "format" then changes = changes + 1 end end
  return { items = items, changes = changes }
end

-- ---- histogram -------------------------------------------------------------------------------------
local function histogram_section(ma, mb)
  local function hist(m)
    local h = m:op_histogram()
    if next(h) == nil and m.layer_histogram then h = m:layer_histogram() end
    return h
  end
  local ha, hb = hist(ma), hist(mb)
  local keys, seen = {}, {}
  for k in pairs(ha) do keys[#keys + 1] = k seen[k] = true end
  for k in pairs(hb) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local items, ta, tb = {}, 0, 0
  for _, k in ipairs(keys) do
    local x, y = ha[k] or 0, hb[k] or 0
    ta, tb = ta + x, tb + y
    if x ~= y then items[#items + 1] = { type = k, before = x, after = y, delta = y - x } end
  end
  return { items = items, changes = #items, total_before = ta, total_after = tb }
end

-- ---- ops and dtypes --------------------------------------------------------------------------------
local function ops_sections(ma, mb)
  local na, nb = align.nodes(ma), align.nodes(mb)
  local r = align.align(na, nb)
  local ops = { added = {}, removed = {}, changed = {}, aligned_by_name = r.by_name, aligned_by_structure = r.by_structure }
  local dt = { items = {}, pairs = {} }
  for _, n in ipairs(r.added) do ops.added[#ops.added + 1] = { ["function"] = n.fn, name = n.name, type = n.type } end
  for _, n in ipairs(r.removed) do ops.removed[#ops.removed + 1] = { ["function"] = n.fn, name = n.name, type = n.type } end
  local renamed = 0
  for _, p in ipairs(r.pairs) do
    local c = align.changes(p.a, p.b)
    if p.rewired then
      c = c or { attrs = {}, outputs = {} }
      c.rewired = true
    end
    if p.by == "structure" then renamed = renamed + 1 end
    if c then
      local what = {}
      if c.type then what[#what + 1] = "type " .. c.type[1] .. " -> " .. c.type[2] end
      for _, a in ipairs(c.attrs) do what[#what + 1] = string.format("%s: %s -> %s", a.name, a.a or "(none)", a.b or "(none)") end
      for _, o in ipairs(c.outputs) do
        what[#what + 1] = string.format("output %d %s: %s -> %s", o.index, o.field, o.a, o.b)
        if o.field == "dtype" then
          dt.items[#dt.items + 1] = { ["function"] = p.b.fn, op = p.b.name, type = p.b.type, output = o.name,
                                      before = o.a, after = o.b }
          local k = o.a .. " -> " .. o.b
          dt.pairs[k] = (dt.pairs[k] or 0) + 1
        end
      end
      if c.inputs then what[#what + 1] = string.format("inputs: %d -> %d", c.inputs[1], c.inputs[2]) end
      if c.rewired then what[#what + 1] = "inputs come from other ops" end
      ops.changed[#ops.changed + 1] = { ["function"] = p.b.fn, name = p.b.name, before_name = p.a.name,
                                        type = p.b.type, by = p.by, what = what }
    end
  end
  ops.renamed = renamed
  ops.changes = #ops.added + #ops.removed + #ops.changed
  dt.changes = #dt.items
  return ops, dt, r
end

-- ---- required spec ---------------------------------------------------------------------------------
local function required_section(ma, mb)
  local ra, rb = ma:required_spec(), mb:required_spec()
  local function set(r)
    local s = {}
    for _, x in ipairs(r.reasons or {}) do s[x.what] = x end
    return s
  end
  local sa, sb = set(ra), set(rb)
  local out = { before = ra.version, after = rb.version, appeared = {}, gone = {} }
  for _, x in ipairs(rb.reasons or {}) do
    if not sa[x.what] then out.appeared[#out.appeared + 1] = { spec = x.spec, what = x.what } end
  end
  for _, x in ipairs(ra.reasons or {}) do
    if not sb[x.what] then out.gone[#out.gone + 1] = { spec = x.spec, what = x.what } end
  end
  out.changes = #out.appeared + #out.gone + (ra.version ~= rb.version and 1 or 0)
  return out
end

-- ---- placement ------------------------------------------------------------------------------------
local function placement_summary(p)
  local dev = { ANE = 0, GPU = 0, CPU = 0 }
  for _, o in ipairs(p.ops) do dev[o.device] = (dev[o.device] or 0) + 1 end
  return { ane_ops = p.ane_coverage.ops, ane_work = p.ane_coverage.work, segments = #p.segments,
           transitions = #p.transitions, devices = dev, ops = #p.ops }
end

local function placement_section(ma, mb, opts, r)
  local pa = ma:placement({ compute_units = opts.compute_units, calibrated = opts.calibrated })
  local pb = mb:placement({ compute_units = opts.compute_units, calibrated = opts.calibrated })
  local out = { before = placement_summary(pa), after = placement_summary(pb), moved = {} }
  local dev_a = {}
  for _, o in ipairs(pa.ops) do dev_a[(o.model or "") .. "\0" .. (o["function"] or "main") .. "\0" .. o.op] = o end
  -- ops aligned by structure were renamed: look the old name up
  local old_name = {}
  for _, p in ipairs(r.pairs) do
    if p.by == "structure" then old_name[p.b.fn .. "\0" .. p.b.name] = p.a.name end
  end
  for _, o in ipairs(pb.ops) do
    local fn = o["function"] or "main"
    local name = old_name[fn .. "\0" .. o.op] or o.op
    local a = dev_a[(o.model or "") .. "\0" .. fn .. "\0" .. name]
    if a and a.device ~= o.device then
      out.moved[#out.moved + 1] = { ["function"] = o["function"], op = o.op, type = o.type, before = a.device,
                                    after = o.device, reason = o.reason }
    end
  end
  local b, a = out.before, out.after
  local summary_changed = b.segments ~= a.segments or b.transitions ~= a.transitions
    or math.abs(b.ane_ops - a.ane_ops) > 1e-9 or math.abs(b.ane_work - a.ane_work) > 1e-6
  out.changes = #out.moved + (summary_changed and 1 or 0)
  return out
end

-- ---- findings and EP (mlsh check's own path) -------------------------------------------------------
local function check_of(m, opts)
  local check = require "mlsh.engine.check"
  local rules = mlsh.rules
  local set = opts.rule_set
  if not set then
    local err
    set, err = rules.discover({ dirs = opts.rules or {}, builtin = true })
    if not set then error(err, 0) end
    opts.rule_set = set
  end
  local select = rules.selector(nil, set)
  local report = check.model(m, { compute_units = opts.compute_units or "ALL", model_format = "mlprogram",
                                    calibrated = opts.calibrated }, set, select)
  return report
end
M.check_of = check_of

local function finding_key(f)
  local loc = f.location or {}
  local where = {}
  for _, k in ipairs({ "function", "op", "feature", "layer", "value", "weight" }) do
    if loc[k] ~= nil and type(loc[k]) ~= "userdata" then where[#where + 1] = k .. "=" .. tostring(loc[k]) end
  end
  return f.rule .. "|" .. f.severity .. "|" .. table.concat(where, ",") .. "|" .. (next(where) and "" or tostring(f.message))
end

local function findings_section(ca, cb)
  local function bag(rep)
    local b = {}
    for _, f in ipairs(rep.findings) do
      local k = finding_key(f)
      b[k] = b[k] or {}
      table.insert(b[k], f)
    end
    return b
  end
  local ba, bb = bag(ca), bag(cb)
  local out = { before = ca.summary, after = cb.summary, appeared = {}, gone = {} }
  local function diff(x, y, into)
    for _, f in ipairs(x.findings) do
      local k = finding_key(f)
      local other = y[k]
      if other and #other > 0 then table.remove(other, 1)
      else into[#into + 1] = { rule = f.rule, severity = f.severity, message = f.message, fix = f.fix } end
    end
  end
  diff(cb, ba, out.appeared)
  diff(ca, bb, out.gone)
  out.changes = #out.appeared + #out.gone
  return out
end

local function ep_summary(ep)
  local sizes = {}
  for i, s in ipairs(ep.partition_sizes or {}) do sizes[i] = s end
  return { partitions = #(ep.partitions or {}), supported_nodes = ep.supported_nodes, nodes = ep.nodes,
           partition_sizes = sizes, verdict = ep.verdict }
end

local function ep_section(ca, cb)
  local a, b = ep_summary(ca.ep), ep_summary(cb.ep)
  local out = { before = a, after = b, taken = {}, dropped = {} }
  local function unsup(ep)
    local s = {}
    for _, u in ipairs(ep.unsupported or {}) do s[tostring(u.name or u.node) .. "\0" .. u.op] = u end
    return s
  end
  local ua, ub = unsup(ca.ep), unsup(cb.ep)
  for k, u in pairs(ua) do
    if not ub[k] then out.taken[#out.taken + 1] = { node = tostring(u.name or u.node), op = u.op } end
  end
  for k, u in pairs(ub) do
    if not ua[k] then out.dropped[#out.dropped + 1] = { node = tostring(u.name or u.node), op = u.op, reason = u.reason } end
  end
  local function by_node(x, y) return x.node < y.node end
  table.sort(out.taken, by_node)
  table.sort(out.dropped, by_node)
  local changed = a.partitions ~= b.partitions or a.supported_nodes ~= b.supported_nodes or a.nodes ~= b.nodes
    or table.concat(a.partition_sizes, ",") ~= table.concat(b.partition_sizes, ",")
  out.changes = #out.taken + #out.dropped + (changed and 1 or 0)
  return out
end

-- ---- outputs: both models run by the interpreter on the same inputs (--outputs) -------------------------
-- o: {inputs = {name = file}, random = seed, threshold = dB}. A difference is an output whose values
-- differ at all (SNR below infinity) or that one side lacks; the first op below the threshold is the
-- first of the ops both programs name alike.
local function outputs_section(ma, mb, o)
  local outputs, ops, first = require("mlsh.compare_outputs").compare(ma, mb, { inputs = o.inputs or {},
    random = o.random or (next(o.inputs or {}) == nil and 0 or nil), samples = 1, threshold = o.threshold or 30,
    precision = "model" })
  local out = { items = {}, threshold = o.threshold or 30, ops_matched = #ops, changes = 0 }
  for _, r in ipairs(outputs) do
    out.items[#out.items + 1] = { name = r.name, snr_db = r.snr, max_abs_err = r.max_abs, top1_agreement = r.top1,
                                  missing = r.missing or false }
    if r.missing or r.snr ~= math.huge then out.changes = out.changes + 1 end
  end
  if first then out.first_below = { op = first.op, type = first.type, snr_db = first.snr } end
  return out
end

-- ---- the whole comparison ---------------------------------------------------------------------------
function M.compare(ma, mb, opts)
  opts = opts or {}
  local onnx_a, onnx_b = ma.format == "onnx", mb.format == "onnx"
  if onnx_a ~= onnx_b then
    error(string.format("%s and %s: one is ONNX and the other Core ML (diff compares Core ML with Core ML, ONNX with ONNX)",
      ma.path, mb.path), 0)
  end
  local r = { a = { path = ma.path, format = ma.format, model_type = ma.model_type },
              b = { path = mb.path, format = mb.format, model_type = mb.model_type },
              kind = onnx_a and "onnx" or "coreml", sections = {}, order = {}, differences = 0 }
  local skip = onnx_a and M.ONNX_SKIP or M.COREML_SKIP
  local s = r.sections
  s.io = io_section(ma, mb)
  s.spec = spec_section(ma, mb)
  s.histogram = histogram_section(ma, mb)
  local alignment
  s.ops, s.dtypes, alignment = ops_sections(ma, mb)
  local old_name = {}
  for _, p in ipairs(alignment.pairs) do
    if p.by == "structure" then old_name[p.b.fn .. "\0" .. p.b.name] = p.a.name end
  end
  s.weights = dweights.compare(ma, mb, { old_op_name = function(fn, op) return old_name[fn .. "\0" .. op] end })
  if not skip.required_spec then s.required_spec = required_section(ma, mb) end
  if not skip.placement then s.placement = placement_section(ma, mb, opts, alignment) end
  local ca, cb = check_of(ma, opts), check_of(mb, opts)
  if not skip.ep then s.ep = ep_section(ca, cb) end
  s.findings = findings_section(ca, cb)
  if opts.outputs then
    if onnx_a then error("--outputs runs Core ML programs; ONNX models are not run by mlsh", 0) end
    s.outputs = outputs_section(ma, mb, opts.outputs)
  end
  r.checks = { a = ca, b = cb }
  for _, id in ipairs(M.SECTIONS) do
    if s[id] then
      r.order[#r.order + 1] = id
      s[id].title = M.TITLES[id]
      s[id].ignored = (opts.ignore or {})[id] or false
      if not s[id].ignored then r.differences = r.differences + s[id].changes end
    end
  end
  return r
end

-- "weights,findings" -> {weights = true, ...} | nil, msg
function M.parse_ignore(s)
  local out, known = {}, {}
  for _, id in ipairs(M.SECTIONS) do known[id] = true end
  for item in tostring(s):gmatch("[^,%s]+") do
    if not known[item] then
      return nil, string.format("unknown section '%s' for --ignore (%s)", item, table.concat(M.SECTIONS, ", "))
    end
    out[item] = true
  end
  return out
end

return M
