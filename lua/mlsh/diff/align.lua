-- mlsh.diff.align — op-by-op alignment of two models (the `ops` and `dtypes` sections of mlsh diff).
--   local align = require "mlsh.diff.align"
--   local nodes_a = align.nodes(ma)           -- {function = {node...}} from the public Model API
--   local r = align.align(nodes_a, nodes_b)   -- {pairs = {{a, b, by = "name"|"structure"}}, added, removed,
--                                             --  a_to_b = {[node] = node}, b_to_a = ...}
-- A node is {fn, key, name, type, ins = {{param, name}}, outs = {{name, dtype, shape}}, attrs = "k=v;…",
-- index, weight_params = {param = true}}. Weights (const and constexpr_* ops) are not nodes: they are
-- the weights section's business; an input fed by one counts as "a weight" when matching structure.
-- Alignment: 1. same function and same name; 2. in program order, an unaligned op of B takes the
-- first unaligned op of A of the same type whose inputs come from the already-aligned producers
-- (function inputs by name, weights by parameter; casts see-through). An op kept by name whose
-- inputs now come from other producers is marked rewired.
local M = {}

local function is_weight_op(t) return t == "const" or (type(t) == "string" and t:match("^constexpr_") ~= nil) end
M.is_weight_op = is_weight_op

