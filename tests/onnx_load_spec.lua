-- ONNX loading: the graph API shared with Core ML models, zero-copy tensor payloads, external
-- data, `mlsh info` on ONNX, and every way an ONNX file can be bad.
local mlsh = require "mlsh"
require "mlsh.onnx.model"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "onnx_builder"

local MLSH = "-e " .. F.q('require "mlsh.onnx.model"') .. " "

local function seq(n, scale)
  local t = {}
  for i = 1, n do t[i] = ((i * 37) % 17 - 8) * (scale or 0.25) end
  return t
end

-- x[1,"seq",16] -> MatMul(W 16x512, big) -> Add(bias) -> Relu -> If(cond){Identity} ; plus a Constant
local function small_model(dir, opts)
  opts = opts or {}
  local b = B.model { opset = 17, opsets = { ["com.microsoft"] = 1 } }
  b:metadata("author", "mlsh")
  b:input("x", "FLOAT", { 1, "seq", 16 })
  b:input("cond", "BOOL", {})
  b:input("W", "FLOAT", { 16, 512 }) -- an old-style input that is also an initializer
  b:init("W", "FLOAT", { 16, 512 }, seq(16 * 512), { external = opts.external })
  b:init("bias", "FLOAT", { 512 }, seq(512), { typed = true })
  b:init("shape", "INT64", { 2 }, { 1, -1 })
  b:init("half", "FLOAT16", { 4 }, { 0.5, 1, 1.5, 2 }, { typed = true })
  b:const("k", "FLOAT", { 2 }, { 3, 4 })
  b:node("MatMul", { "x", "W" }, { "mm" })
  b:node("Add", { "mm", "bias" }, { "a" })
  b:node("Relu", { "a" }, { "r" })
  local then_g = B.graph("then")
  then_g:node("Identity", { "r" }, { "t_out" })
  then_g:output("t_out", "FLOAT")
  local else_g = B.graph("else")
  local inner = B.graph("inner")
  inner:node("Neg", { "r" }, { "i_out" })
  inner:output("i_out", "FLOAT")
  else_g:node("If", { "cond" }, { "e_out" }, { then_branch = inner, else_branch = B.graph("empty"):output("r") })
  else_g:output("e_out", "FLOAT")
  b:node("If", { "cond" }, { "y" }, { then_branch = then_g, else_branch = else_g })
  b:node("FusedThing", { "y" }, { "z" }, { alpha = 0.5 }, { domain = "com.microsoft" })
  b:output("z", "FLOAT", { 1, "seq", 512 })
  local fbody = B.graph("f")
  fbody:node("Mul", { "a", "b" }, { "c" })
  b:func("MulTwo", "local.fns", { "a", "b" }, { "c" }, fbody)
  return b:save(dir .. "/" .. (opts.name or "small.onnx"))
end

