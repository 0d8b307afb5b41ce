-- Fixtures for the rules, the placement simulator and required_spec: for each problem a small model
-- that has it and its fixed twin, written with mlsh's own protobuf / blob writers (no corpus files).
--   local R = require "rule_fixtures"
--   local fx = R.shared()          -- built once under build/test-fixtures-rules
--   fx.fp32, fx.fp32_fixed, ...    -- paths; R.PAIRS lists {rule, bad, good, opts}
local core = require "mlsh.core"
local F = require "fixtures"
local P, fs = core.proto, core.fs

local R = {}

local DTYPE = { fp16 = "FLOAT16", fp32 = "FLOAT32", int32 = "INT32", bool = "BOOL", string = "STRING", uint8 = "UINT8",
                int8 = "INT8", int16 = "INT16", uint16 = "UINT16", uint32 = "UINT32", uint4 = "UINT4", int4 = "INT4" }
R.DTYPE = DTYPE
local ARRAY = { fp16 = "FLOAT16", fp32 = "FLOAT32", int32 = "INT32", fp64 = "DOUBLE", int8 = "INT8" }

local function tensor_type(vt, dtype, shape)
  local t = vt:mutable("tensorType")
  t.dataType, t.rank = DTYPE[dtype] or dtype, #shape
  for _, d in ipairs(shape) do
    local dim = t:add("dimensions")
    if d < 0 then dim:mutable("unknown").variadic = false else dim:mutable("constant").size = d end
  end
end

-- An immediate MIL value: scalar when shape = {}.
function R.value(dtype, shape, values)
  local v = P.new("CoreML.Specification.MILSpec.Value")
  tensor_type(v:mutable("type"), dtype, shape)
  local tv = v:mutable("immediateValue"):mutable("tensor")
  if type(values) ~= "table" then values = { values } end
  if dtype == "fp32" then tv:mutable("floats").values = values
  elseif dtype == "int32" then tv:mutable("ints").values = values
  elseif dtype == "bool" then tv:mutable("bools").values = values
  elseif dtype == "string" then tv:mutable("strings").values = values
  else tv:mutable("bytes").values = core.array.new(values):encode(dtype) end
  return v
end

-- A weight-file value (the blob need not exist: `weights` facts come from the type alone).
function R.blob(dtype, shape, offset)
  local v = P.new("CoreML.Specification.MILSpec.Value")
  tensor_type(v:mutable("type"), dtype, shape)
  local bf = v:mutable("blobFileValue")
  bf.fileName, bf.offset = "@model_path/weights/weight.bin", offset or 64
  return v
end

local function feature(owner, field, f)
  local fd = owner:add(field)
  fd.name = f.name
  if f.image then
    local im = fd:mutable("type"):mutable("imageType")
    im.width, im.height, im.colorSpace = f.image.width or 8, f.image.height or 8, f.image.color or "RGB"
    return fd
  end
  local arr = fd:mutable("type"):mutable("multiArrayType")
  arr.shape = f.shape
  arr.dataType = ARRAY[f.dtype] or "FLOAT32"
  if f.flex and f.flex.ranges then
    local sr = arr:mutable("shapeRange")
    for _, r in ipairs(f.flex.ranges) do
      local x = sr:add("sizeRanges")
      x.lowerBound, x.upperBound = r[1], r[2]
    end
  elseif f.flex and f.flex.enumerated then
    local es = arr:mutable("enumeratedShapes")
    for _, s in ipairs(f.flex.enumerated) do es:add("shapes").shape = s end
  end
  return fd
end

