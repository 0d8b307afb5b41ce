-- mlsh.placement.evidence — the second stage of the placement simulator: what published evidence
-- says about chips and about Core ML's own choices, applied on top of the first stage's per-op
-- eligibility (mlsh.placement). Called by placement.simulate before segments are computed.
--
-- Stage A, chips (always): the op table's per-chip column (core/optable_chips.c). With a device
-- (opts.device: "A15", "M2", "iPhone14,2", "intel") ops walled on its family (or over its fp16 conv
-- kernel-width cap) leave the ANE, and ops kept off only by the 16384 dimension cap reach it where
-- the family's extent cap holds (65536 from A16); "none" has no ANE. Without one, ops walled
-- everywhere leave it and ops that differ between families are reported as ranges ("ANE on A15+,
-- CPU on A13-A14: sin") in result.chip_range and notes. State-aware: read_state / write_state of a
-- state whose last dimension is not a multiple of 32 leave the ANE (apple/coremltools#2631).
-- Stage B, calibration (the default; opts.calibrated = false or opts.static = true turns it off), per
-- function, each rule from a published MLComputePlan observation (M.SOURCES):
--   1. two or more large fp16 SDPAs in one function -> the whole function on the CPU;
--   2. SDPA reaches the Neural Engine only in fp16 with >= 2^21 query elements;
--   3. decode-shaped matmul/linear (<= 8 rows): reduction depth decides, k in [4992, 16384] -> ANE
--      (a light one between ANE ops stays there: two switches cost more, rule 6's source);
--   4. tiny functions (< 1.7e8 FLOPs on the Neural Engine, no op kept there by rule 3) -> CPU, when the
--      FLOPs are known (ML program ops, no range shapes);
--   5. index plumbing that consumes a CPU data-dependent/gather result joins it on the CPU;
--   6. a short, light ANE run between non-ANE ops is not worth two switches -> it joins them.
-- Results: result.device (resolved), result.chip_range, result.calibration (rules that fired);
-- M.json(p) gives the extra JSON keys, present only when they say something.
local chips = require "mlsh.chips"

local M = {}

M.SOURCES = {
  chips = "sbryngelson/ANEForge docs/op-catalog.md @ 067717ab",
  axis = "sbryngelson/ANEForge docs/capabilities.md @ 067717ab (Dimension bounds)",
  state32 = "apple/coremltools#2631",
  two_sdpa = "kasper0406/stablehlo-coreml#89",
  sdpa_size = "vx-lang/Vx#437",
  depth = "chrishayuk/larql#312",
  tiny = "vx-lang/Vx#436, vx-lang/Vx#435",
  plumbing = "roboflow/rf-detr#1495",
  switch = "hollance/neural-engine (every device switch has a conversion overhead)",
}
M.SDPA_MIN_ELEMS = 2097152      -- Vx#437: 2,097,152 elements per Q tensor reach the ANE, 1,048,576 do not
M.DEPTH_MIN, M.DEPTH_MAX = 4992, 16384 -- larql#312: preferred from ~4992 (fp16), admissible k <= 16384
M.DEPTH_MIN_INT8 = 4096         -- larql#312: preferred from ~4096 with int8 weights
M.DECODE_ROWS = 8               -- larql#312 batches decode rows up to N = 8
M.TINY_FLOPS = 1.7e8            -- between 2*384^3 (CPU) and 2*512^3 (ANE), Vx#435
M.SWITCH_MAX_OPS, M.SWITCH_MAX_SHARE = 3, 0.01

local UNITS = { ALL = { ANE = true, GPU = true, CPU = true }, CPU_AND_NE = { ANE = true, CPU = true },
                CPU_AND_GPU = { GPU = true, CPU = true }, CPU_ONLY = { CPU = true } }
local HEAVY = { conv = true, conv_transpose = true, linear = true, attention = true, pool = true, norm = true }
local PLUMBING = { tensor = true, gather = true }
local PRODUCERS = { data_dependent = true, gather = true }

local function elems(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do if d > 0 then n = n * d end end
  return n
end

-- Where an op goes when it leaves the Neural Engine: the GPU for heavy ops or after a GPU op (when
-- the compute units allow it), else the CPU.
local function off_ane(o, prev, cu)
  local units = UNITS[cu] or UNITS.ALL
  local cat = o.node and o.node.entry and o.node.entry.category
  if units.GPU and (prev == "GPU" or HEAVY[cat or ""]) then return "GPU" end
  return "CPU"
end

local function move(result, i, device, why, reason)
  local o = result.ops[i]
  o.device, o.why, o.reason = device, why, reason
end

-- ---- stage A: chips -------------------------------------------------------------------------------

-- The op's kernel width (last axis of a conv weight) when it computes in fp16.
local function kernel_width(node)
  local w = node.by_param and node.by_param.weight
  if node.compute_dtype ~= "fp16" or not (w and w.shape and #w.shape >= 3) then return nil end
  return w.shape[#w.shape]
end

-- Families (list) on which an op cannot run on the Neural Engine, with the reason text per family.
local function walled_on(node)
  local col = node.entry and node.entry.chips
  local out, why = {}, {}
  if not col then return out, why end
  for _, f in ipairs(chips.FAMILIES) do
    if col[f] == "walled" then
      out[#out + 1], why[f] = f, string.format("%s is walled on %s: %s", node.type, chips.label(f), col.note or "")
    end
  end
  local kw = kernel_width(node)
  for _, c in ipairs(col.conditions or {}) do
    if c.id == "max_kernel_width" and kw then
      for _, f in ipairs(chips.FAMILIES) do
        if kw > c.values[f] and not why[f] then
          out[#out + 1] = f
          why[f] = string.format("fp16 kernel width %d > %d on %s", kw, c.values[f], chips.label(f))
        end
      end
    end
  end
  table.sort(out, function(a, b) return chips.INDEX[a] < chips.INDEX[b] end)
  return out, why
end

-- The add direction: the first stage's `max_dim` condition (every dimension <= 16384) is the
-- Neural Engine's extent cap of A13-A15; the per-chip condition `max_axis` (ANEForge
-- capabilities.md, Dimension bounds) raises it to 65536 from A16. An op whose only failing ANE
-- condition is max_dim becomes eligible on the families whose cap holds (and where the op is not
-- walled). Returns the list of families and the reason, or nil.
local SUPERSEDED = { max_dim = "max_axis" } -- first-stage condition -> the per-chip condition that refines it
local axis_cond
local function chip_axis()
  if axis_cond == nil then
    axis_cond = false
    for _, c in ipairs(require("mlsh.optable").chip_conditions()) do
      if c.id == SUPERSEDED.max_dim then axis_cond = c end
    end
  end
  return axis_cond or nil
end

local function added_on(node, ctx)
  local e = node.entry
  local el = e and e.eligibility and e.eligibility.ANE
  if not (el and ctx.checks) then return nil end
  if el.status ~= "yes" and not (el.status == "unknown" and ctx.optimistic and ctx.optimistic[e.category or ""]) then
    return nil
  end
  local failed
  for _, c in ipairs(el.conditions or {}) do
    local check = ctx.checks[c.id]
    if check and not check(c, node, ctx) then
      if not SUPERSEDED[c.id] then return nil end
      failed = c
    end
  end
  local cap = chip_axis()
  if not (failed and cap) then return nil end
  local big = 0
  for _, t in ipairs(node.tensors) do
    for _, d in ipairs(t.shape or {}) do if d > big then big = d end end
  end
  local col = e.chips or {}
  local out = {}
  for _, f in ipairs(chips.FAMILIES) do
    if big <= cap.values[f] and col[f] ~= "walled" then out[#out + 1] = f end
  end
  if #out == 0 then return nil end
  return out, string.format("a dimension of %d is within the %s extent cap of %d; the op table's %d holds through %s",
    big, chips.range(out), cap.values[out[1]], failed.value or 0, chips.FAMILIES[chips.INDEX[out[1]] - 1] or "-")
end

-- State-aware: the state a read_state/write_state touches, when its last dim is not a multiple of 32.
local function bad_state_dim(node)
  if node.type ~= "read_state" and node.type ~= "write_state" then return nil end
  for _, t in ipairs(node.tensors) do
    local s = t.shape
    if t.role == "in" and s and #s > 0 and s[#s] > 0 and s[#s] % 32 ~= 0 then return s[#s] end
  end
  return nil
end

-- One range entry per (text, op type): "ANE on A16+, CPU on A13-A15: relu (2 ops)".
local function add_range(ranges, order, o, entry)
  local key = entry.text .. "\0" .. o.type
  local r = ranges[key]
  if not r then
    r = entry
    r.type, r.count, r.ops = o.type, 0, {}
    ranges[key] = r
    order[#order + 1] = key
  end
  r.count = r.count + 1
  if #r.ops < 5 then r.ops[#r.ops + 1] = o.op end
end

local function complement(list)
  local set, out = {}, {}
  for _, f in ipairs(list) do set[f] = true end
  for _, f in ipairs(chips.FAMILIES) do if not set[f] then out[#out + 1] = f end end
  return out
end

-- An op the first stage kept off the Neural Engine that a newer family takes (see added_on).
local function chip_add(result, i, ctx, dev, ranges, order)
  local o = result.ops[i]
  local units = UNITS[ctx.compute_units] or UNITS.ALL
  if not units.ANE or o.why == "fallback" or (dev and not dev.ane) then return end
  local fams, why = added_on(o.node, ctx)
  if not fams then return end
  if dev then
    for _, f in ipairs(fams) do
      if f == dev.family then
        move(result, i, "ANE", "chip_add", string.format("ANE on %s: %s [%s]", dev.name, why, M.SOURCES.axis))
        return
      end
    end
  else
    add_range(ranges, order, o, { ane = fams, off = complement(fams), device = o.device, source = M.SOURCES.axis,
      text = string.format("ANE on %s, %s on %s", chips.range(fams), o.device, chips.range(complement(fams))),
      reason = why })
  end
end

local function stage_chips(result, ctx, dev)
  local ranges, order = {}, {}
  local prev
  for i, o in ipairs(result.ops) do
    local node = o.node
    if o.device ~= "ANE" and node and node.kind == "mil" then chip_add(result, i, ctx, dev, ranges, order) end
    if o.device == "ANE" and node and node.kind == "mil" and o.why ~= "chip_add" then
      local walled, why = walled_on(node)
      local bad = bad_state_dim(node)
      if dev and not dev.ane then
        local to = off_ane(o, prev, ctx.compute_units)
        move(result, i, to, "no_ane", string.format("no Neural Engine on %s: %s", dev.name, to))
      elseif bad then
        local to = off_ane(o, prev, ctx.compute_units)
        move(result, i, to, "state", string.format("state last dimension %d is not a multiple of 32: stateful models "
          .. "fail on the Neural Engine [%s]; %s", bad, M.SOURCES.state32, to))
      elseif dev and why[dev.family] then
        local to = off_ane(o, prev, ctx.compute_units)
        move(result, i, to, "chip", string.format("not ANE on %s: %s [%s]; %s", dev.name, why[dev.family],
          M.SOURCES.chips, to))
      elseif not dev and #walled == #chips.FAMILIES then
        local to = off_ane(o, prev, ctx.compute_units)
        move(result, i, to, "walled", string.format("not ANE on any chip: %s is %s [%s]; %s", node.type,
          (node.entry.chips.note or "walled"), M.SOURCES.chips, to))
      elseif not dev and #walled > 0 then
        local ok = complement(walled)
        local to = off_ane(o, prev, ctx.compute_units)
        add_range(ranges, order, o, { ane = ok, off = walled, device = to, source = M.SOURCES.chips,
          text = string.format("ANE on %s, %s on %s", chips.range(ok), to, chips.range(walled)),
          reason = why[walled[1]] })
      end
    end
    prev = o.device
  end
  local list = {}
  for _, k in ipairs(order) do list[#list + 1] = ranges[k] end
  return list
end

-- ---- stage B: calibration -------------------------------------------------------------------------

local function q_elems(node)
  local q = node.by_param.query
  return q and q.shape and elems(q.shape) or 0
end

local function is_large_sdpa(node)
  return node.type == "scaled_dot_product_attention" and node.compute_dtype == "fp16"
    and q_elems(node) >= M.SDPA_MIN_ELEMS
end

local INT8_PRODUCERS = { constexpr_affine_dequantize = true, constexpr_blockwise_shift_scale = true }

-- The reduction depth from which the op is preferred on the Neural Engine: lower with int8 weights.
local function depth_min(node)
  local raw = node.raw
  local ok, ins = pcall(function() return raw and raw:inputs() end)
  for _, e in ipairs(ok and ins or {}) do
    local p = e.param == "weight" and e.name and raw._producers and raw._producers[e.name]
    if p and INT8_PRODUCERS[p.type] then return M.DEPTH_MIN_INT8 end
  end
  return M.DEPTH_MIN
end

-- Decode-shaped matmul/linear: rows (<= DECODE_ROWS) and reduction depth k, or nil.
local function decode_shape(node)
  local x = node.by_param.x
  if not (x and x.shape and #x.shape >= 1) then return nil end
  local s = x.shape
  local rows, k
  if node.type == "linear" then
    k, rows = s[#s], elems({ table.unpack(s, 1, #s - 1) })
  elseif node.type == "matmul" and #s >= 2 then
    local tx = node.params and node.params.transpose_x
    k = tx and s[#s - 1] or s[#s]
    rows = elems({ table.unpack(s, 1, #s - 2) }) * (tx and s[#s] or s[#s - 1])
  else
    return nil
  end
  if rows <= M.DECODE_ROWS and k and k > 0 then return rows, k end
  return nil
end

local function fired(result, rule, fname, count, source, text)
  result.calibration[#result.calibration + 1] = { rule = rule, ["function"] = fname, ops = count, source = source,
                                                  text = text }
end

-- Whether the op's work estimate can be trusted for the tiny rule: an ML program op with static (or
-- enumerated, sized at the default) shapes whose FLOPs are known when it is a heavy op. NeuralNetwork
-- layers and flexible (range) shapes are not sized well enough: the rule stays quiet on them.
local function sized_op(o)
  local node = o.node
  if not node or node.kind ~= "mil" then return false end
  if node.shape_kind == "range" or node.shape_kind == "dynamic" then return false end
  local cat = node.entry and node.entry.category
  return not (HEAVY[cat or ""] and (o.flops or 0) == 0)
end

-- The nearest real ops (not I/O casts) on both sides of op i, within the sequence, run on the ANE.
local function between_ane(result, i, first, last)
  local function side(from, to, step)
    for j = from, to, step do
      local o = result.ops[j]
      if not (o.node and o.node.io_cast) then return o.device == "ANE" end
    end
    return false
  end
  return side(i - 1, first, -1) and side(i + 1, last, 1)
end

local function calibrate_seq(result, first, last)
  local fname = result.ops[first]["function"]
  local function all_to_cpu(rule, source, text)
    local n = 0
    for i = first, last do
      local o = result.ops[i]
      if o.device == "ANE" then
        n = n + 1
        move(result, i, "CPU", "calibrated", text .. " [" .. source .. "]; CPU")
      elseif o.device ~= "CPU" then -- off the ANE already: its first-stage reason (why) stays the cut-maker's
        n = n + 1
        o.device, o.reason = "CPU", o.reason .. "; " .. text .. " [" .. source .. "]: CPU"
      end
    end
    fired(result, rule, fname, n, source, text)
  end
  -- 1. two or more large SDPAs
  local large = 0
  for i = first, last do
    if is_large_sdpa(result.ops[i].node) then large = large + 1 end
  end
  if large >= 2 then
    return all_to_cpu("two-large-sdpa", M.SOURCES.two_sdpa, string.format("%d large SDPAs in one function: the Neural "
      .. "Engine compile fails and the function falls back to the CPU", large))
  end
  -- 2./3. per-op rules
  local anchored, ane_flops, seq_flops, sized = false, 0, 0, true
  for i = first, last do seq_flops = seq_flops + (result.ops[i].flops or 0) end
  for i = first, last do
    local o = result.ops[i]
    local node = o.node
    if o.device == "ANE" and node then
      if node.type == "scaled_dot_product_attention" and not is_large_sdpa(node) then
        move(result, i, "CPU", "calibrated", string.format("SDPA with %d query elements (%s): the Neural Engine takes "
          .. "fp16 SDPA from %d elements [%s]; CPU", q_elems(node), node.compute_dtype or "?", M.SDPA_MIN_ELEMS,
          M.SOURCES.sdpa_size))
        fired(result, "sdpa-size", fname, 1, M.SOURCES.sdpa_size, "SDPA below the Neural Engine size")
      else
        local rows, k = decode_shape(node)
        local kmin = rows and depth_min(node)
        local outside = rows and (k < kmin or k > M.DEPTH_MAX)
        if outside and between_ane(result, i, first, last) and (o.flops or 0) < M.SWITCH_MAX_SHARE * seq_flops then
          o.reason = o.reason .. string.format("; reduction depth %d outside %d..%d [%s], but a light op between ANE ops "
            .. "is not worth two switches [%s]", k, kmin, M.DEPTH_MAX, M.SOURCES.depth, M.SOURCES.switch)
        elseif outside then
          move(result, i, "CPU", "calibrated", string.format("%d-row %s with reduction depth %d outside %d..%d [%s]; CPU",
            rows, node.type, k, kmin, M.DEPTH_MAX, M.SOURCES.depth))
          fired(result, "reduction-depth", fname, 1, M.SOURCES.depth, "reduction depth outside the preferred range")
        elseif rows then
          anchored = true
          o.reason = o.reason .. string.format("; reduction depth %d in %d..%d [%s]", k, kmin, M.DEPTH_MAX,
            M.SOURCES.depth)
        end
      end
      if result.ops[i].device == "ANE" then
        ane_flops = ane_flops + (o.flops or 0)
        if not sized_op(o) then sized = false end
      end
    end
  end
  -- 4. tiny functions
  if sized and not anchored and ane_flops > 0 and ane_flops < M.TINY_FLOPS then
    return all_to_cpu("tiny", M.SOURCES.tiny, string.format("tiny function (%.3g FLOPs on the Neural Engine < %.3g): "
      .. "Core ML keeps it on the CPU", ane_flops, M.TINY_FLOPS))
  end
  return nil
end

-- 5. index plumbing joins its CPU producer (data flow).
local function merge_plumbing(result, first, last)
  local cpu_values, producer = {}, {}
  local fname = result.ops[first]["function"]
  for i = first, last do
    local o = result.ops[i]
    local node = o.node
    local cat = node and node.entry and node.entry.category
    local raw = node and node.raw
    local from
    if raw and raw.inputs and PLUMBING[cat or ""] then
      local ok, ins = pcall(raw.inputs, raw)
      for _, e in ipairs(ok and ins or {}) do
        if e.name and cpu_values[e.name] then from = cpu_values[e.name] end
      end
    end
    if from and o.device == "ANE" then
      move(result, i, "CPU", "calibrated", string.format("consumes the result of %s on the CPU: index plumbing stays "
        .. "with its producer [%s]; CPU", from, M.SOURCES.plumbing))
      fired(result, "plumbing", fname, 1, M.SOURCES.plumbing, "index plumbing joins its CPU producer")
    end
    if o.device == "CPU" and raw and (PRODUCERS[cat or ""] or from) then
      producer[o.op] = from or o.op
      for _, out in ipairs(raw.outputs or {}) do cpu_values[out.name] = producer[o.op] end
    end
  end
end

-- 6. a short, light ANE run between non-ANE ops joins its neighbours.
local function merge_short_runs(result, first, last)
  local total = 0
  for i = first, last do total = total + (result.ops[i].flops or 0) end
  local fname = result.ops[first]["function"]
  local i = first
  while i <= last do
    if result.ops[i].device == "ANE" then
      local j, flops = i, 0
      while j + 1 <= last and result.ops[j + 1].device == "ANE" do j = j + 1 end
      for k = i, j do flops = flops + (result.ops[k].flops or 0) end
      local before = i > first and result.ops[i - 1].device or nil
      local after = j < last and result.ops[j + 1].device or nil
      local n = j - i + 1
      if before and after and before == after and n <= M.SWITCH_MAX_OPS
          and (total == 0 or flops / total < M.SWITCH_MAX_SHARE) then
        for k = i, j do
          move(result, k, before, "calibrated", string.format("a %d-op ANE run with %.1f%% of the work between %s ops "
            .. "costs two switches [%s]; %s", n, total > 0 and 100 * flops / total or 0, before, M.SOURCES.switch, before))
        end
        fired(result, "switch-cost", fname, n, M.SOURCES.switch, "short ANE run merged into its neighbours")
      end
      i = j + 1
    else
      i = i + 1
    end
  end
end

-- I/O casts follow the op they convert for (the first op after an input cast, the op before an
-- output cast), as the first stage places them.
local function realign_io_casts(result)
  local ops = result.ops
  for i, o in ipairs(ops) do
    if o.node and o.node.io_cast then
      local function real(j) return ops[j] and ops[j].seq == o.seq and not (ops[j].node and ops[j].node.io_cast) end
      local nb
      for j = i + 1, #ops do
        if ops[j].seq ~= o.seq then break end
        if real(j) then nb = ops[j] break end
      end
      if not nb then
        for j = i - 1, 1, -1 do
          if ops[j].seq ~= o.seq then break end
          if real(j) then nb = ops[j] break end
        end
      end
      if nb and nb.device ~= o.device and o.why ~= "fallback" then
        o.device, o.reason = nb.device, "fp32<->fp16 conversion of a model input/output: follows " .. nb.op
      end
    end
  end
end

-- Ranges of result.ops per sequence (function / sub-model), in order.
local function sequences(result)
  local out, cur = {}, nil
  for i, o in ipairs(result.ops) do
    if cur and cur.seq == o.seq then cur.last = i
    else
      cur = { seq = o.seq, first = i, last = i }
      out[#out + 1] = cur
    end
  end
  return out
end

-- Entry point (from placement.simulate). opts.device resolves through mlsh.chips (raises on an
-- unknown name); stage B runs unless opts.calibrated == false or opts.static (every command's --static).
function M.apply(result, ctx, opts)
  local dev
  if opts.device ~= nil then
    local d, err = chips.resolve(opts.device)
    if not d then error(err, 0) end
    dev = { name = opts.device, chip = d.chip, family = d.family, label = d.label, ane = d.ane, note = d.note }
    result.device = dev
  end
  result.chip_range = stage_chips(result, ctx, dev)
  for _, r in ipairs(result.chip_range) do
    result.notes[#result.notes + 1] = string.format("%s: %s (%d op%s) [%s]", r.text, r.type, r.count,
      r.count == 1 and "" or "s", r.source)
  end
  if dev then
    result.notes[#result.notes + 1] = string.format("device %s: chip %s, family %s%s", dev.name, dev.chip, dev.label,
      dev.note and ("; " .. dev.note) or "")
  end
  if opts.calibrated ~= false and not opts.static then -- the default; {calibrated = false} / {static = true} / --static
    result.calibration = {}
    for _, r in ipairs(sequences(result)) do
      if not calibrate_seq(result, r.first, r.last) then
        merge_plumbing(result, r.first, r.last)
        merge_short_runs(result, r.first, r.last)
      end
    end
    for _, c in ipairs(result.calibration) do
      result.notes[#result.notes + 1] = string.format("calibrated (%s%s): %s [%s]", c.rule,
        c["function"] and (", function " .. c["function"]) or "", c.text, c.source)
    end
  end
  realign_io_casts(result)
  local okd, default = pcall(function() return ctx.model and ctx.model.default_function end)
  result.default_function = okd and type(default) == "string" and default ~= "" and default or nil
  local fns = M.functions(result)
  if #fns > 1 then
    for _, f in ipairs(fns) do
      result.notes[#result.notes + 1] = string.format("function %s%s: ANE %d, GPU %d, CPU %d of %d ops (%.0f%% of work "
        .. "on the ANE)", f.name, f.default and " (default; the one MLComputePlan reports)" or "", f.ANE, f.GPU, f.CPU,
        f.ops, 100 * f.coverage.work)
    end
  end
  return result
end

-- Per-function plans: counts and coverage per function (Apple's MLComputePlan reports the default
-- function only; mlsh plans every function).
function M.functions(p)
  local by, order = {}, {}
  for _, o in ipairs(p.ops) do
    local f = o["function"]
    if f then
      local e = by[f]
      if not e then
        e = { name = f, ops = 0, ANE = 0, GPU = 0, CPU = 0, work = 0, ane_work = 0 }
        by[f] = e
        order[#order + 1] = f
      end
      e.ops, e[o.device], e.work = e.ops + 1, e[o.device] + 1, e.work + (o.work or 0)
      if o.device == "ANE" then e.ane_work = e.ane_work + (o.work or 0) end
    end
  end
  local list = {}
  for _, f in ipairs(order) do
    local e = by[f]
    e.coverage = { ops = e.ops > 0 and e.ANE / e.ops or 0, work = e.work > 0 and e.ane_work / e.work or 0 }
    e.default = (p.default_function or order[1]) == f
    list[#list + 1] = e
  end
  return list
end

-- Extra keys for placement.to_json, present only when they carry something.
function M.json(p, json)
  local out = {}
  local function r(x) return math.floor(x * 10000 + 0.5) / 10000 end
  if p.device then
    out.device = { name = p.device.name, chip = p.device.chip, family = p.device.family, label = p.device.label,
                   neural_engine = p.device.ane }
  end
  if p.chip_range and #p.chip_range > 0 then
    local list = json.array({})
    for i, c in ipairs(p.chip_range) do
      list[i] = { type = c.type, text = c.text, ane = json.array(c.ane), off = json.array(c.off), device = c.device,
                  count = c.count, ops = json.array(c.ops), reason = c.reason, source = c.source }
    end
    out.chip_range = list
  end
  if p.calibration and #p.calibration > 0 then
    local list = json.array({})
    for i, c in ipairs(p.calibration) do
      list[i] = { rule = c.rule, ["function"] = c["function"] or json.null, ops = c.ops, text = c.text, source = c.source }
    end
    out.calibration = list
  end
  local fns = M.functions(p)
  if #fns > 1 then
    local list = json.array({})
    for i, f in ipairs(fns) do
      list[i] = { name = f.name, default = f.default, ops = f.ops, ANE = f.ANE, GPU = f.GPU, CPU = f.CPU,
                  ane_coverage = { ops = r(f.coverage.ops), work = r(f.coverage.work) } }
    end
    out.functions = list
  end
  return out
end

M.FIXES = {
  chip = "check the chip family you ship to (mlsh check --device A15); newer Neural Engines run more ops natively, "
    .. "otherwise rewrite the op with natively supported ones (e.g. sin/cos as a polynomial before A15)",
  walled = "no Neural Engine generation runs this op: rewrite it with ops that run there (e.g. logical ops as "
    .. "min/max/mul, band_part as a constant mask), move it out of the model, or accept the switch",
  no_ane = "none for the Neural Engine: this device has none (Intel Mac, simulator); Core ML splits the work between "
    .. "the GPU and the CPU",
  state = "pad the state's last dimension to a multiple of 32 (coremltools#2631)",
  calibrated = "see the calibration rule in the reason; MLComputePlan on a device is the ground truth",
}

return M
