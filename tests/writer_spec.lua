-- Saving: round trips through every container, weight.bin layout, validation errors, atomicity.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"

local function info(path)
  local m <close> = mlsh.load(path)
  local o = m:info()
  local function strip(t)
    if type(t) ~= "table" then return end
    t.path, t.format = nil, nil
    for _, v in pairs(t) do strip(v) end
  end
  strip(o)
  return json.encode(o)
end

describe("saving models", function()
  local fx, out
  setup(function()
    fx = F.shared()
    out = fx.dir .. "/saved"
    assert(core.fs.mkdir_p(out))
  end)

  local cases = {
    { "nn", "cnn.mlmodel" }, { "nn_quant", "quant.mlmodel" }, { "pipeline", "pipe.mlmodel" },
    { "nn_classifier", "cls.mlpackage" }, { "pkg", "prog.mlpackage" }, { "pkg", "prog2.mlpackage.zip" },
    { "zip", "fromzip.mlpackage" }, { "multi", "multi.mlpackage" },
  }
  for _, c in ipairs(cases) do
    it("round-trips " .. c[1] .. " as " .. c[2], function()
      local m = mlsh.load(fx[c[1]])
      local dst = out .. "/" .. c[2]
      assert.is_true(m:save(dst))
      assert.equal(info(fx[c[1]]), info(dst))
    end)
  end

  it("keeps the spec byte for byte and the weight layout of an unmodified package", function()
    local dst = out .. "/same.mlpackage"
    mlsh.load(fx.pkg):save(dst)
    local a = F.read(fx.pkg .. "/Data/com.apple.CoreML/model.mlmodel")
    local b = F.read(dst .. "/Data/com.apple.CoreML/model.mlmodel")
    assert.equal(a, b)
    assert.equal(F.read(fx.pkg .. "/Data/com.apple.CoreML/weights/weight.bin"),
      F.read(dst .. "/Data/com.apple.CoreML/weights/weight.bin"))
    local manifest = json.decode(F.read(dst .. "/Manifest.json"))
    local root = manifest.itemInfoEntries[manifest.rootModelIdentifier]
    assert.equal("com.apple.CoreML/model.mlmodel", root.path)
    assert.equal("1.0.0", manifest.fileFormatVersion)
  end)

  it("keeps unknown fields through a save", function()
    local spec = F.nn_model():encode() .. "\x78\x2a"
    local src = out .. "/unknown.mlmodel"
    F.write(src, spec)
    local dst = out .. "/unknown2.mlmodel"
    mlsh.load(src):save(dst)
    assert.truthy(F.read(dst):find("\x78\x2a", 1, true))
  end)

  it("writes weight.bin records 64-byte aligned with the 0xDEADBEEF sentinel", function()
    local dst = out .. "/aligned.mlpackage"
    mlsh.load(fx.multi):save(dst)
    local w = F.read(dst .. "/Data/com.apple.CoreML/weights/weight.bin")
    local count, version = string.unpack("<I4I4", w)
    assert.equal(2, count)
    assert.equal(2, version)
    local m = mlsh.load(dst)
    for _, wt in ipairs(m:weights()) do
      if wt.storage == "blob" then
        assert.equal(0, wt.offset % 64)
        assert.equal(0xDEADBEEF, (string.unpack("<I4", w, wt.offset + 1)))
        assert.equal(wt.offset + 64, wt:blob().data_offset)
      end
    end
  end)

  it("refuses to replace its input unless asked", function()
    local src = out .. "/inplace.mlmodel"
    F.write(src, F.read(fx.nn))
    local m = mlsh.load(src)
    assert.has_error(function() m:save(src) end, src .. ": refusing to replace the input (use --in-place)")
    assert.is_true(m:save(src, { in_place = true }))
    assert.equal(info(fx.nn), info(src))
  end)

  it("refuses names it cannot map to a container, and ML programs with weights as .mlmodel", function()
    local m = mlsh.load(fx.pkg)
    assert.has_error(function() m:save(out .. "/model.bin") end)
    assert.has_error(function() m:save(out .. "/prog.mlmodel") end,
      out .. "/prog.mlmodel: this model keeps weights in a weight file; save it as .mlpackage")
  end)

  describe("validation", function()
    local function with_edit(edit)
      local m = mlsh.load(fx.pkg)
      local spec = m.spec:copy()
      edit(spec.mlProgram.functions[1].value.block_specializations[1].value)
      return function() return mlsh.writer.save(spec, mlsh.writer.model_reader(m), out .. "/bad.mlpackage") end
    end
    it("names an undefined value", function()
      local f = with_edit(function(block)
        for _, e in ipairs(block.operations[3].inputs) do
          if e.key == "x" then e.value.arguments[1].name = "ghost" end
        end
      end)
      assert.has_error(f, out .. "/bad.mlpackage: invalid model: function main: linear op 'linear_0' input 'x' references undefined value 'ghost'")
    end)
    it("names an op outside the declared opset", function()
      local f = with_edit(function(block) block.operations[4].type = "scaled_dot_product_attention" end)
      assert.has_error(f, out .. "/bad.mlpackage: invalid model: function main: scaled_dot_product_attention op 'relu_0' is not in opset CoreML6")
    end)
    it("names a const whose bytes do not match its type", function()
      local f = with_edit(function(block)
        local v = block.operations[2].attributes[2].value
        v.immediateValue.tensor.bytes.values = "\0\0\0"
      end)
      assert.has_error(f, out .. "/bad.mlpackage: invalid model: function main: const op 'b': value of fp16[8] holds 3 bytes, its type needs 16")
    end)
    it("leaves no file behind when it refuses", function()
      assert.is_nil(core.fs.exists(out .. "/bad.mlpackage"))
    end)
  end)

  it("mlsh save converts containers and reports errors with exit 1", function()
    local dst = out .. "/cli.mlpackage.zip"
    local _, err, code = F.run("save " .. F.q(fx.pkg) .. " " .. F.q(dst))
    assert.equal(0, code, err)
    assert.equal(info(fx.pkg), info(dst))
    local _, e2, c2 = F.run("save " .. F.q(fx.not_model) .. " " .. F.q(out .. "/x.mlmodel"))
    assert.equal(1, c2)
    assert.truthy(e2:find("not a Core ML model", 1, true))
    local _, _, c3 = F.run("save onlyone")
    assert.equal(2, c3)
  end)
end)

