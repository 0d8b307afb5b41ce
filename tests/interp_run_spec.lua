-- interp_run_spec.lua — the interpreter through m:run and `mlsh run` / `mlsh compare --outputs`:
-- compressed weights (C decompressor against the Lua one), states, nested blocks, image inputs,
-- flexible and multifunction programs, error messages, -o / --json / --trace / --list-ops.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local CF = require "compress_fixtures"
local IH = require "interp_helpers"

local interp = core.interp
local dir = IH.dir
local values, tensor, build, run, close = IH.values, IH.tensor, IH.build, IH.run, IH.close

describe("compressed weights", function()
  -- The C decompressor (constexpr ops materialised by the interpreter) against the Lua one
  -- (`mlsh decompress` rewrites every constexpr chain as a plain const): same outputs.
  local policies = {
    { "iOS16", { quantize = { dtype = "int8" } } },
    { "iOS16", { palettize = { nbits = 4 } } },
    { "iOS16", { prune = { sparsity = 0.5 } } },
    { "iOS18", { quantize = { dtype = "int4", granularity = "per_block", block_size = 16 } } },
    { "iOS18", { palettize = { nbits = 2, granularity = "per_grouped_channel", group_size = 16 } } },
    { "iOS18", { prune = { sparsity = 0.5 }, palettize = { nbits = 2 } } },
    { "iOS18", { prune = { sparsity = 0.5 }, quantize = { dtype = "int8" } } },
  }
  for k, pc in ipairs(policies) do
    it(string.format("%s %s", pc[1], json.encode(pc[2])), function()
      local compress = require "mlsh.compress"
      local base = CF.base(string.format("%s/base%d.mlpackage", dir, k), { opset = pc[1] })
      local m = mlsh.load(base)
      local cpath = string.format("%s/c%d.mlpackage", dir, k)
      compress.save(m, cpath, pc[2])
      m:close()
      local dpath = string.format("%s/d%d.mlpackage", dir, k)
      local _, err, code = F.run(string.format("decompress %s -o %s --quiet", F.q(cpath), F.q(dpath)))
      assert.are.equal(0, code, err)
      local x = tensor(values(16 * 64, 40 + k), { 1, 16, 8, 8 })
      -- model precision: fp16 weights and compute on both sides (mlsh decompress stores fp16)
      local a = run(cpath, { x = x }, { precision = "model" })
      local b = run(dpath, { x = x }, { precision = "model" })
      local cmp = mlsh.compare(b, a)
      assert.are.equal("logits", cmp[1].name)
      assert.is_true(cmp[1].snr > 100, "SNR " .. tostring(cmp[1].snr))
    end)
  end
end)

describe("states", function()
  it("read_state / write_state: the new state comes back", function()
    local path = build("iOS18", function(f)
      local x = f:input("x", "fp16", { 1, 4 })
      local s = f:state("acc", "fp16", { 1, 4 })
      local y = f:op("add", { x = f:op("read_state", { input = s }), y = x })
      f:update_state(s, y)
      f:output("y", y, { dtype = "fp16" })
    end, "fp16")
    local m = mlsh.load(path)
    local outs, info = m:run({ x = tensor({ 1, 2, 3, 4 }, { 1, 4 }, "fp16"), acc = tensor({ 10, 20, 30, 40 }, { 1, 4 }, "fp16") })
    m:close()
    close(outs.y, { 11, 22, 33, 44 }, 0)
    close(info.states.acc, { 11, 22, 33, 44 }, 0)
  end)
end)

