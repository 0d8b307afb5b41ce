-- mlsh.surgery: the graph editing API on ML programs built here, re-read with mlsh after every save.
-- Expected structures are written out by hand in each test.
local mlsh = require "mlsh"
local B = require "mlsh.builder"
local S = require "mlsh.surgery"
local F = require "fixtures"

local function mlp(path, o)
  o = o or {}
  local p = B.program{ opset = o.opset or "iOS17", precision = o.precision or "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 8 })
  local y = B.layers.linear(f, x, { name = "fc1", out = 16 })
  y = f:op("relu", { x = y }, { name = "act" })
  y = B.layers.linear(f, y, { name = "fc2", out = 4 })
  f:output("y", y)
  p:save(path)
  return path
end

local function op_types(m)
  local t = {}
  for _, op in ipairs(m:ops()) do if op.type ~= "const" then t[#t + 1] = op.type end end
  return table.concat(t, " ")
end

local function by_output(m, name)
  for _, op in ipairs(m:ops()) do
    for _, o in ipairs(op.outputs) do if o.name == name then return op end end
  end
end

describe("surgery: graph editing", function()
  local dir, src
  setup(function()
    dir = F.tmpdir()
    src = mlp(dir .. "/mlp.mlpackage")
  end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  it("re-encodes an unedited function byte for byte", function()
    local e = S.edit(mlsh.load(src))
    e:func()
    assert.same({}, e:validate())
    e:save(dir .. "/same.mlpackage")
    assert.equal(F.read(src .. "/Data/com.apple.CoreML/model.mlmodel"), F.read(dir .. "/same.mlpackage/Data/com.apple.CoreML/model.mlmodel"))
  end)

  it("iterates ops, finds producers and uses", function()
    local e = S.edit(mlsh.load(src))
    local f = e:func()
    local types = {}
    for _, op in ipairs(f:ops()) do types[#types + 1] = op.type end
    assert.equal("const const linear relu const const linear", table.concat(types, " "))
    assert.equal("relu", f:producer("act").type)
    local uses = f:uses("act")
    assert.equal(1, #uses)
    assert.equal("x", uses[1].param)
    assert.equal("linear", uses[1].op.type)
    assert.equal("fp32", f:type_of("act").dtype)
    assert.same({ 1, 16 }, f:type_of("act").shape)
  end)

  it("inserts an op (output type inferred) and reroutes the uses", function()
    local m = mlsh.load(src)
    local e = S.edit(m)
    local f = e:func()
    local act = f:producer("act")
    local sig = f:insert({ type = "sigmoid", name = "gate", inputs = { x = "act" } }, { after = act })
    f:replace_uses("act", "gate", { except = sig })
    assert.same({}, e:validate())
    e:save(dir .. "/ins.mlpackage")
    local m2 = mlsh.load(dir .. "/ins.mlpackage")
    assert.equal("linear relu sigmoid linear", op_types(m2))
    local g = by_output(m2, "gate")
    assert.equal("fp32", g.outputs[1].dtype)
    assert.same({ 1, 16 }, g.outputs[1].shape)
    assert.equal("gate", by_output(m2, "y"):inputs()[1].name)
    assert.same(m:outputs(), m2:outputs())
  end)

  it("replaces an op, literal arguments becoming consts", function()
    local e = S.edit(mlsh.load(src))
    local f = e:func()
    local new = f:replace(f:producer("act"), { type = "clip", inputs = { x = "linear_0", alpha = 0.0, beta = 6.0 },
                                               outputs = { { name = "act", dtype = "fp32", shape = { 1, 16 } } } })
    assert.equal("clip", new.type)
    e:save(dir .. "/rep.mlpackage")
    local m2 = mlsh.load(dir .. "/rep.mlpackage")
    assert.equal("linear clip linear", op_types(m2))
    local clip = by_output(m2, "act")
    assert.equal(6.0, clip:arg("beta"))
    assert.equal(0.0, clip:arg("alpha"))
  end)

  it("removes an op with a reroute, and refuses to remove a used one without", function()
    local e = S.edit(mlsh.load(src))
    local f = e:func()
    local relu = f:producer("act")
    local ok, err = pcall(f.remove, f, relu)
    assert.is_false(ok)
    assert.matches("still used", err)
    f:remove(relu, { reroute = { act = "linear_0" } })
    e:save(dir .. "/rm.mlpackage")
    assert.equal("linear linear", op_types(mlsh.load(dir .. "/rm.mlpackage")))
  end)

  it("renames values, inputs and outputs (descriptions follow)", function()
    local e = S.edit(mlsh.load(src))
    local f = e:func()
    f:rename("x", "features")
    f:rename("y", "logits")
    f:rename("act", "hidden")
    e:save(dir .. "/ren.mlpackage")
    local m2 = mlsh.load(dir .. "/ren.mlpackage")
    assert.equal("features", m2:inputs()[1].name)
    assert.equal("logits", m2:outputs()[1].name)
    assert.equal("hidden", by_output(m2, "hidden").outputs[1].name)
    assert.equal("features", by_output(m2, "linear_0"):inputs()[1].name)
  end)

  it("adds and removes outputs and inputs", function()
    local e = S.edit(mlsh.load(src))
    local f = e:func()
    f:add_output("act")
    f:add_input("unused", "fp32", { 1, 2 })
    e:save(dir .. "/io.mlpackage")
    local m2 = mlsh.load(dir .. "/io.mlpackage")
    local outs = m2:outputs()
    assert.equal(2, #outs)
    assert.equal("act", outs[2].name)
    assert.same({ 1, 16 }, outs[2].shape)
    assert.equal("unused", m2:inputs()[2].name)
    local e2 = S.edit(m2)
    local f2 = e2:func()
    f2:remove_output("act")
    f2:remove_input("unused")
    assert.has_error(function() f2:remove_input("x") end, "function main: remove_input: input 'x' is still used")
    e2:save(dir .. "/io2.mlpackage")
    local m3 = mlsh.load(dir .. "/io2.mlpackage")
    assert.equal(1, #m3:outputs())
    assert.equal(1, #m3:inputs())
  end)

  it("changes dtypes consistently (cast inserted by hand)", function()
    local e = S.edit(mlsh.load(src))
    local f = e:func()
    local cast = f:insert({ type = "cast", name = "act16", inputs = { x = "act", dtype = "fp16" } }, { after = f:producer("act") })
    assert.equal("fp16", cast.outputs[1].dtype)
    local back = f:insert({ type = "cast", name = "act32", inputs = { x = "act16", dtype = "fp32" } }, { after = cast })
    f:replace_uses("act", "act32", { except = cast })
    assert.same({}, e:validate())
    e:save(dir .. "/cast.mlpackage")
    assert.equal("linear relu cast cast linear", op_types(mlsh.load(dir .. "/cast.mlpackage")))
    assert.equal("fp32", back.outputs[1].dtype)
  end)

  describe("the validator refuses", function()
    local function refused(edit, pattern)
      local e = S.edit(mlsh.load(src))
      edit(e:func(), e)
      local problems = e:validate()
      assert.is_true(#problems > 0, "expected a refusal")
      local hit = false
      for _, p in ipairs(problems) do if p:find(pattern, 1, true) then hit = true end end
      assert.is_true(hit, "no problem matches '" .. pattern .. "': " .. table.concat(problems, " | "))
      local out = dir .. "/refused.mlpackage"
      local ok, err = pcall(e.save, e, out)
      assert.is_false(ok)
      assert.matches("invalid model", err)
      assert.is_nil(io.open(out .. "/Manifest.json"))
    end

    it("an undefined value", function()
      refused(function(f) f.arg(f:producer("y"), "x")[1].name = "nowhere" end, "undefined value 'nowhere'")
    end)
    it("a wrong type", function()
      refused(function(f) f:set_dtype("act", "fp16") end, "output 'act' is declared fp16[1,16] but its inputs give fp32[1,16]")
    end)
    it("a wrong shape", function()
      refused(function(f) f:set_shape("act", { 1, 17 }) end, "output 'act' is declared fp32[1,17]")
    end)
    it("an op outside the opset", function()
      local p = B.program{ opset = "iOS15", precision = "fp32" }
      local fb = p:func("main")
      fb:output("y", fb:op("relu", { x = fb:input("x", "fp32", { 1, 4 }) }))
      p:save(dir .. "/ios15.mlpackage")
      local e = S.edit(mlsh.load(dir .. "/ios15.mlpackage"))
      local f = e:func()
      -- scaled_dot_product_attention exists from iOS18 only; clamped_relu is in iOS15
      f:insert({ type = "clamped_relu", name = "cr", inputs = { x = "x", alpha = 0.1, beta = 6.0 },
                 outputs = { { dtype = "fp32", shape = { 1, 4 } } } })
      f:insert({ type = "scaled_dot_product_attention", name = "sdpa", inputs = { query = "x", key = "x", value = "x" },
                 outputs = { { dtype = "fp32", shape = { 1, 4 } } } })
      local problems = table.concat(e:validate(), "\n")
      assert.matches("scaled_dot_product_attention op 'sdpa' is not in opset CoreML5", problems, 1, true)
      assert.not_matches("clamped_relu", problems, 1, true)
    end)
    it("a dangling model output", function()
      refused(function(f) f.fn.block.outputs[1] = "act" end, "model output 'y' is not an output of the program")
    end)
    it("a value defined twice", function()
      refused(function(f) f:producer("act").outputs[1].name = "linear_0" end, "redefines value 'linear_0'")
    end)
  end)

  it("folds constant chains and removes dead code", function()
    local p = B.program{ opset = "iOS17", precision = "fp32" }
    local fb = p:func("main")
    local x = fb:input("x", "fp32", { 2, 3, 4 })
    local s = fb:op("shape", { x = x })
    local g = fb:op("gather", { x = s, indices = { 2, 1 }, axis = 0 })
    local prod = fb:op("reduce_prod", { x = g, axes = { 0 }, keep_dims = true })
    local cat = fb:op("concat", { values = { fb:const("two", { 2 }), prod }, axis = 0 })
    fb:output("y", fb:op("reshape", { x = x, shape = cat }))
    p:save(dir .. "/chain.mlpackage")
    local e = S.edit(mlsh.load(dir .. "/chain.mlpackage"))
    local folded = e:fold()
    assert.equal(4, folded) -- shape, gather, reduce_prod, concat
    local removed = e:dce()
    assert.is_true(removed >= 4)
    e:save(dir .. "/chain2.mlpackage")
    local m2 = mlsh.load(dir .. "/chain2.mlpackage")
    assert.equal("reshape", op_types(m2))
    local r = by_output(m2, "y")
    -- by hand: shape [2,3,4] -> gather [4,3] -> prod 12 -> concat [2,12]
    assert.same({ 2, 12 }, r:arg("shape"))
    assert.same({ 2, 12 }, r.outputs[1].shape)
  end)

  it("leaves other functions of a multifunction model untouched", function()
    local p = B.program{ opset = "iOS18", precision = "fp32" }
    for _, name in ipairs({ "a", "b" }) do
      local fb = p:func(name)
      fb:output("y", fb:op("relu", { x = fb:input("x", "fp32", { 1, 4 }) }))
    end
    p:save(dir .. "/multi.mlpackage")
    local m = mlsh.load(dir .. "/multi.mlpackage")
    local before_b = m.spec.mlProgram:get("functions", "b"):encode()
    local e = S.edit(m)
    local f = e:func("a")
    f:replace(f:producer("y"), { type = "sigmoid", inputs = { x = "x" } })
    e:save(dir .. "/multi2.mlpackage")
    local m2 = mlsh.load(dir .. "/multi2.mlpackage")
    assert.equal(before_b, m2.spec.mlProgram:get("functions", "b"):encode())
    assert.equal("sigmoid", m2:find_function("a").ops[1].type)
  end)
end)
