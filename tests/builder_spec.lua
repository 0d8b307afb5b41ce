-- mlsh.builder: ML-program and NeuralNetwork builders, shape inference, spec-version choice,
-- determinism, and every error path (the builder's own and the writer's validation through it).
local mlsh = require "mlsh"
local core = require "mlsh.core"
local B = require "mlsh.builder"
local F = require "fixtures"

local L, Bk = B.layers, B.blocks
local home = os.getenv("MLSH_HOME") or "."
local root -- a fresh folder under build/ per run, so concurrent test runs do not collide

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function find_ops(m, typ)
  local out = {}
  for _, op in ipairs(m:ops()) do if op.type == typ then out[#out + 1] = op end end
  return out
end

local function shape(v) return table.concat(v.shape, ",") end

-- x [1, 3, 8, 8] -> conv(4) -> relu -> mean -> linear(2) -> y
local function tiny(o)
  o = o or {}
  local p = B.program { opset = o.opset or "iOS17", precision = o.precision or "fp16", spec = o.spec }
  local f = p:func("main")
  local x = f:input("x", o.dtype or "fp32", o.shape or { 1, 3, 8, 8 })
  local y = L.relu(f, L.conv(f, x, { name = "c", out = 4, k = 3 }))
  y = L.linear(f, L.global_avg_pool(f, y), { name = "fc", out = 2 })
  f:output("y", y, { dtype = o.out_dtype })
  return p, f
end

describe("builder", function()
  setup(function()
    assert(core.fs.mkdir_p(home .. "/build"))
    local p = io.popen("mktemp -d " .. F.q(home .. "/build/test-builder.XXXXXX"))
    root = p:read("l")
    p:close()
  end)
  teardown(function() core.fs.remove_tree(root) end)

  describe("ML programs", function()
    it("lays out an fp16 program like coremltools: casts at fp32 I/O, _to_fp16 weights, named param consts", function()
      local p = tiny()
      local path = p:save(root .. "/tiny.mlpackage")
      assert.equal(root .. "/tiny.mlpackage", path)
      local m <close> = mlsh.load(path)
      assert.equal(8, m.spec_version)
      assert.equal("mlProgram", m.model_type)
      local fn = m:functions()[1]
      assert.equal("CoreML7", fn.opset)
      local casts = find_ops(m, "cast")
      assert.equal(2, #casts)
      assert.equal("x", casts[1]:inputs()[1].name)
      assert.equal("x_to_fp16", casts[1].outputs[1].name)
      assert.equal("fp16", casts[1].outputs[1].dtype)
      assert.equal("y", casts[2].outputs[1].name)
      assert.equal("fp32", casts[2].outputs[1].dtype)
      local conv = find_ops(m, "conv")[1]
      assert.equal("conv_0_cast_fp16", conv.name)
      assert.equal("c_weight_to_fp16", conv:inputs()[2].name)
      local params = {}
      for _, a in ipairs(conv:inputs()) do params[#params + 1] = a.param end
      assert.same({ "x", "weight", "strides", "pad_type", "dilations", "groups" }, params)
      assert.equal("conv_0_strides_0", conv:inputs()[3].name)
      assert.same({ 1, 1 }, conv:arg("strides"))
      assert.equal("same", conv:arg("pad_type"))
      for _, op in ipairs(m:ops()) do assert.is_string(op:attr("name")) end
      assert.equal("fp32", m:inputs()[1].dtype)
      assert.equal("fp32", m:outputs()[1].dtype)
    end)

    it("keeps tensors of 10+ elements in weight.bin and smaller ones immediate", function()
      local p = B.program { opset = "iOS16" }
      local f = p:func("main")
      local x = f:input("x", "fp16", { 1, 9 })
      local big = f:const("big", B.random.normal { seed = 1, shape = { 10, 9 } })
      local small = f:const("small", B.ones({ 9 }))
      f:output("y", f:op("add", { x = f:op("linear", { x = x, weight = big }), y = f:op("reduce_sum", { x = small, axes = { 0 } }) }), { dtype = "fp16" })
      local m <close> = mlsh.load(p:save(root .. "/blobs.mlpackage"))
      local storage = {}
      for _, w in ipairs(m:weights()) do storage[w.name] = w.storage end
      assert.equal("blob", storage.big_to_fp16)
      local smallw = find_ops(m, "const")
      local found
      for _, op in ipairs(smallw) do if op.name == "small_to_fp16" then found = op end end
      assert.is_truthy(found)
      assert.is_nil(storage.small_to_fp16) -- 9 elements: an immediate parameter, not a weight
      local vals = m:weights()[1]:values()
      assert.equal(90, #vals)
    end)

    it("stores fp32 weights at fp32 precision and adds no casts", function()
      local p = tiny { precision = "fp32" }
      local m <close> = mlsh.load(p:save(root .. "/tiny32.mlpackage"))
      assert.equal(0, #find_ops(m, "cast"))
      for _, w in ipairs(m:weights()) do assert.equal("fp32", w.dtype) end
      assert.equal("c_weight", find_ops(m, "conv")[1]:inputs()[2].name)
    end)

    it("renames the value behind an output instead of copying it", function()
      local p = tiny { out_dtype = "fp16", opset = "iOS16" }
      local m <close> = mlsh.load(p:save(root .. "/rename.mlpackage"))
      local lin = find_ops(m, "linear")[1]
      assert.equal("y", lin.outputs[1].name)
      assert.equal("linear_0_cast_fp16", lin.name)
      assert.equal(1, #find_ops(m, "cast"))
      assert.equal("fp16", m:outputs()[1].dtype)
    end)

    it("copies an input straight to an output with identity", function()
      local p = B.program { opset = "iOS16" }
      local f = p:func("main")
      local x = f:input("x", "fp16", { 2, 2 })
      f:output("x_again", x, { dtype = "fp16" })
      local m <close> = mlsh.load(p:save(root .. "/ident.mlpackage"))
      assert.equal(1, #find_ops(m, "identity"))
    end)

    it("declares enumerated and range-flexible inputs with unknown MIL dimensions", function()
      local p = B.program { opset = "iOS17" }
      local f = p:func("main")
      local a = f:input("a", "fp32", { shapes = { { 1, 8 }, { 1, 16 } } })
      local b = f:input("b", "fp32", { range = { { 1, 1 }, { 4, 64 } }, default = { 1, 8 } })
      assert.equal("1,-1", shape(a))
      assert.equal("1,-1", shape(b))
      f:output("y", L.relu(f, a))
      f:output("z", L.relu(f, b))
      local m <close> = mlsh.load(p:save(root .. "/flex.mlpackage"))
      local ins = m:inputs()
      assert.equal("enumerated", ins[1].flexibility.kind)
      assert.same({ { 1, 8 }, { 1, 16 } }, ins[1].flexibility.shapes)
      assert.same({ 1, 8 }, ins[1].shape)
      assert.equal("range", ins[2].flexibility.kind)
      assert.same({ { 1, 1 }, { 4, 64 } }, ins[2].flexibility.ranges)
      assert.same({ 1, 8 }, ins[2].shape)
      assert.is_nil(m:outputs()[1].shape and #m:outputs()[1].shape > 0 or nil)
    end)

    it("makes image inputs with scale/bias preprocessing ops", function()
      local p = B.program { opset = "iOS15" }
      local f = p:func("main")
      local img = f:input("image", "image", { width = 16, height = 12, color = "BGR", scale = 0.5, bias = { 1, 2, 3 } })
      assert.equal("1,3,12,16", shape(img))
      f:output("y", L.relu(f, img))
      local m <close> = mlsh.load(p:save(root .. "/image.mlpackage"))
      local i = m:inputs()[1]
      assert.equal("image", i.kind)
      assert.equal(16, i.width)
      assert.equal(12, i.height)
      assert.equal("bgr", i.color_space)
      local mul, add = find_ops(m, "mul")[1], find_ops(m, "add")[1]
      assert.equal("image__scaled__", mul.name)
      assert.equal("fp32", mul.outputs[1].dtype)
      assert.equal("image__biased__", add.name)
      assert.same({ 1, 3, 1, 1 }, add:inputs()[2].shape)
      assert.equal("image__biased__", find_ops(m, "cast")[1]:inputs()[1].name)
      assert.equal(6, m.spec_version)
    end)

    it("builds stateful iOS18 functions with read_state/write_state", function()
      local p = B.program { opset = "iOS18" }
      local f = p:func("main")
      local x = f:input("x", "fp16", { 1, 4 })
      local s = f:state("acc", "fp16", { 1, 4 })
      assert.equal("state fp16[1,4] acc", tostring(s))
      local now = f:update_state(s, f:op("add", { x = f:op("read_state", { input = s }), y = x }))
      f:output("y", now, { dtype = "fp16" })
      local m <close> = mlsh.load(p:save(root .. "/state.mlpackage"))
      assert.equal(9, m.spec_version)
      assert.equal("acc", m:states()[1].name)
      assert.equal("state", m:states()[1].kind)
      assert.equal(2, m:op_histogram().read_state)
      assert.equal(1, m:op_histogram().write_state)
    end)

    it("writes several functions with a default (spec 9)", function()
      local p = B.program { opset = "iOS18", default = "b" }
      for _, name in ipairs({ "a", "b" }) do
        local f = p:func(name)
        f:output("y", L.relu(f, f:input("x", "fp16", { 1, 4 })), { dtype = "fp16" })
      end
      local m <close> = mlsh.load(p:save(root .. "/multi.mlpackage"))
      assert.equal(9, m.spec_version)
      assert.equal("b", m.default_function)
      assert.equal(2, #m:functions())
      assert.equal(1, #m:inputs("a"))
    end)

    it("round-trips through mlsh save with identical info", function()
      local json = require "mlsh.json"
      local function info(path)
        local m <close> = mlsh.load(path)
        local o = m:info()
        o.path, o.format = nil, nil
        return json.encode(o)
      end
      local a = tiny():save(root .. "/rt.mlpackage")
      local m = mlsh.load(a)
      m:save(root .. "/rt2.mlpackage")
      m:close()
      assert.equal(info(a), info(root .. "/rt2.mlpackage"))
      assert.equal(F.read(a .. "/Data/com.apple.CoreML/weights/weight.bin"), F.read(root .. "/rt2.mlpackage/Data/com.apple.CoreML/weights/weight.bin"))
    end)

    it("is deterministic: the same recipe gives byte-identical files", function()
      local a = tiny():save(root .. "/det_a.mlpackage")
      local b = tiny():save(root .. "/det_b.mlpackage")
      for _, rel in ipairs({ "Manifest.json", "Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin" }) do
        assert.equal(F.read(a .. "/" .. rel), F.read(b .. "/" .. rel), rel)
      end
      local n1 = B.neural_network { precision = "fp16" }
      local n2 = B.neural_network { precision = "fp16" }
      for _, nn in ipairs({ n1, n2 }) do
        nn:output("y", nn:inner_product(nn:input("x", "fp32", { 1, 8 }), { out = 3 }))
      end
      assert.equal(F.read(n1:save(root .. "/det1.mlmodel")), F.read(n2:save(root .. "/det2.mlmodel")))
      -- and the manifest UUIDs are well-formed version-4 UUIDs
      local manifest = require("mlsh.json").decode(F.read(a .. "/Manifest.json"))
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89AB]%x%x%x%-%x+$", manifest.rootModelIdentifier)
    end)
  end)

  describe("shape inference", function()
    local f
    before_each(function()
      f = B.program { opset = "iOS18", precision = "fp32" }:func("main")
    end)

    local function t(shape_, dtype) return f:input("in" .. (#f.inputs + 1), dtype or "fp32", shape_) end
    local function w(s) return f:const("w" .. (#f.ops + 1), B.random.normal { seed = 1, shape = s }) end

    it("conv: padding, strides, dilations, groups", function()
      local x = t({ 1, 8, 32, 32 })
      assert.equal("1,16,32,32", shape(f:op("conv", { x = x, weight = w({ 16, 8, 3, 3 }), pad_type = "same" })))
      assert.equal("1,16,30,30", shape(f:op("conv", { x = x, weight = w({ 16, 8, 3, 3 }) })))
      assert.equal("1,16,16,16", shape(f:op("conv", { x = x, weight = w({ 16, 8, 3, 3 }), strides = { 2, 2 }, pad_type = "same" })))
      assert.equal("1,16,28,28", shape(f:op("conv", { x = x, weight = w({ 16, 8, 3, 3 }), dilations = { 2, 2 } })))
      assert.equal("1,8,32,32", shape(f:op("conv", { x = x, weight = w({ 8, 1, 3, 3 }), groups = 8, pad = { 1, 1, 1, 1 } })))
      local flex = f:input("flexc", "fp32", { range = { { 1, 1 }, { 8, 8 }, { 4, 64 }, { 32, 32 } } })
      assert.equal("1,16,-1,32", shape(f:op("conv", { x = flex, weight = w({ 16, 8, 1, 1 }) })))
    end)

    it("pools, reductions, linear, matmul, broadcasting", function()
      local x = t({ 1, 4, 9, 9 })
      assert.equal("1,4,4,4", shape(f:op("max_pool", { x = x, kernel_sizes = { 2, 2 }, strides = { 2, 2 } })))
      assert.equal("1,4,5,5", shape(f:op("avg_pool", { x = x, kernel_sizes = { 2, 2 }, strides = { 2, 2 }, ceil_mode = true })))
      assert.equal("1,4", shape(f:op("reduce_mean", { x = x, axes = { 2, 3 } })))
      assert.equal("1,4,1,1", shape(f:op("reduce_max", { x = x, axes = { -2, -1 }, keep_dims = true })))
      assert.equal("1,9,9", shape(f:op("reduce_argmax", { x = x, axis = 1 })))
      local v = t({ 2, 5, 7 })
      assert.equal("2,5,3", shape(f:op("linear", { x = v, weight = w({ 3, 7 }) })))
      assert.equal("2,5,4", shape(f:op("matmul", { x = v, y = w({ 7, 4 }) })))
      assert.equal("2,7,7", shape(f:op("matmul", { x = v, y = v, transpose_x = true })))
      assert.equal("3,2,5,5", shape(f:op("matmul", { x = t({ 3, 1, 5, 7 }), y = t({ 2, 7, 5 }) })))
      assert.equal("2,5,7", shape(f:op("add", { x = v, y = t({ 5, 1 }) })))
      assert.equal("bool", f:op("greater", { x = v, y = 0.5 }).dtype)
    end)

    it("reshape, transpose, concat, split, gather, squeeze, slices", function()
      local x = t({ 2, 3, 4 })
      assert.equal("6,4", shape(f:op("reshape", { x = x, shape = { -1, 4 } })))
      assert.equal("2,12", shape(f:op("reshape", { x = x, shape = { 0, -1 } })))
      assert.equal("4,2,3", shape(f:op("transpose", { x = x, perm = { 2, 0, 1 } })))
      assert.equal("2,6,4", shape(f:op("concat", { values = { x, x }, axis = 1 })))
      local a, b = f:op("split", { x = x, num_splits = 2, axis = 2 })
      assert.equal("2,3,2", shape(a))
      assert.equal("2,3,2", shape(b))
      local ids = t({ 5, 6 }, "int32")
      assert.equal("5,6,3,4", shape(f:op("gather", { x = x, indices = ids, axis = 0 })))
      assert.equal("1,2,3,4", shape(f:op("expand_dims", { x = x, axes = { 0 } })))
      assert.equal("3,4", shape(f:op("squeeze", { x = f:op("slice_by_size", { x = x, begin = { 1, 0, 0 }, size = { 1, -1, -1 } }), axes = { 0 } })))
      assert.equal("2,2,4", shape(f:op("slice_by_index", { x = x, begin = { 0, 1, 0 }, ["end"] = { 2, 3, 4 } })))
      assert.equal("5,6,10", shape(f:op("one_hot", { indices = ids, one_hot_vector_size = 10 })))
      assert.equal("int32", f:op("shape", { x = x }).dtype)
      assert.equal("2,3,8", shape(f:op("pad", { x = x, pad = { 2, 2 } })))
    end)

    it("norms, softmax, recurrent and attention ops", function()
      local x = t({ 1, 10, 8 })
      assert.equal("1,10,8", shape(L.layer_norm(f, x)))
      assert.equal("1,10,8", shape(L.softmax(f, x)))
      local seq = t({ 10, 1, 8 })
      local y, h, c = L.lstm(f, seq, { hidden = 6 })
      assert.equal("10,1,6", shape(y))
      assert.equal("1,6", shape(h))
      assert.equal("1,6", shape(c))
      local q = t({ 1, 4, 10, 16 })
      assert.equal("1,4,10,16", shape(f:op("scaled_dot_product_attention", { query = q, key = q, value = q })))
      assert.equal("1,10,8", shape(Bk.attention(f, x, { heads = 2 })))
      assert.equal("1,10,8", shape(Bk.transformer_encoder_layer(f, x, { heads = 2, ffn = 16 })))
      local img = t({ 1, 3, 16, 16 })
      assert.equal("1,8,8,8", shape(Bk.conv_bn_relu(f, img, { out = 8, stride = 2 })))
      assert.equal("1,12,8,8", shape(Bk.depthwise_separable(f, img, { out = 12, stride = 2 })))
    end)

    it("takes an explicit type for ops without a rule, and checks it where there is one", function()
      local x = t({ 2, 3 })
      local y = f:op("non_zero", { x = x }, { dtype = "int32", shape = { -1, 2 } })
      assert.equal("int32", y.dtype)
      assert.equal("-1,2", shape(y))
      assert.matches("given as fp32%[2,4%] but the op produces fp32%[2,3%]", err_of(f.op, f, "relu", { x = x }, { dtype = "fp32", shape = { 2, 4 } }))
    end)
  end)

  describe("spec version", function()
    local function spec_of(p)
      local n, reasons = p:spec_version()
      local ids = {}
      for _, r in ipairs(reasons) do ids[r.id] = r.min_spec end
      return n, ids
    end

    it("is the minimum the content needs, with reasons", function()
      assert.equal(6, (spec_of(tiny { opset = "iOS15" })))
      assert.equal(7, (spec_of(tiny { opset = "iOS16" })))
      local n, ids = spec_of(tiny { opset = "iOS15", dtype = "fp16" })
      assert.equal(7, n)
      assert.equal(7, ids.fp16_multiarray)
      assert.equal(6, ids.ml_program)
      assert.equal(8, (spec_of(tiny { opset = "iOS17" })))
      local p = B.program { opset = "iOS17" }
      for _, name in ipairs({ "a", "b" }) do
        local f = p:func(name)
        f:output("y", L.relu(f, f:input("x", "fp32", { 1, 4 })))
      end
      n, ids = spec_of(p)
      assert.equal(9, n)
      assert.equal(9, ids.multiple_functions)
      local q = B.program { opset = "iOS17" }
      local f = q:func("main")
      local a = f:input("a", "fp32", { shapes = { { 1, 2 }, { 1, 4 } } })
      local b = f:input("b", "fp32", { shapes = { { 1, 2 }, { 1, 4 } } })
      f:output("y", f:op("add", { x = a, y = b }))
      n, ids = spec_of(q)
      assert.equal(9, n)
      assert.equal(9, ids.multiple_enumerated_inputs)
    end)

    it("accepts a higher explicit spec and refuses a lower one", function()
      local m <close> = mlsh.load(tiny { opset = "iOS16", spec = 8 }:save(root .. "/spec8.mlpackage"))
      assert.equal(8, m.spec_version)
      assert.matches("spec 6 was asked for, but the content needs 7", err_of(tiny { opset = "iOS16", spec = 6 }.save, tiny { opset = "iOS16", spec = 6 }, root .. "/low.mlpackage"))
    end)

    it("for neural networks follows layers, weights, flexibility and rank mapping", function()
      local function nn_spec(o, build)
        local nn = B.neural_network(o)
        build(nn)
        return (nn:spec_version())
      end
      local function plain(nn)
        local x = nn:input("x", "fp32", { 3, 4, 4 })
        nn:output("y", nn:activation(x, "ReLU"))
      end
      assert.equal(1, nn_spec({ exact_rank = false }, plain))
      assert.equal(4, nn_spec({}, plain))
      assert.equal(2, nn_spec({ exact_rank = false, precision = "fp16" }, function(nn)
        nn:output("y", nn:convolution(nn:input("x", "fp32", { 3, 4, 4 }), { out = 2 }))
      end))
      assert.equal(2, nn_spec({ exact_rank = false }, function(nn)
        nn:output("y", nn:custom(nn:input("x", "fp32", { 3, 4, 4 }), { class = "MyLayer" }))
      end))
      assert.equal(3, nn_spec({ exact_rank = false }, function(nn)
        nn:output("y", nn:activation(nn:input("x", "fp32", { range = { { 3, 3 }, { 4, 64 }, { 4, -1 } } }), "tanh"))
      end))
      assert.matches("exact%-rank layer", err_of(nn_spec, { exact_rank = false }, function(nn)
        local x = nn:input("x", "fp32", { 3, 4, 4 })
        nn:output("y", nn:gather(x, nn:input("i", "int32", { 2 })))
      end))
    end)
  end)

  describe("neural networks", function()
    it("builds every supported layer type and reads back", function()
      local nn = B.neural_network { precision = "fp32", metadata = { author = "spec" } }
      local x = nn:input("x", "fp32", { 1, 4, 8, 8 })
      local c = nn:convolution(x, { out = 8, k = 3, padding = "same", dilation = 2 })
      local g = nn:convolution(c, { out = 8, k = 3, padding = "same", groups = 4 })
      local y = nn:activation(nn:batchnorm(nn:add(c, g)), { leakyReLU = 0.2 })
      y = nn:multiply(y, nn:activation(y, "sigmoid"))
      y = nn:concat({ y, g })
      assert.equal("1,16,8,8", shape(y))
      y = nn:pooling(y, { type = "MAX", k = 2, stride = 2 })
      assert.equal("1,16,4,4", shape(y))
      y = nn:reshape(nn:flatten(y), { 256, 1, 1 })
      y = nn:softmax(nn:inner_product(y, { out = 10 }))
      nn:output("probs", y)
      local seq = nn:input("seq", "fp32", { 5, 1, 6, 1, 1 })
      local ly = nn:lstm(seq, { hidden = 4, sequence_output = true })
      local gy = nn:gru(ly, { hidden = 3 })
      nn:output("rnn", gy)
      local ids = nn:input("ids", "fp32", { 5, 1, 1, 1 })
      nn:output("emb", nn:embedding(ids, { vocab = 20, dim = 6 }))
      local params = nn:input("table", "fp32", { 10, 4 })
      local idx = nn:input("idx", "int32", { 3 })
      nn:output("rows", nn:gather(params, idx, { axis = 0 }))
      nn:output("custom", nn:custom({ x }, { class = "MLSHSwish", description = "x * sigmoid(x)",
        params = { beta = 1.5, mode = "fast", n = 3, on = true }, weights = { B.ones({ 4 }) } }))
      local path = nn:save(root .. "/layers.mlmodel")
      local m <close> = mlsh.load(path)
      assert.equal("neuralNetwork", m.model_type)
      assert.equal(4, m.spec_version)
      local h = m:layer_histogram()
      for _, t in ipairs({ "convolution", "batchnorm", "activation", "add", "multiply", "concat", "pooling", "flatten",
        "reshape", "innerProduct", "softmax", "uniDirectionalLSTM", "gru", "embedding", "gather", "custom" }) do
        assert.is_truthy(h[t], t)
      end
      local conv = m.neural_network.layers[1].convolution
      assert.same({ 2, 2 }, conv.dilationFactor)
      assert.equal(4, m.neural_network.layers[2].convolution.nGroups)
      assert.equal("EXACT_ARRAY_MAPPING", m.neural_network.arrayInputShapeMapping)
      -- fields outside mlsh's schema subset are written as unknown fields and survive a round trip
      local reshape
      for _, l in ipairs(m.neural_network.layers) do if l:which("convolution") == "reshape" then reshape = l.reshape end end
      assert.equal(1, #reshape:unknown())
      assert.equal(1, reshape:unknown()[1].number)
      local cl
      for _, l in ipairs(m.neural_network.layers) do if l:which("convolution") == "custom" then cl = l.custom end end
      assert.equal("MLSHSwish", cl.className)
      local keys = select(2, cl:map("parameters"))
      assert.same({ "beta", "mode", "n", "on" }, keys)
      assert.equal("spec", m.metadata.author)
    end)

    it("stores weights fp16 or fp32", function()
      for _, prec in ipairs({ "fp16", "fp32" }) do
        local nn = B.neural_network { precision = prec }
        nn:output("y", nn:inner_product(nn:input("x", "fp32", { 1, 6 }), { out = 3 }))
        local m <close> = mlsh.load(nn:save(root .. "/ip_" .. prec .. ".mlmodel"))
        local wp = m.neural_network.layers[1].innerProduct.weights
        if prec == "fp16" then
          assert.equal(36, #wp.float16Value)
          assert.equal(0, wp:count("floatValue"))
        else
          assert.equal(18, wp:count("floatValue"))
        end
        assert.equal(18, m:weights()[1].count)
      end
    end)

    it("adds image preprocessing as a scaler", function()
      local nn = B.neural_network {}
      local img = nn:input("img", "image", { width = 8, height = 8, color = "RGB", scale = 1 / 255, bias = { -1, -2, -3 } })
      assert.equal("1,3,8,8", shape(img))
      nn:output("y", nn:activation(img, "ReLU"))
      local m <close> = mlsh.load(nn:save(root .. "/nn_image.mlmodel"))
      local pre = m.neural_network.preprocessing[1]
      assert.equal("img", pre.featureName)
      assert.near(1 / 255, pre.scaler.channelScale, 1e-6)
      assert.equal(-1, pre.scaler.redBias)
      assert.equal(-3, pre.scaler.blueBias)
      assert.equal("RANK4_IMAGE_MAPPING", m.neural_network.imageInputShapeMapping)
    end)
  end)

  describe("generators", function()
    it("are seeded, reproducible and shaped", function()
      local a = B.random.normal { seed = 42, shape = { 100, 100 }, mean = 1, std = 2 }
      local b = B.random.normal { seed = 42, shape = { 100, 100 }, mean = 1, std = 2 }
      local c = B.random.normal { seed = 43, shape = { 100, 100 }, mean = 1, std = 2 }
      assert.same({ 100, 100 }, a:shape())
      assert.equal(a:encode("fp32"), b:encode("fp32"))
      assert.are_not.equal(a:encode("fp32"), c:encode("fp32"))
      local s = a:stats()
      assert.near(1, s.mean, 0.1)
      assert.near(2, s.std, 0.1)
      local u = B.random.uniform { seed = "name", shape = { 1000 }, low = 2, high = 3 }
      local us = u:stats()
      assert.is_true(us.min >= 2 and us.max < 3)
      assert.near(2.5, us.mean, 0.05)
      assert.equal(0, B.zeros({ 3 }):stats().max)
      assert.equal(3, B.ones({ 3 }):stats().sum)
      assert.equal(7, B.full({ 2 }, 3.5):stats().sum)
      assert.same({ 2, 2 }, B.array({ 1, 2, 3, 4 }, { 2, 2 }):shape())
      assert.are_not.equal(B.random.derive(1, "a"), B.random.derive(1, "b"))
      assert.matches("seed is required", err_of(B.random.normal, { shape = { 2 } }))
    end)
  end)

  describe("errors", function()
    local p, f
    before_each(function()
      p = B.program { opset = "iOS17" }
      f = p:func("main")
    end)

    it("names the recipe line, the function and the op", function()
      local x = f:input("x", "fp32", { 1, 4 })
      local e = err_of(f.op, f, "linear", { x = x, weight = f:const("w", B.ones({ 3, 5 })) })
      assert.matches("builder_spec%.lua:%d+: function main: linear 'linear_0': x has 4 input features", e)
    end)

    it("refuses an unknown op", function()
      local x = f:input("x", "fp32", { 1, 4 })
      assert.matches("unknown MIL op 'frobnicate'", err_of(f.op, f, "frobnicate", { x = x }))
    end)

    it("refuses an op the opset lacks", function()
      local x = f:input("x", "fp16", { 1, 4, 8 })
      assert.matches("'scaled_dot_product_attention' is not in opset iOS17 %(introduced iOS18%)",
        err_of(f.op, f, "scaled_dot_product_attention", { query = x, key = x, value = x }))
      assert.matches("states need opset iOS18", err_of(f.state, f, "s", "fp16", { 1, 4 }))
    end)

    it("refuses type mismatches", function()
      local x = f:input("x", "fp32", { 1, 4 })
      local h = f:op("relu", { x = x }) -- fp16 compute
      local x32 = f:op("cast", { x = h, dtype = "fp32" })
      assert.matches("type mismatch: x is fp16 but y is fp32", err_of(f.op, f, "add", { x = h, y = x32 }))
      assert.matches("indices must be integers", err_of(f.op, f, "gather", { x = h, indices = h }))
      assert.matches("cannot present bool as", err_of(f.output, f, "b", f:op("greater", { x = h, y = 0 }), { dtype = "fp32" }))
    end)

    it("refuses values from another function (undefined there)", function()
      local x = f:input("x", "fp32", { 1, 4 })
      local g = p:func("other")
      assert.matches("value 'x' belongs to function 'main', not 'other'", err_of(g.op, g, "relu", { x = x }))
      assert.matches("belongs to function 'main'", err_of(g.output, g, "y", x))
      local q = B.program {}:func("main")
      assert.matches("not defined in this program", err_of(q.op, q, "relu", { x = x }))
    end)

    it("refuses bad shapes", function()
      local x = f:input("x", "fp32", { 1, 3, 8, 8 })
      local w = f:const("w", B.ones({ 4, 2, 3, 3 }))
      assert.matches("x has 3 channels but weight %[4,2,3,3%] with groups 1 expects 2", err_of(f.op, f, "conv", { x = x, weight = w }))
      assert.matches("cannot reshape %[1,3,8,8%] %(192 elements%) into %[5,5%]", err_of(f.op, f, "reshape", { x = x, shape = { 5, 5 } }))
      assert.matches("do not broadcast", err_of(f.op, f, "add", { x = x, y = f:input("z", "fp32", { 1, 2, 8, 8 }) }))
      assert.matches("differ outside axis", err_of(f.op, f, "concat", { values = { x, f:input("v", "fp32", { 1, 3, 4, 8 }) }, axis = 1 }))
      assert.matches("inner dimensions differ", err_of(f.op, f, "matmul", { x = x, y = f:const("m", B.ones({ 5, 2 })) }))
      assert.matches("perm %[0,1%] does not match rank 4", err_of(f.op, f, "transpose", { x = x, perm = { 0, 1 } }))
      assert.matches("axis 5 is out of range for rank 4", err_of(f.op, f, "softmax", { x = x, axis = 5 }))
      assert.matches("%d+ values do not fill shape %[2,2%]", err_of(f.const, f, "k", { 1, 2, 3 }, { shape = { 2, 2 } }))
      assert.matches("dimensions must be positive", err_of(f.input, f, "neg", "fp32", { 1, 0 }))
      assert.matches("unbounded", err_of(f.input, f, "r", "fp32", { range = { { 1, -1 } } }))
    end)

    it("refuses missing or unknown parameters, bad names and uninferable ops", function()
      local x = f:input("x", "fp32", { 1, 4 })
      assert.matches("missing input 'weight'", err_of(f.op, f, "linear", { x = x }))
      assert.matches("unknown parameter 'stride' %(parameters: x, weight", err_of(f.op, f, "conv", { x = x, weight = x, stride = { 1 } }))
      assert.matches("bad input name 'my%-input'", err_of(f.input, f, "my-input", "fp32", { 1 }))
      assert.matches("input name 'x' is already used", err_of(f.input, f, "x", "fp32", { 1 }))
      assert.matches("cannot infer the output type of MIL op 'non_zero'", err_of(f.op, f, "non_zero", { x = x }))
      assert.matches("arguments are named", err_of(f.op, f, "relu", { x }))
      assert.matches("output 'x2' is declared twice", err_of(function()
        f:output("x2", L.relu(f, x))
        f:output("x2", L.relu(f, x))
      end))
      assert.matches("state is not an output", err_of(function()
        local q = B.program { opset = "iOS18" }:func("main")
        q:output("s", q:state("s1", "fp16", { 1 }))
      end))
    end)

    it("leaves nothing behind after a failed call", function()
      local x = f:input("x", "fp32", { 1, 4 })
      local before = #f.ops
      err_of(f.op, f, "linear", { x = x, weight = f:const("w", B.ones({ 3, 5 })), bias = { 1, 2, 3 } })
      assert.equal(before + 1, #f.ops) -- only the const w made in the argument list
      local y = f:op("relu", { x = x })
      assert.equal("relu_0_cast_fp16", y.name)
      assert.is_nil(f.names.linear_0_bias_0)
    end)

    it("refuses programs that cannot be saved, naming the path", function()
      assert.matches("^" .. root:gsub("%p", "%%%0") .. "/none%.mlpackage: function 'main' has no outputs", err_of(p.save, p, root .. "/none.mlpackage"))
      local q = B.program {}
      q:func("only")
      assert.matches("must call its function 'main'", err_of(q.save, q, root .. "/only.mlpackage"))
      assert.matches("save it as %.mlpackage", err_of(tiny().save, tiny(), root .. "/weights.mlmodel"))
      assert.matches("cannot tell the format", err_of(tiny().save, tiny(), root .. "/model.bin"))
      assert.matches("precision must be", err_of(B.program, { precision = "int8" }))
      assert.matches("iOS12 is spec 3; ML%-program opsets start at iOS15", err_of(B.program, { opset = "iOS12" }))
    end)

    describe("the writer's validation, reached through the builder with check = false", function()
      it("undefined values", function()
        local x = f:input("x", "fp32", { 1, 4 })
        local g = p:func("other")
        g:input("x", "fp32", { 1, 4 })
        local y = g:op("relu", { x = f:op("relu", { x = x }) }, { check = false })
        g:output("y", y)
        f:output("z", L.relu(f, x))
        assert.matches("other.mlpackage: invalid model: function other: relu op 'relu_0_cast_fp16' input 'x' references undefined value 'relu_0_cast_fp16'",
          err_of(p.save, p, root .. "/other.mlpackage"))
      end)

      it("ops outside the opset", function()
        local x = f:input("x", "fp16", { 1, 2, 4 })
        local y = f:op("scaled_dot_product_attention", { query = x, key = x, value = x }, { check = false })
        f:output("y", y, { dtype = "fp16" })
        assert.matches("invalid model: function main: scaled_dot_product_attention op 'scaled_dot_product_attention_0_cast_fp16' is not in opset CoreML7",
          err_of(p.save, p, root .. "/sdpa.mlpackage"))
      end)

      it("blob data that does not match its type", function()
        local x = f:input("x", "fp16", { 1, 5 })
        local w = f:const("w", B.random.normal { seed = 1, shape = { 4, 4 } }, { shape = { 4, 5 }, check = false })
        f:output("y", f:op("linear", { x = x, weight = w }), { dtype = "fp16" })
        assert.matches("blob holds 32 bytes, type fp16%[4,5%] needs 40", err_of(p.save, p, root .. "/blob.mlpackage"))
      end)

      it("immediate data that does not match its type", function()
        local x = f:input("x", "fp32", { 2, 3 })
        local shp = f:const("target", { 3, 2, 1 }, { shape = { 2 }, check = false })
        f:output("y", f:op("reshape", { x = x, shape = shp }, { check = false, dtype = "fp16", shape = { 3, 2 } }))
        assert.matches("value of type int32%[2%] holds 3 elements, its shape needs 2", err_of(p.save, p, root .. "/imm.mlpackage"))
      end)
    end)
  end)

  it("wrote models that all round-trip through mlsh save unchanged", function()
    local json = require "mlsh.json"
    local function info(path)
      local m <close> = mlsh.load(path)
      local o = m:info()
      o.path, o.format = nil, nil
      return json.encode(o)
    end
    local p = io.popen("ls " .. F.q(root))
    local n = 0
    for name in p:lines() do
      if name:match("%.mlmodel$") or name:match("%.mlpackage$") then
        local m = mlsh.load(root .. "/" .. name)
        local dst = root .. "/again_" .. name
        m:save(dst)
        m:close()
        assert.equal(info(root .. "/" .. name), info(dst), name)
        n = n + 1
      end
    end
    p:close()
    assert.is_true(n >= 15, "only " .. n .. " models")
  end)
end)
