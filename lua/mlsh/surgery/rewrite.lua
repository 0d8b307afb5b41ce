-- mlsh.surgery.rewrite — local rewrites for the Neural Engine.
--   rewrite.mask_fill(f, fill)   float consts holding -inf or values below `fill` (a negative number,
--                                e.g. -1e4) get `fill` instead: Apple's ANE guidance is to use a finite
--                                fill in attention masks (softmax mishandles -inf / huge negatives in fp16)
--   rewrite.gelu(f, "tanh")      gelu ops in EXACT mode use TANH_APPROXIMATION
--   rewrite.linear_to_conv(f)    linear on [B, C] or [B, S, C] with a const weight becomes a 1x1 conv in
--                                the ANE layout (B, C, 1, S): transpose/expand_dims, conv, squeeze/transpose
-- Each returns {changed = n} (n = 0: nothing to do) or nil, reason.
local core = require "mlsh.core"

local M = {}

local FLOAT = { fp16 = true, fp32 = true }

function M.mask_fill(f, fill)
  if type(fill) ~= "number" or fill >= 0 or fill ~= fill then
    return nil, "--mask-fill: the fill must be a negative number (e.g. -1e4)"
  end
  if fill < -65504 then return nil, "--mask-fill: the fill must be within the fp16 range (>= -65504)" end
  local n = 0
  for _, op in ipairs(f:ops()) do
    local out = op.outputs[1]
    if op.type == "const" and out and FLOAT[out.dtype] then
      local c = f:const_data(out.name)
      if c then
        local arr = type(c.data) == "table" and core.array.new(c.data) or c.data
        local st = arr:stats()
        if st.min < fill then
          local count = 0
          for i = 1, #arr do
            if arr[i] < fill then arr[i] = fill count = count + 1 end
          end
          for _, a in ipairs(op.attrs) do
            if a.key == "val" then a.value = f:make_value(out.dtype, c.shape, arr) end
          end
          f.editor:log("mask-fill", f.name, op, string.format("%d value(s) below %g (min %g) -> %g", count, fill, st.min, fill))
          n = n + 1
        end
      end
    end
  end
  if n > 0 then f:touch() end
  return { changed = n }
end

function M.gelu(f, mode)
  if mode ~= "tanh" then return nil, "--gelu: only 'tanh' is supported (TANH_APPROXIMATION)" end
  local n = 0
  for _, op in ipairs(f:ops()) do
    if op.type == "gelu" then
      local name = f.arg_name(op, "mode")
      local c = name and f:const_data(name)
      local cur = c and c.data[1] or "EXACT"
      if cur == "EXACT" then
        local m = f:const(op.name .. "_mode_tanh", { "TANH_APPROXIMATION" }, { dtype = "string", shape = {}, before = op })
        local args = f.arg(op, "mode")
        if args then args[1].name = m
        else table.insert(op.inputs, { param = "mode", args = { { name = m } } }) end
        f.editor:log("gelu", f.name, op, "mode EXACT -> TANH_APPROXIMATION")
        n = n + 1
      end
    end
  end
  if n > 0 then f:touch() end
  return { changed = n }
end

-- A const with the same data as `name` but shape `shape` (blob values keep pointing at the same bytes).
local function reshaped_const(f, name, shape, before)
  local op = f:producer(name)
  local val
  for _, a in ipairs(op.attrs) do if a.key == "val" then val = a.value end end
  local v = val:copy()
  local t = v:mutable("type"):mutable("tensorType")
  t:clear("dimensions")
  t.rank = #shape
  for _, d in ipairs(shape) do t:add("dimensions"):mutable("constant").size = d end
  local cname = f:fresh(name .. "_conv")
  local dtype = op.outputs[1].dtype
  local c = { type = "const", name = cname, inputs = {}, blocks = {}, attrs = { { key = "name" }, { key = "val", value = v } },
              outputs = { { name = cname, dtype = dtype, shape = shape, kind = "tensor" } } }
  table.insert(f:ops(), f:index_of(before), c)
  f:touch()
  return cname
end

local function is_const(f, name)
  local p = name and f:producer(name)
  return p and p.type == "const"
end

local function convert_linear(f, op)
  local xname, wname = f.arg_name(op, "x"), f.arg_name(op, "weight")
  local bname = f.arg_name(op, "bias")
  local xt, wt = f:type_of(xname), f:type_of(wname)
  if not is_const(f, wname) or (bname and not is_const(f, bname)) then return false, "weight is not a const" end
  if #wt.shape ~= 2 then return false, "weight is not 2-D" end
  local rank = #xt.shape
  if rank ~= 2 and rank ~= 3 then return false, "x has rank " .. rank end
  local out = op.outputs[1]
  local cout, cin = wt.shape[1], wt.shape[2]
  local w4 = reshaped_const(f, wname, { cout, cin, 1, 1 }, op)
  local base = op.name
  local ins = {}
  local cur = xname
  if rank == 3 then
    cur = f:insert({ type = "transpose", name = f:fresh(base .. "_to_bcs"), inputs = { x = cur, perm = { 0, 2, 1 } } }, { before = op }).outputs[1].name
    cur = f:insert({ type = "expand_dims", name = f:fresh(base .. "_to_bc1s"), inputs = { x = cur, axes = { 2 } } }, { before = op }).outputs[1].name
  else
    cur = f:insert({ type = "expand_dims", name = f:fresh(base .. "_to_bc11"), inputs = { x = cur, axes = { 2, 3 } } }, { before = op }).outputs[1].name
  end
  ins.x, ins.weight = cur, w4
  if bname then ins.bias = bname end
  ins.strides, ins.pad_type, ins.dilations, ins.groups = { 1, 1 }, "valid", { 1, 1 }, 1
  cur = f:insert({ type = "conv", name = f:fresh(base .. "_conv"), inputs = ins }, { before = op }).outputs[1].name
  local final
  if rank == 3 then
    cur = f:insert({ type = "squeeze", name = f:fresh(base .. "_to_bcs_out"), inputs = { x = cur, axes = { 2 } } }, { before = op }).outputs[1].name
    final = { type = "transpose", inputs = { x = cur, perm = { 0, 2, 1 } } }
  else
    final = { type = "squeeze", inputs = { x = cur, axes = { 2, 3 } } }
  end
  final.name = op.name
  final.outputs = { { name = out.name, dtype = out.dtype, shape = out.shape } }
  f:replace(op, final)
  return true
end

function M.linear_to_conv(f)
  local n, skipped = 0, {}
  local list = {}
  for _, op in ipairs(f:ops()) do if op.type == "linear" then list[#list + 1] = op end end
  for _, op in ipairs(list) do
    local ok, why = convert_linear(f, op)
    if ok then
      f.editor:log("linear-to-conv", f.name, op, "linear -> 1x1 conv in (B, C, 1, S) layout")
      n = n + 1
    else
      skipped[#skipped + 1] = op.name .. ": " .. why
      f.editor:log("linear-to-conv", f.name, op, "kept: " .. why)
    end
  end
  return { changed = n, skipped = skipped }
end

return M
