-- mlsh.report.html_data — the data an HTML report embeds (one JSON object), from the public Model
-- API and mlsh check's own pipeline (mlsh.engine.check) (so the findings are exactly `check --format json`'s).
--   local D = require "mlsh.report.html_data"
--   local d = D.model(m, { compute_units = "ALL", against = original_model_or_nil })
-- d = {model = {...summary}, findings = [...], summary = {...}, graph = {functions = [{name, nodes}]},
--      reasons = [strings], segments = [...], weights = [...], required = {...}, ep = {...}?}
-- A graph node: {n = name, t = type, f = function, d = device, r = reason index, o = outputs text,
--   p = predecessor node ids (0-based), w = weight ids (0-based), x = ONNX partition id?}.
-- Nodes are the ops placement simulates (const/constexpr ops are weights, not nodes; NN layers;
-- pipeline sub-models' ops); for ONNX every node of the main graph, coloured by EP partition.
local mlsh = require "mlsh"
local json = mlsh.json

local M = { HIST_BINS = 32, HIST_SAMPLE = 65536 }

local function shape_text(s)
  if type(s) ~= "table" then return "?" end
  local p = {}
  for i, d in ipairs(s) do p[i] = tostring(d) end
  return "[" .. table.concat(p, ",") .. "]"
end

local function is_weight_op(t) return t == "const" or (type(t) == "string" and t:match("^constexpr_") ~= nil) end

-- A histogram of a weight's values (every value up to HIST_SAMPLE, else an even stride sample).
function M.histogram(a, bins)
  bins = bins or M.HIST_BINS
  local n = #a
  if n == 0 then return nil end
  local st = a:stats()
  local lo, hi = st.min, st.max
  local counts = {}
  for i = 1, bins do counts[i] = 0 end
  local step = n > M.HIST_SAMPLE and n / M.HIST_SAMPLE or 1
  local width = hi > lo and (hi - lo) / bins or 1
  local i, taken = 1.0, 0
  while i <= n do
    local v = a[math.floor(i)]
    if v == v then
      local b = math.floor((v - lo) / width) + 1
      if b > bins then b = bins elseif b < 1 then b = 1 end
      counts[b] = counts[b] + 1
      taken = taken + 1
    end
    i = i + step
  end
  return { min = lo, max = hi, mean = st.mean, std = st.std, counts = json.array(counts), sampled = taken < n,
           sample = taken, sparsity = st.sparsity }
end

local function weights_of(m, opts)
  local list = {}
  if m.format ~= "onnx" then
    local ok, inv = pcall(m.inventory, m)
    if ok then list = inv end
  end
  if #list == 0 then list = m:weights() end
  local snr = {}
  if opts.against then
    local ok, rows = pcall(mlsh.compress.compare, opts.against, m)
    for _, r in ipairs(ok and rows or {}) do snr[(r["function"] or "") .. "\0" .. r.name] = r.snr_db end
  end
  for _, r in ipairs(opts.snr or {}) do snr[(r["function"] or "") .. "\0" .. r.name] = r.snr_db end
  local out, by_name = json.array({}), {}
  for i, e in ipairs(list) do
    local fn = e["function"] or ""
    local form = "none"
    if e.compression then form = mlsh.compress.describe_compression(e.compression)
    elseif e.quantized then form = "nn quantized" end
    local w = { name = e.name, fn = fn, dtype = e.dtype or json.null, shape = shape_text(e.shape), count = e.count or 0,
                bytes = e.bytes or 0, dense = e.dense_bytes or e.bytes or 0, form = form }
    local s = snr[fn .. "\0" .. e.name] or snr["\0" .. e.name]
    if s and s == s then w.snr = s ~= math.huge and s or "inf" end
    if not opts.no_histograms then
      local ok, a = pcall(e.values, e)
      if ok and a then w.hist = M.histogram(a) end
    end
    out[i] = w
    by_name[fn .. "\0" .. e.name] = i - 1
    if e.layer then by_name["layer\0" .. e.layer .. "\0" .. i] = i - 1 end
  end
  return out, by_name, list
end

-- op name -> {inputs = {names}, outputs = {"name: dtype shape"}} for ML programs, NN layers, ONNX
local function structure_of(m)
  local s = {}
  local ok, ops = pcall(m.ops, m)
  for _, op in ipairs(ok and ops or {}) do
    local ins, outs = {}, {}
    local iok, list = pcall(op.inputs, op)
    for _, e in ipairs(iok and list or {}) do if e.name then ins[#ins + 1] = e.name end end
    for i, o in ipairs(op.outputs or {}) do
      outs[i] = { name = o.name, text = o.name .. ": " .. tostring(o.dtype or "?") .. " " .. shape_text(o.shape) }
    end
    s[(op["function"] or "main") .. "\0" .. (op.name ~= "" and op.name or (outs[1] and outs[1].name or ""))] =
      { ins = ins, outs = outs, type = op.type, index = op.index, weight = is_weight_op(op.type) }
  end
  local lok, layers = pcall(m.layers, m)
  for _, l in ipairs(lok and layers or {}) do
    local outs = {}
    for i, n in ipairs(l.outputs or {}) do outs[i] = { name = n, text = n } end
    s["main\0" .. l.name] = { ins = l.inputs or {}, outs = outs, type = l.type }
  end
  return s
end

local function reason_index(d, text)
  text = text or ""
  local i = d._reason_ix[text]
  if not i then
    d.reasons[#d.reasons + 1] = text
    i = #d.reasons - 1
    d._reason_ix[text] = i
  end
  return i
end

-- Graph nodes from placement ops (Core ML) with edges from the op structure.
local function coreml_graph(d, m, placement, by_weight)
  local st = structure_of(m)
  local fns, fn_ix = json.array({}), {}
  local producer = {}
  for _, o in ipairs(placement.ops) do
    local fname = o.model ~= json.null and o.model and (o.model .. "/" .. (o["function"] ~= json.null and o["function"] or "main"))
      or (o["function"] ~= json.null and o["function"] or "main")
    local g = fn_ix[fname]
    if not g then
      g = { name = fname, nodes = json.array({}) }
      fns[#fns + 1] = g
      fn_ix[fname] = g
    end
    local sfn = (o["function"] ~= json.null and o["function"]) or "main"
    local info = (o.model == json.null or not o.model) and st[sfn .. "\0" .. o.op] or nil
    local node = { n = o.op, t = o.type, d = o.device, r = reason_index(d, o.reason), p = json.array({}), w = json.array({}),
                   o = json.array({}), fl = o.flops, by = o.bytes }
    node.id = #g.nodes
    g.nodes[#g.nodes + 1] = node
    if info then
      for i, out in ipairs(info.outs) do
        node.o[i] = out.text
        producer[fname .. "\0" .. out.name] = node.id
      end
      for _, name in ipairs(info.ins) do
        local pid = producer[fname .. "\0" .. name]
        if pid then node.p[#node.p + 1] = pid
        else
          local wid = by_weight[sfn .. "\0" .. name]
          if wid then node.w[#node.w + 1] = wid end
        end
      end
    end
  end
  for _, g in ipairs(fns) do for _, n in ipairs(g.nodes) do n.id = nil end end
  return fns
end

-- ONNX: every main-graph node, on the CoreML EP (partition id) or the CPU EP.
local function onnx_graph(d, m, ep, by_weight)
  local part_of, unsup = {}, {}
  for _, p in ipairs(ep.partitions or {}) do
    for _, id in ipairs(p.nodes or {}) do part_of[id] = p.id end
  end
  for _, u in ipairs(ep.unsupported or {}) do unsup[u.node] = u.reason end
  local g = { name = "main", nodes = json.array({}) }
  local producer = {}
  for _, op in ipairs(m:ops("main")) do
    if op.depth == 0 or op.depth == nil then
      -- the EP numbers nodes from 0 (ONNX Runtime's node index); ops count from 1
      local ix = op.index - 1
      local pid = part_of[ix]
      local reason
      if pid then reason = "CoreML EP partition " .. pid
      elseif unsup[ix] then reason = "CPU EP: " .. tostring(unsup[ix])
      else reason = "CPU EP: folded or fused away by ONNX Runtime's graph optimizations" end
      local node = { n = op.name ~= "" and op.name or ("#" .. op.index), t = op.type, d = pid and "CoreML" or "CPU",
                     r = reason_index(d, reason), p = json.array({}), w = json.array({}), o = json.array({}), x = pid or json.null }
      local id = #g.nodes
      g.nodes[#g.nodes + 1] = node
      for i, o in ipairs(op.outputs or {}) do
        node.o[i] = o.name .. ": " .. tostring(o.dtype or "?") .. " " .. shape_text(o.shape)
        producer[o.name] = id
      end
      for _, e in ipairs(op:inputs()) do
        if e.name then
          local p = producer[e.name]
          if p then node.p[#node.p + 1] = p
          elseif by_weight["main\0" .. e.name] then node.w[#node.w + 1] = by_weight["main\0" .. e.name] end
        end
      end
    end
  end
  return json.array({ g })
end

local function features(list)
  local out = json.array({})
  for i, f in ipairs(list or {}) do
    out[i] = { name = f.name, type = require("mlsh.diff").feature_text(f) }
  end
  return out
end

-- Everything the page shows for one model.
function M.model(m, opts)
  opts = opts or {}
  local report = require("mlsh.diff").check_of(m, { compute_units = opts.compute_units or "ALL", rules = opts.rules,
                                                            calibrated = opts.calibrated })
  local d = { reasons = json.array({}), _reason_ix = {} }
  local weights, by_weight = weights_of(m, opts)
  d.weights = weights
  local spec = require "mlsh.spec"
  local nops = 0
  d.model = { path = m.path, format = m.format, model_type = m.model_type or json.null,
              spec_version = m.spec_version or json.null,
              os = m.spec_version and spec.target_name(m.spec_version) or json.null,
              inputs = features(m:inputs()), outputs = features(m:outputs()),
              weights = #weights, weight_bytes = 0 }
  for _, w in ipairs(weights) do d.model.weight_bytes = d.model.weight_bytes + w.bytes end
  d.findings = report.findings
  d.summary = { findings = report.summary }
  if m.format == "onnx" then
    local ep = report.ep
    d.graph = { functions = onnx_graph(d, m, ep, by_weight) }
    d.ep = { partitions = json.array({}), nodes = ep.nodes, supported_nodes = ep.supported_nodes, verdict = ep.verdict,
             summary = ep.summary }
    for i, p in ipairs(ep.partitions or {}) do
      d.ep.partitions[i] = { id = p.id, size = p.size, first = p.first, last = p.last, ops = p.ops or json.object({}) }
    end
    d.model.opsets = json.object({})
    for k, v in pairs(m.opsets or {}) do d.model.opsets[k == "" and "ai.onnx" or k] = v end
    d.segments = json.array({})
  else
    local p = report.placement
    d.graph = { functions = coreml_graph(d, m, p, by_weight) }
    d.summary.ane = p.ane_coverage
    d.summary.segments = #p.segments
    d.summary.transitions = #p.transitions
    d.segments = p.segments
    d.transitions = p.transitions
    d.cut_makers = p.cut_makers
    d.required = report.required_spec
    d.compute_units = p.compute_units
  end
  for _, g in ipairs(d.graph.functions) do nops = nops + #g.nodes end
  d.model.ops = nops
  d._reason_ix = nil
  return d
end

return M