describe("ONNX models", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() core.fs.remove_tree(dir) end)

  it("load through mlsh.load with the common graph API", function()
    local m <close> = mlsh.load(small_model(dir))
    assert.equal("onnx", m.format)
    assert.equal(8, m.ir_version)
    assert.same({ [""] = 17, ["com.microsoft"] = 1 }, m.opsets)
    assert.same({ name = "mlsh-tests", version = "1" }, m.producer)
    local ins = m:inputs()
    assert.equal(2, #ins) -- W is an initializer, not an input
    assert.equal("x", ins[1].name)
    assert.equal("fp32", ins[1].dtype)
    assert.same({ 1, "seq", 16 }, ins[1].shape)
    assert.equal("bool", ins[2].dtype)
    assert.same({}, ins[2].shape)
    assert.equal("z", m:outputs()[1].name)
    local fns = m:functions()
    assert.equal(2, #fns)
    assert.equal("main", fns[1].name)
    assert.equal(17, fns[1].opset)
    assert.equal("local.fns::MulTwo", fns[2].name)
    assert.equal(6, #fns[1].ops)
    assert.equal(9, #fns[1].all_ops)
    local ops = m:ops("main")
    assert.equal("Constant", ops[1].type)
    local mm = ops[2]
    assert.equal("MatMul", mm.type)
    assert.equal("", mm.domain)
    assert.equal("x", mm:inputs()[1].name)
    assert.same({ 1, "seq", 16 }, mm:inputs()[1].shape)
    assert.equal("mm", mm.outputs[1].name)
    local fused = fns[1].ops[6]
    assert.equal("com.microsoft", fused.domain)
    assert.near(0.5, fused:attr("alpha"), 1e-6)
    assert.equal(1, m:op_histogram()["com.microsoft::FusedThing"])
    assert.equal(2, #fns[1].ops[5].blocks)
    assert.equal("author", next(m.metadata.user_defined))
  end)

  it("leaves big payloads in the mapped file and reads them only on request", function()
    local m <close> = mlsh.load(small_model(dir))
    local W = m.spec.graph.initializer[1]
    assert.equal("W", W.name)
    assert.is_false(W:has("raw_data"))
    assert.equal(9, W.mlsh_elided_field)
    assert.equal(16 * 512 * 4, W.mlsh_elided_length)
    local shape_t = m.spec.graph.initializer[3]
    assert.is_true(shape_t:has("raw_data")) -- small payloads stay inline
    local ws = m:weights()
    assert.equal(4, #ws)
    local w = ws[1]
    assert.equal("mapped", w.storage)
    assert.equal(16 * 512 * 4, w.bytes)
    local a = w:values()
    assert.equal(16 * 512, #a)
    assert.same({ 16, 512 }, a:shape())
    local want = seq(16 * 512)
    for i = 1, 200 do assert.equal(want[i], a[i]) end
    assert.equal(want[16 * 512], a[16 * 512])
    -- typed fields, fp16 bit patterns in int32_data, exact int64 values
    assert.equal("mapped", ws[2].storage) -- packed float_data is left in the file too
    assert.equal("float_data", ws[2].tensor.field)
    assert.equal(512 * 4, ws[2].bytes)
    assert.equal(want[7], ws[2]:values()[7])
    assert.same({ 1, -1 }, ws[3].tensor:values(m))
    assert.equal("typed", ws[4].storage)
    local h = ws[4]:values()
    assert.equal(1.5, h[3])
    assert.equal(8, ws[4].bytes)
    assert.same({ 0.5, 1, 1.5, 2 }, ws[4].tensor:values(m))
  end)

  it("resolves external data beside the model, bound-checked", function()
    local path = small_model(dir, { external = "weights.bin", name = "ext.onnx" })
    local m <close> = mlsh.load(path)
    local w = m:weights()[1]
    assert.equal("external", w.storage)
    assert.equal("weights.bin", w.file)
    local a = w:values()
    assert.equal(seq(16 * 512)[100], a[100])
    local info = m:info()
    assert.equal(1, info.initializers.external)
    assert.equal("weights.bin", info.external_data.files[1].path)
  end)

  it("reports an external data file that is missing, an offset past its end, an unsafe location", function()
    local function variant(name, tweak)
      local b = B.model {}
      b:input("x", "FLOAT", { 4 })
      b:init("w", "FLOAT", { 4 }, { 1, 2, 3, 4 }, { external = name .. ".bin" })
      b:node("Add", { "x", "w" }, { "y" })
      b:output("y", "FLOAT", { 4 })
      local msg = b:proto()
      tweak(msg.graph.initializer[1])
      local p = dir .. "/" .. name .. ".onnx"
      assert(core.fs.write_atomic(p, core.onnx.mark_bytes_present(msg):encode()))
      core.fs.write_atomic(dir .. "/" .. name .. ".bin", string.rep("\0", 16))
      return p
    end
    local function set(t, key, value)
      for _, kv in ipairs(t.external_data) do
        if kv.key == key then kv.value = value end
      end
    end
    local missing = variant("nofile", function(t) set(t, "location", "nowhere.bin") end)
    local m <close> = mlsh.load(missing) -- loading never touches tensor data
    local v, err = m:weights()[1]:values()
    assert.is_nil(v)
    assert.truthy(err:find("nowhere.bin", 1, true), err)
    local info = m:info()
    assert.same({ "nowhere.bin" }, info.external_data.missing_files)

    local past = variant("past", function(t) set(t, "offset", "4096") end)
    local m2 <close> = mlsh.load(past)
    v, err = m2:weights()[1]:values()
    assert.is_nil(v)
    assert.truthy(err:find("past the end", 1, true), err)

    local long = variant("long", function(t) set(t, "length", "64") end)
    local m3 <close> = mlsh.load(long)
    v, err = m3:weights()[1]:values()
    assert.is_nil(v)
    assert.truthy(err:find("run past the end", 1, true), err)

    local unsafe = variant("unsafe", function(t) set(t, "location", "../etc/passwd") end)
    local m4 <close> = mlsh.load(unsafe)
    v, err = m4:weights()[1]:values()
    assert.is_nil(v)
    assert.truthy(err:find("unsafe path", 1, true), err)
    local absolute = variant("absolute", function(t) set(t, "location", "/etc/passwd") end)
    local m5 <close> = mlsh.load(absolute)
    v, err = m5:weights()[1]:values()
    assert.is_nil(v)
    assert.truthy(err:find("unsafe path", 1, true), err)
  end)

  it("refuses bad files with the file and the reason, never writing them", function()
    local good = small_model(dir, { name = "good.onnx" })
    local bytes = F.read(good)
    local cases = {
      { "missing.onnx", nil, "No such file" },
      { "truncated.onnx", bytes:sub(1, #bytes // 2), "truncated or corrupt" },
      { "text.onnx", "this is not a protobuf at all, just text\n", "not an ONNX model" },
      { "zero.onnx", "\0\0\0\0\0\0\0\0", "not an ONNX model" },
    }
    for _, c in ipairs(cases) do
      local p = dir .. "/" .. c[1]
      if c[2] then assert(core.fs.write_atomic(p, c[2])) end
      local before = F.sha(p)
      local m, err = mlsh.try_load(p)
      assert.is_nil(m, c[1])
      assert.truthy(err:find(p, 1, true), err)
      assert.truthy(err:find(c[3], 1, true), c[1] .. ": " .. err)
      assert.equal(before, F.sha(p))
    end
  end)

  it("refuses nesting deep enough to exhaust the stack", function()
    local g = B.graph("leaf")
    for i = 1, 70 do
      local outer = B.graph("g" .. i)
      outer:node("If", { "c" }, { "o" }, { then_branch = g, else_branch = B.graph("e") })
      g = outer
    end
    local b = B.model {}
    b:input("c", "BOOL", {})
    b:node("If", { "c" }, { "o" }, { then_branch = g, else_branch = B.graph("e") })
    local p = dir .. "/deep.onnx"
    assert(core.fs.write_atomic(p, b:bytes()))
    local m, err = mlsh.try_load(p)
    assert.is_nil(m)
    assert.truthy(err:find("nested deeper", 1, true), err)
  end)

  it("answers mlsh info --json with the fixed keys", function()
    local p = small_model(dir, { name = "info.onnx" })
    local out, err, code = F.run(MLSH .. "info --json " .. F.q(p))
    assert.equal(0, code, err)
    local o = json.decode(out)
    assert.equal("onnx", o.format)
    assert.equal(8, o.ir_version)
    assert.same({ [""] = 17, ["com.microsoft"] = 1 }, o.opsets)
    assert.same({ name = "mlsh-tests", version = "1" }, o.producer)
    assert.equal(6, o.node_count)
    assert.same({ Constant = 1, MatMul = 1, Add = 1, Relu = 1, If = 1, ["com.microsoft::FusedThing"] = 1 },
      o.op_histogram)
    assert.equal(9, o.node_count_including_subgraphs)
    assert.same({ { name = "x", dtype = "fp32", shape = { 1, "seq", 16 }, kind = "tensor" },
                  { name = "cond", dtype = "bool", shape = {}, kind = "tensor" } }, o.inputs)
    assert.same({ { name = "z", dtype = "fp32", shape = { 1, "seq", 512 }, kind = "tensor" } }, o.outputs)
    assert.equal(4, o.initializers.count)
    assert.equal(16 * 512 * 4 + 512 * 4 + 16 + 8, o.initializers.bytes)
    assert.same({ count = 1, bytes = 8, nodes = 1, other_bytes = 0 }, o.constants)
    assert.equal(4, o.subgraphs.count)
    assert.equal(2, o.subgraphs.max_depth)
    assert.equal(1, #o.functions)
    local text = F.run(MLSH .. "info " .. F.q(p))
    assert.truthy(text:find("graph main: 6 nodes", 1, true), text)
    assert.truthy(text:find("4 subgraphs (max depth 2), 9 nodes", 1, true), text)
  end)

  it("reports unknown and symbolic dims and non-tensor inputs", function()
    local b = B.model {}
    b:input("x", "FLOAT", { "batch", false, 3 })
    b:input("noshape", "INT64", nil)
    b:typed_input("seq", "sequence", "FLOAT", { 2 })
    b:node("Identity", { "x" }, { "y" })
    b:output("y", "FLOAT", nil)
    local p = b:save(dir .. "/dims.onnx")
    local out, err, code = F.run(MLSH .. "info --json " .. F.q(p))
    assert.equal(0, code, err)
    local o = json.decode(out)
    assert.same({ "batch", json.null, 3 }, o.inputs[1].shape)
    assert.equal(json.null, o.inputs[2].shape)
    assert.equal("sequence", o.inputs[3].kind)
    assert.equal(json.null, o.inputs[3].dtype)
    assert.same({ kind = "tensor", dtype = "fp32", shape = { 2 } }, o.inputs[3].elem)
  end)

  it("exits 1 with one line for an unreadable ONNX file", function()
    local p = dir .. "/bad.onnx"
    assert(core.fs.write_atomic(p, "\10\255"))
    local out, err, code = F.run(MLSH .. "info --json " .. F.q(p))
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("^mlsh: " .. p:gsub("%p", "%%%0")), err)
  end)
end)
