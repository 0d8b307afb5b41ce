-- Tests for mlsh.spec (core/spec.c via core/lua_spec.c). Expected values come from
-- /work/shared/reference/coreml-versions.md §1-2 and coreml-format.md §1, §4.
local spec = require("mlsh.spec")

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

-- Asserts f(...) returns nil plus a message matching pattern.
local function fails(pattern, f, ...)
  local v, msg = f(...)
  assert.is_nil(v)
  assert.is_string(msg)
  if pattern then assert.is_truthy(msg:find(pattern), "message '" .. msg .. "' does not match '" .. pattern .. "'") end
end

describe("mlsh.spec info", function()
  it("gives the spec 9 row of the version table", function()
    local i = spec.info(9)
    assert.same({"multiple functions", "states", "iOS18 compression ops", "SDPA"}, i.features)
    i.features = nil
    assert.same({spec = 9, ios = "18", macos = "15", tvos = "18", watchos = "11", coreml = "8", opset = "CoreML8",
                 mil_tag = "ios18", mil_tag_verified = true, ct_target = true, mlprogram = true, target = "iOS18"}, i)
  end)

  it("links spec 7 with iOS16, macOS13, tvOS16, watchOS9, Core ML 6, CoreML6 and ios16", function()
    local i = spec.info(7)
    assert.equal("16", i.ios)
    assert.equal("13", i.macos)
    assert.equal("16", i.tvos)
    assert.equal("9", i.watchos)
    assert.equal("6", i.coreml)
    assert.equal("CoreML6", i.opset)
    assert.equal("ios16", i.mil_tag)
    assert.equal("iOS16", i.target)
    assert.equal("1.0", i.visionos)
    assert.matches("observed", i.os_note)
    assert.is_true(contains(i.features, "FLOAT16 multiarray"))
    assert.is_true(contains(i.features, "constexpr compression ops"))
  end)

  it("has every row of the table", function()
    local expect = {
      {"11", "10.13", "11", "4", "1", nil, nil},
      {"11.2", "10.13.2", "11.2", "4.2", "1.2", nil, nil},
      {"12", "10.14", "12", "5", "2", nil, nil},
      {"13", "10.15", "13", "6", "3", "CoreML3", nil},
      {"14", "11", "14", "7", "4", "CoreML4", nil},
      {"15", "12", "15", "8", "5", "CoreML5", "ios15"},
      {"16", "13", "16", "9", "6", "CoreML6", "ios16"},
      {"17", "14", "17", "10", "7", "CoreML7", "ios17"},
      {"18", "15", "18", "11", "8", "CoreML8", "ios18"},
      {"26", "26", "26", "26", "9", "CoreML9", "ios26"},
    }
    local all = spec.all()
    assert.equal(10, #all)
    for n, e in ipairs(expect) do
      local i = all[n]
      assert.equal(n, i.spec)
      assert.same({e[1], e[2], e[3], e[4], e[5]}, {i.ios, i.macos, i.tvos, i.watchos, i.coreml})
      assert.equal(e[6], i.opset)
      assert.equal(e[7], i.mil_tag)
      assert.equal(n >= 6, i.mlprogram)
      assert.equal(n >= 4, i.ct_target)
      assert.is_true(#i.features >= 1)
    end
  end)

  it("names the MIL opset after the Core ML version", function()
    for n = 4, 10 do
      local i = spec.info(n)
      assert.equal("CoreML" .. i.coreml, i.opset)
    end
  end)

  it("marks what the reference leaves unverified or absent", function()
    assert.is_false(spec.info(10).mil_tag_verified)
    assert.equal("26", spec.info(10).visionos)
    assert.is_nil(spec.info(8).visionos)
    assert.is_nil(spec.info(9).visionos)
    assert.is_nil(spec.info(6).visionos)
    assert.is_nil(spec.info(3).opset)
    assert.is_nil(spec.info(5).mil_tag)
    assert.same({"Int8 MultiArray I/O for ML programs"}, spec.info(10).features)
  end)

  it("accepts the string forms resolve() takes", function()
    assert.equal(8, spec.info("iOS17").spec)
    assert.equal(8, spec.info("CoreML7").spec)
    assert.equal(6, spec.info("ios15").spec)
    assert.equal(5, spec.info("macOS11").spec)
  end)

  it("returns nil and a message for unknown versions", function()
    fails("outside 1..10", spec.info, 0)
    fails("outside 1..10", spec.info, 11)
    fails("ambiguous", spec.info, "7")
    fails("cannot resolve", spec.info, "Android 14")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() spec.info(7.5) end)
    assert.has_error(function() spec.info({}) end)
    assert.has_error(function() spec.info(nil) end)
    assert.has_error(function() spec.info(true) end)
  end)

  it("exports the constants", function()
    assert.equal(1, spec.MIN)
    assert.equal(10, spec.MAX)
    assert.equal(4, spec.MIN_NEURALNETWORK)
    assert.equal(6, spec.MIN_MLPROGRAM)
  end)
end)

describe("mlsh.spec.from_target", function()
  it("maps every coremltools ct.target member and alias", function()
    local targets = {
      iOS13 = 4, iOS14 = 5, iOS15 = 6, iOS16 = 7, iOS17 = 8, iOS18 = 9, iOS26 = 10,
      macOS10_15 = 4, macOS10_16 = 5, macOS11 = 5, macOS12 = 6, macOS13 = 7, macOS14 = 8, macOS15 = 9, macOS26 = 10,
      watchOS6 = 4, watchOS7 = 5, watchOS8 = 6, watchOS9 = 7, watchOS10 = 8, watchOS11 = 9, watchOS26 = 10,
      tvOS13 = 4, tvOS14 = 5, tvOS15 = 6, tvOS16 = 7, tvOS17 = 8, tvOS18 = 9, tvOS26 = 10,
    }
    for name, n in pairs(targets) do assert.equal(n, spec.from_target(name), name) end
  end)

  it("parses deployment-target strings", function()
    local cases = {
      ["iOS16"] = 7, ["iOS 16"] = 7, ["ios16.4"] = 7, ["IOS16"] = 7, ["  iOS 17.5 "] = 8, ["iOS_18"] = 9,
      ["macOS13"] = 7, ["macOS 14"] = 8, ["macOS10.15"] = 4, ["macOS 10.15.7"] = 4, ["macOS10.16"] = 5,
      ["macOS10.13"] = 1, ["macOS10.13.2"] = 2, ["macOS10_13_2"] = 2, ["macOS10.14"] = 3,
      ["iOS11"] = 1, ["iOS11.1"] = 1, ["iOS11.2"] = 2, ["iOS11_2"] = 2, ["iOS 11.4"] = 2, ["iOS12"] = 3,
      ["iOS26"] = 10, ["iOS26.1"] = 10, ["tvOS11.2"] = 2, ["watchOS4"] = 1, ["watchOS4.2"] = 2, ["watchOS 5"] = 3,
      ["visionOS1"] = 7, ["visionOS 1.2"] = 7, ["visionOS26"] = 10, ["iPadOS17"] = 8, ["macCatalyst16"] = 7,
      ["coremltools.target.iOS17"] = 8, ["ct.target.macOS14"] = 8, ["ios17"] = 8,
    }
    for s, n in pairs(cases) do assert.equal(n, spec.from_target(s), s) end
  end)

  it("returns nil and a message for strings it cannot use", function()
    fails("unknown deployment target", spec.from_target, "foo")
    fails("unknown deployment target", spec.from_target, "")
    fails("unknown deployment target", spec.from_target, "Android14")
    fails("cannot read the OS version", spec.from_target, "iOS")
    fails("cannot read the OS version", spec.from_target, "iOS16x")
    fails("cannot read the OS version", spec.from_target, "iOS 16 beta")
    fails("not in the version table", spec.from_target, "iOS19")
    fails("not in the version table", spec.from_target, "iOS27")
    fails("not in the version table", spec.from_target, "macOS10.17")
    fails("not in the version table %(known: 1, 26%)", spec.from_target, "visionOS2")
    fails("predates Core ML", spec.from_target, "iOS10")
    fails("predates Core ML", spec.from_target, "macOS10_12")
    fails("predates Core ML", spec.from_target, "watchOS3")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() spec.from_target(16) end)
    assert.has_error(function() spec.from_target(nil) end)
    assert.has_error(function() spec.from_target({"iOS16"}) end)
  end)
end)