describe("errors", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { 1, 3 })
    f:output("y", f:op("relu", { x = x }))
  end)

  it("names the input, what was expected and what was given", function()
    local m = mlsh.load(path)
    local ok, e = pcall(m.run, m, { x = tensor({ 1, 2 }, { 1, 2 }) })
    assert.is_false(ok)
    assert.matches("input 'x': expected fp32%[1,3%], given fp32%[1,2%]", e)
    ok, e = pcall(m.run, m, { x = tensor({ 1, 2, 3 }, { 1, 3 }, "int32") })
    assert.matches("input 'x': expected fp32%[1,3%], given int32%[1,3%]", e)
    ok, e = pcall(m.run, m, {})
    assert.matches("input 'x' is missing %(expected fp32%[1,3%]", e)
    ok, e = pcall(m.run, m, { x = tensor({ 1, 2, 3 }, { 1, 3 }), z = tensor({ 1 }, { 1 }) })
    assert.matches("the program has no input 'z'", e)
    m:close()
  end)

  it("refuses an unsupported op before running, naming op, type and function", function()
    local bad = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 3 })
      -- conv_quantized: an iOS15 op no converter emits for ML programs, so no kernel
      f:output("y", f:op("conv_quantized", { x = x, weight = x, quantization_type = "linear" },
        { dtype = "fp32", shape = { 1, 3 }, name = "nms", check = false }))
    end)
    local out, err, code = F.run("run " .. F.q(bad) .. " --random 1")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^mlsh run: " .. bad:gsub("%p", "%%%0") .. ": op nms %(type conv_quantized, function main%) is not supported by the interpreter\n$", err)
  end)

  it("refuses a float op whose output is declared bool, naming the op (fuzz: a float buffer of 1-byte size)", function()
    local bad = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 3 })
      local s = f:op("sigmoid", { x = x }, { dtype = "bool", shape = { 1, 3 }, name = "sig", check = false })
      f:output("y", f:op("cast", { x = s, dtype = "fp32" }))
    end)
    local m = mlsh.load(bad)
    local ok, e = pcall(m.run, m, { x = tensor({ 1, 2, 3 }, { 1, 3 }) })
    m:close()
    assert.is_false(ok)
    assert.matches("op 'sig' %(sigmoid%): output 0 is declared bool, but the op computes floats", e)
  end)

  it("broadcasts over an empty dimension without writing anything (fuzz: a modulo by zero)", function()
    local p = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 3 })
      local e = f:op("slice_by_size", { x = x, begin = { 0, 0 }, size = { 0, 3 } }, { dtype = "fp32", shape = { 0, 3 }, check = false })
      local s = f:op("add", { x = e, y = x }, { dtype = "fp32", shape = { 0, 3 }, check = false })
      f:output("y", f:op("reduce_sum", { x = s, axes = { 0 }, keep_dims = false }, { dtype = "fp32", shape = { 3 }, check = false }))
    end)
    local outs = run(p, { x = tensor({ 1, 2, 3 }, { 1, 3 }) })
    close(outs.y, { 0, 0, 0 }, 0)
  end)

  it("refuses a tensor above --memory-budget before allocating it", function()
    local out, err, code = F.run("run " .. F.q(path) .. " --random 1 --memory-budget 4")
    assert.are.equal(1, code)
    assert.matches("larger than the memory budget", err)
    assert.are.equal("", out)
  end)
end)

describe("mlsh run", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { 2, 3 })
    f:output("y", f:op("mul", { x = x, y = 2.0 }))
  end)

  it("writes <output>.npy to -o and prints --json statistics", function()
    local xf = dir .. "/x.npy"
    assert(tensor({ 1, -2, 3, 0, 5, -6 }, { 2, 3 }):save(xf))
    local odir = dir .. "/out"
    local out, err, code = F.run(string.format("run %s --input x=%s -o %s --json", F.q(path), F.q(xf), F.q(odir)))
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    local y = doc.outputs.y
    assert.are.same({ 2, 3 }, y.shape)
    assert.are.equal("fp32", y.dtype)
    assert.are.same({ -12, 10, 1 / 3 }, { y.min, y.max, y.mean })
    assert.are.same({ 0, 0 }, { y.nan, y.inf })
    assert.is_number(doc.seconds)
    local t = assert(interp.npy_load(odir .. "/y.npy"))
    close(t, { 2, -4, 6, 0, 10, -12 }, 0)
  end)

  it("--trace writes every op's output and index.json", function()
    local tdir = dir .. "/trace"
    local _, err, code = F.run(string.format("run %s --random 3 --trace %s", F.q(path), F.q(tdir)))
    assert.are.equal(0, code, err)
    local f = io.open(tdir .. "/index.json")
    local doc = json.decode(f:read("a"))
    f:close()
    local last = doc.ops[#doc.ops]
    assert.are.equal("mul", last.type)
    assert.are.same({ 2, 3 }, last.outputs[1].shape)
    assert(interp.npy_load(tdir .. "/" .. last.outputs[1].file))
  end)

  it("--list-ops lists what the interpreter runs", function()
    local out, _, code = F.run("run --list-ops")
    assert.are.equal(0, code)
    for _, op in ipairs({ "conv", "linear", "lstm", "constexpr_lut_to_dense", "while_loop", "layer_norm" }) do
      assert.truthy(out:find("\n" .. op .. "\n", 1, true), op)
    end
  end)
end)

