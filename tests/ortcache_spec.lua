-- ONNX Runtime's Core ML cache folders (core/ortcache.c, mlsh.ortcache) on a self-written layout.
local F = require "fixtures"
local X = require "pte_fixtures"
local json = require "mlsh.json"
local fs = require("mlsh.core").fs

local HOME = os.getenv("MLSH_HOME") or "."
local dir = HOME .. "/build/test-ortcache"
local c

setup(function()
  fs.remove_tree(dir)
  assert(fs.mkdir_p(dir))
  c = X.ort_cache(dir .. "/cache")
end)

describe("mlsh info on an ORT Core ML cache folder", function()
  it("lists each key with its ONNX path and compiled models, opened like any .mlmodelc", function()
    local out, err, code = F.run("info " .. F.q(c.dir))
    assert.equal(0, code, err)
    assert.matches("key a1b2c3: ONNX model /Users/dev/models/detector%.onnx, 2 compiled model%(s%)", out)
    assert.truthy(out:find("[1] " .. c.models[2] .. " (mlmodelc)", 1, true), out)
    assert.matches("function main <CoreML6>: 1 ops %(mul 1%)", out)
  end)

  it("--json gives key, onnx_path and each model's info", function()
    local out, err, code = F.run("info --json " .. F.q(c.key))
    assert.equal(0, code, err)
    local o = json.decode(out)
    assert.equal("ort_coreml_cache", o.format)
    assert.equal(1, #o.partitions)
    assert.equal("a1b2c3", o.partitions[1].key)
    assert.equal("/Users/dev/models/detector.onnx", o.partitions[1].onnx_path)
    assert.equal(2, #o.partitions[1].models)
    local direct = json.decode((F.run("info --json " .. F.q(c.models[1]))))
    assert.same(direct, o.partitions[1].models[1].model)
  end)

  it("selects one cached model with --delegate", function()
    local out, err, code = F.run("graph --delegate a1b2c3:1 " .. F.q(c.dir))
    assert.equal(0, code, err)
    assert.truthy(out:find("1_mlprogram", 1, true))
    local _, err2, code2 = F.run("graph " .. F.q(c.dir))
    assert.equal(2, code2)
    assert.matches("2 cached models; choose one with %-%-delegate", err2)
  end)

  it("leaves folders that are not caches to the usual loader", function()
    local _, err, code = F.run("info " .. F.q(dir))
    assert.equal(1, code)
    assert.matches("not a model package", err)
  end)
end)