-- A stable text for a decoded attribute value (tables with sorted keys, numbers with %.9g).
local function canon(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.9g", v)
  elseif t == "string" then return string.format("%q", v)
  elseif t == "boolean" or t == "nil" then return tostring(v)
  elseif t == "table" and depth < 6 then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    local parts = {}
    for i, k in ipairs(keys) do
      if i > 64 then parts[#parts + 1] = "…" break end
      parts[#parts + 1] = (type(k) == "number" and "" or (tostring(k) .. "=")) .. canon(v[k], depth + 1)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "<" .. t .. ">"
end
M.canon = canon

local function attr_map(op)
  local out = {}
  local ok, attrs = pcall(op.attributes, op)
  if ok and type(attrs) == "table" then
    for k, v in pairs(attrs) do if k ~= "name" then out[k] = canon(v) end end
  end
  -- immediate (non-const) inputs are part of what the op does
  local iok, ins = pcall(op.inputs, op)
  if iok then
    for _, e in ipairs(ins) do
      if not e.name and e.value ~= nil then out["input:" .. tostring(e.param)] = canon(e.value) end
    end
  end
  return out
end

local function shape_text(s)
  if type(s) ~= "table" then return "?" end
  local p = {}
  for i, d in ipairs(s) do p[i] = tostring(d) end
  return "[" .. table.concat(p, ",") .. "]"
end
M.shape_text = shape_text

-- Core ML ML programs and ONNX graphs: every op of every function; NeuralNetworks: the layers.
function M.nodes(m)
  local by_fn, order = {}, {}
  local function add(fn, node)
    if not by_fn[fn] then by_fn[fn] = {} order[#order + 1] = fn end
    local list = by_fn[fn]
    node.fn, node.index = fn, #list + 1
    list[#list + 1] = node
  end
  local weight_outputs = {}
  for _, op in ipairs(m:ops()) do
    if is_weight_op(op.type) then
      for _, o in ipairs(op.outputs or {}) do weight_outputs[(op["function"] or "") .. "\0" .. o.name] = true end
    end
  end
  for _, op in ipairs(m:ops()) do
    if not is_weight_op(op.type) then
      local fn = op["function"] or "main"
      local outs = {}
      for i, o in ipairs(op.outputs or {}) do outs[i] = { name = o.name, dtype = o.dtype, shape = o.shape } end
      local ins = {}
      local ok, list = pcall(op.inputs, op)
      for _, e in ipairs(ok and list or {}) do
        if e.name then
          ins[#ins + 1] = { param = tostring(e.param), name = e.name,
                            weight = weight_outputs[fn .. "\0" .. e.name] or (op.domain ~= nil and m.tensor and m:tensor(e.name) ~= nil) }
        end
      end
      local name = (op.name and op.name ~= "") and op.name or (outs[1] and outs[1].name) or ("#" .. tostring(op.index))
      add(fn, { key = name, name = name, type = op.type, ins = ins, outs = outs, attrs = attr_map(op) })
    end
  end
  if #order == 0 and m.model_type ~= "pipeline" then
    local ok, layers = pcall(m.layers, m)
    for _, l in ipairs(ok and layers or {}) do
      local ins, outs = {}, {}
      for i, n in ipairs(l.inputs or {}) do ins[i] = { param = tostring(i - 1), name = n } end
      for i, n in ipairs(l.outputs or {}) do outs[i] = { name = n } end
      add("main", { key = l.name, name = l.name, type = l.type, ins = ins, outs = outs, attrs = {} })
    end
  end
  return by_fn, order
end

-- Input signatures of ops on each side: the type and, per input, its producer (in A terms for B's
-- ops, through the alignment so far), "weight", or the function input's name.
local function signatures(la, lb, r)
  -- producers: output name -> node, per side
  local prod_a, prod_b = {}, {}
  for _, n in ipairs(la) do for _, o in ipairs(n.outs) do prod_a[o.name] = n end end
  for _, n in ipairs(lb) do for _, o in ipairs(n.outs) do prod_b[o.name] = n end end
  -- casts are see-through (fp16 builds cast inputs and outputs that fp32 builds do not have)
  local function through(prod, name, e)
    local pr = prod[name]
    local hops = 0
    while pr and pr.type == "cast" and pr.ins[1] and hops < 8 do
      name, e = pr.ins[1].name, pr.ins[1]
      pr = prod[name]
      hops = hops + 1
    end
    return pr, name, e
  end
  -- the signature of an input as seen from A: its producer (in A terms), a weight, or the name
  local function sig_a(n)
    local p = {}
    for i, e0 in ipairs(n.ins) do
      local pr, _, e = through(prod_a, e0.name, e0)
      p[i] = e0.param .. "=" .. (pr and ("op:" .. pr.key) or (e.weight and "weight" or ("in:" .. e.name)))
    end
    return n.type .. "(" .. table.concat(p, ",") .. ")"
  end
  local function sig_b(n)
    local p = {}
    for i, e0 in ipairs(n.ins) do
      local pr, _, e = through(prod_b, e0.name, e0)
      local pa = pr and r.b_to_a[pr]
      p[i] = e0.param .. "=" .. (pr and (pa and ("op:" .. pa.key) or "op:?unaligned") or (e.weight and "weight" or ("in:" .. e.name)))
    end
    return n.type .. "(" .. table.concat(p, ",") .. ")"
  end
  return sig_a, sig_b
end

-- Align two {fn -> nodes} maps; functions pair by name.
function M.align(na, nb)
  local r = { pairs = {}, added = {}, removed = {}, a_to_b = {}, b_to_a = {}, by_name = 0, by_structure = 0 }
  local fns = {}
  for fn in pairs(na) do fns[#fns + 1] = fn end
  for fn in pairs(nb) do if not na[fn] then fns[#fns + 1] = fn end end
  table.sort(fns)
  for _, fn in ipairs(fns) do
    local la, lb = na[fn] or {}, nb[fn] or {}
    local a_by_name = {}
    for _, n in ipairs(la) do a_by_name[n.key] = a_by_name[n.key] or n end
    for _, n in ipairs(lb) do
      local a = a_by_name[n.key]
      if a and not r.a_to_b[a] then
        r.a_to_b[a], r.b_to_a[n] = n, a
        r.by_name = r.by_name + 1
      end
    end
    local sig_a, sig_b = signatures(la, lb, r)
    local free_a = {}
    for _, n in ipairs(la) do
      if not r.a_to_b[n] then
        local s = sig_a(n)
        free_a[s] = free_a[s] or {}
        table.insert(free_a[s], n)
      end
    end
    for _, n in ipairs(lb) do
      if not r.b_to_a[n] then
        local cands = free_a[sig_b(n)]
        if cands and #cands > 0 then
          local a = table.remove(cands, 1)
          r.a_to_b[a], r.b_to_a[n] = n, a
          r.by_structure = r.by_structure + 1
        end
      end
    end
    for _, n in ipairs(la) do
      if r.a_to_b[n] then
        local b = r.a_to_b[n]
        -- an op kept by name whose inputs now come from other producers was rewired
        local rewired = n.key == b.key and sig_a(n) ~= sig_b(b)
        r.pairs[#r.pairs + 1] = { a = n, b = b, by = (n.key == b.key) and "name" or "structure", rewired = rewired }
      else
        r.removed[#r.removed + 1] = n
      end
    end
    for _, n in ipairs(lb) do
      if not r.b_to_a[n] then r.added[#r.added + 1] = n end
    end
  end
  return r
end

-- What changed between two aligned nodes: {type = {a, b}?, attrs = {{name, a, b}}, inputs?, outputs = {{i, field, a, b}}}
function M.changes(a, b)
  local c = { attrs = {}, outputs = {} }
  local any = false
  if a.type ~= b.type then c.type = { a.type, b.type } any = true end
  local keys, seen = {}, {}
  for k in pairs(a.attrs) do keys[#keys + 1] = k seen[k] = true end
  for k in pairs(b.attrs) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if a.attrs[k] ~= b.attrs[k] then
      c.attrs[#c.attrs + 1] = { name = k, a = a.attrs[k], b = b.attrs[k] }
      any = true
    end
  end
  for i = 1, math.max(#a.outs, #b.outs) do
    local x, y = a.outs[i], b.outs[i]
    if not x or not y then
      c.outputs[#c.outputs + 1] = { index = i, field = "count", a = tostring(#a.outs), b = tostring(#b.outs) }
      any = true
      break
    end
    if x.dtype ~= y.dtype then
      c.outputs[#c.outputs + 1] = { index = i, name = y.name, field = "dtype", a = tostring(x.dtype), b = tostring(y.dtype) }
      any = true
    end
    if shape_text(x.shape) ~= shape_text(y.shape) and (x.shape or y.shape) then
      c.outputs[#c.outputs + 1] = { index = i, name = y.name, field = "shape", a = shape_text(x.shape), b = shape_text(y.shape) }
      any = true
    end
  end
  if #a.ins ~= #b.ins then c.inputs = { #a.ins, #b.ins } any = true end
  return any and c or nil
end

return M
