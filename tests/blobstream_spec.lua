-- core.blobfile.stream: the weight file written blob by blob to a path must be the same bytes
-- the in-memory writer builds (checked here against a hand-laid-out file, not the writer alone).
local core = require "mlsh.core"
local B, A = core.blobfile, core.array

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(core.fs.mkdir_p(d))
  return d
end

local function slurp(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The expected file, laid out by hand from the format (blobfile.h): header, then per blob a
-- 64-byte-aligned record {sentinel, code, size, data offset, padding bits} and its data.
local function by_hand(blobs)
  local parts, len = { string.pack("<I4I4", #blobs, 2) .. ("\0"):rep(56) }, 64
  local offs = {}
  for i, b in ipairs(blobs) do
    local meta = (len + 63) // 64 * 64
    parts[#parts + 1] = ("\0"):rep(meta - len)
    parts[#parts + 1] = string.pack("<I4I4I8I8I8", 0xDEADBEEF, b.code, #b.bytes, meta + 64, b.pad) .. ("\0"):rep(32)
    parts[#parts + 1] = b.bytes
    offs[i] = meta
    len = meta + 64 + #b.bytes
  end
  return table.concat(parts), offs
end

describe("core.blobfile.stream", function()
  it("writes the bytes a hand layout gives, and the in-memory writer too", function()
    local dir = tmpdir()
    local path = dir .. "/weight.bin"
    local blobs = {
      { dtype = "fp16", code = 1, bytes = A.new({ 1, 2, 3 }):encode("fp16"), n = 3, pad = 0 },
      { dtype = "uint3", code = 12, bytes = A.new({ 1, 2, 3 }):encode("uint3"), n = 3, pad = 7 },
      { dtype = "fp32", code = 2, bytes = A.new(500):encode("fp32"), n = 500, pad = 0 },
      { dtype = "int4", code = 8, bytes = A.new({ -1, 2, 3 }):encode("int4"), n = 3, pad = 4 },
    }
    local s, w = B.stream(path), B.writer()
    local want, offs = by_hand(blobs)
    for i, b in ipairs(blobs) do
      assert.equal(offs[i], s:add(b.dtype, b.bytes, b.n))
      assert.equal(offs[i], w:add(b.dtype, b.bytes, b.n))
    end
    assert.equal(4, s:count())
    assert.is_true(s:close())
    assert.equal(want, slurp(path))
    assert.equal(want, w:bytes())
    assert.has_error(function() s:add("fp16", "abcd", 2) end, "blob writer: add() after close()")
    assert.has_error(function() s:bytes() end, "blob writer: bytes() of a stream")
    core.fs.remove_tree(dir)
  end)

  it("writes a header alone for no blobs and names the file it cannot create", function()
    local dir = tmpdir()
    local s = B.stream(dir .. "/empty.bin")
    s:close()
    assert.equal(string.pack("<I4I4", 0, 2) .. ("\0"):rep(56), slurp(dir .. "/empty.bin"))
    local ok, err = pcall(B.stream, dir .. "/no/such/dir/weight.bin")
    assert.is_false(ok)
    assert.truthy(tostring(err):find(dir .. "/no/such/dir/weight.bin: cannot create", 1, true), err)
    local s2 = B.stream(dir .. "/bad.bin")
    assert.has_error(function() s2:add("fp16", "abc", 2) end, dir .. "/bad.bin: 2 fp16 elements take 4 bytes, got 3")
    s2:close()
    core.fs.remove_tree(dir)
  end)
end)