describe("mlsh.spec.target_name", function()
  it("names iOS targets in ct.target style", function()
    assert.equal("iOS16", spec.target_name(7))
    assert.equal("iOS18", spec.target_name(9))
    assert.equal("iOS26", spec.target_name(10))
    assert.equal("iOS11", spec.target_name(1))
    assert.equal("iOS11_2", spec.target_name(2))
    assert.equal("iOS13", spec.target_name(4))
  end)

  it("names other platforms", function()
    assert.equal("macOS10_15", spec.target_name(4, "macOS"))
    assert.equal("macOS11", spec.target_name(5, "macOS"))
    assert.equal("macOS10_13_2", spec.target_name(2, "macos"))
    assert.equal("tvOS16", spec.target_name(7, "tvOS"))
    assert.equal("watchOS9", spec.target_name(7, "watchOS"))
    assert.equal("visionOS1", spec.target_name(7, "visionOS"))
    assert.equal("iOS17", spec.target_name(8, "iPadOS"))
  end)

  it("round-trips with from_target on every platform", function()
    for n = 1, 10 do
      for _, p in ipairs({"iOS", "macOS", "tvOS", "watchOS", "visionOS"}) do
        local name = spec.target_name(n, p)
        if name then assert.equal(n, spec.from_target(name), name) end
      end
    end
  end)

  it("returns nil and a message when there is no such name", function()
    fails("no visionOS version", spec.target_name, 8, "visionOS")
    fails("no visionOS version", spec.target_name, 1, "visionOS")
    fails("outside 1..10", spec.target_name, 0)
    fails("outside 1..10", spec.target_name, 11)
    fails("unknown platform", spec.target_name, 7, "android")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() spec.target_name("7") end)
    assert.has_error(function() spec.target_name(7, 5) end)
    assert.has_error(function() spec.target_name(nil) end)
  end)