describe("mlsh compare --outputs", function()
  local base = CF.base(dir .. "/cmp_base.mlpackage", { opset = "iOS16" })
  local m = mlsh.load(base)
  local cpath = dir .. "/cmp_int8.mlpackage"
  require("mlsh.compress").save(m, cpath, { quantize = { dtype = "int8" } })
  m:close()

  it("reports output SNR, top-1 agreement and the first op below the threshold", function()
    local out, err, code = F.run(string.format("compare %s %s --outputs --random 2 --samples 2 --threshold 200 --json", F.q(base), F.q(cpath)))
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    assert.are.equal(2, doc.samples)
    local o = doc.outputs[1]
    assert.are.equal("logits", o.name)
    assert.is_true(o.snr_db > 20 and o.snr_db < 100, tostring(o.snr_db))
    assert.are.equal(1, o.top1_agreement)
    assert.are.equal("conv", doc.first_below.type) -- the first op with a quantized weight
    assert.is_true(#doc.ops >= 5)
  end)

  it("a model against itself is exact", function()
    local out, err, code = F.run(string.format("compare %s %s --outputs", F.q(base), F.q(base)))
    assert.are.equal(0, code, err)
    assert.matches("logits%s+SNR inf dB", out)
    assert.matches("every matched op at or above 30 dB", out)
  end)
end)

describe("image inputs", function()
  it("HWC uint8 pixels become [1, C, H, W] in the model's colour order, then its scale and bias apply", function()
    local path = build("iOS16", function(f)
      local x = f:input("image", "image", { width = 2, height = 2, color = "BGR", scale = 0.5, bias = { 1, 2, 3 } })
      f:output("y", f:op("relu", { x = x }))
    end)
    -- RGB pixels (r, g, b) at (0,0) (0,1) (1,0) (1,1)
    local px = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120 }
    local f = dir .. "/img.npy"
    assert(tensor(px, { 2, 2, 3 }, "uint8"):save(f))
    local out, err, code = F.run(string.format("run %s --input image=%s -o %s/img_out", F.q(path), F.q(f), F.q(dir)))
    assert.are.equal(0, code, err .. out)
    local y = assert(interp.npy_load(dir .. "/img_out/y.npy"))
    assert.are.same({ 1, 3, 2, 2 }, y:shape())
    -- channel 0 is blue: 0.5 * b + 1; channel 1 green: 0.5 * g + 2; channel 2 red: 0.5 * r + 3
    close(y, { 16, 31, 46, 61, 12, 27, 42, 57, 8, 23, 38, 53 }, 0)
  end)
end)

