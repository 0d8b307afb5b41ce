-- `mlsh ep --table-only`: ONNX Runtime's usability checker (op table membership, graph as stored,
-- subgraphs added up), the --ops-file formats, and the command line around it.
require "mlsh.onnx.model"
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "onnx_builder"
local ops_file = require "mlsh.onnx.ops_file"
local table_check = require "mlsh.onnx.table_check"

local MD = [[
<!--
prose the checker ignores
-->
|Operator|Note|
|--------|------|
|ai.onnx:Add||
|ai.onnx:Argmax||
|ai.onnx:Conv|Only 1D/2D Conv is supported.<br/>Bias if provided must be constant.|
|ai.onnx:Relu||
|ai.onnx.ReduceSum||
|ai.onnx:Transpose||
|ai.onnx:MatMul||
|com.microsoft:FusedConv||
|ai.onnx:Gemm|x|extra|
]]

local function table_of(text) return assert(ops_file.parse(text, "t.md")) end

describe("op tables (--ops-file)", function()
  it("reads markdown rows exactly as ONNX Runtime's checker does", function()
    local t = table_of(MD)
    assert.is_not_nil(t.ops["ai.onnx:Add"])
    assert.is_not_nil(t.ops["ai.onnx:Argmax"]) -- the shipped typo is kept: ArgMax never matches
    assert.is_nil(t.ops["ai.onnx:ArgMax"])
    assert.is_nil(t.ops["ai.onnx.ReduceSum"]) -- no ':' in the cell: not an op row
    assert.is_nil(t.ops["ai.onnx:Gemm"]) -- four cells: not a two-column row
    assert.is_nil(t.ops["Operator"])
    assert.equal("Only 1D/2D Conv is supported. Bias if provided must be constant.", t.ops["ai.onnx:Conv"])
    assert.is_not_nil(t.ops["com.microsoft:FusedConv"])
  end)

  it("reads plain domain:op lines with comments", function()
    local t = table_of("# my table\nai.onnx:Add\n\n  ai.onnx:Relu  \ncom.microsoft:Gelu\n")
    assert.same({ "ai.onnx:Add", "ai.onnx:Relu", "com.microsoft:Gelu" }, t.order)
  end)

  it("refuses a plain table with a line that is not domain:op, naming the line", function()
    local t, err = ops_file.parse("ai.onnx:Add\nAdd Relu\n", "bad.txt")
    assert.is_nil(t)
    assert.truthy(err:find("bad.txt:2", 1, true), err)
  end)

  it("refuses a table without entries", function()
    local t, err = ops_file.parse("# only a comment\n\n", "empty.md")
    assert.is_nil(t)
    assert.truthy(err:find("no domain:op entries", 1, true), err)
  end)
end)

