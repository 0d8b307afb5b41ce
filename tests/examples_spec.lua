-- The bundled examples (examples/*.lua, run as `make examples` runs them): every model they write
-- loads back, round-trips through mlsh save unchanged, has a well-formed weight.bin, carries the
-- ops / layers its variant is about, and is rebuilt byte for byte.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"

local home = os.getenv("MLSH_HOME") or "."
local root -- a fresh folder under build/ per run, so concurrent test runs do not collide

local EXPECTED = {
  "cnn.mlmodel", "cnn_flex.mlmodel", "image_classifier.mlpackage", "multi.mlpackage", "pipeline.mlmodel",
  "prog.mlpackage", "prog.mlpackage.zip", "stateful.mlpackage",
  "mobilenet_like_good.mlpackage", "mobilenet_like_fp32.mlpackage", "mobilenet_like_dilated.mlpackage",
  "mobilenet_like_flexible.mlpackage", "mobilenet_like_nn.mlmodel", "mobilenet_like_ios18.mlpackage",
  "transformer_encoder_good.mlpackage", "transformer_encoder_gather.mlpackage", "transformer_encoder_lstm.mlpackage",
  "transformer_encoder_enumerated.mlpackage", "transformer_encoder_range.mlpackage", "transformer_encoder_fp32.mlpackage",
}

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function recipes()
  local list = {}
  for line in sh("ls " .. F.q(home .. "/examples") .. "/*.lua 2>/dev/null"):gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

-- Build every recipe into dir; returns the paths they print.
local function build_all(dir)
  core.fs.remove_tree(dir)
  assert(core.fs.mkdir_p(dir))
  local printed = {}
  for _, r in ipairs(recipes()) do
    local out, err, code = F.run(F.q(r) .. " " .. F.q(dir))
    assert(code == 0, r .. " failed: " .. err)
    for line in out:gmatch("[^\n]+") do printed[#printed + 1] = line end
  end
  return printed
end

local function info_of(path)
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

-- md5 of every file under path (or of path itself), named relative to it
local function sums(path)
  if core.fs.exists(path) == "file" then return sh("md5sum < " .. F.q(path)) end
  return sh("cd " .. F.q(path) .. " && find . -type f | LC_ALL=C sort | xargs md5sum")
end

local function load(name) return mlsh.load(root .. "/" .. name) end

local function count_ops(m, typ) return m:op_histogram()[typ] or 0 end

describe("bundled examples", function()
  local printed
  setup(function()
    assert(core.fs.mkdir_p(home .. "/build"))
    root = sh("mktemp -d " .. F.q(home .. "/build/test-examples.XXXXXX")):gsub("%s+$", "")
    printed = build_all(root)
  end)
  teardown(function() core.fs.remove_tree(root) end)

  it("write exactly the expected files and print their paths", function()
    local names = {}
    for _, p in ipairs(printed) do names[#names + 1] = p:match("([^/]+)$") end
    table.sort(names)
    local want = {}
    for i, n in ipairs(EXPECTED) do want[i] = n end
    table.sort(want)
    assert.same(want, names)
    for _, n in ipairs(EXPECTED) do assert.is_truthy(core.fs.exists(root .. "/" .. n), n) end
  end)

  it("stay small (a few MB at most)", function()
    for _, n in ipairs(EXPECTED) do
      local total = tonumber(sh("du -sk " .. F.q(root .. "/" .. n) .. " | cut -f1"))
      assert.is_true(total < 4096, n .. " is " .. total .. " KiB")
    end
  end)

  for _, name in ipairs(EXPECTED) do
    it("round-trips " .. name .. " through save and load", function()
      local m <close> = load(name)
      assert.is_true(m.spec_version >= 1)
      local ext = name:match("%.mlpackage%.zip$") and ".mlpackage.zip" or name:match("(%.%w+)$")
      local dst = root .. "/roundtrip_" .. name:gsub("%..*$", "") .. ext
      m:save(dst)
      assert.equal(info_of(root .. "/" .. name), info_of(dst))
      if ext == ".mlmodel" then assert.equal(F.read(root .. "/" .. name), F.read(dst)) end
    end)
  end

  it("write weight.bin files with a v2 header, 64-byte aligned records and DEADBEEF sentinels", function()
    local checked = 0
    for _, name in ipairs(EXPECTED) do
      if name:match("%.mlpackage$") then
        local bin = F.read(root .. "/" .. name .. "/Data/com.apple.CoreML/weights/weight.bin")
        local count, version = string.unpack("<I4I4", bin, 1)
        assert.equal(2, version, name)
        -- walk the records in file order
        local at, seen = 64, {}
        while at < #bin do
          assert.equal(0, at % 64, name)
          local sentinel, dtype, size, data = string.unpack("<I4I4I8I8", bin, at + 1)
          assert.equal(0xDEADBEEF, sentinel, name .. " @" .. at)
          assert.is_true(dtype == 1 or dtype == 2, name) -- Float16 / Float32
          assert.equal(at + 64, data, name)
          seen[#seen + 1] = at
          at = (data + size + 63) // 64 * 64
        end
        assert.equal(count, #seen, name)
        -- every blob weight of the program points at one of those records, and uses all of them
        local m <close> = load(name)
        local used = {}
        for _, w in ipairs(m:weights()) do
          if w.storage == "blob" then
            used[w.offset] = true
            local meta = w:blob()
            assert.equal(w.bytes, meta.size, w.name)
          end
        end
        local n = 0
        for _, off in ipairs(seen) do
          assert.is_true(used[off], name .. ": unreferenced record @" .. off)
          n = n + 1
        end
        assert.equal(count, n)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 15)
  end)

  describe("MobileNet-like", function()
    it("good: fp16 iOS17 program, static input, depthwise-separable conv-bn-relu blocks", function()
      local m <close> = load("mobilenet_like_good.mlpackage")
      assert.equal(8, m.spec_version)
      assert.equal("CoreML7", m:functions()[1].opset)
      local i = m:inputs()[1]
      assert.same({ 1, 3, 224, 224 }, i.shape)
      assert.is_nil(i.flexibility)
      local h = m:op_histogram()
      assert.equal(13, h.conv)
      assert.equal(13, h.batch_norm)
      assert.equal(13, h.relu)
      assert.equal(2, h.cast) -- the fp32 input and output boundaries
      assert.is_nil(h.gather)
      local grouped = 0
      for _, op in ipairs(m:ops()) do
        if op.type == "conv" then
          assert.same({ 1, 1 }, op:arg("dilations"))
          if op:arg("groups") > 1 then grouped = grouped + 1 end
        end
      end
      assert.equal(6, grouped)
      for _, w in ipairs(m:weights()) do assert.equal("fp16", w.dtype) end
      assert.same({ 1, 100 }, m:outputs()[1].shape)
    end)

    it("fp32: same graph at fp32 precision, no casts, fp32 weights", function()
      local m <close> = load("mobilenet_like_fp32.mlpackage")
      assert.equal(0, count_ops(m, "cast"))
      assert.equal(13, count_ops(m, "conv"))
      for _, w in ipairs(m:weights()) do assert.equal("fp32", w.dtype) end
    end)

    it("dilated: exactly one dilated conv", function()
      local m <close> = load("mobilenet_like_dilated.mlpackage")
      local dilated = 0
      for _, op in ipairs(m:ops()) do
        if op.type == "conv" and op:arg("dilations")[1] == 2 then dilated = dilated + 1 end
      end
      assert.equal(1, dilated)
    end)

    it("flexible: a range-flexible input", function()
      local m <close> = load("mobilenet_like_flexible.mlpackage")
      local f = m:inputs()[1].flexibility
      assert.equal("range", f.kind)
      assert.same({ { 1, 1 }, { 3, 3 }, { 64, 512 }, { 64, 512 } }, f.ranges)
    end)

    it("nn: the NeuralNetwork twin with fp16 weights", function()
      local m <close> = load("mobilenet_like_nn.mlmodel")
      assert.equal("neuralNetwork", m.model_type)
      assert.equal(4, m.spec_version)
      local h = m:layer_histogram()
      assert.equal(13, h.convolution)
      assert.equal(13, h.batchnorm)
      assert.equal(13, h.activation)
      assert.equal(1, h.pooling)
      assert.equal(1, h.innerProduct)
      assert.equal(1, h.softmax)
      assert.is_true(#m.neural_network.layers[1].convolution.weights.float16Value > 0)
    end)

    it("ios18: a state makes it spec 9 though it is meant for an iOS16 app", function()
      local m <close> = load("mobilenet_like_ios18.mlpackage")
      assert.equal(9, m.spec_version)
      assert.equal("CoreML8", m:functions()[1].opset)
      assert.equal(1, #m:states())
      assert.equal(2, count_ops(m, "read_state"))
      assert.equal(1, count_ops(m, "write_state"))
      assert.equal("iOS16", m.metadata.user_defined["mlsh.example.app_target"])
    end)
  end)

  describe("transformer encoder", function()
    it("good: fp16 iOS17, static 128 tokens, one-hot embedding without a gather", function()
      local m <close> = load("transformer_encoder_good.mlpackage")
      assert.equal(8, m.spec_version)
      local i = m:inputs()[1]
      assert.equal("int32", i.dtype)
      assert.same({ 1, 128 }, i.shape)
      assert.is_nil(i.flexibility)
      local h = m:op_histogram()
      assert.equal(1, h.one_hot)
      assert.is_nil(h.gather)
      assert.is_nil(h.lstm)
      assert.equal(2, h.softmax)
      assert.equal(4, h.matmul)
      assert.equal(5, h.layer_norm)
      assert.same({ 1, 128, 64 }, m:outputs()[2].shape)
    end)

    it("gather: the usual gather embedding", function()
      local m <close> = load("transformer_encoder_gather.mlpackage")
      assert.equal(1, count_ops(m, "gather"))
      assert.equal(0, count_ops(m, "one_hot"))
    end)

    it("lstm: an LSTM instead of the second encoder layer", function()
      local m <close> = load("transformer_encoder_lstm.mlpackage")
      assert.equal(1, count_ops(m, "lstm"))
      assert.equal(1, count_ops(m, "softmax"))
    end)

    it("enumerated and range: flexible sequence lengths", function()
      local e <close> = load("transformer_encoder_enumerated.mlpackage")
      local fe = e:inputs()[1].flexibility
      assert.equal("enumerated", fe.kind)
      assert.same({ { 1, 64 }, { 1, 128 }, { 1, 256 } }, fe.shapes)
      local r <close> = load("transformer_encoder_range.mlpackage")
      local fr = r:inputs()[1].flexibility
      assert.equal("range", fr.kind)
      assert.same({ { 1, 1 }, { 1, 256 } }, fr.ranges)
      assert.equal(1, count_ops(r, "range_1d"))
    end)

    it("fp32: fp32 precision", function()
      local m <close> = load("transformer_encoder_fp32.mlpackage")
      assert.equal(0, count_ops(m, "cast"))
      for _, w in ipairs(m:weights()) do assert.equal("fp32", w.dtype) end
    end)
  end)

  describe("small models", function()
    it("cover each container and model kind", function()
      local cnn <close> = load("cnn.mlmodel")
      assert.equal(1, cnn.spec_version)
      assert.same({ activation = 1, convolution = 1, flatten = 1, innerProduct = 1 }, cnn:layer_histogram())
      local flex <close> = load("cnn_flex.mlmodel")
      assert.equal(3, flex.spec_version)
      assert.equal(-1, flex:inputs()[1].flexibility.ranges[3][2])
      local prog <close> = load("prog.mlpackage")
      local zip <close> = load("prog.mlpackage.zip")
      assert.equal(7, prog.spec_version)
      assert.equal("mlpackage.zip", zip.format)
      assert.equal(info_of(root .. "/prog.mlpackage"), info_of(root .. "/prog.mlpackage.zip"))
      local multi <close> = load("multi.mlpackage")
      assert.equal(9, multi.spec_version)
      assert.equal("main_b", multi.default_function)
      local pipe <close> = load("pipeline.mlmodel")
      assert.equal("pipeline", pipe.model_type)
      assert.equal(2, #pipe:submodels())
      local st <close> = load("stateful.mlpackage")
      assert.equal("acc", st:states()[1].name)
      local img <close> = load("image_classifier.mlpackage")
      assert.equal("image", img:inputs()[1].kind)
      assert.equal(6, img.spec_version)
    end)
  end)

  it("are rebuilt byte for byte (zips: same contents)", function()
    local again = root .. "-again"
    build_all(again)
    for _, name in ipairs(EXPECTED) do
      if name:match("%.zip$") then
        assert.equal(info_of(root .. "/" .. name), info_of(again .. "/" .. name))
      else
        assert.equal(sums(root .. "/" .. name), sums(again .. "/" .. name), name)
      end
    end
    core.fs.remove_tree(again)
  end)
end)
