-- interp_list_spec.lua — MIL lists in the interpreter: make_list, list_write/read/gather/scatter/
-- length, lists carried through while_loop, and the errors (fixed length, lists where a tensor is
-- expected). The builder has no list types or blocks, so programs are written with the protobuf
-- binding; expected values are computed here by hand.
local core = require "mlsh.core"
local F = require "fixtures"
local IH = require "interp_helpers"

local P = core.proto
local tensor, run, close = IH.tensor, IH.run, IH.close
local n_models = 0

local function ttype(vt, dtype, shape)
  local t = vt:mutable("tensorType")
  t.dataType, t.rank = dtype, #shape
  for _, d in ipairs(shape) do t:add("dimensions"):mutable("constant").size = d end
end

-- A list type of fp32 elements of elem_shape (length unknown).
local function ltype(vt, elem_shape)
  local l = vt:mutable("listType")
  ttype(l:mutable("type"), "FLOAT32", elem_shape)
  l:mutable("length"):mutable("unknown").variadic = false
end

local function set_type(vt, ty)
  if ty[1] == "LIST" then ltype(vt, ty[2]) else ttype(vt, ty[1], ty[2]) end
end

-- op(block, type, {{param, name-or-names}...}, {{out name, type}...}); type = {"FLOAT32", shape} or {"LIST", elem_shape}
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
    set_type(ov:mutable("type"), out[2])
  end
  return o
end

-- const(block, name, dtype, shape, field, values): field is ints / floats / bools / strings
local function const(block, name, dtype, shape, field, vals)
  local o = op(block, "const", {}, { { name, { dtype, shape } } })
  local e = o:add("attributes")
  e.key = "val"
  local val = e:mutable("value")
  ttype(val:mutable("type"), dtype, shape)
  val:mutable("immediateValue"):mutable("tensor"):mutable(field).values = vals
end

local function block_inputs(b, list)
  for _, it_ in ipairs(list) do
    local i = b:add("inputs")
    i.name = it_[1]
    set_type(i:mutable("type"), it_[2])
  end
end

-- A model main(x fp32[3]) whose body(main_block) is written by fill; outputs as {name, dtype, shape}.
local function model(outputs, fill)
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = 7
  local d = m:mutable("description")
  F.array_feature(d, "input", "x", "FLOAT32", { 3 })
  for _, o in ipairs(outputs) do F.array_feature(d, "output", o[1], o[2], o[3]) end
  local fe = m:mutable("mlProgram"):add("functions")
  m.mlProgram.version = 1
  fe.key = "main"
  local fn = fe:mutable("value")
  fn.opset = "CoreML6"
  block_inputs(fn, { { "x", { "FLOAT32", { 3 } } } })
  local be = fn:add("block_specializations")
  be.key = "CoreML6"
  local main = be:mutable("value")
  local outs = {}
  for i, o in ipairs(outputs) do outs[i] = o[1] end
  main.outputs = outs
  fill(main)
  n_models = n_models + 1
  return F.write_package(string.format("%s/list%d.mlpackage", IH.dir, n_models), m, core.blobfile.writer():bytes())
end

local function make_list(main, name, o)
  const(main, name .. "_len", "INT32", {}, "ints", { o.len or 0 })
  const(main, name .. "_dyn", "BOOL", {}, "bools", { o.dynamic ~= false })
  const(main, name .. "_dt", "STRING", {}, "strings", { "fp32" })
  const(main, name .. "_d0", "INT32", {}, "ints", { 3 })
  op(main, "make_list", { { "init_length", name .. "_len" }, { "dynamic_length", name .. "_dyn" }, { "elem_shape", { name .. "_d0" } },
    { "dtype", name .. "_dt" } }, { { name, { "LIST", { 3 } } } })
end

