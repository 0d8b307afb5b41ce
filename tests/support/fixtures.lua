-- Test fixtures built by mlsh's own protobuf and weight-file writers (core.proto, core.blobfile,
-- core.fs): small but real Core ML files, so `make test` needs nothing outside the repository.
local core = require "mlsh.core"
local P, fs = core.proto, core.fs

local F = {}

function F.tmpdir()
  local p = io.popen("mktemp -d /tmp/mlsh-test.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local function write(path, bytes) assert(fs.write_atomic(path, bytes)) end
F.write = write

function F.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- FeatureDescription helpers ---------------------------------------------------------------------
function F.array_feature(owner, field, name, dtype, shape, flex)
  local fd = owner:add(field)
  fd.name = name
  local arr = fd:mutable("type"):mutable("multiArrayType")
  arr.shape = shape
  arr.dataType = dtype
  if flex and flex.enumerated then
    local es = arr:mutable("enumeratedShapes")
    for _, s in ipairs(flex.enumerated) do es:add("shapes").shape = s end
  elseif flex and flex.ranges then
    local sr = arr:mutable("shapeRange")
    for _, r in ipairs(flex.ranges) do
      local x = sr:add("sizeRanges")
      x.lowerBound, x.upperBound = r[1], r[2]
    end
  end
  return fd
end

local function weights(wp, values, fp16)
  if fp16 then wp.float16Value = core.array.new(values):encode("fp16")
  else wp.floatValue = values end
end

local function seq(n, scale)
  local t = {}
  for i = 1, n do t[i] = ((i * 37) % 17 - 8) * (scale or 0.01) end
  return t
end
F.seq = seq

-- A NeuralNetwork .mlmodel: conv (optionally dilated) -> relu -> flatten -> innerProduct [-> gather/custom].
function F.nn_model(opts)
  opts = opts or {}
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = opts.spec or 4
  local d = m:mutable("description")
  F.array_feature(d, "input", "data", "FLOAT32", { 3, 8, 8 }, opts.flex)
  F.array_feature(d, "output", "out", "FLOAT32", { 4 })
  local md = d:mutable("metadata")
  md.author, md.shortDescription, md.versionString, md.license = "mlsh tests", "tiny cnn", "1.0", "MIT"
  local ud = md:add("userDefined")
  ud.key, ud.value = "com.github.apple.coremltools.version", "mlsh-fixture"
  local nn = m:mutable(opts.classifier and "neuralNetworkClassifier" or "neuralNetwork")
  local conv = nn:add("layers")
  conv.name, conv.input, conv.output = "conv1", { "data" }, { "c1" }
  local cp = conv:mutable("convolution")
  cp.outputChannels, cp.kernelChannels, cp.nGroups = 2, 3, 1
  cp.kernelSize, cp.stride, cp.dilationFactor = { 3, 3 }, { 1, 1 }, { opts.dilation or 1, opts.dilation or 1 }
  cp:mutable("same")
  weights(cp:mutable("weights"), seq(2 * 3 * 3 * 3), opts.fp16)
  local relu = nn:add("layers")
  relu.name, relu.input, relu.output = "relu1", { "c1" }, { "r1" }
  relu:mutable("activation"):mutable("ReLU")
  local flat = nn:add("layers")
  flat.name, flat.input, flat.output = "flatten", { "r1" }, { "f1" }
  flat:mutable("flatten")
  local fc = nn:add("layers")
  fc.name, fc.input, fc.output = "fc", { "f1" }, { opts.gather and "fcout" or "out" }
  local ip = fc:mutable("innerProduct")
  ip.inputChannels, ip.outputChannels, ip.hasBias = 128, 4, true
  weights(ip:mutable("weights"), seq(128 * 4), opts.fp16)
  weights(ip:mutable("bias"), { 0.1, 0.2, 0.3, 0.4 }, opts.fp16)
  if opts.gather then
    local g = nn:add("layers")
    g.name, g.input, g.output = "gather", { "fcout", "idx" }, { "out" }
    g:mutable("gather").axis = 0
  end
  if opts.custom then
    local c = nn:add("layers")
    c.name, c.input, c.output = "swish", { "out" }, { "out2" }
    local cl = c:mutable("custom")
    cl.className = "MLSHSwish"
    cl.description = "x * sigmoid(x)"
  end
  if opts.quantized then
    local wp = ip.weights
    wp.floatValue = nil
    local codes = {}
    for i = 1, 128 * 4 do codes[i] = i % 256 end
    wp.rawValue = core.array.new(codes):encode("uint8")
    local q = wp:mutable("quantization")
    q.numberOfBits = 8
    local lq = q:mutable("linearQuantization")
    lq.scale, lq.bias = { 0.5 }, { -1 }
  end
  if opts.classifier then nn:mutable("stringClassLabels").vector = { "cat", "dog", "bird", "fish" } end
  return m
end

-- An ML program spec + weight.bin image: x -> linear(W, b) -> relu -> y (per function).
function F.mlprogram(opts)
  opts = opts or {}
  local blobs = core.blobfile.writer()
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = opts.spec or 7
  local d = m:mutable("description")
  local prog = m:mutable("mlProgram")
  prog.version = 1
  local opset = opts.opset or "CoreML6"
  local names = opts.functions or { "main" }
  for fi, fname in ipairs(names) do
    local owner = d
    if #names > 1 then
      owner = d:add("functions")
      owner.name = fname
    end
    F.array_feature(owner, #names > 1 and "input" or "input", "x", "FLOAT16", { 1, 16 }, opts.flex)
    F.array_feature(owner, #names > 1 and "output" or "output", "y", "FLOAT16", { 1, 8 })
    local fe = prog:add("functions")
    fe.key = fname
    local fn = fe:mutable("value")
    fn.opset = opset
    local fin = fn:add("inputs")
    fin.name = "x"
    local tt = fin:mutable("type"):mutable("tensorType")
    tt.dataType, tt.rank = "FLOAT16", 2
    for _, dim in ipairs({ 1, 16 }) do tt:add("dimensions"):mutable("constant").size = dim end
    local be = fn:add("block_specializations")
    be.key = opset
    local block = be:mutable("value")
    block.outputs = { "y" }
    local function tensor_type(vt, dtype, shape)
      local t = vt:mutable("tensorType")
      t.dataType, t.rank = dtype, #shape
      for _, dim in ipairs(shape) do t:add("dimensions"):mutable("constant").size = dim end
    end
    local function op(typ, name, out, outshape, inputs, attrs)
      local o = block:add("operations")
      o.type = typ
      local a = o:add("attributes")
      a.key = "name"
      local v = a:mutable("value")
      tensor_type(v:mutable("type"), "STRING", {})
      v:mutable("immediateValue"):mutable("tensor"):mutable("strings").values = { name }
      local akeys = {}
      for k in pairs(attrs or {}) do akeys[#akeys + 1] = k end
      table.sort(akeys)
      for _, k in ipairs(akeys) do
        local e = o:add("attributes")
        e.key = k
        e.value = attrs[k]
      end
      local keys = {}
      for k in pairs(inputs or {}) do keys[#keys + 1] = k end
      table.sort(keys) -- deterministic files
      for _, k in ipairs(keys) do
        local e = o:add("inputs")
        e.key = k
        e:mutable("value"):add("arguments").name = inputs[k]
      end
      local ov = o:add("outputs")
      ov.name = out
      tensor_type(ov:mutable("type"), "FLOAT16", outshape)
      return o
    end
    -- weight W [8,16] fp16 in the blob file, bias [8] fp16 immediate
    local wvals = seq(8 * 16, 0.02 * fi)
    local off = blobs:add("fp16", core.array.new(wvals):encode("fp16"), 8 * 16)
    local wv = P.new("CoreML.Specification.MILSpec.Value")
    tensor_type(wv:mutable("type"), "FLOAT16", { 8, 16 })
    local bf = wv:mutable("blobFileValue")
    bf.fileName, bf.offset = "@model_path/weights/weight.bin", off
    op("const", "W", "W", { 8, 16 }, nil, { val = wv })
    local bv = P.new("CoreML.Specification.MILSpec.Value")
    tensor_type(bv:mutable("type"), "FLOAT16", { 8 })
    bv:mutable("immediateValue"):mutable("tensor"):mutable("bytes").values = core.array.new(seq(8)):encode("fp16")
    op("const", "b", "b", { 8 }, nil, { val = bv })
    op("linear", "linear_0", "lin", { 1, 8 }, { x = "x", weight = "W", bias = "b" })
    op("relu", "relu_0", "y", { 1, 8 }, { x = "lin" })
  end
  if #names > 1 then d.defaultFunctionName = opts.default or names[1] end
  return m, blobs:bytes()
end

local MANIFEST = [[{
  "fileFormatVersion": "1.0.0",
  "itemInfoEntries": {
    "11111111-2222-3333-4444-555555555555": {"author": "com.apple.CoreML", "description": "CoreML Model Specification", "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel"},
    "66666666-7777-8888-9999-000000000000": {"author": "com.apple.CoreML", "description": "CoreML Model Weights", "name": "weights", "path": "com.apple.CoreML/weights"}
  },
  "rootModelIdentifier": "11111111-2222-3333-4444-555555555555"
}]]
F.MANIFEST = MANIFEST

-- Write an .mlpackage folder from a spec Message and a weight.bin image.
function F.write_package(dir, spec, weight_bytes, manifest)
  assert(fs.mkdir_p(dir .. "/Data/com.apple.CoreML/weights"))
  write(dir .. "/Manifest.json", manifest or MANIFEST)
  write(dir .. "/Data/com.apple.CoreML/model.mlmodel", spec:encode())
  if weight_bytes then write(dir .. "/Data/com.apple.CoreML/weights/weight.bin", weight_bytes) end
  return dir
end

function F.pipeline()
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = 4
  local d = m:mutable("description")
  F.array_feature(d, "input", "data", "FLOAT32", { 3, 8, 8 })
  F.array_feature(d, "output", "out", "FLOAT32", { 4 })
  local pipe = m:mutable("pipeline")
  pipe:add("models", F.nn_model())
  pipe:add("models", F.nn_model({ fp16 = true }))
  pipe.names = { "first", "second" }
  return m
end

-- A directory of every fixture the specs use; built once per test run.
function F.build_all(dir)
  dir = dir or F.tmpdir()
  local out = { dir = dir }
  out.nn = dir .. "/cnn.mlmodel"; write(out.nn, F.nn_model():encode())
  out.nn_flex = dir .. "/cnn_flex.mlmodel"
  write(out.nn_flex, F.nn_model({ flex = { ranges = { { 3, 3 }, { 8, 64 }, { 8, -1 } } } }):encode())
  out.nn_enum = dir .. "/cnn_enum.mlmodel"
  write(out.nn_enum, F.nn_model({ flex = { enumerated = { { 3, 8, 8 }, { 3, 16, 16 } } } }):encode())
  out.nn_classifier = dir .. "/classifier.mlmodel"; write(out.nn_classifier, F.nn_model({ classifier = true, fp16 = true }):encode())
  out.nn_quant = dir .. "/quant.mlmodel"; write(out.nn_quant, F.nn_model({ quantized = true }):encode())
  out.pipeline = dir .. "/pipeline.mlmodel"; write(out.pipeline, F.pipeline():encode())
  local spec, wb = F.mlprogram()
  out.pkg = F.write_package(dir .. "/prog.mlpackage", spec, wb)
  local mspec, mwb = F.mlprogram({ functions = { "main_a", "main_b" }, spec = 9, opset = "CoreML8", default = "main_b" })
  out.multi = F.write_package(dir .. "/multi.mlpackage", mspec, mwb)
  out.zip = dir .. "/prog.mlpackage.zip"
  assert(fs.zip_dir(out.pkg, "prog.mlpackage", out.zip))
  -- broken inputs
  out.truncated = dir .. "/truncated.mlmodel"
  local bytes = F.nn_model():encode()
  write(out.truncated, bytes:sub(1, #bytes - 7))
  out.not_model = dir .. "/notes.mlmodel"; write(out.not_model, "these are not the weights you are looking for\n")
  out.empty = dir .. "/empty.mlmodel"; write(out.empty, "")
  out.plain_dir = dir .. "/plain"; assert(fs.mkdir_p(out.plain_dir))
  out.corrupt_zip = dir .. "/corrupt.mlpackage.zip"; write(out.corrupt_zip, "PK\3\4" .. string.rep("\0\255", 40))
  out.no_root = F.write_package(dir .. "/noroot.mlpackage", spec, wb, [[{"fileFormatVersion": "1.0.0", "itemInfoEntries": {}}]])
  out.bad_manifest = F.write_package(dir .. "/badjson.mlpackage", spec, wb, "{ not json")
  out.short_weights = F.write_package(dir .. "/shortweights.mlpackage", spec, wb:sub(1, 100))
  out.no_weights = F.write_package(dir .. "/noweights.mlpackage", spec, nil)
  return out
end

-- Built once per test run (busted runs every spec in one Lua state) under build/test-fixtures.
local shared
function F.shared()
  if not shared then
    local root = (os.getenv("MLSH_HOME") or ".") .. "/build/test-fixtures"
    fs.remove_tree(root)
    assert(fs.mkdir_p(root))
    shared = F.build_all(root)
  end
  return shared
end

-- Run the mlsh binary; returns stdout, stderr, exit status.
function F.run(args)
  local bin = os.getenv("MLSH_BIN") or "./mlsh"
  local errf = os.tmpname()
  local p = io.popen(string.format("%s %s 2>%s", bin, args, errf))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = F.read(errf)
  os.remove(errf)
  return out, err, code
end

function F.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function F.sha(path)
  local p = io.popen("find " .. F.q(path) .. " -type f -exec md5sum {} + 2>/dev/null | sort")
  local s = p:read("a")
  p:close()
  return s
end

-- placement.simulate on the model at path; the calibrated stage is the library's default, so this
-- opts out of it unless opts.calibrated says otherwise (specs of the first stage on tiny fixtures).
function F.simulate(path, opts)
  local m = require("mlsh").load(path)
  opts = opts or {}
  if opts.calibrated == nil then opts.calibrated = false end
  local p = require("mlsh.placement.coreml").simulate(m, opts)
  m:close()
  return p
end

return F
