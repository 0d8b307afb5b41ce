-- mlsh.onnx.gelu — exact GELU built from Erf (as PyTorch exports nn.GELU()):
--     y = x * 0.5 * (1 + erf(x / sqrt(2)))      (Div by 1.4142… or Mul by 0.7071…; the 0.5 either
--                                                  after the product or on x first)
-- and its rewrite to the tanh approximation, whose ops (Pow, Mul, Add, Tanh) every CoreML model
-- format supports, where Erf needs an ML program:
--     y = (x * 0.5) * (1 + tanh(0.7978845608 * (x + 0.044715 * x^3)))
--   gelu.find(graph, value_of) -> {{x, y, nodes = {…}, last = node}}  (graph: .nodes with op,
--     domain, inputs, outputs — a stored graph or an ir; value_of(name) -> number list | nil)
--   gelu.stored_values(graph, model) -> value_of for a stored graph (initializers, Constant nodes)
--   gelu.rewrite_ir(ir, matches)     gelu.TANH_NODES (the replacement, for surgery)
local M = {}

local SQRT2, INV_SQRT2 = math.sqrt(2), 1 / math.sqrt(2)

local function near(v, target) return v and math.abs(v - target) <= 1e-3 * math.max(1, math.abs(target)) end

local function scalar(value_of, name)
  local v = name and name ~= "" and value_of(name)
  if not v or #v == 0 then return nil end
  for _, x in ipairs(v) do if x ~= v[1] then return nil end end
  return v[1]
end

function M.stored_values(g, model)
  local consts = {}
  for _, n in ipairs(g.nodes) do
    if n.op == "Constant" and n.domain == "" and n.outputs[1] then consts[n.outputs[1]] = n end
  end
  return function(name)
    local t = g.initializers[name]
    if t then return t:values(model, 64) end
    local c = consts[name]
    if not c then return nil end
    local a = c.attrs.value
    if a and a.type == "TENSOR" then return a.value:values(model, 64) end
    if c.attrs.value_float then return { c.attrs.value_float.value } end
    if c.attrs.value_floats then return c.attrs.value_floats.value end
    return nil
  end
end

function M.find(g, value_of)
  local prod, cons = {}, {}
  for _, n in ipairs(g.nodes) do
    if not n.removed then
      for _, o in ipairs(n.outputs) do prod[o] = n end
      for _, i in ipairs(n.inputs) do
        if i ~= "" then cons[i] = cons[i] or {}; table.insert(cons[i], n) end
      end
    end
  end
  local outputs = {}
  for _, o in ipairs(g.outputs or {}) do outputs[o.name] = true end
  local function only(name)
    local l = cons[name]
    if not l or #l ~= 1 or outputs[name] then return nil end
    return l[1]
  end
  local function other(node, name)
    if node.inputs[1] == name then return node.inputs[2] end
    if node.inputs[2] == name then return node.inputs[1] end
    return nil
  end
  local matches, used = {}, {}
  for _, erf in ipairs(g.nodes) do
    if erf.op == "Erf" and erf.domain == "" and not erf.removed then
      local d = prod[erf.inputs[1]]
      local x
      if d and d.domain == "" and d.op == "Div" and near(scalar(value_of, d.inputs[2]), SQRT2) then x = d.inputs[1]
      elseif d and d.domain == "" and d.op == "Mul" then
        if near(scalar(value_of, d.inputs[2]), INV_SQRT2) then x = d.inputs[1]
        elseif near(scalar(value_of, d.inputs[1]), INV_SQRT2) then x = d.inputs[2] end
      end
      local add = x and only(d.outputs[1]) == erf and only(erf.outputs[1])
      local one = add and add.op == "Add" and other(add, erf.outputs[1])
      local mul = one and near(scalar(value_of, one), 1) and only(add.outputs[1])
      local nodes, y
      if mul and mul.op == "Mul" then
        local o = other(mul, add.outputs[1])
        if o == x then
          local fin = only(mul.outputs[1])
          local half = fin and fin.op == "Mul" and other(fin, mul.outputs[1])
          if half and near(scalar(value_of, half), 0.5) then nodes, y = { d, erf, add, mul, fin }, fin end
        else
          local h = o and prod[o]
          if h and h.op == "Mul" and only(h.outputs[1]) == mul then
            local hx = (h.inputs[1] == x and h.inputs[2]) or (h.inputs[2] == x and h.inputs[1])
            if hx and near(scalar(value_of, hx), 0.5) then nodes, y = { h, d, erf, add, mul }, mul end
          end
        end
      end
      if nodes then
        local clash = false
        for _, n in ipairs(nodes) do if used[n] then clash = true end end
        if not clash then
          for _, n in ipairs(nodes) do used[n] = true end
          matches[#matches + 1] = { x = x, y = y.outputs[1], nodes = nodes, last = y }
        end
      end
    end
  end
  return matches
end

-- The tanh form as {op, inputs, output} with symbolic names: "x", "y", constants "c:<value>",
-- intermediates "t1"… (callers map them to real names).
M.TANH_NODES = {
  { "Pow", { "x", "c:3" }, "t1" },
  { "Mul", { "t1", "c:0.044715" }, "t2" },
  { "Add", { "x", "t2" }, "t3" },
  { "Mul", { "t3", "c:0.7978845608028654" }, "t4" },
  { "Tanh", { "t4" }, "t5" },
  { "Add", { "t5", "c:1" }, "t6" },
  { "Mul", { "x", "c:0.5" }, "t7" },
  { "Mul", { "t7", "t6" }, "y" },
}

function M.rewrite_ir(ir, matches)
  local irlib = require "mlsh.onnx.ir"
  local types = require "mlsh.onnx.types"
  for _, mt in ipairs(matches) do
    local xt = ir:type_of(mt.x)
    local elem = xt and xt.elem or types.FLOAT
    for _, n in ipairs(mt.nodes) do n.removed = true end
    local names = { x = mt.x, y = mt.y }
    local function name_of(sym)
      if names[sym] then return names[sym] end
      local v = sym:match("^c:(.*)$")
      if v then
        local cname = ir:fresh("gelu_const")
        ir:add_const(cname, elem, {}, { tonumber(v) + 0.0 })
        names[sym] = cname
      else
        names[sym] = ir:fresh("gelu")
      end
      return names[sym]
    end
    for _, spec in ipairs(M.TANH_NODES) do
      local ins = {}
      for i, s in ipairs(spec[2]) do ins[i] = name_of(s) end
      ir.nodes[#ir.nodes + 1] = irlib.new_node(spec[1], ins, { name_of(spec[3]) }, nil, { name = "gelu_tanh_"
        .. spec[3] })
    end
  end
  ir:compact()
  ir:toposort()
end

return M
