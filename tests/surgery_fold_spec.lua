-- Constant folding (mlsh.surgery.fold): each case is a const-only op whose value is worked out by
-- hand here; the folded model is re-read and its const compared.
local mlsh = require "mlsh"
local B = require "mlsh.builder"
local S = require "mlsh.surgery"
local F = require "fixtures"

local function iota(n) local t = {} for i = 1, n do t[i] = i - 1 end return t end

-- Build main(x) whose output y = build(f); fold; return y's const values and shape.
local function folded(dir, name, build)
  local p = B.program{ opset = "iOS17", precision = "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1 })
  f:output("x_out", f:op("relu", { x = x }))
  f:output("y", build(f))
  local path = dir .. "/" .. name .. ".mlpackage"
  p:save(path)
  local e = S.edit(mlsh.load(path))
  assert.is_true(e:fold() >= 1)
  e:dce()
  assert.same({}, e:validate())
  e:save(dir .. "/" .. name .. "_f.mlpackage")
  local m = mlsh.load(dir .. "/" .. name .. "_f.mlpackage")
  for _, op in ipairs(m:ops()) do
    if op.outputs[1].name == "y" then
      assert.equal("const", op.type)
      local v = op:attr("val")
      if v == nil then
        for _, w in ipairs(m:weights()) do if w.name == "y" then v = w:values():totable() end end
      end
      if type(v) ~= "table" then v = { v } end
      return v, op.outputs[1].shape
    end
  end
  error("no y")
end

describe("surgery: constant folding", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  it("slice_by_index with strides", function()
    local v, s = folded(dir, "slice1", function(f)
      local x = f:const("m", B.tensor("int32", iota(12), { 3, 4 }))
      return f:op("slice_by_index", { x = x, begin = { 0, 1 }, ["end"] = { 3, 4 }, stride = { 2, 2 } })
    end)
    assert.same({ 1, 3, 9, 11 }, v) -- rows 0 and 2, columns 1 and 3 of [[0..3],[4..7],[8..11]]
    assert.same({ 2, 2 }, s)
  end)

  it("slice_by_index backwards, with an end mask", function()
    local v = folded(dir, "slice2", function(f)
      local x = f:const("m", B.tensor("int32", iota(6), { 6 }))
      return f:op("slice_by_index", { x = x, begin = { 5 }, ["end"] = { 0 }, stride = { -2 }, end_mask = { true } })
    end)
    assert.same({ 5, 3, 1 }, v)
  end)

  it("slice_by_size with -1", function()
    local v, s = folded(dir, "slice3", function(f)
      local x = f:const("m", B.tensor("int32", iota(12), { 3, 4 }))
      return f:op("slice_by_size", { x = x, begin = { 1, 0 }, size = { 2, -1 } })
    end)
    assert.same({ 4, 5, 6, 7, 8, 9, 10, 11 }, v)
    assert.same({ 2, 4 }, s)
  end)

  it("transpose", function()
    local v = folded(dir, "tr", function(f)
      return f:op("transpose", { x = f:const("m", B.tensor("int32", iota(6), { 2, 3 })), perm = { 1, 0 } })
    end)
    assert.same({ 0, 3, 1, 4, 2, 5 }, v)
  end)

  it("range_1d", function()
    local v = folded(dir, "range", function(f)
      return f:op("range_1d", { start = f:const("a", 0), ["end"] = f:const("b", 10), step = f:const("c", 3) },
        { dtype = "int32", shape = { 4 } })
    end)
    assert.same({ 0, 3, 6, 9 }, v)
  end)

  it("floor_div and mod round toward -inf", function()
    local d = folded(dir, "fdiv", function(f)
      return f:op("floor_div", { x = f:const("a", { -7, 7 }), y = f:const("b", { 2, 2 }) })
    end)
    assert.same({ -4, 3 }, d)
    local m = folded(dir, "mod", function(f)
      return f:op("mod", { x = f:const("a", { -7, 7 }), y = f:const("b", { 3, 3 }) })
    end)
    assert.same({ 2, 1 }, m)
  end)

  it("cast to int32 truncates", function()
    local v = folded(dir, "cast", function(f)
      return f:op("cast", { x = f:const("a", B.tensor("fp32", { 1.7, -1.7 }, { 2 })), dtype = "int32" })
    end)
    assert.same({ 1, -1 }, v)
  end)

  it("gather with negative indices, concat, broadcasting mul", function()
    local g = folded(dir, "gather", function(f)
      return f:op("gather", { x = f:const("a", { 10, 20, 30 }), indices = f:const("i", { -1, 0 }), axis = 0 })
    end)
    assert.same({ 30, 10 }, g)
    local c, s = folded(dir, "concat", function(f)
      return f:op("concat", { values = { f:const("a", B.tensor("int32", { 1, 2 }, { 1, 2 })),
                                         f:const("b", B.tensor("int32", { 3 }, { 1, 1 })) }, axis = 1 })
    end)
    assert.same({ 1, 2, 3 }, c)
    assert.same({ 1, 3 }, s)
    local b = folded(dir, "bmul", function(f)
      return f:op("mul", { x = f:const("a", B.tensor("int32", { 1, 2, 3, 4, 5, 6 }, { 2, 3 })),
                           y = f:const("b", B.tensor("int32", { 10, 100 }, { 2, 1 })) })
    end)
    assert.same({ 10, 20, 30, 400, 500, 600 }, b)
  end)

  it("leaves large results alone (folding is for plumbing, not weights)", function()
    local p = B.program{ opset = "iOS17", precision = "fp32" }
    local f = p:func("main")
    local x = f:input("x", "fp32", { 1 })
    f:output("x_out", f:op("relu", { x = x }))
    local big = f:const("big", B.random.normal{ seed = 1, shape = { 64, 64 } })
    f:output("y", f:op("mul", { x = big, y = 2.0 }))
    p:save(dir .. "/big.mlpackage")
    local e = S.edit(mlsh.load(dir .. "/big.mlpackage"))
    assert.equal(0, e:fold())
  end)
end)
