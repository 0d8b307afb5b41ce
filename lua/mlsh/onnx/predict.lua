-- mlsh.onnx.predict — the CoreML EP partition predictor: what ONNX Runtime's CoreML execution
-- provider would take from a model, and how it would cut it.
--   1. a working copy of the main graph (mlsh.onnx.ir), with --freeze dims applied;
--   2. ONNX Runtime's level-1 optimizations (mlsh.onnx.passes), which run before partitioning;
--   3. shape inference (mlsh.onnx.shape) and each node checked against the EP's op builders for
--      the chosen model format (mlsh.onnx.coreml_rules);
--   4. the EP's grouping (mlsh.onnx.partition) and its boundary-dtype filter (partition inputs and
--      outputs must be fp32, fp16, int32 or int64; edge nodes touching others leave the partition);
--   5. the summary ONNX Runtime logs, a reason per unsupported node, cut-makers (how many
--      partitions go away if an op type were supported), the usability-checker verdict and
--      mlsh's estimate of CoreML <-> CPU hops per inference;
--   6. counterfactuals: dynamic dims frozen, Erf-GELU rewritten to the tanh form, fp16 -> fp32.
-- Subgraphs (If/Loop/Scan bodies) are analysed only with EnableOnSubgraphs, as their own graphs.
local irlib = require "mlsh.onnx.ir"
local passes = require "mlsh.onnx.passes"
local rules = require "mlsh.onnx.coreml_rules"
local partition = require "mlsh.onnx.partition"
local types = require "mlsh.onnx.types"

local M = {}

local EDGE_TYPES = { [types.FLOAT] = true, [types.FLOAT16] = true, [types.INT32] = true, [types.INT64] = true }

-- ---- freezing dims -----------------------------------------------------------------------------------
-- Fix dynamic input dims on the working copy: by dim_param name, by "input:axis", or all of them.
-- Returns {symbol or "input:axis" -> value}; raises "usage: …" when a name matches nothing.
function M.freeze(ir, freeze, freeze_all)
  local symbols, applied = {}, {}
  for _, f in ipairs(freeze or {}) do
    local input, axis = f.name:match("^(.+):(%d+)$")
    if input then
      local found = false
      for _, vi in ipairs(ir.inputs) do
        local t = ir.types[vi.name]
        if vi.name == input and t and t.shape then
          local d = t.shape[tonumber(axis) + 1]
          if d == nil then error("usage: --freeze " .. f.name .. ": input " .. input .. " has no axis " .. axis, 0) end
          if type(d) == "string" then symbols[d] = f.value end
          t.shape[tonumber(axis) + 1] = f.value
          found = true
        end
      end
      if not found then error("usage: --freeze " .. f.name .. ": no input named " .. input, 0) end
      applied[f.name] = f.value
    else
      symbols[f.name] = f.value
    end
  end
  if freeze_all then
    for _, vi in ipairs(ir.inputs) do
      local t = ir.types[vi.name]
      if t and t.shape then
        for i, d in ipairs(t.shape) do
          if math.type(d) ~= "integer" or d < 1 then
            if type(d) == "string" then symbols[d] = freeze_all end
            t.shape[i] = freeze_all
            applied[vi.name .. ":" .. (i - 1)] = freeze_all
          end
        end
      end
    end
  end
  local used = {}
  for _, t in pairs(ir.types) do
    if t.shape then
      for i, d in ipairs(t.shape) do
        if type(d) == "string" and symbols[d] then
          used[d] = true
          t.shape[i] = symbols[d]
        end
      end
    end
  end
  for _, f in ipairs(freeze or {}) do
    if not f.name:find(":%d+$") then
      if not used[f.name] then error("usage: --freeze " .. f.name .. ": no dim is named " .. f.name, 0) end
      applied[f.name] = f.value
    end
  end
  return applied
end

-- ---- support and grouping ---------------------------------------------------------------------------------
local function node_id(node) return node.index or ("new:" .. node.op) end

