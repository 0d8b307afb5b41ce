-- ONNX Runtime 1.20's level-1 graph transformers as mlsh models them, and the EP's partition
-- contract (node_names, ort_version, --ort-version). Expectations come from the ORT v1.20.0 sources
-- named on each test (onnxruntime/core/optimizer/*.cc, core/graph/graph_utils.cc,
-- core/framework/graph_partitioner.cc), not from mlsh's output.
require "mlsh.onnx.model"
local mlsh = require "mlsh"
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "onnx_builder"
local ep = require "mlsh.onnx.ep"
local irlib = require "mlsh.onnx.ir"
local passes = require "mlsh.onnx.passes"

local H = require("ep_helpers").new("p")
local save = H.save
local function seq(n) return H.seq(n, 5, 0.25) end

-- the optimized graph: list of {op, name, node} plus the ir
local function optimize(build, model_opts)
  local m <close> = mlsh.load(save(build, model_opts))
  local ir = irlib.from_graph(m.graph, m, { opset = m.opsets, ir_version = m.ir_version })
  passes.run(ir)
  local ops = {}
  for i, n in ipairs(ir.nodes) do ops[i] = n.op end
  return ops, ir
end


describe("ONNX Runtime level-1 transformers (1.20)", function()
  setup(H.setup)
  teardown(H.teardown)

  it("EliminateIdentity folds a graph-output Identity into its producer (identity_elimination.cc)", function()
    local ops, ir = optimize(function(b)
      b:input("x", "FLOAT", { 4 })
      b:node("Relu", { "x" }, { "r" })
      b:node("Identity", { "r" }, { "y" })
      b:output("y", "FLOAT", { 4 })
    end)
    assert.same({ "Relu" }, ops)
    assert.same({ "y" }, ir.nodes[1].outputs)
    -- not when the producer's value is itself a graph output
    ops = optimize(function(b)
      b:input("x", "FLOAT", { 4 })
      b:node("Relu", { "x" }, { "r" })
      b:node("Identity", { "r" }, { "y" })
      b:output("r", "FLOAT", { 4 })
      b:output("y", "FLOAT", { 4 })
    end)
    assert.same({ "Relu", "Identity" }, ops)
  end)

  it("TransposeOptimizer cancels inverse Transposes around LogSoftmax (opset >= 13), remapping its axis", function()
    local function build(b)
      b:input("x", "FLOAT", { 3, 5, 1 })
      b:node("Transpose", { "x" }, { "t" }, { perm = { 0, 2, 1 } })
      b:node("LogSoftmax", { "t" }, { "l" }, { axis = 2 })
      b:node("Transpose", { "l" }, { "y" }, { perm = { 0, 2, 1 } })
      b:output("y", "FLOAT", { 3, 5, 1 })
    end
    local ops, ir = optimize(build)
    assert.same({ "LogSoftmax" }, ops)
    -- axis 2 of the transposed tensor is axis perm[2] = 1 of x
    assert.equal(1, irlib.attr(ir.nodes[1], "axis", nil))
    assert.same({ "y" }, ir.nodes[1].outputs)
    -- before opset 13 Softmax's axis flattens the tail, so the Transposes stay (HandleSoftHardMax)
    ops = optimize(build, { opset = 12 })
    assert.same({ "Transpose", "LogSoftmax", "Transpose" }, ops)
  end)

  -- graph_utils.cc RemoveNodesWithOneOutputBottomUp, called by constant_folding.cc
  it("ConstantFolding of a Shape removes a producer the Shape alone read", function()
    local function build(extra_reader)
      return function(b)
        b:input("x", "FLOAT", { 2, 6 })
        b:node("Relu", { "x" }, { "r" })
        b:node("Shape", { "r" }, { "s" })
        b:node("Reshape", { "x", "s" }, { "y" })
        b:output("y", "FLOAT", { 2, 6 })
        if extra_reader then
          b:node("Sigmoid", { "r" }, { "z" })
          b:output("z", "FLOAT", { 2, 6 })
        end
      end
    end
    assert.same({ "Reshape" }, (optimize(build(false))))
    assert.same({ "Relu", "Reshape", "Sigmoid" }, (optimize(build(true))))
  end)

  -- common_subexpression_elimination.cc AreScalarTensorAttributeEqual
  it("CSE matches ConstantOfShape only for a one-element raw_data value", function()
    local function build(typed)
      return function(b)
        b:init("shape", "INT64", { 2 }, { 3, 4 })
        b:input("x", "FLOAT", { 3, 4 })
        local v = B.tensor("FLOAT", { 1 }, { 0.5 }, typed and { typed = true } or nil)
        b:node("ConstantOfShape", { "shape" }, { "c1" }, { value = v })
        b:node("ConstantOfShape", { "shape" }, { "c2" }, { value = v })
        b:node("Add", { "x", "c1" }, { "a" })
        b:node("Add", { "x", "c2" }, { "b2" })
        b:node("Mul", { "a", "b2" }, { "y" })
        b:output("y", "FLOAT", { 3, 4 })
      end
    end
    -- raw: the two ConstantOfShape merge, then the two Adds; constant folding leaves Add + Mul
    assert.same({ "Add", "Mul" }, (optimize(build(false))))
    -- typed (float_data): AreScalarTensorAttributeEqual is false, the branches stay apart (and the
    -- folded 12-element constants are over ConstantSharing's 8-element limit, constant_sharing.h)
    assert.same({ "Add", "Add", "Mul" }, (optimize(build(true))))
  end)

  -- constant_folding.cc ConstantFoldIfNode -> graph.cc Graph::InlineIfSubgraph
  it("ConstantFolding inlines the branch an If's constant condition picks, with ORT's node names", function()
    local function branch(name, op)
      local g = B.graph(name)
      g:node(op, { "x", "x" }, { name .. "_a" })
      g:node(op, { name .. "_a", "x" }, { name .. "_out" })
      g:output(name .. "_out", "FLOAT", { 4 })
      return g
    end
    local ops, ir = optimize(function(b)
      b:input("x", "FLOAT", { 4 })
      b:init("cond", "BOOL", {}, { false })
      b:node("If", { "cond" }, { "y" }, { then_branch = branch("t", "Add"), else_branch = branch("e", "Mul") })
      b:output("y", "FLOAT", { 4 })
    end)
    assert.same({ "Mul", "Mul" }, ops)
    -- GenerateNodeName: the base name first, then base .. "_token_" .. the graph's counter
    assert.equal("_if_else_branch_Mul", ir.nodes[1].name)
    assert.equal("_if_else_branch_Mul_token_0", ir.nodes[2].name)
    -- the branch output becomes the If's output; its inner value is renamed unique_id .. "_" .. name
    assert.same({ "y" }, ir.nodes[2].outputs)
    assert.same({ "_if_else_branch_e_a" }, ir.nodes[1].outputs)
    -- a non-constant condition leaves the If, its outputs typed from the branches (ONNX If inference)
    ops, ir = optimize(function(b)
      b:input("x", "FLOAT", { 4 })
      b:input("c", "BOOL", {})
      b:node("If", { "c" }, { "y" }, { then_branch = branch("t", "Add"), else_branch = branch("e", "Mul") })
      b:output("y", "FLOAT")
    end)
    assert.same({ "If" }, ops)
    assert.same({ 4 }, ir.types.y.shape)
  end)

  -- conv_add_fusion.cc / conv_mul_fusion.cc SatisfyCondition and Apply
  it("Conv fusions take the constant at input 1 and per-channel shapes only", function()
    local function build(follower, const_first, dims)
      return function(b)
        b:input("x", "FLOAT", { 1, 2, 4, 4 })
        b:init("W", "FLOAT", { 3, 2, 1, 1 }, seq(6))
        local n = 1
        for _, d in ipairs(dims) do n = n * d end
        b:init("k", "FLOAT", dims, seq(n))
        b:node("Conv", { "x", "W" }, { "c" })
        b:node(follower, const_first and { "k", "c" } or { "c", "k" }, { "y" })
        b:output("y", "FLOAT", { 1, 3, 4, 4 })
      end
    end
    assert.same({ "Conv" }, (optimize(build("Add", false, { 3, 1, 1 }))))
    assert.same({ "Conv" }, (optimize(build("Mul", false, { 1, 3, 1, 1 }))))
    assert.same({ "Conv" }, (optimize(build("Mul", false, {}))))      -- a rank-0 scalar: Mul only
    assert.same({ "Conv", "Add" }, (optimize(build("Add", false, {}))))
    assert.same({ "Conv", "Mul" }, (optimize(build("Mul", false, { 1 })))) -- rank 1 of a rank-4 weight
    assert.same({ "Conv", "Mul" }, (optimize(build("Mul", true, { 3, 1, 1 })))) -- constant at input 0
  end)

  -- ONNX reduction shape inference skips the shape when axes is not an initializer
  it("ReduceSum with non-initializer axes leaves its output shapeless, so Sqrt is refused", function()
    local r = ep.run(mlsh.load(save(function(b)
      b:input("x", "FLOAT", { 3, 2 })
      b:input("axes", "INT64", { 1 })
      b:node("ReduceSum", { "x", "axes" }, { "s" }, { keepdims = 1 })
      b:node("Sqrt", { "s" }, { "y" })
      b:output("y", "FLOAT")
    end)), { model_format = "mlprogram" })
    local why = {}
    for _, u in ipairs(r.unsupported) do why[u.op] = u.reason end
    assert.truthy(why.Sqrt:find("has no shape", 1, true))
  end)
end)

describe("mlsh ep: ONNX Runtime version and partition contents", function()
  setup(H.setup)
  teardown(H.teardown)

  local function model()
    return save(function(b)
      b:input("x", "FLOAT", { 4 })
      b:node("Relu", { "x" }, { "a" }, nil, { name = "first" })
      b:node("Sin", { "a" }, { "s" }, nil, { name = "cut" })
      b:node("Relu", { "s" }, { "c" }, nil, { name = "second" })
      b:output("c", "FLOAT", { 4 })
    end)
  end

  it("adds node_names to each partition and says which ONNX Runtime release it models", function()
    local out, _, code = F.run("ep --json --ort-version 1.20 " .. F.q(model()))
    assert.equal(0, code)
    local o = json.decode(out)
    assert.equal("1.20", o.ort_version)
    assert.equal(2, #o.partitions)
    assert.same({ "first" }, o.partitions[1].node_names)
    assert.same({ "second" }, o.partitions[2].node_names)
    -- the existing keys stay
    assert.same({ 0 }, o.partitions[1].nodes)
    assert.equal("cut", o.unsupported[1].name)
    assert.truthy(o.unsupported[1].rule:find("op_builder_factory.cc", 1, true))
    local text = F.run("ep " .. F.q(model()))
    assert.truthy(text:find("ONNX Runtime 1.20", 1, true))
  end)

  it("refuses a version it does not model, with a usage error", function()
    local _, err, code = F.run("ep --ort-version 1.9 " .. F.q(model()))
    assert.equal(2, code)
    assert.truthy(err:find("not modelled", 1, true))
    _, err, code = F.run("ep --table-only --ort-version 1.20 " .. F.q(model()))
    assert.equal(2, code)
    assert.truthy(err:find("--table-only", 1, true))
  end)

  it("applies the same release's rules to the frozen counterfactual (Reshape needs a static input in 1.20)", function()
    local p = save(function(b)
      b:input("x", "FLOAT", { "n", 6 })
      b:init("shape", "INT64", { 2 }, { -1, 3 })
      b:node("Reshape", { "x", "shape" }, { "y" })
      b:output("y", "FLOAT")
    end)
    local m <close> = mlsh.load(p)
    local r = ep.run(m, { model_format = "mlprogram", ort_version = "1.20" })
    assert.equal(0, r.supported_nodes)
    local frozen
    for _, cf in ipairs(r.counterfactuals) do if cf.json.kind == "freeze" then frozen = cf.json end end
    assert.is_not_nil(frozen)
    assert.equal(1, frozen.supported_nodes)
  end)
end)