describe("list ops", function()
  it("a while_loop writes 2^k * x into element k; read, gather, scatter and length see the list", function()
    local path = model({ { "g", "FLOAT32", { 2, 3 } }, { "r", "FLOAT32", { 3 } }, { "n", "INT32", {} }, { "s", "FLOAT32", { 2, 3 } },
      { "z", "FLOAT32", { 3 } } }, function(main)
      make_list(main, "ls", { len = 0 })
      const(main, "zero", "INT32", {}, "ints", { 0 })
      const(main, "one", "INT32", {}, "ints", { 1 })
      const(main, "three", "INT32", {}, "ints", { 3 })
      local w = op(main, "while_loop", { { "loop_vars", { "ls", "zero", "x" } } },
        { { "lo", { "LIST", { 3 } } }, { "io", { "INT32", {} } }, { "vo", { "FLOAT32", { 3 } } } })
      local cb = w:add("blocks")
      block_inputs(cb, { { "lc", { "LIST", { 3 } } }, { "ic", { "INT32", {} } }, { "vc", { "FLOAT32", { 3 } } } })
      op(cb, "less", { { "x", "ic" }, { "y", "three" } }, { { "c", { "BOOL", {} } } })
      cb.outputs = { "c" }
      local bb = w:add("blocks")
      block_inputs(bb, { { "lb", { "LIST", { 3 } } }, { "ib", { "INT32", {} } }, { "vb", { "FLOAT32", { 3 } } } })
      op(bb, "list_write", { { "ls", "lb" }, { "index", "ib" }, { "value", "vb" } }, { { "l2", { "LIST", { 3 } } } })
      op(bb, "add", { { "x", "vb" }, { "y", "vb" } }, { { "v2", { "FLOAT32", { 3 } } } })
      op(bb, "add", { { "x", "ib" }, { "y", "one" } }, { { "i2", { "INT32", {} } } })
      bb.outputs = { "l2", "i2", "v2" }
      const(main, "gi", "INT32", { 2 }, "ints", { 2, 0 })
      op(main, "list_gather", { { "ls", "lo" }, { "indices", "gi" } }, { { "g", { "FLOAT32", { 2, 3 } } } })
      op(main, "list_read", { { "ls", "lo" }, { "index", "one" } }, { { "r", { "FLOAT32", { 3 } } } })
      -- scatter rows into elements 4 and 0: the list grows to 5, element 3 stays unwritten (zeros)
      const(main, "si", "INT32", { 2 }, "ints", { 4, 0 })
      const(main, "sv", "FLOAT32", { 2, 3 }, "floats", { 10, 11, 12, 20, 21, 22 })
      op(main, "list_scatter", { { "ls", "lo" }, { "indices", "si" }, { "value", "sv" } }, { { "ls2", { "LIST", { 3 } } } })
      op(main, "list_length", { { "ls", "ls2" } }, { { "n", { "INT32", {} } } })
      const(main, "gi2", "INT32", { 2 }, "ints", { 0, 4 })
      op(main, "list_gather", { { "ls", "ls2" }, { "indices", "gi2" } }, { { "s", { "FLOAT32", { 2, 3 } } } })
      op(main, "list_read", { { "ls", "ls2" }, { "index", "three" } }, { { "z", { "FLOAT32", { 3 } } } })
    end)
    local outs = run(path, { x = tensor({ 1, -2, 0.5 }, { 3 }) })
    close(outs.g, { 4, -8, 2, 1, -2, 0.5 }, 0)  -- elements 2 (4x) and 0 (1x)
    close(outs.r, { 2, -4, 1 }, 0)
    close(outs.n, { 5 }, 0)
    close(outs.s, { 20, 21, 22, 10, 11, 12 }, 0) -- element 0 overwritten, element 4 appended
    close(outs.z, { 0, 0, 0 }, 0)
    -- --trace skips list values (no .npy for a list) and writes every tensor
    local out, err, code = F.run(string.format("run %s --random 1 --trace %s", F.q(path), F.q(IH.dir .. "/list_trace")))
    assert.are.equal(0, code, err .. out)
    local index = assert(io.open(IH.dir .. "/list_trace/index.json")):read("a")
    assert.truthy(index:find('"type": "list_gather"', 1, true))
  end)

  local function expect_error(pattern, outputs, fill)
    local path = model(outputs, fill)
    local ok, err = pcall(run, path, { x = tensor({ 1, 2, 3 }, { 3 }) })
    assert.is_false(ok)
    assert.matches(pattern, tostring(err))
  end

  it("refuses a write past the end of a fixed-length list, a value of the wrong shape, a list where a tensor goes", function()
    expect_error("list_write%): index 2 is outside the list's 2 elements", { { "r", "FLOAT32", { 3 } } }, function(main)
      make_list(main, "ls", { len = 2, dynamic = false })
      const(main, "two", "INT32", {}, "ints", { 2 })
      op(main, "list_write", { { "ls", "ls" }, { "index", "two" }, { "value", "x" } }, { { "l2", { "LIST", { 3 } } } })
      op(main, "list_read", { { "ls", "l2" }, { "index", "two" } }, { { "r", { "FLOAT32", { 3 } } } })
    end)
    expect_error("value dimension 0 is 2, the list's elements have 3", { { "r", "FLOAT32", { 2 } } }, function(main)
      make_list(main, "ls", {})
      const(main, "zero", "INT32", {}, "ints", { 0 })
      const(main, "v", "FLOAT32", { 2 }, "floats", { 1, 2 })
      op(main, "list_write", { { "ls", "ls" }, { "index", "zero" }, { "value", "v" } }, { { "l2", { "LIST", { 3 } } } })
      op(main, "list_read", { { "ls", "l2" }, { "index", "zero" } }, { { "r", { "FLOAT32", { 2 } } } })
    end)
    expect_error("op 'r' %(relu%): input 'x' is a list, which this op does not take", { { "r", "FLOAT32", { 3 } } }, function(main)
      make_list(main, "ls", {})
      op(main, "relu", { { "x", "ls" } }, { { "r", { "FLOAT32", { 3 } } } })
    end)
    expect_error("element 0 was never written and the element shape is not known", { { "g", "FLOAT32", { 1, 3 } } }, function(main)
      const(main, "len", "INT32", {}, "ints", { 2 })
      op(main, "make_list", { { "init_length", "len" } }, { { "ls", { "LIST", { 3 } } } })
      const(main, "gi", "INT32", { 1 }, "ints", { 0 })
      op(main, "list_gather", { { "ls", "ls" }, { "indices", "gi" } }, { { "g", { "FLOAT32", { 1, 3 } } } })
    end)
    expect_error("index 7 is outside the list's 1 elements", { { "r", "FLOAT32", { 3 } } }, function(main)
      make_list(main, "ls", { len = 1 })
      const(main, "seven", "INT32", {}, "ints", { 7 })
      op(main, "list_read", { { "ls", "ls" }, { "index", "seven" } }, { { "r", { "FLOAT32", { 3 } } } })
    end)
  end)

  -- classify(probabilities, classes): coremltools writes `classes` as a list literal of scalar
  -- string (or int) tensors; the label is the class of the highest probability (the first on ties).
  local function classify_model(items, field, dtype)
    return model({ { "label", "FLOAT32", { 1 } }, { "probs", "FLOAT32", { 3 } } }, function(main)
      local o = op(main, "classify", { { "probabilities", "x" } }, { { "label", { dtype, {} } }, { "probs", { "FLOAT32", { 3 } } } })
      local e = o:add("inputs")
      e.key = "classes"
      local v = e:mutable("value"):add("arguments"):mutable("value")
      ltype(v:mutable("type"), {})
      local lst = v:mutable("immediateValue"):mutable("list")
      for _, item_v in ipairs(items) do
        local item = lst:add("values")
        ttype(item:mutable("type"), dtype, {})
        item:mutable("immediateValue"):mutable("tensor"):mutable(field).values = { item_v }
      end
    end)
  end

  it("classify: the label of the highest probability from a list literal of strings or ints", function()
    local outs = run(classify_model({ "cat", "dog", "cow" }, "strings", "STRING"), { x = tensor({ 0.2, 0.5, 0.3 }, { 3 }) })
    assert.are.same({ "dog" }, outs.label:labels())
    close(outs.probs, { 0.2, 0.5, 0.3 }, 1e-7) -- fp32 copies of the inputs
    outs = run(classify_model({ 10, 20, 30 }, "ints", "INT32"), { x = tensor({ 0.1, 0.2, 0.7 }, { 3 }) })
    assert.are.same({ 30 }, outs.label:labels())
    -- ties: the first class
    outs = run(classify_model({ "a", "b", "c" }, "strings", "STRING"), { x = tensor({ 0.4, 0.4, 0.2 }, { 3 }) })
    assert.are.same({ "a" }, outs.label:labels())
  end)

  it("classify with classes that are not strings or ints is refused before running", function()
    local path = classify_model({ 0.5, 1.5, 2.5 }, "floats", "FLOAT32")
    local out, err, code = F.run("run " .. F.q(path) .. " --random 1")
    assert.are.equal(1, code, out)
    assert.matches("'classes' must be a literal list of strings or ints\n$", err)
  end)
end)