-- An ML program from a declarative description:
--   {spec = 7, opset = "CoreML6", inputs = {{name, dtype, shape, flex?, image?, mil_shape?}},
--    outputs = {{name, dtype, shape}}, ops = {{type, name, inputs = {param = "var" | Value},
--    attrs = {k = Value}, out = {name, dtype, shape} | {{...}, ...}}}, block_outputs = {"y"}}
-- Returns the spec Message.
function R.program(d)
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = d.spec or 7
  local desc = m:mutable("description")
  for _, f in ipairs(d.inputs or {}) do feature(desc, "input", f) end
  for _, f in ipairs(d.outputs or {}) do feature(desc, "output", f) end
  local prog = m:mutable("mlProgram")
  prog.version = 1
  local opset = d.opset or "CoreML6"
  local fe = prog:add("functions")
  fe.key = "main"
  local fn = fe:mutable("value")
  fn.opset = opset
  for _, f in ipairs(d.inputs or {}) do
    local nv = fn:add("inputs")
    nv.name = f.name
    local shape = f.mil_shape or f.shape or { 1, 3, f.image and f.image.height or 8, f.image and f.image.width or 8 }
    tensor_type(nv:mutable("type"), f.image and "fp32" or f.dtype or "fp32", shape)
  end
  local be = fn:add("block_specializations")
  be.key = opset
  local block = be:mutable("value")
  block.outputs = d.block_outputs or { (d.outputs[1] or {}).name }
  for _, o in ipairs(d.ops) do
    local op = block:add("operations")
    op.type = o.type
    local a = op:add("attributes")
    a.key, a.value = "name", R.value("string", {}, o.name)
    for k, v in pairs(o.attrs or {}) do
      local e = op:add("attributes")
      e.key, e.value = k, v
    end
    local params = {}
    for k in pairs(o.inputs or {}) do params[#params + 1] = k end
    table.sort(params)
    for _, k in ipairs(params) do
      local src = o.inputs[k]
      local e = op:add("inputs")
      e.key = k
      local binding = e:mutable("value"):add("arguments")
      if type(src) == "string" then binding.name = src else binding.value = src end
    end
    local outs = o.out
    if outs and type(outs[1]) == "string" then outs = { outs } end
    for _, out in ipairs(outs or {}) do
      local nv = op:add("outputs")
      nv.name = out[1]
      tensor_type(nv:mutable("type"), out[2], out[3])
    end
  end
  return m
end

-- const op helper
function R.const(name, value_msg, dtype, shape)
  return { type = "const", name = name, attrs = { val = value_msg }, out = { name, dtype, shape } }
end

-- ---- the standard small ML programs -------------------------------------------------------------

-- x -> [cast] -> linear(W, b) -> relu -> [cast] -> y.  opts: compute ("fp16"|"fp32"), io ("fp16"|"fp32"),
-- spec, opset, extra_ops (inserted before relu, consuming "lin" and producing "lin"), shape.
function R.mlp(opts)
  opts = opts or {}
  local compute, io = opts.compute or "fp16", opts.io or "fp32"
  local ops = {}
  local x = "x"
  if io ~= compute then
    ops[#ops + 1] = R.const("x_dtype", R.value("string", {}, compute), "string", {})
    ops[#ops + 1] = { type = "cast", name = "cast_in", inputs = { x = "x", dtype = "x_dtype" }, out = { "x_c", compute, { 1, 16 } } }
    x = "x_c"
  end
  ops[#ops + 1] = R.const("W", R.blob(compute, { 8, 16 }, 64), compute, { 8, 16 })
  ops[#ops + 1] = R.const("b", R.value(compute, { 8 }, F.seq(8)), compute, { 8 })
  ops[#ops + 1] = { type = "linear", name = "linear_0", inputs = { x = x, weight = "W", bias = "b" }, out = { "lin", compute, { 1, 8 } } }
  for _, o in ipairs(opts.extra_ops or {}) do ops[#ops + 1] = o end
  local last = io ~= compute and "y_c" or "y"
  ops[#ops + 1] = { type = "relu", name = "relu_0", inputs = { x = opts.relu_input or "lin" }, out = { last, compute, { 1, 8 } } }
  if io ~= compute then
    ops[#ops + 1] = R.const("y_dtype", R.value("string", {}, io), "string", {})
    ops[#ops + 1] = { type = "cast", name = "cast_out", inputs = { x = "y_c", dtype = "y_dtype" }, out = { "y", io, { 1, 8 } } }
  end
  return R.program { spec = opts.spec or (io == "fp16" and 7 or 6), opset = opts.opset or (io == "fp16" and "CoreML6" or "CoreML5"),
    inputs = { { name = "x", dtype = io, shape = { 1, 16 }, flex = opts.flex } }, outputs = { { name = "y", dtype = io, shape = { 1, 8 } } },
    ops = ops }
end

-- x -> conv(d1) -> relu -> conv(dilation) -> relu -> conv(d1) -> y (fp16 body, fp32 I/O).
function R.convnet(opts)
  opts = opts or {}
  local dil = opts.dilation or 1
  local ops = {
    R.const("x_dtype", R.value("string", {}, "fp16"), "string", {}),
    { type = "cast", name = "cast_in", inputs = { x = "x", dtype = "x_dtype" }, out = { "x16", "fp16", { 1, 3, 32, 32 } } },
  }
  local prev = "x16"
  for i = 1, 3 do
    local d = (i == 2) and dil or 1
    local cin = i == 1 and 3 or 8
    ops[#ops + 1] = R.const("w" .. i, R.blob("fp16", { 8, cin, 3, 3 }, 64 * i), "fp16", { 8, cin, 3, 3 })
    ops[#ops + 1] = R.const("dil" .. i, R.value("int32", { 2 }, { d, d }), "int32", { 2 })
    ops[#ops + 1] = R.const("pad_type" .. i, R.value("string", {}, "same"), "string", {})
    ops[#ops + 1] = { type = "conv", name = "conv" .. i, inputs = { x = prev, weight = "w" .. i, dilations = "dil" .. i,
      pad_type = "pad_type" .. i }, out = { "c" .. i, "fp16", { 1, 8, 32, 32 } } }
    ops[#ops + 1] = { type = "relu", name = "relu" .. i, inputs = { x = "c" .. i }, out = { "r" .. i, "fp16", { 1, 8, 32, 32 } } }
    prev = "r" .. i
  end
  ops[#ops + 1] = R.const("y_dtype", R.value("string", {}, "fp32"), "string", {})
  ops[#ops + 1] = { type = "cast", name = "cast_out", inputs = { x = prev, dtype = "y_dtype" }, out = { "y", "fp32", { 1, 8, 32, 32 } } }
  return R.program { spec = 6, opset = "CoreML5", inputs = { { name = "x", dtype = "fp32", shape = { 1, 3, 32, 32 } } },
    outputs = { { name = "y", dtype = "fp32", shape = { 1, 8, 32, 32 } } }, ops = ops }
end

-- A NeuralNetwork model: F.nn_model plus optional extra layers / image input.
--   opts as F.nn_model, plus lstm, nd, random, image = {preprocess = bool}
function R.nn(opts)
  opts = opts or {}
  local m = F.nn_model(opts)
  local nn = m.neuralNetwork
  if opts.lstm then
    local l = nn:add("layers")
    l.name, l.input, l.output = "lstm1", { "out" }, { "lstm_out", "h", "c" }
    local p = l:mutable("uniDirectionalLSTM")
    p.inputVectorSize, p.outputVectorSize = 4, 4
  end
  if opts.nd then
    local l = nn:add("layers")
    l.name, l.input, l.output = "add_bc", { "out", "out" }, { "added" }
    l:mutable("addBroadcastable")
  end
  if opts.random then
    local l = nn:add("layers")
    l.name, l.input, l.output = "noise", { "out" }, { "noise_out" }
    l:mutable("randomNormalLike")
  end
  if opts.image then
    local d = m.description
    d:clear("input")
    feature(d, "input", { name = "data", image = { width = 8, height = 8, color = "RGB" } })
    if opts.image.preprocess then
      local pre = nn:add("preprocessing")
      pre.featureName = "data"
      local s = pre:mutable("scaler")
      s.channelScale, s.redBias, s.greenBias, s.blueBias = 1 / 255, -0.485, -0.456, -0.406
    end
  end
  return m
end

-- ---- the fixture set ------------------------------------------------------------------------------

local function write_pkg(dir, name, spec)
  return F.write_package(dir .. "/" .. name, spec, nil)
end
local function write_model(dir, name, spec)
  local p = dir .. "/" .. name
  F.write(p, spec:encode())
  return p
end

-- Each pair: the rule must fire on `bad` and be silent on `good`; args are extra mlsh check options.
R.PAIRS = {
  { rule = "fp32-compute", bad = "fp32", good = "fp16" },
  { rule = "ane-coverage", bad = "dilated_prog", good = "undilated_prog" },
  { rule = "range-shapes", bad = "nn_range", good = "nn_enumerated" },
  { rule = "gather-embedding", bad = "nn_gather", good = "nn_plain" },
  { rule = "dilated-conv", bad = "dilated_prog", good = "undilated_prog" },
  { rule = "recurrent-layers", bad = "nn_lstm", good = "nn_plain" },
  { rule = "custom-layers", bad = "nn_custom", good = "nn_plain" },
  { rule = "nd-layers", bad = "nn_nd", good = "nn_plain" },
  { rule = "neuralnetwork-format", bad = "nn_plain", good = "fp16" },
  { rule = "deployment-target", bad = "spec8_prog", good = "fp16", args = "--target iOS16" },
  { rule = "spec-lowerable", bad = "spec8_prog", good = "fp16_spec6" },
  { rule = "weights-memory", bad = "huge_weights", good = "huge_weights_palettized" },
  { rule = "layout-limits", bad = "wide_input", good = "fp16" },
  { rule = "last-axis-one", bad = "last_axis_one", good = "last_axis_long" },
  { rule = "image-preprocessing", bad = "nn_image_raw", good = "nn_image_scaled" },
  { rule = "training-ops", bad = "dropout_prog", good = "fp16" },
  { rule = "op-not-in-opset", bad = "op_too_new", good = "op_in_opset" },
}

function R.build_all(dir)
  assert(fs.mkdir_p(dir))
  local fx = { dir = dir }
  -- precision
  fx.fp32 = write_pkg(dir, "mlp_fp32.mlpackage", R.mlp { compute = "fp32", io = "fp32" })
  fx.fp16 = write_pkg(dir, "mlp_fp16.mlpackage", R.mlp { compute = "fp16", io = "fp32", spec = 7, opset = "CoreML6" })
  fx.fp16_spec6 = write_pkg(dir, "mlp_fp16_spec6.mlpackage", R.mlp { compute = "fp16", io = "fp32" })
  fx.fp16_io = write_pkg(dir, "mlp_fp16_io.mlpackage", R.mlp { compute = "fp16", io = "fp16" })
  -- spec 8 program with nothing that needs more than spec 6
  fx.spec8_prog = write_pkg(dir, "mlp_spec8.mlpackage", R.mlp { compute = "fp16", io = "fp32", spec = 8, opset = "CoreML7" })
  -- dilated convolutions
  fx.dilated_prog = write_pkg(dir, "conv_dilated.mlpackage", R.convnet { dilation = 2 })
  fx.undilated_prog = write_pkg(dir, "conv_plain.mlpackage", R.convnet { dilation = 1 })
  -- neural networks
  fx.nn_plain = write_model(dir, "nn_plain.mlmodel", R.nn {})
  fx.nn_range = write_model(dir, "nn_range.mlmodel", R.nn { flex = { ranges = { { 3, 3 }, { 8, 64 }, { 8, -1 } } } })
  fx.nn_enumerated = write_model(dir, "nn_enumerated.mlmodel", R.nn { spec = 3, flex = { enumerated = { { 3, 8, 8 }, { 3, 16, 16 } } } })
  fx.nn_gather = write_model(dir, "nn_gather.mlmodel", R.nn { gather = true })
  fx.nn_dilated = write_model(dir, "nn_dilated.mlmodel", R.nn { dilation = 2 })
  fx.nn_lstm = write_model(dir, "nn_lstm.mlmodel", R.nn { lstm = true })
  fx.nn_custom = write_model(dir, "nn_custom.mlmodel", R.nn { custom = true })
  fx.nn_nd = write_model(dir, "nn_nd.mlmodel", R.nn { nd = true })
  fx.nn_random = write_model(dir, "nn_random.mlmodel", R.nn { random = true })
  fx.nn_image_raw = write_model(dir, "nn_image_raw.mlmodel", R.nn { image = { preprocess = false } })
  fx.nn_image_scaled = write_model(dir, "nn_image_scaled.mlmodel", R.nn { image = { preprocess = true } })
  fx.pipeline = write_model(dir, "pipeline.mlmodel", F.pipeline())
  -- a 4 GiB fp32 weight (declared by its type; the weight file is absent) and its 4-bit palettized twin
  local N, K = 65536, 16384
  fx.huge_weights = write_pkg(dir, "huge.mlpackage", R.program { spec = 6, opset = "CoreML5",
    inputs = { { name = "x", dtype = "fp32", shape = { 1, K } } }, outputs = { { name = "y", dtype = "fp32", shape = { 1, N } } },
    ops = { R.const("W", R.blob("fp32", { N, K }, 64), "fp32", { N, K }),
            { type = "linear", name = "linear_0", inputs = { x = "x", weight = "W" }, out = { "y", "fp32", { 1, N } } } } })
  fx.huge_weights_palettized = write_pkg(dir, "huge_palettized.mlpackage", R.program { spec = 7, opset = "CoreML6",
    inputs = { { name = "x", dtype = "fp32", shape = { 1, K } } }, outputs = { { name = "y", dtype = "fp32", shape = { 1, N } } },
    ops = { { type = "constexpr_lut_to_dense", name = "W_palettized",
              attrs = { indices = R.blob("uint8", { N * K // 2 }, 64), lut = R.value("fp32", { 16 }, F.seq(16)),
                        shape = R.value("uint32", { 2 }, { N, K }) }, out = { "W", "fp32", { N, K } } },
            { type = "linear", name = "linear_0", inputs = { x = "x", weight = "W" }, out = { "y", "fp32", { 1, N } } } } })
  -- layout limits: a 20000-wide input
  fx.wide_input = write_pkg(dir, "wide.mlpackage", R.program { spec = 6, opset = "CoreML5",
    inputs = { { name = "x", dtype = "fp32", shape = { 1, 20000 } } }, outputs = { { name = "y", dtype = "fp32", shape = { 1, 20000 } } },
    ops = { { type = "relu", name = "relu_0", inputs = { x = "x" }, out = { "y", "fp32", { 1, 20000 } } } } })
  fx.rank6 = write_pkg(dir, "rank6.mlpackage", R.program { spec = 6, opset = "CoreML5",
    inputs = { { name = "x", dtype = "fp32", shape = { 1, 64 } } }, outputs = { { name = "y", dtype = "fp32", shape = { 1, 2, 2, 2, 2, 4 } } },
    ops = { R.const("shape", R.value("int32", { 6 }, { 1, 2, 2, 2, 2, 4 }), "int32", { 6 }),
            { type = "reshape", name = "reshape_0", inputs = { x = "x", shape = "shape" }, out = { "y", "fp32", { 1, 2, 2, 2, 2, 4 } } } } })
  -- last axis 1
  local function axis_prog(shape)
    return R.program { spec = 7, opset = "CoreML6",
      inputs = { { name = "x", dtype = "fp16", shape = shape } }, outputs = { { name = "y", dtype = "fp16", shape = shape } },
      ops = { { type = "relu", name = "relu_0", inputs = { x = "x" }, out = { "y", "fp16", shape } } } }
  end
  fx.last_axis_one = write_pkg(dir, "last_axis_one.mlpackage", axis_prog({ 1, 8192, 1 }))
  fx.last_axis_long = write_pkg(dir, "last_axis_long.mlpackage", axis_prog({ 1, 1, 8192 }))
  -- training ops: random_bernoulli * x (an exported dropout)
  fx.dropout_prog = write_pkg(dir, "dropout.mlpackage", R.mlp { compute = "fp16", io = "fp32", spec = 7, opset = "CoreML6",
    relu_input = "dropped", extra_ops = {
      R.const("keep_shape", R.value("int32", { 2 }, { 1, 8 }), "int32", { 2 }),
      R.const("keep_prob", R.value("fp32", {}, 0.9), "fp32", {}),
      { type = "random_bernoulli", name = "dropout_mask", inputs = { shape = "keep_shape", prob = "keep_prob" }, out = { "mask", "fp16", { 1, 8 } } },
      { type = "mul", name = "dropout_0", inputs = { x = "lin", y = "mask" }, out = { "dropped", "fp16", { 1, 8 } } },
    } })
  -- an iOS17 op (resize) in an iOS15 opset, and the same in an iOS17 opset
  local function resize_prog(spec_n, opset)
    return R.program { spec = spec_n, opset = opset,
      inputs = { { name = "x", dtype = "fp32", shape = { 1, 3, 8, 8 } } }, outputs = { { name = "y", dtype = "fp32", shape = { 1, 3, 16, 16 } } },
      ops = { R.const("size", R.value("int32", { 2 }, { 16, 16 }), "int32", { 2 }),
              R.const("dims", R.value("int32", { 2 }, { -2, -1 }), "int32", { 2 }),
              { type = "resize", name = "resize_0", inputs = { x = "x", shape = "size", resized_dims = "dims" },
                out = { "y", "fp32", { 1, 3, 16, 16 } } } } }
  end
  fx.op_too_new = write_pkg(dir, "op_too_new.mlpackage", resize_prog(6, "CoreML5"))
  fx.op_in_opset = write_pkg(dir, "op_in_opset.mlpackage", resize_prog(8, "CoreML7"))
  -- ML program image input with and without the scale/bias ops coremltools inserts
  local function image_prog(pre)
    local ops = {}
    local src = "image"
    if pre then
      ops[#ops + 1] = R.const("scale", R.value("fp32", {}, 1 / 255), "fp32", {})
      ops[#ops + 1] = { type = "mul", name = "image_scaled", inputs = { x = "image", y = "scale" }, out = { "img_s", "fp32", { 1, 3, 8, 8 } } }
      src = "img_s"
    end
    ops[#ops + 1] = { type = "relu", name = "relu_0", inputs = { x = src }, out = { "y", "fp32", { 1, 3, 8, 8 } } }
    return R.program { spec = 6, opset = "CoreML5", inputs = { { name = "image", image = { width = 8, height = 8, color = "RGB" } } },
      outputs = { { name = "y", dtype = "fp32", shape = { 1, 3, 8, 8 } } }, ops = ops }
  end
  fx.prog_image_raw = write_pkg(dir, "image_raw.mlpackage", image_prog(false))
  fx.prog_image_scaled = write_pkg(dir, "image_scaled.mlpackage", image_prog(true))
  -- a gather between fp16 ops (an ANE cut) and a topk at the end (for team fallbacks)
  fx.gather_prog = write_pkg(dir, "gather_mid.mlpackage", R.mlp { compute = "fp16", io = "fp32", spec = 7, opset = "CoreML6",
    relu_input = "g", extra_ops = {
      R.const("idx", R.value("int32", { 8 }, { 0, 1, 2, 3, 4, 5, 6, 7 }), "int32", { 8 }),
      R.const("gaxis", R.value("int32", {}, 1), "int32", {}),
      { type = "gather", name = "gather_0", inputs = { x = "lin", indices = "idx", axis = "gaxis" }, out = { "g", "fp16", { 1, 8 } } },
    } })
  fx.topk_prog = write_pkg(dir, "topk.mlpackage", R.mlp { compute = "fp16", io = "fp32", spec = 7, opset = "CoreML6",
    relu_input = "tk", extra_ops = {
      R.const("k", R.value("int32", {}, 8), "int32", {}),
      { type = "topk", name = "topk_0", inputs = { x = "lin", k = "k" }, out = { { "tk", "fp16", { 1, 8 } }, { "tk_idx", "int32", { 1, 8 } } } },
    } })
  -- an op type no table knows
  fx.unknown_op = write_pkg(dir, "unknown_op.mlpackage", R.mlp { compute = "fp16", io = "fp32", spec = 7, opset = "CoreML6",
    relu_input = "u", extra_ops = {
      { type = "mlsh_mystery_op", name = "mystery_0", inputs = { x = "lin" }, out = { "u", "fp16", { 1, 8 } } } } })
  -- states / several functions (iOS18)
  local st = R.mlp { compute = "fp16", io = "fp16", spec = 9, opset = "CoreML8" }
  local sf = st.description:add("state")
  sf.name = "acc"
  local arr = sf:mutable("type"):mutable("stateType"):mutable("arrayType")
  arr.shape, arr.dataType = { 1, 8 }, "FLOAT16"
  fx.stateful = write_pkg(dir, "stateful.mlpackage", st)
  -- broken inputs
  fx.not_model = dir .. "/notes.mlmodel"
  F.write(fx.not_model, "not a model\n")
  return fx
end

local shared
function R.shared()
  if not shared then
    -- beside (not inside) fixtures.lua's folder: F.shared() wipes build/test-fixtures when it builds
    -- Not wiped first: files are replaced atomically with identical content, so a concurrent test
    -- run (another `make test`) never sees a missing fixture.
    local root = (os.getenv("MLSH_HOME") or ".") .. "/build/test-fixtures-rules"
    shared = R.build_all(root)
  end
  return shared
end

-- A scratch rules folder with the given files ({name = source}); returns its path.
function R.rules_dir(files)
  local d = F.tmpdir()
  for name, src in pairs(files) do F.write(d .. "/" .. name, src) end
  return d
end

return R