-- ONNX Runtime's node edges: a node's input edges are a set ordered by (producer node index, …),
-- its output edges likewise by consumer index. `index` gives ONNX Runtime's node index.
local function edge_env(_, producers, consumers, index)
  local function by_index(a, b) return index[a] < index[b] end
  local env = { producers = producers, consumers = consumers }
  function env.input_edges(node)
    local out, seen = {}, {}
    for _, i in ipairs(node.inputs) do
      local p = i ~= "" and producers[i]
      if p and not seen[p] then seen[p] = true; out[#out + 1] = p end
    end
    table.sort(out, by_index)
    return out
  end
  -- one entry per (consumer, output slot, input slot) edge, as Node::GetOutputEdgesCount counts
  function env.output_edges(node)
    local out = {}
    for _, o in ipairs(node.outputs) do
      if o ~= "" then
        for _, c in ipairs(consumers[o] or {}) do
          for _, i in ipairs(c.inputs) do if i == o then out[#out + 1] = c end end
        end
      end
    end
    table.sort(out, by_index)
    return out
  end
  return env
end

M.node_indices = partition.node_indices

-- Per-node support on an optimized ir: {node -> {ok, reason, rule}}
function M.support(ir, opts, index)
  index = index or M.node_indices(ir)
  local env = edge_env(ir, ir:producers(), ir:consumers(), index)
  local memo = {}
  local function check(node)
    local m = memo[node]
    if m then return m end
    memo[node] = { ok = false, reason = "(cycle)" }
    local ok, why, src = rules.check(ir, node, opts, env)
    m = { ok = ok and true or false, reason = (not ok) and (why or "not supported") or nil, rule = (not ok) and src
      or nil }
    memo[node] = m
    return m
  end
  env.supported = function(node) return check(node).ok end
  for _, node in ipairs(ir.nodes) do check(node) end
  return memo
end

-- Remove edge nodes whose partition inputs/outputs have types the EP cannot pass (to a fixpoint).
local function filter_edges(ir, groups, cache)
  cache.outputs = cache.outputs or ir:output_set()
  cache.consumers = cache.consumers or ir:consumers()
  local outputs, consumers = cache.outputs, cache.consumers
  local removed = {}
  for _, grp in ipairs(groups) do
    local changed = true
    while changed and #grp.nodes > 0 do
      changed = false
      local member = {}
      for _, n in ipairs(grp.nodes) do member[n] = true end
      local produced = {}
      for _, n in ipairs(grp.nodes) do for _, o in ipairs(n.outputs) do produced[o] = n end end
      local drop = {}
      for _, n in ipairs(grp.nodes) do
        for _, i in ipairs(n.inputs) do
          if i ~= "" and not produced[i] and not ir:const(i) then
            local t = ir:type_of(i)
            if not (t and EDGE_TYPES[t.elem]) then drop[n] = i end
          end
        end
        for _, o in ipairs(n.outputs) do
          if o ~= "" then
            local outside = outputs[o]
            for _, c in ipairs(consumers[o] or {}) do if not member[c] then outside = true end end
            if outside then
              local t = ir:type_of(o)
              if not (t and EDGE_TYPES[t.elem]) then drop[n] = o end
            end
          end
        end
      end
      if next(drop) then
        local keep = {}
        for _, n in ipairs(grp.nodes) do
          if drop[n] then
            local t = ir:type_of(drop[n])
            removed[n] = string.format("on the partition boundary with a %s value (%s): "
              .. "the EP passes only fp32, fp16, int32, int64",
              t and types.dtype_name(t.elem) or "untyped", drop[n])
          else keep[#keep + 1] = n end
        end
        grp.nodes = keep
        changed = true
      end
    end
  end
  local kept = {}
  for _, grp in ipairs(groups) do if #grp.nodes > 0 then kept[#kept + 1] = grp end end
  return kept, removed
end

-- Group the supported nodes of an optimized ir. Returns groups {{nodes}}, per-node results.
-- `force(node)` makes more nodes supported (cut-maker counterfactuals); `cache` keeps the support
-- results and links between calls on the same ir.
M.ort_order = partition.ort_order

function M.group(ir, opts, force, cache)
  cache = cache or {}
  if not cache.index then
    cache.index = M.node_indices(ir)
    local links = partition.links({ nodes = ir.nodes, inputs = ir.inputs, initializers = ir.consts })
    local idx = cache.index
    local by_index = function(a, b) return (idx[a] or math.huge) < (idx[b] or math.huge) end
    for n, set in pairs(links.consumers) do if idx[n] then table.sort(set.list, by_index) end end
    cache.links = links
    cache.order = M.ort_order(ir.nodes, links, cache.index)
    if #cache.order ~= #ir.nodes then cache.order = ir.nodes end
  end
  cache.sup = cache.sup or M.support(ir, opts, cache.index)
  local sup, links = cache.sup, cache.links
  local function ok(node)
    if force and force(node) then return true end
    return sup[node].ok
  end
  local r = partition.group(cache.order, links, ok)
  local groups = {}
  for i, g in ipairs(r.groups) do groups[i] = { nodes = g } end
  local filtered = {}
  if rules.version(opts).EDGE_FILTER then groups, filtered = filter_edges(ir, groups, cache) end
  return groups, sup, filtered
end

-- ---- hops ------------------------------------------------------------------------------------------------
-- Switches between the CPU and CoreML (and between two CoreML partitions) along a topological
-- order of the fused graph that stays on one side as long as it can.
local function estimate_hops(ir, groups)
  local unit = {}
  for gi, g in ipairs(groups) do for _, n in ipairs(g.nodes) do unit[n] = gi end end
  local prod = ir:producers()
  local key = function(n) return unit[n] and ("p" .. unit[n]) or n end
  local units, deps, users, indeg = {}, {}, {}, {}
  for _, n in ipairs(ir.nodes) do
    local k = key(n)
    if not units[k] then units[k] = { kind = unit[n] and "coreml" or "cpu", key = k }; deps[k] = {}; indeg[k] = 0 end
  end
  for _, n in ipairs(ir.nodes) do
    local k = key(n)
    for _, i in ipairs(n.inputs) do
      local p = i ~= "" and prod[i]
      if p then
        local pk = key(p)
        if pk ~= k and not deps[k][pk] then
          deps[k][pk] = true
          indeg[k] = indeg[k] + 1
          users[pk] = users[pk] or {}
          users[pk][#users[pk] + 1] = k
        end
      end
    end
  end
  local ready = { cpu = {}, coreml = {} }
  local order_keys = {}
  for _, n in ipairs(ir.nodes) do
    local k = key(n)
    if not order_keys[k] then order_keys[#order_keys + 1] = k; order_keys[k] = true end
  end
  for _, k in ipairs(order_keys) do if indeg[k] == 0 then table.insert(ready[units[k].kind], k) end end
  local hops, current, last_unit = 0, nil, nil
  while #ready.cpu + #ready.coreml > 0 do
    local side = current
    if not side or #ready[side] == 0 then side = (#ready.cpu > 0) and "cpu" or "coreml" end
    local k = table.remove(ready[side], 1)
    if last_unit and (units[k].kind ~= units[last_unit].kind or units[k].kind == "coreml") then hops = hops + 1 end
    current, last_unit = side, k
    for _, u in ipairs(users[k] or {}) do
      indeg[u] = indeg[u] - 1
      if indeg[u] == 0 then table.insert(ready[units[u].kind], u) end
    end
  end
  return hops
end

-- ---- one full prediction ------------------------------------------------------------------------------------
local function prepare(m, g, opts, transform)
  local ir = irlib.from_graph(g, m, { opset = m.opsets, ir_version = m.ir_version })
  local frozen
  if opts.freeze or opts.freeze_all then frozen = M.freeze(ir, opts.freeze, opts.freeze_all) end
  local stats = passes.run(ir, transform)
  return ir, stats, frozen
end

local function fmt_summary(p, n, s)
  return string.format("CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: %d "
    .. "number of nodes in the graph: %d number of nodes supported by CoreML: %d", p, n, s)
end

-- One prediction. `transform(ir)` changes the graph before optimization; `from` (an optimized ir)
-- skips loading and optimizing again: the transform is applied to a copy of it, then the level-1
-- passes run once more (cheap on an optimized graph).
function M.core(m, g, opts, transform, from)
  local ir, stats, frozen
  if from then
    ir = from:clone()
    if transform then transform(ir) end
    stats = passes.run(ir)
  else
    ir, stats, frozen = prepare(m, g, opts, transform)
  end
  local cache = {}
  local groups, sup, filtered = M.group(ir, opts, nil, cache)
  local supported = 0
  for _, grp in ipairs(groups) do supported = supported + #grp.nodes end
  local res = { ir = ir, stats = stats, frozen = frozen, groups = groups, sup = sup, filtered = filtered, cache = cache,
                nodes = #ir.nodes, supported = supported }
  res.verdict, res.pct = partition.suitability(#groups, supported, #ir.nodes)
  return res
end

-- The --json partitions: ids, names, op counts and index range of each group.
local function partition_entries(out, core)
  for i, grp in ipairs(core.groups) do
    local ids, ops, first, last, names, node_ops = {}, {}, nil, nil, {}, {}
    for k, n in ipairs(grp.nodes) do
      ids[k] = node_id(n)
      names[k] = n.name or ""
      node_ops[k] = n.op
      ops[n.op] = (ops[n.op] or 0) + 1
      if n.index then
        first = first and math.min(first, n.index) or n.index
        last = last and math.max(last, n.index) or n.index
      end
    end
    out.partitions[i] = { id = i, graph = "main", size = #grp.nodes, nodes = ids, first = first, last = last, ops = ops,
                          node_names = names, node_ops = node_ops }
    out.partition_sizes[i] = #grp.nodes
  end
end

-- Every node left out of the partitions, with its reason and rule; returns {op -> count}.
local function unsupported_entries(out, ir, core)
  local in_group, counts = {}, {}
  for _, grp in ipairs(core.groups) do for _, n in ipairs(grp.nodes) do in_group[n] = true end end
  for _, n in ipairs(ir.nodes) do
    if not in_group[n] then
      local reason = core.filtered[n] or core.sup[n].reason or "not in a partition"
      out.unsupported[#out.unsupported + 1] = { node = node_id(n), name = n.name, reason = reason,
                                                rule = core.sup[n].rule,
                                                op = n.domain ~= "" and (n.domain .. ":" .. n.op) or n.op }
      counts[n.op] = (counts[n.op] or 0) + 1
    end
  end
  local list = {}
  for op in pairs(counts) do list[#list + 1] = op end
  table.sort(list)
  out.unsupported_ops = list
  return counts
end

-- Cut-makers: supporting every node of one op type, how many partitions disappear?
local function cut_makers(out, ir, opts, core, counts)
  for _, op in ipairs(out.unsupported_ops) do
    local groups = M.group(ir, opts, function(n) return n.op == op end, core.cache)
    out.cut_makers[#out.cut_makers + 1] = { op = op, nodes = counts[op],
                                            partitions_caused = math.max(0, #core.groups - #groups),
                                            partitions_if_supported = #groups }
  end
  table.sort(out.cut_makers, function(a, b)
    if a.partitions_caused ~= b.partitions_caused then return a.partitions_caused > b.partitions_caused end
    if a.nodes ~= b.nodes then return a.nodes > b.nodes end
    return a.op < b.op
  end)
end

-- Subgraphs, each on its own, when the EP is allowed to look at them.
local function subgraph_summaries(out, m, g, ir, opts)
  out.subgraphs, out.nodes_in_subgraphs, out.subgraph_summaries = 0, 0, {}
  local function walk(graph)
    for _, n in ipairs(graph.nodes) do
      for _, sg in ipairs(n.subgraphs) do
        out.subgraphs = out.subgraphs + 1
        out.nodes_in_subgraphs = out.nodes_in_subgraphs + #sg.graph.nodes
        if opts.enable_on_subgraphs then
          local sub = irlib.from_graph(sg.graph, m, { opset = m.opsets, ir_version = m.ir_version, parent = ir })
          passes.run(sub)
          local groups = M.group(sub, opts)
          local s = 0
          for _, grp in ipairs(groups) do s = s + #grp.nodes end
          out.subgraph_summaries[#out.subgraph_summaries + 1] = { owner = node_id(n), attr = sg.attr,
            summary = fmt_summary(#groups, #sub.nodes, s), partitions = #groups, nodes = #sub.nodes,
            supported_nodes = s }
        end
        walk(sg.graph)
      end
    end
  end
  walk(g)
  if #out.subgraph_summaries == 0 then out.subgraph_summaries = nil end
end

function M.analyse(m, g, o)
  local opts = {
    model_format = o.model_format or "neuralnetwork", compute_units = o.compute_units or "ALL",
    require_static_input_shapes = o.require_static_input_shapes or false,
    enable_on_subgraphs = o.enable_on_subgraphs or false, freeze = o.freeze, freeze_all = o.freeze_all,
  }
  local version, verr = rules.normalize(o.ort_version)
  if not version then error("usage: " .. verr, 0) end
  opts.ort_version = version
  local core = M.core(m, g, opts)
  local ir = core.ir
  local out = {
    mode = "predict", model_format = opts.model_format, ort_version = version, nodes_raw = #g.nodes, nodes = core.nodes,
    supported_nodes = core.supported, partitions = {}, partition_sizes = {}, unsupported = {}, cut_makers = {},
    verdict = core.verdict, pct_supported = core.pct, frozen = core.frozen, passes = {},
    options = { ModelFormat = opts.model_format == "mlprogram" and "MLProgram" or "NeuralNetwork",
                MLComputeUnits = opts.compute_units, EnableOnSubgraphs = opts.enable_on_subgraphs and 1 or 0,
                RequireStaticInputShapes = opts.require_static_input_shapes and 1 or 0 },
  }
  for k, v in pairs(core.stats) do if v ~= 0 then out.passes[k] = v end end
  partition_entries(out, core)
  local counts = unsupported_entries(out, ir, core)
  if o.quick then return out end
  cut_makers(out, ir, opts, core, counts)
  out.summary = fmt_summary(#core.groups, core.nodes, core.supported)
  out.hops = estimate_hops(ir, core.groups)
  if opts.compute_units == "CPUOnly" then
    out.note = "MLComputeUnits=CPUOnly: the CoreML partitions run on the CPU through Core ML"
  end
  subgraph_summaries(out, m, g, ir, opts)
  out.counterfactuals = M.counterfactuals(m, g, opts, core)
  return out
end

-- ---- counterfactuals ------------------------------------------------------------------------------------------
local function brief(r)
  return { partitions = #r.groups, nodes = r.nodes, supported_nodes = r.supported, verdict = r.verdict }
end

local function has_dynamic_inputs(ir)
  for _, vi in ipairs(ir.inputs) do
    local t = ir.types[vi.name]
    if t and t.shape and not types.is_static(t.shape) then return true end
  end
  return false
end

function M.counterfactuals(m, g, opts, base)
  local out = {}
  local function add(kind, text, r, extra)
    local j = brief(r)
    j.kind = kind
    for k, v in pairs(extra or {}) do j[k] = v end
    out[#out + 1] = { text = text, json = j }
  end
  -- as ONNX Runtime's usability checker: the fixed-shape alternative when the verdict is not YES
  if not opts.freeze and not opts.freeze_all and base.verdict ~= "YES" and has_dynamic_inputs(base.ir) then
    local o2 = {}
    for k, v in pairs(opts) do o2[k] = v end
    o2.freeze_all = 1
    local ok, r = pcall(M.core, m, g, o2)
    if ok then
      add("freeze",
        string.format("every dynamic input dim fixed (--freeze-all 1; the value matters little): "
        .. "%d partitions, %d/%d nodes, %s",
        #r.groups, r.supported, r.nodes, r.verdict), r)
    end
  end
  local gelu = require "mlsh.onnx.gelu"
  local matches = gelu.find(g, gelu.stored_values(g, m))
  local erf_cut = false
  for n, s in pairs(base.sup) do if n.op == "Erf" and not s.ok then erf_cut = true end end
  if #matches > 0 and not erf_cut then
    out[#out + 1] = { text = string.format("%d Erf-GELU subgraphs found; Erf is supported here, "
      .. "so the tanh rewrite changes no partition",
      #matches), json = { kind = "gelu_tanh", gelu_subgraphs = #matches, partitions = #base.groups, nodes = base.nodes,
      supported_nodes = base.supported, verdict = base.verdict, unchanged = true } }
  elseif #matches > 0 then
    local r = M.core(m, g, opts, function(ir) gelu.rewrite_ir(ir, gelu.find(ir,
      function(name) return ir:values(name) end)) end,
      base.ir)
    add("gelu_tanh",
      string.format("%d Erf-GELU subgraphs rewritten to the tanh approximation: %d partitions, %d/%d nodes, %s",
      #matches, #r.groups, r.supported, r.nodes, r.verdict), r, { gelu_subgraphs = #matches })
  end
  local fp16 = M.fp16_share(base.ir)
  if fp16 > 0.5 then
    local r = M.core(m, g, opts, M.to_fp32, base.ir)
    add("fp32",
      string.format("fp16 graph (%.0f%% of float values): as fp32 it would give %d partitions, %d/%d nodes, %s",
      fp16 * 100, #r.groups, r.supported, r.nodes, r.verdict), r, { fp16_share = fp16 })
  end
  return out
end

-- Share of float-typed values that are fp16.
function M.fp16_share(ir)
  local f16, f = 0, 0
  for _, t in pairs(ir.types) do
    if t.elem == types.FLOAT16 then f16 = f16 + 1; f = f + 1
    elseif t.elem == types.FLOAT then f = f + 1 end
  end
  return f > 0 and f16 / f or 0
end

-- The fp32 alternative of an fp16 graph: every fp16 value, constant and cast becomes fp32.
function M.to_fp32(ir)
  for _, t in pairs(ir.types) do if t.elem == types.FLOAT16 then t.elem = types.FLOAT end end
  for _, c in pairs(ir.consts) do if c.elem == types.FLOAT16 then c.elem = types.FLOAT end end
  for _, vi in ipairs(ir.inputs) do
    if vi.type and vi.type.elem == types.FLOAT16 then vi.type = { kind = "tensor", elem = types.FLOAT,
      shape = vi.type.shape } end
  end
  for _, n in ipairs(ir.nodes) do
    if n.op == "Cast" and irlib.attr(n, "to", nil) == types.FLOAT16 then
      local attrs = {}
      for k, v in pairs(n.attrs) do attrs[k] = v end
      attrs.to = { name = "to", type = "INT", value = types.FLOAT }
      n.attrs = attrs
    end
  end
end

return M
