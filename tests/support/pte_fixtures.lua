-- ExecuTorch fixtures around models mlsh's own fixture writer makes: Core ML payload trees
-- (mlpackage or mlmodelc inside), and .pte files in every layout docs/containers.md lists.
local F = require "fixtures"
local PB = require "pte_builder"

local X = {}

X.SPECS = { { "compute_units", "cpu_and_ne" }, { "min_deployment_target", "7" },
            { "model_compute_precision", "float16" }, { "model_type", "model" } }

local function metadata(inputs, outputs)
  return string.format('{"inputNames": ["%s"], "outputNames": ["%s"], "identifier": "executorch_0000"}',
    table.concat(inputs, '", "'), table.concat(outputs, '", "'))
end

-- The lowered_module tree of an ML program package (x -> linear -> relu -> y).
function X.package_tree(opts)
  opts = opts or {}
  local spec, wb = F.mlprogram(opts)
  return { name = opts.root or "lowered_module", children = {
    { name = "metadata.json", data = metadata({ "x" }, { "y" }) },
    { name = "model.mlpackage", children = {
      { name = "Manifest.json", data = F.MANIFEST },
      { name = "Data", children = { { name = "com.apple.CoreML", children = {
        { name = "model.mlmodel", data = spec:encode() },
        { name = "weights", children = { { name = "weight.bin", data = wb } } },
      } } } },
    } },
  } }
end

X.MIL = [[
program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "1436.100.10"}})]
{
    func main<ios16>(tensor<fp16, [1, 10]> x, tensor<fp16, [1, 10]> y) {
            tensor<fp16, [1, 10]> var_3 = mul(x = x, y = y)[name = tensor<string, []>("op_3_cast_fp16")];
        } -> (var_3);
}
]]

X.MLMODELC_META = [[[{"specificationVersion": 7, "metadataOutputVersion": "3.0", "isUpdatable": "0",
  "inputSchema": [{"name": "x", "type": "MultiArray", "dataType": "Float16", "shape": "[1, 10]"},
                  {"name": "y", "type": "MultiArray", "dataType": "Float16", "shape": "[1, 10]"}],
  "outputSchema": [{"name": "var_3", "type": "MultiArray", "dataType": "Float16", "shape": "[1, 10]"}]}]
]]

function X.mlmodelc_tree()
  return { name = "lowered_module", children = {
    { name = "metadata.json", data = metadata({ "x", "y" }, { "var_3" }) },
    { name = "model.mlmodelc", children = {
      { name = "model.mil", data = X.MIL },
      { name = "metadata.json", data = X.MLMODELC_META },
      { name = "coremldata.bin", data = "\8\4" },
    } },
  } }
end

local function write(dir, name, bytes)
  local p = dir .. "/" .. name
  F.write(p, bytes)
  return p
end

