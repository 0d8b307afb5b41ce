-- mlsh.builder.infer_shape — the shape and argument helpers of the output type rules
-- (mlsh.builder.infer_rules): broadcasting, windows, axes, constant arguments.
local mil = require "mlsh.builder.mil"

local M = {}

-- ---- shape helpers ----------------------------------------------------------------------------------
local function copy(t) local o = {} for i, v in ipairs(t) do o[i] = v end return o end
local function fmt_shape(s)
  local t = {}
  for i, d in ipairs(s) do t[i] = d < 0 and "?" or tostring(d) end
  return "[" .. table.concat(t, ",") .. "]"
end
M.fmt_shape = fmt_shape

local function axis_of(ctx, axis, rank, what)
  if math.type(axis) ~= "integer" then ctx:fail("%s must be an integer, got %s", what or "axis", tostring(axis)) end
  local a = axis < 0 and axis + rank or axis
  if a < 0 or a >= rank then ctx:fail("%s %d is out of range for rank %d", what or "axis", axis, rank) end
  return a + 1 -- Lua index
end

local function need(ctx, p)
  local a = ctx:arg(p)
  if not a then ctx:fail("missing input '%s'", p) end
  return a
end

local function const_list(ctx, p, required)
  local a = ctx:arg(p)
  if not a then
    if required then ctx:fail("missing input '%s'", p) end
    return nil
  end
  if a.data == nil then
    if required then ctx:fail("'%s' must be a constant to infer the output shape; give {dtype=, shape=}", p) end
    return nil
  end
  return mil.as_list(a.data)
end

local function const_scalar(ctx, p, default)
  local l = const_list(ctx, p)
  if l == nil then return default end
  return l[1]
end

local function same_dtype(ctx, p1, p2)
  local a, b = ctx:arg(p1), ctx:arg(p2)
  if a and b and a.dtype ~= b.dtype then
    ctx:fail("type mismatch: %s is %s but %s is %s", p1, a.dtype, p2, b.dtype)
  end
end

local function want_float(ctx, p)
  local a = ctx:arg(p)
  if a and not mil.FLOAT[a.dtype] then ctx:fail("%s must be a float tensor, got %s", p, a.dtype) end
end

local function broadcast(ctx, a, b, pa, pb)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local x = a[#a - n + i] or 1
    local y = b[#b - n + i] or 1
    local r
    if x == y then r = x
    elseif x == 1 then r = y
    elseif y == 1 then r = x
    elseif x < 0 then r = y
    elseif y < 0 then r = x
    else ctx:fail("shapes %s (%s) and %s (%s) do not broadcast", fmt_shape(a), pa or "x", fmt_shape(b), pb or "y") end
    out[i] = r
  end
  return out
end
M.broadcast = broadcast

-- Sliding-window output length (conv/pool): in, kernel, stride, dilation, pad_type, pad begin/end.
local function window(ctx, len, k, s, d, pad_type, pb, pe, ceil_mode)
  if len < 0 then return -1 end
  local eff = (k - 1) * d + 1
  if pad_type == "same" or pad_type == "same_lower" then return (len + s - 1) // s end
  if pad_type == "valid" then pb, pe = 0, 0 end
  local span = len + pb + pe - eff
  if span < 0 then ctx:fail("kernel %d (dilation %d) does not fit input length %d", k, d, len) end
  if ceil_mode then return (span + s - 1) // s + 1 end
  return span // s + 1
end

local function spatial_out(ctx, x, kernel)
  local nsp = #kernel
  local strides = const_list(ctx, "strides") or {}
  local dil = const_list(ctx, "dilations") or {}
  local pad_type = const_scalar(ctx, "pad_type", "valid")
  local pad = const_list(ctx, "pad") or {}
  local ceil_mode = const_scalar(ctx, "ceil_mode", false)
  local out = {}
  for i = 1, nsp do
    local len = x.shape[#x.shape - nsp + i]
    out[i] = window(ctx, len, kernel[i], strides[i] or 1, dil[i] or 1, pad_type, pad[2 * i - 1] or 0, pad[2 * i] or 0, ceil_mode)
  end
  return out
end

-- ---- rules ----------------------------------------------------------------------------------------------

M.copy = copy
M.fmt_shape = fmt_shape
M.axis_of = axis_of
M.need = need
M.const_list = const_list
M.const_scalar = const_scalar
M.same_dtype = same_dtype
M.want_float = want_float
M.broadcast = broadcast
M.window = window
M.spatial_out = spatial_out
return M
