-- The one dtype table: the C core's facts (core/dtype.c) as Lua sees them, and the Lua modules
-- reading that table rather than their own copies.
local core = require "mlsh.core"
local types = require "mlsh.types"

describe("core.dtype", function()
  it("gives the bit widths and float kinds of Core ML's element types", function()
    local want = { fp16 = 16, fp32 = 32, bf16 = 16, int4 = 4, int8 = 8, uint1 = 1, uint2 = 2, uint3 = 3, uint6 = 6,
                   uint8 = 8, int32 = 32, bool = 8 }
    for name, bits in pairs(want) do assert.equal(bits, core.dtype.bits[name], name) end
    assert.is_true(core.dtype.float.fp16 and core.dtype.float.bf16)
    assert.is_nil(core.dtype.float.int8)
    assert.is_nil(core.dtype.bits.int5)
    assert.equal("bool", core.dtype.names[1])
  end)
  it("packs sub-byte sizes up to whole bytes and refuses unknown names", function()
    assert.equal(3, core.dtype.nbytes("uint3", 7))   -- 21 bits
    assert.equal(2, core.dtype.nbytes("int4", 3))    -- 12 bits
    assert.equal(20, core.dtype.nbytes("fp16", 10))
    assert.is_nil(core.dtype.nbytes("int5", 10))
  end)
  it("is the table the Lua layer reads", function()
    assert.equal(core.dtype.bits, types.BITS)
    assert.equal(types.BITS, require("mlsh.model.constexpr").BITS)
    assert.equal(6, require("mlsh.model.weights").nbytes("uint6", 8))
    assert.equal(0.5, require("mlsh.placement.work").DTYPE_BYTES.int4)
  end)
end)
