-- The grouping algorithm ONNX Runtime uses for EP partitions (partition.lua), on hand-made DAGs.
local partition = require "mlsh.onnx.partition"

-- A graph from {name, inputs…} rows: node `name` reads the named values and writes `name`.
local function dag(rows, graph_inputs)
  local g = { nodes = {}, inputs = {}, initializers = {} }
  for _, i in ipairs(graph_inputs or { "in" }) do g.inputs[#g.inputs + 1] = { name = i } end
  for _, r in ipairs(rows) do
    local ins = {}
    for k = 2, #r do ins[#ins + 1] = r[k] end
    g.nodes[#g.nodes + 1] = { op = r[1], name = r[1], inputs = ins, outputs = { r[1] }, subgraphs = {} }
  end
  return g
end

-- Run the grouping with supported = names in the set; returns groups as lists of names.
local function groups_of(g, supported)
  local links = partition.links(g)
  local r = partition.group(g.nodes, links, function(n) return supported[n.name] == true end)
  local out = {}
  for i, grp in ipairs(r.groups) do
    out[i] = {}
    for k, n in ipairs(grp) do out[i][k] = n.name end
    table.sort(out[i])
  end
  return out, r
end

local function set(list)
  local s = {}
  for _, x in ipairs(list) do s[x] = true end
  return s
end

describe("EP partition grouping", function()
  it("keeps a chain of supported nodes in one partition", function()
    local g = dag({ { "a", "in" }, { "b", "a" }, { "c", "b" } })
    assert.same({ { "a", "b", "c" } }, groups_of(g, set { "a", "b", "c" }))
  end)

  it("cuts a chain at an unsupported node", function()
    local g = dag({ { "a", "in" }, { "x", "a" }, { "c", "x" } })
    assert.same({ { "a" }, { "c" } }, groups_of(g, set { "a", "c" }))
  end)

  it("splits a diamond whose one arm is unsupported, the other arm staying with the top", function()
    -- a -> (x unsupported, c) -> d(x, c)
    local g = dag({ { "a", "in" }, { "x", "a" }, { "c", "a" }, { "d", "x", "c" } })
    assert.same({ { "a", "c" }, { "d" } }, groups_of(g, set { "a", "c", "d" }))
  end)

  it("keeps a fully supported diamond whole", function()
    local g = dag({ { "a", "in" }, { "b", "a" }, { "c", "a" }, { "d", "b", "c" } })
    assert.same({ { "a", "b", "c", "d" } }, groups_of(g, set { "a", "b", "c", "d" }))
  end)

  it("processes an unsupported node off the border at once, so what follows joins the current group", function()
    -- x (unsupported, reads only the graph input) feeds y; a is a parallel root
    local g = dag({ { "a", "in" }, { "x", "in" }, { "y", "x" }, { "z", "a", "y" } })
    assert.same({ { "a", "y", "z" } }, groups_of(g, set { "a", "y", "z" }))
  end)

  it("defers an unsupported node on the border to the next group", function()
    local g = dag({ { "a", "in" }, { "x", "a" }, { "b", "in" }, { "c", "x", "b" } })
    local groups = groups_of(g, set { "a", "b", "c" })
    assert.same({ { "a", "b" }, { "c" } }, groups)
  end)

  it("groups parallel unconnected branches together", function()
    local g = dag({ { "a", "in" }, { "b", "in" }, { "c", "a" }, { "d", "b" } })
    assert.same({ { "a", "b", "c", "d" } }, groups_of(g, set { "a", "b", "c", "d" }))
  end)

  it("keeps single-node partitions and counts every node once", function()
    local g = dag({ { "a", "in" }, { "x", "a" }, { "b", "x" }, { "y", "b" }, { "c", "y" } })
    local groups, r = groups_of(g, set { "a", "b", "c" })
    assert.same({ { "a" }, { "b" }, { "c" } }, groups)
    assert.equal(5, #r.order)
  end)

  it("counts a producer read twice as one edge", function()
    local g = dag({ { "a", "in" }, { "b", "a", "a" }, { "c", "b" } })
    assert.same({ { "a", "b", "c" } }, groups_of(g, set { "a", "b", "c" }))
  end)

  it("reports a value read before anything defines it (an invalid model to the checker)", function()
    local g = dag({ { "a", "in", "b" }, { "b", "a" } })
    local _, missing = partition.links(g)
    assert.same({ "b" }, missing)
  end)

  it("links an outer producer to the node whose subgraph reads it", function()
    local sub = dag({ { "s1", "a" } }, {})
    local g = dag({ { "a", "in" }, { "loop", "in" }, { "b", "loop" } })
    g.nodes[2].subgraphs = { { attr = "body", graph = sub } }
    local links = partition.links(g)
    assert.is_true(links.producers[g.nodes[2]].has[g.nodes[1]])
  end)

  it("gives the usability checker's verdicts at its thresholds", function()
    assert.equal("YES", (partition.suitability(1, 76, 100)))
    assert.equal("MAYBE", (partition.suitability(1, 75, 100)))
    assert.equal("MAYBE", (partition.suitability(1, 51, 100)))
    assert.equal("NO", (partition.suitability(1, 50, 100)))
    assert.equal("MAYBE", (partition.suitability(2, 76, 100)))
    assert.equal("NO", (partition.suitability(2, 75, 100)))
    assert.equal("NO", (partition.suitability(3, 100, 100)))
    assert.equal("NO", (partition.suitability(0, 0, 0)))
  end)
end)
