-- Loading every container kind, and every way a file can be bad.
local mlsh = require "mlsh"
local F = require "fixtures"

describe("mlsh.load", function()
  local fx
  setup(function() fx = F.shared() end)

  it("reads a .mlmodel neural network", function()
    local m = mlsh.load(fx.nn)
    assert.equal("mlmodel", m.format)
    assert.equal(4, m.spec_version)
    assert.equal("neuralNetwork", m.model_type)
    m:close()
  end)

  it("reads an .mlpackage folder through its Manifest.json", function()
    local m = mlsh.load(fx.pkg)
    assert.equal("mlpackage", m.format)
    assert.equal(7, m.spec_version)
    assert.equal("mlProgram", m.model_type)
  end)

  it("reads a zipped .mlpackage in place, weights included", function()
    local m = mlsh.load(fx.zip)
    assert.equal("mlpackage.zip", m.format)
    assert.equal("mlProgram", m.model_type)
    local w = m:weights()[1]
    assert.equal("blob", w.storage)
    local a = w:values()
    assert.equal(128, #a)
    local ref = mlsh.load(fx.pkg):weights()[1]:values()
    for i = 1, #a do assert.equal(ref[i], a[i]) end
  end)

  it("closes with to-be-closed variables", function()
    local keep
    do
      local m <close> = mlsh.load(fx.pkg)
      keep = m
      assert.equal(7, m.spec_version)
    end
    assert.has_error(function() return keep:_spec() end, "model is closed")
  end)

  local bad = {
    { "missing file", function() return fx.dir .. "/nope.mlmodel" end, "No such file or directory" },
    { "directory that is not a package", function() return fx.plain_dir end, "not a model package" },
    { "file that is not a model", function() return fx.not_model end, "not a Core ML model" },
    { "empty file", function() return fx.empty end, "empty file" },
    { "truncated protobuf", function() return fx.truncated end, "truncated or corrupt protobuf" },
    { "corrupt zip", function() return fx.corrupt_zip end, "corrupt zip" },
    { "Manifest.json without a root item", function() return fx.no_root end, "no rootModelIdentifier" },
    { "Manifest.json that is not JSON", function() return fx.bad_manifest end, "invalid JSON" },
  }
  for _, case in ipairs(bad) do
    it("refuses a " .. case[1] .. " with the file and the reason", function()
      local path = case[2]()
      local before = F.sha(path)
      local m, err = mlsh.try_load(path)
      assert.is_nil(m)
      assert.truthy(err:find(path, 1, true), err)
      assert.truthy(err:find(case[3], 1, true), err)
      assert.falsy(err:find("\n"), "one line")
      assert.has_error(function() mlsh.load(path) end, err)
      assert.equal(before, F.sha(path), "input untouched")
    end)
  end

  it("reports a blob offset past the end of weight.bin when the weight is read", function()
    local m = mlsh.load(fx.short_weights)
    local w = m:weights()[1]
    local ok, err = pcall(w.values, w)
    assert.is_false(ok)
    assert.truthy(err:find("weight.bin", 1, true))
    assert.truthy(err:find("past the end", 1, true))
  end)

  it("rejects a non-string path", function()
    local m, err = mlsh.try_load(42)
    assert.is_nil(m)
    assert.truthy(err:find("expected a path"))
  end)
end)

describe("hostile files", function()
  local fx
  setup(function() fx = F.shared() end)

  local function varint(n)
    local out = {}
    repeat
      local b = n & 0x7f
      n = n >> 7
      out[#out + 1] = string.char(n > 0 and (b | 0x80) or b)
    until n == 0
    return table.concat(out)
  end

  it("refuses pipelines nested deeper than the bound instead of overflowing the stack", function()
    -- Model{pipeline(202){models(1){pipeline{models{...}}}}} 5000 levels deep
    local inner = ""
    for _ = 1, 5000 do
      local model = "\xd2\x0c" .. varint(#inner) .. inner        -- field 202, wire 2: pipeline
      inner = "\x0a" .. varint(#model) .. model                  -- Pipeline.models (1)
    end
    local bytes = "\x08\x04\xd2\x0c" .. varint(#inner) .. inner
    local path = fx.dir .. "/deep.mlmodel"
    F.write(path, bytes)
    local m, err = mlsh.try_load(path)
    assert.is_nil(m)
    assert.truthy(err:find("nested more than 100 deep", 1, true), err)
  end)

  it("refuses a length that runs past its message", function()
    local path = fx.dir .. "/badlen.mlmodel"
    F.write(path, "\x08\x04\x12\x7f\x0a\x01x")
    local m, err = mlsh.try_load(path)
    assert.is_nil(m)
    assert.truthy(err:find("runs past its message", 1, true), err)
  end)

  it("survives every truncation of a real model", function()
    local bytes = F.read(fx.nn)
    local path = fx.dir .. "/cut.mlmodel"
    for cut = 1, #bytes - 1, 7 do
      F.write(path, bytes:sub(1, cut))
      local m, err = mlsh.try_load(path)
      if m then m:close() else assert.truthy(err:find(path, 1, true)) end
    end
  end)
end)

describe("hostile zips", function()
  local fx, fs
  setup(function()
    fx = F.shared()
    fs = require("mlsh.core").fs
  end)
  local function package_entries(prefix)
    local spec, wb = F.mlprogram()
    return {
      { name = prefix .. "Manifest.json", data = F.MANIFEST },
      { name = prefix .. "Data/com.apple.CoreML/model.mlmodel", data = spec:encode() },
      { name = prefix .. "Data/com.apple.CoreML/weights/weight.bin", data = wb },
    }
  end

  it("reads a package at the zip root too", function()
    local p = fx.dir .. "/root.zip"
    assert(fs.zip_write(p, package_entries("")))
    assert.equal("mlProgram", mlsh.load(p).model_type)
  end)

  it("refuses an entry that climbs out with ..", function()
    local p = fx.dir .. "/climb.zip"
    local entries = package_entries("m.mlpackage/")
    entries[#entries + 1] = { name = "../../etc/evil", data = "x" }
    assert(fs.zip_write(p, entries))
    local m, err = mlsh.try_load(p)
    assert.is_nil(m)
    assert.truthy(err:find("unsafe path", 1, true), err)
  end)

  it("refuses an absolute entry name", function()
    local p = fx.dir .. "/abs.zip"
    local entries = package_entries("m.mlpackage/")
    entries[#entries + 1] = { name = "/tmp/evil", data = "x" }
    assert(fs.zip_write(p, entries))
    local _, err = mlsh.try_load(p)
    assert.truthy(err:find("unsafe path", 1, true), err)
  end)

  it("refuses an entry that inflates past the ratio limit", function()
    local p = fx.dir .. "/bomb.mlpackage.zip"
    local entries = package_entries("b.mlpackage/")
    entries[3].data = string.rep("\0", 1 << 20) -- 1 MiB of zeros deflates more than 1000x
    assert(fs.zip_write(p, entries))
    local out, err, code = F.run("info " .. F.q(p))
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("inflates more than 1000x (zip bomb?)", 1, true), err)
    local h = io.popen("MLSH_MAX_ZIP_RATIO=100000 " .. os.getenv("MLSH_BIN") .. " info " .. F.q(p) .. " 2>&1")
    local relaxed = h:read("a")
    h:close()
    assert.falsy(relaxed:find("zip bomb", 1, true), "a higher limit lets it through to the next check")
    assert.truthy(relaxed:find("unsupported blob storage version 0", 1, true), relaxed)
  end)

end)