describe("nested blocks", function()
  -- while_loop doubling x three times, then cond(i > 0) choosing relu (true) or x - x (false).
  -- The builder has no block API, so the program is written with the protobuf binding.
  local P = core.proto
  local function ttype(vt, dtype, shape)
    local t = vt:mutable("tensorType")
    t.dataType, t.rank = dtype, #shape
    for _, d in ipairs(shape) do t:add("dimensions"):mutable("constant").size = d end
  end
  local function op(block, typ, inputs, outs)
    local o = block:add("operations")
    o.type = typ
    local a = o:add("attributes")
    a.key = "name"
    local v = a:mutable("value")
    ttype(v:mutable("type"), "STRING", {})
    v:mutable("immediateValue"):mutable("tensor"):mutable("strings").values = { outs[1][1] }
    for _, kv in ipairs(inputs) do
      local e = o:add("inputs")
      e.key = kv[1]
      local arg = e:mutable("value")
      for _, name in ipairs(type(kv[2]) == "table" and kv[2] or { kv[2] }) do arg:add("arguments").name = name end
    end
    for _, out in ipairs(outs) do
      local ov = o:add("outputs")
      ov.name = out[1]
      ttype(ov:mutable("type"), out[2], out[3])
    end
    return o
  end
  local function const_int(block, name, v)
    local o = op(block, "const", {}, { { name, "INT32", {} } })
    local e = o:add("attributes")
    e.key = "val"
    local val = e:mutable("value")
    ttype(val:mutable("type"), "INT32", {})
    val:mutable("immediateValue"):mutable("tensor"):mutable("ints").values = { v }
  end
  local function block_inputs(b, list)
    for _, it_ in ipairs(list) do
      local i = b:add("inputs")
      i.name = it_[1]
      ttype(i:mutable("type"), it_[2], it_[3])
    end
  end

  it("while_loop and cond run their blocks", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 7
    local d = m:mutable("description")
    F.array_feature(d, "input", "x", "FLOAT32", { 1, 3 })
    F.array_feature(d, "output", "y", "FLOAT32", { 1, 3 })
    local prog = m:mutable("mlProgram")
    prog.version = 1
    local fe = prog:add("functions")
    fe.key = "main"
    local fn = fe:mutable("value")
    fn.opset = "CoreML6"
    block_inputs(fn, { { "x", "FLOAT32", { 1, 3 } } })
    local be = fn:add("block_specializations")
    be.key = "CoreML6"
    local main = be:mutable("value")
    main.outputs = { "y" }
    const_int(main, "zero", 0)
    const_int(main, "one", 1)
    const_int(main, "three", 3)
    local w = op(main, "while_loop", { { "loop_vars", { "x", "zero" } } }, { { "xo", "FLOAT32", { 1, 3 } }, { "io", "INT32", {} } })
    local cb = w:add("blocks")
    block_inputs(cb, { { "xc", "FLOAT32", { 1, 3 } }, { "ic", "INT32", {} } })
    op(cb, "less", { { "x", "ic" }, { "y", "three" } }, { { "c", "BOOL", {} } })
    cb.outputs = { "c" }
    local bb = w:add("blocks")
    block_inputs(bb, { { "xb", "FLOAT32", { 1, 3 } }, { "ib", "INT32", {} } })
    op(bb, "add", { { "x", "xb" }, { "y", "xb" } }, { { "x2", "FLOAT32", { 1, 3 } } })
    op(bb, "add", { { "x", "ib" }, { "y", "one" } }, { { "i2", "INT32", {} } })
    bb.outputs = { "x2", "i2" }
    op(main, "greater", { { "x", "io" }, { "y", "zero" } }, { { "p", "BOOL", {} } })
    local cd = op(main, "cond", { { "pred", "p" } }, { { "y", "FLOAT32", { 1, 3 } } })
    local tb = cd:add("blocks")
    op(tb, "relu", { { "x", "xo" } }, { { "t1", "FLOAT32", { 1, 3 } } })
    tb.outputs = { "t1" }
    local fb = cd:add("blocks")
    op(fb, "sub", { { "x", "xo" }, { "y", "xo" } }, { { "f1", "FLOAT32", { 1, 3 } } })
    fb.outputs = { "f1" }
    local path = F.write_package(dir .. "/loop.mlpackage", m, core.blobfile.writer():bytes())
    local outs = run(path, { x = tensor({ 1, -2, 0.5 }, { 1, 3 }) })
    close(outs.y, { 8, 0, 4 }, 0)
  end)
end)

describe("flexible inputs", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { range = { { 1, 1 }, { 2, 8 } }, default = { 1, 4 } })
    f:output("y", f:op("relu", { x = x }))
  end)

  it("--random uses the default shape, --shape another one", function()
    local out, err, code = F.run(string.format("run %s --random 1 --json", F.q(path)))
    assert.are.equal(0, code, err)
    assert.are.same({ 1, 4 }, json.decode(out).outputs.y.shape)
    out, err, code = F.run(string.format("run %s --random 1 --shape x=1x7 --json", F.q(path)))
    assert.are.equal(0, code, err)
    assert.are.same({ 1, 7 }, json.decode(out).outputs.y.shape)
  end)
end)

describe("multifunction programs", function()
  it("--function picks one; an unknown name lists the functions", function()
    local spec, wb = F.mlprogram { functions = { "first", "second" }, spec = 9, opset = "CoreML8" }
    local path = F.write_package(dir .. "/multi.mlpackage", spec, wb)
    local out, err, code = F.run(string.format("run %s --function second --random 1 --json", F.q(path)))
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    assert.are.equal("second", doc["function"])
    assert.are.same({ 1, 8 }, doc.outputs.y.shape)
    out, err, code = F.run(string.format("run %s --function third --random 1", F.q(path)))
    assert.are.equal(1, code)
    assert.matches("no function 'third' %(the program has: first, second%)", err)
  end)
end)
