-- mlsh.Array and the dtype conversions under it.
local core = require "mlsh.core"
local A = core.array

describe("core.array", function()
  it("holds float32 values with a shape", function()
    local a = A.new({ 1, 2, 3, 4, 5, 6 }, { 2, 3 })
    assert.equal(6, #a)
    assert.same({ 2, 3 }, a:shape())
    assert.equal(3, a[3])
    a[3] = 9
    assert.equal(9, a[3])
    assert.is_nil(a[7])
    assert.same({ 1, 2 }, a:totable(2))
    assert.same({ 2, 9 }, a:slice(2, 3):totable())
  end)

  it("computes statistics", function()
    local s = A.new({ 0, 0, 2, 4 }):stats()
    assert.equal(4, s.count)
    assert.equal(0, s.min)
    assert.equal(4, s.max)
    assert.equal(1.5, s.mean)
    assert.equal(0.5, s.sparsity)
    assert.is_true(math.abs(s.std - math.sqrt(2.75)) < 1e-9)
  end)

  it("round-trips every dtype through encode and decode", function()
    local vals = { 0, 1, 2, 3 }
    for _, dt in ipairs({ "fp16", "fp32", "fp64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                          "uint2", "uint3", "uint4", "uint6", "int4" }) do
      local a = A.decode(A.new(vals):encode(dt), dt, 4)
      assert.same(vals, a:totable(), dt)
    end
    local ones = A.decode(A.new({ 1, 0, 1, 1, 0, 0, 0, 1, 1 }):encode("uint1"), "uint1", 9)
    assert.same({ 1, 0, 1, 1, 0, 0, 0, 1, 1 }, ones:totable())
  end)

  it("packs sub-byte values LSB first", function()
    assert.equal("\x21\x43", A.new({ 1, 2, 3, 4 }):encode("uint4"))
    assert.equal(string.char(0xF8 | 0x01), A.new({ 1, 7 }):encode("uint3") .. "" == string.char(0x39) and string.char(0xF9) or string.char(0xF9))
    assert.equal(string.char(0x39), A.new({ 1, 7 }):encode("uint3"))
    assert.equal(-8, A.decode("\x08", "int4", 1)[1])
    assert.equal(7, A.decode("\x07", "int4", 1)[1])
  end)

  it("converts fp16 exactly, with rounding to nearest even", function()
    assert.equal("\x00\x3c", A.new({ 1 }):encode("fp16"))
    assert.equal("\x00\xc0", A.new({ -2 }):encode("fp16"))
    assert.equal(65504, A.decode("\xff\x7b", "fp16", 1)[1])
    assert.equal(2 ^ -24, A.decode("\x01\x00", "fp16", 1)[1])
    assert.equal("\x00\x3c", A.new({ 1 + 2 ^ -11 }):encode("fp16"), "tie rounds to even")
    assert.equal("\x01\x3c", A.new({ 1 + 3 * 2 ^ -12 }):encode("fp16"))
    assert.equal(math.huge, A.decode(A.new({ 1e6 }):encode("fp16"), "fp16", 1)[1])
  end)

  it("refuses short buffers and bad arguments", function()
    assert.has_error(function() A.decode("\0\0\0", "fp32", 1) end, "3 bytes cannot hold 1 fp32 elements")
    assert.has_error(function() A.decode("", "fp99") end)
    assert.has_error(function() A.new({ 1, 2, 3 }, { 2, 2 }) end, "shape holds 4 elements, array has 3")
    assert.has_error(function() A.new({ 1, "x" }) end)
    assert.has_error(function() A.new(4)[0] = 1 end)
  end)
end)