end)

describe("mlsh.spec opsets, model.mil tags and Core ML versions", function()
  it("maps opset strings to spec versions and back", function()
    for n = 4, 10 do
      local name = "CoreML" .. (n - 1)
      assert.equal(n, spec.opset_spec(name))
      assert.equal(name, spec.opset_name(n))
    end
    assert.equal(8, spec.opset_spec("CoreML7"))
    assert.equal(8, spec.opset_spec("coreml7"))
  end)

  it("maps model.mil tags to spec versions and back", function()
    assert.equal(6, spec.mil_tag_spec("ios15"))
    assert.equal(7, spec.mil_tag_spec("ios16"))
    assert.equal(8, spec.mil_tag_spec("ios17"))
    assert.equal(9, spec.mil_tag_spec("ios18"))
    assert.equal(10, spec.mil_tag_spec("ios26"))
    assert.equal("ios16", spec.mil_tag(7))
    assert.equal("ios18", spec.mil_tag(9))
  end)

  it("maps Core ML versions to spec versions", function()
    assert.equal(8, spec.coreml_spec("7"))
    assert.equal(2, spec.coreml_spec("1.2"))
    assert.equal(1, spec.coreml_spec("1"))
    assert.equal(7, spec.coreml_spec("Core ML 6"))
    assert.equal(6, spec.coreml_spec("5.0"))
    assert.equal(10, spec.coreml_spec("9"))
  end)

  it("resolves every form to a spec version", function()
    assert.equal(8, spec.resolve(8))
    assert.equal(8, spec.resolve("CoreML7"))
    assert.equal(8, spec.resolve("ios17"))
    assert.equal(8, spec.resolve("macOS14"))
    assert.equal(2, spec.resolve("Core ML 1.2"))
    assert.equal(3, spec.resolve("CoreML2")) -- Core ML 2, though no opset has that name
  end)

  it("returns nil and a message for unknown names", function()
    fails("unknown MIL opset", spec.opset_spec, "CoreML2")
    fails("unknown MIL opset", spec.opset_spec, "CoreML10")
    fails("unknown MIL opset", spec.opset_spec, "iOS17")
    fails("no MIL opset", spec.opset_name, 3)
    fails("outside", spec.opset_name, 12)
    fails("unknown model.mil opset tag", spec.mil_tag_spec, "ios14")
    fails("unknown model.mil opset tag", spec.mil_tag_spec, "CoreML7")
    fails("no model.mil tag", spec.mil_tag, 5)
    fails("unknown Core ML version", spec.coreml_spec, "10")
    fails("cannot read Core ML version", spec.coreml_spec, "seven")
    fails("outside", spec.resolve, 0)
    fails("ambiguous", spec.resolve, "8")
    fails("cannot resolve", spec.resolve, "")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() spec.opset_spec(7) end)
    assert.has_error(function() spec.opset_name("8") end)
    assert.has_error(function() spec.mil_tag_spec(nil) end)
    assert.has_error(function() spec.mil_tag("ios17") end)
    assert.has_error(function() spec.coreml_spec(7) end)
    assert.has_error(function() spec.resolve(8.5) end)
    assert.has_error(function() spec.resolve({}) end)
  end)
