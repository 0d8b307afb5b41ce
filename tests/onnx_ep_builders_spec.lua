-- The CoreML EP predictor's op-builder rules for ONNX Runtime 1.20: expectations read from
-- onnxruntime/core/providers/coreml/builders/impl/*_op_builder.cc at tag v1.20.0 (named per test).

local H = require("ep_helpers").new("b")
local predict, reason, seq = H.predict, H.reason, H.seq

describe("CoreML EP predictor", function()
  setup(H.setup)
  teardown(H.teardown)

  describe("op builders (ONNX Runtime 1.20)", function()
    local function one(op, inputs, attrs, setup_fn, opts, model_opts)
      return predict(function(b)
        setup_fn(b)
        b:node(op, inputs, { "y" }, attrs)
        b:output("y", "FLOAT")
      end, opts, model_opts)
    end
    local nn = { model_format = "neuralnetwork" }

    it("registers only op_builder_factory.cc's ops; NeuralNetwork-only builders refuse ML programs", function()
      local x = function(b) b:input("x", "FLOAT", { 1, 3, 4, 4 }) end
      for _, op in ipairs({ "Erf", "Round", "Max", "Unsqueeze", "LayerNormalization", "ReduceMax" }) do
        local r = one(op, { "x" }, nil, x)
        assert.truthy(reason(r, op):find("no CoreML op builder", 1, true), op)
      end
      -- SupportsMLProgram() is not overridden by these builders
      for _, op in ipairs({ "Flatten", "Softmax", "LRN" }) do
        assert.truthy(reason(one(op, { "x" }, nil, x), op):find("does not support MLProgram", 1, true), op)
        assert.is_nil(reason(one(op, { "x" }, nil, x, nn), op), op)
      end
    end)

    it("Gemm (gemm_op_builder.cc): B and C constant, no transA, alpha = beta = 1, C of shape {N}", function()
      local base = function(b)
        b:input("a", "FLOAT", { 2, 4 })
        b:input("bdyn", "FLOAT", { 4, 3 })
        b:init("B", "FLOAT", { 4, 3 }, seq(12))
        b:init("C", "FLOAT", { 3 }, seq(3))
        b:init("C2", "FLOAT", { 2, 3 }, seq(6))
      end
      assert.is_nil(reason(one("Gemm", { "a", "B", "C" }, nil, base), "Gemm"))
      assert.truthy(reason(one("Gemm", { "a", "bdyn", "C" }, nil, base), "Gemm"):find("B input must be a constant", 1,
        true))
      assert.truthy(reason(one("Gemm", { "a", "B", "bdyn" }, nil, base), "Gemm"):find("C of Gemm must be a constant",
        1, true))
      assert.truthy(reason(one("Gemm", { "a", "B", "C2" }, nil, base), "Gemm"):find("{N}, or {1, N}", 1, true))
      local tr = function(b)
        b:input("a", "FLOAT", { 4, 2 })
        b:init("B", "FLOAT", { 4, 3 }, seq(12))
      end
      assert.truthy(reason(one("Gemm", { "a", "B" }, { transA = 1 }, tr), "Gemm"):find("transA == 0", 1, true))
      assert.truthy(reason(one("Gemm", { "a", "B", "C" }, { alpha = 0.5 }, base), "Gemm"):find("alpha == 1.0", 1, true))
    end)

    it("MatMul (gemm_op_builder.cc): constant 2-D operands in NeuralNetwork models; no 1-D mix in ML programs",
      function()
      local base = function(b)
        b:input("a", "FLOAT", { 2, 2, 4 })
        b:input("bdyn", "FLOAT", { 2, 4, 3 })
        b:input("a2", "FLOAT", { 2, 4 })
        b:init("v", "FLOAT", { 4 }, seq(4))
        b:init("B3", "FLOAT", { 2, 4, 3 }, seq(24))
      end
      assert.is_nil(reason(one("MatMul", { "a", "bdyn" }, nil, base), "MatMul"))
      assert.truthy(reason(one("MatMul", { "a2", "v" }, nil, base), "MatMul"):find("one of the inputs is 1D", 1, true))
      assert.truthy(reason(one("MatMul", { "a", "bdyn" }, nil, base, nn), "MatMul"):find("B input must be a constant",
        1, true))
      assert.truthy(reason(one("MatMul", { "a", "B3" }, nil, base, nn), "MatMul"):find("a and b inputs must be 2D", 1,
        true))
    end)

    it("Conv (conv_op_builder.cc): 1-D/2-D, constant weight in NeuralNetwork models, constant bias", function()
      local base = function(b)
        b:input("x", "FLOAT", { 1, 2, 8, 8 })
        b:input("x3", "FLOAT", { 1, 2, 4, 4, 4 })
        b:input("wdyn", "FLOAT", { 3, 2, 3, 3 })
        b:input("bdyn", "FLOAT", { 3 })
        b:init("W", "FLOAT", { 3, 2, 3, 3 }, seq(54))
        b:init("W3", "FLOAT", { 3, 2, 3, 3, 3 }, seq(162))
      end
      assert.is_nil(reason(one("Conv", { "x", "W" }, nil, base), "Conv"))
      assert.is_nil(reason(one("Conv", { "x", "wdyn" }, nil, base), "Conv"))
      assert.truthy(reason(one("Conv", { "x", "wdyn" }, nil, base, nn), "Conv"):find("weight of Conv", 1, true))
      assert.truthy(reason(one("Conv", { "x", "W", "bdyn" }, nil, base), "Conv"):find("bias of Conv", 1, true))
      assert.truthy(reason(one("Conv", { "x3", "W3" }, nil, base), "Conv"):find("is 3D", 1, true))
      assert.truthy(reason(one("Conv", { "x", "W" }, { kernel_shape = { 2, 2 } }, base), "Conv"):find("kernel_shape",
        1, true))
    end)

    it("pooling (pool_op_builder.cc): rank 4, no indices output, no dilations, ceil_mode only in ML programs",
      function()
      local x = function(b)
        b:input("x", "FLOAT", { 1, 2, 8, 8 })
        b:input("x3", "FLOAT", { 1, 2, 4, 4, 4 })
      end
      assert.is_nil(reason(one("MaxPool", { "x" }, { kernel_shape = { 2, 2 } }, x), "MaxPool"))
      assert.truthy(reason(one("MaxPool", { "x3" }, { kernel_shape = { 2, 2, 2 } }, x), "MaxPool"):find("rank-4", 1,
        true))
      assert.truthy(reason(one("MaxPool", { "x" }, { kernel_shape = { 2, 2 }, dilations = { 2, 2 } }, x), "MaxPool")
        :find("Dilations of pooling", 1, true))
      assert.truthy(reason(one("AveragePool", { "x" }, { kernel_shape = { 2, 2 }, ceil_mode = 1 }, x, nn),
        "AveragePool")
        :find("ceil_mode == 1", 1, true))
      assert.is_nil(reason(one("AveragePool", { "x" }, { kernel_shape = { 2, 2 }, ceil_mode = 1 }, x), "AveragePool"))
      local r = predict(function(b)
        x(b)
        b:node("MaxPool", { "x" }, { "y", "idx" }, { kernel_shape = { 2, 2 } })
        b:output("y", "FLOAT")
        b:output("idx", "INT64")
      end)
      assert.truthy(reason(r, "MaxPool"):find("Argmax in maxpooling", 1, true))
      assert.is_nil(reason(one("GlobalAveragePool", { "x" }, nil, x), "GlobalAveragePool"))
    end)

    it("Reshape (reshape_op_builder.cc): a constant new shape, a static input in both formats, no 0 with allowzero",
      function()
      local base = function(b)
        b:input("x", "FLOAT", { 2, 6 })
        b:input("xd", "FLOAT", { "n", 6 })
        b:input("s", "INT64", { 2 })
        b:init("shape", "INT64", { 2 }, { 3, 4 })
        b:init("zshape", "INT64", { 3 }, { 0, 3, 4 })
      end
      assert.is_nil(reason(one("Reshape", { "x", "shape" }, nil, base), "Reshape"))
      assert.truthy(reason(one("Reshape", { "x", "s" }, nil, base), "Reshape"):find("must be a constant initializer",
        1, true))
      assert.truthy(reason(one("Reshape", { "x", "zshape" }, { allowzero = 1 }, base), "Reshape"):find("allowzero", 1,
        true))
      for _, o in ipairs({ nn, {} }) do
        assert.truthy(reason(one("Reshape", { "xd", "shape" }, nil, base, o), "Reshape"):find("dynamic dimension", 1,
          true))
      end
    end)

    it("Slice (slice_op_builder.cc): static data, constant starts/ends/axes/steps, no empty range", function()
      local base = function(b)
        b:input("x", "FLOAT", { 4, 6 })
        b:input("xd", "FLOAT", { 4, "n" })
        b:input("dyn", "INT64", { 1 })
        b:init("s", "INT64", { 1 }, { 1 })
        b:init("e", "INT64", { 1 }, { 3 })
        b:init("e0", "INT64", { 1 }, { 1 })
        b:init("ax", "INT64", { 1 }, { 1 })
        b:init("rs", "INT64", { 1 }, { -1 })
        b:init("re", "INT64", { 1 }, { -10 })
        b:init("st", "INT64", { 1 }, { -1 })
      end
      assert.is_nil(reason(one("Slice", { "x", "s", "e", "ax" }, nil, base), "Slice"))
      -- start -1 -> 5, end -10 -> clamped to -1 with a negative step: [5, -1) is not empty
      assert.is_nil(reason(one("Slice", { "x", "rs", "re", "ax", "st" }, nil, base), "Slice"))
      assert.truthy(reason(one("Slice", { "x", "dyn", "e", "ax" }, nil, base), "Slice"):find("'starts'", 1, true))
      assert.truthy(reason(one("Slice", { "x", "s", "e0", "ax" }, nil, base), "Slice"):find("Empty range", 1, true))
      assert.truthy(reason(one("Slice", { "xd", "s", "e", "ax" }, nil, base), "Slice"):find("dynamic dimension", 1,
        true))
    end)

    it("Cast (cast_op_builder.cc): NeuralNetwork only, int64 input, ArgMax -> Cast(int32)", function()
      local function build(to, from_argmax)
        return function(b)
          b:input("x", "FLOAT", { 2, 5 })
          if from_argmax then b:node("ArgMax", { "x" }, { "a" }, { axis = 1 })
          else b:node("Relu", { "x" }, { "a" }) end
          b:node("Cast", { "a" }, { "y" }, { to = to })
          b:output("y", "FLOAT")
        end
      end
      assert.is_nil(reason(predict(build(6, true), nn), "Cast"))
      assert.truthy(reason(predict(build(1, true), nn), "Cast"):find("Output type: [1]", 1, true))
      assert.truthy(reason(predict(build(6, false), nn), "Cast"):find("Input type: [1] is not supported", 1, true))
      assert.truthy(reason(predict(build(6, true)), "Cast"):find("does not support MLProgram", 1, true))
      local r = predict(function(b)
        b:input("x", "INT64", { 2 })
        b:node("Cast", { "x" }, { "y" }, { to = 6 })
        b:output("y", "INT32")
      end, nn)
      assert.truthy(reason(r, "Cast"):find("Cast has no preceding nodes", 1, true))
      -- argmax_op_builder.cc: an ArgMax feeding a Cast(int32) and something else is refused, and so the Cast
      r = predict(function(b)
        b:input("x", "FLOAT", { 2, 5 })
        b:node("ArgMax", { "x" }, { "a" }, { axis = 1 })
        b:node("Cast", { "a" }, { "y" }, { to = 6 })
        b:node("Cast", { "a" }, { "z" }, { to = 1 })
        b:output("y", "INT32")
        b:output("z", "FLOAT")
      end, nn)
      assert.truthy(reason(r, "ArgMax"):find("both cast and other downstream", 1, true))
      assert.equal(0, r.supported_nodes)
    end)

    it("binary ops (binary_op_builder.cc): input 0's dtype only; Pow needs equal dtypes", function()
      local r = one("Pow", { "x", "e" }, nil, function(b)
        b:input("x", "FLOAT", { 4 })
        b:input("e", "INT32", { 1 })
      end)
      assert.truthy(reason(r, "Pow"):find("same type", 1, true))
      local ints = function(b)
        b:input("x", "FLOAT", { 4 })
        b:input("i", "INT64", { 4 })
      end
      assert.truthy(reason(one("Add", { "i", "x" }, nil, ints), "Add"):find("Input type: [7]", 1, true))
      assert.is_nil(reason(one("Add", { "x", "i" }, nil, ints), "Add"))
    end)

    it("PRelu (activation_op_builder.cc IsPReluOpSupported): NeuralNetwork only, constant slope [C,1,1] or one value",
      function()
      local base = function(b)
        b:input("x", "FLOAT", { 1, 3, 4, 4 })
        b:input("x1", "FLOAT", { 1, 1, 4, 4 })
        b:input("sd", "FLOAT", { 3, 1, 1 })
        b:init("s1", "FLOAT", { 1 }, { 0.1 })
        b:init("sc", "FLOAT", { 3, 1, 1 }, { 0.1, 0.2, 0.3 })
        b:init("bad", "FLOAT", { 1, 4 }, { 0.1, 0.2, 0.3, 0.4 })
      end
      assert.is_nil(reason(one("PRelu", { "x", "s1" }, nil, base, nn), "PRelu"))
      assert.is_nil(reason(one("PRelu", { "x", "sc" }, nil, base, nn), "PRelu"))
      assert.truthy(reason(one("PRelu", { "x", "sd" }, nil, base, nn), "PRelu"):find("constant initializer", 1, true))
      assert.truthy(reason(one("PRelu", { "x", "bad" }, nil, base, nn), "PRelu"):find("[C, 1, 1]", 1, true))
      assert.truthy(reason(one("PRelu", { "x1", "s1" }, nil, base, nn), "PRelu"):find("single 'slope'", 1, true))
      assert.truthy(reason(one("PRelu", { "x", "s1" }, nil, base), "PRelu"):find("ML program", 1, true))
    end)

    it("Concat (concat_op_builder.cc): 4-D on axis 1 (-3) in NeuralNetwork models", function()
      local base = function(b)
        b:input("a", "FLOAT", { 2, 3 })
        b:input("c", "FLOAT", { 2, 3 })
        b:input("p", "FLOAT", { 1, 2, 3, 3 })
      end
      assert.is_nil(reason(one("Concat", { "a", "c" }, { axis = 0 }, base), "Concat"))
      assert.truthy(reason(one("Concat", { "a", "c" }, { axis = 0 }, base, nn), "Concat"):find("only support 4d shape",
        1, true))
      assert.is_nil(reason(one("Concat", { "p", "p" }, { axis = 1 }, base, nn), "Concat"))
      assert.truthy(reason(one("Concat", { "p", "p" }, { axis = 2 }, base, nn), "Concat"):find("axis to be -3", 1,
        true))
    end)

    it("reductions (reduction_op_builder.cc): ReduceSum/ReduceMean in NeuralNetwork models, constant axes", function()
      local base = function(b)
        b:input("x", "FLOAT", { 2, 3 })
        b:input("ad", "INT64", { 1 })
        b:init("ax", "INT64", { 1 }, { 1 })
      end
      assert.is_nil(reason(one("ReduceSum", { "x", "ax" }, nil, base, nn), "ReduceSum"))
      assert.truthy(reason(one("ReduceSum", { "x", "ad" }, nil, base, nn), "ReduceSum"):find("Axes of reduction", 1,
        true))
      assert.truthy(reason(one("ReduceSum", { "x", "ax" }, nil, base), "ReduceSum"):find("does not support MLProgram",
        1, true))
    end)

    it("Resize (resize_op_builder.cc): nearest needs floor; NeuralNetwork needs asymmetric; whole upsampling scales",
      function()
      local base = function(b)
        b:input("x", "FLOAT", { 1, 2, 4, 4 })
        b:input("sd", "FLOAT", { 4 })
        b:init("sc", "FLOAT", { 4 }, { 1, 1, 2, 2 })
        b:init("sf", "FLOAT", { 4 }, { 1, 1, 1.5, 1.5 })
      end
      local near = { mode = "nearest", nearest_mode = "floor", coordinate_transformation_mode = "asymmetric" }
      assert.is_nil(reason(one("Resize", { "x", "", "sc" }, near, base, nn), "Resize"))
      assert.truthy(reason(one("Resize", { "x", "", "sc" }, { mode = "nearest" }, base), "Resize")
        :find("'floor' nearest_mode", 1, true))
      assert.truthy(reason(one("Resize", { "x", "", "sc" }, { mode = "cubic" }, base), "Resize"):find("cubic", 1, true))
      assert.truthy(reason(one("Resize", { "x", "", "sd" }, near, base), "Resize"):find("'scales' input must be", 1,
        true))
      assert.truthy(reason(one("Resize", { "x", "", "sf" }, near, base), "Resize"):find("not a whole number", 1, true))
      assert.is_nil(reason(one("Resize", { "x", "", "sc" }, { mode = "linear" }, base), "Resize"))
      assert.truthy(reason(one("Resize", { "x", "", "sc" }, { mode = "linear" }, base, nn), "Resize")
        :find("only supports 'asymmetric'", 1, true))
    end)

    it("Gather (gather_op_builder.cc, NeuralNetwork): fp32/int64 data, no scalar indices", function()
      local base = function(b)
        b:input("x", "FLOAT", { 5, 3 })
        b:input("xi", "INT32", { 5, 3 })
        b:input("i", "INT64", { 2 })
        b:input("s", "INT64", {})
      end
      assert.is_nil(reason(one("Gather", { "x", "i" }, nil, base, nn), "Gather"))
      assert.truthy(reason(one("Gather", { "x", "s" }, nil, base, nn), "Gather"):find("scalar 'indices'", 1, true))
      assert.truthy(reason(one("Gather", { "xi", "i" }, nil, base, nn), "Gather"):find("Input type: [6]", 1, true))
    end)

    it("DepthToSpace (depthtospace_op_builder.cc): DCR only in NeuralNetwork models", function()
      local x = function(b) b:input("x", "FLOAT", { 1, 8, 2, 2 }) end
      assert.truthy(reason(one("DepthToSpace", { "x" }, { blocksize = 2, mode = "CRD" }, x, nn), "DepthToSpace")
        :find("CRD mode is not supported", 1, true))
      assert.is_nil(reason(one("DepthToSpace", { "x" }, { blocksize = 2, mode = "CRD" }, x), "DepthToSpace"))
    end)

    it("Clip: constant min/max; Split (split_op_builder.cc): a 'split' input is always refused", function()
      local base = function(b)
        b:input("x", "FLOAT", { 4, 2 })
        b:input("lo", "FLOAT", {})
        b:input("sd", "INT64", { 2 })
        b:init("sc", "INT64", { 2 }, { 2, 2 })
      end
      assert.truthy(reason(one("Clip", { "x", "lo" }, nil, base), "Clip"):find("Min input of Clip", 1, true))
      local function split(inputs)
        return predict(function(b)
          base(b)
          b:node("Split", inputs, { "p", "q" }, { axis = 0 })
          b:output("p", "FLOAT")
          b:output("q", "FLOAT")
        end)
      end
      assert.truthy(reason(split({ "x", "sd" }), "Split"):find("'splits' input must be a constant", 1, true))
      -- split_shape.dim_size() < 2 tests the rank of the 1-D 'split' tensor, so a constant one fails too
      assert.truthy(reason(split({ "x", "sc" }), "Split"):find("at least 2 outputs", 1, true))
      assert.is_nil(reason(split({ "x" }), "Split"))
    end)

    it("Softmax, Shape and Squeeze (NeuralNetwork): static Softmax input, fp32 Shape input, constant axes", function()
      local base = function(b)
        b:input("x", "FLOAT", { 2, 3 })
        b:input("xd", "FLOAT", { "n", 3 })
        b:input("xi", "INT64", { "n", 3 })
        b:input("x1", "FLOAT", { 2, 1 })
        b:input("ad", "INT64", { 1 })
        b:init("ax", "INT64", { 1 }, { 1 })
      end
      assert.is_nil(reason(one("Softmax", { "x" }, nil, base, nn), "Softmax"))
      assert.truthy(reason(one("Softmax", { "xd" }, nil, base, nn), "Softmax"):find("dynamic dimension", 1, true))
      -- (dynamic inputs: constant folding would replace a Shape of a static input)
      assert.is_nil(reason(one("Shape", { "xd" }, nil, base, nn), "Shape"))
      assert.truthy(reason(one("Shape", { "xi" }, nil, base, nn), "Shape"):find("[Shape] Input type: [7]", 1, true))
      assert.truthy(reason(one("Shape", { "xd" }, { start = 1 }, base, nn), "Shape"):find("'start'", 1, true))
      assert.is_nil(reason(one("Squeeze", { "x1", "ax" }, nil, base, nn), "Squeeze"))
      assert.truthy(reason(one("Squeeze", { "x1", "ad" }, nil, base, nn), "Squeeze"):find("axes of Squeeze", 1, true))
    end)
  end)
end)
