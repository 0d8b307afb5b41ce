-- mlsh.onnx.shape_more — the second half of mlsh.onnx.shape's per-op inference rules: Shape/Size,
-- ConstantOfShape/Expand/Tile/Range, reductions and ArgMax/ArgMin, Pad, Resize, TopK,
-- DepthToSpace/SpaceToDepth, NonZero, LSTM/GRU/RNN, OneHot, Einsum, Quantize/DequantizeLinear.
--   shape_more.install(rules, helpers) adds them to `rules` (helpers: attr,
--   copy, is_int, norm_axis, const_ints, broadcast: mlsh.onnx.shape's own, handed over so this
--   module does not require it back).
local types = require "mlsh.onnx.types"

local H = {}
local function attr(...) return H.attr(...) end
local function copy(...) return H.copy(...) end
local function is_int(...) return H.is_int(...) end
local function norm_axis(...) return H.norm_axis(...) end
local function const_ints(...) return H.const_ints(...) end
local function broadcast(...) return H.broadcast(...) end

local rules = {}
rules.Shape = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = types.INT64, shape = { false } } } end
  local r = #x.shape
  local s, e = norm_axis(attr(node, "start", 0), r), norm_axis(attr(node, "end", r), r)
  s, e = math.max(0, math.min(s, r)), math.max(0, math.min(e, r))
  return { { elem = types.INT64, shape = { math.max(0, e - s) } } }
end
rules.Size = function() return { { elem = types.INT64, shape = {} } } end

rules.ConstantOfShape = function(node, ctx)
  local shape = const_ints(ctx, node.inputs[1])
  local t = attr(node, "value", nil)
  local elem = t and t.dtype or types.FLOAT
  if shape then return { { elem = elem, shape = copy(shape) } } end
  local st = ctx.type(node.inputs[1])
  if st and st.shape and is_int(st.shape[1]) then
    local out = {}
    for i = 1, st.shape[1] do out[i] = false end
    return { { elem = elem, shape = out } }
  end
  return { { elem = elem } }
