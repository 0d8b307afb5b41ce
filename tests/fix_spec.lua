-- mlsh fix on the command line: every transform on models built here, results re-read with mlsh and
-- checked by mlsh.writer's validator; expected ops/dtypes/shapes written out by hand.
local mlsh = require "mlsh"
local json = require "mlsh.json"
local writer = require "mlsh.model.writer"
local F = require "fixtures"
local SF = require "surgery_fixtures"

local function fix(args) return F.run("fix " .. args) end

local function valid(path)
  local m = mlsh.load(path)
  return writer.validate(m.spec, writer.model_reader(m))
end

local function weight_bin(path)
  local f = io.open(path .. "/Data/com.apple.CoreML/weights/weight.bin", "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

describe("mlsh fix", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  describe("--fp16", function()
    local src
    setup(function() src = SF.mlp(dir .. "/mlp.mlpackage") end)

    it("computes in fp16 with casts at the model boundary, weights halved", function()
      local before = F.sha(src)
      local out, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/h.mlpackage") .. " --fp16")
      assert.equal(0, code, err)
      assert.equal(before, F.sha(src)) -- the input is untouched
      assert.same({}, valid(dir .. "/h.mlpackage"))
      local m = mlsh.load(dir .. "/h.mlpackage")
      assert.equal("cast linear relu linear cast", SF.op_types(m))
      for _, op in ipairs(m:ops()) do
        if op.type ~= "cast" and op.outputs[1].dtype ~= "string" then assert.equal("fp16", op.outputs[1].dtype, op.name) end
      end
      assert.equal("fp32", m:inputs()[1].dtype)
      assert.equal("fp32", m:outputs()[1].dtype)
      assert.equal("fp32", SF.by_output(m, "y").outputs[1].dtype)
      assert.equal("x", SF.by_output(m, "x_to_fp16"):inputs()[1].name)
      -- fp32 weight.bin: 4 bytes * (16*8 + 16 + 4*16); fp16: half the data (records padded to 64 bytes)
      local w = 0
      for _, x in ipairs(m:weights()) do w = w + x.bytes end
      assert.equal(2 * (16 * 8 + 16 + 4 * 16), w)
      assert.is_true(weight_bin(dir .. "/h.mlpackage") < weight_bin(src))
      assert.matches("fc1_weight %(const%): weight fp32 %-> fp16 %(512 %-> 256 bytes%)", out)
      assert.matches("fp32%-compute", out)
    end)

    it("keeps selected ops in fp32 (--keep-fp32) with casts around them", function()
      local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/k.mlpackage") .. " --fp16 --keep-fp32 relu")
      assert.equal(0, code, err)
      assert.same({}, valid(dir .. "/k.mlpackage"))
      local m = mlsh.load(dir .. "/k.mlpackage")
      assert.equal("cast linear cast relu cast linear cast", SF.op_types(m))
      assert.equal("fp32", SF.by_output(m, "act").outputs[1].dtype)
    end)

    it("--dry-run lists the changes op by op and writes nothing", function()
      local dst = dir .. "/dry.mlpackage"
      local out, err, code = fix(F.q(src) .. " -o " .. F.q(dst) .. " --fp16 --dry-run")
      assert.equal(0, code, err)
      assert.matches("linear_0 %(linear%): computes in fp16", out)
      assert.matches("act %(relu%): computes in fp16", out)
      assert.matches("dry run: nothing written", out)
      assert.is_nil(mlsh.core.fs.exists(dst))
    end)

    it("--json gives the changes and the mlsh check delta", function()
      local out, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/j.mlpackage") .. " --fp16 --json --static")
      assert.equal(0, code, err)
      local r = json.decode(out)
      assert.equal("fp16", r.transforms[1].name)
      assert.equal("applied", r.transforms[1].status)
      assert.is_true(r.written)
      local ops = {}
      for _, c in ipairs(r.changes) do ops[c.op] = c.what end
      assert.equal("computes in fp16", ops.act)
      assert.same({ "ane-coverage", "fp32-compute" }, r.check.gone)
      assert.equal(0, r.check.before.ane_coverage.ops)
      assert.equal(1, r.check.after.ane_coverage.ops)
    end)

    it("refuses finite consts beyond the fp16 range, pointing at --mask-fill", function()
      local big = SF.attention_like(dir .. "/big.mlpackage", { fill = -1e9 })
      local dst = dir .. "/big16.mlpackage"
      local _, err, code = fix(F.q(big) .. " -o " .. F.q(dst) .. " --fp16")
      assert.equal(1, code)
      assert.matches("const 'causal_mask' holds %-1e%+09, beyond the fp16 range", err)
      assert.matches("%-%-mask%-fill", err)
      assert.is_nil(mlsh.core.fs.exists(dst))
      -- in the order the message suggests, both apply
      local _, err2, code2 = fix(F.q(big) .. " -o " .. F.q(dst) .. " --mask-fill -1e4 --fp16")
      assert.equal(0, code2, err2)
    end)

    it("--function limits the transform; the other functions stay byte for byte", function()
      local multi = SF.multi(dir .. "/multi.mlpackage")
      local dst = dir .. "/multi16.mlpackage"
      local _, err, code = fix(F.q(multi) .. " -o " .. F.q(dst) .. " --fp16 --function a")
      assert.equal(0, code, err)
      local m0, m = mlsh.load(multi), mlsh.load(dst)
      assert.equal(m0.spec.mlProgram:get("functions", "b"):encode(), m.spec.mlProgram:get("functions", "b"):encode())
      assert.equal("cast relu sigmoid cast", SF.op_types(m, "a"))
      assert.equal("fp16", SF.by_output(m, "h").outputs[1].dtype)
      assert.same({}, valid(dst))
    end)

    it("says there is nothing to fix on an fp16 program and writes nothing", function()
      local h = SF.mlp(dir .. "/mlp16.mlpackage", { precision = "fp16" })
      local dst = dir .. "/none.mlpackage"
      local out, err, code = fix(F.q(h) .. " -o " .. F.q(dst) .. " --fp16")
      assert.equal(0, code, err)
      assert.matches("nothing to fix", out)
      assert.is_nil(mlsh.core.fs.exists(dst))
    end)

    it("refuses to replace the input without --in-place, replaces it with", function()
      local copy = SF.mlp(dir .. "/copy.mlpackage")
      local before = F.sha(copy)
      local _, err, code = fix(F.q(copy) .. " -o " .. F.q(copy) .. " --fp16")
      assert.equal(1, code)
      assert.matches("in%-place", err)
      assert.equal(before, F.sha(copy))
      local _, err2, code2 = fix(F.q(copy) .. " --in-place --fp16")
      assert.equal(0, code2, err2)
      assert.equal("fp16", SF.by_output(mlsh.load(copy), "act").outputs[1].dtype)
    end)
  end)

  describe("--fix-shape", function()
    it("freezes a range input and folds the shape chain into a const reshape target", function()
      local src = SF.flexible(dir .. "/flex.mlpackage")
      local out, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/fixed.mlpackage") .. " --fix-shape x=1x32x8")
      assert.equal(0, code, err)
      assert.same({}, valid(dir .. "/fixed.mlpackage"))
      local m = mlsh.load(dir .. "/fixed.mlpackage")
      local x = m:inputs()[1]
      assert.same({ 1, 32, 8 }, x.shape)
      assert.is_nil(x.flexibility)
      assert.equal("reshape relu", SF.op_types(m))
      local r = SF.by_output(m, "split_heads")
      -- by hand: concat([1], shape(x)[1] = 32, [2, 4])
      assert.same({ 1, 32, 2, 4 }, r:arg("shape"))
      assert.same({ 1, 32, 2, 4 }, r.outputs[1].shape)
      assert.same({ 1, 32, 2, 4 }, m:outputs()[1].shape and SF.by_output(m, "y").outputs[1].shape)
      assert.matches("reshape target is now a const %[1,32,2,4%]", out)
      assert.matches("range%-shapes", out)
    end)

    it("freezes an enumerated input to one of its shapes", function()
      local src = SF.flexible(dir .. "/enum.mlpackage", "enumerated")
      local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/enum2.mlpackage") .. " --fix-shape x=1x16x8")
      assert.equal(0, code, err)
      assert.same({ 1, 16, 2, 4 }, SF.by_output(mlsh.load(dir .. "/enum2.mlpackage"), "split_heads"):arg("shape"))
    end)

    it("refuses a shape outside the declared range or set", function()
      local src = SF.flexible(dir .. "/flex2.mlpackage")
      local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/no.mlpackage") .. " --fix-shape x=1x65x8")
      assert.equal(1, code)
      assert.matches("dimension 1 is 65, outside the range 1..64", err)
      local e2 = SF.flexible(dir .. "/enum3.mlpackage", "enumerated")
      local _, err2, code2 = fix(F.q(e2) .. " -o " .. F.q(dir .. "/no.mlpackage") .. " --fix-shape x=1x20x8")
      assert.equal(1, code2)
      assert.matches("not one of the enumerated shapes %[1,16,8%], %[1,32,8%]", err2)
      local _, err3, code3 = fix(F.q(src) .. " -o " .. F.q(dir .. "/no.mlpackage") .. " --fix-shape nope=1")
      assert.equal(1, code3)
      assert.matches("no input 'nope'", err3)
      assert.is_nil(mlsh.core.fs.exists(dir .. "/no.mlpackage"))
    end)
  end)

  describe("--retarget", function()
    it("lowers spec and opset when only older ops are used", function()
      local src = SF.mlp(dir .. "/r17.mlpackage")
      local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/r15.mlpackage") .. " --retarget iOS15")
      assert.equal(0, code, err)
      assert.same({}, valid(dir .. "/r15.mlpackage"))
      local m = mlsh.load(dir .. "/r15.mlpackage")
      assert.equal(6, m.spec_version)
      assert.equal("CoreML5", m:functions()[1].opset)
      assert.same({ "CoreML5" }, m:functions()[1].block_keys)
    end)

    it("refuses with the reasons when something needs the newer spec", function()
      local src = SF.mlp(dir .. "/io16.mlpackage", { precision = "fp16", io = "fp16" })
      local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/no15.mlpackage") .. " --retarget iOS15")
      assert.equal(1, code)
      assert.matches("needs spec 7", err)
      assert.matches("FLOAT16", err)
      assert.is_nil(mlsh.core.fs.exists(dir .. "/no15.mlpackage"))
    end)

    it("has nothing to do when the model already targets it", function()
      local src = SF.mlp(dir .. "/r15b.mlpackage", { opset = "iOS15" })
      local out, _, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/same.mlpackage") .. " --retarget iOS16")
      assert.equal(0, code)
      assert.matches("nothing to fix", out)
    end)
  end)

  describe("--mask-fill, --gelu, --linear-to-conv", function()
    it("replaces -inf mask values by the fill", function()
      local src = SF.attention_like(dir .. "/att.mlpackage")
      local out, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/att2.mlpackage") .. " --mask-fill -1e4")
      assert.equal(0, code, err)
      assert.matches("6 value%(s%) below %-10000", out) -- 6 entries above the diagonal of a 4x4
      local m = mlsh.load(dir .. "/att2.mlpackage")
      local vals
      for _, w in ipairs(m:weights()) do if w.name == "causal_mask" then vals = w:values():totable() end end
      local want = {}
      for i = 1, 4 do for j = 1, 4 do want[#want + 1] = j > i and -10000.0 or 0.0 end end
      assert.same(want, vals)
      local finite = SF.attention_like(dir .. "/att_ok.mlpackage", { fill = -1e4 })
      local out2, _, code2 = fix(F.q(finite) .. " -o " .. F.q(dir .. "/att3.mlpackage") .. " --mask-fill -1e4")
      assert.equal(0, code2)
      assert.matches("nothing to fix", out2)
    end)

    it("switches gelu to the tanh approximation", function()
      local src = SF.attention_like(dir .. "/g.mlpackage")
      local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/g2.mlpackage") .. " --gelu tanh")
      assert.equal(0, code, err)
      assert.equal("TANH_APPROXIMATION", SF.by_output(mlsh.load(dir .. "/g2.mlpackage"), "y"):arg("mode"))
    end)

    it("turns linear into a 1x1 conv in (B, C, 1, S) layout", function()
      for _, rank in ipairs({ 3, 2 }) do
        local src = SF.linear3(dir .. "/lin" .. rank .. ".mlpackage", rank)
        local dst = dir .. "/conv" .. rank .. ".mlpackage"
        local _, err, code = fix(F.q(src) .. " -o " .. F.q(dst) .. " --linear-to-conv")
        assert.equal(0, code, err)
        assert.same({}, valid(dst))
        local m = mlsh.load(dst)
        assert.equal(rank == 3 and "transpose expand_dims conv squeeze transpose" or "expand_dims conv squeeze", SF.op_types(m))
        local conv
        for _, op in ipairs(m:ops()) do if op.type == "conv" then conv = op end end
        local w
        for _, i in ipairs(conv:inputs()) do if i.param == "weight" then w = i end end
        assert.same({ 16, 8, 1, 1 }, w.shape)
        assert.same(rank == 3 and { 1, 16, 1, 5 } or { 1, 16, 1, 1 }, conv.outputs[1].shape)
        assert.same(rank == 3 and { 1, 5, 16 } or { 1, 16 }, SF.by_output(m, "y").outputs[1].shape)
        assert.same({}, SF.unused_consts(m))
        -- the weight data is the same bytes, stored once
        assert.equal(weight_bin(src), weight_bin(dst))
      end
    end)
  end)

  it("mlsh check's findings name the transform that fixes them", function()
    local fixes = {}
    for _, src in ipairs({ SF.mlp(dir .. "/c32.mlpackage"), SF.flexible(dir .. "/cflex.mlpackage") }) do
      local out = F.run("check --format json " .. F.q(src))
      for _, f in ipairs(json.decode(out).findings) do fixes[f.rule] = f.fix end
    end
    assert.matches("mlsh fix MODEL %-%-fp16", fixes["fp32-compute"])
    assert.matches("mlsh fix MODEL %-%-fix%-shape NAME=DIMS", fixes["range-shapes"])
  end)

  it("check's load and mask findings name --retarget and --mask-fill, and are gone after that fix", function()
    local function findings(path, extra)
      local out = F.run("check --format json " .. (extra or "") .. " " .. F.q(path))
      local by = {}
      for _, f in ipairs(json.decode(out).findings) do by[f.rule] = f end
      return by
    end
    local src = SF.mlp(dir .. "/t17.mlpackage") -- an iOS17 program that uses only iOS15 ops
    local before = findings(src, "--target iOS15")
    assert.matches("mlsh fix MODEL %-%-retarget iOS15 %-o OUT", before["deployment-target"].fix)
    assert.matches("mlsh fix MODEL %-%-retarget iOS15 %-o OUT", findings(src)["spec-lowerable"].fix)
    local _, err, code = fix(F.q(src) .. " -o " .. F.q(dir .. "/t15.mlpackage") .. " --retarget iOS15")
    assert.equal(0, code, err)
    local after = findings(dir .. "/t15.mlpackage", "--target iOS15")
    assert.is_nil(after["deployment-target"])
    assert.is_nil(after["spec-lowerable"])

    local att = SF.attention_like(dir .. "/matt.mlpackage")
    assert.matches("mlsh fix MODEL %-%-mask%-fill", findings(att)["advisory-neg-inf-mask"].fix)
    _, err, code = fix(F.q(att) .. " -o " .. F.q(dir .. "/matt2.mlpackage") .. " --mask-fill -1e4")
    assert.equal(0, code, err)
    assert.is_nil(findings(dir .. "/matt2.mlpackage")["advisory-neg-inf-mask"])
  end)

  describe("errors", function()
    it("bad usage exits 2, an unreadable model 1", function()
      local _, err, code = fix("")
      assert.equal(2, code)
      assert.matches("usage", err)
      _, err, code = fix(F.q(dir .. "/missing.mlpackage") .. " -o " .. F.q(dir .. "/x.mlpackage") .. " --fp16")
      assert.equal(1, code)
      assert.matches("^mlsh fix: .*missing.mlpackage", err)
      _, err, code = fix("x.mlpackage -o y.mlpackage --fp16 --bogus")
      assert.equal(2, code)
      _, err, code = fix("x.mlpackage -o y.mlpackage --mask-fill 5")
      assert.equal(2, code)
      assert.matches("negative", err)
      _, err, code = fix("x.mlpackage -o y.mlpackage")
      assert.equal(2, code)
      assert.matches("no transform", err)
    end)

    it("refuses ML-program transforms on a neural network", function()
      local nn = dir .. "/nn.mlmodel"
      F.write(nn, F.nn_model():encode())
      local _, err, code = fix(F.q(nn) .. " -o " .. F.q(dir .. "/nn2.mlmodel") .. " --linear-to-conv")
      assert.equal(1, code)
      assert.matches("ML program", err)
    end)
  end)
end)
