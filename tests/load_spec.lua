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
