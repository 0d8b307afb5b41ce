-- mlsh.placement.coreml — predict where Core ML runs each op (ANE, GPU or CPU) for a compute-unit setting,
-- from the eligibility data in mlsh.optable, and summarise it: segments (maximal runs on one
-- device), transitions, ANE coverage by op count and by estimated work, and the ranked ops that cut
-- the ANE runs ("cut-makers") with a fix for each.
--
--   local placement = require "mlsh.placement.coreml"
--   local p = placement.simulate(m, { compute_units = "ALL", target = 8, fallbacks = {...}, device = nil })
--   p.ops[i]        = {function, op, type, device, reason, why, flops, bytes, work, model?, index}
--   p.segments[i]   = {device, first, last, count, function, model?, work}
--   p.transitions[i]= {from, to, after, before, function, kind = "ANE-CPU", cost = "cheap"|"moderate"|"costly"}
--   p.ane_coverage  = {ops = 0..1, work = 0..1};  p.cut_makers[i] = {type, why, reason, count, ops, transitions, work_share, fix}
--   m:placement(opts) is the same call.
--
-- Core ML's real placement is a black box (MLComputePlan on a device is the ground truth); this is
-- a documented heuristic. Policy, in order:
--   1. a team fallback{} matching the op (and its `when`/`os`) decides;
--   2. the ANE when the tables say "yes" and every condition holds;
--      status "unknown" for an op of a benign category (tensor, elementwise, reduce...) is "maybe":
--      it goes to the ANE unless that would add a device switch (it then stays with its neighbour);
--   3. otherwise, with ALL, the GPU for heavy ops or when already on the GPU (Core ML "switches to the
--      GPU once and stays"), the CPU for light ops between ANE ops (ANE<->CPU hops are cheap);
--      with CPU_AND_GPU the GPU when eligible; the CPU last, always.
-- Ops the tables do not know get a stated default (CPU, not ANE); nothing here raises on a model.
local spec = require "mlsh.spec"

local M = {}

M.UNITS = { ALL = { "ANE", "GPU", "CPU" }, CPU_AND_NE = { "ANE", "CPU" }, CPU_AND_GPU = { "GPU", "CPU" },
            CPU_ONLY = { "CPU" } }
M.UNIT_NAMES = { "ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY" }
local ALIASES = { all = "ALL", cpu_and_ne = "CPU_AND_NE", cpu_and_neural_engine = "CPU_AND_NE",
                  cpuandneuralengine = "CPU_AND_NE", cpu_and_gpu = "CPU_AND_GPU", cpuandgpu = "CPU_AND_GPU",
                  cpu_only = "CPU_ONLY", cpuonly = "CPU_ONLY", cpu_ne = "CPU_AND_NE", ane = "CPU_AND_NE" }

-- "all" / "CPU_AND_NE" / "cpu-and-gpu" / "cpuOnly" -> canonical name | nil, msg
function M.compute_units(s)
  if s == nil then return "ALL" end
  if type(s) ~= "string" then return nil, "compute units must be a string" end
  local k = s:gsub("%-", "_"):lower()
  local name = ALIASES[k]
  if not name then
    return nil, string.format("unknown compute units '%s' (all, cpu_and_ne, cpu_and_gpu, cpu_only)", s)
  end
  return name
end

-- Categories whose "unknown" status is taken as "maybe eligible": cheap tensor plumbing and math
-- that every unit implements; the others (data-dependent, control flow, lists, random, gather,
-- recurrent, custom) stay off a unit until a fact says otherwise.
M.OPTIMISTIC = { tensor = true, elementwise = true, elementwise_binary = true, activation = true, reduce = true,
                 other = true, resize = true, attention = true, softmax = true, norm = true, linear = true,
                 conv = true, conv_transpose = true, pool = true, quantize = true, state = true,
                 nn_other = true, nn_legacy = true, nn_conv = true, nn_pool = true, nn_upsample = true,
                 nn_multiply = true }
-- Ops heavy enough that Core ML keeps them on the GPU rather than hopping to the CPU.
M.HEAVY = { conv = true, conv_transpose = true, linear = true, attention = true, pool = true, norm = true,
            nn_conv = true, nn_pool = true, recurrent = true, nn_recurrent = true }

-- Fixes for the reason an op is not on the ANE (keyed by `why`).
local GATHER_FIX = "do the embedding lookup outside the model (look up on the CPU, feed the vectors in), or keep "
  .. "lookups at the start of the graph so they cost one ANE<->CPU switch"
local RECURRENT_FIX = "replace LSTM/GRU/RNN with convolutions or attention, or unroll a short fixed-length sequence "
  .. "into matmuls; otherwise expect CPU execution"
local CUSTOM_FIX = "implement the custom layer with built-in layers/ops (then it can also run on the Neural Engine)"
M.FIXES = {
  dtype = "convert with compute_precision=ct.precision.FLOAT16 (the ML program default); keep only "
    .. "precision-sensitive ops in fp32 with ct.transform.FP16ComputePrecision(op_selector=...)",
  max_rank = "reshape to rank <= 4; the ANE layout is (B, C, 1, S)",
  max_dim = "split the tensor so that no dimension exceeds 16384 (the cap through A15 / M3; A16 / M4 and newer take "
    .. "65536: mlsh check --device M4)",
  shapes = "use ct.EnumeratedShapes with the few shapes you need (or a fixed shape) instead of ct.RangeDim",
  max_dilation = "replace dilated convolutions (space_to_batch + conv + batch_to_space, or larger dense kernels), "
    .. "or accept GPU execution for them",
  max_kernel = "use pooling kernels <= 13 (stack smaller pools)",
  max_stride = "use pooling strides <= 2 (stack pools)",
  max_scale_factor = "upsample in steps of 2x",
  no_channel_broadcast = "tile the C x 1 x 1 operand to C x H x W, or fold the scale into a conv",
  small_table = GATHER_FIX,
  device = "int8 activation compute needs an A17 Pro / M4 class ANE; use weight-only quantization elsewhere",
  gather = GATHER_FIX,
  nn_gather = GATHER_FIX,
  recurrent = RECURRENT_FIX,
  nn_recurrent = RECURRENT_FIX,
  nn_custom = CUSTOM_FIX,
  custom = CUSTOM_FIX,
  nn_nd = "use the rank-3 legacy layers (add, concat, split, loadConstant ...) or re-convert to an ML program",
  data_dependent = "move data-dependent ops (topk, argsort, nms, non_zero) to the end of the model or out of it",
  control_flow = "unroll or remove control flow (cond / while_loop) from the hot path",
  list = "avoid MIL list ops (dynamic sequences); use fixed-size tensors",
  random = "remove random ops from the inference graph (export in eval mode)",
  unknown_op = "check the op on a device with MLComputePlan / the Xcode performance report",
  not_nn = "none needed: non-neural models run on the CPU",
}
for k, v in pairs(require("mlsh.placement.evidence").FIXES) do M.FIXES[k] = v end

-- ---- nodes: mlsh.placement.nodes ----------------------------------------------------------------------
local nodeview = require "mlsh.placement.nodes"
local collect, max_of = nodeview.collect, nodeview.max_of
M.flex_kind, M.compute_dtype_of, M.collect = nodeview.flex_kind, nodeview.compute_dtype_of, nodeview.collect_all

-- ---- eligibility -----------------------------------------------------------------------------------

local function fmt_num(x)
  if math.type(x) == "integer" or x == math.floor(x) then return string.format("%d", x) end
  return string.format("%.3g", x)
end

-- Condition checks: return holds, detail (what was seen). Missing information holds (stated).
local CHECK = {}
function CHECK.dtype(c, node)
  local dt = node.compute_dtype
  if not dt then return true, "dtype unknown" end
  for _, v in ipairs(c.values or {}) do
    if v == dt then return true end
  end
  return false, "computes in " .. dt
end
function CHECK.max_rank(c, node)
  for _, t in ipairs(node.tensors) do
    if t.shape and #t.shape > c.value then return false, string.format("a rank-%d tensor", #t.shape) end
  end
  return true
end
function CHECK.max_dim(c, node)
  for _, t in ipairs(node.tensors) do
    for _, d in ipairs(t.shape or {}) do
      if d > c.value then return false, string.format("a dimension of %d", d) end
    end
  end
  return true
end
function CHECK.shapes(c, node)
  local k = node.shape_kind or "static"
  for _, v in ipairs(c.values or {}) do
    if v == k then return true end
  end
  return false, (k == "range" and "flexible (range) input shapes" or "data-dependent shapes")
end
local function limit(field, what)
  return function(c, node)
    local m = max_of(node.params[field])
    if m and m > c.value then return false, string.format("%s %s", what, fmt_num(m)) end
    return true
  end
end
CHECK.max_dilation = limit("dilations", "dilation")
CHECK.max_kernel = limit("kernel", "kernel size")
CHECK.max_stride = limit("strides", "stride")
CHECK.max_scale_factor = limit("scale_factors", "scale factor")
function CHECK.no_channel_broadcast(_, node)
  if node.channel_broadcast then return false, "C x H x W broadcast against C x 1 x 1" end
  return true
end
function CHECK.small_table() return true, "no threshold known" end
function CHECK.device(c, _, ctx)
  if ctx.device then
    for _, v in ipairs(c.values or {}) do
      if v == ctx.device then return true end
    end
    return false, "device " .. ctx.device
  end
  return true, "device not given; assumed " .. table.concat(c.values or {}, " / ")
end
M.CHECK = CHECK

local function unit_fact(entry, unit)
  for _, f in ipairs(entry.facts or {}) do
    if f.text:find(unit, 1, true) then return f end
  end
  return nil
end

-- One unit's verdict for a node: "yes" | "maybe" | "no", why (short code), text (the reason).
local function verdict(node, unit, ctx)
  local e = node.entry
  if node.kind == "model" then
    if unit == "CPU" then return "yes", "not_nn", "Core ML runs " .. node.type .. " models on the CPU" end
    return "no", "not_nn", node.type .. " is not a neural network"
  end
  if not e then
    if unit == "CPU" then return "yes", "unknown_op", "unknown op type: the CPU is assumed" end
    return "no", "unknown_op", string.format("'%s' is not in mlsh's tables (assumed not %s)", node.type, unit)
  end
  if node.io_cast then
    return "maybe", "io_cast", "fp32<->fp16 conversion of a model input/output (done at the boundary of the unit "
      .. "running its neighbour)"
  end
  local el = e.eligibility and e.eligibility[unit] or { status = "unknown", conditions = {} }
  if el.status == "no" or el.status == "unlikely" then
    local f = unit_fact(e, unit)
    local why = (e.category == "gather" or e.category == "nn_gather") and "gather" or e.category
    return "no", why, string.format("%s %s on the %s%s", e.name, el.status == "no" and "does not run" or "is unlikely to run",
      unit, f and (" (" .. f.text .. "; " .. f.source .. ")") or "")
  end
  for _, c in ipairs(el.conditions or {}) do
    local check = CHECK[c.id]
    if check then
      local ok, detail = check(c, node, ctx)
      if not ok then
        return "no", c.id, string.format("%s: %s [%s]", detail or c.id, c.text, c.source or "?")
      end
    end
  end
  if el.status == "yes" then return "yes", "eligible", "eligible on the " .. unit end
  if M.OPTIMISTIC[e.category] then
    return "maybe", "unknown", string.format("no specific fact for the %s (%s op assumed eligible)", unit, e.category)
  end
  return "no", e.category, string.format("no fact says %s runs on the %s (%s ops are not assumed eligible)",
    e.name, unit, e.category)
end
M.verdict = verdict

-- ---- team fallbacks ---------------------------------------------------------------------------------

local function os_matches(constraint, os)
  if not constraint then return true end
  if not os then return false end
  local opn, v = constraint:match("^%s*([<>=]*)%s*([%d%.]+)%s*$")
  v = tonumber(v and v:match("^%d+%.?%d*") or "")
  if not v then return false end
  if opn == ">=" then return os >= v
  elseif opn == ">" then return os > v
  elseif opn == "<=" then return os <= v
  elseif opn == "<" then return os < v
  else return os == v end
end
M.os_matches = os_matches

local function fallback_for(node, ctx, notes)
  for _, fb in ipairs(ctx.fallbacks or {}) do
    local match = false
    for _, t in ipairs(fb.ops) do
      if t == node.type then match = true end
    end
    if match and os_matches(fb.os, ctx.os) then
      local ok, res = true, true
      if fb.when then
        ok, res = require("mlsh.sandbox").guarded_call("fallback for " .. tostring(fb.op), fb.when, node.raw, { node = node, compute_units = ctx.compute_units, target = ctx.target,
          os = ctx.os, ["function"] = node["function"], model = ctx.model })
      end
      if not ok then
        notes[#notes + 1] = string.format("fallback %s (%s) raised: %s", fb.source or "?", node.type, tostring(res))
      elseif res then
        return fb
      end
    end
  end
  return nil
end

-- ---- the simulation ---------------------------------------------------------------------------------

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

local function place_seq(seq, ctx, out_ops, notes)
  local allowed = M.UNITS[ctx.compute_units]
  local has_ane, has_gpu = contains(allowed, "ANE"), contains(allowed, "GPU")
  local nodes = seq.nodes
  local V = {}
  for i, node in ipairs(nodes) do
    V[i] = {}
    for _, u in ipairs({ "ANE", "GPU", "CPU" }) do
      local v, why, text = verdict(node, u, ctx)
      V[i][u] = { v = v, why = why, text = text }
    end
    V[i].fallback = fallback_for(node, ctx, notes)
  end
  -- the next op (after i) whose placement on `unit` is decided by a hard fact: "yes" or "no"
  local function next_hard_is(i, unit)
    for j = i + 1, #nodes do
      if V[j].fallback then return V[j].fallback.device == unit end
      local v = V[j][unit].v
      if v == "yes" then return true end
      if v == "no" then return false end
    end
    return false
  end
  local prev
  local placed = {}
  for i, node in ipairs(nodes) do
    local v = V[i]
    local device, reason, why
    local not_ane = has_ane and v.ANE.v ~= "yes" and v.ANE.v ~= "maybe" and ("not ANE: " .. v.ANE.text) or nil
    if v.fallback then
      local fb = v.fallback
      device = contains(allowed, fb.device) and fb.device or "CPU"
      why = "fallback"
      reason = string.format("team fallback (%s): %s%s", fb.source or "?", fb.reason,
        device ~= fb.device and (" (" .. fb.device .. " not in " .. ctx.compute_units .. ")") or "")
    elseif not has_ane and not has_gpu then
      device, why, reason = "CPU", "compute_units", "compute units CPU_ONLY"
    elseif has_ane and v.ANE.v == "yes" then
      device, why, reason = "ANE", "eligible", "ANE: every condition holds"
    elseif has_ane and v.ANE.v == "maybe" and (prev == nil or prev == "ANE" or next_hard_is(i, "ANE")
        or (v[prev] and v[prev].v == "no")) then
      device, why, reason = "ANE", "assumed", "ANE assumed: " .. v.ANE.text
    elseif has_ane and v.ANE.v == "maybe" then
      device, why = prev, "neighbour"
      reason = string.format("%s; stays on the %s with its neighbours (avoids a switch)", v.ANE.text, prev)
    else
      -- not on the ANE: GPU or CPU
      local g = v.GPU.v
      local heavy = M.HEAVY[node.entry and node.entry.category or ""]
      local on_gpu
      if not has_gpu or g == "no" then
        on_gpu = false
      elseif has_ane then
        -- ALL: heavy ops go to the GPU (and the run stays there); light ops only stay on it
        on_gpu = prev == "GPU" or (heavy and g == "yes")
      else
        on_gpu = g == "yes" or prev == nil or prev == "GPU" or next_hard_is(i, "GPU")
      end
      if on_gpu then
        device, why = "GPU", has_ane and v.ANE.why or "eligible"
        reason = (not_ane and (not_ane .. "; ") or "") .. (g == "yes" and "GPU eligible" or "GPU assumed: " .. v.GPU.text)
      else
        device, why = "CPU", has_ane and v.ANE.why or (has_gpu and v.GPU.why or "compute_units")
        local tail
        if v.CPU.v == "no" then tail = "no unit is eligible; Core ML falls back to the CPU"
        elseif has_gpu and g ~= "no" then tail = "CPU (light op; avoids a GPU switch)"
        elseif has_gpu then tail = "not GPU: " .. v.GPU.text
        else tail = "CPU" end
        reason = (not_ane and (not_ane .. "; ") or "") .. tail
      end
    end
    prev = device
    placed[i] = device
    out_ops[#out_ops + 1] = { ["function"] = node["function"], model = node.model, op = node.name, type = node.type,
      device = device, reason = reason, why = why, flops = node.flops or 0, bytes = node.bytes or 0,
      work = (node.flops or 0) + (node.bytes or 0), kind = node.kind, node = node, seq = seq }
  end
  return placed
end

local function transition_kind(a, b)
  local pair = (a < b) and (a .. "-" .. b) or (b .. "-" .. a)
  local cost = ({ ["ANE-CPU"] = "cheap", ["CPU-GPU"] = "moderate", ["ANE-GPU"] = "costly" })[pair] or "moderate"
  return a .. "-" .. b, cost
end

-- Simulate one model. opts: compute_units ("ALL"...), target (spec number; default the model's),
-- fallbacks (from mlsh.rules), device (e.g. "A17 Pro"; only for the int8 activation condition).
function M.simulate(m, opts)
  opts = opts or {}
  local cu, err = M.compute_units(opts.compute_units)
  if not cu then error(err, 2) end
  local target = opts.target or m.spec_version
  local info = type(target) == "number" and spec.info(math.tointeger(target) or 0) or nil
  local ctx = { compute_units = cu, target = target, os = info and tonumber((info.ios or ""):match("^%d+%.?%d*")),
                fallbacks = opts.fallbacks, device = opts.device, model = m,
                checks = CHECK, optimistic = M.OPTIMISTIC }
  local result = { compute_units = cu, target = target, ops = {}, segments = {}, transitions = {}, notes = {} }
  local seqs = collect(m, nil, {}, {})
  local seq_ops = {}
  for si, seq in ipairs(seqs) do
    local first = #result.ops + 1
    place_seq(seq, ctx, result.ops, result.notes)
    seq_ops[si] = { first = first, last = #result.ops }
  end
  -- second stage: per-chip eligibility, state-aware conditions, calibration (mlsh.placement.evidence)
  require("mlsh.placement.evidence").apply(result, ctx, opts)
  for i, o in ipairs(result.ops) do o.index = i end
  -- segments and transitions, per sequence (functions and sub-models run separately)
  local total_work, ane_work, ane_ops = 0, 0, 0
  for si, seq in ipairs(seqs) do
    local r = seq_ops[si]
    local cur
    for i = r.first, r.last do
      local o = result.ops[i]
      total_work = total_work + o.work
      if o.device == "ANE" then ane_work, ane_ops = ane_work + o.work, ane_ops + 1 end
      if cur and cur.device == o.device then
        cur.last, cur.count, cur.work, cur.last_index = o.op, cur.count + 1, cur.work + o.work, i
      else
        if cur then
          local kind, cost = transition_kind(cur.device, o.device)
          result.transitions[#result.transitions + 1] = { from = cur.device, to = o.device, after = cur.last,
            before = o.op, ["function"] = seq["function"], model = seq.model, kind = kind, cost = cost }
        end
        cur = { device = o.device, first = o.op, last = o.op, count = 1, ["function"] = seq["function"],
                model = seq.model, work = o.work, first_index = i, last_index = i, seq = si }
        result.segments[#result.segments + 1] = cur
      end
    end
  end
  local n = #result.ops
  result.ane_coverage = { ops = n > 0 and ane_ops / n or 0, work = total_work > 0 and ane_work / total_work or 0 }
  result.total_work = total_work
  result.cut_makers = M.cut_makers(result, total_work)
  return result
end

-- Rank what keeps ops off the ANE: ops in non-ANE segments grouped by (type, why); a segment
-- between two ANE segments costs 2 transitions, one at an edge of an ANE run costs 1.
function M.cut_makers(result, total_work)
  if not contains(M.UNITS[result.compute_units], "ANE") then return {} end
  local segs = result.segments
  local groups, order = {}, {}
  for k, s in ipairs(segs) do
    if s.device ~= "ANE" then
      local before = segs[k - 1] and segs[k - 1].seq == s.seq and segs[k - 1].device == "ANE"
      local after = segs[k + 1] and segs[k + 1].seq == s.seq and segs[k + 1].device == "ANE"
      local cuts = (before and 1 or 0) + (after and 1 or 0)
      -- the segment's switches are charged to its dominant group (most work, then most ops)
      local seg_work, seg_count = {}, {}
      for i = s.first_index, s.last_index do
        local o = result.ops[i]
        local key = o.type .. "\0" .. o.why
        seg_work[key] = (seg_work[key] or 0) + o.work
        seg_count[key] = (seg_count[key] or 0) + 1
      end
      local dominant
      for i = s.first_index, s.last_index do
        local o = result.ops[i]
        local key = o.type .. "\0" .. o.why
        if not dominant or seg_work[key] > seg_work[dominant]
            or (seg_work[key] == seg_work[dominant] and seg_count[key] > seg_count[dominant]) then
          dominant = key
        end
      end
      local seen_in_seg = {}
      for i = s.first_index, s.last_index do
        local o = result.ops[i]
        local key = o.type .. "\0" .. o.why
        local g = groups[key]
        if not g then
          g = { type = o.type, why = o.why, reason = o.reason, count = 0, ops = {}, transitions = 0, work = 0,
                between_ane = false, category = o.node and o.node.entry and o.node.entry.category or nil,
                kind = o.kind, ["function"] = o["function"], model = o.model }
          groups[key] = g
          order[#order + 1] = key
        end
        g.count = g.count + 1
        g.work = g.work + o.work
        if #g.ops < 5 then g.ops[#g.ops + 1] = o.op end
        if not seen_in_seg[key] then
          seen_in_seg[key] = true
          if key == dominant then g.transitions = g.transitions + cuts end
          g.between_ane = g.between_ane or cuts == 2
        end
      end
    end
  end
  local list = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    if g.why == "not_nn" then goto continue end
    g.work_share = total_work > 0 and g.work / total_work or 0
    g.fix = M.FIXES[g.why] or M.FIXES[g.category or ""] or
      (g.why == "fallback" and "see the team fallback's reason" or M.FIXES.unknown_op)
    list[#list + 1] = g
    ::continue::
  end
  table.sort(list, function(a, b)
    if a.transitions ~= b.transitions then return a.transitions > b.transitions end
    if a.work ~= b.work then return a.work > b.work end
    if a.count ~= b.count then return a.count > b.count end
    return a.type .. a.why < b.type .. b.why
  end)
  return list
end

-- The JSON shape of a result (mlsh check's `placement` key).
function M.to_json(p)
  local json = require "mlsh.json"
  local null = json.null
  local ops = json.array({})
  for i, o in ipairs(p.ops) do
    ops[i] = { ["function"] = o["function"] or null, op = o.op, type = o.type, device = o.device, reason = o.reason,
               why = o.why, flops = o.flops, bytes = o.bytes, model = o.model or null }
  end
  local segs = json.array({})
  for i, s in ipairs(p.segments) do
    segs[i] = { device = s.device, first = s.first, last = s.last, count = s.count, ["function"] = s["function"] or null,
                model = s.model or null }
  end
  local trans = json.array({})
  for i, t in ipairs(p.transitions) do
    trans[i] = { from = t.from, to = t.to, after = t.after, before = t.before, kind = t.kind, cost = t.cost,
                 ["function"] = t["function"] or null }
  end
  local cuts = json.array({})
  for i, c in ipairs(p.cut_makers) do
    cuts[i] = { type = c.type, why = c.why, reason = c.reason, count = c.count, ops = json.array(c.ops),
                transitions = c.transitions, work_share = c.work_share, fix = c.fix }
  end
  local function r(x) return math.floor(x * 10000 + 0.5) / 10000 end
  local out = { compute_units = p.compute_units, ops = ops, segments = segs, transitions = trans, cut_makers = cuts,
           ane_coverage = { ops = r(p.ane_coverage.ops), work = r(p.ane_coverage.work) },
           notes = json.array(p.notes) }
  for k, v in pairs(require("mlsh.placement.evidence").json(p, json)) do out[k] = v end
  return out
end

return M
