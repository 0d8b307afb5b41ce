-- mlsh.compress.select — which consts a compression pass touches, and along which axes, with
-- coremltools' rules (compression-math §0): a const is compressed only when it is a float tensor
-- of rank >= 2 with more than `weight_threshold` elements, consumed by at least one op and by no
-- constexpr op, and its consumers agree on the channel axis.
local M = {}

M.WEIGHT_THRESHOLD = 2048
M.FLOAT = { fp16 = true, fp32 = true }

local function norm(axis, rank)
  if axis == nil then return nil end
  if axis < 0 then axis = axis + rank end
  return axis
end

local function flag(op, name)
  if not op then return false end
  local ok, v = pcall(op.arg, op, name)
  if not ok then return false end
  if type(v) == "table" then v = v[1] end
  return v == true or v == 1
end

-- (output-channel axis, input-channel axis) one consumer implies (select_input_output_channel_axis).
function M.consumer_axes(u, rank)
  local t, p = u.type, u.param
  if t == "conv_transpose" and p == "weight" then return norm(1, rank), norm(0, rank) end
  if t == "matmul" then
    local op = u.op_ref
    if p == "y" then
      if flag(op, "transpose_y") then return norm(-2, rank), norm(-1, rank) end
      return norm(-1, rank), norm(-2, rank)
    elseif p == "x" then
      if flag(op, "transpose_x") then return norm(-1, rank), norm(-2, rank) end
      return norm(-2, rank), norm(-1, rank)
    end
  end
  return 0, 1
end

-- Output-channel axis of an inventory entry (0-based), nil when its consumers disagree.
function M.output_axis(e)
  local rank = #(e.shape or {})
  local axis
  for _, u in ipairs(e.consumers or {}) do
    local a = M.consumer_axes(u, rank)
    if axis ~= nil and a ~= axis then return nil end
    axis = a
  end
  return axis or 0
end

-- Input-channel axis (0-based), nil when the consumers disagree.
function M.input_axis(e)
  local rank = #(e.shape or {})
  local axis
  for _, u in ipairs(e.consumers or {}) do
    local _, a = M.consumer_axes(u, rank)
    if axis ~= nil and a ~= axis then return nil end
    axis = a
  end
  return axis or (rank > 1 and 1 or 0)
end

-- Consumer op types of an entry (distinct, in order).
function M.consumer_types(e)
  local seen, out = {}, {}
  for _, u in ipairs(e.consumers or {}) do
    if not seen[u.type] then
      seen[u.type] = true
      out[#out + 1] = u.type
    end
  end
  return out
end

-- Why an inventory entry cannot be compressed at all (before any setting), or nil.
function M.ineligible(e, threshold)
  threshold = threshold or M.WEIGHT_THRESHOLD
  if e.compression then return "already compressed (" .. tostring(e.compression.kind) .. ")" end
  if e.op_type ~= "const" then return "not a const" end
  if not M.FLOAT[e.dtype] then return "not a float weight (" .. tostring(e.dtype) .. ")" end
  local rank = #(e.shape or {})
  if rank <= 1 then return "rank " .. rank .. " (coremltools skips rank <= 1 consts)" end
  if (e.count or 0) <= threshold then
    return string.format("below the weight threshold (%d <= %d elements)", e.count or 0, threshold)
  end
  if not e.consumers or #e.consumers == 0 then return "no op consumes it" end
  if e.block_output then return "it is also an output of the function" end
  if (e.depth or 0) > 0 then return "it is inside a nested block (not supported)" end
  for _, u in ipairs(e.consumers) do
    if u.type:match("^constexpr_") then return "consumed by " .. u.type end
  end
  if M.output_axis(e) == nil then return "its consumers disagree on the channel axis" end
  return nil
end

return M