end
rules.Expand = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  local shape = const_ints(ctx, node.inputs[2])
  if not x then return {} end
  if shape and x.shape then return { { elem = x.elem, shape = broadcast({ x.shape, shape }) } } end
  local st = ctx.type(node.inputs[2])
  if x.shape and st and st.shape and is_int(st.shape[1]) then
    local r = math.max(#x.shape, st.shape[1])
    local out = {}
    for i = 1, r do out[i] = false end
    return { { elem = x.elem, shape = out } }
  end
  return { { elem = x.elem } }
end
rules.Tile = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  local reps = const_ints(ctx, node.inputs[2])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local out = {}
  for i, d in ipairs(x.shape) do
    out[i] = (reps and is_int(d)) and d * reps[i] or (reps and reps[i] == 1 and d) or false
  end
  return { { elem = x.elem, shape = out } }
end
rules.Range = function(node, ctx)
  local s, l, d = ctx.values(node.inputs[1]), ctx.values(node.inputs[2]), ctx.values(node.inputs[3])
  local t = ctx.type(node.inputs[1])
  if s and l and d and d[1] ~= 0 then
    return { { elem = t and t.elem, shape = { math.max(math.ceil((l[1] - s[1]) / d[1]), 0) } } }
  end
  return { { elem = t and t.elem, shape = { false } } }
end

local function reduce_rule(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local axes = attr(node, "axes", nil)
  local axes_input = node.inputs[2] and node.inputs[2] ~= ""
  if axes_input then
    axes = const_ints(ctx, node.inputs[2])
    -- ONNX's reduction shape inference skips the shape when axes is not an initializer
    if not axes then return { { elem = x.elem } } end
  end
  local keep = attr(node, "keepdims", 1) == 1
  local r = #x.shape
  local set = {}
  if not axes or #axes == 0 then
    if attr(node, "noop_with_empty_axes", 0) == 1 and axes_input then return { { elem = x.elem,
      shape = copy(x.shape) } } end
    for i = 0, r - 1 do set[i] = true end
  else
    for _, a in ipairs(axes) do set[norm_axis(a, r)] = true end
  end
  local out = {}
  for i, d in ipairs(x.shape) do
    if set[i - 1] then if keep then out[#out + 1] = 1 end
    else out[#out + 1] = d end
  end
  return { { elem = x.elem, shape = out } }
end
for _, op in ipairs({ "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
  "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare" }) do rules[op] = reduce_rule end
for _, op in ipairs({ "ArgMax", "ArgMin" }) do
  rules[op] = function(node, ctx)
    local x = ctx.type(node.inputs[1])
    if not x or not x.shape then return { { elem = types.INT64 } } end
    local axis = norm_axis(attr(node, "axis", 0), #x.shape)
    local keep = attr(node, "keepdims", 1) == 1
    local out = {}
    for i, d in ipairs(x.shape) do
      if i - 1 == axis then if keep then out[#out + 1] = 1 end else out[#out + 1] = d end
    end
    return { { elem = types.INT64, shape = out } }
  end
end

rules.Pad = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local pads = ctx.opset >= 11 and const_ints(ctx, node.inputs[2]) or attr(node, "pads", nil)
  local axes = const_ints(ctx, node.inputs[4])
  local r = #x.shape
  local out = copy(x.shape)
  if not pads then
    for i = 1, r do out[i] = false end
    return { { elem = x.elem, shape = out } }
  end
  local ax = {}
  if axes then for i, a in ipairs(axes) do ax[i] = norm_axis(a, r) end
  else for i = 1, r do ax[i] = i - 1 end end
  local n = #ax
  for i, a in ipairs(ax) do
    local d = out[a + 1]
    if is_int(d) and pads[i] and pads[i + n] then out[a + 1] = d + pads[i] + pads[i + n]
    elseif (pads[i] or 0) ~= 0 or (pads[i + n] or 0) ~= 0 then out[a + 1] = false end
  end
  return { { elem = x.elem, shape = out } }
end

rules.Resize = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local scales_name, sizes_name
  if ctx.opset >= 11 then scales_name, sizes_name = node.inputs[3],
    node.inputs[4] else scales_name = node.inputs[2] end
  local sizes = const_ints(ctx, sizes_name)
  local out = copy(x.shape)
  if sizes then
    local axes = attr(node, "axes", nil)
    if axes then for i, a in ipairs(axes) do out[norm_axis(a, #out) + 1] = sizes[i] end
    elseif #sizes == #out then out = copy(sizes) end
    return { { elem = x.elem, shape = out } }
  end
  local scales = scales_name and scales_name ~= "" and ctx.values(scales_name)
  if scales and #scales == #out then
    for i, d in ipairs(out) do out[i] = is_int(d) and math.floor(d * scales[i] + 1e-9) or (scales[i] == 1 and d
      or false) end
    return { { elem = x.elem, shape = out } }
  end
  for i = 1, #out do out[i] = false end
  return { { elem = x.elem, shape = out } }
end
rules.Upsample = rules.Resize

rules.TopK = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem }, { elem = types.INT64 } } end
  local k = const_ints(ctx, node.inputs[2])
  local axis = norm_axis(attr(node, "axis", -1), #x.shape)
  local out = copy(x.shape)
  out[axis + 1] = k and k[1] or false
  return { { elem = x.elem, shape = out }, { elem = types.INT64, shape = copy(out) } }
end

rules.DepthToSpace = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape or #x.shape ~= 4 then return { { elem = x and x.elem } } end
  local b = attr(node, "blocksize", 1)
  local s = x.shape
  return { { elem = x.elem, shape = { s[1], is_int(s[2]) and s[2] // (b * b) or false, is_int(s[3]) and s[3] * b
    or false,
                                      is_int(s[4]) and s[4] * b or false } } }
end
rules.SpaceToDepth = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape or #x.shape ~= 4 then return { { elem = x and x.elem } } end
  local b = attr(node, "blocksize", 1)
  local s = x.shape
  return { { elem = x.elem, shape = { s[1], is_int(s[2]) and s[2] * b * b or false, is_int(s[3]) and s[3] // b
    or false,
                                      is_int(s[4]) and s[4] // b or false } } }
end

rules.NonZero = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  return { { elem = types.INT64, shape = { x and x.shape and #x.shape or false, false } } }
end

local function rnn(node, ctx)
  local x = ctx.type(node.inputs[1])
  local hidden = attr(node, "hidden_size", nil)
  local dirs = attr(node, "direction", "forward") == "bidirectional" and 2 or 1
  if not x or not x.shape or #x.shape ~= 3 then return { { elem = x and x.elem } } end
  local layout = attr(node, "layout", 0)
  local seq, batch = x.shape[1], x.shape[2]
  if layout == 1 then seq, batch = x.shape[2], x.shape[1] end
  local h = hidden or false
  local y = layout == 1 and { batch, seq, dirs, h } or { seq, dirs, batch, h }
  local hs = layout == 1 and { batch, dirs, h } or { dirs, batch, h }
  return { { elem = x.elem, shape = y }, { elem = x.elem, shape = hs }, { elem = x.elem, shape = copy(hs) } }
end
rules.LSTM, rules.GRU, rules.RNN = rnn, rnn, rnn

rules.OneHot = function(node, ctx)
  local idx, values = ctx.type(node.inputs[1]), ctx.type(node.inputs[3])
  local depth = ctx.values(node.inputs[2])
  if not idx or not idx.shape then return { { elem = values and values.elem } } end
  local out = copy(idx.shape)
  local axis = norm_axis(attr(node, "axis", -1), #out + 1)
  table.insert(out, axis + 1, depth and math.tointeger(depth[1]) or false)
  return { { elem = values and values.elem, shape = out } }
end

rules.Einsum = function(node, ctx)
  local t = ctx.type(node.inputs[1])
  return { { elem = t and t.elem } }
end

rules.QuantizeLinear = function(node, ctx)
  local x, zp = ctx.type(node.inputs[1]), ctx.type(node.inputs[3])
  return { { elem = zp and zp.elem or types.UINT8, shape = x and copy(x.shape) } }
end
rules.DequantizeLinear = function(node, ctx)
  local x, s = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  return { { elem = s and s.elem or types.FLOAT, shape = x and copy(x.shape) } }
end

-- If: each output typed from the branches' declared outputs (ONNX's If inference: the branch
-- types unioned, a dim kept where both agree, no shape when the ranks differ).
rules.If = function(node, ctx)
  local branches = {}
  for _, sg in ipairs(node.subgraphs or {}) do
    if sg.attr == "then_branch" or sg.attr == "else_branch" then
      local declared, inferred = {}, ctx.subgraph_outputs and ctx.subgraph_outputs(sg.graph) or {}
      for i, vi in ipairs(sg.graph.outputs) do
        local t = vi.type
        declared[i] = (t and t.kind == "tensor" and t.elem) and { elem = t.elem, shape = t.shape } or inferred[i]
      end
      branches[#branches + 1] = declared
    end
  end
  if #branches == 0 then return {} end
  local out = {}
  for i = 1, #node.outputs do
    local elem, shape
    for k, types_of in ipairs(branches) do
      local t = types_of[i]
      if not t then elem, shape = nil, nil break end
      if k == 1 then elem, shape = t.elem, t.shape and copy(t.shape)
      elseif shape and t.shape and #shape == #t.shape then
        for d = 1, #shape do if shape[d] ~= t.shape[d] then shape[d] = false end end
      else shape = nil end
    end
    out[i] = { elem = elem, shape = shape }
  end
  return out
end

return {
  install = function(target, helpers)
    for k, v in pairs(helpers) do H[k] = v end
    for k, v in pairs(rules) do target[k] = v end
    return target
  end,
}
