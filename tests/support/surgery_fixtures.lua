-- Models for the surgery specs, built with mlsh.builder (deterministic: weights seeded by name).
local B = require "mlsh.builder"
local L = B.layers

local S = {}

-- x fp32[1,8] -> linear 16 -> relu ('act') -> linear 4 -> y
function S.mlp(path, o)
  o = o or {}
  local p = B.program{ opset = o.opset or "iOS17", precision = o.precision or "fp32" }
  local f = p:func("main")
  local x = f:input("x", o.io or "fp32", { 1, 8 })
  local y = L.linear(f, x, { name = "fc1", out = 16 })
  y = f:op("relu", { x = y }, { name = "act" })
  y = L.linear(f, y, { name = "fc2", out = 4 })
  f:output("y", y, o.io and { dtype = o.io } or nil)
  p:save(path)
  return path
end

-- n equal linear layers of width w (each weight w*w), relu between: x[1,w] -> y[1,w]
function S.deep(path, n, w)
  local p = B.program{ opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local y = f:input("x", "fp32", { 1, w })
  for k = 1, n do
    y = L.linear(f, y, { name = "l" .. k, out = w, bias = false })
    if k < n then y = f:op("relu", { x = y }, { name = "r" .. k }) end
  end
  f:output("y", y)
  p:save(path)
  return path
end

-- x fp32 [1, 1..64, 8] (range) -> shape -> gather(1) -> concat([1], s1, [2, 4]) -> reshape(x) -> relu -> y
function S.flexible(path, kind)
  local p = B.program{ opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local decl = kind == "enumerated" and { shapes = { { 1, 16, 8 }, { 1, 32, 8 } }, default = { 1, 16, 8 } }
    or { range = { { 1, 1 }, { 1, 64 }, { 8, 8 } }, default = { 1, 16, 8 } }
  local x = f:input("x", "fp32", decl)
  local s = f:op("shape", { x = x })
  local g = f:op("gather", { x = s, indices = { 1 }, axis = 0 })
  local cat = f:op("concat", { values = { f:const("one", { 1 }), g, f:const("tail", { 2, 4 }) }, axis = 0 })
  local r = f:op("reshape", { x = x, shape = cat }, { name = "split_heads" })
  f:output("y", f:op("relu", { x = r }))
  p:save(path)
  return path
end

-- scores = x @ w (x fp32[1,4,8]); masked with a const [1,4,4] holding -inf above the diagonal; softmax;
-- gelu (EXACT) on the result
function S.attention_like(path, o)
  o = o or {}
  local p = B.program{ opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 4, 8 })
  local s = f:op("matmul", { x = x, y = x, transpose_y = true })
  local mask = {}
  for i = 1, 4 do for j = 1, 4 do mask[#mask + 1] = j > i and (o.fill or -math.huge) or 0.0 end end
  local m = f:const("causal_mask", B.tensor("fp32", mask, { 1, 4, 4 }))
  local a = f:op("softmax", { x = f:op("add", { x = s, y = m }), axis = -1 })
  f:output("y", f:op("gelu", { x = a, mode = "EXACT" }, { name = "act" }))
  p:save(path)
  return path
end

-- x fp32[1,5,8] -> linear 16 (with bias) -> y ; and a rank-2 twin
function S.linear3(path, rank)
  local p = B.program{ opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", rank == 2 and { 1, 8 } or { 1, 5, 8 })
  f:output("y", L.linear(f, x, { name = "proj", out = 16 }))
  p:save(path)
  return path
end

-- two functions "a" and "b" (iOS18), each x[1,4] -> relu -> sigmoid -> y
function S.multi(path)
  local p = B.program{ opset = "iOS18", precision = "fp32" }
  for _, name in ipairs({ "a", "b" }) do
    local f = p:func(name)
    local h = f:op("relu", { x = f:input("x", "fp32", { 1, 4 }) }, { name = "h" })
    f:output("y", f:op("sigmoid", { x = h }))
  end
  p:save(path)
  return path
end

-- Non-const op types of a loaded model, in order.
function S.op_types(m, fname)
  local t = {}
  for _, op in ipairs(m:ops(fname)) do if op.type ~= "const" then t[#t + 1] = op.type end end
  return table.concat(t, " ")
end

function S.by_output(m, name)
  for _, op in ipairs(m:ops()) do
    for _, o in ipairs(op.outputs) do if o.name == name then return op end end
  end
end

-- Every const's output is used by some op or output of its function (no weight carried for nothing).
function S.unused_consts(m)
  local used, out = {}, {}
  for _, fn in ipairs(m:functions()) do
    for _, op in ipairs(fn.all_ops) do
      for _, i in ipairs(op:inputs()) do if i.name then used[i.name] = true end end
    end
    for _, o in ipairs(fn.outputs) do used[o] = true end
    for _, op in ipairs(fn.all_ops) do
      if op.type == "const" and not used[op.outputs[1].name] then out[#out + 1] = op.outputs[1].name end
    end
  end
  return out
end

-- ---- .npy files (for `mlsh run`): little-endian, C order ------------------------------------------------
local DESCR = { fp32 = "<f4", fp16 = "<f2", int32 = "<i4", fp64 = "<f8" }
local FROM_DESCR = { ["<f4"] = "fp32", ["<f2"] = "fp16", ["<i4"] = "int32", ["<f8"] = "fp64" }

function S.npy_write(path, dtype, shape, values)
  local dims = {}
  for i, d in ipairs(shape) do dims[i] = tostring(d) end
  local tuple = #dims == 1 and (dims[1] .. ",") or table.concat(dims, ", ")
  local header = string.format("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", DESCR[dtype], tuple)
  local total = 10 + #header + 1
  header = header .. string.rep(" ", (64 - total % 64) % 64) .. "\n"
  local body = require("mlsh.core").array.new(values):encode(dtype)
  local f = assert(io.open(path, "wb"))
  f:write("\147NUMPY\1\0", string.pack("<I2", #header), header, body)
  f:close()
  return path
end

function S.npy_read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  assert(s:sub(1, 6) == "\147NUMPY", path .. ": not an npy file")
  local hlen = string.unpack("<I2", s, 9)
  local header = s:sub(11, 10 + hlen)
  local dtype = FROM_DESCR[header:match("'descr':%s*'([^']+)'")]
  local shape = {}
  for d in (header:match("'shape':%s*%(([^)]*)%)") or ""):gmatch("%d+") do shape[#shape + 1] = tonumber(d) end
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local data = require("mlsh.core").array.decode(s:sub(11 + hlen), dtype, n):totable()
  return { dtype = dtype, shape = shape, data = data }
end

return S
