-- MIL text reader (core/mil_text.c via core/lua_miltext.c): model.mil text -> MILSpec Program bytes.
-- Every MIL text here is written in this file; the serialized bytes are checked with a small
-- protobuf wire decoder below, independent of mlsh's own proto code.
local miltext = require("mlsh.core").miltext

---------------------------------------------------------------- plain protobuf wire decoding
local function varint(s, i)
  local r, shift = 0, 0
  while true do
    local b = s:byte(i)
    assert(b, "truncated varint")
    i = i + 1
    r = r | ((b & 0x7f) << shift)
    if b < 0x80 then return r, i end
    shift = shift + 7
  end
end

-- A message as {[field number] = {raw values...}}: integers for varints, strings otherwise.
local function decode(s)
  local f, i = {}, 1
  while i <= #s do
    local key
    key, i = varint(s, i)
    local num, wt, v = key >> 3, key & 7, nil
    if wt == 0 then
      v, i = varint(s, i)
    elseif wt == 2 then
      local n
      n, i = varint(s, i)
      v = s:sub(i, i + n - 1)
      assert(#v == n, "truncated field")
      i = i + n
    elseif wt == 1 then
      v = s:sub(i, i + 7); i = i + 8
    elseif wt == 5 then
      v = s:sub(i, i + 3); i = i + 4
    else
      error("unexpected wire type " .. wt)
    end
    f[num] = f[num] or {}
    table.insert(f[num], v)
  end
  return f
end

local function one(f, n) return f[n] and f[n][1] end
local function all(f, n) return f[n] or {} end
local function sub(f, n) local v = one(f, n); return v and decode(v) end

-- map<string, message> field -> ordered list of {key, decoded value}
local function entries(f, n)
  local out = {}
  for _, e in ipairs(all(f, n)) do
    local d = decode(e)
    out[#out + 1] = { key = one(d, 1) or "", value = decode(one(d, 2) or "") }
  end
  return out
end
local function lookup(f, n, key)
  for _, e in ipairs(entries(f, n)) do if e.key == key then return e.value end end
end

local function packed_varints(s)
  local out, i = {}, 1
  while i <= #s do
    local v
    v, i = varint(s, i)
    out[#out + 1] = v
  end
  return out
end

-- Program(2 functions) -> Function(1 inputs, 2 opset, 3 block_specializations) -> Block(2 outputs,
-- 3 operations) -> Operation(1 type, 2 inputs, 3 outputs, 4 blocks, 5 attributes)
local function functions(bytes) return entries(decode(bytes), 2) end
local function body(fn) return lookup(fn, 3, one(fn, 2)) end
local function op_types(block)
  local t = {}
  for _, o in ipairs(all(block, 3)) do t[#t + 1] = one(decode(o), 1) end
  return t
end
local function ops(block)
  local t = {}
  for _, o in ipairs(all(block, 3)) do t[#t + 1] = decode(o) end
  return t
end

-- Value(2 type, 3 immediateValue, 5 blobFileValue) -> ImmediateValue(1 tensor) -> TensorValue oneof
local function tensor_value(value)
  local iv = sub(value, 3)
  return iv and sub(iv, 1)
end
local function value_string(value)
  local tv = tensor_value(value)
  local strings = tv and sub(tv, 4)
  return strings and one(strings, 1)
end
local function tensor_type(vt) return sub(vt, 1) end -- ValueType.tensorType
local function dtype_of(vt) local tt = tensor_type(vt); return tt and (one(tt, 1) or 0) end
local function dims_of(vt)
  local tt, out = tensor_type(vt), {}
  for _, d in ipairs(all(tt, 3)) do
    local dd = decode(d)
    if dd[1] then out[#out + 1] = one(decode(one(dd, 1)), 1) or 0 else out[#out + 1] = "?" end
  end
  return out
end
local function attr(op, key) return lookup(op, 5, key) end
local function arg(op, key)
  local a = lookup(op, 2, key)
  local out = {}
  for _, b in ipairs(all(a or {}, 1)) do
    local bd = decode(b)
    if bd[1] then out[#out + 1] = { name = one(bd, 1) } else out[#out + 1] = { value = decode(one(bd, 2)) } end
  end
  return out
end
local function output_names(op)
  local t = {}
  for _, nv in ipairs(all(op, 3)) do t[#t + 1] = one(decode(nv), 1) end
  return t
end

local DT = { BOOL = 1, STRING = 2, FLOAT16 = 10, FLOAT32 = 11, INT8 = 21, INT32 = 23, INT64 = 24, INT4 = 25,
             UINT64 = 34 }

local function parse_ok(text)
  local bytes, err = miltext.parse(text)
  assert(bytes, err)
  return bytes
end

local function assert_error(text, pattern)
  local bytes, err = miltext.parse(text)
  assert.is_nil(bytes)
  assert.is_string(err)
  assert.truthy(err:match("^line %d+, column %d+: "), "error without a place: " .. err)
  assert.is_nil(err:find("\n"), "error spans lines: " .. err)
  if pattern then assert.truthy(err:find(pattern), "error '" .. err .. "' does not match '" .. pattern .. "'") end
  local s, serr = miltext.summary(text)
  assert.is_nil(s)
  assert.are.equal(err, serr)
  return err
end

---------------------------------------------------------------- MIL texts
local ADD = [[
program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-component-MIL", "1.2.3"}, {"coremlc-version", "4.5.6"}})]
{
    func main<ios16>(tensor<fp16, [1, 10]> x, tensor<fp16, [1, 10]> y) {
            tensor<fp16, [1, 10]> var_3 = mul(x = x, y = y)[name = tensor<string, []>("op_3_cast_fp16")];
        } -> (var_3);
}
]]

local IOS18 = [[
program(1.3)
[buildInfo = dict<string, string>({{"coremlc-version", "3505.4.1"}})]
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 8]> x, state<tensor<fp16, [1, 4, 1, 8]>> kv) {
        string pad_type = const()[name = string("pad_type"), val = string("valid")];
        int32 groups = const()[name = string("groups"), val = int32(1)];
        fp16 half = const()[name = string("half"), val = fp16(0.5)];
        bool flag = const()[name = string("flag"), val = bool(true)];
        uint64 big = const()[name = string("big"), val = uint64(64)];
        tensor<int32, [2]> strides = const()[name = string("strides"), val = tensor<int32, [2]>([1, -1])];
        tensor<fp32, [3]> f = const()[name = string("f"), val = tensor<fp32, [3]>([1.5, -2.5e-1, 0x1.8p+1])];
        tensor<int4, [3]> q = const()[name = string("q"), val = tensor<int4, [3]>([-8, 7, 1])];
        tensor<fp16, [4, 4, 1, 1]> W = const()[name = string("W"), val = tensor<fp16, [4, 4, 1, 1]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64(2176)))];
        tensor<fp16, [1, 4, 1, 8]> y = conv(groups = groups, pad_type = pad_type, strides = strides, weight = W, x = x)[name = string("conv")];
        (tensor<fp16, [1, 2, 1, 8]> a, tensor<fp16, [1, 2, 1, 8]> b) = split(x = y, num_splits = int32(2), axis = int32(1))[name = string("split")];
        tensor<fp16, [1, 4, 1, 8]> c = concat(values = (a, b), axis = int32(1), interleave = bool(false))[name = string("cat")];
        write_state(data = c, input = kv)[name = string("ws")];
    } -> (c, a);
}
]]

local COND = [[
program(1.0)
{
    func main<ios17>(tensor<bool, []> p, tensor<fp32, [2]> x) {
        tensor<fp32, [2]> r = cond(pred = p)[name = tensor<string, []>("c")] {
            tensor<fp32, [2]> t = relu(x = x)[name = tensor<string, []>("t")];
        } -> (t) {
            tensor<fp32, [2]> e = sigmoid(x = x)[name = tensor<string, []>("e")];
            tensor<fp32, [2]> e2 = sigmoid(x = e)[name = tensor<string, []>("e2")];
        } -> (e2);
        (tensor<int32, [1]> n, tensor<fp32, [2]> acc) = while_loop(loop_vars = (p, r))[name = tensor<string, []>("w")] (tensor<int32, [1]> i, tensor<fp32, [2]> a) {
            tensor<bool, [1]> k = less(x = i, y = tensor<int32, [1]>([3]))[name = tensor<string, []>("k")];
        } -> (k) (tensor<int32, [1]> i2, tensor<fp32, [2]> a2) {
            tensor<int32, [1]> i3 = add(x = i2, y = tensor<int32, [1]>([1]))[name = tensor<string, []>("i3")];
        } -> (i3, a2);
    } -> (r, acc);
}
]]

local SYMBOLIC = [[
program(1.0)
{
    func main<ios17>(tensor<fp32, [?, 3]> x, tensor<int32, [1, is0]> ids) [FlexibleShapeInformation = tuple<tuple<string, dict<string, tensor<int32, [?]>>>>((("DefaultShapes", {{"x", [1, 3]}})))] {
        tensor<fp32, [?, 3]> z = relu(x = x)[name = tensor<string, []>("z")];
    } -> (z);
    func second<ios26>(tensor<fp32, [2]> x) {
        tensor<fp32, [2]> z = relu(x = x)[name = string("z")];
    } -> (z);
    func custom<weird7>(tensor<fp32, [2]> x) {
    } -> (x);
}
]]

---------------------------------------------------------------- tests
describe("miltext", function()
  it("reads the add_model shape: two fp16 inputs, one mul, ios16 -> CoreML6", function()
    local s = assert(miltext.summary(ADD))
    assert.are.equal(1, s.version)
    assert.are.equal(1, #s.functions)
    local f = s.functions[1]
    assert.are.equal("main", f.name)
    assert.are.equal("CoreML6", f.opset)
    assert.are.same({ "mul" }, f.ops)
    assert.are.equal(1, f.op_count)
    assert.are.same({ "var_3" }, f.outputs)
    assert.are.equal(2, #f.inputs)
    assert.are.same({ name = "x", kind = "tensor", dtype = "fp16", rank = 2, shape = { 1, 10 } }, f.inputs[1])
    assert.are.equal("y", f.inputs[2].name)
    assert.are.same({ ["coremlc-component-MIL"] = "1.2.3", ["coremlc-version"] = "4.5.6" }, s.build_info)
  end)

  it("serializes the add_model as a MILSpec Program a plain protobuf decoder reads", function()
    local bytes = parse_ok(ADD)
    local prog = decode(bytes)
    assert.are.equal(1, one(prog, 1)) -- version
    local fns = functions(bytes)
    assert.are.equal(1, #fns)
    assert.are.equal("main", fns[1].key)
    local fn = fns[1].value
    assert.are.equal("CoreML6", one(fn, 2))
    assert.are.equal("CoreML6", decode(one(fn, 3))[1][1]) -- block_specializations key
    local inputs = all(fn, 1)
    assert.are.equal(2, #inputs)
    local x = decode(inputs[1])
    assert.are.equal("x", one(x, 1))
    assert.are.equal(DT.FLOAT16, dtype_of(sub(x, 2)))
    assert.are.same({ 1, 10 }, dims_of(sub(x, 2)))
    local blk = body(fn)
    assert.are.same({ "var_3" }, all(blk, 2))
    assert.are.same({ "mul" }, op_types(blk))
    local mul = ops(blk)[1]
    assert.are.same({ { name = "x" } }, arg(mul, "x"))
    assert.are.same({ { name = "y" } }, arg(mul, "y"))
    assert.are.same({ "var_3" }, output_names(mul))
    local name = attr(mul, "name")
    assert.are.equal("op_3_cast_fp16", value_string(name))
    assert.are.equal(DT.STRING, dtype_of(sub(name, 2)))
    -- buildInfo: Program.attributes["buildInfo"], a dictionary immediate of string -> string
    local bi = lookup(prog, 4, "buildInfo")
    local dict = sub(sub(bi, 3), 4)
    local pairs_ = all(dict, 1)
    assert.are.equal(2, #pairs_)
    local kv = decode(pairs_[2])
    assert.are.equal("coremlc-version", value_string(sub(kv, 1)))
    assert.are.equal("4.5.6", value_string(sub(kv, 2)))
  end)

  it("reads ios18 text: bare scalar literals, BLOBFILE consts, a multi-output op, an op without outputs", function()
    local s = assert(miltext.summary(IOS18))
    local f = s.functions[1]
    assert.are.equal("CoreML8", f.opset)
    assert.are.same({ "const", "const", "const", "const", "const", "const", "const", "const", "const", "conv", "split",
                      "concat", "write_state" }, f.ops)
    assert.are.same({ "c", "a" }, f.outputs)
    assert.are.same({ name = "kv", kind = "state", dtype = "fp16", rank = 4, shape = { 1, 4, 1, 8 } }, f.inputs[2])

    local blk = body(functions(parse_ok(IOS18))[1].value)
    local o = ops(blk)
    -- string / int32 / fp16 / bool / uint64 scalars use the TensorValue field coremltools picks
    assert.are.equal("valid", value_string(attr(o[1], "val")))
    assert.are.same({ 1 }, packed_varints(one(sub(tensor_value(attr(o[2], "val")), 2), 1)))
    assert.are.equal(DT.INT32, dtype_of(sub(attr(o[2], "val"), 2)))
    assert.are.equal("\0\56", one(sub(tensor_value(attr(o[3], "val")), 7), 1)) -- fp16 0.5 = 0x3800, bytes
    assert.are.same({ 1 }, packed_varints(one(sub(tensor_value(attr(o[4], "val")), 3), 1)))
    assert.are.equal(DT.UINT64, dtype_of(sub(attr(o[5], "val"), 2)))
    assert.are.same({ 64 }, packed_varints(one(sub(tensor_value(attr(o[5], "val")), 5), 1)))
    assert.are.same({ 1, -1 }, packed_varints(one(sub(tensor_value(attr(o[6], "val")), 2), 1)))
    local floats = one(sub(tensor_value(attr(o[7], "val")), 1), 1)
    local f1, f2, f3 = string.unpack("<fff", floats)
    assert.are.same({ 1.5, -0.25, 3.0 }, { f1, f2, f3 })
    assert.are.equal("\x78\x01", one(sub(tensor_value(attr(o[8], "val")), 7), 1)) -- int4 packed LSB first
    -- BLOBFILE -> Value.blobFileValue {fileName, offset} with the tensor type
    local w = attr(o[9], "val")
    local blob = sub(w, 5)
    assert.are.equal("@model_path/weights/weight.bin", one(blob, 1))
    assert.are.equal(2176, one(blob, 2))
    assert.are.equal(DT.FLOAT16, dtype_of(sub(w, 2)))
    assert.are.same({ 4, 4, 1, 1 }, dims_of(sub(w, 2)))
    assert.is_nil(sub(w, 3))
    -- conv binds names; split has two outputs and literal arguments; concat binds a list of names
    assert.are.same({ { name = "W" } }, arg(o[10], "weight"))
    assert.are.same({ "a", "b" }, output_names(o[11]))
    local ns = arg(o[11], "num_splits")
    assert.are.equal(1, #ns)
    assert.are.same({ 2 }, packed_varints(one(sub(tensor_value(ns[1].value), 2), 1)))
    assert.are.same({ { name = "a" }, { name = "b" } }, arg(o[12], "values"))
    assert.are.same({}, output_names(o[13]))
    assert.are.equal("ws", value_string(attr(o[13], "name")))
  end)

  it("gives cond and while_loop their nested blocks", function()
    local s = assert(miltext.summary(COND))
    local f = s.functions[1]
    assert.are.equal("CoreML7", f.opset)
    assert.are.same({ "cond", "while_loop" }, f.ops)
    assert.are.equal(2, f.op_count)
    assert.are.equal(7, f.op_count_all)
    local o = ops(body(functions(parse_ok(COND))[1].value))
    local blocks = all(o[1], 4)
    assert.are.equal(2, #blocks)
    local thenb, elseb = decode(blocks[1]), decode(blocks[2])
    assert.are.same({ "t" }, all(thenb, 2))
    assert.are.same({ "relu" }, op_types(thenb))
    assert.are.same({ "e2" }, all(elseb, 2))
    assert.are.same({ "sigmoid", "sigmoid" }, op_types(elseb))
    assert.are.equal("c", value_string(attr(o[1], "name")))
    local wl = all(o[2], 4)
    assert.are.equal(2, #wl)
    local condb, bodyb = decode(wl[1]), decode(wl[2])
    assert.are.equal(2, #all(condb, 1)) -- block inputs
    assert.are.equal("i", one(decode(all(condb, 1)[1]), 1))
    assert.are.same({ "i3", "a2" }, all(bodyb, 2))
    assert.are.same({ { name = "p" }, { name = "r" } }, arg(o[2], "loop_vars"))
  end)

  it("accepts symbolic dims, function attributes and maps opset tags", function()
    local s = assert(miltext.summary(SYMBOLIC))
    assert.are.equal(3, #s.functions)
    local f = s.functions[1]
    assert.are.same({ "?", 3 }, f.inputs[1].shape)
    assert.are.same({ 1, "?" }, f.inputs[2].shape)
    assert.are.equal("int32", f.inputs[2].dtype)
    assert.are.equal("CoreML9", s.functions[2].opset)
    assert.are.equal("weird7", s.functions[3].opset)
    assert.are.equal(0, s.functions[3].op_count)
    local fn = functions(parse_ok(SYMBOLIC))[1].value
    local x = decode(all(fn, 1)[1])
    local d1 = decode(all(tensor_type(sub(x, 2)), 3)[1])
    assert.is_nil(d1[1])   -- not constant
    assert.truthy(d1[2])   -- unknown
    local fsi = lookup(fn, 4, "FlexibleShapeInformation")
    assert.truthy(fsi)
    assert.truthy(sub(sub(fsi, 3), 2)) -- a tuple immediate
  end)

  it("packs and unpacks to the same bytes (protobuf-c round trip), and parse agrees with summary", function()
    for _, text in ipairs({ ADD, IOS18, COND, SYMBOLIC }) do
      assert.is_true(miltext.check(text))
      local s = miltext.summary(text)
      local fns = functions(parse_ok(text))
      assert.are.equal(#s.functions, #fns)
      for i, e in ipairs(fns) do
        assert.are.equal(s.functions[i].name, e.key)
        assert.are.equal(s.functions[i].opset, one(e.value, 2))
        assert.are.same(s.functions[i].ops, op_types(body(e.value)))
      end
    end
  end)

  it("is liberal about spacing, comments, a byte order mark and missing buildInfo", function()
    local text = "\239\187\191program(1.3) { // compiled\n func main<ios18>(tensor<fp32,[1,2]> x){ /* c */" ..
                 "tensor<fp32,[1,2]> y=relu(x=x);}->(y);}"
    local s = assert(miltext.summary(text))
    assert.are.same({ "relu" }, s.functions[1].ops)
    assert.is_nil(s.build_info)
  end)

  it("reports truncated text at every cut point, never crashing", function()
    local last = ADD:find("}%s*$") -- the closing brace of the program
    for n = 0, last - 1 do
      assert_error(ADD:sub(1, n))
    end
    assert_error(IOS18:sub(1, 900))
    local err = assert_error(ADD:sub(1, #ADD - 3), "expected '}' to close the program, found end of text")
    assert.truthy(err:match("^line 6, column 22: "))
  end)

  it("reports unbalanced braces", function()
    assert_error(ADD .. "}", "^line 8, column 1: expected end of text")
    local err = assert_error(ADD:gsub("} %-> %(var_3%);", "-> (var_3);"), "expected")
    assert.truthy(err:match("^line 6, "))
    assert_error("program(1.0) { func main<ios16>() { } -> (); ", "end of text")
  end)

  it("reports a bad dtype with its place", function()
    assert_error(ADD:gsub("fp16, %[1, 10%]> y", "fp17, [1, 10]> y"), "^line 4, column %d+: unknown dtype 'fp17'")
    assert_error("program(1.0) { func main<ios16>(tensor<[1]> x) { } -> (); }", "expected a dtype")
    assert_error("program(1.0) { func main<ios16>(blob x) { } -> (); }", "expected a type")
  end)

  it("reports bad literals", function()
    local function const(v) return "program(1.0) { func main<ios16>() { tensor<fp32, [2]> c = const()[val = " .. v .. "]; } -> (c); }" end
    assert_error(const("tensor<fp32, [2]>([1.0])"), "has 1 value but its type holds 2")
    assert_error(const("tensor<int8, [1]>([300])"), "out of range for int8")
    assert_error(const("tensor<int32, [1]>([1.5])"), "expected an integer")
    assert_error(const("tensor<fp32, [1]>([1.0.0])"), "malformed number")
    assert_error(const('string("a\\0b")'), "NUL")
    assert_error(const('string("abc)]; } -> (c); }'), "unterminated string")
    assert_error(const('tensor<fp16, [2]>(BLOBFILE(path = string("w.bin")))'), "BLOBFILE needs an offset")
    assert_error(const("x"), "expected a literal value")
  end)

  it("reports garbage bytes instead of crashing", function()
    assert_error("\0\255\254garbage", "^line 1, column 1: unexpected byte 0x00")
    assert_error("program(1.0) { func main<ios16>() { \x80 } }", "unexpected byte 0x80")
    local seed = 12345
    local function rnd()
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed
    end
    for _ = 1, 200 do
      local t = {}
      for i = 1, rnd() % 300 do t[i] = string.char(rnd() % 256) end
      assert_error(table.concat(t))
      -- and the valid texts with a few bytes overwritten: either parse or fail with a place
      local text = IOS18
      for _ = 1, 3 do
        local at = rnd() % #text + 1
        text = text:sub(1, at - 1) .. string.char(rnd() % 256) .. text:sub(at + 1)
      end
      local bytes, err = miltext.parse(text)
      assert.truthy(bytes or err:match("^line %d+, column %d+: "))
    end
  end)

  it("refuses nesting deeper than 64 levels with a clear error", function()
    local n = 100
    local t = { "program(1.0) { func main<ios16>(tensor<bool, []> p) {\n" }
    for i = 1, n do t[#t + 1] = ("tensor<fp32, [1]> r%d = cond(pred = p) {\n"):format(i) end
    t[#t + 1] = "tensor<fp32, [1]> z = relu(x = p);\n"
    for _ = 1, n do t[#t + 1] = "} -> (z);\n" end
    t[#t + 1] = "} -> (); }\n"
    assert_error(table.concat(t), "nesting deeper than 64 levels")
    assert_error("program(1.0) { func main<ios16>(" .. ("state<"):rep(100) .. "fp32" .. (">"):rep(100) .. " x) { } -> (); }",
                 "nesting deeper than 64 levels")
    assert_error("program(1.0) { func main<ios16>() { tensor<fp32, [1]> c = const()[val = tensor<fp32, [1]>(" ..
                 ("["):rep(200) .. "1" .. ("]"):rep(200) .. ")]; } -> (c); }", "nesting deeper than 64 levels")
    -- 20 levels are fine
    local ok = { "program(1.0) { func main<ios16>(tensor<bool, []> p) {\n" }
    for i = 1, 20 do ok[#ok + 1] = ("tensor<fp32, [1]> r%d = cond(pred = p) {\n"):format(i) end
    ok[#ok + 1] = "tensor<fp32, [1]> z = relu(x = p);\n"
    for _ = 1, 20 do ok[#ok + 1] = "} -> (z);\n" end
    ok[#ok + 1] = "} -> (); }\n"
    local s = assert(miltext.summary(table.concat(ok)))
    assert.are.equal(21, s.functions[1].op_count_all)
  end)

  it("reports an empty text and a duplicate function", function()
    assert_error("", "^line 1, column 1: expected 'program'")
    assert_error("program(1.0) { func main<ios16>() { } -> (); func main<ios17>() { } -> (); }", "defined twice")
  end)
end)