describe("mlsh ep --table-only", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() core.fs.remove_tree(dir) end)

  -- x -> Add(c) -> Relu -> ArgMax -> Cast ; Constant c ; a Loop whose body has Add, Relu
  local function model(name)
    local b = B.model {}
    b:input("x", "FLOAT", { 1, 4 })
    b:input("n", "INT64", {})
    b:const("c", "FLOAT", { 1, 4 }, { 1, 2, 3, 4 })
    b:node("Add", { "x", "c" }, { "a" })
    b:node("Relu", { "a" }, { "r" })
    b:node("ArgMax", { "r" }, { "am" }, { axis = 1 })
    b:node("Cast", { "am" }, { "out" }, { to = 6 })
    local body = B.graph("body")
    body:input("i", "INT64", {})
    body:input("cond", "BOOL", {})
    body:input("s", "FLOAT", { 1, 4 })
    body:node("Add", { "s", "c" }, { "s2" })
    body:node("Relu", { "s2" }, { "s3" })
    body:node("Identity", { "cond" }, { "cond_out" })
    body:output("cond_out", "BOOL", {})
    body:output("s3", "FLOAT", { 1, 4 })
    b:node("Loop", { "n", "", "r" }, { "loop_out" }, { body = body })
    b:output("out", "INT32", { 1, 1 })
    b:output("loop_out", "FLOAT", { 1, 4 })
    return b:save(dir .. "/" .. (name or "t.onnx"))
  end

  it("counts by table membership only, Constant nodes and subgraphs included", function()
    local m <close> = mlsh.load(model())
    local r = table_check.analyse(m.graph, table_of(MD), {})
    -- main: Constant Add Relu ArgMax Cast Loop (Add, Relu in the table); body: Add Relu Identity
    assert.equal(9, r.nodes)
    assert.equal(4, r.supported_nodes)
    assert.equal(1, r.subgraphs)
    assert.equal(3, r.nodes_in_subgraphs)
    assert.same({ 2, 2 }, r.partition_sizes)
    assert.equal("5/body", r.partitions[2].graph)
    assert.same({ 1, 2 }, r.partitions[1].nodes)
    assert.same({ "ai.onnx:ArgMax", "ai.onnx:Cast", "ai.onnx:Constant", "ai.onnx:Identity", "ai.onnx:Loop" },
      r.unsupported_ops)
    assert.equal("NO", r.verdict)
    local reasons = {}
    for _, u in ipairs(r.unsupported) do reasons[u.op] = u.reason end
    assert.truthy(reasons["ai.onnx:ArgMax"]:find("not in the op table", 1, true))
  end)

  it("rejects a Transpose whose first attribute holds more than 5 ints, like the checker", function()
    local b = B.model {}
    b:input("x", "FLOAT", { 1, 1, 1, 1, 1, 1 })
    b:node("Transpose", { "x" }, { "y" }, { perm = { 5, 4, 3, 2, 1, 0 } })
    b:node("Add", { "y", "y" }, { "z" })
    b:output("z", "FLOAT")
    local m <close> = mlsh.load(b:save(dir .. "/tr.onnx"))
    local r = table_check.analyse(m.graph, table_of(MD), {})
    assert.equal(1, r.supported_nodes)
    assert.truthy(r.unsupported[1].reason:find("rank > 5", 1, true))
  end)

  it("notes where ONNX Runtime's own checker would raise (a Transpose without attributes)", function()
    local b = B.model {}
    b:input("x", "FLOAT", { 2, 3 })
    b:node("Transpose", { "x" }, { "y" })
    b:output("y", "FLOAT")
    local m <close> = mlsh.load(b:save(dir .. "/tr0.onnx"))
    local r = table_check.analyse(m.graph, table_of(MD), {})
    assert.equal(1, r.supported_nodes)
    assert.truthy(r.checker_error:find("IndexError", 1, true))
  end)

  it("ranks cut-makers by the partitions they cause", function()
    local b = B.model {}
    b:input("x", "FLOAT", { 4 })
    b:node("Relu", { "x" }, { "a" })
    b:node("Sin", { "a" }, { "b" })
    b:node("Relu", { "b" }, { "c" })
    b:node("Cos", { "c" }, { "d" })
    b:node("Relu", { "d" }, { "e" })
    b:node("Neg", { "x" }, { "f" })
    b:output("e", "FLOAT")
    b:output("f", "FLOAT")
    local m <close> = mlsh.load(b:save(dir .. "/cuts.onnx"))
    local r = table_check.analyse(m.graph, table_of("ai.onnx:Relu\n"), {})
    assert.equal(3, #r.partitions)
    assert.equal("ai.onnx:Cos", r.cut_makers[1].op)
    assert.equal(1, r.cut_makers[1].partitions_caused)
    assert.equal("ai.onnx:Neg", r.cut_makers[3].op)
    assert.equal(0, r.cut_makers[3].partitions_caused)
  end)

  it("prints the --json contract keys from the command line", function()
    local p = model("cli.onnx")
    local t = dir .. "/table.md"
    assert(core.fs.write_atomic(t, MD))
    local out, err, code = F.run("ep --table-only --ops-file " .. F.q(t) .. " --json " .. F.q(p))
    assert.equal(0, code, err)
    local o = json.decode(out)
    for _, k in ipairs({ "model_format", "nodes_raw", "nodes", "supported_nodes", "partitions", "partition_sizes",
                         "unsupported", "cut_makers", "verdict" }) do
      assert.is_not_nil(o[k], k)
    end
    assert.equal(9, o.nodes_raw)
    assert.equal(9, o.nodes)
    assert.same({ 2, 2 }, o.partition_sizes)
    assert.equal("table-only", o.mode)
    assert.is_string(o.unsupported[1].reason)
    local text = F.run("ep --table-only --ops-file " .. F.q(t) .. " " .. F.q(p))
    assert.truthy(text:find("2 partitions, 4/9 nodes supported", 1, true), text)
  end)

  it("exits 2 for a bad or missing --ops-file, 1 for an unreadable model", function()
    local p = model("codes.onnx")
    local bad = dir .. "/bad.txt"
    assert(core.fs.write_atomic(bad, "ai.onnx:Add\nnot an op\n"))
    local _, err, code = F.run("ep --table-only --ops-file " .. F.q(bad) .. " " .. F.q(p))
    assert.equal(2, code)
    assert.truthy(err:find("not a domain:op line", 1, true), err)
    _, err, code = F.run("ep --table-only --ops-file " .. F.q(dir .. "/nope.md") .. " " .. F.q(p))
    assert.equal(2, code)
    assert.truthy(err:find("nope.md", 1, true), err)
    _, err, code = F.run("ep --ops-file " .. F.q(bad) .. " " .. F.q(p))
    assert.equal(2, code)
    assert.truthy(err:find("goes with --table-only", 1, true), err)
    local junk = dir .. "/junk.onnx"
    assert(core.fs.write_atomic(junk, "\10\255\255"))
    _, err, code = F.run("ep --table-only " .. F.q(junk))
    assert.equal(1, code)
    assert.truthy(err:find("junk.onnx", 1, true), err)
    _, err, code = F.run("ep --table-only " .. F.q(dir .. "/absent.onnx"))
    assert.equal(1, code)
    assert.truthy(err:find("absent.onnx", 1, true), err)
    _, err, code = F.run("ep")
    assert.equal(2, code)
    assert.truthy(err:find("no model given", 1, true), err)
    _, err, code = F.run("ep --bogus " .. F.q(p))
    assert.equal(2, code)
    assert.truthy(err:find("unknown option --bogus", 1, true), err)
  end)
end)