describe("failed writes", function()
  local fx
  setup(function() fx = F.shared() end)

  it("leave the old file intact when the disk fills (ulimit -f) and report the error", function()
    local dir = fx.dir .. "/full"
    assert(core.fs.mkdir_p(dir))
    local dst = dir .. "/out.mlmodel"
    F.write(dst, "OLD CONTENT")
    -- a 2 KiB file-size limit: the 27 KiB quantized model cannot be written
    local p = io.popen(string.format("sh -c 'ulimit -f 2; %s save %s %s' 2>&1; echo rc=$?",
      os.getenv("MLSH_BIN"), F.q(fx.nn_quant), F.q(dst)))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("rc=1", 1, true), out)
    assert.truthy(out:find("write failed", 1, true) or out:find("File too large", 1, true), out)
    assert.equal("OLD CONTENT", F.read(dst))
    local leftovers = io.popen("ls " .. F.q(dir)):read("a")
    assert.equal("out.mlmodel\n", leftovers, "no temporary file left behind")
  end)

  it("leave an old package intact when its weights cannot be written", function()
    local dir = fx.dir .. "/full2"
    assert(core.fs.mkdir_p(dir))
    local dst = dir .. "/out.mlpackage"
    mlsh.load(fx.pkg):save(dst)
    local before = F.sha(dst)
    -- a program with 32 KiB of weights, saved under a 16 KiB file-size limit
    local B = require "mlsh.builder"
    local p = B.program { opset = "iOS16", precision = "fp16" }
    local f = p:func("main")
    local x = f:input("x", "fp16", { 1, 128 })
    local w = f:const("w", B.random.normal { seed = 1, shape = { 128, 128 }, std = 0.1 })
    f:output("y", f:op("linear", { x = x, weight = w }))
    local big = p:save(dir .. "/big.mlpackage")
    local h = io.popen(string.format("sh -c 'ulimit -f 16; %s save %s %s' 2>&1; echo rc=$?",
      os.getenv("MLSH_BIN"), F.q(big), F.q(dst)))
    local out = h:read("a")
    h:close()
    assert.truthy(out:find("rc=1", 1, true), out)
    assert.truthy(out:find("mlsh: " .. dst .. "/Data/com.apple.CoreML/weights/weight.bin: write failed: File too large", 1, true), out)
    assert.equal(before, F.sha(dst), "the old package is untouched")
    local left = io.popen("ls " .. F.q(dir)):read("a")
    assert.equal("big.mlpackage\nout.mlpackage\n", left, "no temporary folder left behind")
  end)
end)

describe("declared sizes", function()
  it("treat a shape whose element count overflows as unknown, not as a wrapped number", function()
    local types = require "mlsh.types"
    assert.is_nil(types.count({ 1 << 40, 1 << 40 }))
    assert.equal(6, types.count({ 2, 3 }))
    assert.is_nil(types.count({ 2, -1 }))
  end)
  it("refuse to allocate for more elements than the bytes hold", function()
    assert.has_error(function() core.array.decode("\0\0", "fp16", 1 << 40) end)
  end)
end)