end)

describe("mlsh.spec NeuralNetwork layers", function()
  it("gives the minimum spec of layer types", function()
    local cases = {
      convolution = 1, innerProduct = 1, pooling = 1, uniDirectionalLSTM = 1, reorganizeData = 1, upsample = 1,
      custom = 2, resizeBilinear = 3, cropResize = 3,
      gather = 4, gatherND = 4, addBroadcastable = 4, multiplyBroadcastable = 4, concatND = 4, splitND = 4,
      loadConstantND = 4, softmaxND = 4, batchedMatmul = 4, branch = 4, loop = 4, loopBreak = 4, loopContinue = 4,
      tile = 4, sliceStatic = 4, sliceDynamic = 4, layerNormalization = 4, NonMaximumSuppression = 4, gelu = 4,
      oneHot = 5, cumSum = 5, clampedReLU = 5, argSort = 5, pooling3d = 5, globalPooling3d = 5, sliceBySize = 5,
      convolution3d = 5,
    }
    for name, n in pairs(cases) do assert.equal(n, spec.nn_layer_min_spec(name), name) end
  end)

  it("puts only custom at 2, only resizeBilinear and cropResize at 3 and the iOS14 layers at 5", function()
    local by = {}
    for _, name in ipairs(spec.nn_layers()) do
      local n = spec.nn_layer_min_spec(name)
      by[n] = by[n] or {}
      table.insert(by[n], name)
    end
    assert.same({"custom"}, by[2])
    assert.same({"cropResize", "resizeBilinear"}, sorted(by[3]))
    assert.same(sorted({"oneHot", "cumSum", "clampedReLU", "argSort", "pooling3d", "globalPooling3d", "sliceBySize",
                        "convolution3d"}), sorted(by[5]))
    assert.equal(36, #by[1])
    for name in pairs(by) do assert.is_true(name >= 1 and name <= 5) end
  end)

  it("applies conditional bumps from a description of the layer", function()
    assert.equal(1, spec.nn_layer_min_spec("convolution", {n_inputs = 1}))
    assert.equal(4, spec.nn_layer_min_spec("convolution", {n_inputs = 2}))
    assert.equal(5, spec.nn_layer_min_spec("innerProduct", {int8_dynamic_quantize = true}))
    assert.equal(1, spec.nn_layer_min_spec("innerProduct", {int8_dynamic_quantize = false}))
    assert.equal(5, spec.nn_layer_min_spec("batchedMatmul", {int8_dynamic_quantize = true}))
    assert.equal(5, spec.nn_layer_min_spec("reorganizeData", {mode = "PIXEL_SHUFFLE"}))
    assert.equal(1, spec.nn_layer_min_spec("reorganizeData", {mode = "SPACE_TO_DEPTH"}))
    assert.equal(5, spec.nn_layer_min_spec("upsample", {linear_upsample_mode = "ALIGN_CORNERS_TRUE"}))
    assert.equal(5, spec.nn_layer_min_spec("upsample", {fractional_scaling_factor = true}))
    assert.equal(5, spec.nn_layer_min_spec("tile", {n_inputs = 2}))
    assert.equal(5, spec.nn_layer_min_spec("sliceDynamic", {n_inputs = 7}))
    assert.equal(5, spec.nn_layer_min_spec("sliceStatic", {squeeze_masks = true}))
    assert.equal(5, spec.nn_layer_min_spec("concatND", {interleave = true}))
    assert.equal(4, spec.nn_layer_min_spec("gather", {n_inputs = 2}))
  end)

  it("describes a layer with its field number and bumps", function()
    local l = spec.nn_layer("convolution")
    assert.equal("convolution", l.name)
    assert.equal(100, l.field)
    assert.equal(1, l.min_spec)
    assert.same({id = "n_inputs", value = 2, min_spec = 4}, {id = l.bumps[1].id, value = l.bumps[1].value,
                                                           min_spec = l.bumps[1].min_spec})
    assert.same({"PIXEL_SHUFFLE"}, spec.nn_layer("reorganizeData").bumps[1].values)
    assert.same({}, spec.nn_layer("gather").bumps)
  end)

  it("looks layers up by field number and case-insensitively", function()
    assert.equal(4, spec.nn_layer_min_spec(930))
    assert.equal(5, spec.nn_layer_min_spec(1471))
    assert.equal("gather", spec.nn_layer(930).name)
    assert.equal(4, spec.nn_layer_min_spec("GATHER"))
    assert.equal("addBroadcastable", spec.nn_layer("addbroadcastable").name)
  end)

  it("covers every layer of the project's NeuralNetworkLayer oneof", function()
    local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
    local f = io.open(here .. "../core/proto/coreml.proto")
    assert.is_not_nil(f, "core/proto/coreml.proto not found")
    local text = f:read("a")
    f:close()
    local body = text:match("oneof layer%s*(%b{})")
    assert.is_string(body)
    local n = 0
    for name, field in body:gmatch("[%w_]+%s+([%w_]+)%s*=%s*(%d+)%s*;") do
      n = n + 1
      local l = spec.nn_layer(name)
      assert.is_table(l, name)
      assert.equal(tonumber(field), l.field, name)
    end
    assert.equal(n, #spec.nn_layers())
  end)

  it("has unique names and field numbers", function()
    local names, fields = {}, {}
    for _, name in ipairs(spec.nn_layers()) do
      local l = spec.nn_layer(name)
      assert.is_nil(names[name])
      assert.is_nil(fields[l.field])
      names[name], fields[l.field] = true, true
    end
  end)

  it("returns nil and a message for unknown layers", function()
    fails("unknown NeuralNetwork layer type 'nope'", spec.nn_layer_min_spec, "nope")
    fails("no NeuralNetwork layer has field number 12345", spec.nn_layer_min_spec, 12345)
    fails("unknown NeuralNetwork layer type", spec.nn_layer, "conv")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() spec.nn_layer_min_spec(nil) end)
    assert.has_error(function() spec.nn_layer_min_spec({}) end)
    assert.has_error(function() spec.nn_layer_min_spec(9.5) end)
    assert.has_error(function() spec.nn_layer_min_spec("gather", "props") end)
    assert.has_error(function() spec.nn_layer(true) end)
  end)
end)

describe("mlsh.spec features and enums", function()
  it("gives feature-level minimum spec versions", function()
    local cases = {
      custom_layer = 2, fp16_weights = 2, custom_model = 3, quantized_weights = 3, flexible_shapes = 3,
      nd_array = 4, nd_layers = 4, control_flow = 4, nearest_neighbors = 4, linked_model = 4, updatable = 4,
      nn_ios14_layers = 5, ml_program = 6, fp16_multiarray = 7, grayscale_float16_image = 7, compression = 7,
      activation_quantization = 8, class_confidence_thresholding = 8, states = 9, multiple_functions = 9,
      empty_inputs = 9, multiple_enumerated_inputs = 9, int8_multiarray = 10,
    }
    for id, n in pairs(cases) do assert.equal(n, spec.feature_min_spec(id), id) end
  end)

  it("lists well-formed features with unique ids", function()
    local seen = {}
    local list = spec.features()
    assert.is_true(#list >= 23)
    for _, f in ipairs(list) do
      assert.is_string(f.id)
      assert.is_string(f.text)
      assert.is_string(f.ref)
      assert.is_true(f.min_spec >= 1 and f.min_spec <= 10)
      assert.is_nil(seen[f.id])
      seen[f.id] = true
      assert.same(f, spec.feature(f.id))
    end
  end)

  it("gives ArrayDataType minimum spec versions by name and value", function()
    assert.equal(7, spec.array_dtype_min_spec("FLOAT16"))
    assert.equal(7, spec.array_dtype_min_spec(65552))
    assert.equal(10, spec.array_dtype_min_spec("INT8"))
    assert.equal(10, spec.array_dtype_min_spec(131080))
    assert.equal(1, spec.array_dtype_min_spec("FLOAT32"))
    assert.equal(1, spec.array_dtype_min_spec("DOUBLE"))
    assert.equal(1, spec.array_dtype_min_spec("int32"))
    assert.same({name = "FLOAT16", value = 65552, min_spec = 7}, spec.array_dtype("FLOAT16"))
    assert.equal(6, #spec.enums("array_dtype"))
  end)

  it("gives color space and model type minimum spec versions", function()
    assert.equal(7, spec.colorspace_min_spec("GRAYSCALE_FLOAT16"))
    assert.equal(7, spec.colorspace_min_spec(40))
    assert.equal(1, spec.colorspace_min_spec("RGB"))
    assert.equal(6, spec.model_type_min_spec("mlProgram"))
    assert.equal(6, spec.model_type_min_spec(502))
    assert.equal(8, spec.model_type_min_spec("classConfidenceThresholding"))
    assert.equal(4, spec.model_type_min_spec("kNearestNeighborsClassifier"))
    assert.equal(3, spec.model_type_min_spec("customModel"))
    assert.equal(6, spec.model_type_min_spec("audioFeaturePrint"))
  end)

  it("returns nil and a message for unknown features and enum values", function()
    fails("unknown feature 'warp_drive'", spec.feature_min_spec, "warp_drive")
    fails("unknown feature", spec.feature, "nope")
    fails("unknown array_dtype 'FLOAT64'", spec.array_dtype_min_spec, "FLOAT64")
    fails("unknown array_dtype value 7", spec.array_dtype_min_spec, 7)
    fails("unknown colorspace", spec.colorspace_min_spec, "CMYK")
    fails("unknown model_type", spec.model_type_min_spec, "transformer")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() spec.feature_min_spec(7) end)
    assert.has_error(function() spec.feature(nil) end)
    assert.has_error(function() spec.array_dtype_min_spec({}) end)
    assert.has_error(function() spec.colorspace(true) end)
    assert.has_error(function() spec.model_type_min_spec(nil) end)
    assert.has_error(function() spec.enums("bogus") end)
    assert.has_error(function() spec.enums(1) end)
  end)
end)
