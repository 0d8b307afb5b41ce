-- m:_blob_drop (core/container.c mlsh_container_drop_pages): after a weight is decoded, the pages
-- of its blob in the mapped weight file stop counting in the process's resident set, the bytes read
-- back the same, and models held in memory (a zip) are left alone.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local F = require "fixtures"

-- Resident file-backed memory of this process, KiB (/proc/self/status RssFile).
local function rss_file()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("RssFile:%s*(%d+)"))
end

local function blob_weight(m)
  for _, w in ipairs(m:weights()) do
    if w.storage == "blob" and w.count >= 1 << 20 then return w end
  end
end

describe("m:_blob_drop", function()
  local dir = F.tmpdir()
  local path = dir .. "/big.mlpackage"
  setup(function()
    local B = mlsh.builder
    local p = B.program { opset = "iOS18", precision = "fp16" }
    local f = p:func("main")
    local y = f:input("x", "fp32", { 1, 1024 })
    y = B.layers.linear(f, y, { name = "fc", out = 1024, bias = false,
      weight = core.compress.randn({ 1024, 1024 }, { seed = 7, std = 0.02, weight_dtype = "fp16" }) })
    f:output("y", y)
    p:save(path)
  end)

  it("drops the blob's resident pages of a mapped weight file; the values read back the same", function()
    local m <close> = mlsh.load(path)
    local w = assert(blob_weight(m))
    local v1 = w:values():encode("fp16")
    local before = rss_file()
    assert.is_true(m:_blob_drop(w.file, w.offset))
    local after = rss_file()
    if before and after then
      -- 1M fp16 weights are 2 MiB of the file: at least 1.5 MiB of it leaves the resident set
      assert.is_true(before - after >= 1536, string.format("RssFile %d -> %d KiB", before, after))
    end
    assert.equal(v1, w:values():encode("fp16"))
    assert.is_true(m:_blob_drop(w.file, w.offset)) -- dropping again is harmless
  end)

  it("leaves a model read into memory alone and reports bad offsets", function()
    local zip = dir .. "/big.mlpackage.zip"
    assert(core.fs.zip_dir(path, "big.mlpackage", zip))
    local m <close> = mlsh.load(zip)
    local w = assert(blob_weight(m))
    local v1 = w:values():encode("fp16")
    assert.is_false(m:_blob_drop(w.file, w.offset))
    assert.equal(v1, w:values():encode("fp16"))
    local ok, err = m:_blob_drop(w.file, w.offset + 1)
    assert.is_nil(ok)
    assert.is_string(err)
  end)
end)
