-- mlsh split and mlsh extract (the extract_graph command module): parts re-read with mlsh, chained
-- I/O, weights carried by the part that uses them, pipelines, multifunction models, errors.
local mlsh = require "mlsh"
local json = require "mlsh.json"
local writer = require "mlsh.model.writer"
local F = require "fixtures"
local SF = require "surgery_fixtures"

local function split(args) return F.run("split " .. args) end

local function names(list)
  local t = {}
  for i, f in ipairs(list) do t[i] = f.name end
  return t
end

local function valid(path)
  local m = mlsh.load(path)
  return writer.validate(m.spec, writer.model_reader(m))
end

local function weight_names(m)
  local t = {}
  for _, w in ipairs(m:weights()) do t[#t + 1] = w.name end
  table.sort(t)
  return table.concat(t, " ")
end

describe("mlsh split", function()
  local dir, mlp
  setup(function()
    dir = F.tmpdir()
    mlp = SF.mlp(dir .. "/mlp.mlpackage")
  end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  it("--at cuts after an op: A's outputs are B's inputs, weights go with their users", function()
    local a, b = dir .. "/A.mlpackage", dir .. "/B.mlpackage"
    local before = F.sha(mlp)
    local out, err, code = split(F.q(mlp) .. " --at act -o " .. F.q(a) .. " -o " .. F.q(b))
    assert.equal(0, code, err)
    assert.equal(before, F.sha(mlp))
    assert.same({}, valid(a))
    assert.same({}, valid(b))
    local ma, mb = mlsh.load(a), mlsh.load(b)
    assert.same({ "x" }, names(ma:inputs()))
    assert.same({ "act" }, names(ma:outputs()))
    assert.same({ "act" }, names(mb:inputs()))
    assert.same({ "y" }, names(mb:outputs()))
    assert.same({ 1, 16 }, mb:inputs()[1].shape)
    assert.equal("fp32", mb:inputs()[1].dtype)
    assert.equal("linear relu", SF.op_types(ma))
    assert.equal("linear", SF.op_types(mb))
    -- fc1 weights (>= 10 elements) in A, fc2's in B; fc2_bias (4 elements) is immediate
    assert.equal("fc1_bias fc1_weight", weight_names(ma))
    assert.equal("fc2_weight", weight_names(mb))
    assert.same({}, SF.unused_consts(ma))
    assert.same({}, SF.unused_consts(mb))
    assert.matches("part 1 .*inputs x; outputs act", out)
  end)

  it("--chunks N balances the parts by weight bytes", function()
    local deep = SF.deep(dir .. "/deep.mlpackage", 6, 16)
    local out, err, code = split(F.q(deep) .. " --chunks 3 -o " .. F.q(dir .. "/c.mlpackage") .. " --json")
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal(3, #r.parts)
    for k, p in ipairs(r.parts) do
      -- 6 equal layers of 16*16 fp32 weights: two per chunk, 2 * 1024 bytes
      assert.equal(2 * 16 * 16 * 4, p.weight_bytes)
      assert.equal(string.format("%s/c_chunk%d.mlpackage", dir, k), p.path)
      assert.same({}, valid(p.path))
      -- a cut follows the op whose weights reach k/3 of the total
      assert.equal(k == 1 and "linear relu linear" or "relu linear relu linear", SF.op_types(mlsh.load(p.path)))
    end
    assert.same(r.parts[1].outputs, r.parts[2].inputs)
    assert.same(r.parts[2].outputs, r.parts[3].inputs)
    assert.same({ "y" }, r.parts[3].outputs)
  end)

  it("--pipeline writes one pipeline package with one weight file", function()
    local p = dir .. "/P.mlpackage"
    local _, err, code = split(F.q(mlp) .. " --at act --pipeline -o " .. F.q(p))
    assert.equal(0, code, err)
    local m = mlsh.load(p)
    assert.equal("pipeline", m.model_type)
    assert.same({ "x" }, names(m:inputs()))
    assert.same({ "y" }, names(m:outputs()))
    local subs, pnames = m:submodels()
    assert.equal(2, #subs)
    assert.same({ "part1", "part2" }, pnames)
    assert.same({ "act" }, names(subs[1]:outputs()))
    assert.same({ "act" }, names(subs[2]:inputs()))
    for _, s in ipairs(subs) do assert.same({}, writer.validate(s.spec, writer.model_reader(m))) end
    -- every weight readable through the package's one weight.bin, values equal to the original's
    local orig = {}
    for _, w in ipairs(mlsh.load(mlp):weights()) do orig[w.name] = w:values():totable() end
    local seen = 0
    for _, w in ipairs(m:weights()) do
      assert.same(orig[w.name], w:values():totable())
      seen = seen + 1
    end
    assert.equal(3, seen)
  end)

  it("keeps the other functions of a multifunction model untouched", function()
    local multi = SF.multi(dir .. "/multi.mlpackage")
    local a, b = dir .. "/ma.mlpackage", dir .. "/mb.mlpackage"
    local _, err, code = split(F.q(multi) .. " --function a --at h -o " .. F.q(a) .. " -o " .. F.q(b))
    assert.equal(0, code, err)
    local orig_b = mlsh.load(multi).spec.mlProgram:get("functions", "b"):encode()
    for _, path in ipairs({ a, b }) do
      local m = mlsh.load(path)
      assert.equal(orig_b, m.spec.mlProgram:get("functions", "b"):encode())
      assert.same({}, valid(path))
    end
    assert.equal("relu", SF.op_types(mlsh.load(a), "a"))
    assert.equal("sigmoid", SF.op_types(mlsh.load(b), "a"))
    assert.same({ "h" }, names(mlsh.load(b):inputs("a")))
  end)

  it("passes fp16 values across the cut as fp32 (exact casts, as bisect_model)", function()
    local src = SF.mlp(dir .. "/h15.mlpackage", { opset = "iOS15", precision = "fp16" })
    assert.equal(6, mlsh.load(src).spec_version)
    local a, b = dir .. "/h15a.mlpackage", dir .. "/h15b.mlpackage"
    local _, err, code = split(F.q(src) .. " --at act -o " .. F.q(a) .. " -o " .. F.q(b))
    assert.equal(0, code, err)
    local ma, mb = mlsh.load(a), mlsh.load(b)
    assert.equal(6, ma.spec_version)
    assert.equal(6, mb.spec_version)
    assert.equal("fp32", ma:outputs()[1].dtype)
    assert.equal("fp32", mb:inputs()[1].dtype)
    assert.equal("cast linear relu cast", SF.op_types(ma))
    assert.equal("cast linear cast", SF.op_types(mb))
    assert.same({}, valid(a))
    assert.same({}, valid(b))
  end)

  it("keeps state writes in the part they belong to", function()
    local B = require "mlsh.builder"
    local p = B.program{ opset = "iOS18", precision = "fp16" }
    local f = p:func("main")
    local x = f:input("x", "fp16", { 1, 4 })
    local st = f:state("acc", "fp16", { 1, 4 })
    local h = f:op("relu", { x = x }, { name = "h" })
    local s = f:op("add", { x = f:op("read_state", { input = st }), y = h })
    f:output("y", f:op("mul", { x = f:update_state(st, s), y = h }), { dtype = "fp16" })
    local src = dir .. "/state.mlpackage"
    p:save(src)
    local a, b = dir .. "/sa.mlpackage", dir .. "/sb.mlpackage"
    local _, err, code = split(F.q(src) .. " --at h -o " .. F.q(a) .. " -o " .. F.q(b))
    assert.equal(0, code, err)
    assert.same({}, valid(b))
    local mb = mlsh.load(b)
    -- the fp16 cut value h crosses as fp32 (bisect_model's casts), even at spec 9
    assert.equal("cast read_state add write_state read_state mul", SF.op_types(mb))
    assert.same({ "acc" }, names(mb:states()))
    assert.equal("fp32", mb:inputs()[1].dtype)
    assert.equal("relu cast", SF.op_types(mlsh.load(a)))
    assert.same({}, names(mlsh.load(a):states()))
  end)

  it("refuses cuts it cannot make", function()
    local _, err, code = split(F.q(mlp) .. " --at nowhere -o a.mlpackage -o b.mlpackage")
    assert.equal(1, code)
    assert.matches("no op or value named 'nowhere'", err)
    _, err, code = split(F.q(mlp) .. " --at y -o a.mlpackage -o b.mlpackage")
    assert.equal(1, code)
    assert.matches("last op", err)
    _, err, code = split(F.q(mlp) .. " --at act -o " .. F.q(dir .. "/only.mlpackage"))
    assert.equal(2, code)
    assert.matches("2 parts need 2 %-o paths", err)
    _, err, code = split(F.q(mlp) .. " --chunks 1 -o x.mlpackage")
    assert.equal(2, code)
    local flex = SF.flexible(dir .. "/flex.mlpackage")
    _, err, code = split(F.q(flex) .. " --at split_heads -o " .. F.q(dir .. "/fa.mlpackage") .. " -o " .. F.q(dir .. "/fb.mlpackage"))
    assert.equal(1, code)
    assert.matches("unknown dimension", err)
    assert.is_nil(mlsh.core.fs.exists(dir .. "/fa.mlpackage"))
  end)
end)

describe("mlsh extract (extract_graph)", function()
  local dir, mlp, X
  setup(function()
    dir = F.tmpdir()
    mlp = SF.mlp(dir .. "/mlp.mlpackage")
    X = require "mlsh.cmd.extract_graph"
  end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  it("is a command module with a summary", function()
    assert.is_string(X.summary)
    assert.is_function(X.run)
  end)

  it("writes the sub-graph between two sets of values", function()
    local out = dir .. "/mid.mlpackage"
    local _, err, code = F.run("extract_graph " .. F.q(mlp) .. " --from linear_0 --to act -o " .. F.q(out))
    assert.equal(0, code, err)
    local m = mlsh.load(out)
    assert.same({ "linear_0" }, names(m:inputs()))
    assert.same({ "act" }, names(m:outputs()))
    assert.equal("relu", SF.op_types(m))
    assert.equal("", weight_names(m))
    assert.same({}, valid(out))
  end)

  it("takes the model inputs a sub-graph still needs", function()
    local out = dir .. "/head.mlpackage"
    local _, err, code = F.run("extract_graph " .. F.q(mlp) .. " --to act,linear_0 -o " .. F.q(out) .. " --json")
    assert.equal(0, code, err)
    local m = mlsh.load(out)
    assert.same({ "x" }, names(m:inputs()))
    assert.same({ "act", "linear_0" }, names(m:outputs()))
    assert.equal("linear relu", SF.op_types(m))
  end)

  it("errors name the value", function()
    local _, err, code = F.run("extract_graph " .. F.q(mlp) .. " --from nope --to act -o " .. F.q(dir .. "/n.mlpackage"))
    assert.equal(1, code)
    assert.matches("no value 'nope'", err)
    _, err, code = F.run("extract_graph " .. F.q(mlp) .. " --to act")
    assert.equal(2, code)
  end)
end)
