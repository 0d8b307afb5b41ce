-- mlsh.surgery.shapes — freeze a flexible input to one static shape (--fix-shape NAME=DIMS), then
-- propagate shapes and constant-fold the shape/gather/concat chains that became static, so reshape
-- targets become consts; dead plumbing is removed.
--   shapes.parse("ids=1x128") -> name, {1, 128} | nil, err
--   shapes.run(editor, name, dims) -> {changed = n} | nil, reason
local types = require "mlsh.types"
local fold = require "mlsh.surgery.fold"
local dce = require "mlsh.surgery.dce"

local M = {}

function M.parse(s)
  local name, dims = tostring(s):match("^([^=]+)=(.+)$")
  if not name then return nil, string.format("--fix-shape %s: expected NAME=DIMS (e.g. ids=1x128)", tostring(s)) end
  local out = {}
  for d in dims:gmatch("[^x,]+") do
    local n = math.tointeger(tonumber(d))
    if not n or n < 1 then return nil, string.format("--fix-shape %s: '%s' is not a positive dimension", s, d) end
    out[#out + 1] = n
  end
  return name, out
end

local function fmt(d) return "[" .. table.concat(d, ",") .. "]" end

-- Is dims one of the shapes the feature allows? -> true | false, why
local function allowed(f, dims)
  if #dims ~= #f.shape then
    return false, string.format("rank %d given, the input has rank %d", #dims, #f.shape)
  end
  local fl = f.flexibility
  if not fl then
    for i, d in ipairs(dims) do if d ~= f.shape[i] then return false, "the input's shape is fixed at " .. fmt(f.shape) end end
    return true
  end
  if fl.kind == "enumerated" then
    for _, s in ipairs(fl.shapes) do
      local same = #s == #dims
      for i, d in ipairs(dims) do if s[i] ~= d then same = false end end
      if same then return true end
    end
    local list = {}
    for i, s in ipairs(fl.shapes) do list[i] = fmt(s) end
    return false, "not one of the enumerated shapes " .. table.concat(list, ", ")
  end
  for i, r in ipairs(fl.ranges) do
    if dims[i] < r[1] or (r[2] >= 0 and dims[i] > r[2]) then
      return false, string.format("dimension %d is %d, outside the range %d..%s", i - 1, dims[i], r[1], r[2] < 0 and "unbounded" or r[2])
    end
  end
  return true
end

local function freeze_feature(fd, dims)
  local arr = fd.type.multiArrayType
  arr.shape = dims
  arr:clear("enumeratedShapes")
  arr:clear("shapeRange")
end

function M.run(e, name, dims, fname)
  local f = e:func(fname)
  local fd = e:feature(f.name, "input", name)
  if not fd then return nil, string.format("--fix-shape: the model has no input '%s'", name) end
  local feat = types.feature(fd)
  if feat.kind ~= "multiArray" then return nil, string.format("--fix-shape: input '%s' is a %s, not a multi-array", name, feat.kind) end
  local ok, why = allowed(feat, dims)
  if not ok then return nil, string.format("--fix-shape %s=%s: %s", name, table.concat(dims, "x"), why) end
  local t = f:type_of(name)
  if not t then return nil, string.format("--fix-shape: '%s' is not an input of function %s", name, f.name) end
  local static = feat.flexibility == nil
  for i, d in ipairs(t.shape) do if d ~= dims[i] then static = false end end
  if static then return { changed = 0 } end
  freeze_feature(fd, dims)
  f:set_shape(name, dims)
  e:log("fix-shape", f.name, { name = name, type = "input" },
    string.format("input %s: %s -> %s", name, feat.flexibility and feat.flexibility.kind or "shape", fmt(dims)))
  local n = 1
  local before = {}
  for _, op in ipairs(f:ops()) do
    if op.type == "reshape" then
      local p = f:producer(f.arg_name(op, "shape") or "")
      before[op] = p and p.type == "const"
    end
  end
  n = n + fold.propagate(f) + fold.run(f, { pass = "fix-shape" })
  for _, op in ipairs(f:ops()) do
    if op.type == "reshape" and before[op] == false then
      local p = f:producer(f.arg_name(op, "shape") or "")
      if p and p.type == "const" then
        local c = f:const_data(p.outputs[1].name, 64)
        e:log("fix-shape", f.name, op, "reshape target is now a const " .. fmt(c and c.data or {}))
      end
    end
  end
  local removed = dce.run(f)
  return { changed = n + removed }
end

return M
