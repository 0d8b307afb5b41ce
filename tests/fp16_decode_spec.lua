-- fp16 -> float32 decoding (core/dtype.c: F16C 8 at a time when the CPU has it, scalar for the
-- tail and for groups holding inf/NaN) must be exact for every one of the 65,536 codes, NaN
-- payload bits included. The expected bits come from the IEEE 754 formula written out here.
local core = require "mlsh.core"

local function f32_bits(h)
  local sign, exp, man = (h >> 15) << 31, (h >> 10) & 0x1f, h & 0x3ff
  if exp == 0 then
    if man == 0 then return sign end
    local e = 0
    while man & 0x400 == 0 do
      man = man << 1
      e = e + 1
    end
    return sign | ((127 - 15 - e + 1) << 23) | ((man & 0x3ff) << 13)
  elseif exp == 31 then
    return sign | 0x7f800000 | (man << 13)
  end
  return sign | ((exp + 112) << 23) | (man << 13)
end

-- The first code whose float32 differs (nil when all match): a readable failure, not a byte dump.
local function first_diff(got, want)
  for i = 1, #want, 4 do
    if got:sub(i, i + 3) ~= want:sub(i, i + 3) then
      return string.format("code %d: got 0x%08x, want 0x%08x", (i - 1) // 4, string.unpack("<I4", got, i), string.unpack("<I4", want, i))
    end
  end
  return #got ~= #want and "length differs" or nil
end

describe("fp16 decoding", function()
  it("gives the exact float32 of all 65,536 codes, in groups of 8 and in the tail", function()
    local halves, want = {}, {}
    for h = 0, 0xffff do
      halves[#halves + 1] = string.pack("<I2", h)
      want[#want + 1] = string.pack("<I4", f32_bits(h))
    end
    local src, expect = table.concat(halves), table.concat(want)
    assert.is_nil(first_diff(core.array.decode(src, "fp16", 65536):encode("fp32"), expect))
    -- an odd start and length: groups straddle the NaN codes, and a 5-element tail
    local off, n = 3, 65525
    local got = core.array.decode(src:sub(2 * off + 1, 2 * (off + n)), "fp16", n):encode("fp32")
    assert.is_nil(first_diff(got, expect:sub(4 * off + 1, 4 * (off + n))))
    -- from 1M elements the decode runs on several threads, each on its own range: all codes 17
    -- times over, then an odd length, so the ranges end in a partial group and a tail
    local big, bigwant = src:rep(17), expect:rep(17)
    assert.is_nil(first_diff(core.array.decode(big, "fp16", 17 * 65536):encode("fp32"), bigwant))
    n = 17 * 65536 - 11
    got = core.array.decode(big:sub(2 * off + 1, 2 * (off + n)), "fp16", n):encode("fp32")
    assert.is_nil(first_diff(got, bigwant:sub(4 * off + 1, 4 * (off + n))))
  end)
end)