-- Every .pte fixture under dir; returns {name = path}.
function X.build_all(dir)
  local out = {}
  local pkg = PB.flatten(X.package_tree())
  local chain = { { "kernel", 0 }, { "delegate", 0 }, { "kernel", 1 } }
  local ops = { { "aten::sigmoid", "out" }, { "aten::add", "out" } }
  local function method(name, data, extra)
    local m = { name = name, operators = ops, chain = chain,
                delegates = { { data = data, specs = X.SPECS } } }
    for k, v in pairs(extra or {}) do m[k] = v end
    return m
  end
  out.inline = write(dir, "inline.pte", PB.pte{ methods = { method("forward", pkg) } })
  out.seg24 = write(dir, "seg24.pte", PB.pte{ header = 24, methods = { method("forward", pkg) } })
  out.seg32 = write(dir, "seg32.pte", PB.pte{ header = 32, methods = { method("forward", pkg) } })
  -- CMJR: two methods share one payload through named data
  local multi = PB.flatten(X.package_tree{ root = "lowered_module_partition_0" })
  out.cmjr = write(dir, "cmjr.pte", PB.pte{ header = 32, named = { { "coreml_executorch_abc", multi } }, methods = {
    method("prefill", PB.cmjr("coreml_executorch_abc", "prefill")),
    method("decode", PB.cmjr("coreml_executorch_abc", "decode")) } })
  out.mlmodelc = write(dir, "compiled.pte", PB.pte{ header = 32, methods = { method("forward", PB.flatten(X.mlmodelc_tree())) } })
  -- graph break: two Core ML delegates with operators between them, plus an XNNPACK delegate
  local m = method("forward", pkg)
  m.delegates[2] = { data = pkg, specs = X.SPECS }
  m.delegates[3] = { id = "XnnpackBackend", data = string.rep("\1", 100) }
  m.chain = { { "delegate", 0 }, { "kernel", 0 }, { "kernel", 1 }, { "delegate", 1 }, { "delegate", 2 } }
  out.breaks = write(dir, "breaks.pte", PB.pte{ header = 32, methods = { m } })
  -- the >1 GiB layout: page-aligned files relative to an odd base, trailing NULs
  local big = PB.flatten(X.package_tree(), { align = 16384, base = 32, trailing = 4097 })
  out.large = write(dir, "large.pte", PB.pte{ header = 32, segment_alignment = 4096, methods = { method("forward", big) } })
  out.bundled = write(dir, "bundled.bpte", PB.bpte(PB.pte{ header = 32, methods = { method("forward", pkg) } }))
  -- the same large layout past 4 GiB, written sparse (only the head and the payload hold bytes)
  out.sparse = dir .. "/sparse.pte"
  local f = assert(io.open(out.sparse, "wb"))
  for _, part in ipairs(PB.pte{ header = 32, gap = 5 << 30, methods = { method("forward", big) } }) do
    assert(f:seek("set", part[1]))
    assert(f:write(part[2]))
  end
  f:close()
  X.corrupt(dir, out, pkg)
  return out
end

