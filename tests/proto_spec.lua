-- The generic protobuf Message binding: read, write, oneofs, maps, unknown fields, errors.
local core = require "mlsh.core"
local P = core.proto

describe("core.proto", function()
  it("builds, encodes and decodes a message", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 7
    m.isUpdatable = true
    local fd = m:mutable("description"):add("input")
    fd.name = "x"
    local arr = fd:mutable("type"):mutable("multiArrayType")
    arr.shape, arr.dataType = { 1, 3 }, "FLOAT16"
    local back = assert(P.decode("CoreML.Specification.Model", m:encode()))
    assert.equal(7, back.specificationVersion)
    assert.is_true(back.isUpdatable)
    local a = back.description.input[1].type.multiArrayType
    assert.same({ 1, 3 }, a.shape)
    assert.equal("FLOAT16", a.dataType)
    assert.equal(1, back.description:count("input"))
  end)

  it("tracks oneof members and clears the old one", function()
    local m = P.new("CoreML.Specification.Model")
    assert.is_nil(m:which("neuralNetwork"))
    m:mutable("neuralNetwork")
    assert.equal("neuralNetwork", m:which("mlProgram"))
    m:mutable("mlProgram").version = 1
    assert.equal("mlProgram", m:which("neuralNetwork"))
    assert.is_nil(m.neuralNetwork)
    assert.same({ "mlProgram" }, m:present())
  end)

  it("reads maps in file order and by key", function()
    local p = P.new("CoreML.Specification.MILSpec.Program")
    for _, k in ipairs({ "b", "a" }) do
      local e = p:add("functions")
      e.key = k
      e:mutable("value").opset = "CoreML" .. k
    end
    local map, keys = p:map("functions")
    assert.same({ "b", "a" }, keys)
    assert.equal("CoreMLa", map.a.opset)
    assert.equal("CoreMLb", p:get("functions", "b").opset)
    assert.is_nil(p:get("functions", "c"))
  end)

  it("keeps fields it does not know through decode and encode", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 5
    local extra = "\x78\x2a" .. "\x82\x01\x03abc" -- field 15 varint 42, field 16 bytes "abc"
    local back = assert(P.decode("CoreML.Specification.Model", m:encode() .. extra))
    local u = back:unknown()
    assert.equal(2, #u)
    assert.equal(15, u[1].number)
    assert.equal(16, u[2].number)
    local again = back:encode()
    assert.truthy(again:find(extra, 1, true))
    back.specificationVersion = 6
    assert.truthy(back:encode():find(extra, 1, true), "still there after an edit")
  end)

  it("copies sub-messages on assignment and keeps children valid", function()
    local a = P.new("CoreML.Specification.Metadata")
    a.author = "me"
    local m = P.new("CoreML.Specification.ModelDescription")
    m.metadata = a
    a.author = "changed"
    assert.equal("me", m.metadata.author)
    local child = m.metadata
    m.metadata = nil
    assert.equal("me", child.author, "a replaced sub-message lives until its root dies")
  end)

  it("exposes repeated numbers as arrays and bytes as strings", function()
    local wp = P.new("CoreML.Specification.WeightParams")
    wp.floatValue = { 1.5, -2, 3 }
    wp.float16Value = "\0\60"
    local a = wp:array("floatValue")
    assert.equal(3, #a)
    assert.equal(-2, a[2])
    assert.equal("\0\60", wp:bytes("float16Value"))
    wp:add("floatValue", 4)
    assert.equal(4, wp:count("floatValue"))
    wp:clear("floatValue")
    assert.equal(0, wp:count("floatValue"))
  end)

  it("keeps proto2 optional bytes set from Lua (presence flag)", function()
    local t = P.new("onnx.TensorProto")
    assert.is_false(t:has("raw_data"))
    t.raw_data = "\1\2\3"
    assert.is_true(t:has("raw_data"))
    local back = assert(P.decode("onnx.TensorProto", t:encode()))
    assert.equal("\1\2\3", back:bytes("raw_data"))
    back.raw_data = nil
    assert.is_false(back:has("raw_data"))
    assert.equal("", assert(P.decode("onnx.TensorProto", back:encode())):bytes("raw_data"))
  end)

  it("raises clear errors on misuse", function()
    local m = P.new("CoreML.Specification.Model")
    assert.has_error(function() m.nosuch = 1 end, "CoreML.Specification.Model has no field 'nosuch'")
    assert.has_error(function() return m:count("specificationVersion") end, "field 'specificationVersion' is not repeated")
    assert.has_error(function() P.new("No.Such.Type") end, "unknown message type 'No.Such.Type'")
    local arr = P.new("CoreML.Specification.ArrayFeatureType")
    assert.has_error(function() arr.dataType = "FLOAT99" end)
    assert.has_error(function() m.description = P.new("CoreML.Specification.Metadata") end)
    local nilv, err = P.decode("CoreML.Specification.Model", "\255\255\255\255")
    assert.is_nil(nilv)
    assert.truthy(err:find("corrupt protobuf", 1, true))
  end)
end)
