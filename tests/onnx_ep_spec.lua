-- The CoreML EP predictor: each op builder condition, the generic input rules, the boundary
-- dtype filter, level-1 optimizations, shape inference, freezing and the counterfactuals.
require "mlsh.onnx.model"
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "onnx_builder"
local ep = require "mlsh.onnx.ep"
local irlib = require "mlsh.onnx.ir"
local shape = require "mlsh.onnx.shape"
local passes = require "mlsh.onnx.passes"

local dir
local counter = 0

-- Build a model with `build(b)`, run the predictor with opts; returns the result.
local function predict(build, opts, model_opts)
  counter = counter + 1
  local b = B.model(model_opts or { opset = 17 })
  build(b)
  local p = b:save(dir .. "/m" .. counter .. ".onnx")
  local m <close> = mlsh.load(p)
  local o = { model_format = "mlprogram" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return ep.run(m, o), p
end

-- The reason the (first) node of op type `op` is unsupported, or nil when it is in a partition.
local function reason(r, op)
  for _, u in ipairs(r.unsupported) do
    if u.op == op then return u.reason end
  end
  return nil
end

local function seq(n)
  local t = {}
  for i = 1, n do t[i] = (i % 7) * 0.125 end
  return t
end

describe("CoreML EP predictor", function()
  setup(function() dir = F.tmpdir() end)
  teardown(function() core.fs.remove_tree(dir) end)

  describe("generic input rules", function()
    it("takes a simple fp32 graph whole", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 1, 8 })
        b:node("Relu", { "x" }, { "a" })
        b:node("Sigmoid", { "a" }, { "y" })
        b:output("y", "FLOAT", { 1, 8 })
      end)
      assert.same({ 2 }, r.partition_sizes)
      assert.equal(2, r.supported_nodes)
      assert.equal("YES", r.verdict)
      assert.equal("CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 1 "
        .. "number of nodes in the graph: 2 number of nodes supported by CoreML: 2", r.summary)
      assert.equal(0, r.hops)
    end)

    -- Expectations below are read from ONNX Runtime v1.20.0's CoreML EP sources
    -- (onnxruntime/core/providers/coreml/builders/helper.cc IsInputSupported, impl/base_op_builder.cc
    -- BaseOpBuilder::IsOpSupported and the impl/*_op_builder.cc files named on each test).
    it("refuses ops without a builder, inputs of rank > 5, dims over 16384 and dims of 0", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 4 })
        b:input("big", "FLOAT", { 1, 1, 1, 1, 1, 2 })
        b:input("wide", "FLOAT", { 1, 20000 })
        b:input("empty", "FLOAT", { 0, 4 })
        b:node("Sin", { "x" }, { "s" })
        b:node("Relu", { "big" }, { "r6" })
        b:node("Sigmoid", { "wide" }, { "w" })
        b:node("Tanh", { "empty" }, { "e" })
        for _, o in ipairs({ "s", "r6", "w", "e" }) do b:output(o, "FLOAT") end
      end)
      assert.equal(0, r.supported_nodes)
      assert.truthy(reason(r, "Sin"):find("no CoreML op builder", 1, true))
      assert.truthy(reason(r, "Relu"):find("rank greater than 5", 1, true))
      assert.truthy(reason(r, "Sigmoid"):find("input dim > 16384", 1, true))
      assert.truthy(reason(r, "Tanh"):find("dimension values of 0", 1, true))
    end)

    it("allows dynamic dims unless RequireStaticInputShapes", function()
      local function build(b)
        b:input("x", "FLOAT", { "batch", 8 })
        b:node("Relu", { "x" }, { "y" })
        b:output("y", "FLOAT", { "batch", 8 })
      end
      assert.equal(1, predict(build).supported_nodes)
      local r = predict(build, { require_static_input_shapes = true })
      assert.equal(0, r.supported_nodes)
      assert.truthy(reason(r, "Relu"):find("only allow static input shapes", 1, true))
    end)

    it("refuses an input without shape information", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", nil)
        b:node("Relu", { "x" }, { "y" })
        b:output("y", "FLOAT")
      end)
      assert.truthy(reason(r, "Relu"):find("has no shape", 1, true))
    end)

    it("takes fp16 only in an ML program (Float16Ops)", function()
      local function build(b)
        b:input("x", "FLOAT16", { 1, 8 })
        b:node("Relu", { "x" }, { "y" })
        b:output("y", "FLOAT16", { 1, 8 })
      end
      assert.equal(1, predict(build).supported_nodes)
      local r = predict(build, { model_format = "neuralnetwork" })
      assert.equal(0, r.supported_nodes)
      assert.truthy(reason(r, "Relu"):find("Input type: [10] is not currently supported", 1, true))
      -- the fp32 alternative is offered for an fp16 graph
      local kinds = {}
      for _, cf in ipairs(r.counterfactuals) do kinds[cf.json.kind] = cf.json end
      assert.is_not_nil(kinds.fp32)
      assert.equal(1, kinds.fp32.supported_nodes)
    end)

    it("refuses an op whose since-version is outside the builder's range (default 1..21)", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 1, 2, 4, 4 })
        b:node("GlobalAveragePool", { "x" }, { "y" })
        b:output("y", "FLOAT", { 1, 2, 1, 1 })
      end, nil, { opset = 22 })
      assert.truthy(reason(r, "GlobalAveragePool"):find("only supported for opset [1, 21]", 1, true))
      -- BinaryOpBuilder::GetMinSupportedOpSet is 7: Add-6 is refused
      r = predict(function(b)
        b:input("x", "FLOAT", { 2 })
        b:node("Add", { "x", "x" }, { "y" })
        b:output("y", "FLOAT", { 2 })
      end, nil, { opset = 6 })
      assert.truthy(reason(r, "Add"):find("[7, 21]", 1, true))
    end)

    it("refuses an initializer kept in external data", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 1, 4 })
        b:init("w", "FLOAT", { 4, 4 }, seq(16), { external = "w.bin" })
        b:node("MatMul", { "x", "w" }, { "y" })
        b:output("y", "FLOAT", { 1, 4 })
      end)
      assert.truthy(reason(r, "MatMul"):find("external data", 1, true))
    end)

    it("rejects an ONNX Runtime version it does not model", function()
      local ok, err = pcall(predict, function(b)
        b:input("x", "FLOAT", { 2 })
        b:node("Relu", { "x" }, { "y" })
        b:output("y", "FLOAT", { 2 })
      end, { ort_version = "1.9" })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("not modelled", 1, true))
      assert.equal("1.20", predict(function(b)
        b:input("x", "FLOAT", { 2 })
        b:node("Relu", { "x" }, { "y" })
        b:output("y", "FLOAT", { 2 })
      end, { ort_version = "1.20.0" }).ort_version)
    end)
  end)

  describe("partitions as the EP forms them", function()
    it("keeps boundary values of any dtype: 1.20's GetCapability has no boundary-dtype filter", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 4 })
        b:input("i", "INT8", { 4 })
        b:node("Add", { "x", "i" }, { "y" })
        b:output("y", "FLOAT", { 4 })
      end)
      assert.equal(1, r.supported_nodes)
    end)
    it("counts hops, cut-makers and the summary for a cut graph", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 4 })
        b:node("Relu", { "x" }, { "a" })
        b:node("Sin", { "a" }, { "s" })
        b:node("Relu", { "s" }, { "c" })
        b:output("c", "FLOAT", { 4 })
      end)
      assert.same({ 1, 1 }, r.partition_sizes)
      assert.equal(2, r.hops)
      assert.equal("Sin", r.cut_makers[1].op)
      assert.equal(1, r.cut_makers[1].partitions_caused)
      assert.truthy(r.summary:find("number of partitions supported by CoreML: 2 number of nodes in the graph: 3 "
        .. "number of nodes supported by CoreML: 2", 1, true))
    end)

    it("leaves subgraphs to the CPU unless EnableOnSubgraphs", function()
      local function build(b)
        b:input("c", "BOOL", {})
        b:input("x", "FLOAT", { 4 })
        local t = B.graph("then")
        t:node("Relu", { "x" }, { "tr" })
        t:output("tr", "FLOAT", { 4 })
        local e = B.graph("else")
        e:node("Sigmoid", { "x" }, { "es" })
        e:output("es", "FLOAT", { 4 })
        b:node("If", { "c" }, { "y" }, { then_branch = t, else_branch = e })
        b:output("y", "FLOAT", { 4 })
      end
      local r = predict(build)
      assert.equal(1, r.nodes)
      assert.equal(2, r.subgraphs)
      assert.is_nil(r.subgraph_summaries)
      r = predict(build, { enable_on_subgraphs = true })
      assert.equal(2, #r.subgraph_summaries)
      assert.equal(1, r.subgraph_summaries[1].supported_nodes)
    end)
  end)

  describe("level-1 optimizations", function()
    it("turns Constant nodes into initializers and removes Identity, Dropout and no-op Casts", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 1, 4 })
        b:const("k", "FLOAT", { 1, 4 }, { 1, 2, 3, 4 })
        b:node("Identity", { "x" }, { "i" })
        b:node("Add", { "i", "k" }, { "a" })
        b:node("Dropout", { "a" }, { "d" })
        b:node("Cast", { "d" }, { "c" }, { to = 1 })
        b:node("Relu", { "c" }, { "y" })
        b:output("y", "FLOAT", { 1, 4 })
      end)
      assert.equal(6, r.nodes_raw)
      assert.equal(2, r.nodes)
      assert.equal(1, r.passes.ConstantNodesToInitializers)
      assert.equal(1, r.passes.EliminateIdentity)
      assert.equal(1, r.passes.EliminateDropout)
      assert.equal(1, r.passes.CastElimination)
    end)

    it("merges duplicate subexpressions and folds constant subgraphs", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 2, 3 })
        b:init("w", "FLOAT", { 3, 2 }, seq(6))
        b:node("Transpose", { "w" }, { "wt" }, { perm = { 1, 0 } }) -- constant: folded
        b:node("Relu", { "x" }, { "r1" })
        b:node("Relu", { "x" }, { "r2" }) -- same as r1
        b:node("Add", { "r1", "r2" }, { "s" })
        b:node("MatMul", { "wt", "s" }, { "y" }, nil)
        b:output("y", "FLOAT")
      end)
      assert.equal(1, r.passes.CommonSubexpressionElimination)
      assert.equal(1, r.passes.ConstantFolding)
      assert.equal(3, r.nodes)
    end)

    it("folds a Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain once the input shape is known", function()
      local function build(b)
        b:input("x", "FLOAT", { "batch", 4, 8 })
        b:init("zero", "INT64", {}, { 0 })
        b:init("unsq", "INT64", { 1 }, { 0 })
        b:init("tail", "INT64", { 1 }, { 32 })
        b:node("Shape", { "x" }, { "shp" })
        b:node("Gather", { "shp", "zero" }, { "n" }, { axis = 0 })
        b:node("Unsqueeze", { "n", "unsq" }, { "n1" })
        b:node("Concat", { "n1", "tail" }, { "target" }, { axis = 0 })
        b:node("Reshape", { "x", "target" }, { "y" })
        b:output("y", "FLOAT")
      end
      local dyn = predict(build)
      -- dynamic: ReshapeFusion turns the chain into a constant target (0 copies the batch dim)
      assert.equal(1, dyn.nodes)
      assert.equal(4, dyn.passes.ReshapeFusion)
      local frozen = predict(build, { freeze = { { name = "batch", value = 2 } } })
      assert.equal(1, frozen.nodes)
      assert.equal(4, frozen.passes.ConstantFolding)
      assert.same({ batch = 2 }, frozen.frozen)
      assert.equal(1, frozen.supported_nodes)
    end)

    it("fuses 2-D MatMul + Add into Gemm and a Conv + BatchNormalization into the Conv", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 2, 4 })
        b:init("w", "FLOAT", { 4, 3 }, seq(12))
        b:init("bias", "FLOAT", { 3 }, seq(3))
        b:node("MatMul", { "x", "w" }, { "m" })
        b:node("Add", { "m", "bias" }, { "y" })
        b:output("y", "FLOAT", { 2, 3 })
      end)
      assert.equal(1, r.passes.MatMulAddFusion)
      assert.equal(1, r.nodes)
      assert.same({ Gemm = 1 }, r.partitions[1].ops)
      r = predict(function(b)
        b:input("x", "FLOAT", { 1, 2, 4, 4 })
        b:init("W", "FLOAT", { 2, 2, 1, 1 }, seq(4))
        for _, n in ipairs({ "s", "bb", "mean", "var" }) do b:init(n, "FLOAT", { 2 }, { 1, 1 }) end
        b:node("Conv", { "x", "W" }, { "c" })
        b:node("BatchNormalization", { "c", "s", "bb", "mean", "var" }, { "y" })
        b:output("y", "FLOAT")
      end, { model_format = "neuralnetwork" })
      assert.equal(1, r.passes.ConvBNFusion)
      assert.equal(1, r.nodes)
      assert.equal(1, r.supported_nodes)
    end)

    it("removes x + 0 and x * 1", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { 2, 2 })
        b:init("zero", "FLOAT", {}, { 0 })
        b:init("one", "FLOAT", { 1 }, { 1 })
        b:node("Add", { "x", "zero" }, { "a" })
        b:node("Mul", { "a", "one" }, { "m" })
        b:node("Relu", { "m" }, { "y" })
        b:output("y", "FLOAT", { 2, 2 })
      end)
      assert.equal(2, r.passes.NoopElimination)
      assert.equal(1, r.nodes)
    end)
  end)

  describe("shape inference", function()
    local function infer(build)
      counter = counter + 1
      local b = B.model { opset = 17 }
      build(b)
      local m <close> = mlsh.load(b:save(dir .. "/s" .. counter .. ".onnx"))
      local ir = irlib.from_graph(m.graph, m, { opset = m.opsets, ir_version = m.ir_version })
      passes.constants_to_initializers(ir)
      shape.infer(ir)
      local out = {}
      for k, t in pairs(ir.types) do out[k] = t.shape end
      return out
    end

    it("broadcasts, multiplies, convolves, reshapes and slices with symbolic dims", function()
      local s = infer(function(b)
        b:input("x", "FLOAT", { "batch", 1, 8 })
        b:input("y", "FLOAT", { 3, 1 })
        b:input("img", "FLOAT", { "n", 3, 32, 32 })
        b:init("w", "FLOAT", { 8, 16 }, seq(128))
        b:init("k", "FLOAT", { 4, 3, 3, 3 }, seq(108))
        b:init("shape", "INT64", { 2 }, { -1, 4 })
        b:init("st", "INT64", { 1 }, { 2 })
        b:init("en", "INT64", { 1 }, { 6 })
        b:init("ax", "INT64", { 1 }, { 2 })
        b:init("idx", "INT64", { 2 }, { 0, 1 })
        b:node("Add", { "x", "y" }, { "add" })
        b:node("MatMul", { "x", "w" }, { "mm" })
        b:node("Conv", { "img", "k" }, { "conv" }, { strides = { 2, 2 }, pads = { 1, 1, 1, 1 } })
        b:node("Reshape", { "x", "shape" }, { "rs" })
        b:node("Transpose", { "x" }, { "tr" }, { perm = { 2, 0, 1 } })
        b:node("Slice", { "x", "st", "en", "ax" }, { "sl" })
        b:node("Gather", { "w", "idx" }, { "ga" }, { axis = 1 })
        b:node("ReduceMean", { "x" }, { "rm" }, { axes = { -1 }, keepdims = 0 })
        b:node("Concat", { "x", "x" }, { "cc" }, { axis = 2 })
        b:output("add", "FLOAT")
      end)
      assert.same({ "batch", 3, 8 }, s.add)
      assert.same({ "batch", 1, 16 }, s.mm)
      assert.same({ "n", 4, 16, 16 }, s.conv)
      assert.same({ false, 4 }, s.rs) -- -1 over a symbolic batch: not guessed
      assert.same({ 8, "batch", 1 }, s.tr)
      assert.same({ "batch", 1, 4 }, s.sl)
      assert.same({ 8, 2 }, s.ga)
      assert.same({ "batch", 1 }, s.rm)
      assert.same({ "batch", 1, 16 }, s.cc)
    end)

    it("leaves a Reshape to a runtime shape unknown", function()
      local s = infer(function(b)
        b:input("x", "FLOAT", { 2, 6 })
        b:input("t", "INT64", { 3 })
        b:node("Reshape", { "x", "t" }, { "r" })
        b:output("r", "FLOAT")
      end)
      assert.same({ false, false, false }, s.r)
    end)
  end)

  describe("counterfactuals and options", function()
    local function gelu_model(b)
      b:input("x", "FLOAT", { 1, 16 })
      b:init("w", "FLOAT", { 16, 16 }, seq(256))
      b:init("sqrt2", "FLOAT", {}, { math.sqrt(2) })
      b:init("one", "FLOAT", {}, { 1 })
      b:init("half", "FLOAT", {}, { 0.5 })
      b:node("MatMul", { "x", "w" }, { "h" })
      b:node("Div", { "h", "sqrt2" }, { "d" })
      b:node("Erf", { "d" }, { "e" })
      b:node("Add", { "e", "one" }, { "a" })
      b:node("Mul", { "h", "a" }, { "m" })
      b:node("Mul", { "m", "half" }, { "g" })
      b:node("MatMul", { "g", "w" }, { "y" })
      b:output("y", "FLOAT", { 1, 16 })
    end

    it("detects Erf-GELU and predicts the partitions after the tanh rewrite", function()
      local r = predict(gelu_model, { model_format = "neuralnetwork" })
      assert.equal(2, #r.partitions) -- Erf needs an ML program: it cuts the NeuralNetwork model
      local cf
      for _, c in ipairs(r.counterfactuals) do if c.json.kind == "gelu_tanh" then cf = c.json end end
      assert.is_not_nil(cf)
      assert.equal(1, cf.gelu_subgraphs)
      assert.equal(1, cf.partitions)
      assert.equal(cf.nodes, cf.supported_nodes)
    end)

    it("offers the frozen-dims alternative for dynamic inputs", function()
      local r = predict(function(b)
        b:input("x", "FLOAT", { "n", 4 })
        b:init("shape", "INT64", { 2 }, { 2, -1 })
        b:node("Reshape", { "x", "shape" }, { "y" })
        b:output("y", "FLOAT")
      end, { model_format = "neuralnetwork" })
      assert.equal(0, r.supported_nodes)
      local cf = r.counterfactuals[1].json
      assert.equal("freeze", cf.kind)
      assert.equal(1, cf.supported_nodes)
    end)

    it("parses --freeze and refuses bad syntax or names that match nothing (exit 2)", function()
      local cmd = require "mlsh.cmd.ep"
      assert.same({ { name = "batch", value = 1 }, { name = "x:1", value = 128 } },
        cmd.parse_freeze("batch=1, x:1=128"))
      for _, bad in ipairs({ "batch", "batch=", "=1", "batch=0", "batch=-2", "batch=1.5", "a=1,,b=2" }) do
        local ok, err = cmd.parse_freeze(bad)
        assert.is_nil(ok, bad)
        assert.truthy(err:find("bad --freeze item", 1, true), bad)
      end
      counter = counter + 1
      local b = B.model {}
      b:input("x", "FLOAT", { "n", 4 })
      b:node("Relu", { "x" }, { "y" })
      b:output("y", "FLOAT")
      local p = b:save(dir .. "/fz.onnx")
      local _, err, code = F.run("ep --freeze n " .. F.q(p))
      assert.equal(2, code)
      assert.truthy(err:find("bad --freeze item", 1, true), err)
      _, err, code = F.run("ep --freeze nope=3 " .. F.q(p))
      assert.equal(2, code)
      assert.truthy(err:find("no dim is named nope", 1, true), err)
      _, err, code = F.run("ep --freeze-all zero " .. F.q(p))
      assert.equal(2, code)
      assert.truthy(err:find("--freeze-all", 1, true), err)
      local out
      out, err, code = F.run("ep --freeze n=3 --json --model-format neuralnetwork -o RequireStaticInputShapes=1 "
        .. F.q(p))
      assert.equal(0, code, err)
      local o = json.decode(out)
      assert.equal(1, o.supported_nodes)
      assert.equal(3, o.frozen.n)
      assert.equal(1, o.options.RequireStaticInputShapes)
      _, err, code = F.run("ep -o ModelFormat=Banana " .. F.q(p))
      assert.equal(2, code)
      assert.truthy(err:find("ModelFormat", 1, true), err)
    end)
  end)
end)