-- An ONNX Runtime Core ML cache folder (ModelCacheDirectory), as users report its layout:
-- <dir>/<key>/model.txt and <dir>/<key>/<N>_mlprogram/model/compiled_model.mlmodelc per partition.
function X.ort_cache(dir)
  local fs = require("mlsh.core").fs
  local key = dir .. "/a1b2c3"
  local models = {}
  for i = 0, 1 do
    local m = string.format("%s/%d_mlprogram/model/compiled_model.mlmodelc", key, i)
    assert(fs.mkdir_p(m))
    F.write(m .. "/model.mil", X.MIL)
    F.write(m .. "/metadata.json", X.MLMODELC_META)
    F.write(m .. "/coremldata.bin", "\8\4")
    models[#models + 1] = m
  end
  F.write(key .. "/model.txt", "/Users/dev/models/detector.onnx\n")
  return { dir = dir, key = key, models = models }
end

-- A compiled NeuralNetwork model (.mlmodelc with model.espresso.*), written from the community
-- layout: conv (weights + bias blobs) -> relu -> an espresso-only layer type -> softmax.
X.ESPRESSO = { conv_w = { 1, -2, 3, -4, 5, -6, 7, -8 }, conv_b = { 0.5, -0.5 } }
function X.espresso_mlmodelc(path, opts)
  opts = opts or {}
  local fs = require("mlsh.core").fs
  assert(fs.mkdir_p(path))
  local net = [[{"format_version": 200, "storage": "model.espresso.weights", "layers": [
    {"type": "convolution", "name": "conv1", "bottom": "data", "top": "conv1_out", "C": 2, "K": 2, "Nx": 1, "Ny": 2,
     "blob_weights": 3, "blob_biases": 1},
    {"type": "activation", "name": "relu1", "bottom": "conv1_out", "top": "relu1_out", "mode": 0},
    {"type": "espresso_private_op", "name": "odd", "bottom": "relu1_out", "top": "odd_out"},
    {"type": "softmax", "name": "prob", "bottom": "odd_out", "top": "prob"}]}]]
  local shape = [[{"layer_shapes": {"data": {"n": 1, "k": 2, "h": 4, "w": 4}, "conv1_out": {"n": 1, "k": 2, "h": 4, "w": 4},
    "relu1_out": {"n": 1, "k": 2, "h": 4, "w": 4}, "odd_out": {"n": 1, "k": 2, "h": 4, "w": 4}, "prob": {"n": 1, "k": 2, "h": 1, "w": 1}}}]]
  local function f32(t)
    local o = {}
    for i, v in ipairs(t) do o[i] = string.pack("<f", v) end
    return table.concat(o)
  end
  local b1, b3 = f32(X.ESPRESSO.conv_b), f32(X.ESPRESSO.conv_w)
  local weights = string.pack("<I8", 2) .. string.pack("<I8I8", 1, #b1) .. string.pack("<I8I8", 3, #b3) .. b1 .. b3
  if opts.truncate then weights = weights:sub(1, #weights - opts.truncate) end
  F.write(path .. "/model.espresso.net", net)
  F.write(path .. "/model.espresso.shape", shape)
  F.write(path .. "/model.espresso.weights", weights)
  F.write(path .. "/coremldata.bin", "\8\4")
  F.write(path .. "/metadata.json", [[[{"specificationVersion": 4, "metadataOutputVersion": "3.0", "isUpdatable": "0",
    "inputSchema": [{"name": "data", "type": "MultiArray", "dataType": "Float32", "shape": "[2, 4, 4]"}],
    "outputSchema": [{"name": "prob", "type": "MultiArray", "dataType": "Float32", "shape": "[2]"}],
    "modelType": {"name": "MLModelType_neuralNetwork"}}]
]])
  return path
end

-- Broken programs, each refused with one line naming the file.
function X.corrupt(dir, out, pkg)
  local good = PB.pte{ methods = { { name = "forward", delegates = { { data = pkg, specs = X.SPECS } } } } }
  -- root offset past the end
  out.bad_root = write(dir, "bad_root.pte", string.pack("<I4", #good + 100) .. good:sub(5))
  -- the root table's vtable offset points before the file
  local root = string.unpack("<I4", good)
  out.bad_vtable = write(dir, "bad_vtable.pte", good:sub(1, root) .. string.pack("<i4", root + 1000) .. good:sub(root + 5))
  -- a segment past the end of the file
  local seg = PB.pte{ header = 32, methods = { { name = "forward", delegates = { { data = pkg } } } } }
  out.bad_segment = write(dir, "bad_segment.pte", seg:sub(1, #seg - 200))
  -- node trees: a cycle (the root lists itself) and a name escaping the root
  local function tree_pte(name, json_edit)
    local payload = PB.flatten(X.package_tree(), { json = json_edit })
    return write(dir, name, PB.pte{ header = 32, methods = { { name = "forward", delegates = { { data = payload } } } } })
  end
  out.cycle = tree_pte("cycle.pte", function(j)
    local n = select(2, j:gsub('"name"', ""))
    return (j:gsub('("children":{[^}]*)(},"dataRegion":{[^}]*},"kind":1,"name":"lowered_module"}%]})$', '%1,"self":' .. (n - 1) .. '%2'))
  end)
  out.escape = tree_pte("escape.pte", function(j) return (j:gsub('"metadata%.json"', '"..%%2F..%%2Fescaped"'):gsub("%%2F", "/")) end)
  out.dotdot = tree_pte("dotdot.pte", function(j) return (j:gsub('"metadata%.json"', '".."')) end)
  out.not_pte = write(dir, "notes.pte", "this is not an ExecuTorch program at all\n")
  out.et11 = write(dir, "et11.pte", good:sub(1, 4) .. "ET11" .. good:sub(9))
  local t = X.package_tree()
  t.children[2].children[1].data = "{ not json"
  out.bad_manifest = write(dir, "bad_manifest.pte", PB.pte{ header = 32, methods = { { name = "forward",
    delegates = { { data = PB.flatten(t) } } } } })
end

return X
